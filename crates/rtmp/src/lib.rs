//! RTMP, sans-IO: the handshake, the chunk layer, server and client sessions, and the mapping
//! between FLV tags (Enhanced RTMP included) and [`Frame`](tributary_media::Frame)s (L0).
//!
//! # Model
//!
//! A session is a state machine for one TCP (or TLS) connection. Bytes and `now` go in with
//! `handle_input`; transmits and events come out of `poll_output`, in order; the one deadline
//! comes out of `poll_timeout` and goes back in through `handle_timeout` (ARCHITECTURE.md §6).
//! Nothing here reads a clock, touches a socket or draws random numbers: the handshake's random
//! bytes are an argument.
//!
//! - [`ServerSession`]: the listener side. Publishers and players state their intent; the
//!   session raises [`ServerEvent::PublishRequested`] / [`ServerEvent::PlayRequested`] with a
//!   [`RequestId`] and the driver answers [`ServerSession::accept`] or
//!   [`ServerSession::reject`] (policy stays with the caller). A publisher's media comes out as
//!   [`ServerEvent::Media`] frames; a player is fed with [`ServerSession::send_media`].
//! - [`ClientSession`]: pull (`play`) and push-out (`publish`).
//! - [`flv`]: [`FlvDemuxer`] and [`FlvMuxer`], the pure tag ⇄ frame mapping the sessions use.
//! - [`handshake`], [`amf0`], [`chunk`]: the layers below, usable alone.
//!
//! Track ids: video [`VIDEO_TRACK`] = `TrackId(0)`, audio [`AUDIO_TRACK`] = `TrackId(1)`.
//! Timestamps: RTMP's 32-bit milliseconds are unwrapped per connection ([`RtmpClock`]) and
//! become 90 kHz [`Ts90`](tributary_media::Ts90); PTS = DTS + composition time.
//!
//! Hostile input: chunk size and message length are capped at 16 MiB ([`chunk::Limits`]),
//! chunk streams and buffered bytes are capped, AMF0 nesting is capped, and every malformed
//! input is an [`Error`] naming its byte offset, never a panic.
//!
//! Why not `rml_rtmp`: its chunk deserializer panics on interleaved chunk streams (legal RTMP)
//! and its AMF0 decoder recurses without a bound (a 10 MB nested array overflows the stack and
//! aborts the process); its sessions read the wall clock and its handshake the global RNG. The
//! layers are small, so they are owned here, and `rml_rtmp` serves only as an independent peer in
//! tests.
//!
//! # Example
//!
//! A client publishes one keyframe to a server, in memory:
//!
//! ```
//! use std::time::Instant;
//!
//! use bytes::Bytes;
//! use tributary_media::{Codec, Frame, SessionId, TrackId, Ts90};
//! use tributary_rtmp::{
//!     ClientConfig, ClientEvent, ClientIntent, ClientSession, Output, ServerConfig, ServerEvent,
//!     ServerSession,
//! };
//!
//! let now = Instant::now();
//! let config = ClientConfig::from_url("rtmp://127.0.0.1/live/cam1", ClientIntent::Publish).unwrap();
//! let mut client = ClientSession::new(config, [1; 32], now);
//! let mut server = ServerSession::new(ServerConfig::default(), [2; 32], now);
//!
//! let (mut started, mut frames) = (false, Vec::new());
//! let mut sent = false;
//! for _ in 0..20 {
//!     while let Some(out) = client.poll_output() {
//!         match out {
//!             Output::Transmit(bytes) => server.handle_input(now, &bytes)?,
//!             Output::Event(ClientEvent::PublishStarted) => started = true,
//!             Output::Event(_) => {}
//!         }
//!     }
//!     while let Some(out) = server.poll_output() {
//!         match out {
//!             Output::Transmit(bytes) => client.handle_input(now, &bytes)?,
//!             Output::Event(ServerEvent::PublishRequested { request_id, stream_key, .. }) => {
//!                 assert_eq!(stream_key, "cam1");
//!                 server.accept(request_id)?;
//!             }
//!             Output::Event(ServerEvent::Media(frame)) => frames.push(frame),
//!             Output::Event(_) => {}
//!         }
//!     }
//!     if started && !sent {
//!         // SPS, PPS and an IDR slice (Annex-B), as the hub hands them out.
//!         let sps = [0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8];
//!         let mut au = vec![0, 0, 0, 1];
//!         au.extend_from_slice(&sps);
//!         au.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 0, 1, 0x65, 0x88, 0x84]);
//!         let frame = Frame {
//!             track: TrackId(0),
//!             codec: Codec::H264,
//!             pts: Ts90(3600),
//!             dts: Ts90(0),
//!             keyframe: true,
//!             session: SessionId(0),
//!             arrival: now,
//!             payload: Bytes::from(au),
//!             config: None,
//!         };
//!         let _ = client.send_media(&frame)?;
//!         sent = true;
//!     }
//! }
//! assert_eq!(frames.len(), 1);
//! assert_eq!((frames[0].dts, frames[0].pts), (Ts90(0), Ts90(3600)));
//! # Ok::<(), tributary_rtmp::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

pub mod amf0;
pub mod chunk;
mod client;
mod conn;
mod error;
mod fanout;
pub mod flv;
pub mod handshake;
mod server;
mod time;

pub use client::{ClientConfig, ClientEvent, ClientIntent, ClientSession, Endpoint};
pub use error::{Error, FlvError};
pub use fanout::{PlayFanout, Prepared, RECENT as FANOUT_RECENT};
pub use flv::{
    AUDIO_TRACK, FlvDemuxer, FlvMuxer, FlvTag, Pushed, SkipReason, TagKind, VIDEO_TRACK,
};
pub use server::{RejectReason, RequestId, ServerConfig, ServerEvent, ServerSession};
pub use time::{RtmpClock, RtmpTime};
pub use tributary_media::Output;

#[cfg(test)]
mod tests;
