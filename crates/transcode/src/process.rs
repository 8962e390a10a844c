//! One FFmpeg child (SPEC §Transcoder "Stop"): started without a shell, in its own process
//! group, in an empty private working directory, with output *i* on descriptor
//! [`FIRST_OUTPUT_FD`]` + i`; stopped by closing its stdin, waiting the grace period, then
//! killing the group; always reaped.
//!
//! # Children die with the server
//!
//! FFmpeg is executed through `setpriv --pdeathsig KILL -- <ffmpeg> …` (util-linux): the
//! kernel sends it SIGKILL when the thread that spawned it exits, so a server killed with
//! SIGKILL leaves no encoder behind. That signal follows the parent *thread*, not the
//! process: spawn only from a tokio worker thread (a task), never from `spawn_blocking`,
//! whose threads are retired when idle and would take their children with them. Without
//! `setpriv` FFmpeg is spawned directly (one warning is logged): its pipes still end it, as
//! end of input on stdin and a failed write on its outputs, just later. `kill_on_drop` covers
//! a handle dropped without [`Ffmpeg::stop`].

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Once;
use std::time::Duration;

use command_fds::CommandFdExt;
use command_fds::FdMapping;
use tokio::net::unix::pipe;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tributary_domain::ffmpeg::{FIRST_OUTPUT_FD, PROGRESS_FD};

/// How FFmpeg is executed: its resolved path, and `setpriv` when the host has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launcher {
    /// The FFmpeg binary, absolute.
    ffmpeg: PathBuf,
    /// `setpriv`, absolute, for the parent-death signal.
    setpriv: Option<PathBuf>,
}

impl Launcher {
    /// Resolves `program` (`transcoder.ffmpeg_path`: a path, or a name looked up on `PATH`)
    /// and `setpriv`. A missing FFmpeg is an error naming the path and `PATH`.
    pub fn resolve(program: &Path) -> Result<Self, SpawnError> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let ffmpeg = find(program, &path).ok_or_else(|| SpawnError::NotFound {
            program: program.to_owned(),
            path: path.to_string_lossy().into_owned(),
        })?;
        let setpriv = find(Path::new("setpriv"), &path);
        if setpriv.is_none() {
            static WARN: Once = Once::new();
            WARN.call_once(|| {
                tracing::warn!(
                    "setpriv (util-linux) not found on PATH: FFmpeg children get no \
                     parent-death signal and outlive a killed server until their pipes close"
                );
            });
        }
        Ok(Self { ffmpeg, setpriv })
    }

    /// The FFmpeg binary, absolute.
    pub fn ffmpeg(&self) -> &Path {
        &self.ffmpeg
    }
}

/// `program` itself when it names a file (it contains a `/`), else the first executable file
/// of that name on `path`.
fn find(program: &Path, path: &std::ffi::OsStr) -> Option<PathBuf> {
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.components().count() > 1 || program.is_absolute() {
        let absolute = std::path::absolute(program).ok()?;
        return executable(&absolute).then_some(absolute);
    }
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| executable(candidate))
}

/// A running FFmpeg.
#[derive(Debug)]
pub struct Ffmpeg {
    /// The child; reaped by [`stop`](Self::stop) or [`wait`](Self::wait).
    child: Child,
    /// Its process id, which is also its process group id.
    pid: u32,
}

/// The pipes of a running FFmpeg, each read or written by its own task.
#[derive(Debug)]
pub struct Pipes {
    /// Its input (`-i pipe:0`): MPEG-TS. Dropping it is how FFmpeg is told to finish.
    pub stdin: ChildStdin,
    /// `-progress` reports ([`PROGRESS_FD`] is stdout).
    pub progress: ChildStdout,
    /// Its log.
    pub stderr: ChildStderr,
    /// Output *i* (`pipe:<3 + i>`), MPEG-TS.
    pub outputs: Vec<pipe::Receiver>,
}

/// Why FFmpeg could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The binary does not exist (as a path, or on `PATH`).
    #[error("FFmpeg binary {program:?} not found (PATH={path})")]
    NotFound {
        /// `transcoder.ffmpeg_path`.
        program: PathBuf,
        /// The `PATH` searched.
        path: String,
    },
    /// The private working directory could not be made empty.
    #[error("cannot prepare the working directory {dir:?}: {source}")]
    Workdir {
        /// The directory.
        dir: PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// The pipes for its outputs could not be made.
    #[error("cannot create the output pipes of {program:?}: {source}")]
    Pipes {
        /// The FFmpeg binary.
        program: PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// The process could not be started.
    #[error("cannot start {program:?}: {source}")]
    Spawn {
        /// The FFmpeg binary.
        program: PathBuf,
        /// The system error.
        source: io::Error,
    },
}

/// Empties `dir` (creating it, mode 0700): each run starts in an empty private directory.
pub fn prepare_workdir(dir: &Path) -> Result<(), SpawnError> {
    use std::os::unix::fs::DirBuilderExt;
    let fail = |source| SpawnError::Workdir {
        dir: dir.to_owned(),
        source,
    };
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(fail)
}

impl Ffmpeg {
    /// Starts FFmpeg with `args` (from `tributary_domain::ffmpeg::argv`) in `workdir`, with
    /// `outputs` output pipes. Call from a task (see the module doc).
    pub fn spawn(
        launcher: &Launcher,
        args: &[String],
        outputs: usize,
        workdir: &Path,
    ) -> Result<(Self, Pipes), SpawnError> {
        let program = launcher.ffmpeg.as_path();
        let pipes_error = |source| SpawnError::Pipes {
            program: program.to_owned(),
            source,
        };
        let mut readers: Vec<OwnedFd> = Vec::with_capacity(outputs);
        let mut mappings = Vec::with_capacity(outputs);
        for fd in (FIRST_OUTPUT_FD..).take(outputs) {
            let (reader, writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(|e| pipes_error(io::Error::from(e)))?;
            readers.push(reader);
            let child_fd =
                i32::try_from(fd).map_err(|_| pipes_error(io::Error::other("too many outputs")))?;
            mappings.push(FdMapping {
                parent_fd: writer,
                child_fd,
            });
        }
        let mut command = match &launcher.setpriv {
            Some(setpriv) => {
                let mut c = Command::new(setpriv);
                c.args(["--pdeathsig", "KILL", "--"]).arg(program);
                c
            }
            None => Command::new(program),
        };
        command
            .args(args)
            .current_dir(workdir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        const _: () = assert!(PROGRESS_FD == 1, "progress is read from stdout");
        command
            .fd_mappings(mappings)
            .map_err(|e| pipes_error(io::Error::other(e)))?;
        let spawned = command.spawn();
        // The command owns the write ends: drop it, so that only the child holds them and the
        // readers see end of file when it exits.
        drop(command);
        let mut child = spawned.map_err(|source| SpawnError::Spawn {
            program: program.to_owned(),
            source,
        })?;
        let pid = child.id().unwrap_or(0);
        let (Some(stdin), Some(progress), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(SpawnError::Spawn {
                program: program.to_owned(),
                source: io::Error::other("the child's standard pipes are missing"),
            });
        };
        let outputs = readers
            .into_iter()
            .map(pipe::Receiver::from_owned_fd)
            .collect::<io::Result<Vec<_>>>()
            .map_err(pipes_error)?;
        Ok((
            Self { child, pid },
            Pipes {
                stdin,
                progress,
                stderr,
                outputs,
            },
        ))
    }

    /// The process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for the process to exit and reaps it.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Stops it: the caller has dropped its stdin; wait up to `grace` (SPEC: 2 s) for it to
    /// finish, then kill its process group, and reap it.
    pub async fn stop(mut self, grace: Duration) -> io::Result<ExitStatus> {
        if let Ok(status) = tokio::time::timeout(grace, self.child.wait()).await {
            return status;
        }
        self.kill_group();
        self.child.wait().await
    }

    /// Sends SIGKILL to the process group (FFmpeg and anything it started).
    pub fn kill_group(&mut self) {
        if let Some(pid) = i32::try_from(self.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.start_kill();
    }
}
