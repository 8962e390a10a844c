//! RTSP pull (issue 15, item 4) from a source that is not Tributary: GStreamer's RTSP server
//! (`tests/rtsp/camera.py`), standing in for an IP camera, with Digest authentication, over
//! TCP-interleaved, UDP and TLS (`rtsps://`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tributary_testkit::{decode_errors, free_tcp_port, probe_packets, probe_streams, wait_until};

use crate::hls::{wait_new_segment, wait_segments, window_ts};
use crate::server::{Server, put_stream};
use crate::turn::shared;

/// Digest credentials the camera requires.
const USER: &str = "admin";
const PASSWORD: &str = "s3cr:t@cam";

/// The camera: GStreamer's RTSP server on `127.0.0.1:port/cam`, killed on drop.
struct Camera(Child);

impl Camera {
    /// An H.264 camera.
    fn start(port: u16) -> Self {
        Self::launch(port, &[])
    }

    /// A camera with more arguments of `camera.py` (`--h265`).
    fn launch(port: u16, args: &[&str]) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/rtsp/camera.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .args([
                &port.to_string(),
                "cam",
                "--user",
                USER,
                "--password",
                PASSWORD,
            ])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect(
                "run tests/rtsp/camera.py with Debian's python3 (scripts/test installs \
                 python3-gi and gir1.2-gst-rtsp-server-1.0)",
            );
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "the GStreamer RTSP camera did not start (is gir1.2-gst-rtsp-server-1.0 installed?)"
        );
        Self(child)
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The camera's URL with the credentials percent-encoded, as an operator writes it.
fn camera_url(port: u16, password: &str, query: &str) -> String {
    let password = password.replace(':', "%3A").replace('@', "%40");
    format!("rtsp://{USER}:{password}@127.0.0.1:{port}/cam{query}")
}

fn create(server: &Server, code: &str, url: &str) {
    put_stream(
        server,
        code,
        &format!(r#"{{"inputs":[{{"url":"{url}"}}],"protocols":{{"hls":true}}}}"#),
    );
}

/// The stream's HLS carries the camera's `codec` video (ffprobe's name) at 640x360 and AAC,
/// decodes without errors, and its video runs at the camera's 25 fps with strictly increasing
/// DTS.
fn assert_plays(server: &Server, code: &str, codec: &str, dir: &std::path::Path) {
    wait_segments(server, code, 3, Duration::from_secs(40));
    let streams = probe_streams(&server.url(&format!("/{code}/index.m3u8"))).unwrap();
    let video = streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video"))
        .unwrap_or_else(|| panic!("no video: {streams:?}"));
    assert_eq!(video.codec_name.as_deref(), Some(codec));
    assert_eq!((video.width, video.height), (Some(640), Some(360)));
    assert!(
        streams
            .iter()
            .any(|s| s.codec_name.as_deref() == Some("aac")),
        "no AAC: {streams:?}"
    );

    let window = window_ts(server, code, dir);
    let window = window.to_str().unwrap();
    let errors = decode_errors(window, 6.0).unwrap();
    assert!(
        errors.trim().is_empty(),
        "{code} decodes with errors:\n{errors}"
    );
    let packets = probe_packets(window, &[]).unwrap();
    for kind in ["video", "audio"] {
        let dts: Vec<f64> = packets
            .iter()
            .filter(|p| p.codec_type.as_deref() == Some(kind))
            .filter_map(|p| p.dts_time)
            .collect();
        assert!(dts.len() > 50, "{kind}: {} packets", dts.len());
        assert!(
            dts.windows(2).all(|w| w[1] > w[0]),
            "{kind} DTS not strictly increasing"
        );
        if kind == "video" {
            let fps = (dts.len() - 1) as f64 / (dts.last().unwrap() - dts[0]);
            assert!((23.0..=27.0).contains(&fps), "{fps} fps");
        }
    }
    let input = server.runtime(code)["inputs"][0].clone();
    assert_eq!(input["status"], "active", "{input}");
}

#[test]
fn rtsp_pull_over_tcp_with_digest_plays_and_reconnects() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let camera = Camera::start(port);
    let server = Server::start(dir.path(), &[]);
    create(&server, "cam-tcp", &camera_url(port, PASSWORD, ""));
    assert_plays(&server, "cam-tcp", "h264", dir.path());

    // The camera goes away: the input reports it; when it comes back, HLS goes on.
    drop(camera);
    wait_until(Duration::from_secs(20), "the loss reported", || {
        errors(&server, "cam-tcp")
            .iter()
            .any(|e| e.contains("127.0.0.1"))
    })
    .unwrap_or_else(|e| panic!("{e}: {}", server.runtime("cam-tcp")));
    let _camera = Camera::start(port);
    wait_new_segment(&server, "cam-tcp", Duration::from_secs(40));
    wait_new_segment(&server, "cam-tcp", Duration::from_secs(10));
    // No credential in what the API shows.
    let runtime = server.runtime("cam-tcp").to_string();
    assert!(!runtime.contains("s3cr"), "{runtime}");
}

#[test]
fn rtsp_pull_over_udp_plays() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let _camera = Camera::start(port);
    let server = Server::start(dir.path(), &[]);
    create(
        &server,
        "cam-udp",
        &camera_url(port, PASSWORD, "?transport=udp"),
    );
    assert_plays(&server, "cam-udp", "h264", dir.path());
}

/// H.265 with two B-frames between references: RTP carries presentation times only, so the
/// pull derives decode times (strictly increasing, never after presentation: `assert_plays`).
#[test]
fn rtsp_pull_of_h265_with_b_frames_plays() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let _camera = Camera::launch(port, &["--h265", "--bframes"]);
    let server = Server::start(dir.path(), &[]);
    create(&server, "cam-hevc", &camera_url(port, PASSWORD, ""));
    assert_plays(&server, "cam-hevc", "hevc", dir.path());
}

#[test]
fn a_wrong_rtsp_password_is_reported() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let _camera = Camera::start(port);
    let server = Server::start(dir.path(), &[]);
    create(&server, "cam-bad", &camera_url(port, "wrong", ""));
    wait_until(Duration::from_secs(20), "a 401 reported", || {
        errors(&server, "cam-bad")
            .iter()
            .any(|e| e.contains("401") && e.contains("(not retriable)"))
    })
    .unwrap_or_else(|e| panic!("{e}: {}", server.runtime("cam-bad")));
    let runtime = server.runtime("cam-bad");
    assert_eq!(runtime["inputs"][0]["frames"], 0, "{runtime}");
    assert!(!runtime.to_string().contains("wrong"), "{runtime}");
}

/// RTSP over TLS from a camera with a self-signed certificate: played with
/// `net.insecure_tls`, refused (not retriable, named) without it; `rtsps://` over UDP is a 422.
#[test]
fn rtsps_pull_plays_over_tls_and_checks_the_certificate() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=camera.test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl (scripts/test installs it) makes the camera's certificate");
    assert!(made.success(), "openssl req failed");
    let port = free_tcp_port();
    let _camera = Camera::launch(
        port,
        &["--tls", cert.to_str().unwrap(), key.to_str().unwrap()],
    );
    let server = Server::start(dir.path(), &[]);
    let url = camera_url(port, PASSWORD, "").replacen("rtsp://", "rtsps://", 1);
    put_stream(
        &server,
        "cam-tls",
        &format!(
            r#"{{"inputs":[{{"url":"{url}","net":{{"insecure_tls":true}}}}],
                "protocols":{{"hls":true}}}}"#
        ),
    );
    assert_plays(&server, "cam-tls", "h264", dir.path());

    // Certificates are checked unless told otherwise: a self-signed one is refused, once.
    create(&server, "cam-untrusted", &url);
    wait_until(Duration::from_secs(20), "the certificate refused", || {
        errors(&server, "cam-untrusted")
            .iter()
            .any(|e| e.contains("TLS") && e.contains("(not retriable)"))
    })
    .unwrap_or_else(|e| panic!("{e}: {}", server.runtime("cam-untrusted")));
    let runtime = server.runtime("cam-untrusted");
    assert_eq!(runtime["inputs"][0]["frames"], 0, "{runtime}");
    assert!(!runtime.to_string().contains("s3cr"), "{runtime}");

    let answer = crate::server::send(
        "PUT",
        &server.url("/streams/cam-udp-tls"),
        Some(&format!(
            r#"{{"inputs":[{{"url":"{url}?transport=udp"}}],"protocols":{{"hls":true}}}}"#
        )),
        &[],
    );
    assert_eq!(answer.status, 422, "{}", answer.body);
    let body = answer.body.to_string();
    assert!(
        body.contains("inputs[0].url") && body.contains("SRTP"),
        "{body}"
    );
}

/// The messages of the first input's error history.
fn errors(server: &Server, code: &str) -> Vec<String> {
    let runtime = server.runtime(code);
    runtime["inputs"][0]["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect()
}
