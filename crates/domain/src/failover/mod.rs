//! The failover machine of one stream (SPEC §Stream manager): which input is active, which are
//! healthy, and when to switch. Sans-IO: the engine's manager feeds it counters and events with
//! `now`, and carries out the commands it returns.
//!
//! # Model
//!
//! Each input is `idle` (healthy or unknown), `active` (selected), `degraded` (failed a health
//! [`Signal`]) or `stopped` (its source ended for good). The machine watches an input (judges
//! its signals) while it is connected: the active input, hot standbys (UDP, push with a
//! publisher, `hot_standby: true`), and a recovered cold input warming up for a failback.
//!
//! - **Selection**: the manual override if it is selectable, else the lowest priority that is
//!   neither degraded nor stopped (push inputs only with a publisher). An override is dropped as
//!   soon as its input stops being selectable. No candidate: the stream is *exhausted*
//!   ([`Event::Exhausted`] once per episode, [`Command::Deselect`]).
//! - **Degrading** the active input switches at once to the best candidate, with the signal's
//!   reason and detail.
//! - **Recovery**: a degraded hot (or push) input recovers when its counters show the problem
//!   is over (a keyframe after it degraded, plus what the signal needs), or, for push, when a
//!   publisher connects; a degraded cold input is probed [`FailoverConfig::probe_cooldown`]
//!   after it degraded and then at that interval. A recovered input is idle again
//!   ([`Event::Restored`]). If the stream is exhausted it takes over at once (`recovery`).
//! - **Failback**: an input that outranks the active one takes over after
//!   [`FailoverConfig::failback_hold`] of continuous health (`failback`), or at once if it has
//!   never degraded since the stream started (a primary encoder connecting after its backup).
//!   A pinned override suspends failback.
//! - **Connections**: cold inputs are connected while active or warming; hot inputs always;
//!   push inputs never (their publisher connects itself). While exhausted, the input that was
//!   active stays connected, so its own reconnect loop serves as its probe.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tributary_domain::Input;
//! use tributary_domain::failover::{
//!     Command, Failover, FailoverConfig, InputEvent, InputSpec, Output, Report, SwitchReason,
//! };
//! use tributary_domain::protocol::InputKind;
//!
//! # #[allow(clippy::disallowed_methods)]
//! let start = Instant::now(); // in the engine: read once per wake-up and passed down
//! let inputs = vec![
//!     InputSpec::new(&Input::new("srt://main.example.org:7001", 0), InputKind::Srt),
//!     InputSpec::new(&Input::new("udp://239.0.0.1:5000", 1), InputKind::Udp),
//! ];
//! let mut failover = Failover::new(FailoverConfig::default(), inputs, start).unwrap();
//! let commands: Vec<Output> = std::iter::from_fn(|| failover.poll_output()).collect();
//! assert!(commands.contains(&Output::Command(Command::Select {
//!     priority: 0,
//!     reason: SwitchReason::Initial,
//! })));
//!
//! // The SRT worker reports that the peer hung up: the UDP standby takes over.
//! let now = start + Duration::from_secs(60);
//! let event = InputEvent::Error { message: "EOF".into() };
//! failover.handle_input(now, Report::Event { priority: 0, event }).unwrap();
//! while let Some(output) = failover.poll_output() {
//!     // act on commands in order; publish events
//! }
//! assert_eq!(failover.active(), Some(1));
//! assert_eq!(failover.switches()[0].reason, SwitchReason::Error);
//! ```

mod health;
mod output;
mod slot;
mod spec;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use health::{Degradation, Observation, Signal};
pub use output::{ALL_INPUTS_EXHAUSTED, Command, Event, Output, Switch, SwitchReason};
pub use slot::{InputError, InputReport, InputStatus};
pub use spec::{FailoverConfig, InputSpec};

use health::{Finding, secs};
use slot::Slot;

use crate::redact::mask_url;

/// The failover machine of one running stream.
///
/// # Driving contract
///
/// 1. Create it when the stream starts, with the template-resolved inputs; drain
///    [`poll_output`](Self::poll_output) (the initial selection and connections).
/// 2. Every tick, at most [`TICK`] apart: take `now` once, sample every input's counters into
///    an [`Observation`], and call [`handle_input`](Self::handle_input) with
///    [`Report::Observed`]. Counter-based signals (silence, frozen, track lost, continuity
///    errors) are judged only then, so a late tick delays detection but never misjudges it.
/// 3. Report each discrete fact when it happens with [`Report::Event`]: worker errors, EOF,
///    open results, publishers, probe results. Errors and EOF degrade at once.
/// 4. When [`poll_timeout`](Self::poll_timeout) passes, call
///    [`handle_timeout`](Self::handle_timeout): probes and failback holds run on it. A tick
///    does the same work, so a driver that ticks every 250 ms may skip this.
/// 5. After *every* call (including [`switch`](Self::switch) and
///    [`update_inputs`](Self::update_inputs)), drain `poll_output` until `None` and act on each
///    output in order: commands name what to connect, select or probe; events go to the bus
///    ([`Event::bus_events`]) and the coordinator. The queue holds what one call produced (a
///    few outputs per input), so draining after each call keeps it bounded.
///
/// Left to the engine: running probes and enforcing their timeout, measuring `gap_ms` and
/// emitting `input.failover` when the intake commits, rejecting a manual switch while the
/// stream is not running, and wall-clock stamps.
#[derive(Debug)]
pub struct Failover {
    /// Thresholds; replaceable on a hot config reload.
    config: FailoverConfig,
    /// The inputs, by priority.
    slots: Vec<Slot>,
    /// The selected input, `None` before the first selection and while exhausted.
    active: Option<u32>,
    /// The manual override, while pinned.
    pinned: Option<u32>,
    /// While exhausted: the input that was active before, the `from` of the recovery switch.
    previous: Option<u32>,
    /// Whether every input is exhausted (an episode is running).
    exhausted: bool,
    /// Whether any input was ever selected: the first selection is `initial`, later ones out
    /// of exhaustion `recovery`.
    selected_once: bool,
    /// Switch records, newest first, at most `config.switches_kept`.
    switches: Vec<Switch>,
    /// Outputs not yet polled, oldest first.
    outputs: VecDeque<Output>,
}

impl Failover {
    /// The machine for a stream starting at `now` with `inputs`; the initial selection and
    /// connections are queued as outputs. Fails on duplicate priorities or URLs.
    pub fn new(
        config: FailoverConfig,
        inputs: Vec<InputSpec>,
        now: Instant,
    ) -> Result<Self, FailoverError> {
        let inputs = check_inputs(inputs)?;
        let mut machine = Self {
            config,
            slots: inputs
                .into_iter()
                .map(|spec| Slot::new(spec, now))
                .collect(),
            active: None,
            pinned: None,
            previous: None,
            exhausted: false,
            selected_once: false,
            switches: Vec::new(),
            outputs: VecDeque::new(),
        };
        machine.settle(now);
        Ok(machine)
    }

    /// Takes a report: the tick's observations or one input's event. Decisions follow at once.
    ///
    /// An [`FailoverError::UnknownInput`] means the report named an input that is no longer
    /// configured (it raced [`update_inputs`](Self::update_inputs)); everything else in it was
    /// applied, and the error is only worth a debug log.
    pub fn handle_input(&mut self, now: Instant, report: Report<'_>) -> Result<(), FailoverError> {
        let result = match report {
            Report::Observed(observations) => self.observe(observations, now),
            Report::Event { priority, event } => self.input_event(priority, &event, now),
        };
        self.settle(now);
        result
    }

    /// Runs what is due at `now`: probes, failback after the hold.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.settle(now);
    }

    /// The next output, oldest first.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) has work next (a probe, the end of a
    /// failback hold), if anything is scheduled. Counter-based signals are not in it: they
    /// are judged at the ticks.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let probes = self
            .slots
            .iter()
            .filter(|slot| slot.probe_eligible())
            .filter_map(|slot| slot.next_probe);
        let failbacks = self
            .failback_contenders()
            .filter(|slot| slot.ever_degraded && slot.health.watched())
            .map(|slot| slot.healthy_since + self.config.failback_hold);
        probes.chain(failbacks).min()
    }

    /// A manual switch: `Some(priority)` pins the override and switches to it (`manual`);
    /// `None` clears the override, and if an input then outranks the active one and may take
    /// over at once, switches to it (`manual`, "override cleared").
    ///
    /// Refused when the input is unknown, degraded, stopped, or a push input without a
    /// publisher. (A stream that is not running has no machine: the engine refuses that.)
    pub fn switch(&mut self, priority: Option<u32>, now: Instant) -> Result<(), FailoverError> {
        let Some(priority) = priority else {
            if self.pinned.take().is_some()
                && let Some((to, _)) = self.failback_candidate(now)
            {
                let from = self.active;
                self.switch_to(
                    to,
                    from,
                    SwitchReason::Manual,
                    "override cleared".into(),
                    now,
                );
            }
            self.settle(now);
            return Ok(());
        };
        let slot = self
            .slot(priority)
            .ok_or(FailoverError::UnknownInput { priority })?;
        if let Some(message) = &slot.stopped {
            return Err(FailoverError::Stopped {
                priority,
                message: message.clone(),
            });
        }
        if let Some(degradation) = &slot.degraded {
            return Err(FailoverError::Degraded {
                priority,
                signal: degradation.signal,
                detail: degradation.detail.clone(),
            });
        }
        if slot.spec.push && !slot.publisher {
            return Err(FailoverError::WaitingForPublisher { priority });
        }
        self.pinned = Some(priority);
        if self.active != Some(priority) {
            let from = self.active;
            let detail = format!("override pinned to input {priority}");
            self.switch_to(priority, from, SwitchReason::Manual, detail, now);
        }
        self.settle(now);
        Ok(())
    }

    /// Applies a new input list (SPEC §Stream manager "Live input changes"), matched to the
    /// old one by URL: an input whose URL moved keeps its health, errors and connection, and
    /// the active input and override follow their URL.
    ///
    /// - A removed active input: switch to the best candidate (`input_removed`), or exhaust.
    /// - An added input that outranks the active one (and no override is pinned): it takes
    ///   over at once (`input_added`); added hot inputs are connected.
    /// - An updated input (same URL, other settings) that stays connected:
    ///   [`Command::Reconnect`], no switch record. An updated degraded cold input is probed at
    ///   once; an updated stopped input is idle again.
    ///
    /// Before calling, the engine re-keys its own per-input state by URL the same way, drops
    /// removed inputs (their workers and ports: no command names them) and adds ports for the
    /// new ones. Reports from then on use the new priorities. Fails, changing nothing, on
    /// duplicate priorities or URLs.
    pub fn update_inputs(
        &mut self,
        inputs: Vec<InputSpec>,
        now: Instant,
    ) -> Result<(), FailoverError> {
        let inputs = check_inputs(inputs)?;
        let url_of = |priority: Option<u32>| {
            priority
                .and_then(|p| self.slot(p))
                .map(|slot| slot.spec.url().to_owned())
        };
        let active_url = url_of(self.active);
        let pinned_url = url_of(self.pinned);
        let previous_url = url_of(self.previous);
        let old_active = self.active;

        let mut old = std::mem::take(&mut self.slots);
        let mut added = Vec::new();
        let mut updated = Vec::new();
        for spec in inputs {
            let priority = spec.priority();
            let Some(at) = old.iter().position(|slot| slot.spec.url() == spec.url()) else {
                added.push(priority);
                self.slots.push(Slot::new(spec, now));
                continue;
            };
            let mut slot = old.remove(at);
            if slot.spec.input.settings_differ(&spec.input) {
                updated.push((priority, slot.connected));
                // New settings deserve a fresh try.
                slot.stopped = None;
                if slot.degraded.is_some() {
                    slot.next_probe = Some(now);
                }
            }
            slot.spec = spec;
            self.slots.push(slot);
        }

        let find = |url: Option<String>| {
            let url = url?;
            self.slots
                .iter()
                .find(|slot| slot.spec.url() == url)
                .map(Slot::priority)
        };
        self.active = find(active_url);
        self.pinned = find(pinned_url);
        self.previous = find(previous_url);

        if let (Some(removed), None) = (old_active, self.active) {
            let detail = format!("input {removed} removed");
            match self.best() {
                Some(to) => {
                    self.switch_to(to, Some(removed), SwitchReason::InputRemoved, detail, now);
                }
                None => {
                    // The engine removed the selected port already; say so all the same.
                    self.outputs.push_back(Output::Command(Command::Deselect));
                    self.exhaust(None);
                }
            }
        } else if let Some(to) = self.added_takeover(&added) {
            let from = self.active.or(self.previous.take());
            let detail = format!("input {to} added");
            self.switch_to(to, from, SwitchReason::InputAdded, detail, now);
            self.leave_exhaustion();
        }
        self.settle(now);

        for (priority, was_connected) in updated {
            if was_connected && self.slot(priority).is_some_and(|slot| slot.connected) {
                self.outputs
                    .push_back(Output::Command(Command::Reconnect(priority)));
            }
        }
        Ok(())
    }

    /// Replaces the thresholds (a hot reload of `manager.*`); they apply from the next call.
    pub fn set_config(&mut self, config: FailoverConfig) {
        self.switches.truncate(config.switches_kept);
        for slot in &mut self.slots {
            slot.errors.truncate(config.errors_kept);
        }
        self.config = config;
    }

    /// The thresholds in force.
    pub fn config(&self) -> &FailoverConfig {
        &self.config
    }

    /// The selected input (`runtime.active_input_priority`); `None` while exhausted.
    pub fn active(&self) -> Option<u32> {
        self.active
    }

    /// The pinned manual override (`runtime.override_input_priority`).
    pub fn override_priority(&self) -> Option<u32> {
        self.pinned
    }

    /// Whether every input is exhausted (`runtime.exhausted`).
    pub fn exhausted(&self) -> bool {
        self.exhausted
    }

    /// The switch history (`runtime.switches`), newest first.
    pub fn switches(&self) -> &[Switch] {
        &self.switches
    }

    /// Every input, by priority (`runtime.inputs`).
    pub fn inputs(&self) -> impl Iterator<Item = InputReport<'_>> + '_ {
        self.slots.iter().map(|slot| slot.report(self.active))
    }

    /// One input.
    pub fn input(&self, priority: u32) -> Option<InputReport<'_>> {
        self.slot(priority).map(|slot| slot.report(self.active))
    }

    fn observe(&mut self, observations: &[Observation], now: Instant) -> Result<(), FailoverError> {
        let mut unknown = None;
        for obs in observations {
            match self.index(obs.priority) {
                Some(i) => self.slots[i].health.observe(obs, now, &self.config),
                None => unknown = unknown.or(Some(obs.priority)),
            }
        }
        for i in 0..self.slots.len() {
            let slot = &self.slots[i];
            if !slot.health.watched() || slot.stopped.is_some() {
                continue;
            }
            match &slot.degraded {
                None => {
                    let timeout = slot.spec.packet_timeout(&self.config);
                    if let Some(finding) = slot.health.signal(now, &self.config, timeout) {
                        self.degrade(i, finding, now);
                    }
                }
                Some(degradation) => {
                    if slot.health.recovered(degradation, now, &self.config) {
                        self.restore(i, now);
                    }
                }
            }
        }
        match unknown {
            Some(priority) => Err(FailoverError::UnknownInput { priority }),
            None => Ok(()),
        }
    }

    fn input_event(
        &mut self,
        priority: u32,
        event: &InputEvent,
        now: Instant,
    ) -> Result<(), FailoverError> {
        let i = self
            .index(priority)
            .ok_or(FailoverError::UnknownInput { priority })?;
        let kept = self.config.errors_kept;
        let slot = &mut self.slots[i];
        let usable = slot.health.watched() && slot.degraded.is_none() && slot.stopped.is_none();
        match event {
            InputEvent::Opened => {
                slot.health.open_failures = 0;
                if slot.health.watched() {
                    slot.health.begin_session(now);
                }
            }
            InputEvent::OpenFailed { message } => {
                slot.record_error(now, message, kept);
                let limit = self.config.open_failures;
                if !usable || limit == 0 {
                    return Ok(());
                }
                slot.health.open_failures += 1;
                if slot.health.open_failures >= limit {
                    let detail = format!("{limit} consecutive failed opens; last: {message}");
                    self.degrade(i, error_finding(detail), now);
                }
            }
            InputEvent::Error { message } => {
                slot.record_error(now, message, kept);
                if usable {
                    self.degrade(i, error_finding(message.clone()), now);
                }
            }
            InputEvent::Finished { message } => {
                slot.record_error(now, message, kept);
                slot.stopped = Some(message.clone());
                slot.degraded = None;
                slot.ever_degraded = true;
                slot.refresh_watch(now);
            }
            InputEvent::PublisherConnected => {
                slot.publisher = true;
                slot.refresh_watch(now);
                if slot.degraded.is_some() {
                    self.restore(i, now);
                }
            }
            InputEvent::PublisherDisconnected { message } => {
                if !slot.publisher {
                    return Ok(());
                }
                slot.publisher = false;
                let detail = format!("publisher disconnected: {message}");
                slot.record_error(now, &detail, kept);
                slot.refresh_watch(now);
                if usable {
                    self.degrade(i, error_finding(detail), now);
                }
            }
            InputEvent::ProbeSucceeded => {
                if slot.degraded.is_some() && slot.probe_eligible() {
                    self.restore(i, now);
                }
            }
            InputEvent::ProbeFailed { message } => {
                slot.record_error(now, &format!("probe failed: {message}"), kept);
            }
        }
        Ok(())
    }

    /// Marks input `i` degraded. Switching away from it, if it is active, is
    /// [`settle`](Self::settle)'s job, so that several inputs failing at one tick make one
    /// decision.
    fn degrade(&mut self, i: usize, finding: Finding, now: Instant) {
        let kept = self.config.errors_kept;
        let slot = &mut self.slots[i];
        if finding.signal != Signal::Error {
            // An error's message is already in the list, reported with the event.
            slot.record_error(now, &finding.detail, kept);
        }
        slot.ever_degraded = true;
        slot.health.begin_session(now);
        slot.next_probe = Some(now + self.config.probe_cooldown);
        self.outputs.push_back(Output::Event(Event::Degraded {
            priority: slot.priority(),
            signal: finding.signal,
            detail: finding.detail.clone(),
        }));
        slot.degraded = Some(Degradation {
            signal: finding.signal,
            detail: finding.detail,
            since: now,
            lost: finding.lost,
        });
    }

    /// Input `i` recovered: idle again, its continuous health counting from `now`.
    fn restore(&mut self, i: usize, now: Instant) {
        let slot = &mut self.slots[i];
        slot.degraded = None;
        slot.next_probe = None;
        slot.healthy_since = now;
        slot.health.open_failures = 0;
        slot.health.rewatch(now);
        self.outputs.push_back(Output::Event(Event::Restored {
            priority: slot.priority(),
        }));
    }

    /// Brings selection, connections and probes in line with the inputs' states.
    fn settle(&mut self, now: Instant) {
        if let Some(slot) = self.active.and_then(|a| self.slot(a))
            && !slot.selectable()
        {
            let (reason, detail) = match (&slot.degraded, &slot.stopped) {
                (Some(d), _) => (SwitchReason::from(d.signal), d.detail.clone()),
                (None, Some(message)) => (SwitchReason::Error, message.clone()),
                (None, None) => (SwitchReason::Error, "input unavailable".to_owned()),
            };
            self.replace_active(reason, detail, now);
        }
        match self.active {
            None => match self.best() {
                Some(to) => {
                    let from = self.previous.take();
                    let (reason, detail) = if self.selected_once {
                        (SwitchReason::Recovery, format!("input {to} recovered"))
                    } else {
                        (SwitchReason::Initial, format!("input {to} selected first"))
                    };
                    self.switch_to(to, from, reason, detail, now);
                    self.leave_exhaustion();
                }
                None if !self.exhausted => self.exhaust(None),
                None => {}
            },
            Some(active) => {
                if let Some((to, detail)) = self.failback_candidate(now) {
                    self.switch_to(to, Some(active), SwitchReason::Failback, detail, now);
                }
            }
        }
        self.sync_connections(now);
        self.run_probes(now);
    }

    /// The active input can no longer be used: switch to the best candidate, or exhaust.
    fn replace_active(&mut self, reason: SwitchReason, detail: String, now: Instant) {
        let from = self.active;
        if self.pinned == from {
            self.pinned = None;
        }
        match self.best() {
            Some(to) => self.switch_to(to, from, reason, detail, now),
            None => self.exhaust(from),
        }
    }

    /// Selects `to`, connecting it first if needed, and records the switch.
    fn switch_to(
        &mut self,
        to: u32,
        from: Option<u32>,
        reason: SwitchReason,
        detail: String,
        now: Instant,
    ) {
        let Some(i) = self.index(to) else { return };
        let slot = &mut self.slots[i];
        if !slot.spec.push && !slot.connected {
            slot.connected = true;
            self.outputs
                .push_back(Output::Command(Command::Connect(to)));
            slot.refresh_watch(now);
        }
        self.outputs.push_back(Output::Command(Command::Select {
            priority: to,
            reason,
        }));
        self.active = Some(to);
        self.previous = None;
        self.selected_once = true;
        let switch = Switch {
            at: now,
            from,
            to,
            reason,
            detail,
        };
        self.switches.insert(0, switch.clone());
        self.switches.truncate(self.config.switches_kept);
        self.outputs
            .push_back(Output::Event(Event::Switched(switch)));
    }

    /// No input can be selected. `from` is the input that was active, if any.
    fn exhaust(&mut self, from: Option<u32>) {
        if self.active.take().is_some() {
            self.outputs.push_back(Output::Command(Command::Deselect));
        }
        self.previous = from;
        if !self.exhausted {
            self.exhausted = true;
            self.outputs.push_back(Output::Event(Event::Exhausted));
        }
    }

    /// Ends an episode of exhaustion, if one was running, after a selection.
    fn leave_exhaustion(&mut self) {
        if self.exhausted && self.active.is_some() {
            self.exhausted = false;
            self.outputs.push_back(Output::Event(Event::Recovered));
        }
    }

    /// The input selection wants: the override if selectable, else the lowest selectable.
    fn best(&self) -> Option<u32> {
        if let Some(pinned) = self.pinned
            && self.slot(pinned).is_some_and(Slot::selectable)
        {
            return Some(pinned);
        }
        self.slots
            .iter()
            .find(|slot| slot.selectable())
            .map(Slot::priority)
    }

    /// Selectable inputs that outrank the active one, best first, while no override is pinned.
    fn failback_contenders(&self) -> impl Iterator<Item = &Slot> + '_ {
        let active = self.active.filter(|_| self.pinned.is_none());
        self.slots
            .iter()
            .take_while(move |slot| active.is_some_and(|a| slot.priority() < a))
            .filter(|slot| slot.selectable())
    }

    /// The best input that may take over from the active one now, with the switch detail.
    fn failback_candidate(&self, now: Instant) -> Option<(u32, String)> {
        let active = self.active?;
        let hold = self.config.failback_hold;
        self.failback_contenders().find_map(|slot| {
            let priority = slot.priority();
            if !slot.ever_degraded {
                let detail = format!(
                    "input {priority} outranks input {active} and has not degraded since start"
                );
                return Some((priority, detail));
            }
            let held = slot.health.watched() && now >= slot.healthy_since + hold;
            held.then(|| {
                (
                    priority,
                    format!("input {priority} healthy for {}", secs(hold)),
                )
            })
        })
    }

    /// After an update: the best added input that outranks the active one (or, while
    /// exhausted, any selectable added input), if no override is pinned.
    fn added_takeover(&self, added: &[u32]) -> Option<u32> {
        if self.pinned.is_some() || (self.active.is_none() && !self.selected_once) {
            return None;
        }
        self.slots
            .iter()
            .filter(|slot| added.contains(&slot.priority()) && slot.selectable())
            .map(Slot::priority)
            .find(|&p| self.active.is_none_or(|a| p < a))
    }

    /// Connects and disconnects workers to match what each input needs.
    fn sync_connections(&mut self, now: Instant) {
        for i in 0..self.slots.len() {
            let wanted = self.wants_connection(i);
            let slot = &mut self.slots[i];
            let priority = slot.priority();
            if wanted && !slot.connected {
                slot.connected = true;
                self.outputs
                    .push_back(Output::Command(Command::Connect(priority)));
            } else if !wanted && slot.connected {
                slot.connected = false;
                self.outputs
                    .push_back(Output::Command(Command::Disconnect(priority)));
            }
            slot.refresh_watch(now);
        }
    }

    /// Whether input `i` should have its worker running.
    fn wants_connection(&self, i: usize) -> bool {
        let slot = &self.slots[i];
        let priority = slot.priority();
        if slot.spec.push || slot.stopped.is_some() {
            return false;
        }
        if slot.spec.hot || self.active == Some(priority) {
            return true;
        }
        if self.exhausted && self.previous == Some(priority) {
            // Its own reconnect loop is its probe.
            return true;
        }
        // Warming: a recovered cold input that will take over after the hold.
        slot.degraded.is_none()
            && slot.ever_degraded
            && self.pinned.is_none()
            && self.active.is_some_and(|a| priority < a)
    }

    /// Issues the probes that are due.
    fn run_probes(&mut self, now: Instant) {
        let cooldown = self.config.probe_cooldown;
        for slot in &mut self.slots {
            if !slot.probe_eligible() {
                continue;
            }
            let Some(due) = slot.next_probe.filter(|&due| due <= now) else {
                continue;
            };
            self.outputs
                .push_back(Output::Command(Command::Probe(slot.priority())));
            let next = due + cooldown;
            slot.next_probe = Some(if next <= now { now + cooldown } else { next });
        }
    }

    fn index(&self, priority: u32) -> Option<usize> {
        self.slots
            .iter()
            .position(|slot| slot.priority() == priority)
    }

    fn slot(&self, priority: u32) -> Option<&Slot> {
        self.slots.iter().find(|slot| slot.priority() == priority)
    }
}

/// What the engine tells the machine ([`Failover::handle_input`]).
#[derive(Debug, Clone)]
pub enum Report<'a> {
    /// The tick: the counters of every input, sampled at `now`.
    Observed(&'a [Observation]),
    /// Something happened to one input.
    Event {
        /// The input (current priority).
        priority: u32,
        /// What happened.
        event: InputEvent,
    },
}

/// A discrete fact about one input, from its ingest worker, the listeners or a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputEvent {
    /// The worker opened its source (`input.connected`): consecutive open failures reset, a new
    /// session begins.
    Opened,
    /// An open attempt failed; [`FailoverConfig::open_failures`] in a row degrade (`error`).
    OpenFailed {
        /// Why.
        message: String,
    },
    /// The connection failed, the peer ended the session (EOF), or a non-retriable error
    /// (TLS, DNS, HTTP 4xx, auth): degrades at once (`error`). The worker may keep retrying.
    Error {
        /// What happened (`EOF`, `connection reset`), used as the switch detail.
        message: String,
    },
    /// The source ended for good (a file without `loop`, an HLS `#EXT-X-ENDLIST` played out,
    /// the worker gave up): the input is `stopped` until its settings are updated.
    Finished {
        /// Why.
        message: String,
    },
    /// A publisher connected to the push input: it becomes selectable (and recovers if it was
    /// degraded).
    PublisherConnected,
    /// The push input's publisher left: it degrades (`error`, `publisher disconnected: ...`).
    PublisherDisconnected {
        /// Why (`EOF`, `deleteStream`).
        message: String,
    },
    /// A [`Command::Probe`] read a non-empty packet in time: the input recovers.
    ProbeSucceeded,
    /// A [`Command::Probe`] failed; the next one follows after the cooldown.
    ProbeFailed {
        /// Why.
        message: String,
    },
}

/// Why the machine refused a call. Errors name the input by priority; the engine adds the
/// stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FailoverError {
    /// No input has this priority (a manual switch, or a report racing an update).
    #[error("input priority {priority}: no such input")]
    UnknownInput {
        /// The priority asked for.
        priority: u32,
    },
    /// A manual switch to a degraded input.
    #[error("input priority {priority} is degraded ({signal}: {detail})")]
    Degraded {
        /// The input.
        priority: u32,
        /// The signal it failed.
        signal: Signal,
        /// What exactly.
        detail: String,
    },
    /// A manual switch to a stopped input.
    #[error("input priority {priority} is stopped: {message}")]
    Stopped {
        /// The input.
        priority: u32,
        /// Why it stopped.
        message: String,
    },
    /// A manual switch to a push input that has no publisher.
    #[error("input priority {priority} is waiting for its publisher")]
    WaitingForPublisher {
        /// The input.
        priority: u32,
    },
    /// Two inputs with one priority.
    #[error("inputs: priority {priority} appears twice")]
    DuplicatePriority {
        /// The priority.
        priority: u32,
    },
    /// Two inputs with one URL (the identity across updates).
    #[error("inputs: url {url} appears twice")]
    DuplicateUrl {
        /// The URL, secrets masked.
        url: String,
    },
}

/// Sorts inputs by priority and checks that priorities and URLs are unique.
fn check_inputs(mut inputs: Vec<InputSpec>) -> Result<Vec<InputSpec>, FailoverError> {
    inputs.sort_by_key(InputSpec::priority);
    for pair in inputs.windows(2) {
        if pair[0].priority() == pair[1].priority() {
            return Err(FailoverError::DuplicatePriority {
                priority: pair[0].priority(),
            });
        }
    }
    for (i, spec) in inputs.iter().enumerate() {
        if inputs[..i].iter().any(|other| other.url() == spec.url()) {
            return Err(FailoverError::DuplicateUrl {
                url: mask_url(spec.url()),
            });
        }
    }
    Ok(inputs)
}

fn error_finding(detail: String) -> Finding {
    Finding {
        signal: Signal::Error,
        detail,
        lost: None,
    }
}

/// The longest the engine may go between ticks (SPEC §Stream manager: "timers run at least
/// every 250 ms").
pub const TICK: Duration = Duration::from_millis(250);
