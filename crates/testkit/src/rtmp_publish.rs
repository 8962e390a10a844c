//! A blocking RTMP publisher on the project's own client session, for media no tool on this
//! machine publishes (AV1 and VP9 over Enhanced RTMP: FFmpeg 5.1 and GStreamer 1.22 predate
//! it).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use tributary_media::codec::{av1, vp9};
use tributary_media::{Codec, Frame, SessionId, Ts90};
use tributary_rtmp::{ClientEvent, ClientIntent, ClientSession, Output, Pushed, VIDEO_TRACK};

use crate::rtmp::{POLL, START_TIMEOUT, connect};

/// The frames of an AV1 (`ffmpeg -f obu`, `.obu`) or VP9 (`ffmpeg -f ivf`, `.ivf`) file at
/// `fps`, as the hub carries them: one temporal unit or one frame each, keyframes as the
/// bitstream says.
pub fn coded_video_frames(path: &Path, fps: u32) -> anyhow::Result<Vec<Frame>> {
    let file = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let file = Bytes::from(file);
    let (codec, units): (Codec, Vec<&[u8]>) = match path.extension().and_then(|e| e.to_str()) {
        Some("obu") => (Codec::Av1, av1::temporal_units(&file).collect()),
        Some("ivf") => (Codec::Vp9, vp9::ivf_frames(&file).collect()),
        _ => bail!("{}: neither .obu (AV1) nor .ivf (VP9)", path.display()),
    };
    let arrival = Instant::now();
    let interval = Ts90::HZ / i64::from(fps.max(1));
    Ok((0i64..)
        .zip(units)
        .map(|(i, unit)| Frame {
            track: VIDEO_TRACK,
            codec,
            pts: Ts90(i * interval),
            dts: Ts90(i * interval),
            keyframe: if codec == Codec::Av1 {
                av1::is_keyframe(unit)
            } else {
                vp9::is_keyframe(unit)
            },
            session: SessionId(0),
            arrival,
            payload: file.slice_ref(unit),
            config: None,
        })
        .collect())
}

/// Publishes `frames` to `url` (`rtmp://host[:port]/<app>/<name>`) with the project's
/// [`ClientSession`], over and over (each round shifted to follow the last, one frame
/// interval later), paced in real time by DTS, for `duration` after `NetStream.Publish.Start`;
/// returns how many frames the session queued.
///
/// The frames must start at a keyframe and be in decode order. Fails when the connection, the
/// handshake or `publish` fails (a refusal names the server's status code), when publishing has
/// not started within 10 s, or when the session reports a protocol error.
pub fn rtmp_publish(url: &str, frames: &[Frame], duration: Duration) -> anyhow::Result<usize> {
    let (Some(first), Some(last)) = (frames.first(), frames.last()) else {
        bail!("nothing to publish");
    };
    let step = frames
        .get(1)
        .map_or(Ts90::from_millis(40), |second| second.dts - first.dts);
    let round = last.dts - first.dts + step;
    let (mut session, mut socket, _, begun) = connect(url, ClientIntent::Publish)?;
    let mut started = false;
    while !started {
        started = flush(&mut session, &mut socket)?;
        if !started && begun.elapsed() >= START_TIMEOUT {
            bail!("{url}: no NetStream.Publish.Start within {START_TIMEOUT:?}");
        }
        read(&mut session, &mut socket, POLL).with_context(|| url.to_owned())?;
    }
    let start = Instant::now();
    let mut queued = 0;
    'rounds: for n in 0i64.. {
        for frame in frames {
            let shift = Ts90(round.0 * n);
            let due = (frame.dts + shift - first.dts).as_millis();
            let at = start + Duration::from_millis(u64::try_from(due).unwrap_or(0));
            if at > start + duration {
                break 'rounds;
            }
            while let Some(wait) = at.checked_duration_since(Instant::now()) {
                read(&mut session, &mut socket, wait.min(POLL)).with_context(|| url.to_owned())?;
                flush(&mut session, &mut socket)?;
            }
            let shifted = Frame {
                pts: frame.pts + shift,
                dts: frame.dts + shift,
                ..frame.clone()
            };
            if session.send_media(&shifted)? == Pushed::Queued {
                queued += 1;
            }
            flush(&mut session, &mut socket)?;
        }
    }
    if session.close().is_ok() {
        let _ = flush(&mut session, &mut socket);
    }
    let _ = socket.shutdown(std::net::Shutdown::Both);
    Ok(queued)
}

/// Writes what the session has to send; returns whether publishing has started.
fn flush(session: &mut ClientSession, socket: &mut TcpStream) -> anyhow::Result<bool> {
    let mut started = false;
    while let Some(output) = session.poll_output() {
        match output {
            Output::Transmit(bytes) => socket.write_all(&bytes).context("writing")?,
            Output::Event(ClientEvent::PublishStarted) => started = true,
            Output::Event(_) => {}
        }
    }
    Ok(started)
}

/// Reads what the server sent within `wait` into the session, and runs its timer.
fn read(session: &mut ClientSession, socket: &mut TcpStream, wait: Duration) -> anyhow::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
    match socket.read(&mut buf) {
        Ok(0) => bail!("the server closed the connection"),
        Ok(n) => session.handle_input(Instant::now(), &buf[..n])?,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        Err(e) if e.kind() == ErrorKind::Interrupted => {}
        Err(e) => return Err(e).context("reading"),
    }
    let now = Instant::now();
    if session.poll_timeout().is_some_and(|at| now >= at) {
        session.handle_timeout(now)?;
    }
    Ok(())
}
