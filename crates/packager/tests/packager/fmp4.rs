//! fMP4 init and media segments made from ffmpeg-encoded clips, read by ffprobe and decoded by
//! ffmpeg as a player would fetch them: the init, then the segments back to back.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tributary_media::codec::{av1, vp9};
use tributary_media::{Codec, Frame, MediaKind, SessionId, TrackId, Ts90};
use tributary_packager::{
    Fmp4Track, Fragmenter, HlsConfig, HlsEvent, HlsSegmenter, InitName, InitSegment, MediaPlaylist,
    Segment, SegmentFormat, UnixMillis, write_init,
};
use tributary_testkit::{ClipSpec, ffprobe};

use crate::ffmpeg::{arrival, clip_frames_of, decode_errors, probe, run_with_input};

/// Init + media segments cut at every video keyframe, as one byte string.
fn fragmented(frames: &[Frame]) -> (Vec<u8>, usize) {
    let mut ids = Vec::new();
    let mut tracks = Vec::new();
    for frame in frames {
        if !ids.contains(&frame.track) && (frame.codec.kind() != MediaKind::Video || frame.keyframe)
        {
            ids.push(frame.track);
            let id = u32::try_from(tracks.len() + 1).unwrap();
            tracks.push(Fmp4Track::from_frame(id, frame).expect("a track from the clip"));
        }
    }
    let mut out = BytesMut::new();
    write_init(&tracks, &mut out);
    let mut fragmenter = Fragmenter::new(&tracks);
    let mut segments = 0;
    for frame in frames {
        let index = ids.iter().position(|t| *t == frame.track).unwrap();
        if frame.codec.kind() == MediaKind::Video && frame.keyframe && !fragmenter.is_empty() {
            segments += 1;
            fragmenter.write(segments, &mut out);
        }
        fragmenter
            .push(index, frame)
            .expect("the clip's frames fit their init");
    }
    segments += 1;
    fragmenter.write(segments, &mut out);
    (out.to_vec(), segments as usize)
}

/// Video frames ffprobe counts in the bytes.
fn video_frames(bytes: &[u8]) -> usize {
    let mut command = ffprobe();
    command.args([
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-count_frames",
        "-show_entries",
        "stream=nb_read_frames",
        "-of",
        "csv=p=0",
    ]);
    let (stdout, _) = run_with_input(command, bytes, &[]);
    stdout.trim().parse().expect("a frame count")
}

fn check(spec: &ClipSpec, want_streams: &[&str]) {
    let frames = clip_frames_of(spec);
    let (bytes, segments) = fragmented(&frames);
    assert!(segments >= 3, "{segments} segments");
    let (streams, stderr) = probe(&bytes);
    assert_eq!(stderr, "", "ffprobe -v error");
    assert_eq!(streams.lines().collect::<Vec<_>>(), want_streams);
    assert_eq!(decode_errors(&bytes), "", "ffmpeg decodes cleanly");
    let video = frames
        .iter()
        .filter(|f| f.codec.kind() == MediaKind::Video)
        .count();
    assert_eq!(video_frames(&bytes), video, "every picture decodes");
}

#[test]
fn h264_with_b_frames_and_aac_decode_cleanly() {
    check(
        &ClipSpec {
            seconds: 6,
            gop: 60,
            bframes: 2,
            ..ClipSpec::default()
        },
        &["h264,1280,720", "aac"],
    );
}

#[test]
fn h265_and_aac_decode_cleanly() {
    check(
        &ClipSpec {
            seconds: 6,
            gop: 60,
            width: 640,
            height: 360,
            hevc: true,
            ..ClipSpec::default()
        },
        &["hevc,640,360", "aac"],
    );
}

/// AV1 (libaom, `-f obu`) and VP9 (libvpx, `-f ivf`) test vectors from
/// crates/media/testdata, framed as the hub carries them (a temporal unit, a frame), in fMP4
/// cut at each keyframe: ffprobe reads av1 / vp9 at 320x180 and ffmpeg decodes all 10
/// pictures without an error; HLS `auto` picks fMP4 for them.
#[test]
fn av1_and_vp9_from_ffmpeg_decode_cleanly() {
    let testdata = concat!(env!("CARGO_MANIFEST_DIR"), "/../media/testdata/");
    for (codec, file, want, codec_string) in [
        (
            Codec::Av1,
            "ffmpeg_libaom_320x180_30fps_10f.obu",
            "av1,320,180",
            "av01.0.00M.08",
        ),
        (
            Codec::Vp9,
            "ffmpeg_libvpx_vp9_320x180_30fps_10f.ivf",
            "vp9,320,180",
            "vp09.00.11.08",
        ),
    ] {
        let file = std::fs::read(format!("{testdata}{file}")).expect("reading the test vector");
        let units: Vec<&[u8]> = if codec == Codec::Av1 {
            av1::temporal_units(&file).collect()
        } else {
            vp9::ivf_frames(&file).collect()
        };
        let key = if codec == Codec::Av1 {
            av1::is_keyframe
        } else {
            vp9::is_keyframe
        };
        let frames: Vec<Frame> = (0i64..)
            .zip(units)
            .map(|(i, unit)| Frame {
                track: TrackId(1),
                codec,
                pts: Ts90(i * 3000),
                dts: Ts90(i * 3000),
                keyframe: key(unit),
                session: SessionId(1),
                arrival: arrival(),
                payload: Bytes::copy_from_slice(unit),
                config: None,
            })
            .collect();
        let (bytes, segments) = fragmented(&frames);
        assert_eq!(segments, 2, "{codec}: keyframes at 0 and 5");
        let (streams, stderr) = probe(&bytes);
        assert_eq!(stderr, "", "ffprobe -v error on {codec}");
        assert_eq!(streams.lines().collect::<Vec<_>>(), [want]);
        assert_eq!(decode_errors(&bytes), "", "ffmpeg decodes {codec} cleanly");
        assert_eq!(video_frames(&bytes), 10, "every {codec} picture decodes");

        // HLS `segment_format: auto` packages them as fMP4, as it does H.265.
        let events = hls_events(&frames, SegmentFormat::Auto);
        let HlsEvent::Init(init) = &events[0] else {
            panic!("{codec} gets fMP4: {:?}", events[0]);
        };
        assert_eq!(init.codecs, [codec_string]);
        let mut bytes = init.bytes.to_vec();
        for segment in hls_segments(&events) {
            bytes.extend_from_slice(&segment.bytes);
        }
        assert_eq!(probe(&bytes).0.lines().collect::<Vec<_>>(), [want]);
    }
}

/// The frames of 3 s of a 440 Hz tone encoded by ffmpeg with `codec` (`-c:a`) into MPEG-TS.
fn audio_frames(codec: &str, channels: &str) -> Vec<Frame> {
    let path = std::env::temp_dir().join(format!(
        "tributary-packager-fmp4-{}-{codec}-{channels}.ts",
        std::process::id()
    ));
    let status = tributary_testkit::ffmpeg()
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("sine=frequency=440:sample_rate=48000")
        .args(["-t", "3", "-c:a", codec, "-ac", channels, "-f", "mpegts"])
        .arg(&path)
        .status()
        .expect("running ffmpeg");
    assert!(status.success(), "ffmpeg encodes {codec}");
    let ts = std::fs::read(&path).expect("reading the encoded audio");
    let _ = std::fs::remove_file(&path);
    crate::ffmpeg::demux(&ts)
}

/// Audio-only fMP4, cut about every second.
fn audio_fragmented(frames: &[Frame]) -> Vec<u8> {
    let track = Fmp4Track::from_frame(1, &frames[0]).expect("a track from the first frame");
    let mut out = BytesMut::new();
    write_init(std::slice::from_ref(&track), &mut out);
    let mut fragmenter = Fragmenter::new(&[track]);
    let mut start = frames[0].dts.0;
    let mut sequence = 1;
    for frame in frames {
        if frame.dts.0 - start >= 90_000 {
            fragmenter.write(sequence, &mut out);
            sequence += 1;
            start = frame.dts.0;
        }
        fragmenter
            .push(0, frame)
            .expect("the frames fit their init");
    }
    fragmenter.write(sequence, &mut out);
    out.to_vec()
}

#[test]
fn ac3_eac3_and_opus_from_ffmpeg_decode_cleanly() {
    for (codec, channels, name) in [
        ("ac3", "2", "ac3"),
        ("eac3", "6", "eac3"),
        ("libopus", "2", "opus"),
    ] {
        let frames = audio_frames(codec, channels);
        let bytes = audio_fragmented(&frames);
        let (streams, stderr) = probe(&bytes);
        assert_eq!(stderr, "", "ffprobe -v error on {name}");
        assert_eq!(streams, name);
        assert_eq!(decode_errors(&bytes), "", "{name} decodes cleanly");
        let mut command = ffprobe();
        command.args([
            "-v",
            "error",
            "-show_entries",
            "stream=channels,sample_rate,start_time,duration",
            "-of",
            "csv=p=0",
        ]);
        let (stdout, _) = run_with_input(command, &bytes, &[]);
        let fields: Vec<&str> = stdout.trim().split(',').collect();
        assert_eq!(fields[..2], ["48000", channels], "{name}: {stdout}");
        // MPEG-TS from ffmpeg starts at 1.4 s; the MP4's duration counts from 0.
        let start: f64 = fields[2].parse().expect("a start time");
        let end: f64 = fields[3].parse().expect("a duration");
        let seconds = end - start;
        assert!(
            (2.9..3.1).contains(&seconds),
            "{name} lasts {seconds} s: {stdout}"
        );
    }
}

/// Every event of a segmenter in `format` over `frames` (wall time from DTS), finished.
fn hls_events(frames: &[Frame], format: SegmentFormat) -> Vec<HlsEvent> {
    let mut segmenter = HlsSegmenter::new(HlsConfig {
        segment: Duration::from_secs(2),
        first_number: 1_795_514_400,
        grid: None,
        format,
        part: None,
    });
    let mut events = Vec::new();
    let t0 = frames[0].dts.0;
    for frame in frames {
        segmenter.push(
            frame,
            UnixMillis(1_795_514_400_000 + (frame.dts.0 - t0) / 90),
        );
        events.extend(std::iter::from_fn(|| segmenter.pull()));
    }
    segmenter.finish();
    events.extend(std::iter::from_fn(|| segmenter.pull()));
    events
}

fn hls_segments(events: &[HlsEvent]) -> Vec<&Segment> {
    events
        .iter()
        .filter_map(|e| match e {
            HlsEvent::Segment(segment) => Some(segment),
            _ => None,
        })
        .collect()
}

#[test]
fn hls_fmp4_cuts_and_numbers_as_hls_ts_and_decodes_cleanly() {
    let frames = clip_frames_of(&ClipSpec {
        seconds: 6,
        gop: 60,
        bframes: 2,
        ..ClipSpec::default()
    });
    let ts = hls_events(&frames, SegmentFormat::Ts);
    let fmp4 = hls_events(&frames, SegmentFormat::Fmp4);
    let cuts = |events: &[HlsEvent]| -> Vec<(u64, i64, i64)> {
        hls_segments(events)
            .iter()
            .map(|s| (s.number, s.start.0, s.duration.0))
            .collect()
    };
    assert_eq!(
        cuts(&ts),
        cuts(&fmp4),
        "same cut points, numbers and durations"
    );
    assert_eq!(cuts(&fmp4).len(), 3);

    let HlsEvent::Init(init) = &fmp4[0] else {
        panic!("the init comes first: {:?}", fmp4[0]);
    };
    assert_eq!(init.name, InitName::First);
    assert_eq!(init.codecs, ["avc1.64001f", "mp4a.40.2"]);
    let mut playlist = MediaPlaylist::new(12);
    let mut bytes = init.bytes.to_vec();
    for segment in hls_segments(&fmp4) {
        assert_eq!(segment.init, Some(InitName::First));
        assert_eq!(&segment.bytes[4..8], b"moof");
        playlist.push(segment);
        bytes.extend_from_slice(&segment.bytes);
    }
    let text = playlist.render();
    assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n"), "{text}");
    assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.000,\nseg_1795514400.m4s\n"));
    assert_eq!(decode_errors(&bytes), "", "init + segments decode cleanly");
    let video = frames
        .iter()
        .filter(|f| f.codec.kind() == MediaKind::Video)
        .count();
    assert_eq!(video_frames(&bytes), video);
}

#[test]
fn auto_picks_fmp4_for_h265_and_ts_for_h264() {
    let h265 = clip_frames_of(&ClipSpec {
        seconds: 6,
        gop: 60,
        width: 640,
        height: 360,
        hevc: true,
        ..ClipSpec::default()
    });
    let events = hls_events(&h265, SegmentFormat::Auto);
    let HlsEvent::Init(init) = &events[0] else {
        panic!("H.265 gets fMP4: {:?}", events[0]);
    };
    assert!(init.codecs[0].starts_with("hvc1."), "{:?}", init.codecs);
    assert!(
        init.bytes.windows(4).any(|w| w == b"hvcC"),
        "the init carries hvcC"
    );
    let mut bytes = init.bytes.to_vec();
    for segment in hls_segments(&events) {
        bytes.extend_from_slice(&segment.bytes);
    }
    let (streams, _) = probe(&bytes);
    assert_eq!(streams.lines().collect::<Vec<_>>(), ["hevc,640,360", "aac"]);
    assert_eq!(decode_errors(&bytes), "");

    let h264 = clip_frames_of(&ClipSpec {
        seconds: 6,
        gop: 60,
        ..ClipSpec::default()
    });
    let events = hls_events(&h264, SegmentFormat::Auto);
    let segments = hls_segments(&events);
    assert!(!segments.is_empty());
    assert!(
        segments
            .iter()
            .all(|s| s.init.is_none() && s.bytes[0] == 0x47),
        "H.264 + AAC stays MPEG-TS"
    );
}

#[test]
fn a_new_session_with_another_codec_gets_a_new_init_and_the_same_codec_keeps_it() {
    let spec = |hevc| ClipSpec {
        seconds: 6,
        gop: 60,
        width: 640,
        height: 360,
        hevc,
        ..ClipSpec::default()
    };
    let h264 = clip_frames_of(&spec(false));
    let h265 = clip_frames_of(&spec(true));
    // Session 1: H.264; session 2: the same H.264 again; session 3: H.265, later in time.
    let end = h264.last().unwrap().dts.0 + 3000;
    let shifted = |frames: &[Frame], session: u64, by: i64| -> Vec<Frame> {
        frames
            .iter()
            .map(|f| Frame {
                session: SessionId(session),
                pts: Ts90(f.pts.0 + by),
                dts: Ts90(f.dts.0 + by),
                ..f.clone()
            })
            .collect()
    };
    let t0 = h264[0].dts.0;
    let mut frames = h264.clone();
    frames.extend(shifted(&h264, 2, end - t0));
    frames.extend(shifted(&h265, 3, 2 * (end - t0) - h265[0].dts.0 + t0));
    let events = hls_events(&frames, SegmentFormat::Fmp4);
    let inits: Vec<&InitSegment> = events
        .iter()
        .filter_map(|e| match e {
            HlsEvent::Init(init) => Some(init),
            _ => None,
        })
        .collect();
    assert_eq!(inits.len(), 2, "the repeated H.264 session reuses init.mp4");
    assert_eq!(inits[0].name, InitName::First);
    assert_eq!(inits[1].name, InitName::Session(SessionId(3), 0));
    assert_eq!(inits[1].name.to_string(), "init_3.mp4");
    let mut playlist = MediaPlaylist::new(12);
    for segment in hls_segments(&events) {
        playlist.push(segment);
    }
    let text = playlist.render();
    assert_eq!(
        text.matches("#EXT-X-MAP:URI=\"init.mp4\"").count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init_3.mp4\"\n"),
        "{text}"
    );
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 2, "{text}");
}
