//! RTP packetizers, the sender side of RTSP play: H.264 (RFC 6184, packetization mode 1),
//! H.265 (RFC 7798) and AAC (RFC 3640, `AAC-hbr`).
//!
//! A [`Packetizer`] turns one access unit, as the hub carries it (Annex-B video with its
//! parameter sets before every keyframe, a raw AAC access unit), into RTP packets of at most
//! `max_packet` bytes, numbered by its own sequence counter. A packet is a small fixed head
//! (the RTP header and the payload format's few bytes: an FU indicator and header, an AU
//! header section) and a body that is a zero-copy slice of the access unit's [`Bytes`]: no
//! allocation per packet. The adapter writes head and body to its socket (TCP-interleaved
//! framing in front, or one datagram).
//!
//! ```
//! use bytes::Bytes;
//! use tributary_rtp::packetize::{Format, Packetizer};
//!
//! // An IDR picture of 3000 bytes after SPS and PPS, at most 1400 bytes per packet.
//! let mut au = vec![0, 0, 0, 1, 0x67, 0x42, 0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1, 0x65];
//! au.extend(std::iter::repeat_n(0xAB, 2999));
//! let mut packetizer = Packetizer::new(Format::H264, 96, 0x1234_5678, 1000, 1400);
//! let mut packets = Vec::new();
//! packetizer.packetize(&Bytes::from(au), 90_000, |p| packets.push(p)).unwrap();
//! // SPS, PPS, then the IDR in three FU-A fragments; the last packet carries the marker.
//! assert_eq!(packets.len(), 5);
//! assert!(packets.iter().all(|p| p.size() <= 1400));
//! assert_eq!(packets[4].sequence(), 1004);
//! assert!(packets[4].marker() && !packets[3].marker());
//! ```

use bytes::Bytes;
use tributary_media::codec::nal::annex_b_nals;

use crate::HEADER_LEN;

/// How access units are carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// H.264, RFC 6184 packetization mode 1: single NAL unit packets and FU-A.
    H264,
    /// H.265, RFC 7798: single NAL unit packets and fragmentation units.
    H265,
    /// AAC, RFC 3640 `AAC-hbr` (13-bit AU size, 3-bit index): one access unit per packet,
    /// fragmented when it does not fit.
    Aac,
}

/// The most head bytes a packet has: the RTP header and the largest payload-format prefix
/// (an AAC AU header section, 4 bytes).
const MAX_HEAD: usize = HEADER_LEN + 4;

/// The smallest `max_packet` a [`Packetizer`] takes: a header, its prefix and one byte.
pub const MIN_PACKET: usize = MAX_HEAD + 1;

/// The largest AAC access unit `AAC-hbr` can describe (a 13-bit size).
pub const MAX_AAC_AU: usize = (1 << 13) - 1;

/// One RTP packet: its head (RTP header and payload-format prefix) and its body, a slice of
/// the access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    head: [u8; MAX_HEAD],
    head_len: u8,
    body: Bytes,
}

impl Packet {
    /// The RTP header and the payload format's prefix.
    pub fn head(&self) -> &[u8] {
        &self.head[..usize::from(self.head_len)]
    }

    /// The rest of the packet: a slice of the access unit.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The packet's size in bytes.
    pub fn size(&self) -> usize {
        usize::from(self.head_len) + self.body.len()
    }

    /// The packet's sequence number.
    pub fn sequence(&self) -> u16 {
        u16::from_be_bytes([self.head[2], self.head[3]])
    }

    /// The packet's RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.head[4], self.head[5], self.head[6], self.head[7]])
    }

    /// Whether the marker bit is set: the last packet of an access unit.
    pub fn marker(&self) -> bool {
        self.head[1] & 0x80 != 0
    }

    /// Copies the whole packet to the end of `out` (for a datagram, or interleaved framing).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.head());
        out.extend_from_slice(&self.body);
    }
}

/// Why an access unit was not packetized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketizeError {
    /// An AAC access unit larger than `AAC-hbr`'s 13-bit size field.
    #[error("AAC access unit of {0} bytes: RFC 3640 AAC-hbr describes at most 8191")]
    AacTooLarge(usize),
}

/// The packetizer of one RTP stream: its payload type, SSRC, sequence counter and format.
#[derive(Debug, Clone)]
pub struct Packetizer {
    format: Format,
    payload_type: u8,
    ssrc: u32,
    next_sequence: u16,
    max_packet: usize,
}

impl Packetizer {
    /// A packetizer whose first packet has sequence number `first_sequence` and whose packets
    /// are at most `max_packet` bytes (at least [`MIN_PACKET`]; smaller values are raised to
    /// it). `payload_type` is taken modulo 128.
    pub fn new(
        format: Format,
        payload_type: u8,
        ssrc: u32,
        first_sequence: u16,
        max_packet: usize,
    ) -> Self {
        Self {
            format,
            payload_type: payload_type & 0x7F,
            ssrc,
            next_sequence: first_sequence,
            max_packet: max_packet.max(MIN_PACKET),
        }
    }

    /// The sequence number the next packet will carry (for `RTP-Info: seq=`).
    pub fn next_sequence(&self) -> u16 {
        self.next_sequence
    }

    /// The stream's SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Packetizes one access unit stamped `timestamp`, handing each packet to `emit` in order;
    /// the last carries the marker bit. A video access unit without NAL units emits nothing.
    pub fn packetize(
        &mut self,
        au: &Bytes,
        timestamp: u32,
        mut emit: impl FnMut(Packet),
    ) -> Result<(), PacketizeError> {
        match self.format {
            Format::H264 | Format::H265 => {
                let format = self.format;
                let mut nals = annex_b_nals(au)
                    .filter(|nal| !is_delimiter(format, nal))
                    .peekable();
                while let Some(nal) = nals.next() {
                    let last = nals.peek().is_none();
                    self.nal(au.slice_ref(nal), timestamp, last, &mut emit);
                }
                Ok(())
            }
            Format::Aac => self.aac(au, timestamp, &mut emit),
        }
    }

    /// One NAL unit: a single NAL unit packet if it fits, else fragmentation units.
    fn nal(&mut self, nal: Bytes, timestamp: u32, last: bool, emit: &mut impl FnMut(Packet)) {
        let room = self.max_packet - HEADER_LEN;
        if nal.len() <= room {
            emit(self.packet(timestamp, last, &[], nal));
            return;
        }
        // RFC 6184 §5.8 FU-A: indicator (F, NRI, type 28), header (S, E, type); the NAL
        // header byte itself is not sent. RFC 7798 §4.4.3 FU: payload header (type 49, the
        // NAL's layer and TID), FU header (S, E, type); the two NAL header bytes are not sent.
        // (A unit this long has both header bytes: `room` is at least 5.)
        let (prefix, header_len, nal_type, fu_prefix_len): ([u8; 2], usize, u8, usize) =
            match self.format {
                Format::H264 => ([(nal[0] & 0xE0) | 28, 0], 1, nal[0] & 0x1F, 2),
                _ => (
                    [(nal[0] & 0x81) | (49 << 1), nal[1]],
                    2,
                    (nal[0] >> 1) & 0x3F,
                    3,
                ),
            };
        let chunk = room - fu_prefix_len;
        let body = nal.slice(header_len..);
        let mut offset = 0;
        while offset < body.len() {
            let end = (offset + chunk).min(body.len());
            let start_bit = if offset == 0 { 0x80 } else { 0 };
            let end_bit = if end == body.len() { 0x40 } else { 0 };
            let fu_header = start_bit | end_bit | nal_type;
            let head: &[u8] = match self.format {
                Format::H264 => &[prefix[0], fu_header],
                _ => &[prefix[0], prefix[1], fu_header],
            };
            let packet = self.packet(
                timestamp,
                last && end_bit != 0,
                head,
                body.slice(offset..end),
            );
            emit(packet);
            offset = end;
        }
    }

    /// One AAC access unit (RFC 3640 §3.2): the AU header section (16 bits of length, one
    /// 16-bit AU header: 13 bits of size, index 0), then the unit; a unit that does not fit is
    /// split over packets that each repeat the header with the whole unit's size, the marker
    /// on the last.
    fn aac(
        &mut self,
        au: &Bytes,
        timestamp: u32,
        emit: &mut impl FnMut(Packet),
    ) -> Result<(), PacketizeError> {
        if au.len() > MAX_AAC_AU {
            return Err(PacketizeError::AacTooLarge(au.len()));
        }
        let size = u16::try_from(au.len()).unwrap_or(0) << 3;
        let head = [0x00, 0x10, (size >> 8) as u8, size as u8];
        let chunk = self.max_packet - HEADER_LEN - head.len();
        if au.is_empty() {
            emit(self.packet(timestamp, true, &head, Bytes::new()));
            return Ok(());
        }
        let mut offset = 0;
        while offset < au.len() {
            let end = (offset + chunk).min(au.len());
            emit(self.packet(timestamp, end == au.len(), &head, au.slice(offset..end)));
            offset = end;
        }
        Ok(())
    }

    /// A packet with the next sequence number.
    fn packet(&mut self, timestamp: u32, marker: bool, prefix: &[u8], body: Bytes) -> Packet {
        let mut head = [0u8; MAX_HEAD];
        head[0] = 0x80;
        head[1] = self.payload_type | if marker { 0x80 } else { 0 };
        head[2..4].copy_from_slice(&self.next_sequence.to_be_bytes());
        head[4..8].copy_from_slice(&timestamp.to_be_bytes());
        head[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        head[HEADER_LEN..HEADER_LEN + prefix.len()].copy_from_slice(prefix);
        self.next_sequence = self.next_sequence.wrapping_add(1);
        Packet {
            head,
            head_len: (HEADER_LEN + prefix.len()) as u8,
            body,
        }
    }
}

/// Whether `nal` (never empty) is an access unit delimiter, which RTP leaves out: the marker
/// bit ends an access unit.
fn is_delimiter(format: Format, nal: &[u8]) -> bool {
    match format {
        Format::H264 => nal[0] & 0x1F == 9,
        Format::H265 => (nal[0] >> 1) & 0x3F == 35,
        Format::Aac => false,
    }
}

#[cfg(test)]
mod tests;
