//! `file:///abs/path` or `/abs/path`: a file played in real time, looped by default (SPEC
//! §Ingest "file"). `file://<mount>/<path>` arrives here resolved through the VOD mounts (the
//! domain parse): its path inside the mount's storage, which then stands in for
//! `security.file_input_roots` as the one directory the file may resolve into.
//!
//! `.ts` (and `.m2ts`, `.mts`) is demuxed directly. MP4/MOV/M4V, FLV and MKV are remuxed to TS
//! by an `ffmpeg -c copy` child whose stdout is demuxed like a `.ts` file: one demuxer and one
//! set of rules (parameter sets, AAC configuration, pacing) for every container, at the cost of
//! a child process per pass, with no re-encoding. Native MP4/FLV/MKV demuxers would avoid the
//! child; until they exist, a server without FFmpeg reports a clear error for those files
//! (naming the file and the binary) and still plays `.ts`.
//!
//! Frames are written no faster than their DTS advances. With `loop` (the default), each pass
//! is offset by the previous pass's end ([`Passes`]), so a loop is neither a timeline break nor
//! a new session: no `Port::restart`. Without it, the end of the file is reported as an error
//! and the worker finishes.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

use tributary_domain::spec::{FileFormat, FileSource};

use crate::IngestConfig;
use crate::backoff::Backoff;
use crate::pace::{Pacer, Passes};
use crate::sink::{Next, Reporter, Sink, now};

/// The options of a file input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileOptions {
    /// The absolute path.
    path: PathBuf,
    /// How the container is read.
    format: Format,
    /// Whether the file plays again from the start when it ends (`loop`, default true).
    looping: bool,
    /// The FFmpeg binary for [`Format::Remux`].
    ffmpeg: PathBuf,
    /// Where the file must lie once resolved (`security.file_input_roots`; empty: anywhere).
    roots: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// MPEG-TS, demuxed directly.
    Ts,
    /// Another container, remuxed to TS by FFmpeg, which is told the demuxer by name.
    Remux(&'static str),
}

impl FileOptions {
    /// A parsed file input, with the FFmpeg binary that remuxes non-TS containers.
    pub(crate) fn new(source: FileSource, config: &IngestConfig) -> Self {
        let format = match source.format {
            FileFormat::Ts => Format::Ts,
            FileFormat::Mp4 => Format::Remux("mov"),
            FileFormat::Flv => Format::Remux("flv"),
            _ => Format::Remux("matroska"),
        };
        Self {
            path: source.path,
            format,
            looping: source.looping,
            ffmpeg: config.ffmpeg_path.clone(),
            // A mount's file stays inside its mount; an absolute path inside the file roots.
            roots: source
                .root
                .map_or_else(|| config.roots.get().file_input.clone(), |root| vec![root]),
        }
    }
}

/// Runs the file worker until stopped, or to the end of the file without `loop`.
pub(crate) async fn run(options: FileOptions, program: u16, reporter: Reporter) {
    let mut sink = Sink::new(reporter.clone(), program);
    let mut pacer = Pacer::new();
    let mut passes = Passes::new();
    let mut backoff = Backoff::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut failed = false;
    let mut announced = false;
    let path = options.path.display().to_string();
    loop {
        let mut source = match Source::open(&options).await {
            Ok(source) => source,
            Err(e) => {
                reporter.open_failed(e);
                failed = true;
                backoff.wait().await;
                continue;
            }
        };
        if failed {
            // A reopen after a failure, unlike a loop, starts a new session.
            reporter.reconnected();
            pacer.reset();
        }
        if failed || !announced {
            // Loops are one run of the source for the manager; a reopen is news.
            reporter.announce_open();
            announced = true;
        }
        sink.reset();
        let read = read_pass(&mut source, &mut buf, &mut sink, &mut pacer, &mut passes).await;
        let exit = source.finish().await;
        let had_frames = passes.next_pass();
        let error = match (read, exit) {
            (Ok(()), Ok(())) if had_frames => {
                backoff.reset();
                if options.looping {
                    tracing::debug!("end of file; looping");
                    continue;
                }
                reporter.finish(format_args!("end of file {path} (loop disabled)"));
                return;
            }
            (Ok(()), Ok(())) => format!("{path}: no media frames in the file"),
            (Err(e), _) | (Ok(()), Err(e)) => e,
        };
        reporter.lost(error);
        failed = true;
        backoff.wait().await;
    }
}

/// Reads one pass of the source, writing its frames paced; `Err` on a read or demux failure.
async fn read_pass(
    source: &mut Source,
    buf: &mut [u8],
    sink: &mut Sink,
    pacer: &mut Pacer,
    passes: &mut Passes,
) -> Result<(), String> {
    let mut offset: u64 = 0;
    loop {
        let len = source
            .read(buf)
            .await
            .map_err(|e| format!("{}: read error at byte {offset}: {e}", source.name()))?;
        if len == 0 {
            sink.flush();
        } else {
            sink.push(&buf[..len], now());
            offset += len as u64;
        }
        while let Some(next) = sink.next() {
            match next {
                Next::Frame(mut ready) => {
                    passes.apply(&mut ready.frame);
                    let released = pacer.wait(ready.frame.dts).await;
                    ready.frame.arrival = released;
                    sink.write(ready, released);
                }
                Next::Reopen(why) => {
                    return Err(format!("{}: {why} (at byte {offset})", source.name()));
                }
            }
        }
        if len == 0 {
            return Ok(());
        }
    }
}

/// An open file, or the FFmpeg child remuxing one.
enum Source {
    File {
        path: PathBuf,
        file: tokio::fs::File,
    },
    Ffmpeg {
        path: PathBuf,
        /// Killed if the source is dropped (the worker stopped).
        child: Child,
        stdout: ChildStdout,
        /// Collects the end of FFmpeg's stderr for the error message.
        stderr: JoinHandle<String>,
    },
}

impl Source {
    async fn open(options: &FileOptions) -> Result<Self, String> {
        let (path, file) = open_confined(&options.path, &options.roots).await?;
        let Format::Remux(demuxer) = options.format else {
            return Ok(Self::File { path, file });
        };
        drop(file);
        // FFmpeg reads only local files (no protocol hidden in the name) in the container
        // the extension says, from the path just checked.
        let input = format!("file:{}", path.display());
        let mut child = Command::new(&options.ffmpeg)
            .args(["-hide_banner", "-nostdin", "-loglevel", "error"])
            .args(["-protocol_whitelist", "file", "-f", demuxer, "-i"])
            .arg(&input)
            .args([
                "-map", "0:v?", "-map", "0:a?", "-c", "copy", "-f", "mpegts", "-",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                let ffmpeg = options.ffmpeg.display();
                if e.kind() == std::io::ErrorKind::NotFound {
                    format!(
                        "cannot remux {}: FFmpeg binary {ffmpeg:?} not found (needed for \
                         non-TS files; install ffmpeg or set transcoder.ffmpeg_path)",
                        path.display()
                    )
                } else {
                    format!("cannot remux {}: starting {ffmpeg:?}: {e}", path.display())
                }
            })?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(format!(
                "cannot remux {}: no pipes to FFmpeg",
                path.display()
            ));
        };
        let stderr = tokio::spawn(tail(stderr));
        Ok(Self::Ffmpeg {
            path,
            child,
            stdout,
            stderr,
        })
    }

    fn name(&self) -> String {
        match self {
            Self::File { path, .. } => path.display().to_string(),
            Self::Ffmpeg { path, .. } => format!("{} (via FFmpeg)", path.display()),
        }
    }

    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::File { file, .. } => file.read(buf).await,
            Self::Ffmpeg { stdout, .. } => stdout.read(buf).await,
        }
    }

    /// Ends the pass: for FFmpeg, reaps the child and turns a failure into an error naming
    /// the file and quoting FFmpeg.
    async fn finish(self) -> Result<(), String> {
        let Self::Ffmpeg {
            path,
            mut child,
            stderr,
            ..
        } = self
        else {
            return Ok(());
        };
        let status: Option<ExitStatus> = match tokio::time::timeout(EXIT_GRACE, child.wait()).await
        {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = child.kill().await;
                None
            }
        };
        let said = stderr.await.unwrap_or_default();
        match status {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(format!(
                "FFmpeg failed to remux {} ({status}): {}",
                path.display(),
                said.trim()
            )),
            None => Err(format!(
                "FFmpeg did not exit after remuxing {}; killed",
                path.display()
            )),
        }
    }
}

/// Reads a pipe to its end, keeping the last [`STDERR_TAIL`] bytes.
/// Opens `path` for reading: its directory resolved (symlinks included) must lie inside one of
/// `roots` (any directory when empty), and the file itself is opened without following a
/// symlink and must be a regular file. Returns the resolved path and the open file.
async fn open_confined(
    path: &Path,
    roots: &[PathBuf],
) -> Result<(PathBuf, tokio::fs::File), String> {
    let fail = |why: String| format!("cannot open {}: {why}", path.display());
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(fail("not a file path".into()));
    };
    let dir = tokio::fs::canonicalize(dir)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let resolved = dir.join(name);
    if !roots.is_empty() {
        let mut inside = false;
        for root in roots {
            if let Ok(root) = tokio::fs::canonicalize(root).await
                && resolved.starts_with(&root)
            {
                inside = true;
                break;
            }
        }
        if !inside {
            return Err(fail(format!(
                "it resolves to {}, outside security.file_input_roots",
                resolved.display()
            )));
        }
    }
    let file = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&resolved)
        .await
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                fail("it is a symbolic link".into())
            } else {
                fail(e.to_string())
            }
        })?;
    let metadata = file.metadata().await.map_err(|e| fail(e.to_string()))?;
    if !metadata.is_file() {
        return Err(fail("not a regular file".into()));
    }
    Ok((resolved, file))
}

async fn tail(mut pipe: impl AsyncRead + Unpin) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(len) = pipe.read(&mut buf).await {
        if len == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..len]);
        if kept.len() > STDERR_TAIL {
            kept.drain(..kept.len() - STDERR_TAIL);
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// Bytes read per wake-up: 348 TS packets.
const READ_CHUNK: usize = 348 * 188;
/// How long FFmpeg may take to exit once its output ended.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// FFmpeg stderr kept for an error message.
const STDERR_TAIL: usize = 2048;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_is_read_directly_and_the_rest_remuxed() {
        let config = IngestConfig::default();
        let source = |format| FileSource {
            path: "/a/b".into(),
            format,
            looping: false,
            root: None,
        };
        let o = FileOptions::new(source(FileFormat::Ts), &config);
        assert_eq!((o.format, o.looping), (Format::Ts, false));
        for (format, demuxer) in [
            (FileFormat::Mp4, "mov"),
            (FileFormat::Flv, "flv"),
            (FileFormat::Mkv, "matroska"),
        ] {
            assert_eq!(
                FileOptions::new(source(format), &config).format,
                Format::Remux(demuxer)
            );
        }
    }

    #[tokio::test]
    async fn files_are_opened_only_inside_the_roots_and_never_through_a_final_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("a.ts"), b"x").unwrap();
        std::fs::write(outside.join("secret.ts"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.join("secret.ts"), root.join("link.ts")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
        let roots = [root.clone()];

        let (path, _) = open_confined(&root.join("a.ts"), &roots).await.unwrap();
        assert_eq!(path, root.canonicalize().unwrap().join("a.ts"));
        let link = open_confined(&root.join("link.ts"), &roots)
            .await
            .unwrap_err();
        assert!(link.contains("symbolic link"), "{link}");
        let escape = open_confined(&root.join("escape/secret.ts"), &roots)
            .await
            .unwrap_err();
        assert!(
            escape.contains("outside security.file_input_roots"),
            "{escape}"
        );
        let dir_err = open_confined(&root, &[]).await.unwrap_err();
        assert!(dir_err.contains("not a regular file"), "{dir_err}");
        // Without roots, any regular file that is not a symlink opens.
        assert!(open_confined(&outside.join("secret.ts"), &[]).await.is_ok());
    }
}
