//! Coordinator routing tests with recording fakes of every service.

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

/// Records every service call as a line, and fails the calls named in `fail`.
#[derive(Default)]
pub(super) struct Recorder {
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

    pub(super) fn take(&self) -> Vec<String> {
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

pub(super) struct Rig {
    pub(super) coordinator: Coordinator,
    pub(super) recorder: Arc<Recorder>,
    pub(super) store: Arc<SqliteStore>,
    events: EventBus,
}

pub(super) fn rig() -> Rig {
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
pub(super) fn supported() -> Supported {
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
    /// Stores `s` and converges on it, as a PUT does; the apply's result.
    async fn apply(&self, s: &Stream) -> Result<Applied, CoordError> {
        let outcome = self
            .coordinator
            .put(spec(s.clone()), Expect::Any)
            .await
            .unwrap();
        outcome.applied
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

#[tokio::test]
async fn start_creates_in_order_and_is_idempotent() {
    let rig = rig();
    let mut s = transcoded(TranscoderMode::PerProfile, 2);
    s.protocols = Some(Protocols {
        hls: true,
        rtmp: true,
        ..Protocols::default()
    });
    s.push = vec![Push {
        enabled: true,
        ..Push::new("rtmp://a/b/c")
    }];
    s.dvr = Some(Dvr {
        enabled: true,
        ..Dvr::default()
    });
    let applied = rig.apply(&s).await.unwrap();
    assert_eq!(applied.actions, vec![Action::Start]);
    assert_eq!(
        rig.recorder.take(),
        [
            "buffers.create main,raw,r0,r1",
            "inputs.register 1",
            "outputs.start hls",
            "outputs.start rtmp",
            "push.start rtmp://a/b/c",
            "transcoder.start 2",
            "dvr.start",
        ]
    );
    assert!(rig.coordinator.is_running(&s.code));
    assert_eq!(
        rig.coordinator.snapshot(&s.code).status,
        StreamStatus::Active
    );
    // Idempotent.
    let again = rig.apply(&s).await.unwrap();
    assert!(again.actions.is_empty());
    assert!(rig.recorder.take().is_empty());
    // Stop in reverse dependency order.
    rig.stop(&s).await;
    assert_eq!(
        rig.recorder.take(),
        [
            "dvr.stop",
            "push.stop rtmp://a/b/c",
            "outputs.stop rtmp",
            "outputs.stop hls",
            "transcoder.stop",
            "inputs.unregister",
            "buffers.delete main,raw,r0,r1",
        ]
    );
    assert_eq!(
        rig.coordinator.snapshot(&s.code).status,
        StreamStatus::Stopped
    );
    // Stopping a stopped stream is a no-op.
    assert!(rig.stop(&s).await.actions.is_empty());
    assert!(rig.recorder.take().is_empty());
}

#[tokio::test]
async fn disabled_and_inputless_streams_are_stored_but_not_started() {
    let rig = rig();
    let mut s = base();
    s.disabled = true;
    assert!(rig.apply(&s).await.unwrap().actions.is_empty());
    assert!(matches!(
        rig.coordinator.restart(&s.code).await,
        Err(CoordError::Disabled(_))
    ));
    s.disabled = false;
    s.inputs.clear();
    assert!(rig.apply(&s).await.unwrap().actions.is_empty());
    assert!(matches!(
        rig.coordinator.restart(&s.code).await,
        Err(CoordError::NoInputs(_))
    ));
    assert!(rig.recorder.take().is_empty());
}

#[tokio::test]
async fn publisher_start_failure_rolls_back_everything_created() {
    let rig = rig();
    let mut s = base();
    s.protocols = Some(Protocols {
        hls: true,
        rtmp: true,
        ..Protocols::default()
    });
    rig.recorder.fail("outputs.start rtmp");
    let err = rig.apply(&s).await.unwrap_err();
    assert!(
        matches!(
            &err,
            CoordError::Service {
                step: Step::Output(Output::Rtmp),
                source,
                ..
            } if matches!(**source, ServiceError::Unsupported(_))
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("output rtmp"), "{err}");
    assert_eq!(
        rig.recorder.take(),
        [
            "buffers.create main",
            "inputs.register 1",
            "outputs.start hls",
            "outputs.start rtmp",
            "outputs.stop hls",
            "inputs.unregister",
            "buffers.delete main",
        ]
    );
    assert!(!rig.coordinator.is_running(&s.code));
    assert!(rig.coordinator.snapshot(&s.code).last_error.is_some());
}

#[tokio::test]
async fn dvr_failure_is_a_warning_not_a_start_failure() {
    let rig = rig();
    let mut s = base();
    s.dvr = Some(Dvr {
        enabled: true,
        ..Dvr::default()
    });
    rig.recorder.fail("dvr.start");
    let applied = rig.apply(&s).await.unwrap();
    assert_eq!(applied.warnings.len(), 1);
    assert!(rig.coordinator.is_running(&s.code));
}

#[tokio::test]
async fn an_unknown_watermark_asset_is_a_start_warning_not_a_start_failure() {
    let rig = rig();
    let mut s = transcoded(TranscoderMode::Multi, 1);
    s.watermark = Some(tributary_domain::Watermark {
        enabled: true,
        kind: "image".into(),
        asset_id: "missing".into(),
        ..Default::default()
    });
    let applied = rig.apply(&s).await.unwrap();
    assert!(rig.coordinator.is_running(&s.code));
    assert_eq!(applied.warnings.len(), 1, "{:?}", applied.warnings);
    assert!(applied.warnings[0].contains("missing"));
    // Shown in runtime.warnings for the run, as the other start warnings.
    assert_eq!(rig.coordinator.snapshot(&s.code).warnings, applied.warnings);

    // An update naming an asset the library holds restarts the transcoder, whose new start
    // has nothing to warn about: the old warning goes with the old start.
    let mut fixed = s.clone();
    if let Some(w) = fixed.watermark.as_mut() {
        w.asset_id = "0123456789abcdef".into();
    }
    rig.recorder.take();
    let applied = rig.apply(&fixed).await.unwrap();
    assert!(
        rig.recorder
            .take()
            .contains(&"transcoder.start 1".to_owned()),
        "{applied:?}"
    );
    assert!(applied.warnings.is_empty(), "{:?}", applied.warnings);
    assert!(rig.coordinator.snapshot(&s.code).warnings.is_empty());
}

/// Runs `old` → `new` and returns the service calls the update made.
async fn route(old: Stream, new: Stream) -> Vec<String> {
    let rig = rig();
    started(&rig, &old).await;
    rig.apply(&new).await.unwrap();
    rig.recorder.take()
}

#[tokio::test]
async fn add_input_touches_only_the_manager() {
    let old = base();
    let mut new = base();
    new.inputs.push(Input::new("udp://:5001", 1));
    assert_eq!(route(old, new).await, ["inputs.update 2"]);
}

#[tokio::test]
async fn remove_active_input_touches_only_the_manager() {
    let mut old = base();
    old.inputs.push(Input::new("udp://:5001", 1));
    let mut new = base();
    new.inputs = vec![Input::new("udp://:5001", 0)];
    assert_eq!(route(old, new).await, ["inputs.update 1"]);
}

#[tokio::test]
async fn change_one_profile_restarts_that_rung_only() {
    let old = transcoded(TranscoderMode::PerProfile, 3);
    let mut new = old.clone();
    new.transcoder.as_mut().unwrap().video.profiles[1].bitrate = 1234;
    assert_eq!(route(old, new).await, ["transcoder.restart_rung 1"]);
}

#[tokio::test]
async fn add_and_remove_profiles_per_profile() {
    let old = transcoded(TranscoderMode::PerProfile, 2);
    let new = transcoded(TranscoderMode::PerProfile, 3);
    assert_eq!(
        route(old.clone(), new.clone()).await,
        ["buffers.create r2", "transcoder.add_rung 2"]
    );
    assert_eq!(
        route(new, old).await,
        ["transcoder.remove_rung 2", "buffers.delete r2"]
    );
}

#[tokio::test]
async fn ladder_changes_with_hls_on_tell_the_outputs_and_restart_nothing_else() {
    let with_hls = |mut s: Stream| {
        s.protocols = Some(Protocols {
            hls: true,
            ..Protocols::default()
        });
        s
    };
    let two = with_hls(transcoded(TranscoderMode::PerProfile, 2));
    let three = with_hls(transcoded(TranscoderMode::PerProfile, 3));
    let mut changed = two.clone();
    changed.transcoder.as_mut().unwrap().video.profiles[0].bitrate = 4321;
    assert_eq!(
        route(two.clone(), changed).await,
        ["transcoder.restart_rung 0", "outputs.ladder 2"]
    );
    assert_eq!(
        route(two.clone(), three.clone()).await,
        [
            "buffers.create r2",
            "transcoder.add_rung 2",
            "outputs.ladder 3"
        ]
    );
    assert_eq!(
        route(three, two).await,
        [
            "transcoder.remove_rung 2",
            "outputs.ladder 2",
            "buffers.delete r2"
        ]
    );
    let multi = with_hls(transcoded(TranscoderMode::Multi, 2));
    let mut multi_changed = multi.clone();
    multi_changed.transcoder.as_mut().unwrap().video.profiles[1].bitrate = 99;
    assert_eq!(
        route(multi, multi_changed).await,
        [
            "transcoder.stop",
            "buffers.delete ",
            "buffers.create ",
            "transcoder.start 2",
            "outputs.ladder 2"
        ]
    );
}

#[tokio::test]
async fn profile_change_in_multi_mode_restarts_the_single_ffmpeg() {
    let old = transcoded(TranscoderMode::Multi, 2);
    let new = transcoded(TranscoderMode::Multi, 3);
    assert_eq!(
        route(old, new).await,
        [
            "transcoder.stop",
            "buffers.delete ",
            "buffers.create r2",
            "transcoder.start 3"
        ]
    );
}

#[tokio::test]
async fn toggle_hls() {
    let old = base();
    let mut new = base();
    new.protocols = Some(Protocols {
        hls: true,
        ..Protocols::default()
    });
    assert_eq!(route(old.clone(), new.clone()).await, ["outputs.start hls"]);
    assert_eq!(route(new, old).await, ["outputs.stop hls"]);
}

#[tokio::test]
async fn add_push_target() {
    let old = base();
    let mut new = base();
    new.push = vec![Push {
        enabled: true,
        ..Push::new("rtmp://x/app/key")
    }];
    assert_eq!(route(old, new).await, ["push.start rtmp://x/app/key"]);
}

/// SPEC §Hot reload: a target's `profile` edited restarts that target only; a ladder edit
/// leaves the targets alone (a target whose rung goes away fails in the output service).
#[tokio::test]
async fn a_push_profile_change_restarts_only_that_target() {
    let target = |url: &str, profile: &str| Push {
        enabled: true,
        profile: profile.into(),
        ..Push::new(url)
    };
    let mut old = transcoded(TranscoderMode::Multi, 2);
    old.push = vec![
        target("rtmp://x/app/one", "track_2"),
        target("rtmp://x/app/two", ""),
    ];
    let mut new = old.clone();
    new.push[0].profile = "track_1".into();
    assert_eq!(
        route(old.clone(), new).await,
        ["push.stop rtmp://x/app/one", "push.start rtmp://x/app/one"]
    );

    let mut fewer = old.clone();
    fewer.push[0].profile = "track_1".into();
    fewer.transcoder.as_mut().unwrap().video.profiles.pop();
    let routed = route(old, fewer).await;
    assert!(
        routed.iter().all(|call| !call.contains("app/two")),
        "{routed:?}"
    );
    assert_eq!(
        routed
            .iter()
            .filter(|call| call.contains("app/one"))
            .count(),
        2,
        "{routed:?}"
    );
}

#[tokio::test]
async fn toggle_dvr() {
    let old = base();
    let mut new = base();
    new.dvr = Some(Dvr {
        enabled: true,
        ..Dvr::default()
    });
    assert_eq!(route(old.clone(), new.clone()).await, ["dvr.start"]);
    assert_eq!(route(new, old).await, ["dvr.stop"]);
}

#[tokio::test]
async fn disable_stops_everything() {
    let mut old = base();
    old.protocols = Some(Protocols {
        hls: true,
        ..Protocols::default()
    });
    let mut new = old.clone();
    new.disabled = true;
    assert_eq!(
        route(old, new).await,
        [
            "outputs.stop hls",
            "inputs.unregister",
            "buffers.delete main"
        ]
    );
}

#[tokio::test]
async fn passthrough_to_transcoding_moves_the_ingest_without_restarting_the_stream() {
    let mut old = base();
    old.protocols = Some(Protocols {
        hls: true,
        rtmp: true,
        ..Protocols::default()
    });
    let mut new = transcoded(TranscoderMode::Multi, 2);
    new.protocols = old.protocols;
    // The inputs stay registered and the RTMP output running: the raw buffer appears (the
    // intake moves to it), FFmpeg starts, HLS restarts on the ladder.
    assert_eq!(
        route(old.clone(), new.clone()).await,
        [
            "buffers.delete ",
            "buffers.create raw,r0,r1",
            "inputs.update 1",
            "transcoder.start 2",
            "outputs.stop hls",
            "outputs.start hls",
        ]
    );
    // And back: the transcoder hands the main buffer back to the ingest.
    assert_eq!(
        route(new, old).await,
        [
            "transcoder.stop_to_ingest",
            "buffers.delete raw,r0,r1",
            "buffers.create ",
            "inputs.update 1",
            "outputs.stop hls",
            "outputs.start hls",
        ]
    );
}

#[tokio::test]
async fn mode_change_reloads_the_transcoder_only() {
    let mut old = transcoded(TranscoderMode::Multi, 2);
    old.protocols = Some(Protocols {
        hls: true,
        rtmp: true,
        ..Protocols::default()
    });
    let mut new = transcoded(TranscoderMode::PerProfile, 2);
    new.protocols = old.protocols;
    assert_eq!(
        route(old, new).await,
        [
            "transcoder.stop",
            "buffers.delete ",
            "buffers.create ",
            "inputs.update 1",
            "transcoder.start 2",
            "outputs.stop hls",
            "outputs.start hls",
        ]
    );
}

#[tokio::test]
async fn metadata_only_change_restarts_nothing() {
    let old = base();
    let mut new = base();
    new.name = "New name".into();
    new.description = "d".into();
    new.tags = vec!["x".into()];
    new.stream_key = "k".into();
    // Nothing restarts; the manager only learns the key the next publish is checked against.
    assert_eq!(route(old, new).await, ["inputs.stream_key k"]);
}

#[tokio::test]
async fn a_stored_record_that_no_longer_parses_is_reported_not_run() {
    let rig = rig();
    let mut s = base();
    s.inputs = vec![Input::new("udp://:5000?pkt_size=0", 0)];
    // Written by another build, which took the option.
    rig.store.upsert(&s, Expect::Any).unwrap();
    let error = rig.coordinator.converge(&s.code).await.unwrap_err();
    assert!(
        matches!(&error, CoordError::Invalid { source, .. } if source.0[0].path == "inputs[0].url"),
        "{error}"
    );
    assert!(!rig.coordinator.is_running(&s.code));
    let last = rig.coordinator.snapshot(&s.code).last_error.unwrap();
    assert!(last.contains("pkt_size"), "{last}");
    assert!(rig.recorder.take().is_empty(), "nothing was started");
}

#[tokio::test]
async fn failed_update_ends_in_a_clean_stop() {
    let rig = rig();
    let old = base();
    started(&rig, &old).await;
    let mut new = base();
    new.protocols = Some(Protocols {
        hls: true,
        ..Protocols::default()
    });
    rig.recorder.fail("outputs.start hls");
    assert!(rig.apply(&new).await.is_err());
    assert_eq!(
        rig.recorder.take(),
        [
            "outputs.start hls",
            "inputs.unregister",
            "buffers.delete main"
        ]
    );
    assert!(!rig.coordinator.is_running(&old.code));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_operations_serialise_without_double_start() {
    let rig = rig();
    let code = base().code;
    let mut tasks = Vec::new();
    for i in 0..100u32 {
        let coordinator = rig.coordinator.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = base();
            match i % 3 {
                0 => {}
                1 => s.disabled = true,
                _ => s.name = format!("v{i}"),
            }
            coordinator
                .put(spec(s), Expect::Any)
                .await
                .map(|o| o.applied)
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap().unwrap();
    }
    let processed = processed(&rig, &code);
    assert_eq!(processed.len(), 100);
    let stored = rig.store.get(&code).unwrap().unwrap().stream;
    let running = rig.coordinator.is_running(&code);
    assert_eq!(running, !stored.disabled, "the last write won");
    assert_eq!(
        rig.recorder.max_live.load(Ordering::SeqCst),
        1,
        "a double start happened"
    );
    assert_eq!(rig.recorder.live.load(Ordering::SeqCst), i64::from(running));
}

/// Regression (issue 12, defect f): `stream.updated` names the field groups that changed
/// (SPEC §Events), not `{}`.
#[tokio::test]
async fn stream_updated_names_the_changed_field_groups() {
    let rig = rig();
    let mut events = rig.events.subscribe("test");
    let s = base();
    rig.apply(&s).await.unwrap();
    let mut renamed = s.clone();
    renamed.name = "Cam".into();
    renamed.protocols = Some(Protocols {
        hls: true,
        ..Protocols::default()
    });
    rig.apply(&renamed).await.unwrap();
    rig.apply(&renamed).await.unwrap();
    let mut payloads = Vec::new();
    while payloads.len() < 3 {
        let event = events.recv().await.unwrap();
        match event.kind {
            EventType::StreamCreated | EventType::StreamUpdated => {
                payloads.push((event.kind, event.payload.clone()));
            }
            _ => {}
        }
    }
    assert_eq!(
        payloads[0],
        (EventType::StreamCreated, serde_json::json!({}))
    );
    assert_eq!(
        payloads[1],
        (
            EventType::StreamUpdated,
            serde_json::json!({"changed": ["metadata", "protocols"]})
        )
    );
    assert_eq!(
        payloads[2],
        (EventType::StreamUpdated, serde_json::json!({"changed": []}))
    );
}

/// Waits until `code` has no actor. The actor may run on another worker thread (the
/// multi-threaded tests), which a yield on this one does not advance: the wait is for the
/// state itself, checked every millisecond, up to a deadline far beyond any scheduling delay.
async fn reclaimed(rig: &Rig, code: &StreamCode) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if rig.coordinator.inner.registry.state(code).is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the actor of {code} was not reclaimed");
}

#[tokio::test]
async fn an_idle_actor_is_reclaimed_and_the_next_command_gets_a_fresh_one() {
    let rig = rig();
    let s = base();
    rig.apply(&s).await.unwrap();
    assert!(rig.coordinator.inner.registry.state(&s.code).is_some());
    assert!(rig.coordinator.delete(&s.code).await.unwrap());
    reclaimed(&rig, &s.code).await;
    // Codes that only ever saw a delete or a refused restart keep no task either.
    let ghost = StreamCode::parse("ghost").unwrap();
    assert!(!rig.coordinator.delete(&ghost).await.unwrap());
    assert!(rig.coordinator.restart(&ghost).await.is_err());
    reclaimed(&rig, &ghost).await;
    // The next command spawns a fresh actor and runs.
    let outcome = rig
        .coordinator
        .put(spec(s.clone()), Expect::Any)
        .await
        .unwrap();
    assert!(outcome.created);
    assert!(rig.coordinator.is_running(&s.code));
    assert_eq!(processed(&rig, &s.code), ["put", "delete", "put"]);
}

#[tokio::test]
async fn a_failed_start_keeps_its_actor_so_the_error_stays_visible() {
    let rig = rig();
    let s = base();
    rig.recorder.fail("inputs.register 1");
    assert!(rig.apply(&s).await.is_err());
    tokio::task::yield_now().await;
    assert!(rig.coordinator.snapshot(&s.code).last_error.is_some());
    // Disabling it clears the error, and the actor goes.
    rig.stop(&s).await;
    reclaimed(&rig, &s.code).await;
    assert_eq!(rig.coordinator.snapshot(&s.code).last_error, None);
}

#[tokio::test]
async fn a_caller_holding_a_ticket_keeps_the_actor_until_its_command_ran() {
    let rig = rig();
    let s = base();
    rig.apply(&s).await.unwrap();
    // A caller took the actor's sender (and a ticket) but has not sent yet...
    let (tx, ticket, spawned) = rig
        .coordinator
        .inner
        .registry
        .acquire(&s.code, false)
        .unwrap();
    assert!(spawned.is_none());
    // ...when another command leaves the stream blank.
    assert!(rig.coordinator.delete(&s.code).await.unwrap());
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(rig.coordinator.inner.registry.state(&s.code).is_some());
    // Its command still reaches the same actor, runs once, after the delete.
    let (reply, rx) = oneshot::channel();
    let command = Command::Converge(reply);
    tx.send(Envelope { command, ticket }).await.ok().unwrap();
    assert!(rx.await.unwrap().unwrap().actions.is_empty());
    reclaimed(&rig, &s.code).await;
    assert_eq!(processed(&rig, &s.code), ["put", "delete", "converge"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_racing_reclamation_run_exactly_once_in_order() {
    let rig = rig();
    let s = base();
    // Each delete leaves the actor blank, so it reclaims itself while the next put is on its
    // way: the put must find either the old actor (which then stays) or a fresh one.
    let rounds = 200;
    for round in 0..rounds {
        let outcome = rig
            .coordinator
            .put(spec(s.clone()), Expect::Any)
            .await
            .unwrap();
        assert!(outcome.created, "round {round}: the delete before was lost");
        assert!(outcome.applied.is_ok());
        assert!(
            rig.coordinator.delete(&s.code).await.unwrap(),
            "round {round}"
        );
    }
    let expected: Vec<&str> = (0..rounds).flat_map(|_| ["put", "delete"]).collect();
    assert_eq!(processed(&rig, &s.code), expected);
    assert_eq!(rig.recorder.max_live.load(Ordering::SeqCst), 1);
    assert_eq!(rig.recorder.live.load(Ordering::SeqCst), 0);
    reclaimed(&rig, &s.code).await;
}

/// The commands actors ran for `code`, in order.
fn processed(rig: &Rig, code: &StreamCode) -> Vec<&'static str> {
    crate::lock(&rig.coordinator.inner.processed)
        .iter()
        .filter(|(c, _)| c == code)
        .map(|(_, op)| *op)
        .collect()
}

#[tokio::test]
async fn put_persists_then_applies_and_delete_stops() {
    let rig = rig();
    let s = base();
    let outcome = rig
        .coordinator
        .put(spec(s.clone()), Expect::Any)
        .await
        .unwrap();
    assert!(outcome.created);
    assert_eq!(outcome.stored.revision, 1);
    assert!(outcome.applied.is_ok());
    assert!(rig.coordinator.is_running(&s.code));
    // Precondition failure leaves the record and the pipeline alone.
    let err = rig
        .coordinator
        .put(spec(s.clone()), Expect::Revision(7))
        .await
        .unwrap_err();
    assert!(matches!(err, CoordError::Precondition { .. }), "{err}");
    assert!(rig.coordinator.delete(&s.code).await.unwrap());
    assert!(!rig.coordinator.is_running(&s.code));
    assert!(rig.store.get(&s.code).unwrap().is_none());
    assert!(!rig.coordinator.delete(&s.code).await.unwrap());
}

#[tokio::test]
async fn restart_needs_a_stored_enabled_stream() {
    let rig = rig();
    let mut s = base();
    assert!(matches!(
        rig.coordinator.restart(&s.code).await,
        Err(CoordError::NotFound(_))
    ));
    s.disabled = true;
    rig.coordinator
        .put(spec(s.clone()), Expect::Any)
        .await
        .unwrap();
    assert!(matches!(
        rig.coordinator.restart(&s.code).await,
        Err(CoordError::Disabled(_))
    ));
    s.disabled = false;
    rig.coordinator
        .put(spec(s.clone()), Expect::Any)
        .await
        .unwrap();
    rig.recorder.take();
    let applied = rig.coordinator.restart(&s.code).await.unwrap();
    assert_eq!(applied.actions, vec![Action::Stop, Action::Start]);
}

#[tokio::test(start_paused = true)]
async fn reconciler_heals_a_failed_start_within_one_interval_and_skips_disabled() {
    let rig = rig();
    let good = base();
    let mut disabled = base();
    disabled.code = StreamCode::parse("off").unwrap();
    disabled.disabled = true;
    rig.recorder.fail("inputs.register 1");
    let outcome = rig
        .coordinator
        .put(spec(good.clone()), Expect::Any)
        .await
        .unwrap();
    assert!(outcome.applied.is_err());
    rig.coordinator
        .put(spec(disabled.clone()), Expect::Any)
        .await
        .unwrap();
    assert!(!rig.coordinator.is_running(&good.code));

    let shutdown = CancellationToken::new();
    let interval = Duration::from_secs(10);
    let task = tokio::spawn(crate::reconciler::run(
        rig.coordinator.clone(),
        rig.store.clone(),
        interval,
        shutdown.clone(),
    ));
    // The cause goes away; within one interval the stream runs.
    rig.recorder.heal();
    let deadline = tokio::time::Instant::now() + interval + Duration::from_millis(500);
    while !rig.coordinator.is_running(&good.code) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not healed within one interval"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Several more passes never start the disabled stream.
    tokio::time::sleep(interval * 3).await;
    assert!(!rig.coordinator.is_running(&disabled.code));
    shutdown.cancel();
    task.await.unwrap();
}
