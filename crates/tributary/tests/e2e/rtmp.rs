//! RTMP in and out (issue 5): ffmpeg publishes to the listener, HLS and RTMP play it back.

use std::time::Duration;

use tributary_testkit::{
    ClipSpec, LiveSender, cached_clip, decode_errors, ffmpeg, free_tcp_port, probe_packets,
    probe_streams, wait_until,
};

use crate::hls::assert_h264_720p_with_aac;
use crate::server::{Server, send};
use crate::turn::shared;

#[test]
fn an_rtmp_publisher_plays_as_hls_and_as_rtmp() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{port}"));
    // A platform stand-in for push-out: ffmpeg listening for one RTMP publish.
    let target_port = free_tcp_port();
    let received = dir.path().join("pushed.ts");
    let mut platform = ffmpeg()
        .args([
            "-listen",
            "1",
            "-i",
            &format!("rtmp://127.0.0.1:{target_port}/live/x"),
        ])
        .args(["-c", "copy", "-t", "8", "-f", "mpegts"])
        .arg(&received)
        .spawn()
        .expect("start the ffmpeg RTMP listener");
    let body = format!(
        r#"{{"inputs":[{{"url":"publish://"}}],"protocols":{{"hls":true,"rtmp":true}},
            "push":[{{"url":"rtmp://127.0.0.1:{target_port}/live/x","enabled":true}}]}}"#
    );
    let answer = send("PUT", &server.url("/streams/studio"), Some(&body), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);

    // A 720p30 clip with B-frames, published in real time, looping.
    let clip = cached_clip(
        &ClipSpec {
            bframes: 2,
            ..ClipSpec::default()
        },
        "mp4",
    )
    .expect("encode the test clip");
    let url = format!("rtmp://127.0.0.1:{port}/live/studio");
    let mut publisher = LiveSender::rtmp(&clip, &url).expect("start the ffmpeg publisher");

    let playlist = server.url("/studio/index.m3u8");
    wait_until(
        Duration::from_secs(30),
        "the HLS playlist of an RTMP publish",
        || {
            tributary_testkit::http_get(&playlist)
                .map(|(status, _, body)| {
                    status == 200 && body.windows(4).filter(|w| w == b".ts\n").count() >= 2
                })
                .unwrap_or(false)
        },
    )
    .unwrap();
    assert_h264_720p_with_aac(&playlist);

    // RTMP play: 10 s decode cleanly, about 300 video frames.
    let errors = decode_errors(&url, 10.0).unwrap();
    assert!(
        errors.trim().is_empty(),
        "RTMP play decode errors:\n{errors}"
    );
    let packets = probe_packets(&url, &["-read_intervals", "%+10"]).unwrap();
    let video_frames = packets
        .iter()
        .filter(|p| p.codec_type.as_deref() == Some("video"))
        .count();
    assert!(
        (270..=330).contains(&video_frames),
        "{video_frames} video frames in 10 s"
    );
    assert!(
        packets
            .iter()
            .find(|p| p.codec_type.as_deref() == Some("video"))
            .unwrap()
            .keyframe
    );

    // The push input reports its publisher.
    let runtime = server.runtime("studio");
    assert_eq!(
        runtime["inputs"][0]["publisher_connected"], true,
        "{runtime}"
    );
    assert!(
        runtime["inputs"][0]["bitrate_kbps"].as_u64().unwrap() > 0,
        "{runtime}"
    );

    // An unknown code is refused at publish; a second publisher to a live slot too.
    let refused = ffmpeg()
        .args(["-re", "-t", "2", "-i"])
        .arg(&clip)
        .args([
            "-c",
            "copy",
            "-f",
            "flv",
            &format!("rtmp://127.0.0.1:{port}/live/nope"),
        ])
        .status()
        .unwrap();
    assert!(!refused.success(), "publish to an unknown code must fail");
    let second = ffmpeg()
        .args(["-re", "-t", "2", "-i"])
        .arg(&clip)
        .args(["-c", "copy", "-f", "flv", &url])
        .status()
        .unwrap();
    assert!(!second.success(), "a second publisher must be refused");
    // The push target connected (reported under runtime.publisher.pushes) and received
    // decodable media.
    let mut last = serde_json::Value::Null;
    wait_until(
        Duration::from_secs(30),
        "the push target to connect",
        || {
            last = server.runtime("studio")["publisher"]["pushes"][0].clone();
            last["connected_at"].is_string()
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {last}"));
    assert!(
        last["url"].as_str().unwrap().ends_with("/live/****"),
        "{last}"
    );
    let status = platform
        .wait()
        .expect("the platform listener ends after 8 s");
    assert!(status.success(), "the RTMP listener failed: {status}");
    let streams = probe_streams(received.to_str().unwrap()).unwrap();
    assert!(
        streams
            .iter()
            .any(|s| s.codec_name.as_deref() == Some("h264")),
        "{streams:?}"
    );
    assert!(
        streams
            .iter()
            .any(|s| s.codec_name.as_deref() == Some("aac")),
        "{streams:?}"
    );
    let errors = decode_errors(received.to_str().unwrap(), 8.0).unwrap();
    assert!(
        errors.trim().is_empty(),
        "pushed media decode errors:\n{errors}"
    );
    publisher.kill();
}

/// Regression (issue 12, defect i): under `publish_auth = "required"` a stream that takes
/// publishers without a `stream_key` says in `runtime.warnings` that only loopback publishers
/// get in (SPEC §Security); giving it a key clears the warning.
#[test]
fn a_keyless_push_stream_shows_the_loopback_only_warning() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let keyless = r#"{"inputs":[{"url":"publish://"}]}"#;
    let answer = send("PUT", &server.url("/streams/open"), Some(keyless), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);
    let warnings = server.runtime("open")["warnings"].clone();
    let text = warnings.to_string();
    assert!(
        text.contains("no stream_key") && text.contains("loopback"),
        "{warnings}"
    );

    let keyed = r#"{"stream_key":"k3y-s3cret-01","inputs":[{"url":"publish://"}]}"#;
    let answer = send("PUT", &server.url("/streams/keyed"), Some(keyed), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);
    let warnings = server.runtime("keyed")["warnings"].clone();
    assert!(!warnings.to_string().contains("stream_key"), "{warnings}");
}

/// Turning `protocols.rtmp` off on a running stream disconnects its RTMP players at once, with
/// an end-of-stream status (issue 12, defect b: the play gate used to be read only at play
/// start); new plays are refused, and the publisher and HLS carry on.
#[test]
fn turning_rtmp_play_off_disconnects_its_players() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{port}"));
    let body = r#"{"inputs":[{"url":"publish://"}],"protocols":{"hls":true,"rtmp":true}}"#;
    let answer = send("PUT", &server.url("/streams/gated"), Some(body), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);
    let clip = cached_clip(&ClipSpec::default(), "mp4").expect("encode the test clip");
    let url = format!("rtmp://127.0.0.1:{port}/live/gated");
    let mut publisher = LiveSender::rtmp(&clip, &url).expect("start the ffmpeg publisher");

    // Our own client plays (and reports how the server ended it); ffmpeg plays beside it and
    // says when frames flow.
    let ours = {
        let url = url.clone();
        std::thread::spawn(move || tributary_testkit::rtmp_play(&url, Duration::from_secs(60)))
    };
    let mut player = ffmpeg()
        .args([
            "-progress",
            "pipe:1",
            "-i",
            &url,
            "-c",
            "copy",
            "-f",
            "null",
            "-",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the ffmpeg player");
    let progress = player.stdout.take().unwrap();
    let (frames_tx, frames_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(progress)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(n) = line.strip_prefix("frame=")
                && n.trim().parse::<u64>().is_ok_and(|n| n > 30)
            {
                let _ = frames_tx.send(());
            }
        }
    });
    frames_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the ffmpeg player receives frames");

    let off = r#"{"protocols":{"hls":true,"rtmp":false}}"#;
    let answer = send("PATCH", &server.url("/streams/gated"), Some(off), &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let patched = std::time::Instant::now();

    // Both players are cut within a second or two, ours told why.
    let playback = ours.join().unwrap().expect("our player played");
    assert!(playback.started_at.is_some());
    assert!(playback.closed_by_server, "the server closed the play");
    assert!(
        playback
            .ended
            .iter()
            .any(|code| code.starts_with("NetStream.Play.")),
        "an end-of-stream status first: {:?}",
        playback.ended
    );
    let status = wait_exit(&mut player, Duration::from_secs(10));
    assert!(status.is_some(), "the ffmpeg player was not disconnected");
    assert!(
        patched.elapsed() < Duration::from_secs(5),
        "disconnected after {:?}",
        patched.elapsed()
    );

    // A new play is refused; the publisher and HLS go on.
    let refused = tributary_testkit::rtmp_play(&url, Duration::from_secs(1));
    let refusal = format!("{:#}", refused.expect_err("play refused"));
    assert!(refusal.contains("StreamNotFound"), "{refusal}");
    assert!(publisher.is_running(), "the publisher was not touched");
    let playlist = server.url("/gated/index.m3u8");
    wait_until(Duration::from_secs(20), "HLS of the publish", || {
        tributary_testkit::http_get(&playlist).is_ok_and(|(status, _, _)| status == 200)
    })
    .unwrap();
    publisher.kill();
}

/// Waits for `child` to exit, at most `limit`.
fn wait_exit(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}
