//! Stream keys resist guessing (issue 13, item 8): a loop of wrong-key publishes from one
//! address is slowed to a trickle of key checks (a doubling block after three failures), every
//! refusal is counted, the right key gets in once the block is over, and another stream keeps
//! playing meanwhile.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tributary_testkit::{ClipSpec, LiveSender, cached_clip, ffmpeg, free_tcp_port, wait_until};

use crate::harden_http::video_frames;
use crate::server::{Server, send};
use crate::turn::shared;

#[test]
fn a_wrong_key_loop_is_slowed_while_other_streams_keep_playing() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{port}"));
    for (code, key) in [("guarded", "right-key-0001"), ("other", "other-key-0002")] {
        let body = format!(
            r#"{{"stream_key": "{key}", "inputs": [{{"url": "publish://"}}], "protocols": {{"rtmp": true}}}}"#
        );
        let answer = send(
            "PUT",
            &server.url(&format!("/streams/{code}")),
            Some(&body),
            &[],
        );
        assert_eq!(answer.status, 201, "{}", answer.body);
    }
    let clip = cached_clip(&ClipSpec::default(), "mp4").expect("encode the test clip");
    let other = format!("rtmp://127.0.0.1:{port}/live/other");
    let _live = LiveSender::rtmp(&clip, &format!("{other}?key=other-key-0002")).unwrap();
    wait_until(
        Duration::from_secs(30),
        "the other stream's publisher",
        || server.runtime("other")["inputs"][0]["publisher_connected"] == true,
    )
    .unwrap();

    let publish = |key: &str| {
        ffmpeg()
            .args(["-t", "1", "-i"])
            .arg(&clip)
            .args(["-c", "copy", "-f", "flv"])
            .arg(format!("rtmp://127.0.0.1:{port}/live/guarded?key={key}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    // Guessing for 8 s.
    let start = Instant::now();
    let mut attempts = 0;
    while start.elapsed() < Duration::from_secs(8) {
        assert!(
            !publish(&format!("guess-{attempts:04}")),
            "a wrong key got in"
        );
        attempts += 1;
    }
    let refused = |needle: &str| {
        server
            .logged(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("publish refused") && m.contains(needle))
            })
            .len()
    };
    // Each refusal is logged as its connection closes, a moment after ffmpeg gives up.
    wait_until(
        Duration::from_secs(5),
        "a log line per refused publish",
        || refused("publish refused") >= attempts,
    )
    .unwrap();
    let checked = refused("wrong key");
    let blocked = refused("too many failed publishes");
    // 3 free failures, then blocks of 1, 2 and 4 s: at most 3 + 4 keys compared in 8 s.
    assert!(
        checked <= 7,
        "{checked} keys checked in {attempts} attempts"
    );
    assert!(
        blocked >= 1 && checked + blocked == attempts,
        "{checked} + {blocked} != {attempts}"
    );
    assert_eq!(
        refused("publishes refused since start"),
        attempts,
        "every refusal is counted"
    );

    // The other stream played throughout.
    assert!(video_frames(&other, 3) > 30, "the other stream plays");
    // Once the block is over, the right key gets in.
    let mut right = None;
    wait_until(Duration::from_secs(30), "the right key to get in", || {
        let mut sender = LiveSender::rtmp(
            &clip,
            &format!("rtmp://127.0.0.1:{port}/live/guarded?key=right-key-0001"),
        )
        .unwrap();
        let connected = wait_until(Duration::from_secs(3), "a publisher", || {
            server.runtime("guarded")["inputs"][0]["publisher_connected"] == true
        })
        .is_ok();
        if connected {
            right = Some(sender);
        } else {
            sender.kill();
        }
        connected
    })
    .unwrap();
    assert!(right.is_some());
}

/// A `stream_key` shorter than 10 characters is refused on every write (PUT, POST, PATCH) with
/// a 422 naming the field and the minimum, never quoting the key; nothing is stored. An empty
/// key (none) and a key of 10 are accepted.
#[test]
fn a_short_stream_key_is_refused_on_every_write() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let url = server.url("/streams/keyed");
    let body =
        |key: &str| format!(r#"{{"stream_key": "{key}", "inputs": [{{"url": "publish://"}}]}}"#);
    let short = body("s3cret-k3");
    let refused = |method: &str, body: &str| {
        let answer = send(method, &url, Some(body), &[]);
        assert_eq!(answer.status, 422, "{method}: {}", answer.body);
        assert_eq!(answer.body["error"]["code"], "INVALID_FIELD");
        let field = &answer.body["error"]["fields"][0];
        assert_eq!(field["path"], "stream_key", "{}", answer.body);
        let message = field["message"].as_str().unwrap();
        assert!(message.contains("at least 10 characters"), "{message}");
        assert!(
            !answer.body.to_string().contains("s3cret-k3"),
            "{}",
            answer.body
        );
    };

    refused("PUT", &short);
    refused("POST", &short);
    assert_eq!(
        send("GET", &url, None, &[]).status,
        404,
        "nothing was stored"
    );

    let created = send("PUT", &url, Some(&body("ten-chars!")), &[]);
    assert_eq!(created.status, 201, "{}", created.body);
    refused("PATCH", r#"{"stream_key": "s3cret-k3"}"#);
    refused("POST", &short);
    refused("PUT", &short);
    let revealed = send("GET", &server.url("/streams/keyed?reveal=true"), None, &[]);
    assert_eq!(
        revealed.body["data"]["stream_key"], "ten-chars!",
        "the stored key is kept"
    );

    // Another field's PATCH and the mask written back keep the key; "" removes it.
    let renamed = send("PATCH", &url, Some(r#"{"name": "Keyed"}"#), &[]);
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let echoed = send("PUT", &url, Some(&body("****")), &[]);
    assert_eq!(echoed.status, 200, "{}", echoed.body);
    let cleared = send("PATCH", &url, Some(r#"{"stream_key": ""}"#), &[]);
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    let revealed = send("GET", &server.url("/streams/keyed?reveal=true"), None, &[]);
    assert_eq!(revealed.body["data"]["stream_key"], "");
}
