//! RTMP client session (pulls and push-out): a valid simple S0S1S2, then arbitrary bytes as
//! the server's answer, in pieces whose size the first byte picks. Exercises the client's
//! command handling (connect/createStream/play/publish answers, onStatus), the chunk reader
//! and the FLV demuxer of what it plays. Any panic is a bug.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use tributary_rtmp::{ClientConfig, ClientIntent, ClientSession};

fuzz_target!(|data: &[u8]| {
    let (split, data) = match data.split_first() {
        Some((&s, rest)) => (s, rest),
        None => return,
    };
    // The low bit picks the intent, the rest the piece size.
    let intent = if split & 1 == 0 {
        ClientIntent::Play
    } else {
        ClientIntent::Publish
    };
    let split = usize::from(split >> 1).max(1);
    let Some(config) = ClientConfig::from_url("rtmp://127.0.0.1/live/cam?key=k", intent) else {
        return;
    };
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut client = ClientSession::new(config, [3; 32], now);
    while client.poll_output().is_some() {}
    let mut s0s1s2 = vec![3u8];
    s0s1s2.resize(1 + 2 * 1536, 0);
    if client.handle_input(now, &s0s1s2).is_err() {
        return;
    }
    for piece in data.chunks(split) {
        if client.handle_input(now, piece).is_err() {
            return;
        }
        while client.poll_output().is_some() {}
    }
});
