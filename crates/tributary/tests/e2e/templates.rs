//! Templates and auto-publish (issue 18 item 2, SPEC §Templates): CRUD errors naming the
//! field, a publish under a template prefix creating a runtime stream that plays on HLS and
//! expires after its publisher stops, the per-address creation limit, `[autopublish]`
//! setting that limit and the idle time or turning auto-publish off, and a template edit
//! reaching a running dependent through the hot-reload path.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use tributary_testkit::{LiveSender, ffmpeg, free_tcp_port, free_udp_port, wait_until};

use crate::events::events;
use crate::hls::{assert_h264_720p_with_aac, clip, wait_segments};
use crate::server::{Server, put_stream, send};
use crate::turn::shared;

/// The template key of these tests (at least 10 characters).
const KEY: &str = "tpl-s3cret-01";

fn put_template(server: &Server, code: &str, body: serde_json::Value) -> crate::server::Answer {
    send(
        "PUT",
        &server.url(&format!("/templates/{code}")),
        Some(&body.to_string()),
        &[],
    )
}

/// The first `fields[].path` of an error answer.
fn field(answer: &crate::server::Answer) -> &str {
    answer.body["error"]["fields"][0]["path"]
        .as_str()
        .unwrap_or("")
}

#[test]
fn template_crud_errors_name_the_field() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);

    let bad = put_template(&server, "t1", json!({"prefixes": ["/live"]}));
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(bad.body["error"]["code"], "INVALID_PREFIX");
    assert_eq!(field(&bad), "prefixes[0]");
    let bad = put_template(&server, "t1", json!({"inputs": [{"url": "rtmq://x"}]}));
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(bad.body["error"]["code"], "INVALID_INPUT_URL");
    assert_eq!(field(&bad), "inputs[0].url");
    let bad = put_template(&server, "t1", json!({"bogus": true}));
    assert_eq!((bad.status, field(&bad)), (422, "bogus"), "{}", bad.body);

    let body = json!({"prefixes": ["live/events/"], "stream_key": KEY,
                      "inputs": [{"url": "publish://"}], "protocols": {"hls": true}});
    let created = put_template(&server, "t1", body.clone());
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["data"]["prefixes"], json!(["live/events"]));
    assert_eq!(created.body["data"]["stream_key"], "****");
    let replaced = put_template(&server, "t1", created.body["data"].clone());
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    let revealed = send("GET", &server.url("/templates/t1?reveal=true"), None, &[]);
    assert_eq!(
        revealed.body["data"]["stream_key"], KEY,
        "a masked key written back keeps the stored one"
    );
    let list = send("GET", &server.url("/templates"), None, &[]);
    assert_eq!(list.body["total"], 1, "{}", list.body);

    let overlap = put_template(&server, "t2", json!({"prefixes": ["other", "live"]}));
    assert_eq!(overlap.status, 409, "{}", overlap.body);
    assert_eq!(overlap.body["error"]["code"], "PREFIX_OVERLAP");
    assert_eq!(field(&overlap), "prefixes[1]");
    assert_eq!(overlap.body["error"]["conflicting_with"], "t1");
    assert_eq!(overlap.body["error"]["overlaps"], "live/events");

    let missing = send(
        "PUT",
        &server.url("/streams/cam"),
        Some(r#"{"template": "nope"}"#),
        &[],
    );
    assert_eq!(missing.status, 422, "{}", missing.body);
    assert_eq!(missing.body["error"]["code"], "TEMPLATE_NOT_FOUND");
    assert_eq!(field(&missing), "template");

    put_stream(&server, "cam", r#"{"template": "t1"}"#);
    let stream = send("GET", &server.url("/streams/cam"), None, &[]);
    assert_eq!(stream.body["data"]["template"], "t1");
    assert_eq!(
        stream.body["data"]["inputs"],
        json!([]),
        "the stored record, not the resolved one"
    );
    let in_use = send("DELETE", &server.url("/templates/t1"), None, &[]);
    assert_eq!(in_use.status, 409, "{}", in_use.body);
    assert_eq!(in_use.body["error"]["code"], "TEMPLATE_IN_USE");
    assert_eq!(in_use.body["error"]["streams"], json!(["cam"]));

    assert_eq!(
        send("GET", &server.url("/templates/zzz"), None, &[]).status,
        404
    );
    assert_eq!(
        send("DELETE", &server.url("/streams/cam"), None, &[]).status,
        204
    );
    assert_eq!(
        send("DELETE", &server.url("/templates/t1"), None, &[]).status,
        204
    );
    assert_eq!(
        send("GET", &server.url("/templates/t1"), None, &[]).status,
        404
    );
}

#[test]
fn a_publish_under_a_template_prefix_creates_a_runtime_stream_that_plays_and_expires() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    // A 5 s idle time and a 1 s sweep instead of the 30 s / 5 s defaults (unit-tested in
    // domain's autopublish config): the same rule, a minute less of waiting.
    let server = Server::start_with(
        dir.path(),
        &[
            ("TRIBUTARY_AUTOPUBLISH__IDLE_TIMEOUT_SEC", "5"),
            ("TRIBUTARY_AUTOPUBLISH__SWEEP_INTERVAL_SEC", "1"),
        ],
        &format!("127.0.0.1:{port}"),
    );
    let body = json!({"prefixes": ["live/events"], "stream_key": KEY,
                      "inputs": [{"url": "publish://"}], "protocols": {"hls": true}});
    assert_eq!(put_template(&server, "events", body).status, 201);

    // Without the template's key nothing is created.
    let status = ffmpeg()
        .args(["-f", "lavfi", "-i", "testsrc=size=64x64:rate=5", "-t", "1"])
        .args(["-c:v", "libx264", "-f", "flv"])
        .arg(format!("rtmp://127.0.0.1:{port}/live/events/a"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run ffmpeg");
    assert!(!status.success(), "a publish without the key is refused");
    assert_eq!(
        send("GET", &server.url("/streams/events/a"), None, &[]).status,
        404
    );

    // Two encoders publish to one path at once: one stream is created, the second encoder is
    // refused as busy (its push input has a publisher).
    let url = format!("rtmp://127.0.0.1:{port}/live/events/a?key={KEY}");
    let mut publisher = LiveSender::rtmp(&clip(), &url).expect("start the ffmpeg publisher");
    let mut rival = LiveSender::rtmp(&clip(), &url).expect("start the second publisher");
    let playlist = server.url("/events/a/index.m3u8");
    wait_segments(&server, "events/a", 2, Duration::from_secs(30));
    assert_h264_720p_with_aac(&playlist);
    let stream = send("GET", &server.url("/streams/events/a"), None, &[]);
    assert_eq!(stream.status, 200, "{}", stream.body);
    assert_eq!(stream.body["data"]["source"], "runtime");
    assert_eq!(stream.body["data"]["template"], "events");
    assert_eq!(stream.body["data"]["runtime"]["source"], "runtime");
    let runtime = send("GET", &server.url("/streams?source=runtime"), None, &[]);
    assert_eq!(runtime.body["total"], 1, "{}", runtime.body);
    assert_eq!(runtime.body["data"][0]["code"], "events/a");
    let config = send("GET", &server.url("/streams?source=config"), None, &[]);
    assert_eq!(config.body["total"], 0, "{}", config.body);
    wait_until(
        Duration::from_secs(10),
        "one of two publishers refused",
        || !(publisher.is_running() && rival.is_running()),
    )
    .unwrap();
    let created = |kind: &str| {
        events(&server, "since=0&limit=1000")["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == kind && e["stream_code"] == "events/a")
            .map(|e| e["payload"]["template_code"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(created("stream.runtime_created"), [json!("events")]);

    // While packets flow it lives on past the idle time (and several sweeps).
    std::thread::sleep(Duration::from_secs(8));
    let live = send("GET", &server.url("/streams/events/a"), None, &[]);
    assert_eq!(live.status, 200, "reaped while its publisher still sends");
    assert_eq!(
        live.body["data"]["runtime"]["status"], "active",
        "{}",
        live.body
    );

    // Gone about 5 s (the idle time, plus at most one 1 s sweep) after its last packet.
    publisher.kill();
    rival.kill();
    let stopped = Instant::now();
    wait_until(
        Duration::from_secs(20),
        "the runtime stream to expire",
        || send("GET", &server.url("/streams/events/a"), None, &[]).status == 404,
    )
    .unwrap();
    let idle = stopped.elapsed();
    assert!(
        idle >= Duration::from_secs(4),
        "expired {idle:?} after the publisher stopped, before the 5 s idle time"
    );
    assert!(
        tributary_testkit::http_get(&playlist).map_or(true, |(status, _, _)| status == 404),
        "its HLS output went with it"
    );
    // The event follows the stop, which may still run when the record is already gone.
    wait_until(Duration::from_secs(10), "stream.runtime_expired", || {
        !created("stream.runtime_expired").is_empty()
    })
    .unwrap();
    assert_eq!(created("stream.runtime_expired"), [json!("events")]);
}

#[test]
fn the_eleventh_creation_in_a_minute_from_one_address_is_refused() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{port}"));
    let body = json!({"prefixes": ["live/burst"], "stream_key": KEY,
                      "inputs": [{"url": "publish://"}]});
    assert_eq!(put_template(&server, "burst", body).status, 201);
    let refused: Vec<usize> = (1..=12)
        .filter(|i| !publish_briefly(port, &format!("burst/s{i}")))
        .collect();
    assert_eq!(refused, [11, 12], "publishes refused");
    let runtime = send("GET", &server.url("/streams?source=runtime"), None, &[]);
    assert_eq!(runtime.body["total"], 10, "{}", runtime.body);
    let logged = server.logged(|line| {
        line["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("auto-publish refused"))
            && line["fields"]["path"] == "live/burst/s11"
    });
    assert_eq!(logged.len(), 1, "the refusal is logged with its path");
    assert!(
        logged[0]["fields"]["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "and its peer: {}",
        logged[0]
    );
    let metrics = server.text("/metrics").unwrap();
    assert!(
        metrics.contains(r#"tributary_publish_rejected_total{proto="rtmp",reason="limit"} 2"#),
        "the refusals are counted:\n{}",
        metrics
            .lines()
            .filter(|l| l.contains("publish_rejected"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Publishes 0.4 s of video to `rtmp://127.0.0.1:<port>/live/<path>?key=KEY`: whether the
/// publish went through.
fn publish_briefly(port: u16, path: &str) -> bool {
    ffmpeg()
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x64:rate=5",
            "-t",
            "0.4",
        ])
        .args(["-c:v", "libx264", "-g", "1", "-f", "flv"])
        .arg(format!("rtmp://127.0.0.1:{port}/live/{path}?key={KEY}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run ffmpeg")
        .success()
}

#[test]
fn autopublish_settings_set_the_limit_and_the_idle_time_and_enabled_false_turns_it_off() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let server = Server::start_with(
        &dir.path().join("on"),
        &[
            ("TRIBUTARY_AUTOPUBLISH__MAX_CREATIONS_PER_MIN", "2"),
            ("TRIBUTARY_AUTOPUBLISH__IDLE_TIMEOUT_SEC", "2"),
            ("TRIBUTARY_AUTOPUBLISH__SWEEP_INTERVAL_SEC", "1"),
        ],
        &format!("127.0.0.1:{port}"),
    );
    let body = json!({"prefixes": ["live/few"], "stream_key": KEY,
                      "inputs": [{"url": "publish://"}]});
    assert_eq!(put_template(&server, "few", body).status, 201);
    let refused: Vec<usize> = (1..=3)
        .filter(|i| !publish_briefly(port, &format!("few/s{i}")))
        .collect();
    assert_eq!(refused, [3], "the third creation in a minute is refused");
    let runtime = || send("GET", &server.url("/streams?source=runtime"), None, &[]).body;
    assert_eq!(runtime()["total"], 2, "{}", runtime());
    let logged = server.logged(|line| {
        line["fields"]["message"].as_str().is_some_and(|m| {
            m.starts_with("auto-publish refused") && m.contains("autopublish.max_creations_per_min")
        })
    });
    assert_eq!(logged.len(), 1, "the refusal names the setting");
    // Both publishers are done: the streams go 2 s (plus at most a 1 s sweep) later.
    wait_until(
        Duration::from_secs(10),
        "the runtime streams to expire",
        || runtime()["total"] == 0,
    )
    .unwrap();
    let expired = server.logged(|line| {
        line["fields"]["message"]
            .as_str()
            .is_some_and(|m| m == "auto-publish: runtime stream expired (no packet for 2 s)")
    });
    assert_eq!(expired.len(), 2, "{expired:?}");
    drop(server);

    // Off: the same publish creates nothing, and the refusal says why.
    let port = free_tcp_port();
    let server = Server::start_with(
        &dir.path().join("off"),
        &[("TRIBUTARY_AUTOPUBLISH__ENABLED", "false")],
        &format!("127.0.0.1:{port}"),
    );
    let body = json!({"prefixes": ["live/few"], "stream_key": KEY,
                      "inputs": [{"url": "publish://"}]});
    assert_eq!(put_template(&server, "few", body).status, 201);
    assert!(!publish_briefly(port, "few/s1"), "refused while off");
    let answer = send("GET", &server.url("/streams?source=runtime"), None, &[]);
    assert_eq!(answer.body["total"], 0, "{}", answer.body);
    let said = server.logged(|line| line.to_string().contains("auto-publish is off"));
    assert!(!said.is_empty(), "the refusal names the reason");
}

#[test]
fn a_template_edit_updates_a_running_dependent_in_place() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{port}"));
    let body = json!({"stream_key": KEY, "inputs": [{"url": "publish://"}],
                      "protocols": {"rtmp": true}});
    assert_eq!(put_template(&server, "base", body).status, 201);
    put_stream(&server, "dep", r#"{"template": "base"}"#);
    let url = format!("rtmp://127.0.0.1:{port}/live/dep?key={KEY}");
    let _publisher = LiveSender::rtmp(&clip(), &url).expect("start the ffmpeg publisher");
    wait_until(
        Duration::from_secs(30),
        "the dependent to take media",
        || server.runtime("dep")["active_input_priority"] == 0,
    )
    .unwrap();
    let started_at = server.runtime("dep")["started_at"].clone();
    let playlist = server.url("/dep/index.m3u8");
    assert_eq!(tributary_testkit::http_get(&playlist).unwrap().0, 404);

    // The template turns HLS on: the running dependent gets it without a restart.
    let body = json!({"stream_key": KEY, "inputs": [{"url": "publish://"}],
                      "protocols": {"rtmp": true, "hls": true}});
    let edited = put_template(&server, "base", body);
    assert_eq!(edited.status, 200, "{}", edited.body);
    wait_segments(&server, "dep", 2, Duration::from_secs(30));
    assert_eq!(
        server.runtime("dep")["started_at"],
        started_at,
        "updated in place, not restarted"
    );
    let stream = send("GET", &server.url("/streams/dep"), None, &[]);
    assert_eq!(
        stream.body["data"]["protocols"],
        serde_json::Value::Null,
        "the stored record still inherits"
    );
}

#[test]
fn an_srt_publish_under_a_template_prefix_creates_a_runtime_stream() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let server = Server::start_args(
        dir.path(),
        &[],
        "off",
        &["--srt", &format!("127.0.0.1:{port}")],
    );
    let body = json!({"prefixes": ["live/events"], "stream_key": KEY,
                      "inputs": [{"url": "publish://"}], "protocols": {"hls": true}});
    assert_eq!(put_template(&server, "events", body).status, 201);
    let url = format!("srt://127.0.0.1:{port}?streamid=publish:live/events/s?key={KEY}");
    let _publisher = LiveSender::start_url(&clip(), &url).expect("start the ffmpeg SRT publisher");
    wait_segments(&server, "events/s", 2, Duration::from_secs(30));
    assert_h264_720p_with_aac(&server.url("/events/s/index.m3u8"));
    let stream = send("GET", &server.url("/streams/events/s"), None, &[]);
    assert_eq!(stream.body["data"]["source"], "runtime", "{}", stream.body);

    // Restarting an auto-published stream stops it (its encoder's reconnect would create it
    // again).
    let restart = send("POST", &server.url("/streams/events/s/restart"), None, &[]);
    assert_eq!(restart.status, 200, "{}", restart.body);
    assert_eq!(
        send("GET", &server.url("/streams/events/s"), None, &[]).status,
        404
    );
}
