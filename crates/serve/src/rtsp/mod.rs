//! The RTSP listener for play (SPEC §Publisher "RTSP play", default `:8554`): accepts
//! connections and runs one [`conn`] task per connection; with UDP on, it also owns the two
//! UDP sockets every UDP session's RTP and RTCP leave from, on the listener's port number
//! (RTP) and the next (RTCP), the convention RTP keeps (an even port, RTCP beside it).
//!
//! Players of a stream read its playback feed from the hub like RTMP players do: a slow one
//! loses its own frames (the hub skips it to the next keyframe) and never slows another. The
//! listener protects the process as the RTMP one does: a per-IP cap on connections that have
//! not started playing (loopback exempt), the 10 s deadline from accept to PLAY (the session's),
//! a total connection cap, one process-wide budget for unparsed requests.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tributary_net::InputBudget;

use crate::Router;
use crate::accept::{self, Accept, Running};
use crate::limit::PendingLimiter;

mod conn;

/// Settings of the RTSP listener (`listeners.rtsp`), fixed when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtspListenerConfig {
    /// Where to listen. Default `0.0.0.0:8554`. Port 0 picks a free port (with UDP on, one
    /// whose number and the next are free on UDP too).
    pub addr: SocketAddr,
    /// Offer RTP over the RTSP connection (interleaved). Default true.
    pub tcp: bool,
    /// Offer RTP over UDP unicast. Default true.
    pub udp: bool,
    /// From accept to PLAY at most this long. Default 10 s (SPEC §Security).
    pub handshake_timeout: Duration,
    /// Connections one IP may have before they play. Default 16; loopback is exempt.
    pub max_pending_per_ip: usize,
    /// Connections open at once; more are refused at accept. Default 8192.
    pub max_connections: usize,
    /// A player whose unsent media (TCP) is older than this is disconnected. Default 10 s.
    pub play_backlog: Duration,
    /// Bytes of unparsed requests all connections together may hold. Default 64 MiB (each
    /// holds at most one 64 KiB request).
    pub input_budget: usize,
}

impl Default for RtspListenerConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8554)),
            tcp: true,
            udp: true,
            handshake_timeout: Duration::from_secs(10),
            max_pending_per_ip: 16,
            max_connections: 8192,
            play_backlog: Duration::from_secs(10),
            input_budget: 64 << 20,
        }
    }
}

/// The running RTSP listener. Dropping it stops it, like [`stop`](Self::stop).
pub struct RtspListener {
    local_addr: SocketAddr,
    udp_ports: Option<(u16, u16)>,
    shared: Arc<Shared>,
    running: Running,
    /// Stops the accept loop only (a drain), before `running` stops everything.
    accepting: CancellationToken,
}

/// A snapshot of the RTSP listener's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtspStats {
    /// Connections open now.
    pub connections: u64,
    /// Players playing now.
    pub players: u64,
    /// Connections refused at accept and plays refused by the router, since start.
    pub rejected: u64,
    /// RTP and RTCP datagrams that could not be sent (the socket's buffer was full), since
    /// start.
    pub udp_dropped: u64,
}

impl RtspListener {
    /// The TCP address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The UDP ports RTP and RTCP leave from, when UDP is offered.
    pub fn udp_ports(&self) -> Option<(u16, u16)> {
        self.udp_ports
    }

    /// Stops accepting and disconnects every player; returns at once.
    pub fn stop(self) {
        self.running.stop();
    }

    /// Closes the TCP port at once and keeps the open sessions (and the UDP ports their RTP
    /// leaves from) for up to `grace`, then stops as [`shutdown`](Self::shutdown) does: how a
    /// listener moved to another address hands over without cutting its players.
    pub async fn drain(self, grace: Duration) {
        self.accepting.cancel();
        tokio::time::sleep(grace).await;
        self.shutdown().await;
    }

    /// Like [`stop`](Self::stop), and waits for the connections to end (at most about 2 s).
    pub async fn shutdown(mut self) {
        self.running.shutdown().await;
    }

    /// The counters now.
    pub fn stats(&self) -> RtspStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RtspStats {
            connections: get(&c.connections),
            players: get(&c.players),
            rejected: get(&c.rejected),
            udp_dropped: get(&c.udp_dropped),
        }
    }
}

impl std::fmt::Debug for RtspListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtspListener")
            .field("local_addr", &self.local_addr)
            .field("udp_ports", &self.udp_ports)
            .finish_non_exhaustive()
    }
}

/// What the accept loop and every connection share.
pub(crate) struct Shared {
    config: RtspListenerConfig,
    router: Arc<dyn Router>,
    counters: Counters,
    pending: Arc<PendingLimiter>,
    cancel: CancellationToken,
    input_budget: Arc<InputBudget>,
    /// The RTP and RTCP sockets of UDP sessions, and their ports.
    udp: Option<UdpPair>,
}

pub(crate) struct UdpPair {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    ports: (u16, u16),
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    connections: AtomicU64,
    players: AtomicU64,
    rejected: AtomicU64,
    udp_dropped: AtomicU64,
}

/// Binds `config.addr` (and, with UDP on, the UDP pair) and serves RTSP players until the
/// returned listener is stopped or dropped. Fails only if an address cannot be bound.
pub async fn start_rtsp(
    config: RtspListenerConfig,
    router: Arc<dyn Router>,
) -> io::Result<RtspListener> {
    let (listener, udp) = bind(&config).await?;
    let local_addr = listener.local_addr()?;
    let udp_ports = udp.as_ref().map(|u| u.ports);
    let shared = Arc::new(Shared {
        pending: Arc::new(PendingLimiter::new(config.max_pending_per_ip)),
        input_budget: InputBudget::new(config.input_budget),
        config,
        router,
        counters: Counters::default(),
        cancel: CancellationToken::new(),
        udp,
    });
    let span = tracing::info_span!("rtsp_listener", addr = %local_addr);
    let accepting = shared.cancel.child_token();
    let running = Running::spawn(
        shared.cancel.clone(),
        accept_loop(listener, Arc::clone(&shared), accepting.clone()).instrument(span),
    );
    if let Some(udp) = &shared.udp {
        tokio::spawn(
            drain_rtcp(Arc::clone(&shared))
                .instrument(tracing::info_span!("rtsp_rtcp", port = udp.ports.1)),
        );
    }
    Ok(RtspListener {
        local_addr,
        udp_ports,
        shared,
        running,
        accepting,
    })
}

/// The TCP listener and, with UDP on, the UDP pair on its port number and the next. With port
/// 0, tries ephemeral TCP ports until the pair beside one is free too.
async fn bind(config: &RtspListenerConfig) -> io::Result<(TcpListener, Option<UdpPair>)> {
    let mut last = None;
    for _ in 0..if config.addr.port() == 0 { 20 } else { 1 } {
        let listener = TcpListener::bind(config.addr).await?;
        if !config.udp {
            return Ok((listener, None));
        }
        let port = listener.local_addr()?.port();
        let Some(rtcp_port) = port.checked_add(1) else {
            last = Some(io::Error::other("no UDP port after 65535 for RTCP"));
            continue;
        };
        let ip = config.addr.ip();
        match (
            UdpSocket::bind((ip, port)).await,
            UdpSocket::bind((ip, rtcp_port)).await,
        ) {
            (Ok(rtp), Ok(rtcp)) => {
                let ports = (port, rtcp_port);
                return Ok((listener, Some(UdpPair { rtp, rtcp, ports })));
            }
            (Err(e), _) | (_, Err(e)) => {
                last = Some(io::Error::new(
                    e.kind(),
                    format!("binding UDP {port} and {rtcp_port} for RTP and RTCP: {e}"),
                ));
            }
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no port")))
}

/// Reads and discards what players send to the RTCP port (receiver reports), so it never
/// piles up; players also keep their session alive with RTSP requests.
async fn drain_rtcp(shared: Arc<Shared>) {
    let Some(udp) = &shared.udp else { return };
    let mut buf = [0u8; 1500];
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            received = udp.rtcp.recv_from(&mut buf) => {
                if let Err(e) = received {
                    tracing::debug!("RTCP receive: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Accepts until cancelled (`accept::run`): one [`conn`] task per connection.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, accepting: CancellationToken) {
    let accept = Accept {
        protocol: "RTSP",
        cancel: shared.cancel.clone(),
        accepting,
        max_connections: shared.config.max_connections,
        pending: Arc::clone(&shared.pending),
    };
    let span = |peer| {
        tracing::info_span!(
            "rtsp",
            %peer,
            stream = tracing::field::Empty,
            path = tracing::field::Empty,
        )
    };
    let refused = || shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
    let serve = |socket, peer, slot| conn::serve(socket, peer, slot, Arc::clone(&shared));
    accept::run(listener, accept, refused, span, serve).await;
}
