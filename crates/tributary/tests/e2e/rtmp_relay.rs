//! RTMP between servers (issue 5): a stream pulls another over RTMP, and a push-out target
//! that goes away and comes back.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use serde_json::Value;
use tributary_testkit::{
    ClipSpec, LiveSender, cached_clip, decode_errors, ffmpeg, free_tcp_port, http_get,
    probe_packets, probe_streams, wait_until,
};

use crate::events::events;
use crate::hls::{assert_h264_720p_with_aac, window_ts};
use crate::server::{Server, put_stream};
use crate::turn::shared;

/// A child process killed (and reaped) on drop.
pub(crate) struct Killed(Child);

impl Killed {
    pub(crate) fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The 720p30 H.264 (B-frames) + AAC clip, as MP4 for `ffmpeg -f flv`.
fn clip() -> std::path::PathBuf {
    cached_clip(
        &ClipSpec {
            bframes: 2,
            ..ClipSpec::default()
        },
        "mp4",
    )
    .expect("encode the test clip")
}

fn wait_segments(server: &Server, code: &str, count: usize) {
    let url = server.url(&format!("/{code}/index.m3u8"));
    let mut last = String::new();
    wait_until(
        Duration::from_secs(40),
        &format!("{count} segments in /{code}/index.m3u8"),
        || {
            last = http_get(&url)
                .ok()
                .filter(|(status, _, _)| *status == 200)
                .map(|(_, _, body)| String::from_utf8_lossy(&body).into_owned())
                .unwrap_or_default();
            last.lines().filter(|l| l.ends_with(".ts")).count() >= count
        },
    )
    .unwrap_or_else(|e| panic!("{e}; playlist:\n{last}\nruntime: {}", server.runtime(code)));
}

#[test]
fn a_stream_pulls_another_streams_rtmp() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{port}"));
    put_stream(
        &server,
        "origin",
        r#"{"inputs":[{"url":"publish://"}],"protocols":{"rtmp":true}}"#,
    );
    put_stream(
        &server,
        "edge",
        &format!(
            r#"{{"inputs":[{{"url":"rtmp://127.0.0.1:{port}/live/origin"}}],
                "protocols":{{"hls":true}}}}"#
        ),
    );
    let _publisher = LiveSender::rtmp(&clip(), &format!("rtmp://127.0.0.1:{port}/live/origin"))
        .expect("start the ffmpeg publisher");

    wait_segments(&server, "edge", 4);
    let playlist = server.url("/edge/index.m3u8");
    assert_h264_720p_with_aac(&playlist);
    let window = window_ts(&server, "edge", dir.path());
    let window = window.to_str().unwrap();
    let errors = decode_errors(window, 6.0).unwrap();
    assert!(
        errors.trim().is_empty(),
        "the pulled stream's HLS decodes with errors:\n{errors}"
    );
    // Continuous media: 3+ segments of 2 s hold 30 fps video.
    let packets = probe_packets(window, &["-select_streams", "v"]).unwrap();
    let dts: Vec<f64> = packets.iter().filter_map(|p| p.dts_time).collect();
    let span = dts.last().unwrap() - dts[0];
    assert!(span > 5.0, "the window spans {span} s");
    let fps = (dts.len() - 1) as f64 / span;
    assert!((27.0..=33.0).contains(&fps), "{fps} fps in the window");
    for pair in dts.windows(2) {
        assert!(
            pair[1] > pair[0],
            "video DTS goes from {} to {}",
            pair[0],
            pair[1]
        );
    }

    let input = server.runtime("edge")["inputs"][0].clone();
    assert_eq!(input["status"], "active", "{input}");
    assert!(input["bitrate_kbps"].as_u64().unwrap() > 0, "{input}");
}

/// `ffmpeg -listen 1` standing in for a platform: accepts one RTMP publish on `port` and
/// copies it into `out` as MPEG-TS.
pub(crate) fn platform(port: u16, out: &Path) -> Killed {
    Killed(
        ffmpeg()
            .args(["-listen", "1", "-i"])
            .arg(format!("rtmp://127.0.0.1:{port}/live/x"))
            .args(["-c", "copy", "-f", "mpegts"])
            .arg(out)
            .spawn()
            .expect("start the ffmpeg RTMP listener"),
    )
}

/// What the platform wrote: at least 5 s of H.264 + AAC that starts at a keyframe and
/// decodes cleanly.
fn assert_received(out: &Path) {
    let path = out.to_str().unwrap();
    let streams = probe_streams(path).unwrap();
    for codec in ["h264", "aac"] {
        assert!(
            streams
                .iter()
                .any(|s| s.codec_name.as_deref() == Some(codec)),
            "no {codec} in {path}: {streams:?}"
        );
    }
    let video: Vec<_> = probe_packets(path, &["-select_streams", "v"])
        .unwrap()
        .into_iter()
        .filter(|p| p.dts_time.is_some())
        .collect();
    assert!(video.len() > 150, "{} video packets in {path}", video.len());
    assert!(video[0].keyframe, "{path} does not start at a keyframe");
    // The last packets may be cut by the kill; the first 4 s must be clean.
    let errors = decode_errors(path, 4.0).unwrap();
    assert!(
        errors.trim().is_empty(),
        "{path} decodes with errors:\n{errors}"
    );
}

#[test]
fn a_push_target_that_goes_away_is_retried_until_it_is_back() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let target = free_tcp_port();
    let first = dir.path().join("first.ts");
    let mut listener = platform(target, &first);
    let source = cached_clip(&ClipSpec::default(), "ts").expect("encode the test clip");
    put_stream(
        &server,
        "show",
        &format!(
            r#"{{"inputs":[{{"url":"file://{}"}}],
                "push":[{{"url":"rtmp://127.0.0.1:{target}/live/x","enabled":true,
                          "timeout_sec":3,"retry_timeout_sec":1}}]}}"#,
            source.display()
        ),
    );
    // 6 s of the clip, in bytes.
    let six_seconds = std::fs::metadata(&source).unwrap().len() * 6 / 10;
    let push = |server: &Server| server.runtime("show")["publisher"]["pushes"][0].clone();

    // Active, and the platform receives media.
    let mut state = Value::Null;
    wait_until(Duration::from_secs(30), "the push to become active", || {
        state = push(&server);
        state["status"] == "active"
    })
    .unwrap_or_else(|e| panic!("{e}: {state}"));
    let connected_at = state["connected_at"].as_str().unwrap().to_owned();
    assert_eq!(state["attempt"], 0, "{state}");
    wait_until(
        Duration::from_secs(30),
        "6 s of media at the platform",
        || std::fs::metadata(&first).is_ok_and(|m| m.len() > six_seconds),
    )
    .unwrap();

    // The platform goes away: reconnecting, with the error.
    listener.kill();
    wait_until(Duration::from_secs(20), "the push to reconnect", || {
        state = push(&server);
        state["status"] == "reconnecting"
    })
    .unwrap_or_else(|e| panic!("{e}: {state}"));
    assert!(state["attempt"].as_u64().unwrap() >= 1, "{state}");
    // The errors since the connection (newest first) name the platform.
    let errors = state["errors"].as_array().expect("an errors list");
    let since: Vec<&str> = errors
        .iter()
        .filter(|e| e["at"].as_str().unwrap() > connected_at.as_str())
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        !since.is_empty(),
        "no error after the disconnection: {state}"
    );
    for message in &since {
        assert!(
            message.contains(&format!("127.0.0.1:{target}")),
            "the error names the peer: {state}"
        );
    }
    assert_received(&first);
    // The reconnect is refused while nothing listens: a second failure in a row.
    wait_until(Duration::from_secs(20), "a refused reconnect", || {
        state = push(&server);
        state["attempt"].as_u64().is_some_and(|a| a >= 2)
    })
    .unwrap_or_else(|e| panic!("{e}: {state}"));
    assert_eq!(state["status"], "reconnecting", "{state}");
    let errors = state["errors"].as_array().unwrap();
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{state}"
    );
    assert!(errors.len() <= 5, "{state}");

    // The platform is back: active again, a new connection, media flows.
    let second = dir.path().join("second.ts");
    let mut listener = platform(target, &second);
    wait_until(
        Duration::from_secs(40),
        "the push to be active again",
        || {
            state = push(&server);
            state["status"] == "active"
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {state}"));
    assert_eq!(state["attempt"], 0, "{state}");
    assert_ne!(state["connected_at"], connected_at.as_str(), "{state}");
    wait_until(
        Duration::from_secs(30),
        "6 s of media at the platform again",
        || std::fs::metadata(&second).is_ok_and(|m| m.len() > six_seconds),
    )
    .unwrap();
    listener.kill();
    assert_received(&second);
    // Only this target failed; the stream's input kept running.
    assert_eq!(server.runtime("show")["inputs"][0]["status"], "active");

    // Each move of the target's status was an event.
    let page = events(&server, "since=0&limit=1000&timeout_sec=0");
    let moves: Vec<&Value> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "push.state_changed" && e["stream_code"] == "show")
        .map(|e| &e["payload"])
        .collect();
    let path: Vec<(&str, &str)> = moves
        .iter()
        .map(|p| (p["from"].as_str().unwrap(), p["to"].as_str().unwrap()))
        .collect();
    // From `starting` (a first try may find the platform not listening yet), each move from
    // where the last one went: down when the platform went, up when it came back (and down
    // again as the test ends it).
    assert_eq!(path.first().map(|m| m.0), Some("starting"), "{moves:#?}");
    assert!(path.windows(2).all(|w| w[0].1 == w[1].0), "{moves:#?}");
    let down = path
        .iter()
        .position(|m| *m == ("active", "reconnecting"))
        .unwrap_or_else(|| panic!("never down: {moves:#?}"));
    assert!(
        path[down..].contains(&("reconnecting", "active")),
        "never up again: {moves:#?}"
    );
    assert_eq!(
        moves[down]["url"],
        format!("rtmp://127.0.0.1:{target}/live/****")
    );
    assert!(
        moves[down]["error"]
            .as_str()
            .is_some_and(|e| e.contains(&format!("127.0.0.1:{target}"))),
        "{moves:#?}"
    );
}
