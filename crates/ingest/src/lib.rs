//! Pull and listen ingest workers: UDP, HTTP-TS, HLS, files, RTMP(S), RTSP and SRT pull, and the
//! in-process `copy://` and `mixer://` inputs that read other streams from the hub (L2, SPEC
//! §Ingest, §ABR copy, §Mixer).
//!
//! # Model
//!
//! One [`Worker`] per configured input. [`spawn`] takes the input as the edge parsed it
//! ([`ParsedInput`]: classified by the one classifier, `tributary_domain::protocol::detect`,
//! every option of its kind already checked, so a bad option was a 422 at save, never a
//! surprise here) and starts one tokio task that owns the source: a socket, an HTTP response, a file or an `ffmpeg` child. The task turns bytes into
//! [`Frame`](tributary_media::Frame)s with the sans-IO MPEG-TS demuxer and writes them to the
//! input's hub [`Port`]. It never decides failover: it reports health (through the port's
//! counters and [`Port::report_error`]) and the stream manager chooses (STYLE.md §3).
//!
//! Every worker shares the same rules:
//!
//! - **Connect loop.** Opening is retried forever, 1 s apart doubling to 10 s, the delay reset
//!   once a connection delivers a frame. Every failure is reported on the port and logged, the
//!   non-retriable ones (HTTP 401/403/404/410, DNS "no such host", TLS) included: they are only
//!   worth reporting at once, since the manager may fail over on them. Each reopen after a
//!   connection that had opened calls [`Port::restart`] with
//!   [`SessionReason::Reconnect`](tributary_hub::SessionReason::Reconnect). A peer that ends
//!   the stream (EOF) is an error report, never a silent exit.
//! - **Parameter sets.** Every video keyframe written starts with its SPS/PPS (VPS/SPS/PPS for
//!   H.265), inserted from earlier frames when the keyframe lacks them; a keyframe with none
//!   known is dropped and counted. New parameter-set values or a new AAC configuration start a
//!   new session (`config_change`). AAC frames carry their AudioSpecificConfig in
//!   `frame.config` (the demuxer puts it there).
//! - **Robustness.** A demux error resynchronises and is counted; after 8 in a row without a
//!   good frame the source is reopened (UDP, which has no connection, resets its demuxer).
//!   Continuity errors are counted ([`WorkerStats::cc_errors`]). An input that wrote nothing
//!   for 15 s gets a new session (`stall_recovery`) when data resumes.
//! - **Pacing.** HLS and files are written in real time by DTS (a file would otherwise be read
//!   in a blink, and an HLS pull arrives a segment at a time). Their frames carry the instant
//!   they are released as `arrival`: the bytes' own arrival is meaningless for data that is
//!   deliberately held back, and the timeline normaliser compares DTS with arrival. Live
//!   sources (UDP, HTTP-TS) are written as they arrive, stamped with the instant the bytes
//!   arrived.
//! - **Bounds.** Every queue has a bound: the demuxer's event queue holds what one read produced,
//!   HLS prefetch holds at most [`IngestConfig::hls_prefetch`] segments and 64 MiB, plus the
//!   one segment (at most 64 MiB) downloading.
//!   No lock is held across `.await`; hub writes never await.
//!
//! Stopping: [`Worker::stop`] or dropping the worker cancels the task; the socket closes and
//! an `ffmpeg` child is killed.
//!
//! Logs are `tracing` events inside a span `ingest` with the fields `stream`, `priority`,
//! `kind` and `url` (secrets masked with `tributary_domain::redact::mask_url`).
//!
//! # Example
//!
//! ```no_run
//! use tributary_domain::Input;
//! use tributary_domain::protocol::DetectContext;
//! use tributary_domain::spec::ParsedInput;
//! use tributary_hub::{BufferId, Hub, Intake, PortKey, SessionReason, SubscribeFrom};
//! use tributary_ingest::{IngestContext, spawn};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = Hub::new();
//! let id = BufferId::Stream("cam7".parse()?);
//! let intake = Intake::new(hub.create(id.clone(), 1024)?);
//! let port = intake.add_port(PortKey(0), true)?;
//! intake.select(PortKey(0), SessionReason::Fresh)?;
//!
//! let input = ParsedInput::parse(&Input::new("udp://0.0.0.0:5000", 0), DetectContext::default())?;
//! let ctx = IngestContext { code: "cam7".parse()?, priority: 0 };
//! let worker = spawn(ctx, &input, port)?;
//!
//! let mut player = hub.subscribe(&id, SubscribeFrom::LastKeyframe, "demo")?;
//! let first = player.recv().await;
//! println!("{first:?}, cc errors so far: {}", worker.stats().cc_errors);
//! worker.stop();
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

mod backoff;
mod error;
mod file;
mod hls;
mod http;
mod pace;
mod relay;
mod reorder;
mod rtmp;
mod rtsp;
mod sink;
mod srt;
mod supervise;
mod udp;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tributary_domain::protocol::InputKind;
use tributary_domain::redact::mask_url;
use tributary_domain::roots::LiveRoots;
use tributary_domain::spec::{ParsedInput, Source};
use tributary_hub::{Hub, Port};
use tributary_media::{StreamCode, TrackId};
use tributary_net::SsrfGuard;

pub use error::IngestError;

use crate::sink::{Label, Reporter, Stats};
use crate::supervise::{Job, supervise};

/// Who a worker works for, for its log lines and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestContext {
    /// The stream the input belongs to.
    pub code: StreamCode,
    /// The input's priority (its index in the stream's `inputs`).
    pub priority: u32,
}

/// Process-wide ingest settings the engine maps from the server configuration (ARCHITECTURE.md
/// §10: a component receives only its own section).
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// The FFmpeg binary that remuxes non-TS files (`transcoder.ffmpeg_path`). Default
    /// `ffmpeg`, looked up on `PATH`, as the transcoder does.
    pub ffmpeg_path: PathBuf,
    /// HLS segments downloaded ahead of the one being played (`ingestor.hls_max_segment_buffer`).
    /// Default 8: enough to ride out a slow origin for several segment durations while bounding
    /// memory: whatever the count, the segments queued hold at most 64 MiB. At least 1.
    pub hls_prefetch: usize,
    /// Which addresses pulls may dial (`security.ssrf_guard`, `security.allow_cidrs`).
    /// Default: SPEC's `metadata` mode, nothing exempt.
    pub ssrf_guard: SsrfGuard,
    /// The server's one roots handle: file inputs may read from its `file_input` directories
    /// (`security.file_input_roots`; empty: anywhere), read when a worker is spawned, so a
    /// configuration change reaches the next spawn without cutting a running file. A file is
    /// opened only if its directory, resolved (symlinks included), lies inside one of them,
    /// and never through a symlink of its own. Default: a handle of its own with no roots.
    pub roots: LiveRoots,
    /// The process's hub, which in-process inputs (`copy://`, `mixer://`) read other streams'
    /// playback feeds from. `None` (the default): such inputs are refused at spawn.
    pub hub: Option<LocalHub>,
}

/// The process's hub as ingest settings carry it.
#[derive(Clone)]
pub struct LocalHub(pub Hub);

impl std::fmt::Debug for LocalHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalHub")
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            ffmpeg_path: PathBuf::from("ffmpeg"),
            hls_prefetch: 8,
            ssrf_guard: SsrfGuard::default(),
            roots: LiveRoots::default(),
            hub: None,
        }
    }
}

/// A running ingest worker for one input. Dropping it stops the worker, as [`stop`](Self::stop)
/// does.
#[derive(Debug)]
pub struct Worker {
    /// The kind of input, as classified at spawn.
    kind: InputKind,
    /// Cancels the worker's task (and through it the socket, response or child process).
    cancel: CancellationToken,
    /// Counters the task updates and [`stats`](Self::stats) reads; atomics and short locks,
    /// no queue.
    stats: Arc<Stats>,
    /// Asks the supervisor to drop the open connection ([`drop_connection`](Self::drop_connection)).
    fault: Arc<tokio::sync::Notify>,
}

/// Something that happened to a worker's source, for the stream manager (SPEC §Ingest: open
/// failures and a session ended by the peer are reported, never silent). Taken with
/// [`Worker::take_events`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerEvent {
    /// The source opened (connected, playing, bound).
    Opened,
    /// An attempt to open the source failed; the worker retries after its backoff.
    OpenFailed(String),
    /// An open source ended: EOF, a read error or timeout, too many demux errors. The worker
    /// reopens after its backoff.
    Lost(String),
    /// The source ended for good (`#EXT-X-ENDLIST` played out, a file without `loop`): the
    /// worker does nothing more.
    Finished(String),
}

/// A snapshot of a worker's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerStats {
    /// The elementary streams of the selected program, carried or not, as the demuxer last
    /// reported them (empty before the first PMT).
    pub tracks: Vec<tributary_mpegts::TrackInfo>,
    /// What the bitstream says about each carried track once known (size, frame rate, sample
    /// rate, codec string): from the SPS for video, the AudioSpecificConfig for AAC.
    pub details: Vec<(TrackId, tributary_media::TrackInfo)>,
    /// TS continuity-counter errors since the worker started (lost or reordered packets).
    pub cc_errors: u64,
    /// Demux errors (lost sync, bad CRC, malformed PES) since the worker started.
    pub demux_errors: u64,
    /// Video keyframes dropped because no parameter sets were known for them.
    pub dropped_keyframes: u64,
    /// Reopens after a connection had opened (each began a new session).
    pub reconnects: u64,
    /// New timelines the source began on an open connection (new parameter sets, a stall
    /// recovered, a mixer's audio stream gone or back): the stream manager judges tracks
    /// "present in this session" afresh after each, as after a reconnect.
    pub restarts: u64,
    /// Whether the source is open now (for UDP: the socket is bound).
    pub connected: bool,
    /// Whether the input ended for good (`#EXT-X-ENDLIST` played out, or a file without
    /// `loop`); the worker does nothing more.
    pub finished: bool,
}

impl Worker {
    /// Stops the worker: its task ends at its next poll, closing its source.
    pub fn stop(self) {
        self.cancel.cancel();
    }

    /// Fault injection (`POST /debug/fault`): drops the open connection as a network failure
    /// would. The running task is aborted (its socket, response or child closed), the loss is
    /// reported on the port and as [`WorkerEvent::Lost`], and the worker reconnects after its
    /// backoff. Returns `false`, doing nothing, when no connection is open.
    pub fn drop_connection(&self) -> bool {
        if !self.stats.connected.load(Ordering::Relaxed) {
            return false;
        }
        self.fault.notify_waiters();
        true
    }

    /// The kind of input this worker ingests.
    pub fn kind(&self) -> InputKind {
        self.kind
    }

    /// The source events since the last call, oldest first. The worker keeps at most 32; if
    /// more happened, the oldest were dropped.
    pub fn take_events(&self) -> Vec<WorkerEvent> {
        sink::lock(&self.stats.events).drain(..).collect()
    }

    /// Wakes `wake` after every source event from now on, so the manager reacts without
    /// waiting for its next tick.
    pub fn wake_on_event(&self, wake: Arc<tokio::sync::Notify>) {
        *sink::lock(&self.stats.wake) = Some(wake);
    }

    /// A snapshot of the worker's counters.
    pub fn stats(&self) -> WorkerStats {
        let s = &self.stats;
        WorkerStats {
            tracks: sink::lock(&s.tracks).clone(),
            details: sink::lock(&s.details).clone(),
            cc_errors: s.cc_errors.load(Ordering::Relaxed),
            demux_errors: s.demux_errors.load(Ordering::Relaxed),
            dropped_keyframes: s.dropped_keyframes.load(Ordering::Relaxed),
            reconnects: s.reconnects.load(Ordering::Relaxed),
            restarts: s.restarts.load(Ordering::Relaxed),
            connected: s.connected.load(Ordering::Relaxed),
            finished: s.finished.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The kinds of input this build can ingest.
pub fn supported() -> &'static [InputKind] {
    &[
        InputKind::Udp,
        InputKind::HttpTs,
        InputKind::Hls,
        InputKind::File,
        InputKind::Rtmp,
        InputKind::Rtsp,
        InputKind::Srt,
        InputKind::Copy,
        InputKind::Mixer,
    ]
}

/// Starts the worker for one parsed input, with the default [`IngestConfig`]; it writes into
/// `port` until stopped. Call within a tokio runtime.
pub fn spawn(ctx: IngestContext, input: &ParsedInput, port: Port) -> Result<Worker, IngestError> {
    spawn_with(ctx, input, port, &IngestConfig::default())
}

/// Starts the worker for one parsed input with explicit settings (see [`spawn`]).
///
/// The input was classified and its options parsed at the edge (`tributary_domain::spec`), so
/// this fails only when the kind has no worker here, or no tokio runtime is running; it then
/// starts nothing.
pub fn spawn_with(
    ctx: IngestContext,
    input: &ParsedInput,
    port: Port,
    config: &IngestConfig,
) -> Result<Worker, IngestError> {
    let kind = input.kind();
    let label = Arc::new(Label {
        code: ctx.code.clone(),
        priority: ctx.priority,
        url: mask_url(&input.input.url),
        kind,
    });
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| IngestError::NoRuntime {
        code: ctx.code.clone(),
        priority: ctx.priority,
        url: label.url.clone(),
    })?;
    let stats = Arc::new(Stats::default());
    let reporter = Reporter::new(Arc::clone(&label), port, Arc::clone(&stats));
    let program = input.program;

    let job: Job = match &input.source {
        Source::Udp(udp) => {
            let udp = udp.clone();
            Box::new(move |reporter| Box::pin(udp::run(udp.clone(), program, reporter)))
        }
        Source::HttpTs(http) => {
            let client =
                http::HttpClient::new(http, http::HTTP_TS_TIMEOUT, &label, &config.ssrf_guard)?;
            let url = http.url.clone();
            Box::new(move |reporter| {
                Box::pin(http::run_ts(url.clone(), client.clone(), program, reporter))
            })
        }
        Source::Hls(http) => {
            let client =
                http::HttpClient::new(http, hls::PLAYLIST_TIMEOUT, &label, &config.ssrf_guard)?;
            let url = http.url.clone();
            let prefetch = config.hls_prefetch.max(1);
            Box::new(move |reporter| {
                Box::pin(hls::run(
                    url.clone(),
                    client.clone(),
                    prefetch,
                    program,
                    reporter,
                ))
            })
        }
        Source::Rtmp(source) => {
            let options = rtmp::RtmpOptions::new(source, &label, &config.ssrf_guard)?;
            Box::new(move |reporter| Box::pin(rtmp::run(options.clone(), reporter)))
        }
        Source::Rtsp(source) => {
            let options = rtsp::RtspOptions::new(source, &config.ssrf_guard);
            Box::new(move |reporter| Box::pin(rtsp::run(options.clone(), reporter)))
        }
        Source::Srt(source) => {
            let options = srt::SrtOptions::new(source, &config.ssrf_guard);
            Box::new(move |reporter| Box::pin(srt::run(options.clone(), program, reporter)))
        }
        Source::File(file) => {
            let options = file::FileOptions::new(file.clone(), config);
            Box::new(move |reporter| Box::pin(file::run(options.clone(), program, reporter)))
        }
        Source::Copy { upstream } => {
            let hub = in_process(config, &ctx, &label)?;
            let upstream = upstream.clone();
            Box::new(move |reporter| {
                Box::pin(relay::run_copy(hub.clone(), upstream.clone(), reporter))
            })
        }
        Source::Mixer(mixer) => {
            let hub = in_process(config, &ctx, &label)?;
            let mixer = mixer.clone();
            Box::new(move |reporter| {
                Box::pin(relay::run_mixer(hub.clone(), mixer.clone(), reporter))
            })
        }
        _ => {
            return Err(IngestError::Unsupported {
                code: ctx.code,
                priority: ctx.priority,
                kind,
            });
        }
    };

    let cancel = CancellationToken::new();
    let span = tracing::info_span!("ingest", stream = %label.code, priority = label.priority,
        kind = %label.kind, url = %label.url);
    let fault = Arc::new(tokio::sync::Notify::new());
    runtime.spawn(supervise(job, reporter, cancel.clone(), Arc::clone(&fault)).instrument(span));
    Ok(Worker {
        kind,
        cancel,
        stats,
        fault,
    })
}

/// The hub an in-process input reads from, or why there is none.
fn in_process(
    config: &IngestConfig,
    ctx: &IngestContext,
    label: &Label,
) -> Result<Hub, IngestError> {
    config
        .hub
        .as_ref()
        .map(|h| h.0.clone())
        .ok_or_else(|| IngestError::NoHub {
            code: ctx.code.clone(),
            priority: ctx.priority,
            kind: label.kind,
        })
}
