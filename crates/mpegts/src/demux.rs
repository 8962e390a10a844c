//! The demuxer: TS bytes in, track tables and frames out.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tributary_media::{Codec, Frame, MediaKind, SessionId, TrackConfig, TrackId, Ts90};

use crate::es::{self, PesHeader};
use crate::psi::{self, Pmt, SectionAssembler};
use crate::track::{AacConfig, Carriage, NotCarried, TrackInfo};
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

    /// Bytes of unfinished PES held now, over all streams (at most 32 MiB).
    pub fn held(&self) -> usize {
        self.streams.iter().map(|s| s.buf.len()).sum()
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
            let (mut track, stream) = match kept {
                Some(kept) => kept,
                None => {
                    let stream = match info.carriage {
                        Carriage::Carried(codec) => Stream::new(pid, codec),
                        Carriage::NotCarried(_) => Stream::default(),
                    };
                    (info.clone(), stream)
                }
            };
            let carrying = self.streams.iter().filter(|s| s.active_codec()).count();
            let room = self.streams.len() < MAX_STREAMS && carrying < MAX_CARRIED;
            if !room && matches!(track.carriage, Carriage::Carried(_)) {
                track.carriage = Carriage::NotCarried(NotCarried::TooManyTracks);
            }
            let carried = matches!(track.carriage, Carriage::Carried(_));
            self.tracks.push(track);
            if carried {
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
            // Dropped with its capacity: a stream that once gathered a huge PES must not keep
            // the allocation.
            stream.active = false;
            stream.buf = BytesMut::new();
            self.events.push_back(Err(Error::PesTooLarge {
                pid: stream.pid,
                offset: stream.start,
                limit,
            }));
            return;
        }
        // One budget over every stream: many PIDs each just under their own limit must not add
        // up (30 bogus video PIDs x 15 MiB). The PES that would cross it is the one dropped.
        let held: usize = self.streams.iter().map(|s| s.buf.len()).sum();
        if held + payload.len() > MAX_HELD {
            let stream = &mut self.streams[index];
            stream.active = false;
            stream.buf = BytesMut::new();
            self.events.push_back(Err(Error::PesBudget {
                pid: stream.pid,
                offset: stream.start,
                budget: MAX_HELD,
            }));
            return;
        }
        let stream = &mut self.streams[index];
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
/// Carried streams per program beyond this are ignored (listed, not carried): a video, a
/// dozen audio languages and as many data tracks fit, and a PMT of hundreds of bogus tracks
/// costs nothing.
const MAX_CARRIED: usize = 32;
/// Bytes of unfinished PES held over all streams: a whole largest video PES plus every other
/// stream's.
const MAX_HELD: usize = 32 << 20;
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
mod tests;
