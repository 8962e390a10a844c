//! What an [`HlsSegmenter`](super::HlsSegmenter) is told when it is made: S, numbering, the
//! container and, for LL-HLS, the part length. Kept apart from the segmenter so that its
//! file stays about cutting.

use std::time::Duration;

use tributary_media::{Codec, Ts90};

/// What the segmenter is told when it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HlsConfig {
    /// S, the shortest segment (`live_segment_sec`). Default 2 s; at least 1 ms.
    pub segment: Duration,
    /// The number of the first segment. The publisher passes max(Unix seconds now, last
    /// number used for the stream + 1), so URIs never repeat (SPEC §HLS "Numbering").
    /// Default 0. With a [`grid`](Self::grid), the number of the cell that starts at PTS 0.
    pub first_number: u64,
    /// The keyframe interval k of an ABR ladder whose encoders force keyframes on the same
    /// absolute PTS instants (every k) in every rung: segments are cut and numbered on that
    /// grid (see [`HlsSegmenter`](super::HlsSegmenter)), so the variants' segments line up. `None` (the default):
    /// numbered one after the other from `first_number`.
    pub grid: Option<Ts90>,
    /// The container: MPEG-TS (the default), fMP4, or fMP4 only when the codecs need it
    /// (SPEC §HLS "fMP4").
    pub format: SegmentFormat,
    /// LL-HLS: the part length (`part_sec`, PART-TARGET). With fMP4, each segment is also
    /// cut into parts of at most this length ([`HlsEvent::Part`](super::HlsEvent::Part));
    /// ignored for MPEG-TS. `None` (the default): no parts.
    pub part: Option<Duration>,
}

/// The container of HLS segments (`publisher.hls.segment_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SegmentFormat {
    /// MPEG-TS (`seg_<n>.ts`, `#EXT-X-VERSION:3`): what every player reads.
    #[default]
    Ts,
    /// fMP4 / CMAF (`init.mp4` + `seg_<n>.m4s`, `#EXT-X-MAP`, `#EXT-X-VERSION:7`).
    Fmp4,
    /// fMP4 when the stream carries a codec that needs it (H.265, AV1, VP9, Opus), else MPEG-TS;
    /// decided by the first session.
    Auto,
}

impl SegmentFormat {
    /// Whether segments of this format carry `codec` (SPEC §Publisher "Codec support per
    /// output"); `Auto` takes what either format does until it has decided.
    pub fn carries(self, codec: Codec) -> bool {
        let ts = matches!(
            codec,
            Codec::H264
                | Codec::H265
                | Codec::Aac
                | Codec::Mp2
                | Codec::Mp3
                | Codec::Ac3
                | Codec::Eac3
                | Codec::Scte35
        );
        let fmp4 = matches!(
            codec,
            Codec::H264
                | Codec::H265
                | Codec::Av1
                | Codec::Vp9
                | Codec::Aac
                | Codec::Opus
                | Codec::Ac3
                | Codec::Eac3
        );
        match self {
            Self::Ts => ts,
            Self::Fmp4 => fmp4,
            Self::Auto => ts || fmp4,
        }
    }

    /// How logs and warnings name the format: `HLS-TS`, `HLS-fMP4` (`HLS` undecided).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ts => "HLS-TS",
            Self::Fmp4 => "HLS-fMP4",
            Self::Auto => "HLS",
        }
    }
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            segment: Duration::from_secs(2),
            first_number: 0,
            grid: None,
            format: SegmentFormat::Ts,
            part: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn av1_and_vp9_go_to_fmp4_only() {
        for codec in [Codec::Av1, Codec::Vp9] {
            assert!(!SegmentFormat::Ts.carries(codec), "{codec}");
            assert!(SegmentFormat::Fmp4.carries(codec), "{codec}");
            assert!(SegmentFormat::Auto.carries(codec), "{codec}");
        }
    }
}
