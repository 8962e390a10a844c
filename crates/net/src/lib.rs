//! One driver for every connection with a peer, and dialing out (L1).
//!
//! # Model
//!
//! Every protocol with a peer is a sans-IO [`Session`](tributary_media::Session) (RTMP's
//! server and client sessions now; RTSP and SRT next). This crate runs any of them over a
//! socket with one loop, [`run`], so serve, ingest and publish are thin adapters: each writes a
//! [`Handler`] that holds what its connection is for (an intake port, a hub subscriber, a push
//! target's state) and answers the session's events; the driver does everything else:
//!
//! - it owns the socket halves and reads and writes independently, so a peer that stops
//!   reading never hides its close;
//! - it keeps one bounded outgoing queue ([`OutQueue`]) with a high-water mark: above it the
//!   driver reads nothing and pulls no items, so a slow peer's backlog stays in the hub, which
//!   drops it frame by frame; a peer too far behind ([`Settings::backlog`]) or not reading at
//!   all ([`Settings::write_stall`]) is cut;
//! - it has one timer, re-armed from the earliest deadline (the session's, the backlog's,
//!   idleness, a closing flush, the pacers');
//! - it reads `now` once per wake-up from tokio's clock, so tests on paused time drive every
//!   timer exactly;
//! - it drains the session after every input, timeout and handler call;
//! - it counts what each session holds of unprocessed input against one process-wide
//!   [`InputBudget`] and cuts the connection whose read spends it.
//!
//! Dialing lives here once too: [`connect`] resolves, checks every address against the
//! [`SsrfGuard`], connects with a timeout and runs TLS (rustls, the system's roots).
//!
//! # Example
//!
//! An echo-free "session" that counts bytes and never answers, run over an in-memory pipe:
//!
//! ```
//! use std::time::Instant;
//!
//! use tokio_util::sync::CancellationToken;
//! use tributary_media::{Output, Session};
//! use tributary_net::{Cx, End, Handler, Settings};
//!
//! #[derive(Default)]
//! struct Count(usize);
//!
//! impl Session for Count {
//!     type Event = ();
//!     type Error = std::io::Error;
//!     fn handle_input(&mut self, _now: Instant, input: &[u8]) -> std::io::Result<()> {
//!         self.0 += input.len();
//!         Ok(())
//!     }
//!     fn handle_timeout(&mut self, _now: Instant) -> std::io::Result<()> {
//!         Ok(())
//!     }
//!     fn poll_output(&mut self) -> Option<Output<()>> {
//!         None
//!     }
//!     fn poll_timeout(&self) -> Option<Instant> {
//!         None
//!     }
//! }
//!
//! struct Quiet;
//!
//! impl Handler<Count> for Quiet {
//!     type Item = ();
//!     type Reason = ();
//!     fn event(&mut self, _cx: &mut Cx<'_, Count, ()>, _event: ()) -> Result<(), ()> {
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let (ours, mut theirs) = tokio::io::duplex(64);
//! tokio::io::AsyncWriteExt::write_all(&mut theirs, b"hello").await.unwrap();
//! drop(theirs);
//! let mut session = Count::default();
//! let stop = CancellationToken::new();
//! let end = tributary_net::run(ours, &mut session, &mut Quiet, Settings::default(), &stop).await;
//! assert!(matches!(end, End::PeerClosed));
//! assert_eq!(session.0, 5);
//! # });
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

mod budget;
mod dial;
mod driver;
mod pace;
pub mod pages;
mod queue;
mod ssrf;

pub use budget::InputBudget;
pub use dial::{Dial, DialError, Io, Target, Tls, connect, handshake_random, resolve, tls_config};
pub use driver::{Cx, End, Handler, Settings, clock, run};
pub use queue::OutQueue;
pub use ssrf::{SsrfGuard, SsrfMode, UnknownMode};
