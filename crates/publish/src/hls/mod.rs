//! HLS outputs: one task per stream, windows served from memory.

mod master;
mod output;
mod pages;
mod registry;
pub(crate) mod window;

use std::time::Duration;

use tributary_domain::config::{HlsSection, HlsSegmentFormat};
use tributary_media::StreamCode;
use tributary_packager::SegmentFormat;

pub use master::Variant;
pub use output::{HlsHandle, start_hls, start_hls_variant};
pub use registry::{Asset, HlsRegistry};

use crate::{DashSettings, PublishError};

/// How one HLS output cuts and keeps segments (SPEC §Defaults `publisher.hls`).
#[derive(Debug, Clone, PartialEq)]
pub struct HlsSettings {
    /// S, the shortest segment, in seconds (`live_segment_sec`). Default 2.0: the
    /// transcoder's default GOP, about 6 s of latency with hls.js. Must be within (0, 60].
    pub segment_sec: f64,
    /// Segments listed in the playlist (`live_window`). Default 12 (24 s of rewind). At
    /// least 1.
    pub window: usize,
    /// Segments kept fetchable after leaving the playlist beyond the time SPEC §HLS
    /// "Retention" sets (`live_history`). Default 0.
    pub history: usize,
    /// The segment container (`segment_format`). Default MPEG-TS, what every player reads;
    /// fMP4 for H.265, Opus and browsers' MSE without transmuxing.
    pub format: SegmentFormat,
    /// Whether HLS playlists and segments are served (`protocols.hls`). Default true; false
    /// with [`dash`](Self::dash) makes the output DASH only.
    pub hls: bool,
    /// DASH from the same cuts and numbers (`protocols.dash`, SPEC §DASH), or `None` (the
    /// default): no DASH.
    pub dash: Option<DashSettings>,
}

impl HlsSettings {
    /// S as a duration, or why the settings are invalid.
    fn segment_duration(&self, code: &StreamCode) -> Result<Duration, PublishError> {
        let invalid = |field, reason| PublishError::InvalidSettings {
            code: code.clone(),
            field,
            reason,
        };
        if self.window == 0 {
            return Err(invalid("publisher.hls.live_window", "must be at least 1"));
        }
        if !(self.segment_sec.is_finite() && self.segment_sec > 0.0) {
            return Err(invalid("publisher.hls.live_segment_sec", "must be > 0"));
        }
        let segment = Duration::from_secs_f64(self.segment_sec);
        if segment > output::MAX_SEGMENT {
            return Err(invalid(
                "publisher.hls.live_segment_sec",
                "must be at most 60",
            ));
        }
        Ok(segment)
    }
}

impl Default for HlsSettings {
    fn default() -> Self {
        Self {
            segment_sec: 2.0,
            window: 12,
            history: 0,
            format: SegmentFormat::Ts,
            hls: true,
            dash: None,
        }
    }
}

impl From<&HlsSection> for HlsSettings {
    fn from(section: &HlsSection) -> Self {
        Self {
            segment_sec: section.live_segment_sec,
            window: section.live_window,
            history: section.live_history,
            format: match section.segment_format() {
                HlsSegmentFormat::Ts => SegmentFormat::Ts,
                HlsSegmentFormat::Fmp4 => SegmentFormat::Fmp4,
                HlsSegmentFormat::Auto => SegmentFormat::Auto,
            },
            hls: true,
            dash: None,
        }
    }
}
