//! The REST API against the real binary: CRUD, validation errors, auth, restart persistence
//! and durability across `kill -9`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use tributary_testkit::free_udp_port;

use crate::server::{Server, send};
use crate::turn::shared;

#[test]
fn create_get_list_update_delete_restart() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let url = |p: &str| server.url(p);

    let created = send(
        "PUT",
        &url("/streams/sports/ch1"),
        Some(r#"{"name": "Ch 1", "stream_key": "k3y-s3cret-01", "tags": ["a"]}"#),
        &[],
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["data"]["code"], "sports/ch1");
    assert_eq!(
        created.body["data"]["stream_key"], "****",
        "secrets are masked"
    );
    assert_eq!(created.etag.as_deref(), Some("\"r1\""));

    let got = send("GET", &url("/streams/sports/ch1"), None, &[]);
    assert_eq!(got.status, 200);
    assert_eq!(got.body["data"]["name"], "Ch 1");
    assert_eq!(got.body["data"]["runtime"]["status"], "stopped");
    assert_eq!(got.body["data"]["runtime"]["pipeline_active"], false);
    assert_eq!(got.body["data"]["source"], "config");
    let revealed = send("GET", &url("/streams/sports/ch1?reveal=true"), None, &[]);
    assert_eq!(revealed.body["data"]["stream_key"], "k3y-s3cret-01");

    // Replace with POST; writing the mask back keeps the stored key.
    let replaced = send(
        "POST",
        &url("/streams/sports/ch1"),
        Some(r#"{"name": "Ch 1 HD", "stream_key": "****"}"#),
        &[],
    );
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.etag.as_deref(), Some("\"r2\""));
    let revealed = send("GET", &url("/streams/sports/ch1?reveal=true"), None, &[]);
    assert_eq!(revealed.body["data"]["stream_key"], "k3y-s3cret-01");
    assert_eq!(
        revealed.body["data"]["tags"],
        json!([]),
        "PUT/POST replace the whole record"
    );

    // PATCH merges; If-Match guards.
    let patched = send(
        "PATCH",
        &url("/streams/sports/ch1"),
        Some(r#"{"description": "late game"}"#),
        &[("If-Match", "\"r2\"")],
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["data"]["name"], "Ch 1 HD");
    assert_eq!(patched.body["data"]["description"], "late game");
    let stale = send(
        "PUT",
        &url("/streams/sports/ch1"),
        Some("{}"),
        &[("If-Match", "\"r2\"")],
    );
    assert_eq!(stale.status, 412);
    assert_eq!(stale.body["error"]["code"], "PRECONDITION_FAILED");

    // Dry run persists nothing.
    let dry = send(
        "PUT",
        &url("/streams/sports/ch1?dry_run=true"),
        Some(r#"{"name": "other", "disabled": true}"#),
        &[],
    );
    assert_eq!(dry.status, 200, "{}", dry.body);
    assert!(dry.body["data"]["diff"].is_object());
    assert_eq!(
        send("GET", &url("/streams/sports/ch1"), None, &[]).body["data"]["name"],
        "Ch 1 HD"
    );

    let second = send(
        "PUT",
        &url("/streams/b"),
        Some(r#"{"disabled": true}"#),
        &[],
    );
    assert_eq!(second.status, 201);
    let list = send("GET", &url("/streams"), None, &[]);
    assert_eq!(list.body["total"], 2);
    let codes: Vec<_> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].clone())
        .collect();
    assert_eq!(codes, [json!("b"), json!("sports/ch1")], "sorted by code");
    let stopped = send("GET", &url("/streams?status=stopped"), None, &[]);
    assert_eq!(stopped.body["total"], 2);
    let bad_filter = send("GET", &url("/streams?status=sleepy"), None, &[]);
    assert_eq!(bad_filter.status, 400);
    assert_eq!(bad_filter.body["error"]["code"], "INVALID_QUERY");

    // Restart: unknown → 404, disabled → 409.
    assert_eq!(
        send("POST", &url("/streams/nope/restart"), None, &[]).status,
        404
    );
    let disabled = send("POST", &url("/streams/b/restart"), None, &[]);
    assert_eq!(disabled.status, 409);
    assert_eq!(disabled.body["error"]["code"], "STREAM_DISABLED");

    assert_eq!(
        send("DELETE", &url("/streams/sports/ch1"), None, &[]).status,
        204
    );
    assert_eq!(
        send("GET", &url("/streams/sports/ch1"), None, &[]).status,
        404
    );
    assert_eq!(
        send("DELETE", &url("/streams/sports/ch1"), None, &[]).status,
        204,
        "idempotent"
    );

    let config = send("GET", &url("/config"), None, &[]);
    assert_eq!(config.status, 200);
    assert_eq!(
        config.body["ports"]["rtmp_port"], 0,
        "listeners not landed show port 0"
    );
    assert_eq!(
        config.body["ports"]["http_addr"],
        server.base.trim_start_matches("http://")
    );
    let doc = send("GET", &url("/swagger/doc.json"), None, &[]);
    assert_eq!(doc.status, 200);
    assert!(doc.body["paths"]["/streams/{code}"].is_object());
    assert!(doc.body["components"]["schemas"]["Stream"].is_object());
    assert_eq!(send("GET", &url("/swagger/"), None, &[]).status, 200);
}

#[test]
fn invalid_bodies_get_4xx_naming_the_field() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let put = |code: &str, body: &str| {
        send(
            "PUT",
            &server.url(&format!("/streams/{code}")),
            Some(body),
            &[],
        )
    };

    let syntax = put("a", r#"{"name": "x",}"#);
    assert_eq!(syntax.status, 400);
    assert_eq!(syntax.body["error"]["code"], "INVALID_BODY");
    assert!(
        syntax.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 1 column")
    );

    let empty = put("a", "");
    assert_eq!(empty.status, 400);
    assert_eq!(empty.body["error"]["code"], "EMPTY_BODY");

    let unknown = put("a", r#"{"inputs": [{"url": "publish://", "prio": 1}]}"#);
    assert_eq!(unknown.status, 422);
    assert_eq!(unknown.body["error"]["code"], "UNKNOWN_FIELD");
    assert_eq!(unknown.body["error"]["fields"][0]["path"], "inputs[0].prio");

    let wrong_type = put("a", r#"{"disabled": "yes"}"#);
    assert_eq!(wrong_type.status, 422);
    assert_eq!(wrong_type.body["error"]["fields"][0]["path"], "disabled");

    let scheme = put("a", r#"{"inputs": [{"url": "rtmq://x/y"}]}"#);
    assert_eq!(scheme.status, 422);
    assert_eq!(scheme.body["error"]["code"], "INVALID_INPUT_URL");
    assert_eq!(
        scheme.body["error"]["message"],
        "inputs[0].url: unknown scheme \"rtmq\""
    );

    let priority = put(
        "a",
        r#"{"inputs": [{"url": "udp://:5000", "priority": 3}]}"#,
    );
    assert_eq!(priority.status, 422);
    let paths: Vec<_> = priority.body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].clone())
        .collect();
    assert!(
        paths.contains(&json!("inputs[0].priority")),
        "{}",
        priority.body
    );

    // A rung to push needs a ladder: this stream has no transcoder.
    let no_ladder = put(
        "a",
        r#"{"push": [{"url": "rtmp://a.example/b/c", "profile": "track_2"}]}"#,
    );
    assert_eq!(no_ladder.status, 422, "{}", no_ladder.body);
    assert_eq!(no_ladder.body["error"]["code"], "INVALID_FIELD");
    assert_eq!(
        no_ladder.body["error"]["fields"][0]["path"],
        "push[0].profile"
    );

    let reserved = put("api", "{}");
    assert_eq!(reserved.status, 422);
    assert_eq!(reserved.body["error"]["code"], "INVALID_CODE");

    let huge = format!(r#"{{"description": "{}"}}"#, "x".repeat(1 << 20));
    let too_big = put("a", &huge);
    assert_eq!(too_big.status, 413);
    assert_eq!(too_big.body["error"]["code"], "BODY_TOO_LARGE");

    let patch_missing = send("PATCH", &server.url("/streams/ghost"), Some("{}"), &[]);
    assert_eq!(patch_missing.status, 404);

    // Nothing was stored by any of these, and the server still answers.
    let list = send("GET", &server.url("/streams"), None, &[]);
    assert_eq!(list.body["total"], 0);
}

#[test]
fn input_options_that_cannot_work_are_422_at_save_naming_the_field() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let cases = [
        (
            r#"{"inputs": [{"url": "udp://:5000?pkt_size=0"}]}"#,
            "INVALID_INPUT_URL",
            "inputs[0].url",
            "pkt_size",
        ),
        (
            r#"{"inputs": [{"url": "udp://:5000", "params": {"pkt_size": "0"}}]}"#,
            "INVALID_FIELD",
            "inputs[0].params.pkt_size",
            "\"0\"",
        ),
        (
            r#"{"inputs": [{"url": "udp://:5000"}, {"url": "/srv/a.ts?loop=sometimes", "priority": 1}]}"#,
            "INVALID_INPUT_URL",
            "inputs[1].url",
            "loop",
        ),
        (
            r#"{"inputs": [{"url": "/srv/a.ts", "params": {"loop": "sometimes"}}]}"#,
            "INVALID_FIELD",
            "inputs[0].params.loop",
            "sometimes",
        ),
        (
            r#"{"inputs": [{"url": "file:///srv/clip.avi"}]}"#,
            "INVALID_INPUT_URL",
            "inputs[0].url",
            "unsupported file type",
        ),
        (
            r#"{"inputs": [{"url": "file://vod1/clip.mp4"}]}"#,
            "INVALID_INPUT_URL",
            "inputs[0].url",
            "VOD mount",
        ),
        (
            r#"{"inputs": [{"url": "udp://:5000?source=10.0.0.1"}]}"#,
            "INVALID_INPUT_URL",
            "inputs[0].url",
            "source",
        ),
        (
            r#"{"inputs": [{"url": "http://o.example.org/live.ts", "headers": {"Bad Name": "x"}}]}"#,
            "INVALID_FIELD",
            "inputs[0].headers.Bad Name",
            "header name",
        ),
        (
            r#"{"inputs": [{"url": "udp://:5000", "program": 70000}]}"#,
            "INVALID_FIELD",
            "inputs[0].program",
            "70000",
        ),
        (
            r#"{"inputs": [{"url": "rtmp://cdn.example.org/only-app"}]}"#,
            "INVALID_INPUT_URL",
            "inputs[0].url",
            "<stream name>",
        ),
        (
            r#"{"inputs": [{"url": "publish://?slot=a"}, {"url": "publish:///?slot=a", "priority": 1}]}"#,
            "DUPLICATE_INPUT",
            "inputs[1].url",
            "slot name",
        ),
        (
            r#"{"inputs": [{"url": "publish://?key=x"}]}"#,
            "INVALID_INPUT_URL",
            "inputs[0].url",
            "?slot=<name>",
        ),
        (
            r#"{"inputs": [{"url": "publish://"}], "push": [{"url": "rtmp://x.example.org/only-app"}]}"#,
            "INVALID_FIELD",
            "push[0].url",
            "<stream name>",
        ),
        (
            r#"{"inputs": [{"url": "publish://"}], "push": [{"url": "rtmp://x.example.org/app/k", "profile": "track_1"}]}"#,
            "INVALID_FIELD",
            "push[0].profile",
            "this stream has none",
        ),
        (
            r#"{"inputs": [{"url": "publish://"}], "transcoder": {"video": {"profiles": [{}]}},
                "push": [{"url": "rtmp://x.example.org/app/k", "profile": "track_2"}]}"#,
            "INVALID_FIELD",
            "push[0].profile",
            "which has track_1 (",
        ),
        (
            r#"{"inputs": [{"url": "publish://"}], "push": [{"url": "rtmp://x.example.org/app/k", "profile": "1080p"}]}"#,
            "INVALID_FIELD",
            "push[0].profile",
            "track_<N>",
        ),
    ];
    for (body, code, path, needle) in cases {
        let answer = send("PUT", &server.url("/streams/opts"), Some(body), &[]);
        assert_eq!(answer.status, 422, "{body}: {}", answer.body);
        let error = &answer.body["error"];
        assert_eq!(error["code"], code, "{body}: {error}");
        assert_eq!(error["fields"][0]["path"], path, "{body}: {error}");
        assert!(
            error["fields"][0]["message"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{body}: {error}"
        );
    }
    // Nothing was stored; a playback-feed push (`profile: ""`) and good options are fine.
    assert_eq!(
        send("GET", &server.url("/streams"), None, &[]).body["total"],
        0
    );
    let good = r#"{"inputs": [{"url": "udp://:5000?pkt_size=188", "params": {"rtp": "0"}},
                              {"url": "/srv/a.ts?loop=false", "priority": 1}],
                   "push": [{"url": "rtmp://x.example.org/app/k", "profile": ""}]}"#;
    let answer = send("PUT", &server.url("/streams/opts"), Some(good), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(
        answer.body["data"]["inputs"][0]["url"],
        "udp://:5000?pkt_size=188"
    );
}

#[test]
fn admin_routes_need_a_token_when_loopback_bypass_is_off() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("TRIBUTARY_SECURITY__LOOPBACK_BYPASS", "false"),
            ("TRIBUTARY_SECURITY__ADMIN_TOKEN", "t0k3n"),
        ],
    );
    let refused = send("GET", &server.url("/streams"), None, &[]);
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body["error"]["code"], "UNAUTHORIZED");
    let wrong = send(
        "GET",
        &server.url("/streams"),
        None,
        &[("Authorization", "Bearer nope")],
    );
    assert_eq!(wrong.status, 401);
    let ok = send(
        "GET",
        &server.url("/streams"),
        None,
        &[("Authorization", "Bearer t0k3n")],
    );
    assert_eq!(ok.status, 200);
    assert_eq!(
        send("GET", &server.url("/healthz"), None, &[]).status,
        200,
        "public route"
    );
    assert_eq!(
        send("GET", &server.url("/readyz"), None, &[]).status,
        200,
        "public route"
    );
    assert_eq!(
        send("GET", &server.url("/metrics"), None, &[]).status,
        401,
        "metrics are an admin route by default"
    );
}

#[test]
fn public_metrics_open_metrics_and_nothing_else() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("TRIBUTARY_SECURITY__LOOPBACK_BYPASS", "false"),
            ("TRIBUTARY_SECURITY__ADMIN_TOKEN", "t0k3n"),
            ("TRIBUTARY_SECURITY__PUBLIC_METRICS", "true"),
        ],
    );
    let metrics = ureq::get(&server.url("/metrics")).call().unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.into_string().unwrap().contains("tributary_"));
    assert_eq!(send("GET", &server.url("/streams"), None, &[]).status, 401);
    assert_eq!(send("GET", &server.url("/config"), None, &[]).status, 401);
}

#[test]
fn generated_admin_token_is_written_once() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[("TRIBUTARY_SECURITY__LOOPBACK_BYPASS", "false")],
    );
    let token = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    let auth = format!("Bearer {}", token.trim());
    assert_eq!(
        send(
            "GET",
            &server.url("/streams"),
            None,
            &[("Authorization", &auth)]
        )
        .status,
        200
    );
    assert_eq!(server.terminate().code(), Some(0));
    let again = Server::start(
        dir.path(),
        &[("TRIBUTARY_SECURITY__LOOPBACK_BYPASS", "false")],
    );
    assert_eq!(
        send(
            "GET",
            &again.url("/streams"),
            None,
            &[("Authorization", &auth)]
        )
        .status,
        200
    );
}

#[test]
fn process_restart_keeps_every_stream() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let udp = |port: u16, disabled: bool| {
        format!(
            r#"{{"inputs": [{{"url": "udp://127.0.0.1:{port}"}}], "protocols": {{"hls": true}},
                "disabled": {disabled}}}"#
        )
    };
    let (live, off) = (udp(free_udp_port(), false), udp(free_udp_port(), true));
    for (code, body) in [
        ("a", r#"{"name": "A"}"#),
        ("b/c", r#"{"name": "BC", "disabled": true}"#),
        ("d", r#"{"name": "D", "tags": ["x", "y"]}"#),
        ("e", live.as_str()),
        ("f", off.as_str()),
    ] {
        assert_eq!(
            send(
                "PUT",
                &server.url(&format!("/streams/{code}")),
                Some(body),
                &[]
            )
            .status,
            201
        );
    }
    let before = send("GET", &server.url("/streams?reveal=true"), None, &[]).body;
    assert_eq!(
        server.terminate().code(),
        Some(0),
        "graceful shutdown exits 0"
    );

    let server = Server::start(dir.path(), &[]);
    let after = send("GET", &server.url("/streams?reveal=true"), None, &[]).body;
    assert_eq!(after["total"], 5);
    // Boot started the enabled stream with inputs, and only it.
    let running = |code: &str| {
        send("GET", &server.url(&format!("/streams/{code}")), None, &[]).body["data"]["runtime"]
            ["pipeline_active"]
            .clone()
    };
    assert_eq!(running("e"), true);
    for code in ["a", "b/c", "d", "f"] {
        assert_eq!(running(code), false, "{code} must not run");
    }
    for (b, a) in before["data"]
        .as_array()
        .unwrap()
        .iter()
        .zip(after["data"].as_array().unwrap())
    {
        let mut b = b.clone();
        let mut a = a.clone();
        b.as_object_mut().unwrap().remove("runtime");
        a.as_object_mut().unwrap().remove("runtime");
        assert_eq!(a, b);
    }
}

#[test]
fn acknowledged_creates_survive_kill_9() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let threads: Vec<_> = (0..20)
        .map(|t| {
            let base = server.base.clone();
            let acked = acked.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    let code = format!("s{t:02}-{i:02}");
                    let body = format!(r#"{{"name": "{code}", "tags": ["t{t}"]}}"#);
                    let answer = send("PUT", &format!("{base}/streams/{code}"), Some(&body), &[]);
                    if (200..300).contains(&answer.status) {
                        acked.lock().unwrap().insert(code);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    server.kill9();
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 200, "every create was answered 2xx");

    let server = Server::start(dir.path(), &[]);
    let list = send("GET", &server.url("/streams"), None, &[]).body;
    let stored: BTreeSet<String> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let code = s["code"].as_str().unwrap().to_owned();
            assert_eq!(s["name"], code.as_str(), "record intact");
            code
        })
        .collect();
    let missing: Vec<_> = acked.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but lost after kill -9: {missing:?}"
    );
}

/// Regression (issue 12, defect a): a write stuck behind the stream's lifecycle queue past
/// the admin timeout gets the JSON `BUSY` error (SPEC §API), not an empty 503 from the HTTP
/// layer. The store is held write-locked by `sqlite3`, so the stream's actor waits on its
/// upsert; the admin timeout is 1 s so the test does not take 120.
#[test]
fn a_write_stuck_past_the_admin_timeout_gets_the_json_busy_error() {
    let _turn = shared();
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("TRIBUTARY_SERVER__ADMIN_TIMEOUT_SEC", "1")]);
    let created = send("PUT", &server.url("/streams/stuck"), Some("{}"), &[]);
    assert_eq!(created.status, 201, "{}", created.body);

    let mut locker = Command::new("sqlite3")
        .arg(dir.path().join("tributary.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("sqlite3 (scripts/test installs it)");
    let mut stdin = locker.stdin.take().unwrap();
    writeln!(stdin, "BEGIN EXCLUSIVE;\nSELECT 'locked';").unwrap();
    let mut line = String::new();
    BufReader::new(locker.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked", "sqlite3 did not take the write lock");

    let started = Instant::now();
    let stuck = send(
        "PUT",
        &server.url("/streams/stuck"),
        Some(r#"{"name": "renamed"}"#),
        &[],
    );
    let waited = started.elapsed();
    writeln!(stdin, "COMMIT;").unwrap();
    drop(stdin);
    locker.wait().unwrap();

    assert_eq!(stuck.status, 503, "{}", stuck.body);
    assert_eq!(stuck.body["error"]["code"], "BUSY", "body: {}", stuck.body);
    let message = stuck.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("stream stuck"), "{message}");
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
    // The server is fine afterwards.
    let got = send("GET", &server.url("/streams/stuck"), None, &[]);
    assert_eq!(got.status, 200, "{}", got.body);
}

/// An API request gets a request id (`x-request-id`) and an access-log line naming it; a
/// media request, the viewers' hot path, gets neither.
#[test]
fn api_requests_are_logged_with_a_request_id_and_media_requests_are_not() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = ureq::get(&server.url("/streams")).call().unwrap();
    let id = api
        .header("x-request-id")
        .expect("an API response names its request id")
        .to_owned();
    let media = match ureq::get(&server.url("/nowhere/index.m3u8")).call() {
        Err(ureq::Error::Status(404, response)) => response,
        other => panic!("a missing playlist is 404: {other:?}"),
    };
    assert_eq!(media.header("x-request-id"), None);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines = server.logged(|l| l["fields"]["message"] == "http");
        if lines
            .iter()
            .any(|l| l["fields"]["request_id"] == id.as_str())
        {
            assert!(
                lines
                    .iter()
                    .all(|l| l["fields"]["path"] != "/nowhere/index.m3u8"),
                "{lines:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no access-log line for request {id}: {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
