//! The crate's error types.

use std::time::Duration;

use tributary_media::Codec;
use tributary_media::codec::CodecError;

use crate::RequestId;
use crate::amf0::Amf0Error;

/// Why a session stopped, or why a call on it was refused.
///
/// Byte offsets count from the first byte the peer ever sent on the connection (handshake
/// included), so a log line leads straight to the position in a capture. Every error returned by
/// `handle_input` or `handle_timeout` is fatal for that connection: the driver logs it and closes
/// the socket; the session refuses further input with [`Error::Closed`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The first handshake byte (C0/S0) is not protocol version 3.
    #[error(
        "handshake: {packet} says RTMP version {value}, only 3 is supported (6 would be RTMPE)"
    )]
    HandshakeVersion {
        /// `C0` or `S0`.
        packet: &'static str,
        /// The version byte received.
        value: u8,
    },
    /// A chunk continues a chunk stream on which no full header was ever seen.
    #[error(
        "chunk at byte {offset}: format {format} header on chunk stream {csid} with no previous header"
    )]
    NoPreviousHeader {
        /// Offset of the chunk's first byte.
        offset: u64,
        /// The chunk stream id.
        csid: u32,
        /// The chunk header format (1, 2 or 3).
        format: u8,
    },
    /// A Set Chunk Size message asked for a size outside 1..=max.
    #[error("Set Chunk Size at byte {offset}: {value} is outside 1..={max}")]
    ChunkSize {
        /// Offset of the message's first chunk.
        offset: u64,
        /// The requested chunk size.
        value: u32,
        /// The largest size accepted.
        max: u32,
    },
    /// A message header announced a length above the cap.
    #[error(
        "chunk at byte {offset}: message length {value} on chunk stream {csid} exceeds the cap of {max} bytes"
    )]
    MessageLength {
        /// Offset of the chunk's first byte.
        offset: u64,
        /// The chunk stream id.
        csid: u32,
        /// The announced length.
        value: u32,
        /// The cap.
        max: u32,
    },
    /// The peer used more chunk streams at once than the cap allows.
    #[error("chunk at byte {offset}: chunk stream {csid} would be number {max} + 1 in use")]
    TooManyChunkStreams {
        /// Offset of the chunk's first byte.
        offset: u64,
        /// The new chunk stream id.
        csid: u32,
        /// The cap.
        max: usize,
    },
    /// Partially received messages together hold more bytes than the cap allows.
    #[error("chunk at byte {offset}: {value} bytes of unfinished messages buffered, cap {max}")]
    Buffered {
        /// Offset of the chunk's first byte.
        offset: u64,
        /// Bytes held.
        value: usize,
        /// The cap.
        max: usize,
    },
    /// A protocol control message has the wrong size or content.
    #[error("{kind} message at byte {offset}: {reason}")]
    ControlMessage {
        /// Offset of the message's first chunk.
        offset: u64,
        /// The message kind (`Set Chunk Size`, `User Control`, ...).
        kind: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// An AMF0 command or data message does not decode.
    #[error("AMF0 message at byte {offset}: {source}")]
    Amf0 {
        /// Offset of the message's first chunk.
        offset: u64,
        /// The decoding error (its offset is within the message body).
        source: Amf0Error,
    },
    /// A command message is well-formed AMF0 but not a valid command.
    #[error("command {name:?} at byte {offset}: {reason}")]
    Command {
        /// Offset of the message's first chunk.
        offset: u64,
        /// The command name (empty when it is missing).
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Too many consecutive media messages failed to parse.
    #[error("{count} consecutive malformed media messages, the last at byte {offset}: {last}")]
    MediaErrors {
        /// Offset of the last bad message.
        offset: u64,
        /// How many in a row.
        count: u32,
        /// The last error.
        last: FlvError,
    },
    /// The peer did not reach the expected state in time.
    #[error("timed out after {after:?} waiting for {waiting_for}")]
    Timeout {
        /// The configured limit.
        after: Duration,
        /// What had not happened (`publish or play`, `Publish.Start`, ...).
        waiting_for: &'static str,
    },
    /// The server refused a command of this client (`_error` or an `onStatus` at level `error`).
    #[error("server refused {command}: {code} ({description})")]
    Refused {
        /// The command refused (`connect`, `createStream`, `publish`, `play`).
        command: &'static str,
        /// The status code (`NetStream.Play.StreamNotFound`, ...), empty when none was given.
        code: String,
        /// The description the server gave.
        description: String,
    },
    /// `accept` or `reject` named a request that is unknown or already answered.
    #[error("request {0} is unknown or already answered")]
    UnknownRequest(RequestId),
    /// Media was offered to a session that is not playing (server) or publishing (client).
    #[error("cannot send media: the session is not {0}")]
    NotStreaming(&'static str),
    /// Prepared media was offered to a session whose stream id or chunk size differs from the
    /// fan-out's, so the bytes would be wrong for this peer.
    #[error(
        "prepared media is for stream {fanout:?} (id, chunk size), the session plays {session:?}"
    )]
    FanoutMismatch {
        /// The session's (message stream id, chunk size).
        session: (u32, u32),
        /// The fan-out's.
        fanout: (u32, u32),
    },
    /// An outgoing message does not fit RTMP's 24-bit length field.
    #[error("outgoing message of {len} bytes exceeds RTMP's limit of {max}")]
    OutgoingTooLarge {
        /// The message length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An outgoing frame could not be mapped to FLV.
    #[error("cannot send media: {0}")]
    Mux(FlvError),
    /// The session already failed or closed.
    #[error("the session is closed")]
    Closed,
}

/// Why one FLV audio or video tag could not be mapped to or from a [`Frame`](tributary_media::Frame).
///
/// None is fatal by itself: the tag is dropped and reported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FlvError {
    /// The tag body is shorter than its header.
    #[error("{what} tag of {len} bytes is truncated ({needed} needed)")]
    Truncated {
        /// `audio` or `video`.
        what: &'static str,
        /// The body length.
        len: usize,
        /// The bytes needed.
        needed: usize,
    },
    /// The codec is not carried over RTMP (SPEC §Ingest: H.264, H.265, AAC, MP3 only).
    #[error("{what} codec {codec} is not carried")]
    UnsupportedCodec {
        /// `audio` or `video`.
        what: &'static str,
        /// The FLV codec id (`id 2`), sound format or Enhanced RTMP FourCC (`av01`).
        codec: String,
    },
    /// A sequence header (decoder configuration record, AudioSpecificConfig) does not parse.
    #[error("{codec} sequence header: {source}")]
    SequenceHeader {
        /// The codec.
        codec: Codec,
        /// The parse error.
        source: CodecError,
    },
    /// The NAL units of a coded frame do not parse.
    #[error("{codec} frame: {source}")]
    Nal {
        /// The codec.
        codec: Codec,
        /// The parse error.
        source: CodecError,
    },
    /// A coded frame arrived before the sequence header that configures it.
    #[error("{codec} frame before its sequence header")]
    NoSequenceHeader {
        /// The codec.
        codec: Codec,
    },
    /// A keyframe arrived without parameter sets and none were known: it cannot start a decoder.
    #[error("{codec} keyframe without parameter sets dropped")]
    KeyframeWithoutParameterSets {
        /// The codec.
        codec: Codec,
    },
}
