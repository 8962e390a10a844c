//! The demuxer never panics, whatever it is fed; found crashes become cases here.

use proptest::prelude::*;
use tributary_mpegts::{Demuxer, DemuxerConfig};

const FFMPEG_H264_AAC: &[u8] = include_bytes!("../../testdata/ffmpeg_h264_aac.ts");

/// Feeds `data` in `chunk`-byte pieces, drains everything, returns the event count.
fn feed(data: &[u8], chunk: usize, program: u16) -> usize {
    let mut demuxer = Demuxer::new(DemuxerConfig { program });
    let now = crate::arrival();
    let mut events = 0;
    for piece in data.chunks(chunk.max(1)) {
        demuxer.push(piece, now);
        events += std::iter::from_fn(|| demuxer.pull()).count();
    }
    demuxer.flush();
    events + std::iter::from_fn(|| demuxer.pull()).count()
}

/// Packet-shaped noise: sync bytes where packets start, random headers and payloads, so the
/// parsers behind packet splitting get exercised too.
fn packets() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        (
            0u16..0x40,
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 184),
        ),
        1..30,
    )
    .prop_map(|packets| {
        let mut out = Vec::new();
        for (pid, flags, cc, body) in packets {
            // Low PIDs so PAT (0), typical PMT and ES PIDs collide often.
            let pid = if pid >= 0x20 { 0x1000 + pid } else { pid };
            out.extend_from_slice(&[0x47, (flags & 0x40) | (pid >> 8) as u8, pid as u8, cc]);
            out.extend_from_slice(&body);
        }
        out
    })
}

#[test]
fn regression_cases() {
    let cases: &[&[u8]] = &[
        &[],
        &[0x47],
        &[0x47; 188],
        &[0x47; 1000],
        &[0x47, 0x40, 0x00, 0x30, 0xFF],
        &[0x47, 0x40, 0x00, 0x10, 0xFF, 0x00, 0xB0, 0xFF],
    ];
    for case in cases {
        for chunk in [1, 188, 4096] {
            feed(case, chunk, 0);
        }
    }
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(
        data in prop::collection::vec(any::<u8>(), 0..4000),
        chunk in 1usize..500,
    ) {
        feed(&data, chunk, 0);
    }

    #[test]
    fn never_panics_on_packet_shaped_noise(data in packets(), chunk in 1usize..500, program in 0u16..3) {
        feed(&data, chunk, program);
    }

    #[test]
    fn never_panics_on_a_valid_stream_with_garbage_appended_or_spliced(
        cut in 0usize..FFMPEG_H264_AAC.len(),
        garbage in prop::collection::vec(any::<u8>(), 0..2000),
        flips in prop::collection::vec((0usize..FFMPEG_H264_AAC.len(), any::<u8>()), 0..20),
        chunk in 1usize..5000,
    ) {
        let mut appended = FFMPEG_H264_AAC.to_vec();
        appended.extend_from_slice(&garbage);
        prop_assert!(feed(&appended, chunk, 0) > 0);

        let mut spliced = FFMPEG_H264_AAC[..cut].to_vec();
        spliced.extend_from_slice(&garbage);
        spliced.extend_from_slice(&FFMPEG_H264_AAC[cut..]);
        for (at, byte) in flips {
            spliced[at] ^= byte;
        }
        feed(&spliced, chunk, 0);
    }
}
