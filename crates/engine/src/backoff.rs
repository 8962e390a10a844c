//! Per-address backoff after failed publishes (SPEC §Security "Publish authentication"): a
//! stream key cannot be guessed at network speed.
//!
//! An address (IPv4, or an IPv6 /64) gets [`FREE_FAILURES`] wrong or missing keys for free.
//! Each failure after that blocks it for a time that doubles from 1 s up to [`MAX_BLOCK`];
//! while blocked, every publish from it is refused before any key is compared, the right key
//! included. A publish that succeeds clears the address's record, and a record with no
//! failure for [`FORGET_AFTER`] is dropped. At most [`MAX_ADDRESSES`] records are kept: when
//! full, the one idle longest gives way, so the table is bounded whatever the attacker's
//! address space.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::lock;

/// Failed publishes by address, and the refusals counted since start.
#[derive(Debug, Default)]
pub(crate) struct PublishBackoff {
    /// Addresses with recent failures.
    failures: Mutex<HashMap<IpAddr, Failures>>,
    /// Publishes refused for a wrong or missing key.
    refused_auth: AtomicU64,
    /// Publishes refused because their address was blocked.
    refused_blocked: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    /// Consecutive failed publishes.
    count: u32,
    /// The last one.
    last: Instant,
    /// Publishes are refused until then.
    blocked_until: Option<Instant>,
}

/// An address still blocked: how long it has to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Blocked {
    /// Time left.
    pub(crate) remaining: Duration,
    /// Refusals counted so far, of both kinds.
    pub(crate) refused: u64,
}

impl PublishBackoff {
    /// `Err` while `ip` is blocked (the refusal is counted).
    pub(crate) fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Blocked> {
        let Some(until) = self.blocked_until(ip, now) else {
            return Ok(());
        };
        self.refused_blocked.fetch_add(1, Ordering::Relaxed);
        Err(Blocked {
            remaining: until - now,
            refused: self.refused(),
        })
    }

    /// Whether `ip` is blocked at `now`, without counting anything (a refusal is counted
    /// once, by [`check`](Self::check)).
    pub(crate) fn is_blocked(&self, ip: IpAddr, now: Instant) -> bool {
        self.blocked_until(ip, now).is_some()
    }

    /// When `ip`'s block ends, if it is blocked at `now`.
    fn blocked_until(&self, ip: IpAddr, now: Instant) -> Option<Instant> {
        lock(&self.failures)
            .get(&key(ip))
            .and_then(|f| f.blocked_until)
            .filter(|until| now < *until)
    }

    /// Records a publish refused for its key; returns how long `ip` is now blocked, if it is.
    pub(crate) fn fail(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        self.refused_auth.fetch_add(1, Ordering::Relaxed);
        let mut failures = lock(&self.failures);
        failures.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
        let key = key(ip);
        if !failures.contains_key(&key) && failures.len() >= MAX_ADDRESSES {
            let oldest = failures.iter().min_by_key(|(_, f)| f.last).map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                failures.remove(&oldest);
            }
        }
        let entry = failures.entry(key).or_insert(Failures {
            count: 0,
            last: now,
            blocked_until: None,
        });
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        let over = entry.count.checked_sub(FREE_FAILURES + 1)?.min(16);
        let block = (Duration::from_secs(1) * 2u32.pow(over)).min(MAX_BLOCK);
        entry.blocked_until = Some(now + block);
        Some(block)
    }

    /// A publish from `ip` succeeded: its failures are forgiven.
    pub(crate) fn succeed(&self, ip: IpAddr) {
        lock(&self.failures).remove(&key(ip));
    }

    /// Publishes refused since start, for a key or a block.
    pub(crate) fn refused(&self) -> u64 {
        self.refused_auth.load(Ordering::Relaxed) + self.refused_blocked.load(Ordering::Relaxed)
    }
}

/// The address a record is kept for: IPv4 as is, IPv6 by its /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

/// Wrong keys an address may send before it is blocked: enough for a typo or two.
pub(crate) const FREE_FAILURES: u32 = 3;
/// The longest block.
pub(crate) const MAX_BLOCK: Duration = Duration::from_secs(300);
/// A record with no failure for this long is dropped.
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// Records kept at most.
const MAX_ADDRESSES: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn failures_past_the_free_ones_block_for_a_doubling_time() {
        let backoff = PublishBackoff::default();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let now = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(backoff.fail(ip, now), None);
            assert!(backoff.check(ip, now).is_ok());
        }
        assert_eq!(backoff.fail(ip, now), Some(Duration::from_secs(1)));
        let blocked = backoff.check(ip, now).unwrap_err();
        assert_eq!(blocked.remaining, Duration::from_secs(1));
        assert_eq!(blocked.refused, u64::from(FREE_FAILURES) + 2);
        let later = now + Duration::from_secs(1);
        assert!(backoff.check(ip, later).is_ok());
        assert_eq!(backoff.fail(ip, later), Some(Duration::from_secs(2)));
        for _ in 0..20 {
            backoff.fail(ip, later);
        }
        assert_eq!(backoff.fail(ip, later), Some(MAX_BLOCK));
        // Another address is not affected.
        assert!(backoff.check("192.0.2.10".parse().unwrap(), later).is_ok());
        backoff.succeed(ip);
        assert!(backoff.check(ip, later).is_ok());
    }

    #[test]
    fn ipv6_addresses_share_their_64() {
        assert_eq!(
            key("2001:db8::1".parse().unwrap()),
            key("2001:db8::ffff:2".parse().unwrap())
        );
        assert_eq!(
            key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_table_is_bounded_and_forgets() {
        let backoff = PublishBackoff::default();
        let now = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            backoff.fail(IpAddr::V4(i.into()), now);
        }
        assert_eq!(lock(&backoff.failures).len(), MAX_ADDRESSES);
        backoff.fail("192.0.2.1".parse().unwrap(), now + FORGET_AFTER);
        assert_eq!(lock(&backoff.failures).len(), 1);
    }
}
