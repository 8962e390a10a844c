//! Buffer ids (SPEC §Buffer hub).

use std::fmt;

use tributary_media::StreamCode;

/// The key of one hub buffer.
///
/// `$` cannot occur in a [`StreamCode`], so the three forms never collide. `Display` gives the
/// id as SPEC names it: `<code>`, `$raw$<code>`, `$r$<code>$track_N` with `N = rung + 1`.
///
/// ```
/// use tributary_hub::BufferId;
///
/// let code: tributary_media::StreamCode = "sports/ch1".parse().unwrap();
/// assert_eq!(BufferId::Stream(code.clone()).to_string(), "sports/ch1");
/// assert_eq!(BufferId::Raw(code.clone()).to_string(), "$raw$sports/ch1");
/// assert_eq!(BufferId::Rendition(code, 0).to_string(), "$r$sports/ch1$track_1");
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BufferId {
    /// The stream's main buffer: what outputs read when the stream is not transcoded, and what
    /// ingest writes when it is not.
    Stream(StreamCode),
    /// The ingest target of a transcoded stream; FFmpeg reads it.
    Raw(StreamCode),
    /// One rendition of a transcoded stream, by rung index (0 is `track_1`).
    Rendition(StreamCode, u16),
}

impl BufferId {
    /// The stream this buffer belongs to.
    pub fn code(&self) -> &StreamCode {
        match self {
            Self::Stream(code) | Self::Raw(code) | Self::Rendition(code, _) => code,
        }
    }
}

impl fmt::Display for BufferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stream(code) => write!(f, "{code}"),
            Self::Raw(code) => write!(f, "$raw${code}"),
            Self::Rendition(code, rung) => write!(f, "$r${code}$track_{}", u32::from(*rung) + 1),
        }
    }
}

impl fmt::Debug for BufferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_spec() {
        let code: StreamCode = "match-day".parse().unwrap();
        assert_eq!(BufferId::Stream(code.clone()).to_string(), "match-day");
        assert_eq!(BufferId::Raw(code.clone()).to_string(), "$raw$match-day");
        assert_eq!(
            BufferId::Rendition(code.clone(), 2).to_string(),
            "$r$match-day$track_3"
        );
        assert_eq!(
            BufferId::Rendition(code, u16::MAX).to_string(),
            "$r$match-day$track_65536"
        );
    }
}
