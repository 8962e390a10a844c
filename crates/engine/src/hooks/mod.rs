//! Webhooks (SPEC §Hooks): the event bus delivered to HTTP receivers and files.
//!
//! # Shape
//!
//! - **One dispatcher** is the bus's `hooks` subscriber. For each event it asks every hook
//!   whether it wants it ([`Hook::wants`]: enabled, event type, stream-code globs) and pushes
//!   it into that hook's queue. Pushing is synchronous and never waits on a receiver.
//! - **One worker per hook** owns a [`batcher::Batcher`] (the queue, batching and retry rules
//!   as a sans-IO machine) and runs its deliveries: it polls the machine, sends the batch it
//!   gives (an HTTP POST through the SSRF-guarded dialer, or an append to a file,
//!   [`deliver`]), reports the outcome back and sleeps until the machine's next deadline or a
//!   new event. The machine sits behind a short `std` mutex that the dispatcher and the worker
//!   take in turn; no lock is held across an `.await`, so a receiver that hangs for its whole
//!   `timeout_sec` blocks nothing but its own hook.
//! - **Every write path** (API create, replace, delete) validates the hook, stores it, then
//!   updates the running worker, all under one write lock on a blocking thread, so settings
//!   reach a running batcher at once and two writes to one hook apply in the order they were
//!   stored.
//!
//! # Bounds
//!
//! The bus subscriber has the bus's bounded queue (its drops are `events_dropped_total
//! {subscriber="hooks"}`); each hook's queue holds `batch_max_queue_items` events and drops
//! the oldest beyond (`hooks_events_dropped_total`); each hook keeps its last
//! [`DELIVERY_LOG`] attempts for `GET /hooks/{id}/deliveries`, in memory for reads and in the
//! store (written by the worker after each attempt, trimmed there too) so the log survives a
//! restart.
//!
//! # Shutdown
//!
//! [`Hooks::shutdown`] stops the dispatcher once it has taken every event already published
//! (the streams' `stream.stopped` included), then each worker delivers what it holds once,
//! one try per batch, and stops at its first failure.

mod batcher;
mod deliver;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tributary_domain::config::HooksSection;
use tributary_domain::event::EventType;
use tributary_domain::hook::{
    Delivery, DeliveryStatus, Hook, HookSettings, HookType, sign, with_metadata,
};
use tributary_domain::validate::{ErrorCode, FieldError, ValidationErrors};
use tributary_net::SsrfGuard;
use tributary_store::{HookRepository, StoreError};

use crate::events::{Event, EventBus, EventSubscriber};
use crate::{EngineHandle, lock};
use batcher::{AfterFailure, Batcher};
use deliver::{FileLocks, Outcome, Post};

/// Attempts kept per hook for `GET /hooks/{id}/deliveries` (SPEC §Defaults "delivery log").
pub const DELIVERY_LOG: usize = 100;

/// Why a hook operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HookError {
    /// No hook has this id.
    #[error("hook {0} not found")]
    NotFound(String),
    /// A create named an id already taken.
    #[error("hook {0} already exists")]
    Exists(String),
    /// The hook breaks SPEC's rules; each field is named.
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// The store failed.
    #[error("{0}")]
    Store(String),
    /// `POST /hooks/{id}/test`: the try failed; the attempt is in the delivery log.
    #[error("hook {id}: delivery failed: {}", .delivery.error)]
    DeliveryFailed {
        /// The hook.
        id: String,
        /// The attempt.
        delivery: Box<Delivery>,
    },
    /// The `hooks` section is `null`: hooks are stored but nothing is delivered.
    #[error("hooks are off: the hooks section of the configuration is null")]
    Off,
}

/// What `GET /metrics` shows of one hook.
#[derive(Debug, Clone)]
pub(crate) struct HookMetrics {
    /// `hook_id`.
    pub(crate) id: String,
    /// `hook_type`.
    pub(crate) kind: HookType,
    /// Batches delivered (`outcome="delivered"`).
    pub(crate) delivered: u64,
    /// Tries failed (`outcome="failed"`).
    pub(crate) failed: u64,
    /// Events the full queue dropped.
    pub(crate) dropped: u64,
    /// Events waiting, the batch out included.
    pub(crate) depth: usize,
}

/// The webhook service: the registry of workers and what they share.
pub(crate) struct Hooks {
    /// What the workers share (settings, file root, SSRF guard, file locks, the store).
    ctx: Arc<Context>,
    /// One worker per stored hook while hooks are on, by id. Taken briefly: for each event
    /// dispatched, and to add, update or remove a worker.
    workers: Mutex<BTreeMap<String, Arc<Worker>>>,
    /// Serialises the write paths (store write, then worker update) on their blocking thread,
    /// so two writes to one hook reach its worker in the order they were stored, while the
    /// dispatcher never waits for a store write.
    writes: Mutex<()>,
    /// Stops the dispatcher.
    dispatch_stop: CancellationToken,
    /// Stops the workers (shutdown): each worker's token is a child of it.
    stop: CancellationToken,
    /// The dispatcher task, awaited first at shutdown.
    dispatcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The worker tasks, awaited at shutdown; ended ones are pruned as workers are added.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// What every worker reads: settings, where files go, which addresses may be dialed.
struct Context {
    /// Whether the `hooks` section is set (`null`: hooks off). Fixed for the process's life:
    /// the config API refuses to switch hooks on or off.
    on: bool,
    /// `hooks.*` and `hooks.file_root` as last applied ([`Hooks::apply`]); taken briefly and
    /// cloned, never across an `.await`.
    live: Mutex<Live>,
    /// `security.ssrf_guard` and `allow_cidrs`: the server's one guard, whose rules a
    /// configuration change replaces in place.
    guard: SsrfGuard,
    /// Per-path locks of file hooks.
    files: FileLocks,
    /// Where hooks and their delivery logs are persisted; every write path goes through it
    /// first.
    store: Arc<dyn HookRepository>,
}

/// The settings a configuration change replaces at once (SPEC §Config "Hot apply").
#[derive(Clone)]
struct Live {
    /// `hooks.*`; the defaults when the section is `null` (then nothing runs).
    global: HooksSection,
    /// `hooks.file_root`, else `<data_dir>/hooks`.
    file_root: PathBuf,
}

impl Live {
    fn new(global: Option<&HooksSection>, data_dir: &std::path::Path) -> Self {
        let file_root = global
            .and_then(|g| g.file_root.as_ref())
            .map_or_else(|| data_dir.join("hooks"), PathBuf::from);
        Self {
            global: global.cloned().unwrap_or_default(),
            file_root,
        }
    }
}

impl Context {
    /// The settings in force now.
    fn live(&self) -> Live {
        lock(&self.live).clone()
    }
}

/// One hook's worker.
struct Worker {
    /// The hook and its batcher, taken briefly by the dispatcher (push) and the worker.
    state: Mutex<WorkerState>,
    /// Wakes the worker for a new event or new settings (a permit is kept if it is busy).
    wake: Notify,
    /// The last [`DELIVERY_LOG`] attempts, newest last.
    log: Mutex<VecDeque<Delivery>>,
    /// Stops the worker (delete, shutdown).
    stop: CancellationToken,
    /// Set before `stop` on delete: the worker then drops what it holds instead of flushing.
    deleted: AtomicBool,
}

struct WorkerState {
    /// The hook as last stored: its filters decide what the dispatcher pushes, its target and
    /// secret what the next try uses.
    hook: Arc<Hook>,
    /// The queue, batching and retry rules.
    batcher: Batcher,
    /// Batches delivered and tries failed (`hooks_delivery_total{outcome}`).
    delivered: u64,
    failed: u64,
}

impl Hooks {
    /// The service; nothing runs until [`start`](Self::start).
    pub(crate) fn new(
        global: Option<HooksSection>,
        data_dir: &std::path::Path,
        guard: SsrfGuard,
        store: Arc<dyn HookRepository>,
    ) -> Self {
        Self {
            ctx: Arc::new(Context {
                on: global.is_some(),
                live: Mutex::new(Live::new(global.as_ref(), data_dir)),
                guard,
                files: FileLocks::default(),
                store,
            }),
            workers: Mutex::new(BTreeMap::new()),
            writes: Mutex::new(()),
            dispatch_stop: CancellationToken::new(),
            stop: CancellationToken::new(),
            dispatcher: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Loads the stored hooks, starts a worker for each and the dispatcher on `bus`. With
    /// hooks off, only says so.
    pub(crate) async fn start(self: &Arc<Self>, bus: &EventBus) {
        if !self.ctx.on {
            tracing::info!("hooks are off (the hooks section is null): nothing is delivered");
            return;
        }
        let subscriber = bus.subscribe(HOOKS_SUBSCRIBER);
        let store = Arc::clone(&self.ctx.store);
        let loaded = tokio::task::spawn_blocking(move || {
            let hooks = store.list_hooks()?;
            // Each hook's log as kept across the restart (a log that cannot be read starts
            // empty: it is a diagnostic, not a reason to keep the hook from running).
            Ok::<_, StoreError>(
                hooks
                    .into_iter()
                    .map(|hook| {
                        let log = store
                            .deliveries(&hook.id, DELIVERY_LOG)
                            .unwrap_or_else(|e| {
                                tracing::warn!(hook = %hook.id, error = %e, "delivery log unreadable");
                                Vec::new()
                            });
                        (hook, log)
                    })
                    .collect::<Vec<_>>(),
            )
        });
        let hooks = match loaded.await {
            Ok(Ok(hooks)) => hooks,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot load the stored hooks; none runs");
                Vec::new()
            }
            Err(e) => {
                tracing::error!(error = %e, "loading the stored hooks failed");
                Vec::new()
            }
        };
        {
            let runtime = tokio::runtime::Handle::current();
            let mut workers = lock(&self.workers);
            for (hook, log) in hooks {
                let id = hook.id.clone();
                self.upsert_worker(&runtime, &mut workers, hook);
                if let Some(worker) = workers.get(&id) {
                    lock(&worker.log).extend(log.into_iter().rev());
                }
            }
            tracing::info!(hooks = workers.len(), "webhooks running");
        }
        let task = tokio::spawn(dispatch(Arc::clone(self), subscriber));
        *lock(&self.dispatcher) = Some(task);
    }

    /// Stops the dispatcher after what is already published, then lets each worker flush once.
    pub(crate) async fn shutdown(&self) {
        // The dispatcher first, so the workers get every event already published; then the
        // workers, whose tokens are children of `stop`.
        self.dispatch_stop.cancel();
        let dispatcher = lock(&self.dispatcher).take();
        if let Some(task) = dispatcher {
            let _ = task.await;
        }
        self.stop.cancel();
        let tasks: Vec<_> = lock(&self.tasks).drain(..).collect();
        for task in tasks {
            let _ = task.await;
        }
    }

    /// `hooks.*` changed through the config API: every worker takes the new settings at once
    /// (a batch already out keeps its try; the next one follows them), and the next file
    /// delivery writes under the new file root.
    pub(crate) fn apply(&self, global: Option<&HooksSection>, data_dir: &std::path::Path) {
        let live = Live::new(global, data_dir);
        let section = live.global.clone();
        *lock(&self.ctx.live) = live;
        let now = now();
        for (id, worker) in lock(&self.workers).iter() {
            let mut state = lock(&worker.state);
            let settings = HookSettings::resolve(&state.hook, &section);
            let dropped = state.batcher.set_settings(now, settings);
            drop(state);
            if dropped > 0 {
                tracing::warn!(hook = %id, dropped, "hook queue bound lowered: oldest events dropped");
            }
            worker.wake.notify_one();
        }
    }

    /// What each running hook shows in `GET /metrics`.
    pub(crate) fn metrics(&self) -> Vec<HookMetrics> {
        lock(&self.workers)
            .iter()
            .map(|(id, worker)| {
                let state = lock(&worker.state);
                HookMetrics {
                    id: id.clone(),
                    kind: state.hook.kind,
                    delivered: state.delivered,
                    failed: state.failed,
                    dropped: state.batcher.dropped(),
                    depth: state.batcher.depth(),
                }
            })
            .collect()
    }

    /// Offers `event` to every hook that wants it.
    fn offer(&self, event: &Arc<Event>) {
        let now = now();
        let name = event.kind.name();
        for (id, worker) in lock(&self.workers).iter() {
            let mut state = lock(&worker.state);
            if !state.hook.wants(name, &event.stream_code) {
                continue;
            }
            let dropped = state.batcher.push(now, Arc::clone(event));
            drop(state);
            if dropped > 0 {
                tracing::warn!(hook = %id, dropped, "hook queue full: oldest events dropped");
            }
            worker.wake.notify_one();
        }
    }

    /// Creates or updates the worker of `hook` (hooks on only). Called with the registry held.
    fn upsert_worker(
        &self,
        runtime: &tokio::runtime::Handle,
        workers: &mut BTreeMap<String, Arc<Worker>>,
        hook: Hook,
    ) {
        if !self.ctx.on {
            return;
        }
        let settings = HookSettings::resolve(&hook, &self.ctx.live().global);
        if let Some(worker) = workers.get(&hook.id) {
            let mut state = lock(&worker.state);
            state.hook = Arc::new(hook);
            let dropped = state.batcher.set_settings(now(), settings);
            drop(state);
            if dropped > 0 {
                tracing::warn!(dropped, "hook queue bound lowered: oldest events dropped");
            }
            worker.wake.notify_one();
            return;
        }
        let id = hook.id.clone();
        let worker = Arc::new(Worker {
            state: Mutex::new(WorkerState {
                hook: Arc::new(hook),
                batcher: Batcher::new(settings),
                delivered: 0,
                failed: 0,
            }),
            wake: Notify::new(),
            log: Mutex::new(VecDeque::with_capacity(DELIVERY_LOG)),
            stop: self.stop.child_token(),
            deleted: AtomicBool::new(false),
        });
        let task = runtime.spawn(run(Arc::clone(&self.ctx), Arc::clone(&worker)));
        let mut tasks = lock(&self.tasks);
        // The workers of deleted hooks have ended: the list stays one entry per live hook.
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        workers.insert(id, worker);
    }

    /// Checks `hook` against SPEC's rules and, for a file hook, against `hooks.file_root` on
    /// disk.
    fn check(&self, hook: &Hook) -> Result<(), HookError> {
        hook.validate().map_err(HookError::Invalid)?;
        if hook.kind == HookType::File {
            deliver::file_path(&self.ctx.live().file_root, &hook.target).map_err(|why| {
                HookError::Invalid(ValidationErrors(vec![FieldError::new(
                    "target",
                    ErrorCode::InvalidField,
                    why,
                )]))
            })?;
        }
        Ok(())
    }
}

impl EngineHandle {
    /// Every stored hook, sorted by id (secrets as stored: the API masks them).
    pub async fn list_hooks(&self) -> Result<Vec<Hook>, HookError> {
        let store = Arc::clone(&self.shared.hooks.ctx.store);
        blocking(move || store.list_hooks().map_err(store_error)).await
    }

    /// Checks `hook` as [`put_hook`](Self::put_hook) would, without storing it (a file
    /// target is resolved against `hooks.file_root` on disk, off the async threads).
    pub async fn check_hook(&self, hook: &Hook) -> Result<(), HookError> {
        let hooks = Arc::clone(&self.shared.hooks);
        let hook = hook.clone();
        blocking(move || hooks.check(&hook)).await
    }

    /// The stored hook with this id.
    pub async fn hook(&self, id: &str) -> Result<Option<Hook>, HookError> {
        let store = Arc::clone(&self.shared.hooks.ctx.store);
        let id = id.to_owned();
        blocking(move || store.hook(&id).map_err(store_error)).await
    }

    /// Stores `hook` (validated on every path, SPEC §Hooks) and applies it to its running
    /// worker at once. `create_only` refuses a taken id. A write that carries the secret's
    /// mask keeps the stored secret. Returns the hook as stored and whether it was created.
    pub async fn put_hook(
        &self,
        mut hook: Hook,
        create_only: bool,
    ) -> Result<(Hook, bool), HookError> {
        let hooks = Arc::clone(&self.shared.hooks);
        let runtime = tokio::runtime::Handle::current();
        blocking(move || {
            let _write = lock(&hooks.writes);
            if let Some(stored) = hooks.ctx.store.hook(&hook.id).map_err(store_error)? {
                if create_only {
                    return Err(HookError::Exists(hook.id));
                }
                hook.restore_secret(&stored);
            }
            hooks.check(&hook)?;
            let created = hooks
                .ctx
                .store
                .put_hook(&hook, create_only)
                .map_err(store_error)?;
            hooks.upsert_worker(&runtime, &mut lock(&hooks.workers), hook.clone());
            Ok((hook, created))
        })
        .await
    }

    /// Deletes the hook and stops its worker (what it still held is dropped); `true` if it
    /// existed.
    pub async fn delete_hook(&self, id: &str) -> Result<bool, HookError> {
        let hooks = Arc::clone(&self.shared.hooks);
        let id = id.to_owned();
        blocking(move || {
            let _write = lock(&hooks.writes);
            let existed = hooks.ctx.store.delete_hook(&id).map_err(store_error)?;
            let removed = lock(&hooks.workers).remove(&id);
            if let Some(worker) = removed {
                worker.deleted.store(true, Ordering::Release);
                worker.stop.cancel();
            }
            Ok(existed)
        })
        .await
    }

    /// `POST /hooks/{id}/test`: one real try of a synthetic `stream.created` event (stream
    /// `_tributary_test_`, payload `{test: true, hook_id}`), recorded in the delivery log.
    pub async fn test_hook(&self, id: &str) -> Result<Delivery, HookError> {
        let hooks = Arc::clone(&self.shared.hooks);
        if !hooks.ctx.on {
            return Err(HookError::Off);
        }
        let Some(hook) = self.hook(id).await? else {
            return Err(HookError::NotFound(id.to_owned()));
        };
        let event = Arc::new(Event {
            id: uuid::Uuid::now_v7().to_string(),
            seq: 0,
            kind: EventType::StreamCreated,
            stream_code: TEST_STREAM.to_owned(),
            occurred_at: wall_now(),
            payload: json!({"test": true, "hook_id": id}),
        });
        let timeout = HookSettings::resolve(&hook, &hooks.ctx.live().global).timeout;
        let delivery = attempt(&hooks.ctx, &hook, &[event], 1, timeout).await;
        let worker = lock(&hooks.workers).get(id).cloned();
        match worker {
            Some(worker) => worker.record(&hooks.ctx, id, delivery.clone()).await,
            None => persist(&hooks.ctx, id, delivery.clone()).await,
        }
        if delivery.status == DeliveryStatus::Delivered {
            Ok(delivery)
        } else {
            Err(HookError::DeliveryFailed {
                id: id.to_owned(),
                delivery: Box::new(delivery),
            })
        }
    }

    /// The hook's last attempts, newest first; `None` if no such hook is stored.
    pub async fn hook_deliveries(&self, id: &str) -> Result<Option<Vec<Delivery>>, HookError> {
        if self.hook(id).await?.is_none() {
            return Ok(None);
        }
        let worker = lock(&self.shared.hooks.workers).get(id).cloned();
        if let Some(worker) = worker {
            return Ok(Some(lock(&worker.log).iter().rev().cloned().collect()));
        }
        // No worker (hooks off): the log as stored.
        let store = Arc::clone(&self.shared.hooks.ctx.store);
        let id = id.to_owned();
        blocking(move || store.deliveries(&id, DELIVERY_LOG).map_err(store_error))
            .await
            .map(Some)
    }
}

impl Worker {
    /// Adds `delivery` to the hook's log: in memory for reads, and in the store so the log
    /// survives a restart (the worker awaits the write, so the stored order is the order of
    /// the attempts). A deleted hook's worker writes nothing more.
    async fn record(&self, ctx: &Context, hook_id: &str, delivery: Delivery) {
        {
            let mut log = lock(&self.log);
            if log.len() == DELIVERY_LOG {
                log.pop_front();
            }
            log.push_back(delivery.clone());
        }
        if self.deleted.load(Ordering::Acquire) {
            return;
        }
        persist(ctx, hook_id, delivery).await;
    }
}

/// Writes one delivery-log entry to the store; a failure is logged, never fatal.
async fn persist(ctx: &Context, hook_id: &str, delivery: Delivery) {
    let store = Arc::clone(&ctx.store);
    let id = hook_id.to_owned();
    let written =
        tokio::task::spawn_blocking(move || store.add_delivery(&id, &delivery, DELIVERY_LOG)).await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(hook = hook_id, error = %e, "delivery log not stored"),
        Err(e) => tracing::warn!(hook = hook_id, error = %e, "delivery log write failed"),
    }
}

/// The dispatcher: every event to the hooks that want it, until shutdown; then what was
/// already published.
async fn dispatch(hooks: Arc<Hooks>, mut subscriber: EventSubscriber) {
    loop {
        let next = tokio::select! {
            biased;
            next = subscriber.recv() => next,
            () = hooks.dispatch_stop.cancelled() => break,
        };
        match next {
            Some(event) => hooks.offer(&event),
            None => return,
        }
    }
    // `timeout` polls the receiver first: this takes what is queued without waiting.
    while let Ok(Some(event)) = tokio::time::timeout(Duration::ZERO, subscriber.recv()).await {
        hooks.offer(&event);
    }
}

/// One hook's worker: deliver what the batcher hands out, sleep until its next deadline.
async fn run(ctx: Arc<Context>, worker: Arc<Worker>) {
    loop {
        let now = now();
        let (lost, batch, hook, attempt_no, timeout, deadline) = {
            let mut state = lock(&worker.state);
            let max = state.batcher.settings().max_queue;
            let lost = state.batcher.take_lost().map(|lost| (lost, max));
            let batch = state.batcher.poll_send(now);
            (
                lost,
                batch,
                Arc::clone(&state.hook),
                state.batcher.failures() + 1,
                state.batcher.settings().timeout,
                state.batcher.poll_timeout(),
            )
        };
        if let Some(((count, ids), max)) = lost {
            let entry = Delivery {
                at: wall_now(),
                event_ids: ids,
                status: DeliveryStatus::Dropped,
                http_status: None,
                error: format!(
                    "{count} events dropped, oldest first: the queue (batch_max_queue_items \
                     {max}) was full"
                ),
                duration_ms: 0,
                attempt: 0,
            };
            worker.record(&ctx, &hook.id, entry).await;
        }
        if let Some(events) = batch {
            let delivery = attempt(&ctx, &hook, &events, attempt_no, timeout).await;
            let ok = delivery.status == DeliveryStatus::Delivered;
            worker.record(&ctx, &hook.id, delivery).await;
            let mut state = lock(&worker.state);
            if ok {
                state.delivered += 1;
                state.batcher.delivered(self::now());
            } else {
                state.failed += 1;
                if let AfterFailure::Requeued { dropped } = state.batcher.failed(self::now())
                    && dropped > 0
                {
                    tracing::warn!(hook = %hook.id, dropped, "retries spent and queue full: oldest events dropped");
                }
            }
            continue;
        }
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = worker.stop.cancelled() => break,
            () = worker.wake.notified() => {}
            () = sleep => {}
        }
    }
    // Shutdown: one try per batch of what is left, stopping at the first failure. A deleted
    // hook's events are dropped with it.
    if worker.deleted.load(Ordering::Acquire) {
        return;
    }
    let (events, hook, settings) = {
        let mut state = lock(&worker.state);
        (
            state.batcher.take_all(),
            Arc::clone(&state.hook),
            *state.batcher.settings(),
        )
    };
    for chunk in events.chunks(settings.batch_max_items.max(1)) {
        let delivery = attempt(&ctx, &hook, chunk, 1, settings.timeout).await;
        let ok = delivery.status == DeliveryStatus::Delivered;
        worker.record(&ctx, &hook.id, delivery).await;
        if !ok {
            tracing::warn!(hook = %hook.id, held = events.len(), "shutdown flush failed");
            return;
        }
    }
}

/// One try of `events` to `hook`, as a log entry.
async fn attempt(
    ctx: &Arc<Context>,
    hook: &Hook,
    events: &[Arc<Event>],
    attempt: u32,
    timeout: Duration,
) -> Delivery {
    let at = wall_now();
    let started = now();
    let envelopes: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "seq": e.seq,
                "type": e.kind,
                "stream_code": e.stream_code,
                "occurred_at": e.occurred_at,
                "payload": with_metadata(&e.payload, &hook.metadata),
            })
        })
        .collect();
    let event_ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let outcome = match hook.kind {
        HookType::Http => {
            let body = serde_json::to_vec(&envelopes).unwrap_or_else(|_| b"[]".to_vec());
            let count = events.len().to_string();
            let mut headers: Vec<(&'static str, String)> = vec![
                ("X-OpenStreamer-Batch-Size", count.clone()),
                ("X-Tributary-Batch-Size", count),
                ("X-Tributary-Event-Ids", event_ids.join(",")),
            ];
            if !hook.secret.is_empty() {
                let signature = sign(&hook.secret, &body);
                headers.push(("X-OpenStreamer-Signature", signature.clone()));
                headers.push(("X-Tributary-Signature", signature));
            }
            deliver::post(Post {
                url: &hook.target,
                body: &body,
                headers: &headers,
                timeout,
                guard: &ctx.guard,
            })
            .await
        }
        HookType::File => {
            let mut lines = Vec::new();
            for envelope in &envelopes {
                // A Value always serialises.
                let _ = serde_json::to_writer(&mut lines, envelope);
                lines.push(b'\n');
            }
            let ctx = Arc::clone(ctx);
            let target = hook.target.clone();
            let written = tokio::task::spawn_blocking(move || {
                deliver::file_path(&ctx.live().file_root, &target)
                    .map(|path| ctx.files.append(&path, &lines))
            })
            .await;
            match written {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(error)) => Outcome {
                    http_status: None,
                    error: Some(error),
                },
                Err(e) => Outcome {
                    http_status: None,
                    error: Some(format!("file write task failed: {e}")),
                },
            }
        }
    };
    let duration_ms = now().saturating_duration_since(started).as_millis() as u64;
    let error = outcome.error.unwrap_or_default();
    if !error.is_empty() {
        tracing::warn!(hook = %hook.id, attempt, error = %error, "hook delivery failed");
    }
    Delivery {
        at,
        event_ids,
        status: if error.is_empty() {
            DeliveryStatus::Delivered
        } else {
            DeliveryStatus::Failed
        },
        http_status: outcome.http_status,
        error,
        duration_ms,
        attempt,
    }
}

/// Runs `f` on the blocking pool (the store is synchronous).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HookError> + Send + 'static,
) -> Result<T, HookError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HookError::Store(format!("store task failed: {e}")))?
}

fn store_error(e: StoreError) -> HookError {
    match e {
        StoreError::HookExists { id } => HookError::Exists(id),
        other => HookError::Store(other.to_string()),
    }
}

/// Wall time for the delivery log (RFC 3339 UTC, ms).
fn wall_now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Tokio's clock (paused in tests), read once per wake-up.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The bus subscriber name of the dispatcher (`tributary_events_dropped_total`).
const HOOKS_SUBSCRIBER: &str = "hooks";
/// The stream code of `POST /hooks/{id}/test`'s event.
const TEST_STREAM: &str = "_tributary_test_";
