//! Integration tests of tributary-mpegts: committed captures, round trips, malformed input.

mod ffmpeg_vector;
mod malformed;
mod roundtrip;

use std::time::Instant;

use tributary_media::Frame;
use tributary_mpegts::{
    Carriage, DemuxEvent, Demuxer, DemuxerConfig, Error, MuxTrack, Muxer, MuxerConfig, TrackInfo,
};

/// What a demuxer reported for a whole input.
#[derive(Debug, Default)]
struct Demuxed {
    /// The last track table.
    tracks: Vec<TrackInfo>,
    frames: Vec<Frame>,
    errors: Vec<Error>,
}

/// Demuxes `ts` pushed in `chunk`-byte pieces, then flushes.
fn demux(ts: &[u8], chunk: usize) -> Demuxed {
    let mut demuxer = Demuxer::new(DemuxerConfig::default());
    let mut out = Demuxed::default();
    let now = arrival();
    for piece in ts.chunks(chunk.max(1)) {
        demuxer.push(piece, now);
        drain(&mut demuxer, &mut out);
    }
    demuxer.flush();
    drain(&mut demuxer, &mut out);
    out
}

fn drain(demuxer: &mut Demuxer, out: &mut Demuxed) {
    while let Some(event) = demuxer.pull() {
        match event {
            Ok(DemuxEvent::Tracks { tracks, .. }) => out.tracks = tracks,
            Ok(DemuxEvent::Frame(frame)) => out.frames.push(frame),
            Err(e) => out.errors.push(e),
        }
    }
}

/// Some instant to stamp arrivals with; tests never compare it, so reading the clock here
/// keeps them deterministic.
#[expect(
    clippy::disallowed_methods,
    reason = "an arbitrary arrival stamp, never compared"
)]
fn arrival() -> Instant {
    Instant::now()
}

/// The muxer track table for what a demuxer found, PIDs kept.
fn mux_tracks(tracks: &[TrackInfo]) -> Vec<MuxTrack> {
    tracks
        .iter()
        .filter_map(|t| match t.carriage {
            Carriage::Carried(codec) => Some(MuxTrack {
                track: t.track,
                pid: Some(t.track.0),
                codec,
                aac: t.aac,
            }),
            Carriage::NotCarried(_) => None,
        })
        .collect()
}

/// Muxes frames; panics on a rejected frame.
fn mux(tracks: Vec<MuxTrack>, frames: &[Frame]) -> Vec<u8> {
    let mut muxer = Muxer::new(MuxerConfig {
        tracks,
        ..MuxerConfig::default()
    })
    .expect("valid track table");
    let mut ts = Vec::new();
    for frame in frames {
        muxer.push(frame);
        while let Some(chunk) = muxer.pull() {
            ts.extend_from_slice(&chunk.expect("frame accepted"));
        }
    }
    ts
}

/// The parts of a frame a round trip must keep.
fn essence(frames: &[Frame]) -> Vec<(u16, String, i64, i64, bool, Payload)> {
    frames
        .iter()
        .map(|f| {
            let codec = f.codec.to_string();
            let payload = Payload(f.payload.to_vec());
            (f.track.0, codec, f.pts.0, f.dts.0, f.keyframe, payload)
        })
        .collect()
}

/// A payload that prints as its length and first bytes, so failures stay readable.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Payload(Vec<u8>);

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let head = &self.0[..self.0.len().min(8)];
        write!(f, "{} bytes {head:02x?}", self.0.len())
    }
}
