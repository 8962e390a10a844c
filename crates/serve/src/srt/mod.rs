//! The SRT listener (SPEC §Publisher "SRT listener", default `:9999`): publishers and players
//! of MPEG-TS over SRT on one UDP port, each caller routed by its `streamid`.
//!
//! # Transport: srt-tokio 0.4
//!
//! The transport is `srt-tokio` 0.4.4 (pure Rust; issue 15 item 3, ARCHITECTURE §15 "SRT
//! transport"), not a binding to Debian's libsrt. Evidence, recorded on this machine
//! (2026-12-06) against Debian's ffmpeg 5.1 (libsrt 1.5.1) and `srt-live-transmit` 1.5.1:
//!
//! - ffmpeg publishing (`-f mpegts srt://…?streamid=publish:…`, with and without
//!   `passphrase`, `pbkeylen` 16 and 32) and `srt-live-transmit` publishing (1456-byte
//!   messages cut anywhere in a TS packet) both arrive intact: the received bytes probe as
//!   the H.264 + AAC that was sent;
//! - ffmpeg and `srt-live-transmit` playing (`streamid=play:…`, encrypted) decode what this
//!   listener sends;
//! - a wrong passphrase is refused in the handshake (the caller sees a rejection); a caller
//!   without one, to a listener with one, too.
//!
//! The e2e tests (`crates/tributary/tests/e2e/srt.rs`) repeat each of these against the real
//! binary. What the crate gets wrong, and how this module works around it:
//!
//! - Its builders panic on a passphrase outside 10–79 characters: [`SrtPassphrase`] checks
//!   the length first (and the configuration is refused at start).
//! - Its listener panics (srt-protocol's own `unimplemented` macro) when a caller's advertised key length differs
//!   from the listener's: the listener is therefore built without a passphrase, and each
//!   accepted caller gets the key settings it asked for (its own key length, this
//!   listener's passphrase). A caller that offers encryption to a listener without a
//!   passphrase and advertises its key length is refused (`KeyNotSup`, 2001).
//! - A caller that sends key material without advertising a key length, to a listener
//!   *without* a passphrase, still reaches an `unimplemented` macro call inside srt-protocol, which
//!   ends the crate's listener task (not the process: it is a spawned task). The accept loop
//!   notices (its request stream ends), logs an ERROR and binds the port again after a
//!   short backoff; connections open at that moment are lost, their publishers' inputs fail
//!   over. Setting a passphrase closes this path. Moving to libsrt would close it too; it is
//!   the recorded next step if it matters in the field.
//! - Its send buffer defaults to 46 592 bytes (35 packets of 1316). A player's first GOP is a
//!   burst of hundreds of packets; when the buffer overflows, it drops its oldest entries
//!   even if they were never sent, its send pointer ends up before the buffer's front, and
//!   the connection sends nothing more, for good (seen here: 16 datagrams, then silence,
//!   with `srt-live-transmit` and ffmpeg as players). The listener sets 32 MiB
//!   (`SEND_BUFFER`); with it the same bursts play.
//! - It starts an accepted connection before it sends the handshake's last answer, so a
//!   player's first data can overtake the answer (libsrt then asks again and logs
//!   `received DATA while HANDSHAKE expected`): a player's first data waits 20 ms.
//! - A close can lose the last packets: a player's connection flushes before it closes.
//!
//! # Model, and where it differs from the `net` driver
//!
//! RTMP connections run on the `net` driver (ARCHITECTURE §6), which owns a TCP socket, the
//! timer and the outgoing queue around a sans-IO session. srt-tokio owns all of that itself:
//! one UDP socket multiplexed over every connection, its handshake (cookie-based, so a
//! spoofed source holds no state), ACK/NAK timers, retransmission, pacing and the send
//! buffer, behind a `Stream + Sink` of `(Instant, Bytes)`. So an SRT connection is not a
//! `net::Handler`; what it keeps of the pattern:
//!
//! - policy stays in the [`Router`](crate::Router): the listener parses the streamid
//!   ([`tributary_domain::streamid`]) and asks it, exactly as the RTMP listener does;
//! - one task per connection in a `JoinSet`, under a connection cap (a semaphore), each
//!   with a stop token that is a child of the listener's;
//! - the per-IP cap on callers whose request is being decided ([`PendingLimiter`]);
//! - a publisher feeds its intake port synchronously; a player reads its own hub subscriber
//!   (a slow one loses its own frames in the hub, never anyone else's);
//! - every refusal is logged with peer, path and SRT reject code, never a key or passphrase.
//!
//! SRT payloads are not 188-byte aligned (`srt-live-transmit` cuts 1456-byte messages
//! anywhere), so a publisher's payloads are fed to the TS demuxer as one byte stream; a
//! player gets the one live TS writer's output ([`tributary_mpegts::LiveWriter`]) in
//! datagrams of 7 × 188 bytes.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use srt_tokio::access::{RejectReason, ServerRejectReason};
use srt_tokio::options::ByteCount;
use srt_tokio::{ConnectionRequest, SrtIncoming, SrtListener as Transport};
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Router;
use crate::limit::PendingLimiter;
use crate::rtmp::ListenerStats;

mod conn;
mod ingest;

/// Settings of the SRT listener (`listeners.srt`), fixed when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtListenerConfig {
    /// Where to listen. Default `0.0.0.0:9999`, the port SRT tools assume. Port 0 picks a
    /// free port ([`SrtListener::local_addr`] tells which).
    pub addr: SocketAddr,
    /// The latency SRT keeps for retransmissions, both ways. Default 120 ms (SPEC §Defaults,
    /// libsrt's own default): four round trips on a continental link.
    pub latency: Duration,
    /// The passphrase callers must encrypt with (AES), or `None` for none.
    pub passphrase: Option<SrtPassphrase>,
    /// The key length callers must use when they state one (16, 24 or 32 bytes); `None`
    /// takes the caller's (libsrt's default, 16, when it states none).
    pub pbkeylen: Option<u16>,
    /// How long a caller may take from its first handshake packet to an answer, and how long
    /// a publisher may send nothing before it is disconnected. Default 10 s (SPEC §Security
    /// "10 s handshake deadline").
    pub handshake_timeout: Duration,
    /// Callers one IP may have waiting for a decision. Default 16 (SPEC §Security); loopback
    /// peers are exempt.
    pub max_pending_per_ip: usize,
    /// Connections open at once; more are refused (`Overload`, 2402). Default 8192, as the
    /// RTMP listener: 4096 plays plus publishers.
    pub max_connections: usize,
    /// A publisher that sends nothing for this long is disconnected, so its slot frees for
    /// an encoder that reconnects. Default 30 s, as RTMP publishers.
    pub publish_idle_timeout: Duration,
}

/// An SRT passphrase of 10 to 79 characters (the range SRT allows), checked before the
/// transport sees it (srt-tokio panics on any other).
#[derive(Clone, PartialEq, Eq)]
pub struct SrtPassphrase(String);

/// A passphrase outside 10–79 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an SRT passphrase must be 10 to 79 characters, got {0}")]
pub struct PassphraseLength(pub usize);

/// The running SRT listener. Dropping it stops it, like [`stop`](Self::stop).
pub struct SrtListener {
    /// The address actually bound.
    local_addr: SocketAddr,
    /// Counters, router, settings and the stop signal, shared with every task.
    shared: Arc<Shared>,
    /// The accept loop; it owns the connection tasks.
    task: Option<JoinHandle<()>>,
    /// Set by a drain: callers are refused from then on while the connections already open
    /// keep the socket.
    accepting: CancellationToken,
}

/// Binds `config.addr` and serves SRT publishers and players until the returned listener is
/// stopped or dropped. Fails only if the address cannot be bound.
pub async fn start_srt(
    config: SrtListenerConfig,
    router: Arc<dyn Router>,
) -> io::Result<SrtListener> {
    let (transport, incoming, local_addr) = bind(&config, config.addr).await?;
    let shared = Arc::new(Shared {
        pending: Arc::new(PendingLimiter::new(config.max_pending_per_ip)),
        config,
        router,
        counters: Counters::default(),
        cancel: CancellationToken::new(),
    });
    let span = tracing::info_span!("srt_listener", addr = %local_addr);
    let accepting = shared.cancel.child_token();
    let task = tokio::spawn(
        accept_loop(
            transport,
            incoming,
            local_addr,
            Arc::clone(&shared),
            accepting.clone(),
        )
        .instrument(span),
    );
    tracing::debug!(addr = %local_addr, "SRT listener started");
    Ok(SrtListener {
        local_addr,
        shared,
        task: Some(task),
        accepting,
    })
}

impl SrtListener {
    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and ends every connection; returns at once.
    pub fn stop(self) {
        self.shared.cancel.cancel();
    }

    /// Refuses new callers at once (SRT `Down`: one UDP socket serves every connection, so
    /// the port stays bound) and keeps the open connections, publishers and players, for up
    /// to `grace`, then stops as [`shutdown`](Self::shutdown) does: how a listener moved to
    /// another address hands over without cutting anybody mid-stream.
    pub async fn drain(self, grace: Duration) {
        self.accepting.cancel();
        tokio::time::sleep(grace).await;
        self.shutdown().await;
    }

    /// Like [`stop`](Self::stop), and waits until every connection has ended (at most about
    /// 2 s).
    pub async fn shutdown(mut self) {
        self.shared.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// The counters now (`slow_players` and `protocol_errors` are not kept for SRT: the
    /// transport handles both).
    pub fn stats(&self) -> ListenerStats {
        self.shared.counters.snapshot()
    }
}

impl SrtPassphrase {
    /// The passphrase as text (a secret: never log it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SrtPassphrase {
    type Error = PassphraseLength;

    fn try_from(value: String) -> Result<Self, PassphraseLength> {
        let len = value.chars().count();
        if !(10..=79).contains(&len) || value.len() > 79 {
            return Err(PassphraseLength(len));
        }
        Ok(Self(value))
    }
}

impl fmt::Debug for SrtPassphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SrtPassphrase(****)")
    }
}

impl Default for SrtListenerConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 9999)),
            latency: Duration::from_millis(120),
            passphrase: None,
            pbkeylen: None,
            handshake_timeout: Duration::from_secs(10),
            max_pending_per_ip: 16,
            max_connections: 8192,
            publish_idle_timeout: Duration::from_secs(30),
        }
    }
}

impl Drop for SrtListener {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

impl fmt::Debug for SrtListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtListener")
            .field("local_addr", &self.local_addr)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// What the accept loop and every connection share.
pub(crate) struct Shared {
    /// The listener's settings.
    pub(crate) config: SrtListenerConfig,
    /// Decides every publish and play.
    pub(crate) router: Arc<dyn Router>,
    /// The numbers behind [`ListenerStats`].
    pub(crate) counters: Counters,
    /// Callers waiting for a decision, per IP.
    pending: Arc<PendingLimiter>,
    /// Cancelled when the listener stops; every connection watches a child of it.
    pub(crate) cancel: CancellationToken,
}

/// The listener's counters: gauges (now) and totals (since start).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) publishers: AtomicU64,
    pub(crate) players: AtomicU64,
    pub(crate) rejected: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ListenerStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ListenerStats {
            connections: get(&self.connections),
            publishers: get(&self.publishers),
            players: get(&self.players),
            rejected: get(&self.rejected),
            ..ListenerStats::default()
        }
    }
}

/// One unit of a gauge, given back when dropped.
pub(crate) struct Gauge<'a>(&'a AtomicU64);

impl<'a> Gauge<'a> {
    pub(crate) fn hold(gauge: &'a AtomicU64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Self(gauge)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Binds the UDP socket (4 MiB receive buffer, as UDP inputs) and the transport over it.
async fn bind(
    config: &SrtListenerConfig,
    addr: SocketAddr,
) -> io::Result<(Transport, SrtIncoming, SocketAddr)> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    if let Err(e) = socket.set_recv_buffer_size(RECV_BUFFER) {
        tracing::debug!("SO_RCVBUF: {e}");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let socket = UdpSocket::from_std(socket.into())?;
    let local_addr = socket.local_addr()?;
    let handshake = config.handshake_timeout;
    let (transport, incoming) = Transport::builder()
        .latency(config.latency)
        .set(|options| {
            options.connect.timeout = handshake;
            options.sender.buffer_size = ByteCount(SEND_BUFFER);
        })
        .socket(socket)
        .bind(local_addr)
        .await?;
    Ok((transport, incoming, local_addr))
}

/// Answers callers until cancelled. Each decided caller runs in its own task in `tasks`, so
/// a panic in one is contained and stopping the loop ends them all. When the transport's own
/// task dies (see the module doc), the port is bound again.
async fn accept_loop(
    mut transport: Transport,
    mut incoming: SrtIncoming,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    accepting: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(shared.config.max_connections));
    let mut tasks = JoinSet::new();
    'bound: loop {
        loop {
            tokio::select! {
                () = shared.cancel.cancelled() => break 'bound,
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(e) = joined
                        && e.is_panic()
                    {
                        tracing::error!("an SRT connection task panicked: {e}");
                    }
                }
                request = incoming.incoming().next() => {
                    let Some(request) = request else { break };
                    if accepting.is_cancelled() {
                        // Draining after a move: this port takes no new caller.
                        tasks.spawn(async move {
                            let _ = request
                                .reject(RejectReason::Server(ServerRejectReason::Down))
                                .await;
                        });
                        continue;
                    }
                    admit(request, &permits, &mut tasks, &shared);
                }
            }
        }
        tracing::error!(
            "the SRT transport's listener task ended (srt-tokio panicked on a caller's \
             handshake); binding {local_addr} again"
        );
        let mut backoff = REBIND_BACKOFF;
        loop {
            tokio::select! {
                () = shared.cancel.cancelled() => break 'bound,
                () = tokio::time::sleep(backoff) => {}
            }
            match bind(&shared.config, local_addr).await {
                Ok((t, i, _)) => {
                    (transport, incoming) = (t, i);
                    tracing::warn!("SRT listener bound again on {local_addr}");
                    break;
                }
                Err(e) => {
                    tracing::warn!("binding the SRT listener again on {local_addr}: {e}");
                    backoff = (backoff * 2).min(REBIND_BACKOFF_MAX);
                }
            }
        }
    }
    // `close` unwraps the transport task's result: a task that died would panic here, so it
    // runs in a task of its own.
    let _ = tokio::spawn(async move { transport.close().await }).await;
    tracing::info!(connections = tasks.len(), "SRT listener stopping");
    let drained = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(STOP_GRACE, drained).await.is_err() {
        tracing::warn!(
            remaining = tasks.len(),
            "SRT connections still open after {STOP_GRACE:?}; cutting them"
        );
    }
}

/// Takes one caller's request into a task of its own (the decision and the accept await the
/// transport), or refuses it at once when a cap is reached.
fn admit(
    request: ConnectionRequest,
    permits: &Arc<Semaphore>,
    tasks: &mut JoinSet<()>,
    shared: &Arc<Shared>,
) {
    let peer = request.remote();
    let refusal = match (
        Arc::clone(permits).try_acquire_owned(),
        shared.pending.enter(peer.ip()),
    ) {
        (Ok(permit), Some(slot)) => {
            let span = tracing::info_span!(
                "srt",
                %peer,
                stream = tracing::field::Empty,
                path = tracing::field::Empty,
            );
            let shared = Arc::clone(shared);
            tasks.spawn(
                async move {
                    conn::serve(request, slot, Arc::clone(&shared)).await;
                    drop(permit);
                }
                .instrument(span),
            );
            return;
        }
        (Err(_), _) => "the listener's connection cap is reached",
        (_, None) => "too many callers from this IP waiting for an answer",
    };
    let n = shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
    if n.is_multiple_of(100) {
        tracing::warn!(%peer, code = OVERLOAD, refused = n + 1, "SRT caller refused: {refusal}");
    }
    tasks.spawn(async move {
        let _ = request
            .reject(RejectReason::Server(ServerRejectReason::Overload))
            .await;
    });
}

/// SRT's reject code for an overloaded server (`SRT_REJX_OVERLOAD`).
const OVERLOAD: i32 = 2402;
/// The transport's send buffer per connection, bytes: what a player's SRT connection may
/// hold until the peer acknowledges it or it is too late (1.25 × latency, at least 1 s).
/// srt-tokio's default (46 592 bytes, 35 packets) overflows on the first GOP a player gets,
/// and an overflow stalls the connection for good (see the module doc); 32 MiB is a GOP
/// burst plus a second at 100 Mb/s. Memory is taken only as packets are queued.
const SEND_BUFFER: u64 = 32 << 20;
/// The socket receive buffer asked for: 4 MiB, as UDP inputs (about 3 s at 10 Mb/s).
const RECV_BUFFER: usize = 4 << 20;
/// The first pause before binding the port again after the transport's task died.
const REBIND_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between attempts to bind again.
const REBIND_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a stopping listener waits for its connections to close.
const STOP_GRACE: Duration = Duration::from_secs(2);
