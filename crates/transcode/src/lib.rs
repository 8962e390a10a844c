//! FFmpeg supervision for the transcoder (SPEC §Transcoder; L2).
//!
//! The transcoder turns a stream's raw-ingest buffer into an ABR ladder: a feeder writes the
//! buffer as MPEG-TS into FFmpeg's stdin (through `tributary_mpegts::LiveWriter`, the one live
//! TS writer), FFmpeg writes each rung as MPEG-TS to its own pipe, and a demuxer turns those
//! back into frames for the rendition buffers. FFmpeg is a child
//! process the server does not control, so everything it says is parsed defensively and
//! everything about keeping it alive is decided by pure state machines that the runtime drives
//! with the clock it reads once per wake-up:
//!
//! - [`Supervisor`] ([`supervise`]): restart backoff (2 s doubling to 30 s, forever, reset
//!   after 30 s of running), health (3 crashes within 30 s → unhealthy; healthy again after
//!   30 s of running, by timer) and speed (below 0.95× for 30 s → slow).
//! - [`ProgressParser`] ([`progress`]): FFmpeg's `-progress` blocks → [`Progress`] (speed, fps,
//!   dropped and duplicated frames).
//! - [`StderrTail`] ([`stderr`]): stderr lines, decoder chatter told apart, and the last
//!   8 lines that explain a crash.
//! - [`probe`](mod@probe): what an FFmpeg binary can do (version, encoders, muxers, filters, hardware
//!   acceleration methods), at boot and on `POST /config/transcoder/probe`.
//! - [`usage`]: a child's CPU time and resident memory, from `/proc`.
//! - [`Restamp`] ([`restamp`]): FFmpeg's 33-bit output timestamps back on the raw buffer's
//!   timeline, so every rung carries the PTS of the input frames it encodes.
//!
//! The argv of each process comes from `tributary_domain::ffmpeg`, where the transcoder
//! config is parsed and checked at save.
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! use tributary_transcode::{Event, Supervisor, SupervisorConfig};
//!
//! let t0 = Instant::now();
//! let mut rung = Supervisor::new(t0, SupervisorConfig::default());
//! rung.exited(t0 + Duration::from_secs(1), "exit status 1 | Conversion failed!".into());
//! assert!(matches!(
//!     rung.poll_event(),
//!     Some(Event::Crashed { attempt: 1, restart_in, .. }) if restart_in == Duration::from_secs(2)
//! ));
//! let at = rung.poll_timeout().unwrap();
//! rung.handle_timeout(at);
//! assert_eq!(rung.poll_event(), Some(Event::Restart));
//! rung.started(at);
//! ```
#![forbid(unsafe_code)]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

pub mod job;
pub mod probe;
pub mod process;
pub mod progress;
pub mod restamp;
pub mod stderr;
pub mod supervise;
pub mod thumbnail;
pub mod usage;

pub use job::{JobConfig, JobEvent, JobHandle, JobReport, JobStatus, MAX_ERRORS, StatusWatch};
pub use probe::{ProbeReport, probe};
pub use process::{Ffmpeg, Launcher, SpawnError, prepare_workdir};
pub use progress::{Progress, ProgressParser};
pub use restamp::Restamp;
pub use stderr::{Line, StderrTail};
pub use supervise::{Event, Supervisor, SupervisorConfig};
pub use thumbnail::{ThumbnailError, snapshot};
