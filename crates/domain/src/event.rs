//! Event types on the bus (SPEC §Events). The engine stamps the envelope (id, seq, time).

use std::fmt;

use serde::Serialize;

/// The type of an event, serialised as its dotted name (`stream.created`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum EventType {
    /// A stream record was created.
    #[serde(rename = "stream.created")]
    StreamCreated,
    /// A stream record was replaced or patched; payload `{changed: [field groups]}`.
    #[serde(rename = "stream.updated")]
    StreamUpdated,
    /// A stream record was deleted.
    #[serde(rename = "stream.deleted")]
    StreamDeleted,
    /// A stream's pipeline started.
    #[serde(rename = "stream.started")]
    StreamStarted,
    /// A stream's pipeline stopped.
    #[serde(rename = "stream.stopped")]
    StreamStopped,
    /// Every input of a running stream is unusable.
    #[serde(rename = "stream.exhausted")]
    StreamExhausted,
    /// A running stream's status changed; payload `{from, to, reasons[]}`.
    #[serde(rename = "stream.status_changed")]
    StreamStatusChanged,
    /// An auto-publish created a runtime stream from a template; payload `{template_code}`.
    #[serde(rename = "stream.runtime_created")]
    StreamRuntimeCreated,
    /// A runtime stream was removed after its publisher went idle; payload `{template_code}`.
    #[serde(rename = "stream.runtime_expired")]
    StreamRuntimeExpired,
    /// An input connected; payload `{input_priority, url}`.
    #[serde(rename = "input.connected")]
    InputConnected,
    /// An input failed and reconnects; payload `{input_priority, error}`.
    #[serde(rename = "input.reconnecting")]
    InputReconnecting,
    /// An input failed a health signal; payload `{input_priority, reason, detail}`.
    #[serde(rename = "input.degraded")]
    InputDegraded,
    /// A degraded input recovered; payload `{input_priority}`.
    #[serde(rename = "input.restored")]
    InputRestored,
    /// The active input changed; payload `{from, to, reason, detail, gap_ms}`.
    #[serde(rename = "input.failover")]
    InputFailover,
    /// An input's worker gave up: its source ended for good (a file without `loop`, an HLS
    /// playlist's `#EXT-X-ENDLIST` played out); payload `{input_priority, detail}`.
    #[serde(rename = "input.failed")]
    InputFailed,
    /// A push target's status moved; payload `{url, from, to, error?}` (URL redacted).
    #[serde(rename = "push.state_changed")]
    PushStateChanged,
    /// A stream's transcoder started; payload `{profiles, raw_ingest_id, mode}` (`mode`:
    /// `per_profile` or `multi_output`).
    #[serde(rename = "transcoder.started")]
    TranscoderStarted,
    /// A stream's transcoder stopped (its processes reaped).
    #[serde(rename = "transcoder.stopped")]
    TranscoderStopped,
    /// An FFmpeg process crashed, payload `{profile, attempt, restart_in_sec, error}`; or a
    /// rung became unhealthy, payload `{profile, reason: "consecutive_crashes", message}`.
    #[serde(rename = "transcoder.error")]
    TranscoderError,
    /// An unhealthy rung ran 30 s; payload `{profile}`.
    #[serde(rename = "transcoder.recovered")]
    TranscoderRecovered,
    /// A rung ran below 0.95× real time for 30 s; payload `{profile, speed}`.
    #[serde(rename = "transcoder.slow")]
    TranscoderSlow,
    /// Recording started, or resumed after failing writes; payload `{recording_id}` (and
    /// `resumed: true` on recovery).
    #[serde(rename = "recording.started")]
    RecordingStarted,
    /// Recording stopped; payload `{recording_id}`.
    #[serde(rename = "recording.stopped")]
    RecordingStopped,
    /// Writes failed for 30 s; payload `{recording_id, segment, error}`.
    #[serde(rename = "recording.failed")]
    RecordingFailed,
    /// A recorded segment is on disk; payload `{recording_id, segment, duration_sec,
    /// size_bytes, wall_time, discontinuity}`.
    #[serde(rename = "segment.written")]
    SegmentWritten,
    /// A play session opened; payload `{session_id, proto, ip, user_agent, country,
    /// user_name}`.
    #[serde(rename = "session.opened")]
    SessionOpened,
    /// A play session closed; payload `{session_id, proto, ip, bytes, duration_sec, reason}`.
    #[serde(rename = "session.closed")]
    SessionClosed,
}

impl EventType {
    /// The dotted name.
    pub fn name(self) -> &'static str {
        match self {
            Self::StreamCreated => "stream.created",
            Self::StreamUpdated => "stream.updated",
            Self::StreamDeleted => "stream.deleted",
            Self::StreamStarted => "stream.started",
            Self::StreamStopped => "stream.stopped",
            Self::StreamExhausted => "stream.exhausted",
            Self::StreamStatusChanged => "stream.status_changed",
            Self::StreamRuntimeCreated => "stream.runtime_created",
            Self::StreamRuntimeExpired => "stream.runtime_expired",
            Self::InputConnected => "input.connected",
            Self::InputReconnecting => "input.reconnecting",
            Self::InputDegraded => "input.degraded",
            Self::InputRestored => "input.restored",
            Self::InputFailover => "input.failover",
            Self::InputFailed => "input.failed",
            Self::PushStateChanged => "push.state_changed",
            Self::TranscoderStarted => "transcoder.started",
            Self::TranscoderStopped => "transcoder.stopped",
            Self::TranscoderError => "transcoder.error",
            Self::TranscoderRecovered => "transcoder.recovered",
            Self::TranscoderSlow => "transcoder.slow",
            Self::RecordingStarted => "recording.started",
            Self::RecordingStopped => "recording.stopped",
            Self::RecordingFailed => "recording.failed",
            Self::SegmentWritten => "segment.written",
            Self::SessionOpened => "session.opened",
            Self::SessionClosed => "session.closed",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A running stream's status (SPEC §Coordinator "Status").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StreamStatus {
    /// Not running.
    Stopped,
    /// Running and healthy.
    Active,
    /// Running, but inputs are exhausted or the transcoder is unhealthy.
    Degraded,
}

impl StreamStatus {
    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Active => "active",
            Self::Degraded => "degraded",
        }
    }

    /// Parses a name as used in `?status=`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "stopped" => Some(Self::Stopped),
            "active" => Some(Self::Active),
            "degraded" => Some(Self::Degraded),
            _ => None,
        }
    }
}

impl fmt::Display for StreamStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
