//! Dialing out: resolve a host, check every address against the [`SsrfGuard`], connect over
//! TCP, then TLS when asked (rustls on ring, SNI = the host, certificates checked against the
//! operating system's roots).

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::SsrfGuard;

/// A connected byte stream: plain TCP or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where to dial: a host (a name, an IPv4 address, or an IPv6 address without brackets) and a
/// port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The host as written.
    pub host: String,
    /// The port.
    pub port: u16,
}

/// Whether and how to run TLS over the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tls {
    /// Plain TCP.
    Off,
    /// TLS 1.2 or 1.3, certificates checked against the operating system's roots.
    Verify,
    /// TLS without checking the certificate (`net.insecure_tls`): the peer can be anyone.
    /// Handshake signatures are still checked against the certificate's key.
    DangerAcceptAnyCertificate,
}

/// How to dial one target.
#[derive(Debug, Clone)]
pub struct Dial {
    /// TLS or not.
    pub tls: Tls,
    /// Resolving, connecting and the TLS handshake together. Callers pass their protocol's
    /// connect budget (`net.timeout_sec`, a push's `timeout_sec`).
    pub timeout: Duration,
    /// Which addresses may be dialed.
    pub guard: SsrfGuard,
}

/// Why a connection could not be opened. Messages name the host and port, never a URL's path
/// or query (which may carry keys).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// The name did not resolve.
    #[error("{target}: cannot resolve: {source}")]
    Resolve {
        /// Where.
        target: Target,
        /// The resolver's error.
        source: io::Error,
        /// Whether it says the name does not exist (retrying cannot help).
        no_such_host: bool,
    },
    /// The name resolved to nothing.
    #[error("{target}: the name resolves to no address")]
    NoAddress {
        /// Where.
        target: Target,
    },
    /// Every address the name resolved to (or the address the host names) is blocked by the
    /// SSRF guard.
    #[error("{target}: blocked by ssrf_guard: {ip}")]
    Blocked {
        /// Where.
        target: Target,
        /// The (last) blocked address.
        ip: IpAddr,
    },
    /// No address accepted the connection.
    #[error("{target}: cannot connect to {addr}: {source}")]
    Connect {
        /// Where.
        target: Target,
        /// The last address tried.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// Resolving, connecting and the TLS handshake took longer than the budget.
    #[error("{target}: no connection within {after:?}")]
    Timeout {
        /// Where.
        target: Target,
        /// The budget.
        after: Duration,
    },
    /// The host cannot be a TLS server name.
    #[error("{target}: not a valid TLS server name")]
    ServerName {
        /// Where.
        target: Target,
    },
    /// The TLS handshake failed (certificate, protocol version, ...).
    #[error("{target}: TLS handshake failed: {source}")]
    Tls {
        /// Where.
        target: Target,
        /// Why.
        source: io::Error,
    },
}

impl Target {
    /// A target.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
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

impl DialError {
    /// Whether retrying cannot help: the name does not exist, the guard blocks it, or TLS
    /// failed (SPEC §Ingest "non-retriable errors").
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::Resolve { no_such_host, .. } => *no_such_host,
            Self::NoAddress { .. }
            | Self::Blocked { .. }
            | Self::ServerName { .. }
            | Self::Tls { .. } => true,
            Self::Connect { .. } | Self::Timeout { .. } => false,
        }
    }
}

/// Resolves `target`, skips the addresses `dial.guard` blocks, connects to the first address
/// that answers and, with TLS, runs the handshake; all within `dial.timeout`. Returns the
/// stream (Nagle's algorithm off: callers write whole messages) and the peer's address.
pub async fn connect(target: &Target, dial: &Dial) -> Result<(Box<dyn Io>, SocketAddr), DialError> {
    tokio::time::timeout(dial.timeout, open(target, dial))
        .await
        .unwrap_or_else(|_| {
            Err(DialError::Timeout {
                target: target.clone(),
                after: dial.timeout,
            })
        })
}

/// The TLS settings for `tls` (`None` for [`Tls::Off`]): TLS 1.2 and 1.3 on the ring provider.
/// Built once per process and shared.
pub fn tls_config(tls: Tls) -> Option<Arc<rustls::ClientConfig>> {
    static VERIFY: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    static ANY: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    match tls {
        Tls::Off => None,
        Tls::Verify => Some(Arc::clone(VERIFY.get_or_init(|| build(false)))),
        Tls::DangerAcceptAnyCertificate => Some(Arc::clone(ANY.get_or_init(|| build(true)))),
    }
}

/// Resolves `target` and keeps the addresses `guard` lets through, in the resolver's order
/// (IP literals resolve to themselves). Every address is checked, so a name that resolves to
/// an allowed and a blocked address is dialed at the allowed one only; a name that resolves
/// to blocked addresses only is [`DialError::Blocked`].
///
/// [`connect`] uses it; so do clients that dial through a library of their own (the HTTP
/// pulls give it to reqwest as their resolver).
pub async fn resolve(target: &Target, guard: &SsrfGuard) -> Result<Vec<SocketAddr>, DialError> {
    let resolved = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|source| {
            let lower = source.to_string().to_ascii_lowercase();
            DialError::Resolve {
                target: target.clone(),
                no_such_host: NO_SUCH_HOST.iter().any(|m| lower.contains(m)),
                source,
            }
        })?;
    let mut blocked = None;
    let allowed: Vec<SocketAddr> = resolved
        .filter(|addr| {
            let refused = guard.blocks(addr.ip());
            if refused {
                blocked = Some(addr.ip());
            }
            !refused
        })
        .collect();
    match (allowed.is_empty(), blocked) {
        (false, _) => Ok(allowed),
        (true, Some(ip)) => Err(DialError::Blocked {
            target: target.clone(),
            ip,
        }),
        (true, None) => Err(DialError::NoAddress {
            target: target.clone(),
        }),
    }
}

async fn open(target: &Target, dial: &Dial) -> Result<(Box<dyn Io>, SocketAddr), DialError> {
    let mut failed = None;
    let mut tcp = None;
    for addr in resolve(target, &dial.guard).await? {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                tcp = Some((stream, addr));
                break;
            }
            Err(source) => failed = Some((addr, source)),
        }
    }
    let Some((stream, peer)) = tcp else {
        let target = target.clone();
        return Err(match failed {
            Some((addr, source)) => DialError::Connect {
                target,
                addr,
                source,
            },
            None => DialError::NoAddress { target },
        });
    };
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, "TCP_NODELAY: {e}");
    }
    let Some(config) = tls_config(dial.tls) else {
        return Ok((Box::new(stream), peer));
    };
    let name = ServerName::try_from(target.host.clone()).map_err(|_| DialError::ServerName {
        target: target.clone(),
    })?;
    let stream = TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|source| DialError::Tls {
            target: target.clone(),
            source,
        })?;
    Ok((Box::new(stream), peer))
}

/// 32 random bytes for a protocol handshake (RTMP's C1; not a secret), from the standard
/// library's randomly keyed hasher, so no RNG dependency is needed.
pub fn handshake_random() -> [u8; 32] {
    let mut out = [0u8; 32];
    let state = std::collections::hash_map::RandomState::new();
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut hasher = state.build_hasher();
        hasher.write_usize(i);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    out
}

fn build(accept_any: bool) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions");
    let config = if accept_any {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(system_roots())
            .with_no_client_auth()
    };
    Arc::new(config)
}

/// The operating system's trust store (what curl and browsers on the host trust), or the
/// Mozilla roots compiled in when it is empty or unreadable (a minimal container without
/// `ca-certificates`), said once in the log.
fn system_roots() -> rustls::RootCertStore {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        let why = loaded
            .errors
            .first()
            .map_or_else(|| "it is empty".to_owned(), ToString::to_string);
        tracing::warn!(
            "no usable certificate in the system trust store ({why}); \
             using the Mozilla roots built into this binary"
        );
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

/// Accepts any certificate ([`Tls::DangerAcceptAnyCertificate`]), while still checking that
/// the handshake signatures are made with the certificate's key.
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
