use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use mp4_atom::{Any, Codec as Entry, Decode, Mdat, Moof, Moov};
use proptest::prelude::*;
use tributary_media::{Codec, Frame, SessionId, TrackConfig, TrackId, Ts90};

use super::*;

/// x264 High 1280x720: SPS, PPS, SEI and an IDR slice (crates/media/testdata/README.md).
const X264_KEYFRAME: &[u8] =
    include_bytes!("../../../media/testdata/ffmpeg_x264_high_1280x720_30fps.h264");
/// x265 Main 1280x720: VPS, SPS, PPS, SEI and an IDR slice.
const X265_KEYFRAME: &[u8] =
    include_bytes!("../../../media/testdata/ffmpeg_x265_main_1280x720_30fps.h265");
/// AAC LC, 48 kHz, stereo.
const ASC_LC: &[u8] = &[0x11, 0x90];
/// HE-AACv2 signalled hierarchically: object type 29, 24 kHz core, mono, 48 kHz SBR.
const ASC_HE_V2: &[u8] = &[0xeb, 0x09, 0x88, 0x00];

#[expect(
    clippy::disallowed_methods,
    reason = "an arrival stamp frames must carry, never read by the writer"
)]
fn arrival() -> Instant {
    Instant::now()
}

fn frame(codec: Codec, dts: i64, pts: i64, keyframe: bool, payload: Bytes) -> Frame {
    Frame {
        track: TrackId(1),
        codec,
        pts: Ts90(pts),
        dts: Ts90(dts),
        keyframe,
        session: SessionId(1),
        arrival: arrival(),
        payload,
        config: None,
    }
}

fn aac(dts: i64, asc: &'static [u8], payload: Bytes) -> Frame {
    Frame {
        config: TrackConfig::aac(Bytes::from_static(asc)).map(Arc::new),
        ..frame(Codec::Aac, dts, dts, true, payload)
    }
}

/// A non-IDR slice of `len` bytes after its header, with no zero byte (no false start code).
fn slice(h265: bool, seed: u8, len: usize) -> Bytes {
    let mut out = vec![0, 0, 0, 1];
    if h265 {
        out.extend_from_slice(&[0x02, 0x01]); // TRAIL_R
    } else {
        out.push(0x41);
    }
    out.extend((0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed) | 1));
    Bytes::from(out)
}

/// A fixed sequence: 1 s of 30 fps video with B-frame-like composition offsets (a keyframe at
/// 0 and at 0.5 s) and 48 kHz AAC, cut in two segments at the second keyframe.
fn h264_aac_sequence() -> (Vec<Fmp4Track>, Vec<(usize, Frame)>) {
    let mut frames = Vec::new();
    for i in 0..30 {
        let key = i % 15 == 0;
        let payload = if key {
            Bytes::from_static(X264_KEYFRAME)
        } else {
            slice(false, i as u8, 40 + i)
        };
        let dts = i as i64 * 3000;
        let pts = dts + if key { 3000 } else { 6000 * (i as i64 % 2) };
        frames.push((0, frame(Codec::H264, dts, pts, key, payload)));
        if i % 2 == 0 {
            for j in 0..3 {
                let n = (i / 2) * 3 + j;
                let dts = n as i64 * 1920;
                let payload = Bytes::from(vec![0x21, n as u8, 0x04, 0x80]);
                frames.push((1, aac(dts, ASC_LC, payload)));
            }
        }
    }
    let tracks = vec![
        Fmp4Track::from_frame(1, &frames[0].1).unwrap(),
        Fmp4Track::from_frame(2, &frames[1].1).unwrap(),
    ];
    (tracks, frames)
}

/// Init and two media segments of a sequence, cut at the video keyframe at 0.5 s.
fn package(tracks: &[Fmp4Track], frames: &[(usize, Frame)]) -> (Bytes, Vec<Bytes>) {
    let mut init = BytesMut::new();
    write_init(tracks, &mut init);
    let mut fragmenter = Fragmenter::new(tracks);
    let mut segments = Vec::new();
    let mut sequence = 1;
    for (index, frame) in frames {
        if *index == 0 && frame.keyframe && !fragmenter.is_empty() {
            let mut out = BytesMut::new();
            fragmenter.write(sequence, &mut out);
            sequence += 1;
            segments.push(out.freeze());
        }
        fragmenter.push(*index, frame).unwrap();
    }
    let mut out = BytesMut::new();
    fragmenter.write(sequence, &mut out);
    segments.push(out.freeze());
    (init.freeze(), segments)
}

/// Compares `actual` with the committed golden file; on a difference writes `<name>.new`
/// beside it (review it, then rename it over the old one) and fails.
fn golden(name: &str, expected: &[u8], actual: &[u8]) {
    if expected != actual {
        let path = format!("{}/testdata/fmp4/{name}.new", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(&path, actual).expect("writing the new golden file");
        panic!("{name} differs from the golden file; the new bytes are in {path}");
    }
}

#[test]
fn a_fixed_h264_aac_sequence_yields_the_golden_segments() {
    let (tracks, frames) = h264_aac_sequence();
    let (init, segments) = package(&tracks, &frames);
    assert_eq!(segments.len(), 2);
    golden(
        "h264_aac_init.mp4",
        include_bytes!("../../testdata/fmp4/h264_aac_init.mp4"),
        &init,
    );
    golden(
        "h264_aac_seg_1.m4s",
        include_bytes!("../../testdata/fmp4/h264_aac_seg_1.m4s"),
        &segments[0],
    );
    golden(
        "h264_aac_seg_2.m4s",
        include_bytes!("../../testdata/fmp4/h264_aac_seg_2.m4s"),
        &segments[1],
    );
}

#[test]
fn a_fixed_h265_opus_sequence_yields_the_golden_segments() {
    let mut frames = Vec::new();
    for i in 0..20 {
        let key = i % 10 == 0;
        let payload = if key {
            Bytes::from_static(X265_KEYFRAME)
        } else {
            slice(true, i as u8, 30 + i)
        };
        let dts = i as i64 * 3600;
        frames.push((0, frame(Codec::H265, dts, dts, key, payload)));
        // 20 ms stereo Opus packets (TOC config 1... CELT 20 ms: 0xfc).
        let packet = Bytes::from(vec![0xfc, i as u8, 0xaa]);
        frames.push((
            1,
            frame(Codec::Opus, i as i64 * 1800, i as i64 * 1800, true, packet),
        ));
    }
    let tracks = vec![
        Fmp4Track::from_frame(1, &frames[0].1).unwrap(),
        Fmp4Track::from_frame(2, &frames[1].1).unwrap(),
    ];
    let (init, segments) = package(&tracks, &frames);
    golden(
        "h265_opus_init.mp4",
        include_bytes!("../../testdata/fmp4/h265_opus_init.mp4"),
        &init,
    );
    golden(
        "h265_opus_seg_1.m4s",
        include_bytes!("../../testdata/fmp4/h265_opus_seg_1.m4s"),
        &segments[0],
    );
}

#[test]
fn init_segments_parse_back_with_every_configuration_box() {
    let (tracks, _) = h264_aac_sequence();
    let h265 = Fmp4Track::from_frame(
        3,
        &frame(Codec::H265, 0, 0, true, Bytes::from_static(X265_KEYFRAME)),
    )
    .unwrap();
    let he = Fmp4Track::from_frame(4, &aac(0, ASC_HE_V2, Bytes::from_static(&[1]))).unwrap();
    let opus = Fmp4Track::from_frame(
        5,
        &frame(Codec::Opus, 0, 0, true, Bytes::from_static(&[0x78, 1])),
    )
    .unwrap();
    let ac3_frame = [0x0B, 0x77, 0, 0, 0x14, 0x40, 0b0100_0000, 0];
    let ac3 = Fmp4Track::from_frame(
        6,
        &frame(Codec::Ac3, 0, 0, true, Bytes::copy_from_slice(&ac3_frame)),
    )
    .unwrap();
    let eac3_frame = [0x0B, 0x77, 0x02, 0xFF, 0b0011_1111, 0b1000_0000, 0, 0];
    let eac3 = Fmp4Track::from_frame(
        7,
        &frame(Codec::Eac3, 0, 0, true, Bytes::copy_from_slice(&eac3_frame)),
    )
    .unwrap();
    let all = [
        tracks[0].clone(),
        tracks[1].clone(),
        h265,
        he,
        opus,
        ac3,
        eac3,
    ];
    let mut init = BytesMut::new();
    write_init(&all, &mut init);
    let mut buf = &init[..];
    let Any::Ftyp(ftyp) = Any::decode(&mut buf).unwrap() else {
        panic!("ftyp first");
    };
    assert_eq!(ftyp.major_brand, b"iso6".into());
    let moov = Moov::decode(&mut buf).unwrap();
    assert!(buf.is_empty(), "nothing after moov");
    assert_eq!(moov.trak.len(), 7);
    assert_eq!(moov.mvex.as_ref().unwrap().trex.len(), 7);
    let entry = |i: usize| &moov.trak[i].mdia.minf.stbl.stsd.codecs[0];
    let timescale = |i: usize| moov.trak[i].mdia.mdhd.timescale;

    let Entry::Avc1(avc1) = entry(0) else {
        panic!("avc1: {:?}", entry(0));
    };
    assert_eq!((avc1.visual.width, avc1.visual.height), (1280, 720));
    assert_eq!(avc1.avcc.avc_profile_indication, 100);
    assert_eq!(avc1.avcc.length_size, 4);
    assert_eq!(avc1.avcc.sequence_parameter_sets.len(), 1);
    assert_eq!(timescale(0), 90_000);

    let Entry::Mp4a(mp4a) = entry(1) else {
        panic!("mp4a: {:?}", entry(1));
    };
    assert_eq!(mp4a.audio.channel_count, 2);
    let specific = mp4a.esds.es_desc.dec_config.dec_specific.as_ref().unwrap();
    assert_eq!(specific.profile, 2);
    assert_eq!(mp4a.esds.es_desc.dec_config.object_type_indication, 0x40);
    assert_eq!(timescale(1), 48_000);

    let Entry::Hvc1(hvc1) = entry(2) else {
        panic!("hvc1: {:?}", entry(2));
    };
    assert_eq!((hvc1.visual.width, hvc1.visual.height), (1280, 720));
    assert_eq!(hvc1.hvcc.general_profile_idc, 1);
    assert_eq!(hvc1.hvcc.general_level_idc, 93);
    let types: Vec<u8> = hvc1.hvcc.arrays.iter().map(|a| a.nal_unit_type).collect();
    assert_eq!(types, [32, 33, 34]);

    // HE-AACv2: the hierarchical signalling is kept; the entry says 48 kHz stereo.
    let Entry::Mp4a(he) = entry(3) else {
        panic!("mp4a: {:?}", entry(3));
    };
    assert_eq!(he.audio.channel_count, 2);
    assert_eq!(he.audio.sample_rate.integer(), 48_000);
    assert_eq!(timescale(3), 48_000);
    let specific = he.esds.es_desc.dec_config.dec_specific.as_ref().unwrap();
    assert_eq!(specific.profile, 29, "object type 29 stays signalled");

    let Entry::Opus(opus) = entry(4) else {
        panic!("Opus: {:?}", entry(4));
    };
    assert_eq!(opus.dops.output_channel_count, 1);
    assert_eq!(opus.dops.input_sample_rate, 48_000);
    assert_eq!(timescale(4), 48_000);

    let Entry::Ac3(ac3) = entry(5) else {
        panic!("ac-3: {:?}", entry(5));
    };
    assert_eq!(
        (
            ac3.dac3.fscod,
            ac3.dac3.bsid,
            ac3.dac3.acmod,
            ac3.dac3.bit_rate_code
        ),
        (0, 8, 2, 10)
    );
    assert_eq!(ac3.audio.channel_count, 2);

    let Entry::Eac3(eac3) = entry(6) else {
        panic!("ec-3: {:?}", entry(6));
    };
    assert_eq!(eac3.dec3.data_rate, 384);
    let sub = &eac3.dec3.substreams[0];
    assert_eq!((sub.bsid, sub.acmod, sub.lfeon), (16, 7, true));
    assert_eq!(eac3.audio.channel_count, 6);
}

#[test]
fn parameter_sets_and_delimiters_leave_the_samples() {
    let (tracks, frames) = h264_aac_sequence();
    let (_, segments) = package(&tracks, &frames);
    let (moof, mdat) = parse_segment(&segments[0]);
    let trun = &moof.traf[0].trun[0];
    let first = trun.samples.get(0).unwrap();
    let offset = trun.data_offset.unwrap() as usize - moof_len(&segments[0]) - 8;
    let sample = &mdat[offset..offset + first.size.unwrap() as usize];
    let types: Vec<u8> = nal::avcc_nals(sample, tributary_media::codec::LengthSize::FOUR)
        .map(|n| n.unwrap()[0] & 0x1f)
        .collect();
    assert!(!types.contains(&7) && !types.contains(&8), "{types:?}");
    assert!(types.contains(&5), "the IDR slice stays: {types:?}");
    assert_eq!(first.flags, Some(SYNC_FLAGS));
}

#[test]
fn a_keyframe_with_other_parameter_sets_asks_for_a_new_init() {
    let (tracks, _) = h264_aac_sequence();
    let mut fragmenter = Fragmenter::new(&tracks);
    let other = include_bytes!("../../../media/testdata/ffmpeg_x264_baseline_320x240_15fps.h264");
    let keyframe = frame(Codec::H264, 0, 0, true, Bytes::from_static(other));
    assert!(!tracks[0].fits(&keyframe));
    assert_eq!(
        fragmenter.push(0, &keyframe),
        Err(Fmp4Error::ConfigChanged { codec: Codec::H264 })
    );
    assert!(fragmenter.is_empty());
    let same = frame(Codec::H264, 0, 0, true, Bytes::from_static(X264_KEYFRAME));
    assert!(tracks[0].fits(&same));
    assert_eq!(
        fragmenter.push(1, &same),
        Err(Fmp4Error::NoTrack { codec: Codec::H264 })
    );
}

#[test]
fn bundled_ac3_syncframes_become_one_sample_each() {
    let mut bundle = Vec::new();
    for i in 0..3u8 {
        let mut syncframe = vec![0u8; 768];
        syncframe[..8].copy_from_slice(&[0x0B, 0x77, 0, i, 0x14, 0x40, 0b0100_0000, 0]);
        bundle.extend_from_slice(&syncframe);
    }
    let first = frame(Codec::Ac3, 9000, 9000, true, Bytes::from(bundle));
    let track = Fmp4Track::from_frame(1, &first).unwrap();
    let mut fragmenter = Fragmenter::new(&[track]);
    fragmenter.push(0, &first).unwrap();
    let mut out = BytesMut::new();
    fragmenter.write(7, &mut out);
    let (moof, mdat) = parse_segment(&out);
    assert_eq!(moof.mfhd.sequence_number, 7);
    let traf = &moof.traf[0];
    assert_eq!(traf.tfdt.as_ref().unwrap().base_media_decode_time, 4800);
    let entries: Vec<_> = traf.trun[0].samples.iter().collect();
    assert_eq!(entries.len(), 3);
    assert!(
        entries
            .iter()
            .all(|e| e.size == Some(768) && e.duration == Some(1536))
    );
    assert_eq!(mdat.len(), 3 * 768);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random sample tables (sizes, decode steps, composition offsets, sync flags) for a video
    /// and an audio track: what mp4-atom reads back is what was written, and each trun's
    /// data offset points at its samples' bytes.
    #[test]
    fn random_sample_tables_parse_back(
        video in prop::collection::vec((1i64..9000, 0i64..20_000, any::<bool>(), 1usize..3000), 1..40),
        audio in prop::collection::vec((100i64..4000, 1usize..800), 0..60),
        start in 0i64..1 << 40,
        sequence in any::<u32>(),
    ) {
        let (tracks, _) = h264_aac_sequence();
        let mut fragmenter = Fragmenter::new(&tracks);
        let mut want_video = Vec::new();
        let mut dts = start;
        for (i, &(step, cts, key, len)) in video.iter().enumerate() {
            let payload = slice(false, i as u8, len);
            fragmenter.push(0, &frame(Codec::H264, dts, dts + cts, key, payload.clone())).unwrap();
            want_video.push((dts, cts, key, payload));
            dts += step;
        }
        let mut want_audio = Vec::new();
        let mut dts = start;
        for (i, &(step, len)) in audio.iter().enumerate() {
            let payload = Bytes::from(vec![i as u8; len]);
            fragmenter.push(1, &aac(dts, ASC_LC, payload.clone())).unwrap();
            want_audio.push((dts, payload));
            dts += step;
        }
        let mut out = BytesMut::new();
        fragmenter.write(sequence, &mut out);
        prop_assert!(fragmenter.is_empty());
        let (moof, mdat) = parse_segment(&out);
        let mdat_start = moof_len(&out) + 8;
        prop_assert_eq!(moof.mfhd.sequence_number, sequence);
        prop_assert_eq!(moof.traf.len(), if audio.is_empty() { 1 } else { 2 });

        let video_traf = &moof.traf[0];
        prop_assert_eq!(video_traf.tfhd.track_id, 1);
        prop_assert!(video_traf.tfhd.default_base_is_moof);
        prop_assert_eq!(video_traf.tfdt.as_ref().unwrap().base_media_decode_time, start as u64);
        let trun = &video_traf.trun[0];
        let mut at = trun.data_offset.unwrap() as usize - mdat_start;
        let entries: Vec<_> = trun.samples.iter().collect();
        prop_assert_eq!(entries.len(), want_video.len());
        for (i, (entry, (dts, cts, key, payload))) in entries.iter().zip(&want_video).enumerate() {
            let duration = match want_video.get(i + 1) {
                Some(next) => next.0 - dts,
                None if i > 0 => dts - want_video[i - 1].0,
                None => 3000,
            };
            prop_assert_eq!(entry.duration, Some(duration as u32));
            prop_assert_eq!(entry.cts, Some(*cts));
            prop_assert_eq!(entry.flags, Some(if *key { SYNC_FLAGS } else { NON_SYNC_FLAGS }));
            let size = entry.size.unwrap() as usize;
            prop_assert_eq!(size, payload.len());
            prop_assert_eq!(&mdat[at + 4..at + size], &payload[4..]);
            at += size;
        }

        if let Some(audio_traf) = moof.traf.get(1) {
            prop_assert_eq!(audio_traf.tfhd.track_id, 2);
            prop_assert_eq!(audio_traf.tfhd.default_sample_flags, Some(SYNC_FLAGS));
            let time = |dts: i64| dts * 48_000 / 90_000;
            prop_assert_eq!(
                audio_traf.tfdt.as_ref().unwrap().base_media_decode_time,
                time(start) as u64
            );
            let trun = &audio_traf.trun[0];
            let mut at = trun.data_offset.unwrap() as usize - mdat_start;
            let entries: Vec<_> = trun.samples.iter().collect();
            prop_assert_eq!(entries.len(), want_audio.len());
            for (i, (entry, (dts, payload))) in entries.iter().zip(&want_audio).enumerate() {
                let duration = match want_audio.get(i + 1) {
                    Some(next) => time(next.0) - time(*dts),
                    None if i > 0 => time(*dts) - time(want_audio[i - 1].0),
                    None => 1024,
                };
                prop_assert_eq!(entry.duration, Some(duration as u32));
                let size = entry.size.unwrap() as usize;
                prop_assert_eq!(&mdat[at..at + size], &payload[..]);
                at += size;
            }
            prop_assert_eq!(at, mdat.len());
        }
    }
}

/// A media segment as mp4-atom reads it: its moof and its mdat's payload.
fn parse_segment(bytes: &[u8]) -> (Moof, Vec<u8>) {
    let mut buf = bytes;
    let moof = Moof::decode(&mut buf).expect("a moof");
    let mdat = Mdat::decode(&mut buf).expect("an mdat");
    assert!(buf.is_empty(), "nothing after the mdat");
    (moof, mdat.data)
}

/// The size of the moof a segment starts with.
fn moof_len(bytes: &[u8]) -> usize {
    u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize
}

/// libaom AV1 Main 320x180, 10 frames, keyframes at 0 and 5 (crates/media/testdata).
const AV1_STREAM: &[u8] =
    include_bytes!("../../../media/testdata/ffmpeg_libaom_320x180_30fps_10f.obu");
/// The same picture in 10 bits: another sequence header.
const AV1_MAIN10: &[u8] =
    include_bytes!("../../../media/testdata/ffmpeg_libaom_main10_320x180_1f.obu");
/// libvpx VP9 profile 0 320x180, 10 frames, keyframes at 0 and 5.
const VP9_IVF: &[u8] =
    include_bytes!("../../../media/testdata/ffmpeg_libvpx_vp9_320x180_30fps_10f.ivf");
/// libvpx VP9 profile 1 (4:4:4), one keyframe.
const VP9_444_IVF: &[u8] =
    include_bytes!("../../../media/testdata/ffmpeg_libvpx_vp9_444_320x180_1f.ivf");

/// The frames of an AV1 (`-f obu`) or VP9 (`-f ivf`) test vector at 30 fps.
fn coded_frames(codec: Codec, file: &'static [u8]) -> Vec<Frame> {
    let units: Vec<&[u8]> = if codec == Codec::Av1 {
        av1::temporal_units(file).collect()
    } else {
        vp9::ivf_frames(file).collect()
    };
    units
        .into_iter()
        .enumerate()
        .map(|(i, unit)| {
            let key = if codec == Codec::Av1 {
                av1::is_keyframe(unit)
            } else {
                vp9::is_keyframe(unit)
            };
            let dts = i as i64 * 3000;
            frame(codec, dts, dts, key, Bytes::copy_from_slice(unit))
        })
        .collect()
}

#[test]
fn av1_and_vp9_sequences_yield_the_golden_segments() {
    for (codec, file, name) in [
        (Codec::Av1, AV1_STREAM, "av1"),
        (Codec::Vp9, VP9_IVF, "vp9"),
    ] {
        let frames: Vec<(usize, Frame)> = coded_frames(codec, file)
            .into_iter()
            .map(|f| (0, f))
            .collect();
        let tracks = vec![Fmp4Track::from_frame(1, &frames[0].1).unwrap()];
        let (init, segments) = package(&tracks, &frames);
        assert_eq!(segments.len(), 2, "{name}: cut at the keyframe at 5");
        let dir = format!("{}/testdata/fmp4", env!("CARGO_MANIFEST_DIR"));
        let read = |file: &str| std::fs::read(format!("{dir}/{file}")).unwrap_or_default();
        golden(
            &format!("{name}_init.mp4"),
            &read(&format!("{name}_init.mp4")),
            &init,
        );
        for (i, segment) in segments.iter().enumerate() {
            let file = format!("{name}_seg_{}.m4s", i + 1);
            golden(&file, &read(&file), segment);
        }
    }
}

#[test]
fn av1_and_vp9_init_segments_parse_back() {
    let av1_frames = coded_frames(Codec::Av1, AV1_STREAM);
    let vp9_frames = coded_frames(Codec::Vp9, VP9_IVF);
    let av1_track = Fmp4Track::from_frame(1, &av1_frames[0]).unwrap();
    let vp9_track = Fmp4Track::from_frame(2, &vp9_frames[0]).unwrap();
    assert_eq!(av1_track.codec_string(), "av01.0.00M.08");
    assert_eq!(vp9_track.codec_string(), "vp09.00.11.08");
    let mut init = BytesMut::new();
    write_init(&[av1_track.clone(), vp9_track.clone()], &mut init);
    let mut buf = &init[..];
    let Any::Ftyp(_) = Any::decode(&mut buf).unwrap() else {
        panic!("ftyp first");
    };
    let moov = Moov::decode(&mut buf).unwrap();
    let entry = |i: usize| &moov.trak[i].mdia.minf.stbl.stsd.codecs[0];

    let Entry::Av01(av01) = entry(0) else {
        panic!("av01: {:?}", entry(0));
    };
    assert_eq!((av01.visual.width, av01.visual.height), (320, 180));
    let av1c = &av01.av1c;
    assert_eq!((av1c.seq_profile, av1c.seq_level_idx_0), (0, 0));
    assert!(!av1c.high_bitdepth && av1c.chroma_subsampling_x && av1c.chroma_subsampling_y);
    let (_, sequence_header) = av1::SequenceHeader::find(AV1_STREAM).unwrap();
    assert_eq!(
        av1c.config_obus, sequence_header,
        "configOBUs: the sequence header"
    );

    let Entry::Vp09(vp09) = entry(1) else {
        panic!("vp09: {:?}", entry(1));
    };
    assert_eq!((vp09.visual.width, vp09.visual.height), (320, 180));
    let vpcc = &vp09.vpcc;
    assert_eq!((vpcc.profile, vpcc.level, vpcc.bit_depth), (0, 11, 8));
    assert_eq!(vpcc.chroma_subsampling, 0);

    // Samples: temporal units without their delimiter (the keyframe starts with its sequence
    // header), VP9 frames as they came; sync flags on the keyframes only.
    let mut fragmenter = Fragmenter::new(&[av1_track, vp9_track]);
    for (a, v) in av1_frames.iter().zip(&vp9_frames).take(5) {
        fragmenter.push(0, a).unwrap();
        fragmenter.push(1, v).unwrap();
    }
    let mut segment = BytesMut::new();
    fragmenter.write(1, &mut segment);
    let (moof, mdat) = parse_segment(&segment);
    let runs: Vec<_> = moof.traf.iter().map(|t| &t.trun[0].samples).collect();
    let flags: Vec<Vec<bool>> = runs
        .iter()
        .map(|r| r.iter().map(|e| e.flags == Some(SYNC_FLAGS)).collect())
        .collect();
    assert_eq!(flags, [[true, false, false, false, false]; 2]);
    let av1_sizes: Vec<usize> = runs[0].iter().map(|e| e.size.unwrap() as usize).collect();
    let expected: Vec<usize> = av1_frames[..5]
        .iter()
        .map(|f| f.payload.len() - 2)
        .collect();
    assert_eq!(
        av1_sizes, expected,
        "each unit loses its 2-byte temporal delimiter"
    );
    assert_eq!(&mdat[..sequence_header.len()], sequence_header);
    let av1_bytes: usize = av1_sizes.iter().sum();
    assert_eq!(&mdat[av1_bytes..av1_bytes + 8], &vp9_frames[0].payload[..8]);
}

#[test]
fn av1_and_vp9_keyframes_with_another_configuration_ask_for_a_new_init() {
    for (codec, first, other) in [
        (Codec::Av1, AV1_STREAM, AV1_MAIN10),
        (Codec::Vp9, VP9_IVF, VP9_444_IVF),
    ] {
        let frames = coded_frames(codec, first);
        let track = Fmp4Track::from_frame(1, &frames[0]).unwrap();
        let changed = Frame {
            dts: Ts90(30_000),
            pts: Ts90(30_000),
            ..coded_frames(codec, other).remove(0)
        };
        assert!(track.fits(&frames[5]), "{codec}: the same configuration");
        assert!(!track.fits(&changed), "{codec}");
        let mut fragmenter = Fragmenter::new(&[track]);
        fragmenter.push(0, &frames[0]).unwrap();
        assert_eq!(
            fragmenter.push(0, &changed),
            Err(Fmp4Error::ConfigChanged { codec })
        );
        // Without a keyframe there is nothing to describe the track from.
        assert_eq!(
            Fmp4Track::from_frame(1, &frames[1]),
            Err(Fmp4Error::NoParameterSets { codec })
        );
    }
}
