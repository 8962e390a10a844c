//! One RTSP connection: a [`ServerSession`] run by the `net` driver, and the handler that
//! answers DESCRIBE and PLAY from the hub and feeds a playing session its frames.
//!
//! DESCRIBE asks the [`Router`](crate::Router) for the stream (caps, `protocols.rtsp`), then
//! reads the buffer's cached GOP for the codec configuration the SDP needs: the parameter
//! sets of the last keyframe and the AAC configuration; a stream with no keyframe yet is "not
//! ready" (404). PLAY subscribes from the last keyframe, so a player starts decoding at once.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tributary_hub::{BufferId, Delivery, Hub, SubscribeFrom, Subscriber};
use tributary_media::codec::nal::annex_b_nals;
use tributary_media::{Codec, Frame, MediaKind, StreamCode, Ts90};
use tributary_net::{Cx, End, Handler, Settings};
use tributary_rtsp::{
    Datagram, Event, Refusal as RtspRefusal, RtspError, ServerConfig, ServerSession, Track,
};

use super::{Counters, Shared};
use crate::limit::PendingSlot;
use crate::{ByteMeter, PlayRequest, Protocol, Refusal};

/// Serves one accepted connection to its end; logs why it ended.
pub(super) async fn serve(
    socket: TcpStream,
    peer: SocketAddr,
    slot: PendingSlot,
    shared: Arc<Shared>,
) {
    let _open = Gauge::new(&shared, |c| &c.connections);
    if let Err(e) = socket.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY: {e}");
    }
    let config = ServerConfig {
        tcp: shared.config.tcp,
        udp: shared.udp.as_ref().map(|u| u.ports),
        timeout: SESSION_TIMEOUT,
        play_deadline: shared.config.handshake_timeout,
        max_request: MAX_REQUEST,
        max_packet: MAX_PACKET,
        random: rand::random(),
        wall: (
            tributary_net::clock(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default(),
        ),
    };
    let mut session = ServerSession::new(config, tributary_net::clock());
    let stop = shared.cancel.child_token();
    let mut conn = Conn {
        state: State::Waiting(Some(slot)),
        stop: stop.clone(),
        peer,
        shared,
        datagram: Vec::with_capacity(MAX_PACKET),
    };
    let settings = Settings {
        backlog: Some(conn.shared.config.play_backlog),
        input_budget: Some(Arc::clone(&conn.shared.input_budget)),
        ..Settings::default()
    };
    let end = tributary_net::run(socket, &mut session, &mut conn, settings, &stop).await;
    conn.end(&end);
}

struct Conn {
    state: State,
    stop: CancellationToken,
    peer: SocketAddr,
    shared: Arc<Shared>,
    /// One datagram's bytes, reused for every UDP packet.
    datagram: Vec<u8>,
}

enum State {
    /// Before DESCRIBE: holds its place in the per-IP cap (dropped when playing).
    Waiting(Option<PendingSlot>),
    /// Described: the grant is held (cap seat, output gate) until the connection ends.
    Described(Granted),
    /// Playing.
    Playing(Playing),
    Done,
}

struct Granted {
    code: StreamCode,
    hub: Hub,
    buffer: BufferId,
    bytes: ByteMeter,
    /// Video codec and whether the stream has AAC audio, as described: track 0 is video (if
    /// any), then audio.
    layout: Layout,
    _guard: Box<dyn Any + Send + Sync>,
    _slot: Option<PendingSlot>,
}

#[derive(Debug, Clone, Copy)]
struct Layout {
    video: Option<Codec>,
    audio: Option<usize>,
}

struct Playing {
    subscriber: Subscriber,
    layout: Layout,
    /// The RTP bytes handed to the player, for its session record.
    bytes: ByteMeter,
    _guard: Box<dyn Any + Send + Sync>,
    _count: Gauge,
    /// Whether a video keyframe went out (frames before one are not sent).
    synced: bool,
}

#[derive(Debug, thiserror::Error)]
enum Reason {
    #[error("{0}")]
    Closed(String),
    #[error("the stream ended")]
    StreamEnded,
}

impl Handler<ServerSession> for Conn {
    type Item = Delivery;
    type Reason = Reason;

    fn event(
        &mut self,
        cx: &mut Cx<'_, ServerSession, Reason>,
        event: Event,
    ) -> Result<(), Reason> {
        match event {
            Event::Describe { path } => {
                tracing::Span::current().record("path", path.as_str());
                let answer = self.describe(path);
                let now = cx.now();
                cx.session().describe(now, answer);
            }
            Event::Play { .. } => {
                let (answer, first) = match self.play() {
                    Ok((start, first)) => (Ok(start), first),
                    Err(refusal) => (Err(refusal), None),
                };
                let now = cx.now();
                cx.session().play(now, answer);
                if let Some(frame) = first {
                    self.write(cx, &frame);
                }
            }
            Event::Rtcp { port, packet } => {
                if let Some(udp) = &self.shared.udp {
                    let to = SocketAddr::new(self.peer.ip(), port);
                    if udp.rtcp.try_send_to(&packet, to).is_err() {
                        self.shared
                            .counters
                            .udp_dropped
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Event::Close { reason } => cx.close(Reason::Closed(reason)),
        }
        Ok(())
    }

    fn receiving(&self) -> bool {
        matches!(self.state, State::Playing(_))
    }

    async fn recv(&mut self) -> Option<Delivery> {
        match &mut self.state {
            State::Playing(playing) => playing.subscriber.recv().await,
            _ => std::future::pending().await,
        }
    }

    fn try_recv(&mut self) -> Poll<Option<Delivery>> {
        let State::Playing(playing) = &mut self.state else {
            return Poll::Pending;
        };
        playing.subscriber.try_next()
    }

    fn item(
        &mut self,
        cx: &mut Cx<'_, ServerSession, Reason>,
        delivery: Option<Delivery>,
    ) -> Result<(), Reason> {
        let State::Playing(playing) = &mut self.state else {
            return Ok(());
        };
        match delivery {
            None => {
                self.state = State::Done;
                cx.close(Reason::StreamEnded);
            }
            Some(Delivery::Lagged { dropped }) => {
                tracing::debug!(dropped, "player fell behind; resuming at a keyframe");
                playing.synced = false;
            }
            Some(Delivery::Frame(frame)) => self.write(cx, &frame),
        }
        Ok(())
    }
}

impl Conn {
    /// Writes a frame of the playing stream: over TCP as the session's transmit, over UDP
    /// from the listener's RTP socket. Video waits for a keyframe.
    fn write(&mut self, cx: &mut Cx<'_, ServerSession, Reason>, frame: &Frame) {
        let State::Playing(playing) = &mut self.state else {
            return;
        };
        let Some(index) = playing.layout.index(frame) else {
            return;
        };
        if frame.codec.kind() == MediaKind::Video {
            playing.synced |= frame.keyframe;
        }
        if !playing.synced && playing.layout.video.is_some() {
            return;
        }
        cx.stamp(frame.arrival);
        let now = cx.now();
        let (shared, peer, buf) = (&self.shared, self.peer, &mut self.datagram);
        let sent =
            cx.session()
                .write_frame(index, frame.pts, &frame.payload, now, |d: Datagram<'_>| {
                    let Some(udp) = &shared.udp else { return };
                    buf.clear();
                    d.packet.write_to(buf);
                    let to = SocketAddr::new(peer.ip(), d.port);
                    if udp.rtp.try_send_to(buf, to).is_err() {
                        shared.counters.udp_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                });
        playing.bytes.add(sent);
    }

    /// The stream at `path` and its tracks, or why not.
    fn describe(&mut self, path: String) -> Result<Vec<Track>, RtspRefusal> {
        let slot = match &mut self.state {
            State::Waiting(slot) => slot.take(),
            // A second DESCRIBE on the same connection: describe again from scratch.
            State::Described(granted) => granted._slot.take(),
            _ => None,
        };
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (path, None),
        };
        let request = PlayRequest {
            path,
            query,
            peer: self.peer,
            protocol: Protocol::Rtsp,
            stop: self.stop.clone(),
        };
        let grant = match self.shared.router.play(request) {
            Ok(grant) => grant,
            Err(refusal) => {
                self.shared
                    .counters
                    .rejected
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!("DESCRIBE refused: {refusal}");
                return Err(match refusal {
                    Refusal::NotFound(_) => RtspRefusal::NotFound,
                    Refusal::Denied(_) => RtspRefusal::Forbidden,
                    Refusal::Busy(_) => RtspRefusal::Unavailable,
                });
            }
        };
        tracing::Span::current().record("stream", grant.code.as_str());
        let Some((tracks, layout)) = tracks_of(&grant.hub, &grant.buffer) else {
            tracing::info!(stream = %grant.code, "DESCRIBE refused: no keyframe yet (not ready)");
            return Err(RtspRefusal::NotFound);
        };
        self.state = State::Described(Granted {
            code: grant.code,
            hub: grant.hub,
            buffer: grant.buffer,
            bytes: grant.bytes,
            layout,
            _guard: grant.guard,
            _slot: slot,
        });
        Ok(tracks)
    }

    /// Subscribes the described stream from its last keyframe: the PTS the play starts at
    /// (for `RTP-Info`), and the first frame, to write once PLAY is answered.
    fn play(&mut self) -> Result<(Ts90, Option<Frame>), RtspRefusal> {
        let State::Described(granted) = std::mem::replace(&mut self.state, State::Done) else {
            return Err(RtspRefusal::NotFound);
        };
        let subscribed =
            granted
                .hub
                .subscribe(&granted.buffer, SubscribeFrom::LastKeyframe, PLAY_CLASS);
        let Ok(mut subscriber) = subscribed else {
            tracing::info!(stream = %granted.code, "PLAY refused: the stream stopped");
            return Err(RtspRefusal::NotFound);
        };
        tracing::info!(stream = %granted.code, "playing");
        // The GOP cache starts at a keyframe: its PTS is where RTP-Info points.
        let first = match subscriber.try_recv() {
            Ok(Delivery::Frame(frame)) => Some(frame),
            _ => None,
        };
        let start = first.as_ref().map_or(Ts90(0), |f| f.pts);
        self.state = State::Playing(Playing {
            subscriber,
            layout: granted.layout,
            bytes: granted.bytes,
            _guard: granted._guard,
            _count: Gauge::new(&self.shared, |c| &c.players),
            synced: false,
        });
        Ok((start, first))
    }

    fn end(&self, end: &End<Reason, RtspError>) {
        let playing = matches!(self.state, State::Playing(_) | State::Done);
        match end {
            End::PeerClosed | End::Stopped | End::Handler(_) => {
                tracing::info!(playing, "RTSP connection closed: {end}");
            }
            _ => tracing::warn!(playing, "RTSP connection closed: {end}"),
        }
    }
}

impl Layout {
    /// The track index a frame goes out on, if it is carried.
    fn index(&self, frame: &Frame) -> Option<usize> {
        match frame.codec.kind() {
            MediaKind::Video if Some(frame.codec) == self.video => Some(0),
            MediaKind::Audio if frame.codec == Codec::Aac => self.audio,
            _ => None,
        }
    }
}

/// The tracks of `buffer` from its cached GOP: the last keyframe's parameter sets and the
/// first AAC configuration; `None` when there is no keyframe yet.
fn tracks_of(hub: &Hub, buffer: &BufferId) -> Option<(Vec<Track>, Layout)> {
    let mut peek = hub
        .subscribe(buffer, SubscribeFrom::LastKeyframe, PLAY_CLASS)
        .ok()?;
    let mut video = None;
    let mut audio = None;
    while let Ok(delivery) = peek.try_recv() {
        let Delivery::Frame(frame) = delivery else {
            continue;
        };
        match frame.codec {
            Codec::H264 | Codec::H265 if video.is_none() && frame.keyframe => {
                video = video_track(frame.codec, &frame.payload).map(|t| (t, frame.codec));
            }
            Codec::Aac if audio.is_none() => {
                audio = frame
                    .config
                    .as_ref()
                    .and_then(|c| Track::aac(c.decoder_config.clone()));
            }
            _ => {}
        }
        if video.is_some() && audio.is_some() {
            break;
        }
    }
    let (video_track, video_codec) = match video {
        Some((track, codec)) => (Some(track), Some(codec)),
        None => (None, None),
    };
    // A stream that has video but whose keyframe has not come is not ready.
    video_codec?;
    let mut tracks: Vec<Track> = video_track.into_iter().collect();
    let audio_index = audio.map(|track| {
        tracks.push(track);
        tracks.len() - 1
    });
    Some((
        tracks,
        Layout {
            video: video_codec,
            audio: audio_index,
        },
    ))
}

/// The SDP track of a keyframe's parameter sets.
fn video_track(codec: Codec, keyframe: &Bytes) -> Option<Track> {
    let (mut vps, mut sps, mut pps) = (None, None, None);
    for nal in annex_b_nals(keyframe) {
        let set = Some(keyframe.slice_ref(nal));
        match codec {
            Codec::H264 => match nal[0] & 0x1F {
                7 if sps.is_none() => sps = set,
                8 if pps.is_none() => pps = set,
                _ => {}
            },
            _ => match (nal[0] >> 1) & 0x3F {
                32 if vps.is_none() => vps = set,
                33 if sps.is_none() => sps = set,
                34 if pps.is_none() => pps = set,
                _ => {}
            },
        }
    }
    match codec {
        Codec::H264 => Some(Track::h264(sps?, pps?)),
        _ => Some(Track::h265(vps?, sps?, pps?)),
    }
}

/// One unit of a gauge (connections, players), given back when dropped.
struct Gauge {
    shared: Arc<Shared>,
    gauge: fn(&Counters) -> &AtomicU64,
}

impl Gauge {
    fn new(shared: &Arc<Shared>, gauge: fn(&Counters) -> &AtomicU64) -> Self {
        gauge(&shared.counters).fetch_add(1, Ordering::Relaxed);
        Self {
            shared: Arc::clone(shared),
            gauge,
        }
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        (self.gauge)(&self.shared.counters).fetch_sub(1, Ordering::Relaxed);
    }
}

/// The hub subscriber class of RTSP players.
const PLAY_CLASS: &str = "rtsp_play";
/// SPEC §Defaults: the RTSP session timeout.
const SESSION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// SPEC §Security: the largest RTSP request.
const MAX_REQUEST: usize = 64 * 1024;
/// The largest RTP packet: fits a 1500-byte Ethernet MTU with IP and UDP headers.
const MAX_PACKET: usize = 1400;
