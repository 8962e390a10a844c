//! The RTMP chunk layer (RTMP specification 1.0 §5.3): messages cut into chunks and back.
//!
//! The reader is written for hostile input. Every size is capped before anything is allocated
//! ([`Limits`]); a message is gathered into one buffer sized from its header (at most
//! 1 MiB up front, growing with the bytes that actually arrive); chunks of
//! different chunk streams may interleave, as the specification allows.

use bytes::{BufMut, BytesMut};

use crate::{Error, RtmpTime};

/// The largest chunk size and message length a peer may use: 16 MiB (SPEC §Security "Body
/// caps"). RTMP's 24-bit length field cannot exceed it anyway; the chunk size can.
pub const MAX_SIZE: u32 = 16 * 1024 * 1024;

/// Caps on what a peer may make the chunk reader hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest message, in bytes. Default and maximum [`MAX_SIZE`] (16 MiB): the SPEC cap;
    /// a 4K keyframe is a few hundred KiB.
    pub max_message_len: u32,
    /// The largest chunk size the peer may set. Default and maximum [`MAX_SIZE`].
    pub max_chunk_size: u32,
    /// Chunk streams in use at once. Default 64: encoders use fewer than ten, nginx-rtmp
    /// allows 32.
    pub max_chunk_streams: usize,
    /// Bytes of unfinished messages held at once. Default 32 MiB: two maximal messages.
    pub max_buffered: usize,
}

impl Limits {
    /// What a peer may make the server hold before it is trusted: from connect until a
    /// `publish` is accepted, and for players throughout (they send only commands and
    /// acknowledgements). 64 KiB messages (commands are a few hundred bytes), 8 chunk streams,
    /// 256 KiB buffered: 30 connections that never publish cost 8 MiB, not 960.
    pub fn untrusted() -> Self {
        Self {
            max_message_len: 64 * 1024,
            max_chunk_size: MAX_SIZE,
            max_chunk_streams: 8,
            max_buffered: 256 * 1024,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_len: MAX_SIZE,
            max_chunk_size: MAX_SIZE,
            max_chunk_streams: 64,
            max_buffered: 2 * MAX_SIZE as usize,
        }
    }
}

/// One complete message out of the chunk stream.
#[derive(Debug)]
pub(crate) struct RawMessage {
    /// Offset of the first byte of the message's first chunk.
    pub offset: u64,
    /// The chunk stream it came on.
    #[cfg_attr(not(test), allow(dead_code))]
    pub csid: u32,
    /// RTMP message type id.
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
    /// Message timestamp.
    pub timestamp: RtmpTime,
    /// The message body: gathered once, mutable so that media can be rewritten in place.
    pub payload: BytesMut,
}

/// Reassembles messages from chunks (sans-IO: bytes in, messages out).
#[derive(Debug)]
pub(crate) struct ChunkReader {
    /// Caps on sizes and counts.
    limits: Limits,
    /// The peer's current chunk size (128 until it sends Set Chunk Size).
    chunk_size: u32,
    /// Absolute offset of the next byte to consume.
    offset: u64,
    /// The chunk header being gathered (at most 3 + 11 + 4 bytes).
    header: [u8; 18],
    /// How many bytes of `header` are filled.
    header_len: usize,
    /// Offset of the chunk whose header is being gathered.
    header_offset: u64,
    /// The chunk whose body is being read: index into `streams` and bytes left in the chunk.
    body: Option<(usize, u32)>,
    /// State per chunk stream id, in order of first use.
    streams: Vec<ChunkStream>,
    /// Bytes held in unfinished messages.
    buffered: usize,
}

/// What the reader remembers of one chunk stream (header compression and a partial message).
#[derive(Debug)]
struct ChunkStream {
    csid: u32,
    /// Timestamp of the current (or last) message.
    timestamp: RtmpTime,
    /// The last timestamp field as sent: 0xFFFFFF means an extended timestamp follows.
    ts_field: u32,
    /// The last timestamp value or delta (extended value included), reused by format 3.
    ts_value: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The message being gathered, with the offset of its first chunk.
    partial: Option<(u64, BytesMut)>,
}

impl ChunkReader {
    pub(crate) fn new(limits: Limits, offset: u64) -> Self {
        Self {
            limits,
            chunk_size: DEFAULT_CHUNK_SIZE,
            offset,
            header: [0; 18],
            header_len: 0,
            header_offset: offset,
            body: None,
            streams: Vec::new(),
            buffered: 0,
        }
    }

    /// Replaces the limits (a peer that has become trusted gets larger ones).
    pub(crate) fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Applies the peer's Set Chunk Size (`offset`: where that message started, for errors).
    pub(crate) fn set_chunk_size(&mut self, value: u32, offset: u64) -> Result<(), Error> {
        let max = self.limits.max_chunk_size.min(MAX_SIZE);
        if value == 0 || value > max {
            return Err(Error::ChunkSize { offset, value, max });
        }
        self.chunk_size = value;
        Ok(())
    }

    /// The offset of the next byte to be consumed.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes of unfinished messages held.
    pub(crate) fn buffered(&self) -> usize {
        self.buffered
    }

    /// Drops the partial message on `csid` (an Abort message).
    pub(crate) fn abort(&mut self, csid: u32) {
        if let Some(s) = self.streams.iter_mut().find(|s| s.csid == csid)
            && let Some((_, partial)) = s.partial.take()
        {
            self.buffered -= partial.len();
        }
    }

    /// Consumes bytes from `input` until one message completes (returned) or `input` is empty.
    pub(crate) fn read(&mut self, input: &mut &[u8]) -> Result<Option<RawMessage>, Error> {
        loop {
            if let Some((index, left)) = self.body {
                let n = (left as usize).min(input.len());
                let stream = &mut self.streams[index];
                let Some((_, partial)) = stream.partial.as_mut() else {
                    self.body = None;
                    continue;
                };
                partial.extend_from_slice(&input[..n]);
                *input = &input[n..];
                self.offset += n as u64;
                self.buffered += n;
                if self.buffered > self.limits.max_buffered {
                    return Err(Error::Buffered {
                        offset: self.header_offset,
                        value: self.buffered,
                        max: self.limits.max_buffered,
                    });
                }
                let left = left - n as u32;
                if left > 0 {
                    self.body = Some((index, left));
                    return Ok(None);
                }
                self.body = None;
                if let Some(message) = self.complete(index) {
                    return Ok(Some(message));
                }
                continue;
            }
            let Some(need) = self.gather_header(input)? else {
                return Ok(None);
            };
            if let Some(message) = self.start_chunk(need)? {
                return Ok(Some(message));
            }
        }
    }

    /// Fills `header` from `input`; `Some(len)` once a whole header of `len` bytes is there.
    fn gather_header(&mut self, input: &mut &[u8]) -> Result<Option<usize>, Error> {
        loop {
            let (need, known) = self.header_need()?;
            if self.header_len >= need && known {
                return Ok(Some(need));
            }
            if input.is_empty() {
                return Ok(None);
            }
            if self.header_len == 0 {
                self.header_offset = self.offset;
            }
            let n = (need - self.header_len).min(input.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&input[..n]);
            self.header_len += n;
            *input = &input[n..];
            self.offset += n as u64;
        }
    }

    /// How many header bytes are needed, and whether that count is final.
    fn header_need(&self) -> Result<(usize, bool), Error> {
        let h = &self.header[..self.header_len];
        let Some(&first) = h.first() else {
            return Ok((1, false));
        };
        let basic = match first & 0x3f {
            0 => 2,
            1 => 3,
            _ => 1,
        };
        let format = first >> 6;
        let fixed = basic + MESSAGE_HEADER_LEN[usize::from(format)];
        if h.len() < fixed {
            return Ok((fixed, false));
        }
        let ts_field = if format < 3 {
            u24(&h[basic..basic + 3])
        } else {
            let csid = csid(h, basic);
            match self.streams.iter().find(|s| s.csid == csid) {
                Some(s) => s.ts_field,
                None => {
                    return Err(Error::NoPreviousHeader {
                        offset: self.header_offset,
                        csid,
                        format,
                    });
                }
            }
        };
        Ok((fixed + if ts_field == EXTENDED { 4 } else { 0 }, true))
    }

    /// Interprets a complete chunk header; returns a message at once when it has no body.
    fn start_chunk(&mut self, len: usize) -> Result<Option<RawMessage>, Error> {
        let h = self.header;
        self.header_len = 0;
        let offset = self.header_offset;
        let format = h[0] >> 6;
        let basic = match h[0] & 0x3f {
            0 => 2,
            1 => 3,
            _ => 1,
        };
        let csid = csid(&h, basic);
        let index = match self.streams.iter().position(|s| s.csid == csid) {
            Some(i) => i,
            None if format == 0 => {
                if self.streams.len() >= self.limits.max_chunk_streams {
                    return Err(Error::TooManyChunkStreams {
                        offset,
                        csid,
                        max: self.limits.max_chunk_streams,
                    });
                }
                self.streams.push(ChunkStream {
                    csid,
                    timestamp: RtmpTime(0),
                    ts_field: 0,
                    ts_value: 0,
                    length: 0,
                    type_id: 0,
                    stream_id: 0,
                    partial: None,
                });
                self.streams.len() - 1
            }
            None => {
                return Err(Error::NoPreviousHeader {
                    offset,
                    csid,
                    format,
                });
            }
        };
        let m = &h[basic..len];
        let extended = (len - basic > MESSAGE_HEADER_LEN[usize::from(format)]).then(|| {
            u32::from_be_bytes([
                m[len - basic - 4],
                m[len - basic - 3],
                m[len - basic - 2],
                m[len - basic - 1],
            ])
        });
        let stream = &mut self.streams[index];
        let continuing = format == 3 && stream.partial.is_some();
        if !continuing {
            if format < 3 {
                stream.ts_field = u24(&m[0..3]);
                stream.ts_value = extended.unwrap_or(stream.ts_field);
            } else if let Some(ext) = extended {
                stream.ts_value = ext;
            }
            if format <= 1 {
                stream.length = u24(&m[3..6]);
                stream.type_id = m[6];
            }
            if format == 0 {
                stream.stream_id = u32::from_le_bytes([m[7], m[8], m[9], m[10]]);
                stream.timestamp = RtmpTime(stream.ts_value);
            } else {
                stream.timestamp = stream.timestamp.wrapping_add(stream.ts_value);
            }
            if stream.length > self.limits.max_message_len {
                return Err(Error::MessageLength {
                    offset,
                    csid,
                    value: stream.length,
                    max: self.limits.max_message_len,
                });
            }
            // A new header while a message is unfinished abandons it (an implicit Abort).
            if let Some((_, old)) = stream.partial.take() {
                self.buffered -= old.len();
            }
            let capacity = (stream.length as usize).min(PREALLOCATE_MAX);
            stream.partial = Some((offset, BytesMut::with_capacity(capacity)));
        }
        let Some((_, partial)) = stream.partial.as_ref() else {
            return Ok(None);
        };
        let left = stream.length - partial.len() as u32;
        let in_chunk = left.min(self.chunk_size);
        if in_chunk == 0 {
            return Ok(self.complete(index));
        }
        self.body = Some((index, in_chunk));
        Ok(None)
    }

    /// Hands out the message on stream `index` if all its bytes are in.
    fn complete(&mut self, index: usize) -> Option<RawMessage> {
        let stream = &mut self.streams[index];
        let done = stream
            .partial
            .as_ref()
            .is_some_and(|(_, p)| p.len() as u32 >= stream.length);
        if !done {
            return None;
        }
        let (offset, payload) = stream.partial.take()?;
        self.buffered -= payload.len();
        Some(RawMessage {
            offset,
            csid: stream.csid,
            type_id: stream.type_id,
            stream_id: stream.stream_id,
            timestamp: stream.timestamp,
            payload,
        })
    }
}

/// Cuts messages into chunks. Every message starts with a full (format 0) header, so no state
/// is shared between messages and a message prepared once can be sent to many peers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkWriter {
    /// Our chunk size, as announced to the peer with Set Chunk Size.
    pub chunk_size: u32,
}

/// The fields of one outgoing message header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub csid: u32,
    pub timestamp: RtmpTime,
    pub type_id: u8,
    pub stream_id: u32,
}

impl ChunkWriter {
    /// Writes one message whose body is the concatenation of `parts`.
    pub(crate) fn write(
        &self,
        out: &mut BytesMut,
        header: Header,
        parts: &[&[u8]],
    ) -> Result<(), Error> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut w = self.begin(out, header, len)?;
        for part in parts {
            w.put(part);
        }
        Ok(())
    }

    /// Starts a message of `len` bytes; the body is written with [`MessageWriter::put`].
    pub(crate) fn begin<'a>(
        &self,
        out: &'a mut BytesMut,
        header: Header,
        len: usize,
    ) -> Result<MessageWriter<'a>, Error> {
        if len > MAX_LEN_FIELD as usize {
            return Err(Error::OutgoingTooLarge {
                len,
                max: MAX_LEN_FIELD as usize,
            });
        }
        let chunk_size = self.chunk_size.max(1) as usize;
        let extended = header.timestamp.0 >= EXTENDED;
        let chunks = len.div_ceil(chunk_size).max(1);
        out.reserve(len + 18 + (chunks - 1) * (3 + 4));
        put_basic_header(out, 0, header.csid);
        let ts = if extended {
            EXTENDED
        } else {
            header.timestamp.0
        };
        out.put_slice(&ts.to_be_bytes()[1..]);
        out.put_slice(&(len as u32).to_be_bytes()[1..]);
        out.put_u8(header.type_id);
        out.put_u32_le(header.stream_id);
        if extended {
            out.put_u32(header.timestamp.0);
        }
        Ok(MessageWriter {
            out,
            csid: header.csid,
            extended: extended.then_some(header.timestamp.0),
            chunk_size,
            left_in_chunk: chunk_size.min(len),
            left: len,
        })
    }
}

/// The body of one message being cut into chunks.
pub(crate) struct MessageWriter<'a> {
    out: &'a mut BytesMut,
    csid: u32,
    /// The extended timestamp, repeated after every continuation header (as FFmpeg reads it).
    extended: Option<u32>,
    chunk_size: usize,
    left_in_chunk: usize,
    left: usize,
}

impl MessageWriter<'_> {
    /// Appends body bytes, inserting continuation headers at chunk boundaries. Bytes beyond the
    /// announced length are ignored.
    pub(crate) fn put(&mut self, mut data: &[u8]) {
        data = &data[..data.len().min(self.left)];
        while !data.is_empty() {
            if self.left_in_chunk == 0 {
                put_basic_header(self.out, 3, self.csid);
                if let Some(ts) = self.extended {
                    self.out.put_u32(ts);
                }
                self.left_in_chunk = self.chunk_size.min(self.left);
            }
            let n = self.left_in_chunk.min(data.len());
            self.out.put_slice(&data[..n]);
            data = &data[n..];
            self.left_in_chunk -= n;
            self.left -= n;
        }
    }
}

fn put_basic_header(out: &mut BytesMut, format: u8, csid: u32) {
    match csid {
        2..=63 => out.put_u8(format << 6 | csid as u8),
        64..=319 => {
            out.put_u8(format << 6);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            let v = csid.clamp(320, 65_599) - 64;
            out.put_u8(format << 6 | 1);
            out.put_u16_le(v as u16);
        }
    }
}

fn csid(h: &[u8], basic: usize) -> u32 {
    match basic {
        2 => u32::from(h[1]) + 64,
        3 => u32::from(h[1]) + u32::from(h[2]) * 256 + 64,
        _ => u32::from(h[0] & 0x3f),
    }
}

fn u24(b: &[u8]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

/// The chunk size before either side sets one.
pub(crate) const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Message header length by chunk header format.
const MESSAGE_HEADER_LEN: [usize; 4] = [11, 7, 3, 0];
/// The timestamp field value that announces an extended timestamp.
const EXTENDED: u32 = 0xff_ffff;
/// The largest value of the 24-bit message length field.
const MAX_LEN_FIELD: u32 = 0xff_ffff;
/// The most a message buffer reserves before its bytes arrive.
const PREALLOCATE_MAX: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn read_all(reader: &mut ChunkReader, mut data: &[u8]) -> Result<Vec<RawMessage>, Error> {
        let mut out = Vec::new();
        while let Some(m) = reader.read(&mut data)? {
            out.push(m);
        }
        assert!(data.is_empty());
        Ok(out)
    }

    fn header(csid: u32, ts: u32, type_id: u8) -> Header {
        Header {
            csid,
            timestamp: RtmpTime(ts),
            type_id,
            stream_id: 1,
        }
    }

    #[test]
    fn message_spanning_chunks_byte_by_byte() {
        let writer = ChunkWriter { chunk_size: 128 };
        let body: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let mut out = BytesMut::new();
        writer.write(&mut out, header(6, 40, 9), &[&body]).unwrap();
        assert_eq!(out.len(), 12 + 1000 + 7);
        let mut reader = ChunkReader::new(Limits::default(), 0);
        let mut messages = Vec::new();
        for b in out.chunks(1) {
            let mut slice = b;
            if let Some(m) = reader.read(&mut slice).unwrap() {
                messages.push(m);
            }
        }
        assert_eq!(messages.len(), 1);
        assert_eq!(&messages[0].payload[..], &body[..]);
        assert_eq!(messages[0].timestamp, RtmpTime(40));
        assert_eq!((messages[0].type_id, messages[0].stream_id), (9, 1));
    }

    #[test]
    fn interleaved_chunk_streams() {
        // Video message split in two chunks with an audio message between them.
        let mut data = vec![0x06, 0, 0, 10, 0, 0, 200, 9, 1, 0, 0, 0];
        data.extend([0xaa; 128]);
        data.extend([0x04, 0, 0, 10, 0, 0, 3, 8, 1, 0, 0, 0, 1, 2, 3]);
        data.push(0xc6);
        data.extend([0xbb; 72]);
        let mut reader = ChunkReader::new(Limits::default(), 0);
        let got = read_all(&mut reader, &data).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].type_id, &got[0].payload[..]), (8, &[1, 2, 3][..]));
        assert_eq!(got[1].payload.len(), 200);
        assert_eq!(got[1].offset, 0);
        assert_eq!(got[0].offset, 140);
    }

    #[test]
    fn compressed_headers_and_extended_timestamps() {
        let mut data = Vec::new();
        // Format 0 at 1000, format 2 (+40), format 3 (+40 again), format 1 (+20, new length).
        data.extend([0x04, 0, 0x03, 0xe8, 0, 0, 2, 8, 1, 0, 0, 0, 0xaf, 1]);
        data.extend([0x84, 0, 0, 40, 0xaf, 1]);
        data.extend([0xc4, 0xaf, 1]);
        data.extend([0x44, 0, 0, 20, 0, 0, 3, 8, 0xaf, 1, 2]);
        // Extended timestamp 0x01000000 on a format 0 header, continuation repeats it.
        data.extend([0x05, 0xff, 0xff, 0xff, 0, 0, 130, 9, 1, 0, 0, 0, 1, 0, 0, 0]);
        data.extend([0x11; 128]);
        data.extend([0xc5, 1, 0, 0, 0, 0x22, 0x22]);
        let mut reader = ChunkReader::new(Limits::default(), 0);
        let got = read_all(&mut reader, &data).unwrap();
        let stamps: Vec<u32> = got.iter().map(|m| m.timestamp.0).collect();
        assert_eq!(stamps, [1000, 1040, 1080, 1100, 0x0100_0000]);
        assert_eq!(got[4].payload.len(), 130);
        assert_eq!(&got[4].payload[128..], &[0x22, 0x22]);
    }

    #[test]
    fn writer_round_trips_extended_timestamps_and_large_csids() {
        let writer = ChunkWriter { chunk_size: 100 };
        let mut out = BytesMut::new();
        let body = vec![7u8; 450];
        writer
            .write(
                &mut out,
                header(300, 0x0200_0000, 9),
                &[&body[..200], &body[200..]],
            )
            .unwrap();
        writer.write(&mut out, header(70, 5, 8), &[b"abc"]).unwrap();
        writer.write(&mut out, header(3, 6, 20), &[]).unwrap();
        let mut reader = ChunkReader::new(Limits::default(), 0);
        reader.set_chunk_size(100, 0).unwrap();
        let got = read_all(&mut reader, &out).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0].csid, got[0].timestamp.0, got[0].payload.len()),
            (300, 0x0200_0000, 450)
        );
        assert_eq!((got[1].csid, &got[1].payload[..]), (70, &b"abc"[..]));
        assert!(got[2].payload.is_empty());
    }

    #[test]
    fn absurd_sizes_are_refused() {
        let mut reader = ChunkReader::new(Limits::default(), 0);
        assert_eq!(
            reader.set_chunk_size(0x7fff_ffff, 77),
            Err(Error::ChunkSize {
                offset: 77,
                value: 0x7fff_ffff,
                max: MAX_SIZE
            })
        );
        assert!(reader.set_chunk_size(0, 0).is_err());
        let limits = Limits {
            max_message_len: 1000,
            ..Limits::default()
        };
        let mut reader = ChunkReader::new(limits, 10);
        let data = [0x03, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0];
        assert_eq!(
            read_all(&mut reader, &data).unwrap_err(),
            Error::MessageLength {
                offset: 10,
                csid: 3,
                value: 0xff_ffff,
                max: 1000
            }
        );
    }

    #[test]
    fn continuation_without_header_is_an_error() {
        let mut reader = ChunkReader::new(Limits::default(), 3073);
        assert_eq!(
            read_all(&mut reader, &[0xc3, 1, 2]).unwrap_err(),
            Error::NoPreviousHeader {
                offset: 3073,
                csid: 3,
                format: 3
            }
        );
    }

    #[test]
    fn chunk_stream_cap() {
        let limits = Limits {
            max_chunk_streams: 2,
            ..Limits::default()
        };
        let mut reader = ChunkReader::new(limits, 0);
        let mut data = Vec::new();
        for csid in 2..5u8 {
            data.extend([csid, 0, 0, 0, 0, 0, 1, 8, 0, 0, 0, 0, 0]);
        }
        assert!(matches!(
            read_all(&mut reader, &data),
            Err(Error::TooManyChunkStreams {
                csid: 4,
                offset: 26,
                ..
            })
        ));
    }

    proptest! {
        #[test]
        fn reader_never_panics(data in prop::collection::vec(any::<u8>(), 0..2000), split in 1usize..64) {
            let mut reader = ChunkReader::new(Limits { max_buffered: 4096, ..Limits::default() }, 0);
            for part in data.chunks(split) {
                let mut part = part;
                loop {
                    match reader.read(&mut part) {
                        Ok(Some(_)) => continue,
                        Ok(None) => break,
                        Err(_) => return Ok(()),
                    }
                }
            }
        }

        #[test]
        fn write_then_read(bodies in prop::collection::vec((2u32..400, any::<u32>(), prop::collection::vec(any::<u8>(), 0..600)), 1..8), chunk_size in 1u32..300) {
            let writer = ChunkWriter { chunk_size };
            let mut out = BytesMut::new();
            for (csid, ts, body) in &bodies {
                writer.write(&mut out, header(*csid, *ts, 9), &[body]).unwrap();
            }
            let mut reader = ChunkReader::new(Limits::default(), 0);
            reader.set_chunk_size(chunk_size, 0).unwrap();
            let got = read_all(&mut reader, &out).unwrap();
            prop_assert_eq!(got.len(), bodies.len());
            for (m, (csid, ts, body)) in got.iter().zip(&bodies) {
                prop_assert_eq!(m.csid, *csid);
                prop_assert_eq!(m.timestamp.0, *ts);
                prop_assert_eq!(&m.payload[..], &body[..]);
            }
        }
    }
}
