//! The live media playlist: a sliding window over the segments a segmenter produced.

use std::collections::VecDeque;
use std::fmt::Write;

use tributary_media::{SessionId, Ts90};

use crate::UnixMillis;
use crate::hls::ll::{self, OpenHeader, PartEntry};
use crate::hls::{Part, Segment};

/// The name of the media playlist.
pub const PLAYLIST_NAME: &str = "index.m3u8";

/// The sliding window of a live HLS media playlist (SPEC §HLS "Playlist").
///
/// Push every [`Segment`] the segmenter produces, in order; [`render`](Self::render) writes
/// the playlist as a player fetches it. The window lists the last `window` segments; each push
/// beyond that slides the oldest out and returns it, so the caller can keep it fetchable for
/// its retention time. `#EXT-X-MEDIA-SEQUENCE` is the number of the first listed segment and
/// `#EXT-X-DISCONTINUITY-SEQUENCE` counts the discontinuities that slid out.
/// `#EXT-X-TARGETDURATION` is what the listed segments need: each segment comes with the
/// target of its run (the segmenter fixes one per S), and the playlist prints the largest
/// target among the runs it still lists. It changes only when S changed on a running server
/// (module `hls::segmenter`, "A new S"): up as soon as a longer segment is listed, down once
/// the last longer one slid out.
/// No `#EXT-X-ENDLIST` is ever written: the playlist is live.
///
/// fMP4 segments (entries with an [`init`](PlaylistEntry::init)) are listed as
/// `seg_<n>.m4s` under `#EXT-X-VERSION:7`, with an `#EXT-X-MAP` before the first listed
/// segment and wherever the init changes.
///
/// A low-latency playlist ([`low_latency`](Self::low_latency), LL-HLS) also takes every
/// [`Part`] ([`push_part`](Self::push_part)) and lists, under `#EXT-X-VERSION:9` with
/// `#EXT-X-SERVER-CONTROL` and `#EXT-X-PART-INF`, the parts of its last
/// [`PART_SEGMENTS`] segments and of the segment still being cut, then an
/// `#EXT-X-PRELOAD-HINT` for the next part ([`set_preload_hint`](Self::set_preload_hint));
/// [`render_delta`](Self::render_delta) writes the `_HLS_skip=YES` delta update.
///
/// ```
/// use tributary_packager::{MediaPlaylist, PlaylistEntry, UnixMillis};
/// use tributary_media::Ts90;
///
/// let mut playlist = MediaPlaylist::new(2);
/// for number in 100_000..100_003 {
///     let entry = PlaylistEntry {
///         number,
///         init: None,
///         duration: Ts90(180_000),
///         discontinuity: false,
///         program_date_time: UnixMillis(1_795_514_400_000 + 2000 * (number as i64 - 100_000)),
///     };
///     playlist.push_entry(entry, 2);
/// }
/// assert_eq!(playlist.render(), "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n\
///     #EXT-X-MEDIA-SEQUENCE:100001\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n\
///     #EXT-X-INDEPENDENT-SEGMENTS\n\
///     #EXT-X-PROGRAM-DATE-TIME:2026-11-24T10:00:02.000Z\n#EXTINF:2.000,\nseg_100001.ts\n\
///     #EXT-X-PROGRAM-DATE-TIME:2026-11-24T10:00:04.000Z\n#EXTINF:2.000,\nseg_100002.ts\n");
/// ```
#[derive(Debug, Clone)]
pub struct MediaPlaylist {
    /// How many segments are listed (`live_window`, at least 1).
    window: usize,
    /// The target of each run of listed segments: (the number of its first segment, its
    /// target), oldest first; one run unless S changed.
    targets: VecDeque<(u64, u32)>,
    /// `#EXT-X-DISCONTINUITY-SEQUENCE`: discontinuities that slid out of the window.
    discontinuity_sequence: u64,
    /// The listed segments, oldest first.
    entries: VecDeque<PlaylistEntry>,
    /// Length of the last rendering, to size the next one.
    rendered_len: usize,
    /// LL-HLS: PART-TARGET; `None` for a playlist without parts.
    part_target: Option<Ts90>,
    /// LL-HLS: PART-HOLD-BACK, at least 2 × PART-TARGET (unused without parts).
    part_hold_back: Ts90,
    /// LL-HLS: the parts listed, oldest first (those of the last [`PART_SEGMENTS`] segments
    /// and of the open one).
    parts: VecDeque<PartEntry>,
    /// LL-HLS: the segment being cut, once a part of it is out.
    open: Option<OpenHeader>,
    /// LL-HLS: the part `#EXT-X-PRELOAD-HINT` names.
    hint: Option<(u64, u32)>,
}

/// How many of the newest complete segments a low-latency playlist lists the parts of: about
/// 3 × TARGETDURATION, as RFC 8216bis §6.2.2 asks.
pub const PART_SEGMENTS: usize = 3;

/// One segment as the playlist lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaylistEntry {
    /// Its number: the URI is [`segment_name`]`(number)` (MPEG-TS) or
    /// [`fmp4_segment_name`]`(number)`.
    pub number: u64,
    /// fMP4: the init segment it needs (`#EXT-X-MAP`); `None` for MPEG-TS.
    pub init: Option<InitName>,
    /// `#EXTINF`, printed in seconds with 3 decimals.
    pub duration: Ts90,
    /// Whether `#EXT-X-DISCONTINUITY` precedes it.
    pub discontinuity: bool,
    /// `#EXT-X-PROGRAM-DATE-TIME`: the wall time of its first frame.
    pub program_date_time: UnixMillis,
}

impl MediaPlaylist {
    /// An empty playlist listing up to `window` segments (0 is taken as 1).
    pub fn new(window: usize) -> Self {
        Self {
            window: window.max(1),
            targets: VecDeque::new(),
            discontinuity_sequence: 0,
            entries: VecDeque::with_capacity(window.max(1) + 1),
            rendered_len: 0,
            part_target: None,
            part_hold_back: Ts90(0),
            parts: VecDeque::new(),
            open: None,
            hint: None,
        }
    }

    /// An empty LL-HLS playlist listing up to `window` segments, with parts of at most
    /// `part_target` and `part_hold_back` as PART-HOLD-BACK: how far behind the end of the
    /// playlist a low-latency player plays, so most of its latency. A value below
    /// 2 × `part_target` (RFC 8216bis's minimum) is raised to it.
    pub fn low_latency(
        window: usize,
        part_target: std::time::Duration,
        part_hold_back: std::time::Duration,
    ) -> Self {
        let part_target = Ts90::from_duration(part_target);
        Self {
            part_target: Some(part_target),
            part_hold_back: ll::part_hold_back(part_target, Ts90::from_duration(part_hold_back)),
            ..Self::new(window)
        }
    }

    /// Lists a part of the segment being cut (LL-HLS; ignored by a playlist without parts).
    pub fn push_part(&mut self, part: &Part) {
        if self.part_target.is_none() {
            return;
        }
        self.parts.push_back(PartEntry::from(part));
        self.open = Some(OpenHeader::from(part));
    }

    /// The part `#EXT-X-PRELOAD-HINT` names (segment number, part index), if any.
    pub fn set_preload_hint(&mut self, next: Option<(u64, u32)>) {
        self.hint = next;
    }

    /// The last part listed (segment number, part index): `LAST-MSN` and `LAST-PART` of an
    /// `#EXT-X-RENDITION-REPORT` naming this playlist.
    pub fn last_part(&self) -> Option<(u64, u32)> {
        self.parts.back().map(|p| (p.segment, p.index))
    }

    /// Lists up to `window` segments from now on (0 is taken as 1; `live_window` changed on
    /// a running server). A smaller window slides the oldest entries out at once, returned
    /// oldest first; a larger one lists more as segments come.
    pub fn set_window(&mut self, window: usize) -> Vec<PlaylistEntry> {
        self.window = window.max(1);
        let mut out = Vec::new();
        while self.entries.len() > self.window {
            let Some(entry) = self.entries.pop_front() else {
                break;
            };
            if entry.discontinuity {
                self.discontinuity_sequence += 1;
            }
            out.push(entry);
        }
        self.forget_targets();
        out
    }

    /// Lists `segment`; returns the segment that slid out of the window, if one did.
    pub fn push(&mut self, segment: &Segment) -> Option<PlaylistEntry> {
        self.push_entry(segment.entry(), segment.target_duration)
    }

    /// Lists an entry of a run whose target is `target_duration` (the segmenter's
    /// TARGETDURATION when it cut it). Returns the entry that slid out of the window, if one
    /// did.
    pub fn push_entry(
        &mut self,
        entry: PlaylistEntry,
        target_duration: u32,
    ) -> Option<PlaylistEntry> {
        if self
            .targets
            .back()
            .is_none_or(|&(_, t)| t != target_duration)
        {
            self.targets.push_back((entry.number, target_duration));
        }
        if self.open.is_some_and(|open| open.number <= entry.number) {
            self.open = None;
        }
        self.entries.push_back(entry);
        if self.part_target.is_some() {
            // Parts of segments older than the newest PART_SEGMENTS are no longer listed.
            let keep_from = self.entries.iter().rev().nth(PART_SEGMENTS - 1);
            if let Some(first) = keep_from.map(|e| e.number) {
                while self.parts.front().is_some_and(|p| p.segment < first) {
                    self.parts.pop_front();
                }
            }
        }
        if self.entries.len() <= self.window {
            return None;
        }
        let out = self.entries.pop_front()?;
        if out.discontinuity {
            self.discontinuity_sequence += 1;
        }
        self.forget_targets();
        Some(out)
    }

    /// Forgets the targets of runs no longer listed.
    fn forget_targets(&mut self) {
        let Some(first) = self.media_sequence() else {
            return;
        };
        while self
            .targets
            .get(1)
            .is_some_and(|&(start, _)| start <= first)
        {
            self.targets.pop_front();
        }
    }

    /// The listed segments, oldest first.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = &PlaylistEntry> {
        self.entries.iter()
    }

    /// `#EXT-X-TARGETDURATION`, once a segment has been pushed: the largest target among
    /// the runs listed.
    pub fn target_duration(&self) -> Option<u32> {
        self.targets.iter().map(|&(_, t)| t).max()
    }

    /// `#EXT-X-MEDIA-SEQUENCE`: the number of the first listed segment, once there is one.
    pub fn media_sequence(&self) -> Option<u64> {
        self.entries.front().map(|e| e.number)
    }

    /// `#EXT-X-DISCONTINUITY-SEQUENCE`.
    pub fn discontinuity_sequence(&self) -> u64 {
        self.discontinuity_sequence
    }

    /// The sum of the listed durations (the playlist duration of SPEC §HLS "Retention").
    pub fn duration(&self) -> Ts90 {
        Ts90(self.entries.iter().map(|e| e.duration.0).sum())
    }

    /// The playlist text; empty until a segment has been pushed (a playlist without segments
    /// is not served).
    pub fn render(&mut self) -> String {
        self.render_skipping(false)
    }

    /// The `_HLS_skip=YES` delta update of a low-latency playlist (RFC 8216bis §6.2.5.1): the
    /// segments that end at least CAN-SKIP-UNTIL before the last complete segment's end are
    /// replaced by `#EXT-X-SKIP:SKIPPED-SEGMENTS=<n>`. With nothing to skip, or without
    /// parts, the full playlist.
    pub fn render_delta(&mut self) -> String {
        self.render_skipping(true)
    }

    fn render_skipping(&mut self, delta: bool) -> String {
        let (Some(target), Some(sequence)) = (self.target_duration(), self.media_sequence()) else {
            return String::new();
        };
        let mut out = String::with_capacity(self.rendered_len + 64);
        let fmp4 = self.entries.iter().any(|e| e.init.is_some());
        let version = match (self.part_target, fmp4) {
            (Some(_), _) => 9,
            (None, true) => 7,
            (None, false) => 3,
        };
        // Writing into a String cannot fail.
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{target}\n"
        );
        if let Some(part_target) = self.part_target {
            ll::write_header(&mut out, target, part_target, self.part_hold_back);
        }
        let _ = write!(
            out,
            "#EXT-X-MEDIA-SEQUENCE:{sequence}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n",
            self.discontinuity_sequence
        );
        let skipped = match self.part_target {
            Some(_) if delta => ll::skippable(
                self.entries.iter().map(|e| e.duration),
                ll::skip_until(target),
            ),
            _ => 0,
        };
        if skipped > 0 {
            let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
        }
        let mut map = None;
        let mut parts = self.parts.iter().peekable();
        for entry in self.entries.iter().skip(skipped) {
            let head = (entry.program_date_time, entry.discontinuity, entry.init);
            write_head(&mut out, head, &mut map);
            while parts.peek().is_some_and(|p| p.segment < entry.number) {
                parts.next();
            }
            while let Some(part) = parts.next_if(|p| p.segment == entry.number) {
                ll::write_part(&mut out, part);
            }
            let _ = writeln!(out, "#EXTINF:{},", Seconds3(entry.duration));
            let _ = match entry.init {
                Some(_) => writeln!(out, "{}", Fmp4SegmentName(entry.number)),
                None => writeln!(out, "{}", SegmentName(entry.number)),
            };
        }
        if let Some(open) = self.open {
            let head = (open.program_date_time, open.discontinuity, open.init);
            write_head(&mut out, head, &mut map);
            for part in parts.filter(|p| p.segment == open.number) {
                ll::write_part(&mut out, part);
            }
        }
        if let (Some(_), Some(hint)) = (self.part_target, self.hint) {
            ll::write_hint(&mut out, hint);
        }
        self.rendered_len = out.len();
        out
    }
}

/// The tags before a segment's `#EXTINF` (or an open segment's parts): its program date
/// time, `#EXT-X-DISCONTINUITY`, and `#EXT-X-MAP` where the init differs from `map`, the
/// last one written (updated).
fn write_head(
    out: &mut String,
    (date, discontinuity, init): (UnixMillis, bool, Option<InitName>),
    map: &mut Option<InitName>,
) {
    let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{date}");
    if discontinuity {
        out.push_str("#EXT-X-DISCONTINUITY\n");
    }
    if init != *map
        && let Some(init) = init
    {
        let _ = writeln!(out, "#EXT-X-MAP:URI=\"{init}\"");
    }
    *map = init;
}

/// The URI of segment `number`: `seg_<n>.ts`, `n` zero-padded to at least 6 digits.
///
/// ```
/// use tributary_packager::{parse_segment_name, segment_name};
///
/// assert_eq!(segment_name(42), "seg_000042.ts");
/// assert_eq!(segment_name(1_795_514_400), "seg_1795514400.ts");
/// assert_eq!(parse_segment_name("seg_000042.ts"), Some(42));
/// assert_eq!(parse_segment_name("seg_42.ts"), None); // not a name the packager produced
/// ```
pub fn segment_name(number: u64) -> String {
    SegmentName(number).to_string()
}

/// The number of a segment URI the packager produces, or `None` for any other name (other
/// spellings of the same number included: names are compared, never normalised).
pub fn parse_segment_name(name: &str) -> Option<u64> {
    canonical_number(name.strip_prefix("seg_")?.strip_suffix(".ts")?)
}

/// The URI of fMP4 segment `number`: `seg_<n>.m4s`, `n` zero-padded to at least 6 digits.
///
/// ```
/// use tributary_packager::{fmp4_segment_name, parse_fmp4_segment_name};
///
/// assert_eq!(fmp4_segment_name(42), "seg_000042.m4s");
/// assert_eq!(parse_fmp4_segment_name("seg_000042.m4s"), Some(42));
/// assert_eq!(parse_fmp4_segment_name("seg_000042.ts"), None);
/// ```
pub fn fmp4_segment_name(number: u64) -> String {
    Fmp4SegmentName(number).to_string()
}

/// The number of an fMP4 segment URI the packager produces (`seg_<n>.m4s`), or `None` for
/// any other name (the same canonical spelling rules as [`parse_segment_name`]).
pub fn parse_fmp4_segment_name(name: &str) -> Option<u64> {
    canonical_number(name.strip_prefix("seg_")?.strip_suffix(".m4s")?)
}

/// The name of an fMP4 init segment, what `#EXT-X-MAP` points at (SPEC §HLS "fMP4").
///
/// ```
/// use tributary_media::SessionId;
/// use tributary_packager::InitName;
///
/// assert_eq!(InitName::First.to_string(), "init.mp4");
/// assert_eq!(InitName::Session(SessionId(7), 0).to_string(), "init_7.mp4");
/// assert_eq!(InitName::Session(SessionId(7), 2).to_string(), "init_7_2.mp4");
/// for name in [
///     InitName::First,
///     InitName::Session(SessionId(7), 0),
///     InitName::Session(SessionId(7), 2),
/// ] {
///     assert_eq!(InitName::parse(&name.to_string()), Some(name));
/// }
/// assert_eq!(InitName::parse("init_07.mp4"), None);
/// assert_eq!(InitName::parse("init_7_0.mp4"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InitName {
    /// `init.mp4`: the packager run's first init.
    First,
    /// `init_<session>.mp4` (index 0), then `init_<session>_<index>.mp4`: a later init,
    /// named after the session that needed it (a codec change starts a new session).
    Session(SessionId, u32),
}

impl InitName {
    /// The name its [`Display`](std::fmt::Display) gives; `None` for any other spelling.
    pub fn parse(name: &str) -> Option<Self> {
        if name == "init.mp4" {
            return Some(Self::First);
        }
        let rest = name.strip_prefix("init_")?.strip_suffix(".mp4")?;
        let (session, index) = match rest.split_once('_') {
            Some((session, index)) => (session, plain_number(index).filter(|&i| i > 0)?),
            None => (rest, 0),
        };
        let index = u32::try_from(index).ok()?;
        Some(Self::Session(SessionId(plain_number(session)?), index))
    }
}

impl std::fmt::Display for InitName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::First => f.write_str("init.mp4"),
            Self::Session(session, 0) => write!(f, "init_{}.mp4", session.0),
            Self::Session(session, index) => write!(f, "init_{}_{index}.mp4", session.0),
        }
    }
}

/// Digits without a leading zero (or `0` itself) as a number.
fn plain_number(digits: &str) -> Option<u64> {
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    canonical.then(|| digits.parse().ok()).flatten()
}

/// The number of a segment name's digits, when they are spelled as the packager spells them.
fn canonical_number(digits: &str) -> Option<u64> {
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number: u64 = digits.parse().ok()?;
    // Only the canonical spelling: extra leading zeros beyond 6 digits name nothing.
    (digits.len() == 6 || !digits.starts_with('0')).then_some(number)
}

/// Formats as the segment URI.
struct SegmentName(u64);

/// Formats as the fMP4 segment URI.
struct Fmp4SegmentName(u64);

impl std::fmt::Display for Fmp4SegmentName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "seg_{:06}.m4s", self.0)
    }
}

impl std::fmt::Display for SegmentName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "seg_{:06}.ts", self.0)
    }
}

/// Formats a media duration in seconds with 3 decimals, rounded to the nearest millisecond
/// (integer arithmetic: no float rounding surprises).
pub(crate) struct Seconds3(pub(crate) Ts90);

impl std::fmt::Display for Seconds3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = millis_rounded(self.0);
        write!(f, "{}.{:03}", ms / 1000, ms % 1000)
    }
}

/// A non-negative media duration rounded to the nearest millisecond (negative → 0).
pub(crate) fn millis_rounded(d: Ts90) -> i64 {
    (d.0.max(0) + 45) / 90
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(number: u64, ms: i64, discontinuity: bool) -> PlaylistEntry {
        PlaylistEntry {
            number,
            init: None,
            duration: Ts90(ms * 90),
            discontinuity,
            program_date_time: UnixMillis(1_795_514_400_000),
        }
    }

    #[test]
    fn target_duration_is_what_the_listed_segments_need() {
        let mut playlist = MediaPlaylist::new(3);
        for number in 0..3 {
            playlist.push_entry(entry(number, 2000, false), 2);
        }
        // S became 4 s: the first longer segment raises it at once.
        playlist.push_entry(entry(3, 4000, true), 4);
        assert_eq!(playlist.target_duration(), Some(4));
        assert!(playlist.render().contains(
            "#EXT-X-TARGETDURATION:4
"
        ));
        // And back to 2 s: 4 while a 4 s segment is listed, then 2.
        playlist.push_entry(entry(4, 2000, true), 2);
        playlist.push_entry(entry(5, 2000, false), 2);
        assert_eq!(playlist.media_sequence(), Some(3));
        assert_eq!(playlist.target_duration(), Some(4));
        playlist.push_entry(entry(6, 2000, false), 2);
        assert_eq!(playlist.target_duration(), Some(2), "segment 3 slid out");
        // A smaller window slides runs out too.
        playlist.push_entry(entry(7, 3000, true), 3);
        assert_eq!(playlist.target_duration(), Some(3));
        playlist.set_window(1);
        playlist.push_entry(entry(8, 2000, true), 2);
        assert_eq!(playlist.target_duration(), Some(2));
        assert_eq!(playlist.entries().len(), 1);
    }

    #[test]
    fn window_slides_and_counts_discontinuities_slid_out() {
        let mut playlist = MediaPlaylist::new(3);
        assert_eq!(
            playlist.render(),
            "",
            "nothing to serve before the first segment"
        );
        assert_eq!(playlist.push_entry(entry(10, 2000, false), 2), None);
        assert_eq!(playlist.push_entry(entry(11, 2000, true), 5), None);
        assert_eq!(playlist.push_entry(entry(12, 1500, false), 2), None);
        assert_eq!(playlist.media_sequence(), Some(10));
        assert_eq!(playlist.duration(), Ts90(5500 * 90));
        assert_eq!(
            playlist
                .push_entry(entry(13, 2000, true), 2)
                .map(|e| e.number),
            Some(10)
        );
        assert_eq!(playlist.discontinuity_sequence(), 0);
        assert_eq!(
            playlist
                .push_entry(entry(14, 2000, false), 2)
                .map(|e| e.number),
            Some(11)
        );
        assert_eq!(playlist.discontinuity_sequence(), 1);
        assert_eq!(playlist.media_sequence(), Some(12));
        assert_eq!(
            playlist.target_duration(),
            Some(2),
            "11's run (target 5) slid out"
        );
        let text = playlist.render();
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:12\n#EXT-X-DISCONTINUITY-SEQUENCE:1\n"));
        assert!(text.contains(
            "#EXT-X-PROGRAM-DATE-TIME:2026-11-24T10:00:00.000Z\n#EXT-X-DISCONTINUITY\n\
             #EXTINF:2.000,\nseg_000013.ts\n"
        ));
        assert!(text.contains("#EXTINF:1.500,\nseg_000012.ts\n"));
        assert!(!text.contains("ENDLIST"));
        assert_eq!(text.matches("#EXTINF").count(), 3);
    }

    #[test]
    fn a_window_changed_while_running_slides_out_at_once_or_lists_more() {
        let mut playlist = MediaPlaylist::new(4);
        for number in 10..14 {
            playlist.push_entry(entry(number, 2000, number == 11), 2);
        }
        let out: Vec<u64> = playlist.set_window(2).iter().map(|e| e.number).collect();
        assert_eq!(out, [10, 11]);
        assert_eq!(playlist.media_sequence(), Some(12));
        assert_eq!(
            playlist.discontinuity_sequence(),
            1,
            "11's discontinuity slid out"
        );
        assert_eq!(playlist.render().matches("#EXTINF").count(), 2);
        assert!(playlist.set_window(3).is_empty());
        assert_eq!(playlist.push_entry(entry(14, 2000, false), 2), None);
        assert_eq!(playlist.entries().len(), 3);
        assert_eq!(
            playlist
                .push_entry(entry(15, 2000, false), 2)
                .map(|e| e.number),
            Some(12)
        );
    }

    #[test]
    fn fmp4_entries_get_version_7_and_a_map_wherever_the_init_changes() {
        let mut playlist = MediaPlaylist::new(3);
        let fmp4 = |number, init, discontinuity| PlaylistEntry {
            init: Some(init),
            ..entry(number, 2000, discontinuity)
        };
        let later = InitName::Session(SessionId(9), 0);
        playlist.push_entry(fmp4(10, InitName::First, false), 2);
        playlist.push_entry(fmp4(11, InitName::First, false), 2);
        playlist.push_entry(fmp4(12, later, true), 2);
        let text = playlist.render();
        assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n"), "{text}");
        assert_eq!(text.matches("#EXT-X-MAP").count(), 2, "{text}");
        assert!(text.contains(
            "#EXT-X-PROGRAM-DATE-TIME:2026-11-24T10:00:00.000Z\n#EXT-X-MAP:URI=\"init.mp4\"\n\
             #EXTINF:2.000,\nseg_000010.m4s\n"
        ));
        assert!(text.contains(
            "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init_9.mp4\"\n#EXTINF:2.000,\n\
             seg_000012.m4s\n"
        ));
        // The first init slides out: the first listed segment still gets its map.
        playlist.push_entry(fmp4(13, later, false), 2);
        playlist.push_entry(fmp4(14, later, false), 2);
        let text = playlist.render();
        assert_eq!(text.matches("#EXT-X-MAP").count(), 1, "{text}");
        assert!(text.contains("#EXT-X-MAP:URI=\"init_9.mp4\"\n#EXTINF:2.000,\nseg_000012.m4s"));
    }

    #[test]
    fn extinf_rounds_to_the_millisecond() {
        for (ticks, want) in [
            (0, "0.000"),
            (44, "0.000"),
            (45, "0.001"),
            (180_000, "2.000"),
            (180_180, "2.002"),
            (183_003, "2.033"),
            (-5, "0.000"),
        ] {
            assert_eq!(Seconds3(Ts90(ticks)).to_string(), want, "{ticks}");
        }
    }

    #[test]
    fn segment_names_parse_only_as_produced() {
        for n in [0, 1, 999_999, 1_000_000, 1_795_514_400, u64::MAX] {
            assert_eq!(parse_segment_name(&segment_name(n)), Some(n));
        }
        for bad in [
            "seg_1.ts",
            "seg_0000001.ts",
            "seg_00000a.ts",
            "seg_+00001.ts",
            "seg_000001.m4s",
            "seg_000001.ts/",
            "../seg_000001.ts",
            "index.m3u8",
            "seg_99999999999999999999.ts",
        ] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
    }
}
