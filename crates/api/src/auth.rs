//! Admin authentication and cross-site refusal (SPEC §Security).
//!
//! An admin request passes three gates, in order:
//! 1. **Cross-site:** a foreign `Origin` (not `http(s)://<the request's Host>`) or
//!    `Sec-Fetch-Site: cross-site` is refused with 403 `CROSS_SITE`, token or not: a web page
//!    in a browser never reaches a handler, whatever `Content-Type` it sends.
//! 2. **Host, while the loopback bypass applies** (a loopback peer without a valid token):
//!    the `Host` must be a loopback name or address or one of `server.allowed_hosts`, else
//!    403 `CROSS_SITE`. A page on a rebound
//!    DNS name (`rebind.evil.example` → 127.0.0.1) reaches us from loopback with its own name
//!    as `Host`, so it is refused here.
//! 3. **Token:** loopback peers (the TCP address, never a header; IPv4-mapped IPv6 included)
//!    skip it while `security.loopback_bypass` is on; everyone else needs
//!    `Authorization: Bearer <token>` (scheme in any case), compared in constant time, else
//!    401 with `WWW-Authenticate: Bearer`.
//!
//! Plain clients (curl, scripts) send neither `Origin` nor `Sec-Fetch-Site` and a loopback
//! `Host`, so the README's commands keep working. Refusals are logged at a bounded rate
//! ([`RefusalLog`]), so a flood of them cannot flood the log.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;
use tributary_engine::EngineHandle;

use crate::error::ApiError;

/// What the admin gate needs: the engine (token, configuration) and the refusal log.
#[derive(Clone)]
pub(crate) struct AdminGate {
    /// The engine.
    pub(crate) engine: EngineHandle,
    /// Refused requests, logged at a bounded rate.
    pub(crate) refusals: Arc<Mutex<RefusalLog>>,
}

impl AdminGate {
    pub(crate) fn new(engine: EngineHandle) -> Self {
        Self {
            engine,
            refusals: Arc::new(Mutex::new(RefusalLog::default())),
        }
    }
}

/// `GET /metrics`: open to anyone while `security.public_metrics` is true (read at each
/// request, so a change through the config API applies to the next scrape), else an admin
/// route.
pub(crate) async fn metrics_gate(
    State(gate): State<AdminGate>,
    request: Request,
    next: Next,
) -> Response {
    if gate.engine.config().security.public_metrics == Some(true) {
        return next.run(request).await;
    }
    require_admin(State(gate), request, next).await
}

pub(crate) async fn require_admin(
    State(gate): State<AdminGate>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    let config = gate.engine.config();
    let bypass = config.security.loopback_bypass && peer.is_some_and(|p| is_loopback(p.ip()));
    let headers = request.headers();
    let token = bearer(headers).is_some_and(|t| gate.engine.admin_token().matches(t));
    let refusal = match cross_site(headers) {
        Some(why) => Some(ApiError::new(StatusCode::FORBIDDEN, "CROSS_SITE", why)),
        None if token => None,
        None if bypass => foreign_host(headers, &config.server.allowed_hosts)
            .map(|why| ApiError::new(StatusCode::FORBIDDEN, "CROSS_SITE", why)),
        None => Some(ApiError::unauthorized()),
    };
    let Some(refusal) = refusal else {
        return next.run(request).await;
    };
    let now = Instant::now();
    let mut log = crate::lock(&gate.refusals);
    if let Some(suppressed) = log.admit(now) {
        let peer = peer.map(|a| a.to_string()).unwrap_or_default();
        tracing::warn!(
            peer,
            method = %request.method(),
            path = request.uri().path(),
            code = refusal.code(),
            suppressed,
            "admin request refused: {}",
            refusal.message()
        );
    }
    refusal.into_response()
}

/// Whether an address is loopback: 127.0.0.0/8, `::1`, and `::ffff:127.0.0.0/104` (an IPv4
/// loopback peer seen through a dual-stack listener).
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Why a request is cross-site: `Sec-Fetch-Site: cross-site`, or an `Origin` other than this
/// server's own (`http(s)://` + the request's `Host`; `Origin: null` is foreign).
fn cross_site(headers: &HeaderMap) -> Option<String> {
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if fetch_site.trim().eq_ignore_ascii_case("cross-site") {
        return Some(
            "cross-site requests (Sec-Fetch-Site: cross-site) cannot use admin routes".into(),
        );
    }
    let origin = headers.get(header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or("").trim();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    let own = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|authority| !host.is_empty() && authority.eq_ignore_ascii_case(host));
    (!own).then(|| format!("requests from another origin ({origin:?}) cannot use admin routes"))
}

/// Why a request under the loopback bypass names a foreign `Host`: not `localhost`, a
/// loopback address or one of `allowed` (compared without the port, in any case). A request
/// without `Host` (HTTP/1.0 tools) is not a browser's and passes.
fn foreign_host(headers: &HeaderMap, allowed: &[String]) -> Option<String> {
    let host = headers.get(header::HOST)?;
    let host = host.to_str().unwrap_or("").trim();
    let name = host_name(host);
    let loopback = name.eq_ignore_ascii_case("localhost")
        || name.to_ascii_lowercase().ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(is_loopback);
    let listed = allowed
        .iter()
        .any(|a| a.trim().eq_ignore_ascii_case(name) || a.trim().eq_ignore_ascii_case(host));
    (!loopback && !listed).then(|| {
        format!(
            "Host {host:?} is not a loopback name or one of server.allowed_hosts: admin requests \
             without a token must name this server by a loopback address"
        )
    })
}

/// The host of a `Host` header value: without the port, IPv6 without brackets.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// The token of `Authorization: Bearer <token>`, the scheme in any case (RFC 9110 §11.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Logs refused admin requests at a bounded rate: at most [`REFUSALS_PER_WINDOW`] lines per
/// [`REFUSAL_WINDOW`]; the first line of the next window says how many were not logged.
#[derive(Debug, Default)]
pub(crate) struct RefusalLog {
    /// When the current window began (`None`: nothing logged yet).
    window: Option<Instant>,
    /// Lines logged in the current window.
    logged: u32,
    /// Refusals not logged since the last line.
    suppressed: u64,
}

impl RefusalLog {
    /// Whether to log a refusal at `now`: `Some(n)` with the number of refusals not logged
    /// since the last line, or `None` to stay quiet (counted).
    fn admit(&mut self, now: Instant) -> Option<u64> {
        let expired = self
            .window
            .is_none_or(|start| now.duration_since(start) >= REFUSAL_WINDOW);
        if expired {
            self.window = Some(now);
            self.logged = 0;
        }
        if self.logged >= REFUSALS_PER_WINDOW {
            self.suppressed += 1;
            return None;
        }
        self.logged += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Refused admin requests logged per [`REFUSAL_WINDOW`]: enough to see who is knocking.
const REFUSALS_PER_WINDOW: u32 = 10;
/// The window of [`REFUSALS_PER_WINDOW`].
const REFUSAL_WINDOW: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn loopback_includes_mapped_ipv4() {
        for ip in ["127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.0.0.1", "::ffff:10.0.0.1", "::"] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn origins_and_fetch_site() {
        let host = ("host", "127.0.0.1:8080");
        assert!(cross_site(&headers(&[host])).is_none());
        assert!(cross_site(&headers(&[host, ("origin", "http://127.0.0.1:8080")])).is_none());
        assert!(cross_site(&headers(&[host, ("sec-fetch-site", "same-origin")])).is_none());
        for bad in [
            ("origin", "http://evil.example"),
            ("origin", "null"),
            ("origin", "http://127.0.0.1:8081"),
            ("sec-fetch-site", "cross-site"),
        ] {
            assert!(cross_site(&headers(&[host, bad])).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn hosts_under_the_bypass() {
        let allowed = vec!["tv.example".to_owned()];
        for good in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "tv.example:8080",
        ] {
            let map = {
                let mut m = HeaderMap::new();
                m.insert("host", HeaderValue::from_str(good).unwrap());
                m
            };
            assert!(foreign_host(&map, &allowed).is_none(), "{good}");
        }
        for bad in ["rebind.evil.example:8080", "10.0.0.5", "[::2]:80"] {
            let mut map = HeaderMap::new();
            map.insert("host", HeaderValue::from_str(bad).unwrap());
            assert!(foreign_host(&map, &allowed).is_some(), "{bad}");
        }
    }

    #[test]
    fn bearer_scheme_in_any_case() {
        for (value, token) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER   abc ", Some("abc")),
            ("Basic abc", None),
            ("Bearer", None),
            ("Bearer ", None),
        ] {
            let mut map = HeaderMap::new();
            map.insert("authorization", HeaderValue::from_static(value));
            assert_eq!(bearer(&map), token, "{value}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_are_logged_at_a_bounded_rate() {
        let mut log = RefusalLog::default();
        let start = Instant::now();
        let logged = (0..100).filter(|_| log.admit(start).is_some()).count();
        assert_eq!(logged, REFUSALS_PER_WINDOW as usize);
        tokio::time::advance(REFUSAL_WINDOW).await;
        assert_eq!(log.admit(Instant::now()), Some(90));
        assert_eq!(log.admit(Instant::now()), Some(0));
    }
}
