//! The argv that `tributary_domain::ffmpeg` builds, run by the real FFmpeg: the rungs have
//! their sizes, timestamps pass through, keyframes fall on the same instants in every rung and
//! every process, and hostile watermark values reach FFmpeg intact (it opens the files they
//! name) without changing the graph.
//!
//! The process wiring (stdin feeder, output descriptors) is the runtime's; here FFmpeg reads
//! a clip on stdin and each `pipe:<fd>` output is replaced by a file.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use tributary_domain::Transcoder;
use tributary_domain::ffmpeg::{
    Context, FIRST_OUTPUT_FD, Job, Ladder, Overlay, OverlayInput, ParseContext, argv,
};
use tributary_domain::stream::Watermark;
use tributary_media::Ts90;
use tributary_testkit::{ClipSpec, ProbePacket, cached_clip, probe_packets, probe_streams};

/// A 6 s 1280×720 30 fps clip with a 2 s GOP and AAC; its timestamps start near 1.4 s (the
/// TS muxer's delay), so a rung that did not keep them would show.
fn clip() -> PathBuf {
    let spec = ClipSpec {
        seconds: 6,
        ..ClipSpec::default()
    };
    cached_clip(&spec, "ts").expect("the test clip")
}

fn ladder(value: Value) -> Ladder {
    let transcoder: Transcoder = serde_json::from_value(value).expect("a transcoder");
    let (ladder, _) = Ladder::parse(&transcoder, None, &ParseContext::default()).expect("valid");
    ladder.expect("runs FFmpeg")
}

fn three_rungs(mode: &str) -> Ladder {
    ladder(json!({"mode": mode, "audio": {"bitrate": 96},
                  "video": {"profiles": [
                      {"width": 1280, "height": 720, "bitrate": 2000, "preset": "ultrafast"},
                      {"width": 854, "height": 480, "bitrate": 1000, "preset": "ultrafast"},
                      {"width": 640, "height": 360, "bitrate": 600, "preset": "ultrafast"}]}}))
}

/// Runs `args` with `input` on stdin; every output descriptor becomes `dir/out_<n>.ts`.
/// Returns the output files, in order. Panics with FFmpeg's stderr when it fails.
fn run(mut args: Vec<String>, input: &Path, dir: &Path, tag: &str) -> Vec<PathBuf> {
    let mut outputs = Vec::new();
    for arg in &mut args {
        let Some(fd) = arg
            .strip_prefix("pipe:")
            .and_then(|fd| fd.parse::<u32>().ok())
        else {
            continue;
        };
        if fd >= FIRST_OUTPUT_FD {
            let path = dir.join(format!("{tag}_{}.ts", fd - FIRST_OUTPUT_FD));
            *arg = path.to_str().expect("a UTF-8 path").to_owned();
            outputs.push(path);
        }
    }
    let output = Command::new("ffmpeg")
        .args(&args)
        .stdin(File::open(input).expect("the clip"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("ffmpeg runs");
    assert!(
        output.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    outputs
}

fn video_packets(path: &Path) -> Vec<ProbePacket> {
    probe_packets(path.to_str().unwrap(), &["-select_streams", "v"]).expect("ffprobe")
}

/// Keyframe PTS in milliseconds (rounded, so float noise does not matter).
fn keyframes(path: &Path) -> Vec<i64> {
    video_packets(path)
        .iter()
        .filter(|p| p.keyframe)
        .filter_map(|p| p.pts_time)
        .map(|t| (t * 1000.0).round() as i64)
        .collect()
}

fn first_pts(path: &Path) -> f64 {
    video_packets(path)
        .iter()
        .filter_map(|p| p.pts_time)
        .fold(f64::INFINITY, f64::min)
}

/// The context of a process whose first frame is `input`'s first video frame.
fn context(input: &Path) -> Context<'static> {
    Context {
        source_fps: Some(30.0),
        segment_sec: 2.0,
        first_pts: Some(Ts90((first_pts(input) * 90_000.0).round() as i64)),
        overlay: None,
    }
}

/// The part of `input` from its first keyframe at or after `from` seconds, timestamps kept:
/// what a process started later in the stream reads.
fn tail(input: &Path, from: f64, dir: &Path) -> PathBuf {
    let path = dir.join("tail.ts");
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-copyts",
            "-ss",
        ])
        .arg(from.to_string())
        .arg("-i")
        .arg(input)
        .args([
            "-map",
            "0",
            "-c",
            "copy",
            "-f",
            "mpegts",
            "-mpegts_copyts",
            "1",
        ])
        .args(["-muxdelay", "0", "-muxpreload", "0", "-y"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    path
}

#[test]
fn a_multi_ladder_keeps_sizes_timestamps_and_keyframe_instants() {
    let dir = tempfile::tempdir().unwrap();
    let input = clip();
    let outputs = run(
        argv(&three_rungs("multi"), Job::Ladder, &context(&input)),
        &input,
        dir.path(),
        "multi",
    );
    assert_eq!(outputs.len(), 3);
    let sizes: Vec<(Option<u32>, Option<u32>)> = outputs
        .iter()
        .map(|o| {
            let streams = probe_streams(o.to_str().unwrap()).unwrap();
            let video = streams
                .iter()
                .find(|s| s.codec_type.as_deref() == Some("video"))
                .expect("a video stream");
            assert!(
                streams
                    .iter()
                    .any(|s| s.codec_name.as_deref() == Some("aac")),
                "audio carried"
            );
            (video.width, video.height)
        })
        .collect();
    assert_eq!(
        sizes,
        [
            (Some(1280), Some(720)),
            (Some(854), Some(480)),
            (Some(640), Some(360))
        ]
    );

    let source = first_pts(&input);
    for output in &outputs {
        let first = first_pts(output);
        assert!(
            (first - source).abs() <= 1.0 / 30.0 + 1e-3,
            "a rung's PTS is the source's: {first} vs {source}"
        );
    }
    let grids: Vec<Vec<i64>> = outputs.iter().map(|o| keyframes(o)).collect();
    assert!(grids[0].len() >= 3, "a keyframe every 2 s: {:?}", grids[0]);
    assert!(
        grids.iter().all(|g| g == &grids[0]),
        "keyframes at the same instants: {grids:?}"
    );
    // The grid is absolute: every keyframe after the first sits on a multiple of 2 s.
    for k in &grids[0][1..] {
        assert!(k % 2000 <= 34, "keyframe at {k} ms is off the 2 s grid");
    }
}

#[test]
fn per_profile_processes_share_the_keyframe_grid() {
    let dir = tempfile::tempdir().unwrap();
    let input = clip();
    let ladder = three_rungs("per_profile");
    let mut grids = Vec::new();
    for job in ladder.jobs() {
        let tag = format!("{job:?}").replace(['(', ')'], "");
        let outputs = run(
            argv(&ladder, job, &context(&input)),
            &input,
            dir.path(),
            &tag,
        );
        assert_eq!(outputs.len(), 1);
        grids.push(keyframes(&outputs[0]));
    }
    assert_eq!(grids.len(), 3);
    assert!(grids.iter().all(|g| g == &grids[0]), "{grids:?}");

    // A process started 4 s later (a restarted rung) forces the same instants, not 2 s
    // after its own first frame.
    let later = tail(&input, 4.0, dir.path());
    let outputs = run(
        argv(&ladder, Job::Rung(1), &context(&later)),
        &later,
        dir.path(),
        "later",
    );
    let late = keyframes(&outputs[0]);
    assert!(late.len() >= 2, "{late:?}");
    assert!(
        late[1..].iter().all(|k| grids[0].contains(k)),
        "a later process keeps the grid: {late:?} vs {:?}",
        grids[0]
    );
}

const HOSTILE: &str = "a'b:c\\d;e[f]g,h\ni j ";

/// A directory and file names full of characters the filter graph treats specially.
fn hostile_dir(root: &Path) -> PathBuf {
    let dir = root.join(HOSTILE);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn hostile_watermark_values_reach_ffmpeg_intact() {
    let root = tempfile::tempdir().unwrap();
    let dir = hostile_dir(root.path());
    let font = dir.join(format!("{HOSTILE}.ttf"));
    fs::copy("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", &font)
        .expect("fonts-dejavu-core is installed (scripts/test)");
    let text_file = dir.join(format!("{HOSTILE}.txt"));
    fs::write(&text_file, format!("{HOSTILE}%H:%M")).unwrap();
    let watermark: Watermark = serde_json::from_value(json!({
        "enabled": true, "type": "text", "text": HOSTILE, "font_file": font.to_str().unwrap(),
        "position": "custom", "x": "max(10, w-tw) / 2", "y": "h-th-10"}))
    .unwrap();
    let ladder = ladder(json!({"video": {"profiles": [{"width": 640, "height": 360,
                                                       "preset": "ultrafast"}]}}));
    // FFmpeg draws `watermark` from `file` and writes video.
    let draws = |watermark: &Watermark, file: &Path, label: &str| {
        let overlay = Overlay::parse(watermark).expect("a valid watermark");
        let ctx = Context {
            overlay: Some(OverlayInput {
                overlay: &overlay,
                file: file.to_str().unwrap(),
            }),
            ..context(&clip())
        };
        let outputs = run(
            argv(&ladder, Job::Ladder, &ctx),
            &clip(),
            root.path(),
            label,
        );
        assert!(!video_packets(&outputs[0]).is_empty(), "{label}");
    };
    draws(&watermark, &text_file, "text");

    // The same for an image: FFmpeg must open the file the hostile path names.
    let image = dir.join(format!("{HOSTILE}.png"));
    let made = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-f",
            "lavfi",
            "-i",
        ])
        .args(["color=c=red:size=64x32", "-frames:v", "1", "-y"])
        .arg(&image)
        .status()
        .unwrap();
    assert!(made.success());
    let watermark: Watermark = serde_json::from_value(json!({
        "enabled": true, "type": "image", "image_path": image.to_str().unwrap(),
        "opacity": 0.5, "position": "bottom_right"}))
    .unwrap();
    draws(&watermark, &image, "image");
}
