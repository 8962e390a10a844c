//! Buffers: fan-out, lag, the GOP cache, sessions and delete.

use bytes::Bytes;
use tributary_hub::{
    Batch, Batched, BufferConfig, Delivery, Hub, HubError, SessionReason, SubscribeFrom,
    TryRecvError,
};

use crate::support::{audio, drain, frames, id, n, video};

#[tokio::test(start_paused = true)]
async fn a_stuck_subscriber_slows_neither_the_writer_nor_the_others() {
    const TOTAL: i64 = 100_000;
    let hub = Hub::new();
    let id = id("cam");
    let mut writer = hub.create(id.clone(), 1024).unwrap();
    let mut stuck = hub.subscribe(&id, SubscribeFrom::Now, "stuck").unwrap();
    let mut reader = hub.subscribe(&id, SubscribeFrom::Now, "reader").unwrap();
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(delivery) = reader.recv().await {
            match delivery {
                Delivery::Frame(frame) => got.push(n(&frame)),
                Delivery::Lagged { dropped } => panic!("reader lagged by {dropped}"),
            }
        }
        (got, reader.dropped())
    });

    for i in 0..TOTAL {
        writer.write(video(i, i % 50 == 0)).unwrap();
        if i % 256 == 255 {
            // Let the reader run; the writer itself never waits for it.
            tokio::task::yield_now().await;
        }
    }
    let stats = writer.stats();
    assert_eq!(stats.frames, TOTAL as u64);
    let unnoticed = stats.drops.iter().find(|c| c.class == "stuck").unwrap();
    assert!(unnoticed.dropped >= (TOTAL - 1024) as u64, "{stats:?}");
    drop(writer); // deletes the buffer: the reader sees end-of-stream

    let (got, reader_dropped) = reading.await.unwrap();
    assert_eq!(reader_dropped, 0);
    assert_eq!(got, (0..TOTAL).collect::<Vec<_>>());

    let deliveries = drain(&mut stuck);
    let Some(Delivery::Lagged { dropped }) = deliveries.first() else {
        panic!("expected Lagged first, got {:?}", deliveries.first());
    };
    let got = frames(&deliveries);
    assert!(got[0].keyframe);
    assert_eq!(*dropped + got.len() as u64, TOTAL as u64);
    assert_eq!(stuck.dropped(), *dropped);
    assert_eq!(n(&got[0]), *dropped as i64);
    assert_eq!(stuck.try_recv().unwrap_err(), TryRecvError::Closed);
}

#[test]
fn a_late_subscriber_starts_at_the_cached_keyframe() {
    let hub = Hub::new();
    let id = id("cam");
    let mut writer = hub.create(id.clone(), 1024).unwrap();
    for frame in [
        video(0, true),
        video(1, false),
        audio(2),
        video(3, false),
        video(4, true),
        audio(5),
        video(6, false),
    ] {
        writer.write(frame).unwrap();
    }
    let mut late = hub
        .subscribe(&id, SubscribeFrom::LastKeyframe, "hls")
        .unwrap();
    let mut now = hub.subscribe(&id, SubscribeFrom::Now, "dvr").unwrap();
    let got: Vec<i64> = frames(&drain(&mut late)).iter().map(n).collect();
    assert_eq!(got, [4, 5, 6]);
    assert!(drain(&mut now).is_empty());
    writer.write(audio(7)).unwrap();
    assert_eq!(
        frames(&drain(&mut now)).iter().map(n).collect::<Vec<_>>(),
        [7]
    );
    assert_eq!(late.dropped(), 0);
}

/// Frames nobody will read again are let go at each keyframe: with readers that keep up (or
/// none), the ring holds about two GOPs, not `capacity` frames, and a late subscriber still
/// starts at the latest keyframe with its whole GOP.
#[test]
fn a_buffer_whose_readers_keep_up_holds_two_gops() {
    const GOP: i64 = 10;
    let hub = Hub::new();
    let id = id("cam");
    let mut writer = hub.create(id.clone(), 1024).unwrap();
    let mut reader = hub.subscribe(&id, SubscribeFrom::Now, "hls").unwrap();
    let mut got = Vec::new();
    for i in 0..20 * GOP {
        writer.write(video(i, i % GOP == 0)).unwrap();
        got.extend(frames(&drain(&mut reader)).iter().map(n));
        let held = writer.stats().held;
        assert!(held <= 2 * GOP as usize, "frame {i}: {held} held");
    }
    assert_eq!(got, (0..20 * GOP).collect::<Vec<_>>());
    assert_eq!(reader.dropped(), 0);
    // From the outgoing GOP's keyframe (180) on.
    assert_eq!(writer.stats().held, 2 * GOP as usize);

    let mut late = hub
        .subscribe(&id, SubscribeFrom::LastKeyframe, "rtmp_play")
        .unwrap();
    assert_eq!(
        frames(&drain(&mut late)).iter().map(n).collect::<Vec<_>>(),
        (19 * GOP..20 * GOP).collect::<Vec<_>>()
    );

    // With no subscriber at all, the same.
    drop((reader, late));
    for i in 20 * GOP..30 * GOP {
        writer.write(video(i, i % GOP == 0)).unwrap();
    }
    assert_eq!(writer.stats().held, 2 * GOP as usize);
}

/// A reader that stops reading keeps its backlog, however many keyframes pass, up to the
/// capacity: releasing never takes a frame from a subscriber that has not read it.
#[test]
fn a_stalled_reader_keeps_its_backlog_while_others_keep_up() {
    const GOP: i64 = 10;
    let hub = Hub::new();
    let id = id("cam");
    let mut writer = hub.create(id.clone(), 100).unwrap();
    let mut stalled = hub.subscribe(&id, SubscribeFrom::Now, "dvr").unwrap();
    let mut reader = hub.subscribe(&id, SubscribeFrom::Now, "hls").unwrap();
    for i in 0..95 {
        writer.write(video(i, i % GOP == 0)).unwrap();
        drain(&mut reader);
    }
    assert_eq!(writer.stats().held, 95);
    let got = drain(&mut stalled);
    assert_eq!(
        frames(&got).iter().map(n).collect::<Vec<_>>(),
        (0..95).collect::<Vec<_>>()
    );
    assert_eq!(stalled.dropped(), 0);
    // Caught up again: the next keyframe lets the old GOPs go.
    for i in 95..=100 {
        writer.write(video(i, i % GOP == 0)).unwrap();
    }
    // Frames 90..=100: the outgoing GOP and the new keyframe.
    assert_eq!(writer.stats().held, 11);
}

#[test]
fn a_subscriber_with_no_cached_keyframe_waits_for_the_next_one() {
    let hub = Hub::new();
    let id = id("cam");
    let mut writer = hub.create(id.clone(), 1024).unwrap();
    writer.write(video(0, false)).unwrap();
    let mut sub = hub
        .subscribe(&id, SubscribeFrom::LastKeyframe, "hls")
        .unwrap();
    writer.write(video(1, false)).unwrap();
    writer.write(audio(2)).unwrap();
    assert!(drain(&mut sub).is_empty());
    writer.write(video(3, true)).unwrap();
    writer.write(audio(4)).unwrap();
    let got = drain(&mut sub);
    assert_eq!(frames(&got).iter().map(n).collect::<Vec<_>>(), [3, 4]);
    assert!(!got.iter().any(|d| matches!(d, Delivery::Lagged { .. })));
    assert_eq!(
        sub.dropped(),
        0,
        "frames before the first keyframe are not drops"
    );
}

#[test]
fn a_new_session_restarts_the_gop_cache() {
    let hub = Hub::new();
    let id = id("cam");
    let mut writer = hub.create(id.clone(), 1024).unwrap();
    writer.write(video(0, true)).unwrap();
    writer.write(video(1, false)).unwrap();
    let first = writer.session().unwrap();
    let second = writer.start_session(SessionReason::Reconnect);
    assert!(second > first);
    writer.write(video(2, false)).unwrap();
    let mut sub = hub
        .subscribe(&id, SubscribeFrom::LastKeyframe, "hls")
        .unwrap();
    assert!(
        drain(&mut sub).is_empty(),
        "the old session's keyframe is no start"
    );
    writer.write(video(3, true)).unwrap();
    let got = frames(&drain(&mut sub));
    assert_eq!(got.len(), 1);
    assert_eq!((n(&got[0]), got[0].session), (3, second));
}

#[test]
fn an_audio_only_buffer_offers_a_short_recent_window() {
    let hub = Hub::new();
    let id = id("radio");
    let mut writer = hub.create(id.clone(), 1024).unwrap();
    for i in 0..200 {
        writer.write(audio(i)).unwrap();
    }
    let mut sub = hub
        .subscribe(&id, SubscribeFrom::LastKeyframe, "hls")
        .unwrap();
    let got: Vec<i64> = frames(&drain(&mut sub)).iter().map(n).collect();
    assert_eq!(got, (136..200).collect::<Vec<_>>());
}

#[test]
fn a_lagging_subscriber_resumes_at_a_keyframe() {
    let hub = Hub::new();
    let id = id("cam");
    let mut writer = hub.create(id.clone(), 8).unwrap();
    let mut sub = hub.subscribe(&id, SubscribeFrom::Now, "rtmp_play").unwrap();
    // GOP of 5: keyframes at 0, 5, 10, 15.
    for i in 0..17 {
        writer.write(video(i, i % 5 == 0)).unwrap();
    }
    // The ring holds 9..=16; the first keyframe held is 10.
    let got = drain(&mut sub);
    assert!(
        matches!(got[0], Delivery::Lagged { dropped: 10 }),
        "{got:?}"
    );
    assert_eq!(
        frames(&got).iter().map(n).collect::<Vec<_>>(),
        (10..17).collect::<Vec<_>>()
    );
    assert_eq!(sub.dropped(), 10);
    let stats = writer.stats();
    assert_eq!(stats.drops[0].class, "rtmp_play");
    assert_eq!(stats.drops[0].dropped, 10);
}

#[test]
fn a_lagging_subscriber_with_no_keyframe_held_waits_for_the_next() {
    let hub = Hub::new();
    let id = id("cam");
    let mut writer = hub.create(id.clone(), 4).unwrap();
    let mut sub = hub.subscribe(&id, SubscribeFrom::Now, "hls").unwrap();
    for i in 0..10 {
        writer.write(video(i, i == 0)).unwrap();
    }
    assert!(drain(&mut sub).is_empty(), "no keyframe held: nothing yet");
    writer.write(video(10, false)).unwrap();
    writer.write(video(11, true)).unwrap();
    let got = drain(&mut sub);
    assert!(
        matches!(got[0], Delivery::Lagged { dropped: 11 }),
        "{got:?}"
    );
    assert_eq!(frames(&got).iter().map(n).collect::<Vec<_>>(), [11]);
}

#[test]
fn the_byte_bound_limits_the_backlog() {
    let hub = Hub::new();
    let id = id("cam");
    let config = BufferConfig {
        capacity: 1024,
        max_bytes: 10 * 11, // ten 11-byte payloads
        normalise: false,
    };
    let mut writer = hub.create_with(id.clone(), config).unwrap();
    let mut sub = hub.subscribe(&id, SubscribeFrom::Now, "hls").unwrap();
    for i in 0..30 {
        writer.write(video(i, true)).unwrap();
    }
    assert_eq!(writer.stats().held, 10);
    let got = drain(&mut sub);
    assert!(
        matches!(got[0], Delivery::Lagged { dropped: 20 }),
        "{got:?}"
    );
    assert_eq!(frames(&got).len(), 10);
}

#[tokio::test(start_paused = true)]
async fn delete_ends_every_subscriber() {
    let hub = Hub::new();
    let id = id("cam");
    let mut writer = hub.create(id.clone(), 1024).unwrap();
    writer.write(video(0, true)).unwrap();
    let mut waiting = hub.subscribe(&id, SubscribeFrom::Now, "hls").unwrap();
    let mut behind = hub
        .subscribe(&id, SubscribeFrom::LastKeyframe, "dvr")
        .unwrap();
    let task = tokio::spawn(async move { waiting.recv().await.is_none() });
    tokio::task::yield_now().await; // the task is now parked in recv

    assert!(hub.delete(&id));
    assert!(task.await.unwrap(), "a parked reader sees end-of-stream");
    // A reader with a backlog drains it first.
    assert!(matches!(behind.recv().await, Some(Delivery::Frame(_))));
    assert!(behind.recv().await.is_none());
    assert!(behind.recv().await.is_none());

    assert!(!hub.contains(&id));
    assert!(hub.stats(&id).is_none());
    assert_eq!(
        writer.write(video(1, true)),
        Err(HubError::Deleted { id: id.clone() })
    );
    assert!(matches!(
        hub.subscribe(&id, SubscribeFrom::Now, "hls"),
        Err(HubError::NotFound { .. })
    ));
    assert!(!hub.delete(&id));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_writer_deletes_the_buffer() {
    let hub = Hub::new();
    let id = id("cam");
    let writer = hub.create(id.clone(), 16).unwrap();
    let mut sub = hub.subscribe(&id, SubscribeFrom::Now, "hls").unwrap();
    drop(writer);
    assert!(sub.recv().await.is_none());
    assert!(!hub.contains(&id));
    // The id can be created again; the old writer's drop does not touch the new buffer.
    let _again = hub.create(id.clone(), 16).unwrap();
    assert!(hub.contains(&id));
}

#[test]
fn subscribe_to_an_unknown_id_fails_at_once() {
    let hub = Hub::new();
    assert_eq!(
        hub.subscribe(&id("nope"), SubscribeFrom::LastKeyframe, "hls")
            .unwrap_err(),
        HubError::NotFound { id: id("nope") }
    );
}

#[test]
fn create_twice_fails_and_ids_are_listed() {
    let hub = Hub::new();
    let _a = hub.create(id("b"), 16).unwrap();
    let _b = hub.create(id("a"), 16).unwrap();
    assert!(matches!(
        hub.create(id("a"), 16),
        Err(HubError::AlreadyExists { .. })
    ));
    assert_eq!(hub.ids(), [id("a"), id("b")]);
    assert!(hub.contains(&id("a")));
}

#[test]
fn a_recreated_buffer_is_a_new_instance() {
    let hub = Hub::new();
    let writer = hub.create(id("a"), 16).unwrap();
    let first = hub.subscribe(&id("a"), SubscribeFrom::Now, "t").unwrap();
    let again = hub.subscribe(&id("a"), SubscribeFrom::Now, "t").unwrap();
    assert_eq!(first.instance(), again.instance());
    drop(writer);
    assert!(!hub.contains(&id("a")));
    let _writer = hub.create(id("a"), 16).unwrap();
    let later = hub.subscribe(&id("a"), SubscribeFrom::Now, "t").unwrap();
    assert_ne!(later.instance(), first.instance());
}

#[test]
fn session_ids_are_monotonic_across_buffers() {
    let hub = Hub::new();
    let mut a = hub.create(id("a"), 16).unwrap();
    let mut b = hub.clone().create(id("b"), 16).unwrap();
    let mut sub = hub.subscribe(&id("a"), SubscribeFrom::Now, "hls").unwrap();
    a.write(video(0, true)).unwrap(); // implicit fresh session
    let mut last = a.session().unwrap();
    for (i, reason) in [
        SessionReason::Reconnect,
        SessionReason::Failover,
        SessionReason::ConfigChange,
        SessionReason::StallRecovery,
        SessionReason::MixerCycle,
        SessionReason::TimelineJump,
    ]
    .into_iter()
    .enumerate()
    {
        let next = if i & 1 == 0 {
            a.start_session(reason)
        } else {
            b.start_session(reason)
        };
        assert!(next > last);
        last = next;
    }
    let s = a.start_session(SessionReason::Fresh);
    a.write(video(1, true)).unwrap();
    let got = frames(&drain(&mut sub));
    assert!(got[0].session < got[1].session);
    assert_eq!(got[1].session, s);
}

#[test]
fn empty_payloads_are_ignored_and_stats_count() {
    let hub = Hub::new();
    let id = id("cam");
    let mut writer = hub.create(id.clone(), 16).unwrap();
    let _a = hub.subscribe(&id, SubscribeFrom::Now, "hls").unwrap();
    let b = hub.subscribe(&id, SubscribeFrom::Now, "dvr").unwrap();
    let mut empty = video(0, true);
    empty.payload = Bytes::new();
    writer.write(empty).unwrap();
    writer.write(video(1, true)).unwrap();
    let stats = hub.stats(&id).unwrap();
    assert_eq!((stats.frames, stats.bytes, stats.subscribers), (1, 11, 2));
    assert_eq!(stats.session, writer.session());
    drop(b);
    assert_eq!(hub.stats(&id).unwrap().subscribers, 1);
}

#[test]
fn a_batch_takes_what_waits_up_to_its_bound_then_reports_the_end() {
    let hub = Hub::new();
    let id = id("batched");
    let mut writer = hub.create(id.clone(), 64).unwrap();
    let mut reader = hub.subscribe(&id, SubscribeFrom::Now, "batch").unwrap();
    for i in 0..5 {
        writer.write(video(i, i == 0)).unwrap();
    }
    let mut read = Vec::new();
    let mut batch = Batch::new(reader.try_recv().ok(), 3);
    while let Some(Batched::Delivery(Delivery::Frame(frame))) = batch.next(&mut reader) {
        read.push(n(&frame));
    }
    assert_eq!(read, [0, 1, 2]);
    assert!(
        batch.full(),
        "two more wait: the reader yields, then reads on"
    );
    let mut batch = Batch::new(reader.try_recv().ok(), 3);
    while let Some(Batched::Delivery(Delivery::Frame(frame))) = batch.next(&mut reader) {
        read.push(n(&frame));
    }
    assert_eq!(read, [0, 1, 2, 3, 4]);
    assert!(!batch.full(), "nothing more waits");
    drop(writer); // deletes the buffer
    let mut batch = Batch::new(reader.try_recv().ok(), 3);
    assert!(matches!(batch.next(&mut reader), Some(Batched::Closed)));
}
