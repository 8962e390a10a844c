//! HLS and DASH segmenting, playlists, the MPD and fMP4 boxes, sans-IO (L0).
//!
//! Frames and the wall time at which they arrived go in; numbered MPEG-TS segments and the
//! playlist text come out. Nothing here reads a clock, touches a disk or spawns anything
//! (ARCHITECTURE.md §3), so a fixed frame sequence always yields the same bytes.
//!
//! - [`HlsSegmenter`]: cuts a buffer's frames into segments as SPEC §HLS says (at the first
//!   video keyframe at least S after the segment's start, every S for audio-only, at each new
//!   session, forced at TARGETDURATION + 0.5 s) and muxes each into TS through
//!   [`tributary_mpegts::Muxer`]. Results come out of [`pull`](HlsSegmenter::pull) as
//!   [`HlsEvent`]s.
//! - [`MediaPlaylist`]: the sliding window of the last `live_window` segments, rendered as the
//!   `index.m3u8` a player fetches. What slides out is handed back for retention, which the
//!   caller (holding the clock) applies.
//! - LL-HLS ([`HlsConfig::part`], [`MediaPlaylist::low_latency`]): parts of each fMP4
//!   segment ([`Part`], `part_<n>.<i>.m4s`), listed with `#EXT-X-PART`, the preload hint,
//!   server control and delta updates (the `hls::ll` module).
//! - [`UnixMillis`]: wall time as passed in, printed as `#EXT-X-PROGRAM-DATE-TIME` wants.
//! - [`Fmp4Track`], [`write_init`], [`Fragmenter`]: the fMP4 / CMAF writer, init segments and
//!   `moof` + `mdat` media segments from the same frames (its module doc says why it does not
//!   use the `mp4-atom` crate, which its tests read the output with).
//! - [`Timeline`], [`Mpd`]: DASH from the same segments (its module doc says how video and
//!   audio each run through a segmenter of their own, numbered as HLS numbers them).
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! use bytes::Bytes;
//! use tributary_media::{Codec, Frame, SessionId, TrackId, Ts90};
//! use tributary_packager::{HlsConfig, HlsEvent, HlsSegmenter, MediaPlaylist, UnixMillis};
//!
//! let mut segmenter = HlsSegmenter::new(HlsConfig {
//!     segment: Duration::from_secs(2),
//!     first_number: 1_795_514_400,
//!     grid: None,
//!     format: Default::default(),
//!     part: None,
//! });
//! let mut playlist = MediaPlaylist::new(12);
//! let arrival = Instant::now();
//! // Video only, 25 fps, a keyframe every second: 5 s of it.
//! for i in 0..125 {
//!     let frame = Frame {
//!         track: TrackId(0x100),
//!         codec: Codec::H264,
//!         pts: Ts90(i * 3600),
//!         dts: Ts90(i * 3600),
//!         keyframe: i % 25 == 0,
//!         session: SessionId(1),
//!         arrival,
//!         payload: Bytes::from_static(&[0, 0, 0, 1, 0x65, 0x88]),
//!         config: None,
//!     };
//!     segmenter.push(&frame, UnixMillis(1_795_514_400_000 + i * 40));
//!     while let Some(event) = segmenter.pull() {
//!         if let HlsEvent::Segment(segment) = event {
//!             assert!(segment.bytes.starts_with(&[0x47, 0x40, 0x00])); // PAT first
//!             playlist.push(&segment);
//!         }
//!     }
//! }
//! // Cut at the keyframes at 2 s and 4 s; the last second is still open.
//! let text = playlist.render();
//! assert!(text.contains("#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1795514400\n"));
//! assert!(text.ends_with(
//!     "#EXT-X-PROGRAM-DATE-TIME:2026-11-24T10:00:02.000Z\n#EXTINF:2.000,\nseg_1795514401.ts\n"
//! ));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

mod dash;
mod fmp4;
mod hls;
mod wall;

pub use dash::{
    Assigned, DashName, Ladder, LadderCut, LadderCuts, MPD_NAME, Mpd, Period, PeriodMark, Periods,
    Representation, Timeline, TimelineEntry, dash_init_name, dash_segment_name,
};
pub use fmp4::{Fmp4Error, Fmp4Track, Fragmenter, write_init};

pub use hls::{
    HlsConfig, HlsEvent, HlsSegmenter, InitName, InitSegment, MediaPlaylist, PART_SEGMENTS,
    PLAYLIST_NAME, Part, PartEntry, PlaylistEntry, Segment, SegmentEnd, SegmentFormat,
    fmp4_segment_name, parse_fmp4_segment_name, parse_part_name, parse_segment_name, part_name,
    segment_name, write_rendition_report,
};
pub use wall::UnixMillis;
