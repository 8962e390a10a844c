//! The SSRF guard (SPEC §Security): which addresses the server may dial on an operator's or a
//! stream's behalf.
//!
//! Input pulls, push targets and (later) HTTP hooks name hosts that someone else controls; a
//! name can resolve to the cloud's metadata service or to the server's own private network.
//! [`connect`](crate::connect) checks every resolved address against the guard before it
//! dials, so a name that resolves to several addresses cannot slip a blocked one through.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};

use ipnet::IpNet;

/// How strict the guard is (`security.ssrf_guard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SsrfMode {
    /// Nothing is blocked.
    Off,
    /// Link-local addresses (169.254.0.0/16, fe80::/10) and cloud metadata endpoints are
    /// blocked. The default: it closes the one door every cloud deployment has (instance
    /// credentials at 169.254.169.254) without breaking LAN cameras and encoders.
    #[default]
    Metadata,
    /// Also loopback, RFC 1918, CGNAT (100.64.0.0/10), unique-local (fc00::/7) and
    /// unspecified addresses: for servers that only ever pull from the public internet.
    Strict,
}

/// Which addresses may be dialed: a [`SsrfMode`] plus ranges exempt from it (`allow_cidrs`).
///
/// Clones share their rules: [`replace`](Self::replace) on one changes what every clone
/// lets through from its next check, so a configuration change reaches every input, push
/// and hook that holds the server's guard (the next dial; a connection already open is not
/// cut). The rules sit behind a short read lock taken once per dialed address.
#[derive(Debug, Clone, Default)]
pub struct SsrfGuard(Arc<RwLock<Rules>>);

/// A guard's rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Rules {
    /// How strict.
    mode: SsrfMode,
    /// Ranges dialed whatever the mode says.
    allow: Vec<IpNet>,
}

impl PartialEq for SsrfGuard {
    fn eq(&self, other: &Self) -> bool {
        *self.rules() == *other.rules()
    }
}

impl Eq for SsrfGuard {}

/// A mode name that is not `off`, `metadata` or `strict`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SSRF guard mode {0:?} (expected off, metadata or strict)")]
pub struct UnknownMode(String);

impl SsrfGuard {
    /// A guard in `mode` that lets `allow` through whatever the mode says.
    pub fn new(mode: SsrfMode, allow: Vec<IpNet>) -> Self {
        Self(Arc::new(RwLock::new(Rules { mode, allow })))
    }

    /// Gives this guard, and every clone of it, the rules of `from`.
    pub fn replace(&self, from: &Self) {
        let rules = from.rules().clone();
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = rules;
    }

    /// The mode.
    pub fn mode(&self) -> SsrfMode {
        self.rules().mode
    }

    fn rules(&self) -> std::sync::RwLockReadGuard<'_, Rules> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `ip` must not be dialed. IPv4-mapped IPv6 addresses are judged as the IPv4
    /// address they carry.
    pub fn blocks(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let rules = self.rules();
        if rules.allow.iter().any(|net| net.contains(&ip)) {
            return false;
        }
        match rules.mode {
            SsrfMode::Off => false,
            SsrfMode::Metadata => metadata(ip),
            SsrfMode::Strict => metadata(ip) || private(ip),
        }
    }
}

impl SsrfMode {
    /// The name used in configuration: `off`, `metadata`, `strict`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Metadata => "metadata",
            Self::Strict => "strict",
        }
    }
}

impl fmt::Display for SsrfMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SsrfMode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Self::Off),
            "metadata" => Ok(Self::Metadata),
            "strict" => Ok(Self::Strict),
            other => Err(UnknownMode(other.to_owned())),
        }
    }
}

/// Link-local addresses and the cloud metadata endpoints outside that range.
fn metadata(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local() || METADATA_V4.contains(&v4),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80 || METADATA_V6.contains(&v6),
    }
}

/// What `strict` blocks beyond `metadata`: the server's own and private networks.
fn private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (b & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xfe00) == 0xfc00
        }
    }
}

/// Cloud metadata endpoints outside the link-local range (Alibaba Cloud).
const METADATA_V4: &[Ipv4Addr] = &[Ipv4Addr::new(100, 100, 100, 200)];

/// Cloud metadata endpoints over IPv6 (AWS).
const METADATA_V6: &[Ipv6Addr] = &[Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)];

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(guard: &SsrfGuard, ip: &str) -> bool {
        guard.blocks(ip.parse().unwrap())
    }

    #[test]
    fn the_default_guard_blocks_metadata_addresses_only() {
        let guard = SsrfGuard::default();
        for blocked in [
            "169.254.169.254",
            "fe80::1",
            "::ffff:169.254.1.1",
            "100.100.100.200",
            "fd00:ec2::254",
        ] {
            assert!(blocks(&guard, blocked), "{blocked}");
        }
        for allowed in ["127.0.0.1", "10.0.0.1", "192.168.1.1", "::1", "8.8.8.8"] {
            assert!(!blocks(&guard, allowed), "{allowed}");
        }
    }

    #[test]
    fn strict_blocks_private_networks_and_allow_cidrs_exempt_ranges() {
        let strict = SsrfGuard::new(SsrfMode::Strict, Vec::new());
        for blocked in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd12::1",
            "::ffff:10.0.0.1",
            "169.254.169.254",
        ] {
            assert!(blocks(&strict, blocked), "{blocked}");
        }
        for allowed in ["8.8.8.8", "100.128.0.1", "2001:db8::1"] {
            assert!(!blocks(&strict, allowed), "{allowed}");
        }
        let lan = SsrfGuard::new(SsrfMode::Strict, vec!["10.0.0.0/8".parse().unwrap()]);
        assert!(!blocks(&lan, "10.9.9.9"));
        assert!(blocks(&lan, "192.168.1.1"));
        let off = SsrfGuard::new(SsrfMode::Off, Vec::new());
        // A replaced guard changes every clone at once (a configuration change).
        let shared = strict.clone();
        strict.replace(&off);
        assert!(!blocks(&shared, "10.1.2.3"));
        strict.replace(&SsrfGuard::new(SsrfMode::Strict, Vec::new()));
        assert!(blocks(&shared, "10.1.2.3"));
        assert!(!blocks(&off, "169.254.169.254"));
    }

    #[test]
    fn modes_parse_and_print() {
        for mode in [SsrfMode::Off, SsrfMode::Metadata, SsrfMode::Strict] {
            assert_eq!(mode.to_string().parse::<SsrfMode>(), Ok(mode));
        }
        assert!("lenient".parse::<SsrfMode>().is_err());
    }
}
