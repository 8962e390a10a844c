//! The fMP4 writer on arbitrary frames: a track is described from the first frame (AC-3 and
//! E-AC-3 syncframe headers, Opus TOCs, H.264/H.265 parameter sets, AV1 sequence headers, VP9
//! keyframe headers, AAC configs), every frame goes through the fragmenter (syncframe
//! splitting, parameter-set and temporal-delimiter stripping) and the init and
//! media segments come out with box sizes that add up (`tributary_packager::Fragmenter`).
#![no_main]

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tributary_media::{Codec, Frame, SessionId, TrackConfig, TrackId, Ts90};
use tributary_packager::{Fmp4Track, Fragmenter, write_init};

const CODECS: [Codec; 8] = [
    Codec::H264,
    Codec::H265,
    Codec::Aac,
    Codec::Opus,
    Codec::Ac3,
    Codec::Eac3,
    Codec::Av1,
    Codec::Vp9,
];

fuzz_target!(|data: &[u8]| {
    // [codec, frame length, ...payload]: the payload is cut into frames of that length.
    let [codec, len, rest @ ..] = data else {
        return;
    };
    let codec = CODECS[usize::from(*codec) % CODECS.len()];
    let len = usize::from(*len).max(1) * 8;
    let arrival = Instant::now();
    let config = (codec == Codec::Aac)
        .then(|| TrackConfig::aac(Bytes::copy_from_slice(rest.get(..2).unwrap_or(&[0x11, 0x90]))))
        .flatten()
        .map(Arc::new);
    let frames: Vec<Frame> = rest
        .chunks(len)
        .enumerate()
        .map(|(i, chunk)| Frame {
            track: TrackId(1),
            codec,
            pts: Ts90(i as i64 * 3000 + i64::from(chunk[0])),
            dts: Ts90(i as i64 * 3000),
            keyframe: i % 4 == 0,
            session: SessionId(1),
            arrival,
            payload: Bytes::copy_from_slice(chunk),
            config: config.clone(),
        })
        .collect();
    let Some(first) = frames.first() else {
        return;
    };
    let Ok(track) = Fmp4Track::from_frame(1, first) else {
        return;
    };
    let mut init = BytesMut::new();
    write_init(std::slice::from_ref(&track), &mut init);
    assert_eq!(&init[4..8], b"ftyp", "ftyp first");
    let mut fragmenter = Fragmenter::new(&[track]);
    for frame in &frames {
        let _ = fragmenter.push(0, frame);
    }
    let empty = fragmenter.is_empty();
    let mut out = BytesMut::new();
    fragmenter.write(1, &mut out);
    if empty {
        assert!(out.is_empty());
        return;
    }
    let moof = size_of_box(&out);
    let mdat = size_of_box(&out[moof..]);
    assert_eq!(moof + mdat, out.len(), "moof and mdat cover the segment");
});

fn size_of_box(bytes: &[u8]) -> usize {
    u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize
}
