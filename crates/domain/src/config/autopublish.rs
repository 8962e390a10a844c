//! `[autopublish]` (SPEC §Templates "Auto-publish", §Defaults): whether a publish under a
//! template's prefix creates a runtime stream, how long one lives without packets, and the
//! limits that keep path names sent by anyone from multiplying pipelines.
//!
//! Every field is optional, so a partial section means "the default for the rest"; the
//! accessors resolve them. The section itself set to `null` (`POST /config`) turns
//! auto-publish off, as `enabled = false` does in TOML, which cannot write `null`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `[autopublish]`: runtime streams created by publishing under a template prefix.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutopublishSection {
    /// Auto-publish on. Default true, as SPEC §Defaults: it only acts for templates that have
    /// `prefixes` and a `publish://` input, and a publisher must present the template's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Seconds a runtime stream lives after its last packet (or its creation, before one)
    /// before it is stopped and forgotten (`stream.runtime_expired`). Default 30: an encoder
    /// that reconnects within that finds its stream still there. At least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_sec: Option<u64>,
    /// Seconds between two looks for idle runtime streams. Default 5, so a stream goes at
    /// most 5 s after its idle time. At least 1, at most `idle_timeout_sec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_interval_sec: Option<u64>,
    /// The most runtime streams at once. Default 100: each is a pipeline, and a path name is
    /// all a publisher needs to ask for one. Further publishes are refused and counted
    /// (`publish_rejected_total{reason="limit"}`). At least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_runtime_streams: Option<usize>,
    /// The most runtime streams one source address may create in any minute. Default 10:
    /// an encoder reconnecting is one creation at most per idle time, a scanner trying names
    /// is many. Further publishes from it are refused and counted. At least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_creations_per_min: Option<usize>,
}

impl AutopublishSection {
    /// Whether auto-publish is on (default true).
    pub fn enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }

    /// How long a runtime stream lives without packets (default 30 s).
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_sec.unwrap_or(DEFAULT_IDLE_SEC).max(1))
    }

    /// How often idle runtime streams are looked for (default 5 s).
    pub fn sweep_interval(&self) -> Duration {
        Duration::from_secs(self.sweep_interval_sec.unwrap_or(DEFAULT_SWEEP_SEC).max(1))
    }

    /// The most runtime streams at once (default 100).
    pub fn max_runtime_streams(&self) -> usize {
        self.max_runtime_streams.unwrap_or(DEFAULT_MAX_STREAMS)
    }

    /// The most creations per source address per minute (default 10).
    pub fn max_creations_per_min(&self) -> usize {
        self.max_creations_per_min.unwrap_or(DEFAULT_MAX_CREATIONS)
    }

    /// What is wrong with these settings, as (key, message) pairs; empty when valid.
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut bad = Vec::new();
        let idle = self.idle_timeout_sec.unwrap_or(DEFAULT_IDLE_SEC);
        let sweep = self.sweep_interval_sec.unwrap_or(DEFAULT_SWEEP_SEC);
        if !(1..=super::MAX_SECONDS).contains(&idle) {
            bad.push((
                "autopublish.idle_timeout_sec",
                format!(
                    "must be at least 1 and at most {}, got {idle}",
                    super::MAX_SECONDS
                ),
            ));
        }
        if sweep == 0 || (idle >= 1 && sweep > idle) {
            bad.push((
                "autopublish.sweep_interval_sec",
                format!("must be at least 1 and at most idle_timeout_sec ({idle}), got {sweep}"),
            ));
        }
        for (key, value) in [
            (
                "autopublish.max_runtime_streams",
                self.max_runtime_streams(),
            ),
            (
                "autopublish.max_creations_per_min",
                self.max_creations_per_min(),
            ),
        ] {
            if !(1..=MAX_LIMIT).contains(&value) {
                bad.push((
                    key,
                    format!(
                        "must be at least 1 and at most {MAX_LIMIT}, got {value} (to turn \
                         auto-publish off, set autopublish.enabled = false)"
                    ),
                ));
            }
        }
        bad
    }
}

/// `idle_timeout_sec` when unset (SPEC §Defaults "Auto-publish": idle 30 s).
const DEFAULT_IDLE_SEC: u64 = 30;
/// `sweep_interval_sec` when unset (SPEC §Defaults: sweep 5 s).
const DEFAULT_SWEEP_SEC: u64 = 5;
/// `max_runtime_streams` when unset (SPEC §Templates: at most 100 runtime streams).
const DEFAULT_MAX_STREAMS: usize = 100;
/// `max_creations_per_min` when unset (SPEC §Templates: 10 creations per minute per IP).
const DEFAULT_MAX_CREATIONS: usize = 10;
/// The largest either limit may be: the server's stream cap (SPEC §Security "Field caps").
const MAX_LIMIT: usize = 10_000;
