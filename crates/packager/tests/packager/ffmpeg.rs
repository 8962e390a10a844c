//! Segments made from an ffmpeg-encoded clip, checked by ffprobe and ffmpeg's decoders.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tributary_media::{Codec, Frame, SessionId};
use tributary_mpegts::{DemuxEvent, Demuxer, DemuxerConfig};
use tributary_packager::{
    HlsConfig, HlsEvent, HlsSegmenter, MediaPlaylist, Segment, SegmentEnd, SegmentFormat,
    UnixMillis,
};
use tributary_testkit::{ClipSpec, cached_clip, ffmpeg, ffprobe};

/// The frames of a 6 s 720p H.264 + AAC clip with a keyframe every 2 s.
fn clip_frames() -> Vec<Frame> {
    clip_frames_of(&ClipSpec {
        seconds: 6,
        gop: 60,
        ..ClipSpec::default()
    })
}

/// The frames of a clip made as `spec` says, demuxed from MPEG-TS, all in session 1.
pub(crate) fn clip_frames_of(spec: &ClipSpec) -> Vec<Frame> {
    let path = cached_clip(spec, "ts").expect("encoding the test clip with ffmpeg");
    let ts = std::fs::read(&path).expect("reading the test clip");
    demux(&ts)
}

/// The frames of an MPEG-TS byte string, all in session 1.
pub(crate) fn demux(ts: &[u8]) -> Vec<Frame> {
    let mut demuxer = Demuxer::new(DemuxerConfig::default());
    let mut frames = Vec::new();
    let arrival = arrival();
    for chunk in ts.chunks(1316) {
        demuxer.push(chunk, arrival);
        drain(&mut demuxer, &mut frames);
    }
    demuxer.flush();
    drain(&mut demuxer, &mut frames);
    frames
}

fn drain(demuxer: &mut Demuxer, frames: &mut Vec<Frame>) {
    while let Some(event) = demuxer.pull() {
        if let DemuxEvent::Frame(mut frame) = event.expect("the clip demuxes cleanly") {
            frame.session = SessionId(1);
            frames.push(frame);
        }
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "an arrival stamp for the demuxer, never compared"
)]
pub(crate) fn arrival() -> Instant {
    Instant::now()
}

/// Every segment the clip gives, the open one closed by `finish`.
fn segments(frames: &[Frame]) -> Vec<Segment> {
    let mut segmenter = HlsSegmenter::new(HlsConfig {
        segment: Duration::from_secs(2),
        first_number: 1_795_514_400,
        grid: None,
        format: SegmentFormat::Ts,
        part: None,
    });
    let mut out = Vec::new();
    let t0 = frames[0].dts.0;
    let mut take = |segmenter: &mut HlsSegmenter| {
        while let Some(event) = segmenter.pull() {
            match event {
                HlsEvent::Segment(segment) => out.push(segment),
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    for frame in frames {
        let wall = UnixMillis(1_795_514_400_000 + (frame.dts.0 - t0) / 90);
        segmenter.push(frame, wall);
        take(&mut segmenter);
    }
    segmenter.finish();
    take(&mut segmenter);
    out
}

/// Runs a tool on `input` (`-i <file>`, then `after`), written to a temporary file first; returns (stdout, stderr),
/// failing on a non-zero exit.
pub(crate) fn run_with_input(
    mut command: Command,
    input: &[u8],
    after: &[&str],
) -> (String, String) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "tributary-packager-{}-{}.ts",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, input).expect("writing the segment to a temporary file");
    let output = command.arg("-i").arg(&path).args(after).output();
    let _ = std::fs::remove_file(&path);
    let output = output.expect("running ffprobe/ffmpeg");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{command:?} failed: {stderr}");
    (stdout, stderr)
}

/// `ffprobe -v error` on the bytes: (streams as `codec[,width,height]`, stderr).
pub(crate) fn probe(bytes: &[u8]) -> (String, String) {
    let mut command = ffprobe();
    command.args([
        "-v",
        "error",
        "-show_entries",
        "stream=codec_name,width,height",
        "-of",
        "flat",
    ]);
    let (stdout, stderr) = run_with_input(command, bytes, &[]);
    // `streams.stream.0.codec_name="h264"` ...; the same streams listed under `programs.`
    // are skipped.
    let mut streams: Vec<String> = Vec::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("streams.stream.") else {
            continue;
        };
        let Some((index, field)) = rest.split_once('.') else {
            continue;
        };
        let index: usize = index.parse().expect("a stream index");
        let value = field
            .split_once('=')
            .map_or("", |(_, v)| v)
            .trim_matches('"');
        if streams.len() <= index {
            streams.resize(index + 1, String::new());
        }
        if !streams[index].is_empty() {
            streams[index].push(',');
        }
        streams[index].push_str(value);
    }
    (streams.join("\n"), stderr)
}

/// What ffmpeg's decoders say about the bytes (`-v error`): empty is clean.
pub(crate) fn decode_errors(bytes: &[u8]) -> String {
    let mut command = ffmpeg();
    command.args(["-v", "error"]);
    run_with_input(command, bytes, &["-f", "null", "-"]).1
}

#[test]
fn segments_of_an_ffmpeg_clip_probe_and_decode_cleanly() {
    let frames = clip_frames();
    assert!(frames.iter().any(|f| f.codec == Codec::Aac));
    let segments = segments(&frames);
    let ends: Vec<SegmentEnd> = segments.iter().map(|s| s.end).collect();
    assert_eq!(
        ends,
        [
            SegmentEnd::Keyframe,
            SegmentEnd::Keyframe,
            SegmentEnd::Finish
        ]
    );
    for segment in &segments {
        let (streams, stderr) = probe(&segment.bytes);
        assert_eq!(stderr, "", "ffprobe -v error on segment {}", segment.number);
        assert_eq!(
            streams.lines().collect::<Vec<_>>(),
            ["h264,1280,720", "aac"],
            "segment {}",
            segment.number
        );
        assert_eq!(
            decode_errors(&segment.bytes),
            "",
            "segment {}",
            segment.number
        );
        let ms = segment.duration.as_millis();
        assert!(
            (1990..=2030).contains(&ms),
            "segment {} lasts {ms} ms",
            segment.number
        );
        assert_eq!(segment.target_duration, 2);
    }
    // Played back to back, as a player does.
    let all: Vec<u8> = segments
        .iter()
        .flat_map(|s| s.bytes.iter().copied())
        .collect();
    assert_eq!(decode_errors(&all), "");

    let mut playlist = MediaPlaylist::new(12);
    for segment in &segments {
        playlist.push(segment);
    }
    let text = playlist.render();
    assert!(text.contains("#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1795514400\n"));
    assert!(text.contains(
        "#EXT-X-PROGRAM-DATE-TIME:2026-11-24T10:00:00.000Z\n#EXTINF:2.000,\nseg_1795514400.ts\n"
    ));
}

#[test]
fn audio_only_segments_probe_and_decode_cleanly() {
    // The clip's AAC alone: cut every S, PAT/PMT re-sent at each segment start.
    let frames: Vec<Frame> = clip_frames()
        .into_iter()
        .filter(|f| f.codec == Codec::Aac)
        .collect();
    let segments = segments(&frames);
    let (last, cut) = segments.split_last().expect("segments");
    assert!(cut.len() >= 2 && cut.iter().all(|s| s.end == SegmentEnd::Interval));
    assert_eq!(last.end, SegmentEnd::Finish);
    for segment in &segments {
        let (streams, stderr) = probe(&segment.bytes);
        assert_eq!(stderr, "", "ffprobe -v error on segment {}", segment.number);
        assert_eq!(streams, "aac", "segment {}", segment.number);
        assert_eq!(
            decode_errors(&segment.bytes),
            "",
            "segment {}",
            segment.number
        );
    }
    let all: Vec<u8> = segments
        .iter()
        .flat_map(|s| s.bytes.iter().copied())
        .collect();
    assert_eq!(decode_errors(&all), "");
}
