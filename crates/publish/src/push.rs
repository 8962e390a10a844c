//! RTMP(S) push-out (SPEC §Push): one task per target, publishing a hub buffer to a platform.
//!
//! # Model
//!
//! [`start_push`] spawns the target's task and returns a [`PushHandle`]; dropping the handle
//! (or [`PushHandle::stop`]) ends the task after a polite `FCUnpublish` / `deleteStream` (at
//! most [`CLOSE_GRACE`]). Targets are independent: each has its own task, socket, hub
//! subscriber and backoff, so adding, removing or failing one touches no other output.
//!
//! One connection, start to end:
//!
//! 1. Dial with `tributary_net` (TCP; TLS for `rtmps://` with SNI and certificates checked
//!    against the system's roots; the SSRF guard), then let the `net` driver run a sans-IO
//!    [`ClientSession`] with the publish intent until `NetStream.Publish.Start`. Dialing has
//!    `timeout_sec`; the handshake and publish get what is left of it (at least 1 s) as the
//!    session's own deadline.
//! 2. Subscribe to the buffer from its last keyframe (class `push`), so the target starts at a
//!    keyframe at once; the session sends the sequence headers before it and rebases FLV
//!    timestamps to the session's first DTS (composition time = PTS − DTS). Frames with a
//!    DTS before that first one (audio a source muxed after the starting keyframe) are not
//!    sent: they would need negative timestamps.
//! 3. Pump: frames from the subscriber go through [`ClientSession::send_media`]; the
//!    transmits wait in the driver's queue, written to the socket as fast as the target reads.
//!    The queue is bounded to [`QUEUE_SPAN`] (5 s) of media and [`QUEUE_BYTES`]: a frame that
//!    would exceed it is dropped, and so is everything after it up to the next video keyframe
//!    the queue has room for (audio-only: the next audio frame). A subscriber that the hub
//!    itself dropped (`Lagged`) resumes at the hub's next keyframe. Either way only this
//!    target loses frames; drops are counted in [`PushState::dropped`]. A target that reads
//!    nothing for `timeout_sec` while data waits is a failure (the driver's write stall).
//!
//! Continuity: input switches and upstream reconnects reach the target as ordinary frames (the
//! hub keeps timestamps monotonic); new parameter sets go out as an in-band sequence header.
//! Only a codec change reconnects, at once and without counting as a failure. A buffer the
//! normaliser does not run on — a rung's rendition (`push[].profile`), which keeps the
//! timestamps FFmpeg was given — steps back when its FFmpeg restarts (the new process starts
//! at the raw buffer's last keyframe, up to a GOP before what was sent): so no frame at or
//! before the last DTS sent on its track goes out, and after a new session video waits for a
//! keyframe past it. The target sees one timeline, at worst with a short gap, never a step
//! back, and never a picture predicted from another process's keyframe.
//!
//! On any failure (refusal, timeout, EOF, write error) the target goes `reconnecting`, the
//! error is recorded (the last 5, newest first), and the task waits `retry_timeout_sec`,
//! doubling per consecutive failure up to 30 s, then connects again and re-subscribes from the
//! last keyframe, forever, or until `limit` consecutive failures (then `failed`, and the task
//! ends). `attempt` counts failures since the last successful publish and resets on success.
//! When the buffer is deleted the task closes the session and ends.
//!
//! Logs are `tracing` events inside a span `push` with the fields `stream` and `url`, the URL
//! redacted with `tributary_domain::redact::mask_push_url` (everything after the app, the
//! platform's stream key, and every query value become `****`). No lock is held across an `.await`; the state is
//! behind a short `std` mutex the task updates and [`PushHandle::state`] copies.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::Instrument;
use tributary_domain::Push;
use tributary_domain::redact::mask_push_url;
use tributary_hub::{BufferId, Delivery, Hub, SubscribeFrom, Subscriber, Wake};
use tributary_media::{Codec, Frame, MediaKind, SessionId, StreamCode, Ts90};
use tributary_net::{Cx, Dial, End, Handler, Settings, SsrfGuard, Target, Tls};
use tributary_rtmp::{ClientConfig, ClientEvent, ClientIntent, ClientSession, Endpoint, Pushed};

use crate::PublishError;

/// How one push target connects and retries (SPEC §Push, §Defaults "Push").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSettings {
    /// `rtmp://host[:port]/<app>/<key>` or `rtmps://…` (default ports 1935 and 443). The last
    /// path segment is the platform's stream key: a secret, never logged unmasked.
    pub url: String,
    /// Seconds for the handshake and `publish` to succeed (`push[].timeout_sec`), plus a 2 s
    /// backstop over dialing; also how long a target may read nothing while data waits.
    /// Default 10. At least 1.
    pub timeout_sec: u64,
    /// Seconds before the first reconnect (`push[].retry_timeout_sec`), doubling per
    /// consecutive failure up to 30 s. Default 5: quick enough for a platform's brief hiccup,
    /// slow enough not to hammer one that is down. At least 1.
    pub retry_timeout_sec: u64,
    /// Consecutive failures after which the target is `failed` and stops (`push[].limit`);
    /// 0 (the default) retries forever.
    pub limit: u32,
    /// Which addresses the target may resolve to (`security.ssrf_guard`; default SPEC's
    /// `metadata` mode).
    pub guard: SsrfGuard,
}

/// Where a target stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushStatus {
    /// Connecting for the first time.
    Starting,
    /// Publishing.
    Active,
    /// A connection failed or ended; waiting to reconnect, or reconnecting.
    Reconnecting,
    /// `limit` consecutive failures: the task has stopped.
    Failed,
}

/// A target's status moved (`push.state_changed`, SPEC §Events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushChange {
    /// The target URL, redacted.
    pub url: String,
    /// The status it left.
    pub from: PushStatus,
    /// The status it entered.
    pub to: PushStatus,
    /// Why, when it left `active` or failed.
    pub error: Option<String>,
}

/// Told of every status change of a target, from its task; must not block (the engine
/// publishes on its event bus, which never does).
pub type PushObserver = Arc<dyn Fn(&PushChange) + Send + Sync>;

/// A snapshot of one target's runtime state (`runtime.publisher.pushes[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushState {
    /// The target URL, redacted (`rtmp://host/app/****`).
    pub url: String,
    /// Where the target stands.
    pub status: PushStatus,
    /// Failures since the last successful publish (0 while active after a success).
    pub attempt: u32,
    /// When the current (or last) publish started.
    pub connected_at: Option<SystemTime>,
    /// The last 5 errors, newest first.
    pub errors: Vec<(SystemTime, String)>,
    /// Frames this target dropped (its queue was full, or the hub dropped them for it).
    pub dropped: u64,
}

/// A running push target. Dropping it, or [`stop`](Self::stop)ping it, ends the task (after
/// at most [`CLOSE_GRACE`] of polite closing).
#[derive(Debug)]
#[must_use = "dropping the handle stops the push"]
pub struct PushHandle {
    /// The stream pushed, for logs.
    code: StreamCode,
    /// The state the task updates.
    state: Arc<Mutex<PushState>>,
    /// Dropped with the handle: fires the task's stop signal.
    _stop: DropGuard,
    /// The task, to tell whether it ended.
    task: JoinHandle<()>,
}

/// Starts pushing buffer `buffer` of stream `code` to `settings.url`: spawns one tokio task
/// (call inside a runtime).
///
/// Fails when the URL is not `rtmp[s]://host[:port]/<app>/<key>`, the buffer does not exist,
/// or there is no tokio runtime. Connection problems are not errors here: they show in
/// [`PushHandle::state`] and the task keeps retrying.
pub fn start_push(
    hub: &Hub,
    code: StreamCode,
    buffer: BufferId,
    settings: PushSettings,
    observer: Option<PushObserver>,
) -> Result<PushHandle, PublishError> {
    let invalid_url = || PublishError::InvalidSettings {
        code: code.clone(),
        field: "push[].url",
        reason: "must be rtmp://host[:port]/<app>/<key> or rtmps://…",
    };
    let endpoint = Endpoint::from_url(&settings.url).ok_or_else(invalid_url)?;
    let session = ClientConfig::from_url(settings.url.trim(), ClientIntent::Publish)
        .ok_or_else(invalid_url)?;
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| PublishError::NoRuntime { code: code.clone() })?;
    // Fails now, not in the task, if the buffer is missing.
    drop(
        hub.subscribe(&buffer, SubscribeFrom::Now, SUBSCRIBER_CLASS)
            .map_err(|source| PublishError::Subscribe {
                code: code.clone(),
                buffer: buffer.clone(),
                source,
            })?,
    );

    let url = mask_push_url(&settings.url);
    let state = Arc::new(Mutex::new(PushState {
        url: url.clone(),
        status: PushStatus::Starting,
        attempt: 0,
        connected_at: None,
        errors: Vec::new(),
        dropped: 0,
    }));
    let stop = CancellationToken::new();
    let retry = Duration::from_secs(settings.retry_timeout_sec.max(1));
    let timeout = Duration::from_secs(settings.timeout_sec.max(1));
    let pusher = Pusher {
        hub: hub.clone(),
        buffer,
        target: Target::new(endpoint.host, endpoint.port),
        dial: Dial {
            // SPEC §Push: certificates are always verified.
            tls: if endpoint.tls { Tls::Verify } else { Tls::Off },
            timeout,
            guard: settings.guard.clone(),
        },
        session,
        timeout,
        retry,
        delay: retry,
        limit: settings.limit,
        failures: 0,
        state: Arc::clone(&state),
        observer,
        stop: stop.clone(),
    };
    let span = tracing::info_span!("push", stream = %code, url = %url);
    tracing::info!(parent: &span, "push started");
    let task = runtime.spawn(pusher.run().instrument(span));
    Ok(PushHandle {
        code,
        state,
        _stop: stop.drop_guard(),
        task,
    })
}

impl PushSettings {
    /// Settings for `url` with SPEC's defaults: `timeout_sec` 10, `retry_timeout_sec` 5, no
    /// `limit`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout_sec: 10,
            retry_timeout_sec: 5,
            limit: 0,
            guard: SsrfGuard::default(),
        }
    }
}

impl PushSettings {
    /// The settings of a configured target, dialed only where `guard` allows.
    pub fn for_target(push: &Push, guard: SsrfGuard) -> Self {
        Self {
            url: push.url.clone(),
            timeout_sec: u64::from(push.timeout_sec),
            retry_timeout_sec: u64::from(push.retry_timeout_sec),
            limit: push.limit,
            guard,
        }
    }
}

impl PushStatus {
    /// The name the API uses: `starting`, `active`, `reconnecting`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Active => "active",
            Self::Reconnecting => "reconnecting",
            Self::Failed => "failed",
        }
    }

    /// The value of the `publisher_push_state` gauge: 3 active, 2 starting, 1 reconnecting,
    /// 0 failed.
    pub fn gauge(self) -> i64 {
        match self {
            Self::Active => 3,
            Self::Starting => 2,
            Self::Reconnecting => 1,
            Self::Failed => 0,
        }
    }
}

impl fmt::Display for PushStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PushHandle {
    /// Stops the target: the task closes the session politely and ends.
    pub fn stop(self) {
        drop(self);
    }

    /// A snapshot of the target's state.
    pub fn state(&self) -> PushState {
        lock(&self.state).clone()
    }

    /// The stream pushed.
    pub fn code(&self) -> &StreamCode {
        &self.code
    }

    /// Whether the task has ended by itself: the buffer was deleted, or the target `failed`.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// The task of one target.
struct Pusher {
    /// Where the buffer lives (re-subscribed on every connection).
    hub: Hub,
    /// The buffer pushed.
    buffer: BufferId,
    /// Host and port.
    target: Target,
    /// TLS, the connect budget and the SSRF guard.
    dial: Dial,
    /// The publish session's settings (application, stream key, `tcUrl`).
    session: ClientConfig,
    /// Dial + handshake + publish budget; also the longest a target may read nothing.
    timeout: Duration,
    /// The first reconnect delay.
    retry: Duration,
    /// The next reconnect delay (doubles per failure, back to `retry` on success).
    delay: Duration,
    /// Consecutive failures that make the target `failed`; 0 = never.
    limit: u32,
    /// Failures since the last successful publish.
    failures: u32,
    /// What [`PushHandle::state`] reads.
    state: Arc<Mutex<PushState>>,
    /// Told of status changes.
    observer: Option<PushObserver>,
    /// Fired when the handle is dropped.
    stop: CancellationToken,
}

/// Why a connection ended.
enum Ended {
    /// The handle was dropped.
    Stopped,
    /// The buffer was deleted.
    BufferGone,
    /// A track changed codec: reconnect at once.
    CodecChange(String),
    /// Anything else: reconnect after the backoff.
    Failed(String),
}

impl Pusher {
    async fn run(mut self) {
        loop {
            match self.connection().await {
                Ended::Stopped => {
                    tracing::info!("push stopped");
                    return;
                }
                Ended::BufferGone => {
                    tracing::info!("buffer deleted; push finished");
                    return;
                }
                Ended::CodecChange(what) => {
                    tracing::info!(detail = "codec_change", "reconnecting: {what}");
                    let why = format!("codec change: {what}");
                    self.update(Some(&why), |s| s.status = PushStatus::Reconnecting);
                }
                Ended::Failed(error) => {
                    self.failures += 1;
                    let attempt = self.failures;
                    let failed = self.limit > 0 && attempt >= self.limit;
                    self.update(Some(&error), |s| {
                        s.attempt = attempt;
                        s.status = if failed {
                            PushStatus::Failed
                        } else {
                            PushStatus::Reconnecting
                        };
                        s.errors.insert(0, (SystemTime::now(), error.clone()));
                        s.errors.truncate(ERRORS_KEPT);
                    });
                    if failed {
                        tracing::warn!(
                            attempt,
                            "push failed for good ({attempt} failures in a row): {error}"
                        );
                        return;
                    }
                    let delay = self.delay;
                    tracing::warn!(attempt, retry_in = ?delay, "push error: {error}");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.stop.cancelled() => {
                            tracing::info!("push stopped");
                            return;
                        }
                    }
                    self.delay = (delay * 2).min(RETRY_CAP.max(self.retry));
                }
            }
        }
    }

    /// One connection, from dialing to its end.
    async fn connection(&mut self) -> Ended {
        if !self.hub.contains(&self.buffer) {
            return Ended::BufferGone;
        }
        let began = tributary_net::clock();
        let opened = tokio::select! {
            opened = tributary_net::connect(&self.target, &self.dial) => opened,
            () = self.stop.cancelled() => return Ended::Stopped,
        };
        let (io, peer) = match opened {
            Ok(opened) => opened,
            Err(e) => return Ended::Failed(format!("cannot connect: {e}")),
        };
        tracing::debug!(%peer, "connected; RTMP handshake");
        let now = tributary_net::clock();
        let mut config = self.session.clone();
        // What is left of the budget after dialing (at least a second).
        config.timeout = self
            .timeout
            .saturating_sub(now.saturating_duration_since(began))
            .max(Duration::from_secs(1));
        let mut session = ClientSession::new(config, tributary_net::handshake_random(), now);
        let mut pump = Pump {
            hub: self.hub.clone(),
            buffer: self.buffer.clone(),
            subscriber: None,
            video: None,
            audio: None,
            skipping: false,
            start: None,
            state: Arc::clone(&self.state),
            observer: self.observer.clone(),
            mux_errors: 0,
            session: None,
            sent_video: None,
            sent_audio: None,
            resync: false,
        };
        let settings = Settings {
            read_size: READ_SIZE,
            high_water: QUEUE_BYTES,
            write_stall: Some(self.timeout),
            linger: CLOSE_GRACE,
            ..Settings::default()
        };
        let end = tributary_net::run(io, &mut session, &mut pump, settings, &self.stop).await;
        if pump.subscriber.is_some() {
            self.failures = 0;
            self.delay = self.retry;
        }
        match end {
            End::Stopped => Ended::Stopped,
            End::Handler(Reason::BufferGone) => Ended::BufferGone,
            End::Handler(Reason::CodecChange(what)) => Ended::CodecChange(what),
            End::Handler(Reason::Rtmp(e)) | End::Session(e) => {
                Ended::Failed(format!("RTMP session with {peer}: {e}"))
            }
            End::PeerClosed => Ended::Failed(format!("{peer} closed the connection (EOF)")),
            End::Io(e) => Ended::Failed(format!("socket error with {peer}: {e}")),
            End::WriteStalled(after) => Ended::Failed(format!("{peer} read nothing for {after:?}")),
            End::Backlog(_) | End::ReadIdle(_) | End::InputBudget(_) => {
                Ended::Failed(format!("{peer}: {end}"))
            }
        }
    }

    /// Applies `change` to the shared state under its lock (see [`transition`]).
    fn update(&self, error: Option<&str>, change: impl FnOnce(&mut PushState)) {
        transition(&self.state, self.observer.as_ref(), error, change);
    }
}

/// Applies `change` to `state` under its lock and, if the status moved, tells `observer`
/// (outside the lock) with `error` as the reason.
fn transition(
    state: &Mutex<PushState>,
    observer: Option<&PushObserver>,
    error: Option<&str>,
    change: impl FnOnce(&mut PushState),
) {
    let mut state = lock(state);
    let from = state.status;
    change(&mut state);
    let Some(observer) = observer.filter(|_| state.status != from) else {
        return;
    };
    let moved = PushChange {
        url: state.url.clone(),
        from,
        to: state.status,
        error: error.map(str::to_owned),
    };
    drop(state);
    observer(&moved);
}

/// The handler of one connection: waits for `NetStream.Publish.Start`, then pumps the buffer's
/// frames into the session.
struct Pump {
    /// Where the buffer lives.
    hub: Hub,
    /// The buffer pushed.
    buffer: BufferId,
    /// The buffer's reader, from its last keyframe; `None` until the publish started.
    subscriber: Option<Subscriber>,
    /// The video codec this session publishes (a different one reconnects).
    video: Option<Codec>,
    /// The audio codec this session publishes.
    audio: Option<Codec>,
    /// Dropping until the next keyframe the queue has room for.
    skipping: bool,
    /// The DTS of the first frame sent: FLV timestamps count from it, so an earlier frame
    /// (audio the source muxed after the starting keyframe) cannot be sent.
    start: Option<Ts90>,
    /// Where drops are counted.
    state: Arc<Mutex<PushState>>,
    /// Told of status changes.
    observer: Option<PushObserver>,
    /// Frames the FLV mapping refused (logged every 100th).
    mux_errors: u64,
    /// The session of the last frame read: where a buffer without the normaliser may step
    /// back in time (see the module doc, "Continuity").
    session: Option<SessionId>,
    /// The DTS of the last video frame sent: no video at or before it goes out.
    sent_video: Option<Ts90>,
    /// The DTS of the last audio frame sent: no audio at or before it goes out.
    sent_audio: Option<Ts90>,
    /// A new session began after frames were sent: video waits for its keyframe past
    /// `sent_video`.
    resync: bool,
}

/// Why the pump ends a connection.
#[derive(Debug, thiserror::Error)]
enum Reason {
    #[error("the buffer was deleted")]
    BufferGone,
    #[error("{0}")]
    CodecChange(String),
    #[error(transparent)]
    Rtmp(#[from] tributary_rtmp::Error),
}

impl Handler<ClientSession> for Pump {
    type Item = Delivery;
    type Reason = Reason;

    fn event(
        &mut self,
        cx: &mut Cx<'_, ClientSession, Reason>,
        event: ClientEvent,
    ) -> Result<(), Reason> {
        match event {
            ClientEvent::PublishStarted => self.started(cx),
            ClientEvent::Connected { handshake } => {
                tracing::debug!(?handshake, "RTMP connect accepted");
                Ok(())
            }
            other => {
                tracing::debug!(?other, "RTMP event");
                Ok(())
            }
        }
    }

    fn receiving(&self) -> bool {
        self.subscriber.is_some()
    }

    async fn recv(&mut self) -> Option<Delivery> {
        match &mut self.subscriber {
            Some(subscriber) => subscriber.recv().await,
            None => std::future::pending().await,
        }
    }

    fn try_recv(&mut self) -> Poll<Option<Delivery>> {
        let Some(subscriber) = &mut self.subscriber else {
            return Poll::Pending;
        };
        subscriber.try_next()
    }

    fn item(
        &mut self,
        cx: &mut Cx<'_, ClientSession, Reason>,
        delivery: Option<Delivery>,
    ) -> Result<(), Reason> {
        match delivery {
            None => {
                self.goodbye(cx);
                cx.close(Reason::BufferGone);
                Ok(())
            }
            Some(Delivery::Lagged { dropped }) => {
                tracing::warn!(
                    dropped,
                    "push fell behind the buffer; resuming at the next keyframe"
                );
                self.drop_frames(dropped);
                Ok(())
            }
            Some(Delivery::Frame(frame)) => self.send(cx, &frame),
        }
    }

    fn stop(&mut self, cx: &mut Cx<'_, ClientSession, Reason>) {
        self.goodbye(cx);
    }
}

impl Pump {
    /// `NetStream.Publish.Start`: subscribe from the last keyframe and go `active`.
    fn started(&mut self, cx: &mut Cx<'_, ClientSession, Reason>) -> Result<(), Reason> {
        let subscribed =
            self.hub
                .subscribe(&self.buffer, SubscribeFrom::LastKeyframe, SUBSCRIBER_CLASS);
        let Ok(subscriber) = subscribed else {
            self.goodbye(cx);
            cx.close(Reason::BufferGone);
            return Ok(());
        };
        // Platforms buffer seconds: audio rides with the next video frame, one wake-up and
        // write for both.
        subscriber.set_wake(Wake::Video { within: AUDIO_WAIT });
        self.subscriber = Some(subscriber);
        transition(&self.state, self.observer.as_ref(), None, |state| {
            state.status = PushStatus::Active;
            state.attempt = 0;
            state.connected_at = Some(SystemTime::now());
        });
        tracing::info!("publishing");
        Ok(())
    }

    /// Queues one frame, or drops it when the queue is full (see the module doc).
    fn send(
        &mut self,
        cx: &mut Cx<'_, ClientSession, Reason>,
        frame: &Frame,
    ) -> Result<(), Reason> {
        let kind = frame.codec.kind();
        if !matches!(
            frame.codec,
            Codec::H264 | Codec::H265 | Codec::Aac | Codec::Mp3
        ) {
            // RTMP does not carry it; the muxer would skip it anyway.
            return Ok(());
        }
        let slot = match kind {
            MediaKind::Video => &mut self.video,
            MediaKind::Audio => &mut self.audio,
            MediaKind::Data => return Ok(()),
        };
        match slot {
            Some(codec) if *codec != frame.codec => {
                let what = format!("{kind:?} codec changed from {codec} to {}", frame.codec);
                self.goodbye(cx);
                cx.close(Reason::CodecChange(what));
                return Ok(());
            }
            Some(_) => {}
            None => *slot = Some(frame.codec),
        }
        if self.start.is_some_and(|start| frame.dts < start) {
            return Ok(());
        }
        if self.session != Some(frame.session) {
            self.resync = self.sent_video.is_some();
            self.session = Some(frame.session);
        }
        let sent = match kind {
            MediaKind::Video => self.sent_video,
            _ => self.sent_audio,
        };
        if sent.is_some_and(|sent| frame.dts <= sent) {
            // Already sent, by the process before a restart (module doc, "Continuity").
            return Ok(());
        }
        if kind == MediaKind::Video && self.resync {
            if !frame.keyframe {
                return Ok(());
            }
            self.resync = false;
        }
        let sync_point = match kind {
            MediaKind::Video => frame.keyframe,
            _ => self.video.is_none(),
        };
        let full = full(cx, frame.arrival);
        if self.skipping && (!sync_point || full) {
            self.drop_frames(1);
            return Ok(());
        }
        if self.skipping {
            self.skipping = false;
            tracing::info!("push queue has room again; resumed at a keyframe");
        } else if full {
            self.skipping = true;
            self.drop_frames(1);
            tracing::warn!(
                queued_bytes = cx.queued(),
                "the target reads slower than real time: dropping up to the next keyframe"
            );
            return Ok(());
        }
        cx.stamp(frame.arrival);
        match cx.session().send_media(frame) {
            Ok(Pushed::Queued) => {
                self.start.get_or_insert(frame.dts);
                match kind {
                    MediaKind::Video => self.sent_video = Some(frame.dts),
                    _ => self.sent_audio = Some(frame.dts),
                }
            }
            Ok(Pushed::Skipped(_)) => {}
            Err(tributary_rtmp::Error::Mux(e)) => {
                self.mux_errors += 1;
                if self.mux_errors % 100 == 1 {
                    tracing::warn!(count = self.mux_errors, "frame not sent: {e}");
                }
            }
            Err(e @ tributary_rtmp::Error::OutgoingTooLarge { .. }) => {
                tracing::warn!("frame not sent: {e}");
            }
            Err(e) => return Err(Reason::Rtmp(e)),
        }
        Ok(())
    }

    /// Ends the publish politely (`FCUnpublish`, `deleteStream`), after what is queued.
    fn goodbye(&mut self, cx: &mut Cx<'_, ClientSession, Reason>) {
        self.subscriber = None;
        if let Err(e) = cx.session().close() {
            tracing::debug!("closing the RTMP session: {e}");
        }
    }

    fn drop_frames(&self, n: u64) {
        lock(&self.state).dropped += n;
    }
}

/// Whether a frame that arrived at `arrival` would make the queue span more than
/// [`QUEUE_SPAN`] of media, or the queue already holds [`QUEUE_BYTES`].
fn full(cx: &Cx<'_, ClientSession, Reason>, arrival: Instant) -> bool {
    cx.queued() >= QUEUE_BYTES
        || cx
            .oldest()
            .is_some_and(|oldest| arrival.saturating_duration_since(oldest) > QUEUE_SPAN)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The subscriber class of push targets, for the hub's drop counters.
const SUBSCRIBER_CLASS: &str = "push";

/// The longest audio waits in the buffer for the next video frame (all of it, when a stream has
/// no video).
const AUDIO_WAIT: Duration = Duration::from_millis(100);

/// Media a target's queue may hold (SPEC §Push "a per-target queue of at most 5 s").
pub const QUEUE_SPAN: Duration = Duration::from_secs(5);

/// Bytes a target's queue may hold whatever the bitrate: 5 s at 50 Mb/s.
pub const QUEUE_BYTES: usize = 32 << 20;

/// How long a stopped target may take to unpublish politely.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The longest reconnect delay (unless `retry_timeout_sec` is longer).
const RETRY_CAP: Duration = Duration::from_secs(30);

/// Errors kept per target (SPEC §Defaults "push errors 5").
const ERRORS_KEPT: usize = 5;

/// Bytes read from the socket at a time (the target sends little).
const READ_SIZE: usize = 16 * 1024;
