//! Segmenter tests on synthetic frames.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tributary_media::TrackConfig;
use tributary_mpegts::{DemuxEvent, Demuxer, DemuxerConfig, PACKET_LEN};

use super::*;
use crate::MediaPlaylist;

mod fmp4;
mod new_s;

const VIDEO: TrackId = TrackId(0x100);
const AUDIO: TrackId = TrackId(0x101);
/// 30 fps.
const VIDEO_STEP: i64 = 3000;
/// 1024 samples at 48 kHz.
const AUDIO_STEP: i64 = 1920;
pub(super) const T0: i64 = 900_000;
pub(super) const WALL0: i64 = 1_795_514_400_000;
pub(super) const FIRST: u64 = 1_795_514_400;

/// An arrival stamp; never compared by the segmenter.
#[expect(
    clippy::disallowed_methods,
    reason = "an arbitrary arrival stamp, never read by the code under test"
)]
fn arrival() -> Instant {
    Instant::now()
}

fn aac_config() -> Arc<TrackConfig> {
    // AAC-LC, 48 kHz, stereo.
    Arc::new(TrackConfig::aac(Bytes::from_static(&[0x11, 0x90])).unwrap())
}

fn video(dts: i64, keyframe: bool, session: u64) -> Frame {
    let payload: &'static [u8] = if keyframe {
        &[0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21]
    } else {
        &[0, 0, 0, 1, 0x41, 0x9a, 0x02, 0x03]
    };
    Frame {
        track: VIDEO,
        codec: Codec::H264,
        pts: Ts90(dts),
        dts: Ts90(dts),
        keyframe,
        session: SessionId(session),
        arrival: arrival(),
        payload: Bytes::from_static(payload),
        config: None,
    }
}

fn audio(dts: i64, session: u64, config: &Arc<TrackConfig>) -> Frame {
    Frame {
        track: AUDIO,
        codec: Codec::Aac,
        pts: Ts90(dts),
        dts: Ts90(dts),
        keyframe: true,
        session: SessionId(session),
        arrival: arrival(),
        payload: Bytes::from_static(&[0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c]),
        config: Some(Arc::clone(config)),
    }
}

/// `seconds` of 30 fps video (keyframe every `gop` frames) and 48 kHz AAC starting at DTS
/// `t0`, interleaved by DTS (video first on ties).
pub(super) fn av(t0: i64, seconds: f64, gop: i64, session: u64) -> Vec<Frame> {
    let end = t0 + (seconds * 90_000.0) as i64;
    let config = aac_config();
    let mut frames = Vec::new();
    let (mut v, mut a) = (0, 0);
    loop {
        let (vd, ad) = (t0 + v * VIDEO_STEP, t0 + a * AUDIO_STEP);
        if vd >= end && ad >= end {
            break;
        }
        if vd <= ad && vd < end {
            frames.push(video(vd, v % gop == 0, session));
            v += 1;
        } else {
            frames.push(audio(ad, session, &config));
            a += 1;
        }
    }
    frames
}

/// Wall time of a frame: the session's media time mapped 1:1 onto WALL0.
pub(super) fn wall_of(frame: &Frame) -> UnixMillis {
    UnixMillis(WALL0 + (frame.dts.0 - T0) / 90)
}

fn segmenter(first: u64) -> HlsSegmenter {
    HlsSegmenter::new(HlsConfig {
        segment: Duration::from_secs(2),
        first_number: first,
        grid: None,
        format: SegmentFormat::Ts,
        part: None,
    })
}

/// A segmenter of S = 2 s on a keyframe grid of `k` seconds, cell 0 numbered `first`.
fn grid_segmenter(first: u64, k: f64) -> HlsSegmenter {
    HlsSegmenter::new(HlsConfig {
        segment: Duration::from_secs(2),
        first_number: first,
        grid: Some(Ts90((k * 90_000.0) as i64)),
        format: SegmentFormat::Ts,
        part: None,
    })
}

/// `(number, start)` of every segment `frames` give.
fn numbered(segmenter: &mut HlsSegmenter, frames: &[Frame]) -> Vec<(u64, i64)> {
    segments(&run(segmenter, frames))
        .iter()
        .map(|s| (s.number, s.start.0))
        .collect()
}

/// Pushes every frame (wall time from [`wall_of`]) and returns everything pulled.
pub(super) fn run(segmenter: &mut HlsSegmenter, frames: &[Frame]) -> Vec<HlsEvent> {
    let mut events = Vec::new();
    for frame in frames {
        segmenter.push(frame, wall_of(frame));
        events.extend(std::iter::from_fn(|| segmenter.pull()));
    }
    events
}

pub(super) fn segments(events: &[HlsEvent]) -> Vec<&Segment> {
    events
        .iter()
        .filter_map(|e| match e {
            HlsEvent::Segment(s) => Some(s),
            _ => None,
        })
        .collect()
}

fn pid(packet: &[u8]) -> u16 {
    u16::from_be_bytes([packet[1] & 0x1F, packet[2]])
}

/// The frames of one segment, demuxed on their own (as a player fetching just it would).
fn demux(bytes: &[u8]) -> Vec<Frame> {
    let mut demuxer = Demuxer::new(DemuxerConfig::default());
    demuxer.push(bytes, arrival());
    demuxer.flush();
    let mut frames = Vec::new();
    while let Some(event) = demuxer.pull() {
        if let DemuxEvent::Frame(frame) = event.unwrap() {
            frames.push(frame);
        }
    }
    frames
}

/// Every segment starts with PAT then PMT, is whole packets, and (with `keyframe`) its first
/// frame is a video keyframe.
fn assert_starts_clean(segment: &Segment, keyframe: bool) {
    let bytes = &segment.bytes;
    assert_eq!(bytes.len() % PACKET_LEN, 0, "segment {}", segment.number);
    assert!(bytes.len() >= 3 * PACKET_LEN);
    assert_eq!(
        (pid(&bytes[..]), pid(&bytes[PACKET_LEN..])),
        (0, 0x1000),
        "segment {} starts with PAT, PMT",
        segment.number
    );
    let frames = demux(bytes);
    assert!(!frames.is_empty());
    if keyframe {
        let first_video = frames.iter().find(|f| f.codec == Codec::H264).unwrap();
        assert!(first_video.keyframe, "segment {}", segment.number);
        assert_eq!(first_video.pts, segment.start);
    }
}

#[test]
fn cuts_at_the_first_keyframe_at_or_after_s() {
    let mut s = segmenter(FIRST);
    let events = run(&mut s, &av(T0, 7.0, 30, 1)); // keyframe every second
    let segs = segments(&events);
    assert_eq!(
        segs.len(),
        3,
        "cuts at 2, 4 and 6 s; the last second is open"
    );
    for (i, seg) in segs.iter().enumerate() {
        assert_eq!(seg.number, FIRST + i as u64);
        assert_eq!(seg.start, Ts90(T0 + 180_000 * i as i64));
        assert_eq!(seg.duration, Ts90(180_000));
        assert_eq!(seg.end, SegmentEnd::Keyframe);
        assert_eq!(seg.target_duration, 2);
        assert!(!seg.discontinuity);
        assert_eq!(seg.program_date_time, UnixMillis(WALL0 + 2000 * i as i64));
        assert_starts_clean(seg, true);
        let frames = demux(&seg.bytes);
        assert_eq!(frames.iter().filter(|f| f.codec == Codec::H264).count(), 60);
        let audio = frames.iter().filter(|f| f.codec == Codec::Aac).count();
        assert!((93..=95).contains(&audio), "{audio} audio frames");
    }
    assert_eq!(s.target_duration(), Some(2));
    assert_eq!(
        s.next_number(),
        FIRST + 4,
        "the open segment has its number"
    );

    // Keyframes every 1.5 s: each segment runs to the keyframe at 3 s.
    let mut s = segmenter(0);
    let segs: Vec<_> = segments(&run(&mut s, &av(T0, 10.0, 45, 1)))
        .into_iter()
        .cloned()
        .collect();
    let durations: Vec<i64> = segs.iter().map(|s| s.duration.0).collect();
    assert_eq!(durations, [270_000, 270_000, 270_000]);
    assert!(segs.iter().all(|s| s.target_duration == 3));
}

#[test]
fn grid_variants_number_each_segment_by_its_instant() {
    const SEC: i64 = 90_000;
    // A variant from 10 s (cell 5 of 2 s), keyframes on the instants.
    let early = numbered(&mut grid_segmenter(FIRST, 2.0), &av(T0, 9.0, 60, 1));
    assert_eq!(
        early,
        [
            (FIRST + 5, T0),
            (FIRST + 6, T0 + 2 * SEC),
            (FIRST + 7, T0 + 4 * SEC),
            (FIRST + 8, T0 + 6 * SEC)
        ]
    );
    // One that started a GOP later, its keyframes a frame after the instants: the same
    // numbers for the same instants.
    let late = numbered(
        &mut grid_segmenter(FIRST, 2.0),
        &av(T0 + 2 * SEC + VIDEO_STEP, 7.0, 60, 1),
    );
    assert_eq!(late[0], (FIRST + 6, T0 + 2 * SEC + VIDEO_STEP));
    assert_eq!(late[1], (FIRST + 7, T0 + 4 * SEC + VIDEO_STEP));

    // Keyframes every second, S = 2 s: cells of 2 s whichever second a variant starts in.
    let even = numbered(&mut grid_segmenter(0, 1.0), &av(T0, 7.0, 30, 1));
    assert_eq!(even, [(5, T0), (6, T0 + 2 * SEC), (7, T0 + 4 * SEC)]);
    let odd = numbered(&mut grid_segmenter(0, 1.0), &av(T0 + SEC, 6.0, 30, 1));
    assert_eq!(odd, [(5, T0 + SEC), (6, T0 + 2 * SEC), (7, T0 + 4 * SEC)]);

    // A variant whose encoder restarted skips the cells it missed.
    let mut s = grid_segmenter(0, 2.0);
    let mut frames = av(T0, 4.5, 60, 1);
    frames.extend(av(T0 + 8 * SEC, 5.0, 60, 2));
    let gapped = numbered(&mut s, &frames);
    let numbers: Vec<u64> = gapped.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [5, 6, 7, 9, 10]);

    // A keyframe-less stretch is cut by force; numbers still only increase.
    let mut s = grid_segmenter(0, 2.0);
    let forced = numbered(&mut s, &av(T0, 20.0, 1000, 1));
    assert!(forced.len() >= 3, "{forced:?}");
    assert!(forced.windows(2).all(|w| w[1].0 > w[0].0), "{forced:?}");
    assert_eq!(forced[0].0, 5);
}

#[test]
fn forced_cut_without_keyframes_stays_below_target_duration_plus_half() {
    // One keyframe, then none for 20 s.
    let mut frames: Vec<Frame> = (0..600)
        .map(|i| video(T0 + i * VIDEO_STEP, i == 0, 1))
        .collect();
    frames.push(video(T0 + 600 * VIDEO_STEP, true, 1));
    let mut s = segmenter(0);
    let events = run(&mut s, &frames);
    let segs = segments(&events);
    // Before TARGETDURATION is known the limit is 3 S (less the guard): 5.9 s, TD 6; then
    // 6.5 - 0.1 = 6.4 s.
    let durations: Vec<i64> = segs.iter().map(|s| s.duration.0).collect();
    assert_eq!(durations, [531_000, 576_000, 576_000]);
    assert!(
        segs.iter()
            .all(|s| s.end == SegmentEnd::Forced && s.target_duration == 6)
    );
    assert_starts_clean(segs[0], true);
    for seg in &segs[1..] {
        // Not independent, but still PAT/PMT first.
        assert_starts_clean(seg, false);
        assert!(!demux(&seg.bytes)[0].keyframe);
    }
    // Every EXTINF rounds to at most TARGETDURATION.
    assert!(segs.iter().all(|s| millis_rounded(s.duration) < 6_500));
}

#[test]
fn a_late_keyframe_does_not_change_target_duration() {
    // Keyframes at 0, 2 s, then 4.5 s and 6.5 s: TD 2 from the first segment; the second
    // is forced at 2.5 - 0.1 s; the third (starting without a keyframe) runs to the keyframe
    // at 6.5 s, at least S after its start.
    let mut frames = Vec::new();
    for i in 0..240 {
        let t = i * VIDEO_STEP;
        let key = [0, 180_000, 405_000, 585_000].contains(&t);
        frames.push(video(T0 + t, key, 1));
    }
    let mut s = segmenter(0);
    let segs: Vec<Segment> = segments(&run(&mut s, &frames))
        .into_iter()
        .cloned()
        .collect();
    let summary: Vec<(i64, SegmentEnd, u32)> = segs
        .iter()
        .map(|s| (s.duration.0, s.end, s.target_duration))
        .collect();
    assert_eq!(
        summary,
        [
            (180_000, SegmentEnd::Keyframe, 2),
            (216_000, SegmentEnd::Forced, 2),
            (189_000, SegmentEnd::Keyframe, 2),
        ]
    );
    assert_eq!(s.target_duration(), Some(2));
}

#[test]
fn a_new_session_closes_the_segment_and_marks_a_discontinuity() {
    let mut frames = av(T0, 3.0, 30, 1);
    // Session 2 starts mid-GOP: its frames before the first keyframe are skipped.
    let t1 = T0 + 5_000_000;
    let mut second = av(t1, 5.0, 30, 2);
    second.retain(|f| f.dts.0 >= t1 + 10 * VIDEO_STEP);
    frames.extend(second);
    let mut s = segmenter(7);
    let events = run(&mut s, &frames);
    s.finish();
    let mut events = events;
    events.extend(std::iter::from_fn(|| s.pull()));
    let segs = segments(&events);
    let summary: Vec<(u64, u64, bool, SegmentEnd)> = segs
        .iter()
        .map(|s| (s.number, s.session.0, s.discontinuity, s.end))
        .collect();
    assert_eq!(
        summary,
        [
            (7, 1, false, SegmentEnd::Keyframe),
            (8, 1, false, SegmentEnd::Session),
            (9, 2, true, SegmentEnd::Keyframe),
            (10, 2, false, SegmentEnd::Finish),
        ]
    );
    // The session's last segment: last frame PTS + its duration - first PTS. Video ends at
    // 3 s - 1 frame + 1 frame = 3 s; audio's last frame (2.9867 s) + 21.3 ms = 3.008 s.
    let last_audio = (0..)
        .map(|j| j * AUDIO_STEP)
        .take_while(|&t| t < 270_000)
        .last()
        .unwrap();
    assert_eq!(segs[1].duration, Ts90(last_audio + AUDIO_STEP - 180_000));
    // Session 2 starts at its first keyframe (frame 30 of its GOP grid).
    assert_eq!(segs[2].start, Ts90(t1 + 30 * VIDEO_STEP));
    assert!(s.skipped() > 0);
    for seg in &segs {
        assert_starts_clean(seg, true);
    }
    // The muxer restarts with the session: continuity counters begin again at 0.
    let first_video_packet = |bytes: &[u8]| {
        bytes
            .chunks(PACKET_LEN)
            .find(|p| pid(p) == 0x100 && p[3] & 0x10 != 0)
            .map(|p| p[3] & 0x0F)
    };
    assert_eq!(first_video_packet(&segs[2].bytes), Some(0));
    // The wall anchor restarts with the session too.
    assert_eq!(
        segs[2].program_date_time,
        UnixMillis(WALL0 + (t1 + 30 * VIDEO_STEP - T0) / 90)
    );
    let last_audio2 = (0..)
        .map(|j| j * AUDIO_STEP)
        .take_while(|&t| t < 450_000)
        .last()
        .unwrap();
    assert_eq!(segs[3].duration, Ts90(last_audio2 + AUDIO_STEP - 270_000));
}

#[test]
fn loss_closes_the_segment_and_marks_the_next() {
    let frames = av(T0, 3.0, 30, 1);
    let mut s = segmenter(0);
    let mut events = run(&mut s, &frames);
    s.discontinuity();
    events.extend(std::iter::from_fn(|| s.pull()));
    // The hub resumes at a keyframe of the same session, 1 s later.
    events.extend(run(&mut s, &av(T0 + 360_000, 5.0, 30, 1)));
    let segs = segments(&events);
    let summary: Vec<(bool, SegmentEnd)> = segs.iter().map(|s| (s.discontinuity, s.end)).collect();
    assert_eq!(
        summary,
        [
            (false, SegmentEnd::Keyframe),
            (false, SegmentEnd::Loss),
            (true, SegmentEnd::Keyframe),
            (false, SegmentEnd::Keyframe),
        ]
    );
    assert!(segs[1].duration.0 > 90_000 && segs[1].duration.0 < 95_000);
    // A loss before any segment marks nothing.
    let mut s = segmenter(0);
    s.discontinuity();
    let segs: Vec<Segment> = segments(&run(&mut s, &av(T0, 3.0, 30, 1)))
        .into_iter()
        .cloned()
        .collect();
    assert!(!segs[0].discontinuity);
}

#[test]
fn audio_only_cuts_every_s_with_psi_first() {
    let config = aac_config();
    let frames: Vec<Frame> = (0..400)
        .map(|j| audio(T0 + j * AUDIO_STEP, 1, &config))
        .collect();
    let mut s = segmenter(0);
    let segs: Vec<Segment> = segments(&run(&mut s, &frames))
        .into_iter()
        .cloned()
        .collect();
    // 94 frames of 1920 ticks reach 2 s (180 480 ticks).
    assert_eq!(segs.len(), 4);
    for (i, seg) in segs.iter().enumerate() {
        assert_eq!(seg.duration, Ts90(94 * AUDIO_STEP));
        assert_eq!(seg.start, Ts90(T0 + 94 * AUDIO_STEP * i as i64));
        assert_eq!(seg.end, SegmentEnd::Interval);
        assert_eq!(seg.target_duration, 3, "ceil(2.005)");
        assert_starts_clean(seg, false);
        assert_eq!(demux(&seg.bytes).len(), 94);
    }
}

#[test]
fn video_only_streams_start_after_probing() {
    let frames: Vec<Frame> = (0..200)
        .map(|i| video(T0 + i * VIDEO_STEP, i % 60 == 0, 1))
        .collect();
    let mut s = segmenter(0);
    let mut events = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        s.push(frame, wall_of(frame));
        events.extend(std::iter::from_fn(|| s.pull()));
        if i == 29 {
            assert!(s.muxer.is_none(), "still probing for an audio track");
        }
    }
    assert!(s.muxer.is_some());
    let segs = segments(&events);
    assert_eq!(segs.len(), 3);
    assert!(segs.iter().all(|s| s.duration == Ts90(180_000)));
    assert_eq!(s.tracks, [MuxTrack::new(VIDEO, Codec::H264)]);
}

#[test]
fn uncarried_codecs_are_omitted_and_reported_once() {
    let mut frames = av(T0, 3.0, 30, 1);
    for i in 0..150 {
        frames.push(Frame {
            track: TrackId(0x102),
            codec: Codec::Opus,
            pts: Ts90(T0 + i * 1800),
            dts: Ts90(T0 + i * 1800),
            keyframe: true,
            session: SessionId(1),
            arrival: arrival(),
            payload: Bytes::from_static(b"opus"),
            config: None,
        });
    }
    frames.sort_by_key(|f| f.dts);
    let mut s = segmenter(0);
    let events = run(&mut s, &frames);
    let omitted: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            HlsEvent::Omitted { track, codec } => Some((*track, *codec)),
            _ => None,
        })
        .collect();
    assert_eq!(omitted, [(TrackId(0x102), Codec::Opus)]);
    let segs = segments(&events);
    assert_eq!(segs.len(), 1);
    assert!(demux(&segs[0].bytes).iter().all(|f| f.codec != Codec::Opus));
    assert_eq!(s.tracks.len(), 2);
}

#[test]
fn rejected_frames_are_reported_once_per_session() {
    // AAC without its AudioSpecificConfig cannot be written as ADTS.
    let mut frames = av(T0, 5.0, 30, 1);
    for frame in &mut frames {
        frame.config = None;
    }
    let mut s = segmenter(0);
    let events = run(&mut s, &frames);
    let rejected: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            HlsEvent::Rejected { track, error } => Some((*track, error.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        rejected,
        [(
            AUDIO,
            tributary_mpegts::Error::MissingConfig { track: AUDIO }
        )]
    );
    let segs = segments(&events);
    assert_eq!(segs.len(), 2, "video still flows");
    assert!(demux(&segs[0].bytes).iter().all(|f| f.codec == Codec::H264));
}

#[test]
fn a_track_first_seen_late_is_added() {
    let config = aac_config();
    let mut frames: Vec<Frame> = (0..180)
        .map(|i| video(T0 + i * VIDEO_STEP, i % 30 == 0, 1))
        .collect();
    // Audio from 3 s on.
    frames.extend((0..100).map(|j| audio(T0 + 270_000 + j * AUDIO_STEP, 1, &config)));
    frames.sort_by_key(|f| f.dts);
    let mut s = segmenter(0);
    let segs: Vec<Segment> = segments(&run(&mut s, &frames))
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(segs.len(), 2);
    let second = demux(&segs[1].bytes);
    assert!(second.iter().any(|f| f.codec == Codec::Aac));
    assert_eq!(s.tracks.len(), 2);
}

#[test]
fn b_frames_use_pts_for_cuts_and_durations() {
    // IPBB... decode order: PTS = DTS + 2 frames for references, B-frames in between.
    let mut frames = Vec::new();
    for i in 0..181 {
        let dts = T0 + i * VIDEO_STEP;
        let pts = match i % 3 {
            0 => dts + 2 * VIDEO_STEP,
            _ => dts - VIDEO_STEP,
        };
        let mut frame = video(dts, i % 60 == 0, 1);
        frame.pts = Ts90(pts);
        frames.push(frame);
    }
    let mut s = segmenter(0);
    let segs: Vec<Segment> = segments(&run(&mut s, &frames))
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(segs.len(), 3);
    for (i, seg) in segs.iter().enumerate() {
        assert_eq!(seg.start, Ts90(T0 + 180_000 * i as i64 + 2 * VIDEO_STEP));
        assert_eq!(seg.duration, Ts90(180_000));
    }
}

#[test]
fn program_date_time_follows_media_time_and_reanchors_on_drift() {
    let frames = av(T0, 9.0, 60, 1);
    let mut s = segmenter(0);
    let mut events = Vec::new();
    for frame in &frames {
        // Wall time jitters by ±300 ms and then jumps 5 s ahead at 5 s.
        let jitter = if frame.dts.0 % 7 == 0 { 300 } else { -300 };
        let jump = if frame.dts.0 - T0 >= 450_000 { 5000 } else { 0 };
        s.push(frame, UnixMillis(wall_of(frame).0 + jitter + jump));
        events.extend(std::iter::from_fn(|| s.pull()));
    }
    let segs = segments(&events);
    let pdts: Vec<i64> = segs.iter().map(|s| s.program_date_time.0 - WALL0).collect();
    // The first frame anchors (its jitter included); the next follows exactly by EXTINF;
    // the jump beyond 1 s re-anchors at the segment's own wall time.
    let first = pdts[0];
    assert!(first == 300 || first == -300);
    assert_eq!(pdts[1], first + 2000);
    assert_eq!(pdts[2], first + 4000);
    assert!((pdts[3] - 11_000).abs() <= 300, "{pdts:?}");
}

#[test]
fn segment_buffers_are_sized_from_the_previous_segment() {
    let mut s = segmenter(0);
    let _ = run(&mut s, &av(T0, 4.5, 60, 1));
    let hint = s.size_hint;
    assert!(hint > 0);
    let open = s.open.as_ref().unwrap();
    assert!(open.bytes.capacity() >= hint, "reserved up front");
}

/// One step of a random run.
#[derive(Debug, Clone)]
enum Op {
    /// A video frame `gap` frames after the last, keyframe or not; audio follows.
    Frame { gap: i64, keyframe: bool },
    /// A new session.
    Session,
    /// Frames lost.
    Loss,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        200 => (1i64..3, prop::bool::weighted(0.05))
            .prop_map(|(gap, keyframe)| Op::Frame { gap, keyframe }),
        1 => Just(Op::Session),
        1 => Just(Op::Loss),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the stream does, the playlist parses, keeps its header, lists at most the
    /// window, numbers segments consecutively, never lets MEDIA-SEQUENCE go back, never lets
    /// an EXTINF round above TARGETDURATION, and its discontinuity sequence counts what slid
    /// out.
    #[test]
    fn playlist_stays_well_formed(ops in prop::collection::vec(op(), 1..3000), window in 1usize..8) {
        let config = aac_config();
        let mut s = segmenter(FIRST);
        let mut playlist = MediaPlaylist::new(window);
        let (mut session, mut dts) = (1u64, T0);
        let mut last_sequence = 0u64;
        let mut pushed = Vec::new();
        let mut slid_discontinuities = 0;
        for op in ops {
            match op {
                Op::Frame { gap, keyframe } => {
                    dts += gap * VIDEO_STEP;
                    let frame = video(dts, keyframe, session);
                    s.push(&frame, wall_of(&frame));
                    let frame = audio(dts + 1, session, &config);
                    s.push(&frame, wall_of(&frame));
                }
                Op::Session => {
                    session += 1;
                    dts += 900_000;
                }
                Op::Loss => s.discontinuity(),
            }
            while let Some(event) = s.pull() {
                let HlsEvent::Segment(segment) = event else { continue };
                prop_assert_eq!(segment.number, FIRST + pushed.len() as u64);
                prop_assert!(
                    millis_rounded(segment.duration) < i64::from(segment.target_duration) * 1000 + 500,
                    "EXTINF {:?} above TARGETDURATION {}", segment.duration, segment.target_duration
                );
                pushed.push(segment.entry());
                if let Some(out) = playlist.push(&segment) {
                    slid_discontinuities += u64::from(out.discontinuity);
                }
                let text = playlist.render();
                let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes());
                let parsed = parsed.map_err(|e| TestCaseError::fail(format!("{e:?}\n{text}")))?;
                prop_assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:"));
                prop_assert!(text.contains("#EXT-X-INDEPENDENT-SEGMENTS\n"));
                prop_assert!(!text.contains("ENDLIST"));
                prop_assert!(parsed.media_sequence >= last_sequence);
                last_sequence = parsed.media_sequence;
                prop_assert_eq!(parsed.discontinuity_sequence, slid_discontinuities);
                prop_assert_eq!(parsed.target_duration, u64::from(segment.target_duration));
                prop_assert_eq!(playlist.target_duration(), Some(segment.target_duration));
                prop_assert_eq!(parsed.segments.len(), pushed.len().min(window));
                let listed = &pushed[pushed.len() - parsed.segments.len()..];
                for (i, (seg, entry)) in parsed.segments.iter().zip(listed).enumerate() {
                    prop_assert_eq!(&seg.uri, &crate::segment_name(entry.number));
                    prop_assert_eq!(seg.discontinuity, entry.discontinuity);
                    prop_assert!(seg.program_date_time.is_some());
                    prop_assert_eq!(parsed.media_sequence + i as u64, entry.number);
                }
            }
        }
    }
}

/// x264 High 1280x720: SPS, PPS, SEI and an IDR slice (crates/media/testdata/README.md).
pub(super) const X264_720P: &[u8] =
    include_bytes!("../../../../media/testdata/ffmpeg_x264_high_1280x720_30fps.h264");

/// `av` with real parameter sets in every keyframe (`keyframe` bytes).
pub(super) fn real(frames: Vec<Frame>, keyframe: &'static [u8]) -> Vec<Frame> {
    frames
        .into_iter()
        .map(|f| match (f.codec, f.keyframe) {
            (Codec::H264, true) => Frame {
                payload: Bytes::from_static(keyframe),
                ..f
            },
            _ => f,
        })
        .collect()
}

#[test]
fn dash_cuts_at_s_when_no_idr_comes_within_3s() {
    // One keyframe, none for 10 s, then one at 10 s and every second after.
    let frames: Vec<Frame> = (0..390)
        .map(|i| video(T0 + i * VIDEO_STEP, i == 0 || (i >= 300 && i % 30 == 0), 1))
        .collect();
    let mut s = segmenter(0).with_dash_cuts(900);
    let events = run(&mut s, &frames);
    let segs = segments(&events);
    let cuts: Vec<(i64, i64, SegmentEnd)> = segs
        .iter()
        .map(|s| (s.start.0 - T0, s.duration.0, s.end))
        .collect();
    // At 6 s (3 × S without an IDR) the queue is cut at S: [0, 2); at 8 s, [2, 4); the IDR
    // at 10 s lies within 3 × S of 4 s and ends [4, 10); then IDRs cut every 2 s as usual.
    assert_eq!(
        cuts,
        [
            (0, 180_000, SegmentEnd::Forced),
            (180_000, 180_000, SegmentEnd::Forced),
            (360_000, 540_000, SegmentEnd::Keyframe),
            (900_000, 180_000, SegmentEnd::Keyframe),
        ]
    );
    // Every frame is in a segment once, in order.
    let muxed: Vec<i64> = segs
        .iter()
        .flat_map(|s| demux(&s.bytes))
        .map(|f| f.dts.0)
        .collect();
    assert_eq!(muxed.len(), 360, "the frames of the 4 closed segments");
    assert!(muxed.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(s.dropped(), 0);
    // HLS cutting of the same frames: forced at 5.9 s instead.
    let mut hls = segmenter(0);
    let first = segments(&run(&mut hls, &frames))[0].duration.0;
    assert_eq!(first, 531_000);
}

#[test]
fn dash_cuts_match_hls_when_idrs_come_in_time() {
    let frames = av(T0, 9.0, 30, 1);
    let video_only: Vec<Frame> = frames.into_iter().filter(|f| f.track == VIDEO).collect();
    let mut dash = segmenter(0).with_dash_cuts(900);
    let mut hls = segmenter(0);
    let cuts = |events: &[HlsEvent]| -> Vec<(i64, i64)> {
        segments(events)
            .iter()
            .map(|s| (s.start.0, s.duration.0))
            .collect()
    };
    assert_eq!(
        cuts(&run(&mut dash, &video_only)),
        cuts(&run(&mut hls, &video_only))
    );
}

#[test]
fn a_full_dash_queue_drops_counts_and_reports_once_per_episode() {
    // No IDR after the first for 4 s; a queue of 10 frames fills 10 frames past S.
    let mut frames: Vec<Frame> = (0..120)
        .map(|i| video(T0 + i * VIDEO_STEP, i == 0, 1))
        .collect();
    frames.push(video(T0 + 120 * VIDEO_STEP, true, 1));
    // A second episode after the IDR drained the queue.
    frames.extend((121..200).map(|i| video(T0 + i * VIDEO_STEP, false, 1)));
    let mut s = segmenter(0).with_dash_cuts(10);
    let events = run(&mut s, &frames);
    let full: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, HlsEvent::QueueFull { .. }))
        .collect();
    assert_eq!(full.len(), 2, "{full:?}");
    assert!(matches!(
        full[0],
        HlsEvent::QueueFull {
            track: VIDEO,
            limit: 10
        }
    ));
    // Frames 60..120 come after S: 10 held, 50 dropped; after the IDR at 120, frames
    // 180..200: 10 held, 10 dropped.
    assert_eq!(s.dropped(), 60);
    let first = segments(&events)[0];
    assert_eq!(
        demux(&first.bytes).len(),
        70,
        "60 frames before S and 10 held"
    );
    s.finish();
    let last = std::iter::from_fn(|| s.pull()).collect::<Vec<_>>();
    let last = segments(&last);
    assert_eq!(
        demux(&last[0].bytes).len(),
        70,
        "60 frames before S and 10 held"
    );
}

#[test]
fn a_dash_queue_bound_changed_mid_run_applies_to_the_next_held_frames() {
    // As above, but the bound grows from 10 to 20 at the IDR: the second episode's 20 frames
    // past S are all held.
    let first: Vec<Frame> = (0..120)
        .map(|i| video(T0 + i * VIDEO_STEP, i == 0, 1))
        .collect();
    let mut second = vec![video(T0 + 120 * VIDEO_STEP, true, 1)];
    second.extend((121..200).map(|i| video(T0 + i * VIDEO_STEP, false, 1)));
    let mut s = segmenter(0).with_dash_cuts(10);
    run(&mut s, &first);
    assert_eq!(s.dropped(), 50);
    s.set_dash_queue(20);
    let events = run(&mut s, &second);
    assert_eq!(s.dropped(), 50, "nothing dropped with room for 20");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, HlsEvent::QueueFull { .. })),
        "{events:?}"
    );
    s.finish();
    let last = std::iter::from_fn(|| s.pull()).collect::<Vec<_>>();
    assert_eq!(
        demux(&segments(&last)[0].bytes).len(),
        80,
        "60 frames before S and 20 held"
    );
    // Without DASH cutting it is nothing.
    let mut hls = segmenter(0);
    hls.set_dash_queue(5);
    assert_eq!(hls.dropped(), 0);
}
