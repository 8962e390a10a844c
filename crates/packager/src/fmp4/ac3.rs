//! AC-3 and E-AC-3 syncframe headers (ETSI TS 102 366): what `dac3` / `dec3` need, and the
//! frame length, so that a PES carrying several syncframes becomes one MP4 sample each.

/// The facts of one syncframe header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyncFrame {
    /// Its length in bytes, header included.
    pub(crate) len: usize,
    /// `fscod` (for E-AC-3 with `fscod` 3: 3, the half rates are in `sample_rate`).
    pub(crate) fscod: u8,
    /// The sampling frequency in Hz.
    pub(crate) sample_rate: u32,
    /// `bsid`: 8 or less for AC-3, 16 for E-AC-3.
    pub(crate) bsid: u8,
    /// `bsmod` (AC-3; 0, main audio, for E-AC-3, which signals it deep in optional metadata).
    pub(crate) bsmod: u8,
    /// `acmod`: the channel layout.
    pub(crate) acmod: u8,
    /// `lfeon`: an LFE channel.
    pub(crate) lfeon: bool,
    /// AC-3: `frmsizecod >> 1`, the bit rate code of `dac3`.
    pub(crate) bit_rate_code: u8,
    /// Audio samples (per channel) in the frame: 1536 for AC-3, 256 × blocks for E-AC-3.
    pub(crate) samples: u32,
}

impl SyncFrame {
    /// Parses the header at the start of `data`; `None` when it is not a syncframe header this
    /// module knows (no `0x0B77`, a reserved code, a frame shorter than its header).
    pub(crate) fn parse(data: &[u8]) -> Option<Self> {
        let [0x0B, 0x77, ..] = data else {
            return None;
        };
        let bsid = *data.get(5)? >> 3;
        if bsid <= 10 {
            Self::parse_ac3(data)
        } else if (11..=16).contains(&bsid) {
            Self::parse_eac3(data)
        } else {
            None
        }
    }

    /// The output channel count.
    pub(crate) fn channels(&self) -> u16 {
        CHANNELS[usize::from(self.acmod & 7)] + u16::from(self.lfeon)
    }

    /// The `dac3` payload (TS 102 366 §F.4): fscod, bsid, bsmod, acmod, lfeon, bit_rate_code.
    pub(crate) fn dac3(&self) -> [u8; 3] {
        let bits: u32 = (u32::from(self.fscod & 3) << 22)
            | (u32::from(self.bsid & 0x1f) << 17)
            | (u32::from(self.bsmod & 7) << 14)
            | (u32::from(self.acmod & 7) << 11)
            | (u32::from(self.lfeon) << 10)
            | (u32::from(self.bit_rate_code & 0x1f) << 5);
        let [_, a, b, c] = bits.to_be_bytes();
        [a, b, c]
    }

    /// The `dec3` payload (TS 102 366 §F.6) for one independent substream without dependent
    /// ones: data_rate (kbit/s), num_ind_sub = 0, then fscod, bsid, asvc 0, bsmod, acmod,
    /// lfeon, num_dep_sub = 0.
    pub(crate) fn dec3(&self) -> [u8; 5] {
        let rate = u64::try_from(self.len).unwrap_or(0) * 8 * u64::from(self.sample_rate)
            / u64::from(self.samples.max(1))
            / 1000;
        let data_rate = u16::try_from(rate.min(0x1fff)).unwrap_or(0x1fff);
        let head = data_rate << 3; // num_ind_sub = 0
        let fscod = if self.fscod == 3 { 3 } else { self.fscod };
        let sub: u32 = (u32::from(fscod & 3) << 22)
            | (u32::from(self.bsid & 0x1f) << 17)
            | (u32::from(self.bsmod & 7) << 12)
            | (u32::from(self.acmod & 7) << 9)
            | (u32::from(self.lfeon) << 8);
        let [h0, h1] = head.to_be_bytes();
        let [_, s0, s1, s2] = sub.to_be_bytes();
        [h0, h1, s0, s1, s2]
    }

    fn parse_ac3(data: &[u8]) -> Option<Self> {
        // syncword(16) crc1(16) fscod(2) frmsizecod(6) | bsid(5) bsmod(3) | acmod(3) ...
        let b4 = *data.get(4)?;
        let fscod = b4 >> 6;
        let frmsizecod = b4 & 0x3f;
        let words = *FRAME_WORDS
            .get(usize::from(frmsizecod))?
            .get(usize::from(fscod))?;
        let sample_rate = [48_000, 44_100, 32_000].get(usize::from(fscod)).copied()?;
        let b5 = *data.get(5)?;
        let mut bits = Bits::new(data.get(6..)?);
        let acmod = bits.read(3)?;
        if acmod & 1 != 0 && acmod != 1 {
            bits.read(2)?; // cmixlev
        }
        if acmod & 4 != 0 {
            bits.read(2)?; // surmixlev
        }
        if acmod == 2 {
            bits.read(2)?; // dsurmod
        }
        let lfeon = bits.read(1)? == 1;
        Some(Self {
            len: usize::from(words) * 2,
            fscod,
            sample_rate,
            bsid: b5 >> 3,
            bsmod: b5 & 7,
            acmod,
            lfeon,
            bit_rate_code: frmsizecod >> 1,
            samples: 1536,
        })
    }

    fn parse_eac3(data: &[u8]) -> Option<Self> {
        // syncword(16) strmtyp(2) substreamid(3) frmsiz(11) fscod(2) fscod2/numblkscod(2)
        // acmod(3) lfeon(1) bsid(5) ...
        let mut bits = Bits::new(data.get(2..)?);
        let _strmtyp = bits.read(2)?;
        let _substreamid = bits.read(3)?;
        let frmsiz = u16::from(bits.read(3)?) << 8 | u16::from(bits.read(8)?);
        let fscod = bits.read(2)?;
        let (sample_rate, blocks) = if fscod == 3 {
            let fscod2 = bits.read(2)?;
            (
                [24_000, 22_050, 16_000].get(usize::from(fscod2)).copied()?,
                6,
            )
        } else {
            let numblkscod = bits.read(2)?;
            (
                [48_000, 44_100, 32_000][usize::from(fscod)],
                [1, 2, 3, 6][usize::from(numblkscod)],
            )
        };
        let acmod = bits.read(3)?;
        let lfeon = bits.read(1)? == 1;
        let bsid = bits.read(5)?;
        let len = (usize::from(frmsiz) + 1) * 2;
        if len < 6 {
            return None;
        }
        Some(Self {
            len,
            fscod,
            sample_rate,
            bsid,
            bsmod: 0,
            acmod,
            lfeon,
            bit_rate_code: 0,
            samples: 256 * blocks,
        })
    }
}

/// A big-endian bit reader over a slice, `None` past its end.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }

    /// Reads `n` (at most 8) bits.
    fn read(&mut self, n: usize) -> Option<u8> {
        let mut value = 0u8;
        for _ in 0..n {
            let byte = *self.data.get(self.at / 8)?;
            let bit = (byte >> (7 - self.at % 8)) & 1;
            value = (value << 1) | bit;
            self.at += 1;
        }
        Some(value)
    }
}

/// Full-bandwidth channels per `acmod`.
const CHANNELS: [u16; 8] = [2, 1, 2, 3, 3, 4, 4, 5];

/// AC-3 frame length in 16-bit words by `frmsizecod` (rows) and `fscod` 48 / 44.1 / 32 kHz
/// (TS 102 366 Table 4.13).
const FRAME_WORDS: [[u16; 3]; 38] = [
    [64, 69, 96],
    [64, 70, 96],
    [80, 87, 120],
    [80, 88, 120],
    [96, 104, 144],
    [96, 105, 144],
    [112, 121, 168],
    [112, 122, 168],
    [128, 139, 192],
    [128, 140, 192],
    [160, 174, 240],
    [160, 175, 240],
    [192, 208, 288],
    [192, 209, 288],
    [224, 243, 336],
    [224, 244, 336],
    [256, 278, 384],
    [256, 279, 384],
    [320, 348, 480],
    [320, 349, 480],
    [384, 417, 576],
    [384, 418, 576],
    [448, 487, 672],
    [448, 488, 672],
    [512, 557, 768],
    [512, 558, 768],
    [640, 696, 960],
    [640, 697, 960],
    [768, 835, 1152],
    [768, 836, 1152],
    [896, 975, 1344],
    [896, 976, 1344],
    [1024, 1114, 1536],
    [1024, 1115, 1536],
    [1152, 1253, 1728],
    [1152, 1254, 1728],
    [1280, 1393, 1920],
    [1280, 1394, 1920],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ac3_header_of_a_stereo_192k_frame() {
        // fscod 0 (48 kHz), frmsizecod 20 (192 kbit/s), bsid 8, bsmod 0, acmod 2 (L R),
        // dsurmod 0, lfeon 0.
        let head = [0x0B, 0x77, 0, 0, 0x14, 0x40, 0b0100_0000, 0];
        let frame = SyncFrame::parse(&head).expect("an AC-3 header");
        assert_eq!(frame.len, 768);
        assert_eq!((frame.sample_rate, frame.channels()), (48_000, 2));
        assert_eq!(frame.bit_rate_code, 10);
        // fscod 0, bsid 8, bsmod 0, acmod 2, lfeon 0, bit_rate_code 10.
        assert_eq!(frame.dac3(), [0x10, 0x11, 0x40]);
    }

    #[test]
    fn eac3_header_of_a_5_1_frame() {
        // strmtyp 0, substreamid 0, frmsiz 767 (1536 bytes), fscod 0, numblkscod 3 (6
        // blocks), acmod 7, lfeon 1, bsid 16.
        let head = [0x0B, 0x77, 0x02, 0xFF, 0b0011_1111, 0b1000_0000, 0, 0];
        let frame = SyncFrame::parse(&head).expect("an E-AC-3 header");
        assert_eq!(frame.len, 1536);
        assert_eq!((frame.sample_rate, frame.samples), (48_000, 1536));
        assert_eq!(frame.channels(), 6);
        assert_eq!(frame.bsid, 16);
        // 1536 bytes per 1536 samples at 48 kHz: 384 kbit/s.
        let dec3 = frame.dec3();
        assert_eq!(u16::from_be_bytes([dec3[0], dec3[1]]) >> 3, 384);
    }

    #[test]
    fn garbage_is_no_header() {
        for data in [
            &[][..],
            &[0x0B, 0x77],
            &[0x0B, 0x77, 0, 0, 0xFF, 0x40, 0, 0],
            &[1; 8],
        ] {
            assert_eq!(SyncFrame::parse(data), None, "{data:?}");
        }
    }
}
