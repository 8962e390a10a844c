//! NAL unit framing shared by H.264 and H.265.
//!
//! Two framings carry the same NAL units:
//! - **Annex-B** (MPEG-TS, RTSP after depacketizing, raw `.h264` files, the hub): each NAL unit
//!   follows a start code, `00 00 01` or `00 00 00 01`.
//! - **AVCC/HVCC** (MP4, FLV/RTMP): each NAL unit follows its length as a big-endian integer of
//!   1 to 4 bytes ([`LengthSize`]), given by the decoder configuration record.
//!
//! Iteration borrows from the input and never allocates; conversions write into a buffer the
//! caller owns ([`bytes::BytesMut`] or `Vec<u8>`), copying each NAL unit once.
//!
//! ```
//! use tributary_media::codec::{nal, LengthSize};
//!
//! let annex_b = [0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x68, 0xce];
//! let nals: Vec<&[u8]> = nal::annex_b_nals(&annex_b).collect();
//! assert_eq!(nals, [&[0x67, 0x42][..], &[0x68, 0xce][..]]);
//!
//! let mut avcc = Vec::new();
//! nal::annex_b_to_avcc(&annex_b, LengthSize::FOUR, &mut avcc).unwrap();
//! assert_eq!(avcc, [0, 0, 0, 2, 0x67, 0x42, 0, 0, 0, 2, 0x68, 0xce]);
//! ```

use std::borrow::Cow;

use bytes::BufMut;

use super::{CodecError, LengthSize};

/// The four-byte Annex-B start code written by this module.
pub const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// Iterates the NAL units of an Annex-B byte stream, without their start codes.
///
/// Both start-code lengths are accepted, bytes before the first start code are skipped,
/// trailing zero bytes of each unit (`trailing_zero_8bits`) are dropped and empty units are
/// skipped.
pub fn annex_b_nals(data: &[u8]) -> AnnexBNals<'_> {
    AnnexBNals { rest: data }
}

/// The iterator returned by [`annex_b_nals`].
#[derive(Debug, Clone)]
pub struct AnnexBNals<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for AnnexBNals<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let start = find_start_code(self.rest)?;
            let body = &self.rest[start + 3..];
            let end = find_start_code(body).unwrap_or(body.len());
            let mut nal = &body[..end];
            while let [head @ .., 0] = nal {
                nal = head;
            }
            self.rest = &body[end..];
            if !nal.is_empty() {
                return Some(nal);
            }
        }
    }
}

/// Iterates the NAL units of a length-prefixed (AVCC/HVCC) access unit.
///
/// Zero-length units are skipped. A length that runs past the end yields one error and ends
/// the iteration.
pub fn avcc_nals(data: &[u8], length_size: LengthSize) -> AvccNals<'_> {
    AvccNals {
        data,
        offset: 0,
        length_size,
    }
}

/// The iterator returned by [`avcc_nals`].
#[derive(Debug, Clone)]
pub struct AvccNals<'a> {
    data: &'a [u8],
    /// Where the next length prefix starts.
    offset: usize,
    length_size: LengthSize,
}

impl<'a> Iterator for AvccNals<'a> {
    type Item = Result<&'a [u8], CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let rest = self.data.get(self.offset..)?;
            if rest.is_empty() {
                return None;
            }
            let size = usize::from(self.length_size.get());
            let Some(prefix) = rest.get(..size) else {
                let offset = self.data.len();
                self.offset = self.data.len();
                return Some(Err(CodecError::Truncated {
                    field: "NAL unit length",
                    offset,
                }));
            };
            let len = prefix
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            let body = &rest[size..];
            let Some(nal) = body.get(..len) else {
                let err = CodecError::NalOverrun {
                    offset: self.offset,
                    len,
                    remaining: body.len(),
                };
                self.offset = self.data.len();
                return Some(Err(err));
            };
            self.offset += size + len;
            if !nal.is_empty() {
                return Some(Ok(nal));
            }
        }
    }
}

/// Converts a length-prefixed access unit to Annex-B with four-byte start codes, appending to
/// `out`; returns the number of bytes written.
///
/// The input is checked completely before anything is written, so on error `out` is unchanged.
pub fn avcc_to_annex_b<B: BufMut>(
    data: &[u8],
    length_size: LengthSize,
    out: &mut B,
) -> Result<usize, CodecError> {
    for nal in avcc_nals(data, length_size) {
        nal?;
    }
    let mut written = 0;
    for nal in avcc_nals(data, length_size).flatten() {
        out.put_slice(&START_CODE);
        out.put_slice(nal);
        written += START_CODE.len() + nal.len();
    }
    Ok(written)
}

/// Converts an Annex-B access unit to length-prefixed framing, appending to `out`; returns the
/// number of bytes written.
///
/// Fails with [`CodecError::TooLarge`] when a NAL unit does not fit `length_size`; every unit is
/// checked before anything is written, so on error `out` is unchanged.
pub fn annex_b_to_avcc<B: BufMut>(
    data: &[u8],
    length_size: LengthSize,
    out: &mut B,
) -> Result<usize, CodecError> {
    let max = length_size.max_len();
    if let Some(nal) = annex_b_nals(data).find(|nal| nal.len() > max) {
        return Err(CodecError::TooLarge {
            what: "NAL unit",
            len: nal.len(),
            max,
        });
    }
    let size = usize::from(length_size.get());
    let mut written = 0;
    for nal in annex_b_nals(data) {
        let len = (nal.len() as u64).to_be_bytes();
        out.put_slice(&len[8 - size..]);
        out.put_slice(nal);
        written += size + nal.len();
    }
    Ok(written)
}

/// Removes emulation prevention bytes (the `03` in `00 00 03`) from a NAL unit, giving its raw
/// byte sequence payload for parsing. Borrows when there is nothing to remove.
pub fn rbsp(nal: &[u8]) -> Cow<'_, [u8]> {
    if !nal.windows(3).any(|w| w == [0, 0, 3]) {
        return Cow::Borrowed(nal);
    }
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    Cow::Owned(out)
}

/// Inserts emulation prevention bytes into a raw byte sequence payload, appending the NAL unit
/// to `out`: the inverse of [`rbsp`].
///
/// A valid RBSP ends with its stop bit, so never in a zero byte; trailing zero bytes would be
/// taken for `trailing_zero_8bits` by an Annex-B reader.
pub fn escape_rbsp<B: BufMut>(rbsp: &[u8], out: &mut B) {
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.put_u8(3);
            zeros = 0;
        }
        out.put_u8(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
}

/// The offset of the first `00 00 01` in `data`.
///
/// Every access unit is scanned this way once or twice on its way (parameter sets, keyframes,
/// muxing), so the search is memchr's vectorised one: an order of magnitude faster than a
/// byte loop on the long slice data of a video frame.
fn find_start_code(data: &[u8]) -> Option<usize> {
    memchr::memmem::find(data, &[0, 0, 1])
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn start_codes_of_both_lengths() {
        let data = [
            0xff, 0, 0, 1, 9, 0xf0, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 0, 1, 0x68, 0, 0, 1, 0, 0, 1,
            0x65, 0x88, 0,
        ];
        let nals: Vec<&[u8]> = annex_b_nals(&data).collect();
        assert_eq!(
            nals,
            [&[9, 0xf0][..], &[0x67, 1, 2], &[0x68], &[0x65, 0x88]]
        );
        assert_eq!(annex_b_nals(&[]).count(), 0);
        assert_eq!(annex_b_nals(&[0, 0, 1]).count(), 0);
        assert_eq!(annex_b_nals(&[1, 2, 3]).count(), 0);
    }

    #[test]
    fn avcc_errors_name_offsets() {
        let data = [0, 2, 0x67, 1, 0, 9, 0x68];
        let two = LengthSize::new(2).unwrap();
        let got: Vec<_> = avcc_nals(&data, two).collect();
        assert_eq!(got[0], Ok(&[0x67, 1][..]));
        assert_eq!(
            got[1],
            Err(CodecError::NalOverrun {
                offset: 4,
                len: 9,
                remaining: 1
            })
        );
        assert_eq!(got.len(), 2);

        let mut out = BytesMut::new();
        assert!(avcc_to_annex_b(&data, two, &mut out).is_err());
        assert!(out.is_empty());
        assert_eq!(
            avcc_nals(&[0, 0, 0], LengthSize::FOUR).next(),
            Some(Err(CodecError::Truncated {
                field: "NAL unit length",
                offset: 3
            }))
        );
    }

    #[test]
    fn one_byte_lengths_overflow() {
        let mut nal = vec![0, 0, 1, 0x65];
        nal.resize(4 + 300, 0x11);
        let mut out = Vec::new();
        let one = LengthSize::new(1).unwrap();
        assert!(matches!(
            annex_b_to_avcc(&nal, one, &mut out),
            Err(CodecError::TooLarge { len: 301, .. })
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn real_mp4_sample_to_annex_b() {
        let avcc = include_bytes!("../../testdata/ffmpeg_x264_high_1280x720_30fps.avc");
        let annex_b = include_bytes!("../../testdata/ffmpeg_x264_high_1280x720_30fps.h264");
        let mut out = BytesMut::new();
        let n = avcc_to_annex_b(avcc, LengthSize::FOUR, &mut out).unwrap();
        assert_eq!(n, out.len());
        // The MP4 sample carries the same NAL units as the raw stream.
        assert!(annex_b_nals(&out).eq(annex_b_nals(annex_b)));
        let mut back = Vec::new();
        annex_b_to_avcc(&out, LengthSize::FOUR, &mut back).unwrap();
        assert_eq!(&back[..], &avcc[..]);
    }

    #[test]
    fn emulation_prevention() {
        let raw = [0x67, 0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0x80];
        let mut escaped = Vec::new();
        escape_rbsp(&raw, &mut escaped);
        assert_eq!(
            escaped,
            [
                0x67, 0, 0, 3, 0, 0, 3, 0, 1, 0, 0, 3, 2, 0, 0, 3, 3, 0, 0, 4, 0x80
            ]
        );
        assert_eq!(&rbsp(&escaped)[..], &raw[..]);
        assert!(matches!(rbsp(&raw[..3]), Cow::Borrowed(_)));
    }

    /// NAL units as an encoder writes them: escaped, not ending in a zero byte.
    fn nal_units() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..200), 1u8..=255).prop_map(|(mut raw, last)| {
                raw.push(last);
                let mut nal = Vec::new();
                escape_rbsp(&raw, &mut nal);
                nal
            }),
            0..8,
        )
    }

    proptest! {
        #[test]
        fn avcc_annex_b_round_trip(nals in nal_units(), size in 2u8..=4, four in any::<bool>()) {
            let length_size = LengthSize::new(size).unwrap();
            let mut annex_b = Vec::new();
            for nal in &nals {
                annex_b.extend_from_slice(if four { &START_CODE[..] } else { &START_CODE[1..] });
                annex_b.extend_from_slice(nal);
            }
            let found: Vec<&[u8]> = annex_b_nals(&annex_b).collect();
            prop_assert_eq!(&found, &nals);

            let mut avcc = BytesMut::new();
            annex_b_to_avcc(&annex_b, length_size, &mut avcc).unwrap();
            let back: Vec<&[u8]> = avcc_nals(&avcc, length_size).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(&back, &nals);

            let mut again = Vec::new();
            avcc_to_annex_b(&avcc, length_size, &mut again).unwrap();
            let mut avcc2 = Vec::new();
            annex_b_to_avcc(&again, length_size, &mut avcc2).unwrap();
            prop_assert_eq!(&avcc[..], &avcc2[..]);
        }

        #[test]
        fn rbsp_round_trip(mut raw in prop::collection::vec(any::<u8>(), 0..300), last in 1u8..=255) {
            raw.push(last);
            let mut escaped = Vec::new();
            escape_rbsp(&raw, &mut escaped);
            prop_assert!(!escaped.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2));
            prop_assert_eq!(&rbsp(&escaped)[..], &raw[..]);
        }

        #[test]
        fn framing_never_panics(data in prop::collection::vec(any::<u8>(), 0..400), size in 1u8..=4) {
            let length_size = LengthSize::new(size).unwrap();
            for nal in annex_b_nals(&data) {
                prop_assert!(!nal.is_empty());
            }
            let _ = avcc_nals(&data, length_size).count();
            let mut out = Vec::new();
            let _ = avcc_to_annex_b(&data, length_size, &mut out);
            let _ = annex_b_to_avcc(&data, length_size, &mut out);
            let _ = rbsp(&data);
        }
    }
}
