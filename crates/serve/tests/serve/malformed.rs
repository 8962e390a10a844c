//! Hostile peers lose only their own connection: the listener stays up and serves a normal
//! publisher afterwards.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tributary_media::Codec;
use tributary_rtmp::{ClientEvent, ClientIntent};

use crate::support::{Client, Server, audio, collect, connect_tcp, expect_closed, keyframe};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_peers_close_alone_and_the_listener_keeps_serving() {
    let server = Server::start(&["cam"], |config| {
        config.handshake_timeout = Duration::from_secs(1);
    })
    .await;
    let url = server.url("live/cam");
    let closes = Duration::from_secs(5);

    // Garbage instead of a handshake (C0 is not version 3).
    let mut socket = connect_tcp(&url).await;
    socket.write_all(&[0xff; 4096]).await.unwrap();
    expect_closed(&mut socket, closes, "garbage handshake").await;

    // A truncated handshake that never completes: cut at the handshake deadline.
    let mut socket = connect_tcp(&url).await;
    socket.write_all(&[3; 100]).await.unwrap();
    expect_closed(&mut socket, closes, "truncated handshake").await;

    // Garbage after the handshake.
    let mut client = connected(&url).await;
    let mut garbage = vec![0u8; 64 * 1024];
    let mut x: u32 = 0x1234_5678;
    for byte in &mut garbage {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        *byte = (x >> 24) as u8;
    }
    let _ = client.socket.write_all(&garbage).await;
    expect_closed(&mut client.socket, closes, "garbage after the handshake").await;

    // An absurd chunk size: Set Chunk Size (type 1) of 2^31 - 1 on chunk stream 2.
    let mut client = connected(&url).await;
    let set_chunk_size = [
        0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff,
    ];
    client.socket.write_all(&set_chunk_size).await.unwrap();
    expect_closed(&mut client.socket, closes, "absurd chunk size").await;

    // A truncated chunk: a 1000-byte message announced, 10 bytes sent, then EOF.
    let mut client = connected(&url).await;
    let truncated = [
        0x03, 0, 0, 0, 0, 0x03, 0xe8, 20, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    ];
    client.socket.write_all(&truncated).await.unwrap();
    client.socket.shutdown().await.unwrap();
    expect_closed(&mut client.socket, closes, "truncated chunk").await;

    let stats = server.listener.stats();
    assert!(stats.protocol_errors >= 3, "{stats:?}");
    server
        .wait_stats(closes, "every bad connection closed", |s| {
            s.connections == 0
        })
        .await;

    // A normal publisher still gets through.
    let mut sub = server.router.subscribe("cam");
    let mut publisher = Client::connect(&url, ClientIntent::Publish).await;
    publisher
        .until("Publish.Start", |e| {
            matches!(e, ClientEvent::PublishStarted)
        })
        .await
        .expect("publishing after the bad peers");
    publisher.send(&keyframe(0)).await;
    publisher.send(&audio(0)).await;
    let frames = collect(&mut sub, closes, "the publisher's keyframe", |f| {
        !f.is_empty()
    })
    .await;
    assert!(
        frames.iter().any(|f| f.codec == Codec::H264 && f.keyframe),
        "the keyframe reaches the buffer"
    );
}

/// A client past the handshake and `connect` (it has asked for a stream, not yet published).
async fn connected(url: &str) -> Client {
    let mut client = Client::connect(url, ClientIntent::Publish).await;
    client
        .until("Connect.Success", |e| {
            matches!(e, ClientEvent::Connected { .. })
        })
        .await
        .expect("connecting");
    client
}
