//! Integration tests of the publish crate: outputs driven by a real hub buffer.

mod hls;
mod support;
