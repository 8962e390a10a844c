//! Frames, clips and waiting helpers.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tributary_media::{Codec, Frame, SessionId, StreamCode, TrackConfig, TrackId, Ts90};
use tributary_mpegts::{DemuxEvent, Demuxer, DemuxerConfig};
use tributary_publish::HlsRegistry;
use tributary_testkit::{ClipSpec, cached_clip};

pub(crate) const VIDEO: TrackId = TrackId(0x100);
/// 25 fps.
pub(crate) const FRAME: i64 = 3600;

pub(crate) fn code(name: &str) -> StreamCode {
    name.parse().expect("a valid stream code")
}

/// Video frame `i` of a 25 fps stream with a keyframe every `gop` frames.
pub(crate) fn video(i: i64, gop: i64) -> Frame {
    let keyframe = i % gop == 0;
    let payload: &'static [u8] = if keyframe {
        &[0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21]
    } else {
        &[0, 0, 0, 1, 0x41, 0x9a, 0x02]
    };
    Frame {
        track: VIDEO,
        codec: Codec::H264,
        pts: Ts90(i * FRAME),
        dts: Ts90(i * FRAME),
        keyframe,
        session: SessionId(0),
        arrival: Instant::now(),
        payload: Bytes::from_static(payload),
        config: None,
    }
}

/// An Opus frame, which HLS-TS cannot carry.
pub(crate) fn opus(i: i64) -> Frame {
    Frame {
        track: TrackId(0x102),
        codec: Codec::Opus,
        pts: Ts90(i * 1800),
        dts: Ts90(i * 1800),
        keyframe: true,
        session: SessionId(0),
        arrival: Instant::now(),
        payload: Bytes::from_static(b"opus"),
        config: Some(Arc::new(TrackConfig {
            info: tributary_media::TrackInfo::new(Codec::Opus),
            decoder_config: Bytes::new(),
        })),
    }
}

/// The frames of a 6 s 720p H.264 + AAC clip made by ffmpeg, keyframe every 2 s.
pub(crate) fn clip_frames() -> Vec<Frame> {
    frames_of(&ClipSpec {
        seconds: 6,
        gop: 60,
        ..ClipSpec::default()
    })
}

/// The frames of the clip `spec` describes, as the TS demuxer reads them.
pub(crate) fn frames_of(spec: &ClipSpec) -> Vec<Frame> {
    let path = cached_clip(spec, "ts").expect("encoding the test clip with ffmpeg");
    let ts = std::fs::read(&path).expect("reading the test clip");
    let mut demuxer = Demuxer::new(DemuxerConfig::default());
    let mut frames = Vec::new();
    let mut take = |demuxer: &mut Demuxer| {
        while let Some(event) = demuxer.pull() {
            if let DemuxEvent::Frame(frame) = event.expect("the clip demuxes cleanly") {
                frames.push(frame);
            }
        }
    };
    for chunk in ts.chunks(1316) {
        demuxer.push(chunk, Instant::now());
        take(&mut demuxer);
    }
    demuxer.flush();
    take(&mut demuxer);
    frames
}

/// Lets the runtime run (without moving paused time) until `check` gives a value.
pub(crate) async fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..100_000 {
        if let Some(value) = check() {
            return value;
        }
        tokio::task::yield_now().await;
    }
    panic!("never reached: {what}");
}

/// The playlist of `code` as text, if served.
pub(crate) fn playlist(registry: &HlsRegistry, code: &StreamCode) -> Option<String> {
    let asset = registry.get(code, "index.m3u8")?;
    Some(String::from_utf8(asset.body.to_vec()).expect("the playlist is UTF-8"))
}

/// The segment URIs a playlist lists.
pub(crate) fn uris(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Waits until the playlist of `code` lists `count` segments (or more) and returns it.
pub(crate) async fn until_listed(
    registry: &HlsRegistry,
    code: &StreamCode,
    count: usize,
) -> String {
    until(&format!("{count} segments listed"), || {
        playlist(registry, code).filter(|p| uris(p).len() >= count)
    })
    .await
}
