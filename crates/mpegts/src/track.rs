//! What the PMT says about each elementary stream, and the codec parameters that travel with it.

use std::fmt;

use tributary_media::{Codec, TrackId};

/// One elementary stream of the selected program, as announced by the PMT and refined by the
/// first frames (AAC parameters, MPEG audio layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    /// The track id, equal to the elementary stream's PID.
    pub track: TrackId,
    /// The PMT stream_type.
    pub stream_type: u8,
    /// Whether the demuxer emits frames for this stream, and as which codec.
    pub carriage: Carriage,
    /// For AAC: the parameters read from the first ADTS header, `None` until one was seen.
    pub aac: Option<AacConfig>,
}

/// Whether a stream's frames are carried into the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carriage {
    /// Frames are emitted with this codec.
    Carried(Codec),
    /// No frames are emitted; the reason is reported once (`carried:false`).
    NotCarried(NotCarried),
}

/// Why a stream is not carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotCarried {
    /// AAC in LATM/LOAS framing (stream_type 0x11) is not supported yet.
    AacLatm,
    /// MPEG-1/2 video (stream_type 0x01/0x02).
    Mpeg2Video,
    /// DVB teletext (descriptor 0x56).
    Teletext,
    /// DVB subtitles (descriptor 0x59).
    DvbSubtitles,
    /// PES private data with no codec we recognise.
    PrivateData,
    /// Timed metadata (ID3, stream_type 0x15).
    Metadata,
    /// A stream_type this demuxer does not know.
    StreamType(u8),
    /// The program already has as many carried tracks as the demuxer takes (32).
    TooManyTracks,
}

impl fmt::Display for NotCarried {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AacLatm => f.write_str("AAC in LATM framing is not supported yet"),
            Self::Mpeg2Video => f.write_str("MPEG-2 video is not carried"),
            Self::Teletext => f.write_str("teletext is not carried"),
            Self::DvbSubtitles => f.write_str("DVB subtitles are not carried"),
            Self::PrivateData => f.write_str("private data is not carried"),
            Self::Metadata => f.write_str("timed metadata is not carried"),
            Self::StreamType(t) => write!(f, "stream_type {t:#04x} is not carried"),
            Self::TooManyTracks => f.write_str("more carried tracks than one program may have"),
        }
    }
}

/// The AAC parameters an ADTS header carries, enough to rebuild the two-byte
/// AudioSpecificConfig and the ADTS header.
///
/// ```
/// use tributary_mpegts::AacConfig;
/// let config = AacConfig::new(2, 4, 2).unwrap(); // AAC-LC, 44.1 kHz, stereo
/// assert_eq!(config.sample_rate(), 44_100);
/// assert_eq!(config.audio_specific_config(), [0x12, 0x10]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AacConfig {
    object_type: u8,
    frequency_index: u8,
    channel_config: u8,
}

impl AacConfig {
    /// Makes a config from the audio object type (1..=4, ADTS can carry no other: 2 is
    /// AAC-LC), the sampling frequency index (0..=12) and the channel configuration (0..=7).
    pub fn new(object_type: u8, frequency_index: u8, channel_config: u8) -> Option<Self> {
        let valid = (1..=4).contains(&object_type)
            && usize::from(frequency_index) < SAMPLE_RATES.len()
            && channel_config <= 7;
        valid.then_some(Self {
            object_type,
            frequency_index,
            channel_config,
        })
    }

    /// Reads the config from the first two bytes of an AudioSpecificConfig.
    pub fn from_audio_specific_config(asc: &[u8]) -> Option<Self> {
        let [a, b, ..] = *asc else { return None };
        Self::new(a >> 3, ((a & 0x07) << 1) | (b >> 7), (b >> 3) & 0x0F)
    }

    /// The MPEG-4 audio object type (2 = AAC-LC).
    pub fn object_type(self) -> u8 {
        self.object_type
    }

    /// The sampling frequency index.
    pub fn frequency_index(self) -> u8 {
        self.frequency_index
    }

    /// The channel configuration (1 = mono, 2 = stereo, ...).
    pub fn channel_config(self) -> u8 {
        self.channel_config
    }

    /// The sample rate in Hz.
    pub fn sample_rate(self) -> u32 {
        SAMPLE_RATES
            .get(usize::from(self.frequency_index))
            .copied()
            .unwrap_or(48_000)
    }

    /// The two-byte AudioSpecificConfig.
    pub fn audio_specific_config(self) -> [u8; 2] {
        [
            (self.object_type << 3) | (self.frequency_index >> 1),
            ((self.frequency_index & 1) << 7) | (self.channel_config << 3),
        ]
    }

    /// The 7-byte ADTS header (no CRC) for a raw access unit of `payload_len` bytes, or `None`
    /// when the frame would exceed ADTS's 8191-byte limit.
    pub fn adts_header(self, payload_len: usize) -> Option<[u8; 7]> {
        let len = payload_len.checked_add(7).filter(|&l| l <= 0x1FFF)?;
        let len = u16::try_from(len).ok()?;
        let profile = self.object_type - 1;
        Some([
            0xFF,
            0xF1, // MPEG-4, layer 0, no CRC
            (profile << 6) | (self.frequency_index << 2) | (self.channel_config >> 2),
            ((self.channel_config & 3) << 6) | ((len >> 11) as u8),
            (len >> 3) as u8,
            (((len & 7) as u8) << 5) | 0x1F,
            0xFC, // buffer fullness 0x7FF (VBR), one raw data block
        ])
    }
}

/// Sample rates by sampling frequency index (ISO/IEC 14496-3 Table 1.18).
const SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];
