//! Coordinator tests with recording fakes of every service, one file per concern: starting
//! a stream (`start`), routing an update to the services it touches (`update`), the per-stream
//! actors (`actors`), the stored record and the reconciler (`store`), templates (`templates`).
//! The fakes and the rig live here.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::AtomicI64;

use tokio_util::sync::CancellationToken;
use tributary_domain::diff::Output;
use tributary_domain::event::{EventType, StreamStatus};
use tributary_domain::spec::{PushSpec, StreamSpec};
use tributary_domain::validate::Support;
use tributary_domain::{
    Dvr, Input, Protocols, Push, Stream, Transcoder, TranscoderMode, VideoProfile,
};
use tributary_store::SqliteStore;

use super::apply::output_name;
use super::*;
use crate::services::{
    BufferKind, BufferService, DvrService, InputService, OutputService, ServiceError,
    ThumbnailService, TranscodeService,
};
use crate::supported::Supported;

mod actors;
mod start;
mod store;
mod templates;
mod update;

/// Records every service call as a line, and fails the calls named in `fail`.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
    fail: Mutex<HashSet<String>>,
    /// Pipelines started minus stopped (input registrations), to catch double starts.
    live: AtomicI64,
    max_live: AtomicI64,
}

impl Recorder {
    fn call(&self, line: String) -> Result<(), ServiceError> {
        let failing = self.fail.lock().unwrap().contains(&line);
        self.calls.lock().unwrap().push(line.clone());
        if failing {
            Err(ServiceError::Unsupported("a call the test refuses"))
        } else {
            Ok(())
        }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    fn fail(&self, line: &str) {
        self.fail.lock().unwrap().insert(line.to_owned());
    }

    fn heal(&self) {
        self.fail.lock().unwrap().clear();
    }
}

fn buffers_text(buffers: &[BufferKind]) -> String {
    buffers
        .iter()
        .map(|b| match b {
            BufferKind::Main => "main".to_owned(),
            BufferKind::Raw => "raw".to_owned(),
            BufferKind::Rendition(i) => format!("r{i}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl BufferService for Recorder {
    fn create(&self, _: &StreamCode, buffers: &[BufferKind]) -> Result<(), ServiceError> {
        self.call(format!("buffers.create {}", buffers_text(buffers)))
    }
    fn delete(&self, _: &StreamCode, buffers: &[BufferKind]) {
        let _ = self.call(format!("buffers.delete {}", buffers_text(buffers)));
    }
}

impl InputService for Recorder {
    fn register(&self, s: &StreamSpec) -> Result<(), ServiceError> {
        self.call(format!("inputs.register {}", s.inputs().len()))?;
        let live = self.live.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_live.fetch_max(live, Ordering::SeqCst);
        Ok(())
    }
    fn update_inputs(&self, _: &StreamSpec, new: &StreamSpec) -> Result<(), ServiceError> {
        self.call(format!("inputs.update {}", new.inputs().len()))
    }
    fn set_stream_key(&self, _: &StreamCode, key: &str) {
        let _ = self.call(format!("inputs.stream_key {key}"));
    }
    fn unregister(&self, _: &StreamCode) {
        let _ = self.call("inputs.unregister".into());
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl OutputService for Recorder {
    fn start_output(&self, _: &Stream, o: Output) -> Result<(), ServiceError> {
        self.call(format!("outputs.start {}", output_name(o)))
    }
    fn stop_output(&self, _: &StreamCode, o: Output) {
        let _ = self.call(format!("outputs.stop {}", output_name(o)));
    }
    fn ladder_changed(&self, s: &Stream) {
        let rungs = s.transcoder.as_ref().map_or(0, |t| t.video.profiles.len());
        let _ = self.call(format!("outputs.ladder {rungs}"));
    }
    fn start_push(&self, _: &StreamCode, p: &PushSpec) -> Result<(), ServiceError> {
        self.call(format!("push.start {}", p.push.url))
    }
    fn stop_push(&self, _: &StreamCode, url: &str) {
        let _ = self.call(format!("push.stop {url}"));
    }
}

impl TranscodeService for Recorder {
    fn start(&self, s: &StreamSpec) -> Result<Vec<String>, ServiceError> {
        let rungs = s
            .stream()
            .transcoder
            .as_ref()
            .map_or(0, |t| t.video.profiles.len());
        self.call(format!("transcoder.start {rungs}"))?;
        // An image watermark naming a library asset this fake does not hold: the real
        // service's warning, for the coordinator's reporting of it.
        let missing = s
            .stream()
            .watermark
            .as_ref()
            .filter(|w| w.enabled && w.asset_id == "missing");
        Ok(missing
            .map(|_| vec!["watermark off for this run: asset_id \"missing\"".to_owned()])
            .unwrap_or_default())
    }
    fn stop(&self, _: &StreamCode) {
        let _ = self.call("transcoder.stop".into());
    }
    fn stop_to_ingest(&self, _: &StreamCode) {
        let _ = self.call("transcoder.stop_to_ingest".into());
    }
    fn restart_rung(&self, _: &StreamSpec, i: usize) -> Result<(), ServiceError> {
        self.call(format!("transcoder.restart_rung {i}"))
    }
    fn add_rung(&self, _: &StreamSpec, i: usize) -> Result<(), ServiceError> {
        self.call(format!("transcoder.add_rung {i}"))
    }
    fn remove_rung(&self, _: &StreamCode, i: usize) {
        let _ = self.call(format!("transcoder.remove_rung {i}"));
    }
}

impl DvrService for Recorder {
    fn start(&self, _: &Stream) -> Result<(), ServiceError> {
        self.call("dvr.start".into())
    }
    fn stop(&self, _: &StreamCode) {
        let _ = self.call("dvr.stop".into());
    }
    fn apply(&self, _: &Stream) {
        let _ = self.call("dvr.apply".into());
    }
}

impl ThumbnailService for Recorder {
    fn start(&self, _: &Stream) -> Result<(), ServiceError> {
        self.call("thumbnails.start".into())
    }
    fn stop(&self, _: &StreamCode) {
        let _ = self.call("thumbnails.stop".into());
    }
}

struct Rig {
    coordinator: Coordinator,
    recorder: Arc<Recorder>,
    store: Arc<SqliteStore>,
    events: EventBus,
}

fn rig() -> Rig {
    let recorder = Arc::new(Recorder::default());
    let services = Services {
        buffers: recorder.clone(),
        inputs: recorder.clone(),
        outputs: recorder.clone(),
        transcoder: recorder.clone(),
        dvr: recorder.clone(),
        thumbnails: recorder.clone(),
    };
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let events = EventBus::new();
    let coordinator = Coordinator::new(
        services,
        store.clone(),
        events.clone(),
        Arc::new(supported()),
        Duration::from_secs(120),
    );
    Rig {
        coordinator,
        recorder,
        store,
        events,
    }
}

/// Every feature the fakes stand in for.
fn supported() -> Supported {
    Supported::with(
        Support::everything(),
        tributary_domain::roots::LiveRoots::default(),
    )
}

/// `s` as the API hands it over: parsed.
fn spec(s: Stream) -> StreamSpec {
    supported().parse(s).expect("a valid test stream").0
}

fn base() -> Stream {
    let mut s = Stream::new(StreamCode::parse("cam").unwrap());
    s.inputs = vec![Input::new("udp://:5000", 0)];
    s
}

fn transcoded(mode: TranscoderMode, rungs: u32) -> Stream {
    let mut s = base();
    let mut t = Transcoder {
        mode,
        ..Transcoder::default()
    };
    t.video.profiles = (0..rungs)
        .map(|i| VideoProfile {
            width: 640 * (i + 1),
            bitrate: 1000 * (i + 1),
            ..VideoProfile::default()
        })
        .collect();
    s.transcoder = Some(t);
    s
}

impl Rig {
    /// Stores `s` whatever its revision and converges on it, as a PUT does.
    async fn put(&self, s: &Stream) -> PutOutcome {
        let put = self.coordinator.put(spec(s.clone()), Expect::Any).await;
        put.expect("the store takes the record")
    }

    /// [`put`](Self::put)'s apply result.
    async fn apply(&self, s: &Stream) -> Result<Applied, CoordError> {
        self.put(s).await.applied
    }

    /// Stores `s` disabled, which stops it.
    async fn stop(&self, s: &Stream) -> Applied {
        let mut off = s.clone();
        off.disabled = true;
        self.apply(&off).await.unwrap()
    }
}

async fn started(rig: &Rig, s: &Stream) {
    rig.apply(s).await.unwrap();
    rig.recorder.take();
}
