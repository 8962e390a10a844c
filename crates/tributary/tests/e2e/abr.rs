//! The ABR ladder as players see it (issue 14): an RTMP publisher through a 3-rung libx264
//! ladder (720p / 480p / 360p): the rungs' segments line up (segment N of every rung starts
//! at the same PTS, keyframes at the same PTS, one media sequence) and each rung's bitrate is
//! within 25 % of its target (ffprobe); FFmpeg no longer starts behind a long input probe;
//! hls.js in Chromium plays the master and follows a forced level; three quick kills of one
//! rung's FFmpeg degrade the stream until it has run 30 s, while the other rungs never stop.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tributary_testkit::{
    ClipSpec, LiveSender, ProbePacket, cached_clip, free_tcp_port, http_get, probe_packets,
    wait_until,
};

use crate::browser;
use crate::server::{Server, put_stream};
use crate::turn::heavy;

/// The rungs: (width, height, target kb/s).
const RUNGS: [(u32, u32, u64); 3] = [(1280, 720, 1800), (854, 480, 900), (640, 360, 500)];

/// A server (a heavy turn, see [`heavy`]) with stream `code` fed by an RTMP publisher
/// through the 3-rung ladder of [`RUNGS`] in `mode` (`per_profile`: one FFmpeg per rung).
struct Ladder {
    server: Server,
    code: &'static str,
    _publisher: LiveSender,
    _dir: tempfile::TempDir,
    _turn: crate::turn::Turn,
}

impl Ladder {
    fn start(code: &'static str, mode: &str) -> Self {
        let turn = heavy();
        let dir = tempfile::tempdir().unwrap();
        let port = free_tcp_port();
        let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{port}"));
        let profiles: Vec<String> = RUNGS
            .iter()
            .map(|(w, h, kbps)| {
                format!(r#"{{"width":{w},"height":{h},"bitrate":{kbps},"preset":"ultrafast"}}"#)
            })
            .collect();
        let body = format!(
            r#"{{"inputs":[{{"url":"publish://"}}],"protocols":{{"hls":true}},
                "transcoder":{{"mode":"{mode}","audio":{{"bitrate":96}},
                  "video":{{"profiles":[{}]}}}}}}"#,
            profiles.join(",")
        );
        put_stream(&server, code, &body);
        let clip = cached_clip(&ClipSpec::default(), "mp4").expect("encode the test clip");
        let url = format!("rtmp://127.0.0.1:{port}/live/{code}");
        let publisher = LiveSender::rtmp(&clip, &url).expect("start the ffmpeg publisher");
        Self {
            server,
            code,
            _publisher: publisher,
            _dir: dir,
            _turn: turn,
        }
    }

    fn text(&self, path: &str) -> Option<String> {
        let (status, _, body) =
            http_get(&self.server.url(&format!("/{}/{path}", self.code))).ok()?;
        (status == 200).then(|| String::from_utf8_lossy(&body).into_owned())
    }

    /// Rung `n`'s playlist (`track_<n>/index.m3u8`): segment number → `#EXTINF` seconds.
    fn segments(&self, n: usize) -> BTreeMap<u64, f64> {
        let text = self
            .text(&format!("track_{n}/index.m3u8"))
            .unwrap_or_default();
        listed(&text)
    }

    /// Waits until every rung lists at least `count` segments numbered alike.
    fn wait_common(&self, count: usize) -> Vec<u64> {
        let mut common = Vec::new();
        wait_until(
            Duration::from_secs(90),
            &format!("{count} segments numbered alike in every rung"),
            || {
                common = self.common();
                common.len() >= count
            },
        )
        .unwrap_or_else(|e| {
            panic!(
                "{e}: {:?}; runtime: {}",
                (1..=3).map(|n| self.segments(n)).collect::<Vec<_>>(),
                self.server.runtime(self.code)
            )
        });
        common
    }

    /// The segment numbers every rung lists.
    fn common(&self) -> Vec<u64> {
        let lists: Vec<BTreeMap<u64, f64>> = (1..=3).map(|n| self.segments(n)).collect();
        lists[0]
            .keys()
            .filter(|n| lists[1..].iter().all(|l| l.contains_key(n)))
            .copied()
            .collect()
    }

    /// The video packets of segment `number` of rung `n`.
    fn video_packets(&self, n: usize, number: u64) -> Vec<ProbePacket> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment.ts");
        let (status, _, body) = http_get(
            &self
                .server
                .url(&format!("/{}/track_{n}/seg_{number}.ts", self.code)),
        )
        .unwrap();
        assert_eq!(
            status, 200,
            "track_{n}/seg_{number}.ts is listed but not served"
        );
        std::fs::write(&path, body).unwrap();
        probe_packets(path.to_str().unwrap(), &["-select_streams", "v"]).unwrap()
    }

    fn profiles(&self) -> Vec<Value> {
        self.server.runtime(self.code)["transcoder"]["profiles"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// Segment number → `#EXTINF` of every segment a media playlist lists.
fn listed(text: &str) -> BTreeMap<u64, f64> {
    let mut out = BTreeMap::new();
    let mut duration = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            duration = rest.trim_end_matches(',').parse().ok();
        } else if let Some(number) = line
            .strip_prefix("seg_")
            .and_then(|l| l.strip_suffix(".ts"))
            .and_then(|n| n.parse().ok())
        {
            out.insert(number, duration.take().unwrap_or(0.0));
        }
    }
    out
}

/// The PTS (90 kHz ticks) of the keyframes among `packets`.
fn keyframe_pts(packets: &[ProbePacket]) -> Vec<i64> {
    packets
        .iter()
        .filter(|p| p.keyframe)
        .filter_map(|p| p.pts_time)
        .map(|t| (t * 90_000.0).round() as i64)
        .collect()
}

#[test]
fn a_three_rung_ladder_from_rtmp_cuts_every_rung_at_the_same_instants() {
    let ladder = Ladder::start("aligned", "per_profile");
    let master = {
        ladder.wait_common(4);
        ladder.text("index.m3u8").expect("the master")
    };
    for (n, (w, h, _)) in RUNGS.iter().enumerate() {
        let line = master
            .lines()
            .zip(master.lines().skip(1))
            .find(|(_, uri)| *uri == format!("track_{}/index.m3u8", n + 1))
            .map(|(inf, _)| inf)
            .unwrap_or_else(|| panic!("track_{} not in the master:\n{master}", n + 1));
        assert!(line.contains(&format!("RESOLUTION={w}x{h}")), "{line}");
    }

    // Segment N of every rung: the same first PTS, the same keyframes, the same duration.
    let common = ladder.wait_common(6);
    let mut bits = [0u64; 3];
    let mut seconds = [0f64; 3];
    for &number in &common[1..] {
        let packets: Vec<Vec<ProbePacket>> =
            (1..=3).map(|n| ladder.video_packets(n, number)).collect();
        let keyframes: Vec<Vec<i64>> = packets.iter().map(|p| keyframe_pts(p)).collect();
        assert!(
            packets
                .iter()
                .all(|p| p.first().is_some_and(|f| f.keyframe)),
            "segment {number} starts with a keyframe in every rung"
        );
        assert!(
            keyframes.iter().all(|k| *k == keyframes[0]),
            "segment {number}: keyframes at {keyframes:?}"
        );
        for (i, p) in packets.iter().enumerate() {
            bits[i] += p.iter().filter_map(|p| p.size).sum::<u64>() * 8;
            seconds[i] += ladder.segments(i + 1).get(&number).copied().unwrap_or(0.0);
        }
    }
    let durations: Vec<BTreeMap<u64, f64>> = (1..=3).map(|n| ladder.segments(n)).collect();
    for number in &common {
        let d: Vec<Option<&f64>> = durations.iter().map(|l| l.get(number)).collect();
        if d.iter().all(Option::is_some) {
            assert!(d.iter().all(|x| x == &d[0]), "segment {number} lasts {d:?}");
        }
    }

    // Each rung's video bitrate over those segments: within 25 % of its target.
    for (i, (_, _, kbps)) in RUNGS.iter().enumerate() {
        let measured = bits[i] as f64 / seconds[i] / 1000.0;
        let target = *kbps as f64;
        assert!(
            (measured - target).abs() <= 0.25 * target,
            "track_{}: {measured:.0} kb/s against {target} kb/s",
            i + 1
        );
    }

    // FFmpeg keeps pace from its start: no long input probe to catch up on (it read 15 s of
    // live input before its first frame and then ran at about twice real time).
    for p in ladder.profiles() {
        let speed = p["speed"].as_f64().unwrap_or(0.0);
        assert!((0.5..1.5).contains(&speed), "{p}");
    }
}

#[test]
fn hls_js_plays_the_ladder_and_follows_a_forced_level() {
    let ladder = Ladder::start("levels", "multi");
    ladder.wait_common(2);
    let url = ladder.server.url("/levels/index.m3u8");
    // 18 s of playback from the master's first variant (720p): hls.js's level 0 (its levels
    // go by bitrate: 360p) forced at 6 s, level 2 (720p) at 12 s.
    let played = browser::play(&url, "hls", 18, &["--levels", "0,2"]);
    assert!(played.ok, "hls.js did not play or switch: {played}");
    let report = played.report;
    let levels = report["levels"].as_array().expect("levels");
    assert_eq!(levels.len(), 3, "{report}");
    let switches = report["switches"].as_array().expect("switches");
    assert_eq!(switches.len(), 2, "{report}");
    for (switch, (track, (w, h))) in switches
        .iter()
        .zip([("track_3/", (640, 360)), ("track_1/", (1280, 720))])
    {
        assert_eq!(switch["switched"], true, "{switch}");
        let fragment = switch["fragment_url"].as_str().unwrap_or_default();
        assert!(
            fragment.contains(&format!("/levels/{track}seg_")),
            "{switch}"
        );
        assert_eq!(
            (
                switch["video_width"].as_u64(),
                switch["video_height"].as_u64()
            ),
            (Some(w), Some(h)),
            "{switch}"
        );
    }
}

#[test]
fn three_quick_kills_degrade_the_stream_until_the_rung_has_run_30_s_and_the_others_never_stop() {
    let ladder = Ladder::start("kills", "per_profile");
    ladder.wait_common(2);
    let others: Vec<u64> = ladder.profiles()[1..]
        .iter()
        .map(|p| p["pid"].as_u64().expect("rungs 1 and 2 run"))
        .collect();
    // Segment numbers of rungs 2 and 3 seen while the test runs, and any discontinuity.
    let mut seen: [BTreeMap<u64, f64>; 2] = Default::default();
    let mut discontinuity = false;
    let mut watch = || {
        for (i, n) in [2, 3].into_iter().enumerate() {
            let text = ladder
                .text(&format!("track_{n}/index.m3u8"))
                .unwrap_or_default();
            discontinuity |= text.contains("#EXT-X-DISCONTINUITY\n");
            seen[i].extend(listed(&text));
        }
    };

    // Three crashes of rung 1 within 30 s (backoff 2 s, then 4 s between them).
    let mut victim = ladder.profiles()[0]["pid"].as_u64().expect("rung 0 runs");
    for kill in 1..=3 {
        Command::new("kill")
            .args(["-KILL", &victim.to_string()])
            .status()
            .expect("kill");
        if kill == 3 {
            break;
        }
        wait_until(Duration::from_secs(20), "rung 0 restarted", || {
            watch();
            match ladder.profiles()[0]["pid"].as_u64() {
                Some(pid) if pid != victim => {
                    victim = pid;
                    true
                }
                _ => false,
            }
        })
        .unwrap();
    }
    let mut runtime = Value::Null;
    wait_until(Duration::from_secs(20), "the stream degraded", || {
        watch();
        runtime = ladder.server.runtime("kills");
        runtime["status"] == "degraded"
    })
    .unwrap_or_else(|e| panic!("{e}: {runtime}"));
    assert_eq!(
        runtime["status_reasons"],
        serde_json::json!(["transcoder_unhealthy"]),
        "{runtime}"
    );
    assert_eq!(
        runtime["transcoder"]["profiles"][0]["restart_count"], 3,
        "{runtime}"
    );
    // The killed rung skipped the cells it missed while down: every segment it lists, from
    // before the first kill to after the second restart, is served.
    let listed_now = ladder.segments(1);
    assert!(listed_now.len() >= 2, "{listed_now:?}");
    for number in listed_now.keys() {
        let url = ladder
            .server
            .url(&format!("/kills/track_1/seg_{number}.ts"));
        assert_eq!(http_get(&url).unwrap().0, 200, "track_1/seg_{number}.ts");
    }
    // Restarted after 8 s, healthy once it has run 30 s: the stream is active again.
    wait_until(Duration::from_secs(60), "the stream active again", || {
        watch();
        runtime = ladder.server.runtime("kills");
        runtime["status"] == "active"
    })
    .unwrap_or_else(|e| panic!("{e}: {runtime}"));
    assert_eq!(runtime["transcoder"]["status"], "healthy", "{runtime}");

    // The other rungs never stopped: same processes, no crash, and every segment number
    // from the first seen to the last, with no discontinuity.
    let now: Vec<Value> = ladder.profiles();
    for (p, pid) in now[1..].iter().zip(&others) {
        assert_eq!(p["pid"].as_u64(), Some(*pid), "{p}");
        assert_eq!(p["restart_count"], 0, "{p}");
    }
    assert!(!discontinuity, "a discontinuity in rung 2 or 3: {seen:?}");
    for (i, numbers) in seen.iter().enumerate() {
        let (first, last) = (numbers.keys().next(), numbers.keys().last());
        let (Some(&first), Some(&last)) = (first, last) else {
            panic!("track_{}: no segments", i + 2);
        };
        assert!(last - first >= 20, "track_{}: only {first}..{last}", i + 2);
        let missing: Vec<u64> = (first..=last)
            .filter(|n| !numbers.contains_key(n))
            .collect();
        assert!(
            missing.is_empty(),
            "track_{}: segments {missing:?} missing",
            i + 2
        );
    }
}
