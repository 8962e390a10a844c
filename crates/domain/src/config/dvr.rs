//! `[dvr]` (SPEC §DVR, §Defaults "DVR"): where recordings go by default, the defaults a
//! stream's `dvr` section falls back to, and the limits of the recording routes.
//!
//! Every field is optional so that a partial section means "the default for the rest"; the
//! accessors resolve them. A stream's own `dvr` values win; its zeros (SPEC: "0 → 4",
//! "0 = forever", "0 = unlimited") take the server's value here, whose own defaults are the
//! SPEC's, so a server without `[dvr]` behaves exactly as SPEC's per-stream defaults say.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Dvr;
use crate::validate::{ErrorCode, FieldError};

/// `[dvr]`: recording defaults and limits.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DvrSection {
    /// The DVR root: where a stream whose `dvr.storage_path` is empty records
    /// (`<root>/<code>/`). Default `<data_dir>/dvr`, beside the store, so a fresh server
    /// records without setup. An absolute path, or relative to the working directory like
    /// `data_dir`; no `..`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Seconds: the segment length of streams whose `dvr.segment_duration` is 0. Default 4
    /// (SPEC): a recorded segment is a file and an fsync, so fewer, longer segments than live
    /// HLS's 2 s cost less disk work, and a 1 s GOP still cuts within a second of it.
    /// 1 to 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_duration: Option<u32>,
    /// Seconds kept for streams whose `dvr.retention_sec` is 0. Default 0: forever, as SPEC's
    /// per-stream default (retention is an operator's choice of disk, not ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_sec: Option<u64>,
    /// GiB kept per recording for streams whose `dvr.max_size_gb` is 0. Default 0: unlimited,
    /// as SPEC's per-stream default. Not negative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size_gb: Option<f64>,
    /// Seconds: the longest window a timeshift playlist covers (longer asks are clamped).
    /// Default 86 400 (24 h, SPEC): a day of 4 s segments is a 21 600-line playlist, about
    /// what a player still parses quickly. 1 to 86 400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_timeshift_sec: Option<u64>,
    /// Seconds: the longest clip `clip.mp4` makes; a longer `to - from` is refused with 400.
    /// Default 3600 (SPEC): an hour of remuxing holds one HTTP response and a blocking-pool
    /// turn per segment for as long as the client reads. 1 to 86 400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_clip_sec: Option<u64>,
}

impl DvrSection {
    /// The DVR root: `root`, or `<data_dir>/dvr`.
    pub fn root(&self, data_dir: &str) -> PathBuf {
        match self.root.as_deref() {
            Some(root) if !root.trim().is_empty() => PathBuf::from(root),
            _ => Path::new(data_dir).join("dvr"),
        }
    }

    /// The segment length of a stream that gives none (default 4 s).
    pub fn segment_duration(&self) -> u32 {
        self.segment_duration.unwrap_or(DEFAULT_SEGMENT_SEC)
    }

    /// The longest timeshift window (default 24 h).
    pub fn max_timeshift(&self) -> Duration {
        Duration::from_secs(self.max_timeshift_sec.unwrap_or(MAX_SEC))
    }

    /// The longest clip (default 3600 s).
    pub fn max_clip(&self) -> Duration {
        Duration::from_secs(self.max_clip_sec.unwrap_or(DEFAULT_MAX_CLIP_SEC))
    }

    /// A stream's `dvr` with its zeros (segment duration, retention, size cap) replaced by
    /// this section's values.
    pub fn resolve(&self, dvr: &Dvr) -> Dvr {
        let mut resolved = dvr.clone();
        if resolved.segment_duration == 0 {
            resolved.segment_duration = self.segment_duration();
        }
        if resolved.retention_sec == 0 {
            resolved.retention_sec = self.retention_sec.unwrap_or(0);
        }
        if resolved.max_size_gb == 0.0 {
            resolved.max_size_gb = self.max_size_gb.unwrap_or(0.0);
        }
        resolved
    }

    /// The rules of SPEC §Config for this section; each error names its key (`dvr.…`).
    pub(super) fn check(&self, errors: &mut Vec<FieldError>) {
        let mut bad = |key: &str, message: String| {
            errors.push(FieldError::new(
                format!("dvr.{key}"),
                ErrorCode::InvalidField,
                message,
            ));
        };
        if let Some(root) = &self.root
            && Path::new(root)
                .components()
                .any(|c| c == std::path::Component::ParentDir)
        {
            bad("root", "must not contain '..'".into());
        }
        if let Some(secs) = self.segment_duration
            && !(1..=MAX_SEGMENT_SEC).contains(&secs)
        {
            bad(
                "segment_duration",
                format!("must be 1 to {MAX_SEGMENT_SEC} seconds, got {secs}"),
            );
        }
        if let Some(secs) = self.retention_sec
            && secs > MAX_RETENTION_SEC
        {
            bad(
                "retention_sec",
                format!("must be at most {MAX_RETENTION_SEC} seconds (10 years), got {secs}"),
            );
        }
        if let Some(gb) = self.max_size_gb
            && !(gb.is_finite() && gb >= 0.0)
        {
            bad(
                "max_size_gb",
                format!("must be a non-negative number of GiB, got {gb}"),
            );
        }
        for (key, value) in [
            ("max_timeshift_sec", self.max_timeshift_sec),
            ("max_clip_sec", self.max_clip_sec),
        ] {
            if let Some(secs) = value
                && !(1..=MAX_SEC).contains(&secs)
            {
                bad(key, format!("must be 1 to {MAX_SEC} seconds, got {secs}"));
            }
        }
    }
}

/// SPEC §Defaults: 4 s segments.
const DEFAULT_SEGMENT_SEC: u32 = 4;
/// SPEC §Defaults: clips of at most an hour.
const DEFAULT_MAX_CLIP_SEC: u64 = 3600;
/// The longest timeshift window and clip: a day (and the default timeshift clamp).
const MAX_SEC: u64 = 86_400;
/// The longest segment: past a minute a recording's granularity (timeshift, clip starts,
/// retention) gets too coarse and a segment too large to hold while it is cut.
const MAX_SEGMENT_SEC: u32 = 60;
/// The longest retention: ten years, far past any use, before an instant would overflow.
const MAX_RETENTION_SEC: u64 = 10 * 365 * 86_400;
