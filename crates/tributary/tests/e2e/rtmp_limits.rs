//! What RTMP peers that never publish can cost (issue 13, item 2): raw TCP clients that shake
//! hands, raise the chunk size and announce a 4 MiB command, as an attacker would, against
//! the real binary.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tributary_testkit::{ClipSpec, LiveSender, cached_clip, free_tcp_port, wait_until};

use crate::hls::{wait_new_segment, wait_segments};
use crate::server::{Server, put_stream, send};
use crate::turn::shared;

/// A connection past the RTMP handshake.
fn handshaken(port: u16) -> TcpStream {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.extend([7u8; 1536]);
    socket.write_all(&c0c1).unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
    socket.read_exact(&mut s0s1s2).unwrap();
    // C2 echoes S1.
    socket.write_all(&s0s1s2[1..1537]).unwrap();
    socket
}

/// Set Chunk Size 8 MiB, then the header of a 4 MiB AMF0 command and all of its body but the
/// last byte: before the fix the server held it, 4 MiB per connection, for as long as the
/// peer liked.
fn oversized_command() -> Vec<u8> {
    let len: u32 = 4 << 20;
    let mut out = vec![0x02, 0, 0, 0, 0, 0, 4, 0x01, 0, 0, 0, 0];
    out.extend((8u32 << 20).to_be_bytes());
    out.extend([0x03, 0, 0, 0]);
    out.extend(&len.to_be_bytes()[1..]);
    out.extend([0x14, 0, 0, 0, 0]);
    out.resize(out.len() + len as usize - 1, 0x05);
    out
}

#[test]
fn peers_that_never_publish_are_cut_before_they_cost_memory() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{port}"));
    // A real publisher on another stream, which must not notice the attack.
    put_stream(
        &server,
        "studio",
        r#"{"inputs":[{"url":"publish://"}],"protocols":{"hls":true}}"#,
    );
    let clip = cached_clip(&ClipSpec::default(), "mp4").expect("encode the test clip");
    let url = format!("rtmp://127.0.0.1:{port}/live/studio");
    let mut publisher = LiveSender::rtmp(&clip, &url).expect("start the ffmpeg publisher");
    wait_segments(&server, "studio", 2, Duration::from_secs(30));
    let before = server.peak_rss_bytes();

    let attack = oversized_command();
    let mut sockets = Vec::new();
    for _ in 0..30 {
        let mut socket = handshaken(port);
        // The server may close while this is still being written.
        let _ = socket.write_all(&attack);
        sockets.push(socket);
    }
    for mut socket in sockets {
        let mut byte = [0u8; 4096];
        loop {
            match socket.read(&mut byte) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => panic!("the server kept the connection: {e}"),
            }
        }
    }
    let grown = server.peak_rss_bytes().saturating_sub(before);
    assert!(
        grown < 16 << 20,
        "30 peers that never published grew the server by {} MiB",
        grown >> 20
    );
    // The refusals are logged with the peer and the limit (the log is read as it comes).
    wait_until(
        Duration::from_secs(10),
        "a refusal naming peer and limit",
        || {
            !server
                .logged(|line| {
                    let text = line.to_string();
                    text.contains("65536") && text.contains("127.0.0.1")
                })
                .is_empty()
        },
    )
    .unwrap();
    assert_eq!(send("GET", &server.url("/healthz"), None, &[]).status, 200);

    // The publisher kept publishing: still connected, and new segments keep coming.
    wait_new_segment(&server, "studio", Duration::from_secs(20));
    assert!(publisher.is_running(), "the publisher was cut");
}
