//! FFmpeg's output timestamps put back on the raw buffer's timeline (SPEC §Transcoder
//! "Alignment": a rung's output PTS equals the input PTS of the same frame).
//!
//! FFmpeg runs with `-copyts`, so each output frame keeps the timestamps of the input frame it
//! encodes; but MPEG-TS carries 33 bits of them, and the raw buffer's timeline is 64-bit (it
//! passes 2^33 ticks after 26.5 hours). [`Restamp`] unwraps every output frame onto that
//! timeline next to the previous one, the first next to the first frame the feeder gave the
//! process. The rendition buffers keep these timestamps as they are (no normaliser of their
//! own), so every rung carries the same PTS for the same instant.
//!
//! A restarted process starts at the raw buffer's latest keyframe, which may be older than the
//! last frame the previous process wrote when the source's GOP is long. What would take the
//! rendition back in time is dropped (video up to the next keyframe after it), so its DTS
//! only ever increase.

use tributary_media::{Frame, MediaKind, Ts90};

/// Unwraps one FFmpeg output's frames onto the raw buffer's timeline. Pure: one call per
/// frame, in output order.
#[derive(Debug, Clone)]
pub struct Restamp {
    /// The last unwrapped DTS (at first, the first DTS fed to the process).
    reference: Ts90,
    /// The last DTS the rendition got from the previous process: nothing at or before it is
    /// let through.
    floor: Option<Ts90>,
    /// Video was dropped below the floor: the next video frame let through is a keyframe.
    wait_keyframe: bool,
    /// The latest DTS let through.
    last: Option<Ts90>,
    /// Frames dropped below the floor.
    dropped: u64,
}

impl Restamp {
    /// For a process whose first input frame had DTS `first`, writing to a rendition whose
    /// last frame so far had DTS `floor` (`None` for a fresh one).
    pub fn new(first: Ts90, floor: Option<Ts90>) -> Self {
        Self {
            reference: first,
            floor,
            wait_keyframe: false,
            last: floor,
            dropped: 0,
        }
    }

    /// The frame with its timestamps on the raw buffer's timeline, or `None` when it would
    /// take the rendition back in time.
    pub fn apply(&mut self, mut frame: Frame) -> Option<Frame> {
        let dts = Ts90::unwrap_33(frame.dts.0 as u64, self.reference);
        frame.pts = Ts90(frame.pts.0 - frame.dts.0 + dts.0);
        frame.dts = dts;
        self.reference = dts;
        let video = frame.codec.kind() == MediaKind::Video;
        if let Some(floor) = self.floor {
            if dts <= floor || (video && self.wait_keyframe && !frame.keyframe) {
                self.wait_keyframe |= video;
                self.dropped += 1;
                return None;
            }
            if video {
                self.wait_keyframe = false;
            }
        }
        self.last = Some(self.last.map_or(dts, |last| last.max(dts)));
        Some(frame)
    }

    /// The latest DTS let through (or the floor): the next process's floor.
    pub fn last(&self) -> Option<Ts90> {
        self.last
    }

    /// Frames dropped so far because they went back in time.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bytes::Bytes;
    use tributary_media::{Codec, SessionId, TrackId};

    use super::*;

    fn frame(codec: Codec, dts: i64, pts: i64, keyframe: bool) -> Frame {
        Frame {
            track: TrackId(if codec == Codec::H264 { 0x100 } else { 0x101 }),
            codec,
            pts: Ts90(pts),
            dts: Ts90(dts),
            keyframe,
            session: SessionId(0),
            arrival: Instant::now(),
            payload: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            config: None,
        }
    }

    fn stamps(restamp: &mut Restamp, frames: Vec<Frame>) -> Vec<Option<(i64, i64)>> {
        frames
            .into_iter()
            .map(|f| restamp.apply(f).map(|f| (f.dts.0, f.pts.0)))
            .collect()
    }

    #[test]
    fn output_timestamps_land_on_the_inputs_64_bit_timeline() {
        const WRAP: i64 = Ts90::WRAP_33;
        // A process fed from 3 wraps in, just before the 4th: FFmpeg's 33-bit timestamps, as
        // the demuxer gives them (continuous from the first, PTS next to DTS; B-frames: PTS
        // ahead of DTS), come back as the input's, across the wrap.
        let first = 3 * WRAP + WRAP - 6000;
        let mut restamp = Restamp::new(Ts90(first), None);
        let out = vec![
            frame(Codec::H264, WRAP - 9000, WRAP - 6000, true),
            frame(Codec::Aac, WRAP - 6000, WRAP - 6000, true),
            frame(Codec::H264, WRAP - 6000, WRAP + 3000, false),
            frame(Codec::H264, WRAP - 3000, WRAP, false),
            frame(Codec::H264, WRAP, WRAP + 6000, false),
            frame(Codec::Aac, WRAP + 1000, WRAP + 1000, true),
        ];
        let base = 3 * WRAP;
        assert_eq!(
            stamps(&mut restamp, out),
            [
                Some((base + WRAP - 9000, base + WRAP - 6000)),
                Some((base + WRAP - 6000, base + WRAP - 6000)),
                Some((base + WRAP - 6000, base + WRAP + 3000)),
                Some((base + WRAP - 3000, base + WRAP)),
                Some((base + WRAP, base + WRAP + 6000)),
                Some((base + WRAP + 1000, base + WRAP + 1000)),
            ]
        );
        assert_eq!(restamp.last(), Some(Ts90(base + WRAP + 1000)));
        assert_eq!(restamp.dropped(), 0);
    }

    #[test]
    fn a_restart_never_takes_the_rendition_back_in_time() {
        // The previous process wrote up to DTS 100_000; the new one starts at an older
        // keyframe (90_000): everything up to the floor goes, then video waits for the next
        // keyframe while audio past the floor flows.
        let mut restamp = Restamp::new(Ts90(90_000), Some(Ts90(100_000)));
        let out = vec![
            frame(Codec::H264, 90_000, 90_000, true),
            frame(Codec::Aac, 95_000, 95_000, true),
            frame(Codec::H264, 99_000, 99_000, false),
            frame(Codec::H264, 102_000, 102_000, false),
            frame(Codec::Aac, 103_000, 103_000, true),
            frame(Codec::H264, 105_000, 105_000, true),
            frame(Codec::H264, 108_000, 108_000, false),
        ];
        let passed: Vec<bool> = stamps(&mut restamp, out)
            .iter()
            .map(Option::is_some)
            .collect();
        assert_eq!(passed, [false, false, false, false, true, true, true]);
        assert_eq!(restamp.dropped(), 4);
        assert_eq!(restamp.last(), Some(Ts90(108_000)));
    }
}
