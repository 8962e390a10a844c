//! One running HLS output as readers see it: the current playlist and the fetchable segments.

use std::collections::VecDeque;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tributary_media::Ts90;
use tributary_packager::{InitName, PlaylistEntry, Segment};

use super::master::Measured;
use super::pages;

/// The served state of one HLS output, shared by its task (the only writer) and any number of
/// HTTP readers.
///
/// Readers take the read lock for a lookup and a `Bytes` clone; the task takes the write lock
/// once per finished segment (every S) to append it, swap in the new playlist and drop expired
/// segments. Nothing is built or awaited under the lock.
///
/// LL-HLS adds parts (published every `part_sec`, kept for the last few segments), the
/// `_HLS_skip` delta playlist beside the full one, and a `watch` of how far the output has
/// come, which blocked playlist and preload-hint requests await (`blocking.rs`); the watch
/// is sent after the lock is released.
#[derive(Debug)]
pub(crate) struct Window {
    state: RwLock<State>,
    /// How far the output has come: what blocked requests wait on.
    progress: watch::Sender<Progress>,
    /// Permits for requests blocked on this window (LL-HLS): a bound on waiters.
    pub(crate) waiters: Semaphore,
}

/// How far an output has come, for blocked LL-HLS requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The last complete segment listed.
    pub(crate) segment: Option<u64>,
    /// The last part published (segment number, part index).
    pub(crate) part: Option<(u64, u32)>,
    /// `#EXT-X-TARGETDURATION`, once known.
    pub(crate) target_duration: Option<u32>,
    /// The window is closed or its task ended: nothing more comes.
    pub(crate) ended: bool,
}

/// What the lock guards.
#[derive(Debug)]
struct State {
    /// The handle was dropped: the output's URLs are gone and late publishes are ignored.
    closed: bool,
    /// The task has ended (its buffer was deleted); what was published stays served.
    finished: bool,
    /// The variant was removed from its ladder: the playlist ends with `#EXT-X-ENDLIST` and
    /// a new output of the same rung may take the window's place.
    retired: bool,
    /// The current `index.m3u8`; `None` until the first segment exists.
    playlist: Option<Bytes>,
    /// Every fetchable segment, oldest first, with increasing numbers (consecutive, but for
    /// the cells an ABR variant on a keyframe grid missed while its encoder restarted):
    /// first the retired ones (no longer listed, fetchable until they expire), then the
    /// `listed` newest.
    segments: VecDeque<Stored>,
    /// How many of the newest `segments` the playlist lists.
    listed: usize,
    /// Retired segments kept whatever their expiry (`live_history`).
    history: usize,
    /// Retired segments kept at most beyond `history`, expired or not: the memory bound.
    retired_cap: usize,
    /// The number of the newest segment, for numbering the next run of this stream.
    last_number: Option<u64>,
    /// Conditions worth showing in the stream's `runtime.warnings` (bounded).
    warnings: Vec<String>,
    /// The track parameters seen, for an ABR master playlist.
    measured: Measured,
    /// fMP4 init segments, newest last (at most [`MAX_INITS`]: a listed or retained segment
    /// needs one of the last few).
    inits: VecDeque<(InitName, Bytes)>,
    /// Segments published since the window was made (`tributary_publisher_segments_total`).
    published: u64,
    /// LL-HLS: fetchable parts (segment number, part index, bytes), oldest first.
    parts: VecDeque<(u64, u32, Bytes)>,
    /// LL-HLS: the current `_HLS_skip=YES` delta update.
    delta: Option<Bytes>,
}

/// One fetchable segment.
#[derive(Debug)]
struct Stored {
    number: u64,
    /// fMP4 (`seg_<n>.m4s`) rather than MPEG-TS (`seg_<n>.ts`).
    fmp4: bool,
    bytes: Bytes,
    duration: Ts90,
    /// When it stops being fetchable; `None` while it is listed.
    expires: Option<Instant>,
}

impl Window {
    /// An empty window for a playlist of `window` segments keeping `history` extra ones.
    pub(crate) fn new(window: usize, history: usize) -> Self {
        Self {
            state: RwLock::new(State {
                closed: false,
                finished: false,
                retired: false,
                playlist: None,
                segments: VecDeque::with_capacity(window + history + 1),
                listed: 0,
                history,
                // Time-based retention keeps about `window + 1` retired segments when their
                // durations are even; twice that absorbs uneven ones.
                retired_cap: 2 * window + 2,
                last_number: None,
                warnings: Vec::new(),
                measured: Measured::default(),
                inits: VecDeque::with_capacity(MAX_INITS),
                published: 0,
                parts: VecDeque::new(),
                delta: None,
            }),
            progress: watch::Sender::new(Progress::default()),
            waiters: Semaphore::new(MAX_WAITERS),
        }
    }

    /// A receiver of the output's progress (LL-HLS blocking requests).
    pub(crate) fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// The last part published (segment number, part index), for rendition reports.
    pub(crate) fn last_part(&self) -> Option<(u64, u32)> {
        self.progress.borrow().part
    }

    /// The `_HLS_skip=YES` delta update, when the output is low-latency.
    pub(crate) fn delta(&self) -> Option<Bytes> {
        let state = self.read();
        if state.closed {
            return None;
        }
        state.delta.clone()
    }

    /// Part `index` of segment `number`, while it is kept.
    pub(crate) fn part(&self, number: u64, index: u32) -> Option<Bytes> {
        let state = self.read();
        if state.closed {
            return None;
        }
        let at = state
            .parts
            .binary_search_by_key(&(number, index), |(n, i, _)| (*n, *i))
            .ok()?;
        Some(state.parts[at].2.clone())
    }

    /// Publishes an LL-HLS part and the playlists that list it. Parts of segments older than
    /// the newest [`PART_SEGMENTS`](tributary_packager::PART_SEGMENTS) + 1 go (the playlist
    /// stopped listing them a segment ago), and never more than [`MAX_PARTS`] are kept.
    pub(crate) fn publish_part(
        &self,
        number: u64,
        index: u32,
        bytes: Bytes,
        playlist: Bytes,
        delta: Bytes,
    ) {
        // A part big enough to gain from `sendfile` goes to a sealed file, before the lock.
        let bytes = if bytes.len() >= tributary_net::pages::MIN_SENDFILE {
            tributary_net::pages::sealed(&bytes).unwrap_or(bytes)
        } else {
            bytes
        };
        {
            let mut state = self.write();
            if state.closed {
                return;
            }
            if state
                .parts
                .back()
                .is_some_and(|(n, i, _)| (*n, *i) >= (number, index))
            {
                state.parts.clear();
            }
            state.parts.push_back((number, index, bytes));
            let oldest = state
                .segments
                .iter()
                .rev()
                .nth(tributary_packager::PART_SEGMENTS)
                .map_or(0, |s| s.number);
            while state.parts.len() > MAX_PARTS
                || state.parts.front().is_some_and(|(n, _, _)| *n < oldest)
            {
                state.parts.pop_front();
            }
            state.playlist = Some(playlist);
            state.delta = Some(delta);
        }
        self.progress
            .send_modify(|p| p.part = Some((number, index)));
    }

    /// Records the parameters of a track of `kind` (its configuration changed).
    pub(crate) fn measure(
        &self,
        kind: tributary_media::MediaKind,
        info: &tributary_media::TrackInfo,
    ) {
        self.write().measured.update(kind, info);
    }

    /// What the output measured, once its playlist exists.
    pub(crate) fn measured(&self) -> Option<Measured> {
        let state = self.read();
        state.playlist.as_ref()?;
        let mut measured = state.measured.clone();
        measured.fmp4 = state.segments.back().is_some_and(|s| s.fmp4);
        Some(measured)
    }

    /// The current playlist, `None` before the first segment.
    pub(crate) fn playlist(&self) -> Option<Bytes> {
        let state = self.read();
        if state.closed {
            return None;
        }
        state.playlist.clone()
    }

    /// Segment `number` in the container asked for (`fmp4`), if it is still fetchable at
    /// `now`.
    pub(crate) fn segment(&self, number: u64, fmp4: bool, now: Instant) -> Option<Bytes> {
        let state = self.read();
        if state.closed {
            return None;
        }
        let index = state
            .segments
            .binary_search_by_key(&number, |s| s.number)
            .ok()?;
        let stored = &state.segments[index];
        if stored.fmp4 != fmp4 {
            return None;
        }
        let retired = state.segments.len() - state.listed;
        let in_history = index < retired && retired - index <= state.history;
        if stored.expires.is_some_and(|at| at <= now) && !in_history {
            return None;
        }
        Some(stored.bytes.clone())
    }

    /// Keeps an fMP4 init segment fetchable (the oldest of more than [`MAX_INITS`] goes).
    pub(crate) fn publish_init(&self, name: InitName, bytes: Bytes) {
        let mut state = self.write();
        if state.closed {
            return;
        }
        state.inits.retain(|(kept, _)| *kept != name);
        if state.inits.len() == MAX_INITS {
            state.inits.pop_front();
        }
        state.inits.push_back((name, bytes));
    }

    /// The init segment `name`, while it is kept.
    pub(crate) fn init(&self, name: InitName) -> Option<Bytes> {
        let state = self.read();
        if state.closed {
            return None;
        }
        let (_, bytes) = state.inits.iter().find(|(kept, _)| *kept == name)?;
        Some(bytes.clone())
    }

    /// Adds a finished segment and the playlist that lists it. `slid_out` is the segment that
    /// left the playlist with this push; it expires after its duration plus
    /// `playlist_duration` (SPEC §HLS "Retention").
    pub(crate) fn publish(
        &self,
        segment: Segment,
        slid_out: Option<PlaylistEntry>,
        playlist_duration: Ts90,
        playlist: Bytes,
        delta: Option<Bytes>,
        now: Instant,
    ) {
        // Copied before the lock is taken: readers never wait for it.
        let bytes = pages::in_pages(segment.bytes);
        let mut state = self.write();
        if state.closed {
            return;
        }
        if state
            .segments
            .back()
            .is_some_and(|last| last.number >= segment.number)
        {
            // Numbers increase within a run; anything else is a bug upstream. Start over
            // rather than serve the wrong bytes for a number.
            tracing::error!(number = segment.number, "segment number not increasing");
            state.segments.clear();
            state.listed = 0;
        }
        state.segments.push_back(Stored {
            number: segment.number,
            fmp4: segment.init.is_some(),
            bytes,
            duration: segment.duration,
            expires: None,
        });
        state.listed += 1;
        if let Some(out) = slid_out {
            state.slide_out(&out, playlist_duration, now);
        }
        state.playlist = Some(playlist);
        state.delta = delta;
        state.last_number = Some(segment.number);
        state.published += 1;
        state.prune(now);
        drop(state);
        self.progress.send_modify(|p| {
            p.segment = Some(segment.number);
            p.target_duration = Some(segment.target_duration);
        });
    }

    /// `live_window` or `live_history` changed on a running output: `slid_out` (oldest first)
    /// left the playlist, which is now `playlist` (and `delta`); retired segments are kept as
    /// the new `history` says, with the memory bound of the new window.
    pub(crate) fn resize(
        &self,
        window: usize,
        history: usize,
        slid_out: &[PlaylistEntry],
        playlist_duration: Ts90,
        playlist: Option<(Bytes, Option<Bytes>)>,
        now: Instant,
    ) {
        let mut state = self.write();
        if state.closed {
            return;
        }
        state.history = history;
        state.retired_cap = 2 * window + 2;
        for out in slid_out {
            state.slide_out(out, playlist_duration, now);
        }
        if let Some((playlist, delta)) = playlist {
            state.playlist = Some(playlist);
            state.delta = delta;
        }
        state.prune(now);
    }

    /// Segments published so far.
    pub(crate) fn published(&self) -> u64 {
        self.read().published
    }

    /// Drops segments that expired by `now`.
    pub(crate) fn prune(&self, now: Instant) {
        self.write().prune(now);
    }

    /// When the oldest retired segment not kept as history expires, if there is one.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        let state = self.read();
        let retired = state.segments.len() - state.listed;
        if retired <= state.history {
            return None;
        }
        state.segments.front()?.expires
    }

    /// Notes a warning (deduplicated, at most 16).
    pub(crate) fn warn(&self, warning: String) {
        let mut state = self.write();
        if state.warnings.len() < MAX_WARNINGS && !state.warnings.contains(&warning) {
            state.warnings.push(warning);
        }
    }

    /// The warnings noted so far.
    pub(crate) fn warnings(&self) -> Vec<String> {
        self.read().warnings.clone()
    }

    /// The task has ended.
    pub(crate) fn finish(&self) {
        self.write().finished = true;
        self.progress.send_modify(|p| p.ended = true);
    }

    /// Whether the task has ended.
    pub(crate) fn is_finished(&self) -> bool {
        self.read().finished
    }

    /// Retires the window of a variant removed from its ladder (SPEC §Hot reload): its
    /// playlist, as last published, now ends with `#EXT-X-ENDLIST`, so players know nothing
    /// follows; segments stay fetchable until the window is closed. Call once the task has
    /// ended, or a later publish would drop the tag again.
    pub(crate) fn retire(&self) {
        // Built outside the lock, like every playlist.
        let ended = self.read().playlist.as_ref().map(|playlist| {
            let mut text = Vec::with_capacity(playlist.len() + ENDLIST.len());
            text.extend_from_slice(playlist);
            text.extend_from_slice(ENDLIST);
            Bytes::from(text)
        });
        let mut state = self.write();
        state.retired = true;
        if !state.closed && ended.is_some() {
            state.playlist = ended;
        }
    }

    /// Whether the window was retired: a new output of its rung may replace it.
    pub(crate) fn is_retired(&self) -> bool {
        self.read().retired
    }

    /// Closes the window (its URLs are gone from now on) and returns the last number used.
    pub(crate) fn close(&self) -> Option<u64> {
        let mut state = self.write();
        state.closed = true;
        state.playlist = None;
        state.segments.clear();
        state.inits.clear();
        state.parts.clear();
        state.delta = None;
        state.listed = 0;
        let last = state.last_number;
        drop(state);
        self.progress.send_modify(|p| p.ended = true);
        last
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// `out`, the oldest listed segment, is no longer listed: it stays fetchable for its own
    /// duration plus the playlist's (SPEC §HLS "Retention").
    fn slide_out(&mut self, out: &PlaylistEntry, playlist_duration: Ts90, now: Instant) {
        if self.listed == 0 {
            return;
        }
        self.listed -= 1;
        let retired = self.segments.len() - self.listed;
        if let Some(stored) = self.segments.get_mut(retired - 1)
            && stored.number == out.number
        {
            let keep = Ts90(stored.duration.0 + playlist_duration.0);
            stored.expires = Some(now + to_duration(keep));
        }
    }

    /// Drops retired segments from the front while they are expired (or over the memory
    /// bound) and not kept as history.
    fn prune(&mut self, now: Instant) {
        loop {
            let retired = self.segments.len() - self.listed;
            if retired <= self.history {
                return;
            }
            let over_cap = retired > self.history + self.retired_cap;
            let expired = self
                .segments
                .front()
                .and_then(|s| s.expires)
                .is_some_and(|at| at <= now);
            if !(over_cap || expired) {
                return;
            }
            self.segments.pop_front();
        }
    }
}

/// A media duration as a `Duration` (negative → zero).
fn to_duration(d: Ts90) -> std::time::Duration {
    let ticks = u64::try_from(d.0).unwrap_or(0);
    std::time::Duration::from_nanos(ticks.saturating_mul(100_000) / 9)
}

/// Parts kept per output at most, whatever their segments (with 0.1 s parts of 2 s
/// segments, 5 segments' worth is 100).
const MAX_PARTS: usize = 256;
/// Requests blocked on one output at most (LL-HLS `_HLS_msn`, preload hints): about 4 per
/// player of a busy stream; more are refused with 503 rather than held.
pub(crate) const MAX_WAITERS: usize = 1024;
/// Warnings kept per output.
const MAX_WARNINGS: usize = 16;
/// The tag that ends a retired variant's playlist.
const ENDLIST: &[u8] = b"#EXT-X-ENDLIST\n";
/// fMP4 init segments kept per output: every codec change of a stream adds one, and the
/// segments a window lists and retains span at most a few.
pub(crate) const MAX_INITS: usize = 8;

#[cfg(test)]
mod tests {
    use tributary_media::SessionId;
    use tributary_packager::{SegmentEnd, UnixMillis};

    use super::*;

    fn segment(number: u64) -> Segment {
        Segment {
            number,
            init: None,
            session: SessionId(1),
            start: Ts90(number as i64 * 180_000),
            duration: Ts90(180_000),
            discontinuity: false,
            program_date_time: UnixMillis(0),
            target_duration: 2,
            end: SegmentEnd::Keyframe,
            bytes: Bytes::from(vec![number as u8; 188]),
        }
    }

    #[test]
    fn a_variant_that_skipped_cells_serves_every_segment_it_has() {
        let window = Window::new(12, 0);
        let now = Instant::now();
        for number in [5, 6, 9, 10] {
            window.publish(segment(number), None, Ts90(0), Bytes::new(), None, now);
        }
        for number in [5, 6, 9, 10] {
            let bytes = window.segment(number, false, now).expect("served");
            assert_eq!(bytes[0], number as u8, "segment {number}'s own bytes");
            assert!(window.segment(number, true, now).is_none(), "not as .m4s");
        }
        assert!(window.segment(7, false, now).is_none());
        assert!(window.segment(8, false, now).is_none());
        assert!(window.segment(11, false, now).is_none());
        // A number that does not increase is a bug upstream: the window starts over.
        window.publish(segment(4), None, Ts90(0), Bytes::new(), None, now);
        assert!(window.segment(5, false, now).is_none());
        assert!(window.segment(4, false, now).is_some());
    }

    #[test]
    fn a_smaller_window_retires_the_oldest_at_once_and_they_expire_later() {
        let window = Window::new(4, 0);
        let now = Instant::now();
        for number in 1..=4 {
            window.publish(segment(number), None, Ts90(0), Bytes::new(), None, now);
        }
        let slid: Vec<PlaylistEntry> = [1, 2].map(|n| segment(n).entry()).to_vec();
        let playlist = Bytes::from_static(b"#EXTM3U\n");
        // Two segments of 2 s left a playlist of 4 s: each stays fetchable 2 + 4 s.
        window.resize(
            2,
            0,
            &slid,
            Ts90(360_000),
            Some((playlist.clone(), None)),
            now,
        );
        assert_eq!(window.playlist(), Some(playlist));
        assert!(
            window.segment(1, false, now).is_some(),
            "retired, not expired"
        );
        let later = now + std::time::Duration::from_secs(7);
        window.prune(later);
        assert!(window.segment(1, false, later).is_none(), "expired");
        assert!(window.segment(3, false, later).is_some(), "still listed");
        // The next publish slides one more, as a window of 2 does.
        window.publish(
            segment(5),
            Some(segment(3).entry()),
            Ts90(360_000),
            Bytes::new(),
            None,
            later,
        );
        assert!(window.segment(4, false, later).is_some());
    }

    #[test]
    fn a_retired_window_ends_its_playlist_and_keeps_serving_until_closed() {
        let window = Window::new(3, 0);
        let now = Instant::now();
        // Retiring before the first segment: nothing to end, nothing served.
        let empty = Window::new(3, 0);
        empty.retire();
        assert!(empty.is_retired());
        assert!(empty.playlist().is_none());

        let text = "#EXTM3U\n#EXTINF:2.000,\n7.ts\n";
        window.publish(segment(7), None, Ts90(0), Bytes::from(text), None, now);
        assert!(!window.is_retired());
        window.retire();
        assert!(window.is_retired());
        let ended = window.playlist().expect("still served");
        assert_eq!(&ended[..], format!("{text}#EXT-X-ENDLIST\n").as_bytes());
        assert!(
            window.segment(7, false, now).is_some(),
            "its segments stay fetchable"
        );
        window.close();
        assert!(window.playlist().is_none());
        assert!(window.segment(7, false, now).is_none());
    }
}
