//! AMF0, the value encoding of RTMP commands and metadata (Adobe AMF0 specification).
//!
//! The decoder is written for hostile input: nesting is capped at [`MAX_DEPTH`] (a deep
//! structure cannot exhaust the stack), every length is checked against the bytes present, and
//! errors name the byte offset within the message body.

use bytes::BufMut;

/// The deepest nesting of objects and arrays the decoder accepts.
pub const MAX_DEPTH: usize = 32;

/// One AMF0 value.
///
/// Objects and ECMA arrays keep their properties in wire order, so encoding is deterministic.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0 {
    /// A number (IEEE 754 double).
    Number(f64),
    /// A boolean.
    Boolean(bool),
    /// A UTF-8 string (short or long form on the wire).
    String(String),
    /// An anonymous object.
    Object(Vec<(String, Self)>),
    /// `null`.
    Null,
    /// `undefined`.
    Undefined,
    /// An ECMA (associative) array.
    EcmaArray(Vec<(String, Self)>),
    /// A strict (dense) array.
    StrictArray(Vec<Self>),
    /// A date: milliseconds since the Unix epoch and a time-zone field (unused by Flash).
    Date {
        /// Milliseconds since 1970-01-01T00:00:00Z.
        millis: f64,
        /// The time-zone offset field, as sent.
        timezone: i16,
    },
}

/// Why AMF0 bytes do not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Amf0Error {
    /// The data ends inside a value.
    #[error("truncated {what} at byte {offset}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Offset where the data ran out.
        offset: usize,
    },
    /// A type marker this decoder does not know (or that RTMP never uses, such as AMF3's 0x11).
    #[error("unsupported type marker {marker:#04x} at byte {offset}")]
    Marker {
        /// The marker byte.
        marker: u8,
        /// Its offset.
        offset: usize,
    },
    /// Objects or arrays nested deeper than [`MAX_DEPTH`].
    #[error("values nested deeper than {max} at byte {offset}")]
    TooDeep {
        /// The cap.
        max: usize,
        /// Offset of the value that went too deep.
        offset: usize,
    },
    /// A string is not UTF-8.
    #[error("string at byte {offset} is not UTF-8")]
    Utf8 {
        /// Offset of the string's bytes.
        offset: usize,
    },
}

impl Amf0 {
    /// Decodes every value in `data`, in order.
    ///
    /// ```
    /// use tributary_rtmp::amf0::Amf0;
    /// let values = vec![Amf0::String("connect".into()), Amf0::Number(1.0), Amf0::Null];
    /// let mut bytes = Vec::new();
    /// for v in &values {
    ///     v.write(&mut bytes);
    /// }
    /// assert_eq!(Amf0::decode_all(&bytes).unwrap(), values);
    /// ```
    pub fn decode_all(data: &[u8]) -> Result<Vec<Self>, Amf0Error> {
        let mut reader = Reader { data, pos: 0 };
        let mut values = Vec::new();
        while reader.pos < data.len() {
            values.push(reader.value(0)?);
        }
        Ok(values)
    }

    /// Encodes this value.
    pub fn write<B: BufMut>(&self, out: &mut B) {
        match self {
            Self::Number(n) => {
                out.put_u8(NUMBER);
                out.put_f64(*n);
            }
            Self::Boolean(b) => {
                out.put_u8(BOOLEAN);
                out.put_u8(u8::from(*b));
            }
            Self::String(s) => match u16::try_from(s.len()) {
                Ok(len) => {
                    out.put_u8(STRING);
                    out.put_u16(len);
                    out.put_slice(s.as_bytes());
                }
                Err(_) => {
                    out.put_u8(LONG_STRING);
                    out.put_u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
                    out.put_slice(&s.as_bytes()[..s.len().min(u32::MAX as usize)]);
                }
            },
            Self::Object(props) => {
                out.put_u8(OBJECT);
                write_properties(props, out);
            }
            Self::Null => out.put_u8(NULL),
            Self::Undefined => out.put_u8(UNDEFINED),
            Self::EcmaArray(props) => {
                out.put_u8(ECMA_ARRAY);
                out.put_u32(u32::try_from(props.len()).unwrap_or(u32::MAX));
                write_properties(props, out);
            }
            Self::StrictArray(items) => {
                out.put_u8(STRICT_ARRAY);
                out.put_u32(u32::try_from(items.len()).unwrap_or(u32::MAX));
                for item in items {
                    item.write(out);
                }
            }
            Self::Date { millis, timezone } => {
                out.put_u8(DATE);
                out.put_f64(*millis);
                out.put_i16(*timezone);
            }
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Self::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The property `name` of an object or ECMA array (the first, if repeated).
    pub fn property(&self, name: &str) -> Option<&Self> {
        match self {
            Self::Object(props) | Self::EcmaArray(props) => {
                props.iter().find(|(k, _)| k == name).map(|(_, v)| v)
            }
            _ => None,
        }
    }
}

fn write_properties<B: BufMut>(props: &[(String, Amf0)], out: &mut B) {
    for (key, value) in props {
        let key = &key.as_bytes()[..key.len().min(usize::from(u16::MAX))];
        out.put_u16(key.len() as u16);
        out.put_slice(key);
        value.write(out);
    }
    out.put_slice(&[0, 0, OBJECT_END]);
}

/// A cursor over AMF0 bytes.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], Amf0Error> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(Amf0Error::Truncated {
                what,
                offset: self.data.len(),
            });
        };
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, Amf0Error> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, Amf0Error> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, Amf0Error> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self, what: &'static str) -> Result<f64, Amf0Error> {
        let b = self.take(8, what)?;
        let mut raw = [0; 8];
        raw.copy_from_slice(b);
        Ok(f64::from_be_bytes(raw))
    }

    fn string(&mut self, len: usize) -> Result<String, Amf0Error> {
        let offset = self.pos;
        let bytes = self.take(len, "string")?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Amf0Error::Utf8 { offset })
    }

    fn value(&mut self, depth: usize) -> Result<Amf0, Amf0Error> {
        let offset = self.pos;
        let marker = self.u8("type marker")?;
        Ok(match marker {
            NUMBER => Amf0::Number(self.f64("number")?),
            BOOLEAN => Amf0::Boolean(self.u8("boolean")? != 0),
            STRING => {
                let len = self.u16("string length")?;
                Amf0::String(self.string(usize::from(len))?)
            }
            LONG_STRING | XML_DOCUMENT => {
                let len = self.u32("long string length")?;
                Amf0::String(self.string(len as usize)?)
            }
            NULL => Amf0::Null,
            UNDEFINED => Amf0::Undefined,
            OBJECT => Amf0::Object(self.properties(depth + 1, offset)?),
            ECMA_ARRAY => {
                // The count is a hint that encoders get wrong; the end marker decides.
                self.u32("ECMA array count")?;
                Amf0::EcmaArray(self.properties(depth + 1, offset)?)
            }
            STRICT_ARRAY => {
                if depth + 1 > MAX_DEPTH {
                    return Err(Amf0Error::TooDeep {
                        max: MAX_DEPTH,
                        offset,
                    });
                }
                let count = self.u32("strict array count")?;
                let mut items = Vec::with_capacity((count as usize).min(64));
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Amf0::StrictArray(items)
            }
            DATE => Amf0::Date {
                millis: self.f64("date")?,
                timezone: self.u16("date time zone")? as i16,
            },
            marker => return Err(Amf0Error::Marker { marker, offset }),
        })
    }

    fn properties(
        &mut self,
        depth: usize,
        offset: usize,
    ) -> Result<Vec<(String, Amf0)>, Amf0Error> {
        if depth > MAX_DEPTH {
            return Err(Amf0Error::TooDeep {
                max: MAX_DEPTH,
                offset,
            });
        }
        let mut props = Vec::new();
        loop {
            let len = self.u16("property name length")?;
            if len == 0 {
                // An empty name followed by the object-end marker closes the object; an empty
                // name before a value is a (legal, rare) empty key.
                if self.data.get(self.pos) == Some(&OBJECT_END) {
                    self.pos += 1;
                    return Ok(props);
                }
            }
            let key = self.string(usize::from(len))?;
            let value = self.value(depth)?;
            props.push((key, value));
        }
    }
}

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0a;
const DATE: u8 = 0x0b;
const LONG_STRING: u8 = 0x0c;
const XML_DOCUMENT: u8 = 0x0f;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn encode(values: &[Amf0]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in values {
            v.write(&mut out);
        }
        out
    }

    #[test]
    fn ffmpeg_connect_command() {
        // The connect command of `ffmpeg -f flv rtmp://127.0.0.1/live/x` (FFmpeg 5.1), AMF0 body.
        let mut body = Vec::new();
        Amf0::String("connect".into()).write(&mut body);
        Amf0::Number(1.0).write(&mut body);
        Amf0::Object(vec![
            ("app".into(), Amf0::String("live".into())),
            ("type".into(), Amf0::String("nonprivate".into())),
            (
                "flashVer".into(),
                Amf0::String("FMLE/3.0 (compatible; Lavf59.27.100)".into()),
            ),
            (
                "tcUrl".into(),
                Amf0::String("rtmp://127.0.0.1:1935/live".into()),
            ),
        ])
        .write(&mut body);
        let values = Amf0::decode_all(&body).unwrap();
        assert_eq!(values[0].as_str(), Some("connect"));
        assert_eq!(values[1].as_number(), Some(1.0));
        assert_eq!(
            values[2].property("app").and_then(Amf0::as_str),
            Some("live")
        );
        assert_eq!(encode(&values), body);
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion_blowup() {
        let mut deep = Vec::new();
        for _ in 0..1_000_000 {
            deep.extend_from_slice(&[STRICT_ARRAY, 0, 0, 0, 1]);
        }
        assert!(matches!(
            Amf0::decode_all(&deep),
            Err(Amf0Error::TooDeep { offset: 160, .. })
        ));
        let mut objects = vec![OBJECT];
        for _ in 0..100 {
            objects.extend_from_slice(&[0, 1, b'a', OBJECT]);
        }
        assert!(matches!(
            Amf0::decode_all(&objects),
            Err(Amf0Error::TooDeep { .. })
        ));
    }

    #[test]
    fn errors_name_offsets() {
        assert_eq!(
            Amf0::decode_all(&[NUMBER, 0, 0]),
            Err(Amf0Error::Truncated {
                what: "number",
                offset: 3
            })
        );
        assert_eq!(
            Amf0::decode_all(&[NULL, 0x11]),
            Err(Amf0Error::Marker {
                marker: 0x11,
                offset: 1
            })
        );
        assert_eq!(
            Amf0::decode_all(&[STRING, 0, 2, 0xff, 0xfe]),
            Err(Amf0Error::Utf8 { offset: 3 })
        );
        // A huge strict-array count over few bytes fails on the data, not on allocation.
        assert!(Amf0::decode_all(&[STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff, NULL]).is_err());
    }

    fn value() -> impl Strategy<Value = Amf0> {
        let leaf = prop_oneof![
            any::<f64>()
                .prop_filter("NaN != NaN", |n| !n.is_nan())
                .prop_map(Amf0::Number),
            any::<bool>().prop_map(Amf0::Boolean),
            ".{0,20}".prop_map(Amf0::String),
            Just(Amf0::Null),
            Just(Amf0::Undefined),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(("[a-z]{1,8}", inner.clone()), 0..5).prop_map(Amf0::Object),
                prop::collection::vec(("[a-z]{1,8}", inner.clone()), 0..5)
                    .prop_map(Amf0::EcmaArray),
                prop::collection::vec(inner, 0..5).prop_map(Amf0::StrictArray),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trip(values in prop::collection::vec(value(), 0..6)) {
            let bytes = encode(&values);
            prop_assert_eq!(Amf0::decode_all(&bytes).unwrap(), values);
        }

        #[test]
        fn never_panics(data in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = Amf0::decode_all(&data);
        }
    }
}
