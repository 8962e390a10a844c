//! Recording of live streams (SPEC §DVR): the playback feed cut into keyframe-aligned MPEG-TS
//! segments on disk, a segment log that is the recording's truth, retention, and the
//! recording's playlist built on request from that log.
//!
//! A recording lives in `<storage root>/<code>/` (the recording id is the stream code):
//!
//! ```text
//! 000000.ts 000001.ts ...   segments, never overwritten; numbering resumes above the highest
//! segments.jsonl            one line per segment, appended and synced when it is on disk
//! index.json                the summary (status, range, gaps), replaced atomically
//! ```
//!
//! - [`Recordings`] is the registry the engine drives: [`start`](Recordings::start),
//!   [`stop`](Recordings::stop), [`apply`](Recordings::apply) (new settings without a
//!   restart), and the read side for the API: [`view`](Recordings::view) (log and status of
//!   a recording, running or not) and [`segment`](Recordings::segment) (a segment's file,
//!   resolved safely).
//! - [`recorder`] holds the two tasks of a running recording: the cutter on the hub, the
//!   writer on the disk, and the bounded queue between them that keeps a slow disk off the
//!   media path.
//! - [`log`], [`retention`], [`playlist`] and [`timeshift`] are the pure parts: parsing and
//!   deriving from the log, which segments retention drops, the playlist text, and the window
//!   a timeshift query asks for.
//! - [`clip`] remuxes a window of segments into one fragmented MP4 (`clip.mp4`), streamed a
//!   segment at a time.
//! - [`disk`] is the blocking I/O of one directory; [`listed`] caches which segments a
//!   stopped recording's log lists, so serving a segment does not read the whole log.
//!
//! VOD mounts are the engine's (`engine::vod`); they share the path checks of
//! [`tributary_domain::roots`] with the recordings here.
#![forbid(unsafe_code)]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

pub mod clip;
pub mod disk;
pub mod listed;
pub mod log;
pub mod playlist;
pub mod recorder;
pub mod retention;
pub mod timeshift;

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tributary_domain::roots::LiveRoots;
use tributary_hub::{BufferId, Hub, SubscribeFrom};
use tributary_media::StreamCode;
pub use tributary_packager::UnixMillis;

pub use crate::disk::SharedLog;
pub use crate::log::{Gap, SegmentEntry, Summary};
pub use crate::playlist::PlaylistKind;
pub use crate::recorder::{RecordingEvent, RecordingObserver, RecordingStats, Settings};
pub use crate::retention::Retention;

use crate::listed::ListedCache;
use crate::recorder::{DirLocks, Running};

/// Every recording of the process: the running ones, and the way to the stopped ones on disk.
pub struct Recordings {
    /// The hub, for the playback feed.
    hub: Hub,
    /// The DVR root (`<data_dir>/dvr`): where a stream without `storage_path` records.
    root: PathBuf,
    /// The server's one roots handle: a `storage_path` must resolve inside one of its
    /// `storage` roots (`security.storage_roots`, SPEC §Security "File serving"), read at each
    /// recording start or read, so a configuration change needs nothing from this registry;
    /// `None`: any plain absolute path.
    storage_roots: Option<LiveRoots>,
    /// Told of recording events.
    observer: RecordingObserver,
    /// Running recordings by stream.
    active: Mutex<HashMap<StreamCode, Active>>,
    /// One writer per directory.
    dirs: DirLocks,
    /// The segments stopped recordings' logs list, for segment requests.
    listed: ListedCache,
}

/// A running recording.
struct Active {
    /// Its storage root and directory.
    root: PathBuf,
    dir: PathBuf,
    /// Its log, shared with the writer.
    log: SharedLog,
    /// Its counters.
    stats: Arc<RecordingStats>,
    /// Its tasks' controls.
    running: Running,
}

/// A recording as the API reads it.
#[derive(Debug, Clone)]
pub struct RecordingView {
    /// The stream (and recording id).
    pub code: StreamCode,
    /// `recording`, `failed` or `stopped`.
    pub status: &'static str,
    /// Its directory.
    pub dir: PathBuf,
    /// Its segments, by `seq`.
    pub entries: Vec<SegmentEntry>,
    /// When it stopped (stopped recordings whose `index.json` says).
    pub stopped_at: Option<String>,
    /// Counters of a running recording.
    pub stats: Option<Arc<RecordingStats>>,
    /// A running recording whose retention may remove its oldest segments: its playlist
    /// slides, with the discontinuous segments removed so far counted.
    pub sliding: Option<Sliding>,
}

/// What the sliding playlist of a recording under retention needs besides its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sliding {
    /// Discontinuous segments retention removed (read with the log, under its lock).
    pub expired_discontinuities: u64,
}

impl RecordingView {
    /// The playlist: `VOD` when stopped; while recording `EVENT`, or a sliding one when
    /// retention may remove its head ([`playlist::recording_kind`]); segment URIs as `uris`
    /// says (the play signature, when play URLs are signed).
    pub fn playlist(&self, uris: playlist::Uris<'_>) -> String {
        let kind = if self.status == "stopped" {
            PlaylistKind::Vod
        } else {
            playlist::recording_kind(&self.entries, self.sliding)
        };
        playlist::render_with(&self.entries, kind, uris)
    }
}

/// Why a recording could not start or a file could not be served.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DvrError {
    /// The playback feed is not there.
    #[error("stream {code}: no playback feed to record: {source}")]
    Subscribe {
        /// The stream.
        code: StreamCode,
        /// Why.
        source: tributary_hub::HubError,
    },
    /// `storage_path` is not an absolute path without `..`.
    #[error("stream {code}: dvr.storage_path {path:?} must be an absolute path without '..'")]
    StoragePath {
        /// The stream.
        code: StreamCode,
        /// The path.
        path: String,
    },
    /// `storage_path` does not resolve inside `security.storage_roots`.
    #[error("stream {code}: dvr.storage_path: {source}")]
    OutsideRoots {
        /// The stream.
        code: StreamCode,
        /// Why.
        source: tributary_domain::roots::PathError,
    },
    /// No tokio runtime to run the recording in.
    #[error("stream {code}: recording needs a tokio runtime")]
    NoRuntime {
        /// The stream.
        code: StreamCode,
    },
}

impl Recordings {
    /// A registry recording under `root` by default, telling `observer` what happens.
    pub fn new(hub: Hub, root: PathBuf, observer: RecordingObserver) -> Self {
        Self {
            hub,
            root,
            storage_roots: None,
            observer,
            active: Mutex::new(HashMap::new()),
            dirs: DirLocks::default(),
            listed: ListedCache::default(),
        }
    }

    /// Holds every `storage_path` to the `storage` roots of `roots` (`security.storage_roots`)
    /// as they are when a recording starts or is read: it must resolve, symlinks included,
    /// inside one of them. A recording already running keeps writing where it started.
    #[must_use]
    pub fn with_storage_roots(mut self, roots: LiveRoots) -> Self {
        self.storage_roots = Some(roots);
        self
    }

    /// The storage root of a stream with `storage_path` (`""`: the DVR root).
    pub fn root_for(&self, code: &StreamCode, storage_path: &str) -> Result<PathBuf, DvrError> {
        if storage_path.is_empty() {
            return Ok(self.root.clone());
        }
        let path = Path::new(storage_path);
        if !tributary_domain::roots::plain_absolute(path) {
            return Err(DvrError::StoragePath {
                code: code.clone(),
                path: storage_path.to_owned(),
            });
        }
        if let Some(live) = &self.storage_roots {
            // Validation compared the text when the stream was saved; a symlink since may
            // lead elsewhere.
            let roots = live.get();
            tributary_domain::roots::resolve_inside(path, &roots.storage, |p| {
                std::fs::canonicalize(p)
            })
            .map_err(|source| DvrError::OutsideRoots {
                code: code.clone(),
                source,
            })?;
        }
        Ok(path.to_owned())
    }

    /// Starts recording `code`'s playback feed with `dvr`'s settings (a running recording of
    /// the stream is stopped first). Emits [`RecordingEvent::Started`].
    pub fn start(&self, code: &StreamCode, dvr: &tributary_domain::Dvr) -> Result<(), DvrError> {
        let root = self.root_for(code, &dvr.storage_path)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(DvrError::NoRuntime { code: code.clone() });
        }
        let subscriber = self
            .hub
            .subscribe(
                &BufferId::Stream(code.clone()),
                SubscribeFrom::LastKeyframe,
                CLASS,
            )
            .map_err(|source| DvrError::Subscribe {
                code: code.clone(),
                source,
            })?;
        self.stop(code);
        let dir = root.join(code.as_str());
        let log = SharedLog::default();
        let stats = Arc::new(RecordingStats::default());
        stats.retention_on.store(
            Settings::of(dvr).retention != Retention::default(),
            Ordering::Relaxed,
        );
        let running = recorder::spawn(
            subscriber,
            code.clone(),
            dir.clone(),
            Settings::of(dvr),
            Arc::clone(&log),
            Arc::clone(&stats),
            Arc::clone(&self.observer),
            self.dirs.of(&dir),
        );
        tracing::info!(stream = %code, dir = %dir.display(), "recording started");
        lock(&self.active).insert(
            code.clone(),
            Active {
                root,
                dir,
                log,
                stats,
                running,
            },
        );
        (self.observer)(code, &RecordingEvent::Started { resumed: false });
        Ok(())
    }

    /// Stops recording `code`: its open segment is closed and written, then `index.json` says
    /// `stopped` ([`RecordingEvent::Stopped`] once the writer is done). Until then the
    /// recording is still read from memory, so a playlist never misses its last segments.
    pub fn stop(&self, code: &StreamCode) {
        if let Some(active) = lock(&self.active).get(code) {
            active.running.stop.cancel();
        }
    }

    /// New settings for a running recording, without a restart: retention from the next
    /// segment, the segment duration from the next keyframe. (A new `storage_path` is a
    /// stop and start, which the engine does.)
    pub fn apply(&self, code: &StreamCode, dvr: &tributary_domain::Dvr) {
        if let Some(active) = lock(&self.active).get(code) {
            let settings = Settings::of(dvr);
            active.stats.retention_on.store(
                settings.retention != Retention::default(),
                Ordering::Relaxed,
            );
            active.running.settings.send_replace(settings);
        }
    }

    /// Whether `code` is being recorded.
    pub fn is_recording(&self, code: &StreamCode) -> bool {
        lock(&self.active).get(code).is_some_and(Active::running)
    }

    /// The running recordings' counters (recordings that have finished stopping are
    /// forgotten here).
    pub fn stats(&self) -> Vec<(StreamCode, Arc<RecordingStats>)> {
        let mut active = lock(&self.active);
        active.retain(|_, a| a.stats.status() != "stopped");
        active
            .iter()
            .filter(|(_, a)| a.running())
            .map(|(code, a)| (code.clone(), Arc::clone(&a.stats)))
            .collect()
    }

    /// A running recording's directory and what its log holds now: segments, bytes and the
    /// newest segment's wall time (no copy of the log).
    pub fn totals(&self, code: &StreamCode) -> Option<(PathBuf, usize, u64, Option<UnixMillis>)> {
        let active = lock(&self.active);
        let active = active.get(code).filter(|a| a.running())?;
        let entries = lock(&active.log);
        Some((
            active.dir.clone(),
            entries.len(),
            entries.iter().map(|e| e.size).sum(),
            entries.last().map(|e| e.start),
        ))
    }

    /// `code`'s recording, running or on disk under `storage_path`; `None` when it has none.
    /// Blocking for a stopped one (reads its log): call it on the blocking pool.
    pub fn view(&self, code: &StreamCode, storage_path: &str) -> Option<RecordingView> {
        let mut registry = lock(&self.active);
        registry.retain(|_, a| a.stats.status() != "stopped");
        if let Some(active) = registry.get(code) {
            let (entries, sliding) = {
                let log = lock(&active.log);
                let sliding = active
                    .stats
                    .retention_on
                    .load(Ordering::Relaxed)
                    .then(|| Sliding {
                        expired_discontinuities: active
                            .stats
                            .expired_discontinuities
                            .load(Ordering::Relaxed),
                    });
                (log.clone(), sliding)
            };
            return Some(RecordingView {
                code: code.clone(),
                status: active.stats.status(),
                dir: active.dir.clone(),
                entries,
                stopped_at: None,
                stats: Some(Arc::clone(&active.stats)),
                sliding,
            });
        }
        drop(registry);
        let root = self.root_for(code, storage_path).ok()?;
        let dir = inside(&root, &root.join(code.as_str())).ok()?;
        let entries = disk::read_log(&dir).ok()?;
        let stopped_at = disk::read_index(&dir)
            .and_then(|index| index.get("stopped_at")?.as_str().map(str::to_owned));
        Some(RecordingView {
            code: code.clone(),
            status: "stopped",
            dir,
            entries,
            stopped_at,
            stats: None,
            sliding: None,
        })
    }

    /// Segment `name` of `code`'s recording, opened, if `name` is one of its own segment
    /// names, listed in its log (a stopped recording's through [`listed`], so a request does
    /// not parse the whole log), and the file (symlinks resolved) lies inside the storage
    /// root. Blocking: call it on the blocking pool.
    pub fn segment(
        &self,
        code: &StreamCode,
        storage_path: &str,
        name: &str,
    ) -> Option<SegmentFile> {
        let seq = log::parse_segment_name(name)?;
        let running = lock(&self.active)
            .get(code)
            .map(|active| (active.root.clone(), logged(&lock(&active.log), seq)));
        let (root, listed) = match running {
            Some(running) => running,
            None => (self.root_for(code, storage_path).ok()?, false),
        };
        let dir = inside(&root, &root.join(code.as_str())).ok()?;
        // Stopped, or running but not listed in memory (its writer still reading the log
        // back at start): the log on disk says.
        if !listed && !self.listed.lists(&dir, seq).ok()? {
            return None;
        }
        let path = inside(&root, &dir.join(name)).ok()?;
        SegmentFile::open(&path).ok()
    }

    /// Starts streaming `window` of `code`'s recording (under `storage_path` when it is not
    /// running) as a fragmented MP4 ([`clip::stream`]): `entries` are its log's segments in
    /// the window. Each file is opened only if it resolves (symlinks included) inside the
    /// storage root. `None` when the storage root cannot be named. Inside a tokio runtime.
    pub fn clip(
        &self,
        code: &StreamCode,
        storage_path: &str,
        entries: Vec<SegmentEntry>,
        window: timeshift::Window,
    ) -> Option<tokio::sync::mpsc::Receiver<Result<Bytes, clip::ClipError>>> {
        let root = match lock(&self.active).get(code) {
            Some(active) => active.root.clone(),
            None => self.root_for(code, storage_path).ok()?,
        };
        let dir = root.join(code.as_str());
        let resolve = move |name: &str| inside(&root, &dir.join(name));
        Some(clip::stream(code.clone(), entries, window, resolve))
    }
}

/// A recorded segment opened for serving.
#[derive(Debug)]
pub struct SegmentFile {
    /// The open file (a regular file, never a symlink).
    pub file: std::fs::File,
    /// Its size in bytes.
    pub size: u64,
}

impl SegmentFile {
    /// Opens the resolved `path` without following a symlink swapped in since it was
    /// resolved.
    fn open(path: &Path) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(Self {
            file,
            size: meta.len(),
        })
    }
}

/// Whether `entries` (by `seq`) list `seq`.
fn logged(entries: &[SegmentEntry], seq: u64) -> bool {
    entries.binary_search_by_key(&seq, |e| e.seq).is_ok()
}

impl Active {
    /// Not stopping.
    fn running(&self) -> bool {
        !self.running.stop.is_cancelled()
    }
}

impl RecordingStats {
    /// Average `fsync` time per segment written, in milliseconds.
    pub fn sync_ms_per_segment(&self) -> Option<f64> {
        let n = self.segments_written.load(Ordering::Relaxed);
        (n > 0).then(|| self.sync_micros.load(Ordering::Relaxed) as f64 / n as f64 / 1000.0)
    }
}

/// `path` with every symlink resolved, if it lies inside `root` (also resolved); the
/// resolution is what gets opened, so a link swapped in later cannot lead out. The check is
/// the one VOD mounts and `security.storage_roots` use ([`tributary_domain::roots`]).
fn inside(root: &Path, path: &Path) -> io::Result<PathBuf> {
    let root = std::path::absolute(root)?;
    let path = std::path::absolute(path)?;
    tributary_domain::roots::resolve_inside(&path, &[root], |p| p.canonicalize())
        .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e.to_string()))
}

/// The hub subscriber class of recordings (`tributary_buffer_drops_total{subscriber="dvr"}`).
pub const CLASS: &str = "dvr";

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn recordings(root: &Path) -> Recordings {
        Recordings::new(Hub::new(), root.join("dvr"), Arc::new(|_, _| {}))
    }

    #[test]
    fn a_storage_path_must_resolve_inside_the_storage_roots() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let inside = base.join("media");
        let outside = base.join("elsewhere");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // A link under the root that leads out of it.
        std::os::unix::fs::symlink(&outside, inside.join("escape")).unwrap();
        let code = StreamCode::parse("cam").unwrap();
        let live = LiveRoots::new(tributary_domain::roots::Roots {
            file_input: Vec::new(),
            storage: vec![inside.clone()],
        });
        let roots = recordings(&base).with_storage_roots(live.clone());
        let text = |p: &Path| p.to_str().unwrap().to_owned();

        assert_eq!(roots.root_for(&code, "").unwrap(), base.join("dvr"));
        let fresh = inside.join("rec/new");
        assert_eq!(roots.root_for(&code, &text(&fresh)).unwrap(), fresh);
        for refused in [outside.clone(), inside.join("escape/rec")] {
            let error = roots.root_for(&code, &text(&refused)).unwrap_err();
            assert!(
                matches!(error, DvrError::OutsideRoots { .. }),
                "{refused:?}: {error}"
            );
            assert!(error.to_string().contains("dvr.storage_path"), "{error}");
        }
        assert!(matches!(
            roots.root_for(&code, "relative/dir"),
            Err(DvrError::StoragePath { .. })
        ));
        // A change of the shared roots holds the next start to them.
        live.set(tributary_domain::roots::Roots {
            file_input: Vec::new(),
            storage: vec![outside.clone()],
        });
        assert_eq!(roots.root_for(&code, &text(&outside)).unwrap(), outside);
        assert!(roots.root_for(&code, &text(&fresh)).is_err());
        // Without roots (the engine always gives them), any plain absolute path.
        let open = recordings(&base);
        assert_eq!(open.root_for(&code, &text(&outside)).unwrap(), outside);
    }
}
