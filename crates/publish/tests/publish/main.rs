//! Integration tests of the publish crate: outputs driven by a real hub buffer (HLS windows,
//! RTMP push to an FFmpeg server).

mod dash;
mod hls;
mod push;
mod support;
