//! HLS: the live segmenter and the media playlist.

mod playlist;
mod segmenter;

pub use playlist::{MediaPlaylist, PLAYLIST_NAME, PlaylistEntry, parse_segment_name, segment_name};
pub use segmenter::{HlsConfig, HlsEvent, HlsSegmenter, Segment, SegmentEnd};
