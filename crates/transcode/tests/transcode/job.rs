//! A supervised job with the real FFmpeg, in both modes: frames written to a raw buffer come
//! back as one rendition buffer per rung with their timestamps (the input's own, across a
//! 33-bit wrap, keyframes on the same instants in every rung); a killed child is restarted
//! after its backoff as a new session in the same rendition buffers (never a deleted one);
//! stop reaps the child; a missing binary is a precise error naming the path.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;
use tributary_domain::Transcoder;
use tributary_domain::ffmpeg::{Job, Ladder, ParseContext};
use tributary_hub::{BufferId, Delivery, Hub, SubscribeFrom, Subscriber, Writer};
use tributary_media::{Frame, MediaKind, Ts90};
use tributary_mpegts::{DemuxEvent, Demuxer, DemuxerConfig};
use tributary_testkit::{ClipSpec, cached_clip};
use tributary_transcode::{
    JobConfig, JobEvent, JobHandle, JobReport, Launcher, SpawnError, SupervisorConfig,
};

/// The frames of a 4 s 640×360 clip (1 s GOP), in file order.
fn clip_frames() -> Vec<Frame> {
    let spec = ClipSpec {
        width: 640,
        height: 360,
        seconds: 4,
        gop: 30,
        ..ClipSpec::default()
    };
    let bytes = std::fs::read(cached_clip(&spec, "ts").expect("the clip")).expect("readable");
    let mut demuxer = Demuxer::new(DemuxerConfig::default());
    demuxer.push(&bytes, Instant::now());
    demuxer.flush();
    std::iter::from_fn(|| demuxer.pull())
        .filter_map(|e| match e {
            Ok(DemuxEvent::Frame(f)) => Some(f),
            _ => None,
        })
        .collect()
}

fn ladder(mode: &str) -> Arc<Ladder> {
    let t: Transcoder = serde_json::from_value(json!({"mode": mode, "video": {"profiles": [
        {"width": 320, "height": 180, "bitrate": 300, "preset": "ultrafast"},
        {"width": 160, "height": 90, "bitrate": 100, "preset": "ultrafast"}]}}))
    .expect("a transcoder");
    let (ladder, _) = Ladder::parse(&t, None, &ParseContext::default()).expect("valid");
    Arc::new(ladder.expect("runs FFmpeg"))
}

struct Setup {
    hub: Hub,
    jobs: Vec<JobHandle>,
    /// What each of `jobs` runs.
    jobs_run: Vec<Job>,
    events: mpsc::Receiver<JobReport>,
    renditions: Vec<BufferId>,
    player: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// A raw buffer fed in real time with the clip looped (timestamps continuous), a 2-rung
/// ladder in `mode` and its jobs.
fn start(mode: &str) -> Setup {
    let hub = Hub::new();
    let code: tributary_media::StreamCode = "cam1".parse().expect("a code");
    let source = BufferId::Raw(code.clone());
    let raw = hub.create(source.clone(), 1024).expect("raw buffer");
    let ladder = ladder(mode);
    let renditions: Vec<BufferId> = (0..2)
        .map(|i| BufferId::Rendition(code.clone(), i))
        .collect();
    let mut writers: Vec<Writer> = renditions
        .iter()
        .map(|id| hub.create(id.clone(), 1024).expect("rendition buffer"))
        .collect();
    let dir = tempfile::tempdir().expect("a temp dir");
    let (tx, events) = mpsc::channel(64);
    let launcher = Launcher::resolve(Path::new("ffmpeg")).expect("ffmpeg is installed");
    let config = |job, name: &str| JobConfig {
        launcher: launcher.clone(),
        ladder: Arc::clone(&ladder),
        job,
        segment_sec: 1.0,
        overlay: None,
        workdir: dir.path().join(name),
        source: source.clone(),
        grace: Duration::from_secs(2),
        supervisor: SupervisorConfig::default(),
    };
    let jobs_run = ladder.jobs();
    let jobs = match jobs_run.as_slice() {
        [Job::Ladder] => vec![JobHandle::start(
            config(Job::Ladder, "ladder"),
            hub.clone(),
            writers,
            tx,
        )],
        _ => {
            let second = writers.pop().expect("two writers");
            let first = writers.pop().expect("two writers");
            vec![
                JobHandle::start(
                    config(Job::Rung(0), "r0"),
                    hub.clone(),
                    vec![first],
                    tx.clone(),
                ),
                JobHandle::start(config(Job::Rung(1), "r1"), hub.clone(), vec![second], tx),
            ]
        }
    };
    let player = tokio::spawn(play(raw, clip_frames()));
    Setup {
        hub,
        jobs,
        jobs_run,
        events,
        renditions,
        player,
        _dir: dir,
    }
}

/// Where the raw buffer's timeline starts: 3 s before the 33-bit PTS wrap, so FFmpeg's
/// output wraps while the test reads it.
const RAW_START: i64 = Ts90::WRAP_33 - 3 * 90_000;

/// Writes `frames` in real time, looped with continuous timestamps from [`RAW_START`], as
/// ingest would.
async fn play(mut raw: Writer, frames: Vec<Frame>) {
    let start = tokio::time::Instant::now();
    let first = frames[0].dts.0;
    let span = frames.last().expect("frames").dts.0 - first + 3000;
    for lap in 0i64.. {
        for f in &frames {
            let offset = RAW_START - first + lap * span;
            let due = (f.dts.0 - first + lap * span).max(0) as u64;
            tokio::time::sleep_until(start + Duration::from_micros(due * 1000 / 90)).await;
            let mut f = f.clone();
            f.pts = Ts90(f.pts.0 + offset);
            f.dts = Ts90(f.dts.0 + offset);
            f.arrival = Instant::now();
            if raw.write(f).is_err() {
                return;
            }
        }
    }
}

/// The next `n` video frames of a rendition (20 s at most for all).
async fn video_frames(out: &mut Subscriber, n: usize) -> Vec<Frame> {
    let mut video = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while video.len() < n {
        match tokio::time::timeout_at(deadline, out.recv()).await {
            Ok(Some(Delivery::Frame(f))) if f.codec.kind() == MediaKind::Video => video.push(f),
            Ok(Some(_)) => {}
            Ok(None) => panic!("{}: deleted after {} frames", out.id(), video.len()),
            Err(_) => panic!("{}: stalled after {} frames", out.id(), video.len()),
        }
    }
    video
}

/// Every frame of a rendition carries the PTS of an input frame (timestamps preserved end to
/// end, past the wrap: they are on the raw buffer's 64-bit timeline), its DTS increase, and
/// its keyframes sit on the 1 s grid (at the first input frame at or after each second), but
/// for the first frame of each process.
fn assert_input_timestamps(id: &BufferId, video: &[Frame]) {
    for (i, f) in video.iter().enumerate() {
        assert_eq!(
            (f.pts.0 - RAW_START).rem_euclid(3000),
            0,
            "{id}: PTS {} is no input frame's",
            f.pts.0
        );
        let first_of_process = i == 0 || video[i - 1].session != f.session;
        if f.keyframe && !first_of_process {
            assert!(
                f.pts.0.rem_euclid(90_000) < 3000,
                "{id}: keyframe at {} is off the 1 s grid (keyframes: {:?})",
                f.pts.0,
                video
                    .iter()
                    .filter(|f| f.keyframe)
                    .map(|f| f.pts.0)
                    .collect::<Vec<_>>()
            );
        }
    }
    assert!(
        video.windows(2).all(|w| w[1].dts > w[0].dts),
        "{id}: DTS increase"
    );
}

fn gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| stat.contains(") Z "))
}

async fn both_modes_run_restart_and_stop(mode: &str) {
    let mut s = start(mode);
    let mut outs: Vec<Subscriber> = s
        .renditions
        .iter()
        .map(|id| {
            s.hub
                .subscribe(id, SubscribeFrom::Now, "test")
                .expect("subscribe")
        })
        .collect();
    let mut sessions = Vec::new();
    let mut keyframes = Vec::new();
    for out in &mut outs {
        let video = video_frames(out, 70).await;
        sessions.push(video[0].session);
        assert!(video[0].keyframe, "{}: starts at a keyframe", out.id());
        let steps: Vec<i64> = video.windows(2).map(|w| w[1].pts.0 - w[0].pts.0).collect();
        assert!(
            steps.iter().all(|&d| d == 3000),
            "{}: 30 fps, no gap: {steps:?}",
            out.id()
        );
        assert_input_timestamps(out.id(), &video);
        keyframes.push(
            video
                .iter()
                .filter(|f| f.keyframe)
                .map(|f| f.pts.0)
                .collect::<Vec<_>>(),
        );
    }
    // The same instants in every rung, wherever each rung's reading started (and past a
    // process's first frame, always a keyframe, wherever it is).
    let from = keyframes.iter().map(|k| k[1]).max().expect("rungs");
    let to = keyframes
        .iter()
        .map(|k| *k.last().expect("a keyframe"))
        .min()
        .expect("rungs");
    let common: Vec<Vec<i64>> = keyframes
        .iter()
        .map(|k| {
            k.iter()
                .copied()
                .filter(|p| (from..=to).contains(p))
                .collect()
        })
        .collect();
    assert!(!common[0].is_empty(), "{keyframes:?}");
    assert!(common.iter().all(|k| *k == common[0]), "{keyframes:?}");
    let pid = s.jobs[0].status().pid.expect("running");
    let mut started = 0;
    while let Ok(report) = s.events.try_recv() {
        started += usize::from(matches!(report.event, JobEvent::Started { .. }));
    }
    assert_eq!(started, s.jobs.len(), "one process per job");

    // Killed: a crash, restarted after the 2 s backoff, a new session in the same buffers.
    // Per profile through fault injection (`StatusWatch::kill`), multi from outside: the job
    // cannot tell them apart.
    let killed_at = Instant::now();
    if mode == "per_profile" {
        assert_eq!(
            s.jobs[0].watch().kill(),
            Some(pid),
            "fault injection kills it"
        );
    } else {
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid as i32).expect("a pid"),
            rustix::process::Signal::KILL,
        )
        .expect("kill");
    }
    let mut restarted = None;
    while restarted.is_none() {
        match tokio::time::timeout(Duration::from_secs(20), s.events.recv()).await {
            Ok(Some(JobReport {
                job,
                event: JobEvent::Started { pid: new },
            })) => {
                assert_eq!(job, s.jobs_run[0], "the killed job restarts");
                restarted = Some(new);
            }
            Ok(Some(_)) => {}
            other => panic!("no restart: {other:?}"),
        }
    }
    let new_pid = restarted.expect("restarted");
    assert_ne!(new_pid, pid);
    assert!(
        killed_at.elapsed() >= Duration::from_secs(2),
        "after the backoff"
    );
    assert!(gone(pid), "the killed child was reaped");
    let status = s.jobs[0].status();
    assert_eq!(status.restart_count, 1);
    assert_eq!(status.errors.len(), 1);
    assert!(status.errors[0].1.contains("signal"), "{:?}", status.errors);
    // Multi: both rungs were in the killed process. Per profile: only rung 0; rung 1 goes on
    // in its session without a gap.
    let killed = if mode == "multi" { 2 } else { 1 };
    for (i, (out, before)) in outs.iter_mut().zip(sessions).enumerate() {
        let later = video_frames(out, 60).await;
        assert_input_timestamps(out.id(), &later);
        assert!(
            later.last().is_some_and(|f| f.pts.0 > Ts90::WRAP_33),
            "{}: read past the wrap",
            out.id()
        );
        let renewed = later.iter().any(|f| f.session > before);
        if i < killed {
            assert!(renewed, "{}: a new session after the restart", out.id());
        } else {
            assert!(
                !renewed,
                "{}: untouched by the other rung's crash",
                out.id()
            );
            let steps: Vec<i64> = later.windows(2).map(|w| w[1].pts.0 - w[0].pts.0).collect();
            assert!(
                steps.iter().all(|&d| d == 3000),
                "{}: no gap: {steps:?}",
                out.id()
            );
        }
    }

    s.player.abort();
    let pids: Vec<u32> = s.jobs.iter().filter_map(|j| j.status().pid).collect();
    for job in s.jobs {
        let writers = job.stop().await;
        assert!(!writers.is_empty(), "the writers come back");
    }
    for pid in pids {
        assert!(gone(pid), "stop reaped {pid}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_profile_runs_restarts_and_stops() {
    both_modes_run_restart_and_stop("per_profile").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_runs_restarts_and_stops() {
    both_modes_run_restart_and_stop("multi").await;
}

#[test]
fn a_missing_binary_names_the_path_and_path_env() {
    let missing = PathBuf::from("/nonexistent/ffmpeg");
    let error = Launcher::resolve(&missing).expect_err("missing");
    assert!(matches!(&error, SpawnError::NotFound { program, .. } if *program == missing));
    let message = error.to_string();
    assert!(
        message.contains("/nonexistent/ffmpeg") && message.contains("PATH="),
        "{message}"
    );
}
