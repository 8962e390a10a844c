//! Push inputs (issue 12, 4c and 4d): an input naming this server's own RTMP listener and
//! stream is a publisher slot, not a pull of itself; a stream with several push inputs (a
//! primary and a backup encoder) tells its publishers apart and fails over and back between
//! them like any other inputs.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tributary_testkit::{ClipSpec, LiveSender, cached_clip, free_tcp_port, http_get, wait_until};

use crate::server::{Server, send};
use crate::turn::shared;

/// Polls `runtime` until `ready` holds; panics with the last runtime otherwise.
fn wait_runtime(
    server: &Server,
    code: &str,
    what: &str,
    limit: Duration,
    ready: impl Fn(&Value) -> bool,
) {
    let mut last = Value::Null;
    wait_until(limit, what, || {
        last = server.runtime(code);
        ready(&last)
    })
    .unwrap_or_else(|e| panic!("{e}: {last:#}"));
}

/// Publishes `clip` to `url` in real time, looping.
fn publisher(clip: &Path, url: &str) -> LiveSender {
    LiveSender::rtmp(clip, url).expect("start the ffmpeg publisher")
}

fn wait_hls(server: &Server, code: &str) {
    let playlist = server.url(&format!("/{code}/index.m3u8"));
    wait_until(Duration::from_secs(30), "HLS segments", || {
        http_get(&playlist).is_ok_and(|(s, _, b)| s == 200 && b.windows(3).any(|w| w == b".ts"))
    })
    .unwrap();
}

#[test]
fn an_input_naming_the_own_listener_takes_a_publisher_instead_of_pulling_itself() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let rtmp = format!("127.0.0.1:{port}");
    let server = Server::start_with(dir.path(), &[], &rtmp);
    // An open-streamer config: the stream's own listener URL as its input.
    let own = format!("rtmp://127.0.0.1:{port}/live/loop");
    let body = format!(r#"{{"inputs":[{{"url":"{own}"}}],"protocols":{{"hls":true}}}}"#);
    let answer = send("PUT", &server.url("/streams/loop"), Some(&body), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);
    wait_runtime(
        &server,
        "loop",
        "a push slot waiting",
        Duration::from_secs(10),
        |r| r["inputs"][0]["kind"] == "push" && r["inputs"][0]["waiting_for_publisher"] == true,
    );

    // An encoder publishing to that URL feeds the stream.
    let clip = cached_clip(&ClipSpec::default(), "mp4").expect("encode the clip");
    let encoder = publisher(&clip, &own);
    wait_runtime(
        &server,
        "loop",
        "the publisher",
        Duration::from_secs(20),
        |r| r["inputs"][0]["publisher_connected"] == true && r["active_input_priority"] == 0,
    );
    wait_hls(&server, "loop");
    drop(encoder);

    // The record loaded at boot is parsed against the bound port too.
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    let server = Server::start_with(dir.path(), &[], &rtmp);
    wait_runtime(
        &server,
        "loop",
        "a push slot after a restart",
        Duration::from_secs(10),
        |r| r["inputs"][0]["kind"] == "push",
    );
}

#[test]
fn a_primary_and_a_backup_encoder_fail_over_and_back() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{port}"));
    // Two OBS machines: the primary picks its slot by name, the backup has its own key.
    let body = r#"{"stream_key": "show-s3cret-01",
        "inputs":[{"url":"publish://?slot=main"},{"url":"rtmp://0.0.0.0/live/show-backup","priority":1}],
        "protocols":{"hls":true}}"#;
    let answer = send("PUT", &server.url("/streams/show"), Some(body), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);
    let primary_url = format!("rtmp://127.0.0.1:{port}/live/show?key=show-s3cret-01&slot=main");
    let backup_url = format!("rtmp://127.0.0.1:{port}/live/show-backup?key=show-s3cret-01");
    let clip = cached_clip(&ClipSpec::default(), "mp4").expect("encode the clip");
    let active = |priority: u32| move |r: &Value| r["active_input_priority"] == priority;

    // The backup comes up first and goes on air; the primary then takes over at once.
    let _backup = publisher(&clip, &backup_url);
    wait_runtime(
        &server,
        "show",
        "the backup on air",
        Duration::from_secs(20),
        active(1),
    );
    let mut primary = publisher(&clip, &primary_url);
    wait_runtime(
        &server,
        "show",
        "the primary on air",
        Duration::from_secs(20),
        active(0),
    );
    wait_hls(&server, "show");
    let both = server.runtime("show");
    assert_eq!(both["inputs"][0]["publisher_connected"], true, "{both:#}");
    assert_eq!(both["inputs"][1]["publisher_connected"], true, "{both:#}");

    // The primary's machine dies: the backup takes over.
    drop(primary);
    wait_runtime(
        &server,
        "show",
        "failover to the backup",
        Duration::from_secs(10),
        active(1),
    );
    // It comes back: failback after the hold.
    let back = Instant::now();
    primary = publisher(&clip, &primary_url);
    wait_runtime(
        &server,
        "show",
        "failback to the primary",
        Duration::from_secs(30),
        active(0),
    );
    let took = back.elapsed();
    assert!(
        took >= Duration::from_secs(11),
        "failback after {took:?}: no hold"
    );

    let state = server.runtime("show");
    let reasons: Vec<&str> = state["switches"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.first(), Some(&"initial"), "{state:#}");
    assert!(reasons.contains(&"error"), "{reasons:?}");
    assert_eq!(reasons.last(), Some(&"failback"), "{reasons:?}");
    assert_eq!(state["status"], "active", "{state:#}");
    drop(primary);
}
