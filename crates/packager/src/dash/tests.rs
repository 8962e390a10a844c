use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tributary_media::{Codec, Frame, SessionId, TrackConfig, TrackId, Ts90};

use super::*;
use crate::{HlsConfig, HlsEvent, HlsSegmenter, SegmentFormat};

/// x264 High 1280x720: SPS, PPS, SEI and an IDR slice (crates/media/testdata/README.md).
const X264_KEYFRAME: &[u8] =
    include_bytes!("../../../media/testdata/ffmpeg_x264_high_1280x720_30fps.h264");
/// AAC LC, 48 kHz, stereo.
const ASC_LC: &[u8] = &[0x11, 0x90];

#[expect(
    clippy::disallowed_methods,
    reason = "an arrival stamp frames must carry, never read by the packager"
)]
fn arrival() -> Instant {
    Instant::now()
}

/// 6 s of 25 fps H.264 (a keyframe every second) and 48 kHz AAC, in arrival order.
fn sequence() -> Vec<Frame> {
    let frame = |track, codec, ts, keyframe, payload| Frame {
        track: TrackId(track),
        codec,
        pts: Ts90(ts),
        dts: Ts90(ts),
        keyframe,
        session: SessionId(7),
        arrival: arrival(),
        payload,
        config: None,
    };
    let config = TrackConfig::aac(Bytes::from_static(ASC_LC)).map(Arc::new);
    let mut frames = Vec::new();
    let mut audio = 0i64;
    for i in 0..150i64 {
        let key = i % 25 == 0;
        let payload = if key {
            Bytes::from_static(X264_KEYFRAME)
        } else {
            Bytes::from(vec![0, 0, 0, 1, 0x41, i as u8 | 1, 0x55])
        };
        frames.push(frame(0x100, Codec::H264, i * 3600, key, payload));
        while audio * 1920 <= i * 3600 {
            let payload = Bytes::from(vec![0x21, audio as u8, 0x04, 0x80]);
            frames.push(Frame {
                config: config.clone(),
                ..frame(0x101, Codec::Aac, audio * 1920, true, payload)
            });
            audio += 1;
        }
    }
    frames
}

/// Runs `frames` of one kind through an fMP4 segmenter: (timeline, codecs, timescale).
fn package(frames: &[Frame], video: bool, window: usize) -> (Timeline, String, u32) {
    let mut segmenter = HlsSegmenter::new(HlsConfig {
        segment: Duration::from_secs(2),
        first_number: 1_795_514_400,
        grid: None,
        format: SegmentFormat::Fmp4,
        part: None,
    });
    let mut timeline = Timeline::new(window);
    let (mut codecs, mut timescale) = (String::new(), 0);
    let mut drain = |segmenter: &mut HlsSegmenter| {
        while let Some(event) = segmenter.pull() {
            match event {
                HlsEvent::Segment(segment) => {
                    timeline.push(&segment);
                }
                HlsEvent::Init(init) => {
                    codecs = init.codecs[0].clone();
                    timescale = init.timescales[0];
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    for (i, frame) in frames.iter().enumerate() {
        if (frame.codec == Codec::H264) == video {
            segmenter.push(frame, UnixMillis(1_795_514_400_000 + i as i64 * 20));
            drain(&mut segmenter);
        }
    }
    segmenter.finish();
    drain(&mut segmenter);
    (timeline, codecs, timescale)
}

fn mpd(frames: &[Frame]) -> Mpd {
    let (video, video_codecs, video_scale) = package(frames, true, 12);
    let (audio, audio_codecs, audio_scale) = package(frames, false, 12);
    Mpd {
        availability_start: UnixMillis(1_795_514_400_000),
        publish_time: UnixMillis(1_795_514_406_500),
        segment: Duration::from_secs(2),
        window: 12,
        video: vec![Representation {
            id: "v1".into(),
            dir: String::new(),
            codecs: video_codecs,
            bandwidth: 2_000_000,
            size: Some((1280, 720)),
            frame_rate: Some((25, 1)),
            sample_rate: None,
            channels: None,
            timescale: video_scale,
            timeline: video.entries().copied().collect(),
        }],
        audio: Some(Representation {
            id: "a".into(),
            dir: String::new(),
            codecs: audio_codecs,
            bandwidth: 128_000,
            size: None,
            frame_rate: None,
            sample_rate: Some(48_000),
            channels: Some(2),
            timescale: audio_scale,
            timeline: audio.entries().copied().collect(),
        }),
    }
}

#[test]
fn a_fixed_frame_sequence_yields_the_golden_mpd() {
    let text = mpd(&sequence()).render();
    let expected = include_str!("../../testdata/dash/h264_aac.mpd");
    if text != expected {
        let path = format!(
            "{}/testdata/dash/h264_aac.mpd.new",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::write(&path, &text).expect("writing the new golden file");
        panic!("the MPD differs from the golden file; the new text is in {path}:\n{text}");
    }
}

#[test]
fn the_mpd_carries_what_spec_dash_names() {
    let text = mpd(&sequence()).render();
    for part in [
        "type=\"dynamic\"",
        "profiles=\"urn:mpeg:dash:profile:isoff-live:2011\"",
        "availabilityStartTime=\"2026-11-24T10:00:00.000Z\"",
        "publishTime=\"2026-11-24T10:00:06.500Z\"",
        "minimumUpdatePeriod=\"PT2S\"",
        "minBufferTime=\"PT4S\"",
        "suggestedPresentationDelay=\"PT6S\"",
        "timeShiftBufferDepth=\"PT24S\"",
        "<UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:direct:2014\" value=\"2026-11-24T10:00:06.500Z\"/>",
        "codecs=\"avc1.64001f\"",
        "codecs=\"mp4a.40.2\"",
        "initialization=\"init_v.mp4\" media=\"seg_v_$Number%06d$.m4s\"",
        "initialization=\"init_a.mp4\" media=\"seg_a_$Number%06d$.m4s\"",
        "startNumber=\"1795514400\"",
        "timescale=\"90000\"",
        "timescale=\"48000\"",
    ] {
        assert!(text.contains(part), "no {part:?} in\n{text}");
    }
    assert_eq!(text.matches("<AdaptationSet").count(), 2);
    assert_eq!(text.matches("<Period").count(), 1);
}

#[test]
fn timeline_entries_never_overlap_and_numbers_stay_consecutive() {
    let segment = |number, start, duration| Segment {
        number,
        init: None,
        session: SessionId(1),
        start: Ts90(start),
        duration: Ts90(duration),
        discontinuity: false,
        program_date_time: UnixMillis(0),
        target_duration: 2,
        end: crate::SegmentEnd::Keyframe,
        bytes: Bytes::new(),
    };
    let mut timeline = Timeline::new(3);
    timeline.push(&segment(10, 0, 180_000));
    // Measured to end 1 frame after the next one starts: clipped.
    timeline.push(&segment(11, 180_000, 183_600));
    // A session ends short of the next start (an input switch): stretched over the hole.
    timeline.push(&segment(12, 360_000, 6_120));
    timeline.push(&segment(13, 377_250, 180_000));
    let durations: Vec<_> = timeline.entries().map(|e| e.duration.0).collect();
    assert_eq!(durations, [180_000, 17_250, 180_000]);
    let mut timeline = Timeline::new(3);
    timeline.push(&segment(10, 0, 180_000));
    timeline.push(&segment(11, 180_000, 183_600));
    timeline.push(&segment(12, 360_000, 180_000));
    // The window slides.
    let out = timeline.push(&segment(13, 540_000, 180_000));
    assert_eq!(out.map(|e| e.number), Some(10));
    // A number gap starts the list over: $Number$ must follow the entries.
    timeline.push(&segment(15, 900_000, 180_000));
    let numbers: Vec<_> = timeline.entries().map(|e| e.number).collect();
    assert_eq!(numbers, [15]);
    // So does a start that goes back.
    timeline.push(&segment(16, 800_000, 180_000));
    assert_eq!(timeline.entries().len(), 1);
    assert_eq!(timeline.longest(), Ts90(180_000));
}

#[test]
fn s_entries_repeat_and_restate_t_after_a_gap() {
    let entry = |number, start, duration| TimelineEntry {
        number,
        start: Ts90(start),
        duration: Ts90(duration),
    };
    let mut r = mpd(&sequence()).audio.unwrap();
    r.timescale = 90_000;
    r.timeline = vec![
        entry(1, 90_000, 180_000),
        entry(2, 270_000, 180_000),
        entry(3, 450_000, 90_000),
        entry(4, 630_000, 180_000),
    ];
    let mut out = String::new();
    template(&mut out, &r, 'a');
    assert!(
        out.contains(
            "<S t=\"90000\" d=\"180000\" r=\"1\"/>\n            <S d=\"90000\"/>\n            \
             <S t=\"630000\" d=\"180000\"/>\n"
        ),
        "{out}"
    );
}

#[test]
fn names_parse_exactly_as_written() {
    assert_eq!(DashName::parse("index.mpd"), Some(DashName::Mpd));
    assert_eq!(
        DashName::parse("init_v.mp4"),
        Some(DashName::Init { video: true })
    );
    assert_eq!(
        DashName::parse("init_a.mp4"),
        Some(DashName::Init { video: false })
    );
    for (video, number) in [(true, 7), (false, 1_795_514_400)] {
        let name = dash_segment_name(video, number);
        assert_eq!(
            DashName::parse(&name),
            Some(DashName::Segment { video, number })
        );
    }
    for bad in [
        "seg_v_7.m4s",
        "seg_v_0000007.m4s",
        "seg_x_000007.m4s",
        "seg_v_00000a.m4s",
        "seg_000007.m4s",
        "init.mp4",
        "index.m3u8",
        "seg_v_+00007.m4s",
    ] {
        assert_eq!(DashName::parse(bad), None, "{bad}");
    }
}

#[test]
fn durations_and_attributes_are_written_as_xml_wants() {
    assert_eq!(iso_duration(2000), "PT2S");
    assert_eq!(iso_duration(2500), "PT2.5S");
    assert_eq!(iso_duration(40), "PT0.04S");
    assert_eq!(iso_duration(-5), "PT0S");
    assert_eq!(xml("a\"<b>&'"), "a&quot;&lt;b&gt;&amp;&apos;");
}
