//! DVR clips (issue 19, SPEC §DVR "Clip") and the `[dvr]` section: an RTMP publisher (ffmpeg,
//! a 1 s GOP) is recorded into the configured `dvr.root` in the configured segment length;
//! a 10 s clip from the middle of the recording is fetched as `clip.mp4` and read by ffprobe
//! and ffmpeg (both streams, a keyframe first, 10 s ± one GOP, no decode error); windows
//! beyond `dvr.max_clip_sec`, backwards or outside the recording are refused.

use std::time::Duration;

use serde_json::Value;
use tributary_testkit::{
    ClipSpec, LiveSender, cached_clip, decode_errors, free_tcp_port, http_get, probe_packets,
    probe_streams, wait_until,
};

use crate::dvr::info;
use crate::server::{Server, put_stream, send};
use crate::turn::shared;

/// An RFC 3339 time `ms` after the Unix epoch, percent-encoded for a query.
fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .replace(':', "%3A")
}

/// Milliseconds since the epoch of an RFC 3339 time.
fn unix_ms(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_millis()
}

#[test]
fn a_clip_from_the_middle_of_a_recording_plays_from_a_keyframe_for_its_window() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("recordings");
    let config = dir.path().join("tributary.toml");
    std::fs::write(
        &config,
        format!(
            "[dvr]\nroot = \"{}\"\nsegment_duration = 2\nmax_clip_sec = 3600\n",
            root.display()
        ),
    )
    .unwrap();
    let port = free_tcp_port();
    let server = Server::start_args(
        &dir.path().join("data"),
        &[],
        &format!("127.0.0.1:{port}"),
        &["--config", config.to_str().unwrap()],
    );
    // The stream gives no segment length: the server's `dvr.segment_duration` applies.
    put_stream(
        &server,
        "cut",
        r#"{"inputs":[{"url":"publish://"}],"dvr":{"enabled":true}}"#,
    );
    let spec = ClipSpec {
        gop: 30,
        ..ClipSpec::default()
    };
    let source = cached_clip(&spec, "mp4").expect("encode the test clip");
    let _publisher = LiveSender::rtmp(&source, &format!("rtmp://127.0.0.1:{port}/live/cut"))
        .expect("start the ffmpeg publisher");

    // About 30 s recorded, in 2 s segments under the configured root.
    let mut recorded = Value::Null;
    wait_until(Duration::from_secs(90), "30 s recorded", || {
        recorded = info(&server, "cut").unwrap_or(Value::Null);
        recorded["total_duration_sec"].as_f64().unwrap_or(0.0) >= 30.0
    })
    .unwrap_or_else(|e| panic!("{e}: {recorded}"));
    let segments = recorded["segment_count"].as_u64().unwrap();
    let average = recorded["total_duration_sec"].as_f64().unwrap() / segments as f64;
    assert!((1.9..2.6).contains(&average), "2 s segments: {recorded}");
    assert!(
        root.join("cut/000000.ts").is_file(),
        "recorded under dvr.root"
    );

    // A 10 s clip from the middle, `from` half a GOP after a keyframe (wall times carry a
    // few ms of arrival jitter, so a `from` on a keyframe may start a whole GOP earlier).
    let started = unix_ms(recorded["dvr_range"]["started_at"].as_str().unwrap());
    let (from, to) = (started + 10_500, started + 20_500);
    let path = format!(
        "/recordings/cut/clip.mp4?from={}&to={}",
        rfc3339(from),
        rfc3339(to)
    );
    let (status, headers, body) = http_get(&server.url(&path)).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("content-type"), Some("video/mp4"));
    assert_eq!(
        header("transfer-encoding"),
        Some("chunked"),
        "streamed: {headers:?}"
    );
    assert_eq!(&body[4..8], b"ftyp");
    let file = dir.path().join("clip.mp4");
    std::fs::write(&file, &body).unwrap();
    let file = file.to_str().unwrap();

    let streams = probe_streams(file).unwrap();
    let kinds: Vec<_> = streams
        .iter()
        .map(|s| (s.codec_type.as_deref(), s.codec_name.as_deref()))
        .collect();
    assert!(kinds.contains(&(Some("video"), Some("h264"))), "{kinds:?}");
    assert!(kinds.contains(&(Some("audio"), Some("aac"))), "{kinds:?}");
    let errors = decode_errors(file, 3600.0).unwrap();
    assert!(errors.trim().is_empty(), "decode errors: {errors}");
    let packets = probe_packets(file, &[]).unwrap();
    let video: Vec<_> = packets
        .iter()
        .filter(|p| p.codec_type.as_deref() == Some("video"))
        .collect();
    assert!(video[0].keyframe, "the clip starts with a keyframe");
    let seconds = video.len() as f64 / 30.0;
    assert!(
        (9.0..=11.0).contains(&seconds),
        "{seconds} s of video for a 10 s clip (± one 1 s GOP)"
    );
    let audio = packets
        .iter()
        .filter(|p| p.codec_type.as_deref() == Some("audio"))
        .count() as f64
        * 1024.0
        / 48_000.0;
    // Audio runs from the keyframe's time to `to`, to within one AAC frame (21 ms).
    assert!(
        (seconds - audio).abs() < 0.1,
        "{audio} s of audio for {seconds} s of video"
    );
    eprintln!(
        "clip: {seconds:.3} s of video, {audio:.3} s of audio, {} bytes",
        body.len()
    );

    // The same window by offsets, as timeshift takes them.
    let (status, _, by_offset) =
        http_get(&server.url("/recordings/cut/clip.mp4?offset_sec=10&duration=10")).unwrap();
    assert_eq!(status, 200);
    assert_eq!(&by_offset[4..8], b"ftyp");

    // Refusals name the parameter.
    let refusal = |query: &str| {
        let answer = send(
            "GET",
            &server.url(&format!("/recordings/cut/clip.mp4?{query}")),
            None,
            &[],
        );
        (answer.status, answer.body["error"].clone())
    };
    let (status, error) = refusal(&format!(
        "from={}&to={}",
        rfc3339(from),
        rfc3339(from + 4_000_000)
    ));
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["code"], "CLIP_TOO_LONG");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("to") && message.contains("dvr.max_clip_sec"),
        "{message}"
    );
    let (status, error) = refusal(&format!("from={}&to={}", rfc3339(to), rfc3339(from)));
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("INVALID_TO")),
        "{error}"
    );
    let (status, error) = refusal(&format!(
        "from={}&to={}",
        rfc3339(started - 600_000),
        rfc3339(started - 590_000)
    ));
    assert_eq!(
        (status, error["code"].as_str()),
        (404, Some("NO_DATA")),
        "{error}"
    );
}
