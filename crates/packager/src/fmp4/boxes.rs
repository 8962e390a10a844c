//! Writing ISO BMFF boxes into one growing buffer: a box is opened with a placeholder size and
//! closed by patching it, so nested boxes are written in one pass without building a tree.

use bytes::{BufMut, BytesMut};

/// Opens a box of type `kind`; returns its start, for [`close`].
pub(crate) fn open(out: &mut BytesMut, kind: &[u8; 4]) -> usize {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(kind);
    start
}

/// Opens a full box (version and flags after the type).
pub(crate) fn open_full(out: &mut BytesMut, kind: &[u8; 4], version: u8, flags: u32) -> usize {
    let start = open(out, kind);
    out.put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
    start
}

/// Closes the box opened at `start`: writes its size.
///
/// Boxes written here stay far below 4 GiB (a segment is bounded by the frames of one
/// segment); a larger one would get a wrong size, so the size saturates rather than wraps.
pub(crate) fn close(out: &mut BytesMut, start: usize) {
    let size = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Writes `value` as big-endian u32 at `at` (a field reserved earlier).
pub(crate) fn patch_u32(out: &mut BytesMut, at: usize, value: u32) {
    out[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

/// The unity transformation matrix of `mvhd` and `tkhd`.
pub(crate) const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Writes an MPEG-4 descriptor header (tag, then the length in the expandable encoding, as
/// short as it fits).
pub(crate) fn descriptor(out: &mut BytesMut, tag: u8, len: usize) {
    out.put_u8(tag);
    let mut groups = [0u8; 4];
    let mut n = 0;
    let mut rest = len.min(0x0fff_ffff);
    loop {
        groups[n] = (rest & 0x7f) as u8;
        n += 1;
        rest >>= 7;
        if rest == 0 || n == 4 {
            break;
        }
    }
    for i in (0..n).rev() {
        let more = if i > 0 { 0x80 } else { 0 };
        out.put_u8(groups[i] | more);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_boxes_get_their_sizes() {
        let mut out = BytesMut::new();
        let outer = open(&mut out, b"moov");
        let inner = open_full(&mut out, b"mvhd", 1, 0x20);
        out.put_u8(7);
        close(&mut out, inner);
        close(&mut out, outer);
        assert_eq!(
            &out[..],
            b"\0\0\0\x15moov\0\0\0\x0dmvhd\x01\0\0\x20\x07".as_slice()
        );
    }

    #[test]
    fn descriptor_lengths_are_expandable() {
        for (len, want) in [
            (0, vec![3, 0]),
            (127, vec![3, 0x7f]),
            (128, vec![3, 0x81, 0x00]),
            (300, vec![3, 0x82, 0x2c]),
        ] {
            let mut out = BytesMut::new();
            descriptor(&mut out, 3, len);
            assert_eq!(out.to_vec(), want, "{len}");
        }
    }
}
