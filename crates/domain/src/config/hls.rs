//! `publisher.hls` (SPEC §HLS, §Defaults): how HLS is cut, listed and kept, fMP4 and LL-HLS
//! included, and what of it is valid. Its own file so the server configuration's stays short.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// HLS packaging (SPEC §HLS, §Defaults `publisher.hls`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HlsSection {
    /// Target segment length in seconds; a segment closes at the first keyframe at or after
    /// it. Default 2: about 6 s of latency with hls.js, and the transcoder's default GOP.
    pub live_segment_sec: f64,
    /// Segments listed in the live playlist. Default 12 (24 s of rewind for players).
    pub live_window: usize,
    /// Segments kept fetchable after they leave the playlist, beyond the minimum SPEC sets.
    /// Default 0.
    pub live_history: usize,
    /// Accepted for open-streamer compatibility and ignored: segments are served from memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Accepted for open-streamer compatibility and ignored: segments are always ephemeral.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_ephemeral: Option<bool>,
    /// The segment container: `ts` (default: MPEG-TS, what every HLS player reads), `fmp4`
    /// (fMP4 / CMAF, `#EXT-X-MAP`, version 7) or `auto` (fMP4 when a stream carries H.265
    /// or Opus, else MPEG-TS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_format: Option<String>,
    /// LL-HLS (default false): each fMP4 segment is also cut into parts of `part_sec`,
    /// listed with `#EXT-X-PART`, with blocking playlist reload, delta updates and rendition
    /// reports. Needs `segment_format = "fmp4"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low_latency: Option<bool>,
    /// LL-HLS part length (PART-TARGET) in seconds, within [0.1, `live_segment_sec`].
    /// Default 0.5.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_sec: Option<f64>,
    /// LL-HLS `PART-HOLD-BACK` in seconds: how far behind the end of the playlist a player
    /// in low-latency mode plays, so nearly all of its latency (hls.js plays this far from
    /// the edge). At least 2 × `part_sec` (RFC 8216bis's minimum) and less than the playlist
    /// (`live_window` × `live_segment_sec`). Default 2 × `part_sec` (1.0 s with 0.5 s parts):
    /// the minimum, which keeps glass-to-glass latency near 1 s; the RFC recommends 3 × to
    /// ride out a late part, worth setting on links with jitter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_hold_back_sec: Option<f64>,
}

impl Default for HlsSection {
    fn default() -> Self {
        Self {
            live_segment_sec: 2.0,
            live_window: 12,
            live_history: 0,
            dir: None,
            live_ephemeral: None,
            segment_format: None,
            low_latency: None,
            part_sec: None,
            part_hold_back_sec: None,
        }
    }
}

/// The container of HLS segments (`publisher.hls.segment_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HlsSegmentFormat {
    /// MPEG-TS.
    #[default]
    Ts,
    /// fMP4 / CMAF.
    Fmp4,
    /// fMP4 when the codecs need it (H.265, Opus), else MPEG-TS.
    Auto,
}

impl HlsSection {
    /// The segment container; `ts` when unset. Validation refuses other values, so an
    /// unknown one here (never) is `ts`.
    pub fn segment_format(&self) -> HlsSegmentFormat {
        match self.segment_format.as_deref().map(str::trim) {
            Some(f) if f.eq_ignore_ascii_case("fmp4") => HlsSegmentFormat::Fmp4,
            Some(f) if f.eq_ignore_ascii_case("auto") => HlsSegmentFormat::Auto,
            _ => HlsSegmentFormat::Ts,
        }
    }
}

impl HlsSection {
    /// What is wrong with these settings, as (key, message) pairs; empty when valid.
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut bad = Vec::new();
        if !(self.live_segment_sec.is_finite()
            && self.live_segment_sec > 0.0
            && self.live_segment_sec <= MAX_SEGMENT_SEC)
        {
            bad.push((
                "publisher.hls.live_segment_sec",
                format!(
                    "must be > 0 and at most {MAX_SEGMENT_SEC}, got {}",
                    self.live_segment_sec
                ),
            ));
        }
        if self.live_window == 0 {
            bad.push(("publisher.hls.live_window", "must be > 0".into()));
        }
        if let Some(f) = &self.segment_format
            && !["ts", "fmp4", "auto"].contains(&f.trim().to_ascii_lowercase().as_str())
        {
            bad.push((
                "publisher.hls.segment_format",
                format!("must be ts, fmp4 or auto, got {f:?}"),
            ));
        }
        if self.low_latency == Some(true) && self.segment_format() != HlsSegmentFormat::Fmp4 {
            bad.push((
                "publisher.hls.low_latency",
                "LL-HLS parts are fMP4: needs publisher.hls.segment_format = \"fmp4\"".into(),
            ));
        }
        if let Some(part) = self.part_sec
            && !(part.is_finite() && part >= MIN_PART_SEC && part <= self.live_segment_sec)
        {
            bad.push((
                "publisher.hls.part_sec",
                format!("must be at least {MIN_PART_SEC} and at most live_segment_sec, got {part}"),
            ));
        }
        if let Some(hold_back) = self.part_hold_back_sec {
            let part = self.part_sec.unwrap_or(DEFAULT_PART_SEC);
            let playlist = self.live_window as f64 * self.live_segment_sec;
            if !(hold_back.is_finite() && hold_back >= 2.0 * part && hold_back < playlist) {
                bad.push((
                    "publisher.hls.part_hold_back_sec",
                    format!(
                        "must be at least 2 × part_sec ({}, the HLS minimum) and less than \
                         the playlist (live_window × live_segment_sec = {playlist}), got \
                         {hold_back}",
                        2.0 * part
                    ),
                ));
            }
        }
        bad
    }
}

/// `part_sec` when unset, seconds: 0.5 (SPEC §Defaults), what Apple's examples use.
pub const DEFAULT_PART_SEC: f64 = 0.5;
/// The longest HLS segment, seconds: far past any player's patience, far from overflowing.
const MAX_SEGMENT_SEC: f64 = 60.0;
/// The shortest LL-HLS part, seconds: below it a part is a frame or two and the requests per
/// player outgrow what a part saves.
const MIN_PART_SEC: f64 = 0.1;
