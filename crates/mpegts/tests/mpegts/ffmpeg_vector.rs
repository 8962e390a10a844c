//! The committed ffmpeg capture (testdata/README.md).

use tributary_media::{Codec, TrackId};
use tributary_mpegts::{AacConfig, Carriage};

use crate::{demux, essence, mux, mux_tracks};

const FFMPEG_H264_AAC: &[u8] = include_bytes!("../../testdata/ffmpeg_h264_aac.ts");

#[test]
fn demuxes_ffmpeg_h264_aac() {
    for chunk in [188, 1316, 4096, 777] {
        let out = demux(FFMPEG_H264_AAC, chunk);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        let carriage: Vec<_> = out.tracks.iter().map(|t| (t.track, t.carriage)).collect();
        assert_eq!(
            carriage,
            vec![
                (TrackId(0x100), Carriage::Carried(Codec::H264)),
                (TrackId(0x101), Carriage::Carried(Codec::Aac)),
            ]
        );
        assert_eq!(
            out.tracks[1].aac,
            AacConfig::new(2, 4, 1),
            "LC, 44.1 kHz, mono"
        );

        let video: Vec<_> = out
            .frames
            .iter()
            .filter(|f| f.codec == Codec::H264)
            .collect();
        let audio: Vec<_> = out
            .frames
            .iter()
            .filter(|f| f.codec == Codec::Aac)
            .collect();
        assert_eq!(video.len(), 50);
        assert_eq!(audio.len(), 88, "as ffprobe counts");
        let keyframes: Vec<usize> = (0..video.len()).filter(|&i| video[i].keyframe).collect();
        assert_eq!(keyframes, vec![0, 25], "-g 25");
        // ffprobe: first picture PTS 133200, DTS 126000 (two B-frames); 25 fps.
        assert_eq!((video[0].pts.0, video[0].dts.0), (133_200, 126_000));
        assert!(video.windows(2).all(|w| w[1].dts.0 - w[0].dts.0 == 3600));
        assert!(video.iter().any(|f| f.pts != f.dts));
        assert!(video.iter().all(|f| f.payload.starts_with(&[0, 0, 0, 1])));
        assert!(audio.iter().all(|f| f.keyframe && f.pts == f.dts));
    }
}

#[test]
fn remuxes_ffmpeg_h264_aac_to_identical_frames() {
    let first = demux(FFMPEG_H264_AAC, 1316);
    let ts = mux(mux_tracks(&first.tracks), &first.frames);
    assert_eq!(ts.len() % 188, 0);
    let second = demux(&ts, 1316);
    assert!(second.errors.is_empty(), "{:?}", second.errors);
    assert_eq!(second.tracks, first.tracks);
    // Per track in the same order; across tracks the order follows PES completion, which
    // depends on how the packets of the tracks interleave.
    let (mut got, mut want) = (essence(&second.frames), essence(&first.frames));
    got.sort_by_key(|f| f.0);
    want.sort_by_key(|f| f.0);
    assert_eq!(got, want);
}
