//! Outputs that run without a viewer: HLS windows served from memory, and RTMP(S) push-out
//! to platforms (L2).
//!
//! # Model
//!
//! - One [`HlsRegistry`] per process maps stream codes to running HLS outputs; the media
//!   routes ask it with [`HlsRegistry::get`] for `index.m3u8` or `seg_<n>.ts` and get an
//!   [`Asset`] (body, content type, cache control) or `None` (404).
//! - [`start_hls`] starts one output: a tokio task that subscribes to a hub buffer from its
//!   last keyframe, feeds the frames to the sans-IO [`tributary_packager::HlsSegmenter`]
//!   (reading the clocks once per wake-up) and publishes every finished segment and the
//!   re-rendered playlist into the registry. Readers never wait for the task: they take a
//!   short read lock and clone `Bytes`.
//! - Lost frames (the hub's `Lagged`) close the open segment and mark the next one a
//!   discontinuity, as a new session does. When the buffer is deleted the task closes its
//!   last segment and ends.
//! - Segments that leave the playlist stay fetchable for their duration plus the playlist's,
//!   plus `history` more (SPEC §HLS "Retention"), then are dropped: memory stays bounded by
//!   the window, the history and at most `2 × window + 2` retired segments.
//! - Dropping the [`HlsHandle`] (or [`HlsHandle::stop`]) ends the task and removes the
//!   window: its URLs are 404 at once. The registry remembers the last segment number per
//!   code, so the next run never reuses a URI.
//!
//! Until the first segment is finished (about S after the first keyframe) `index.m3u8` is
//! `None`; the HTTP layer may map that to 404 or retry briefly.
//!
//! LL-HLS ([`HlsSettings::part_sec`], fMP4 only): the same task also publishes every part of
//! the open segment as it is cut, with the playlist re-rendered (and its `_HLS_skip` delta
//! update) each time; [`HlsRegistry::wait_ready`] holds blocking playlist reloads and
//! preload-hint requests on a per-output `watch` until their part exists (no thread, no
//! polling; bounded in time and number), and a ladder's variant playlists end with
//! `#EXT-X-RENDITION-REPORT`s of the other rungs.
//!
//! DASH ([`HlsSettings::dash`]) rides on the same output task: the frames it reads also go
//! through a video and an audio fMP4 segmenter cut and numbered as the HLS one, and the
//! registry answers `index.mpd` (rendered on request over every rung), `init_v.mp4`,
//! `seg_v_<n>.m4s`, `init_a.mp4` and `seg_a_<n>.m4s` (SPEC §DASH). [`HlsSettings::hls`] false
//! serves DASH alone.
//!
//! RTMP(S) push-out: [`start_push`] runs one task per target that subscribes to a buffer from
//! its last keyframe and publishes it with the sans-IO `tributary_rtmp::ClientSession`,
//! reconnecting with backoff; [`PushHandle::state`] reports `starting` / `active` /
//! `reconnecting` / `failed`, the attempt count, `connected_at` and the last 5 errors, with
//! the URL redacted. A slow target drops only its own frames (a 5 s queue, then the next
//! keyframe).
//!
//! # Example
//!
//! ```
//! use std::time::Instant;
//!
//! use bytes::Bytes;
//! use tributary_hub::{BufferId, Hub};
//! use tributary_media::{Codec, Frame, SessionId, StreamCode, TrackId, Ts90};
//! use tributary_publish::{HlsRegistry, HlsSettings, start_hls};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let hub = Hub::new();
//! let registry = HlsRegistry::new();
//! let code: StreamCode = "match-day".parse().unwrap();
//! let buffer = BufferId::Stream(code.clone());
//! let mut writer = hub.create(buffer.clone(), 1024).unwrap();
//!
//! let handle = start_hls(&registry, &hub, code.clone(), buffer, HlsSettings::default()).unwrap();
//! assert!(registry.contains(&code));
//! assert!(registry.get(&code, "index.m3u8").is_none(), "no segment yet");
//!
//! // 3 s of 25 fps video with a keyframe every second: one segment closes at 2 s.
//! for i in 0..75 {
//!     let keyframe = i % 25 == 0;
//!     writer.write(Frame {
//!         track: TrackId(0x100),
//!         codec: Codec::H264,
//!         pts: Ts90(i * 3600),
//!         dts: Ts90(i * 3600),
//!         keyframe,
//!         session: SessionId(0),
//!         arrival: Instant::now(),
//!         payload: Bytes::from_static(&[0, 0, 0, 1, 0x65, 0x88]),
//!         config: None,
//!     }).unwrap();
//! }
//! let playlist = loop {
//!     if let Some(asset) = registry.get(&code, "index.m3u8") {
//!         break asset;
//!     }
//!     tokio::task::yield_now().await;
//! };
//! assert_eq!(playlist.content_type, "application/vnd.apple.mpegurl");
//! let text = String::from_utf8(playlist.body.to_vec()).unwrap();
//! let uri = text.lines().last().unwrap();
//! assert!(uri.starts_with("seg_") && uri.ends_with(".ts"));
//! assert_eq!(registry.get(&code, uri).unwrap().content_type, "video/mp2t");
//!
//! handle.stop();
//! assert!(registry.get(&code, "index.m3u8").is_none());
//! assert!(registry.get(&code, uri).is_none());
//! # });
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

mod dash;
mod error;
mod hls;
mod latency;
mod push;

pub use dash::DashSettings;
pub use error::PublishError;
pub use hls::{
    Asset, BlockError, BlockingCounts, DEFAULT_PART_SEC, HlsHandle, HlsRegistry, HlsSettings,
    LlQuery, MIN_PART_SEC, Variant, start_hls, start_hls_variant,
};
pub use latency::{LATENCY_BUCKETS, LatencySnapshot};
pub use push::{
    CLOSE_GRACE, PushChange, PushHandle, PushObserver, PushSettings, PushState, PushStatus,
    QUEUE_BYTES, QUEUE_SPAN, start_push,
};
