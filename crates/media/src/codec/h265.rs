//! H.265 / HEVC: NAL unit types, the sequence parameter set, and the
//! `HEVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §8.3.3) that MP4 and Enhanced RTMP carry.

use bytes::{BufMut, Bytes};

use super::bits::BitReader;
use super::h264::{check_list, write_list};
use super::nal::{START_CODE, annex_b_nals, rbsp};
use super::{CodecError, FrameRate, LengthSize, TrackInfo};
use crate::Codec;

/// An H.265 NAL unit type (`nal_unit_type`, six bits of the two-byte header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NalType(pub u8);

impl NalType {
    /// `IDR_W_RADL`, an IDR picture that may have leading pictures.
    pub const IDR_W_RADL: Self = Self(19);
    /// `IDR_N_LP`, an IDR picture without leading pictures.
    pub const IDR_N_LP: Self = Self(20);
    /// `CRA_NUT`, a clean random access picture.
    pub const CRA: Self = Self(21);
    /// Video parameter set.
    pub const VPS: Self = Self(32);
    /// Sequence parameter set.
    pub const SPS: Self = Self(33);
    /// Picture parameter set.
    pub const PPS: Self = Self(34);
    /// Access unit delimiter.
    pub const AUD: Self = Self(35);
    /// Prefix SEI.
    pub const PREFIX_SEI: Self = Self(39);

    /// The type of a NAL unit (header first); `None` for an empty slice.
    pub fn of(nal: &[u8]) -> Option<Self> {
        nal.first().map(|b| Self((b >> 1) & 0x3f))
    }

    /// Whether this is an intra random access point picture (types 16 to 21: BLA, IDR, CRA),
    /// where decoding can start: a keyframe.
    pub fn is_irap(self) -> bool {
        (16..=21).contains(&self.0)
    }

    /// Whether units of this type are parameter sets (VPS, SPS or PPS).
    pub fn is_parameter_set(self) -> bool {
        (32..=34).contains(&self.0)
    }
}

/// Whether an Annex-B access unit contains an IRAP picture (NAL types 16 to 21).
pub fn is_keyframe(access_unit: &[u8]) -> bool {
    annex_b_nals(access_unit).any(|nal| NalType::of(nal).is_some_and(NalType::is_irap))
}

/// The general profile, tier and level of a stream (7.3.3), as the SPS and the configuration
/// record carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProfileTierLevel {
    /// `general_profile_space` (0 in every deployed stream).
    pub profile_space: u8,
    /// `general_tier_flag`: false Main tier, true High tier.
    pub high_tier: bool,
    /// `general_profile_idc`: 1 Main, 2 Main 10, 3 Main Still Picture, 4 range extensions.
    pub profile_idc: u8,
    /// `general_profile_compatibility_flag[0..32]`, flag 0 in the most significant bit.
    pub compatibility_flags: u32,
    /// The 48 bits from `general_progressive_source_flag` on, in the low bits.
    pub constraint_flags: u64,
    /// `general_level_idc`: thirty times the level (93 = 3.1, 120 = 4).
    pub level_idc: u8,
}

impl ProfileTierLevel {
    /// The RFC 6381 / ISO 14496-15 Annex E codec string with sample entry `hvc1`
    /// (`hvc1.1.6.L93.B0`).
    pub fn codec_string(&self) -> String {
        let space = match self.profile_space {
            1 => "A",
            2 => "B",
            3 => "C",
            _ => "",
        };
        let tier = if self.high_tier { 'H' } else { 'L' };
        let mut out = format!(
            "hvc1.{space}{}.{:X}.{tier}{}",
            self.profile_idc,
            self.compatibility_flags.reverse_bits(),
            self.level_idc
        );
        let bytes = self.constraint_flags.to_be_bytes();
        let constraint = &bytes[2..];
        let used = constraint
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i + 1);
        for b in &constraint[..used] {
            out.push_str(&format!(".{b:X}"));
        }
        out
    }

    fn read(r: &mut BitReader<'_>, max_sub_layers_minus1: u8) -> Result<Self, CodecError> {
        let profile_space = r.u8(2, "general_profile_space")?;
        let high_tier = r.flag("general_tier_flag")?;
        let profile_idc = r.u8(5, "general_profile_idc")?;
        let compatibility_flags = r.bits(32, "general_profile_compatibility_flags")?;
        let high = r.bits(16, "general_constraint_flags")?;
        let low = r.bits(32, "general_constraint_flags")?;
        let level_idc = r.u8(8, "general_level_idc")?;
        let mut profile_present = [false; 8];
        let mut level_present = [false; 8];
        let sub_layers = usize::from(max_sub_layers_minus1);
        for i in 0..sub_layers {
            profile_present[i] = r.flag("sub_layer_profile_present_flag")?;
            level_present[i] = r.flag("sub_layer_level_present_flag")?;
        }
        if sub_layers > 0 {
            r.skip(2 * (8 - sub_layers), "reserved_zero_2bits")?;
        }
        for i in 0..sub_layers {
            if profile_present[i] {
                r.skip(88, "sub_layer_profile")?;
            }
            if level_present[i] {
                r.skip(8, "sub_layer_level_idc")?;
            }
        }
        Ok(Self {
            profile_space,
            high_tier,
            profile_idc,
            compatibility_flags,
            constraint_flags: (u64::from(high) << 32) | u64::from(low),
            level_idc,
        })
    }
}

/// The facts of a sequence parameter set that a media server needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sps {
    /// `sps_video_parameter_set_id`.
    pub vps_id: u8,
    /// `sps_max_sub_layers_minus1 + 1`.
    pub max_sub_layers: u8,
    /// `sps_temporal_id_nesting_flag`.
    pub temporal_id_nesting: bool,
    /// General profile, tier and level.
    pub profile_tier_level: ProfileTierLevel,
    /// `sps_seq_parameter_set_id` (0 to 15).
    pub id: u8,
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    /// Luma bit depth (8 to 16).
    pub bit_depth_luma: u8,
    /// Chroma bit depth (8 to 16).
    pub bit_depth_chroma: u8,
    /// Displayed width in pixels, after the conformance window.
    pub width: u32,
    /// Displayed height in pixels, after the conformance window.
    pub height: u32,
    /// The frame rate from VUI timing information (`time_scale / num_units_in_tick`), when
    /// present. A VUI that cannot be read leaves this `None` rather than failing.
    pub frame_rate: Option<FrameRate>,
}

impl Sps {
    /// Parses an SPS NAL unit, two-byte header first, emulation prevention bytes included.
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
        r.skip(16, "nal_unit_header")?;
        let vps_id = r.u8(4, "sps_video_parameter_set_id")?;
        let max_sub_layers_minus1 = r.u8(3, "sps_max_sub_layers_minus1")?;
        if max_sub_layers_minus1 > 6 {
            return Err(CodecError::InvalidValue {
                field: "sps_max_sub_layers_minus1",
                value: u64::from(max_sub_layers_minus1),
                offset: 2,
            });
        }
        let temporal_id_nesting = r.flag("sps_temporal_id_nesting_flag")?;
        let profile_tier_level = ProfileTierLevel::read(&mut r, max_sub_layers_minus1)?;
        let id = r.ue_max(15, "sps_seq_parameter_set_id")? as u8;
        let chroma_format_idc = r.ue_max(3, "chroma_format_idc")? as u8;
        let separate_colour_plane = chroma_format_idc == 3 && r.flag("separate_colour_plane")?;
        let width = u64::from(r.ue("pic_width_in_luma_samples")?);
        let height = u64::from(r.ue("pic_height_in_luma_samples")?);
        let window_offset = r.byte_offset();
        let mut window = [0u64; 4];
        if r.flag("conformance_window_flag")? {
            for w in &mut window {
                *w = u64::from(r.ue("conf_win_offset")?);
            }
        }
        let bit_depth_luma = 8 + r.ue_max(8, "bit_depth_luma_minus8")? as u8;
        let bit_depth_chroma = 8 + r.ue_max(8, "bit_depth_chroma_minus8")? as u8;
        let frame_rate = skip_to_vui(&mut r, max_sub_layers_minus1)
            .ok()
            .filter(|&present| present)
            .and_then(|_| vui_frame_rate(&mut r).ok().flatten());

        let (sub_width, sub_height) = match (separate_colour_plane, chroma_format_idc) {
            (false, 1) => (2, 2),
            (false, 2) => (2, 1),
            _ => (1, 1),
        };
        let crop_x = (window[0] + window[1]) * sub_width;
        let crop_y = (window[2] + window[3]) * sub_height;
        let size = |coded: u64, crop: u64, field| {
            coded
                .checked_sub(crop)
                .filter(|&v| v > 0)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or(CodecError::InvalidValue {
                    field,
                    value: crop,
                    offset: window_offset,
                })
        };
        Ok(Self {
            vps_id,
            max_sub_layers: max_sub_layers_minus1 + 1,
            temporal_id_nesting,
            profile_tier_level,
            id,
            chroma_format_idc,
            bit_depth_luma,
            bit_depth_chroma,
            width: size(width, crop_x, "conf_win_left/right_offset")?,
            height: size(height, crop_y, "conf_win_top/bottom_offset")?,
            frame_rate,
        })
    }

    /// The codec string (`hvc1.1.6.L93.B0`), see [`ProfileTierLevel::codec_string`].
    pub fn codec_string(&self) -> String {
        self.profile_tier_level.codec_string()
    }

    /// The track description this SPS gives.
    pub fn track_info(&self) -> TrackInfo {
        TrackInfo {
            width: Some(self.width),
            height: Some(self.height),
            frame_rate: self.frame_rate,
            codec_string: Some(self.codec_string()),
            profile: Some(self.profile_tier_level.profile_idc),
            level: Some(self.profile_tier_level.level_idc),
            ..TrackInfo::new(Codec::H265)
        }
    }
}

/// Reads the `vps_video_parameter_set_id` of a VPS NAL unit (header first).
pub fn vps_id(nal: &[u8]) -> Result<u8, CodecError> {
    match nal.get(2) {
        Some(b) => Ok(b >> 4),
        None => Err(CodecError::Truncated {
            field: "vps_video_parameter_set_id",
            offset: nal.len(),
        }),
    }
}

/// Reads the `sps_seq_parameter_set_id` of an SPS NAL unit (header first).
pub fn sps_id(nal: &[u8]) -> Result<u8, CodecError> {
    let data = rbsp(nal);
    let mut r = BitReader::new(&data);
    r.skip(16 + 4, "nal_unit_header, sps_video_parameter_set_id")?;
    let max_sub_layers_minus1 = r.u8(3, "sps_max_sub_layers_minus1")?;
    r.skip(1, "sps_temporal_id_nesting_flag")?;
    ProfileTierLevel::read(&mut r, max_sub_layers_minus1.min(6))?;
    Ok(r.ue_max(15, "sps_seq_parameter_set_id")? as u8)
}

/// Reads the `pps_pic_parameter_set_id` of a PPS NAL unit (header first).
pub fn pps_id(nal: &[u8]) -> Result<u8, CodecError> {
    let data = rbsp(nal.get(..nal.len().min(16)).unwrap_or(nal));
    let mut r = BitReader::new(&data);
    r.skip(16, "nal_unit_header")?;
    Ok(r.ue_max(63, "pps_pic_parameter_set_id")? as u8)
}

/// A `HEVCDecoderConfigurationRecord`: the `hvcC` box of MP4 and the payload of an Enhanced
/// RTMP HEVC sequence header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcConfig {
    /// General profile, tier and level.
    pub profile_tier_level: ProfileTierLevel,
    /// `min_spatial_segmentation_idc` (12 bits).
    pub min_spatial_segmentation: u16,
    /// `parallelismType` (2 bits).
    pub parallelism_type: u8,
    /// `chromaFormat` (the SPS `chroma_format_idc`).
    pub chroma_format_idc: u8,
    /// Luma bit depth.
    pub bit_depth_luma: u8,
    /// Chroma bit depth.
    pub bit_depth_chroma: u8,
    /// `avgFrameRate` in frames per 256 seconds, 0 when unspecified.
    pub avg_frame_rate: u16,
    /// `constantFrameRate` (2 bits).
    pub constant_frame_rate: u8,
    /// `numTemporalLayers` (3 bits).
    pub num_temporal_layers: u8,
    /// `temporalIdNested`.
    pub temporal_id_nested: bool,
    /// The size of the length prefix of each NAL unit in samples.
    pub length_size: LengthSize,
    /// The video parameter sets, header included.
    pub vps: Vec<Bytes>,
    /// The sequence parameter sets, header included.
    pub sps: Vec<Bytes>,
    /// The picture parameter sets, header included.
    pub pps: Vec<Bytes>,
    /// Units of other types in the record (SEI), header included, in record order.
    pub other: Vec<Bytes>,
}

impl HevcConfig {
    /// Parses a record.
    pub fn parse(data: &[u8]) -> Result<Self, CodecError> {
        let h = data.get(..23).ok_or(CodecError::Truncated {
            field: "HEVCDecoderConfigurationRecord header",
            offset: data.len(),
        })?;
        if h[0] != 1 {
            return Err(CodecError::InvalidValue {
                field: "configurationVersion",
                value: u64::from(h[0]),
                offset: 0,
            });
        }
        let mut r = BitReader::new(&h[1..13]);
        let profile_tier_level = ProfileTierLevel::read(&mut r, 0)?;
        let mut config = Self {
            profile_tier_level,
            min_spatial_segmentation: u16::from_be_bytes([h[13], h[14]]) & 0x0fff,
            parallelism_type: h[15] & 3,
            chroma_format_idc: h[16] & 3,
            bit_depth_luma: 8 + (h[17] & 7),
            bit_depth_chroma: 8 + (h[18] & 7),
            avg_frame_rate: u16::from_be_bytes([h[19], h[20]]),
            constant_frame_rate: h[21] >> 6,
            num_temporal_layers: (h[21] >> 3) & 7,
            temporal_id_nested: h[21] & 4 != 0,
            length_size: LengthSize::from_minus_one(h[21]),
            vps: Vec::new(),
            sps: Vec::new(),
            pps: Vec::new(),
            other: Vec::new(),
        };
        let arrays = h[22];
        let mut pos = 23;
        for _ in 0..arrays {
            let head = data.get(pos..pos + 3).ok_or(CodecError::Truncated {
                field: "HEVCDecoderConfigurationRecord array header",
                offset: data.len(),
            })?;
            let count = u16::from_be_bytes([head[1], head[2]]);
            pos += 3;
            for _ in 0..count {
                let len = data
                    .get(pos..pos + 2)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                    .ok_or(CodecError::Truncated {
                        field: "nalUnitLength",
                        offset: data.len(),
                    })?;
                let nal = data
                    .get(pos + 2..pos + 2 + len)
                    .ok_or(CodecError::NalOverrun {
                        offset: pos,
                        len,
                        remaining: data.len().saturating_sub(pos + 2),
                    })?;
                pos += 2 + len;
                // The unit's own header is authoritative; the array's type byte can lie.
                let nal = Bytes::copy_from_slice(nal);
                match NalType::of(&nal) {
                    Some(NalType::VPS) => config.vps.push(nal),
                    Some(NalType::SPS) => config.sps.push(nal),
                    Some(NalType::PPS) => config.pps.push(nal),
                    Some(_) => config.other.push(nal),
                    None => {}
                }
            }
        }
        Ok(config)
    }

    /// Builds a record from one VPS, SPS and PPS (headers included), with four-byte lengths.
    ///
    /// Profile, tier, level, chroma format, bit depths and temporal layers come from the parsed
    /// SPS; the frame-rate fields are left unspecified (0), as FFmpeg writes them.
    pub fn from_parameter_sets(vps: &[u8], sps: &[u8], pps: &[u8]) -> Result<Self, CodecError> {
        let parsed = Sps::parse(sps)?;
        for (nal, expected, name) in [(vps, NalType::VPS, "VPS"), (pps, NalType::PPS, "PPS")] {
            let found = NalType::of(nal);
            if found != Some(expected) {
                return Err(CodecError::NalType {
                    expected: name,
                    found: found.map_or(0, |t| t.0),
                });
            }
        }
        Ok(Self {
            profile_tier_level: parsed.profile_tier_level,
            min_spatial_segmentation: 0,
            parallelism_type: 0,
            chroma_format_idc: parsed.chroma_format_idc,
            bit_depth_luma: parsed.bit_depth_luma,
            bit_depth_chroma: parsed.bit_depth_chroma,
            avg_frame_rate: 0,
            constant_frame_rate: 0,
            num_temporal_layers: parsed.max_sub_layers,
            temporal_id_nested: parsed.temporal_id_nesting,
            length_size: LengthSize::FOUR,
            vps: vec![Bytes::copy_from_slice(vps)],
            sps: vec![Bytes::copy_from_slice(sps)],
            pps: vec![Bytes::copy_from_slice(pps)],
            other: Vec::new(),
        })
    }

    /// Writes the record to `out`: one array each for VPS, SPS and PPS (complete), then one
    /// per other unit type.
    ///
    /// Fails when an array holds more than 65535 units or a unit is longer than 65535 bytes;
    /// nothing is written then.
    pub fn write<B: BufMut>(&self, out: &mut B) -> Result<(), CodecError> {
        let max = usize::from(u16::MAX);
        check_list(&self.vps, max, "video parameter sets")?;
        check_list(&self.sps, max, "sequence parameter sets")?;
        check_list(&self.pps, max, "picture parameter sets")?;
        check_list(&self.other, max, "other NAL units")?;
        let ptl = &self.profile_tier_level;
        out.put_u8(1);
        out.put_u8(
            (ptl.profile_space & 3) << 6 | u8::from(ptl.high_tier) << 5 | ptl.profile_idc & 0x1f,
        );
        out.put_u32(ptl.compatibility_flags);
        out.put_slice(&ptl.constraint_flags.to_be_bytes()[2..]);
        out.put_u8(ptl.level_idc);
        out.put_u16(0xf000 | (self.min_spatial_segmentation & 0x0fff));
        out.put_u8(0xfc | (self.parallelism_type & 3));
        out.put_u8(0xfc | (self.chroma_format_idc & 3));
        out.put_u8(0xf8 | (self.bit_depth_luma.wrapping_sub(8) & 7));
        out.put_u8(0xf8 | (self.bit_depth_chroma.wrapping_sub(8) & 7));
        out.put_u16(self.avg_frame_rate);
        out.put_u8(
            (self.constant_frame_rate & 3) << 6
                | (self.num_temporal_layers & 7) << 3
                | u8::from(self.temporal_id_nested) << 2
                | (self.length_size.get() - 1),
        );
        // Other units are grouped by type, in order of first appearance.
        let mut other_types: Vec<u8> = Vec::new();
        for nal in &self.other {
            if let Some(t) = NalType::of(nal)
                && !other_types.contains(&t.0)
            {
                other_types.push(t.0);
            }
        }
        let arrays = [&self.vps, &self.sps, &self.pps]
            .iter()
            .filter(|list| !list.is_empty())
            .count()
            + other_types.len();
        // At most 3 + 64 arrays: one per NAL unit type.
        out.put_u8(arrays as u8);
        for (list, t) in [
            (&self.vps, NalType::VPS),
            (&self.sps, NalType::SPS),
            (&self.pps, NalType::PPS),
        ] {
            if !list.is_empty() {
                out.put_u8(0x80 | t.0);
                out.put_u16(list.len() as u16);
                write_list(list, out);
            }
        }
        for t in other_types {
            let units: Vec<Bytes> = self
                .other
                .iter()
                .filter(|nal| NalType::of(nal) == Some(NalType(t)))
                .cloned()
                .collect();
            out.put_u8(t);
            out.put_u16(units.len() as u16);
            write_list(&units, out);
        }
        Ok(())
    }

    /// The record as a new vector (see [`HevcConfig::write`]).
    pub fn to_vec(&self) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::new();
        self.write(&mut out)?;
        Ok(out)
    }

    /// The codec string (`hvc1.1.6.L93.B0`).
    pub fn codec_string(&self) -> String {
        self.profile_tier_level.codec_string()
    }

    /// Writes every VPS, SPS then PPS as Annex-B with four-byte start codes.
    pub fn write_annex_b<B: BufMut>(&self, out: &mut B) {
        for nal in self.vps.iter().chain(&self.sps).chain(&self.pps) {
            out.put_slice(&START_CODE);
            out.put_slice(nal);
        }
    }
}

/// Reads from after the bit depths to `vui_parameters_present_flag` (7.3.2.2.1); returns it.
fn skip_to_vui(r: &mut BitReader<'_>, max_sub_layers_minus1: u8) -> Result<bool, CodecError> {
    let log2_max_poc_lsb = r.ue_max(12, "log2_max_pic_order_cnt_lsb_minus4")? + 4;
    let ordering_all = r.flag("sps_sub_layer_ordering_info_present_flag")?;
    let first = if ordering_all {
        0
    } else {
        max_sub_layers_minus1
    };
    for _ in first..=max_sub_layers_minus1 {
        r.ue("sps_max_dec_pic_buffering_minus1")?;
        r.ue("sps_max_num_reorder_pics")?;
        r.ue("sps_max_latency_increase_plus1")?;
    }
    r.ue("log2_min_luma_coding_block_size_minus3")?;
    r.ue("log2_diff_max_min_luma_coding_block_size")?;
    r.ue("log2_min_luma_transform_block_size_minus2")?;
    r.ue("log2_diff_max_min_luma_transform_block_size")?;
    r.ue("max_transform_hierarchy_depth_inter")?;
    r.ue("max_transform_hierarchy_depth_intra")?;
    if r.flag("scaling_list_enabled_flag")? && r.flag("sps_scaling_list_data_present_flag")? {
        skip_scaling_list_data(r)?;
    }
    r.skip(2, "amp_enabled_flag, sample_adaptive_offset_enabled_flag")?;
    if r.flag("pcm_enabled_flag")? {
        r.skip(8, "pcm_sample_bit_depth")?;
        r.ue("log2_min_pcm_luma_coding_block_size_minus3")?;
        r.ue("log2_diff_max_min_pcm_luma_coding_block_size")?;
        r.skip(1, "pcm_loop_filter_disabled_flag")?;
    }
    let sets = r.ue_max(64, "num_short_term_ref_pic_sets")? as usize;
    let mut delta_pocs = [0u32; 64];
    for idx in 0..sets {
        delta_pocs[idx] = skip_st_ref_pic_set(r, idx, &delta_pocs[..idx])?;
    }
    if r.flag("long_term_ref_pics_present_flag")? {
        let count = r.ue_max(32, "num_long_term_ref_pics_sps")?;
        for _ in 0..count {
            r.skip(log2_max_poc_lsb as usize + 1, "lt_ref_pic_poc_lsb_sps")?;
        }
    }
    r.skip(
        2,
        "sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag",
    )?;
    r.flag("vui_parameters_present_flag")
}

/// Skips `scaling_list_data()` (7.3.4).
fn skip_scaling_list_data(r: &mut BitReader<'_>) -> Result<(), CodecError> {
    for size_id in 0..4 {
        let step = if size_id == 3 { 3 } else { 1 };
        for _ in (0..6).step_by(step) {
            if !r.flag("scaling_list_pred_mode_flag")? {
                r.ue("scaling_list_pred_matrix_id_delta")?;
                continue;
            }
            let coefs = 64.min(1 << (4 + (size_id << 1)));
            if size_id > 1 {
                r.se("scaling_list_dc_coef_minus8")?;
            }
            for _ in 0..coefs {
                r.se("scaling_list_delta_coef")?;
            }
        }
    }
    Ok(())
}

/// Skips `st_ref_pic_set(idx)` (7.3.7) and returns its `NumDeltaPocs`.
fn skip_st_ref_pic_set(
    r: &mut BitReader<'_>,
    idx: usize,
    previous: &[u32],
) -> Result<u32, CodecError> {
    if idx != 0 && r.flag("inter_ref_pic_set_prediction_flag")? {
        // In an SPS, delta_idx_minus1 is absent: the reference is the previous set.
        r.skip(1, "delta_rps_sign")?;
        r.ue("abs_delta_rps_minus1")?;
        let reference = previous.last().copied().unwrap_or(0);
        let mut count = 0;
        for _ in 0..=reference {
            let used = r.flag("used_by_curr_pic_flag")?;
            if used || r.flag("use_delta_flag")? {
                count += 1;
            }
        }
        return Ok(count);
    }
    let negative = r.ue_max(16, "num_negative_pics")?;
    let positive = r.ue_max(16, "num_positive_pics")?;
    for _ in 0..negative + positive {
        r.ue("delta_poc_minus1")?;
        r.skip(1, "used_by_curr_pic_flag")?;
    }
    Ok(negative + positive)
}

/// Reads VUI parameters up to the timing information (E.2.1).
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
    r.skip(3, "neutral_chroma, field_seq, frame_field_info_present")?;
    if r.flag("default_display_window_flag")? {
        for _ in 0..4 {
            r.ue("def_disp_win_offset")?;
        }
    }
    if !r.flag("vui_timing_info_present_flag")? {
        return Ok(None);
    }
    let num_units_in_tick = r.bits(32, "vui_num_units_in_tick")?;
    let time_scale = r.bits(32, "vui_time_scale")?;
    Ok(FrameRate::new(
        u64::from(time_scale),
        u64::from(num_units_in_tick),
    ))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn first(stream: &[u8], t: NalType) -> &[u8] {
        annex_b_nals(stream)
            .find(|n| NalType::of(n) == Some(t))
            .unwrap()
    }

    #[test]
    fn x265_main_720p30() {
        let stream = include_bytes!("../../testdata/ffmpeg_x265_main_1280x720_30fps.h265");
        let sps = Sps::parse(first(stream, NalType::SPS)).unwrap();
        assert_eq!((sps.width, sps.height), (1280, 720));
        assert_eq!(sps.frame_rate, FrameRate::new(30, 1));
        assert_eq!(sps.profile_tier_level.profile_idc, 1);
        assert_eq!(sps.profile_tier_level.level_idc, 93);
        assert_eq!(sps.codec_string(), "hvc1.1.6.L93.90");
        assert!(is_keyframe(stream));
        assert_eq!(sps.track_info().level, Some(93));
    }

    #[test]
    fn x265_1080p_conformance_window() {
        let stream = include_bytes!("../../testdata/ffmpeg_x265_main_1920x1080_25fps.h265");
        let sps = Sps::parse(first(stream, NalType::SPS)).unwrap();
        assert_eq!((sps.width, sps.height), (1920, 1080));
        assert_eq!(sps.frame_rate, FrameRate::new(25, 1));
        assert_eq!(sps.codec_string(), "hvc1.1.6.L120.90");
    }

    #[test]
    fn x265_main10_1080p60() {
        let stream = include_bytes!("../../testdata/ffmpeg_x265_main10_1920x1080_60fps.h265");
        let sps = Sps::parse(first(stream, NalType::SPS)).unwrap();
        assert_eq!((sps.width, sps.height), (1920, 1080));
        assert_eq!(sps.bit_depth_luma, 10);
        assert_eq!(sps.frame_rate, FrameRate::new(60, 1));
        assert_eq!(sps.profile_tier_level.profile_idc, 2);
        assert_eq!(sps.codec_string(), "hvc1.2.4.L123.90");
    }

    #[test]
    fn ffmpeg_hvcc_record() {
        let record = include_bytes!("../../testdata/ffmpeg_x265_main_1920x1080_25fps.hvcc");
        let stream = include_bytes!("../../testdata/ffmpeg_x265_main_1920x1080_25fps.h265");
        let config = HevcConfig::parse(record).unwrap();
        let (vps, sps, pps) = (
            first(stream, NalType::VPS),
            first(stream, NalType::SPS),
            first(stream, NalType::PPS),
        );
        assert_eq!(config.vps, [vps]);
        assert_eq!(config.sps, [sps]);
        assert_eq!(config.pps, [pps]);
        assert_eq!(config.length_size, LengthSize::FOUR);
        assert_eq!(config.codec_string(), "hvc1.1.6.L120.90");
        let built = HevcConfig::from_parameter_sets(vps, sps, pps).unwrap();
        assert_eq!(built, config);
        assert_eq!(built.to_vec().unwrap(), record);
    }

    #[test]
    fn parameter_set_ids() {
        let stream = include_bytes!("../../testdata/ffmpeg_x265_main_1280x720_30fps.h265");
        assert_eq!(vps_id(first(stream, NalType::VPS)), Ok(0));
        assert_eq!(sps_id(first(stream, NalType::SPS)), Ok(0));
        assert_eq!(pps_id(first(stream, NalType::PPS)), Ok(0));
    }

    #[test]
    fn codec_string_forms() {
        let ptl = ProfileTierLevel {
            profile_space: 0,
            high_tier: true,
            profile_idc: 2,
            compatibility_flags: 0x2000_0000,
            constraint_flags: 0xb0 << 40,
            level_idc: 153,
        };
        assert_eq!(ptl.codec_string(), "hvc1.2.4.H153.B0");
        let ptl = ProfileTierLevel {
            constraint_flags: 0,
            ..ptl
        };
        assert_eq!(ptl.codec_string(), "hvc1.2.4.H153");
    }

    proptest! {
        #[test]
        fn parsers_never_panic(data in prop::collection::vec(any::<u8>(), 0..160)) {
            let _ = HevcConfig::parse(&data);
            let _ = vps_id(&data);
            let _ = sps_id(&data);
            let _ = pps_id(&data);
            let mut sps = data.clone();
            if let Some(b) = sps.first_mut() {
                *b = 0x42;
            }
            let _ = Sps::parse(&sps);
        }

        /// What the `h265_sps` fuzz target asserts: writing a parsed record is stable.
        #[test]
        fn parsed_config_rewrites(mut data in prop::collection::vec(any::<u8>(), 23..160)) {
            data[0] = 1;
            if let Ok(config) = HevcConfig::parse(&data) {
                let bytes = config.to_vec().unwrap();
                let again = HevcConfig::parse(&bytes).unwrap();
                prop_assert_eq!(again.to_vec().unwrap(), bytes);
            }
        }

        #[test]
        fn config_round_trip(
            compat in any::<u32>(), constraint in 0u64..(1 << 48), level in any::<u8>(),
            profile in 0u8..32, high_tier in any::<bool>(), layers in 0u8..8, size in 1u8..=4,
            sets in prop::collection::vec((32u8..=34, prop::collection::vec(any::<u8>(), 1..30)), 0..6),
        ) {
            let mut config = HevcConfig {
                profile_tier_level: ProfileTierLevel {
                    profile_space: 0, high_tier, profile_idc: profile,
                    compatibility_flags: compat, constraint_flags: constraint, level_idc: level,
                },
                min_spatial_segmentation: 0, parallelism_type: 0, chroma_format_idc: 1,
                bit_depth_luma: 10, bit_depth_chroma: 10, avg_frame_rate: 0,
                constant_frame_rate: 0, num_temporal_layers: layers, temporal_id_nested: true,
                length_size: LengthSize::new(size).unwrap(),
                vps: vec![], sps: vec![], pps: vec![], other: vec![],
            };
            for (t, mut body) in sets {
                body.insert(0, t << 1);
                body.insert(1, 1);
                let list = match NalType(t) {
                    NalType::VPS => &mut config.vps,
                    NalType::SPS => &mut config.sps,
                    _ => &mut config.pps,
                };
                list.push(Bytes::from(body));
            }
            prop_assert_eq!(HevcConfig::parse(&config.to_vec().unwrap()).unwrap(), config);
        }
    }
}
