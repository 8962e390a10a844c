//! HLS in fMP4 (issue 16 item 2): an RTMP publish packaged as fMP4 plays in hls.js in
//! headless Chromium and in ffprobe; an H.265 source under `segment_format = "auto"` is
//! packaged as fMP4 whose init carries `hvcC`, read by ffprobe and GStreamer; an input
//! failover mid-play keeps hls.js playing (the test body is shared with LL-HLS, `ll_hls.rs`).

use std::time::Duration;

use tributary_testkit::{
    ClipSpec, LiveSender, cached_clip, decode_errors, free_tcp_port, http_get, probe_streams,
    wait_until,
};

use crate::browser;
use crate::hls::assert_h264_720p_with_aac;
use crate::http_ts::assert_gstreamer_plays_through;
use crate::server::{Server, send};
use crate::turn::{heavy, shared};

/// The playlist of `code` once it lists `count` fMP4 segments.
pub(crate) fn wait_fmp4_segments(server: &Server, code: &str, count: usize) -> String {
    let url = server.url(&format!("/{code}/index.m3u8"));
    let mut last = String::new();
    wait_until(
        Duration::from_secs(40),
        &format!("{count} fMP4 segments in /{code}/index.m3u8"),
        || {
            last = http_get(&url)
                .ok()
                .filter(|(status, _, _)| *status == 200)
                .map(|(_, _, body)| String::from_utf8_lossy(&body).into_owned())
                .unwrap_or_default();
            last.lines().filter(|l| l.ends_with(".m4s")).count() >= count
        },
    )
    .unwrap_or_else(|e| panic!("{e}; last playlist:\n{last}\n{}", server.runtime(code)));
    last
}

/// GET `/{code}/{name}`: its body, asserting 200 and `video/mp4`.
pub(crate) fn fetch_mp4(
    server: &Server,
    code: &str,
    name: &str,
) -> (Vec<(String, String)>, Vec<u8>) {
    let (status, headers, body) = http_get(&server.url(&format!("/{code}/{name}"))).unwrap();
    assert_eq!(status, 200, "{name}");
    let content_type = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str());
    assert_eq!(content_type, Some("video/mp4"), "{name}");
    (headers, body)
}

/// The init and every listed segment, as one fMP4 file in `dir`.
pub(crate) fn window_mp4(
    server: &Server,
    code: &str,
    playlist: &str,
    dir: &std::path::Path,
) -> String {
    let map = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("an EXT-X-MAP");
    let (_, mut bytes) = fetch_mp4(server, code, map);
    for name in playlist.lines().filter(|l| l.ends_with(".m4s")) {
        bytes.extend(fetch_mp4(server, code, name).1);
    }
    let path = dir.join(format!("{code}-window.mp4"));
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn an_rtmp_publish_plays_as_fmp4_hls_in_hls_js_and_ffprobe() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let server = Server::start_with(
        dir.path(),
        &[("TRIBUTARY_PUBLISHER__HLS__SEGMENT_FORMAT", "fmp4")],
        &format!("127.0.0.1:{port}"),
    );
    let body = r#"{"inputs":[{"url":"publish://"}],"protocols":{"hls":true}}"#;
    let answer = send("PUT", &server.url("/streams/studio"), Some(body), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);
    let clip = cached_clip(
        &ClipSpec {
            bframes: 2,
            ..ClipSpec::default()
        },
        "mp4",
    )
    .expect("encode the test clip");
    let url = format!("rtmp://127.0.0.1:{port}/live/studio");
    let _publisher = LiveSender::rtmp(&clip, &url).expect("start the ffmpeg publisher");

    let text = wait_fmp4_segments(&server, "studio", 3);
    for tag in [
        "#EXTM3U\n#EXT-X-VERSION:7\n",
        "#EXT-X-TARGETDURATION:2\n",
        "#EXT-X-INDEPENDENT-SEGMENTS\n",
        "#EXT-X-MAP:URI=\"init.mp4\"\n",
    ] {
        assert!(text.contains(tag), "playlist lacks {tag:?}:\n{text}");
    }
    assert!(!text.contains(".ts\n"), "{text}");
    let (headers, init) = fetch_mp4(&server, "studio", "init.mp4");
    assert_eq!(&init[4..8], b"ftyp");
    assert!(init.windows(4).any(|w| w == b"avcC") && init.windows(4).any(|w| w == b"esds"));
    assert!(
        headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("cache-control") && v == "no-cache"),
        "{headers:?}"
    );
    let first = text.lines().find(|l| l.ends_with(".m4s")).unwrap();
    let (headers, segment) = fetch_mp4(&server, "studio", first);
    assert_eq!(&segment[4..8], b"moof");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("cache-control") && v.contains("immutable")),
        "{headers:?}"
    );
    // The TS spelling of a listed number names nothing.
    let ts_name = first.replace(".m4s", ".ts");
    assert_eq!(
        http_get(&server.url(&format!("/studio/{ts_name}")))
            .unwrap()
            .0,
        404
    );

    // ffprobe reads the live playlist; ffmpeg decodes the window cleanly.
    let playlist = server.url("/studio/index.m3u8");
    assert_h264_720p_with_aac(&playlist);
    let window = window_mp4(&server, "studio", &text, dir.path());
    let errors = decode_errors(&window, 10.0).unwrap();
    assert!(errors.trim().is_empty(), "decode errors:\n{errors}");

    // hls.js in Chromium plays 15 s, advancing, at 1280x720.
    let played = browser::play(
        &playlist,
        "hls",
        15,
        &["--width", "1280", "--height", "720"],
    );
    assert!(played.ok, "hls.js did not play fMP4: {played}");
}

#[test]
fn an_h265_source_is_packaged_as_fmp4_with_hvcc_under_auto() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[("TRIBUTARY_PUBLISHER__HLS__SEGMENT_FORMAT", "auto")],
    );
    let clip = cached_clip(
        &ClipSpec {
            hevc: true,
            bframes: 2,
            ..ClipSpec::default()
        },
        "ts",
    )
    .expect("encode the H.265 clip");
    let body = format!(
        r#"{{"inputs":[{{"url":"file://{}"}}],"protocols":{{"hls":true}}}}"#,
        clip.display()
    );
    let answer = send("PUT", &server.url("/streams/hevc"), Some(&body), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);
    // An H.264 stream on the same server stays MPEG-TS.
    let h264 = cached_clip(&ClipSpec::default(), "ts").expect("encode the H.264 clip");
    let body = format!(
        r#"{{"inputs":[{{"url":"file://{}"}}],"protocols":{{"hls":true}}}}"#,
        h264.display()
    );
    let answer = send("PUT", &server.url("/streams/avc"), Some(&body), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);

    let text = wait_fmp4_segments(&server, "hevc", 3);
    assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\"\n"), "{text}");
    let (_, init) = fetch_mp4(&server, "hevc", "init.mp4");
    assert!(init.windows(4).any(|w| w == b"hvc1"), "hvc1 sample entry");
    assert!(
        init.windows(4).any(|w| w == b"hvcC"),
        "the init carries hvcC"
    );

    let playlist = server.url("/hevc/index.m3u8");
    let streams = probe_streams(&playlist).unwrap();
    let video = streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video"))
        .unwrap_or_else(|| panic!("no video: {streams:?}"));
    assert_eq!(video.codec_name.as_deref(), Some("hevc"), "{streams:?}");
    assert_eq!((video.width, video.height), (Some(1280), Some(720)));
    let window = window_mp4(&server, "hevc", &text, dir.path());
    let errors = decode_errors(&window, 6.0).unwrap();
    assert!(errors.trim().is_empty(), "decode errors:\n{errors}");

    // GStreamer's HLS client reads it too.
    let demux = ["!", "hlsdemux", "!", "qtdemux"];
    assert_gstreamer_plays_through(&playlist, &demux, "h265parse", "avdec_h265");

    wait_until(
        Duration::from_secs(30),
        "the H.264 stream's playlist",
        || http_get(&server.url("/avc/index.m3u8")).is_ok_and(|(status, _, _)| status == 200),
    )
    .unwrap();
    let (_, _, body) = http_get(&server.url("/avc/index.m3u8")).unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("#EXT-X-VERSION:3\n") && text.contains(".ts\n") && !text.contains("MAP"),
        "H.264 + AAC stays MPEG-TS under auto:\n{text}"
    );
}

#[test]
fn an_input_failover_mid_play_keeps_hls_js_playing_fmp4() {
    crate::ll_hls::failover_keeps_hls_js_playing(false);
}
