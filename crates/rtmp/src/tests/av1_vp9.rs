//! Enhanced RTMP `av01` and `vp09`: a client publishes libaom and libvpx test vectors to a
//! server in memory, the demuxer's handling of AV1 sequence starts, and the play fan-out
//! leaving AV1 and VP9 out (SPEC §Publisher: RTMP play carries H.264 and H.265).

use bytes::{Bytes, BytesMut};
use tributary_media::codec::{av1, vp9};
use tributary_media::{Codec, Frame, SessionId, Ts90};

use super::*;

const AV1: &[u8] = include_bytes!("../../../media/testdata/ffmpeg_libaom_320x180_30fps_10f.obu");
const VP9: &[u8] =
    include_bytes!("../../../media/testdata/ffmpeg_libvpx_vp9_320x180_30fps_10f.ivf");

/// The 10 frames of a test vector at 30 fps (33 ms apart), as the hub carries them.
fn vector(codec: Codec) -> Vec<Frame> {
    let units: Vec<&[u8]> = if codec == Codec::Av1 {
        av1::temporal_units(AV1).collect()
    } else {
        vp9::ivf_frames(VP9).collect()
    };
    let now = origin();
    (0i64..)
        .zip(units)
        .map(|(i, unit)| Frame {
            track: VIDEO_TRACK,
            codec,
            pts: Ts90::from_millis(i * 33),
            dts: Ts90::from_millis(i * 33),
            keyframe: if codec == Codec::Av1 {
                av1::is_keyframe(unit)
            } else {
                vp9::is_keyframe(unit)
            },
            session: SessionId(0),
            arrival: now,
            payload: Bytes::copy_from_slice(unit),
            config: None,
        })
        .collect()
}

/// An AV1 temporal unit without its temporal delimiter OBU (the ISO-BMFF sample format that
/// Enhanced RTMP carries).
fn without_delimiter(unit: &[u8]) -> Bytes {
    av1::obus(unit)
        .filter(|o| o.kind != av1::OBU_TEMPORAL_DELIMITER)
        .flat_map(|o| o.data.iter().copied())
        .collect()
}

#[test]
fn publish_av1_and_vp9_over_enhanced_rtmp() {
    for (codec, codec_string) in [(Codec::Av1, "av01.0.00M.08"), (Codec::Vp9, "vp09.00.11.08")] {
        let mut pair = Pair::new(ClientIntent::Publish);
        pair.drive();
        let input = vector(codec);
        assert_eq!(input.iter().filter(|f| f.keyframe).count(), 2, "{codec}");
        for f in &input {
            assert_eq!(
                pair.client.send_media(f).unwrap(),
                Pushed::Queued,
                "{codec}"
            );
        }
        pair.drive();
        let got: Vec<_> = pair.server_frames().into_iter().map(key).collect();
        let expected: Vec<_> = input
            .iter()
            .map(|f| Frame {
                payload: if codec == Codec::Av1 {
                    without_delimiter(&f.payload)
                } else {
                    f.payload.clone()
                },
                ..f.clone()
            })
            .map(|f| key(&f))
            .collect();
        assert_eq!(got, expected, "{codec}: the frames come through");
        let config = pair.server_frames()[0].config.clone().unwrap();
        let info = &config.info;
        assert_eq!(
            (info.codec, info.width, info.height),
            (codec, Some(320), Some(180))
        );
        assert_eq!(info.codec_string.as_deref(), Some(codec_string));
        // The decoder configuration is the record the sequence start carried.
        if codec == Codec::Av1 {
            let (header, obu) = av1::SequenceHeader::find(AV1).unwrap();
            assert_eq!(config.decoder_config[..], header.config_record(obu)[..]);
        } else {
            let record = vp9::VpConfig::parse(&config.decoder_config).unwrap();
            assert_eq!(record.codec_string(), codec_string);
        }
    }
}

#[test]
fn an_av1_keyframe_gets_the_sequence_header_of_the_sequence_start() {
    let now = origin();
    let (header, obu) = av1::SequenceHeader::find(AV1).unwrap();
    let keyframe = av1::temporal_units(AV1).next().unwrap();
    // The keyframe's OBUs after the delimiter and the sequence header.
    let bare: Vec<u8> = av1::obus(keyframe)
        .filter(|o| o.kind != av1::OBU_TEMPORAL_DELIMITER && o.kind != av1::OBU_SEQUENCE_HEADER)
        .flat_map(|o| o.data.iter().copied())
        .collect();
    let tag = |packet: u8, data: &[u8]| {
        let mut body = BytesMut::from(&[0x80 | 1 << 4 | packet][..]);
        body.extend_from_slice(b"av01");
        body.extend_from_slice(data);
        body
    };
    let mut demuxer = FlvDemuxer::new();
    assert!(matches!(
        demuxer.push(now, TagKind::Video, RtmpTime(0), tag(1, &bare)),
        Err(FlvError::KeyframeWithoutParameterSets { codec: Codec::Av1 })
    ));
    let record = header.config_record(obu);
    let started = demuxer.push(now, TagKind::Video, RtmpTime(0), tag(0, &record));
    assert!(started.unwrap().is_none());
    let frame = demuxer
        .push(now, TagKind::Video, RtmpTime(40), tag(1, &bare))
        .unwrap()
        .unwrap();
    assert!(frame.keyframe);
    assert_eq!(
        frame.payload[..obu.len()],
        *obu,
        "the sequence header first"
    );
    assert_eq!(frame.payload[obu.len()..], bare[..]);
    // A record that does not parse names the codec.
    assert!(matches!(
        demuxer.push(now, TagKind::Video, RtmpTime(0), tag(0, &[0x81, 0, 0])),
        Err(FlvError::SequenceHeader {
            codec: Codec::Av1,
            ..
        })
    ));
    let mut vp9 = BytesMut::from(&[0x90][..]);
    vp9.extend_from_slice(b"vp09\x01\x00\x00");
    assert!(matches!(
        demuxer.push(now, TagKind::Video, RtmpTime(0), vp9),
        Err(FlvError::SequenceHeader {
            codec: Codec::Vp9,
            ..
        })
    ));
}

#[test]
fn the_play_fanout_leaves_av1_and_vp9_out() {
    for codec in [Codec::Av1, Codec::Vp9] {
        let mut fanout = PlayFanout::new(1, 4096);
        let prepared = fanout.prepare(&vector(codec)[0]).unwrap();
        assert_eq!(
            prepared.pushed,
            Pushed::Skipped(SkipReason::UnsupportedCodec(codec))
        );
        assert!(prepared.bytes.is_empty());
    }
}
