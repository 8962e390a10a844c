//! The client side of one RTMP connection: pull (play) from a server or push (publish) to one.

use std::time::{Duration, Instant};

use tributary_media::{Frame, Output};

use crate::amf0::Amf0;
use crate::chunk::Limits;
use crate::conn::{
    self, AGGREGATE, AUDIO, COMMAND_AMF0, COMMAND_AMF3, CSID_COMMAND, CSID_STREAM, Core, DATA_AMF0,
    DATA_AMF3, MediaIn, MediaOut, SET_BUFFER_LENGTH, VIDEO,
};
use crate::flv::{FlvMuxer, Pushed};
use crate::handshake::{ClientHandshake, HandshakeKind, PACKET};
use crate::{Error, FlvError};

/// What the client connects for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientIntent {
    /// Push media to the server (`publish`, type `live`).
    Publish,
    /// Receive media from the server (`play`).
    Play,
}

/// Settings of a client session, fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Publish or play.
    pub intent: ClientIntent,
    /// The application (`live` in `rtmp://host/live/key`).
    pub app: String,
    /// The URL sent as `tcUrl` (`rtmp://host:1935/live`).
    pub tc_url: String,
    /// The stream name to publish or play, query included (`key?token=...`).
    pub stream_key: String,
    /// Our outgoing chunk size. Default 4096 bytes (as FFmpeg 5 and nginx-rtmp).
    pub chunk_size: u32,
    /// Caps on what the server may make us buffer.
    pub limits: Limits,
    /// How long from creation until `NetStream.Publish.Start` / `NetStream.Play.Start`. Default
    /// 10 s (SPEC §Ingest "connect + handshake 10 s").
    pub timeout: Duration,
}

impl ClientConfig {
    /// A configuration from an `rtmp://` or `rtmps://` URL: the first path segment is the
    /// application, the rest (query included) the stream name, as FFmpeg splits them.
    ///
    /// ```
    /// use tributary_rtmp::{ClientConfig, ClientIntent};
    /// let c = ClientConfig::from_url("rtmp://example.com:1935/live/cam1?key=k", ClientIntent::Play).unwrap();
    /// assert_eq!((c.app.as_str(), c.stream_key.as_str()), ("live", "cam1?key=k"));
    /// assert_eq!(c.tc_url, "rtmp://example.com:1935/live");
    /// ```
    pub fn from_url(url: &str, intent: ClientIntent) -> Option<Self> {
        let rest = url
            .strip_prefix("rtmp://")
            .or_else(|| url.strip_prefix("rtmps://"))?;
        let scheme = &url[..url.len() - rest.len()];
        let (host, path) = rest.split_once('/')?;
        let (app, stream_key) = path.split_once('/')?;
        if host.is_empty() || app.is_empty() || stream_key.is_empty() {
            return None;
        }
        Some(Self {
            intent,
            app: app.to_owned(),
            tc_url: format!("{scheme}{host}/{app}"),
            stream_key: stream_key.to_owned(),
            chunk_size: 4096,
            limits: Limits::default(),
            timeout: Duration::from_secs(10),
        })
    }
}

/// Where an `rtmp://` or `rtmps://` URL points: the host and port to dial, and whether the
/// connection runs TLS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The host as written (a name, an IPv4 address, or an IPv6 address without brackets).
    pub host: String,
    /// The port: as written, else 1935 (`rtmp`) or 443 (`rtmps`, as FFmpeg).
    pub port: u16,
    /// Whether the scheme is `rtmps`.
    pub tls: bool,
}

impl Endpoint {
    /// Parses `rtmp[s]://[userinfo@]host[:port]/...`; `None` without a host, with a bad port or
    /// another scheme.
    ///
    /// ```
    /// use tributary_rtmp::Endpoint;
    /// let e = Endpoint::from_url("rtmps://user:pw@cdn.example.org/app/k?x=1").unwrap();
    /// assert_eq!((e.host.as_str(), e.port, e.tls), ("cdn.example.org", 443, true));
    /// ```
    pub fn from_url(url: &str) -> Option<Self> {
        let url = url.trim();
        let (tls, rest) = if let Some(rest) = url.strip_prefix("rtmps://") {
            (true, rest)
        } else {
            (false, url.strip_prefix("rtmp://")?)
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return None;
        }
        let port = match port {
            Some(port) => port.parse().ok()?,
            None if tls => 443,
            None => 1935,
        };
        Some(Self {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

/// What the client session reports to its driver.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The server accepted `connect`.
    Connected {
        /// The handshake flavour the server answered in (for logs).
        handshake: HandshakeKind,
    },
    /// `NetStream.Publish.Start`: send media with [`ClientSession::send_media`].
    PublishStarted,
    /// `NetStream.Play.Start`: media events follow.
    PlayStarted,
    /// A frame from the server (play).
    Media(Frame),
    /// The server's `onMetaData` (play).
    Metadata(Amf0),
    /// A media message was dropped (see [`ServerEvent::MediaDropped`](crate::ServerEvent)).
    MediaDropped {
        /// Offset of the message.
        offset: u64,
        /// Why.
        error: FlvError,
    },
    /// The server ended the stream (`NetStream.Play.Stop`, `...Complete`, `...UnpublishNotify`).
    StreamEnded {
        /// The status code.
        code: String,
    },
}

/// The client side of one RTMP connection, sans-IO.
///
/// # Driving contract
///
/// 1. Open the TCP (or TLS) connection, then create the session: C0 C1 are queued at once.
/// 2. Drain `poll_output()` and write the transmits; from then on, as for
///    [`ServerSession`](crate::ServerSession): `handle_input` on every read, `handle_timeout`
///    on the timer, drain outputs after every call, re-arm the timer from `poll_timeout()`.
///    An `Err` is fatal (a refusal by the server is [`Error::Refused`]).
/// 3. Publish: after [`ClientEvent::PublishStarted`], call [`send_media`] from a keyframe on.
///    Play: frames arrive as [`ClientEvent::Media`].
/// 4. To stop cleanly, call [`close`], drain, then close the socket.
///
/// [`send_media`]: ClientSession::send_media
/// [`close`]: ClientSession::close
#[derive(Debug)]
pub struct ClientSession {
    /// Settings.
    config: ClientConfig,
    /// The handshake, until S0 S1 S2 are read.
    handshake: Option<ClientHandshake>,
    /// The handshake flavour the server used.
    kind: Option<HandshakeKind>,
    /// Chunk layer and output queue.
    core: Core<ClientEvent>,
    /// Commands sent and awaiting `_result`/`_error`, by transaction id.
    awaiting: Vec<(f64, &'static str)>,
    /// The next transaction id.
    next_transaction: f64,
    /// The message stream `createStream` gave us (0 before).
    stream_id: u32,
    /// Whether `Publish.Start` / `Play.Start` arrived.
    streaming: bool,
    /// Maps frames to tags (publish).
    muxer: FlvMuxer,
    /// Maps tags to frames (play).
    media: MediaIn,
    /// When the stream must have started; `None` once it has.
    deadline: Option<Instant>,
    /// Set after a fatal error or `close`.
    closed: bool,
}

crate::conn::impl_session!(ClientSession, ClientEvent);

impl ClientSession {
    /// A session for a freshly opened connection; `random` seeds the handshake.
    pub fn new(config: ClientConfig, random: [u8; 32], now: Instant) -> Self {
        let mut core = Core::new(config.limits, (1 + 2 * PACKET) as u64);
        let handshake = ClientHandshake::new(random, core.out());
        Self {
            deadline: Some(now + config.timeout),
            config,
            handshake: Some(handshake),
            kind: None,
            core,
            awaiting: Vec::new(),
            next_transaction: 1.0,
            stream_id: 0,
            streaming: false,
            muxer: FlvMuxer::new(),
            media: MediaIn::default(),
            closed: false,
        }
    }

    /// Takes bytes read from the server.
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

    /// Checks the deadline; an `Err` means the server took too long.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        match self.deadline {
            Some(deadline) if now >= deadline => {
                self.closed = true;
                self.deadline = None;
                Err(Error::Timeout {
                    after: self.config.timeout,
                    waiting_for: match self.config.intent {
                        ClientIntent::Publish => "NetStream.Publish.Start",
                        ClientIntent::Play => "NetStream.Play.Start",
                    },
                })
            }
            _ => Ok(()),
        }
    }

    /// The next output, in order.
    pub fn poll_output(&mut self) -> Option<Output<ClientEvent>> {
        self.core.poll()
    }

    /// When to call `handle_timeout` next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Bytes of the peer's input held in unfinished messages.
    pub fn buffered(&self) -> usize {
        self.core.reader.buffered()
    }

    /// Publishes one frame (sequence headers are generated as needed; start at a keyframe).
    pub fn send_media(&mut self, frame: &Frame) -> Result<Pushed, Error> {
        if self.closed || !self.streaming || self.config.intent != ClientIntent::Publish {
            return Err(Error::NotStreaming("publishing"));
        }
        let pushed = self.muxer.push(frame).map_err(Error::Mux)?;
        while let Some(tag) = self.muxer.pull() {
            self.core.tag(self.stream_id, &tag)?;
        }
        Ok(pushed)
    }

    /// Publishes `onMetaData` (`@setDataFrame`), e.g. width, height, codec ids.
    pub fn send_metadata(&mut self, metadata: Amf0) -> Result<(), Error> {
        if self.closed || !self.streaming || self.config.intent != ClientIntent::Publish {
            return Err(Error::NotStreaming("publishing"));
        }
        let values = [
            Amf0::String("@setDataFrame".into()),
            Amf0::String("onMetaData".into()),
            metadata,
        ];
        self.core
            .amf0(DATA_AMF0, conn::CSID_DATA, self.stream_id, &values)
    }

    /// Ends the stream politely (`FCUnpublish` and `deleteStream`); drain, then close.
    pub fn close(&mut self) -> Result<(), Error> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.deadline = None;
        if self.stream_id == 0 {
            return Ok(());
        }
        let key = Amf0::String(self.config.stream_key.clone());
        if self.config.intent == ClientIntent::Publish {
            self.call("FCUnpublish", 0, &[key])?;
        }
        self.call(
            "deleteStream",
            0,
            &[Amf0::Number(f64::from(self.stream_id))],
        )
    }

    fn input(&mut self, now: Instant, mut input: &[u8]) -> Result<(), Error> {
        if let Some(handshake) = self.handshake.as_mut() {
            let used = handshake.read(input, self.core.out())?;
            input = &input[used..];
            if !handshake.is_done() {
                return Ok(());
            }
            self.kind = handshake.kind();
            self.handshake = None;
            self.connect()?;
        }
        while let Some(message) = self.core.read(&mut input)? {
            let Some(message) = self.core.common(message)? else {
                continue;
            };
            match message.type_id {
                AUDIO | VIDEO | AGGREGATE => {
                    if !self.streaming || self.config.intent != ClientIntent::Play {
                        continue;
                    }
                    let core = &mut self.core;
                    self.media.push(now, message, |out| {
                        core.event(match out {
                            MediaOut::Frame(frame) => ClientEvent::Media(frame),
                            MediaOut::Dropped { offset, error } => {
                                ClientEvent::MediaDropped { offset, error }
                            }
                        });
                    })?;
                }
                COMMAND_AMF0 | COMMAND_AMF3 => {
                    let command = conn::parse_command(&message)?;
                    self.command(message.offset, command)?;
                }
                DATA_AMF0 | DATA_AMF3 => {
                    if let Some(metadata) = conn::metadata(conn::parse_data(&message)?) {
                        self.core.event(ClientEvent::Metadata(metadata));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn connect(&mut self) -> Result<(), Error> {
        self.core.set_chunk_size(self.config.chunk_size)?;
        let mut object = vec![
            ("app".into(), Amf0::String(self.config.app.clone())),
            ("type".into(), Amf0::String("nonprivate".into())),
            ("flashVer".into(), Amf0::String(FLASH_VERSION.into())),
            ("tcUrl".into(), Amf0::String(self.config.tc_url.clone())),
        ];
        if self.config.intent == ClientIntent::Play {
            object.extend([
                ("fpad".into(), Amf0::Boolean(false)),
                ("capabilities".into(), Amf0::Number(15.0)),
                ("audioCodecs".into(), Amf0::Number(4071.0)),
                ("videoCodecs".into(), Amf0::Number(252.0)),
                ("videoFunction".into(), Amf0::Number(1.0)),
            ]);
        }
        // Enhanced RTMP: announce the FourCCs we understand beyond legacy FLV.
        object.push((
            "fourCcList".into(),
            Amf0::StrictArray(
                ["hvc1", "av01", "vp09"]
                    .map(|fourcc| Amf0::String(fourcc.into()))
                    .to_vec(),
            ),
        ));
        self.call("connect", 0, &[Amf0::Object(object)])
    }

    /// Sends a command and remembers its transaction (`connect`, `createStream`, ... are the
    /// ones with answers we wait for).
    fn call(&mut self, name: &'static str, stream_id: u32, args: &[Amf0]) -> Result<(), Error> {
        let txn = self.next_transaction;
        self.next_transaction += 1.0;
        let mut values = vec![Amf0::String(name.into()), Amf0::Number(txn)];
        if name != "connect" {
            values.push(Amf0::Null);
        }
        values.extend_from_slice(args);
        self.awaiting.push((txn, name));
        let csid = if stream_id == 0 {
            CSID_COMMAND
        } else {
            CSID_STREAM
        };
        self.core.amf0(COMMAND_AMF0, csid, stream_id, &values)
    }

    fn command(&mut self, offset: u64, command: conn::Command) -> Result<(), Error> {
        match command.name.as_str() {
            "_result" | "_error" => {
                let txn = command.transaction;
                let Some(index) = self.awaiting.iter().position(|(t, _)| *t == txn) else {
                    return Ok(());
                };
                let (_, name) = self.awaiting.swap_remove(index);
                if command.name == "_error" {
                    let info = command.args.first();
                    return Err(refused(name, info));
                }
                match name {
                    "connect" => {
                        self.core.event(ClientEvent::Connected {
                            handshake: self.kind.unwrap_or(HandshakeKind::Simple),
                        });
                        let key = Amf0::String(self.config.stream_key.clone());
                        if self.config.intent == ClientIntent::Publish {
                            self.call("releaseStream", 0, std::slice::from_ref(&key))?;
                            self.call("FCPublish", 0, &[key])?;
                        }
                        self.call("createStream", 0, &[])?;
                    }
                    "createStream" => {
                        let sid = command
                            .args
                            .first()
                            .and_then(Amf0::as_number)
                            .filter(|n| *n >= 1.0 && *n <= f64::from(u32::MAX))
                            .ok_or_else(|| Error::Command {
                                offset,
                                name: command.name.clone(),
                                reason: "createStream result without a stream id",
                            })?;
                        self.stream_id = sid as u32;
                        let key = Amf0::String(self.config.stream_key.clone());
                        if self.config.intent == ClientIntent::Publish {
                            self.call(
                                "publish",
                                self.stream_id,
                                &[key, Amf0::String("live".into())],
                            )?;
                        } else {
                            self.call("play", self.stream_id, &[key, Amf0::Number(-2000.0)])?;
                            let mut data = [0u8; 8];
                            data[..4].copy_from_slice(&self.stream_id.to_be_bytes());
                            data[4..].copy_from_slice(&BUFFER_MS.to_be_bytes());
                            self.core.user_control(SET_BUFFER_LENGTH, &data)?;
                        }
                    }
                    _ => {}
                }
            }
            "onStatus" => {
                let info = command.args.first();
                let field = |name| {
                    info.and_then(|i| i.property(name))
                        .and_then(Amf0::as_str)
                        .unwrap_or_default()
                };
                let code = field("code");
                if field("level") == "error" {
                    let name = match self.config.intent {
                        ClientIntent::Publish => "publish",
                        ClientIntent::Play => "play",
                    };
                    return Err(refused(name, info));
                }
                match code {
                    "NetStream.Publish.Start" if self.config.intent == ClientIntent::Publish => {
                        self.start(ClientEvent::PublishStarted);
                    }
                    "NetStream.Play.Start" if self.config.intent == ClientIntent::Play => {
                        self.start(ClientEvent::PlayStarted);
                    }
                    "NetStream.Play.Stop"
                    | "NetStream.Play.Complete"
                    | "NetStream.Play.UnpublishNotify" => {
                        let code = code.to_owned();
                        self.core.event(ClientEvent::StreamEnded { code });
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn start(&mut self, event: ClientEvent) {
        if !self.streaming {
            self.streaming = true;
            self.deadline = None;
            self.core.event(event);
        }
    }
}

fn refused(command: &'static str, info: Option<&Amf0>) -> Error {
    let field = |name| {
        info.and_then(|i| i.property(name))
            .and_then(Amf0::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Error::Refused {
        command,
        code: field("code"),
        description: field("description"),
    }
}

/// The `flashVer` we send (the form encoders use; some servers check the `FMLE` prefix).
const FLASH_VERSION: &str = "FMLE/3.0 (compatible; Tributary)";
/// The buffer length a player announces (ms), as FFmpeg.
const BUFFER_MS: u32 = 3000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_with_default_ports() {
        let e = Endpoint::from_url("rtmp://cdn.example.org/live/key").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.tls),
            ("cdn.example.org", 1935, false)
        );
        let e = Endpoint::from_url("rtmp://[::1]:1936/live/k").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 1936));
        let e = Endpoint::from_url(" rtmp://127.0.0.1:19350/live/x ").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 19350));
        assert!(Endpoint::from_url("rtmp:///live/x").is_none());
        assert!(Endpoint::from_url("rtmp://host:99999/live/x").is_none());
        assert!(Endpoint::from_url("http://host/live/x").is_none());
    }
}
