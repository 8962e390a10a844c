//! Reading a subscriber a wake-up at a time: the delivery that woke the reader, then every
//! one already waiting, up to a bound.
//!
//! Why: the readers that turn frames into files (the HLS/DASH output, the DVR cutter) read the
//! clocks once per wake-up and then take what is already there without waiting again, so a
//! burst (a reader woken only at keyframes takes a whole GOP at once) costs one clock read and
//! one wake-up; the bound makes a reader that is far behind let other tasks run between
//! batches. Both had the same hand-written loop around `try_recv`; [`Batch`] is that loop once.

use crate::{Delivery, Subscriber, TryRecvError};

/// One wake-up's deliveries.
///
/// # Driving it
///
/// Make it with what [`Subscriber::recv`] returned (usually inside the reader's `select!`),
/// then call [`next`](Self::next) until it returns `None`, handling each item:
/// [`Batched::Delivery`] is a frame or a loss report, [`Batched::Closed`] means the buffer
/// ended (finish and stop reading). After the loop, if [`full`](Self::full), yield to other
/// tasks before waiting again.
///
/// ```
/// use tributary_hub::{Batch, Batched, BufferId, Hub, SubscribeFrom};
/// # use bytes::Bytes;
/// # use tributary_media::{Codec, Frame, SessionId, TrackId, Ts90};
/// # let frame = |i: i64| Frame { track: TrackId(0), codec: Codec::H264, pts: Ts90(i),
/// #     dts: Ts90(i), keyframe: i == 0, session: SessionId(0),
/// #     arrival: std::time::Instant::now(),
/// #     payload: Bytes::from_static(b"\0\0\0\x01access unit"), config: None };
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let hub = Hub::new();
/// let id = BufferId::Stream("cam".parse().unwrap());
/// let mut writer = hub.create(id.clone(), 64).unwrap();
/// for i in 0..5 {
///     writer.write(frame(i * 3000)).unwrap();
/// }
/// // Five frames wait for a reader that joins at the keyframe.
/// let mut reader = hub.subscribe(&id, SubscribeFrom::LastKeyframe, "example").unwrap();
/// let first = reader.recv().await;
/// let mut batch = Batch::new(first, 3);
/// let mut read = 0;
/// while let Some(next) = batch.next(&mut reader) {
///     let Batched::Delivery(_) = next else { break };
///     read += 1;
/// }
/// assert_eq!(read, 3);
/// assert!(batch.full()); // two more wait: yield, then read on
/// # });
/// ```
#[derive(Debug)]
pub struct Batch {
    /// The delivery that woke the reader, until it is handed out (`Some(None)`: the buffer
    /// had already ended).
    first: Option<Option<Delivery>>,
    /// Deliveries handed out.
    handled: usize,
    /// The most handed out per batch.
    max: usize,
}

/// What a [`Batch`] hands out.
#[derive(Debug, Clone)]
pub enum Batched {
    /// A frame or a loss report.
    Delivery(Delivery),
    /// The buffer was deleted and everything has been delivered.
    Closed,
}

impl Batch {
    /// A batch starting with `first` (what [`Subscriber::recv`] returned), at most `max`
    /// deliveries long (at least the first).
    pub fn new(first: Option<Delivery>, max: usize) -> Self {
        Self {
            first: Some(first),
            handled: 0,
            max: max.max(1),
        }
    }

    /// The next item: the first delivery, then each one `subscriber` already holds; `None`
    /// when none is waiting or the batch is full.
    pub fn next(&mut self, subscriber: &mut Subscriber) -> Option<Batched> {
        let delivery = match self.first.take() {
            Some(first) => first,
            None if self.full() => return None,
            None => match subscriber.try_recv() {
                Ok(delivery) => Some(delivery),
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Closed) => None,
            },
        };
        self.handled += 1;
        Some(delivery.map_or(Batched::Closed, Batched::Delivery))
    }

    /// Whether the batch ended because it reached its bound (more may be waiting): yield
    /// before reading on.
    pub fn full(&self) -> bool {
        self.handled >= self.max
    }
}
