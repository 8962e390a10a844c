//! The timeline normaliser (SPEC §Timeline): source timestamps in, monotonic output timestamps
//! out.
//!
//! Every hub buffer has one writer, and every writer runs one [`Timeline`]. Whatever input is
//! selected, restarted, looped or switched, the frames that leave the normaliser carry output
//! DTS that strictly increase per track and are never negative, PTS at or after DTS, and the
//! [`SessionId`] of the continuous run they belong to. Consumers never re-normalise.
//!
//! The model, in three parts:
//!
//! - **Sessions.** The caller starts one on every boundary it knows of (fresh start, reconnect,
//!   failover, ...); the normaliser starts one itself when the source timeline breaks
//!   ([`SessionReason::TimelineJump`]). Ids come from a process-wide [`SessionIds`].
//! - **Seeding.** Within a session each track is mapped by an offset, `output = source + map`.
//!   The first track is held (up to 1000 ms) for a partner, so that both are mapped jointly and
//!   keep their real source offset (lip sync); late tracks join by the partner's clock.
//! - **Steady state.** Output follows source DTS; a hard re-anchor to elapsed wall time repairs
//!   output that would go backwards or drifts too far ahead or behind, shifting the partner on
//!   a forward move so lip sync holds. Frames are never dropped.
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! use bytes::Bytes;
//! use tributary_media::timeline::{SessionIds, SessionReason, Timeline};
//! use tributary_media::{Codec, Frame, SessionId, TrackId, Ts90};
//!
//! # #[allow(clippy::disallowed_methods)]
//! let origin = Instant::now(); // in the hub: the writer's creation instant
//! let mut timeline = Timeline::new(origin, SessionIds::new());
//! let session = timeline.start_session(SessionReason::Fresh, origin);
//!
//! let frame = |track: u16, codec: Codec, dts: i64| Frame {
//!     track: TrackId(track),
//!     codec,
//!     pts: Ts90(dts),
//!     dts: Ts90(dts),
//!     keyframe: true,
//!     session: SessionId(0),
//!     arrival: origin,
//!     payload: Bytes::from_static(b"au"),
//!     config: None,
//! };
//! // A camera whose clock reads 1 hour: video is held until audio arrives...
//! timeline.push(frame(0, Codec::H264, 324_000_000), origin);
//! assert!(timeline.pull().is_none());
//! timeline.push(frame(1, Codec::Aac, 324_000_000), origin + Duration::from_millis(10));
//! // ...then both start at the output position, 0 s after the origin, in sync.
//! let video = timeline.pull().unwrap();
//! let audio = timeline.pull().unwrap();
//! assert_eq!((video.dts, audio.dts), (Ts90(0), Ts90(0)));
//! assert_eq!(video.session, session);
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{Frame, MediaKind, SessionId, TrackId, Ts90};

/// The timeline normaliser of one buffer: a pure push/pull transformer with one timer.
///
/// # Call order
///
/// The writer that owns it follows one loop (ARCHITECTURE.md §6):
///
/// 1. [`start_session`](Self::start_session) whenever a new timeline begins for a reason the
///    writer knows (fresh, reconnect, failover, config change, stall recovery, mixer cycle),
///    *before* pushing the first frame of that timeline. A push with no session yet starts a
///    [`SessionReason::Fresh`] one.
/// 2. [`push`](Self::push) each frame of the selected input, in arrival order, with `now`.
/// 3. Drain [`pull`](Self::pull) until `None` after every `push`, `start_session` and
///    `handle_timeout`: a call may release many frames at once (a held track) or none.
/// 4. Re-arm the single timer from [`poll_timeout`](Self::poll_timeout) after every call; when
///    it fires, call [`handle_timeout`](Self::handle_timeout) and drain again. A push after the
///    deadline handles the expiry itself, so a late timer is harmless.
///
/// `now` should not go backwards between calls; if it does, elapsed time is clamped at its
/// origin and nothing panics.
///
/// # Output ordering
///
/// Every pushed frame comes out exactly once (nothing is dropped, not even for being ahead).
/// Per track, frames come out in push order with strictly increasing, non-negative DTS and
/// PTS ≥ DTS. Session ids on pulled frames never decrease. Frames of different tracks may be
/// reordered by the seed hold (the held track is released in one go).
///
/// # Left to the caller
///
/// When to start a session (except `timeline_jump`, detected here), and all logging: compare
/// [`session`](Self::session) before and after a call to see a new session and its
/// [`reason`](Self::reason); [`reanchors`](Self::reanchors) counts hard re-anchors so the
/// caller can log the first and then every 50th. The thresholds are private constants, not
/// settings.
///
/// # Session ids
///
/// Ids must increase across the whole process, and L0 has no global state, so the caller hands
/// in a [`SessionIds`] at construction: one per process, cloned into every writer. The
/// normaliser takes every id it stamps from it, for the caller's sessions and its own
/// `timeline_jump` ones alike, so ids can never go backwards.
#[derive(Debug)]
pub struct Timeline {
    /// Wall-clock origin of the output timeline. Kept for the buffer's life, across sessions, so
    /// output stays monotonic over reconnects, loops and switches, and stays near wall time.
    origin: Instant,
    /// The process-wide id allocator every session id is taken from.
    ids: SessionIds,
    /// The current session and why it began; `None` until the first one.
    session: Option<(SessionId, SessionReason)>,
    /// Seed state of the current session: nothing yet, first track held, or mapped.
    seed: Seed,
    /// Every track ever seen. A handful per buffer, so a linear search beats a map.
    tracks: Vec<Track>,
    /// Mapped frames waiting for `pull`.
    out: VecDeque<Frame>,
    /// Hard re-anchors since construction.
    reanchors: u64,
}

impl Timeline {
    /// A normaliser whose output time 0 is `origin` (the writer's creation instant), taking
    /// session ids from `ids`.
    pub fn new(origin: Instant, ids: SessionIds) -> Self {
        Self {
            origin,
            ids,
            session: None,
            seed: Seed::Empty,
            tracks: Vec::new(),
            out: VecDeque::new(),
            reanchors: 0,
        }
    }

    /// Begins a new session for `reason` and returns its id. Frames pushed from now on belong
    /// to it.
    ///
    /// A track still held for its partner is seeded alone first and released in the old
    /// session, so drain [`pull`](Self::pull) afterwards. Source clocks are forgotten (the next
    /// source may be anything); the output position is kept.
    pub fn start_session(&mut self, reason: SessionReason, now: Instant) -> SessionId {
        self.begin(reason, now)
    }

    /// Takes one frame of the selected input, with source PTS/DTS (unwrapped 64-bit or raw
    /// 33-bit values; both work) and the instant it reached the writer (`now`, which is also
    /// the arrival time the jump check compares against).
    ///
    /// If the track's source DTS steps back more than 500 ms, or forward more than 2 s beyond
    /// the arrival step, this frame opens a [`SessionReason::TimelineJump`] session. Smaller
    /// steps back stay in the session and are repaired by a hard re-anchor.
    pub fn push(&mut self, mut frame: Frame, now: Instant) {
        self.handle_timeout(now);
        if self.session.is_none() {
            self.begin(SessionReason::Fresh, now);
        }
        let idx = self.track_index(frame.track);
        let (src, composition) = self.unwrap(idx, frame.dts.0, frame.pts.0);

        if let Some(cur) = &self.tracks[idx].cur {
            let back = cur.last_src.saturating_sub(src);
            let forward = src
                .saturating_sub(cur.last_src)
                .saturating_sub(ticks(now.saturating_duration_since(cur.last_arrival)));
            if back > BACK_TOLERANCE || forward > JUMP {
                self.begin_jump(now);
            }
        }
        let map = self.tracks[idx].cur.and_then(|cur| cur.map);
        self.tracks[idx].cur = Some(TrackSession {
            last_src: src,
            last_arrival: now,
            map,
        });
        frame.dts = Ts90(src);
        frame.pts = Ts90(src.saturating_add(composition));

        match &mut self.seed {
            Seed::Empty => {
                self.seed = Seed::Holding {
                    track: frame.track,
                    since: now,
                    first_src: src,
                    frames: VecDeque::from([frame]),
                };
            }
            Seed::Holding { track, frames, .. } if *track == frame.track => {
                frames.push_back(frame);
                if frames.len() >= HOLD_MAX_FRAMES {
                    self.seed_alone(now);
                }
            }
            Seed::Holding { .. } => {
                self.seed_jointly(idx, src, now);
                self.emit(idx, frame, now);
            }
            Seed::Seeded => {
                if map.is_none() {
                    self.join_late(idx, src, now);
                }
                self.emit(idx, frame, now);
            }
        }
    }

    /// The next frame with output timestamps and session, if any.
    pub fn pull(&mut self) -> Option<Frame> {
        self.out.pop_front()
    }

    /// Seeds a held track alone once its 1000 ms hold has run out.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|deadline| now >= deadline) {
            self.seed_alone(now);
        }
    }

    /// When the held track's wait for its partner ends, if a track is held.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.seed {
            Seed::Holding { since, .. } => Some(*since + HOLD),
            Seed::Empty | Seed::Seeded => None,
        }
    }

    /// The current session, once one has begun.
    pub fn session(&self) -> Option<SessionId> {
        self.session.map(|(id, _)| id)
    }

    /// Why the current session began, for the caller's log line.
    pub fn reason(&self) -> Option<SessionReason> {
        self.session.map(|(_, reason)| reason)
    }

    /// Hard re-anchors since construction (output would have gone backwards, or drifted more
    /// than 2 s ahead or 3 s behind wall time).
    pub fn reanchors(&self) -> u64 {
        self.reanchors
    }

    /// Starts a session the caller asked for: source clocks are forgotten.
    fn begin(&mut self, reason: SessionReason, now: Instant) -> SessionId {
        self.flush(now);
        for track in &mut self.tracks {
            track.unwrap = None;
            track.cur = None;
            track.emitted_src = None;
        }
        self.open(reason)
    }

    /// Starts a `timeline_jump` session: same source, so the wrap state is kept.
    fn begin_jump(&mut self, now: Instant) {
        self.flush(now);
        for track in &mut self.tracks {
            track.cur = None;
            track.emitted_src = None;
        }
        self.open(SessionReason::TimelineJump);
    }

    /// Seeds a held track alone, so its frames leave in the session they arrived in.
    fn flush(&mut self, now: Instant) {
        if matches!(self.seed, Seed::Holding { .. }) {
            self.seed_alone(now);
        }
    }

    fn open(&mut self, reason: SessionReason) -> SessionId {
        let id = self.ids.next();
        self.session = Some((id, reason));
        self.seed = Seed::Empty;
        id
    }

    fn track_index(&mut self, id: TrackId) -> usize {
        if let Some(idx) = self.tracks.iter().position(|t| t.id == id) {
            return idx;
        }
        self.tracks.push(Track {
            id,
            last_out: None,
            step: 1,
            unwrap: None,
            cur: None,
            emitted_src: None,
            src_step: 0,
        });
        self.tracks.len() - 1
    }

    /// Unwraps a frame's source DTS (SPEC: add 2^33 when DTS falls more than half a period
    /// below the last; the same rule on every track) and returns it with the composition offset
    /// (PTS − DTS, itself corrected for a wrap between the two).
    fn unwrap(&mut self, idx: usize, dts: i64, pts: i64) -> (i64, i64) {
        let raw = dts.clamp(-MAX_SOURCE, MAX_SOURCE);
        let mut composition = pts.clamp(-MAX_SOURCE, MAX_SOURCE) - raw;
        if composition > HALF_WRAP {
            composition -= Ts90::WRAP_33;
        } else if composition < -HALF_WRAP {
            composition += Ts90::WRAP_33;
        }

        let (wrap, src) = match self.tracks[idx].unwrap {
            Some(state) => {
                let mut wrap = state.wrap;
                let mut src = raw.saturating_add(wrap);
                if src < state.last.saturating_sub(HALF_WRAP) {
                    wrap = wrap.saturating_add(Ts90::WRAP_33);
                    src = raw.saturating_add(wrap);
                }
                (wrap, src)
            }
            // A track's first frame on this source: put it in the same wrap period as a track
            // already running on the same clock, so a late track is not mistaken for another
            // clock just because the other one has already wrapped.
            None => {
                let reference = self
                    .tracks
                    .iter()
                    .find_map(|t| t.unwrap.map(|state| state.last));
                match reference {
                    Some(last) if (0..Ts90::WRAP_33).contains(&raw) => {
                        let near = Ts90::unwrap_33(raw as u64, Ts90(last)).0;
                        if (near - last).abs() <= SAME_CLOCK {
                            (near - raw, near)
                        } else {
                            (0, raw)
                        }
                    }
                    _ => (0, raw),
                }
            }
        };
        let src = src.clamp(-MAX_UNWRAPPED, MAX_UNWRAPPED);
        self.tracks[idx].unwrap = Some(Unwrap { wrap, last: src });
        (src, composition)
    }

    /// Seeds the held track alone at the output position of the session's start.
    fn seed_alone(&mut self, now: Instant) {
        let Seed::Holding {
            track,
            since,
            first_src,
            frames,
        } = std::mem::replace(&mut self.seed, Seed::Seeded)
        else {
            return;
        };
        let position = self.position(since);
        let idx = self.track_index(track);
        self.set_map(idx, position.saturating_sub(first_src));
        for frame in frames {
            self.emit(idx, frame, now);
        }
    }

    /// Seeds the held track and its partner (track `partner`, first source DTS `partner_src`)
    /// together: on one clock, the earlier anchors at the output position and the other keeps
    /// the real source offset; on independent clocks, both anchor at the output position.
    fn seed_jointly(&mut self, partner: usize, partner_src: i64, now: Instant) {
        let Seed::Holding {
            track,
            since,
            first_src,
            frames,
        } = std::mem::replace(&mut self.seed, Seed::Seeded)
        else {
            return;
        };
        let position = self.position(since);
        let held = self.track_index(track);
        if (partner_src.saturating_sub(first_src)).abs() <= SAME_CLOCK {
            let map = position.saturating_sub(first_src.min(partner_src));
            self.set_map(held, map);
            self.set_map(partner, map);
        } else {
            self.set_map(held, position.saturating_sub(first_src));
            self.set_map(partner, position.saturating_sub(partner_src));
        }
        for frame in frames {
            self.emit(held, frame, now);
        }
    }

    /// Maps a track whose first frame of the session (source DTS `src`) comes after the seed,
    /// by its partner: the seeded track at the live edge.
    fn join_late(&mut self, idx: usize, src: i64, now: Instant) {
        let partner = self
            .tracks
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != idx)
            .filter_map(|(_, t)| {
                let cur = t.cur?;
                Some((t.last_out?, cur.last_src, cur.map?))
            })
            .max_by_key(|(last_out, _, _)| *last_out);
        let map = match partner {
            Some((edge, partner_src, partner_map))
                if (src.saturating_sub(partner_src)).abs() <= SAME_CLOCK =>
            {
                if edge.saturating_sub(src.saturating_add(partner_map)) > SNAP {
                    // More than a second behind its partner: join at the partner's live edge.
                    edge.saturating_sub(src)
                } else {
                    partner_map
                }
            }
            // Independent clocks (or no partner): anchor at arrival wall time.
            _ => {
                let track = &self.tracks[idx];
                let next = track
                    .last_out
                    .map_or(0, |last| last.saturating_add(track.step));
                self.elapsed(now).max(next).saturating_sub(src)
            }
        };
        self.set_map(idx, map);
    }

    /// Maps one frame (source DTS/PTS in `frame`) of a mapped track to output time, re-anchoring
    /// first if needed, and queues it.
    fn emit(&mut self, idx: usize, mut frame: Frame, now: Instant) {
        let src = frame.dts.0;
        let composition = frame.pts.0.saturating_sub(src);
        let elapsed = self.elapsed(now);
        let last = self.tracks[idx].last_out;
        let mut map = self.tracks[idx].cur.and_then(|cur| cur.map).unwrap_or(0);
        let mut dts = src.saturating_add(map);

        let floor = last.map_or(elapsed, |last| last.max(elapsed));
        let drift = dts.saturating_sub(floor);
        // An audio frame at or just after the previous one at the source (ffmpeg's
        // `-stream_loop` restarts audio one tick after the previous frame, FLV's millisecond
        // clock at the same time) would put two frames a tick apart, which decoders report as
        // non-monotonic once rescaled to the sample rate: repaired like a step back. Judged
        // here, per emitted frame, so frames held for a partner are judged in their own order.
        let track = &mut self.tracks[idx];
        let src_step = track.emitted_src.map(|prev| src - prev);
        let overlap = frame.codec.kind() == MediaKind::Audio
            && src_step.is_some_and(|step| step >= 0 && step < track.src_step / 2);
        if let Some(step) = src_step.filter(|step| *step > 0) {
            track.src_step = step;
        }
        track.emitted_src = Some(src);
        let backwards = overlap || dts < 0 || last.is_some_and(|last| dts < last);
        if backwards || !(-BEHIND..=AHEAD).contains(&drift) {
            // At least last output + 1 tick (SPEC); we take one frame duration, so a source that
            // overlaps itself keeps its frame spacing.
            let step = self.tracks[idx].step;
            let target = last.map_or(elapsed, |last| last.saturating_add(step).max(elapsed));
            let shift = target.saturating_sub(dts);
            map = map.saturating_add(shift);
            dts = target;
            self.reanchors += 1;
            if shift > 0 {
                // A forward move: take the partner along, so lip sync holds.
                for (i, track) in self.tracks.iter_mut().enumerate() {
                    if let Some(cur) = track.cur.as_mut().filter(|_| i != idx) {
                        cur.map = cur.map.map(|m| m.saturating_add(shift));
                    }
                }
            }
            self.set_map(idx, map);
        }
        if let Some(last) = last.filter(|last| dts <= *last) {
            dts = last.saturating_add(1);
        }
        let dts = dts.max(0);
        let pts = dts.saturating_add(composition).max(dts);

        let track = &mut self.tracks[idx];
        if let Some(last) = track.last_out {
            track.step = dts.saturating_sub(last).clamp(1, MAX_STEP);
        }
        track.last_out = Some(dts);
        frame.dts = Ts90(dts);
        frame.pts = Ts90(pts);
        if let Some((id, _)) = self.session {
            frame.session = id;
        }
        self.out.push_back(frame);
    }

    fn set_map(&mut self, idx: usize, map: i64) {
        if let Some(cur) = self.tracks[idx].cur.as_mut() {
            cur.map = Some(map);
        }
    }

    /// Where a session that began at `at` starts on the output timeline: at elapsed wall time,
    /// but after every track's last frame (plus that track's last frame duration, so the last
    /// frame before a boundary keeps a plausible duration).
    fn position(&self, at: Instant) -> i64 {
        self.tracks
            .iter()
            .filter_map(|t| t.last_out.map(|last| last.saturating_add(t.step)))
            .fold(self.elapsed(at), i64::max)
    }

    /// Wall time since the origin, in 90 kHz ticks.
    fn elapsed(&self, now: Instant) -> i64 {
        ticks(now.saturating_duration_since(self.origin))
    }
}

/// Why a timeline session began (SPEC §Timeline "Sessions").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionReason {
    /// The buffer's first input started.
    Fresh,
    /// The active input reconnected.
    Reconnect,
    /// The active input changed (failover, failback, manual switch, recovery).
    Failover,
    /// A mixer input dropped out or rejoined.
    MixerCycle,
    /// New parameter sets, sample rate or codec.
    ConfigChange,
    /// The input wrote nothing for 15 s, then resumed.
    StallRecovery,
    /// The source timeline broke: DTS went backwards or jumped more than 2 s against arrival
    /// time. The only reason the normaliser detects itself.
    TimelineJump,
}

impl SessionReason {
    /// The snake-case name used in logs and events (`fresh`, `timeline_jump`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Reconnect => "reconnect",
            Self::Failover => "failover",
            Self::MixerCycle => "mixer_cycle",
            Self::ConfigChange => "config_change",
            Self::StallRecovery => "stall_recovery",
            Self::TimelineJump => "timeline_jump",
        }
    }
}

impl fmt::Display for SessionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The process-wide allocator of [`SessionId`]s: a shared counter.
///
/// Create one per process and clone it into every writer; clones share the counter, so ids
/// increase across every buffer. The first id is 1.
#[derive(Debug, Clone, Default)]
pub struct SessionIds(Arc<AtomicU64>);

impl SessionIds {
    /// A fresh allocator (first id 1).
    pub fn new() -> Self {
        Self::default()
    }

    /// The next id, greater than every id this allocator (or a clone) gave before.
    pub fn next(&self) -> SessionId {
        SessionId(self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// Seed state of the current session.
#[derive(Debug)]
enum Seed {
    /// No frame yet in this session.
    Empty,
    /// The session's first track, held for its partner.
    Holding {
        /// The held track.
        track: TrackId,
        /// When its first frame arrived: the hold deadline, and the session's output position.
        since: Instant,
        /// Its first source DTS.
        first_src: i64,
        /// Its frames, source DTS/PTS in place.
        frames: VecDeque<Frame>,
    },
    /// At least one track is mapped; others join late.
    Seeded,
}

/// What the normaliser knows of one track.
#[derive(Debug)]
struct Track {
    id: TrackId,
    /// The last output DTS, kept across sessions: the floor for the next one.
    last_out: Option<i64>,
    /// The last output frame step (1 tick to 1 s), so a session boundary keeps it.
    step: i64,
    /// Unwrapping state on the current source; cleared by a caller's session.
    unwrap: Option<Unwrap>,
    /// State in the current session; `None` until the track's first frame in it.
    cur: Option<TrackSession>,
    /// The source DTS of the track's last emitted frame in the current session; cleared with
    /// `cur`, since a new session's source clock may be anything.
    emitted_src: Option<i64>,
    /// The last positive source DTS step: an audio step under half of it is an overlap.
    src_step: i64,
}

#[derive(Debug, Clone, Copy)]
struct Unwrap {
    /// Added to the raw DTS: a multiple of 2^33.
    wrap: i64,
    /// The last unwrapped source DTS.
    last: i64,
}

#[derive(Debug, Clone, Copy)]
struct TrackSession {
    /// The last source DTS (unwrapped), for jump detection.
    last_src: i64,
    /// When that frame arrived.
    last_arrival: Instant,
    /// `output = source + map`; `None` while the track is held.
    map: Option<i64>,
}

fn ticks(duration: Duration) -> i64 {
    Ts90::from_duration(duration).0
}

const fn ms(millis: i64) -> i64 {
    millis * 90
}

/// How long the first track of a session waits for its partner.
const HOLD: Duration = Duration::from_millis(1000);
/// Frames held at most; a source that bursts more than this without a partner seeds alone.
const HOLD_MAX_FRAMES: usize = 1024;
/// A late track more than this behind its partner joins at the partner's live edge.
const SNAP: i64 = ms(1000);
/// Source DTS within this of each other are taken to be on the same clock.
const SAME_CLOCK: i64 = ms(5000);
/// A source DTS step this much larger than the arrival step is a timeline jump.
const JUMP: i64 = ms(2000);
/// A source DTS step back by more than this is a timeline jump; smaller steps back are muxer
/// jitter, repaired by a re-anchor within the session.
const BACK_TOLERANCE: i64 = ms(500);
/// Drift above this (output ahead of wall time and of the last output) re-anchors.
const AHEAD: i64 = ms(2000);
/// Drift below minus this (output behind wall time) re-anchors.
const BEHIND: i64 = ms(3000);
/// The longest frame step remembered for a session boundary.
const MAX_STEP: i64 = ms(1000);
/// Half a 33-bit period: a DTS falling further than this below the last has wrapped.
const HALF_WRAP: i64 = Ts90::WRAP_33 / 2;
/// Raw source timestamps are clamped to this (some 400 000 years) so no arithmetic overflows.
const MAX_SOURCE: i64 = 1 << 60;
/// Unwrapped source timestamps are clamped to this.
const MAX_UNWRAPPED: i64 = 1 << 61;

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;
    use crate::Codec;

    const V: TrackId = TrackId(0);
    const A: TrackId = TrackId(1);
    /// 25 fps video.
    const VSTEP: i64 = 3600;
    /// 1024-sample AAC at 48 kHz.
    const ASTEP: i64 = 1920;
    /// B-frame reordering delay on video.
    const CTO: i64 = 7200;

    /// The one real clock read in these tests; everything else is this plus a duration.
    fn base() -> Instant {
        #[allow(clippy::disallowed_methods)]
        Instant::now()
    }

    fn frame(track: TrackId, dts: i64, pts: i64, seq: usize, arrival: Instant) -> Frame {
        Frame {
            track,
            codec: if track == V { Codec::H264 } else { Codec::Aac },
            pts: Ts90(pts),
            dts: Ts90(dts),
            keyframe: true,
            session: SessionId(0),
            arrival,
            payload: Bytes::from((seq as u64).to_le_bytes().to_vec()),
            config: None,
        }
    }

    fn seq(frame: &Frame) -> usize {
        let bytes: [u8; 8] = frame.payload[..8]
            .try_into()
            .expect("test payload is 8 bytes");
        u64::from_le_bytes(bytes) as usize
    }

    fn dur(ticks: i64) -> Duration {
        Duration::from_nanos(ticks as u64 * 100_000 / 9)
    }

    /// One stream of a simulated source: a track, its first source DTS, its frame step, and how
    /// long after the feed's start its first frame arrives (and is stamped).
    struct Src {
        track: TrackId,
        first: i64,
        step: i64,
        delay: i64,
    }

    fn src(track: TrackId, first: i64) -> Src {
        let step = if track == V { VSTEP } else { ASTEP };
        Src {
            track,
            first,
            step,
            delay: 0,
        }
    }

    /// A timeline with a recording driver around it.
    struct Sim {
        t0: Instant,
        tl: Timeline,
        /// True (unwrapped) source DTS/PTS of every pushed frame, by sequence number.
        pushed: Vec<(TrackId, i64, i64)>,
        /// Everything pulled, in order.
        out: Vec<Frame>,
        /// Push 33-bit values (masked) instead of the true ones.
        mask: bool,
    }

    impl Sim {
        fn new() -> Self {
            let t0 = base();
            let mut tl = Timeline::new(t0, SessionIds::new());
            tl.start_session(SessionReason::Fresh, t0);
            Self {
                t0,
                tl,
                pushed: Vec::new(),
                out: Vec::new(),
                mask: false,
            }
        }

        fn at(&self, ms: u64) -> Instant {
            self.t0 + Duration::from_millis(ms)
        }

        fn drain(&mut self) -> usize {
            let before = self.out.len();
            while let Some(frame) = self.tl.pull() {
                self.out.push(frame);
            }
            self.out.len() - before
        }

        fn push_at(&mut self, track: TrackId, dts: i64, now: Instant) -> usize {
            let pts = if track == V { dts + CTO } else { dts };
            self.pushed.push((track, dts, pts));
            let (d, p) = if self.mask {
                (dts & (Ts90::WRAP_33 - 1), pts & (Ts90::WRAP_33 - 1))
            } else {
                (dts, pts)
            };
            let frame = frame(track, d, p, self.pushed.len() - 1, now);
            self.tl.push(frame, now);
            self.drain()
        }

        fn push(&mut self, track: TrackId, dts: i64, at_ms: u64) -> usize {
            self.push_at(track, dts, self.at(at_ms))
        }

        fn timeout(&mut self, at_ms: u64) -> usize {
            self.tl.handle_timeout(self.at(at_ms));
            self.drain()
        }

        fn start(&mut self, reason: SessionReason, at_ms: u64) -> SessionId {
            let id = self.tl.start_session(reason, self.at(at_ms));
            self.drain();
            id
        }

        /// Pushes `dur_ms` of real-time paced frames starting at `at_ms`, in arrival order.
        fn feed(&mut self, sources: &[Src], at_ms: u64, dur_ms: u64) {
            let mut events = Vec::new();
            for s in sources {
                let mut k = 0;
                while s.delay + k * s.step < dur_ms as i64 * 90 {
                    events.push((s.delay + k * s.step, s.track, s.first + k * s.step));
                    k += 1;
                }
            }
            events.sort();
            let start = self.at(at_ms);
            for (t, track, dts) in events {
                self.push_at(track, dts, start + dur(t));
            }
        }

        /// (source DTS, source PTS, output frame) of every pulled frame of `track`.
        fn track(&self, track: TrackId) -> Vec<(i64, i64, &Frame)> {
            self.out
                .iter()
                .filter(|f| f.track == track)
                .map(|f| {
                    let (_, dts, pts) = self.pushed[seq(f)];
                    (dts, pts, f)
                })
                .collect()
        }

        /// The output − source offsets of `track` in `session`.
        fn offsets(&self, track: TrackId, session: SessionId) -> Vec<i64> {
            self.track(track)
                .into_iter()
                .filter(|(_, _, f)| f.session == session)
                .map(|(dts, _, f)| f.dts.0 - dts)
                .collect()
        }

        fn sessions(&self) -> Vec<SessionId> {
            let mut ids: Vec<_> = self.out.iter().map(|f| f.session).collect();
            ids.dedup();
            ids
        }

        /// The invariants every output must hold.
        fn check(&self) {
            check_output(&self.out);
            let mut seqs: Vec<_> = self.out.iter().map(seq).collect();
            seqs.sort_unstable();
            seqs.dedup();
            assert_eq!(seqs.len(), self.out.len(), "a frame came out twice");
        }
    }

    fn check_output(out: &[Frame]) {
        let mut last: Vec<(TrackId, i64)> = Vec::new();
        let mut session = SessionId(0);
        for f in out {
            assert!(f.dts.0 >= 0, "negative DTS {f:?}");
            assert!(f.pts >= f.dts, "PTS before DTS {f:?}");
            assert!(f.session >= session, "session went back {f:?}");
            session = f.session;
            match last.iter_mut().find(|(t, _)| *t == f.track) {
                Some((_, dts)) => {
                    assert!(
                        f.dts.0 > *dts,
                        "DTS not increasing: {} after {dts} {f:?}",
                        f.dts.0
                    );
                    *dts = f.dts.0;
                }
                None => last.push((f.track, f.dts.0)),
            }
        }
    }

    fn all_equal(values: &[i64]) -> bool {
        values.windows(2).all(|w| w[0] == w[1])
    }

    #[test]
    fn steady_av_passes_through_offset_only() {
        let mut sim = Sim::new();
        let s = 900_000; // the camera's clock reads 10 s
        sim.feed(&[src(V, s), src(A, s)], 0, 10_000);
        sim.timeout(10_000);
        sim.check();

        assert_eq!(sim.out.len(), sim.pushed.len());
        let session = sim.tl.session().unwrap();
        assert_eq!(sim.sessions(), vec![session]);
        assert_eq!(sim.tl.reason(), Some(SessionReason::Fresh));
        assert_eq!(sim.tl.reanchors(), 0);
        let mut offsets = sim.offsets(V, session);
        offsets.extend(sim.offsets(A, session));
        assert!(all_equal(&offsets), "one offset for both tracks");
        assert_eq!(offsets[0], -s, "starts at output 0 (the origin)");
        for (dts, pts, f) in sim.track(V) {
            assert_eq!(f.pts.0 - f.dts.0, pts - dts, "composition offset kept");
        }
    }

    #[test]
    fn source_restart_starts_a_session_and_stays_monotonic() {
        let mut sim = Sim::new();
        sim.feed(&[src(V, 9_000_000), src(A, 9_000_000)], 0, 5_000);
        let first = sim.tl.session().unwrap();
        // The sender restarts: DTS resets to 0 with no gap in arrival.
        sim.feed(&[src(V, 0), src(A, 0)], 5_000, 5_000);
        sim.timeout(10_000);
        sim.check();

        assert_eq!(sim.out.len(), sim.pushed.len());
        let second = sim.tl.session().unwrap();
        assert!(second > first);
        assert_eq!(sim.sessions(), vec![first, second]);
        assert_eq!(sim.tl.reason(), Some(SessionReason::TimelineJump));
        // Lip sync in the new session: one offset for both tracks.
        let mut offsets = sim.offsets(V, second);
        offsets.extend(sim.offsets(A, second));
        assert!(all_equal(&offsets));
        // Output carries on at wall time, 5 s in, right after the last frames.
        let first_after = sim.offsets(V, second)[0];
        assert!(
            (ms(5_000)..ms(5_000) + VSTEP).contains(&first_after),
            "{first_after}"
        );
    }

    #[test]
    fn wrap_33_is_unwrapped_without_a_session_change() {
        let mut sim = Sim::new();
        sim.mask = true;
        let s = Ts90::WRAP_33 - ms(2_000);
        sim.feed(&[src(V, s), src(A, s)], 0, 5_000);
        sim.timeout(5_000);
        sim.check();

        assert_eq!(sim.out.len(), sim.pushed.len());
        let session = sim.tl.session().unwrap();
        assert_eq!(sim.sessions(), vec![session]);
        assert_eq!(sim.tl.reanchors(), 0);
        let mut offsets = sim.offsets(V, session);
        offsets.extend(sim.offsets(A, session));
        assert!(all_equal(&offsets), "offset-only across the wrap");
        // Video PTS wraps before its DTS does: the composition offset survives.
        for (dts, pts, f) in sim.track(V) {
            assert_eq!(f.pts.0 - f.dts.0, pts - dts);
        }
    }

    #[test]
    fn late_track_after_a_wrap_joins_the_same_period() {
        let mut sim = Sim::new();
        sim.mask = true;
        let s = Ts90::WRAP_33 - ms(500);
        // Video alone across the wrap; audio (same clock, just after the wrap) joins late.
        // Audio runs 300 ms behind video in source time.
        sim.feed(&[src(V, s)], 0, 1_500);
        sim.feed(
            &[src(V, s + ms(1_500)), src(A, s + ms(1_200))],
            1_500,
            1_000,
        );
        sim.timeout(2_500);
        sim.check();

        let session = sim.tl.session().unwrap();
        assert_eq!(sim.sessions(), vec![session]);
        let mut offsets = sim.offsets(V, session);
        offsets.extend(sim.offsets(A, session));
        assert!(all_equal(&offsets), "audio keeps the source offset");
    }

    #[test]
    fn switch_between_unrelated_clocks_keeps_lip_sync() {
        let mut sim = Sim::new();
        sim.feed(&[src(V, ms(1_000_000)), src(A, ms(1_000_000))], 0, 3_000);
        let first = sim.tl.session().unwrap();
        let last_video = sim.track(V).last().unwrap().2.dts.0;

        let second = sim.start(SessionReason::Failover, 3_000);
        assert!(second > first);
        // The backup's audio leads its video by 30 ms of source time and arrives 30 ms later.
        let b = ms(50_000_000);
        let audio = Src {
            delay: ms(30),
            ..src(A, b + ms(30))
        };
        sim.feed(&[src(V, b), audio], 3_000, 3_000);
        sim.timeout(6_000);
        sim.check();

        assert_eq!(sim.out.len(), sim.pushed.len());
        assert_eq!(sim.sessions(), vec![first, second]);
        assert_eq!(sim.tl.reason(), Some(SessionReason::Failover));
        let video = sim.offsets(V, second);
        let audio = sim.offsets(A, second);
        assert!(all_equal(&video) && all_equal(&audio));
        assert!(
            (video[0] - audio[0]).abs() < VSTEP,
            "lip sync within one frame"
        );
        // No gap and no overlap at the switch.
        let after = sim
            .track(V)
            .into_iter()
            .find(|(_, _, f)| f.session == second)
            .unwrap()
            .2
            .dts
            .0;
        assert!(
            after > last_video && after - last_video <= 2 * VSTEP,
            "{last_video} -> {after}"
        );
    }

    #[test]
    fn a_boundary_keeps_the_last_frame_durations() {
        let mut sim = Sim::new();
        // A burst: 1 s of media at once, so output runs ahead of wall time.
        let burst = Src {
            step: VSTEP,
            ..src(V, 0)
        };
        let mut events = Vec::new();
        for k in 0..25 {
            events.push((k * burst.step, V));
        }
        for k in 0..47 {
            events.push((k * ASTEP, A));
        }
        events.sort();
        for (dts, track) in events {
            sim.push(track, dts, 0);
        }
        let last_v = sim.track(V).last().unwrap().2.dts.0;
        let last_a = sim.track(A).last().unwrap().2.dts.0;
        let second = sim.start(SessionReason::Failover, 0);
        sim.push(V, ms(500_000), 0);
        sim.push(A, ms(500_000), 0);
        sim.check();
        let first_v = sim.track(V).last().unwrap().2;
        let first_a = sim.track(A).last().unwrap().2;
        assert_eq!((first_v.session, first_a.session), (second, second));
        assert_eq!(first_v.dts, first_a.dts);
        assert!(first_v.dts.0 - last_v >= VSTEP && first_a.dts.0 - last_a >= ASTEP);
        assert_eq!(first_v.dts.0, (last_v + VSTEP).max(last_a + ASTEP));
    }

    #[test]
    fn joint_seed_far_ahead_partner_reanchors_back_without_drops() {
        let mut sim = Sim::new();
        // Same clock, but audio starts 3 s after video in source time: past the 2 s ahead limit.
        sim.push(V, ms(10_000), 0);
        sim.push(A, ms(13_000), 10);
        sim.push(V, ms(10_040), 40);
        sim.push(A, ms(13_021), 40);
        sim.check();
        assert_eq!(sim.out.len(), 4);
        assert_eq!(sim.tl.reanchors(), 1);
        let video = sim.track(V);
        let audio = sim.track(A);
        assert_eq!(video[0].2.dts.0, 0);
        assert_eq!(
            audio[0].2.dts.0,
            ms(10),
            "re-anchored at elapsed wall time, not 3 s ahead"
        );
        assert_eq!(
            video[1].2.dts.0,
            ms(40),
            "a backward move leaves the partner alone"
        );
        assert_eq!(audio[1].2.dts.0, ms(10) + ms(21));
    }

    #[test]
    fn an_overlapping_source_keeps_its_frame_spacing() {
        // A looping sender restarts audio 100 ms early: a small step back, repaired within the
        // session at one frame duration after the last output, never one tick after it.
        let t0 = base();
        let mut tl = Timeline::new(t0, SessionIds::new());
        let mut out = Vec::new();
        let mut seq = 0;
        let mut push = |tl: &mut Timeline, track, dts: i64, at: i64| {
            tl.push(frame(track, dts, dts, seq, t0 + dur(at)), t0 + dur(at));
            seq += 1;
        };
        for k in 0..50 {
            push(&mut tl, V, 3000 * k, 3000 * k);
            push(&mut tl, A, 1920 * k, 1920 * k);
        }
        let last_audio = 1920 * 49;
        push(&mut tl, A, last_audio - 9000, last_audio + 1920);
        push(&mut tl, A, last_audio - 9000 + 1920, last_audio + 3840);
        // ffmpeg's -stream_loop: the next audio frame one tick after the previous.
        push(&mut tl, A, last_audio - 9000 + 1921, last_audio + 5760);
        push(
            &mut tl,
            A,
            last_audio - 9000 + 1921 + 1920,
            last_audio + 7680,
        );
        while let Some(f) = tl.pull() {
            out.push(f);
        }
        let audio: Vec<i64> = out
            .iter()
            .filter(|f| f.track == A)
            .map(|f| f.dts.0)
            .collect();
        for pair in audio.windows(2) {
            assert!(
                pair[1] - pair[0] >= 1920,
                "audio steps {} -> {}",
                pair[0],
                pair[1]
            );
        }
        assert_eq!(tl.session().map(|_| ()), Some(()));
        assert_eq!(tl.reason(), Some(SessionReason::Fresh), "no new session");
    }

    #[test]
    fn jump_forward_of_10_s_reanchors_in_a_new_session() {
        let mut sim = Sim::new();
        let s = ms(100_000);
        sim.feed(&[src(V, s), src(A, s)], 0, 4_000);
        let first = sim.tl.session().unwrap();
        let before = sim.track(V).last().unwrap().2.dts.0;
        // The source clock leaps 10 s; arrival carries on.
        let s2 = s + ms(4_000) + ms(10_000);
        sim.feed(&[src(V, s2), src(A, s2)], 4_000, 4_000);
        sim.timeout(8_000);
        sim.check();

        assert_eq!(sim.out.len(), sim.pushed.len());
        let second = sim.tl.session().unwrap();
        assert_eq!(sim.sessions(), vec![first, second]);
        assert_eq!(sim.tl.reason(), Some(SessionReason::TimelineJump));
        let video = sim.offsets(V, second);
        let audio = sim.offsets(A, second);
        assert!(all_equal(&video) && video == audio[..video.len().min(audio.len())]);
        let after = sim
            .track(V)
            .iter()
            .find(|(_, _, f)| f.session == second)
            .unwrap()
            .2
            .dts
            .0;
        assert!(
            after - before <= 2 * VSTEP,
            "output does not leap: {before} -> {after}"
        );
    }

    #[test]
    fn source_slower_than_wall_time_reanchors_and_shifts_the_partner() {
        let mut sim = Sim::new();
        let s = ms(60_000);
        // 40 ms of video and audio every 44 ms of wall time: output falls behind by 4 ms a
        // frame, so 3 s behind after some 30 s.
        // Audio reaches the writer 10 ms after the video it belongs with.
        let mut t = Duration::ZERO;
        for k in 0..1_000 {
            let now = sim.t0 + t;
            sim.push_at(V, s + k * VSTEP, now);
            sim.push_at(A, s + k * VSTEP, now + Duration::from_millis(10));
            sim.push_at(A, s + k * VSTEP + ASTEP, now + Duration::from_millis(10));
            t += Duration::from_millis(44);
        }
        sim.check();

        assert!(sim.tl.reanchors() >= 1);
        let session = sim.tl.session().unwrap();
        assert_eq!(
            sim.sessions(),
            vec![session],
            "a re-anchor is not a new session"
        );
        // Lip sync holds across every re-anchor: both tracks go through the same output −
        // source offsets (the track that did not re-anchor follows on its next frame).
        let mut video = sim.offsets(V, session);
        let mut audio = sim.offsets(A, session);
        video.dedup();
        audio.dedup();
        assert!(video.len() >= 2, "re-anchored forward");
        let n = video.len().min(audio.len());
        assert_eq!(video[..n], audio[..n]);
        assert!(video.len().abs_diff(audio.len()) <= 1);
        // And output stays within 3 s of wall time.
        let video = sim.track(V);
        let (_, _, last) = video.last().unwrap();
        let elapsed = ticks(t);
        assert!(
            elapsed - last.dts.0 <= BEHIND + ms(44),
            "{elapsed} vs {}",
            last.dts.0
        );
    }

    #[test]
    fn small_step_back_reanchors_within_the_session() {
        let mut sim = Sim::new();
        sim.push(V, 0, 0);
        sim.push(V, VSTEP, 40);
        sim.timeout(1_000);
        assert_eq!(sim.out.len(), 2);
        sim.push(V, 2 * VSTEP, 1_040);
        sim.push(V, VSTEP, 1_080); // 40 ms back: jitter, not a new timeline
        sim.check();
        assert_eq!(sim.out.len(), 4);
        assert_eq!(sim.tl.reanchors(), 1);
        assert_eq!(sim.sessions().len(), 1);
        assert_eq!(
            sim.out[3].dts.0,
            ms(1_080),
            "re-anchored at elapsed wall time"
        );
    }

    #[test]
    fn audio_400_ms_late_joins_at_the_source_offset() {
        let mut sim = Sim::new();
        let s = ms(20_000);
        let audio = Src {
            delay: ms(400),
            ..src(A, s)
        };
        // Video from 0 ms; audio with the same first DTS arrives 400 ms later.
        sim.feed(&[src(V, s)], 0, 400);
        assert!(sim.out.is_empty(), "video is held for its partner");
        assert_eq!(sim.tl.poll_timeout(), Some(sim.at(1_000)));
        sim.feed(&[src(V, s + ms(400)), audio], 400, 2_000);
        sim.timeout(2_400);
        sim.check();

        assert_eq!(sim.out.len(), sim.pushed.len());
        let session = sim.tl.session().unwrap();
        let video = sim.offsets(V, session);
        let audio = sim.offsets(A, session);
        assert!(all_equal(&video) && all_equal(&audio));
        assert_eq!(video[0], audio[0], "audio keeps the source offset");
        assert_eq!(video[0], -s, "the earlier DTS anchors at the session start");
        assert_eq!(sim.tl.reanchors(), 0);
    }

    #[test]
    fn late_audio_within_a_second_keeps_the_source_offset() {
        let mut sim = Sim::new();
        let s = ms(20_000);
        sim.feed(&[src(V, s)], 0, 2_000);
        assert!(sim.tl.poll_timeout().is_none(), "video seeded alone");
        // Audio from 2 s, 400 ms behind video in source time.
        sim.feed(
            &[src(V, s + ms(2_000)), src(A, s + ms(1_600))],
            2_000,
            1_000,
        );
        sim.check();

        let session = sim.tl.session().unwrap();
        let video = sim.offsets(V, session);
        let audio = sim.offsets(A, session);
        assert!(all_equal(&video) && all_equal(&audio));
        assert_eq!(video[0], audio[0]);
    }

    #[test]
    fn audio_1500_ms_behind_video_snaps_to_the_live_edge() {
        let mut sim = Sim::new();
        let s = ms(20_000);
        sim.feed(&[src(V, s)], 0, 2_000);
        let edge = sim.out.last().unwrap().dts.0;
        // Audio's first frame arrives at 2 s, 1500 ms behind video in source time.
        sim.push(A, s + ms(2_000) - ms(1_500), 2_000);
        sim.check();

        let audio = sim.out.last().unwrap();
        assert_eq!(audio.track, A);
        assert_eq!(audio.dts.0, edge, "joins at the partner's live edge");
        assert_eq!(sim.sessions().len(), 1);
        // Then audio follows its own source steps.
        sim.push(A, s + ms(2_000) - ms(1_500) + ASTEP, 2_021);
        assert_eq!(sim.out.last().unwrap().dts.0, edge + ASTEP);
    }

    #[test]
    fn independent_clock_late_track_anchors_at_arrival_wall_time() {
        let mut sim = Sim::new();
        sim.feed(&[src(V, ms(20_000))], 0, 2_000);
        // Audio from a clock an hour away.
        sim.push(A, ms(3_600_000), 1_500);
        sim.check();
        let audio = sim.out.last().unwrap();
        assert_eq!(audio.track, A);
        assert_eq!(audio.dts.0, ms(1_500));
    }

    #[test]
    fn seed_hold_times_out_and_video_seeds_alone() {
        let mut sim = Sim::new();
        let s = ms(7_000);
        sim.feed(&[src(V, s)], 0, 960);
        assert!(sim.out.is_empty());
        assert_eq!(sim.tl.poll_timeout(), Some(sim.at(1_000)));
        assert_eq!(sim.timeout(999), 0);
        let held = sim.pushed.len();
        assert_eq!(
            sim.timeout(1_000),
            held,
            "all held frames leave at the deadline"
        );
        assert_eq!(sim.tl.poll_timeout(), None);
        assert_eq!(sim.out[0].dts.0, 0, "anchored at the session start");
        // Then video flows straight through, at the same offset.
        assert_eq!(sim.push(V, s + ms(1_000), 1_000), 1);
        sim.check();
        let session = sim.tl.session().unwrap();
        let video = sim.offsets(V, session);
        assert!(all_equal(&video));
    }

    #[test]
    fn push_after_the_deadline_seeds_first() {
        let mut sim = Sim::new();
        sim.push(V, 0, 0);
        // The timer was late: audio arrives after the deadline, as a late track.
        assert_eq!(sim.push(A, 0, 1_200), 2);
        sim.check();
        assert_eq!(sim.out[0].track, V);
        assert_eq!(sim.out[1].track, A);
    }

    #[test]
    fn file_loop_is_not_a_new_session() {
        let mut sim = Sim::new();
        // Pass 1: 0..3 s; pass 2 offset by pass 1's end, after a 100 ms reopen.
        sim.feed(&[src(V, 0), src(A, 0)], 0, 3_000);
        sim.feed(&[src(V, ms(3_000)), src(A, ms(3_000))], 3_100, 3_000);
        sim.feed(&[src(V, ms(6_000)), src(A, ms(6_000))], 6_200, 3_000);
        sim.timeout(10_000);
        sim.check();
        let session = sim.tl.session().unwrap();
        assert_eq!(sim.sessions(), vec![session]);
        assert_eq!(sim.tl.reanchors(), 0);
        let mut offsets = sim.offsets(V, session);
        offsets.extend(sim.offsets(A, session));
        assert!(all_equal(&offsets));
    }

    #[test]
    fn start_session_while_holding_releases_into_the_old_session() {
        let mut sim = Sim::new();
        let first = sim.tl.session().unwrap();
        sim.feed(&[src(V, 0)], 0, 200);
        assert!(sim.out.is_empty());
        let second = sim.start(SessionReason::Reconnect, 300);
        let held = sim.pushed.len();
        assert_eq!(sim.out.len(), held);
        assert!(sim.out.iter().all(|f| f.session == first));
        sim.feed(&[src(V, ms(90_000)), src(A, ms(90_000))], 300, 500);
        sim.check();
        assert!(sim.out[held..].iter().all(|f| f.session == second));
        assert_eq!(sim.tl.reason(), Some(SessionReason::Reconnect));
    }

    #[test]
    fn equal_dts_is_bumped_and_pts_before_dts_is_raised() {
        let mut sim = Sim::new();
        let t = sim.at(0);
        sim.tl.push(frame(V, -5_000, -5_000, 0, t), t);
        sim.tl.push(frame(V, -5_000, -9_000, 1, t), t);
        sim.tl.push(frame(V, -1_400, -20_000, 2, t), t);
        sim.tl.handle_timeout(sim.at(1_000));
        sim.drain();
        check_output(&sim.out);
        let dts: Vec<_> = sim.out.iter().map(|f| f.dts.0).collect();
        assert_eq!(dts, vec![0, 1, 3_600]);
        assert!(sim.out.iter().all(|f| f.pts == f.dts));
    }

    #[test]
    fn a_push_without_a_session_starts_a_fresh_one() {
        let t0 = base();
        let mut tl = Timeline::new(t0, SessionIds::new());
        assert_eq!(tl.session(), None);
        tl.push(frame(V, 0, 0, 0, t0), t0);
        assert_eq!(tl.session(), Some(SessionId(1)));
        assert_eq!(tl.reason(), Some(SessionReason::Fresh));
    }

    #[test]
    fn session_ids_are_shared_across_timelines() {
        let t0 = base();
        let ids = SessionIds::new();
        let mut one = Timeline::new(t0, ids.clone());
        let mut two = Timeline::new(t0, ids.clone());
        assert_eq!(one.start_session(SessionReason::Fresh, t0), SessionId(1));
        assert_eq!(two.start_session(SessionReason::Fresh, t0), SessionId(2));
        assert_eq!(one.start_session(SessionReason::Failover, t0), SessionId(3));
        assert_eq!(ids.next(), SessionId(4));
        assert_eq!(SessionReason::StallRecovery.to_string(), "stall_recovery");
    }

    /// One step of a random driver.
    #[derive(Debug, Clone)]
    enum Op {
        Push {
            track: u16,
            dts: Step,
            composition: i64,
            advance_ms: u64,
        },
        Start(u8, u64),
        Timeout(u64),
    }

    /// How a track's source DTS moves.
    #[derive(Debug, Clone)]
    enum Step {
        Next,
        Same,
        Forward(i64),
        Back(i64),
        Reset(i64),
        Raw33(i64),
        Any(i64, i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let step = prop_oneof![
            6 => Just(Step::Next),
            1 => Just(Step::Same),
            1 => (0i64..ms(20_000)).prop_map(Step::Forward),
            1 => (0i64..ms(2_000)).prop_map(Step::Back),
            1 => (-ms(10_000)..ms(100_000)).prop_map(Step::Reset),
            1 => (0i64..Ts90::WRAP_33).prop_map(Step::Raw33),
            1 => (any::<i64>(), any::<i64>()).prop_map(|(d, p)| Step::Any(d, p)),
        ];
        prop_oneof![
            12 => (0u16..3, step, -3_600i64..20_000, 0u64..80).prop_map(
                |(track, dts, composition, advance_ms)| Op::Push { track, dts, composition, advance_ms }
            ),
            1 => (0u8..7, 0u64..2_000).prop_map(|(r, a)| Op::Start(r, a)),
            1 => (0u64..1_500).prop_map(Op::Timeout),
        ]
    }

    const REASONS: [SessionReason; 7] = [
        SessionReason::Fresh,
        SessionReason::Reconnect,
        SessionReason::Failover,
        SessionReason::MixerCycle,
        SessionReason::ConfigChange,
        SessionReason::StallRecovery,
        SessionReason::TimelineJump,
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn output_is_monotonic_whatever_the_input(ops in prop::collection::vec(op(), 1..400)) {
            let t0 = base();
            let mut tl = Timeline::new(t0, SessionIds::new());
            let mut now = t0;
            let mut source = [0i64; 3];
            let mut out = Vec::new();
            let mut pushed = 0;
            let mut last_session = SessionId(0);
            for op in ops {
                match op {
                    Op::Push { track, dts, composition, advance_ms } => {
                        now += Duration::from_millis(advance_ms);
                        let s = &mut source[usize::from(track)];
                        let (d, p) = match dts {
                            Step::Next => { *s += if track == 0 { VSTEP } else { ASTEP }; (*s, *s + composition) }
                            Step::Same => (*s, *s + composition),
                            Step::Forward(x) => { *s += x; (*s, *s + composition) }
                            Step::Back(x) => { *s -= x; (*s, *s + composition) }
                            Step::Reset(x) => { *s = x; (*s, *s + composition) }
                            Step::Raw33(x) => { *s = x; (*s, (*s + composition) & (Ts90::WRAP_33 - 1)) }
                            Step::Any(d, p) => (d, p),
                        };
                        tl.push(frame(TrackId(track), d, p, pushed, now), now);
                        pushed += 1;
                    }
                    Op::Start(reason, advance_ms) => {
                        now += Duration::from_millis(advance_ms);
                        let id = tl.start_session(REASONS[usize::from(reason)], now);
                        prop_assert!(id > last_session);
                        last_session = id;
                    }
                    Op::Timeout(advance_ms) => {
                        now += Duration::from_millis(advance_ms);
                        if let Some(deadline) = tl.poll_timeout() {
                            prop_assert!(deadline >= t0);
                        }
                        tl.handle_timeout(now);
                    }
                }
                if let Some(id) = tl.session() {
                    prop_assert!(id >= last_session);
                    last_session = id;
                }
                while let Some(frame) = tl.pull() {
                    out.push(frame);
                }
            }
            tl.handle_timeout(now + HOLD);
            prop_assert!(tl.poll_timeout().is_none());
            while let Some(frame) = tl.pull() {
                out.push(frame);
            }
            check_output(&out);
            prop_assert_eq!(out.len(), pushed, "every frame comes out once");
            // Per track, frames leave in push order.
            for track in 0..3 {
                let seqs: Vec<_> = out.iter().filter(|f| f.track == TrackId(track)).map(seq).collect();
                prop_assert!(seqs.windows(2).all(|w| w[0] < w[1]));
            }
        }
    }
}
