//! Which segments retention removes (SPEC §DVR "Retention"), as a pure choice over the log.

use std::time::Duration;

use tributary_packager::UnixMillis;

use crate::log::SegmentEntry;

/// What to keep: by age, by total size, or both; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Segments that ended longer ago than this go (`retention_sec`; 0 = forever).
    pub max_age: Option<Duration>,
    /// The oldest segments go while the total exceeds this (`max_size_gb × 2^30`; 0 =
    /// unlimited).
    pub max_bytes: Option<u64>,
}

impl Retention {
    /// From a stream's `dvr` settings.
    pub fn of(dvr: &tributary_domain::Dvr) -> Self {
        let max_bytes = (dvr.max_size_gb > 0.0 && dvr.max_size_gb.is_finite())
            .then(|| (dvr.max_size_gb * GIB).min(u64::MAX as f64) as u64);
        Self {
            max_age: (dvr.retention_sec > 0).then(|| Duration::from_secs(dvr.retention_sec)),
            max_bytes,
        }
    }

    /// How many of the oldest `entries` (sorted by `seq`) to remove at `now`: while the
    /// oldest ended more than `max_age` ago or the total exceeds `max_bytes`, at least one
    /// segment (the newest) always kept.
    pub fn expired(&self, entries: &[SegmentEntry], now: UnixMillis) -> usize {
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        let mut drop = 0;
        while drop + 1 < entries.len() {
            let oldest = &entries[drop];
            let too_old = self.max_age.is_some_and(|age| {
                let age_ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
                now.0.saturating_sub(oldest.end().0) > age_ms
            });
            let too_big = self.max_bytes.is_some_and(|max| total > max);
            if !(too_old || too_big) {
                break;
            }
            total -= oldest.size;
            drop += 1;
        }
        drop
    }
}

/// Bytes in a GiB.
const GIB: f64 = (1u64 << 30) as f64;

#[cfg(test)]
mod tests {
    use super::*;

    fn log(sizes: &[u64]) -> Vec<SegmentEntry> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| SegmentEntry {
                seq: i as u64,
                start: UnixMillis(i as i64 * 4000),
                duration_ms: 4000,
                size,
                discontinuity: false,
            })
            .collect()
    }

    #[test]
    fn by_size_drops_the_oldest_until_under() {
        let r = Retention {
            max_age: None,
            max_bytes: Some(250),
        };
        assert_eq!(r.expired(&log(&[100, 100, 100]), UnixMillis(0)), 1);
        assert_eq!(r.expired(&log(&[100, 100]), UnixMillis(0)), 0);
        // The newest is kept even when it alone is too big.
        assert_eq!(r.expired(&log(&[100, 1000]), UnixMillis(0)), 1);
        assert_eq!(r.expired(&log(&[1000]), UnixMillis(0)), 0);
        assert_eq!(r.expired(&[], UnixMillis(0)), 0);
    }

    #[test]
    fn by_age_counts_from_a_segments_end() {
        let r = Retention {
            max_age: Some(Duration::from_secs(10)),
            max_bytes: None,
        };
        // Segments end at 4, 8, 12, 16 s; at 20 s the first ended 16 s ago, the second 12 s.
        assert_eq!(r.expired(&log(&[1, 1, 1, 1]), UnixMillis(20_000)), 2);
        assert_eq!(r.expired(&log(&[1, 1, 1, 1]), UnixMillis(18_000)), 1);
        // Everything old: the newest stays.
        assert_eq!(r.expired(&log(&[1, 1, 1, 1]), UnixMillis(1_000_000)), 3);
        assert_eq!(
            Retention::default().expired(&log(&[1, 1]), UnixMillis(1 << 50)),
            0
        );
    }

    #[test]
    fn from_settings() {
        let dvr = tributary_domain::Dvr {
            retention_sec: 60,
            max_size_gb: 0.5,
            ..Default::default()
        };
        let r = Retention::of(&dvr);
        assert_eq!(r.max_age, Some(Duration::from_secs(60)));
        assert_eq!(r.max_bytes, Some(1 << 29));
        assert_eq!(Retention::of(&Default::default()), Retention::default());
    }
}
