//! HLS outputs: one task per stream, windows served from memory.

mod blocking;
mod master;
mod output;
mod pages;
mod registry;
pub(crate) mod window;

use std::time::Duration;

use tributary_domain::config::{HlsSection, HlsSegmentFormat};
use tributary_media::StreamCode;
use tributary_packager::SegmentFormat;

pub use blocking::{BlockError, BlockingCounts, LlQuery};

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
    /// LL-HLS (`low_latency` with `part_sec`): the part length in seconds, or `None` (the
    /// default): no parts. Needs [`format`](Self::format) fMP4 and a part within [0.1, S].
    pub part_sec: Option<f64>,
    /// LL-HLS PART-HOLD-BACK in seconds (`part_hold_back_sec`): how far from the end of the
    /// playlist a low-latency player plays. `None` (the default): 2 × the part length, the
    /// least RFC 8216bis allows, for the lowest latency. At least that when set.
    pub part_hold_back_sec: Option<f64>,
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
        segment_length(code, self.segment_sec)
    }

    /// The LL-HLS part length and PART-HOLD-BACK, or why the settings are invalid.
    fn part_duration(
        &self,
        code: &StreamCode,
    ) -> Result<Option<(Duration, Duration)>, PublishError> {
        let Some(part) = self.part_sec else {
            return Ok(None);
        };
        let invalid = |field, reason| PublishError::InvalidSettings {
            code: code.clone(),
            field,
            reason,
        };
        if self.format != SegmentFormat::Fmp4 {
            return Err(invalid(
                "publisher.hls.low_latency",
                "needs publisher.hls.segment_format = \"fmp4\" (LL-HLS parts are fMP4)",
            ));
        }
        if !(part.is_finite() && part >= MIN_PART_SEC && part <= self.segment_sec) {
            return Err(invalid(
                "publisher.hls.part_sec",
                "must be at least 0.1 and at most live_segment_sec",
            ));
        }
        let hold_back = self.part_hold_back_sec.unwrap_or(2.0 * part);
        let playlist = self.window as f64 * self.segment_sec;
        if !(hold_back.is_finite() && hold_back >= 2.0 * part && hold_back < playlist) {
            return Err(invalid(
                "publisher.hls.part_hold_back_sec",
                "must be at least 2 × part_sec (the HLS minimum) and less than the playlist",
            ));
        }
        Ok(Some((
            Duration::from_secs_f64(part),
            Duration::from_secs_f64(hold_back),
        )))
    }
}

/// `live_segment_sec` as a duration, or why it is invalid (not within (0, 60] s).
fn segment_length(code: &StreamCode, segment_sec: f64) -> Result<Duration, PublishError> {
    let invalid = |reason| PublishError::InvalidSettings {
        code: code.clone(),
        field: "publisher.hls.live_segment_sec",
        reason,
    };
    if !(segment_sec.is_finite() && segment_sec > 0.0) {
        return Err(invalid("must be > 0"));
    }
    let segment = Duration::from_secs_f64(segment_sec);
    if segment > output::MAX_SEGMENT {
        return Err(invalid("must be at most 60"));
    }
    Ok(segment)
}

impl Default for HlsSettings {
    fn default() -> Self {
        Self {
            segment_sec: 2.0,
            window: 12,
            history: 0,
            format: SegmentFormat::Ts,
            part_sec: None,
            part_hold_back_sec: None,
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
            part_sec: section
                .low_latency
                .unwrap_or(false)
                .then(|| section.part_sec.unwrap_or(DEFAULT_PART_SEC)),
            part_hold_back_sec: section.part_hold_back_sec,
            hls: true,
            dash: None,
        }
    }
}

/// `part_sec` when unset: 0.5 s (SPEC §Defaults), what Apple's examples use.
pub const DEFAULT_PART_SEC: f64 = tributary_domain::config::DEFAULT_PART_SEC;
/// The shortest part accepted: below 0.1 s a part is a frame or two, and the requests per
/// second per player would outgrow what a part saves.
pub const MIN_PART_SEC: f64 = 0.1;
