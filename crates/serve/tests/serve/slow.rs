//! A player that stops reading is disconnected after the backlog; another player keeps
//! getting every frame in time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpSocket;
use tributary_media::Codec;
use tributary_rtmp::{ClientEvent, ClientIntent};

use crate::support::{Client, Server, collect, expect_closed, publish};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_player_is_cut_after_its_backlog_and_others_play_on() {
    let server = Server::start(&["cam"], |config| config.play_backlog_sec = 2).await;
    let url = server.url("live/cam");
    let mut sub = server.router.subscribe("cam");
    let _publisher = publish(&url);
    collect(&mut sub, Duration::from_secs(20), "a keyframe", |frames| {
        frames.iter().any(|f| f.keyframe && f.codec == Codec::H264)
    })
    .await;
    drop(sub);

    // A player that reads everything, noting when each video frame arrives.
    let mut good = Client::connect(&url, ClientIntent::Play).await;
    good.until("Play.Start", |e| matches!(e, ClientEvent::PlayStarted))
        .await
        .unwrap();
    let arrivals = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let reader = tokio::spawn({
        let arrivals = Arc::clone(&arrivals);
        async move {
            while let Ok(Some(events)) = good.step(Duration::from_secs(10)).await {
                let now = Instant::now();
                for event in events {
                    if matches!(&event, ClientEvent::Media(f) if f.codec == Codec::H264) {
                        arrivals.lock().unwrap().push(now);
                    }
                }
            }
        }
    });

    // A player with a tiny receive window that stops reading once playing.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let socket = socket.connect(server.listener.local_addr()).await.unwrap();
    let mut stalled = Client::over(socket, &url, ClientIntent::Play);
    stalled
        .until("Play.Start", |e| matches!(e, ClientEvent::PlayStarted))
        .await
        .unwrap();
    let stalled_at = Instant::now();
    server
        .wait_stats(Duration::from_secs(30), "players", |s| s.players == 2)
        .await;

    server
        .wait_stats(Duration::from_secs(30), "the stalled player's cut", |s| {
            s.slow_players == 1
        })
        .await;
    let cut_after = stalled_at.elapsed();
    assert!(
        cut_after >= Duration::from_secs(2),
        "cut after {cut_after:?}"
    );
    assert_eq!(server.listener.stats().players, 1, "the good player stays");

    // The good player saw no hiccup meanwhile.
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let arrivals = arrivals.lock().unwrap();
        let during: Vec<_> = arrivals.iter().filter(|at| **at >= stalled_at).collect();
        let expected = cut_after.as_secs_f64() * 30.0;
        assert!(
            during.len() as f64 >= expected * 0.8,
            "{} video frames in {cut_after:?}",
            during.len()
        );
        let gap = during
            .windows(2)
            .map(|w| w[1].duration_since(*w[0]))
            .max()
            .unwrap();
        assert!(
            gap < Duration::from_secs(1),
            "the good player stalled for {gap:?}"
        );
    }
    reader.abort();
    expect_closed(
        &mut stalled.socket,
        Duration::from_secs(10),
        "stalled player",
    )
    .await;
}
