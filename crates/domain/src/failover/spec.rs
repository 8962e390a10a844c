//! What the failover machine is told: its thresholds ([`FailoverConfig`]) and the inputs it
//! chooses between ([`InputSpec`]).

use std::time::Duration;

use crate::config::ManagerSection;
use crate::protocol::InputKind;
use crate::stream::Input;

/// Thresholds of the health signals, failback and history (SPEC §Stream manager, §Defaults).
///
/// Signals whose value is zero are off (SPEC: "0 turns a signal off"). The defaults are SPEC's;
/// [`FailoverConfig::from_manager`] takes the ones `manager.*` makes configurable and keeps the
/// defaults for the rest. May be replaced on a running machine ([`super::Failover::set_config`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverConfig {
    /// No packet for this long degrades an input (`timeout`); a selected or newly connected
    /// input that has not delivered its first packet within it degrades too. Default 30 s
    /// (`manager.input_packet_timeout_sec`); an input's `packet_timeout_sec` overrides it. Zero
    /// is treated as the default, never as "off": an input must be able to go silent.
    pub packet_timeout: Duration,
    /// Consecutive failed opens that degrade a connected input (`error`). Default 3: one
    /// failure is a blip, three (about 7 s of backoff) is a source that is not coming back soon.
    pub open_failures: u32,
    /// Frozen video: no keyframe for this many mean GOPs of the session, and at least
    /// `frozen_min` (`frozen`). Default 3; zero leaves `frozen_min` alone.
    pub frozen_gops: u32,
    /// Frozen video: the shortest keyframe wait that counts as frozen. Default 10 s; zero
    /// leaves `frozen_gops` alone (judged once a GOP has been observed). Both zero: the
    /// keyframe rule is off.
    pub frozen_min: Duration,
    /// Frozen video: video PTS not advancing this long while video packets arrive. Default 5 s.
    pub pts_static: Duration,
    /// A track present in the session silent this long while the other flows (`track_lost`).
    /// Default 5 s.
    pub track_lost: Duration,
    /// Continuity-counter errors within `cc_errors_window` that degrade (`cc_errors`).
    /// Default 50.
    pub cc_errors_max: u64,
    /// The window `cc_errors_max` is counted over. Default 10 s.
    pub cc_errors_window: Duration,
    /// A degraded cold input is probed this long after it degraded, then at this interval.
    /// Default 8 s: quick enough to fail back within a minute, slow enough not to hammer a
    /// broken origin.
    pub probe_cooldown: Duration,
    /// How long a probe's fresh reader may take to yield a packet. Default 3 s. Enforced by the
    /// engine, which runs the probe; kept here so the whole policy has one home.
    pub probe_timeout: Duration,
    /// Continuous health a recovered input needs before it takes over from a lower-ranked
    /// active input (`failback`). Default 12 s: long enough to ride out an encoder that is
    /// flapping, short enough that the preferred feed is back within a quarter minute.
    pub failback_hold: Duration,
    /// Switch records kept (`runtime.switches`). Default 20.
    pub switches_kept: usize,
    /// Errors kept per input (`runtime.inputs[].errors`). Default 5.
    pub errors_kept: usize,
}

impl FailoverConfig {
    /// The thresholds `manager.*` configures, SPEC's defaults for the rest.
    pub fn from_manager(manager: &ManagerSection) -> Self {
        let packet_timeout = match manager.input_packet_timeout_sec {
            0 => DEFAULT_PACKET_TIMEOUT,
            secs => Duration::from_secs(secs),
        };
        Self {
            packet_timeout,
            frozen_gops: manager.frozen_gops,
            frozen_min: Duration::from_secs(manager.frozen_min_sec),
            pts_static: Duration::from_secs(manager.pts_static_sec),
            track_lost: Duration::from_secs(manager.track_lost_sec),
            cc_errors_max: manager.cc_errors_max,
            cc_errors_window: Duration::from_secs(manager.cc_errors_window_sec),
            ..Self::default()
        }
    }
}

impl Default for FailoverConfig {
    fn default() -> Self {
        Self {
            packet_timeout: DEFAULT_PACKET_TIMEOUT,
            open_failures: 3,
            frozen_gops: 3,
            frozen_min: Duration::from_secs(10),
            pts_static: Duration::from_secs(5),
            track_lost: Duration::from_secs(5),
            cc_errors_max: 50,
            cc_errors_window: Duration::from_secs(10),
            probe_cooldown: Duration::from_secs(8),
            probe_timeout: Duration::from_secs(3),
            failback_hold: Duration::from_secs(12),
            switches_kept: 20,
            errors_kept: 5,
        }
    }
}

impl From<&ManagerSection> for FailoverConfig {
    fn from(manager: &ManagerSection) -> Self {
        Self::from_manager(manager)
    }
}

/// One input as the failover machine sees it: the configured [`Input`] plus what its kind
/// implies.
///
/// Inputs are identified by their trimmed URL across [`super::Failover::update_inputs`], so an
/// input whose URL moved to another priority keeps its health, errors and connection.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    /// The input as configured (template-resolved): URL, priority and the settings whose change
    /// needs a reconnect.
    pub input: Input,
    /// Whether it stays connected and health-checked while not active (UDP and push inputs, or
    /// `hot_standby: true`).
    pub hot: bool,
    /// Whether it is a push input: it has no worker to connect, and it is selectable only while
    /// a publisher is connected.
    pub push: bool,
}

impl InputSpec {
    /// The spec of `input`, whose URL classified as `kind` (`crate::protocol::detect`).
    pub fn new(input: &Input, kind: InputKind) -> Self {
        Self {
            input: input.clone(),
            hot: input.hot_standby.unwrap_or(kind.hot_by_default()),
            push: kind == InputKind::Push,
        }
    }

    /// The priority (lower wins).
    pub fn priority(&self) -> u32 {
        self.input.priority
    }

    /// The identity across updates: the trimmed URL.
    pub fn url(&self) -> &str {
        self.input.url.trim()
    }

    /// The silence timeout of this input: its override, else `config`'s.
    pub fn packet_timeout(&self, config: &FailoverConfig) -> Duration {
        match self.input.packet_timeout_sec {
            0 => config.packet_timeout,
            secs => Duration::from_secs(u64::from(secs)),
        }
    }

    /// Whether the input has a worker the engine connects only while needed (not hot, not
    /// push).
    pub(super) fn cold(&self) -> bool {
        !self.hot && !self.push
    }
}

/// SPEC §Defaults `manager.input_packet_timeout_sec`.
const DEFAULT_PACKET_TIMEOUT: Duration = Duration::from_secs(30);
