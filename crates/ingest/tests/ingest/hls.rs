//! HLS pull: an ffmpeg-made playlist behind a master, paced, ending at `#EXT-X-ENDLIST`; a
//! playlist that is not there.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tributary_domain::protocol::InputKind;
use tributary_media::Codec;
use tributary_testkit::ffmpeg;

use crate::support::{Reply, Rig, Server, assert_av, clip};

/// Segments a clip into `dir` with ffmpeg's HLS muxer (1 s segments, every segment listed,
/// `#EXT-X-ENDLIST` at the end).
fn make_hls(dir: &std::path::Path, seconds: u32) {
    let status = ffmpeg()
        .arg("-i")
        .arg(clip(seconds, "ts"))
        .args([
            "-c",
            "copy",
            "-f",
            "hls",
            "-hls_time",
            "1",
            "-hls_list_size",
            "0",
        ])
        .arg(dir.join("index.m3u8"))
        .stdout(Stdio::null())
        .status()
        .expect("run ffmpeg -f hls");
    assert!(status.success(), "ffmpeg -f hls failed: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_playlist_to_the_best_variant_paced_until_endlist() {
    let dir = tempfile::tempdir().unwrap();
    make_hls(dir.path(), 2);
    let server = Server::start().await;
    server.serve_dir("/hi", dir.path());
    // The best variant comes first, so "take the last entry" would pick the wrong one.
    server.route(
        "/master.m3u8",
        Reply::Body(
            b"#EXTM3U\n\
              #EXT-X-STREAM-INF:BANDWIDTH=2000000\nhi/index.m3u8\n\
              #EXT-X-STREAM-INF:BANDWIDTH=800000\nlo/index.m3u8\n"
                .to_vec()
                .into(),
        ),
    );

    let mut rig = Rig::new();
    let started = Instant::now();
    let worker = rig.spawn(&server.url("/master.m3u8"));
    assert_eq!(worker.kind(), InputKind::Hls);
    let frames = rig
        .collect(
            Duration::from_secs(15),
            "every frame of the 2 s clip",
            |frames| frames.iter().filter(|f| f.codec == Codec::H264).count() >= 60,
        )
        .await;
    assert_av(&frames);

    let error = rig
        .wait_error("EXT-X-ENDLIST", Duration::from_secs(10))
        .await;
    assert!(error.contains("end of input"), "{error}");
    // Paced: 2 s of media take about 2 s, not a burst.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1700),
        "played in {elapsed:?}"
    );
    let stats = worker.stats();
    assert!(stats.finished && !stats.connected, "{stats:?}");

    let requests = server.requests();
    assert!(
        requests.iter().all(|r| !r.contains("/lo/")),
        "lower variant requested: {requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.starts_with("GET /hi/index0.ts")),
        "{requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_playlist_is_reported_with_its_status() {
    let server = Server::start().await;
    let rig = Rig::new();
    let worker = rig.spawn(&server.url("/nothing/index.m3u8"));
    let error = rig.wait_error("404", Duration::from_secs(5)).await;
    assert!(error.contains("cannot load playlist"), "{error}");
    assert!(error.contains("not retriable"), "{error}");
    // Not retried five times: 404 stops the playlist retries at once.
    assert_eq!(server.count(), 1);
    assert!(!worker.stats().connected);
}

/// A live playlist (no ENDLIST) over the segments of `dir`, at media sequence `seq`.
fn live_playlist(seq: u64) -> Reply {
    let text = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:{seq}\n\
         #EXTINF:1.0,\nindex0.ts\n#EXTINF:1.0,\nindex1.ts\n"
    );
    Reply::Body(text.into_bytes().into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_segments_are_fetched_once_and_a_sequence_going_back_resets() {
    let dir = tempfile::tempdir().unwrap();
    make_hls(dir.path(), 2);
    let server = Server::start().await;
    server.serve_dir("/live", dir.path());
    server.route("/live/index.m3u8", live_playlist(100));

    let mut rig = Rig::new();
    let _worker = rig.spawn(&server.url("/live/index.m3u8"));
    let first = rig
        .collect(Duration::from_secs(10), "frames of sequence 100", |f| {
            f.iter().any(|f| f.codec == Codec::H264 && f.keyframe)
        })
        .await;
    let session = first[0].session;
    let fetches = |server: &Server| {
        server
            .requests()
            .iter()
            .filter(|r| r.starts_with("GET /live/index0.ts "))
            .count()
    };
    // Several reloads of an unchanged playlist fetch no segment twice.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fetches(&server), 1, "{:?}", server.requests());

    // The origin restarts: its sequence goes back to 5.
    server.route("/live/index.m3u8", live_playlist(5));
    rig.collect(
        Duration::from_secs(10),
        "a new session after the reset",
        |f| {
            f.iter()
                .any(|f| f.session != session && f.codec == Codec::H264 && f.keyframe)
        },
    )
    .await;
    assert_eq!(fetches(&server), 2, "{:?}", server.requests());
    assert!(rig.errors().is_empty(), "{:?}", rig.errors());
}

/// Regression (issue 13, item 7): numbers at the top of u64 (`TARGETDURATION`, the media
/// sequence) once panicked the worker, and the input stayed dead. Now the hostile playlist
/// costs the input an error at most, and once the origin turns sane the pull plays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_playlist_costs_an_error_and_the_pull_plays_once_it_turns_valid() {
    let dir = tempfile::tempdir().unwrap();
    make_hls(dir.path(), 2);
    let server = Server::start().await;
    server.serve_dir("/live", dir.path());
    let max = u64::MAX;
    let hostile = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{max}\n\
         #EXT-X-MEDIA-SEQUENCE:{max}\n#EXTINF:1.0,\nindex0.ts\n#EXTINF:1.0,\nindex1.ts\n"
    );
    server.route("/live/index.m3u8", Reply::Body(hostile.into_bytes().into()));

    let mut rig = Rig::new();
    let _worker = rig.spawn(&server.url("/live/index.m3u8"));
    let error = rig.wait_error("overflows", Duration::from_secs(10)).await;
    assert!(error.contains("stream ingest-test, input 0"), "{error}");
    assert!(!error.contains("worker failed"), "no panic: {error}");

    // The origin turns valid: the same worker plays it.
    server.route("/live/index.m3u8", live_playlist(7));
    rig.collect(
        Duration::from_secs(20),
        "frames once the origin is sane",
        |f| f.iter().any(|f| f.codec == Codec::H264 && f.keyframe),
    )
    .await;
    assert!(
        !rig.errors().iter().any(|e| e.contains("worker failed")),
        "{:?}",
        rig.errors()
    );
}

/// Regression (issue 13, item 7): 8 prefetched segments of up to 64 MiB each let an origin
/// hold 512 MiB per input. Segments queued for the player now hold at most 64 MiB, whatever
/// `hls_prefetch` says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_holds_at_most_its_byte_budget() {
    let dir = tempfile::tempdir().unwrap();
    make_hls(dir.path(), 6);
    // Each 1 s segment padded to 20 MiB with null packets (PID 0x1FFF), which demuxers skip.
    let mut null = vec![0xFFu8; 188];
    null[..4].copy_from_slice(&[0x47, 0x1F, 0xFF, 0x10]);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ts") {
            let mut ts = std::fs::read(&path).unwrap();
            while ts.len() < 20 << 20 {
                ts.extend_from_slice(&null);
            }
            std::fs::write(&path, ts).unwrap();
        }
    }
    let server = Server::start().await;
    server.serve_dir("/big", dir.path());

    let mut rig = Rig::new();
    let _worker = rig.spawn(&server.url("/big/index.m3u8"));
    rig.collect(
        Duration::from_secs(15),
        "frames of the first segment",
        |f| f.iter().any(|f| f.codec == Codec::H264 && f.keyframe),
    )
    .await;
    // Half a second later, still inside the first segment's second of play: the one playing
    // and two queued hold 60 MiB and the fourth, downloaded, waits for room. (Without the
    // budget all six are fetched within that half second.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    let segments = server
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /big/index") && r.contains(".ts "))
        .count();
    assert!(segments <= 4, "{segments} segments fetched ahead");
}
