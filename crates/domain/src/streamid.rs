//! The SRT `streamid` a caller sends in its handshake (SPEC §Publisher "SRT listener"), parsed
//! once at the edge into what it asks for: publish or play, the resource path, and the key.
//!
//! Accepted forms, as encoders and players send them:
//!
//! | streamid | Request |
//! | --- | --- |
//! | `publish:live/cam?key=s3cret` | publish to `live/cam` with key `s3cret` |
//! | `play:live/cam`, `read:live/cam`, `request:live/cam` | play `live/cam` |
//! | `#!::r=live/cam,m=publish,key=s3cret` | publish (the SRT access-control form) |
//! | `#!::r=live/cam,m=request` (or no `m`) | play |
//! | `live/cam`, `cam` | play (as in open-streamer) |
//!
//! The path's query (`?key=…&slot=…`, `?exp=…&sig=…`) is split off before lookup, never part
//! of the name. In the access-control form, `key=` and `slot=` are entries of their own; other
//! standard keys (`u`, `s`, `h`, `t`) are accepted and ignored, and an `m` other than
//! `publish`, `request` or `play` is refused (Tributary has no bidirectional sessions).
//!
//! ```
//! use tributary_domain::streamid::{SrtMode, SrtStreamId};
//!
//! let id: SrtStreamId = "#!::r=live/cam,m=publish,key=s3cret-key".parse()?;
//! assert_eq!((id.mode, id.path.as_str()), (SrtMode::Publish, "live/cam"));
//! assert_eq!(id.key.as_deref(), Some("s3cret-key"));
//! let id: SrtStreamId = "live/cam?exp=1&sig=ab".parse()?;
//! assert_eq!((id.mode, id.path.as_str()), (SrtMode::Play, "live/cam"));
//! assert_eq!(id.query.as_deref(), Some("exp=1&sig=ab"));
//! # Ok::<(), tributary_domain::streamid::StreamIdError>(())
//! ```

use std::fmt;
use std::str::FromStr;

/// What an SRT caller asks for.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtStreamId {
    /// Publish or play.
    pub mode: SrtMode,
    /// The resource, queries removed and surrounding slashes trimmed (`live/cam`). Name
    /// routing to a stream code is the router's job.
    pub path: String,
    /// The publish key (`?key=` of the path, or `key=` of the access-control form). A secret:
    /// never log it.
    pub key: Option<String>,
    /// The push input asked for by name (`?slot=`, or `slot=` of the access-control form).
    pub slot: Option<String>,
    /// The path's query without its `?`, as sent (`exp=…&sig=…` for signed play URLs). May
    /// hold secrets: never log it.
    pub query: Option<String>,
}

/// Publish or play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtMode {
    /// The caller sends media (`publish:`, `m=publish`).
    Publish,
    /// The caller receives media (`play:`, `read:`, `request:`, `m=request`, bare).
    Play,
}

/// Why a streamid cannot be served. The message names the part, never a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamIdError {
    /// Nothing names a resource (empty streamid, empty path, `#!::` without `r=`).
    #[error("the streamid names no resource")]
    NoResource,
    /// The access-control form asks for a mode Tributary does not serve.
    #[error("unsupported mode m={0:?} (publish, request or play)")]
    UnsupportedMode(String),
    /// Longer than SRT allows (512 bytes).
    #[error("streamid of {0} bytes is longer than SRT's 512")]
    TooLong(usize),
    /// A control character: no encoder sends one, and it must not reach a log.
    #[error("the streamid contains a control character")]
    ControlCharacter,
}

impl FromStr for SrtStreamId {
    type Err = StreamIdError;

    fn from_str(text: &str) -> Result<Self, StreamIdError> {
        if text.len() > MAX_LEN {
            return Err(StreamIdError::TooLong(text.len()));
        }
        if text.chars().any(char::is_control) {
            return Err(StreamIdError::ControlCharacter);
        }
        if let Some(list) = text.strip_prefix("#!::") {
            return access_control(list);
        }
        let (mode, resource) = match text.split_once(':') {
            Some(("publish", rest)) => (SrtMode::Publish, rest),
            Some(("play" | "read" | "request", rest)) => (SrtMode::Play, rest),
            _ => (SrtMode::Play, text),
        };
        let (path, query) = split_path(resource)?;
        Ok(Self {
            mode,
            key: param(query, "key"),
            slot: param(query, "slot"),
            query: query.map(str::to_owned),
            path,
        })
    }
}

/// The `#!::k=v,k=v` form of the SRT access-control guidelines.
fn access_control(list: &str) -> Result<SrtStreamId, StreamIdError> {
    let (mut resource, mut mode, mut key, mut slot) = (None, SrtMode::Play, None, None);
    for entry in list.split(',') {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        match name.trim() {
            "r" => resource = Some(value),
            "m" => {
                mode = match value {
                    "publish" => SrtMode::Publish,
                    "request" | "play" => SrtMode::Play,
                    other => return Err(StreamIdError::UnsupportedMode(other.to_owned())),
                }
            }
            "key" => key = Some(value.to_owned()),
            "slot" => slot = Some(value.to_owned()),
            _ => {}
        }
    }
    let (path, query) = split_path(resource.ok_or(StreamIdError::NoResource)?)?;
    Ok(SrtStreamId {
        mode,
        key: key.or_else(|| param(query, "key")),
        slot: slot.or_else(|| param(query, "slot")),
        query: query.map(str::to_owned),
        path,
    })
}

/// `live/cam?key=…` → (`live/cam`, `Some("key=…")`); an empty query is none.
fn split_path(resource: &str) -> Result<(String, Option<&str>), StreamIdError> {
    let (path, query) = match resource.split_once('?') {
        Some((path, query)) => (path, Some(query).filter(|q| !q.is_empty())),
        None => (resource, None),
    };
    let path = path.trim().trim_matches('/');
    if path.is_empty() {
        return Err(StreamIdError::NoResource);
    }
    Ok((path.to_owned(), query))
}

/// The value of query parameter `name` (the first one, not percent-decoded).
fn param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

impl fmt::Debug for SrtStreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtStreamId")
            .field("mode", &self.mode)
            .field("path", &self.path)
            .field("key", &self.key.as_ref().map(|_| "****"))
            .field("slot", &self.slot)
            .field("query", &self.query.as_ref().map(|_| "****"))
            .finish()
    }
}

/// The longest streamid SRT carries (SRTO_STREAMID).
const MAX_LEN: usize = 512;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SrtStreamId {
        text.parse().unwrap()
    }

    #[test]
    fn every_form_of_the_spec() {
        for (text, mode, path) in [
            ("publish:live/cam", SrtMode::Publish, "live/cam"),
            ("play:live/cam", SrtMode::Play, "live/cam"),
            ("read:live/cam", SrtMode::Play, "live/cam"),
            ("request:live/cam", SrtMode::Play, "live/cam"),
            ("#!::r=live/cam,m=publish", SrtMode::Publish, "live/cam"),
            ("#!::r=live/cam,m=request", SrtMode::Play, "live/cam"),
            ("#!::m=publish,r=sports/ch1", SrtMode::Publish, "sports/ch1"),
            ("#!::r=live/cam", SrtMode::Play, "live/cam"),
            ("live/cam", SrtMode::Play, "live/cam"),
            ("cam", SrtMode::Play, "cam"),
            ("/live/cam/", SrtMode::Play, "live/cam"),
        ] {
            let id = parse(text);
            assert_eq!((id.mode, id.path.as_str()), (mode, path), "{text}");
            assert_eq!(id.key, None, "{text}");
        }
    }

    #[test]
    fn keys_slots_and_queries_are_split_off() {
        let id = parse("publish:live/cam?key=s3cret&slot=backup");
        assert_eq!(id.path, "live/cam");
        assert_eq!(id.key.as_deref(), Some("s3cret"));
        assert_eq!(id.slot.as_deref(), Some("backup"));
        let id = parse("#!::r=live/cam,m=publish,key=s3cret,slot=main,u=alice");
        assert_eq!(
            (id.path.as_str(), id.key.as_deref()),
            ("live/cam", Some("s3cret"))
        );
        assert_eq!(id.slot.as_deref(), Some("main"));
        let id = parse("#!::r=live/cam?key=inline,m=publish");
        assert_eq!(id.key.as_deref(), Some("inline"));
        let id = parse("play:live/cam?exp=9&sig=ff");
        assert_eq!(id.query.as_deref(), Some("exp=9&sig=ff"));
        assert_eq!(parse("cam?").query, None);
        // A name with a colon that is no mode stays a bare play of the whole text.
        assert_eq!(parse("other:cam").path, "other:cam");
    }

    #[test]
    fn what_cannot_be_served_is_refused_by_name() {
        for (text, error) in [
            ("", StreamIdError::NoResource),
            ("publish:", StreamIdError::NoResource),
            ("play:/?key=x", StreamIdError::NoResource),
            ("#!::m=publish", StreamIdError::NoResource),
            (
                "#!::r=cam,m=bidirectional",
                StreamIdError::UnsupportedMode("bidirectional".into()),
            ),
            ("cam\nx", StreamIdError::ControlCharacter),
        ] {
            assert_eq!(text.parse::<SrtStreamId>().unwrap_err(), error, "{text:?}");
        }
        let long = "a".repeat(513);
        assert_eq!(
            long.parse::<SrtStreamId>().unwrap_err(),
            StreamIdError::TooLong(513)
        );
    }

    #[test]
    fn debug_masks_the_key_and_the_query() {
        let text = format!("{:?}", parse("publish:live/cam?key=s3cret&sig=abcdef"));
        assert!(
            !text.contains("s3cret") && !text.contains("abcdef"),
            "{text}"
        );
        assert!(text.contains("live/cam"), "{text}");
    }
}
