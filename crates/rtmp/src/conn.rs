//! Plumbing shared by the server and client sessions: the chunk layer with acknowledgements,
//! protocol control messages, AMF0 commands, the output queue and the media demux path.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use tributary_media::{Frame, Output};

use crate::amf0::Amf0;
use crate::chunk::{ChunkReader, ChunkWriter, Header, Limits, RawMessage};
use crate::flv::{FlvDemuxer, FlvTag, TagKind};
use crate::{Error, FlvError, RtmpTime};

/// Implements [`tributary_media::Session`] for a session type by delegating to its inherent
/// methods of the same names, so a generic driver can run it.
macro_rules! impl_session {
    ($session:ty, $event:ty) => {
        impl tributary_media::Session for $session {
            type Event = $event;
            type Error = crate::Error;

            fn handle_input(
                &mut self,
                now: std::time::Instant,
                input: &[u8],
            ) -> Result<(), crate::Error> {
                Self::handle_input(self, now, input)
            }

            fn handle_timeout(&mut self, now: std::time::Instant) -> Result<(), crate::Error> {
                Self::handle_timeout(self, now)
            }

            fn poll_output(&mut self) -> Option<tributary_media::Output<$event>> {
                Self::poll_output(self)
            }

            fn poll_timeout(&self) -> Option<std::time::Instant> {
                Self::poll_timeout(self)
            }

            fn buffered(&self) -> usize {
                Self::buffered(self)
            }
        }
    };
}
pub(crate) use impl_session;

/// A parsed AMF0 command message.
#[derive(Debug)]
pub(crate) struct Command {
    pub name: String,
    pub transaction: f64,
    pub object: Amf0,
    pub args: Vec<Amf0>,
}

/// The chunk layer of one connection plus its output queue.
#[derive(Debug)]
pub(crate) struct Core<E> {
    /// Reassembles the peer's messages.
    pub reader: ChunkReader,
    /// Cuts our messages.
    pub writer: ChunkWriter,
    /// Bytes written and not yet handed out as a transmit.
    out: BytesMut,
    /// Outputs in order (bytes before `out` are flushed here whenever an event is queued).
    queue: VecDeque<Output<E>>,
    /// Chunk-layer bytes received, for acknowledgements.
    received: u64,
    /// `received` when the last acknowledgement was sent.
    acked: u64,
    /// The peer's Window Acknowledgement Size: we acknowledge every that many bytes.
    peer_window: Option<u32>,
    /// The window size we last announced (answer to Set Peer Bandwidth).
    our_window: Option<u32>,
    /// Scratch for AMF0 bodies (reused).
    scratch: BytesMut,
}

impl<E> Core<E> {
    pub(crate) fn new(limits: Limits, offset: u64) -> Self {
        Self {
            reader: ChunkReader::new(limits, offset),
            writer: ChunkWriter {
                chunk_size: crate::chunk::DEFAULT_CHUNK_SIZE,
            },
            out: BytesMut::new(),
            queue: VecDeque::new(),
            received: 0,
            acked: 0,
            peer_window: None,
            our_window: None,
            scratch: BytesMut::new(),
        }
    }

    /// The buffer transmits are written to (handshake packets go here directly).
    pub(crate) fn out(&mut self) -> &mut BytesMut {
        &mut self.out
    }

    /// Reads the next message, acknowledging received bytes as the peer's window asks.
    pub(crate) fn read(&mut self, input: &mut &[u8]) -> Result<Option<RawMessage>, Error> {
        let before = input.len();
        let message = self.reader.read(input)?;
        self.received += (before - input.len()) as u64;
        if let Some(window) = self.peer_window
            && self.received - self.acked >= u64::from(window)
        {
            self.acked = self.received;
            self.control(ACK, &(self.received as u32).to_be_bytes())?;
        }
        Ok(message)
    }

    pub(crate) fn event(&mut self, event: E) {
        if !self.out.is_empty() {
            self.queue
                .push_back(Output::Transmit(self.out.split().freeze()));
        }
        self.queue.push_back(Output::Event(event));
    }

    /// Queues bytes prepared elsewhere (see [`crate::PlayFanout`]) after everything written so
    /// far.
    pub(crate) fn transmit(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        if !self.out.is_empty() {
            self.queue
                .push_back(Output::Transmit(self.out.split().freeze()));
        }
        self.queue.push_back(Output::Transmit(bytes));
    }

    pub(crate) fn poll(&mut self) -> Option<Output<E>> {
        if let Some(output) = self.queue.pop_front() {
            return Some(output);
        }
        (!self.out.is_empty()).then(|| Output::Transmit(self.out.split().freeze()))
    }

    /// Writes a protocol control message (chunk stream 2, message stream 0).
    pub(crate) fn control(&mut self, type_id: u8, body: &[u8]) -> Result<(), Error> {
        let header = Header {
            csid: CSID_CONTROL,
            timestamp: RtmpTime(0),
            type_id,
            stream_id: 0,
        };
        self.writer.write(&mut self.out, header, &[body])
    }

    /// Announces our chunk size and starts using it.
    pub(crate) fn set_chunk_size(&mut self, size: u32) -> Result<(), Error> {
        self.control(SET_CHUNK_SIZE, &size.to_be_bytes())?;
        self.writer.chunk_size = size;
        Ok(())
    }

    pub(crate) fn window_ack_size(&mut self, size: u32) -> Result<(), Error> {
        self.our_window = Some(size);
        self.control(WINDOW_ACK_SIZE, &size.to_be_bytes())
    }

    pub(crate) fn user_control(&mut self, event: u16, data: &[u8]) -> Result<(), Error> {
        let mut body = [0u8; 10];
        body[..2].copy_from_slice(&event.to_be_bytes());
        body[2..2 + data.len()].copy_from_slice(data);
        self.control(USER_CONTROL, &body[..2 + data.len()])
    }

    /// Writes an AMF0 command (or data message, `type_id` 18) on `csid`.
    pub(crate) fn amf0(
        &mut self,
        type_id: u8,
        csid: u32,
        stream_id: u32,
        values: &[Amf0],
    ) -> Result<(), Error> {
        self.scratch.clear();
        for v in values {
            v.write(&mut self.scratch);
        }
        let header = Header {
            csid,
            timestamp: RtmpTime(0),
            type_id,
            stream_id,
        };
        self.writer.write(&mut self.out, header, &[&self.scratch])
    }

    /// Sends `onStatus(level, code, description)` on `stream_id`.
    pub(crate) fn on_status(
        &mut self,
        stream_id: u32,
        level: &str,
        code: &str,
        description: &str,
    ) -> Result<(), Error> {
        let info = Amf0::Object(vec![
            ("level".into(), Amf0::String(level.into())),
            ("code".into(), Amf0::String(code.into())),
            ("description".into(), Amf0::String(description.into())),
        ]);
        let values = [
            Amf0::String("onStatus".into()),
            Amf0::Number(0.0),
            Amf0::Null,
            info,
        ];
        self.amf0(COMMAND_AMF0, CSID_STREAM, stream_id, &values)
    }

    /// Sends one FLV tag as a media message on `stream_id`.
    pub(crate) fn tag(&mut self, stream_id: u32, tag: &FlvTag) -> Result<(), Error> {
        write_tag(&self.writer, &mut self.out, stream_id, tag)
    }

    /// Handles the protocol control messages both sides treat alike. Returns the message back
    /// when it is not one of them; a User Control event other than ping comes back too.
    pub(crate) fn common(&mut self, message: RawMessage) -> Result<Option<RawMessage>, Error> {
        let offset = message.offset;
        let body = &message.payload[..];
        let bad = |kind, reason| Error::ControlMessage {
            offset,
            kind,
            reason,
        };
        match message.type_id {
            SET_CHUNK_SIZE => {
                let b = body
                    .get(..4)
                    .ok_or(bad("Set Chunk Size", "shorter than 4 bytes"))?;
                let value = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                self.reader.set_chunk_size(value, offset)?;
            }
            ABORT => {
                let b = body.get(..4).ok_or(bad("Abort", "shorter than 4 bytes"))?;
                self.reader
                    .abort(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            }
            ACK => {}
            WINDOW_ACK_SIZE => {
                let b = body
                    .get(..4)
                    .ok_or(bad("Window Acknowledgement Size", "shorter than 4 bytes"))?;
                let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                self.peer_window = (size > 0).then_some(size);
            }
            SET_PEER_BANDWIDTH => {
                let b = body
                    .get(..4)
                    .ok_or(bad("Set Peer Bandwidth", "shorter than 4 bytes"))?;
                let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                if size > 0 && self.our_window != Some(size) {
                    self.window_ack_size(size)?;
                }
            }
            USER_CONTROL => {
                let mut b = body;
                if b.len() < 2 {
                    return Err(bad("User Control", "shorter than 2 bytes"));
                }
                let event = b.get_u16();
                if event == PING_REQUEST {
                    let ts = b
                        .get(..4)
                        .ok_or(bad("User Control", "ping without timestamp"))?;
                    let ts = [ts[0], ts[1], ts[2], ts[3]];
                    self.user_control(PING_RESPONSE, &ts)?;
                } else {
                    return Ok(Some(message));
                }
            }
            _ => return Ok(Some(message)),
        }
        Ok(None)
    }
}

/// Parses an AMF0 (type 20) or AMF3-wrapped (type 17) command message.
pub(crate) fn parse_command(message: &RawMessage) -> Result<Command, Error> {
    let mut body = &message.payload[..];
    if message.type_id == COMMAND_AMF3 && body.first() == Some(&0) {
        body = &body[1..];
    }
    let offset = message.offset;
    let mut values = Amf0::decode_all(body)
        .map_err(|source| Error::Amf0 { offset, source })?
        .into_iter();
    let Some(Amf0::String(name)) = values.next() else {
        return Err(Error::Command {
            offset,
            name: String::new(),
            reason: "the first value is not a command name",
        });
    };
    let transaction = values.next().and_then(|v| v.as_number()).unwrap_or(0.0);
    let object = values.next().unwrap_or(Amf0::Null);
    Ok(Command {
        name,
        transaction,
        object,
        args: values.collect(),
    })
}

/// Decodes an AMF0 data message (type 18, or AMF3-wrapped 15); `@setDataFrame` is stripped.
pub(crate) fn parse_data(message: &RawMessage) -> Result<Vec<Amf0>, Error> {
    let mut body = &message.payload[..];
    if message.type_id == DATA_AMF3 && body.first() == Some(&0) {
        body = &body[1..];
    }
    let offset = message.offset;
    let mut values = Amf0::decode_all(body).map_err(|source| Error::Amf0 { offset, source })?;
    if values.first().and_then(Amf0::as_str) == Some("@setDataFrame") {
        values.remove(0);
    }
    Ok(values)
}

/// The `onMetaData` object of a data message, if that is what it carries.
pub(crate) fn metadata(values: Vec<Amf0>) -> Option<Amf0> {
    let mut values = values.into_iter();
    (values.next()?.as_str()? == "onMetaData").then(|| values.next().unwrap_or(Amf0::Null))
}

/// The media receiving side: FLV demuxing with error accounting.
#[derive(Debug, Default)]
pub(crate) struct MediaIn {
    /// Maps tags to frames.
    demuxer: FlvDemuxer,
    /// Malformed media messages since the last good frame.
    errors: u32,
    /// Whether an unsupported audio / video codec was already reported (reported once).
    unsupported: [bool; 2],
}

/// What a media message produced, for the session to turn into events.
pub(crate) enum MediaOut {
    Frame(Frame),
    Dropped { offset: u64, error: FlvError },
}

impl MediaIn {
    /// Maps an audio, video or aggregate message; calls `emit` for each result.
    pub(crate) fn push(
        &mut self,
        now: Instant,
        message: RawMessage,
        mut emit: impl FnMut(MediaOut),
    ) -> Result<(), Error> {
        let offset = message.offset;
        if message.type_id != AGGREGATE {
            let kind = if message.type_id == AUDIO {
                TagKind::Audio
            } else {
                TagKind::Video
            };
            return self.one(
                now,
                offset,
                kind,
                message.timestamp,
                message.payload,
                &mut emit,
            );
        }
        // Aggregate: FLV tags back to back (11-byte header, body, 4-byte previous tag size);
        // timestamps relative to the first tag, rebased onto the message's.
        let mut body = message.payload;
        let mut first_ts = None;
        while body.len() >= 11 {
            let kind = match body[0] & 0x1f {
                8 => Some(TagKind::Audio),
                9 => Some(TagKind::Video),
                _ => None,
            };
            let size = u32::from_be_bytes([0, body[1], body[2], body[3]]) as usize;
            let ts = u32::from_be_bytes([body[7], body[4], body[5], body[6]]);
            if body.len() < 11 + size {
                break;
            }
            body.advance(11);
            let tag = body.split_to(size);
            body.advance(body.len().min(4));
            let first = *first_ts.get_or_insert(ts);
            let timestamp = message.timestamp.wrapping_add(ts.wrapping_sub(first));
            if let Some(kind) = kind {
                self.one(now, offset, kind, timestamp, tag, &mut emit)?;
            }
        }
        Ok(())
    }

    fn one(
        &mut self,
        now: Instant,
        offset: u64,
        kind: TagKind,
        timestamp: RtmpTime,
        body: BytesMut,
        emit: &mut impl FnMut(MediaOut),
    ) -> Result<(), Error> {
        match self.demuxer.push(now, kind, timestamp, body) {
            Ok(Some(frame)) => {
                self.errors = 0;
                emit(MediaOut::Frame(frame));
            }
            Ok(None) => {}
            Err(error @ FlvError::UnsupportedCodec { .. }) => {
                let seen = &mut self.unsupported[usize::from(kind == TagKind::Video)];
                if !*seen {
                    *seen = true;
                    emit(MediaOut::Dropped { offset, error });
                }
            }
            Err(error @ FlvError::KeyframeWithoutParameterSets { .. }) => {
                emit(MediaOut::Dropped { offset, error });
            }
            Err(error) => {
                self.errors += 1;
                if self.errors >= MAX_MEDIA_ERRORS {
                    return Err(Error::MediaErrors {
                        offset,
                        count: self.errors,
                        last: error,
                    });
                }
                emit(MediaOut::Dropped { offset, error });
            }
        }
        Ok(())
    }
}

/// Cuts one FLV tag into `out` as a media message on `stream_id`, on the chunk stream of its
/// kind (a session's own sends and [`crate::PlayFanout`]'s shared ones alike).
pub(crate) fn write_tag(
    writer: &ChunkWriter,
    out: &mut BytesMut,
    stream_id: u32,
    tag: &FlvTag,
) -> Result<(), Error> {
    let csid = match tag.kind {
        TagKind::Audio => CSID_AUDIO,
        TagKind::Video => CSID_VIDEO,
        TagKind::Script => CSID_DATA,
    };
    let header = Header {
        csid,
        timestamp: tag.timestamp,
        type_id: tag.kind.type_id(),
        stream_id,
    };
    writer.write(out, header, &[&tag.body])
}

/// Consecutive malformed media messages after which the connection is given up (SPEC §Ingest
/// "after 8 consecutive failures without a good frame the connection is reopened").
const MAX_MEDIA_ERRORS: u32 = 8;

pub(crate) const SET_CHUNK_SIZE: u8 = 1;
pub(crate) const ABORT: u8 = 2;
pub(crate) const ACK: u8 = 3;
pub(crate) const USER_CONTROL: u8 = 4;
pub(crate) const WINDOW_ACK_SIZE: u8 = 5;
pub(crate) const SET_PEER_BANDWIDTH: u8 = 6;
pub(crate) const AUDIO: u8 = 8;
pub(crate) const VIDEO: u8 = 9;
pub(crate) const DATA_AMF3: u8 = 15;
pub(crate) const COMMAND_AMF3: u8 = 17;
pub(crate) const DATA_AMF0: u8 = 18;
pub(crate) const COMMAND_AMF0: u8 = 20;
pub(crate) const AGGREGATE: u8 = 22;

pub(crate) const STREAM_BEGIN: u16 = 0;
pub(crate) const STREAM_EOF: u16 = 1;
pub(crate) const SET_BUFFER_LENGTH: u16 = 3;
pub(crate) const PING_REQUEST: u16 = 6;
pub(crate) const PING_RESPONSE: u16 = 7;

/// Chunk stream ids we send on (FFmpeg's choice of channels).
pub(crate) const CSID_CONTROL: u32 = 2;
pub(crate) const CSID_COMMAND: u32 = 3;
pub(crate) const CSID_AUDIO: u32 = 4;
pub(crate) const CSID_DATA: u32 = 5;
pub(crate) const CSID_VIDEO: u32 = 6;
pub(crate) const CSID_STREAM: u32 = 8;
