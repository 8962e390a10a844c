//! Hub fan-out: one writer, many subscribers, on one thread.
//!
//! `fanout/N`: a writer task writes 2000 frames (30 fps H.264, 4 KiB payloads, GOP 60) into
//! one buffer and yields after each, as a live ingest does between arrivals; N subscriber
//! tasks `recv().await` every frame until the buffer ends. A current-thread runtime, so the
//! figure is the CPU cost of the whole fan-out on one core. Throughput is frames written per
//! second, each delivered to all N subscribers (deliveries/s = that × N). `fanout/10+stalled`
//! adds one subscriber that never reads: the ten readers' figure should not move.
//!
//! `write/…`: the writer alone, synchronous, 2000 frames, with 0 subscribers, 1 subscriber
//! that never reads, and 100 that never read (each falls 1000 frames behind and keeps
//! losing). Invariant 1 says the three cost the same.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tributary_bench::synthetic_video;
use tributary_hub::{BufferId, DEFAULT_CAPACITY, Delivery, Hub, SubscribeFrom};
use tributary_media::Frame;

fn fanout(c: &mut Criterion) {
    let frames = synthetic_video(FRAMES, 60, PAYLOAD);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let mut group = c.benchmark_group("hub");
    group.throughput(Throughput::Elements(FRAMES as u64));
    for (readers, stalled) in [(1, 0), (10, 0), (10, 1), (100, 0)] {
        let name = if stalled > 0 {
            format!("{readers}+stalled")
        } else {
            readers.to_string()
        };
        group.bench_function(BenchmarkId::new("fanout", name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += runtime.block_on(fan_out(&frames, readers, stalled));
                }
                total
            });
        });
    }
    for stalled in [0, 1, 100] {
        group.bench_function(BenchmarkId::new("write/stalled", stalled), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += write_only(&frames, stalled);
                }
                total
            });
        });
    }
    group.finish();
}

/// One run of the fan-out: the time from the first write until every reader has seen the end
/// of the buffer. Panics if a reader lost or missed a frame.
async fn fan_out(frames: &[Frame], readers: usize, stalled: usize) -> Duration {
    let hub = Hub::new();
    let id = BufferId::Stream("bench".parse().unwrap());
    let mut writer = hub.create(id.clone(), DEFAULT_CAPACITY).unwrap();
    let tasks: Vec<_> = (0..readers)
        .map(|_| {
            let mut subscriber = hub.subscribe(&id, SubscribeFrom::Now, "bench").unwrap();
            tokio::spawn(async move {
                let mut received = 0usize;
                while let Some(delivery) = subscriber.recv().await {
                    match delivery {
                        Delivery::Frame(frame) => received += black_box(frame).payload.len().min(1),
                        Delivery::Lagged { dropped } => panic!("a reader lagged by {dropped}"),
                    }
                }
                received
            })
        })
        .collect();
    let _stalled: Vec<_> = (0..stalled)
        .map(|_| hub.subscribe(&id, SubscribeFrom::Now, "stalled").unwrap())
        .collect();

    let start = Instant::now();
    for frame in frames {
        writer.write(frame.clone()).unwrap();
        tokio::task::yield_now().await;
    }
    drop(writer);
    for task in tasks {
        assert_eq!(task.await.unwrap(), frames.len());
    }
    start.elapsed()
}

/// The writer alone: the time to write every frame with `stalled` subscribers that never read.
fn write_only(frames: &[Frame], stalled: usize) -> Duration {
    let hub = Hub::new();
    let id = BufferId::Stream("bench".parse().unwrap());
    let mut writer = hub.create(id.clone(), DEFAULT_CAPACITY).unwrap();
    let _stalled: Vec<_> = (0..stalled)
        .map(|_| hub.subscribe(&id, SubscribeFrom::Now, "stalled").unwrap())
        .collect();
    let start = Instant::now();
    for frame in frames {
        writer.write(frame.clone()).unwrap();
    }
    start.elapsed()
}

/// Frames written per run.
const FRAMES: usize = 2000;
/// Payload bytes per frame.
const PAYLOAD: usize = 4096;

criterion_group!(benches, fanout);
criterion_main!(benches);
