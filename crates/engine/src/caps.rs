//! Play connection caps (SPEC §Publisher "Connection caps"): 256 plays per stream and 4096 in
//! total, across RTMP, RTSP, SRT and HTTP-TS. A play takes a [`PlaySeat`] before any
//! per-connection state exists and gives it back when dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tributary_domain::StreamCode;

use crate::lock;

/// Plays one stream may have at once.
pub(crate) const PER_STREAM: usize = 256;
/// Plays the process may have at once.
pub(crate) const TOTAL: usize = 4096;

/// The counts behind the caps. Cheap to clone; clones share the counts.
#[derive(Debug, Clone)]
pub(crate) struct PlayCaps {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    per_stream: usize,
    total: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_stream: HashMap<StreamCode, usize>,
    /// Plays by stream and protocol (`tributary_playback_connections`).
    by_proto: HashMap<(StreamCode, &'static str), usize>,
}

/// One admitted play; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct PlaySeat {
    inner: Arc<Inner>,
    code: StreamCode,
    proto: &'static str,
}

/// Which cap refused a play.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CapReached {
    #[error("stream {code} already has {limit} plays (the per-stream cap)")]
    Stream { code: StreamCode, limit: usize },
    #[error("the server already has {limit} plays (the total cap)")]
    Total { limit: usize },
}

impl PlayCaps {
    /// Caps of `per_stream` plays per stream and `total` in all.
    pub(crate) fn new(per_stream: usize, total: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                per_stream,
                total,
                counts: Mutex::new(Counts::default()),
            }),
        }
    }

    /// A seat for one more play of `code` over `proto` (`rtmp`, `rtsp`, `srt`, `mpegts`),
    /// unless a cap is reached.
    pub(crate) fn admit(
        &self,
        code: &StreamCode,
        proto: &'static str,
    ) -> Result<PlaySeat, CapReached> {
        let mut counts = lock(&self.inner.counts);
        if counts.total >= self.inner.total {
            return Err(CapReached::Total {
                limit: self.inner.total,
            });
        }
        let current = counts.by_stream.get(code).copied().unwrap_or(0);
        if current >= self.inner.per_stream {
            return Err(CapReached::Stream {
                code: code.clone(),
                limit: self.inner.per_stream,
            });
        }
        counts.total += 1;
        counts.by_stream.insert(code.clone(), current + 1);
        *counts.by_proto.entry((code.clone(), proto)).or_default() += 1;
        Ok(PlaySeat {
            inner: Arc::clone(&self.inner),
            code: code.clone(),
            proto,
        })
    }

    /// Open plays by stream and protocol, for metrics.
    pub(crate) fn plays_by_proto(&self) -> Vec<(StreamCode, &'static str, usize)> {
        lock(&self.inner.counts)
            .by_proto
            .iter()
            .map(|((code, proto), n)| (code.clone(), *proto, *n))
            .collect()
    }

    /// Plays of `code` now.
    #[cfg(test)]
    pub(crate) fn plays(&self, code: &StreamCode) -> usize {
        lock(&self.inner.counts)
            .by_stream
            .get(code)
            .copied()
            .unwrap_or(0)
    }
}

impl Default for PlayCaps {
    fn default() -> Self {
        Self::new(PER_STREAM, TOTAL)
    }
}

impl Drop for PlaySeat {
    fn drop(&mut self) {
        let mut counts = lock(&self.inner.counts);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.by_stream.get_mut(&self.code) {
            *n -= 1;
            if *n == 0 {
                counts.by_stream.remove(&self.code);
            }
        }
        let key = (self.code.clone(), self.proto);
        if let Some(n) = counts.by_proto.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                counts.by_proto.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> StreamCode {
        s.parse().unwrap()
    }

    #[test]
    fn per_stream_and_total_caps_hold_and_seats_come_back() {
        let caps = PlayCaps::new(2, 3);
        let a1 = caps.admit(&code("a"), "rtmp").unwrap();
        let _a2 = caps.admit(&code("a"), "rtmp").unwrap();
        assert_eq!(
            caps.admit(&code("a"), "rtmp").unwrap_err(),
            CapReached::Stream {
                code: code("a"),
                limit: 2
            }
        );
        let _b1 = caps.admit(&code("b"), "rtmp").unwrap();
        assert_eq!(
            caps.admit(&code("b"), "rtmp").unwrap_err(),
            CapReached::Total { limit: 3 }
        );
        drop(a1);
        assert_eq!(caps.plays(&code("a")), 1);
        let _b2 = caps.admit(&code("b"), "srt").unwrap();
        assert!(caps.admit(&code("a"), "rtmp").is_err());
        let mut plays = caps.plays_by_proto();
        plays.sort();
        assert_eq!(
            plays,
            [
                (code("a"), "rtmp", 1),
                (code("b"), "rtmp", 1),
                (code("b"), "srt", 1)
            ]
        );
    }

    #[test]
    fn the_defaults_are_the_spec_caps() {
        let caps = PlayCaps::default();
        let seats: Vec<_> = (0..PER_STREAM)
            .map(|_| caps.admit(&code("s"), "rtmp").unwrap())
            .collect();
        assert!(matches!(
            caps.admit(&code("s"), "rtmp"),
            Err(CapReached::Stream { limit: 256, .. })
        ));
        drop(seats);
        assert_eq!(caps.plays(&code("s")), 0);
    }
}
