//! The registry of buffers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{
    Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
use std::time::Instant;

use tributary_media::timeline::SessionIds;
use tributary_media::{MediaKind, SessionId};

use crate::ring::Ring;
use crate::subscriber::SubscriberEntry;
use crate::{BufferId, HubError, Subscriber, Writer};

/// The buffer hub: a map from [`BufferId`] to buffers, and the process-wide session counter.
///
/// Cheap to clone (an `Arc`); every clone sees the same buffers. The map lock is held only for
/// a lookup, insert or remove, never across an `.await` and never on the per-frame path.
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<HubInner>,
}

/// Sizing of one buffer (SPEC §Buffer hub "Sizing").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferConfig {
    /// Frames held for subscribers: a subscriber further behind than this loses frames.
    /// Default 1024 (`buffer.capacity`, about 13 s of 30 fps video with 48 kHz AAC). At least 1.
    pub capacity: usize,
    /// Payload bytes held: bounds a subscriber's backlog (and the GOP cache) when frames are
    /// large. Default 64 MiB (SPEC §Buffer hub).
    pub max_bytes: usize,
    /// Whether the writer runs the timeline normaliser (SPEC §Timeline): on for every buffer
    /// that ingest or FFmpeg feed, so output timestamps are monotonic across reconnects,
    /// switches and wraps and the normaliser opens `timeline_jump` sessions. Off (the
    /// default) stores frames with the timestamps they came with, for producers that are
    /// already normalised and for tests of the buffer itself.
    pub normalise: bool,
}

/// Where a new subscriber starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeFrom {
    /// At the GOP cache: the most recent video keyframe of the current session, with audio
    /// from the same point, so playback starts at once. With no keyframe cached, at the next
    /// one. The first frame delivered is always a sync point.
    LastKeyframe,
    /// At the next frame written, whatever it is (DVR, the transcoder's feeder).
    Now,
}

/// A snapshot of one buffer's counters, for metrics and `GET /streams/{code}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferStats {
    /// The buffer.
    pub id: BufferId,
    /// Frames written since creation (empty payloads excluded).
    pub frames: u64,
    /// Payload bytes written since creation.
    pub bytes: u64,
    /// Live subscribers.
    pub subscribers: usize,
    /// Frames held in the ring (the GOP cache and every subscriber's backlog).
    pub held: usize,
    /// The writer's current session, if it has started one.
    pub session: Option<SessionId>,
    /// Frames dropped, per subscriber class, including subscribers that have gone
    /// (`tributary_buffer_drops_total{subscriber=…}`). Sorted by class.
    pub drops: Vec<ClassDrops>,
}

/// Drops of one subscriber class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassDrops {
    /// The class given to [`Hub::subscribe`] (`hls`, `rtmp_play`, `dvr`, ...).
    pub class: &'static str,
    /// Frames this class has lost.
    pub dropped: u64,
}

impl Hub {
    /// An empty hub. Create one per process: its session counter makes session ids monotonic
    /// across every buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates buffer `id` holding `capacity` frames (and at most 64 MiB) and returns its one
    /// [`Writer`]. Fails if a buffer with this id exists.
    pub fn create(&self, id: BufferId, capacity: usize) -> Result<Writer, HubError> {
        self.create_with(
            id,
            BufferConfig {
                capacity,
                ..BufferConfig::default()
            },
        )
    }

    /// Creates buffer `id` with explicit sizing. Fails if a buffer with this id exists.
    pub fn create_with(&self, id: BufferId, config: BufferConfig) -> Result<Writer, HubError> {
        let mut buffers = write(&self.inner.buffers);
        if buffers.contains_key(&id) {
            return Err(HubError::AlreadyExists { id });
        }
        let buffer = Arc::new(Buffer::new(id.clone(), config));
        buffers.insert(id.clone(), Arc::clone(&buffer));
        drop(buffers);
        tracing::debug!(buffer = %id, capacity = config.capacity, "buffer created");
        Ok(Writer::new(
            Arc::clone(&self.inner),
            buffer,
            config.normalise,
        ))
    }

    /// Subscribes to buffer `id`. `class` names the kind of reader for the drop counters
    /// (`hls`, `rtmp_play`, `dvr`, `transcoder`, ...). Fails at once if the buffer does not
    /// exist or has been deleted.
    pub fn subscribe(
        &self,
        id: &BufferId,
        from: SubscribeFrom,
        class: &'static str,
    ) -> Result<Subscriber, HubError> {
        let buffer = read(&self.inner.buffers)
            .get(id)
            .cloned()
            .ok_or_else(|| HubError::NotFound { id: id.clone() })?;
        let cursor = {
            let ring = read(&buffer.ring);
            if ring.closed {
                return Err(HubError::NotFound { id: id.clone() });
            }
            match from {
                SubscribeFrom::LastKeyframe => ring.cursor_at_gop(),
                SubscribeFrom::Now => ring.cursor_at_head(),
            }
        };
        let entry = Arc::new(SubscriberEntry::new(
            class,
            cursor.next,
            buffer.class_counter(class),
        ));
        lock(&buffer.subscribers).push(Arc::clone(&entry));
        Ok(Subscriber::new(buffer, entry, cursor))
    }

    /// Deletes buffer `id`: later subscribes fail, writes fail, and every subscriber drains
    /// what it has left and then sees end-of-stream. Returns whether the buffer existed.
    pub fn delete(&self, id: &BufferId) -> bool {
        let Some(buffer) = write(&self.inner.buffers).remove(id) else {
            return false;
        };
        buffer.close();
        tracing::debug!(buffer = %id, "buffer deleted");
        true
    }

    /// Whether buffer `id` exists.
    pub fn contains(&self, id: &BufferId) -> bool {
        read(&self.inner.buffers).contains_key(id)
    }

    /// The ids of every buffer, sorted.
    pub fn ids(&self) -> Vec<BufferId> {
        let mut ids: Vec<BufferId> = read(&self.inner.buffers).keys().cloned().collect();
        ids.sort();
        ids
    }

    /// A snapshot of buffer `id`'s counters, or `None` if it does not exist.
    pub fn stats(&self, id: &BufferId) -> Option<BufferStats> {
        let buffer = read(&self.inner.buffers).get(id).cloned()?;
        Some(buffer.stats())
    }
}

impl Default for BufferConfig {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            max_bytes: DEFAULT_MAX_BYTES,
            normalise: false,
        }
    }
}

/// State shared by the hub's clones, its writers (which remove their buffer when dropped) and
/// nothing else.
#[derive(Default)]
pub(crate) struct HubInner {
    /// The live buffers.
    buffers: RwLock<HashMap<BufferId, Arc<Buffer>>>,
    /// The session id allocator shared by every writer (and its normaliser): ids start at 1
    /// and only grow, process-wide.
    sessions: SessionIds,
}

impl HubInner {
    /// The allocator every writer's session ids come from.
    pub(crate) fn sessions(&self) -> &SessionIds {
        &self.sessions
    }

    /// Removes `buffer` from the map if the entry under its id is this very buffer (not a
    /// later one created under the same id), then closes it.
    pub(crate) fn remove(&self, buffer: &Arc<Buffer>) {
        let mut buffers = write(&self.buffers);
        if buffers
            .get(&buffer.id)
            .is_some_and(|current| Arc::ptr_eq(current, buffer))
        {
            buffers.remove(&buffer.id);
        }
        drop(buffers);
        buffer.close();
    }
}

/// One buffer: the ring, the wake-up for its readers and its counters.
pub(crate) struct Buffer {
    /// The key, for errors and logs.
    pub(crate) id: BufferId,
    /// The frames. The writer takes the write lock for one push; readers take the read lock
    /// for one clone (or one scan while resuming after a loss). Never held across `.await`.
    pub(crate) ring: RwLock<Ring>,
    /// What wake-up times are counted from: the arrival of the first frame offered (see
    /// [`SubscriberEntry::offer`]), so the hub reads no clock of its own.
    epoch: OnceLock<Instant>,
    /// Mirrors `Ring::closed`, so a write to a deleted buffer fails without taking the lock.
    pub(crate) closed: AtomicBool,
    /// Frames written.
    pub(crate) frames: AtomicU64,
    /// Payload bytes written.
    pub(crate) bytes: AtomicU64,
    /// Live subscribers, for the subscriber count and unnoticed losses in stats.
    pub(crate) subscribers: Mutex<Vec<Arc<SubscriberEntry>>>,
    /// Drop counter per subscriber class; a class is added at its first subscribe and kept.
    classes: Mutex<Vec<(&'static str, Arc<AtomicU64>)>>,
    /// Which life of `id` this is (see [`Subscriber::instance`](crate::Subscriber::instance)).
    pub(crate) instance: u64,
}

/// Numbers buffer lives across the process.
static INSTANCES: AtomicU64 = AtomicU64::new(1);

impl Buffer {
    fn new(id: BufferId, config: BufferConfig) -> Self {
        Self {
            id,
            ring: RwLock::new(Ring::new(config.capacity, config.max_bytes)),
            epoch: OnceLock::new(),
            closed: AtomicBool::new(false),
            frames: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            subscribers: Mutex::new(Vec::new()),
            classes: Mutex::new(Vec::new()),
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Marks the buffer closed and wakes every reader.
    pub(crate) fn close(&self) {
        write(&self.ring).closed = true;
        self.closed.store(true, Ordering::Release);
        for entry in lock(&self.subscribers).iter() {
            entry.notify.notify_one();
        }
    }

    /// Wakes the subscribers that want a frame of `kind` (`keyframe`) that arrived at
    /// `arrival`, per their [`Wake`](crate::Wake).
    pub(crate) fn offer(&self, kind: MediaKind, keyframe: bool, arrival: Instant) {
        let epoch = *self.epoch.get_or_init(|| arrival);
        let at = arrival.saturating_duration_since(epoch);
        for entry in lock(&self.subscribers).iter() {
            entry.offer(kind, keyframe, at);
        }
    }

    fn class_counter(&self, class: &'static str) -> Arc<AtomicU64> {
        let mut classes = lock(&self.classes);
        if let Some((_, counter)) = classes.iter().find(|(name, _)| *name == class) {
            return Arc::clone(counter);
        }
        let counter = Arc::new(AtomicU64::new(0));
        classes.push((class, Arc::clone(&counter)));
        counter
    }

    /// The position of the subscriber furthest behind (`u64::MAX` with none).
    pub(crate) fn slowest_reader(&self) -> u64 {
        lock(&self.subscribers)
            .iter()
            .map(|entry| entry.next.load(Ordering::Relaxed))
            .min()
            .unwrap_or(u64::MAX)
    }

    pub(crate) fn stats(&self) -> BufferStats {
        let (first_seq, held, session) = {
            let ring = read(&self.ring);
            (ring.first_seq(), ring.len(), ring.session)
        };
        let mut drops: Vec<ClassDrops> = lock(&self.classes)
            .iter()
            .map(|(class, counter)| ClassDrops {
                class,
                dropped: counter.load(Ordering::Relaxed),
            })
            .collect();
        let subscribers = lock(&self.subscribers);
        // A subscriber notices its losses only when it reads; count the frames that have
        // already left the ring under a stalled reader too.
        for entry in subscribers.iter() {
            let unnoticed = first_seq.saturating_sub(entry.next.load(Ordering::Relaxed));
            if let Some(class) = drops.iter_mut().find(|c| c.class == entry.class) {
                class.dropped += unnoticed;
            }
        }
        drops.sort_by_key(|c| c.class);
        BufferStats {
            id: self.id.clone(),
            frames: self.frames.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            subscribers: subscribers.len(),
            held,
            session,
            drops,
        }
    }
}

/// Locks a mutex, ignoring poisoning: every critical section in this crate leaves its data
/// consistent (no user code runs inside), so a panic elsewhere must not take the data path down.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks, ignoring poisoning (see [`lock`]).
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks, ignoring poisoning (see [`lock`]).
pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// Default frames per buffer (`buffer.capacity`).
pub const DEFAULT_CAPACITY: usize = 1024;

/// Default payload bytes per buffer: a subscriber's backlog stays under this.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;
