//! RTMP handshake: arbitrary bytes from the very first byte into a server session, fed in
//! pieces whose size the first byte picks, and into a client handshake. Any panic is a bug.
#![no_main]

use std::time::Instant;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tributary_rtmp::handshake::{ClientHandshake, ServerHandshake};
use tributary_rtmp::{ServerConfig, ServerSession};

fuzz_target!(|data: &[u8]| {
    let (split, data) = match data.split_first() {
        Some((&s, rest)) => (usize::from(s).max(1), rest),
        None => return,
    };
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut server = ServerSession::new(ServerConfig::default(), [7; 32], now);
    for piece in data.chunks(split) {
        if server.handle_input(now, piece).is_err() {
            break;
        }
        while server.poll_output().is_some() {}
    }
    let mut out = BytesMut::new();
    let mut handshake = ServerHandshake::new([1; 32]);
    let mut rest = data;
    while !rest.is_empty() && !handshake.is_done() {
        match handshake.read(rest, &mut out) {
            Ok(0) | Err(_) => break,
            Ok(used) => rest = &rest[used.min(rest.len())..],
        }
    }
    let mut client = ClientHandshake::new([2; 32], &mut out);
    let mut rest = data;
    while !rest.is_empty() && !client.is_done() {
        match client.read(rest, &mut out) {
            Ok(0) | Err(_) => break,
            Ok(used) => rest = &rest[used.min(rest.len())..],
        }
    }
});
