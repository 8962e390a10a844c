//! Mux then demux: arbitrary frames in, the same frames out.

use bytes::Bytes;
use proptest::prelude::*;
use tributary_media::{Codec, Frame, SessionId, TrackId, Ts90};
use tributary_mpegts::{AacConfig, MuxTrack};

use crate::{demux, essence, mux};

/// One generated frame before timestamps are laid out: track index, dts step, pts offset,
/// keyframe, payload.
type Draft = (usize, i64, i64, bool, Vec<u8>);

/// The tracks of the generated stream: H.264 video, H.265 video, AAC, AC-3, MP2.
fn tracks() -> Vec<MuxTrack> {
    vec![
        MuxTrack::new(TrackId(0x100), Codec::H264).with_pid(0x100),
        MuxTrack::new(TrackId(0x101), Codec::Aac)
            .with_pid(0x101)
            .with_aac(AacConfig::new(2, 3, 2).expect("valid")),
        MuxTrack::new(TrackId(0x102), Codec::Ac3).with_pid(0x102),
        MuxTrack::new(TrackId(0x103), Codec::H265).with_pid(0x103),
        MuxTrack::new(TrackId(0x104), Codec::Mp2).with_pid(0x104),
    ]
}

/// A payload the demuxer reads back with the same keyframe flag: Annex-B pictures start with a
/// slice NAL of the right type; MPEG audio does not look like Layer III.
fn payload(codec: Codec, keyframe: bool, body: &[u8]) -> Vec<u8> {
    let mut p = match codec {
        Codec::H264 => vec![0, 0, 0, 1, if keyframe { 0x65 } else { 0x41 }],
        Codec::H265 => vec![0, 0, 0, 1, if keyframe { 0x26 } else { 0x02 }, 0x01],
        Codec::Mp2 => vec![0xFF, 0xFD],
        _ => vec![],
    };
    p.extend_from_slice(body);
    if p.is_empty() {
        p.push(0);
    }
    p
}

fn frames(start: i64, drafts: Vec<Draft>) -> Vec<Frame> {
    let tracks = tracks();
    let now = crate::arrival();
    // A track's first frame sits at `start` (below 2^33: the first timestamp of a track is
    // taken as it is, with nothing to unwrap against); later ones step from there.
    let mut dts: Vec<Option<i64>> = vec![None; tracks.len()];
    drafts
        .into_iter()
        .map(|(index, step, pts_offset, keyframe, body)| {
            let track = &tracks[index];
            let next = dts[index].map_or(start, |d| d + step);
            dts[index] = Some(next);
            let dts = next;
            let video = matches!(track.codec, Codec::H264 | Codec::H265);
            let keyframe = keyframe || !video;
            Frame {
                track: track.track,
                codec: track.codec,
                pts: Ts90(dts + if video { pts_offset } else { 0 }),
                dts: Ts90(dts),
                keyframe,
                session: SessionId(0),
                arrival: now,
                payload: Bytes::from(payload(track.codec, keyframe, &body)),
                config: None,
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn mux_then_demux_returns_the_same_frames(
        start in prop_oneof![0i64..1_000_000, (Ts90::WRAP_33 - 200_000)..Ts90::WRAP_33],
        drafts in prop::collection::vec(
            (0usize..5, 1i64..20_000, 0i64..20_000, any::<bool>(), prop::collection::vec(any::<u8>(), 0..3000)),
            1..40,
        ),
        chunk in 1usize..2000,
    ) {
        let frames = frames(start, drafts);
        let ts = mux(tracks(), &frames);
        let out = demux(&ts, chunk);
        prop_assert!(out.errors.is_empty(), "{:?}", out.errors);
        // Frames come out per track in order; across tracks, in PES completion order.
        let mut want = essence(&frames);
        let mut got = essence(&out.frames);
        want.sort_by_key(|f| f.0);
        got.sort_by_key(|f| f.0);
        prop_assert_eq!(got, want);
    }
}
