//! Wake policies: which writes wake a waiting subscriber.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Waker};
use std::time::Duration;

use tributary_hub::{Delivery, Hub, SubscribeFrom, Wake};

use crate::support::{audio, frames, id, n, video};

/// A waker that counts its wake-ups.
struct Count(AtomicUsize);

impl std::task::Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Writes `frames` while a subscriber waits in `recv`; returns how often it was woken and
/// what it then reads at once.
fn woken_by(wake: Wake, frames_written: Vec<tributary_media::Frame>) -> (usize, Vec<i64>) {
    let hub = Hub::new();
    let id = id("cam");
    let mut writer = hub.create(id.clone(), 1024).unwrap();
    let mut sub = hub.subscribe(&id, SubscribeFrom::Now, "test").unwrap();
    sub.set_wake(wake);
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(Arc::clone(&count));
    let mut cx = Context::from_waker(&waker);
    let wakes = {
        let mut recv = pin!(sub.recv());
        assert!(
            recv.as_mut().poll(&mut cx).is_pending(),
            "nothing written yet"
        );
        for frame in frames_written {
            writer.write(frame).unwrap();
        }
        count.0.load(Ordering::SeqCst)
    };
    let mut read = Vec::new();
    while let Ok(Delivery::Frame(frame)) = sub.try_recv() {
        read.push(n(&frame));
    }
    (wakes, read)
}

#[test]
fn every_frame_wakes_by_default() {
    let (wakes, read) = woken_by(Wake::Every, vec![audio(1), audio(21)]);
    assert_eq!(wakes, 1, "the first frame wakes the waiting recv");
    assert_eq!(read, [1, 21]);
}

#[test]
fn audio_does_not_wake_a_video_reader_and_comes_with_the_next_video_frame() {
    let within = Duration::from_millis(100);
    let (wakes, read) = woken_by(Wake::Video { within }, vec![audio(1), audio(21), audio(42)]);
    assert_eq!(wakes, 0, "audio alone does not wake");
    assert_eq!(read, [1, 21, 42], "but it is all there to read");
    let (wakes, read) = woken_by(Wake::Video { within }, vec![audio(1), video(10, false)]);
    assert_eq!((wakes, read), (1, vec![1, 10]));
}

#[test]
fn a_video_reader_still_gets_audio_within_its_bound_when_video_stops() {
    // Arrivals in ms: the first audio frame starts the clock; 150 ms later one is overdue.
    let within = Duration::from_millis(100);
    let (wakes, _) = woken_by(
        Wake::Video { within },
        vec![audio(0), audio(50), audio(150)],
    );
    assert_eq!(wakes, 1);
}

#[test]
fn only_video_keyframes_wake_a_keyframe_reader() {
    let within = Duration::from_secs(1);
    let policy = Wake::VideoKeyframe { within };
    let (wakes, read) = woken_by(policy, vec![video(0, false), audio(5), video(33, false)]);
    assert_eq!((wakes, read.len()), (0, 3));
    let (wakes, _) = woken_by(policy, vec![video(0, false), video(33, true)]);
    assert_eq!(wakes, 1);
}

#[tokio::test]
async fn a_deleted_buffer_wakes_every_reader_whatever_its_policy() {
    let hub = Hub::new();
    let id = id("cam");
    let writer = hub.create(id.clone(), 1024).unwrap();
    let mut sub = hub.subscribe(&id, SubscribeFrom::Now, "test").unwrap();
    sub.set_wake(Wake::VideoKeyframe {
        within: Duration::from_secs(3600),
    });
    let reading = tokio::spawn(async move { sub.recv().await });
    tokio::task::yield_now().await;
    drop(writer);
    assert!(reading.await.unwrap().is_none());
}

#[tokio::test]
async fn a_video_reader_reads_in_order_across_wake_ups() {
    let hub = Hub::new();
    let id = id("cam");
    let mut writer = hub.create(id.clone(), 1024).unwrap();
    let mut sub = hub.subscribe(&id, SubscribeFrom::Now, "test").unwrap();
    sub.set_wake(Wake::Video {
        within: Duration::from_millis(100),
    });
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(delivery) = sub.recv().await {
            got.extend(frames(&[delivery]).iter().map(n));
        }
        got
    });
    let mut want = Vec::new();
    for i in 0..300 {
        let frame = if i % 3 == 0 {
            video(i * 10, i % 60 == 0)
        } else {
            audio(i * 10)
        };
        want.push(n(&frame));
        writer.write(frame).unwrap();
        tokio::task::yield_now().await;
    }
    drop(writer);
    assert_eq!(reading.await.unwrap(), want);
}
