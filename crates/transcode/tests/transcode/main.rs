//! Integration tests of the transcode crate, against the real FFmpeg.

mod argv;
mod job;
