//! A reader of one buffer.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::Notify;
use tributary_media::{Frame, MediaKind};

use crate::BufferId;
use crate::hub::{Buffer, lock, read};
use crate::ring::{Cursor, Read};

/// One reader of a buffer, made by [`Hub::subscribe`](crate::Hub::subscribe).
///
/// It reads the buffer's shared ring through its own cursor. Its backlog is bounded by the
/// buffer's capacity (and 64 MiB): when the writer has overwritten frames it had not read, it
/// alone loses them, skips forward to the next keyframe still held (or still to come), and
/// reports the loss once as [`Delivery::Lagged`] just before that keyframe. Losses also go to
/// [`dropped`](Self::dropped) and to its class's counter in [`BufferStats`](crate::BufferStats).
///
/// Frames arrive in write order; a change of [`Frame::session`] marks a timeline boundary.
/// After the buffer is deleted the subscriber drains what is left, then [`recv`](Self::recv)
/// returns `None`.
///
/// A waiting [`recv`](Self::recv) is woken by every frame, unless the subscriber says with
/// [`set_wake`](Self::set_wake) that only some frames are worth a wake-up: a reader that acts
/// on video frames (a player that writes audio with the next video frame, a packager that cuts
/// at keyframes) then sleeps through the frames between them and reads them all at once.
pub struct Subscriber {
    /// The buffer read.
    buffer: Arc<Buffer>,
    /// Its entry in the buffer's list, for its wake-ups; kept apart from `state` so `recv`
    /// can hold a wake-up registration while it reads.
    entry: Arc<SubscriberEntry>,
    /// This subscriber's own state.
    state: ReadState,
}

/// What a subscriber receives.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// The next frame.
    Frame(Frame),
    /// The subscriber fell behind and lost `dropped` frames since the last report; the next
    /// frame is a keyframe (or, in an audio-only session, an audio frame).
    Lagged {
        /// Frames lost.
        dropped: u64,
    },
}

/// Why [`Subscriber::try_recv`] delivered nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// Nothing new yet.
    #[error("no frame ready")]
    Empty,
    /// The buffer was deleted and everything has been delivered.
    #[error("buffer deleted")]
    Closed,
}

impl Subscriber {
    pub(crate) fn new(buffer: Arc<Buffer>, entry: Arc<SubscriberEntry>, cursor: Cursor) -> Self {
        Self {
            buffer,
            entry: Arc::clone(&entry),
            state: ReadState {
                entry,
                cursor,
                dropped: 0,
            },
        }
    }

    /// The next delivery, waiting for one if needed; `None` once the buffer is deleted and
    /// drained. What is already written is delivered at once; only the wait for a new frame
    /// follows [`set_wake`](Self::set_wake).
    ///
    /// Cancel-safe: dropping the future loses nothing.
    pub async fn recv(&mut self) -> Option<Delivery> {
        loop {
            // The writer's wake-up is a permit kept for us if we are not waiting yet, so one
            // that comes between the look and the wait is not lost.
            let notified = self.entry.notify.notified();
            match self.state.read(&self.buffer) {
                Read::Frame(frame) => return Some(Delivery::Frame(frame)),
                Read::Lagged(dropped) => return Some(Delivery::Lagged { dropped }),
                Read::Closed => return None,
                Read::Empty => notified.await,
            }
        }
    }

    /// The next delivery if one is ready, without waiting.
    pub fn try_recv(&mut self) -> Result<Delivery, TryRecvError> {
        match self.state.read(&self.buffer) {
            Read::Frame(frame) => Ok(Delivery::Frame(frame)),
            Read::Lagged(dropped) => Ok(Delivery::Lagged { dropped }),
            Read::Empty => Err(TryRecvError::Empty),
            Read::Closed => Err(TryRecvError::Closed),
        }
    }

    /// [`try_recv`](Self::try_recv) as a poll, the shape a connection driver's `try_recv`
    /// takes: `Ready(Some(_))` a delivery, `Ready(None)` the buffer is gone, `Pending` nothing
    /// yet.
    pub fn try_next(&mut self) -> Poll<Option<Delivery>> {
        match self.try_recv() {
            Ok(delivery) => Poll::Ready(Some(delivery)),
            Err(TryRecvError::Empty) => Poll::Pending,
            Err(TryRecvError::Closed) => Poll::Ready(None),
        }
    }

    /// Which frames wake a waiting [`recv`](Self::recv) from now on.
    pub fn set_wake(&self, wake: Wake) {
        let (policy, within) = match wake {
            Wake::Every => (EVERY, Duration::ZERO),
            Wake::Video { within } => (VIDEO, within),
            Wake::VideoKeyframe { within } => (VIDEO_KEYFRAME, within),
        };
        let entry = &self.entry;
        entry.within.store(nanos(within), Ordering::Relaxed);
        entry.policy.store(policy, Ordering::Relaxed);
    }

    /// Frames this subscriber has lost so far (counted when it reads past them).
    pub fn dropped(&self) -> u64 {
        self.state.dropped
    }

    /// The buffer read.
    pub fn id(&self) -> &BufferId {
        &self.buffer.id
    }

    /// Which life of its buffer this subscriber reads: unique in the process, so a buffer
    /// deleted and created again under the same id has a new one. Consumers that share work
    /// between the readers of one buffer key it by this.
    pub fn instance(&self) -> u64 {
        self.buffer.instance
    }

    /// The class given at subscribe time.
    pub fn class(&self) -> &'static str {
        self.state.entry.class
    }
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("id", &self.buffer.id)
            .field("class", &self.state.entry.class)
            .field("dropped", &self.state.dropped)
            .finish_non_exhaustive()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        lock(&self.buffer.subscribers).retain(|entry| !Arc::ptr_eq(entry, &self.state.entry));
    }
}

/// Which frames wake a subscriber waiting in [`Subscriber::recv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Wake {
    /// Every frame (the default).
    #[default]
    Every,
    /// Video frames; any frame once `within` has passed since the last wake-up, so the
    /// frames of a stream whose video stopped (or that has none) still come, at most this
    /// late.
    Video {
        /// The longest other frames wait.
        within: Duration,
    },
    /// Video keyframes; any frame once `within` has passed since the last wake-up.
    VideoKeyframe {
        /// The longest other frames wait.
        within: Duration,
    },
}

/// A subscriber as its buffer sees it: registered for the subscriber count, for counting the
/// losses of a reader that has stopped reading, and for its wake-ups.
#[derive(Debug)]
pub(crate) struct SubscriberEntry {
    /// The class, for the drop counters.
    pub(crate) class: &'static str,
    /// Mirror of the cursor's next sequence number (relaxed; stats only).
    pub(crate) next: AtomicU64,
    /// The class's drop counter, shared by every subscriber of the class.
    pub(crate) class_drops: Arc<AtomicU64>,
    /// Woken by the writer for a frame this subscriber wants, and when the buffer closes.
    pub(crate) notify: Notify,
    /// Its [`Wake`], as `EVERY`, `VIDEO` or `VIDEO_KEYFRAME`.
    policy: AtomicU8,
    /// The policy's `within`, in nanoseconds.
    within: AtomicU64,
    /// When the writer last woke it, in nanoseconds after the buffer's epoch (frames' arrival
    /// time).
    woken: AtomicU64,
}

impl SubscriberEntry {
    pub(crate) fn new(class: &'static str, next: u64, class_drops: Arc<AtomicU64>) -> Self {
        Self {
            class,
            next: AtomicU64::new(next),
            class_drops,
            notify: Notify::new(),
            policy: AtomicU8::new(EVERY),
            within: AtomicU64::new(0),
            woken: AtomicU64::new(0),
        }
    }

    /// A frame of `kind` (`keyframe`) that arrived `at` after the buffer's epoch was stored:
    /// wakes this subscriber if its policy wants it.
    pub(crate) fn offer(&self, kind: MediaKind, keyframe: bool, at: Duration) {
        let at = nanos(at);
        let wanted = match self.policy.load(Ordering::Relaxed) {
            VIDEO => kind == MediaKind::Video,
            VIDEO_KEYFRAME => kind == MediaKind::Video && keyframe,
            _ => true,
        };
        let overdue = || {
            at.saturating_sub(self.woken.load(Ordering::Relaxed))
                >= self.within.load(Ordering::Relaxed)
        };
        if wanted || overdue() {
            self.woken.store(at, Ordering::Relaxed);
            self.notify.notify_one();
        }
    }
}

/// The subscriber's side of reading.
struct ReadState {
    entry: Arc<SubscriberEntry>,
    cursor: Cursor,
    dropped: u64,
}

impl ReadState {
    /// One read under the ring's read lock, then the counters outside it.
    fn read(&mut self, buffer: &Buffer) -> Read {
        let (delivery, lost) = read(&buffer.ring).read(&mut self.cursor);
        self.entry.next.store(self.cursor.next, Ordering::Relaxed);
        if lost > 0 {
            self.dropped += lost;
            self.entry.class_drops.fetch_add(lost, Ordering::Relaxed);
        }
        delivery
    }
}

/// A duration in nanoseconds, saturating (585 years).
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// [`Wake::Every`].
const EVERY: u8 = 0;
/// [`Wake::Video`].
const VIDEO: u8 = 1;
/// [`Wake::VideoKeyframe`].
const VIDEO_KEYFRAME: u8 = 2;
