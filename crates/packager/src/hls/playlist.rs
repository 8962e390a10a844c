//! The live media playlist: a sliding window over the segments a segmenter produced.

use std::collections::VecDeque;
use std::fmt::Write;

use tributary_media::Ts90;

use crate::UnixMillis;
use crate::hls::Segment;

/// The name of the media playlist.
pub const PLAYLIST_NAME: &str = "index.m3u8";

/// The sliding window of a live HLS media playlist (SPEC §HLS "Playlist").
///
/// Push every [`Segment`] the segmenter produces, in order; [`render`](Self::render) writes
/// the playlist as a player fetches it. The window lists the last `window` segments; each push
/// beyond that slides the oldest out and returns it, so the caller can keep it fetchable for
/// its retention time. `#EXT-X-MEDIA-SEQUENCE` is the number of the first listed segment and
/// `#EXT-X-DISCONTINUITY-SEQUENCE` counts the discontinuities that slid out.
/// `#EXT-X-TARGETDURATION` is taken from the first segment pushed and never changes.
/// No `#EXT-X-ENDLIST` is ever written: the playlist is live.
///
/// ```
/// use tributary_packager::{MediaPlaylist, PlaylistEntry, UnixMillis};
/// use tributary_media::Ts90;
///
/// let mut playlist = MediaPlaylist::new(2);
/// for number in 100_000..100_003 {
///     let entry = PlaylistEntry {
///         number,
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
    /// `#EXT-X-TARGETDURATION`, fixed by the first push.
    target_duration: Option<u32>,
    /// `#EXT-X-DISCONTINUITY-SEQUENCE`: discontinuities that slid out of the window.
    discontinuity_sequence: u64,
    /// The listed segments, oldest first.
    entries: VecDeque<PlaylistEntry>,
    /// Length of the last rendering, to size the next one.
    rendered_len: usize,
}

/// One segment as the playlist lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaylistEntry {
    /// Its number: the URI is [`segment_name`]`(number)`.
    pub number: u64,
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
            target_duration: None,
            discontinuity_sequence: 0,
            entries: VecDeque::with_capacity(window.max(1) + 1),
            rendered_len: 0,
        }
    }

    /// Lists `segment`; returns the segment that slid out of the window, if one did.
    pub fn push(&mut self, segment: &Segment) -> Option<PlaylistEntry> {
        self.push_entry(segment.entry(), segment.target_duration)
    }

    /// Lists an entry; `target_duration` is used only by the first push (it never changes
    /// afterwards). Returns the entry that slid out of the window, if one did.
    pub fn push_entry(
        &mut self,
        entry: PlaylistEntry,
        target_duration: u32,
    ) -> Option<PlaylistEntry> {
        self.target_duration.get_or_insert(target_duration);
        self.entries.push_back(entry);
        if self.entries.len() <= self.window {
            return None;
        }
        let out = self.entries.pop_front()?;
        if out.discontinuity {
            self.discontinuity_sequence += 1;
        }
        Some(out)
    }

    /// The listed segments, oldest first.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = &PlaylistEntry> {
        self.entries.iter()
    }

    /// `#EXT-X-TARGETDURATION`, once a segment has been pushed.
    pub fn target_duration(&self) -> Option<u32> {
        self.target_duration
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
        let (Some(target), Some(sequence)) = (self.target_duration, self.media_sequence()) else {
            return String::new();
        };
        let mut out = String::with_capacity(self.rendered_len + 64);
        // Writing into a String cannot fail.
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n\
             #EXT-X-MEDIA-SEQUENCE:{sequence}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n",
            self.discontinuity_sequence
        );
        for entry in &self.entries {
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", entry.program_date_time);
            if entry.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = writeln!(out, "#EXTINF:{},", Seconds3(entry.duration));
            let _ = writeln!(out, "{}", SegmentName(entry.number));
        }
        self.rendered_len = out.len();
        out
    }
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
    let digits = name.strip_prefix("seg_")?.strip_suffix(".ts")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number: u64 = digits.parse().ok()?;
    // Only the canonical spelling: extra leading zeros beyond 6 digits name nothing.
    (digits.len() == 6 || !digits.starts_with('0')).then_some(number)
}

/// Formats as the segment URI.
struct SegmentName(u64);

impl std::fmt::Display for SegmentName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "seg_{:06}.ts", self.0)
    }
}

/// Formats a media duration in seconds with 3 decimals, rounded to the nearest millisecond
/// (integer arithmetic: no float rounding surprises).
struct Seconds3(Ts90);

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
            duration: Ts90(ms * 90),
            discontinuity,
            program_date_time: UnixMillis(1_795_514_400_000),
        }
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
            "fixed by the first push"
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
