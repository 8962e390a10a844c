//! RTMP push-out to a real RTMP server (FFmpeg with `-listen 1`), killed and started again;
//! start errors, `limit` and the end of the buffer.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::task::JoinHandle;
use tributary_hub::{BufferId, Hub, Writer};
use tributary_media::timeline::SessionReason;
use tributary_media::{Frame, MediaKind, Ts90};
use tributary_mpegts::{DemuxEvent, Demuxer, DemuxerConfig};
use tributary_publish::{
    PublishError, PushChange, PushHandle, PushObserver, PushSettings, PushState, PushStatus,
    start_push,
};
use tributary_rtmp::{Output, ServerConfig, ServerEvent, ServerSession};
use tributary_testkit::{
    ClipSpec, cached_clip, decode_errors, ffmpeg, free_tcp_port, probe_streams, rising_dts,
};

use crate::support::code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_decodable_media_and_reconnects_after_the_target_restarts() {
    let hub = Hub::new();
    let stream = code("push-test");
    let buffer = BufferId::Stream(stream.clone());
    let writer = hub.create(buffer.clone(), 1024).unwrap();
    let feeder = tokio::spawn(feed(writer, clip_frames()));

    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let first_out = dir.path().join("first.ts");
    let mut listener = Listener::start(port, &first_out);
    listener.wait_listening(port);

    let mut settings = PushSettings::new(format!("rtmp://127.0.0.1:{port}/live/s3cret-key"));
    settings.retry_timeout_sec = 1;
    let push = start_push(&hub, stream.clone(), buffer.clone(), settings, None).unwrap();
    assert_eq!(
        push.state().url,
        format!("rtmp://127.0.0.1:{port}/live/****")
    );
    let active = wait_state(&push, "active", |s| s.status == PushStatus::Active).await;
    assert_eq!(active.attempt, 0);
    let first_connected = active.connected_at.expect("connected_at once active");
    wait_file(&first_out, 1_200_000).await;

    // The target goes away (SIGINT: FFmpeg finishes its file and closes the connection).
    listener.interrupt();
    let reconnecting = wait_state(&push, "reconnecting", |s| {
        s.status == PushStatus::Reconnecting && !s.errors.is_empty()
    })
    .await;
    assert!(reconnecting.attempt >= 1, "{reconnecting:?}");
    assert!(
        !reconnecting.errors[0].1.contains("s3cret"),
        "{reconnecting:?}"
    );
    check_output(&first_out);

    // A new server on the same port: the target is active again, from a new connection.
    let second_out = dir.path().join("second.ts");
    let mut listener = Listener::start(port, &second_out);
    listener.wait_listening(port);
    let again = wait_state(&push, "active again", |s| {
        s.status == PushStatus::Active && s.connected_at.is_some_and(|at| at > first_connected)
    })
    .await;
    assert_eq!(again.attempt, 0, "attempt resets on success: {again:?}");
    assert!(!again.errors.is_empty(), "the error stays in the history");
    wait_file(&second_out, 1_200_000).await;
    push.stop();
    listener.wait_exit();
    check_output(&second_out);
    feeder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_refuses_fails_after_limit_and_the_end_of_the_buffer_ends_the_task() {
    let hub = Hub::new();
    let stream = code("push-refused");
    let buffer = BufferId::Stream(stream.clone());
    let _writer = hub.create(buffer.clone(), 64).unwrap();
    let closed = free_tcp_port();

    let mut settings = PushSettings::new(format!("rtmp://127.0.0.1:{closed}/app/key"));
    settings.retry_timeout_sec = 1;
    settings.limit = 2;
    let changes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let observer: PushObserver = {
        let changes = Arc::clone(&changes);
        Arc::new(move |change: &PushChange| changes.lock().unwrap().push(change.clone()))
    };
    let push = start_push(
        &hub,
        stream.clone(),
        buffer.clone(),
        settings,
        Some(observer),
    )
    .unwrap();
    let failed = wait_state(&push, "failed", |s| s.status == PushStatus::Failed).await;
    // Each move of the status told once, with its reason: starting → reconnecting → failed
    // (the second failure keeps it reconnecting until the limit).
    let changes = changes.lock().unwrap().clone();
    let moves: Vec<_> = changes.iter().map(|c| (c.from, c.to)).collect();
    assert_eq!(
        moves,
        [
            (PushStatus::Starting, PushStatus::Reconnecting),
            (PushStatus::Reconnecting, PushStatus::Failed),
        ],
        "{changes:?}"
    );
    assert_eq!(
        changes[0].url,
        format!("rtmp://127.0.0.1:{closed}/app/****")
    );
    assert!(
        changes.iter().all(|c| c
            .error
            .as_deref()
            .is_some_and(|e| e.contains("cannot connect"))),
        "{changes:?}"
    );
    assert_eq!(failed.attempt, 2);
    assert_eq!(failed.errors.len(), 2);
    assert!(failed.errors[0].0 >= failed.errors[1].0, "newest first");
    assert!(
        failed.errors[0].1.contains(&format!("127.0.0.1:{closed}")),
        "{failed:?}"
    );
    wait_finished(&push).await;

    // Without a limit the target retries until its buffer is deleted.
    let settings = PushSettings {
        retry_timeout_sec: 1,
        ..PushSettings::new(format!("rtmp://127.0.0.1:{closed}/app/key"))
    };
    let push = start_push(&hub, stream, buffer.clone(), settings, None).unwrap();
    wait_state(&push, "reconnecting", |s| {
        s.status == PushStatus::Reconnecting
    })
    .await;
    hub.delete(&buffer);
    wait_finished(&push).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_stops_reading_drops_its_own_frames_then_is_reconnected() {
    let hub = Hub::new();
    let stream = code("push-slow");
    let buffer = BufferId::Stream(stream.clone());
    let writer = hub.create(buffer.clone(), 1024).unwrap();
    let feeder = tokio::spawn(feed(writer, clip_frames()));
    // Another reader of the same buffer, which must not notice the slow target.
    let mut other = hub
        .subscribe(&buffer, tributary_hub::SubscribeFrom::Now, "test")
        .unwrap();
    let other_frames = Arc::new(AtomicU64::new(0));
    let other_lags = Arc::new(AtomicU64::new(0));
    let reader = tokio::spawn({
        let (frames, lags) = (Arc::clone(&other_frames), Arc::clone(&other_lags));
        async move {
            while let Some(delivery) = other.recv().await {
                let counter = match delivery {
                    tributary_hub::Delivery::Frame(_) => &frames,
                    tributary_hub::Delivery::Lagged { .. } => &lags,
                };
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });

    let received = Arc::new(AtomicU64::new(0));
    let (port, _target) = stalling_target(Arc::clone(&received)).await;
    let settings = PushSettings {
        timeout_sec: 8,
        retry_timeout_sec: 1,
        ..PushSettings::new(format!("rtmp://127.0.0.1:{port}/live/key"))
    };
    let push = start_push(&hub, stream, buffer, settings, None).unwrap();
    wait_state(&push, "active", |s| s.status == PushStatus::Active).await;

    // The target stops reading after a few frames: the 5 s queue fills and the target drops
    // frames while it is still connected.
    let dropping = wait_state(&push, "dropping", |s| s.dropped > 0).await;
    assert_eq!(dropping.status, PushStatus::Active, "{dropping:?}");
    assert!(received.load(Ordering::SeqCst) >= 10);
    // Nothing written for timeout_sec: a failure, then a reconnect.
    let reconnecting = wait_state(&push, "reconnecting", |s| {
        s.status == PushStatus::Reconnecting && !s.errors.is_empty()
    })
    .await;
    assert!(
        reconnecting.errors[0].1.contains("read nothing for 8s"),
        "{reconnecting:?}"
    );
    // The other reader of the buffer lost nothing.
    assert_eq!(
        other_lags.load(Ordering::SeqCst),
        0,
        "the other reader lagged"
    );
    assert!(other_frames.load(Ordering::SeqCst) > 300);
    feeder.abort();
    reader.abort();
}

/// A rung's rendition buffer (no normaliser) whose FFmpeg restarts: the new process starts
/// at an earlier keyframe, so the buffer steps back 1.5 s in a new session. The target sees
/// one timeline: DTS only rising on both tracks, video resumed at a keyframe, clean decode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rung_that_steps_back_in_a_new_session_reaches_the_target_as_one_timeline() {
    let hub = Hub::new();
    let stream = code("push-rung");
    let buffer = BufferId::Rendition(stream.clone(), 1);
    let writer = hub.create(buffer.clone(), 1024).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let out = dir.path().join("rung.ts");
    let mut listener = Listener::start(port, &out);
    listener.wait_listening(port);
    let mut settings = PushSettings::new(format!("rtmp://127.0.0.1:{port}/live/key"));
    settings.retry_timeout_sec = 1;
    let push = start_push(&hub, stream, buffer, settings, None).unwrap();
    wait_state(&push, "active", |s| s.status == PushStatus::Active).await;
    let feeder = tokio::spawn(feed_restarting(writer, clip_frames()));
    feeder.await.unwrap();
    // The end of the clip is queued; let it reach FFmpeg, then end the publish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    push.stop();
    listener.wait_exit();

    let path = out.to_str().unwrap();
    for track in ["v", "a"] {
        let dts = rising_dts(path, track).unwrap();
        assert!(dts.len() > 100, "{} {track} packets", dts.len());
    }
    let errors = decode_errors(path, 60.0).expect("decoding the pushed output");
    assert!(errors.is_empty(), "decode errors: {errors}");
}

#[tokio::test]
async fn start_errors_name_the_stream() {
    let hub = Hub::new();
    let stream = code("push-errors");
    let buffer = BufferId::Stream(stream.clone());
    for url in [
        "http://example.com/app/key",
        "rtmp://example.com/only-app",
        "rtmp:///app/key",
    ] {
        let err = start_push(
            &hub,
            stream.clone(),
            buffer.clone(),
            PushSettings::new(url),
            None,
        )
        .expect_err(url);
        assert!(
            matches!(
                err,
                PublishError::InvalidSettings {
                    field: "push[].url",
                    ..
                }
            ),
            "{url}: {err}"
        );
        assert!(err.to_string().contains("push-errors"), "{err}");
    }
    let err = start_push(
        &hub,
        stream,
        buffer,
        PushSettings::new("rtmp://127.0.0.1/app/key"),
        None,
    )
    .expect_err("no such buffer");
    assert!(matches!(err, PublishError::Subscribe { .. }), "{err}");
}

/// An RTMP server (the project's own server session) that accepts one publisher, reads 10
/// frames and then stops reading, with a 4 KiB receive buffer so that the pusher's own
/// queue fills soon. Counts the frames it read.
async fn stalling_target(received: Arc<AtomicU64>) -> (u16, JoinHandle<()>) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    let listener = socket.listen(4).unwrap();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut session = ServerSession::new(ServerConfig::default(), [7; 32], Instant::now());
        let mut buf = vec![0u8; 4096];
        while received.load(Ordering::SeqCst) < 10 {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the pusher closed");
            session.handle_input(Instant::now(), &buf[..n]).unwrap();
            while let Some(output) = session.poll_output() {
                match output {
                    Output::Transmit(bytes) => stream.write_all(&bytes).await.unwrap(),
                    Output::Event(ServerEvent::PublishRequested { request_id, .. }) => {
                        session.accept(request_id).unwrap();
                    }
                    Output::Event(ServerEvent::Media(_)) => {
                        received.fetch_add(1, Ordering::SeqCst);
                    }
                    Output::Event(_) => {}
                }
            }
        }
        // Connected, reading nothing more.
        std::future::pending::<()>().await;
        drop(stream);
    });
    (port, task)
}

/// `ffmpeg -listen 1 -i rtmp://127.0.0.1:<port>/live/x -c copy -f mpegts <out>`: an RTMP
/// server for one publisher, killed on drop.
struct Listener(Child);

impl Listener {
    fn start(port: u16, out: &Path) -> Self {
        let child = ffmpeg()
            .args(["-y", "-listen", "1", "-i"])
            .arg(format!("rtmp://127.0.0.1:{port}/live/x"))
            .args(["-c", "copy", "-f", "mpegts"])
            .arg(out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting ffmpeg as an RTMP server");
        Self(child)
    }

    /// Waits until the server's socket is listening (read from `/proc/net/tcp`, so no test
    /// connection uses up FFmpeg's one accept).
    fn wait_listening(&mut self, port: u16) {
        let needle = format!(":{port:04X} 00000000:0000 0A");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
            if table.contains(&needle) {
                return;
            }
            assert!(
                matches!(self.0.try_wait(), Ok(None)),
                "ffmpeg exited before listening"
            );
            assert!(
                Instant::now() < deadline,
                "ffmpeg is not listening on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGINT: FFmpeg ends its output cleanly and exits, closing the connection.
    fn interrupt(&mut self) {
        let status = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success());
        self.wait_exit();
    }

    /// Waits (at most 15 s) for FFmpeg to exit by itself.
    fn wait_exit(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while matches!(self.0.try_wait(), Ok(None)) {
            assert!(Instant::now() < deadline, "ffmpeg did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The frames of a 720p H.264 (two B-frames: composition times) + AAC clip made by FFmpeg.
fn clip_frames() -> Vec<Frame> {
    let spec = ClipSpec {
        bframes: 2,
        ..ClipSpec::default()
    };
    let path = cached_clip(&spec, "ts").expect("encoding the test clip with ffmpeg");
    let ts = std::fs::read(&path).expect("reading the test clip");
    let mut demuxer = Demuxer::new(DemuxerConfig::default());
    let mut frames = Vec::new();
    for chunk in ts.chunks(1316) {
        demuxer.push(chunk, Instant::now());
        while let Some(event) = demuxer.pull() {
            if let DemuxEvent::Frame(frame) = event.expect("the clip demuxes cleanly") {
                frames.push(frame);
            }
        }
    }
    demuxer.flush();
    while let Some(event) = demuxer.pull() {
        if let Ok(DemuxEvent::Frame(frame)) = event {
            frames.push(frame);
        }
    }
    frames
}

/// Writes `frames` into the buffer in real time by DTS, looping, each pass offset by the
/// clip's length (as a looping file input does).
async fn feed(mut writer: Writer, frames: Vec<Frame>) {
    let first = frames.iter().map(|f| f.dts).min().expect("frames");
    let last = frames.iter().map(|f| f.dts).max().expect("frames");
    let length = last - first + Ts90(3000);
    let start = tokio::time::Instant::now();
    for pass in 0.. {
        let offset = Ts90(length.0 * pass);
        for frame in &frames {
            let at = frame.dts - first + offset;
            let due = start + Duration::from_millis(at.as_millis().max(0) as u64);
            tokio::time::sleep_until(due).await;
            let mut frame = frame.clone();
            frame.pts = frame.pts + offset;
            frame.dts = frame.dts + offset;
            frame.arrival = tokio::time::Instant::now().into_std();
            writer.write(frame).expect("writing the buffer");
        }
    }
}

/// Writes `frames` once in real time by DTS, as a rung's FFmpeg would, restarting at 5.5 s:
/// a new session that starts again at the keyframe at or before 4.5 s (written at once, as a
/// restarted FFmpeg catches up), then on in real time.
async fn feed_restarting(mut writer: Writer, frames: Vec<Frame>) {
    let first = frames.iter().map(|f| f.dts).min().expect("frames");
    let restart = first + Ts90(90_000 * 11 / 2);
    let rewind = first + Ts90(90_000 * 9 / 2);
    let resume = frames
        .iter()
        .rposition(|f| f.keyframe && f.codec.kind() == MediaKind::Video && f.dts <= rewind)
        .expect("a keyframe before 4.5 s");
    let cut = frames
        .iter()
        .position(|f| f.dts >= restart)
        .expect("frames past 5.5 s");
    let start = tokio::time::Instant::now();
    let before = frames[..cut].iter().map(|f| (f, f.dts));
    // After the restart nothing is due before the restart itself.
    let after = frames[resume..].iter().map(|f| (f, f.dts.max(restart)));
    for (i, (frame, due)) in before.chain(after).enumerate() {
        if i == cut {
            writer.start_session(SessionReason::Reconnect);
        }
        let at = due - first;
        let due = start + Duration::from_millis(at.as_millis().max(0) as u64);
        tokio::time::sleep_until(due).await;
        let mut frame = frame.clone();
        frame.arrival = tokio::time::Instant::now().into_std();
        writer.write(frame).expect("writing the buffer");
    }
}

/// Polls the target's state until `done` holds (30 s at most).
async fn wait_state(
    push: &PushHandle,
    what: &str,
    mut done: impl FnMut(&PushState) -> bool,
) -> PushState {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let state = push.state();
        if done(&state) {
            return state;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "push never got {what}: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_finished(push: &PushHandle) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !push.is_finished() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the push task did not end: {:?}",
            push.state()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until FFmpeg has written `bytes` of output.
async fn wait_file(path: &Path, bytes: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let len = std::fs::metadata(path).map_or(0, |m| m.len());
        if len >= bytes {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} has {len} bytes, waited for {bytes}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The server's output holds H.264 and AAC and decodes without an error.
fn check_output(path: &Path) {
    let path = path.to_str().expect("a UTF-8 temp path");
    let streams = probe_streams(path).expect("probing the pushed output");
    let codecs: Vec<_> = streams
        .iter()
        .filter_map(|s| s.codec_name.clone())
        .collect();
    assert!(codecs.contains(&"h264".to_owned()), "{codecs:?}");
    assert!(codecs.contains(&"aac".to_owned()), "{codecs:?}");
    let video = streams
        .iter()
        .find(|s| s.codec_name.as_deref() == Some("h264"))
        .expect("a video stream");
    assert_eq!((video.width, video.height), (Some(1280), Some(720)));
    let errors = decode_errors(path, 60.0).expect("decoding the pushed output");
    assert!(errors.is_empty(), "decode errors: {errors}");
}
