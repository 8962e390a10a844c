//! The muxer: frames in, 188-byte-aligned TS out.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tributary_media::{Codec, Frame, MediaKind, TrackConfig, TrackId, Ts90};

use crate::track::AacConfig;
use crate::{Error, NULL_PID, PACKET_LEN, PAT_PID, SYNC_BYTE, es, psi};

/// One track the muxer writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuxTrack {
    /// The track id frames are routed by.
    pub track: TrackId,
    /// The PID to write it on; `None` picks 0x100 + its index in the table (as ffmpeg does).
    pub pid: Option<u16>,
    /// Its codec. H.264, H.265, AAC, MP2, MP3, AC-3, E-AC-3 and SCTE-35 are supported.
    pub codec: Codec,
    /// For AAC: the parameters the ADTS headers are rebuilt from (required).
    pub aac: Option<AacConfig>,
}

impl MuxTrack {
    /// A track on an automatically chosen PID.
    pub fn new(track: TrackId, codec: Codec) -> Self {
        Self {
            track,
            pid: None,
            codec,
            aac: None,
        }
    }

    /// Writes the track on `pid` (0x0010..=0x1FFE).
    pub fn with_pid(mut self, pid: u16) -> Self {
        self.pid = Some(pid);
        self
    }

    /// Sets the AAC parameters.
    pub fn with_aac(mut self, aac: AacConfig) -> Self {
        self.aac = Some(aac);
        self
    }
}

/// What the muxer is told when it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuxerConfig {
    /// The program_number in the PAT and PMT. Default 1, as ffmpeg writes.
    pub program: u16,
    /// The PID of the PMT. Default 0x1000, as ffmpeg writes.
    pub pmt_pid: u16,
    /// The tracks. Default empty: set them here or with [`Muxer::set_tracks`] before pushing.
    pub tracks: Vec<MuxTrack>,
}

impl Default for MuxerConfig {
    fn default() -> Self {
        Self {
            program: 1,
            pmt_pid: 0x1000,
            tracks: Vec::new(),
        }
    }
}

/// An MPEG-TS muxer for one program.
///
/// # Driving it
///
/// Push each frame with [`push`](Self::push) in the order it should appear in the stream
/// (decode order per track, tracks interleaved by DTS), then call [`pull`](Self::pull) until
/// it returns `None`. Each `Ok` item is a run of whole 188-byte packets: concatenated, the items
/// are the transport stream.
///
/// # What it writes
///
/// - PAT and PMT before the first frame, before every video keyframe (so every segment cut at a
///   keyframe starts decodable), after a track table change, and at least every 80 ms of DTS.
/// - A PCR on the first packet of every PES of the PCR PID (the first video track, else the
///   first track), 100 ms behind the DTS; when only other tracks advance, a PCR-only packet keeps
///   the gap under 100 ms.
/// - One PES per frame, with PTS, and DTS when it differs; video PES have PES_packet_length 0.
///   Keyframes set random_access_indicator. AAC is re-wrapped in ADTS headers. SCTE-35 frames
///   are written as sections.
///
/// An `Err` item rejects one frame (unknown track, codec mismatch, too large); the muxer goes
/// on with the next.
#[derive(Debug)]
pub struct Muxer {
    /// Program number and PMT PID.
    config: MuxerConfig,
    /// Per track of the table: its PID, stream identity and continuity counter.
    outputs: Vec<Output>,
    /// The PID carrying the PCR.
    pcr_pid: u16,
    /// The PAT packet, continuity counter still 0.
    pat_packet: [u8; PACKET_LEN],
    /// The PMT packet, continuity counter still 0.
    pmt_packet: [u8; PACKET_LEN],
    /// Next continuity counters of PAT and PMT.
    pat_cc: u8,
    pmt_cc: u8,
    /// Bumped on each track table change.
    pmt_version: u8,
    /// PAT/PMT must go out before the next frame.
    psi_due: bool,
    /// DTS of the frame before which PAT/PMT last went out.
    last_psi: Option<i64>,
    /// DTS (not PCR) at which the last PCR was written.
    last_pcr: Option<i64>,
    /// Where packets for the current frame are written; split off whole for each item.
    out: BytesMut,
    /// Reused scratch for PES (and ADTS) headers.
    header: Vec<u8>,
    /// Items not pulled yet.
    queue: VecDeque<Result<Bytes, Error>>,
}

impl Muxer {
    /// Makes a muxer; fails when the track table is invalid.
    pub fn new(config: MuxerConfig) -> Result<Self, Error> {
        let tracks = config.tracks.clone();
        let mut muxer = Self {
            config,
            outputs: Vec::new(),
            pcr_pid: NULL_PID,
            pat_packet: [0xFF; PACKET_LEN],
            pmt_packet: [0xFF; PACKET_LEN],
            pat_cc: 0,
            pmt_cc: 0,
            pmt_version: 0,
            psi_due: true,
            last_psi: None,
            last_pcr: None,
            out: BytesMut::new(),
            header: Vec::with_capacity(32),
            queue: VecDeque::new(),
        };
        let pmt_pid = muxer.config.pmt_pid;
        if !(MIN_PID..=MAX_PID).contains(&pmt_pid) {
            return Err(Error::InvalidMuxerConfig {
                reason: "pmt_pid must be within 0x0010..=0x1FFE",
            });
        }
        muxer.set_tracks(tracks)?;
        muxer.pmt_version = 0;
        muxer.build_psi()?;
        Ok(muxer)
    }

    /// Replaces the track table. The PMT version is bumped and PAT/PMT go out before the next
    /// frame. Continuity counters of tracks that keep their PID carry on.
    pub fn set_tracks(&mut self, tracks: Vec<MuxTrack>) -> Result<(), Error> {
        let mut outputs = Vec::with_capacity(tracks.len());
        let (mut video, mut audio) = (0u8, 0u8);
        for (i, track) in tracks.iter().enumerate() {
            let invalid = |reason| Error::InvalidTrack {
                track: track.track,
                reason,
            };
            let pid = match track.pid {
                Some(pid) => pid,
                None => u16::try_from(0x100 + i).map_err(|_| invalid("too many tracks"))?,
            };
            if !(MIN_PID..=MAX_PID).contains(&pid) || pid == self.config.pmt_pid {
                return Err(invalid(
                    "PID must be within 0x0010..=0x1FFE and not the PMT's",
                ));
            }
            if outputs.iter().any(|o: &Output| o.pid == pid) {
                return Err(invalid("PID used by two tracks"));
            }
            if outputs.iter().any(|o: &Output| o.track == track.track) {
                return Err(invalid("track id listed twice"));
            }
            let Some(stream_type) = stream_type(track.codec) else {
                return Err(Error::UnsupportedCodec {
                    track: track.track,
                    codec: track.codec,
                });
            };
            let stream_id = match track.codec {
                Codec::H264 | Codec::H265 => 0xE0 + video,
                Codec::Aac | Codec::Mp2 | Codec::Mp3 => 0xC0 + audio,
                Codec::Ac3 | Codec::Eac3 => 0xBD,
                _ => 0,
            };
            match track.codec.kind() {
                MediaKind::Video => video = (video + 1) & 0x0F,
                MediaKind::Audio => audio = (audio + 1) & 0x1F,
                MediaKind::Data => {}
            }
            let cc = self
                .outputs
                .iter()
                .find(|o| o.pid == pid)
                .map_or(0, |o| o.cc);
            outputs.push(Output {
                track: track.track,
                pid,
                codec: track.codec,
                aac: track.aac,
                from_frames: None,
                stream_type,
                stream_id,
                cc,
            });
        }
        let pcr_pid = outputs
            .iter()
            .find(|o| o.codec.kind() == MediaKind::Video)
            .or_else(|| outputs.first())
            .map_or(NULL_PID, |o| o.pid);
        let previous = std::mem::replace(&mut self.outputs, outputs);
        let previous_pcr = std::mem::replace(&mut self.pcr_pid, pcr_pid);
        self.pmt_version = (self.pmt_version + 1) & 0x1F;
        if let Err(e) = self.build_psi() {
            self.outputs = previous;
            self.pcr_pid = previous_pcr;
            return Err(e);
        }
        if previous_pcr != pcr_pid {
            self.last_pcr = None;
        }
        self.psi_due = true;
        Ok(())
    }

    /// Whether the muxer can carry `codec` (H.264, H.265, AAC, MP2, MP3, AC-3, E-AC-3 and
    /// SCTE-35); a table with any other codec is refused.
    pub fn carries(codec: Codec) -> bool {
        stream_type(codec).is_some()
    }

    /// Muxes one frame. Drain [`pull`](Self::pull) afterwards.
    pub fn push(&mut self, frame: &Frame) {
        if let Err(e) = self.write_frame(frame) {
            self.out.clear();
            self.queue.push_back(Err(e));
            return;
        }
        if !self.out.is_empty() {
            self.queue.push_back(Ok(self.out.split().freeze()));
        }
    }

    /// The next run of packets (or a rejected frame), or `None` when all is out.
    pub fn pull(&mut self) -> Option<Result<Bytes, Error>> {
        self.queue.pop_front()
    }

    fn write_frame(&mut self, frame: &Frame) -> Result<(), Error> {
        let Some(index) = self.outputs.iter().position(|o| o.track == frame.track) else {
            return Err(Error::UnknownTrack { track: frame.track });
        };
        let output = &mut self.outputs[index];
        if output.codec == Codec::Aac
            && let Some(config) = &frame.config
            && output
                .from_frames
                .as_ref()
                .is_none_or(|seen| !Arc::ptr_eq(seen, config))
        {
            // The frames' own configuration wins over the one given at setup; parsed once per
            // change (pointer comparison per frame).
            output.from_frames = Some(Arc::clone(config));
            if let Some(aac) = adts_config(&config.decoder_config) {
                output.aac = Some(aac);
            }
        }
        let (pid, codec, aac) = (output.pid, output.codec, output.aac);
        if codec != frame.codec {
            return Err(Error::CodecMismatch {
                track: frame.track,
                want: codec,
                got: frame.codec,
            });
        }
        if frame.payload.is_empty() {
            return Ok(());
        }
        let mut adts = None;
        if codec == Codec::Aac && aac.is_none() {
            return Err(Error::MissingConfig { track: frame.track });
        }
        if let Some(aac) = aac.filter(|_| codec == Codec::Aac) {
            adts = Some(
                aac.adts_header(frame.payload.len())
                    .ok_or(Error::FrameTooLarge {
                        track: frame.track,
                        codec: Codec::Aac,
                        len: frame.payload.len(),
                    })?,
            );
        }
        let video = codec.kind() == MediaKind::Video;
        let dts = frame.dts.0;
        let psi_due = self.psi_due
            || (video && frame.keyframe)
            || self
                .last_psi
                .is_none_or(|last| dts < last || dts - last >= PSI_INTERVAL);
        if psi_due {
            self.write_psi();
            self.psi_due = false;
            self.last_psi = Some(dts);
        }

        let on_pcr_pid = pid == self.pcr_pid;
        let pcr_late = self
            .last_pcr
            .is_none_or(|last| dts < last || dts - last >= PCR_INTERVAL);
        let mut pcr = None;
        if on_pcr_pid {
            pcr = Some(pcr_of(dts));
            self.last_pcr = Some(dts);
        } else if pcr_late && self.pcr_pid != NULL_PID {
            self.write_pcr_only(pcr_of(dts));
            self.last_pcr = Some(dts);
        }

        let output = &mut self.outputs[index];
        if output.codec == Codec::Scte35 {
            write_section_packets(&mut self.out, output.pid, &mut output.cc, &frame.payload);
            return Ok(());
        }
        let pts = wrap(frame.pts.0);
        let raw_dts = wrap(dts);
        let payload_len = frame.payload.len() + adts.map_or(0, |h| h.len());
        self.header.clear();
        es::write_pes_header(
            &mut self.header,
            output.stream_id,
            pts,
            (raw_dts != pts).then_some(raw_dts),
            (!video).then_some(payload_len),
        );
        if let Some(adts) = adts {
            self.header.extend_from_slice(&adts);
        }
        write_pes_packets(
            &mut self.out,
            output.pid,
            &mut output.cc,
            [&self.header[..], &frame.payload[..]],
            pcr,
            frame.keyframe && output.codec.kind() != MediaKind::Data,
        );
        Ok(())
    }

    /// Writes the PAT and PMT packets.
    fn write_psi(&mut self) {
        self.pat_packet[3] = 0x10 | self.pat_cc;
        self.pmt_packet[3] = 0x10 | self.pmt_cc;
        self.pat_cc = (self.pat_cc + 1) & 0x0F;
        self.pmt_cc = (self.pmt_cc + 1) & 0x0F;
        self.out.extend_from_slice(&self.pat_packet);
        self.out.extend_from_slice(&self.pmt_packet);
    }

    /// Writes an adaptation-only packet with a PCR on the PCR PID.
    fn write_pcr_only(&mut self, pcr: u64) {
        let pid = self.pcr_pid;
        let cc = self
            .outputs
            .iter()
            .find(|o| o.pid == pid)
            .map_or(0, |o| o.cc.wrapping_sub(1) & 0x0F);
        let start = self.out.len();
        self.out.extend_from_slice(&[
            SYNC_BYTE,
            (pid >> 8) as u8,
            pid as u8,
            0x20 | cc, // adaptation field only: the counter does not advance
            183,
            0x10,
        ]);
        self.out.extend_from_slice(&pcr_bytes(pcr));
        self.out.resize(start + PACKET_LEN, 0xFF);
    }

    /// Builds the PAT and PMT packets for the current table.
    fn build_psi(&mut self) -> Result<(), Error> {
        let mut section = Vec::with_capacity(PACKET_LEN);
        let mut body = Vec::with_capacity(PACKET_LEN);
        body.extend_from_slice(&self.config.program.to_be_bytes());
        body.extend_from_slice(&(0xE000 | self.config.pmt_pid).to_be_bytes());
        psi::write_section(&mut section, 0x00, 1, 0, &body);
        self.pat_packet = psi_packet(PAT_PID, &section)?;

        body.clear();
        section.clear();
        body.extend_from_slice(&(0xE000 | self.pcr_pid).to_be_bytes());
        if self.outputs.iter().any(|o| o.codec == Codec::Scte35) {
            body.extend_from_slice(&[0xF0, 6, 0x05, 4, b'C', b'U', b'E', b'I']);
        } else {
            body.extend_from_slice(&[0xF0, 0]);
        }
        for output in &self.outputs {
            body.push(output.stream_type);
            body.extend_from_slice(&(0xE000 | output.pid).to_be_bytes());
            body.extend_from_slice(&[0xF0, 0]);
        }
        psi::write_section(
            &mut section,
            0x02,
            self.config.program,
            self.pmt_version,
            &body,
        );
        self.pmt_packet = psi_packet(self.config.pmt_pid, &section)?;
        Ok(())
    }
}

/// A track as the muxer writes it.
#[derive(Debug, Clone)]
struct Output {
    track: TrackId,
    pid: u16,
    codec: Codec,
    aac: Option<AacConfig>,
    /// The configuration last seen on this track's frames (AAC), the source of `aac`.
    from_frames: Option<Arc<TrackConfig>>,
    stream_type: u8,
    stream_id: u8,
    /// The next continuity counter.
    cc: u8,
}

/// Splits a PES (given as consecutive parts) into packets.
///
/// The first packet carries the PCR and random_access_indicator; the last is padded with
/// adaptation-field stuffing.
fn write_pes_packets(
    out: &mut BytesMut,
    pid: u16,
    cc: &mut u8,
    parts: [&[u8]; 2],
    pcr: Option<u64>,
    random_access: bool,
) {
    let total = parts[0].len() + parts[1].len();
    let mut written = 0;
    let mut first = true;
    while written < total {
        let mut af_fields = 0;
        if first && (pcr.is_some() || random_access) {
            af_fields = 1 + if pcr.is_some() { 6 } else { 0 };
        }
        let mut af_total = if af_fields > 0 { 1 + af_fields } else { 0 };
        let space = PAYLOAD_LEN - af_total;
        let take = (total - written).min(space);
        af_total += space - take; // stuffing fills the rest
        out.extend_from_slice(&[
            SYNC_BYTE,
            if first { 0x40 } else { 0 } | (pid >> 8) as u8,
            pid as u8,
            if af_total > 0 { 0x30 } else { 0x10 } | *cc,
        ]);
        *cc = (*cc + 1) & 0x0F;
        if af_total > 0 {
            let af_len = af_total - 1;
            out.extend_from_slice(&[af_len as u8]);
            if af_len > 0 {
                let mut flags = 0;
                if first && random_access {
                    flags |= 0x40;
                }
                if first && pcr.is_some() {
                    flags |= 0x10;
                }
                out.extend_from_slice(&[flags]);
                if let Some(pcr) = pcr.filter(|_| first) {
                    out.extend_from_slice(&pcr_bytes(pcr));
                }
                let used = 1 + if first && pcr.is_some() { 6 } else { 0 };
                out.extend(std::iter::repeat_n(0xFF, af_len - used));
            }
        }
        // Copy `take` bytes starting at `written` out of the parts.
        let mut left = take;
        let mut at = written;
        for part in parts {
            if at >= part.len() {
                at -= part.len();
                continue;
            }
            let n = (part.len() - at).min(left);
            out.extend_from_slice(&part[at..at + n]);
            left -= n;
            at = 0;
            if left == 0 {
                break;
            }
        }
        written += take;
        first = false;
    }
}

/// Writes one private section (SCTE-35) into packets, padding the last with 0xFF.
fn write_section_packets(out: &mut BytesMut, pid: u16, cc: &mut u8, section: &[u8]) {
    let mut rest = section;
    let mut first = true;
    while first || !rest.is_empty() {
        let start = out.len();
        out.extend_from_slice(&[
            SYNC_BYTE,
            if first { 0x40 } else { 0 } | (pid >> 8) as u8,
            pid as u8,
            0x10 | *cc,
        ]);
        *cc = (*cc + 1) & 0x0F;
        if first {
            out.extend_from_slice(&[0]); // pointer_field
        }
        let take = rest.len().min(start + PACKET_LEN - out.len());
        out.extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        out.resize(start + PACKET_LEN, 0xFF);
        first = false;
    }
}

/// A PSI packet holding one section, continuity counter 0.
fn psi_packet(pid: u16, section: &[u8]) -> Result<[u8; PACKET_LEN], Error> {
    let mut packet = [0xFF; PACKET_LEN];
    packet[..5].copy_from_slice(&[SYNC_BYTE, 0x40 | (pid >> 8) as u8, pid as u8, 0x10, 0]);
    let Some(room) = packet.get_mut(5..5 + section.len()) else {
        return Err(Error::InvalidMuxerConfig {
            reason: "too many tracks: the PMT does not fit one packet",
        });
    };
    room.copy_from_slice(section);
    Ok(packet)
}

/// The PCR (as a 90 kHz base) for a frame with this DTS.
fn pcr_of(dts: i64) -> u64 {
    wrap(dts - PCR_DELAY)
}

fn pcr_bytes(base: u64) -> [u8; 6] {
    [
        (base >> 25) as u8,
        (base >> 17) as u8,
        (base >> 9) as u8,
        (base >> 1) as u8,
        ((base as u8) << 7) | 0x7E, // 6 reserved bits, extension 0
        0,
    ]
}

/// A 90 kHz timestamp reduced to 33 bits.
fn wrap(ts: i64) -> u64 {
    ts.rem_euclid(Ts90::WRAP_33) as u64
}

/// Bytes of payload a packet without adaptation field holds.
const PAYLOAD_LEN: usize = PACKET_LEN - 4;
const MIN_PID: u16 = 0x0010;
const MAX_PID: u16 = 0x1FFE;
/// PAT/PMT go out at least this often, in 90 kHz ticks of DTS (80 ms).
const PSI_INTERVAL: i64 = 7_200;
/// A PCR goes out at least this often (90 ms), below the 100 ms MPEG-2 requires.
const PCR_INTERVAL: i64 = 8_100;
/// How far the PCR runs behind the DTS (100 ms): the decoder's buffering time.
const PCR_DELAY: i64 = 9_000;

/// The ADTS parameters for an AudioSpecificConfig. ADTS carries only object types 1 to 4, so
/// HE-AAC (5) and HE-AACv2 (29) are written as AAC-LC at the core rate: implicit SBR/PS
/// signalling, which every decoder handles.
fn adts_config(asc: &[u8]) -> Option<AacConfig> {
    let config = AacConfig::from_audio_specific_config(asc);
    config.or_else(|| {
        let [a, b, ..] = *asc else { return None };
        let object_type = a >> 3;
        let frequency_index = ((a & 0x07) << 1) | (b >> 7);
        let channels = (b >> 3) & 0x0F;
        matches!(object_type, 5 | 29)
            .then(|| AacConfig::new(2, frequency_index, channels))
            .flatten()
    })
}

/// The PMT stream_type of a codec the muxer carries.
fn stream_type(codec: Codec) -> Option<u8> {
    Some(match codec {
        Codec::H264 => 0x1B,
        Codec::H265 => 0x24,
        Codec::Aac => 0x0F,
        Codec::Mp2 | Codec::Mp3 => 0x03,
        Codec::Ac3 => 0x81,
        Codec::Eac3 => 0x87,
        Codec::Scte35 => 0x86,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tributary_media::SessionId;

    use super::*;

    /// Some instant to stamp arrivals with; tests never compare it, so reading the clock here
    /// keeps them deterministic.
    #[expect(
        clippy::disallowed_methods,
        reason = "an arbitrary arrival stamp, never compared"
    )]
    fn arrival() -> Instant {
        Instant::now()
    }

    const VIDEO: TrackId = TrackId(1);
    const AUDIO: TrackId = TrackId(2);

    fn frame(track: TrackId, codec: Codec, dts: i64, keyframe: bool, len: usize) -> Frame {
        Frame {
            track,
            codec,
            pts: Ts90(dts),
            dts: Ts90(dts),
            keyframe,
            session: SessionId(0),
            arrival: arrival(),
            payload: Bytes::from(vec![0x5A; len]),
            config: None,
        }
    }

    fn config() -> MuxerConfig {
        MuxerConfig {
            tracks: vec![
                MuxTrack::new(VIDEO, Codec::H264),
                MuxTrack::new(AUDIO, Codec::Aac).with_aac(AacConfig::new(2, 4, 2).unwrap()),
            ],
            ..MuxerConfig::default()
        }
    }

    fn packets(muxer: &mut Muxer) -> Vec<[u8; PACKET_LEN]> {
        let mut out = Vec::new();
        while let Some(chunk) = muxer.pull() {
            let chunk = chunk.unwrap();
            assert_eq!(chunk.len() % PACKET_LEN, 0);
            out.extend(
                chunk
                    .chunks(PACKET_LEN)
                    .map(|p| <[u8; PACKET_LEN]>::try_from(p).unwrap()),
            );
        }
        out
    }

    fn pid(p: &[u8; PACKET_LEN]) -> u16 {
        u16::from_be_bytes([p[1] & 0x1F, p[2]])
    }

    #[test]
    fn psi_first_and_before_video_keyframes_with_counters() {
        let mut muxer = Muxer::new(config()).unwrap();
        for (i, key) in [true, false, false, true].into_iter().enumerate() {
            muxer.push(&frame(VIDEO, Codec::H264, 1800 * i as i64, key, 1000));
        }
        let out = packets(&mut muxer);
        assert!(out.iter().all(|p| p[0] == SYNC_BYTE));
        assert_eq!(
            (pid(&out[0]), pid(&out[1]), pid(&out[2])),
            (0, 0x1000, 0x100)
        );
        let pats: Vec<_> = out
            .iter()
            .enumerate()
            .filter(|(_, p)| pid(p) == 0)
            .collect();
        assert_eq!(pats.len(), 2, "at the start and before the second keyframe");
        assert_eq!(pats[1].1[3] & 0x0F, 1);
        let video_ccs: Vec<u8> = out
            .iter()
            .filter(|p| pid(p) == 0x100 && p[3] & 0x10 != 0)
            .map(|p| p[3] & 0x0F)
            .collect();
        assert!(video_ccs.windows(2).all(|w| w[1] == (w[0] + 1) & 0x0F));
        // Keyframe: random_access_indicator and PCR in the first packet.
        assert_eq!(out[2][1] & 0x40, 0x40);
        assert_eq!(out[2][3] & 0x20, 0x20);
        assert_eq!(out[2][5] & 0x50, 0x50);
    }

    #[test]
    fn psi_repeats_on_audio_only_streams_and_pcr_goes_on_audio() {
        let mut muxer = Muxer::new(MuxerConfig {
            tracks: vec![MuxTrack::new(AUDIO, Codec::Mp2)],
            ..MuxerConfig::default()
        })
        .unwrap();
        for i in 0..10 {
            muxer.push(&frame(AUDIO, Codec::Mp2, 2160 * i, true, 300));
        }
        let out = packets(&mut muxer);
        let pats = out.iter().filter(|p| pid(p) == 0).count();
        assert_eq!(pats, 3, "at 0, 86.4 ms and 172.8 ms");
        let pcrs = out
            .iter()
            .filter(|p| p[3] & 0x20 != 0 && p[5] & 0x10 != 0)
            .count();
        assert_eq!(pcrs, 10);
    }

    #[test]
    fn pcr_only_packets_fill_gaps_between_sparse_video_frames() {
        let mut muxer = Muxer::new(config()).unwrap();
        muxer.push(&frame(VIDEO, Codec::H264, 0, true, 100));
        for i in 1..=10 {
            muxer.push(&frame(AUDIO, Codec::Aac, 2089 * i, true, 100));
        }
        let out = packets(&mut muxer);
        let pcr_only: Vec<_> = out
            .iter()
            .filter(|p| pid(p) == 0x100 && p[3] & 0x30 == 0x20)
            .collect();
        assert_eq!(pcr_only.len(), 2);
        assert!(pcr_only.iter().all(|p| p[4] == 183 && p[5] == 0x10));
    }

    #[test]
    fn last_packet_of_a_pes_is_stuffed_through_the_adaptation_field() {
        for len in [1, 170, 171, 172, 173, 183, 184, 185, 1000] {
            let mut muxer = Muxer::new(config()).unwrap();
            muxer.push(&frame(VIDEO, Codec::H264, 0, false, len));
            let out = packets(&mut muxer);
            let pes: Vec<_> = out.iter().filter(|p| pid(p) == 0x100).collect();
            let mut total = 0;
            for p in &pes {
                let start = if p[3] & 0x20 != 0 {
                    5 + usize::from(p[4])
                } else {
                    4
                };
                total += PACKET_LEN - start;
            }
            assert_eq!(total, len + 14, "len {len}: PES header 14 bytes");
        }
    }

    #[test]
    fn rejects_bad_frames_and_tables() {
        let mut muxer = Muxer::new(config()).unwrap();
        muxer.push(&frame(TrackId(9), Codec::H264, 0, true, 10));
        assert_eq!(
            muxer.pull(),
            Some(Err(Error::UnknownTrack { track: TrackId(9) }))
        );
        muxer.push(&frame(VIDEO, Codec::H265, 0, true, 10));
        assert!(matches!(
            muxer.pull(),
            Some(Err(Error::CodecMismatch { .. }))
        ));
        muxer.push(&frame(AUDIO, Codec::Aac, 0, true, 9000));
        assert!(matches!(
            muxer.pull(),
            Some(Err(Error::FrameTooLarge { len: 9000, .. }))
        ));
        assert_eq!(muxer.pull(), None);

        let table = |tracks| {
            Muxer::new(MuxerConfig {
                tracks,
                ..MuxerConfig::default()
            })
        };
        // An AAC track may get its config from its frames; a frame without one is refused.
        let mut bare = table(vec![MuxTrack::new(AUDIO, Codec::Aac)]).unwrap();
        bare.push(&frame(AUDIO, Codec::Aac, 0, true, 10));
        assert!(matches!(
            bare.pull(),
            Some(Err(Error::MissingConfig { track: AUDIO }))
        ));
        let mut with_config = frame(AUDIO, Codec::Aac, 0, true, 10);
        let asc = Bytes::from_static(&[0x11, 0x90]); // AAC-LC, 48 kHz, stereo
        with_config.config = Some(Arc::new(TrackConfig::aac(asc).unwrap()));
        bare.push(&with_config);
        let ts = bare.pull().unwrap().unwrap();
        // PAT + PMT + one audio packet whose payload starts with the ADTS sync word.
        assert_eq!(ts.len(), 3 * PACKET_LEN);
        assert!(ts.windows(2).any(|w| w == [0xFF, 0xF1]));
        assert!(matches!(
            table(vec![MuxTrack::new(AUDIO, Codec::Opus)]),
            Err(Error::UnsupportedCodec {
                codec: Codec::Opus,
                ..
            })
        ));
        // AV1 and VP9 have no MPEG-TS mapping in this build (they go to fMP4 outputs).
        for codec in [Codec::Av1, Codec::Vp9] {
            let refused = table(vec![MuxTrack::new(VIDEO, codec)]).unwrap_err();
            assert_eq!(
                refused.to_string(),
                format!(
                    "track {}: the muxer does not support codec {codec}",
                    VIDEO.0
                )
            );
        }
        assert!(matches!(
            table(vec![
                MuxTrack::new(VIDEO, Codec::H264).with_pid(0x200),
                MuxTrack::new(AUDIO, Codec::Mp2).with_pid(0x200),
            ]),
            Err(Error::InvalidTrack { track: AUDIO, .. })
        ));
        assert!(matches!(
            table(vec![MuxTrack::new(VIDEO, Codec::H264).with_pid(0x1FFF)]),
            Err(Error::InvalidTrack { .. })
        ));
    }

    #[test]
    fn set_tracks_bumps_the_pmt_version_and_resends_psi() {
        let mut muxer = Muxer::new(config()).unwrap();
        muxer.push(&frame(AUDIO, Codec::Aac, 0, true, 10));
        let before = packets(&mut muxer);
        muxer
            .set_tracks(vec![MuxTrack::new(AUDIO, Codec::Mp2)])
            .unwrap();
        muxer.push(&frame(AUDIO, Codec::Mp2, 100, true, 10));
        let after = packets(&mut muxer);
        assert_eq!(pid(&after[1]), 0x1000);
        let version = |p: &[u8; PACKET_LEN]| (p[10] >> 1) & 0x1F;
        assert_eq!(version(&before[1]) + 1, version(&after[1]));
    }
}
