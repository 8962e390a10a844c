//! DASH (issue 16 item 4, SPEC §DASH): an RTMP publish served as a dynamic MPD plays in
//! dash.js in headless Chromium at 1280x720 and is read by ffprobe; a 3-rung ladder is one
//! MPD with 3 video Representations and one audio AdaptationSet; an input failover mid-play
//! keeps dash.js playing in the same Period; a rung added mid-play opens a Period with the new
//! ladder in the same MPD (dash.js plays on), removing the rung that packages the audio
//! restarts the MPD with sound, and a new `publisher.dash.segment_sec` restarts a ladder's
//! packagers with its rungs cut and numbered alike.

use std::thread;
use std::time::Duration;

use serde_json::Value;
use tributary_testkit::{
    ClipSpec, LiveSender, cached_clip, free_tcp_port, free_udp_port, http_get, wait_until,
};

use crate::browser;
use crate::hls::assert_h264_720p_with_aac;
use crate::server::{Server, put_stream};
use crate::turn::heavy;

/// An ffmpeg publisher looping a clip of `spec` (MP4) to `rtmp://127.0.0.1:{port}/live/{code}`
/// in real time.
fn publish(port: u16, code: &str, spec: &ClipSpec) -> LiveSender {
    let clip = cached_clip(spec, "mp4").expect("encode the test clip");
    let url = format!("rtmp://127.0.0.1:{port}/live/{code}");
    LiveSender::rtmp(&clip, &url).expect("start the ffmpeg publisher")
}

/// The MPD of `code` once its video timeline lists `count` segments.
pub(crate) fn wait_mpd(server: &Server, code: &str, count: usize) -> String {
    let path = format!("/{code}/index.mpd");
    let mut last = String::new();
    wait_until(
        Duration::from_secs(60),
        &format!("{count} video segments in {path}"),
        || {
            last = server.text(&path).unwrap_or_default();
            timelines(&last).first().is_some_and(|t| t.len() >= count)
        },
    )
    .unwrap_or_else(|e| panic!("{e}; last MPD:\n{last}\n{}", server.runtime(code)));
    last
}

/// Every Representation's timeline in MPD order: (t, d) per segment, `r` expanded.
pub(crate) fn timelines(mpd: &str) -> Vec<Vec<(u64, u64)>> {
    let attr = |tag: &str, name: &str| {
        let key = format!(" {name}=\"");
        let start = tag.find(&key)? + key.len();
        tag[start..].split('"').next()?.parse::<u64>().ok()
    };
    let mut out = Vec::new();
    for template in mpd.split("<SegmentTimeline>").skip(1) {
        let body = template.split("</SegmentTimeline>").next().unwrap_or("");
        let mut entries = Vec::new();
        let mut next = 0;
        for s in body.split("<S ").skip(1) {
            let tag = format!(" {}", s.split("/>").next().unwrap_or(""));
            let tag = tag.as_str();
            let t = attr(tag, "t").unwrap_or(next);
            let d = attr(tag, "d").expect("an S without d");
            for i in 0..=attr(tag, "r").unwrap_or(0) {
                entries.push((t + i * d, d));
            }
            next = t + (attr(tag, "r").unwrap_or(0) + 1) * d;
        }
        out.push(entries);
    }
    out
}

/// The value of `name` on the first element that has it.
pub(crate) fn first_attr<'a>(mpd: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = mpd.find(&key)? + key.len();
    mpd[start..].split('"').next()
}

/// GET `/{path}`: status, a header, the body.
fn fetch(server: &Server, path: &str, header: &str) -> (u16, Option<String>, Vec<u8>) {
    let (status, headers, body) = http_get(&server.url(path)).unwrap();
    let value = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(header))
        .map(|(_, v)| v.clone());
    (status, value, body)
}

/// Plays `url` in dash.js for `seconds`, at `size` if given (`PLAYER_DEBUG` set: dash.js logs
/// at debug level).
fn dash_js(url: &str, seconds: u32, size: Option<(u32, u32)>) -> browser::Played {
    let size = size.map(|(w, h)| [w.to_string(), h.to_string()]);
    let extra: Vec<&str> = match &size {
        Some([w, h]) => vec!["--width", w, "--height", h],
        None => Vec::new(),
    };
    browser::play(url, "dash", seconds, &extra)
}

#[test]
fn an_rtmp_publish_plays_as_dash_in_dash_js_and_ffprobe() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{port}"));
    // DASH beside HLS-TS: one packager, the same cuts and numbers.
    put_stream(
        &server,
        "live1",
        r#"{"inputs":[{"url":"publish://"}],"protocols":{"hls":true,"dash":true}}"#,
    );
    let spec = ClipSpec {
        bframes: 2,
        ..ClipSpec::default()
    };
    let _publisher = publish(port, "live1", &spec);

    let mpd = wait_mpd(&server, "live1", 3);
    for part in [
        "type=\"dynamic\"",
        "profiles=\"urn:mpeg:dash:profile:isoff-live:2011\"",
        "minimumUpdatePeriod=\"PT2S\"",
        "suggestedPresentationDelay=\"PT6S\"",
        "timeShiftBufferDepth=\"PT24S\"",
        "<UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:direct:2014\"",
        "contentType=\"video\"",
        "contentType=\"audio\"",
        "width=\"1280\" height=\"720\"",
        "codecs=\"mp4a.40.2\"",
        "initialization=\"init_v.mp4\"",
        "initialization=\"init_a.mp4\"",
    ] {
        assert!(mpd.contains(part), "MPD lacks {part:?}:\n{mpd}");
    }
    assert!(mpd.contains("codecs=\"avc1."), "{mpd}");
    assert_eq!(mpd.matches("<Period").count(), 1, "{mpd}");
    let (status, content_type, _) = fetch(&server, "/live1/index.mpd", "content-type");
    assert_eq!(
        (status, content_type.as_deref()),
        (200, Some("application/dash+xml"))
    );
    let (_, cache, _) = fetch(&server, "/live1/index.mpd", "cache-control");
    assert_eq!(
        cache.as_deref(),
        Some("no-store, max-age=0, must-revalidate")
    );
    let (_, cors, _) = fetch(&server, "/live1/index.mpd", "access-control-allow-origin");
    assert_eq!(cors.as_deref(), Some("*"));

    // Timelines never overlap; one availabilityStartTime, before now.
    for timeline in timelines(&mpd) {
        for pair in timeline.windows(2) {
            assert!(
                pair[0].0 + pair[0].1 <= pair[1].0,
                "{pair:?} overlap:\n{mpd}"
            );
        }
    }
    assert_eq!(mpd.matches("availabilityStartTime=").count(), 1);

    // Inits and the first listed segment of each track.
    let (status, _, init) = fetch(&server, "/live1/init_v.mp4", "content-type");
    assert_eq!(status, 200);
    assert_eq!(&init[4..8], b"ftyp");
    assert!(init.windows(4).any(|w| w == b"avcC"));
    let (status, content_type, init) = fetch(&server, "/live1/init_a.mp4", "content-type");
    assert_eq!((status, content_type.as_deref()), (200, Some("audio/mp4")));
    assert!(init.windows(4).any(|w| w == b"esds"));
    let start: u64 = first_attr(&mpd, "startNumber").unwrap().parse().unwrap();
    let (status, cache, segment) = fetch(
        &server,
        &format!("/live1/seg_v_{start:06}.m4s"),
        "cache-control",
    );
    assert_eq!(status, 200);
    assert_eq!(&segment[4..8], b"moof");
    assert!(cache.unwrap_or_default().contains("immutable"));
    // A name no packager wrote is 404.
    assert_eq!(fetch(&server, "/live1/seg_v_1.m4s", "x").0, 404);
    assert_eq!(fetch(&server, "/live1/track_1/index.mpd", "x").0, 404);

    // Counted per format: this stream packages both.
    let metrics = server.text("/metrics").expect("GET /metrics");
    for format in ["hls", "dash"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("tributary_publisher_segments_total{")
                    && l.contains("stream_code=\"live1\"")
                    && l.contains(&format!("format=\"{format}\""))),
            "no {format} segment count:\n{metrics}"
        );
    }
    // A publisher with a keyframe every S fills no DASH queue: nothing dropped.
    assert!(
        metrics.lines().any(|l| l.starts_with(
            "tributary_dash_queue_dropped_frames_total{stream_code=\"live1\",profile=\"main\"} 0"
        )),
        "no DASH drop count:\n{metrics}"
    );

    // ffprobe reads the live MPD.
    let mpd_url = server.url("/live1/index.mpd");
    assert_h264_720p_with_aac(&mpd_url);

    // dash.js in Chromium plays 20 s at 1280x720.
    let played = dash_js(&mpd_url, 20, Some((1280, 720)));
    println!("dash.js: {}", played.report);
    assert!(played.ok, "dash.js did not play: {played}");
}

#[test]
fn a_three_rung_ladder_is_one_mpd_with_three_video_representations_and_one_audio() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{port}"));
    let body = r#"{"inputs":[{"url":"publish://"}],"protocols":{"dash":true},
        "transcoder":{"mode":"multi","audio":{"bitrate":96},"video":{"profiles":[
          {"width":1280,"height":720,"bitrate":1800,"preset":"ultrafast"},
          {"width":854,"height":480,"bitrate":900,"preset":"ultrafast"},
          {"width":640,"height":360,"bitrate":500,"preset":"ultrafast"}]}}}"#;
    put_stream(&server, "ladder", body);
    let _publisher = publish(port, "ladder", &ClipSpec::default());

    let mut mpd = String::new();
    wait_until(Duration::from_secs(60), "3 video Representations", || {
        mpd = wait_mpd(&server, "ladder", 2);
        mpd.matches("contentType=\"video\"").count() == 1
            && mpd.matches("<Representation id=\"v").count() == 3
            && mpd.contains("contentType=\"audio\"")
    })
    .unwrap_or_else(|e| panic!("{e}:\n{mpd}"));
    assert_eq!(mpd.matches("<AdaptationSet").count(), 2, "{mpd}");
    assert_eq!(mpd.matches("<Representation id=\"a\"").count(), 1, "{mpd}");
    for (track, (w, h)) in [(1, (1280, 720)), (2, (854, 480)), (3, (640, 360))] {
        assert!(
            mpd.contains(&format!("initialization=\"track_{track}/init_v.mp4\"")),
            "{mpd}"
        );
        assert!(
            mpd.contains(&format!("width=\"{w}\" height=\"{h}\"")),
            "{mpd}"
        );
    }
    // HLS is off: its routes name nothing.
    assert_eq!(fetch(&server, "/ladder/index.m3u8", "x").0, 404);
    // Rung segments line up (keyframe grid): segment N starts at the same time in every rung,
    // within a frame.
    let numbers: Vec<u64> = mpd
        .split(" startNumber=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse().ok())
        .collect();
    let rungs: Vec<std::collections::BTreeMap<u64, u64>> = timelines(&mpd)
        .iter()
        .zip(&numbers)
        .take(3)
        .map(|(timeline, first)| (*first..).zip(timeline.iter().map(|e| e.0)).collect())
        .collect();
    assert_eq!(rungs.len(), 3, "{mpd}");
    let mut common = 0;
    for (number, t) in &rungs[0] {
        for other in &rungs[1..] {
            if let Some(u) = other.get(number) {
                assert!(
                    t.abs_diff(*u) <= 3600,
                    "segment {number}: {t} vs {u}\n{mpd}"
                );
                common += 1;
            }
        }
    }
    assert!(common >= 2, "the rungs share no segment number:\n{mpd}");

    let played = dash_js(&server.url("/ladder/index.mpd"), 15, None);
    println!("dash.js: {}", played.report);
    assert!(played.ok, "dash.js did not play the ladder: {played}");
}

/// A stream fed by an RTMP publisher (priority 0) with a UDP backup (priority 1) looping a
/// clip of `backup`, DASH on, the publisher active and 2 segments listed.
struct FailoverRig {
    dir: tempfile::TempDir,
    server: Server,
    code: &'static str,
    primary: Option<LiveSender>,
    _backup: LiveSender,
    /// The MPD before the failover.
    before: String,
}

impl FailoverRig {
    fn start(code: &'static str, backup: &ClipSpec) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_tcp_port();
        let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{port}"));
        let udp_port = free_udp_port();
        let body = format!(
            r#"{{"inputs":[{{"url":"publish://","priority":0}},
                           {{"url":"udp://127.0.0.1:{udp_port}","priority":1}}],
                "protocols":{{"dash":true}}}}"#
        );
        put_stream(&server, code, &body);
        let primary = publish(port, code, &ClipSpec::default());
        let mut runtime = Value::Null;
        wait_until(Duration::from_secs(20), "the publisher active", || {
            runtime = server.runtime(code);
            runtime["active_input_priority"] == 0
        })
        .unwrap_or_else(|e| panic!("{e}: {runtime:#}"));
        // The backup starts once the publisher is on air, so the stream starts on one input.
        let clip = cached_clip(backup, "ts").expect("encode the backup clip");
        let backup = LiveSender::start(&clip, udp_port).unwrap();
        let before = wait_mpd(&server, code, 2);
        Self {
            dir,
            server,
            code,
            primary: Some(primary),
            _backup: backup,
            before,
        }
    }

    /// dash.js plays 24 s (at `size`, if given); the publisher dies 8 s in and the UDP
    /// backup takes over. The player's report once it is done.
    fn play_across_failover(&mut self, size: Option<(u32, u32)>) -> browser::Played {
        let mpd_url = self.server.url(&format!("/{}/index.mpd", self.code));
        let player = thread::spawn(move || dash_js(&mpd_url, 24, size));
        thread::sleep(Duration::from_secs(8));
        drop(self.primary.take());
        let mut runtime = Value::Null;
        wait_until(Duration::from_secs(15), "the backup active", || {
            runtime = self.server.runtime(self.code);
            runtime["active_input_priority"] == 1
        })
        .unwrap_or_else(|e| panic!("{e}: {runtime:#}"));
        player.join().unwrap()
    }
}

#[test]
fn an_input_failover_mid_play_keeps_dash_js_playing_in_one_period() {
    let _turn = heavy();
    let backup = ClipSpec {
        seconds: 12,
        ..ClipSpec::default()
    };
    let mut rig = FailoverRig::start("relay9", &backup);
    let played = rig.play_across_failover(Some((1280, 720)));
    let (server, before) = (&rig.server, &rig.before);
    println!("dash.js across the failover: {}", played.report);
    let after = wait_mpd(server, "relay9", 2);
    if !played.ok {
        debug_dump(server, &after, rig.dir.path());
    }
    assert!(
        played.ok,
        "dash.js stopped at the failover: {played}\nMPD before:\n{before}\nMPD after:\n{after}"
    );
    assert_eq!(after.matches("<Period").count(), 1, "{after}");
    assert_eq!(
        first_attr(before, "availabilityStartTime"),
        first_attr(&after, "availabilityStartTime"),
        "the failover moved availabilityStartTime"
    );
}

/// After a failed play of `relay9`: the server's switch and re-anchor log lines, and every
/// hole or long sample in the listed video and audio segments (ffprobe), to stderr.
fn debug_dump(server: &Server, mpd: &str, dir: &std::path::Path) {
    for line in server.logged(|l| {
        let text = l.to_string();
        text.contains("anchor") || text.contains("session") || text.contains("switch")
    }) {
        eprintln!("LOG {line}");
    }
    let start_v: u64 = first_attr(mpd, "startNumber").unwrap().parse().unwrap();
    let start_a: u64 = mpd
        .split("init_a.mp4")
        .next()
        .unwrap()
        .rsplit("startNumber=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let t = timelines(mpd);
    for (kind, start, count) in [('v', start_v, t[0].len()), ('a', start_a, t[1].len())] {
        let mut bytes = fetch(server, &format!("/relay9/init_{kind}.mp4"), "x").2;
        for n in start..start + count as u64 {
            let (status, _, body) = fetch(server, &format!("/relay9/seg_{kind}_{n:06}.m4s"), "x");
            eprintln!("seg {kind} {n}: {status} {} bytes", body.len());
            bytes.extend(body);
        }
        let path = dir.join(format!("dump_{kind}.mp4"));
        std::fs::write(&path, &bytes).unwrap();
        let packets = tributary_testkit::probe_packets(path.to_str().unwrap(), &[]).unwrap();
        let mut last_end = 0.0;
        for p in packets {
            let (pts, dur) = (p.pts_time.unwrap_or(0.0), p.duration_time.unwrap_or(0.0));
            let dts = p.dts_time.unwrap_or(0.0);
            if (dts - last_end).abs() > 0.05 || dur > 0.1 {
                eprintln!(
                    "{kind} pkt dts {dts:.3} pts {pts:.3} dur {dur:.3} (prev end {last_end:.3})"
                );
            }
            last_end = dts + dur;
        }
    }
}

#[test]
fn a_failover_to_an_input_with_other_parameters_opens_a_period_and_dash_js_plays_on() {
    let _turn = heavy();
    // The backup is H.264 at 640x360: other parameter sets, so a new init and a new Period.
    let backup = ClipSpec {
        width: 640,
        height: 360,
        seconds: 12,
        ..ClipSpec::default()
    };
    let mut rig = FailoverRig::start("switch7", &backup);
    let before = rig.before.clone();
    assert_eq!(before.matches("<Period").count(), 1, "{before}");
    let played = rig.play_across_failover(None);
    let server = &rig.server;
    let mut after = String::new();
    wait_until(Duration::from_secs(20), "a second Period", || {
        after = server.text("/switch7/index.mpd").unwrap_or_default();
        after.matches("<Period").count() == 2
    })
    .unwrap_or_else(|e| panic!("{e}; last MPD:\n{after}"));
    println!("dash.js across the Period change: {}", played.report);
    assert!(
        played.ok,
        "dash.js stopped at the new Period: {played}\nMPD before:\n{before}\nMPD after:\n{after}"
    );
    // The new Period: its own start, offset and init, with the backup's size; the old one
    // still listed with its own init.
    let second_period = after.split("<Period id=\"").nth(2).unwrap();
    assert!(
        second_period.contains("width=\"640\" height=\"360\""),
        "{after}"
    );
    let first_period = after.split("<Period id=\"").nth(1).unwrap();
    assert!(
        first_period.contains("width=\"1280\" height=\"720\""),
        "{after}"
    );
    assert!(after.contains("presentationTimeOffset=\""), "{after}");
    assert!(after.contains("initialization=\"init_v.mp4\""), "{after}");
    let init = second_period
        .split("initialization=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    assert!(init.starts_with("init_v_"), "{after}");
    let (status, _, body) = fetch(server, &format!("/switch7/{init}"), "content-type");
    assert_eq!(status, 200);
    assert!(body.windows(4).any(|w| w == b"avcC"), "no avcC in {init}");
    assert_eq!(
        first_attr(&before, "availabilityStartTime"),
        first_attr(&after, "availabilityStartTime"),
        "the Period change moved availabilityStartTime"
    );
}

/// A ladder of `rungs` small rungs (multi mode), DASH and HLS on.
fn ladder_body(rungs: usize) -> String {
    let sizes = [(640, 360, 700), (480, 270, 400), (320, 180, 250)];
    crate::copy::ladder_body_with(&sizes[..rungs], r#""hls":true,"dash":true"#, "multi")
}

/// A server with stream `code` of `body` (a 2-rung ladder with DASH on) fed by an RTMP
/// publisher, once its MPD lists both rungs and 2 video segments: the MPD then.
fn two_rungs_on_air(code: &str, body: &str) -> (tempfile::TempDir, Server, LiveSender, String) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{port}"));
    put_stream(&server, code, body);
    let publisher = publish(port, code, &ClipSpec::default());
    let mut mpd = String::new();
    wait_until(Duration::from_secs(60), "2 video Representations", || {
        mpd = wait_mpd(&server, code, 2);
        mpd.matches("<Representation id=\"v").count() == 2
    })
    .unwrap_or_else(|e| panic!("{e}:\n{mpd}"));
    (dir, server, publisher, mpd)
}

#[test]
fn a_third_rung_added_mid_play_opens_a_period_and_dash_js_plays_on() {
    let _turn = heavy();
    let (_dir, server, _publisher, before) = two_rungs_on_air("grow", &ladder_body(2));
    assert_eq!(before.matches("<Period").count(), 1, "{before}");

    let mpd_url = server.url("/grow/index.mpd");
    let player = thread::spawn(move || dash_js(&mpd_url, 30, None));
    thread::sleep(Duration::from_secs(10));
    // The third rung through the API: the kept rungs' packagers go on.
    let answer = crate::server::send(
        "PUT",
        &server.url("/streams/grow"),
        Some(&ladder_body(3)),
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);

    let mut after = String::new();
    wait_until(
        Duration::from_secs(40),
        "a second Period with 3 rungs",
        || {
            after = server.text("/grow/index.mpd").unwrap_or_default();
            after.matches("<Period").count() == 2
                && after
                    .split("<Period id=\"")
                    .nth(2)
                    .is_some_and(|p| p.matches("<Representation id=\"v").count() == 3)
        },
    )
    .unwrap_or_else(|e| panic!("{e}; last MPD:\n{after}\n{}", server.runtime("grow")));
    let played = player.join().unwrap();
    println!("dash.js across the ladder change: {}", played.report);
    assert!(
        played.ok,
        "dash.js stopped at the ladder change: {played}\nMPD before:\n{before}\nMPD after:\n{after}"
    );
    assert_eq!(
        first_attr(&before, "availabilityStartTime"),
        first_attr(&after, "availabilityStartTime"),
        "the ladder change moved availabilityStartTime"
    );
    let periods: Vec<&str> = after.split("<Period id=\"").skip(1).collect();
    assert!(!periods[0].contains("track_3/"), "{after}");
    // The player went past the new Period's start.
    let second_start: f64 = periods[1]
        .split("start=\"PT")
        .nth(1)
        .and_then(|rest| rest.split('S').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no start on the second Period:\n{after}"));
    let reached = played.report["current_time_end"].as_f64().unwrap_or(0.0);
    assert!(
        reached > second_start + 2.0,
        "dash.js stopped at {reached} s, before the new Period ({second_start} s)"
    );
    assert_eq!(periods[1].matches("<Representation id=\"a\"").count(), 1);
    // HLS: the master lists the new variant.
    let master = server.text("/grow/index.m3u8").unwrap_or_default();
    assert!(master.contains("track_3/index.m3u8"), "{master}");
}

#[test]
fn removing_the_rung_that_packages_the_audio_keeps_the_mpd_with_sound() {
    let _turn = heavy();
    // The best rung (the audio's) is the last: removing it leaves no packager with audio.
    let rungs = [(320, 180, 250), (640, 360, 700)];
    let body = |n: usize| crate::copy::ladder_body_with(&rungs[..n], r#""dash":true"#, "multi");
    let (_dir, server, _publisher, _) = two_rungs_on_air("shrink", &body(2));
    let answer = crate::server::send("PUT", &server.url("/streams/shrink"), Some(&body(1)), &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let mut after = String::new();
    wait_until(Duration::from_secs(40), "1 rung with audio", || {
        after = server.text("/shrink/index.mpd").unwrap_or_default();
        after.matches("<Representation id=\"v").count() == 1
            && after.contains("<Representation id=\"a\"")
            && timelines(&after).first().is_some_and(|t| t.len() >= 2)
    })
    .unwrap_or_else(|e| panic!("{e}; last MPD:\n{after}\n{}", server.runtime("shrink")));
    assert_eq!(after.matches("<Period").count(), 1, "{after}");
    assert!(after.contains("track_1/"), "{after}");
}

#[test]
fn a_new_segment_length_restarts_a_ladders_packagers_with_its_rungs_aligned() {
    let _turn = heavy();
    let (_dir, server, _publisher, before) = two_rungs_on_air("reseg", &ladder_body(2));
    let started_at = server.runtime("reseg")["started_at"].clone();
    let body = r#"{"publisher":{"dash":{"segment_sec":4.0}}}"#;
    let answer = crate::server::send("POST", &server.url("/config"), Some(body), &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);

    // Each video Representation: (startNumber, its segments as (start, length) in seconds).
    let rungs = |mpd: &str| -> Vec<(u64, Vec<(f64, f64)>)> {
        mpd.split("<Representation id=\"v")
            .skip(1)
            .map(|r| {
                let number = |name| first_attr(r, name).and_then(|v| v.parse::<u64>().ok());
                let scale = number("timescale").unwrap() as f64;
                let segments = timelines(r).into_iter().next().unwrap_or_default();
                let segments = segments
                    .iter()
                    .map(|&(t, d)| (t as f64 / scale, d as f64 / scale))
                    .collect();
                (number("startNumber").unwrap(), segments)
            })
            .collect()
    };
    // The packagers restart with the new S: one Period again, both rungs cut 4 s segments
    // at the same instants, under the same numbers.
    let mut after = String::new();
    wait_until(
        Duration::from_secs(60),
        "both rungs listing 2 segments of 4 s",
        || {
            after = server.text("/reseg/index.mpd").unwrap_or_default();
            let listed = rungs(&after);
            listed.len() == 2
                && listed.iter().all(|(_, segments)| {
                    segments.len() >= 2 && segments.iter().all(|&(_, d)| d > 3.0)
                })
        },
    )
    .unwrap_or_else(|e| panic!("{e}; MPD before:\n{before}\nlast MPD:\n{after}"));
    assert_eq!(after.matches("<Period").count(), 1, "{after}");
    let listed = rungs(&after);
    assert_eq!(listed[0].0, listed[1].0, "startNumber differs:\n{after}");
    let starts = |i: usize| -> Vec<f64> { listed[i].1.iter().map(|&(t, _)| t).collect() };
    let (first, second) = (starts(0), starts(1));
    let common = first.len().min(second.len());
    for (a, b) in first[..common].iter().zip(&second[..common]) {
        assert!(
            (a - b).abs() < 0.1,
            "rungs cut apart: {a} s and {b} s\n{after}"
        );
    }
    assert!(
        listed
            .iter()
            .flat_map(|(_, segments)| segments)
            .all(|&(_, d)| (3.9..=4.3).contains(&d)),
        "{after}"
    );
    assert_eq!(first_attr(&after, "minBufferTime"), Some("PT8S"), "{after}");
    assert_eq!(
        server.runtime("reseg")["started_at"],
        started_at,
        "the stream restarted"
    );
}
