//! The intake in front of a stream's input buffer: one port per configured input, one selected.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use tributary_media::{Frame, MediaKind, Ts90};

use crate::hub::{lock, read, write};
use crate::{BufferId, HubError, SessionReason, Writer};

/// A port's key in its [`Intake`]: the name the owner gives a port when it adds it and uses to
/// select or remove it later. The intake attaches no meaning to the value beyond identity and
/// ordering ([`Intake::health`] lists ports by key); in particular it is not the input's
/// priority. The stream manager keeps a port's key while its input moves between priorities,
/// so that a moved input keeps its port, counters and GOP cache, and never reuses a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortKey(pub u32);

/// The intake of one stream: owns the writer of the stream's input buffer and lets exactly one
/// of its [`Port`]s write through it.
///
/// Every configured input writes to its own port, selected or not; the port always updates its
/// health counters (read by the stream manager, [`Intake::health`]) and, when it is a hot
/// standby, its own GOP cache. Only the selected port reaches the buffer. The manager decides;
/// the intake only executes [`select`](Self::select) (STYLE.md §3).
///
/// # Switching
///
/// [`select`](Self::select) moves the writer token at once: the previously selected port stops
/// reaching the buffer immediately. The new port's frames enter from its first keyframe (frames
/// before it, audio included, are dropped), and that keyframe begins a new session with the
/// given reason. A hot-standby port with a cached GOP skips the wait: its cached frames, from
/// their keyframe, are written at `select` time, then its live frames follow.
///
/// A port that has never carried video is treated as audio-only once [`AUDIO_ONLY_AFTER`]
/// audio frames have passed during a handoff without video: its next audio frame then commits.
///
/// Cheap to clone; clones share the intake. Dropping the last clone and every port drops the
/// writer, which deletes the buffer.
#[derive(Clone)]
pub struct Intake {
    inner: Arc<IntakeInner>,
}

/// One input's entry into an [`Intake`]. Cheap to clone, `Send + Sync`; [`write`](Self::write)
/// is synchronous and may be called from any task.
#[derive(Clone)]
pub struct Port {
    shared: Arc<PortShared>,
    intake: Arc<IntakeInner>,
}

/// A snapshot of one port's counters, for the stream manager's health signals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortHealth {
    /// The port's key.
    pub key: PortKey,
    /// Whether the port keeps a GOP cache for an instant switch.
    pub hot_standby: bool,
    /// Whether the port holds the writer token (possibly still waiting for its first keyframe,
    /// see [`Intake::handoff_pending`]).
    pub selected: bool,
    /// Frames written to the port (empty payloads excluded), selected or not.
    pub frames: u64,
    /// Payload bytes written to the port.
    pub bytes: u64,
    /// Video keyframes written to the port.
    pub keyframes: u64,
    /// Arrival instant ([`Frame::arrival`]) of the latest frame.
    pub last_frame_at: Option<Instant>,
    /// Arrival instant of the latest video keyframe.
    pub last_keyframe_at: Option<Instant>,
    /// Arrival instant of the latest video frame (frozen and lost-track signals).
    pub last_video_at: Option<Instant>,
    /// Arrival instant of the latest audio frame (lost-track signal).
    pub last_audio_at: Option<Instant>,
    /// PTS of the latest video frame as the source stamped it (ports see frames before the
    /// timeline normaliser): whether it advances tells frozen video from moving video.
    pub video_pts: Option<Ts90>,
    /// Errors reported since the port was added.
    pub errors: u64,
    /// The latest reported errors, oldest first (at most [`RECENT_ERRORS`]).
    pub recent_errors: Vec<PortError>,
    /// Frames in the port's standby GOP cache.
    pub cached_frames: usize,
}

/// One error an input reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortError {
    /// When it was reported.
    pub at: Instant,
    /// What happened.
    pub message: String,
}

impl Intake {
    /// An intake in front of `writer`'s buffer, with no ports and none selected.
    pub fn new(writer: Writer) -> Self {
        let max_gop = writer.capacity();
        Self {
            inner: Arc::new(IntakeInner {
                max_gop,
                retargets: AtomicU64::new(0),
                selected: AtomicU64::new(NONE),
                state: Mutex::new(IntakeState {
                    writer,
                    selected: None,
                    handoff: None,
                    committed_at: None,
                }),
                ports: RwLock::new(Vec::new()),
                next_uid: AtomicU64::new(1),
            }),
        }
    }

    /// The buffer this intake feeds (another one after [`retarget`](Self::retarget)).
    pub fn id(&self) -> BufferId {
        self.inner.id()
    }

    /// Points the intake at another buffer: `writer`'s from now on; returns the writer it
    /// held. The ports and the selection stay as they are, so no input reconnects; the
    /// selected port's frames reach the new buffer from its next keyframe, which begins a
    /// session there with `reason` (a reader of the new buffer starts at a keyframe, as after
    /// a switch). How the stream manager's intake follows a stream between passthrough (the
    /// ingest feeds the main buffer) and transcoding (it feeds the raw buffer FFmpeg reads).
    pub fn retarget(&self, writer: Writer, reason: SessionReason) -> Writer {
        let mut state = lock(&self.inner.state);
        let old = std::mem::replace(&mut state.writer, writer);
        self.inner.retargets.fetch_add(1, Ordering::Relaxed);
        if state.selected.is_some() {
            state.handoff = Some(Handoff {
                reason,
                audio_waited: 0,
            });
        }
        tracing::info!(from = %old.id(), to = %state.writer.id(), %reason,
            "intake retargeted; the selected input enters at its next keyframe");
        old
    }

    /// How many times the intake was retargeted: lets a party that will retarget it later
    /// tell whether someone else did in between.
    pub fn retargets(&self) -> u64 {
        self.inner.retargets.load(Ordering::Relaxed)
    }

    /// Adds a port under `key`. A `hot_standby` port keeps a cache of its latest GOP while
    /// unselected. Fails if the key has a port.
    pub fn add_port(&self, key: PortKey, hot_standby: bool) -> Result<Port, HubError> {
        let mut ports = write(&self.inner.ports);
        if ports.iter().any(|port| port.key == key) {
            drop(ports);
            return Err(HubError::PortExists {
                id: self.inner.id(),
                key,
            });
        }
        let shared = Arc::new(PortShared {
            uid: self.inner.next_uid.fetch_add(1, Ordering::Relaxed),
            key,
            hot_standby,
            removed: AtomicBool::new(false),
            state: Mutex::new(PortState::new(hot_standby)),
        });
        let at = ports.partition_point(|port| port.key < key);
        ports.insert(at, Arc::clone(&shared));
        Ok(Port {
            shared,
            intake: Arc::clone(&self.inner),
        })
    }

    /// Removes the port with `key`; later writes through it fail. If it was selected, no
    /// port is selected afterwards. Returns whether it existed.
    pub fn remove_port(&self, key: PortKey) -> bool {
        let removed = {
            let mut ports = write(&self.inner.ports);
            let Some(at) = ports.iter().position(|port| port.key == key) else {
                return false;
            };
            ports.remove(at)
        };
        removed.removed.store(true, Ordering::Release);
        let mut state = lock(&self.inner.state);
        if state.selected == Some(removed.uid) {
            state.selected = None;
            state.handoff = None;
            self.inner.selected.store(NONE, Ordering::Release);
        }
        true
    }

    /// The port with `key`, if any.
    pub fn port(&self, key: PortKey) -> Option<Port> {
        let shared = read(&self.inner.ports)
            .iter()
            .find(|port| port.key == key)
            .cloned()?;
        Some(Port {
            shared,
            intake: Arc::clone(&self.inner),
        })
    }

    /// Moves the writer token to the port with `key` (see the type doc, "Switching"). The
    /// new session begins, with `reason`, at the frame that commits the switch.
    ///
    /// Selecting the port that already delivers changes nothing; a new timeline from the same
    /// input is [`Port::restart`].
    ///
    /// Fails if there is no such port, or if replaying a standby GOP hits a deleted buffer.
    pub fn select(&self, key: PortKey, reason: SessionReason) -> Result<(), HubError> {
        let Some(port) = self.port(key) else {
            return Err(HubError::UnknownPort {
                id: self.inner.id(),
                key,
            });
        };
        // Lock order everywhere: port state, then intake state, then the ring.
        let port_state = lock(&port.shared.state);
        let mut state = lock(&self.inner.state);
        if state.selected == Some(port.shared.uid) && state.handoff.is_none() {
            // Already delivering: replaying its GOP again would repeat frames.
            return Ok(());
        }
        state.selected = Some(port.shared.uid);
        state.handoff = Some(Handoff {
            reason,
            audio_waited: 0,
        });
        self.inner
            .selected
            .store(port.shared.uid, Ordering::Release);
        let replay = port_state.gop.as_ref().filter(|gop| gop.ready());
        let Some(gop) = replay else {
            tracing::info!(buffer = %state.writer.id(), port = key.0, %reason,
                "input selected; waiting for its first keyframe");
            return Ok(());
        };
        state.handoff = None;
        state.committed_at = Some(Instant::now());
        state.writer.start_session(reason);
        for frame in &gop.frames {
            state.writer.write(frame.clone())?;
        }
        tracing::info!(buffer = %state.writer.id(), port = key.0, %reason,
            replayed = gop.frames.len(), "input selected from its standby GOP");
        Ok(())
    }

    /// Selects no port: nothing reaches the buffer until the next [`select`](Self::select)
    /// (every input exhausted, or the stream stopping).
    pub fn deselect(&self) {
        let mut state = lock(&self.inner.state);
        state.selected = None;
        state.handoff = None;
        self.inner.selected.store(NONE, Ordering::Release);
    }

    /// The key of the selected port, if any.
    pub fn selected(&self) -> Option<PortKey> {
        let uid = lock(&self.inner.state).selected?;
        read(&self.inner.ports)
            .iter()
            .find(|port| port.uid == uid)
            .map(|port| port.key)
    }

    /// Whether the selected port is still waiting for the keyframe that commits the switch.
    pub fn handoff_pending(&self) -> bool {
        lock(&self.inner.state).handoff.is_some()
    }

    /// When the latest switch committed: the selected port's first keyframe reached the
    /// buffer, or its standby GOP was replayed at [`select`](Self::select). The manager
    /// measures a switch's output gap (`gap_ms`) up to here. Restarts of the selected port
    /// ([`Port::restart`]) commit too.
    pub fn committed_at(&self) -> Option<Instant> {
        lock(&self.inner.state).committed_at
    }

    /// A snapshot of every port's counters, by key.
    pub fn health(&self) -> Vec<PortHealth> {
        let ports: Vec<Arc<PortShared>> = read(&self.inner.ports).clone();
        ports.iter().map(|port| port.health(&self.inner)).collect()
    }
}

impl Port {
    /// The port's key.
    pub fn key(&self) -> PortKey {
        self.shared.key
    }

    /// Writes one frame from this input: always updates the port's counters (and standby GOP
    /// cache); reaches the buffer only if this port is selected and past its first keyframe.
    /// An empty payload is ignored.
    ///
    /// Fails if the port was removed or the buffer deleted; an unselected port's write is `Ok`.
    pub fn write(&self, frame: Frame) -> Result<(), HubError> {
        if self.shared.removed.load(Ordering::Acquire) {
            return Err(self.unknown());
        }
        if frame.payload.is_empty() {
            return Ok(());
        }
        let mut port = lock(&self.shared.state);
        port.record(&frame, self.intake.max_gop);
        if self.intake.selected.load(Ordering::Acquire) != self.shared.uid {
            return Ok(());
        }
        let mut state = lock(&self.intake.state);
        if state.selected != Some(self.shared.uid) {
            return Ok(());
        }
        if let Some(handoff) = &mut state.handoff {
            let kind = frame.codec.kind();
            let commits = frame.keyframe
                && match kind {
                    MediaKind::Video => true,
                    MediaKind::Audio => {
                        !port.seen_video && handoff.audio_waited >= AUDIO_ONLY_AFTER
                    }
                    MediaKind::Data => false,
                };
            if !commits {
                if kind == MediaKind::Audio {
                    handoff.audio_waited += 1;
                }
                return Ok(());
            }
            let reason = handoff.reason;
            state.handoff = None;
            state.committed_at = Some(Instant::now());
            state.writer.start_session(reason);
            tracing::info!(buffer = %state.writer.id(), port = self.shared.key.0, %reason,
                "input switch committed at its first keyframe");
        }
        drop(port);
        state.writer.write(frame)
    }

    /// The source behind this port began a new timeline (reconnect, stall recovery, new
    /// parameter sets). If the port is selected, its frames stop reaching the buffer until its
    /// next keyframe, which begins a new session with `reason`; either way its standby GOP
    /// cache is emptied.
    pub fn restart(&self, reason: SessionReason) {
        let mut port = lock(&self.shared.state);
        if let Some(gop) = &mut port.gop {
            gop.reset();
        }
        let mut state = lock(&self.intake.state);
        if state.selected == Some(self.shared.uid) {
            state.handoff = Some(Handoff {
                reason,
                audio_waited: 0,
            });
        }
    }

    /// Records an error the input hit (`now`: when), for health and the input's error history.
    pub fn report_error(&self, now: Instant, message: impl Into<String>) {
        let mut port = lock(&self.shared.state);
        port.errors += 1;
        if port.recent_errors.len() == RECENT_ERRORS {
            port.recent_errors.pop_front();
        }
        port.recent_errors.push_back(PortError {
            at: now,
            message: message.into(),
        });
    }

    /// A snapshot of this port's counters.
    pub fn health(&self) -> PortHealth {
        self.shared.health(&self.intake)
    }

    /// Whether this port holds the writer token.
    pub fn is_selected(&self) -> bool {
        self.intake.selected.load(Ordering::Acquire) == self.shared.uid
    }

    fn unknown(&self) -> HubError {
        HubError::UnknownPort {
            id: self.intake.id(),
            key: self.shared.key,
        }
    }
}

impl fmt::Display for PortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Intake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intake")
            .field("id", &self.inner.try_id())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Port")
            .field("buffer", &self.intake.try_id())
            .field("key", &self.shared.key)
            .finish_non_exhaustive()
    }
}

/// State shared by an intake's clones and ports.
struct IntakeInner {
    /// [`Intake::retargets`].
    retargets: AtomicU64,
    /// Frames a standby GOP cache holds at most: the buffer's capacity, since a GOP longer
    /// than that could not be replayed whole anyway.
    max_gop: usize,
    /// Uid of the selected port ([`NONE`] when none): lets unselected ports skip the intake
    /// lock. Authoritative only under `state`'s lock.
    selected: AtomicU64,
    /// The writer token and the selection. Locked after a port's state, before the ring.
    state: Mutex<IntakeState>,
    /// The ports, by key.
    ports: RwLock<Vec<Arc<PortShared>>>,
    /// Next port uid; uids never repeat, so a removed port cannot match a later selection.
    next_uid: AtomicU64,
}

impl IntakeInner {
    /// The buffer fed now, for errors and logs. Takes the state lock: not under it.
    fn id(&self) -> BufferId {
        lock(&self.state).writer.id().clone()
    }

    /// [`id`](Self::id) without waiting, for `Debug` (which may run under the lock).
    fn try_id(&self) -> Option<BufferId> {
        self.state.try_lock().ok().map(|s| s.writer.id().clone())
    }
}

struct IntakeState {
    writer: Writer,
    /// Uid of the port holding the token.
    selected: Option<u64>,
    /// Set while the selected port waits for the keyframe that commits the switch.
    handoff: Option<Handoff>,
    /// When the latest handoff committed.
    committed_at: Option<Instant>,
}

struct Handoff {
    /// The reason for the session that the committing frame begins.
    reason: SessionReason,
    /// Audio frames dropped while waiting (see [`AUDIO_ONLY_AFTER`]).
    audio_waited: u32,
}

/// One port, as its intake holds it.
struct PortShared {
    /// Identity within the intake, never reused.
    uid: u64,
    key: PortKey,
    hot_standby: bool,
    /// Set when the port is removed; writes through it fail from then on.
    removed: AtomicBool,
    /// Counters and the standby GOP cache; one short lock per frame, no queue.
    state: Mutex<PortState>,
}

impl PortShared {
    fn health(&self, intake: &IntakeInner) -> PortHealth {
        let selected = intake.selected.load(Ordering::Acquire) == self.uid;
        let port = lock(&self.state);
        PortHealth {
            key: self.key,
            hot_standby: self.hot_standby,
            selected,
            frames: port.frames,
            bytes: port.bytes,
            keyframes: port.keyframes,
            last_frame_at: port.last_frame_at,
            last_keyframe_at: port.last_keyframe_at,
            last_video_at: port.last_video_at,
            last_audio_at: port.last_audio_at,
            video_pts: port.video_pts,
            errors: port.errors,
            recent_errors: port.recent_errors.iter().cloned().collect(),
            cached_frames: port.gop.as_ref().map_or(0, |gop| gop.frames.len()),
        }
    }
}

struct PortState {
    frames: u64,
    bytes: u64,
    keyframes: u64,
    last_frame_at: Option<Instant>,
    last_keyframe_at: Option<Instant>,
    last_video_at: Option<Instant>,
    last_audio_at: Option<Instant>,
    video_pts: Option<Ts90>,
    errors: u64,
    /// Bounded: at most [`RECENT_ERRORS`].
    recent_errors: VecDeque<PortError>,
    /// Whether this input has ever carried video: then only a video keyframe commits a switch.
    seen_video: bool,
    /// The standby GOP cache (hot-standby ports only).
    gop: Option<Gop>,
}

impl PortState {
    fn new(hot_standby: bool) -> Self {
        Self {
            frames: 0,
            bytes: 0,
            keyframes: 0,
            last_frame_at: None,
            last_keyframe_at: None,
            last_video_at: None,
            last_audio_at: None,
            video_pts: None,
            errors: 0,
            recent_errors: VecDeque::new(),
            seen_video: false,
            gop: hot_standby.then(Gop::default),
        }
    }

    fn record(&mut self, frame: &Frame, max_gop: usize) {
        let kind = frame.codec.kind();
        let video = kind == MediaKind::Video;
        self.frames += 1;
        self.bytes += frame.payload.len() as u64;
        self.last_frame_at = Some(frame.arrival);
        match kind {
            MediaKind::Video => {
                self.last_video_at = Some(frame.arrival);
                self.video_pts = Some(frame.pts);
                if frame.keyframe {
                    self.keyframes += 1;
                    self.last_keyframe_at = Some(frame.arrival);
                }
            }
            MediaKind::Audio => self.last_audio_at = Some(frame.arrival),
            MediaKind::Data => {}
        }
        let first_video = video && !self.seen_video;
        self.seen_video |= video;
        if let Some(gop) = &mut self.gop {
            gop.push(frame, self.seen_video, first_video, max_gop);
        }
    }
}

/// A hot-standby port's latest GOP: from its latest video keyframe (or, for an input that has
/// carried no video, its last [`crate::ring::AUDIO_WINDOW`] audio frames). Bounded by the
/// buffer's capacity and [`crate::DEFAULT_MAX_BYTES`]; a GOP that outgrows them is discarded
/// until the next keyframe.
#[derive(Default)]
struct Gop {
    frames: VecDeque<Frame>,
    bytes: usize,
    /// Whether `frames` starts at a sync point.
    valid: bool,
}

impl Gop {
    fn push(&mut self, frame: &Frame, seen_video: bool, first_video: bool, max_frames: usize) {
        let kind = frame.codec.kind();
        if kind == MediaKind::Video && frame.keyframe {
            self.reset();
            self.valid = true;
        } else if first_video {
            // Audio-only until now: that window is no start for a video stream.
            self.reset();
        }
        if !seen_video {
            self.valid = true;
            if self.frames.len() as u64 >= crate::ring::AUDIO_WINDOW {
                self.pop_front();
            }
            if !(kind == MediaKind::Audio && frame.keyframe) && self.frames.is_empty() {
                return;
            }
        }
        if !self.valid {
            return;
        }
        self.bytes += frame.payload.len();
        self.frames.push_back(frame.clone());
        if self.frames.len() > max_frames || self.bytes > crate::DEFAULT_MAX_BYTES {
            self.reset();
        }
    }

    /// Whether a switch can start from the cache.
    fn ready(&self) -> bool {
        self.valid && !self.frames.is_empty()
    }

    fn pop_front(&mut self) {
        if let Some(frame) = self.frames.pop_front() {
            self.bytes -= frame.payload.len();
        }
    }

    fn reset(&mut self) {
        self.frames.clear();
        self.bytes = 0;
        self.valid = false;
    }
}

/// Audio frames a handoff waits for a video keyframe from an input that has never carried
/// video, before it takes the input for audio-only and commits at an audio frame (about 1.4 s
/// of 48 kHz AAC). A video input's first keyframe normally arrives well within that.
pub const AUDIO_ONLY_AFTER: u32 = 64;

/// Errors kept per port (SPEC §Stream manager: each input keeps 5 errors).
pub const RECENT_ERRORS: usize = 5;

/// `IntakeInner::selected` when no port is selected (uids start at 1).
const NONE: u64 = 0;
