//! The demuxer: TS bytes in, track tables and frames out.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tributary_media::{Codec, Frame, MediaKind, SessionId, TrackConfig, TrackId, Ts90};

use crate::es::{self, PesHeader};
use crate::psi::{self, Pmt, SectionAssembler};
use crate::track::{AacConfig, Carriage, TrackInfo};
use crate::{Error, NULL_PID, PACKET_LEN, PAT_PID, SYNC_BYTE};

/// What the demuxer is told when it is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemuxerConfig {
    /// The program_number to demux. 0 (the default) takes the first program listed in the PAT,
    /// which is what a single-program stream needs (SPEC §Ingest, `program`).
    pub program: u16,
}

/// What the demuxer reports.
#[derive(Debug, Clone)]
pub enum DemuxEvent {
    /// The track table of the selected program was discovered or changed: a new PMT, or the
    /// first frame of a stream told more than the PMT did (AAC parameters, MPEG audio layer).
    ///
    /// Always emitted before the first frame that depends on it.
    Tracks {
        /// The program_number.
        program: u16,
        /// Every elementary stream of the program, carried or not.
        tracks: Vec<TrackInfo>,
    },
    /// One access unit of a carried track.
    Frame(Frame),
}

/// A program clock reference: 27 MHz, as a 33-bit 90 kHz base and a 0..300 extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pcr {
    /// The PID that carried it.
    pub pid: u16,
    /// The 33-bit base, 90 kHz.
    pub base: u64,
    /// The extension, 27 MHz (0..300).
    pub extension: u16,
    /// Byte offset of the packet that carried it.
    pub offset: u64,
}

impl Pcr {
    /// The PCR in 27 MHz ticks (wraps with its base, every 2^33 / 90 kHz, ~26.5 h).
    pub fn ticks_27mhz(self) -> u64 {
        self.base * 300 + u64::from(self.extension)
    }
}

/// An MPEG-TS demuxer for one program.
///
/// # Driving it
///
/// Call [`push`](Self::push) with each chunk of bytes as it arrives (any size, no alignment to
/// packets needed) and the instant it arrived, then call [`pull`](Self::pull) until it returns
/// `None` before pushing again. At the end of the input call [`flush`](Self::flush) and drain
/// once more: a video PES with PES_packet_length 0 is only known to be complete when the next
/// one starts, so the last picture comes out of `flush`.
///
/// # What comes out, in which order
///
/// One frame per access unit: a picture for H.264/H.265 (Annex-B, as carried), one raw AAC
/// frame per ADTS frame (header stripped, PTS advanced by 1024 samples per frame), one Opus
/// packet per control header (header stripped), one SCTE-35 section, and for MP2, MP3, AC-3 and
/// E-AC-3 the whole PES payload (which may hold several codec frames).
///
/// Events come out in stream order. A [`DemuxEvent::Tracks`] comes before any frame of a track
/// it announces. Frames of one track come in decode order with timestamps unwrapped past the
/// 33-bit limit (per track, each relative to its previous DTS); `dts` equals `pts` when the PES
/// carried only a PTS. Frames carry [`SessionId`]`(0)`: sessions belong to the hub, which
/// restamps them.
///
/// An `Err` reports damaged input (lost sync, a bad CRC, a malformed PES) with its PID and byte
/// offset; the demuxer has already skipped the damage and continues with the next push.
/// Continuity-counter errors are only counted ([`cc_errors`](Self::cc_errors)): the data on
/// either side of the gap is still delivered. It never panics, whatever the input.
///
/// # What it leaves to the caller
///
/// It does not pace, does not normalise timelines and does not decide what to do after many
/// errors (SPEC §Ingest reopens after 8 failures without a good frame; that is the worker's
/// call).
#[derive(Debug)]
pub struct Demuxer {
    /// The program to select.
    config: DemuxerConfig,
    /// A packet cut off by the end of the previous push.
    partial: [u8; PACKET_LEN],
    /// How many bytes of `partial` are filled.
    partial_len: usize,
    /// Byte offset of `partial`'s first byte.
    partial_offset: u64,
    /// Byte offset of the next byte pushed.
    position: u64,
    /// While resynchronising: offset of the first skipped byte and how many were skipped.
    skipping: Option<(u64, u64)>,
    /// While resynchronising: bytes from a candidate sync byte on, held until the byte that
    /// confirms it arrives (at most one packet plus one push).
    resync: Vec<u8>,
    /// The arrival instant of the current push.
    arrival: Option<Instant>,
    /// Last continuity counter per PID (`CC_UNKNOWN` before the first packet).
    cc: Vec<u8>,
    /// Per PID: index + 1 into `streams`, 0 when the PID is not a carried stream.
    stream_of: Vec<u8>,
    /// PAT section reassembly.
    pat: SectionAssembler,
    /// The selected program, once the PAT named it.
    program: Option<Program>,
    /// Whether `ProgramNotFound` was reported for the current PAT already.
    missing_reported: bool,
    /// PMT section reassembly.
    pmt: SectionAssembler,
    /// The last PMT applied, to apply each version once.
    last_pmt: Option<Pmt>,
    /// The track table, as last reported.
    tracks: Vec<TrackInfo>,
    /// Per carried stream, its reassembly state.
    streams: Vec<Stream>,
    /// Events not pulled yet.
    events: VecDeque<Result<DemuxEvent, Error>>,
    /// Continuity-counter errors seen.
    cc_errors: u64,
    /// The last PCR of the program's PCR PID.
    last_pcr: Option<Pcr>,
    /// The newest DTS on any track, to stamp SCTE-35 sections (which carry no PES timestamp).
    last_dts: Option<Ts90>,
}

impl Demuxer {
    /// Makes a demuxer that selects the program named in `config`.
    pub fn new(config: DemuxerConfig) -> Self {
        Self {
            config,
            partial: [0; PACKET_LEN],
            partial_len: 0,
            partial_offset: 0,
            position: 0,
            skipping: None,
            resync: Vec::new(),
            arrival: None,
            cc: vec![CC_UNKNOWN; PID_COUNT],
            stream_of: vec![0; PID_COUNT],
            pat: SectionAssembler::default(),
            program: None,
            missing_reported: false,
            pmt: SectionAssembler::default(),
            last_pmt: None,
            tracks: Vec::new(),
            streams: Vec::new(),
            events: VecDeque::new(),
            cc_errors: 0,
            last_pcr: None,
            last_dts: None,
        }
    }

    /// Feeds bytes that arrived at `arrival`. Drain [`pull`](Self::pull) afterwards.
    pub fn push(&mut self, data: &[u8], arrival: Instant) {
        self.arrival = Some(arrival);
        if self.resync.is_empty() {
            self.consume(data, true);
        } else {
            // Resynchronising (cold path): the held bytes come first.
            let mut held = std::mem::take(&mut self.resync);
            held.extend_from_slice(data);
            self.consume(&held, true);
        }
    }

    /// Splits bytes into packets. While resynchronising, a candidate sync byte is trusted only
    /// when the next packet's sync byte follows 188 bytes later (`confirm`), so bytes that
    /// cannot be checked yet are held in `resync` for the next push.
    fn consume(&mut self, data: &[u8], confirm: bool) {
        let mut rest = data;
        if self.partial_len > 0 {
            let take = (PACKET_LEN - self.partial_len).min(rest.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&rest[..take]);
            self.partial_len += take;
            self.position += take as u64;
            rest = &rest[take..];
            if self.partial_len < PACKET_LEN {
                return;
            }
            self.partial_len = 0;
            let packet = self.partial;
            self.packet(&packet, self.partial_offset);
        }
        while let Some(&first) = rest.first() {
            if first != SYNC_BYTE {
                let skip = rest
                    .iter()
                    .position(|&b| b == SYNC_BYTE)
                    .unwrap_or(rest.len());
                self.skip(skip);
                rest = &rest[skip..];
                continue;
            }
            if self.skipping.is_some() && confirm {
                match rest.get(PACKET_LEN) {
                    Some(&next) if next != SYNC_BYTE => {
                        self.skip(1);
                        rest = &rest[1..];
                        continue;
                    }
                    Some(_) => {}
                    None => {
                        self.resync.extend_from_slice(rest);
                        return;
                    }
                }
            }
            if let Some((offset, skipped)) = self.skipping.take() {
                self.events.push_back(Err(Error::Sync { offset, skipped }));
            }
            if rest.len() < PACKET_LEN {
                self.partial[..rest.len()].copy_from_slice(rest);
                self.partial_len = rest.len();
                self.partial_offset = self.position;
                self.position += rest.len() as u64;
                return;
            }
            let (packet, after) = rest.split_at(PACKET_LEN);
            let offset = self.position;
            self.position += PACKET_LEN as u64;
            self.packet(packet, offset);
            rest = after;
        }
    }

    /// The next event, or `None` when everything pushed so far has been reported.
    pub fn pull(&mut self) -> Option<Result<DemuxEvent, Error>> {
        self.events.pop_front()
    }

    /// Ends the input: completes every access unit still being gathered and drops an
    /// incomplete trailing packet. Drain [`pull`](Self::pull) afterwards.
    pub fn flush(&mut self) {
        if !self.resync.is_empty() {
            let held = std::mem::take(&mut self.resync);
            self.consume(&held, false);
        }
        for index in 0..self.streams.len() {
            if self.streams[index].active {
                self.finish_pes(index);
            }
        }
        self.partial_len = 0;
        if let Some((offset, skipped)) = self.skipping.take() {
            self.events.push_back(Err(Error::Sync { offset, skipped }));
        }
    }

    /// How many continuity-counter errors (lost or reordered packets) were seen so far.
    pub fn cc_errors(&self) -> u64 {
        self.cc_errors
    }

    /// The last PCR seen on the selected program's PCR PID (on any PID before the PMT is
    /// known).
    pub fn last_pcr(&self) -> Option<Pcr> {
        self.last_pcr
    }

    /// The program_number selected from the PAT, once known.
    pub fn program(&self) -> Option<u16> {
        self.program.map(|p| p.number)
    }

    /// The current track table (empty before the first PMT).
    pub fn tracks(&self) -> &[TrackInfo] {
        &self.tracks
    }

    /// Counts skipped non-TS bytes.
    fn skip(&mut self, n: usize) {
        let run = self.skipping.get_or_insert((self.position, 0));
        run.1 += n as u64;
        self.position += n as u64;
    }

    /// Handles one 188-byte packet that starts at `offset`.
    fn packet(&mut self, packet: &[u8], offset: u64) {
        let pid = u16::from_be_bytes([packet[1] & 0x1F, packet[2]]);
        if packet[1] & 0x80 != 0 {
            self.events
                .push_back(Err(Error::TransportError { pid, offset }));
            return;
        }
        if pid == NULL_PID {
            return;
        }
        let pusi = packet[1] & 0x40 != 0;
        let control = (packet[3] >> 4) & 0x03;
        let cc = packet[3] & 0x0F;
        let mut payload_start = 4;
        let mut discontinuity = false;
        let mut random_access = false;
        if control & 0x02 != 0 {
            let len = packet[4];
            if usize::from(len) > PACKET_LEN - 5 {
                self.events
                    .push_back(Err(Error::AdaptationField { pid, offset, len }));
                return;
            }
            if len > 0 {
                let flags = packet[5];
                discontinuity = flags & 0x80 != 0;
                random_access = flags & 0x40 != 0;
                if flags & 0x10 != 0 && len >= 7 {
                    self.pcr(pid, &packet[6..12], offset);
                }
            }
            payload_start = 5 + usize::from(len);
        }
        if control & 0x01 == 0 {
            return;
        }
        let slot = usize::from(pid);
        let previous = self.cc[slot];
        self.cc[slot] = cc;
        let mut lost = false;
        if previous != CC_UNKNOWN && !discontinuity {
            if cc == previous {
                return; // a duplicate packet, sent twice on purpose
            }
            if cc != (previous + 1) & 0x0F {
                self.cc_errors += 1;
                lost = true;
            }
        }
        let Some(payload) = packet.get(payload_start..).filter(|p| !p.is_empty()) else {
            return;
        };
        if pid == PAT_PID {
            let mut pat = std::mem::take(&mut self.pat);
            if lost {
                pat.reset();
            }
            pat.push(payload, pusi, offset, |section, start| {
                self.on_pat(section, start);
            });
            self.pat = pat;
            return;
        }
        if self.program.is_some_and(|p| p.pmt_pid == pid) {
            let mut pmt = std::mem::take(&mut self.pmt);
            if lost {
                pmt.reset();
            }
            pmt.push(payload, pusi, offset, |section, start| {
                self.on_pmt(section, pid, start);
            });
            self.pmt = pmt;
            return;
        }
        let index = usize::from(self.stream_of[slot]);
        if index == 0 {
            return;
        }
        self.on_payload(index - 1, payload, pusi, random_access, lost, offset);
    }

    /// Records a PCR if it belongs to the selected program.
    fn pcr(&mut self, pid: u16, b: &[u8], offset: u64) {
        if self
            .program
            .is_some_and(|p| p.pcr_pid.is_some_and(|pcr| pcr != pid))
        {
            return;
        }
        let [b0, b1, b2, b3, b4, b5] = *b else { return };
        let base = (u64::from(b0) << 25)
            | (u64::from(b1) << 17)
            | (u64::from(b2) << 9)
            | (u64::from(b3) << 1)
            | u64::from(b4 >> 7);
        let extension = (u16::from(b4 & 1) << 8) | u16::from(b5);
        self.last_pcr = Some(Pcr {
            pid,
            base,
            extension,
            offset,
        });
    }

    fn on_pat(&mut self, section: &[u8], offset: u64) {
        let programs = match psi::parse_pat(section, PAT_PID, offset) {
            Ok(Some(programs)) => programs,
            Ok(None) => return,
            Err(e) => {
                self.events.push_back(Err(e));
                return;
            }
        };
        let wanted = self.config.program;
        let found = programs
            .iter()
            .find(|&&(number, _)| wanted == 0 || number == wanted);
        let Some(&(number, pmt_pid)) = found else {
            if !self.missing_reported {
                self.missing_reported = true;
                self.events.push_back(Err(Error::ProgramNotFound {
                    program: wanted,
                    offset,
                }));
            }
            return;
        };
        self.missing_reported = false;
        if self
            .program
            .is_some_and(|p| p.number == number && p.pmt_pid == pmt_pid)
        {
            return;
        }
        self.program = Some(Program {
            number,
            pmt_pid,
            pcr_pid: None,
        });
        self.pmt.reset();
        self.last_pmt = None;
    }

    fn on_pmt(&mut self, section: &[u8], pid: u16, offset: u64) {
        let pmt = match psi::parse_pmt(section, pid, offset) {
            Ok(Some(pmt)) => pmt,
            Ok(None) => return,
            Err(e) => {
                self.events.push_back(Err(e));
                return;
            }
        };
        let Some(program) = self.program.as_mut() else {
            return;
        };
        if pmt.program != program.number || self.last_pmt.as_ref() == Some(&pmt) {
            return;
        }
        program.pcr_pid = Some(pmt.pcr_pid);
        let pmt_pid = program.pmt_pid;
        let number = program.number;

        // Keep the state of streams whose PID and stream_type did not change.
        let mut old = std::mem::take(&mut self.streams);
        let old_tracks = std::mem::take(&mut self.tracks);
        for slot in self.stream_of.iter_mut() {
            *slot = 0;
        }
        for info in &pmt.tracks {
            let pid = info.track.0;
            let reserved = pid == PAT_PID || pid == pmt_pid || pid == NULL_PID;
            if reserved || self.tracks.iter().any(|t| t.track == info.track) {
                continue;
            }
            let kept = old_tracks
                .iter()
                .zip(old.iter_mut())
                .find(|(t, s)| {
                    t.track == info.track && t.stream_type == info.stream_type && s.active_codec()
                })
                .map(|(t, s)| (t.clone(), std::mem::take(s)));
            let (track, stream) = match kept {
                Some(kept) => kept,
                None => {
                    let stream = match info.carriage {
                        Carriage::Carried(codec) => Stream::new(pid, codec),
                        Carriage::NotCarried(_) => Stream::default(),
                    };
                    (info.clone(), stream)
                }
            };
            let carried = matches!(track.carriage, Carriage::Carried(_));
            self.tracks.push(track);
            if carried && self.streams.len() < MAX_STREAMS {
                self.stream_of[usize::from(pid)] = (self.streams.len() + 1) as u8;
                self.streams.push(stream);
            } else {
                self.streams.push(Stream::default());
            }
        }
        self.last_pmt = Some(pmt);
        self.events.push_back(Ok(DemuxEvent::Tracks {
            program: number,
            tracks: self.tracks.clone(),
        }));
    }

    /// Gathers one packet's payload into its stream's PES (or section, for SCTE-35).
    fn on_payload(
        &mut self,
        index: usize,
        payload: &[u8],
        pusi: bool,
        random_access: bool,
        lost: bool,
        offset: u64,
    ) {
        let Some(arrival) = self.arrival else { return };
        let Some(stream) = self.streams.get_mut(index) else {
            return;
        };
        if stream.codec == Some(Codec::Scte35) {
            if lost {
                stream.sections.reset();
            }
            let pid = stream.pid;
            let events = &mut self.events;
            let stamp = self.last_dts.unwrap_or_default();
            stream
                .sections
                .push(payload, pusi, offset, |section, start| {
                    events.push_back(scte35_frame(section, pid, start, stamp, arrival));
                });
            return;
        }
        if pusi {
            if stream.active {
                self.finish_pes(index);
            }
            self.note_start(payload);
            let stream = &mut self.streams[index];
            stream.active = true;
            stream.start = offset;
            stream.arrival = Some(arrival);
            stream.random_access = random_access;
            // Reserve the whole PES up front when its header says how long it is, else a bit
            // more than the previous one, so gathering rarely has to grow (and copy) the buffer.
            let announced = match payload {
                [0, 0, 1, _, l0, l1, ..] => usize::from(u16::from_be_bytes([*l0, *l1])),
                _ => 0,
            };
            let expected = if announced != 0 {
                6 + announced
            } else {
                stream.size_hint + stream.size_hint / 4
            };
            stream.buf.reserve(expected);
        }
        let stream = &mut self.streams[index];
        if !stream.active {
            return; // joined mid-PES: wait for the next start
        }
        let limit = match stream.codec.map(Codec::kind) {
            Some(MediaKind::Video) => MAX_VIDEO_PES,
            _ => MAX_OTHER_PES,
        };
        if stream.buf.len() + payload.len() > limit {
            stream.active = false;
            stream.buf.clear();
            self.events.push_back(Err(Error::PesTooLarge {
                pid: stream.pid,
                offset: stream.start,
                limit,
            }));
            return;
        }
        stream.buf.extend_from_slice(payload);
        if let [0, 0, 1, _, l0, l1, ..] = stream.buf[..] {
            let len = usize::from(u16::from_be_bytes([l0, l1]));
            if len != 0 && stream.buf.len() >= 6 + len {
                self.finish_pes(index);
            }
        }
    }

    /// Advances the stamp for SCTE-35 sections to the DTS of a PES that just started, when its
    /// header is in its first packet (as it nearly always is).
    fn note_start(&mut self, payload: &[u8]) {
        let Ok(header) = es::parse_pes_header(payload) else {
            return;
        };
        let Some(raw) = header.dts.or(header.pts) else {
            return;
        };
        let dts = match self.last_dts {
            Some(last) => Ts90::unwrap_33(raw, last),
            None => Ts90(raw as i64),
        };
        self.last_dts = Some(self.last_dts.map_or(dts, |last| last.max(dts)));
    }

    /// Completes the PES being gathered on stream `index` and emits its frames.
    fn finish_pes(&mut self, index: usize) {
        let stream = &mut self.streams[index];
        stream.active = false;
        let pid = stream.pid;
        let start = stream.start;
        let (Some(codec), Some(arrival)) = (stream.codec, stream.arrival.or(self.arrival)) else {
            stream.buf.clear();
            return;
        };
        // The one copy: the packets' payloads were gathered into `buf`; from here on the
        // access units are slices of this `Bytes`.
        let mut pes = stream.buf.split().freeze();
        stream.size_hint = pes.len().min(MAX_HINT);
        let header = match es::parse_pes_header(&pes) {
            Ok(header) => header,
            Err(reason) => {
                self.events.push_back(Err(Error::Pes {
                    pid,
                    offset: start,
                    reason,
                }));
                return;
            }
        };
        let PesHeader {
            pts,
            dts,
            header_len,
            packet_len,
        } = header;
        if packet_len != 0 {
            pes.truncate(6 + packet_len);
        }
        if pes.len() < header_len {
            self.events.push_back(Err(Error::Pes {
                pid,
                offset: start,
                reason: "PES shorter than its header",
            }));
            return;
        }
        let payload = pes.slice(header_len..);
        if payload.is_empty() {
            return;
        }
        let dts_raw = dts.or(pts);
        let dts = match (dts_raw, stream.last_dts) {
            (Some(raw), Some(last)) => Ts90::unwrap_33(raw, last),
            (Some(raw), None) => Ts90(raw as i64),
            (None, Some(last)) => last,
            (None, None) => Ts90(0),
        };
        let pts = pts.map_or(dts, |raw| Ts90::unwrap_33(raw, dts));
        stream.last_dts = Some(dts);
        self.last_dts = Some(self.last_dts.map_or(dts, |last| last.max(dts)));
        let unit = Unit {
            index,
            pid,
            start,
            arrival,
            pts,
            dts,
        };
        match codec {
            Codec::H264 | Codec::H265 => {
                let keyframe = stream.random_access
                    || if codec == Codec::H264 {
                        es::h264_is_idr(&payload)
                    } else {
                        es::h265_is_irap(&payload)
                    };
                self.emit(&unit, codec, 0, keyframe, payload);
            }
            Codec::Aac => self.split_adts(&unit, &payload),
            Codec::Opus => self.split_opus(&unit, &payload),
            Codec::Mp2 if es::mpeg_audio_is_layer3(&payload) => {
                self.streams[index].codec = Some(Codec::Mp3);
                if let Some(track) = self.tracks.get_mut(index) {
                    track.carriage = Carriage::Carried(Codec::Mp3);
                }
                self.report_tracks();
                self.emit(&unit, Codec::Mp3, 0, true, payload);
            }
            _ => self.emit(&unit, codec, 0, true, payload),
        }
    }

    /// Emits one frame per ADTS frame of an AAC PES, with the header stripped.
    fn split_adts(&mut self, unit: &Unit, payload: &Bytes) {
        let mut at = 0;
        let mut samples = 0i64;
        while at < payload.len() {
            let frame = match es::parse_adts(&payload[at..]) {
                Ok(frame) => frame,
                Err(reason) => {
                    self.events.push_back(Err(Error::Framing {
                        pid: unit.pid,
                        codec: Codec::Aac,
                        offset: unit.start,
                        reason,
                    }));
                    return;
                }
            };
            if self.streams[unit.index].aac != Some(frame.config) {
                self.set_aac(unit.index, frame.config);
            }
            let rate = i64::from(frame.config.sample_rate());
            // Rounded to the nearest tick, as ffmpeg rescales audio timestamps.
            let advance = (2 * samples * Ts90::HZ + rate) / (2 * rate);
            let au = payload.slice(at + frame.start..at + frame.start + frame.len);
            self.emit(unit, Codec::Aac, advance, true, au);
            samples += AAC_SAMPLES;
            at += frame.frame_len;
        }
    }

    /// Emits one frame per Opus packet of an Opus PES, with the control header stripped.
    fn split_opus(&mut self, unit: &Unit, payload: &Bytes) {
        let mut at = 0;
        let mut advance = 0;
        while at < payload.len() {
            let packet = match es::parse_opus(&payload[at..]) {
                Ok(packet) => packet,
                Err(reason) => {
                    self.events.push_back(Err(Error::Framing {
                        pid: unit.pid,
                        codec: Codec::Opus,
                        offset: unit.start,
                        reason,
                    }));
                    return;
                }
            };
            let data = payload.slice(at + packet.start..at + packet.start + packet.len);
            self.emit(unit, Codec::Opus, advance, true, data);
            advance += packet.duration;
            at += packet.start + packet.len;
        }
    }

    fn set_aac(&mut self, index: usize, config: AacConfig) {
        self.streams[index].aac = Some(config);
        self.streams[index].config =
            TrackConfig::aac(Bytes::copy_from_slice(&config.audio_specific_config())).map(Arc::new);
        if let Some(track) = self.tracks.get_mut(index) {
            track.aac = Some(config);
        }
        self.report_tracks();
    }

    fn report_tracks(&mut self) {
        let Some(program) = self.program else { return };
        self.events.push_back(Ok(DemuxEvent::Tracks {
            program: program.number,
            tracks: self.tracks.clone(),
        }));
    }

    fn emit(&mut self, unit: &Unit, codec: Codec, advance: i64, keyframe: bool, payload: Bytes) {
        if payload.is_empty() {
            return;
        }
        self.events.push_back(Ok(DemuxEvent::Frame(Frame {
            track: TrackId(unit.pid),
            codec,
            pts: Ts90(unit.pts.0 + advance),
            dts: Ts90(unit.dts.0 + advance),
            keyframe,
            session: SessionId(0),
            arrival: unit.arrival,
            payload,
            config: self.streams[unit.index].config.clone(),
        })));
    }
}

/// The selected program.
#[derive(Debug, Clone, Copy)]
struct Program {
    number: u16,
    pmt_pid: u16,
    /// From the PMT, once seen.
    pcr_pid: Option<u16>,
}

/// Reassembly state of one elementary stream.
#[derive(Debug)]
struct Stream {
    pid: u16,
    /// `None` for a placeholder of a stream that is not carried.
    codec: Option<Codec>,
    /// The PES being gathered; split off whole into one `Bytes` when it ends.
    buf: BytesMut,
    /// Whether `buf` holds the start of a PES.
    active: bool,
    /// Offset of the packet where the PES started.
    start: u64,
    /// When that packet arrived.
    arrival: Option<Instant>,
    /// The random_access_indicator of that packet.
    random_access: bool,
    /// The size of the previous PES, reserved up front for the next.
    size_hint: usize,
    /// The last unwrapped DTS, the reference for unwrapping the next.
    last_dts: Option<Ts90>,
    /// The AAC parameters of the last ADTS header.
    aac: Option<AacConfig>,
    /// The configuration attached to this stream's frames (AAC: from `aac`), made once per
    /// change and shared by every frame.
    config: Option<Arc<TrackConfig>>,
    /// Section reassembly, for SCTE-35.
    sections: SectionAssembler,
}

impl Stream {
    fn new(pid: u16, codec: Codec) -> Self {
        Self {
            pid,
            codec: Some(codec),
            ..Self::default()
        }
    }

    fn active_codec(&self) -> bool {
        self.codec.is_some()
    }
}

impl Default for Stream {
    fn default() -> Self {
        Self {
            pid: NULL_PID,
            codec: None,
            buf: BytesMut::new(),
            active: false,
            start: 0,
            arrival: None,
            random_access: false,
            size_hint: 0,
            last_dts: None,
            aac: None,
            config: None,
            sections: SectionAssembler::default(),
        }
    }
}

/// What every frame of one PES shares.
struct Unit {
    index: usize,
    pid: u16,
    start: u64,
    arrival: Instant,
    pts: Ts90,
    dts: Ts90,
}

/// Checks an SCTE-35 section and makes it a frame.
fn scte35_frame(
    section: &[u8],
    pid: u16,
    offset: u64,
    stamp: Ts90,
    arrival: Instant,
) -> Result<DemuxEvent, Error> {
    if section.first() != Some(&0xFC) {
        return Err(Error::Section {
            pid,
            table: "SCTE-35",
            offset,
            reason: "unexpected table_id",
        });
    }
    if psi::crc32(section) != 0 {
        return Err(Error::Crc {
            pid,
            table: "SCTE-35",
            offset,
        });
    }
    Ok(DemuxEvent::Frame(Frame {
        track: TrackId(pid),
        codec: Codec::Scte35,
        pts: stamp,
        dts: stamp,
        keyframe: true,
        session: SessionId(0),
        arrival,
        payload: Bytes::copy_from_slice(section),
        config: None,
    }))
}

/// The number of PIDs.
const PID_COUNT: usize = 8192;
/// `cc` before a PID's first packet.
const CC_UNKNOWN: u8 = 0xFF;
/// Streams per program beyond this are ignored (the PID map stores indices in a byte).
const MAX_STREAMS: usize = 254;
/// A video PES longer than this is dropped: 16 MiB is several times the largest 4K intra
/// picture.
const MAX_VIDEO_PES: usize = 16 << 20;
/// An audio or data PES longer than this is dropped: 1 MiB is seconds of the richest audio, so
/// a stream of many bogus tracks cannot make the demuxer hold much.
const MAX_OTHER_PES: usize = 1 << 20;
/// Never reserve more than this up front for the next PES.
const MAX_HINT: usize = 1 << 20;
/// Samples per AAC frame (AAC-LC; ADTS carries no other frame length).
const AAC_SAMPLES: i64 = 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MuxTrack, Muxer, MuxerConfig};

    /// Some instant to stamp arrivals with; tests never compare it, so reading the clock here
    /// keeps them deterministic.
    #[expect(
        clippy::disallowed_methods,
        reason = "an arbitrary arrival stamp, never compared"
    )]
    fn arrival() -> Instant {
        Instant::now()
    }

    const VIDEO: TrackId = TrackId(0x100);
    const AUDIO: TrackId = TrackId(0x101);

    fn frame(track: TrackId, codec: Codec, dts: i64, keyframe: bool, payload: Vec<u8>) -> Frame {
        Frame {
            track,
            codec,
            pts: Ts90(dts),
            dts: Ts90(dts),
            keyframe,
            session: SessionId(0),
            arrival: arrival(),
            payload: Bytes::from(payload),
            config: None,
        }
    }

    /// An Annex-B picture of `len` bytes: an IDR or a non-IDR slice.
    fn picture(len: usize, idr: bool, seed: u8) -> Vec<u8> {
        let mut p = vec![0, 0, 0, 1, if idr { 0x65 } else { 0x41 }];
        p.extend((0..len.saturating_sub(5)).map(|i| (i as u8 ^ seed) | 0x80));
        p
    }

    fn mux(config: MuxerConfig, frames: &[Frame]) -> Vec<u8> {
        let mut muxer = Muxer::new(config).unwrap();
        let mut ts = Vec::new();
        for f in frames {
            muxer.push(f);
            while let Some(chunk) = muxer.pull() {
                ts.extend_from_slice(&chunk.unwrap());
            }
        }
        ts
    }

    fn av_config() -> MuxerConfig {
        MuxerConfig {
            tracks: vec![
                MuxTrack::new(VIDEO, Codec::H264).with_pid(VIDEO.0),
                MuxTrack::new(AUDIO, Codec::Aac)
                    .with_pid(AUDIO.0)
                    .with_aac(AacConfig::new(2, 3, 2).unwrap()),
            ],
            ..MuxerConfig::default()
        }
    }

    fn video_frames(n: usize, len: usize) -> Vec<Frame> {
        (0..n)
            .map(|i| {
                let dts = 90_000 + 3600 * i as i64;
                frame(
                    VIDEO,
                    Codec::H264,
                    dts,
                    i % 10 == 0,
                    picture(len, i % 10 == 0, i as u8),
                )
            })
            .collect()
    }

    /// Everything the demuxer reports for `ts` pushed in `chunk`-byte pieces, then flushed.
    fn demux(demuxer: &mut Demuxer, ts: &[u8], chunk: usize) -> (Vec<Frame>, Vec<Error>) {
        let (mut frames, mut errors) = (Vec::new(), Vec::new());
        let now = arrival();
        let mut drain = |d: &mut Demuxer| {
            while let Some(event) = d.pull() {
                match event {
                    Ok(DemuxEvent::Frame(f)) => frames.push(f),
                    Ok(DemuxEvent::Tracks { .. }) => {}
                    Err(e) => errors.push(e),
                }
            }
        };
        for piece in ts.chunks(chunk.max(1)) {
            demuxer.push(piece, now);
            drain(demuxer);
        }
        demuxer.flush();
        drain(demuxer);
        (frames, errors)
    }

    fn demux_default(ts: &[u8]) -> (Vec<Frame>, Vec<Error>) {
        demux(&mut Demuxer::new(DemuxerConfig::default()), ts, 1316)
    }

    #[test]
    fn pes_spanning_many_packets_is_one_frame_whatever_the_chunking() {
        let frames = video_frames(3, 10_000);
        let ts = mux(av_config(), &frames);
        for chunk in [1, 7, 188, 1000, ts.len()] {
            let (got, errors) = demux(&mut Demuxer::new(DemuxerConfig::default()), &ts, chunk);
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(got.len(), 3, "chunk {chunk}");
            for (g, f) in got.iter().zip(&frames) {
                assert_eq!(g.payload, f.payload);
                assert_eq!((g.pts, g.dts, g.keyframe), (f.pts, f.dts, f.keyframe));
                assert_eq!(g.session, SessionId(0));
            }
        }
    }

    #[test]
    fn video_pes_of_unbounded_length_ends_at_next_start() {
        let ts = mux(av_config(), &video_frames(2, 500));
        let mut demuxer = Demuxer::new(DemuxerConfig::default());
        demuxer.push(&ts, arrival());
        let frames = std::iter::from_fn(|| demuxer.pull())
            .filter(|e| matches!(e, Ok(DemuxEvent::Frame(_))))
            .count();
        assert_eq!(
            frames, 1,
            "the second picture is open until the next PES or flush"
        );
        demuxer.flush();
        assert!(matches!(demuxer.pull(), Some(Ok(DemuxEvent::Frame(_)))));
    }

    #[test]
    fn pmt_crc_mismatch_is_reported_with_pid_and_offset_and_ignored() {
        let mut ts = mux(av_config(), &video_frames(1, 100));
        // Packet 1 is the PMT; flip a bit in its stream loop.
        ts[188 + 20] ^= 0x01;
        let mut demuxer = Demuxer::new(DemuxerConfig::default());
        let (frames, errors) = demux(&mut demuxer, &ts, 188);
        assert_eq!(
            errors,
            vec![Error::Crc {
                pid: 0x1000,
                table: "PMT",
                offset: 188
            }]
        );
        assert!(frames.is_empty());
        assert!(demuxer.tracks().is_empty());
    }

    #[test]
    fn continuity_errors_are_counted_not_fatal() {
        let ts = mux(av_config(), &video_frames(4, 2000));
        // Drop packet 5 (inside the first picture).
        let mut damaged = ts[..5 * 188].to_vec();
        damaged.extend_from_slice(&ts[6 * 188..]);
        let mut demuxer = Demuxer::new(DemuxerConfig::default());
        let (frames, errors) = demux(&mut demuxer, &damaged, 188);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(demuxer.cc_errors(), 1);
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0].payload.len(), 2000 - 184);

        // A packet sent twice is a legal duplicate: dropped, not counted.
        let mut doubled = ts[..6 * 188].to_vec();
        doubled.extend_from_slice(&ts[5 * 188..]);
        let mut demuxer = Demuxer::new(DemuxerConfig::default());
        let (frames, _) = demux(&mut demuxer, &doubled, 188);
        assert_eq!(demuxer.cc_errors(), 0);
        assert_eq!(frames[0].payload.len(), 2000);
    }

    #[test]
    fn timestamps_unwrap_across_2_pow_33() {
        let start = Ts90::WRAP_33 - 7200;
        let frames: Vec<Frame> = (0..5)
            .map(|i| {
                let mut f = frame(
                    VIDEO,
                    Codec::H264,
                    start + 3600 * i,
                    i == 0,
                    picture(50, i == 0, 0),
                );
                f.pts = Ts90(f.dts.0 + 7200);
                f
            })
            .collect();
        let (got, errors) = demux_default(&mux(av_config(), &frames));
        assert!(errors.is_empty(), "{errors:?}");
        let got: Vec<_> = got.iter().map(|f| (f.pts, f.dts)).collect();
        let want: Vec<_> = frames.iter().map(|f| (f.pts, f.dts)).collect();
        assert_eq!(got, want);
        assert!(got[4].1 > Ts90(Ts90::WRAP_33));
    }

    #[test]
    fn dts_defaults_to_pts() {
        let mut header = Vec::new();
        es::write_pes_header(&mut header, 0xC0, 12_345, None, Some(3));
        let parsed = es::parse_pes_header(&header).unwrap();
        assert_eq!((parsed.pts, parsed.dts), (Some(12_345), None));
        let f = frame(
            TrackId(0x100),
            Codec::Ac3,
            12_345,
            true,
            vec![0x0B, 0x77, 1],
        );
        let config = MuxerConfig {
            tracks: vec![MuxTrack::new(f.track, Codec::Ac3).with_pid(0x100)],
            ..MuxerConfig::default()
        };
        let (got, _) = demux_default(&mux(config, &[f]));
        assert_eq!((got[0].pts, got[0].dts), (Ts90(12_345), Ts90(12_345)));
    }

    #[test]
    fn selects_program_from_a_multi_program_stream() {
        let one = MuxerConfig {
            program: 1,
            pmt_pid: 0x1000,
            tracks: vec![MuxTrack::new(TrackId(0x100), Codec::H264).with_pid(0x100)],
        };
        let two = MuxerConfig {
            program: 2,
            pmt_pid: 0x1001,
            tracks: vec![MuxTrack::new(TrackId(0x200), Codec::H264).with_pid(0x200)],
        };
        let f1 = frame(TrackId(0x100), Codec::H264, 0, true, picture(300, true, 1));
        let f2 = frame(TrackId(0x200), Codec::H264, 0, true, picture(300, true, 2));
        let a = mux(one, std::slice::from_ref(&f1));
        let b = mux(two, std::slice::from_ref(&f2));
        // One PAT listing both programs, then both programs' packets without their own PATs.
        let mut body = Vec::new();
        body.extend_from_slice(&[0, 0, 0xE0, 0x10]); // NIT entry: skipped
        body.extend_from_slice(&[0, 1, 0xF0, 0x00, 0, 2, 0xF0, 0x01]);
        let mut section = Vec::new();
        psi::write_section(&mut section, 0, 1, 0, &body);
        let mut ts = vec![0x47, 0x40, 0x00, 0x10, 0x00];
        ts.extend_from_slice(&section);
        ts.resize(188, 0xFF);
        for packet in a.chunks(188).chain(b.chunks(188)) {
            if packet[1] & 0x1F != 0 || packet[2] != 0 {
                ts.extend_from_slice(packet);
            }
        }
        for (program, want) in [(0, &f1), (1, &f1), (2, &f2)] {
            let mut demuxer = Demuxer::new(DemuxerConfig { program });
            let (got, errors) = demux(&mut demuxer, &ts, 188);
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(got.len(), 1, "program {program}");
            assert_eq!(got[0].track, want.track);
            assert_eq!(got[0].payload, want.payload);
            assert_eq!(
                demuxer.program(),
                Some(if program == 0 { 1 } else { program })
            );
        }
        let (got, errors) = demux(&mut Demuxer::new(DemuxerConfig { program: 9 }), &ts, 188);
        assert!(got.is_empty());
        assert_eq!(
            errors,
            vec![Error::ProgramNotFound {
                program: 9,
                offset: 0
            }]
        );
    }

    #[test]
    fn resynchronises_after_garbage() {
        let frames = video_frames(3, 1000);
        let ts = mux(av_config(), &frames);
        let mut damaged = vec![0x00, 0x47, 0x12, 0x34, 0x47];
        damaged.extend_from_slice(&ts[..2 * 188]);
        damaged.extend_from_slice(&[0xAA; 50]);
        damaged.extend_from_slice(&ts[2 * 188..]);
        let (got, errors) = demux(&mut Demuxer::new(DemuxerConfig::default()), &damaged, 100);
        assert_eq!(
            errors,
            vec![
                Error::Sync {
                    offset: 0,
                    skipped: 5
                },
                Error::Sync {
                    offset: 5 + 2 * 188,
                    skipped: 50
                },
            ]
        );
        assert_eq!(got.len(), 3);
        assert!(got.iter().zip(&frames).all(|(g, f)| g.payload == f.payload));
    }

    #[test]
    fn splits_adts_and_reports_aac_config_first() {
        let config = AacConfig::new(2, 3, 2).unwrap(); // 48 kHz
        let mut pes_payload = Vec::new();
        let aus: Vec<Vec<u8>> = (0..3).map(|i| vec![i as u8 + 1; 10 + i]).collect();
        for au in &aus {
            pes_payload.extend_from_slice(&config.adts_header(au.len()).unwrap());
            pes_payload.extend_from_slice(au);
        }
        let mut ts = mux(
            MuxerConfig {
                tracks: vec![MuxTrack::new(AUDIO, Codec::Ac3).with_pid(AUDIO.0)],
                ..MuxerConfig::default()
            },
            &[frame(AUDIO, Codec::Ac3, 90_000, true, pes_payload)],
        );
        // Turn the AC-3 stream into an AAC one: stream_type 0x81 -> 0x0F, fix the CRC.
        let pmt = &mut ts[188..2 * 188];
        let section_len = usize::from(pmt[6] & 0x0F) << 8 | usize::from(pmt[7]);
        let section = &mut pmt[5..8 + section_len];
        assert_eq!(section[12], 0x81, "the first stream_type");
        section[12] = 0x0F;
        let crc_at = section.len() - 4;
        let crc = psi::crc32(&section[..crc_at]);
        section[crc_at..].copy_from_slice(&crc.to_be_bytes());

        let mut demuxer = Demuxer::new(DemuxerConfig::default());
        demuxer.push(&ts, arrival());
        let events: Vec<_> = std::iter::from_fn(|| demuxer.pull())
            .map(Result::unwrap)
            .collect();
        let DemuxEvent::Tracks { tracks, .. } = &events[1] else {
            panic!("expected the AAC config before the frames: {events:?}");
        };
        assert_eq!(tracks[0].aac, Some(config));
        let frames: Vec<_> = events[2..]
            .iter()
            .map(|e| match e {
                DemuxEvent::Frame(f) => (f.pts, f.payload.to_vec()),
                DemuxEvent::Tracks { .. } => panic!("unexpected {e:?}"),
            })
            .collect();
        assert_eq!(
            frames,
            vec![
                (Ts90(90_000), aus[0].clone()),
                (Ts90(90_000 + 1920), aus[1].clone()),
                (Ts90(90_000 + 3840), aus[2].clone()),
            ]
        );
    }

    #[test]
    fn mpeg_audio_layer3_is_reported_as_mp3() {
        let f = frame(
            AUDIO,
            Codec::Mp3,
            0,
            true,
            vec![0xFF, 0xFB, 0x90, 0x00, 1, 2, 3],
        );
        let config = MuxerConfig {
            tracks: vec![MuxTrack::new(AUDIO, Codec::Mp3).with_pid(AUDIO.0)],
            ..MuxerConfig::default()
        };
        let ts = mux(config, std::slice::from_ref(&f));
        let mut demuxer = Demuxer::new(DemuxerConfig::default());
        let (got, _) = demux(&mut demuxer, &ts, 188);
        assert_eq!(got[0].codec, Codec::Mp3);
        assert_eq!(demuxer.tracks()[0].carriage, Carriage::Carried(Codec::Mp3));
    }

    #[test]
    fn scte35_sections_round_trip_and_bad_crc_is_reported() {
        let mut section = vec![
            0xFC, 0x30, 0x11, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xF0, 0, 0, 0, 0, 0,
        ];
        let crc = psi::crc32(&section);
        section.extend_from_slice(&crc.to_be_bytes());
        section[2] = (section.len() - 3) as u8;
        let crc = psi::crc32(&section[..section.len() - 4]);
        let n = section.len();
        section[n - 4..].copy_from_slice(&crc.to_be_bytes());
        let cue = TrackId(0x102);
        let mut config = av_config();
        config
            .tracks
            .push(MuxTrack::new(cue, Codec::Scte35).with_pid(cue.0));
        let mut frames = video_frames(1, 100);
        frames.push(frame(cue, Codec::Scte35, 0, true, section.clone()));
        let ts = mux(config.clone(), &frames);
        let (got, errors) = demux_default(&ts);
        assert!(errors.is_empty(), "{errors:?}");
        let cue_frame = got.iter().find(|f| f.codec == Codec::Scte35).unwrap();
        assert_eq!(cue_frame.payload, section);
        assert_eq!(cue_frame.pts, Ts90(90_000), "stamped with the newest DTS");

        let mut bad = section.clone();
        bad[5] ^= 1;
        frames[1].payload = Bytes::from(bad);
        let ts = mux(config, &frames);
        let (got, errors) = demux_default(&ts);
        assert!(got.iter().all(|f| f.codec != Codec::Scte35));
        assert!(matches!(
            errors[..],
            [Error::Crc {
                pid: 0x102,
                table: "SCTE-35",
                ..
            }]
        ));
    }

    #[test]
    fn opus_packets_are_split_and_stamped() {
        // Hand-built: PAT, PMT with an 'Opus' registration, one PES with two 20 ms packets.
        let mut ts = Vec::new();
        let mut section = Vec::new();
        psi::write_section(&mut section, 0, 1, 0, &[0, 1, 0xF0, 0x00]);
        ts.extend_from_slice(&[0x47, 0x40, 0x00, 0x10, 0x00]);
        ts.extend_from_slice(&section);
        ts.resize(188, 0xFF);
        section.clear();
        let body = [
            0xE1, 0x00, 0xF0, 0x00, 0x06, 0xE1, 0x00, 0xF0, 0x06, 0x05, 0x04, b'O', b'p', b'u',
            b's',
        ];
        psi::write_section(&mut section, 2, 1, 0, &body);
        ts.extend_from_slice(&[0x47, 0x50, 0x00, 0x10, 0x00]);
        ts.extend_from_slice(&section);
        ts.resize(2 * 188, 0xFF);
        let mut pes = Vec::new();
        let payload = [0x7F, 0xE0, 3, 0xF8, 1, 2, 0x7F, 0xE0, 2, 0xF8, 3];
        es::write_pes_header(&mut pes, 0xBD, 9000, None, Some(payload.len()));
        pes.extend_from_slice(&payload);
        let stuffing = 184 - pes.len();
        ts.extend_from_slice(&[0x47, 0x41, 0x00, 0x30, (stuffing - 1) as u8, 0x00]);
        ts.extend(std::iter::repeat_n(0xFF, stuffing - 2));
        ts.extend_from_slice(&pes);
        let (got, errors) = demux_default(&ts);
        assert!(errors.is_empty(), "{errors:?}");
        let got: Vec<_> = got
            .iter()
            .map(|f| (f.codec, f.pts, f.payload.to_vec()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Codec::Opus, Ts90(9000), vec![0xF8, 1, 2]),
                (Codec::Opus, Ts90(9000 + 1800), vec![0xF8, 3]),
            ]
        );
    }

    #[test]
    fn records_last_pcr() {
        let ts = mux(av_config(), &video_frames(2, 100));
        let mut demuxer = Demuxer::new(DemuxerConfig::default());
        demux(&mut demuxer, &ts, 188);
        let pcr = demuxer.last_pcr().unwrap();
        assert_eq!((pcr.pid, pcr.base), (VIDEO.0, 90_000 + 3600 - 9000));
        assert_eq!(pcr.ticks_27mhz(), pcr.base * 300);
    }

    #[test]
    fn oversized_audio_pes_is_dropped_with_an_error() {
        let config = MuxerConfig {
            tracks: vec![MuxTrack::new(AUDIO, Codec::Ac3).with_pid(AUDIO.0)],
            ..MuxerConfig::default()
        };
        let big = frame(AUDIO, Codec::Ac3, 0, true, vec![0x0B; MAX_OTHER_PES + 1]);
        let small = frame(AUDIO, Codec::Ac3, 3000, true, vec![0x0B, 0x77]);
        let (got, errors) = demux_default(&mux(config, &[big, small]));
        assert!(matches!(
            errors[..],
            [Error::PesTooLarge {
                pid: 0x101,
                limit: MAX_OTHER_PES,
                ..
            }]
        ));
        assert_eq!(got.len(), 1, "the next PES is delivered");
    }
}
