//! Elementary-stream knowledge: PES headers, keyframe detection, ADTS, MPEG audio and Opus
//! framing.

use crate::track::AacConfig;

/// The fields of a PES header the demuxer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PesHeader {
    /// Raw 33-bit PTS.
    pub(crate) pts: Option<u64>,
    /// Raw 33-bit DTS.
    pub(crate) dts: Option<u64>,
    /// Bytes from the start of the PES to the first payload byte.
    pub(crate) header_len: usize,
    /// PES_packet_length (0 = unbounded).
    pub(crate) packet_len: usize,
}

/// Parses the header at the start of a PES packet.
pub(crate) fn parse_pes_header(pes: &[u8]) -> Result<PesHeader, &'static str> {
    let [0, 0, 1, stream_id, l0, l1, rest @ ..] = pes else {
        return Err(if pes.len() < 6 {
            "shorter than a PES header"
        } else {
            "no packet_start_code_prefix"
        });
    };
    let packet_len = usize::from(u16::from_be_bytes([*l0, *l1]));
    if !has_optional_header(*stream_id) {
        return Ok(PesHeader {
            pts: None,
            dts: None,
            header_len: 6,
            packet_len,
        });
    }
    let [f0, flags, hlen, fields @ ..] = rest else {
        return Err("truncated optional PES header");
    };
    if f0 & 0xC0 != 0x80 {
        return Err("MPEG-1 PES headers are not supported");
    }
    let hlen = usize::from(*hlen);
    let Some(fields) = fields.get(..hlen) else {
        return Err("PES_header_data_length overruns the PES");
    };
    let (pts, dts) = match flags >> 6 {
        0b10 => (Some(read_ts(fields).ok_or("truncated PTS")?), None),
        0b11 => {
            let pts = read_ts(fields).ok_or("truncated PTS")?;
            let dts = fields.get(5..).and_then(read_ts).ok_or("truncated DTS")?;
            (Some(pts), Some(dts))
        }
        0b01 => return Err("PTS_DTS_flags is the forbidden value 01"),
        _ => (None, None),
    };
    Ok(PesHeader {
        pts,
        dts,
        header_len: 9 + hlen,
        packet_len,
    })
}

/// Writes a PES header for one access unit.
///
/// `payload_len` is the length of what follows; video passes `None` (PES_packet_length 0).
pub(crate) fn write_pes_header(
    out: &mut Vec<u8>,
    stream_id: u8,
    pts: u64,
    dts: Option<u64>,
    payload_len: Option<usize>,
) {
    let header_data = if dts.is_some() { 10 } else { 5 };
    let packet_len = payload_len
        .map(|len| 3 + header_data + len)
        .and_then(|len| u16::try_from(len).ok())
        .unwrap_or(0);
    out.extend_from_slice(&[0, 0, 1, stream_id]);
    out.extend_from_slice(&packet_len.to_be_bytes());
    out.push(0x84); // marker bits, data_alignment_indicator
    match dts {
        Some(dts) => {
            out.push(0xC0);
            out.push(10);
            write_ts(out, 0x3, pts);
            write_ts(out, 0x1, dts);
        }
        None => {
            out.push(0x80);
            out.push(5);
            write_ts(out, 0x2, pts);
        }
    }
}

/// Whether an Annex-B H.264 access unit holds an IDR picture (NAL type 5).
///
/// Scans NAL headers up to the first picture slice, so only the prefix (AUD, parameter sets,
/// SEI) is read.
pub(crate) fn h264_is_idr(au: &[u8]) -> bool {
    first_vcl(au, |b| b & 0x1F, |t| (1..=5).contains(&t)) == Some(5)
}

/// Whether an Annex-B H.265 access unit holds an IRAP picture (NAL types 16..=21).
pub(crate) fn h265_is_irap(au: &[u8]) -> bool {
    first_vcl(au, |b| (b >> 1) & 0x3F, |t| t <= 31).is_some_and(|t| (16..=21).contains(&t))
}

/// The type of the first VCL NAL unit in an Annex-B byte stream.
fn first_vcl(au: &[u8], nal_type: impl Fn(u8) -> u8, is_vcl: impl Fn(u8) -> bool) -> Option<u8> {
    let mut i = 0;
    while i + 3 < au.len() {
        // Skip ahead fast: a start code's third byte is 1, its first two are 0.
        if au[i + 2] > 1 {
            i += 3;
            continue;
        }
        if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
            let t = nal_type(au[i + 3]);
            if is_vcl(t) {
                return Some(t);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    None
}

/// One ADTS frame inside a PES payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AdtsFrame {
    pub(crate) config: AacConfig,
    /// Offset of the raw access unit within the buffer searched.
    pub(crate) start: usize,
    /// Length of the raw access unit.
    pub(crate) len: usize,
    /// Bytes from the frame's start to the next frame.
    pub(crate) frame_len: usize,
}

/// Parses the ADTS frame at the start of `data`.
pub(crate) fn parse_adts(data: &[u8]) -> Result<AdtsFrame, &'static str> {
    let [b0, b1, b2, b3, b4, b5, b6, ..] = *data else {
        return Err("truncated ADTS header");
    };
    if b0 != 0xFF || b1 & 0xF6 != 0xF0 {
        return Err("no ADTS sync word");
    }
    let protection_absent = b1 & 1 == 1;
    let frame_len = (usize::from(b3 & 0x03) << 11) | (usize::from(b4) << 3) | usize::from(b5 >> 5);
    let header_len = if protection_absent { 7 } else { 9 };
    if b6 & 0x03 != 0 {
        return Err("several raw data blocks per ADTS frame are not supported");
    }
    if frame_len < header_len {
        return Err("ADTS frame_length shorter than its header");
    }
    if frame_len > data.len() {
        return Err("ADTS frame truncated by the end of the PES");
    }
    let object_type = (b2 >> 6) + 1;
    let config = AacConfig::new(object_type, (b2 >> 2) & 0x0F, ((b2 & 1) << 2) | (b3 >> 6))
        .ok_or("reserved sampling frequency index")?;
    Ok(AdtsFrame {
        config,
        start: header_len,
        len: frame_len - header_len,
        frame_len,
    })
}

/// Whether an MPEG audio frame header announces Layer III.
pub(crate) fn mpeg_audio_is_layer3(frame: &[u8]) -> bool {
    matches!(frame, [0xFF, b1, ..] if b1 & 0xE0 == 0xE0 && (b1 >> 1) & 0x03 == 0b01)
}

/// One Opus packet inside a PES payload (ETSI TS 102 366 framing: a control header before
/// every packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpusPacket {
    /// Offset of the packet's first byte within the buffer searched.
    pub(crate) start: usize,
    /// Length of the Opus packet.
    pub(crate) len: usize,
    /// Its duration in 90 kHz ticks, from its TOC byte.
    pub(crate) duration: i64,
}

/// Parses the control header and the packet at the start of `data`.
pub(crate) fn parse_opus(data: &[u8]) -> Result<OpusPacket, &'static str> {
    let [b0, b1, rest @ ..] = data else {
        return Err("truncated Opus control header");
    };
    if *b0 != 0x7F || b1 & 0xE0 != 0xE0 {
        return Err("no Opus control header prefix");
    }
    let mut at = 2;
    let mut len = 0usize;
    loop {
        let Some(&b) = rest.get(at - 2) else {
            return Err("truncated Opus au_size");
        };
        at += 1;
        len += usize::from(b);
        if b != 0xFF {
            break;
        }
    }
    if b1 & 0x10 != 0 {
        at += 2; // start_trim
    }
    if b1 & 0x08 != 0 {
        at += 2; // end_trim
    }
    if b1 & 0x04 != 0 {
        let ext_len = usize::from(*data.get(at).ok_or("truncated Opus control extension")?);
        at += 1 + ext_len;
    }
    let packet = data
        .get(at..at + len)
        .ok_or("Opus packet truncated by the end of the PES")?;
    Ok(OpusPacket {
        start: at,
        len,
        // 48 kHz samples to 90 kHz ticks: × 15 / 8, exact for whole 2.5 ms frames.
        duration: i64::from(tributary_media::codec::opus::packet_samples(packet)) * 15 / 8,
    })
}

fn has_optional_header(stream_id: u8) -> bool {
    !matches!(
        stream_id,
        0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF
    )
}

fn read_ts(b: &[u8]) -> Option<u64> {
    let [b0, b1, b2, b3, b4, ..] = *b else {
        return None;
    };
    Some(
        (u64::from((b0 >> 1) & 0x07) << 30)
            | (u64::from(b1) << 22)
            | (u64::from(b2 >> 1) << 15)
            | (u64::from(b3) << 7)
            | u64::from(b4 >> 1),
    )
}

fn write_ts(out: &mut Vec<u8>, prefix: u8, ts: u64) {
    let ts = ts & ((1 << 33) - 1);
    out.extend_from_slice(&[
        (prefix << 4) | ((ts >> 29) as u8 & 0x0E) | 1,
        (ts >> 22) as u8,
        ((ts >> 14) as u8 & 0xFE) | 1,
        (ts >> 7) as u8,
        ((ts << 1) as u8) | 1,
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pes_header_round_trips() {
        for (pts, dts) in [
            (0, None),
            ((1 << 33) - 1, Some(5)),
            (123_456_789, Some(123_000)),
        ] {
            let mut out = Vec::new();
            write_pes_header(&mut out, 0xE0, pts, dts, Some(100));
            let h = parse_pes_header(&out).unwrap();
            assert_eq!((h.pts, h.dts), (Some(pts), dts));
            assert_eq!(h.header_len, out.len());
            assert_eq!(h.packet_len, out.len() - 6 + 100);
        }
    }

    #[test]
    fn detects_keyframes() {
        assert!(h264_is_idr(&[
            0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x65, 0x88
        ]));
        assert!(!h264_is_idr(&[
            0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x41, 0x9A, 0, 0, 1, 0x65
        ]));
        assert!(h265_is_irap(&[
            0, 0, 0, 1, 0x40, 0x01, 0, 0, 1, 0x26, 0x01, 0xAF
        ]));
        assert!(!h265_is_irap(&[0, 0, 0, 1, 0x02, 0x01, 0xD0]));
    }

    #[test]
    fn adts_header_round_trips() {
        let config = AacConfig::new(2, 3, 2).unwrap();
        let mut frame = config.adts_header(5).unwrap().to_vec();
        frame.extend_from_slice(&[1, 2, 3, 4, 5]);
        let parsed = parse_adts(&frame).unwrap();
        assert_eq!(parsed.config, config);
        assert_eq!((parsed.start, parsed.len, parsed.frame_len), (7, 5, 12));
        assert!(parse_adts(&frame[..11]).is_err());
    }

    #[test]
    fn opus_control_header_and_duration() {
        // 20 ms CELT frame (config 31 -> 20 ms), 300-byte packet: au_size = 0xFF, 0x2D.
        let mut pes = vec![0x7F, 0xE0, 0xFF, 0x2D, 0xF8];
        pes.extend(std::iter::repeat_n(0, 299));
        let p = parse_opus(&pes).unwrap();
        assert_eq!((p.start, p.len, p.duration), (4, 300, 1800));
    }

    #[test]
    fn mpeg_audio_layer() {
        assert!(mpeg_audio_is_layer3(&[0xFF, 0xFB, 0x90]));
        assert!(!mpeg_audio_is_layer3(&[0xFF, 0xFD, 0x90]));
    }
}
