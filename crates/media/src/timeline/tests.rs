use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::Codec;

const V: TrackId = TrackId(0);
const A: TrackId = TrackId(1);
/// 25 fps video.
const VSTEP: i64 = 3600;
/// 1024-sample AAC at 48 kHz.
const ASTEP: i64 = 1920;
/// B-frame reordering delay on video.
const CTO: i64 = 7200;

/// The one real clock read in these tests; everything else is this plus a duration.
fn base() -> Instant {
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}

fn frame(track: TrackId, dts: i64, pts: i64, seq: usize, arrival: Instant) -> Frame {
    Frame {
        track,
        codec: if track == V { Codec::H264 } else { Codec::Aac },
        pts: Ts90(pts),
        dts: Ts90(dts),
        keyframe: true,
        session: SessionId(0),
        arrival,
        payload: Bytes::from((seq as u64).to_le_bytes().to_vec()),
        config: None,
    }
}

fn seq(frame: &Frame) -> usize {
    let bytes: [u8; 8] = frame.payload[..8]
        .try_into()
        .expect("test payload is 8 bytes");
    u64::from_le_bytes(bytes) as usize
}

fn dur(ticks: i64) -> Duration {
    Duration::from_nanos(ticks as u64 * 100_000 / 9)
}

/// One stream of a simulated source: a track, its first source DTS, its frame step, and how
/// long after the feed's start its first frame arrives (and is stamped).
struct Src {
    track: TrackId,
    first: i64,
    step: i64,
    delay: i64,
}

fn src(track: TrackId, first: i64) -> Src {
    let step = if track == V { VSTEP } else { ASTEP };
    Src {
        track,
        first,
        step,
        delay: 0,
    }
}

/// A timeline with a recording driver around it.
struct Sim {
    t0: Instant,
    tl: Timeline,
    /// True (unwrapped) source DTS/PTS of every pushed frame, by sequence number.
    pushed: Vec<(TrackId, i64, i64)>,
    /// Everything pulled, in order.
    out: Vec<Frame>,
    /// Push 33-bit values (masked) instead of the true ones.
    mask: bool,
}

impl Sim {
    fn new() -> Self {
        let t0 = base();
        let mut tl = Timeline::new(t0, SessionIds::new());
        tl.start_session(SessionReason::Fresh, t0);
        Self {
            t0,
            tl,
            pushed: Vec::new(),
            out: Vec::new(),
            mask: false,
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn drain(&mut self) -> usize {
        let before = self.out.len();
        while let Some(frame) = self.tl.pull() {
            self.out.push(frame);
        }
        self.out.len() - before
    }

    fn push_at(&mut self, track: TrackId, dts: i64, now: Instant) -> usize {
        let pts = if track == V { dts + CTO } else { dts };
        self.pushed.push((track, dts, pts));
        let (d, p) = if self.mask {
            (dts & (Ts90::WRAP_33 - 1), pts & (Ts90::WRAP_33 - 1))
        } else {
            (dts, pts)
        };
        let frame = frame(track, d, p, self.pushed.len() - 1, now);
        self.tl.push(frame, now);
        self.drain()
    }

    fn push(&mut self, track: TrackId, dts: i64, at_ms: u64) -> usize {
        self.push_at(track, dts, self.at(at_ms))
    }

    fn timeout(&mut self, at_ms: u64) -> usize {
        self.tl.handle_timeout(self.at(at_ms));
        self.drain()
    }

    fn start(&mut self, reason: SessionReason, at_ms: u64) -> SessionId {
        let id = self.tl.start_session(reason, self.at(at_ms));
        self.drain();
        id
    }

    /// Pushes `dur_ms` of real-time paced frames starting at `at_ms`, in arrival order.
    fn feed(&mut self, sources: &[Src], at_ms: u64, dur_ms: u64) {
        let mut events = Vec::new();
        for s in sources {
            let mut k = 0;
            while s.delay + k * s.step < dur_ms as i64 * 90 {
                events.push((s.delay + k * s.step, s.track, s.first + k * s.step));
                k += 1;
            }
        }
        events.sort();
        let start = self.at(at_ms);
        for (t, track, dts) in events {
            self.push_at(track, dts, start + dur(t));
        }
    }

    /// (source DTS, source PTS, output frame) of every pulled frame of `track`.
    fn track(&self, track: TrackId) -> Vec<(i64, i64, &Frame)> {
        self.out
            .iter()
            .filter(|f| f.track == track)
            .map(|f| {
                let (_, dts, pts) = self.pushed[seq(f)];
                (dts, pts, f)
            })
            .collect()
    }

    /// The output − source offsets of `track` in `session`.
    fn offsets(&self, track: TrackId, session: SessionId) -> Vec<i64> {
        self.track(track)
            .into_iter()
            .filter(|(_, _, f)| f.session == session)
            .map(|(dts, _, f)| f.dts.0 - dts)
            .collect()
    }

    fn sessions(&self) -> Vec<SessionId> {
        let mut ids: Vec<_> = self.out.iter().map(|f| f.session).collect();
        ids.dedup();
        ids
    }

    /// The invariants every output must hold.
    fn check(&self) {
        check_output(&self.out);
        let mut seqs: Vec<_> = self.out.iter().map(seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), self.out.len(), "a frame came out twice");
    }
}

fn check_output(out: &[Frame]) {
    let mut last: Vec<(TrackId, i64)> = Vec::new();
    let mut session = SessionId(0);
    for f in out {
        assert!(f.dts.0 >= 0, "negative DTS {f:?}");
        assert!(f.pts >= f.dts, "PTS before DTS {f:?}");
        assert!(f.session >= session, "session went back {f:?}");
        session = f.session;
        match last.iter_mut().find(|(t, _)| *t == f.track) {
            Some((_, dts)) => {
                assert!(
                    f.dts.0 > *dts,
                    "DTS not increasing: {} after {dts} {f:?}",
                    f.dts.0
                );
                *dts = f.dts.0;
            }
            None => last.push((f.track, f.dts.0)),
        }
    }
}

fn all_equal(values: &[i64]) -> bool {
    values.windows(2).all(|w| w[0] == w[1])
}

#[test]
fn steady_av_passes_through_offset_only() {
    let mut sim = Sim::new();
    let s = 900_000; // the camera's clock reads 10 s
    sim.feed(&[src(V, s), src(A, s)], 0, 10_000);
    sim.timeout(10_000);
    sim.check();

    assert_eq!(sim.out.len(), sim.pushed.len());
    let session = sim.tl.session().unwrap();
    assert_eq!(sim.sessions(), vec![session]);
    assert_eq!(sim.tl.reason(), Some(SessionReason::Fresh));
    assert_eq!(sim.tl.reanchors(), 0);
    let mut offsets = sim.offsets(V, session);
    offsets.extend(sim.offsets(A, session));
    assert!(all_equal(&offsets), "one offset for both tracks");
    assert_eq!(offsets[0], -s, "starts at output 0 (the origin)");
    for (dts, pts, f) in sim.track(V) {
        assert_eq!(f.pts.0 - f.dts.0, pts - dts, "composition offset kept");
    }
}

#[test]
fn source_restart_starts_a_session_and_stays_monotonic() {
    let mut sim = Sim::new();
    sim.feed(&[src(V, 9_000_000), src(A, 9_000_000)], 0, 5_000);
    let first = sim.tl.session().unwrap();
    // The sender restarts: DTS resets to 0 with no gap in arrival.
    sim.feed(&[src(V, 0), src(A, 0)], 5_000, 5_000);
    sim.timeout(10_000);
    sim.check();

    assert_eq!(sim.out.len(), sim.pushed.len());
    let second = sim.tl.session().unwrap();
    assert!(second > first);
    assert_eq!(sim.sessions(), vec![first, second]);
    assert_eq!(sim.tl.reason(), Some(SessionReason::TimelineJump));
    // Lip sync in the new session: one offset for both tracks.
    let mut offsets = sim.offsets(V, second);
    offsets.extend(sim.offsets(A, second));
    assert!(all_equal(&offsets));
    // Output carries on at wall time, 5 s in, right after the last frames.
    let first_after = sim.offsets(V, second)[0];
    assert!(
        (ms(5_000)..ms(5_000) + VSTEP).contains(&first_after),
        "{first_after}"
    );
}

#[test]
fn wrap_33_is_unwrapped_without_a_session_change() {
    let mut sim = Sim::new();
    sim.mask = true;
    let s = Ts90::WRAP_33 - ms(2_000);
    sim.feed(&[src(V, s), src(A, s)], 0, 5_000);
    sim.timeout(5_000);
    sim.check();

    assert_eq!(sim.out.len(), sim.pushed.len());
    let session = sim.tl.session().unwrap();
    assert_eq!(sim.sessions(), vec![session]);
    assert_eq!(sim.tl.reanchors(), 0);
    let mut offsets = sim.offsets(V, session);
    offsets.extend(sim.offsets(A, session));
    assert!(all_equal(&offsets), "offset-only across the wrap");
    // Video PTS wraps before its DTS does: the composition offset survives.
    for (dts, pts, f) in sim.track(V) {
        assert_eq!(f.pts.0 - f.dts.0, pts - dts);
    }
}

#[test]
fn late_track_after_a_wrap_joins_the_same_period() {
    let mut sim = Sim::new();
    sim.mask = true;
    let s = Ts90::WRAP_33 - ms(500);
    // Video alone across the wrap; audio (same clock, just after the wrap) joins late.
    // Audio runs 300 ms behind video in source time.
    sim.feed(&[src(V, s)], 0, 1_500);
    sim.feed(
        &[src(V, s + ms(1_500)), src(A, s + ms(1_200))],
        1_500,
        1_000,
    );
    sim.timeout(2_500);
    sim.check();

    let session = sim.tl.session().unwrap();
    assert_eq!(sim.sessions(), vec![session]);
    let mut offsets = sim.offsets(V, session);
    offsets.extend(sim.offsets(A, session));
    assert!(all_equal(&offsets), "audio keeps the source offset");
}

#[test]
fn switch_between_unrelated_clocks_keeps_lip_sync() {
    let mut sim = Sim::new();
    sim.feed(&[src(V, ms(1_000_000)), src(A, ms(1_000_000))], 0, 3_000);
    let first = sim.tl.session().unwrap();
    let last_video = sim.track(V).last().unwrap().2.dts.0;

    let second = sim.start(SessionReason::Failover, 3_000);
    assert!(second > first);
    // The backup's audio leads its video by 30 ms of source time and arrives 30 ms later.
    let b = ms(50_000_000);
    let audio = Src {
        delay: ms(30),
        ..src(A, b + ms(30))
    };
    sim.feed(&[src(V, b), audio], 3_000, 3_000);
    sim.timeout(6_000);
    sim.check();

    assert_eq!(sim.out.len(), sim.pushed.len());
    assert_eq!(sim.sessions(), vec![first, second]);
    assert_eq!(sim.tl.reason(), Some(SessionReason::Failover));
    let video = sim.offsets(V, second);
    let audio = sim.offsets(A, second);
    assert!(all_equal(&video) && all_equal(&audio));
    assert!(
        (video[0] - audio[0]).abs() < VSTEP,
        "lip sync within one frame"
    );
    // No gap and no overlap at the switch.
    let after = sim
        .track(V)
        .into_iter()
        .find(|(_, _, f)| f.session == second)
        .unwrap()
        .2
        .dts
        .0;
    assert!(
        after > last_video && after - last_video <= 2 * VSTEP,
        "{last_video} -> {after}"
    );
}

#[test]
fn a_boundary_keeps_the_last_frame_durations() {
    let mut sim = Sim::new();
    // A burst: 1 s of media at once, so output runs ahead of wall time.
    let burst = Src {
        step: VSTEP,
        ..src(V, 0)
    };
    let mut events = Vec::new();
    for k in 0..25 {
        events.push((k * burst.step, V));
    }
    for k in 0..47 {
        events.push((k * ASTEP, A));
    }
    events.sort();
    for (dts, track) in events {
        sim.push(track, dts, 0);
    }
    let last_v = sim.track(V).last().unwrap().2.dts.0;
    let last_a = sim.track(A).last().unwrap().2.dts.0;
    let second = sim.start(SessionReason::Failover, 0);
    sim.push(V, ms(500_000), 0);
    sim.push(A, ms(500_000), 0);
    sim.check();
    let first_v = sim.track(V).last().unwrap().2;
    let first_a = sim.track(A).last().unwrap().2;
    assert_eq!((first_v.session, first_a.session), (second, second));
    assert_eq!(first_v.dts, first_a.dts);
    assert!(first_v.dts.0 - last_v >= VSTEP && first_a.dts.0 - last_a >= ASTEP);
    assert_eq!(first_v.dts.0, (last_v + VSTEP).max(last_a + ASTEP));
}

#[test]
fn joint_seed_far_ahead_partner_reanchors_back_without_drops() {
    let mut sim = Sim::new();
    // Same clock, but audio starts 3 s after video in source time: past the 2 s ahead limit.
    sim.push(V, ms(10_000), 0);
    sim.push(A, ms(13_000), 10);
    sim.push(V, ms(10_040), 40);
    sim.push(A, ms(13_021), 40);
    sim.check();
    assert_eq!(sim.out.len(), 4);
    assert_eq!(sim.tl.reanchors(), 1);
    let video = sim.track(V);
    let audio = sim.track(A);
    assert_eq!(video[0].2.dts.0, 0);
    assert_eq!(
        audio[0].2.dts.0,
        ms(10),
        "re-anchored at elapsed wall time, not 3 s ahead"
    );
    assert_eq!(
        video[1].2.dts.0,
        ms(40),
        "a backward move leaves the partner alone"
    );
    assert_eq!(audio[1].2.dts.0, ms(10) + ms(21));
}

#[test]
fn an_overlapping_source_keeps_its_frame_spacing() {
    // A looping sender restarts audio 100 ms early: a small step back, repaired within the
    // session at one frame duration after the last output, never one tick after it.
    let t0 = base();
    let mut tl = Timeline::new(t0, SessionIds::new());
    let mut out = Vec::new();
    let mut seq = 0;
    let mut push = |tl: &mut Timeline, track, dts: i64, at: i64| {
        tl.push(frame(track, dts, dts, seq, t0 + dur(at)), t0 + dur(at));
        seq += 1;
    };
    for k in 0..50 {
        push(&mut tl, V, 3000 * k, 3000 * k);
        push(&mut tl, A, 1920 * k, 1920 * k);
    }
    let last_audio = 1920 * 49;
    push(&mut tl, A, last_audio - 9000, last_audio + 1920);
    push(&mut tl, A, last_audio - 9000 + 1920, last_audio + 3840);
    // ffmpeg's -stream_loop: the next audio frame one tick after the previous.
    push(&mut tl, A, last_audio - 9000 + 1921, last_audio + 5760);
    push(
        &mut tl,
        A,
        last_audio - 9000 + 1921 + 1920,
        last_audio + 7680,
    );
    while let Some(f) = tl.pull() {
        out.push(f);
    }
    let audio: Vec<i64> = out
        .iter()
        .filter(|f| f.track == A)
        .map(|f| f.dts.0)
        .collect();
    for pair in audio.windows(2) {
        assert!(
            pair[1] - pair[0] >= 1920,
            "audio steps {} -> {}",
            pair[0],
            pair[1]
        );
    }
    assert_eq!(tl.session().map(|_| ()), Some(()));
    assert_eq!(tl.reason(), Some(SessionReason::Fresh), "no new session");
}

#[test]
fn jump_forward_of_10_s_reanchors_in_a_new_session() {
    let mut sim = Sim::new();
    let s = ms(100_000);
    sim.feed(&[src(V, s), src(A, s)], 0, 4_000);
    let first = sim.tl.session().unwrap();
    let before = sim.track(V).last().unwrap().2.dts.0;
    // The source clock leaps 10 s; arrival carries on.
    let s2 = s + ms(4_000) + ms(10_000);
    sim.feed(&[src(V, s2), src(A, s2)], 4_000, 4_000);
    sim.timeout(8_000);
    sim.check();

    assert_eq!(sim.out.len(), sim.pushed.len());
    let second = sim.tl.session().unwrap();
    assert_eq!(sim.sessions(), vec![first, second]);
    assert_eq!(sim.tl.reason(), Some(SessionReason::TimelineJump));
    let video = sim.offsets(V, second);
    let audio = sim.offsets(A, second);
    assert!(all_equal(&video) && video == audio[..video.len().min(audio.len())]);
    let after = sim
        .track(V)
        .iter()
        .find(|(_, _, f)| f.session == second)
        .unwrap()
        .2
        .dts
        .0;
    assert!(
        after - before <= 2 * VSTEP,
        "output does not leap: {before} -> {after}"
    );
}

#[test]
fn source_slower_than_wall_time_reanchors_and_shifts_the_partner() {
    let mut sim = Sim::new();
    let s = ms(60_000);
    // 40 ms of video and audio every 44 ms of wall time: output falls behind by 4 ms a
    // frame, so 3 s behind after some 30 s.
    // Audio reaches the writer 10 ms after the video it belongs with.
    let mut t = Duration::ZERO;
    for k in 0..1_000 {
        let now = sim.t0 + t;
        sim.push_at(V, s + k * VSTEP, now);
        sim.push_at(A, s + k * VSTEP, now + Duration::from_millis(10));
        sim.push_at(A, s + k * VSTEP + ASTEP, now + Duration::from_millis(10));
        t += Duration::from_millis(44);
    }
    sim.check();

    assert!(sim.tl.reanchors() >= 1);
    let session = sim.tl.session().unwrap();
    assert_eq!(
        sim.sessions(),
        vec![session],
        "a re-anchor is not a new session"
    );
    // Lip sync holds across every re-anchor: both tracks go through the same output −
    // source offsets (the track that did not re-anchor follows on its next frame).
    let mut video = sim.offsets(V, session);
    let mut audio = sim.offsets(A, session);
    video.dedup();
    audio.dedup();
    assert!(video.len() >= 2, "re-anchored forward");
    let n = video.len().min(audio.len());
    assert_eq!(video[..n], audio[..n]);
    assert!(video.len().abs_diff(audio.len()) <= 1);
    // And output stays within 3 s of wall time.
    let video = sim.track(V);
    let (_, _, last) = video.last().unwrap();
    let elapsed = ticks(t);
    assert!(
        elapsed - last.dts.0 <= BEHIND + ms(44),
        "{elapsed} vs {}",
        last.dts.0
    );
}

#[test]
fn small_step_back_reanchors_within_the_session() {
    let mut sim = Sim::new();
    sim.push(V, 0, 0);
    sim.push(V, VSTEP, 40);
    sim.timeout(1_000);
    assert_eq!(sim.out.len(), 2);
    sim.push(V, 2 * VSTEP, 1_040);
    sim.push(V, VSTEP, 1_080); // 40 ms back: jitter, not a new timeline
    sim.check();
    assert_eq!(sim.out.len(), 4);
    assert_eq!(sim.tl.reanchors(), 1);
    assert_eq!(sim.sessions().len(), 1);
    assert_eq!(
        sim.out[3].dts.0,
        ms(1_080),
        "re-anchored at elapsed wall time"
    );
}

#[test]
fn audio_400_ms_late_joins_at_the_source_offset() {
    let mut sim = Sim::new();
    let s = ms(20_000);
    let audio = Src {
        delay: ms(400),
        ..src(A, s)
    };
    // Video from 0 ms; audio with the same first DTS arrives 400 ms later.
    sim.feed(&[src(V, s)], 0, 400);
    assert!(sim.out.is_empty(), "video is held for its partner");
    assert_eq!(sim.tl.poll_timeout(), Some(sim.at(1_000)));
    sim.feed(&[src(V, s + ms(400)), audio], 400, 2_000);
    sim.timeout(2_400);
    sim.check();

    assert_eq!(sim.out.len(), sim.pushed.len());
    let session = sim.tl.session().unwrap();
    let video = sim.offsets(V, session);
    let audio = sim.offsets(A, session);
    assert!(all_equal(&video) && all_equal(&audio));
    assert_eq!(video[0], audio[0], "audio keeps the source offset");
    assert_eq!(video[0], -s, "the earlier DTS anchors at the session start");
    assert_eq!(sim.tl.reanchors(), 0);
}

#[test]
fn late_audio_within_a_second_keeps_the_source_offset() {
    let mut sim = Sim::new();
    let s = ms(20_000);
    sim.feed(&[src(V, s)], 0, 2_000);
    assert!(sim.tl.poll_timeout().is_none(), "video seeded alone");
    // Audio from 2 s, 400 ms behind video in source time.
    sim.feed(
        &[src(V, s + ms(2_000)), src(A, s + ms(1_600))],
        2_000,
        1_000,
    );
    sim.check();

    let session = sim.tl.session().unwrap();
    let video = sim.offsets(V, session);
    let audio = sim.offsets(A, session);
    assert!(all_equal(&video) && all_equal(&audio));
    assert_eq!(video[0], audio[0]);
}

#[test]
fn audio_1500_ms_behind_video_snaps_to_the_live_edge() {
    let mut sim = Sim::new();
    let s = ms(20_000);
    sim.feed(&[src(V, s)], 0, 2_000);
    let edge = sim.out.last().unwrap().dts.0;
    // Audio's first frame arrives at 2 s, 1500 ms behind video in source time.
    sim.push(A, s + ms(2_000) - ms(1_500), 2_000);
    sim.check();

    let audio = sim.out.last().unwrap();
    assert_eq!(audio.track, A);
    assert_eq!(audio.dts.0, edge, "joins at the partner's live edge");
    assert_eq!(sim.sessions().len(), 1);
    // Then audio follows its own source steps.
    sim.push(A, s + ms(2_000) - ms(1_500) + ASTEP, 2_021);
    assert_eq!(sim.out.last().unwrap().dts.0, edge + ASTEP);
}

#[test]
fn independent_clock_late_track_anchors_at_arrival_wall_time() {
    let mut sim = Sim::new();
    sim.feed(&[src(V, ms(20_000))], 0, 2_000);
    // Audio from a clock an hour away.
    sim.push(A, ms(3_600_000), 1_500);
    sim.check();
    let audio = sim.out.last().unwrap();
    assert_eq!(audio.track, A);
    assert_eq!(audio.dts.0, ms(1_500));
}

#[test]
fn seed_hold_times_out_and_video_seeds_alone() {
    let mut sim = Sim::new();
    let s = ms(7_000);
    sim.feed(&[src(V, s)], 0, 960);
    assert!(sim.out.is_empty());
    assert_eq!(sim.tl.poll_timeout(), Some(sim.at(1_000)));
    assert_eq!(sim.timeout(999), 0);
    let held = sim.pushed.len();
    assert_eq!(
        sim.timeout(1_000),
        held,
        "all held frames leave at the deadline"
    );
    assert_eq!(sim.tl.poll_timeout(), None);
    assert_eq!(sim.out[0].dts.0, 0, "anchored at the session start");
    // Then video flows straight through, at the same offset.
    assert_eq!(sim.push(V, s + ms(1_000), 1_000), 1);
    sim.check();
    let session = sim.tl.session().unwrap();
    let video = sim.offsets(V, session);
    assert!(all_equal(&video));
}

#[test]
fn push_after_the_deadline_seeds_first() {
    let mut sim = Sim::new();
    sim.push(V, 0, 0);
    // The timer was late: audio arrives after the deadline, as a late track.
    assert_eq!(sim.push(A, 0, 1_200), 2);
    sim.check();
    assert_eq!(sim.out[0].track, V);
    assert_eq!(sim.out[1].track, A);
}

#[test]
fn file_loop_is_not_a_new_session() {
    let mut sim = Sim::new();
    // Pass 1: 0..3 s; pass 2 offset by pass 1's end, after a 100 ms reopen.
    sim.feed(&[src(V, 0), src(A, 0)], 0, 3_000);
    sim.feed(&[src(V, ms(3_000)), src(A, ms(3_000))], 3_100, 3_000);
    sim.feed(&[src(V, ms(6_000)), src(A, ms(6_000))], 6_200, 3_000);
    sim.timeout(10_000);
    sim.check();
    let session = sim.tl.session().unwrap();
    assert_eq!(sim.sessions(), vec![session]);
    assert_eq!(sim.tl.reanchors(), 0);
    let mut offsets = sim.offsets(V, session);
    offsets.extend(sim.offsets(A, session));
    assert!(all_equal(&offsets));
}

#[test]
fn start_session_while_holding_releases_into_the_old_session() {
    let mut sim = Sim::new();
    let first = sim.tl.session().unwrap();
    sim.feed(&[src(V, 0)], 0, 200);
    assert!(sim.out.is_empty());
    let second = sim.start(SessionReason::Reconnect, 300);
    let held = sim.pushed.len();
    assert_eq!(sim.out.len(), held);
    assert!(sim.out.iter().all(|f| f.session == first));
    sim.feed(&[src(V, ms(90_000)), src(A, ms(90_000))], 300, 500);
    sim.check();
    assert!(sim.out[held..].iter().all(|f| f.session == second));
    assert_eq!(sim.tl.reason(), Some(SessionReason::Reconnect));
}

#[test]
fn equal_dts_is_bumped_and_pts_before_dts_is_raised() {
    let mut sim = Sim::new();
    let t = sim.at(0);
    sim.tl.push(frame(V, -5_000, -5_000, 0, t), t);
    sim.tl.push(frame(V, -5_000, -9_000, 1, t), t);
    sim.tl.push(frame(V, -1_400, -20_000, 2, t), t);
    sim.tl.handle_timeout(sim.at(1_000));
    sim.drain();
    check_output(&sim.out);
    let dts: Vec<_> = sim.out.iter().map(|f| f.dts.0).collect();
    assert_eq!(dts, vec![0, 1, 3_600]);
    assert!(sim.out.iter().all(|f| f.pts == f.dts));
}

#[test]
fn a_push_without_a_session_starts_a_fresh_one() {
    let t0 = base();
    let mut tl = Timeline::new(t0, SessionIds::new());
    assert_eq!(tl.session(), None);
    tl.push(frame(V, 0, 0, 0, t0), t0);
    assert_eq!(tl.session(), Some(SessionId(1)));
    assert_eq!(tl.reason(), Some(SessionReason::Fresh));
}

#[test]
fn session_ids_are_shared_across_timelines() {
    let t0 = base();
    let ids = SessionIds::new();
    let mut one = Timeline::new(t0, ids.clone());
    let mut two = Timeline::new(t0, ids.clone());
    assert_eq!(one.start_session(SessionReason::Fresh, t0), SessionId(1));
    assert_eq!(two.start_session(SessionReason::Fresh, t0), SessionId(2));
    assert_eq!(one.start_session(SessionReason::Failover, t0), SessionId(3));
    assert_eq!(ids.next(), SessionId(4));
    assert_eq!(SessionReason::StallRecovery.to_string(), "stall_recovery");
}

/// One step of a random driver.
#[derive(Debug, Clone)]
enum Op {
    Push {
        track: u16,
        dts: Step,
        composition: i64,
        advance_ms: u64,
    },
    Start(u8, u64),
    Timeout(u64),
}

/// How a track's source DTS moves.
#[derive(Debug, Clone)]
enum Step {
    Next,
    Same,
    Forward(i64),
    Back(i64),
    Reset(i64),
    Raw33(i64),
    Any(i64, i64),
}

fn op() -> impl Strategy<Value = Op> {
    let step = prop_oneof![
        6 => Just(Step::Next),
        1 => Just(Step::Same),
        1 => (0i64..ms(20_000)).prop_map(Step::Forward),
        1 => (0i64..ms(2_000)).prop_map(Step::Back),
        1 => (-ms(10_000)..ms(100_000)).prop_map(Step::Reset),
        1 => (0i64..Ts90::WRAP_33).prop_map(Step::Raw33),
        1 => (any::<i64>(), any::<i64>()).prop_map(|(d, p)| Step::Any(d, p)),
    ];
    prop_oneof![
        12 => (0u16..3, step, -3_600i64..20_000, 0u64..80).prop_map(
            |(track, dts, composition, advance_ms)| Op::Push { track, dts, composition, advance_ms }
        ),
        1 => (0u8..7, 0u64..2_000).prop_map(|(r, a)| Op::Start(r, a)),
        1 => (0u64..1_500).prop_map(Op::Timeout),
    ]
}

const REASONS: [SessionReason; 7] = [
    SessionReason::Fresh,
    SessionReason::Reconnect,
    SessionReason::Failover,
    SessionReason::MixerCycle,
    SessionReason::ConfigChange,
    SessionReason::StallRecovery,
    SessionReason::TimelineJump,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn output_is_monotonic_whatever_the_input(ops in prop::collection::vec(op(), 1..400)) {
        let t0 = base();
        let mut tl = Timeline::new(t0, SessionIds::new());
        let mut now = t0;
        let mut source = [0i64; 3];
        let mut out = Vec::new();
        let mut pushed = 0;
        let mut last_session = SessionId(0);
        for op in ops {
            match op {
                Op::Push { track, dts, composition, advance_ms } => {
                    now += Duration::from_millis(advance_ms);
                    let s = &mut source[usize::from(track)];
                    let (d, p) = match dts {
                        Step::Next => { *s += if track == 0 { VSTEP } else { ASTEP }; (*s, *s + composition) }
                        Step::Same => (*s, *s + composition),
                        Step::Forward(x) => { *s += x; (*s, *s + composition) }
                        Step::Back(x) => { *s -= x; (*s, *s + composition) }
                        Step::Reset(x) => { *s = x; (*s, *s + composition) }
                        Step::Raw33(x) => { *s = x; (*s, (*s + composition) & (Ts90::WRAP_33 - 1)) }
                        Step::Any(d, p) => (d, p),
                    };
                    tl.push(frame(TrackId(track), d, p, pushed, now), now);
                    pushed += 1;
                }
                Op::Start(reason, advance_ms) => {
                    now += Duration::from_millis(advance_ms);
                    let id = tl.start_session(REASONS[usize::from(reason)], now);
                    prop_assert!(id > last_session);
                    last_session = id;
                }
                Op::Timeout(advance_ms) => {
                    now += Duration::from_millis(advance_ms);
                    if let Some(deadline) = tl.poll_timeout() {
                        prop_assert!(deadline >= t0);
                    }
                    tl.handle_timeout(now);
                }
            }
            if let Some(id) = tl.session() {
                prop_assert!(id >= last_session);
                last_session = id;
            }
            while let Some(frame) = tl.pull() {
                out.push(frame);
            }
        }
        tl.handle_timeout(now + HOLD);
        prop_assert!(tl.poll_timeout().is_none());
        while let Some(frame) = tl.pull() {
            out.push(frame);
        }
        check_output(&out);
        prop_assert_eq!(out.len(), pushed, "every frame comes out once");
        // Per track, frames leave in push order.
        for track in 0..3 {
            let seqs: Vec<_> = out.iter().filter(|f| f.track == TrackId(track)).map(seq).collect();
            prop_assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
