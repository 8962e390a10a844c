//! `listeners`: the RTMP, RTSP and SRT listeners' settings, and the `host:port` helpers they
//! and the HTTP server's address share.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The protocol listeners.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Listeners {
    /// RTMP publish and play. Default enabled on `0.0.0.0:1935`, the port every encoder assumes.
    pub rtmp: RtmpListener,
    /// SRT publish and play. Default enabled on `0.0.0.0:9999`.
    pub srt: SrtListener,
    /// RTSP play. Default enabled on `0.0.0.0:8554` (554 needs root). Not supported yet: not
    /// bound.
    pub rtsp: RtspListener,
}

/// The SRT listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SrtListener {
    /// Whether to bind it. Default true.
    pub enabled: bool,
    /// Address to bind. Default `0.0.0.0` (all interfaces).
    pub listen_host: String,
    /// Port. Default 9999; 0 picks an ephemeral port (tests).
    pub port: u16,
    /// The latency SRT keeps for retransmissions, ms; unset: 120 (libsrt's default, about
    /// four round trips on a continental link). At most 10 000.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u32>,
    /// The passphrase every caller must encrypt with (AES), 10 to 79 characters; a secret.
    /// Unset: no encryption.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<String>,
    /// The key length (16, 24 or 32 bytes) callers must use when they state one; needs
    /// `passphrase`. Unset: the caller's (16 when it states none, as libsrt).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pbkeylen: Option<u32>,
}

impl Default for SrtListener {
    fn default() -> Self {
        Self {
            enabled: true,
            listen_host: any_host(),
            port: 9999,
            latency_ms: None,
            passphrase: None,
            pbkeylen: None,
        }
    }
}

impl SrtListener {
    /// `host:port`, or `None` when disabled.
    pub fn addr(&self) -> Option<String> {
        listener_addr(self.enabled, &self.listen_host, self.port)
    }
}

/// The RTSP listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RtspListener {
    /// Whether to bind it. Default true.
    pub enabled: bool,
    /// Address to bind. Default `0.0.0.0` (all interfaces).
    pub listen_host: String,
    /// Port. Default 8554 (554 needs root); 0 picks an ephemeral port (tests).
    pub port: u16,
    /// `tcp`, `udp` or `both` (default): how players may receive RTP. UDP leaves from the
    /// listener's port number (RTP) and the next (RTCP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
}

/// How RTSP players may receive RTP (`listeners.rtsp.transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtspTransport {
    /// Interleaved on the RTSP connection only.
    Tcp,
    /// UDP unicast only.
    Udp,
    /// Either, as the player asks.
    Both,
}

impl Default for RtspListener {
    fn default() -> Self {
        Self {
            enabled: true,
            listen_host: any_host(),
            port: 8554,
            transport: None,
        }
    }
}

impl RtspListener {
    /// `host:port`, or `None` when disabled.
    pub fn addr(&self) -> Option<String> {
        listener_addr(self.enabled, &self.listen_host, self.port)
    }

    /// The transports offered; `both` when unset. Validation refuses other values, so an
    /// unknown one here (never) is `both`.
    pub fn transport(&self) -> RtspTransport {
        match self.transport.as_deref().map(str::trim) {
            Some(t) if t.eq_ignore_ascii_case("tcp") => RtspTransport::Tcp,
            Some(t) if t.eq_ignore_ascii_case("udp") => RtspTransport::Udp,
            _ => RtspTransport::Both,
        }
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
    /// **Tributary:** the longest, in milliseconds, a player's audio waits to go out in one
    /// write with the next video frame. Video is written the moment it arrives; audio between
    /// two video frames rides with the next, so a player costs one write per video frame
    /// instead of one per frame (30 instead of about 77 a second). Default 100, a bound that
    /// matters only when video stops; 0 writes every frame at once. At most 1000.
    pub play_merge_ms: u64,
    /// **Tributary:** milliseconds a publisher's media may wait in the socket to come in with
    /// what follows it, in one read. Default 0: read as soon as bytes arrive (no added
    /// latency); a value trades that much latency for fewer wake-ups. At most 1000.
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
            publish_merge_ms: 0,
        }
    }
}

impl RtmpListener {
    /// `host:port`, or `None` when disabled.
    pub fn addr(&self) -> Option<String> {
        listener_addr(self.enabled, &self.listen_host, self.port)
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

/// A listener's `host:port`, or `None` when disabled.
fn listener_addr(enabled: bool, host: &str, port: u16) -> Option<String> {
    enabled.then(|| join_host_port(host, port))
}

fn any_host() -> String {
    "0.0.0.0".into()
}
