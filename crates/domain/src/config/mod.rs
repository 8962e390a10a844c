//! Server configuration (SPEC §Config, §Defaults): the merged result of built-in defaults,
//! `tributary.toml`, `TRIBUTARY_*` environment variables and the command line.
//!
//! Every section decodes with `deny_unknown_fields`, so a misspelt key is an error naming it
//! rather than a silently ignored setting. Each field's doc gives its unit, default and why.
//! Keys SPEC defines for features that have not landed are accepted and named at start-up
//! ([`ServerConfig::ignored`], module [`later`]).

mod autopublish;
mod dash;
mod dvr;
mod hls;
mod hooks;
pub mod later;
mod layers;
mod listeners;
mod sessions;
mod watermarks;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

pub use autopublish::AutopublishSection;
pub use dash::DashSection;
pub use dvr::DvrSection;
pub use hls::{DEFAULT_PART_SEC, HlsSection, HlsSegmentFormat};
pub use hooks::HooksSection;
pub use later::{DebugSection, IgnoredKey, IgnoredReason};
pub use layers::{
    HotApply, Layers, Source, Write, WriteError, defaults_document, hot_apply, leaves, merge,
    set_leaf,
};
pub use listeners::{
    Listeners, RtmpListener, RtspListener, RtspTransport, SrtListener, join_host_port,
    split_host_port,
};
pub use sessions::SessionsSection;
pub use watermarks::WatermarksSection;

use crate::validate::{ErrorCode, FieldError, ValidationErrors};
use later::Ignored;

/// The whole server configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where the store, the admin token and (later) DVR files live. Default `./data`, so
    /// `cargo run --release` works from a checkout without setup. Bootstrap-only.
    pub data_dir: String,
    /// Seconds the whole shutdown may take before the process exits anyway. Default 10: long
    /// enough to close viewers and finalise recordings, short enough for service managers.
    pub shutdown_timeout_sec: u64,
    /// The HTTP server (API and media routes).
    pub server: ServerSection,
    /// RTMP, SRT and RTSP listeners.
    pub listeners: Listeners,
    /// Logging.
    pub log: LogSection,
    /// Buffer hub sizing.
    pub buffer: BufferSection,
    /// Stream manager (input health).
    pub manager: ManagerSection,
    /// Coordinator and reconciler.
    pub coordinator: CoordinatorSection,
    /// FFmpeg.
    pub transcoder: TranscoderSection,
    /// Outputs: HLS (later DASH, play caps).
    pub publisher: PublisherSection,
    /// Authentication and hardening.
    pub security: SecuritySection,
    /// Pull ingest.
    pub ingestor: IngestorSection,
    /// The store backend (bootstrap-only). Not supported yet: SQLite at
    /// `<data_dir>/tributary.db` is the only backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub store: Option<Value>,
    /// Webhooks (SPEC §Hooks): present by default; `null` turns every hook off.
    pub hooks: Option<HooksSection>,
    /// Play sessions (SPEC §Sessions); absent means every default (tracking on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionsSection>,
    /// The watermark library (SPEC §API `/watermarks`); absent means every default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermarks: Option<WatermarksSection>,
    /// Recording (SPEC §DVR): the DVR root, stream defaults and route limits; absent means
    /// every default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dvr: Option<DvrSection>,
    /// Auto-publish (SPEC §Templates): present by default (on, with SPEC's limits); `null`
    /// turns it off, as `enabled = false` does.
    pub autopublish: Option<AutopublishSection>,
    /// Test hooks (`POST /debug/fault`); absent means off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug: Option<DebugSection>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            data_dir: "./data".into(),
            shutdown_timeout_sec: 10,
            server: ServerSection::default(),
            listeners: Listeners::default(),
            log: LogSection::default(),
            buffer: BufferSection::default(),
            manager: ManagerSection::default(),
            coordinator: CoordinatorSection::default(),
            transcoder: TranscoderSection::default(),
            publisher: PublisherSection::default(),
            security: SecuritySection::default(),
            ingestor: IngestorSection::default(),
            store: None,
            hooks: Some(HooksSection::default()),
            sessions: None,
            watermarks: None,
            dvr: None,
            autopublish: Some(AutopublishSection::default()),
            debug: None,
        }
    }
}

/// The HTTP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// `host:port` of the HTTP API and media routes. Default `0.0.0.0:8080`.
    pub http_addr: String,
    /// Seconds an admin request may wait for a stream's lifecycle queue before 503 `BUSY`.
    /// Default 120, as open-streamer.
    pub admin_timeout_sec: u64,
    /// Names (or `name:port`) an admin request from a loopback peer without a token may
    /// carry as `Host`, besides loopback names and addresses. Default empty: a web page on a
    /// DNS name rebound to 127.0.0.1 is refused (SPEC §Security "Cross-site requests"); add
    /// the name a local reverse proxy forwards as `Host`.
    pub allowed_hosts: Vec<String>,
    /// CORS. Not supported yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub cors: Option<Value>,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            http_addr: "0.0.0.0:8080".into(),
            admin_timeout_sec: 120,
            allowed_hosts: Vec::new(),
            cors: None,
        }
    }
}

/// `security.play_signing` (SPEC §Security "Signed play URLs"; [`crate::signing`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaySigning {
    /// Signed play URLs required for every media request and play (false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The HMAC key; a secret, masked in every output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Bind signatures to the client's IP (false): a signed URL plays from one address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_ip: Option<bool>,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `trace`, `debug`, `info`, `warn`, `error`, or a tracing filter directive. Default `info`.
    pub level: String,
    /// `text` (default, for terminals) or `json` (for log shippers).
    pub format: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// Buffer hub sizing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BufferSection {
    /// Frames a subscriber may fall behind before it drops to the next keyframe. Default 1024
    /// (about 13 s of 30 fps video with 48 kHz AAC).
    pub capacity: usize,
}

impl Default for BufferSection {
    fn default() -> Self {
        Self { capacity: 1024 }
    }
}

/// Stream manager: the health signals that fail an input over (SPEC §Stream manager). For the
/// media-health signals, 0 turns the signal off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ManagerSection {
    /// Seconds without a packet before an input is degraded; also how long a newly selected
    /// input may take to deliver its first packet. Default 30, as open-streamer; per-input
    /// `packet_timeout_sec` overrides it.
    pub input_packet_timeout_sec: u64,
    /// Frozen video: no keyframe for this many observed GOPs (and at least `frozen_min_sec`).
    /// Default 3: a lost keyframe or two is normal on a lossy link, three in a row is not.
    pub frozen_gops: u32,
    /// Frozen video: the shortest keyframe wait that counts as frozen, in seconds. Default 10,
    /// so sources with short GOPs are not failed over for a single late keyframe.
    pub frozen_min_sec: u64,
    /// Frozen video: seconds the video PTS may stand still while video packets keep arriving
    /// (an encoder repeating one picture). Default 5.
    pub pts_static_sec: u64,
    /// Seconds a track present in the session (audio or video) may stay silent while the other
    /// flows. Default 5: long enough for an encoder's audio restart, short enough that viewers
    /// do not sit through a silent programme.
    pub track_lost_sec: u64,
    /// TS corruption: continuity-counter errors within `cc_errors_window_sec` that degrade an
    /// input. Default 50: a handful of lost datagrams is routine on UDP, fifty is a broken link.
    pub cc_errors_max: u64,
    /// The window, in seconds, `cc_errors_max` is counted over. Default 10.
    pub cc_errors_window_sec: u64,
}

impl Default for ManagerSection {
    fn default() -> Self {
        Self {
            input_packet_timeout_sec: 30,
            frozen_gops: 3,
            frozen_min_sec: 10,
            pts_static_sec: 5,
            track_lost_sec: 5,
            cc_errors_max: 50,
            cc_errors_window_sec: 10,
        }
    }
}

/// Coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CoordinatorSection {
    /// Seconds between reconciler passes. Default 10: a failed start heals within seconds
    /// without hammering a broken source.
    pub reconcile_interval_sec: u64,
    /// Streams started in parallel at boot. Default 8.
    pub boot_concurrency: usize,
}

impl Default for CoordinatorSection {
    fn default() -> Self {
        Self {
            reconcile_interval_sec: 10,
            boot_concurrency: 8,
        }
    }
}

/// FFmpeg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TranscoderSection {
    /// The FFmpeg binary, a path or a name looked up in `$PATH`. Default `ffmpeg`.
    pub ffmpeg_path: String,
    /// A server-wide default transcoder mode. Not supported yet (ignored, logged): each stream's
    /// own `transcoder.mode` applies (`""` = `multi`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Legacy (open-streamer): accepted and ignored.
    #[serde(skip_serializing)]
    #[schema(ignore)]
    pub multi_output: Option<Value>,
}

impl Default for TranscoderSection {
    fn default() -> Self {
        Self {
            ffmpeg_path: "ffmpeg".into(),
            mode: None,
            multi_output: None,
        }
    }
}

/// Pull ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IngestorSection {
    /// HLS segments an HLS pull downloads ahead of the one being played. Default 8: enough to
    /// ride out a slow origin for several segment durations while bounding memory to 8 ×
    /// 64 MiB in the worst case. At least 1.
    pub hls_max_segment_buffer: usize,
}

impl Default for IngestorSection {
    fn default() -> Self {
        Self {
            hls_max_segment_buffer: 8,
        }
    }
}

/// Outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PublisherSection {
    /// HLS packaging (SPEC §HLS).
    pub hls: HlsSection,
    /// DASH packaging (SPEC §DASH); unset: the defaults of [`DashSection`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dash: Option<DashSection>,
}

/// Authentication and hardening (SPEC §Security).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SecuritySection {
    /// Bearer token for admin routes. Empty: read `<data_dir>/admin-token`, else generate one
    /// there at first boot. Masked in every output.
    pub admin_token: String,
    /// Loopback peers (127.0.0.0/8, ::1) skip admin authentication. Default true, so the
    /// quick start works from the same machine; turn off behind a local reverse proxy.
    pub loopback_bypass: bool,
    /// How RTMP/SRT publishers authenticate: `required` (default: a stream with a
    /// `stream_key` needs `?key=`, one without accepts loopback publishers only), `if_set`
    /// (one without a key accepts anyone) or `off` (no check).
    pub publish_auth: String,
    /// Signed play URLs. Not supported yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub play_signing: Option<PlaySigning>,
    /// Which addresses input pulls and push targets may dial (SPEC §Security "SSRF guard"):
    /// `off`, `metadata` (default: link-local and cloud metadata addresses blocked) or
    /// `strict` (also loopback, private, CGNAT, unique-local and unspecified addresses).
    pub ssrf_guard: String,
    /// Ranges (`10.0.0.0/8`, `2001:db8::/32`, or one address) the SSRF guard lets through
    /// whatever its mode. Default empty.
    pub allow_cidrs: Vec<String>,
    /// `GET /metrics` without a token from any peer (false: an admin route), for a Prometheus
    /// on another host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_metrics: Option<bool>,
    /// Lift the `extra_args` checks. Not supported yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsafe_extra_args: Option<bool>,
    /// Absolute directories DVR `storage_path`, VOD mount `storage` and `watermarks.dir`
    /// (and later hook file targets) must lie inside, symlinks resolved (SPEC
    /// §Security "File serving"). Absent: `[<data_dir>]`, so nothing an API client writes can
    /// make the server create or serve files elsewhere unless the operator says so here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_roots: Option<Vec<String>>,
    /// Absolute directories file inputs may read from. Default empty: any absolute path (the
    /// operator writes the inputs). A path is checked as written when a stream is saved, and
    /// again when the file is opened, after its directory is resolved (symlinks included); the
    /// file itself is opened without following a symlink.
    pub file_input_roots: Vec<String>,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` / `X-Real-IP` name the
    /// client of a media request (SPEC §Security "Proxies"; [`crate::forwarded`]). Default
    /// none: the peer address is the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_proxies: Option<Vec<String>>,
}

impl Default for SecuritySection {
    fn default() -> Self {
        Self {
            admin_token: String::new(),
            loopback_bypass: true,
            publish_auth: "required".into(),
            play_signing: None,
            ssrf_guard: "metadata".into(),
            allow_cidrs: Vec::new(),
            public_metrics: None,
            unsafe_extra_args: None,
            storage_roots: None,
            file_input_roots: Vec::new(),
            trusted_proxies: None,
        }
    }
}

impl ServerConfig {
    /// Checks the rules SPEC §Config lists; every failing field is named.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        let mut bad = |path: &str, message: String| {
            errors.push(FieldError::new(path, ErrorCode::InvalidField, message));
        };
        if self.data_dir.trim().is_empty() {
            bad("data_dir", "must not be empty".into());
        }
        if split_host_port(&self.server.http_addr).is_none() {
            bad(
                "server.http_addr",
                format!("must be host:port, got {:?}", self.server.http_addr),
            );
        }
        let mut ports: Vec<(&str, u16)> = Vec::new();
        let (rtmp, srt, rtsp) = (
            &self.listeners.rtmp,
            &self.listeners.srt,
            &self.listeners.rtsp,
        );
        for (name, enabled, host, port) in [
            ("rtmp", rtmp.enabled, &rtmp.listen_host, rtmp.port),
            ("srt", srt.enabled, &srt.listen_host, srt.port),
            ("rtsp", rtsp.enabled, &rtsp.listen_host, rtsp.port),
        ] {
            if host.trim().is_empty() {
                bad(
                    &format!("listeners.{name}.listen_host"),
                    "must not be empty".into(),
                );
            }
            if enabled && port != 0 {
                if let Some((other, _)) = ports.iter().find(|(_, p)| *p == port) {
                    bad(
                        &format!("listeners.{name}.port"),
                        format!("port {port} is already used by listeners.{other}"),
                    );
                }
                ports.push((name, port));
            }
        }
        if let Some(passphrase) = &srt.passphrase {
            let len = passphrase.chars().count();
            if !(10..=79).contains(&len) || passphrase.len() > 79 {
                bad(
                    "listeners.srt.passphrase",
                    format!("must be 10 to 79 characters (SRT's range), got {len}"),
                );
            }
        }
        if let Some(pbkeylen) = srt.pbkeylen {
            if ![16, 24, 32].contains(&pbkeylen) {
                bad(
                    "listeners.srt.pbkeylen",
                    format!("must be 16, 24 or 32, got {pbkeylen}"),
                );
            } else if srt.passphrase.is_none() {
                bad(
                    "listeners.srt.pbkeylen",
                    "needs listeners.srt.passphrase (a key length without a passphrase \
                     encrypts nothing)"
                        .into(),
                );
            }
        }
        if srt.latency_ms.is_some_and(|ms| ms > MAX_SRT_LATENCY_MS) {
            bad(
                "listeners.srt.latency_ms",
                format!("must be at most {MAX_SRT_LATENCY_MS}"),
            );
        }
        if rtmp.play_backlog_sec == 0 {
            bad("listeners.rtmp.play_backlog_sec", "must be > 0".into());
        }
        if let Some(t) = &rtsp.transport
            && !["tcp", "udp", "both"].contains(&t.trim().to_ascii_lowercase().as_str())
        {
            bad(
                "listeners.rtsp.transport",
                format!("must be tcp, udp or both, got {t:?}"),
            );
        }
        // RTSP over UDP sends RTCP from the port after the listener's.
        if rtsp.enabled
            && rtsp.port != 0
            && rtsp.transport() != RtspTransport::Tcp
            && [rtmp.port, srt.port].contains(&rtsp.port.wrapping_add(1))
        {
            bad(
                "listeners.rtsp.port",
                format!(
                    "RTSP over UDP uses UDP ports {} and {}: the second is another listener's",
                    rtsp.port,
                    rtsp.port.wrapping_add(1)
                ),
            );
        }
        for (field, value) in [
            ("play_merge_ms", rtmp.play_merge_ms),
            ("publish_merge_ms", rtmp.publish_merge_ms),
        ] {
            if value > MAX_MERGE_MS {
                bad(
                    &format!("listeners.rtmp.{field}"),
                    format!("must be at most {MAX_MERGE_MS}, got {value}"),
                );
            }
        }
        if !valid_log_level(&self.log.level) {
            bad(
                "log.level",
                format!(
                    "must be trace, debug, info, warn, error or off, or comma-separated \
                     <target>=<level> directives, got {:?}",
                    self.log.level
                ),
            );
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            bad(
                "log.format",
                format!("must be \"text\" or \"json\", got {:?}", self.log.format),
            );
        }
        if !matches!(
            self.security.publish_auth.as_str(),
            "required" | "if_set" | "off"
        ) {
            bad(
                "security.publish_auth",
                format!(
                    "must be \"required\", \"if_set\" or \"off\", got {:?}",
                    self.security.publish_auth
                ),
            );
        }
        if !matches!(
            self.security.ssrf_guard.as_str(),
            "off" | "metadata" | "strict"
        ) {
            bad(
                "security.ssrf_guard",
                format!(
                    "must be \"off\", \"metadata\" or \"strict\", got {:?}",
                    self.security.ssrf_guard
                ),
            );
        }
        for (i, cidr) in self.security.allow_cidrs.iter().enumerate() {
            if parse_cidr(cidr).is_none() {
                bad(
                    &format!("security.allow_cidrs[{i}]"),
                    format!("must be an address or a CIDR range like 10.0.0.0/8, got {cidr:?}"),
                );
            }
        }
        if self.buffer.capacity == 0 {
            bad("buffer.capacity", "must be > 0".into());
        }
        if self.ingestor.hls_max_segment_buffer == 0 {
            bad("ingestor.hls_max_segment_buffer", "must be > 0".into());
        }
        for (path, message) in self.publisher.hls.problems() {
            bad(path, message);
        }
        let dash = self.publisher.dash.as_ref();
        for (path, message) in dash.map(DashSection::problems).unwrap_or_default() {
            bad(path, message);
        }
        if self.manager.input_packet_timeout_sec == 0 {
            bad("manager.input_packet_timeout_sec", "must be > 0".into());
        }
        if self.coordinator.reconcile_interval_sec == 0 {
            bad("coordinator.reconcile_interval_sec", "must be > 0".into());
        }
        if self.coordinator.boot_concurrency == 0 {
            bad("coordinator.boot_concurrency", "must be > 0".into());
        }
        for (i, root) in self.security.file_input_roots.iter().enumerate() {
            if !crate::roots::plain_absolute(std::path::Path::new(root)) {
                bad(
                    &format!("security.file_input_roots[{i}]"),
                    format!("must be an absolute directory without \"..\", got {root:?}"),
                );
            }
        }
        for (i, root) in self.security.storage_roots.iter().flatten().enumerate() {
            if !crate::roots::plain_absolute(std::path::Path::new(root)) {
                bad(
                    &format!("security.storage_roots[{i}]"),
                    format!("must be an absolute directory without \"..\", got {root:?}"),
                );
            }
        }
        for (i, cidr) in self.security.trusted_proxies.iter().flatten().enumerate() {
            if parse_cidr(cidr).is_none() {
                bad(
                    &format!("security.trusted_proxies[{i}]"),
                    format!("must be an address or a CIDR range, got {cidr:?}"),
                );
            }
        }
        if let Some(signing) = &self.security.play_signing
            && signing.enabled == Some(true)
            && signing.key.as_deref().is_none_or(str::is_empty)
        {
            bad(
                "security.play_signing.key",
                "signed play URLs are enabled: set the key they are signed with".into(),
            );
        }
        // Upper bounds: a value past them would overflow a duration or an allocation later
        // (a panic at run time instead of an error naming the key now).
        let manager = &self.manager;
        let sessions = self.sessions.clone().unwrap_or_default();
        for (key, value, max) in [
            (
                "sessions.idle_timeout_sec",
                sessions.idle_timeout_sec.unwrap_or(0),
                MAX_SECONDS,
            ),
            (
                "sessions.kick_ban_sec",
                sessions.kick_ban_sec.unwrap_or(0),
                MAX_SECONDS,
            ),
            (
                "sessions.max_lifetime_sec",
                sessions.max_lifetime_sec.unwrap_or(0),
                MAX_LIFETIME_SECONDS,
            ),
            (
                "shutdown_timeout_sec",
                self.shutdown_timeout_sec,
                MAX_SECONDS,
            ),
            (
                "server.admin_timeout_sec",
                self.server.admin_timeout_sec,
                MAX_SECONDS,
            ),
            (
                "listeners.rtmp.play_backlog_sec",
                rtmp.play_backlog_sec,
                MAX_SECONDS,
            ),
            (
                "manager.input_packet_timeout_sec",
                manager.input_packet_timeout_sec,
                MAX_SECONDS,
            ),
            (
                "manager.frozen_min_sec",
                manager.frozen_min_sec,
                MAX_SECONDS,
            ),
            (
                "manager.pts_static_sec",
                manager.pts_static_sec,
                MAX_SECONDS,
            ),
            (
                "manager.track_lost_sec",
                manager.track_lost_sec,
                MAX_SECONDS,
            ),
            (
                "manager.cc_errors_window_sec",
                manager.cc_errors_window_sec,
                MAX_SECONDS,
            ),
            (
                "coordinator.reconcile_interval_sec",
                self.coordinator.reconcile_interval_sec,
                MAX_SECONDS,
            ),
            (
                "buffer.capacity",
                self.buffer.capacity as u64,
                MAX_BUFFER_CAPACITY,
            ),
            (
                "ingestor.hls_max_segment_buffer",
                self.ingestor.hls_max_segment_buffer as u64,
                MAX_HLS_PREFETCH,
            ),
            (
                "publisher.hls.live_window",
                self.publisher.hls.live_window as u64,
                MAX_HLS_SEGMENTS,
            ),
            (
                "publisher.hls.live_history",
                self.publisher.hls.live_history as u64,
                MAX_HLS_SEGMENTS,
            ),
            (
                "coordinator.boot_concurrency",
                self.coordinator.boot_concurrency as u64,
                MAX_BOOT_CONCURRENCY,
            ),
        ] {
            if value > max {
                bad(key, format!("must be at most {max}, got {value}"));
            }
        }
        if let Some(hooks) = &self.hooks {
            for (key, message) in hooks.problems() {
                bad(&format!("hooks.{key}"), message);
            }
        }
        if let Some(dvr) = &self.dvr {
            dvr.check(&mut errors);
        }
        if let Some(watermarks) = &self.watermarks {
            watermarks.check(&mut errors);
        }
        if let Some(autopublish) = &self.autopublish {
            for (path, message) in autopublish.problems() {
                errors.push(FieldError::new(path, ErrorCode::InvalidField, message));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(errors))
        }
    }

    /// A copy safe to print or serve: secrets replaced by `****`.
    pub fn redacted(&self) -> Self {
        let mut copy = self.clone();
        if !copy.security.admin_token.is_empty() {
            copy.security.admin_token = "****".into();
        }
        if let Some(key) = copy
            .security
            .play_signing
            .as_mut()
            .and_then(|p| p.key.as_mut())
        {
            *key = "****".into();
        }
        if let Some(passphrase) = copy.listeners.srt.passphrase.as_mut() {
            *passphrase = "****".into();
        }
        copy
    }

    /// Whether `POST /debug/fault` is on (`debug.fault_injection`, default false).
    pub fn fault_injection(&self) -> bool {
        self.debug
            .as_ref()
            .and_then(|d| d.fault_injection)
            .unwrap_or(false)
    }

    /// The keys set in this configuration that are accepted and ignored: SPEC keys of
    /// features that have not landed, and legacy open-streamer keys. The binary logs each
    /// once at start-up.
    pub fn ignored(&self) -> Vec<IgnoredKey> {
        let mut ignored = Ignored(Vec::new());
        let later = IgnoredReason::NotSupportedYet;
        ignored.keys("store", self.store.as_ref());
        ignored.keys("server.cors", self.server.cors.as_ref());
        ignored.set("transcoder.mode", self.transcoder.mode.is_some(), later);
        ignored.set(
            "transcoder.multi_output",
            self.transcoder.multi_output.is_some(),
            IgnoredReason::Legacy,
        );
        let hls = &self.publisher.hls;
        ignored.set(
            "publisher.hls.dir",
            hls.dir.is_some(),
            IgnoredReason::Legacy,
        );
        ignored.set(
            "publisher.hls.live_ephemeral",
            hls.live_ephemeral.is_some(),
            IgnoredReason::Legacy,
        );
        let security = &self.security;
        ignored.set(
            "security.unsafe_extra_args",
            security.unsafe_extra_args.is_some(),
            later,
        );
        ignored.set(
            "hooks.worker_count",
            self.hooks
                .as_ref()
                .is_some_and(|h| h.worker_count.is_some()),
            IgnoredReason::Legacy,
        );
        ignored.0
    }
}

/// An `allow_cidrs` entry as a range: a CIDR (`10.0.0.0/8`) or one address (`192.0.2.7`,
/// `::1`), surrounding spaces ignored.
pub fn parse_cidr(text: &str) -> Option<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

/// Whether `level` is a level name or comma-separated `<target>=<level>` directives (any
/// case); a bare word that is not a level would quietly become a target filter.
fn valid_log_level(level: &str) -> bool {
    let is_level = |word: &str| {
        matches!(
            word.trim().to_ascii_lowercase().as_str(),
            "trace" | "debug" | "info" | "warn" | "error" | "off"
        )
    };
    !level.trim().is_empty()
        && level
            .split(',')
            .all(|directive| match directive.split_once('=') {
                None => is_level(directive),
                Some((target, level)) => {
                    let target = target.trim();
                    !target.is_empty()
                        && target
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"_:-.".contains(&b))
                        && is_level(level)
                }
            })
}

/// The longest duration a `*_sec` setting may take: a day. Longer timeouts and intervals mean
/// "never" in practice, and values near `u64::MAX` overflow when added to an instant.
pub(crate) const MAX_SECONDS: u64 = 86_400;

/// The longest `sessions.max_lifetime_sec`: a year (a viewer may watch a 24/7 stream for days).
const MAX_LIFETIME_SECONDS: u64 = 365 * 86_400;
/// The most frames a hub subscriber may queue (`buffer.capacity`): about 14 minutes of 30 fps
/// video with audio; the ring is allocated up front.
const MAX_BUFFER_CAPACITY: u64 = 65_536;
/// The most HLS segments a pull may download ahead: 64 × 64 MiB is already 4 GiB.
const MAX_HLS_PREFETCH: u64 = 64;
/// The most segments an HLS window lists or keeps fetchable beyond it.
const MAX_HLS_SEGMENTS: u64 = 1000;
/// The most streams started in parallel at boot.
const MAX_BOOT_CONCURRENCY: u64 = 1024;

/// The longest RTMP merge interval: beyond a second, the latency it adds is no longer a
/// small price.
const MAX_MERGE_MS: u64 = 1000;

/// The longest SRT latency accepted, ms: 10 s, far beyond any link worth carrying live.
const MAX_SRT_LATENCY_MS: u32 = 10_000;

#[cfg(test)]
mod tests;
