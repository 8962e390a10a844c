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
//! A new S (`publisher.dash.segment_sec` changed on a running server, SPEC §Config "Hot
//! apply") goes to both segmenters ([`DashSide::set_segment`]): each closes its open segment
//! at its next cut point and cuts with the new S from there, numbers continuing, and tells it
//! ([`HlsEvent::SegmentLength`]); the video's first new segment opens a Period
//! ([`Periods::resegment`]), so each Period's `SegmentTimeline` holds one S and a player sees
//! the change as the one discontinuity DASH has. The old Period stays listed while its
//! segments are in the window; the MPD's S-derived attributes (`minimumUpdatePeriod`,
//! `minBufferTime`, `suggestedPresentationDelay`, `timeShiftBufferDepth`) follow the new S at
//! once, and `maxSegmentDuration` is the longest listed segment's.
//!
//! A ladder change (rungs added, removed or re-encoded) keeps every kept rung's packager: the
//! registry records it ([`HlsRegistry::dash_ladder_changed`](crate::HlsRegistry::dash_ladder_changed)) and the MPD opens one Period
//! for the whole new ladder at the first segment every new rung has
//! ([`tributary_packager::Ladder`]), keeping its `availabilityStartTime`; the old Periods,
//! with a removed rung's Representation, stay while their segments are listed. Removing the
//! rung that packages the audio is the exception: no kept packager has the audio, so the
//! engine restarts the packagers (a new MPD) rather than go on without sound.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tributary_domain::config::DashSection;
use tributary_media::{Frame, MediaKind, SessionId, TrackInfo, Ts90};
use tributary_packager::{
    HlsConfig, HlsEvent, HlsSegmenter, InitName, PeriodMark, Periods, PlaylistEntry, SegmentFormat,
    Timeline, TimelineEntry, UnixMillis,
};

use crate::hls::window::Window;

/// How a rung packages DASH (`publisher.dash`, SPEC §Defaults; the reasons for each default
/// are on [`DashSection`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DashSettings {
    /// Whether this rung packages the stream's audio (SPEC §DASH: audio once per ladder,
    /// from the best rung). Default true.
    pub audio: bool,
    /// S in seconds (`segment_sec`). Default 2.0, HLS's: one set of cut points.
    pub segment_sec: f64,
    /// Segments listed (`window`). Default 12.
    pub window: usize,
    /// How long audio waits for the first video IDR (`pairing_sec`). Default 3.0.
    pub pairing_sec: f64,
    /// A track silent this long while the other flows is gone (`track_loss_sec`). Default 6.0.
    pub track_loss_sec: f64,
    /// Frames held per track at most (`queue_frames`). Default 900.
    pub queue_frames: usize,
}

impl Default for DashSettings {
    fn default() -> Self {
        Self::from(&DashSection::default())
    }
}

impl From<&DashSection> for DashSettings {
    fn from(section: &DashSection) -> Self {
        Self {
            audio: true,
            segment_sec: section.segment_sec,
            window: section.window,
            pairing_sec: section.pairing_sec,
            track_loss_sec: section.track_loss_sec,
            queue_frames: section.queue_frames,
        }
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
    /// The number of its first video segment: a ladder change that added this rung opens
    /// its Period there at the earliest ([`tributary_packager::Ladder`]).
    first_video: OnceLock<u64>,
    /// Frames dropped because a bounded queue (`queue_frames`) was full: audio waiting for
    /// the session's first video IDR, video held for an IDR past S. The output task stores
    /// it after each batch; `GET /metrics` reads it.
    dropped: AtomicU64,
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
    /// What was measured of the track when the init came out (an older Period's size and
    /// rates; the newest init's are the track's current ones).
    pub(crate) info: Option<TrackInfo>,
}

impl DashRung {
    pub(crate) fn new(window: usize, history: usize) -> Self {
        Self {
            video: Window::new(window, history),
            audio: Window::new(window, history),
            state: RwLock::new(RungState::default()),
            first_video: OnceLock::new(),
            dropped: AtomicU64::new(0),
        }
    }

    /// Frames dropped so far in this run because a queue was full
    /// (`tributary_dash_queue_dropped_frames_total`).
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The number of its first video segment, once published.
    pub(crate) fn first_video(&self) -> Option<u64> {
        self.first_video.get().copied()
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
    /// The session of the last frame: a new one pairs its tracks again.
    session: Option<SessionId>,
    /// Whether this session's audio may flow: the first video IDR came, or audio waited
    /// [`pairing`](Self::pairing) for it (SPEC §DASH "Tracks": a common anchor).
    paired: bool,
    /// Audio held while waiting for the first video IDR of the session (bounded by
    /// [`queue`](Self::queue)).
    held: VecDeque<(Frame, UnixMillis)>,
    /// How long audio waits for video (`pairing_sec`).
    pairing: i64,
    /// A track silent this long (media time of the other) is gone (`track_loss_sec`).
    track_loss: i64,
    /// Frames held per queue at most (`queue_frames`).
    queue: usize,
    /// Audio frames dropped because the pairing queue was full; whether the episode was
    /// logged.
    dropped: (u64, bool),
    /// The last DTS of video and audio, and whether each is gone (silent for
    /// [`track_loss`](Self::track_loss) while the other flows).
    last: [(Option<Ts90>, bool); 2],
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
    /// Audio: a later init that decodes as the current one does (same codec string, rate and
    /// channels; an input switch between two AAC encoders whose configs differ only in
    /// bytes), and the init its segments are listed under instead, so the switch keeps the
    /// Period (SPEC §DASH "Periods": a codec change starts one, a switch does not).
    alias: Option<(InitName, InitName)>,
    /// The last measured configuration of the track.
    info: Option<TrackInfo>,
}

impl DashSide {
    /// A side cutting as `config` says (the rung's HLS configuration with DASH's S; the
    /// format is fMP4 whatever HLS uses), listing and pairing as `settings` say.
    pub(crate) fn new(rung: Arc<DashRung>, config: HlsConfig, settings: DashSettings) -> Self {
        let window = settings.window;
        let track = || Track {
            segmenter: HlsSegmenter::new(HlsConfig {
                format: SegmentFormat::Fmp4,
                part: None,
                ..config
            }),
            timeline: Timeline::new(window),
            sizes: VecDeque::with_capacity(window + 1),
            inits: VecDeque::with_capacity(MAX_INITS),
            alias: None,
            info: None,
        };
        let mut video = track();
        video.segmenter = video.segmenter.with_dash_cuts(settings.queue_frames);
        Self {
            rung,
            video,
            audio: settings.audio.then(track),
            periods: Periods::new(),
            session: None,
            paired: false,
            held: VecDeque::new(),
            pairing: ticks(settings.pairing_sec),
            track_loss: ticks(settings.track_loss_sec),
            queue: settings.queue_frames.max(1),
            dropped: (0, false),
            last: [(None, false); 2],
            origin: None,
            origin_told: false,
        }
    }

    /// What readers see of this rung.
    pub(crate) fn rung(&self) -> &DashRung {
        &self.rung
    }

    /// `publisher.dash` changed on a running server (SPEC §Config "Hot apply": windows at
    /// once): `window` segments are listed from now on (a smaller window slides the oldest
    /// out of the MPD at once; they stay fetchable as retired ones, kept as `history` says),
    /// and the pairing time, track-loss time and queue bound apply to the next frames. S
    /// changes through [`set_segment`](Self::set_segment); whether this rung packages the
    /// audio stays as the run started.
    pub(crate) fn apply(&mut self, settings: &DashSettings, history: usize, now: Instant) {
        self.pairing = ticks(settings.pairing_sec);
        self.track_loss = ticks(settings.track_loss_sec);
        self.queue = settings.queue_frames.max(1);
        self.video.segmenter.set_dash_queue(self.queue);
        let window = settings.window.max(1);
        let rung = Arc::clone(&self.rung);
        let mut changed = self.video.resize(&rung.video, window, history, now);
        if let Some(audio) = &mut self.audio {
            changed |= audio.resize(&rung.audio, window, history, now);
        }
        if changed {
            self.publish_state();
        }
    }

    /// `segment_sec` changed on a running server: both tracks cut with `segment` from their
    /// next cut point (video: its next keyframe), numbers continuing; the first new video
    /// segment opens a Period (module doc).
    pub(crate) fn set_segment(&mut self, segment: Duration) {
        self.video.segmenter.set_segment(segment);
        if let Some(audio) = &mut self.audio {
            audio.segmenter.set_segment(segment);
        }
    }

    /// Takes one frame that arrived at `wall`.
    ///
    /// Audio waits (held, at most `queue_frames`) for the session's first video IDR and
    /// starts with it, audio before it left out, so both tracks start at a common anchor; after
    /// `pairing_sec` without one it starts alone. A track silent for `track_loss_sec` of the
    /// other's media time is gone: its open segment is closed so the MPD lists it, and the
    /// other track goes on alone until it comes back.
    pub(crate) fn push(&mut self, frame: &Frame, wall: UnixMillis) {
        let kind = frame.codec.kind();
        if kind == MediaKind::Data {
            return;
        }
        if self.session != Some(frame.session) {
            self.release(None);
            self.session = Some(frame.session);
            self.paired = self.audio.is_none();
        }
        self.watch_loss(kind, frame.dts);
        match kind {
            MediaKind::Video => {
                if !self.paired && frame.keyframe {
                    self.paired = true;
                    self.release(Some(frame.pts));
                }
                self.video.segmenter.push(frame, wall);
            }
            _ => {
                let Some(audio) = &mut self.audio else {
                    return;
                };
                if self.paired {
                    audio.segmenter.push(frame, wall);
                    return;
                }
                if self.held.len() >= self.queue {
                    self.dropped.0 += 1;
                    if !self.dropped.1 {
                        self.dropped.1 = true;
                        tracing::warn!(
                            limit = self.queue,
                            "DASH: audio waiting for video fills its queue; dropping audio"
                        );
                    }
                } else {
                    self.held.push_back((frame.clone(), wall));
                }
                let waited = self
                    .held
                    .front()
                    .is_some_and(|(first, _)| frame.dts.0 - first.dts.0 >= self.pairing);
                if waited {
                    tracing::info!(
                        "DASH: no video IDR within the pairing time; audio starts alone"
                    );
                    self.paired = true;
                    self.release(None);
                }
            }
        }
    }

    /// Feeds the held audio to its segmenter: from `from` (the first video IDR's PTS) on,
    /// or all of it.
    fn release(&mut self, from: Option<Ts90>) {
        self.dropped.1 = false;
        let Some(audio) = &mut self.audio else {
            self.held.clear();
            return;
        };
        for (frame, wall) in self.held.drain(..) {
            if from.is_none_or(|from| frame.pts.0 >= from.0) {
                audio.segmenter.push(&frame, wall);
            }
        }
    }

    /// Records a frame of `kind` at `dts`; closes the other track's open segment when it has
    /// been silent for the track-loss time.
    fn watch_loss(&mut self, kind: MediaKind, dts: Ts90) {
        let (this, other) = if kind == MediaKind::Video {
            (0, 1)
        } else {
            (1, 0)
        };
        self.last[this] = (Some(dts), false);
        let (Some(other_last), gone) = self.last[other] else {
            return;
        };
        if gone || dts.0 - other_last.0 < self.track_loss {
            return;
        }
        self.last[other].1 = true;
        let silent_ms = (dts.0 - other_last.0) / 90;
        if other == 0 {
            tracing::warn!(silent_ms, "DASH: video is gone; audio goes on alone");
            self.video.segmenter.finish();
        } else if let Some(audio) = &mut self.audio {
            tracing::warn!(silent_ms, "DASH: audio is gone; video goes on alone");
            audio.segmenter.finish();
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

    /// The stream ended: both tracks close their open segment (held audio included).
    pub(crate) fn finish(&mut self) {
        self.release(None);
        self.video.segmenter.finish();
        if let Some(audio) = &mut self.audio {
            audio.segmenter.finish();
        }
    }

    /// Publishes what the segmenters produced, and the frames dropped so far; returns the
    /// origin (wall time of media time 0) once, when the first segment made it known, for the
    /// registry.
    pub(crate) fn drain(&mut self, now: Instant) -> Option<UnixMillis> {
        let dropped = self.dropped.0 + self.video.segmenter.dropped();
        self.rung.dropped.store(dropped, Ordering::Relaxed);
        let mut changed = self.drain_track(true, now);
        if self.audio.is_some() {
            changed |= self.drain_track(false, now);
        }
        if changed {
            self.publish_state();
        }
        if self.origin_told {
            return None;
        }
        self.origin_told = self.origin.is_some();
        self.origin
    }

    /// Swaps in what the MPD lists of this rung: both timelines and the Periods they use.
    fn publish_state(&mut self) {
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
                HlsEvent::Segment(mut segment) => {
                    if let Some((new, listed)) = track.alias
                        && segment.init == Some(new)
                    {
                        segment.init = Some(listed);
                    }
                    self.origin.get_or_insert(UnixMillis(
                        segment.program_date_time.0 - segment.start.as_millis(),
                    ));
                    if video {
                        self.rung.first_video.get_or_init(|| segment.number);
                    }
                    let assigned = self.periods.assign(video, &segment);
                    if assigned.opened {
                        tracing::info!(
                            period = assigned.period,
                            session = segment.session.0,
                            "DASH: a new init opens a new Period"
                        );
                    }
                    let slid_out = track
                        .timeline
                        .push(&segment, assigned.period)
                        .map(|out| retired(out, segment.program_date_time));
                    if assigned.opened
                        && let Some(other) = other.as_deref_mut()
                    {
                        other
                            .timeline
                            .retag(segment.session, segment.start, assigned.period);
                    }
                    track
                        .sizes
                        .push_back((segment.bytes.len(), segment.duration));
                    let listed = track.listed();
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
                        info: track.info.clone(),
                    };
                    window.publish_init(init.name, init.bytes);
                    let listed = track.alias.map(|(_, listed)| listed);
                    let current = track
                        .inits
                        .iter()
                        .rev()
                        .find(|i| Some(i.name) == listed)
                        .or(track.inits.back());
                    let same = |a: &TrackInit| {
                        let channels = |i: &TrackInit| i.info.as_ref().and_then(|i| i.channels);
                        a.codecs == kept.codecs
                            && a.timescale == kept.timescale
                            && channels(a) == channels(&kept)
                    };
                    if !video
                        && let Some(current) = current.filter(|c| c.name != kept.name && same(c))
                    {
                        track.alias = Some((kept.name, current.name));
                        continue;
                    }
                    track.alias = None;
                    track.inits.retain(|i| i.name != kept.name);
                    if track.inits.len() == MAX_INITS {
                        track.inits.pop_front();
                    }
                    track.inits.push_back(kept);
                }
                HlsEvent::SegmentLength {
                    segment,
                    next_number,
                } => {
                    if video {
                        tracing::info!(
                            segment_sec = segment.as_secs_f64(),
                            next_number,
                            "DASH segment length changed: a new Period opens at the next segment"
                        );
                    }
                    self.periods.resegment(video);
                }
                HlsEvent::Omitted { track: id, codec } => {
                    tracing::warn!(track = id.0, %codec, "DASH cannot carry this codec; track omitted");
                    window.warn(format!(
                        "dash: track {} ({codec}) omitted: DASH cannot carry {codec}",
                        id.0
                    ));
                }
                HlsEvent::QueueFull { track: id, limit } => {
                    tracing::warn!(
                        track = id.0,
                        limit,
                        "DASH: no IDR and the queue is full; dropping frames until one comes"
                    );
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
    /// Lists `window` segments from now on, `history` retired ones kept in `served`; whether
    /// entries slid out of the listing (or its bound changed at all).
    fn resize(&mut self, served: &Window, window: usize, history: usize, now: Instant) -> bool {
        let resized = self.timeline.window() != window;
        let slid_out: Vec<PlaylistEntry> = self
            .timeline
            .set_window(window)
            .into_iter()
            .map(|out| retired(out, UnixMillis(0)))
            .collect();
        let listed = self.listed();
        served.resize(window, history, &slid_out, listed, None, now);
        resized || !slid_out.is_empty()
    }

    /// Drops the sizes of segments no longer listed; the listed duration.
    fn listed(&mut self) -> Ts90 {
        while self.sizes.len() > self.timeline.entries().len() {
            self.sizes.pop_front();
        }
        Ts90(self.timeline.entries().map(|e| e.duration.0).sum())
    }

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

/// A timeline entry that left the MPD, as its served window retires it.
fn retired(out: TimelineEntry, program_date_time: UnixMillis) -> PlaylistEntry {
    PlaylistEntry {
        number: out.number,
        init: Some(out.init),
        duration: out.duration,
        discontinuity: false,
        program_date_time,
    }
}

/// `seconds` in 90 kHz ticks (`pairing_sec`, `track_loss_sec`).
fn ticks(seconds: f64) -> i64 {
    Ts90::from_duration(Duration::from_secs_f64(seconds)).0
}
