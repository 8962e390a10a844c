//! The values the engine hands the API: stored records with their bookkeeping, the runtime
//! object, write and dry-run results, and the answers of media, session and switch requests.
//! Plain data; what computes them lives in the engine's handle (`lib.rs`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tributary_domain::Stream;
use tributary_domain::diff::ShownDiff;
use tributary_domain::event::StreamStatus;
use tributary_store::StoredStream;

use crate::outputs::MediaAsset;

/// A stored record with its bookkeeping, as the API serves it.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    /// The record as the operator stored it.
    pub stream: Stream,
    /// Increases by one per write; the ETag is derived from it.
    pub revision: u64,
    /// First write.
    pub created_at: DateTime<Utc>,
    /// Last write.
    pub updated_at: DateTime<Utc>,
}

impl From<StoredStream> for StreamRecord {
    fn from(s: StoredStream) -> Self {
        Self {
            stream: s.stream,
            revision: s.revision,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// A write's precondition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Write whatever is stored.
    None,
    /// Only if the stored revision is this one (`If-Match`).
    Revision(u64),
}

/// The live state of one stream, served under `runtime` (SPEC §API "Runtime object").
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Runtime {
    /// `active`, `degraded` or `stopped`.
    pub status: StreamStatus,
    /// Why degraded.
    pub status_reasons: Vec<&'static str>,
    /// Whether the pipeline runs.
    pub pipeline_active: bool,
    /// `config` (stored) or `runtime` (auto-publish).
    pub source: &'static str,
    /// When the current run started (RFC 3339, ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// The active input, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_input_priority: Option<u32>,
    /// The pinned manual override, only while one is pinned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_input_priority: Option<u32>,
    /// No input is usable.
    pub exhausted: bool,
    /// Per-input state, by priority (`[]` when stopped).
    #[schema(value_type = Vec<Object>)]
    pub inputs: Vec<serde_json::Value>,
    /// Recent switches, newest first (at most 20): `at`, `from` (-1 for the initial
    /// selection), `to`, `reason`, `detail`, and `gap_ms` once measured.
    #[schema(value_type = Vec<Object>)]
    pub switches: Vec<serde_json::Value>,
    /// The transcoder, while one runs: `status` (`healthy`, `unhealthy` or `unavailable`
    /// with `error` naming why), `mode`, and `profiles[]` per rung: `index`, `track`,
    /// `status` (`starting`, `running`, `slow`, `restarting`, `unhealthy`), `pid`,
    /// `restart_count`, `speed`, `fps`, `dropped_frames`, `dup_frames`,
    /// `fed_dropped_frames` (frames the feeder skipped), `cpu_seconds`, `rss_bytes` and
    /// `errors` (newest first, at most 5: `message`, `at`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub transcoder: Option<serde_json::Value>,
    /// Outputs: the HLS packager (`outputs[]`: `output`, `status` running or restarting,
    /// `restart_count`, `last_error`), push targets (`pushes[]`, only when the stream has
    /// some, with the same supervision fields), and while it runs with session tracking on,
    /// `viewers`: its active play sessions by protocol (`{"hls": 12, "rtmp": 1}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub publisher: Option<serde_json::Value>,
    /// The recording, while the stream records: `recording_id`, `status` (`recording` or
    /// `failed`), `segment_dir`, `segments_written`, `bytes_written`, `dropped_segments`
    /// (segments lost because the disk fell behind), `failed_writes`, `segment_count` and
    /// `total_size_bytes` (on disk now), `last_segment_at`, `sync_ms_per_segment` (average
    /// fsync time) and `last_error` (`message`, `at`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub dvr: Option<serde_json::Value>,
    /// Operator-facing warnings of the current run.
    pub warnings: Vec<String>,
    /// The last start or update failure, until the next success (the reconciler retries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The result of a store write plus apply.
#[derive(Debug, Clone)]
pub struct PutResult {
    /// The stored record.
    pub record: StreamRecord,
    /// Whether it is new.
    pub created: bool,
    /// Warnings: validation notes, and a failed apply (the write stands; the reconciler retries).
    pub warnings: Vec<String>,
}

/// What a write would do (`?dry_run=true`).
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    /// The computed diff against the stored record (`null` for a new stream), push targets
    /// keyed by index so no stream key shows.
    pub diff: Option<ShownDiff>,
    /// The restart plan.
    pub actions: Vec<String>,
    /// Plan warnings.
    pub warnings: Vec<String>,
}

/// Bound ports as `GET /config` shows them (0 = disabled or not supported yet).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Ports {
    /// The HTTP address actually bound.
    pub http_addr: String,
    /// RTMP listener port.
    pub rtmp_port: u16,
    /// RTSP listener port.
    pub rtsp_port: u16,
    /// SRT listener port.
    pub srt_port: u16,
}

/// What an HTTP media request tells about its viewer (SPEC §Sessions: the fingerprint).
#[derive(Debug, Clone, Default)]
pub struct HttpViewer {
    /// The TCP peer (`None`: unknown, the request is served untracked).
    pub peer: Option<std::net::SocketAddr>,
    /// `User-Agent`.
    pub user_agent: String,
    /// `Referer`.
    pub referer: String,
    /// The query without its `?` (`token=` names the viewer).
    pub query: String,
}

/// The answer to a viewer's media request.
#[derive(Debug)]
pub enum MediaReply {
    /// Serve the asset; add a 2xx body's length to the meter, if any.
    Asset(MediaAsset, Option<SessionMeter>),
    /// The viewer was kicked: 403 for this much longer.
    Banned(Duration),
    /// Signed play URLs are on and this request's `exp` and `sig` do not hold: 403, why.
    Unsigned(String),
    /// Nothing at this path.
    NotFound,
}

/// Where an HTTP response's bytes are counted for its session.
#[derive(Debug, Clone)]
pub struct SessionMeter(pub(crate) tributary_serve::ByteMeter);

impl SessionMeter {
    /// Counts `n` bytes sent to the viewer.
    pub fn add(&self, n: usize) {
        self.0.add(n);
    }
}

/// What a manual switch achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchOutcome {
    /// The intake committed to the wanted input.
    Switched,
    /// Not committed within the wait; the outcome appears in `runtime.switches`.
    Pending,
}

/// Why a manual switch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SwitchError {
    /// The stream is not running.
    #[error("stream {0} is not running")]
    NotRunning(String),
    /// No input has this priority.
    #[error("no input has priority {0}")]
    UnknownPriority(u32),
    /// The input cannot be selected now; the message names the input and why.
    #[error("{0}")]
    Refused(String),
}
