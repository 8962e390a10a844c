//! The one writer of a buffer.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tributary_media::{Frame, SessionId};

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
}

/// Why a session began (SPEC §Timeline "Sessions"). The names match `media::timeline`, which
/// will own sessions once the writer runs the normaliser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionReason {
    /// The buffer's first input started.
    Fresh,
    /// The active input reconnected.
    Reconnect,
    /// The active input changed (failover, failback, manual switch, recovery).
    Failover,
    /// New parameter sets, sample rate or codec.
    ConfigChange,
    /// The input wrote nothing for 15 s, then resumed.
    StallRecovery,
    /// A mixer input dropped out or rejoined.
    MixerCycle,
    /// The source timeline broke (DTS backwards, or a jump of more than 2 s).
    TimelineJump,
}

impl Writer {
    pub(crate) fn new(hub: Arc<HubInner>, buffer: Arc<Buffer>) -> Self {
        Self {
            hub,
            buffer,
            session: None,
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
        let session = self.hub.next_session();
        self.session = Some(session);
        write(&self.buffer.ring).start_session(session);
        tracing::debug!(buffer = %self.buffer.id, session = session.0, %reason, "session started");
        session
    }

    /// Writes one frame: stamps it with the current session (starting a
    /// [`Fresh`](SessionReason::Fresh) one if none has begun), stores it and wakes the readers.
    ///
    /// An empty payload is ignored. Fails only when the buffer has been deleted.
    ///
    /// Cost: one short write lock on the ring, an amortised O(1) push with no allocation once
    /// the ring has grown to its capacity, two relaxed counter updates and one
    /// `Notify::notify_waiters`, which wakes the readers waiting on this buffer; independent of
    /// how many subscribers there are and of how far behind they are.
    pub fn write(&mut self, mut frame: Frame) -> Result<(), HubError> {
        if self.buffer.closed.load(Ordering::Acquire) {
            return Err(HubError::Deleted {
                id: self.buffer.id.clone(),
            });
        }
        if frame.payload.is_empty() {
            return Ok(());
        }
        let session = match self.session {
            Some(session) => session,
            None => self.start_session(SessionReason::Fresh),
        };
        // TIMELINE SEAM: a later change runs `media::timeline::Timeline` here: push `frame`
        // (with `now`), then store every frame `pull` yields; `start_session` then delegates
        // to the timeline, and the writer gains `poll_timeout`/`handle_timeout` for the held
        // track. Until then frames are stored with the timestamps they came with.
        frame.session = session;
        self.store(frame)
    }

    /// A snapshot of the buffer's counters.
    pub fn stats(&self) -> BufferStats {
        self.buffer.stats()
    }

    /// Puts a frame already stamped with its session into the ring and wakes the readers.
    fn store(&mut self, frame: Frame) -> Result<(), HubError> {
        let len = frame.payload.len() as u64;
        {
            let mut ring = write(&self.buffer.ring);
            if ring.closed {
                return Err(HubError::Deleted {
                    id: self.buffer.id.clone(),
                });
            }
            ring.push(frame);
        }
        self.buffer.frames.fetch_add(1, Ordering::Relaxed);
        self.buffer.bytes.fetch_add(len, Ordering::Relaxed);
        self.buffer.notify.notify_waiters();
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

impl SessionReason {
    /// The snake-case name used in logs and events (`fresh`, `timeline_jump`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Reconnect => "reconnect",
            Self::Failover => "failover",
            Self::ConfigChange => "config_change",
            Self::StallRecovery => "stall_recovery",
            Self::MixerCycle => "mixer_cycle",
            Self::TimelineJump => "timeline_jump",
        }
    }
}

impl fmt::Display for SessionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
