//! The FFmpeg command line of one thumbnail (SPEC §Publisher "Thumbnail"): one keyframe of the
//! playback feed in on stdin (Annex-B H.264 or H.265), one JPEG out on the first output pipe.

use std::time::Duration;

use crate::stream::Thumbnail;

use super::FIRST_OUTPUT_FD;

/// A stream's thumbnail settings with SPEC's defaults filled in (`interval_sec` 10, `width`
/// 320, aspect kept, `quality` 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThumbnailSpec {
    /// Time between snapshots.
    pub interval: Duration,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels; 0 keeps the aspect ratio.
    pub height: u32,
    /// JPEG quality, 1 (best) to 31.
    pub quality: u32,
}

impl ThumbnailSpec {
    /// The settings of `thumbnail`, defaults for zeros (validation bounded the rest).
    pub fn of(thumbnail: &Thumbnail) -> Self {
        let or = |value: u32, default: u32| if value == 0 { default } else { value };
        Self {
            interval: Duration::from_secs(u64::from(or(thumbnail.interval_sec, 10))),
            width: or(thumbnail.width, 320),
            height: thumbnail.height,
            quality: or(thumbnail.quality, 5).min(31),
        }
    }

    /// The argv (after the program) that decodes one `input` (`h264` or `hevc`, FFmpeg's
    /// demuxer names) keyframe from stdin into a JPEG on `pipe:3`.
    pub fn argv(&self, input: &str) -> Vec<String> {
        let height = if self.height == 0 {
            "-2".to_owned()
        } else {
            self.height.to_string()
        };
        [
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            input,
            "-i",
            "pipe:0",
            "-frames:v",
            "1",
            "-vf",
            &format!("scale={}:{height}", self.width),
            "-q:v",
            &self.quality.to_string(),
            "-f",
            "image2pipe",
            "-c:v",
            "mjpeg",
            &format!("pipe:{FIRST_OUTPUT_FD}"),
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::ThumbnailSpec;
    use crate::stream::Thumbnail;

    #[test]
    fn defaults_and_the_golden_argv() {
        let spec = ThumbnailSpec::of(&Thumbnail::default());
        assert_eq!(
            spec,
            ThumbnailSpec {
                interval: Duration::from_secs(10),
                width: 320,
                height: 0,
                quality: 5
            }
        );
        assert_eq!(
            spec.argv("h264").join(" "),
            "-hide_banner -loglevel error -f h264 -i pipe:0 -frames:v 1 -vf scale=320:-2 \
             -q:v 5 -f image2pipe -c:v mjpeg pipe:3"
        );
        let spec = ThumbnailSpec::of(&Thumbnail {
            enabled: true,
            interval_sec: 2,
            width: 640,
            height: 360,
            quality: 2,
            output_dir: None,
        });
        assert_eq!(spec.interval, Duration::from_secs(2));
        let argv = spec.argv("hevc").join(" ");
        assert!(argv.contains("-f hevc -i pipe:0"), "{argv}");
        assert!(argv.contains("-vf scale=640:360 -q:v 2"), "{argv}");
    }
}
