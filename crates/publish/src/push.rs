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
//! 1. Dial (TCP; TLS for `rtmps://` with SNI and certificates checked against the Mozilla
//!    roots), then drive a sans-IO [`ClientSession`] with the publish intent until
//!    `NetStream.Publish.Start`. The handshake and publish must finish within `timeout_sec`
//!    (the session's own deadline), with a 2 s backstop over the whole setup, dial included.
//! 2. Subscribe to the buffer from its last keyframe (class `push`), so the target starts at a
//!    keyframe at once; the session sends the sequence headers before it and rebases FLV
//!    timestamps to the session's first DTS (composition time = PTS − DTS). Frames with a
//!    DTS before that first one (audio a source muxed after the starting keyframe) are not
//!    sent: they would need negative timestamps.
//! 3. Pump: frames from the subscriber go through [`ClientSession::send_media`]; the
//!    transmits wait in a per-target queue written to the socket as fast as the target reads.
//!    The queue is bounded to [`QUEUE_SPAN`] (5 s) of media and [`QUEUE_BYTES`]: a frame that
//!    would exceed it is dropped, and so is everything after it up to the next video keyframe
//!    the queue has room for (audio-only: the next audio frame). A subscriber that the hub
//!    itself dropped (`Lagged`) resumes at the hub's next keyframe. Either way only this
//!    target loses frames; drops are counted in [`PushState::dropped`]. A target that reads
//!    nothing for `timeout_sec` while data waits is a failure.
//!
//! Continuity: input switches and upstream reconnects reach the target as ordinary frames (the
//! hub keeps timestamps monotonic); new parameter sets go out as an in-band sequence header.
//! Only a codec change reconnects, at once and without counting as a failure.
//!
//! On any failure (refusal, timeout, EOF, write error) the target goes `reconnecting`, the
//! error is recorded (the last 5, newest first), and the task waits `retry_timeout_sec`,
//! doubling per consecutive failure up to 30 s, then connects again and re-subscribes from the
//! last keyframe, forever, or until `limit` consecutive failures (then `failed`, and the task
//! ends). `attempt` counts failures since the last successful publish and resets on success.
//! When the buffer is deleted the task closes the session and ends.
//!
//! Logs are `tracing` events inside a span `push` with the fields `stream` and `url`, the URL
//! redacted with `tributary_domain::redact::mask_push_url` (its last path segment, the
//! platform's stream key, becomes `****`). No lock is held across an `.await`; the state is
//! behind a short `std` mutex the task updates and [`PushHandle::state`] copies.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::Instrument;
use tributary_domain::Push;
use tributary_domain::redact::mask_push_url;
use tributary_hub::{BufferId, Delivery, Hub, SubscribeFrom, Subscriber};
use tributary_media::{Codec, Frame, MediaKind, StreamCode, Ts90};
use tributary_rtmp::{ClientConfig, ClientEvent, ClientIntent, ClientSession, Output, Pushed};

use crate::PublishError;
use crate::dial::{self, Io, Target};

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
    /// Dropped with the handle: the task sees its receiver resolve and stops.
    _stop: oneshot::Sender<()>,
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
) -> Result<PushHandle, PublishError> {
    let invalid_url = || PublishError::InvalidSettings {
        code: code.clone(),
        field: "push[].url",
        reason: "must be rtmp://host[:port]/<app>/<key> or rtmps://…",
    };
    let target = Target::parse(&settings.url).ok_or_else(invalid_url)?;
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
    let (stop_tx, stop_rx) = oneshot::channel();
    let retry = Duration::from_secs(settings.retry_timeout_sec.max(1));
    let pusher = Pusher {
        hub: hub.clone(),
        buffer,
        tls: target.tls.then(dial::tls_config),
        target,
        session,
        timeout: Duration::from_secs(settings.timeout_sec.max(1)),
        retry,
        delay: retry,
        limit: settings.limit,
        failures: 0,
        state: Arc::clone(&state),
        stop: stop_rx,
    };
    let span = tracing::info_span!("push", stream = %code, url = %url);
    tracing::info!(parent: &span, "push started");
    let task = runtime.spawn(pusher.run().instrument(span));
    Ok(PushHandle {
        code,
        state,
        _stop: stop_tx,
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
        }
    }
}

impl From<&Push> for PushSettings {
    fn from(push: &Push) -> Self {
        Self {
            url: push.url.clone(),
            timeout_sec: u64::from(push.timeout_sec),
            retry_timeout_sec: u64::from(push.retry_timeout_sec),
            limit: push.limit,
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
    /// Host, port, TLS or not.
    target: Target,
    /// The publish session's settings (application, stream key, `tcUrl`).
    session: ClientConfig,
    /// TLS settings for `rtmps://`, built once.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Handshake + publish budget; also the longest a target may read nothing.
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
    /// Resolves when the handle is dropped.
    stop: oneshot::Receiver<()>,
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
                    self.update(|s| s.status = PushStatus::Reconnecting);
                }
                Ended::Failed(error) => {
                    self.failures += 1;
                    let attempt = self.failures;
                    let failed = self.limit > 0 && attempt >= self.limit;
                    self.update(|s| {
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
                        _ = &mut self.stop => {
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
        let backstop = self.timeout + BACKSTOP;
        let mut config = self.session.clone();
        config.timeout = self.timeout;
        let open = open(&self.target, self.tls.as_ref(), config);
        let opened = tokio::select! {
            opened = tokio::time::timeout(backstop, open) => opened,
            _ = &mut self.stop => return Ended::Stopped,
        };
        let (io, mut session, peer) = match opened {
            Err(_) => {
                return Ended::Failed(format!(
                    "{}: no NetStream.Publish.Start within {backstop:?}",
                    self.target
                ));
            }
            Ok(Err(e)) => return Ended::Failed(e),
            Ok(Ok(opened)) => opened,
        };
        let subscribed =
            self.hub
                .subscribe(&self.buffer, SubscribeFrom::LastKeyframe, SUBSCRIBER_CLASS);
        let (mut rd, mut wr) = tokio::io::split(io);
        let mut out = Outbox::default();
        let Ok(subscriber) = subscribed else {
            close(&mut session, &mut out, &mut wr).await;
            return Ended::BufferGone;
        };
        self.failures = 0;
        self.delay = self.retry;
        self.update(|s| {
            s.status = PushStatus::Active;
            s.attempt = 0;
            s.connected_at = Some(SystemTime::now());
        });
        tracing::info!(%peer, "publishing");
        let mut pump = Pump {
            session,
            out,
            subscriber,
            video: None,
            audio: None,
            skipping: false,
            start: None,
            state: Arc::clone(&self.state),
            mux_errors: 0,
        };
        let ended = pump
            .run(&mut rd, &mut wr, peer, self.timeout, &mut self.stop)
            .await;
        if !matches!(ended, Ended::Failed(_)) {
            close(&mut pump.session, &mut pump.out, &mut wr).await;
        }
        ended
    }

    /// Applies `change` to the shared state under its lock.
    fn update(&self, change: impl FnOnce(&mut PushState)) {
        change(&mut lock(&self.state));
    }
}

/// Dials and drives the session until `NetStream.Publish.Start`.
async fn open(
    target: &Target,
    tls: Option<&Arc<rustls::ClientConfig>>,
    config: ClientConfig,
) -> Result<(Box<dyn Io>, ClientSession, SocketAddr), String> {
    let (mut io, peer) = dial::connect(target, tls)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    tracing::debug!(%peer, "connected; RTMP handshake");
    let mut session = ClientSession::new(config, dial::handshake_random(), now());
    let mut buf = vec![0u8; READ_SIZE];
    let mut offset: u64 = 0;
    loop {
        let mut started = false;
        while let Some(output) = session.poll_output() {
            match output {
                Output::Transmit(bytes) => io
                    .write_all(&bytes)
                    .await
                    .map_err(|e| format!("write error to {peer}: {e}"))?,
                Output::Event(ClientEvent::PublishStarted) => started = true,
                Output::Event(ClientEvent::Connected { handshake }) => {
                    tracing::debug!(?handshake, "RTMP connect accepted");
                }
                Output::Event(other) => tracing::debug!(?other, "RTMP event"),
            }
        }
        io.flush()
            .await
            .map_err(|e| format!("write error to {peer}: {e}"))?;
        if started {
            return Ok((io, session, peer));
        }
        let timer = session.poll_timeout();
        tokio::select! {
            read = io.read(&mut buf) => {
                let n = match read {
                    Ok(0) => return Err(format!("{peer} closed the connection (EOF) at byte {offset}, before publishing")),
                    Ok(n) => n,
                    Err(e) => return Err(format!("read error from {peer} at byte {offset}: {e}")),
                };
                offset += n as u64;
                session
                    .handle_input(now(), &buf[..n])
                    .map_err(|e| format!("RTMP session with {peer}: {e}"))?;
            }
            () = sleep_until(timer) => {
                session
                    .handle_timeout(now())
                    .map_err(|e| format!("RTMP session with {peer}: {e}"))?;
            }
        }
    }
}

/// Ends a session politely: `FCUnpublish` and `deleteStream` after what is queued, within
/// [`CLOSE_GRACE`].
async fn close(session: &mut ClientSession, out: &mut Outbox, wr: &mut WriteHalf<Box<dyn Io>>) {
    if session.close().is_ok() {
        out.take(session, None);
    }
    let flush = async {
        while let Some(bytes) = out.front() {
            let n = wr.write(bytes).await?;
            if n == 0 {
                break;
            }
            out.advance(n);
        }
        wr.flush().await?;
        wr.shutdown().await
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, flush).await;
}

/// The publishing half of a connection: subscriber in, queue out.
struct Pump {
    /// The RTMP session.
    session: ClientSession,
    /// Transmits waiting for the socket.
    out: Outbox,
    /// The buffer's reader, from its last keyframe.
    subscriber: Subscriber,
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
    /// Frames the FLV mapping refused (logged every 100th).
    mux_errors: u64,
}

impl Pump {
    async fn run(
        &mut self,
        rd: &mut tokio::io::ReadHalf<Box<dyn Io>>,
        wr: &mut WriteHalf<Box<dyn Io>>,
        peer: SocketAddr,
        timeout: Duration,
        stop: &mut oneshot::Receiver<()>,
    ) -> Ended {
        let mut buf = vec![0u8; READ_SIZE];
        let mut last_progress = tokio::time::Instant::now();
        let mut unflushed = false;
        // Bytes the session produced before the first frame (acknowledgements).
        self.out.take(&mut self.session, None);
        loop {
            let writing = self.out.front().is_some();
            let flushing = !writing && unflushed;
            if !writing {
                last_progress = tokio::time::Instant::now();
            }
            let out = &self.out;
            tokio::select! {
                _ = &mut *stop => return Ended::Stopped,
                read = rd.read(&mut buf) => {
                    let n = match read {
                        Ok(0) => return Ended::Failed(format!("{peer} closed the connection (EOF)")),
                        Ok(n) => n,
                        Err(e) => return Ended::Failed(format!("read error from {peer}: {e}")),
                    };
                    if let Err(e) = self.session.handle_input(now(), &buf[..n]) {
                        return Ended::Failed(format!("RTMP session with {peer}: {e}"));
                    }
                    self.out.take(&mut self.session, None);
                }
                progress = write_or_flush(wr, out), if writing || flushing => {
                    match progress {
                        Ok(Some(0)) => return Ended::Failed(format!("{peer} closed the connection while we wrote")),
                        Ok(Some(n)) => {
                            self.out.advance(n);
                            last_progress = tokio::time::Instant::now();
                            unflushed = true;
                        }
                        Ok(None) => unflushed = false,
                        Err(e) => return Ended::Failed(format!("write error to {peer}: {e}")),
                    }
                }
                () = tokio::time::sleep_until(last_progress + timeout), if writing => {
                    return Ended::Failed(format!("{peer} read nothing for {timeout:?}"));
                }
                delivery = self.subscriber.recv() => match delivery {
                    None => return Ended::BufferGone,
                    Some(Delivery::Lagged { dropped }) => {
                        tracing::warn!(dropped, "push fell behind the buffer; resuming at the next keyframe");
                        self.drop_frames(dropped);
                    }
                    Some(Delivery::Frame(frame)) => {
                        if let Err(ended) = self.send(&frame) {
                            return ended;
                        }
                    }
                },
            }
        }
    }

    /// Queues one frame, or drops it when the queue is full (see the module doc).
    fn send(&mut self, frame: &Frame) -> Result<(), Ended> {
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
                return Err(Ended::CodecChange(format!(
                    "{kind:?} codec changed from {codec} to {}",
                    frame.codec
                )));
            }
            Some(_) => {}
            None => *slot = Some(frame.codec),
        }
        if self.start.is_some_and(|start| frame.dts < start) {
            return Ok(());
        }
        let sync_point = match kind {
            MediaKind::Video => frame.keyframe,
            _ => self.video.is_none(),
        };
        let full = self.out.full(frame.dts);
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
                queued_bytes = self.out.bytes,
                "the target reads slower than real time: dropping up to the next keyframe"
            );
            return Ok(());
        }
        match self.session.send_media(frame) {
            Ok(Pushed::Queued) => {
                self.start.get_or_insert(frame.dts);
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
            Err(e) => return Err(Ended::Failed(format!("RTMP session: {e}"))),
        }
        self.out.take(&mut self.session, Some(frame.dts));
        Ok(())
    }

    fn drop_frames(&self, n: u64) {
        lock(&self.state).dropped += n;
    }
}

/// Writes (part of) the front of `out`, or flushes when it is empty: `Some(bytes written)`, or
/// `None` after a flush. Cancel-safe: a write either took bytes (and says how many) or none.
async fn write_or_flush(
    wr: &mut WriteHalf<Box<dyn Io>>,
    out: &Outbox,
) -> std::io::Result<Option<usize>> {
    match out.front() {
        Some(bytes) => wr.write(bytes).await.map(Some),
        None => wr.flush().await.map(|()| None),
    }
}

/// Transmits waiting for the socket, each with the DTS of the frame that produced it.
#[derive(Debug, Default)]
struct Outbox {
    /// In sending order; the front may be partly written.
    queue: VecDeque<(Bytes, Option<Ts90>)>,
    /// Bytes of the front already written.
    written: usize,
    /// Bytes queued and not written.
    bytes: usize,
}

impl Outbox {
    /// Moves every transmit the session has into the queue.
    fn take(&mut self, session: &mut ClientSession, dts: Option<Ts90>) {
        while let Some(output) = session.poll_output() {
            if let Output::Transmit(bytes) = output {
                self.bytes += bytes.len();
                self.queue.push_back((bytes, dts));
            }
        }
    }

    /// The unwritten part of the front transmit.
    fn front(&self) -> Option<&[u8]> {
        self.queue.front().map(|(b, _)| &b[self.written..])
    }

    /// Notes that `n` bytes of the front were written.
    fn advance(&mut self, n: usize) {
        self.written += n;
        self.bytes -= n;
        if let Some((front, _)) = self.queue.front()
            && self.written >= front.len()
        {
            self.queue.pop_front();
            self.written = 0;
        }
    }

    /// Whether a frame at `dts` would make the queue span more than [`QUEUE_SPAN`] of media,
    /// or the queue already holds [`QUEUE_BYTES`].
    fn full(&self, dts: Ts90) -> bool {
        if self.bytes >= QUEUE_BYTES {
            return true;
        }
        let oldest = self.queue.iter().find_map(|(_, dts)| *dts);
        oldest.is_some_and(|oldest| (dts - oldest).as_millis() > QUEUE_SPAN.as_millis() as i64)
    }
}

/// The instant now, from tokio's clock.
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The subscriber class of push targets, for the hub's drop counters.
const SUBSCRIBER_CLASS: &str = "push";

/// Media a target's queue may hold (SPEC §Push "a per-target queue of at most 5 s").
pub const QUEUE_SPAN: Duration = Duration::from_secs(5);

/// Bytes a target's queue may hold whatever the bitrate: 5 s at 50 Mb/s.
pub const QUEUE_BYTES: usize = 32 << 20;

/// How long a stopped target may take to unpublish politely.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Added to `timeout_sec` over the whole setup, dialing included (SPEC §Push).
const BACKSTOP: Duration = Duration::from_secs(2);

/// The longest reconnect delay (unless `retry_timeout_sec` is longer).
const RETRY_CAP: Duration = Duration::from_secs(30);

/// Errors kept per target (SPEC §Defaults "push errors 5").
const ERRORS_KEPT: usize = 5;

/// Bytes read from the socket at a time (the target sends little).
const READ_SIZE: usize = 16 * 1024;
