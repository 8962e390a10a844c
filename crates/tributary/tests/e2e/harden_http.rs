//! HTTP connections are bounded (issue 13, item 1): a slowloris client is cut at the
//! header-read timeout while a keep-alive connection may idle longer, and a flood of idle
//! connections under a low open-file limit is shed at the connection cap while RTMP and, once
//! the flood times out, the API keep working.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tributary_testkit::{
    ClipSpec, LiveSender, cached_clip, free_tcp_port, probe_packets, wait_until,
};

use crate::server::{Server, send};
use crate::turn::{alone, shared};

/// The video frames a player (ffprobe) gets from `url` in its first `seconds`.
pub(crate) fn video_frames(url: &str, seconds: u32) -> usize {
    let interval = format!("%+{seconds}");
    probe_packets(url, &["-read_intervals", &interval])
        .unwrap()
        .iter()
        .filter(|p| p.codec_type.as_deref() == Some("video"))
        .count()
}

/// The `host:port` of a server's HTTP listener.
fn http_addr(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Reads until the peer closes the connection (or `limit` passes), calling `tick` once a
/// second while the connection stays open; returns when it closed, measured from `start`.
fn closed_after(
    stream: &mut TcpStream,
    start: Instant,
    limit: Duration,
    mut tick: impl FnMut(&mut TcpStream),
) -> Option<Duration> {
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                tick(stream);
            }
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

#[test]
fn a_slowloris_is_cut_at_the_header_read_timeout_and_a_keep_alive_may_idle_longer() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let addr = http_addr(&server);

    // One header byte a second, never finishing the request.
    let start = Instant::now();
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .unwrap();
    let mut served_meanwhile = 0;
    let closed = closed_after(&mut slow, start, Duration::from_secs(30), |stream| {
        let _ = stream.write_all(b"a");
        // Everyone else is served meanwhile.
        if send("GET", &server.url("/healthz"), None, &[]).status == 200 {
            served_meanwhile += 1;
        }
    })
    .expect("the slowloris connection was still open after 30 s");
    assert!(
        (Duration::from_secs(9)..Duration::from_secs(15)).contains(&closed),
        "the slowloris connection closed after {closed:?}, not at the 10 s header-read timeout"
    );
    assert!(served_meanwhile >= 5, "{served_meanwhile} healthz answered");

    // A keep-alive connection idle for longer than the header-read timeout is still served:
    // its bound is the idle timeout (60 s).
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let start = Instant::now();
    let closed = closed_after(&mut idle, start, Duration::from_secs(15), |_| {});
    assert_eq!(closed, None, "the keep-alive connection closed while idle");
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 12];
    idle.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200", "a second request after 15 s idle");
}

#[test]
fn an_idle_flood_under_a_low_fd_limit_is_shed_while_rtmp_keeps_playing() {
    let _turn = alone();
    let dir = tempfile::tempdir().unwrap();
    let rtmp_port = free_tcp_port();
    // The server starts with 128 descriptors and may raise itself to 256.
    let server = Server::start_fd_limited(dir.path(), &format!("127.0.0.1:{rtmp_port}"), 128, 256);
    let raised = server.logged(|l| l["fields"]["message"] == "raised the open-file limit");
    assert_eq!(raised.len(), 1, "the limit is raised to the hard one");
    assert_eq!(raised[0]["fields"]["to"], 256);
    let limits = server.logged(|l| l["fields"]["message"] == "HTTP connection limits");
    assert_eq!(
        limits[0]["fields"]["total"], 128,
        "half the open-file limit"
    );

    let body = r#"{"inputs": [{"url": "publish://"}], "protocols": {"rtmp": true}}"#;
    assert_eq!(
        send("PUT", &server.url("/streams/live1"), Some(body), &[]).status,
        201
    );
    let clip = cached_clip(&ClipSpec::default(), "mp4").expect("encode the test clip");
    let url = format!("rtmp://127.0.0.1:{rtmp_port}/live/live1");
    let _publisher = LiveSender::rtmp(&clip, &url).expect("start the publisher");
    wait_until(Duration::from_secs(30), "the publisher to connect", || {
        server.runtime("live1")["inputs"][0]["publisher_connected"] == true
    })
    .unwrap();

    // 300 idle connections: more than the cap (128) and than the process's descriptors.
    let addr = http_addr(&server);
    let flood: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(&addr).expect("the listener keeps accepting"))
        .collect();
    // Those over the cap are closed at once (the newest shed), the rest stay open.
    for stream in &flood {
        stream.set_nonblocking(true).unwrap();
    }
    let closed = |mut stream: &TcpStream| match stream.read(&mut [0u8; 1]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    let mut shed = 0;
    wait_until(
        Duration::from_secs(10),
        "the connections over the cap to be shed",
        || {
            shed = flood.iter().filter(|s| closed(s)).count();
            shed >= 300 - 128
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {shed} of 300 shed"));
    assert!(
        !server
            .logged(|l| l["fields"]["message"]
                == "HTTP connection cap reached: closing new connections")
            .is_empty()
    );

    // RTMP plays throughout: the flood took no descriptor it needs.
    assert!(video_frames(&url, 3) > 30, "RTMP play during the flood");

    // The flood's admitted connections time out; then the API answers again.
    wait_until(
        Duration::from_secs(30),
        "the API to answer after the flood",
        || {
            ureq::get(&server.url("/healthz"))
                .timeout(Duration::from_secs(2))
                .call()
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .unwrap();
    assert!(
        server
            .logged(|l| l["fields"]["message"] == "HTTP accept failed")
            .is_empty(),
        "the process never ran out of descriptors"
    );
    assert_eq!(
        server.runtime("live1")["inputs"][0]["publisher_connected"],
        true,
        "the publisher stayed connected"
    );
    drop(flood);
}
