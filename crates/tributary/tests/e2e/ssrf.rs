//! The SSRF guard from outside (issue 13, item 4): a server in `strict` mode refuses to pull
//! from or push to loopback, by address and by name, while its other streams play on; the
//! same pull plays once `security.allow_cidrs` exempts the address.

use std::time::Duration;

use tributary_testkit::{LiveSender, free_udp_port, wait_until};

use crate::hls::{clip, create_udp_stream, wait_new_segment, wait_segments};
use crate::server::{Server, put_stream as put};
use crate::turn::shared;

/// The messages of `runtime.inputs[0].errors` of `code`.
fn input_errors(server: &Server, code: &str) -> Vec<String> {
    server.runtime(code)["inputs"][0]["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["message"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_input_error(server: &Server, code: &str, needle: &str) {
    let mut seen = Vec::new();
    wait_until(Duration::from_secs(30), needle, || {
        seen = input_errors(server, code);
        seen.iter().any(|e| e.contains(needle))
    })
    .unwrap_or_else(|e| panic!("{e}: {code} errors {seen:?}"));
}

#[test]
fn strict_mode_refuses_loopback_pulls_and_pushes_while_other_streams_play() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("TRIBUTARY_SECURITY__SSRF_GUARD", "strict")]);
    let port = free_udp_port();
    create_udp_stream(&server, "origin", port);
    let _sender = LiveSender::start(&clip(), port).expect("start the UDP sender");
    wait_segments(&server, "origin", 2, Duration::from_secs(30));

    // An HLS pull of the server's own playlist, by address.
    let own = server.url("/origin/index.m3u8");
    put(
        &server,
        "by-address",
        &format!(r#"{{"inputs":[{{"url":"{own}"}}]}}"#),
    );
    // The same by name, and an RTMP pull by name.
    let by_name = own.replace("127.0.0.1", "localhost");
    put(
        &server,
        "by-name",
        &format!(r#"{{"inputs":[{{"url":"{by_name}"}}]}}"#),
    );
    put(
        &server,
        "rtmp-pull",
        r#"{"inputs":[{"url":"rtmp://localhost:19350/live/x"}]}"#,
    );
    // A push target on loopback, from a stream that plays.
    let push_port = free_udp_port();
    let _pusher = LiveSender::start(&clip(), push_port).expect("start the UDP sender");
    put(
        &server,
        "pusher",
        &format!(
            r#"{{"inputs":[{{"url":"udp://127.0.0.1:{push_port}"}}],"protocols":{{"hls":true}},
                "push":[{{"url":"rtmp://127.0.0.1:19351/live/KEY","enabled":true}}]}}"#
        ),
    );

    wait_input_error(&server, "by-address", "blocked by ssrf_guard: 127.0.0.1");
    wait_input_error(&server, "by-name", "blocked by ssrf_guard:");
    wait_input_error(&server, "rtmp-pull", "blocked by ssrf_guard:");
    let mut push = serde_json::Value::Null;
    wait_until(Duration::from_secs(30), "the push refused", || {
        push = server.runtime("pusher")["publisher"]["pushes"][0].clone();
        push["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("blocked by ssrf_guard: 127.0.0.1"))
    })
    .unwrap_or_else(|e| panic!("{e}: {push}"));
    // The key stays masked in what the error shows.
    assert!(!push.to_string().contains("KEY"), "{push}");

    // The streams that need no outbound connection kept playing all along.
    wait_new_segment(&server, "origin", Duration::from_secs(20));
    wait_segments(&server, "pusher", 2, Duration::from_secs(30));
    drop(server);

    // Exempting the address lets the same pull play.
    let dir = tempfile::tempdir().unwrap();
    let toml = "[security]\nssrf_guard = \"strict\"\nallow_cidrs = [\"127.0.0.1/32\"]\n";
    let server = Server::start_config(dir.path(), toml, "off");
    create_udp_stream(&server, "origin", port);
    wait_segments(&server, "origin", 2, Duration::from_secs(30));
    put(
        &server,
        "by-address",
        &format!(
            r#"{{"inputs":[{{"url":"{}"}}],"protocols":{{"hls":true}}}}"#,
            server.url("/origin/index.m3u8")
        ),
    );
    wait_segments(&server, "by-address", 2, Duration::from_secs(40));
    assert!(
        !input_errors(&server, "by-address")
            .iter()
            .any(|e| e.contains("ssrf_guard")),
        "{:?}",
        input_errors(&server, "by-address")
    );
}
