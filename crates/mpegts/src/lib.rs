//! MPEG-TS demuxer and muxer, sans-IO.
//!
//! MPEG-TS carries UDP, SRT, HLS-TS, HTTP-TS, FFmpeg's pipes and DVR, so both directions live
//! here and meet in one model: bytes go in with [`push`](Demuxer::push), results come out of
//! [`pull`](Demuxer::pull) until it returns `None` (ARCHITECTURE.md §6). Nothing in this crate
//! reads a clock, opens a socket or spawns anything; the arrival instant of each chunk is passed
//! in.
//!
//! - [`Demuxer`]: arbitrary byte chunks in (it finds packet boundaries itself and resynchronises
//!   on garbage); [`DemuxEvent::Tracks`] (the selected program's PMT, mapped to codecs) and
//!   [`DemuxEvent::Frame`]s (one access unit each: a picture, one AAC frame, ...) out.
//!   Timestamps are unwrapped past 2^33; continuity errors are counted, not fatal.
//! - [`Muxer`]: frames in; runs of 188-byte packets out, with PAT/PMT, PCR and ADTS headers as a
//!   player expects them.
//! - [`LiveWriter`]: the one live TS writer over the muxer, for readers that join a live buffer
//!   (FFmpeg's stdin, HTTP-TS and SRT play, DVR): it fixes the track table from the first
//!   frames, starts at a keyframe with PAT/PMT and resyncs at the next keyframe after a loss.
//!
//! The payload of each access unit is gathered from its packets into one `Bytes`, once; the
//! frames handed out are slices of it.
//!
//! ```
//! use std::time::Instant;
//!
//! use bytes::Bytes;
//! use tributary_media::{Codec, Frame, SessionId, TrackId, Ts90};
//! use tributary_mpegts::{DemuxEvent, Demuxer, DemuxerConfig, MuxTrack, Muxer, MuxerConfig};
//!
//! let now = Instant::now();
//! let video = TrackId(0x100);
//! let mut muxer = Muxer::new(MuxerConfig {
//!     tracks: vec![MuxTrack::new(video, Codec::H264).with_pid(0x100)],
//!     ..MuxerConfig::default()
//! })?;
//! let frame = Frame {
//!     track: video,
//!     codec: Codec::H264,
//!     pts: Ts90(93_600),
//!     dts: Ts90(90_000),
//!     keyframe: true,
//!     session: SessionId(0),
//!     arrival: now,
//!     payload: Bytes::from_static(&[0, 0, 0, 1, 0x65, 0x88, 0x84]),
//!     config: None,
//! };
//! muxer.push(&frame);
//! let mut ts = Vec::new();
//! while let Some(chunk) = muxer.pull() {
//!     ts.extend_from_slice(&chunk?);
//! }
//!
//! let mut demuxer = Demuxer::new(DemuxerConfig::default());
//! demuxer.push(&ts, now);
//! demuxer.flush(); // the end of a video PES is only known at the next one, or here
//! let mut frames = Vec::new();
//! while let Some(event) = demuxer.pull() {
//!     match event? {
//!         DemuxEvent::Tracks { tracks, .. } => assert_eq!(tracks.len(), 1),
//!         DemuxEvent::Frame(f) => frames.push(f),
//!     }
//! }
//! assert_eq!(frames.len(), 1);
//! assert_eq!((frames[0].pts, frames[0].dts), (Ts90(93_600), Ts90(90_000)));
//! assert_eq!(frames[0].payload, frame.payload);
//! # Ok::<(), tributary_mpegts::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

mod demux;
mod error;
mod es;
pub mod live;
mod mux;
mod psi;
mod track;

pub use demux::{DemuxEvent, Demuxer, DemuxerConfig, Pcr};
pub use error::Error;
pub use live::LiveWriter;
pub use mux::{MuxTrack, Muxer, MuxerConfig};
pub use track::{AacConfig, Carriage, NotCarried, TrackInfo};

/// The length of a TS packet.
pub const PACKET_LEN: usize = 188;
/// The first byte of every TS packet.
const SYNC_BYTE: u8 = 0x47;
/// The PID of the PAT.
const PAT_PID: u16 = 0x0000;
/// The PID of null (padding) packets.
const NULL_PID: u16 = 0x1FFF;
