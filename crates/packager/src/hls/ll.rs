//! LL-HLS in the media playlist: parts, the preload hint, server control and delta updates
//! (RFC 8216bis §4.4.3.7–§4.4.5.3, §6.2.5), kept here so that the playlist's own file stays
//! about the sliding window. Everything is text formatting over plain values: the playlist
//! decides what is listed, this module how it is spelled.

use std::fmt::Write;

use tributary_media::Ts90;

use crate::UnixMillis;
use crate::hls::Part;
use crate::hls::playlist::{InitName, Seconds3};

/// One part as the playlist lists it (`#EXT-X-PART`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartEntry {
    /// The number of its segment.
    pub segment: u64,
    /// Its index in the segment, from 0.
    pub index: u32,
    /// `DURATION`.
    pub duration: Ts90,
    /// `INDEPENDENT=YES`.
    pub independent: bool,
}

impl From<&Part> for PartEntry {
    fn from(part: &Part) -> Self {
        Self {
            segment: part.segment,
            index: part.index,
            duration: part.duration,
            independent: part.independent,
        }
    }
}

/// The segment whose parts are out but which is not complete yet: what the playlist prints
/// before its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenHeader {
    pub(crate) number: u64,
    pub(crate) init: Option<InitName>,
    pub(crate) discontinuity: bool,
    pub(crate) program_date_time: UnixMillis,
}

impl From<&Part> for OpenHeader {
    fn from(part: &Part) -> Self {
        Self {
            number: part.segment,
            init: part.init,
            discontinuity: part.discontinuity,
            program_date_time: part.program_date_time,
        }
    }
}

/// The URI of part `index` of segment `number`: `part_<n>.<i>.m4s`, `n` zero-padded to at
/// least 6 digits as segment names are.
///
/// ```
/// use tributary_packager::{parse_part_name, part_name};
///
/// assert_eq!(part_name(42, 3), "part_000042.3.m4s");
/// assert_eq!(parse_part_name("part_000042.3.m4s"), Some((42, 3)));
/// assert_eq!(parse_part_name("part_000042.03.m4s"), None);
/// assert_eq!(parse_part_name("part_42.3.m4s"), None);
/// ```
pub fn part_name(number: u64, index: u32) -> String {
    PartName(number, index).to_string()
}

/// The (segment number, part index) of a part URI the packager produces, or `None` for any
/// other spelling.
pub fn parse_part_name(name: &str) -> Option<(u64, u32)> {
    let rest = name.strip_prefix("part_")?.strip_suffix(".m4s")?;
    let (number, index) = rest.split_once('.')?;
    let canonical_index = !index.is_empty()
        && index.bytes().all(|b| b.is_ascii_digit())
        && (index == "0" || !index.starts_with('0'));
    let number_ok = number.len() >= 6
        && number.bytes().all(|b| b.is_ascii_digit())
        && (number.len() == 6 || !number.starts_with('0'));
    if !(canonical_index && number_ok) {
        return None;
    }
    Some((number.parse().ok()?, index.parse().ok()?))
}

/// Formats as the part URI.
pub(crate) struct PartName(pub(crate) u64, pub(crate) u32);

impl std::fmt::Display for PartName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "part_{:06}.{}.m4s", self.0, self.1)
    }
}

/// `#EXT-X-SERVER-CONTROL` and `#EXT-X-PART-INF` for parts of `part_target`, a playlist of
/// TARGETDURATION `target` and a PART-HOLD-BACK of `hold_back`: blocking reload,
/// PART-HOLD-BACK, and delta updates for whatever is more than 6 × TARGETDURATION from the
/// end (the spec's minimum). `HOLD-BACK` is not written: absent, it is 3 × TARGETDURATION,
/// the least the spec allows, which is what a player outside low-latency mode should keep.
pub(crate) fn write_header(out: &mut String, target: u32, part_target: Ts90, hold_back: Ts90) {
    let _ = write!(
        out,
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={},PART-HOLD-BACK={}\n\
         #EXT-X-PART-INF:PART-TARGET={}\n",
        Seconds3(skip_until(target)),
        Seconds3(hold_back),
        Seconds3(part_target),
    );
}

/// PART-HOLD-BACK: `wanted`, raised to 2 × `part_target` where it is below (RFC 8216bis
/// §4.4.3.8: "MUST be at least twice the Part Target Duration").
pub(crate) fn part_hold_back(part_target: Ts90, wanted: Ts90) -> Ts90 {
    Ts90(wanted.0.max(2 * part_target.0))
}

/// CAN-SKIP-UNTIL: 6 × TARGETDURATION.
pub(crate) fn skip_until(target: u32) -> Ts90 {
    Ts90(6 * i64::from(target) * Ts90::HZ)
}

/// One `#EXT-X-PART` line.
pub(crate) fn write_part(out: &mut String, part: &PartEntry) {
    let _ = write!(
        out,
        "#EXT-X-PART:DURATION={},URI=\"{}\"",
        Seconds3(part.duration),
        PartName(part.segment, part.index)
    );
    out.push_str(if part.independent {
        ",INDEPENDENT=YES\n"
    } else {
        "\n"
    });
}

/// `#EXT-X-PRELOAD-HINT` for part `index` of segment `number`.
pub(crate) fn write_hint(out: &mut String, (number, index): (u64, u32)) {
    let _ = writeln!(
        out,
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
        PartName(number, index)
    );
}

/// An `#EXT-X-RENDITION-REPORT` line for the rendition at `uri` whose last part is part
/// `part` of segment `msn` (RFC 8216bis §4.4.5.4): appended to a variant's playlist for each
/// other variant of its ladder.
///
/// ```
/// let mut text = String::new();
/// tributary_packager::write_rendition_report(&mut text, "../track_2/index.m3u8", 1_000_000, 3);
/// assert_eq!(
///     text,
///     "#EXT-X-RENDITION-REPORT:URI=\"../track_2/index.m3u8\",LAST-MSN=1000000,LAST-PART=3\n"
/// );
/// ```
pub fn write_rendition_report(out: &mut String, uri: &str, msn: u64, part: u32) {
    let _ = writeln!(
        out,
        "#EXT-X-RENDITION-REPORT:URI=\"{uri}\",LAST-MSN={msn},LAST-PART={part}"
    );
}

/// How many segments from the front a delta update skips: those that end at least
/// CAN-SKIP-UNTIL before the end of the last complete segment (`durations` oldest first).
pub(crate) fn skippable(
    durations: impl ExactSizeIterator<Item = Ts90> + Clone,
    until: Ts90,
) -> usize {
    let total: i64 = durations.clone().map(|d| d.0).sum();
    let mut end = 0;
    let mut skipped = 0;
    for duration in durations {
        end += duration.0;
        if total - end < until.0 {
            break;
        }
        skipped += 1;
    }
    skipped
}
