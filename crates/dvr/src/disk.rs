//! One recording directory on disk: blocking I/O only, run on tokio's blocking pool by the
//! writer task ([`crate::recorder`]).
//!
//! A segment is written in this order, each step synced before the next: the TS file (created
//! new, so nothing is ever overwritten), its line appended to `segments.jsonl`, then retention
//! (the log rewritten without the expired lines, atomically, before their files go), then
//! `index.json` (temp file + rename). A failure at any step undoes what that segment wrote (its
//! file removed, the log cut back to its previous length), so the directory always holds whole
//! segments that the log lists.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tributary_packager::UnixMillis;

use crate::log::{SegmentEntry, Summary, parse_log, parse_segment_name, segment_name};
use crate::recorder::RecordingStats;
use crate::retention::Retention;

/// The segments of one recording, shared between its writer and the HTTP routes that build
/// playlists from it. Locked briefly: an append, a retention cut, a copy for a playlist.
pub type SharedLog = Arc<Mutex<Vec<SegmentEntry>>>;

/// A finished segment on its way to disk.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Wall time of its first frame.
    pub start: UnixMillis,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// It follows a discontinuity.
    pub discontinuity: bool,
    /// The MPEG-TS bytes.
    pub bytes: Bytes,
}

/// What writing one segment did.
#[derive(Debug, Clone)]
pub struct Written {
    /// Its log entry.
    pub entry: SegmentEntry,
    /// Segments retention removed after it.
    pub removed: usize,
    /// Time spent in `fsync` for it (segment file and log line).
    pub sync: Duration,
}

/// An open recording directory.
#[derive(Debug)]
pub struct Disk {
    /// `<root>/<code>/`.
    dir: PathBuf,
    /// The stream code, for `index.json`.
    code: String,
    /// `segments.jsonl`, opened for appending.
    log_file: File,
    /// Its length: where a failed append is cut back to.
    log_len: u64,
    /// The segments, shared with readers.
    entries: SharedLog,
    /// The next segment's `seq`: above every entry and every segment file present.
    next_seq: u64,
    /// The next segment written follows a hole: it is the first since the directory was
    /// opened on an existing recording (a restart), or the write before it failed. It is
    /// marked discontinuous, so the hole becomes a gap.
    after_hole: bool,
    /// Counts the discontinuous segments retention removes (under the log's lock), for the
    /// sliding playlist's `#EXT-X-DISCONTINUITY-SEQUENCE`.
    expired_discontinuities: Option<Arc<RecordingStats>>,
}

impl Disk {
    /// Opens (creating it if needed) the recording directory `dir`, reading its log: numbering
    /// continues above the highest `seq` logged or present as a file, and a cut-short last
    /// line (a crash mid-append) is cut off.
    pub fn open(dir: &Path, code: &str, entries: SharedLog) -> io::Result<Self> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let log_path = dir.join(LOG);
        let text = match fs::read(&log_path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let parsed = parse_log(&text);
        for (line, error) in &parsed.bad_lines {
            tracing::warn!(dir = %dir.display(), line, %error, "segment log line skipped");
        }
        let whole = text.rfind('\n').map_or(0, |i| i + 1) as u64;
        let mut logged = parsed.entries;
        logged.retain(|e| dir.join(e.file()).is_file());
        let mut highest = logged.last().map(|e| e.seq);
        let first = logged.first().map(|e| e.seq);
        for item in fs::read_dir(dir)? {
            let item = item?;
            let Some(seq) = item.file_name().to_str().and_then(parse_segment_name) else {
                continue;
            };
            highest = highest.max(Some(seq));
            if first.is_none_or(|first| seq < first) && !logged.iter().any(|e| e.seq == seq) {
                // Retention rewrote the log but stopped before removing this file.
                let _ = fs::remove_file(item.path());
            }
        }
        let log_file = open_append(&log_path)?;
        if parsed.torn_tail || log_file.metadata()?.len() != whole {
            log_file.set_len(whole)?;
        }
        let after_hole = !logged.is_empty();
        *crate::lock(&entries) = logged;
        Ok(Self {
            dir: dir.to_owned(),
            code: code.to_owned(),
            log_file,
            log_len: whole,
            entries,
            next_seq: highest.map_or(0, |h| h + 1),
            after_hole,
            expired_discontinuities: None,
        })
    }

    /// Counts the discontinuous segments retention removes in `stats`.
    pub(crate) fn counting_into(mut self, stats: Arc<RecordingStats>) -> Self {
        self.expired_discontinuities = Some(stats);
        self
    }

    /// Writes one segment and applies `retention` at `now` (see the module doc for the order
    /// and what a failure undoes).
    pub fn write(
        &mut self,
        segment: &Pending,
        retention: Retention,
        now: UnixMillis,
    ) -> io::Result<Written> {
        let seq = self.next_seq;
        // A failed attempt's number is not reused either.
        self.next_seq += 1;
        let entry = SegmentEntry {
            seq,
            start: segment.start,
            duration_ms: segment.duration_ms,
            size: segment.bytes.len() as u64,
            discontinuity: segment.discontinuity || self.after_hole,
        };
        let path = self.dir.join(segment_name(seq));
        let mut sync = Duration::ZERO;
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            file.write_all(&segment.bytes)?;
            let started = Instant::now();
            file.sync_data()?;
            sync += started.elapsed();
            Ok::<_, io::Error>(())
        })();
        if let Err(e) = written {
            self.after_hole = true;
            if e.kind() != io::ErrorKind::AlreadyExists {
                let _ = fs::remove_file(&path);
            }
            return Err(e);
        }
        let line = entry.to_line();
        let appended = (|| {
            self.log_file.write_all(line.as_bytes())?;
            let started = Instant::now();
            self.log_file.sync_data()?;
            sync += started.elapsed();
            Ok::<_, io::Error>(())
        })();
        if let Err(e) = appended {
            self.after_hole = true;
            let _ = self.log_file.set_len(self.log_len);
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        self.log_len += line.len() as u64;
        self.after_hole = false;
        crate::lock(&self.entries).push(entry);
        let removed = self.retain(retention, now)?;
        Ok(Written {
            entry,
            removed,
            sync,
        })
    }

    /// Writes `index.json` atomically: `status` and, when stopped, `stopped_at`.
    pub fn write_index(
        &self,
        status: &'static str,
        stopped_at: Option<UnixMillis>,
    ) -> io::Result<()> {
        let mut summary = {
            let entries = crate::lock(&self.entries);
            Summary::of(&self.code, status, &entries)
        };
        summary.stopped_at = stopped_at;
        let json = serde_json::to_vec_pretty(&summary).map_err(io::Error::other)?;
        replace(&self.dir.join(INDEX), &json)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes the segments retention no longer keeps: the log is rewritten without them
    /// first, so a crash in between leaves files the next open removes, never log lines
    /// without files.
    fn retain(&mut self, retention: Retention, now: UnixMillis) -> io::Result<usize> {
        // Readers never see the segments that are going: they leave the shared log at once.
        let (expired, text) = {
            let mut entries = crate::lock(&self.entries);
            let n = retention.expired(&entries, now);
            if n == 0 {
                return Ok(0);
            }
            let expired: Vec<SegmentEntry> = entries.drain(..n).collect();
            if let Some(stats) = &self.expired_discontinuities {
                let count = expired.iter().filter(|e| e.discontinuity).count() as u64;
                stats
                    .expired_discontinuities
                    .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
            }
            let text: String = entries.iter().map(SegmentEntry::to_line).collect();
            (expired, text)
        };
        let log_path = self.dir.join(LOG);
        replace(&log_path, text.as_bytes())?;
        self.log_file = open_append(&log_path)?;
        self.log_len = text.len() as u64;
        for entry in &expired {
            if let Err(error) = fs::remove_file(self.dir.join(entry.file())) {
                tracing::warn!(dir = %self.dir.display(), seq = entry.seq, %error, "expired segment not removed");
            }
        }
        Ok(expired.len())
    }
}

/// Reads a stopped recording's log from `dir` (no writer holds it): the entries whose files
/// exist, by `seq`.
pub fn read_log(dir: &Path) -> io::Result<Vec<SegmentEntry>> {
    let bytes = fs::read(dir.join(LOG))?;
    let mut entries = parse_log(&String::from_utf8_lossy(&bytes)).entries;
    entries.retain(|e| dir.join(e.file()).is_file());
    Ok(entries)
}

/// Reads `index.json` of `dir`, if there is one that parses.
pub fn read_index(dir: &Path) -> Option<serde_json::Value> {
    let bytes = fs::read(dir.join(INDEX)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Replaces `path` atomically with `bytes`: written to a temporary file beside it, synced,
/// renamed over it.
fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_data()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

/// The segment log's file name.
pub const LOG: &str = "segments.jsonl";
/// The summary's file name.
pub const INDEX: &str = "index.json";

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(start: i64, discontinuity: bool) -> Pending {
        Pending {
            start: UnixMillis(start),
            duration_ms: 4000,
            discontinuity,
            bytes: Bytes::from(vec![0x47; 1880]),
        }
    }

    #[test]
    fn resume_continues_numbering_and_marks_a_gap() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cam/a");
        let log = SharedLog::default();
        let mut disk = Disk::open(&dir, "cam/a", log.clone()).unwrap();
        for i in 0..3 {
            let w = disk
                .write(
                    &pending(i * 4000, false),
                    Retention::default(),
                    UnixMillis(0),
                )
                .unwrap();
            assert_eq!(w.entry.seq, i as u64);
        }
        disk.write_index("stopped", Some(UnixMillis(12_000)))
            .unwrap();
        drop(disk);
        // A stray file above the log (a crash after the file, before its line).
        fs::write(dir.join("000005.ts"), b"x").unwrap();
        // A torn last line.
        let mut f = OpenOptions::new().append(true).open(dir.join(LOG)).unwrap();
        f.write_all(b"{\"seq\":3,").unwrap();
        drop(f);

        let log = SharedLog::default();
        let mut disk = Disk::open(&dir, "cam/a", log.clone()).unwrap();
        assert_eq!(crate::lock(&log).len(), 3);
        let w = disk
            .write(&pending(60_000, false), Retention::default(), UnixMillis(0))
            .unwrap();
        assert_eq!(w.entry.seq, 6);
        assert!(w.entry.discontinuity);
        assert_eq!(fs::read(dir.join("000005.ts")).unwrap(), b"x");
        let w = disk
            .write(&pending(64_000, false), Retention::default(), UnixMillis(0))
            .unwrap();
        assert!(!w.entry.discontinuity);
        disk.write_index("recording", None).unwrap();
        let entries = read_log(&dir).unwrap();
        assert_eq!(
            entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [0, 1, 2, 6, 7]
        );
        let index = read_index(&dir).unwrap();
        assert_eq!(index["gaps"].as_array().unwrap().len(), 1);
        assert_eq!(index["gaps"][0]["duration"], 48.0);
        assert_eq!(index["segment_count"], 5);
    }

    #[test]
    fn retention_by_size_removes_files_and_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cam");
        let mut disk = Disk::open(&dir, "cam", SharedLog::default()).unwrap();
        let retention = Retention {
            max_age: None,
            max_bytes: Some(1880 * 3),
        };
        let mut removed = 0;
        for i in 0..10 {
            removed += disk
                .write(&pending(i * 4000, false), retention, UnixMillis(0))
                .unwrap()
                .removed;
        }
        assert_eq!(removed, 7);
        let entries = read_log(&dir).unwrap();
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [7, 8, 9]);
        let files = fs::read_dir(&dir)
            .unwrap()
            .filter(|f| {
                f.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".ts")
            })
            .count();
        assert_eq!(files, 3);
    }

    #[test]
    fn under_retention_the_recording_playlist_slides_from_the_first_retained_segment() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cam");
        let log = SharedLog::default();
        let stats = Arc::new(RecordingStats::default());
        let mut disk = Disk::open(&dir, "cam", Arc::clone(&log))
            .unwrap()
            .counting_into(Arc::clone(&stats));
        let retention = Retention {
            max_age: None,
            max_bytes: Some(1880 * 3),
        };
        let sliding = || {
            let entries = crate::lock(&log).clone();
            let sliding = crate::Sliding {
                expired_discontinuities: stats
                    .expired_discontinuities
                    .load(std::sync::atomic::Ordering::Relaxed),
            };
            let kind = crate::playlist::recording_kind(&entries, Some(sliding));
            crate::playlist::render(&entries, kind)
        };
        // Segments 2 and 8 follow a discontinuity; 3 are kept.
        for i in 0..10 {
            disk.write(
                &pending(i * 4000, i == 2 || i == 8),
                retention,
                UnixMillis(0),
            )
            .unwrap();
        }
        let text = sliding();
        assert!(!text.contains("#EXT-X-PLAYLIST-TYPE"), "{text}");
        assert!(!text.contains("#EXT-X-ENDLIST"), "{text}");
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:7\n"), "{text}");
        // Segment 2's discontinuity slid out with it.
        assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{text}");
        assert!(text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
        assert!(text.starts_with("#EXTM3U\n"), "{text}");
        // Segment 8 becomes the first: its tag goes, and the sequence counts it.
        disk.write(&pending(40_000, false), retention, UnixMillis(0))
            .unwrap();
        let text = sliding();
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:8\n"), "{text}");
        assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:2\n"), "{text}");
        assert!(!text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
        // Without retention it stays an EVENT playlist.
        let entries = crate::lock(&log).clone();
        let kind = crate::playlist::recording_kind(&entries, None);
        assert!(crate::playlist::render(&entries, kind).contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"));
    }

    #[test]
    fn an_existing_file_is_never_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cam");
        let mut disk = Disk::open(&dir, "cam", SharedLog::default()).unwrap();
        // Someone puts a file where the next segment would go.
        fs::write(dir.join("000000.ts"), b"mine").unwrap();
        let e = disk
            .write(&pending(0, false), Retention::default(), UnixMillis(0))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(dir.join("000000.ts")).unwrap(), b"mine");
        let w = disk
            .write(&pending(8000, false), Retention::default(), UnixMillis(0))
            .unwrap();
        assert_eq!(w.entry.seq, 1);
        // The segment after a failed one follows a hole.
        assert!(w.entry.discontinuity);
    }
}
