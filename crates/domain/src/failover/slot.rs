//! One input's state inside the machine ([`Slot`]) and its read-out for the API
//! ([`InputReport`]).

use std::time::Instant;

use serde::Serialize;

use super::health::{Degradation, Health};
use super::spec::InputSpec;

/// An input's state as reported in `runtime.inputs[].status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputStatus {
    /// Not active; healthy or not yet known (a push input waiting for its publisher, too).
    Idle,
    /// Selected.
    Active,
    /// Failed a health signal; see [`InputReport::degraded`].
    Degraded,
    /// Its source ended for good; see [`InputReport::stopped`].
    Stopped,
}

/// One error an input hit, for `runtime.inputs[].errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// When it was reported.
    pub at: Instant,
    /// What happened.
    pub message: String,
}

/// A read-out of one input for the API's runtime object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputReport<'a> {
    /// Its priority.
    pub priority: u32,
    /// Its URL as configured (not redacted: mask before serving).
    pub url: &'a str,
    /// Its state.
    pub status: InputStatus,
    /// Why it is degraded, while it is.
    pub degraded: Option<&'a Degradation>,
    /// Why it stopped, while it is stopped.
    pub stopped: Option<&'a str>,
    /// Its latest errors, newest first, at most
    /// [`FailoverConfig::errors_kept`](super::FailoverConfig::errors_kept).
    pub errors: &'a [InputError],
    /// A push input without a publisher ("waiting for publisher").
    pub waiting_for_publisher: bool,
    /// Whether it is connected: its worker runs (the machine asked for it), or, for a push
    /// input, a publisher is connected. An idle connected input is a standby.
    pub connected: bool,
    /// Arrival of its latest frame, from the latest observation.
    pub last_packet_at: Option<Instant>,
}

/// One input and everything the machine knows about it.
#[derive(Debug)]
pub(super) struct Slot {
    /// Its configuration.
    pub(super) spec: InputSpec,
    /// Its counters and signal trackers.
    pub(super) health: Health,
    /// Why it is degraded, while it is.
    pub(super) degraded: Option<Degradation>,
    /// Why it stopped, while it is stopped.
    pub(super) stopped: Option<String>,
    /// Latest errors, newest first.
    pub(super) errors: Vec<InputError>,
    /// A push input: whether a publisher is connected.
    pub(super) publisher: bool,
    /// Whether the machine asked for its worker to run (never for push inputs).
    pub(super) connected: bool,
    /// Whether it has degraded (or stopped) since the stream started: if not, it may take over
    /// from a lower-ranked input without the failback hold.
    pub(super) ever_degraded: bool,
    /// Since when it has been continuously healthy (recovered, or watched from then on).
    pub(super) healthy_since: Instant,
    /// When a degraded input is probed next (only while it is cold and disconnected).
    pub(super) next_probe: Option<Instant>,
}

impl Slot {
    pub(super) fn new(spec: InputSpec, now: Instant) -> Self {
        Self {
            spec,
            health: Health::new(now),
            degraded: None,
            stopped: None,
            errors: Vec::new(),
            publisher: false,
            connected: false,
            ever_degraded: false,
            healthy_since: now,
            next_probe: None,
        }
    }

    pub(super) fn priority(&self) -> u32 {
        self.spec.priority()
    }

    /// Whether selection may pick it.
    pub(super) fn selectable(&self) -> bool {
        self.degraded.is_none() && self.stopped.is_none() && (!self.spec.push || self.publisher)
    }

    /// Whether probes apply: degraded, cold and not connected.
    pub(super) fn probe_eligible(&self) -> bool {
        self.degraded.is_some() && self.stopped.is_none() && self.spec.cold() && !self.connected
    }

    /// Starts or stops watching to match its connection.
    pub(super) fn refresh_watch(&mut self, now: Instant) {
        let wanted = self.stopped.is_none()
            && if self.spec.push {
                self.publisher
            } else {
                self.connected
            };
        match (wanted, self.health.watched()) {
            (true, false) => {
                self.health.watch(now);
                if self.degraded.is_none() {
                    self.healthy_since = now;
                }
            }
            (false, true) => self.health.unwatch(),
            _ => {}
        }
    }

    pub(super) fn record_error(&mut self, now: Instant, message: &str, kept: usize) {
        self.errors.insert(
            0,
            InputError {
                at: now,
                message: message.to_owned(),
            },
        );
        self.errors.truncate(kept);
    }

    pub(super) fn report(&self, active: Option<u32>) -> InputReport<'_> {
        let priority = self.priority();
        let status = if self.stopped.is_some() {
            InputStatus::Stopped
        } else if active == Some(priority) {
            InputStatus::Active
        } else if self.degraded.is_some() {
            InputStatus::Degraded
        } else {
            InputStatus::Idle
        };
        InputReport {
            priority,
            url: &self.spec.input.url,
            status,
            degraded: self.degraded.as_ref(),
            stopped: self.stopped.as_deref(),
            errors: &self.errors,
            waiting_for_publisher: self.spec.push && !self.publisher,
            connected: if self.spec.push {
                self.publisher
            } else {
                self.connected
            },
            last_packet_at: self.health.last_frame_at(),
        }
    }
}
