//! Wall-clock time as the packager receives it: milliseconds since the Unix epoch, UTC.

use std::fmt;
use std::ops::Add;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tributary_media::Ts90;

/// A wall-clock instant in milliseconds since 1970-01-01T00:00:00Z (negative before it).
///
/// The packager never reads a clock: the caller converts the wall time it read once per
/// wake-up with [`UnixMillis::from_system_time`] and passes it in. `Display` prints the form
/// `#EXT-X-PROGRAM-DATE-TIME` wants (RFC 3339, UTC, milliseconds).
///
/// ```
/// use tributary_packager::UnixMillis;
///
/// assert_eq!(UnixMillis(1_795_514_400_000).to_string(), "2026-11-24T10:00:00.000Z");
/// assert_eq!(UnixMillis(-1).to_string(), "1969-12-31T23:59:59.999Z");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    /// The instant a `SystemTime` names, truncated to the millisecond (saturating far outside
    /// ±292 million years).
    pub fn from_system_time(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Self(millis(after)),
            Err(before) => Self(-millis(before.duration())),
        }
    }

    /// Whole seconds since the epoch, rounded towards negative infinity.
    pub fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }
}

impl Add<Ts90> for UnixMillis {
    type Output = Self;

    /// Moves the instant by a media duration (rounded down to the millisecond).
    fn add(self, rhs: Ts90) -> Self {
        Self(self.0.saturating_add(rhs.as_millis()))
    }
}

impl fmt::Display for UnixMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(MS_PER_DAY);
        let in_day = self.0.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let (hour, minute) = (in_day / 3_600_000, in_day / 60_000 % 60);
        let (second, milli) = (in_day / 1000 % 60, in_day % 1000);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z"
        )
    }
}

/// A duration in whole milliseconds, saturating.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, exact for every `i64` day this type can produce).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

const MS_PER_DAY: i64 = 86_400_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_795_514_400_000, "2026-11-24T10:00:00.000Z"),
            (1_795_514_400_123, "2026-11-24T10:00:00.123Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"), // leap day of a /400 year
            (4_107_542_399_999, "2100-02-28T23:59:59.999Z"), // 2100 is not a leap year
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
            (-86_400_000, "1969-12-31T00:00:00.000Z"),
        ];
        for (ms, want) in cases {
            assert_eq!(UnixMillis(ms).to_string(), want, "{ms}");
        }
    }

    #[test]
    fn converts_system_time_and_adds_media_time() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_514_400_250);
        assert_eq!(
            UnixMillis::from_system_time(t),
            UnixMillis(1_795_514_400_250)
        );
        let before = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(UnixMillis::from_system_time(before), UnixMillis(-1500));
        assert_eq!(UnixMillis(1000) + Ts90(90_000), UnixMillis(2000));
        assert_eq!(UnixMillis(1999).as_secs(), 1);
        assert_eq!(UnixMillis(-1).as_secs(), -1);
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        // days_from_civil, written independently, must invert civil_from_days.
        fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
            let y = if m <= 2 { y - 1 } else { y };
            let era = y.div_euclid(400);
            let yoe = y.rem_euclid(400);
            let mp = if m > 2 { m - 3 } else { m + 9 };
            let doy = (153 * mp + 2) / 5 + d - 1;
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
            era * 146_097 + doe - 719_468
        }
        for days in -146_097..146_097 {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
