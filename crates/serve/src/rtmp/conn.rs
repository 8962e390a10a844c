//! One RTMP connection: the driver of its [`ServerSession`], then a publish or play pump.
//!
//! The loop follows the rtmp crate's driving contract: wait on the socket (read and write),
//! the hub subscriber (players), the timers and the stop signal; take `now` once per wake-up;
//! feed the session; drain `poll_output` until `None`, queueing transmits in order and acting
//! on events; then recompute the timers. Writes and reads are independent select branches
//! over the two halves of the socket, so a player that stops reading never stops us from
//! seeing its close, and a blocked write never holds up the timers.

use std::any::Any;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::WriteHalf;
use tributary_hub::{Delivery, HubError, Port, SubscribeFrom, Subscriber, TryRecvError};
use tributary_media::{Codec, StreamCode};
use tributary_rtmp::{
    Error as RtmpError, Output, PlayFanout, Pushed, RejectReason, RequestId, ServerConfig,
    ServerEvent, ServerSession, SkipReason,
};

use super::fanout;
use super::outq::OutQueue;
use super::{Counters, Held, Shared};
use crate::limit::PendingSlot;
use crate::name::Target;
use crate::{PlayRequest, Protocol, PublishRequest, Refusal};

/// Serves one accepted connection to its end; logs why it ended.
pub(super) async fn serve(
    mut socket: TcpStream,
    peer: SocketAddr,
    slot: PendingSlot,
    shared: Arc<Shared>,
) {
    let _open = Held::new(&shared.counters, |c| &c.connections);
    if let Err(e) = socket.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY: {e}");
    }
    // A fixed send buffer instead of the kernel's autotuned one (up to 4 MiB): what a player
    // cannot take then waits in our queue, where its age is seen (`play_backlog_sec`), and in
    // the hub, which drops it frame by frame, not in a kernel buffer we cannot see into.
    if let Err(e) = socket2::SockRef::from(&socket).set_send_buffer_size(SEND_BUFFER) {
        tracing::debug!("SO_SNDBUF: {e}");
    }
    let now = clock();
    let config = ServerConfig {
        intent_timeout: shared.config.handshake_timeout,
        ..ServerConfig::default()
    };
    let mut conn = Conn {
        session: ServerSession::new(config, rand::random(), now),
        out: OutQueue::with_capacity(OUT_PIECES),
        role: Role::Waiting(slot),
        closing: None,
        last_input: now,
        merge_until: None,
        peer,
        shared,
    };
    let end = conn.run(&mut socket).await;
    conn.end(end);
}

/// The state of one connection.
struct Conn {
    /// The protocol machine.
    session: ServerSession,
    /// Transmits not yet written.
    out: OutQueue,
    /// What the peer turned out to be.
    role: Role,
    /// Set once the connection is to close: why, and until when the transmits queued before
    /// (a refusal's status, the end of a play) may still be flushed.
    closing: Option<(End, Instant)>,
    /// When bytes last arrived: an idle publisher is disconnected.
    last_input: Instant,
    /// Media was just moved: a player's frames wait in the hub until then, to go out in one
    /// write (`play_merge`); a publisher's wait in the socket, to come in with one read
    /// (`publish_merge`).
    merge_until: Option<Instant>,
    /// The peer, for requests (logs carry it through the span).
    peer: SocketAddr,
    /// Settings, router, counters, stop signal.
    shared: Arc<Shared>,
}

/// What the peer is.
enum Role {
    /// Still in handshake: holds its place in the per-IP cap until it states its intent
    /// (dropping the slot frees it).
    Waiting(#[expect(dead_code, reason = "held for its Drop")] PendingSlot),
    /// A granted publisher.
    Publishing(Publishing),
    /// A granted player.
    Playing(Playing),
    /// A refused request, or a publish or play that ended: nothing more to do.
    Done,
}

struct Publishing {
    /// The intake port its frames go to.
    port: Port,
    /// Dropped when the publisher leaves: the engine frees the slot.
    _guard: Box<dyn Any + Send + Sync>,
    /// Its place in [`ListenerStats::publishers`](crate::ListenerStats).
    _count: Held,
    /// Media messages the session dropped (malformed, unsupported, keyframe without
    /// parameter sets), for rate-limited logs.
    dropped: u64,
}

struct Playing {
    /// Its reader of the stream's buffer.
    subscriber: Subscriber,
    /// Dropped when the player leaves: the engine releases its cap slot.
    _guard: Box<dyn Any + Send + Sync>,
    /// Its place in [`ListenerStats::players`](crate::ListenerStats).
    _count: Held,
    /// When the play was accepted: a frame replayed from the GOP cache counts as live from
    /// here, so a long GOP does not look like a backlog.
    joined: Instant,
    /// Codecs RTMP cannot carry that were omitted (logged once each).
    omitted: Vec<Codec>,
    /// The muxing this player shares with the others of its buffer.
    fanout: Arc<Mutex<PlayFanout>>,
    /// Whether the fan-out's sequence headers went out before the first frame.
    headers_sent: bool,
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum End {
    #[error("the peer closed the connection")]
    PeerClosed,
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Protocol(#[from] RtmpError),
    #[error("{what} refused: {refusal}")]
    Refused {
        what: &'static str,
        refusal: Refusal,
    },
    #[error("the publisher ended its stream")]
    PublishFinished,
    #[error("the player ended its stream")]
    PlayFinished,
    #[error("the stream ended")]
    StreamEnded,
    #[error("the player fell more than {0} s behind")]
    Backlog(u64),
    #[error("the publisher sent nothing for {0:?}")]
    Idle(Duration),
    #[error("the stream no longer takes this publisher: {0}")]
    Port(HubError),
    #[error("the listener stopped")]
    Stopped,
}

/// Which timer fires next.
#[derive(Debug, Clone, Copy)]
enum Timer {
    /// The session's own deadline (publish or play not stated in time).
    Session,
    /// The flush of a closing connection took too long.
    Linger,
    /// The oldest unsent media is older than the backlog allows.
    Backlog,
    /// The publisher has been silent too long.
    Idle,
    /// A merge interval is over: a player pulls what the hub holds for it, a publisher reads.
    Merge,
}

impl Conn {
    /// Drives the session until the connection ends.
    async fn run(&mut self, socket: &mut TcpStream) -> End {
        let (mut rd, mut wr) = socket.split();
        // Players and handshakes send little; a publisher's buffer grows once it is granted.
        let mut buf = vec![0u8; READ_CHUNK_SMALL];
        let mut now = clock();
        loop {
            if let Err(end) = self.drain(now, now) {
                return end;
            }
            if self.out.is_empty()
                && let Some((end, _)) = self.closing.take()
            {
                return end;
            }
            let (deadline, timer) = self.timer();
            let room = self.closing.is_none() && self.out.bytes() < HIGH_WATER;
            let playing = matches!(self.role, Role::Playing(_));
            let pull = room && playing && self.merge_until.is_none();
            let publishing = matches!(self.role, Role::Publishing(_));
            let readable = room && !(publishing && self.merge_until.is_some());
            if publishing && buf.len() < READ_CHUNK {
                buf.resize(READ_CHUNK, 0);
            }
            tokio::select! {
                biased;
                () = self.shared.cancel.cancelled() => return End::Stopped,
                written = write_some(&mut wr, &self.out), if !self.out.is_empty() => {
                    match written {
                        Ok(0) => return End::Io(io::ErrorKind::WriteZero.into()),
                        Ok(n) => self.out.consume(n),
                        Err(e) => return End::Io(e),
                    }
                }
                read = rd.read(&mut buf), if readable => {
                    now = clock();
                    match read {
                        Ok(0) => return End::PeerClosed,
                        Ok(n) => {
                            self.last_input = now;
                            if let Err(e) = self.session.handle_input(now, &buf[..n]) {
                                return End::Protocol(e);
                            }
                            // A full buffer means more is waiting: read on at once.
                            let merge = self.shared.config.publish_merge;
                            if publishing && n < buf.len() && !merge.is_zero() {
                                self.merge_until = Some(now + merge);
                            }
                        }
                        Err(e) => return End::Io(e),
                    }
                }
                delivery = recv(&mut self.role), if pull => {
                    now = clock();
                    if let Err(end) = self.deliver(now, delivery) {
                        return end;
                    }
                    if let Err(end) = self.deliver_ready(now) {
                        return end;
                    }
                    let merge = self.shared.config.play_merge;
                    if !merge.is_zero() {
                        self.merge_until = Some(now + merge);
                    }
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    now = clock();
                    match timer {
                        Timer::Session => {
                            if let Err(e) = self.session.handle_timeout(now) {
                                return End::Protocol(e);
                            }
                        }
                        Timer::Linger => {
                            if let Some((end, _)) = self.closing.take() {
                                return end;
                            }
                        }
                        Timer::Backlog => return End::Backlog(self.shared.config.play_backlog_sec),
                        Timer::Idle => return End::Idle(self.shared.config.publish_idle_timeout),
                        Timer::Merge => self.merge_until = None,
                    }
                }
            }
        }
    }

    /// Drains the session's outputs: transmits are queued (stamped `stamp`), events acted on.
    fn drain(&mut self, now: Instant, stamp: Instant) -> Result<(), End> {
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::Transmit(bytes) => self.out.push(bytes, stamp),
                Output::Event(event) => self.event(now, event)?,
            }
        }
        Ok(())
    }

    fn event(&mut self, now: Instant, event: ServerEvent) -> Result<(), End> {
        match event {
            ServerEvent::Media(frame) => {
                // `frame.arrival` is already the `now` of the read that completed it.
                if let Role::Publishing(publishing) = &self.role {
                    publishing.port.write(frame).map_err(End::Port)?;
                }
            }
            ServerEvent::PublishRequested {
                request_id,
                app,
                stream_key,
            } => self.publish(now, request_id, &app, &stream_key)?,
            ServerEvent::PlayRequested {
                request_id,
                app,
                stream_key,
            } => self.play(now, request_id, &app, &stream_key)?,
            ServerEvent::MediaDropped { offset, error } => {
                if let Role::Publishing(publishing) = &mut self.role {
                    publishing.dropped += 1;
                    if publishing.dropped % DROP_LOG_EVERY == 1 {
                        tracing::warn!(
                            dropped = publishing.dropped,
                            "media message at byte {offset} dropped: {error}"
                        );
                    }
                }
            }
            ServerEvent::Connected { app, handshake, .. } => {
                tracing::debug!(app, ?handshake, "connected");
            }
            ServerEvent::PublishFinished => self.close(End::PublishFinished, now),
            ServerEvent::PlayFinished => self.close(End::PlayFinished, now),
            // A refusal already set `closing`; the session sends nothing after this.
            ServerEvent::Close => {}
            // Metadata: the hub carries frames only; outputs regenerate what they need.
            _ => {}
        }
        Ok(())
    }

    fn publish(
        &mut self,
        now: Instant,
        request_id: RequestId,
        app: &str,
        stream_key: &str,
    ) -> Result<(), End> {
        let target = Target::rtmp(app, stream_key);
        tracing::Span::current().record("path", target.path.as_str());
        let request = PublishRequest {
            key: target.param("key"),
            slot: target.param("slot"),
            path: target.path,
            peer: self.peer,
            protocol: Protocol::Rtmp,
        };
        let grant = match self.shared.router.publish(request) {
            Ok(grant) => grant,
            Err(refusal) => return self.refuse(now, request_id, "publish", refusal),
        };
        tracing::Span::current().record("stream", grant.code.as_str());
        // A new publisher is a new timeline: its frames reach the buffer from its first
        // keyframe, in a new session. A slot that never carried frames keeps the session its
        // first selection opened (`fresh`).
        if grant.port.health().frames > 0 {
            grant.port.restart(tributary_hub::SessionReason::Reconnect);
        }
        // Before `accept`: media held behind the `publish` command comes out of it.
        self.role = Role::Publishing(Publishing {
            port: grant.port,
            _guard: grant.guard,
            _count: Held::new(&self.shared.counters, |c| &c.publishers),
            dropped: 0,
        });
        self.session.accept(request_id)?;
        tracing::info!("publishing");
        Ok(())
    }

    fn play(
        &mut self,
        now: Instant,
        request_id: RequestId,
        app: &str,
        stream_key: &str,
    ) -> Result<(), End> {
        let target = Target::rtmp(app, stream_key);
        tracing::Span::current().record("path", target.path.as_str());
        let request = PlayRequest {
            path: target.path,
            query: target.query,
            peer: self.peer,
            protocol: Protocol::Rtmp,
        };
        let grant = match self.shared.router.play(request) {
            Ok(grant) => grant,
            Err(refusal) => return self.refuse(now, request_id, "play", refusal),
        };
        let code: StreamCode = grant.code;
        tracing::Span::current().record("stream", code.as_str());
        let subscriber =
            match grant
                .hub
                .subscribe(&grant.buffer, SubscribeFrom::LastKeyframe, PLAY_CLASS)
            {
                Ok(subscriber) => subscriber,
                Err(e) => {
                    let refusal = Refusal::NotFound(format!("stream {code} is not running: {e}"));
                    return self.refuse(now, request_id, "play", refusal);
                }
            };
        let instance = subscriber.instance();
        self.session.accept(request_id)?;
        // An accepted play always has a format; `NotStreaming` would be a session bug.
        let format = self
            .session
            .play_format()
            .ok_or(RtmpError::NotStreaming("playing"))?;
        let fanout = self.shared.fanouts.get(instance, format);
        self.role = Role::Playing(Playing {
            subscriber,
            _guard: grant.guard,
            _count: Held::new(&self.shared.counters, |c| &c.players),
            joined: now,
            omitted: Vec::new(),
            fanout,
            headers_sent: false,
        });
        tracing::info!("playing");
        Ok(())
    }

    /// Answers a refused request; the connection closes once the status is flushed.
    fn refuse(
        &mut self,
        now: Instant,
        request_id: RequestId,
        what: &'static str,
        refusal: Refusal,
    ) -> Result<(), End> {
        Counters::bump(&self.shared.counters.rejected);
        let reason = match refusal {
            Refusal::NotFound(_) => RejectReason::NotFound,
            Refusal::Denied(_) => RejectReason::Denied,
            Refusal::Busy(_) => RejectReason::Busy,
        };
        self.role = Role::Done;
        self.session.reject(request_id, reason)?;
        self.close(End::Refused { what, refusal }, now);
        Ok(())
    }

    /// One delivery from the hub to a player.
    fn deliver(&mut self, now: Instant, delivery: Option<Delivery>) -> Result<(), End> {
        let Role::Playing(playing) = &mut self.role else {
            return Ok(());
        };
        match delivery {
            None => {
                self.session.finish_play()?;
                self.role = Role::Done;
                self.close(End::StreamEnded, now);
                Ok(())
            }
            Some(Delivery::Lagged { dropped }) => {
                tracing::debug!(dropped, "player fell behind; resuming at a keyframe");
                Ok(())
            }
            Some(Delivery::Frame(frame)) => {
                let stamp = frame.arrival.max(playing.joined);
                let sent = send_shared(
                    &mut self.session,
                    &playing.fanout,
                    &frame,
                    &mut playing.headers_sent,
                );
                match sent {
                    Ok(Pushed::Queued) => {}
                    Ok(Pushed::Skipped(SkipReason::UnsupportedCodec(codec))) => {
                        if !playing.omitted.contains(&codec) {
                            playing.omitted.push(codec);
                            tracing::warn!(%codec, "track omitted: RTMP cannot carry {codec}");
                        }
                    }
                    Ok(Pushed::Skipped(_)) => {}
                    // One frame that cannot be muxed is skipped, not fatal.
                    Err(e @ (RtmpError::Mux(_) | RtmpError::OutgoingTooLarge { .. })) => {
                        tracing::debug!("frame skipped: {e}");
                    }
                    Err(e) => return Err(End::Protocol(e)),
                }
                self.drain(now, stamp)
            }
        }
    }

    /// Queues, after a delivery, whatever else the hub holds for this player now, up to the
    /// high-water mark: one write then carries them all.
    fn deliver_ready(&mut self, now: Instant) -> Result<(), End> {
        while self.closing.is_none() && self.out.bytes() < HIGH_WATER {
            let Role::Playing(playing) = &mut self.role else {
                return Ok(());
            };
            let delivery = match playing.subscriber.try_recv() {
                Ok(delivery) => Some(delivery),
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Closed) => None,
            };
            self.deliver(now, delivery)?;
        }
        Ok(())
    }

    /// Marks the connection as closing: no more reads or deliveries; it ends once the queued
    /// transmits are written, or after [`LINGER`].
    fn close(&mut self, end: End, now: Instant) {
        if self.closing.is_none() {
            self.closing = Some((end, now + LINGER));
        }
    }

    /// The next deadline and what it is for.
    fn timer(&self) -> (Option<Instant>, Timer) {
        let mut next: (Option<Instant>, Timer) = (None, Timer::Session);
        let mut consider = |at: Option<Instant>, timer: Timer| {
            if let Some(at) = at
                && next.0.is_none_or(|current| at < current)
            {
                next = (Some(at), timer);
            }
        };
        consider(self.session.poll_timeout(), Timer::Session);
        consider(self.closing.as_ref().map(|(_, at)| *at), Timer::Linger);
        match &self.role {
            Role::Playing(_) => {
                let backlog = Duration::from_secs(self.shared.config.play_backlog_sec);
                consider(self.out.oldest().map(|at| at + backlog), Timer::Backlog);
                consider(self.merge_until, Timer::Merge);
            }
            Role::Publishing(_) => {
                consider(
                    Some(self.last_input + self.shared.config.publish_idle_timeout),
                    Timer::Idle,
                );
                consider(self.merge_until, Timer::Merge);
            }
            Role::Waiting(_) | Role::Done => {}
        }
        next
    }

    /// Logs why the connection ended, reports a publisher's departure on its port, lets the
    /// role's guards go (the engine frees the slot), then counts the end: a total moves only
    /// after the gauges have.
    fn end(self, end: End) {
        let warn = match &end {
            End::Protocol(_) | End::Idle(_) | End::Backlog(_) | End::Port(_) => true,
            End::Io(e) => !matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
            ),
            // Operators want to see refused encoders (wrong key, unknown code); refused
            // players are routine.
            End::Refused { what, .. } => *what == "publish",
            End::PeerClosed
            | End::PublishFinished
            | End::PlayFinished
            | End::StreamEnded
            | End::Stopped => false,
        };
        let Self {
            role, peer, shared, ..
        } = self;
        match &role {
            Role::Publishing(publishing) => {
                let message = format!("RTMP publisher {peer} disconnected: {end}");
                publishing.port.report_error(clock(), message);
                log(warn, format_args!("publisher closed: {end}"));
            }
            Role::Playing(playing) => {
                let dropped = playing.subscriber.dropped();
                log(
                    warn,
                    format_args!("player disconnected: {end} ({dropped} frames dropped)"),
                );
            }
            Role::Waiting(_) | Role::Done => log(warn, format_args!("connection closed: {end}")),
        }
        drop(role);
        let counters = &shared.counters;
        let total = match end {
            End::Protocol(_) | End::Idle(_) => Some(&counters.protocol_errors),
            End::Backlog(_) => Some(&counters.slow_players),
            _ => None,
        };
        if let Some(total) = total {
            Counters::bump(total);
        }
    }
}

fn log(warn: bool, message: std::fmt::Arguments<'_>) {
    if warn {
        tracing::warn!("{message}");
    } else {
        tracing::info!("{message}");
    }
}

/// The next delivery for a player; never resolves for any other role (the select branch is
/// disabled then anyway).
async fn recv(role: &mut Role) -> Option<Delivery> {
    match role {
        Role::Playing(playing) => playing.subscriber.recv().await,
        _ => std::future::pending().await,
    }
}

/// Sends `frame` through the player's shared fan-out: the bytes every player of the buffer gets,
/// preceded, the first time, by the fan-out's current sequence headers.
fn send_shared(
    session: &mut ServerSession,
    shared: &Mutex<PlayFanout>,
    frame: &tributary_media::Frame,
    headers_sent: &mut bool,
) -> Result<Pushed, RtmpError> {
    let mut fanout = fanout::lock(shared);
    let prepared = fanout.prepare(frame)?;
    if !*headers_sent && !prepared.bytes.is_empty() {
        let headers = fanout.sequence_headers()?;
        session.send_prepared(&fanout, headers)?;
        *headers_sent = true;
    }
    session.send_prepared(&fanout, prepared.bytes)?;
    Ok(prepared.pushed)
}

/// One vectored write of the queue's front pieces. Cancel-safe: when another select branch
/// wins, nothing was written.
async fn write_some(wr: &mut WriteHalf<'_>, out: &OutQueue) -> io::Result<usize> {
    let mut slices = [IoSlice::new(&[]); MAX_SLICES];
    let n = out.slices(&mut slices);
    wr.write_vectored(&slices[..n]).await
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// The monotonic clock, read once per wake-up (tokio's, so paused-time tests control it).
fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The hub subscriber class of RTMP players (`tributary_buffer_drops_total{subscriber=…}`).
const PLAY_CLASS: &str = "rtmp_play";
/// The socket send buffer asked for (Linux doubles it for bookkeeping): at 8 Mb/s about half a
/// second, enough for a 200 ms round trip at that rate.
const SEND_BUFFER: usize = 256 * 1024;
/// Bytes a publisher's connection reads per call.
const READ_CHUNK: usize = 64 * 1024;
/// Bytes any other connection reads per call (a handshake packet is 1537 bytes; a player sends
/// acknowledgements and commands).
const READ_CHUNK_SMALL: usize = 4 * 1024;
/// Unsent bytes at which a connection stops reading its socket and pulling frames: what is
/// behind that waits in the hub (which drops a slow player's frames) or in the peer's socket.
const HIGH_WATER: usize = 512 * 1024;
/// Pieces the out-queue is sized for up front (a GOP's worth of frames and their audio).
const OUT_PIECES: usize = 256;
/// The most pieces one vectored write takes.
const MAX_SLICES: usize = 64;
/// How long a closing connection may take to flush its last transmits.
const LINGER: Duration = Duration::from_secs(2);
/// A publisher's dropped media messages are logged the first time and every this many.
const DROP_LOG_EVERY: u64 = 100;
