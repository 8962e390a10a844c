//! The ingest workers against real sources: ffmpeg senders and RTMP servers, an in-test HTTP server, files.
//!
//! Every test builds a hub with one intake port, starts a worker on it and reads the buffer
//! through a subscriber, as the engine and the packagers would. Tests that need FFmpeg fail
//! with a message naming it when it is missing; none skips.

mod file;
mod hls;
mod http_ts;
mod rtmp;
mod ssrf;
mod support;
mod udp;
