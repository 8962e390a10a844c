//! The stream record (SPEC §Domain): what an operator stores under `/streams/{code}`.
//!
//! Every type here decodes with `deny_unknown_fields`; absent fields take their documented
//! default. The record is stored as given (not template-resolved), so a field the operator left
//! empty stays empty and can later be inherited from a template.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tributary_media::StreamCode;
use utoipa::ToSchema;

/// A stream: a named live channel with prioritised inputs and its outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Stream {
    /// The stream's code; it comes from the URL path (a `code` in a body is ignored).
    #[schema(value_type = String, example = "match-day")]
    pub code: StreamCode,
    /// Template to inherit empty fields from (§Templates).
    #[serde(default)]
    pub template: Option<String>,
    /// Display name (metadata; changing it restarts nothing).
    #[serde(default)]
    pub name: String,
    /// Free text (metadata).
    #[serde(default)]
    pub description: String,
    /// Labels (metadata).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Publish secret for push inputs (§Security): empty (no key) or, when written, at least
    /// 10 characters (SPEC's example key has 10); masked in responses.
    #[serde(default)]
    pub stream_key: String,
    /// `true`: never started; a running pipeline is stopped.
    #[serde(default)]
    pub disabled: bool,
    /// Prioritised sources, priorities exactly `0..N-1` in array order.
    #[serde(default)]
    pub inputs: Vec<Input>,
    /// FFmpeg transcoding; `null` = passthrough.
    #[serde(default)]
    pub transcoder: Option<Transcoder>,
    /// Outputs; `null` = inherit from the template, else all off.
    #[serde(default)]
    pub protocols: Option<Protocols>,
    /// Outbound RTMP/RTMPS targets (§Push).
    #[serde(default)]
    pub push: Vec<Push>,
    /// Recording (§DVR).
    #[serde(default)]
    pub dvr: Option<Dvr>,
    /// Overlay applied by the transcoder.
    #[serde(default)]
    pub watermark: Option<Watermark>,
    /// Periodic JPEG snapshot of the playback feed.
    #[serde(default)]
    pub thumbnail: Option<Thumbnail>,
}

impl Stream {
    /// A stream with no inputs and every option at its default.
    pub fn new(code: StreamCode) -> Self {
        Self {
            code,
            template: None,
            name: String::new(),
            description: String::new(),
            tags: Vec::new(),
            stream_key: String::new(),
            disabled: false,
            inputs: Vec::new(),
            transcoder: None,
            protocols: None,
            push: Vec::new(),
            dvr: None,
            watermark: None,
            thumbnail: None,
        }
    }

    /// The effective output flags (absent = all off).
    pub fn protocols(&self) -> Protocols {
        self.protocols.unwrap_or_default()
    }

    /// Whether the reconciler and boot should run this stream.
    pub fn is_startable(&self) -> bool {
        !self.disabled && !self.inputs.is_empty()
    }
}

/// One source of a stream.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Source URL; its scheme decides kind and pull/push (`crate::protocol::detect`).
    /// `copy://<code>` re-streams another stream's playback feed in-process;
    /// `mixer://<video>,<audio>` (or `mixer://<video>?audio=<audio>`, with
    /// `audio_failure=down|continue`) takes the video of one stream and the audio of another.
    pub url: String,
    /// Lower wins; exactly the array index.
    #[serde(default)]
    pub priority: u32,
    /// Sent on every HLS/HTTP request of this input.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Merged into the URL query, overriding equal keys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// Network options.
    #[serde(default, skip_serializing_if = "InputNet::is_default")]
    pub net: InputNet,
    /// Per-input override of `manager.input_packet_timeout_sec`, seconds; 0 = global.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub packet_timeout_sec: u32,
    /// Keep connected while not active; `null` = kind default (UDP and push hot, pulls cold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hot_standby: Option<bool>,
    /// MPEG-TS program number to take; 0 = first in the PAT.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub program: u32,
    /// Legacy (open-streamer): accepted, ignored, warned about.
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub reconnect: Option<serde_json::Value>,
    /// Legacy (open-streamer): accepted, ignored, warned about.
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub read_timeout_sec: Option<serde_json::Value>,
    /// Legacy (open-streamer): accepted, ignored, warned about.
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub reconnect_delay_sec: Option<serde_json::Value>,
    /// Legacy (open-streamer): accepted, ignored, warned about.
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub reconnect_max_delay_sec: Option<serde_json::Value>,
}

impl Input {
    /// An input with this URL and priority and default options.
    pub fn new(url: impl Into<String>, priority: u32) -> Self {
        Self {
            url: url.into(),
            priority,
            ..Self::default()
        }
    }

    /// Whether two inputs differ in anything that needs the worker to reconnect
    /// (URL, headers, params, net, packet timeout, hot standby, program).
    pub fn settings_differ(&self, other: &Self) -> bool {
        self.url.trim() != other.url.trim()
            || self.headers != other.headers
            || self.params != other.params
            || self.net != other.net
            || self.packet_timeout_sec != other.packet_timeout_sec
            || self.hot_standby != other.hot_standby
            || self.program != other.program
    }
}

/// Per-input network options.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InputNet {
    /// Connect/read budget in seconds; 0 = the kind's default.
    #[serde(default)]
    pub timeout_sec: u32,
    /// HTTPS/RTMPS/RTSPS: skip certificate verification.
    #[serde(default)]
    pub insecure_tls: bool,
}

impl InputNet {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// Output flags. A missing flag is false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Protocols {
    /// HLS (`/{code}/index.m3u8`).
    #[serde(default)]
    pub hls: bool,
    /// MPEG-DASH (`/{code}/index.mpd`).
    #[serde(default)]
    pub dash: bool,
    /// RTSP play.
    #[serde(default)]
    pub rtsp: bool,
    /// RTMP play.
    #[serde(default)]
    pub rtmp: bool,
    /// SRT play.
    #[serde(default)]
    pub srt: bool,
}

/// FFmpeg transcoding of a stream (§Transcoder).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transcoder {
    /// `""` (= multi), `multi` or `per_profile`.
    #[serde(default)]
    pub mode: TranscoderMode,
    /// Settings shared by every rung.
    #[serde(default)]
    pub global: TranscoderGlobal,
    /// Input decoder.
    #[serde(default)]
    pub decoder: Decoder,
    /// Video ladder.
    #[serde(default)]
    pub video: VideoSettings,
    /// Audio settings.
    #[serde(default)]
    pub audio: AudioSettings,
    /// Extra FFmpeg arguments, each one argv item.
    #[serde(default)]
    pub extra_args: Vec<String>,
}

impl Transcoder {
    /// Whether this config runs FFmpeg at all (`video.copy && audio.copy` does not).
    pub fn needs_ffmpeg(&self) -> bool {
        !(self.video.copy && self.audio.copy)
    }
}

/// How FFmpeg processes map to rungs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub enum TranscoderMode {
    /// Not set: behaves as `multi`.
    #[default]
    #[serde(rename = "")]
    Unset,
    /// One FFmpeg decodes once and writes every rung.
    #[serde(rename = "multi")]
    Multi,
    /// One FFmpeg per rung.
    #[serde(rename = "per_profile")]
    PerProfile,
}

impl TranscoderMode {
    /// The effective mode (`Unset` counts as `Multi`).
    pub fn effective(self) -> Self {
        match self {
            Self::Unset => Self::Multi,
            other => other,
        }
    }
}

/// Settings shared by every rung.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TranscoderGlobal {
    /// Hardware backend: `none` (or empty), `nvenc`, `vaapi`, `qsv`, `videotoolbox`.
    #[serde(default)]
    pub hw: String,
    /// Output frame rate; 0 = source.
    #[serde(default)]
    pub fps: u32,
    /// GOP in frames; 0 = from the keyframe interval.
    #[serde(default)]
    pub gop: u32,
    /// Hardware device index.
    #[serde(default)]
    pub deviceid: u32,
}

/// The FFmpeg input decoder.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decoder {
    /// Decoder name passed as `-c:v` before the input; empty = FFmpeg's choice.
    #[serde(default)]
    pub name: String,
}

/// Video ladder settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VideoSettings {
    /// Pass video through unchanged.
    #[serde(default)]
    pub copy: bool,
    /// `""`, `auto`, `tff`, `bff`, `progressive`.
    #[serde(default)]
    pub interlace: String,
    /// One entry per rung; rung *i* is `track_{i+1}`.
    #[serde(default)]
    pub profiles: Vec<VideoProfile>,
}

/// The config of one rung.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VideoProfile {
    /// Pixels; 0 = source (one 0 keeps the aspect).
    #[serde(default)]
    pub width: u32,
    /// Pixels; 0 = source (one 0 keeps the aspect).
    #[serde(default)]
    pub height: u32,
    /// kbps; 0 → 2500.
    #[serde(default)]
    pub bitrate: u32,
    /// kbps peak; 0 = none.
    #[serde(default)]
    pub max_bitrate: u32,
    /// Output fps; 0 = global fps, else source.
    #[serde(default)]
    pub framerate: f64,
    /// Seconds between keyframes; 0 → HLS segment length.
    #[serde(default)]
    pub keyframe_interval: f64,
    /// `""`/`h264`/`avc`, `h265`/`hevc`, `vp9`, `av1` or an explicit encoder.
    #[serde(default)]
    pub codec: String,
    /// Encoder preset.
    #[serde(default)]
    pub preset: String,
    /// Encoder profile.
    #[serde(default)]
    pub profile: String,
    /// Encoder level.
    #[serde(default)]
    pub level: String,
    /// B-frames; `null` = encoder default.
    #[serde(default)]
    pub bframes: Option<u32>,
    /// Reference frames; 0 = encoder default.
    #[serde(default)]
    pub refs: u32,
    /// Sample aspect ratio `N:M`.
    #[serde(default)]
    pub sar: String,
    /// `pad` (default), `crop`, `stretch`, `fit`.
    #[serde(default)]
    pub resize_mode: String,
}

/// Audio settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AudioSettings {
    /// Pass audio through unchanged.
    #[serde(default)]
    pub copy: bool,
    /// `aac` (default), `mp3`, `opus`, `ac3`, `copy`.
    #[serde(default)]
    pub codec: String,
    /// kbps; 0 → 128.
    #[serde(default)]
    pub bitrate: u32,
    /// Hz; 0 = source.
    #[serde(default)]
    pub sample_rate: u32,
    /// 0 = source.
    #[serde(default)]
    pub channels: u32,
    /// Language tag written as stream metadata.
    #[serde(default)]
    pub language: String,
    /// EBU R128 loudness normalisation.
    #[serde(default)]
    pub normalize: bool,
    /// `2`, `0.5`, `+9dB`, `-6dB`; empty = unchanged.
    #[serde(default)]
    pub volume: String,
}

/// One outbound RTMP/RTMPS target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Push {
    /// `rtmp://` or `rtmps://` URL; its last path segment is a secret.
    pub url: String,
    /// Whether the target runs.
    #[serde(default)]
    pub enabled: bool,
    /// Handshake + publish budget, seconds.
    #[serde(default = "default_push_timeout")]
    pub timeout_sec: u32,
    /// First reconnect delay, seconds (doubling to 30).
    #[serde(default = "default_push_retry")]
    pub retry_timeout_sec: u32,
    /// Consecutive failures before `failed`; 0 = unlimited.
    #[serde(default)]
    pub limit: u32,
    /// Free text; changing it restarts nothing.
    #[serde(default)]
    pub comment: String,
    /// The rung to send: `track_<N>`, a rung of this stream's own ladder (`track_1` …
    /// `track_N`, one per `transcoder.video.profiles` entry), carrying the ladder's audio;
    /// empty = the playback feed. A stream without a ladder (passthrough, ABR copy) has no
    /// rung to push: a write naming one is refused (422 naming `push[i].profile`), and a
    /// running target whose rung leaves the ladder (a template edit) is `failed` until it is
    /// back. Changing it restarts this target only.
    #[serde(default)]
    pub profile: String,
}

impl Push {
    /// A target to `url` with SPEC's defaults (§Defaults "Push"): disabled, `timeout_sec` 10,
    /// `retry_timeout_sec` 5, no `limit`, no comment, the playback feed (`profile` `""`).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            enabled: false,
            timeout_sec: default_push_timeout(),
            retry_timeout_sec: default_push_retry(),
            limit: 0,
            comment: String::new(),
            profile: String::new(),
        }
    }
}

fn default_push_timeout() -> u32 {
    10
}

fn default_push_retry() -> u32 {
    5
}

/// Recording settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Dvr {
    /// Record while running.
    #[serde(default)]
    pub enabled: bool,
    /// Target segment length, seconds; 0 → 4.
    #[serde(default)]
    pub segment_duration: u32,
    /// Seconds to keep; 0 = forever.
    #[serde(default)]
    pub retention_sec: u64,
    /// Root directory; empty = the DVR root.
    #[serde(default)]
    pub storage_path: String,
    /// Size cap in GiB; 0 = unlimited.
    #[serde(default)]
    pub max_size_gb: f64,
}

/// Overlay applied by the transcoder.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Watermark {
    /// Whether the overlay is drawn.
    #[serde(default)]
    pub enabled: bool,
    /// `text` or `image`.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Text to draw.
    #[serde(default)]
    pub text: String,
    /// Font file (absolute path).
    #[serde(default)]
    pub font_file: String,
    /// Points; 0 → 24.
    #[serde(default)]
    pub font_size: u32,
    /// Colour name, `#RRGGBB[AA]` or `0xRRGGBB[AA]`, optional `@alpha`; empty → white.
    #[serde(default)]
    pub font_color: String,
    /// Watermark library asset.
    #[serde(default)]
    pub asset_id: String,
    /// Image file (absolute path).
    #[serde(default)]
    pub image_path: String,
    /// 0..=1; 0 → 1.0.
    #[serde(default)]
    pub opacity: f64,
    /// Corner, `center` or `custom`; empty → `bottom_right`.
    #[serde(default)]
    pub position: String,
    /// Pixels from the corner; 0 → 10.
    #[serde(default)]
    pub offset_x: i32,
    /// Pixels from the corner; 0 → 10.
    #[serde(default)]
    pub offset_y: i32,
    /// `custom` x expression.
    #[serde(default)]
    pub x: String,
    /// `custom` y expression.
    #[serde(default)]
    pub y: String,
    /// Scale by rung width.
    #[serde(default)]
    pub resize: bool,
}

/// Periodic snapshot of the playback feed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Thumbnail {
    /// Whether thumbnails are made.
    #[serde(default)]
    pub enabled: bool,
    /// Seconds between snapshots; 0 → 10.
    #[serde(default)]
    pub interval_sec: u32,
    /// Pixels; 0 → 320.
    #[serde(default)]
    pub width: u32,
    /// Pixels; 0 = keep aspect.
    #[serde(default)]
    pub height: u32,
    /// JPEG quality 1–31; 0 → 5.
    #[serde(default)]
    pub quality: u32,
    /// Accepted for compatibility and ignored.
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub output_dir: Option<serde_json::Value>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}
