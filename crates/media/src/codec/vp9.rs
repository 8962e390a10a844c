//! VP9: a keyframe's uncompressed header, the `VPCodecConfigurationRecord` and the codec
//! string (VP9 Bitstream Specification §6.2; VP Codec ISO Media File Format Binding v1.0).
//!
//! A VP9 [`Frame`](crate::Frame) in the hub is one frame as IVF, WebM and MP4 carry it
//! (a superframe with its index when the encoder made one). VP9 has no parameter sets: a
//! keyframe's uncompressed header says everything `vpcC` needs but the level, which the
//! bitstream does not carry; [`KeyFrame::level`] derives it from the picture size.
//!
//! ```
//! use tributary_media::codec::vp9;
//!
//! // The first bytes of a libvpx keyframe: profile 0, 320x180.
//! let frame = [0x82, 0x49, 0x83, 0x42, 0x00, 0x13, 0xf0, 0x0b, 0x36, 0x0a];
//! let key = vp9::KeyFrame::parse(&frame).unwrap();
//! assert_eq!((key.width, key.height), (320, 180));
//! assert_eq!(key.config().codec_string(), "vp09.00.11.08");
//! ```

use super::CodecError;
use super::bits::BitReader;
use crate::{Codec, TrackInfo};

/// What a keyframe's uncompressed header says about a track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFrame {
    /// `Profile` (0 to 3).
    pub profile: u8,
    /// `BitDepth`: 8, 10 or 12.
    pub bit_depth: u8,
    /// `color_space` (0 unknown, 1 BT.601, 2 BT.709, 3 SMPTE 170, 4 SMPTE 240, 5 BT.2020,
    /// 7 RGB).
    pub color_space: u8,
    /// `color_range`: full range.
    pub full_range: bool,
    /// `subsampling_x`.
    pub subsampling_x: bool,
    /// `subsampling_y`.
    pub subsampling_y: bool,
    /// `frame_width_minus_1 + 1`.
    pub width: u32,
    /// `frame_height_minus_1 + 1`.
    pub height: u32,
}

/// Whether a frame (or superframe: its first frame's header) is a keyframe.
pub fn is_keyframe(frame: &[u8]) -> bool {
    header_start(frame).is_ok_and(|(_, key)| key)
}

/// Reads the uncompressed header up to `frame_type`: the profile and whether it is a
/// keyframe (a shown existing frame is not).
fn header_start(frame: &[u8]) -> Result<(u8, bool), CodecError> {
    let mut r = BitReader::new(frame);
    let marker = r.u8(2, "frame_marker")?;
    if marker != 2 {
        return Err(CodecError::InvalidValue {
            field: "frame_marker",
            value: u64::from(marker),
            offset: 0,
        });
    }
    let low = r.u8(1, "profile_low_bit")?;
    let profile = (r.u8(1, "profile_high_bit")? << 1) | low;
    if profile == 3 {
        r.skip(1, "reserved_zero")?;
    }
    if r.flag("show_existing_frame")? {
        return Ok((profile, false));
    }
    Ok((profile, !r.flag("frame_type")?))
}

impl KeyFrame {
    /// Parses the uncompressed header of a keyframe as far as its frame size.
    pub fn parse(frame: &[u8]) -> Result<Self, CodecError> {
        let (profile, key) = header_start(frame)?;
        if !key {
            return Err(CodecError::InvalidValue {
                field: "frame_type",
                value: 1,
                offset: 0,
            });
        }
        let mut r = BitReader::new(frame);
        r.skip(2 + 2 + usize::from(profile == 3) + 1 + 1, "frame_type")?;
        r.skip(2, "show_frame")?; // and error_resilient_mode
        let sync = r.bits(24, "frame_sync_code")?;
        if sync != 0x49_83_42 {
            return Err(CodecError::InvalidValue {
                field: "frame_sync_code",
                value: u64::from(sync),
                offset: 1,
            });
        }
        let bit_depth = if profile >= 2 {
            if r.flag("ten_or_twelve_bit")? { 12 } else { 10 }
        } else {
            8
        };
        let color_space = r.u8(3, "color_space")?;
        let (full_range, subsampling_x, subsampling_y) = if color_space != 7 {
            let full_range = r.flag("color_range")?;
            if profile == 1 || profile == 3 {
                let x = r.flag("subsampling_x")?;
                let y = r.flag("subsampling_y")?;
                r.skip(1, "reserved_zero")?;
                (full_range, x, y)
            } else {
                (full_range, true, true)
            }
        } else {
            if profile == 0 || profile == 2 {
                return Err(CodecError::InvalidValue {
                    field: "color_space",
                    value: 7,
                    offset: r.byte_offset(),
                });
            }
            r.skip(1, "reserved_zero")?;
            (true, false, false)
        };
        let width = r.bits(16, "frame_width_minus_1")? + 1;
        let height = r.bits(16, "frame_height_minus_1")? + 1;
        Ok(Self {
            profile,
            bit_depth,
            color_space,
            full_range,
            subsampling_x,
            subsampling_y,
            width,
            height,
        })
    }

    /// The lowest VP9 level whose picture size and dimension limits (webmproject.org "VP9
    /// Levels and Decoder Testing") admit this frame, as `vpcC` writes it (`11` = 1.1); the
    /// header carries no rate, so the sample-rate limits are not taken into account; 0 (the
    /// binding's undefined level) above level 6.2.
    pub fn level(&self) -> u8 {
        const LEVELS: [(u8, u64, u32); 14] = [
            (10, 36_864, 512),
            (11, 73_728, 768),
            (20, 122_880, 960),
            (21, 245_760, 1_344),
            (30, 552_960, 2_048),
            (31, 983_040, 2_752),
            (40, 2_228_224, 4_160),
            (41, 2_228_224, 4_160),
            (50, 8_912_896, 8_384),
            (51, 8_912_896, 8_384),
            (52, 8_912_896, 8_384),
            (60, 35_651_584, 16_832),
            (61, 35_651_584, 16_832),
            (62, 35_651_584, 16_832),
        ];
        let size = u64::from(self.width) * u64::from(self.height);
        let dimension = self.width.max(self.height);
        LEVELS
            .iter()
            .find(|(_, max_size, max_dim)| size <= *max_size && dimension <= *max_dim)
            .map_or(0, |(level, ..)| *level)
    }

    /// The configuration record this keyframe implies.
    pub fn config(&self) -> VpConfig {
        // VP9 signals only the matrix; its primaries and transfer stay unspecified (2).
        let matrix = [2, 5, 1, 6, 7, 9, 2, 0][usize::from(self.color_space & 7)];
        let chroma_subsampling = match (self.subsampling_x, self.subsampling_y) {
            // VP9 does not signal 4:2:0 chroma siting; the binding's 0 is "vertical".
            (true, true) => 0,
            (true, false) => 2,
            _ => 3,
        };
        VpConfig {
            profile: self.profile,
            level: self.level(),
            bit_depth: self.bit_depth,
            chroma_subsampling,
            full_range: self.full_range,
            primaries: 2,
            transfer: 2,
            matrix,
        }
    }

    /// What the header says about the track.
    pub fn track_info(&self) -> TrackInfo {
        let config = self.config();
        TrackInfo {
            width: Some(self.width),
            height: Some(self.height),
            codec_string: Some(config.codec_string()),
            profile: Some(self.profile),
            level: Some(config.level),
            ..TrackInfo::new(Codec::Vp9)
        }
    }
}

/// A `VPCodecConfigurationRecord` (version 1), the payload of `vpcC` after its version and
/// flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VpConfig {
    /// `profile`.
    pub profile: u8,
    /// `level` (`10` = 1.0 ... `62` = 6.2; 0 undefined).
    pub level: u8,
    /// `bitDepth`.
    pub bit_depth: u8,
    /// `chromaSubsampling` (0 4:2:0 vertical, 1 4:2:0 co-located, 2 4:2:2, 3 4:4:4).
    pub chroma_subsampling: u8,
    /// `videoFullRangeFlag`.
    pub full_range: bool,
    /// `colourPrimaries`.
    pub primaries: u8,
    /// `transferCharacteristics`.
    pub transfer: u8,
    /// `matrixCoefficients`.
    pub matrix: u8,
}

impl VpConfig {
    /// The record after `vpcC`'s version and flags: 8 bytes, no codec initialization data.
    pub fn to_bytes(&self) -> [u8; 8] {
        [
            self.profile,
            self.level,
            (self.bit_depth << 4)
                | ((self.chroma_subsampling & 7) << 1)
                | u8::from(self.full_range),
            self.primaries,
            self.transfer,
            self.matrix,
            0,
            0,
        ]
    }

    /// Parses the payload of a `vpcC` box as FFmpeg writes it (and Enhanced RTMP carries it):
    /// version 1 and flags, then the record.
    pub fn parse(data: &[u8]) -> Result<Self, CodecError> {
        if data.len() < 12 {
            return Err(CodecError::Truncated {
                field: "VPCodecConfigurationRecord",
                offset: data.len(),
            });
        }
        if data[0] != 1 {
            return Err(CodecError::Unsupported {
                what: "vpcC version",
                value: u64::from(data[0]),
            });
        }
        let bits = data[6];
        Ok(Self {
            profile: data[4],
            level: data[5],
            bit_depth: bits >> 4,
            chroma_subsampling: (bits >> 1) & 7,
            full_range: bits & 1 == 1,
            primaries: data[7],
            transfer: data[8],
            matrix: data[9],
        })
    }

    /// The RFC 6381 codec string in its short form, `vp09.PP.LL.DD`.
    pub fn codec_string(&self) -> String {
        format!(
            "vp09.{:02}.{:02}.{:02}",
            self.profile, self.level, self.bit_depth
        )
    }
}

/// The frames of an IVF file (the container `ffmpeg -f ivf` and libvpx's tools write: a
/// 32-byte file header, then each frame after a 12-byte header with its little-endian
/// length); stops at the first frame that does not fit in what is left.
pub fn ivf_frames(file: &[u8]) -> impl Iterator<Item = &[u8]> {
    let header = file
        .get(6..8)
        .map_or(32, |h| usize::from(u16::from_le_bytes([h[0], h[1]])));
    let mut rest = file.get(header.max(8)..).unwrap_or_default();
    std::iter::from_fn(move || {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?);
        let frame = rest.get(12..)?.get(..usize::try_from(len).ok()?)?;
        rest = &rest[12 + frame.len()..];
        Some(frame)
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const VP9: &[u8] = include_bytes!("../../testdata/ffmpeg_libvpx_vp9_320x180_30fps_10f.ivf");
    const VP9_444: &[u8] = include_bytes!("../../testdata/ffmpeg_libvpx_vp9_444_320x180_1f.ivf");

    fn frames(file: &[u8]) -> Vec<&[u8]> {
        ivf_frames(file).collect()
    }

    #[test]
    fn libvpx_profile_0() {
        let frames = frames(VP9);
        assert_eq!(frames.len(), 10);
        // `ffprobe -show_packets`: keyframes at 0 and 5 (`-g 5`).
        let keys: Vec<usize> = (0..10).filter(|i| is_keyframe(frames[*i])).collect();
        assert_eq!(keys, [0, 5]);
        let key = KeyFrame::parse(frames[0]).unwrap();
        assert_eq!(
            (key.profile, key.bit_depth, key.width, key.height),
            (0, 8, 320, 180)
        );
        assert!(key.subsampling_x && key.subsampling_y && !key.full_range);
        let config = key.config();
        assert_eq!(config.codec_string(), "vp09.00.11.08");
        assert_eq!(config.to_bytes(), [0, 11, 0x80, 2, 2, 2, 0, 0]);
        let mut boxed = vec![1, 0, 0, 0];
        boxed.extend_from_slice(&config.to_bytes());
        assert_eq!(VpConfig::parse(&boxed).unwrap(), config);
        assert!(KeyFrame::parse(frames[1]).is_err(), "an inter frame");
        let info = key.track_info();
        assert_eq!((info.codec, info.level), (Codec::Vp9, Some(11)));
    }

    #[test]
    fn libvpx_profile_1_444() {
        let key = KeyFrame::parse(frames(VP9_444)[0]).unwrap();
        assert_eq!(
            (key.profile, key.subsampling_x, key.subsampling_y),
            (1, false, false)
        );
        assert_eq!(key.config().chroma_subsampling, 3);
        assert_eq!(key.config().codec_string(), "vp09.01.11.08");
    }

    #[test]
    fn levels() {
        let key = |width, height| KeyFrame {
            width,
            height,
            ..KeyFrame::parse(frames(VP9)[0]).unwrap()
        };
        assert_eq!(key(1280, 720).level(), 31);
        assert_eq!(key(1920, 1080).level(), 40);
        assert_eq!(key(3840, 2160).level(), 50);
        assert_eq!(key(65_536, 65_536).level(), 0);
    }

    #[test]
    fn malformed() {
        assert!(KeyFrame::parse(&[]).is_err());
        assert!(KeyFrame::parse(&[0x02]).is_err(), "frame_marker 0");
        assert!(
            KeyFrame::parse(&[0x82, 0x49, 0x83, 0x43, 0, 0, 0, 0, 0]).is_err(),
            "sync code"
        );
        // Profile 0 cannot be RGB.
        assert!(KeyFrame::parse(&[0x82, 0x49, 0x83, 0x42, 0xe0, 0, 0, 0, 0]).is_err());
        assert!(VpConfig::parse(&[1, 0, 0]).is_err());
        assert!(VpConfig::parse(&[0; 12]).is_err());
        assert!(!is_keyframe(&[]));
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..32)) {
            if let Ok(key) = KeyFrame::parse(&data) {
                prop_assert!(is_keyframe(&data));
                let config = key.config();
                let mut boxed = vec![1, 0, 0, 0];
                boxed.extend_from_slice(&config.to_bytes());
                prop_assert_eq!(VpConfig::parse(&boxed).unwrap(), config);
            }
            let _ = VpConfig::parse(&data);
            let total: usize = ivf_frames(&data).map(<[u8]>::len).sum();
            prop_assert!(total <= data.len());
        }
    }
}
