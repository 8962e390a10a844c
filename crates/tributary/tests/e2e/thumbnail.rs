//! Thumbnails (issue 15, item 7): `GET /{code}/thumbnail.jpg` is a JPEG of the configured
//! width, made from the playback feed by FFmpeg; a changed width restarts only the
//! thumbnailer.

use std::time::Duration;

use tributary_testkit::{LiveSender, free_udp_port, http_get, probe_streams, wait_until};

use crate::hls::{clip, wait_segments};
use crate::server::{Server, put_stream, send};
use crate::turn::shared;

fn body(port: u16, width: u32) -> String {
    format!(
        r#"{{"inputs":[{{"url":"udp://127.0.0.1:{port}"}}],"protocols":{{"hls":true}},
            "thumbnail":{{"enabled":true,"interval_sec":1,"width":{width}}}}}"#
    )
}

/// Waits for a thumbnail `width` pixels wide; returns its height.
fn wait_thumbnail(server: &Server, dir: &std::path::Path, width: u32) -> u32 {
    let url = server.url("/cam/thumbnail.jpg");
    let path = dir.join("thumbnail.jpg");
    let mut last = String::new();
    let mut height = 0;
    wait_until(
        Duration::from_secs(40),
        &format!("a {width}-pixel-wide JPEG at {url}"),
        || {
            let Ok((status, headers, jpeg)) = http_get(&url) else {
                return false;
            };
            if status != 200 {
                last = format!("HTTP {status}");
                return false;
            }
            let content_type = headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
                .map(|(_, value)| value.as_str());
            assert_eq!(content_type, Some("image/jpeg"));
            assert!(jpeg.starts_with(&[0xFF, 0xD8]), "not a JPEG");
            std::fs::write(&path, &jpeg).unwrap();
            let streams = probe_streams(path.to_str().unwrap()).unwrap();
            last = format!("{streams:?}");
            height = streams[0].height.unwrap_or(0);
            streams[0].width == Some(width)
        },
    )
    .unwrap_or_else(|e| panic!("{e}; last: {last}; runtime: {}", server.runtime("cam")));
    height
}

#[test]
fn a_thumbnail_is_a_jpeg_of_the_configured_width_and_a_change_restarts_only_it() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let port = free_udp_port();
    put_stream(&server, "cam", &body(port, 160));
    let _source = LiveSender::start(&clip(), port).unwrap();
    wait_segments(&server, "cam", 2, Duration::from_secs(30));
    // 1280x720 at 160 wide keeps the aspect: 90 high.
    assert_eq!(wait_thumbnail(&server, dir.path(), 160), 90);

    let before = server.runtime("cam")["publisher"].clone();
    let answer = send(
        "PUT",
        &server.url("/streams/cam"),
        Some(&body(port, 320)),
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(wait_thumbnail(&server, dir.path(), 320), 180);
    assert_eq!(
        server.runtime("cam")["publisher"],
        before,
        "HLS was not restarted by a thumbnail change"
    );

    // Out of bounds is a 422 naming the field; off is a 404.
    let wide = body(port, 5000);
    let answer = send("PUT", &server.url("/streams/cam"), Some(&wide), &[]);
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert!(
        answer.body.to_string().contains("thumbnail.width"),
        "{}",
        answer.body
    );
    let off = format!(
        r#"{{"inputs":[{{"url":"udp://127.0.0.1:{port}"}}],"protocols":{{"hls":true}},
            "thumbnail":{{"enabled":false}}}}"#
    );
    let answer = send("PUT", &server.url("/streams/cam"), Some(&off), &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(http_get(&server.url("/cam/thumbnail.jpg")).unwrap().0, 404);
}
