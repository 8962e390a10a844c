//! The session description a DESCRIBE answers with (RFC 8866), built from the codec
//! configuration the hub carries: what a player needs to set up its decoders before the first
//! packet (RFC 6184 §8.1 for H.264, RFC 7798 §7.1 for H.265, RFC 3640 §4.1 for AAC).

use std::fmt::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use tributary_media::codec::aac::AudioSpecificConfig;
use tributary_rtp::packetize::Format;

/// One track of a presentation, as described and packetized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    kind: TrackKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TrackKind {
    H264 {
        sps: Bytes,
        pps: Bytes,
    },
    H265 {
        vps: Bytes,
        sps: Bytes,
        pps: Bytes,
    },
    Aac {
        config: Bytes,
        sample_rate: u32,
        channels: u8,
    },
}

impl Track {
    /// An H.264 track from its SPS and PPS (NAL header first, no start code).
    pub fn h264(sps: Bytes, pps: Bytes) -> Self {
        Self {
            kind: TrackKind::H264 { sps, pps },
        }
    }

    /// An H.265 track from its VPS, SPS and PPS.
    pub fn h265(vps: Bytes, sps: Bytes, pps: Bytes) -> Self {
        Self {
            kind: TrackKind::H265 { vps, sps, pps },
        }
    }

    /// An AAC track from its AudioSpecificConfig; `None` when it does not parse.
    pub fn aac(config: Bytes) -> Option<Self> {
        let asc = AudioSpecificConfig::parse(&config).ok()?;
        Some(Self {
            kind: TrackKind::Aac {
                sample_rate: asc.sample_rate,
                channels: asc.channel_config.max(1),
                config,
            },
        })
    }

    /// How its access units are packetized.
    pub fn format(&self) -> Format {
        match self.kind {
            TrackKind::H264 { .. } => Format::H264,
            TrackKind::H265 { .. } => Format::H265,
            TrackKind::Aac { .. } => Format::Aac,
        }
    }

    /// Its RTP clock rate, Hz: 90 000 for video, the sampling rate for AAC.
    pub fn clock_rate(&self) -> u32 {
        match self.kind {
            TrackKind::Aac { sample_rate, .. } => sample_rate,
            _ => 90_000,
        }
    }

    /// Appends the media section of track `index` (payload type 96 + index, control
    /// `trackID=<index>`).
    fn write_media(&self, index: usize, sdp: &mut String) {
        let pt = payload_type(index);
        // Writing to a String cannot fail.
        let _ = match &self.kind {
            TrackKind::H264 { sps, pps } => {
                let profile = sps.get(1..4).map_or_else(|| "42001f".to_owned(), hex);
                write!(
                    sdp,
                    "m=video 0 RTP/AVP {pt}\r\na=rtpmap:{pt} H264/90000\r\n\
                     a=fmtp:{pt} packetization-mode=1;profile-level-id={profile};\
                     sprop-parameter-sets={},{}\r\n",
                    STANDARD.encode(sps),
                    STANDARD.encode(pps)
                )
            }
            TrackKind::H265 { vps, sps, pps } => write!(
                sdp,
                "m=video 0 RTP/AVP {pt}\r\na=rtpmap:{pt} H265/90000\r\n\
                 a=fmtp:{pt} sprop-vps={};sprop-sps={};sprop-pps={}\r\n",
                STANDARD.encode(vps),
                STANDARD.encode(sps),
                STANDARD.encode(pps)
            ),
            TrackKind::Aac {
                config,
                sample_rate,
                channels,
            } => write!(
                sdp,
                "m=audio 0 RTP/AVP {pt}\r\na=rtpmap:{pt} MPEG4-GENERIC/{sample_rate}/{channels}\r\n\
                 a=fmtp:{pt} streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;\
                 indexlength=3;indexdeltalength=3;config={}\r\n",
                hex(config)
            ),
        };
        let _ = write!(sdp, "a=control:trackID={index}\r\n");
    }
}

/// The RTP payload type of track `index`: dynamic types from 96.
pub fn payload_type(index: usize) -> u8 {
    96 + u8::try_from(index.min(31)).unwrap_or(31)
}

/// The SDP of a live presentation named `name` with `tracks`, its origin line carrying
/// `session_id` (any number that differs between presentations).
pub fn describe(name: &str, session_id: u64, tracks: &[Track]) -> String {
    let name: String = name.chars().filter(|c| !c.is_control()).collect();
    let mut sdp = format!(
        "v=0\r\no=- {session_id} {session_id} IN IP4 0.0.0.0\r\ns={}\r\nc=IN IP4 0.0.0.0\r\n\
         t=0 0\r\na=tool:Tributary\r\na=control:*\r\na=range:npt=now-\r\n",
        if name.is_empty() { "-" } else { &name }
    );
    for (index, track) in tracks.iter().enumerate() {
        track.write_media(index, &mut sdp);
    }
    sdp
}

/// Lower-case hexadecimal.
fn hex(bytes: impl AsRef<[u8]>) -> String {
    bytes.as_ref().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::{Track, describe, payload_type};

    #[test]
    fn a_presentation_describes_each_track_for_its_decoder() {
        let sps = Bytes::from_static(&[0x67, 0x64, 0x00, 0x1f, 0xac]);
        let pps = Bytes::from_static(&[0x68, 0xee, 0x3c, 0x80]);
        let aac = Track::aac(Bytes::from_static(&[0x11, 0x90])).unwrap();
        assert_eq!(aac.clock_rate(), 48_000);
        let sdp = describe("live/cam\r\n1", 42, &[Track::h264(sps, pps), aac]);
        assert_eq!(
            sdp,
            "v=0\r\no=- 42 42 IN IP4 0.0.0.0\r\ns=live/cam1\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
             a=tool:Tributary\r\na=control:*\r\na=range:npt=now-\r\n\
             m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
             a=fmtp:96 packetization-mode=1;profile-level-id=64001f;\
             sprop-parameter-sets=Z2QAH6w=,aO48gA==\r\na=control:trackID=0\r\n\
             m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/48000/2\r\n\
             a=fmtp:97 streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;\
             indexlength=3;indexdeltalength=3;config=1190\r\na=control:trackID=1\r\n"
        );
    }

    #[test]
    fn h265_carries_its_three_parameter_sets() {
        let track = Track::h265(
            Bytes::from_static(&[0x40, 1, 0x0c]),
            Bytes::from_static(&[0x42, 1, 1]),
            Bytes::from_static(&[0x44, 1, 0xc1]),
        );
        assert_eq!(track.clock_rate(), 90_000);
        let sdp = describe("", 1, &[track]);
        assert!(sdp.contains("s=-\r\n"), "{sdp}");
        assert!(
            sdp.contains(
                "a=rtpmap:96 H265/90000\r\na=fmtp:96 sprop-vps=QAEM;sprop-sps=QgEB;sprop-pps=RAHB\r\n"
            ),
            "{sdp}"
        );
        assert!(Track::aac(Bytes::from_static(&[0xff])).is_none());
        assert_eq!(payload_type(1000), 127);
    }
}
