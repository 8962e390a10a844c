//! The one live TS writer: a hub subscriber's frames → a transport stream a reader can join
//! and decode from its first byte. FFmpeg's stdin (the transcoder's feeder), HTTP-TS and SRT
//! play and DVR all read a live buffer this way. Pure push/pull: push each delivery, pull byte
//! runs until `None`, write them in order.
//!
//! Readers (FFmpeg above all) decide their streams from the first PMT they see and do not take
//! tracks announced later, so the writer holds the first frames until it knows the table: a
//! video and an audio track seen, or [`PROBE_SPAN`] of decode time, or [`PROBE_FRAMES`]
//! frames, whichever comes first. It starts the stream at a video keyframe (audio-only: at
//! once), with PAT and PMT first, so a decoder never sees a picture it cannot decode; after the
//! subscriber lost frames it skips to the next video keyframe again and counts what it skipped.

use std::collections::VecDeque;

use bytes::Bytes;
use tributary_media::{Codec, Frame, MediaKind, TrackId, Ts90};

use crate::{MuxTrack, Muxer, MuxerConfig};

/// Muxes the frames of one live reader (an FFmpeg input, an HTTP-TS or SRT player).
///
/// # Driving it
///
/// [`push`](Self::push) every frame the subscriber delivers and [`lagged`](Self::lagged) every
/// loss it reports, in order; after each call, [`pull`](Self::pull) until `None` and write the
/// runs in order. Nothing comes out before [`started`](Self::started).
#[derive(Debug, Default)]
pub struct LiveWriter {
    /// Frames held until the track table is known (at most [`PROBE_FRAMES`]).
    held: Vec<Frame>,
    /// The muxer, once the table is known.
    muxer: Option<Muxer>,
    /// Whether the table has a video track: then the stream (re)starts at a video keyframe.
    video: bool,
    /// Frames are skipped until the next video keyframe (start, or after a loss).
    resync: bool,
    /// Frames skipped or rejected so far.
    skipped: u64,
    /// The PTS of the first video frame muxed: the reader's first frame (FFmpeg's keyframe
    /// expression counts from it).
    first_video_pts: Option<Ts90>,
    /// Tracks left out of the table because TS cannot carry their codec; their frames are
    /// dropped without counting.
    omitted: Vec<(TrackId, Codec)>,
    /// The DTS of the first frame muxed: a reader that keeps timestamps (FFmpeg with
    /// `-copyts`) writes its output near it.
    first_dts: Option<Ts90>,
    /// Byte runs not pulled yet.
    ready: VecDeque<Bytes>,
}

impl LiveWriter {
    /// A writer at the start of a reader's stream.
    pub fn new() -> Self {
        Self {
            resync: true,
            ..Self::default()
        }
    }

    /// Muxes one frame. Pull every run before the next push.
    pub fn push(&mut self, frame: Frame) {
        if self.muxer.is_none() {
            self.held.push(frame);
            if self.probed() {
                self.start();
            }
            return;
        }
        self.mux(&frame);
    }

    /// The subscriber lost frames: the stream goes on at the next video keyframe.
    pub fn lagged(&mut self, dropped: u64) {
        self.skipped += dropped;
        self.resync = true;
    }

    /// The next run of whole TS packets.
    pub fn pull(&mut self) -> Option<Bytes> {
        self.ready.pop_front()
    }

    /// The PTS of the first video frame muxed (a keyframe), once there is one; `None` for an
    /// audio-only input.
    pub fn first_video_pts(&self) -> Option<Ts90> {
        self.first_video_pts
    }

    /// The DTS of the first frame muxed (a video keyframe when there is video), once there is
    /// one: what a reader that keeps timestamps (FFmpeg with `-copyts`) writes is near it.
    pub fn first_dts(&self) -> Option<Ts90> {
        self.first_dts
    }

    /// Whether the first byte runs are ready: the track table is known and the stream has
    /// started (at a video keyframe, or at once without video).
    pub fn started(&self) -> bool {
        self.muxer.is_some() && !(self.video && self.first_video_pts.is_none())
    }

    /// Frames not written (lost by the subscriber, skipped to a keyframe or refused by the
    /// muxer).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Tracks left out because the muxer cannot carry their codec (Opus, AV1, ...), once the
    /// table is known: the rest of the stream plays without them.
    pub fn omitted(&self) -> &[(TrackId, Codec)] {
        &self.omitted
    }

    fn probed(&self) -> bool {
        let has = |kind| self.held.iter().any(|f| f.codec.kind() == kind);
        let (Some(first), Some(last)) = (self.held.first(), self.held.last()) else {
            return false;
        };
        (has(MediaKind::Video) && has(MediaKind::Audio))
            || last.dts.0 - first.dts.0 >= PROBE_SPAN
            || self.held.len() >= PROBE_FRAMES
    }

    fn start(&mut self) {
        let mut tracks: Vec<MuxTrack> = Vec::new();
        for f in &self.held {
            let kind = f.codec.kind();
            if kind == MediaKind::Data
                || tracks.iter().any(|t| t.track == f.track)
                || self.omitted.iter().any(|(track, _)| *track == f.track)
            {
                continue;
            }
            if Muxer::carries(f.codec) {
                tracks.push(MuxTrack::new(f.track, f.codec));
            } else {
                self.omitted.push((f.track, f.codec));
            }
        }
        tracks.sort_by_key(|t| (t.codec.kind() != MediaKind::Video, t.track));
        self.video = tracks.iter().any(|t| t.codec.kind() == MediaKind::Video);
        let held = std::mem::take(&mut self.held);
        match Muxer::new(MuxerConfig {
            tracks,
            ..MuxerConfig::default()
        }) {
            Ok(muxer) => {
                self.muxer = Some(muxer);
                for frame in &held {
                    self.mux(frame);
                }
            }
            Err(_) => self.skipped += held.len() as u64,
        }
    }

    fn mux(&mut self, frame: &Frame) {
        if self.omitted.iter().any(|(track, _)| *track == frame.track) {
            return;
        }
        let kind = frame.codec.kind();
        if self.resync {
            let sync = if self.video {
                kind == MediaKind::Video && frame.keyframe
            } else {
                kind == MediaKind::Audio
            };
            if !sync {
                self.skipped += 1;
                return;
            }
            self.resync = false;
        }
        let Some(muxer) = self.muxer.as_mut() else {
            return;
        };
        if kind == MediaKind::Video && self.first_video_pts.is_none() {
            self.first_video_pts = Some(frame.pts);
        }
        self.first_dts.get_or_insert(frame.dts);
        muxer.push(frame);
        while let Some(run) = muxer.pull() {
            match run {
                Ok(bytes) => self.ready.push_back(bytes),
                Err(_) => self.skipped += 1,
            }
        }
    }
}

/// Decode time after which the track table is fixed even with one kind missing: 1 s.
pub const PROBE_SPAN: i64 = 90_000;

/// Frames after which the track table is fixed.
pub const PROBE_FRAMES: usize = 256;

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tributary_media::{Codec, SessionId, TrackId};

    use super::*;

    /// Some instant to stamp arrivals with; tests never compare it, so reading the clock here
    /// keeps them deterministic.
    #[expect(
        clippy::disallowed_methods,
        reason = "an arbitrary arrival stamp, never compared"
    )]
    fn arrival() -> Instant {
        Instant::now()
    }

    fn frame(codec: Codec, ms: i64, keyframe: bool) -> Frame {
        let track = TrackId(if codec == Codec::H264 { 1 } else { 2 });
        Frame {
            track,
            codec,
            pts: Ts90(ms * 90),
            dts: Ts90(ms * 90),
            keyframe,
            session: SessionId(1),
            arrival: arrival(),
            payload: Bytes::from_static(&[0, 0, 0, 1, 0x09, 0xf0, 0xff, 0xfc, 0x00]),
            config: None,
        }
    }

    fn pulled(writer: &mut LiveWriter) -> usize {
        std::iter::from_fn(|| writer.pull())
            .map(|run| run.len())
            .sum()
    }

    #[test]
    fn holds_frames_until_the_table_is_known_and_starts_at_a_keyframe() {
        let mut writer = LiveWriter::new();
        writer.push(frame(Codec::H264, 0, false));
        assert!(!writer.started(), "one kind seen: still probing");
        assert_eq!(pulled(&mut writer), 0);
        writer.push(frame(Codec::Mp2, 10, true));
        // Both kinds known, but no keyframe yet: nothing FFmpeg could decode is written.
        assert!(!writer.started());
        writer.push(frame(Codec::H264, 33, true));
        assert!(writer.started());
        assert_eq!(writer.first_video_pts(), Some(Ts90(33 * 90)));
        let bytes = pulled(&mut writer);
        assert!(
            bytes > 0 && bytes.is_multiple_of(188),
            "whole TS packets: {bytes}"
        );
        assert_eq!(
            writer.skipped(),
            2,
            "the P-frame and the audio before the keyframe"
        );
    }

    #[test]
    fn a_lag_skips_to_the_next_keyframe_and_counts() {
        let mut writer = LiveWriter::new();
        writer.push(frame(Codec::H264, 0, true));
        writer.push(frame(Codec::Mp2, 10, true));
        assert!(writer.started());
        assert!(pulled(&mut writer) > 0);
        writer.lagged(7);
        writer.push(frame(Codec::H264, 500, false));
        writer.push(frame(Codec::Mp2, 510, true));
        assert_eq!(pulled(&mut writer), 0, "nothing until a keyframe");
        assert_eq!(
            writer.skipped(),
            9,
            "7 lost by the subscriber, 2 skipped here"
        );
        writer.push(frame(Codec::H264, 533, true));
        assert!(pulled(&mut writer) > 0, "the keyframe goes through");
        writer.push(frame(Codec::H264, 566, false));
        assert!(pulled(&mut writer) > 0);
        assert_eq!(writer.skipped(), 9);
    }

    #[test]
    fn a_track_ts_cannot_carry_is_omitted_and_the_rest_plays() {
        let mut writer = LiveWriter::new();
        let opus = |ms| Frame {
            track: TrackId(3),
            ..frame(Codec::Opus, ms, true)
        };
        writer.push(opus(0));
        writer.push(frame(Codec::H264, 10, true));
        assert!(writer.started(), "video and audio seen: the table is known");
        assert_eq!(writer.omitted(), [(TrackId(3), Codec::Opus)]);
        assert!(pulled(&mut writer) > 0, "the video goes out");
        writer.push(opus(20));
        assert_eq!(pulled(&mut writer), 0);
        assert_eq!(
            writer.skipped(),
            0,
            "an omitted track's frames are not losses"
        );
    }

    #[test]
    fn audio_only_starts_at_once_after_the_probe_span() {
        let mut writer = LiveWriter::new();
        for ms in (0..=1008).step_by(24) {
            writer.push(frame(Codec::Mp2, ms, true));
        }
        assert!(writer.started(), "1 s of audio fixes the table");
        assert_eq!(writer.first_video_pts(), None);
        assert!(pulled(&mut writer) > 0);
        assert_eq!(writer.skipped(), 0);
    }
}
