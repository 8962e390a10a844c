//! FLV tag bodies ⇄ [`Frame`]s, including Enhanced RTMP (`hvc1`, `av01`, `vp09`).
//!
//! RTMP audio and video messages carry FLV tag bodies. [`FlvDemuxer`] turns them into frames
//! (AVCC → Annex-B in place, parameter sets before every keyframe, composition time honoured,
//! the 32-bit millisecond clock unwrapped to 90 kHz); [`FlvMuxer`] does the reverse (Annex-B →
//! AVCC, sequence headers before the first frame and whenever they change).
//!
//! Track ids: video is [`VIDEO_TRACK`] (`TrackId(0)`), audio [`AUDIO_TRACK`] (`TrackId(1)`), as
//! an FLV stream has at most one of each.
//!
//! Codecs (SPEC §Ingest, §Publisher): H.264 (FLV codec 7, or Enhanced RTMP `avc1`), H.265
//! (Enhanced RTMP `hvc1`, or the unofficial FLV codec 12 some encoders use), AV1 (`av01`), VP9
//! (`vp09`), AAC, MP3. Anything else is [`FlvError::UnsupportedCodec`].
//!
//! AV1 and VP9 (Enhanced RTMP v1): the sequence start carries the `AV1CodecConfigurationRecord`
//! / the `VPCodecConfigurationRecord` (with `vpcC`'s version and flags, as FFmpeg writes it);
//! coded frames carry no composition time, an AV1 one a temporal unit in the ISO-BMFF sample
//! format (no temporal delimiter), a VP9 one a frame. The demuxer gives an AV1 keyframe without
//! its sequence header OBU the one of the last sequence start (the hub's keyframes carry it,
//! [`Codec::Av1`]); keyframes are what the bitstream says, not the FLV frame type.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use tributary_media::codec::h264::{self, AvcConfig};
use tributary_media::codec::h265::{self, HevcConfig};
use tributary_media::codec::nal::{
    START_CODE, annex_b_nals, annex_b_to_avcc, avcc_nals, avcc_to_annex_b,
};
use tributary_media::codec::{LengthSize, Observed, ParamChange, ParamSets, aac, av1, vp9};
use tributary_media::{Codec, Frame, SessionId, TrackConfig, TrackId, TrackInfo, Ts90};

use crate::{FlvError, RtmpClock, RtmpTime};

/// The track id of video frames.
pub const VIDEO_TRACK: TrackId = TrackId(0);
/// The track id of audio frames.
pub const AUDIO_TRACK: TrackId = TrackId(1);

/// The kind of an FLV tag (and of the RTMP message that carries it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagKind {
    /// Audio (FLV tag type 8, RTMP message type 8).
    Audio,
    /// Video (FLV tag type 9, RTMP message type 9).
    Video,
    /// Script data such as `onMetaData` (FLV tag type 18, RTMP AMF0 data message).
    Script,
}

impl TagKind {
    /// The FLV tag type, which is also the RTMP message type id.
    pub fn type_id(self) -> u8 {
        match self {
            Self::Audio => 8,
            Self::Video => 9,
            Self::Script => 18,
        }
    }
}

/// One FLV tag body with its timestamp, ready to be sent as an RTMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    /// Audio, video or script.
    pub kind: TagKind,
    /// The tag's timestamp (the decode time for video).
    pub timestamp: RtmpTime,
    /// The tag body (what follows the 11-byte FLV tag header).
    pub body: Bytes,
}

/// Turns FLV audio and video tag bodies into frames.
///
/// Feed tags in arrival order with [`FlvDemuxer::push`]; each yields at most one frame.
/// Sequence headers are absorbed (they configure the track) and yield none. Errors concern one
/// tag only; the next push continues.
#[derive(Debug, Default)]
pub struct FlvDemuxer {
    /// Unwraps the 32-bit millisecond clock; shared by audio and video so they keep one base.
    clock: RtmpClock,
    /// The video track, once a video tag was seen.
    video: Option<VideoIn>,
    /// The AAC configuration, once a sequence header was seen.
    aac: Option<Arc<TrackConfig>>,
}

#[derive(Debug)]
struct VideoIn {
    codec: Codec,
    params: ParamSets,
    length_size: LengthSize,
    config: Option<Arc<TrackConfig>>,
    /// AV1: the sequence header OBU of the last sequence start.
    sequence_header: Option<Bytes>,
}

/// What one video tag carries.
enum VideoPacket {
    SequenceStart,
    Frames { cts: i32 },
    Ignore,
}

impl FlvDemuxer {
    /// A demuxer that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps one tag body; `now` becomes the frame's arrival time.
    ///
    /// The body is taken as `BytesMut` so that AVCC length prefixes can be rewritten into
    /// start codes in place: the frame's payload is a slice of the same buffer.
    pub fn push(
        &mut self,
        now: Instant,
        kind: TagKind,
        timestamp: RtmpTime,
        body: BytesMut,
    ) -> Result<Option<Frame>, FlvError> {
        match kind {
            TagKind::Video => self.video(now, timestamp, body),
            TagKind::Audio => self.audio(now, timestamp, body),
            TagKind::Script => Ok(None),
        }
    }

    fn video(
        &mut self,
        now: Instant,
        timestamp: RtmpTime,
        mut body: BytesMut,
    ) -> Result<Option<Frame>, FlvError> {
        let len = body.len();
        let truncated = |needed| FlvError::Truncated {
            what: "video",
            len,
            needed,
        };
        let first = *body.first().ok_or(truncated(1))?;
        let (codec, packet, start) = if first & 0x80 != 0 {
            // Enhanced RTMP: [IsExHeader | FrameType:3 | PacketType:4] FourCC ...
            let fourcc = body.get(1..5).ok_or(truncated(5))?;
            let codec = match fourcc {
                b"hvc1" => Codec::H265,
                b"avc1" => Codec::H264,
                b"av01" => Codec::Av1,
                b"vp09" => Codec::Vp9,
                other => {
                    return Err(FlvError::UnsupportedCodec {
                        what: "video",
                        codec: String::from_utf8_lossy(other).into_owned(),
                    });
                }
            };
            let frame_type = (first >> 4) & 7;
            match first & 0x0f {
                _ if frame_type == COMMAND_FRAME => (codec, VideoPacket::Ignore, 5),
                0 => (codec, VideoPacket::SequenceStart, 5),
                1 if matches!(codec, Codec::Av1 | Codec::Vp9) => {
                    (codec, VideoPacket::Frames { cts: 0 }, 5)
                }
                1 => {
                    let cts = body.get(5..8).ok_or(truncated(8))?;
                    (codec, VideoPacket::Frames { cts: si24(cts) }, 8)
                }
                3 => (codec, VideoPacket::Frames { cts: 0 }, 5),
                6 => {
                    return Err(FlvError::UnsupportedCodec {
                        what: "video",
                        codec: "multitrack".into(),
                    });
                }
                // SequenceEnd, Metadata (HDR), MPEG2TSSequenceStart: nothing to carry.
                _ => (codec, VideoPacket::Ignore, 5),
            }
        } else {
            let codec = match first & 0x0f {
                7 => Codec::H264,
                12 => Codec::H265,
                id => {
                    return Err(FlvError::UnsupportedCodec {
                        what: "video",
                        codec: format!("id {id}"),
                    });
                }
            };
            if first >> 4 == COMMAND_FRAME {
                return Ok(None);
            }
            let head = body.get(1..5).ok_or(truncated(5))?;
            let packet = match head[0] {
                0 => VideoPacket::SequenceStart,
                1 => VideoPacket::Frames {
                    cts: si24(&head[1..4]),
                },
                _ => VideoPacket::Ignore,
            };
            (codec, packet, 5)
        };
        let cts = match packet {
            VideoPacket::Ignore => return Ok(None),
            VideoPacket::SequenceStart => {
                self.sequence_start(codec, &body[start..])?;
                return Ok(None);
            }
            VideoPacket::Frames { cts } => cts,
        };
        if matches!(codec, Codec::Av1 | Codec::Vp9) {
            return self.coded_frame(now, timestamp, codec, body.freeze().slice(start..));
        }
        // Encoders that never send a sequence header get 4-byte lengths and in-band sets.
        let state = match &mut self.video {
            Some(v) if v.codec == codec => v,
            slot => slot.insert(VideoIn::new(codec)),
        };
        let data = &mut body[start..];
        // Validates the lengths and finds whether any unit carries data (one pass over the
        // lengths, not the bytes), so the Annex-B result need not be scanned for that.
        let mut carries = false;
        for nal in avcc_nals(data, state.length_size) {
            let nal = nal.map_err(|source| FlvError::Nal { codec, source })?;
            carries |= nal.iter().any(|&b| b != 0);
        }
        if !carries {
            return Ok(None);
        }
        let au = if state.length_size == LengthSize::FOUR {
            let mut pos = 0;
            while pos + 4 <= data.len() {
                let n =
                    u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]);
                data[pos..pos + 4].copy_from_slice(&START_CODE);
                pos += 4 + n as usize;
            }
            body.freeze().slice(start..)
        } else {
            let mut out = BytesMut::with_capacity(data.len() + 64);
            avcc_to_annex_b(data, state.length_size, &mut out)
                .map_err(|source| FlvError::Nal { codec, source })?;
            out.freeze()
        };
        let (au, keyframe, change) = match state.params.observe(au) {
            Observed::Write {
                au,
                keyframe,
                change,
                ..
            } => (au, keyframe, change),
            Observed::DropKeyframe { .. } => {
                return Err(FlvError::KeyframeWithoutParameterSets { codec });
            }
        };
        if change != ParamChange::Unchanged || state.config.is_none() {
            state.refresh_config();
        }
        let dts = self.clock.ts90(timestamp);
        Ok(Some(Frame {
            track: VIDEO_TRACK,
            codec,
            pts: dts + Ts90(i64::from(cts) * 90),
            dts,
            keyframe,
            session: SessionId(0),
            arrival: now,
            payload: au,
            config: state.config.clone(),
        }))
    }

    /// An AV1 temporal unit or a VP9 frame: no NAL units, no parameter-set keeper.
    fn coded_frame(
        &mut self,
        now: Instant,
        timestamp: RtmpTime,
        codec: Codec,
        payload: Bytes,
    ) -> Result<Option<Frame>, FlvError> {
        if payload.is_empty() {
            return Ok(None);
        }
        let state = match &mut self.video {
            Some(v) if v.codec == codec => v,
            slot => slot.insert(VideoIn::new(codec)),
        };
        let (keyframe, payload) = if codec == Codec::Av1 {
            let keyframe = av1::is_keyframe(&payload);
            let has_header = av1::obus(&payload).any(|o| o.kind == av1::OBU_SEQUENCE_HEADER);
            if keyframe && !has_header {
                let Some(header) = &state.sequence_header else {
                    return Err(FlvError::KeyframeWithoutParameterSets { codec });
                };
                let mut au = BytesMut::with_capacity(header.len() + payload.len());
                au.put_slice(header);
                au.put_slice(&payload);
                (true, au.freeze())
            } else {
                (keyframe, payload)
            }
        } else {
            (vp9::is_keyframe(&payload), payload)
        };
        if keyframe {
            // The record the keyframe implies, when it may describe another track than the
            // last: for AV1 only when its sequence header is not the last one seen (which
            // later keyframes without one then get).
            let described = if codec == Codec::Av1 {
                match av1::obus(&payload).find(|o| o.kind == av1::OBU_SEQUENCE_HEADER) {
                    Some(obu) if state.sequence_header.as_deref() != Some(obu.data) => {
                        av1::SequenceHeader::parse(obu.payload).ok().map(|header| {
                            state.sequence_header = Some(Bytes::copy_from_slice(obu.data));
                            (header.track_info(), header.config_record(obu.data))
                        })
                    }
                    _ => None,
                }
            } else {
                vp9::KeyFrame::parse(&payload)
                    .ok()
                    .map(|key| (key.track_info(), vpcc_record(&key.config())))
            };
            if let Some((info, record)) = described
                && (codec == Codec::Av1 || state.config.as_ref().is_none_or(|c| c.info != info))
            {
                state.config = Some(Arc::new(TrackConfig {
                    info,
                    decoder_config: Bytes::from(record),
                }));
            }
        }
        let dts = self.clock.ts90(timestamp);
        Ok(Some(Frame {
            track: VIDEO_TRACK,
            codec,
            pts: dts,
            dts,
            keyframe,
            session: SessionId(0),
            arrival: now,
            payload,
            config: state.config.clone(),
        }))
    }

    fn sequence_start(&mut self, codec: Codec, record: &[u8]) -> Result<(), FlvError> {
        let err = |source| FlvError::SequenceHeader { codec, source };
        let state = match &mut self.video {
            Some(v) if v.codec == codec => v,
            slot => slot.insert(VideoIn::new(codec)),
        };
        state.params.clear();
        if codec == Codec::Av1 {
            let (header, obu) = av1::SequenceHeader::from_config_record(record).map_err(err)?;
            state.sequence_header = Some(Bytes::copy_from_slice(obu));
            state.config = Some(Arc::new(TrackConfig {
                info: header.track_info(),
                decoder_config: Bytes::copy_from_slice(record),
            }));
            return Ok(());
        }
        if codec == Codec::Vp9 {
            let config = vp9::VpConfig::parse(record).map_err(err)?;
            let info = TrackInfo {
                codec_string: Some(config.codec_string()),
                profile: Some(config.profile),
                level: Some(config.level),
                ..TrackInfo::new(Codec::Vp9)
            };
            state.config = Some(Arc::new(TrackConfig {
                info,
                decoder_config: Bytes::copy_from_slice(record),
            }));
            return Ok(());
        }
        if codec == Codec::H264 {
            let config = AvcConfig::parse(record).map_err(err)?;
            state.length_size = config.length_size;
            for nal in config.sps.iter().chain(&config.pps) {
                state.params.insert(nal);
            }
        } else {
            let config = HevcConfig::parse(record).map_err(err)?;
            state.length_size = config.length_size;
            for nal in config.vps.iter().chain(&config.sps).chain(&config.pps) {
                state.params.insert(nal);
            }
        }
        state.refresh_config();
        Ok(())
    }

    fn audio(
        &mut self,
        now: Instant,
        timestamp: RtmpTime,
        body: BytesMut,
    ) -> Result<Option<Frame>, FlvError> {
        let len = body.len();
        let first = *body.first().ok_or(FlvError::Truncated {
            what: "audio",
            len,
            needed: 1,
        })?;
        let (codec, config, start) = match first >> 4 {
            SOUND_AAC => {
                let packet = *body.get(1).ok_or(FlvError::Truncated {
                    what: "audio",
                    len,
                    needed: 2,
                })?;
                if packet == 0 {
                    let asc = &body[2..];
                    aac::AudioSpecificConfig::parse(asc).map_err(|source| {
                        FlvError::SequenceHeader {
                            codec: Codec::Aac,
                            source,
                        }
                    })?;
                    let asc = Bytes::copy_from_slice(asc);
                    // Parsed above, so `aac` succeeds; keep the old config if it somehow did not.
                    if let Some(config) = TrackConfig::aac(asc) {
                        self.aac = Some(Arc::new(config));
                    }
                    return Ok(None);
                }
                let Some(config) = self.aac.clone() else {
                    return Err(FlvError::NoSequenceHeader { codec: Codec::Aac });
                };
                (Codec::Aac, Some(config), 2)
            }
            SOUND_MP3 | SOUND_MP3_8K => (Codec::Mp3, None, 1),
            SOUND_EX_HEADER => {
                let fourcc = body.get(1..5).unwrap_or(&[]);
                return Err(FlvError::UnsupportedCodec {
                    what: "audio",
                    codec: String::from_utf8_lossy(fourcc).into_owned(),
                });
            }
            format => {
                return Err(FlvError::UnsupportedCodec {
                    what: "audio",
                    codec: format!("sound format {format}"),
                });
            }
        };
        if body.len() <= start {
            return Ok(None);
        }
        let ts = self.clock.ts90(timestamp);
        Ok(Some(Frame {
            track: AUDIO_TRACK,
            codec,
            pts: ts,
            dts: ts,
            keyframe: true,
            session: SessionId(0),
            arrival: now,
            payload: body.freeze().slice(start..),
            config,
        }))
    }
}

impl VideoIn {
    fn new(codec: Codec) -> Self {
        Self {
            codec,
            params: ParamSets::for_codec(codec).unwrap_or_else(ParamSets::h264),
            length_size: LengthSize::FOUR,
            config: None,
            sequence_header: None,
        }
    }

    fn refresh_config(&mut self) {
        self.config = match self.params.track_info() {
            Some(Ok(info)) => Some(Arc::new(TrackConfig {
                info,
                decoder_config: Bytes::new(),
            })),
            _ => None,
        };
    }
}

/// Turns frames into FLV tag bodies (push a frame, pull tags until `None`).
///
/// The first video tag is a sequence header built from the parameter sets in front of the first
/// keyframe; video frames before it are skipped. A keyframe whose parameter sets differ from the
/// last ones sent gets a new sequence header first, and so does an AAC frame whose
/// AudioSpecificConfig changed. H.265 goes out as Enhanced RTMP (`hvc1`). Timestamps are
/// milliseconds since the first frame pushed (SPEC §Push: "rebased to the session's first
/// DTS"), composition time is PTS − DTS.
///
/// One muxer may feed many peers: its tags are plain bytes, and [`FlvMuxer::sequence_headers`]
/// gives what a peer joining later must receive first.
#[derive(Debug, Default, Clone)]
pub struct FlvMuxer {
    /// The DTS that maps to timestamp 0.
    base: Option<Ts90>,
    /// The parameter sets of the last video sequence header sent.
    video: Option<VideoOut>,
    /// The AudioSpecificConfig of the last AAC sequence header sent.
    aac: Option<Bytes>,
    /// The last video and audio sequence headers, for late joiners.
    headers: [Option<FlvTag>; 2],
    /// Scratch buffer the tag bodies are written into (reused once the tags are dropped).
    buf: BytesMut,
    /// Tags produced and not pulled yet.
    tags: VecDeque<FlvTag>,
}

#[derive(Debug, Clone)]
struct VideoOut {
    codec: Codec,
    /// H.265 VPSs, H.264/H.265 SPSs and PPSs; for AV1 `sps` holds the sequence header OBU,
    /// for VP9 the record's eight bytes.
    vps: Vec<Bytes>,
    sps: Vec<Bytes>,
    pps: Vec<Bytes>,
}

/// What [`FlvMuxer::push`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Pushed {
    /// Tags were produced.
    Queued,
    /// The frame was not sent.
    Skipped(SkipReason),
}

/// Why a frame was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// RTMP does not carry this codec (SPEC §Publisher: H.264, H.265, AAC, MP3; AV1 and VP9
    /// as Enhanced RTMP where the caller lets them through).
    UnsupportedCodec(Codec),
    /// No keyframe with parameter sets has been seen yet, so no sequence header could be sent.
    WaitingForKeyframe,
    /// An AAC frame came without its AudioSpecificConfig.
    NoAudioConfig,
}

impl FlvMuxer {
    /// A muxer that has sent nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps one frame to zero, one or two tags (sequence header, then the frame).
    pub fn push(&mut self, frame: &Frame) -> Result<Pushed, FlvError> {
        match frame.codec {
            Codec::H264 | Codec::H265 => self.video(frame),
            Codec::Av1 | Codec::Vp9 => self.coded_video(frame),
            Codec::Aac => {
                let Some(config) = frame.config.as_ref() else {
                    return Ok(Pushed::Skipped(SkipReason::NoAudioConfig));
                };
                let asc = &config.decoder_config;
                let timestamp = self.stamp(frame.dts);
                if self.aac.as_ref() != Some(asc) {
                    self.buf.put_slice(&[AAC_FLAGS, 0]);
                    self.buf.put_slice(asc);
                    let tag = self.emit(TagKind::Audio, timestamp);
                    self.headers[1] = Some(tag);
                    self.aac = Some(asc.clone());
                }
                self.buf.put_slice(&[AAC_FLAGS, 1]);
                self.buf.put_slice(&frame.payload);
                self.emit(TagKind::Audio, timestamp);
                Ok(Pushed::Queued)
            }
            Codec::Mp3 => {
                let timestamp = self.stamp(frame.dts);
                self.buf.put_u8(mp3_flags(frame));
                self.buf.put_slice(&frame.payload);
                self.emit(TagKind::Audio, timestamp);
                Ok(Pushed::Queued)
            }
            other => Ok(Pushed::Skipped(SkipReason::UnsupportedCodec(other))),
        }
    }

    /// The next tag, in sending order.
    pub fn pull(&mut self) -> Option<FlvTag> {
        self.tags.pop_front()
    }

    /// The current sequence headers (video, then audio): what a peer that joins later must
    /// receive before the frames it gets from here on.
    pub fn sequence_headers(&self) -> impl Iterator<Item = &FlvTag> {
        self.headers.iter().flatten()
    }

    /// The tag timestamp of `dts`: milliseconds since the first frame sent.
    fn stamp(&mut self, dts: Ts90) -> RtmpTime {
        let base = *self.base.get_or_insert(dts);
        RtmpTime::from_millis((dts - base).as_millis().max(0))
    }

    fn video(&mut self, frame: &Frame) -> Result<Pushed, FlvError> {
        let codec = frame.codec;
        if frame.keyframe {
            // Borrowed first: the sets are copied only when they changed, so a long-lived
            // muxer never pins a keyframe buffer.
            let mut found: [Vec<&[u8]>; 3] = [Vec::new(), Vec::new(), Vec::new()];
            for nal in annex_b_nals(&frame.payload) {
                let kind = match codec {
                    Codec::H264 => match h264::NalType::of(nal) {
                        Some(h264::NalType::SPS) => 1,
                        Some(h264::NalType::PPS) => 2,
                        _ => continue,
                    },
                    _ => match h265::NalType::of(nal) {
                        Some(h265::NalType::VPS) => 0,
                        Some(h265::NalType::SPS) => 1,
                        Some(h265::NalType::PPS) => 2,
                        _ => continue,
                    },
                };
                if !found[kind].contains(&nal) {
                    found[kind].push(nal);
                }
            }
            let [vps, sps, pps] = &found;
            let complete =
                !sps.is_empty() && !pps.is_empty() && (codec == Codec::H264 || !vps.is_empty());
            let same = |known: &[Bytes], new: &[&[u8]]| {
                known.len() == new.len() && known.iter().zip(new).all(|(k, n)| k[..] == **n)
            };
            let changed = self.video.as_ref().is_none_or(|v| {
                v.codec != codec || !same(&v.vps, vps) || !same(&v.sps, sps) || !same(&v.pps, pps)
            });
            if complete && changed {
                let copy =
                    |list: &[&[u8]]| list.iter().map(|n| Bytes::copy_from_slice(n)).collect();
                let sets = VideoOut {
                    codec,
                    vps: copy(vps),
                    sps: copy(sps),
                    pps: copy(pps),
                };
                let timestamp = self.stamp(frame.dts);
                self.video_header(&sets, timestamp)?;
                self.video = Some(sets);
            }
        }
        if self.video.as_ref().is_none_or(|v| v.codec != codec) {
            return Ok(Pushed::Skipped(SkipReason::WaitingForKeyframe));
        }
        let timestamp = self.stamp(frame.dts);
        let cts = ((frame.pts - frame.dts).0 / 90).clamp(-(1 << 23), (1 << 23) - 1) as i32;
        let frame_type = if frame.keyframe { 1 } else { 2 };
        if codec == Codec::H264 {
            self.buf.put_slice(&[frame_type << 4 | FLV_AVC, 1]);
            self.buf.put_slice(&cts.to_be_bytes()[1..]);
        } else if cts == 0 {
            self.buf
                .put_u8(EX_HEADER | frame_type << 4 | PACKET_CODED_FRAMES_X);
            self.buf.put_slice(b"hvc1");
        } else {
            self.buf
                .put_u8(EX_HEADER | frame_type << 4 | PACKET_CODED_FRAMES);
            self.buf.put_slice(b"hvc1");
            self.buf.put_slice(&cts.to_be_bytes()[1..]);
        }
        if let Err(source) = annex_b_to_avcc(&frame.payload, LengthSize::FOUR, &mut self.buf) {
            self.buf.clear();
            return Err(FlvError::Nal { codec, source });
        }
        self.emit(TagKind::Video, timestamp);
        Ok(Pushed::Queued)
    }

    /// AV1 and VP9 as Enhanced RTMP: a sequence start when a keyframe's sequence header (VP9:
    /// the record its header implies) is not the last one sent, then the coded frame (an AV1
    /// temporal unit without its temporal delimiter).
    fn coded_video(&mut self, frame: &Frame) -> Result<Pushed, FlvError> {
        let codec = frame.codec;
        let fourcc: &[u8; 4] = if codec == Codec::Av1 {
            b"av01"
        } else {
            b"vp09"
        };
        if frame.keyframe {
            let err = |source| FlvError::SequenceHeader { codec, source };
            let sent = self
                .video
                .as_ref()
                .filter(|v| v.codec == codec)
                .and_then(|v| v.sps.first());
            // (what identifies the configuration, the record to send) when it changed.
            let change = if codec == Codec::Av1 {
                av1::obus(&frame.payload)
                    .find(|o| o.kind == av1::OBU_SEQUENCE_HEADER)
                    .filter(|obu| sent.is_none_or(|s| s[..] != *obu.data))
                    .map(|obu| {
                        let header = av1::SequenceHeader::parse(obu.payload).map_err(err)?;
                        let record = header.config_record(obu.data);
                        Ok::<_, FlvError>((Bytes::copy_from_slice(obu.data), record))
                    })
                    .transpose()?
            } else {
                let config = vp9::KeyFrame::parse(&frame.payload).map_err(err)?.config();
                let bytes = config.to_bytes();
                sent.is_none_or(|s| s[..] != bytes)
                    .then(|| (Bytes::copy_from_slice(&bytes), vpcc_record(&config)))
            };
            if let Some((identity, record)) = change {
                let timestamp = self.stamp(frame.dts);
                self.buf.put_u8(EX_HEADER | 1 << 4 | PACKET_SEQUENCE_START);
                self.buf.put_slice(fourcc);
                self.buf.put_slice(&record);
                let tag = self.emit(TagKind::Video, timestamp);
                self.headers[0] = Some(tag);
                self.video = Some(VideoOut {
                    codec,
                    vps: Vec::new(),
                    sps: vec![identity],
                    pps: Vec::new(),
                });
            }
        }
        if self.video.as_ref().is_none_or(|v| v.codec != codec) {
            return Ok(Pushed::Skipped(SkipReason::WaitingForKeyframe));
        }
        let timestamp = self.stamp(frame.dts);
        let frame_type = if frame.keyframe { 1 } else { 2 };
        self.buf
            .put_u8(EX_HEADER | frame_type << 4 | PACKET_CODED_FRAMES);
        self.buf.put_slice(fourcc);
        if codec == Codec::Av1 {
            for obu in av1::obus(&frame.payload) {
                if obu.kind != av1::OBU_TEMPORAL_DELIMITER {
                    self.buf.put_slice(obu.data);
                }
            }
        } else {
            self.buf.put_slice(&frame.payload);
        }
        self.emit(TagKind::Video, timestamp);
        Ok(Pushed::Queued)
    }

    fn video_header(&mut self, sets: &VideoOut, timestamp: RtmpTime) -> Result<(), FlvError> {
        let codec = sets.codec;
        let err = |source| FlvError::SequenceHeader { codec, source };
        if codec == Codec::H264 {
            let mut config =
                AvcConfig::from_parameter_sets(&sets.sps[0], &sets.pps[0]).map_err(err)?;
            config.sps.extend(sets.sps[1..].iter().cloned());
            config.pps.extend(sets.pps[1..].iter().cloned());
            self.buf.put_slice(&[1 << 4 | FLV_AVC, 0, 0, 0, 0]);
            if let Err(e) = config.write(&mut self.buf) {
                self.buf.clear();
                return Err(err(e));
            }
        } else {
            let mut config =
                HevcConfig::from_parameter_sets(&sets.vps[0], &sets.sps[0], &sets.pps[0])
                    .map_err(err)?;
            config.vps.extend(sets.vps[1..].iter().cloned());
            config.sps.extend(sets.sps[1..].iter().cloned());
            config.pps.extend(sets.pps[1..].iter().cloned());
            self.buf.put_u8(EX_HEADER | 1 << 4 | PACKET_SEQUENCE_START);
            self.buf.put_slice(b"hvc1");
            if let Err(e) = config.write(&mut self.buf) {
                self.buf.clear();
                return Err(err(e));
            }
        }
        let tag = self.emit(TagKind::Video, timestamp);
        self.headers[0] = Some(tag);
        Ok(())
    }

    /// Queues what `buf` holds as one tag; returns a copy of it (cheap: `Bytes`).
    fn emit(&mut self, kind: TagKind, timestamp: RtmpTime) -> FlvTag {
        let tag = FlvTag {
            kind,
            timestamp,
            body: self.buf.split().freeze(),
        };
        self.tags.push_back(tag.clone());
        tag
    }
}

/// The FLV sound flags byte for an MP3 frame (rate from the config or the frame header).
fn mp3_flags(frame: &Frame) -> u8 {
    let header = frame.payload.get(..4);
    let (rate, channels) = match frame.config.as_ref() {
        Some(c) => (c.info.sample_rate, c.info.channels),
        None => (None, None),
    };
    let mono = channels.map_or_else(|| header.is_some_and(|h| h[3] >> 6 == 3), |c| c == 1);
    let rate_bits = match rate {
        Some(r) if r <= 11_025 => 1,
        Some(r) if r <= 22_050 => 2,
        _ => 3,
    };
    SOUND_MP3 << 4 | rate_bits << 2 | 1 << 1 | u8::from(!mono)
}

/// A `VPCodecConfigurationRecord` as Enhanced RTMP and FFmpeg carry it: `vpcC`'s version (1)
/// and flags, then the record.
fn vpcc_record(config: &vp9::VpConfig) -> Vec<u8> {
    let mut record = vec![1, 0, 0, 0];
    record.extend_from_slice(&config.to_bytes());
    record
}

/// A signed 24-bit big-endian integer.
fn si24(b: &[u8]) -> i32 {
    (i32::from_be_bytes([b[0], b[1], b[2], 0])) >> 8
}

const FLV_AVC: u8 = 7;
const COMMAND_FRAME: u8 = 5;
const EX_HEADER: u8 = 0x80;
const PACKET_SEQUENCE_START: u8 = 0;
const PACKET_CODED_FRAMES: u8 = 1;
const PACKET_CODED_FRAMES_X: u8 = 3;
const SOUND_MP3: u8 = 2;
const SOUND_EX_HEADER: u8 = 9;
const SOUND_AAC: u8 = 10;
const SOUND_MP3_8K: u8 = 14;
/// AAC, 44 kHz, 16-bit, stereo: what every AAC tag says (the real values are in the ASC).
const AAC_FLAGS: u8 = 0xaf;
