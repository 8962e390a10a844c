//! What the segmenter hands out: its events, init segments and finished segments.

use bytes::Bytes;
use tributary_media::{Codec, SessionId, TrackId, Ts90};

use super::Part;
use crate::hls::playlist::{InitName, PlaylistEntry};
use crate::{Fmp4Error, UnixMillis};

/// What the segmenter reports.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HlsEvent {
    /// A segment is complete.
    Segment(Segment),
    /// A new S ([`HlsSegmenter::set_segment`](super::HlsSegmenter::set_segment)) applies:
    /// the segment open until now came out before this event, the segments after it are cut
    /// with `segment`, the first of them numbered `next_number` (DASH opens a Period there).
    SegmentLength {
        /// The new S.
        segment: Ts90,
        /// The number the first segment cut with it gets.
        next_number: u64,
    },
    /// An fMP4 init segment, out before the first segment that uses it.
    Init(InitSegment),
    /// LL-HLS: a part of the open segment is complete (the last part of a segment comes out
    /// just before the segment).
    Part(Part),
    /// Frames of `track` are omitted: the format cannot carry `codec` (reported once per
    /// track).
    Omitted {
        /// The track.
        track: TrackId,
        /// Its codec.
        codec: Codec,
    },
    /// The muxer rejected a frame of `track` (first rejection per track and session; the
    /// frame is left out of its segment).
    Rejected {
        /// The track.
        track: TrackId,
        /// Why.
        error: tributary_mpegts::Error,
    },
    /// DASH cutting ([`HlsSegmenter::with_dash_cuts`](super::HlsSegmenter::with_dash_cuts)) held `limit` frames of `track` and
    /// drops the next ones until its queue drains (reported once per such episode; the
    /// count is [`HlsSegmenter::dropped`](super::HlsSegmenter::dropped)).
    QueueFull {
        /// The track.
        track: TrackId,
        /// The queue's bound, in frames.
        limit: usize,
    },
    /// The fMP4 writer refused `track` (first refusal per track and session: its
    /// configuration does not parse, a frame does not fit a sample); its frames are left out.
    Unwritable {
        /// The track.
        track: TrackId,
        /// Why.
        error: Fmp4Error,
    },
}

/// One fMP4 init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitSegment {
    /// Its name (`init.mp4`, `init_<session>.mp4`): what `#EXT-X-MAP` points at.
    pub name: InitName,
    /// The RFC 6381 codec strings of its tracks, in track order.
    pub codecs: Vec<String>,
    /// The timescale of each track's media time (`mdhd`; what `tfdt` counts), in track
    /// order.
    pub timescales: Vec<u32>,
    /// `ftyp` + `moov`.
    pub bytes: Bytes,
}

/// One finished segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Its number (URI `seg_<number>.ts`, or `seg_<number>.m4s` with fMP4).
    pub number: u64,
    /// fMP4: the init segment it needs (`#EXT-X-MAP`); `None` for MPEG-TS.
    pub init: Option<InitName>,
    /// The session its frames belong to.
    pub session: SessionId,
    /// The PTS of its first frame.
    pub start: Ts90,
    /// Its duration (`#EXTINF`).
    pub duration: Ts90,
    /// Whether it follows a discontinuity (`#EXT-X-DISCONTINUITY`).
    pub discontinuity: bool,
    /// The wall time of its first frame (`#EXT-X-PROGRAM-DATE-TIME`).
    pub program_date_time: UnixMillis,
    /// `#EXT-X-TARGETDURATION`, the same for every segment of the segmenter.
    pub target_duration: u32,
    /// Why it ended.
    pub end: SegmentEnd,
    /// The MPEG-TS bytes, starting with PAT and PMT (fMP4: one `moof` + `mdat`). Their
    /// allocation has the headroom the
    /// segment was opened with (a quarter of the previous segment's size); a consumer that
    /// keeps segments long copies them into storage of its own size (publish's HLS window
    /// keeps each in pages of its own).
    pub bytes: Bytes,
}

impl Segment {
    /// The segment as the playlist lists it.
    pub fn entry(&self) -> PlaylistEntry {
        PlaylistEntry {
            number: self.number,
            init: self.init,
            duration: self.duration,
            discontinuity: self.discontinuity,
            program_date_time: self.program_date_time,
        }
    }
}

/// Why a segment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentEnd {
    /// A video keyframe at least S after its start.
    Keyframe,
    /// Audio-only: S elapsed.
    Interval,
    /// TARGETDURATION + 0.5 s passed without a keyframe (the next segment does not start with
    /// one): worth a log line.
    Forced,
    /// A new session began.
    Session,
    /// Frames were lost ([`HlsSegmenter::discontinuity`](super::HlsSegmenter::discontinuity)).
    Loss,
    /// The stream ended ([`HlsSegmenter::finish`](super::HlsSegmenter::finish)).
    Finish,
}
