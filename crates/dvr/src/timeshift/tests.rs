use super::*;

/// 2026-11-24T10:00:00.000Z.
const T0: i64 = 1_795_514_400_000;

/// Segments 10..=15 of 4 s each from T0, a 20 s hole, then 16..=17 (discontinuous).
fn log() -> Vec<SegmentEntry> {
    let mut entries: Vec<SegmentEntry> = (0..6)
        .map(|i| SegmentEntry {
            seq: 10 + i,
            start: UnixMillis(T0 + i as i64 * 4000),
            duration_ms: 4000,
            size: 100,
            discontinuity: i == 0,
        })
        .collect();
    for i in 0..2 {
        entries.push(SegmentEntry {
            seq: 16 + i,
            start: UnixMillis(T0 + 44_000 + i as i64 * 4000),
            duration_ms: 4000,
            size: 100,
            discontinuity: i == 0,
        });
    }
    entries
}

fn now() -> UnixMillis {
    UnixMillis(T0 + 60_000)
}

fn seqs(entries: &[SegmentEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

#[test]
fn a_window_lists_the_segments_it_touches() {
    let log = log();
    // 5 s .. 13 s: segment 11 (4–8) through 13 (12–16).
    let window = Window::new(UnixMillis(T0 + 5000), 8000);
    assert_eq!(seqs(select(&log, window)), [11, 12, 13]);
    // A window on a segment boundary does not take the segment that ended there.
    let window = Window::new(UnixMillis(T0 + 8000), 4000);
    assert_eq!(seqs(select(&log, window)), [12]);
    // Partly before the recording: clipped to its start.
    let window = Window::new(UnixMillis(T0 - 30_000), 35_000);
    assert_eq!(seqs(select(&log, window)), [10, 11]);
    // Across the hole: both sides.
    let window = Window::new(UnixMillis(T0 + 20_000), 30_000);
    assert_eq!(seqs(select(&log, window)), [15, 16, 17]);
    // Inside the hole, or after the end: nothing.
    let window = Window::new(UnixMillis(T0 + 25_000), 10_000);
    assert!(select(&log, window).is_empty());
    assert_eq!(
        window_playlist(&log, window, Uris::default())
            .unwrap_err()
            .to_string(),
        "no recorded segments between 2026-11-24T10:00:25.000Z and 2026-11-24T10:00:35.000Z"
    );
    assert!(select(&[], window).is_empty());
}

#[test]
fn golden_window_playlist() {
    let log = log();
    let window = Window::new(UnixMillis(T0 + 18_000), 30_000);
    let text = window_playlist(
        &log,
        window,
        Uris {
            prefix: "/recordings/cam/",
            query: "?exp=99&sig=ab",
        },
    )
    .unwrap();
    assert_eq!(
        text,
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:14\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n\
         #EXT-X-PROGRAM-DATE-TIME:2026-11-24T10:00:16.000Z\n\
         #EXTINF:4.000,\n/recordings/cam/000014.ts?exp=99&sig=ab\n\
         #EXTINF:4.000,\n/recordings/cam/000015.ts?exp=99&sig=ab\n\
         #EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-11-24T10:00:44.000Z\n\
         #EXTINF:4.000,\n/recordings/cam/000016.ts?exp=99&sig=ab\n#EXT-X-ENDLIST\n"
    );
}

#[test]
fn a_delayed_live_playlist_lists_what_had_ended_by_then() {
    let log = log();
    // 60 s now, 30 s behind: segments that ended by 30 s are 10..=15 (the last ends at 24 s).
    let text = delayed_playlist(&log, now(), 30_000, Uris::default()).unwrap();
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:10\n"), "{text}");
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:0\n"), "{text}");
    assert!(text.ends_with("000015.ts\n"), "{text}");
    assert!(!text.contains("ENDLIST") && !text.contains("PLAYLIST-TYPE"));
    // 10 s behind (50 s): 17 ends at 52 s, so up to 16.
    let text = delayed_playlist(&log, now(), 10_000, Uris::default()).unwrap();
    assert!(text.ends_with("000016.ts\n"), "{text}");
    // Further back than the recording: no data.
    assert!(delayed_playlist(&log, now(), 59_000, Uris::default()).is_err());
}

#[test]
fn a_delayed_window_counts_the_discontinuities_that_slid_out() {
    let entries: Vec<SegmentEntry> = (0..20)
        .map(|i| SegmentEntry {
            seq: i,
            start: UnixMillis(T0 + i as i64 * 2000),
            duration_ms: 2000,
            size: 1,
            discontinuity: i == 3 || i == 8 || i == 15,
        })
        .collect();
    let now = UnixMillis(T0 + 40_000);
    // All 20 ended by now: the last 12 are 8..=19; 3 and 8 slid out (8 is first, untagged).
    let text = delayed_playlist(&entries, now, 0, Uris::default()).unwrap();
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:8\n"), "{text}");
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:2\n"), "{text}");
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
}

#[test]
fn recording_windows_from_each_parameter() {
    let log = log();
    let w = recording_window("from=2026-11-24T10:00:05Z&duration=8", now(), &log).unwrap();
    assert_eq!(w, Window::new(UnixMillis(T0 + 5000), 8000));
    let w = recording_window("from=2026-11-24T10%3A00%3A05%2B00%3A00", now(), &log).unwrap();
    assert_eq!(w, Window::new(UnixMillis(T0 + 5000), MAX_WINDOW_MS));
    let w = recording_window("from=1795514405&duration=8", now(), &log).unwrap();
    assert_eq!(w.start, UnixMillis(T0 + 5000));
    let w = recording_window("offset_sec=4&duration=2.5", now(), &log).unwrap();
    assert_eq!(w, Window::new(UnixMillis(T0 + 4000), 2500));
    // Negative: before the newest segment's end (52 s).
    let w = recording_window("offset_sec=-12&duration=8&exp=1&sig=x", now(), &log).unwrap();
    assert_eq!(w, Window::new(UnixMillis(T0 + 40_000), 8000));
    // Clamped to a day.
    let w = recording_window("offset_sec=0&duration=999999", now(), &log).unwrap();
    assert_eq!(w.end.0 - w.start.0, MAX_WINDOW_MS as i64);
}

#[test]
fn bad_recording_parameters_name_themselves() {
    let log = log();
    let bad = |query: &str| recording_window(query, now(), &log).unwrap_err();
    for (query, code, param) in [
        ("from=yesterday", "INVALID_FROM", "from"),
        ("from=-5", "INVALID_FROM", "from"),
        ("from=2026-11-24T10:05:00Z", "INVALID_FROM", "from"),
        ("offset_sec=abc", "INVALID_OFFSET", "offset_sec"),
        ("offset_sec=1e3", "INVALID_OFFSET", "offset_sec"),
        ("offset_sec=0&duration=-3", "INVALID_DURATION", "duration"),
        ("offset_sec=0&duration=0", "INVALID_DURATION", "duration"),
        ("offset_sec=0&duration=NaN", "INVALID_DURATION", "duration"),
        ("offset_sec=0&from=1", "INVALID_QUERY", "offset_sec"),
        ("duration=3", "INVALID_QUERY", "from"),
    ] {
        let error = bad(query);
        assert_eq!((error.code, error.param), (code, param), "{query}: {error}");
        assert!(error.message.contains(param), "{query}: {error}");
    }
    // The value is never echoed.
    assert!(!bad("from=%3Cscript%3E").message.contains("script"));
    assert!(bad("from=2026-11-24T10:05:00Z").message.contains("future"));
}

#[test]
fn live_shifts_from_the_query() {
    let at = |s: i64| UnixMillis(T0 + s * 1000);
    assert_eq!(live_shift("", now()).unwrap(), None);
    assert_eq!(live_shift("token=abc&exp=1", now()).unwrap(), None);
    assert_eq!(
        live_shift("ago=30&dur=20", now()).unwrap(),
        Some(LiveShift::Window(Window::new(at(30), 20_000)))
    );
    assert_eq!(
        live_shift("from=1795514410&dur=5", now()).unwrap(),
        Some(LiveShift::Window(Window::new(at(10), 5000)))
    );
    assert_eq!(
        live_shift("ago=30", now()).unwrap(),
        Some(LiveShift::Window(Window::new(at(30), MAX_WINDOW_MS)))
    );
    assert_eq!(
        live_shift("delay=15", now()).unwrap(),
        Some(LiveShift::Delay(15_000))
    );
    for (query, param) in [
        ("ago=-1", "ago"),
        ("ago=x", "ago"),
        ("dur=5", "dur"),
        ("ago=5&dur=0", "dur"),
        ("ago=5&dur=-2", "dur"),
        ("from=2026-11-24T11:00:00Z", "from"),
        ("from=soon", "from"),
        ("from=1&ago=2", "ago"),
        ("delay=-1", "delay"),
        ("delay=90000", "delay"),
        ("delay=5&ago=3", "delay"),
    ] {
        let error = live_shift(query, now()).unwrap_err();
        assert_eq!(error.code, "INVALID_QUERY", "{query}");
        assert_eq!(error.param, param, "{query}: {error}");
    }
}
