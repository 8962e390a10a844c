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
//! The actor keeps what it started in a `Running` record, so a failed start rolls back exactly
//! what was created, in reverse order, and a stop tears down exactly what runs. An actor whose
//! stream is stopped and has nothing to report ends after its last command (`registry.rs` says
//! how that keeps every command running exactly once, in order).
//!
//! - `mod.rs`: the [`Coordinator`] handle: the operations callers send, and state reads;
//! - `registry.rs`: which code has a live actor, tickets, reclaiming idle actors;
//! - `actor.rs`: the actor task and its command loop (store writes included);
//! - `apply.rs`: starting, stopping and updating a stream's services;
//! - `state.rs`: the live state shared with readers (status, flags, warnings).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::json;
use tokio::sync::oneshot;
use tributary_domain::StreamCode;
use tributary_domain::diff::Output;
use tributary_domain::event::EventType;
use tributary_domain::plan::Action;
use tributary_domain::spec::StreamSpec;
use tributary_domain::validate::ValidationErrors;
use tributary_store::{Expect, StoredStream, StreamRepository};

use crate::autopublish::RuntimeStreams;
use crate::events::EventBus;
use crate::services::{ServiceError, Services};
use crate::supported::Supported;

mod actor;
mod apply;
mod registry;
mod state;
#[cfg(test)]
mod tests;

pub(crate) use state::Degradation;
pub use state::StateSnapshot;

use actor::{Command, Envelope, Worker};
use registry::Registry;
use state::StreamState;

/// Why a lifecycle operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
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
    /// The stored record does not parse against what this server supports now (it was
    /// stored by another build, or with another RTMP port).
    #[error("stream {code}: the stored record is not valid here: {source}")]
    Invalid {
        /// The stream.
        code: StreamCode,
        /// Every failing field, named.
        source: ValidationErrors,
    },
    /// A service failed at one step of a start or update.
    #[error("stream {code}: {step} failed: {source}")]
    Service {
        /// The stream.
        code: StreamCode,
        /// Which step.
        step: Step,
        /// The service's error (boxed: it is large and rare).
        source: Box<ServiceError>,
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

/// The step of a start or update at which a service failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Creating or deleting hub buffers.
    Buffers,
    /// Registering or updating the inputs with the stream manager.
    Inputs,
    /// Starting one output.
    Output(Output),
    /// Starting a push target.
    Push,
    /// Starting or changing the transcoder.
    Transcoder,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Buffers => f.write_str("buffers"),
            Self::Inputs => f.write_str("inputs"),
            Self::Output(output) => write!(f, "output {}", apply::output_name(*output)),
            Self::Push => f.write_str("push"),
            Self::Transcoder => f.write_str("transcoder"),
        }
    }
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

/// What the coordinator handle and every actor share.
struct Inner {
    /// The services a stream's parts run on.
    services: Services,
    /// The desired state: records are written and re-read under the stream's actor.
    store: Arc<dyn StreamRepository>,
    /// `stream.*` events.
    events: EventBus,
    /// What a record loaded from the store is parsed against (the API parses with the same).
    supported: Arc<Supported>,
    /// The live actors by code.
    registry: Registry,
    /// Auto-published streams: the records the store does not hold (`autopublish.rs`).
    runtime: Arc<RuntimeStreams>,
    /// Orders starts, so shutdown stops in reverse start order.
    start_seq: AtomicU64,
    /// How long a caller waits for its command (queue and run): the admin timeout.
    timeout: Duration,
    /// Set at shutdown: new commands are refused.
    closed: AtomicBool,
    /// Every command an actor ran, in order (tests check serialisation across actors).
    #[cfg(test)]
    processed: std::sync::Mutex<Vec<(StreamCode, &'static str)>>,
}

impl Coordinator {
    pub(crate) fn new(
        services: Services,
        store: Arc<dyn StreamRepository>,
        events: EventBus,
        supported: Arc<Supported>,
        timeout: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                services,
                store,
                events,
                supported,
                registry: Registry::default(),
                runtime: Arc::default(),
                start_seq: AtomicU64::new(0),
                timeout,
                closed: AtomicBool::new(false),
                #[cfg(test)]
                processed: std::sync::Mutex::new(Vec::new()),
            }),
        }
    }

    /// Writes a parsed record to the store under the stream's lock, then converges on it.
    pub(crate) async fn put(
        &self,
        spec: StreamSpec,
        expect: Expect,
    ) -> Result<PutOutcome, CoordError> {
        let code = spec.code().clone();
        self.call(&code, |r| Command::Put(Box::new(spec), expect, r))
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

    /// Restarts only the FFmpeg of a running transcoding stream (SPEC §Config "Hot apply":
    /// `transcoder.ffmpeg_path`, `live_segment_sec` for a GOP derived from it), under the
    /// stream's lock; nothing for any other stream.
    pub(crate) async fn restart_transcoder(
        &self,
        code: &StreamCode,
    ) -> Result<Applied, CoordError> {
        self.call(code, Command::RestartTranscoder).await
    }

    /// Re-reads the stored record under the stream's lock and converges on it.
    pub(crate) async fn converge(&self, code: &StreamCode) -> Result<Applied, CoordError> {
        self.call(code, Command::Converge).await
    }

    /// The auto-published streams, whose records the actors read when the store has none.
    pub(crate) fn runtime_streams(&self) -> &Arc<RuntimeStreams> {
        &self.inner.runtime
    }

    pub(crate) fn is_running(&self, code: &StreamCode) -> bool {
        self.inner
            .registry
            .state(code)
            .is_some_and(|state| state.is_running())
    }

    /// The running streams, oldest start first (a detached snapshot).
    pub(crate) fn running_streams(&self) -> Vec<StreamCode> {
        let mut running: Vec<(u64, StreamCode)> = self
            .inner
            .registry
            .states()
            .into_iter()
            .filter(|(_, state)| state.is_running())
            .map(|(code, state)| (state.lock().start_seq, code))
            .collect();
        running.sort();
        running.into_iter().map(|(_, code)| code).collect()
    }

    pub(crate) fn snapshot(&self, code: &StreamCode) -> StateSnapshot {
        match self.inner.registry.state(code) {
            Some(state) => state.snapshot(),
            None => StreamState::default().snapshot(),
        }
    }

    /// Sets or clears a degradation flag reported by a service; emits
    /// `stream.status_changed` when the status changes.
    pub(crate) fn set_degradation(&self, code: &StreamCode, flag: Degradation, on: bool) {
        let Some(state) = self.inner.registry.state(code) else {
            return;
        };
        let before = state.snapshot();
        state.set(flag, on);
        let after = state.snapshot();
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
        self.inner
            .registry
            .state(code)
            .is_some_and(|state| state.degraded_by(flag))
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
            if let Err(e) = self.send(&code, false, Command::Stop).await {
                tracing::warn!(stream = %code, error = %e, "stop at shutdown failed");
            }
        }
    }

    /// Runs a command on the stream's actor (spawned on first use) and waits for its result,
    /// at most the admin timeout.
    async fn call<T>(
        &self,
        code: &StreamCode,
        make: impl FnOnce(oneshot::Sender<Result<T, CoordError>>) -> Command,
    ) -> Result<T, CoordError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(CoordError::ShuttingDown);
        }
        self.send(code, true, make).await
    }

    /// [`call`](Self::call) without the shutdown check; an actor is spawned only if `spawn`.
    async fn send<T>(
        &self,
        code: &StreamCode,
        spawn: bool,
        make: impl FnOnce(oneshot::Sender<Result<T, CoordError>>) -> Command,
    ) -> Result<T, CoordError> {
        let (tx, ticket, spawned) = self
            .inner
            .registry
            .acquire(code, spawn)
            .ok_or(CoordError::ShuttingDown)?;
        if let Some(spawned) = spawned {
            let worker = Worker {
                inner: Arc::clone(&self.inner),
                code: code.clone(),
                state: spawned.state,
                running: None,
            };
            tokio::spawn(worker.run(spawned.rx));
        }
        let (reply, rx) = oneshot::channel();
        let envelope = Envelope {
            command: make(reply),
            ticket,
        };
        let work = async {
            tx.send(envelope)
                .await
                .map_err(|_| CoordError::ShuttingDown)?;
            rx.await.map_err(|_| CoordError::ShuttingDown)?
        };
        tokio::time::timeout(self.inner.timeout, work)
            .await
            .map_err(|_| CoordError::Busy(code.clone()))?
    }
}
