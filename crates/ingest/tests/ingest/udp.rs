//! `udp://`: raw TS and RTP/TS from ffmpeg, and garbage that must not kill the worker.

use std::process::{Child, Stdio};
use std::time::Duration;

use tributary_domain::protocol::InputKind;
use tributary_testkit::{LiveSender, ffmpeg, free_udp_port};

use crate::support::{Rig, assert_av, clip, has_av};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ts_over_udp_survives_garbage_and_gives_h264_and_aac() {
    let clip = clip(4, "ts");
    let port = free_udp_port();
    let mut rig = Rig::new();
    let worker = rig.spawn(&format!("udp://127.0.0.1:{port}"));
    assert_eq!(worker.kind(), InputKind::Udp);
    wait_connected(&worker).await;

    // Garbage first (neither TS nor valid RTP): counted, never fatal.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..5 {
        socket.send_to(&[0xAB; 1316], ("127.0.0.1", port)).unwrap();
        socket.send_to(b"hello", ("127.0.0.1", port)).unwrap();
    }

    let _sender = LiveSender::start(&clip, port).expect("start the ffmpeg UDP sender");
    let frames = rig
        .collect(Duration::from_secs(15), "H.264 and AAC over UDP", has_av)
        .await;
    assert_av(&frames);
    let stats = worker.stats();
    assert!(stats.connected);
    assert!(stats.demux_errors >= 1, "garbage not counted: {stats:?}");
    assert!(stats.tracks.len() >= 2, "track table: {:?}", stats.tracks);
    assert!(
        stats
            .details
            .iter()
            .any(|(_, i)| i.width == Some(640) && i.height == Some(360)),
        "details: {:?}",
        stats.details
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtp_mpegts_is_unwrapped() {
    let clip = clip(4, "ts");
    let port = free_udp_port();
    let mut rig = Rig::new();
    let worker = rig.spawn(&format!("udp://127.0.0.1:{port}"));
    wait_connected(&worker).await;

    let _sender = Killed(
        ffmpeg()
            .args(["-re", "-stream_loop", "-1", "-i"])
            .arg(&clip)
            .args(["-c", "copy", "-f", "rtp_mpegts"])
            .arg(format!("rtp://127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ffmpeg -f rtp_mpegts"),
    );
    let frames = rig
        .collect(Duration::from_secs(15), "H.264 and AAC over RTP", has_av)
        .await;
    assert_av(&frames);
    assert_eq!(
        worker.stats().demux_errors,
        0,
        "RTP headers reached the demuxer"
    );
}

async fn wait_connected(worker: &tributary_ingest::Worker) {
    for _ in 0..200 {
        if worker.stats().connected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("UDP worker did not bind: {:?}", worker.stats());
}

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
