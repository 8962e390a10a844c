//! HLS: the live segmenter and the media playlist.

mod playlist;
mod segmenter;

pub use playlist::{
    InitName, MediaPlaylist, PLAYLIST_NAME, PlaylistEntry, fmp4_segment_name,
    parse_fmp4_segment_name, parse_segment_name, segment_name,
};
pub use segmenter::{
    HlsConfig, HlsEvent, HlsSegmenter, InitSegment, Segment, SegmentEnd, SegmentFormat,
};
