//! RTSP play, sans-IO (L0): the server side of a connection and the session description.
//!
//! - [`server`]: [`ServerSession`], one connection's state machine, from OPTIONS to TEARDOWN,
//!   and the media of a playing session as RTP (packetized by `tributary-rtp`) over the
//!   connection or to the client's UDP ports.
//! - [`sdp`]: the presentation a DESCRIBE answers with, from the hub's codec configuration.
//!
//! The pull side (a client of cameras) is the `retina` crate's, in ingest; no crate offers an
//! RTSP server session, so this one is written here, on `rtsp-types` for the messages.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

pub mod sdp;
pub mod server;

pub use sdp::Track;
pub use server::{Datagram, Event, Refusal, RtspError, ServerConfig, ServerSession};
