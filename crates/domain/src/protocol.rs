//! The one input-URL classifier (SPEC §Domain "Input URL classifier").
//!
//! Validation, the coordinator, ingest and the API all call [`detect`]; nothing else looks at a
//! URL's scheme.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;
use tributary_media::StreamCode;
use url::Url;

/// What kind of source an input URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// An encoder publishes to our RTMP or SRT listener (`publish://`, or an RTMP/SRT URL with
    /// an empty or unspecified host).
    Push,
    /// RTMP(S) pull.
    Rtmp,
    /// SRT pull (caller).
    Srt,
    /// RTSP(S) pull.
    Rtsp,
    /// UDP listen socket (unicast or multicast), RTP or raw TS.
    Udp,
    /// HLS pull.
    Hls,
    /// A long HTTP GET read as MPEG-TS.
    HttpTs,
    /// A file on disk (paced in real time).
    File,
    /// In-process re-stream of another stream.
    Copy,
    /// In-process A/V mix of two streams.
    Mixer,
}

impl InputKind {
    /// The lower-case name used in messages and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Push => "push",
            Self::Rtmp => "rtmp",
            Self::Srt => "srt",
            Self::Rtsp => "rtsp",
            Self::Udp => "udp",
            Self::Hls => "hls",
            Self::HttpTs => "http-ts",
            Self::File => "file",
            Self::Copy => "copy",
            Self::Mixer => "mixer",
        }
    }

    /// Whether the input stays connected while not active by default (SPEC §Stream manager
    /// "Hot standby": UDP and push inputs are hot, pulls cold).
    pub fn hot_by_default(self) -> bool {
        matches!(self, Self::Udp | Self::Push)
    }
}

impl fmt::Display for InputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What to do when the audio side of a mixer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioFailure {
    /// The input ends (default).
    #[default]
    Down,
    /// Video goes on alone; audio rejoins when it returns.
    Continue,
}

/// The listener a push input is fed through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PushVia {
    /// `publish://`: the RTMP or the SRT listener.
    Any,
    /// An `rtmp://` or `rtmps://` URL with an unspecified host, or naming this server's own
    /// RTMP port and stream: the RTMP listener.
    Rtmp,
    /// `srt://` with an unspecified host: the SRT listener.
    Srt,
}

/// How a publisher reaches one push input of a stream (SPEC §Publisher "RTMP listener").
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushAddress {
    /// By the stream's name (`live/<code>`, or a multi-segment code in full): `publish://`,
    /// SRT push, and the loopback URL of this server's own listener and stream. `slot` is the
    /// name of a `publish://?slot=<name>` input, which a publisher selects with
    /// `?slot=<name>`; a publisher without `slot` gets the most preferred free input reached
    /// by name.
    Stream {
        /// The slot's name, if it has one.
        slot: Option<String>,
    },
    /// By its own routing key: the last path segment of a legacy `rtmp://0.0.0.0/<app>/<key>`
    /// input; a publisher to `rtmp://host/<app>/<key>` feeds it. A secret, like a stream key.
    Key(String),
}

/// A classified input URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputUrl {
    /// Published to one of our listeners.
    Push {
        /// The listener that feeds it.
        via: PushVia,
        /// How a publisher addresses it.
        address: PushAddress,
    },
    /// A network pull or listen URL (every kind but push, file, copy and mixer).
    Network {
        /// The kind.
        kind: InputKind,
        /// The parsed URL.
        url: Url,
    },
    /// A file: a VOD mount reference (`file://<mount>/<rel>`) or an absolute path.
    File {
        /// The VOD mount name, for `file://<mount>/<rel>`.
        mount: Option<String>,
        /// The path (relative to the mount, or absolute).
        path: String,
    },
    /// `copy://<code>`.
    Copy {
        /// The upstream stream.
        upstream: StreamCode,
    },
    /// `mixer://<video>,<audio>` or `mixer://<video>?audio=<audio>`.
    Mixer(Mixer),
}

/// What a `mixer://` URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mixer {
    /// The stream video comes from.
    pub video: StreamCode,
    /// The stream audio comes from.
    pub audio: StreamCode,
    /// What happens when audio ends.
    pub audio_failure: AudioFailure,
}

impl InputUrl {
    /// The kind of input.
    pub fn kind(&self) -> InputKind {
        match self {
            Self::Push { .. } => InputKind::Push,
            Self::Network { kind, .. } => *kind,
            Self::File { .. } => InputKind::File,
            Self::Copy { .. } => InputKind::Copy,
            Self::Mixer(_) => InputKind::Mixer,
        }
    }
}

/// Facts about this server that decide a few borderline URLs.
#[derive(Debug, Clone, Copy, Default)]
pub struct DetectContext<'a> {
    /// This server's RTMP listener port, if bound.
    pub rtmp_port: Option<u16>,
    /// The code of the stream the input belongs to.
    pub own_code: Option<&'a StreamCode>,
}

/// Why a URL could not be classified. The message is written to follow `inputs[i].url: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Empty URL.
    #[error("is empty")]
    Empty,
    /// The scheme is not one Tributary ingests.
    #[error("unknown scheme {0:?}")]
    UnknownScheme(String),
    /// The URL does not parse.
    #[error("invalid URL: {0}")]
    Invalid(String),
    /// A `copy://` URL is malformed.
    #[error("invalid copy URL: {0}")]
    Copy(String),
    /// A `mixer://` URL is malformed.
    #[error("invalid mixer URL: {0}")]
    Mixer(String),
}

/// Classifies an input URL (trimmed first).
pub fn detect(raw: &str, ctx: DetectContext<'_>) -> Result<InputUrl, UrlError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(UrlError::Empty);
    }
    if raw.starts_with('/') {
        return file_path(raw, None);
    }
    let Some((scheme, rest)) = raw.split_once("://") else {
        let scheme = raw.split(':').next().unwrap_or(raw);
        return Err(if raw.contains(':') {
            UrlError::UnknownScheme(scheme.to_ascii_lowercase())
        } else {
            UrlError::Invalid("no scheme (expected e.g. udp://, rtmp://, publish://)".into())
        });
    };
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "publish" => publish_url(rest),
        "copy" => copy_url(rest),
        "mixer" => mixer_url(rest),
        "file" => file_url(rest),
        "rtmp" | "rtmps" | "srt" | "rtsp" | "rtsps" | "udp" | "http" | "https" => {
            network(&scheme, raw, ctx)
        }
        _ => Err(UrlError::UnknownScheme(scheme)),
    }
}

fn network(scheme: &str, raw: &str, ctx: DetectContext<'_>) -> Result<InputUrl, UrlError> {
    // `udp://:5000` (any address) is common; the URL grammar wants a host.
    let parsed = match raw.split_once("://") {
        Some((_, rest)) if scheme == "udp" && rest.starts_with(':') => {
            Url::parse(&format!("udp://0.0.0.0{rest}"))
        }
        _ => Url::parse(raw),
    };
    let url = parsed.map_err(|e| UrlError::Invalid(e.to_string()))?;
    let host = url.host_str().unwrap_or("");
    let host_ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    let unspecified = host.is_empty() || host_ip.is_some_and(|ip| ip.is_unspecified());
    let kind = match scheme {
        "rtmp" | "rtmps" => {
            let key = url
                .path_segments()
                .and_then(|mut s| s.next_back())
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            if unspecified {
                // Without a key (`rtmp://0.0.0.0`), publishers reach it by the stream's name.
                let address = key.map_or(PushAddress::Stream { slot: None }, PushAddress::Key);
                return Ok(InputUrl::Push {
                    via: PushVia::Rtmp,
                    address,
                });
            }
            if scheme == "rtmp"
                && host_ip.is_some_and(|ip| ip.is_loopback())
                && is_own_listener(&url, key.as_deref(), ctx)
            {
                return Ok(InputUrl::Push {
                    via: PushVia::Rtmp,
                    address: PushAddress::Stream { slot: None },
                });
            }
            InputKind::Rtmp
        }
        "srt" => {
            if unspecified {
                return Ok(InputUrl::Push {
                    via: PushVia::Srt,
                    address: PushAddress::Stream { slot: None },
                });
            }
            InputKind::Srt
        }
        "rtsp" | "rtsps" => InputKind::Rtsp,
        "udp" => {
            if url.port().is_none() {
                return Err(UrlError::Invalid("udp:// needs a port".into()));
            }
            InputKind::Udp
        }
        _ => {
            if host.is_empty() {
                return Err(UrlError::Invalid("http(s):// needs a host".into()));
            }
            let path = url.path().to_ascii_lowercase();
            if path.ends_with(".m3u8") || path.ends_with(".m3u") {
                InputKind::Hls
            } else {
                InputKind::HttpTs
            }
        }
    };
    if kind != InputKind::Udp && host.is_empty() {
        return Err(UrlError::Invalid(format!("{scheme}:// needs a host")));
    }
    Ok(InputUrl::Network { kind, url })
}

/// A loopback RTMP URL naming this server's own RTMP port and this stream's own code stays a
/// push input (compatibility with open-streamer configs).
fn is_own_listener(url: &Url, key: Option<&str>, ctx: DetectContext<'_>) -> bool {
    let (Some(port), Some(code)) = (ctx.rtmp_port, ctx.own_code) else {
        return false;
    };
    let url_port = url.port().unwrap_or(1935);
    let path = url.path().trim_start_matches('/');
    let names_code = path == code.as_str()
        || path.strip_prefix("live/") == Some(code.as_str())
        || key == Some(code.as_str());
    url_port == port && names_code
}

/// `publish://`, or `publish://?slot=<name>` for one of several push inputs of a stream.
fn publish_url(rest: &str) -> Result<InputUrl, UrlError> {
    let (head, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !(head.is_empty() || head == "/") {
        return Err(UrlError::Invalid(
            "publish:// takes no host or path (publish:// or publish://?slot=<name>)".into(),
        ));
    }
    let mut slot = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("slot", name)) if is_slot_name(name) => slot = Some(name.to_owned()),
            Some(("slot", name)) => {
                return Err(UrlError::Invalid(format!(
                    "slot {name:?} must be 1 to 64 of A-Z a-z 0-9 _ -"
                )));
            }
            _ => {
                return Err(UrlError::Invalid(format!(
                    "publish:// takes only ?slot=<name>, got {pair:?}"
                )));
            }
        }
    }
    Ok(InputUrl::Push {
        via: PushVia::Any,
        address: PushAddress::Stream { slot },
    })
}

/// A push slot's name: what a publisher sends as `?slot=`.
pub fn is_slot_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn file_url(rest: &str) -> Result<InputUrl, UrlError> {
    if rest.starts_with('/') {
        return file_path(rest, None);
    }
    let (mount, rel) = rest.split_once('/').unwrap_or((rest, ""));
    if mount.is_empty() || rel.is_empty() {
        return Err(UrlError::Invalid(
            "file:// needs <mount>/<path> or an absolute path (file:///abs/path)".into(),
        ));
    }
    file_path(rel, Some(mount.to_owned()))
}

fn file_path(path: &str, mount: Option<String>) -> Result<InputUrl, UrlError> {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    if path.split(['/', '\\']).any(|seg| seg == "..") {
        return Err(UrlError::Invalid("file path may not contain \"..\"".into()));
    }
    if path.contains('\0') {
        return Err(UrlError::Invalid("file path may not contain NUL".into()));
    }
    Ok(InputUrl::File {
        mount,
        path: path.to_owned(),
    })
}

fn copy_url(rest: &str) -> Result<InputUrl, UrlError> {
    let code = rest.split(['?', '#']).next().unwrap_or("");
    if code.is_empty() {
        return Err(UrlError::Copy("missing stream code after copy://".into()));
    }
    let upstream = StreamCode::parse(code).map_err(|e| UrlError::Copy(e.to_string()))?;
    Ok(InputUrl::Copy { upstream })
}

fn mixer_url(rest: &str) -> Result<InputUrl, UrlError> {
    let (head, query) = match rest.split_once('?') {
        Some((h, q)) => (h, q),
        None => (rest, ""),
    };
    let head = head.split('#').next().unwrap_or(head);
    let mut audio_param = None;
    let mut audio_failure = AudioFailure::Down;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "audio" => audio_param = Some(v),
            "audio_failure" => {
                audio_failure = match v {
                    "down" => AudioFailure::Down,
                    "continue" => AudioFailure::Continue,
                    other => {
                        return Err(UrlError::Mixer(format!(
                            "audio_failure must be \"down\" or \"continue\", got {other:?}"
                        )));
                    }
                }
            }
            other => return Err(UrlError::Mixer(format!("unknown parameter {other:?}"))),
        }
    }
    let (video, audio) = match (head.split_once(','), audio_param) {
        (Some(_), Some(_)) => {
            return Err(UrlError::Mixer(
                "give the audio stream either after ',' or as ?audio=, not both".into(),
            ));
        }
        (Some((v, a)), None) => (v, a),
        (None, Some(a)) => (head, a),
        (None, None) => {
            return Err(UrlError::Mixer(
                "missing audio stream (mixer://<video>,<audio> or mixer://<video>?audio=<audio>)"
                    .into(),
            ));
        }
    };
    let video = StreamCode::parse(video).map_err(|e| UrlError::Mixer(format!("video: {e}")))?;
    let audio = StreamCode::parse(audio).map_err(|e| UrlError::Mixer(format!("audio: {e}")))?;
    Ok(InputUrl::Mixer(Mixer {
        video,
        audio,
        audio_failure,
    }))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn kind(raw: &str) -> Result<InputKind, UrlError> {
        detect(raw, DetectContext::default()).map(|u| u.kind())
    }

    #[test]
    fn classifies_every_form() {
        let cases = [
            ("publish://", InputKind::Push),
            ("publish://?slot=backup", InputKind::Push),
            ("rtmp://0.0.0.0/live/abc", InputKind::Push),
            ("rtmp:///live/abc", InputKind::Push),
            ("rtmp://[::]/live/abc", InputKind::Push),
            ("rtmp://cdn.example.org/live/abc", InputKind::Rtmp),
            ("rtmps://cdn.example.org/live/abc", InputKind::Rtmp),
            ("rtmp://127.0.0.1/live/abc", InputKind::Rtmp),
            ("srt://0.0.0.0:9999", InputKind::Push),
            ("srt://standby.example.org:7001?streamid=x", InputKind::Srt),
            ("rtsp://cam.local/stream1", InputKind::Rtsp),
            ("RTSPS://cam.local/stream1", InputKind::Rtsp),
            ("udp://239.1.1.1:5000", InputKind::Udp),
            ("udp://:5000", InputKind::Udp),
            ("http://o.example.org/a/master.m3u8", InputKind::Hls),
            ("https://o.example.org/a/LIVE.M3U?x=1", InputKind::Hls),
            ("http://o.example.org/live.ts", InputKind::HttpTs),
            ("file://vod1/movies/a.mp4", InputKind::File),
            ("file:///srv/media/a.ts", InputKind::File),
            ("/srv/media/a.ts", InputKind::File),
            ("copy://upstream", InputKind::Copy),
            ("copy://a/b?x=1", InputKind::Copy),
            ("mixer://v,a", InputKind::Mixer),
            ("mixer://v?audio=a&audio_failure=continue", InputKind::Mixer),
        ];
        for (raw, want) in cases {
            assert_eq!(kind(raw), Ok(want), "{raw}");
        }
    }

    #[test]
    fn rejects_bad_forms() {
        assert_eq!(
            kind("rtmq://x/y"),
            Err(UrlError::UnknownScheme("rtmq".into()))
        );
        assert_eq!(
            kind("s3://bucket/x"),
            Err(UrlError::UnknownScheme("s3".into()))
        );
        assert_eq!(kind(""), Err(UrlError::Empty));
        assert!(matches!(kind("udp://239.1.1.1"), Err(UrlError::Invalid(_))));
        assert!(matches!(
            kind("file://vod1/../etc/passwd"),
            Err(UrlError::Invalid(_))
        ));
        assert!(matches!(kind("/srv/../etc"), Err(UrlError::Invalid(_))));
        assert!(matches!(kind("copy://"), Err(UrlError::Copy(_))));
        assert!(matches!(kind("copy://a//b"), Err(UrlError::Copy(_))));
        assert!(matches!(kind("mixer://v"), Err(UrlError::Mixer(_))));
        assert!(matches!(
            kind("mixer://v,a?audio=b"),
            Err(UrlError::Mixer(_))
        ));
        assert!(matches!(
            kind("mixer://v,a?audio_failure=maybe"),
            Err(UrlError::Mixer(_))
        ));
        assert!(matches!(kind("publish://host"), Err(UrlError::Invalid(_))));
        assert!(matches!(
            kind("publish://?slot=a b"),
            Err(UrlError::Invalid(_))
        ));
        assert!(matches!(
            kind("publish://?key=x"),
            Err(UrlError::Invalid(_))
        ));
        assert!(matches!(kind("nonsense"), Err(UrlError::Invalid(_))));
    }

    #[test]
    fn mixer_parts() {
        let url = detect(
            "mixer://sports/cam?audio=radio&audio_failure=continue",
            DetectContext::default(),
        )
        .unwrap();
        let InputUrl::Mixer(Mixer {
            video,
            audio,
            audio_failure,
        }) = url
        else {
            panic!("not a mixer");
        };
        assert_eq!(video.as_str(), "sports/cam");
        assert_eq!(audio.as_str(), "radio");
        assert_eq!(audio_failure, AudioFailure::Continue);
    }

    #[test]
    fn loopback_own_listener_is_push() {
        let code = StreamCode::parse("cam1").unwrap();
        let ctx = DetectContext {
            rtmp_port: Some(1935),
            own_code: Some(&code),
        };
        let own = detect("rtmp://127.0.0.1:1935/live/cam1", ctx).unwrap();
        assert_eq!(own.kind(), InputKind::Push);
        let other = detect("rtmp://127.0.0.1:1935/live/cam2", ctx).unwrap();
        assert_eq!(other.kind(), InputKind::Rtmp);
        let other_port = detect("rtmp://127.0.0.1:1936/live/cam1", ctx).unwrap();
        assert_eq!(other_port.kind(), InputKind::Rtmp);
    }

    proptest! {
        #[test]
        fn detect_never_panics(raw in "\\PC{0,80}") {
            let _ = detect(&raw, DetectContext::default());
        }
    }
}
