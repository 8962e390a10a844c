//! VOD mounts (SPEC §API `/vod`, §Security "File serving"): a mount created inside
//! `security.storage_roots`, a real ffmpeg-made MP4 uploaded with `curl -F`, listed, fetched
//! by byte range and compared, played as a stream input through `file://<mount>/…`; traversal
//! in every spelling and symlinks out of the mount refused; a mount outside the roots refused
//! naming `storage`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::server::{Server, put_stream, send};
use crate::turn::shared;

/// Runs curl with `args` (it adds `-sS`, `--path-as-is` so `..` reaches the server as sent,
/// and prints the status last) and returns the status, the response headers and the body.
pub(crate) fn curl(args: &[&str]) -> (u16, String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let headers = dir.path().join("headers");
    let body = dir.path().join("body");
    let out = Command::new("curl")
        .args(["-sS", "--path-as-is", "-o"])
        .arg(&body)
        .arg("-D")
        .arg(&headers)
        .args(["-w", "%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    (
        status,
        std::fs::read_to_string(&headers).unwrap_or_default(),
        std::fs::read(&body).unwrap_or_default(),
    )
}

pub(crate) fn json_of(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or(serde_json::Value::Null)
}

/// The hidden files (temporary uploads) left anywhere under `dir`.
fn hidden_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            found.push(name);
        } else if entry.file_type().unwrap().is_dir() {
            found.extend(hidden_files(&entry.path()));
        }
    }
    found
}

#[test]
fn vod_mounts_upload_list_range_play_and_refuse_traversal() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.mp4"), b"not yours").unwrap();
    let server = Server::start(&data, &[]);
    let storage = data.join("vod/films");

    // A mount outside security.storage_roots (default: the data directory) is refused,
    // naming the field, and nothing is created.
    let refused = send(
        "POST",
        &server.url("/vod"),
        Some(&json!({"name": "bad", "storage": outside.join("vod")}).to_string()),
        &[],
    );
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.body["error"]["fields"][0]["path"], "storage");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("security.storage_roots"),
        "{}",
        refused.body
    );
    assert!(!outside.join("vod").exists());

    // Created inside, storage made; a second create is a conflict.
    let mount = json!({"name": "films", "storage": storage, "comment": "test"}).to_string();
    let created = send("POST", &server.url("/vod"), Some(&mount), &[]);
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(storage.is_dir());
    let again = send("POST", &server.url("/vod"), Some(&mount), &[]);
    assert_eq!(again.status, 409);
    assert_eq!(again.body["error"]["code"], "ALREADY_EXISTS");
    let listed = send("GET", &server.url("/vod"), None, &[]);
    assert_eq!(listed.body["total"], 1);
    assert_eq!(listed.body["data"][0]["name"], "films");
    let one = send("GET", &server.url("/vod/films"), None, &[]);
    assert_eq!(one.body["data"]["comment"], "test");

    // Upload a real MP4 with multipart, streamed to disk.
    let spec = tributary_testkit::ClipSpec {
        width: 320,
        height: 240,
        seconds: 4,
        ..Default::default()
    };
    let clip = tributary_testkit::cached_clip(&spec, "mp4").expect("encode the test clip");
    let original = std::fs::read(&clip).unwrap();
    let form = format!("file=@{}", clip.display());
    let upload_url = server.url("/vod/films/files/movies/clip.mp4");
    let (status, _, body) = curl(&["-F", &form, &upload_url]);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json_of(&body)["data"]["size"], original.len());
    assert_eq!(
        std::fs::read(storage.join("movies/clip.mp4")).unwrap(),
        original
    );
    let (status, _, body) = curl(&["-F", &form, &upload_url]);
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json_of(&body)["error"]["code"], "FILE_EXISTS");
    // Into a directory under the part's file name; a non-video name is refused naming `file`.
    let (status, _, body) = curl(&["-F", &form, &server.url("/vod/films/files")]);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        json_of(&body)["data"]["path"],
        clip.file_name().unwrap().to_str().unwrap()
    );
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, b"text").unwrap();
    let (status, _, body) = curl(&[
        "-F",
        &format!("file=@{}", notes.display()),
        &server.url("/vod/films/files/notes.txt"),
    ]);
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json_of(&body)["error"]["fields"][0]["path"], "file");
    assert!(!storage.join("notes.txt").exists());
    assert_eq!(
        hidden_files(&storage),
        Vec::<String>::new(),
        "no partial file left"
    );

    // Listing: one level, directories first, with play and ingest URLs.
    let top = send("GET", &server.url("/vod/films/files"), None, &[]);
    assert_eq!(top.status, 200, "{}", top.body);
    assert_eq!(top.body["data"][0]["name"], "movies");
    assert_eq!(top.body["data"][0]["is_dir"], true);
    let movies = send(
        "GET",
        &server.url("/vod/films/files?path=movies"),
        None,
        &[],
    );
    assert_eq!(movies.body["total"], 1, "{}", movies.body);
    let entry = &movies.body["data"][0];
    assert_eq!(entry["path"], "movies/clip.mp4");
    assert_eq!(entry["size"], original.len());
    assert_eq!(entry["play_url"], "/vod/films/raw/movies/clip.mp4");
    assert_eq!(entry["ingest_url"], "file://films/movies/clip.mp4");
    assert!(entry["mod_time_unix"].as_i64().unwrap() > 0);
    let escape = send("GET", &server.url("/vod/films/files?path=../.."), None, &[]);
    assert_eq!(escape.status, 400, "{}", escape.body);

    // A byte range, compared with the file.
    let raw = server.url("/vod/films/raw/movies/clip.mp4");
    let (status, headers, body) = curl(&["-r", "100-1099", &raw]);
    assert_eq!(status, 206);
    assert_eq!(body, original[100..1100]);
    let total = original.len();
    assert!(
        headers
            .to_ascii_lowercase()
            .contains(&format!("content-range: bytes 100-1099/{total}")),
        "{headers}"
    );
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-type: video/mp4")
    );
    let (status, _, body) = curl(&[&raw]);
    assert_eq!((status, body.len()), (200, total));
    assert_eq!(body, original);

    // Traversal in every spelling, other extensions and symlinks out of the mount: refused.
    std::os::unix::fs::symlink(&outside, storage.join("out")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.mp4"), storage.join("link.mp4")).unwrap();
    std::fs::write(storage.join("notes.txt"), b"text").unwrap();
    for path in [
        "/vod/films/raw/../../tributary.db",
        "/vod/films/raw/movies/../../../tributary.db",
        "/vod/films/raw/%2e%2e/%2e%2e/tributary.db",
        "/vod/films/raw/..%2f..%2ftributary.db",
        "/vod/films/raw/..%5c..%5ctributary.db",
        "/vod/films/raw/movies%5cclip.mp4",
        "/vod/films/raw/clip.mp4%00.txt",
        "/vod/films/raw//etc/passwd",
        "/vod/films/raw/%2fetc%2fpasswd",
        "/vod/films/raw/out/secret.mp4",
        "/vod/films/raw/link.mp4",
        "/vod/films/raw/notes.txt",
    ] {
        let (status, _, body) = curl(&[&server.url(path)]);
        assert!(
            status == 400 || status == 404,
            "{path}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        assert_ne!(body, b"not yours", "{path}");
    }
    // The listing leaves out what leads outside and what is not video.
    let names: Vec<String> = send("GET", &server.url("/vod/films/files"), None, &[]).body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n == "out" || n == "link.mp4" || n == "notes.txt"),
        "{names:?}"
    );
    // An upload through the link out of the mount is refused too.
    let (status, _, _) = curl(&["-F", &form, &server.url("/vod/films/files/out/x.mp4")]);
    assert_eq!(status, 404);
    assert!(!outside.join("x.mp4").exists());

    // The file plays as a stream input through file://<mount>/<path>.
    put_stream(
        &server,
        "vodplay",
        &json!({"inputs": [{"url": "file://films/movies/clip.mp4"}], "protocols": {"hls": true}})
            .to_string(),
    );
    let mut playlist = String::new();
    tributary_testkit::wait_until(Duration::from_secs(40), "the HLS playlist", || {
        playlist = server.text("/vodplay/index.m3u8").unwrap_or_default();
        playlist.contains(".ts")
    })
    .unwrap_or_else(|e| panic!("{e}: {playlist} {}", server.runtime("vodplay")));
    let streams = tributary_testkit::probe_streams(&server.url("/vodplay/index.m3u8"))
        .expect("ffprobe reads the stream");
    assert!(
        streams
            .iter()
            .any(|s| s.codec_name.as_deref() == Some("h264")),
        "{streams:?}"
    );
    // An unknown mount is refused at save, naming the input.
    let unknown = send(
        "PUT",
        &server.url("/streams/nomount"),
        Some(&json!({"inputs": [{"url": "file://nope/a.mp4"}]}).to_string()),
        &[],
    );
    assert_eq!(unknown.status, 422, "{}", unknown.body);
    assert_eq!(unknown.body["error"]["fields"][0]["path"], "inputs[0].url");

    // Delete the file, then the mount (its files stay).
    let (status, _, _) = curl(&[
        "-X",
        "DELETE",
        &server.url("/vod/films/files/movies/clip.mp4"),
    ]);
    assert_eq!(status, 204);
    let (status, _, _) = curl(&[&raw]);
    assert_eq!(status, 404);
    assert_eq!(
        send("DELETE", &server.url("/vod/films"), None, &[]).status,
        204
    );
    assert_eq!(
        send("GET", &server.url("/vod/films"), None, &[]).status,
        404
    );
    assert!(storage.is_dir());
}

#[test]
fn storage_roots_from_the_config_and_signed_raw_serving() {
    let _turn = shared();
    use crate::signing::{KEY, now, signed};
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    let data = dir.path().join("data");
    let config = dir.path().join("tributary.toml");
    std::fs::write(
        &config,
        format!(
            "[security]\nstorage_roots = [{:?}]\n\n[security.play_signing]\nenabled = true\nkey = \"{KEY}\"\n",
            media.display().to_string()
        ),
    )
    .unwrap();
    let server = Server::start_args(&data, &[], "off", &["--config", config.to_str().unwrap()]);

    // The configured roots replace the default: the data directory is no longer one.
    let inside = send(
        "PUT",
        &server.url("/vod/films"),
        Some(&json!({"storage": media.join("films")}).to_string()),
        &[],
    );
    assert_eq!(inside.status, 201, "{}", inside.body);
    let in_data = send(
        "PUT",
        &server.url("/vod/other"),
        Some(&json!({"storage": data.join("vod")}).to_string()),
        &[],
    );
    assert_eq!(in_data.status, 422, "{}", in_data.body);
    assert_eq!(in_data.body["error"]["fields"][0]["path"], "storage");

    let clip = tributary_testkit::cached_clip(&tributary_testkit::ClipSpec::default(), "ts")
        .expect("encode the test clip");
    std::fs::copy(&clip, media.join("films/a.ts")).unwrap();
    let original = std::fs::read(&clip).unwrap();
    let raw = server.url("/vod/films/raw/a.ts");
    let (status, _, body) = curl(&[&raw]);
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    let exp = now() + 600;
    // A stream's signature (the mount's name as a code) does not open the mount.
    let (status, _, _) = curl(&[&format!("{raw}?{}", signed("films", exp))]);
    assert_eq!(status, 403);
    let (status, headers, body) = curl(&[
        "-r",
        "0-187",
        &format!("{raw}?{}", signed("vod/films", exp)),
    ]);
    assert_eq!(status, 206, "{headers}");
    assert_eq!(body, original[..188]);
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-type: video/mp2t")
    );

    // The routes are in the OpenAPI document.
    let doc = send("GET", &server.url("/swagger/doc.json"), None, &[]);
    for path in [
        "/vod",
        "/vod/{name}",
        "/vod/{name}/files",
        "/vod/{name}/files/{path}",
        "/vod/{name}/raw/{path}",
    ] {
        assert!(doc.body["paths"][path].is_object(), "{path} missing");
    }
    assert!(doc.body["components"]["schemas"]["VodMount"].is_object());
    assert!(doc.body["components"]["schemas"]["VodEntry"].is_object());
}
