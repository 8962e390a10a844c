//! `ingest_to_playlist_seconds` (SPEC §Metrics): from the ingest arrival of a segment's first
//! frame to the publication of the playlist that lists it. Observed once per segment by the
//! output's task, read at a scrape by the metrics: a fixed-bucket histogram of atomics, so
//! neither side takes a lock.

use std::sync::atomic::{AtomicU64, Ordering};

/// The histogram's upper bounds, in seconds (SPEC §Metrics).
pub const LATENCY_BUCKETS: [f64; 9] = [0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 20.0];

/// One output's histogram.
#[derive(Debug, Default)]
pub(crate) struct Latency {
    /// Observations per bucket (not cumulative); beyond the last bound only in `count`.
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    /// The sum of observations, in microseconds.
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// A reading of an output's `ingest_to_playlist_seconds` histogram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencySnapshot {
    /// Observations per bucket of [`LATENCY_BUCKETS`] (not cumulative).
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    /// The sum of observations, in seconds.
    pub sum: f64,
    /// How many observations.
    pub count: u64,
}

impl Latency {
    /// One segment listed `seconds` after its first frame arrived (negative: clocks stepped,
    /// counted as 0).
    pub(crate) fn observe(&self, seconds: f64) {
        let seconds = seconds.max(0.0);
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        // Saturating at u64::MAX µs (585 000 years) by the float-to-int cast.
        let micros = (seconds * 1e6) as u64;
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The histogram now.
    pub(crate) fn snapshot(&self) -> LatencySnapshot {
        LatencySnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            sum: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            count: self.count.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_add_up() {
        let latency = Latency::default();
        for seconds in [0.2, 0.5, 2.1, 25.0, -1.0] {
            latency.observe(seconds);
        }
        let snap = latency.snapshot();
        assert_eq!(snap.buckets, [3, 0, 0, 1, 0, 0, 0, 0, 0]);
        assert_eq!(snap.count, 5);
        assert!((snap.sum - 27.8).abs() < 1e-6, "{}", snap.sum);
    }
}
