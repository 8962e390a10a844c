//! LL-HLS parts on synthetic frames (real H.264 parameter sets in the keyframes), and the
//! low-latency playlist they make, against golden files.

use std::time::Duration;

use tributary_media::Frame;

use super::super::tests::{FIRST, T0, X264_720P, av, run, segments, wall_of};
use super::*;
use crate::hls::config::{HlsConfig, SegmentFormat};
use crate::{MediaPlaylist, Segment};

/// `frames` with real parameter sets in every video keyframe.
fn real(frames: Vec<Frame>) -> Vec<Frame> {
    super::super::tests::real(frames, X264_720P)
}

/// S = 2 s, parts of 0.5 s, fMP4.
fn ll_segmenter() -> HlsSegmenter {
    HlsSegmenter::new(HlsConfig {
        segment: Duration::from_secs(2),
        first_number: FIRST,
        grid: None,
        format: SegmentFormat::Fmp4,
        part: Some(Duration::from_millis(500)),
    })
}

fn parts_of(events: &[HlsEvent], number: u64) -> Vec<&Part> {
    events
        .iter()
        .filter_map(|e| match e {
            HlsEvent::Part(p) if p.segment == number => Some(p),
            _ => None,
        })
        .collect()
}

#[test]
fn segments_are_their_parts_in_order() {
    // 30 fps with a keyframe every second: 15 frames make 0.5 s.
    let frames = real(av(T0, 9.0, 30, 1));
    let events = run(&mut ll_segmenter(), &frames);
    let segments: Vec<&Segment> = segments(&events);
    assert_eq!(
        segments.len(),
        4,
        "cuts at 2, 4, 6 and 8 s; the last second stays open"
    );
    for segment in &segments {
        let parts = parts_of(&events, segment.number);
        assert_eq!(
            parts.len(),
            4,
            "segment {}: 4 parts of 0.5 s",
            segment.number
        );
        let indices: Vec<u32> = parts.iter().map(|p| p.index).collect();
        assert_eq!(indices, [0, 1, 2, 3]);
        let durations: Vec<i64> = parts.iter().map(|p| p.duration.0).collect();
        assert_eq!(durations, [45_000; 4]);
        let independent: Vec<bool> = parts.iter().map(|p| p.independent).collect();
        assert_eq!(
            independent,
            [true, false, true, false],
            "keyframes at 0 and 1 s"
        );
        let joined: Vec<u8> = parts.iter().flat_map(|p| p.bytes.iter().copied()).collect();
        assert_eq!(
            joined, segment.bytes,
            "a segment is its parts' bytes in order"
        );
        for part in &parts {
            assert_eq!(&part.bytes[4..8], b"moof");
            assert_eq!(part.init, segment.init);
            assert_eq!(part.program_date_time, segment.program_date_time);
        }
    }
    // Each segment's last part comes out just before it.
    let order: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            HlsEvent::Part(p) => Some(format!("p{}.{}", p.segment - FIRST, p.index)),
            HlsEvent::Segment(s) => Some(format!("s{}", s.number - FIRST)),
            _ => None,
        })
        .take(6)
        .collect();
    assert_eq!(order, ["p0.0", "p0.1", "p0.2", "p0.3", "s0", "p1.0"]);
}

#[test]
fn the_hinted_part_always_comes_next() {
    let frames = real(av(T0, 7.0, 30, 1));
    let mut segmenter = ll_segmenter();
    let mut hint = None;
    let mut checked = 0;
    for frame in &frames {
        segmenter.push(frame, UnixMillis(0));
        while let Some(event) = segmenter.pull() {
            if let (HlsEvent::Part(part), Some(hinted)) = (event, hint) {
                assert_eq!((part.segment, part.index), hinted, "the hinted part came");
                checked += 1;
            }
        }
        hint = segmenter.open_part();
    }
    assert!(checked >= 12, "{checked}");
}

#[test]
fn uneven_frame_rates_never_exceed_part_target() {
    // 25 fps (3600 ticks) with 2 s GOPs: 12 frames (0.48 s) per part; the segment's last
    // part takes the rest.
    let mut frames = Vec::new();
    for i in 0..150 {
        let mut f = av(T0, 0.04, 1, 1).remove(0);
        f.dts = Ts90(T0 + i * 3600);
        f.pts = f.dts;
        f.keyframe = i % 50 == 0;
        frames.push(f);
    }
    let events = run(&mut ll_segmenter(), &real(frames));
    let first = segments(&events)[0];
    let parts = parts_of(&events, first.number);
    let durations: Vec<i64> = parts.iter().map(|p| p.duration.0).collect();
    assert_eq!(
        durations,
        [43_200, 43_200, 43_200, 43_200, 7_200],
        "0.48 s parts, then 0.08 s to the keyframe at 2 s"
    );
    assert_eq!(durations.iter().sum::<i64>(), first.duration.0);
    assert!(durations.iter().all(|&d| d <= 45_000));
}

#[test]
fn without_parts_nothing_changes() {
    let frames = real(av(T0, 5.0, 30, 1));
    let mut plain = HlsSegmenter::new(HlsConfig {
        part: None,
        ..*ll_config()
    });
    let events = run(&mut plain, &frames);
    assert!(!events.iter().any(|e| matches!(e, HlsEvent::Part(_))));
    assert_eq!(plain.open_part(), None);
}

fn ll_config() -> &'static HlsConfig {
    static CONFIG: HlsConfig = HlsConfig {
        segment: Duration::from_secs(2),
        first_number: FIRST,
        grid: None,
        format: SegmentFormat::Fmp4,
        part: Some(Duration::from_millis(500)),
    };
    &CONFIG
}

/// The low-latency playlist (window `window`) of `seconds` of 30 fps video with 1 s GOPs,
/// fed every event as the output task feeds it, with the server's default PART-HOLD-BACK
/// (2 × the 0.5 s parts).
fn ll_playlist(window: usize, seconds: f64) -> MediaPlaylist {
    ll_playlist_holding(window, seconds, Duration::from_secs(1))
}

/// As [`ll_playlist`], with PART-HOLD-BACK `hold_back`.
fn ll_playlist_holding(window: usize, seconds: f64, hold_back: Duration) -> MediaPlaylist {
    let frames = real(av(T0, seconds, 30, 1));
    let mut segmenter = ll_segmenter();
    let part = Duration::from_millis(500);
    let mut playlist = MediaPlaylist::low_latency(window, part, hold_back);
    for frame in &frames {
        segmenter.push(frame, wall_of(frame));
        while let Some(event) = segmenter.pull() {
            match event {
                HlsEvent::Part(part) => playlist.push_part(&part),
                HlsEvent::Segment(segment) => {
                    playlist.push(&segment);
                }
                _ => {}
            }
        }
        playlist.set_preload_hint(segmenter.open_part());
    }
    playlist
}

fn golden(name: &str, text: &str, expected: &str) {
    if text != expected {
        let path = format!("{}/testdata/hls/{name}.new", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(&path, text).expect("writing the new golden file");
        panic!("{name} differs from the golden file; the new text is in {path}:\n{text}");
    }
}

#[test]
fn a_fixed_frame_sequence_yields_the_golden_ll_playlist() {
    let mut playlist = ll_playlist(4, 9.2);
    golden(
        "ll.m3u8",
        &playlist.render(),
        include_str!("../../../../testdata/hls/ll.m3u8"),
    );
    assert_eq!(playlist.last_part(), Some((FIRST + 4, 1)));
}

#[test]
fn part_hold_back_is_the_one_asked_for_and_never_below_2_part_targets() {
    let default = ll_playlist(4, 9.2).render();
    let line = |hold_back: &str| {
        format!(
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,\
             PART-HOLD-BACK={hold_back}\n"
        )
    };
    assert!(default.contains(&line("1.000")), "{default}");
    // A longer hold-back (3 parts, what RFC 8216bis recommends) changes that line only.
    let longer = ll_playlist_holding(4, 9.2, Duration::from_millis(1500)).render();
    assert_eq!(longer, default.replace(&line("1.000"), &line("1.500")));
    // Below 2 × PART-TARGET (the RFC's minimum) it is raised to that minimum.
    for short in [Duration::ZERO, Duration::from_millis(999)] {
        assert_eq!(ll_playlist_holding(4, 9.2, short).render(), default);
    }
}

#[test]
fn the_delta_update_skips_what_ends_6_target_durations_before_the_end() {
    // 20 s of 2 s segments listed; CAN-SKIP-UNTIL = 12 s: the first 4 end ≥ 12 s before
    // the end of the last one.
    let mut playlist = ll_playlist(10, 22.2);
    let full = playlist.render();
    let delta = playlist.render_delta();
    golden(
        "ll_delta.m3u8",
        &delta,
        include_str!("../../../../testdata/hls/ll_delta.m3u8"),
    );
    assert!(
        delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n"),
        "{delta}"
    );
    assert_eq!(full.matches("#EXTINF").count(), 10);
    assert_eq!(delta.matches("#EXTINF").count(), 6);
    // The same tail: the delta is the full playlist with its first 4 segments skipped (and
    // the map repeated for the first segment it lists).
    let tail = |text: &str| text[text.find("#EXT-X-PROGRAM-DATE-TIME").unwrap()..].to_owned();
    let delta_tail = tail(&delta).replacen("#EXT-X-MAP:URI=\"init.mp4\"\n", "", 1);
    assert!(tail(&full).ends_with(&delta_tail));
    // A short window has nothing to skip: the delta is the full playlist.
    let mut short = ll_playlist(4, 9.2);
    assert_eq!(short.render_delta(), short.render());
}
