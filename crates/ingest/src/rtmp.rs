//! The RTMP(S) pull worker (SPEC §Ingest "rtmp pull"): a `play` client session over TCP or
//! TLS, its frames written to the input's port as they arrive.
//!
//! One connection at a time: [`dial`](crate::dial) opens it (TLS for `rtmps://`, SNI = the
//! host, certificates checked unless `net.insecure_tls`), then the sans-IO
//! [`ClientSession`] is driven as its type doc says: every read goes to `handle_input` with
//! the instant it arrived, outputs are drained after every call (transmits written in order,
//! events acted on), and the one timer comes from `poll_timeout`. Connecting, the handshake and
//! `NetStream.Play.Start` share one budget, `net.timeout_sec` (default 10 s); the same budget
//! bounds each read afterwards (a silent server is a dead one).
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

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tributary_domain::Input;
use tributary_hub::SessionReason;
use tributary_media::{Frame, TrackConfig, TrackId};
use tributary_rtmp::{
    AUDIO_TRACK, ClientConfig, ClientEvent, ClientIntent, ClientSession, FlvError, Output,
    VIDEO_TRACK,
};

use crate::IngestError;
use crate::backoff::Backoff;
use crate::dial::{self, Io, Target};
use crate::sink::{Label, Reporter, lock, now};

/// What an RTMP pull needs, parsed once at spawn.
#[derive(Debug, Clone)]
pub(crate) struct RtmpOptions {
    /// Host, port and whether TLS is used.
    target: Target,
    /// The play session's settings (application, stream name, `tcUrl`).
    session: ClientConfig,
    /// Connect + handshake + play budget, and the longest silence a read may meet
    /// (`net.timeout_sec`, 0 = 10 s).
    timeout: Duration,
    /// TLS settings for `rtmps://`, built once.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl RtmpOptions {
    /// Parses the input: `rtmp[s]://host[:port]/<app>/<stream name>[?query]`.
    pub(crate) fn parse(input: &Input, label: &Label) -> Result<Self, IngestError> {
        let url = input.url.trim();
        let target =
            Target::parse(url).ok_or_else(|| label.invalid("url", "no usable host and port"))?;
        let session = ClientConfig::from_url(url, ClientIntent::Play).ok_or_else(|| {
            label.invalid("url", "expected rtmp[s]://host[:port]/<app>/<stream name>")
        })?;
        let timeout = match input.net.timeout_sec {
            0 => DEFAULT_TIMEOUT,
            secs => Duration::from_secs(u64::from(secs)),
        };
        let tls = target.tls.then(|| dial::tls_config(input.net.insecure_tls));
        Ok(Self {
            target,
            session,
            timeout,
            tls,
        })
    }
}

/// Runs the worker: connect, play, write frames; on any end, report, back off and reconnect,
/// forever.
pub(crate) async fn run(options: RtmpOptions, reporter: Reporter) {
    let mut pull = Pull {
        options,
        reporter,
        had_frames: false,
        video: None,
        audio: None,
    };
    let mut backoff = Backoff::new();
    loop {
        pull.had_frames = false;
        let ended = pull.connection().await;
        let was_open = pull.reporter.stats.connected.load(Ordering::Relaxed);
        if pull.had_frames {
            backoff.reset();
        }
        if was_open {
            pull.reporter.lost(ended);
        } else {
            pull.reporter.open_failed(ended);
        }
        backoff.wait().await;
    }
}

/// The worker's state across connections.
struct Pull {
    options: RtmpOptions,
    reporter: Reporter,
    /// Whether the current connection delivered a frame (the backoff then starts afresh).
    had_frames: bool,
    /// The last video configuration written, to notice a change.
    video: Option<Arc<TrackConfig>>,
    /// The last audio configuration written, to notice a change.
    audio: Option<Arc<TrackConfig>>,
}

impl Pull {
    /// One connection from dial to its end; returns why it ended, for the report.
    async fn connection(&mut self) -> String {
        let budget = self.options.timeout;
        let began = now();
        let target = &self.options.target;
        let opened =
            tokio::time::timeout(budget, dial::connect(target, self.options.tls.as_ref())).await;
        let (mut io, peer) = match opened {
            Err(_) => return format!("cannot connect to {target}: no answer within {budget:?}"),
            Ok(Err(e)) => return format!("cannot connect: {e}"),
            Ok(Ok(opened)) => opened,
        };
        tracing::debug!(%peer, "connected; RTMP handshake");
        let start = now();
        let mut config = self.options.session.clone();
        // What is left of the budget after connecting (at least a second).
        config.timeout = budget
            .saturating_sub(start.saturating_duration_since(began))
            .max(Duration::from_secs(1));
        let mut session = ClientSession::new(config, dial::handshake_random(), start);
        let mut buf = vec![0u8; READ_SIZE];
        let mut offset: u64 = 0;
        loop {
            if let Err(ended) = self.drain(&mut session, &mut io).await {
                return ended;
            }
            let timer = session.poll_timeout();
            let sleep = async {
                match timer {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                read = tokio::time::timeout(budget, io.read(&mut buf)) => {
                    let n = match read {
                        Err(_) => {
                            return format!("no data from {peer} for {budget:?} (read timeout) at byte {offset}");
                        }
                        Ok(Err(e)) => return format!("read error from {peer} at byte {offset}: {e}"),
                        Ok(Ok(0)) => {
                            return format!("connection closed by the peer {peer} (EOF) at byte {offset}");
                        }
                        Ok(Ok(n)) => n,
                    };
                    offset += n as u64;
                    if let Err(e) = session.handle_input(now(), &buf[..n]) {
                        return format!("RTMP session with {peer} failed: {e}");
                    }
                }
                () = sleep => {
                    if let Err(e) = session.handle_timeout(now()) {
                        return format!("RTMP session with {peer}: {e}");
                    }
                }
            }
        }
    }

    /// Sends the session's transmits in order and acts on its events; `Err` ends the
    /// connection with the reason.
    async fn drain(
        &mut self,
        session: &mut ClientSession,
        io: &mut Box<dyn Io>,
    ) -> Result<(), String> {
        let mut wrote = false;
        while let Some(output) = session.poll_output() {
            let event = match output {
                Output::Transmit(bytes) => {
                    let write = tokio::time::timeout(self.options.timeout, io.write_all(&bytes));
                    match write.await {
                        Ok(Ok(())) => wrote = true,
                        Ok(Err(e)) => return Err(format!("write error: {e}")),
                        Err(_) => {
                            return Err(format!(
                                "the server read nothing for {:?} (write timeout)",
                                self.options.timeout
                            ));
                        }
                    }
                    continue;
                }
                Output::Event(event) => event,
            };
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
                ClientEvent::StreamEnded { code } => {
                    return Err(format!("the server ended the stream ({code})"));
                }
                ClientEvent::Metadata(metadata) => tracing::debug!(?metadata, "onMetaData"),
                other => tracing::debug!(?other, "RTMP event"),
            }
        }
        if wrote && let Err(e) = io.flush().await {
            return Err(format!("write error: {e}"));
        }
        Ok(())
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
