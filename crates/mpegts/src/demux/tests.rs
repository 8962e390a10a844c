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
        0xE1, 0x00, 0xF0, 0x00, 0x06, 0xE1, 0x00, 0xF0, 0x06, 0x05, 0x04, b'O', b'p', b'u', b's',
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

/// Regression (issue 13, item 7): PIDs each under their own limit once added up without bound
/// (30 x 15 MiB of unterminated video PES took RSS from 126 to 721 MB). One budget holds over
/// all of them, and the carried tracks are capped.
#[test]
fn unfinished_pes_on_many_pids_stay_within_one_budget() {
    // 33: as many as one PMT packet of the muxer lists, one past the cap.
    let pids: Vec<TrackId> = (0..33).map(|i| TrackId(0x200 + i)).collect();
    let config = MuxerConfig {
        tracks: pids
            .iter()
            .map(|&pid| MuxTrack::new(pid, Codec::H264).with_pid(pid.0))
            .collect(),
        ..MuxerConfig::default()
    };
    // One 3 MiB picture per PID: video PES are unbounded (length 0), so each stays unfinished
    // until its PID starts another.
    let frames: Vec<Frame> = pids
        .iter()
        .map(|&pid| frame(pid, Codec::H264, 90_000, true, picture(3 << 20, true, 1)))
        .collect();
    let ts = mux(config, &frames);
    let mut demuxer = Demuxer::new(DemuxerConfig::default());
    let now = arrival();
    let mut most = 0;
    let mut budget_errors = 0;
    for chunk in ts.chunks(188 * 64) {
        demuxer.push(chunk, now);
        while let Some(event) = demuxer.pull() {
            if let Err(Error::PesBudget { budget, .. }) = event {
                assert_eq!(budget, MAX_HELD);
                budget_errors += 1;
            }
        }
        most = most.max(demuxer.held());
    }
    assert!(most <= MAX_HELD, "held {most} bytes");
    assert!(
        most > MAX_HELD - (4 << 20),
        "the budget is used, not undercut: {most}"
    );
    let carried = demuxer
        .tracks()
        .iter()
        .filter(|t| matches!(t.carriage, Carriage::Carried(_)))
        .count();
    assert_eq!(demuxer.tracks().len(), 33);
    assert_eq!(carried, MAX_CARRIED, "the rest are listed, not carried");
    // 32 carried PIDs x 3 MiB = 96 MiB asked for: the PES past the budget were dropped.
    assert!(budget_errors >= 20, "{budget_errors}");
}

#[test]
fn an_oversized_pes_gives_back_its_memory() {
    let config = MuxerConfig {
        tracks: vec![MuxTrack::new(AUDIO, Codec::Ac3).with_pid(AUDIO.0)],
        ..MuxerConfig::default()
    };
    let big = frame(AUDIO, Codec::Ac3, 0, true, vec![0x0B; MAX_OTHER_PES + 1]);
    let ts = mux(config, &[big]);
    let mut demuxer = Demuxer::new(DemuxerConfig::default());
    demuxer.push(&ts, arrival());
    while demuxer.pull().is_some() {}
    assert_eq!(demuxer.held(), 0);
    assert!(
        demuxer.streams.iter().all(|s| s.buf.capacity() < 64 << 10),
        "the dropped PES's capacity is released"
    );
}
