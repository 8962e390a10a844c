//! Decode times for video that arrives with presentation times only (RTP: SPEC §Ingest "rtsp
//! pull"), so that a source with B-frames keeps DTS ≤ PTS and DTS increasing.
//!
//! In decode order, the decode times of a stream are its presentation times sorted, moved
//! back by the reorder delay. This keeper learns the reorder depth `d` from the frames (how
//! many earlier frames present after a later one), holds `d` frames back, and gives each frame
//! it releases the smallest presentation time not yet used, minus `d` frame durations (the
//! smallest gap between consecutive presentation times).
//!
//! Frames already released cannot be given other decode times, so the keeper starts by
//! holding two frames back (the depth of the usual one or two B-frames between references)
//! and drops to none once 30 frames came in presentation order: a stream without B-frames
//! pays two frames of latency for its first second only, then none (DTS = PTS); one with
//! B-frames keeps `d` frames of latency (33 to 67 ms at 30 fps). Deeper reordering (B-frame
//! pyramids) is followed once seen; the frames around that moment leave with a decode time
//! clamped to their presentation time.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use tributary_media::{Frame, Ts90};

/// The keeper of one video track.
#[derive(Debug)]
pub(crate) struct Reorder {
    /// Frames held back, in decode order.
    held: VecDeque<Frame>,
    /// Presentation times of the held frames, smallest first.
    pending: BinaryHeap<Reverse<i64>>,
    /// The latest presentation times, for learning the depth.
    recent: VecDeque<i64>,
    /// Frames held back: the reorder depth learned.
    depth: usize,
    /// The last presentation time handed out as a decode time, before the shift.
    last_sorted: Option<i64>,
    /// The last decode time given.
    last_dts: Option<i64>,
    /// The smallest positive gap between consecutive presentation times seen.
    duration: Option<i64>,
    /// Frames seen while the depth is still the starting guess; `None` once settled.
    unsettled: Option<usize>,
}

impl Default for Reorder {
    fn default() -> Self {
        Self {
            held: VecDeque::new(),
            pending: BinaryHeap::new(),
            recent: VecDeque::new(),
            depth: START_DEPTH,
            last_sorted: None,
            last_dts: None,
            duration: None,
            unsettled: Some(0),
        }
    }
}

/// The deepest reordering followed (H.264 allows 16 frames; encoders use 1 to 4).
const MAX_DEPTH: usize = 8;
/// Presentation times remembered to learn the depth.
const RECENT: usize = 2 * MAX_DEPTH;
/// The frame duration assumed before one is measured: 30 fps.
const DEFAULT_DURATION: i64 = 3000;
/// Frames held back before the stream has shown whether it reorders.
const START_DEPTH: usize = 2;
/// Frames in presentation order after which a stream is taken not to reorder.
const SETTLE: usize = 30;

impl Reorder {
    /// Takes the next video frame, in decode order, its `dts` still unknown.
    pub(crate) fn push(&mut self, frame: Frame) {
        let pts = frame.pts.0;
        let later = self.recent.iter().filter(|&&p| p > pts).count();
        if later > 0 {
            self.unsettled = None;
        }
        if later > self.depth {
            self.depth = later.min(MAX_DEPTH);
            tracing::debug!(depth = self.depth, "reordered video: holding frames back");
        }
        if let Some(seen) = &mut self.unsettled {
            *seen += 1;
            if *seen >= SETTLE {
                // In presentation order all along: no reordering, no delay.
                self.unsettled = None;
                self.depth = 0;
            }
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(pts);
        self.pending.push(Reverse(pts));
        self.held.push_back(frame);
    }

    /// The next frame ready to write, with its decode time.
    pub(crate) fn pop(&mut self) -> Option<Frame> {
        if self.held.len() <= self.depth {
            return None;
        }
        let mut frame = self.held.pop_front()?;
        let Reverse(sorted) = self.pending.pop()?;
        if let Some(last) = self.last_sorted
            && sorted > last
        {
            let gap = sorted - last;
            self.duration = Some(self.duration.map_or(gap, |d| d.min(gap)));
        }
        self.last_sorted = Some(sorted);
        let shift = self
            .duration
            .unwrap_or(DEFAULT_DURATION)
            .saturating_mul(self.depth as i64);
        let mut dts = sorted.saturating_sub(shift);
        if let Some(last) = self.last_dts {
            dts = dts.max(last.saturating_add(1));
        }
        // A frame never decodes after it is shown; while the depth is being learned this
        // wins over the order (the timeline normaliser repairs what is left).
        dts = dts.min(frame.pts.0);
        self.last_dts = Some(dts);
        frame.dts = Ts90(dts);
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bytes::Bytes;
    use tributary_media::{Codec, Frame, SessionId, TrackId, Ts90};

    use super::Reorder;

    fn frame(pts: i64) -> Frame {
        #[allow(clippy::disallowed_methods)]
        let arrival = Instant::now();
        Frame {
            track: TrackId(0),
            codec: Codec::H264,
            pts: Ts90(pts),
            dts: Ts90(pts),
            keyframe: false,
            session: SessionId(0),
            arrival,
            payload: Bytes::new(),
            config: None,
        }
    }

    /// Feeds presentation times in decode order; the `(pts, dts)` released, in order.
    fn run(pts: &[i64]) -> Vec<(i64, i64)> {
        let mut reorder = Reorder::default();
        let mut out = Vec::new();
        for &p in pts {
            reorder.push(frame(p));
            while let Some(f) = reorder.pop() {
                out.push((f.pts.0, f.dts.0));
            }
        }
        out
    }

    #[test]
    fn without_b_frames_frames_leave_at_once_after_the_first_second() {
        let pts: Vec<i64> = (0..60).map(|i| 1000 + i * 3000).collect();
        let out = run(&pts);
        assert_eq!(out.len(), 60, "nothing is held once settled");
        for pair in out.windows(2) {
            assert!(pair[1].1 > pair[0].1, "{pair:?}");
        }
        // From the 30th frame on, every frame leaves as it comes, DTS = PTS.
        let mut reorder = Reorder::default();
        for (i, &p) in pts.iter().enumerate() {
            reorder.push(frame(p));
            let released: Vec<Frame> = std::iter::from_fn(|| reorder.pop()).collect();
            if i >= 30 {
                assert_eq!(released.len(), 1, "frame {i}");
                assert_eq!((released[0].pts.0, released[0].dts.0), (p, p));
            }
        }
        assert!(out.iter().all(|&(p, d)| d <= p));
    }

    #[test]
    fn b_frames_get_increasing_dts_never_after_pts() {
        // I P B B P B B ... (display order I B B P: decode order I P B B), 3000 per frame.
        let mut pts = vec![0];
        for gop in 0..30 {
            let base = gop * 9000;
            pts.extend([base + 9000, base + 3000, base + 6000]);
        }
        let out = run(&pts);
        assert!(out.len() >= pts.len() - 2, "at most the depth is held");
        for (i, &(p, d)) in out.iter().enumerate() {
            assert!(d <= p, "frame {i}: dts {d} after pts {p}");
        }
        for pair in out.windows(2) {
            assert!(pair[1].1 > pair[0].1, "dts not increasing: {pair:?}");
        }
        // Once the depth (2) is learned, DTS is the sorted PTS two frames earlier.
        let tail = &out[20..];
        for pair in tail.windows(2) {
            assert_eq!(
                pair[1].1 - pair[0].1,
                3000,
                "steady frame spacing: {pair:?}"
            );
        }
        assert!(tail.iter().all(|&(p, d)| p - d <= 2 * 3000 + 6000));
    }

    #[test]
    fn pyramids_deeper_than_two_are_followed_and_bounded() {
        // Decode order of a B-pyramid: I P8 B4 B2 b1 b3 B6 b5 b7, repeated; 1000 per frame.
        let pattern = [8, 4, 2, 1, 3, 6, 5, 7];
        let mut pts = vec![0];
        for gop in 0..20 {
            pts.extend(pattern.iter().map(|p| (gop * 8 + p) * 1000));
        }
        let out = run(&pts);
        assert!(out.iter().all(|&(p, d)| d <= p));
        // Past the first group, where the depth (4) was learned: in order.
        for pair in out[9..].windows(2) {
            assert!(pair[1].1 > pair[0].1, "{pair:?}");
        }
    }
}
