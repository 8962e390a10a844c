//! From TS bytes to hub writes: the demuxer, the parameter-set keepers, the counters and the
//! stall watchdog every worker shares.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tributary_domain::protocol::InputKind;
use tributary_hub::{Port, SessionReason};
use tributary_media::codec::{Observed, ParamChange, ParamSets};
use tributary_media::{Frame, MediaKind, StreamCode, TrackConfig, TrackId};
use tributary_mpegts::{DemuxEvent, Demuxer, DemuxerConfig};

use crate::{IngestError, WorkerEvent};

/// Who an input is, for messages: every report and log line names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Label {
    pub(crate) code: StreamCode,
    pub(crate) priority: u32,
    /// The URL with its secrets masked.
    pub(crate) url: String,
    pub(crate) kind: InputKind,
}

impl Label {
    /// An [`IngestError::InvalidSetting`] for this input.
    pub(crate) fn invalid(
        &self,
        setting: impl Into<String>,
        reason: impl Into<String>,
    ) -> IngestError {
        IngestError::InvalidSetting {
            code: self.code.clone(),
            priority: self.priority,
            url: self.url.clone(),
            setting: setting.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stream {}, input {} ({} {})",
            self.code, self.priority, self.kind, self.url
        )
    }
}

/// A worker's counters, read by [`Worker::stats`](crate::Worker::stats).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) cc_errors: AtomicU64,
    pub(crate) demux_errors: AtomicU64,
    pub(crate) dropped_keyframes: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) restarts: AtomicU64,
    pub(crate) connected: AtomicBool,
    /// Whether a connection has opened before, so the next open is a reconnect.
    pub(crate) opened: AtomicBool,
    pub(crate) finished: AtomicBool,
    /// The demuxer's last track table; replaced (rarely) when it reports a new one.
    pub(crate) tracks: Mutex<Vec<tributary_mpegts::TrackInfo>>,
    /// Per carried track, what its parameter sets or AudioSpecificConfig say.
    pub(crate) details: Mutex<Vec<(TrackId, tributary_media::TrackInfo)>>,
    /// Source events not yet taken by the manager, oldest first; at most [`EVENTS_KEPT`]
    /// (the oldest is dropped and counted in `events_dropped` when full).
    pub(crate) events: Mutex<VecDeque<WorkerEvent>>,
    /// Events dropped because nobody took them in time.
    pub(crate) events_dropped: AtomicU64,
    /// Woken after each event, if the manager asked for it.
    pub(crate) wake: Mutex<Option<Arc<Notify>>>,
}

impl Stats {
    /// Queues a source event for the manager and wakes it.
    pub(crate) fn event(&self, event: WorkerEvent) {
        {
            let mut events = lock(&self.events);
            if events.len() == EVENTS_KEPT {
                events.pop_front();
                self.events_dropped.fetch_add(1, Ordering::Relaxed);
            }
            events.push_back(event);
        }
        if let Some(wake) = lock(&self.wake).as_ref() {
            wake.notify_one();
        }
    }
}

/// The port of one input plus what it needs to report: errors go to the port (for the
/// manager's health and the input's error history) and to the log, both naming the input.
#[derive(Debug, Clone)]
pub(crate) struct Reporter {
    pub(crate) label: Arc<Label>,
    pub(crate) port: Port,
    pub(crate) stats: Arc<Stats>,
}

impl Reporter {
    pub(crate) fn new(label: Arc<Label>, port: Port, stats: Arc<Stats>) -> Self {
        Self { label, port, stats }
    }

    /// Reports an error: on the port, with the input named, and as a warning.
    pub(crate) fn error(&self, what: impl fmt::Display) {
        let message = format!("{}: {what}", self.label);
        tracing::warn!("{what}");
        self.port.report_error(now(), message);
    }

    /// The source began a new timeline: the next keyframe starts a session with `reason`.
    pub(crate) fn restart(&self, reason: SessionReason) {
        tracing::info!(%reason, "new session at the next keyframe");
        self.port.restart(reason);
        self.stats.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Opening the source failed: reported as an error and to the manager.
    pub(crate) fn open_failed(&self, what: impl fmt::Display) {
        let message = what.to_string();
        self.error(&message);
        self.stats.event(WorkerEvent::OpenFailed(message));
    }

    /// An open connection ended (EOF, read error, timeout): reported as an error and to the
    /// manager; the worker reopens.
    pub(crate) fn lost(&self, what: impl fmt::Display) {
        let message = what.to_string();
        self.set_connected(false);
        self.error(&message);
        self.stats.event(WorkerEvent::Lost(message));
    }

    /// A connection attempt ended, for `what`: [`lost`](Self::lost) if it had opened, else
    /// [`open_failed`](Self::open_failed).
    pub(crate) fn ended(&self, what: impl fmt::Display) {
        if self.stats.connected.load(Ordering::Relaxed) {
            self.lost(what);
        } else {
            self.open_failed(what);
        }
    }

    /// The source opened (for the manager: consecutive open failures end).
    pub(crate) fn announce_open(&self) {
        self.set_connected(true);
        self.stats.event(WorkerEvent::Opened);
    }

    /// A reopen after a connection had opened: counted, and a new session.
    pub(crate) fn reconnected(&self) {
        self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
        self.restart(SessionReason::Reconnect);
    }

    /// A connection opened: marked connected, and counted as a reconnect (a new session)
    /// unless it is the worker's first.
    pub(crate) fn opened(&self) {
        self.announce_open();
        if self.stats.opened.swap(true, Ordering::Relaxed) {
            self.reconnected();
        }
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.stats.connected.store(connected, Ordering::Relaxed);
    }

    /// The input ended for good: reported, and the worker stops.
    pub(crate) fn finish(&self, what: impl fmt::Display) {
        let message = what.to_string();
        self.error(&message);
        self.set_connected(false);
        self.stats.finished.store(true, Ordering::Relaxed);
        self.stats.event(WorkerEvent::Finished(message));
    }
}

/// The demuxer of one source and the per-track state that turns its frames into hub frames.
///
/// Driving it: [`push`](Self::push) a chunk, then call [`next`](Self::next) until it returns
/// `None`, writing each frame with [`write`](Self::write) (a pacing caller waits between the
/// two). At the end of a source call [`flush`](Self::flush) and drain again; before a new
/// connection or pass call [`reset`](Self::reset).
pub(crate) struct Sink {
    pub(crate) reporter: Reporter,
    /// The program to take from a multi-program TS (0 = first).
    program: u16,
    demuxer: Demuxer,
    /// Continuity errors of earlier demuxers (a new one starts at 0).
    cc_base: u64,
    /// Per video track: its parameter-set keeper and whether a keyframe has been written
    /// (frames before it cannot be decoded and are dropped).
    video: Vec<(TrackId, ParamSets, bool)>,
    /// Per AAC track: its configuration, to notice a change.
    audio: Vec<(TrackId, Arc<TrackConfig>)>,
    /// Demux errors in a row without a good frame.
    failures: u32,
    /// Whether a good frame came since the last reset (a connection that works).
    good: bool,
    /// When the last frame was written, for the stall watchdog.
    last_write: Option<Instant>,
}

/// A frame ready to be written, or the verdict that the source should be reopened.
pub(crate) enum Next {
    Frame(Ready),
    /// [`REOPEN_AFTER`] demux errors in a row: the message says which was last.
    Reopen(String),
}

/// A frame that passed the parameter-set and configuration checks.
pub(crate) struct Ready {
    pub(crate) frame: Frame,
    /// Set when the frame brings a new codec configuration.
    config_change: bool,
}

impl Sink {
    pub(crate) fn new(reporter: Reporter, program: u16) -> Self {
        Self {
            reporter,
            program,
            demuxer: Demuxer::new(DemuxerConfig { program }),
            cc_base: 0,
            video: Vec::new(),
            audio: Vec::new(),
            failures: 0,
            good: false,
            last_write: None,
        }
    }

    /// Feeds bytes that arrived at `arrival`.
    pub(crate) fn push(&mut self, data: &[u8], arrival: Instant) {
        self.demuxer.push(data, arrival);
        self.reporter
            .stats
            .cc_errors
            .store(self.cc_base + self.demuxer.cc_errors(), Ordering::Relaxed);
    }

    /// Ends the source: completes the access units still being gathered.
    pub(crate) fn flush(&mut self) {
        self.demuxer.flush();
    }

    /// A fresh demuxer for a new connection or pass. Parameter sets are kept (a keyframe
    /// without them can still be repaired); video tracks wait for a keyframe again.
    pub(crate) fn reset(&mut self) {
        self.cc_base += self.demuxer.cc_errors();
        self.demuxer = Demuxer::new(DemuxerConfig {
            program: self.program,
        });
        for (_, _, synced) in &mut self.video {
            *synced = false;
        }
        self.failures = 0;
        self.good = false;
    }

    /// Whether a good frame came since the last [`reset`](Self::reset).
    pub(crate) fn had_frames(&self) -> bool {
        self.good
    }

    /// The next frame to write, if the demuxer has one.
    pub(crate) fn next(&mut self) -> Option<Next> {
        loop {
            let event = self.demuxer.pull()?;
            let frame = match event {
                Ok(DemuxEvent::Frame(frame)) => frame,
                Ok(DemuxEvent::Tracks { program, tracks }) => {
                    tracing::info!(program, tracks = ?tracks, "track table");
                    *lock(&self.reporter.stats.tracks) = tracks;
                    continue;
                }
                Err(e) => {
                    self.failures += 1;
                    let count = self
                        .reporter
                        .stats
                        .demux_errors
                        .fetch_add(1, Ordering::Relaxed);
                    if count.is_multiple_of(100) {
                        tracing::warn!(errors = count + 1, "demux error (resynchronising): {e}");
                    }
                    if self.failures >= REOPEN_AFTER {
                        self.failures = 0;
                        return Some(Next::Reopen(format!(
                            "{REOPEN_AFTER} demux errors in a row without a good frame, last: {e}"
                        )));
                    }
                    continue;
                }
            };
            self.failures = 0;
            self.good = true;
            if let Some(ready) = self.check(frame) {
                return Some(Next::Frame(ready));
            }
        }
    }

    /// Checks a frame that came without the demuxer (a source that delivers frames, not TS):
    /// the same parameter-set and configuration checks as [`next`](Self::next)'s; write what
    /// it returns.
    pub(crate) fn frame(&mut self, frame: Frame) -> Option<Ready> {
        self.good = true;
        self.check(frame)
    }

    /// Writes a frame at `now`: a new session first if its configuration changed or the input
    /// had been silent for [`STALL`].
    pub(crate) fn write(&mut self, ready: Ready, now: Instant) {
        let stalled = self
            .last_write
            .is_some_and(|last| now.saturating_duration_since(last) >= STALL);
        if stalled {
            tracing::warn!("input resumed after writing nothing for {STALL:?}");
            self.reporter.restart(SessionReason::StallRecovery);
        } else if ready.config_change {
            self.reporter.restart(SessionReason::ConfigChange);
        }
        self.last_write = Some(now);
        if let Err(e) = self.reporter.port.write(ready.frame) {
            tracing::debug!("port refused a frame: {e}");
        }
    }

    /// Repairs or drops a video frame per its track's parameter sets, and notes configuration
    /// changes.
    fn check(&mut self, mut frame: Frame) -> Option<Ready> {
        let track = frame.track;
        match frame.codec.kind() {
            MediaKind::Video => {
                let at = match self.video.iter().position(|(t, _, _)| *t == track) {
                    Some(at) => at,
                    None => {
                        let keeper = ParamSets::for_codec(frame.codec)?;
                        self.video.push((track, keeper, false));
                        self.video.len() - 1
                    }
                };
                let (_, keeper, synced) = &mut self.video[at];
                match keeper.observe(frame.payload.clone()) {
                    Observed::Write {
                        au,
                        keyframe,
                        change,
                        ..
                    } => {
                        if change != ParamChange::Unchanged {
                            let info = keeper.track_info().and_then(Result::ok);
                            if let Some(info) = info {
                                set_detail(&self.reporter.stats, track, info);
                            }
                        }
                        if !keyframe && !*synced {
                            return None;
                        }
                        *synced = true;
                        frame.payload = au;
                        frame.keyframe = keyframe;
                        Some(Ready {
                            frame,
                            config_change: change == ParamChange::Changed,
                        })
                    }
                    Observed::DropKeyframe { .. } => {
                        let n = self
                            .reporter
                            .stats
                            .dropped_keyframes
                            .fetch_add(1, Ordering::Relaxed);
                        if n.is_multiple_of(100) {
                            tracing::warn!(
                                track = track.0,
                                dropped = n + 1,
                                "keyframe dropped: no parameter sets known yet"
                            );
                        }
                        None
                    }
                }
            }
            MediaKind::Audio => {
                let Some(config) = frame.config.clone() else {
                    return Some(Ready {
                        frame,
                        config_change: false,
                    });
                };
                let (config_change, learned) =
                    match self.audio.iter_mut().find(|(t, _)| *t == track) {
                        Some((_, known)) if Arc::ptr_eq(known, &config) || **known == *config => {
                            (false, false)
                        }
                        Some((_, known)) => {
                            *known = Arc::clone(&config);
                            (true, true)
                        }
                        None => {
                            self.audio.push((track, Arc::clone(&config)));
                            (false, true)
                        }
                    };
                if learned {
                    set_detail(&self.reporter.stats, track, config.info.clone());
                }
                Some(Ready {
                    frame,
                    config_change,
                })
            }
            MediaKind::Data => Some(Ready {
                frame,
                config_change: false,
            }),
        }
    }
}

/// The instant now, from tokio's clock (so paused-time tests control it).
/// Source events a worker keeps for the manager (which takes them at least every 250 ms):
/// far more than one tick produces, even for a source failing in a tight loop.
pub(crate) const EVENTS_KEPT: usize = 32;

pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Locks a mutex, recovering from poisoning (the data are counters and snapshots, valid
/// whatever a panicking holder did).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn set_detail(stats: &Stats, track: TrackId, info: tributary_media::TrackInfo) {
    let mut details = lock(&stats.details);
    match details.iter_mut().find(|(t, _)| *t == track) {
        Some((_, known)) => *known = info,
        None => details.push((track, info)),
    }
}

/// Demux errors in a row, without a good frame, after which the source is reopened (SPEC
/// §Ingest "Robustness").
pub(crate) const REOPEN_AFTER: u32 = 8;

/// Silence after which the next write begins a new session (SPEC §Ingest, `stall_recovery`).
pub(crate) const STALL: Duration = Duration::from_secs(15);

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tributary_hub::{BufferId, Delivery, Hub, Intake, PortKey, SubscribeFrom};
    use tributary_media::{Codec, SessionId, Ts90};

    use super::*;

    fn rig() -> (Hub, Intake, Sink, tributary_hub::Subscriber) {
        let hub = Hub::new();
        let id = BufferId::Stream("s".parse().unwrap());
        let intake = Intake::new(hub.create(id.clone(), 64).unwrap());
        let port = intake.add_port(PortKey(0), false).unwrap();
        intake.select(PortKey(0), SessionReason::Fresh).unwrap();
        let sub = hub.subscribe(&id, SubscribeFrom::Now, "test").unwrap();
        let label = Arc::new(Label {
            code: "s".parse().unwrap(),
            priority: 0,
            url: "udp://0.0.0.0:5000".into(),
            kind: InputKind::Udp,
        });
        let reporter = Reporter::new(label, port, Arc::default());
        (hub, intake, Sink::new(reporter, 0), sub)
    }

    fn keyframe(at: Instant) -> Ready {
        Ready {
            frame: Frame {
                track: TrackId(0x100),
                codec: Codec::H264,
                pts: Ts90(0),
                dts: Ts90(0),
                keyframe: true,
                session: SessionId(0),
                arrival: at,
                payload: Bytes::from_static(b"\0\0\0\x01\x65idr"),
                config: None,
            },
            config_change: false,
        }
    }

    fn session(sub: &mut tributary_hub::Subscriber) -> SessionId {
        match sub.try_recv() {
            Ok(Delivery::Frame(frame)) => frame.session,
            other => panic!("no frame: {other:?}"),
        }
    }

    #[test]
    fn a_write_after_a_stall_or_a_config_change_starts_a_session() {
        let (_hub, _intake, mut sink, mut sub) = rig();
        let t0 = Instant::now();
        sink.write(keyframe(t0), t0);
        let first = session(&mut sub);
        let t1 = t0 + Duration::from_secs(14);
        sink.write(keyframe(t1), t1);
        assert_eq!(session(&mut sub), first, "14 s of silence is no stall");
        let t2 = t1 + STALL;
        sink.write(keyframe(t2), t2);
        let second = session(&mut sub);
        assert!(second > first, "no new session after a stall");
        let mut changed = keyframe(t2);
        changed.config_change = true;
        sink.write(changed, t2);
        assert!(
            session(&mut sub) > second,
            "no new session on a config change"
        );
    }

    #[test]
    fn eight_demux_errors_in_a_row_ask_for_a_reopen() {
        let (_hub, _intake, mut sink, _sub) = rig();
        // TS packets with the transport_error_indicator set: one error each.
        let mut data = Vec::new();
        for _ in 0..REOPEN_AFTER {
            let mut packet = [0xFFu8; 188];
            packet[..4].copy_from_slice(&[0x47, 0x80 | 0x01, 0x00, 0x10]);
            data.extend_from_slice(&packet);
        }
        sink.push(&data, Instant::now());
        let Some(Next::Reopen(why)) = sink.next() else {
            panic!("no reopen after {REOPEN_AFTER} errors");
        };
        assert!(why.contains("transport error"), "{why}");
        assert!(sink.next().is_none());
        assert_eq!(
            sink.reporter.stats.demux_errors.load(Ordering::Relaxed),
            u64::from(REOPEN_AFTER)
        );
    }
}
