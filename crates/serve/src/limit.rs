//! The per-IP cap on connections that have not yet said what they want (SPEC §Security
//! "Connection caps": ≤ 16 per IP still in handshake, loopback exempt).
//!
//! An IPv6 peer is counted by its /64: one host is routinely given a whole /64, so counting
//! single addresses would give it 2^64 times the cap.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Counts, per peer IP, the connections still in their handshake.
///
/// The map holds only IPs with at least one such connection, so it is bounded by the
/// listener's connection cap. Its lock is held for one lookup, never across an `.await`.
#[derive(Debug)]
pub(crate) struct PendingLimiter {
    /// The most handshakes one (non-loopback) IP may have in flight.
    max: usize,
    /// Handshakes in flight, per IP.
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in the count; frees it when dropped (intent stated, or the
/// connection ended). Loopback peers hold a slot that counts nothing.
#[derive(Debug)]
pub(crate) struct PendingSlot {
    /// The limiter and the IP counted; `None` for an exempt (loopback) peer.
    counted: Option<(Arc<PendingLimiter>, IpAddr)>,
}

impl PendingLimiter {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a slot for a new connection from `ip`, or `None` when `ip` is at the cap.
    pub(crate) fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<PendingSlot> {
        if ip.is_loopback() || ip.to_canonical().is_loopback() {
            return Some(PendingSlot { counted: None });
        }
        let ip = counted_as(ip);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(PendingSlot {
            counted: Some((Arc::clone(self), ip)),
        })
    }

    #[cfg(test)]
    fn count(&self, ip: IpAddr) -> usize {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(&counted_as(ip)).copied().unwrap_or(0)
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let Some((limiter, ip)) = self.counted.take() else {
            return;
        };
        let mut counts = limiter
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&ip);
            }
        }
    }
}

/// The key `ip` is counted under: an IPv4 address (mapped ones as IPv4) as itself, an IPv6
/// address as its /64.
fn counted_as(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_at_the_cap_is_refused_until_a_slot_frees() {
        let limiter = Arc::new(PendingLimiter::new(2));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let a = limiter.enter(ip).unwrap();
        let _b = limiter.enter(ip).unwrap();
        assert!(limiter.enter(ip).is_none());
        let _c = limiter.enter(other).unwrap();
        drop(a);
        assert_eq!(limiter.count(ip), 1);
        let _d = limiter.enter(ip).unwrap();
        assert!(limiter.enter(ip).is_none());
    }

    #[test]
    fn loopback_is_exempt_and_the_map_empties() {
        let limiter = Arc::new(PendingLimiter::new(1));
        let slots: Vec<_> = ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"]
            .iter()
            .flat_map(|ip| {
                let ip: IpAddr = ip.parse().unwrap();
                [limiter.enter(ip).unwrap(), limiter.enter(ip).unwrap()]
            })
            .collect();
        assert_eq!(slots.len(), 8);
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let slot = limiter.enter(ip).unwrap();
        drop(slot);
        assert!(limiter.counts.lock().unwrap().is_empty());
    }

    #[test]
    fn an_ipv6_slash_64_counts_as_one_peer() {
        let limiter = Arc::new(PendingLimiter::new(2));
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let next_net: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _a = limiter.enter(a).unwrap();
        let _b = limiter.enter(b).unwrap();
        assert!(limiter.enter("2001:db8:1:2::77".parse().unwrap()).is_none());
        assert_eq!(limiter.count(a), 2);
        let _c = limiter.enter(next_net).unwrap();
        // A mapped IPv4 address is its IPv4 address.
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let _d = limiter.enter("::ffff:192.0.2.7".parse().unwrap()).unwrap();
        assert_eq!(limiter.count(v4), 1);
    }
}
