//! FFmpeg: a stream's `transcoder` parsed into a [`Ladder`], and the pure argument builder
//! that turns a ladder into the argv of each FFmpeg process (SPEC §Transcoder).
//!
//! The record is parsed once, at save and when loaded (by
//! [`parse_stream`](crate::validate::parse_stream)), so every value that reaches an argv has
//! been checked there with an error naming its JSON path: encoder names, presets (translated
//! into the encoder's family), sizes, rates, audio settings, `extra_args` against SPEC's
//! deny-list, and the watermark ([`Overlay`]). [`argv`] then cannot fail: it is a function of
//! the ladder, the job (every rung in `multi` mode, one rung in `per_profile` mode) and the
//! few facts only known at start ([`Context`]: the source frame rate, the HLS segment length,
//! where the watermark's file is).
//!
//! The argv keeps every rung aligned: timestamps pass through (`-copyts`, the muxer's own
//! `-mpegts_copyts 1`), keyframes are forced on one grid of absolute PTS instants (every
//! keyframe interval) that every rung and every process shares, and scene-cut keyframes are
//! off on multi-rung ladders, so HLS segments of all rungs cut at the same instants.
//!
//! ```
//! use tributary_domain::ffmpeg::{Context, Job, Ladder, ParseContext, argv};
//! use tributary_domain::Transcoder;
//!
//! let transcoder: Transcoder = serde_json::from_value(serde_json::json!({
//!     "video": {"profiles": [{"width": 1280, "height": 720, "bitrate": 3000}]}
//! })).unwrap();
//! let (ladder, warnings) = Ladder::parse(&transcoder, None, &ParseContext::default()).unwrap();
//! let ladder = ladder.unwrap();
//! assert!(warnings.is_empty());
//! let args = argv(&ladder, Job::Ladder, &Context::new(2.0));
//! assert_eq!(args.last().map(String::as_str), Some("pipe:3"));
//! assert!(args.windows(2).any(|w| w[0] == "-c:v" && w[1] == "libx264"));
//! ```

mod argv;
mod encoder;
mod escape;
mod overlay;
mod thumbnail;

pub use argv::{Context, FIRST_OUTPUT_FD, Job, OverlayInput, PROGRESS_FD, argv};
pub use encoder::{EncoderError, Family, Hw, Preset, UnknownPreset, VideoEncoder};
pub use escape::filter_value;
pub use overlay::{ImageSource, Overlay, OverlayKind, Position};
pub use thumbnail::ThumbnailSpec;

use crate::stream::{AudioSettings, Transcoder, TranscoderMode, VideoProfile};
use crate::validate::{ErrorCode, FieldError};

/// A transcoder that runs FFmpeg, parsed: what [`argv`] builds from.
#[derive(Debug, Clone, PartialEq)]
pub struct Ladder {
    /// One FFmpeg for the whole ladder, or one per rung.
    pub mode: Mode,
    /// Decoding and scaling backend.
    pub hw: Hw,
    /// `global.deviceid`: which device of the backend.
    pub device: u32,
    /// `decoder.name`: the input decoder (`-c:v` before `-i`); `None` = FFmpeg's choice.
    pub decoder: Option<String>,
    /// `video.interlace`: deinterlace with this field order; `None` = progressive.
    pub deinterlace: Option<Parity>,
    /// `global.gop`: GOP in frames for every rung; `None` = from each keyframe interval.
    pub gop: Option<u32>,
    /// The rungs; rung *i* is `track_{i+1}`.
    pub rungs: Vec<Rung>,
    /// Audio of every rung.
    pub audio: Audio,
    /// `audio.language`: written as the audio track's language.
    pub language: Option<String>,
    /// Appended to every output, each one argv item; checked against the deny-list.
    pub extra_args: Vec<String>,
}

impl Ladder {
    /// Whether some rung forces keyframes every `publisher.hls.live_segment_sec`: an encoded
    /// rung without a `keyframe_interval` of its own, and no `global.gop` (SPEC §Transcoder
    /// "VideoProfile": `keyframe_interval` 0 → the HLS segment length). Such a ladder's
    /// FFmpeg restarts when the segment length changes.
    pub fn gop_follows_segment(&self) -> bool {
        self.gop.is_none()
            && self
                .rungs
                .iter()
                .filter_map(Rung::encode)
                .any(|e| e.keyframe_interval.is_none())
    }

    /// Parses a transcoder (and the stream's enabled watermark, already parsed). `Ok(None)`:
    /// no FFmpeg runs (`video.copy && audio.copy`). Warnings (presets dropped or translated
    /// away, GPU resize falling back to `fit`, settings without effect) are appended to the
    /// second value; every failing field is named under `transcoder.`.
    pub fn parse(
        t: &Transcoder,
        overlay: Option<&Overlay>,
        ctx: &ParseContext,
    ) -> Result<(Option<Self>, Vec<String>), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        if !t.needs_ffmpeg() {
            return Ok((None, warnings));
        }
        let mut bad = |path: &str, message: String| {
            errors.push(FieldError::new(
                format!("transcoder.{path}"),
                ErrorCode::InvalidField,
                message,
            ));
        };

        let hw = match Hw::parse(&t.global.hw) {
            None => {
                bad(
                    "global.hw",
                    format!(
                        "unknown hardware backend {:?}: use none, nvenc, vaapi, qsv or \
                         videotoolbox",
                        t.global.hw
                    ),
                );
                Hw::None
            }
            Some(hw) if hw != Hw::None && !ctx.hw.contains(&hw) => {
                bad(
                    "global.hw",
                    format!("hardware backend {hw} is not available on this host"),
                );
                hw
            }
            Some(hw) => hw,
        };
        let decoder = match t.decoder.name.as_str() {
            "" => None,
            name if is_word(name, 64) => Some(name.to_owned()),
            name => {
                bad(
                    "decoder.name",
                    format!("{name:?} is not a decoder name (letters, digits, '_' only)"),
                );
                None
            }
        };
        let deinterlace = match t.video.interlace.as_str() {
            "" | "progressive" => None,
            "auto" => Some(Parity::Auto),
            "tff" => Some(Parity::Tff),
            "bff" => Some(Parity::Bff),
            other => {
                bad(
                    "video.interlace",
                    format!("must be \"\", auto, tff, bff or progressive, got {other:?}"),
                );
                None
            }
        };
        if t.global.fps > 240 {
            bad("global.fps", "must be at most 240".into());
        }
        if t.video.profiles.len() > MAX_PROFILES {
            bad(
                "video.profiles",
                format!(
                    "at most {MAX_PROFILES} profiles, got {}",
                    t.video.profiles.len()
                ),
            );
        }

        let rungs: Vec<Rung> = if t.video.copy {
            if overlay.is_some() {
                warnings.push("watermark has no effect with video.copy".to_owned());
            }
            vec![Rung::Copy; t.video.profiles.len().max(1)]
        } else {
            let global_fps = (t.global.fps > 0).then(|| f64::from(t.global.fps));
            t.video
                .profiles
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    let path = format!("transcoder.video.profiles[{i}]");
                    let parsed = parse_profile(&path, p, hw, global_fps, &mut warnings);
                    parsed.map_err(|e| errors.extend(e)).ok().map(Rung::Encode)
                })
                .collect()
        };
        if !t.video.copy && t.video.profiles.is_empty() {
            errors.push(FieldError::new(
                "transcoder.video.profiles",
                ErrorCode::InvalidField,
                "a transcoder needs at least one profile unless video.copy is set",
            ));
        }
        if overlay.is_some() && matches!(hw, Hw::Vaapi | Hw::Qsv) {
            errors.push(FieldError::new(
                "watermark.enabled",
                ErrorCode::Unsupported,
                format!("watermarks with hw {hw} are not supported yet (use nvenc or none)"),
            ));
        }

        let audio = parse_audio(&t.audio, &mut errors, &mut warnings);
        let language = match t.audio.language.as_str() {
            "" => None,
            tag if tag.len() <= 16
                && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                Some(tag.to_owned())
            }
            tag => {
                errors.push(FieldError::new(
                    "transcoder.audio.language",
                    ErrorCode::InvalidField,
                    format!("{tag:?} is not a language tag (letters, digits and '-')"),
                ));
                None
            }
        };
        for (i, arg) in t.extra_args.iter().enumerate() {
            if let Some(why) = denied(arg, ctx.unsafe_extra_args) {
                errors.push(FieldError::new(
                    format!("transcoder.extra_args[{i}]"),
                    ErrorCode::InvalidField,
                    why,
                ));
            }
        }

        if !errors.is_empty() {
            return Err(errors);
        }
        let ladder = Self {
            mode: match t.mode.effective() {
                TranscoderMode::PerProfile => Mode::PerProfile,
                _ => Mode::Multi,
            },
            hw,
            device: t.global.deviceid,
            decoder,
            deinterlace,
            gop: (t.global.gop > 0).then_some(t.global.gop),
            rungs,
            audio,
            language,
            extra_args: t.extra_args.clone(),
        };
        Ok((Some(ladder), warnings))
    }

    /// The jobs that run this ladder: one for the whole ladder in `multi` mode, one per rung
    /// in `per_profile` mode.
    pub fn jobs(&self) -> Vec<Job> {
        match self.mode {
            Mode::Multi => vec![Job::Ladder],
            Mode::PerProfile => (0..self.rungs.len()).map(Job::Rung).collect(),
        }
    }
}

/// The keyframe interval, in seconds, that every rung of `t` forces on the same absolute
/// instants, when its HLS variants can be cut on one grid (SPEC §Transcoder "Alignment"):
/// two or more encoded rungs, the same interval on each, and no `global.gop` (a GOP in frames
/// becomes seconds only once the source's frame rate is known). `None`: one rung, copied
/// video, or rungs whose keyframes do not share instants.
///
/// A rung's interval is its `keyframe_interval`, else `segment_sec` (the HLS segment), as
/// [`argv`] forces it.
pub fn keyframe_grid(t: &Transcoder, segment_sec: f64) -> Option<f64> {
    if !t.needs_ffmpeg() || t.video.copy || t.global.gop > 0 || t.video.profiles.len() < 2 {
        return None;
    }
    let interval = |p: &VideoProfile| {
        if p.keyframe_interval > 0.0 {
            p.keyframe_interval
        } else {
            segment_sec
        }
    };
    let first = interval(&t.video.profiles[0]);
    let shared = t.video.profiles.iter().all(|p| interval(p) == first);
    (shared && first.is_finite() && first > 0.0).then_some(first)
}

/// What parsing a transcoder needs to know about the server.
#[derive(Debug, Clone, Default)]
pub struct ParseContext {
    /// Hardware backends present on this host (from the FFmpeg probe); `none` is always
    /// available.
    pub hw: Vec<Hw>,
    /// `security.unsafe_extra_args`: lift the `extra_args` deny-list.
    pub unsafe_extra_args: bool,
}

/// How FFmpeg processes map to rungs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One FFmpeg decodes once and writes every rung to its own pipe.
    Multi,
    /// One FFmpeg per rung.
    PerProfile,
}

/// Field order for deinterlacing (`yadif`'s `parity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    /// Detect from the stream (`-1`).
    Auto,
    /// Top field first (`0`).
    Tff,
    /// Bottom field first (`1`).
    Bff,
}

/// One rung of a ladder.
#[derive(Debug, Clone, PartialEq)]
pub enum Rung {
    /// `video.copy`: the source video, unchanged (source resolution).
    Copy,
    /// An encoded rendition.
    Encode(Box<Encode>),
}

impl Rung {
    /// The encoding settings, unless the rung copies the source.
    pub fn encode(&self) -> Option<&Encode> {
        match self {
            Self::Copy => None,
            Self::Encode(e) => Some(e),
        }
    }
}

/// How a rung is encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Encode {
    /// The encoder.
    pub encoder: VideoEncoder,
    /// Target width; 0 = source (or keep aspect when `height` is set).
    pub width: u32,
    /// Target height; 0 = source (or keep aspect when `width` is set).
    pub height: u32,
    /// How the source is fitted into `width` × `height` when both are set.
    pub resize: Resize,
    /// Average bitrate, kbps (SPEC: 0 → 2500).
    pub bitrate_kbps: u32,
    /// Peak bitrate, kbps, with a VBV buffer of twice that.
    pub max_bitrate_kbps: Option<u32>,
    /// Output frame rate (`framerate`, else `global.fps`); `None` = the source's.
    pub fps: Option<f64>,
    /// Seconds between keyframes; `None` = the HLS segment length.
    pub keyframe_interval: Option<f64>,
    /// The preset, translated into the encoder's family.
    pub preset: Option<Preset>,
    /// `-profile:v`.
    pub profile: Option<String>,
    /// `-level`.
    pub level: Option<String>,
    /// `-bf`.
    pub bframes: Option<u32>,
    /// `-refs`.
    pub refs: Option<u32>,
    /// Sample aspect ratio `(num, den)`.
    pub sar: Option<(u32, u32)>,
}

/// How the source is fitted into a rung's size (`resize_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// Scale down keeping the aspect, then pad to exactly the size, centred (default).
    Pad,
    /// Scale up keeping the aspect, then crop to exactly the size.
    Crop,
    /// Scale to exactly the size, ignoring the aspect.
    Stretch,
    /// Scale down keeping the aspect (even sizes); the result may be smaller.
    Fit,
}

/// Audio of every rung.
#[derive(Debug, Clone, PartialEq)]
pub enum Audio {
    /// `audio.copy` or codec `copy`: the source audio, unchanged.
    Copy,
    /// Encoded.
    Encode(AudioEncode),
}

/// How audio is encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioEncode {
    /// The codec.
    pub codec: AudioCodec,
    /// kbps (SPEC: 0 → 128).
    pub bitrate_kbps: u32,
    /// Hz; `None` = the source's.
    pub sample_rate: Option<u32>,
    /// `None` = the source's.
    pub channels: Option<u32>,
    /// EBU R128 loudness normalisation (`loudnorm=I=-23:LRA=7:TP=-2`).
    pub normalize: bool,
    /// The `volume` filter's value (`2`, `0.5`, `9dB`, `-6dB`).
    pub volume: Option<String>,
}

/// An audio codec a rung can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// AAC-LC (`aac`).
    Aac,
    /// MP3 (`libmp3lame`).
    Mp3,
    /// Opus (`libopus`).
    Opus,
    /// AC-3 (`ac3`).
    Ac3,
}

impl AudioCodec {
    /// FFmpeg's encoder.
    pub fn encoder(self) -> &'static str {
        match self {
            Self::Aac => "aac",
            Self::Mp3 => "libmp3lame",
            Self::Opus => "libopus",
            Self::Ac3 => "ac3",
        }
    }
}

/// Parses one video profile at `path` (`transcoder.video.profiles[1]`).
fn parse_profile(
    path: &str,
    p: &VideoProfile,
    hw: Hw,
    global_fps: Option<f64>,
    warnings: &mut Vec<String>,
) -> Result<Box<Encode>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut bad = |field: &str, code: ErrorCode, message: String| {
        errors.push(FieldError::new(format!("{path}.{field}"), code, message));
    };
    for (field, value) in [("width", p.width), ("height", p.height)] {
        if value % 2 == 1 || value > MAX_SIZE {
            bad(
                field,
                ErrorCode::InvalidField,
                format!("must be even and at most {MAX_SIZE} (0 = source), got {value}"),
            );
        }
    }
    if p.bitrate > MAX_KBPS || p.max_bitrate > MAX_KBPS {
        let field = if p.bitrate > MAX_KBPS {
            "bitrate"
        } else {
            "max_bitrate"
        };
        bad(
            field,
            ErrorCode::InvalidField,
            format!("must be at most {MAX_KBPS} kbps"),
        );
    }
    let bitrate_kbps = if p.bitrate == 0 { 2500 } else { p.bitrate };
    if p.max_bitrate > 0 && p.max_bitrate < bitrate_kbps {
        bad(
            "max_bitrate",
            ErrorCode::InvalidField,
            format!("must be at least the bitrate ({bitrate_kbps} kbps) or 0"),
        );
    }
    if !(p.framerate.is_finite() && (0.0..=240.0).contains(&p.framerate)) {
        bad(
            "framerate",
            ErrorCode::InvalidField,
            "must be within 0 (source) and 240".into(),
        );
    }
    if !(p.keyframe_interval.is_finite() && (0.0..=60.0).contains(&p.keyframe_interval)) {
        bad(
            "keyframe_interval",
            ErrorCode::InvalidField,
            "must be within 0 (HLS segment length) and 60 seconds".into(),
        );
    }
    let encoder = match VideoEncoder::select(&p.codec, hw) {
        Ok(encoder) => Some(encoder),
        Err(e) => {
            bad("codec", ErrorCode::InvalidField, e.to_string());
            None
        }
    };
    if let Some(e) = &encoder {
        let lower = e.name.to_ascii_lowercase();
        if lower.contains("vp9") || lower.contains("av1") {
            bad(
                "codec",
                ErrorCode::Unsupported,
                format!(
                    "{} renditions are not supported yet: the transcoder's MPEG-TS pipes carry \
                     H.264 and H.265 only",
                    e.name
                ),
            );
        } else if hw.frames_on_gpu() && e.family.hw() != Some(hw) {
            bad(
                "codec",
                ErrorCode::InvalidField,
                format!(
                    "{} cannot encode frames that global.hw {hw} decodes into GPU memory; use \
                     a {hw} encoder or hw none",
                    e.name
                ),
            );
        } else if e.family == Family::Vaapi && hw != Hw::Vaapi {
            bad(
                "codec",
                ErrorCode::InvalidField,
                format!("{} needs global.hw vaapi", e.name),
            );
        }
    }
    let preset = match (&encoder, p.preset.as_str()) {
        (_, "") | (None, _) => None,
        (Some(e), preset) => e.preset(preset).unwrap_or_else(|unknown| {
            warnings.push(format!("{path}.preset: {unknown}"));
            None
        }),
    };
    let mut word = |field: &str, value: &str| match value {
        "" => None,
        v if is_word(v, 32) => Some(v.to_owned()),
        v => {
            bad(
                field,
                ErrorCode::InvalidField,
                format!("{v:?} is not a {field} (letters, digits, '.' and '_' only)"),
            );
            None
        }
    };
    let profile = word("profile", &p.profile);
    let level = word("level", &p.level);
    if p.bframes.is_some_and(|b| b > 16) || p.refs > 16 {
        let field = if p.refs > 16 { "refs" } else { "bframes" };
        bad(field, ErrorCode::InvalidField, "must be at most 16".into());
    }
    let sar = match p.sar.as_str() {
        "" => None,
        text => {
            let parsed = text
                .split_once(':')
                .and_then(|(n, d)| Some((n.parse::<u32>().ok()?, d.parse::<u32>().ok()?)))
                .filter(|&(n, d)| n > 0 && d > 0);
            if parsed.is_none() {
                bad(
                    "sar",
                    ErrorCode::InvalidField,
                    format!("must be N:M with positive integers, got {text:?}"),
                );
            }
            parsed
        }
    };
    let mut resize = match p.resize_mode.as_str() {
        "" | "pad" => Resize::Pad,
        "crop" => Resize::Crop,
        "stretch" => Resize::Stretch,
        "fit" => Resize::Fit,
        other => {
            bad(
                "resize_mode",
                ErrorCode::InvalidField,
                format!("must be pad, crop, stretch or fit, got {other:?}"),
            );
            Resize::Pad
        }
    };
    if hw.frames_on_gpu()
        && matches!(resize, Resize::Pad | Resize::Crop)
        && p.width > 0
        && p.height > 0
    {
        warnings.push(format!(
            "{path}.resize_mode: {hw} scaling cannot pad or crop; the rung is fitted instead"
        ));
        resize = Resize::Fit;
    }
    let Some(encoder) = encoder.filter(|_| errors.is_empty()) else {
        return Err(errors);
    };
    Ok(Box::new(Encode {
        encoder,
        width: p.width,
        height: p.height,
        resize,
        bitrate_kbps,
        max_bitrate_kbps: (p.max_bitrate > 0).then_some(p.max_bitrate),
        fps: (p.framerate > 0.0).then_some(p.framerate).or(global_fps),
        keyframe_interval: (p.keyframe_interval > 0.0).then_some(p.keyframe_interval),
        preset,
        profile,
        level,
        bframes: p.bframes,
        refs: (p.refs > 0).then_some(p.refs),
        sar,
    }))
}

/// Parses `transcoder.audio`.
fn parse_audio(
    a: &AudioSettings,
    errors: &mut Vec<FieldError>,
    warnings: &mut Vec<String>,
) -> Audio {
    let mut bad = |field: &str, message: String| {
        errors.push(FieldError::new(
            format!("transcoder.audio.{field}"),
            ErrorCode::InvalidField,
            message,
        ));
    };
    let codec = match a.codec.as_str() {
        "" | "aac" => Some(AudioCodec::Aac),
        "mp3" => Some(AudioCodec::Mp3),
        "opus" => Some(AudioCodec::Opus),
        "ac3" => Some(AudioCodec::Ac3),
        "copy" => None,
        other => {
            bad(
                "codec",
                format!("must be aac, mp3, opus, ac3 or copy, got {other:?}"),
            );
            Some(AudioCodec::Aac)
        }
    };
    if a.bitrate > 1024 {
        bad("bitrate", "must be at most 1024 kbps".into());
    }
    if a.sample_rate != 0 && !(8000..=192_000).contains(&a.sample_rate) {
        bad(
            "sample_rate",
            "must be within 8000 and 192000 Hz (0 = source)".into(),
        );
    }
    if a.channels > 8 {
        bad("channels", "must be at most 8 (0 = source)".into());
    }
    let volume = match a.volume.trim() {
        "" => None,
        text => {
            let parsed = parse_volume(text);
            if parsed.is_none() {
                bad(
                    "volume",
                    format!("must be a factor (2, 0.5) or decibels (+9dB, -6dB), got {text:?}"),
                );
            }
            parsed
        }
    };
    let Some(codec) = codec.filter(|_| !a.copy) else {
        if a.normalize || volume.is_some() {
            warnings.push(
                "transcoder.audio: normalize and volume have no effect with audio copy".into(),
            );
        }
        return Audio::Copy;
    };
    Audio::Encode(AudioEncode {
        codec,
        bitrate_kbps: if a.bitrate == 0 { 128 } else { a.bitrate },
        sample_rate: (a.sample_rate > 0).then_some(a.sample_rate),
        channels: (a.channels > 0).then_some(a.channels),
        normalize: a.normalize,
        volume,
    })
}

/// `2`, `0.5`, `+9dB`, `-6dB` → the `volume` filter's value (`2`, `0.5`, `9dB`, `-6dB`).
fn parse_volume(text: &str) -> Option<String> {
    let (number, db) = match text.strip_suffix("dB").or_else(|| text.strip_suffix("db")) {
        Some(n) => (n, true),
        None => (text, false),
    };
    let unsigned = number.strip_prefix('+').unwrap_or(number);
    let digits = unsigned
        .strip_prefix('-')
        .filter(|_| db)
        .unwrap_or(unsigned);
    let well_formed = !digits.is_empty()
        && digits.len() <= 12
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1
        && digits.parse::<f64>().is_ok_and(f64::is_finite);
    well_formed.then(|| {
        if db {
            format!("{unsigned}dB")
        } else {
            unsigned.to_owned()
        }
    })
}

/// Why an `extra_args` item is refused (SPEC §Transcoder), unless the deny-list is lifted.
fn denied(arg: &str, lifted: bool) -> Option<String> {
    if arg.len() > 4096 {
        return Some("at most 4096 bytes".into());
    }
    if lifted {
        return None;
    }
    let option = arg.split(':').next().unwrap_or(arg);
    if DENIED_OPTIONS.contains(&option) {
        return Some(format!(
            "{arg:?} is not allowed in extra_args (it would change the transcoder's inputs, \
             outputs or files; security.unsafe_extra_args lifts this)"
        ));
    }
    if arg.starts_with('/') || arg.contains("..") || arg.contains("://") {
        return Some(format!(
            "{arg:?} is not allowed in extra_args (paths and URLs are refused; \
             security.unsafe_extra_args lifts this)"
        ));
    }
    None
}

/// `[A-Za-z0-9._]{1,max}`, not starting with `-`: decoder names, profiles, levels.
fn is_word(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

/// `extra_args` tokens refused unless `security.unsafe_extra_args` (SPEC §Transcoder).
const DENIED_OPTIONS: [&str; 10] = [
    "-i",
    "-y",
    "-n",
    "-f",
    "-filter_script",
    "-filter_complex_script",
    "-attach",
    "-dump_attachment",
    "-progress",
    "-report",
];

/// SPEC §Security field caps: `transcoder.video.profiles` ≤ 16.
const MAX_PROFILES: usize = 16;

/// Largest rung dimension, pixels (8K).
const MAX_SIZE: u32 = 8192;

/// Largest bitrate, kbps.
const MAX_KBPS: u32 = 200_000;

#[cfg(test)]
mod tests;
