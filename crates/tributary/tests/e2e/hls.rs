//! Live MPEG-TS in, HLS out (issue 4): real ffmpeg senders, the real binary, ffprobe and
//! hls.js in headless Chromium as the players.

use std::path::PathBuf;
use std::time::Duration;

use tributary_testkit::{
    ClipSpec, LiveSender, ProbePacket, cached_clip, decode_errors, free_udp_port, http_get,
    probe_packets, probe_streams, wait_until,
};

use crate::browser;
use crate::server::{Server, send};
use crate::turn::{heavy, shared};

/// The pre-encoded source of these tests: 720p30 H.264 (GOP 2 s) + AAC, 10 s, looped.
pub(crate) fn clip() -> PathBuf {
    cached_clip(&ClipSpec::default(), "ts").expect("encode the test clip")
}

/// A playlist as fetched: its text.
fn playlist(server: &Server, code: &str) -> Option<String> {
    let (status, _, body) = http_get(&server.url(&format!("/{code}/index.m3u8"))).ok()?;
    (status == 200).then(|| String::from_utf8_lossy(&body).into_owned())
}

/// `(duration, discontinuity_before)` of every segment listed.
fn segments(text: &str) -> Vec<(f64, bool)> {
    let mut out = Vec::new();
    let mut disc = false;
    for line in text.lines() {
        if line == "#EXT-X-DISCONTINUITY" {
            disc = true;
        } else if let Some(rest) = line.strip_prefix("#EXTINF:") {
            let d: f64 = rest
                .trim_end_matches(',')
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            out.push((d, disc));
            disc = false;
        }
    }
    out
}

/// Every segment the playlist lists now, concatenated into one TS file (a live playlist is
/// unbounded for ffprobe; its current window is not).
pub(crate) fn window_ts(server: &Server, code: &str, dir: &std::path::Path) -> PathBuf {
    let text = playlist(server, code).expect("the playlist");
    let mut ts = Vec::new();
    for name in text.lines().filter(|l| l.ends_with(".ts")) {
        let (status, _, body) = http_get(&server.url(&format!("/{code}/{name}"))).unwrap();
        assert_eq!(status, 200, "{name} listed but not served");
        ts.extend_from_slice(&body);
    }
    let path = dir.join(format!("{}-window.ts", code.replace('/', "_")));
    std::fs::write(&path, ts).unwrap();
    path
}

/// ffprobe sees H.264 1280x720 and AAC at `url`.
pub(crate) fn assert_h264_720p_with_aac(url: &str) {
    let streams = probe_streams(url).unwrap();
    let video = streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video"))
        .unwrap_or_else(|| panic!("no video in {url}: {streams:?}"));
    assert_eq!(video.codec_name.as_deref(), Some("h264"));
    assert_eq!((video.width, video.height), (Some(1280), Some(720)));
    let aac = streams
        .iter()
        .any(|s| s.codec_name.as_deref() == Some("aac"));
    assert!(aac, "no AAC in {url}: {streams:?}");
}

/// The DTS of every `kind` packet (more than `min` of them), asserted strictly increasing.
fn assert_monotonic_dts_of(packets: &[ProbePacket], kind: &str, min: usize) -> Vec<f64> {
    let dts: Vec<f64> = packets
        .iter()
        .filter(|p| p.codec_type.as_deref() == Some(kind))
        .filter_map(|p| p.dts_time)
        .collect();
    assert!(dts.len() > min, "{kind}: {} packets", dts.len());
    for pair in dts.windows(2) {
        assert!(
            pair[1] > pair[0],
            "{kind} DTS goes from {} to {}",
            pair[0],
            pair[1]
        );
    }
    dts
}

/// Video and audio DTS both strictly increase (more than `min` packets each).
fn assert_monotonic_dts(packets: &[ProbePacket], min: usize) {
    for kind in ["video", "audio"] {
        assert_monotonic_dts_of(packets, kind, min);
    }
}

pub(crate) fn create_udp_stream(server: &Server, code: &str, port: u16) {
    let body =
        format!(r#"{{"inputs":[{{"url":"udp://127.0.0.1:{port}"}}],"protocols":{{"hls":true}}}}"#);
    let answer = send(
        "PUT",
        &server.url(&format!("/streams/{code}")),
        Some(&body),
        &[],
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
}

/// Creates UDP stream `code` and starts the test clip looping into it (stopped on drop).
pub(crate) fn udp_live(server: &Server, code: &str) -> LiveSender {
    let port = free_udp_port();
    create_udp_stream(server, code, port);
    LiveSender::start(&clip(), port).expect("start the UDP sender")
}

pub(crate) fn wait_segments(
    server: &Server,
    code: &str,
    count: usize,
    timeout: Duration,
) -> String {
    let mut last = String::new();
    wait_until(
        timeout,
        &format!("{count} segments in /{code}/index.m3u8"),
        || {
            last = playlist(server, code).unwrap_or_default();
            segments(&last).len() >= count
        },
    )
    .unwrap_or_else(|e| panic!("{e}; last playlist:\n{last}"));
    last
}

/// The last media segment `playlist` lists.
fn last_segment(playlist: &str) -> Option<&str> {
    playlist.lines().rfind(|l| l.ends_with(".ts"))
}

/// Waits until `/{code}/index.m3u8`, which lists at least 2 segments now, lists a segment after
/// the last one it lists now: the stream's output is still going.
pub(crate) fn wait_new_segment(server: &Server, code: &str, timeout: Duration) {
    let now = wait_segments(server, code, 2, Duration::from_secs(5));
    let before = last_segment(&now);
    wait_until(
        timeout,
        &format!("a new segment in /{code}/index.m3u8"),
        || playlist(server, code).is_some_and(|text| last_segment(&text) != before),
    )
    .unwrap();
}

#[test]
fn udp_ts_plays_as_hls_in_ffprobe_ffmpeg_and_hls_js() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let port = free_udp_port();
    create_udp_stream(&server, "cam", port);
    let _sender = LiveSender::start(&clip(), port).expect("start the UDP sender");

    let text = wait_segments(&server, "cam", 3, Duration::from_secs(30));
    for tag in [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        "#EXT-X-TARGETDURATION:2",
        "#EXT-X-MEDIA-SEQUENCE:",
        "#EXT-X-PROGRAM-DATE-TIME:",
    ] {
        assert!(text.contains(tag), "playlist lacks {tag}:\n{text}");
    }
    assert!(!text.contains("#EXT-X-ENDLIST"));

    // Headers a browser player needs.
    let (status, headers, _) = http_get(&server.url("/cam/index.m3u8")).unwrap();
    assert_eq!(status, 200);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(header("content-type"), "application/vnd.apple.mpegurl");
    assert_eq!(header("cache-control"), "no-cache");
    assert_eq!(header("access-control-allow-origin"), "*");
    let first_segment = text
        .lines()
        .find(|l| l.ends_with(".ts"))
        .unwrap()
        .to_owned();
    let (status, headers, body) = http_get(&server.url(&format!("/cam/{first_segment}"))).unwrap();
    assert_eq!(status, 200);
    assert!(
        body.len() > 10_000 && body.len() % 188 == 0,
        "segment of {} bytes",
        body.len()
    );
    let immutable = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("cache-control") && v.contains("immutable"));
    assert!(immutable, "segments are immutable: {headers:?}");
    assert_eq!(http_get(&server.url("/cam/seg_000001.ts")).unwrap().0, 404);

    // ffprobe sees H.264 1280x720 + AAC.
    let url = server.url("/cam/index.m3u8");
    assert_h264_720p_with_aac(&url);

    // Segment durations: ±0.5 s of the 2 s target.
    let text = wait_segments(&server, "cam", 5, Duration::from_secs(30));
    let listed = segments(&text);
    for (i, (duration, _)) in listed.iter().enumerate() {
        let before_discontinuity = listed.get(i + 1).is_some_and(|(_, d)| *d);
        assert!(
            before_discontinuity || (duration - 2.0).abs() <= 0.5,
            "segment {i} lasts {duration} s:\n{text}"
        );
    }

    // The manager reports the input's bitrate and last packet.
    let answer = send("GET", &server.url("/streams/cam"), None, &[]);
    let input = &answer.body["data"]["runtime"]["inputs"][0];
    assert_eq!(input["status"], "active", "{}", answer.body);
    assert!(input["last_packet_at"].is_string(), "{input}");
    assert!(input["bitrate_kbps"].as_u64().unwrap() > 0, "{input}");

    // hls.js in a real browser plays 15 s, advancing, at 1280x720.
    let played = browser::play(&url, "hls", 15, &["--width", "1280", "--height", "720"]);
    assert!(played.ok, "hls.js did not play: {played}");

    // ffmpeg decodes 20 s of what the playlist serves without an error. Decoded from the
    // window's segments as fetched, not by ffmpeg's live HLS reader: under CI load (two cores)
    // that reader printed non-monotonic DTS every ~3 s that the same segments, fetched and
    // decoded, do not have (see the session notes).
    wait_segments(&server, "cam", 10, Duration::from_secs(40));
    let window = window_ts(&server, "cam", dir.path());
    let errors = decode_errors(window.to_str().unwrap(), 20.0).unwrap();
    let runtime = server.runtime("cam");
    assert!(
        errors.trim().is_empty(),
        "decode errors:\n{errors}\nruntime: {runtime}"
    );
}

#[test]
fn a_restarted_udp_sender_gives_one_discontinuity_and_monotonic_pts() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let port = free_udp_port();
    create_udp_stream(&server, "flaky", port);
    let mut sender = LiveSender::start(&clip(), port).expect("start the UDP sender");
    wait_segments(&server, "flaky", 2, Duration::from_secs(30));

    sender.kill();
    std::thread::sleep(Duration::from_secs(2));
    sender.restart().expect("restart the sender");
    // Wait until the playlist holds the discontinuity and 3 segments after it.
    let mut text = String::new();
    wait_until(
        Duration::from_secs(40),
        "3 segments after a discontinuity",
        || {
            text = playlist(&server, "flaky").unwrap_or_default();
            let listed = segments(&text);
            listed
                .iter()
                .position(|(_, d)| *d)
                .is_some_and(|at| listed.len() - at >= 3)
        },
    )
    .unwrap_or_else(|e| panic!("{e}:\n{text}"));
    assert_eq!(
        text.matches("#EXT-X-DISCONTINUITY\n").count(),
        1,
        "exactly one discontinuity:\n{text}"
    );

    // PTS increase across the boundary, per stream, over the whole playlist.
    let window = window_ts(&server, "flaky", dir.path());
    let packets = probe_packets(window.to_str().unwrap(), &[]).unwrap();
    assert_monotonic_dts(&packets, 100);
}

#[test]
fn a_looping_file_input_advances_with_monotonic_pts_and_no_discontinuity() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let clip = cached_clip(
        &ClipSpec {
            seconds: 6,
            ..ClipSpec::default()
        },
        "ts",
    )
    .expect("encode the test clip");
    let body = format!(
        r#"{{"inputs":[{{"url":"file://{}"}}],"protocols":{{"hls":true}}}}"#,
        clip.display()
    );
    let answer = send("PUT", &server.url("/streams/loop"), Some(&body), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);

    // 30 s of playback (five loops of the clip): the playlist keeps advancing, no snapshot
    // shows a discontinuity.
    let first = wait_segments(&server, "loop", 1, Duration::from_secs(30));
    let sequence = |text: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
            .and_then(|n| n.parse().ok())
            .expect("a media sequence")
    };
    let mut last_sequence = sequence(&first);
    let mut last_count = segments(&first).len();
    for _ in 0..6 {
        std::thread::sleep(Duration::from_secs(5));
        let text = playlist(&server, "loop").expect("the playlist stays up");
        assert!(
            !text.contains("#EXT-X-DISCONTINUITY\n"),
            "a loop point is not a discontinuity:\n{text}"
        );
        let (seq, count) = (sequence(&text), segments(&text).len());
        assert!(
            seq + count as u64 > last_sequence + last_count as u64,
            "the playlist did not advance in 5 s:\n{text}"
        );
        (last_sequence, last_count) = (seq, count);
    }
    // The window (24 s) spans several loop points of the 6 s clip: DTS keeps increasing.
    let window = window_ts(&server, "loop", dir.path());
    let packets = probe_packets(window.to_str().unwrap(), &[]).unwrap();
    for kind in ["video", "audio"] {
        let dts = assert_monotonic_dts_of(&packets, kind, 300);
        let span = dts.last().unwrap() - dts[0];
        assert!(span > 15.0, "{kind}: the window spans only {span} s");
    }
}

#[test]
fn hls_pull_relays_another_streams_playlist() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let _sender = udp_live(&server, "origin");
    wait_segments(&server, "origin", 2, Duration::from_secs(30));

    let body = format!(
        r#"{{"inputs":[{{"url":"{}"}}],"protocols":{{"hls":true}}}}"#,
        server.url("/origin/index.m3u8")
    );
    let answer = send("PUT", &server.url("/streams/relay"), Some(&body), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);
    wait_segments(&server, "relay", 3, Duration::from_secs(40));

    let url = server.url("/relay/index.m3u8");
    assert_h264_720p_with_aac(&url);
    let errors = decode_errors(&url, 8.0).unwrap();
    assert!(errors.trim().is_empty(), "decode errors:\n{errors}");
}

/// Regression (issue 12, defect i): a track HLS-TS cannot carry (Opus audio) is omitted from
/// the HLS output and listed in `runtime.warnings` (SPEC §Publisher codec table), while the
/// video plays on.
#[test]
fn a_track_hls_ts_cannot_carry_is_listed_in_runtime_warnings() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("h264-opus.ts");
    let encoded = tributary_testkit::ffmpeg()
        .args(["-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", "4", "-map", "0:v", "-map", "1:a"])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-g", "25"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "libopus", "-b:a", "64k"])
        .arg(&clip)
        .output()
        .expect("ffmpeg");
    assert!(
        encoded.status.success(),
        "{}",
        String::from_utf8_lossy(&encoded.stderr)
    );
    let server = Server::start(dir.path(), &[]);
    let body = format!(
        r#"{{"inputs":[{{"url":"file://{}"}}],"protocols":{{"hls":true}}}}"#,
        clip.display()
    );
    let answer = send("PUT", &server.url("/streams/opus"), Some(&body), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);
    wait_until(Duration::from_secs(30), "the omitted-track warning", || {
        server.runtime("opus")["warnings"]
            .to_string()
            .contains("omitted: HLS-TS cannot carry opus")
    })
    .unwrap_or_else(|e| panic!("{e}: {}", server.runtime("opus")));
    let text = wait_segments(&server, "opus", 1, Duration::from_secs(30));
    assert!(text.contains("#EXTINF"), "{text}");
}
