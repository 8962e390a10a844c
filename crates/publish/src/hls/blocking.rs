//! LL-HLS blocking requests (RFC 8216bis §6.2.5.2): a playlist request with `_HLS_msn` (and
//! `_HLS_part`) is held until the playlist holds that segment (or part), and a request for
//! the part a preload hint names is held until that part exists.
//!
//! **Why a `watch` and a semaphore.** A held request is an `async` wait on the output's
//! [`Progress`] watch: no thread, no polling; the output task sends the watch after each part
//! and segment, outside the window's lock, and every waiter whose target that reaches wakes
//! once. Each wait is bounded twice: in time (3 × TARGETDURATION, after which the spec's
//! answer is 503), and in number (a per-output semaphore of
//! [`MAX_WAITERS`](super::window::MAX_WAITERS) permits; one more is refused at once with
//! 503, never queued). A target too far ahead (more than 2 segments past the last one) is
//! 400, as the spec says, so no request is held for something that cannot come soon.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tributary_media::StreamCode;
use tributary_packager::{PLAYLIST_NAME, parse_part_name};

use super::window::Progress;
use crate::HlsRegistry;

/// The LL-HLS query parameters of a media request (`_HLS_msn`, `_HLS_part`, `_HLS_skip`);
/// other parameters (`token=`, ...) are left alone.
///
/// ```
/// use tributary_publish::LlQuery;
///
/// let query = LlQuery::parse("token=abc&_HLS_msn=1795514401&_HLS_part=2&_HLS_skip=YES").unwrap();
/// assert_eq!((query.msn, query.part, query.skip), (Some(1_795_514_401), Some(2), true));
/// assert!(LlQuery::parse("_HLS_part=2").is_err(), "_HLS_part needs _HLS_msn");
/// assert!(LlQuery::parse("_HLS_msn=-1").is_err());
/// assert!(LlQuery::parse("_HLS_skip=maybe").is_err());
/// assert_eq!(LlQuery::parse("").unwrap(), LlQuery::default());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LlQuery {
    /// `_HLS_msn`: hold the playlist until it holds this segment.
    pub msn: Option<u64>,
    /// `_HLS_part`: ... or this part of it.
    pub part: Option<u32>,
    /// `_HLS_skip=YES` (or `v2`: there are no date ranges to skip): the delta update.
    pub skip: bool,
}

impl LlQuery {
    /// Parses a query string (without its `?`); a malformed LL-HLS parameter is an error that
    /// names it (400).
    pub fn parse(query: &str) -> Result<Self, BlockError> {
        let mut out = Self::default();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let bad = |what: &str| BlockError::BadRequest(format!("{key}: {what}"));
            match key {
                "_HLS_msn" => {
                    out.msn = Some(digits(value).ok_or_else(|| bad("must be a segment number"))?);
                }
                "_HLS_part" => {
                    let part = digits(value).ok_or_else(|| bad("must be a part index"))?;
                    out.part = Some(u32::try_from(part).map_err(|_| bad("too large"))?);
                }
                "_HLS_skip" => match value {
                    "YES" | "v2" => out.skip = true,
                    _ => return Err(bad("must be YES or v2")),
                },
                _ => {}
            }
        }
        if out.part.is_some() && out.msn.is_none() {
            return Err(BlockError::BadRequest(
                "_HLS_part needs _HLS_msn".to_owned(),
            ));
        }
        Ok(out)
    }
}

/// Why a blocking request is answered with an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// 400: a malformed parameter, or a target too far ahead.
    #[error("{0}")]
    BadRequest(String),
    /// 503: the target did not come within 3 × TARGETDURATION.
    #[error("{0}")]
    Timeout(String),
    /// 503: too many requests are held on this output already.
    #[error("{0}")]
    Busy(String),
}

impl HlsRegistry {
    /// Holds a request for `name` of `code`'s output (`rung`) until what `query` asks for
    /// exists: with `_HLS_msn` on the playlist, that segment (or part); for a part URI (a
    /// preload hint), that part. Returns at once for anything else, for an output without
    /// parts, and for an output that is gone (the request then gets what is there, or 404).
    /// Bounded as the module doc says.
    pub async fn wait_ready(
        &self,
        code: &StreamCode,
        rung: Option<u16>,
        name: &str,
        query: &LlQuery,
    ) -> Result<(), BlockError> {
        let target = if name == PLAYLIST_NAME {
            match query.msn {
                Some(msn) => Target {
                    msn,
                    part: query.part,
                },
                None => return Ok(()),
            }
        } else if let Some((msn, part)) = parse_part_name(name) {
            Target {
                msn,
                part: Some(part),
            }
        } else {
            return Ok(());
        };
        let Some(window) = self.window(code, rung) else {
            return Ok(());
        };
        let mut progress = window.progress();
        let now = *progress.borrow_and_update();
        if now.ended || target.reached(&now) {
            return Ok(());
        }
        let last = now.part.map(|(n, _)| n).max(now.segment).unwrap_or(0);
        if now.segment.is_some() && target.msn > last.saturating_add(2) {
            if name != PLAYLIST_NAME {
                // A part URI from far ahead: not held, it is simply not there (404).
                return Ok(());
            }
            let refused = Err(BlockError::BadRequest(format!(
                "_HLS_msn={} is more than 2 segments past the last one ({last})",
                target.msn
            )));
            self.blocking_tally().count(&refused);
            return refused;
        }
        let outcome = match window.waiters.try_acquire() {
            Ok(_permit) => {
                let limit = timeout(now.target_duration);
                let reached = progress.wait_for(|p| p.ended || target.reached(p));
                match tokio::time::timeout(limit, reached).await {
                    Ok(_) => Ok(()),
                    Err(_) => Err(BlockError::Timeout(format!(
                        "segment {}{} of stream {code} did not come within {} s",
                        target.msn,
                        target
                            .part
                            .map_or_else(String::new, |p| format!(" part {p}")),
                        limit.as_secs_f64()
                    ))),
                }
            }
            Err(_) => Err(BlockError::Busy(format!(
                "too many requests already wait on stream {code} (at most {})",
                super::window::MAX_WAITERS
            ))),
        };
        self.blocking_tally().count(&outcome);
        outcome
    }
}

/// LL-HLS blocking requests since start, by outcome: what
/// [`HlsRegistry::blocking_requests`] reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockingCounts {
    /// Held until what they asked for came (or the output ended).
    pub answered: u64,
    /// Held 3 × TARGETDURATION in vain: 503.
    pub timed_out: u64,
    /// Refused because too many waited already: 503.
    pub busy: u64,
    /// Refused at once as too far ahead: 400.
    pub bad_request: u64,
}

/// The counters behind [`BlockingCounts`] (relaxed atomics: a scrape reads them).
#[derive(Debug, Default)]
pub(crate) struct Tally {
    answered: AtomicU64,
    timed_out: AtomicU64,
    busy: AtomicU64,
    bad_request: AtomicU64,
}

impl Tally {
    /// Counts the outcome of one held or refused request.
    fn count(&self, outcome: &Result<(), BlockError>) {
        let counter = match outcome {
            Ok(()) => &self.answered,
            Err(BlockError::Timeout(_)) => &self.timed_out,
            Err(BlockError::Busy(_)) => &self.busy,
            Err(BlockError::BadRequest(_)) => &self.bad_request,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl HlsRegistry {
    /// LL-HLS blocking requests since start, by outcome; requests answered at once (what
    /// they asked for existed) and malformed queries are not counted.
    pub fn blocking_requests(&self) -> BlockingCounts {
        let t = self.blocking_tally();
        BlockingCounts {
            answered: t.answered.load(Ordering::Relaxed),
            timed_out: t.timed_out.load(Ordering::Relaxed),
            busy: t.busy.load(Ordering::Relaxed),
            bad_request: t.bad_request.load(Ordering::Relaxed),
        }
    }
}

/// What a blocked request waits for.
#[derive(Debug, Clone, Copy)]
struct Target {
    msn: u64,
    part: Option<u32>,
}

impl Target {
    /// Whether the output has come this far: the segment is complete, or (with a part) that
    /// part or a later one is out. A segment that ended before the part index asked for
    /// counts as reached with its successor's first part, as the spec says.
    fn reached(&self, progress: &Progress) -> bool {
        if progress.segment.is_some_and(|s| s >= self.msn) {
            return true;
        }
        match (self.part, progress.part) {
            (Some(part), Some(out)) => out >= (self.msn, part),
            _ => false,
        }
    }
}

/// How long a request is held: 3 × TARGETDURATION (RFC 8216bis §6.2.5.2), 6 s before the
/// first segment fixed it.
fn timeout(target_duration: Option<u32>) -> Duration {
    Duration::from_secs(3 * u64::from(target_duration.unwrap_or(2)))
}

/// A plain decimal number (no sign, no spaces).
fn digits(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

#[cfg(test)]
mod tests;
