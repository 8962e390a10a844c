//! Codec helpers: NAL unit framing, H.264/H.265 parameter sets, AAC configuration.
//!
//! Everything here is a pure function of its input bytes: no clock, no IO, no panics on
//! malformed data. Parsers return [`CodecError`], which names the field and the byte offset
//! where parsing stopped.
//!
//! - [`nal`]: Annex-B iteration, AVCC ⇄ Annex-B conversion, emulation prevention.
//! - [`h264`]: `AVCDecoderConfigurationRecord`, SPS, RFC 6381 codec string.
//! - [`h265`]: `HEVCDecoderConfigurationRecord`, SPS, codec string.
//! - [`av1`]: OBU framing, the sequence header, `AV1CodecConfigurationRecord`, codec string.
//! - [`vp9`]: a keyframe's uncompressed header, `VPCodecConfigurationRecord`, codec string.
//! - [`aac`]: AudioSpecificConfig, ADTS headers, sample-rate table.
//! - [`opus`]: the duration of an Opus packet.
//! - [`ParamSets`]: keeps the latest parameter sets of a video track so that every keyframe
//!   written to the hub carries them (SPEC §Ingest "Parameter sets").
//! - [`TrackInfo`]: what the parsers learn about a track, for the API's `tracks[]`.
//!
//! ```
//! use tributary_media::codec::{h264, nal};
//!
//! // An SPS and a PPS from x264 (1280x720, High profile, level 3.1, 30 fps).
//! let au: &[u8] = &[
//!     0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10,
//!     0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60,
//!     0, 0, 0, 1, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0,
//! ];
//! let sps = nal::annex_b_nals(au).next().unwrap();
//! let sps = h264::Sps::parse(sps).unwrap();
//! assert_eq!((sps.width, sps.height), (1280, 720));
//! assert_eq!(sps.codec_string(), "avc1.64001f");
//! assert_eq!(sps.frame_rate.unwrap().as_f64(), 30.0);
//! ```

use std::fmt;

use crate::{Codec, MediaKind};

pub mod aac;
pub mod av1;
mod bits;
pub mod h264;
pub mod h265;
pub mod nal;
pub mod opus;
mod params;
pub mod vp9;

pub use params::{Observed, ParamChange, ParamSets};

/// The track parameters in the SPS that a video access unit (Annex-B, H.264 or H.265)
/// carries, if it has one that parses: every keyframe in the hub does (SPEC §Buffer hub). For
/// AV1 the sequence header OBU of a temporal unit, for VP9 a keyframe's header.
pub fn sps_info(frame: &crate::Frame) -> Option<TrackInfo> {
    let nals = nal::annex_b_nals(&frame.payload);
    match frame.codec {
        Codec::H264 => nals
            .filter(|nal| nal.first().is_some_and(|h| h & 0x1f == 7))
            .find_map(|nal| h264::Sps::parse(nal).ok())
            .map(|sps| sps.track_info()),
        Codec::H265 => nals
            .filter(|nal| nal.first().is_some_and(|h| (h >> 1) & 0x3f == 33))
            .find_map(|nal| h265::Sps::parse(nal).ok())
            .map(|sps| sps.track_info()),
        Codec::Av1 => av1::SequenceHeader::find(&frame.payload)
            .ok()
            .map(|(header, _)| header.track_info()),
        Codec::Vp9 => vp9::KeyFrame::parse(&frame.payload)
            .ok()
            .map(|key| key.track_info()),
        _ => None,
    }
}

/// Why codec bytes could not be parsed or built.
///
/// Offsets are byte positions in the buffer the failing function was given; for fields inside
/// a NAL unit they count from the NAL header in its RBSP form (emulation prevention removed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The data ended inside a field.
    #[error("truncated: data ends at byte {offset} while reading {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// The length of the data, where reading stopped.
        offset: usize,
    },
    /// A field holds a value that the standard forbids or that cannot be represented.
    #[error("invalid {field} = {value} at byte {offset}")]
    InvalidValue {
        /// The field.
        field: &'static str,
        /// The value found.
        value: u64,
        /// The byte offset of the field.
        offset: usize,
    },
    /// A NAL unit of another type was given where one type was expected.
    #[error("expected a {expected} NAL unit, found type {found}")]
    NalType {
        /// The NAL unit type expected (`SPS`, ...).
        expected: &'static str,
        /// The type found.
        found: u8,
    },
    /// A length-prefixed NAL unit claims more bytes than are left.
    #[error("NAL unit at byte {offset} claims {len} bytes, {remaining} left")]
    NalOverrun {
        /// The offset of the length prefix.
        offset: usize,
        /// The length claimed.
        len: usize,
        /// The bytes left after the prefix.
        remaining: usize,
    },
    /// An ADTS frame does not start with the `0xFFF` syncword.
    #[error("no ADTS syncword at byte {offset}")]
    NoSync {
        /// Where the syncword was expected.
        offset: usize,
    },
    /// A valid value that this crate cannot handle (yet).
    #[error("unsupported {what} = {value}")]
    Unsupported {
        /// The field or feature.
        what: &'static str,
        /// The value found or requested.
        value: u64,
    },
    /// Something to be written is longer than its length field allows.
    #[error("{what} is {len} bytes long, at most {max} fit")]
    TooLarge {
        /// What was too long.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The largest length the format can express.
        max: usize,
    },
}

/// A frame rate as an exact fraction (`30000/1001` for 29.97 fps), reduced to lowest terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameRate {
    /// Frames per `den` seconds.
    pub num: u32,
    /// Seconds per `num` frames.
    pub den: u32,
}

impl FrameRate {
    /// Makes a rate of `num / den` frames per second, reduced; `None` when either is zero.
    pub fn new(num: u64, den: u64) -> Option<Self> {
        if num == 0 || den == 0 {
            return None;
        }
        let g = gcd(num, den);
        Some(Self {
            num: u32::try_from(num / g).ok()?,
            den: u32::try_from(den / g).ok()?,
        })
    }

    /// Frames per second.
    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }
}

impl fmt::Display for FrameRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

/// What is known about one track: the facts the API shows in `tracks[]` and the packagers need
/// for their manifests.
///
/// Parsers fill in what their bitstream carries ([`h264::Sps::track_info`],
/// [`h265::Sps::track_info`], [`aac::AudioSpecificConfig::track_info`]); fields a codec does
/// not have stay `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    /// The codec.
    pub codec: Codec,
    /// Displayed width in pixels (after cropping), video only.
    pub width: Option<u32>,
    /// Displayed height in pixels (after cropping; both fields for interlaced video).
    pub height: Option<u32>,
    /// The nominal frame rate, when the bitstream signals one (VUI timing information).
    pub frame_rate: Option<FrameRate>,
    /// Output sample rate in Hz (after SBR for HE-AAC), audio only.
    pub sample_rate: Option<u32>,
    /// Output channel count (2 for HE-AACv2 parametric stereo), audio only.
    pub channels: Option<u8>,
    /// The RFC 6381 `codecs` string (`avc1.64001f`, `hvc1.1.6.L93.B0`, `mp4a.40.2`).
    pub codec_string: Option<String>,
    /// The profile: `profile_idc` for H.264, `general_profile_idc` for H.265, `seq_profile`
    /// for AV1, `Profile` for VP9, the audio object type for AAC.
    pub profile: Option<u8>,
    /// The level: `level_idc` for H.264 (31 = 3.1), `general_level_idc` for H.265 (93 = 3.1),
    /// `seq_level_idx[0]` for AV1 (8 = 4.0), the `vpcC` level for VP9 (31 = 3.1).
    pub level: Option<u8>,
}

impl TrackInfo {
    /// A description of a track of `codec` with nothing else known yet.
    pub fn new(codec: Codec) -> Self {
        Self {
            codec,
            width: None,
            height: None,
            frame_rate: None,
            sample_rate: None,
            channels: None,
            codec_string: None,
            profile: None,
            level: None,
        }
    }

    /// Whether the track is video, audio or data.
    pub fn kind(&self) -> MediaKind {
        self.codec.kind()
    }

    /// The frame rate in frames per second, if known.
    pub fn fps(&self) -> Option<f64> {
        self.frame_rate.map(FrameRate::as_f64)
    }
}

/// The size of the length prefix of each NAL unit in AVCC/HVCC framing: 1, 2 or 4 bytes
/// (3 is allowed by the record's 2-bit field and accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LengthSize(u8);

impl LengthSize {
    /// Four-byte lengths, what every common muxer writes.
    pub const FOUR: Self = Self(4);

    /// Validates a length size of 1 to 4 bytes.
    pub fn new(bytes: u8) -> Result<Self, CodecError> {
        if (1..=4).contains(&bytes) {
            Ok(Self(bytes))
        } else {
            Err(CodecError::InvalidValue {
                field: "length_size",
                value: u64::from(bytes),
                offset: 0,
            })
        }
    }

    /// The size in bytes (1 to 4).
    pub fn get(self) -> u8 {
        self.0
    }

    /// The largest NAL unit length this size can express.
    pub fn max_len(self) -> usize {
        let max = (1u64 << (8 * u32::from(self.0))) - 1;
        usize::try_from(max).unwrap_or(usize::MAX)
    }

    /// Makes a length size from a record's `lengthSizeMinusOne` (two bits).
    pub(crate) fn from_minus_one(bits: u8) -> Self {
        Self((bits & 3) + 1)
    }
}

impl Default for LengthSize {
    fn default() -> Self {
        Self::FOUR
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_rate_reduces() {
        let r = FrameRate::new(60_000, 2002).unwrap();
        assert_eq!((r.num, r.den), (30_000, 1001));
        assert_eq!(r.to_string(), "30000/1001");
        assert_eq!(FrameRate::new(50, 2).unwrap().to_string(), "25");
        assert_eq!(FrameRate::new(0, 1), None);
        assert_eq!(FrameRate::new(1, 0), None);
    }

    #[test]
    fn length_size() {
        assert!(LengthSize::new(0).is_err());
        assert!(LengthSize::new(5).is_err());
        assert_eq!(LengthSize::new(2).unwrap().max_len(), 65_535);
        assert_eq!(LengthSize::FOUR.max_len(), u32::MAX as usize);
    }
}
