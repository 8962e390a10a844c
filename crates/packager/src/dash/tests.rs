use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tributary_media::{Codec, Frame, SessionId, TrackConfig, TrackId, Ts90};

use super::*;
use crate::{HlsConfig, HlsEvent, HlsSegmenter, InitName, SegmentFormat};

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
    frames(7, Codec::H264, 0..150)
}

/// Video frames `range` of 25 fps `codec` (H.264 or H.265, a keyframe every second) and the
/// 48 kHz AAC over the same time, all of `session`, in arrival order.
fn frames(session: u64, codec: Codec, range: std::ops::Range<i64>) -> Vec<Frame> {
    let frame = |track, codec, ts, keyframe, payload| Frame {
        track: TrackId(track),
        codec,
        pts: Ts90(ts),
        dts: Ts90(ts),
        keyframe,
        session: SessionId(session),
        arrival: arrival(),
        payload,
        config: None,
    };
    let config = TrackConfig::aac(Bytes::from_static(ASC_LC)).map(Arc::new);
    let mut frames = Vec::new();
    // The first AAC frame at or after the first video frame.
    let mut audio = (range.start * 3600 + 1919) / 1920;
    for i in range {
        let key = i % 25 == 0;
        let payload = match (codec, key) {
            (Codec::H265, true) => Bytes::from_static(X265_KEYFRAME),
            (Codec::H265, false) => Bytes::from(vec![0, 0, 0, 1, 0x02, 0x01, i as u8 | 1]),
            (_, true) => Bytes::from_static(X264_KEYFRAME),
            (_, false) => Bytes::from(vec![0, 0, 0, 1, 0x41, i as u8 | 1, 0x55]),
        };
        frames.push(frame(0x100, codec, i * 3600, key, payload));
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
    package_on(frames, video, window, None)
}

/// As [`package`], cut on a keyframe `grid` as the rungs of a ladder are.
fn package_on(
    frames: &[Frame],
    video: bool,
    window: usize,
    grid: Option<Ts90>,
) -> (Timeline, String, u32) {
    let mut segmenter = HlsSegmenter::new(HlsConfig {
        segment: Duration::from_secs(2),
        first_number: 1_795_514_400,
        grid,
        format: SegmentFormat::Fmp4,
        part: None,
    });
    let mut timeline = Timeline::new(window);
    let (mut codecs, mut timescale) = (String::new(), 0);
    let mut drain = |segmenter: &mut HlsSegmenter| {
        while let Some(event) = segmenter.pull() {
            match event {
                HlsEvent::Segment(segment) => {
                    timeline.push(&segment, 0);
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

/// The 48 kHz stereo AAC Representation under `dir`, listing `timeline`.
fn audio_representation(
    dir: &str,
    codecs: String,
    timescale: u32,
    timeline: Vec<TimelineEntry>,
) -> Representation {
    Representation {
        id: "a".into(),
        dir: dir.into(),
        codecs,
        bandwidth: 128_000,
        size: None,
        frame_rate: None,
        sample_rate: Some(48_000),
        channels: Some(2),
        timescale,
        init: "init_a.mp4".into(),
        timeline,
    }
}

fn mpd(frames: &[Frame]) -> Mpd {
    let (video, video_codecs, video_scale) = package(frames, true, 12);
    let (audio, audio_codecs, audio_scale) = package(frames, false, 12);
    Mpd {
        availability_start: UnixMillis(1_795_514_400_000),
        publish_time: UnixMillis(1_795_514_406_500),
        segment: Duration::from_secs(2),
        window: 12,
        periods: vec![Period {
            id: 0,
            start: Ts90(0),
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
                init: "init_v.mp4".into(),
                timeline: video.entries().copied().collect(),
            }],
            audio: Some(audio_representation(
                "",
                audio_codecs,
                audio_scale,
                audio.entries().copied().collect(),
            )),
        }],
    }
}

/// Fails unless `text` is the golden file `name` (`expected`, its contents); the new text is
/// then written beside it as `<name>.new`.
fn assert_golden(name: &str, expected: &str, text: &str) {
    if text != expected {
        let path = format!("{}/testdata/dash/{name}.new", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(&path, text).expect("writing the new golden file");
        panic!("the MPD differs from the golden file; the new text is in {path}:\n{text}");
    }
}

#[test]
fn a_fixed_frame_sequence_yields_the_golden_mpd() {
    let text = mpd(&sequence()).render();
    assert_golden(
        "h264_aac.mpd",
        include_str!("../../testdata/dash/h264_aac.mpd"),
        &text,
    );
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
    timeline.push(&segment(10, 0, 180_000), 0);
    // Measured to end 1 frame after the next one starts: clipped.
    timeline.push(&segment(11, 180_000, 183_600), 0);
    // A session ends short of the next start (an input switch): stretched over the hole.
    timeline.push(&segment(12, 360_000, 6_120), 0);
    timeline.push(&segment(13, 377_250, 180_000), 0);
    let durations: Vec<_> = timeline.entries().map(|e| e.duration.0).collect();
    assert_eq!(durations, [180_000, 17_250, 180_000]);
    let mut timeline = Timeline::new(3);
    timeline.push(&segment(10, 0, 180_000), 0);
    timeline.push(&segment(11, 180_000, 183_600), 0);
    timeline.push(&segment(12, 360_000, 180_000), 0);
    // The window slides.
    let out = timeline.push(&segment(13, 540_000, 180_000), 0);
    assert_eq!(out.map(|e| e.number), Some(10));
    // A number gap starts the list over: $Number$ must follow the entries.
    timeline.push(&segment(15, 900_000, 180_000), 0);
    let numbers: Vec<_> = timeline.entries().map(|e| e.number).collect();
    assert_eq!(numbers, [15]);
    // So does a start that goes back.
    timeline.push(&segment(16, 800_000, 180_000), 0);
    assert_eq!(timeline.entries().len(), 1);
    assert_eq!(timeline.longest(), Ts90(180_000));
}

#[test]
fn a_timeline_window_shrinks_at_once_and_grows_as_segments_come() {
    let segment = |number: u64| segment(number, 1, InitName::First, number as i64 * 180_000);
    let mut timeline = Timeline::new(5);
    for number in 1..=5 {
        assert_eq!(timeline.push(&segment(number), 0), None);
    }
    // Smaller: the two oldest slide out at once, oldest first.
    let out: Vec<_> = timeline.set_window(3).iter().map(|e| e.number).collect();
    assert_eq!(out, [1, 2]);
    let listed: Vec<_> = timeline.entries().map(|e| e.number).collect();
    assert_eq!(listed, [3, 4, 5]);
    assert_eq!(timeline.push(&segment(6), 0).map(|e| e.number), Some(3));
    // Larger: nothing slides until the new window is full.
    assert!(timeline.set_window(5).is_empty());
    assert_eq!(timeline.window(), 5);
    assert_eq!(timeline.push(&segment(7), 0), None);
    assert_eq!(timeline.push(&segment(8), 0), None);
    assert_eq!(timeline.push(&segment(9), 0).map(|e| e.number), Some(4));
    // 0 is taken as 1.
    assert_eq!(timeline.set_window(0).len(), 4);
    assert_eq!(timeline.entries().len(), 1);
}

#[test]
fn s_entries_repeat_and_restate_t_after_a_gap() {
    let entry = |number, start, duration| TimelineEntry {
        number,
        start: Ts90(start),
        duration: Ts90(duration),
        session: SessionId(1),
        init: InitName::First,
        period: 0,
    };
    let mut r = mpd(&sequence()).periods[0].audio.clone().unwrap();
    r.timescale = 90_000;
    r.timeline = vec![
        entry(1, 90_000, 180_000),
        entry(2, 270_000, 180_000),
        entry(3, 450_000, 90_000),
        entry(4, 630_000, 180_000),
    ];
    let mut out = String::new();
    template(&mut out, &r, 'a', Ts90(0));
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
    for (video, init) in [
        (true, InitName::First),
        (false, InitName::First),
        (true, InitName::Session(SessionId(42), 0)),
        (false, InitName::Session(SessionId(42), 3)),
    ] {
        let name = dash_init_name(video, init);
        assert_eq!(DashName::parse(&name), Some(DashName::Init { video, init }));
    }
    assert_eq!(dash_init_name(true, InitName::First), "init_v.mp4");
    assert_eq!(
        dash_init_name(false, InitName::Session(SessionId(42), 0)),
        "init_a_42.mp4"
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
        "init_x.mp4",
        "init_v_042.mp4",
        "init_v_42_0.mp4",
        "init_v.mp4x",
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

/// x265 Main 1280x720: VPS, SPS, PPS and an IDR slice.
const X265_KEYFRAME: &[u8] =
    include_bytes!("../../../media/testdata/ffmpeg_x265_main_1280x720_30fps.h265");

/// 12 s of 25 fps video (a keyframe every second) and 48 kHz AAC: H.264 in session 7 for the
/// first 6 s, then `second` in session 8 (an input switch at 6 s; AAC unchanged).
fn switching(second: Codec) -> Vec<Frame> {
    let mut frames = sequence();
    frames.extend(self::frames(8, second, 150..300));
    frames
}

/// One rung as publish runs it: a video and an audio segmenter, the Periods they open, and the
/// MPD over them.
fn periods_mpd(frames: &[Frame]) -> Mpd {
    periods_mpd_resegmented(frames, None)
}

/// As [`periods_mpd`], S set to the second of `resegment` before the frame at its first
/// (`publisher.dash.segment_sec` changed on a running server).
fn periods_mpd_resegmented(frames: &[Frame], resegment: Option<(usize, Duration)>) -> Mpd {
    let config = HlsConfig {
        segment: Duration::from_secs(2),
        first_number: 1_795_514_400,
        grid: None,
        format: SegmentFormat::Fmp4,
        part: None,
    };
    let mut segmenters = [HlsSegmenter::new(config), HlsSegmenter::new(config)];
    let mut timelines = [Timeline::new(12), Timeline::new(12)];
    let mut inits: Vec<(bool, InitName, String, u32)> = Vec::new();
    let mut periods = Periods::new();
    let mut drain = |track: usize,
                     segmenters: &mut [HlsSegmenter; 2],
                     timelines: &mut [Timeline; 2]| {
        while let Some(event) = segmenters[track].pull() {
            match event {
                HlsEvent::Segment(segment) => {
                    let assigned = periods.assign(track == 0, &segment);
                    timelines[track].push(&segment, assigned.period);
                    if assigned.opened {
                        timelines[1 - track].retag(segment.session, segment.start, assigned.period);
                    }
                }
                HlsEvent::Init(init) => inits.push((
                    track == 0,
                    init.name,
                    init.codecs[0].clone(),
                    init.timescales[0],
                )),
                HlsEvent::SegmentLength { .. } => periods.resegment(track == 0),
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    for (i, frame) in frames.iter().enumerate() {
        if let Some((at, segment)) = resegment
            && at == i
        {
            segmenters.iter_mut().for_each(|s| s.set_segment(segment));
        }
        let track = usize::from(frame.codec == Codec::Aac);
        segmenters[track].push(frame, UnixMillis(1_795_514_400_000 + i as i64 * 20));
        drain(track, &mut segmenters, &mut timelines);
    }
    for track in 0..2 {
        segmenters[track].finish();
        drain(track, &mut segmenters, &mut timelines);
    }
    let representation = |video: bool, period: u64| {
        let entries: Vec<TimelineEntry> = timelines[usize::from(!video)]
            .entries()
            .filter(|e| e.period == period)
            .copied()
            .collect();
        let first = entries.first()?;
        let (_, init, codecs, timescale) = inits
            .iter()
            .find(|(v, name, ..)| *v == video && *name == first.init)?
            .clone();
        Some(Representation {
            id: if video { "v1" } else { "a" }.into(),
            dir: String::new(),
            codecs,
            bandwidth: if video { 2_000_000 } else { 128_000 },
            size: video.then_some((1280, 720)),
            frame_rate: video.then_some((25, 1)),
            sample_rate: (!video).then_some(48_000),
            channels: (!video).then_some(2),
            timescale,
            init: dash_init_name(video, init),
            timeline: entries,
        })
    };
    Mpd {
        availability_start: UnixMillis(1_795_514_400_000),
        publish_time: UnixMillis(1_795_514_412_500),
        segment: Duration::from_secs(2),
        window: 12,
        periods: periods
            .marks()
            .map(|mark| Period {
                id: mark.id,
                start: mark.start,
                video: representation(true, mark.id).into_iter().collect(),
                audio: representation(false, mark.id),
            })
            .collect(),
    }
}

#[test]
fn a_codec_change_starts_a_period_golden_mpd() {
    let text = periods_mpd(&switching(Codec::H265)).render();
    assert_golden(
        "h264_to_h265_periods.mpd",
        include_str!("../../testdata/dash/h264_to_h265_periods.mpd"),
        &text,
    );
    assert_eq!(text.matches("<Period").count(), 2, "{text}");
    assert!(text.contains("<Period id=\"0\" start=\"PT0S\">"), "{text}");
    // The second Period starts at the H.265 session's first keyframe (6 s), its templates
    // offset by it, with the new video init and the unchanged audio init.
    assert!(text.contains("start=\"PT6S\">"), "{text}");
    assert!(text.contains("presentationTimeOffset=\"540000\""), "{text}");
    assert!(text.contains("presentationTimeOffset=\"288000\""), "{text}");
    assert!(text.contains("initialization=\"init_v_8.mp4\""), "{text}");
    assert!(text.contains("codecs=\"hvc1."), "{text}");
    assert_eq!(text.matches("initialization=\"init_a.mp4\"").count(), 2);
}

#[test]
fn an_input_switch_with_the_same_codecs_stays_in_one_period() {
    let mpd = periods_mpd(&switching(Codec::H264));
    assert_eq!(mpd.periods.len(), 1, "{}", mpd.render());
    let period = &mpd.periods[0];
    assert_eq!(period.video[0].init, "init_v.mp4");
    // Both sessions' segments are listed, numbered on.
    let numbers: Vec<_> = period.video[0].timeline.iter().map(|e| e.number).collect();
    assert_eq!(numbers, (1_795_514_400..1_795_514_406).collect::<Vec<_>>());
}

#[test]
fn a_new_s_opens_a_period_at_the_next_keyframe_with_numbers_continuing() {
    const SEC: i64 = 90_000;
    const FIRST: u64 = 1_795_514_400;
    // 12 s of one session, a keyframe every second; S goes from 2 s to 4 s at 5.5 s.
    let frames = frames(7, Codec::H264, 0..300);
    let at = frames.iter().position(|f| f.pts.0 >= 11 * SEC / 2).unwrap();
    let mpd = periods_mpd_resegmented(&frames, Some((at, Duration::from_secs(4))));
    let text = mpd.render();
    assert_eq!(mpd.periods.len(), 2, "{text}");
    let (old, new) = (&mpd.periods[0], &mpd.periods[1]);
    // The old Period keeps its 2 s segments; the new one opens at the first keyframe after
    // the change (6 s) with the next number as its id, and cuts 4 s from there.
    let video = |p: &Period| -> Vec<(u64, i64, i64)> {
        p.video[0]
            .timeline
            .iter()
            .map(|e| (e.number, e.start.0 / SEC, e.duration.0 / SEC))
            .collect()
    };
    assert_eq!(
        video(old),
        [(FIRST, 0, 2), (FIRST + 1, 2, 2), (FIRST + 2, 4, 2)]
    );
    assert_eq!((new.id, new.start), (FIRST + 3, Ts90(6 * SEC)));
    assert_eq!(video(new), [(FIRST + 3, 6, 4), (FIRST + 4, 10, 2)]);
    assert!(text.contains(&format!("<Period id=\"{}\" start=\"PT6S\">", FIRST + 3)));
    // The same init and codec in both: only the segment length changed.
    assert_eq!(old.video[0].init, new.video[0].init);
    // Audio switched at once and is listed in both Periods, its entries on one timeline
    // (none overlap, none missing) and 4 s long in the new one but the last.
    let audio = |p: &Period| p.audio.as_ref().unwrap().timeline.clone();
    let all: Vec<TimelineEntry> = audio(old).into_iter().chain(audio(new)).collect();
    assert!(
        all.windows(2)
            .all(|w| w[0].start.0 + w[0].duration.0 == w[1].start.0
                && w[1].number == w[0].number + 1),
        "{all:?}"
    );
    let new_audio = audio(new);
    assert!(
        new_audio[..new_audio.len() - 1]
            .iter()
            .all(|e| e.duration.0 >= 4 * SEC),
        "{new_audio:?}"
    );
    // The longest listed: a new audio segment, cut at its frames.
    assert!(text.contains("maxSegmentDuration=\"PT4.01S\""), "{text}");
}

#[test]
fn a_new_s_opens_a_period_at_the_tracks_next_segment() {
    let mut periods = Periods::new();
    for (number, start) in [(10, 0), (11, 180_000)] {
        let s = segment(number, 1, InitName::First, start);
        assert_eq!(periods.assign(true, &s).period, 0);
        assert_eq!(periods.assign(false, &s).period, 0);
    }
    // Audio beside video cut with the new S first: it stays where it is, video leads.
    periods.resegment(false);
    periods.resegment(true);
    let a = segment(12, 1, InitName::First, 350_000);
    assert_eq!(periods.assign(false, &a).period, 0);
    let v = segment(12, 1, InitName::First, 360_000);
    let opened = Assigned {
        period: 12,
        opened: true,
    };
    assert_eq!(periods.assign(true, &v), opened);
    // Once: the next segments stay in it.
    let v = segment(13, 1, InitName::First, 720_000);
    assert_eq!(periods.assign(true, &v).period, 12);
    assert_eq!(periods.assign(false, &v).period, 12);

    // Audio alone opens its own, even in a session that has a Period.
    let mut periods = Periods::new();
    let a = segment(20, 1, InitName::First, 0);
    assert_eq!(periods.assign(false, &a).period, 0);
    periods.resegment(false);
    let a = segment(21, 1, InitName::First, 180_000);
    let opened = Assigned {
        period: 21,
        opened: true,
    };
    assert_eq!(periods.assign(false, &a), opened);
}

/// A 2 s segment `number` of `session` needing `init`, starting at `start`.
fn segment(number: u64, session: u64, init: InitName, start: i64) -> Segment {
    Segment {
        number,
        init: Some(init),
        session: SessionId(session),
        start: Ts90(start),
        duration: Ts90(180_000),
        discontinuity: false,
        program_date_time: UnixMillis(0),
        target_duration: 2,
        end: crate::SegmentEnd::Keyframe,
        bytes: Bytes::new(),
    }
}

#[test]
fn periods_slide_out_with_their_segments() {
    let h265 = InitName::Session(SessionId(2), 0);
    let mut periods = Periods::new();
    let mut video = Timeline::new(2);
    let mut audio = Timeline::new(2);
    for (number, start) in [(10, 0), (11, 180_000)] {
        let s = segment(number, 1, InitName::First, start);
        video.push(&s, periods.assign(true, &s).period);
        audio.push(&s, periods.assign(false, &s).period);
    }
    // Audio of session 2 (same init) comes out first: it is listed in Period 0 ...
    let a = segment(12, 2, InitName::First, 350_000);
    let assigned = periods.assign(false, &a);
    assert_eq!(assigned.period, 0);
    audio.push(&a, assigned.period);
    // ... until the video of session 2 opens Period 12 with a new init: the audio segment
    // reaching past its start moves into it (the Period starts at the video's segment).
    let v = segment(12, 2, h265, 360_000);
    let assigned = periods.assign(true, &v);
    assert_eq!(
        assigned,
        Assigned {
            period: 12,
            opened: true
        }
    );
    video.push(&v, assigned.period);
    assert_eq!(audio.retag(SessionId(2), v.start, 12), 1);
    let marks: Vec<_> = periods.marks().map(|m| (m.id, m.start)).collect();
    assert_eq!(marks, [(0, Ts90(0)), (12, Ts90(360_000))]);
    // Later audio of session 2 joins Period 12; a straggler of session 1 stays in 0.
    assert_eq!(
        periods
            .assign(false, &segment(13, 2, InitName::First, 530_000))
            .period,
        12
    );
    assert_eq!(
        periods
            .assign(false, &segment(9, 1, InitName::First, 170_000))
            .period,
        0
    );
    // Period 0's segments slide out of both windows: its mark goes.
    let s = segment(13, 2, h265, 540_000);
    video.push(&s, periods.assign(true, &s).period);
    audio.push(&segment(13, 2, InitName::First, 530_000), 12);
    let listed = |id| {
        video
            .entries()
            .chain(audio.entries())
            .any(|e| e.period == id)
    };
    periods.retain(listed);
    assert_eq!(periods.marks().map(|m| m.id).collect::<Vec<_>>(), [12]);
}

#[test]
fn an_audio_change_beside_video_opens_the_period_at_the_next_video_segment() {
    let aac2 = InitName::Session(SessionId(2), 0);
    let mut periods = Periods::new();
    let mut audio = Timeline::new(6);
    for (video, number) in [(true, 10), (false, 10)] {
        periods.assign(video, &segment(number, 1, InitName::First, 0));
    }
    // The new session's audio (another AAC config) comes out before its video: no Period yet,
    // it waits in the old one (where the MPD leaves it out: another init).
    let a = segment(11, 2, aac2, 170_000);
    let assigned = periods.assign(false, &a);
    assert_eq!(
        assigned,
        Assigned {
            period: 0,
            opened: false
        }
    );
    audio.push(&a, assigned.period);
    // The video of that session, same init, opens the Period at its own start.
    let v = segment(11, 2, InitName::First, 180_000);
    assert_eq!(
        periods.assign(true, &v),
        Assigned {
            period: 11,
            opened: true
        }
    );
    assert_eq!(audio.retag(SessionId(2), v.start, 11), 1);
    assert_eq!(
        periods.marks().map(|m| (m.id, m.start)).collect::<Vec<_>>(),
        [(0, Ts90(0)), (11, Ts90(180_000))]
    );
    // Later audio joins it.
    assert_eq!(
        periods.assign(false, &segment(12, 2, aac2, 350_000)).period,
        11
    );
    // A video change in a session whose audio then changes too: one Period.
    let h265 = InitName::Session(SessionId(3), 0);
    let aac3 = InitName::Session(SessionId(3), 0);
    assert!(periods.assign(true, &segment(13, 3, h265, 540_000)).opened);
    assert_eq!(
        periods.assign(false, &segment(14, 3, aac3, 545_000)),
        Assigned {
            period: 13,
            opened: false
        }
    );
    assert!(!periods.assign(true, &segment(14, 3, h265, 720_000)).opened);
}

/// A 2-rung ladder (rung 1 packaging the audio) that gets a third rung while segment
/// 1_795_514_403 is being cut, the new rung's encoder starting at 5 s (mid-cell: its first
/// segment is short): the MPD as publish assembles it from the rungs' timelines and the
/// [`Ladder`].
fn ladder_mpd() -> Mpd {
    let grid = Some(Ts90(90_000));
    let all = frames(7, Codec::H264, 0..300);
    let late = frames(7, Codec::H264, 125..300);
    let rungs = [
        package_on(&all, true, 12, grid),
        package_on(&all, true, 12, grid),
        package_on(&late, true, 12, grid),
    ];
    let (audio, audio_codecs, audio_scale) = package_on(&all, false, 12, grid);
    let mut ladder = Ladder::new();
    ladder.change(Some(1_795_514_402), 2, 3);
    let video_entries = |rung: usize| rungs[rung].0.entries().copied();
    let cuts = ladder.cuts(
        |rung| video_entries(usize::from(rung)).next().map(|e| e.number),
        |from| {
            (0..rungs.len())
                .flat_map(video_entries)
                .filter(|e| e.number >= from)
                .map(|e| e.start)
                .min()
        },
    );
    let mut ids = vec![(0, Ts90(0))];
    ids.extend(cuts.cuts().iter().map(|c| (c.from, c.start.unwrap())));
    let sizes = [(1280, 720), (854, 480), (640, 360)];
    Mpd {
        availability_start: UnixMillis(1_795_514_400_000),
        publish_time: UnixMillis(1_795_514_412_500),
        segment: Duration::from_secs(2),
        window: 12,
        periods: ids
            .into_iter()
            .map(|(id, start)| Period {
                id,
                start,
                video: (0..rungs.len())
                    .filter_map(|rung| {
                        let timeline: Vec<_> = video_entries(rung)
                            .filter(|e| cuts.video(rung as u16, e.number, e.period) == Some(id))
                            .collect();
                        (!timeline.is_empty()).then(|| Representation {
                            id: format!("v{}", rung + 1),
                            dir: format!("track_{}/", rung + 1),
                            codecs: rungs[rung].1.clone(),
                            bandwidth: 2_000_000 >> rung,
                            size: Some(sizes[rung]),
                            frame_rate: Some((25, 1)),
                            sample_rate: None,
                            channels: None,
                            timescale: rungs[rung].2,
                            init: "init_v.mp4".into(),
                            timeline,
                        })
                    })
                    .collect(),
                audio: Some(audio_representation(
                    "track_1/",
                    audio_codecs.clone(),
                    audio_scale,
                    audio
                        .entries()
                        .filter(|e| {
                            let end = Ts90(e.start.0 + e.duration.0);
                            cuts.audio(0, e.start, end, e.period).contains(&Some(id))
                        })
                        .copied()
                        .collect(),
                )),
            })
            .collect(),
    }
}

#[test]
fn a_ladder_change_starts_a_period_with_the_new_rungs_golden_mpd() {
    let text = ladder_mpd().render();
    assert_golden(
        "ladder_2_to_3_rungs.mpd",
        include_str!("../../testdata/dash/ladder_2_to_3_rungs.mpd"),
        &text,
    );
    let periods: Vec<&str> = text.split("<Period id=").skip(1).collect();
    assert_eq!(periods.len(), 2, "{text}");
    // The first Period: the old ladder only, its segments up to the cut.
    assert!(periods[0].starts_with("\"0\" start=\"PT0S\""), "{text}");
    assert_eq!(periods[0].matches("<Representation id=\"v").count(), 2);
    assert!(!periods[0].contains("track_3/"), "{text}");
    // The second: from the new rung's first segment (6 s), every rung, audio once, the
    // templates offset by its start.
    assert!(
        periods[1].starts_with("\"1795514403\" start=\"PT6S\""),
        "{text}"
    );
    assert_eq!(periods[1].matches("<Representation id=\"v").count(), 3);
    assert_eq!(periods[1].matches("<Representation id=\"a\"").count(), 1);
    assert!(periods[1].contains("startNumber=\"1795514403\""), "{text}");
    assert!(
        periods[1].contains("presentationTimeOffset=\"540000\""),
        "{text}"
    );
    // One availabilityStartTime; the audio segment that straddles the cut is listed in both
    // Periods, so neither has a hole in its audio.
    assert_eq!(text.matches("availabilityStartTime=").count(), 1);
    assert_eq!(periods[0].matches("startNumber=\"1795514400\"").count(), 3);
    assert!(
        periods[0].contains("<S t=\"0\" d=\"96256\" r=\"2\"/>"),
        "{text}"
    );
    assert!(periods[1].contains("startNumber=\"1795514402\""), "{text}");
}
