//! A blocking RTMP player built on the project's own sans-IO client session, for media ffmpeg
//! cannot play (H.265 over Enhanced RTMP: FFmpeg 5.1 predates it).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use tributary_media::codec::nal::annex_b_nals;
use tributary_media::{Codec, Frame, TrackId};
use tributary_rtmp::amf0::Amf0;
use tributary_rtmp::{ClientConfig, ClientEvent, ClientIntent, ClientSession, Output, TagKind};

/// What [`rtmp_play`] received.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct RtmpPlayback {
    /// The frames the client session mapped the media messages to, in arrival order (video
    /// is `TrackId(0)`, audio `TrackId(1)`; H.264/H.265 payloads are Annex-B, parameter sets
    /// in front of keyframes).
    pub frames: Vec<Frame>,
    /// Every audio, video and data message as it came over the wire, read by a chunk parser
    /// of this crate (independent of the session's): what the server actually sent.
    pub tags: Vec<WireTag>,
    /// `onMetaData` objects received.
    pub metadata: Vec<Amf0>,
    /// Media messages the session could not map, with the reason.
    pub dropped: Vec<String>,
    /// The status codes of `NetStream.Play.Stop` / `...UnpublishNotify` / ... received.
    pub ended: Vec<String>,
    /// When `NetStream.Play.Start` arrived.
    pub started_at: Option<Instant>,
    /// Whether the server closed the connection before the time was up.
    pub closed_by_server: bool,
}

impl RtmpPlayback {
    /// The video frames (`TrackId(0)`), in arrival order.
    pub fn video(&self) -> Vec<&Frame> {
        self.frames
            .iter()
            .filter(|f| f.track == TrackId(0))
            .collect()
    }

    /// The audio frames (`TrackId(1)`), in arrival order.
    pub fn audio(&self) -> Vec<&Frame> {
        self.frames
            .iter()
            .filter(|f| f.track == TrackId(1))
            .collect()
    }
}

/// The NAL unit types of an H.264 or H.265 frame (Annex-B payload), in order: H.265 VPS 32,
/// SPS 33, PPS 34, IDR 19/20; H.264 SPS 7, PPS 8, IDR 5. Empty for other codecs.
pub fn nal_unit_types(frame: &Frame) -> Vec<u8> {
    let of = |nal: &[u8]| match frame.codec {
        Codec::H264 => Some(nal[0] & 0x1f),
        Codec::H265 => Some((nal[0] >> 1) & 0x3f),
        _ => None,
    };
    annex_b_nals(&frame.payload)
        .filter(|nal| !nal.is_empty())
        .filter_map(of)
        .collect()
}

/// One audio, video or script message as sent (the FLV tag body's first bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireTag {
    /// Audio, video or script data.
    pub kind: TagKind,
    /// The message timestamp, milliseconds.
    pub timestamp: u32,
    /// The body length in bytes.
    pub len: usize,
    /// The first (up to) 16 bytes of the body: the FLV audio/video tag header.
    pub head: Vec<u8>,
    /// When its last byte was read.
    pub arrival: Instant,
}

impl WireTag {
    /// Whether this is an Enhanced RTMP video tag (`IsExHeader`, the top bit of the first
    /// byte).
    pub fn is_enhanced_video(&self) -> bool {
        self.kind == TagKind::Video && self.head.first().is_some_and(|b| b & 0x80 != 0)
    }

    /// The FourCC of an Enhanced RTMP video tag (`hvc1`, `avc1`, ...).
    pub fn fourcc(&self) -> Option<&[u8]> {
        self.is_enhanced_video()
            .then(|| self.head.get(1..5))
            .flatten()
    }

    /// The Enhanced RTMP packet type (0 sequence start, 1 coded frames, 3 coded frames
    /// without composition time, ...).
    pub fn packet_type(&self) -> Option<u8> {
        self.is_enhanced_video().then(|| self.head[0] & 0x0f)
    }

    /// The FLV frame type of a video tag (1 keyframe, 2 inter frame, 5 command).
    pub fn frame_type(&self) -> Option<u8> {
        (self.kind == TagKind::Video)
            .then(|| self.head.first().map(|b| (b >> 4) & 0x07))
            .flatten()
    }
}

/// Plays `url` (`rtmp://host[:port]/<app>/<name>`) with the project's [`ClientSession`] for
/// `duration` after `NetStream.Play.Start`, and returns what arrived.
///
/// Blocking, on a plain TCP socket. Fails when the connection, the handshake or `play` fails
/// (a refusal names the server's status code), when play has not started within 10 s, or when
/// the session reports a protocol error. A server that closes the connection early ends the
/// playback without an error ([`RtmpPlayback::closed_by_server`]).
pub fn rtmp_play(url: &str, duration: Duration) -> anyhow::Result<RtmpPlayback> {
    let (mut session, mut socket, addr, begun) = connect(url, ClientIntent::Play)?;
    let mut wire = WireReader::new();
    let mut playback = RtmpPlayback::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while let Some(output) = session.poll_output() {
            match output {
                Output::Transmit(bytes) => socket
                    .write_all(&bytes)
                    .with_context(|| format!("writing to {addr}"))?,
                Output::Event(event) => match event {
                    ClientEvent::PlayStarted => playback.started_at = Some(Instant::now()),
                    ClientEvent::Media(frame) => playback.frames.push(frame),
                    ClientEvent::Metadata(amf) => playback.metadata.push(amf),
                    ClientEvent::MediaDropped { offset, error } => {
                        playback.dropped.push(format!("at byte {offset}: {error}"));
                    }
                    ClientEvent::StreamEnded { code } => playback.ended.push(code),
                    _ => {}
                },
            }
        }
        let now = Instant::now();
        match playback.started_at {
            Some(started) if now >= started + duration => break,
            None if now >= begun + START_TIMEOUT => {
                bail!("{url}: no NetStream.Play.Start within {START_TIMEOUT:?}")
            }
            _ => {}
        }
        match socket.read(&mut buf) {
            Ok(0) => {
                playback.closed_by_server = true;
                break;
            }
            Ok(n) => {
                let now = Instant::now();
                wire.feed(&buf[..n], now)
                    .with_context(|| format!("{url}: parsing the server's chunk stream"))?;
                playback.tags.append(&mut wire.tags);
                session
                    .handle_input(now, &buf[..n])
                    .with_context(|| format!("{url}: RTMP session"))?;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("reading from {addr}")),
        }
        let now = Instant::now();
        if session.poll_timeout().is_some_and(|at| now >= at) {
            session
                .handle_timeout(now)
                .with_context(|| format!("{url}: RTMP session"))?;
        }
    }
    // Politely: deleteStream, then close.
    if session.close().is_ok() {
        while let Some(output) = session.poll_output() {
            if let Output::Transmit(bytes) = output {
                let _ = socket.write_all(&bytes);
            }
        }
    }
    let _ = socket.shutdown(Shutdown::Both);
    Ok(playback)
}

/// Connects to `url` (`rtmp://host[:port]/<app>/<name>`) and makes a client session for
/// `intent` on the socket: (session, socket, peer address, when the session began).
pub(crate) fn connect(
    url: &str,
    intent: ClientIntent,
) -> anyhow::Result<(ClientSession, TcpStream, SocketAddr, Instant)> {
    let config = ClientConfig::from_url(url, intent)
        .with_context(|| format!("{url} is not rtmp://host[:port]/<app>/<name>"))?;
    let authority = url
        .strip_prefix("rtmp://")
        .and_then(|rest| rest.split('/').next())
        .with_context(|| format!("{url}: only rtmp:// is supported here"))?;
    let authority = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:1935")
    };
    let addr = authority
        .to_socket_addrs()
        .with_context(|| format!("resolving {authority}"))?
        .next()
        .with_context(|| format!("{authority} resolves to nothing"))?;
    let socket = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .with_context(|| format!("connecting to {addr}"))?;
    socket.set_nodelay(true)?;
    socket.set_read_timeout(Some(POLL))?;
    socket.set_write_timeout(Some(CONNECT_TIMEOUT))?;
    let begun = Instant::now();
    Ok((
        ClientSession::new(config, seed(), begun),
        socket,
        addr,
        begun,
    ))
}

/// The connect timeout of [`rtmp_play`].
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`rtmp_play`] waits for `NetStream.Play.Start`.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the read loop wakes to check the clock.
pub(crate) const POLL: Duration = Duration::from_millis(50);

/// Handshake randomness: any bytes do; these differ per call.
fn seed() -> [u8; 32] {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = (nanos >> ((i % 16) * 8)) as u8 ^ (std::process::id() as u8).wrapping_add(i as u8);
    }
    out
}

/// A minimal RTMP chunk-stream reader for what a server sends a player: skips S0 S1 S2, then
/// reassembles messages (all four header formats, extended timestamps, Set Chunk Size, Abort)
/// and records the audio, video and data messages.
struct WireReader {
    /// Handshake bytes still to skip (S0 + S1 + S2).
    skip: usize,
    /// Bytes read and not consumed yet.
    pending: Vec<u8>,
    /// The server's chunk size.
    chunk_size: usize,
    /// Per chunk stream id.
    streams: HashMap<u32, ChunkState>,
    /// Messages completed since the caller last took them.
    tags: Vec<WireTag>,
}

#[derive(Default)]
struct ChunkState {
    timestamp: u32,
    delta: u32,
    length: usize,
    type_id: u8,
    /// Whether the last timestamp field was 0xFFFFFF (an extended timestamp follows).
    extended: bool,
    partial: Vec<u8>,
}

impl WireReader {
    fn new() -> Self {
        Self {
            skip: 1 + 2 * 1536,
            pending: Vec::new(),
            chunk_size: 128,
            streams: HashMap::new(),
            tags: Vec::new(),
        }
    }

    fn feed(&mut self, mut input: &[u8], now: Instant) -> anyhow::Result<()> {
        let skipped = self.skip.min(input.len());
        self.skip -= skipped;
        input = &input[skipped..];
        self.pending.extend_from_slice(input);
        let mut at = 0;
        while let Some(used) = self.chunk(at, now)? {
            at += used;
        }
        self.pending.drain(..at);
        Ok(())
    }

    /// Reads one chunk starting at `pending[at..]`; `None` when it is not all there yet.
    fn chunk(&mut self, at: usize, now: Instant) -> anyhow::Result<Option<usize>> {
        let b = &self.pending[at..];
        let Some(&first) = b.first() else {
            return Ok(None);
        };
        let format = first >> 6;
        let (csid, mut pos) = match first & 0x3f {
            0 if b.len() >= 2 => (64 + u32::from(b[1]), 2),
            1 if b.len() >= 3 => (64 + u32::from(b[1]) + 256 * u32::from(b[2]), 3),
            0 | 1 => return Ok(None),
            id => (u32::from(id), 1),
        };
        let header_len = [11, 7, 3, 0][usize::from(format)];
        if b.len() < pos + header_len {
            return Ok(None);
        }
        let u24 = |s: &[u8]| u32::from_be_bytes([0, s[0], s[1], s[2]]);
        let state = self.streams.entry(csid).or_default();
        let header = &b[pos..pos + header_len];
        let (field, length, type_id) = match format {
            0 | 1 => (Some(u24(header)), u24(&header[3..]) as usize, header[6]),
            2 => (Some(u24(header)), state.length, state.type_id),
            _ => (None, state.length, state.type_id),
        };
        pos += header_len;
        let extended = field.map_or(state.extended, |f| f == 0xFF_FFFF);
        let mut value = field.unwrap_or(state.delta);
        if extended {
            if b.len() < pos + 4 {
                return Ok(None);
            }
            value = u32::from_be_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]);
            pos += 4;
        }
        let starting = state.partial.is_empty();
        let have = state.partial.len();
        if length > 16 * 1024 * 1024 || (!starting && format != 3) {
            bail!("chunk stream {csid}: length {length}, format {format} mid-message");
        }
        let take = self.chunk_size.min(length - have);
        if b.len() < pos + take {
            return Ok(None);
        }
        // The whole chunk is here: commit.
        state.extended = extended;
        if format != 3 {
            state.delta = value;
        }
        if starting {
            state.timestamp = match format {
                0 => value,
                _ => state.timestamp.wrapping_add(value),
            };
            state.length = length;
            state.type_id = type_id;
        }
        state.partial.extend_from_slice(&b[pos..pos + take]);
        pos += take;
        if state.partial.len() >= state.length {
            let body = std::mem::take(&mut state.partial);
            let (type_id, timestamp) = (state.type_id, state.timestamp);
            self.message(type_id, timestamp, &body, now);
        }
        Ok(Some(pos))
    }

    fn message(&mut self, type_id: u8, timestamp: u32, body: &[u8], now: Instant) {
        let word = || {
            body.get(..4)
                .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        };
        let kind = match type_id {
            1 => {
                if let Some(size) = word() {
                    self.chunk_size = (size & 0x7fff_ffff).max(1) as usize;
                }
                return;
            }
            2 => {
                if let Some(csid) = word()
                    && let Some(state) = self.streams.get_mut(&csid)
                {
                    state.partial.clear();
                }
                return;
            }
            8 => TagKind::Audio,
            9 => TagKind::Video,
            15 | 18 => TagKind::Script,
            _ => return,
        };
        self.tags.push(WireTag {
            kind,
            timestamp,
            len: body.len(),
            head: body[..body.len().min(16)].to_vec(),
            arrival: now,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use bytes::Bytes;
    use tributary_media::{Codec, SessionId, TrackId, Ts90};
    use tributary_rtmp::{ServerConfig, ServerEvent, ServerSession};

    use super::*;

    /// A one-connection RTMP server thread on the project's `ServerSession`: accepts a play
    /// request for `live/cam` and sends one H.264 keyframe, then keeps the connection open.
    fn serve_one_keyframe(listener: TcpListener) -> thread::JoinHandle<String> {
        thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let mut session = ServerSession::new(ServerConfig::default(), [2; 32], Instant::now());
            let mut buf = [0u8; 8192];
            let mut key = String::new();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                let mut play = None;
                while let Some(out) = session.poll_output() {
                    match out {
                        Output::Transmit(bytes) => socket.write_all(&bytes).unwrap(),
                        Output::Event(ServerEvent::PlayRequested {
                            request_id,
                            stream_key,
                            ..
                        }) => {
                            key = stream_key;
                            play = Some(request_id);
                        }
                        Output::Event(_) => {}
                    }
                }
                if let Some(request_id) = play {
                    session.accept(request_id).unwrap();
                    // SPS, PPS and an IDR slice (Annex-B), as the hub hands them out.
                    let mut au = vec![0, 0, 0, 1];
                    au.extend_from_slice(&[0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47]);
                    au.extend_from_slice(&[0xfe, 0xc8, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
                    au.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0x84]);
                    let frame = Frame {
                        track: TrackId(0),
                        codec: Codec::H264,
                        pts: Ts90(3600),
                        dts: Ts90(0),
                        keyframe: true,
                        session: SessionId(0),
                        arrival: Instant::now(),
                        payload: Bytes::from(au),
                        config: None,
                    };
                    let _ = session.send_media(&frame).unwrap();
                    continue;
                }
                match socket.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if session.handle_input(Instant::now(), &buf[..n]).is_err() {
                            break;
                        }
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => break,
                }
            }
            key
        })
    }

    #[test]
    fn rtmp_play_returns_the_frames_and_the_wire_tags() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = serve_one_keyframe(listener);
        let url = format!("rtmp://127.0.0.1:{port}/live/cam");
        let played = rtmp_play(&url, Duration::from_millis(500)).unwrap();
        assert!(played.started_at.is_some());
        assert_eq!(played.frames.len(), 1, "{played:?}");
        let frame = &played.frames[0];
        assert_eq!((frame.codec, frame.keyframe), (Codec::H264, true));
        assert_eq!((frame.dts, frame.pts), (Ts90(0), Ts90(3600)));
        // On the wire: the AVC sequence header, then the keyframe (legacy FLV, codec 7).
        let video: Vec<_> = played
            .tags
            .iter()
            .filter(|t| t.kind == TagKind::Video)
            .collect();
        assert_eq!(video.len(), 2, "{:?}", played.tags);
        assert_eq!(video[0].head[..2], [0x17, 0]);
        assert_eq!(video[1].head[..2], [0x17, 1]);
        assert!(!video[1].is_enhanced_video());
        assert_eq!(video[1].frame_type(), Some(1));
        drop(played);
        assert_eq!(server.join().unwrap(), "cam");
    }

    #[test]
    fn rtmp_play_fails_when_nothing_listens() {
        let port = crate::free_tcp_port();
        let error = rtmp_play(
            &format!("rtmp://127.0.0.1:{port}/live/cam"),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(format!("{error:#}").contains("connecting"), "{error:#}");
    }

    /// A fmt-0 message split over 128-byte chunks, then Set Chunk Size, then a fmt-1 message
    /// and a fmt-3 message reusing its delta.
    #[test]
    fn the_wire_reader_reassembles_messages_over_any_split() {
        let mut stream = vec![3u8; 1 + 2 * 1536];
        let video: Vec<u8> = (0..300u32).map(|i| i as u8 | 0x80).collect();
        // fmt 0, csid 6: ts 1000, len 300, type 9, stream 1.
        stream.extend_from_slice(&[0x06, 0, 0x03, 0xe8, 0, 0x01, 0x2c, 9, 1, 0, 0, 0]);
        stream.extend_from_slice(&video[..128]);
        stream.push(0xc6);
        stream.extend_from_slice(&video[128..256]);
        stream.push(0xc6);
        stream.extend_from_slice(&video[256..]);
        // Set Chunk Size 4096 on csid 2.
        stream.extend_from_slice(&[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0x10, 0]);
        // fmt 1, csid 4: delta 23, len 3, type 8; then fmt 3: another with the same delta.
        stream.extend_from_slice(&[0x44, 0, 0, 23, 0, 0, 3, 8, 0xaf, 1, 7]);
        stream.extend_from_slice(&[0xc4, 0xaf, 1, 8]);

        for split in [1, 7, 100, stream.len()] {
            let mut reader = WireReader::new();
            let now = Instant::now();
            for piece in stream.chunks(split) {
                reader.feed(piece, now).unwrap();
            }
            let tags = &reader.tags;
            assert_eq!(tags.len(), 3, "split {split}: {tags:?}");
            assert_eq!(
                (tags[0].kind, tags[0].timestamp, tags[0].len),
                (TagKind::Video, 1000, 300)
            );
            assert_eq!(tags[0].head, video[..16]);
            assert!(tags[0].is_enhanced_video());
            assert_eq!(
                (tags[1].kind, tags[1].timestamp, tags[1].len),
                (TagKind::Audio, 23, 3)
            );
            assert_eq!(
                (tags[2].timestamp, &tags[2].head[..]),
                (46, &[0xaf, 1, 8][..])
            );
            assert_eq!(reader.chunk_size, 4096);
        }
    }
}
