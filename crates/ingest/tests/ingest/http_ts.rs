//! `http://…` raw TS: a long GET through a redirect with the input's headers, and a server
//! that closes the connection.

use std::sync::Arc;
use std::time::Duration;

use tributary_domain::Input;
use tributary_domain::protocol::InputKind;
use tributary_ingest::{IngestConfig, WorkerEvent};
use tributary_media::Codec;

use crate::support::{Reply, Rig, Server, assert_av, clip, has_av};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_ts_follows_a_redirect_with_headers() {
    let clip = std::fs::read(clip(4, "ts")).unwrap();
    let server = Server::start().await;
    server.route("/live.ts", Reply::Body(Arc::new(clip)));
    server.route("/start", Reply::Redirect("/live.ts".into()));

    let mut rig = Rig::new();
    let mut input = Input::new(server.url("/start"), 0);
    input.headers.insert("X-Token".into(), "abc".into());
    let worker = rig.spawn_input(&input, &IngestConfig::default());
    assert_eq!(worker.kind(), InputKind::HttpTs);
    let frames = rig
        .collect(Duration::from_secs(15), "H.264 and AAC over HTTP", has_av)
        .await;
    assert_av(&frames);
    let requests = server.requests();
    assert!(requests[0].starts_with("GET /start "), "{requests:?}");
    assert!(requests[1].starts_with("GET /live.ts "), "{requests:?}");
    for head in &requests[..2] {
        assert!(head.to_ascii_lowercase().contains("x-token: abc"), "{head}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_connection_is_reported_and_reopened() {
    // Each response carries the first part of a clip, then the server closes.
    let mut clip = std::fs::read(clip(4, "ts")).unwrap();
    clip.truncate(clip.len() / 3 / 188 * 188);
    let server = Server::start().await;
    server.route("/live.ts", Reply::Body(Arc::new(clip)));

    let mut rig = Rig::new();
    let worker = rig.spawn(&server.url("/live.ts"));
    let first = rig
        .collect(
            Duration::from_secs(10),
            "frames of the first connection",
            has_av,
        )
        .await;
    let session = first[0].session;

    let error = rig.wait_error("EOF", Duration::from_secs(10)).await;
    assert!(error.contains("stream ingest-test, input 0"), "{error}");
    assert!(error.contains("/live.ts"), "{error}");
    assert!(error.contains("at byte"), "{error}");

    // Frames resume on the reopened connection, in a new session.
    let resumed = rig
        .collect(
            Duration::from_secs(10),
            "frames after the reconnect",
            |frames| {
                frames
                    .iter()
                    .any(|f| f.session != session && f.codec == Codec::H264 && f.keyframe)
            },
        )
        .await;
    assert!(resumed.iter().any(|f| f.session != session));
    assert!(worker.stats().reconnects >= 1, "{:?}", worker.stats());
    assert!(server.count() >= 2);

    // The manager hears of each open and of the EOF, in order.
    let events = worker.take_events();
    assert_eq!(events.first(), Some(&WorkerEvent::Opened), "{events:?}");
    let lost = events
        .iter()
        .position(|e| matches!(e, WorkerEvent::Lost(m) if m.contains("EOF")))
        .unwrap_or_else(|| panic!("no Lost(EOF) in {events:?}"));
    assert!(
        events[lost + 1..].contains(&WorkerEvent::Opened),
        "{events:?}"
    );
    assert!(worker.take_events().len() <= 2, "taken events are gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_stream_is_reported_with_its_status() {
    let server = Server::start().await;
    server.route("/gone.ts", Reply::Status(410));
    let rig = Rig::new();
    let worker = rig.spawn(&server.url("/gone.ts"));
    let error = rig.wait_error("410", Duration::from_secs(5)).await;
    assert!(error.contains("not retriable"), "{error}");
    assert!(!worker.stats().connected);
    let events = worker.take_events();
    assert!(
        matches!(events.first(), Some(WorkerEvent::OpenFailed(m)) if m.contains("410")),
        "{events:?}"
    );
    assert!(!events.contains(&WorkerEvent::Opened), "{events:?}");
}
