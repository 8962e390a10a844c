//! Which segments a stopped recording's log lists, parsed once per change of the log.
//!
//! # Why
//!
//! A recording serves only the segments its log lists (SPEC §DVR): a `NNNNNN.ts` beside the
//! log but not in it is a segment whose append never finished, and is not served. For a
//! running recording the log is in memory; for a stopped one it is on disk, and reading it
//! per segment request made every request cost the whole recording: a 24 h recording at 4 s
//! segments is 21 600 lines parsed for each 4 s of video each viewer fetches.
//!
//! The file layout alone cannot answer instead: a file that exists may be one whose log line
//! was never written (the writer crashed between the two), so the log stays the truth, and
//! this cache keeps the set of `seq`s it lists, one parse per change of the file.
//!
//! # Freshness
//!
//! An entry is keyed by the recording's resolved directory and stamped with the log file's
//! length, modification time and inode, read *before* the log is read. Appends change the
//! length, retention's rewrite replaces the file (a new inode), so any change gives a new
//! stamp and the next request parses again. A log that changes between the stamp and the
//! read is cached under the older stamp, which no longer matches, so it is read again on the
//! next request: an entry can be younger than its stamp, never older.
//!
//! # Bound
//!
//! At most [`CAPACITY`] logs are held; a new one evicts the least recently used. A `seq` is
//! 8 bytes, so a full day's recording at 4 s segments is about 170 KB.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::disk::LOG;
use crate::log::parse_log;

/// How many recordings' logs are held at once.
pub const CAPACITY: usize = 64;

/// The parsed logs of the stopped recordings being served, least recently used evicted.
#[derive(Debug)]
pub struct ListedCache {
    inner: Mutex<Lru>,
}

impl Default for ListedCache {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl ListedCache {
    /// A cache of at most `capacity` logs (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Lru::new(capacity.max(1))),
        }
    }

    /// Whether the log in `dir` lists segment `seq`. Blocking: one `stat` of the log when it
    /// is cached and unchanged, a read and parse when not.
    pub fn lists(&self, dir: &Path, seq: u64) -> io::Result<bool> {
        let stamp = Stamp::of(&fs::metadata(dir.join(LOG))?);
        let cached = crate::lock(&self.inner).get(dir, stamp);
        let seqs = match cached {
            Some(seqs) => seqs,
            None => {
                let seqs = read_seqs(dir)?;
                crate::lock(&self.inner).insert(dir, stamp, Arc::clone(&seqs));
                seqs
            }
        };
        Ok(seqs.binary_search(&seq).is_ok())
    }
}

/// The `seq`s the log in `dir` lists, ascending (the parse keeps them by `seq`).
fn read_seqs(dir: &Path) -> io::Result<Arc<[u64]>> {
    let bytes = fs::read(dir.join(LOG))?;
    let parsed = parse_log(&String::from_utf8_lossy(&bytes));
    Ok(parsed.entries.iter().map(|e| e.seq).collect())
}

/// What identifies one version of a log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Self {
        Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode: meta.ino(),
        }
    }
}

/// The map and its recency, behind the cache's lock (held for a lookup or an insert, never
/// across I/O).
#[derive(Debug)]
struct Lru {
    map: HashMap<PathBuf, Entry>,
    capacity: usize,
    /// Bumped on every use; an entry's `used` is the tick of its last use.
    tick: u64,
}

#[derive(Debug)]
struct Entry {
    stamp: Stamp,
    seqs: Arc<[u64]>,
    used: u64,
}

impl Lru {
    fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            capacity,
            tick: 0,
        }
    }

    /// `dir`'s `seq`s if they were read from the log version `stamp`.
    fn get(&mut self, dir: &Path, stamp: Stamp) -> Option<Arc<[u64]>> {
        self.tick += 1;
        let entry = self.map.get_mut(dir).filter(|e| e.stamp == stamp)?;
        entry.used = self.tick;
        Some(Arc::clone(&entry.seqs))
    }

    /// Holds `seqs` for `dir` at `stamp`, evicting the least recently used log when full.
    fn insert(&mut self, dir: &Path, stamp: Stamp, seqs: Arc<[u64]>) {
        self.tick += 1;
        if !self.map.contains_key(dir) && self.map.len() >= self.capacity {
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(dir, _)| dir.clone());
            if let Some(oldest) = oldest {
                self.map.remove(&oldest);
            }
        }
        let used = self.tick;
        self.map.insert(dir.to_owned(), Entry { stamp, seqs, used });
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::log::SegmentEntry;
    use tributary_packager::UnixMillis;

    fn held(cache: &ListedCache) -> usize {
        crate::lock(&cache.inner).map.len()
    }

    fn line(seq: u64) -> String {
        SegmentEntry {
            seq,
            start: UnixMillis(1_700_000_000_000 + seq as i64 * 4000),
            duration_ms: 4000,
            size: 188,
            discontinuity: false,
        }
        .to_line()
    }

    fn recording(root: &Path, name: &str, seqs: std::ops::Range<u64>) -> PathBuf {
        let dir = root.join(name);
        fs::create_dir_all(&dir).unwrap();
        let text: String = seqs.map(line).collect();
        fs::write(dir.join(LOG), text).unwrap();
        dir
    }

    #[test]
    fn lists_exactly_the_logged_segments() {
        let root = tempfile::tempdir().unwrap();
        let dir = recording(root.path(), "a", 3..6);
        let cache = ListedCache::default();
        assert!(!cache.lists(&dir, 2).unwrap());
        assert!(cache.lists(&dir, 3).unwrap());
        assert!(cache.lists(&dir, 5).unwrap());
        assert!(!cache.lists(&dir, 6).unwrap());
        assert_eq!(held(&cache), 1, "one parse for the four questions");
        assert!(cache.lists(&root.path().join("none"), 3).is_err(), "no log");
    }

    #[test]
    fn an_appended_line_is_seen_at_once() {
        let root = tempfile::tempdir().unwrap();
        let dir = recording(root.path(), "a", 0..2);
        let cache = ListedCache::default();
        assert!(!cache.lists(&dir, 2).unwrap());
        let mut log = fs::OpenOptions::new()
            .append(true)
            .open(dir.join(LOG))
            .unwrap();
        log.write_all(line(2).as_bytes()).unwrap();
        drop(log);
        assert!(
            cache.lists(&dir, 2).unwrap(),
            "the longer log is read again"
        );
    }

    #[test]
    fn a_rewritten_log_of_the_same_length_is_read_again() {
        let root = tempfile::tempdir().unwrap();
        let dir = recording(root.path(), "a", 10..12);
        let cache = ListedCache::default();
        assert!(cache.lists(&dir, 10).unwrap());
        // Retention's rewrite: a new file renamed over the log, same length here.
        let tmp = dir.join("segments.tmp");
        fs::write(&tmp, [line(12), line(13)].concat()).unwrap();
        fs::rename(&tmp, dir.join(LOG)).unwrap();
        assert!(
            !cache.lists(&dir, 10).unwrap(),
            "the dropped segment is gone"
        );
        assert!(cache.lists(&dir, 13).unwrap());
    }

    #[test]
    fn holds_at_most_its_capacity_evicting_the_least_recently_used() {
        let root = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = (0..4)
            .map(|i| recording(root.path(), &format!("r{i}"), 0..3))
            .collect();
        let cache = ListedCache::with_capacity(2);
        assert!(cache.lists(&dirs[0], 1).unwrap());
        assert!(cache.lists(&dirs[1], 1).unwrap());
        assert!(cache.lists(&dirs[0], 2).unwrap(), "r0 used after r1");
        assert!(cache.lists(&dirs[2], 1).unwrap());
        assert_eq!(held(&cache), 2);
        let lru = crate::lock(&cache.inner);
        assert!(lru.map.contains_key(&dirs[0]), "the recently used stays");
        assert!(lru.map.contains_key(&dirs[2]));
        assert!(
            !lru.map.contains_key(&dirs[1]),
            "the least recently used went"
        );
        drop(lru);
        for dir in &dirs {
            assert!(cache.lists(dir, 0).unwrap());
            assert!(held(&cache) <= 2);
        }
    }
}
