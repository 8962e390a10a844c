//! What the failover machine asks of the engine ([`Command`]) and tells the world ([`Event`]),
//! and the switch history ([`Switch`]).

use std::fmt;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};

use super::health::Signal;
use crate::event::EventType;

/// One output of [`super::Failover::poll_output`], in the order it must be acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Something the engine must do now.
    Command(Command),
    /// Something that happened: for the event bus, the coordinator and logs.
    Event(Event),
}

/// An instruction to the engine. Priorities are the current ones (after any
/// [`super::Failover::update_inputs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Start the input's ingest worker (it is about to be selected, warms up for a failback, or
    /// is a hot standby). Never issued for push inputs, which have no worker.
    Connect(u32),
    /// Stop the input's ingest worker: it is cold and no longer needed.
    Disconnect(u32),
    /// Restart the connected input's worker with its new settings (same URL, other settings).
    Reconnect(u32),
    /// Make this input the one the intake forwards (`Intake::select`). The switch commits at
    /// its first keyframe (or at once from a hot standby's GOP cache); `reason` tells the
    /// timeline why the session begins.
    Select {
        /// The input.
        priority: u32,
        /// Why it is selected.
        reason: SwitchReason,
    },
    /// Select no input: every input is exhausted (`Intake::deselect`).
    Deselect,
    /// Probe the degraded cold input: open a fresh reader that must yield a non-empty packet
    /// within [`super::FailoverConfig::probe_timeout`], close it, and report
    /// [`super::InputEvent::ProbeSucceeded`] or [`super::InputEvent::ProbeFailed`]. If a probe
    /// of that input is still running, this one may be skipped.
    Probe(u32),
}

/// Something the machine decided or noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The active input changed (or the first one was selected): the switch record, also
    /// kept in [`super::Failover::switches`]. `input.failover`.
    Switched(Switch),
    /// An input failed a health signal. `input.degraded`.
    Degraded {
        /// The input.
        priority: u32,
        /// The signal.
        signal: Signal,
        /// What exactly.
        detail: String,
    },
    /// A degraded input recovered and is idle again. `input.restored`.
    Restored {
        /// The input.
        priority: u32,
    },
    /// No input can be selected: the stream is degraded. Emitted once per episode; the bus
    /// gets `stream.exhausted` and `input.degraded {reason: "all_inputs_exhausted"}`.
    Exhausted,
    /// The episode of exhaustion ended: an input was selected again. For the coordinator,
    /// which returns the stream to `active` if nothing else is wrong; no bus event.
    Recovered,
}

impl Event {
    /// The bus events this event becomes (SPEC §Events), with their payloads. The engine adds
    /// what only it knows (`gap_ms` of `input.failover`, measured at commit).
    pub fn bus_events(&self) -> Vec<(EventType, Value)> {
        match self {
            Self::Switched(switch) => vec![(
                EventType::InputFailover,
                json!({
                    "from": switch.from.map_or(-1, i64::from),
                    "to": switch.to,
                    "reason": switch.reason,
                    "detail": switch.detail,
                }),
            )],
            Self::Degraded {
                priority,
                signal,
                detail,
            } => vec![(
                EventType::InputDegraded,
                json!({"input_priority": priority, "reason": signal, "detail": detail}),
            )],
            Self::Restored { priority } => vec![(
                EventType::InputRestored,
                json!({"input_priority": priority}),
            )],
            Self::Exhausted => vec![
                (EventType::StreamExhausted, json!({})),
                (
                    EventType::InputDegraded,
                    json!({"reason": ALL_INPUTS_EXHAUSTED}),
                ),
            ],
            Self::Recovered => Vec::new(),
        }
    }
}

/// One change of active input, as kept in `runtime.switches[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    /// When the machine decided it (the intake commits at the next keyframe).
    pub at: Instant,
    /// The input that was active; `None` for the initial selection (`-1` in JSON). For a
    /// `recovery`, the input active before the exhaustion, which may be `to` itself.
    pub from: Option<u32>,
    /// The input now active.
    pub to: u32,
    /// Why.
    pub reason: SwitchReason,
    /// What exactly (`publisher disconnected: EOF`, `no packet for 30 s`).
    pub detail: String,
}

/// Why the active input changed: SPEC's closed set, serialised in snake case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SwitchReason {
    /// The first selection of the stream.
    Initial,
    /// The active input failed: connection error, EOF, failed opens, publisher gone.
    Error,
    /// The active input went silent, or never delivered its first packet.
    Timeout,
    /// An operator switched (or cleared the override, which caused the switch).
    Manual,
    /// A higher-priority input took over again.
    Failback,
    /// An input took over after every input had been exhausted.
    Recovery,
    /// An input was added that outranks the active one.
    InputAdded,
    /// The active input was removed from the configuration.
    InputRemoved,
    /// The active input's video froze.
    Frozen,
    /// A track of the active input went silent.
    TrackLost,
    /// The active input's transport stream was corrupt.
    CcErrors,
}

impl SwitchReason {
    /// The snake-case name (`input_added`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::Manual => "manual",
            Self::Failback => "failback",
            Self::Recovery => "recovery",
            Self::InputAdded => "input_added",
            Self::InputRemoved => "input_removed",
            Self::Frozen => "frozen",
            Self::TrackLost => "track_lost",
            Self::CcErrors => "cc_errors",
        }
    }
}

impl From<Signal> for SwitchReason {
    fn from(signal: Signal) -> Self {
        match signal {
            Signal::Error => Self::Error,
            Signal::Timeout => Self::Timeout,
            Signal::Frozen => Self::Frozen,
            Signal::TrackLost => Self::TrackLost,
            Signal::CcErrors => Self::CcErrors,
        }
    }
}

impl fmt::Display for SwitchReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `reason` of `input.degraded` when every input is exhausted.
pub const ALL_INPUTS_EXHAUSTED: &str = "all_inputs_exhausted";
