//! Recording one stream: two tasks joined by a bounded queue of finished segments.
//!
//! The **cutter** reads the playback feed as hub subscriber class `dvr` and cuts it with the
//! HLS segmenter (`tributary_packager::HlsSegmenter`, the same keyframe-aligned cuts and TS
//! muxer the live HLS output uses). It never touches the disk, so it keeps up with the hub
//! whatever the disk does. It closes the open segment when no frame came for 2 × the segment
//! duration (SPEC §DVR "Gaps") and applies a new segment duration at the next keyframe.
//!
//! The **writer** takes finished segments from a queue of [`SEGMENT_QUEUE`] and writes each
//! on tokio's blocking pool ([`crate::disk`]). When the disk is slower than the stream the
//! queue fills and the cutter drops whole segments, counted in
//! [`RecordingStats::dropped_segments`], marking the next one discontinuous (so the hole
//! becomes a gap in the log): a slow disk costs recorded media, never a stall of the hub or
//! of the live outputs. A failed write skips that segment; after [`FAIL_AFTER`] of failing
//! writes the recording is `failed` (event [`RecordingEvent::Failed`]), and the first write
//! that succeeds again makes it `recording` once more ([`RecordingEvent::Started`] with
//! `resumed`).
//!
//! One writer per directory at a time: a new recording of the same directory (a restart of the
//! recording) waits until the previous writer has written its last segment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tributary_hub::{Batch, Batched, Delivery, Subscriber, Wake};
use tributary_media::{Frame, MediaKind, StreamCode};
use tributary_packager::{HlsConfig, HlsEvent, HlsSegmenter, SegmentFormat, UnixMillis};

use crate::disk::{Disk, Pending, SharedLog};
use crate::lock;
use crate::retention::Retention;

/// What a recording is told about its settings; changes reach it without a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The shortest segment: cut at the first keyframe at or after it.
    pub segment: Duration,
    /// What retention keeps.
    pub retention: Retention,
}

impl Settings {
    /// From a stream's `dvr` section (`segment_duration` 0 → 4 s).
    pub fn of(dvr: &tributary_domain::Dvr) -> Self {
        let secs = if dvr.segment_duration == 0 {
            DEFAULT_SEGMENT_SEC
        } else {
            dvr.segment_duration
        };
        Self {
            segment: Duration::from_secs(u64::from(secs)),
            retention: Retention::of(dvr),
        }
    }
}

/// Something that happened to a recording, for the engine's event bus (SPEC §DVR "Events").
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RecordingEvent {
    /// Recording started; `resumed` when writes work again after the recording had failed.
    Started {
        /// Writes recovered after a failure.
        resumed: bool,
    },
    /// Recording stopped; its last segment is on disk.
    Stopped,
    /// Writes have failed for [`FAIL_AFTER`].
    Failed {
        /// The segment whose write failed last.
        segment: String,
        /// Why.
        error: String,
    },
    /// A segment is on disk and in the log.
    SegmentWritten {
        /// Its file name.
        segment: String,
        /// Its duration.
        duration_sec: f64,
        /// Its size.
        size_bytes: u64,
        /// The wall time of its first frame.
        wall_time: UnixMillis,
        /// It follows a discontinuity.
        discontinuity: bool,
    },
}

/// Told of every [`RecordingEvent`], from the recording's tasks; must not block.
pub type RecordingObserver = Arc<dyn Fn(&StreamCode, &RecordingEvent) + Send + Sync>;

/// A recording's state as it runs: counters read by metrics and `runtime.dvr`.
#[derive(Debug, Default)]
pub struct RecordingStats {
    /// Segments written (`dvr_segments_written_total`).
    pub segments_written: AtomicU64,
    /// Bytes written (`dvr_bytes_written_total`).
    pub bytes_written: AtomicU64,
    /// Segments dropped because the disk fell behind (the queue to the writer was full).
    pub dropped_segments: AtomicU64,
    /// Writes that failed.
    pub failed_writes: AtomicU64,
    /// Microseconds spent in `fsync` (segment file and log line), over all segments written.
    pub sync_micros: AtomicU64,
    /// Whether retention may remove segments (`retention_sec` or `max_size_gb` set): the
    /// playlist is then a sliding one, not an `EVENT` one ([`crate::playlist`]).
    pub(crate) retention_on: AtomicBool,
    /// Segments marked discontinuous that retention removed while this run recorded; changed
    /// under the log's lock, with the log, so a reader sees both of one moment.
    pub(crate) expired_discontinuities: AtomicU64,
    /// Status and last error.
    pub(crate) health: Mutex<Health>,
}

/// The recording's status and its last error.
#[derive(Debug, Clone, Default)]
pub(crate) struct Health {
    /// `failed` once writes have failed for [`FAIL_AFTER`].
    pub(crate) failed: bool,
    /// The writer has ended.
    pub(crate) stopped: bool,
    /// When writes started failing (cleared by a success).
    pub(crate) failing_since: Option<Instant>,
    /// The last write error and when.
    pub(crate) last_error: Option<(String, UnixMillis)>,
}

impl RecordingStats {
    /// `recording`, `failed` or `stopped`.
    pub fn status(&self) -> &'static str {
        let health = lock(&self.health);
        if health.stopped {
            "stopped"
        } else if health.failed {
            "failed"
        } else {
            "recording"
        }
    }

    /// The last write error and when it happened.
    pub fn last_error(&self) -> Option<(String, UnixMillis)> {
        lock(&self.health).last_error.clone()
    }
}

/// The parts of one running recording the registry keeps.
pub(crate) struct Running {
    /// Settings, changed by [`crate::Recordings::apply`].
    pub(crate) settings: watch::Sender<Settings>,
    /// Ends the cutter (which closes its segment and lets the writer finish).
    pub(crate) stop: CancellationToken,
}

/// Starts the two tasks of one recording (inside a tokio runtime).
pub(crate) fn spawn(
    subscriber: Subscriber,
    code: StreamCode,
    dir: PathBuf,
    settings: Settings,
    log: SharedLog,
    stats: Arc<RecordingStats>,
    observer: RecordingObserver,
    dir_lock: Arc<tokio::sync::Mutex<()>>,
) -> Running {
    let (settings_tx, settings_rx) = watch::channel(settings);
    let (queue, segments) = mpsc::channel(SEGMENT_QUEUE);
    let stop = CancellationToken::new();
    subscriber.set_wake(Wake::VideoKeyframe {
        within: WAKE_WITHIN,
    });
    let span = tracing::info_span!("dvr", stream = %code);
    let cutter = Cutter {
        subscriber,
        settings: settings_rx.clone(),
        queue,
        stats: Arc::clone(&stats),
        discontinuity: false,
    };
    tokio::spawn(tracing::Instrument::instrument(
        cutter.run(stop.clone()),
        span.clone(),
    ));
    let writer = Writer {
        code,
        dir,
        log,
        stats,
        observer,
        settings: settings_rx,
    };
    tokio::spawn(tracing::Instrument::instrument(
        writer.run(segments, dir_lock),
        span,
    ));
    Running {
        settings: settings_tx,
        stop,
    }
}

/// The hub side: frames in, finished segments onto the queue.
struct Cutter {
    subscriber: Subscriber,
    settings: watch::Receiver<Settings>,
    queue: mpsc::Sender<Pending>,
    stats: Arc<RecordingStats>,
    /// A segment was dropped: the next one queued is marked discontinuous.
    discontinuity: bool,
}

impl Cutter {
    async fn run(mut self, stop: CancellationToken) {
        let mut segment = self.settings.borrow_and_update().segment;
        let mut segmenter = segmenter(segment);
        let mut resize: Option<Duration> = None;
        let mut video = false;
        let mut idle_at: Option<Instant> = None;
        loop {
            let first = tokio::select! {
                () = stop.cancelled() => None,
                changed = self.settings.changed() => {
                    if changed.is_err() {
                        None
                    } else {
                        let new = self.settings.borrow_and_update().segment;
                        resize = (new != segment).then_some(new);
                        continue;
                    }
                }
                () = sleep_until(idle_at) => {
                    // No frame for 2 × the segment duration: close the partial segment now;
                    // the next one is discontinuous and the hole becomes a gap.
                    tracing::info!("no media for {:?}; partial segment closed", segment * 2);
                    segmenter.discontinuity();
                    idle_at = None;
                    if self.drain(&mut segmenter).is_err() {
                        return;
                    }
                    continue;
                }
                delivery = self.subscriber.recv() => delivery,
            };
            let wall = SystemTime::now();
            let mono = std::time::Instant::now();
            let mut batch = Batch::new(first, BATCH);
            while let Some(next) = batch.next(&mut self.subscriber) {
                let Batched::Delivery(got) = next else {
                    segmenter.finish();
                    let _ = self.drain(&mut segmenter);
                    return;
                };
                match got {
                    Delivery::Frame(frame) => {
                        let kind = frame.codec.kind();
                        video |= kind == MediaKind::Video;
                        if let Some(new) = resize
                            && (!video || (kind == MediaKind::Video && frame.keyframe))
                        {
                            // New settings apply from this keyframe on: the open segment
                            // closes here, the next is cut by the new length.
                            segmenter.finish();
                            if self.drain(&mut segmenter).is_err() {
                                return;
                            }
                            segmenter = self::segmenter(new);
                            segment = new;
                            resize = None;
                        }
                        segmenter.push(&frame, arrival_wall(&frame, wall, mono));
                    }
                    Delivery::Lagged { dropped } => {
                        tracing::warn!(dropped, "DVR fell behind the hub; frames lost");
                        segmenter.discontinuity();
                    }
                }
                if self.drain(&mut segmenter).is_err() {
                    return;
                }
            }
            if batch.full() {
                tokio::task::yield_now().await;
            }
            idle_at = Some(Instant::now() + segment * 2);
        }
    }

    /// Queues finished segments; a full queue drops the segment (counted). `Err` when the
    /// writer has gone.
    fn drain(&mut self, segmenter: &mut HlsSegmenter) -> Result<(), ()> {
        while let Some(event) = segmenter.pull() {
            let HlsEvent::Segment(segment) = event else {
                if let HlsEvent::Omitted { track, codec } = event {
                    tracing::warn!(track = track.0, %codec, "DVR TS cannot carry this codec; track not recorded");
                }
                continue;
            };
            let pending = Pending {
                start: segment.program_date_time,
                duration_ms: u64::try_from(segment.duration.as_millis()).unwrap_or(0),
                discontinuity: segment.discontinuity || self.discontinuity,
                bytes: segment.bytes,
            };
            match self.queue.try_send(pending) {
                Ok(()) => self.discontinuity = false,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    let dropped = self.stats.dropped_segments.fetch_add(1, Ordering::Relaxed) + 1;
                    if dropped == 1 || dropped.is_multiple_of(10) {
                        tracing::warn!(dropped, "disk behind: DVR segment dropped");
                    }
                    self.discontinuity = true;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(()),
            }
        }
        Ok(())
    }
}

/// The disk side: finished segments onto disk, one at a time on the blocking pool.
struct Writer {
    code: StreamCode,
    dir: PathBuf,
    log: SharedLog,
    stats: Arc<RecordingStats>,
    observer: RecordingObserver,
    settings: watch::Receiver<Settings>,
}

impl Writer {
    async fn run(
        self,
        mut segments: mpsc::Receiver<Pending>,
        dir_lock: Arc<tokio::sync::Mutex<()>>,
    ) {
        let _owner = dir_lock.lock_owned().await;
        let mut disk: Option<Disk> = None;
        while let Some(segment) = segments.recv().await {
            let retention = self.settings.borrow().retention;
            let now = UnixMillis::from_system_time(SystemTime::now());
            let (dir, code, log, stats) = (
                self.dir.clone(),
                self.code.to_string(),
                Arc::clone(&self.log),
                Arc::clone(&self.stats),
            );
            let opened = disk.take();
            let outcome = tokio::task::spawn_blocking(move || {
                let mut disk = match opened {
                    Some(disk) => disk,
                    None => match Disk::open(&dir, &code, log) {
                        Ok(disk) => disk.counting_into(stats),
                        Err(e) => return (None, Err(e)),
                    },
                };
                let written = disk.write(&segment, retention, now);
                if written.is_ok()
                    && let Err(error) = disk.write_index("recording", None)
                {
                    tracing::warn!(%error, "index.json not written");
                }
                (Some(disk), written)
            })
            .await;
            let Ok((kept, written)) = outcome else {
                tracing::error!("DVR write task panicked");
                return;
            };
            disk = kept;
            match written {
                Ok(written) => self.succeeded(&written),
                Err(error) => self.failed(&error, now),
            }
        }
        let now = UnixMillis::from_system_time(SystemTime::now());
        if let Some(disk) = disk {
            let closed =
                tokio::task::spawn_blocking(move || disk.write_index("stopped", Some(now))).await;
            if let Ok(Err(error)) = closed {
                tracing::warn!(%error, "index.json not written at stop");
            }
        }
        lock(&self.stats.health).stopped = true;
        (self.observer)(&self.code, &RecordingEvent::Stopped);
        tracing::info!("recording stopped");
    }

    fn succeeded(&self, written: &crate::disk::Written) {
        let entry = written.entry;
        let stats = &self.stats;
        stats.segments_written.fetch_add(1, Ordering::Relaxed);
        stats.bytes_written.fetch_add(entry.size, Ordering::Relaxed);
        stats.sync_micros.fetch_add(
            u64::try_from(written.sync.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let recovered = {
            let mut health = lock(&stats.health);
            let was_failing = health.failing_since.take().is_some();
            let was_failed = std::mem::take(&mut health.failed);
            if was_failing {
                tracing::info!("DVR writes work again");
            }
            was_failed
        };
        if recovered {
            (self.observer)(&self.code, &RecordingEvent::Started { resumed: true });
        }
        if written.removed > 0 {
            tracing::debug!(removed = written.removed, "retention removed segments");
        }
        (self.observer)(
            &self.code,
            &RecordingEvent::SegmentWritten {
                segment: entry.file(),
                duration_sec: entry.duration_ms as f64 / 1000.0,
                size_bytes: entry.size,
                wall_time: entry.start,
                discontinuity: entry.discontinuity,
            },
        );
    }

    fn failed(&self, error: &std::io::Error, now: UnixMillis) {
        let stats = &self.stats;
        let failures = stats.failed_writes.fetch_add(1, Ordering::Relaxed) + 1;
        let segment = crate::log::segment_name(lock(&self.log).last().map_or(0, |e| e.seq + 1));
        let mono = Instant::now();
        let newly_failed = {
            let mut health = lock(&stats.health);
            health.last_error = Some((error.to_string(), now));
            let since = *health.failing_since.get_or_insert(mono);
            let failed = !health.failed && mono.duration_since(since) >= FAIL_AFTER;
            health.failed |= failed;
            failed
        };
        if failures == 1 || failures.is_multiple_of(10) || newly_failed {
            tracing::warn!(failures, %error, dir = %self.dir.display(), "DVR segment not written");
        }
        if newly_failed {
            (self.observer)(
                &self.code,
                &RecordingEvent::Failed {
                    segment,
                    error: error.to_string(),
                },
            );
        }
    }
}

/// A segmenter cutting TS segments of at least `segment`.
fn segmenter(segment: Duration) -> HlsSegmenter {
    HlsSegmenter::new(HlsConfig {
        segment,
        first_number: 0,
        grid: None,
        format: SegmentFormat::Ts,
        part: None,
    })
}

/// The wall time at which `frame` arrived (as the live HLS output dates its segments).
fn arrival_wall(frame: &Frame, wall: SystemTime, mono: std::time::Instant) -> UnixMillis {
    let age = mono.saturating_duration_since(frame.arrival);
    UnixMillis::from_system_time(wall.checked_sub(age).unwrap_or(wall))
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Per-directory writer locks, so two writers never share a directory.
#[derive(Debug, Default)]
pub(crate) struct DirLocks(Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>);

impl DirLocks {
    pub(crate) fn of(&self, dir: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = lock(&self.0);
        // Forget locks nobody holds or waits for.
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        Arc::clone(locks.entry(dir.to_owned()).or_default())
    }
}

/// Segments waiting for the disk: about half a minute of 4 s segments. Beyond it segments are
/// dropped (counted), so a stuck disk holds at most this much media in memory.
pub const SEGMENT_QUEUE: usize = 8;
/// How long writes must fail before the recording is `failed` (SPEC §DVR "Events").
pub const FAIL_AFTER: Duration = Duration::from_secs(30);
/// `segment_duration` 0 means this (SPEC §Defaults).
const DEFAULT_SEGMENT_SEC: u32 = 4;
/// Frames handled per wake-up before yielding.
const BATCH: usize = 256;
/// The longest frames wait in the hub between video keyframes before the cutter reads them.
const WAKE_WITHIN: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tributary_hub::{BufferId, Hub, SubscribeFrom};
    use tributary_media::{Codec, Frame, SessionId, TrackId, Ts90};

    use super::*;

    /// One H.264 keyframe a second: every frame closes a 1 s segment.
    fn keyframe(i: i64) -> Frame {
        Frame {
            track: TrackId(0x100),
            codec: Codec::H264,
            pts: Ts90(i * 90_000),
            dts: Ts90(i * 90_000),
            keyframe: true,
            session: SessionId(1),
            arrival: std::time::Instant::now(),
            payload: Bytes::from_static(&[0, 0, 0, 1, 0x65, 0x88, 0x84]),
            config: None,
        }
    }

    async fn until(what: &str, mut ready: impl FnMut() -> bool) {
        for _ in 0..500 {
            if ready() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// A disk that does not take segments (the directory's writer lock held elsewhere) costs
    /// whole segments, counted, never the hub: its writer is not held up and the `dvr`
    /// subscriber loses no frame. Once the disk moves, the queued segments are written and
    /// the first one after the loss is discontinuous.
    #[tokio::test]
    async fn a_stuck_disk_drops_counted_segments_and_never_the_hub() {
        let tmp = tempfile::tempdir().unwrap();
        let hub = Hub::new();
        let code: StreamCode = "cam".parse().unwrap();
        let id = BufferId::Stream(code.clone());
        let mut writer = hub.create(id.clone(), 4096).unwrap();
        let subscriber = hub
            .subscribe(&id, SubscribeFrom::Now, crate::CLASS)
            .unwrap();
        let dir_lock = Arc::new(tokio::sync::Mutex::new(()));
        let stuck = Arc::clone(&dir_lock).lock_owned().await;
        let log = SharedLog::default();
        let stats = Arc::new(RecordingStats::default());
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&events);
        let observer: RecordingObserver = Arc::new(move |_, e: &RecordingEvent| {
            lock(&seen).push(e.clone());
        });
        let running = spawn(
            subscriber,
            code,
            tmp.path().join("cam"),
            Settings {
                segment: Duration::from_secs(1),
                retention: Retention::default(),
            },
            Arc::clone(&log),
            Arc::clone(&stats),
            observer,
            Arc::clone(&dir_lock),
        );

        for i in 0..30 {
            writer.write(keyframe(i)).unwrap();
        }
        // 29 segments closed: 8 wait in the queue, the rest are dropped.
        until("the queue to fill", || {
            stats.dropped_segments.load(Ordering::Relaxed) >= 21
        })
        .await;
        assert_eq!(stats.segments_written.load(Ordering::Relaxed), 0);

        drop(stuck);
        until("the queued segments on disk", || {
            stats.segments_written.load(Ordering::Relaxed) == SEGMENT_QUEUE as u64
        })
        .await;
        for i in 30..33 {
            writer.write(keyframe(i)).unwrap();
        }
        until("the next segments on disk", || {
            stats.segments_written.load(Ordering::Relaxed) == SEGMENT_QUEUE as u64 + 3
        })
        .await;
        let entries = lock(&log).clone();
        assert_eq!(entries.len(), SEGMENT_QUEUE + 3);
        assert!(entries[..SEGMENT_QUEUE].iter().all(|e| !e.discontinuity));
        assert!(
            entries[SEGMENT_QUEUE].discontinuity,
            "the segment after the dropped ones: {entries:?}"
        );
        let drops = writer.stats().drops;
        assert!(drops.iter().all(|d| d.dropped == 0), "hub drops: {drops:?}");

        running.stop.cancel();
        until("recording.stopped", || {
            lock(&events).contains(&RecordingEvent::Stopped)
        })
        .await;
        let written = lock(&events)
            .iter()
            .filter(|e| matches!(e, RecordingEvent::SegmentWritten { .. }))
            .count();
        // The open segment is closed at stop: one more.
        assert_eq!(written, SEGMENT_QUEUE + 4);
        assert_eq!(stats.status(), "stopped");
    }
}
