//! ABR copy (SPEC §ABR copy): a stream whose only input is `copy://X`, where X has a ladder
//! and this stream has no transcoder, mirrors X's ladder without ingest or FFmpeg.
//!
//! The coordinator decides the topology at start ([`Mirror`], from the stored records: X's
//! own ladder, or the ladder X mirrors in turn for a chained copy) and creates this stream's
//! main buffer and one rendition buffer per upstream rung. This module runs, per stream:
//!
//! - **one tap per rung**: a hub subscriber of X's rendition `$r$X$track_N` writing every
//!   frame, untouched, into this stream's `$r$<code>$track_N` (timestamps kept, so the rungs
//!   stay cut at the same instants as X's; a new session whenever X's rung starts one);
//! - **the playback tap**: this stream's best rung into its main buffer through intake port 0,
//!   the synthetic input 0 that `runtime.inputs` shows.
//!
//! When an upstream rendition closes (X stopped, restarted, or its rung removed), its tap
//! subscribes again with a backoff of 1 s doubling to 10 s; the next frame starts a new
//! session. Input 0 is `active` while some tap forwarded a frame within [`ACTIVE_WITHIN`],
//! else `degraded`. A change of X's ladder is the coordinator's: it compares the mirrored
//! ladder with X's at every converge and restarts this stream on a difference.
//!
//! Taps never block: hub writes are synchronous, and each tap owns its writer.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tributary_domain::ffmpeg::Ladder;
use tributary_domain::{Stream, StreamCode, Transcoder};
use tributary_hub::{BufferId, Delivery, Hub, Port, SessionReason, SubscribeFrom, Writer};

use crate::lock;

/// What an ABR-copy stream mirrors.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mirror {
    /// The stream whose renditions are copied (the `copy://` upstream).
    pub(crate) upstream: StreamCode,
    /// The ladder mirrored: the transcoding root's (X's, or the stream X mirrors).
    pub(crate) ladder: Ladder,
    /// The root's transcoder configuration, which the HLS master's variants are read from.
    pub(crate) transcoder: Transcoder,
}

impl Mirror {
    /// The stream as its outputs see it: with the mirrored ladder as its transcoder, so HLS
    /// serves a master with the upstream's variants.
    pub(crate) fn outputs_view(&self, stream: &Stream) -> Stream {
        let mut view = stream.clone();
        view.transcoder = Some(self.transcoder.clone());
        view
    }

    /// Rendition buffers: one per upstream rung.
    pub(crate) fn rungs(&self) -> usize {
        self.ladder.rungs.len().max(1)
    }
}

/// Input 0 is `active` while a tap forwarded a frame this recently (SPEC §ABR copy).
pub(crate) const ACTIVE_WITHIN: Duration = Duration::from_secs(30);
/// Errors kept for `runtime.inputs[0].errors`.
const ERRORS_KEPT: usize = 5;
/// The taps' re-subscribe delays: 1 s doubling to 10 s.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(10);

/// The taps' health: when one last forwarded a frame, and recent errors.
#[derive(Debug)]
pub(crate) struct TapHealth {
    /// The origin of `last_ms`.
    base: Instant,
    /// Milliseconds after `base` plus one of the last forwarded frame; 0 = never.
    last_ms: AtomicU64,
    /// Newest last, at most [`ERRORS_KEPT`].
    errors: Mutex<VecDeque<(SystemTime, String)>>,
}

impl TapHealth {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            base: now,
            last_ms: AtomicU64::new(0),
            errors: Mutex::new(VecDeque::new()),
        }
    }

    /// A tap forwarded a frame at `now`.
    pub(crate) fn forwarded(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.base).as_millis();
        let ms = u64::try_from(ms).unwrap_or(u64::MAX - 1) + 1;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// When a tap last forwarded a frame.
    pub(crate) fn last(&self) -> Option<Instant> {
        match self.last_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.base + Duration::from_millis(ms - 1)),
        }
    }

    /// Whether input 0 is active at `now`.
    pub(crate) fn active(&self, now: Instant) -> bool {
        self.last()
            .is_some_and(|last| now.saturating_duration_since(last) < ACTIVE_WITHIN)
    }

    /// Records an error (a repeat of the newest is not recorded twice).
    fn error(&self, message: String) {
        let mut errors = lock(&self.errors);
        if errors.back().is_some_and(|(_, m)| *m == message) {
            return;
        }
        tracing::warn!("{message}");
        if errors.len() == ERRORS_KEPT {
            errors.pop_front();
        }
        errors.push_back((SystemTime::now(), message));
    }
}

/// A running ABR copy.
pub(crate) struct MirrorRun {
    /// What it mirrors.
    mirror: Mirror,
    /// Stops every tap.
    stop: CancellationToken,
    /// The taps.
    tasks: Vec<JoinHandle<()>>,
    /// Their health.
    health: Arc<TapHealth>,
}

impl MirrorRun {
    /// Starts the taps: one per rung into `writers` (this stream's rendition writers), and
    /// the playback tap from this stream's best rung into `port` (input 0 of its intake).
    pub(crate) fn start(
        hub: &Hub,
        code: &StreamCode,
        mirror: Mirror,
        mut writers: Vec<Writer>,
        port: Port,
        best: usize,
    ) -> Self {
        let stop = CancellationToken::new();
        let health = Arc::new(TapHealth::new(Instant::now()));
        let mut tasks = Vec::new();
        for i in 0..mirror.rungs() {
            let id = BufferId::Rendition(code.clone(), i as u16);
            let Some(at) = writers.iter().position(|w| *w.id() == id) else {
                tracing::error!(stream = %code, rung = i, "ABR copy: rendition buffer missing");
                continue;
            };
            let writer = writers.swap_remove(at);
            let source = BufferId::Rendition(mirror.upstream.clone(), i as u16);
            tasks.push(tokio::spawn(rung_tap(
                hub.clone(),
                source,
                writer,
                Arc::clone(&health),
                stop.clone(),
            )));
        }
        tasks.push(tokio::spawn(playback_tap(
            hub.clone(),
            BufferId::Rendition(code.clone(), best as u16),
            port,
            stop.clone(),
        )));
        Self {
            mirror,
            stop,
            tasks,
            health,
        }
    }

    /// Stops every tap; their writers drop (the coordinator deletes the buffers).
    pub(crate) fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            task.abort();
        }
    }

    /// `runtime`'s active input and `inputs[]`: the synthetic input 0.
    pub(crate) fn runtime(&self) -> (Option<u32>, Vec<Value>) {
        let now = Instant::now();
        let active = self.health.active(now);
        let mut entry = json!({
            "input_priority": 0,
            "url": format!("copy://{}", self.mirror.upstream),
            "kind": "copy",
            "status": if active { "active" } else { "degraded" },
            "standby": false,
            "abr_copy": true,
            "tracks": [],
            "errors": lock(&self.health.errors).iter().rev().map(|(at, message)| {
                json!({"message": message, "at": rfc3339(*at)})
            }).collect::<Vec<_>>(),
        });
        if let Some(last) = self.health.last() {
            let ago = now.saturating_duration_since(last);
            entry["last_packet_at"] = json!(rfc3339(SystemTime::now() - ago));
        }
        (active.then_some(0), vec![entry])
    }
}

fn rfc3339(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Sleeps for the next re-subscribe delay, or returns `false` when stopped.
async fn pause(delay: &mut Duration, stop: &CancellationToken) -> bool {
    let wait = *delay;
    *delay = (*delay * 2).min(RETRY_CAP);
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(wait) => true,
    }
}

/// Copies one upstream rendition into this stream's, re-subscribing when it closes.
async fn rung_tap(
    hub: Hub,
    source: BufferId,
    mut writer: Writer,
    health: Arc<TapHealth>,
    stop: CancellationToken,
) {
    let mut delay = RETRY_FIRST;
    loop {
        match hub.subscribe(&source, SubscribeFrom::LastKeyframe, "abr_copy_tap") {
            Err(e) => health.error(format!("ABR copy: cannot read {source}: {e}")),
            Ok(mut subscriber) => {
                // The first frame of every subscription but the writer's first starts a new
                // session; so does every new session upstream.
                let mut session = None;
                loop {
                    let delivery = tokio::select! {
                        () = stop.cancelled() => return,
                        d = subscriber.recv() => d,
                    };
                    let frame = match delivery {
                        None => break,
                        Some(Delivery::Lagged { .. }) => continue,
                        Some(Delivery::Frame(frame)) => frame,
                    };
                    let renewed = match session {
                        Some(s) => s != frame.session,
                        None => writer.session().is_some(),
                    };
                    if renewed {
                        writer.start_session(SessionReason::Reconnect);
                    }
                    session = Some(frame.session);
                    if writer.write(frame).is_err() {
                        // Our own buffer is gone: the stream is stopping.
                        return;
                    }
                    health.forwarded(Instant::now());
                    delay = RETRY_FIRST;
                }
                health.error(format!(
                    "ABR copy: {source} closed (the upstream stopped or restarted); subscribing again"
                ));
            }
        }
        if !pause(&mut delay, &stop).await {
            return;
        }
    }
}

/// This stream's best rung into its main buffer (the playback feed) through input 0's port.
async fn playback_tap(hub: Hub, rung: BufferId, port: Port, stop: CancellationToken) {
    let Ok(mut subscriber) = hub.subscribe(&rung, SubscribeFrom::Now, "abr_copy_playback") else {
        tracing::error!(%rung, "ABR copy: the playback rung is missing");
        return;
    };
    let mut session = None;
    loop {
        let delivery = tokio::select! {
            () = stop.cancelled() => return,
            d = subscriber.recv() => d,
        };
        match delivery {
            None => return,
            Some(Delivery::Lagged { .. }) => {}
            Some(Delivery::Frame(frame)) => {
                if session.is_some_and(|s| s != frame.session) {
                    port.restart(SessionReason::Reconnect);
                }
                session = Some(frame.session);
                if port.write(frame).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn input_zero_is_active_within_30_s_of_a_forwarded_frame() {
        let health = TapHealth::new(Instant::now());
        assert!(!health.active(Instant::now()), "never forwarded: degraded");
        tokio::time::advance(Duration::from_secs(5)).await;
        health.forwarded(Instant::now());
        assert!(health.active(Instant::now()));
        tokio::time::advance(Duration::from_millis(29_999)).await;
        assert!(health.active(Instant::now()));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(
            !health.active(Instant::now()),
            "30 s without a frame: degraded"
        );
        health.forwarded(Instant::now());
        assert!(health.active(Instant::now()), "a frame again: active");
    }

    #[test]
    fn errors_keep_the_last_five_without_repeats() {
        let health = TapHealth::new(Instant::now());
        for i in 0..7 {
            health.error(format!("e{i}"));
            health.error(format!("e{i}"));
        }
        let errors: Vec<String> = lock(&health.errors)
            .iter()
            .map(|(_, m)| m.clone())
            .collect();
        assert_eq!(errors, ["e2", "e3", "e4", "e5", "e6"]);
    }
}
