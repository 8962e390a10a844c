//! The server side of one RTSP connection for play (RFC 2326, what players and monitoring walls
//! speak): OPTIONS, DESCRIBE, SETUP (TCP-interleaved or UDP unicast), PLAY, GET_PARAMETER and
//! SET_PARAMETER as keep-alives, TEARDOWN, and the media of a playing session as RTP and RTCP
//! sender reports.
//!
//! # Driving it
//!
//! [`ServerSession`] is a [`Session`]: the driver feeds it bytes and `now`, and drains its
//! outputs. Two requests need the server's answer, and raise an [`Event`] for it: DESCRIBE
//! (which stream, and its tracks: answer with [`ServerSession::describe`]) and PLAY (answer
//! with [`ServerSession::play`] once the handler is subscribed). While one waits, later
//! requests wait in the input buffer, so answers keep the requests' order. Once playing, feed
//! each access unit with [`ServerSession::write_frame`]: over TCP its packets leave as one
//! transmit of interleaved frames; over UDP they are handed to the caller's closure with the
//! client's port, for the listener's shared RTP socket.
//!
//! The session ends with [`Event::Close`] after a TEARDOWN or a request it cannot answer
//! (malformed, too large); without any request or RTCP from the client for the session
//! timeout (60 s) it fails with [`RtspError::Timeout`].
//!
//! Messages are parsed by `rtsp-types` (a well-kept parser from the GStreamer developers); this
//! module owns the state machine, which no crate offers on the server side.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use rtsp_types::headers::{self, Transport, Transports};
use rtsp_types::{Message, Method, ParseError, Request, Response, StatusCode, Version};
use tributary_media::{Output, Session, Ts90};
use tributary_rtp::packetize::{MIN_PACKET, Packet, Packetizer};
use tributary_rtp::rtcp::{SenderReport, ntp_time};

use crate::sdp::{self, Track};

/// What a connection may do, fixed when it is accepted.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Whether RTP over the RTSP connection (interleaved) is offered.
    pub tcp: bool,
    /// The listener's RTP and RTCP UDP ports, when UDP unicast is offered.
    pub udp: Option<(u16, u16)>,
    /// Without a request or RTCP from the client for this long, the session ends. SPEC: 60 s.
    pub timeout: Duration,
    /// From accept to an answered PLAY at most this long (SPEC §Security: 10 s handshake
    /// deadline).
    pub play_deadline: Duration,
    /// The largest request accepted, bytes (SPEC §Security: 64 KiB).
    pub max_request: usize,
    /// The largest RTP packet sent.
    pub max_packet: usize,
    /// Random bits for the session id, SSRCs and first sequence numbers.
    pub random: u64,
    /// An instant and the wall-clock time (since the Unix epoch) at it, for the NTP times of
    /// sender reports.
    pub wall: (Instant, Duration),
}

/// What the session needs the server to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A client asks for the presentation at `path` (the request URL's path without its leading
    /// `/`): answer with [`ServerSession::describe`].
    Describe {
        /// The path, e.g. `live/cam1`.
        path: String,
    },
    /// The client asks to play what it set up: answer with [`ServerSession::play`].
    Play {
        /// The path described.
        path: String,
    },
    /// A sender report for a UDP track: send `packet` from the listener's RTCP socket to the
    /// client's `port` (on the connection's peer address). Reports of TCP tracks go out as
    /// transmits.
    Rtcp {
        /// The client's RTCP port.
        port: u16,
        /// The compound RTCP packet.
        packet: Bytes,
    },
    /// The client ended the session, or sent what cannot be answered: close the connection
    /// once what is queued is written.
    Close {
        /// Why, for the log.
        reason: String,
    },
}

/// Why the server refuses a DESCRIBE or a PLAY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such stream, or not playable over RTSP, or not ready: 404.
    NotFound,
    /// The play caps are full: 503.
    Unavailable,
    /// Not allowed (a signed URL missing or wrong): 403.
    Forbidden,
}

/// Why a connection cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtspError {
    /// Neither a request nor RTCP came for the session timeout.
    #[error("no request or RTCP from the client for {0:?} (session timeout)")]
    Timeout(Duration),
    /// PLAY was not answered within the deadline from accept.
    #[error("not playing {0:?} after connecting (handshake deadline)")]
    NoPlay(Duration),
}

/// One set-up track.
#[derive(Debug)]
struct Stream {
    track: Track,
    packetizer: Packetizer,
    /// Where its packets go.
    transport: Delivery,
    /// Added to the scaled PTS: RTP timestamps start at a random value (RFC 3550 §5.1).
    offset: u32,
    /// Packets and payload octets sent, for sender reports.
    packets: u32,
    octets: u32,
    /// The RTP timestamp of the last frame and when it was written, to stamp reports.
    last: Option<(u32, Instant)>,
}

/// How one track's packets reach the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Interleaved on this connection: RTP on the first channel, RTCP on the second.
    Tcp { rtp: u8, rtcp: u8 },
    /// UDP to the client's ports.
    Udp { rtp: u16, rtcp: u16 },
}

/// A request answered later, by the server.
#[derive(Debug)]
struct Pending {
    cseq: String,
    kind: PendingKind,
}

#[derive(Debug, PartialEq, Eq)]
enum PendingKind {
    Describe { base: String },
    Play { base: String },
}

/// A UDP datagram to send from the listener's RTP (or RTCP) socket to the client's port.
#[derive(Debug)]
pub struct Datagram<'a> {
    /// The client's port (on the connection's peer address).
    pub port: u16,
    /// The RTP packet (head and body to send as one datagram).
    pub packet: &'a Packet,
}

/// The server side of one RTSP connection.
#[derive(Debug)]
pub struct ServerSession {
    config: ServerConfig,
    /// Input not parsed yet.
    input: BytesMut,
    outputs: VecDeque<Output<Event>>,
    /// Where interleaved TCP packets are framed. Each frame's transmit is split off it, so
    /// once the connection wrote the previous ones, `reserve` takes their room back: a
    /// playing connection frames without allocating (one copy of the payload, into here).
    transmit: BytesMut,
    pending: Option<Pending>,
    /// The described path and its tracks.
    described: Option<(String, Vec<Track>)>,
    /// Set-up tracks by track index.
    streams: Vec<(usize, Stream)>,
    /// The session id, once a SETUP made one.
    session: Option<String>,
    playing: bool,
    closed: bool,
    /// When the session times out, and when the next sender reports go out.
    expires: Instant,
    next_report: Option<Instant>,
    /// Until PLAY is answered, the connection must play by then.
    play_by: Option<Instant>,
}

/// The bytes an access unit of `len` bytes takes interleaved in packets of at most
/// `max_packet` bytes: the payload plus, per packet, the `$` framing and the largest RTP
/// header with payload-format prefix. An over-estimate by a few bytes per packet.
fn interleaved_len(len: usize, max_packet: usize) -> usize {
    let body = max_packet.saturating_sub(MIN_PACKET).max(1);
    len + (4 + MIN_PACKET) * (len / body + 1)
}

/// How often sender reports go out while playing.
const REPORT_INTERVAL: Duration = Duration::from_secs(5);

impl ServerSession {
    /// A session for a connection accepted at `now`.
    pub fn new(config: ServerConfig, now: Instant) -> Self {
        Self {
            expires: now + config.timeout,
            play_by: Some(now + config.play_deadline),
            config,
            input: BytesMut::new(),
            outputs: VecDeque::new(),
            transmit: BytesMut::new(),
            pending: None,
            described: None,
            streams: Vec::new(),
            session: None,
            playing: false,
            closed: false,
            next_report: None,
        }
    }

    /// Whether PLAY was answered: feed frames.
    pub fn is_playing(&self) -> bool {
        self.playing
    }

    /// The track indices set up, in the order the client set them up.
    pub fn tracks(&self) -> impl Iterator<Item = usize> + '_ {
        self.streams.iter().map(|(i, _)| *i)
    }

    /// Answers the DESCRIBE that [`Event::Describe`] announced: the stream's tracks, or a
    /// refusal. Does nothing if no DESCRIBE waits.
    pub fn describe(&mut self, now: Instant, answer: Result<Vec<Track>, Refusal>) {
        let Some(Pending {
            cseq,
            kind: PendingKind::Describe { base },
        }) = self.take_pending(|k| matches!(k, PendingKind::Describe { .. }))
        else {
            return;
        };
        match answer {
            Err(refusal) => self.respond(&cseq, refusal.status(), &[], None),
            Ok(tracks) if tracks.is_empty() => {
                self.respond(&cseq, StatusCode::NotFound, &[], None);
            }
            Ok(tracks) => {
                let path = path_of(&base);
                let body = sdp::describe(&path, self.config.random >> 16, &tracks);
                let content_base = format!("{base}/");
                self.respond(
                    &cseq,
                    StatusCode::Ok,
                    &[
                        (headers::CONTENT_BASE, content_base.as_str()),
                        (headers::CONTENT_TYPE, "application/sdp"),
                    ],
                    Some(body.into_bytes()),
                );
                self.described = Some((path, tracks));
            }
        }
        self.process(now);
    }

    /// Answers the PLAY that [`Event::Play`] announced: `Ok(start)` with the PTS of the first
    /// frame the server will write (for `RTP-Info`), or a refusal.
    pub fn play(&mut self, now: Instant, answer: Result<Ts90, Refusal>) {
        let Some(Pending {
            cseq,
            kind: PendingKind::Play { base },
        }) = self.take_pending(|k| matches!(k, PendingKind::Play { .. }))
        else {
            return;
        };
        match answer {
            Err(refusal) => self.respond(&cseq, refusal.status(), &[], None),
            Ok(start) => {
                let mut info = String::new();
                for (index, stream) in &self.streams {
                    if !info.is_empty() {
                        info.push(',');
                    }
                    let _ = write!(
                        info,
                        "url={base}/trackID={index};seq={};rtptime={}",
                        stream.packetizer.next_sequence(),
                        stream.rtp_time(start)
                    );
                }
                let session = self.session_header();
                self.respond(
                    &cseq,
                    StatusCode::Ok,
                    &[
                        (headers::SESSION, session.as_str()),
                        (headers::RANGE, "npt=0.000-"),
                        (headers::RTP_INFO, info.as_str()),
                    ],
                    None,
                );
                self.playing = true;
                self.play_by = None;
                self.next_report = Some(now + REPORT_INTERVAL);
            }
        }
        self.process(now);
    }

    /// Writes one access unit of track `index` presented at `pts`, written at `now`. Over TCP
    /// its packets are queued as one transmit; over UDP each is handed to `udp`. Frames of
    /// tracks not set up, and frames before PLAY, are ignored. Returns the bytes written:
    /// every RTP packet, with its interleaved framing over TCP (what the player's session
    /// counts).
    pub fn write_frame(
        &mut self,
        index: usize,
        pts: Ts90,
        payload: &Bytes,
        now: Instant,
        mut udp: impl FnMut(Datagram<'_>),
    ) -> usize {
        if !self.playing || self.closed {
            return 0;
        }
        let Some((_, stream)) = self.streams.iter_mut().find(|(i, _)| *i == index) else {
            return 0;
        };
        let timestamp = stream.rtp_time(pts);
        stream.last = Some((timestamp, now));
        let delivery = stream.transport;
        let tcp = &mut self.transmit;
        if let Delivery::Tcp { .. } = delivery {
            tcp.reserve(interleaved_len(payload.len(), self.config.max_packet));
        }
        let (packets, octets) = (&mut stream.packets, &mut stream.octets);
        let mut udp_bytes = 0;
        let result = stream.packetizer.packetize(payload, timestamp, |packet| {
            *packets = packets.wrapping_add(1);
            *octets = octets.wrapping_add(packet.body().len() as u32);
            match delivery {
                Delivery::Tcp { rtp, .. } => {
                    tcp.put_u8(b'$');
                    tcp.put_u8(rtp);
                    tcp.put_u16(packet.size() as u16);
                    tcp.put_slice(packet.head());
                    tcp.put_slice(packet.body());
                }
                Delivery::Udp { rtp, .. } => {
                    udp_bytes += packet.size();
                    udp(Datagram {
                        port: rtp,
                        packet: &packet,
                    });
                }
            }
        });
        // An AAC unit too large for RFC 3640 is not sent; the next one is.
        let _ = result;
        let written = udp_bytes + tcp.len();
        if !tcp.is_empty() {
            let frame = tcp.split().freeze();
            self.outputs.push_back(Output::Transmit(frame));
        }
        written
    }

    /// The client's RTCP arrived on the listener's UDP socket: the session is alive.
    pub fn keepalive(&mut self, now: Instant) {
        self.expires = now + self.config.timeout;
    }

    /// Queues the sender reports of every track that has sent media: TCP tracks' as one
    /// transmit, UDP tracks' as [`Event::Rtcp`].
    fn reports(&mut self, now: Instant) {
        let (anchor, wall) = self.config.wall;
        let wall_now = wall + now.saturating_duration_since(anchor);
        let mut udp = Vec::new();
        let mut tcp = BytesMut::new();
        for (_, stream) in &self.streams {
            let Some((timestamp, at)) = stream.last else {
                continue;
            };
            let elapsed = now.saturating_duration_since(at);
            let ticks = elapsed.as_secs_f64() * f64::from(stream.track.clock_rate());
            let report = SenderReport {
                ssrc: stream.packetizer.ssrc(),
                ntp: ntp_time(wall_now),
                rtp_timestamp: timestamp.wrapping_add(ticks as u32),
                packets: stream.packets,
                octets: stream.octets,
            };
            let mut packet = Vec::with_capacity(64);
            report.write_compound("tributary", &mut packet);
            match stream.transport {
                Delivery::Tcp { rtcp, .. } => {
                    tcp.put_u8(b'$');
                    tcp.put_u8(rtcp);
                    tcp.put_u16(packet.len() as u16);
                    tcp.put_slice(&packet);
                }
                Delivery::Udp { rtcp, .. } => udp.push(Event::Rtcp {
                    port: rtcp,
                    packet: Bytes::from(packet),
                }),
            }
        }
        if !tcp.is_empty() {
            self.outputs.push_back(Output::Transmit(tcp.freeze()));
        }
        self.outputs.extend(udp.into_iter().map(Output::Event));
    }

    fn take_pending(&mut self, matches: impl Fn(&PendingKind) -> bool) -> Option<Pending> {
        if self.pending.as_ref().is_some_and(|p| matches(&p.kind)) {
            self.pending.take()
        } else {
            None
        }
    }

    /// Parses and answers what is buffered, up to a request that waits for the server.
    fn process(&mut self, now: Instant) {
        while self.pending.is_none() && !self.closed && !self.input.is_empty() {
            match Message::<Vec<u8>>::parse(&self.input[..]) {
                Ok((message, consumed)) => {
                    let _ = self.input.split_to(consumed);
                    self.keepalive(now);
                    match message {
                        Message::Request(request) => self.request(request),
                        // RTCP receiver reports over TCP: the client is alive.
                        Message::Data(_) | Message::Response(_) => {}
                    }
                }
                Err(ParseError::Incomplete(_)) => {
                    if self.input.len() > self.config.max_request {
                        self.refuse_and_close(
                            None,
                            StatusCode::RequestMessageBodyTooLarge,
                            format!("a request of more than {} bytes", self.config.max_request),
                        );
                    }
                    return;
                }
                Err(ParseError::Error) => {
                    self.refuse_and_close(
                        None,
                        StatusCode::BadRequest,
                        "a malformed RTSP message".to_owned(),
                    );
                    return;
                }
            }
        }
    }

    /// Answers one request, or parks it for the server.
    fn request(&mut self, request: Request<Vec<u8>>) {
        let Some(cseq) = request
            .header(&headers::CSEQ)
            .map(|v| v.as_str().trim().to_owned())
        else {
            self.refuse_and_close(
                None,
                StatusCode::BadRequest,
                "a request without CSeq".into(),
            );
            return;
        };
        let base = request
            .request_uri()
            .map(|u| {
                let mut u = u.clone();
                u.set_query(None);
                u.set_fragment(None);
                u.as_str().trim_end_matches('/').to_owned()
            })
            .unwrap_or_default();
        if !self.session_matches(&request) {
            self.respond(&cseq, StatusCode::SessionNotFound, &[], None);
            return;
        }
        match request.method() {
            Method::Options => self.respond(
                &cseq,
                StatusCode::Ok,
                &[(
                    headers::PUBLIC,
                    "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER",
                )],
                None,
            ),
            Method::Describe => {
                let path = path_of(&base);
                self.pending = Some(Pending {
                    cseq,
                    kind: PendingKind::Describe { base },
                });
                self.outputs
                    .push_back(Output::Event(Event::Describe { path }));
            }
            Method::Setup => self.setup(&cseq, &base, &request),
            Method::Play => {
                if self.streams.is_empty() {
                    self.respond(&cseq, StatusCode::MethodNotValidInThisState, &[], None);
                } else if self.playing {
                    let session = self.session_header();
                    self.respond(&cseq, StatusCode::Ok, &[(headers::SESSION, &session)], None);
                } else {
                    let described = self.described.as_ref().map(|(p, _)| p.clone());
                    let path = described.unwrap_or_default();
                    let base = base_of(&base);
                    self.pending = Some(Pending {
                        cseq,
                        kind: PendingKind::Play { base },
                    });
                    self.outputs.push_back(Output::Event(Event::Play { path }));
                }
            }
            Method::GetParameter | Method::SetParameter => {
                self.respond(&cseq, StatusCode::Ok, &[], None);
            }
            Method::Teardown => {
                self.respond(&cseq, StatusCode::Ok, &[], None);
                self.close("TEARDOWN".to_owned());
            }
            _ => self.respond(&cseq, StatusCode::NotImplemented, &[], None),
        }
    }

    /// SETUP of one described track, over the transport the client asks for that we offer.
    fn setup(&mut self, cseq: &str, url: &str, request: &Request<Vec<u8>>) {
        let Some((path, tracks)) = &self.described else {
            self.respond(cseq, StatusCode::MethodNotValidInThisState, &[], None);
            return;
        };
        let index = url
            .rsplit_once("/trackID=")
            .filter(|(base, _)| path_of(base) == *path)
            .and_then(|(_, i)| i.parse::<usize>().ok())
            .filter(|&i| i < tracks.len());
        let Some(index) = index else {
            self.respond(cseq, StatusCode::NotFound, &[], None);
            return;
        };
        if self.playing {
            self.respond(cseq, StatusCode::MethodNotValidInThisState, &[], None);
            return;
        }
        let offered: Vec<Transport> = match request.typed_header::<Transports>() {
            Ok(Some(t)) => t.iter().cloned().collect(),
            _ => Vec::new(),
        };
        let Some((delivery, answer)) = offered.iter().find_map(|t| self.choose(t, index)) else {
            self.respond(cseq, StatusCode::UnsupportedTransport, &[], None);
            return;
        };
        let track = tracks[index].clone();
        let random = self.config.random.rotate_left(8 * index as u32 + 8);
        let stream = Stream {
            packetizer: Packetizer::new(
                track.format(),
                sdp::payload_type(index),
                random as u32,
                (random >> 32) as u16,
                self.config.max_packet,
            ),
            offset: (random >> 40) as u32,
            track,
            transport: delivery,
            packets: 0,
            octets: 0,
            last: None,
        };
        match self.streams.iter_mut().find(|(i, _)| *i == index) {
            Some((_, known)) => *known = stream,
            None => self.streams.push((index, stream)),
        }
        if self.session.is_none() {
            self.session = Some(format!("{:016X}", self.config.random));
        }
        let session = self.session_header();
        self.respond(
            cseq,
            StatusCode::Ok,
            &[
                (headers::TRANSPORT, answer.as_str()),
                (headers::SESSION, session.as_str()),
            ],
            None,
        );
    }

    /// The delivery for `offer` of track `index`, and the `Transport` header that answers it;
    /// `None` when we do not offer it.
    fn choose(&self, offer: &Transport, index: usize) -> Option<(Delivery, String)> {
        let Transport::Rtp(rtp) = offer else {
            return None;
        };
        if rtp.params.multicast {
            return None;
        }
        let tcp = matches!(
            rtp.lower_transport,
            Some(headers::transport::RtpLowerTransport::Tcp)
        );
        if tcp {
            if !self.config.tcp {
                return None;
            }
            let default = u8::try_from(2 * index).unwrap_or(254);
            let (rtp_ch, rtcp_ch) = match rtp.params.interleaved {
                Some((a, b)) => (a, b.unwrap_or(a.wrapping_add(1))),
                None => (default, default + 1),
            };
            let answer = format!("RTP/AVP/TCP;unicast;interleaved={rtp_ch}-{rtcp_ch}");
            return Some((
                Delivery::Tcp {
                    rtp: rtp_ch,
                    rtcp: rtcp_ch,
                },
                answer,
            ));
        }
        let (server_rtp, server_rtcp) = self.config.udp?;
        let (client_rtp, client_rtcp) = rtp.params.client_port?;
        let client_rtcp = client_rtcp.unwrap_or(client_rtp.wrapping_add(1));
        let answer = format!(
            "RTP/AVP;unicast;client_port={client_rtp}-{client_rtcp};\
             server_port={server_rtp}-{server_rtcp}"
        );
        Some((
            Delivery::Udp {
                rtp: client_rtp,
                rtcp: client_rtcp,
            },
            answer,
        ))
    }

    /// Whether the request's `Session` header, if any, names this session.
    fn session_matches(&self, request: &Request<Vec<u8>>) -> bool {
        let Some(value) = request.header(&headers::SESSION) else {
            return true;
        };
        let id = value.as_str().split(';').next().unwrap_or("").trim();
        self.session.as_deref() == Some(id)
    }

    fn session_header(&self) -> String {
        format!(
            "{};timeout={}",
            self.session.as_deref().unwrap_or("0"),
            self.config.timeout.as_secs()
        )
    }

    /// Queues a response.
    fn respond(
        &mut self,
        cseq: &str,
        status: StatusCode,
        extra: &[(headers::HeaderName, &str)],
        body: Option<Vec<u8>>,
    ) {
        let mut builder = Response::builder(Version::V1_0, status)
            .header(headers::CSEQ, cseq)
            .header(headers::SERVER, "Tributary");
        for (name, value) in extra {
            builder = builder.header(name.clone(), *value);
        }
        let response = builder.build(body.unwrap_or_default());
        let mut out = Vec::with_capacity(256);
        // Serialising to a Vec cannot fail.
        let _ = response.write(&mut out);
        self.outputs.push_back(Output::Transmit(Bytes::from(out)));
    }

    fn refuse_and_close(&mut self, cseq: Option<&str>, status: StatusCode, reason: String) {
        self.respond(cseq.unwrap_or("0"), status, &[], None);
        self.close(reason);
    }

    fn close(&mut self, reason: String) {
        self.closed = true;
        self.playing = false;
        self.input.clear();
        self.outputs
            .push_back(Output::Event(Event::Close { reason }));
    }
}

impl Stream {
    /// The RTP timestamp of a frame presented at `pts`.
    fn rtp_time(&self, pts: Ts90) -> u32 {
        let rate = i128::from(self.track.clock_rate());
        let scaled = i128::from(pts.0) * rate / i128::from(Ts90::HZ);
        // RTP time is modulo 2^32: truncation is the wrap.
        (scaled as u32).wrapping_add(self.offset)
    }
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NotFound,
            Self::Unavailable => StatusCode::ServiceUnavailable,
            Self::Forbidden => StatusCode::Forbidden,
        }
    }
}

/// The path of a request URL (`rtsp://h:p/live/cam/trackID=0` → `live/cam/trackID=0`).
fn path_of(url: &str) -> String {
    url.split_once("://")
        .map_or(url, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p))
        .trim_end_matches('/')
        .to_owned()
}

/// A PLAY's URL without a track suffix (some clients play the aggregate, some a track).
fn base_of(url: &str) -> String {
    url.rsplit_once("/trackID=")
        .map_or(url, |(base, _)| base)
        .to_owned()
}

impl Session for ServerSession {
    type Event = Event;
    type Error = RtspError;

    fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<(), RtspError> {
        if self.closed {
            return Ok(());
        }
        self.input.extend_from_slice(input);
        self.process(now);
        Ok(())
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), RtspError> {
        if self.closed {
            return Ok(());
        }
        if now >= self.expires {
            return Err(RtspError::Timeout(self.config.timeout));
        }
        if self.play_by.is_some_and(|by| now >= by) {
            return Err(RtspError::NoPlay(self.config.play_deadline));
        }
        if let Some(at) = self.next_report
            && now >= at
            && self.playing
        {
            self.next_report = Some(now + REPORT_INTERVAL);
            self.reports(now);
        }
        Ok(())
    }

    fn poll_output(&mut self) -> Option<Output<Event>> {
        self.outputs.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let mut deadline = self.expires;
        for at in [self.play_by, self.next_report.filter(|_| self.playing)]
            .into_iter()
            .flatten()
        {
            deadline = deadline.min(at);
        }
        Some(deadline)
    }

    fn buffered(&self) -> usize {
        self.input.len()
    }
}

#[cfg(test)]
mod tests;
