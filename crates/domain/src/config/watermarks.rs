//! `[watermarks]` (SPEC §Config, §Defaults "Watermark"): where the watermark library keeps
//! its images.
//!
//! The directory must lie inside `security.storage_roots` like every directory the server
//! writes for API clients (SPEC §Security "File serving"); that check resolves symlinks, so it
//! is the engine's (this crate reads no file system): here only what the text alone decides.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validate::{ErrorCode, FieldError};

/// `[watermarks]`: the watermark library.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WatermarksSection {
    /// The library directory. Default `<data_dir>/watermarks`, beside the store, so uploads
    /// work on a fresh server without setup (and inside the default storage root). An
    /// absolute path, or relative to the working directory like `data_dir`; no `..`. Created
    /// at start if missing; changed through `POST /config`, the library reads the new one at
    /// once (SPEC §Config "Hot apply": rescan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}

impl WatermarksSection {
    /// The library directory: `dir`, or `<data_dir>/watermarks`.
    pub fn dir(&self, data_dir: &str) -> PathBuf {
        match self.dir.as_deref() {
            Some(dir) if !dir.trim().is_empty() => PathBuf::from(dir),
            _ => Path::new(data_dir).join("watermarks"),
        }
    }

    /// The rules of SPEC §Config that need no file system; each error names `watermarks.dir`.
    pub(super) fn check(&self, errors: &mut Vec<FieldError>) {
        let Some(dir) = &self.dir else { return };
        let message = if dir.trim().is_empty() {
            "must not be blank (leave it out for <data_dir>/watermarks)"
        } else if Path::new(dir)
            .components()
            .any(|c| c == Component::ParentDir)
        {
            "must not contain '..'"
        } else if dir.contains('\0') {
            "must not contain NUL"
        } else {
            return;
        };
        errors.push(FieldError::new(
            "watermarks.dir",
            ErrorCode::InvalidField,
            message,
        ));
    }
}
