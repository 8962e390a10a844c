//! Binding the protocol listeners (RTMP, RTSP, SRT) the configuration enables, and the
//! error a bind failure gives.

use std::time::Duration;

use tributary_domain::config::RtspTransport;

use crate::{Engine, lock};

impl Engine {
    /// Binds the protocol listeners that are enabled (RTMP, RTSP, SRT) and records their ports
    /// for `GET /config`.
    pub async fn start_listeners(&self) -> Result<(), ListenerError> {
        let shared = &self.handle.shared;
        let rtmp = &shared.config.listeners.rtmp;
        if let Some(addr) = rtmp.addr() {
            let parsed = listen_addr("rtmp", &addr).await?;
            let config = tributary_serve::RtmpListenerConfig {
                addr: parsed,
                play_backlog_sec: rtmp.play_backlog_sec,
                play_merge: Duration::from_millis(rtmp.play_merge_ms),
                publish_merge: Duration::from_millis(rtmp.publish_merge_ms),
                ..tributary_serve::RtmpListenerConfig::default()
            };
            let listener = tributary_serve::start_rtmp(config, shared.media.router.clone())
                .await
                .map_err(|e| ListenerError {
                    listener: "rtmp",
                    addr: addr.clone(),
                    error: e.to_string(),
                })?;
            let local = listener.local_addr();
            tracing::info!(listener = "rtmp", addr = %local, "RTMP listener bound");
            lock(&shared.ports).rtmp_port = local.port();
            shared.supported.set_rtmp_port(Some(local.port()));
            lock(&shared.listeners).push(listener);
        }
        let rtsp = &shared.config.listeners.rtsp;
        if let Some(addr) = rtsp.addr() {
            let error = |error: String| ListenerError {
                listener: "rtsp",
                addr: addr.clone(),
                error,
            };
            let parsed = listen_addr("rtsp", &addr).await?;
            let (tcp, udp) = match rtsp.transport() {
                RtspTransport::Tcp => (true, false),
                RtspTransport::Udp => (false, true),
                RtspTransport::Both => (true, true),
            };
            let config = tributary_serve::RtspListenerConfig {
                addr: parsed,
                tcp,
                udp,
                ..tributary_serve::RtspListenerConfig::default()
            };
            let listener = tributary_serve::start_rtsp(config, shared.media.router.clone())
                .await
                .map_err(|e| error(e.to_string()))?;
            let local = listener.local_addr();
            tracing::info!(listener = "rtsp", addr = %local, udp = ?listener.udp_ports(),
                "RTSP listener bound");
            lock(&shared.ports).rtsp_port = local.port();
            lock(&shared.rtsp_listeners).push(listener);
        }
        let srt = &shared.config.listeners.srt;
        if let Some(addr) = srt.addr() {
            let failed = |error: String| ListenerError {
                listener: "srt",
                addr: addr.clone(),
                error,
            };
            let parsed = listen_addr("srt", &addr).await?;
            // `ServerConfig::validate` checked both; the listener checks the passphrase again
            // before its transport (which panics on a bad one) sees it.
            let passphrase = srt
                .passphrase
                .clone()
                .map(tributary_serve::SrtPassphrase::try_from)
                .transpose()
                .map_err(|e| failed(e.to_string()))?;
            let config = tributary_serve::SrtListenerConfig {
                addr: parsed,
                latency: Duration::from_millis(u64::from(srt.latency_ms.unwrap_or(120))),
                passphrase,
                pbkeylen: srt.pbkeylen.and_then(|n| u16::try_from(n).ok()),
                ..tributary_serve::SrtListenerConfig::default()
            };
            let listener = tributary_serve::start_srt(config, shared.media.router.clone())
                .await
                .map_err(|e| failed(e.to_string()))?;
            let local = listener.local_addr();
            tracing::info!(listener = "srt", addr = %local, "SRT listener bound");
            lock(&shared.ports).srt_port = local.port();
            lock(&shared.srt_listeners).push(listener);
        }
        Ok(())
    }
}

/// The address `listener`'s configured `addr` (`host:port`) resolves to, or the error naming
/// both.
async fn listen_addr(
    listener: &'static str,
    addr: &str,
) -> Result<std::net::SocketAddr, ListenerError> {
    tokio::net::lookup_host(addr)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ListenerError {
            listener,
            addr: addr.to_owned(),
            error: "not a valid host:port".into(),
        })
}

/// A listener could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("binding the {listener} listener on {addr}: {error}")]
pub struct ListenerError {
    /// `rtmp`, `srt` or `rtsp`.
    pub listener: &'static str,
    /// The address asked for.
    pub addr: String,
    /// What failed.
    pub error: String,
}
