//! One RTMP connection: a [`ServerSession`] run by the `net` driver, and the handler that
//! turns it into a publish or play pump once the peer has stated its intent.
//!
//! The driver owns the socket, the outgoing queue, the timer and the stop signal; this module
//! holds the policy: ask the [`Router`](crate::Router) when the peer asks to publish or play,
//! write a publisher's frames to its intake port, feed a player from its hub subscriber through
//! the buffer's shared fan-out, and say why the connection ended.

use std::any::Any;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tributary_hub::{Delivery, HubError, Port, SubscribeFrom, Subscriber, Wake};
use tributary_media::{Codec, Frame, MediaKind, StreamCode};
use tributary_net::{Cx, End, Handler, Settings};
use tributary_rtmp::{
    Error as RtmpError, PlayFanout, Pushed, RejectReason, RequestId, ServerConfig, ServerEvent,
    ServerSession, SkipReason,
};

use super::fanout;
use super::{Counters, Held, Shared};
use crate::limit::PendingSlot;
use crate::name::Target;
use crate::{
    ByteMeter, PlayRequest, Preparation, Protocol, PublishEnd, PublishGuard, PublishRequest,
    Refusal,
};

/// Serves one accepted connection to its end; logs why it ended.
pub(super) async fn serve(
    socket: TcpStream,
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
    let config = ServerConfig {
        intent_timeout: shared.config.handshake_timeout,
        ..ServerConfig::default()
    };
    let mut session = ServerSession::new(config, rand::random(), tributary_net::clock());
    let stop = shared.cancel.child_token();
    let mut conn = Conn {
        role: Role::Waiting(slot),
        stop: stop.clone(),
        peer,
        shared,
    };
    let settings = Settings {
        backlog: Some(Duration::from_secs(conn.shared.config.play_backlog_sec)),
        input_budget: Some(Arc::clone(&conn.shared.input_budget)),
        ..Settings::default()
    };
    let end = tributary_net::run(socket, &mut session, &mut conn, settings, &stop).await;
    conn.end(end);
}

/// The handler of one connection.
struct Conn {
    /// What the peer turned out to be.
    role: Role,
    /// This connection's stop signal (a child of the listener's): a player's is handed to the
    /// router, which fires it to disconnect the player (its output turned off, a kick).
    stop: CancellationToken,
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
    /// A publish the router must prepare for before it answers (auto-publish starting the
    /// stream): awaited through [`Handler::recv`], so the driver keeps serving the socket.
    Preparing(Preparing),
    /// A granted publisher.
    Publishing(Publishing),
    /// A granted player.
    Playing(Playing),
    /// A refused request, or a publish or play that ended: nothing more to do.
    Done,
}

struct Preparing {
    /// The `publish` command to answer.
    request_id: RequestId,
    /// The request, asked of the router again once prepared.
    request: PublishRequest,
    /// The router's work.
    work: Preparation,
}

/// What the driver pulls for this connection: a hub delivery for a player, or the end of a
/// publish's preparation.
enum Item {
    Hub(Delivery),
    Prepared(Result<(), Refusal>),
}

struct Publishing {
    /// The intake port its frames go to.
    port: Port,
    /// The engine's side of the grant: told why the publisher left.
    guard: Box<dyn PublishGuard>,
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
    /// The bytes handed to the player, for its session record.
    bytes: ByteMeter,
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
    /// Whether video has gone out: from then on audio waits for the next video frame
    /// (`play_merge`), one write for both.
    video_flows: bool,
    /// The longest audio waits for video (`play_merge`).
    audio_wait: Duration,
}

/// Why the handler ended a connection.
#[derive(Debug, thiserror::Error)]
enum Reason {
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
    #[error("the stream no longer takes this publisher: {0}")]
    Port(HubError),
}

/// Why a connection ended, as the driver says.
type Ended = End<Reason, RtmpError>;

impl Handler<ServerSession> for Conn {
    type Item = Item;
    type Reason = Reason;

    fn event(
        &mut self,
        cx: &mut Cx<'_, ServerSession, Reason>,
        event: ServerEvent,
    ) -> Result<(), Reason> {
        match event {
            ServerEvent::Media(frame) => {
                // `frame.arrival` is already the `now` of the read that completed it.
                if let Role::Publishing(publishing) = &self.role {
                    publishing.port.write(frame).map_err(Reason::Port)?;
                }
            }
            ServerEvent::PublishRequested {
                request_id,
                app,
                stream_key,
            } => self.publish(cx, request_id, requested(&app, &stream_key))?,
            ServerEvent::PlayRequested {
                request_id,
                app,
                stream_key,
            } => self.play(cx, request_id, requested(&app, &stream_key))?,
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
            ServerEvent::PublishFinished => cx.close(Reason::PublishFinished),
            ServerEvent::PlayFinished => cx.close(Reason::PlayFinished),
            // A refusal already closed; the session sends nothing after this.
            ServerEvent::Close => {}
            // Metadata: the hub carries frames only; outputs regenerate what they need.
            _ => {}
        }
        Ok(())
    }

    fn receiving(&self) -> bool {
        matches!(self.role, Role::Playing(_) | Role::Preparing(_))
    }

    async fn recv(&mut self) -> Option<Item> {
        match &mut self.role {
            Role::Playing(playing) => playing.subscriber.recv().await.map(Item::Hub),
            // Cancel-safe: the work stays in the role and resumes at the next call.
            Role::Preparing(preparing) => Some(Item::Prepared(preparing.work.as_mut().await)),
            _ => std::future::pending().await,
        }
    }

    fn try_recv(&mut self) -> Poll<Option<Item>> {
        let Role::Playing(playing) = &mut self.role else {
            return Poll::Pending;
        };
        playing.subscriber.try_next().map(|d| d.map(Item::Hub))
    }

    fn item(
        &mut self,
        cx: &mut Cx<'_, ServerSession, Reason>,
        item: Option<Item>,
    ) -> Result<(), Reason> {
        let delivery = match item {
            Some(Item::Prepared(prepared)) => return self.prepared(cx, prepared),
            Some(Item::Hub(delivery)) => Some(delivery),
            None => None,
        };
        let Role::Playing(playing) = &mut self.role else {
            return Ok(());
        };
        match delivery {
            None => {
                cx.session().finish_play()?;
                self.role = Role::Done;
                cx.close(Reason::StreamEnded);
            }
            Some(Delivery::Lagged { dropped }) => {
                tracing::debug!(dropped, "player fell behind; resuming at a keyframe");
            }
            Some(Delivery::Frame(frame)) => {
                cx.stamp(frame.arrival.max(playing.joined));
                if playing.video_flows && frame.codec.kind() != MediaKind::Video {
                    cx.defer();
                }
                playing.send(cx.session(), &frame)?;
            }
        }
        Ok(())
    }

    fn stop(&mut self, cx: &mut Cx<'_, ServerSession, Reason>) {
        // A player told why its play ends sees a clean end of stream, not a reset.
        if matches!(self.role, Role::Playing(_)) && cx.session().finish_play().is_ok() {
            self.role = Role::Done;
        }
    }
}

impl Conn {
    fn publish(
        &mut self,
        cx: &mut Cx<'_, ServerSession, Reason>,
        request_id: RequestId,
        target: Target,
    ) -> Result<(), Reason> {
        let request = PublishRequest {
            key: target.param("key"),
            slot: target.param("slot"),
            path: target.path,
            peer: self.peer,
            protocol: Protocol::Rtmp,
        };
        if let Some(work) = self.shared.router.prepare_publish(&request) {
            tracing::debug!("publish: waiting for the router to prepare the stream");
            self.role = Role::Preparing(Preparing {
                request_id,
                request,
                work,
            });
            return Ok(());
        }
        self.admit_publish(cx, request_id, request)
    }

    /// The router's preparation of a publish ended: refuse, or ask for the grant as usual.
    fn prepared(
        &mut self,
        cx: &mut Cx<'_, ServerSession, Reason>,
        prepared: Result<(), Refusal>,
    ) -> Result<(), Reason> {
        let Role::Preparing(Preparing {
            request_id,
            request,
            ..
        }) = std::mem::replace(&mut self.role, Role::Done)
        else {
            return Ok(());
        };
        match prepared {
            Ok(()) => self.admit_publish(cx, request_id, request),
            Err(refusal) => self.refuse(cx, request_id, "publish", refusal),
        }
    }

    /// Asks the router for a publish grant and accepts the publisher, or refuses it.
    fn admit_publish(
        &mut self,
        cx: &mut Cx<'_, ServerSession, Reason>,
        request_id: RequestId,
        request: PublishRequest,
    ) -> Result<(), Reason> {
        let grant = match self.shared.router.publish(request) {
            Ok(grant) => grant,
            Err(refusal) => return self.refuse(cx, request_id, "publish", refusal),
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
            guard: grant.guard,
            _count: Held::new(&self.shared.counters, |c| &c.publishers),
            dropped: 0,
        });
        let config = &self.shared.config;
        let settings = cx.settings();
        settings.read_size = READ_CHUNK;
        settings.read_idle = Some(config.publish_idle_timeout);
        settings.read_hold = config.publish_merge;
        cx.session().accept(request_id)?;
        tracing::info!("publishing");
        Ok(())
    }

    fn play(
        &mut self,
        cx: &mut Cx<'_, ServerSession, Reason>,
        request_id: RequestId,
        target: Target,
    ) -> Result<(), Reason> {
        let request = PlayRequest {
            path: target.path,
            query: target.query,
            peer: self.peer,
            protocol: Protocol::Rtmp,
            stop: self.stop.clone(),
        };
        let grant = match self.shared.router.play(request) {
            Ok(grant) => grant,
            Err(refusal) => return self.refuse(cx, request_id, "play", refusal),
        };
        let code: StreamCode = grant.code;
        tracing::Span::current().record("stream", code.as_str());
        let subscribed =
            grant
                .hub
                .subscribe(&grant.buffer, SubscribeFrom::LastKeyframe, PLAY_CLASS);
        let subscriber = match subscribed {
            Ok(subscriber) => subscriber,
            Err(e) => {
                let refusal = Refusal::NotFound(format!("stream {code} is not running: {e}"));
                return self.refuse(cx, request_id, "play", refusal);
            }
        };
        let instance = subscriber.instance();
        cx.session().accept(request_id)?;
        // An accepted play always has a format; `NotStreaming` would be a session bug.
        let format = cx
            .session()
            .play_format()
            .ok_or(RtmpError::NotStreaming("playing"))?;
        let fanout = self.shared.fanouts.get(instance, format);
        self.role = Role::Playing(Playing {
            subscriber,
            _guard: grant.guard,
            bytes: grant.bytes,
            _count: Held::new(&self.shared.counters, |c| &c.players),
            joined: cx.now(),
            omitted: Vec::new(),
            fanout,
            headers_sent: false,
            video_flows: false,
            audio_wait: self.shared.config.play_merge,
        });
        let settings = cx.settings();
        settings.write_hold = self.shared.config.play_merge;
        settings.write_idle = PLAY_IDLE;
        tracing::info!("playing");
        Ok(())
    }

    /// Answers a refused request; the connection closes once the status is flushed.
    fn refuse(
        &mut self,
        cx: &mut Cx<'_, ServerSession, Reason>,
        request_id: RequestId,
        what: &'static str,
        refusal: Refusal,
    ) -> Result<(), Reason> {
        Counters::bump(&self.shared.counters.rejected);
        let reason = match refusal {
            Refusal::NotFound(_) => RejectReason::NotFound,
            Refusal::Denied(_) => RejectReason::Denied,
            Refusal::Busy(_) => RejectReason::Busy,
        };
        self.role = Role::Done;
        cx.session().reject(request_id, reason)?;
        cx.close(Reason::Refused { what, refusal });
        Ok(())
    }

    /// Logs why the connection ended, tells the engine why a publisher left, lets the role's
    /// guards go (the engine frees the slot), then counts the end: a total moves only after
    /// the gauges have.
    fn end(self, end: Ended) {
        let warn = match &end {
            End::Handler(Reason::Protocol(_) | Reason::Port(_))
            | End::Session(_)
            | End::ReadIdle(_)
            | End::Backlog(_)
            | End::WriteStalled(_)
            | End::InputBudget(_) => true,
            End::Io(e) => !matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
            ),
            // Operators want to see refused encoders (wrong key, unknown code); refused
            // players are routine.
            End::Handler(Reason::Refused { what, .. }) => *what == "publish",
            End::PeerClosed
            | End::Stopped
            | End::Handler(Reason::PublishFinished | Reason::PlayFinished | Reason::StreamEnded) => {
                false
            }
        };
        let Self { role, shared, .. } = self;
        match role {
            Role::Publishing(publishing) => {
                log(warn, format_args!("publisher closed: {end}"));
                let Publishing { guard, .. } = publishing;
                guard.ended(publish_end(&end));
            }
            Role::Playing(playing) => {
                let dropped = playing.subscriber.dropped();
                log(
                    warn,
                    format_args!("player disconnected: {end} ({dropped} frames dropped)"),
                );
            }
            Role::Waiting(_) | Role::Preparing(_) | Role::Done => {
                log(warn, format_args!("connection closed: {end}"));
            }
        }
        let counters = &shared.counters;
        let total = match end {
            End::Handler(Reason::Protocol(_))
            | End::Session(_)
            | End::ReadIdle(_)
            | End::InputBudget(_) => Some(&counters.protocol_errors),
            End::Backlog(_) | End::WriteStalled(_) => Some(&counters.slow_players),
            _ => None,
        };
        if let Some(total) = total {
            Counters::bump(total);
        }
    }
}

impl Playing {
    /// Sends `frame` through the shared fan-out: the bytes every player of the buffer gets,
    /// preceded, the first time, by the fan-out's current sequence headers.
    fn send(&mut self, session: &mut ServerSession, frame: &Frame) -> Result<(), Reason> {
        let sent = {
            let mut fanout = fanout::lock(&self.fanout);
            fanout.prepare(frame).and_then(|prepared| {
                if !self.headers_sent && !prepared.bytes.is_empty() {
                    let headers = fanout.sequence_headers()?;
                    self.bytes.add(headers.len());
                    session.send_prepared(&fanout, headers)?;
                    self.headers_sent = true;
                }
                self.bytes.add(prepared.bytes.len());
                session.send_prepared(&fanout, prepared.bytes)?;
                Ok(prepared.pushed)
            })
        };
        match sent {
            Ok(Pushed::Skipped(SkipReason::UnsupportedCodec(codec))) => {
                if !self.omitted.contains(&codec) {
                    self.omitted.push(codec);
                    tracing::warn!(%codec, "track omitted: RTMP cannot carry {codec}");
                }
            }
            Ok(Pushed::Queued) => {
                if !self.video_flows && frame.codec.kind() == MediaKind::Video {
                    self.video_flows = true;
                    // From now on the audio between video frames is read with the next one:
                    // one wake-up per video frame (the write waits for it anyway).
                    if !self.audio_wait.is_zero() {
                        self.subscriber.set_wake(Wake::Video {
                            within: self.audio_wait,
                        });
                    }
                }
            }
            Ok(Pushed::Skipped(_)) => {}
            // One frame that cannot be muxed is skipped, not fatal.
            Err(e @ (RtmpError::Mux(_) | RtmpError::OutgoingTooLarge { .. })) => {
                tracing::debug!("frame skipped: {e}");
            }
            Err(e) => return Err(Reason::Protocol(e)),
        }
        Ok(())
    }
}

/// The target a publish or play request names, recorded in the connection's span.
fn requested(app: &str, stream_key: &str) -> Target {
    let target = Target::rtmp(app, stream_key);
    tracing::Span::current().record("path", target.path.as_str());
    target
}

/// What the engine is told about a publisher that left.
fn publish_end(end: &Ended) -> PublishEnd {
    match end {
        End::PeerClosed => PublishEnd::Eof,
        End::Handler(Reason::PublishFinished) => PublishEnd::Unpublished,
        End::Io(e) => PublishEnd::Io(e.kind()),
        End::ReadIdle(after) => PublishEnd::Idle(*after),
        End::Stopped => PublishEnd::ListenerStopped,
        End::Handler(Reason::Port(_)) => PublishEnd::StreamGone,
        End::Session(e) | End::Handler(Reason::Protocol(e)) => PublishEnd::Protocol(e.to_string()),
        End::Backlog(_) | End::WriteStalled(_) => PublishEnd::NotReading,
        End::InputBudget(_)
        | End::Handler(Reason::Refused { .. } | Reason::PlayFinished | Reason::StreamEnded) => {
            PublishEnd::Protocol(end.to_string())
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

/// The hub subscriber class of RTMP players (`tributary_buffer_drops_total{subscriber=…}`).
const PLAY_CLASS: &str = "rtmp_play";
/// The socket send buffer asked for (Linux doubles it for bookkeeping): at 8 Mb/s about half a
/// second, enough for a 200 ms round trip at that rate.
const SEND_BUFFER: usize = 256 * 1024;
/// Bytes a publisher's connection reads per call.
const READ_CHUNK: usize = 64 * 1024;
/// How long after a write a player's connection counts as idle, so that its audio goes out
/// at once instead of waiting for the next video frame: longer than the video frame interval
/// at 25 fps and more, so the audio of a normal stream rides with the next video frame (one
/// write per video frame), while a low frame rate or a pause of the video leaves audio
/// unbatched. (Half a frame interval instead, 15 ms, sent about a third of a player's audio
/// alone: audio as early as through nginx-rtmp, for about a quarter more CPU; see
/// bench/RESULTS.md.)
const PLAY_IDLE: Duration = Duration::from_millis(40);
/// A publisher's dropped media messages are logged the first time and every this many.
const DROP_LOG_EVERY: u64 = 100;
