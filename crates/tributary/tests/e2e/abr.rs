//! The ABR ladder as players see it (issue 14): an RTMP publisher through a 3-rung libx264
//! ladder (720p / 480p / 360p, one FFmpeg per rung): the rungs' segments line up (segment N
//! of every rung starts at the same PTS, keyframes at the same PTS, one media sequence) and
//! each rung's bitrate is within 25 % of its target (ffprobe); FFmpeg no longer starts behind
//! a long input probe.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use tributary_testkit::{
    ClipSpec, LiveSender, ProbePacket, cached_clip, free_tcp_port, http_get, probe_packets,
    wait_until,
};

use crate::hls::serial;
use crate::server::{Server, put_stream};

/// The rungs: (width, height, target kb/s).
const RUNGS: [(u32, u32, u64); 3] = [(1280, 720, 1800), (854, 480, 900), (640, 360, 500)];

/// A server (one at a time, see [`serial`]) with stream `code` fed by an RTMP publisher
/// through the 3-rung ladder of [`RUNGS`], one FFmpeg per rung.
struct Ladder {
    server: Server,
    code: &'static str,
    _publisher: LiveSender,
    _dir: tempfile::TempDir,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Ladder {
    fn start(code: &'static str, env: &[(&str, &str)]) -> Self {
        let serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let port = free_tcp_port();
        let server = Server::start_with(dir.path(), env, &format!("127.0.0.1:{port}"));
        let profiles: Vec<String> = RUNGS
            .iter()
            .map(|(w, h, kbps)| {
                format!(r#"{{"width":{w},"height":{h},"bitrate":{kbps},"preset":"ultrafast"}}"#)
            })
            .collect();
        let body = format!(
            r#"{{"inputs":[{{"url":"publish://"}}],"protocols":{{"hls":true}},
                "transcoder":{{"mode":"per_profile","audio":{{"bitrate":96}},
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
            _serial: serial,
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
    let ladder = Ladder::start("aligned", &[]);
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
