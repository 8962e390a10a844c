//! The DVR's segment log (`segments.jsonl`) as a restart reads it back: any bytes, a torn
//! last line, hand-edited lines. Nothing panics, every entry kept names one of the
//! recording's own segment files, and what the parser keeps renders and parses back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_dvr::log::{SegmentEntry, gaps, parse_log, parse_segment_name};
use tributary_dvr::playlist::{PlaylistKind, render};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = parse_log(&text);
    for entry in &parsed.entries {
        assert_eq!(parse_segment_name(&entry.file()), Some(entry.seq));
    }
    let again: String = parsed.entries.iter().map(SegmentEntry::to_line).collect();
    assert_eq!(parse_log(&again).entries, parsed.entries);
    let _ = gaps(&parsed.entries);
    let _ = render(&parsed.entries, PlaylistKind::Vod);
});
