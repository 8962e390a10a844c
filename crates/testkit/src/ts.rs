//! MPEG-TS as a hostile sender writes it.

use std::time::Instant;

use tributary_media::{Codec, Frame, SessionId, TrackId, Ts90};
use tributary_mpegts::{MuxTrack, Muxer, MuxerConfig};

/// A PMT listing `pids` H.264 tracks (at most 33: one PMT packet) and, on each, one video PES
/// of about `bytes` that never ends: video PES carry no length, so a demuxer holds each until
/// the next PES starts on its PID, which never comes.
pub fn unterminated_pes_flood(pids: u16, bytes: usize) -> Vec<u8> {
    let tracks: Vec<TrackId> = (0..pids).map(|i| TrackId(0x200 + i)).collect();
    let config = MuxerConfig {
        tracks: tracks
            .iter()
            .map(|&t| MuxTrack::new(t, Codec::H264).with_pid(t.0))
            .collect(),
        ..MuxerConfig::default()
    };
    let mut muxer = Muxer::new(config).expect("a PMT of at most 33 tracks");
    // An arrival stamp the muxer ignores.
    let arrival = Instant::now();
    let mut picture = vec![0, 0, 0, 1, 0x65];
    picture.resize(bytes, 0x80);
    let picture = bytes::Bytes::from(picture);
    let mut ts = Vec::new();
    for &track in &tracks {
        muxer.push(&Frame {
            track,
            codec: Codec::H264,
            pts: Ts90(90_000),
            dts: Ts90(90_000),
            keyframe: true,
            session: SessionId(0),
            arrival,
            payload: picture.clone(),
            config: None,
        });
        while let Some(chunk) = muxer.pull() {
            ts.extend_from_slice(&chunk.expect("muxing a well-formed frame"));
        }
    }
    ts
}
