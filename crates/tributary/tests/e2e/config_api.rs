//! The config API (issue 18 item 3, SPEC §Config): `POST /config` stores only what it sets,
//! `GET /config?explain=true` says where each value comes from, env-pinned fields give 409,
//! invalid ones 422 naming them, masked secrets survive a write, the saved layer survives a
//! restart; and moving the RTMP listener through the API keeps the process and its HLS
//! viewers while the new port takes publishes and the old one refuses connections.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use tributary_testkit::{LiveSender, free_tcp_port, http_get, wait_until};

use crate::hls::clip;
use crate::server::{Server, send};
use crate::turn::shared;

fn post(server: &Server, body: serde_json::Value) -> crate::server::Answer {
    send("POST", &server.url("/config"), Some(&body.to_string()), &[])
}

/// `POST /config` with `body` is refused with `status` and `code`, naming exactly `fields`.
fn refused(server: &Server, body: serde_json::Value, status: u16, code: &str, fields: &[&str]) {
    let answer = post(server, body);
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], code, "{}", answer.body);
    assert_eq!(paths(&answer), fields, "{}", answer.body);
}

/// The `fields[].path` of an error answer.
pub(crate) fn paths(answer: &crate::server::Answer) -> Vec<String> {
    answer.body["error"]["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .map(|f| f["path"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn post_config_stores_what_it_sets_explains_pins_and_survives_a_restart() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [("TRIBUTARY_MANAGER__FROZEN_GOPS", "4")];
    let server = Server::start(&data, &env);

    // A Host that is not loopback is refused until it is allowed, at once, without a restart.
    let foreign = [("Host", "tv.example.org")];
    let before = send("GET", &server.url("/streams"), None, &foreign);
    assert_eq!(before.status, 403, "{}", before.body);
    let answer = post(
        &server,
        json!({"server": {"allowed_hosts": ["tv.example.org"]},
               "listeners": {"srt": {"passphrase": "correct-horse-battery"}}}),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let global = &answer.body["global_config"];
    assert_eq!(global["server"]["allowed_hosts"], json!(["tv.example.org"]));
    assert_eq!(global["listeners"]["srt"]["passphrase"], "****");
    assert!(
        answer.body["ports"]["http_addr"].is_string(),
        "{}",
        answer.body
    );
    let after = send("GET", &server.url("/streams"), None, &foreign);
    assert_eq!(after.status, 200, "{}", after.body);

    // Where each value comes from.
    let explained = send("GET", &server.url("/config?explain=true"), None, &[]);
    let sources = &explained.body["sources"];
    assert_eq!(sources["server.allowed_hosts"], "store", "{sources}");
    assert_eq!(sources["manager.frozen_gops"], "env");
    assert_eq!(sources["server.http_addr"], "env", "a flag counts as env");
    assert_eq!(sources["buffer.capacity"], "default");
    assert_eq!(explained.body["global_config"]["manager"]["frozen_gops"], 4);

    // `null` switches a subsystem off, at once.
    let off = post(&server, json!({"sessions": null}));
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(off.body["global_config"]["sessions"]["enabled"], false);

    // `manager.*` applies at once (the engine's tests check a running stream follows).
    let manager = post(
        &server,
        json!({"manager": {"input_packet_timeout_sec": 20}}),
    );
    assert_eq!(manager.status, 200, "{}", manager.body);

    // Pinned by the environment: 409 naming the field; the same value is no change.
    let pinned = json!({"manager": {"frozen_gops": 5}});
    refused(
        &server,
        pinned,
        409,
        "PINNED_BY_ENV",
        &["manager.frozen_gops"],
    );
    let same = post(&server, json!({"manager": {"frozen_gops": 4}}));
    assert_eq!(same.status, 200, "{}", same.body);

    // Invalid: 422 naming every field; unknown keys too; nothing changes.
    let invalid = json!({"security": {"publish_auth": "maybe"},
                         "publisher": {"hls": {"live_window": 0, "part_hold_back_sec": 0.5}}});
    let fields = [
        "security.publish_auth",
        "publisher.hls.live_window",
        "publisher.hls.part_hold_back_sec",
    ];
    refused(&server, invalid, 422, "INVALID_FIELD", &fields);
    let unknown = json!({"manager": {"frozen_gopz": 1}});
    refused(
        &server,
        unknown,
        422,
        "UNKNOWN_FIELD",
        &["manager.frozen_gopz"],
    );
    // Not applicable to a running server yet: refused, not stored for later.
    let later = json!({"coordinator": {"reconcile_interval_sec": 20}});
    let field = "coordinator.reconcile_interval_sec";
    refused(&server, later, 422, "UNSUPPORTED", &[field]);
    refused(
        &server,
        json!({"server": null}),
        422,
        "INVALID_FIELD",
        &["server"],
    );

    // A masked secret written back keeps the stored value.
    let masked = post(
        &server,
        json!({"listeners": {"srt": {"passphrase": "****"}}}),
    );
    assert_eq!(masked.status, 200, "{}", masked.body);
    let revealed = send("GET", &server.url("/config?reveal=true"), None, &[]);
    assert_eq!(
        revealed.body["global_config"]["listeners"]["srt"]["passphrase"],
        "correct-horse-battery"
    );

    // Defaults: deterministic, open-streamer's groups.
    let defaults = send("GET", &server.url("/config/defaults"), None, &[]);
    assert_eq!(defaults.status, 200);
    assert_eq!(defaults.body["listeners"]["rtmp"]["port"], 1935);
    assert_eq!(
        defaults.body["transcoder"]["encoder_by_codec_hw"]["h264"]["none"],
        "libx264"
    );
    let again = send("GET", &server.url("/config/defaults"), None, &[]);
    assert_eq!(defaults.body, again.body);

    // The saved layer survives a restart, below the environment.
    server.terminate();
    let server = Server::start(&data, &env);
    let explained = send(
        "GET",
        &server.url("/config?explain=true&reveal=true"),
        None,
        &[],
    );
    let global = &explained.body["global_config"];
    assert_eq!(global["server"]["allowed_hosts"], json!(["tv.example.org"]));
    assert_eq!(
        global["listeners"]["srt"]["passphrase"],
        "correct-horse-battery"
    );
    assert_eq!(
        explained.body["sources"]["listeners.srt.passphrase"],
        "store"
    );
    assert_eq!(explained.body["sources"]["manager.frozen_gops"], "env");
}

#[test]
fn moving_the_rtmp_listener_keeps_the_process_and_its_hls_viewers() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let (old_port, new_port) = (free_tcp_port(), free_tcp_port());
    let toml = format!("[listeners.rtmp]\nlisten_host = \"127.0.0.1\"\nport = {old_port}\n");
    let server = Server::start_config(dir.path(), &toml, "");
    let pid = server.pid();
    for code in ["a", "b"] {
        crate::server::put_publish_stream(&server, code);
    }
    let clip = clip();
    let _a =
        LiveSender::rtmp(&clip, &format!("rtmp://127.0.0.1:{old_port}/live/a")).expect("publish a");
    let playlist_a = server.url("/a/index.m3u8");
    let has_segments = |url: &str| {
        http_get(url)
            .map(|(status, _, body)| {
                status == 200 && body.windows(4).filter(|w| w == b".ts\n").count() >= 2
            })
            .unwrap_or(false)
    };
    wait_until(Duration::from_secs(30), "a's playlist", || {
        has_segments(&playlist_a)
    })
    .unwrap();

    // An HLS viewer of `a` fetches the playlist throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let viewer = {
        let stop = Arc::clone(&stop);
        let url = playlist_a.clone();
        std::thread::spawn(move || {
            let (mut fetched, mut failures) = (0, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match http_get(&url) {
                    Ok((200, _, _)) => fetched += 1,
                    Ok((status, _, _)) => failures.push(format!("status {status}")),
                    Err(e) => failures.push(e.to_string()),
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            (fetched, failures)
        })
    };

    // A port in use: 422 naming the field, and the old listener keeps serving.
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let taken = json!({"listeners": {"rtmp": {"port": busy_port}}});
    refused(
        &server,
        taken,
        422,
        "INVALID_FIELD",
        &["listeners.rtmp.port"],
    );
    assert!(TcpStream::connect(("127.0.0.1", old_port)).is_ok());
    drop(busy);

    let moved = post(&server, json!({"listeners": {"rtmp": {"port": new_port}}}));
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.body["ports"]["rtmp_port"], new_port);
    wait_until(
        Duration::from_secs(5),
        "the old RTMP port to refuse",
        || TcpStream::connect(("127.0.0.1", old_port)).is_err(),
    )
    .unwrap();
    let _b =
        LiveSender::rtmp(&clip, &format!("rtmp://127.0.0.1:{new_port}/live/b")).expect("publish b");
    wait_until(
        Duration::from_secs(30),
        "b's playlist, published on the new port",
        || has_segments(&server.url("/b/index.m3u8")),
    )
    .unwrap();

    stop.store(true, Ordering::Relaxed);
    let (fetched, failures) = viewer.join().unwrap();
    assert!(failures.is_empty(), "the HLS viewer saw {failures:?}");
    assert!(fetched >= 4, "{fetched} playlist fetches");
    assert_eq!(server.pid(), pid, "same process");
    let config = send("GET", &server.url("/config?explain=true"), None, &[]);
    assert_eq!(config.body["ports"]["rtmp_port"], new_port);
    assert_eq!(config.body["sources"]["listeners.rtmp.port"], "store");
    assert_eq!(
        server
            .logged(|line| line["fields"]["message"] == "configuration changed through the API")
            .len(),
        1
    );

    // `security.publish_auth` applies at once: the keyless streams' warning goes.
    let keyless = |server: &Server| {
        server.runtime("a")["warnings"].as_array().is_some_and(|w| {
            w.iter()
                .any(|w| w.as_str().unwrap_or("").contains("no stream_key"))
        })
    };
    assert!(keyless(&server), "{}", server.runtime("a"));
    let open = post(&server, json!({"security": {"publish_auth": "if_set"}}));
    assert_eq!(open.status, 200, "{}", open.body);
    assert!(!keyless(&server), "{}", server.runtime("a"));

    // `security.trusted_proxies` applies at once: the forwarded address is the viewer's.
    let trusted = post(
        &server,
        json!({"security": {"trusted_proxies": ["127.0.0.1"]}}),
    );
    assert_eq!(trusted.status, 200, "{}", trusted.body);
    let forwarded = [
        ("X-Forwarded-For", "198.51.100.7"),
        ("User-Agent", "behind-a-proxy"),
    ];
    let _ = send("GET", &playlist_a, None, &forwarded);
    let sessions = send("GET", &server.url("/sessions?stream=a"), None, &[]);
    let ips: Vec<&str> = sessions.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["user_agent"] == "behind-a-proxy")
        .filter_map(|s| s["ip"].as_str())
        .collect();
    assert_eq!(ips, ["198.51.100.7"], "{}", sessions.body);
}

#[test]
fn moving_the_http_api_answers_then_serves_on_the_new_address() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_config(dir.path(), "[server]\nhttp_addr = \"127.0.0.1:0\"\n", "off");
    let old = server.base.trim_start_matches("http://").to_owned();

    // A port in use: 422 naming the field, and the API stays where it is.
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = json!({"server": {"http_addr": busy.local_addr().unwrap().to_string()}});
    refused(&server, taken, 422, "INVALID_FIELD", &["server.http_addr"]);
    drop(busy);

    let port = free_tcp_port();
    let moved = post(
        &server,
        json!({"server": {"http_addr": format!("127.0.0.1:{port}")}}),
    );
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(
        moved.body["ports"]["http_addr"],
        format!("127.0.0.1:{port}")
    );
    let new_base = format!("http://127.0.0.1:{port}");
    let health = send("GET", &format!("{new_base}/healthz"), None, &[]);
    assert_eq!(health.status, 200);
    wait_until(
        Duration::from_secs(10),
        "the old HTTP address to refuse",
        || TcpStream::connect(&old).is_err(),
    )
    .unwrap();
    let config = send("GET", &format!("{new_base}/config?explain=true"), None, &[]);
    assert_eq!(config.body["sources"]["server.http_addr"], "store");
}
