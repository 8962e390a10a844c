//! The RTMP(S) pull worker (SPEC §Ingest "rtmp pull"): a `play` client session over TCP or
//! TLS, its frames written to the input's port as they arrive.
//!
//! One connection at a time: `tributary_net` dials it (TLS for `rtmps://`, SNI = the host,
//! certificates checked against the system's roots unless `net.insecure_tls`; the SSRF guard)
//! and its driver runs the sans-IO [`ClientSession`]; this module is the driver's handler.
//! Connecting, the handshake and `NetStream.Play.Start` share one budget, `net.timeout_sec`
//! (default 10 s); the same budget bounds silence afterwards (a silent server is a dead one)
//! and a server that reads nothing of what we send.
//!
//! Frames come out of the session ready for the hub: Annex-B with parameter sets before every
//! keyframe, PTS = DTS + composition time, AAC with its AudioSpecificConfig in
//! `frame.config`, stamped with the instant of the read that completed them. A new video or
//! audio configuration starts a new session (`config_change`), as for TS sources.
//!
//! Every way a connection ends (refusal, timeout, read error, EOF, `NetStream.Play.Stop` or
//! `UnpublishNotify`) is reported on the port and followed by the shared backoff; each
//! connection that reaches `Play.Start` after an earlier one begins a new session
//! (`reconnect`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tributary_domain::spec::RtmpSource;
use tributary_hub::SessionReason;
use tributary_media::{Frame, TrackConfig, TrackId};
use tributary_net::{Cx, Dial, End, Handler, Settings, SsrfGuard, Target, Tls};
use tributary_rtmp::{
    AUDIO_TRACK, ClientConfig, ClientEvent, ClientIntent, ClientSession, FlvError, VIDEO_TRACK,
};

use crate::IngestError;
use crate::backoff::Backoff;
use crate::sink::{Label, Reporter, lock};

/// What an RTMP pull needs, parsed once at spawn.
#[derive(Debug, Clone)]
pub(crate) struct RtmpOptions {
    /// Host and port.
    target: Target,
    /// TLS, the connect budget and the SSRF guard.
    dial: Dial,
    /// The play session's settings (application, stream name, `tcUrl`).
    session: ClientConfig,
    /// Connect + handshake + play budget, and the longest silence a read may meet
    /// (`net.timeout_sec`, 0 = 10 s).
    timeout: Duration,
}

impl RtmpOptions {
    /// The pull the spec parsed: where to dial, with which budget, and the play session
    /// (application, stream name and `tcUrl`, as the RTMP client cuts them from the URL),
    /// dialed only where `guard` allows.
    pub(crate) fn new(
        source: &RtmpSource,
        label: &Label,
        guard: &SsrfGuard,
    ) -> Result<Self, IngestError> {
        let session =
            ClientConfig::from_url(&source.target.url, ClientIntent::Play).ok_or_else(|| {
                label.invalid("url", "expected rtmp[s]://host[:port]/<app>/<stream name>")
            })?;
        let timeout = source.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let tls = match (source.target.tls, source.insecure_tls) {
            (false, _) => Tls::Off,
            (true, false) => Tls::Verify,
            (true, true) => Tls::DangerAcceptAnyCertificate,
        };
        Ok(Self {
            target: Target::new(source.target.host.clone(), source.target.port),
            dial: Dial {
                tls,
                timeout,
                guard: guard.clone(),
            },
            session,
            timeout,
        })
    }
}

/// Runs the worker: connect, play, write frames; on any end, report, back off and reconnect,
/// forever.
pub(crate) async fn run(options: RtmpOptions, reporter: Reporter) {
    let mut pull = Pull {
        reporter,
        had_frames: false,
        video: None,
        audio: None,
    };
    let mut backoff = Backoff::new();
    loop {
        pull.had_frames = false;
        let ended = pull.connection(&options).await;
        if pull.had_frames {
            backoff.reset();
        }
        pull.reporter.ended(ended);
        backoff.wait().await;
    }
}

/// The worker's state across connections, and the driver's handler for each.
struct Pull {
    reporter: Reporter,
    /// Whether the current connection delivered a frame (the backoff then starts afresh).
    had_frames: bool,
    /// The last video configuration written, to notice a change.
    video: Option<Arc<TrackConfig>>,
    /// The last audio configuration written, to notice a change.
    audio: Option<Arc<TrackConfig>>,
}

/// Why the pull ends a connection by itself.
#[derive(Debug, thiserror::Error)]
enum Reason {
    #[error("the server ended the stream ({0})")]
    StreamEnded(String),
}

impl Pull {
    /// One connection from dial to its end; returns why it ended, for the report.
    async fn connection(&mut self, options: &RtmpOptions) -> String {
        let began = tributary_net::clock();
        let (io, peer) = match tributary_net::connect(&options.target, &options.dial).await {
            Ok(opened) => opened,
            Err(e) if e.is_fatal() => return format!("cannot connect: {e} (not retriable)"),
            Err(e) => return format!("cannot connect: {e}"),
        };
        tracing::debug!(%peer, "connected; RTMP handshake");
        let start = tributary_net::clock();
        let mut config = options.session.clone();
        // What is left of the budget after connecting (at least a second).
        config.timeout = options
            .timeout
            .saturating_sub(start.saturating_duration_since(began))
            .max(Duration::from_secs(1));
        let mut session = ClientSession::new(config, tributary_net::handshake_random(), start);
        let settings = Settings {
            read_size: READ_SIZE,
            read_idle: Some(options.timeout),
            write_stall: Some(options.timeout),
            ..Settings::default()
        };
        // The worker's task is dropped to stop it: no stop signal of its own.
        let stop = CancellationToken::new();
        match tributary_net::run(io, &mut session, self, settings, &stop).await {
            End::Handler(reason) => reason.to_string(),
            End::Session(e) => format!("RTMP session with {peer} failed: {e}"),
            End::PeerClosed => format!("connection closed by the peer {peer} (EOF)"),
            End::Io(e) => format!("socket error with {peer}: {e}"),
            End::ReadIdle(after) => format!("no data from {peer} for {after:?} (read timeout)"),
            End::WriteStalled(after) => {
                format!("{peer} read nothing for {after:?} (write timeout)")
            }
            end @ (End::Backlog(_) | End::Stopped | End::InputBudget(_)) => {
                format!("{peer}: {end}")
            }
        }
    }

    /// Writes one frame: a new session first if its track's configuration changed.
    fn write(&mut self, frame: Frame) {
        self.had_frames = true;
        let slot = match frame.track {
            VIDEO_TRACK => Some(&mut self.video),
            AUDIO_TRACK => Some(&mut self.audio),
            _ => None,
        };
        if let (Some(slot), Some(config)) = (slot, &frame.config) {
            let known = slot
                .as_ref()
                .is_some_and(|k| Arc::ptr_eq(k, config) || **k == **config);
            if !known {
                if slot.is_some() {
                    self.reporter.restart(SessionReason::ConfigChange);
                }
                *slot = Some(Arc::clone(config));
                set_detail(&self.reporter, frame.track, config);
            }
        }
        if let Err(e) = self.reporter.port.write(frame) {
            tracing::debug!("port refused a frame: {e}");
        }
    }

    /// Counts a media message the session could not map.
    fn dropped(&self, offset: u64, error: &FlvError) {
        let stats = &self.reporter.stats;
        let counter = match error {
            FlvError::KeyframeWithoutParameterSets { .. } => &stats.dropped_keyframes,
            _ => &stats.demux_errors,
        };
        let n = counter.fetch_add(1, Ordering::Relaxed);
        if n.is_multiple_of(100) {
            tracing::warn!(count = n + 1, offset, "media message dropped: {error}");
        }
    }
}

impl Handler<ClientSession> for Pull {
    type Item = ();
    type Reason = Reason;

    fn event(
        &mut self,
        _cx: &mut Cx<'_, ClientSession, Reason>,
        event: ClientEvent,
    ) -> Result<(), Reason> {
        match event {
            ClientEvent::Connected { handshake } => {
                tracing::debug!(?handshake, "RTMP connect accepted");
            }
            ClientEvent::PlayStarted => {
                tracing::info!("playing");
                self.reporter.opened();
            }
            ClientEvent::Media(frame) => self.write(frame),
            ClientEvent::MediaDropped { offset, error } => self.dropped(offset, &error),
            ClientEvent::StreamEnded { code } => return Err(Reason::StreamEnded(code)),
            ClientEvent::Metadata(metadata) => tracing::debug!(?metadata, "onMetaData"),
            other => tracing::debug!(?other, "RTMP event"),
        }
        Ok(())
    }
}

/// Records what a track's configuration says, for [`WorkerStats::details`](crate::WorkerStats).
fn set_detail(reporter: &Reporter, track: TrackId, config: &TrackConfig) {
    let mut details = lock(&reporter.stats.details);
    match details.iter_mut().find(|(t, _)| *t == track) {
        Some((_, known)) => *known = config.info.clone(),
        None => details.push((track, config.info.clone())),
    }
}

/// Connect + handshake + play budget when `net.timeout_sec` is 0 (SPEC §Defaults "RTMP pull").
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes read from the socket at a time.
const READ_SIZE: usize = 64 * 1024;
