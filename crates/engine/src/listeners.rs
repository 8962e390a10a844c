//! Binding the protocol listeners (RTMP, RTSP, SRT) the configuration enables, rebinding one
//! when its settings change through the API (SPEC §Config "Hot apply": the new address is
//! bound first, so a bind failure leaves the old listener serving; then the old one drains),
//! and the error a bind failure gives.

use std::time::Duration;

use tributary_domain::config::{Listeners, RtspTransport};

use crate::{Engine, Shared, lock};

impl Engine {
    /// Binds the protocol listeners that are enabled (RTMP, RTSP, SRT) and records their ports
    /// for `GET /config`.
    pub async fn start_listeners(&self) -> Result<(), ListenerError> {
        let shared = &self.handle.shared;
        let listeners = shared.config.borrow().listeners.clone();
        for name in ["rtmp", "rtsp", "srt"] {
            let bound = Bound::bind(shared, name, &listeners).await?;
            bound.install(shared);
        }
        Ok(())
    }
}

/// A listener bound with its new settings, not yet serving in place of the old one; `None`
/// inside when the settings disable it.
pub(crate) enum Bound {
    Rtmp(Option<tributary_serve::RtmpListener>),
    Rtsp(Option<tributary_serve::RtspListener>),
    Srt(Option<tributary_serve::SrtListener>),
}

impl Bound {
    /// Binds listener `name` (`rtmp`, `rtsp`, `srt`) as `listeners` configures it.
    pub(crate) async fn bind(
        shared: &Shared,
        name: &'static str,
        listeners: &Listeners,
    ) -> Result<Self, ListenerError> {
        let router = shared.media.router.clone();
        match name {
            "rtmp" => {
                let rtmp = &listeners.rtmp;
                let Some(addr) = rtmp.addr() else {
                    return Ok(Self::Rtmp(None));
                };
                let config = tributary_serve::RtmpListenerConfig {
                    addr: listen_addr("rtmp", &addr).await?,
                    play_backlog_sec: rtmp.play_backlog_sec,
                    play_merge: Duration::from_millis(rtmp.play_merge_ms),
                    publish_merge: Duration::from_millis(rtmp.publish_merge_ms),
                    ..tributary_serve::RtmpListenerConfig::default()
                };
                let listener = tributary_serve::start_rtmp(config, router)
                    .await
                    .map_err(|e| ListenerError::new("rtmp", &addr, e.to_string()))?;
                Ok(Self::Rtmp(Some(listener)))
            }
            "rtsp" => {
                let rtsp = &listeners.rtsp;
                let Some(addr) = rtsp.addr() else {
                    return Ok(Self::Rtsp(None));
                };
                let (tcp, udp) = match rtsp.transport() {
                    RtspTransport::Tcp => (true, false),
                    RtspTransport::Udp => (false, true),
                    RtspTransport::Both => (true, true),
                };
                let config = tributary_serve::RtspListenerConfig {
                    addr: listen_addr("rtsp", &addr).await?,
                    tcp,
                    udp,
                    ..tributary_serve::RtspListenerConfig::default()
                };
                let listener = tributary_serve::start_rtsp(config, router)
                    .await
                    .map_err(|e| ListenerError::new("rtsp", &addr, e.to_string()))?;
                Ok(Self::Rtsp(Some(listener)))
            }
            _ => {
                let srt = &listeners.srt;
                let Some(addr) = srt.addr() else {
                    return Ok(Self::Srt(None));
                };
                let failed = |error: String| ListenerError::new("srt", &addr, error);
                let parsed = listen_addr("srt", &addr).await?;
                // `ServerConfig::validate` checked both; the listener checks the passphrase
                // again before its transport (which panics on a bad one) sees it.
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
                let listener = tributary_serve::start_srt(config, router)
                    .await
                    .map_err(|e| failed(e.to_string()))?;
                Ok(Self::Srt(Some(listener)))
            }
        }
    }

    /// Puts the new listener in place of the old one (which drains in the background, its
    /// open connections kept for [`DRAIN`]) and records its port (0 when disabled).
    pub(crate) fn install(self, shared: &Shared) {
        match self {
            Self::Rtmp(new) => {
                let port = new.as_ref().map_or(0, |l| l.local_addr().port());
                if let Some(l) = &new {
                    tracing::info!(listener = "rtmp", addr = %l.local_addr(), "RTMP listener bound");
                }
                lock(&shared.ports).rtmp_port = port;
                shared.supported.set_rtmp_port((port != 0).then_some(port));
                let old =
                    std::mem::replace(&mut *lock(&shared.listeners), new.into_iter().collect());
                for old in old {
                    let addr = old.local_addr();
                    tracing::info!(listener = "rtmp", %addr, drain_sec = DRAIN.as_secs(), "RTMP listener draining");
                    tokio::spawn(old.drain(DRAIN));
                }
            }
            Self::Rtsp(new) => {
                let port = new.as_ref().map_or(0, |l| l.local_addr().port());
                if let Some(l) = &new {
                    tracing::info!(listener = "rtsp", addr = %l.local_addr(), udp = ?l.udp_ports(),
                        "RTSP listener bound");
                }
                lock(&shared.ports).rtsp_port = port;
                let old = std::mem::replace(
                    &mut *lock(&shared.rtsp_listeners),
                    new.into_iter().collect(),
                );
                for old in old {
                    tracing::info!(listener = "rtsp", addr = %old.local_addr(), drain_sec = DRAIN.as_secs(), "RTSP listener draining");
                    tokio::spawn(old.drain(DRAIN));
                }
            }
            Self::Srt(new) => {
                let port = new.as_ref().map_or(0, |l| l.local_addr().port());
                if let Some(l) = &new {
                    tracing::info!(listener = "srt", addr = %l.local_addr(), "SRT listener bound");
                }
                lock(&shared.ports).srt_port = port;
                let old =
                    std::mem::replace(&mut *lock(&shared.srt_listeners), new.into_iter().collect());
                for old in old {
                    tracing::info!(listener = "srt", addr = %old.local_addr(), drain_sec = DRAIN.as_secs(), "SRT listener draining");
                    tokio::spawn(old.drain(DRAIN));
                }
            }
        }
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
        .ok_or_else(|| ListenerError::new(listener, addr, "not a valid host:port".into()))
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

impl ListenerError {
    fn new(listener: &'static str, addr: &str, error: String) -> Self {
        Self {
            listener,
            addr: addr.to_owned(),
            error,
        }
    }
}

/// How long a replaced RTMP listener keeps its open connections (publishers and players)
/// after it stops accepting (SPEC §Config "Hot apply"): long enough for an encoder to be
/// pointed at the new address, short enough that the old port is free soon.
const DRAIN: Duration = Duration::from_secs(10);
