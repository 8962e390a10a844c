//! HTTP for the pull workers (HLS and raw TS), and the HTTP-TS worker itself.
//!
//! Redirects are followed here, not by reqwest, so the rules of SPEC §Domain "Input" hold on
//! every hop: at most 5, and the input's `headers` are sent only to the host the input names,
//! never forwarded across hosts.
//!
//! The SSRF guard (SPEC §Security) holds on every hop too: reqwest resolves names through
//! [`tributary_net::resolve`], which drops the addresses the guard blocks, and a host written
//! as an address (which reqwest does not resolve) is checked before each request.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Client, Response, StatusCode};
use tributary_domain::redact::mask_url;
use tributary_domain::spec::HttpSource;
use tributary_net::{DialError, SsrfGuard, Target};
use url::{Host, Url};

use crate::IngestError;
use crate::backoff::Backoff;
use crate::sink::{Label, Next, Reporter, Sink, now};

/// An HTTP client for one input: its headers, TLS choice and timeouts.
#[derive(Debug, Clone)]
pub(crate) struct HttpClient {
    /// Redirects off; connect timeout and TLS verification per the input's `net`.
    client: Client,
    /// The input's `headers`, parsed once.
    headers: HeaderMap,
    /// Which addresses may be dialed (names are checked by the client's resolver).
    guard: SsrfGuard,
    /// The budget for a response's headers to arrive (and, for HTTP-TS, between two reads).
    pub(crate) timeout: Duration,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HttpError {
    /// The server answered with an error status.
    Status {
        /// The status.
        status: StatusCode,
        /// The URL that answered (masked).
        url: String,
    },
    /// No answer: DNS, connect, TLS, timeout, or a broken body.
    Transport {
        /// What happened (URL masked).
        what: String,
        /// Whether retrying cannot help: DNS "no such host", TLS and certificate errors.
        fatal: bool,
    },
    /// More than [`MAX_REDIRECTS`] redirects, or one without a usable `Location`.
    Redirect(String),
    /// The body is larger than the cap.
    TooLarge {
        /// The URL (masked).
        url: String,
        /// The cap in bytes.
        cap: usize,
    },
}

impl HttpError {
    /// Whether retrying cannot help (HTTP 401/403/404/410, DNS "no such host", TLS): reported
    /// at once, and HLS playlist retries stop early.
    pub(crate) fn fatal(&self) -> bool {
        match self {
            Self::Status { status, .. } => matches!(status.as_u16(), 401 | 403 | 404 | 410),
            Self::Transport { fatal, .. } => *fatal,
            Self::Redirect(_) | Self::TooLarge { .. } => false,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status { status, url } => write!(f, "HTTP {status} from {url}"),
            Self::Transport { what, .. } => f.write_str(what),
            Self::Redirect(what) => f.write_str(what),
            Self::TooLarge { url, cap } => write!(f, "{url}: body larger than {cap} bytes"),
        }
    }
}

impl HttpClient {
    /// A client for `source`: its timeout (`None` = `default_timeout`) bounds connecting and
    /// waiting for a response; `insecure_tls` skips certificate checks; `guard` says which
    /// addresses may be dialed.
    pub(crate) fn new(
        source: &HttpSource,
        default_timeout: Duration,
        label: &Label,
        guard: &SsrfGuard,
    ) -> Result<Self, IngestError> {
        let mut headers = HeaderMap::new();
        // The parser admitted only header names and values HTTP can carry; a refusal here
        // would be a disagreement between the two, reported like a bad setting.
        for (name, value) in &source.headers {
            let setting = || format!("headers.{name}");
            let name_parsed = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| label.invalid(setting(), e.to_string()))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| label.invalid(setting(), e.to_string()))?;
            headers.append(name_parsed, value);
        }
        let timeout = source.timeout.unwrap_or(default_timeout);
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver(guard.clone())))
            .connect_timeout(timeout)
            .danger_accept_invalid_certs(source.insecure_tls)
            .user_agent(concat!("tributary/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| IngestError::Client {
                code: label.code.clone(),
                priority: label.priority,
                url: label.url.clone(),
                reason: error_chain(&e),
            })?;
        Ok(Self {
            client,
            headers,
            guard: guard.clone(),
            timeout,
        })
    }

    /// GETs `url`, following up to [`MAX_REDIRECTS`] redirects; returns the successful response
    /// (body unread) and the URL that gave it (relative URIs resolve against it). `total`, if
    /// given, bounds the whole exchange body included; otherwise the client's timeout bounds
    /// the wait for the headers.
    pub(crate) async fn get(
        &self,
        url: &Url,
        total: Option<Duration>,
    ) -> Result<(Response, Url), HttpError> {
        let mut current = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            if let Some(ip) = address_host(&current).filter(|ip| self.guard.blocks(*ip)) {
                return Err(HttpError::Transport {
                    what: format!(
                        "{}: blocked by ssrf_guard: {ip}",
                        mask_url(current.as_str())
                    ),
                    fatal: true,
                });
            }
            let mut request = self.client.get(current.clone());
            if same_origin(&current, url) {
                request = request.headers(self.headers.clone());
            }
            if let Some(total) = total {
                request = request.timeout(total);
            }
            let response = tokio::time::timeout(self.timeout, request.send())
                .await
                .map_err(|_| HttpError::Transport {
                    what: format!(
                        "{}: no response within {:?}",
                        mask_url(current.as_str()),
                        self.timeout
                    ),
                    fatal: false,
                })?
                .map_err(|e| transport(&current, &e))?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| current.join(v).ok())
                    .ok_or_else(|| {
                        HttpError::Redirect(format!(
                            "HTTP {status} from {} without a usable Location",
                            mask_url(current.as_str())
                        ))
                    })?;
                tracing::debug!(from = %mask_url(current.as_str()),
                    to = %mask_url(location.as_str()), "redirect");
                current = location;
                continue;
            }
            if !status.is_success() {
                return Err(HttpError::Status {
                    status,
                    url: mask_url(current.as_str()),
                });
            }
            return Ok((response, current));
        }
        Err(HttpError::Redirect(format!(
            "more than {MAX_REDIRECTS} redirects from {}",
            mask_url(url.as_str())
        )))
    }

    /// GETs a whole body of at most `cap` bytes, as the chunks it arrived in (no copy);
    /// `total` bounds the exchange.
    pub(crate) async fn fetch(
        &self,
        url: &Url,
        total: Duration,
        cap: usize,
    ) -> Result<(Vec<Bytes>, Url), HttpError> {
        let (mut response, final_url) = self.get(url, Some(total)).await?;
        let too_large = || HttpError::TooLarge {
            url: mask_url(final_url.as_str()),
            cap,
        };
        if response
            .content_length()
            .is_some_and(|len| len > cap as u64)
        {
            return Err(too_large());
        }
        let mut chunks = Vec::new();
        let mut len = 0;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    len += chunk.len();
                    if len > cap {
                        return Err(too_large());
                    }
                    chunks.push(chunk);
                }
                Ok(None) => return Ok((chunks, final_url)),
                Err(e) => return Err(transport(&final_url, &e)),
            }
        }
    }
}

/// Runs the HTTP-TS worker: a long GET read as TS, reopened with backoff whenever it fails or
/// ends.
pub(crate) async fn run_ts(url: Url, client: HttpClient, program: u16, reporter: Reporter) {
    let mut sink = Sink::new(reporter.clone(), program);
    let mut backoff = Backoff::new();
    loop {
        let (mut response, final_url) = match client.get(&url, None).await {
            Ok(opened) => opened,
            Err(e) => {
                let kind = if e.fatal() {
                    "cannot open (not retriable)"
                } else {
                    "cannot open"
                };
                reporter.open_failed(format_args!("{kind}: {e}"));
                backoff.wait().await;
                continue;
            }
        };
        reporter.opened();
        tracing::info!(from = %mask_url(final_url.as_str()), "connected");
        sink.reset();
        let mut offset: u64 = 0;
        let ended = loop {
            let chunk = match tokio::time::timeout(client.timeout, response.chunk()).await {
                Err(_) => {
                    break format!(
                        "no data for {:?} (read timeout) at byte {offset}",
                        client.timeout
                    );
                }
                Ok(Err(e)) => break format!("read error at byte {offset}: {}", error_chain(&e)),
                Ok(Ok(None)) => {
                    break format!("connection closed by the peer (EOF) at byte {offset}");
                }
                Ok(Ok(Some(chunk))) => chunk,
            };
            let arrival = now();
            offset += chunk.len() as u64;
            sink.push(&chunk, arrival);
            let mut reopen = None;
            while let Some(next) = sink.next() {
                match next {
                    Next::Frame(ready) => sink.write(ready, arrival),
                    Next::Reopen(why) => {
                        reopen = Some(why);
                        break;
                    }
                }
            }
            if let Some(why) = reopen {
                break format!("{why} (at byte {offset}); reopening");
            }
        };
        if sink.had_frames() {
            backoff.reset();
        }
        reporter.lost(ended);
        backoff.wait().await;
    }
}

/// Whether two URLs have the same scheme, host and port (headers go only there).
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The host of `url` when it is written as an address (reqwest dials those without resolving).
fn address_host(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain(_) => None,
    }
}

/// reqwest's resolver for one client: names resolve through [`tributary_net::resolve`], so
/// the addresses the guard blocks are never dialed, and a name with nothing else fails with
/// [`DialError::Blocked`].
#[derive(Debug)]
struct GuardedResolver(SsrfGuard);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        // reqwest sets the port on the addresses returned.
        let target = Target::new(name.as_str(), 0);
        Box::pin(async move {
            let addrs = tributary_net::resolve(&target, &guard).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A transport error, classified: DNS "no such host" and TLS/certificate failures are fatal.
fn transport(url: &Url, e: &reqwest::Error) -> HttpError {
    if let Some(dial) = dial_error(e) {
        let host = url.host_str().unwrap_or_default();
        let what = match dial {
            DialError::Blocked { ip, .. } => format!("blocked by ssrf_guard: {ip}"),
            DialError::Resolve { source, .. } => format!("cannot resolve {host}: {source}"),
            DialError::NoAddress { .. } => format!("{host} resolves to no address"),
            other => other.to_string(),
        };
        return HttpError::Transport {
            what: format!("{}: {what}", mask_url(url.as_str())),
            fatal: dial.is_fatal(),
        };
    }
    let chain = error_chain(e);
    let lower = chain.to_ascii_lowercase();
    let fatal = FATAL_MARKERS.iter().any(|m| lower.contains(m));
    let what = if e.is_timeout() {
        format!("{}: timed out ({chain})", mask_url(url.as_str()))
    } else {
        format!("{}: {chain}", mask_url(url.as_str()))
    };
    HttpError::Transport { what, fatal }
}

/// The resolver's error behind a reqwest error, if that is what failed.
fn dial_error(e: &reqwest::Error) -> Option<&DialError> {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(dial) = cause.downcast_ref::<DialError>() {
            return Some(dial);
        }
        source = cause.source();
    }
    None
}

/// The messages of an error and its sources, without the URL reqwest puts in its own
/// message (it may carry secrets; callers add the masked URL).
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    if parts.is_empty() {
        let top = reqwest::Error::to_string(e);
        parts.push(match top.split_once(" for url (") {
            Some((head, _)) => head.to_owned(),
            None => top,
        });
    }
    parts.dedup();
    parts.join(": ")
}

/// Lower-case fragments of transport errors that retrying cannot fix: a host that does not
/// exist (not a resolver that failed for now) and TLS or certificate failures.
const FATAL_MARKERS: &[&str] = &[
    "name or service not known",
    "nodename nor servname",
    "no such host",
    "certificate",
    "tls handshake",
    "invalidcertificate",
];

/// Redirects followed at most (SPEC §Ingest "http-ts", §Security).
pub(crate) const MAX_REDIRECTS: usize = 5;

/// The HTTP-TS connect and read budget when `net.timeout_sec` is 0.
pub(crate) const HTTP_TS_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_statuses() {
        let status = |code: u16| HttpError::Status {
            status: StatusCode::from_u16(code).unwrap(),
            url: "http://x/".into(),
        };
        for code in [401, 403, 404, 410] {
            assert!(status(code).fatal(), "{code}");
        }
        for code in [400, 429, 500, 502, 503] {
            assert!(!status(code).fatal(), "{code}");
        }
        assert_eq!(status(404).to_string(), "HTTP 404 Not Found from http://x/");
    }

    #[test]
    fn headers_stay_on_their_origin() {
        let a = Url::parse("https://a.example/x.m3u8").unwrap();
        assert!(same_origin(
            &a,
            &Url::parse("https://a.example:443/y").unwrap()
        ));
        assert!(!same_origin(
            &a,
            &Url::parse("https://b.example/x").unwrap()
        ));
        assert!(!same_origin(&a, &Url::parse("http://a.example/x").unwrap()));
        assert!(!same_origin(
            &a,
            &Url::parse("https://a.example:8443/x").unwrap()
        ));
    }
}
