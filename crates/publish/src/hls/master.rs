//! The ABR master playlist (SPEC §HLS "ABR"): one `#EXT-X-STREAM-INF` per rung, in profile
//! order, for the rungs whose media playlist has a segment; rendered on request from what each
//! rung's output has seen, so a change shows at the next fetch.

use std::fmt::Write as _;

use tributary_media::codec::FrameRate;
use tributary_media::{MediaKind, TrackInfo};

/// One variant of a master playlist, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// The rung's directory under the stream (`track_1`).
    pub track: String,
    /// Peak bits per second (`BANDWIDTH`): the rung's peak video rate plus audio.
    pub bandwidth: u64,
    /// Average bits per second (`AVERAGE-BANDWIDTH`): the rung's video rate plus audio.
    pub average_bandwidth: u64,
}

/// What a rung's output measured from the bitstream: its video and audio track parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Measured {
    /// The last video track configuration seen.
    pub(crate) video: Option<TrackInfo>,
    /// The last audio track configuration seen.
    pub(crate) audio: Option<TrackInfo>,
    /// Whether its newest segment is fMP4 (the master's `#EXT-X-VERSION` follows).
    pub(crate) fmp4: bool,
}

impl Measured {
    /// Records `info` of a track of `kind`; whether it changed.
    pub(crate) fn update(&mut self, kind: MediaKind, info: &TrackInfo) -> bool {
        let slot = match kind {
            MediaKind::Video => &mut self.video,
            MediaKind::Audio => &mut self.audio,
            _ => return false,
        };
        if slot.as_ref() == Some(info) {
            return false;
        }
        *slot = Some(info.clone());
        true
    }
}

/// Renders the master playlist of `variants`, each with what its output measured; `None` while
/// no variant has a playlist. Its `#EXT-X-VERSION` is the variants': 7 when they are fMP4
/// (`#EXT-X-MAP` in their media playlists), else 3 (SPEC §HLS "Playlist"); players such as
/// hls.js and AVPlayer read a master whose version is below its variants' as a mismatch.
pub(crate) fn render(variants: &[(Variant, Option<Measured>)]) -> Option<String> {
    let fmp4 = variants
        .iter()
        .any(|(_, m)| m.as_ref().is_some_and(|m| m.fmp4));
    let version = if fmp4 { 7 } else { 3 };
    let mut text = format!("#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let mut any = false;
    for (variant, measured) in variants {
        let Some(measured) = measured else {
            continue;
        };
        any = true;
        let _ = write!(
            text,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={}",
            variant.bandwidth, variant.average_bandwidth
        );
        if let Some(video) = &measured.video
            && let (Some(w), Some(h)) = (video.width, video.height)
        {
            let _ = write!(text, ",RESOLUTION={w}x{h}");
        }
        let codecs: Vec<&str> = [&measured.video, &measured.audio]
            .into_iter()
            .flatten()
            .filter_map(|t| t.codec_string.as_deref())
            .collect();
        if !codecs.is_empty() {
            let _ = write!(text, ",CODECS=\"{}\"", codecs.join(","));
        }
        if let Some(rate) = measured.video.as_ref().and_then(|v| v.frame_rate) {
            let _ = write!(text, ",FRAME-RATE={:.3}", frame_rate(rate));
        }
        let _ = write!(text, "\n{}/index.m3u8\n", variant.track);
    }
    any.then_some(text)
}

fn frame_rate(rate: FrameRate) -> f64 {
    f64::from(rate.num) / f64::from(rate.den.max(1))
}

#[cfg(test)]
mod tests {
    use tributary_media::Codec;

    use super::*;

    fn variant(n: u32, kbps: u64) -> Variant {
        Variant {
            track: format!("track_{n}"),
            bandwidth: kbps * 1100 + 128_000,
            average_bandwidth: kbps * 1000 + 128_000,
        }
    }

    fn measured(w: u32, h: u32) -> Measured {
        let mut video = TrackInfo::new(Codec::H264);
        video.width = Some(w);
        video.height = Some(h);
        video.frame_rate = FrameRate::new(30, 1);
        video.codec_string = Some("avc1.64001f".into());
        let mut audio = TrackInfo::new(Codec::Aac);
        audio.codec_string = Some("mp4a.40.2".into());
        Measured {
            video: Some(video),
            audio: Some(audio),
            fmp4: false,
        }
    }

    #[test]
    fn lists_the_variants_with_a_playlist_in_profile_order() {
        let text = render(&[
            (variant(1, 1000), Some(measured(640, 360))),
            (variant(2, 300), None),
            (variant(3, 100), Some(measured(160, 90))),
        ])
        .expect("two variants have a playlist");
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1228000,AVERAGE-BANDWIDTH=1128000,RESOLUTION=640x360,\
             CODECS=\"avc1.64001f,mp4a.40.2\",FRAME-RATE=30.000\ntrack_1/index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=238000,AVERAGE-BANDWIDTH=228000,RESOLUTION=160x90,\
             CODECS=\"avc1.64001f,mp4a.40.2\",FRAME-RATE=30.000\ntrack_3/index.m3u8\n"
        );
    }

    #[test]
    fn an_fmp4_ladder_master_is_version_7() {
        let fmp4 = Measured {
            fmp4: true,
            ..measured(640, 360)
        };
        let text = render(&[(variant(1, 1000), Some(fmp4))]).expect("one variant");
        assert!(
            text.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"),
            "{text}"
        );
    }

    #[test]
    fn no_master_before_the_first_segment() {
        assert_eq!(render(&[(variant(1, 1000), None)]), None);
    }
}
