//! Multi-input failover (issue 6): a publisher killed and back, a silent UDP source, video that
//! stops while audio flows, and manual switching over the API; viewers (HLS, an RTMP player,
//! a push-out target) keep going across every switch; inputs added, removed and re-keyed on a
//! running stream; a degraded cold input probed and taken back.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tributary_testkit::{
    ClipSpec, LiveSender, TagKind, cached_clip, free_tcp_port, free_udp_port, http_get,
    probe_packets, rtmp_play, wait_until,
};

use crate::rtmp_relay::platform;
use crate::server::{Server, send};
use crate::turn::{alone, shared};

/// Polls until the active input is `priority`; how long that took.
pub(crate) fn wait_active(server: &Server, code: &str, priority: u32, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut last = Value::Null;
    wait_until(limit, &format!("input {priority} active"), || {
        last = server.runtime(code);
        last["active_input_priority"] == priority
    })
    .unwrap_or_else(|e| panic!("{e}: {last:#}"));
    start.elapsed()
}

/// Publishes `clip` to `url` in real time, looping.
fn publisher(clip: &Path, url: &str) -> LiveSender {
    LiveSender::rtmp(clip, url).expect("start the ffmpeg publisher")
}

/// The media segments of a playlist, with whether a discontinuity precedes each.
fn playlist_segments(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut discontinuity = false;
    for line in text.lines() {
        if line == "#EXT-X-DISCONTINUITY" {
            discontinuity = true;
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            out.push((line.trim().to_owned(), discontinuity));
            discontinuity = false;
        }
    }
    out
}

/// Keeps fetching a playlist in the background, remembering every segment seen and the
/// instant it first appeared.
struct PlaylistWatch {
    seen: Arc<Mutex<BTreeMap<String, (bool, Instant)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl PlaylistWatch {
    fn start(url: String) -> Self {
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((200, _, body)) = http_get(&url) {
                        let text = String::from_utf8_lossy(&body).into_owned();
                        let mut seen = seen.lock().unwrap();
                        for (name, disc) in playlist_segments(&text) {
                            seen.entry(name).or_insert((disc, Instant::now()));
                        }
                    }
                    thread::sleep(Duration::from_millis(300));
                }
            })
        };
        Self {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// Segments first seen within `from..to`, with their discontinuity flags.
    fn between(&self, from: Instant, to: Instant) -> Vec<(String, bool)> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, (_, at))| *at >= from && *at < to)
            .map(|(name, (disc, _))| (name.clone(), *disc))
            .collect()
    }
}

impl Drop for PlaylistWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Two live UDP TS senders of the default clip, each on a port of its own: (port, sender).
fn udp_sources() -> [(u16, LiveSender); 2] {
    let clip = cached_clip(&ClipSpec::default(), "ts").expect("encode the clip");
    [(); 2].map(|()| {
        let port = free_udp_port();
        (port, LiveSender::start(&clip, port).unwrap())
    })
}

/// A backup source: a 720p clip other than the default one (a 12 s loop), sent over UDP to
/// `port` in real time.
pub(crate) fn udp_backup(port: u16) -> LiveSender {
    let clip = cached_clip(
        &ClipSpec {
            seconds: 12,
            ..ClipSpec::default()
        },
        "ts",
    )
    .expect("encode the backup clip");
    LiveSender::start(&clip, port).unwrap()
}

/// The reasons of `runtime.switches`, oldest first.
fn reasons(runtime: &Value) -> Vec<String> {
    let mut reasons: Vec<String> = runtime["switches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap().to_owned())
        .collect();
    reasons.reverse();
    reasons
}

#[test]
fn a_killed_publisher_fails_over_to_udp_and_back_without_viewers_noticing() {
    let _turn = alone();
    let dir = tempfile::tempdir().unwrap();
    let rtmp_port = free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{rtmp_port}"));

    // The backup: a different 720p clip (12 s loop) over UDP. The primary: an RTMP publisher.
    let udp_port = free_udp_port();
    let _backup = udp_backup(udp_port);
    let primary_clip = cached_clip(&ClipSpec::default(), "mp4").expect("encode the primary clip");
    // A platform for push-out, recording what it receives.
    let target_port = free_tcp_port();
    let pushed = dir.path().join("pushed.ts");
    let platform = platform(target_port, &pushed);
    let body = format!(
        r#"{{"inputs":[{{"url":"publish://","priority":0}},
                       {{"url":"udp://127.0.0.1:{udp_port}","priority":1}}],
            "protocols":{{"hls":true,"rtmp":true}},
            "push":[{{"url":"rtmp://127.0.0.1:{target_port}/live/x","enabled":true}}]}}"#
    );
    let answer = send("PUT", &server.url("/streams/match"), Some(&body), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);

    // Without a publisher the UDP backup is selected first.
    wait_active(&server, "match", 1, Duration::from_secs(20));
    let publish_url = format!("rtmp://127.0.0.1:{rtmp_port}/live/match");
    let mut primary = publisher(&primary_clip, &publish_url);
    // A primary that never degraded takes over at once.
    wait_active(&server, "match", 0, Duration::from_secs(20));
    let playlist = server.url("/match/index.m3u8");
    let watch = PlaylistWatch::start(playlist.clone());
    wait_until(Duration::from_secs(30), "HLS segments", || {
        http_get(&playlist).is_ok_and(|(s, _, b)| s == 200 && b.windows(3).any(|w| w == b".ts"))
    })
    .unwrap();

    // An RTMP viewer records 20 s; the publisher dies 6 s in.
    let play_url = publish_url.clone();
    let player = thread::spawn(move || rtmp_play(&play_url, Duration::from_secs(20)));
    thread::sleep(Duration::from_secs(6));
    let killed_at = Instant::now();
    drop(primary);
    let detected = wait_active(&server, "match", 1, Duration::from_secs(10));
    println!("failover: backup active {detected:?} after the kill");

    // Publish again after the viewer is done: failback after 12 s of health.
    let playback = player.join().unwrap().expect("RTMP play");
    let hls_until = Instant::now();
    let republished = Instant::now();
    primary = publisher(&primary_clip, &publish_url);
    let failback = wait_active(&server, "match", 0, Duration::from_secs(30));
    println!("failback: primary active {failback:?} after it published again");
    assert!(
        failback <= Duration::from_secs(12 + 2 + 4),
        "failback took {failback:?} (12 s hold + 1 GOP + slack)"
    );
    assert!(
        failback >= Duration::from_secs(11),
        "failback after {failback:?}: the 12 s hold was not kept"
    );
    let _ = republished;

    // Viewer-side stall: the largest gap between packet arrivals around the kill.
    let around: Vec<_> = playback
        .tags
        .iter()
        .filter(|t| matches!(t.kind, TagKind::Video | TagKind::Audio))
        .filter(|t| {
            t.arrival + Duration::from_secs(3) >= killed_at
                && t.arrival <= killed_at + Duration::from_secs(8)
        })
        .collect();
    assert!(
        around.len() > 100,
        "{} packets around the kill",
        around.len()
    );
    let stall = around
        .windows(2)
        .map(|w| w[1].arrival.saturating_duration_since(w[0].arrival))
        .max()
        .unwrap();
    // Output media-time gap: the largest step between consecutive video timestamps.
    let video: Vec<u32> = playback
        .tags
        .iter()
        .filter(|t| t.kind == TagKind::Video)
        .map(|t| t.timestamp)
        .collect();
    assert!(video.len() > 300, "{} video tags in 20 s", video.len());
    for pair in video.windows(2) {
        assert!(
            pair[1] >= pair[0],
            "RTMP video timestamps go back: {} then {}",
            pair[0],
            pair[1]
        );
    }
    let media_gap = video.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    let state = server.runtime("match");
    let error_switch = state["switches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["reason"] == "error")
        .cloned()
        .unwrap_or_else(|| panic!("no error switch: {state:#}"));
    println!(
        "MEASURED viewer stall {} ms, output media gap {} ms (video timestamps), gap_ms {}",
        stall.as_millis(),
        media_gap,
        error_switch["gap_ms"]
    );
    assert!(
        stall <= Duration::from_secs(3),
        "the RTMP viewer stalled {stall:?} (target 1 GOP + 200 ms)"
    );
    assert!(
        media_gap <= 3000,
        "output media time jumped {media_gap} ms across the switch"
    );
    assert!(
        error_switch["detail"]
            .as_str()
            .unwrap()
            .contains("publisher disconnected"),
        "{error_switch}"
    );
    assert_eq!(error_switch["from"], 0);
    assert_eq!(error_switch["to"], 1);
    assert!(error_switch["gap_ms"].is_u64(), "{error_switch}");

    // HLS: exactly one new discontinuity from the failover.
    thread::sleep(Duration::from_secs(3));
    let after_kill = watch.between(killed_at, hls_until + Duration::from_secs(2));
    let discontinuities = after_kill.iter().filter(|(_, d)| *d).count();
    assert!(
        after_kill.len() >= 4,
        "segments after the kill: {after_kill:?}"
    );
    assert_eq!(
        discontinuities, 1,
        "discontinuities after the kill: {after_kill:?}"
    );

    // History: initial (backup), the primary arriving, the error, the failback.
    let reasons = reasons(&state);
    assert_eq!(
        reasons.first().map(String::as_str),
        Some("initial"),
        "{state:#}"
    );
    assert!(reasons.contains(&"error".to_owned()), "{reasons:?}");
    assert_eq!(
        reasons.last().map(String::as_str),
        Some("failback"),
        "{reasons:?}"
    );
    let inputs = state["inputs"].as_array().unwrap();
    assert_eq!(inputs[0]["status"], "active", "{state:#}");
    assert_eq!(inputs[0]["publisher_connected"], true, "{state:#}");
    assert!(
        inputs[0]["errors"][0]["message"].as_str().is_some(),
        "{state:#}"
    );
    assert_eq!(inputs[1]["status"], "idle", "{state:#}");
    assert_eq!(inputs[1]["standby"], true, "{state:#}");
    assert!(inputs[1]["bitrate_kbps"].as_u64().unwrap() > 0, "{state:#}");
    assert_eq!(state["status"], "active");
    assert_eq!(state["exhausted"], false);

    // The push target stayed connected through both switches, and its recording decodes
    // with monotonic DTS across them.
    let push = &state["publisher"]["pushes"][0];
    assert_eq!(push["status"], "active", "{state:#}");
    assert_eq!(push["attempt"], 0, "one connection throughout: {push}");
    drop(primary);
    thread::sleep(Duration::from_secs(1));
    drop(platform);
    let path = pushed.to_str().unwrap();
    let packets = probe_packets(path, &["-select_streams", "v"]).unwrap();
    let dts: Vec<f64> = packets.iter().filter_map(|p| p.dts_time).collect();
    assert!(dts.len() > 600, "{} video packets pushed", dts.len());
    for pair in dts.windows(2) {
        assert!(
            pair[1] > pair[0],
            "pushed DTS goes from {} to {}",
            pair[0],
            pair[1]
        );
    }
    let pushed_gap = dts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    println!(
        "MEASURED push-out largest DTS step {:.0} ms",
        pushed_gap * 1000.0
    );
    assert!(pushed_gap <= 3.0, "pushed media jumps {pushed_gap} s");
}

#[test]
fn a_silent_udp_source_times_out_and_manual_switches_pin_and_clear() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let [(main_port, mut main), (backup_port, _backup)] = udp_sources();

    // Not running yet: unknown stream 404, stopped stream 409.
    let switch = |body: &str| {
        send(
            "POST",
            &server.url("/streams/cam/inputs/switch"),
            Some(body),
            &[],
        )
    };
    assert_eq!(switch(r#"{"priority":1}"#).status, 404);
    let body = format!(
        r#"{{"inputs":[{{"url":"udp://127.0.0.1:{main_port}","priority":0,"packet_timeout_sec":2}},
                       {{"url":"udp://127.0.0.1:{backup_port}","priority":1}}],
            "protocols":{{"hls":true}}, "disabled": true}}"#
    );
    assert_eq!(
        send("PUT", &server.url("/streams/cam"), Some(&body), &[]).status,
        201
    );
    let stopped = switch(r#"{"priority":1}"#);
    assert_eq!(stopped.status, 409, "{}", stopped.body);
    assert_eq!(stopped.body["error"]["code"], "SWITCH_FAILED");
    assert!(
        stopped.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not running"),
        "{}",
        stopped.body
    );
    let body = body.replace(r#""disabled": true"#, r#""disabled": false"#);
    assert_eq!(
        send("PUT", &server.url("/streams/cam"), Some(&body), &[]).status,
        200
    );
    wait_active(&server, "cam", 0, Duration::from_secs(20));
    // Both are hot standbys: wait until the backup delivers.
    wait_until(Duration::from_secs(20), "the backup to deliver", || {
        server.runtime("cam")["inputs"][1]["last_packet_at"].is_string()
    })
    .unwrap();

    // Bad bodies and unknown priorities are 4xx naming the field.
    let unknown = switch(r#"{"priority":7}"#);
    assert_eq!(unknown.status, 422, "{}", unknown.body);
    assert_eq!(unknown.body["error"]["code"], "INVALID_INPUT_PRIORITY");
    let wrong = switch(r#"{"priority":"one"}"#);
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert_eq!(wrong.body["error"]["fields"][0]["path"], "priority");
    let extra = switch(r#"{"priority":1,"force":true}"#);
    assert_eq!(extra.status, 422, "{}", extra.body);
    assert_eq!(extra.body["error"]["code"], "UNKNOWN_FIELD");

    // Pin the backup: committed from its standby GOP.
    let pinned = switch(r#"{"priority":1}"#);
    assert_eq!(pinned.status, 200, "{}", pinned.body);
    assert_eq!(pinned.body["data"]["status"], "switched");
    let state = server.runtime("cam");
    assert_eq!(state["active_input_priority"], 1, "{state:#}");
    assert_eq!(state["override_input_priority"], 1, "{state:#}");
    assert_eq!(state["switches"][0]["reason"], "manual", "{state:#}");
    // Clear it: the primary (never degraded) takes over again.
    let cleared = switch(r#"{"priority":null}"#);
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    let state = server.runtime("cam");
    assert_eq!(state["active_input_priority"], 0, "{state:#}");
    assert!(state.get("override_input_priority").is_none(), "{state:#}");
    assert_eq!(
        state["switches"][0]["detail"], "override cleared",
        "{state:#}"
    );

    // Silence: the primary's sender stops; 2 s timeout, then the backup.
    thread::sleep(Duration::from_secs(3));
    main.kill();
    let took = wait_active(&server, "cam", 1, Duration::from_secs(15));
    println!(
        "MEASURED silence switch {} ms after the sender stopped",
        took.as_millis()
    );
    assert!(
        took <= Duration::from_millis(2000 + 2000 + 1500),
        "silence switch after {took:?} (timeout 2 s + 1 GOP + slack)"
    );
    let state = server.runtime("cam");
    let last = &state["switches"][0];
    assert_eq!(last["reason"], "timeout", "{state:#}");
    assert_eq!(last["detail"], "no packet for 2 s", "{state:#}");
    assert_eq!(state["inputs"][0]["status"], "degraded", "{state:#}");
    // A degraded input cannot be pinned.
    let refused = switch(r#"{"priority":0}"#);
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("degraded"),
        "{}",
        refused.body
    );

    // The sender comes back: the primary recovers and fails back after 12 s of health.
    main.restart().unwrap();
    let back = wait_active(&server, "cam", 0, Duration::from_secs(25));
    println!(
        "MEASURED silence failback {} ms after the sender restarted",
        back.as_millis()
    );
    assert_eq!(server.runtime("cam")["switches"][0]["reason"], "failback");
}

#[test]
fn video_that_stops_while_audio_flows_fails_over_naming_the_signal() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    // A long, small clip for the primary, so it does not loop during the test.
    let primary_clip = cached_clip(
        &ClipSpec {
            width: 320,
            height: 240,
            seconds: 40,
            ..ClipSpec::default()
        },
        "ts",
    )
    .expect("encode the primary clip");
    let backup_clip = cached_clip(&ClipSpec::default(), "ts").expect("encode the backup clip");
    let (main_port, backup_port) = (free_udp_port(), free_udp_port());
    let _backup = LiveSender::start(&backup_clip, backup_port).unwrap();
    let body = format!(
        r#"{{"inputs":[{{"url":"udp://127.0.0.1:{main_port}","priority":0}},
                       {{"url":"udp://127.0.0.1:{backup_port}","priority":1}}],
            "protocols":{{"hls":true}}}}"#
    );
    assert_eq!(
        send("PUT", &server.url("/streams/frozen"), Some(&body), &[]).status,
        201
    );

    // The primary: the clip's TS in real time; after 6 s its video PID goes quiet while
    // audio (and PAT/PMT) keep flowing.
    let ts = std::fs::read(&primary_clip).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let video_stopped = Arc::new(Mutex::new(None));
    let sender = {
        let (stop, video_stopped) = (Arc::clone(&stop), Arc::clone(&video_stopped));
        thread::spawn(move || {
            send_ts(
                &ts,
                40.0,
                main_port,
                Duration::from_secs(6),
                &stop,
                &video_stopped,
            )
        })
    };
    wait_active(&server, "frozen", 0, Duration::from_secs(20));
    let took = wait_active(&server, "frozen", 1, Duration::from_secs(30));
    let stopped_at = video_stopped
        .lock()
        .unwrap()
        .expect("the sender stopped the video");
    let after = stopped_at.elapsed();
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    let state = server.runtime("frozen");
    let last = &state["switches"][0];
    println!(
        "MEASURED frozen switch {} ms after the video stopped ({:?} of waiting): {last}",
        after.as_millis(),
        took
    );
    let reason = last["reason"].as_str().unwrap();
    assert!(
        reason == "track_lost" || reason == "frozen",
        "switch reason {reason}: {state:#}"
    );
    let detail = last["detail"].as_str().unwrap();
    assert!(
        detail.contains("video") || detail.contains("keyframe"),
        "the detail names the signal: {detail}"
    );
    assert_eq!(state["inputs"][0]["status"], "degraded", "{state:#}");
    assert_eq!(
        state["inputs"][0]["degraded"]["reason"], reason,
        "{state:#}"
    );
    assert!(
        after <= Duration::from_secs(5 + 2 + 3),
        "switched {after:?} after the video stopped (track lost after 5 s)"
    );
}

/// Sends a TS file over UDP to `port`, paced at its average byte rate (`seconds` long), seven
/// packets a datagram. From `video_after` on, the video PID's packets are left out; the
/// instant that happened goes into `video_stopped`.
fn send_ts(
    ts: &[u8],
    seconds: f64,
    port: u16,
    video_after: Duration,
    stop: &AtomicBool,
    video_stopped: &Mutex<Option<Instant>>,
) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let video_pid = video_pid(ts).expect("a video PID in the PMT");
    let rate = ts.len() as f64 / seconds;
    let start = Instant::now();
    for (i, datagram) in ts.chunks(188 * 7).enumerate() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let due = start + Duration::from_secs_f64((i * 188 * 7) as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        let drop_video = start.elapsed() >= video_after;
        if drop_video {
            video_stopped
                .lock()
                .unwrap()
                .get_or_insert_with(Instant::now);
        }
        let kept: Vec<u8> = datagram
            .chunks(188)
            .filter(|p| !(drop_video && pid(p) == video_pid))
            .flatten()
            .copied()
            .collect();
        if !kept.is_empty() {
            let _ = socket.send_to(&kept, ("127.0.0.1", port));
        }
    }
}

fn pid(packet: &[u8]) -> u16 {
    (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2])
}

/// The PID of the first H.264 stream (type 0x1b) in the first PMT.
fn video_pid(ts: &[u8]) -> Option<u16> {
    let pmt_pid = ts.chunks(188).find_map(|p| {
        (pid(p) == 0 && p[1] & 0x40 != 0).then(|| {
            let section = &p[5..];
            (u16::from(section[10] & 0x1f) << 8) | u16::from(section[11])
        })
    })?;
    let pmt = ts
        .chunks(188)
        .find(|p| pid(p) == pmt_pid && p[1] & 0x40 != 0)?;
    let section = &pmt[5..];
    let length = ((usize::from(section[1] & 0x0f) << 8) | usize::from(section[2])) + 3;
    let info = (usize::from(section[10] & 0x0f) << 8) | usize::from(section[11]);
    let mut at = 12 + info;
    while at + 5 <= length - 4 {
        let stream_type = section[at];
        let es_pid = (u16::from(section[at + 1] & 0x1f) << 8) | u16::from(section[at + 2]);
        if stream_type == 0x1b {
            return Some(es_pid);
        }
        let es_info = (usize::from(section[at + 3] & 0x0f) << 8) | usize::from(section[at + 4]);
        at += 5 + es_info;
    }
    None
}

/// Inputs edited on a running stream: a backup added live becomes a hot standby without
/// touching the active input or the output; after a switch to it, the dead primary is removed
/// and the backup re-keyed to priority 0 in one PATCH, matched by URL, so it stays active with
/// no new switch and no new discontinuity. HLS keeps growing through every edit.
#[test]
fn inputs_added_removed_and_rekeyed_live_leave_the_output_alone() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let [(main_port, mut main), (backup_port, _backup)] = udp_sources();
    let main_input =
        format!(r#"{{"url":"udp://127.0.0.1:{main_port}","priority":0,"packet_timeout_sec":2}}"#);
    let backup_url = format!("udp://127.0.0.1:{backup_port}");
    let patch = |inputs: &str| {
        let reply = send(
            "PATCH",
            &server.url("/streams/cam"),
            Some(&format!(r#"{{"inputs":[{inputs}]}}"#)),
            &[],
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
    };
    let body = format!(r#"{{"inputs":[{main_input}],"protocols":{{"hls":true}}}}"#);
    assert_eq!(
        send("PUT", &server.url("/streams/cam"), Some(&body), &[]).status,
        201
    );
    wait_active(&server, "cam", 0, Duration::from_secs(20));
    let playlist = server.url("/cam/index.m3u8");
    wait_until(Duration::from_secs(20), "the first segment", || {
        matches!(http_get(&playlist), Ok((200, _, _)))
    })
    .unwrap();
    let watch = PlaylistWatch::start(playlist);

    // Add the backup: it connects and delivers as a standby; input 0 stays active, no switch.
    let added = Instant::now();
    patch(&format!(
        r#"{main_input},{{"url":"{backup_url}","priority":1}}"#
    ));
    wait_until(
        Duration::from_secs(20),
        "the added backup to deliver",
        || server.runtime("cam")["inputs"][1]["last_packet_at"].is_string(),
    )
    .unwrap();
    let state = server.runtime("cam");
    assert_eq!(state["active_input_priority"], 0, "{state:#}");
    assert_eq!(reasons(&state), ["initial"], "{state:#}");

    // The primary goes silent: the added backup takes over.
    main.kill();
    wait_active(&server, "cam", 1, Duration::from_secs(15));
    assert_eq!(reasons(&server.runtime("cam")), ["initial", "timeout"]);
    // The switch's own discontinuity shows with the next segment; wait for it so that what
    // follows is the edit's doing alone.
    wait_until(
        Duration::from_secs(15),
        "the switch's discontinuity",
        || watch.between(added, Instant::now()).iter().any(|(_, d)| *d),
    )
    .unwrap();

    // Remove the dead primary and re-key the backup to priority 0 in one edit.
    let edited = Instant::now();
    patch(&format!(r#"{{"url":"{backup_url}","priority":0}}"#));
    let state = server.runtime("cam");
    assert_eq!(state["inputs"].as_array().unwrap().len(), 1, "{state:#}");
    assert_eq!(state["inputs"][0]["url"], backup_url.as_str(), "{state:#}");
    assert_eq!(state["active_input_priority"], 0, "{state:#}");
    assert_eq!(
        reasons(&state),
        ["initial", "timeout"],
        "the re-keyed input stays active without a new switch: {state:#}"
    );

    // The output never restarted: new segments keep coming, and the only discontinuity since
    // the first edit is the one switch.
    thread::sleep(Duration::from_secs(6));
    let after_edit = watch.between(edited, Instant::now());
    assert!(
        after_edit.len() >= 2,
        "segments after the last edit: {after_edit:?}"
    );
    assert!(
        after_edit.iter().all(|(_, discontinuity)| !discontinuity),
        "a discontinuity after the re-key: {after_edit:?}"
    );
    let since_added = watch.between(added, Instant::now());
    let discontinuities = since_added.iter().filter(|(_, d)| *d).count();
    assert!(
        discontinuities <= 1,
        "{discontinuities} discontinuities for one switch: {since_added:?}"
    );
    assert_eq!(server.runtime("cam")["status"], "active");
}

/// A cold input (an RTMP pull from another stream) that fails is dropped, probed while
/// degraded, and taken back once a probe reads a frame: it fails over to the UDP backup when
/// its origin stops, a probe while the origin is down fails (recorded on the input), and after
/// the origin runs again a probe succeeds and the input fails back after its hold.
#[test]
fn a_degraded_cold_input_is_probed_and_fails_back_once_its_source_returns() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{port}"));
    let [(origin_port, _origin), (backup_port, _backup)] = udp_sources();
    let put = |code: &str, body: &str| {
        let reply = send(
            "PUT",
            &server.url(&format!("/streams/{code}")),
            Some(body),
            &[],
        );
        assert!(matches!(reply.status, 200 | 201), "{code}: {}", reply.body);
    };
    let origin = format!(
        r#"{{"inputs":[{{"url":"udp://127.0.0.1:{origin_port}"}}],"protocols":{{"rtmp":true}},
            "disabled":DISABLED}}"#
    );
    put("origin", &origin.replace("DISABLED", "false"));
    put(
        "cam",
        &format!(
            r#"{{"inputs":[{{"url":"rtmp://127.0.0.1:{port}/live/origin","priority":0}},
                           {{"url":"udp://127.0.0.1:{backup_port}","priority":1}}],
                "protocols":{{"hls":true}}}}"#
        ),
    );
    wait_active(&server, "cam", 0, Duration::from_secs(20));

    // The origin stops: the pull fails and the backup takes over.
    put("origin", &origin.replace("DISABLED", "true"));
    wait_active(&server, "cam", 1, Duration::from_secs(20));
    let state = server.runtime("cam");
    assert_eq!(state["inputs"][0]["status"], "degraded", "{state:#}");
    // Probed while the origin is down (8 s after degrading): the failure is recorded.
    wait_until(Duration::from_secs(20), "a failed probe", || {
        server.runtime("cam")["inputs"][0]["errors"]
            .as_array()
            .is_some_and(|errors| {
                errors.iter().any(|e| {
                    e["message"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("probe failed")
                })
            })
    })
    .unwrap();
    assert_eq!(server.runtime("cam")["active_input_priority"], 1);

    // The origin runs again: a probe succeeds, the input is healthy again and, after the
    // failback hold (12 s), active.
    put("origin", &origin.replace("DISABLED", "false"));
    wait_until(
        Duration::from_secs(25),
        "the probed input to recover",
        || server.runtime("cam")["inputs"][0]["status"] != "degraded",
    )
    .unwrap();
    wait_active(&server, "cam", 0, Duration::from_secs(30));
    let state = server.runtime("cam");
    assert_eq!(
        reasons(&state).last().map(String::as_str),
        Some("failback"),
        "{state:#}"
    );
}
