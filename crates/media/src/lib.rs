//! The media vocabulary every other Tributary crate speaks.
//!
//! This crate is L0: pure data types and pure functions. It reads no clock, opens no socket or
//! file and spawns nothing; time and randomness come in as arguments (ARCHITECTURE.md §3).
//!
//! - [`StreamCode`]: the validated name of a stream (`match-day`, `sports/ch1`).
//! - [`Frame`]: one access unit on its way through the hub, stamped with 90 kHz timestamps
//!   ([`Ts90`]) and the [`SessionId`] of the timeline it belongs to.
//! - [`Session`]: the sans-IO contract of every protocol machine with a peer or a timer
//!   (ARCHITECTURE.md §6), which one connection driver runs for every protocol.
//!
//! ```
//! use tributary_media::StreamCode;
//!
//! let code: StreamCode = "sports/ch1".parse().unwrap();
//! assert_eq!(code.as_str(), "sports/ch1");
//! assert!("api/x".parse::<StreamCode>().is_err()); // reserved first segment
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

mod code;
pub mod codec;
mod frame;
pub mod session;
mod time;
pub mod timeline;

pub use code::{CodeError, StreamCode};
pub use codec::TrackInfo;
pub use frame::{Codec, Frame, MediaKind, SessionId, TrackConfig, TrackId};
pub use session::{Output, Session};
pub use time::Ts90;
