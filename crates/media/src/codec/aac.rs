//! AAC: the AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) that MP4, RTMP and SDP carry, and
//! the ADTS header (§1.A.2) that MPEG-TS carries in front of each access unit.
//!
//! ```
//! use tributary_media::codec::aac::{AdtsHeader, AudioSpecificConfig, ObjectType};
//!
//! let asc = AudioSpecificConfig::parse(&[0x11, 0x90]).unwrap();
//! assert_eq!((asc.object_type, asc.sample_rate, asc.channel_config), (ObjectType::LC, 48_000, 2));
//! assert_eq!(asc.codec_string(), "mp4a.40.2");
//!
//! // An ADTS header for a raw access unit of 300 bytes.
//! let header = asc.adts_header(300).unwrap();
//! let parsed = AdtsHeader::parse(&header).unwrap();
//! assert_eq!(parsed.frame_length, 307);
//! assert_eq!(parsed.to_asc(), asc);
//! ```

use bytes::BufMut;

use super::bits::{BitReader, BitWriter};
use super::{CodecError, TrackInfo};
use crate::Codec;

/// The sampling frequencies of `samplingFrequencyIndex` 0 to 12, in Hz.
pub const SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// The sampling frequency of a `samplingFrequencyIndex`, `None` for 13 to 15.
pub fn sample_rate(index: u8) -> Option<u32> {
    SAMPLE_RATES.get(usize::from(index)).copied()
}

/// The `samplingFrequencyIndex` of a sampling frequency, `None` when it has none (and must be
/// written explicitly).
pub fn sample_rate_index(rate: u32) -> Option<u8> {
    SAMPLE_RATES
        .iter()
        .position(|&r| r == rate)
        .map(|i| i as u8)
}

/// The output channel count of a `channelConfiguration`, `None` for 0 (described by a program
/// config element) and reserved values.
pub fn channel_count(channel_config: u8) -> Option<u8> {
    match channel_config {
        1..=6 => Some(channel_config),
        7 | 12 | 14 => Some(8),
        11 => Some(7),
        13 => Some(24),
        _ => None,
    }
}

/// An MPEG-4 audio object type (`audioObjectType`: 1 to 30, or 32 to 95 through the escape
/// value 31).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectType(pub u8);

impl ObjectType {
    /// AAC Main.
    pub const MAIN: Self = Self(1);
    /// AAC Low Complexity, what nearly every encoder produces.
    pub const LC: Self = Self(2);
    /// AAC Scalable Sample Rate.
    pub const SSR: Self = Self(3);
    /// AAC Long Term Prediction.
    pub const LTP: Self = Self(4);
    /// Spectral band replication (HE-AAC).
    pub const SBR: Self = Self(5);
    /// Parametric stereo (HE-AACv2).
    pub const PS: Self = Self(29);
}

/// How an AudioSpecificConfig signals SBR (14496-3 §1.6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SbrSignalling {
    /// The config starts with object type 5 (or 29) and names the core type after the
    /// extension sampling frequency.
    Hierarchical,
    /// The config describes the core and appends a sync extension (`0x2b7`) naming SBR, so that
    /// decoders without SBR still play the core.
    BackwardCompatible,
}

/// Spectral band replication (HE-AAC) signalled in an AudioSpecificConfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sbr {
    /// The output sampling frequency (usually twice the core's), in Hz.
    pub sample_rate: u32,
    /// Parametric stereo (HE-AACv2): a mono core decodes to stereo.
    pub ps: bool,
    /// How the extension is signalled.
    pub signalling: SbrSignalling,
}

/// An AudioSpecificConfig: what an AAC decoder needs before the first access unit.
///
/// Only the fields a server needs are kept. A config with `channel_config` 0 (channels
/// described by a program config element) is accepted, but its channel count is not derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AudioSpecificConfig {
    /// The core object type: [`ObjectType::LC`] for HE-AAC too (SBR is in [`Self::sbr`]).
    pub object_type: ObjectType,
    /// The core sampling frequency, in Hz.
    pub sample_rate: u32,
    /// `channelConfiguration` (0 to 15).
    pub channel_config: u8,
    /// `frameLengthFlag`: 960-sample frames instead of 1024 (GA object types only).
    pub frame_length_960: bool,
    /// SBR (HE-AAC), when signalled explicitly.
    pub sbr: Option<Sbr>,
}

impl AudioSpecificConfig {
    /// A config for a plain (non-SBR) stream of `object_type` at `sample_rate` Hz.
    pub fn new(object_type: ObjectType, sample_rate: u32, channel_config: u8) -> Self {
        Self {
            object_type,
            sample_rate,
            channel_config,
            frame_length_960: false,
            sbr: None,
        }
    }

    /// Parses a config. Fields after the core ones (the GA specific config, the backward-
    /// compatible SBR extension) are read when present and tolerated when cut short.
    pub fn parse(data: &[u8]) -> Result<Self, CodecError> {
        let mut r = BitReader::new(data);
        let mut object_type = read_object_type(&mut r)?;
        let sample_rate = read_frequency(&mut r, "samplingFrequencyIndex")?;
        let channel_config = r.u8(4, "channelConfiguration")?;
        let mut sbr = None;
        if object_type == ObjectType::SBR || object_type == ObjectType::PS {
            let rate = read_frequency(&mut r, "extensionSamplingFrequencyIndex")?;
            sbr = Some(Sbr {
                sample_rate: rate,
                ps: object_type == ObjectType::PS,
                signalling: SbrSignalling::Hierarchical,
            });
            object_type = read_object_type(&mut r)?;
            if object_type.0 == 22 {
                r.skip(4, "extensionChannelConfiguration")?;
            }
        }
        let mut config = Self {
            object_type,
            sample_rate,
            channel_config,
            frame_length_960: false,
            sbr,
        };
        let general_audio = matches!(object_type.0, 1..=4 | 6 | 7 | 17 | 19..=23);
        if !general_audio || channel_config == 0 {
            return Ok(config);
        }
        // GASpecificConfig: a truncated one is taken as all zeros.
        let Ok(frame_length_960) = r.flag("frameLengthFlag") else {
            return Ok(config);
        };
        config.frame_length_960 = frame_length_960;
        if read_ga_rest(&mut r, object_type).is_err() {
            return Ok(config);
        }
        // Error-resilient types carry epConfig; 2 and 3 add a config this parser does not read.
        if matches!(object_type.0, 17 | 19..=27) && !matches!(r.bits(2, "epConfig"), Ok(0 | 1)) {
            return Ok(config);
        }
        if config.sbr.is_none()
            && r.remaining() >= 16
            && r.bits(11, "syncExtensionType") == Ok(0x2b7)
            && let Ok(sbr) = read_sync_extension(&mut r)
        {
            config.sbr = sbr;
        }
        Ok(config)
    }

    /// Writes the config to `out`.
    ///
    /// Fails for object types 0, 31 (the escape value) and above 95, channel configuration 0 (a program config element is
    /// not written) or above 15, and sampling frequencies that do not fit 24 bits.
    pub fn write<B: BufMut>(&self, out: &mut B) -> Result<(), CodecError> {
        if self.channel_config == 0 || self.channel_config > 15 {
            return Err(CodecError::Unsupported {
                what: "channelConfiguration to write",
                value: u64::from(self.channel_config),
            });
        }
        let mut w = BitWriter::new();
        match self.sbr {
            Some(sbr) if sbr.signalling == SbrSignalling::Hierarchical => {
                let marker = if sbr.ps {
                    ObjectType::PS
                } else {
                    ObjectType::SBR
                };
                write_object_type(&mut w, marker)?;
                write_frequency(&mut w, self.sample_rate)?;
                w.bits(4, u32::from(self.channel_config));
                write_frequency(&mut w, sbr.sample_rate)?;
                write_object_type(&mut w, self.object_type)?;
                if self.object_type.0 == 22 {
                    w.bits(4, u32::from(self.channel_config)); // extensionChannelConfiguration
                }
            }
            _ => {
                write_object_type(&mut w, self.object_type)?;
                write_frequency(&mut w, self.sample_rate)?;
                w.bits(4, u32::from(self.channel_config));
            }
        }
        if matches!(self.object_type.0, 1..=4 | 6 | 7 | 17 | 19..=23) {
            w.bits(1, u32::from(self.frame_length_960));
            w.bits(1, 0); // dependsOnCoreCoder
            let extension = self.object_type.0 >= 17;
            w.bits(1, u32::from(extension));
            if matches!(self.object_type.0, 6 | 20) {
                w.bits(3, 0); // layerNr
            }
            if extension {
                if self.object_type.0 == 22 {
                    w.bits(16, 0); // numOfSubFrame, layer_length
                }
                if matches!(self.object_type.0, 17 | 19 | 20 | 23) {
                    w.bits(3, 0); // resilience flags
                }
                w.bits(1, 0); // extensionFlag3
            }
            if matches!(self.object_type.0, 17 | 19..=27) {
                w.bits(2, 0); // epConfig
            }
            if let Some(sbr) = self.sbr
                && sbr.signalling == SbrSignalling::BackwardCompatible
            {
                w.bits(11, 0x2b7);
                write_object_type(&mut w, ObjectType::SBR)?;
                w.bits(1, 1);
                write_frequency(&mut w, sbr.sample_rate)?;
                if sbr.ps {
                    w.bits(11, 0x548);
                    w.bits(1, 1);
                }
            }
        }
        out.put_slice(&w.finish());
        Ok(())
    }

    /// The config as a new vector (see [`AudioSpecificConfig::write`]).
    pub fn to_vec(&self) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::new();
        self.write(&mut out)?;
        Ok(out)
    }

    /// The object type a player sees: 29 for HE-AACv2, 5 for HE-AAC, else the core type.
    pub fn signalled_object_type(&self) -> ObjectType {
        match self.sbr {
            Some(Sbr { ps: true, .. }) => ObjectType::PS,
            Some(_) => ObjectType::SBR,
            None => self.object_type,
        }
    }

    /// The RFC 6381 codec string: `mp4a.40.2` (LC), `mp4a.40.5` (HE), `mp4a.40.29` (HEv2).
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.signalled_object_type().0)
    }

    /// The output sampling frequency: the SBR rate for HE-AAC, else the core rate.
    pub fn output_sample_rate(&self) -> u32 {
        self.sbr.map_or(self.sample_rate, |sbr| sbr.sample_rate)
    }

    /// The output channel count: 2 with parametric stereo, else from the channel
    /// configuration; `None` when a program config element describes them.
    pub fn channels(&self) -> Option<u8> {
        match self.sbr {
            Some(Sbr { ps: true, .. }) => Some(2),
            _ => channel_count(self.channel_config),
        }
    }

    /// The track description this config gives.
    pub fn track_info(&self) -> TrackInfo {
        TrackInfo {
            sample_rate: Some(self.output_sample_rate()),
            channels: self.channels(),
            codec_string: Some(self.codec_string()),
            profile: Some(self.signalled_object_type().0),
            ..TrackInfo::new(Codec::Aac)
        }
    }

    /// A 7-byte ADTS header (no CRC) for one raw access unit of `payload_len` bytes.
    ///
    /// ADTS carries the core: object types 1 to 4 only, a sampling frequency from the table,
    /// channel configuration 0 to 7, and at most 8191 bytes per frame. SBR stays implicit.
    pub fn adts_header(&self, payload_len: usize) -> Result<[u8; 7], CodecError> {
        let header = AdtsHeader {
            mpeg2: false,
            object_type: self.object_type,
            sample_rate: self.sample_rate,
            channel_config: self.channel_config,
            frame_length: payload_len.saturating_add(7),
            buffer_fullness: 0x7ff,
            raw_blocks: 1,
            crc: None,
        };
        let mut out = [0u8; 7];
        header.write(&mut &mut out[..])?;
        Ok(out)
    }
}

/// An ADTS frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AdtsHeader {
    /// The `ID` bit: MPEG-2 AAC rather than MPEG-4.
    pub mpeg2: bool,
    /// The object type (`profile_ObjectType + 1`, so 1 to 4).
    pub object_type: ObjectType,
    /// The sampling frequency, in Hz.
    pub sample_rate: u32,
    /// `channel_configuration` (0 to 7).
    pub channel_config: u8,
    /// `frame_length`: the whole frame, header included, in bytes.
    pub frame_length: usize,
    /// `adts_buffer_fullness` (0x7ff: variable bit rate).
    pub buffer_fullness: u16,
    /// Raw data blocks in the frame (`number_of_raw_data_blocks_in_frame + 1`, 1 to 4).
    pub raw_blocks: u8,
    /// The `crc_check` when protection is present (`protection_absent` = 0).
    pub crc: Option<u16>,
}

impl AdtsHeader {
    /// Parses the header at the start of `data` (7 bytes, or more with a CRC).
    pub fn parse(data: &[u8]) -> Result<Self, CodecError> {
        let mut r = BitReader::new(data);
        if r.bits(12, "syncword")? != 0xfff {
            return Err(CodecError::NoSync { offset: 0 });
        }
        let mpeg2 = r.flag("ID")?;
        let layer = r.bits(2, "layer")?;
        if layer != 0 {
            return Err(CodecError::InvalidValue {
                field: "layer",
                value: u64::from(layer),
                offset: 1,
            });
        }
        let protection_absent = r.flag("protection_absent")?;
        let object_type = ObjectType(r.u8(2, "profile_ObjectType")? + 1);
        let index = r.u8(4, "sampling_frequency_index")?;
        let sample_rate = sample_rate(index).ok_or(CodecError::InvalidValue {
            field: "sampling_frequency_index",
            value: u64::from(index),
            offset: 2,
        })?;
        r.skip(1, "private_bit")?;
        let channel_config = r.u8(3, "channel_configuration")?;
        r.skip(4, "original_copy, home, copyright_identification")?;
        let frame_length = r.bits(13, "frame_length")? as usize;
        let buffer_fullness = r.bits(11, "adts_buffer_fullness")? as u16;
        let raw_blocks = r.u8(2, "number_of_raw_data_blocks_in_frame")? + 1;
        let crc = if protection_absent {
            None
        } else {
            if raw_blocks > 1 {
                r.skip(16 * usize::from(raw_blocks - 1), "raw_data_block_position")?;
            }
            Some(r.bits(16, "crc_check")? as u16)
        };
        let header = Self {
            mpeg2,
            object_type,
            sample_rate,
            channel_config,
            frame_length,
            buffer_fullness,
            raw_blocks,
            crc,
        };
        if frame_length < header.header_len() {
            return Err(CodecError::InvalidValue {
                field: "frame_length",
                value: frame_length as u64,
                offset: 3,
            });
        }
        Ok(header)
    }

    /// The header's length: 7 bytes, 9 with a CRC (plus 2 per extra raw data block).
    pub fn header_len(&self) -> usize {
        match self.crc {
            None => 7,
            Some(_) => 9 + 2 * usize::from(self.raw_blocks.saturating_sub(1)),
        }
    }

    /// The length of the raw data after the header.
    pub fn payload_len(&self) -> usize {
        self.frame_length.saturating_sub(self.header_len())
    }

    /// The AudioSpecificConfig this header describes (implicit SBR is not visible in ADTS).
    pub fn to_asc(&self) -> AudioSpecificConfig {
        AudioSpecificConfig::new(self.object_type, self.sample_rate, self.channel_config)
    }

    /// Writes the header (7 bytes, or 9 with a CRC) to `out`.
    ///
    /// Fails for values ADTS cannot carry; a CRC with several raw data blocks is not
    /// supported. Nothing is written on error.
    pub fn write<B: BufMut>(&self, out: &mut B) -> Result<(), CodecError> {
        if !(1..=4).contains(&self.object_type.0) {
            return Err(CodecError::Unsupported {
                what: "ADTS object type",
                value: u64::from(self.object_type.0),
            });
        }
        let index = sample_rate_index(self.sample_rate).ok_or(CodecError::Unsupported {
            what: "ADTS sampling frequency",
            value: u64::from(self.sample_rate),
        })?;
        if self.channel_config > 7 {
            return Err(CodecError::Unsupported {
                what: "ADTS channel configuration",
                value: u64::from(self.channel_config),
            });
        }
        if !(1..=4).contains(&self.raw_blocks) || (self.crc.is_some() && self.raw_blocks > 1) {
            return Err(CodecError::Unsupported {
                what: "ADTS raw data blocks",
                value: u64::from(self.raw_blocks),
            });
        }
        if self.frame_length > 0x1fff || self.frame_length < self.header_len() {
            return Err(CodecError::TooLarge {
                what: "ADTS frame",
                len: self.frame_length,
                max: 0x1fff,
            });
        }
        let mut w = BitWriter::new();
        w.bits(12, 0xfff);
        w.bits(1, u32::from(self.mpeg2));
        w.bits(2, 0);
        w.bits(1, u32::from(self.crc.is_none()));
        w.bits(2, u32::from(self.object_type.0 - 1));
        w.bits(4, u32::from(index));
        w.bits(1, 0);
        w.bits(3, u32::from(self.channel_config));
        w.bits(4, 0);
        w.bits(13, self.frame_length as u32);
        w.bits(11, u32::from(self.buffer_fullness & 0x7ff));
        w.bits(2, u32::from(self.raw_blocks - 1));
        if let Some(crc) = self.crc {
            w.bits(16, u32::from(crc));
        }
        out.put_slice(&w.finish());
        Ok(())
    }
}

/// Iterates the frames of an ADTS stream as (header, raw data) pairs.
///
/// A bad header or a frame cut short yields one error and ends the iteration: resynchronising
/// is the demuxer's policy.
pub fn adts_frames(data: &[u8]) -> AdtsFrames<'_> {
    AdtsFrames { data, offset: 0 }
}

/// The iterator returned by [`adts_frames`].
#[derive(Debug, Clone)]
pub struct AdtsFrames<'a> {
    data: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for AdtsFrames<'a> {
    type Item = Result<(AdtsHeader, &'a [u8]), CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.data.get(self.offset..).filter(|r| !r.is_empty())?;
        let start = self.offset;
        self.offset = self.data.len();
        let header = match AdtsHeader::parse(rest) {
            Ok(header) => header,
            Err(err) => return Some(Err(relocate(err, start))),
        };
        let Some(frame) = rest.get(..header.frame_length) else {
            return Some(Err(CodecError::Truncated {
                field: "ADTS frame",
                offset: self.data.len(),
            }));
        };
        self.offset = start + header.frame_length;
        Some(Ok((header, &frame[header.header_len()..])))
    }
}

/// Shifts the offsets of an error from a sub-slice starting at `start`.
fn relocate(err: CodecError, start: usize) -> CodecError {
    match err {
        CodecError::NoSync { offset } => CodecError::NoSync {
            offset: start + offset,
        },
        CodecError::Truncated { field, offset } => CodecError::Truncated {
            field,
            offset: start + offset,
        },
        CodecError::InvalidValue {
            field,
            value,
            offset,
        } => CodecError::InvalidValue {
            field,
            value,
            offset: start + offset,
        },
        other => other,
    }
}

fn read_object_type(r: &mut BitReader<'_>) -> Result<ObjectType, CodecError> {
    let offset = r.byte_offset();
    let aot = match r.u8(5, "audioObjectType")? {
        31 => 32 + r.u8(6, "audioObjectTypeExt")?,
        aot => aot,
    };
    if aot == 0 {
        return Err(CodecError::InvalidValue {
            field: "audioObjectType",
            value: 0,
            offset,
        });
    }
    Ok(ObjectType(aot))
}

fn write_object_type(w: &mut BitWriter, aot: ObjectType) -> Result<(), CodecError> {
    match aot.0 {
        1..=30 => w.bits(5, u32::from(aot.0)),
        32..=95 => {
            w.bits(5, 31);
            w.bits(6, u32::from(aot.0 - 32));
        }
        _ => {
            return Err(CodecError::Unsupported {
                what: "audioObjectType to write",
                value: u64::from(aot.0),
            });
        }
    }
    Ok(())
}

fn read_frequency(r: &mut BitReader<'_>, field: &'static str) -> Result<u32, CodecError> {
    let offset = r.byte_offset();
    let index = r.u8(4, field)?;
    if index == 15 {
        let rate = r.bits(24, "samplingFrequency")?;
        if rate == 0 {
            return Err(CodecError::InvalidValue {
                field: "samplingFrequency",
                value: 0,
                offset,
            });
        }
        return Ok(rate);
    }
    sample_rate(index).ok_or(CodecError::InvalidValue {
        field,
        value: u64::from(index),
        offset,
    })
}

fn write_frequency(w: &mut BitWriter, rate: u32) -> Result<(), CodecError> {
    if let Some(index) = sample_rate_index(rate) {
        w.bits(4, u32::from(index));
    } else if rate > 0 && rate < 1 << 24 {
        w.bits(4, 15);
        w.bits(24, rate);
    } else {
        return Err(CodecError::Unsupported {
            what: "sampling frequency to write",
            value: u64::from(rate),
        });
    }
    Ok(())
}

/// Reads the GASpecificConfig after `frameLengthFlag` (no program config element).
fn read_ga_rest(r: &mut BitReader<'_>, object_type: ObjectType) -> Result<(), CodecError> {
    if r.flag("dependsOnCoreCoder")? {
        r.skip(14, "coreCoderDelay")?;
    }
    let extension = r.flag("extensionFlag")?;
    if matches!(object_type.0, 6 | 20) {
        r.skip(3, "layerNr")?;
    }
    if extension {
        if object_type.0 == 22 {
            r.skip(16, "numOfSubFrame, layer_length")?;
        }
        if matches!(object_type.0, 17 | 19 | 20 | 23) {
            r.skip(3, "aacSectionDataResilienceFlag..")?;
        }
        r.skip(1, "extensionFlag3")?;
    }
    Ok(())
}

/// Reads a backward-compatible SBR/PS extension after its `0x2b7` sync word.
fn read_sync_extension(r: &mut BitReader<'_>) -> Result<Option<Sbr>, CodecError> {
    if read_object_type(r)? != ObjectType::SBR || !r.flag("sbrPresentFlag")? {
        return Ok(None);
    }
    let sample_rate = read_frequency(r, "extensionSamplingFrequencyIndex")?;
    let ps = r.remaining() >= 12
        && r.bits(11, "syncExtensionType")? == 0x548
        && r.flag("psPresentFlag")?;
    Ok(Some(Sbr {
        sample_rate,
        ps,
        signalling: SbrSignalling::BackwardCompatible,
    }))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ffmpeg_adts_streams() {
        for (file, rate, channels) in [
            (
                &include_bytes!("../../testdata/ffmpeg_aac_lc_48000_stereo.adts")[..],
                48_000,
                2,
            ),
            (
                &include_bytes!("../../testdata/ffmpeg_aac_lc_44100_mono.adts")[..],
                44_100,
                1,
            ),
        ] {
            let frames: Vec<_> = adts_frames(file).collect::<Result<_, _>>().unwrap();
            assert!(frames.len() > 3);
            let total: usize = frames.iter().map(|(h, _)| h.frame_length).sum();
            assert_eq!(total, file.len());
            for (header, payload) in &frames {
                assert_eq!(header.object_type, ObjectType::LC);
                assert_eq!(header.sample_rate, rate);
                assert_eq!(header.channel_config, channels);
                assert_eq!(header.crc, None);
                assert_eq!(payload.len(), header.payload_len());
                // Rebuilding the header from the config gives FFmpeg's bytes back.
                let mut rebuilt = Vec::new();
                header.write(&mut rebuilt).unwrap();
                assert_eq!(
                    header.to_asc().adts_header(payload.len()).unwrap()[..],
                    rebuilt[..]
                );
            }
            let info = frames[0].0.to_asc().track_info();
            assert_eq!(info.sample_rate, Some(rate));
            assert_eq!(info.channels, Some(channels));
            assert_eq!(info.codec_string.as_deref(), Some("mp4a.40.2"));
        }
    }

    #[test]
    fn ffmpeg_esds_config() {
        // The AudioSpecificConfig FFmpeg wrote into the MP4 `esds` of the 48 kHz stereo stream.
        let asc = AudioSpecificConfig::parse(&[0x11, 0x90]).unwrap();
        assert_eq!(asc, AudioSpecificConfig::new(ObjectType::LC, 48_000, 2));
        assert_eq!(asc.to_vec().unwrap(), [0x11, 0x90]);
    }

    #[test]
    fn he_aac_signalling() {
        // Hierarchical: AOT 5, 24 kHz core, stereo, 48 kHz SBR, core LC.
        let asc = AudioSpecificConfig::parse(&[0x2b, 0x11, 0x88, 0x00]).unwrap();
        assert_eq!(asc.object_type, ObjectType::LC);
        assert_eq!(asc.sample_rate, 24_000);
        assert_eq!(asc.output_sample_rate(), 48_000);
        assert_eq!(asc.codec_string(), "mp4a.40.5");
        // HE-AACv2: AOT 29, mono core, PS makes stereo.
        let asc = AudioSpecificConfig::parse(&[0xeb, 0x09, 0x88, 0x00]).unwrap();
        assert_eq!(asc.codec_string(), "mp4a.40.29");
        assert_eq!(asc.channels(), Some(2));
        // Backward compatible: LC 22.05 kHz stereo + 0x2b7 sync extension to 44.1 kHz.
        let asc = AudioSpecificConfig::parse(&[0x13, 0x90, 0x56, 0xe5, 0xa0]).unwrap();
        assert_eq!(
            asc.sbr,
            Some(Sbr {
                sample_rate: 44_100,
                ps: false,
                signalling: SbrSignalling::BackwardCompatible
            })
        );
        assert_eq!(asc.track_info().sample_rate, Some(44_100));
    }

    #[test]
    fn escapes_and_explicit_frequency() {
        let asc = AudioSpecificConfig {
            object_type: ObjectType(42),
            sample_rate: 50_000,
            channel_config: 2,
            frame_length_960: false,
            sbr: None,
        };
        let bytes = asc.to_vec().unwrap();
        assert_eq!(AudioSpecificConfig::parse(&bytes).unwrap(), asc);
        // 5 + 6 bits of object type, 4 + 24 bits of frequency, 4 bits of channels.
        assert_eq!(bytes.len(), 6);
    }

    #[test]
    fn adts_crc_and_errors() {
        let header = AdtsHeader {
            mpeg2: true,
            object_type: ObjectType::LC,
            sample_rate: 44_100,
            channel_config: 2,
            frame_length: 100,
            buffer_fullness: 0x7ff,
            raw_blocks: 1,
            crc: Some(0xbeef),
        };
        let mut bytes = Vec::new();
        header.write(&mut bytes).unwrap();
        assert_eq!(bytes.len(), 9);
        assert_eq!(AdtsHeader::parse(&bytes).unwrap(), header);
        assert_eq!(header.payload_len(), 91);

        assert_eq!(
            AdtsHeader::parse(&[0xff, 0xe1, 0, 0, 0, 0, 0]),
            Err(CodecError::NoSync { offset: 0 })
        );
        let mut frames = adts_frames(&bytes);
        assert!(matches!(
            frames.next(),
            Some(Err(CodecError::Truncated {
                field: "ADTS frame",
                ..
            }))
        ));
        assert!(frames.next().is_none());
        assert!(matches!(
            AudioSpecificConfig::new(ObjectType::LC, 48_000, 2).adts_header(9000),
            Err(CodecError::TooLarge { .. })
        ));
    }

    fn asc_strategy() -> impl Strategy<Value = AudioSpecificConfig> {
        let rate = prop_oneof![prop::sample::select(SAMPLE_RATES.to_vec()), 1u32..(1 << 24)];
        let sbr = prop::option::of((
            prop::sample::select(SAMPLE_RATES.to_vec()),
            any::<bool>(),
            any::<bool>(),
        ));
        let aot = prop_oneof![1u8..=30, 32u8..=95];
        (aot, rate, 1u8..=15, any::<bool>(), sbr).prop_map(
            |(aot, sample_rate, channel_config, frame_length_960, sbr)| {
                let general_audio = matches!(aot, 1..=4 | 6 | 7 | 17 | 19..=23);
                // SBR goes with a GA core; a backward-compatible one needs the GA config.
                let object_type = if sbr.is_some() && !general_audio {
                    ObjectType::LC
                } else {
                    ObjectType(aot)
                };
                let general_audio = matches!(object_type.0, 1..=4 | 6 | 7 | 17 | 19..=23);
                AudioSpecificConfig {
                    object_type,
                    sample_rate,
                    channel_config,
                    frame_length_960: frame_length_960 && general_audio,
                    sbr: sbr.map(|(sample_rate, ps, hierarchical)| Sbr {
                        sample_rate,
                        ps,
                        signalling: if hierarchical {
                            SbrSignalling::Hierarchical
                        } else {
                            SbrSignalling::BackwardCompatible
                        },
                    }),
                }
            },
        )
    }

    proptest! {
        #[test]
        fn asc_round_trip(asc in asc_strategy()) {
            prop_assume!(!matches!(asc.object_type.0, 5 | 29));
            let bytes = asc.to_vec().unwrap();
            prop_assert_eq!(AudioSpecificConfig::parse(&bytes).unwrap(), asc);
        }

        #[test]
        fn adts_round_trip(
            aot in 1u8..=4, index in 0usize..13, channels in 0u8..=7, mpeg2 in any::<bool>(),
            payload in 0usize..8000, fullness in 0u16..0x800, blocks in 1u8..=4, crc in any::<Option<u16>>(),
        ) {
            let blocks = if crc.is_some() { 1 } else { blocks };
            let header = AdtsHeader {
                mpeg2,
                object_type: ObjectType(aot),
                sample_rate: SAMPLE_RATES[index],
                channel_config: channels,
                frame_length: payload + if crc.is_some() { 9 } else { 7 },
                buffer_fullness: fullness,
                raw_blocks: blocks,
                crc,
            };
            let mut bytes = Vec::new();
            header.write(&mut bytes).unwrap();
            prop_assert_eq!(bytes.len(), header.header_len());
            prop_assert_eq!(AdtsHeader::parse(&bytes).unwrap(), header);
        }

        /// What the `aac_asc` fuzz target asserts: a parsed config that can be written parses
        /// back to itself.
        #[test]
        fn parsed_asc_reparses(data in prop::collection::vec(any::<u8>(), 0..16)) {
            if let Ok(asc) = AudioSpecificConfig::parse(&data)
                && let Ok(bytes) = asc.to_vec()
            {
                prop_assert_eq!(AudioSpecificConfig::parse(&bytes).unwrap(), asc);
            }
        }

        #[test]
        fn parsers_never_panic(data in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = AudioSpecificConfig::parse(&data);
            let _ = AdtsHeader::parse(&data);
            let _ = adts_frames(&data).count();
            if let Ok(asc) = AudioSpecificConfig::parse(&data) {
                let _ = asc.to_vec();
                let _ = asc.adts_header(data.len());
                let _ = asc.track_info();
            }
        }
    }
}
