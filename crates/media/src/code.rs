//! Stream codes (SPEC §Domain "Stream codes").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The name of a stream: 1–128 characters, segments of `[A-Za-z0-9_-]+` joined by `/`.
///
/// A `StreamCode` is always valid: it can only be made by [`StreamCode::parse`] (or `FromStr`,
/// or deserialising), which rejects empty segments (so `..` and leading, trailing or double `/`
/// cannot occur) and the reserved names that would make HTTP routes ambiguous.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamCode(String);

/// Why a text is not a valid [`StreamCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodeError {
    /// The code is empty.
    #[error("stream code is empty")]
    Empty,
    /// The code is longer than 128 characters.
    #[error("stream code is {len} characters long (at most {MAX_LEN})")]
    TooLong {
        /// The length that was given.
        len: usize,
    },
    /// A segment between two `/` (or at either end) is empty.
    #[error("stream code has an empty segment (leading, trailing or double '/')")]
    EmptySegment,
    /// A character outside `[A-Za-z0-9_-/]`.
    #[error(
        "stream code has invalid character {found:?} at position {at} (allowed: A-Z a-z 0-9 _ - /)"
    )]
    InvalidChar {
        /// The offending character.
        found: char,
        /// Its character index.
        at: usize,
    },
    /// A segment uses a name reserved by the HTTP routes.
    #[error("stream code segment {segment:?} is reserved")]
    Reserved {
        /// The reserved segment.
        segment: String,
    },
}

const MAX_LEN: usize = 128;

/// First segments that name API or system routes.
const RESERVED_FIRST: &[&str] = &[
    "api",
    "config",
    "debug",
    "healthz",
    "hooks",
    "live",
    "metrics",
    "readyz",
    "recordings",
    "sessions",
    "static",
    "streams",
    "swagger",
    "templates",
    "ui",
    "vod",
    "watermarks",
];

/// Segments reserved anywhere in a code, because they name sub-routes of a stream. SPEC
/// §Domain lists all but the last two; `sessions` and `recordings` name the sub-routes
/// `/streams/{code}/sessions` and `/streams/{code}/recordings`, so a stream `a/sessions` could
/// not be told from stream `a`'s sessions.
const RESERVED_ANYWHERE: &[&str] = &[
    "restart",
    "inputs",
    "switch",
    "info",
    "plan",
    "mpegts",
    "thumbnail",
    "sessions",
    "recordings",
];

impl StreamCode {
    /// Parses and validates a stream code.
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        if text.is_empty() {
            return Err(CodeError::Empty);
        }
        let len = text.chars().count();
        if len > MAX_LEN {
            return Err(CodeError::TooLong { len });
        }
        if let Some((at, found)) = text
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/')))
        {
            return Err(CodeError::InvalidChar { found, at });
        }
        for (i, segment) in text.split('/').enumerate() {
            if segment.is_empty() {
                return Err(CodeError::EmptySegment);
            }
            let reserved = (i == 0 && RESERVED_FIRST.contains(&segment))
                || RESERVED_ANYWHERE.contains(&segment)
                || is_track_segment(segment);
            if reserved {
                return Err(CodeError::Reserved {
                    segment: segment.to_owned(),
                });
            }
        }
        Ok(Self(text.to_owned()))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `track_<digits>` names an ABR variant under a stream.
fn is_track_segment(segment: &str) -> bool {
    segment
        .strip_prefix("track_")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

impl FromStr for StreamCode {
    type Err = CodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for StreamCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for StreamCode {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for StreamCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StreamCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn accepts_valid_codes() {
        for ok in [
            "a",
            "match-day",
            "cam_7",
            "sports/ch1",
            "A/b/C-9_x",
            "tracks",
            "track_x",
        ] {
            assert!(StreamCode::parse(ok).is_ok(), "{ok}");
        }
        assert!(StreamCode::parse(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn rejects_invalid_codes() {
        let cases: &[(&str, CodeError)] = &[
            ("", CodeError::Empty),
            ("/a", CodeError::EmptySegment),
            ("a/", CodeError::EmptySegment),
            ("a//b", CodeError::EmptySegment),
            ("a/../b", CodeError::InvalidChar { found: '.', at: 2 }),
            ("a b", CodeError::InvalidChar { found: ' ', at: 1 }),
            ("a$b", CodeError::InvalidChar { found: '$', at: 1 }),
            ("é", CodeError::InvalidChar { found: 'é', at: 0 }),
            (
                "api",
                CodeError::Reserved {
                    segment: "api".into(),
                },
            ),
            (
                "live/x",
                CodeError::Reserved {
                    segment: "live".into(),
                },
            ),
            (
                "a/restart",
                CodeError::Reserved {
                    segment: "restart".into(),
                },
            ),
            (
                "a/track_12",
                CodeError::Reserved {
                    segment: "track_12".into(),
                },
            ),
            (
                "mpegts",
                CodeError::Reserved {
                    segment: "mpegts".into(),
                },
            ),
            (
                "a/sessions",
                CodeError::Reserved {
                    segment: "sessions".into(),
                },
            ),
            (
                "a/b/recordings",
                CodeError::Reserved {
                    segment: "recordings".into(),
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(StreamCode::parse(text).unwrap_err(), *want, "{text}");
        }
        assert_eq!(
            StreamCode::parse(&"a".repeat(129)).unwrap_err(),
            CodeError::TooLong { len: 129 }
        );
    }

    #[test]
    fn reserved_first_segment_allowed_later() {
        assert!(StreamCode::parse("x/live").is_ok());
        assert!(StreamCode::parse("x/api").is_ok());
    }

    #[test]
    fn serde_round_trip_validates() {
        let code: StreamCode = serde_json::from_str("\"a/b\"").unwrap();
        assert_eq!(serde_json::to_string(&code).unwrap(), "\"a/b\"");
        assert!(serde_json::from_str::<StreamCode>("\"a//b\"").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_valid_round_trips(text in "\\PC{0,140}") {
            if let Ok(code) = StreamCode::parse(&text) {
                prop_assert_eq!(code.as_str(), text.as_str());
                prop_assert!(!code.as_str().contains(".."));
            }
        }
    }
}
