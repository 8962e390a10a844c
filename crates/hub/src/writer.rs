//! The one writer of a buffer.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tributary_media::timeline::{SessionReason, Timeline};
use tributary_media::{Frame, MediaKind, SessionId};

use crate::hub::{Buffer, HubInner, read, write};
use crate::{BufferId, BufferStats, HubError};

/// The writer token of one buffer: the only way to put frames into it.
///
/// There is one per buffer and it is not `Clone`; a handoff (failover, retarget) moves it, so
/// two producers never interleave. [`Intake`](crate::Intake) owns the writer of a stream's input
/// buffer and moves the token between its ports.
///
/// [`write`](Self::write) is synchronous: it never awaits and never waits for a subscriber. A
/// subscriber that falls behind loses its own frames, found out when it next reads.
///
/// Dropping the writer deletes its buffer (as [`Hub::delete`](crate::Hub::delete) does), so a
/// producer that goes away never leaves readers stalled.
pub struct Writer {
    /// The hub, to allocate session ids and to remove the buffer on drop.
    hub: Arc<HubInner>,
    /// The buffer written.
    buffer: Arc<Buffer>,
    /// The current output session, stamped on every frame; `None` until the first write or
    /// [`start_session`](Self::start_session).
    session: Option<SessionId>,
    /// The session of the newest frame in the ring, so the GOP cache restarts exactly when the
    /// first frame of a new session is stored (the normaliser may release frames of the old
    /// session after a new one was asked for).
    ring_session: Option<SessionId>,
    /// The normaliser, when the buffer was created with `normalise` (SPEC §Timeline).
    timeline: Option<Box<Timeline>>,
    /// The latest `now` handed to the normaliser: it must not go backwards.
    last_now: Option<Instant>,
    /// Hard re-anchors already logged (the first, then every 50th).
    reanchors_logged: u64,
}

impl Writer {
    pub(crate) fn new(hub: Arc<HubInner>, buffer: Arc<Buffer>, normalise: bool) -> Self {
        let timeline =
            normalise.then(|| Box::new(Timeline::new(Instant::now(), hub.sessions().clone())));
        Self {
            hub,
            buffer,
            session: None,
            ring_session: None,
            timeline,
            last_now: None,
            reanchors_logged: 0,
        }
    }

    /// The buffer this writer feeds.
    pub fn id(&self) -> &BufferId {
        &self.buffer.id
    }

    /// The frames the buffer holds at most (its `capacity`).
    pub fn capacity(&self) -> usize {
        read(&self.buffer.ring).capacity()
    }

    /// The current session, if one has started.
    pub fn session(&self) -> Option<SessionId> {
        self.session
    }

    /// Starts a new output session for `reason` and returns its id, greater than every id the
    /// hub gave before. Frames written from now on carry it, and the GOP cache restarts: a new
    /// subscriber waits for this session's first keyframe rather than start in the old one.
    pub fn start_session(&mut self, reason: SessionReason) -> SessionId {
        let session = match self.timeline.take() {
            Some(mut timeline) => {
                let now = self.now(Instant::now());
                let session = timeline.start_session(reason, now);
                // A track held for its partner is released in the old session first.
                let drained = self.drain(&mut timeline);
                self.timeline = Some(timeline);
                if let Err(e) = drained {
                    tracing::debug!(buffer = %self.buffer.id, error = %e, "write after delete");
                }
                session
            }
            None => self.hub.sessions().next(),
        };
        self.session = Some(session);
        self.ring_session = Some(session);
        write(&self.buffer.ring).start_session(session);
        tracing::debug!(buffer = %self.buffer.id, session = session.0, %reason, "session started");
        session
    }

    /// Writes one frame: stamps it with the current session (starting a
    /// [`Fresh`](SessionReason::Fresh) one if none has begun), stores it and wakes the readers.
    ///
    /// With the normaliser on, the frame's timestamps are mapped onto the buffer's output
    /// timeline first, using its [`arrival`](Frame::arrival) as `now`; the first track of a
    /// session is held (up to 1 s, released by a later write) until its partner arrives, and
    /// a broken source timeline opens a `timeline_jump` session by itself.
    ///
    /// An empty payload is ignored. Fails only when the buffer has been deleted.
    ///
    /// Cost: one short write lock on the ring per stored frame, an amortised O(1) push with
    /// no allocation once the ring has grown to its capacity, two relaxed counter updates and
    /// one `Notify::notify_waiters`, which wakes the readers waiting on this buffer;
    /// independent of how many subscribers there are and of how far behind they are.
    pub fn write(&mut self, mut frame: Frame) -> Result<(), HubError> {
        if self.buffer.closed.load(Ordering::Acquire) {
            return Err(HubError::Deleted {
                id: self.buffer.id.clone(),
            });
        }
        if frame.payload.is_empty() {
            return Ok(());
        }
        if let Some(mut timeline) = self.timeline.take() {
            let now = self.now(frame.arrival);
            timeline.push(frame, now);
            let result = self.drain(&mut timeline);
            self.timeline = Some(timeline);
            return result;
        }
        let session = match self.session {
            Some(session) => session,
            None => self.start_session(SessionReason::Fresh),
        };
        frame.session = session;
        self.store(frame)
    }

    /// When a track held by the normaliser must be released if no write comes first; drive
    /// [`handle_timeout`](Self::handle_timeout) from it if the source may fall silent right
    /// after its first frames (every later write releases it anyway).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timeline.as_ref().and_then(|t| t.poll_timeout())
    }

    /// Releases a held track whose wait has run out (see [`poll_timeout`](Self::poll_timeout)).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), HubError> {
        let Some(mut timeline) = self.timeline.take() else {
            return Ok(());
        };
        let now = self.now(now);
        timeline.handle_timeout(now);
        let result = self.drain(&mut timeline);
        self.timeline = Some(timeline);
        result
    }

    /// Hard re-anchors of the normaliser so far (0 without one).
    pub fn reanchors(&self) -> u64 {
        self.timeline.as_ref().map_or(0, |t| t.reanchors())
    }

    /// `now`, never before the previous one.
    fn now(&mut self, now: Instant) -> Instant {
        let now = self.last_now.map_or(now, |last| last.max(now));
        self.last_now = Some(now);
        now
    }

    /// Stores every frame the normaliser releases; notes sessions it opened itself.
    fn drain(&mut self, timeline: &mut Timeline) -> Result<(), HubError> {
        while let Some(frame) = timeline.pull() {
            if self.ring_session != Some(frame.session) {
                self.ring_session = Some(frame.session);
                write(&self.buffer.ring).start_session(frame.session);
                if self.session.is_none_or(|s| s < frame.session) {
                    self.session = Some(frame.session);
                    if let Some(reason) = timeline.reason() {
                        tracing::info!(buffer = %self.buffer.id, session = frame.session.0,
                            %reason, "timeline session started");
                    }
                }
            }
            self.store(frame)?;
        }
        let reanchors = timeline.reanchors();
        if reanchors > self.reanchors_logged
            && (self.reanchors_logged == 0 || reanchors >= self.reanchors_logged + 50)
        {
            self.reanchors_logged = reanchors;
            tracing::info!(buffer = %self.buffer.id, reanchors, "timeline re-anchored");
        }
        Ok(())
    }

    /// A snapshot of the buffer's counters.
    pub fn stats(&self) -> BufferStats {
        self.buffer.stats()
    }

    /// Puts a frame already stamped with its session into the ring and wakes the readers.
    ///
    /// At each video keyframe the ring lets go of what no reader needs any more: frames before
    /// both the slowest subscriber's position and the GOP cache being replaced. A buffer whose
    /// readers keep up then holds about two GOPs instead of `capacity` frames; a lagging
    /// reader still keeps its whole backlog, up to the bounds. The outgoing GOP stays, not
    /// only the incoming one, so a subscriber that took its cursor at the old keyframe just
    /// before this push, and whose position its entry does not show yet, finds every frame.
    fn store(&mut self, frame: Frame) -> Result<(), HubError> {
        let len = frame.payload.len() as u64;
        let (kind, keyframe, arrival) = (frame.codec.kind(), frame.keyframe, frame.arrival);
        let video_key = keyframe && kind == MediaKind::Video;
        // Positions are read before the ring is locked (never both locks at once); a position
        // only moves forward, so a stale one keeps more, never less.
        let slowest = video_key.then(|| self.buffer.slowest_reader());
        {
            let mut ring = write(&self.buffer.ring);
            if ring.closed {
                return Err(HubError::Deleted {
                    id: self.buffer.id.clone(),
                });
            }
            let release = if video_key { ring.gop_start() } else { None };
            ring.push(frame);
            if let (Some(gop), Some(slowest)) = (release, slowest) {
                ring.release_before(gop.min(slowest));
            }
        }
        self.buffer.frames.fetch_add(1, Ordering::Relaxed);
        self.buffer.bytes.fetch_add(len, Ordering::Relaxed);
        self.buffer.offer(kind, keyframe, arrival);
        Ok(())
    }
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("id", &self.buffer.id)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.hub.remove(&self.buffer);
    }
}
