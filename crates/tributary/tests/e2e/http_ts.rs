//! HTTP-TS play (issue 15 item 6): `GET /{code}/mpegts` of an RTMP-fed stream decodes in
//! ffmpeg and in GStreamer (an independent client), starts at a keyframe, and a client that
//! stops reading does not hold anyone else back.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use tributary_testkit::{
    ClipSpec, LiveSender, cached_clip, decode_errors, free_tcp_port, probe_packets, wait_until,
};

use crate::hls::wait_new_segment;
use crate::server::{Server, send};
use crate::turn::shared;

#[test]
fn mpegts_plays_in_ffmpeg_and_gstreamer_and_a_stalled_client_holds_nobody_back() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{port}"));
    // No protocol flag: HTTP-TS serves every running stream.
    let body = r#"{"inputs":[{"url":"publish://"}],"protocols":{"hls":true}}"#;
    let answer = send("PUT", &server.url("/streams/studio"), Some(body), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);

    // Unknown and not-yet-fed streams.
    let unknown = send("GET", &server.url("/nope/mpegts"), None, &[]);
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(
        unknown.body.to_string().contains("nope"),
        "{}",
        unknown.body
    );

    let clip = cached_clip(&ClipSpec::default(), "mp4").expect("encode the test clip");
    let url = format!("rtmp://127.0.0.1:{port}/live/studio");
    let _publisher = LiveSender::rtmp(&clip, &url).expect("start the ffmpeg publisher");
    let playlist = server.url("/studio/index.m3u8");
    wait_until(
        Duration::from_secs(30),
        "the stream's first segments",
        || {
            tributary_testkit::http_get(&playlist)
                .map(|(status, _, body)| status == 200 && body.windows(4).any(|w| w == b".ts\n"))
                .unwrap_or(false)
        },
    )
    .unwrap();

    // A client that asks and then never reads: its frames pile up in its own hub backlog.
    let mpegts = server.url("/studio/mpegts");
    let stalled = stalled_client(&mpegts);

    // ffmpeg decodes 10 s without a complaint; the first video packet is a keyframe.
    let errors = decode_errors(&mpegts, 10.0).unwrap();
    assert!(errors.trim().is_empty(), "HTTP-TS decode errors:\n{errors}");
    let packets = probe_packets(&mpegts, &["-read_intervals", "%+4"]).unwrap();
    let first_video = packets
        .iter()
        .find(|p| p.codec_type.as_deref() == Some("video"))
        .expect("video packets");
    assert!(first_video.keyframe, "the body starts at a keyframe");
    assert!(
        packets
            .iter()
            .any(|p| p.codec_type.as_deref() == Some("audio")),
        "audio is carried"
    );

    // GStreamer, an independent TS client, decodes pictures from it.
    assert_gstreamer_decodes(&mpegts);

    // The response is chunked video/mp2t.
    let (status, headers, _) = head_of(&mpegts);
    assert_eq!(status, 200);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("content-type"), Some("video/mp2t"));
    assert_eq!(header("transfer-encoding"), Some("chunked"));
    assert_eq!(header("content-length"), None);

    // All along, the client that never reads held nobody back: the decodes above ran in real
    // time beside it, and HLS still gets new segments.
    wait_new_segment(&server, "studio", Duration::from_secs(10));
    drop(stalled);
    let errors = decode_errors(&mpegts, 3.0).unwrap();
    assert!(
        errors.trim().is_empty(),
        "after the stalled client:\n{errors}"
    );
}

/// Opens `url` with a raw GET and never reads the body: the server's writes to it stall once
/// the socket buffers fill. The connection stays open until the stream is dropped.
fn stalled_client(url: &str) -> TcpStream {
    let (addr, path) = split(url);
    let mut socket = TcpStream::connect(addr).unwrap();
    write!(socket, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    socket
}

/// Status and headers of a GET of `url`; the body is not read past the headers.
fn head_of(url: &str) -> (u16, Vec<(String, String)>, TcpStream) {
    let (addr, path) = split(url);
    let mut socket = TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(socket, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut reader = BufReader::new(socket.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let Some((k, v)) = line.trim_end().split_once(':') else {
            break;
        };
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    (status, headers, socket)
}

fn split(url: &str) -> (&str, &str) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let slash = rest.find('/').unwrap_or(rest.len());
    (&rest[..slash], &rest[slash..])
}

/// GStreamer's `souphttpsrc ! tsdemux` (an independent TS client) decodes video from `url`.
fn assert_gstreamer_decodes(url: &str) {
    assert_gstreamer_plays(url, &["is-live=true", "!", "tsdemux"]);
}

/// GStreamer (an independent client) decodes video frames from `url` through `demux`, the
/// pipeline between `souphttpsrc location=URL` and `h264parse` (`["is-live=true", "!",
/// "tsdemux"]` for a TS body, `["!", "hlsdemux", "!", "tsdemux"]` for HLS): a live pipeline
/// never ends by itself, so it runs until its sink reported 30 decoded frames
/// (`last-message = chain …` with `-v`) or 30 s passed, and is then interrupted.
pub(crate) fn assert_gstreamer_plays(url: &str, demux: &[&str]) {
    assert_gstreamer_plays_through(url, demux, "h264parse", "avdec_h264");
}

/// As [`assert_gstreamer_plays`], through the parser and decoder named (`h265parse`,
/// `avdec_h265` for H.265).
pub(crate) fn assert_gstreamer_plays_through(url: &str, demux: &[&str], parse: &str, decode: &str) {
    let location = format!("location={url}");
    let mut args = vec!["-v", "souphttpsrc", &location];
    args.extend_from_slice(demux);
    args.extend([
        "!",
        parse,
        "!",
        decode,
        "!",
        "fakesink",
        "name=sink",
        "silent=false",
    ]);
    let mut child = Command::new("gst-launch-1.0")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gst-launch-1.0 (gstreamer1.0-tools) is installed");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut frames = 0;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("sink") && line.contains("chain") {
                frames += 1;
                if frames == 30 {
                    let _ = tx.send(());
                    return;
                }
            }
        }
    });
    let played = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    assert!(played.is_ok(), "GStreamer decoded no 30 frames from {url}");
}
