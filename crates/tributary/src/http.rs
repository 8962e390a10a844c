//! The HTTP server: hyper's HTTP/1 server with a timer, behind connection caps (SPEC §Security
//! "Connection caps", §Defaults "HTTP header-read / idle timeout; HTTP connections").
//!
//! - **Header-read timeout** (10 s): a request's headers must all have arrived 10 s after its
//!   first byte did (the first request's: after the connection opened), so a client dribbling
//!   one header byte at a time (slowloris) or opening connections it never uses is closed.
//! - **Idle timeout** (60 s): a connection with no request in progress that moves no byte in
//!   either direction for 60 s is closed: a keep-alive connection that sends no next request,
//!   and a client that stopped reading a response, hold no socket and no buffered body for
//!   ever. A request in progress is bounded by its handler (admin requests by the admin
//!   timeout). hyper's own header-read timer is off: the watchdog below does its work without
//!   arming and cancelling a timer per request.
//! - **Caps**: at most `total` connections, and `per_ip` from one address (IPv6: one /64);
//!   loopback peers count towards the total only. A connection over a cap is accepted and
//!   closed at once (the newest is shed), so the listener never stops accepting and the
//!   process never runs out of descriptors: `total` is at most half the open-file limit,
//!   which [`raise_fd_limit`] lifts to the hard limit at start.
//!
//! Both timeouts are one watchdog per connection over its [`Activity`]: the stream records
//! the bytes it moves, the service the requests it serves.

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
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The bounds every HTTP connection lives under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpLimits {
    /// Request headers must have arrived this long after their first byte, or the first
    /// request's after the connection opened (SPEC: 10 s).
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
    let activity = Arc::new(Activity::opened());
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
    builder.header_read_timeout(None).keep_alive(true);
    let mut conn = pin!(builder.serve_connection(io, service));
    let mut draining = false;
    loop {
        let wake = activity.deadline(started, &limits);
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
            () = tokio::time::sleep_until(wake) => {
                if let Some(why) = activity.expired(started, Instant::now(), &limits) {
                    tracing::debug!(%peer, "closing an HTTP connection: {why}");
                    return;
                }
            }
        }
    }
}

/// What the watchdog of one connection reads: the last byte moved, the requests in progress,
/// and when the headers of the next request began to arrive.
#[derive(Debug)]
struct Activity {
    /// Milliseconds from the connection's start to its last read or write of a byte.
    last_ms: AtomicU64,
    /// Requests whose handler has not answered yet.
    in_flight: AtomicUsize,
    /// 1 + the milliseconds from the connection's start to the first byte of a request whose
    /// headers are not complete yet (read while no request was in progress); 0: none.
    head_from: AtomicU64,
}

impl Activity {
    /// A connection just opened: its first request's headers are due from now.
    fn opened() -> Self {
        Self {
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            head_from: AtomicU64::new(1),
        }
    }

    /// A read or write of at least one byte, now.
    fn touch(&self, started: Instant, read: bool) {
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last_ms.store(ms, Ordering::Relaxed);
        if read && self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ =
                self.head_from
                    .compare_exchange(0, ms + 1, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// When the header-read deadline (if a request's headers are arriving) or else the idle
    /// deadline falls, if nothing changes.
    fn deadline(&self, started: Instant, limits: &HttpLimits) -> Instant {
        let idle_at =
            started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + limits.idle;
        match self.head_from.load(Ordering::Relaxed) {
            0 => idle_at,
            from => idle_at.min(started + Duration::from_millis(from - 1) + limits.header_read),
        }
    }

    /// Why the connection must close at `now`, if it must.
    fn expired(&self, started: Instant, now: Instant, limits: &HttpLimits) -> Option<&'static str> {
        let from = self.head_from.load(Ordering::Relaxed);
        if from != 0 && now >= started + Duration::from_millis(from - 1) + limits.header_read {
            return Some("request headers did not arrive within the header-read timeout");
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        (self.in_flight.load(Ordering::Relaxed) == 0 && now >= started + last + limits.idle)
            .then_some("idle past the idle timeout")
    }
}

/// Counts one request in progress while it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    /// A request whose headers hyper has parsed: its header-read deadline is met.
    fn enter(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.head_from.store(0, Ordering::Relaxed);
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
            self.activity.touch(self.started, true);
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(data)])
    }

    /// A sealed segment in `bufs` goes out with `sendfile` ([`tributary_engine::pages`]).
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = tributary_engine::pages::poll_write_vectored(&mut self.inner, cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch(self.started, false);
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

    #[tokio::test(start_paused = true)]
    async fn headers_get_10_s_from_their_first_byte_and_an_idle_connection_60_s() {
        let limits = HttpLimits::new(None);
        let started = Instant::now();
        let activity = Arc::new(Activity::opened());
        let at = |s: u64| started + Duration::from_secs(s);
        // A new connection's first request is due 10 s after it opened.
        assert_eq!(activity.deadline(started, &limits), at(10));
        assert_eq!(activity.expired(started, at(9), &limits), None);
        assert!(activity.expired(started, at(10), &limits).is_some());
        // It arrives at 1 s; its handler runs as long as it needs.
        tokio::time::advance(Duration::from_secs(1)).await;
        activity.touch(started, true);
        let request = InFlight::enter(Arc::clone(&activity));
        assert_eq!(activity.expired(started, at(100), &limits), None);
        activity.touch(started, false);
        drop(request);
        // Keep-alive: 60 s from the last byte.
        assert_eq!(activity.deadline(started, &limits), at(61));
        assert_eq!(activity.expired(started, at(60), &limits), None);
        assert!(activity.expired(started, at(61), &limits).is_some());
        // The next request's first byte at 20 s: its headers are due at 30 s, whatever
        // trickles in meanwhile.
        tokio::time::advance(Duration::from_secs(19)).await;
        activity.touch(started, true);
        tokio::time::advance(Duration::from_secs(8)).await;
        activity.touch(started, true);
        assert_eq!(activity.deadline(started, &limits), at(30));
        assert!(activity.expired(started, at(30), &limits).is_some());
    }

    #[test]
    fn the_total_is_at_most_half_the_fd_limit() {
        assert_eq!(HttpLimits::new(Some(1024)).total, 512);
        assert_eq!(HttpLimits::new(Some(1 << 20)).total, 10_000);
        assert_eq!(HttpLimits::new(None).total, 10_000);
    }
}
