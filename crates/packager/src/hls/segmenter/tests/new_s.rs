//! A new S on a running segmenter (`live_segment_sec` changed): the switch at the next keyframe,
//! numbers continuing, one discontinuity; on a grid, audio-only, and under a new session.

use super::*;

#[test]
fn a_new_s_applies_at_the_next_keyframe_with_numbers_continuing() {
    const SEC: i64 = 90_000;
    // Keyframes every second, S = 2 s; S becomes 4 s after 5.5 s of media.
    let frames = av(T0, 16.0, 30, 1);
    let (before, after) = frames.split_at(
        frames
            .iter()
            .position(|f| f.dts.0 >= T0 + 11 * SEC / 2)
            .unwrap(),
    );
    let mut s = segmenter(FIRST);
    let mut events = run(&mut s, before);
    s.set_segment(Duration::from_secs(4));
    events.extend(run(&mut s, after));
    let summary: Vec<(u64, i64, i64, bool, u32)> = segments(&events)
        .iter()
        .map(|s| {
            let start = (s.start.0 - T0) / SEC;
            (
                s.number,
                start,
                s.duration.0 / SEC,
                s.discontinuity,
                s.target_duration,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (FIRST, 0, 2, false, 2),
            (FIRST + 1, 2, 2, false, 2),
            // Open at the change: closed by the first keyframe after it (at 6 s).
            (FIRST + 2, 4, 2, false, 2),
            (FIRST + 3, 6, 4, true, 4),
            (FIRST + 4, 10, 4, false, 4),
        ],
        "numbers continue by one; one discontinuity; TARGETDURATION from the new S"
    );
    assert_eq!(s.target_duration(), Some(4));
    // The switch is told between the segment it closed and the first cut with the new S.
    let told: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            HlsEvent::Segment(s) => Some(format!("seg {}", s.number - FIRST)),
            HlsEvent::SegmentLength {
                segment,
                next_number,
            } => Some(format!(
                "S {} from {}",
                segment.0 / SEC,
                next_number - FIRST
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        told,
        ["seg 0", "seg 1", "seg 2", "S 4 from 3", "seg 3", "seg 4"]
    );
    for seg in segments(&events) {
        assert_starts_clean(seg, true);
    }

    // Mid-segment (the keyframe after the change comes before S): the open segment closes
    // short at it.
    let (before, after) = frames.split_at(
        frames
            .iter()
            .position(|f| f.dts.0 >= T0 + 9 * SEC / 2)
            .unwrap(),
    );
    let mut s = segmenter(0);
    let mut events = run(&mut s, before);
    s.set_segment(Duration::from_secs(3));
    events.extend(run(&mut s, after));
    let cuts: Vec<(i64, bool)> = segments(&events)
        .iter()
        .map(|s| ((s.start.0 - T0) / SEC, s.discontinuity))
        .collect();
    assert_eq!(
        cuts,
        [
            (0, false),
            (2, false),
            (4, false),
            (5, true),
            (8, false),
            (11, false)
        ]
    );
    assert_eq!(segments(&events)[2].duration, Ts90(SEC));

    // The S in force set again before the switch cancels it.
    let mut s = segmenter(0);
    let mut events = run(&mut s, &frames[..frames.len() / 2]);
    s.set_segment(Duration::from_secs(4));
    s.set_segment(Duration::from_secs(2));
    events.extend(run(&mut s, &frames[frames.len() / 2..]));
    let segs = segments(&events);
    assert!(
        segs.iter()
            .all(|s| !s.discontinuity && s.duration == Ts90(2 * SEC)),
        "{segs:?}"
    );
}

#[test]
fn a_new_session_before_the_next_keyframe_takes_the_new_s_under_one_discontinuity() {
    const SEC: i64 = 90_000;
    // S = 2 s, keyframes every 2 s; S becomes 4 s at 5 s, and a new session (a restarted
    // encoder) starts at 5.5 s, before the old one's next keyframe.
    let mut frames: Vec<Frame> = av(T0, 5.0, 60, 1);
    frames.extend(av(T0 + 11 * SEC / 2, 12.0, 60, 2));
    let at = frames
        .iter()
        .position(|f| f.dts.0 >= T0 + 5 * SEC)
        .unwrap_or(frames.len());
    let mut s = segmenter(0);
    let mut events = run(&mut s, &frames[..at]);
    s.set_segment(Duration::from_secs(4));
    events.extend(run(&mut s, &frames[at..]));
    let summary: Vec<(u64, bool, u32)> = segments(&events)
        .iter()
        .map(|s| (s.number, s.discontinuity, s.target_duration))
        .collect();
    assert_eq!(
        summary,
        [
            (0, false, 2),
            (1, false, 2),
            (2, false, 2),
            (3, true, 4),
            (4, false, 4)
        ]
    );
    assert_eq!(segments(&events)[3].duration, Ts90(4 * SEC));
}

#[test]
fn a_new_s_on_a_grid_resizes_the_cells_and_numbers_on() {
    const SEC: i64 = 90_000;
    // k = 1 s, S = 2 s (cells of 2 s, cell 0 numbered 0); S becomes 4 s at 6.5 s.
    let frames = av(T0, 20.0, 30, 1);
    let at = frames
        .iter()
        .position(|f| f.dts.0 >= T0 + 13 * SEC / 2)
        .unwrap();
    let mut s = grid_segmenter(0, 1.0);
    let mut events = run(&mut s, &frames[..at]);
    s.set_segment(Duration::from_secs(4));
    events.extend(run(&mut s, &frames[at..]));
    let summary: Vec<(u64, i64, bool)> = segments(&events)
        .iter()
        .map(|s| (s.number, (s.start.0 - T0) / SEC, s.discontinuity))
        .collect();
    // T0 is 10 s: cells 5 to 8 of 2 s; the one open at the change closes at the next
    // keyframe (7 s); then cells of 4 s (absolute 20 s, 24 s), numbered on from there.
    assert_eq!(
        summary,
        [
            (5, 0, false),
            (6, 2, false),
            (7, 4, false),
            (8, 6, false),
            (9, 7, true),
            (10, 10, false),
            (11, 14, false),
        ]
    );
}

#[test]
fn audio_only_switches_at_the_next_frame() {
    let config = aac_config();
    let frames: Vec<Frame> = (0..600)
        .map(|j| audio(T0 + j * AUDIO_STEP, 1, &config))
        .collect();
    let mut s = segmenter(0);
    let mut events = run(&mut s, &frames[..150]);
    s.set_segment(Duration::from_secs(4));
    events.extend(run(&mut s, &frames[150..]));
    let frames_per: Vec<(u64, i64, bool)> = segments(&events)
        .iter()
        .map(|s| (s.number, s.duration.0 / AUDIO_STEP, s.discontinuity))
        .collect();
    // 94 frames reach 2 s, 188 reach 4 s; the switch cuts after frame 150.
    assert_eq!(
        frames_per,
        [
            (0, 94, false),
            (1, 56, false),
            (2, 188, true),
            (3, 188, false)
        ]
    );
}
