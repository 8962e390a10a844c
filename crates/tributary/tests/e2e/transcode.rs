//! The transcoder with the real FFmpeg (issue 14): a live UDP source becomes a 2-rung ladder
//! in each mode, served as an HLS master with one media playlist per rung that ffprobe and
//! GStreamer play; a killed FFmpeg is restarted while HLS goes on; a changed rung restarts
//! only its FFmpeg and rewrites the master; a removed rung's playlist ends with
//! `#EXT-X-ENDLIST` and is served two windows more while the rest runs on; FFmpeg children
//! die with a SIGKILLed server; a missing FFmpeg is reported as `transcoder_unavailable`; the
//! FFmpeg probe (boot and `POST /config/transcoder/probe`) reports what a binary can do and
//! why one is unusable. A running stream switched from passthrough to transcoding and back
//! keeps its RTMP publisher and an ffmpeg RTMP player connected throughout, the player's
//! picture following (1280x720 → 640x360 → 1280x720) with its DTS always increasing and
//! no pause longer than FFmpeg's start, and through a restart of its FFmpeg. An input
//! failover of a transcoding stream reaches FFmpeg as nothing at all: same process, and the
//! rung's playlist goes on without a discontinuity.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tributary_testkit::{LiveSender, free_udp_port, http_get, probe_streams, wait_until};

use crate::hls::clip;
use crate::server::{Server, put_stream};
use crate::turn::{heavy, shared};

/// A server (a heavy turn, see [`heavy`]) with one stream `code` fed live over UDP through
/// a 2-rung ladder in `mode`.
struct Running {
    server: Server,
    /// The UDP port the stream reads.
    port: u16,
    _sender: LiveSender,
    _dir: tempfile::TempDir,
    _turn: crate::turn::Turn,
}

impl Running {
    fn start(code: &str, mode: &str) -> Self {
        Self::start_with(code, mode, &[])
    }

    /// As [`start`](Self::start), the server with extra environment variables.
    fn start_with(code: &str, mode: &str, env: &[(&str, &str)]) -> Self {
        let turn = heavy();
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), env);
        let port = free_udp_port();
        put_stream(&server, code, &ladder_body(port, mode, 300));
        let sender = LiveSender::start(&clip(), port).expect("start the UDP sender");
        Self {
            server,
            port,
            _sender: sender,
            _dir: dir,
            _turn: turn,
        }
    }
}

/// A stream reading UDP `port` with a 2-rung ladder in `mode`: 640×360 at 800 kb/s and
/// 320×180 at `low_kbps`.
fn ladder_body(port: u16, mode: &str, low_kbps: u32) -> String {
    format!(
        r#"{{"inputs":[{{"url":"udp://127.0.0.1:{port}"}}],"protocols":{{"hls":true}},
            "transcoder":{{"mode":"{mode}","audio":{{"bitrate":96}},"video":{{"profiles":[
              {{"width":640,"height":360,"bitrate":800,"preset":"ultrafast"}},
              {{"width":320,"height":180,"bitrate":{low_kbps},"preset":"ultrafast"}}]}}}}}}"#
    )
}

fn get_text(server: &Server, path: &str) -> Option<String> {
    let (status, _, body) = http_get(&server.url(path)).ok()?;
    (status == 200).then(|| String::from_utf8_lossy(&body).into_owned())
}

/// Waits until the master lists both rungs and each rung's playlist has `segments` segments;
/// returns the master.
fn wait_ladder(server: &Server, code: &str, segments: usize) -> String {
    let mut master = String::new();
    wait_until(
        Duration::from_secs(60),
        "a master with two playable variants",
        || {
            master = get_text(server, &format!("/{code}/index.m3u8")).unwrap_or_default();
            master.matches("#EXT-X-STREAM-INF").count() == 2
                && (1..=2).all(|n| {
                    get_text(server, &format!("/{code}/track_{n}/index.m3u8"))
                        .is_some_and(|p| p.matches("#EXTINF").count() >= segments)
                })
        },
    )
    .unwrap_or_else(|e| panic!("{e}; master:\n{master}; runtime: {}", server.runtime(code)));
    master
}

fn profiles(server: &Server, code: &str) -> Vec<Value> {
    server.runtime(code)["transcoder"]["profiles"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The FFmpeg pids of `code`'s rungs, as its runtime shows them.
pub(crate) fn pids(server: &Server, code: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = profiles(server, code)
        .iter()
        .filter_map(|p| p["pid"].as_u64())
        .map(|p| p as u32)
        .collect();
    pids.dedup();
    pids
}

/// Whether process `pid` runs (exists and is no zombie).
pub(crate) fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

/// The master and both rungs play: sizes and codecs per rung (ffprobe), the master's
/// attributes, and GStreamer's HLS demuxer decodes the master.
fn assert_ladder_plays(server: &Server, code: &str) {
    let master = wait_ladder(server, code, 2);
    for (n, (w, h), bandwidth) in [(1, (640, 360), 976_000), (2, (320, 180), 426_000)] {
        let line = master
            .lines()
            .zip(master.lines().skip(1))
            .find(|(_, uri)| *uri == format!("track_{n}/index.m3u8"))
            .map(|(inf, _)| inf)
            .unwrap_or_else(|| panic!("track_{n} not in the master:\n{master}"));
        for attr in [
            format!("BANDWIDTH={bandwidth}"),
            format!("RESOLUTION={w}x{h}"),
            "CODECS=\"avc1.".to_owned(),
            ",mp4a.40.2\"".to_owned(),
            "FRAME-RATE=30.000".to_owned(),
        ] {
            assert!(line.contains(&attr), "track_{n} lacks {attr}: {line}");
        }
        let url = server.url(&format!("/{code}/track_{n}/index.m3u8"));
        let streams = probe_streams(&url).expect("ffprobe the rung");
        let video = streams
            .iter()
            .find(|s| s.codec_type.as_deref() == Some("video"))
            .unwrap_or_else(|| panic!("no video in track_{n}: {streams:?}"));
        assert_eq!(video.codec_name.as_deref(), Some("h264"));
        assert_eq!((video.width, video.height), (Some(w), Some(h)), "track_{n}");
        assert!(
            streams
                .iter()
                .any(|s| s.codec_name.as_deref() == Some("aac")),
            "no AAC in track_{n}: {streams:?}"
        );
    }
    // ffprobe reads the master too (every variant).
    let streams = probe_streams(&server.url(&format!("/{code}/index.m3u8"))).expect("ffprobe");
    let sizes: Vec<_> = streams
        .iter()
        .filter(|s| s.codec_type.as_deref() == Some("video"))
        .map(|s| (s.width, s.height))
        .collect();
    assert!(sizes.contains(&(Some(640), Some(360))), "{sizes:?}");
    assert!(sizes.contains(&(Some(320), Some(180))), "{sizes:?}");
    assert_gstreamer_plays(&server.url(&format!("/{code}/index.m3u8")));
}

/// GStreamer's `hlsdemux` (an independent HLS client) decodes video frames from `url`.
fn assert_gstreamer_plays(url: &str) {
    crate::http_ts::assert_gstreamer_plays(url, &["!", "hlsdemux", "!", "tsdemux"]);
}

fn ladder_plays_in(mode: &str) {
    let running = Running::start("abr", mode);
    let server = &running.server;
    assert_ladder_plays(server, "abr");
    let runtime = server.runtime("abr");
    assert_eq!(runtime["status"], "active", "{runtime}");
    assert_eq!(runtime["transcoder"]["mode"], mode);
    assert_eq!(runtime["transcoder"]["status"], "healthy");
    let expected = if mode == "multi" { 1 } else { 2 };
    assert_eq!(pids(server, "abr").len(), expected, "{runtime}");
    for p in profiles(server, "abr") {
        assert_eq!(p["status"], "running", "{p}");
        assert!(p["speed"].as_f64().is_some_and(|s| s > 0.5), "{p}");
        assert!(
            p["rss_bytes"].as_u64().is_some_and(|r| r > 1_000_000),
            "{p}"
        );
    }
}

#[test]
fn per_profile_ladder_plays_as_hls_master_in_ffprobe_and_gstreamer() {
    ladder_plays_in("per_profile");
}

#[test]
fn multi_ladder_plays_as_hls_master_in_ffprobe_and_gstreamer() {
    ladder_plays_in("multi");
}

#[test]
fn a_killed_ffmpeg_restarts_while_hls_goes_on() {
    // Events are logged at debug by the bus: the test reads them there.
    let running = Running::start_with(
        "crash",
        "per_profile",
        &[(
            "TRIBUTARY_LOG__LEVEL",
            "info,tributary_engine::events=debug",
        )],
    );
    let server = &running.server;
    wait_ladder(server, "crash", 2);
    let before = pids(server, "crash");
    let victim = profiles(server, "crash")[0]["pid"]
        .as_u64()
        .expect("rung 0 runs") as u32;
    let other = profiles(server, "crash")[1]["pid"]
        .as_u64()
        .expect("rung 1 runs") as u32;
    let segments_before = get_text(server, "/crash/track_1/index.m3u8").unwrap_or_default();
    let last_before = segments_before
        .lines()
        .rfind(|l| l.ends_with(".ts"))
        .map(str::to_owned);
    Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .expect("kill");
    let mut profile = Value::Null;
    wait_until(Duration::from_secs(20), "rung 0 restarted", || {
        profile = profiles(server, "crash")[0].clone();
        profile["restart_count"] == 1 && profile["pid"].as_u64().is_some_and(|p| p as u32 != victim)
    })
    .unwrap_or_else(|e| panic!("{e}: {profile}"));
    let error = profile["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        error.contains("signal: 9") || error.contains("SIGKILL"),
        "{profile}"
    );
    assert_eq!(pids(server, "crash").len(), before.len());
    assert!(alive(other), "the other rung's FFmpeg was not touched");
    assert_eq!(profiles(server, "crash")[1]["restart_count"], 0);
    for event in ["transcoder.started", "transcoder.error"] {
        let seen = server
            .logged(|line| line["fields"]["event"] == event && line["fields"]["stream"] == "crash");
        assert_eq!(seen.len(), 1, "one {event} event");
    }
    // The restarted rung publishes new segments after the ones it had.
    wait_until(
        Duration::from_secs(30),
        "track_1 goes on after the restart",
        || {
            let now = get_text(server, "/crash/track_1/index.m3u8").unwrap_or_default();
            let last = now.lines().rfind(|l| l.ends_with(".ts")).map(str::to_owned);
            last > last_before && now.contains("#EXT-X-DISCONTINUITY")
        },
    )
    .unwrap();
}

#[test]
fn a_changed_rung_restarts_only_its_ffmpeg_and_rewrites_the_master() {
    let running = Running::start("reload", "per_profile");
    let server = &running.server;
    let master = wait_ladder(server, "reload", 2);
    assert!(master.contains("BANDWIDTH=426000,"), "{master}");
    let high = profiles(server, "reload")[0]["pid"]
        .as_u64()
        .expect("rung 0 runs");
    let low = profiles(server, "reload")[1]["pid"]
        .as_u64()
        .expect("rung 1 runs");
    let answer = crate::server::send(
        "PUT",
        &server.url("/streams/reload"),
        Some(&ladder_body(running.port, "per_profile", 200)),
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let mut now = Vec::new();
    wait_until(Duration::from_secs(20), "rung 1 restarted", || {
        now = profiles(server, "reload");
        now[1]["pid"].as_u64().is_some_and(|p| p != low)
    })
    .unwrap_or_else(|e| panic!("{e}: {now:?}"));
    assert_eq!(
        now[0]["pid"].as_u64(),
        Some(high),
        "rung 0's FFmpeg kept running"
    );
    assert_eq!(now[1]["restart_count"], 0, "a planned restart is no crash");
    // BANDWIDTH = (1.1 × 200 + 96) kb/s; track_1's line is unchanged.
    wait_until(Duration::from_secs(5), "the master rewritten", || {
        get_text(server, "/reload/index.m3u8").is_some_and(|m| {
            m.contains("BANDWIDTH=316000,AVERAGE-BANDWIDTH=296000")
                && m.contains("BANDWIDTH=976000,AVERAGE-BANDWIDTH=896000")
        })
    })
    .unwrap();
    let before = get_text(server, "/reload/track_2/index.m3u8").unwrap_or_default();
    let last = |text: &str| {
        text.lines()
            .rfind(|l| l.ends_with(".ts"))
            .map(str::to_owned)
    };
    wait_until(Duration::from_secs(20), "track_2 goes on", || {
        let text = get_text(server, "/reload/track_2/index.m3u8").unwrap_or_default();
        last(&text) > last(&before)
    })
    .unwrap();
    assert_eq!(server.runtime("reload")["status"], "active");
}

#[test]
fn a_removed_rung_ends_its_playlist_and_is_404_after_two_windows() {
    // A 3-segment window of 2 s segments: the removed rung lingers 2 x 3 x 2 s = 12 s.
    let running = Running::start_with(
        "shrink",
        "per_profile",
        &[("TRIBUTARY_PUBLISHER__HLS__LIVE_WINDOW", "3")],
    );
    let server = &running.server;
    wait_ladder(server, "shrink", 2);
    let high = profiles(server, "shrink")[0]["pid"]
        .as_u64()
        .expect("rung 0 runs");
    let one_rung = format!(
        r#"{{"inputs":[{{"url":"udp://127.0.0.1:{}"}}],"protocols":{{"hls":true}},
            "transcoder":{{"mode":"per_profile","audio":{{"bitrate":96}},"video":{{"profiles":[
              {{"width":640,"height":360,"bitrate":800,"preset":"ultrafast"}}]}}}}}}"#,
        running.port
    );
    let answer = crate::server::send("PUT", &server.url("/streams/shrink"), Some(&one_rung), &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);

    // The master lists one variant; the removed one's playlist ends, still served.
    wait_until(Duration::from_secs(5), "a master with one variant", || {
        get_text(server, "/shrink/index.m3u8").is_some_and(|m| {
            m.matches("#EXT-X-STREAM-INF").count() == 1 && m.contains("track_1/index.m3u8")
        })
    })
    .unwrap();
    let mut ended = String::new();
    wait_until(Duration::from_secs(8), "track_2's playlist ended", || {
        ended = get_text(server, "/shrink/track_2/index.m3u8").unwrap_or_default();
        ended.ends_with("#EXT-X-ENDLIST\n")
    })
    .unwrap_or_else(|e| panic!("{e}: {ended}"));
    let ended_at = Instant::now();
    let last = ended
        .lines()
        .rfind(|l| l.ends_with(".ts"))
        .expect("the ended playlist lists segments");
    let (status, _, body) = http_get(&server.url(&format!("/shrink/track_2/{last}"))).unwrap();
    assert_eq!(
        status, 200,
        "the last segment of the removed rung is served"
    );
    assert!(body.len() >= 188 && body[0] == 0x47, "an MPEG-TS segment");

    // Rung 0 ran on untouched, and its playlist goes on.
    assert_eq!(profiles(server, "shrink").len(), 1);
    assert_eq!(profiles(server, "shrink")[0]["pid"].as_u64(), Some(high));
    let before = get_text(server, "/shrink/track_1/index.m3u8").unwrap_or_default();
    wait_until(Duration::from_secs(10), "track_1 goes on", || {
        get_text(server, "/shrink/track_1/index.m3u8")
            .is_some_and(|p| !p.contains("#EXT-X-ENDLIST") && p != before)
    })
    .unwrap();

    // Two windows later, the removed rung is gone.
    wait_until(Duration::from_secs(30), "track_2 404", || {
        get_text(server, "/shrink/track_2/index.m3u8").is_none()
    })
    .unwrap();
    let lingered = ended_at.elapsed();
    assert!(
        lingered >= Duration::from_secs(9),
        "served {lingered:?} after it ended, not two windows (12 s)"
    );
    assert_eq!(server.runtime("shrink")["status"], "active");
}

#[test]
fn ffmpeg_children_die_with_a_sigkilled_server() {
    let Running {
        server,
        port: _,
        _sender,
        _dir,
        _turn,
    } = Running::start("orphan", "per_profile");
    let mut children = Vec::new();
    wait_until(Duration::from_secs(30), "two FFmpeg children", || {
        children = pids(&server, "orphan");
        children.len() == 2
    })
    .unwrap();
    assert!(children.iter().all(|&p| alive(p)));
    let killed = Instant::now();
    server.kill9();
    wait_until(Duration::from_secs(2), "FFmpeg children gone", || {
        children.iter().all(|&p| !alive(p))
    })
    .unwrap_or_else(|e| panic!("{e}: {children:?} outlived the server"));
    assert!(killed.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_missing_ffmpeg_is_transcoder_unavailable_and_the_rest_runs() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[("TRIBUTARY_TRANSCODER__FFMPEG_PATH", "/nonexistent/ffmpeg")],
    );
    put_stream(
        &server,
        "noffmpeg",
        &ladder_body(free_udp_port(), "multi", 300),
    );
    let passthrough = free_udp_port();
    put_stream(
        &server,
        "plain",
        &format!(
            r#"{{"inputs":[{{"url":"udp://127.0.0.1:{passthrough}"}}],"protocols":{{"hls":true}}}}"#
        ),
    );
    let _sender = LiveSender::start(&clip(), passthrough).expect("start the UDP sender");
    let runtime = server.runtime("noffmpeg");
    assert_eq!(runtime["status"], "degraded", "{runtime}");
    assert_eq!(
        runtime["status_reasons"],
        serde_json::json!(["transcoder_unavailable"])
    );
    assert_eq!(runtime["transcoder"]["status"], "unavailable");
    let error = runtime["transcoder"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("/nonexistent/ffmpeg") && error.contains("PATH="),
        "the reason names the path: {runtime}"
    );
    // The boot probe says so in GET /config.
    let config = crate::server::send("GET", &server.url("/config"), None, &[]);
    assert_eq!(
        config.body["ffmpeg"]["ok"], false,
        "{}",
        config.body["ffmpeg"]
    );
    assert!(
        config.body["ffmpeg"]["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("/nonexistent/ffmpeg")),
        "{}",
        config.body["ffmpeg"]
    );
    // Everything else works: the passthrough stream plays.
    wait_until(
        Duration::from_secs(30),
        "the passthrough stream plays",
        || get_text(&server, "/plain/index.m3u8").is_some_and(|p| p.contains("#EXTINF")),
    )
    .unwrap();
    assert_eq!(server.runtime("plain")["status"], "active");
}

#[test]
fn the_ffmpeg_probe_reports_version_encoders_and_hwaccels_and_names_an_unusable_binary() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let installed = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .expect("ffmpeg -version");
    let first_line = String::from_utf8_lossy(&installed.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();

    // The boot probe, in GET /config.
    let config = crate::server::send("GET", &server.url("/config"), None, &[]);
    let ffmpeg = &config.body["ffmpeg"];
    assert_eq!(ffmpeg["ok"], true, "{ffmpeg}");
    let version = ffmpeg["version"].as_str().unwrap_or_default();
    assert!(
        !version.is_empty() && first_line.contains(version),
        "{ffmpeg} vs {first_line}"
    );

    // The endpoint, on PATH's ffmpeg.
    let url = server.url("/config/transcoder/probe");
    let answer = crate::server::send("POST", &url, Some(r#"{"ffmpeg_path": ""}"#), &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let report = &answer.body;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["version"], version, "{report}");
    assert!(
        report["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("/ffmpeg")),
        "{report}"
    );
    assert_eq!(
        report["encoders"]["required"],
        serde_json::json!(["libx264", "aac"])
    );
    assert_eq!(report["muxers"], serde_json::json!(["mpegts"]));
    assert!(
        report["filters"]
            .as_array()
            .is_some_and(|f| f.contains(&"drawtext".into())),
        "{report}"
    );
    // The build's hardware acceleration methods, as `ffmpeg -hwaccels` lists them.
    let hwaccels = Command::new("ffmpeg")
        .args(["-hide_banner", "-hwaccels"])
        .output()
        .expect("ffmpeg -hwaccels");
    let listed: Vec<String> = String::from_utf8_lossy(&hwaccels.stdout)
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    assert_eq!(report["hwaccels"], serde_json::json!(listed), "{report}");

    // Unusable binaries: 502 with the reason, and the report.
    for (path, reason) in [
        ("/nonexistent/ffmpeg", "/nonexistent/ffmpeg"),
        ("/bin/true", "does not say \"ffmpeg version\""),
    ] {
        let body = format!(r#"{{"ffmpeg_path": "{path}"}}"#);
        let answer = crate::server::send("POST", &url, Some(&body), &[]);
        assert_eq!(answer.status, 502, "{}", answer.body);
        let error = &answer.body["error"];
        assert_eq!(error["code"], "FFMPEG_UNUSABLE", "{error}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{error}");
        assert_eq!(error["probe"]["ok"], false, "{error}");
    }
    // A bad body names the field.
    let answer = crate::server::send("POST", &url, Some(r#"{"path": "/usr/bin/ffmpeg"}"#), &[]);
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert_eq!(answer.body["error"]["fields"][0]["path"], "path");
    // The route is documented.
    let doc = crate::server::send("GET", &server.url("/swagger/doc.json"), None, &[]);
    assert!(doc.body["paths"]["/config/transcoder/probe"]["post"].is_object());
}

/// One 640x360 rung over an RTMP publish input, HLS and RTMP play on; without `ladder`, the
/// same stream in passthrough.
fn switch_body(ladder: bool) -> String {
    let transcoder = if ladder {
        r#","transcoder":{"mode":"multi","audio":{"bitrate":96},"video":{"profiles":[
            {"width":640,"height":360,"bitrate":800,"preset":"ultrafast"}]}}"#
    } else {
        ""
    };
    format!(
        r#"{{"inputs":[{{"url":"publish://"}}],"protocols":{{"hls":true,"rtmp":true}}{transcoder}}}"#
    )
}

#[test]
fn passthrough_to_transcoding_and_back_keeps_the_publisher_and_rtmp_players_connected() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let port = tributary_testkit::free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{port}"));
    put_stream(&server, "flip", &switch_body(false));
    let url = format!("rtmp://127.0.0.1:{port}/live/flip");
    let clip = tributary_testkit::cached_clip(&tributary_testkit::ClipSpec::default(), "mp4")
        .expect("encode the test clip");
    let mut publisher = LiveSender::rtmp(&clip, &url).expect("start the publisher");
    wait_until(Duration::from_secs(30), "passthrough HLS", || {
        get_text(&server, "/flip/index.m3u8").is_some_and(|p| p.matches("#EXTINF").count() >= 2)
    })
    .unwrap();
    let started_at = server.runtime("flip")["started_at"].clone();

    // One RTMP player for the whole test: ffmpeg copying what it gets into a file.
    let recording = dir.path().join("player.ts");
    let log = dir.path().join("player.log");
    let mut player = tributary_testkit::ffmpeg()
        .args([
            "-i",
            &url,
            "-c",
            "copy",
            "-flush_packets",
            "1",
            "-f",
            "mpegts",
        ])
        .arg(&recording)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start an ffmpeg RTMP player");
    let size = || std::fs::metadata(&recording).map_or(0, |m| m.len());
    let grows = |what: &str| {
        let from = size();
        wait_until(Duration::from_secs(20), what, || size() > from + 200_000).unwrap();
    };
    grows("the player receives the passthrough stream");
    let picture = || {
        let streams = probe_streams(&url).unwrap_or_else(|e| panic!("ffprobe {url}: {e}"));
        streams
            .iter()
            .find(|s| s.codec_type.as_deref() == Some("video"))
            .and_then(|v| Some((v.width?, v.height?)))
    };
    assert_eq!(picture(), Some((1280, 720)));

    // Passthrough → transcoding: FFmpeg starts, HLS becomes a master, RTMP plays the rung.
    let answer = crate::server::send(
        "PUT",
        &server.url("/streams/flip"),
        Some(&switch_body(true)),
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    wait_until(Duration::from_secs(60), "the rung's playlist", || {
        get_text(&server, "/flip/track_1/index.m3u8")
            .is_some_and(|p| p.matches("#EXTINF").count() >= 2)
    })
    .unwrap_or_else(|e| panic!("{e}: {:#}", server.runtime("flip")));
    let ffmpeg = pids(&server, "flip");
    assert_eq!(ffmpeg.len(), 1, "{:#}", server.runtime("flip"));
    assert_eq!(picture(), Some((640, 360)));
    grows("the player receives the transcoded stream");

    // A rung's bitrate changes: `multi` restarts its one FFmpeg; the player stays on.
    let answer = crate::server::send(
        "PUT",
        &server.url("/streams/flip"),
        Some(&switch_body(true).replace("\"bitrate\":800", "\"bitrate\":600")),
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    wait_until(Duration::from_secs(20), "a new FFmpeg", || {
        pids(&server, "flip")
            .first()
            .is_some_and(|p| *p != ffmpeg[0])
    })
    .unwrap();
    assert!(!alive(ffmpeg[0]), "the old FFmpeg is gone");
    let ffmpeg = pids(&server, "flip");
    grows("the player receives the re-encoded stream");

    // And back: FFmpeg goes, the ingest feeds the main buffer again.
    let answer = crate::server::send(
        "PUT",
        &server.url("/streams/flip"),
        Some(&switch_body(false)),
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    wait_until(Duration::from_secs(30), "passthrough HLS again", || {
        get_text(&server, "/flip/index.m3u8")
            .is_some_and(|p| !p.contains("#EXT-X-STREAM-INF") && p.matches("#EXTINF").count() >= 2)
    })
    .unwrap();
    wait_until(Duration::from_secs(10), "FFmpeg gone", || !alive(ffmpeg[0])).unwrap();
    assert_eq!(picture(), Some((1280, 720)));
    grows("the player receives the passthrough stream again");

    // Nobody reconnected: the player and the publisher ran throughout, the stream never
    // restarted, its input logged no error.
    assert!(
        player.try_wait().unwrap().is_none(),
        "the RTMP player was disconnected:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(publisher.is_running(), "the publisher was disconnected");
    let runtime = server.runtime("flip");
    assert_eq!(runtime["started_at"], started_at, "{runtime:#}");
    assert_eq!(runtime["status"], "active", "{runtime:#}");
    let errors = &runtime["inputs"][0]["errors"];
    assert!(errors.as_array().is_none_or(Vec::is_empty), "{runtime:#}");
    let _ = player.kill();
    let _ = player.wait();
    // The player's timeline never went back across the two switches.
    let packets = tributary_testkit::probe_packets(recording.to_str().unwrap(), &[]).unwrap();
    let dts: Vec<f64> = packets
        .iter()
        .filter(|p| p.codec_type.as_deref() == Some("video"))
        .filter_map(|p| p.dts_time)
        .collect();
    assert!(dts.len() > 300, "{} video frames", dts.len());
    let back = dts.windows(2).find(|w| w[1] <= w[0]);
    assert!(back.is_none(), "video DTS went back: {back:?}");
    // The picture paused at most while FFmpeg started (measured: 1.5 s one way, under a
    // frame's time the other).
    let hole = dts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    assert!(hole < 4.0, "the player's picture stopped for {hole} s");
}

#[test]
fn an_input_failover_is_invisible_to_ffmpeg() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let ports = [free_udp_port(), free_udp_port()];
    let mut primary = LiveSender::start(&clip(), ports[0]).expect("start the primary");
    let _backup = LiveSender::start(&clip(), ports[1]).expect("start the backup");
    put_stream(
        &server,
        "fo",
        &format!(
            r#"{{"inputs":[{{"url":"udp://127.0.0.1:{}","priority":0,"packet_timeout_sec":2}},
                          {{"url":"udp://127.0.0.1:{}","priority":1}}],
                "protocols":{{"hls":true}},
                "transcoder":{{"mode":"multi","audio":{{"bitrate":96}},"video":{{"profiles":[
                  {{"width":640,"height":360,"bitrate":800,"preset":"ultrafast"}}]}}}}}}"#,
            ports[0], ports[1]
        ),
    );
    let rung = |server: &Server| get_text(server, "/fo/track_1/index.m3u8").unwrap_or_default();
    wait_until(Duration::from_secs(60), "the rung's playlist", || {
        rung(&server).matches("#EXTINF").count() >= 2
    })
    .unwrap_or_else(|e| panic!("{e}: {:#}", server.runtime("fo")));
    let ffmpeg = pids(&server, "fo");
    assert_eq!(ffmpeg.len(), 1);

    // The primary goes silent: the 2 s timeout moves the stream to the backup.
    primary.kill();
    wait_until(Duration::from_secs(20), "input 1 active", || {
        server.runtime("fo")["active_input_priority"] == 1
    })
    .unwrap();
    let switched = rung(&server);
    let last = |text: &str| {
        text.lines()
            .rfind(|l| l.ends_with(".ts"))
            .map(str::to_owned)
    };
    // Three more segments of the rung: FFmpeg never saw the switch (same process, no restart,
    // the rung's timeline unbroken: no discontinuity).
    let mut after = String::new();
    wait_until(
        Duration::from_secs(30),
        "three segments after the switch",
        || {
            after = rung(&server);
            let from = last(&switched).unwrap_or_default();
            after
                .lines()
                .filter(|l| l.ends_with(".ts") && **l > *from)
                .count()
                >= 3
        },
    )
    .unwrap();
    assert_eq!(pids(&server, "fo"), ffmpeg, "FFmpeg was restarted");
    assert!(alive(ffmpeg[0]));
    assert_eq!(profiles(&server, "fo")[0]["restart_count"], 0);
    assert!(
        !after.lines().any(|l| l == "#EXT-X-DISCONTINUITY"),
        "the rung's playlist broke at the failover:\n{after}"
    );
}
