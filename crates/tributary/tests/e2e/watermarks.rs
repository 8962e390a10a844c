//! The watermark library (SPEC §API `/watermarks`, §Coordinator `start` step 4) through the
//! real binary and curl: a PNG made by ffmpeg uploaded, listed, fetched (bytes equal, cached
//! for a year), a non-image and an oversized image refused naming `file`, deleted; then a
//! transcoded stream whose image watermark names an asset runs FFmpeg with that file in its
//! `movie` filter and its frames carry the image's colour in the watermark's corner, while a
//! stream naming an unknown asset starts, warns, and runs without an overlay. A new
//! `watermarks.dir` through `POST /config` is listed at once; one outside the storage roots
//! is refused naming it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tributary_testkit::{LiveSender, free_udp_port, wait_until};

use crate::hls::clip;
use crate::server::{Answer, Server, send};
use crate::transcode::pids;
use crate::turn::heavy;
use crate::vod::{curl, json_of};

/// The watermark's colour: one the test pattern does not show in that corner.
const COLOUR: (u8, u8, u8) = (0x12, 0xab, 0x34);

#[test]
fn the_library_uploads_lists_serves_and_deletes_and_a_stream_overlays_its_asset() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let library = data.join("watermarks");
    assert!(library.is_dir(), "created at start");

    let png = dir.path().join("logo.png");
    let made = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "color=c=0x{:02x}{:02x}{:02x}:s=64x64",
            COLOUR.0, COLOUR.1, COLOUR.2
        ))
        .args(["-frames:v", "1"])
        .arg(&png)
        .status()
        .expect("ffmpeg runs");
    assert!(made.success());
    let original = std::fs::read(&png).unwrap();

    // Upload, named by ?name=.
    let form = format!("file=@{}", png.display());
    let (status, _, body) = curl(&["-F", &form, &server.url("/watermarks?name=Channel%20logo")]);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let asset = json_of(&body)["data"].clone();
    let id = asset["id"].as_str().unwrap().to_owned();
    assert!(
        id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{asset}"
    );
    assert_eq!(asset["name"], "Channel logo");
    assert_eq!(asset["file_name"], "logo.png");
    assert_eq!(asset["content_type"], "image/png");
    assert_eq!(asset["size_bytes"], original.len());
    // A second one, named after its file, is listed first (newest first).
    let (status, _, body) = curl(&["-F", &form, &server.url("/watermarks")]);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let second = json_of(&body)["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(json_of(&body)["data"]["name"], "logo.png");

    let (status, _, body) = curl(&[&server.url("/watermarks")]);
    assert_eq!(status, 200);
    let listed = json_of(&body);
    assert_eq!(listed["total"], 2, "{listed}");
    assert_eq!(listed["data"][0]["id"], second.as_str());
    assert_eq!(listed["data"][1], asset);
    assert_eq!(listed["dir"], library.display().to_string());

    let (status, _, body) = curl(&[&server.url(&format!("/watermarks/{id}"))]);
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["data"], asset);
    let (status, headers, bytes) = curl(&[&server.url(&format!("/watermarks/{id}/raw"))]);
    assert_eq!(status, 200);
    assert_eq!(bytes, original, "the bytes uploaded");
    let headers = headers.to_ascii_lowercase();
    assert!(headers.contains("content-type: image/png"), "{headers}");
    assert!(
        headers.contains("cache-control: public, max-age=31536000, immutable"),
        "{headers}"
    );

    // Not an image (named .png all the same): 415 naming `file`, nothing kept.
    let fake = dir.path().join("fake.png");
    std::fs::write(&fake, b"<svg xmlns='http://www.w3.org/2000/svg'/>").unwrap();
    refused(&server, &fake, 415, "INVALID_IMAGE");
    // Over 8 MiB (a PNG's magic, then padding): 413 naming `file`, nothing kept.
    let big = dir.path().join("big.png");
    let mut bytes = original.clone();
    bytes.resize(9 << 20, 0);
    std::fs::write(&big, &bytes).unwrap();
    refused(&server, &big, 413, "UPLOAD_TOO_LARGE");
    assert_eq!(
        files(&library).len(),
        4,
        "two assets, each an image and a sidecar"
    );

    // Delete; unknown and traversal ids are 404.
    let (status, _, _) = curl(&[
        "-X",
        "DELETE",
        &server.url(&format!("/watermarks/{second}")),
    ]);
    assert_eq!(status, 204);
    for gone in [
        second.as_str(),
        "..%2F..%2Fetc%2Fpasswd",
        "../../tributary.db",
    ] {
        let (status, _, body) = curl(&[&server.url(&format!("/watermarks/{gone}"))]);
        assert_eq!(status, 404, "{gone}: {}", String::from_utf8_lossy(&body));
    }
    let (status, _, _) = curl(&[
        "-X",
        "DELETE",
        &server.url(&format!("/watermarks/{second}")),
    ]);
    assert_eq!(status, 404);
    assert_eq!(files(&library).len(), 2);

    // A transcoded stream with the asset: FFmpeg reads the library file, and the frames show
    // the image where the watermark sits (top left, 10 px in).
    let image = library.join(format!("{id}.png"));
    let port = free_udp_port();
    let put = put_watermarked(&server, "wm", port, &id);
    assert_eq!(put.status, 201, "{}", put.body);
    assert!(put.body["warnings"].is_null(), "{}", put.body);
    let _sender = LiveSender::start(&clip(), port).expect("start the UDP sender");
    let argv = ffmpeg_argv(&server, "wm");
    assert!(
        argv.contains(&format!("movie=filename={}", image.display())),
        "FFmpeg does not read {}: {argv}",
        image.display()
    );
    let patch = corner(&server, "wm");
    eprintln!("watermark corner with the asset: {patch:?} (the image: {COLOUR:?})");
    assert!(
        near(patch, COLOUR),
        "the corner is {patch:?}, not {COLOUR:?}"
    );

    // An unknown asset: the stream starts, the write and the runtime warn, no overlay.
    let port = free_udp_port();
    let put = put_watermarked(&server, "nowm", port, "00000000deadbeef");
    assert_eq!(put.status, 201, "{}", put.body);
    let warned = put.body["warnings"].to_string();
    assert!(
        warned.contains("watermark off for this run") && warned.contains("00000000deadbeef"),
        "{}",
        put.body
    );
    let _sender = LiveSender::start(&clip(), port).expect("start the UDP sender");
    let argv = ffmpeg_argv(&server, "nowm");
    assert!(
        !argv.contains("movie="),
        "an overlay without an asset: {argv}"
    );
    let runtime = server.runtime("nowm");
    assert!(
        runtime["warnings"]
            .to_string()
            .contains("watermark off for this run"),
        "{runtime}"
    );
    assert_ne!(runtime["status"], "stopped", "{runtime}");
    let patch = corner(&server, "nowm");
    eprintln!("watermark corner without an asset: {patch:?}");
    assert!(
        !near(patch, COLOUR),
        "the corner is the watermark's colour: {patch:?}"
    );
    let logged = server.logged(|line| {
        line["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("watermark off for this run"))
            && line["fields"]["stream"] == "nowm"
    });
    assert_eq!(logged.len(), 1, "logged once with the stream code");

    // Fixed by naming the asset: the transcoder restarts with the overlay and the warning
    // goes with the run it was about.
    let put = put_watermarked(&server, "nowm", port, &id);
    assert_eq!(put.status, 200, "{}", put.body);
    assert!(put.body["warnings"].is_null(), "{}", put.body);
    ffmpeg_argv_with(
        &server,
        "nowm",
        &format!("movie=filename={}", image.display()),
    );
    let runtime = server.runtime("nowm");
    assert_eq!(runtime["warnings"], serde_json::json!([]), "{runtime}");

    // `watermarks.dir` through the config API: applied at once (the next listing reads the
    // new directory, created), refused naming the key outside the storage roots.
    let logos = data.join("logos");
    let moved = set_dir(&server, &logos);
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert!(logos.is_dir());
    let (_, _, body) = curl(&[&server.url("/watermarks")]);
    let listed = json_of(&body);
    assert_eq!(listed["dir"], logos.display().to_string(), "{listed}");
    assert_eq!(listed["total"], 0, "{listed}");
    let outside = dir.path().join("outside");
    let refused = set_dir(&server, &outside);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.body["error"]["fields"][0]["path"], "watermarks.dir");
    assert!(!outside.exists());
}

/// Uploads `file` with curl and checks the refusal: `status`, `code`, naming `file`.
fn refused(server: &Server, file: &Path, status: u16, code: &str) {
    let form = format!("file=@{}", file.display());
    let (answered, _, body) = curl(&["-F", &form, &server.url("/watermarks")]);
    let body = json_of(&body);
    assert_eq!(answered, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["fields"][0]["path"], "file", "{body}");
}

/// `PUT /streams/{code}` of [`stream_body`].
fn put_watermarked(server: &Server, code: &str, port: u16, id: &str) -> Answer {
    let body = stream_body(port, id);
    send(
        "PUT",
        &server.url(&format!("/streams/{code}")),
        Some(&body),
        &[],
    )
}

/// `POST /config` setting `watermarks.dir`.
fn set_dir(server: &Server, dir: &Path) -> Answer {
    let body = serde_json::json!({"watermarks": {"dir": dir}}).to_string();
    send("POST", &server.url("/config"), Some(&body), &[])
}

/// A stream reading UDP `port` through one 320×180 rung, with an image watermark naming
/// library asset `id` at the top left.
fn stream_body(port: u16, id: &str) -> String {
    format!(
        r#"{{"inputs":[{{"url":"udp://127.0.0.1:{port}"}}],"protocols":{{"hls":true}},
            "transcoder":{{"audio":{{"bitrate":96}},"video":{{"profiles":[
              {{"width":320,"height":180,"bitrate":400,"preset":"ultrafast"}}]}}}},
            "watermark":{{"enabled":true,"type":"image","asset_id":"{id}","position":"top_left"}}}}"#
    )
}

/// The command line of `code`'s FFmpeg, from the process table.
fn ffmpeg_argv(server: &Server, code: &str) -> String {
    ffmpeg_argv_with(server, code, "ffmpeg")
}

/// The command line of `code`'s FFmpeg once it holds `part` (a restarted FFmpeg's).
fn ffmpeg_argv_with(server: &Server, code: &str, part: &str) -> String {
    let mut argv = String::new();
    wait_until(
        Duration::from_secs(30),
        &format!("FFmpeg running with {part}"),
        || {
            let Some(pid) = pids(server, code).first().copied() else {
                return false;
            };
            argv = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
                .unwrap_or_default();
            argv.contains(part)
        },
    )
    .unwrap_or_else(|e| panic!("{e}; runtime: {}", server.runtime(code)));
    argv
}

/// The mean colour of an 8×8 patch in the middle of where the watermark sits (10 px in from
/// the top left, 64 px square) in a frame decoded from `code`'s rung.
fn corner(server: &Server, code: &str) -> (u8, u8, u8) {
    let playlist = format!("/{code}/track_1/index.m3u8");
    wait_until(Duration::from_secs(60), "a segment of the rung", || {
        server
            .text(&playlist)
            .is_some_and(|p| p.contains("#EXTINF"))
    })
    .unwrap_or_else(|e| panic!("{e}; runtime: {}", server.runtime(code)));
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(server.url(&playlist))
        .args([
            "-frames:v",
            "1",
            "-vf",
            "crop=8:8:38:38",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .output()
        .expect("ffmpeg runs");
    assert_eq!(
        out.stdout.len(),
        8 * 8 * 3,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mean = |channel: usize| {
        let sum: u32 = out
            .stdout
            .iter()
            .skip(channel)
            .step_by(3)
            .map(|&v| u32::from(v))
            .sum();
        (sum / 64) as u8
    };
    (mean(0), mean(1), mean(2))
}

/// Whether two colours are within what H.264 and 4:2:0 keep of a flat patch.
fn near(a: (u8, u8, u8), b: (u8, u8, u8)) -> bool {
    a.0.abs_diff(b.0) <= 24 && a.1.abs_diff(b.1) <= 24 && a.2.abs_diff(b.2) <= 24
}

/// The files in `dir` (temporary uploads, hidden, included).
fn files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}
