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
//!
//! # ABR mixer
//!
//! A stream whose only input is `mixer://V?audio=A`, where V has a ladder and this stream
//! has no transcoder, mirrors V's ladder the same way, with A's sound (SPEC §Mixer "ABR
//! mixer"). Each rung tap keeps only its rendition's video; **one audio tap** reads A's
//! playback feed, puts its timestamps on the video's timeline once (by arrival, against the
//! ladder's raw ingest buffer: [`mix::AudioClock`]), and hands every audio frame to every rung
//! through a bounded broadcast channel, so all rungs carry the same audio at the same
//! instants. How a rung interleaves, starts sessions and follows A's coming and going is
//! [`mix::RungMix`]. With `audio_failure=down` (the default) the rungs hold their video back
//! while A is not delivering; with `continue` they go on with video alone.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tributary_domain::ffmpeg::Ladder;
use tributary_domain::protocol::AudioFailure;
use tributary_domain::{Stream, StreamCode, Transcoder};
use tributary_hub::{BufferId, Delivery, Hub, Port, SessionReason, SubscribeFrom, Writer};
use tributary_media::{Frame, MediaKind};

use crate::lock;
use mix::{AudioClock, Emit, RungMix};

mod mix;

/// What an ABR-copy (or ABR-mixer) stream mirrors.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mirror {
    /// The input's URL as configured (`runtime.inputs[0].url`).
    pub(crate) url: String,
    /// The stream whose renditions are copied (the `copy://` upstream, the mixer's video).
    pub(crate) upstream: StreamCode,
    /// The ladder mirrored: the transcoding root's (X's, or the stream X mirrors).
    pub(crate) ladder: Ladder,
    /// The root's transcoder configuration, which the HLS master's variants are read from.
    pub(crate) transcoder: Transcoder,
    /// The sound of an ABR mixer; `None` for an ABR copy.
    pub(crate) audio: Option<MixAudio>,
}

/// The audio side of an ABR mixer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MixAudio {
    /// The stream whose playback feed gives the audio.
    pub(crate) stream: StreamCode,
    /// What the rungs do while it is not delivering.
    pub(crate) failure: AudioFailure,
    /// The stream at the root of the ladder: its raw ingest buffer is the video clock.
    pub(crate) root: StreamCode,
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

/// The hub subscriber class of every tap here (`buffer_drops_total{subscriber="copy"}`: a
/// class, never a tap, SPEC §Metrics).
const SUBSCRIBER_CLASS: &str = "copy";
/// Input 0 is `active` while a tap forwarded a frame this recently (SPEC §ABR copy).
pub(crate) const ACTIVE_WITHIN: Duration = Duration::from_secs(30);
/// Errors kept for `runtime.inputs[0].errors`.
const ERRORS_KEPT: usize = 5;
/// The taps' re-subscribe delays: 1 s doubling to 10 s.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(10);
/// Audio frames in flight from the ABR mixer's audio tap to its rungs: a rung that falls
/// this far behind loses the oldest (it is itself behind its video by then).
const AUDIO_FANOUT: usize = 256;
/// An audio timestamp that strays this far from where the video clock puts its arrival is
/// anchored again (a restart of either stream moved its timeline).
const RESYNC: i64 = 90_000;

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
        // An ABR mixer's audio: one tap, a clock, and a channel to every rung.
        let mixing = mirror.audio.clone().map(|audio| {
            let clock = Arc::new(AudioClock::new(std::time::Instant::now()));
            let (tx, _) = broadcast::channel(AUDIO_FANOUT);
            (audio, clock, tx)
        });
        for i in 0..mirror.rungs() {
            let id = BufferId::Rendition(code.clone(), i as u16);
            let Some(at) = writers.iter().position(|w| *w.id() == id) else {
                tracing::error!(stream = %code, rung = i, "ABR copy: rendition buffer missing");
                continue;
            };
            let writer = writers.swap_remove(at);
            let source = BufferId::Rendition(mirror.upstream.clone(), i as u16);
            let audio = mixing.as_ref().map(|(audio, clock, tx)| RungAudio {
                rx: tx.subscribe(),
                clock: Arc::clone(clock),
                mix: RungMix::new(audio.failure, Instant::now()),
            });
            tasks.push(tokio::spawn(rung_tap(
                hub.clone(),
                source,
                writer,
                Arc::clone(&health),
                stop.clone(),
                audio,
            )));
        }
        if let Some((audio, clock, tx)) = mixing {
            tasks.push(tokio::spawn(video_clock(
                hub.clone(),
                BufferId::Raw(audio.root.clone()),
                Arc::clone(&clock),
                stop.clone(),
            )));
            tasks.push(tokio::spawn(audio_tap(
                hub.clone(),
                audio.stream,
                clock,
                tx,
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
            "url": self.mirror.url,
            "kind": if self.mirror.audio.is_some() { "mixer" } else { "copy" },
            "status": if active { "active" } else { "degraded" },
            "standby": false,
            "abr_copy": self.mirror.audio.is_none(),
            "abr_mixer": self.mirror.audio.is_some(),
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

/// A rung tap's share of an ABR mixer: the audio channel and the rung's mixing state.
struct RungAudio {
    rx: broadcast::Receiver<Frame>,
    clock: Arc<AudioClock>,
    mix: RungMix,
}

/// What a rung tap woke up for.
enum Next {
    Upstream(Option<Delivery>),
    Audio(Option<Frame>),
}

/// The next frame of the mixer's audio channel (pending forever without a mixer; `None`
/// once the audio tap has gone, which happens only when the stream stops).
async fn next_audio(audio: &mut Option<RungAudio>) -> Option<Frame> {
    let Some(audio) = audio else {
        return std::future::pending().await;
    };
    loop {
        match audio.rx.recv().await {
            Ok(frame) => return Some(frame),
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

/// Copies one upstream rendition into this stream's, re-subscribing when it closes; with
/// `audio` (an ABR mixer), only its video, mixed with the audio stream's sound.
async fn rung_tap(
    hub: Hub,
    source: BufferId,
    mut writer: Writer,
    health: Arc<TapHealth>,
    stop: CancellationToken,
    mut audio: Option<RungAudio>,
) {
    let mut delay = RETRY_FIRST;
    loop {
        match hub.subscribe(&source, SubscribeFrom::LastKeyframe, SUBSCRIBER_CLASS) {
            Err(e) => health.error(format!("ABR copy: cannot read {source}: {e}")),
            Ok(mut subscriber) => {
                // The first frame of every subscription but the writer's first starts a new
                // session; so does every new session upstream.
                let mut session = None;
                loop {
                    let next = tokio::select! {
                        () = stop.cancelled() => return,
                        d = subscriber.recv() => Next::Upstream(d),
                        a = next_audio(&mut audio) => Next::Audio(a),
                    };
                    let frame = match next {
                        Next::Upstream(None) => break,
                        // The audio tap ends only with the stream.
                        Next::Audio(None) => return,
                        Next::Upstream(Some(Delivery::Lagged { .. })) => continue,
                        Next::Upstream(Some(Delivery::Frame(frame))) => frame,
                        Next::Audio(Some(frame)) => {
                            if let Some(a) = audio.as_mut() {
                                let before = a.mix.dropped();
                                a.mix.audio(frame);
                                if a.mix.dropped() > before {
                                    health.error(format!(
                                        "ABR mixer: {source} stalled; its audio queue is full and the oldest audio goes"
                                    ));
                                }
                            }
                            continue;
                        }
                    };
                    let written = match audio.as_mut() {
                        Some(a) => mixed(a, &mut writer, frame),
                        None => copied(&mut writer, &mut session, frame),
                    };
                    match written {
                        Err(()) => return, // Our own buffer is gone: the stream is stopping.
                        Ok(false) => {}
                        Ok(true) => {
                            health.forwarded(Instant::now());
                            delay = RETRY_FIRST;
                        }
                    }
                }
                if stop.is_cancelled() {
                    return;
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

/// An ABR copy's frame, written as it is (a new session where the upstream began one, or on
/// a new subscription). `Ok(true)`: written; `Err`: the buffer is gone.
fn copied(
    writer: &mut Writer,
    session: &mut Option<tributary_media::SessionId>,
    frame: Frame,
) -> Result<bool, ()> {
    let renewed = match *session {
        Some(s) => s != frame.session,
        None => writer.session().is_some(),
    };
    if renewed {
        writer.start_session(SessionReason::Reconnect);
    }
    *session = Some(frame.session);
    writer.write(frame).map(|()| true).map_err(drop)
}

/// An ABR mixer's upstream frame through the rung's mixing state. `Ok(true)`: video was
/// written; `Err`: the buffer is gone.
fn mixed(audio: &mut RungAudio, writer: &mut Writer, frame: Frame) -> Result<bool, ()> {
    let up = audio.clock.audio_up.load(Ordering::Relaxed);
    let mut wrote = false;
    let mut gone = false;
    audio
        .mix
        .upstream(frame, up, Instant::now(), &mut |emit| match emit {
            Emit::Session(reason) => {
                writer.start_session(reason);
            }
            Emit::Frame(frame) => {
                let video = frame.codec.kind() == MediaKind::Video;
                match writer.write(frame) {
                    Ok(()) => wrote |= video,
                    Err(_) => gone = true,
                }
            }
        });
    if gone { Err(()) } else { Ok(wrote) }
}

/// Keeps the ABR mixer's video clock: every video frame of the ladder's raw ingest buffer
/// (re-subscribing when it closes).
async fn video_clock(hub: Hub, raw: BufferId, clock: Arc<AudioClock>, stop: CancellationToken) {
    let mut delay = RETRY_FIRST;
    loop {
        if let Ok(mut subscriber) = hub.subscribe(&raw, SubscribeFrom::Now, SUBSCRIBER_CLASS) {
            loop {
                let delivery = tokio::select! {
                    () = stop.cancelled() => return,
                    d = subscriber.recv() => d,
                };
                match delivery {
                    None => break,
                    Some(Delivery::Frame(frame)) if frame.codec.kind() == MediaKind::Video => {
                        clock.video(frame.dts, frame.arrival);
                        delay = RETRY_FIRST;
                    }
                    Some(_) => {}
                }
            }
        }
        if !pause(&mut delay, &stop).await {
            return;
        }
    }
}

/// The ABR mixer's audio tap: the audio stream's playback feed, its audio put on the video's
/// timeline (one shift, anchored again only when it strays by [`RESYNC`]), to every rung.
async fn audio_tap(
    hub: Hub,
    stream: StreamCode,
    clock: Arc<AudioClock>,
    tx: broadcast::Sender<Frame>,
    health: Arc<TapHealth>,
    stop: CancellationToken,
) {
    let feed = BufferId::Stream(stream.clone());
    let mut delay = RETRY_FIRST;
    loop {
        match hub.subscribe(&feed, SubscribeFrom::Now, SUBSCRIBER_CLASS) {
            Err(e) => health.error(format!(
                "ABR mixer: the audio stream {stream} is not running ({e})"
            )),
            Ok(mut subscriber) => {
                let mut shift: Option<i64> = None;
                loop {
                    let delivery = tokio::select! {
                        () = stop.cancelled() => return,
                        d = subscriber.recv() => d,
                    };
                    let mut frame = match delivery {
                        None => break,
                        Some(Delivery::Frame(f)) if f.codec.kind() == MediaKind::Audio => f,
                        Some(_) => continue,
                    };
                    // Until the video clock has a reference, audio has nowhere to go.
                    let Some(target) = clock.at(frame.arrival) else {
                        continue;
                    };
                    let s = match shift {
                        Some(s) if (frame.dts.0 + s - target.0).abs() <= RESYNC => s,
                        _ => *shift.insert(target.0 - frame.dts.0),
                    };
                    frame.dts.0 += s;
                    frame.pts.0 += s;
                    clock.audio_up.store(true, Ordering::Relaxed);
                    // No rung listening (all between subscriptions) loses nothing of value.
                    let _ = tx.send(frame);
                    delay = RETRY_FIRST;
                }
                clock.audio_up.store(false, Ordering::Relaxed);
                health.error(format!(
                    "ABR mixer: the audio stream {stream} stopped (its playback feed closed); subscribing again"
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
    let Ok(mut subscriber) = hub.subscribe(&rung, SubscribeFrom::Now, SUBSCRIBER_CLASS) else {
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
