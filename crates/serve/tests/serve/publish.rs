//! FFmpeg publishes H.264 (B-frames) + AAC; the hub gets playable frames; FFmpeg and our own
//! client play them back.

use std::time::Duration;

use tributary_media::Codec;
use tributary_rtmp::{ClientEvent, ClientIntent, Error};
use tributary_serve::PublishEnd;

use crate::support::{Client, Server, collect, ffmpeg_play, nal_types, publish, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_and_players_decode_from_a_keyframe() {
    let server = Server::start(&["cam"], |_| {}).await;
    let mut sub = server.router.subscribe("cam");
    let mut publisher = publish(&server.url("live/cam?key=s3cret"));

    // Frames at the hub: H.264 keyframes with SPS/PPS, B-frames, AAC with its config.
    let frames = collect(&mut sub, Duration::from_secs(20), "2 GOPs", |frames| {
        frames
            .iter()
            .filter(|f| f.codec == Codec::H264 && f.keyframe)
            .count()
            >= 2
    })
    .await;
    let video: Vec<_> = frames.iter().filter(|f| f.codec == Codec::H264).collect();
    let audio: Vec<_> = frames.iter().filter(|f| f.codec == Codec::Aac).collect();
    assert!(video[0].keyframe, "the buffer starts at a keyframe");
    for keyframe in video.iter().filter(|f| f.keyframe) {
        let types = nal_types(&keyframe.payload);
        assert!(
            types.contains(&7) && types.contains(&8) && types.contains(&5),
            "keyframe NAL types {types:?}"
        );
    }
    assert!(
        video.iter().any(|f| f.pts != f.dts),
        "B-frames: some PTS differs from DTS"
    );
    assert!(video.len() >= 60, "{} video frames", video.len());
    assert!(audio.len() >= 50, "{} audio frames", audio.len());
    assert!(audio.iter().all(|f| {
        f.config
            .as_ref()
            .is_some_and(|c| !c.decoder_config.is_empty())
    }));
    assert_eq!(
        *server.router.keys.lock().unwrap(),
        [Some("s3cret".to_owned())]
    );
    assert_eq!(server.listener.stats().publishers, 1);
    assert!(server.router.is_live("cam"));

    // A second publisher to the live slot is refused.
    let mut second = Client::connect(&server.url("live/cam"), ClientIntent::Publish).await;
    match second
        .until("Publish.Start", |e| {
            matches!(e, ClientEvent::PublishStarted)
        })
        .await
    {
        Err(Error::Refused { code, .. }) => assert_eq!(code, "NetStream.Publish.BadName"),
        other => panic!("a second publisher was not refused: {other:?}"),
    }

    // FFmpeg plays and decodes 5 s cleanly.
    let (errors, decoded) = ffmpeg_play(&server.url("live/cam"), 5).await;
    assert_eq!(errors, "", "ffmpeg decode errors");
    assert!((140..=160).contains(&decoded), "{decoded} frames decoded");

    // A late player starts at a keyframe, sequence headers first.
    let mut player = Client::connect(&server.url("live/cam"), ClientIntent::Play).await;
    let events = player
        .until(
            "a video frame",
            |e| matches!(e, ClientEvent::Media(f) if f.codec == Codec::H264),
        )
        .await
        .expect("playing");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ClientEvent::MediaDropped { .. })),
        "{events:?}"
    );
    let Some(ClientEvent::Media(first)) = events.last() else {
        unreachable!()
    };
    assert!(first.keyframe);
    let types = nal_types(&first.payload);
    assert!(types.contains(&7) && types.contains(&8), "{types:?}");
    drop(player);

    // The publisher leaves: the router hears why, once, and the slot frees.
    publisher.kill().await.unwrap();
    wait_for(Duration::from_secs(5), "the slot to free", || {
        !server.router.is_live("cam")
    })
    .await;
    let ends = server.router.ends.lock().unwrap().clone();
    assert!(
        matches!(
            ends[..],
            [PublishEnd::Eof | PublishEnd::Io(std::io::ErrorKind::ConnectionReset)]
        ),
        "{ends:?}"
    );
    server
        .wait_stats(Duration::from_secs(5), "no publisher", |s| {
            s.publishers == 0
        })
        .await;
}

/// With `publish_merge`, a publisher's frames come in batches, one read per interval: the
/// frames of ~4 s of live FFmpeg carry about one arrival instant per interval (a batch with a
/// keyframe may take a second read of the 64 KiB buffer). Without it, nearly every frame is
/// read on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_merge_reads_a_publisher_in_batches() {
    const MERGE: Duration = Duration::from_millis(100);
    let distinct_arrivals = |publish_merge: Duration| async move {
        let server = Server::start(&["cam"], |config| config.publish_merge = publish_merge).await;
        let mut sub = server.router.subscribe("cam");
        let _publisher = publish(&server.url("live/cam"));
        // The first keyframe, then 4 s of frames as they come.
        let start = collect(&mut sub, Duration::from_secs(20), "a keyframe", |frames| {
            frames.iter().any(|f| f.keyframe)
        })
        .await;
        let from = start.last().expect("a frame").arrival;
        let frames = collect(
            &mut sub,
            Duration::from_secs(20),
            "4 s of frames",
            |frames| {
                frames
                    .last()
                    .is_some_and(|f| f.arrival.duration_since(from) >= Duration::from_secs(4))
            },
        )
        .await;
        let span = frames.last().unwrap().arrival.duration_since(from);
        let mut arrivals: Vec<_> = frames.iter().map(|f| f.arrival).collect();
        arrivals.dedup();
        (frames.len(), arrivals.len(), span)
    };

    let (frames, batches, span) = distinct_arrivals(MERGE).await;
    // One read per interval, one more for each of the two keyframes in the span.
    let bound = usize::try_from(span.as_millis() / MERGE.as_millis()).unwrap() + 3;
    assert!(frames >= 250, "{frames} frames in {span:?}");
    assert!(
        batches <= bound,
        "{frames} frames came in {batches} reads over {span:?}: more than one per {MERGE:?}"
    );

    let (frames, reads, span) = distinct_arrivals(Duration::ZERO).await;
    assert!(
        reads > 2 * bound,
        "without merging, {frames} frames came in only {reads} reads over {span:?}"
    );
}
