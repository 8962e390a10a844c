//! Decoding and validation of stream records, with errors that name the JSON path.
//!
//! A stream enters the system from outside through [`decode_record`], which strips the
//! read-only fields a client may echo back from a GET and decodes strictly (unknown field →
//! `UNKNOWN_FIELD` naming its path), then [`parse_stream`], which turns the record into the
//! [`StreamSpec`] the engine runs, or names every failing field ([`decode_stream`] does both). Records loaded from the
//! store go through [`parse_stream`] too. What the running build cannot do yet is described by
//! [`Support`] and rejected with `UNSUPPORTED`, never accepted silently.

use std::collections::HashSet;
use std::fmt;

use serde::Serialize;
use serde_json::Value;
use tributary_media::StreamCode;

use crate::ffmpeg::{Audio, AudioCodec, Hw, Ladder, Overlay, ParseContext};
use crate::protocol::InputKind;
use crate::spec::{self, PushSpec, StreamSpec, Transcode};
use crate::stream::Stream;

/// The machine-readable code of a validation failure (SPEC §API status table, 422 row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ErrorCode {
    /// A field the schema does not know.
    UnknownField,
    /// A value of the wrong type or out of range.
    InvalidField,
    /// A malformed or reserved stream code.
    InvalidCode,
    /// An input URL that does not classify.
    InvalidInputUrl,
    /// Priorities are not `0..N-1` in array order.
    InvalidInputPriority,
    /// Two inputs with the same URL.
    DuplicateInput,
    /// A watermark that cannot be drawn.
    InvalidWatermark,
    /// An unknown transcoder mode.
    InvalidTranscoderMode,
    /// A malformed `copy://` URL.
    InvalidCopyUrl,
    /// A `copy://` input in a shape that cannot work.
    InvalidCopyShape,
    /// A malformed `mixer://` URL.
    InvalidMixerUrl,
    /// A `mixer://` input in a shape that cannot work.
    InvalidMixerShape,
    /// The referenced template does not exist.
    TemplateNotFound,
    /// A malformed template prefix.
    InvalidPrefix,
    /// Well-formed, but this build does not implement it yet.
    Unsupported,
    /// A saved `transcoder.ffmpeg_path` whose binary the probe finds unusable (missing, not
    /// FFmpeg, a required encoder or muxer absent, too slow).
    FfmpegUnusable,
}

impl ErrorCode {
    /// The code as it appears in API errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownField => "UNKNOWN_FIELD",
            Self::InvalidField => "INVALID_FIELD",
            Self::InvalidCode => "INVALID_CODE",
            Self::InvalidInputUrl => "INVALID_INPUT_URL",
            Self::InvalidInputPriority => "INVALID_INPUT_PRIORITY",
            Self::DuplicateInput => "DUPLICATE_INPUT",
            Self::InvalidWatermark => "INVALID_WATERMARK",
            Self::InvalidTranscoderMode => "INVALID_TRANSCODER_MODE",
            Self::InvalidCopyUrl => "INVALID_COPY_URL",
            Self::InvalidCopyShape => "INVALID_COPY_SHAPE",
            Self::InvalidMixerUrl => "INVALID_MIXER_URL",
            Self::InvalidMixerShape => "INVALID_MIXER_SHAPE",
            Self::TemplateNotFound => "TEMPLATE_NOT_FOUND",
            Self::InvalidPrefix => "INVALID_PREFIX",
            Self::Unsupported => "UNSUPPORTED",
            Self::FfmpegUnusable => "FFMPEG_UNUSABLE",
        }
    }
}

/// One failing field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON path of the field (`inputs[1].url`).
    pub path: String,
    /// What kind of failure.
    #[serde(skip)]
    pub code: ErrorCode,
    /// Human-readable reason, without the path.
    pub message: String,
}

impl FieldError {
    /// A failure at `path`.
    pub fn new(path: impl Into<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every failing field of one record, in document order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// The code reported for the whole request: the first field's.
    pub fn code(&self) -> ErrorCode {
        self.0.first().map_or(ErrorCode::InvalidField, |e| e.code)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for e in &self.0 {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The largest thumbnail side, pixels: 4K.
const MAX_THUMBNAIL_SIDE: u32 = 3840;
/// The longest time between thumbnails, seconds: a day.
const MAX_THUMBNAIL_INTERVAL: u32 = 86_400;

/// What the running build implements. Anything outside it is rejected with `UNSUPPORTED`.
///
/// The engine builds this from the crates that have landed, so validation always tells the
/// truth about what a stream can do.
#[derive(Debug, Clone, Default)]
pub struct Support {
    /// Input kinds with a working ingest path.
    pub inputs: Vec<InputKind>,
    /// HLS output.
    pub hls: bool,
    /// DASH output.
    pub dash: bool,
    /// RTSP play.
    pub rtsp: bool,
    /// RTMP play.
    pub rtmp: bool,
    /// SRT play.
    pub srt: bool,
    /// RTMP(S) push-out.
    pub push: bool,
    /// FFmpeg transcoding.
    pub transcoder: bool,
    /// Recording.
    pub dvr: bool,
    /// Thumbnails.
    pub thumbnail: bool,
    /// Templates.
    pub templates: bool,
    /// Push inputs through the SRT listener (`srt://0.0.0.0:<port>`).
    pub srt_listener: bool,
    /// This server's bound RTMP listener port, for the loopback-own-listener URL rule
    /// (SPEC §Domain "Input URL classifier"); `None` while no RTMP listener is bound.
    pub rtmp_port: Option<u16>,
    /// The roots in force for this parse ([`crate::roots::LiveRoots::get`]'s snapshot; the
    /// engine takes it from its one handle at each parse): file inputs must lie inside
    /// `file_input` (empty: anywhere), checked on the path as written here, and ingest checks
    /// it again on the path as resolved when it opens the file; a `dvr.storage_path` inside
    /// `storage` (SPEC §Security "File serving"; empty: any absolute path), checked on the
    /// path as written (no `..`), and the DVR resolves it again.
    pub roots: std::sync::Arc<crate::roots::Roots>,
    /// The VOD mounts by name, with their storage: `file://<mount>/<path>` inputs resolve
    /// through them (an unknown mount is a 422 naming the input).
    pub vod_mounts: std::collections::BTreeMap<String, std::path::PathBuf>,
    /// What parsing a transcoder needs: the hardware backends the FFmpeg probe found and
    /// whether `security.unsafe_extra_args` lifts the `extra_args` deny-list.
    pub ffmpeg: ParseContext,
}

impl Support {
    /// Every feature on and an RTMP listener on 1935: what tests and tools that check
    /// records away from a running server parse against.
    pub fn everything() -> Self {
        Self {
            inputs: vec![
                InputKind::Push,
                InputKind::Rtmp,
                InputKind::Srt,
                InputKind::Rtsp,
                InputKind::Udp,
                InputKind::Hls,
                InputKind::HttpTs,
                InputKind::File,
                InputKind::Copy,
                InputKind::Mixer,
            ],
            hls: true,
            dash: true,
            rtsp: true,
            rtmp: true,
            srt: true,
            push: true,
            transcoder: true,
            dvr: true,
            thumbnail: true,
            templates: true,
            srt_listener: true,
            rtmp_port: Some(1935),
            roots: Default::default(),
            vod_mounts: Default::default(),
            ffmpeg: ParseContext {
                hw: Hw::ALL.to_vec(),
                unsafe_extra_args: false,
            },
        }
    }
}

/// Decodes a stream body for `code` and parses it ([`decode_record`], then [`parse_stream`]).
/// Returns the spec and the warnings to show next to it (legacy fields ignored, inert
/// settings).
pub fn decode_stream(
    code: &StreamCode,
    body: Value,
    support: &Support,
) -> Result<(StreamSpec, Vec<String>), ValidationErrors> {
    parse_stream(decode_record(code, body)?, support)
}

/// Decodes a stream body for `code` into the record as written, strictly (an unknown field
/// or a wrong type names its path), without applying SPEC's rules: the API puts stored
/// secrets back into a body that echoes their mask before [`parse_stream`] reads it.
///
/// The body's own `code` and the read-only fields a client may echo back from a GET
/// (`runtime`, `source`, `status`) are ignored.
pub fn decode_record(code: &StreamCode, mut body: Value) -> Result<Stream, ValidationErrors> {
    let map = object_body(&mut body, "a stream")?;
    for ignored in ["code", "runtime", "source", "status"] {
        map.remove(ignored);
    }
    map.insert("code".into(), Value::String(code.as_str().to_owned()));
    let mut capped = Vec::new();
    check_caps(&body, &mut String::new(), &mut capped);
    if !capped.is_empty() {
        return Err(ValidationErrors(capped));
    }
    decode_strict(body)
}

/// SPEC §Security "Field caps": `name` ≤ 256 characters, `description` ≤ 4 KiB, `tags` ≤ 64
/// of ≤ 64 characters, `inputs` ≤ 32, `push` ≤ 64, `transcoder.video.profiles` ≤ 16, and
/// every other string (URLs, map keys and values included) ≤ 4 KiB. Checked on the JSON before
/// it is decoded, so an oversized record costs nothing past its body; every field over its
/// cap is named.
fn check_caps(value: &Value, path: &mut String, errors: &mut Vec<FieldError>) {
    let mut over = |path: &str, message: String| {
        errors.push(FieldError::new(path, ErrorCode::InvalidField, message));
    };
    match value {
        Value::String(text) => {
            let (cap, chars) = match path.as_str() {
                "name" => (MAX_NAME_CHARS, true),
                p if p.starts_with("tags[") => (MAX_TAG_CHARS, true),
                _ => (MAX_STRING_BYTES, false),
            };
            let len = if chars {
                text.chars().count()
            } else {
                text.len()
            };
            if len > cap {
                let unit = if chars { "characters" } else { "bytes" };
                over(path, format!("at most {cap} {unit}, got {len}"));
            }
        }
        Value::Array(items) => {
            let cap = match path.as_str() {
                "tags" => Some(MAX_TAGS),
                "inputs" => Some(MAX_INPUTS),
                "push" => Some(MAX_PUSH),
                "transcoder.video.profiles" => Some(MAX_PROFILES),
                _ => None,
            };
            if let Some(cap) = cap
                && items.len() > cap
            {
                over(path, format!("at most {cap} items, got {}", items.len()));
                return;
            }
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_caps(item, path, errors);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                if key.len() > MAX_STRING_BYTES {
                    errors.push(FieldError::new(
                        path.as_str(),
                        ErrorCode::InvalidField,
                        format!(
                            "a key of at most {MAX_STRING_BYTES} bytes, got {}",
                            key.len()
                        ),
                    ));
                } else {
                    check_caps(item, path, errors);
                }
                path.truncate(len);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The rung a push target's `profile` names: `""` (or blanks) → `None`, the playback feed;
/// a rung name ([`rung_index`]) → `Some(N − 1)`. Anything else is an error message.
fn push_rung(profile: &str) -> Result<Option<u16>, String> {
    let profile = profile.trim();
    if profile.is_empty() {
        return Ok(None);
    }
    match rung_index(profile).and_then(|i| u16::try_from(i).ok()) {
        Some(index) => Ok(Some(index)),
        None => Err(format!(
            "must be \"\" (the playback feed) or track_<N> naming a rung of this stream's \
             ladder (track_1 … track_{MAX_PROFILES}), got {profile:?}"
        )),
    }
}

/// The rung index a rung name stands for: `track_<N>` with N in 1..=16 (a ladder has at most
/// 16 profiles; no sign, no leading zero: the name the HLS variant path uses) → N − 1. The name alone; whether
/// the stream's ladder has that rung is [`track_rung`].
pub fn rung_index(name: &str) -> Option<usize> {
    name.strip_prefix("track_")
        .filter(|n| !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| (1..=MAX_PROFILES).contains(n))
        .map(|n| n - 1)
}

/// Why a rung name names no rung of a ladder ([`track_rung`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RungError {
    /// Not a rung name ([`rung_index`]).
    NotARungName,
    /// A rung name, but the stream has no ladder.
    NoLadder,
    /// A rung past the last of the ladder's `rungs`.
    NotInLadder {
        /// How many rungs the ladder has.
        rungs: usize,
    },
}

/// The one check that `name` names a rung of a ladder of `rungs` rungs (0: the stream has
/// none), for a push target's `profile` ([`check_push_profiles`]) and the rung a transcoder
/// fault kills (`POST /debug/fault`): the rung's index, or why not, which each caller words
/// for its field.
pub fn track_rung(name: &str, rungs: usize) -> Result<usize, RungError> {
    let index = rung_index(name).ok_or(RungError::NotARungName)?;
    match rungs {
        0 => Err(RungError::NoLadder),
        _ if index >= rungs => Err(RungError::NotInLadder { rungs }),
        _ => Ok(index),
    }
}

/// SPEC §Security "Field caps".
const MAX_NAME_CHARS: usize = 256;
const MAX_TAG_CHARS: usize = 64;
const MAX_STRING_BYTES: usize = 4096;
const MAX_TAGS: usize = 64;
const MAX_INPUTS: usize = 32;
const MAX_PUSH: usize = 64;
const MAX_PROFILES: usize = 16;

/// The fewest characters a `stream_key` may have when a write sets it (issue 13 item 8: a key
/// that resists guessing; publishes with a wrong key are also slowed down per address).
pub const MIN_STREAM_KEY_CHARS: usize = 10;

/// The rules a write (API `POST`, `PUT`, `PATCH`) checks on the record it would store, after
/// the stored secrets are put back where the body echoed their mask, and that
/// [`parse_stream`] does not: a record stored before a rule existed still loads at boot.
///
/// Today one rule: a `stream_key` is empty (no key) or at least [`MIN_STREAM_KEY_CHARS`]
/// characters. The error never quotes the key.
pub fn check_write(stream: &Stream) -> Vec<FieldError> {
    let chars = stream.stream_key.chars().count();
    if chars == 0 || chars >= MIN_STREAM_KEY_CHARS {
        return Vec::new();
    }
    vec![FieldError::new(
        "stream_key",
        ErrorCode::InvalidField,
        format!(
            "must be at least {MIN_STREAM_KEY_CHARS} characters (a key that resists guessing), \
             got {chars}; \"\" for no key"
        ),
    )]
}

/// The write rule on a parsed, template-resolved record's push targets (SPEC §Push, §Domain
/// `Push.profile`): a target's `profile` `track_<N>` names a rung of this stream's own ladder,
/// `track_1` … `track_<rungs>`, one rung per `transcoder.video.profiles` entry (`video.copy`
/// with no profiles: one, `track_1`). A stream without a ladder (`transcoder` null, or
/// `video.copy` and `audio.copy`: passthrough, ABR copies included) has no rung to push.
///
/// A write rule, not a parse rule: a template edit can take a rung away from streams that
/// push it; they still load, and the target shows `failed` with the reason until the rung
/// comes back (`push.state_changed`), rather than the whole stream refusing to update.
/// Every failing target is named (`push[i].profile`); disabled targets are checked too.
pub fn check_push_profiles(spec: &StreamSpec) -> Vec<FieldError> {
    let rungs = spec.transcode().map_or(0, |t| t.ladder.rungs.len());
    let mut errors = Vec::new();
    for (i, target) in spec.pushes().iter().enumerate() {
        if target.rung.is_none() {
            continue;
        }
        let profile = target.push.profile.trim();
        let why = match track_rung(profile, rungs) {
            Ok(_) => continue,
            Err(RungError::NoLadder) => format!(
                "{profile:?} names a rung of an ABR ladder, but this stream has none (no \
                 transcoder runs FFmpeg: transcoder is null, or video.copy and audio.copy are \
                 both set); use \"\" to push the playback feed"
            ),
            Err(_) => {
                let last = if rungs == 1 {
                    "track_1".to_owned()
                } else {
                    format!("track_1 … track_{rungs}")
                };
                format!(
                    "{profile:?} is not a rung of this stream's ladder, which has {last} (one \
                     per transcoder.video.profiles entry)"
                )
            }
        };
        errors.push(FieldError::new(
            format!("push[{i}].profile"),
            ErrorCode::InvalidField,
            why,
        ));
    }
    errors
}

/// The members of a record body, or the error naming `$` when it is not a JSON object
/// (`what`: "a stream", "a template", ...).
pub(crate) fn object_body<'b>(
    body: &'b mut Value,
    what: &str,
) -> Result<&'b mut serde_json::Map<String, Value>, ValidationErrors> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ValidationErrors(vec![FieldError::new(
            "$",
            ErrorCode::InvalidField,
            format!("{what} must be a JSON object"),
        )])),
    }
}

/// Decodes `body` strictly into `T`: an unknown field or a wrong type is the one error,
/// naming its JSON path ([`decode_error`]).
pub(crate) fn decode_strict<T: serde::de::DeserializeOwned>(
    body: Value,
) -> Result<T, ValidationErrors> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        ValidationErrors(vec![decode_error(path, e.inner().to_string())])
    })
}

/// Maps a serde error to a field error with the right code.
pub(crate) fn decode_error(path: String, message: String) -> FieldError {
    let path = if path == "." || path.is_empty() {
        "$".to_owned()
    } else {
        path
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or("");
        let path = if path == "$" || path.ends_with(field) {
            path
        } else {
            format!("{path}.{field}")
        };
        let path = if path == "$" { field.to_owned() } else { path };
        return FieldError::new(
            path,
            ErrorCode::UnknownField,
            format!("unknown field {field:?}"),
        );
    }
    let code = if path.ends_with("transcoder.mode") {
        ErrorCode::InvalidTranscoderMode
    } else {
        ErrorCode::InvalidField
    };
    FieldError::new(path, code, message)
}

/// Parses a decoded or stored stream record into the [`StreamSpec`] the engine runs: every
/// input classified and its options parsed (`crate::spec`), every SPEC rule checked against
/// what `support` says this build (and this server: its RTMP port) can do. Deterministic: a
/// record parses the same at save and when loaded at boot, given the same `support`.
///
/// Returns the spec and the warnings to show next to it (legacy fields ignored, inert
/// settings), or every failing field in document order.
pub fn parse_stream(
    stream: Stream,
    support: &Support,
) -> Result<(StreamSpec, Vec<String>), ValidationErrors> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();

    if stream.template.is_some() && !support.templates {
        errors.push(FieldError::new(
            "template",
            ErrorCode::Unsupported,
            "templates are not supported yet",
        ));
    }

    let inputs = spec::parse_inputs(&stream, support, &mut errors, &mut warnings);

    // The watermark is parsed first (the ladder draws it) and reported in its own place.
    let (overlay, overlay_errors) = match stream.watermark.as_ref().filter(|w| w.enabled) {
        None => (None, Vec::new()),
        Some(w) => match Overlay::parse(w) {
            Ok(overlay) => (Some(overlay), Vec::new()),
            Err(e) => (None, e),
        },
    };
    let mut ladder = None;
    if let Some(t) = &stream.transcoder {
        if support.transcoder {
            match Ladder::parse(t, overlay.as_ref(), &support.ffmpeg) {
                Ok((parsed, w)) => {
                    ladder = parsed;
                    warnings.extend(w);
                }
                Err(e) => errors.extend(e),
            }
        } else {
            errors.push(FieldError::new(
                "transcoder",
                ErrorCode::Unsupported,
                "transcoding is not supported yet (set \"transcoder\": null for passthrough)",
            ));
        }
    }

    let p = stream.protocols();
    for (name, on, supported) in [
        ("hls", p.hls, support.hls),
        ("dash", p.dash, support.dash),
        ("rtsp", p.rtsp, support.rtsp),
        ("rtmp", p.rtmp, support.rtmp),
        ("srt", p.srt, support.srt),
    ] {
        if on && !supported {
            errors.push(FieldError::new(
                format!("protocols.{name}"),
                ErrorCode::Unsupported,
                format!("{name} output is not supported yet"),
            ));
        }
    }

    let mut push_urls = HashSet::new();
    let mut pushes = Vec::with_capacity(stream.push.len());
    for (i, target) in stream.push.iter().enumerate() {
        let rung = match push_rung(&target.profile) {
            Ok(rung) => rung,
            Err(why) => {
                errors.push(FieldError::new(
                    format!("push[{i}].profile"),
                    ErrorCode::InvalidField,
                    why,
                ));
                None
            }
        };
        let path = format!("push[{i}].url");
        let scheme = target
            .url
            .trim()
            .split("://")
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if !matches!(scheme.as_str(), "rtmp" | "rtmps") || !target.url.contains("://") {
            errors.push(FieldError::new(
                path,
                ErrorCode::Unsupported,
                format!("push targets must be rtmp:// or rtmps:// URLs, got scheme {scheme:?}"),
            ));
            continue;
        }
        if !push_urls.insert(target.url.trim().to_owned()) {
            errors.push(FieldError::new(
                path,
                ErrorCode::InvalidField,
                "duplicate push URL",
            ));
            continue;
        }
        if !support.push {
            errors.push(FieldError::new(
                path,
                ErrorCode::Unsupported,
                "push targets are not supported yet",
            ));
            continue;
        }
        match spec::kinds::rtmp_url(&target.url) {
            Ok(url) => pushes.push(PushSpec {
                push: target.clone(),
                target: url,
                rung,
            }),
            Err(why) => errors.push(FieldError::new(path, ErrorCode::InvalidField, why)),
        }
    }

    if stream.dvr.as_ref().is_some_and(|d| d.enabled) && !support.dvr {
        errors.push(FieldError::new(
            "dvr.enabled",
            ErrorCode::Unsupported,
            "DVR is not supported yet",
        ));
    }
    if let Some(d) = &stream.dvr
        && !d.storage_path.is_empty()
    {
        let path = std::path::Path::new(&d.storage_path);
        if !crate::roots::plain_absolute(path) {
            errors.push(FieldError::new(
                "dvr.storage_path",
                ErrorCode::InvalidField,
                "must be an absolute path without '..'",
            ));
        } else if !support.roots.storage.is_empty()
            && !support
                .roots
                .storage
                .iter()
                .any(|root| path.starts_with(root))
        {
            errors.push(FieldError::new(
                "dvr.storage_path",
                ErrorCode::InvalidField,
                "must lie inside security.storage_roots (default: the data directory)",
            ));
        }
    }
    if let Some(d) = &stream.dvr
        && (d.max_size_gb < 0.0 || !d.max_size_gb.is_finite())
    {
        errors.push(FieldError::new(
            "dvr.max_size_gb",
            ErrorCode::InvalidField,
            "must be ≥ 0",
        ));
    }
    if let Some(t) = &stream.thumbnail {
        if t.enabled && !support.thumbnail {
            errors.push(FieldError::new(
                "thumbnail.enabled",
                ErrorCode::Unsupported,
                "thumbnails are not supported yet",
            ));
        }
        if t.quality > 31 {
            errors.push(FieldError::new(
                "thumbnail.quality",
                ErrorCode::InvalidField,
                "must be 1–31 (0 = default 5)",
            ));
        }
        for (field, value, max) in [
            ("width", t.width, MAX_THUMBNAIL_SIDE),
            ("height", t.height, MAX_THUMBNAIL_SIDE),
            ("interval_sec", t.interval_sec, MAX_THUMBNAIL_INTERVAL),
        ] {
            if value > max {
                errors.push(FieldError::new(
                    format!("thumbnail.{field}"),
                    ErrorCode::InvalidField,
                    format!("must be at most {max} (0 = default), got {value}"),
                ));
            }
        }
    }
    errors.extend(overlay_errors);
    if stream.watermark.as_ref().is_some_and(|w| w.enabled) && stream.transcoder.is_none() {
        warnings
            .push("watermark needs a transcoder; it has no effect on a passthrough stream".into());
    }

    // Every rung, and so the playback feed, carries the ladder's audio; RTMP carries AAC or
    // MP3 only (SPEC §Publisher codec table), so a push target would get no sound.
    if let Some(Audio::Encode(encode)) = ladder.as_ref().map(|l| &l.audio)
        && matches!(encode.codec, AudioCodec::Opus | AudioCodec::Ac3)
    {
        for (i, _) in stream.push.iter().enumerate().filter(|(_, p)| p.enabled) {
            warnings.push(format!(
                "push[{i}]: RTMP carries AAC or MP3 audio, and the ladder encodes {}: this \
                 target gets no sound (transcoder.audio.codec \"aac\" gives it sound)",
                encode.codec.encoder()
            ));
        }
    }
    if errors.is_empty() {
        let transcode = ladder.map(|ladder| Transcode { ladder, overlay });
        Ok((StreamSpec::new(stream, inputs, pushes, transcode), warnings))
    } else {
        Err(ValidationErrors(errors))
    }
}

#[cfg(test)]
mod tests;
