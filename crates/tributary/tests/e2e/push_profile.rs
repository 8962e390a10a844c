//! Pushing one rung of an ABR ladder (`push[].profile`, SPEC §Push): a live source through a
//! 2-rung libx264 ladder (1280x720, 640x360) pushes `track_2` to an `ffmpeg -listen 1`
//! standing in for a platform, which receives 640x360 H.264 with the ladder's AAC; a second
//! target pushes the playback feed to another stream of the same server. Editing the first
//! target's profile to `track_1` restarts that target only (the other keeps its connection,
//! FFmpeg is not restarted) and the platform then receives 1280x720, with audio. A stream
//! write that drops the rung a target pushes is refused naming `push[0].profile`; a template
//! edit that drops it leaves the target `failed` with the reason and a `push.state_changed`
//! event (nothing else pushed), until the template brings the rung back. In `per_profile`
//! mode an edit of the pushed rung restarts its FFmpeg only: the target stays connected and
//! the platform's timeline only rises and decodes cleanly across the restart.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tributary_testkit::{
    LiveSender, decode_errors, free_tcp_port, free_udp_port, probe_packets, probe_streams,
    rising_dts, wait_until,
};

use crate::events::events;
use crate::hls::clip;
use crate::rtmp_relay::platform;
use crate::server::{Server, put_publish_stream, put_stream, send};
use crate::turn::heavy;

#[test]
fn a_target_pushes_the_rung_its_profile_names_and_follows_an_edit() {
    let (_turn, dir, server, rtmp) = with_receiver();
    let udp = free_udp_port();
    let target = free_tcp_port();
    let body = |profile: &str| {
        format!(
            r#"{{"inputs":[{{"url":"udp://127.0.0.1:{udp}"}}],
                "transcoder":{{"audio":{{"bitrate":96}},"video":{{"profiles":[
                  {{"width":1280,"height":720,"bitrate":1500,"preset":"ultrafast"}},
                  {{"width":640,"height":360,"bitrate":500,"preset":"ultrafast"}}]}}}},
                "push":[{{"url":"rtmp://127.0.0.1:{target}/live/x","enabled":true,
                          "timeout_sec":3,"retry_timeout_sec":1,"profile":"{profile}"}},
                        {{"url":"rtmp://127.0.0.1:{rtmp}/live/recv","enabled":true,
                          "timeout_sec":3,"retry_timeout_sec":1}}]}}"#
        )
    };
    let first = dir.path().join("first.ts");
    let mut listener = platform(target, &first);
    put_stream(&server, "ladder", &body("track_2"));
    let _sender = LiveSender::start(&clip(), udp).expect("start the UDP sender");

    let rung = wait_active(&server, "track_2", None);
    let feed = wait_active(&server, "", None);
    wait_media(&first);
    assert_picture(&first, 640, 360);

    // The profile edited: that target restarts, on the other rung.
    let answer = send(
        "PUT",
        &server.url("/streams/ladder"),
        Some(&body("track_1")),
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    listener.kill();
    let second = dir.path().join("second.ts");
    let mut listener = platform(target, &second);
    wait_active(&server, "track_1", Some(&rung["connected_at"]));
    wait_media(&second);
    listener.kill();
    assert_picture(&second, 1280, 720);

    // Nothing else restarted: the playback-feed target kept its connection, FFmpeg ran on.
    let kept = push_with(&server, "").expect("the playback-feed target");
    assert_eq!(kept["status"], "active", "{kept}");
    assert_eq!(kept["connected_at"], feed["connected_at"], "{kept}");
    assert_eq!(server.runtime("recv")["inputs"][0]["status"], "active");
    let runtime = server.runtime("ladder");
    for profile in runtime["transcoder"]["profiles"].as_array().unwrap() {
        assert_eq!(profile["restart_count"], 0, "{runtime}");
    }
}

#[test]
fn a_pushed_rung_whose_ffmpeg_restarts_reaches_the_platform_as_one_timeline() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let udp = free_udp_port();
    let target = free_tcp_port();
    let body = |kbps: u32| {
        format!(
            r#"{{"inputs":[{{"url":"udp://127.0.0.1:{udp}"}}],
                "transcoder":{{"mode":"per_profile","audio":{{"bitrate":64}},"video":{{"profiles":[
                  {{"width":640,"height":360,"bitrate":600,"preset":"ultrafast"}},
                  {{"width":320,"height":180,"bitrate":{kbps},"preset":"ultrafast"}}]}}}},
                "push":[{{"url":"rtmp://127.0.0.1:{target}/live/x","enabled":true,
                          "timeout_sec":3,"retry_timeout_sec":1,"profile":"track_2"}}]}}"#
        )
    };
    let out = dir.path().join("rung.ts");
    let mut listener = platform(target, &out);
    put_stream(&server, "ladder", &body(200));
    let _sender = LiveSender::start(&clip(), udp).expect("start the UDP sender");
    let active = wait_active(&server, "track_2", None);
    let size = || std::fs::metadata(&out).map_or(0, |m| m.len());
    wait_until(Duration::from_secs(40), "media at the platform", || {
        size() > 150_000
    })
    .unwrap();
    let pid =
        |server: &Server| server.runtime("ladder")["transcoder"]["profiles"][1]["pid"].clone();
    let before = pid(&server);

    // The pushed rung edited: its FFmpeg restarts (from an earlier keyframe of the source).
    let answer = send("PUT", &server.url("/streams/ladder"), Some(&body(300)), &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let at_edit = size();
    wait_until(Duration::from_secs(40), "a new FFmpeg for track_2", || {
        let now = pid(&server);
        now.is_u64() && now != before
    })
    .unwrap();
    wait_until(Duration::from_secs(40), "media after the restart", || {
        size() > at_edit + 200_000
    })
    .unwrap();
    listener.kill();

    // The same connection throughout, and one timeline at the platform.
    let kept = push_with(&server, "track_2").expect("the target");
    assert_eq!(kept["connected_at"], active["connected_at"], "{kept}");
    let path = out.to_str().unwrap();
    let video = rising_dts(path, "v").unwrap();
    let audio = rising_dts(path, "a").unwrap();
    assert!(video.len() > 100, "{} video packets in {path}", video.len());
    assert!(audio.len() > 100, "{} audio packets in {path}", audio.len());
    // The tail may be cut by the kill: all but the last second.
    let span = video.last().unwrap() - video[0];
    let errors = decode_errors(path, span - 1.0).unwrap();
    assert!(
        errors.trim().is_empty(),
        "{path} decodes with errors:\n{errors}"
    );
}

/// A server (a heavy turn, see [`heavy`]) with an RTMP listener and stream `recv` fed by a
/// publisher, which a push target of another stream can publish to: the guard, the data
/// directory, the server and its RTMP port.
fn with_receiver() -> (crate::turn::Turn, tempfile::TempDir, Server, u16) {
    let turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let rtmp = free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{rtmp}"));
    put_publish_stream(&server, "recv");
    (turn, dir, server, rtmp)
}

/// The push target of stream `ladder` with `track` (`""`: the playback-feed target).
fn push_with(server: &Server, track: &str) -> Option<Value> {
    let runtime = server.runtime("ladder");
    let pushes = runtime["publisher"]["pushes"].as_array()?.clone();
    pushes.into_iter().find(|p| match track {
        "" => p.get("track").is_none(),
        track => p["track"] == track,
    })
}

/// Waits until the target pushing `track` is active (on a connection other than `before`);
/// returns its runtime entry.
fn wait_active(server: &Server, track: &str, before: Option<&Value>) -> Value {
    let mut state = Value::Null;
    wait_until(
        Duration::from_secs(60),
        &format!("the {track:?} push to become active"),
        || {
            state = push_with(server, track).unwrap_or_default();
            state["status"] == "active" && before.is_none_or(|b| state["connected_at"] != *b)
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {state}; runtime: {}", server.runtime("ladder")));
    state
}

/// Waits until the platform wrote about 4 s of media (the clip is ~2 Mb/s at 720p, ~0.6 at
/// 360p: 300 KB is over 4 s of the smaller).
fn wait_media(out: &Path) {
    wait_until(Duration::from_secs(40), "media at the platform", || {
        std::fs::metadata(out).is_ok_and(|m| m.len() > 300_000)
    })
    .unwrap();
}

/// What the platform wrote: H.264 of `width`x`height`, and AAC audio with packets.
fn assert_picture(out: &Path, width: u32, height: u32) {
    let path = out.to_str().unwrap();
    let streams = probe_streams(path).unwrap();
    let video = streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video"))
        .unwrap_or_else(|| panic!("no video in {path}: {streams:?}"));
    assert_eq!(video.codec_name.as_deref(), Some("h264"), "{streams:?}");
    assert_eq!(
        (video.width, video.height),
        (Some(width), Some(height)),
        "{streams:?}"
    );
    assert!(
        streams
            .iter()
            .any(|s| s.codec_type.as_deref() == Some("audio")
                && s.codec_name.as_deref() == Some("aac")),
        "no AAC in {path}: {streams:?}"
    );
    let audio = probe_packets(path, &["-select_streams", "a"]).unwrap();
    assert!(audio.len() > 50, "{} audio packets in {path}", audio.len());
}

#[test]
fn a_target_whose_rung_a_template_removes_fails_visibly_until_it_is_back() {
    let (_turn, _dir, server, rtmp) = with_receiver();
    let rungs = |n: usize| {
        let all = [
            r#"{"width":640,"height":360,"bitrate":600,"preset":"ultrafast"}"#,
            r#"{"width":320,"height":180,"bitrate":200,"preset":"ultrafast"}"#,
        ];
        format!(
            r#"{{"transcoder":{{"audio":{{"bitrate":64}},"video":{{"profiles":[{}]}}}}}}"#,
            all[..n].join(",")
        )
    };
    let template = |n: usize| {
        let answer = send(
            "PUT",
            &server.url("/templates/ladder"),
            Some(&rungs(n)),
            &[],
        );
        assert!(
            answer.status == 200 || answer.status == 201,
            "{}",
            answer.body
        );
    };
    template(2);
    let udp = free_udp_port();
    let push = format!(
        r#""push":[{{"url":"rtmp://127.0.0.1:{rtmp}/live/recv","enabled":true,
                     "timeout_sec":3,"retry_timeout_sec":1,"profile":"track_2"}}]"#
    );
    put_stream(
        &server,
        "dep",
        &format!(r#"{{"template":"ladder","inputs":[{{"url":"udp://127.0.0.1:{udp}"}}],{push}}}"#),
    );
    let _sender = LiveSender::start(&clip(), udp).expect("start the UDP sender");
    let target = |server: &Server| server.runtime("dep")["publisher"]["pushes"][0].clone();
    let mut state = Value::Null;
    let mut wait = |what: &str, status: &str| {
        wait_until(Duration::from_secs(60), what, || {
            state = target(&server);
            state["status"] == status
        })
        .unwrap_or_else(|e| panic!("{e}: {state}; runtime: {}", server.runtime("dep")));
        state.clone()
    };
    wait("the track_2 push to become active", "active");

    // A stream write whose own ladder lacks the rung is refused, naming the target.
    let one_rung = format!(
        r#"{{"template":"ladder","inputs":[{{"url":"udp://127.0.0.1:{udp}"}}],
            "transcoder":{{"video":{{"profiles":[{{"width":640,"height":360}}]}}}},{push}}}"#
    );
    let refused = send("PUT", &server.url("/streams/dep"), Some(&one_rung), &[]);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(
        refused.body["error"]["fields"][0]["path"],
        "push[0].profile"
    );

    // The template drops the rung: the target fails, visibly, and pushes nothing else.
    template(1);
    let failed = wait("the push to fail for want of its rung", "failed");
    let why = failed["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        why.contains("track_2 is not in the stream's ladder"),
        "{failed}"
    );
    assert_eq!(failed["track"], "track_2", "{failed}");
    let warnings = server.runtime("dep")["warnings"].to_string();
    assert!(warnings.contains("a push target failed"), "{warnings}");
    let page = events(&server, "since=0&limit=1000&timeout_sec=0");
    let to_failed = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["type"] == "push.state_changed"
                && e["stream_code"] == "dep"
                && e["payload"]["to"] == "failed"
        })
        .unwrap_or_else(|| panic!("no push.state_changed to failed: {page}"));
    assert!(
        to_failed["payload"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("track_2")),
        "{to_failed}"
    );

    // The rung is back: the target pushes it again by itself.
    template(2);
    wait("the push to be active again", "active");
}
