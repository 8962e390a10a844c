//! Arbitrary bytes into the TS demuxer, in chunks whose sizes the input chooses; every event
//! drained. The only failure is a panic.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use tributary_mpegts::{Demuxer, DemuxerConfig};

fuzz_target!(|data: &[u8]| {
    // First byte: chunk size (1..=256) and program selection, so splitting and multi-program
    // paths are explored too.
    let Some((&control, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(control) + 1;
    let program = u16::from(control & 0x03);
    let mut demuxer = Demuxer::new(DemuxerConfig { program });
    let now = Instant::now();
    for piece in data.chunks(chunk) {
        demuxer.push(piece, now);
        while demuxer.pull().is_some() {}
    }
    demuxer.flush();
    while demuxer.pull().is_some() {}
    let _ = (demuxer.cc_errors(), demuxer.last_pcr(), demuxer.tracks().len());
});
