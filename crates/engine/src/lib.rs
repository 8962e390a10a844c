//! Tributary's engine: composition and lifecycle (ARCHITECTURE.md §5 "engine", §8).
//!
//! [`Engine::open`] opens the store and builds the services; [`Engine::boot`] starts every
//! persisted enabled stream (the reconciler's first pass) and marks the engine ready;
//! [`Engine::spawn_reconciler`] keeps running streams converged on the store; and
//! [`Engine::shutdown`] stops streams in reverse start order. The API talks to the engine only
//! through the cloneable [`EngineHandle`], in `domain` types.
#![forbid(unsafe_code)]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

mod autopublish;
mod backoff;
mod buffers;
mod caps;
mod config;
mod coordinator;
mod dvr;
pub mod events;
mod fault;
mod hooks;
mod http_ts;
mod listeners;
mod ll_hls;
mod manager;
mod metrics;
mod mirror;
mod outputs;
mod plane;
mod reconciler;
mod router;
mod security;
mod services;
mod sessions;
mod supported;
mod templates;
mod thumbnails;
mod transcoder;
mod views;
mod vod;
mod watermarks;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::SecondsFormat;
use tokio_util::sync::CancellationToken;
use tributary_domain::config::{Layers, ServerConfig};
use tributary_domain::diff::{ShownDiff, compute_diff};
use tributary_domain::plan::{RestartPlan, plan};
use tributary_domain::signing;
use tributary_domain::spec::StreamSpec;
use tributary_domain::validate::{Support, ValidationErrors};
use tributary_domain::{Stream, StreamCode};
use tributary_store::{
    ConfigRepository, Expect, HookRepository, SqliteStore, StreamRepository, VodRepository,
};

pub use config::{ConfigChange, ConfigMode, ConfigWriteError, HttpRebind, with_saved_config};
pub use coordinator::{Applied, CoordError, StateSnapshot, Step};
pub use dvr::{RecordingPath, RecordingReply};
pub use fault::{FaultError, FaultTarget, Killed};
pub use hooks::{DELIVERY_LOG, HookError};
pub use http_ts::{TsPlay, TsPlayError};
pub use listeners::ListenerError;
pub use metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, families as metric_families};
pub use outputs::MediaAsset;
pub use security::AdminToken;
pub use services::ServiceError;
pub use sessions::{CloseReason, Proto as SessionProto, SessionView, Stats as SessionStats};
pub use templates::TemplateError;
pub use tributary_dvr::clip::ClipError;
/// Finished segments in sealed memory files, and the socket write that sends them with
/// `sendfile`: the binary's HTTP server writes through [`pages::poll_write_vectored`] and
/// caps them with [`pages::set_limit`] beside its connection cap.
pub use tributary_net::pages;
pub use tributary_publish::BlockError as MediaWaitError;
pub use views::{
    DryRun, HttpViewer, MediaReply, Ports, Precondition, PutResult, Runtime, SessionMeter,
    StreamRecord, SwitchError, SwitchOutcome,
};
pub use vod::{VOD_UPLOAD_CAP, VodError, VodFile, VodUpload};
pub use watermarks::{
    WATERMARK_IMAGE_CAP, WATERMARK_REQUEST_CAP, WatermarkError, WatermarkFile, WatermarkUpload,
};

use crate::coordinator::Coordinator;
use crate::events::EventBus;
use crate::plane::MediaPlane;
use crate::supported::Supported;

/// Why the engine could not open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The data directory could not be created or secured.
    #[error("data directory {path}: {error}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// The store could not open.
    #[error("store {path}: {error}")]
    Store {
        /// The database file.
        path: PathBuf,
        /// What failed.
        error: String,
    },
    /// The configuration is not valid (the binary validates it before opening the engine, so
    /// this is a caller's mistake).
    #[error("configuration: {0}")]
    Config(ValidationErrors),
    /// The admin token could not be read or written.
    #[error("admin token {path}: {error}")]
    Token {
        /// The token file.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
}

/// The engine and its background tasks.
pub struct Engine {
    handle: EngineHandle,
}

struct Shared {
    /// The effective configuration; a write through the API sends the new one, and whatever
    /// reads a setting where it is used reads it here.
    config: tokio::sync::watch::Sender<Arc<ServerConfig>>,
    /// The layers the effective configuration is merged from (SPEC §Config); the lock
    /// serialises writes through the API, held across their store write and rebinds.
    layers: tokio::sync::Mutex<Layers>,
    /// Where the API-saved layer is persisted.
    config_store: Arc<dyn ConfigRepository>,
    /// `data_dir` (bootstrap-only).
    data_dir: PathBuf,
    store: Arc<dyn StreamRepository>,
    coordinator: Coordinator,
    events: EventBus,
    /// The webhooks: their workers and the bus dispatcher.
    hooks: Arc<hooks::Hooks>,
    /// Runtime streams from templates; its reaper runs from [`Engine::boot`].
    autopublish: Arc<autopublish::AutoPublish>,
    /// Serialises template writes, so two writes cannot each pass the other's overlap check.
    template_writes: tokio::sync::Mutex<()>,
    /// What records are parsed against: this build's features, the RTMP listener's port.
    supported: Arc<Supported>,
    /// The VOD mounts' records.
    vod_store: Arc<dyn VodRepository>,
    /// Serialises mount writes, so the parse context's mount table follows the store.
    vod_writes: tokio::sync::Mutex<()>,
    media: MediaPlane,
    /// The RTMP listener bound by [`Engine::start_listeners`]; dropped at shutdown.
    listeners: Mutex<Vec<tributary_serve::RtmpListener>>,
    /// The RTSP listener, once bound.
    rtsp_listeners: Mutex<Vec<tributary_serve::RtspListener>>,
    /// The SRT listener bound by [`Engine::start_listeners`]; dropped at shutdown.
    srt_listeners: Mutex<Vec<tributary_serve::SrtListener>>,
    /// The admin token; `security.admin_token` changed through the config API replaces it
    /// (the next request needs the new one).
    token: std::sync::RwLock<Arc<AdminToken>>,
    /// `security.trusted_proxies`, parsed; replaced when the config API changes it.
    trusted_proxies: std::sync::RwLock<Arc<Vec<ipnet::IpNet>>>,
    ports: Mutex<Ports>,
    booted: AtomicBool,
    /// Moves the HTTP server to a new address (`server.http_addr` written through the API);
    /// set by the binary, which owns the HTTP server.
    http_rebind: std::sync::OnceLock<HttpRebind>,
    shutdown: CancellationToken,
}

/// The API's view of the engine. Cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    shared: Arc<Shared>,
}

impl Engine {
    /// Opens the data directory and the store, lays the values saved through the API over
    /// `layers` (SPEC §Config; a saved layer no longer valid over the file and environment is
    /// logged at ERROR and left out, so a changed file cannot keep the server down), and
    /// builds the services.
    pub fn open(layers: Layers) -> Result<Self, OpenError> {
        let bootstrap = layers.effective().map_err(OpenError::Config)?;
        let data_dir = PathBuf::from(&bootstrap.data_dir);
        security::secure_dir(&data_dir).map_err(|error| OpenError::DataDir {
            path: data_dir.clone(),
            error,
        })?;
        let db = data_dir.join("tributary.db");
        let store = SqliteStore::open(&db).map_err(|e| OpenError::Store {
            path: db.clone(),
            error: e.to_string(),
        })?;
        let saved = store.config_layer().map_err(|e| OpenError::Store {
            path: db.clone(),
            error: e.to_string(),
        })?;
        let with_saved = layers.clone().with_store(saved);
        let (layers, config) = match with_saved.effective() {
            Ok(config) => (with_saved, config),
            Err(errors) => {
                tracing::error!(
                    %errors,
                    "the configuration saved through the API is not valid over the file and \
                     environment; starting without it (the next POST /config replaces it)"
                );
                (layers, bootstrap)
            }
        };
        let token = AdminToken::load(&config.security.admin_token, &data_dir)?;
        let media = MediaPlane::new(&config);
        media
            .watermarks
            .open(&config, &media.roots.get().storage)
            .map_err(OpenError::Config)?;
        let store = Arc::new(store);
        Ok(Self::with_parts(
            layers,
            config,
            store.clone(),
            store.clone(),
            store,
            media,
            token,
        ))
    }

    fn with_parts(
        layers: Layers,
        config: ServerConfig,
        store: Arc<SqliteStore>,
        hook_store: Arc<dyn HookRepository>,
        vod_store: Arc<dyn VodRepository>,
        media: MediaPlane,
        token: AdminToken,
    ) -> Self {
        let config_store: Arc<dyn ConfigRepository> = store.clone();
        let store: Arc<dyn StreamRepository> = store;
        let services = media.services();
        let events = EventBus::new();
        let timeout = Duration::from_secs(config.server.admin_timeout_sec.max(1));
        let supported = Arc::new(Supported::build(media.roots.clone()));
        match vod_store.list_mounts() {
            Ok(mounts) => supported.set_vod_mounts(vod::table(&mounts)),
            Err(e) => tracing::error!(error = %e, "cannot read the VOD mounts"),
        }
        let coordinator = Coordinator::new(
            services,
            store.clone(),
            events.clone(),
            Arc::clone(&supported),
            timeout,
        );
        media
            .manager
            .attach(events.clone(), coordinator.downgrade());
        media
            .transcoders
            .attach(events.clone(), coordinator.downgrade());
        media.sessions.attach(events.clone());
        media.outputs.attach(events.clone());
        // The live configuration; auto-publish reads its section from it at each use.
        let live = tokio::sync::watch::Sender::new(Arc::new(config.clone()));
        let autopublish = Arc::new(autopublish::AutoPublish::new(
            Arc::clone(coordinator.runtime_streams()),
            store.clone(),
            coordinator.downgrade(),
            events.clone(),
            Arc::clone(&media.manager),
            media.publish_auth.clone(),
            live.subscribe(),
        ));
        media.router.attach(Arc::clone(&autopublish));
        media.dvr.attach(events.clone());
        let hooks = Arc::new(hooks::Hooks::new(
            config.hooks.clone(),
            Path::new(&config.data_dir),
            media.ssrf_guard.clone(),
            hook_store,
        ));
        let trusted_proxies = std::sync::RwLock::new(Arc::new(trusted_proxies(&config)));
        let data_dir = PathBuf::from(&config.data_dir);
        let shared = Shared {
            config: live,
            layers: tokio::sync::Mutex::new(layers),
            config_store,
            data_dir,
            store,
            coordinator,
            events,
            hooks,
            autopublish,
            template_writes: tokio::sync::Mutex::new(()),
            supported,
            vod_store,
            vod_writes: tokio::sync::Mutex::new(()),
            media,
            listeners: Mutex::new(Vec::new()),
            rtsp_listeners: Mutex::new(Vec::new()),
            srt_listeners: Mutex::new(Vec::new()),
            token: std::sync::RwLock::new(Arc::new(token)),
            trusted_proxies,
            ports: Mutex::new(Ports::default()),
            booted: AtomicBool::new(false),
            http_rebind: std::sync::OnceLock::new(),
            shutdown: CancellationToken::new(),
        };
        Self {
            handle: EngineHandle {
                shared: Arc::new(shared),
            },
        }
    }

    /// The API's handle.
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Probes `transcoder.ffmpeg_path` (SPEC §Transcoder "Probe"; an unusable FFmpeg only
    /// makes transcoding streams report `transcoder_unavailable`), starts every persisted,
    /// enabled stream (≤ `boot_concurrency` at a time; failures are left to the reconciler),
    /// then marks the engine ready.
    pub async fn boot(&self) {
        let shared = &self.handle.shared;
        let sessions = Arc::clone(&shared.media.sessions);
        tokio::spawn(sessions.reap(shared.shutdown.clone()));
        tokio::spawn(Arc::clone(&shared.autopublish).reap(shared.shutdown.clone()));
        shared.hooks.start(&shared.events).await;
        shared.media.transcoders.probe_boot().await;
        reconciler::pass(
            &shared.coordinator,
            &shared.store,
            shared.config.borrow().coordinator.boot_concurrency,
        )
        .await;
        shared.booted.store(true, Ordering::Release);
        tracing::info!(
            running = shared.coordinator.running_streams().len(),
            "boot start-up done"
        );
    }

    /// Runs the reconciler every `coordinator.reconcile_interval_sec` until shutdown, and
    /// beside it the supervision of output tasks (an HLS packager or push task that ended is
    /// restarted with backoff; `outputs/supervise.rs`).
    pub fn spawn_reconciler(&self) -> tokio::task::JoinHandle<()> {
        let shared = self.handle.shared.clone();
        let interval =
            Duration::from_secs(shared.config.borrow().coordinator.reconcile_interval_sec);
        tokio::spawn(outputs::supervise::run(
            shared.media.outputs.clone(),
            shared.shutdown.clone(),
        ));
        tokio::spawn(async move {
            reconciler::run(
                shared.coordinator.clone(),
                shared.store.clone(),
                interval,
                shared.shutdown.clone(),
            )
            .await;
        })
    }

    /// Stops accepting lifecycle operations and stops every stream in reverse start order.
    pub async fn shutdown(&self) {
        let shared = &self.handle.shared;
        shared.shutdown.cancel();
        // Sessions close as `shutdown` before their connections go (which would say
        // `client_gone`).
        shared.media.sessions.shutdown();
        lock(&shared.listeners).clear();
        lock(&shared.rtsp_listeners).clear();
        lock(&shared.srt_listeners).clear();
        shared.coordinator.shutdown().await;
        shared.hooks.shutdown().await;
    }
}

impl EngineHandle {
    /// The effective configuration now (a write through the API replaces it).
    pub fn config(&self) -> Arc<ServerConfig> {
        self.shared.config.borrow().clone()
    }

    /// What this build implements (and the RTMP listener's port, once bound).
    pub fn support(&self) -> Support {
        self.shared.supported.get()
    }

    /// The FFmpeg binary transcoding streams run (resolved from `transcoder.ffmpeg_path`),
    /// or why there is none.
    pub fn ffmpeg(&self) -> Result<PathBuf, String> {
        self.shared.media.transcoders.ffmpeg()
    }

    /// What the boot probe found about `transcoder.ffmpeg_path` (SPEC §Transcoder "Probe"),
    /// as `POST /config/transcoder/probe` shows it; `None` before it ran.
    pub fn ffmpeg_probe(&self) -> Option<serde_json::Value> {
        let report = self.shared.media.transcoders.probed()?;
        Some(transcoder::probe_json(&report))
    }

    /// Probes the FFmpeg at `path` (`""`: `ffmpeg` on `PATH`) within 15 s: `{ok, path,
    /// version, encoders{required, optional}, muxers, filters, hwaccels, warnings, errors}`.
    /// The running streams are not affected.
    pub async fn probe_ffmpeg(&self, path: &str) -> serde_json::Value {
        transcoder::probe_json(&transcoder::probe_path(path).await)
    }

    /// Parses a stream record as every part of the engine does: against what this build
    /// implements and this server's bound RTMP port (SPEC §Domain "Input URL classifier").
    /// Returns the spec to store and the warnings to show, or every failing field.
    pub fn parse_stream(
        &self,
        stream: Stream,
    ) -> Result<(StreamSpec, Vec<String>), ValidationErrors> {
        self.shared.supported.parse(stream)
    }

    /// The admin token now.
    pub fn admin_token(&self) -> Arc<AdminToken> {
        Arc::clone(
            &self
                .shared
                .token
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The event bus.
    pub fn events(&self) -> &EventBus {
        &self.shared.events
    }

    /// `GET /events?since=`: at most `limit` events after `since`, oldest first. With none
    /// yet, waits up to `wait` for the next one (long-poll), then answers (empty if none
    /// came). The waiting request is one bus subscriber (`events_api`), made before the
    /// history is read, so no event published meanwhile is missed.
    pub async fn events_since(
        &self,
        since: u64,
        limit: usize,
        wait: Duration,
    ) -> events::EventPage {
        let bus = &self.shared.events;
        let mut subscriber = bus.subscribe(EVENTS_API);
        let page = bus.since(since, limit);
        if !page.events.is_empty() || wait.is_zero() {
            return page;
        }
        let after = page.next_since;
        let deadline = tokio::time::Instant::now() + wait;
        let shutdown = self.shared.shutdown.clone();
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => None,
                next = tokio::time::timeout_at(deadline, subscriber.recv()) => next.ok().flatten(),
            };
            match next {
                Some(event) if event.seq <= after => continue,
                Some(_) => return bus.since(after, limit),
                None => return page,
            }
        }
    }

    /// Bound ports.
    pub fn ports(&self) -> Ports {
        lock(&self.shared.ports).clone()
    }

    /// Records the HTTP address actually bound.
    pub fn set_http_addr(&self, addr: String) {
        lock(&self.shared.ports).http_addr = addr;
    }

    /// `Ok` once the store is open, listeners are bound and boot start-up is done; else the
    /// reasons.
    pub fn readiness(&self) -> Result<(), Vec<String>> {
        let mut reasons = Vec::new();
        if !self.shared.booted.load(Ordering::Acquire) {
            reasons.push("boot start-up not done".to_owned());
        }
        if self.shared.shutdown.is_cancelled() {
            reasons.push("shutting down".to_owned());
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }

    /// Every stored stream, sorted by code.
    pub async fn list_streams(&self) -> Result<Vec<StreamRecord>, CoordError> {
        let store = self.shared.store.clone();
        let list = tokio::task::spawn_blocking(move || store.list())
            .await
            .map_err(|e| CoordError::Store(e.to_string()))?
            .map_err(|e| CoordError::Store(e.to_string()))?;
        Ok(list.into_iter().map(StreamRecord::from).collect())
    }

    /// At most `limit` stored streams whose codes sort after `after`, sorted by code.
    pub async fn list_streams_page(
        &self,
        after: Option<StreamCode>,
        limit: usize,
    ) -> Result<Vec<StreamRecord>, CoordError> {
        let store = self.shared.store.clone();
        let page = tokio::task::spawn_blocking(move || store.list_page(after.as_ref(), limit))
            .await
            .map_err(|e| CoordError::Store(e.to_string()))?
            .map_err(|e| CoordError::Store(e.to_string()))?;
        Ok(page.into_iter().map(StreamRecord::from).collect())
    }

    /// How many streams are stored.
    pub async fn stream_count(&self) -> Result<u64, CoordError> {
        let store = self.shared.store.clone();
        tokio::task::spawn_blocking(move || store.count())
            .await
            .map_err(|e| CoordError::Store(e.to_string()))?
            .map_err(|e| CoordError::Store(e.to_string()))
    }

    /// One stored stream.
    pub async fn get_stream(&self, code: &StreamCode) -> Result<Option<StreamRecord>, CoordError> {
        let store = self.shared.store.clone();
        let code = code.clone();
        let found = tokio::task::spawn_blocking(move || store.get(&code))
            .await
            .map_err(|e| CoordError::Store(e.to_string()))?
            .map_err(|e| CoordError::Store(e.to_string()))?;
        Ok(found.map(StreamRecord::from))
    }

    /// The live state of a stream.
    pub fn runtime(&self, code: &StreamCode) -> Runtime {
        let snap = self.shared.coordinator.snapshot(code);
        let inputs = self
            .shared
            .media
            .manager
            .runtime(code)
            .filter(|_| snap.running);
        let mirrored = || {
            self.shared
                .media
                .transcoders
                .mirror_runtime(code)
                .filter(|_| snap.running)
        };
        let (active, pinned, exhausted, inputs, switches) = match inputs {
            Some(r) => (r.active, r.pinned, r.exhausted, r.inputs, r.switches),
            None => match mirrored() {
                // An ABR copy: no ingest, one synthetic input 0 (SPEC §ABR copy).
                Some((active, inputs)) => (active, None, false, inputs, Vec::new()),
                None => (None, None, false, Vec::new(), Vec::new()),
            },
        };
        let mut running_warnings = snap.warnings.clone();
        if snap.running {
            let media = &self.shared.media;
            running_warnings.extend(media.router.publish_warning(code));
            running_warnings.extend(media.outputs.warnings(code));
            running_warnings.extend(media.transcoders.warnings(code));
        }
        Runtime {
            status: snap.status,
            status_reasons: snap.status_reasons.clone(),
            pipeline_active: snap.running,
            source: if self.shared.coordinator.runtime_streams().contains(code) {
                "runtime"
            } else {
                "config"
            },
            started_at: snap
                .started_at
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            active_input_priority: active,
            override_input_priority: pinned,
            exhausted,
            inputs,
            switches,
            transcoder: self
                .shared
                .media
                .transcoders
                .runtime(code)
                .filter(|_| snap.running),
            publisher: self.publisher(code, snap.running),
            dvr: self.shared.media.dvr.runtime(code).filter(|_| snap.running),
            warnings: running_warnings,
            last_error: snap.last_error,
        }
    }

    /// `runtime.publisher`: the outputs and push targets, and while the stream runs with
    /// session tracking on, `viewers` (active sessions by protocol).
    fn publisher(&self, code: &StreamCode, running: bool) -> Option<serde_json::Value> {
        let media = &self.shared.media;
        let mut publisher = media.outputs.publisher(code);
        if running && media.sessions.enabled() {
            let viewers = serde_json::json!(media.sessions.viewers(code));
            match &mut publisher {
                Some(serde_json::Value::Object(fields)) => {
                    fields.insert("viewers".into(), viewers);
                }
                _ => publisher = Some(serde_json::json!({ "viewers": viewers })),
            }
        }
        publisher
    }

    /// A manual input switch (SPEC §API `POST /streams/{code}/inputs/switch`): `Some`
    /// pins the override to that input, `None` clears it. Waits up to `wait` for the intake
    /// to commit the switch (the new input's first keyframe).
    pub async fn switch_input(
        &self,
        code: &StreamCode,
        priority: Option<u32>,
        wait: Duration,
    ) -> Result<SwitchOutcome, SwitchError> {
        let manager = &self.shared.media.manager;
        if !self.shared.coordinator.is_running(code) {
            return Err(SwitchError::NotRunning(code.to_string()));
        }
        let target = manager.switch(code, priority).map_err(|e| match e {
            manager::SwitchRefusal::NotRunning(_) => SwitchError::NotRunning(code.to_string()),
            manager::SwitchRefusal::UnknownPriority { priority, .. } => {
                SwitchError::UnknownPriority(priority)
            }
            manager::SwitchRefusal::Unhealthy { .. } => SwitchError::Refused(e.to_string()),
        })?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match manager.committed(code, target) {
                Some(true) => return Ok(SwitchOutcome::Switched),
                None => return Err(SwitchError::NotRunning(code.to_string())),
                Some(false) if tokio::time::Instant::now() >= deadline => {
                    return Ok(SwitchOutcome::Pending);
                }
                Some(false) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Stores a stream (create or replace) and applies it: start, update or stop. Applying
    /// never fails the write; a failure becomes a warning and the reconciler retries.
    pub async fn put_stream(
        &self,
        spec: StreamSpec,
        precondition: Precondition,
    ) -> Result<PutResult, CoordError> {
        self.check_references(&spec).await?;
        let expect = match precondition {
            Precondition::None => Expect::Any,
            Precondition::Revision(r) => Expect::Revision(r),
        };
        let outcome = self.shared.coordinator.put(spec, expect).await?;
        let mut warnings = Vec::new();
        match outcome.applied {
            Ok(applied) => warnings.extend(applied.warnings),
            Err(e) => warnings.push(format!("{e}; the reconciler will retry")),
        }
        Ok(PutResult {
            record: outcome.stored.into(),
            created: outcome.created,
            warnings,
        })
    }

    /// What storing `spec` would do, without doing it.
    pub async fn dry_run(&self, spec: &StreamSpec) -> Result<DryRun, CoordError> {
        self.check_references(spec).await?;
        let stream = spec.stream();
        let current = self.get_stream(&stream.code).await?;
        let Some(current) = current else {
            let action = if stream.is_startable() {
                "start the stream"
            } else {
                "store only (not startable)"
            };
            return Ok(DryRun {
                diff: None,
                actions: vec![action.to_owned()],
                warnings: Vec::new(),
            });
        };
        // Both sides template-resolved (SPEC §Hot reload compares the resolved views); a
        // stored record that no longer resolves is compared as written.
        let resolved = self.parse_stream_resolved(current.stream.clone()).await?;
        let old = match &resolved {
            Ok((old, _)) => old.stream(),
            Err(_) => &current.stream,
        };
        let diff = compute_diff(old, stream);
        let RestartPlan { actions, warnings } = plan(old, stream, &diff);
        Ok(DryRun {
            diff: Some(ShownDiff::new(diff, old, stream)),
            actions: actions.iter().map(|a| a.describe()).collect(),
            warnings,
        })
    }

    /// The rules across streams a save checks (SPEC §ABR copy, §Mixer): no cycle through
    /// `copy://` and `mixer://` references, an ABR copy or mixer as the only input. Checked
    /// against the stored records; a missing upstream is no error. Two saves racing each
    /// other may each pass and close a cycle between them: such a cycle carries no media
    /// (every stream in it waits for another), and the next save of either is refused.
    async fn check_references(&self, spec: &StreamSpec) -> Result<(), CoordError> {
        if tributary_domain::spec::refs::references(spec.stream()).is_empty() {
            return Ok(());
        }
        let own = spec.code().clone();
        let stored: std::collections::HashMap<StreamCode, Stream> = self
            .list_streams()
            .await?
            .into_iter()
            .filter(|r| r.stream.code != own)
            .map(|r| (r.stream.code.clone(), r.stream))
            .collect();
        let lookup = |c: &StreamCode| stored.get(c).cloned();
        let errors = tributary_domain::spec::refs::check_references(spec, lookup);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(CoordError::Invalid {
                code: own,
                source: ValidationErrors(errors),
            })
        }
    }

    /// Deletes a stream's record and stops it. Returns whether it existed.
    pub async fn delete_stream(&self, code: &StreamCode) -> Result<bool, CoordError> {
        // A runtime stream is forgotten too, so the delete's stop sticks.
        self.shared.coordinator.runtime_streams().remove(code);
        let existed = self.shared.coordinator.delete(code).await?;
        self.shared.media.metrics.forget(code);
        Ok(existed)
    }

    /// Stop + start from the stored record (an auto-published stream: stop; its encoder
    /// reconnects to create it again).
    pub async fn restart_stream(&self, code: &StreamCode) -> Result<Applied, CoordError> {
        let coordinator = &self.shared.coordinator;
        // SPEC §API: restarting an auto-published stream stops it; the encoder's reconnect
        // creates it again.
        if coordinator.runtime_streams().contains(code) && self.get_stream(code).await?.is_none() {
            coordinator.runtime_streams().remove(code);
            return coordinator.converge(code).await;
        }
        coordinator.restart(code).await
    }

    /// Whether the stream's pipeline runs.
    pub fn is_running(&self, code: &StreamCode) -> bool {
        self.shared.coordinator.is_running(code)
    }

    /// Running streams, oldest start first.
    pub fn running_streams(&self) -> Vec<StreamCode> {
        self.shared.coordinator.running_streams()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.shared.data_dir
    }

    /// A viewer's request of the media asset (HLS playlist or segment) at `path`, relative to
    /// the server root (`<code>/index.m3u8`; paths never touch the file system), as SPEC
    /// §Sessions counts it: the asset, with the meter its 2xx body's bytes go to when the
    /// request belongs to a session (HLS, DASH); [`MediaReply::Banned`] for a fingerprint kicked less than `kick_ban_sec` ago;
    /// [`MediaReply::NotFound`] when no packager produced `path`; [`MediaReply::Unsigned`]
    /// when signed play URLs are on and the request's `exp` and `sig` do not hold (a signed
    /// playlist or MPD names its children with the request's `exp` and `sig`).
    pub fn media_for(&self, path: &str, viewer: &HttpViewer) -> MediaReply {
        let delta = ll_hls::wants_delta(&viewer.query);
        let Some((code, mut asset)) = self.shared.media.outputs.media(path, delta) else {
            return MediaReply::NotFound;
        };
        if let Some(signer) = self.shared.media.signer.get() {
            let ip = viewer.peer.map_or(UNKNOWN_PEER, |p| p.ip());
            let signature = match signer.verify(&code, &viewer.query, ip, router::unix_now()) {
                Ok(signature) => signature,
                Err(e) => {
                    let name = path.rsplit('/').next().unwrap_or_default();
                    let proto = sessions::Proto::of_media(name).map_or("hls", SessionProto::name);
                    let metrics = &self.shared.media.metrics;
                    metrics.play_refused(Some(&code), proto, metrics::PlayRefusal::Auth);
                    return MediaReply::Unsigned(e.to_string());
                }
            };
            let sign: Option<fn(&str, &str) -> String> = match asset.content_type {
                "application/vnd.apple.mpegurl" => Some(signing::sign_playlist),
                "application/dash+xml" => Some(signing::sign_mpd),
                _ => None,
            };
            if let (Some(sign), Ok(text)) = (sign, std::str::from_utf8(&asset.body)) {
                asset.body = bytes::Bytes::from(sign(text, &signature.query()));
            }
        }
        let Some(peer) = viewer.peer else {
            return MediaReply::Asset(asset, None);
        };
        let name = path.rsplit('/').next().unwrap_or_default();
        let tracked = sessions::Viewer {
            ip: peer.ip(),
            user_agent: &viewer.user_agent,
            referer: &viewer.referer,
            query: &viewer.query,
            secure: false,
        };
        match self.shared.media.sessions.http(&code, name, &tracked) {
            sessions::HttpAdmission::Serve(meter) => {
                MediaReply::Asset(asset, meter.map(SessionMeter))
            }
            sessions::HttpAdmission::Banned(remaining) => MediaReply::Banned(remaining),
        }
    }

    /// The client of an HTTP request from `peer` (SPEC §Security "Proxies"): the address
    /// `X-Forwarded-For` (else `X-Real-IP`) names when `peer` is one of
    /// `security.trusted_proxies`, else `peer`. The port stays the peer's.
    pub fn client_addr(
        &self,
        peer: std::net::SocketAddr,
        forwarded_for: Option<&str>,
        real_ip: Option<&str>,
    ) -> std::net::SocketAddr {
        let trusted = Arc::clone(
            &self
                .shared
                .trusted_proxies
                .read()
                .unwrap_or_else(|p| p.into_inner()),
        );
        if trusted.is_empty() {
            return peer;
        }
        let ip = tributary_domain::forwarded::client(peer.ip(), &trusted, forwarded_for, real_ip);
        std::net::SocketAddr::new(ip, peer.port())
    }

    /// With signed play URLs on, whether `query` (without its `?`) signs a play of `code` by
    /// `peer`; the error says why not (for the 403). Always `Ok` with signing off. A refused
    /// HTTP-TS play (`mpegts`) is counted in `playback_rejected_total`.
    pub fn check_play_signature(
        &self,
        code: &StreamCode,
        query: &str,
        peer: Option<std::net::SocketAddr>,
        mpegts: bool,
    ) -> Result<(), String> {
        let Some(signer) = self.shared.media.signer.get() else {
            return Ok(());
        };
        let ip = peer.map_or(UNKNOWN_PEER, |p| p.ip());
        signer
            .verify(code, query, ip, router::unix_now())
            .map(|_| ())
            .map_err(|e| {
                if mpegts {
                    let metrics = &self.shared.media.metrics;
                    let running = self.shared.coordinator.is_running(code);
                    metrics.play_refused(
                        running.then_some(code),
                        http_ts::PROTO,
                        metrics::PlayRefusal::Auth,
                    );
                }
                e.to_string()
            })
    }

    /// Play sessions matching the filters (`GET /sessions`), newest first, at most `limit`:
    /// the page, how many matched, and the totals.
    pub fn sessions(
        &self,
        stream: Option<StreamCode>,
        proto: Option<SessionProto>,
        active: Option<bool>,
        limit: usize,
    ) -> (Vec<SessionView>, usize, SessionStats) {
        let filter = sessions::Filter {
            stream,
            proto,
            active,
        };
        self.shared.media.sessions.list(&filter, limit)
    }

    /// Play session `id`, active or closed in the last 10 minutes.
    pub fn session(&self, id: &str) -> Option<SessionView> {
        self.shared.media.sessions.get(id)
    }

    /// `DELETE /sessions/{id}`: closes an active session as `kicked`, disconnecting a
    /// connection and banning an HTTP fingerprint for `kick_ban_sec`. False if no active
    /// session has this id.
    pub fn kick_session(&self, id: &str) -> bool {
        self.shared.media.sessions.kick(id)
    }

    /// An HTTP-TS play of stream `code` (`GET /{code}/mpegts`): its playback feed as MPEG-TS
    /// from a keyframe with PAT/PMT, under the play caps every play protocol shares.
    /// `peer` is the client, for logs.
    pub fn mpegts(
        &self,
        code: StreamCode,
        peer: Option<std::net::SocketAddr>,
    ) -> Result<TsPlay, TsPlayError> {
        let media = &self.shared.media;
        let play = TsPlay::open(&media.hub, &media.caps, &media.sessions, code.clone(), peer);
        if let Err(error) = &play {
            let why = match error {
                TsPlayError::Busy(_) => metrics::PlayRefusal::Cap,
                TsPlayError::NotRunning(_) => metrics::PlayRefusal::NotFound,
            };
            let running = self.shared.coordinator.is_running(&code);
            media
                .metrics
                .play_refused(running.then_some(&code), http_ts::PROTO, why);
        }
        play
    }

    /// The latest thumbnail of `code` (`GET /{code}/thumbnail.jpg`), once its thumbnailer
    /// made one.
    pub fn thumbnail(&self, code: &StreamCode) -> Option<bytes::Bytes> {
        self.shared.media.thumbnails.get(code)
    }
}

/// `security.trusted_proxies` as ranges. [`ServerConfig::validate`] refused any entry that
/// does not parse.
fn trusted_proxies(config: &ServerConfig) -> Vec<ipnet::IpNet> {
    config
        .security
        .trusted_proxies
        .iter()
        .flatten()
        .filter_map(|cidr| tributary_domain::config::parse_cidr(cidr))
        .collect()
}

/// The address a request without a known peer is checked as: a signature bound to an address
/// never matches it.
const UNKNOWN_PEER: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

/// The bus subscriber name of `GET /events` long-polls (`tributary_events_dropped_total`).
const EVENTS_API: &str = "events_api";

/// Locks a mutex, taking the data of a poisoned one: every critical section in the engine
/// leaves its data consistent before anything that could panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
