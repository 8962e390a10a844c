//! Bit-level reading and writing for parameter sets and audio headers (private).

use super::CodecError;

/// Reads bits MSB-first from a byte slice (an RBSP: emulation prevention already removed).
///
/// Every read past the end returns [`CodecError::Truncated`] naming the field and the byte
/// offset where the data ran out.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// The byte offset of the next bit to read.
    pub(crate) fn byte_offset(&self) -> usize {
        self.pos / 8
    }

    /// Bits left to read.
    pub(crate) fn remaining(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    /// Reads one bit as a flag.
    pub(crate) fn flag(&mut self, field: &'static str) -> Result<bool, CodecError> {
        Ok(self.bits(1, field)? == 1)
    }

    /// Reads `n` bits (at most 32) as an unsigned integer.
    pub(crate) fn bits(&mut self, n: u32, field: &'static str) -> Result<u32, CodecError> {
        debug_assert!(n <= 32, "BitReader::bits reads at most 32 bits");
        if self.remaining() < n as usize {
            return Err(CodecError::Truncated {
                field,
                offset: self.data.len(),
            });
        }
        let mut value: u64 = 0;
        for _ in 0..n {
            let byte = self.data[self.pos / 8];
            let bit = (byte >> (7 - (self.pos % 8))) & 1;
            value = (value << 1) | u64::from(bit);
            self.pos += 1;
        }
        Ok(value as u32)
    }

    /// Reads `n` bits as a `u8` (`n` at most 8).
    pub(crate) fn u8(&mut self, n: u32, field: &'static str) -> Result<u8, CodecError> {
        debug_assert!(n <= 8, "BitReader::u8 reads at most 8 bits");
        Ok(self.bits(n, field)? as u8)
    }

    /// Skips `n` bits.
    pub(crate) fn skip(&mut self, n: usize, field: &'static str) -> Result<(), CodecError> {
        if self.remaining() < n {
            return Err(CodecError::Truncated {
                field,
                offset: self.data.len(),
            });
        }
        self.pos += n;
        Ok(())
    }

    /// Reads an unsigned exp-Golomb code, `ue(v)`, up to `2^32 - 2`.
    pub(crate) fn ue(&mut self, field: &'static str) -> Result<u32, CodecError> {
        let offset = self.byte_offset();
        let mut zeros = 0u32;
        while !self.flag(field)? {
            zeros += 1;
            if zeros > 31 {
                return Err(CodecError::InvalidValue {
                    field,
                    value: u64::from(zeros),
                    offset,
                });
            }
        }
        let rest = self.bits(zeros, field)?;
        let value = (1u64 << zeros) - 1 + u64::from(rest);
        u32::try_from(value).map_err(|_| CodecError::InvalidValue {
            field,
            value,
            offset,
        })
    }

    /// Reads `ue(v)` and checks that it is at most `max`.
    pub(crate) fn ue_max(&mut self, max: u32, field: &'static str) -> Result<u32, CodecError> {
        let offset = self.byte_offset();
        let value = self.ue(field)?;
        if value > max {
            return Err(CodecError::InvalidValue {
                field,
                value: u64::from(value),
                offset,
            });
        }
        Ok(value)
    }

    /// Reads a signed exp-Golomb code, `se(v)`.
    pub(crate) fn se(&mut self, field: &'static str) -> Result<i32, CodecError> {
        let k = i64::from(self.ue(field)?);
        let value = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        Ok(value as i32)
    }
}

/// Writes bits MSB-first into a byte vector (used to build small headers).
pub(crate) struct BitWriter {
    out: Vec<u8>,
    /// Bits used in the last byte of `out` (0 when it is full or `out` is empty).
    used: u32,
}

impl BitWriter {
    pub(crate) fn new() -> Self {
        Self {
            out: Vec::new(),
            used: 0,
        }
    }

    /// Writes the low `n` bits of `value` (`n` at most 32).
    pub(crate) fn bits(&mut self, n: u32, value: u32) {
        for i in (0..n).rev() {
            let bit = ((value >> i) & 1) as u8;
            if self.used == 0 {
                self.out.push(0);
            }
            if let Some(last) = self.out.last_mut() {
                *last |= bit << (7 - self.used);
            }
            self.used = (self.used + 1) % 8;
        }
    }

    /// The bytes written, the last one padded with zero bits.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb() {
        // 1 | 010 | 011 | 00100 | 00101 -> ue 0, 1, 2, 3, 4
        let mut w = BitWriter::new();
        for (n, v) in [(1, 1), (3, 2), (3, 3), (5, 4), (5, 5)] {
            w.bits(n, v);
        }
        let data = w.finish();
        let mut r = BitReader::new(&data);
        let got: Vec<u32> = (0..5).map(|_| r.ue("x").unwrap()).collect();
        assert_eq!(got, [0, 1, 2, 3, 4]);

        let mut r = BitReader::new(&data);
        let got: Vec<i32> = (0..5).map(|_| r.se("x").unwrap()).collect();
        assert_eq!(got, [0, 1, -1, 2, -2]);
    }

    #[test]
    fn exp_golomb_limits() {
        // 31 zeros, a one, then 31 ones: 2^32 - 2, the largest accepted value.
        let mut w = BitWriter::new();
        w.bits(31, 0);
        w.bits(1, 1);
        w.bits(31, u32::MAX);
        let data = w.finish();
        assert_eq!(BitReader::new(&data).ue("x").unwrap(), u32::MAX - 1);
        // 32 zeros is rejected, not overflowed.
        assert!(matches!(
            BitReader::new(&[0, 0, 0, 0, 0x80]).ue("x"),
            Err(CodecError::InvalidValue { .. })
        ));
        assert!(matches!(
            BitReader::new(&[0]).ue("x"),
            Err(CodecError::Truncated { .. })
        ));
    }
}
