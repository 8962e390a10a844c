//! The server side of one RTMP connection: publishers push to it, players pull from it.

use std::fmt;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use tributary_media::{Frame, Output};

use crate::amf0::Amf0;
use crate::chunk::Limits;
use crate::conn::{
    self, AGGREGATE, AUDIO, COMMAND_AMF0, COMMAND_AMF3, CSID_COMMAND, Core, DATA_AMF0, DATA_AMF3,
    MediaIn, MediaOut, STREAM_BEGIN, STREAM_EOF, VIDEO,
};
use crate::flv::{FlvMuxer, FlvTag, Pushed};
use crate::handshake::{HandshakeKind, PACKET, ServerHandshake};
use crate::{Error, FlvError, PlayFanout};

/// Settings of a server session, fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Caps on what an accepted publisher may make us buffer (chunk size, message length,
    /// ...). Default [`Limits::default`]: 16 MiB messages.
    pub limits: Limits,
    /// Caps until a publish is accepted, and for players. Default [`Limits::untrusted`]:
    /// 64 KiB messages, 256 KiB buffered, so a peer that never publishes costs little.
    pub untrusted_limits: Limits,
    /// Our outgoing chunk size. Default 4096 bytes, as nginx-rtmp: fewer chunk headers than
    /// RTMP's 128 with no cost in latency.
    pub chunk_size: u32,
    /// The Window Acknowledgement Size we announce (bytes). Default 2 500 000, as FFmpeg and
    /// nginx-rtmp use.
    pub window_ack_size: u32,
    /// How long the peer may take from its first byte to a `publish` or `play`. Default 10 s
    /// (SPEC §Security "10 s handshake deadline").
    pub intent_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            untrusted_limits: Limits::untrusted(),
            chunk_size: 4096,
            window_ack_size: 2_500_000,
            intent_timeout: Duration::from_secs(10),
        }
    }
}

/// Identifies a publish or play request awaiting [`ServerSession::accept`] or
/// [`ServerSession::reject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(pub u32);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The most bytes kept while a request awaits its answer.
const HELD_MAX: usize = 1024 * 1024;

/// Why a request is refused; decides the status code the peer sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// No such stream (play: `NetStream.Play.StreamNotFound`; publish:
    /// `NetStream.Publish.BadName`).
    NotFound,
    /// The key or signature is wrong (`NetStream.Play.Failed` / `NetStream.Publish.Denied`).
    Denied,
    /// The stream already has a publisher, or a cap is reached (`NetStream.Play.Failed` /
    /// `NetStream.Publish.BadName`).
    Busy,
}

/// What the server session reports to its driver.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ServerEvent {
    /// The handshake finished and the client connected to `app` (accepted automatically; the
    /// decision comes with the publish or play request).
    Connected {
        /// The application name (`live` in `rtmp://host/live/key`).
        app: String,
        /// The URL the client says it connected to, when it says so.
        tc_url: Option<String>,
        /// The handshake flavour (for logs).
        handshake: HandshakeKind,
    },
    /// The client wants to publish; answer with `accept` or `reject`.
    PublishRequested {
        /// The id to answer with.
        request_id: RequestId,
        /// The application name.
        app: String,
        /// The publishing name as sent, query included (`cam1?key=secret`): a secret, so log it
        /// only redacted.
        stream_key: String,
    },
    /// The client wants to play; answer with `accept` or `reject`.
    PlayRequested {
        /// The id to answer with.
        request_id: RequestId,
        /// The application name.
        app: String,
        /// The stream name as sent, query included.
        stream_key: String,
    },
    /// A frame from the accepted publisher.
    Media(Frame),
    /// The publisher's `onMetaData`.
    Metadata(Amf0),
    /// A media message was dropped (malformed, unsupported codec: reported once per track,
    /// keyframe without parameter sets).
    MediaDropped {
        /// Offset of the message.
        offset: u64,
        /// Why.
        error: FlvError,
    },
    /// The publisher ended its stream (`FCUnpublish`, `closeStream` or `deleteStream`).
    PublishFinished,
    /// The player ended its stream.
    PlayFinished,
    /// Send the transmits queued before this event, then close the connection (a refused
    /// request).
    Close,
}

/// The server side of one RTMP connection, sans-IO.
///
/// # Driving contract
///
/// 1. Create it with fresh random bytes when the TCP connection is accepted.
/// 2. On every read: `handle_input(now, bytes)`; on the timer: `handle_timeout(now)`. An `Err`
///    from either is fatal: log it with the peer and close the socket.
/// 3. After every call (including `accept`, `reject`, `send_*`), drain `poll_output()` until
///    `None`: write each `Transmit` in order; act on each event.
/// 4. Re-arm the single timer from `poll_timeout()`.
///
/// Decisions left to the caller: whether a publish or play is allowed
/// ([`ServerEvent::PublishRequested`] / [`ServerEvent::PlayRequested`] → [`accept`] or
/// [`reject`]; input that arrives meanwhile is held, within 1 MiB, and processed after
/// `accept`), what to do when a
/// publisher finishes, and back-pressure for players (the session queues what it is given; the
/// driver drops frames before calling [`send_media`] when the socket is slow).
///
/// [`accept`]: ServerSession::accept
/// [`reject`]: ServerSession::reject
/// [`send_media`]: ServerSession::send_media
#[derive(Debug)]
pub struct ServerSession {
    /// Settings.
    config: ServerConfig,
    /// The handshake, until it is done; then chunks flow.
    handshake: Option<ServerHandshake>,
    /// Chunk layer and output queue.
    core: Core<ServerEvent>,
    /// The application the client connected to.
    app: Option<String>,
    /// Requests raised and not yet answered.
    pending: Vec<Pending>,
    /// The next request id.
    next_request: u32,
    /// The next message stream id handed out by `createStream`.
    next_stream: u32,
    /// The accepted publish: its message stream and the demuxer.
    publishing: Option<(u32, MediaIn)>,
    /// The accepted play: its message stream and the muxer behind `send_media`.
    playing: Option<(u32, FlvMuxer)>,
    /// When the peer must have asked to publish or play; `None` once it has.
    deadline: Option<Instant>,
    /// Set after a fatal error or a refusal: no more input is taken.
    closed: bool,
    /// The handshake flavour the client used (for the `Connected` event).
    kind: Option<HandshakeKind>,
    /// Bytes that arrived while a request awaited its answer: processed after `accept`, so
    /// that media pipelined behind `publish` is neither lost nor taken before the decision.
    held: BytesMut,
    /// The `now` of the last input, the arrival time of held bytes.
    last_now: Instant,
}

#[derive(Debug)]
struct Pending {
    id: RequestId,
    play: bool,
    stream_id: u32,
}

crate::conn::impl_session!(ServerSession, ServerEvent);

impl ServerSession {
    /// A session for a newly accepted connection; `random` seeds the handshake.
    pub fn new(config: ServerConfig, random: [u8; 32], now: Instant) -> Self {
        let deadline = now + config.intent_timeout;
        Self {
            core: Core::new(config.untrusted_limits, (1 + 2 * PACKET) as u64),
            config,
            handshake: Some(ServerHandshake::new(random)),
            app: None,
            pending: Vec::new(),
            next_request: 0,
            next_stream: 1,
            publishing: None,
            playing: None,
            deadline: Some(deadline),
            closed: false,
            kind: None,
            held: BytesMut::new(),
            last_now: now,
        }
    }

    /// Takes bytes read from the peer.
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<(), Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        let result = self.input(now, input);
        if result.is_err() {
            self.closed = true;
        }
        result
    }

    /// Checks the deadline; an `Err` means the peer took too long and must be disconnected.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        match self.deadline {
            Some(deadline) if now >= deadline => {
                self.closed = true;
                self.deadline = None;
                Err(Error::Timeout {
                    after: self.config.intent_timeout,
                    waiting_for: "publish or play",
                })
            }
            _ => Ok(()),
        }
    }

    /// The next output, in order; `None` when there is nothing more until the next call.
    pub fn poll_output(&mut self) -> Option<Output<ServerEvent>> {
        self.core.poll()
    }

    /// When to call `handle_timeout` next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Bytes of the peer's input held: unfinished messages, and input kept while a request
    /// awaits its answer.
    pub fn buffered(&self) -> usize {
        self.core.reader.buffered() + self.held.len()
    }

    /// Grants a publish or play request.
    ///
    /// Publish: `NetStream.Publish.Start` is sent and media events follow. Play:
    /// `NetStream.Play.Reset` and `NetStream.Play.Start` are sent; then feed frames with
    /// [`send_media`](Self::send_media) (or tags with [`send_tag`](Self::send_tag)), starting
    /// at a keyframe.
    pub fn accept(&mut self, request_id: RequestId) -> Result<(), Error> {
        let request = self.take_request(request_id)?;
        let sid = request.stream_id;
        self.core.user_control(STREAM_BEGIN, &sid.to_be_bytes())?;
        if request.play {
            self.core.on_status(
                sid,
                "status",
                "NetStream.Play.Reset",
                "Playing and resetting.",
            )?;
            self.core
                .on_status(sid, "status", "NetStream.Play.Start", "Started playing.")?;
            let access = [
                Amf0::String("|RtmpSampleAccess".into()),
                Amf0::Boolean(true),
                Amf0::Boolean(true),
            ];
            self.core.amf0(DATA_AMF0, conn::CSID_DATA, sid, &access)?;
            self.playing = Some((sid, FlvMuxer::new()));
        } else {
            self.core.on_status(
                sid,
                "status",
                "NetStream.Publish.Start",
                "Start publishing.",
            )?;
            self.publishing = Some((sid, MediaIn::default()));
            // A publisher the caller accepted may send keyframes of megabytes.
            self.core.reader.set_limits(self.config.limits);
        }
        if !self.held.is_empty() {
            let held = std::mem::take(&mut self.held);
            let result = self.input(self.last_now, &held);
            if result.is_err() {
                self.closed = true;
            }
            return result;
        }
        Ok(())
    }

    /// Refuses a publish or play request: the peer gets the status `reason` maps to, then
    /// [`ServerEvent::Close`] follows.
    pub fn reject(&mut self, request_id: RequestId, reason: RejectReason) -> Result<(), Error> {
        let request = self.take_request(request_id)?;
        let (code, description) = match (request.play, reason) {
            (true, RejectReason::NotFound) => ("NetStream.Play.StreamNotFound", "No such stream."),
            (true, _) => ("NetStream.Play.Failed", "Playback refused."),
            (false, RejectReason::Denied) => ("NetStream.Publish.Denied", "Publishing refused."),
            (false, RejectReason::NotFound) => ("NetStream.Publish.BadName", "No such stream."),
            (false, _) => ("NetStream.Publish.BadName", "Stream already publishing."),
        };
        self.core
            .on_status(request.stream_id, "error", code, description)?;
        self.closed = true;
        self.deadline = None;
        self.held = BytesMut::new();
        self.core.event(ServerEvent::Close);
        Ok(())
    }

    /// Sends one frame to the accepted player (sequence headers are generated as needed).
    pub fn send_media(&mut self, frame: &Frame) -> Result<Pushed, Error> {
        let Some((sid, muxer)) = self.playing.as_mut() else {
            return Err(Error::NotStreaming("playing"));
        };
        let sid = *sid;
        let pushed = muxer.push(frame).map_err(Error::Mux)?;
        while let Some(tag) = muxer.pull() {
            self.core.tag(sid, &tag)?;
        }
        Ok(pushed)
    }

    /// Sends one prepared FLV tag to the accepted player: for a driver that muxes once with a
    /// shared [`FlvMuxer`] and fans tags out (it must send [`FlvMuxer::sequence_headers`]
    /// first).
    pub fn send_tag(&mut self, tag: &FlvTag) -> Result<(), Error> {
        let Some((sid, _)) = self.playing.as_ref() else {
            return Err(Error::NotStreaming("playing"));
        };
        let sid = *sid;
        self.core.tag(sid, tag)
    }

    /// The message stream id and chunk size of the accepted play: a [`PlayFanout`] made with
    /// these prepares bytes [`send_prepared`](Self::send_prepared) takes. `None` before a play
    /// is accepted.
    pub fn play_format(&self) -> Option<(u32, u32)> {
        let (sid, _) = self.playing.as_ref()?;
        Some((*sid, self.core.writer.chunk_size))
    }

    /// Sends media prepared by a [`PlayFanout`] for this player's
    /// [`play_format`](Self::play_format): queued as it is, no copy.
    ///
    /// # Errors
    /// No play was accepted, or the fan-out was made for another stream id or chunk size.
    pub fn send_prepared(&mut self, fanout: &PlayFanout, bytes: Bytes) -> Result<(), Error> {
        let format = self.play_format().ok_or(Error::NotStreaming("playing"))?;
        if format != (fanout.stream_id(), fanout.chunk_size()) {
            return Err(Error::FanoutMismatch {
                session: format,
                fanout: (fanout.stream_id(), fanout.chunk_size()),
            });
        }
        self.core.transmit(bytes);
        Ok(())
    }

    /// Sends `onMetaData` (an object or ECMA array of properties) to the accepted player.
    pub fn send_metadata(&mut self, metadata: Amf0) -> Result<(), Error> {
        let Some((sid, _)) = self.playing.as_ref() else {
            return Err(Error::NotStreaming("playing"));
        };
        let sid = *sid;
        self.core.amf0(
            DATA_AMF0,
            conn::CSID_DATA,
            sid,
            &[Amf0::String("onMetaData".into()), metadata],
        )
    }

    /// Tells the player the stream ended (`NetStream.Play.UnpublishNotify`, Stream EOF); the
    /// driver closes the connection after sending it.
    pub fn finish_play(&mut self) -> Result<(), Error> {
        let Some((sid, _)) = self.playing.take() else {
            return Err(Error::NotStreaming("playing"));
        };
        self.core.on_status(
            sid,
            "status",
            "NetStream.Play.UnpublishNotify",
            "The stream ended.",
        )?;
        self.core.user_control(STREAM_EOF, &sid.to_be_bytes())
    }

    fn take_request(&mut self, id: RequestId) -> Result<Pending, Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        let index = self
            .pending
            .iter()
            .position(|p| p.id == id)
            .ok_or(Error::UnknownRequest(id))?;
        Ok(self.pending.swap_remove(index))
    }

    fn input(&mut self, now: Instant, mut input: &[u8]) -> Result<(), Error> {
        self.last_now = now;
        if !self.pending.is_empty() {
            return self.hold(input);
        }
        if let Some(handshake) = self.handshake.as_mut() {
            let used = handshake.read(input, self.core.out())?;
            input = &input[used..];
            if !handshake.is_done() {
                return Ok(());
            }
            self.kind = handshake.kind();
            self.handshake = None;
        }
        while let Some(message) = self.core.read(&mut input)? {
            let Some(message) = self.core.common(message)? else {
                continue;
            };
            match message.type_id {
                AUDIO | VIDEO | AGGREGATE => {
                    let Some((sid, media)) = self.publishing.as_mut() else {
                        continue;
                    };
                    if message.stream_id != *sid {
                        continue;
                    }
                    let core = &mut self.core;
                    media.push(now, message, |out| {
                        core.event(match out {
                            MediaOut::Frame(frame) => ServerEvent::Media(frame),
                            MediaOut::Dropped { offset, error } => {
                                ServerEvent::MediaDropped { offset, error }
                            }
                        });
                    })?;
                }
                COMMAND_AMF0 | COMMAND_AMF3 => {
                    let command = conn::parse_command(&message)?;
                    self.command(message.offset, message.stream_id, command)?;
                    if !self.pending.is_empty() {
                        return self.hold(input);
                    }
                }
                DATA_AMF0 | DATA_AMF3 => {
                    if self.publishing.is_none() {
                        continue;
                    }
                    if let Some(metadata) = conn::metadata(conn::parse_data(&message)?) {
                        self.core.event(ServerEvent::Metadata(metadata));
                    }
                }
                // User Control events other than ping (Set Buffer Length), shared objects: nothing
                // to do.
                _ => {}
            }
        }
        Ok(())
    }

    /// Keeps bytes until the pending request is answered (capped like unfinished messages).
    fn hold(&mut self, input: &[u8]) -> Result<(), Error> {
        // Encoders wait for the answer before they send media; what comes meanwhile is a few
        // commands, or the first frames of one that does not wait.
        let max = HELD_MAX;
        if self.held.len() + input.len() > max {
            return Err(Error::Buffered {
                offset: self.core.reader.offset(),
                value: self.held.len() + input.len(),
                max,
            });
        }
        self.held.extend_from_slice(input);
        Ok(())
    }

    fn command(
        &mut self,
        offset: u64,
        stream_id: u32,
        command: conn::Command,
    ) -> Result<(), Error> {
        let txn = command.transaction;
        let bad = |name: &str, reason| Error::Command {
            offset,
            name: name.to_owned(),
            reason,
        };
        match command.name.as_str() {
            "connect" => {
                let app = command
                    .object
                    .property("app")
                    .and_then(Amf0::as_str)
                    .ok_or_else(|| bad("connect", "no app name"))?;
                let app = app.trim_end_matches('/').to_owned();
                let tc_url = command
                    .object
                    .property("tcUrl")
                    .and_then(Amf0::as_str)
                    .map(str::to_owned);
                let encoding = command
                    .object
                    .property("objectEncoding")
                    .and_then(Amf0::as_number)
                    .unwrap_or(0.0);
                self.core.window_ack_size(self.config.window_ack_size)?;
                let mut bandwidth = self.config.window_ack_size.to_be_bytes().to_vec();
                bandwidth.push(2); // dynamic
                self.core.control(conn::SET_PEER_BANDWIDTH, &bandwidth)?;
                self.core.set_chunk_size(self.config.chunk_size)?;
                let properties = Amf0::Object(vec![
                    ("fmsVer".into(), Amf0::String("FMS/3,0,1,123".into())),
                    ("capabilities".into(), Amf0::Number(31.0)),
                ]);
                let info = Amf0::Object(vec![
                    ("level".into(), Amf0::String("status".into())),
                    (
                        "code".into(),
                        Amf0::String("NetConnection.Connect.Success".into()),
                    ),
                    (
                        "description".into(),
                        Amf0::String("Connection succeeded.".into()),
                    ),
                    ("objectEncoding".into(), Amf0::Number(encoding)),
                ]);
                self.result(txn, properties, Some(info))?;
                self.app = Some(app.clone());
                self.core.event(ServerEvent::Connected {
                    app,
                    tc_url,
                    handshake: self.kind.unwrap_or(HandshakeKind::Simple),
                });
            }
            "createStream" => {
                let sid = self.next_stream;
                self.next_stream = self.next_stream.saturating_add(1);
                self.result(txn, Amf0::Null, Some(Amf0::Number(f64::from(sid))))?;
            }
            "releaseStream" | "FCPublish" | "getStreamLength" | "_checkbw" if txn != 0.0 => {
                self.result(txn, Amf0::Null, Some(Amf0::Undefined))?;
            }
            "publish" | "play" => {
                let play = command.name == "play";
                let Some(app) = self.app.clone() else {
                    return Err(bad(&command.name, "before connect"));
                };
                let stream_key = command
                    .args
                    .first()
                    .and_then(Amf0::as_str)
                    .ok_or_else(|| bad(&command.name, "no stream name"))?
                    .to_owned();
                if self.publishing.is_some() || self.playing.is_some() || !self.pending.is_empty() {
                    return Err(bad(
                        &command.name,
                        "a stream is already open on this connection",
                    ));
                }
                let request_id = RequestId(self.next_request);
                self.next_request += 1;
                self.pending.push(Pending {
                    id: request_id,
                    play,
                    stream_id,
                });
                self.deadline = None;
                self.core.event(if play {
                    ServerEvent::PlayRequested {
                        request_id,
                        app,
                        stream_key,
                    }
                } else {
                    ServerEvent::PublishRequested {
                        request_id,
                        app,
                        stream_key,
                    }
                });
            }
            "FCUnpublish" | "closeStream" | "deleteStream" => {
                if self.publishing.take().is_some() {
                    self.core.event(ServerEvent::PublishFinished);
                } else if self.playing.take().is_some() {
                    self.core.event(ServerEvent::PlayFinished);
                }
            }
            // receiveAudio, receiveVideo, pause, seek, FCSubscribe, ...: not for live streams.
            _ => {}
        }
        Ok(())
    }

    fn result(&mut self, txn: f64, object: Amf0, info: Option<Amf0>) -> Result<(), Error> {
        let mut values = vec![Amf0::String("_result".into()), Amf0::Number(txn), object];
        values.extend(info);
        self.core.amf0(COMMAND_AMF0, CSID_COMMAND, 0, &values)
    }
}
