//! The RTMP listener: accepts connections and runs one [`conn`] task per connection.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tributary_net::InputBudget;

use crate::Router;
use crate::accept::{self, Accept, Running};
use crate::limit::PendingLimiter;

mod conn;
mod fanout;

/// Settings of the RTMP listener (`listeners.rtmp`), fixed when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpListenerConfig {
    /// Where to listen. Default `0.0.0.0:1935`, RTMP's registered port. Port 0 picks a free
    /// port ([`RtmpListener::local_addr`] tells which).
    pub addr: SocketAddr,
    /// A player whose unsent media is older than this many seconds is disconnected (SPEC
    /// §Publisher `listeners.rtmp.play_backlog_sec`). Default 10: about what the hub holds for
    /// it (1024 frames ≈ 13 s), so a player is dropped only once skipping to the next keyframe
    /// no longer helps.
    pub play_backlog_sec: u64,
    /// How long a new connection may take from accept to `publish` or `play`. Default 10 s
    /// (SPEC §Security "10 s handshake deadline"); encoders need well under a second.
    pub handshake_timeout: Duration,
    /// Connections one IP may have before they state publish or play. Default 16 (SPEC
    /// §Security); loopback peers are exempt.
    pub max_pending_per_ip: usize,
    /// Connections open at once, in every state; more are refused at accept and counted in
    /// [`ListenerStats::rejected`]. Default 8192: the SPEC's 4096 plays in total plus as many
    /// publishers and handshakes, while bounding sockets and per-connection memory.
    pub max_connections: usize,
    /// A publisher that sends nothing for this long is disconnected, so its slot frees for an
    /// encoder that reconnects after a network failure left the old TCP connection half-open.
    /// Default 30 s: twice the 15 s stall after which the stream starts a new session.
    pub publish_idle_timeout: Duration,
    /// The longest a player's audio waits to be written with the next video frame. Video
    /// goes out the moment it arrives; the audio between two video frames rides with the
    /// next, so a player costs one write (and one wake-up of its reader) per video frame, not
    /// per frame (30 instead of about 77 a second at 30 fps with AAC), and no video frame is
    /// ever held. The bound matters only while video stops. 0 writes every frame at once.
    /// Default 100 ms.
    pub play_merge: Duration,
    /// How long a publisher's media may wait in the socket after a read, to come in with
    /// the next one: fewer wake-ups, for at most this much extra latency. A read that fills
    /// the buffer is followed at once. Default 0: read as soon as bytes arrive.
    pub publish_merge: Duration,
    /// Bytes of unprocessed input (unfinished messages, input held while a request is
    /// decided) all connections together may hold; the connection whose read takes the total
    /// past it is cut. Default 256 MiB: each connection is bounded on its own (256 KiB until
    /// a publish is accepted, 32 MiB after), but 8192 of them are not.
    pub input_budget: usize,
}

/// The running RTMP listener. Dropping it stops it, like [`stop`](Self::stop).
pub struct RtmpListener {
    /// The address actually bound (the real port when the configuration said 0).
    local_addr: SocketAddr,
    /// Counters, the router and the stop signal, shared with the accept loop and every
    /// connection task.
    shared: Arc<Shared>,
    /// The accept loop; it owns the connection tasks.
    running: Running,
    /// Stops the accept loop alone ([`drain`](Self::drain)); a child of the stop signal.
    accepting: CancellationToken,
}

/// A snapshot of the listener's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListenerStats {
    /// Connections open now, in any state.
    pub connections: u64,
    /// Accepted publishers connected now.
    pub publishers: u64,
    /// Accepted players connected now.
    pub players: u64,
    /// Connections refused at accept (connection cap, per-IP handshake cap) and publish or
    /// play requests refused by the router, since start (`playback_rejected_total` counts
    /// the plays among them).
    pub rejected: u64,
    /// Players disconnected because their backlog exceeded `play_backlog_sec`, since start.
    pub slow_players: u64,
    /// Connections closed for a protocol violation or a timeout (malformed chunks, absurd
    /// sizes, handshake deadline, idle publisher), since start.
    pub protocol_errors: u64,
}

/// Binds `config.addr` and serves RTMP publishers and players until the returned listener is
/// stopped or dropped.
///
/// Fails only if the address cannot be bound.
pub async fn start_rtmp(
    config: RtmpListenerConfig,
    router: Arc<dyn Router>,
) -> io::Result<RtmpListener> {
    let listener = TcpListener::bind(config.addr).await?;
    let local_addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        pending: Arc::new(PendingLimiter::new(config.max_pending_per_ip)),
        input_budget: InputBudget::new(config.input_budget),
        config,
        router,
        counters: Arc::new(Counters::default()),
        cancel: CancellationToken::new(),
        fanouts: fanout::Fanouts::default(),
    });
    let span = tracing::info_span!("rtmp_listener", addr = %local_addr);
    let accepting = shared.cancel.child_token();
    let running = Running::spawn(
        shared.cancel.clone(),
        accept_loop(listener, Arc::clone(&shared), accepting.clone()).instrument(span),
    );
    tracing::debug!(addr = %local_addr, "RTMP listener started");
    Ok(RtmpListener {
        local_addr,
        shared,
        running,
        accepting,
    })
}

impl RtmpListener {
    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and closes every connection: publishers' ports get an error report
    /// and their guards are dropped, players are disconnected. Returns at once; the tasks
    /// wind down in the background (see [`shutdown`](Self::shutdown) to wait for them).
    pub fn stop(self) {
        self.running.stop();
    }

    /// Closes the port at once and keeps the open connections (publishers and players) for
    /// up to `grace`, then stops as [`shutdown`](Self::shutdown) does: how a listener moved
    /// to another address hands over without cutting anybody mid-sentence.
    pub async fn drain(self, grace: Duration) {
        self.accepting.cancel();
        tokio::time::sleep(grace).await;
        self.shutdown().await;
    }

    /// Like [`stop`](Self::stop), and waits until the port is closed and every connection
    /// has ended (at most about 2 s: connections still flushing then are cut).
    pub async fn shutdown(mut self) {
        self.running.shutdown().await;
    }

    /// The counters now.
    pub fn stats(&self) -> ListenerStats {
        self.shared.counters.snapshot()
    }
}

impl Default for RtmpListenerConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 1935)),
            play_backlog_sec: 10,
            handshake_timeout: Duration::from_secs(10),
            max_pending_per_ip: 16,
            max_connections: 8192,
            publish_idle_timeout: Duration::from_secs(30),
            play_merge: Duration::from_millis(100),
            publish_merge: Duration::ZERO,
            input_budget: 256 << 20,
        }
    }
}

impl fmt::Debug for RtmpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtmpListener")
            .field("local_addr", &self.local_addr)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// What the accept loop and every connection share.
pub(crate) struct Shared {
    /// The listener's settings.
    config: RtmpListenerConfig,
    /// Decides every publish and play.
    router: Arc<dyn Router>,
    /// The numbers behind [`ListenerStats`].
    counters: Arc<Counters>,
    /// Handshakes in flight per IP.
    pending: Arc<PendingLimiter>,
    /// Cancelled when the listener stops; every connection watches it.
    cancel: CancellationToken,
    /// The players' shared muxing, per played buffer.
    fanouts: fanout::Fanouts,
    /// What every connection together may hold of unprocessed input.
    input_budget: Arc<InputBudget>,
}

/// The listener's counters: gauges (now) and totals (since start).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    connections: AtomicU64,
    publishers: AtomicU64,
    players: AtomicU64,
    rejected: AtomicU64,
    slow_players: AtomicU64,
    protocol_errors: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ListenerStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ListenerStats {
            connections: get(&self.connections),
            publishers: get(&self.publishers),
            players: get(&self.players),
            rejected: get(&self.rejected),
            slow_players: get(&self.slow_players),
            protocol_errors: get(&self.protocol_errors),
        }
    }

    /// Counts one more in a total and returns the previous value.
    fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed)
    }
}

/// One unit of a gauge (connections, publishers or players), given back when dropped.
pub(crate) struct Held {
    counters: Arc<Counters>,
    gauge: fn(&Counters) -> &AtomicU64,
}

impl Held {
    fn new(counters: &Arc<Counters>, gauge: fn(&Counters) -> &AtomicU64) -> Self {
        gauge(counters).fetch_add(1, Ordering::Relaxed);
        Self {
            counters: Arc::clone(counters),
            gauge,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        (self.gauge)(&self.counters).fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts until cancelled (`accept::run`): one [`conn`] task per connection.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, accepting: CancellationToken) {
    let accept = Accept {
        protocol: "RTMP",
        cancel: shared.cancel.clone(),
        accepting,
        max_connections: shared.config.max_connections,
        pending: Arc::clone(&shared.pending),
    };
    let span = |peer| {
        tracing::info_span!(
            "rtmp",
            %peer,
            stream = tracing::field::Empty,
            path = tracing::field::Empty,
        )
    };
    let refused = || Counters::bump(&shared.counters.rejected);
    let serve = |socket, peer, slot| conn::serve(socket, peer, slot, Arc::clone(&shared));
    accept::run(listener, accept, refused, span, serve).await;
}
