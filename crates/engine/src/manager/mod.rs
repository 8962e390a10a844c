//! The stream manager: every configured input of a running stream, its ingest worker and its
//! health, and the failover machine that chooses between them (SPEC §Stream manager).
//!
//! # Model
//!
//! Each running stream has one [`Failover`] machine (`tributary_domain::failover`, sans-IO)
//! and one driver task. The driver wakes every [`TICK`] (faster while a switch waits for its
//! keyframe), when the machine's [`Failover::poll_timeout`] passes, and at once when a worker
//! reports a source event or a publisher comes or goes. Each wake takes `now` once, then:
//!
//! 1. feeds discrete facts: worker events (opened, open failed, lost, finished) and publisher
//!    changes of push inputs;
//! 2. samples every input's counters (hub port health plus the worker's statistics) into
//!    [`Observation`]s and reports them;
//! 3. runs what is due ([`Failover::handle_timeout`]);
//!
//! draining the machine's outputs after every call and carrying out each in order: `Select`
//! moves the intake's writer token, `Connect`/`Disconnect`/`Reconnect` start and stop workers,
//! `Probe` starts a fresh reader that must yield a packet within the probe timeout. Events go
//! to the bus; exhaustion and recovery set the stream's `inputs_exhausted` flag on the
//! coordinator. A switch's `input.failover` is published when the intake commits it (its first
//! keyframe, or a standby GOP replayed), with the measured `gap_ms`.
//!
//! All of a stream's state sits behind one mutex that is never held across `.await`; manual
//! switches, publisher claims and input updates take it briefly and drain the machine the
//! same way. Workers only report; the manager alone chooses (STYLE.md §3).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tributary_domain::StreamCode;
use tributary_domain::event::EventType;
use tributary_domain::failover::{
    Command, Event, Failover, FailoverConfig, FailoverError, InputEvent, InputSpec, Observation,
    Output, Report, Switch, SwitchReason, TICK,
};
use tributary_domain::redact::mask_url;
use tributary_domain::spec::{ParsedInput, StreamSpec};
use tributary_hub::{Intake, Port, PortKey, SessionReason};
use tributary_ingest::{IngestConfig, IngestContext, IngestError, Worker, WorkerEvent};

use crate::buffers::Intakes;
use crate::coordinator::{Degradation, WeakCoordinator};
use crate::events::EventBus;
use crate::lock;
use crate::metrics::{IngestError as IngestErrorKind, Metrics};
use crate::services::{InputService, ServiceError};

mod fault;
mod probe;
mod publisher;
mod runtime;

pub(crate) use publisher::{PushTarget, SlotRefusal};

use publisher::PushSlot;
#[cfg(test)]
mod tests;

/// The [`InputService`]: one entry per running stream.
pub(crate) struct Manager {
    /// Where each running stream's intake is found (filled by the buffer service).
    intakes: Intakes,
    /// What every stream's driver shares: settings and where to report.
    env: Arc<Env>,
    /// The running streams.
    streams: Mutex<HashMap<StreamCode, Arc<Ctl>>>,
}

/// What every stream's driver shares.
struct Env {
    /// Settings every ingest worker starts with (the FFmpeg binary for non-TS files, the SSRF
    /// guard, the roots handle); cloned at each connect. The guard and the roots are shared
    /// handles the worker reads when it spawns; the FFmpeg binary is replaced here by
    /// [`Manager::set_ffmpeg_path`]. Either way the next open follows without cutting a
    /// running one.
    ingest: Mutex<IngestConfig>,
    /// The failover thresholds (`manager.*`) new streams start with; replaced by
    /// [`Manager::set_failover`].
    failover: Mutex<FailoverConfig>,
    /// The bus and the coordinator, attached once both exist ([`Manager::attach`]).
    links: OnceLock<Links>,
    /// Where failovers, their gaps and input errors are tallied.
    metrics: Arc<Metrics>,
}

/// Where the manager reports.
struct Links {
    /// `input.*` and `stream.exhausted` events.
    events: EventBus,
    /// The stream status (`inputs_exhausted`).
    coordinator: WeakCoordinator,
}

/// One running stream: its state and its driver's controls.
struct Ctl {
    /// The stream.
    code: StreamCode,
    /// Everything the driver, the API and the listeners change; never held across `.await`.
    state: Mutex<Managed>,
    /// Wakes the driver: a worker event, a publisher change.
    wake: Arc<Notify>,
    /// Ends the driver (and running probes) when the stream is unregistered.
    cancel: CancellationToken,
    /// Settings and links.
    env: Arc<Env>,
}

/// One running stream's inputs and failover machine.
struct Managed {
    /// The intake in front of the stream's ingest buffer.
    intake: Intake,
    /// Inputs by their current priority.
    slots: BTreeMap<u32, Slot>,
    /// The failover machine.
    failover: Failover,
    /// The stream's publish key (`stream_key`), for the listeners' publish check.
    stream_key: String,
    /// The next intake port key: ports keep their key while their input moves between
    /// priorities, so keys are never reused.
    next_key: u32,
    /// The switch selected but not yet committed by the intake.
    pending: Option<Pending>,
    /// Measured output gaps of recent switches (switch instant, target, ms), newest first.
    gaps: VecDeque<(Instant, u32, u64)>,
}

/// A switch waiting for its commit.
struct Pending {
    /// The machine's record.
    switch: Switch,
    /// The intake port it selected.
    key: PortKey,
    /// The latest frame the previous input delivered when the switch was decided: the output
    /// gap runs from there to the commit.
    last_frame: Option<Instant>,
}

/// One configured input.
struct Slot {
    /// The configuration it runs with, as the edge parsed it.
    input: ParsedInput,
    /// Its entry into the intake.
    port: Port,
    /// The port's key in the intake.
    key: PortKey,
    /// Its ingest worker, while the machine wants it connected.
    worker: Option<Worker>,
    /// Bytes per second over recent windows.
    meter: RateMeter,
    /// A push input's slot; `None` for pulled inputs.
    push: Option<Arc<PushSlot>>,
    /// What the machine was last told about the publisher: (claims seen, connected).
    publisher_seen: (u64, bool),
    /// Cancels the probe running for this input, if any.
    probe: Option<CancellationToken>,
}

/// Why a manual switch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SwitchRefusal {
    /// The stream is not running.
    #[error("stream {0} is not running")]
    NotRunning(StreamCode),
    /// No input has this priority.
    #[error("stream {code}: no input has priority {priority}")]
    UnknownPriority {
        /// The stream.
        code: StreamCode,
        /// The priority asked for.
        priority: u32,
    },
    /// The input cannot be selected now (degraded, stopped, waiting for its publisher).
    #[error("stream {code}: {reason}")]
    Unhealthy {
        /// The stream.
        code: StreamCode,
        /// Why, naming the input.
        reason: String,
    },
}

/// Bitrate over windows of at least [`RATE_WINDOW`], smoothed with EWMA α = 0.5.
#[derive(Debug, Default)]
struct RateMeter {
    /// Start of the current window: instant and byte count then.
    window: Option<(Instant, u64)>,
    /// The smoothed rate, kbit/s.
    kbps: f64,
}

impl RateMeter {
    fn sample(&mut self, now: Instant, bytes: u64) {
        let Some((since, base)) = self.window else {
            self.window = Some((now, bytes));
            return;
        };
        let elapsed = now.saturating_duration_since(since);
        if elapsed < RATE_WINDOW {
            return;
        }
        let kbps = bytes.saturating_sub(base) as f64 * 8.0 / elapsed.as_secs_f64() / 1000.0;
        self.kbps = if self.kbps == 0.0 {
            kbps
        } else {
            0.5 * self.kbps + 0.5 * kbps
        };
        self.window = Some((now, bytes));
    }
}

impl Env {
    /// The ingest settings in force now (their shared handles read at spawn).
    fn ingest(&self) -> IngestConfig {
        lock(&self.ingest).clone()
    }
}

impl Manager {
    pub(crate) fn new(
        intakes: Intakes,
        ingest: IngestConfig,
        failover: FailoverConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            intakes,
            env: Arc::new(Env {
                ingest: Mutex::new(ingest),
                failover: Mutex::new(failover),
                links: OnceLock::new(),
                metrics,
            }),
            streams: Mutex::new(HashMap::new()),
        }
    }

    /// Connects the manager to the bus and the coordinator (both are built after it).
    /// `manager.*` changed through the config API: the thresholds of every running stream's
    /// failover machine and of streams started from now on. Applies at each machine's next
    /// evaluation; no input is restarted.
    pub(crate) fn set_failover(&self, config: FailoverConfig) {
        *lock(&self.env.failover) = config.clone();
        let streams: Vec<Arc<Ctl>> = lock(&self.streams).values().cloned().collect();
        for ctl in streams {
            lock(&ctl.state).failover.set_config(config.clone());
            ctl.wake.notify_one();
        }
    }

    /// The settings the next ingest worker is spawned with.
    #[cfg(test)]
    pub(crate) fn ingest_config(&self) -> IngestConfig {
        self.env.ingest()
    }

    /// `transcoder.ffmpeg_path` changed through the config API: file inputs that connect
    /// from now on remux non-TS files with `path`.
    pub(crate) fn set_ffmpeg_path(&self, path: PathBuf) {
        lock(&self.env.ingest).ffmpeg_path = path;
    }

    pub(crate) fn attach(&self, events: EventBus, coordinator: WeakCoordinator) {
        let _ = self.env.links.set(Links {
            events,
            coordinator,
        });
    }

    fn ctl(&self, code: &StreamCode) -> Option<Arc<Ctl>> {
        lock(&self.streams).get(code).cloned()
    }

    /// A manual switch (`POST /streams/{code}/inputs/switch`): `Some` pins the override,
    /// `None` clears it. Returns the priority that should end up active, if any.
    pub(crate) fn switch(
        &self,
        code: &StreamCode,
        priority: Option<u32>,
    ) -> Result<Option<u32>, SwitchRefusal> {
        let ctl = self
            .ctl(code)
            .ok_or_else(|| SwitchRefusal::NotRunning(code.clone()))?;
        let mut managed = ctl.lock();
        let now = Instant::now();
        let result = managed.failover.switch(priority, now);
        ctl.drain(&mut managed, now);
        match result {
            Ok(()) => Ok(managed.failover.active()),
            Err(FailoverError::UnknownInput { priority }) => Err(SwitchRefusal::UnknownPriority {
                code: code.clone(),
                priority,
            }),
            Err(e) => Err(SwitchRefusal::Unhealthy {
                code: code.clone(),
                reason: e.to_string(),
            }),
        }
    }

    /// Whether the stream's active input is `priority` and the intake has committed to it
    /// (its keyframe reached the buffer). `None` when the stream is not running.
    pub(crate) fn committed(&self, code: &StreamCode, priority: Option<u32>) -> Option<bool> {
        let ctl = self.ctl(code)?;
        let managed = ctl.lock();
        let active = managed.failover.active();
        if active != priority {
            return Some(false);
        }
        let Some(active) = active else {
            return Some(true);
        };
        let key = managed.slots.get(&active).map(|slot| slot.key);
        Some(managed.intake.selected() == key && !managed.intake.handoff_pending())
    }

    /// A new slot for `input`, with a port under a fresh key.
    fn open_slot(
        intake: &Intake,
        input: &ParsedInput,
        key: PortKey,
        wake: &Arc<Notify>,
    ) -> Result<Slot, ServiceError> {
        let port = intake
            .add_port(key, input.hot())
            .map_err(ServiceError::Hub)?;
        let push = input
            .push()
            .is_some()
            .then(|| Arc::new(PushSlot::new(wake)));
        Ok(Slot {
            input: input.clone(),
            port,
            key,
            worker: None,
            meter: RateMeter::default(),
            push,
            publisher_seen: (0, false),
            probe: None,
        })
    }
}

impl InputService for Manager {
    fn register(&self, spec: &StreamSpec) -> Result<(), ServiceError> {
        let code = spec.code();
        let intake = self
            .intakes
            .get(code)
            .ok_or_else(|| ServiceError::NotRegistered {
                code: code.clone(),
                service: "buffer hub",
            })?;
        let wake = Arc::new(Notify::new());
        let mut slots = BTreeMap::new();
        let mut next_key = 0;
        let mut specs = Vec::new();
        for input in spec.inputs() {
            let priority = input.priority();
            let key = PortKey(next_key);
            next_key += 1;
            let slot = Self::open_slot(&intake, input, key, &wake)?;
            specs.push(InputSpec::new(&input.input, input.kind()));
            slots.insert(priority, slot);
        }
        let now = Instant::now();
        let config = lock(&self.env.failover).clone();
        let failover =
            Failover::new(config, specs, now).map_err(|source| ServiceError::Failover {
                code: code.clone(),
                source,
            })?;
        let ctl = Arc::new(Ctl {
            code: code.clone(),
            state: Mutex::new(Managed {
                intake,
                slots,
                failover,
                stream_key: spec.stream().stream_key.clone(),
                next_key,
                pending: None,
                gaps: VecDeque::new(),
            }),
            wake,
            cancel: CancellationToken::new(),
            env: Arc::clone(&self.env),
        });
        {
            let mut managed = ctl.lock();
            if let Err(e) = ctl.drain_strict(&mut managed, now) {
                // Dropping the slots stops the workers already started.
                for slot in managed.slots.values() {
                    managed.intake.remove_port(slot.key);
                }
                return Err(e);
            }
            tracing::info!(stream = %code, inputs = managed.slots.len(),
                active = ?managed.failover.active(), "inputs registered");
        }
        tokio::spawn(drive(Arc::downgrade(&ctl), ctl.cancel.clone()));
        if let Some(old) = lock(&self.streams).insert(code.clone(), ctl) {
            old.cancel.cancel();
        }
        Ok(())
    }

    fn update_inputs(&self, _old: &StreamSpec, new: &StreamSpec) -> Result<(), ServiceError> {
        let code = new.code();
        let ctl = self.ctl(code).ok_or_else(|| ServiceError::NotRegistered {
            code: code.clone(),
            service: "stream manager",
        })?;
        // The spec's inputs have unique URLs and priorities 0..N-1 (the parser's rules).
        let mut managed = ctl.lock();
        let now = Instant::now();
        // Re-key by URL: an input that only moved keeps its port, worker and health.
        let mut old: Vec<Slot> = std::mem::take(&mut managed.slots).into_values().collect();
        let mut slots = BTreeMap::new();
        let mut specs = Vec::new();
        for input in new.inputs() {
            let slot = match old.iter().position(|s| s.input.url() == input.url()) {
                Some(at) => {
                    let mut slot = old.remove(at);
                    slot.input = input.clone();
                    slot
                }
                None => {
                    let key = PortKey(managed.next_key);
                    managed.next_key += 1;
                    match Self::open_slot(&managed.intake, input, key, &ctl.wake) {
                        Ok(slot) => slot,
                        Err(e) => {
                            // Put back what is left so the stream keeps running as it was
                            // as far as possible; the reconciler retries the update.
                            for slot in old.drain(..).chain(slots.into_values()) {
                                managed.slots.insert(slot.input.priority(), slot);
                            }
                            return Err(e);
                        }
                    }
                }
            };
            specs.push(InputSpec::new(&input.input, input.kind()));
            slots.insert(input.priority(), slot);
        }
        for gone in old {
            if let Some(probe) = &gone.probe {
                probe.cancel();
            }
            managed.intake.remove_port(gone.key);
            tracing::info!(stream = %code, url = %mask_url(gone.input.url()), "input removed");
        }
        managed.slots = slots;
        let result = managed.failover.update_inputs(specs, now);
        ctl.drain(&mut managed, now);
        result.map_err(|source| ServiceError::Failover {
            code: code.clone(),
            source,
        })
    }

    fn set_stream_key(&self, code: &StreamCode, key: &str) {
        if let Some(ctl) = self.ctl(code) {
            ctl.lock().stream_key = key.to_owned();
        }
    }

    fn unregister(&self, code: &StreamCode) {
        let removed = lock(&self.streams).remove(code);
        if let Some(ctl) = removed {
            ctl.cancel.cancel();
            let mut managed = ctl.lock();
            let keys: Vec<PortKey> = managed.slots.values().map(|slot| slot.key).collect();
            for key in keys {
                managed.intake.remove_port(key);
            }
            for slot in managed.slots.values_mut() {
                if let Some(probe) = slot.probe.take() {
                    probe.cancel();
                }
                // Dropping the worker stops it.
                slot.worker = None;
            }
            tracing::info!(stream = %code, "inputs unregistered");
        }
    }
}

impl Ctl {
    fn lock(&self) -> MutexGuard<'_, Managed> {
        lock(&self.state)
    }

    /// One wake of the driver at `now`: facts, observations, timers, commits.
    fn tick(self: &Arc<Self>, now: Instant) {
        let mut guard = self.lock();
        let managed = &mut *guard;

        // 1. Discrete facts.
        let mut facts = Vec::new();
        for (&priority, slot) in &mut managed.slots {
            if let Some(worker) = &slot.worker {
                for event in worker.take_events() {
                    self.announce(priority, slot.input.url(), &event);
                    if let Some(event) = input_event(event) {
                        facts.push((priority, event));
                    }
                }
            }
            if let Some(push) = &slot.push {
                let claims = push.claims.load(Ordering::Acquire);
                let live = push.live.load(Ordering::Acquire);
                let (seen_claims, seen_live) = slot.publisher_seen;
                let left = seen_live && (claims != seen_claims || !live);
                if left {
                    let message = lock(&push.last_end)
                        .as_ref()
                        .map_or_else(|| "connection closed".to_owned(), ToString::to_string);
                    facts.push((priority, InputEvent::PublisherDisconnected { message }));
                }
                if live && (claims != seen_claims || !seen_live) {
                    facts.push((priority, InputEvent::PublisherConnected));
                }
                slot.publisher_seen = (claims, live);
            }
        }
        for (priority, event) in facts {
            tracing::debug!(stream = %self.code, priority, ?event, "input event");
            let report = Report::Event { priority, event };
            if let Err(e) = managed.failover.handle_input(now, report) {
                tracing::debug!(stream = %self.code, error = %e, "stale input event");
            }
            self.drain(managed, now);
        }

        // 2. Counters.
        let observations: Vec<Observation> = managed
            .slots
            .iter()
            .map(|(&priority, slot)| observe(priority, slot))
            .collect();
        if let Err(e) = managed
            .failover
            .handle_input(now, Report::Observed(&observations))
        {
            tracing::debug!(stream = %self.code, error = %e, "stale observation");
        }
        self.drain(managed, now);

        // 3. Timers.
        if managed.failover.poll_timeout().is_some_and(|at| at <= now) {
            managed.failover.handle_timeout(now);
            self.drain(managed, now);
        }

        // 4. Commits, meters, status.
        self.check_commit(managed);
        for slot in managed.slots.values_mut() {
            let bytes = slot.port.health().bytes;
            slot.meter.sample(now, bytes);
        }
        self.sync_status(managed);
    }

    /// Publishes what a worker's connect loop emits (SPEC §Ingest): `input.connected` when
    /// its source opened, `input.reconnecting` when a read error or the peer ended it.
    fn announce(&self, priority: u32, url: &str, event: &WorkerEvent) {
        match event {
            WorkerEvent::Lost(_) => self
                .env
                .metrics
                .ingest_error(&self.code, IngestErrorKind::Reconnect),
            WorkerEvent::OpenFailed(_) => self
                .env
                .metrics
                .ingest_error(&self.code, IngestErrorKind::Open),
            _ => {}
        }
        let Some(links) = self.env.links.get() else {
            return;
        };
        let (kind, payload) = match event {
            WorkerEvent::Opened => (
                EventType::InputConnected,
                json!({"input_priority": priority, "url": mask_url(url)}),
            ),
            WorkerEvent::Lost(error) => (
                EventType::InputReconnecting,
                json!({"input_priority": priority, "error": error}),
            ),
            WorkerEvent::Finished(detail) => (
                EventType::InputFailed,
                json!({"input_priority": priority, "detail": detail}),
            ),
            _ => return,
        };
        links.events.publish(kind, self.code.as_str(), payload);
    }

    /// When the driver should wake next, at the latest.
    fn next_wake(&self, now: Instant) -> Instant {
        let managed = self.lock();
        let tick = if managed.pending.is_some() {
            COMMIT_POLL
        } else {
            TICK
        };
        let mut at = now + tick;
        if let Some(due) = managed.failover.poll_timeout() {
            at = at.min(due.max(now));
        }
        at
    }

    /// [`drain`](Self::drain), failing on the first command that cannot be carried out (at
    /// start, where a failure rolls the stream back).
    fn drain_strict(
        self: &Arc<Self>,
        managed: &mut Managed,
        now: Instant,
    ) -> Result<(), ServiceError> {
        let failures = self.run_outputs(managed, now);
        match failures.into_iter().next() {
            Some((_, error)) => Err(ServiceError::Ingest(error)),
            None => Ok(()),
        }
    }

    /// Drains the machine and carries out its outputs in order. A worker that cannot start
    /// (its settings do not parse) is reported back as finished: it stays `stopped` until its
    /// settings change.
    fn drain(self: &Arc<Self>, managed: &mut Managed, now: Instant) {
        // Each round stops at least one input for good, so this ends.
        for _ in 0..=managed.slots.len() {
            let failures = self.run_outputs(managed, now);
            if failures.is_empty() {
                return;
            }
            for (priority, error) in failures {
                let event = InputEvent::Finished {
                    message: error.to_string(),
                };
                let report = Report::Event { priority, event };
                if let Err(e) = managed.failover.handle_input(now, report) {
                    tracing::debug!(stream = %self.code, error = %e, "stale failure");
                }
            }
        }
    }

    /// Carries out every queued output; returns the inputs whose worker failed to start.
    fn run_outputs(
        self: &Arc<Self>,
        managed: &mut Managed,
        now: Instant,
    ) -> Vec<(u32, IngestError)> {
        let mut failures = Vec::new();
        while let Some(output) = managed.failover.poll_output() {
            match output {
                Output::Command(command) => {
                    if let Err((priority, error)) = self.command(managed, command, now) {
                        tracing::warn!(stream = %self.code, priority, %error,
                            "input worker did not start");
                        failures.push((priority, error));
                    }
                }
                Output::Event(event) => self.event(managed, event),
            }
        }
        failures
    }

    fn command(
        self: &Arc<Self>,
        managed: &mut Managed,
        command: Command,
        now: Instant,
    ) -> Result<(), (u32, IngestError)> {
        let code = &self.code;
        match command {
            Command::Connect(priority) => {
                let Some(slot) = managed.slots.get_mut(&priority) else {
                    return Ok(());
                };
                slot.connect(code, &self.env.ingest(), &self.wake)
                    .map_err(|error| (priority, error))
            }
            Command::Disconnect(priority) => {
                if let Some(slot) = managed.slots.get_mut(&priority) {
                    slot.worker = None;
                }
                Ok(())
            }
            Command::Reconnect(priority) => {
                let Some(slot) = managed.slots.get_mut(&priority) else {
                    return Ok(());
                };
                slot.worker = None;
                slot.connect(code, &self.env.ingest(), &self.wake)
                    .map_err(|error| (priority, error))
            }
            Command::Select { priority, reason } => {
                let Some(key) = managed.slots.get(&priority).map(|slot| slot.key) else {
                    return Ok(());
                };
                let previous = managed.intake.selected();
                let last_frame = previous.and_then(|prev| {
                    managed
                        .slots
                        .values()
                        .find(|slot| slot.key == prev)
                        .and_then(|slot| slot.port.health().last_frame_at)
                });
                let session = match reason {
                    SwitchReason::Initial => SessionReason::Fresh,
                    _ => SessionReason::Failover,
                };
                if let Err(e) = managed.intake.select(key, session) {
                    tracing::warn!(stream = %code, priority, error = %e, "select failed");
                }
                // The machine's switch record follows this command; it completes `pending`.
                self.supersede(managed);
                managed.pending = Some(Pending {
                    switch: Switch {
                        at: now,
                        from: None,
                        to: priority,
                        reason,
                        detail: String::new(),
                    },
                    key,
                    last_frame,
                });
                Ok(())
            }
            Command::Deselect => {
                managed.intake.deselect();
                self.supersede(managed);
                Ok(())
            }
            Command::Probe(priority) => {
                let Some(slot) = managed.slots.get_mut(&priority) else {
                    return Ok(());
                };
                if slot.probe.is_some() {
                    return Ok(());
                }
                let cancel = self.cancel.child_token();
                slot.probe = Some(cancel.clone());
                let timeout = managed.failover.config().probe_timeout;
                let input = slot.input.clone();
                tokio::spawn(probe::probe(Arc::downgrade(self), input, timeout, cancel));
                Ok(())
            }
        }
    }

    fn event(&self, managed: &mut Managed, event: Event) {
        let code = &self.code;
        match &event {
            Event::Switched(switch) => {
                tracing::info!(stream = %code, from = ?switch.from, to = switch.to,
                    reason = %switch.reason, detail = %switch.detail, "input switch");
                match &mut managed.pending {
                    Some(pending) if pending.switch.to == switch.to => {
                        pending.switch = switch.clone();
                    }
                    _ => self.publish_switch(switch, None),
                }
                // A replayed standby GOP commits at select.
                self.check_commit(managed);
                return;
            }
            Event::Degraded {
                priority,
                signal,
                detail,
            } => {
                tracing::warn!(stream = %code, priority, %signal, %detail, "input degraded");
            }
            Event::Restored { priority } => {
                tracing::info!(stream = %code, priority, "input restored");
            }
            Event::Exhausted => tracing::warn!(stream = %code, "every input is exhausted"),
            Event::Recovered => tracing::info!(stream = %code, "an input is selected again"),
        }
        if let Some(links) = self.env.links.get() {
            for (kind, payload) in event.bus_events() {
                links.events.publish(kind, code.as_str(), payload);
            }
        }
        if matches!(event, Event::Exhausted | Event::Recovered) {
            self.sync_status(managed);
        }
    }

    /// Publishes `input.failover` for the pending switch once the intake has committed it.
    fn check_commit(&self, managed: &mut Managed) {
        let Some(pending) = &managed.pending else {
            return;
        };
        let intake = &managed.intake;
        if intake.selected() != Some(pending.key) || intake.handoff_pending() {
            return;
        }
        let Some(pending) = managed.pending.take() else {
            return;
        };
        let gap = match (pending.last_frame, managed.intake.committed_at()) {
            (Some(last), Some(commit)) if pending.switch.from.is_some() => {
                Some(commit.saturating_duration_since(last).as_millis() as u64)
            }
            _ => None,
        };
        if let Some(gap) = gap {
            managed
                .gaps
                .push_front((pending.switch.at, pending.switch.to, gap));
            managed.gaps.truncate(GAPS_KEPT);
        }
        tracing::info!(stream = %self.code, to = pending.switch.to, gap_ms = ?gap,
            "input switch committed");
        self.publish_switch(&pending.switch, gap);
    }

    /// A switch that never committed (another one replaced it): published without a gap.
    fn supersede(&self, managed: &mut Managed) {
        if let Some(pending) = managed.pending.take() {
            self.publish_switch(&pending.switch, None);
        }
    }

    fn publish_switch(&self, switch: &Switch, gap_ms: Option<u64>) {
        if switch.from.is_some() {
            let metrics = &self.env.metrics;
            let gap = gap_ms.map(Duration::from_millis);
            metrics.failover(&self.code, switch.reason.name(), gap);
            if matches!(
                switch.reason,
                SwitchReason::Error
                    | SwitchReason::Timeout
                    | SwitchReason::Frozen
                    | SwitchReason::TrackLost
                    | SwitchReason::CcErrors
            ) {
                metrics.ingest_error(&self.code, IngestErrorKind::Failover);
            }
        }
        let Some(links) = self.env.links.get() else {
            return;
        };
        for (kind, mut payload) in Event::Switched(switch.clone()).bus_events() {
            payload["gap_ms"] = json!(gap_ms);
            links.events.publish(kind, self.code.as_str(), payload);
        }
    }

    /// Tells the coordinator whether every input is exhausted. Re-checked at every tick: the
    /// coordinator clears its flags when the stream (re)starts.
    fn sync_status(&self, managed: &Managed) {
        let Some(coordinator) = self
            .env
            .links
            .get()
            .and_then(|links| links.coordinator.upgrade())
        else {
            return;
        };
        let exhausted = managed.failover.exhausted();
        let flagged = coordinator.degraded_by(&self.code, Degradation::InputsExhausted);
        if exhausted != flagged && coordinator.is_running(&self.code) {
            coordinator.set_degradation(&self.code, Degradation::InputsExhausted, exhausted);
        }
    }
}

impl Slot {
    /// Starts the worker if it is not running. A push input has no worker: the listener
    /// writes into its port while a publisher is connected.
    fn connect(
        &mut self,
        code: &StreamCode,
        config: &IngestConfig,
        wake: &Arc<Notify>,
    ) -> Result<(), IngestError> {
        if self.worker.is_some() || self.push.is_some() {
            return Ok(());
        }
        let ctx = IngestContext {
            code: code.clone(),
            priority: self.input.priority(),
        };
        let worker = tributary_ingest::spawn_with(ctx, &self.input, self.port.clone(), config)?;
        worker.wake_on_event(Arc::clone(wake));
        self.worker = Some(worker);
        Ok(())
    }
}

/// The driver of one stream: wakes at ticks, deadlines and notifications until cancelled or
/// the stream is gone.
async fn drive(ctl: Weak<Ctl>, cancel: CancellationToken) {
    let Some(wake) = ctl.upgrade().map(|ctl| Arc::clone(&ctl.wake)) else {
        return;
    };
    loop {
        let Some(strong) = ctl.upgrade() else { return };
        let now = tokio::time::Instant::now().into_std();
        strong.tick(now);
        let next = strong.next_wake(now);
        drop(strong);
        tokio::select! {
            () = cancel.cancelled() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep_until(next.into()) => {}
        }
    }
}

/// The machine's view of a worker event; `None` for kinds it has no use for.
fn input_event(event: WorkerEvent) -> Option<InputEvent> {
    Some(match event {
        WorkerEvent::Opened => InputEvent::Opened,
        WorkerEvent::OpenFailed(message) => InputEvent::OpenFailed { message },
        WorkerEvent::Lost(message) => InputEvent::Error { message },
        WorkerEvent::Finished(message) => InputEvent::Finished { message },
        _ => return None,
    })
}

/// One input's counters for the machine.
fn observe(priority: u32, slot: &Slot) -> Observation {
    let health = slot.port.health();
    let stats = slot.worker.as_ref().map(Worker::stats);
    let session = match &slot.push {
        Some(push) => push.claims.load(Ordering::Acquire),
        // Reopens and new timelines on an open connection both begin a session.
        None => stats.as_ref().map_or(0, |s| s.reconnects + s.restarts),
    };
    Observation {
        priority,
        keyframes: health.keyframes,
        last_frame_at: health.last_frame_at,
        last_keyframe_at: health.last_keyframe_at,
        last_video_at: health.last_video_at,
        last_audio_at: health.last_audio_at,
        video_pts: health.video_pts,
        cc_errors: stats.as_ref().map_or(0, |s| s.cc_errors),
        session,
    }
}

/// The shortest window a bitrate sample covers (SPEC §API "Runtime object": ≥ 3 s, EWMA 0.5).
const RATE_WINDOW: Duration = Duration::from_secs(3);
/// How often the driver checks for a commit while a switch waits for its keyframe, so
/// `input.failover` goes out promptly.
const COMMIT_POLL: Duration = Duration::from_millis(20);
/// Measured gaps kept (as many as switch records).
const GAPS_KEPT: usize = 20;
