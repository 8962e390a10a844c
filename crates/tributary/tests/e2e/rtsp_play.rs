//! RTSP play (issue 15, item 5): `rtsp://host:PORT/live/<code>` to ffprobe and ffmpeg over TCP
//! and UDP, and to an independent client, GStreamer's `rtspsrc`; refusals for what cannot
//! play.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use tributary_testkit::{LiveSender, ffmpeg, free_udp_port, probe_streams, wait_until};

use crate::hls::clip;
use crate::server::{Server, put_stream};
use crate::turn::shared;

/// A server with the RTSP listener on an ephemeral port, and that port.
fn start(dir: &std::path::Path) -> (Server, u16) {
    let server = Server::start_args(dir, &[], "off", &["--rtsp", "127.0.0.1:0"]);
    let (status, _, body) =
        tributary_testkit::http_get(&server.url("/config")).expect("GET /config");
    assert_eq!(status, 200);
    let config: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let port = config["ports"]["rtsp_port"]
        .as_u64()
        .expect("ports.rtsp_port");
    assert_ne!(port, 0, "the RTSP listener is bound");
    (server, u16::try_from(port).unwrap())
}

/// A stream `code` fed with the 720p30 H.264 + AAC clip over UDP, with `protocols`.
pub(crate) fn stream(server: &Server, code: &str, protocols: &str) -> LiveSender {
    let port = free_udp_port();
    put_stream(
        server,
        code,
        &format!(r#"{{"inputs":[{{"url":"udp://127.0.0.1:{port}"}}],"protocols":{protocols}}}"#),
    );
    LiveSender::start(&clip(), port).expect("start the UDP sender")
}

/// The first line of the answer to a raw DESCRIBE of `path`.
pub(crate) fn describe_status(port: u16, path: &str) -> String {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        socket,
        "DESCRIBE rtsp://127.0.0.1:{port}/{path} RTSP/1.0\r\nCSeq: 1\r\n\r\n"
    )
    .unwrap();
    let mut answer = [0u8; 512];
    let n = socket.read(&mut answer).unwrap();
    String::from_utf8_lossy(&answer[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// `ffmpeg` decodes `seconds` of `url` over `transport` (tcp or udp); its error lines.
pub(crate) fn decode(url: &str, transport: &str, seconds: u32) -> String {
    let output = ffmpeg()
        .args(["-v", "error", "-rtsp_transport", transport, "-i", url])
        .args(["-t", &seconds.to_string(), "-f", "null", "-"])
        .stdin(Stdio::null())
        .output()
        .expect("run ffmpeg");
    assert!(output.status.success(), "ffmpeg over {transport} failed");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn rtsp_play_in_ffmpeg_over_tcp_and_udp_and_in_gstreamer() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let (server, port) = start(dir.path());
    let _source = stream(&server, "cam", r#"{"rtsp":true}"#);
    let url = format!("rtsp://127.0.0.1:{port}/live/cam");
    // Ready once a keyframe is in the buffer (DESCRIBE is 404 before).
    wait_until(Duration::from_secs(30), "DESCRIBE answers 200", || {
        describe_status(port, "live/cam").contains("200")
    })
    .unwrap();

    let streams = probe_streams(&url).unwrap();
    let video = streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video"))
        .unwrap_or_else(|| panic!("no video: {streams:?}"));
    assert_eq!(video.codec_name.as_deref(), Some("h264"));
    assert_eq!((video.width, video.height), (Some(1280), Some(720)));
    assert!(
        streams
            .iter()
            .any(|s| s.codec_name.as_deref() == Some("aac")),
        "{streams:?}"
    );

    for transport in ["tcp", "udp"] {
        let errors = decode(&url, transport, 10);
        assert!(
            errors.trim().is_empty(),
            "ffmpeg over {transport} decodes with errors:\n{errors}"
        );
    }

    // Each play was a session of its own with the RTP bytes it got (SPEC §Sessions).
    crate::sessions::wait_played_sessions(&server, "rtsp", 2);

    // An independent client: GStreamer's rtspsrc decodes 150 video frames (5 s) and stops.
    let gst = Command::new("timeout")
        .args(["60", "gst-launch-1.0", "-q", "rtspsrc"])
        .arg(format!("location={url}"))
        .args(["protocols=tcp", "!", "rtph264depay", "!", "h264parse", "!"])
        .args(["avdec_h264", "!", "fakesink", "num-buffers=150"])
        .stdin(Stdio::null())
        .output()
        .expect("run gst-launch-1.0 (scripts/test installs gstreamer1.0-tools)");
    let stderr = String::from_utf8_lossy(&gst.stderr);
    assert!(gst.status.success(), "GStreamer rtspsrc failed: {stderr}");
    assert!(!stderr.contains("ERROR"), "{stderr}");

    // Players leave: the counters in the runtime go back to nothing playing.
    let runtime = server.runtime("cam");
    assert_eq!(runtime["status"], "active", "{runtime}");
}

#[test]
fn rtsp_refuses_unknown_streams_and_streams_without_rtsp() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let (server, port) = start(dir.path());
    let _source = stream(&server, "hls-only", r#"{"hls":true}"#);
    crate::hls::wait_segments(&server, "hls-only", 1, Duration::from_secs(30));
    assert!(describe_status(port, "live/nope").contains("404"));
    assert!(describe_status(port, "live/hls-only").contains("404"));
    // Garbage gets a 400 and the connection closes; the listener goes on.
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket
        .write_all(b"\x16\x03\x01\x02\x00 hello\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = socket.read_to_end(&mut answer);
    assert!(
        String::from_utf8_lossy(&answer).starts_with("RTSP/1.0 400"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(describe_status(port, "live/nope").contains("404"));
}
