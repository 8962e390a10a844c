//! MPEG-TS demux and mux throughput, in MB/s of transport stream.
//!
//! Inputs, both real ffmpeg output:
//! - `720p30`: 10 s of `testsrc2` 1280x720 30 fps H.264 (libx264 veryfast, GOP 60, 2 B-frames)
//!   with 48 kHz stereo AAC, encoded once by `tributary-testkit` into
//!   `$TMPDIR/tributary-testkit/` (a few seconds, first run only).
//! - `240p25`: the committed capture `crates/mpegts/testdata/ffmpeg_h264_aac.ts` (2 s,
//!   320x240, small pictures: the per-packet and per-PES overheads weigh more).
//!
//! `demux`: the whole buffer pushed in 1316-byte pieces (one UDP datagram each), every event
//! pulled after each push, then `flush`. Throughput counts input bytes.
//! `mux`: the frames of that demux pushed through a new `Muxer` on the same PIDs, every chunk
//! pulled after each push. Throughput counts output TS bytes.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tributary_bench::{UDP_CHUNK, demux_all, mux_all, mux_tracks};
use tributary_mpegts::{Demuxer, DemuxerConfig, Muxer, MuxerConfig};
use tributary_testkit::{ClipSpec, cached_clip};

fn mpegts(c: &mut Criterion) {
    for (name, ts) in inputs() {
        let arrival = Instant::now();
        let demuxed = demux_all(&ts, UDP_CHUNK, arrival);
        assert_eq!(demuxed.errors, 0, "{name}: the capture demuxes with errors");
        let tracks = mux_tracks(&demuxed.tracks);
        let config = MuxerConfig {
            tracks,
            ..MuxerConfig::default()
        };
        let (muxed, rejected) = mux_all(&mut Muxer::new(config.clone()).unwrap(), &demuxed.frames);
        assert_eq!(rejected, 0, "{name}: the muxer rejected frames");
        eprintln!(
            "{name}: {} bytes of TS in, {} frames ({} tracks), {muxed} bytes of TS out",
            ts.len(),
            demuxed.frames.len(),
            demuxed.tracks.len(),
        );

        let mut group = c.benchmark_group("mpegts");
        group.throughput(Throughput::BytesDecimal(ts.len() as u64));
        group.bench_function(format!("demux/{name}"), |b| {
            b.iter(|| {
                let mut demuxer = Demuxer::new(DemuxerConfig::default());
                let mut events = 0usize;
                for piece in ts.chunks(UDP_CHUNK) {
                    demuxer.push(piece, arrival);
                    while let Some(event) = demuxer.pull() {
                        black_box(event.is_ok());
                        events += 1;
                    }
                }
                demuxer.flush();
                while let Some(event) = demuxer.pull() {
                    black_box(event.is_ok());
                    events += 1;
                }
                events
            });
        });
        group.throughput(Throughput::BytesDecimal(muxed as u64));
        group.bench_function(format!("mux/{name}"), |b| {
            b.iter(|| {
                let mut muxer = Muxer::new(config.clone()).unwrap();
                mux_all(&mut muxer, black_box(&demuxed.frames))
            });
        });
        group.finish();
    }
}

/// `(name, bytes)` of each input.
fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    let spec = ClipSpec {
        bframes: 2,
        ..ClipSpec::default()
    };
    let clip = cached_clip(&spec, "ts").expect("encoding the 720p30 bench clip with ffmpeg");
    let committed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/mpegts/testdata/ffmpeg_h264_aac.ts");
    vec![("720p30", read(&clip)), ("240p25", read(&committed))]
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

criterion_group!(benches, mpegts);
criterion_main!(benches);
