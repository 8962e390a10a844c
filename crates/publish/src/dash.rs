//! DASH from the HLS output's own frames (SPEC §DASH).
//!
//! A DASH rung is not a task of its own: the HLS output of a rendition (one hub subscriber)
//! carries a [`DashSide`] when DASH is on, and feeds it the frames it reads. The side runs one
//! fMP4 [`HlsSegmenter`] for the video track and, on the rung that packages audio, one for the
//! audio track, both configured as the rung's HLS segmenter is (S, first number, keyframe
//! grid). So HLS and DASH cut at the same keyframes and use the same numbers, and an input
//! switch, which the hub turns into a new session on one continuous timeline, is one more
//! `<S>` entry in the same Period: a DASH player sees no change at all. A switch that changes
//! a codec (or its parameters) makes the segmenter write a new init; its first segment opens
//! a new Period ([`Periods`]), whose Representations name the new init (`init_v_<session>.mp4`),
//! so the player sets its decoders up again. Old Periods stay listed while their segments are
//! in the window.
//!
//! Segments are kept by the HLS [`Window`] (pages, retention as SPEC §HLS, bounded), one per
//! track; the MPD is rendered on request by the registry from each rung's [`DashRung`]
//! (timelines, codecs, measured sizes), so it always spans the whole ladder with one
//! `availabilityStartTime`: the wall time of media time 0, fixed by the stream's first DASH
//! segment.
//!
//! An input switch leaves a small hole between the old session's last frame and the new
//! session's first: the MPD's entry before it is stretched over it (SPEC §DASH "Cutting":
//! entries never overlap or gap), and the player steps over the hole in its buffer.
//!
//! Not done here yet: a ladder change restarts the stream's packagers, and with them the MPD
//! (a new `availabilityStartTime`): players reload instead of entering a new Period.

use std::collections::VecDeque;
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;
use tokio::time::Instant;
use tributary_media::{Frame, MediaKind, TrackInfo, Ts90};
use tributary_packager::{
    HlsConfig, HlsEvent, HlsSegmenter, InitName, PeriodMark, Periods, PlaylistEntry, SegmentFormat,
    Timeline, TimelineEntry, UnixMillis,
};

use crate::hls::window::Window;

/// How a rung packages DASH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DashSettings {
    /// Whether this rung packages the stream's audio (SPEC §DASH: audio once per ladder,
    /// from the best rung). Default true.
    pub audio: bool,
}

impl Default for DashSettings {
    fn default() -> Self {
        Self { audio: true }
    }
}

/// What one rung's DASH looks like to readers: its two track windows and what the MPD says
/// about them. Shared by the output task (the only writer) and the HTTP readers.
#[derive(Debug)]
pub(crate) struct DashRung {
    /// Video segments and `init_v.mp4`.
    pub(crate) video: Window,
    /// Audio segments and `init_a.mp4` (empty on a rung that does not package audio).
    pub(crate) audio: Window,
    /// The MPD's view, swapped once per segment.
    state: RwLock<RungState>,
}

/// What the MPD lists of one rung.
#[derive(Debug, Clone, Default)]
pub(crate) struct RungState {
    /// Video, once its first segment is out.
    pub(crate) video: Option<TrackState>,
    /// Audio, once its first segment is out (only on the rung that packages it).
    pub(crate) audio: Option<TrackState>,
    /// The Periods the listed segments are in, oldest first.
    pub(crate) periods: Vec<PeriodMark>,
}

/// One track of a rung as the MPD lists it.
#[derive(Debug, Clone)]
pub(crate) struct TrackState {
    /// Its inits kept: name, RFC 6381 codec string and `tfdt` timescale.
    pub(crate) inits: Vec<TrackInit>,
    /// Peak bits per second over the listed segments.
    pub(crate) bandwidth: u64,
    /// The listed segments.
    pub(crate) timeline: Vec<TimelineEntry>,
    /// What the output measured of the track (size, frame rate, sample rate).
    pub(crate) info: Option<TrackInfo>,
}

/// One init of a track, as the MPD names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrackInit {
    /// Its name ([`tributary_packager::dash_init_name`]).
    pub(crate) name: InitName,
    /// The RFC 6381 codec string.
    pub(crate) codecs: String,
    /// The `tfdt` timescale.
    pub(crate) timescale: u32,
}

impl DashRung {
    pub(crate) fn new(window: usize, history: usize) -> Self {
        Self {
            video: Window::new(window, history),
            audio: Window::new(window, history),
            state: RwLock::new(RungState::default()),
        }
    }

    /// A copy of what the MPD lists of this rung.
    pub(crate) fn state(&self) -> RungState {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Closes both windows (404 from now on); the last number either used.
    pub(crate) fn close(&self) -> Option<u64> {
        let video = self.video.close();
        let audio = self.audio.close();
        video.max(audio)
    }

    /// When a retired segment of either window expires next.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        match (self.video.next_expiry(), self.audio.next_expiry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Warnings of both windows, for `runtime.warnings`.
    pub(crate) fn warnings(&self) -> Vec<String> {
        let mut warnings = self.video.warnings();
        warnings.extend(self.audio.warnings());
        warnings
    }

    /// Drops expired segments of both windows.
    pub(crate) fn prune(&self, now: Instant) {
        self.video.prune(now);
        self.audio.prune(now);
    }
}

/// The DASH half of one HLS output task.
#[derive(Debug)]
pub(crate) struct DashSide {
    /// What readers see.
    rung: Arc<DashRung>,
    /// Video frames to segments.
    video: Track,
    /// Audio frames to segments, on the rung that packages audio.
    audio: Option<Track>,
    /// Which Period each segment is listed in.
    periods: Periods,
    /// The wall time of media time 0, once the first segment tells; handed to the registry
    /// once.
    origin: Option<UnixMillis>,
    /// Whether [`drain`](Self::drain) has returned the origin already.
    origin_told: bool,
}

/// One track's segmenter and listing.
#[derive(Debug)]
struct Track {
    segmenter: HlsSegmenter,
    timeline: Timeline,
    /// Bytes and duration of each listed segment, for the peak bandwidth.
    sizes: VecDeque<(usize, Ts90)>,
    /// Its inits, newest last (at most [`MAX_INITS`]).
    inits: VecDeque<TrackInit>,
    /// The last measured configuration of the track.
    info: Option<TrackInfo>,
}

impl DashSide {
    /// A side cutting as `config` says (the rung's HLS configuration; the format is fMP4
    /// whatever HLS uses), listing `window` segments.
    pub(crate) fn new(
        rung: Arc<DashRung>,
        config: HlsConfig,
        window: usize,
        settings: DashSettings,
    ) -> Self {
        let track = || Track {
            segmenter: HlsSegmenter::new(HlsConfig {
                format: SegmentFormat::Fmp4,
                part: None,
                ..config
            }),
            timeline: Timeline::new(window),
            sizes: VecDeque::with_capacity(window + 1),
            inits: VecDeque::with_capacity(MAX_INITS),
            info: None,
        };
        Self {
            rung,
            video: track(),
            audio: settings.audio.then(track),
            periods: Periods::new(),
            origin: None,
            origin_told: false,
        }
    }

    /// What readers see of this rung.
    pub(crate) fn rung(&self) -> &DashRung {
        &self.rung
    }

    /// Takes one frame that arrived at `wall`.
    pub(crate) fn push(&mut self, frame: &Frame, wall: UnixMillis) {
        match frame.codec.kind() {
            MediaKind::Video => self.video.segmenter.push(frame, wall),
            MediaKind::Audio => {
                if let Some(audio) = &mut self.audio {
                    audio.segmenter.push(frame, wall);
                }
            }
            MediaKind::Data => {}
        }
    }

    /// Records what the output measured of a track (size, frame rate, sample rate).
    pub(crate) fn measure(&mut self, kind: MediaKind, info: &TrackInfo) {
        match kind {
            MediaKind::Video => self.video.info = Some(info.clone()),
            MediaKind::Audio => {
                if let Some(audio) = &mut self.audio {
                    audio.info = Some(info.clone());
                }
            }
            MediaKind::Data => {}
        }
    }

    /// Frames were lost: both tracks close their open segment.
    pub(crate) fn discontinuity(&mut self) {
        self.video.segmenter.discontinuity();
        if let Some(audio) = &mut self.audio {
            audio.segmenter.discontinuity();
        }
    }

    /// The stream ended: both tracks close their open segment.
    pub(crate) fn finish(&mut self) {
        self.video.segmenter.finish();
        if let Some(audio) = &mut self.audio {
            audio.segmenter.finish();
        }
    }

    /// Publishes what the segmenters produced; returns the origin (wall time of media time
    /// 0) once, when the first segment made it known, for the registry.
    pub(crate) fn drain(&mut self, now: Instant) -> Option<UnixMillis> {
        let mut changed = self.drain_track(true, now);
        if self.audio.is_some() {
            changed |= self.drain_track(false, now);
        }
        if changed {
            let video = &self.video.timeline;
            let audio = self.audio.as_ref().map(|a| &a.timeline);
            self.periods.retain(|id| {
                video
                    .entries()
                    .chain(audio.into_iter().flat_map(Timeline::entries))
                    .any(|e| e.period == id)
            });
            let state = RungState {
                video: self.video.state(),
                audio: self.audio.as_ref().and_then(Track::state),
                periods: self.periods.marks().copied().collect(),
            };
            *self
                .rung
                .state
                .write()
                .unwrap_or_else(PoisonError::into_inner) = state;
        }
        if self.origin_told {
            return None;
        }
        self.origin_told = self.origin.is_some();
        self.origin
    }

    /// Publishes the events of the video (`video`) or audio track into its window and
    /// lists its segments in their Periods; whether a segment came out.
    fn drain_track(&mut self, video: bool, now: Instant) -> bool {
        let (track, mut other, window) = if video {
            (&mut self.video, self.audio.as_mut(), &self.rung.video)
        } else {
            let Some(audio) = self.audio.as_mut() else {
                return false;
            };
            (audio, Some(&mut self.video), &self.rung.audio)
        };
        let mut segments = false;
        while let Some(event) = track.segmenter.pull() {
            match event {
                HlsEvent::Segment(segment) => {
                    self.origin.get_or_insert(UnixMillis(
                        segment.program_date_time.0 - segment.start.as_millis(),
                    ));
                    let assigned = self.periods.assign(video, &segment);
                    if assigned.opened {
                        tracing::info!(
                            period = assigned.period,
                            session = segment.session.0,
                            "DASH: a new init opens a new Period"
                        );
                    }
                    let slid_out =
                        track
                            .timeline
                            .push(&segment, assigned.period)
                            .map(|out| PlaylistEntry {
                                number: out.number,
                                init: Some(out.init),
                                duration: out.duration,
                                discontinuity: false,
                                program_date_time: segment.program_date_time,
                            });
                    if assigned.opened
                        && let Some(other) = other.as_deref_mut()
                        && let Some(start) =
                            other
                                .timeline
                                .retag(segment.session, segment.start, assigned.period)
                    {
                        self.periods.start_at(assigned.period, start);
                    }
                    track
                        .sizes
                        .push_back((segment.bytes.len(), segment.duration));
                    while track.sizes.len() > track.timeline.entries().len() {
                        track.sizes.pop_front();
                    }
                    let listed: Ts90 = Ts90(track.timeline.entries().map(|e| e.duration.0).sum());
                    window.publish(segment, slid_out, listed, Bytes::new(), None, now);
                    segments = true;
                }
                HlsEvent::Init(init) => {
                    // Each init under its own name: a new one opens a Period with its
                    // first segment, and the old one stays for the old Period.
                    let kept = TrackInit {
                        name: init.name,
                        codecs: init.codecs.first().cloned().unwrap_or_default(),
                        timescale: init.timescales.first().copied().unwrap_or(Ts90::HZ as u32),
                    };
                    track.inits.retain(|i| i.name != kept.name);
                    if track.inits.len() == MAX_INITS {
                        track.inits.pop_front();
                    }
                    track.inits.push_back(kept);
                    window.publish_init(init.name, init.bytes);
                }
                HlsEvent::Omitted { track: id, codec } => {
                    tracing::warn!(track = id.0, %codec, "DASH cannot carry this codec; track omitted");
                    window.warn(format!(
                        "dash: track {} ({codec}) omitted: DASH cannot carry {codec}",
                        id.0
                    ));
                }
                HlsEvent::Unwritable { track: id, error } => {
                    tracing::warn!(track = id.0, %error, "DASH fMP4 writer refused a track");
                    window.warn(format!("dash: track {}: not written: {error}", id.0));
                }
                other => tracing::debug!(?other, "DASH event ignored"),
            }
        }
        segments
    }
}

impl Track {
    fn state(&self) -> Option<TrackState> {
        if self.inits.is_empty() || self.timeline.is_empty() {
            return None;
        }
        let bandwidth = self
            .sizes
            .iter()
            .filter(|(_, d)| d.0 > 0)
            .map(|(bytes, d)| (*bytes as u64 * 8 * Ts90::HZ as u64) / d.0 as u64)
            .max()
            .unwrap_or(0);
        Some(TrackState {
            inits: self.inits.iter().cloned().collect(),
            bandwidth,
            timeline: self.timeline.entries().copied().collect(),
            info: self.info.clone(),
        })
    }
}

/// Inits kept per track: as many as the window keeps the bytes of.
use crate::hls::window::MAX_INITS;
