//! Blocking requests on paused time: held until the part comes, bounded in time and number.

use std::sync::Arc;

use bytes::Bytes;
use tokio::time::{Duration, Instant};
use tributary_media::{SessionId, Ts90};
use tributary_packager::{Segment, SegmentEnd, UnixMillis};

use super::*;
use crate::hls::window::Window;

const N: u64 = 1_000_000;

fn segment(number: u64) -> Segment {
    Segment {
        number,
        init: None,
        session: SessionId(1),
        start: Ts90(0),
        duration: Ts90(180_000),
        discontinuity: false,
        program_date_time: UnixMillis(0),
        target_duration: 2,
        end: SegmentEnd::Keyframe,
        bytes: Bytes::from_static(b"segment"),
    }
}

/// A registry with one output of `code` that has published segment N and part 0 of N + 1.
fn setup() -> (HlsRegistry, StreamCode, Arc<Window>) {
    let registry = HlsRegistry::new();
    let code: StreamCode = "ll".parse().unwrap();
    let window = Arc::new(Window::new(4, 0));
    registry.register(&code, None, Arc::clone(&window)).unwrap();
    publish_segment(&window, N);
    part(&window, N + 1, 0);
    (registry, code, window)
}

/// Publishes segment `number` as complete.
fn publish_segment(window: &Window, number: u64) {
    window.publish(
        segment(number),
        None,
        Ts90(0),
        Bytes::new(),
        None,
        Instant::now(),
    );
}

fn part(window: &Window, number: u64, index: u32) {
    window.publish_part(
        number,
        index,
        Bytes::from(format!("{number}.{index}")),
        Bytes::from(format!("playlist {number}.{index}")),
        Bytes::new(),
    );
}

/// `wait_ready` for `name` with `query` on a task of its own.
fn spawn_wait(
    registry: &HlsRegistry,
    code: &StreamCode,
    name: &str,
    query: LlQuery,
) -> tokio::task::JoinHandle<Result<(), BlockError>> {
    let (registry, code, name) = (registry.clone(), code.clone(), name.to_owned());
    tokio::spawn(async move { registry.wait_ready(&code, None, &name, &query).await })
}

/// `name`, part `index` of segment N + 1, is served with its bytes.
fn assert_part_served(registry: &HlsRegistry, code: &StreamCode, name: &str, index: u32) {
    let body = registry.get(code, name).expect("served").body;
    assert_eq!(body, format!("{}.{index}", N + 1));
}

fn query(msn: u64, part: Option<u32>) -> LlQuery {
    LlQuery {
        msn: Some(msn),
        part,
        skip: false,
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_for_the_next_part_returns_when_it_is_published() {
    let (registry, code, window) = setup();
    let started = Instant::now();
    let waiter = spawn_wait(&registry, &code, "index.m3u8", query(N + 1, Some(1)));
    tokio::time::sleep(Duration::from_millis(480)).await;
    assert!(!waiter.is_finished(), "held until part 1 exists");
    part(&window, N + 1, 1);
    assert_eq!(waiter.await.unwrap(), Ok(()));
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(480),
        "no polling delay"
    );
    assert_eq!(registry.blocking_requests().answered, 1);
    let body = registry.get(&code, "index.m3u8").unwrap().body;
    assert_eq!(&body[..], format!("playlist {}.1", N + 1).as_bytes());
    assert_eq!(
        window.waiters.available_permits(),
        super::super::window::MAX_WAITERS
    );
}

#[tokio::test(start_paused = true)]
async fn what_exists_already_is_not_held() {
    let (registry, code, _window) = setup();
    for (name, q) in [
        ("index.m3u8", query(N, None)),
        ("index.m3u8", query(N + 1, Some(0))),
        ("index.m3u8", query(N - 5, Some(3))),
        ("index.m3u8", LlQuery::default()),
        ("seg_1000000.m4s", query(N + 2, None)),
    ] {
        assert_eq!(
            registry.wait_ready(&code, None, name, &q).await,
            Ok(()),
            "{name} {q:?}"
        );
    }
    let hinted = format!("part_{}.0.m4s", N + 1);
    assert_eq!(
        registry
            .wait_ready(&code, None, &hinted, &LlQuery::default())
            .await,
        Ok(())
    );
    assert_part_served(&registry, &code, &hinted, 0);
    assert_eq!(
        registry.blocking_requests(),
        BlockingCounts::default(),
        "what was answered at once is not counted"
    );
}

#[tokio::test(start_paused = true)]
async fn msn_alone_waits_for_the_whole_segment() {
    let (registry, code, window) = setup();
    let waiter = spawn_wait(&registry, &code, "index.m3u8", query(N + 1, None));
    part(&window, N + 1, 1);
    part(&window, N + 1, 2);
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished(), "parts do not complete the segment");
    publish_segment(&window, N + 1);
    assert_eq!(waiter.await.unwrap(), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn a_preload_hint_is_held_until_its_part_exists() {
    let (registry, code, window) = setup();
    let hinted = format!("part_{}.1.m4s", N + 1);
    let waiter = spawn_wait(&registry, &code, &hinted, LlQuery::default());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished());
    part(&window, N + 1, 1);
    assert_eq!(waiter.await.unwrap(), Ok(()));
    assert_part_served(&registry, &code, &hinted, 1);
}

#[tokio::test(start_paused = true)]
async fn a_part_that_never_comes_is_503_after_3_target_durations() {
    let (registry, code, _window) = setup();
    let started = Instant::now();
    let result = registry
        .wait_ready(&code, None, "index.m3u8", &query(N + 2, Some(0)))
        .await;
    assert!(matches!(result, Err(BlockError::Timeout(_))), "{result:?}");
    assert_eq!(registry.blocking_requests().timed_out, 1);
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(6),
        "3 x TARGETDURATION 2"
    );
}

#[tokio::test(start_paused = true)]
async fn too_far_ahead_is_400_at_once() {
    let (registry, code, _window) = setup();
    let result = registry
        .wait_ready(&code, None, "index.m3u8", &query(N + 4, None))
        .await;
    assert!(
        matches!(&result, Err(BlockError::BadRequest(m)) if m.contains("more than 2 segments")),
        "{result:?}"
    );
    assert_eq!(registry.blocking_requests().bad_request, 1);
}

#[tokio::test(start_paused = true)]
async fn waiters_are_capped() {
    let (registry, code, window) = setup();
    let _held = window
        .waiters
        .try_acquire_many(super::super::window::MAX_WAITERS as u32)
        .unwrap();
    let result = registry
        .wait_ready(&code, None, "index.m3u8", &query(N + 1, Some(1)))
        .await;
    assert!(matches!(result, Err(BlockError::Busy(_))), "{result:?}");
    assert_eq!(registry.blocking_requests().busy, 1);
}

#[tokio::test(start_paused = true)]
async fn a_closing_output_releases_its_waiters() {
    let (registry, code, window) = setup();
    let waiter = spawn_wait(&registry, &code, "index.m3u8", query(N + 1, Some(3)));
    tokio::task::yield_now().await;
    window.close();
    assert_eq!(
        waiter.await.unwrap(),
        Ok(()),
        "answered (404) rather than held"
    );
}

#[tokio::test(start_paused = true)]
async fn each_variant_reports_the_other_rungs_and_the_delta_is_served_on_skip() {
    let registry = HlsRegistry::new();
    let code: StreamCode = "ladder".parse().unwrap();
    let variant = |i: u32| crate::Variant {
        track: format!("track_{i}"),
        bandwidth: 1_000_000,
        average_bandwidth: 900_000,
    };
    registry.register_master(&code, vec![variant(1), variant(2), variant(3)], None);
    let windows: Vec<Arc<Window>> = (0..3u16)
        .map(|rung| {
            let window = Arc::new(Window::new(4, 0));
            registry
                .register(&code, Some(rung), Arc::clone(&window))
                .unwrap();
            window
        })
        .collect();
    for (rung, window) in windows.iter().enumerate() {
        publish_segment(window, N);
        // Rung 2 (track_3) has no part yet: it is not reported.
        if rung < 2 {
            window.publish_part(
                N + 1,
                rung as u32,
                Bytes::from_static(b"part"),
                Bytes::from(format!("#EXTM3U\nfull {rung}\n")),
                Bytes::from(format!("#EXTM3U\ndelta {rung}\n")),
            );
        }
    }
    let text = |rung, delta| {
        let asset = registry
            .get_variant_with(&code, Some(rung), "index.m3u8", delta)
            .unwrap();
        String::from_utf8(asset.body.to_vec()).unwrap()
    };
    // Rung 0's full playlist reports rung 1; rung 1's delta reports rung 0.
    for (rung, delta, body, other, last_part) in
        [(0, false, "full 0", 2, 1), (1, true, "delta 1", 1, 0)]
    {
        let want = format!(
            "#EXTM3U\n{body}\n#EXT-X-RENDITION-REPORT:URI=\"../track_{other}/index.m3u8\",\
             LAST-MSN={},LAST-PART={last_part}\n",
            N + 1
        );
        assert_eq!(text(rung, delta), want);
    }
    // The master itself carries no report; a part is served under its rung only.
    let master = registry.get(&code, "index.m3u8").map(|a| a.body);
    assert!(master.is_none_or(|m| !String::from_utf8_lossy(&m).contains("RENDITION")));
    let part = format!("part_{}.1.m4s", N + 1);
    assert!(registry.get_variant(&code, Some(1), &part).is_some());
    assert!(registry.get_variant(&code, Some(0), &part).is_none());
}
