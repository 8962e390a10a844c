//! The FFmpeg binaries, pre-encoded clips and real-time UDP sources.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};
use std::{env, fs, thread};

use anyhow::{Context, bail};

/// A command for `ffmpeg` with `-hide_banner -nostdin -loglevel error` already given.
///
/// # Panics
///
/// When `ffmpeg` is not on `PATH`, with a message saying how to install it: a test that needs
/// FFmpeg fails, it never skips.
pub fn ffmpeg() -> Command {
    let mut command = Command::new(binary("ffmpeg"));
    command.args(["-hide_banner", "-nostdin", "-loglevel", "error"]);
    command.stdin(Stdio::null());
    command
}

/// A command for `ffprobe` with `-hide_banner -loglevel error` already given.
///
/// # Panics
///
/// When `ffprobe` is not on `PATH` (see [`ffmpeg`]).
pub fn ffprobe() -> Command {
    let mut command = Command::new(binary("ffprobe"));
    command.args(["-hide_banner", "-loglevel", "error"]);
    command.stdin(Stdio::null());
    command
}

/// What [`make_ts_clip`] encodes: `testsrc2` video and a 440 Hz `sine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClipSpec {
    /// Picture width in pixels. Default 1280.
    pub width: u32,
    /// Picture height in pixels. Default 720.
    pub height: u32,
    /// Frames per second. Default 30.
    pub fps: u32,
    /// Length in seconds. Default 10.
    pub seconds: u32,
    /// Frames per GOP: every `gop`-th picture is an IDR, and no other (scene-cut detection
    /// off). Default 60 (2 s at 30 fps).
    pub gop: u32,
    /// Consecutive B-frames allowed. Default 0 (decode order = presentation order).
    pub bframes: u32,
    /// Whether to add an AAC track (48 kHz stereo, 128 kb/s). Default true.
    pub audio: bool,
    /// H.265 (libx265) instead of H.264 (libx264). Default false.
    pub hevc: bool,
}

/// An `ffmpeg -re -stream_loop -1 -i <clip> -c copy -f <format> <url>` process: a live source
/// looping its clip in real time — TS over UDP ([`start`](Self::start)), TS to any ffmpeg URL
/// ([`start_url`](Self::start_url)), or an RTMP publisher ([`rtmp`](Self::rtmp)).
///
/// The process is killed when the sender is dropped (and by [`kill`](Self::kill));
/// [`restart`](Self::restart) starts it again with the same arguments, which a player sees as
/// a source that went away and came back with timestamps from the start of the clip.
#[derive(Debug)]
pub struct LiveSender {
    /// The clip played.
    clip: PathBuf,
    /// Where the packets go: `udp://HOST:PORT?pkt_size=1316`, `rtmp://…`.
    url: String,
    /// The ffmpeg output format: `mpegts` or `flv`.
    format: &'static str,
    /// The running ffmpeg, `None` after `kill`.
    child: Option<Child>,
}

impl LiveSender {
    /// Starts sending `clip` to `udp://127.0.0.1:<port>?pkt_size=1316` (seven TS packets per
    /// datagram, as encoders and SRT send them).
    pub fn start(clip: &Path, port: u16) -> anyhow::Result<Self> {
        Self::start_url(clip, &format!("udp://127.0.0.1:{port}?pkt_size=1316"))
    }

    /// Starts sending `clip` to an explicit ffmpeg output URL (another host on the loopback
    /// range, a multicast group, `srt://...`, ...).
    pub fn start_url(clip: &Path, url: &str) -> anyhow::Result<Self> {
        Self::start_format(clip, url, "mpegts")
    }

    /// Publishes `clip` to `rtmp://…` (FLV): an encoder pushing to an RTMP listener.
    pub fn rtmp(clip: &Path, url: &str) -> anyhow::Result<Self> {
        Self::start_format(clip, url, "flv")
    }

    fn start_format(clip: &Path, url: &str, format: &'static str) -> anyhow::Result<Self> {
        anyhow::ensure!(clip.is_file(), "clip {} does not exist", clip.display());
        let mut sender = Self {
            clip: clip.to_owned(),
            url: url.to_owned(),
            format,
            child: None,
        };
        sender.spawn()?;
        Ok(sender)
    }

    /// The output URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The ffmpeg process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the ffmpeg process and reaps it (idempotent): the source goes silent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the process if it runs and starts a new one with the same clip and URL.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn()
    }

    /// Whether the ffmpeg process is still running (it exits by itself only on an error, such
    /// as an unreadable clip).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let child = ffmpeg()
            .args(["-re", "-stream_loop", "-1", "-i"])
            .arg(&self.clip)
            .args(["-c", "copy", "-f", self.format])
            .arg(&self.url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting ffmpeg to send {}", self.url))?;
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for LiveSender {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Default for ClipSpec {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 720,
            fps: 30,
            seconds: 10,
            gop: 60,
            bframes: 0,
            audio: true,
            hevc: false,
        }
    }
}

/// Encodes a clip as `spec` says into `path`; the container follows the extension (`.ts` is
/// MPEG-TS, `.mp4`, `.flv`, `.mkv`, ...).
///
/// The file appears atomically (encoded beside it, then renamed), so concurrent tests that
/// make the same clip never read half of one. Encoding takes a few seconds per 10 s of 720p
/// on two cores: share clips through [`cached_clip`].
pub fn make_ts_clip(path: &Path, spec: &ClipSpec) -> anyhow::Result<()> {
    let ext = path
        .extension()
        .and_then(OsStr::to_str)
        .context("the clip path needs an extension naming the container (.ts, .mp4, ...)")?;
    let stem = path.file_stem().and_then(OsStr::to_str).unwrap_or("clip");
    // Unique per call: tests of one binary run in threads of one process and may make the
    // same clip at once; a shared partial file made one of them fail.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let partial = path.with_file_name(format!(
        ".{stem}.{}.{}.partial.{ext}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let ClipSpec {
        width,
        height,
        fps,
        seconds,
        gop,
        bframes,
        audio,
        hevc,
    } = *spec;

    let mut command = ffmpeg();
    command.args(["-y", "-f", "lavfi", "-i"]);
    command.arg(format!("testsrc2=size={width}x{height}:rate={fps}"));
    if audio {
        command.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    }
    command.args(["-t", &seconds.to_string(), "-map", "0:v"]);
    if audio {
        command.args(["-map", "1:a"]);
    }
    if hevc {
        command.args(["-c:v", "libx265", "-preset", "veryfast", "-x265-params"]);
        command.arg(format!(
            "keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}:log-level=error"
        ));
        // hvc1 so MP4 players (and Apple's) accept it; ignored by other containers.
        command.args(["-tag:v", "hvc1"]);
    } else {
        command.args(["-c:v", "libx264", "-preset", "veryfast"]);
        command.args(["-g", &gop.to_string(), "-keyint_min", &gop.to_string()]);
        command.args(["-sc_threshold", "0", "-bf", &bframes.to_string()]);
    }
    command.args(["-pix_fmt", "yuv420p"]);
    if audio {
        command.args(["-c:a", "aac", "-b:a", "128k", "-ac", "2"]);
    }
    command.arg(&partial);

    let timeout = Duration::from_secs(120 + u64::from(seconds) * 10);
    let output =
        run(&mut command, timeout).with_context(|| format!("encoding clip {}", path.display()))?;
    if !output.status.success() {
        let _ = fs::remove_file(&partial);
        bail!(
            "ffmpeg failed to encode {} ({}): {}",
            path.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    fs::rename(&partial, path)
        .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))
}

/// A clip made by [`make_ts_clip`] once per `spec` and extension and kept in
/// `$TMPDIR/tributary-testkit/`, so the suite (and benches) encode each distinct clip once.
pub fn cached_clip(spec: &ClipSpec, ext: &str) -> anyhow::Result<PathBuf> {
    let dir = env::temp_dir().join("tributary-testkit");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let ClipSpec {
        width,
        height,
        fps,
        seconds,
        gop,
        bframes,
        audio,
        hevc,
    } = *spec;
    let name = format!(
        "testsrc2-{width}x{height}-{fps}fps-{seconds}s-g{gop}-bf{bframes}-{}-{}.{ext}",
        if hevc { "h265" } else { "h264" },
        if audio { "aac" } else { "noaudio" },
    );
    let path = dir.join(name);
    if !path.is_file() {
        make_ts_clip(&path, spec)?;
    }
    Ok(path)
}

/// Runs `command` to completion with stdout and stderr captured; kills it and fails after
/// `timeout`.
pub(crate) fn run(command: &mut Command, timeout: Duration) -> anyhow::Result<Output> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    // Drain both pipes on their own threads so a chatty child never blocks on a full pipe.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status: ExitStatus = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap_or_default();
            bail!(
                "{program} did not finish within {timeout:?}; killed. stderr: {}",
                String::from_utf8_lossy(&stderr).trim()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// The path of `name` on `PATH`.
///
/// # Panics
///
/// When it is not there.
pub(crate) fn binary(name: &str) -> PathBuf {
    let found = env::var_os("PATH").and_then(|paths| {
        env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => path,
        None => panic!("{name} not found on PATH: run scripts/test, which installs it"),
    }
}
