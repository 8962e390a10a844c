//! fMP4 init and media segments made from ffmpeg-encoded clips, read by ffprobe and decoded by
//! ffmpeg as a player would fetch them: the init, then the segments back to back.

use bytes::BytesMut;
use tributary_media::{Frame, MediaKind};
use tributary_packager::{Fmp4Track, Fragmenter, write_init};
use tributary_testkit::{ClipSpec, ffprobe};

use crate::ffmpeg::{clip_frames_of, decode_errors, probe, run_with_input};

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
