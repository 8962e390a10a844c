//! Program-specific information: section reassembly, CRC32, PAT and PMT.

use tributary_media::{Codec, TrackId};

use crate::Error;
use crate::track::{Carriage, NotCarried, TrackInfo};

/// The CRC32 of MPEG-2 sections (polynomial 0x04C11DB7, no reflection, initial 0xFFFFFFFF).
///
/// A whole section including its trailing CRC checksums to 0.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    data.iter().fold(0xFFFF_FFFF, |crc, &b| {
        (crc << 8) ^ CRC_TABLE[usize::from(((crc >> 24) as u8) ^ b)]
    })
}

/// Reassembles PSI sections from the payloads of one PID's packets.
///
/// The buffer is reused; a section is at most 4096 bytes, so it never grows past that.
#[derive(Debug, Default)]
pub(crate) struct SectionAssembler {
    buf: Vec<u8>,
    /// Whether `buf` holds the start of a section whose rest is still to come.
    active: bool,
    /// Offset of the packet where the section in `buf` started.
    start: u64,
}

impl SectionAssembler {
    /// Feeds one packet's payload; calls `on_section(section, start_offset)` for every
    /// complete section (CRC not yet checked).
    pub(crate) fn push(
        &mut self,
        payload: &[u8],
        pusi: bool,
        offset: u64,
        mut on_section: impl FnMut(&[u8], u64),
    ) {
        let mut rest = payload;
        if pusi {
            let Some((&pointer, after)) = rest.split_first() else {
                self.reset();
                return;
            };
            let pointer = usize::from(pointer);
            if pointer > after.len() {
                self.reset();
                return;
            }
            let (tail, new) = after.split_at(pointer);
            if self.active {
                self.buf.extend_from_slice(tail);
                self.complete(&mut on_section);
            }
            self.reset();
            rest = new;
            self.start = offset;
            self.active = true;
        } else if !self.active {
            return;
        }
        self.buf.extend_from_slice(rest);
        self.complete(&mut on_section);
    }

    /// Drops a partial section (after a continuity error).
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.active = false;
    }

    /// Emits every complete section at the front of `buf`, keeping a trailing partial one.
    fn complete(&mut self, on_section: &mut impl FnMut(&[u8], u64)) {
        let mut at = 0;
        loop {
            let head = &self.buf[at..];
            let Some(&table_id) = head.first() else {
                self.reset();
                return;
            };
            if table_id == 0xFF {
                // Stuffing: no more sections in this packet.
                self.reset();
                return;
            }
            if head.len() < 3 {
                break;
            }
            let len = 3 + (usize::from(head[1] & 0x0F) << 8 | usize::from(head[2]));
            if head.len() < len {
                break;
            }
            on_section(&head[..len], self.start);
            at += len;
        }
        if at > 0 {
            self.buf.drain(..at);
        }
        if self.buf.len() > MAX_SECTION {
            self.reset();
        }
    }
}

/// A parsed PAT: program_number and PMT PID of each program, in order (NIT entries skipped).
pub(crate) fn parse_pat(
    section: &[u8],
    pid: u16,
    offset: u64,
) -> Result<Option<Vec<(u16, u16)>>, Error> {
    let body = check_section(section, 0x00, "PAT", pid, offset)?;
    let Some(body) = body else { return Ok(None) };
    let malformed = |reason| Error::Section {
        pid,
        table: "PAT",
        offset,
        reason,
    };
    if body.len() % 4 != 0 {
        return Err(malformed("program loop is not a multiple of 4 bytes"));
    }
    let programs = body
        .chunks_exact(4)
        .map(|e| {
            (
                u16::from_be_bytes([e[0], e[1]]),
                u16::from_be_bytes([e[2] & 0x1F, e[3]]),
            )
        })
        .filter(|&(program, _)| program != 0)
        .collect();
    Ok(Some(programs))
}

/// A parsed PMT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pmt {
    pub(crate) program: u16,
    pub(crate) pcr_pid: u16,
    pub(crate) tracks: Vec<TrackInfo>,
}

/// Parses a PMT section.
pub(crate) fn parse_pmt(section: &[u8], pid: u16, offset: u64) -> Result<Option<Pmt>, Error> {
    let program = section
        .get(3..5)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let body = check_section(section, 0x02, "PMT", pid, offset)?;
    let Some(body) = body else { return Ok(None) };
    let malformed = |reason| Error::Section {
        pid,
        table: "PMT",
        offset,
        reason,
    };
    let [p0, p1, i0, i1, rest @ ..] = body else {
        return Err(malformed("shorter than its fixed header"));
    };
    let pcr_pid = u16::from_be_bytes([p0 & 0x1F, *p1]);
    let info_len = usize::from(i0 & 0x0F) << 8 | usize::from(*i1);
    let Some(mut es) = rest.get(info_len..) else {
        return Err(malformed("program_info_length overruns the section"));
    };
    let mut tracks = Vec::new();
    while !es.is_empty() {
        let [stream_type, e0, e1, l0, l1, after @ ..] = es else {
            return Err(malformed("truncated elementary stream entry"));
        };
        let es_pid = u16::from_be_bytes([e0 & 0x1F, *e1]);
        let len = usize::from(l0 & 0x0F) << 8 | usize::from(*l1);
        let Some(descriptors) = after.get(..len) else {
            return Err(malformed("ES_info_length overruns the section"));
        };
        tracks.push(TrackInfo {
            track: TrackId(es_pid),
            stream_type: *stream_type,
            carriage: classify(*stream_type, descriptors),
            aac: None,
        });
        es = &after[len..];
    }
    Ok(Some(Pmt {
        program,
        pcr_pid,
        tracks,
    }))
}

/// Writes a long-form section (PAT or PMT) with its CRC into `out`.
///
/// `body` is everything after the 8-byte header (for the PMT, from PCR_PID on).
pub(crate) fn write_section(out: &mut Vec<u8>, table_id: u8, id: u16, version: u8, body: &[u8]) {
    let start = out.len();
    let section_len = 5 + body.len() + 4;
    out.push(table_id);
    out.push(0xB0 | ((section_len >> 8) as u8 & 0x0F));
    out.push(section_len as u8);
    out.extend_from_slice(&id.to_be_bytes());
    out.push(0xC1 | ((version & 0x1F) << 1)); // current_next_indicator = 1
    out.push(0); // section_number
    out.push(0); // last_section_number
    out.extend_from_slice(body);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Checks table id, syntax, length and CRC of a long-form section; returns the body between
/// the 8-byte header and the CRC, or `None` for a section that is not yet current.
fn check_section<'a>(
    section: &'a [u8],
    table_id: u8,
    table: &'static str,
    pid: u16,
    offset: u64,
) -> Result<Option<&'a [u8]>, Error> {
    let malformed = |reason| Error::Section {
        pid,
        table,
        offset,
        reason,
    };
    if section.first() != Some(&table_id) {
        return Err(malformed("unexpected table_id"));
    }
    if section.len() < 12 {
        return Err(malformed("shorter than its fixed header and CRC"));
    }
    if section[1] & 0x80 == 0 {
        return Err(malformed("section_syntax_indicator is 0"));
    }
    if crc32(section) != 0 {
        return Err(Error::Crc { pid, table, offset });
    }
    if section[5] & 0x01 == 0 {
        // current_next_indicator = 0: a table that is not valid yet.
        return Ok(None);
    }
    Ok(Some(&section[8..section.len() - 4]))
}

/// Maps a stream_type and its descriptors to the codec carried, or why it is not.
fn classify(stream_type: u8, descriptors: &[u8]) -> Carriage {
    use Carriage::{Carried, NotCarried as Not};
    match stream_type {
        0x1B => Carried(Codec::H264),
        0x24 => Carried(Codec::H265),
        0x0F => Carried(Codec::Aac),
        0x11 => Not(NotCarried::AacLatm),
        0x03 | 0x04 => Carried(Codec::Mp2),
        0x81 => Carried(Codec::Ac3),
        0x87 => Carried(Codec::Eac3),
        0x86 => Carried(Codec::Scte35),
        0x01 | 0x02 => Not(NotCarried::Mpeg2Video),
        0x15 => Not(NotCarried::Metadata),
        0x06 => classify_private(descriptors),
        other => Not(NotCarried::StreamType(other)),
    }
}

/// Recognises the codec of a PES private data stream (stream_type 0x06) by its descriptors.
fn classify_private(descriptors: &[u8]) -> Carriage {
    let mut rest = descriptors;
    while let [tag, len, after @ ..] = rest {
        let Some(data) = after.get(..usize::from(*len)) else {
            break;
        };
        match (*tag, data) {
            (0x05, b"Opus") => return Carriage::Carried(Codec::Opus),
            (0x05, b"AC-3") | (0x6A, _) => return Carriage::Carried(Codec::Ac3),
            (0x05, b"EAC3") | (0x7A, _) => return Carriage::Carried(Codec::Eac3),
            (0x56, _) => return Carriage::NotCarried(NotCarried::Teletext),
            (0x59, _) => return Carriage::NotCarried(NotCarried::DvbSubtitles),
            _ => {}
        }
        rest = &after[usize::from(*len)..];
    }
    Carriage::NotCarried(NotCarried::PrivateData)
}

/// The longest section buffer kept (a private section is at most 4096 bytes).
const MAX_SECTION: usize = 4096 + 188;

/// The MPEG-2 CRC32 table, built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    /// A PAT captured from ffmpeg's mpegts muxer: program 1, PMT on PID 0x1000.
    const FFMPEG_PAT: [u8; 16] = [
        0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0x00, 0x00, 0x00, 0x01, 0xF0, 0x00, 0x2A, 0xB1, 0x04,
        0xB2,
    ];

    #[test]
    fn crc_of_known_pat_checks() {
        assert_eq!(crc32(&FFMPEG_PAT), 0);
        assert_eq!(crc32(&FFMPEG_PAT[..12]), 0x2AB1_04B2);
    }

    #[test]
    fn parses_pat() {
        let programs = parse_pat(&FFMPEG_PAT, 0, 0).unwrap().unwrap();
        assert_eq!(programs, vec![(1, 0x1000)]);
    }

    #[test]
    fn pat_crc_mismatch_names_pid_and_offset() {
        let mut pat = FFMPEG_PAT;
        pat[9] ^= 1;
        assert_eq!(
            parse_pat(&pat, 0, 1316).unwrap_err(),
            Error::Crc {
                pid: 0,
                table: "PAT",
                offset: 1316
            }
        );
    }

    #[test]
    fn written_pmt_parses_with_codecs() {
        let mut body = vec![0xE1, 0x00, 0xF0, 0x00];
        body.extend_from_slice(&[0x1B, 0xE1, 0x00, 0xF0, 0x00]);
        body.extend_from_slice(&[0x0F, 0xE1, 0x01, 0xF0, 0x00]);
        body.extend_from_slice(&[
            0x06, 0xE1, 0x02, 0xF0, 0x06, 0x05, 0x04, b'O', b'p', b'u', b's',
        ]);
        body.extend_from_slice(&[0x06, 0xE1, 0x03, 0xF0, 0x02, 0x7A, 0x00]);
        body.extend_from_slice(&[0x06, 0xE1, 0x04, 0xF0, 0x02, 0x56, 0x00]);
        body.extend_from_slice(&[0x11, 0xE1, 0x05, 0xF0, 0x00]);
        body.extend_from_slice(&[0x86, 0xE1, 0x06, 0xF0, 0x00]);
        let mut section = Vec::new();
        write_section(&mut section, 0x02, 7, 3, &body);
        let pmt = parse_pmt(&section, 0x1000, 0).unwrap().unwrap();
        assert_eq!(pmt.program, 7);
        assert_eq!(pmt.pcr_pid, 0x100);
        let got: Vec<_> = pmt.tracks.iter().map(|t| (t.track.0, t.carriage)).collect();
        assert_eq!(
            got,
            vec![
                (0x100, Carriage::Carried(Codec::H264)),
                (0x101, Carriage::Carried(Codec::Aac)),
                (0x102, Carriage::Carried(Codec::Opus)),
                (0x103, Carriage::Carried(Codec::Eac3)),
                (0x104, Carriage::NotCarried(NotCarried::Teletext)),
                (0x105, Carriage::NotCarried(NotCarried::AacLatm)),
                (0x106, Carriage::Carried(Codec::Scte35)),
            ]
        );
    }

    #[test]
    fn truncated_pmt_entry_is_an_error() {
        let body = [0xE1, 0x00, 0xF0, 0x00, 0x1B, 0xE1, 0x00, 0xF0, 0x09, 0x00];
        let mut section = Vec::new();
        write_section(&mut section, 0x02, 1, 0, &body);
        assert!(matches!(
            parse_pmt(&section, 0x1000, 376),
            Err(Error::Section {
                pid: 0x1000,
                offset: 376,
                ..
            })
        ));
    }

    #[test]
    fn assembler_joins_sections_across_packets_and_splits_packed_ones() {
        let mut a = Vec::new();
        write_section(&mut a, 0x02, 1, 0, &[0xE1, 0x00, 0xF0, 0x00]);
        let mut b = a.clone();
        b[3] = 9; // another program number (CRC no longer matters to the assembler)
        let mut stream = vec![0u8]; // pointer_field
        stream.extend_from_slice(&a);
        stream.extend_from_slice(&b);
        stream.push(0xFF);
        let mut got = Vec::new();
        let mut asm = SectionAssembler::default();
        let (first, second) = stream.split_at(10);
        asm.push(first, true, 0, |s, o| got.push((s.to_vec(), o)));
        assert!(got.is_empty());
        asm.push(second, false, 188, |s, o| got.push((s.to_vec(), o)));
        assert_eq!(got, vec![(a, 0), (b, 0)]);
    }
}
