//! AV1: OBU framing, the sequence header, `AV1CodecConfigurationRecord` and the RFC 6381
//! codec string (AV1 Bitstream & Decoding Process Specification §5; AV1 Codec ISO Media File
//! Format Binding §2.3, §5).
//!
//! An AV1 [`Frame`](crate::Frame) in the hub is one *temporal unit* in the low-overhead
//! bitstream format (§5.2: OBUs one after the other, each with its size field, as `-f obu`,
//! MP4 samples and Enhanced RTMP carry them), a temporal delimiter OBU first or not. A
//! keyframe's temporal unit carries the sequence header OBU, the way H.264 keyframes carry
//! their parameter sets, so a consumer joining there can describe the track.
//!
//! ```
//! use tributary_media::codec::av1;
//!
//! // A temporal delimiter, then libaom's sequence header: 320x180, Main, 8 bits, level 2.0.
//! let tu: &[u8] = &[
//!     0x12, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x04, 0x3c, 0xfe, 0xcc, 0xda, 0xf9, 0x00,
//!     0x40,
//! ];
//! let (header, obu) = av1::SequenceHeader::find(tu).unwrap();
//! assert_eq!((header.max_width, header.max_height), (320, 180));
//! assert_eq!(header.codec_string(), "av01.0.00M.08");
//! assert_eq!(obu.len(), 13);
//! ```

use super::bits::BitReader;
use super::{CodecError, FrameRate};
use crate::{Codec, TrackInfo};

/// `OBU_SEQUENCE_HEADER`.
pub const OBU_SEQUENCE_HEADER: u8 = 1;
/// `OBU_TEMPORAL_DELIMITER`.
pub const OBU_TEMPORAL_DELIMITER: u8 = 2;
/// `OBU_FRAME_HEADER`.
pub const OBU_FRAME_HEADER: u8 = 3;
/// `OBU_FRAME` (a frame header and its tile group).
pub const OBU_FRAME: u8 = 6;
/// `OBU_PADDING`.
pub const OBU_PADDING: u8 = 15;

/// One OBU of a low-overhead bitstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Obu<'a> {
    /// `obu_type`.
    pub kind: u8,
    /// The whole OBU: header, size field and payload.
    pub data: &'a [u8],
    /// The payload after the header and the size field.
    pub payload: &'a [u8],
}

/// Iterates over the OBUs of a temporal unit; stops at the end or at the first OBU whose
/// header or size does not fit in what is left (an OBU without a size field runs to the end).
pub fn obus(data: &[u8]) -> impl Iterator<Item = Obu<'_>> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let (obu, after) = split_obu(rest).ok()?;
        rest = after;
        Some(obu)
    })
}

/// Splits the first OBU off `data`.
fn split_obu(data: &[u8]) -> Result<(Obu<'_>, &[u8]), CodecError> {
    let &header = data.first().ok_or(CodecError::Truncated {
        field: "obu_header",
        offset: data.len(),
    })?;
    if header & 0x80 != 0 {
        return Err(CodecError::InvalidValue {
            field: "obu_forbidden_bit",
            value: 1,
            offset: 0,
        });
    }
    let kind = (header >> 3) & 0x0f;
    let mut at = if header & 0x04 != 0 { 2 } else { 1 };
    if data.len() < at {
        return Err(CodecError::Truncated {
            field: "obu_extension_header",
            offset: data.len(),
        });
    }
    let size = if header & 0x02 != 0 {
        let (size, len) = leb128(&data[at..])?;
        at += len;
        usize::try_from(size).unwrap_or(usize::MAX)
    } else {
        data.len() - at
    };
    if data.len() - at < size {
        return Err(CodecError::Truncated {
            field: "obu_payload",
            offset: data.len(),
        });
    }
    let end = at + size;
    let obu = Obu {
        kind,
        data: &data[..end],
        payload: &data[at..end],
    };
    Ok((obu, &data[end..]))
}

/// Reads a `leb128()` (at most 8 bytes, value below 2^32); returns it and its length.
fn leb128(data: &[u8]) -> Result<(u64, usize), CodecError> {
    let mut value = 0u64;
    for i in 0..8 {
        let &byte = data.get(i).ok_or(CodecError::Truncated {
            field: "obu_size",
            offset: data.len(),
        })?;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if value > u64::from(u32::MAX) {
                break;
            }
            return Ok((value, i + 1));
        }
    }
    Err(CodecError::InvalidValue {
        field: "obu_size",
        value,
        offset: 0,
    })
}

/// Colour description of a sequence header (ISO/IEC 23091-2 code points).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Colour {
    /// `color_primaries` (2 = unspecified).
    pub primaries: u8,
    /// `transfer_characteristics` (2 = unspecified).
    pub transfer: u8,
    /// `matrix_coefficients` (2 = unspecified).
    pub matrix: u8,
    /// `color_range`: full range.
    pub full_range: bool,
}

/// What a sequence header OBU says about a track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceHeader {
    /// `seq_profile` (0 Main, 1 High, 2 Professional).
    pub seq_profile: u8,
    /// `still_picture`.
    pub still_picture: bool,
    /// `reduced_still_picture_header`.
    pub reduced_still_picture_header: bool,
    /// `seq_level_idx[0]` (0 = level 2.0, 31 = no level constraint).
    pub seq_level_idx_0: u8,
    /// `seq_tier[0]`: the High tier.
    pub seq_tier_0: bool,
    /// `BitDepth`: 8, 10 or 12.
    pub bit_depth: u8,
    /// `mono_chrome`.
    pub mono_chrome: bool,
    /// `subsampling_x`.
    pub chroma_subsampling_x: bool,
    /// `subsampling_y`.
    pub chroma_subsampling_y: bool,
    /// `chroma_sample_position` (0 unknown, 1 vertical, 2 co-located).
    pub chroma_sample_position: u8,
    /// The colour description (unspecified code points when the header has none).
    pub colour: Colour,
    /// `max_frame_width_minus_1 + 1`.
    pub max_width: u32,
    /// `max_frame_height_minus_1 + 1`.
    pub max_height: u32,
    /// The frame rate, when `timing_info` gives an equal picture interval.
    pub frame_rate: Option<FrameRate>,
}

impl SequenceHeader {
    /// Parses the payload of a sequence header OBU (after its header and size field) as far
    /// as `color_config()`.
    pub fn parse(payload: &[u8]) -> Result<Self, CodecError> {
        let mut r = BitReader::new(payload);
        let seq_profile = r.u8(3, "seq_profile")?;
        if seq_profile > 2 {
            return Err(CodecError::InvalidValue {
                field: "seq_profile",
                value: u64::from(seq_profile),
                offset: 0,
            });
        }
        let still_picture = r.flag("still_picture")?;
        let reduced = r.flag("reduced_still_picture_header")?;
        let mut frame_rate = None;
        let (seq_level_idx_0, seq_tier_0) = if reduced {
            (r.u8(5, "seq_level_idx")?, false)
        } else {
            let mut decoder_model_info = false;
            let mut buffer_delay_length = 0;
            if r.flag("timing_info_present_flag")? {
                let units = r.bits(32, "num_units_in_display_tick")?;
                let scale = r.bits(32, "time_scale")?;
                if r.flag("equal_picture_interval")? {
                    let ticks = uvlc(&mut r, "num_ticks_per_picture_minus_1")?;
                    frame_rate =
                        FrameRate::new(u64::from(scale), u64::from(units) * (u64::from(ticks) + 1));
                }
                decoder_model_info = r.flag("decoder_model_info_present_flag")?;
                if decoder_model_info {
                    buffer_delay_length = r.bits(5, "buffer_delay_length_minus_1")? + 1;
                    r.skip(32 + 5 + 5, "decoder_model_info")?;
                }
            }
            let initial_display_delay = r.flag("initial_display_delay_present_flag")?;
            let count = r.bits(5, "operating_points_cnt_minus_1")? + 1;
            let mut first = None;
            for _ in 0..count {
                r.skip(12, "operating_point_idc")?;
                let level = r.u8(5, "seq_level_idx")?;
                let tier = level > 7 && r.flag("seq_tier")?;
                first.get_or_insert((level, tier));
                if decoder_model_info && r.flag("decoder_model_present_for_this_op")? {
                    r.skip(
                        2 * buffer_delay_length as usize + 1,
                        "operating_parameters_info",
                    )?;
                }
                if initial_display_delay && r.flag("initial_display_delay_present_for_this_op")? {
                    r.skip(4, "initial_display_delay_minus_1")?;
                }
            }
            first.unwrap_or((0, false))
        };
        let width_bits = r.bits(4, "frame_width_bits_minus_1")? + 1;
        let height_bits = r.bits(4, "frame_height_bits_minus_1")? + 1;
        let max_width = r
            .bits(width_bits, "max_frame_width_minus_1")?
            .saturating_add(1);
        let max_height = r
            .bits(height_bits, "max_frame_height_minus_1")?
            .saturating_add(1);
        if !reduced && r.flag("frame_id_numbers_present_flag")? {
            r.skip(4 + 3, "frame_id_length")?;
        }
        r.skip(3, "use_128x128_superblock")?; // and enable_filter_intra, enable_intra_edge_filter
        if !reduced {
            r.skip(4, "enable_interintra_compound")?; // masked, warped, dual filter too
            let order_hint = r.flag("enable_order_hint")?;
            if order_hint {
                r.skip(2, "enable_jnt_comp")?;
            }
            let force_screen_content = if r.flag("seq_choose_screen_content_tools")? {
                2
            } else {
                r.bits(1, "seq_force_screen_content_tools")?
            };
            if force_screen_content > 0 && !r.flag("seq_choose_integer_mv")? {
                r.skip(1, "seq_force_integer_mv")?;
            }
            if order_hint {
                r.skip(3, "order_hint_bits_minus_1")?;
            }
        }
        r.skip(3, "enable_superres")?; // and enable_cdef, enable_restoration
        // color_config()
        let high_bitdepth = r.flag("high_bitdepth")?;
        let bit_depth = match (seq_profile, high_bitdepth) {
            (2, true) => {
                if r.flag("twelve_bit")? {
                    12
                } else {
                    10
                }
            }
            (_, true) => 10,
            (_, false) => 8,
        };
        let mono_chrome = seq_profile != 1 && r.flag("mono_chrome")?;
        let (primaries, transfer, matrix) = if r.flag("color_description_present_flag")? {
            (
                r.u8(8, "color_primaries")?,
                r.u8(8, "transfer_characteristics")?,
                r.u8(8, "matrix_coefficients")?,
            )
        } else {
            (2, 2, 2)
        };
        let (full_range, sub_x, sub_y, position) = if mono_chrome {
            (r.flag("color_range")?, true, true, 0)
        } else if (primaries, transfer, matrix) == (1, 13, 0) {
            (true, false, false, 0) // sRGB
        } else {
            let full_range = r.flag("color_range")?;
            let (x, y) = match (seq_profile, bit_depth) {
                (0, _) => (true, true),
                (1, _) => (false, false),
                (_, 12) => {
                    let x = r.flag("subsampling_x")?;
                    (x, x && r.flag("subsampling_y")?)
                }
                _ => (true, false),
            };
            let position = if x && y {
                r.u8(2, "chroma_sample_position")?
            } else {
                0
            };
            (full_range, x, y, position)
        };
        Ok(Self {
            seq_profile,
            still_picture,
            reduced_still_picture_header: reduced,
            seq_level_idx_0,
            seq_tier_0,
            bit_depth,
            mono_chrome,
            chroma_subsampling_x: sub_x,
            chroma_subsampling_y: sub_y,
            chroma_sample_position: position,
            colour: Colour {
                primaries,
                transfer,
                matrix,
                full_range,
            },
            max_width,
            max_height,
            frame_rate,
        })
    }

    /// Finds the first sequence header OBU in a temporal unit (or a record's `configOBUs`)
    /// and parses it; returns it with the whole OBU, header included.
    pub fn find(data: &[u8]) -> Result<(Self, &[u8]), CodecError> {
        let obu =
            obus(data)
                .find(|o| o.kind == OBU_SEQUENCE_HEADER)
                .ok_or(CodecError::Truncated {
                    field: "sequence_header_obu",
                    offset: data.len(),
                })?;
        Ok((Self::parse(obu.payload)?, obu.data))
    }

    /// The RFC 6381 codec string in its short form, `av01.P.LLT.DD` (AV1-ISOBMFF §5):
    /// `av01.0.08M.08` is Main, level 4.0, Main tier, 8 bits.
    pub fn codec_string(&self) -> String {
        format!(
            "av01.{}.{:02}{}.{:02}",
            self.seq_profile,
            self.seq_level_idx_0,
            if self.seq_tier_0 { 'H' } else { 'M' },
            self.bit_depth
        )
    }

    /// The `AV1CodecConfigurationRecord` (the payload of `av1C`, and the body of an Enhanced
    /// RTMP sequence start) with `obu` (the sequence header OBU) as its `configOBUs`.
    pub fn config_record(&self, obu: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + obu.len());
        out.push(0x81); // marker, version 1
        out.push((self.seq_profile << 5) | (self.seq_level_idx_0 & 0x1f));
        out.push(
            u8::from(self.seq_tier_0) << 7
                | u8::from(self.bit_depth > 8) << 6
                | u8::from(self.bit_depth == 12) << 5
                | u8::from(self.mono_chrome) << 4
                | u8::from(self.chroma_subsampling_x) << 3
                | u8::from(self.chroma_subsampling_y) << 2
                | (self.chroma_sample_position & 3),
        );
        out.push(0); // no initial_presentation_delay
        out.extend_from_slice(obu);
        out
    }

    /// Parses an `AV1CodecConfigurationRecord`: the sequence header in its `configOBUs`, and
    /// that OBU (the fixed fields repeat what it says).
    pub fn from_config_record(record: &[u8]) -> Result<(Self, &[u8]), CodecError> {
        match record.first() {
            Some(0x81) if record.len() >= 4 => Self::find(&record[4..]),
            Some(&first) => Err(CodecError::InvalidValue {
                field: "av1C marker and version",
                value: u64::from(first),
                offset: 0,
            }),
            None => Err(CodecError::Truncated {
                field: "av1C",
                offset: 0,
            }),
        }
    }

    /// What the header says about the track.
    pub fn track_info(&self) -> TrackInfo {
        TrackInfo {
            width: Some(self.max_width),
            height: Some(self.max_height),
            frame_rate: self.frame_rate,
            codec_string: Some(self.codec_string()),
            profile: Some(self.seq_profile),
            level: Some(self.seq_level_idx_0),
            ..TrackInfo::new(Codec::Av1)
        }
    }
}

/// Whether a temporal unit starts a coded video sequence: its first frame header is a
/// `KEY_FRAME` shown now (or the sequence uses reduced still-picture headers, where every
/// frame is one). A temporal unit without a frame header is not.
pub fn is_keyframe(tu: &[u8]) -> bool {
    for obu in obus(tu) {
        match obu.kind {
            OBU_SEQUENCE_HEADER
                if SequenceHeader::parse(obu.payload)
                    .is_ok_and(|h| h.reduced_still_picture_header) =>
            {
                return true;
            }
            OBU_FRAME | OBU_FRAME_HEADER => {
                // show_existing_frame (1) = 0, frame_type (2) = KEY_FRAME (0).
                return obu.payload.first().is_some_and(|b| b & 0xe0 == 0);
            }
            _ => {}
        }
    }
    false
}

/// Splits a low-overhead bitstream (`ffmpeg -f obu`) into temporal units, each starting at
/// its temporal delimiter; stops at the first OBU that does not parse.
pub fn temporal_units(stream: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = stream;
    std::iter::from_fn(move || {
        let mut len = 0;
        for obu in obus(rest) {
            if obu.kind == OBU_TEMPORAL_DELIMITER && len > 0 {
                break;
            }
            len += obu.data.len();
        }
        let (unit, after) = rest.split_at(len);
        rest = after;
        (!unit.is_empty()).then_some(unit)
    })
}

/// Reads a `uvlc()`: values up to 2^32 − 1.
fn uvlc(r: &mut BitReader<'_>, field: &'static str) -> Result<u32, CodecError> {
    let mut zeros = 0u32;
    while !r.flag(field)? {
        zeros += 1;
    }
    if zeros >= 32 {
        return Ok(u32::MAX);
    }
    let rest = r.bits(zeros, field)?;
    Ok(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const AV1: &[u8] = include_bytes!("../../testdata/ffmpeg_libaom_320x180_30fps_10f.obu");
    const MAIN10: &[u8] = include_bytes!("../../testdata/ffmpeg_libaom_main10_320x180_1f.obu");
    const GBRP: &[u8] = include_bytes!("../../testdata/ffmpeg_libaom_gbrp_320x180_1f.obu");

    #[test]
    fn libaom_main_420() {
        let (header, obu) = SequenceHeader::find(AV1).unwrap();
        assert_eq!(obu, &AV1[2..15]);
        assert_eq!((header.max_width, header.max_height), (320, 180));
        assert_eq!((header.seq_profile, header.seq_level_idx_0), (0, 0));
        assert!(!header.seq_tier_0 && !header.mono_chrome);
        assert_eq!(header.bit_depth, 8);
        assert!(header.chroma_subsampling_x && header.chroma_subsampling_y);
        assert_eq!(header.codec_string(), "av01.0.00M.08");
        let record = header.config_record(obu);
        assert_eq!(&record[..4], [0x81, 0x00, 0x0c, 0x00]);
        let (again, config_obu) = SequenceHeader::from_config_record(&record).unwrap();
        assert_eq!((again, config_obu), (header.clone(), obu));
        let info = header.track_info();
        assert_eq!(
            (info.codec, info.width, info.height),
            (Codec::Av1, Some(320), Some(180))
        );
    }

    #[test]
    fn libaom_main10_and_srgb() {
        let (header, _) = SequenceHeader::find(MAIN10).unwrap();
        assert_eq!(header.bit_depth, 10);
        assert_eq!(header.codec_string(), "av01.0.00M.10");
        // 4:4:4 RGB is the High profile; BT.709 primaries, sRGB transfer, identity matrix.
        let (header, obu) = SequenceHeader::find(GBRP).unwrap();
        assert_eq!(header.seq_profile, 1);
        assert_eq!(header.codec_string(), "av01.1.00M.08");
        assert!(!header.chroma_subsampling_x && !header.chroma_subsampling_y);
        let colour = header.colour;
        assert_eq!(
            (colour.primaries, colour.transfer, colour.matrix),
            (1, 13, 0)
        );
        assert!(colour.full_range);
        assert_eq!(header.config_record(obu)[1..3], [0x20, 0x00]);
    }

    #[test]
    fn temporal_units_and_keyframes() {
        // `ffprobe -show_packets`: 10 packets, keyframes at 0 and 5 (`-g 5`).
        let units: Vec<&[u8]> = temporal_units(AV1).collect();
        assert_eq!(units.concat(), AV1, "the units cover the stream");
        assert_eq!(units.len(), 10);
        let keys: Vec<usize> = (0..10).filter(|i| is_keyframe(units[*i])).collect();
        assert_eq!(keys, [0, 5]);
        assert!(SequenceHeader::find(units[5]).is_ok());
        assert!(SequenceHeader::find(units[1]).is_err());
    }

    #[test]
    fn malformed() {
        assert!(obus(&[0x80]).next().is_none(), "forbidden bit");
        assert!(
            obus(&[0x0a, 0x05, 0x00]).next().is_none(),
            "size past the end"
        );
        assert!(
            obus(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
                .next()
                .is_none()
        );
        // No size field: the OBU runs to the end.
        let obu = obus(&[0x08, 0x00, 0x00]).next().unwrap();
        assert_eq!((obu.kind, obu.payload), (1, &[0u8, 0][..]));
        assert!(matches!(
            SequenceHeader::parse(&[0xe0]),
            Err(CodecError::InvalidValue {
                field: "seq_profile",
                ..
            })
        ));
        assert!(SequenceHeader::from_config_record(&[0x01, 0, 0, 0]).is_err());
        assert!(SequenceHeader::from_config_record(&[]).is_err());
        assert!(!is_keyframe(&[]));
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = SequenceHeader::parse(&data);
            let _ = SequenceHeader::find(&data);
            let _ = SequenceHeader::from_config_record(&data);
            let _ = is_keyframe(&data);
            let total: usize = obus(&data).map(|o| o.data.len()).sum();
            prop_assert!(total <= data.len());
            let units: usize = temporal_units(&data).map(<[u8]>::len).sum();
            prop_assert_eq!(units, total);
        }

        #[test]
        fn corrupted_header_never_panics(at in 0usize..15, byte in any::<u8>()) {
            let mut data = AV1[..15].to_vec();
            data[at] = byte;
            if let Ok((header, obu)) = SequenceHeader::find(&data) {
                let record = header.config_record(obu);
                prop_assert_eq!(SequenceHeader::from_config_record(&record).unwrap().0, header);
            }
        }
    }
}
