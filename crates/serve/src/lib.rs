//! Listeners for publishers and players (L2): RTMP on `:1935`, RTSP play on `:8554`, SRT on
//! `:9999`.
//!
//! The SRT listener ([`start_srt`], `srt` module) follows the same model over the
//! `srt-tokio` transport, with the differences its module doc lists.
//!
//! # Model
//!
//! A listener accepts TCP connections and runs one tokio task per connection. The task drives
//! the protocol crate's sans-IO session (`tributary_rtmp::ServerSession`) until the peer
//! states its intent, asks the [`Router`] — the one interface pointing up the graph, which the
//! engine implements — and then becomes a pump:
//!
//! - **Publish.** The router returns the intake [`Port`](tributary_hub::Port) of the stream's
//!   push input; every frame the session produces is written to it (synchronously: a hub write
//!   never waits). A new publisher starts a new timeline session on the port (`reconnect`);
//!   when it leaves, for whatever reason, the port gets an error report naming the peer and the
//!   grant's guard is dropped, which frees the slot in the engine.
//! - **Play.** The router returns a hub and buffer; the task subscribes from the last keyframe
//!   (class `rtmp_play`), so the player starts at a keyframe with sequence headers first, and
//!   feeds frames to the session. A player slower than the stream loses its own frames in the
//!   hub (which skips it to the next keyframe) and never slows anyone else; one whose oldest
//!   unsent media is more than `play_backlog_sec` behind live is disconnected. A deleted
//!   buffer (the stream stopped) ends the play with `NetStream.Play.UnpublishNotify`.
//!
//! Policy — name routing, keys, caps per stream, one publisher per slot — is the router's;
//! the listener enforces only what protects the process: a handshake deadline, a per-IP cap on
//! connections still in handshake (loopback exempt), a total connection cap, an idle timeout
//! for publishers. A malformed peer (garbage, truncated chunks, absurd sizes) ends only its own
//! connection, with a WARN naming the peer and, once known, the path and stream.
//!
//! Bounds: per connection, one read buffer (64 KiB) and an out-queue the task stops filling
//! at 512 KiB; the hub holds a slow player's backlog. No lock is held across an `.await`, and
//! no channel is unbounded.
//!
//! Logs are `tracing` events in a span `rtmp` with the fields `peer`, `path` and `stream`
//! (the latter two once known); stream keys and play queries are never logged.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use tributary_serve::{
//!     PlayGrant, PlayRequest, PublishGrant, PublishRequest, Refusal, Router,
//!     RtmpListenerConfig, start_rtmp,
//! };
//!
//! /// Refuses everything; the engine's router looks streams up instead.
//! struct Nobody;
//!
//! impl Router for Nobody {
//!     fn publish(&self, request: PublishRequest) -> Result<PublishGrant, Refusal> {
//!         Err(Refusal::NotFound(format!("no stream at {}", request.path)))
//!     }
//!     fn play(&self, request: PlayRequest) -> Result<PlayGrant, Refusal> {
//!         Err(Refusal::NotFound(format!("no stream at {}", request.path)))
//!     }
//! }
//!
//! # async fn demo() -> std::io::Result<()> {
//! let config = RtmpListenerConfig {
//!     addr: "127.0.0.1:0".parse().unwrap(),
//!     ..RtmpListenerConfig::default()
//! };
//! let listener = start_rtmp(config, Arc::new(Nobody)).await?;
//! println!("RTMP on {}", listener.local_addr());
//! listener.stop();
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

mod accept;
mod limit;
mod name;
mod router;
mod rtmp;
mod rtsp;
mod srt;

pub use router::{
    ByteMeter, PlayGrant, PlayRequest, Preparation, Protocol, PublishEnd, PublishGrant,
    PublishGuard, PublishRequest, Refusal, Router,
};
pub use rtmp::{ListenerStats, RtmpListener, RtmpListenerConfig, start_rtmp};
pub use rtsp::{RtspListener, RtspListenerConfig, RtspStats, start_rtsp};
pub use srt::{PassphraseLength, SrtListener, SrtListenerConfig, SrtPassphrase, start_srt};
