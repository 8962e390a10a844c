//! Requests the router refuses: the peer hears why and the connection closes.

use std::time::Duration;

use tributary_rtmp::{ClientEvent, ClientIntent, Error};

use crate::support::{Client, Server, expect_closed, ffmpeg_play, publish};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_code_is_refused_at_publish_and_play() {
    let server = Server::start(&["cam"], |_| {}).await;

    let mut publisher = publish(&server.url("live/nope"));
    let status = tokio::time::timeout(Duration::from_secs(20), publisher.wait())
        .await
        .expect("ffmpeg should give up on a refused publish")
        .unwrap();
    assert!(!status.success(), "ffmpeg exited with {status}");

    let mut player = Client::connect(&server.url("live/nope"), ClientIntent::Play).await;
    match player
        .until("Play.Start", |e| matches!(e, ClientEvent::PlayStarted))
        .await
    {
        Err(Error::Refused { code, .. }) => assert_eq!(code, "NetStream.Play.StreamNotFound"),
        other => panic!("play of an unknown code was not refused: {other:?}"),
    }
    expect_closed(&mut player.socket, Duration::from_secs(5), "refused play").await;

    let (errors, decoded) = ffmpeg_play(&server.url("live/nope"), 1).await;
    assert!(errors.contains("exited"), "{errors}");
    assert_eq!(decoded, 0);

    let stats = server.listener.stats();
    assert!(stats.rejected >= 3, "{stats:?}");
    assert_eq!((stats.publishers, stats.players), (0, 0));
    server
        .wait_stats(Duration::from_secs(5), "every connection closed", |s| {
            s.connections == 0
        })
        .await;
}
