//! Media muxed and chunked once for every player of a stream.
//!
//! A server with many players of one stream would otherwise repeat, per player and per frame,
//! the same work: Annex-B to length-prefixed NAL units, the FLV tag header, and the cut into
//! chunks. Chunk headers here are always format 0 (absolute timestamps, no state shared between
//! messages, see [`ChunkWriter`]), so the bytes of one message are the same for every peer that
//! uses the same message stream id and chunk size: [`PlayFanout`] produces them once and
//! [`ServerSession::send_prepared`](crate::ServerSession::send_prepared) queues them as they
//! are, one reference-counted [`Bytes`] per frame.
//!
//! Players read one buffer at their own pace, so the same frame reaches the fan-out several
//! times. It keeps the latest [`RECENT`] frames' bytes and recognises a frame by its payload (the
//! hub hands every reader a clone of the same [`Bytes`], and the cache holds that clone, so the
//! address cannot be reused while the entry lives). A frame newer than every frame seen on its
//! track is muxed by the shared muxer and cached; an older one that is no longer cached (a late
//! joiner's GOP replay, a lagging player) is muxed by a copy of the shared muxer, which keeps
//! the shared timestamp base and parameter-set state and leaves the shared state untouched.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use tributary_media::{Codec, Frame, Ts90};

use crate::Error;
use crate::chunk::ChunkWriter;
use crate::conn::write_tag;
use crate::flv::{FlvMuxer, Pushed, SkipReason};

/// How many recent frames' bytes a fan-out keeps: about one second of 30 fps video with 48 kHz
/// AAC, so players at the live edge, which ask within milliseconds of each other, always hit.
pub const RECENT: usize = 96;

/// One stream's media prepared for every player that plays it on message stream
/// [`stream_id`](Self::stream_id) with chunk size [`chunk_size`](Self::chunk_size).
#[derive(Debug)]
pub struct PlayFanout {
    muxer: FlvMuxer,
    writer: ChunkWriter,
    stream_id: u32,
    /// The latest frames' bytes, oldest first.
    recent: VecDeque<Entry>,
    /// Per track (by id), the DTS of the newest frame the shared muxer took.
    newest: Vec<(u16, Ts90)>,
    /// Where messages are cut into (split off per frame).
    buf: BytesMut,
}

#[derive(Debug)]
struct Entry {
    /// The frame's payload: its identity, and what keeps the address from being reused.
    payload: Bytes,
    prepared: Prepared,
}

/// The bytes of one frame for a player: zero, one or two chunked messages (a sequence header,
/// then the frame), ready to write.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// What the muxer did with the frame.
    pub pushed: Pushed,
    /// The chunked messages (empty when the frame was skipped).
    pub bytes: Bytes,
}

impl PlayFanout {
    /// A fan-out for players on message stream `stream_id` with outgoing chunk size
    /// `chunk_size`.
    pub fn new(stream_id: u32, chunk_size: u32) -> Self {
        Self {
            muxer: FlvMuxer::new(),
            writer: ChunkWriter { chunk_size },
            stream_id,
            recent: VecDeque::with_capacity(RECENT),
            newest: Vec::new(),
            buf: BytesMut::new(),
        }
    }

    /// The message stream id the prepared bytes carry.
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// The chunk size the prepared bytes are cut with.
    pub fn chunk_size(&self) -> u32 {
        self.writer.chunk_size
    }

    /// The bytes of `frame`: from the cache when another player asked for it recently, else
    /// muxed now (see the module doc).
    ///
    /// # Errors
    /// The frame cannot be muxed ([`Error::Mux`]) or a message is too long for RTMP.
    pub fn prepare(&mut self, frame: &Frame) -> Result<Prepared, Error> {
        if let Some(entry) = self
            .recent
            .iter()
            .rev()
            .find(|e| same(&e.payload, &frame.payload))
        {
            return Ok(entry.prepared.clone());
        }
        let track = frame.track.0;
        let newest = self.newest.iter_mut().find(|(t, _)| *t == track);
        let is_new = newest.as_ref().is_none_or(|(_, dts)| frame.dts > *dts);
        if !is_new {
            // Older than what the shared muxer has taken: mux it aside.
            let mut aside = self.muxer.clone();
            return mux(
                &mut aside,
                &self.writer,
                self.stream_id,
                &mut self.buf,
                frame,
            );
        }
        match newest {
            Some((_, dts)) => *dts = frame.dts,
            None => self.newest.push((track, frame.dts)),
        }
        let prepared = mux(
            &mut self.muxer,
            &self.writer,
            self.stream_id,
            &mut self.buf,
            frame,
        )?;
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(Entry {
            payload: frame.payload.clone(),
            prepared: prepared.clone(),
        });
        Ok(prepared)
    }

    /// The current sequence headers, chunked: what a player must receive before its first
    /// prepared frame (they are also repeated inline whenever the parameters change).
    ///
    /// # Errors
    /// A message is too long for RTMP.
    pub fn sequence_headers(&mut self) -> Result<Bytes, Error> {
        for tag in self.muxer.sequence_headers() {
            write_tag(&self.writer, &mut self.buf, self.stream_id, tag)?;
        }
        Ok(self.buf.split().freeze())
    }
}

/// Whether two payloads are the same bytes (not merely equal ones).
fn same(a: &Bytes, b: &Bytes) -> bool {
    a.as_ptr() == b.as_ptr() && a.len() == b.len()
}

fn mux(
    muxer: &mut FlvMuxer,
    writer: &ChunkWriter,
    stream_id: u32,
    buf: &mut BytesMut,
    frame: &Frame,
) -> Result<Prepared, Error> {
    if matches!(frame.codec, Codec::Av1 | Codec::Vp9) {
        // SPEC §Publisher: RTMP play carries H.264 and H.265; the muxer could write AV1 and
        // VP9 as Enhanced RTMP, but the players that read them are few, so they are omitted
        // (and the player's connection logs it) like any codec RTMP does not carry.
        return Ok(Prepared {
            pushed: Pushed::Skipped(SkipReason::UnsupportedCodec(frame.codec)),
            bytes: Bytes::new(),
        });
    }
    let pushed = muxer.push(frame).map_err(Error::Mux)?;
    while let Some(tag) = muxer.pull() {
        write_tag(writer, buf, stream_id, &tag)?;
    }
    Ok(Prepared {
        pushed,
        bytes: buf.split().freeze(),
    })
}
