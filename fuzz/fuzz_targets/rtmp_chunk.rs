//! RTMP: arbitrary bytes into a server session after a valid (simple) handshake, fed in pieces
//! whose sizes the input chooses. Exercises the chunk reader (header compression, interleaving,
//! caps), AMF0 commands, the publish state machine and the FLV demuxer; any panic is a bug.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use tributary_rtmp::{Output, ServerConfig, ServerEvent, ServerSession};

fuzz_target!(|data: &[u8]| {
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut server = ServerSession::new(ServerConfig::default(), [0; 32], now);
    let mut handshake = vec![3u8];
    handshake.resize(1 + 2 * 1536, 0);
    if server.handle_input(now, &handshake).is_err() {
        return;
    }
    // The first byte picks the piece size, so chunk boundaries land everywhere.
    let (split, data) = match data.split_first() {
        Some((&s, rest)) => (usize::from(s).max(1), rest),
        None => return,
    };
    for piece in data.chunks(split) {
        if server.handle_input(now, piece).is_err() {
            return;
        }
        while let Some(output) = server.poll_output() {
            // Accept every request so that media paths are reached too.
            if let Output::Event(
                ServerEvent::PublishRequested { request_id, .. }
                | ServerEvent::PlayRequested { request_id, .. },
            ) = output
            {
                let _ = server.accept(request_id);
            }
        }
    }
});
