//! The live HLS segmenter: frames in, numbered MPEG-TS or fMP4 segments out.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use tributary_media::{Codec, Frame, MediaKind, SessionId, TrackId, Ts90};
use tributary_mpegts::{MuxTrack, Muxer, MuxerConfig};

use crate::hls::config::{HlsConfig, SegmentFormat};
use crate::hls::playlist::{InitName, millis_rounded};
use crate::{Fmp4Error, Fmp4Track, Fragmenter, UnixMillis, write_init};

pub use output::{HlsEvent, InitSegment, Segment, SegmentEnd};
pub use parts::Part;

/// Cuts a live stream of [`Frame`]s into numbered MPEG-TS or fMP4 segments (SPEC §HLS
/// "Cutting"); both formats cut at the same points and number alike.
///
/// # Driving it
///
/// - [`push`](Self::push) every frame of the buffer in the order the hub delivers it, with the
///   wall time at which the frame arrived (for `#EXT-X-PROGRAM-DATE-TIME`).
/// - Call [`discontinuity`](Self::discontinuity) when frames were lost (the hub's `Lagged`):
///   the open segment closes and the next one is marked `#EXT-X-DISCONTINUITY`.
/// - Call [`finish`](Self::finish) when the stream ends: the open segment closes.
/// - After each of these calls, drain [`pull`](Self::pull) until it returns `None`. Events
///   come out in the order they happened; segment numbers increase by one from
///   [`HlsConfig::first_number`].
///
/// # What it decides
///
/// - **Tracks.** At the start of each session it holds frames until it has seen a video and
///   an audio track, or for 1 s of DTS (or 256 frames), then builds the TS track table from
///   what it saw: video first, then audio, then data. A track first seen later is added to
///   the table (the PMT is re-sent). Frames of a codec HLS-TS cannot carry (Opus, ...) are
///   omitted and reported once per track with [`HlsEvent::Omitted`].
/// - **Cuts.** With video, a segment starts at a video keyframe and closes at the first video
///   keyframe whose PTS is at least S after its own start; audio-only, every S. A segment
///   that reaches TARGETDURATION + 0.5 s without a keyframe (minus a 100 ms guard, so its
///   `#EXTINF` never rounds above TARGETDURATION) is cut anyway: [`SegmentEnd::Forced`].
///   Before TARGETDURATION is known the limit is 3 × S.
/// - **Sessions.** A new [`SessionId`] closes the open segment and marks the next one a
///   discontinuity; each session gets a fresh muxer (continuity counters restart) and, with
///   video, waits for its first keyframe (frames before it are skipped, counted in
///   [`skipped`](Self::skipped)).
/// - **Durations.** A segment lasts from its first frame's PTS to the next segment's first
///   PTS; a segment that ends its session (or is closed by a loss or the end) lasts until its
///   latest frame's PTS plus that frame's duration (the DTS step of its track).
/// - **Grid** ([`HlsConfig::grid`]; the variants of an ABR ladder). With a video track, cuts
///   and numbers follow the absolute PTS instants on which the transcoder forces every
///   rung's keyframes, so segment *N* of every variant covers the same time, whenever each
///   variant started: cells of L = the smallest multiple of the keyframe interval k that is
///   at least S, a keyframe cuts when it lies in a later cell than the segment's start
///   (keyframes may sit up to k / 2 off their instant), and a segment is numbered
///   `first_number` + its cell. A variant that missed cells (its encoder restarted) skips
///   their numbers; numbers still always increase (a forced cut inside a cell takes the next
///   one).
/// - **TARGETDURATION** is fixed by the first segment: `ceil(max(S, its duration))`, computed
///   on the millisecond-rounded duration the playlist prints; again by the first segment
///   after a change of S.
/// - **A new S** ([`set_segment`](Self::set_segment); `live_segment_sec` changed on a running
///   server) applies at the next frame that may start a segment (a video keyframe; audio-only,
///   the next audio frame): the open segment closes there, however short, and the next one,
///   cut with the new S, is marked a discontinuity and fixes TARGETDURATION anew. Numbers
///   continue by one; on a grid the cells take the new length and are re-anchored so the
///   first new segment gets the next number. The session, muxer and wall anchor carry on.
///   A new session that comes first (a source that restarted) takes the new S at its start,
///   under its own discontinuity: one, not two. [`HlsEvent::SegmentLength`] marks the switch
///   among the events, after the segment it closed (DASH opens a Period there).
/// - **PSI.** Every segment starts with PAT and PMT: the muxer writes them before each video
///   keyframe; a segment starting elsewhere (audio-only, forced cut) makes the muxer re-send
///   them, which bumps the PMT version.
/// - **Wall time.** Each session anchors its media time to the wall time of its first frame;
///   a segment's program date time is that anchor moved by the segment's PTS offset, so
///   consecutive dates differ exactly by `#EXTINF`. When it drifts more than 1 s from the
///   wall time passed with the segment's first frame, the anchor is reset.
/// - **Format** ([`HlsConfig::format`]). [`SegmentFormat::Auto`] picks fMP4 when the first
///   session's tracks include H.265 or Opus, else MPEG-TS, and keeps that choice for the
///   segmenter's life. With fMP4 each session's track table becomes an init segment
///   ([`HlsEvent::Init`], out before the first segment using it): `init.mp4` first, then
///   `init_<session>.mp4` when a later init differs (a codec or parameter change; a session
///   whose init is byte for byte the current one keeps it). A track the init lacks (first
///   seen later) or a keyframe with new parameter sets closes the segment and starts a new
///   init, after a discontinuity. Each segment is one `moof` + `mdat` whose `mfhd` sequence
///   number is the segment number's low 32 bits.
/// - **Parts** ([`HlsConfig::part`], fMP4 only; LL-HLS): each segment is also cut into parts,
///   each a `moof` + `mdat` of its own, so a segment's bytes are its parts' bytes in order
///   (see the `parts` module for where parts are cut).
///
/// Each segment's bytes are gathered once into a buffer sized from the previous segment.
#[derive(Debug)]
pub struct HlsSegmenter {
    /// S in 90 kHz ticks.
    segment: i64,
    /// With a grid: (L, the cell length; k / 2, how far a keyframe may sit off its instant).
    grid: Option<(i64, i64)>,
    /// The grid's keyframe interval k, to size its cells again for a new S.
    keyframe_interval: Option<i64>,
    /// A new S (ticks) that applies at the next frame that may start a segment.
    switch: Option<i64>,
    /// [`HlsConfig::first_number`]: with a grid, the number of cell 0.
    first_number: u64,
    /// The number the next segment gets (with a grid: at least).
    next_number: u64,
    /// TARGETDURATION, fixed when the first segment closes.
    target_duration: Option<u32>,
    /// The session being segmented, `None` before the first frame.
    session: Option<SessionId>,
    /// Whether a segment has been emitted yet (a session change before that is no
    /// discontinuity for any player).
    emitted: bool,
    /// The next segment opened is marked `#EXT-X-DISCONTINUITY`.
    discontinuity: bool,
    /// The TS track table of the current session, in muxer order.
    tracks: Vec<MuxTrack>,
    /// Whether the table has a video track: cut at keyframes, else every S.
    video: bool,
    /// The format segments are written in (`Auto` until the first session's tracks decide).
    format: SegmentFormat,
    /// The current session's muxer (MPEG-TS); `None` while the track table is being probed
    /// or with fMP4.
    muxer: Option<Muxer>,
    /// The current session's fMP4 writer; `None` while probing or with MPEG-TS.
    fmp4: Option<Fmp4Writer>,
    /// The last init segment published, to reuse its name for an identical one.
    last_init: Option<(InitName, Bytes)>,
    /// Inits named after the current session so far (the next one's suffix).
    fmp4_inits_in_session: u32,
    /// fMP4, probing for a new init within a session: the tracks it waits to describe.
    expected: Vec<TrackId>,
    /// The muxer has written nothing yet (it writes PAT/PMT before its first frame anyway).
    muxer_fresh: bool,
    /// Frames (with their wall times) held while the track table is probed.
    held: Vec<(Frame, UnixMillis)>,
    /// Per-track last DTS and frame duration, for the end of a session's last segment.
    timing: Vec<TrackTiming>,
    /// The segment being written.
    open: Option<OpenSegment>,
    /// The session's media-to-wall anchor: (PTS, wall time at that PTS).
    anchor: Option<(Ts90, UnixMillis)>,
    /// The size of the last segment, to reserve the next one's buffer.
    size_hint: usize,
    /// Tracks reported as not carried (reported once each, for the segmenter's life).
    omitted: Vec<TrackId>,
    /// Tracks whose frames the muxer rejected this session (first rejection reported).
    rejected: Vec<TrackId>,
    /// Frames skipped while waiting for a session's first keyframe.
    skipped: u64,
    /// Events not pulled yet.
    events: VecDeque<HlsEvent>,
    /// LL-HLS: the open part, when segments are cut into parts.
    parts: Option<parts::PartState>,
    /// DASH cutting ([`with_dash_cuts`](Self::with_dash_cuts)), when on.
    dash: Option<DashCuts>,
}

impl HlsSegmenter {
    /// A segmenter that has seen nothing yet.
    pub fn new(config: HlsConfig) -> Self {
        let segment = ticks(config.segment);
        let keyframe_interval = config.grid.map(|k| k.0).filter(|&k| k > 0);
        Self {
            segment,
            grid: keyframe_interval.map(|k| cells(segment, k)),
            keyframe_interval,
            switch: None,
            first_number: config.first_number,
            next_number: config.first_number,
            target_duration: None,
            session: None,
            emitted: false,
            discontinuity: false,
            tracks: Vec::new(),
            video: false,
            format: config.format,
            muxer: None,
            fmp4: None,
            last_init: None,
            fmp4_inits_in_session: 0,
            expected: Vec::new(),
            muxer_fresh: false,
            held: Vec::new(),
            timing: Vec::new(),
            open: None,
            anchor: None,
            size_hint: 0,
            omitted: Vec::new(),
            rejected: Vec::new(),
            skipped: 0,
            events: VecDeque::new(),
            parts: config.part.map(parts::PartState::new),
            dash: None,
        }
    }

    /// Cuts video as SPEC §DASH "Cutting" says instead of as HLS does: a segment still ends at
    /// the first IDR at or after S, but the frames from S on are held (at most `queue`
    /// frames; beyond, dropped and counted, reported once per episode with
    /// [`HlsEvent::QueueFull`]) until that IDR comes; without one within 3 × S the segment is
    /// cut at S (not drained whole, and not at TARGETDURATION + 0.5 s), and the next one,
    /// starting with the first held frame, follows the same rule. So no DASH segment is longer
    /// than S unless an IDR ends it, and `maxSegmentDuration` stays honest. Audio-only
    /// segmenters are not affected (they cut every S).
    pub fn with_dash_cuts(mut self, queue: usize) -> Self {
        let queue = queue.max(1);
        self.dash = Some(DashCuts {
            queue,
            pending: VecDeque::new(),
            dropped: 0,
            full: false,
        });
        self
    }

    /// Holds at most `queue` frames (at least 1) from now on while DASH cutting waits for an
    /// IDR (`publisher.dash.queue_frames` changed on a running server). Frames held beyond a
    /// smaller bound stay held; only new ones are dropped. Nothing without DASH cutting.
    pub fn set_dash_queue(&mut self, queue: usize) {
        if let Some(dash) = self.dash.as_mut() {
            dash.queue = queue.max(1);
        }
    }

    /// Cuts segments of at least `segment` (S) from the next frame that may start one: the
    /// open segment closes there and the next follows a discontinuity, with TARGETDURATION
    /// fixed anew by its first segment (see the type's doc, "A new S"). The S in force
    /// again, before the switch happened, cancels it.
    pub fn set_segment(&mut self, segment: std::time::Duration) {
        let segment = ticks(segment);
        self.switch = (segment != self.segment).then_some(segment);
    }

    /// Applies a pending new S from `at` on (the open segment closed already): the next
    /// segment follows a discontinuity; on a grid, the cells take the new length and the cell
    /// of `at` gets the next number.
    fn switch_segment(&mut self, at: Ts90) {
        let Some(segment) = self.switch.take() else {
            return;
        };
        self.segment = segment;
        self.target_duration = None;
        if let Some(k) = self.keyframe_interval {
            let (length, margin) = cells(segment, k);
            self.grid = Some((length, margin));
            let cell = u64::try_from((at.0 + margin).div_euclid(length)).unwrap_or(0);
            self.first_number = self.next_number.saturating_sub(cell);
        }
        if self.emitted {
            self.discontinuity = true;
        }
        self.events.push_back(HlsEvent::SegmentLength {
            segment: Ts90(segment),
            next_number: self.next_number,
        });
    }

    /// Frames dropped so far because the DASH queue was full.
    pub fn dropped(&self) -> u64 {
        self.dash.as_ref().map_or(0, |d| d.dropped)
    }

    /// Takes one frame; `wall` is when it arrived. Drain [`pull`](Self::pull) afterwards.
    pub fn push(&mut self, frame: &Frame, wall: UnixMillis) {
        if self.session != Some(frame.session) {
            self.end_session(SegmentEnd::Session);
            if self.emitted {
                self.discontinuity = true;
            }
            self.session = Some(frame.session);
            // A new S waiting for a keyframe takes this session's start: one discontinuity.
            self.switch_segment(frame.pts);
        }
        if !self.format.carries(frame.codec) {
            self.omit(frame.track, frame.codec);
            return;
        }
        if !self.writing() {
            let leading = frame.codec.kind() == MediaKind::Video
                && !frame.keyframe
                && !self.held.iter().any(|(f, _)| f.track == frame.track);
            if self.format == SegmentFormat::Fmp4 && leading {
                // No segment starts before a video keyframe, and an init needs one: not held.
                self.skipped += 1;
                return;
            }
            self.held.push((frame.clone(), wall));
            if self.probed() {
                self.start_muxer();
            }
            return;
        }
        if !self.tracks.iter().any(|t| t.track == frame.track) {
            if self.fmp4.is_some() {
                // An init cannot grow: a new one, with this track, after the open segment,
                // from a frame that describes the track (else the frame waits for one).
                if describes(frame) && !self.rejected.contains(&frame.track) {
                    self.reinit(frame, wall);
                } else {
                    self.skipped += 1;
                }
                return;
            }
            self.add_track(frame);
        }
        self.process(frame, wall);
    }

    /// Frames were lost: closes the open segment and marks the next one a discontinuity.
    pub fn discontinuity(&mut self) {
        self.flush_held();
        self.flush_pending();
        self.close(None, SegmentEnd::Loss);
        self.timing.clear();
        if self.emitted {
            self.discontinuity = true;
        }
    }

    /// The stream ended: closes the open segment (frames still held for probing included).
    pub fn finish(&mut self) {
        self.end_session(SegmentEnd::Finish);
        self.session = None;
    }

    /// The next event, or `None` when all are out.
    pub fn pull(&mut self) -> Option<HlsEvent> {
        self.events.pop_front()
    }

    /// `#EXT-X-TARGETDURATION`, once the first segment is out.
    pub fn target_duration(&self) -> Option<u32> {
        self.target_duration
    }

    /// The number the next segment will get.
    pub fn next_number(&self) -> u64 {
        self.next_number
    }

    /// Frames skipped so far while waiting for a session's first keyframe.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The format segments are written in: [`SegmentFormat::Auto`] until the first session's
    /// tracks have decided it.
    pub fn format(&self) -> SegmentFormat {
        self.format
    }

    /// Whether a muxer or an fMP4 writer takes frames (the track table is fixed).
    fn writing(&self) -> bool {
        self.muxer.is_some() || self.fmp4.is_some()
    }

    /// Reports `track` as not carried (once per track).
    fn omit(&mut self, track: TrackId, codec: Codec) {
        if !self.omitted.contains(&track) {
            self.omitted.push(track);
            self.events.push_back(HlsEvent::Omitted { track, codec });
        }
    }

    /// Whether enough has been seen to fix the track table.
    fn probed(&self) -> bool {
        let kinds = |kind| self.held.iter().any(|(f, _)| f.codec.kind() == kind);
        let (Some((first, _)), Some((last, _))) = (self.held.first(), self.held.last()) else {
            return false;
        };
        if !self.expected.is_empty() {
            // A new init: wait for a frame that describes each track of the old table and
            // the new one, within bounds.
            let ready = self.expected.iter().all(|track| {
                self.held
                    .iter()
                    .any(|(f, _)| f.track == *track && describes(f))
            });
            return ready
                || last.dts.0 - first.dts.0 >= 3 * self.segment
                || self.held.len() >= PROBE_FRAMES;
        }
        (kinds(MediaKind::Video) && kinds(MediaKind::Audio))
            || last.dts.0 - first.dts.0 >= PROBE_SPAN
            || self.held.len() >= PROBE_FRAMES
    }

    /// Builds the track table from the held frames, makes the muxer (or the fMP4 writer and
    /// its init segment) and replays them.
    fn start_muxer(&mut self) {
        let mut held = std::mem::take(&mut self.held);
        self.expected.clear();
        if self.format == SegmentFormat::Auto {
            let needs_fmp4 = held.iter().any(|(f, _)| {
                matches!(f.codec, Codec::H265 | Codec::Av1 | Codec::Vp9 | Codec::Opus)
            });
            self.format = if needs_fmp4 {
                SegmentFormat::Fmp4
            } else {
                SegmentFormat::Ts
            };
        }
        let format = self.format;
        let mut omitted = Vec::new();
        held.retain(|(frame, _)| {
            let carried = format.carries(frame.codec);
            if !carried {
                omitted.push((frame.track, frame.codec));
            }
            carried
        });
        for (track, codec) in omitted {
            self.omit(track, codec);
        }
        self.tracks.clear();
        for (frame, _) in &held {
            if !self.tracks.iter().any(|t| t.track == frame.track) {
                self.tracks.push(MuxTrack::new(frame.track, frame.codec));
            }
        }
        self.tracks
            .sort_by_key(|t| (kind_order(t.codec.kind()), t.track));
        if self.format == SegmentFormat::Fmp4 {
            self.start_fmp4(held);
            return;
        }
        self.video = self
            .tracks
            .iter()
            .any(|t| t.codec.kind() == MediaKind::Video);
        match Muxer::new(MuxerConfig {
            tracks: self.tracks.clone(),
            ..MuxerConfig::default()
        }) {
            Ok(muxer) => {
                self.muxer = Some(muxer);
                self.muxer_fresh = true;
                for (frame, wall) in held.drain(..) {
                    self.process(&frame, wall);
                }
            }
            Err(error) => {
                // The session cannot be muxed; its frames are dropped until the next one.
                let track = held.first().map_or(TrackId(0), |(f, _)| f.track);
                self.report_rejection(track, error);
                self.skipped += held.len() as u64;
            }
        }
        held.clear();
        self.held = held; // keep the allocation for the next session
    }

    /// The fMP4 side of [`start_muxer`](Self::start_muxer): describes each track from its
    /// first usable held frame (a video keyframe, an AAC frame with its configuration),
    /// publishes the init segment and replays the held frames. Tracks that cannot be
    /// described yet are left out (a refusal is reported); they start a new init when they
    /// come with what describes them.
    fn start_fmp4(&mut self, mut held: Vec<(Frame, UnixMillis)>) {
        let mut ids = Vec::with_capacity(self.tracks.len());
        let mut tracks = Vec::with_capacity(self.tracks.len());
        let mut failed = Vec::new();
        for track in &self.tracks {
            let usable = held
                .iter()
                .map(|(f, _)| f)
                .find(|f| f.track == track.track && describes(f));
            let Some(frame) = usable else {
                continue;
            };
            let id = u32::try_from(tracks.len() + 1).unwrap_or(u32::MAX);
            match Fmp4Track::from_frame(id, frame) {
                Ok(described) => {
                    ids.push(track.track);
                    tracks.push(described);
                }
                Err(error) => failed.push((track.track, error)),
            }
        }
        for (track, error) in failed {
            self.report_fmp4(track, error);
        }
        self.tracks.retain(|t| ids.contains(&t.track));
        self.video = self
            .tracks
            .iter()
            .any(|t| t.codec.kind() == MediaKind::Video);
        if tracks.is_empty() {
            self.skipped += held.len() as u64;
            held.clear();
            self.held = held;
            return;
        }
        let mut bytes = BytesMut::new();
        write_init(&tracks, &mut bytes);
        let bytes = bytes.freeze();
        let name = match &self.last_init {
            Some((name, last)) if *last == bytes => *name,
            Some(_) => {
                let session = self.session.unwrap_or(SessionId(0));
                let index = self.fmp4_inits_in_session;
                self.fmp4_inits_in_session += 1;
                InitName::Session(session, index)
            }
            None => InitName::First,
        };
        if self
            .last_init
            .as_ref()
            .is_none_or(|(last, _)| *last != name)
        {
            self.last_init = Some((name, bytes.clone()));
            self.events.push_back(HlsEvent::Init(InitSegment {
                name,
                codecs: tracks.iter().map(|t| t.codec_string().to_owned()).collect(),
                timescales: tracks.iter().map(Fmp4Track::timescale).collect(),
                bytes,
            }));
        }
        self.fmp4 = Some(Fmp4Writer {
            fragmenter: Fragmenter::new(&tracks),
            ids,
            init: name,
        });
        for (frame, wall) in held.drain(..) {
            if self.fmp4.is_none() {
                // A held frame asked for a new init: the rest is probed again after it.
                self.held.push((frame, wall));
                continue;
            }
            self.process(&frame, wall);
        }
        if self.held.is_empty() {
            self.held = held; // keep the allocation for the next session
        }
    }

    /// Starts over with a new init segment at `frame`: the open segment closes (an empty one
    /// is dropped and its number given back), the next one follows a discontinuity, and the
    /// track table is probed again from `frame` on.
    fn reinit(&mut self, frame: &Frame, wall: UnixMillis) {
        self.close(None, SegmentEnd::Session);
        self.fmp4 = None;
        self.expected.clear();
        self.expected.extend(self.tracks.iter().map(|t| t.track));
        if !self.expected.contains(&frame.track) {
            self.expected.push(frame.track);
        }
        self.tracks.clear();
        self.timing.clear();
        if self.emitted {
            self.discontinuity = true;
        }
        self.held.push((frame.clone(), wall));
    }

    /// Adds a track first seen after the table was fixed.
    fn add_track(&mut self, frame: &Frame) {
        let Some(muxer) = self.muxer.as_mut() else {
            return;
        };
        self.tracks.push(MuxTrack::new(frame.track, frame.codec));
        if let Err(error) = muxer.set_tracks(self.tracks.clone()) {
            self.tracks.pop();
            self.report_rejection(frame.track, error);
            return;
        }
        self.video |= frame.codec.kind() == MediaKind::Video;
    }

    /// Cuts if this frame begins a segment, then muxes it.
    fn process(&mut self, frame: &Frame, wall: UnixMillis) {
        let kind = frame.codec.kind();
        if self.dash.is_some()
            && self.video
            && kind == MediaKind::Video
            && let Some(start) = self.open.as_ref().map(|o| o.start)
            && self.dash_hold(frame, wall, start)
        {
            return;
        }
        let starts = if self.video {
            kind == MediaKind::Video && frame.keyframe
        } else {
            kind == MediaKind::Audio
        };
        if starts && self.switch.is_some() {
            self.flush_pending();
            let end = if self.video {
                SegmentEnd::Keyframe
            } else {
                SegmentEnd::Interval
            };
            self.close(Some(frame.pts), end);
            self.switch_segment(frame.pts);
        }
        match self.open.as_ref().map(|o| o.start) {
            None if !starts => {
                self.skipped += 1;
                return;
            }
            None => self.open_segment(frame, wall),
            Some(start) => {
                let elapsed = frame.pts.0 - start.0;
                let next = match self.cell_grid() {
                    Some(_) => self.cell(frame.pts) > self.cell(start),
                    None => elapsed >= self.segment,
                };
                let mut end = None;
                if starts && next {
                    end = Some(if self.video {
                        SegmentEnd::Keyframe
                    } else {
                        SegmentEnd::Interval
                    });
                } else if kind != MediaKind::Data && elapsed + FORCED_GUARD >= self.forced_limit() {
                    end = Some(SegmentEnd::Forced);
                }
                if let Some(end) = end {
                    self.close(Some(frame.pts), end);
                    self.open_segment(frame, wall);
                } else {
                    self.cut_part(frame);
                }
            }
        }
        self.mux(frame, wall);
    }

    /// DASH cutting: holds `frame` (true) while the open segment, started at `start`, waits
    /// for an IDR past S, and cuts at S when none came within 3 × S; false lets the frame
    /// take the HLS path (an IDR that cuts, after the held frames, or a frame before S).
    fn dash_hold(&mut self, frame: &Frame, wall: UnixMillis, start: Ts90) -> bool {
        let elapsed = frame.pts.0 - start.0;
        let next = match self.cell_grid() {
            Some(_) => self.cell(frame.pts) > self.cell(start),
            None => elapsed >= self.segment,
        };
        if frame.keyframe && next {
            self.flush_pending();
            return false;
        }
        let segment = self.segment;
        let Some(dash) = self.dash.as_mut() else {
            return false;
        };
        if elapsed < segment && dash.pending.is_empty() {
            return false;
        }
        if dash.pending.len() >= dash.queue {
            dash.dropped += 1;
            if !dash.full {
                dash.full = true;
                let limit = dash.queue;
                self.events.push_back(HlsEvent::QueueFull {
                    track: frame.track,
                    limit,
                });
            }
        } else {
            dash.pending.push_back((frame.clone(), wall));
        }
        // No IDR within 3 × S of the open segment's start: cut it at S, the first held frame
        // starting the next, which takes the held frames up to its own S.
        while let Some(open_start) = self.open.as_ref().map(|o| o.start)
            && frame.pts.0 - open_start.0 >= 3 * segment
            && let Some((first, first_wall)) =
                self.dash.as_mut().and_then(|d| d.pending.pop_front())
        {
            self.close(Some(first.pts), SegmentEnd::Forced);
            self.open_segment(&first, first_wall);
            self.mux(&first, first_wall);
            while let Some(dash) = self.dash.as_mut()
                && dash
                    .pending
                    .front()
                    .is_some_and(|(f, _)| f.pts.0 - first.pts.0 < segment)
                && let Some((held, held_wall)) = dash.pending.pop_front()
            {
                self.mux(&held, held_wall);
            }
        }
        if let Some(dash) = self.dash.as_mut()
            && dash.pending.is_empty()
        {
            dash.full = false;
        }
        true
    }

    /// Writes the frames DASH cutting holds into the open segment.
    fn flush_pending(&mut self) {
        let Some(dash) = self.dash.as_mut() else {
            return;
        };
        if dash.pending.is_empty() {
            return;
        }
        let mut pending = std::mem::take(&mut dash.pending);
        for (frame, wall) in pending.drain(..) {
            self.mux(&frame, wall);
        }
        if let Some(dash) = self.dash.as_mut() {
            // The queue keeps its capacity for the next wait.
            dash.pending = pending;
            dash.full = false;
        }
    }

    /// The grid, when segments follow it: with a video track only.
    fn cell_grid(&self) -> Option<(i64, i64)> {
        self.grid.filter(|_| self.video)
    }

    /// The grid cell `pts` lies in (0 without a grid).
    fn cell(&self, pts: Ts90) -> i64 {
        self.cell_grid()
            .map_or(0, |(length, margin)| (pts.0 + margin).div_euclid(length))
    }

    /// The elapsed PTS at which a segment without a keyframe is cut.
    fn forced_limit(&self) -> i64 {
        match self.target_duration {
            Some(target) => i64::from(target) * Ts90::HZ + Ts90::HZ / 2,
            None => 3 * self.segment,
        }
    }

    /// Opens a segment whose first frame is `frame`.
    fn open_segment(&mut self, frame: &Frame, wall: UnixMillis) {
        let program_date_time = match self.anchor {
            Some((pts, at)) if ((at + (frame.pts - pts)).0 - wall.0).abs() <= MAX_WALL_DRIFT_MS => {
                at + (frame.pts - pts)
            }
            _ => {
                self.anchor = Some((frame.pts, wall));
                wall
            }
        };
        let independent = frame.codec.kind() == MediaKind::Video && frame.keyframe;
        if !independent
            && !self.muxer_fresh
            && let Some(muxer) = self.muxer.as_mut()
        {
            // Re-sending the table makes the muxer write PAT/PMT before this frame.
            if let Err(error) = muxer.set_tracks(self.tracks.clone()) {
                self.report_rejection(frame.track, error);
            }
        }
        let number = match self.cell_grid() {
            Some(_) => {
                let cell = u64::try_from(self.cell(frame.pts)).unwrap_or(0);
                self.first_number.saturating_add(cell).max(self.next_number)
            }
            None => self.next_number,
        };
        self.next_number = number + 1;
        self.open = Some(OpenSegment {
            number,
            init: self.fmp4.as_ref().map(|w| w.init),
            session: frame.session,
            start: frame.pts,
            end: frame.pts,
            discontinuity: std::mem::take(&mut self.discontinuity),
            program_date_time,
            bytes: BytesMut::with_capacity(self.size_hint + self.size_hint / 4),
        });
        self.start_parts(frame);
    }

    /// Writes `frame` into the open segment and extends the segment's end.
    fn mux(&mut self, frame: &Frame, wall: UnixMillis) {
        let mut rejected = None;
        if let Some(writer) = self.fmp4.as_mut() {
            if self.open.is_none() {
                return;
            }
            let Some(index) = writer.ids.iter().position(|t| *t == frame.track) else {
                return;
            };
            match writer.fragmenter.push(index, frame) {
                Ok(()) => {}
                Err(Fmp4Error::ConfigChanged { .. }) => {
                    self.reinit(frame, wall);
                    return;
                }
                Err(error) => {
                    self.report_fmp4(frame.track, error);
                    return;
                }
            }
        } else {
            let (Some(muxer), Some(open)) = (self.muxer.as_mut(), self.open.as_mut()) else {
                return;
            };
            muxer.push(frame);
            self.muxer_fresh = false;
            while let Some(item) = muxer.pull() {
                match item {
                    Ok(packets) => open.bytes.extend_from_slice(&packets),
                    Err(error) => rejected = Some(error),
                }
            }
        }
        let Some(open) = self.open.as_mut() else {
            return;
        };
        let step = match self.timing.iter_mut().find(|t| t.track == frame.track) {
            Some(timing) => {
                let step = frame.dts.0 - timing.last_dts;
                if step > 0 {
                    timing.step = step;
                }
                timing.last_dts = frame.dts.0;
                timing.step
            }
            None => {
                self.timing.push(TrackTiming {
                    track: frame.track,
                    last_dts: frame.dts.0,
                    step: 0,
                });
                0
            }
        };
        if rejected.is_none() {
            open.end = open.end.max(Ts90(frame.pts.0 + step));
        }
        if let Some(error) = rejected {
            self.report_rejection(frame.track, error);
        }
    }

    /// Closes the open segment, if any. `next_start` is the first PTS of the segment that
    /// follows in the same session; without one the segment lasts to its end.
    fn close(&mut self, next_start: Option<Ts90>, end: SegmentEnd) {
        let Some(mut open) = self.open.take() else {
            return;
        };
        // The mfhd sequence number: the segment number's low 32 bits (they increase by one
        // per segment, which is what a player checks); with parts, one per part.
        let sequence = self.part_sequence(open.number);
        if let Some(writer) = self.fmp4.as_mut() {
            writer.fragmenter.write(sequence, &mut open.bytes);
            if open.bytes.is_empty() {
                // Nothing was written (every frame refused): no segment, the number is free.
                self.next_number = open.number;
                self.discontinuity |= open.discontinuity;
                return;
            }
        }
        let duration = Ts90((next_start.unwrap_or(open.end) - open.start).0.max(0));
        let target_duration = *self.target_duration.get_or_insert_with(|| {
            let longest = millis_rounded(duration).max(millis_rounded(Ts90(self.segment)));
            u32::try_from((longest + 999) / 1000).unwrap_or(u32::MAX)
        });
        self.final_part(&open, duration);
        self.size_hint = open.bytes.len();
        self.emitted = true;
        self.events.push_back(HlsEvent::Segment(Segment {
            number: open.number,
            init: open.init,
            session: open.session,
            start: open.start,
            duration,
            discontinuity: open.discontinuity,
            program_date_time: open.program_date_time,
            target_duration,
            end,
            bytes: open.bytes.freeze(),
        }));
    }

    /// Ends the current session: fixes the table of held frames, closes the open segment and
    /// forgets the session's muxer, table and timing.
    fn end_session(&mut self, end: SegmentEnd) {
        self.flush_held();
        self.flush_pending();
        self.close(None, end);
        self.muxer = None;
        self.fmp4 = None;
        self.fmp4_inits_in_session = 0;
        self.expected.clear();
        self.tracks.clear();
        self.video = false;
        self.timing.clear();
        self.anchor = None;
        self.rejected.clear();
    }

    /// Muxes frames still held for probing, with the table they give.
    fn flush_held(&mut self) {
        if !self.writing() && !self.held.is_empty() {
            self.start_muxer();
        }
    }

    fn report_fmp4(&mut self, track: TrackId, error: Fmp4Error) {
        if self.rejected.contains(&track) {
            return;
        }
        self.rejected.push(track);
        self.events.push_back(HlsEvent::Unwritable { track, error });
    }

    fn report_rejection(&mut self, track: TrackId, error: tributary_mpegts::Error) {
        if self.rejected.contains(&track) {
            return;
        }
        self.rejected.push(track);
        self.events.push_back(HlsEvent::Rejected { track, error });
    }
}

/// The segment being written.
#[derive(Debug)]
struct OpenSegment {
    number: u64,
    /// fMP4: the init its samples are described by.
    init: Option<InitName>,
    session: SessionId,
    /// PTS of the first frame.
    start: Ts90,
    /// The latest PTS + frame duration seen: the end if the session ends here.
    end: Ts90,
    discontinuity: bool,
    program_date_time: UnixMillis,
    bytes: BytesMut,
}

/// DASH cutting's state.
#[derive(Debug)]
struct DashCuts {
    /// The most frames held.
    queue: usize,
    /// Video frames from S on, held while an IDR may still end the segment.
    pending: VecDeque<(Frame, UnixMillis)>,
    /// Frames dropped because `pending` was full.
    dropped: u64,
    /// Whether the current episode of a full queue was reported.
    full: bool,
}

/// Timing of one track within the session.
#[derive(Debug, Clone, Copy)]
struct TrackTiming {
    track: TrackId,
    last_dts: i64,
    /// The last positive DTS step: the track's frame duration.
    step: i64,
}

/// The fMP4 writer of one session.
#[derive(Debug)]
struct Fmp4Writer {
    /// The tracks of the init, in its order (index = fragmenter track).
    ids: Vec<TrackId>,
    /// The open segment's samples.
    fragmenter: Fragmenter,
    /// The init segment they are described by.
    init: InitName,
}

/// Whether `frame` can describe its track in an init: a video keyframe (it carries the
/// parameter sets), any other frame.
fn describes(frame: &Frame) -> bool {
    frame.codec.kind() != MediaKind::Video || frame.keyframe
}

/// S in 90 kHz ticks, at least [`MIN_SEGMENT`].
fn ticks(segment: std::time::Duration) -> i64 {
    Ts90::from_duration(segment).0.max(MIN_SEGMENT)
}

/// The grid of keyframe interval `k` (ticks) for segments of at least `segment`: (L, the
/// smallest multiple of k at least S; k / 2).
fn cells(segment: i64, k: i64) -> (i64, i64) {
    let count = (segment + k - 1) / k;
    (k * count.max(1), k / 2)
}

/// Video first, then audio, then data.
fn kind_order(kind: MediaKind) -> u8 {
    match kind {
        MediaKind::Video => 0,
        MediaKind::Audio => 1,
        MediaKind::Data => 2,
    }
}

/// How long (DTS) tracks are probed at a session's start when not both video and audio have
/// shown up: 1 s, the timeline's seed hold.
const PROBE_SPAN: i64 = Ts90::HZ;
/// How many frames are held at most while probing.
const PROBE_FRAMES: usize = 256;
/// A forced cut happens this much before TARGETDURATION + 0.5 s, so that the segment's
/// duration (up to the next frame's PTS) stays below it with frames up to 100 ms apart.
const FORCED_GUARD: i64 = Ts90::HZ / 10;
/// The smallest S: 1 ms.
const MIN_SEGMENT: i64 = 90;
/// How far a session's derived program date time may drift from the wall time before the
/// anchor is reset.
const MAX_WALL_DRIFT_MS: i64 = 1000;

mod output;
mod parts;
#[cfg(test)]
mod tests;
