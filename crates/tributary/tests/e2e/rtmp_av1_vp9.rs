//! AV1 and VP9 over Enhanced RTMP into fMP4 HLS (issue 16 item 1): the project's own RTMP
//! client publishes libaom and libvpx test vectors (`av01`, `vp09`) and each stream's HLS, under
//! `segment_format = "auto"`, is fMP4 that ffprobe reads as AV1 / VP9 320x180 and ffmpeg
//! decodes. No independent publisher exists on this machine: FFmpeg 5.1 and GStreamer 1.22
//! predate Enhanced RTMP's `av01` and `vp09`, so the publisher is ours, as in `rtmp_hevc.rs`.

use std::path::Path;
use std::time::Duration;

use tributary_testkit::{
    coded_video_frames, decode_errors, free_tcp_port, probe_streams, rtmp_publish,
};

use crate::hls_fmp4::{fetch_mp4, wait_fmp4_segments, window_mp4};
use crate::server::{Server, put_stream};
use crate::turn::shared;

#[test]
fn av1_and_vp9_published_over_enhanced_rtmp_play_as_fmp4_hls() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let server = Server::start_with(
        dir.path(),
        &[("TRIBUTARY_PUBLISHER__HLS__SEGMENT_FORMAT", "auto")],
        &format!("127.0.0.1:{port}"),
    );
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../media/testdata");
    let cases = [
        (
            "av1cam",
            "ffmpeg_libaom_320x180_30fps_10f.obu",
            "av1",
            "av1C",
        ),
        (
            "vp9cam",
            "ffmpeg_libvpx_vp9_320x180_30fps_10f.ivf",
            "vp9",
            "vpcC",
        ),
    ];
    let mut publishers = Vec::new();
    for (code, file, ..) in cases {
        let body = r#"{"inputs":[{"url":"publish://"}],"protocols":{"hls":true}}"#;
        put_stream(&server, code, body);
        // 10 frames at 30 fps, keyframes every 5, looped for 10 s.
        let frames = coded_video_frames(&testdata.join(file), 30).expect("the test vector");
        let url = format!("rtmp://127.0.0.1:{port}/live/{code}");
        publishers.push(std::thread::spawn(move || {
            rtmp_publish(&url, &frames, Duration::from_secs(10))
        }));
    }
    for (code, _, codec_name, config_box) in cases {
        let text = wait_fmp4_segments(&server, code, 3);
        assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\"\n"), "{text}");
        let (_, init) = fetch_mp4(&server, code, "init.mp4");
        assert!(
            init.windows(4).any(|w| w == config_box.as_bytes()),
            "{code}'s init carries {config_box}"
        );
        // The init and the listed segments as one file: what a player reads.
        let window = window_mp4(&server, code, &text, dir.path());
        let window = window.as_str();
        let streams = probe_streams(window).unwrap();
        assert_eq!(streams.len(), 1, "{streams:?}");
        assert_eq!(
            streams[0].codec_name.as_deref(),
            Some(codec_name),
            "{streams:?}"
        );
        assert_eq!(
            (streams[0].width, streams[0].height),
            (Some(320), Some(180))
        );
        let errors = decode_errors(window, 6.0).unwrap();
        assert!(
            errors.trim().is_empty(),
            "{code} decodes with errors:\n{errors}"
        );
    }
    for publisher in publishers {
        let queued = publisher
            .join()
            .unwrap()
            .expect("the publish runs to its end");
        assert!(queued >= 290, "{queued} frames queued in 10 s at 30 fps");
    }
}
