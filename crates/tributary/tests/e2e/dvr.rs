//! DVR (issue 19): recording the playback feed to disk, across a server restart, on a
//! filesystem that fills up, under a size cap, the recording routes refusing paths out of
//! their root, and timeshift windows (the recording's `timeshift.m3u8` and the live URL's
//! `ago`/`from`/`dur`/`delay`). Sources are looping file inputs (real time, paced by DTS); the players
//! are ffprobe and ffmpeg reading the recording's playlist over HTTP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tributary_testkit::{decode_errors, http_get, probe_packets, probe_streams, wait_until};

use crate::events::events;
use crate::hls::{clip, wait_new_segment};
use crate::server::{Server, put_stream, send};
use crate::turn::shared;

/// A looping file input with HLS on and DVR as `dvr` (JSON).
fn stream_body(dvr: &str) -> String {
    format!(
        r#"{{"inputs":[{{"url":"file://{}"}}],"protocols":{{"hls":true}},"dvr":{dvr}}}"#,
        clip().display()
    )
}

/// A server in a new data directory with `code` recording in 2 s segments.
fn recorded_stream(code: &str) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    put_stream(
        &server,
        code,
        &stream_body(r#"{"enabled":true,"segment_duration":2}"#),
    );
    (dir, server)
}

/// `GET /recordings/{rid}/info`'s `data`, when it answers 200.
pub(crate) fn info(server: &Server, rid: &str) -> Option<Value> {
    let answer = send(
        "GET",
        &server.url(&format!("/recordings/{rid}/info")),
        None,
        &[],
    );
    (answer.status == 200).then(|| answer.body["data"].clone())
}

/// Waits until the recording lists at least `n` segments.
fn wait_recorded(server: &Server, rid: &str, n: u64, timeout: Duration) -> Value {
    let mut last = Value::Null;
    wait_until(timeout, &format!("{n} recorded segments of {rid}"), || {
        last = info(server, rid).unwrap_or(Value::Null);
        last["segment_count"].as_u64().unwrap_or(0) >= n
    })
    .unwrap_or_else(|e| panic!("{e}: {last}"));
    last
}

/// The segment files of a directory with their bytes.
fn segment_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".ts"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// The events of `code` still in the bus history, as (type, payload).
fn stream_events(server: &Server, code: &str) -> Vec<(String, Value)> {
    events(server, "since=0&limit=1000&timeout_sec=0")["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["stream_code"] == code)
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_owned(),
                e["payload"].clone(),
            )
        })
        .collect()
}

#[test]
fn a_recording_survives_a_server_restart_with_one_gap_and_plays_as_vod() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let rec_dir = dir.path().join("dvr/rec");
    let server = Server::start(dir.path(), &[]);
    put_stream(
        &server,
        "rec",
        &stream_body(r#"{"enabled":true,"segment_duration":2}"#),
    );
    // About 24 s recorded (the issue says 60 s; 12 segments carry the same checks).
    wait_recorded(&server, "rec", 12, Duration::from_secs(60));
    let runtime = server.runtime("rec");
    assert_eq!(runtime["dvr"]["status"], "recording", "{runtime}");
    let sync = runtime["dvr"]["sync_ms_per_segment"].as_f64().unwrap();
    eprintln!(
        "DVR fsync per segment (file + log line): {sync:.2} ms over {} segments",
        runtime["dvr"]["segments_written"]
    );
    let playlist = server.text("/recordings/rec/playlist.m3u8").unwrap();
    assert!(
        playlist.contains("#EXT-X-PLAYLIST-TYPE:EVENT"),
        "{playlist}"
    );
    assert!(!playlist.contains("#EXT-X-ENDLIST"), "{playlist}");

    // The server dies mid-segment, stays away a few seconds, and comes back.
    server.kill9();
    let before = segment_files(&rec_dir);
    assert!(before.len() >= 12, "{:?}", before.keys());
    std::thread::sleep(Duration::from_secs(3));
    let server = Server::start(dir.path(), &[]);
    let resumed = before.len() as u64 + 6;
    wait_recorded(&server, "rec", resumed, Duration::from_secs(60));

    // Stopping the recording (DVR off, the stream keeps running) makes the playlist VOD.
    let answer = send(
        "PATCH",
        &server.url("/streams/rec"),
        Some(r#"{"dvr":{"enabled":false,"segment_duration":2}}"#),
        &[("Content-Type", "application/merge-patch+json")],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let mut playlist = String::new();
    wait_until(Duration::from_secs(15), "a VOD playlist", || {
        playlist = server
            .text("/recordings/rec/playlist.m3u8")
            .unwrap_or_default();
        playlist.contains("#EXT-X-ENDLIST")
    })
    .unwrap_or_else(|e| panic!("{e}: {playlist}"));
    assert!(playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{playlist}");
    // Turning DVR off touched nothing live.
    wait_new_segment(&server, "rec", Duration::from_secs(10));
    let live = server.text("/rec/index.m3u8").unwrap();
    assert!(!live.contains("#EXT-X-DISCONTINUITY\n"), "{live}");
    assert!(server.runtime("rec")["dvr"].is_null());

    // No file of the first run was touched; numbering went on above them.
    let after = segment_files(&rec_dir);
    for (name, bytes) in &before {
        assert!(
            after.get(name) == Some(bytes),
            "{name} was changed or removed"
        );
    }
    assert!(after.len() > before.len());

    // One gap, one discontinuity, and the listed durations add up to what ffmpeg decodes.
    let info = info(&server, "rec").unwrap();
    assert_eq!(info["status"], "stopped", "{info}");
    let gaps = info["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{info}");
    let gap = gaps[0]["duration"].as_f64().unwrap();
    assert!(gap >= 3.0, "the gap covers the downtime: {info}");
    assert_eq!(
        playlist.matches("#EXT-X-DISCONTINUITY\n").count(),
        1,
        "{playlist}"
    );
    let listed: f64 = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();
    assert!((listed - info["total_duration_sec"].as_f64().unwrap()).abs() < 0.01);

    let url = server.url("/recordings/rec/playlist.m3u8");
    let errors = decode_errors(&url, 3600.0).unwrap();
    assert!(errors.trim().is_empty(), "decode errors: {errors}");
    let packets = probe_packets(&url, &[]).unwrap();
    let video: Vec<f64> = packets
        .iter()
        .filter(|p| p.codec_type.as_deref() == Some("video"))
        .filter_map(|p| p.pts_time)
        .collect();
    let frames = video.len() as f64 / 30.0;
    assert!(
        (frames - listed).abs() <= 2.0,
        "{frames} s of video decoded, {listed} s listed (± one 2 s GOP)"
    );
    let types: Vec<String> = stream_events(&server, "rec")
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    for expected in ["recording.started", "segment.written", "recording.stopped"] {
        assert!(
            types.iter().any(|t| t == expected),
            "{expected} not in {types:?}"
        );
    }
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount -t tmpfs on {} (needs root)",
            at.display()
        );
        Self(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the filesystem of `dir` with `filler` until a write fails.
fn fill(filler: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(filler).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.flush();
}

#[test]
fn a_full_disk_fails_only_that_recording_which_resumes_by_itself() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    let _mount = Tmpfs::mount(&small, "24m");
    let server = Server::start(dir.path(), &[]);
    put_stream(
        &server,
        "full",
        &stream_body(&format!(
            r#"{{"enabled":true,"segment_duration":2,"storage_path":"{}"}}"#,
            small.display()
        )),
    );
    put_stream(
        &server,
        "other",
        &stream_body(r#"{"enabled":true,"segment_duration":2}"#),
    );
    wait_recorded(&server, "full", 2, Duration::from_secs(60));
    wait_recorded(&server, "other", 2, Duration::from_secs(60));

    // The disk fills up: after 30 s of failing writes the recording is failed.
    let filler = small.join("filler");
    fill(&filler);
    let mut failed = Vec::new();
    wait_until(Duration::from_secs(60), "recording.failed", || {
        failed = stream_events(&server, "full")
            .into_iter()
            .filter(|(t, _)| t == "recording.failed")
            .collect();
        !failed.is_empty()
    })
    .unwrap();
    let payload = &failed[0].1;
    assert_eq!(payload["recording_id"], "full", "{payload}");
    assert!(
        payload["error"].as_str().unwrap().contains("space"),
        "{payload}"
    );
    let runtime = server.runtime("full");
    assert_eq!(runtime["dvr"]["status"], "failed", "{runtime}");
    assert_eq!(
        runtime["status"], "active",
        "the stream itself is fine: {runtime}"
    );
    // Live HLS of that stream keeps going, and the other stream records on.
    wait_new_segment(&server, "full", Duration::from_secs(10));
    let other = info(&server, "other").unwrap()["segment_count"]
        .as_u64()
        .unwrap();
    wait_recorded(&server, "other", other + 2, Duration::from_secs(15));
    assert_eq!(server.runtime("other")["dvr"]["status"], "recording");
    assert!(
        stream_events(&server, "other")
            .iter()
            .all(|(t, _)| t != "recording.failed")
    );

    // Space comes back: the recording resumes by itself, after a gap.
    std::fs::remove_file(&filler).unwrap();
    wait_until(Duration::from_secs(20), "the recording resumes", || {
        stream_events(&server, "full")
            .iter()
            .any(|(t, p)| t == "recording.started" && p["resumed"] == true)
    })
    .unwrap();
    assert_eq!(server.runtime("full")["dvr"]["status"], "recording");
    let info = wait_recorded(&server, "full", 4, Duration::from_secs(20));
    assert!(
        !info["gaps"].as_array().unwrap().is_empty(),
        "the failed stretch is a gap: {info}"
    );
    let playlist = server.text("/recordings/full/playlist.m3u8").unwrap();
    assert!(playlist.contains("#EXT-X-DISCONTINUITY\n"), "{playlist}");
}

#[test]
fn a_size_cap_set_while_recording_removes_the_oldest_segments() {
    let _turn = shared();
    let (dir, server) = recorded_stream("capped");
    let rec_dir = dir.path().join("dvr/capped");
    wait_recorded(&server, "capped", 4, Duration::from_secs(60));

    // A 2 MiB cap (a few 2 s segments of the 720p test clip), set on the running stream:
    // applied from the next segment, without restarting the recording or the live output.
    let cap = 2u64 << 20;
    let answer = send(
        "PATCH",
        &server.url("/streams/capped"),
        Some(r#"{"dvr":{"enabled":true,"segment_duration":2,"max_size_gb":0.001953125}}"#),
        &[("Content-Type", "application/merge-patch+json")],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    wait_until(Duration::from_secs(30), "the first segment expired", || {
        !rec_dir.join("000000.ts").exists()
    })
    .unwrap();
    for _ in 0..3 {
        wait_new_segment(&server, "capped", Duration::from_secs(10));
        let info = info(&server, "capped").unwrap();
        assert!(info["total_size_bytes"].as_u64().unwrap() <= cap, "{info}");
        // On disk, a segment being written may sit beside the ones it is about to expire.
        let files = segment_files(&rec_dir);
        let total: u64 = files.values().map(|b| b.len() as u64).sum();
        let largest = files.values().map(|b| b.len() as u64).max().unwrap();
        assert!(
            total <= cap + largest,
            "{total} bytes on disk over the {cap} cap: {:?}",
            files.keys()
        );
    }
    // The playlist starts at the oldest segment kept.
    let playlist = server.text("/recordings/capped/playlist.m3u8").unwrap();
    let first = playlist.lines().find(|l| l.ends_with(".ts")).unwrap();
    assert!(rec_dir.join(first).exists(), "{playlist}");
    assert_ne!(first, "000000.ts");
    assert!(!playlist.contains("#EXT-X-DISCONTINUITY\n"), "{playlist}");
    // Under retention it slides (an EVENT playlist never loses its head): no playlist type,
    // MEDIA-SEQUENCE the first kept segment's number.
    assert!(!playlist.contains("#EXT-X-PLAYLIST-TYPE"), "{playlist}");
    let seq: u64 = first.trim_end_matches(".ts").parse().unwrap();
    assert!(
        playlist.contains(&format!("#EXT-X-MEDIA-SEQUENCE:{seq}\n")),
        "{playlist}"
    );
    assert!(
        playlist.contains("#EXT-X-DISCONTINUITY-SEQUENCE:"),
        "{playlist}"
    );
    // One recording all along, and the live playlist never saw a discontinuity.
    let started = stream_events(&server, "capped")
        .iter()
        .filter(|(t, _)| t == "recording.started")
        .count();
    assert_eq!(started, 1);
    let live = server.text("/capped/index.m3u8").unwrap();
    assert!(!live.contains("#EXT-X-DISCONTINUITY\n"), "{live}");
}

/// Sends `GET <path>` as written (no client-side normalisation) and returns the status.
fn raw_status(server: &Server, path: &str) -> u16 {
    use std::io::{Read, Write};
    let addr = server.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

#[test]
fn recording_routes_serve_only_their_own_segments_inside_the_root() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    put_stream(
        &server,
        "rec",
        &stream_body(r#"{"enabled":true,"segment_duration":2}"#),
    );
    wait_recorded(&server, "rec", 2, Duration::from_secs(60));

    // A real segment: whole, HEAD, and a byte range.
    let segment = server.url("/recordings/rec/000000.ts");
    let (status, headers, body) = http_get(&segment).unwrap();
    assert_eq!(status, 200);
    assert_eq!(body[0], 0x47);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("content-type").as_deref(), Some("video/mp2t"));
    let ranged = ureq::get(&segment)
        .set("Range", "bytes=188-375")
        .call()
        .unwrap();
    assert_eq!(ranged.status(), 206);
    let mut part = Vec::new();
    std::io::Read::read_to_end(&mut ranged.into_reader(), &mut part).unwrap();
    assert_eq!(part, body[188..376]);
    assert_eq!(ureq::head(&segment).call().unwrap().status(), 200);
    let metrics = server.text("/metrics").unwrap();
    for series in [
        "tributary_dvr_segments_written_total{stream_code=\"rec\"}",
        "tributary_dvr_bytes_written_total{stream_code=\"rec\"}",
        "tributary_dvr_segments_dropped_total{stream_code=\"rec\"} 0",
        "tributary_dvr_recording_active{stream_code=\"rec\"} 1",
        "tributary_buffer_drops_total{stream_code=\"rec\",buffer=\"main\",subscriber=\"dvr\"}",
    ] {
        assert!(metrics.contains(series), "{series} not in\n{metrics}");
    }
    let recordings = send("GET", &server.url("/streams/rec/recordings"), None, &[]);
    assert_eq!(recordings.body["total"], 1, "{}", recordings.body);
    assert_eq!(recordings.body["data"][0]["status"], "recording");

    // A stopped recording whose segment is a symlink out of the root, and a recording
    // directory that is itself a symlink out of it: both logs look fine.
    std::fs::write(outside.path().join("secret"), b"secret").unwrap();
    let line = "{\"seq\":0,\"file\":\"000000.ts\",\"start\":\"2026-11-24T10:00:00.000Z\",\"duration\":2,\"size\":6,\"discontinuity\":false}\n";
    let evil = dir.path().join("dvr/evil");
    std::fs::create_dir_all(&evil).unwrap();
    std::fs::write(evil.join("segments.jsonl"), line).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), evil.join("000000.ts")).unwrap();
    std::fs::write(outside.path().join("segments.jsonl"), line).unwrap();
    std::fs::write(outside.path().join("000000.ts"), b"secret").unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("dvr/linked")).unwrap();
    assert_eq!(raw_status(&server, "/recordings/evil/000000.ts"), 404);
    assert_eq!(raw_status(&server, "/recordings/linked/000000.ts"), 404);
    assert_eq!(raw_status(&server, "/recordings/linked/playlist.m3u8"), 404);

    // A stopped recording serves what its log lists, from the file: a segment beside the
    // log but not in it is refused until its line is appended; HEAD and ranges hold.
    let old = dir.path().join("dvr/old");
    std::fs::create_dir_all(&old).unwrap();
    let entry = |seq: u64| {
        format!(
            "{{\"seq\":{seq},\"file\":\"{seq:06}.ts\",\"start\":\"2026-11-24T10:00:0{seq}.000Z\",\"duration\":2,\"size\":{},\"discontinuity\":false}}\n",
            body.len()
        )
    };
    for seq in 0..2 {
        std::fs::write(old.join(format!("{seq:06}.ts")), &body).unwrap();
    }
    std::fs::write(old.join("segments.jsonl"), entry(0)).unwrap();
    assert_eq!(raw_status(&server, "/recordings/old/000000.ts"), 200);
    assert_eq!(
        raw_status(&server, "/recordings/old/000001.ts"),
        404,
        "not logged"
    );
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(old.join("segments.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut log, entry(1).as_bytes()).unwrap();
    drop(log);
    let logged = server.url("/recordings/old/000001.ts");
    let (status, _, whole) = http_get(&logged).unwrap();
    assert_eq!(status, 200, "logged since");
    assert_eq!(whole, body);
    let head = ureq::head(&logged).call().unwrap();
    assert_eq!(
        head.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    let tail = ureq::get(&logged)
        .set("Range", &format!("bytes={}-", body.len() - 188))
        .call()
        .unwrap();
    assert_eq!(tail.status(), 206);
    let mut part = Vec::new();
    std::io::Read::read_to_end(&mut tail.into_reader(), &mut part).unwrap();
    assert_eq!(part, body[body.len() - 188..]);
    let past = ureq::get(&logged)
        .set("Range", &format!("bytes={}-", body.len()))
        .call();
    assert!(
        matches!(past, Err(ureq::Error::Status(416, _))),
        "a range past the end: {past:?}"
    );

    for path in [
        "/recordings/rec/../../../etc/passwd",
        "/recordings/rec/%2e%2e/%2e%2e/etc/passwd",
        "/recordings/rec/..%2f..%2f..%2fetc%2fpasswd",
        "/recordings/..%2f..%2fetc/000000.ts",
        "/recordings//etc/passwd",
        "/recordings/%2fetc%2fpasswd",
        "/recordings/rec/..%5c..%5cetc%5cpasswd",
        "/recordings/rec%00/000000.ts",
        "/recordings/rec/000000.ts%00.ts",
        "/recordings/rec/segments.jsonl",
        "/recordings/rec/index.json",
        "/recordings/rec/0.ts",
    ] {
        let status = raw_status(&server, path);
        assert!(status == 404 || status == 400, "{path} answered {status}");
    }
    // A clip without its window is refused naming what is missing.
    let clip = send("GET", &server.url("/recordings/rec/clip.mp4"), None, &[]);
    assert_eq!(clip.status, 400, "{}", clip.body);
    assert_eq!(clip.body["error"]["code"], "INVALID_QUERY");
    assert!(server.text("/rec/index.m3u8?token=x").is_some());
}

/// The segments of a playlist: (wall start ms from `#EXT-X-PROGRAM-DATE-TIME` plus the
/// `EXTINF`s since, duration ms, URI).
fn timed_segments(playlist: &str) -> Vec<(i64, i64, String)> {
    let mut at = None;
    let mut duration = 0;
    let mut segments = Vec::new();
    for line in playlist.lines() {
        if let Some(pdt) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            at = Some(
                chrono::DateTime::parse_from_rfc3339(pdt)
                    .unwrap()
                    .timestamp_millis(),
            );
        } else if let Some(extinf) = line.strip_prefix("#EXTINF:") {
            let seconds: f64 = extinf.trim_end_matches(',').parse().unwrap();
            duration = (seconds * 1000.0).round() as i64;
        } else if !line.starts_with('#') && !line.is_empty() {
            let start = at.expect("a PROGRAM-DATE-TIME before the first segment");
            segments.push((start, duration, line.to_owned()));
            at = Some(start + duration);
        }
    }
    segments
}

fn unix_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An error answer's status, code and message.
fn refusal(server: &Server, path: &str) -> (u16, String, String) {
    let answer = send("GET", &server.url(path), None, &[]);
    let error = &answer.body["error"];
    (
        answer.status,
        error["code"].as_str().unwrap_or_default().to_owned(),
        error["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn timeshift_windows_play_from_the_recording_and_on_the_live_url() {
    let _turn = shared();
    let (_dir, server) = recorded_stream("ts");
    // About 40 s recorded.
    wait_recorded(&server, "ts", 20, Duration::from_secs(90));

    // 20 s starting 30 s ago, by Unix seconds.
    let from = unix_ms() / 1000 - 30;
    let (start, end) = (from * 1000, from * 1000 + 20_000);
    let path = format!("/recordings/ts/timeshift.m3u8?from={from}&duration=20");
    let playlist = server.text(&path).unwrap();
    assert!(
        playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"),
        "{playlist}"
    );
    assert!(playlist.ends_with("#EXT-X-ENDLIST\n"), "{playlist}");
    let segments = timed_segments(&playlist);
    // Cut at the first keyframe after 2 s, forced at 4 s: one segment is at most 4 s.
    let slack = 4_000;
    let (first, last) = (&segments[0], &segments[segments.len() - 1]);
    assert!(
        first.0 <= start && first.0 + first.1 > start - slack,
        "the first segment holds the window's start {start}: {playlist}"
    );
    assert!(
        last.0 < end && last.0 + last.1 + slack >= end,
        "the last segment reaches the window's end {end}: {playlist}"
    );
    for (at, _, uri) in &segments {
        assert!(
            (start - slack..end).contains(at),
            "{uri} at {at} outside {start}..{end}"
        );
    }
    let errors = decode_errors(&server.url(&path), 3600.0).unwrap();
    assert!(errors.trim().is_empty(), "decode errors: {errors}");
    // The same window as an RFC 3339 time, and by offset from the newest segment.
    let rfc3339 = chrono::DateTime::from_timestamp(from, 0)
        .unwrap()
        .to_rfc3339();
    let by_time = server
        .text(&format!(
            "/recordings/ts/timeshift.m3u8?from={}&duration=20",
            rfc3339.replace('+', "%2B")
        ))
        .unwrap();
    assert_eq!(timed_segments(&by_time)[0], segments[0]);
    let by_offset = server
        .text("/recordings/ts/timeshift.m3u8?offset_sec=-10&duration=6")
        .unwrap();
    assert!(!timed_segments(&by_offset).is_empty(), "{by_offset}");

    // On the live URL: the archive window, and a live playlist 10 s behind.
    let archived = server.text("/ts/index.m3u8?ago=30&dur=20").unwrap();
    assert!(archived.contains("#EXT-X-ENDLIST"), "{archived}");
    assert!(archived.contains("\n/recordings/ts/0"), "{archived}");
    let streams = probe_streams(&server.url("/ts/index.m3u8?ago=30&dur=20")).unwrap();
    assert!(
        streams
            .iter()
            .any(|s| s.codec_type.as_deref() == Some("video"))
    );
    let delayed = server.text("/ts/index.m3u8?delay=10").unwrap();
    assert!(!delayed.contains("#EXT-X-ENDLIST"), "{delayed}");
    let newest = timed_segments(&delayed).last().cloned().unwrap();
    assert!(
        newest.0 + newest.1 <= unix_ms() - 10_000,
        "{delayed} ends more than 10 s ago"
    );
    let streams = probe_streams(&server.url("/ts/index.m3u8?delay=10")).unwrap();
    assert!(
        streams
            .iter()
            .any(|s| s.codec_type.as_deref() == Some("video"))
    );

    // Bad values: 400 naming the parameter; an empty window: 404 NO_DATA naming it.
    let future = format!(
        "/recordings/ts/timeshift.m3u8?from={}",
        unix_ms() / 1000 + 3600
    );
    for (path, code, param) in [
        (
            "/recordings/ts/timeshift.m3u8?from=yesterday",
            "INVALID_FROM",
            "from",
        ),
        (future.as_str(), "INVALID_FROM", "from"),
        (
            "/recordings/ts/timeshift.m3u8?offset_sec=ten",
            "INVALID_OFFSET",
            "offset_sec",
        ),
        (
            "/recordings/ts/timeshift.m3u8?offset_sec=0&duration=-5",
            "INVALID_DURATION",
            "duration",
        ),
        ("/ts/index.m3u8?ago=-3&dur=5", "INVALID_QUERY", "ago"),
        ("/ts/index.m3u8?ago=30&dur=abc", "INVALID_QUERY", "dur"),
        ("/ts/index.m3u8?delay=soon", "INVALID_QUERY", "delay"),
    ] {
        let (status, got, message) = refusal(&server, path);
        assert_eq!((status, got.as_str()), (400, code), "{path}: {message}");
        assert!(message.contains(param), "{path}: {message}");
    }
    let (status, code, message) = refusal(
        &server,
        "/recordings/ts/timeshift.m3u8?from=1000000000&duration=60",
    );
    assert_eq!((status, code.as_str()), (404, "NO_DATA"), "{message}");
    assert!(message.contains("2001-09-09T01:46:40.000Z"), "{message}");
    let (status, _, message) = refusal(&server, "/nothing/index.m3u8?ago=10");
    assert_eq!(status, 404, "{message}");
    assert!(message.contains("no recording"), "{message}");
}
