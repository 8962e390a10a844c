//! H.264 / AVC: NAL unit types, the sequence parameter set, and the
//! `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3) that MP4 and RTMP carry.
//!
//! ```
//! use tributary_media::codec::h264::{AvcConfig, Sps};
//!
//! // x264, Constrained Baseline, 320x240 at 15 fps (testdata/ffmpeg_x264_baseline_*).
//! let sps = [
//!     0x67, 0x42, 0xc0, 0x0c, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
//!     0x00, 0x00, 0x03, 0x01, 0xe0, 0xf1, 0x42, 0xa4, 0x80,
//! ];
//! let pps = [0x68, 0xcb, 0x83, 0xcb, 0x20];
//! let parsed = Sps::parse(&sps).unwrap();
//! assert_eq!((parsed.width, parsed.height), (320, 240));
//! assert_eq!(parsed.codec_string(), "avc1.42c00c");
//!
//! let config = AvcConfig::from_parameter_sets(&sps, &pps).unwrap();
//! let bytes = config.to_vec().unwrap();
//! assert_eq!(AvcConfig::parse(&bytes).unwrap(), config);
//! ```

use bytes::{BufMut, Bytes};

use super::bits::BitReader;
use super::nal::{annex_b_nals, rbsp};
use super::{CodecError, FrameRate, LengthSize, TrackInfo};
use crate::Codec;

/// An H.264 NAL unit type (`nal_unit_type`, the low five bits of the header byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NalType(pub u8);

impl NalType {
    /// A slice of a non-IDR picture.
    pub const NON_IDR: Self = Self(1);
    /// A slice of an IDR picture: a keyframe.
    pub const IDR: Self = Self(5);
    /// Supplemental enhancement information.
    pub const SEI: Self = Self(6);
    /// Sequence parameter set.
    pub const SPS: Self = Self(7);
    /// Picture parameter set.
    pub const PPS: Self = Self(8);
    /// Access unit delimiter.
    pub const AUD: Self = Self(9);

    /// The type of a NAL unit (header byte first); `None` for an empty slice.
    pub fn of(nal: &[u8]) -> Option<Self> {
        nal.first().map(|b| Self(b & 0x1f))
    }

    /// Whether units of this type are parameter sets (SPS or PPS).
    pub fn is_parameter_set(self) -> bool {
        self == Self::SPS || self == Self::PPS
    }
}

/// Whether an Annex-B access unit contains an IDR slice (NAL type 5), i.e. is a keyframe.
pub fn is_keyframe(access_unit: &[u8]) -> bool {
    annex_b_nals(access_unit).any(|nal| NalType::of(nal) == Some(NalType::IDR))
}

/// The facts of a sequence parameter set that a media server needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sps {
    /// `profile_idc`: 66 Baseline, 77 Main, 100 High, 122 High 4:2:2, 244 High 4:4:4, ...
    pub profile_idc: u8,
    /// The byte of `constraint_set0_flag`..`constraint_set5_flag` and reserved bits, as coded.
    pub constraint_flags: u8,
    /// `level_idc`: ten times the level (31 = 3.1).
    pub level_idc: u8,
    /// `seq_parameter_set_id` (0 to 31).
    pub id: u8,
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    /// Luma bit depth (8 to 14).
    pub bit_depth_luma: u8,
    /// Chroma bit depth (8 to 14).
    pub bit_depth_chroma: u8,
    /// `frame_mbs_only_flag`: false when the stream may contain field pictures (interlaced).
    pub frame_mbs_only: bool,
    /// Displayed width in pixels, after the cropping rectangle.
    pub width: u32,
    /// Displayed frame height in pixels, after the cropping rectangle.
    pub height: u32,
    /// The frame rate from VUI timing information (`time_scale / (2 × num_units_in_tick)`),
    /// when present. A VUI that cannot be read leaves this `None` rather than failing.
    pub frame_rate: Option<FrameRate>,
}

impl Sps {
    /// Parses an SPS NAL unit, header byte first, emulation prevention bytes included.
    pub fn parse(nal: &[u8]) -> Result<Self, CodecError> {
        let found = NalType::of(nal).ok_or(CodecError::Truncated {
            field: "nal_unit_header",
            offset: 0,
        })?;
        if found != NalType::SPS {
            return Err(CodecError::NalType {
                expected: "SPS",
                found: found.0,
            });
        }
        let data = rbsp(nal);
        let mut r = BitReader::new(&data);
        r.skip(8, "nal_unit_header")?;
        let profile_idc = r.u8(8, "profile_idc")?;
        let constraint_flags = r.u8(8, "constraint_flags")?;
        let level_idc = r.u8(8, "level_idc")?;
        let id = r.ue_max(31, "seq_parameter_set_id")? as u8;

        let mut chroma_format_idc = 1;
        let mut separate_colour_plane = false;
        let mut bit_depth_luma = 8;
        let mut bit_depth_chroma = 8;
        if HIGH_PROFILES.contains(&profile_idc) {
            chroma_format_idc = r.ue_max(3, "chroma_format_idc")? as u8;
            if chroma_format_idc == 3 {
                separate_colour_plane = r.flag("separate_colour_plane_flag")?;
            }
            bit_depth_luma = 8 + r.ue_max(6, "bit_depth_luma_minus8")? as u8;
            bit_depth_chroma = 8 + r.ue_max(6, "bit_depth_chroma_minus8")? as u8;
            r.skip(1, "qpprime_y_zero_transform_bypass_flag")?;
            if r.flag("seq_scaling_matrix_present_flag")? {
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.flag("seq_scaling_list_present_flag")? {
                        skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        r.ue_max(12, "log2_max_frame_num_minus4")?;
        match r.ue_max(2, "pic_order_cnt_type")? {
            0 => {
                r.ue_max(12, "log2_max_pic_order_cnt_lsb_minus4")?;
            }
            1 => {
                r.skip(1, "delta_pic_order_always_zero_flag")?;
                r.se("offset_for_non_ref_pic")?;
                r.se("offset_for_top_to_bottom_field")?;
                let cycle = r.ue_max(255, "num_ref_frames_in_pic_order_cnt_cycle")?;
                for _ in 0..cycle {
                    r.se("offset_for_ref_frame")?;
                }
            }
            _ => {}
        }
        r.ue("max_num_ref_frames")?;
        r.skip(1, "gaps_in_frame_num_value_allowed_flag")?;
        let width_mbs = u64::from(r.ue("pic_width_in_mbs_minus1")?) + 1;
        let height_map_units = u64::from(r.ue("pic_height_in_map_units_minus1")?) + 1;
        let frame_mbs_only = r.flag("frame_mbs_only_flag")?;
        if !frame_mbs_only {
            r.skip(1, "mb_adaptive_frame_field_flag")?;
        }
        r.skip(1, "direct_8x8_inference_flag")?;
        let crop_offset = r.byte_offset();
        let mut crop = [0u64; 4];
        if r.flag("frame_cropping_flag")? {
            for c in &mut crop {
                *c = u64::from(r.ue("frame_crop_offset")?);
            }
        }
        let frame_rate = match r.flag("vui_parameters_present_flag") {
            Ok(true) => vui_frame_rate(&mut r).ok().flatten(),
            _ => None,
        };

        // Table 6-1 and equations 7-19 to 7-22.
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (sub_width, sub_height) = match chroma_array_type {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let field_factor = if frame_mbs_only { 1 } else { 2 };
        let (crop_unit_x, crop_unit_y) = if chroma_array_type == 0 {
            (1, field_factor)
        } else {
            (sub_width, sub_height * field_factor)
        };
        let coded_width = width_mbs * 16;
        let coded_height = height_map_units * 16 * field_factor;
        let crop_x = (crop[0] + crop[1]) * crop_unit_x;
        let crop_y = (crop[2] + crop[3]) * crop_unit_y;
        let size = |coded: u64, crop: u64, field| {
            coded
                .checked_sub(crop)
                .filter(|&v| v > 0)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or(CodecError::InvalidValue {
                    field,
                    value: crop,
                    offset: crop_offset,
                })
        };
        Ok(Self {
            profile_idc,
            constraint_flags,
            level_idc,
            id,
            chroma_format_idc,
            bit_depth_luma,
            bit_depth_chroma,
            frame_mbs_only,
            width: size(coded_width, crop_x, "frame_crop_left/right_offset")?,
            height: size(coded_height, crop_y, "frame_crop_top/bottom_offset")?,
            frame_rate,
        })
    }

    /// The RFC 6381 codec string, `avc1.PPCCLL` in lower-case hex (`avc1.64001f`).
    pub fn codec_string(&self) -> String {
        codec_string(self.profile_idc, self.constraint_flags, self.level_idc)
    }

    /// The track description this SPS gives.
    pub fn track_info(&self) -> TrackInfo {
        TrackInfo {
            width: Some(self.width),
            height: Some(self.height),
            frame_rate: self.frame_rate,
            codec_string: Some(self.codec_string()),
            profile: Some(self.profile_idc),
            level: Some(self.level_idc),
            ..TrackInfo::new(Codec::H264)
        }
    }
}

/// The RFC 6381 codec string for an H.264 profile, constraint byte and level (`avc1.64001f`).
pub fn codec_string(profile_idc: u8, constraint_flags: u8, level_idc: u8) -> String {
    format!("avc1.{profile_idc:02x}{constraint_flags:02x}{level_idc:02x}")
}

/// Reads the `seq_parameter_set_id` of an SPS NAL unit (header byte first).
pub fn sps_id(nal: &[u8]) -> Result<u8, CodecError> {
    let data = rbsp(nal.get(..nal.len().min(16)).unwrap_or(nal));
    let mut r = BitReader::new(&data);
    r.skip(32, "nal_unit_header, profile, constraints, level")?;
    Ok(r.ue_max(31, "seq_parameter_set_id")? as u8)
}

/// Reads the `pic_parameter_set_id` of a PPS NAL unit (header byte first).
pub fn pps_id(nal: &[u8]) -> Result<u8, CodecError> {
    let data = rbsp(nal.get(..nal.len().min(16)).unwrap_or(nal));
    let mut r = BitReader::new(&data);
    r.skip(8, "nal_unit_header")?;
    Ok(r.ue_max(255, "pic_parameter_set_id")? as u8)
}

/// An `AVCDecoderConfigurationRecord`: the `avcC` box of MP4 and the payload of an RTMP/FLV AVC
/// sequence header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// `AVCProfileIndication` (the SPS `profile_idc`).
    pub profile_idc: u8,
    /// `profile_compatibility` (the SPS constraint flags byte).
    pub constraint_flags: u8,
    /// `AVCLevelIndication` (the SPS `level_idc`).
    pub level_idc: u8,
    /// The size of the length prefix of each NAL unit in samples.
    pub length_size: LengthSize,
    /// The sequence parameter sets, NAL header included.
    pub sps: Vec<Bytes>,
    /// The picture parameter sets, NAL header included.
    pub pps: Vec<Bytes>,
    /// The extension for High profiles (100, 110, 122, 144), when the record carries one.
    pub high: Option<AvcHighExt>,
}

/// The part of an `AVCDecoderConfigurationRecord` that follows the PPS list for High profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcHighExt {
    /// `chroma_format` (the SPS `chroma_format_idc`).
    pub chroma_format_idc: u8,
    /// Luma bit depth.
    pub bit_depth_luma: u8,
    /// Chroma bit depth.
    pub bit_depth_chroma: u8,
    /// Sequence parameter set extensions (NAL type 13).
    pub sps_ext: Vec<Bytes>,
}

impl AvcConfig {
    /// Parses a record. The High-profile extension is read when present and well formed;
    /// encoders that omit or truncate it (many do) are accepted.
    pub fn parse(data: &[u8]) -> Result<Self, CodecError> {
        let header = data.get(..6).ok_or(CodecError::Truncated {
            field: "AVCDecoderConfigurationRecord header",
            offset: data.len(),
        })?;
        if header[0] != 1 {
            return Err(CodecError::InvalidValue {
                field: "configurationVersion",
                value: u64::from(header[0]),
                offset: 0,
            });
        }
        let mut pos = 5;
        let sps_count = usize::from(header[5] & 0x1f);
        pos += 1;
        let sps = read_list(data, &mut pos, sps_count, "sequenceParameterSetNALUnit")?;
        let pps_count = usize::from(*data.get(pos).ok_or(CodecError::Truncated {
            field: "numOfPictureParameterSets",
            offset: data.len(),
        })?);
        pos += 1;
        let pps = read_list(data, &mut pos, pps_count, "pictureParameterSetNALUnit")?;
        let high = if HIGH_EXT_PROFILES.contains(&header[1]) {
            read_high_ext(data, pos).ok()
        } else {
            None
        };
        Ok(Self {
            profile_idc: header[1],
            constraint_flags: header[2],
            level_idc: header[3],
            length_size: LengthSize::from_minus_one(header[4]),
            sps,
            pps,
            high,
        })
    }

    /// Builds a record from one SPS and one PPS (NAL header included), with four-byte lengths.
    ///
    /// The profile, level and High-profile extension come from the parsed SPS.
    pub fn from_parameter_sets(sps: &[u8], pps: &[u8]) -> Result<Self, CodecError> {
        let parsed = Sps::parse(sps)?;
        match NalType::of(pps) {
            Some(NalType::PPS) => {}
            found => {
                return Err(CodecError::NalType {
                    expected: "PPS",
                    found: found.map_or(0, |t| t.0),
                });
            }
        }
        let high = HIGH_EXT_PROFILES
            .contains(&parsed.profile_idc)
            .then(|| AvcHighExt {
                chroma_format_idc: parsed.chroma_format_idc,
                bit_depth_luma: parsed.bit_depth_luma,
                bit_depth_chroma: parsed.bit_depth_chroma,
                sps_ext: Vec::new(),
            });
        Ok(Self {
            profile_idc: parsed.profile_idc,
            constraint_flags: parsed.constraint_flags,
            level_idc: parsed.level_idc,
            length_size: LengthSize::FOUR,
            sps: vec![Bytes::copy_from_slice(sps)],
            pps: vec![Bytes::copy_from_slice(pps)],
            high,
        })
    }

    /// Writes the record to `out`.
    ///
    /// Fails when a list has more entries than its count field holds (31 SPS, 255 PPS or SPS
    /// extensions) or a parameter set is longer than 65535 bytes; nothing is written then.
    pub fn write<B: BufMut>(&self, out: &mut B) -> Result<(), CodecError> {
        check_list(&self.sps, 31, "sequence parameter sets")?;
        check_list(&self.pps, 255, "picture parameter sets")?;
        if let Some(high) = &self.high {
            check_list(&high.sps_ext, 255, "SPS extensions")?;
        }
        out.put_slice(&[
            1,
            self.profile_idc,
            self.constraint_flags,
            self.level_idc,
            0xfc | (self.length_size.get() - 1),
            0xe0 | self.sps.len() as u8,
        ]);
        write_list(&self.sps, out);
        out.put_u8(self.pps.len() as u8);
        write_list(&self.pps, out);
        if let Some(high) = &self.high {
            out.put_slice(&[
                0xfc | (high.chroma_format_idc & 3),
                0xf8 | (high.bit_depth_luma.wrapping_sub(8) & 7),
                0xf8 | (high.bit_depth_chroma.wrapping_sub(8) & 7),
                high.sps_ext.len() as u8,
            ]);
            write_list(&high.sps_ext, out);
        }
        Ok(())
    }

    /// The record as a new vector (see [`AvcConfig::write`]).
    pub fn to_vec(&self) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::new();
        self.write(&mut out)?;
        Ok(out)
    }

    /// The RFC 6381 codec string from the record's profile and level bytes.
    pub fn codec_string(&self) -> String {
        codec_string(self.profile_idc, self.constraint_flags, self.level_idc)
    }

    /// Writes every SPS then every PPS as Annex-B with four-byte start codes: what an ingest
    /// puts before a keyframe that came without them.
    pub fn write_annex_b<B: BufMut>(&self, out: &mut B) {
        for nal in self.sps.iter().chain(&self.pps) {
            out.put_slice(&super::nal::START_CODE);
            out.put_slice(nal);
        }
    }
}

/// Profiles whose SPS carries chroma format, bit depths and scaling lists (7.3.2.1.1).
const HIGH_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

/// Profiles whose configuration record carries the chroma/bit-depth extension (14496-15).
const HIGH_EXT_PROFILES: [u8; 4] = [100, 110, 122, 144];

/// Skips a `scaling_list()` of `size` coefficients (7.3.2.1.1.1).
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), CodecError> {
    let mut last = 8i32;
    let mut next = 8i32;
    for _ in 0..size {
        if next != 0 {
            let offset = r.byte_offset();
            let delta = r.se("delta_scale")?;
            // −128..=127 (7.4.2.1.1.1); a larger one would overflow the sum.
            if !(-128..=127).contains(&delta) {
                return Err(CodecError::InvalidValue {
                    field: "delta_scale",
                    value: u64::from(delta.unsigned_abs()),
                    offset,
                });
            }
            next = (last + delta).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// Reads VUI parameters up to the timing information (E.1.1).
fn vui_frame_rate(r: &mut BitReader<'_>) -> Result<Option<FrameRate>, CodecError> {
    if r.flag("aspect_ratio_info_present_flag")? && r.u8(8, "aspect_ratio_idc")? == 255 {
        r.skip(32, "sar_width, sar_height")?;
    }
    if r.flag("overscan_info_present_flag")? {
        r.skip(1, "overscan_appropriate_flag")?;
    }
    if r.flag("video_signal_type_present_flag")? {
        r.skip(4, "video_format, video_full_range_flag")?;
        if r.flag("colour_description_present_flag")? {
            r.skip(24, "colour_description")?;
        }
    }
    if r.flag("chroma_loc_info_present_flag")? {
        r.ue("chroma_sample_loc_type_top_field")?;
        r.ue("chroma_sample_loc_type_bottom_field")?;
    }
    if !r.flag("timing_info_present_flag")? {
        return Ok(None);
    }
    let num_units_in_tick = r.bits(32, "num_units_in_tick")?;
    let time_scale = r.bits(32, "time_scale")?;
    Ok(FrameRate::new(
        u64::from(time_scale),
        2 * u64::from(num_units_in_tick),
    ))
}

/// Reads `count` entries of a 16-bit-length-prefixed NAL list.
fn read_list(
    data: &[u8],
    pos: &mut usize,
    count: usize,
    field: &'static str,
) -> Result<Vec<Bytes>, CodecError> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let len = data
            .get(*pos..*pos + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or(CodecError::Truncated {
                field,
                offset: data.len(),
            })?;
        let nal = data
            .get(*pos + 2..*pos + 2 + len)
            .ok_or(CodecError::NalOverrun {
                offset: *pos,
                len,
                remaining: data.len().saturating_sub(*pos + 2),
            })?;
        out.push(Bytes::copy_from_slice(nal));
        *pos += 2 + len;
    }
    Ok(out)
}

fn read_high_ext(data: &[u8], mut pos: usize) -> Result<AvcHighExt, CodecError> {
    let ext = data.get(pos..pos + 4).ok_or(CodecError::Truncated {
        field: "AVCDecoderConfigurationRecord High profile extension",
        offset: data.len(),
    })?;
    let (chroma, luma, chroma_depth, count) = (ext[0], ext[1], ext[2], ext[3]);
    pos += 4;
    let sps_ext = read_list(
        data,
        &mut pos,
        usize::from(count),
        "sequenceParameterSetExtNALUnit",
    )?;
    Ok(AvcHighExt {
        chroma_format_idc: chroma & 3,
        bit_depth_luma: 8 + (luma & 7),
        bit_depth_chroma: 8 + (chroma_depth & 7),
        sps_ext,
    })
}

pub(crate) fn check_list(list: &[Bytes], max: usize, what: &'static str) -> Result<(), CodecError> {
    if list.len() > max {
        return Err(CodecError::TooLarge {
            what,
            len: list.len(),
            max,
        });
    }
    if let Some(nal) = list.iter().find(|nal| nal.len() > usize::from(u16::MAX)) {
        return Err(CodecError::TooLarge {
            what: "parameter set",
            len: nal.len(),
            max: usize::from(u16::MAX),
        });
    }
    Ok(())
}

/// Writes each entry with a 16-bit length (checked by [`check_list`]).
pub(crate) fn write_list<B: BufMut>(list: &[Bytes], out: &mut B) {
    for nal in list {
        out.put_u16(nal.len() as u16);
        out.put_slice(nal);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The first SPS and the first PPS in an Annex-B test vector.
    fn parameter_sets(stream: &[u8]) -> (&[u8], &[u8]) {
        let sps = annex_b_nals(stream).find(|n| NalType::of(n) == Some(NalType::SPS));
        let pps = annex_b_nals(stream).find(|n| NalType::of(n) == Some(NalType::PPS));
        (sps.unwrap(), pps.unwrap())
    }

    fn sps_of(stream: &[u8]) -> Sps {
        Sps::parse(parameter_sets(stream).0).unwrap()
    }

    #[test]
    fn x264_high_720p30() {
        let stream = include_bytes!("../../testdata/ffmpeg_x264_high_1280x720_30fps.h264");
        let sps = sps_of(stream);
        assert_eq!(
            sps,
            Sps {
                profile_idc: 100,
                constraint_flags: 0,
                level_idc: 31,
                id: 0,
                chroma_format_idc: 1,
                bit_depth_luma: 8,
                bit_depth_chroma: 8,
                frame_mbs_only: true,
                width: 1280,
                height: 720,
                frame_rate: FrameRate::new(30, 1),
            }
        );
        assert_eq!(sps.codec_string(), "avc1.64001f");
        assert!(is_keyframe(stream));
        let info = sps.track_info();
        assert_eq!(info.fps(), Some(30.0));
        assert_eq!(info.kind(), crate::MediaKind::Video);
    }

    #[test]
    fn x264_1080p_is_cropped_from_1088() {
        let sps = sps_of(include_bytes!(
            "../../testdata/ffmpeg_x264_high_1920x1080_25fps.h264"
        ));
        assert_eq!((sps.width, sps.height), (1920, 1080));
        assert_eq!(sps.frame_rate, FrameRate::new(25, 1));
        assert_eq!(sps.codec_string(), "avc1.640028");
    }

    #[test]
    fn x264_interlaced_1080i() {
        let sps = sps_of(include_bytes!(
            "../../testdata/ffmpeg_x264_interlaced_1920x1080_25fps.h264"
        ));
        assert!(!sps.frame_mbs_only);
        assert_eq!((sps.width, sps.height), (1920, 1080));
        assert_eq!(sps.frame_rate, FrameRate::new(25, 1));
    }

    #[test]
    fn x264_high422_ntsc() {
        let sps = sps_of(include_bytes!(
            "../../testdata/ffmpeg_x264_high422_720x486_2997fps.h264"
        ));
        assert_eq!(sps.profile_idc, 122);
        assert_eq!(sps.chroma_format_idc, 2);
        assert_eq!((sps.width, sps.height), (720, 486));
        assert_eq!(sps.frame_rate, FrameRate::new(30_000, 1001));
        assert_eq!(sps.codec_string(), "avc1.7a001f");
    }

    #[test]
    fn x264_high444_with_scaling_lists() {
        let sps = sps_of(include_bytes!(
            "../../testdata/ffmpeg_x264_high444_cqm_1366x768_50fps.h264"
        ));
        assert_eq!(sps.profile_idc, 244);
        assert_eq!(sps.chroma_format_idc, 3);
        assert_eq!((sps.width, sps.height), (1366, 768));
        assert_eq!(sps.frame_rate, FrameRate::new(50, 1));
        assert_eq!(sps.level_idc, 32);
    }

    #[test]
    fn x264_baseline() {
        let sps = sps_of(include_bytes!(
            "../../testdata/ffmpeg_x264_baseline_320x240_15fps.h264"
        ));
        assert_eq!(sps.profile_idc, 66);
        assert_eq!(sps.constraint_flags, 0xc0);
        assert_eq!((sps.width, sps.height), (320, 240));
        assert_eq!(sps.frame_rate, FrameRate::new(15, 1));
        assert_eq!(sps.codec_string(), "avc1.42c00c");
    }

    #[test]
    fn ffmpeg_avcc_record() {
        let record = include_bytes!("../../testdata/ffmpeg_x264_high_1280x720_30fps.avcc");
        let stream = include_bytes!("../../testdata/ffmpeg_x264_high_1280x720_30fps.h264");
        let config = AvcConfig::parse(record).unwrap();
        let (sps, pps) = parameter_sets(stream);
        assert_eq!(config.sps, [sps]);
        assert_eq!(config.pps, [pps]);
        assert_eq!(config.length_size, LengthSize::FOUR);
        assert_eq!(config.codec_string(), "avc1.64001f");
        assert_eq!(
            config.high,
            Some(AvcHighExt {
                chroma_format_idc: 1,
                bit_depth_luma: 8,
                bit_depth_chroma: 8,
                sps_ext: vec![],
            })
        );
        // Built from the same parameter sets, the record is byte-identical to FFmpeg's.
        let built = AvcConfig::from_parameter_sets(sps, pps).unwrap();
        assert_eq!(built, config);
        assert_eq!(built.to_vec().unwrap(), record);

        let mut annex_b = Vec::new();
        config.write_annex_b(&mut annex_b);
        assert_eq!(annex_b_nals(&annex_b).count(), 2);
    }

    /// Regression (fuzz target `h264_sps`, its corpus's `crash_delta_scale_overflow`): a High 10
    /// SPS whose scaling list carries a `delta_scale` far outside −128..=127 overflowed the
    /// list's running sum; it is an error naming the field.
    #[test]
    fn an_out_of_range_delta_scale_is_an_error() {
        let sps = [
            0x67, 0x6e, 0x00, 0xff, 0xff, 0x5e, 0xff, 0x00, 0x00, 0x00, 0x01, 0x67, 0x6e, 0x00,
            0x0d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x13, 0xa6, 0xcd, 0x94, 0xb0, 0x11, 0x04,
            0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
            0x92, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0d, 0xa6, 0xcd, 0x94,
        ];
        assert!(matches!(
            Sps::parse(&sps),
            Err(CodecError::InvalidValue {
                field: "delta_scale",
                ..
            })
        ));
    }

    #[test]
    fn errors_name_fields() {
        assert_eq!(
            Sps::parse(&[0x68, 0]),
            Err(CodecError::NalType {
                expected: "SPS",
                found: 8
            })
        );
        assert!(matches!(
            Sps::parse(&[0x67, 0x64, 0, 0x1f]),
            Err(CodecError::Truncated {
                field: "seq_parameter_set_id",
                ..
            })
        ));
        assert!(matches!(
            AvcConfig::parse(&[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 9, 0x67]),
            Err(CodecError::NalOverrun {
                offset: 6,
                len: 9,
                ..
            })
        ));
        assert!(matches!(
            AvcConfig::parse(&[0, 0x64, 0, 0x1f, 0xff, 0xe0, 0]),
            Err(CodecError::InvalidValue {
                field: "configurationVersion",
                ..
            })
        ));
    }

    #[test]
    fn parameter_set_ids() {
        let stream = include_bytes!("../../testdata/ffmpeg_x264_high_1280x720_30fps.h264");
        let (sps, pps) = parameter_sets(stream);
        assert_eq!(sps_id(sps), Ok(0));
        assert_eq!(pps_id(pps), Ok(0));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(data in prop::collection::vec(any::<u8>(), 0..128)) {
            let _ = AvcConfig::parse(&data);
            let _ = sps_id(&data);
            let _ = pps_id(&data);
            let mut sps = data.clone();
            if let Some(b) = sps.first_mut() {
                *b = 0x67;
            }
            let _ = Sps::parse(&sps);
        }

        /// What the `h264_sps` fuzz target asserts: a parsed record writes and parses back.
        #[test]
        fn parsed_config_reparses(mut data in prop::collection::vec(any::<u8>(), 0..128)) {
            if let Some(b) = data.first_mut() {
                *b = 1;
            }
            if let Ok(config) = AvcConfig::parse(&data) {
                let bytes = config.to_vec().unwrap();
                prop_assert_eq!(AvcConfig::parse(&bytes).unwrap(), config);
            }
        }

        #[test]
        fn config_round_trip(
            sps in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..40), 0..4),
            pps in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..40), 0..4),
            profile in any::<u8>(), flags in any::<u8>(), level in any::<u8>(), size in 1u8..=4,
        ) {
            let high = HIGH_EXT_PROFILES.contains(&profile).then(|| AvcHighExt {
                chroma_format_idc: 1, bit_depth_luma: 10, bit_depth_chroma: 8, sps_ext: vec![],
            });
            let config = AvcConfig {
                profile_idc: profile,
                constraint_flags: flags,
                level_idc: level,
                length_size: LengthSize::new(size).unwrap(),
                sps: sps.into_iter().map(Bytes::from).collect(),
                pps: pps.into_iter().map(Bytes::from).collect(),
                high,
            };
            prop_assert_eq!(AvcConfig::parse(&config.to_vec().unwrap()).unwrap(), config);
        }
    }
}
