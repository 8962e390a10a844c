use std::sync::Arc;

use bytes::Bytes;
use tributary_media::{Codec, SessionId, TrackConfig};
use tributary_mpegts::LiveWriter;

use super::*;

/// 2026-11-24T10:00:00.000Z.
const T0: i64 = 1_795_514_400_000;
/// x264 High 1280x720: SPS, PPS, SEI and an IDR slice (crates/media/testdata/README.md).
const X264_KEYFRAME: &[u8] =
    include_bytes!("../../../media/testdata/ffmpeg_x264_high_1280x720_30fps.h264");
/// A frame at 30 fps, in 90 kHz ticks.
const FRAME: i64 = 3000;
/// An AAC frame at 48 kHz (1024 samples), in 90 kHz ticks.
const AAC: i64 = 1920;
/// The first segment's first PTS: not 0, as a live source's is not.
const BASE: i64 = 900_000;

fn entry(seq: u64, discontinuity: bool) -> SegmentEntry {
    SegmentEntry {
        seq,
        start: UnixMillis(T0 + seq as i64 * 4000),
        duration_ms: 4000,
        size: 0,
        discontinuity,
    }
}

fn at(seconds: f64) -> UnixMillis {
    UnixMillis(T0 + (seconds * 1000.0) as i64)
}

/// Segment `seq` as the recorder writes it: 4 s of 30 fps H.264 with a keyframe every
/// second and AAC, starting at a keyframe, `pts_base` the PTS of its first frame.
fn segment(pts_base: i64) -> Vec<u8> {
    let config = TrackConfig::aac(Bytes::from_static(&[0x11, 0x90])).map(Arc::new);
    let mut frames = Vec::new();
    for i in 0..120 {
        let key = i % 30 == 0;
        let payload = if key {
            Bytes::from_static(X264_KEYFRAME)
        } else {
            Bytes::from_static(&[0, 0, 0, 1, 0x41, 0x9a, 0x21, 0x11, 0x22])
        };
        let t = pts_base + i * FRAME;
        frames.push(Frame {
            track: TrackId(0x100),
            codec: Codec::H264,
            pts: Ts90(t),
            dts: Ts90(t),
            keyframe: key,
            session: SessionId(1),
            arrival: Instant::now(),
            payload,
            config: None,
        });
    }
    for i in 0..(4 * Ts90::HZ / AAC) {
        let t = pts_base + i * AAC;
        frames.push(Frame {
            track: TrackId(0x101),
            codec: Codec::Aac,
            pts: Ts90(t),
            dts: Ts90(t),
            keyframe: true,
            session: SessionId(1),
            arrival: Instant::now(),
            payload: Bytes::from_static(&[0x21, 0x10, 0x04, 0x60]),
            config: config.clone(),
        });
    }
    frames.sort_by_key(|f| f.dts);
    let mut writer = LiveWriter::new();
    let mut ts = Vec::new();
    for frame in frames {
        writer.push(frame);
        while let Some(chunk) = writer.pull() {
            ts.extend_from_slice(&chunk);
        }
    }
    ts
}

/// The boxes of `data` at one level: (type, body).
fn boxes(data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 8 {
        let size = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = rest[4..8].try_into().unwrap();
        out.push((kind, &rest[8..size]));
        rest = &rest[size..];
    }
    out
}

/// Per fragment and track: (track_ID, tfdt, sample count, first sample is sync).
fn fragments(chunks: &[Bytes]) -> Vec<(u32, u64, u32, bool)> {
    let mut out = Vec::new();
    for chunk in chunks {
        for (kind, moof) in boxes(chunk) {
            if &kind != b"moof" {
                continue;
            }
            for (kind, traf) in boxes(moof) {
                if &kind != b"traf" {
                    continue;
                }
                let parts = boxes(traf);
                let body = |name: &[u8; 4]| parts.iter().find(|(k, _)| k == name).unwrap().1;
                let id = u32::from_be_bytes(body(b"tfhd")[4..8].try_into().unwrap());
                let tfdt = u64::from_be_bytes(body(b"tfdt")[4..12].try_into().unwrap());
                let trun = body(b"trun");
                let count = u32::from_be_bytes(trun[4..8].try_into().unwrap());
                let flags = u32::from_be_bytes(
                    trun[1..4]
                        .try_into()
                        .map(|b: [u8; 3]| [0, b[0], b[1], b[2]])
                        .unwrap(),
                );
                // Video runs carry per-sample flags: data_offset, then duration, size, flags.
                let sync = flags & 0x400 == 0
                    || u32::from_be_bytes(trun[20..24].try_into().unwrap()) & 0x0001_0000 == 0;
                out.push((id, tfdt, count, sync));
            }
        }
    }
    out
}

fn remux(window: Window, segments: &[(SegmentEntry, Vec<u8>)]) -> (Remuxer, Vec<Bytes>) {
    let mut remuxer = Remuxer::new(window);
    let mut chunks = Vec::new();
    for (entry, ts) in segments {
        remuxer.push_segment(entry, ts, Instant::now()).unwrap();
        chunks.extend(std::iter::from_fn(|| remuxer.pull()));
        if remuxer.ended() {
            break;
        }
    }
    (remuxer, chunks)
}

#[test]
fn a_clip_starts_at_the_keyframe_before_from_and_ends_before_to() {
    let segments: Vec<_> = (0..3)
        .map(|i| (entry(i, false), segment(BASE + i as i64 * 4 * Ts90::HZ)))
        .collect();
    // 5.5 s .. 9.5 s: from the keyframe at 5 s (segment 1's second), into segment 2.
    let window = Window {
        start: at(5.5),
        end: at(9.5),
    };
    let (remuxer, chunks) = remux(window, &segments);
    assert!(remuxer.ended());
    let init = boxes(&chunks[0]);
    assert_eq!(&init[0].0, b"ftyp");
    assert_eq!(&init[1].0, b"moov");
    let traks = boxes(init[1].1)
        .iter()
        .filter(|(k, _)| k == b"trak")
        .count();
    assert_eq!(traks, 2, "video and audio in one moov");
    let runs = fragments(&chunks[1..]);
    let video: Vec<_> = runs.iter().filter(|r| r.0 == 1).collect();
    let audio: Vec<_> = runs.iter().filter(|r| r.0 == 2).collect();
    assert_eq!(video[0].1, 0, "the clip starts at 0");
    assert!(video[0].3, "the first video sample is a keyframe");
    // 5.0 s .. 9.5 s at 30 fps.
    assert_eq!(video.iter().map(|r| r.2).sum::<u32>(), 135);
    assert_eq!(video[1].1, 3 * 90_000, "segment 2 follows at 8.0 s - 5.0 s");
    // Audio from 5.0 s (frame 2344 at 48 kHz is the first at or after it) to 9.5 s.
    let samples: u32 = audio.iter().map(|r| r.2).sum();
    assert!((209..=212).contains(&samples), "{samples} AAC frames");
    assert!(
        audio[0].1 < 48_000 / 20,
        "audio starts with the video: {}",
        audio[0].1
    );
}

#[test]
fn a_discontinuity_is_closed_up() {
    // Segment 1 comes from a restarted source whose timestamps start over.
    let segments = vec![
        (entry(0, false), segment(BASE)),
        (entry(1, true), segment(0)),
    ];
    let window = Window {
        start: at(0.0),
        end: at(8.0),
    };
    let (_, chunks) = remux(window, &segments);
    let video: Vec<_> = fragments(&chunks[1..])
        .into_iter()
        .filter(|r| r.0 == 1)
        .collect();
    assert_eq!(video.len(), 2);
    assert_eq!(video[0].1, 0);
    // Joined on one frame after the latest sample (audio runs 120 ticks past the video).
    assert!(
        (120 * 3000..=121 * 3000).contains(&video[1].1),
        "joined on right after the first segment: {}",
        video[1].1
    );
}

#[test]
fn a_window_before_any_keyframe_starts_at_the_first() {
    let segments = vec![(entry(0, false), segment(BASE))];
    let window = Window {
        start: at(-3.0),
        end: at(2.0),
    };
    let (remuxer, chunks) = remux(window, &segments);
    assert!(remuxer.started());
    let video: u32 = fragments(&chunks[1..])
        .iter()
        .filter(|r| r.0 == 1)
        .map(|r| r.2)
        .sum();
    assert_eq!(video, 60);
}

#[test]
fn garbage_makes_no_clip() {
    let mut remuxer = Remuxer::new(Window {
        start: at(0.0),
        end: at(4.0),
    });
    remuxer
        .push_segment(&entry(0, false), &[0x47; 188 * 4], Instant::now())
        .unwrap();
    assert!(!remuxer.started());
    assert!(remuxer.pull().is_none());
}

fn log() -> Vec<SegmentEntry> {
    (0..10).map(|i| entry(i, false)).collect()
}

fn now() -> UnixMillis {
    at(60.0)
}

#[test]
fn clip_windows_from_the_query() {
    let max = 3_600_000;
    let from = |s: f64| at(s).0 as f64 / 1000.0;
    let w = clip_window(
        &format!("from={}&to={}", from(5.0), from(15.0)),
        now(),
        &log(),
        max,
    )
    .unwrap();
    assert_eq!((w.start, w.end), (at(5.0), at(15.0)));
    let w = clip_window(
        "from=2026-11-24T10%3A00%3A05Z&duration=10",
        now(),
        &log(),
        max,
    )
    .unwrap();
    assert_eq!((w.start, w.end), (at(5.0), at(15.0)));
    // Offsets as for timeshift: after the first segment, or before the newest one's end.
    let w = clip_window("offset_sec=3&duration=2", now(), &log(), max).unwrap();
    assert_eq!((w.start, w.end), (at(3.0), at(5.0)));
    let w = clip_window("offset_sec=-10&duration=5", now(), &log(), max).unwrap();
    assert_eq!((w.start, w.end), (at(30.0), at(35.0)));
    // `to` may lie ahead: the clip ends where the recording does.
    let w = clip_window(
        &format!("offset_sec=0&to={}", from(120.0)),
        now(),
        &log(),
        max,
    );
    assert!(w.is_ok());
}

#[test]
fn bad_clip_queries_name_their_parameter() {
    let max = 3_600_000;
    let check = |query: &str, code: &str, param: &str| {
        let e = clip_window(query, now(), &log(), max).unwrap_err();
        assert_eq!((e.code, e.param), (code, param), "{query}: {}", e.message);
        assert!(e.message.contains(param), "{}", e.message);
    };
    check("to=1", "INVALID_QUERY", "from");
    check("from=1", "INVALID_QUERY", "to");
    check("from=1&offset_sec=2&to=3", "INVALID_QUERY", "offset_sec");
    check("from=1&to=3&duration=2", "INVALID_QUERY", "duration");
    check("from=yesterday&to=3", "INVALID_FROM", "from");
    check("from=1&to=soon", "INVALID_TO", "to");
    check("from=5&to=5", "INVALID_TO", "to");
    check("from=1&duration=-2", "INVALID_DURATION", "duration");
    check("from=1&to=4001", "CLIP_TOO_LONG", "to");
    check("offset_sec=0&duration=3601", "CLIP_TOO_LONG", "duration");
    let e = clip_window("from=1&to=4001", now(), &log(), max).unwrap_err();
    assert!(e.message.contains("dvr.max_clip_sec"), "{}", e.message);
    assert!(e.message.contains("3600"), "{}", e.message);
    // The limit is the configured one.
    assert!(clip_window("offset_sec=0&duration=30", now(), &log(), 20_000).is_err());
}
