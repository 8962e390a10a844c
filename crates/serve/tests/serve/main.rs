//! The RTMP listener against real peers: FFmpeg publishers and players, our own RTMP client,
//! and hostile raw TCP clients.
//!
//! Every test starts a listener on 127.0.0.1:0 with a router backed by a real hub (one buffer
//! and intake per stream code, as the engine builds them) and checks what reaches the buffer
//! or the player. Tests that need FFmpeg fail with a message naming it when it is missing;
//! none skips.

mod malformed;
mod publish;
mod refuse;
mod slow;
mod stream_end;
mod support;
