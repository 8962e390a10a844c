//! One access unit on its way through the hub.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::{TrackInfo, Ts90};

/// Identifies a track within one buffer (the elementary stream a frame belongs to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrackId(pub u16);

/// Identifies a run of frames on one continuous timeline (SPEC §Timeline "Sessions").
///
/// Session ids increase monotonically within a process. Consumers detect a timeline boundary
/// (reconnect, switch, codec change) by a change of id, never by a one-shot flag that a
/// dropped frame could lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

/// Whether a track carries pictures, sound or data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Pictures.
    Video,
    /// Sound.
    Audio,
    /// Anything else carried through (SCTE-35, ...).
    Data,
}

/// The codec of one track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// H.264 / AVC, Annex-B byte stream.
    H264,
    /// H.265 / HEVC, Annex-B byte stream.
    H265,
    /// AV1: one temporal unit of OBUs with size fields (the sequence header OBU in every
    /// keyframe's), see [`codec::av1`](crate::codec::av1).
    Av1,
    /// VP9: one frame (or superframe), see [`codec::vp9`](crate::codec::vp9).
    Vp9,
    /// AAC, raw access units (no ADTS header); the AudioSpecificConfig is in the track config.
    Aac,
    /// MPEG-1/2 Audio Layer II.
    Mp2,
    /// MPEG-1/2 Audio Layer III.
    Mp3,
    /// Dolby Digital.
    Ac3,
    /// Dolby Digital Plus.
    Eac3,
    /// Opus.
    Opus,
    /// SCTE-35 splice information, carried as data.
    Scte35,
}

impl Codec {
    /// The kind of track this codec belongs to.
    pub fn kind(self) -> MediaKind {
        match self {
            Self::H264 | Self::H265 | Self::Av1 | Self::Vp9 => MediaKind::Video,
            Self::Aac | Self::Mp2 | Self::Mp3 | Self::Ac3 | Self::Eac3 | Self::Opus => {
                MediaKind::Audio
            }
            Self::Scte35 => MediaKind::Data,
        }
    }

    /// The lower-case name used in the API (`h264`, `aac`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::H264 => "h264",
            Self::H265 => "h265",
            Self::Av1 => "av1",
            Self::Vp9 => "vp9",
            Self::Aac => "aac",
            Self::Mp2 => "mp2",
            Self::Mp3 => "mp3",
            Self::Ac3 => "ac3",
            Self::Eac3 => "eac3",
            Self::Opus => "opus",
            Self::Scte35 => "scte35",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One access unit: a picture, an audio frame (or a few, for codecs that bundle them) or a data
/// section, with its timestamps and the shared payload.
///
/// The payload is gathered into `Bytes` once, where the access unit is assembled; every
/// consumer afterwards holds a clone of the same buffer (no copy per subscriber).
#[derive(Clone)]
pub struct Frame {
    /// The track within its buffer.
    pub track: TrackId,
    /// The codec of the track.
    pub codec: Codec,
    /// Presentation time, 90 kHz.
    pub pts: Ts90,
    /// Decode time, 90 kHz (equal to `pts` when the source gave none).
    pub dts: Ts90,
    /// A random-access point: an IDR/IRAP picture (always true for audio).
    pub keyframe: bool,
    /// The timeline session this frame belongs to.
    pub session: SessionId,
    /// When the frame's first byte arrived at ingest (monotonic clock), for latency metrics.
    pub arrival: Instant,
    /// The access unit: Annex-B for H.264/H.265 (parameter sets before every keyframe), a
    /// temporal unit for AV1 (its sequence header in every keyframe), a frame for VP9, a raw
    /// access unit for AAC.
    pub payload: Bytes,
    /// The track's configuration as the producer knows it: required for AAC (a raw access
    /// unit means nothing without its AudioSpecificConfig), optional for the others. Shared:
    /// a producer makes one `Arc` per configuration and hands out clones, so carrying it costs
    /// a reference-count increment per frame and consumers detect a change with
    /// [`Arc::ptr_eq`].
    pub config: Option<Arc<TrackConfig>>,
}

/// What a consumer needs to know about a track beyond its frames (SPEC §Buffer hub: "AAC
/// carries its AudioSpecificConfig in the track config").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackConfig {
    /// What the bitstream says about the track (size, rate, channels, RFC 6381 string).
    pub info: TrackInfo,
    /// The codec's decoder configuration: the AudioSpecificConfig for AAC; empty for codecs
    /// whose parameters travel in-band (H.264/H.265 parameter sets precede every keyframe).
    pub decoder_config: Bytes,
}

impl TrackConfig {
    /// A configuration for an AAC track from its AudioSpecificConfig; `None` when the bytes do
    /// not parse.
    pub fn aac(asc: Bytes) -> Option<Self> {
        let parsed = crate::codec::aac::AudioSpecificConfig::parse(&asc).ok()?;
        Some(Self {
            info: parsed.track_info(),
            decoder_config: asc,
        })
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("track", &self.track)
            .field("codec", &self.codec)
            .field("pts", &self.pts)
            .field("dts", &self.dts)
            .field("keyframe", &self.keyframe)
            .field("session", &self.session)
            .field("len", &self.payload.len())
            .field("config", &self.config.is_some())
            .finish()
    }
}
