//! `playlist.m3u8` of a recording, built on request from its log (SPEC §DVR "Playlists are
//! built on request"): nothing is rewritten per segment, and the playlist can never list a
//! segment the log does not. The timeshift playlists ([`crate::timeshift`]) are rendered here
//! too, over a slice of the log, with URIs that may point elsewhere than next to the playlist.

use std::fmt::Write;

use crate::log::SegmentEntry;

/// Whether the recording still grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistKind {
    /// Recording: `#EXT-X-PLAYLIST-TYPE:EVENT`, no end.
    Event,
    /// Stopped: `#EXT-X-PLAYLIST-TYPE:VOD` and `#EXT-X-ENDLIST`.
    Vod,
    /// A sliding live window (a delayed live URL): no playlist type, no end, and the
    /// discontinuities that slid out counted in `#EXT-X-DISCONTINUITY-SEQUENCE`.
    Live {
        /// Discontinuities before the first segment listed.
        discontinuity_sequence: u64,
    },
}

/// The kind of a running recording's `playlist.m3u8`: `EVENT` (SPEC §DVR), unless retention
/// may remove its oldest segments (`sliding`). An `EVENT` playlist only ever grows at its end
/// (RFC 8216 §4.3.3.5): a player that saw a segment at its head expects it there on every
/// reload, and one that finds the head gone may start over or fail. Under retention the
/// playlist is a sliding live one instead: it starts at the first retained segment, its
/// `#EXT-X-MEDIA-SEQUENCE` that segment's `seq` (numbers are never reused), and
/// `#EXT-X-DISCONTINUITY-SEQUENCE` counts the discontinuities before its first tag: those
/// retention removed, and the first listed segment's own (which carries no tag).
pub fn recording_kind(entries: &[SegmentEntry], sliding: Option<crate::Sliding>) -> PlaylistKind {
    match sliding {
        None => PlaylistKind::Event,
        Some(sliding) => PlaylistKind::Live {
            discontinuity_sequence: sliding.expired_discontinuities
                + u64::from(entries.first().is_some_and(|e| e.discontinuity)),
        },
    }
}

/// How segment URIs are written: `<prefix><file><query>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Uris<'a> {
    /// Before the file name: `""` next to the playlist, `/recordings/{rid}/` from elsewhere.
    pub prefix: &'a str,
    /// After it: `""`, or `?exp=…&sig=…` when play URLs are signed.
    pub query: &'a str,
}

/// The playlist over `entries` (sorted by `seq`); segment URIs are the bare file names, so
/// they resolve next to the playlist (`/recordings/{rid}/000042.ts`).
///
/// `#EXT-X-TARGETDURATION` is the longest segment rounded up; `#EXT-X-PROGRAM-DATE-TIME` comes
/// before the first segment and after each discontinuity.
pub fn render(entries: &[SegmentEntry], kind: PlaylistKind) -> String {
    render_with(entries, kind, Uris::default())
}

/// [`render`] with segment URIs written as `uris` says.
pub fn render_with(entries: &[SegmentEntry], kind: PlaylistKind, uris: Uris<'_>) -> String {
    let longest = entries.iter().map(|e| e.duration_ms).max().unwrap_or(0);
    let target = longest.div_ceil(1000).max(1);
    let mut text = String::with_capacity(64 + entries.len() * 96);
    // Writing into a String cannot fail.
    let _ = write!(
        text,
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{}\n",
        entries.first().map_or(0, |e| e.seq)
    );
    match kind {
        PlaylistKind::Event => text.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n"),
        PlaylistKind::Vod => text.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n"),
        PlaylistKind::Live {
            discontinuity_sequence,
        } => {
            let _ = writeln!(
                text,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}"
            );
        }
    }
    text.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 && entry.discontinuity {
            text.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if i == 0 || entry.discontinuity {
            let _ = writeln!(text, "#EXT-X-PROGRAM-DATE-TIME:{}", entry.start);
        }
        let _ = writeln!(
            text,
            "#EXTINF:{}.{:03},\n{}{}{}",
            entry.duration_ms / 1000,
            entry.duration_ms % 1000,
            uris.prefix,
            entry.file(),
            uris.query
        );
    }
    if kind == PlaylistKind::Vod {
        text.push_str("#EXT-X-ENDLIST\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use tributary_packager::UnixMillis;

    use super::*;

    #[test]
    fn vod_with_a_discontinuity() {
        let entries = [
            SegmentEntry {
                seq: 1,
                start: UnixMillis(1_795_514_400_000),
                duration_ms: 4000,
                size: 10,
                discontinuity: false,
            },
            SegmentEntry {
                seq: 2,
                start: UnixMillis(1_795_514_404_000),
                duration_ms: 4480,
                size: 10,
                discontinuity: false,
            },
            SegmentEntry {
                seq: 3,
                start: UnixMillis(1_795_514_460_000),
                duration_ms: 2000,
                size: 10,
                discontinuity: true,
            },
        ];
        assert_eq!(
            render(&entries, PlaylistKind::Vod),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:5\n#EXT-X-MEDIA-SEQUENCE:1\n\
             #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-24T10:00:00.000Z\n#EXTINF:4.000,\n000001.ts\n\
             #EXTINF:4.480,\n000002.ts\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-11-24T10:01:00.000Z\n\
             #EXTINF:2.000,\n000003.ts\n#EXT-X-ENDLIST\n"
        );
        let event = render(&entries[..1], PlaylistKind::Event);
        assert!(event.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"));
        assert!(!event.contains("ENDLIST"));
    }
}
