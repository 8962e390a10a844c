//! One FFmpeg job kept alive (SPEC §Transcoder "Supervision"): the whole ladder in `multi`
//! mode, one rung in `per_profile` mode. A task spawns FFmpeg, feeds it from the raw-ingest
//! buffer, turns each output back into frames for its rendition buffer, watches progress and
//! stderr, and restarts it with backoff when it exits, until it is stopped.
//!
//! The rendition writers belong to the job for its whole life, across restarts: a restart is
//! a new session in each rendition buffer, never a deleted buffer, so players and packagers
//! of the rungs carry on. [`JobHandle::stop`] gives them back.
//!
//! [`StatusWatch::kill`] is fault injection (`POST /debug/fault`): it SIGKILLs the running
//! process's group, and the job treats the exit as any crash (logged, counted, restarted after
//! the supervisor's backoff), so a test exercises the real supervision path.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::process::{ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tributary_domain::ffmpeg::{Context, Job, Ladder, Overlay, OverlayInput, argv};
use tributary_hub::{BufferId, Delivery, Hub, SubscribeFrom, Subscriber, Writer};
use tributary_media::timeline::SessionReason;
use tributary_media::{Ts90, codec};
use tributary_mpegts::{DemuxEvent, Demuxer, DemuxerConfig, LiveWriter};

use crate::process::{Ffmpeg, Launcher, prepare_workdir};
use crate::progress::{Progress, ProgressParser};
use crate::restamp::Restamp;
use crate::stderr::StderrTail;
use crate::supervise::{Event, Supervisor, SupervisorConfig};
use crate::usage::{self, Usage};

/// How to run one job.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// How FFmpeg is executed (resolved by the caller, so a missing binary is reported
    /// before any job starts).
    pub launcher: Launcher,
    /// The ladder this job runs part of.
    pub ladder: Arc<Ladder>,
    /// Which rungs.
    pub job: Job,
    /// `publisher.hls.live_segment_sec`.
    pub segment_sec: f64,
    /// The watermark and the file it draws from (the text file written in `workdir`, or the
    /// image).
    pub overlay: Option<(Overlay, String)>,
    /// The private, empty working directory.
    pub workdir: PathBuf,
    /// The raw-ingest buffer (`$raw$<code>`).
    pub source: BufferId,
    /// Between closing stdin and killing the group: 2 s.
    pub grace: Duration,
    /// Backoff and health timers.
    pub supervisor: SupervisorConfig,
}

/// What a job reports while it runs, read by `GET /streams/{code}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobStatus {
    /// The running process, if any.
    pub pid: Option<u32>,
    /// Crashes so far.
    pub restart_count: u64,
    /// Not 3 crashes within 30 s without 30 s of running since.
    pub healthy: bool,
    /// Speed below 0.95× for 30 s.
    pub slow: bool,
    /// The last progress report of the current process.
    pub progress: Option<Progress>,
    /// CPU and memory of the current process.
    pub usage: Option<Usage>,
    /// Frames the feeder could not give FFmpeg (lost by its subscriber or skipped), over
    /// the job's life.
    pub fed_dropped: u64,
    /// The last [`MAX_ERRORS`] crashes, newest first: when, and the exit with the stderr tail.
    pub errors: Vec<(SystemTime, String)>,
}

/// Crashes kept in [`JobStatus::errors`].
pub const MAX_ERRORS: usize = 5;

/// What a job tells the engine (which stamps, publishes and counts it).
#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    /// A process started.
    Started {
        /// Its pid.
        pid: u32,
    },
    /// Supervision events: crashes, restarts, health and speed changes.
    Supervision(Event),
}

/// A [`JobEvent`] and the job it comes from (several jobs may share one channel).
#[derive(Debug, Clone, PartialEq)]
pub struct JobReport {
    /// The job: the whole ladder, or one rung.
    pub job: Job,
    /// What happened.
    pub event: JobEvent,
}

/// Sends a job's events, tagged with the job. A full channel drops the event (the status
/// still shows the state).
struct Reporter {
    job: Job,
    tx: mpsc::Sender<JobReport>,
}

impl Reporter {
    fn send(&self, event: JobEvent) {
        let _ = self.tx.try_send(JobReport {
            job: self.job,
            event,
        });
    }
}

/// The process a job runs now: its pid, and the token that makes the job kill it.
type Running = Arc<Mutex<Option<(u32, CancellationToken)>>>;

/// Reads a job's status (cheap to clone), and kills its process for fault injection.
#[derive(Debug, Clone)]
pub struct StatusWatch {
    /// The status the task publishes; the last one stays readable after the job ends.
    status: watch::Receiver<JobStatus>,
    /// Set by the task while a process runs; cleared when it has exited.
    running: Running,
}

impl StatusWatch {
    /// A snapshot of the status.
    pub fn get(&self) -> JobStatus {
        self.status.borrow().clone()
    }

    /// Fault injection: SIGKILLs the running FFmpeg's process group, as an outside kill would;
    /// the job sees a crash and restarts it after its backoff. Returns the killed pid, or
    /// `None` when no process runs (starting, or waiting out a backoff).
    pub fn kill(&self) -> Option<u32> {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let (pid, token) = running.as_ref()?;
        if token.is_cancelled() {
            // Already killed; the job has not reaped it yet.
            return None;
        }
        token.cancel();
        Some(*pid)
    }
}

/// A running job.
#[derive(Debug)]
pub struct JobHandle {
    /// Asks the task to stop.
    stop: CancellationToken,
    /// The task; it returns the rendition writers.
    task: JoinHandle<Vec<Writer>>,
    /// The job's status and its process, as the task publishes them.
    watch: StatusWatch,
}

impl JobHandle {
    /// Starts a job writing output *i* of FFmpeg to `writers[i]`. Events go to `events`,
    /// tagged with the job (bounded; an event that does not fit is dropped, the status still
    /// shows the state).
    pub fn start(
        config: JobConfig,
        hub: Hub,
        writers: Vec<Writer>,
        events: mpsc::Sender<JobReport>,
    ) -> Self {
        let stop = CancellationToken::new();
        let (status, receiver) = watch::channel(JobStatus {
            healthy: true,
            ..JobStatus::default()
        });
        let watch = StatusWatch {
            status: receiver,
            running: Running::default(),
        };
        let task = tokio::spawn(run(
            config,
            hub,
            writers,
            events,
            (status, Arc::clone(&watch.running)),
            stop.clone(),
        ));
        Self { stop, task, watch }
    }

    /// A snapshot of the status.
    pub fn status(&self) -> JobStatus {
        self.watch.get()
    }

    /// A reader of the status that outlives the handle's borrow.
    pub fn watch(&self) -> StatusWatch {
        self.watch.clone()
    }

    /// Stops the job (stdin closed, grace, group killed, reaped) and returns the writers.
    pub async fn stop(self) -> Vec<Writer> {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

async fn run(
    config: JobConfig,
    hub: Hub,
    mut writers: Vec<Writer>,
    events: mpsc::Sender<JobReport>,
    (status, running): (watch::Sender<JobStatus>, Running),
    stop: CancellationToken,
) -> Vec<Writer> {
    let set_running = |now: Option<(u32, CancellationToken)>| {
        *running.lock().unwrap_or_else(PoisonError::into_inner) = now;
    };
    let events = Reporter {
        job: config.job,
        tx: events,
    };
    let mut supervisor = Supervisor::new(now(), config.supervisor.clone());
    // Per output: the last DTS its rendition got, which a restarted process must not go
    // back before.
    let mut floors: Vec<Option<Ts90>> = vec![None; writers.len()];
    let mut first = true;
    loop {
        if !first {
            for writer in &mut writers {
                writer.start_session(SessionReason::Reconnect);
            }
        }
        first = false;
        // FFmpeg counts keyframe time from its first frame: learn that frame (the keyframe
        // the feeder starts at) before building the argv.
        let Ok(mut subscriber) =
            hub.subscribe(&config.source, SubscribeFrom::LastKeyframe, "transcoder")
        else {
            return writers;
        };
        let mut feeder = LiveWriter::new();
        let mut source_fps = None;
        while !feeder.started() {
            let delivery = tokio::select! {
                () = stop.cancelled() => return writers,
                delivery = subscriber.recv() => delivery,
            };
            match delivery {
                None => return writers,
                Some(Delivery::Frame(frame)) => {
                    // The source's rate sets each rung's GOP: from the track config, else
                    // from the SPS a keyframe carries (without it, the 25 fps fallback
                    // would make x264 add keyframes of its own between the forced ones).
                    let rate = frame.config.as_ref().and_then(|c| c.info.frame_rate);
                    let rate = rate.or_else(|| {
                        frame
                            .keyframe
                            .then(|| codec::sps_info(&frame).and_then(|i| i.frame_rate))
                            .flatten()
                    });
                    if let Some(rate) = rate {
                        source_fps = Some(rate.as_f64());
                    }
                    feeder.push(frame);
                }
                Some(Delivery::Lagged { dropped }) => feeder.lagged(dropped),
            }
        }
        let ctx = Context {
            source_fps,
            segment_sec: config.segment_sec,
            first_pts: feeder.first_video_pts(),
            overlay: config
                .overlay
                .as_ref()
                .map(|(overlay, file)| OverlayInput { overlay, file }),
        };
        let args = argv(&config.ladder, config.job, &ctx);
        let first_dts = feeder.first_dts().unwrap_or_default();
        let spawned = prepare_workdir(&config.workdir)
            .and_then(|()| Ffmpeg::spawn(&config.launcher, &args, writers.len(), &config.workdir));
        let crash = match spawned {
            Err(e) => e.to_string(),
            Ok((mut process, pipes)) => {
                let pid = process.pid();
                status.send_modify(|s| s.pid = Some(pid));
                let kill = CancellationToken::new();
                set_running(Some((pid, kill.clone())));
                events.send(JobEvent::Started { pid });
                let feeder = tokio::spawn(feed(subscriber, feeder, pipes.stdin, status.clone()));
                let readers: Vec<JoinHandle<(Writer, Option<Ts90>)>> = pipes
                    .outputs
                    .into_iter()
                    .zip(writers.drain(..).zip(floors.drain(..)))
                    .map(|(output, (writer, floor))| {
                        let restamp = Restamp::new(first_dts, floor);
                        tokio::spawn(read_output(output, writer, restamp))
                    })
                    .collect();
                let outcome = watch(
                    &mut process,
                    pipes.progress,
                    pipes.stderr,
                    &mut supervisor,
                    &status,
                    &events,
                    (&stop, &kill),
                )
                .await;
                set_running(None);
                feeder.abort();
                let _ = feeder.await;
                let crash = match outcome {
                    Outcome::Stopped => {
                        let _ = process.stop(config.grace).await;
                        None
                    }
                    Outcome::Exited(error) => Some(error),
                };
                for reader in readers {
                    if let Ok((writer, floor)) = reader.await {
                        writers.push(writer);
                        floors.push(floor);
                    }
                }
                status.send_modify(|s| {
                    s.pid = None;
                    s.progress = None;
                    s.usage = None;
                });
                match crash {
                    None => return writers,
                    Some(error) => error,
                }
            }
        };
        tracing::warn!(source = %config.source, "FFmpeg exited: {crash}");
        status.send_modify(|s| {
            s.errors.insert(0, (SystemTime::now(), crash.clone()));
            s.errors.truncate(MAX_ERRORS);
        });
        supervisor.exited(now(), crash);
        drain(&mut supervisor, &status, &events);
        // Wait out the backoff (until the machine says restart).
        while let Some(deadline) = supervisor.poll_timeout() {
            tokio::select! {
                () = stop.cancelled() => return writers,
                () = tokio::time::sleep_until(deadline.into()) => {}
            }
            supervisor.handle_timeout(now());
            if drain(&mut supervisor, &status, &events) {
                break;
            }
        }
        supervisor.started(now());
    }
}

/// How a process's watch ended.
enum Outcome {
    /// The job was stopped.
    Stopped,
    /// The process exited by itself: the exit and the stderr tail.
    Exited(String),
}

/// Watches one process: progress, stderr, timers and `/proc`, until it exits or the job stops.
async fn watch(
    process: &mut Ffmpeg,
    mut progress: ChildStdout,
    mut stderr: ChildStderr,
    supervisor: &mut Supervisor,
    status: &watch::Sender<JobStatus>,
    events: &Reporter,
    (stop, kill): (&CancellationToken, &CancellationToken),
) -> Outcome {
    let mut parser = ProgressParser::new();
    let mut tail = StderrTail::new();
    let (mut progress_buf, mut stderr_buf) = ([0u8; 4096], [0u8; 4096]);
    let (mut progress_open, mut stderr_open) = (true, true);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut killed = false;
    loop {
        let deadline = supervisor.poll_timeout();
        tokio::select! {
            () = stop.cancelled() => return Outcome::Stopped,
            () = kill.cancelled(), if !killed => {
                // Fault injection: killed as from outside; the exit below is a crash.
                killed = true;
                tracing::warn!(pid = process.pid(), "FFmpeg killed by fault injection (POST /debug/fault)");
                process.kill_group();
            }
            exit = process.wait() => {
                tail.finish();
                let exit = match exit {
                    Ok(status) => status.to_string(),
                    Err(e) => format!("wait failed: {e}"),
                };
                let text = tail.tail();
                return Outcome::Exited(if text.is_empty() { exit } else { format!("{exit} | {text}") });
            }
            read = progress.read(&mut progress_buf), if progress_open => match read {
                Ok(0) | Err(_) => progress_open = false,
                Ok(n) => {
                    parser.push(&progress_buf[..n]);
                    while let Some(report) = parser.pull() {
                        if let Some(speed) = report.speed {
                            supervisor.progress(now(), speed);
                        }
                        status.send_modify(|s| s.progress = Some(report));
                    }
                }
            },
            read = stderr.read(&mut stderr_buf), if stderr_open => match read {
                Ok(0) | Err(_) => stderr_open = false,
                Ok(n) => {
                    tail.push(&stderr_buf[..n]);
                    while let Some(line) = tail.pull() {
                        if line.noise {
                            tracing::debug!(pid = process.pid(), "ffmpeg: {}", line.text);
                        } else {
                            tracing::warn!(pid = process.pid(), "ffmpeg: {}", line.text);
                        }
                    }
                }
            },
            () = sleep_until(deadline) => supervisor.handle_timeout(now()),
            _ = tick.tick() => {
                let usage = usage::read(process.pid());
                status.send_modify(|s| s.usage = usage);
            }
        }
        drain(supervisor, status, events);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Applies the supervisor's events to the status and forwards them; returns whether a
/// restart is due.
fn drain(
    supervisor: &mut Supervisor,
    status: &watch::Sender<JobStatus>,
    events: &Reporter,
) -> bool {
    let mut restart = false;
    while let Some(event) = supervisor.poll_event() {
        restart |= event == Event::Restart;
        events.send(JobEvent::Supervision(event));
    }
    status.send_modify(|s| {
        s.restart_count = supervisor.restart_count();
        s.healthy = supervisor.is_healthy();
        s.slow = supervisor.is_slow();
    });
    restart
}

/// The feeder: the raw buffer as MPEG-TS into FFmpeg's stdin. It never slows the hub: while a
/// write waits for FFmpeg, the subscriber falls behind and loses its own frames (resuming at a
/// keyframe, counted); the feeder then skips to the next video keyframe.
async fn feed(
    mut subscriber: Subscriber,
    mut feeder: LiveWriter,
    mut stdin: ChildStdin,
    status: watch::Sender<JobStatus>,
) {
    let base = status.borrow().fed_dropped;
    let mut counted = 0;
    loop {
        while let Some(run) = feeder.pull() {
            if stdin.write_all(&run).await.is_err() {
                return;
            }
        }
        match subscriber.recv().await {
            None => return,
            Some(Delivery::Frame(frame)) => feeder.push(frame),
            Some(Delivery::Lagged { dropped }) => feeder.lagged(dropped),
        }
        if feeder.skipped() != counted {
            counted = feeder.skipped();
            status.send_modify(|s| s.fed_dropped = base + counted);
        }
    }
}

/// One output: FFmpeg's MPEG-TS → frames on the raw buffer's timeline → the rendition
/// buffer. Returns the writer and the last DTS written at the end of the output (the process
/// exited).
async fn read_output(
    mut output: pipe::Receiver,
    mut writer: Writer,
    mut restamp: Restamp,
) -> (Writer, Option<Ts90>) {
    let mut demuxer = Demuxer::new(DemuxerConfig::default());
    let mut buf = vec![0u8; 64 * 1024];
    // Cleared when the rendition buffer is gone: the pipe is still drained to its end, so
    // FFmpeg never blocks on an output nobody reads (in `multi` mode that would stall every
    // rung).
    let mut writing = true;
    loop {
        let n = match output.read(&mut buf).await {
            Ok(0) | Err(_) => {
                demuxer.flush();
                0
            }
            Ok(n) => {
                if writing {
                    demuxer.push(&buf[..n], now());
                }
                n
            }
        };
        while let Some(event) = demuxer.pull() {
            if let Ok(DemuxEvent::Frame(frame)) = event
                && writing
                && let Some(frame) = restamp.apply(frame)
                && writer.write(frame).is_err()
            {
                tracing::debug!(buffer = %writer.id(), "rendition buffer gone; output drained");
                writing = false;
            }
        }
        if n == 0 {
            if restamp.dropped() > 0 {
                tracing::debug!(
                    buffer = %writer.id(),
                    dropped = restamp.dropped(),
                    "frames older than the rendition's last dropped after a restart"
                );
            }
            return (writer, restamp.last());
        }
    }
}
