//! `publisher.dash` (SPEC §DASH, §Defaults): how DASH is cut, listed and paired, and what of
//! it is valid. Its own file, as `publisher.hls` has.
//!
//! DASH rides on each HLS output and, at the defaults, cuts and numbers as HLS does (one
//! timeline for HLS-TS, HLS-fMP4 and DASH); a `segment_sec` other than
//! `publisher.hls.live_segment_sec` gives DASH cut points of its own, numbered alike.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// DASH packaging (SPEC §DASH, §Defaults `publisher.dash`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DashSection {
    /// S, the target segment length in seconds: a segment ends at the first IDR at or after
    /// it. Default 2, HLS's, so both cut at the same keyframes. Within (0, 60].
    pub segment_sec: f64,
    /// Segments listed per Representation (`timeShiftBufferDepth` = S × W). Default 12 (24 s
    /// of rewind), HLS's. At least 1.
    pub window: usize,
    /// How long one track waits for the other at a start so both begin at a common anchor
    /// (audio before the first video IDR is left out), in seconds; after it the waiting track
    /// starts alone. Default 3: a GOP of the slowest common encoder settings. Within (0, 60].
    pub pairing_sec: f64,
    /// A track silent this long while the other flows is treated as gone: its open segment is
    /// closed and the other track's cuts continue alone. Seconds. Default 6 (3 × S).
    /// Within (0, 600].
    pub track_loss_sec: f64,
    /// Frames held per track at most (waiting for a partner, or for a cut while no IDR comes):
    /// beyond it frames are dropped, counted and logged once per episode. Default 900 (30 s
    /// at 30 fps, far beyond 3 × S). Within [1, 100000].
    pub queue_frames: usize,
}

impl Default for DashSection {
    fn default() -> Self {
        Self {
            segment_sec: 2.0,
            window: 12,
            pairing_sec: 3.0,
            track_loss_sec: 6.0,
            queue_frames: 900,
        }
    }
}

impl DashSection {
    /// What is wrong with these settings, as (key, message) pairs; empty when valid.
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut bad = Vec::new();
        let mut seconds = |key, value: f64, max: f64| {
            if !(value.is_finite() && value > 0.0 && value <= max) {
                bad.push((key, format!("must be > 0 and at most {max}, got {value}")));
            }
        };
        seconds("publisher.dash.segment_sec", self.segment_sec, 60.0);
        seconds("publisher.dash.pairing_sec", self.pairing_sec, 60.0);
        seconds("publisher.dash.track_loss_sec", self.track_loss_sec, 600.0);
        if self.window == 0 {
            bad.push(("publisher.dash.window", "must be > 0".into()));
        }
        if !(1..=MAX_QUEUE_FRAMES).contains(&self.queue_frames) {
            bad.push((
                "publisher.dash.queue_frames",
                format!(
                    "must be at least 1 and at most {MAX_QUEUE_FRAMES}, got {}",
                    self.queue_frames
                ),
            ));
        }
        bad
    }
}

/// The most frames a DASH track queue may hold: bounds memory per track whatever is set.
const MAX_QUEUE_FRAMES: usize = 100_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_spec_defaults_and_valid() {
        let d = DashSection::default();
        assert_eq!(
            (
                d.segment_sec,
                d.window,
                d.pairing_sec,
                d.track_loss_sec,
                d.queue_frames
            ),
            (2.0, 12, 3.0, 6.0, 900)
        );
        assert!(d.problems().is_empty());
    }

    #[test]
    fn each_bad_value_names_its_key() {
        let bad = DashSection {
            segment_sec: 0.0,
            window: 0,
            pairing_sec: f64::NAN,
            track_loss_sec: -1.0,
            queue_frames: 0,
        };
        let keys: Vec<_> = bad.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "publisher.dash.segment_sec",
                "publisher.dash.pairing_sec",
                "publisher.dash.track_loss_sec",
                "publisher.dash.window",
                "publisher.dash.queue_frames",
            ]
        );
    }
}
