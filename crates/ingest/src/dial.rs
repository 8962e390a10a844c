//! Opening an RTMP(S) connection: resolve the host, check every address against the SSRF
//! guard, connect over TCP, then TLS for `rtmps://` (rustls, SNI = the host).
//!
//! The publish crate carries a twin of this module for push-out (ARCHITECTURE.md §3: L2 crates
//! do not depend on each other, and L0 crates open no sockets).

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A connected byte stream: plain TCP or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where an `rtmp://` or `rtmps://` URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The host as written (a name, an IPv4 address or an IPv6 address without brackets).
    pub(crate) host: String,
    /// The port: as written, else 1935 (`rtmp`) or 443 (`rtmps`, as FFmpeg).
    pub(crate) port: u16,
    /// Whether the scheme is `rtmps`.
    pub(crate) tls: bool,
}

/// Why a connection could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DialError {
    /// What happened, naming the host and port (never the URL's path or query).
    pub(crate) what: String,
    /// Whether retrying cannot help: DNS "no such host", TLS and certificate failures, an
    /// address blocked by the SSRF guard.
    pub(crate) fatal: bool,
}

impl Target {
    /// Parses `rtmp[s]://[userinfo@]host[:port]/...`; `None` without a host or with a bad port.
    pub(crate) fn parse(url: &str) -> Option<Self> {
        let url = url.trim();
        let (tls, rest) = if let Some(rest) = url.strip_prefix("rtmps://") {
            (true, rest)
        } else {
            (false, url.strip_prefix("rtmp://")?)
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return None;
        }
        let port = match port {
            Some(port) => port.parse().ok()?,
            None if tls => 443,
            None => 1935,
        };
        Some(Self {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for DialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)?;
        if self.fatal {
            f.write_str(" (not retriable)")?;
        }
        Ok(())
    }
}

/// The TLS settings for `rtmps://`: TLS 1.2 and 1.3 on the ring provider, certificates checked
/// against the Mozilla roots (webpki-roots), or not checked at all when `insecure`
/// (`net.insecure_tls`).
pub(crate) fn tls_config(insecure: bool) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions");
    let config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth()
    } else {
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Arc::new(config)
}

/// Resolves `target`, skips addresses the SSRF guard blocks, connects to the first address
/// that answers and, with `tls`, runs the TLS handshake. Returns the stream and the peer.
///
/// Bound the call with a timeout: resolving and connecting have none of their own.
pub(crate) async fn connect(
    target: &Target,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<(Box<dyn Io>, SocketAddr), DialError> {
    let addrs = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| {
            let lower = e.to_string().to_ascii_lowercase();
            DialError {
                fatal: NO_SUCH_HOST.iter().any(|m| lower.contains(m)),
                what: format!("{target}: cannot resolve: {e}"),
            }
        })?;
    let mut last = None;
    let mut blocked = None;
    let mut tcp = None;
    for addr in addrs {
        if ssrf_blocked(addr.ip()) {
            blocked = Some(addr.ip());
            continue;
        }
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                tcp = Some((stream, addr));
                break;
            }
            Err(e) => last = Some(format!("{target}: cannot connect to {addr}: {e}")),
        }
    }
    let Some((stream, peer)) = tcp else {
        return Err(match (last, blocked) {
            (Some(what), _) => DialError { what, fatal: false },
            (None, Some(ip)) => DialError {
                what: format!("{target}: blocked by ssrf_guard: {ip}"),
                fatal: true,
            },
            (None, None) => DialError {
                what: format!("{target}: the name resolves to no address"),
                fatal: true,
            },
        });
    };
    // Media goes out in whole messages already; do not hold small control messages back.
    let _ = stream.set_nodelay(true);
    let Some(config) = tls else {
        return Ok((Box::new(stream), peer));
    };
    let name = ServerName::try_from(target.host.clone()).map_err(|e| DialError {
        what: format!("{target}: not a valid TLS server name: {e}"),
        fatal: true,
    })?;
    let stream = TlsConnector::from(Arc::clone(config))
        .connect(name, stream)
        .await
        .map_err(|e| DialError {
            what: format!("{target}: TLS handshake failed: {e}"),
            fatal: true,
        })?;
    Ok((Box::new(stream), peer))
}

/// 32 random bytes for the RTMP handshake (not a secret: it only fills C1), from the standard
/// library's randomly keyed hasher, so no RNG dependency is needed.
pub(crate) fn handshake_random() -> [u8; 32] {
    let mut out = [0u8; 32];
    let state = std::collections::hash_map::RandomState::new();
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut hasher = state.build_hasher();
        hasher.write_usize(i);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    out
}

/// Whether SPEC §Security's SSRF guard, in its default `metadata` mode, refuses `ip`:
/// link-local addresses (169.254.0.0/16, fe80::/10) and cloud metadata endpoints.
///
/// The `off` and `strict` modes and `allow_cidrs` need the server configuration, which does
/// not reach the workers yet; until it does, the default applies.
fn ssrf_blocked(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => v4.is_link_local() || METADATA_V4.contains(&v4),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80 || METADATA_V6.contains(&v6),
    }
}

/// Accepts any certificate (`net.insecure_tls`), while still checking that the handshake
/// signatures are made with the certificate's key.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Lower-case fragments of resolver errors that mean the name does not exist.
const NO_SUCH_HOST: &[&str] = &[
    "name or service not known",
    "nodename nor servname",
    "no such host",
    "no address associated",
];

/// Cloud metadata endpoints outside the link-local range (Alibaba Cloud).
const METADATA_V4: &[Ipv4Addr] = &[Ipv4Addr::new(100, 100, 100, 200)];

/// Cloud metadata endpoints over IPv6 (AWS).
const METADATA_V6: &[Ipv6Addr] = &[Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_default_ports() {
        let t = Target::parse("rtmp://cdn.example.org/live/key").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.tls),
            ("cdn.example.org", 1935, false)
        );
        let t = Target::parse("rtmps://user:pw@cdn.example.org/app/k?x=1").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.tls),
            ("cdn.example.org", 443, true)
        );
        let t = Target::parse("rtmp://[::1]:1936/live/k").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 1936));
        assert_eq!(t.to_string(), "[::1]:1936");
        assert_eq!(
            Target::parse("rtmp://127.0.0.1:19350/live/x")
                .unwrap()
                .to_string(),
            "127.0.0.1:19350"
        );
        assert!(Target::parse("rtmp:///live/x").is_none());
        assert!(Target::parse("rtmp://host:99999/live/x").is_none());
        assert!(Target::parse("http://host/live/x").is_none());
    }

    #[test]
    fn the_default_ssrf_guard_blocks_metadata_addresses_only() {
        for blocked in [
            "169.254.169.254",
            "fe80::1",
            "::ffff:169.254.1.1",
            "100.100.100.200",
        ] {
            assert!(ssrf_blocked(blocked.parse().unwrap()), "{blocked}");
        }
        for allowed in ["127.0.0.1", "10.0.0.1", "192.168.1.1", "::1", "8.8.8.8"] {
            assert!(!ssrf_blocked(allowed.parse().unwrap()), "{allowed}");
        }
    }

    #[test]
    fn handshake_randoms_differ() {
        assert_ne!(handshake_random(), handshake_random());
    }
}
