//! In-process inputs (issue 14 item 7, SPEC §ABR copy, §Mixer): a plain `copy://` of a stream
//! without a ladder plays and fails over like any input; a `mixer://` stream carries the video
//! of one stream and the audio of another (ffprobe: the video stream's resolution, the audio
//! stream's sample rate) and plays; the shapes that cannot work are 422 at save, naming the
//! field: self-copy, cycles across `copy://` and `mixer://`, a mixer or an ABR copy beside
//! other inputs. An ABR copy of a 3-rung ladder, and a copy of that copy, expose the same 3
//! variants with no FFmpeg of their own, play each variant (ffprobe) and RTMP (the best
//! rung), and follow the upstream's ladder when it loses a rung. An ABR mixer of that ladder
//! with another stream's sound exposes the 3 variants, each with the ladder's picture and the
//! other stream's sound (ffprobe: its sample rate), decodes clean, and plays in hls.js. A
//! mixer with `audio_failure=continue` goes on with picture alone while its audio stream is
//! stopped, and takes the sound back when it runs again.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tributary_testkit::{
    ClipSpec, LiveSender, cached_clip, ffmpeg, free_tcp_port, free_udp_port, http_get,
    probe_streams, wait_until,
};

use crate::browser;
use crate::hls::wait_segments;
use crate::server::{Server, put_stream, send};
use crate::turn::{heavy, shared};

/// A 10 s clip, 320x240 at 25 fps with a 1 kHz tone at 44.1 kHz: unlike [`ClipSpec`]'s
/// default (1280x720, 48 kHz) in both picture and sound, so a mix shows where each came from.
fn small_clip() -> PathBuf {
    let dir = std::env::temp_dir().join("tributary-testkit");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("copy-e2e-320x240-44100.ts");
    if path.is_file() {
        return path;
    }
    let partial = dir.join(format!(".copy-e2e.{}.partial.ts", std::process::id()));
    let status = ffmpeg()
        .args(["-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100"])
        .args(["-t", "10", "-map", "0:v", "-map", "1:a"])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-g", "50"])
        .args(["-keyint_min", "50", "-sc_threshold", "0", "-bf", "0"])
        .args([
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-ac", "2",
        ])
        .arg(&partial)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "encoding the small clip failed");
    std::fs::rename(&partial, &path).unwrap();
    path
}

/// Sends `clip` over UDP to a fresh port; the port and the sender.
fn udp_source(clip: &std::path::Path) -> (u16, LiveSender) {
    let port = free_udp_port();
    (
        port,
        LiveSender::start(clip, port).expect("start the sender"),
    )
}

/// The video and audio streams ffprobe finds in `/{code}/index.m3u8`: (width, height) and
/// sample rate.
fn probe_hls(server: &Server, code: &str) -> (Option<(u32, u32)>, Option<u32>) {
    let streams = probe_streams(&server.url(&format!("/{code}/index.m3u8")))
        .unwrap_or_else(|e| panic!("ffprobe /{code}/index.m3u8: {e}"));
    let video = streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video"))
        .and_then(|s| Some((s.width?, s.height?)));
    let audio = streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("audio"))
        .and_then(|s| s.sample_rate);
    (video, audio)
}

fn wait_active(server: &Server, code: &str, priority: u32, limit: Duration) {
    let mut last = Value::Null;
    wait_until(limit, &format!("{code}: input {priority} active"), || {
        last = server.runtime(code);
        last["active_input_priority"] == priority
    })
    .unwrap_or_else(|e| panic!("{e}: {last:#}"));
}

#[test]
fn a_plain_copy_plays_and_fails_over_and_a_mixer_takes_video_and_audio_from_two_streams() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let big = cached_clip(&ClipSpec::default(), "ts").expect("encode the test clip");
    let small = small_clip();
    let (up_port, mut up_sender) = udp_source(&big);
    let (radio_port, _radio_sender) = udp_source(&small);
    let (backup_port, _backup_sender) = udp_source(&small);

    // The upstreams: 720p with 48 kHz audio, and 240p with 44.1 kHz audio.
    put_stream(
        &server,
        "up",
        &format!(r#"{{"inputs":[{{"url":"udp://127.0.0.1:{up_port}"}}]}}"#),
    );
    put_stream(
        &server,
        "radio",
        &format!(r#"{{"inputs":[{{"url":"udp://127.0.0.1:{radio_port}"}}]}}"#),
    );
    // A copy of `up` with a UDP backup; a mixer of up's video and radio's audio.
    put_stream(
        &server,
        "copied",
        &format!(
            r#"{{"inputs":[{{"url":"copy://up","packet_timeout_sec":2}},
                           {{"url":"udp://127.0.0.1:{backup_port}","priority":1}}],
                "protocols":{{"hls":true}}}}"#
        ),
    );
    put_stream(
        &server,
        "mixed",
        r#"{"inputs":[{"url":"mixer://up?audio=radio"}],"protocols":{"hls":true}}"#,
    );

    // The copy plays up's picture and sound.
    wait_active(&server, "copied", 0, Duration::from_secs(30));
    wait_segments(&server, "copied", 2, Duration::from_secs(60));
    assert_eq!(
        probe_hls(&server, "copied"),
        (Some((1280, 720)), Some(48_000))
    );
    let input = &server.runtime("copied")["inputs"][0];
    assert_eq!(input["url"], "copy://up", "{input:#}");
    assert_eq!(input["status"], "active", "{input:#}");

    // The mix: up's picture, radio's sound.
    wait_segments(&server, "mixed", 2, Duration::from_secs(60));
    assert_eq!(
        probe_hls(&server, "mixed"),
        (Some((1280, 720)), Some(44_100)),
        "runtime: {:#}",
        server.runtime("mixed")
    );
    // It decodes: a whole segment plays without a decoder error.
    let file = newest_segment(&server, "mixed", 3, dir.path());
    let errors = tributary_testkit::decode_errors(file.to_str().unwrap(), 10.0).unwrap();
    assert!(
        errors.trim().is_empty(),
        "decoding a mixed segment: {errors}"
    );

    // up goes silent: the copy times out like any input and its backup takes over.
    up_sender.kill();
    wait_active(&server, "copied", 1, Duration::from_secs(30));
    let state = server.runtime("copied");
    assert_eq!(state["inputs"][0]["status"], "degraded", "{state:#}");
    // up comes back: the copy is probed and taken back.
    up_sender.restart().unwrap();
    wait_active(&server, "copied", 0, Duration::from_secs(90));
}

#[test]
fn copy_and_mixer_shapes_that_cannot_work_are_refused_naming_the_field() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let put = |code: &str, body: &str| {
        send(
            "PUT",
            &server.url(&format!("/streams/{code}")),
            Some(body),
            &[],
        )
    };
    let refused = |code: &str, body: &str, error: &str, path: &str| -> String {
        let answer = put(code, body);
        assert_eq!(answer.status, 422, "{code}: {}", answer.body);
        assert_eq!(answer.body["error"]["code"], error, "{}", answer.body);
        assert_eq!(
            answer.body["error"]["fields"][0]["path"], path,
            "{}",
            answer.body
        );
        answer.body["error"]["message"].as_str().unwrap().to_owned()
    };

    // Self-copy, self-mix.
    refused(
        "selfish",
        r#"{"inputs":[{"url":"copy://selfish"}]}"#,
        "INVALID_COPY_SHAPE",
        "inputs[0].url",
    );
    refused(
        "selfish",
        r#"{"inputs":[{"url":"mixer://other,selfish"}]}"#,
        "INVALID_MIXER_SHAPE",
        "inputs[0].url",
    );
    // A missing upstream is no error: the copy waits for it.
    assert_eq!(put("a", r#"{"inputs":[{"url":"copy://b"}]}"#).status, 201);
    // b → a → b, through a mixer's video and through a copy; named with its path.
    let message = refused(
        "b",
        r#"{"inputs":[{"url":"mixer://a,sound"}]}"#,
        "INVALID_MIXER_SHAPE",
        "inputs[0].url",
    );
    assert!(message.contains("b → a → b"), "{message}");
    refused(
        "b",
        r#"{"inputs":[{"url":"udp://127.0.0.1:5000"},{"url":"copy://a","priority":1}]}"#,
        "INVALID_COPY_SHAPE",
        "inputs[1].url",
    );
    // A longer one: c copies a, and b mixes c's audio.
    assert_eq!(put("c", r#"{"inputs":[{"url":"copy://a"}]}"#).status, 201);
    let message = refused(
        "b",
        r#"{"inputs":[{"url":"mixer://pic?audio=c"}]}"#,
        "INVALID_MIXER_SHAPE",
        "inputs[0].url",
    );
    assert!(message.contains("b → c → a → b"), "{message}");
    // The same check on a dry run.
    let answer = send(
        "PUT",
        &server.url("/streams/b?dry_run=true"),
        Some(r#"{"inputs":[{"url":"copy://c"}]}"#),
        &[],
    );
    assert_eq!(answer.status, 422, "{}", answer.body);
    // Without the cycle, b saves.
    assert_eq!(
        put("b", r#"{"inputs":[{"url":"copy://other"}]}"#).status,
        201
    );

    // A mixer is the only input.
    refused(
        "m",
        r#"{"inputs":[{"url":"mixer://a,c"},{"url":"udp://127.0.0.1:5001","priority":1}]}"#,
        "INVALID_MIXER_SHAPE",
        "inputs[0].url",
    );

    // An ABR copy (the upstream has a ladder, this stream has none) saves, and so does an
    // ABR mixer; with its own transcoder the mixer is a plain input.
    assert_eq!(
        put(
            "ladder",
            r#"{"disabled":true,"inputs":[{"url":"publish://"}],
                "transcoder":{"video":{"profiles":[{"width":640,"height":360,"bitrate":500}]}}}"#
        )
        .status,
        201
    );
    assert_eq!(
        put("mirror", r#"{"inputs":[{"url":"copy://ladder"}]}"#).status,
        201
    );
    // An ABR copy beside another input cannot work.
    refused(
        "mirror2",
        r#"{"inputs":[{"url":"copy://ladder"},{"url":"udp://127.0.0.1:5002","priority":1}]}"#,
        "INVALID_COPY_SHAPE",
        "inputs[0].url",
    );
    assert_eq!(
        put("abr-mix", r#"{"inputs":[{"url":"mixer://ladder,a"}]}"#).status,
        201
    );
    assert_eq!(
        put(
            "mix",
            r#"{"disabled":true,"inputs":[{"url":"mixer://ladder,a"}],
                "transcoder":{"video":{"profiles":[{"width":320,"height":180,"bitrate":300}]}}}"#
        )
        .status,
        201
    );
}

/// The FFmpeg processes whose parent is the server.
fn ffmpeg_children(server: &Server) -> usize {
    let parent = server.pid();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            let Some((comm, rest)) = stat.split_once(") ") else {
                return false;
            };
            let ppid = rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok());
            comm.ends_with("(ffmpeg") && ppid == Some(parent) && !rest.starts_with('Z')
        })
        .count()
}

/// `(RESOLUTION, URI)` of every variant of a master playlist, in order.
fn variants(master: &str) -> Vec<(String, String)> {
    master
        .lines()
        .zip(master.lines().skip(1))
        .filter(|(inf, _)| inf.starts_with("#EXT-X-STREAM-INF"))
        .map(|(inf, uri)| {
            let resolution = inf
                .split(',')
                .find_map(|a| a.strip_prefix("RESOLUTION="))
                .unwrap_or("")
                .to_owned();
            (resolution, uri.to_owned())
        })
        .collect()
}

fn text(server: &Server, path: &str) -> Option<String> {
    let (status, _, body) = http_get(&server.url(path)).ok()?;
    (status == 200).then(|| String::from_utf8_lossy(&body).into_owned())
}

/// Waits until `/{code}/index.m3u8` is a master of `count` variants, each with its
/// `RESOLUTION`; returns it.
fn wait_master(server: &Server, code: &str, count: usize, limit: Duration) -> String {
    let mut master = String::new();
    wait_until(
        limit,
        &format!("{code}'s master with {count} sized variants"),
        || {
            master = text(server, &format!("/{code}/index.m3u8")).unwrap_or_default();
            let v = variants(&master);
            v.len() == count && v.iter().all(|(r, _)| !r.is_empty())
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {master}\nruntime: {:#}", server.runtime(code)));
    master
}

/// A ladder stream body fed by `publish://` with the rungs `(width, height, kb/s)`.
fn ladder_body(rungs: &[(u32, u32, u32)]) -> String {
    ladder_body_with(rungs, r#""hls":true"#, "per_profile")
}

/// A ladder stream body fed by `publish://` with the rungs `(width, height, kb/s)` (x264
/// ultrafast, 96 kb/s audio) in transcoder `mode`, the `protocols` flags given as JSON members.
pub(crate) fn ladder_body_with(rungs: &[(u32, u32, u32)], protocols: &str, mode: &str) -> String {
    let profiles: Vec<String> = rungs
        .iter()
        .map(|(w, h, kbps)| {
            format!(r#"{{"width":{w},"height":{h},"bitrate":{kbps},"preset":"ultrafast"}}"#)
        })
        .collect();
    format!(
        r#"{{"inputs":[{{"url":"publish://"}}],"protocols":{{{protocols}}},
            "transcoder":{{"mode":"{mode}","audio":{{"bitrate":96}},
              "video":{{"profiles":[{}]}}}}}}"#,
        profiles.join(",")
    )
}

#[test]
fn an_abr_copy_mirrors_a_three_rung_ladder_without_ffmpeg_and_follows_its_changes() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{port}"));
    let rungs = [(1280, 720, 1800), (854, 480, 900), (640, 360, 500)];
    put_stream(&server, "origin", &ladder_body(&rungs));
    let clip = cached_clip(&ClipSpec::default(), "mp4").expect("encode the test clip");
    let _publisher = LiveSender::rtmp(&clip, &format!("rtmp://127.0.0.1:{port}/live/origin"))
        .expect("start the publisher");
    wait_until(
        Duration::from_secs(60),
        "origin's 3 FFmpeg children",
        || ffmpeg_children(&server) == 3,
    )
    .unwrap();

    // The copy, and a copy of the copy (chained ABR copy).
    put_stream(
        &server,
        "mirror",
        r#"{"inputs":[{"url":"copy://origin"}],"protocols":{"hls":true,"rtmp":true}}"#,
    );
    put_stream(
        &server,
        "chain",
        r#"{"inputs":[{"url":"copy://mirror"}],"protocols":{"hls":true}}"#,
    );
    for code in ["mirror", "chain"] {
        let master = wait_master(&server, code, 3, Duration::from_secs(90));
        let listed = variants(&master);
        for (i, (w, h, _)) in rungs.iter().enumerate() {
            assert_eq!(
                listed[i],
                (format!("{w}x{h}"), format!("track_{}/index.m3u8", i + 1)),
                "{code}: {master}"
            );
            // Each variant plays at its rung's size.
            let streams =
                probe_streams(&server.url(&format!("/{code}/track_{}/index.m3u8", i + 1)))
                    .unwrap_or_else(|e| panic!("ffprobe {code} track_{}: {e}", i + 1));
            let video = streams
                .iter()
                .find(|s| s.codec_type.as_deref() == Some("video"))
                .expect("a video stream");
            assert_eq!(
                (video.width, video.height),
                (Some(*w), Some(*h)),
                "{code} track_{}",
                i + 1
            );
            assert!(
                streams
                    .iter()
                    .any(|s| s.codec_type.as_deref() == Some("audio")),
                "{code} track_{} has audio",
                i + 1
            );
        }
        let runtime = server.runtime(code);
        assert!(runtime.get("transcoder").is_none(), "{code}: {runtime:#}");
        assert_eq!(runtime["status"], "active", "{runtime:#}");
        assert_eq!(runtime["active_input_priority"], 0, "{runtime:#}");
        assert_eq!(runtime["inputs"][0]["status"], "active", "{runtime:#}");
        assert!(
            runtime["inputs"][0]["last_packet_at"].is_string(),
            "{runtime:#}"
        );
    }
    // The ABR mixer: origin's ladder with radio's sound (44.1 kHz; origin's is 48 kHz).
    let (radio_port, _radio) = udp_source(&small_clip());
    put_stream(
        &server,
        "radio",
        &format!(r#"{{"inputs":[{{"url":"udp://127.0.0.1:{radio_port}"}}]}}"#),
    );
    put_stream(
        &server,
        "mixed",
        r#"{"inputs":[{"url":"mixer://origin?audio=radio"}],"protocols":{"hls":true}}"#,
    );
    let master = wait_master(&server, "mixed", 3, Duration::from_secs(90));
    for (i, (w, h, _)) in rungs.iter().enumerate() {
        let track = format!("/mixed/track_{}/index.m3u8", i + 1);
        wait_segments(
            &server,
            &format!("mixed/track_{}", i + 1),
            2,
            Duration::from_secs(60),
        );
        let streams = probe_streams(&server.url(&track)).unwrap_or_else(|e| {
            panic!(
                "ffprobe {track}: {e}
{master}"
            )
        });
        let video = streams
            .iter()
            .find(|s| s.codec_type.as_deref() == Some("video"))
            .expect("a video stream");
        let audio = streams
            .iter()
            .find(|s| s.codec_type.as_deref() == Some("audio"))
            .unwrap_or_else(|| panic!("{track} has no audio: {:#}", server.runtime("mixed")));
        assert_eq!((video.width, video.height), (Some(*w), Some(*h)), "{track}");
        assert_eq!(audio.sample_rate, Some(44_100), "{track}: radio's sound");
    }
    let runtime = server.runtime("mixed");
    assert_eq!(runtime["inputs"][0]["status"], "active", "{runtime:#}");
    assert_eq!(runtime["inputs"][0]["url"], "mixer://origin?audio=radio");
    // A whole segment of the top rung decodes clean, picture and sound.
    let file = newest_segment(&server, "mixed/track_1", 3, dir.path());
    let errors = tributary_testkit::decode_errors(file.to_str().unwrap(), 10.0).unwrap();
    assert!(errors.trim().is_empty(), "decoding a mixed rung: {errors}");
    // The sound is interleaved with the picture: the segment's audio spans its video's.
    let packets = tributary_testkit::probe_packets(file.to_str().unwrap(), &[]).unwrap();
    let span = |kind: &str| {
        let times: Vec<f64> = packets
            .iter()
            .filter(|p| p.codec_type.as_deref() == Some(kind))
            .filter_map(|p| p.pts_time)
            .collect();
        let min = times.iter().copied().fold(f64::MAX, f64::min);
        let max = times.iter().copied().fold(f64::MIN, f64::max);
        (min, max)
    };
    let (video, audio) = (span("video"), span("audio"));
    assert!(
        (video.0 - audio.0).abs() < 0.2 && (video.1 - audio.1).abs() < 0.2,
        "a mixed segment's video spans {video:?} and its audio {audio:?}"
    );
    // hls.js plays the mixer's master.
    let played = browser::play(&server.url("/mixed/index.m3u8"), "hls", 12, &[]);
    assert!(played.ok, "hls.js did not play the ABR mixer: {played}");

    // No FFmpeg for the copies or the mixer: still origin's three.
    assert_eq!(ffmpeg_children(&server), 3);
    // RTMP play of the copy is the best rung.
    let rtmp = format!("rtmp://127.0.0.1:{port}/live/mirror");
    let streams = probe_streams(&rtmp).unwrap_or_else(|e| panic!("ffprobe {rtmp}: {e}"));
    let video = streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video"))
        .expect("video over RTMP");
    assert_eq!((video.width, video.height), (Some(1280), Some(720)));

    // origin drops its 360p rung: the copies restart on the 2-rung ladder (the reconciler
    // compares the mirrored ladder with origin's every 10 s).
    let answer = send(
        "PUT",
        &server.url("/streams/origin"),
        Some(&ladder_body(&rungs[..2])),
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    for code in ["mirror", "chain"] {
        wait_master(&server, code, 2, Duration::from_secs(60));
    }
    wait_until(Duration::from_secs(30), "the copies active again", || {
        ["mirror", "chain"]
            .iter()
            .all(|c| server.runtime(c)["inputs"][0]["status"] == "active")
    })
    .unwrap();
    assert_eq!(ffmpeg_children(&server), 2);
}

/// The newest segment of `/{path}/index.m3u8` once it lists `count`, saved in `dir`.
fn newest_segment(server: &Server, path: &str, count: usize, dir: &std::path::Path) -> PathBuf {
    let playlist = wait_segments(server, path, count, Duration::from_secs(60));
    let segment = playlist
        .lines()
        .rfind(|l| l.ends_with(".ts"))
        .expect("a segment");
    let (status, _, body) = http_get(&server.url(&format!("/{path}/{segment}"))).unwrap();
    assert_eq!(status, 200, "/{path}/{segment}");
    let file = dir.join(format!("{}.ts", path.replace('/', "-")));
    std::fs::write(&file, body).unwrap();
    file
}

/// The kinds of stream ffprobe finds in the newest segment of `/{code}/index.m3u8`.
fn newest_segment_kinds(server: &Server, code: &str, dir: &std::path::Path) -> Vec<String> {
    let file = newest_segment(server, code, 1, dir);
    tributary_testkit::probe_packets(file.to_str().unwrap(), &[])
        .unwrap()
        .into_iter()
        .filter_map(|p| p.codec_type)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[test]
fn a_mixer_with_audio_failure_continue_plays_on_without_its_sound_and_takes_it_back() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let big = cached_clip(&ClipSpec::default(), "ts").expect("encode the test clip");
    let (up_port, _up) = udp_source(&big);
    let (radio_port, _radio) = udp_source(&small_clip());
    put_stream(
        &server,
        "up",
        &format!(r#"{{"inputs":[{{"url":"udp://127.0.0.1:{up_port}"}}]}}"#),
    );
    let radio = |disabled: bool| {
        format!(r#"{{"disabled":{disabled},"inputs":[{{"url":"udp://127.0.0.1:{radio_port}"}}]}}"#)
    };
    put_stream(&server, "radio", &radio(false));
    put_stream(
        &server,
        "dub",
        r#"{"inputs":[{"url":"mixer://up?audio=radio&audio_failure=continue"}],
            "protocols":{"hls":true}}"#,
    );
    wait_segments(&server, "dub", 2, Duration::from_secs(60));
    assert_eq!(probe_hls(&server, "dub"), (Some((1280, 720)), Some(44_100)));

    // radio stops: the mix goes on with picture alone.
    let answer = send(
        "PUT",
        &server.url("/streams/radio"),
        Some(&radio(true)),
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let mut kinds = Vec::new();
    wait_until(Duration::from_secs(30), "a segment without sound", || {
        kinds = newest_segment_kinds(&server, "dub", dir.path());
        kinds == ["video"]
    })
    .unwrap_or_else(|e| panic!("{e}: {kinds:?}"));
    let runtime = server.runtime("dub");
    assert_eq!(runtime["inputs"][0]["status"], "active", "{runtime:#}");
    let before = wait_segments(&server, "dub", 1, Duration::from_secs(5));
    wait_until(Duration::from_secs(20), "the picture goes on", || {
        let now = wait_segments(&server, "dub", 1, Duration::from_secs(5));
        now.lines().rfind(|l| l.ends_with(".ts")) > before.lines().rfind(|l| l.ends_with(".ts"))
    })
    .unwrap();

    // radio runs again: the sound comes back (1 s doubling retries).
    let answer = send(
        "PUT",
        &server.url("/streams/radio"),
        Some(&radio(false)),
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    wait_until(
        Duration::from_secs(40),
        "a segment with sound again",
        || {
            kinds = newest_segment_kinds(&server, "dub", dir.path());
            kinds == ["audio", "video"]
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {kinds:?}"));
    assert_eq!(server.runtime("dub")["inputs"][0]["status"], "active");
}
