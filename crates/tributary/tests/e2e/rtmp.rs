//! RTMP in and out (issue 5): ffmpeg publishes to the listener, HLS and RTMP play it back.

use std::time::Duration;

use tributary_testkit::{
    ClipSpec, LiveSender, cached_clip, decode_errors, ffmpeg, free_tcp_port, probe_packets,
    probe_streams, wait_until,
};

use crate::hls::{assert_h264_720p_with_aac, serial};
use crate::server::{Server, send};

#[test]
fn an_rtmp_publisher_plays_as_hls_and_as_rtmp() {
    let _serial = serial();
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

    let keyed = r#"{"stream_key":"k3y","inputs":[{"url":"publish://"}]}"#;
    let answer = send("PUT", &server.url("/streams/keyed"), Some(keyed), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);
    let warnings = server.runtime("keyed")["warnings"].clone();
    assert!(!warnings.to_string().contains("stream_key"), "{warnings}");
}
