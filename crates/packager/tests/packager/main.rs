//! Integration tests of the packager against real media and real players' tools.

mod ffmpeg;
mod fmp4;
