//! RTMP time: 32-bit milliseconds that wrap, and their conversion to 90 kHz media time.

use tributary_media::Ts90;

/// An RTMP timestamp: milliseconds on a 32-bit clock that wraps after about 49.7 days.
///
/// Comparisons are wrap-aware: [`RtmpTime::delta`] is the signed distance between two
/// timestamps assuming they lie within half a period (about 24.8 days) of each other.
///
/// ```
/// use tributary_rtmp::RtmpTime;
/// let before = RtmpTime(u32::MAX - 9);
/// let after = before.wrapping_add(20); // crossed the wrap
/// assert_eq!(after, RtmpTime(10));
/// assert_eq!(after.delta(before), 20);
/// assert!(after.is_after(before));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RtmpTime(pub u32);

impl RtmpTime {
    /// This timestamp plus `ms`, wrapping at 2^32.
    pub fn wrapping_add(self, ms: u32) -> Self {
        Self(self.0.wrapping_add(ms))
    }

    /// The signed distance from `earlier` to `self` in milliseconds, across the wrap.
    pub fn delta(self, earlier: Self) -> i32 {
        self.0.wrapping_sub(earlier.0) as i32
    }

    /// Whether `self` comes strictly after `other` (wrap-aware).
    pub fn is_after(self, other: Self) -> bool {
        self.delta(other) > 0
    }

    /// The wire value of an unwrapped millisecond count (its low 32 bits).
    pub fn from_millis(ms: i64) -> Self {
        Self(ms as u32)
    }
}

/// Unwraps a sequence of [`RtmpTime`]s into one continuous timeline (64-bit milliseconds and
/// [`Ts90`]).
///
/// Each timestamp is placed within half a period of the previous one, so a stream that runs past
/// 49.7 days keeps increasing instead of jumping back to zero. Audio and video of one connection
/// go through the same clock so they keep one base.
#[derive(Debug, Clone, Default)]
pub struct RtmpClock {
    /// The last timestamp seen and its unwrapped value; `None` before the first.
    last: Option<(RtmpTime, i64)>,
}

impl RtmpClock {
    /// A clock that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Unwraps `t` to milliseconds; the first timestamp is taken as it is.
    ///
    /// ```
    /// use tributary_rtmp::{RtmpClock, RtmpTime};
    /// let mut clock = RtmpClock::new();
    /// assert_eq!(clock.unwrap(RtmpTime(u32::MAX - 5)), u32::MAX as i64 - 5);
    /// assert_eq!(clock.unwrap(RtmpTime(4)), u32::MAX as i64 + 5);
    /// ```
    pub fn unwrap(&mut self, t: RtmpTime) -> i64 {
        let ms = match self.last {
            None => i64::from(t.0),
            Some((last, last_ms)) => last_ms + i64::from(t.delta(last)),
        };
        self.last = Some((t, ms));
        ms
    }

    /// Unwraps `t` and converts it to 90 kHz ticks.
    pub fn ts90(&mut self, t: RtmpTime) -> Ts90 {
        Ts90::from_millis(self.unwrap(t))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn wraps_forward_and_back() {
        let mut clock = RtmpClock::new();
        assert_eq!(clock.unwrap(RtmpTime(100)), 100);
        assert_eq!(clock.unwrap(RtmpTime(90)), 90);
        assert_eq!(clock.ts90(RtmpTime(1000)), Ts90(90_000));
        let mut clock = RtmpClock::new();
        clock.unwrap(RtmpTime(u32::MAX));
        assert_eq!(clock.unwrap(RtmpTime(0)), 1 << 32);
        assert_eq!(clock.unwrap(RtmpTime(u32::MAX - 1)), (1 << 32) - 2);
    }

    proptest! {
        #[test]
        fn unwrap_follows_steps(start in any::<u32>(), steps in prop::collection::vec(-100_000i64..1_000_000, 1..50)) {
            let mut clock = RtmpClock::new();
            let mut expected = i64::from(start);
            prop_assert_eq!(clock.unwrap(RtmpTime(start)), expected);
            for step in steps {
                expected += step;
                prop_assert_eq!(clock.unwrap(RtmpTime::from_millis(expected)), expected);
            }
        }
    }
}
