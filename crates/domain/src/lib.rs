//! Tributary's product model and its pure logic.
//!
//! - [`stream`]: the stream record as stored and served (SPEC §Domain), decoded strictly.
//! - [`protocol`]: the one input-URL classifier.
//! - [`validate`]: decoding with errors that name the JSON path, and the rules SPEC sets.
//! - [`spec`]: the parsed form of a record (`StreamSpec`): inputs classified once, every option
//!   of their kind parsed; what the engine and the ingest workers run.
//! - [`diff`]: what changed between two versions of a stream (`compute_diff`, SPEC §Hot reload).
//! - [`plan`](mod@plan): the restart actions a hot reload takes for a diff.
//! - [`http_range`]: the media routes' `Range` header.
//! - [`failover`]: the sans-IO failover machine of one stream (SPEC §Stream manager).
//! - [`template`]: templates, inheritance and the prefixes auto-publish routes by.
//! - [`hook`]: webhooks as written, their filters, settings, retry schedule and signature.
//! - [`roots`]: which relative paths are safe to join, and whether a resolved path lies inside
//!   its roots (`security.storage_roots`, a VOD mount, the DVR root).
//! - [`vod`]: VOD mounts, their listing entries and the video extensions served.
//! - [`watermark`]: the watermark library's asset ids, image types (by content) and records.
//! - [`document`]: the whole-system document of `GET/PUT /config/yaml`: decoding, secrets,
//!   validation of the system it would leave, and the plan of changes.
//! - [`ffmpeg`]: the transcoder parsed into a ladder, and the pure FFmpeg argv builder (SPEC
//!   §Transcoder).
//!
//! This crate is L0: no clock, no IO, no tokio (ARCHITECTURE.md §3).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

pub mod config;
pub mod diff;
pub mod document;
pub mod event;
pub mod failover;
pub mod ffmpeg;
pub mod forwarded;
pub mod hex;
pub mod hook;
pub mod http_range;
pub mod plan;
pub mod protocol;
pub mod redact;
pub mod roots;
pub mod signing;
pub mod spec;
pub mod stream;
pub mod streamid;
pub mod template;
pub mod validate;
pub mod vod;
pub mod watermark;

pub use diff::{KeyedDiff, Output, ProtocolsDiff, StreamDiff, compute_diff};
pub use plan::{Action, RestartPlan, plan};
pub use stream::{
    AudioSettings, Decoder, Dvr, Input, InputNet, Protocols, Push, Stream, Thumbnail, Transcoder,
    TranscoderGlobal, TranscoderMode, VideoProfile, VideoSettings, Watermark,
};
pub use tributary_media::StreamCode;
