//! The segment log (`segments.jsonl`) and what is derived from it: gaps and the summary.
//!
//! The log is the recording's truth (SPEC §DVR): one JSON line per segment, appended and synced
//! when the segment is on disk, so a crash loses at most the line being written. Everything
//! else is derived from it on demand: the gaps (a discontinuous segment that starts later than
//! its predecessor ended), `index.json`, and the playlists ([`crate::playlist`]). Deriving
//! gaps instead of storing them separately means they can never disagree with the segments,
//! and retention that drops old segments drops their gaps with them.
//!
//! Parsing is forgiving where a crash can leave damage and strict elsewhere: a last line cut
//! short (no newline) is ignored, a line that does not parse is reported and skipped, and a
//! line whose `file` is not the name its `seq` gives is refused, so a log can never make the
//! server read a file that is not one of the recording's own segments.

use std::fmt;

use serde::{Deserialize, Serialize};
use tributary_packager::UnixMillis;

/// One segment of a recording, as one line of `segments.jsonl` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentEntry {
    /// Its index: the file is [`segment_name`]`(seq)`. Increases by one per segment written
    /// and never repeats within a recording directory.
    pub seq: u64,
    /// The wall time of its first frame.
    pub start: UnixMillis,
    /// Its duration in milliseconds (PTS span including the last frame).
    pub duration_ms: u64,
    /// Its size in bytes.
    pub size: u64,
    /// It follows a discontinuity (a new session, a loss, a gap or a restart).
    pub discontinuity: bool,
}

impl SegmentEntry {
    /// The wall time just after its last frame.
    pub fn end(&self) -> UnixMillis {
        UnixMillis(
            self.start
                .0
                .saturating_add(i64::try_from(self.duration_ms).unwrap_or(i64::MAX)),
        )
    }

    /// The file name ([`segment_name`]).
    pub fn file(&self) -> String {
        segment_name(self.seq)
    }

    /// The line for `segments.jsonl`, newline included.
    pub fn to_line(&self) -> String {
        let line = Line {
            seq: self.seq,
            file: self.file(),
            start: self.start.to_string(),
            duration: self.duration_ms as f64 / 1000.0,
            size: self.size,
            discontinuity: self.discontinuity,
        };
        // A struct of numbers and strings always serialises.
        let mut text = serde_json::to_string(&line).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// A hole in a recording: no media was recorded between `from` and `to`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Gap {
    /// The end of the segment before the hole.
    #[serde(serialize_with = "rfc3339")]
    pub from: UnixMillis,
    /// The start of the segment after it.
    #[serde(serialize_with = "rfc3339")]
    pub to: UnixMillis,
    /// `to - from` in seconds.
    pub duration: f64,
}

/// What [`parse_log`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedLog {
    /// The segments, by increasing `seq` (a repeated `seq` keeps its last line).
    pub entries: Vec<SegmentEntry>,
    /// Lines that did not parse: (1-based line number, why). Skipped.
    pub bad_lines: Vec<(usize, LineError)>,
    /// The text ended inside a line (a crash during an append): that line is ignored.
    pub torn_tail: bool,
}

/// Why a log line was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// Not a JSON object with the fields of a segment.
    #[error("not a segment line: {0}")]
    Json(String),
    /// `start` is not an RFC 3339 time.
    #[error("start {0:?} is not an RFC 3339 time")]
    Start(String),
    /// `file` is not the name `seq` gives.
    #[error("file {file:?} is not segment {seq}'s name")]
    File {
        /// The line's `seq`.
        seq: u64,
        /// The line's `file`.
        file: String,
    },
    /// `duration` is negative or not finite.
    #[error("duration {0} is not a length")]
    Duration(f64),
}

/// Parses `segments.jsonl`.
pub fn parse_log(text: &str) -> ParsedLog {
    let mut parsed = ParsedLog::default();
    let mut rest = text;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        let Some((line, after)) = rest.split_once('\n') else {
            // No newline: the append of this line did not finish.
            parsed.torn_tail = !rest.trim().is_empty();
            break;
        };
        rest = after;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(entry) => parsed.entries.push(entry),
            Err(error) => parsed.bad_lines.push((number, error)),
        }
    }
    parsed.entries.sort_by_key(|e| e.seq);
    // A repeated seq (only ever from a hand-edited log) keeps its last line.
    parsed.entries.reverse();
    parsed.entries.dedup_by_key(|e| e.seq);
    parsed.entries.reverse();
    parsed
}

/// Parses one line (without its newline).
pub fn parse_line(line: &str) -> Result<SegmentEntry, LineError> {
    let line: Line = serde_json::from_str(line).map_err(|e| LineError::Json(e.to_string()))?;
    let start = chrono::DateTime::parse_from_rfc3339(&line.start)
        .map_err(|_| LineError::Start(line.start.clone()))?;
    if line.file != segment_name(line.seq) {
        return Err(LineError::File {
            seq: line.seq,
            file: line.file,
        });
    }
    if !line.duration.is_finite() || line.duration < 0.0 || line.duration > MAX_DURATION_SEC {
        return Err(LineError::Duration(line.duration));
    }
    Ok(SegmentEntry {
        seq: line.seq,
        start: UnixMillis(start.timestamp_millis()),
        duration_ms: (line.duration * 1000.0).round() as u64,
        size: line.size,
        discontinuity: line.discontinuity,
    })
}

/// The file name of segment `seq`: six digits at least, `.ts`.
pub fn segment_name(seq: u64) -> String {
    format!("{seq:06}.ts")
}

/// The `seq` a segment file name names, if it is one (`000042.ts` → 42). Only names
/// [`segment_name`] produces qualify: at least six ASCII digits, no sign, no other suffix.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".ts")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seq: u64 = digits.parse().ok()?;
    (segment_name(seq) == name).then_some(seq)
}

/// The gaps of a log: before each discontinuous segment that starts at least [`MIN_GAP_MS`]
/// after the previous one ended (a restart, an input that stayed away, segments lost to a
/// failing or slow disk). A discontinuity without a hole (an input switch) is no gap.
pub fn gaps(entries: &[SegmentEntry]) -> Vec<Gap> {
    entries
        .windows(2)
        .filter_map(|pair| {
            let (before, after) = (&pair[0], &pair[1]);
            let hole = after.start.0 - before.end().0;
            (after.discontinuity && hole >= MIN_GAP_MS).then(|| Gap {
                from: before.end(),
                to: after.start,
                duration: hole as f64 / 1000.0,
            })
        })
        .collect()
}

/// `index.json`: the recording's summary, rewritten (atomically) after every segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The recording id (the stream code).
    pub recording_id: String,
    /// The stream.
    pub stream_code: String,
    /// `recording`, `stopped` or `failed`.
    pub status: &'static str,
    /// The first segment's wall time, or `None` before the first segment.
    #[serde(serialize_with = "rfc3339_opt")]
    pub started_at: Option<UnixMillis>,
    /// When recording stopped (set with `status: stopped`).
    #[serde(
        serialize_with = "rfc3339_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub stopped_at: Option<UnixMillis>,
    /// The newest segment's wall time.
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_segment_at: Option<UnixMillis>,
    /// Segments on disk.
    pub segment_count: usize,
    /// Their total size.
    pub total_size_bytes: u64,
    /// Their total duration in seconds.
    pub total_duration_sec: f64,
    /// The lowest and highest `seq` on disk.
    pub first_seq: Option<u64>,
    /// See `first_seq`.
    pub last_seq: Option<u64>,
    /// The holes, oldest first.
    pub gaps: Vec<Gap>,
}

impl Summary {
    /// The summary of `entries` (sorted by `seq`).
    pub fn of(code: &str, status: &'static str, entries: &[SegmentEntry]) -> Self {
        Self {
            recording_id: code.to_owned(),
            stream_code: code.to_owned(),
            status,
            started_at: entries.first().map(|e| e.start),
            stopped_at: None,
            last_segment_at: entries.last().map(|e| e.start),
            segment_count: entries.len(),
            total_size_bytes: entries.iter().map(|e| e.size).sum(),
            total_duration_sec: entries.iter().map(|e| e.duration_ms).sum::<u64>() as f64 / 1000.0,
            first_seq: entries.first().map(|e| e.seq),
            last_seq: entries.last().map(|e| e.seq),
            gaps: gaps(entries),
        }
    }
}

/// A log line on the wire (SPEC §DVR: `{seq, file, start, duration, size, discontinuity}`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    seq: u64,
    file: String,
    start: String,
    /// Seconds, millisecond precision.
    duration: f64,
    size: u64,
    #[serde(default)]
    discontinuity: bool,
}

fn rfc3339<S: serde::Serializer>(at: &UnixMillis, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(at)
}

fn rfc3339_opt<S: serde::Serializer>(at: &Option<UnixMillis>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => s.collect_str(at),
        None => s.serialize_none(),
    }
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {} ({:.3} s)", self.from, self.to, self.duration)
    }
}

/// The shortest hole before a discontinuous segment that counts as a gap: shorter ones are
/// the jitter of wall-clock anchoring across a session change, not missing media.
pub const MIN_GAP_MS: i64 = 1000;
/// The longest duration a log line may claim (a day): anything longer is damage.
const MAX_DURATION_SEC: f64 = 86_400.0;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn entry(seq: u64, start: i64, duration_ms: u64, discontinuity: bool) -> SegmentEntry {
        SegmentEntry {
            seq,
            start: UnixMillis(start),
            duration_ms,
            size: 1000 + seq,
            discontinuity,
        }
    }

    #[test]
    fn line_round_trip_and_names() {
        let e = entry(7, 1_795_514_400_123, 4004, true);
        let line = e.to_line();
        assert_eq!(
            line,
            "{\"seq\":7,\"file\":\"000007.ts\",\"start\":\"2026-11-24T10:00:00.123Z\",\
             \"duration\":4.004,\"size\":1007,\"discontinuity\":true}\n"
        );
        assert_eq!(parse_line(line.trim_end()), Ok(e));
        assert_eq!(parse_segment_name("000007.ts"), Some(7));
        assert_eq!(parse_segment_name("1234567.ts"), Some(1_234_567));
        for bad in [
            "7.ts",
            "00007.ts",
            "000007.TS",
            "+00007.ts",
            "../000007.ts",
            "000007.ts.ts",
            "0000007.ts",
        ] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn torn_tail_and_bad_lines_are_skipped() {
        let a = entry(1, 0, 4000, false).to_line();
        let b = entry(2, 4000, 4000, false).to_line();
        let text = format!("{a}garbage\n\n{b}{{\"seq\":3,\"fi");
        let parsed = parse_log(&text);
        assert_eq!(parsed.entries.len(), 2);
        assert!(parsed.torn_tail);
        assert_eq!(parsed.bad_lines.len(), 1);
        assert_eq!(parsed.bad_lines[0].0, 2);
        // A file name that is not the seq's is refused: a log cannot point elsewhere.
        let evil = "{\"seq\":4,\"file\":\"../../etc/passwd\",\"start\":\"2026-11-24T10:00:00.000Z\",\"duration\":1,\"size\":1}\n";
        let parsed = parse_log(evil);
        assert!(parsed.entries.is_empty());
        assert!(matches!(parsed.bad_lines[0].1, LineError::File { .. }));
    }

    #[test]
    fn gaps_need_a_discontinuity_and_a_hole() {
        let entries = [
            entry(1, 0, 4000, false),
            // An input switch: discontinuous, no hole.
            entry(2, 4000, 4000, true),
            // A hole without a discontinuity flag: not a gap (cannot happen, but is ignored).
            entry(3, 9000, 4000, false),
            // A restart 60 s later.
            entry(4, 73_000, 4000, true),
            // Jitter under a second.
            entry(5, 77_500, 4000, true),
        ];
        let gaps = gaps(&entries);
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].from, UnixMillis(13_000));
        assert_eq!(gaps[0].to, UnixMillis(73_000));
        assert_eq!(gaps[0].duration, 60.0);
        let summary = Summary::of("cam", "recording", &entries);
        assert_eq!(summary.segment_count, 5);
        assert_eq!(summary.first_seq, Some(1));
        assert_eq!(summary.total_duration_sec, 20.0);
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["gaps"][0]["from"], "1970-01-01T00:00:13.000Z");
    }

    fn arb_entry() -> impl Strategy<Value = SegmentEntry> {
        (
            0u64..10_000_000,
            0i64..4_000_000_000_000,
            0u64..86_400_000,
            any::<u64>(),
            any::<bool>(),
        )
            .prop_map(
                |(seq, start, duration_ms, size, discontinuity)| SegmentEntry {
                    seq,
                    start: UnixMillis(start),
                    duration_ms,
                    size,
                    discontinuity,
                },
            )
    }

    proptest! {
        #[test]
        fn render_then_parse_is_identity(entries in proptest::collection::vec(arb_entry(), 0..40)) {
            let mut expected = entries.clone();
            expected.sort_by_key(|e| e.seq);
            expected.reverse();
            expected.dedup_by_key(|e| e.seq);
            expected.reverse();
            let text: String = entries.iter().map(SegmentEntry::to_line).collect();
            let parsed = parse_log(&text);
            prop_assert!(parsed.bad_lines.is_empty());
            prop_assert!(!parsed.torn_tail);
            prop_assert_eq!(parsed.entries, expected);
        }

        #[test]
        fn a_cut_log_keeps_every_whole_line(
            entries in proptest::collection::vec(arb_entry(), 1..20),
            cut in any::<prop::sample::Index>(),
        ) {
            let text: String = entries.iter().map(SegmentEntry::to_line).collect();
            let at = cut.index(text.len() + 1);
            let parsed = parse_log(&text[..at]);
            let whole = text[..at].matches('\n').count();
            let mut seqs: Vec<u64> = entries[..whole].iter().map(|e| e.seq).collect();
            seqs.sort_unstable();
            seqs.dedup();
            prop_assert!(parsed.bad_lines.is_empty());
            prop_assert_eq!(parsed.entries.len(), seqs.len());
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,400}") {
            let parsed = parse_log(&text);
            for e in parsed.entries {
                prop_assert_eq!(parse_segment_name(&e.file()), Some(e.seq));
            }
        }
    }
}
