//! Media time in 90 kHz ticks.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A media timestamp in 90 kHz ticks, unwrapped (64-bit, never wraps in practice).
///
/// Wire formats carry shorter clocks (33-bit MPEG-TS PTS, 32-bit RTMP milliseconds); they are
/// unwrapped where they enter, with [`Ts90::unwrap_33`], and every [`crate::Frame`] carries
/// this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ts90(pub i64);

impl Ts90 {
    /// Ticks per second.
    pub const HZ: i64 = 90_000;
    /// The period of a 33-bit MPEG-TS timestamp.
    pub const WRAP_33: i64 = 1 << 33;

    /// From milliseconds.
    pub fn from_millis(ms: i64) -> Self {
        Self(ms * 90)
    }

    /// To milliseconds, rounding towards negative infinity.
    pub fn as_millis(self) -> i64 {
        self.0.div_euclid(90)
    }

    /// As seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / Self::HZ as f64
    }

    /// From a duration (saturating).
    pub fn from_duration(d: Duration) -> Self {
        let ticks = d.as_nanos() * 9 / 100_000;
        Self(i64::try_from(ticks).unwrap_or(i64::MAX))
    }

    /// Unwraps a raw 33-bit timestamp so that it lands within half a period of `reference`
    /// (the previous unwrapped value on the same clock).
    ///
    /// ```
    /// use tributary_media::Ts90;
    /// let last = Ts90(Ts90::WRAP_33 - 100);
    /// assert_eq!(Ts90::unwrap_33(50, last), Ts90(Ts90::WRAP_33 + 50));
    /// assert_eq!(Ts90::unwrap_33(Ts90::WRAP_33 as u64 - 10, Ts90(Ts90::WRAP_33 + 5)), Ts90(Ts90::WRAP_33 - 10));
    /// ```
    pub fn unwrap_33(raw: u64, reference: Self) -> Self {
        let raw = (raw as i64) & (Self::WRAP_33 - 1);
        let base = reference.0 - reference.0.rem_euclid(Self::WRAP_33);
        let candidates = [
            base - Self::WRAP_33 + raw,
            base + raw,
            base + Self::WRAP_33 + raw,
        ];
        let best = candidates
            .into_iter()
            .min_by_key(|c| (c - reference.0).abs())
            .unwrap_or(raw);
        Self(best)
    }
}

impl Add for Ts90 {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        Self(self.0 + rhs.0)
    }
}

impl Sub for Ts90 {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        Self(self.0 - rhs.0)
    }
}

impl fmt::Display for Ts90 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn millis_round_trip() {
        assert_eq!(Ts90::from_millis(1000), Ts90(90_000));
        assert_eq!(Ts90(90_089).as_millis(), 1000);
        assert_eq!(Ts90::from_duration(Duration::from_millis(40)), Ts90(3600));
    }

    proptest! {
        #[test]
        fn unwrap_33_lands_near_reference(reference in 0i64..(1 << 40), delta in -(1i64 << 31)..(1i64 << 31)) {
            let target = reference + delta;
            prop_assume!(target >= 0);
            let raw = (target as u64) & ((1 << 33) - 1);
            prop_assert_eq!(Ts90::unwrap_33(raw, Ts90(reference)), Ts90(target));
        }
    }
}
