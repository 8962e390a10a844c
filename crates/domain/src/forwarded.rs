//! The client behind a reverse proxy (SPEC §Security "Proxies"): `X-Forwarded-For` and
//! `X-Real-IP` are believed only from a peer in `security.trusted_proxies`, so a viewer cannot
//! choose the address its session, its kick ban or its IP-bound play signature is keyed by.
//!
//! `X-Forwarded-For` is read from the right: each proxy appends the address it received from,
//! so the rightmost entry that is not a trusted proxy is the client; everything left of it was
//! written by the client and is not believed. Pure: the caller brings the headers.

use std::net::IpAddr;

use ipnet::IpNet;

/// The client address of a request from `peer` carrying these headers.
pub fn client(
    peer: IpAddr,
    trusted: &[IpNet],
    forwarded_for: Option<&str>,
    real_ip: Option<&str>,
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(&ip.to_canonical()));
    if !is_trusted(&peer) {
        return peer;
    }
    if let Some(list) = forwarded_for.filter(|l| !l.trim().is_empty()) {
        let mut client = peer;
        for hop in list.rsplit(',') {
            let Some(ip) = parse(hop) else {
                // A hop that is no address: nothing left of it can be placed.
                return client;
            };
            client = ip;
            if !is_trusted(&ip) {
                return ip;
            }
        }
        return client;
    }
    real_ip.and_then(parse).unwrap_or(peer)
}

/// An address as proxies write it: `192.0.2.7`, `2001:db8::1`, `[2001:db8::1]`, optionally
/// with a port (`192.0.2.7:4711`, `[2001:db8::1]:4711`).
fn parse(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| text.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let trusted = nets(&["10.0.0.0/8"]);
        let peer = ip("198.51.100.1");
        assert_eq!(
            client(peer, &trusted, Some("203.0.113.9"), Some("203.0.113.8")),
            peer
        );
        assert_eq!(client(peer, &[], Some("203.0.113.9"), None), peer);
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "127.0.0.1/32"]);
        let peer = ip("127.0.0.1");
        assert_eq!(
            client(peer, &trusted, Some("1.1.1.1, 203.0.113.9, 10.0.0.2"), None),
            ip("203.0.113.9"),
            "the client cannot put itself further left"
        );
        assert_eq!(
            client(peer, &trusted, Some("10.0.0.3, 10.0.0.2"), None),
            ip("10.0.0.3"),
            "every hop trusted: the leftmost"
        );
        assert_eq!(
            client(peer, &trusted, Some("[2001:db8::1]:4711"), None),
            ip("2001:db8::1")
        );
        assert_eq!(
            client(peer, &trusted, Some("203.0.113.9:80, 10.0.0.2"), None),
            ip("203.0.113.9")
        );
        assert_eq!(
            client(peer, &trusted, Some("unknown, 10.0.0.2"), None),
            ip("10.0.0.2"),
            "a hop that is no address stops the walk"
        );
        let mapped = ip("::ffff:127.0.0.1");
        assert_eq!(
            client(mapped, &trusted, Some("203.0.113.9"), None),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn x_real_ip_is_the_fallback() {
        let trusted = nets(&["127.0.0.1/32"]);
        let peer = ip("127.0.0.1");
        assert_eq!(
            client(peer, &trusted, None, Some("203.0.113.8")),
            ip("203.0.113.8")
        );
        assert_eq!(
            client(peer, &trusted, Some(" "), Some("203.0.113.8")),
            ip("203.0.113.8")
        );
        assert_eq!(client(peer, &trusted, None, Some("garbage")), peer);
        assert_eq!(client(peer, &trusted, None, None), peer);
    }

    proptest::proptest! {
        #[test]
        fn any_header_gives_an_address(xff in ".{0,100}", real in ".{0,40}") {
            let trusted = nets(&["127.0.0.1/32"]);
            let _ = client(ip("127.0.0.1"), &trusted, Some(&xff), Some(&real));
        }
    }
}
