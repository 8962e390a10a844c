//! The `Range` header of the media routes (SPEC §HLS "HTTP": single byte ranges).
//!
//! The header comes from any HTTP client; [`parse`] turns it into offsets that lie inside the
//! body, or refuses it (416), and never overflows on the numbers it reads.

use std::ops::RangeInclusive;

/// One `bytes=` range (`a-b`, `a-`, `-n`) of a body of `total` bytes, as the inclusive offsets
/// to serve; `None` when it cannot be satisfied (a start past the end, `b < a`, `-0`, an empty
/// body) or is not a byte range. Several ranges are answered with the first; an end past the
/// body is cut to its last byte, a suffix longer than the body is the whole body.
///
/// Whatever the header, a returned range is non-empty and lies inside the body:
/// `start <= end < total`.
///
/// ```
/// use tributary_domain::http_range::parse;
///
/// assert_eq!(parse("bytes=0-9", 100), Some(0..=9));
/// assert_eq!(parse("bytes=-10", 100), Some(90..=99));
/// assert_eq!(parse("bytes=100-", 100), None);
/// ```
pub fn parse(value: &str, total: usize) -> Option<RangeInclusive<usize>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    let first = spec.split(',').next()?.trim();
    let (start, end) = first.split_once('-')?;
    let last = total.checked_sub(1)?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: usize = suffix.parse().ok()?;
            if n == 0 {
                return None;
            }
            (total.saturating_sub(n), last)
        }
        (start, "") => (start.parse().ok()?, last),
        (start, end) => (start.parse().ok()?, end.parse::<usize>().ok()?.min(last)),
    };
    (start <= end && start <= last).then_some(start..=end)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn ranges() {
        assert_eq!(parse("bytes=0-9", 100), Some(0..=9));
        assert_eq!(parse("bytes=90-", 100), Some(90..=99));
        assert_eq!(parse("bytes=-10", 100), Some(90..=99));
        assert_eq!(parse("bytes=-1000", 100), Some(0..=99));
        assert_eq!(parse("bytes=50-1000", 100), Some(50..=99));
        assert_eq!(parse("bytes=0-0,5-6", 100), Some(0..=0));
        assert_eq!(parse(" bytes= 3 - 4 ", 100), Some(3..=4));
        assert_eq!(parse("bytes=100-", 100), None);
        assert_eq!(parse("bytes=9-3", 100), None);
        assert_eq!(parse("bytes=-0", 100), None);
        assert_eq!(parse("items=0-1", 100), None);
        assert_eq!(parse("bytes=x-1", 100), None);
        assert_eq!(parse("bytes=0-1", 0), None);
        assert_eq!(parse("bytes=-1", 0), None);
    }

    #[test]
    fn numbers_past_usize_are_refused_not_wrapped() {
        assert_eq!(parse("bytes=18446744073709551616-", 100), None);
        assert_eq!(parse("bytes=0-18446744073709551616", 100), None);
        assert_eq!(parse("bytes=-18446744073709551615", 100), Some(0..=99));
        assert_eq!(
            parse("bytes=0-18446744073709551615", usize::MAX),
            Some(0..=usize::MAX - 1)
        );
    }
}
