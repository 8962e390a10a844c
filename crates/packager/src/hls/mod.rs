//! HLS: the live segmenter and the media playlist.

mod config;
mod ll;
mod playlist;
mod segmenter;

pub use config::{HlsConfig, SegmentFormat};
pub use ll::{PartEntry, parse_part_name, part_name, write_rendition_report};
pub use playlist::{
    InitName, MediaPlaylist, PART_SEGMENTS, PLAYLIST_NAME, PlaylistEntry, fmp4_segment_name,
    parse_fmp4_segment_name, parse_segment_name, segment_name,
};
pub use segmenter::{HlsEvent, HlsSegmenter, InitSegment, Part, Segment, SegmentEnd};
