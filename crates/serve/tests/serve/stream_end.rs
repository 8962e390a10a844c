//! A stream that stops ends its plays with `UnpublishNotify`, and its publisher is let go.

use std::time::Duration;

use tributary_media::Codec;
use tributary_rtmp::{ClientEvent, ClientIntent};

use crate::support::{Client, Server, TestRouter, audio, expect_closed, keyframe, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_buffer_ends_players_and_the_publisher() {
    let server = Server::start(&["sports/ch1"], |_| {}).await;
    // A multi-segment code, addressed in full (no `live/`).
    let url = server.url("sports/ch1");

    let mut publisher = Client::connect(&url, ClientIntent::Publish).await;
    publisher
        .until("Publish.Start", |e| {
            matches!(e, ClientEvent::PublishStarted)
        })
        .await
        .unwrap();
    publisher.send(&keyframe(0)).await;
    publisher.send(&audio(0)).await;

    let mut player = Client::connect(&url, ClientIntent::Play).await;
    player
        .until(
            "the cached keyframe",
            |e| matches!(e, ClientEvent::Media(f) if f.codec == Codec::H264 && f.keyframe),
        )
        .await
        .unwrap();
    publisher.send(&keyframe(40)).await;
    player
        .until(
            "a live keyframe",
            |e| matches!(e, ClientEvent::Media(f) if f.codec == Codec::H264 && f.dts.0 > 0),
        )
        .await
        .unwrap();

    // The stream stops.
    assert!(server.router.hub.delete(&TestRouter::buffer("sports/ch1")));
    let events = player
        .until("the end of the stream", |e| {
            matches!(e, ClientEvent::StreamEnded { .. })
        })
        .await
        .unwrap();
    let Some(ClientEvent::StreamEnded { code }) = events.last() else {
        unreachable!()
    };
    assert_eq!(code, "NetStream.Play.UnpublishNotify");
    expect_closed(&mut player.socket, Duration::from_secs(5), "ended play").await;

    // The publisher's next frame finds no buffer: it is disconnected and its slot freed.
    publisher.send(&keyframe(80)).await;
    expect_closed(
        &mut publisher.socket,
        Duration::from_secs(5),
        "orphaned publisher",
    )
    .await;
    wait_for(Duration::from_secs(5), "the slot to free", || {
        !server.router.is_live("sports/ch1")
    })
    .await;
    server
        .wait_stats(Duration::from_secs(5), "every connection closed", |s| {
            s.connections == 0 && s.publishers == 0 && s.players == 0
        })
        .await;
}
