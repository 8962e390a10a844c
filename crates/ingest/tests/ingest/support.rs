//! The hub rig, clips, an in-test HTTP server and frame checks shared by the suites.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tributary_domain::protocol::DetectContext;
use tributary_domain::spec::ParsedInput;
use tributary_hub::{
    BufferId, Delivery, Hub, Intake, Port, PortKey, SessionReason, SubscribeFrom, Subscriber,
};
use tributary_ingest::{IngestConfig, IngestContext, Worker, spawn_with};
use tributary_media::codec::nal::annex_b_nals;
use tributary_media::{Codec, Frame};
use tributary_testkit::{ClipSpec, cached_clip};

/// `input` as the edge parses it.
pub(crate) fn parse(input: &tributary_domain::Input) -> ParsedInput {
    ParsedInput::parse(input, DetectContext::default()).expect("a valid input")
}

/// A stream with one selected input port and a subscriber reading its buffer.
pub(crate) struct Rig {
    /// Kept so the buffer lives as long as the rig.
    pub(crate) _hub: Hub,
    pub(crate) _intake: Intake,
    pub(crate) port: Port,
    pub(crate) sub: Subscriber,
}

impl Rig {
    pub(crate) fn new() -> Self {
        let hub = Hub::new();
        let id = BufferId::Stream("ingest-test".parse().unwrap());
        let intake = Intake::new(hub.create(id.clone(), 8192).unwrap());
        let port = intake.add_port(PortKey(0), false).unwrap();
        intake.select(PortKey(0), SessionReason::Fresh).unwrap();
        let sub = hub.subscribe(&id, SubscribeFrom::Now, "test").unwrap();
        Self {
            _hub: hub,
            _intake: intake,
            port,
            sub,
        }
    }

    /// Starts a worker for `url` on the rig's port.
    pub(crate) fn spawn(&self, url: &str) -> Worker {
        self.spawn_input(
            &tributary_domain::Input::new(url, 0),
            &IngestConfig::default(),
        )
    }

    pub(crate) fn spawn_input(
        &self,
        input: &tributary_domain::Input,
        config: &IngestConfig,
    ) -> Worker {
        let ctx = IngestContext {
            code: "ingest-test".parse().unwrap(),
            priority: 0,
        };
        spawn_with(ctx, &parse(input), self.port.clone(), config).expect("spawn the worker")
    }

    /// Frames until `done` says enough (it sees all so far); panics after `timeout`.
    pub(crate) async fn collect(
        &mut self,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut(&[Frame]) -> bool,
    ) -> Vec<Frame> {
        let deadline = Instant::now() + timeout;
        let mut frames = Vec::new();
        while !done(&frames) {
            let delivery = tokio::time::timeout_at(deadline, self.sub.recv()).await;
            match delivery {
                Ok(Some(Delivery::Frame(frame))) => frames.push(frame),
                Ok(Some(Delivery::Lagged { dropped })) => panic!("subscriber lagged by {dropped}"),
                Ok(None) => panic!("buffer closed while waiting for {what}"),
                Err(_) => panic!(
                    "timed out after {timeout:?} waiting for {what}: {} frames, errors {:?}",
                    frames.len(),
                    self.errors()
                ),
            }
        }
        frames
    }

    /// The errors reported on the port (the latest few).
    pub(crate) fn errors(&self) -> Vec<String> {
        self.port
            .health()
            .recent_errors
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    /// Waits for an error containing `needle`; returns its message.
    pub(crate) async fn wait_error(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.errors().into_iter().find(|e| e.contains(needle)) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no error containing {needle:?} within {timeout:?}; errors: {:?}",
                self.errors()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A 640x360 30 fps H.264 + AAC clip of `seconds`, one keyframe a second, in the container
/// `ext` names (encoded once per run and cached; fails clearly without FFmpeg).
pub(crate) fn clip(seconds: u32, ext: &str) -> PathBuf {
    let spec = ClipSpec {
        width: 640,
        height: 360,
        fps: 30,
        seconds,
        gop: 30,
        ..ClipSpec::default()
    };
    cached_clip(&spec, ext).unwrap_or_else(|e| panic!("making a test clip with FFmpeg: {e:#}"))
}

/// Checks the frames hold H.264 keyframes that start with SPS and PPS, and AAC frames with
/// their AudioSpecificConfig.
pub(crate) fn assert_av(frames: &[Frame]) {
    let keyframes: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.codec == Codec::H264 && f.keyframe)
        .collect();
    assert!(
        !keyframes.is_empty(),
        "no H.264 keyframe in {} frames",
        frames.len()
    );
    for key in keyframes {
        let types: Vec<u8> = annex_b_nals(&key.payload).map(|n| n[0] & 0x1F).collect();
        assert!(
            types.contains(&7) && types.contains(&8) && types.contains(&5),
            "keyframe NAL types {types:?} lack SPS/PPS/IDR"
        );
    }
    let aac: Vec<&Frame> = frames.iter().filter(|f| f.codec == Codec::Aac).collect();
    assert!(!aac.is_empty(), "no AAC frame in {} frames", frames.len());
    for frame in aac {
        let config = frame.config.as_ref().expect("AAC frame without its config");
        assert_eq!(config.info.sample_rate, Some(48_000));
        assert!(!config.decoder_config.is_empty());
    }
}

/// Whether the frames hold a video keyframe and some audio.
pub(crate) fn has_av(frames: &[Frame]) -> bool {
    frames.iter().any(|f| f.codec == Codec::H264 && f.keyframe)
        && frames.iter().filter(|f| f.codec == Codec::Aac).count() >= 10
}

/// What the in-test server answers for a path.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// 200 with this body, then the connection closes.
    Body(Arc<Vec<u8>>),
    /// A redirect to this location.
    Redirect(String),
    /// This status, empty body.
    Status(u16),
}

/// A tiny HTTP/1.1 server on 127.0.0.1: one request per connection, answers from a table;
/// unknown paths get 404. Records each request's head.
pub(crate) struct Server {
    pub(crate) base: String,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    requests: Arc<Mutex<Vec<String>>>,
    count: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let count = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let (routes, requests, count) = (routes.clone(), requests.clone(), count.clone());
            async move {
                loop {
                    let Ok((mut stream, _)) = listener.accept().await else {
                        return;
                    };
                    let (routes, requests, count) =
                        (routes.clone(), requests.clone(), count.clone());
                    tokio::spawn(async move {
                        let mut head = Vec::new();
                        let mut byte = [0u8; 1];
                        while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
                            match stream.read(&mut byte).await {
                                Ok(1) => head.push(byte[0]),
                                _ => return,
                            }
                        }
                        let head = String::from_utf8_lossy(&head).into_owned();
                        let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                        count.fetch_add(1, Ordering::SeqCst);
                        requests.lock().unwrap().push(head);
                        let reply = routes.lock().unwrap().get(&path).cloned();
                        let (status, extra, body): (u16, String, Arc<Vec<u8>>) = match reply {
                            Some(Reply::Body(body)) => (200, String::new(), body),
                            Some(Reply::Redirect(to)) => {
                                (302, format!("Location: {to}\r\n"), Arc::default())
                            }
                            Some(Reply::Status(status)) => (status, String::new(), Arc::default()),
                            None => (404, String::new(), Arc::default()),
                        };
                        let head = format!(
                            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(head.as_bytes()).await;
                        let _ = stream.write_all(&body).await;
                        let _ = stream.shutdown().await;
                    });
                }
            }
        });
        Self {
            base,
            routes,
            requests,
            count,
            task,
        }
    }

    pub(crate) fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_owned(), reply);
    }

    /// Serves every file of `dir` under `prefix` (`/hls/index.m3u8`, ...).
    pub(crate) fn serve_dir(&self, prefix: &str, dir: &Path) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let body = std::fs::read(&path).unwrap();
            self.route(&format!("{prefix}/{name}"), Reply::Body(Arc::new(body)));
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The heads of the requests so far.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
