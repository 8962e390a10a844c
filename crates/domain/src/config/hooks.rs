//! `[hooks]` (SPEC §Hooks, §Defaults): the settings every webhook falls back to where it sets
//! none of its own, and where file hooks may write.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Global webhook settings. Each hook's own non-zero value wins
/// ([`HookSettings::resolve`](crate::hook::HookSettings::resolve)); unset here means SPEC's
/// default. The section present (the default) runs hooks; `null` turns them off.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HooksSection {
    /// Accepted for open-streamer compatibility and unused: each hook has its own batcher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_count: Option<u32>,
    /// Events per batch; unset: 100, a body of some tens of KiB that any receiver accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_max_items: Option<u32>,
    /// Seconds between flushes of a partial batch; unset: 5, so a lone failover reaches the
    /// receiver within seconds without one request per event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_flush_interval_sec: Option<u64>,
    /// Events queued per hook before the oldest is dropped; unset: 10000 (about half an hour
    /// of a busy server's events while a receiver is down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_max_queue_items: Option<u32>,
    /// Retries of a failed batch (after 1 s, 5 s, then 30 s); unset: 3, 0 to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Seconds one delivery try may take; unset: 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_sec: Option<u64>,
    /// The directory file hooks write under (an absolute path); unset: `<data_dir>/hooks`.
    /// A file hook's target resolves inside it, symlinks included, or is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_root: Option<String>,
}

impl HooksSection {
    /// Each failing key as (path under `hooks.`, message).
    pub(super) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let limits = [
            (
                "batch_max_items",
                self.batch_max_items.map(u64::from),
                crate::hook::MAX_BATCH_ITEMS,
            ),
            (
                "batch_max_queue_items",
                self.batch_max_queue_items.map(u64::from),
                crate::hook::MAX_QUEUE_ITEMS,
            ),
            (
                "batch_flush_interval_sec",
                self.batch_flush_interval_sec,
                super::MAX_SECONDS,
            ),
            ("timeout_sec", self.timeout_sec, super::MAX_SECONDS),
            (
                "max_retries",
                self.max_retries.map(u64::from),
                u64::from(crate::hook::MAX_RETRIES),
            ),
        ];
        for (key, value, max) in limits {
            if let Some(value) = value
                && value > max
            {
                out.push((key, format!("must be at most {max}, got {value}")));
            }
        }
        if let Some(root) = &self.file_root {
            let path = std::path::Path::new(root);
            if !path.is_absolute()
                || path
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                out.push((
                    "file_root",
                    format!("must be an absolute directory without \"..\", got {root:?}"),
                ));
            }
        }
        out
    }
}
