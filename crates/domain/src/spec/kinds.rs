//! The per-kind option parsers behind [`parse_input`](super::parse_input): each turns a
//! classified URL plus the input's options into its [`Source`](super::Source) variant, or the
//! field errors that say why not.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::options::{Options, merge_params, raw_query};
use super::source::{
    DEFAULT_PKT_SIZE, FILE_EXTENSIONS, FileFormat, FileSource, HttpSource, MAX_PKT_SIZE,
    MulticastInterface, RtmpSource, RtmpUrl, RtspSource, RtspTransport, SrtSource, UdpSource,
};
use crate::stream::Input;
use crate::validate::{ErrorCode, FieldError};

/// A UDP input: host and port from the URL, the rest from its options.
pub(super) fn udp(url: &Url, options: &Options<'_>) -> Result<UdpSource, Vec<FieldError>> {
    let host = host(url);
    // The classifier refuses a UDP URL without a port.
    let port = url.port().unwrap_or(0);
    let group = host.parse::<IpAddr>().ok().filter(|ip| ip.is_multicast());
    let mut errors = Vec::new();
    let interface = match (options.get("localaddr"), options.get("iface")) {
        (Some(addr), _) => match addr.parse() {
            Ok(ip) => Some(MulticastInterface::Addr(ip)),
            Err(_) => {
                errors.push(options.error("localaddr", format!("{addr:?} is not an IP address")));
                None
            }
        },
        (None, Some(name)) => match name.parse() {
            Ok(ip) => Some(MulticastInterface::Addr(ip)),
            Err(_) if valid_ifname(name) => Some(MulticastInterface::Name(name.to_owned())),
            Err(_) => {
                errors.push(options.error(
                    "iface",
                    format!("{name:?} is neither an IP address nor an interface name"),
                ));
                None
            }
        },
        (None, None) => None,
    };
    let source = match options.get("source") {
        None => None,
        Some(s) => match s.parse::<Ipv4Addr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                errors.push(options.error("source", format!("{s:?} is not an IPv4 address")));
                None
            }
        },
    };
    if source.is_some() && !matches!(group, Some(IpAddr::V4(_))) {
        errors.push(options.error(
            "source",
            "source-specific multicast needs an IPv4 multicast group as host",
        ));
    }
    if source.is_some() && matches!(interface, Some(MulticastInterface::Name(_))) {
        errors.push(options.error(
            "source",
            "a source-specific join names its interface by address: use localaddr=<ip>",
        ));
    }
    let rtp = options.bool("rtp", true).unwrap_or_else(|e| {
        errors.push(e);
        true
    });
    let pkt_size = match options.get("pkt_size") {
        None => DEFAULT_PKT_SIZE,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_PKT_SIZE).contains(&n) => n,
            _ => {
                errors.push(options.error(
                    "pkt_size",
                    format!("{v:?} is not a size from 1 to {MAX_PKT_SIZE}"),
                ));
                DEFAULT_PKT_SIZE
            }
        },
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(UdpSource {
        host,
        port,
        group,
        interface,
        source,
        rtp,
        pkt_size,
    })
}

/// An HLS or HTTP-TS input: `params` merged into the URL, headers checked.
pub(super) fn http(prefix: &str, url: Url, input: &Input) -> Result<HttpSource, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut headers = Vec::with_capacity(input.headers.len());
    for (name, value) in &input.headers {
        let path = || format!("{prefix}.headers.{name}");
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            errors.push(FieldError::new(
                path(),
                ErrorCode::InvalidField,
                format!("{name:?} is not an HTTP header name"),
            ));
        } else if !value.chars().all(|c| c == '\t' || (' '..='~').contains(&c)) {
            errors.push(FieldError::new(
                path(),
                ErrorCode::InvalidField,
                "a header value may hold only visible ASCII characters, spaces and tabs",
            ));
        } else {
            headers.push((name.clone(), value.clone()));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(HttpSource {
        url: merge_params(url, &input.params),
        headers,
        timeout: timeout(input),
        insecure_tls: input.net.insecure_tls,
    })
}

/// An RTSP pull: `rtsp[s]://[user[:password]@]host[:port]/path[?query]`, `params` merged
/// into the query; `transport` (`tcp`, the default, or `udp`; `rtsps://` is TCP only) is ours
/// and leaves the URL the camera sees, and so do the credentials (they go in the
/// `Authorization` header).
pub(super) fn rtsp(
    mut url: Url,
    options: &Options<'_>,
    input: &Input,
) -> Result<RtspSource, Vec<FieldError>> {
    let prefix = options.prefix();
    if host(&url).is_empty() {
        return Err(vec![FieldError::new(
            format!("{prefix}.url"),
            ErrorCode::InvalidInputUrl,
            "expected rtsp[s]://[user:password@]host[:port]/path",
        )]);
    }
    let tls = url.scheme().eq_ignore_ascii_case("rtsps");
    let transport = match options
        .get("transport")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("tcp") => RtspTransport::Tcp,
        Some("udp") if tls => {
            return Err(vec![options.error(
                "transport",
                "rtsps:// carries media inside its TLS connection (TCP-interleaved); RTP over \
                 UDP would need SRTP, which is not supported: use transport=tcp",
            )]);
        }
        Some("udp") => RtspTransport::Udp,
        Some(other) => {
            return Err(vec![
                options.error("transport", format!("{other:?} is not tcp or udp")),
            ]);
        }
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let credentials = (!url.username().is_empty() || url.password().is_some())
        .then(|| (decode(url.username()), decode(url.password().unwrap_or(""))));
    // Url cannot fail to clear the credentials of a URL with a host.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let mut url = merge_params(url, &input.params);
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "transport")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok(RtspSource {
        url,
        credentials,
        transport,
        tls,
        timeout: timeout(input),
        insecure_tls: input.net.insecure_tls,
    })
}

/// An SRT pull (caller): host and port from the URL, the SRT options from its query and
/// `params`, each checked so the worker never meets one the transport would refuse (or, for
/// a passphrase, panic on).
pub(super) fn srt(
    prefix: &str,
    url: &Url,
    options: &Options<'_>,
    input: &Input,
) -> Result<SrtSource, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(port) = url.port() else {
        return Err(vec![FieldError::new(
            format!("{prefix}.url"),
            ErrorCode::InvalidInputUrl,
            "an SRT pull needs host:port (srt://host:port?streamid=…)",
        )]);
    };
    let streamid = options.get("streamid").map(str::to_owned);
    if let Some(id) = &streamid
        && (id.len() > 512 || id.chars().any(char::is_control))
    {
        errors.push(options.error("streamid", "at most 512 bytes, no control characters"));
    }
    let latency = match options.get("latency") {
        None => Duration::from_millis(120),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(ms) if ms <= 10_000 => Duration::from_millis(ms),
            _ => {
                errors.push(options.error(
                    "latency",
                    format!("{v:?} is not milliseconds from 0 to 10000"),
                ));
                Duration::from_millis(120)
            }
        },
    };
    let passphrase = options.get("passphrase").map(str::to_owned);
    if let Some(p) = &passphrase {
        let len = p.chars().count();
        if !(10..=79).contains(&len) || p.len() > 79 {
            errors.push(options.error(
                "passphrase",
                format!("must be 10 to 79 characters (SRT's range), got {len}"),
            ));
        }
    }
    let pbkeylen = match options.get("pbkeylen") {
        None => None,
        Some(v) => match v.trim().parse::<u16>() {
            Ok(n @ (16 | 24 | 32)) if passphrase.is_some() => Some(n),
            Ok(16 | 24 | 32) => {
                errors.push(options.error("pbkeylen", "needs a passphrase"));
                None
            }
            _ => {
                errors.push(options.error("pbkeylen", format!("{v:?} is not 16, 24 or 32")));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(SrtSource {
        host: host(url),
        port,
        streamid,
        latency,
        passphrase,
        pbkeylen,
        timeout: timeout(input),
    })
}

/// An RTMP(S) pull.
pub(super) fn rtmp(prefix: &str, input: &Input) -> Result<RtmpSource, FieldError> {
    let target = rtmp_url(&input.url)
        .map_err(|why| FieldError::new(format!("{prefix}.url"), ErrorCode::InvalidInputUrl, why))?;
    Ok(RtmpSource {
        target,
        timeout: timeout(input),
        insecure_tls: input.net.insecure_tls,
    })
}

/// `rtmp[s]://[user@]host[:port]/<app>/<stream name>`, split as the RTMP client session
/// splits it (the stream name keeps its query).
pub(crate) fn rtmp_url(raw: &str) -> Result<RtmpUrl, String> {
    let raw = raw.trim();
    let expected = || "expected rtmp[s]://host[:port]/<app>/<stream name>".to_owned();
    let url = Url::parse(raw).map_err(|e| format!("invalid URL: {e}"))?;
    let tls = match url.scheme() {
        "rtmps" => true,
        "rtmp" => false,
        _ => return Err(expected()),
    };
    let host = host(&url);
    if host.is_empty() {
        return Err(expected());
    }
    let path = raw
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map_or("", |(_, path)| path);
    let Some((app, name)) = path.split_once('/') else {
        return Err(expected());
    };
    if app.is_empty() || app.contains(['?', '#']) || name.is_empty() || name.starts_with('?') {
        return Err(expected());
    }
    Ok(RtmpUrl {
        url: raw.to_owned(),
        tls,
        host,
        port: url.port().unwrap_or(if tls { 443 } else { 1935 }),
        app: app.to_owned(),
        name: name.to_owned(),
    })
}

/// A file at an absolute path: its container from the extension, `loop` from the options
/// (the raw URL's query with `params` over it).
pub(super) fn file(
    prefix: &str,
    path: String,
    input: &Input,
) -> Result<FileSource, Vec<FieldError>> {
    let path = PathBuf::from(path);
    let options = Options::new(prefix, raw_query(&input.url), &input.params);
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let format = FileFormat::from_extension(extension);
    let looping = options.bool("loop", true);
    let mut errors = Vec::new();
    if format.is_none() {
        errors.push(FieldError::new(
            format!("{prefix}.url"),
            ErrorCode::InvalidInputUrl,
            format!(
                "{}: unsupported file type {:?} ({FILE_EXTENSIONS})",
                path.display(),
                extension.to_ascii_lowercase()
            ),
        ));
    }
    if let Err(e) = &looping {
        errors.push(e.clone());
    }
    match (format, looping) {
        (Some(format), Ok(looping)) => Ok(FileSource {
            path,
            format,
            looping,
            root: None,
        }),
        _ => Err(errors),
    }
}

/// The URL's host, IPv6 without brackets; empty when it has none.
fn host(url: &Url) -> String {
    url.host_str()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

/// `net.timeout_sec`, `None` for 0 (the kind's default).
fn timeout(input: &Input) -> Option<Duration> {
    match input.net.timeout_sec {
        0 => None,
        secs => Some(Duration::from_secs(u64::from(secs))),
    }
}

/// An interface name as Linux allows it.
fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
