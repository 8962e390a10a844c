//! Hot apply through the config API (issue 18 item 3, SPEC §Config "Hot apply"), on the real
//! binary and without a restart: a hook setting changed in `[hooks]` reaches a running
//! batcher, the SSRF guard, the admin token and `public_metrics` apply to the next delivery
//! or request, `log.level` and `log.format` change what the process logs, a running HLS
//! playlist follows `publisher.hls.live_window` and a running DASH MPD `publisher.dash.window`
//! (without restarting its packagers), a running playlist switches to a new
//! `publisher.hls.live_segment_sec` at the next keyframe (numbers on, one discontinuity), a
//! running MPD opens a Period of segments of a new `publisher.dash.segment_sec` (dash.js plays
//! across), a saved `transcoder.ffmpeg_path` is probed (an
//! unusable one refused) and restarts only the transcoders, and an SRT publisher on the old port keeps
//! going (as does an RTSP player) while the moved listener drains.

use std::time::Duration;

use serde_json::{Value, json};
use tributary_testkit::{LiveSender, free_tcp_port, free_udp_port, http_get, wait_until};

use crate::hls::{clip, udp_live, wait_new_segment, wait_segments};
use crate::hooks::{Inbox, Receiver, create_stream, types_for};
use crate::server::{Answer, Server, send};
use crate::turn::{heavy, shared};

fn call(server: &Server, method: &str, path: &str, body: Option<&Value>, token: &str) -> Answer {
    let text = body.map(Value::to_string);
    let bearer = format!("Bearer {token}");
    let headers: Vec<(&str, &str)> = if token.is_empty() {
        Vec::new()
    } else {
        vec![("Authorization", bearer.as_str())]
    };
    send(method, &server.url(path), text.as_deref(), &headers)
}

fn post_config(server: &Server, body: Value) -> Answer {
    call(server, "POST", "/config", Some(&body), "")
}

/// `POST /config` with `body`, applied (200).
fn apply(server: &Server, body: Value) {
    let answer = post_config(server, body);
    assert_eq!(answer.status, 200, "{}", answer.body);
}

/// `POST /config` with `body`, refused as needing a restart (422 `UNSUPPORTED`).
fn needs_restart(server: &Server, body: Value) {
    let answer = post_config(server, body);
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert_eq!(
        answer.body["error"]["code"], "UNSUPPORTED",
        "{}",
        answer.body
    );
}

/// A server whose only listener is `name` (`srt` on UDP, `rtsp` on TCP) on a free loopback
/// port, with `more` in its section, all from the file so the config API may move it; and
/// that port and another free one to move it to.
fn only_listener(dir: &std::path::Path, name: &str, more: &str) -> (Server, u16, u16) {
    let free = if name == "srt" {
        free_udp_port
    } else {
        free_tcp_port
    };
    let (port, other) = (free(), free());
    let mut toml = String::new();
    for off in ["rtmp", "srt", "rtsp"].into_iter().filter(|l| *l != name) {
        toml.push_str(&format!("[listeners.{off}]\nenabled = false\n\n"));
    }
    toml.push_str(&format!(
        "[listeners.{name}]\nlisten_host = \"127.0.0.1\"\nport = {port}\n{more}"
    ));
    (Server::start_config_listeners(dir, &toml), port, other)
}

/// Moves listener `name` to `port` through the config API.
fn move_listener(server: &Server, name: &str, port: u16) {
    let moved = post_config(server, json!({"listeners": {name: {"port": port}}}));
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(
        moved.body["ports"][format!("{name}_port")],
        port,
        "{}",
        moved.body
    );
}

#[test]
fn hook_and_security_settings_apply_to_the_next_delivery_and_request() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(0, Inbox::default());
    // A partial batch waits a minute: nothing arrives until the setting changes.
    let toml = "[hooks]\nbatch_flush_interval_sec = 60\nbatch_max_items = 100\n";
    let server = Server::start_config(dir.path(), toml, "off");
    let hook = json!({"id": "ops", "type": "http", "target": receiver.url("/in")});
    assert_eq!(call(&server, "POST", "/hooks", Some(&hook), "").status, 201);
    create_stream(&server, "a");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        types_for(&receiver.events("/in"), "a").is_empty(),
        "a partial batch flushed before its interval"
    );

    // `hooks.*`: the running batcher takes the new interval at once.
    apply(&server, json!({"hooks": {"batch_flush_interval_sec": 1}}));
    wait_until(Duration::from_secs(10), "the held batch", || {
        types_for(&receiver.events("/in"), "a").contains(&"stream.created".to_owned())
    })
    .unwrap();

    // Switching hooks off is a restart, and says so.
    needs_restart(&server, json!({"hooks": null}));

    // `security.ssrf_guard`: the next delivery dials through the new guard, both ways.
    apply(&server, json!({"security": {"ssrf_guard": "strict"}}));
    let tested = call(&server, "POST", "/hooks/ops/test", None, "");
    assert_eq!(tested.status, 502, "{}", tested.body);
    let message = tested.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("blocked by ssrf_guard"), "{message}");
    apply(&server, json!({"security": {"ssrf_guard": "metadata"}}));
    let tested = call(&server, "POST", "/hooks/ops/test", None, "");
    assert_eq!(tested.status, 200, "{}", tested.body);

    // `security.loopback_bypass` off: the admin token is needed from here on; a new token
    // replaces the old one at the next request; `public_metrics` opens `/metrics` at once.
    let token = std::fs::read_to_string(dir.path().join("data/admin-token")).unwrap();
    let token = token.trim();
    apply(&server, json!({"security": {"loopback_bypass": false}}));
    assert_eq!(call(&server, "GET", "/metrics", None, "").status, 401);
    let rotated = "rotated-admin-token-0123456789abcdef";
    let rotate = json!({"security": {"admin_token": rotated}});
    let answer = call(&server, "POST", "/config", Some(&rotate), token);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(call(&server, "GET", "/streams", None, token).status, 401);
    assert_eq!(call(&server, "GET", "/streams", None, rotated).status, 200);
    let public = json!({"security": {"public_metrics": true}});
    let answer = call(&server, "POST", "/config", Some(&public), rotated);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(call(&server, "GET", "/metrics", None, "").status, 200);
    assert_eq!(call(&server, "GET", "/streams", None, "").status, 401);
}

#[test]
fn log_level_and_format_apply_at_once() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    // JSON from the file, not the environment, so the config API may change the format.
    let server = Server::start_config(dir.path(), "[log]\nformat = \"json\"\n", "off");
    let debug = |server: &Server| server.logged(|line| line["level"] == "DEBUG").len();
    create_stream(&server, "a");
    assert_eq!(debug(&server), 0, "DEBUG lines at the default level");

    apply(&server, json!({"log": {"level": "debug"}}));
    create_stream(&server, "b");
    wait_until(Duration::from_secs(10), "a DEBUG line", || {
        debug(&server) > 0
    })
    .unwrap();

    apply(&server, json!({"log": {"level": "info"}}));
    std::thread::sleep(Duration::from_secs(1));
    let before = debug(&server);
    create_stream(&server, "c");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        debug(&server),
        before,
        "DEBUG lines after going back to info"
    );

    // The format: text lines are not JSON (the harness keeps them as null).
    let not_json = |server: &Server| server.logged(Value::is_null).len();
    apply(&server, json!({"log": {"format": "text"}}));
    create_stream(&server, "d");
    wait_until(Duration::from_secs(10), "a text log line", || {
        not_json(&server) > 0
    })
    .unwrap();
}

#[test]
fn an_srt_publisher_on_the_old_port_keeps_going_while_the_moved_listener_drains() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let (server, old_port, new_port) = only_listener(dir.path(), "srt", "");
    for code in ["studio", "second"] {
        crate::server::put_publish_stream(&server, code);
    }
    let clip = clip();
    let srt =
        |port: u16, code: &str| format!("srt://127.0.0.1:{port}?streamid=publish:live/{code}");
    let _studio = LiveSender::start_url(&clip, &srt(old_port, "studio")).expect("publish");
    wait_segments(&server, "studio", 2, Duration::from_secs(30));

    move_listener(&server, "srt", new_port);

    // During the drain the publisher on the old port still feeds new segments, and a new
    // publisher goes to the new port.
    wait_new_segment(&server, "studio", Duration::from_secs(8));
    let _second = LiveSender::start_url(&clip, &srt(new_port, "second")).expect("publish");
    wait_segments(&server, "second", 2, Duration::from_secs(30));
    assert!(
        !server
            .logged(|line| line["fields"]["message"] == "SRT listener draining")
            .is_empty()
    );
}

#[test]
fn a_running_hls_playlist_follows_the_window_at_once() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let six = "[publisher.hls]\nlive_window = 6\n";
    let server = Server::start_config(dir.path(), six, "off");
    let _sender = udp_live(&server, "cam");
    wait_segments(&server, "cam", 4, Duration::from_secs(30));
    let listed = |server: &Server| {
        let (_, _, body) = http_get(&server.url("/cam/index.m3u8")).unwrap();
        let text = String::from_utf8_lossy(&body).into_owned();
        let sequence: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        (text.matches("#EXTINF").count(), sequence)
    };
    let (_, first_sequence) = listed(&server);

    // Smaller: the oldest segments slide out with the answer, numbering goes on.
    apply(&server, json!({"publisher": {"hls": {"live_window": 2}}}));
    // (Sliding alone could not get there: a segment comes every 2 s.)
    wait_until(Duration::from_millis(1500), "2 segments listed", || {
        listed(&server).0 == 2
    })
    .unwrap();
    let (_, sequence) = listed(&server);
    assert!(
        sequence > first_sequence,
        "{sequence} after {first_sequence}"
    );

    // Larger: more are listed as segments come.
    apply(&server, json!({"publisher": {"hls": {"live_window": 4}}}));
    wait_until(Duration::from_secs(20), "4 segments listed", || {
        listed(&server).0 == 4
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(listed(&server).0, 4, "the window stays at 4");
}

/// `(number, duration)` of every segment `playlist` lists, and how many segments precede
/// each `#EXT-X-DISCONTINUITY`.
fn listed_segments(playlist: &str) -> (Vec<(u64, f64)>, Vec<usize>) {
    let (mut segments, mut cuts) = (Vec::new(), Vec::new());
    let mut duration = 0.0;
    for line in playlist.lines() {
        if line == "#EXT-X-DISCONTINUITY" {
            cuts.push(segments.len());
        } else if let Some(extinf) = line.strip_prefix("#EXTINF:") {
            duration = extinf.trim_end_matches(',').parse().unwrap();
        } else if let Some(name) = line.strip_prefix("seg_") {
            let number = name.trim_end_matches(".ts").parse().unwrap();
            segments.push((number, duration));
        }
    }
    (segments, cuts)
}

/// The segments `numbers` of `/cam/`, concatenated into `path` (one span between
/// discontinuities: one timeline for ffprobe).
fn span_ts(server: &Server, numbers: &[u64], path: &std::path::Path) -> String {
    let mut ts = Vec::new();
    for number in numbers {
        let name = format!("seg_{number:06}.ts");
        let (status, _, body) = http_get(&server.url(&format!("/cam/{name}"))).unwrap();
        assert_eq!(status, 200, "{name} listed but not served");
        ts.extend_from_slice(&body);
    }
    std::fs::write(path, ts).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_running_hls_playlist_switches_to_a_new_segment_length_at_the_next_keyframe() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_config(dir.path(), "[publisher.hls]\nlive_window = 12\n", "off");
    let _sender = udp_live(&server, "cam");
    let before = wait_segments(&server, "cam", 3, Duration::from_secs(30));
    assert!(before.contains("#EXT-X-TARGETDURATION:2\n"), "{before}");
    let (old, _) = listed_segments(&before);
    let started_at = server.runtime("cam")["started_at"].clone();

    // The clip has a keyframe every 2 s: S = 4 s cuts every other one.
    apply(
        &server,
        json!({"publisher": {"hls": {"live_segment_sec": 4.0}}}),
    );
    let mut text = String::new();
    wait_until(Duration::from_secs(40), "3 segments of 4 s", || {
        let (_, _, body) = http_get(&server.url("/cam/index.m3u8")).unwrap();
        text = String::from_utf8_lossy(&body).into_owned();
        let (segments, cuts) = listed_segments(&text);
        cuts.first().is_some_and(|&cut| segments.len() - cut >= 3)
    })
    .unwrap();
    let (segments, cuts) = listed_segments(&text);
    assert_eq!(cuts.len(), 1, "one discontinuity:\n{text}");
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:0\n"), "{text}");
    // What the listed segments need: every EXTINF, rounded, at most TARGETDURATION, which
    // the first new segment fixed at ceil(max(4, its length)) (the clip's loop point can
    // stretch one a little).
    let target: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .and_then(|t| t.parse().ok())
        .unwrap();
    assert!((4.0..=5.0).contains(&target), "{text}");
    assert!(segments.iter().all(|(_, d)| d.round() <= target), "{text}");
    // Numbering continues: one run of numbers through the switch, the old ones still listed.
    let numbers: Vec<u64> = segments.iter().map(|(n, _)| *n).collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{text}");
    assert!(numbers.contains(&old.last().unwrap().0), "{text}");
    let (earlier, later) = segments.split_at(cuts[0]);
    assert!(earlier.iter().all(|(_, d)| *d <= 2.2), "{text}");
    assert!(later.iter().all(|(_, d)| (3.9..=4.2).contains(d)), "{text}");

    // The stream never stopped: each span's timeline rises, and the new one starts where
    // the old one ended (the same source, cut elsewhere).
    let mut ends = Vec::new();
    for (name, span) in [("earlier", earlier), ("later", later)] {
        let numbers: Vec<u64> = span.iter().map(|(n, _)| *n).collect();
        let path = span_ts(&server, &numbers, &dir.path().join(format!("{name}.ts")));
        let audio = tributary_testkit::rising_dts(&path, "a").unwrap();
        let video = tributary_testkit::rising_dts(&path, "v").unwrap();
        let listed: f64 = span.iter().map(|(_, d)| d).sum();
        let covered = video.last().unwrap() - video.first().unwrap();
        assert!(
            (covered - listed).abs() < 0.2,
            "{name}: {covered} s of video, {listed} s listed"
        );
        assert!(!audio.is_empty(), "{name}: audio");
        ends.push((video[0], *video.last().unwrap()));
    }
    let gap = ends[1].0 - ends[0].1;
    assert!(
        (0.0..0.1).contains(&gap),
        "video resumes {gap} s after the switch"
    );
    assert_eq!(
        server.runtime("cam")["started_at"],
        started_at,
        "the stream did not restart"
    );
}

#[test]
fn a_new_segment_length_restarts_only_the_transcoders_whose_keyframe_interval_follows_it() {
    use crate::transcode::pids;
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_config(dir.path(), "[publisher.hls]\nlive_window = 12\n", "off");
    // `derived` forces keyframes every live_segment_sec; `fixed` every 2 s whatever it is.
    let mut senders = Vec::new();
    for (code, interval) in [("derived", 0.0), ("fixed", 2.0)] {
        let port = free_udp_port();
        let body = json!({"inputs": [{"url": format!("udp://127.0.0.1:{port}")}],
                          "protocols": {"hls": true},
                          "transcoder": {"audio": {"bitrate": 64}, "video": {"profiles": [
                              {"width": 320, "height": 180, "bitrate": 300,
                               "preset": "ultrafast", "keyframe_interval": interval}]}}});
        let created = call(&server, "PUT", &format!("/streams/{code}"), Some(&body), "");
        assert_eq!(created.status, 201, "{}", created.body);
        senders.push(LiveSender::start(&clip(), port).expect("start the UDP sender"));
    }
    let rung = |code: &str| {
        server
            .text(&format!("/{code}/track_1/index.m3u8"))
            .unwrap_or_default()
    };
    for code in ["derived", "fixed"] {
        wait_until(Duration::from_secs(60), "2 rung segments", || {
            listed_segments(&rung(code)).0.len() >= 2
        })
        .unwrap_or_else(|e| panic!("{e}: {}", server.runtime(code)));
    }
    let before: Vec<(Vec<u32>, usize)> = ["derived", "fixed"]
        .iter()
        .map(|code| (pids(&server, code), listed_segments(&rung(code)).1.len()))
        .collect();

    apply(
        &server,
        json!({"publisher": {"hls": {"live_segment_sec": 4.0}}}),
    );
    // Each playlist: one discontinuity more, then segments of 4 s. (The restarted FFmpeg
    // forces keyframes on the instants every 4 s after its first one, so the first new
    // segment of `derived`, from the switch, runs to the first of them at least 4 s on: up to
    // 8 s plus the restart's gap; below 3 × S, where a segment is cut without a keyframe.)
    for (code, (_, cuts_before)) in ["derived", "fixed"].iter().zip(&before) {
        let mut text = String::new();
        wait_until(
            Duration::from_secs(60),
            "3 segments of the new length",
            || {
                text = rung(code);
                let (segments, cuts) = listed_segments(&text);
                cuts.len() > *cuts_before && segments.len() - cuts[cuts.len() - 1] >= 3
            },
        )
        .unwrap_or_else(|e| panic!("{e}: {code}:\n{text}"));
        let (segments, cuts) = listed_segments(&text);
        assert_eq!(
            cuts.len(),
            cuts_before + 1,
            "{code}: one discontinuity:\n{text}"
        );
        let later = &segments[cuts[cuts.len() - 1]..];
        assert!((3.9..12.0).contains(&later[0].1), "{code}:\n{text}");
        assert!(
            later[1..].iter().all(|(_, d)| (3.9..=4.2).contains(d)),
            "{code}:\n{text}"
        );
        let target: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
            .and_then(|t| t.parse().ok())
            .unwrap();
        assert!(
            segments.iter().all(|(_, d)| d.round() <= target),
            "{code}:\n{text}"
        );
        let numbers: Vec<u64> = segments.iter().map(|(n, _)| *n).collect();
        assert!(
            numbers.windows(2).all(|w| w[1] == w[0] + 1),
            "{code}:\n{text}"
        );
    }
    // Only the FFmpeg whose GOP follows the segment length restarted.
    let now = pids(&server, "derived");
    assert!(
        !now.is_empty() && now != before[0].0,
        "derived: {now:?} after {:?}",
        before[0].0
    );
    assert_eq!(pids(&server, "fixed"), before[1].0, "fixed kept its FFmpeg");
}

#[test]
fn a_new_segment_length_restarts_a_grid_ladders_packagers_with_aligned_numbers() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_config(dir.path(), "[publisher.hls]\nlive_window = 12\n", "off");
    // Two rungs forcing keyframes every live_segment_sec: their variants are cut and numbered
    // on that grid.
    let port = free_udp_port();
    let rung = |w: u32, h: u32, kbps: u32| json!({"width": w, "height": h, "bitrate": kbps, "preset": "ultrafast"});
    let body = json!({"inputs": [{"url": format!("udp://127.0.0.1:{port}")}],
                      "protocols": {"hls": true},
                      "transcoder": {"audio": {"bitrate": 64}, "video": {"profiles": [
                          rung(320, 180, 300), rung(160, 90, 150)]}}});
    let created = call(&server, "PUT", "/streams/abr", Some(&body), "");
    assert_eq!(created.status, 201, "{}", created.body);
    let _sender = LiveSender::start(&clip(), port).expect("start the UDP sender");
    let variant = |n: u32| {
        server
            .text(&format!("/abr/track_{n}/index.m3u8"))
            .unwrap_or_default()
    };
    wait_until(
        Duration::from_secs(60),
        "2 segments in each variant",
        || (1..=2).all(|n| listed_segments(&variant(n)).0.len() >= 2),
    )
    .unwrap_or_else(|e| panic!("{e}: {}", server.runtime("abr")));
    let last_before = listed_segments(&variant(1)).0.last().unwrap().0;

    apply(
        &server,
        json!({"publisher": {"hls": {"live_segment_sec": 4.0}}}),
    );
    // Restarted with the new grid: each variant lists 4 s segments, numbered past every old
    // one, the same numbers for the same cells in both.
    let mut texts = [String::new(), String::new()];
    wait_until(
        Duration::from_secs(60),
        "3 segments of 4 s in each variant",
        || {
            texts = [variant(1), variant(2)];
            texts.iter().all(|text| {
                let (segments, _) = listed_segments(text);
                segments.first().is_some_and(|(n, _)| *n > last_before)
                    && segments
                        .iter()
                        .filter(|(_, d)| (3.9..=4.2).contains(d))
                        .count()
                        >= 3
            })
        },
    )
    .unwrap_or_else(|e| panic!("{e}:\n{}\n{}", texts[0], texts[1]));
    let [one, two] = texts.map(|text| listed_segments(&text).0);
    let common: Vec<&(u64, f64)> = one
        .iter()
        .filter(|(n, _)| two.iter().any(|(m, _)| m == n))
        .collect();
    assert!(common.len() >= 2, "{one:?}\n{two:?}");
    for (number, duration) in common.iter().skip(1) {
        let other = two.iter().find(|(m, _)| m == number).unwrap().1;
        assert!(
            (duration - other).abs() < 0.1,
            "segment {number}: {duration} and {other}"
        );
    }
    let master = server.text("/abr/index.m3u8").unwrap_or_default();
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 2, "{master}");
}

/// Stream `cam` with HLS and DASH on, fed the clip over UDP by the returned sender.
fn dash_live(server: &Server) -> LiveSender {
    let port = free_udp_port();
    let body = json!({"inputs": [{"url": format!("udp://127.0.0.1:{port}")}],
                      "protocols": {"hls": true, "dash": true}});
    let created = call(server, "PUT", "/streams/cam", Some(&body), "");
    assert_eq!(created.status, 201, "{}", created.body);
    LiveSender::start(&clip(), port).expect("start the UDP sender")
}

#[test]
fn a_running_dash_mpd_follows_the_window_at_once() {
    use crate::dash::{first_attr, timelines, wait_mpd};
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_config(dir.path(), "[publisher.dash]\nwindow = 6\n", "off");
    let _sender = dash_live(&server);
    let mpd = wait_mpd(&server, "cam", 5);
    // (video segments listed, startNumber, timeShiftBufferDepth, availabilityStartTime)
    let read = |mpd: &str| {
        let listed = timelines(mpd).first().map_or(0, Vec::len);
        let start: u64 = first_attr(mpd, "startNumber")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let depth = first_attr(mpd, "timeShiftBufferDepth").map(str::to_owned);
        let origin = first_attr(mpd, "availabilityStartTime").map(str::to_owned);
        (listed, start, depth, origin)
    };
    let now = |server: &Server| read(&server.text("/cam/index.mpd").unwrap_or_default());
    let (_, first_start, depth, origin) = read(&mpd);
    assert_eq!(depth.as_deref(), Some("PT12S"), "S × W = 2 × 6:\n{mpd}");
    let started_at = server.runtime("cam")["started_at"].clone();
    let (_, _, hls_before) = http_get(&server.url("/cam/index.m3u8")).unwrap();

    // Smaller: the oldest segments leave the MPD with the answer, numbering goes on and the
    // depth says 2 × 2 s.
    apply(&server, json!({"publisher": {"dash": {"window": 2}}}));
    wait_until(
        Duration::from_millis(1500),
        "2 video segments listed",
        || now(&server).0 == 2,
    )
    .unwrap();
    let (_, start, depth, same_origin) = now(&server);
    assert_eq!(depth.as_deref(), Some("PT4S"));
    assert!(start > first_start, "{start} after {first_start}");
    // The same packagers: the MPD keeps its availabilityStartTime, the stream its start.
    assert_eq!(same_origin, origin);
    assert_eq!(server.runtime("cam")["started_at"], started_at);
    // HLS is not touched: its playlist keeps its window and moves on.
    let (_, _, hls_after) = http_get(&server.url("/cam/index.m3u8")).unwrap();
    let listed = |body: &[u8]| String::from_utf8_lossy(body).matches("#EXTINF").count();
    assert!(
        listed(&hls_after) >= listed(&hls_before).min(4),
        "HLS window shrank"
    );

    // Larger, with the other live fields: more are listed as segments come.
    apply(
        &server,
        json!({"publisher": {"dash": {"window": 4, "pairing_sec": 2.0,
                                      "track_loss_sec": 8.0, "queue_frames": 600}}}),
    );
    wait_until(Duration::from_secs(20), "4 video segments listed", || {
        now(&server).0 == 4
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let (listed_now, _, depth, same_origin) = now(&server);
    assert_eq!(listed_now, 4, "the window stays at 4");
    assert_eq!(depth.as_deref(), Some("PT8S"));
    assert_eq!(same_origin, origin);
    assert_eq!(server.runtime("cam")["started_at"], started_at);
    // A segment that left the MPD stays fetchable a while (SPEC §HLS "Retention").
    let (status, _, _) = http_get(&server.url(&format!("/cam/seg_v_{start}.m4s"))).unwrap();
    assert_eq!(status, 200, "seg_v_{start}.m4s");
}

/// The Periods of an MPD: (id, start in seconds, its text).
fn periods(mpd: &str) -> Vec<(u64, f64, &str)> {
    use crate::dash::first_attr;
    // Each text starts with the Period's own attributes, a space before each.
    mpd.split("<Period")
        .skip(1)
        .map(|text| {
            let id = first_attr(text, "id").and_then(|v| v.parse().ok()).unwrap();
            let start = first_attr(text, "start")
                .and_then(|v| v.strip_prefix("PT")?.strip_suffix('S')?.parse().ok())
                .unwrap();
            (id, start, text)
        })
        .collect()
}

/// The video segments of a Period's text: (number, seconds).
fn period_video(period: &str) -> Vec<(u64, f64)> {
    use crate::dash::{first_attr, timelines};
    let number = |name| first_attr(period, name).and_then(|v| v.parse::<u64>().ok());
    let (first, timescale) = (number("startNumber").unwrap(), number("timescale").unwrap());
    let video = timelines(period).into_iter().next().unwrap_or_default();
    (first..)
        .zip(video.iter().map(|&(_, d)| d as f64 / timescale as f64))
        .collect()
}

#[test]
fn a_new_dash_segment_length_opens_a_period_and_dash_js_plays_on() {
    use crate::dash::{first_attr, wait_mpd};
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_config(dir.path(), "", "off");
    let _sender = dash_live(&server);
    let before = wait_mpd(&server, "cam", 3);
    assert_eq!(periods(&before).len(), 1, "{before}");
    let started_at = server.runtime("cam")["started_at"].clone();
    let mpd_url = server.url("/cam/index.mpd");
    let player = std::thread::spawn(move || crate::browser::play(&mpd_url, "dash", 30, &[]));
    std::thread::sleep(Duration::from_secs(8));

    // The clip has a keyframe every 2 s: S = 4 s cuts every other one, from the next one on,
    // in a new Period.
    apply(
        &server,
        json!({"publisher": {"dash": {"segment_sec": 4.0}}}),
    );
    let mut after = String::new();
    wait_until(
        Duration::from_secs(40),
        "a Period with 2 segments of 4 s",
        || {
            after = server.text("/cam/index.mpd").unwrap_or_default();
            periods(&after)
                .get(1)
                .is_some_and(|p| period_video(p.2).len() >= 2)
        },
    )
    .unwrap_or_else(|e| panic!("{e}; last MPD:\n{after}"));
    let listed = periods(&after);
    assert_eq!(listed.len(), 2, "{after}");
    let (old, new) = (period_video(listed[0].2), period_video(listed[1].2));
    // The earlier Period is still listed with its 2 s segments; the new one's are 4 s (the
    // clip's loop point may stretch one), numbered on from the old ones, its id its first.
    assert!(old.iter().all(|&(_, d)| d <= 2.2), "{after}");
    assert!(
        new.iter().all(|&(_, d)| (3.9..=4.3).contains(&d)),
        "{after}"
    );
    assert_eq!(new[0].0, old.last().unwrap().0 + 1, "{after}");
    assert_eq!(listed[1].0, new[0].0, "{after}");
    // What S drives follows it; the MPD and the stream are the same ones.
    assert_eq!(first_attr(&after, "minBufferTime"), Some("PT8S"), "{after}");
    assert_eq!(first_attr(&after, "minimumUpdatePeriod"), Some("PT4S"));
    let longest: f64 = first_attr(&after, "maxSegmentDuration")
        .and_then(|v| v.strip_prefix("PT")?.strip_suffix('S')?.parse().ok())
        .unwrap();
    assert!(longest >= 3.9, "{after}");
    assert_eq!(
        first_attr(&before, "availabilityStartTime"),
        first_attr(&after, "availabilityStartTime")
    );
    assert_eq!(server.runtime("cam")["started_at"], started_at);

    // The old Period's last segment and the new ones decode as one stream behind the one
    // init, its timeline rising with no gap at the switch.
    let mut bytes = http_get(&server.url("/cam/init_v.mp4")).unwrap().2;
    let numbers = [old.last().unwrap().0, new[0].0, new[1].0];
    for n in numbers {
        let (status, _, body) = http_get(&server.url(&format!("/cam/seg_v_{n:06}.m4s"))).unwrap();
        assert_eq!(status, 200, "seg_v_{n:06}.m4s");
        bytes.extend_from_slice(&body);
    }
    let path = dir.path().join("across.mp4");
    std::fs::write(&path, &bytes).unwrap();
    let path = path.to_str().unwrap();
    let errors = tributary_testkit::decode_errors(path, 20.0).unwrap();
    assert!(errors.is_empty(), "{errors}");
    let dts = tributary_testkit::rising_dts(path, "v").unwrap();
    let covered = dts.last().unwrap() - dts.first().unwrap();
    let listed_secs = old.last().unwrap().1 + new[0].1 + new[1].1;
    assert!(
        (covered - listed_secs).abs() < 0.2,
        "{covered} s of video, {listed_secs} s listed"
    );

    // dash.js played through the Period change.
    let played = player.join().unwrap();
    println!(
        "dash.js across the segment length change: {}",
        played.report
    );
    assert!(
        played.ok,
        "dash.js stopped: {played}\nMPD before:\n{before}\nMPD after:\n{after}"
    );
    let reached = played.report["current_time_end"].as_f64().unwrap_or(0.0);
    assert!(
        reached > listed[1].1 + 2.0,
        "dash.js stopped at {reached} s, before the new Period ({} s)",
        listed[1].1
    );
}

#[test]
fn a_saved_ffmpeg_path_is_probed_then_only_the_transcoders_restart_with_it() {
    use crate::transcode::{alive, pids};
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    // From the file, not the environment, so the config API may change it.
    let toml = "[transcoder]\nffmpeg_path = \"/nonexistent/ffmpeg\"\n";
    let server = Server::start_config(dir.path(), toml, "off");
    let port = free_udp_port();
    let body = json!({"inputs": [{"url": format!("udp://127.0.0.1:{port}")}],
                      "protocols": {"hls": true},
                      "transcoder": {"audio": {"bitrate": 64}, "video": {"profiles": [
                          {"width": 320, "height": 180, "bitrate": 300, "preset": "ultrafast"}]}}});
    let created = call(&server, "PUT", "/streams/cam", Some(&body), "");
    assert_eq!(created.status, 201, "{}", created.body);
    let _sender = LiveSender::start(&clip(), port).expect("start the UDP sender");
    let runtime = server.runtime("cam");
    assert_eq!(runtime["transcoder"]["status"], "unavailable", "{runtime}");
    let started_at = runtime["started_at"].clone();
    assert!(started_at.is_string(), "{runtime}");
    let saved_path = |server: &Server| {
        call(server, "GET", "/config", None, "").body["global_config"]["transcoder"]["ffmpeg_path"]
            .clone()
    };

    // An unusable binary is probed and refused, naming the field; nothing changes.
    let refused = post_config(&server, json!({"transcoder": {"ffmpeg_path": "/bin/true"}}));
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(
        refused.body["error"]["code"], "FFMPEG_UNUSABLE",
        "{}",
        refused.body
    );
    assert_eq!(
        refused.body["error"]["fields"][0]["path"], "transcoder.ffmpeg_path",
        "{}",
        refused.body
    );
    assert_eq!(saved_path(&server), "/nonexistent/ffmpeg");
    assert!(
        !server
            .logged(|line| line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("FFmpeg unusable: transcoder.ffmpeg_path refused")))
            .is_empty(),
        "the refusal is logged as the boot probe's is"
    );
    assert_eq!(server.runtime("cam")["transcoder"]["status"], "unavailable");

    // A usable one: probed, saved, and the stream's transcoder starts without the stream
    // restarting.
    let found = std::process::Command::new("sh")
        .args(["-c", "command -v ffmpeg"])
        .output()
        .expect("sh");
    let ffmpeg = String::from_utf8_lossy(&found.stdout).trim().to_owned();
    assert!(ffmpeg.starts_with('/'), "ffmpeg on PATH: {ffmpeg:?}");
    apply(&server, json!({"transcoder": {"ffmpeg_path": ffmpeg}}));
    assert_eq!(saved_path(&server), ffmpeg.as_str());
    let config = call(&server, "GET", "/config", None, "");
    assert_eq!(
        config.body["ffmpeg"]["ok"], true,
        "{}",
        config.body["ffmpeg"]
    );
    wait_until(Duration::from_secs(30), "the transcoder running", || {
        let runtime = server.runtime("cam");
        runtime["status"] == "active" && !pids(&server, "cam").is_empty()
    })
    .unwrap_or_else(|e| panic!("{e}: {}", server.runtime("cam")));
    wait_until(Duration::from_secs(30), "rung segments", || {
        server
            .text("/cam/track_1/index.m3u8")
            .is_some_and(|p| p.contains("#EXTINF"))
    })
    .unwrap();
    let first = pids(&server, "cam");

    // Another usable path (the same binary, by name on PATH): only FFmpeg restarts; the
    // stream, its input and its HLS output carry on.
    apply(&server, json!({"transcoder": {"ffmpeg_path": "ffmpeg"}}));
    wait_until(Duration::from_secs(30), "a new FFmpeg", || {
        let now = pids(&server, "cam");
        !now.is_empty() && now != first
    })
    .unwrap_or_else(|e| panic!("{e}: {}", server.runtime("cam")));
    let runtime = server.runtime("cam");
    assert_eq!(runtime["started_at"], started_at, "{runtime}");
    assert_eq!(runtime["inputs"][0]["status"], "active", "{runtime}");
    wait_until(Duration::from_secs(10), "the old FFmpeg reaped", || {
        first.iter().all(|pid| !alive(*pid))
    })
    .unwrap();
    let segments = |server: &Server| {
        server.text("/cam/track_1/index.m3u8").and_then(|p| {
            p.lines()
                .rev()
                .find(|l| l.ends_with(".ts"))
                .map(str::to_owned)
        })
    };
    let last = segments(&server);
    wait_until(Duration::from_secs(20), "a new rung segment", || {
        segments(&server).is_some_and(|s| Some(&s) != last.as_ref())
    })
    .unwrap();
}

#[test]
fn print_config_includes_what_the_api_saved_with_secrets_masked() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    apply(
        &server,
        json!({"server": {"allowed_hosts": ["tv.example.org"]},
               "listeners": {"srt": {"passphrase": "correct-horse-battery"}}}),
    );
    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("--print-config")
        .arg("--data-dir")
        .arg(&data)
        .env_remove("RUST_LOG")
        .output()
        .expect("run tributary --print-config");
    let text = String::from_utf8_lossy(&printed.stdout);
    assert!(printed.status.success(), "{text}");
    assert!(text.contains("tv.example.org"), "{text}");
    assert!(text.contains("****"), "{text}");
    assert!(!text.contains("correct-horse-battery"), "{text}");
}

#[test]
fn an_rtsp_player_on_the_old_port_keeps_playing_while_the_moved_listener_drains() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let (server, old_port, new_port) = only_listener(dir.path(), "rtsp", "transport = \"tcp\"\n");
    let _sender = crate::rtsp_play::stream(&server, "cam", r#"{"hls":true,"rtsp":true}"#);
    wait_segments(&server, "cam", 1, Duration::from_secs(30));
    let url = format!("rtsp://127.0.0.1:{old_port}/live/cam");
    let player = std::thread::spawn(move || crate::rtsp_play::decode(&url, "tcp", 6));
    std::thread::sleep(Duration::from_secs(2));

    move_listener(&server, "rtsp", new_port);
    wait_until(
        Duration::from_secs(5),
        "the old RTSP port to refuse",
        || std::net::TcpStream::connect(("127.0.0.1", old_port)).is_err(),
    )
    .unwrap();
    let status = crate::rtsp_play::describe_status(new_port, "live/cam");
    assert!(status.contains("200"), "{status}");
    // The player on the old port decodes its 6 s through the drain.
    let errors = player.join().expect("the player thread");
    assert!(errors.trim().is_empty(), "RTSP play errors:\n{errors}");
}
