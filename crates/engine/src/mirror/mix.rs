//! One rung of an ABR mixer (SPEC §Mixer "ABR mixer"): the rung's video from the video
//! stream's rendition, the audio stream's audio, interleaved by timestamp into the rung's
//! buffer. Sans-IO: the tap feeds it deliveries and writes what it emits.
//!
//! - **Audio timestamps** arrive already on the video's timeline (the audio tap maps them
//!   once for every rung, see [`AudioClock`]), so every rung carries the same audio frames at
//!   the same instants and a player switching rungs hears no jump.
//! - **Interleaving.** FFmpeg's output reaches the rendition some hundreds of milliseconds
//!   after its source, while the audio stream's frames come straight from its buffer: audio
//!   waits in a bounded queue and is written once the video has reached its timestamp, so
//!   each segment holds the same span of audio and video.
//! - **Sessions.** A rung starts writing at a video keyframe once audio is there (with
//!   `audio_failure=continue`, also after [`AUDIO_GRACE`] without it, video alone). Audio that
//!   appears in a session begun without it, or returns after `audio_failure=down` held the
//!   video back, starts a new session (`mixer_cycle`) at the next keyframe; a new session of
//!   the upstream rung starts one (`reconnect`) too.
//! - **Tracks.** The audio takes the track id the upstream rung gave its own (dropped) audio,
//!   so the rung keeps its track layout; before that is known, the id after the video's.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tributary_domain::protocol::AudioFailure;
use tributary_hub::SessionReason;
use tributary_media::{Frame, MediaKind, TrackId, Ts90};

/// With `audio_failure=continue`, how long a rung waits for audio before it starts on video
/// alone.
pub(crate) const AUDIO_GRACE: Duration = Duration::from_secs(2);
/// Audio frames a rung holds while its video catches up: about 10 s of 48 kHz AAC. Beyond it
/// the oldest goes (counted): the video stalled, and stale audio is worth nothing.
pub(crate) const AUDIO_QUEUE: usize = 512;

/// What a rung writes into its buffer.
#[derive(Debug)]
pub(crate) enum Emit {
    /// Start a new session with this reason before the next frame.
    Session(SessionReason),
    /// Write this frame.
    Frame(Frame),
}

/// The mixing state of one rung.
#[derive(Debug)]
pub(crate) struct RungMix {
    failure: AudioFailure,
    /// When this rung started (the grace for audio runs from here).
    started: Instant,
    /// Whether the rung has begun a session it writes into.
    writing: bool,
    /// Whether the current session carries audio.
    with_audio: bool,
    /// A new session is due at the next video keyframe, for this reason.
    due: Option<SessionReason>,
    /// The upstream rung's current session (a change starts one here).
    upstream_session: Option<tributary_media::SessionId>,
    /// The track id of the upstream rung's own audio, once seen.
    audio_track: Option<TrackId>,
    /// The highest video track id seen.
    video_track: Option<TrackId>,
    /// DTS of the last video frame written.
    video_dts: Option<Ts90>,
    /// Audio waiting for the video to reach it.
    pending: VecDeque<Frame>,
    /// Audio frames dropped from a full queue.
    dropped: u64,
}

impl RungMix {
    pub(crate) fn new(failure: AudioFailure, started: Instant) -> Self {
        Self {
            failure,
            started,
            writing: false,
            with_audio: false,
            due: None,
            upstream_session: None,
            audio_track: None,
            video_track: None,
            video_dts: None,
            pending: VecDeque::with_capacity(64),
            dropped: 0,
        }
    }

    /// Audio frames lost to a full queue so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// A frame of the upstream rung: its video is written (with due audio before it), its
    /// audio only lends its track id. `audio_up`: whether the audio stream is delivering.
    pub(crate) fn upstream(
        &mut self,
        frame: Frame,
        audio_up: bool,
        now: Instant,
        emit: &mut impl FnMut(Emit),
    ) {
        match frame.codec.kind() {
            MediaKind::Audio => {
                self.audio_track.get_or_insert(frame.track);
                return;
            }
            MediaKind::Video => {}
            _ => return,
        }
        self.video_track = Some(self.video_track.map_or(frame.track, |t| t.max(frame.track)));
        let renewed = self.upstream_session.is_some_and(|s| s != frame.session);
        self.upstream_session = Some(frame.session);
        if renewed && self.writing {
            self.due.get_or_insert(SessionReason::Reconnect);
        }
        if !audio_up && self.failure == AudioFailure::Down {
            // The input is down without its audio: the rung holds its video back, and the
            // return of audio starts a new session.
            if self.writing {
                self.writing = false;
                self.due = None;
            }
            self.pending.clear();
            return;
        }
        if !self.writing {
            let audio_ready = !self.pending.is_empty();
            let waited = now.saturating_duration_since(self.started) >= AUDIO_GRACE;
            let may_start = audio_ready || (self.failure == AudioFailure::Continue && waited);
            if !(frame.keyframe && may_start) {
                return;
            }
            let reason = if self.video_dts.is_some() {
                SessionReason::MixerCycle
            } else {
                SessionReason::Fresh
            };
            emit(Emit::Session(reason));
            self.writing = true;
            self.with_audio = audio_ready;
            self.due = None;
            // Audio from before this keyframe belongs to no segment of the new session.
            self.pending.retain(|a| a.dts >= frame.dts);
        } else if let Some(reason) = self.due.filter(|_| frame.keyframe) {
            emit(Emit::Session(reason));
            self.due = None;
            self.with_audio = !self.pending.is_empty();
            self.pending.retain(|a| a.dts >= frame.dts);
        }
        while let Some(audio) = self.pending.front() {
            if audio.dts > frame.dts {
                break;
            }
            let audio = self.pending.pop_front().expect("front exists");
            if self.with_audio {
                emit(Emit::Frame(audio));
            }
        }
        self.video_dts = Some(frame.dts);
        emit(Emit::Frame(frame));
    }

    /// An audio frame of the audio stream, already on the video's timeline.
    pub(crate) fn audio(&mut self, mut frame: Frame) {
        frame.track = self
            .audio_track
            .unwrap_or_else(|| TrackId(self.video_track.map_or(1, |t| t.0.saturating_add(1))));
        if self.writing && !self.with_audio {
            // Audio joins a session that began without it: a new one at the next keyframe.
            self.due.get_or_insert(SessionReason::MixerCycle);
        }
        if self.pending.len() == AUDIO_QUEUE {
            self.pending.pop_front();
            self.dropped += 1;
        }
        self.pending.push_back(frame);
    }
}

/// The video timeline against the wall clock, shared by the audio tap: the latest frame of
/// the ladder's raw ingest buffer (`dts`, and its arrival), whose timestamps FFmpeg's output
/// keeps. The raw buffer, not a rendition, because a rendition's frames arrive FFmpeg's
/// latency after their source: audio placed by them would lag the picture by as much.
/// Written by one task, read by another; atomics, no lock.
#[derive(Debug)]
pub(crate) struct AudioClock {
    base: std::time::Instant,
    /// Nanoseconds after `base` plus one of the reference's arrival; 0 = none yet.
    at: AtomicU64,
    dts: AtomicI64,
    /// Whether the audio stream is delivering (`audio_failure=down` holds the video back).
    pub(crate) audio_up: AtomicBool,
}

impl AudioClock {
    pub(crate) fn new(base: std::time::Instant) -> Self {
        Self {
            base,
            at: AtomicU64::new(0),
            dts: AtomicI64::new(0),
            audio_up: AtomicBool::new(false),
        }
    }

    /// A video frame of the raw ingest buffer: `dts`, arrived at `arrival`.
    pub(crate) fn video(&self, dts: Ts90, arrival: std::time::Instant) {
        let nanos = arrival.saturating_duration_since(self.base).as_nanos();
        self.dts.store(dts.0, Ordering::Relaxed);
        self.at.store(
            u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1,
            Ordering::Release,
        );
    }

    /// The video timeline's value at `instant`, once a reference exists.
    pub(crate) fn at(&self, instant: std::time::Instant) -> Option<Ts90> {
        let at = self.at.load(Ordering::Acquire).checked_sub(1)?;
        let dts = self.dts.load(Ordering::Relaxed);
        let reference = self.base + Duration::from_nanos(at);
        let ticks = |d: Duration| i64::try_from(d.as_micros() * 9 / 100).unwrap_or(i64::MAX);
        Some(if instant >= reference {
            Ts90(dts.saturating_add(ticks(instant - reference)))
        } else {
            Ts90(dts.saturating_sub(ticks(reference - instant)))
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tributary_media::{Codec, SessionId};

    use super::*;

    fn frame(codec: Codec, track: u16, dts: i64, keyframe: bool, session: u64) -> Frame {
        Frame {
            track: TrackId(track),
            codec,
            pts: Ts90(dts),
            dts: Ts90(dts),
            keyframe,
            session: SessionId(session),
            arrival: std::time::Instant::now(),
            payload: Bytes::from_static(b"x"),
            config: None,
        }
    }

    fn video(dts: i64, keyframe: bool) -> Frame {
        frame(Codec::H264, 0, dts, keyframe, 1)
    }

    fn audio(dts: i64) -> Frame {
        frame(Codec::Aac, 7, dts, true, 9)
    }

    /// What `emit` received, as `S(reason)`, `V(dts)` and `A(dts, track)`.
    fn run(mix: &mut RungMix, frame: Frame, up: bool, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        mix.upstream(frame, up, now, &mut |e| {
            out.push(match e {
                Emit::Session(r) => format!("S({r})"),
                Emit::Frame(f) if f.codec.kind() == MediaKind::Video => format!("V({})", f.dts.0),
                Emit::Frame(f) => format!("A({},{})", f.dts.0, f.track.0),
            });
        });
        out
    }

    /// A rung (`audio_failure=down`) that began its session at video 0 with audio 0.
    fn writing_with_audio() -> (Instant, RungMix) {
        let t0 = Instant::now();
        let mut mix = RungMix::new(AudioFailure::Down, t0);
        mix.audio(audio(0));
        assert_eq!(
            run(&mut mix, video(0, true), true, t0),
            ["S(fresh)", "A(0,1)", "V(0)"]
        );
        (t0, mix)
    }

    #[tokio::test(start_paused = true)]
    async fn a_rung_starts_at_a_keyframe_with_audio_interleaved_by_timestamp() {
        let t0 = Instant::now();
        let mut mix = RungMix::new(AudioFailure::Down, t0);
        // The upstream rung's own audio lends its track id and is never written.
        assert!(run(&mut mix, frame(Codec::Aac, 1, 0, true, 1), true, t0).is_empty());
        // No audio yet: the keyframe waits.
        assert!(run(&mut mix, video(0, true), true, t0).is_empty());
        mix.audio(audio(2_000));
        mix.audio(audio(5_000));
        // Not a keyframe: still waiting.
        assert!(run(&mut mix, video(3_000, false), true, t0).is_empty());
        assert_eq!(
            run(&mut mix, video(6_000, true), true, t0),
            ["S(fresh)", "V(6000)"],
            "audio older than the keyframe opens no segment"
        );
        mix.audio(audio(7_000));
        mix.audio(audio(11_000));
        assert_eq!(
            run(&mut mix, video(9_000, false), true, t0),
            ["A(7000,1)", "V(9000)"]
        );
        assert_eq!(
            run(&mut mix, video(12_000, false), true, t0),
            ["A(11000,1)", "V(12000)"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn audio_down_holds_video_back_and_its_return_cycles_the_session() {
        let (t0, mut mix) = writing_with_audio();
        // Audio goes: nothing is written.
        assert!(run(&mut mix, video(3_000, false), false, t0).is_empty());
        assert!(run(&mut mix, video(6_000, true), false, t0).is_empty());
        // Audio returns: a new session at the next keyframe.
        mix.audio(audio(8_000));
        assert!(run(&mut mix, video(9_000, false), true, t0).is_empty());
        assert_eq!(
            run(&mut mix, video(12_000, true), true, t0),
            ["S(mixer_cycle)", "V(12000)"]
        );
        mix.audio(audio(13_000));
        assert_eq!(
            run(&mut mix, video(15_000, false), true, t0),
            ["A(13000,1)", "V(15000)"],
            "no upstream audio seen: the track after the video's"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_continue_video_starts_alone_after_the_grace_and_audio_rejoins() {
        let t0 = Instant::now();
        let mut mix = RungMix::new(AudioFailure::Continue, t0);
        assert!(run(&mut mix, video(0, true), false, t0).is_empty());
        tokio::time::advance(AUDIO_GRACE).await;
        let now = Instant::now();
        assert_eq!(
            run(&mut mix, video(3_000, true), false, now),
            ["S(fresh)", "V(3000)"]
        );
        assert_eq!(run(&mut mix, video(6_000, false), false, now), ["V(6000)"]);
        // Audio appears: it joins in a new session from the next keyframe.
        mix.audio(audio(7_000));
        mix.audio(audio(10_000));
        assert_eq!(run(&mut mix, video(9_000, false), true, now), ["V(9000)"]);
        assert_eq!(
            run(&mut mix, video(12_000, true), true, now),
            ["S(mixer_cycle)", "V(12000)"]
        );
        mix.audio(audio(13_000));
        assert_eq!(
            run(&mut mix, video(15_000, false), true, now),
            ["A(13000,1)", "V(15000)"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_upstream_session_starts_one_here_at_its_keyframe() {
        let (t0, mut mix) = writing_with_audio();
        let mut restarted = video(90_000, true);
        restarted.session = SessionId(2);
        mix.audio(audio(90_000));
        assert_eq!(
            run(&mut mix, restarted, true, t0),
            ["S(reconnect)", "A(90000,1)", "V(90000)"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_audio_queue_is_bounded() {
        let t0 = Instant::now();
        let mut mix = RungMix::new(AudioFailure::Down, t0);
        for i in 0..(AUDIO_QUEUE as i64 + 10) {
            mix.audio(audio(i * 1_920));
        }
        assert_eq!(mix.dropped(), 10);
        assert_eq!(mix.pending.len(), AUDIO_QUEUE);
    }

    #[test]
    fn the_clock_maps_an_instant_onto_the_video_timeline() {
        let base = std::time::Instant::now();
        let clock = AudioClock::new(base);
        assert_eq!(clock.at(base), None, "no reference yet");
        let at = base + Duration::from_secs(1);
        clock.video(Ts90(900_000), at);
        assert_eq!(clock.at(at), Some(Ts90(900_000)));
        assert_eq!(
            clock.at(at + Duration::from_millis(500)),
            Some(Ts90(945_000))
        );
        assert_eq!(
            clock.at(at - Duration::from_millis(100)),
            Some(Ts90(891_000))
        );
    }
}
