//! Files: `.ts` paced in real time, looped without a timeline break, ended without `loop`;
//! `.mp4` through an FFmpeg remux, and a clear error when FFmpeg is missing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tributary_domain::Input;
use tributary_domain::protocol::InputKind;
use tributary_ingest::{IngestConfig, WorkerEvent};
use tributary_media::{Codec, TrackId};

use crate::support::{Rig, assert_av, clip, has_av};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ts_is_paced_and_ends_without_loop() {
    let clip = clip(4, "ts");
    let mut rig = Rig::new();
    let worker = rig.spawn(&format!("file://{}?loop=false", clip.display()));
    assert_eq!(worker.kind(), InputKind::File);

    // One second in, about one second of media has been written: paced, not a burst.
    let first = rig
        .collect(Duration::from_secs(5), "a first frame", |f| !f.is_empty())
        .await;
    let start = Instant::now();
    let t0 = first[0].dts;
    let mut frames = rig
        .collect(Duration::from_secs(5), "1 s of wall time", |_| {
            start.elapsed() >= Duration::from_secs(1)
        })
        .await;
    let span = frames.last().unwrap().dts.0 - t0.0;
    assert!(
        (60_000..=150_000).contains(&span),
        "after 1 s of wall time {} s of media was written",
        span as f64 / 90_000.0
    );

    let error = rig.wait_error("end of file", Duration::from_secs(8)).await;
    assert!(error.contains("loop disabled"), "{error}");
    assert!(error.contains(&clip.display().to_string()), "{error}");
    let wall = start.elapsed();
    assert!(
        wall >= Duration::from_millis(3200),
        "4 s clip ended after {wall:?}"
    );
    while let Ok(tributary_hub::Delivery::Frame(f)) = rig.sub.try_recv() {
        frames.push(f);
    }
    assert_av(&frames);
    assert!(worker.stats().finished);
    let events = worker.take_events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0], WorkerEvent::Opened);
    assert!(
        matches!(&events[1], WorkerEvent::Finished(m) if m.contains("loop disabled")),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_keeps_dts_monotonic_and_the_session() {
    let clip = clip(2, "ts");
    let mut rig = Rig::new();
    let _worker = rig.spawn(clip.to_str().unwrap());
    // Past the loop point: more video than one 2 s pass holds.
    let frames = rig
        .collect(
            Duration::from_secs(10),
            "frames past the loop point",
            |frames| frames.iter().filter(|f| f.codec == Codec::H264).count() >= 75,
        )
        .await;
    let session = frames[0].session;
    let mut last: HashMap<TrackId, i64> = HashMap::new();
    for f in &frames {
        assert_eq!(f.session, session, "a loop started a new session");
        if let Some(&prev) = last.get(&f.track) {
            assert!(
                f.dts.0 > prev,
                "track {:?}: DTS {} after {}",
                f.track,
                f.dts.0,
                prev
            );
        }
        last.insert(f.track, f.dts.0);
    }
    assert!(rig.errors().is_empty(), "{:?}", rig.errors());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mp4_is_remuxed_by_ffmpeg() {
    let clip = clip(2, "mp4");
    let mut rig = Rig::new();
    let _worker = rig.spawn(&format!("file://{}", clip.display()));
    let frames = rig
        .collect(Duration::from_secs(10), "H.264 and AAC from MP4", has_av)
        .await;
    assert_av(&frames);
}

#[tokio::test]
async fn a_missing_ffmpeg_is_named() {
    let clip = clip(2, "mp4");
    let rig = Rig::new();
    let config = IngestConfig {
        ffmpeg_path: PathBuf::from("/nonexistent/ffmpeg"),
        ..IngestConfig::default()
    };
    let _worker = rig.spawn_input(&Input::new(clip.to_str().unwrap(), 0), &config);
    let error = rig.wait_error("not found", Duration::from_secs(5)).await;
    assert!(error.contains("/nonexistent/ffmpeg"), "{error}");
    assert!(error.contains(&clip.display().to_string()), "{error}");
}

#[tokio::test]
async fn kinds_without_a_worker_are_refused_at_spawn() {
    let rig = Rig::new();
    let ctx = || tributary_ingest::IngestContext {
        code: "ingest-test".parse().unwrap(),
        priority: 0,
    };
    for url in ["publish://", "copy://other"] {
        let input = crate::support::parse(&Input::new(url, 0));
        let error = tributary_ingest::spawn(ctx(), &input, rig.port.clone())
            .expect_err(url)
            .to_string();
        assert!(error.contains("not supported"), "{url}: {error}");
        assert!(
            error.contains("stream ingest-test, input 0"),
            "{url}: {error}"
        );
    }
}
