//! Lower-case hex, as signatures, HMACs and session ids are written.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The two lower-case hex digits of `byte`.
pub fn digits(byte: u8) -> [u8; 2] {
    [
        DIGITS[usize::from(byte >> 4)],
        DIGITS[usize::from(byte & 0xf)],
    ]
}

/// Appends the lower-case hex of `bytes` to `out`.
pub fn push(out: &mut String, bytes: &[u8]) {
    for &byte in bytes {
        out.extend(digits(byte).map(char::from));
    }
}
