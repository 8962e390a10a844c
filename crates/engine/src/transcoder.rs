//! The transcode service (SPEC §Transcoder): one task per transcoding stream that runs its
//! ladder's FFmpeg jobs (`tributary_transcode`) between the raw-ingest buffer and the
//! rendition buffers, and a playback tap that copies the best rung into the main buffer, the
//! playback feed every other output reads. It also runs ABR copies (`mirror.rs`): the same
//! rendition and main buffers fed by taps of another stream's renditions, with no FFmpeg.
//!
//! The rendition and main writers are taken from the buffer service when a stream's task
//! starts and handed back when it ends: a stop followed by a start (a transcoder restart in
//! `multi` mode, a topology reload) gives the new task the writers of the buffers that
//! survived, so their readers see a new session, never a deleted buffer.
//!
//! FFmpeg is spawned from the stream's task, a tokio worker thread, as the parent-death
//! signal requires (`tributary_transcode::process`). A missing FFmpeg binary does not fail
//! the start: the stream runs and reports `transcoder_unavailable` with the reason.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tributary_domain::StreamCode;
use tributary_domain::event::EventType;
use tributary_domain::ffmpeg::{ImageSource, Job, Ladder, Mode, Overlay, OverlayKind, Rung};
use tributary_domain::spec::StreamSpec;
use tributary_hub::{BufferId, Delivery, Hub, SubscribeFrom, Writer};
use tributary_media::timeline::SessionReason;
use tributary_transcode::{
    Event, JobConfig, JobEvent, JobHandle, JobReport, Launcher, ProbeReport, StatusWatch,
    SupervisorConfig, probe,
};

use crate::buffers::HubBuffers;
use crate::coordinator::{Degradation, WeakCoordinator};
use crate::events::EventBus;
use crate::lock;
use crate::mirror::{Mirror, MirrorRun};
use crate::services::{BufferKind, ServiceError, TranscodeService};

/// The hub subscriber class of the playback tap, as FFmpeg's feeders (`buffer_drops_total`
/// labels a class, SPEC §Metrics).
const SUBSCRIBER_CLASS: &str = "transcoder";

/// The [`TranscodeService`] of this build.
pub(crate) struct Transcoders {
    /// The process's one hub.
    hub: Hub,
    /// Where the rendition and main writers wait until a stream's task takes them.
    buffers: Arc<HubBuffers>,
    /// `transcoder.ffmpeg_path`; replaced with its probe report by
    /// [`set_ffmpeg`](Transcoders::set_ffmpeg) (streams started from then on run it).
    ffmpeg_path: Mutex<PathBuf>,
    /// `<data_dir>/transcode`: one private directory per stream and job below it.
    root: PathBuf,
    /// `publisher.hls.live_segment_sec`: the keyframe interval of rungs without one, read at
    /// each job's start ([`set_segment_sec`](Transcoders::set_segment_sec)).
    segment_sec: Arc<Mutex<f64>>,
    /// The stream status (`transcoder_unhealthy`, `transcoder_unavailable`), set once the
    /// coordinator exists.
    coordinator: OnceLock<WeakCoordinator>,
    /// Where `transcoder.*` events go, set with the coordinator.
    events: OnceLock<EventBus>,
    /// Running streams.
    streams: Mutex<HashMap<StreamCode, Running>>,
    /// Tasks of stopped streams, handing their writers back to the next start.
    retired: Mutex<HashMap<StreamCode, JoinHandle<Vec<Writer>>>>,
    /// What the boot probe found (SPEC §Transcoder "Probe"); `None` until it ran.
    probed: Mutex<Option<ProbeReport>>,
    /// Running ABR copies (SPEC §ABR copy): taps, no FFmpeg.
    mirrors: Mutex<HashMap<StreamCode, MirrorRun>>,
    /// The watermark library: an image watermark's `asset_id` becomes its file's path at each
    /// start (SPEC §Coordinator `start` step 4).
    watermarks: crate::watermarks::Library,
}

/// One transcoding stream.
struct Running {
    /// What `GET /streams/{code}` shows.
    shared: Arc<Mutex<Shared>>,
    /// Whether a rung forces keyframes every `live_segment_sec` ([`Ladder::gop_follows_segment`]).
    gop_follows_segment: bool,
    /// The stream's task, when FFmpeg is available.
    task: Option<(
        CancellationToken,
        mpsc::Sender<Command>,
        JoinHandle<Vec<Writer>>,
    )>,
}

/// The state the task shares with readers.
struct Shared {
    /// `multi` or `per_profile`.
    mode: Mode,
    /// One status per rung, by index: the job that encodes it.
    rungs: Vec<Option<StatusWatch>>,
    /// Why FFmpeg cannot run (`transcoder_unavailable`).
    unavailable: Option<String>,
}

/// One rung's figures for `GET /metrics`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RungMetrics {
    /// `track_<N>`.
    pub(crate) profile: String,
    /// The FFmpeg process encoding it (shared by every rung in `multi` mode).
    pub(crate) pid: Option<u32>,
    /// Crashes of its job.
    pub(crate) restart_count: u64,
    /// × real time, once FFmpeg reports it.
    pub(crate) speed: Option<f64>,
    /// Output frames per second.
    pub(crate) fps: f64,
    /// Frames FFmpeg dropped.
    pub(crate) dropped_frames: u64,
    /// Frames FFmpeg duplicated.
    pub(crate) dup_frames: u64,
    /// CPU time of the process.
    pub(crate) cpu_seconds: Option<f64>,
    /// Resident memory of the process.
    pub(crate) rss_bytes: Option<u64>,
}

/// A change of one rung (`per_profile` mode), run by the stream's task.
enum Command {
    /// Restart rung *i* with the new ladder.
    Restart(usize, Arc<Ladder>),
    /// Start rung *i* (its buffer's writer taken already) with the new ladder.
    Add(usize, Arc<Ladder>, Option<Writer>),
    /// Stop rung *i*; its buffer is deleted by the coordinator.
    Remove(usize),
}

impl Transcoders {
    pub(crate) fn new(
        hub: Hub,
        buffers: Arc<HubBuffers>,
        ffmpeg_path: PathBuf,
        root: PathBuf,
        segment_sec: f64,
        watermarks: crate::watermarks::Library,
    ) -> Self {
        Self {
            hub,
            buffers,
            ffmpeg_path: Mutex::new(ffmpeg_path),
            root,
            segment_sec: Arc::new(Mutex::new(segment_sec)),
            coordinator: OnceLock::new(),
            events: OnceLock::new(),
            streams: Mutex::new(HashMap::new()),
            retired: Mutex::new(HashMap::new()),
            probed: Mutex::new(None),
            mirrors: Mutex::new(HashMap::new()),
            watermarks,
        }
    }

    /// `runtime`'s active input and `inputs[]` of an ABR copy: its synthetic input 0.
    pub(crate) fn mirror_runtime(&self, code: &StreamCode) -> Option<(Option<u32>, Vec<Value>)> {
        lock(&self.mirrors).get(code).map(MirrorRun::runtime)
    }

    /// Probes `transcoder.ffmpeg_path` (at boot): streams that transcode report
    /// `transcoder_unavailable` with its errors when it is unusable; the server runs on.
    pub(crate) async fn probe_boot(&self) {
        let path = self.ffmpeg_path();
        let report = probe(&path, PROBE_EACH, nvidia_present()).await;
        if report.ok {
            tracing::info!(
                path = %report.path,
                version = %report.version,
                warnings = ?report.warnings,
                "FFmpeg probed"
            );
        } else {
            tracing::error!(
                path = %report.path,
                errors = ?report.errors,
                "FFmpeg unusable: transcoding streams report transcoder_unavailable"
            );
        }
        if *lock(&self.ffmpeg_path) == path {
            // (A path saved through the config API meanwhile brought its own report.)
            *lock(&self.probed) = Some(report);
        }
    }

    /// What the last probe found (at boot, or of a path saved since), once one ran.
    pub(crate) fn probed(&self) -> Option<ProbeReport> {
        lock(&self.probed).clone()
    }

    /// `transcoder.ffmpeg_path` now: what streams starting from now on run.
    fn ffmpeg_path(&self) -> PathBuf {
        lock(&self.ffmpeg_path).clone()
    }

    /// `transcoder.ffmpeg_path` changed through the config API to `path`, whose probe
    /// `report` passed: streams started (or whose transcoder restarts) from now on run it,
    /// and `GET /config` shows its report. The caller restarts the running transcoders.
    pub(crate) fn set_ffmpeg(&self, path: PathBuf, report: ProbeReport) {
        tracing::info!(
            path = %report.path,
            version = %report.version,
            warnings = ?report.warnings,
            "FFmpeg probed; transcoders start with it from now on"
        );
        *lock(&self.ffmpeg_path) = path;
        *lock(&self.probed) = Some(report);
    }

    /// `publisher.hls.live_segment_sec` changed through the config API: FFmpeg jobs started
    /// from now on force keyframes on the new length where a rung sets no interval. Returns
    /// the running streams that force keyframes on the old one, which restart their FFmpeg to
    /// take it (SPEC §Config "Hot apply": the smallest set of restarts).
    pub(crate) fn set_segment_sec(&self, segment_sec: f64) -> Vec<StreamCode> {
        *lock(&self.segment_sec) = segment_sec;
        lock(&self.streams)
            .iter()
            .filter(|(_, run)| run.gop_follows_segment && run.task.is_some())
            .map(|(code, _)| code.clone())
            .collect()
    }

    /// A running stream's ladder changed rung by rung: whether it follows the segment length
    /// is read again.
    fn ladder_changed(&self, code: &StreamCode, ladder: &Ladder) {
        if let Some(run) = lock(&self.streams).get_mut(code) {
            run.gop_follows_segment = ladder.gop_follows_segment();
        }
    }

    /// Connects the service to the event bus and the coordinator (built after it).
    pub(crate) fn attach(&self, events: EventBus, coordinator: WeakCoordinator) {
        let _ = self.events.set(events);
        let _ = self.coordinator.set(coordinator);
    }

    /// The FFmpeg binary streams would run, or why there is none (the full probe of SPEC
    /// §Transcoder "Probe" has not landed: this only resolves the path).
    pub(crate) fn ffmpeg(&self) -> Result<PathBuf, String> {
        Launcher::resolve(&self.ffmpeg_path())
            .map(|l| l.ffmpeg().to_owned())
            .map_err(|e| e.to_string())
    }

    /// `runtime.transcoder` of a stream, while one runs.
    pub(crate) fn runtime(&self, code: &StreamCode) -> Option<Value> {
        let shared = Arc::clone(&lock(&self.streams).get(code)?.shared);
        let shared = lock(&shared);
        let mut healthy = true;
        let profiles: Vec<Value> = shared
            .rungs
            .iter()
            .enumerate()
            .map(|(index, watch)| {
                let mut entry = json!({"index": index, "track": format!("track_{}", index + 1)});
                let Some(watch) = watch else {
                    entry["status"] = json!("stopped");
                    return entry;
                };
                let s = watch.get();
                healthy &= s.healthy;
                let status = if !s.healthy {
                    "unhealthy"
                } else if s.slow {
                    "slow"
                } else if s.pid.is_some() {
                    "running"
                } else if s.restart_count > 0 {
                    "restarting"
                } else {
                    "starting"
                };
                let progress = s.progress.unwrap_or_default();

                entry["status"] = json!(status);
                entry["pid"] = json!(s.pid);
                entry["restart_count"] = json!(s.restart_count);
                entry["speed"] = json!(progress.speed);
                entry["fps"] = json!(progress.fps);
                entry["dropped_frames"] = json!(progress.dropped_frames);
                entry["dup_frames"] = json!(progress.dup_frames);
                entry["fed_dropped_frames"] = json!(s.fed_dropped);
                entry["cpu_seconds"] = json!(s.usage.map(|u| u.cpu_seconds));
                entry["rss_bytes"] = json!(s.usage.map(|u| u.rss_bytes));
                entry["errors"] = s
                    .errors
                    .iter()
                    .map(|(at, message)| json!({"message": message, "at": rfc3339(*at)}))
                    .collect();
                entry
            })
            .collect();
        let mut transcoder = json!({
            "mode": match shared.mode { Mode::Multi => "multi", Mode::PerProfile => "per_profile" },
            "profiles": profiles,
        });
        transcoder["status"] = match &shared.unavailable {
            Some(reason) => {
                transcoder["error"] = json!(reason);
                json!("unavailable")
            }
            None if healthy => json!("healthy"),
            None => json!("unhealthy"),
        };
        Some(transcoder)
    }

    /// The FFmpeg jobs of a stream's rungs, by rung index (`None` while none runs), for
    /// fault injection: in `multi` mode every rung shares the one job's watch.
    pub(crate) fn rung_jobs(&self, code: &StreamCode) -> Option<(Mode, Vec<Option<StatusWatch>>)> {
        let shared = Arc::clone(&lock(&self.streams).get(code)?.shared);
        let shared = lock(&shared);
        Some((shared.mode, shared.rungs.clone()))
    }

    /// The rungs of a stream's transcoder for `GET /metrics` (`None` while none runs),
    /// read from the jobs' status watches.
    pub(crate) fn metrics(&self, code: &StreamCode) -> Option<Vec<RungMetrics>> {
        let shared = Arc::clone(&lock(&self.streams).get(code)?.shared);
        let shared = lock(&shared);
        let rungs = shared
            .rungs
            .iter()
            .enumerate()
            .filter_map(|(index, watch)| {
                let s = watch.as_ref()?.get();
                let progress = s.progress.unwrap_or_default();
                Some(RungMetrics {
                    profile: format!("track_{}", index + 1),
                    pid: s.pid,
                    restart_count: s.restart_count,
                    speed: progress.speed,
                    fps: progress.fps,
                    dropped_frames: progress.dropped_frames,
                    dup_frames: progress.dup_frames,
                    cpu_seconds: s.usage.map(|u| u.cpu_seconds),
                    rss_bytes: s.usage.map(|u| u.rss_bytes),
                })
            })
            .collect();
        Some(rungs)
    }

    /// The warnings of a stream's transcoder: rungs reported slow.
    pub(crate) fn warnings(&self, code: &StreamCode) -> Vec<String> {
        let Some(shared) = lock(&self.streams).get(code).map(|r| Arc::clone(&r.shared)) else {
            return Vec::new();
        };
        let shared = lock(&shared);
        shared
            .rungs
            .iter()
            .enumerate()
            .filter(|(_, w)| w.as_ref().is_some_and(|w| w.get().slow))
            .map(|(i, _)| format!("transcoder: track_{} encodes slower than real time", i + 1))
            .collect()
    }

    fn degrade(&self, code: &StreamCode, flag: Degradation, on: bool) {
        if let Some(coordinator) = self.coordinator.get().and_then(WeakCoordinator::upgrade) {
            coordinator.set_degradation(code, flag, on);
        }
    }

    fn send(&self, code: &StreamCode, command: Command) -> Result<(), ServiceError> {
        let streams = lock(&self.streams);
        let Some((_, tx, _)) = streams.get(code).and_then(|r| r.task.as_ref()) else {
            // FFmpeg is unavailable: nothing runs, the stream reports why.
            return Ok(());
        };
        tx.try_send(command)
            .map_err(|_| ServiceError::NotRegistered {
                code: code.clone(),
                service: "transcoder",
            })
    }
}

impl TranscodeService for Transcoders {
    fn start(&self, spec: &StreamSpec) -> Result<Vec<String>, ServiceError> {
        let code = spec.stream().code.clone();
        let Some(transcode) = spec.transcode() else {
            return Ok(Vec::new());
        };
        let ladder = Arc::new(transcode.ladder.clone());
        let rungs = ladder.rungs.len();
        let shared = Arc::new(Mutex::new(Shared {
            mode: ladder.mode,
            rungs: vec![None; rungs],
            unavailable: None,
        }));
        // The boot probe's verdict first (a binary without libx264 resolves fine).
        let resolved = match self.probed().filter(|report| !report.ok) {
            Some(report) => Err(report.errors.join("; ")),
            None => Launcher::resolve(&self.ffmpeg_path()).map_err(|e| e.to_string()),
        };
        let launcher = match resolved {
            Ok(launcher) => launcher,
            Err(e) => {
                tracing::error!(stream = %code, "transcoder unavailable: {e}");
                lock(&shared).unavailable = Some(e);
                lock(&self.streams).insert(
                    code.clone(),
                    Running {
                        shared,
                        gop_follows_segment: ladder.gop_follows_segment(),
                        task: None,
                    },
                );
                self.degrade(&code, Degradation::TranscoderUnavailable, true);
                return Ok(Vec::new());
            }
        };
        let writers = self.buffers.take_writers(&code);
        let retired = lock(&self.retired).remove(&code);
        let dir = self.root.join(dir_name(&code));
        let mut warnings = Vec::new();
        let overlay = transcode
            .overlay
            .as_ref()
            .and_then(|o| overlay_file(o, &dir, &code, &self.watermarks, &mut warnings));
        let ctx = StreamCtx {
            code: code.clone(),
            hub: self.hub.clone(),
            launcher,
            dir,
            segment_sec: Arc::clone(&self.segment_sec),
            overlay,
            shared: Arc::clone(&shared),
            coordinator: self.coordinator.get().cloned(),
            events: self.events.get().cloned(),
        };
        let stop = CancellationToken::new();
        let (tx, rx) = mpsc::channel(16);
        let ladder_follows = ladder.gop_follows_segment();
        let task = tokio::spawn(run_stream(ctx, ladder, writers, retired, rx, stop.clone()));
        lock(&self.streams).insert(
            code,
            Running {
                shared,
                gop_follows_segment: ladder_follows,
                task: Some((stop, tx, task)),
            },
        );
        Ok(warnings)
    }

    fn start_mirror(&self, code: &StreamCode, mirror: &Mirror) -> Result<(), ServiceError> {
        let intake = self
            .buffers
            .intake(code)
            .ok_or_else(|| ServiceError::NotRegistered {
                code: code.clone(),
                service: "buffer hub",
            })?;
        let port = intake
            .add_port(tributary_hub::PortKey(0), false)
            .map_err(ServiceError::Hub)?;
        intake
            .select(tributary_hub::PortKey(0), SessionReason::Fresh)
            .map_err(ServiceError::Hub)?;
        let writers = self.buffers.take_writers(code);
        let best = best_rung(&mirror.ladder);
        let run = MirrorRun::start(&self.hub, code, mirror.clone(), writers, port, best);
        tracing::info!(stream = %code, upstream = %mirror.upstream, rungs = mirror.rungs(),
            "ABR copy started (no FFmpeg)");
        if let Some(old) = lock(&self.mirrors).insert(code.clone(), run) {
            old.stop();
        }
        Ok(())
    }

    fn stop(&self, code: &StreamCode) {
        let mirror = lock(&self.mirrors).remove(code);
        if let Some(mirror) = mirror {
            mirror.stop();
            return;
        }
        let Some(running) = lock(&self.streams).remove(code) else {
            return;
        };
        self.degrade(code, Degradation::TranscoderUnavailable, false);
        self.degrade(code, Degradation::TranscoderUnhealthy, false);
        let Some((stop, _, task)) = running.task else {
            return;
        };
        stop.cancel();
        let hub = self.hub.clone();
        let mut retired = lock(&self.retired);
        let older = retired.remove(code);
        // The writers come back once the jobs are reaped; those of buffers deleted meanwhile
        // (a full stop, a rung removed) are dropped then, so a stopped stream's frames are not
        // kept alive by its writers. A previous run still handing its writers back is kept.
        let task = tokio::spawn(async move {
            let mut writers = match older {
                Some(older) => older.await.unwrap_or_default(),
                None => Vec::new(),
            };
            writers.extend(task.await.unwrap_or_default());
            writers.retain(|w| hub.contains(w.id()));
            writers
        });
        retired.insert(code.clone(), task);
    }

    fn stop_to_ingest(&self, code: &StreamCode) {
        self.stop(code);
        let main = BufferId::Stream(code.clone());
        let Some(intake) = self.buffers.intake(code) else {
            return;
        };
        let mut retired = lock(&self.retired);
        let Some(task) = retired.remove(code) else {
            // No task ran (FFmpeg unavailable): the main writer never left the buffer service.
            drop(retired);
            if let Some(writer) = self.buffers.take_writer(code, BufferKind::Main) {
                drop(intake.retarget(writer, SessionReason::ConfigChange));
            }
            return;
        };
        // The writers come back once the jobs are reaped. The main one goes to the intake
        // (dropping the raw buffer's writer, which deletes that buffer), unless the intake
        // was retargeted meanwhile (the stream went back to transcoding): then it stays with
        // the writers for the next run, as after a stop.
        let since = intake.retargets();
        let key = code.clone();
        let code = code.clone();
        let task = tokio::spawn(async move {
            let mut writers = task.await.unwrap_or_default();
            if intake.retargets() == since
                && let Some(at) = writers.iter().position(|w| *w.id() == main)
            {
                let writer = writers.swap_remove(at);
                drop(intake.retarget(writer, SessionReason::ConfigChange));
                tracing::info!(stream = %code, "transcoding stopped: the inputs feed the main buffer again");
            }
            writers
        });
        retired.insert(key, task);
    }

    fn restart_rung(&self, spec: &StreamSpec, index: usize) -> Result<(), ServiceError> {
        let Some(t) = spec.transcode() else {
            return Ok(());
        };
        self.ladder_changed(&spec.stream().code, &t.ladder);
        self.send(
            &spec.stream().code,
            Command::Restart(index, Arc::new(t.ladder.clone())),
        )
    }

    fn add_rung(&self, spec: &StreamSpec, index: usize) -> Result<(), ServiceError> {
        let Some(t) = spec.transcode() else {
            return Ok(());
        };
        let code = &spec.stream().code;
        self.ladder_changed(code, &t.ladder);
        let writer = self
            .buffers
            .take_writers(code)
            .into_iter()
            .find(|w| *w.id() == BufferId::Rendition(code.clone(), index as u16));
        self.send(
            code,
            Command::Add(index, Arc::new(t.ladder.clone()), writer),
        )
    }

    fn remove_rung(&self, code: &StreamCode, index: usize) {
        let _ = self.send(code, Command::Remove(index));
    }
}

/// What a stream's task needs.
struct StreamCtx {
    code: StreamCode,
    hub: Hub,
    launcher: Launcher,
    /// `<root>/<code>`: the watermark text, and one working directory per job.
    dir: PathBuf,
    /// `live_segment_sec`, shared with the service: read at each job's start.
    segment_sec: Arc<Mutex<f64>>,
    overlay: Option<(Overlay, String)>,
    shared: Arc<Mutex<Shared>>,
    coordinator: Option<WeakCoordinator>,
    events: Option<EventBus>,
}

impl StreamCtx {
    fn publish(&self, kind: EventType, payload: Value) {
        if let Some(events) = &self.events {
            events.publish(kind, self.code.as_str(), payload);
        }
    }

    fn config(&self, ladder: &Arc<Ladder>, job: Job) -> JobConfig {
        let name = match job {
            Job::Ladder => "ladder".to_owned(),
            Job::Rung(i) => format!("rung_{i}"),
        };
        JobConfig {
            launcher: self.launcher.clone(),
            ladder: Arc::clone(ladder),
            job,
            segment_sec: *lock(&self.segment_sec),
            overlay: self.overlay.clone(),
            workdir: self.dir.join(name),
            source: BufferId::Raw(self.code.clone()),
            grace: STOP_GRACE,
            supervisor: SupervisorConfig::default(),
        }
    }
}

/// The task of one transcoding stream: waits for the writers of a previous run, starts the
/// jobs and the playback tap, applies rung changes, reports health, and on stop gives every
/// writer back.
async fn run_stream(
    ctx: StreamCtx,
    ladder: Arc<Ladder>,
    mut writers: Vec<Writer>,
    retired: Option<JoinHandle<Vec<Writer>>>,
    mut commands: mpsc::Receiver<Command>,
    stop: CancellationToken,
) -> Vec<Writer> {
    if let Some(retired) = retired {
        let old = tokio::select! {
            () = stop.cancelled() => return writers,
            old = retired => old.unwrap_or_default(),
        };
        for writer in old {
            // A fresh buffer of the same id wins; a deleted one is dropped.
            if !writers.iter().any(|w| w.id() == writer.id()) && ctx.hub.contains(writer.id()) {
                writers.push(writer);
            }
        }
    }
    let code = ctx.code.clone();
    let take = |writers: &mut Vec<Writer>, id: &BufferId| {
        writers
            .iter()
            .position(|w| w.id() == id)
            .map(|i| writers.swap_remove(i))
    };
    let main = take(&mut writers, &BufferId::Stream(code.clone()));
    let best = best_rung(&ladder);
    let tap = main.map(|main| {
        Tap::start(
            &ctx.hub,
            BufferId::Rendition(code.clone(), best as u16),
            main,
        )
    });

    let (events_tx, mut events) = mpsc::channel(64);
    let mut jobs: Vec<(Job, JobHandle)> = Vec::new();
    for job in ladder.jobs() {
        let indices: Vec<usize> = match job {
            Job::Ladder => (0..ladder.rungs.len()).collect(),
            Job::Rung(i) => vec![i],
        };
        let mut outputs = Vec::new();
        for &i in &indices {
            match take(&mut writers, &BufferId::Rendition(code.clone(), i as u16)) {
                Some(w) => outputs.push(w),
                None => tracing::error!(stream = %code, rung = i, "rendition buffer missing"),
            }
        }
        if outputs.len() != indices.len() {
            continue;
        }
        let handle = JobHandle::start(
            ctx.config(&ladder, job),
            ctx.hub.clone(),
            outputs,
            events_tx.clone(),
        );
        set_watch(&ctx.shared, &indices, Some(handle.watch()));
        jobs.push((job, handle));
    }
    ctx.publish(
        EventType::TranscoderStarted,
        json!({
            "profiles": ladder.rungs.len(),
            "raw_ingest_id": BufferId::Raw(code.clone()).to_string(),
            "mode": match ladder.mode { Mode::Multi => "multi_output", Mode::PerProfile => "per_profile" },
        }),
    );
    // Writers of buffers no job writes (none, unless a buffer was missing) go back at the end.
    let mut spare = writers;
    let mut unhealthy = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            command = commands.recv() => match command {
                None => break,
                Some(Command::Restart(i, ladder)) => {
                    if let Some(pos) = jobs.iter().position(|(j, _)| *j == Job::Rung(i)) {
                        let (_, old) = jobs.swap_remove(pos);
                        set_watch(&ctx.shared, &[i], None);
                        let outputs = old.stop().await;
                        let handle = JobHandle::start(ctx.config(&ladder, Job::Rung(i)), ctx.hub.clone(), outputs, events_tx.clone());
                        set_watch(&ctx.shared, &[i], Some(handle.watch()));
                        jobs.push((Job::Rung(i), handle));
                    }
                }
                Some(Command::Add(i, ladder, writer)) => {
                    let Some(writer) = writer else {
                        tracing::error!(stream = %code, rung = i, "rendition buffer missing");
                        continue;
                    };
                    let handle = JobHandle::start(ctx.config(&ladder, Job::Rung(i)), ctx.hub.clone(), vec![writer], events_tx.clone());
                    {
                        let mut shared = lock(&ctx.shared);
                        if shared.rungs.len() <= i {
                            shared.rungs.resize(i + 1, None);
                        }
                        shared.rungs[i] = Some(handle.watch());
                    }
                    jobs.push((Job::Rung(i), handle));
                }
                Some(Command::Remove(i)) => {
                    if let Some(pos) = jobs.iter().position(|(j, _)| *j == Job::Rung(i)) {
                        let (_, old) = jobs.swap_remove(pos);
                        lock(&ctx.shared).rungs.truncate(i);
                        drop(old.stop().await);
                    }
                }
            },
            Some(event) = events.recv() => {
                report(&ctx, &event, &jobs);
                let now_unhealthy = jobs.iter().any(|(_, j)| !j.status().healthy);
                if now_unhealthy != unhealthy {
                    unhealthy = now_unhealthy;
                    if let Some(c) = ctx.coordinator.as_ref().and_then(WeakCoordinator::upgrade) {
                        c.set_degradation(&code, Degradation::TranscoderUnhealthy, unhealthy);
                    }
                }
            }
        }
    }
    let mut writers = Vec::new();
    for (_, job) in jobs {
        writers.extend(job.stop().await);
    }
    if let Some(tap) = tap {
        writers.extend(tap.stop().await);
    }
    ctx.publish(EventType::TranscoderStopped, json!({}));
    writers.append(&mut spare);
    writers
}

fn set_watch(shared: &Mutex<Shared>, indices: &[usize], watch: Option<StatusWatch>) {
    let mut shared = lock(shared);
    for &i in indices {
        if let Some(slot) = shared.rungs.get_mut(i) {
            *slot = watch.clone();
        }
    }
}

/// Logs a job's event and publishes it as a `transcoder.*` event (SPEC §Events). `profile`
/// is the rung index in `per_profile` mode and `null` for the single process of `multi` mode.
fn report(ctx: &StreamCtx, report: &JobReport, jobs: &[(Job, JobHandle)]) {
    let code = &ctx.code;
    let profile = match report.job {
        Job::Rung(i) => json!(i),
        Job::Ladder => Value::Null,
    };
    let JobEvent::Supervision(event) = &report.event else {
        if let JobEvent::Started { pid } = report.event {
            tracing::info!(stream = %code, ?profile, pid, "FFmpeg started");
        }
        return;
    };
    match event {
        Event::Crashed {
            attempt,
            restart_in,
            error,
            announce,
        } => {
            tracing::warn!(stream = %code, ?profile, attempt, restart_in_sec = restart_in.as_secs(), "FFmpeg exited: {error}");
            if *announce {
                ctx.publish(
                    EventType::TranscoderError,
                    json!({"profile": profile, "attempt": attempt,
                           "restart_in_sec": restart_in.as_secs(), "error": error}),
                );
            }
        }
        Event::Unhealthy => {
            tracing::warn!(stream = %code, ?profile, "transcoder unhealthy: 3 crashes within 30 s");
            ctx.publish(
                EventType::TranscoderError,
                json!({"profile": profile, "reason": "consecutive_crashes",
                       "message": "3 crashes within 30 s"}),
            );
        }
        Event::Recovered => {
            tracing::info!(stream = %code, ?profile, "transcoder recovered");
            ctx.publish(EventType::TranscoderRecovered, json!({"profile": profile}));
        }
        Event::Slow => {
            let speed = jobs
                .iter()
                .find(|(job, _)| *job == report.job)
                .and_then(|(_, handle)| handle.status().progress?.speed);
            tracing::warn!(stream = %code, ?profile, ?speed, "transcoder slower than real time");
            ctx.publish(
                EventType::TranscoderSlow,
                json!({"profile": profile, "speed": speed}),
            );
        }
        Event::Restart | Event::NotSlow => {}
    }
}

/// The rung of the playback feed: the largest `width × height × 1000 + bitrate`, ties to
/// the first (SPEC §Publisher). A rung copying the source counts as the largest.
fn best_rung(ladder: &Ladder) -> usize {
    let score = |rung: &Rung| match rung.encode() {
        None => u64::MAX,
        Some(e) => u64::from(e.width) * u64::from(e.height) * 1000 + u64::from(e.bitrate_kbps),
    };
    let mut best = 0;
    for (i, rung) in ladder.rungs.iter().enumerate() {
        if score(rung) > score(&ladder.rungs[best]) {
            best = i;
        }
    }
    best
}

/// The playback tap: the best rung's frames into the main buffer, a new session there
/// whenever the rung starts one (an FFmpeg restart).
struct Tap {
    stop: CancellationToken,
    task: JoinHandle<Option<Writer>>,
}

impl Tap {
    fn start(hub: &Hub, rung: BufferId, mut main: Writer) -> Self {
        let stop = CancellationToken::new();
        let cancelled = stop.clone();
        let hub = hub.clone();
        let task = tokio::spawn(async move {
            let Ok(mut subscriber) = hub.subscribe(&rung, SubscribeFrom::Now, SUBSCRIBER_CLASS)
            else {
                return Some(main);
            };
            let mut session = None;
            loop {
                let delivery = tokio::select! {
                    () = cancelled.cancelled() => return Some(main),
                    d = subscriber.recv() => d,
                };
                match delivery {
                    None => return Some(main),
                    Some(Delivery::Lagged { .. }) => {}
                    Some(Delivery::Frame(frame)) => {
                        // A new FFmpeg process, or a main writer handed over from the
                        // previous run of the transcoder: a new session on the main buffer.
                        let renewed = match session {
                            Some(s) => s != frame.session,
                            None => main.session().is_some(),
                        };
                        if renewed {
                            main.start_session(SessionReason::Reconnect);
                        }
                        session = Some(frame.session);
                        if main.write(frame).is_err() {
                            return None;
                        }
                    }
                }
            }
        });
        Self { stop, task }
    }

    async fn stop(self) -> Option<Writer> {
        self.stop.cancel();
        self.task.await.ok().flatten()
    }
}

/// The watermark and the file FFmpeg reads it from: text is written to `<dir>/watermark.txt`;
/// an image is its path; a library asset is its image in `library` (SPEC §Coordinator
/// `start` step 4). An asset the library does not hold turns the watermark off for this run:
/// logged with the stream code and added to `warnings` (never a start failure).
fn overlay_file(
    overlay: &Overlay,
    dir: &Path,
    code: &StreamCode,
    library: &crate::watermarks::Library,
    warnings: &mut Vec<String>,
) -> Option<(Overlay, String)> {
    match &overlay.kind {
        OverlayKind::Text { text, .. } => {
            let file = dir.join("watermark.txt");
            let written = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&file, text));
            match (written, file.to_str()) {
                (Ok(()), Some(path)) => Some((overlay.clone(), path.to_owned())),
                (Err(e), _) => {
                    tracing::warn!(stream = %code, "watermark off: cannot write {}: {e}", file.display());
                    None
                }
                (Ok(()), None) => None,
            }
        }
        OverlayKind::Image(ImageSource::Path(path)) => Some((overlay.clone(), path.clone())),
        OverlayKind::Image(ImageSource::Asset(asset)) => {
            let resolved = library.resolve(asset).and_then(|path| {
                path.to_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("its path {} is not UTF-8", path.display()))
            });
            match resolved {
                Ok(path) => Some((overlay.clone(), path)),
                Err(why) => {
                    tracing::warn!(stream = %code, asset, "watermark off for this run: {why}");
                    warnings.push(format!(
                        "watermark off for this run: asset_id {asset:?}: {why}"
                    ));
                    None
                }
            }
        }
    }
}

/// The binary `transcoder.ffmpeg_path` (or a probe body's `ffmpeg_path`) names: `ffmpeg` on
/// `PATH` for `""`.
pub(crate) fn ffmpeg_program(path: &str) -> &str {
    match path.trim() {
        "" => "ffmpeg",
        path => path,
    }
}

/// `POST /config/transcoder/probe`, and a `transcoder.ffmpeg_path` saved through the config
/// API: probes `path` (`""`: `ffmpeg` on `PATH`) within [`PROBE_BUDGET`] in all.
pub(crate) async fn probe_path(path: &str) -> ProbeReport {
    let path = ffmpeg_program(path);
    let probed = probe(Path::new(path), PROBE_EACH, nvidia_present());
    tokio::time::timeout(PROBE_BUDGET, probed)
        .await
        .unwrap_or_else(|_| ProbeReport {
            path: path.to_owned(),
            errors: vec![format!(
                "the probe of {path} took more than {} s",
                PROBE_BUDGET.as_secs()
            )],
            ..ProbeReport::default()
        })
}

/// A probe report as the API shows it (SPEC §API `POST /config/transcoder/probe`, plus the
/// build's `hwaccels`).
pub(crate) fn probe_json(report: &ProbeReport) -> Value {
    json!({
        "ok": report.ok,
        "path": report.path,
        "version": report.version,
        "encoders": {"required": report.encoders.required, "optional": report.encoders.optional},
        "muxers": report.muxers,
        "filters": report.filters,
        "hwaccels": report.hwaccels,
        "warnings": report.warnings,
        "errors": report.errors,
    })
}

/// An NVIDIA device is present: the probe looks for the NVENC encoders too.
fn nvidia_present() -> bool {
    Path::new("/dev/nvidia0").exists()
}

/// A directory name for a stream code (codes may contain `/`).
fn dir_name(code: &StreamCode) -> String {
    code.as_str().replace('/', "%2F")
}

fn rfc3339(at: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Each invocation of the probe (SPEC §Defaults: 5 s).
const PROBE_EACH: std::time::Duration = std::time::Duration::from_secs(5);
/// The whole probe through the API (SPEC §API: 15 s).
const PROBE_BUDGET: std::time::Duration = std::time::Duration::from_secs(15);
/// Between closing FFmpeg's stdin and killing its group (SPEC §Transcoder "Stop").
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
