//! Sample entries (`stsd` children): the visual and audio fixed fields and each codec's
//! configuration box (`avcC`, `hvcC`, `av1C`, `vpcC`, `esds`, `dOps`, `dac3`, `dec3`).

use bytes::{BufMut, BytesMut};

use super::boxes::{close, descriptor, open, open_full};
use super::{OPUS_RATE, SampleEntry};

/// Writes the sample entry with its configuration box.
pub(super) fn write_sample_entry(entry: &SampleEntry, out: &mut BytesMut) {
    match entry {
        SampleEntry::Avc {
            record,
            width,
            height,
        }
        | SampleEntry::Hevc {
            record,
            width,
            height,
        }
        | SampleEntry::Av1 {
            record,
            width,
            height,
        } => {
            let (kind, config) = match entry {
                SampleEntry::Avc { .. } => (b"avc1", b"avcC"),
                SampleEntry::Av1 { .. } => (b"av01", b"av1C"),
                _ => (b"hvc1", b"hvcC"),
            };
            let at = visual_entry(out, kind, *width, *height);
            let record_box = open(out, config);
            out.put_slice(record);
            close(out, record_box);
            close(out, at);
        }
        SampleEntry::Vp9 {
            record,
            width,
            height,
        } => {
            let at = visual_entry(out, b"vp09", *width, *height);
            let vpcc = open_full(out, b"vpcC", 1, 0);
            out.put_slice(record);
            close(out, vpcc);
            close(out, at);
        }
        SampleEntry::Aac {
            asc,
            rate,
            channels,
        } => {
            let at = audio_entry(out, b"mp4a", *channels, *rate);
            let esds = open_full(out, b"esds", 0, 0);
            // ES_Descriptor(ES_ID 0, no flags) > DecoderConfigDescriptor(MPEG-4 audio) >
            // DecoderSpecificInfo(the ASC); SLConfigDescriptor(predefined 2).
            let specific = 2 + asc.len();
            let decoder = 13 + specific;
            descriptor(out, 0x03, 3 + 2 + decoder + 3);
            out.put_u16(0);
            out.put_u8(0);
            descriptor(out, 0x04, decoder);
            out.put_u8(0x40); // objectTypeIndication: MPEG-4 audio
            out.put_u8(0x15); // streamType audio (5) << 2 | 1
            out.put_bytes(0, 3); // bufferSizeDB
            out.put_u32(0); // maxBitrate
            out.put_u32(0); // avgBitrate
            descriptor(out, 0x05, asc.len());
            out.put_slice(asc);
            descriptor(out, 0x06, 1);
            out.put_u8(2);
            close(out, esds);
            close(out, at);
        }
        SampleEntry::Opus { channels } => {
            let at = audio_entry(out, b"Opus", u16::from(*channels), OPUS_RATE);
            let dops = open(out, b"dOps");
            out.put_u8(0); // Version
            out.put_u8(*channels);
            out.put_u16(0); // PreSkip
            out.put_u32(OPUS_RATE); // InputSampleRate
            out.put_i16(0); // OutputGain
            out.put_u8(0); // ChannelMappingFamily
            close(out, dops);
            close(out, at);
        }
        SampleEntry::Ac3 {
            dac3,
            rate,
            channels,
        } => {
            let at = audio_entry(out, b"ac-3", *channels, *rate);
            let dac3_box = open(out, b"dac3");
            out.put_slice(dac3);
            close(out, dac3_box);
            close(out, at);
        }
        SampleEntry::Eac3 {
            dec3,
            rate,
            channels,
        } => {
            let at = audio_entry(out, b"ec-3", *channels, *rate);
            let dec3_box = open(out, b"dec3");
            out.put_slice(dec3);
            close(out, dec3_box);
            close(out, at);
        }
    }
}

/// Opens a visual sample entry and writes its fixed fields; close it after the
/// configuration box.
fn visual_entry(out: &mut BytesMut, kind: &[u8; 4], width: u16, height: u16) -> usize {
    let at = open(out, kind);
    out.put_bytes(0, 6);
    out.put_u16(1); // data_reference_index
    out.put_bytes(0, 16); // pre_defined, reserved
    out.put_u16(width);
    out.put_u16(height);
    out.put_u32(0x0048_0000); // 72 dpi
    out.put_u32(0x0048_0000);
    out.put_u32(0);
    out.put_u16(1); // frame_count
    out.put_bytes(0, 32); // compressorname
    out.put_u16(0x0018); // depth
    out.put_i16(-1);
    at
}

/// Opens an audio sample entry and writes its fixed fields; close it after the
/// configuration box.
fn audio_entry(out: &mut BytesMut, kind: &[u8; 4], channels: u16, rate: u32) -> usize {
    let at = open(out, kind);
    out.put_bytes(0, 6);
    out.put_u16(1); // data_reference_index
    out.put_bytes(0, 8);
    out.put_u16(channels);
    out.put_u16(16); // samplesize
    out.put_u32(0); // pre_defined, reserved
    // 16.16 fixed point; rates above 65535 Hz do not fit and are written as 0.
    out.put_u32(if rate <= 0xffff { rate << 16 } else { 0 });
    at
}
