//! H.265 over Enhanced RTMP both ways (issue 5): FFmpeg 5.1 speaks no Enhanced RTMP, so the
//! server pushes to itself and the project's own client plays.

use std::time::Duration;

use tributary_testkit::{
    ClipSpec, Codec, TagKind, cached_clip, decode_errors, free_tcp_port, http_get, nal_unit_types,
    probe_streams, rtmp_play, wait_until,
};

use crate::hls::window_ts;
use crate::server::{Server, send};
use crate::turn::shared;

/// Stream `source` plays an H.265 + AAC file (with B-frames) and pushes it over RTMP to the
/// server's own listener, where stream `relay` takes it as a publisher: the push-out maps
/// H.265 to Enhanced RTMP (`hvc1`) and the listener maps it back. `relay`'s HLS is H.265,
/// and an RTMP player of `relay` receives `hvc1` tags that the client maps to H.265 frames.
#[test]
fn h265_goes_out_and_comes_in_over_enhanced_rtmp() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{port}"));
    let clip = cached_clip(
        &ClipSpec {
            hevc: true,
            bframes: 2,
            ..ClipSpec::default()
        },
        "ts",
    )
    .expect("encode the H.265 clip");

    let relay = r#"{"inputs":[{"url":"publish://"}],"protocols":{"hls":true,"rtmp":true}}"#;
    let answer = send("PUT", &server.url("/streams/relay"), Some(relay), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);
    let source = format!(
        r#"{{"inputs":[{{"url":"file://{}"}}],
            "push":[{{"url":"rtmp://127.0.0.1:{port}/live/relay","enabled":true,
                      "retry_timeout_sec":1}}]}}"#,
        clip.display()
    );
    let answer = send("PUT", &server.url("/streams/source"), Some(&source), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);

    // The relay's HLS: three segments, H.265 1280x720 + AAC, decodable.
    let playlist = server.url("/relay/index.m3u8");
    let mut last = String::new();
    wait_until(
        Duration::from_secs(40),
        "3 segments of the relay's HLS",
        || {
            last = http_get(&playlist)
                .ok()
                .filter(|(status, _, _)| *status == 200)
                .map(|(_, _, body)| String::from_utf8_lossy(&body).into_owned())
                .unwrap_or_default();
            last.lines().filter(|l| l.ends_with(".ts")).count() >= 3
        },
    )
    .unwrap_or_else(|e| {
        let runtime = server.runtime("source");
        panic!("{e}; playlist:\n{last}\nsource runtime: {runtime}")
    });
    let window = window_ts(&server, "relay", dir.path());
    let window = window.to_str().unwrap();
    let streams = probe_streams(window).unwrap();
    let video = streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video"))
        .unwrap_or_else(|| panic!("no video in the relay's HLS: {streams:?}"));
    assert_eq!(video.codec_name.as_deref(), Some("hevc"), "{streams:?}");
    assert_eq!((video.width, video.height), (Some(1280), Some(720)));
    assert!(
        streams
            .iter()
            .any(|s| s.codec_name.as_deref() == Some("aac")),
        "no AAC in the relay's HLS: {streams:?}"
    );
    let errors = decode_errors(window, 6.0).unwrap();
    assert!(
        errors.trim().is_empty(),
        "the relay's HLS decodes with errors:\n{errors}"
    );

    // The push target is active.
    let push = server.runtime("source")["publisher"]["pushes"][0].clone();
    assert_eq!(push["status"], "active", "{push}");

    // RTMP play of the relay by the project's client: 5 s.
    let url = format!("rtmp://127.0.0.1:{port}/live/relay");
    let played = rtmp_play(&url, Duration::from_secs(5)).expect("play the relay over RTMP");
    assert!(played.dropped.is_empty(), "{:?}", played.dropped);

    // On the wire: Enhanced RTMP video, FourCC hvc1, the sequence start first.
    let video_tags: Vec<_> = played
        .tags
        .iter()
        .filter(|t| t.kind == TagKind::Video)
        .collect();
    assert!(video_tags.len() > 100, "{} video tags", video_tags.len());
    for tag in &video_tags {
        assert_eq!(
            tag.fourcc(),
            Some(&b"hvc1"[..]),
            "not Enhanced RTMP: {tag:?}"
        );
    }
    assert_eq!(video_tags[0].packet_type(), Some(0), "{:?}", video_tags[0]);
    assert_eq!(video_tags[1].frame_type(), Some(1), "{:?}", video_tags[1]);
    // B-frames: some coded frames carry a composition time (packet type 1).
    assert!(
        video_tags.iter().any(|t| t.packet_type() == Some(1)),
        "no CodedFrames tag with a composition time"
    );

    // Mapped to frames: H.265 from a keyframe with VPS, SPS and PPS in front.
    let (video, audio) = (played.video(), played.audio());
    // 5 s at 30 fps, plus up to a GOP (2 s) of catch-up from the last keyframe.
    assert!(
        (120..=240).contains(&video.len()),
        "{} video frames in 5 s",
        video.len()
    );
    assert!(video.iter().all(|f| f.codec == Codec::H265));
    let first = video[0];
    assert!(first.keyframe, "the first frame is not a keyframe");
    let types = nal_unit_types(first);
    for (set, name) in [(32, "VPS"), (33, "SPS"), (34, "PPS")] {
        assert!(
            types.contains(&set),
            "no {name} before the first keyframe: {types:?}"
        );
    }
    let info = &first.config.as_ref().expect("a video track config").info;
    assert_eq!(info.codec, Codec::H265);
    assert_eq!((info.width, info.height), (Some(1280), Some(720)));
    assert!(
        video.iter().any(|f| f.pts != f.dts),
        "the B-frames' composition time was lost"
    );
    for pair in video.windows(2) {
        assert!(
            pair[1].dts > pair[0].dts,
            "video DTS {:?} then {:?}",
            pair[0].dts,
            pair[1].dts
        );
    }
    // 48 kHz AAC: ~47 frames/s.
    assert!(audio.len() > 150, "{} audio frames in 5 s", audio.len());
    assert!(audio.iter().all(|f| f.codec == Codec::Aac));
}
