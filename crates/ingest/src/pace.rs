//! Real-time pacing by DTS (HLS, files) and the timestamp offset that makes a looped file one
//! continuous timeline.

use std::time::{Duration, Instant};

use tributary_media::{Frame, TrackId, Ts90};

/// Releases frames no faster than their DTS advances, relative to the first frame after a
/// (re)start.
///
/// The anchor is the first frame's DTS and the instant it was released; a later frame is due at
/// `anchor instant + (DTS − anchor DTS)`. A frame due more than [`MAX_AHEAD`] in the future (a
/// forward jump: an HLS discontinuity, a broken file) or already more than [`MAX_LATE`] overdue
/// (the source could not keep up: a slow origin, a seek back) moves the anchor to itself and is
/// released at once, so one bad timestamp can neither stall the input nor start a burst.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pacer {
    /// The instant the anchor frame was released and its DTS.
    anchor: Option<(tokio::time::Instant, Ts90)>,
}

impl Pacer {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Forgets the anchor: the next frame is released at once and anchors the timeline.
    pub(crate) fn reset(&mut self) {
        self.anchor = None;
    }

    /// Waits until a frame with this DTS is due and returns the instant it is released.
    pub(crate) async fn wait(&mut self, dts: Ts90) -> Instant {
        let now = tokio::time::Instant::now();
        let due = self.due(dts, now);
        if due > now {
            tokio::time::sleep_until(due).await;
        }
        due.max(now).into_std()
    }

    /// When a frame with this DTS is due, given the time `now`; re-anchors as the type doc
    /// says.
    fn due(&mut self, dts: Ts90, now: tokio::time::Instant) -> tokio::time::Instant {
        let Some((at, origin)) = self.anchor else {
            self.anchor = Some((now, dts));
            return now;
        };
        let offset = dts.0 - origin.0;
        let ticks = Duration::from_nanos(offset.unsigned_abs().saturating_mul(100_000) / 9);
        let due = if offset >= 0 {
            at.checked_add(ticks)
        } else {
            at.checked_sub(ticks)
        };
        match due {
            Some(due) if due <= now + MAX_AHEAD && due + MAX_LATE >= now => due,
            _ => {
                self.anchor = Some((now, dts));
                now
            }
        }
    }
}

/// Offsets the timestamps of each pass over a looped file by the end of the previous pass, so
/// the loop is neither a timeline break nor a new session (SPEC §Ingest "file").
///
/// One offset for all tracks keeps them in sync: a pass ends at the latest `last DTS + frame
/// duration` over its tracks, and the next pass is shifted by that end minus the pass's
/// earliest DTS. Each track's first DTS in the next pass is then past its last DTS in this one,
/// so DTS increases strictly per track across the loop point.
#[derive(Debug, Clone, Default)]
pub(crate) struct Passes {
    /// Added to every timestamp of the current pass, 90 kHz.
    offset: i64,
    /// The earliest source DTS of the current pass.
    start: Option<i64>,
    /// Per track: its last source DTS in this pass and the step before it (a frame's
    /// duration).
    tracks: Vec<(TrackId, i64, i64)>,
}

impl Passes {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Notes a frame of the current pass and shifts it by the pass's offset.
    pub(crate) fn apply(&mut self, frame: &mut Frame) {
        let dts = frame.dts.0;
        self.start = Some(self.start.map_or(dts, |s| s.min(dts)));
        match self.tracks.iter_mut().find(|(t, _, _)| *t == frame.track) {
            Some((_, last, step)) => {
                if dts > *last {
                    *step = dts - *last;
                    *last = dts;
                }
            }
            None => self.tracks.push((frame.track, dts, 0)),
        }
        frame.dts = Ts90(dts + self.offset);
        frame.pts = Ts90(frame.pts.0 + self.offset);
    }

    /// Ends the current pass; returns whether it had frames (a pass without any would loop
    /// forever without writing).
    pub(crate) fn next_pass(&mut self) -> bool {
        let Some(start) = self.start.take() else {
            return false;
        };
        let end = self
            .tracks
            .iter()
            .map(|&(_, last, step)| last + step.max(1))
            .max()
            .unwrap_or(start + 1);
        self.offset += end - start;
        self.tracks.clear();
        true
    }
}

/// A frame due further ahead than this re-anchors the pacer (a timestamp jump).
const MAX_AHEAD: Duration = Duration::from_secs(2);
/// A frame overdue by more than this re-anchors the pacer (the source fell behind).
const MAX_LATE: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tributary_media::{Codec, SessionId};

    use super::*;

    fn frame(track: u16, dts: i64) -> Frame {
        Frame {
            track: TrackId(track),
            codec: if track == 0 { Codec::H264 } else { Codec::Aac },
            pts: Ts90(dts + 3000),
            dts: Ts90(dts),
            keyframe: true,
            session: SessionId(0),
            arrival: Instant::now(),
            payload: Bytes::from_static(b"x"),
            config: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn paces_by_dts_and_reanchors_on_jumps() {
        let mut pacer = Pacer::new();
        let t0 = tokio::time::Instant::now();
        let base = 126_000;
        pacer.wait(Ts90(base)).await;
        let at = pacer.wait(Ts90(base + 90_000)).await;
        assert_eq!(at, (t0 + Duration::from_secs(1)).into_std());
        // 10 s ahead: a jump, released at once.
        let now = tokio::time::Instant::now();
        let at = pacer.wait(Ts90(base + 11 * 90_000)).await;
        assert_eq!(at, now.into_std());
        // Then paced from the new anchor.
        let at = pacer.wait(Ts90(base + 11 * 90_000 + 45_000)).await;
        assert_eq!(at, (now + Duration::from_millis(500)).into_std());
        // Far behind (a seek back): re-anchored, not a burst.
        let now = tokio::time::Instant::now();
        assert_eq!(pacer.wait(Ts90(0)).await, now.into_std());
        assert_eq!(
            pacer.wait(Ts90(9_000)).await,
            (now + Duration::from_millis(100)).into_std()
        );
    }

    #[test]
    fn loop_offsets_keep_tracks_monotonic_and_in_sync() {
        // One pass: video 0..=90_000 step 3000, audio 1000..=92_920 step 1920.
        let video: Vec<i64> = (0..=30).map(|i| 126_000 + i * 3000).collect();
        let audio: Vec<i64> = (0..=48).map(|i| 127_000 + i * 1920).collect();
        let mut passes = Passes::new();
        let mut last = [i64::MIN; 2];
        let mut first_offsets = Vec::new();
        for pass in 0..3 {
            let mut firsts = [None; 2];
            for (track, dts) in video
                .iter()
                .map(|&d| (0u16, d))
                .chain(audio.iter().map(|&d| (1u16, d)))
            {
                let mut f = frame(track, dts);
                passes.apply(&mut f);
                let t = usize::from(track);
                assert!(
                    f.dts.0 > last[t],
                    "pass {pass} track {t}: {} <= {}",
                    f.dts.0,
                    last[t]
                );
                assert_eq!(f.pts.0 - f.dts.0, 3000);
                last[t] = f.dts.0;
                firsts[t].get_or_insert(f.dts.0 - dts);
            }
            assert!(passes.next_pass());
            // Both tracks get the same offset.
            assert_eq!(firsts[0], firsts[1]);
            first_offsets.push(firsts[0].unwrap());
        }
        // The pass length is the end (last audio 127_000 + 48*1920 + 1920) minus the start.
        let length = 127_000 + 49 * 1920 - 126_000;
        assert_eq!(first_offsets, [0, length, 2 * length]);
        assert!(!passes.next_pass());
    }
}
