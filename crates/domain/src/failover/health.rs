//! One input's health: the counters the engine samples ([`Observation`]) and the signals judged
//! from them ([`Signal`]), per session of the input.
//!
//! A *session* here is one continuous run of the input's source: it begins when the machine
//! starts watching the input (connect, publisher connect), when the source reconnects
//! ([`super::InputEvent::Opened`], [`super::InputEvent::Error`], a change of
//! [`Observation::session`]), and when the input degrades or recovers. Facts older than the
//! session (a track that was present before a reconnect, the GOP of the last connection) do
//! not count against it.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;
use tributary_media::{MediaKind, Ts90};

use super::spec::FailoverConfig;

/// The counters of one input, sampled by the engine at every tick (≤ 250 ms) from the hub's
/// port health and the ingest worker's statistics.
///
/// Instants are arrival instants of frames on the same monotonic clock as `now`. Counters are
/// cumulative; a counter that goes down is taken as a restart of whatever keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// The input.
    pub priority: u32,
    /// Video keyframes delivered (cumulative): with `last_keyframe_at`, the observed GOP.
    pub keyframes: u64,
    /// Arrival of the latest frame of any kind.
    pub last_frame_at: Option<Instant>,
    /// Arrival of the latest video keyframe.
    pub last_keyframe_at: Option<Instant>,
    /// Arrival of the latest video frame.
    pub last_video_at: Option<Instant>,
    /// Arrival of the latest audio frame.
    pub last_audio_at: Option<Instant>,
    /// PTS of the latest video frame, as the source stamped it (unwrapped 90 kHz).
    pub video_pts: Option<Ts90>,
    /// TS continuity-counter errors (cumulative; 0 for non-TS sources).
    pub cc_errors: u64,
    /// Changes whenever the source begins a new timeline (a reconnect); any value works, only
    /// a change matters. The worker's reconnect count is a good one.
    pub session: u64,
}

/// A health signal that degrades an input (SPEC §Stream manager "Health signals"). Serialises
/// as the switch reason it causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// A connection error, EOF, non-retriable error, the publisher leaving, the source ending
    /// for good, or too many consecutive failed opens.
    Error,
    /// No packet for the packet timeout, or no first packet within it.
    Timeout,
    /// No keyframe for max(N × GOP, minimum), or video PTS standing still while video arrives.
    Frozen,
    /// A track present in the session silent while the other flows.
    TrackLost,
    /// A burst of TS continuity-counter errors.
    CcErrors,
}

impl Signal {
    /// The snake-case name (`track_lost`), as in switch reasons and `input.degraded`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::Frozen => "frozen",
            Self::TrackLost => "track_lost",
            Self::CcErrors => "cc_errors",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why and since when an input is degraded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Degradation {
    /// The signal that fired.
    pub signal: Signal,
    /// What exactly, in words (`no packet for 30 s`), as in the switch record.
    pub detail: String,
    /// When it degraded.
    pub since: Instant,
    /// For [`Signal::TrackLost`]: the track that went silent; it must come back to recover.
    pub(super) lost: Option<MediaKind>,
}

/// A signal that fired: what the machine turns into a [`Degradation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Finding {
    /// The signal.
    pub(super) signal: Signal,
    /// The detail for the switch record and the input's errors.
    pub(super) detail: String,
    /// The lost track, for [`Signal::TrackLost`].
    pub(super) lost: Option<MediaKind>,
}

/// The health trackers of one input.
#[derive(Debug, Clone)]
pub(super) struct Health {
    /// Since when the machine expects packets from the input (it is connected, or its
    /// publisher is); `None` while it is not watched. Silence counts from here at the latest.
    watch_since: Option<Instant>,
    /// Start of the current session: frames that arrived before it, or at that very instant
    /// (the machine learns of a new run after the fact), belong to an older run.
    session_start: Instant,
    /// The last [`Observation::session`] seen, to notice a new timeline.
    session_id: Option<u64>,
    /// The latest observation.
    last: Option<Observation>,
    /// The first keyframe of this session an observation saw: (keyframe count, its arrival).
    gop_base: Option<(u64, Instant)>,
    /// The mean GOP of this session, once two keyframes have been seen.
    gop: Option<Duration>,
    /// How the video PTS moves in this session.
    pts: Option<PtsTrack>,
    /// Continuity errors over the recent window.
    cc: CcWindow,
    /// Whether the input has ever carried video: then recovery waits for a keyframe.
    video_seen: bool,
    /// Failed opens since the last successful one.
    pub(super) open_failures: u32,
}

impl Health {
    /// Unwatched, nothing observed.
    pub(super) fn new(now: Instant) -> Self {
        Self {
            watch_since: None,
            session_start: now,
            session_id: None,
            last: None,
            gop_base: None,
            gop: None,
            pts: None,
            cc: CcWindow::default(),
            video_seen: false,
            open_failures: 0,
        }
    }

    /// Whether the machine expects packets from the input.
    pub(super) fn watched(&self) -> bool {
        self.watch_since.is_some()
    }

    /// Starts watching: silence counts from `now`, and a new session begins.
    pub(super) fn watch(&mut self, now: Instant) {
        self.watch_since = Some(now);
        self.begin_session(now);
    }

    /// Stops watching (disconnected, publisher gone, ended).
    pub(super) fn unwatch(&mut self) {
        self.watch_since = None;
        self.open_failures = 0;
    }

    /// Forgets what the previous run of the source showed: tracks present, GOP, PTS progress,
    /// continuity errors.
    pub(super) fn begin_session(&mut self, now: Instant) {
        self.session_start = now;
        self.gop_base = None;
        self.gop = None;
        self.pts = None;
        self.cc = CcWindow::default();
    }

    /// Restarts the silence clock and the session at `now` (the input recovered).
    pub(super) fn rewatch(&mut self, now: Instant) {
        if self.watch_since.is_some() {
            self.watch_since = Some(now);
        }
        self.begin_session(now);
    }

    /// The latest observation's last frame arrival.
    pub(super) fn last_frame_at(&self) -> Option<Instant> {
        self.last.as_ref().and_then(|o| o.last_frame_at)
    }

    /// Takes a new sample of the input's counters.
    pub(super) fn observe(&mut self, obs: &Observation, now: Instant, config: &FailoverConfig) {
        if self.session_id.is_some_and(|id| id != obs.session) {
            self.begin_session(now);
        }
        self.session_id = Some(obs.session);
        self.video_seen |= obs.last_video_at.is_some();
        let start = self.session_start;
        let in_session = |at: Option<Instant>| at.is_some_and(|at| at > start);

        if let (true, Some(at)) = (in_session(obs.last_keyframe_at), obs.last_keyframe_at) {
            match self.gop_base {
                Some((count, _)) if obs.keyframes < count => {
                    self.gop_base = Some((obs.keyframes, at));
                }
                Some((count, since)) if obs.keyframes > count => {
                    let gops = u32::try_from(obs.keyframes - count).unwrap_or(u32::MAX);
                    self.gop = at.saturating_duration_since(since).checked_div(gops);
                }
                Some(_) => {}
                None => self.gop_base = Some((obs.keyframes, at)),
            }
        }

        if let (true, Some(pts)) = (in_session(obs.last_video_at), obs.video_pts) {
            match &mut self.pts {
                None => {
                    self.pts = Some(PtsTrack {
                        max: pts,
                        since: now,
                        advanced: None,
                    });
                }
                Some(track) if pts > track.max => {
                    track.max = pts;
                    track.advanced = Some(now);
                }
                Some(track) if pts.0 < track.max.0 - PTS_RESTART.0 => {
                    // The source restarted its clock: that is movement, on a new baseline.
                    track.max = pts;
                    track.advanced = Some(now);
                }
                Some(_) => {}
            }
        }

        self.cc.record(now, obs.cc_errors, config.cc_errors_window);
        self.last = Some(obs.clone());
    }

    /// The first health signal the input fails at `now`, if it is watched. Checked in the
    /// order silence, track lost, frozen (keyframes, then PTS), continuity errors.
    pub(super) fn signal(
        &self,
        now: Instant,
        config: &FailoverConfig,
        packet_timeout: Duration,
    ) -> Option<Finding> {
        let since = self.watch_since?;
        let obs = self.last.as_ref();
        let last_frame = obs.and_then(|o| o.last_frame_at).filter(|&at| at > since);
        let quiet_since = last_frame.unwrap_or(since);
        if now.saturating_duration_since(quiet_since) >= packet_timeout {
            let detail = match last_frame {
                Some(_) => format!("no packet for {}", secs(packet_timeout)),
                None => format!("no first packet within {}", secs(packet_timeout)),
            };
            return Some(finding(Signal::Timeout, detail));
        }
        let obs = obs?;
        let start = self.session_start;
        let present = |at: Option<Instant>| at.filter(|&at| at > start);
        let flowing = |at: Option<Instant>| {
            present(at).is_some_and(|at| now.saturating_duration_since(at) < FLOWING)
        };

        if !config.track_lost.is_zero() {
            let tracks = [
                (MediaKind::Video, obs.last_video_at, obs.last_audio_at),
                (MediaKind::Audio, obs.last_audio_at, obs.last_video_at),
            ];
            for (kind, mine, other) in tracks {
                let Some(at) = present(mine) else { continue };
                if now.saturating_duration_since(at) >= config.track_lost && flowing(other) {
                    let detail = format!(
                        "{} track silent for {} while {} flows",
                        kind_name(kind),
                        secs(config.track_lost),
                        kind_name(other_kind(kind)),
                    );
                    return Some(Finding {
                        signal: Signal::TrackLost,
                        detail,
                        lost: Some(kind),
                    });
                }
            }
        }

        let video = present(obs.last_video_at).is_some();
        let last_key = present(obs.last_keyframe_at).unwrap_or(start);
        if video
            && flowing(obs.last_frame_at)
            && let Some(limit) = self.keyframe_limit(config)
            && now.saturating_duration_since(last_key) >= limit
        {
            let detail = match self.gop.filter(|_| config.frozen_gops > 0) {
                Some(gop) => format!(
                    "no keyframe for {} (max({} × GOP {}, {}))",
                    secs(limit),
                    config.frozen_gops,
                    secs(gop),
                    secs(config.frozen_min),
                ),
                None => format!("no keyframe for {}", secs(limit)),
            };
            return Some(finding(Signal::Frozen, detail));
        }
        if !config.pts_static.is_zero()
            && flowing(obs.last_video_at)
            && let Some(track) = &self.pts
            && now.saturating_duration_since(track.advanced.unwrap_or(track.since))
                >= config.pts_static
        {
            let detail = format!(
                "video PTS static for {} while video arrives",
                secs(config.pts_static)
            );
            return Some(finding(Signal::Frozen, detail));
        }

        if config.cc_errors_max > 0 && !config.cc_errors_window.is_zero() {
            let errors = self.cc.count();
            if errors >= config.cc_errors_max {
                let detail = format!(
                    "{errors} continuity errors within {}",
                    secs(config.cc_errors_window)
                );
                return Some(finding(Signal::CcErrors, detail));
            }
        }
        None
    }

    /// Whether a degraded, watched input has shown at `now` that the problem is over: a
    /// keyframe (a frame, for an input that never carried video) after it degraded, plus what
    /// the signal needs: PTS moving again (frozen), the lost track back (track lost), a whole
    /// window under the limit (continuity errors).
    pub(super) fn recovered(
        &self,
        degradation: &Degradation,
        now: Instant,
        config: &FailoverConfig,
    ) -> bool {
        let Some(obs) = &self.last else { return false };
        let after = |at: Option<Instant>| at.is_some_and(|at| at > degradation.since);
        let delivered = if self.video_seen {
            after(obs.last_keyframe_at)
        } else {
            after(obs.last_frame_at)
        };
        if !delivered {
            return false;
        }
        match degradation.signal {
            Signal::Error | Signal::Timeout => true,
            Signal::Frozen => {
                // PTS can only be judged when the engine reports it.
                obs.video_pts.is_none()
                    || self.pts.as_ref().is_some_and(|track| after(track.advanced))
            }
            Signal::TrackLost => match degradation.lost {
                Some(MediaKind::Video) => after(obs.last_video_at),
                Some(MediaKind::Audio) => after(obs.last_audio_at),
                Some(MediaKind::Data) | None => true,
            },
            Signal::CcErrors => {
                now.saturating_duration_since(degradation.since) >= config.cc_errors_window
                    && self.cc.count() < config.cc_errors_max
            }
        }
    }

    /// How long the input may go without a keyframe, if the keyframe rule is on and judgeable.
    fn keyframe_limit(&self, config: &FailoverConfig) -> Option<Duration> {
        let by_gop = self
            .gop
            .filter(|_| config.frozen_gops > 0)
            .map(|gop| gop.saturating_mul(config.frozen_gops));
        let by_min = Some(config.frozen_min).filter(|min| !min.is_zero());
        match (by_gop, by_min) {
            (Some(gop), Some(min)) => Some(gop.max(min)),
            (one, other) => one.or(other),
        }
    }
}

/// How the video PTS moved in this session.
#[derive(Debug, Clone)]
struct PtsTrack {
    /// The highest PTS seen (B-frames make the latest one jump back a little).
    max: Ts90,
    /// When the first PTS of the session was seen.
    since: Instant,
    /// When the PTS last moved forward (or restarted), if it has in this session.
    advanced: Option<Instant>,
}

/// Continuity errors over a sliding window: cumulative counts sampled at each observation.
#[derive(Debug, Clone, Default)]
struct CcWindow {
    /// (instant, cumulative count), oldest first. The first entry is the newest sample at or
    /// before the window's start (the baseline), or the oldest one there is. Bounded by
    /// [`CC_SAMPLES`]; dropping the oldest only shortens the window counted.
    samples: VecDeque<(Instant, u64)>,
}

impl CcWindow {
    fn record(&mut self, now: Instant, total: u64, window: Duration) {
        if self.samples.back().is_some_and(|&(_, last)| total < last) {
            // The counter restarted with its worker.
            self.samples.clear();
        }
        self.samples.push_back((now, total));
        if let Some(cutoff) = now.checked_sub(window) {
            while self.samples.len() >= 2 && self.samples[1].0 <= cutoff {
                self.samples.pop_front();
            }
        }
        while self.samples.len() > CC_SAMPLES {
            self.samples.pop_front();
        }
    }

    /// Errors within the window.
    fn count(&self) -> u64 {
        match (self.samples.front(), self.samples.back()) {
            (Some(&(_, first)), Some(&(_, last))) => last - first,
            _ => 0,
        }
    }
}

fn finding(signal: Signal, detail: String) -> Finding {
    Finding {
        signal,
        detail,
        lost: None,
    }
}

fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Video => "video",
        MediaKind::Audio => "audio",
        MediaKind::Data => "data",
    }
}

fn other_kind(kind: MediaKind) -> MediaKind {
    match kind {
        MediaKind::Video => MediaKind::Audio,
        MediaKind::Audio | MediaKind::Data => MediaKind::Video,
    }
}

/// A duration for a detail message: `30 s`, `2.5 s`.
pub(super) fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// A track (or the whole input) counts as flowing when it delivered within this. Long enough
/// for sparse audio and 1 fps cameras, short enough that a source that stopped as a whole is
/// not taken for one that lost a track.
const FLOWING: Duration = Duration::from_secs(2);
/// A video PTS this far below the highest seen is a restarted source clock, not reordering.
const PTS_RESTART: Ts90 = Ts90(90_000);
/// Continuity-error samples kept: 10 s at 40 ticks a second, then some.
const CC_SAMPLES: usize = 512;
