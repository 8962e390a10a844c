//! The rig every suite shares: a router backed by a real hub and intakes, the listener on an
//! ephemeral port, FFmpeg publishers and players, and an RTMP client of our own over TCP.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use tributary_hub::{
    BufferConfig, BufferId, Delivery, Hub, Intake, Port, PortKey, SessionReason, SubscribeFrom,
    Subscriber,
};
use tributary_media::{Codec, Frame, SessionId, StreamCode, TrackConfig, TrackId, Ts90};
use tributary_rtmp::{ClientConfig, ClientEvent, ClientIntent, ClientSession, Output};
use tributary_serve::{
    PlayGrant, PlayRequest, Protocol, PublishEnd, PublishGrant, PublishGuard, PublishRequest,
    Refusal, Router, RtmpListener, RtmpListenerConfig, start_rtmp,
};
use tributary_testkit::{ClipSpec, cached_clip, ffmpeg};

/// A router over a real hub: each known code has a buffer fed by an intake with one selected
/// port, its push input. Routing as SPEC §Publisher says: a path names stream P if it exists,
/// else P minus a leading `live/`.
pub(crate) struct TestRouter {
    pub(crate) hub: Hub,
    streams: Mutex<HashMap<String, Slot>>,
    /// Every publish request's key, in order (to check the split).
    pub(crate) keys: Mutex<Vec<Option<String>>>,
    /// Play requests seen.
    pub(crate) plays: AtomicU64,
    /// Why each publisher left, in order.
    pub(crate) ends: Arc<Mutex<Vec<PublishEnd>>>,
    /// The stop signal of every granted play, in order: firing one disconnects that player.
    pub(crate) play_stops: Mutex<Vec<CancellationToken>>,
}

struct Slot {
    code: StreamCode,
    _intake: Intake,
    port: Port,
    /// Whether a publisher holds the slot; cleared by its guard.
    live: Arc<AtomicBool>,
}

/// Records why a publisher left, and frees its slot.
struct LiveGuard {
    live: Arc<AtomicBool>,
    ends: Arc<Mutex<Vec<PublishEnd>>>,
}

impl PublishGuard for LiveGuard {
    fn ended(self: Box<Self>, end: PublishEnd) {
        self.ends.lock().unwrap().push(end);
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.live.store(false, Ordering::SeqCst);
    }
}

impl TestRouter {
    pub(crate) fn new(codes: &[&str]) -> Arc<Self> {
        let hub = Hub::new();
        let mut streams = HashMap::new();
        for code in codes {
            let code: StreamCode = code.parse().unwrap();
            let config = BufferConfig {
                normalise: true,
                ..BufferConfig::default()
            };
            let writer = hub
                .create_with(BufferId::Stream(code.clone()), config)
                .unwrap();
            let intake = Intake::new(writer);
            let port = intake.add_port(PortKey(0), false).unwrap();
            intake.select(PortKey(0), SessionReason::Fresh).unwrap();
            streams.insert(
                code.as_str().to_owned(),
                Slot {
                    code,
                    _intake: intake,
                    port,
                    live: Arc::new(AtomicBool::new(false)),
                },
            );
        }
        Arc::new(Self {
            hub,
            streams: Mutex::new(streams),
            keys: Mutex::new(Vec::new()),
            plays: AtomicU64::new(0),
            ends: Arc::new(Mutex::new(Vec::new())),
            play_stops: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn buffer(code: &str) -> BufferId {
        BufferId::Stream(code.parse().unwrap())
    }

    /// A reader of `code`'s buffer from the next frame written.
    pub(crate) fn subscribe(&self, code: &str) -> Subscriber {
        self.hub
            .subscribe(&Self::buffer(code), SubscribeFrom::Now, "test")
            .unwrap()
    }

    pub(crate) fn is_live(&self, code: &str) -> bool {
        self.streams.lock().unwrap()[code]
            .live
            .load(Ordering::SeqCst)
    }

    fn route<'a>(streams: &'a HashMap<String, Slot>, path: &str) -> Option<&'a Slot> {
        streams
            .get(path)
            .or_else(|| streams.get(path.strip_prefix("live/")?))
    }
}

impl Router for TestRouter {
    fn publish(&self, request: PublishRequest) -> Result<PublishGrant, Refusal> {
        assert_eq!(request.protocol, Protocol::Rtmp);
        assert!(request.peer.ip().is_loopback());
        self.keys.lock().unwrap().push(request.key.clone());
        let streams = self.streams.lock().unwrap();
        let Some(slot) = Self::route(&streams, &request.path) else {
            return Err(Refusal::NotFound(format!("no stream at {}", request.path)));
        };
        if slot.live.swap(true, Ordering::SeqCst) {
            return Err(Refusal::Busy(format!("{} has a publisher", slot.code)));
        }
        Ok(PublishGrant {
            code: slot.code.clone(),
            port: slot.port.clone(),
            guard: Box::new(LiveGuard {
                live: Arc::clone(&slot.live),
                ends: Arc::clone(&self.ends),
            }),
        })
    }

    fn play(&self, request: PlayRequest) -> Result<PlayGrant, Refusal> {
        self.plays.fetch_add(1, Ordering::SeqCst);
        let streams = self.streams.lock().unwrap();
        let Some(slot) = Self::route(&streams, &request.path) else {
            return Err(Refusal::NotFound(format!("no stream at {}", request.path)));
        };
        self.play_stops.lock().unwrap().push(request.stop);
        Ok(PlayGrant {
            code: slot.code.clone(),
            hub: self.hub.clone(),
            buffer: BufferId::Stream(slot.code.clone()),
            guard: Box::new(()),
            bytes: tributary_serve::ByteMeter::default(),
        })
    }
}

/// The listener on 127.0.0.1:0 with the test router.
pub(crate) struct Server {
    pub(crate) router: Arc<TestRouter>,
    pub(crate) listener: RtmpListener,
}

impl Server {
    pub(crate) async fn start(codes: &[&str], tweak: impl FnOnce(&mut RtmpListenerConfig)) -> Self {
        init_tracing();
        let router = TestRouter::new(codes);
        let mut config = RtmpListenerConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            ..RtmpListenerConfig::default()
        };
        tweak(&mut config);
        let listener = start_rtmp(config, Arc::clone(&router) as Arc<dyn Router>)
            .await
            .expect("binding the RTMP listener");
        Self { router, listener }
    }

    /// `rtmp://127.0.0.1:PORT/<path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("rtmp://{}/{path}", self.listener.local_addr())
    }

    /// Waits until the listener's counters satisfy `ready`.
    pub(crate) async fn wait_stats(
        &self,
        timeout: Duration,
        what: &str,
        ready: impl Fn(&tributary_serve::ListenerStats) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            let stats = self.listener.stats();
            if ready(&stats) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; stats: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Waits until `ready` holds, polling every 20 ms; panics after `timeout` naming `what`.
pub(crate) async fn wait_for(timeout: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The 10 s 720p30 H.264 (2 B-frames, 2 s GOP) + AAC clip, as MP4.
pub(crate) fn clip() -> PathBuf {
    let spec = ClipSpec {
        bframes: 2,
        ..ClipSpec::default()
    };
    cached_clip(&spec, "mp4").expect("making the test clip with FFmpeg (is ffmpeg installed?)")
}

/// `ffmpeg -re -stream_loop -1 -i clip.mp4 -c copy -f flv <url>`: a live RTMP publisher,
/// killed on drop.
pub(crate) fn publish(url: &str) -> Child {
    let mut command = Command::from(ffmpeg());
    command
        .args(["-re", "-stream_loop", "-1", "-i"])
        .arg(clip())
        .args(["-c", "copy", "-f", "flv", url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command.spawn().expect("starting ffmpeg to publish")
}

/// What an FFmpeg player decoding `url` for `seconds` said: its error output (empty when the
/// decode was clean) and the frames it decoded.
pub(crate) async fn ffmpeg_play(url: &str, seconds: u32) -> (String, u64) {
    let mut command = Command::from(ffmpeg());
    command
        .args(["-rw_timeout", "10000000", "-i", url])
        .args(["-t", &seconds.to_string(), "-f", "null", "-"])
        .args(["-progress", "pipe:1", "-nostats"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("starting ffmpeg to play");
    let limit = Duration::from_secs(u64::from(seconds) + 30);
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("ffmpeg playing {url} did not finish within {limit:?}"))
        .expect("waiting for ffmpeg");
    let mut errors = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        errors.push_str(&format!("ffmpeg exited with {}\n", output.status));
    }
    let progress = String::from_utf8_lossy(&output.stdout);
    let frames = progress
        .lines()
        .filter_map(|line| line.strip_prefix("frame="))
        .filter_map(|n| n.trim().parse().ok())
        .next_back()
        .unwrap_or(0);
    (errors, frames)
}

/// Frames from `sub` until `done` says enough; panics after `timeout`.
pub(crate) async fn collect(
    sub: &mut Subscriber,
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&[Frame]) -> bool,
) -> Vec<Frame> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut frames = Vec::new();
    while !done(&frames) {
        match tokio::time::timeout_at(deadline, sub.recv()).await {
            Ok(Some(Delivery::Frame(frame))) => frames.push(frame),
            Ok(Some(Delivery::Lagged { .. })) => {}
            Ok(None) => panic!("buffer closed while waiting for {what}"),
            Err(_) => panic!(
                "timed out after {timeout:?} waiting for {what}; got {} frames",
                frames.len()
            ),
        }
    }
    frames
}

/// Our own RTMP client over a TCP connection, driven by hand.
pub(crate) struct Client {
    pub(crate) socket: TcpStream,
    pub(crate) session: ClientSession,
    buf: Vec<u8>,
}

impl Client {
    /// Connects to `url` (`rtmp://127.0.0.1:PORT/app/name`) for `intent`.
    pub(crate) async fn connect(url: &str, intent: ClientIntent) -> Self {
        let socket = connect_tcp(url).await;
        Self::over(socket, url, intent)
    }

    /// A client over an already connected socket.
    pub(crate) fn over(socket: TcpStream, url: &str, intent: ClientIntent) -> Self {
        let config = ClientConfig::from_url(url, intent).expect("an rtmp:// URL");
        let session = ClientSession::new(config, [7; 32], Instant::now());
        Self {
            socket,
            session,
            buf: vec![0; 64 * 1024],
        }
    }

    /// Writes what the session has queued; returns its events.
    pub(crate) async fn flush(&mut self) -> Vec<ClientEvent> {
        let mut events = Vec::new();
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::Transmit(bytes) => self.socket.write_all(&bytes).await.expect("write"),
                Output::Event(event) => events.push(event),
            }
        }
        events
    }

    /// Flushes, reads once (within `timeout`) and returns the events; `Err` is the session's
    /// verdict on what it read, or `Ok(None)` at EOF.
    pub(crate) async fn step(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Vec<ClientEvent>>, tributary_rtmp::Error> {
        let mut events = self.flush().await;
        let n = tokio::time::timeout(timeout, self.socket.read(&mut self.buf))
            .await
            .expect("the server said nothing in time")
            .unwrap_or(0);
        if n == 0 {
            return Ok(None);
        }
        self.session.handle_input(Instant::now(), &self.buf[..n])?;
        events.extend(self.flush().await);
        Ok(Some(events))
    }

    /// Steps until an event satisfies `wanted`; the events seen so far come back with it.
    pub(crate) async fn until(
        &mut self,
        what: &str,
        mut wanted: impl FnMut(&ClientEvent) -> bool,
    ) -> Result<Vec<ClientEvent>, tributary_rtmp::Error> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut seen = Vec::new();
        loop {
            assert!(Instant::now() < deadline, "no {what} within 15 s");
            let Some(events) = self.step(Duration::from_secs(15)).await? else {
                panic!("the server closed the connection before {what}; saw {seen:?}");
            };
            for event in events {
                let done = wanted(&event);
                seen.push(event);
                if done {
                    return Ok(seen);
                }
            }
        }
    }

    /// Sends one frame (publish) and writes it out.
    pub(crate) async fn send(&mut self, frame: &Frame) {
        let _ = self.session.send_media(frame).expect("send_media");
        self.flush().await;
    }
}

pub(crate) async fn connect_tcp(url: &str) -> TcpStream {
    let rest = url.strip_prefix("rtmp://").unwrap();
    let host = rest.split('/').next().unwrap();
    TcpStream::connect(host)
        .await
        .expect("connecting to the listener")
}

/// Reads until EOF or a reset; panics if the connection is still open after `timeout`.
pub(crate) async fn expect_closed(socket: &mut TcpStream, timeout: Duration, what: &str) {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => panic!("{what}: the server kept the connection open for {timeout:?}"),
        }
    }
}

/// A tiny H.264 keyframe (SPS, PPS, IDR slice, Annex-B) at `ms` milliseconds.
pub(crate) fn keyframe(ms: i64) -> Frame {
    let mut au = vec![
        0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8,
    ];
    au.extend_from_slice(&[
        0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 0, 1, 0x65, 0x88, 0x84,
    ]);
    Frame {
        track: TrackId(0),
        codec: Codec::H264,
        pts: Ts90(ms * 90),
        dts: Ts90(ms * 90),
        keyframe: true,
        session: SessionId(0),
        arrival: Instant::now(),
        payload: Bytes::from(au),
        config: None,
    }
}

/// A tiny AAC frame (LC, 48 kHz stereo) at `ms` milliseconds: with [`keyframe`], the partner
/// track that lets the buffer's normaliser release the first frames at once.
pub(crate) fn audio(ms: i64) -> Frame {
    let config = TrackConfig::aac(Bytes::from_static(&[0x11, 0x90])).expect("an AAC-LC ASC");
    Frame {
        track: TrackId(1),
        codec: Codec::Aac,
        pts: Ts90(ms * 90),
        dts: Ts90(ms * 90),
        keyframe: true,
        session: SessionId(0),
        arrival: Instant::now(),
        payload: Bytes::from_static(&[0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c]),
        config: Some(Arc::new(config)),
    }
}

/// NAL unit types of an Annex-B H.264 access unit.
pub(crate) fn nal_types(payload: &[u8]) -> Vec<u8> {
    tributary_media::codec::nal::annex_b_nals(payload)
        .filter_map(|nal| nal.first().map(|b| b & 0x1f))
        .collect()
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tributary_serve=info".into()),
        )
        .with_test_writer()
        .try_init();
}
