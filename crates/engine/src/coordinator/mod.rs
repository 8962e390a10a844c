//! The coordinator: the one place that knows every service, and owns each stream's lifecycle
//! (SPEC §Coordinator, §Hot reload).
//!
//! Each stream code has one actor task with a small bounded command queue; it is the stream's
//! lock. Every lifecycle operation on a stream (start, stop, update, restart, the store write of
//! a PUT or DELETE, a reconciler pass) is a command that the actor runs to completion in queue
//! order, so operations on one stream are serialised and operations on different streams run
//! in parallel. Because the work runs in the actor, a caller that gives up (timeout, dropped
//! request) never leaves a half-done start or stop behind.
//!
//! The actor keeps what it started in a [`Running`] record, so a failed start rolls back exactly
//! what was created, in reverse order, and a stop tears down exactly what runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tributary_domain::diff::{Output, compute_diff};
use tributary_domain::event::{EventType, StreamStatus};
use tributary_domain::plan::{Action, plan};
use tributary_domain::{Stream, StreamCode};
use tributary_store::{Expect, StoreError, StoredStream, StreamRepository};

use crate::events::EventBus;
use crate::services::{BufferKind, ServiceError, Services, buffer_plan};

#[cfg(test)]
mod tests;

/// Commands a stream's actor may have queued; more wait in `send` (bounded: ARCHITECTURE §11).
const ACTOR_QUEUE: usize = 16;

/// Why a lifecycle operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoordError {
    /// The stream is disabled.
    #[error("stream {0} is disabled")]
    Disabled(StreamCode),
    /// The stream has no inputs.
    #[error("stream {0} has no inputs")]
    NoInputs(StreamCode),
    /// No such stream in the store.
    #[error("stream {0} not found")]
    NotFound(StreamCode),
    /// A service failed at one step of a start or update.
    #[error("stream {code}: {step} failed: {error}")]
    Service {
        /// The stream.
        code: StreamCode,
        /// Which step (`buffers`, `inputs`, `output hls`, ...).
        step: String,
        /// The service's error.
        error: String,
    },
    /// A store precondition failed (`If-Match` or create-only).
    #[error("stream {code}: stored revision is {actual:?}, expected {expected}")]
    Precondition {
        /// The stream.
        code: StreamCode,
        /// What the caller expected.
        expected: String,
        /// What is stored (`None`: absent).
        actual: Option<u64>,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
    /// The stream's queue stayed full, or its operation ran, past the admin timeout.
    #[error("stream {0}: lifecycle operations are queued past the timeout")]
    Busy(StreamCode),
    /// The engine is shutting down.
    #[error("engine is shutting down")]
    ShuttingDown,
}

/// What an operation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The actions taken, in order (empty: nothing needed doing).
    pub actions: Vec<Action>,
    /// Non-fatal problems (a DVR that did not start, ...).
    pub warnings: Vec<String>,
}

/// The outcome of a store write plus apply.
#[derive(Debug, Clone)]
pub(crate) struct PutOutcome {
    /// The record as stored.
    pub(crate) stored: StoredStream,
    /// Whether the record is new.
    pub(crate) created: bool,
    /// What applying it did; `Err` when applying failed (the write still stands and the
    /// reconciler retries).
    pub(crate) applied: Result<Applied, CoordError>,
}

/// Read-only view of one stream's live state, shared between its actor and readers.
#[derive(Default)]
pub(crate) struct StreamState {
    running: AtomicBool,
    inner: Mutex<StateInner>,
}

#[derive(Default)]
struct StateInner {
    started_at: Option<DateTime<Utc>>,
    start_seq: u64,
    inputs_exhausted: bool,
    transcoder_unhealthy: bool,
    warnings: Vec<String>,
    last_error: Option<String>,
    #[cfg(test)]
    processed: Vec<&'static str>,
}

/// A snapshot of a stream's live state.
#[derive(Debug, Clone, PartialEq)]
pub struct StateSnapshot {
    /// stopped / active / degraded.
    pub status: StreamStatus,
    /// Why degraded (`inputs_exhausted`, `transcoder_unhealthy`).
    pub status_reasons: Vec<&'static str>,
    /// Whether the pipeline runs.
    pub running: bool,
    /// When the current run started.
    pub started_at: Option<DateTime<Utc>>,
    /// Warnings of the current run.
    pub warnings: Vec<String>,
    /// The last start or update failure, until the next success.
    pub last_error: Option<String>,
}

impl StreamState {
    fn lock(&self) -> MutexGuard<'_, StateInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn snapshot(&self) -> StateSnapshot {
        let running = self.running.load(Ordering::Acquire);
        let inner = self.lock();
        let mut reasons = Vec::new();
        if running && inner.inputs_exhausted {
            reasons.push("inputs_exhausted");
        }
        if running && inner.transcoder_unhealthy {
            reasons.push("transcoder_unhealthy");
        }
        let status = match (running, reasons.is_empty()) {
            (false, _) => StreamStatus::Stopped,
            (true, true) => StreamStatus::Active,
            (true, false) => StreamStatus::Degraded,
        };
        StateSnapshot {
            status,
            status_reasons: reasons,
            running,
            started_at: inner.started_at,
            warnings: inner.warnings.clone(),
            last_error: inner.last_error.clone(),
        }
    }
}

/// Which in-memory degradation flag a service reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    dead_code,
    reason = "reported by the stream manager and transcoder services as they land"
)]
pub(crate) enum Degradation {
    /// Every input is unusable.
    InputsExhausted,
    /// The transcoder crashed repeatedly.
    TranscoderUnhealthy,
}

type Reply<T> = oneshot::Sender<Result<T, CoordError>>;

#[allow(
    dead_code,
    reason = "Start and Update are sent by the contract methods above"
)]
enum Command {
    Start(Box<Stream>, Reply<Applied>),
    Stop(Reply<Applied>),
    Update(Box<Stream>, Reply<Applied>),
    Put(Box<Stream>, Expect, Reply<PutOutcome>),
    Delete(Reply<bool>),
    Restart(Reply<Applied>),
    Converge(Option<Reply<Applied>>),
}

#[derive(Clone)]
struct Actor {
    tx: mpsc::Sender<Command>,
    state: Arc<StreamState>,
}

/// A [`Coordinator`] that may be gone (see [`Coordinator::downgrade`]).
#[derive(Clone)]
pub(crate) struct WeakCoordinator(Weak<Inner>);

impl WeakCoordinator {
    /// The coordinator, while it exists.
    pub(crate) fn upgrade(&self) -> Option<Coordinator> {
        self.0.upgrade().map(|inner| Coordinator { inner })
    }
}

/// The coordinator. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Coordinator {
    inner: Arc<Inner>,
}

struct Inner {
    services: Services,
    store: Arc<dyn StreamRepository>,
    events: EventBus,
    actors: Mutex<HashMap<StreamCode, Actor>>,
    start_seq: AtomicU64,
    timeout: Duration,
    closed: AtomicBool,
}

#[allow(
    dead_code,
    reason = "start/stop/update/set_degradation are the coordinator contract (SPEC §Coordinator); the engine drives streams through put/converge, and services report degradation as they land"
)]
impl Coordinator {
    pub(crate) fn new(
        services: Services,
        store: Arc<dyn StreamRepository>,
        events: EventBus,
        timeout: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                services,
                store,
                events,
                actors: Mutex::new(HashMap::new()),
                start_seq: AtomicU64::new(0),
                timeout,
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// Starts a stream; a no-op when it runs already.
    pub(crate) async fn start(&self, stream: Stream) -> Result<Applied, CoordError> {
        let code = stream.code.clone();
        self.call(&code, |r| Command::Start(Box::new(stream), r))
            .await
    }

    /// Stops a stream; a no-op when it is stopped.
    pub(crate) async fn stop(&self, code: &StreamCode) -> Result<Applied, CoordError> {
        self.call(code, Command::Stop).await
    }

    /// Moves a stream to `new`: diffed against the configuration it runs with, routed to the
    /// smallest set of restarts. A stopped stream is started if `new` is startable.
    pub(crate) async fn update(&self, new: Stream) -> Result<Applied, CoordError> {
        let code = new.code.clone();
        self.call(&code, |r| Command::Update(Box::new(new), r))
            .await
    }

    /// Writes a record to the store under the stream's lock, then converges on it.
    pub(crate) async fn put(
        &self,
        stream: Stream,
        expect: Expect,
    ) -> Result<PutOutcome, CoordError> {
        let code = stream.code.clone();
        self.call(&code, |r| Command::Put(Box::new(stream), expect, r))
            .await
    }

    /// Deletes a record under the stream's lock, then stops the stream. Returns whether it
    /// existed.
    pub(crate) async fn delete(&self, code: &StreamCode) -> Result<bool, CoordError> {
        self.call(code, Command::Delete).await
    }

    /// Stop + start from the stored record.
    pub(crate) async fn restart(&self, code: &StreamCode) -> Result<Applied, CoordError> {
        self.call(code, Command::Restart).await
    }

    /// Re-reads the stored record under the stream's lock and converges on it.
    pub(crate) async fn converge(&self, code: &StreamCode) -> Result<Applied, CoordError> {
        self.call(code, |r| Command::Converge(Some(r))).await
    }

    pub(crate) fn is_running(&self, code: &StreamCode) -> bool {
        self.existing(code)
            .is_some_and(|a| a.state.running.load(Ordering::Acquire))
    }

    /// The running streams, oldest start first (a detached snapshot).
    pub(crate) fn running_streams(&self) -> Vec<StreamCode> {
        let actors = self.actors();
        let mut running: Vec<(u64, StreamCode)> = actors
            .iter()
            .filter(|(_, a)| a.state.running.load(Ordering::Acquire))
            .map(|(code, a)| (a.state.lock().start_seq, code.clone()))
            .collect();
        running.sort();
        running.into_iter().map(|(_, code)| code).collect()
    }

    pub(crate) fn snapshot(&self, code: &StreamCode) -> StateSnapshot {
        match self.existing(code) {
            Some(actor) => actor.state.snapshot(),
            None => StreamState::default().snapshot(),
        }
    }

    pub(crate) fn stream_status(&self, code: &StreamCode) -> StreamStatus {
        self.snapshot(code).status
    }

    /// Sets or clears a degradation flag reported by a service; emits
    /// `stream.status_changed` when the status changes.
    pub(crate) fn set_degradation(&self, code: &StreamCode, flag: Degradation, on: bool) {
        let Some(actor) = self.existing(code) else {
            return;
        };
        let before = actor.state.snapshot();
        {
            let mut inner = actor.state.lock();
            match flag {
                Degradation::InputsExhausted => inner.inputs_exhausted = on,
                Degradation::TranscoderUnhealthy => inner.transcoder_unhealthy = on,
            }
        }
        let after = actor.state.snapshot();
        if before.status != after.status {
            self.inner.events.publish(
                EventType::StreamStatusChanged,
                code.as_str(),
                json!({"from": before.status, "to": after.status, "reasons": after.status_reasons}),
            );
        }
    }

    /// Whether a running stream carries a degradation flag (false while stopped).
    pub(crate) fn degraded_by(&self, code: &StreamCode, flag: Degradation) -> bool {
        let Some(actor) = self.existing(code) else {
            return false;
        };
        let running = actor.state.running.load(Ordering::Acquire);
        let inner = actor.state.lock();
        running
            && match flag {
                Degradation::InputsExhausted => inner.inputs_exhausted,
                Degradation::TranscoderUnhealthy => inner.transcoder_unhealthy,
            }
    }

    /// A handle that does not keep the coordinator alive, for services that report to it
    /// (the coordinator owns the services, so a strong handle would be a cycle).
    pub(crate) fn downgrade(&self) -> WeakCoordinator {
        WeakCoordinator(Arc::downgrade(&self.inner))
    }

    /// Stops every running stream in reverse start order and refuses further commands.
    pub(crate) async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::Release);
        for code in self.running_streams().into_iter().rev() {
            if let Err(e) = self.call_unchecked(&code, Command::Stop).await {
                tracing::warn!(stream = %code, error = %e, "stop at shutdown failed");
            }
        }
    }

    fn actors(&self) -> MutexGuard<'_, HashMap<StreamCode, Actor>> {
        self.inner.actors.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn existing(&self, code: &StreamCode) -> Option<Actor> {
        self.actors().get(code).cloned()
    }

    /// The stream's actor, spawned on first use.
    fn actor(&self, code: &StreamCode) -> Option<Actor> {
        if self.inner.closed.load(Ordering::Acquire) {
            return None;
        }
        let mut actors = self.actors();
        if let Some(actor) = actors.get(code) {
            return Some(actor.clone());
        }
        let (tx, rx) = mpsc::channel(ACTOR_QUEUE);
        let state = Arc::new(StreamState::default());
        let actor = Actor {
            tx,
            state: state.clone(),
        };
        actors.insert(code.clone(), actor.clone());
        let worker = Worker {
            inner: self.inner.clone(),
            code: code.clone(),
            state,
            running: None,
        };
        tokio::spawn(worker.run(rx));
        Some(actor)
    }

    async fn call<T>(
        &self,
        code: &StreamCode,
        make: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, CoordError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(CoordError::ShuttingDown);
        }
        self.call_unchecked(code, make).await
    }

    async fn call_unchecked<T>(
        &self,
        code: &StreamCode,
        make: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, CoordError> {
        let actor = match self.actor(code) {
            Some(a) => a,
            None => self.existing(code).ok_or(CoordError::ShuttingDown)?,
        };
        let (reply, rx) = oneshot::channel();
        let work = async {
            actor
                .tx
                .send(make(reply))
                .await
                .map_err(|_| CoordError::ShuttingDown)?;
            rx.await.map_err(|_| CoordError::ShuttingDown)?
        };
        tokio::time::timeout(self.inner.timeout, work)
            .await
            .map_err(|_| CoordError::Busy(code.clone()))?
    }
}

/// What the actor started for a running stream, so stop and rollback undo exactly that.
struct Running {
    stream: Stream,
    buffers: Vec<BufferKind>,
    inputs: bool,
    outputs: Vec<Output>,
    pushes: Vec<String>,
    transcoder: bool,
    dvr: bool,
    thumbnail: bool,
}

impl Running {
    fn new(stream: &Stream) -> Self {
        Self {
            stream: stream.clone(),
            buffers: Vec::new(),
            inputs: false,
            outputs: Vec::new(),
            pushes: Vec::new(),
            transcoder: false,
            dvr: false,
            thumbnail: false,
        }
    }
}

/// The actor task of one stream.
struct Worker {
    inner: Arc<Inner>,
    code: StreamCode,
    state: Arc<StreamState>,
    running: Option<Running>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        while let Some(command) = rx.recv().await {
            self.handle(command).await;
        }
        if let Some(running) = self.running.take() {
            self.teardown(running);
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Start(stream, reply) => {
                self.record("start");
                let result = self.start(&stream);
                let _ = reply.send(result);
            }
            Command::Stop(reply) => {
                self.record("stop");
                let _ = reply.send(Ok(self.stop()));
            }
            Command::Update(stream, reply) => {
                self.record("update");
                let result = self.converge(Some(*stream));
                let _ = reply.send(result);
            }
            Command::Put(stream, expect, reply) => {
                self.record("put");
                let result = self.put(*stream, expect).await;
                let _ = reply.send(result);
            }
            Command::Delete(reply) => {
                self.record("delete");
                let result = self.delete().await;
                let _ = reply.send(result);
            }
            Command::Restart(reply) => {
                self.record("restart");
                let result = self.restart().await;
                let _ = reply.send(result);
            }
            Command::Converge(reply) => {
                self.record("converge");
                let result = match self.load().await {
                    Ok(desired) => self.converge(desired.map(|s| s.stream)),
                    Err(e) => Err(e),
                };
                if let Err(e) = &result {
                    tracing::warn!(stream = %self.code, error = %e, "reconcile failed; retrying next pass");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
        }
    }

    #[cfg(test)]
    fn record(&self, op: &'static str) {
        self.state.lock().processed.push(op);
    }

    #[cfg(not(test))]
    fn record(&self, _op: &'static str) {}

    async fn load(&self) -> Result<Option<StoredStream>, CoordError> {
        let store = self.inner.store.clone();
        let code = self.code.clone();
        tokio::task::spawn_blocking(move || store.get(&code))
            .await
            .map_err(|e| CoordError::Store(e.to_string()))?
            .map_err(|e| CoordError::Store(e.to_string()))
    }

    async fn put(&mut self, stream: Stream, expect: Expect) -> Result<PutOutcome, CoordError> {
        let store = self.inner.store.clone();
        let code = self.code.clone();
        let to_store = stream.clone();
        let upserted = tokio::task::spawn_blocking(move || store.upsert(&to_store, expect))
            .await
            .map_err(|e| CoordError::Store(e.to_string()))?
            .map_err(|e| match e {
                StoreError::Conflict {
                    expected, actual, ..
                } => CoordError::Precondition {
                    code: code.clone(),
                    expected: format!("{expected:?}"),
                    actual,
                },
                other => CoordError::Store(other.to_string()),
            })?;
        let kind = if upserted.created {
            EventType::StreamCreated
        } else {
            EventType::StreamUpdated
        };
        self.inner
            .events
            .publish(kind, self.code.as_str(), json!({}));
        let applied = self.converge(Some(upserted.stored.stream.clone()));
        Ok(PutOutcome {
            stored: upserted.stored,
            created: upserted.created,
            applied,
        })
    }

    async fn delete(&mut self) -> Result<bool, CoordError> {
        let store = self.inner.store.clone();
        let code = self.code.clone();
        let existed = tokio::task::spawn_blocking(move || store.delete(&code))
            .await
            .map_err(|e| CoordError::Store(e.to_string()))?
            .map_err(|e| CoordError::Store(e.to_string()))?;
        self.stop();
        if existed {
            self.inner
                .events
                .publish(EventType::StreamDeleted, self.code.as_str(), json!({}));
        }
        Ok(existed)
    }

    async fn restart(&mut self) -> Result<Applied, CoordError> {
        let Some(stored) = self.load().await? else {
            return Err(CoordError::NotFound(self.code.clone()));
        };
        if stored.stream.disabled {
            return Err(CoordError::Disabled(self.code.clone()));
        }
        let mut stopped = self.stop();
        let started = self.start(&stored.stream)?;
        stopped.actions.extend(started.actions);
        stopped.warnings.extend(started.warnings);
        Ok(stopped)
    }

    /// Moves the running state to `desired` (None: deleted).
    fn converge(&mut self, desired: Option<Stream>) -> Result<Applied, CoordError> {
        let desired = desired.filter(|s| s.is_startable());
        match (desired, self.running.is_some()) {
            (None, false) => Ok(Applied::default()),
            (None, true) => Ok(self.stop()),
            (Some(stream), false) => self.start(&stream),
            (Some(stream), true) => self.update(stream),
        }
    }

    fn start(&mut self, stream: &Stream) -> Result<Applied, CoordError> {
        if self.running.is_some() {
            return Ok(Applied::default());
        }
        if stream.disabled {
            return Err(CoordError::Disabled(self.code.clone()));
        }
        if stream.inputs.is_empty() {
            return Err(CoordError::NoInputs(self.code.clone()));
        }
        let mut run = Running::new(stream);
        let mut warnings = Vec::new();
        if let Err(e) = self.start_parts(stream, &mut run, &mut warnings) {
            tracing::warn!(stream = %self.code, error = %e, "start failed; rolled back");
            self.teardown(run);
            self.state.lock().last_error = Some(e.to_string());
            return Err(e);
        }
        let seq = self.inner.start_seq.fetch_add(1, Ordering::Relaxed);
        {
            let mut inner = self.state.lock();
            inner.started_at = Some(Utc::now());
            inner.start_seq = seq;
            inner.inputs_exhausted = false;
            inner.transcoder_unhealthy = false;
            inner.warnings = warnings.clone();
            inner.last_error = None;
        }
        self.running = Some(run);
        self.state.running.store(true, Ordering::Release);
        tracing::info!(stream = %self.code, "stream started");
        self.inner
            .events
            .publish(EventType::StreamStarted, self.code.as_str(), json!({}));
        Ok(Applied {
            actions: vec![Action::Start],
            warnings,
        })
    }

    /// SPEC §Coordinator start order; each part is recorded in `run` as soon as it exists.
    fn start_parts(
        &self,
        stream: &Stream,
        run: &mut Running,
        warnings: &mut Vec<String>,
    ) -> Result<(), CoordError> {
        let svc = &self.inner.services;
        let buffers = buffer_plan(stream);
        svc.buffers
            .create(&self.code, &buffers)
            .map_err(|e| self.failed("buffers", e))?;
        run.buffers = buffers;
        svc.inputs
            .register(stream)
            .map_err(|e| self.failed("inputs", e))?;
        run.inputs = true;
        for output in enabled_outputs(stream) {
            svc.outputs
                .start_output(stream, output)
                .map_err(|e| self.failed(&format!("output {}", output_name(output)), e))?;
            run.outputs.push(output);
        }
        for target in stream.push.iter().filter(|p| p.enabled) {
            svc.outputs
                .start_push(stream, target)
                .map_err(|e| self.failed("push", e))?;
            run.pushes.push(target.url.trim().to_owned());
        }
        if stream.transcoder.as_ref().is_some_and(|t| t.needs_ffmpeg()) {
            svc.transcoder
                .start(stream)
                .map_err(|e| self.failed("transcoder", e))?;
            run.transcoder = true;
        }
        if stream.dvr.as_ref().is_some_and(|d| d.enabled) {
            match svc.dvr.start(stream) {
                Ok(()) => run.dvr = true,
                Err(e) => warnings.push(format!("dvr did not start: {e}")),
            }
        }
        if stream.thumbnail.as_ref().is_some_and(|t| t.enabled) {
            match svc.thumbnails.start(stream) {
                Ok(()) => run.thumbnail = true,
                Err(e) => warnings.push(format!("thumbnails did not start: {e}")),
            }
        }
        Ok(())
    }

    fn failed(&self, step: &str, error: ServiceError) -> CoordError {
        CoordError::Service {
            code: self.code.clone(),
            step: step.to_owned(),
            error: error.to_string(),
        }
    }

    fn stop(&mut self) -> Applied {
        let Some(run) = self.running.take() else {
            return Applied::default();
        };
        self.teardown(run);
        self.state.running.store(false, Ordering::Release);
        {
            let mut inner = self.state.lock();
            inner.started_at = None;
            inner.inputs_exhausted = false;
            inner.transcoder_unhealthy = false;
            inner.warnings.clear();
        }
        tracing::info!(stream = %self.code, "stream stopped");
        self.inner
            .events
            .publish(EventType::StreamStopped, self.code.as_str(), json!({}));
        Applied {
            actions: vec![Action::Stop],
            warnings: Vec::new(),
        }
    }

    /// Undoes what `run` records, in SPEC §Coordinator stop order: DVR → publisher →
    /// transcoder → manager → buffers. Synchronous, so it always completes.
    fn teardown(&self, run: Running) {
        let svc = &self.inner.services;
        let code = &self.code;
        if run.dvr {
            svc.dvr.stop(code);
        }
        if run.thumbnail {
            svc.thumbnails.stop(code);
        }
        for url in run.pushes.iter().rev() {
            svc.outputs.stop_push(code, url);
        }
        for output in run.outputs.iter().rev() {
            svc.outputs.stop_output(code, *output);
        }
        if run.transcoder {
            svc.transcoder.stop(code);
        }
        if run.inputs {
            svc.inputs.unregister(code);
        }
        if !run.buffers.is_empty() {
            svc.buffers.delete(code, &run.buffers);
        }
    }

    /// Routes a diff to the smallest set of restarts. Any failure stops the whole stream
    /// cleanly (the reconciler heals it).
    fn update(&mut self, new: Stream) -> Result<Applied, CoordError> {
        let Some(mut run) = self.running.take() else {
            return self.start(&new);
        };
        let diff = compute_diff(&run.stream, &new);
        let planned = plan(&run.stream, &new, &diff);
        let mut warnings = planned.warnings.clone();
        let mut applied = Vec::new();
        for action in &planned.actions {
            if matches!(action, Action::Stop) {
                self.running = Some(run);
                return Ok(self.stop());
            }
            let result = self.apply(action, &mut run, &new, &mut warnings);
            if let Err(e) = result {
                tracing::warn!(stream = %self.code, error = %e, "update failed; stopping the stream");
                self.running = Some(run);
                self.stop();
                self.state.lock().last_error = Some(e.to_string());
                return Err(e);
            }
            applied.push(action.clone());
        }
        run.stream = new;
        self.running = Some(run);
        if !applied.is_empty() {
            tracing::info!(stream = %self.code, actions = applied.len(), "stream updated");
        }
        Ok(Applied {
            actions: applied,
            warnings,
        })
    }

    fn apply(
        &mut self,
        action: &Action,
        run: &mut Running,
        new: &Stream,
        warnings: &mut Vec<String>,
    ) -> Result<(), CoordError> {
        let svc = self.inner.services.clone();
        let code = self.code.clone();
        match action {
            // `update` handles Stop before calling here; Start never accompanies a running
            // stream (the stream is running, so it was enabled).
            Action::Stop | Action::Start => {}
            Action::UpdateInputs => {
                svc.inputs
                    .update_inputs(&run.stream, new)
                    .map_err(|e| self.failed("inputs", e))?;
            }
            Action::ReloadTranscoder => {
                if run.transcoder {
                    svc.transcoder.stop(&code);
                    run.transcoder = false;
                }
                let wanted = buffer_plan(new);
                let gone: Vec<_> = run
                    .buffers
                    .iter()
                    .filter(|b| !wanted.contains(b))
                    .copied()
                    .collect();
                let added: Vec<_> = wanted
                    .iter()
                    .filter(|b| !run.buffers.contains(b))
                    .copied()
                    .collect();
                svc.buffers.delete(&code, &gone);
                run.buffers.retain(|b| !gone.contains(b));
                svc.buffers
                    .create(&code, &added)
                    .map_err(|e| self.failed("buffers", e))?;
                run.buffers.extend(added);
                svc.inputs
                    .update_inputs(&run.stream, new)
                    .map_err(|e| self.failed("inputs", e))?;
                if new.transcoder.as_ref().is_some_and(|t| t.needs_ffmpeg()) {
                    svc.transcoder
                        .start(new)
                        .map_err(|e| self.failed("transcoder", e))?;
                    run.transcoder = true;
                }
                for output in run.outputs.clone() {
                    if matches!(output, Output::Hls | Output::Dash) {
                        svc.outputs.stop_output(&code, output);
                        svc.outputs.start_output(new, output).map_err(|e| {
                            self.failed(&format!("output {}", output_name(output)), e)
                        })?;
                    }
                }
            }
            Action::RestartRung { index } => svc
                .transcoder
                .restart_rung(new, *index)
                .map_err(|e| self.failed("transcoder", e))?,
            Action::AddRung { index } => {
                let buffer = BufferKind::Rendition(*index as u16);
                svc.buffers
                    .create(&code, &[buffer])
                    .map_err(|e| self.failed("buffers", e))?;
                run.buffers.push(buffer);
                svc.transcoder
                    .add_rung(new, *index)
                    .map_err(|e| self.failed("transcoder", e))?;
            }
            Action::RemoveRung { index } => {
                let buffer = BufferKind::Rendition(*index as u16);
                svc.transcoder.remove_rung(&code, *index);
                svc.buffers.delete(&code, &[buffer]);
                run.buffers.retain(|b| *b != buffer);
            }
            Action::RestartTranscoder { added, removed } => {
                if run.transcoder {
                    svc.transcoder.stop(&code);
                    run.transcoder = false;
                }
                let gone: Vec<_> = removed
                    .iter()
                    .map(|i| BufferKind::Rendition(*i as u16))
                    .collect();
                svc.buffers.delete(&code, &gone);
                run.buffers.retain(|b| !gone.contains(b));
                let fresh: Vec<_> = added
                    .iter()
                    .map(|i| BufferKind::Rendition(*i as u16))
                    .collect();
                svc.buffers
                    .create(&code, &fresh)
                    .map_err(|e| self.failed("buffers", e))?;
                run.buffers.extend(fresh);
                svc.transcoder
                    .start(new)
                    .map_err(|e| self.failed("transcoder", e))?;
                run.transcoder = true;
            }
            Action::StartOutput { output } => {
                svc.outputs
                    .start_output(new, *output)
                    .map_err(|e| self.failed(&format!("output {}", output_name(*output)), e))?;
                run.outputs.push(*output);
            }
            Action::StopOutput { output } => {
                svc.outputs.stop_output(&code, *output);
                run.outputs.retain(|o| o != output);
            }
            Action::StartPush { url } => {
                let Some(target) = new.push.iter().find(|p| p.url.trim() == url) else {
                    return Ok(());
                };
                svc.outputs
                    .start_push(new, target)
                    .map_err(|e| self.failed("push", e))?;
                run.pushes.push(url.clone());
            }
            Action::StopPush { url } => {
                svc.outputs.stop_push(&code, url);
                run.pushes.retain(|u| u != url);
            }
            Action::RestartPush { url } => {
                svc.outputs.stop_push(&code, url);
                run.pushes.retain(|u| u != url);
                if let Some(target) = new.push.iter().find(|p| p.url.trim() == url) {
                    svc.outputs
                        .start_push(new, target)
                        .map_err(|e| self.failed("push", e))?;
                    run.pushes.push(url.clone());
                }
            }
            Action::StartDvr => match svc.dvr.start(new) {
                Ok(()) => run.dvr = true,
                Err(e) => warnings.push(format!("dvr did not start: {e}")),
            },
            Action::StopDvr => {
                svc.dvr.stop(&code);
                run.dvr = false;
            }
            Action::RestartDvr => {
                if run.dvr {
                    svc.dvr.stop(&code);
                }
                match svc.dvr.start(new) {
                    Ok(()) => run.dvr = true,
                    Err(e) => {
                        run.dvr = false;
                        warnings.push(format!("dvr did not start: {e}"));
                    }
                }
            }
            Action::ApplyDvr => svc.dvr.apply(new),
            Action::RestartThumbnailer => {
                if run.thumbnail {
                    svc.thumbnails.stop(&code);
                    run.thumbnail = false;
                }
                if new.thumbnail.as_ref().is_some_and(|t| t.enabled) {
                    match svc.thumbnails.start(new) {
                        Ok(()) => run.thumbnail = true,
                        Err(e) => warnings.push(format!("thumbnails did not start: {e}")),
                    }
                }
            }
        }
        Ok(())
    }
}

/// The outputs a stream's protocol flags turn on, in a fixed order.
fn enabled_outputs(stream: &Stream) -> Vec<Output> {
    let p = stream.protocols();
    [
        (p.hls, Output::Hls),
        (p.dash, Output::Dash),
        (p.rtmp, Output::Rtmp),
        (p.rtsp, Output::Rtsp),
        (p.srt, Output::Srt),
    ]
    .into_iter()
    .filter_map(|(on, o)| on.then_some(o))
    .collect()
}

fn output_name(output: Output) -> &'static str {
    match output {
        Output::Hls => "hls",
        Output::Dash => "dash",
        Output::Rtsp => "rtsp",
        Output::Rtmp => "rtmp",
        Output::Srt => "srt",
    }
}
