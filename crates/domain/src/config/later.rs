//! Sections and keys SPEC §Config and §Defaults define for features that have not landed.
//!
//! A configuration file written against SPEC must start: each such key is accepted, ignored,
//! and named once at start-up by [`ServerConfig::ignored`](super::ServerConfig::ignored) as
//! not supported yet (as the API does for stream fields). Keys SPEC does not define stay errors
//! naming the key: every struct here denies unknown fields. Where SPEC names a section but not
//! its keys (`store`, `server.cors`), the section is taken whole, as any table, and each of
//! its keys is named.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `[debug]`: test hooks, off by default. Lives here with the other optional sections;
/// unlike them it is honoured ([`ServerConfig::fault_injection`](super::ServerConfig::fault_injection)).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DebugSection {
    /// `POST /debug/fault` answers (false: 404). Read at each request, so a change applies
    /// at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_injection: Option<bool>,
}

/// A configuration key accepted and ignored, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredKey {
    /// The key's path (`hooks.worker_count`, `store.backend`).
    pub path: String,
    /// Why it is ignored.
    pub reason: IgnoredReason,
}

/// Why a configuration key is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IgnoredReason {
    /// SPEC defines it for a feature that has not landed.
    NotSupportedYet,
    /// Kept for open-streamer compatibility; Tributary does not need it.
    Legacy,
}

impl fmt::Display for IgnoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            IgnoredReason::NotSupportedYet => {
                write!(
                    f,
                    "configuration key {} is not supported yet; ignored",
                    self.path
                )
            }
            IgnoredReason::Legacy => write!(
                f,
                "configuration key {} is a legacy open-streamer key; accepted and ignored",
                self.path
            ),
        }
    }
}

/// Collects ignored keys: each key set in a section's JSON form, under `prefix`.
pub(super) struct Ignored(pub(super) Vec<IgnoredKey>);

impl Ignored {
    /// Every key of `section` that is set (a section that is present but empty is named
    /// itself).
    pub(super) fn keys<T: Serialize>(&mut self, prefix: &str, section: Option<&T>) {
        let Some(section) = section else { return };
        match serde_json::to_value(section) {
            Ok(Value::Object(map)) if !map.is_empty() => {
                for key in map.keys() {
                    self.key(&format!("{prefix}.{key}"), IgnoredReason::NotSupportedYet);
                }
            }
            _ => self.key(prefix, IgnoredReason::NotSupportedYet),
        }
    }

    /// One key, if it is set.
    pub(super) fn set(&mut self, path: &str, is_set: bool, reason: IgnoredReason) {
        if is_set {
            self.key(path, reason);
        }
    }

    fn key(&mut self, path: &str, reason: IgnoredReason) {
        self.0.push(IgnoredKey {
            path: path.to_owned(),
            reason,
        });
    }
}
