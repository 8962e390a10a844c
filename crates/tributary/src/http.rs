//! The HTTP server: hyper's HTTP/1 server with a timer, behind connection caps (SPEC §Security
//! "Connection caps", §Defaults "HTTP header-read / idle timeout; HTTP connections").
//!
//! - **Header-read timeout** (10 s): hyper closes a connection whose request headers have not
//!   all arrived this long after it began waiting for them. The wait begins when the
//!   connection opens and again when a keep-alive connection finishes a response, so a client
//!   dribbling one header byte at a time (slowloris) and a keep-alive connection that sends no
//!   next request are both closed after it.
//! - **Idle timeout** (60 s): a connection with no request in progress that moves no byte in
//!   either direction for this long is closed: a client that stopped reading a response holds
//!   no socket and no buffered body forever. A request in progress is bounded by its handler
//!   (admin requests by the admin timeout).
//! - **Caps**: at most `total` connections, and `per_ip` from one address (IPv6: one /64);
//!   loopback peers count towards the total only. A connection over a cap is accepted and
//!   closed at once (the newest is shed), so the listener never stops accepting and the
//!   process never runs out of descriptors: `total` is at most half the open-file limit,
//!   which [`raise_fd_limit`] lifts to the hard limit at start.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The bounds every HTTP connection lives under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpLimits {
    /// Request headers must have arrived this long after the connection began waiting for
    /// them (SPEC: 10 s).
    pub(crate) header_read: Duration,
    /// A connection with no request in progress and no byte moved for this long is closed
    /// (SPEC: 60 s).
    pub(crate) idle: Duration,
    /// Open connections in total (SPEC: 10 000, lowered to half the open-file limit).
    pub(crate) total: usize,
    /// Open connections from one non-loopback address or IPv6 /64 (SPEC: 1 000).
    pub(crate) per_ip: usize,
}

impl HttpLimits {
    /// SPEC's bounds, with the total lowered to half of `fd_limit` (the process's open-file
    /// limit), so HTTP can never take the descriptors RTMP, the store and FFmpeg need.
    pub(crate) fn new(fd_limit: Option<u64>) -> Self {
        let total = fd_limit.map_or(MAX_CONNECTIONS, |limit| {
            usize::try_from(limit / 2).map_or(MAX_CONNECTIONS, |half| half.min(MAX_CONNECTIONS))
        });
        Self {
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            total: total.max(1),
            per_ip: MAX_CONNECTIONS_PER_IP,
        }
    }
}

/// SPEC §Defaults: HTTP connections in total.
const MAX_CONNECTIONS: usize = 10_000;
/// SPEC §Defaults: HTTP connections per IP.
const MAX_CONNECTIONS_PER_IP: usize = 1_000;

/// Raises the soft open-file limit to the hard one (SPEC §Security "Connection caps") and
/// returns the limit in force (`None`: unlimited or unknown).
pub(crate) fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (Some(current), Some(maximum)) = (limit.current, limit.maximum) else {
        return limit.current;
    };
    if current >= maximum {
        return Some(current);
    }
    let raised = Rlimit {
        current: Some(maximum),
        maximum: Some(maximum),
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::info!(from = current, to = maximum, "raised the open-file limit");
            Some(maximum)
        }
        Err(e) => {
            tracing::warn!(limit = current, hard = maximum, error = %e,
                "cannot raise the open-file limit");
            Some(current)
        }
    }
}

/// Serves `app` on `listener` until `stop` is cancelled, then lets every connection finish
/// its request in progress and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    stop: CancellationToken,
) {
    let counts = Arc::new(Counts::default());
    let mut shed = ShedLog::default();
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        // Reap finished connection tasks so the set stays as small as the open connections.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors despite the caps (another part of the process holds
                // them): the pending connection stays queued; try again shortly.
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let Some(slot) = Slot::take(&counts, peer.ip(), &limits) else {
            shed.record(Instant::now(), peer, &limits);
            drop(stream);
            continue;
        };
        let app = app.clone();
        let stop = stop.clone();
        connections.spawn(connection(stream, peer, app, limits, stop, slot));
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// How long the accept loop waits after a failed accept.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Serves one connection until it ends, times out, idles out, or shuts down gracefully.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: HttpLimits,
    stop: CancellationToken,
    _slot: Slot,
) {
    let started = Instant::now();
    let activity = Arc::new(Activity::default());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: Arc::clone(&activity),
        started,
    });
    let in_flight = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let guard = InFlight::enter(Arc::clone(&in_flight));
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await;
            drop(guard);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    let mut conn = pin!(builder.serve_connection(io, service));
    let mut draining = false;
    loop {
        let idle_at = activity.idle_deadline(started, limits.idle);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended");
                }
                return;
            }
            () = stop.cancelled(), if !draining => {
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
            () = tokio::time::sleep_until(idle_at) => {
                if activity.is_idle(started, Instant::now(), limits.idle) {
                    tracing::debug!(%peer, idle_sec = limits.idle.as_secs(),
                        "closing an idle HTTP connection");
                    return;
                }
            }
        }
    }
}

/// What the idle timer of one connection reads: the last byte moved and the requests in
/// progress.
#[derive(Debug, Default)]
struct Activity {
    /// Milliseconds from the connection's start to its last read or write of a byte.
    last_ms: AtomicU64,
    /// Requests whose handler has not answered yet.
    in_flight: AtomicUsize,
}

impl Activity {
    fn touch(&self, started: Instant) {
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// When the connection goes idle if nothing moves.
    fn idle_deadline(&self, started: Instant, idle: Duration) -> Instant {
        started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + idle
    }

    fn is_idle(&self, started: Instant, now: Instant, idle: Duration) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0 && now >= self.idle_deadline(started, idle)
    }
}

/// Counts one request in progress while it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A TCP stream that records when it last moved a byte.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
    started: Instant,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch(self.started);
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch(self.started);
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch(self.started);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Open connections, in total and per address.
#[derive(Debug, Default)]
struct Counts {
    total: AtomicUsize,
    /// Non-loopback peers by [`ip_key`]; an entry leaves with its last connection.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; releases its place in [`Counts`] when dropped.
struct Slot {
    counts: Arc<Counts>,
    /// `None` for loopback peers, which count towards the total only.
    key: Option<IpAddr>,
}

impl Slot {
    /// A place for a connection from `ip`, or `None` when a cap is reached.
    fn take(counts: &Arc<Counts>, ip: IpAddr, limits: &HttpLimits) -> Option<Self> {
        let admitted = counts
            .total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limits.total).then_some(n + 1)
            });
        if admitted.is_err() {
            return None;
        }
        let key = (!ip.to_canonical().is_loopback()).then(|| ip_key(ip));
        if let Some(key) = key {
            let mut per_ip = lock(&counts.per_ip);
            let count = per_ip.entry(key).or_insert(0);
            if *count >= limits.per_ip {
                drop(per_ip);
                counts.total.fetch_sub(1, Ordering::AcqRel);
                return None;
            }
            *count += 1;
        }
        Some(Self {
            counts: Arc::clone(counts),
            key,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let mut per_ip = lock(&self.counts.per_ip);
            if let Some(count) = per_ip.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&key);
                }
            }
        }
        self.counts.total.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The address a per-IP cap counts: IPv4 as is, IPv6 by its /64 (one host's usual share).
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// Logs shed connections: the first at once, then a summary at most every [`SHED_LOG_EVERY`].
#[derive(Debug, Default)]
struct ShedLog {
    /// When the last line was written.
    last: Option<Instant>,
    /// Connections shed since.
    unlogged: u64,
}

impl ShedLog {
    fn record(&mut self, now: Instant, peer: SocketAddr, limits: &HttpLimits) {
        self.unlogged += 1;
        if self.last.is_some_and(|last| now < last + SHED_LOG_EVERY) {
            return;
        }
        tracing::warn!(
            %peer,
            shed = self.unlogged,
            total_cap = limits.total,
            per_ip_cap = limits.per_ip,
            "HTTP connection cap reached: closing new connections"
        );
        self.last = Some(now);
        self.unlogged = 0;
    }
}

/// How often a shedding server logs.
const SHED_LOG_EVERY: Duration = Duration::from_secs(10);

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_ip: usize) -> HttpLimits {
        HttpLimits {
            total,
            per_ip,
            ..HttpLimits::new(None)
        }
    }

    #[test]
    fn caps_count_in_total_and_per_address_loopback_exempt() {
        let counts = Arc::new(Counts::default());
        let limits = limits(4, 2);
        let remote: IpAddr = "192.0.2.1".parse().unwrap();
        let a = Slot::take(&counts, remote, &limits).unwrap();
        let _b = Slot::take(&counts, remote, &limits).unwrap();
        assert!(Slot::take(&counts, remote, &limits).is_none(), "per-IP cap");
        let local: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let _c = Slot::take(&counts, local, &limits).unwrap();
        let _d = Slot::take(&counts, local, &limits).unwrap();
        assert!(Slot::take(&counts, local, &limits).is_none(), "total cap");
        drop(a);
        assert!(
            Slot::take(&counts, remote, &limits).is_some(),
            "a slot freed"
        );
    }

    #[test]
    fn ipv6_peers_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
    }

    #[test]
    fn the_total_is_at_most_half_the_fd_limit() {
        assert_eq!(HttpLimits::new(Some(1024)).total, 512);
        assert_eq!(HttpLimits::new(Some(1 << 20)).total, 10_000);
        assert_eq!(HttpLimits::new(None).total, 10_000);
    }
}
