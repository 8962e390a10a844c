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
mod tests;
