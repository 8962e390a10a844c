//! Timeshift (SPEC §DVR "Timeshift", §HLS "Timeshift on live URLs"): a window of a recording as
//! a playlist, derived from the segment log like every other playlist ([`crate::playlist`]).
//!
//! Two doors lead here. `GET /recordings/{rid}/timeshift.m3u8` takes `from` (RFC 3339 or Unix
//! seconds) or `offset_sec` (N ≥ 0: after the first segment; N < 0: before the end of the
//! newest) and an optional `duration`. The live URL `/{code}/index.m3u8` takes `from` or `ago`
//! with an optional `dur` (a VOD playlist over the archive) or `delay` (a live playlist that
//! many seconds behind). Both are parsed here, as pure functions of the query, the clock and the
//! log, so the engine only finds the recording and the tests need no server.
//!
//! Query values are never echoed back: an error names the parameter and what it must be, and
//! the window in a `NO_DATA` answer is re-rendered from the parsed instants. A window is at
//! most [`MAX_WINDOW_MS`] long (longer asks are clamped); one partly outside the recording is
//! clipped to what was recorded, and one wholly outside it is [`NoData`].

use percent_encoding::percent_decode_str;
use tributary_packager::UnixMillis;

use crate::log::SegmentEntry;
use crate::playlist::{self, PlaylistKind, Uris};

/// The longest window a timeshift playlist covers: 24 h.
pub const MAX_WINDOW_MS: u64 = 24 * 3600 * 1000;

/// How many segments a delayed live playlist lists (SPEC §HLS `live_window`'s default).
pub const LIVE_WINDOW: usize = 12;

/// A stretch of wall time: `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Its first instant.
    pub start: UnixMillis,
    /// Just after its last instant.
    pub end: UnixMillis,
}

impl Window {
    /// From `start`, `duration_ms` long (clamped to [`MAX_WINDOW_MS`]).
    pub fn new(start: UnixMillis, duration_ms: u64) -> Self {
        let duration = i64::try_from(duration_ms.min(MAX_WINDOW_MS)).unwrap_or(i64::MAX);
        Self {
            start,
            end: UnixMillis(start.0.saturating_add(duration)),
        }
    }
}

impl Window {
    /// At most `max_ms` long (the configured `dvr.max_timeshift_sec`), from the same start.
    pub fn clamped(self, max_ms: u64) -> Self {
        let max = i64::try_from(max_ms).unwrap_or(i64::MAX);
        Self {
            start: self.start,
            end: UnixMillis(self.end.0.min(self.start.0.saturating_add(max))),
        }
    }
}

/// What a timeshift request on a live URL asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveShift {
    /// `from`/`ago` (+ `dur`): a VOD playlist over this window of the archive.
    Window(Window),
    /// `delay`: a live playlist this many milliseconds behind.
    Delay(u64),
}

/// A bad query value: 400 with `code`, naming `param`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParamError {
    /// The API error code (`INVALID_FROM`, `INVALID_OFFSET`, `INVALID_DURATION`,
    /// `INVALID_QUERY`).
    pub code: &'static str,
    /// The parameter at fault.
    pub param: &'static str,
    /// What is wrong, naming the parameter (never quoting its value).
    pub message: String,
}

impl ParamError {
    pub(crate) fn new(code: &'static str, param: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            param,
            message: message.into(),
        }
    }
}

/// The window holds no recorded segment: 404 `NO_DATA`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no recorded segments between {} and {}", .0.start, .0.end)]
pub struct NoData(pub Window);

/// The window `GET /recordings/{rid}/timeshift.m3u8?{query}` asks for, at `now`, over a log
/// of `entries`. Parameters other than `from`, `offset_sec` and `duration` (`exp`, `sig`,
/// `token`) are ignored.
pub fn recording_window(
    query: &str,
    now: UnixMillis,
    entries: &[SegmentEntry],
) -> Result<Window, ParamError> {
    let start = window_start("timeshift.m3u8", query, now, entries)?;
    let duration = match param(query, "duration") {
        None => MAX_WINDOW_MS,
        Some(value) => length("INVALID_DURATION", "duration", &value, false)?,
    };
    Ok(Window::new(start, duration))
}

/// The start of a recording window `route` (`timeshift.m3u8`, `clip.mp4`) asks for at `now`:
/// `from` (RFC 3339 or Unix seconds, not in the future) or `offset_sec` (N ≥ 0: after the
/// first segment's start; N < 0: before the newest segment's end), exactly one of them.
pub(crate) fn window_start(
    route: &str,
    query: &str,
    now: UnixMillis,
    entries: &[SegmentEntry],
) -> Result<UnixMillis, ParamError> {
    match (param(query, "from"), param(query, "offset_sec")) {
        (Some(_), Some(_)) => Err(ParamError::new(
            "INVALID_QUERY",
            "offset_sec",
            "give from or offset_sec, not both",
        )),
        (None, None) => Err(ParamError::new(
            "INVALID_QUERY",
            "from",
            format!("{route} needs from (RFC 3339 or Unix seconds) or offset_sec (seconds)"),
        )),
        (Some(from), None) => instant("INVALID_FROM", "from", &from, now),
        (None, Some(offset)) => {
            let Some(offset) = seconds(&offset).map(|s| (s * 1000.0).round() as i64) else {
                return Err(ParamError::new(
                    "INVALID_OFFSET",
                    "offset_sec",
                    "offset_sec must be a number of seconds (negative: before the newest segment's end)",
                ));
            };
            let anchor = if offset >= 0 {
                entries.first().map_or(now, |e| e.start)
            } else {
                entries.last().map_or(now, SegmentEntry::end)
            };
            Ok(UnixMillis(anchor.0.saturating_add(offset)))
        }
    }
}

/// The timeshift a live playlist query asks for at `now`, `None` when it names none of `from`,
/// `ago`, `dur` and `delay`. Every value is non-negative seconds (`from`: RFC 3339 or Unix
/// seconds, not in the future), else 400 `INVALID_QUERY` naming it.
pub fn live_shift(query: &str, now: UnixMillis) -> Result<Option<LiveShift>, ParamError> {
    const CODE: &str = "INVALID_QUERY";
    let (from, ago, dur, delay) = (
        param(query, "from"),
        param(query, "ago"),
        param(query, "dur"),
        param(query, "delay"),
    );
    if let Some(delay) = delay {
        if from.is_some() || ago.is_some() || dur.is_some() {
            return Err(ParamError::new(
                CODE,
                "delay",
                "delay stands alone: not with from, ago or dur",
            ));
        }
        let delay = length(CODE, "delay", &delay, true)?;
        if delay > MAX_WINDOW_MS {
            return Err(ParamError::new(
                CODE,
                "delay",
                "delay must be at most 86400 s",
            ));
        }
        return Ok(Some(LiveShift::Delay(delay)));
    }
    let start = match (from, ago) {
        (Some(_), Some(_)) => {
            return Err(ParamError::new(CODE, "ago", "give from or ago, not both"));
        }
        (None, None) if dur.is_some() => {
            return Err(ParamError::new(CODE, "dur", "dur needs from or ago"));
        }
        (None, None) => return Ok(None),
        (Some(from), None) => instant(CODE, "from", &from, now)?,
        (None, Some(ago)) => {
            let ago = length(CODE, "ago", &ago, true)?.min(MAX_WINDOW_MS * 366);
            UnixMillis(now.0.saturating_sub(i64::try_from(ago).unwrap_or(i64::MAX)))
        }
    };
    let duration = match dur {
        None => MAX_WINDOW_MS,
        Some(dur) => length(CODE, "dur", &dur, false)?,
    };
    Ok(Some(LiveShift::Window(Window::new(start, duration))))
}

/// The segments of `entries` (by `seq`) in `window`: from the first that ends after its start
/// to the last that starts before its end (SPEC §DVR).
pub fn select(entries: &[SegmentEntry], window: Window) -> &[SegmentEntry] {
    let first = entries
        .iter()
        .position(|e| e.end() > window.start)
        .unwrap_or(entries.len());
    let rest = &entries[first..];
    let count = rest
        .iter()
        .position(|e| e.start >= window.end)
        .unwrap_or(rest.len());
    &rest[..count]
}

/// The VOD playlist of `window` over `entries`, segment URIs written as `uris` says.
pub fn window_playlist(
    entries: &[SegmentEntry],
    window: Window,
    uris: Uris<'_>,
) -> Result<String, NoData> {
    let selected = select(entries, window);
    if selected.is_empty() {
        return Err(NoData(window));
    }
    Ok(playlist::render_with(selected, PlaylistKind::Vod, uris))
}

/// The live playlist `delay_ms` behind `now`: the last [`LIVE_WINDOW`] segments that had ended
/// by `now - delay_ms`, numbered as in the log.
pub fn delayed_playlist(
    entries: &[SegmentEntry],
    now: UnixMillis,
    delay_ms: u64,
    uris: Uris<'_>,
) -> Result<String, NoData> {
    let cutoff = UnixMillis(
        now.0
            .saturating_sub(i64::try_from(delay_ms).unwrap_or(i64::MAX)),
    );
    let available = entries
        .iter()
        .position(|e| e.end() > cutoff)
        .unwrap_or(entries.len());
    let first = available.saturating_sub(LIVE_WINDOW);
    let listed = &entries[first..available];
    if listed.is_empty() {
        // No segment had ended by then: the window asked for is the LIVE_WINDOW before it.
        let span = (LIVE_WINDOW as i64).saturating_mul(10_000);
        return Err(NoData(Window {
            start: UnixMillis(cutoff.0.saturating_sub(span)),
            end: cutoff,
        }));
    }
    // The first listed segment carries no tag, so its own discontinuity counts as slid out.
    let discontinuity_sequence = entries
        .get(1..=first)
        .unwrap_or_default()
        .iter()
        .filter(|e| e.discontinuity)
        .count() as u64;
    Ok(playlist::render_with(
        listed,
        PlaylistKind::Live {
            discontinuity_sequence,
        },
        uris,
    ))
}

/// The value of `name` in `query`, percent-decoded (the last one wins; empty is absent).
pub(crate) fn param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .rfind(|(key, _)| *key == name)
        .map(|(_, value)| percent_decode_str(value).decode_utf8_lossy().into_owned())
        .filter(|value| !value.is_empty())
}

/// A finite decimal number of seconds (`-`, digits, one `.`; no exponent, no `inf`).
pub(crate) fn seconds(value: &str) -> Option<f64> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let plain = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1
        && digits.bytes().any(|b| b.is_ascii_digit());
    plain
        .then(|| value.parse::<f64>().ok())
        .flatten()
        .filter(|s| s.is_finite())
}

/// A length in seconds as milliseconds: non-negative (`zero_ok`) or positive.
pub(crate) fn length(
    code: &'static str,
    param: &'static str,
    value: &str,
    zero_ok: bool,
) -> Result<u64, ParamError> {
    let wanted = if zero_ok { "non-negative" } else { "positive" };
    match seconds(value) {
        Some(s) if s > 0.0 || (zero_ok && s == 0.0) => {
            Ok((s * 1000.0).round().min(u64::MAX as f64) as u64)
        }
        _ => Err(ParamError::new(
            code,
            param,
            format!("{param} must be a {wanted} number of seconds"),
        )),
    }
}

/// An instant: Unix seconds or an RFC 3339 time, not after `now`.
pub(crate) fn instant(
    code: &'static str,
    param: &'static str,
    value: &str,
    now: UnixMillis,
) -> Result<UnixMillis, ParamError> {
    let at = match seconds(value) {
        Some(s) if s >= 0.0 => Some(UnixMillis((s * 1000.0).round() as i64)),
        Some(_) => None,
        None => chrono::DateTime::parse_from_rfc3339(value)
            .ok()
            .map(|t| UnixMillis(t.timestamp_millis())),
    };
    let Some(at) = at else {
        return Err(ParamError::new(
            code,
            param,
            format!("{param} must be an RFC 3339 time or Unix seconds"),
        ));
    };
    if at > now {
        return Err(ParamError::new(
            code,
            param,
            format!("{param} is in the future (now is {now})"),
        ));
    }
    Ok(at)
}

#[cfg(test)]
mod tests;
