//! Server configuration (SPEC §Config, §Defaults): the merged result of built-in defaults,
//! `tributary.toml`, `TRIBUTARY_*` environment variables and the command line.
//!
//! Every section decodes with `deny_unknown_fields`, so a misspelt key is an error naming it
//! rather than a silently ignored setting. Each field's doc gives its unit, default and why.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validate::{ErrorCode, FieldError, ValidationErrors};

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
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            http_addr: "0.0.0.0:8080".into(),
            admin_timeout_sec: 120,
        }
    }
}

/// The protocol listeners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Listeners {
    /// RTMP publish and play. Default enabled on `0.0.0.0:1935`, the port every encoder assumes.
    pub rtmp: RtmpListener,
    /// SRT publish and play. Default enabled on `0.0.0.0:9999`.
    pub srt: Listener,
    /// RTSP play. Default enabled on `0.0.0.0:8554` (554 needs root).
    pub rtsp: Listener,
}

impl Default for Listeners {
    fn default() -> Self {
        Self {
            rtmp: RtmpListener::default(),
            srt: Listener::on(9999),
            rtsp: Listener::on(8554),
        }
    }
}

/// One listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// Whether to bind it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Address to bind. Default `0.0.0.0` (all interfaces).
    #[serde(default = "any_host")]
    pub listen_host: String,
    /// Port; 0 picks an ephemeral port (tests).
    pub port: u16,
}

impl Listener {
    /// Enabled on all interfaces at `port`.
    pub fn on(port: u16) -> Self {
        Self {
            enabled: true,
            listen_host: any_host(),
            port,
        }
    }

    /// `host:port`, or `None` when disabled.
    pub fn addr(&self) -> Option<String> {
        self.enabled
            .then(|| join_host_port(&self.listen_host, self.port))
    }
}

/// The RTMP listener: where it binds, and how it paces media through each connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RtmpListener {
    /// Whether to bind it. Default true.
    pub enabled: bool,
    /// Address to bind. Default `0.0.0.0` (all interfaces).
    pub listen_host: String,
    /// Port. Default 1935; 0 picks an ephemeral port (tests).
    pub port: u16,
    /// A player whose unsent media is older than this many seconds is disconnected. Default
    /// 10, about what the buffer holds for it (1024 frames ≈ 13 s).
    pub play_backlog_sec: u64,
    /// **Tributary:** milliseconds a player's media may wait to go out with what follows it,
    /// in one write. Default 100 (one write per 100 ms instead of one per frame: most of the
    /// cost of many players); 0 writes every frame at once. At most 1000.
    pub play_merge_ms: u64,
    /// **Tributary:** milliseconds a publisher's media may wait in the socket to come in with
    /// what follows it, in one read. Default 50 (one wake-up per 50 ms instead of one per
    /// frame); 0 reads as soon as bytes arrive. At most 1000.
    pub publish_merge_ms: u64,
}

impl Default for RtmpListener {
    fn default() -> Self {
        Self {
            enabled: true,
            listen_host: any_host(),
            port: 1935,
            play_backlog_sec: 10,
            play_merge_ms: 100,
            publish_merge_ms: 50,
        }
    }
}

impl RtmpListener {
    /// `host:port`, or `None` when disabled.
    pub fn addr(&self) -> Option<String> {
        self.enabled
            .then(|| join_host_port(&self.listen_host, self.port))
    }
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
}

impl Default for TranscoderSection {
    fn default() -> Self {
        Self {
            ffmpeg_path: "ffmpeg".into(),
        }
    }
}

/// Outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PublisherSection {
    /// HLS packaging (SPEC §HLS).
    pub hls: HlsSection,
}

/// HLS packaging (SPEC §HLS, §Defaults `publisher.hls`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HlsSection {
    /// Target segment length in seconds; a segment closes at the first keyframe at or after
    /// it. Default 2: about 6 s of latency with hls.js, and the transcoder's default GOP.
    pub live_segment_sec: f64,
    /// Segments listed in the live playlist. Default 12 (24 s of rewind for players).
    pub live_window: usize,
    /// Segments kept fetchable after they leave the playlist, beyond the minimum SPEC sets.
    /// Default 0.
    pub live_history: usize,
    /// Accepted for open-streamer compatibility and ignored: segments are served from memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Accepted for open-streamer compatibility and ignored: segments are always ephemeral.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_ephemeral: Option<bool>,
}

impl Default for HlsSection {
    fn default() -> Self {
        Self {
            live_segment_sec: 2.0,
            live_window: 12,
            live_history: 0,
            dir: None,
            live_ephemeral: None,
        }
    }
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
}

impl Default for SecuritySection {
    fn default() -> Self {
        Self {
            admin_token: String::new(),
            loopback_bypass: true,
            publish_auth: "required".into(),
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
        if rtmp.play_backlog_sec == 0 {
            bad("listeners.rtmp.play_backlog_sec", "must be > 0".into());
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
        if self.buffer.capacity == 0 {
            bad("buffer.capacity", "must be > 0".into());
        }
        let hls = &self.publisher.hls;
        if !(hls.live_segment_sec.is_finite() && hls.live_segment_sec > 0.0) {
            bad(
                "publisher.hls.live_segment_sec",
                format!("must be > 0, got {}", hls.live_segment_sec),
            );
        }
        if hls.live_window == 0 {
            bad("publisher.hls.live_window", "must be > 0".into());
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
        copy
    }
}

/// Splits `host:port` (IPv6 hosts in brackets).
pub fn split_host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || (host.contains(':') && !addr.starts_with('[')) {
        return None;
    }
    Some((host, port))
}

/// Joins a host and port, bracketing IPv6 hosts.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The longest RTMP merge interval: beyond a second, the latency it adds is no longer a
/// small price.
const MAX_MERGE_MS: u64 = 1000;

fn yes() -> bool {
    true
}

fn any_host() -> String {
    "0.0.0.0".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_spec() {
        let c = ServerConfig::default();
        c.validate().unwrap();
        assert_eq!(c.server.http_addr, "0.0.0.0:8080");
        assert_eq!(c.listeners.rtmp.addr().as_deref(), Some("0.0.0.0:1935"));
        assert_eq!(c.listeners.rtmp.play_backlog_sec, 10);
        assert_eq!(c.listeners.rtmp.play_merge_ms, 100);
        assert_eq!(c.listeners.rtmp.publish_merge_ms, 50);
        assert_eq!(c.listeners.srt.port, 9999);
        assert_eq!(c.listeners.rtsp.port, 8554);
        assert_eq!(c.buffer.capacity, 1024);
        assert_eq!(c.coordinator.reconcile_interval_sec, 10);
        assert_eq!(c.shutdown_timeout_sec, 10);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = serde_json::from_str::<ServerConfig>(r#"{"server": {"htp_addr": "x"}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("htp_addr"), "{err}");
    }

    #[test]
    fn validation_names_fields() {
        let mut c = ServerConfig::default();
        c.server.http_addr = "nope".into();
        c.listeners.srt.port = 1935;
        c.listeners.rtmp.play_backlog_sec = 0;
        c.listeners.rtmp.publish_merge_ms = 1001;
        c.log.format = "xml".into();
        c.buffer.capacity = 0;
        let paths: Vec<_> = c
            .validate()
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            [
                "server.http_addr",
                "listeners.srt.port",
                "listeners.rtmp.play_backlog_sec",
                "listeners.rtmp.publish_merge_ms",
                "log.format",
                "buffer.capacity"
            ]
        );
    }

    #[test]
    fn host_port() {
        assert_eq!(split_host_port("127.0.0.1:80"), Some(("127.0.0.1", 80)));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1", 80)));
        assert_eq!(split_host_port("::1:80"), None);
        assert_eq!(split_host_port("x"), None);
        assert_eq!(join_host_port("::1", 5), "[::1]:5");
    }
}
