//! A reader of one buffer.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tributary_media::Frame;

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
pub struct Subscriber {
    /// The buffer read.
    buffer: Arc<Buffer>,
    /// This subscriber's own state; kept apart from `buffer` so `recv` can hold a wake-up
    /// registration on the buffer while it reads.
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
            state: ReadState {
                entry,
                cursor,
                dropped: 0,
            },
        }
    }

    /// The next delivery, waiting for one if needed; `None` once the buffer is deleted and
    /// drained.
    ///
    /// Cancel-safe: dropping the future loses nothing.
    pub async fn recv(&mut self) -> Option<Delivery> {
        loop {
            // Register before looking, so a write between the look and the wait still wakes us.
            let notified = self.buffer.notify.notified();
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

/// A subscriber as its buffer sees it: registered for the subscriber count and for counting the
/// losses of a reader that has stopped reading.
#[derive(Debug)]
pub(crate) struct SubscriberEntry {
    /// The class, for the drop counters.
    pub(crate) class: &'static str,
    /// Mirror of the cursor's next sequence number (relaxed; stats only).
    pub(crate) next: AtomicU64,
    /// The class's drop counter, shared by every subscriber of the class.
    pub(crate) class_drops: Arc<AtomicU64>,
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
