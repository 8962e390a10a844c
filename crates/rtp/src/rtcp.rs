//! RTCP sender reports (RFC 3550 §6.4.1), what a player needs to put the tracks of an RTSP
//! play on one clock: each report ties a track's RTP timestamp to wall-clock (NTP) time.
//!
//! ```
//! use std::time::Duration;
//! use tributary_rtp::rtcp::{SenderReport, ntp_time};
//!
//! let report = SenderReport {
//!     ssrc: 0x1234_5678,
//!     ntp: ntp_time(Duration::from_secs(1_700_000_000)),
//!     rtp_timestamp: 90_000,
//!     packets: 10,
//!     octets: 12_000,
//! };
//! let mut out = Vec::new();
//! report.write_compound("tributary", &mut out);
//! // SR (28 bytes), then SDES with the CNAME, padded to 32-bit words.
//! assert_eq!(out.len(), 28 + 20);
//! assert_eq!(out[1], 200);
//! assert_eq!(out[29], 202);
//! ```

use std::time::Duration;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// The 64-bit NTP timestamp (32.32 fixed point seconds since 1900) of a wall-clock time given
/// as the time since the Unix epoch.
pub fn ntp_time(since_unix_epoch: Duration) -> u64 {
    let seconds = since_unix_epoch.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let fraction = (u64::from(since_unix_epoch.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

/// One sender report, without reception report blocks (a server that only sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderReport {
    /// The SSRC of the track's RTP packets.
    pub ssrc: u32,
    /// Wall-clock time of the report, as [`ntp_time`] gives it.
    pub ntp: u64,
    /// The RTP timestamp that corresponds to `ntp` on the track's clock.
    pub rtp_timestamp: u32,
    /// RTP packets sent since the stream began (wrapping).
    pub packets: u32,
    /// Payload octets sent since the stream began (wrapping).
    pub octets: u32,
}

impl SenderReport {
    /// Appends the report (28 bytes) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        // V=2, P=0, RC=0; PT=200; length = 6 words after the first.
        out.extend_from_slice(&[0x80, 200, 0, 6]);
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&self.ntp.to_be_bytes());
        out.extend_from_slice(&self.rtp_timestamp.to_be_bytes());
        out.extend_from_slice(&self.packets.to_be_bytes());
        out.extend_from_slice(&self.octets.to_be_bytes());
    }

    /// Appends the compound packet RFC 3550 §6.1 asks for: this report, then an SDES packet
    /// with the source's CNAME (at most 255 bytes of it are sent).
    pub fn write_compound(&self, cname: &str, out: &mut Vec<u8>) {
        self.write(out);
        let cname = &cname.as_bytes()[..cname.len().min(255)];
        // SSRC, item type 1 and length, the name, then at least one zero byte ending the
        // item list, padded to a 32-bit boundary.
        let chunk = 4 + 2 + cname.len();
        let padded = (chunk + 1).div_ceil(4) * 4;
        let words = u16::try_from(padded / 4).unwrap_or(u16::MAX);
        out.extend_from_slice(&[0x81, 202]);
        out.extend_from_slice(&words.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&[1, cname.len() as u8]);
        out.extend_from_slice(cname);
        out.resize(out.len() + padded - chunk, 0);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{SenderReport, ntp_time};

    #[test]
    fn ntp_time_counts_from_1900_in_32_32_fixed_point() {
        assert_eq!(ntp_time(Duration::ZERO), 2_208_988_800 << 32);
        assert_eq!(
            ntp_time(Duration::from_millis(1500)),
            ((2_208_988_801u64) << 32) | (1 << 31)
        );
    }

    #[test]
    fn a_compound_report_is_an_sr_then_an_sdes_cname_in_whole_words() {
        let report = SenderReport {
            ssrc: 0xAABB_CCDD,
            ntp: 0x0102_0304_0506_0708,
            rtp_timestamp: 0x1122_3344,
            packets: 5,
            octets: 6,
        };
        for cname in ["", "a", "ab", "abc", "tributary@host", &"x".repeat(300)] {
            let mut out = Vec::new();
            report.write_compound(cname, &mut out);
            assert_eq!(
                &out[..28],
                &[
                    0x80, 200, 0, 6, 0xAA, 0xBB, 0xCC, 0xDD, 1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x22,
                    0x33, 0x44, 0, 0, 0, 5, 0, 0, 0, 6
                ]
            );
            let sdes = &out[28..];
            assert_eq!(sdes.len() % 4, 0, "{cname:?}");
            assert_eq!(&sdes[..2], &[0x81, 202]);
            let words = usize::from(u16::from_be_bytes([sdes[2], sdes[3]]));
            assert_eq!(sdes.len(), 4 + 4 * words, "{cname:?}");
            assert_eq!(&sdes[4..8], &[0xAA, 0xBB, 0xCC, 0xDD]);
            let len = usize::from(sdes[9]);
            assert_eq!(sdes[8], 1);
            assert_eq!(len, cname.len().min(255));
            assert_eq!(&sdes[10..10 + len], &cname.as_bytes()[..len]);
            assert!(sdes[10 + len..].iter().all(|&b| b == 0));
            assert!(sdes.len() > 10 + len, "an item list ends with a zero byte");
        }
    }
}
