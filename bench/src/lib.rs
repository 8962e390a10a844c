//! Criterion benches and whole-process comparison scripts (ARCHITECTURE.md §1, `bench/`).
//!
//! Not a default member of the workspace: build and run it explicitly.
//!
//! ```sh
//! cargo bench -p tributary-bench                       # every bench, full measurement
//! cargo bench -p tributary-bench --bench mpegts -- --quick
//! bench/scripts/udp-hls.sh 1 10 50                     # whole process: CPU and RSS per stream
//! ```
//!
//! - `benches/mpegts.rs`: TS demux and mux throughput (MB/s of TS) on a real ffmpeg capture.
//! - `benches/hub.rs`: hub fan-out (frames/s to 1, 10, 100 subscribers) and the writer's cost
//!   with subscribers that never read.
//! - `scripts/udp-hls.sh`: the server's CPU and memory for N UDP-in, HLS-out streams.
//!
//! Results, with their command lines and machine, go to `bench/RESULTS.md`.
//!
//! This library holds what the benches share: running the demuxer and muxer to completion
//! ([`demux_all`], [`mux_all`], [`mux_tracks`]) and synthetic frames for the hub
//! ([`synthetic_video`]). Inputs that need FFmpeg come from `tributary-testkit`
//! (a dev-dependency here).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::time::Instant;

use bytes::Bytes;
use tributary_media::{Codec, Frame, SessionId, TrackId, Ts90};
use tributary_mpegts::{Carriage, DemuxEvent, Demuxer, DemuxerConfig, MuxTrack, Muxer, TrackInfo};

/// What [`demux_all`] found in a transport stream.
#[derive(Debug, Clone, Default)]
pub struct Demuxed {
    /// The last track table announced.
    pub tracks: Vec<TrackInfo>,
    /// Every frame, in the order the demuxer emitted them.
    pub frames: Vec<Frame>,
    /// `Err` items pulled (damaged input); 0 for a clean capture.
    pub errors: usize,
}

/// Demuxes `ts` whole, pushed in `chunk`-byte pieces as a socket would deliver it, draining
/// after every push and flushing at the end.
pub fn demux_all(ts: &[u8], chunk: usize, arrival: Instant) -> Demuxed {
    let mut demuxer = Demuxer::new(DemuxerConfig::default());
    let mut out = Demuxed::default();
    for piece in ts.chunks(chunk) {
        demuxer.push(piece, arrival);
        drain(&mut demuxer, &mut out);
    }
    demuxer.flush();
    drain(&mut demuxer, &mut out);
    out
}

/// The muxer's track table for the carried tracks of `tracks`, on their original PIDs, with
/// the AAC parameters the demuxer read.
pub fn mux_tracks(tracks: &[TrackInfo]) -> Vec<MuxTrack> {
    tracks
        .iter()
        .filter_map(|info| {
            let Carriage::Carried(codec) = info.carriage else {
                return None;
            };
            let mut track = MuxTrack::new(info.track, codec).with_pid(info.track.0);
            if let Some(aac) = info.aac {
                track = track.with_aac(aac);
            }
            Some(track)
        })
        .collect()
}

/// Pushes every frame through `muxer`, draining after each; returns the TS bytes written and
/// the number of rejected frames.
pub fn mux_all(muxer: &mut Muxer, frames: &[Frame]) -> (usize, usize) {
    let (mut bytes, mut errors) = (0, 0);
    for frame in frames {
        muxer.push(frame);
        while let Some(item) = muxer.pull() {
            match item {
                Ok(chunk) => bytes += chunk.len(),
                Err(_) => errors += 1,
            }
        }
    }
    (bytes, errors)
}

/// `count` H.264 frames of a 30 fps stream (DTS step 3000 ticks), a keyframe every `gop`
/// frames, each carrying a clone of one `payload_len`-byte payload (a `Bytes` reference, as
/// the hub's frames are).
pub fn synthetic_video(count: usize, gop: usize, payload_len: usize) -> Vec<Frame> {
    let payload = Bytes::from(vec![0x5A; payload_len.max(1)]);
    let arrival = Instant::now();
    (0..count)
        .map(|i| {
            let dts = i64::try_from(i).unwrap_or(i64::MAX / 3000) * 3000;
            Frame {
                track: TrackId(0x100),
                codec: Codec::H264,
                pts: Ts90(dts),
                dts: Ts90(dts),
                keyframe: i % gop.max(1) == 0,
                session: SessionId(0),
                arrival,
                payload: payload.clone(),
                config: None,
            }
        })
        .collect()
}

fn drain(demuxer: &mut Demuxer, out: &mut Demuxed) {
    while let Some(event) = demuxer.pull() {
        match event {
            Ok(DemuxEvent::Tracks { tracks, .. }) => out.tracks = tracks,
            Ok(DemuxEvent::Frame(frame)) => out.frames.push(frame),
            Err(_) => out.errors += 1,
        }
    }
}

/// The number of bytes in one UDP datagram of TS as encoders send it (7 × 188).
pub const UDP_CHUNK: usize = 7 * tributary_mpegts::PACKET_LEN;
