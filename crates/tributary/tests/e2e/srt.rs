//! SRT in and out (issue 15 items 1 to 3): ffmpeg and `srt-live-transmit` (the reference
//! implementation, Debian's srt-tools) publish to the SRT listener and play from it, over an
//! encrypted listener; a wrong passphrase, a wrong key and an unknown code are refused at the
//! handshake and logged with peer and code, never the secret. An SRT pull from an ffmpeg
//! listener plays and fails over with an RTMP input.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tributary_testkit::{
    ClipSpec, LiveSender, cached_clip, decode_errors, ffmpeg, free_tcp_port, free_udp_port,
    wait_until,
};

use crate::hls::{assert_h264_720p_with_aac, wait_new_segment, wait_segments};
use crate::server::{Server, send};
use crate::turn::shared;

/// The listener's passphrase and the streams' keys in these tests.
const PASSPHRASE: &str = "srt-s3cret-passphrase";
const KEY: &str = "studio-k3y-0001";

#[test]
fn srt_publish_and_play_with_ffmpeg_and_srt_live_transmit() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let server = Server::start_args(
        dir.path(),
        &[("TRIBUTARY_LISTENERS__SRT__PASSPHRASE", PASSPHRASE)],
        "off",
        &["--srt", &format!("127.0.0.1:{port}")],
    );
    // `spare` keeps a free slot, so a caller with the right key reaches the passphrase check.
    for code in ["studio", "relay", "spare"] {
        let body = format!(
            r#"{{"stream_key":"{KEY}","inputs":[{{"url":"publish://"}}],
                "protocols":{{"hls":true,"srt":true}}}}"#
        );
        let answer = send(
            "PUT",
            &server.url(&format!("/streams/{code}")),
            Some(&body),
            &[],
        );
        assert_eq!(answer.status, 201, "{}", answer.body);
    }
    let srt = |streamid: &str, passphrase: &str| {
        format!("srt://127.0.0.1:{port}?streamid={streamid}&passphrase={passphrase}")
    };
    let clip = cached_clip(&ClipSpec::default(), "ts").expect("encode the test clip");

    // ffmpeg publishes (streamid `publish:live/<code>?key=…`) → HLS plays.
    let _ffmpeg = LiveSender::start_url(
        &clip,
        &srt(&format!("publish:live/studio?key={KEY}"), PASSPHRASE),
    )
    .expect("start the ffmpeg SRT publisher");
    wait_segments(&server, "studio", 2, Duration::from_secs(30));
    assert_h264_720p_with_aac(&server.url("/studio/index.m3u8"));

    // ffmpeg plays 10 s without a decode error.
    let play = srt("play:live/studio", PASSPHRASE);
    let errors = decode_errors(&play, 10.0).unwrap();
    assert!(
        errors.trim().is_empty(),
        "SRT play decode errors:\n{errors}"
    );

    // The play was a session with the bytes it got (SPEC §Sessions).
    crate::sessions::wait_played_sessions(&server, "srt", 1);

    // srt-live-transmit plays (bare streamid `live/<code>`): what it received is H.264 + AAC
    // that decodes cleanly.
    let received = dir.path().join("slt-play.ts");
    // About 3 s of the clip (1280x720 at about 3.3 Mb/s); the capture is cut mid-frame, so
    // the decode stops well before its end.
    slt_receive(&srt("live/studio", PASSPHRASE), &received, 1_200_000);
    assert_h264_720p_with_aac(received.to_str().unwrap());
    let errors = decode_errors(received.to_str().unwrap(), 2.0).unwrap();
    assert!(
        errors.trim().is_empty(),
        "srt-live-transmit play decode errors:\n{errors}"
    );

    // srt-live-transmit publishes (the access-control form), 1456-byte messages cut anywhere
    // in a TS packet: HLS of the second stream plays.
    let _slt = SltPublisher::start(
        &clip,
        &srt(&format!("#!::r=live/relay,m=publish,key={KEY}"), PASSPHRASE),
    );
    wait_segments(&server, "relay", 2, Duration::from_secs(30));
    assert_h264_720p_with_aac(&server.url("/relay/index.m3u8"));

    // Refused at the handshake: a wrong passphrase, a wrong key, an unknown code, a play of
    // a code that does not exist; each logged with peer and code, never the secret.
    let short = cached_clip(
        &ClipSpec {
            seconds: 2,
            ..ClipSpec::default()
        },
        "ts",
    )
    .unwrap();
    for (what, url) in [
        (
            "wrong passphrase",
            srt(
                &format!("publish:live/spare?key={KEY}"),
                "not-the-passphrase",
            ),
        ),
        (
            "wrong key",
            srt("publish:live/studio?key=wrong-key-00001", PASSPHRASE),
        ),
        (
            "unknown code",
            srt(&format!("publish:live/nope?key={KEY}"), PASSPHRASE),
        ),
    ] {
        let status = ffmpeg()
            .args(["-re", "-i"])
            .arg(&short)
            .args(["-c", "copy", "-f", "mpegts", &url])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "{what}: the publish must be refused");
    }
    let errors = decode_errors(&srt("play:live/nope", PASSPHRASE), 2.0).unwrap();
    assert!(errors.contains("exited"), "a play of an unknown code fails");
    let refusals = server.logged(|line| {
        line["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("refused at handshake"))
    });
    let text = serde_json::to_string(&refusals).unwrap();
    for code in ["1010", "2401", "2404"] {
        assert!(text.contains(code), "no refusal with code {code}: {text}");
    }
    assert!(text.contains("127.0.0.1"), "refusals name the peer: {text}");
    assert!(text.contains("live/nope"), "refusals name the path: {text}");
    for secret in [PASSPHRASE, "not-the-passphrase", KEY, "wrong-key-00001"] {
        assert!(!text.contains(secret), "a secret reached the log: {text}");
    }
    // The publishers that were let in still feed their streams.
    let runtime = server.runtime("studio");
    assert_eq!(
        runtime["inputs"][0]["publisher_connected"], true,
        "{runtime}"
    );
}

/// Runs `srt-live-transmit SRC file://con`, writing what it receives to `path`, until it has
/// received `bytes` (or 30 s passed).
fn slt_receive(source: &str, path: &Path, bytes: u64) {
    let out = std::fs::File::create(path).unwrap();
    let mut child = Command::new("srt-live-transmit")
        .args(["-q", source, "file://con"])
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .expect("srt-live-transmit (Debian's srt-tools) is installed");
    let received = wait_until(
        Duration::from_secs(30),
        "srt-live-transmit to receive",
        || std::fs::metadata(path).is_ok_and(|m| m.len() >= bytes),
    );
    let _ = child.kill();
    let _ = child.wait();
    received.unwrap();
}

/// `ffmpeg -re … -f mpegts - | srt-live-transmit file://con URL`: the reference
/// implementation publishing a looping clip in real time. Both die with it.
struct SltPublisher {
    ffmpeg: Child,
    slt: Child,
}

impl SltPublisher {
    fn start(clip: &Path, url: &str) -> Self {
        let mut ffmpeg = ffmpeg()
            .args(["-re", "-stream_loop", "-1", "-i"])
            .arg(clip)
            .args(["-c", "copy", "-f", "mpegts", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ffmpeg");
        let stdout = ffmpeg.stdout.take().unwrap();
        let slt = Command::new("srt-live-transmit")
            .args(["-q", "file://con", url])
            .stdin(stdout)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("srt-live-transmit (Debian's srt-tools) is installed");
        Self { ffmpeg, slt }
    }
}

impl Drop for SltPublisher {
    fn drop(&mut self) {
        for child in [&mut self.slt, &mut self.ffmpeg] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SRT pull (issue 15 item 2): a caller to an ffmpeg SRT listener (encrypted) plays on HLS;
/// failover between the SRT pull and an RTMP push input works like any other pair, both ways.
#[test]
fn an_srt_pull_plays_and_fails_over_to_rtmp_and_back() {
    let _turn = shared();
    let dir = tempfile::tempdir().unwrap();
    let rtmp_port = free_tcp_port();
    let server = Server::start_with(dir.path(), &[], &format!("127.0.0.1:{rtmp_port}"));
    // The origin: ffmpeg as an SRT listener, looping the clip in real time.
    let srt_port = free_udp_port();
    let clip = cached_clip(&ClipSpec::default(), "ts").expect("encode the test clip");
    let mut origin = LiveSender::start_url(
        &clip,
        &format!("srt://127.0.0.1:{srt_port}?mode=listener&passphrase={PASSPHRASE}"),
    )
    .expect("start the ffmpeg SRT listener");
    let body = format!(
        r#"{{"stream_key":"{KEY}","protocols":{{"hls":true}},"inputs":[
            {{"url":"srt://127.0.0.1:{srt_port}?streamid=cam&latency=200&passphrase={PASSPHRASE}"}},
            {{"url":"publish://","priority":1}}]}}"#
    );
    let answer = send("PUT", &server.url("/streams/pulled"), Some(&body), &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);
    wait_segments(&server, "pulled", 2, Duration::from_secs(30));
    assert_h264_720p_with_aac(&server.url("/pulled/index.m3u8"));
    assert_eq!(server.runtime("pulled")["active_input_priority"], 0);

    // A backup encoder publishes over RTMP.
    let mp4 = cached_clip(&ClipSpec::default(), "mp4").expect("encode the test clip");
    let _backup = LiveSender::rtmp(
        &mp4,
        &format!("rtmp://127.0.0.1:{rtmp_port}/live/pulled?key={KEY}"),
    )
    .expect("start the RTMP publisher");
    let active = |want: u64| server.runtime("pulled")["active_input_priority"] == want;
    wait_until(
        Duration::from_secs(30),
        "the RTMP publisher to connect",
        || server.runtime("pulled")["inputs"][1]["publisher_connected"] == true,
    )
    .unwrap();

    // The SRT origin dies: the stream fails over to RTMP and HLS goes on.
    let last_before = server.runtime("pulled")["inputs"][0]["last_packet_at"].clone();
    origin.kill();
    wait_until(
        Duration::from_secs(30),
        "failover to the RTMP input",
        || active(1),
    )
    .unwrap();
    wait_new_segment(&server, "pulled", Duration::from_secs(15));

    // It comes back: the pull reconnects and the stream fails back to it. An ffmpeg listener
    // serves one caller and exits when it leaves (the manager's health probe is one), so the
    // origin is started again whenever it has ended, as a camera's would be.
    origin.restart().unwrap();
    wait_until(Duration::from_secs(60), "failback to the SRT pull", || {
        if !origin.is_running() {
            origin.restart().unwrap();
        }
        active(0) && server.runtime("pulled")["inputs"][0]["last_packet_at"] != last_before
    })
    .unwrap();
    wait_new_segment(&server, "pulled", Duration::from_secs(15));
    let switches = server.runtime("pulled")["switches"].to_string();
    assert!(
        switches.contains("\"to\":1") && switches.contains("\"to\":0"),
        "{switches}"
    );
}
