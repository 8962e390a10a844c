//! RTP packets (RFC 3550), sans-IO.
//!
//! - [`packetize`]: access units into RTP packets for RTSP play (H.264, H.265, AAC).
//! - [`rtcp`]: the sender reports that put an RTSP play's tracks on one clock.
//! - [`payload`]: the header of an RTP datagram, so that the UDP input can take MPEG-TS carried
//!   in RTP (RFC 2250, what `ffmpeg -f rtp_mpegts` and IPTV multicast send) as well as bare TS.
//!
//! [`payload`] strips the fixed header, the CSRC list, a header extension and padding; every
//! length in it comes from the network and is checked against the datagram.
//!
//! ```
//! let mut datagram = vec![0x80, 33, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
//! datagram.extend_from_slice(&[0x47, 0x40, 0x00, 0x10]);
//! assert_eq!(tributary_rtp::payload(&datagram), Some(&[0x47, 0x40, 0x00, 0x10][..]));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

pub mod packetize;
pub mod rtcp;

/// The fixed RTP header, before any CSRC.
pub const HEADER_LEN: usize = 12;

/// The payload of an RTP version 2 packet (fixed header, CSRCs, extension and padding
/// removed), or `None` when the datagram is not one: another version, shorter than its
/// header, or a CSRC count, extension length or padding count that runs past its end.
///
/// The payload is a slice of `datagram`: a suffix of it when the padding bit is clear, else
/// everything up to the padding its last byte counts.
pub fn payload(datagram: &[u8]) -> Option<&[u8]> {
    let [b0, ..] = *datagram else { return None };
    if b0 >> 6 != 2 || datagram.len() < HEADER_LEN {
        return None;
    }
    let csrcs = usize::from(b0 & 0x0F);
    let mut start = HEADER_LEN + 4 * csrcs;
    if b0 & 0x10 != 0 {
        let ext = datagram.get(start..start + 4)?;
        let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        start += 4 + 4 * words;
    }
    let mut end = datagram.len();
    if b0 & 0x20 != 0 {
        let padding = usize::from(*datagram.last()?);
        end = end.checked_sub(padding)?;
    }
    datagram.get(start..end)
}

#[cfg(test)]
mod tests {
    use super::payload;

    #[test]
    fn headers_are_stripped() {
        let ts = [0x47u8, 1, 2, 3];
        // Plain header.
        let mut p = vec![0x80, 33, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        p.extend_from_slice(&ts);
        assert_eq!(payload(&p), Some(&ts[..]));
        // Two CSRCs, a one-word extension, two bytes of padding.
        let mut p = vec![0x80 | 0x20 | 0x10 | 2, 33, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 9, 9, 9, 9]);
        p.extend_from_slice(&ts);
        p.extend_from_slice(&[0, 2]);
        assert_eq!(payload(&p), Some(&ts[..]));
        // A header and nothing else is an empty payload.
        assert_eq!(
            payload(&[0x80, 33, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]),
            Some(&[][..])
        );
    }

    #[test]
    fn not_rtp_truncated_or_lying_lengths_are_none() {
        assert_eq!(payload(&[0x40; 20]), None);
        assert_eq!(payload(&[0x80; 5]), None);
        // An extension header past the end, an extension longer than the datagram.
        assert_eq!(
            payload(&[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            None
        );
        assert_eq!(
            payload(&[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]),
            None
        );
        // More padding than datagram; 15 CSRCs in a 12-byte datagram.
        assert_eq!(payload(&[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200]), None);
        assert_eq!(payload(&[0x8F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        // Padding that eats into the header.
        assert_eq!(
            payload(&[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]),
            None
        );
        assert_eq!(payload(&[]), None);
    }
}
