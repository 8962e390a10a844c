//! Encoders: which FFmpeg encoder a rung's `codec` names on a hardware backend, and how an
//! operator's preset reads in that encoder's family (SPEC §Transcoder, "Encoder" and "Presets").
//!
//! Operators copy presets between ladders that run on different machines (`veryfast` from an
//! x264 box onto an NVENC one), so a preset is translated into the target family instead of
//! being passed verbatim and crashing FFmpeg at start.

use std::fmt;

/// A hardware backend (`transcoder.global.hw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hw {
    /// CPU decoding, scaling and encoding (`""` or `none`).
    None,
    /// NVIDIA: CUDA decoding and scaling, NVENC encoding.
    Nvenc,
    /// VA-API (Intel, AMD on Linux).
    Vaapi,
    /// Intel Quick Sync.
    Qsv,
    /// Apple VideoToolbox (decoding and encoding; scaling on the CPU).
    VideoToolbox,
}

impl Hw {
    /// Every backend, `None` first.
    pub const ALL: [Self; 5] = [
        Self::None,
        Self::Nvenc,
        Self::Vaapi,
        Self::Qsv,
        Self::VideoToolbox,
    ];

    /// Parses `transcoder.global.hw` (`""` counts as `none`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "" | "none" => Some(Self::None),
            "nvenc" => Some(Self::Nvenc),
            "vaapi" => Some(Self::Vaapi),
            "qsv" => Some(Self::Qsv),
            "videotoolbox" => Some(Self::VideoToolbox),
            _ => None,
        }
    }

    /// The name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Nvenc => "nvenc",
            Self::Vaapi => "vaapi",
            Self::Qsv => "qsv",
            Self::VideoToolbox => "videotoolbox",
        }
    }

    /// Whether decoded frames stay in GPU memory, so only this backend's filters and encoders
    /// can take them (VideoToolbox hands frames back to system memory).
    pub fn frames_on_gpu(self) -> bool {
        matches!(self, Self::Nvenc | Self::Vaapi | Self::Qsv)
    }
}

impl fmt::Display for Hw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The family an encoder belongs to: it decides the preset vocabulary and the flags that turn
/// scene-cut keyframes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `libx264` (x264 preset names).
    X264,
    /// `libx265` (x264 preset names).
    X265,
    /// `libvpx-vp9` (speed as `-cpu-used`).
    Vp9,
    /// `libsvtav1` (numeric presets 0–13).
    SvtAv1,
    /// `*_nvenc` (`p1`–`p7` and legacy names).
    Nvenc,
    /// `*_vaapi` (no presets).
    Vaapi,
    /// `*_qsv` (x264 names from `veryfast` to `veryslow`).
    Qsv,
    /// `*_videotoolbox` (no presets).
    VideoToolbox,
    /// Another encoder named verbatim (`h264_amf`, `libopenh264`): presets are dropped.
    Other,
}

impl Family {
    /// The backend whose frames this family encodes: a GPU family needs its own backend's
    /// frames, a CPU family needs frames in system memory.
    pub fn hw(self) -> Option<Hw> {
        match self {
            Self::Nvenc => Some(Hw::Nvenc),
            Self::Vaapi => Some(Hw::Vaapi),
            Self::Qsv => Some(Hw::Qsv),
            Self::VideoToolbox => Some(Hw::VideoToolbox),
            _ => None,
        }
    }
}

/// The video encoder of a rung.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoEncoder {
    /// FFmpeg's encoder name (`libx264`, `h264_nvenc`).
    pub name: String,
    /// Its family.
    pub family: Family,
}

/// Why a rung's `codec` names no encoder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncoderError {
    /// Neither a codec name nor an encoder this server takes verbatim.
    #[error(
        "unknown codec {0:?}: use h264, h265, vp9, av1 or an encoder whose name contains \
         nvenc, qsv, vaapi, videotoolbox, 264, 265 or hevc"
    )]
    Unknown(String),
    /// A name with characters FFmpeg encoder names never have.
    #[error("{0:?} is not an encoder name (letters, digits, '_' and '-' only)")]
    Malformed(String),
}

impl VideoEncoder {
    /// The encoder for `codec` (`""`/`h264`/`avc`, `h265`/`hevc`, `vp9`, `av1`, or an encoder
    /// name taken verbatim) on backend `hw`.
    ///
    /// ```
    /// use tributary_domain::ffmpeg::{Hw, VideoEncoder};
    ///
    /// assert_eq!(VideoEncoder::select("", Hw::None).unwrap().name, "libx264");
    /// assert_eq!(VideoEncoder::select("hevc", Hw::Nvenc).unwrap().name, "hevc_nvenc");
    /// assert_eq!(VideoEncoder::select("h264_qsv", Hw::None).unwrap().name, "h264_qsv");
    /// assert!(VideoEncoder::select("mpeg2video", Hw::None).is_err());
    /// ```
    pub fn select(codec: &str, hw: Hw) -> Result<Self, EncoderError> {
        let name = match (codec.to_ascii_lowercase().as_str(), hw) {
            ("" | "h264" | "avc", Hw::None) => "libx264",
            ("" | "h264" | "avc", Hw::Nvenc) => "h264_nvenc",
            ("" | "h264" | "avc", Hw::Vaapi) => "h264_vaapi",
            ("" | "h264" | "avc", Hw::Qsv) => "h264_qsv",
            ("" | "h264" | "avc", Hw::VideoToolbox) => "h264_videotoolbox",
            ("h265" | "hevc", Hw::None) => "libx265",
            ("h265" | "hevc", Hw::Nvenc) => "hevc_nvenc",
            ("h265" | "hevc", Hw::Vaapi) => "hevc_vaapi",
            ("h265" | "hevc", Hw::Qsv) => "hevc_qsv",
            ("h265" | "hevc", Hw::VideoToolbox) => "hevc_videotoolbox",
            ("vp9", Hw::Vaapi) => "vp9_vaapi",
            ("vp9", Hw::Qsv) => "vp9_qsv",
            ("vp9", _) => "libvpx-vp9",
            ("av1", Hw::Nvenc) => "av1_nvenc",
            ("av1", Hw::Vaapi) => "av1_vaapi",
            ("av1", Hw::Qsv) => "av1_qsv",
            ("av1", _) => "libsvtav1",
            _ => return Self::verbatim(codec),
        };
        Ok(Self {
            name: name.to_owned(),
            family: family_of(name),
        })
    }

    /// An encoder named in full: used as written when its name says what it encodes.
    fn verbatim(name: &str) -> Result<Self, EncoderError> {
        let well_formed = !name.is_empty()
            && name.len() <= 64
            && !name.starts_with('-')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !well_formed {
            return Err(EncoderError::Malformed(name.to_owned()));
        }
        let lower = name.to_ascii_lowercase();
        let known = [
            "nvenc",
            "qsv",
            "vaapi",
            "videotoolbox",
            "264",
            "265",
            "hevc",
        ]
        .iter()
        .any(|part| lower.contains(part));
        if !known {
            return Err(EncoderError::Unknown(name.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            family: family_of(&lower),
        })
    }

    /// Translates an operator's preset into this encoder's family. `Ok(None)`: the family
    /// takes no preset (VAAPI, VideoToolbox), so it is dropped without complaint; `Err`: the
    /// preset means nothing here and is dropped with a warning.
    pub fn preset(&self, preset: &str) -> Result<Option<Preset>, UnknownPreset> {
        let unknown = || UnknownPreset {
            preset: preset.to_owned(),
            encoder: self.name.clone(),
        };
        let preset = preset.to_ascii_lowercase();
        let preset = preset.as_str();
        let level = speed_level(preset);
        // `p1`–`p7`, not `placebo`.
        let p_name = preset.len() == 2 && preset.starts_with('p');
        let named = |name: &str| Ok(Some(Preset::Named(name.to_owned())));
        match self.family {
            Family::Vaapi | Family::VideoToolbox => Ok(None),
            Family::Other => Err(unknown()),
            Family::Nvenc => match (preset, level) {
                (
                    "default" | "hp" | "hq" | "bd" | "ll" | "llhq" | "llhp" | "lossless"
                    | "losslesshp",
                    _,
                ) => named(preset),
                (_, Some(level)) => named(&format!("p{}", level.p)),
                _ => Err(unknown()),
            },
            Family::X264 | Family::X265 => match level {
                Some(level) if p_name => named(X264_BY_P[usize::from(level.p) - 1]),
                Some(_) => named(preset),
                None => Err(unknown()),
            },
            Family::Qsv => match level {
                Some(level) if p_name => named(QSV_BY_P[usize::from(level.p) - 1]),
                Some(_) => named(match preset {
                    "ultrafast" | "superfast" => "veryfast",
                    "placebo" => "veryslow",
                    other => other,
                }),
                None => Err(unknown()),
            },
            Family::SvtAv1 => {
                if let Ok(n) = preset.parse::<u8>()
                    && n <= 13
                {
                    return named(&n.to_string());
                }
                level.map_or_else(|| Err(unknown()), |level| named(&level.svt_av1.to_string()))
            }
            Family::Vp9 => level.map_or_else(
                || Err(unknown()),
                |level| Ok(Some(Preset::CpuUsed(level.vp9_cpu_used))),
            ),
        }
    }
}

/// A preset, as its encoder family spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preset {
    /// `-preset <name>`.
    Named(String),
    /// libvpx speed: `-deadline realtime -cpu-used <n>`.
    CpuUsed(u8),
}

/// A preset that means nothing to an encoder; it is dropped with this warning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown preset {preset:?} for {encoder}; dropped")]
pub struct UnknownPreset {
    /// The preset as written.
    pub preset: String,
    /// The encoder it was meant for.
    pub encoder: String,
}

/// Where a preset sits on the speed scale of each family.
#[derive(Debug, Clone, Copy)]
struct SpeedLevel {
    /// NVENC's `p1` (fastest) to `p7` (slowest).
    p: u8,
    /// SVT-AV1's preset (higher is faster).
    svt_av1: u8,
    /// libvpx's `-cpu-used` (higher is faster).
    vp9_cpu_used: u8,
}

/// The speed level of an x264 name or an NVENC `p` name (SPEC's mapping table).
fn speed_level(preset: &str) -> Option<SpeedLevel> {
    let (p, svt_av1) = match preset {
        "ultrafast" => (1, 12),
        "superfast" => (1, 11),
        "veryfast" => (2, 10),
        "faster" => (3, 9),
        "fast" => (3, 8),
        "medium" => (4, 6),
        "slow" => (5, 5),
        "slower" => (6, 4),
        "veryslow" => (7, 2),
        "placebo" => (7, 1),
        "p1" => (1, 12),
        "p2" => (2, 10),
        "p3" => (3, 8),
        "p4" => (4, 6),
        "p5" => (5, 5),
        "p6" => (6, 4),
        "p7" => (7, 2),
        _ => return None,
    };
    Some(SpeedLevel {
        p,
        svt_av1,
        vp9_cpu_used: 9 - p,
    })
}

fn family_of(lower_name: &str) -> Family {
    match lower_name {
        "libx264" | "libx264rgb" => Family::X264,
        "libx265" => Family::X265,
        "libvpx-vp9" => Family::Vp9,
        "libsvtav1" => Family::SvtAv1,
        n if n.contains("nvenc") => Family::Nvenc,
        n if n.contains("vaapi") => Family::Vaapi,
        n if n.contains("qsv") => Family::Qsv,
        n if n.contains("videotoolbox") => Family::VideoToolbox,
        _ => Family::Other,
    }
}

/// x264/x265 names for NVENC's `p1`–`p7` (SPEC: ultrafast, veryfast, fast, medium, slow,
/// slower, veryslow).
const X264_BY_P: [&str; 7] = [
    "ultrafast",
    "veryfast",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
];

/// QSV names for `p1`–`p7`: as x264, but QSV's fastest preset is `veryfast`.
const QSV_BY_P: [&str; 7] = [
    "veryfast", "veryfast", "fast", "medium", "slow", "slower", "veryslow",
];
