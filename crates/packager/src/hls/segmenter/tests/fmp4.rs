//! The segmenter writing fMP4: same cuts and numbers as MPEG-TS, inits when needed.

use super::*;
use crate::InitName;

use super::X264_720P;
const X264_240P: &[u8] =
    include_bytes!("../../../../../media/testdata/ffmpeg_x264_baseline_320x240_15fps.h264");

fn fmp4_segmenter(format: SegmentFormat) -> HlsSegmenter {
    HlsSegmenter::new(HlsConfig {
        segment: Duration::from_secs(2),
        first_number: FIRST,
        grid: None,
        format,
        part: None,
    })
}

fn inits(events: &[HlsEvent]) -> Vec<&InitSegment> {
    events
        .iter()
        .filter_map(|e| match e {
            HlsEvent::Init(init) => Some(init),
            _ => None,
        })
        .collect()
}

#[test]
fn same_cuts_and_numbers_as_ts_with_one_init_first() {
    let frames = real(av(T0, 9.0, 60, 1), X264_720P);
    let mut ts = fmp4_segmenter(SegmentFormat::Ts);
    let mut fmp4 = fmp4_segmenter(SegmentFormat::Fmp4);
    let (ts, fmp4) = (run(&mut ts, &frames), run(&mut fmp4, &frames));
    let cuts = |events: &[HlsEvent]| -> Vec<(u64, i64, i64, SegmentEnd)> {
        segments(events)
            .iter()
            .map(|s| (s.number, s.start.0, s.duration.0, s.end))
            .collect()
    };
    assert_eq!(cuts(&ts), cuts(&fmp4));
    assert_eq!(cuts(&fmp4).len(), 4);
    assert!(matches!(&fmp4[0], HlsEvent::Init(init) if init.name == InitName::First));
    assert_eq!(inits(&fmp4).len(), 1);
    assert_eq!(inits(&fmp4)[0].codecs, ["avc1.64001f", "mp4a.40.2"]);
    for segment in segments(&fmp4) {
        assert_eq!(segment.init, Some(InitName::First));
        assert_eq!(&segment.bytes[4..8], b"moof");
    }
}

#[test]
fn auto_decides_from_the_first_session_and_keeps_it() {
    let mut auto = fmp4_segmenter(SegmentFormat::Auto);
    assert_eq!(auto.format(), SegmentFormat::Auto);
    let events = run(&mut auto, &real(av(T0, 5.0, 60, 1), X264_720P));
    assert_eq!(auto.format(), SegmentFormat::Ts);
    assert!(inits(&events).is_empty());
    assert!(segments(&events).iter().all(|s| s.init.is_none()));
}

#[test]
fn new_parameter_sets_start_a_new_init_after_a_discontinuity() {
    let mut frames = real(av(T0, 4.5, 60, 1), X264_720P);
    // The encoder restarts at 4.5 s with another resolution, in the same session (a
    // source that changed its SPS without the timeline noticing).
    frames.extend(real(av(T0 + 405_000, 4.5, 60, 1), X264_240P));
    let mut segmenter = fmp4_segmenter(SegmentFormat::Fmp4);
    let events = run(&mut segmenter, &frames);
    let inits = inits(&events);
    assert_eq!(inits.len(), 2, "{events:?}");
    assert_eq!(inits[1].name, InitName::Session(SessionId(1), 0));
    assert_eq!(inits[1].codecs[0], "avc1.42c00c");
    let listed = segments(&events);
    let after = listed
        .iter()
        .position(|s| s.init == Some(inits[1].name))
        .expect("segments with the new init");
    assert!(listed[after].discontinuity);
    assert_eq!(listed[after - 1].end, SegmentEnd::Session);
    let numbers: Vec<u64> = listed.iter().map(|s| s.number).collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
}

#[test]
fn a_track_first_seen_later_gets_a_new_init_with_it() {
    let config = aac_config();
    let mut frames: Vec<Frame> = real(av(T0, 2.5, 60, 1), X264_720P)
        .into_iter()
        .filter(|f| f.codec == Codec::H264)
        .collect();
    // Audio joins at 2.5 s (probing has fixed a video-only table by then).
    for f in real(av(T0 + 225_000, 4.5, 60, 1), X264_720P) {
        frames.push(if f.codec == Codec::Aac {
            audio(f.dts.0, 1, &config)
        } else {
            f
        });
    }
    let mut segmenter = fmp4_segmenter(SegmentFormat::Fmp4);
    let events = run(&mut segmenter, &frames);
    let inits = inits(&events);
    assert_eq!(inits.len(), 2);
    assert_eq!(inits[0].codecs, ["avc1.64001f"]);
    assert_eq!(inits[1].codecs, ["avc1.64001f", "mp4a.40.2"]);
    assert!(segments(&events).iter().all(|s| !s.bytes.is_empty()));
}

#[test]
fn opus_is_carried_by_fmp4_and_omitted_by_ts() {
    let opus = |dts: i64| Frame {
        track: AUDIO,
        codec: Codec::Opus,
        pts: Ts90(dts),
        dts: Ts90(dts),
        keyframe: true,
        session: SessionId(1),
        arrival: arrival(),
        payload: Bytes::from_static(&[0xfc, 1, 2, 3]),
        config: None,
    };
    let frames: Vec<Frame> = (0..150).map(|i| opus(T0 + i * 1800)).collect();
    let mut ts = fmp4_segmenter(SegmentFormat::Ts);
    let events = run(&mut ts, &frames);
    assert!(matches!(
        events[0],
        HlsEvent::Omitted {
            codec: Codec::Opus,
            ..
        }
    ));
    let mut auto = fmp4_segmenter(SegmentFormat::Auto);
    let events = run(&mut auto, &frames);
    assert_eq!(auto.format(), SegmentFormat::Fmp4);
    assert_eq!(inits(&events)[0].codecs, ["opus"]);
    assert!(!segments(&events).is_empty());
}
