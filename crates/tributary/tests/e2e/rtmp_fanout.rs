//! RTMP fan-out (issue 5): 50 ffmpeg players of one publisher; killing 10 of them mid-stream
//! disturbs none of the others.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tributary_testkit::{
    ClipSpec, LiveSender, cached_clip, decode_errors, ffmpeg, free_tcp_port, probe_packets,
    wait_until,
};

use crate::server::{Server, send};
use crate::turn::alone;

/// Players started.
const PLAYERS: usize = 50;
/// Every `KILL_EVERY`-th player is killed mid-stream (10 of 50).
const KILL_EVERY: usize = 5;
/// Seconds of media each surviving player records (`-t`, counted in media time).
const SECONDS: u32 = 30;
/// The clip's frame rate.
const FPS: u32 = 30;

/// One `ffmpeg -i rtmp://... -c copy -f mpegts` player, killed on drop.
struct Player {
    child: Option<Child>,
    out: PathBuf,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Player {
    fn start(url: &str, dir: &std::path::Path, index: usize) -> Self {
        let out = dir.join(format!("player-{index:02}.ts"));
        let log = dir.join(format!("player-{index:02}.log"));
        let child = ffmpeg()
            .args(["-i", url, "-t", &SECONDS.to_string(), "-c", "copy"])
            // Every packet written through at once: the file's growth is the arrival.
            .args(["-flush_packets", "1", "-f", "mpegts"])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("start an ffmpeg RTMP player");
        Self {
            child: Some(child),
            out,
            log,
            status: None,
        }
    }

    fn size(&self) -> u64 {
        std::fs::metadata(&self.out).map_or(0, |m| m.len())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether it has exited by itself (reaped, status kept).
    fn exited(&mut self) -> bool {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            self.status = Some(status);
            self.child = None;
        }
        self.status.is_some()
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Per player: the longest time its output file did not grow, between its first byte and
/// its end (wall clock, sampled every 100 ms).
struct Arrivals {
    last_growth: Vec<Option<(u64, Instant)>>,
    longest_gap: Vec<Duration>,
}

impl Arrivals {
    fn sample(&mut self, sizes: &[Option<u64>]) {
        let now = Instant::now();
        for (i, size) in sizes.iter().enumerate() {
            let Some(size) = *size else { continue };
            match self.last_growth[i] {
                Some((last, _)) if size == last => {}
                Some((_, at)) => {
                    self.longest_gap[i] = self.longest_gap[i].max(now - at);
                    self.last_growth[i] = Some((size, now));
                }
                None if size > 0 => self.last_growth[i] = Some((size, now)),
                None => {}
            }
        }
    }
}

#[test]
fn fifty_rtmp_players_play_and_ten_leaving_disturbs_none_of_the_rest() {
    let _turn = alone();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{port}"));
    let body = r#"{"inputs":[{"url":"publish://"}],"protocols":{"rtmp":true}}"#;
    let answer = send("PUT", &server.url("/streams/fan"), Some(body), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);

    // 360p30 H.264 + AAC, GOP 2 s, published in real time and looped.
    let clip = cached_clip(
        &ClipSpec {
            width: 640,
            height: 360,
            ..ClipSpec::default()
        },
        "mp4",
    )
    .expect("encode the test clip");
    let url = format!("rtmp://127.0.0.1:{port}/live/fan");
    let mut publisher = LiveSender::rtmp(&clip, &url).expect("start the ffmpeg publisher");
    wait_until(Duration::from_secs(20), "the publisher to connect", || {
        server.runtime("fan")["inputs"][0]["publisher_connected"] == true
    })
    .unwrap();

    let players: Arc<Mutex<Vec<Player>>> = Arc::new(Mutex::new(
        (0..PLAYERS)
            .map(|i| Player::start(&url, dir.path(), i))
            .collect(),
    ));
    // Sample every player's output size until the test is done with them.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (players, done) = (Arc::clone(&players), Arc::clone(&done));
        thread::spawn(move || {
            let mut arrivals = Arrivals {
                last_growth: vec![None; PLAYERS],
                longest_gap: vec![Duration::ZERO; PLAYERS],
            };
            while !done.load(Ordering::Relaxed) {
                let sizes: Vec<Option<u64>> = players
                    .lock()
                    .unwrap()
                    .iter_mut()
                    .map(|p| (!p.exited()).then(|| p.size()))
                    .collect();
                arrivals.sample(&sizes);
                thread::sleep(Duration::from_millis(100));
            }
            arrivals.longest_gap
        })
    };

    // All 50 receive media; 8 s later every fifth is killed.
    wait_until(
        Duration::from_secs(30),
        "all players to receive media",
        || players.lock().unwrap().iter().all(|p| p.size() > 100_000),
    )
    .unwrap_or_else(|e| {
        let sizes: Vec<u64> = players.lock().unwrap().iter().map(Player::size).collect();
        panic!("{e}: output sizes {sizes:?}")
    });
    thread::sleep(Duration::from_secs(8));
    let killed_at = Instant::now();
    for player in players.lock().unwrap().iter_mut().step_by(KILL_EVERY) {
        player.kill();
    }

    // The other 40 end by themselves after 30 s of media.
    let deadline = killed_at + Duration::from_secs(u64::from(SECONDS) + 20);
    wait_until(
        deadline - Instant::now(),
        "the surviving players to finish",
        || {
            players
                .lock()
                .unwrap()
                .iter_mut()
                .enumerate()
                .filter(|(i, _)| i % KILL_EVERY != 0)
                .all(|(_, p)| p.exited())
        },
    )
    .unwrap();
    done.store(true, Ordering::Relaxed);
    let gaps = sampler.join().unwrap();
    publisher.kill();

    let players = Arc::try_unwrap(players)
        .ok()
        .expect("the sampler is done")
        .into_inner()
        .unwrap();
    let survivors: Vec<(usize, &Player)> = players
        .iter()
        .enumerate()
        .filter(|(i, _)| i % KILL_EVERY != 0)
        .collect();
    assert_eq!(survivors.len(), 40);
    let expected = (SECONDS * FPS) as usize;
    let mut report = Vec::new();
    for (i, player) in survivors {
        let status = player.status.unwrap();
        let log = std::fs::read_to_string(&player.log).unwrap_or_default();
        assert!(status.success(), "player {i} exited with {status}:\n{log}");
        assert!(log.trim().is_empty(), "player {i} complained:\n{log}");
        // Continuous arrival: the file never stopped growing for long (wall clock; the
        // catch-up burst at the start and -flush_packets make a healthy gap well under 1 s).
        assert!(
            gaps[i] < Duration::from_secs(2),
            "player {i} received nothing for {:?}",
            gaps[i]
        );
        // Continuous media: ~30 s x 30 fps of video, no DTS hole (dropped frames).
        let path = player.out.to_str().unwrap();
        let packets = probe_packets(path, &[]).unwrap();
        let dts: Vec<f64> = packets
            .iter()
            .filter(|p| p.codec_type.as_deref() == Some("video"))
            .filter_map(|p| p.dts_time)
            .collect();
        let audio = packets
            .iter()
            .filter(|p| p.codec_type.as_deref() == Some("audio"))
            .count();
        assert!(
            dts.len() * 10 >= expected * 9 && dts.len() * 10 <= expected * 11,
            "player {i}: {} video frames, expected ~{expected}",
            dts.len()
        );
        assert!(audio > expected, "player {i}: {audio} audio frames");
        assert!(
            packets
                .iter()
                .find(|p| p.codec_type.as_deref() == Some("video"))
                .is_some_and(|p| p.keyframe),
            "player {i} does not start at a keyframe"
        );
        let steps = || dts.windows(2).map(|w| w[1] - w[0]);
        let (least, hole) = (
            steps().fold(f64::MAX, f64::min),
            steps().fold(f64::MIN, f64::max),
        );
        assert!(
            least > 0.0 && hole < 0.2,
            "player {i}: video DTS steps from {least} to {hole} s (frames repeated, lost or \
             reordered)"
        );
        report.push((i, dts.len(), audio, gaps[i]));
    }
    // And they all decode, two at a time (one per core).
    let outputs: Vec<(usize, &PathBuf)> = players
        .iter()
        .enumerate()
        .filter(|(i, _)| i % KILL_EVERY != 0)
        .map(|(i, p)| (i, &p.out))
        .collect();
    let failures: Vec<String> = thread::scope(|scope| {
        let workers: Vec<_> = outputs
            .chunks(outputs.len().div_ceil(2))
            .map(|half| {
                scope.spawn(move || {
                    half.iter()
                        .filter_map(|(i, out)| {
                            let errors =
                                decode_errors(out.to_str().unwrap(), f64::from(SECONDS)).unwrap();
                            // The file's DTS order is asserted above, from ffprobe's packets;
                            // the decode's null muxer re-stamps frames and may complain of
                            // its own rounding (seen under load), which says nothing of ours.
                            let errors: String = errors
                                .lines()
                                .filter(|l| !l.contains("non monotonically increasing dts"))
                                .map(|l| format!("{l}\n"))
                                .collect();
                            (!errors.trim().is_empty()).then(|| format!("player {i}:\n{errors}"))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "decode errors:\n{}",
        failures.join("\n")
    );
    eprintln!("(player, video frames, audio frames, longest arrival gap): {report:?}");
}
