//! Fault injection (`POST /debug/fault`, SPEC §API, on only with `debug.fault_injection`):
//! kills one input connection or one FFmpeg process of a running stream, for tests of
//! failover and transcoder supervision against a real server.
//!
//! Nothing here simulates: an input fault aborts the ingest worker's running task (its socket
//! or child closed) and the worker reports the loss as any other (`manager/fault.rs`); a
//! transcoder fault SIGKILLs the FFmpeg process group, and the job sees a crash
//! (`tributary_transcode::StatusWatch::kill`). What follows — failover and failback, the
//! supervisor's backoff and restart, their events and metrics — is the production path.
//! Whether the route is on is the API's check, read from the configuration at each request.

use tributary_domain::StreamCode;
use tributary_domain::ffmpeg::Mode;
use tributary_domain::validate::track_rung;

use crate::EngineHandle;

/// What to kill.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultTarget {
    /// The connection of the input with this priority (the active input when `None`).
    Input {
        /// The input's priority.
        priority: Option<u32>,
    },
    /// The FFmpeg process of the rung with this name (`track_<N>`, checked against the running
    /// ladder by [`track_rung`]); `None` is the one process of `multi` mode (or of a one-rung
    /// ladder).
    Transcoder {
        /// The rung's name.
        profile: Option<String>,
    },
}

/// What a fault killed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Killed {
    /// An input's connection was dropped; the worker reconnects after its backoff.
    Input {
        /// The input's priority.
        priority: u32,
        /// Its URL, secrets masked.
        url: String,
    },
    /// An FFmpeg process was SIGKILLed; its job restarts it after the backoff.
    Transcoder {
        /// The rung asked for (`track_<N>`).
        profile: String,
        /// The killed process (in `multi` mode it encoded every rung).
        pid: u32,
        /// Whether the process encoded the whole ladder (`multi` mode).
        whole_ladder: bool,
    },
}

/// Why a fault was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FaultError {
    /// The stream exists but does not run.
    #[error("stream {0} is not running; nothing to kill")]
    NotRunning(String),
    /// No input has this priority.
    #[error("stream {code} has no input with priority {priority}")]
    UnknownPriority {
        /// The stream.
        code: String,
        /// The priority asked for.
        priority: u32,
    },
    /// The ladder has no such rung.
    #[error("stream {code} has no rung {profile}; its ladder has {rungs}")]
    UnknownProfile {
        /// The stream.
        code: String,
        /// The rung name asked for.
        profile: String,
        /// How many rungs the ladder has.
        rungs: usize,
    },
    /// `per_profile` mode runs one process per rung: the request must name one.
    #[error(
        "stream {code} runs one FFmpeg per rung (per_profile mode): name one with `profile` \
         (track_1..track_{rungs})"
    )]
    ProfileRequired {
        /// The stream.
        code: String,
        /// How many rungs the ladder has.
        rungs: usize,
    },
    /// The target exists but nothing of it runs now; the message says what and why.
    #[error("{0}")]
    NothingToKill(String),
}

impl EngineHandle {
    /// Kills `target` of running stream `code` (see the module doc); logged at WARN.
    pub fn inject_fault(
        &self,
        code: &StreamCode,
        target: FaultTarget,
    ) -> Result<Killed, FaultError> {
        if !self.shared.coordinator.is_running(code) {
            return Err(FaultError::NotRunning(code.to_string()));
        }
        let media = &self.shared.media;
        let killed = match target {
            FaultTarget::Input { priority } => {
                let (priority, url) = media.manager.drop_connection(code, priority)?;
                tracing::warn!(stream = %code, priority, %url,
                    "fault injection: input connection dropped");
                Killed::Input { priority, url }
            }
            FaultTarget::Transcoder { profile } => {
                let Some((mode, rungs)) = media.transcoders.rung_jobs(code) else {
                    return Err(FaultError::NothingToKill(format!(
                        "stream {code} runs no FFmpeg transcoder"
                    )));
                };
                let count = rungs.len();
                let profile = match (profile, mode) {
                    (Some(profile), _) => profile,
                    (None, Mode::Multi) => "track_1".to_owned(),
                    (None, _) if count == 1 => "track_1".to_owned(),
                    (None, _) => {
                        return Err(FaultError::ProfileRequired {
                            code: code.to_string(),
                            rungs: count,
                        });
                    }
                };
                let index =
                    track_rung(&profile, count).map_err(|_| FaultError::UnknownProfile {
                        code: code.to_string(),
                        profile: profile.clone(),
                        rungs: count,
                    })?;
                let pid = rungs[index]
                    .as_ref()
                    .and_then(|w| w.kill())
                    .ok_or_else(|| {
                        FaultError::NothingToKill(format!(
                            "stream {code}: no FFmpeg process runs for {profile} now \
                         (starting, or restarting after a crash)"
                        ))
                    })?;
                tracing::warn!(stream = %code, %profile, pid,
                    "fault injection: FFmpeg killed (SIGKILL)");
                Killed::Transcoder {
                    profile,
                    pid,
                    whole_ladder: mode == Mode::Multi,
                }
            }
        };
        Ok(killed)
    }
}
