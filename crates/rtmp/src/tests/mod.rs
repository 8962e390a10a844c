//! Client/server pairs driven in memory, the FLV round trip, and malformed-input suites.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use tributary_media::{Codec, Frame, SessionId, TrackConfig, Ts90};

use crate::chunk::{ChunkWriter, Header, Limits};
use crate::handshake::ClientHandshake;
use crate::*;

const H264: &[u8] = include_bytes!("../../../media/testdata/ffmpeg_x264_high_1280x720_30fps.h264");
const H265: &[u8] = include_bytes!("../../../media/testdata/ffmpeg_x265_main_1280x720_30fps.h265");

/// A fixed base instant: tests advance time from it by adding durations.
pub(crate) fn origin() -> Instant {
    #[allow(
        clippy::disallowed_methods,
        reason = "a test needs one base instant; all others are derived from it"
    )]
    Instant::now()
}

/// The first parameter sets of a test vector, by NAL type.
fn params(data: &[u8], codec: Codec) -> Vec<Vec<u8>> {
    use tributary_media::codec::{h264, h265, nal::annex_b_nals};
    let mut found: Vec<Vec<u8>> = Vec::new();
    for nal in annex_b_nals(data) {
        let is_param = match codec {
            Codec::H264 => h264::NalType::of(nal).is_some_and(|t| t.is_parameter_set()),
            _ => h265::NalType::of(nal).is_some_and(|t| t.is_parameter_set()),
        };
        if is_param && found.len() < if codec == Codec::H264 { 2 } else { 3 } {
            found.push(nal.to_vec());
        }
    }
    found
}

fn annex_b(nals: &[&[u8]]) -> Bytes {
    let mut out = Vec::new();
    for nal in nals {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
    Bytes::from(out)
}

fn frame(
    codec: Codec,
    dts_ms: i64,
    cts_ms: i64,
    keyframe: bool,
    payload: Bytes,
    now: Instant,
) -> Frame {
    Frame {
        track: if codec.kind() == tributary_media::MediaKind::Video {
            VIDEO_TRACK
        } else {
            AUDIO_TRACK
        },
        codec,
        pts: Ts90::from_millis(dts_ms + cts_ms),
        dts: Ts90::from_millis(dts_ms),
        keyframe,
        session: SessionId(0),
        arrival: now,
        payload,
        config: None,
    }
}

/// 25 fps H.264 with B-frames (I P B B ...: composition offsets 40, 120, 0, 40 ms), plus AAC
/// every 21 ms. A large keyframe spans many chunks. DTS starts at `start_ms`.
fn h264_with_aac(now: Instant, start_ms: i64) -> Vec<Frame> {
    let sets = params(H264, Codec::H264);
    let asc = Arc::new(TrackConfig::aac(Bytes::from_static(&[0x11, 0x90])).unwrap());
    let mut frames = Vec::new();
    let cts = [40, 120, 0, 40];
    for i in 0..12i64 {
        let key = i % 8 == 0;
        let slice: Vec<u8> = if key {
            let mut s = vec![0x65, 0x88];
            s.extend((0..100_000u32).map(|b| (b % 251) as u8 | 1));
            s
        } else {
            vec![0x41, 0x9a, i as u8, 0x42]
        };
        let payload = if key {
            annex_b(&[&sets[0], &sets[1], &slice])
        } else {
            annex_b(&[&slice])
        };
        frames.push(frame(
            Codec::H264,
            start_ms + i * 40,
            cts[i as usize % 4],
            key,
            payload,
            now,
        ));
        let mut audio = frame(
            Codec::Aac,
            start_ms + i * 40 + 5,
            0,
            true,
            Bytes::from(vec![0x21, 0x10, i as u8, 3]),
            now,
        );
        audio.config = Some(asc.clone());
        frames.push(audio);
    }
    frames
}

fn h265_frames(now: Instant) -> Vec<Frame> {
    let sets = params(H265, Codec::H265);
    (0..6i64)
        .map(|i| {
            let key = i % 3 == 0;
            let payload = if key {
                annex_b(&[
                    &sets[0],
                    &sets[1],
                    &sets[2],
                    &[0x26, 0x01, 0xaf, 0x08, i as u8 | 0x10],
                ])
            } else {
                annex_b(&[&[0x02, 0x01, 0xd0, i as u8]])
            };
            frame(
                Codec::H265,
                i * 40,
                if i % 2 == 1 { 80 } else { 0 },
                key,
                payload,
                now,
            )
        })
        .collect()
}

/// The fields a round trip must keep.
pub(crate) fn key(f: &Frame) -> (u16, Codec, Ts90, Ts90, bool, Bytes) {
    (
        f.track.0,
        f.codec,
        f.pts,
        f.dts,
        f.keyframe,
        f.payload.clone(),
    )
}

/// Drives a client and a server against each other until neither has output.
pub(crate) struct Pair {
    pub(crate) now: Instant,
    pub(crate) client: ClientSession,
    server: ServerSession,
    client_events: Vec<ClientEvent>,
    server_events: Vec<ServerEvent>,
    client_error: Option<Error>,
    server_closed: bool,
    /// How to answer requests: `None` accepts.
    refuse: Option<RejectReason>,
}

impl Pair {
    pub(crate) fn new(intent: ClientIntent) -> Self {
        let now = origin();
        let config =
            ClientConfig::from_url("rtmp://127.0.0.1:1935/live/cam1?key=k", intent).unwrap();
        Self {
            now,
            client: ClientSession::new(config, [1; 32], now),
            server: ServerSession::new(ServerConfig::default(), [2; 32], now),
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_error: None,
            server_closed: false,
            refuse: None,
        }
    }

    pub(crate) fn drive(&mut self) {
        loop {
            let mut progress = false;
            while let Some(out) = self.client.poll_output() {
                progress = true;
                match out {
                    Output::Transmit(bytes) => {
                        if !self.server_closed {
                            self.server.handle_input(self.now, &bytes).unwrap();
                        }
                    }
                    Output::Event(e) => self.client_events.push(e),
                }
            }
            while let Some(out) = self.server.poll_output() {
                progress = true;
                match out {
                    Output::Transmit(bytes) => {
                        if self.client_error.is_none()
                            && let Err(e) = self.client.handle_input(self.now, &bytes)
                        {
                            self.client_error = Some(e);
                        }
                    }
                    Output::Event(ServerEvent::PublishRequested { request_id, .. })
                    | Output::Event(ServerEvent::PlayRequested { request_id, .. }) => {
                        match self.refuse {
                            None => self.server.accept(request_id).unwrap(),
                            Some(reason) => self.server.reject(request_id, reason).unwrap(),
                        }
                    }
                    Output::Event(ServerEvent::Close) => self.server_closed = true,
                    Output::Event(e) => self.server_events.push(e),
                }
            }
            if !progress {
                return;
            }
        }
    }

    pub(crate) fn server_frames(&self) -> Vec<&Frame> {
        self.server_events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Media(f) => Some(f),
                _ => None,
            })
            .collect()
    }

    fn client_frames(&self) -> Vec<&Frame> {
        self.client_events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Media(f) => Some(f),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn publish_h264_with_b_frames_and_aac() {
    let mut pair = Pair::new(ClientIntent::Publish);
    pair.drive();
    assert!(matches!(
        pair.client_events[..],
        [ClientEvent::Connected { .. }, ClientEvent::PublishStarted]
    ));
    assert!(matches!(
        &pair.server_events[0],
        ServerEvent::Connected { app, tc_url: Some(url), handshake: handshake::HandshakeKind::Complex(_) }
            if app == "live" && url == "rtmp://127.0.0.1:1935/live"
    ));
    // DTS starts at 10 s: the muxer rebases to 0.
    let input = h264_with_aac(pair.now, 10_000);
    for f in &input {
        assert_eq!(pair.client.send_media(f).unwrap(), Pushed::Queued);
    }
    pair.drive();
    let got = pair.server_frames();
    assert_eq!(got.len(), input.len());
    for (g, f) in got.iter().zip(&input) {
        let mut expected = f.clone();
        expected.pts = f.pts - Ts90::from_millis(10_000);
        expected.dts = f.dts - Ts90::from_millis(10_000);
        assert_eq!(key(g), key(&expected));
    }
    let audio = got.iter().find(|f| f.codec == Codec::Aac).unwrap();
    assert_eq!(
        &audio.config.as_ref().unwrap().decoder_config[..],
        &[0x11, 0x90]
    );
    let video = got.iter().find(|f| f.codec == Codec::H264).unwrap();
    assert_eq!(video.config.as_ref().unwrap().info.width, Some(1280));
    // B-frames: PTS runs ahead of and behind DTS.
    assert!(got.iter().any(|f| f.pts - f.dts == Ts90::from_millis(120)));
}

#[test]
fn publish_h265_over_enhanced_rtmp() {
    let mut pair = Pair::new(ClientIntent::Publish);
    pair.drive();
    let input = h265_frames(pair.now);
    for f in &input {
        assert_eq!(pair.client.send_media(f).unwrap(), Pushed::Queued);
    }
    pair.drive();
    let got: Vec<_> = pair.server_frames().into_iter().map(key).collect();
    let expected: Vec<_> = input.iter().map(key).collect();
    assert_eq!(got, expected);
    let config = pair.server_frames()[0].config.clone().unwrap();
    assert_eq!(
        (config.info.codec, config.info.width),
        (Codec::H265, Some(1280))
    );
}

#[test]
fn play_h264_h265_aac_from_the_server() {
    for input in [h264_with_aac(origin(), 0), h265_frames(origin())] {
        let mut pair = Pair::new(ClientIntent::Play);
        pair.drive();
        assert!(
            pair.server_events
                .iter()
                .any(|e| matches!(e, ServerEvent::Connected { .. }))
        );
        assert!(matches!(
            pair.client_events.last(),
            Some(ClientEvent::PlayStarted)
        ));
        // A non-keyframe before the first keyframe cannot be sent.
        let mut early = input[2].clone();
        early.keyframe = false;
        if early.codec != Codec::Aac {
            assert_eq!(
                pair.server.send_media(&early).unwrap(),
                Pushed::Skipped(SkipReason::WaitingForKeyframe)
            );
        }
        for f in &input {
            let _ = pair.server.send_media(f).unwrap();
        }
        pair.server
            .send_metadata(amf0::Amf0::EcmaArray(vec![(
                "width".into(),
                amf0::Amf0::Number(1280.0),
            )]))
            .unwrap();
        pair.server.finish_play().unwrap();
        pair.drive();
        assert!(pair.client_error.is_none(), "{:?}", pair.client_error);
        let got: Vec<_> = pair.client_frames().into_iter().map(key).collect();
        let expected: Vec<_> = input.iter().map(key).collect();
        assert_eq!(got.len(), expected.len());
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert!(
                g == e,
                "frame {i}: {:?} vs {:?}",
                (g.0, g.1, g.2, g.3, g.4, g.5.len()),
                (e.0, e.1, e.2, e.3, e.4, e.5.len())
            );
        }
        assert!(
            pair.client_events
                .iter()
                .any(|e| matches!(e, ClientEvent::Metadata(_)))
        );
        assert!(
            matches!(pair.client_events.last(), Some(ClientEvent::StreamEnded { code }) if code == "NetStream.Play.UnpublishNotify")
        );
    }
}

#[test]
fn refused_play_gets_stream_not_found_then_close() {
    let mut pair = Pair::new(ClientIntent::Play);
    pair.refuse = Some(RejectReason::NotFound);
    pair.drive();
    assert!(pair.server_closed);
    assert!(matches!(
        &pair.client_error,
        Some(Error::Refused { command: "play", code, .. }) if code == "NetStream.Play.StreamNotFound"
    ));
    assert!(matches!(
        pair.server.handle_input(pair.now, &[0]),
        Err(Error::Closed)
    ));
}

#[test]
fn refused_publish() {
    for (reason, expected) in [
        (RejectReason::Denied, "NetStream.Publish.Denied"),
        (RejectReason::Busy, "NetStream.Publish.BadName"),
    ] {
        let mut pair = Pair::new(ClientIntent::Publish);
        pair.refuse = Some(reason);
        pair.drive();
        assert!(pair.server_closed);
        assert!(matches!(
            &pair.client_error,
            Some(Error::Refused { command: "publish", code, .. }) if code == expected
        ));
        assert!(pair.client.send_media(&h265_frames(pair.now)[0]).is_err());
    }
}

#[test]
fn requests_carry_the_stream_key_and_answer_once() {
    let now = origin();
    let mut server = ServerSession::new(ServerConfig::default(), [0; 32], now);
    let config =
        ClientConfig::from_url("rtmp://h/live/cam1?key=secret", ClientIntent::Publish).unwrap();
    let mut client = ClientSession::new(config, [0; 32], now);
    let mut request = None;
    for _ in 0..10 {
        while let Some(Output::Transmit(b)) = client.poll_output() {
            server.handle_input(now, &b).unwrap();
        }
        while let Some(out) = server.poll_output() {
            match out {
                Output::Transmit(b) => client.handle_input(now, &b).unwrap(),
                Output::Event(ServerEvent::PublishRequested {
                    request_id,
                    app,
                    stream_key,
                }) => {
                    assert_eq!(
                        (app.as_str(), stream_key.as_str()),
                        ("live", "cam1?key=secret")
                    );
                    request = Some(request_id);
                }
                Output::Event(_) => {}
            }
        }
    }
    let id = request.unwrap();
    assert_eq!(
        server.poll_timeout(),
        None,
        "the intent deadline ends at the request"
    );
    assert!(matches!(
        server.accept(RequestId(id.0 + 1)),
        Err(Error::UnknownRequest(_))
    ));
    server.accept(id).unwrap();
    assert_eq!(server.accept(id), Err(Error::UnknownRequest(id)));
}

#[test]
fn intent_deadline() {
    let now = origin();
    let mut server = ServerSession::new(ServerConfig::default(), [0; 32], now);
    let deadline = server.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(10));
    server.handle_timeout(now + Duration::from_secs(9)).unwrap();
    assert!(matches!(
        server.handle_timeout(deadline),
        Err(Error::Timeout {
            waiting_for: "publish or play",
            ..
        })
    ));
    let config = ClientConfig::from_url("rtmp://h/live/x", ClientIntent::Play).unwrap();
    let mut client = ClientSession::new(config, [0; 32], now);
    assert!(
        client
            .handle_timeout(now + Duration::from_secs(10))
            .is_err()
    );
}

/// A server session after a valid simple handshake, and the offset where chunks start.
fn handshaken(limits: Limits) -> ServerSession {
    let now = origin();
    let config = ServerConfig {
        limits,
        untrusted_limits: limits,
        ..ServerConfig::default()
    };
    let mut server = ServerSession::new(config, [0; 32], now);
    let mut c0c1 = BytesMut::new();
    ClientHandshake::new([3; 32], &mut c0c1);
    server.handle_input(now, &c0c1).unwrap();
    server.handle_input(now, &[0; handshake::PACKET]).unwrap();
    while server.poll_output().is_some() {}
    server
}

fn message(csid: u32, type_id: u8, body: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    let header = Header {
        csid,
        timestamp: RtmpTime(0),
        type_id,
        stream_id: 0,
    };
    ChunkWriter { chunk_size: 128 }
        .write(&mut out, header, &[body])
        .unwrap();
    out
}

/// Regression (issue 13, item 2): the 16 MiB limits applied from connect, so 30 connections
/// that never published took the server from 29 to 509 MB. Until a publish is accepted (and
/// for players) a peer gets the untrusted limits; an accepted publisher the full ones.
#[test]
fn a_peer_is_held_to_small_limits_until_its_publish_is_accepted() {
    let now = origin();
    let mut server = ServerSession::new(ServerConfig::default(), [0; 32], now);
    let mut c0c1 = BytesMut::new();
    ClientHandshake::new([3; 32], &mut c0c1);
    server.handle_input(now, &c0c1).unwrap();
    server.handle_input(now, &[0; handshake::PACKET]).unwrap();
    while server.poll_output().is_some() {}
    // A 100 KB command before any publish: refused when its header announces it.
    let untrusted = Limits::untrusted();
    let err = server
        .handle_input(now, &message(3, 20, &vec![0; 100_000])[..12])
        .unwrap_err();
    assert!(
        matches!(err, Error::MessageLength { value: 100_000, max, .. }
            if max == untrusted.max_message_len),
        "{err}"
    );

    // An accepted publisher sends a keyframe of 1 MiB.
    let mut pair = Pair::new(ClientIntent::Publish);
    pair.drive();
    let sets = params(H264, Codec::H264);
    let mut picture = vec![0, 0, 0, 1, 0x65];
    picture.resize(1 << 20, 0x80);
    let mut nals: Vec<&[u8]> = sets.iter().map(Vec::as_slice).collect();
    nals.push(&picture[4..]);
    let big = frame(Codec::H264, 0, 0, true, annex_b(&nals), pair.now);
    assert_eq!(pair.client.send_media(&big).unwrap(), Pushed::Queued);
    pair.drive();
    assert!(!pair.server_closed);
    let got = pair.server_frames();
    assert_eq!(got.len(), 1);
    assert!(got[0].payload.len() > 1 << 20);
}

#[test]
fn chunk_size_change_and_absurd_values() {
    let now = origin();
    let base = 1 + 2 * handshake::PACKET as u64;
    // A valid change: the next message uses 4096-byte chunks.
    let mut server = handshaken(Limits::default());
    server
        .handle_input(now, &message(2, 1, &4096u32.to_be_bytes()))
        .unwrap();
    let mut connect = BytesMut::new();
    let values = [
        amf0::Amf0::String("connect".into()),
        amf0::Amf0::Number(1.0),
        amf0::Amf0::Object(vec![(
            "app".into(),
            amf0::Amf0::String(format!("live{}", "x".repeat(300))),
        )]),
    ];
    let mut body = Vec::new();
    for v in &values {
        v.write(&mut body);
    }
    let header = Header {
        csid: 3,
        timestamp: RtmpTime(0),
        type_id: 20,
        stream_id: 0,
    };
    ChunkWriter { chunk_size: 4096 }
        .write(&mut connect, header, &[&body])
        .unwrap();
    server.handle_input(now, &connect).unwrap();
    let mut connected = false;
    while let Some(out) = server.poll_output() {
        connected |= matches!(out, Output::Event(ServerEvent::Connected { .. }));
    }
    assert!(connected);

    let mut server = handshaken(Limits::default());
    assert_eq!(
        server.handle_input(now, &message(2, 1, &0x7fff_ffffu32.to_be_bytes())),
        Err(Error::ChunkSize {
            offset: base,
            value: 0x7fff_ffff,
            max: chunk::MAX_SIZE
        })
    );
    let mut server = handshaken(Limits {
        max_message_len: 1 << 20,
        ..Limits::default()
    });
    let huge = [0x03, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0];
    assert!(matches!(
        server.handle_input(now, &huge),
        Err(Error::MessageLength { value: 0xff_ffff, offset, .. }) if offset == base
    ));
    let mut server = handshaken(Limits::default());
    assert!(matches!(
        server.handle_input(now, &message(2, 1, &[0, 1])),
        Err(Error::ControlMessage {
            kind: "Set Chunk Size",
            ..
        })
    ));
}

#[test]
fn garbage_after_the_handshake_is_an_error() {
    let now = origin();
    let mut server = handshaken(Limits::default());
    // Format 3 on a chunk stream never seen.
    assert!(matches!(
        server.handle_input(now, &[0xc7, 1, 2, 3]),
        Err(Error::NoPreviousHeader { csid: 7, .. })
    ));
    let mut server = handshaken(Limits::default());
    // A command whose body is not AMF0.
    assert!(matches!(
        server.handle_input(now, &message(3, 20, &[0x11, 0x22])),
        Err(Error::Amf0 { .. })
    ));
    let mut server = handshaken(Limits::default());
    // Truncated: a header and half a body is simply waited on.
    let full = message(3, 20, &[2, 0, 7, b'c', b'o', b'n', b'n', b'e', b'c', b't']);
    server.handle_input(now, &full[..15]).unwrap();
    assert!(server.poll_output().is_none());
    let mut server = ServerSession::new(ServerConfig::default(), [0; 32], now);
    assert!(matches!(
        server.handle_input(now, b"\x16\x03\x01"),
        Err(Error::HandshakeVersion { value: 0x16, .. })
    ));
}

#[test]
fn malformed_media_is_dropped_then_gives_up() {
    let mut pair = Pair::new(ClientIntent::Publish);
    pair.drive();
    // Video tags whose AVCC lengths overrun: dropped and reported, fatal after 8 in a row.
    let mut server_error = None;
    for i in 0..8u32 {
        let body = [0x27, 1, 0, 0, 0, 0, 0, 0, 99, 0x41];
        let mut out = BytesMut::new();
        let header = Header {
            csid: 6,
            timestamp: RtmpTime(i),
            type_id: 9,
            stream_id: 1,
        };
        ChunkWriter { chunk_size: 4096 }
            .write(&mut out, header, &[&body])
            .unwrap();
        if let Err(e) = pair.server.handle_input(pair.now, &out) {
            server_error = Some(e);
        }
    }
    let dropped = std::iter::from_fn(|| pair.server.poll_output())
        .filter(|o| matches!(o, Output::Event(ServerEvent::MediaDropped { .. })))
        .count();
    assert_eq!(dropped, 7);
    assert!(matches!(
        server_error,
        Some(Error::MediaErrors { count: 8, .. })
    ));
}

#[test]
fn flv_round_trip() {
    let now = origin();
    let mut input = h264_with_aac(now, 0);
    input.extend(h265_frames(now).into_iter().map(|mut f| {
        f.dts = f.dts + Ts90::from_millis(1000);
        f.pts = f.pts + Ts90::from_millis(1000);
        f
    }));
    let mut mp3 = frame(
        Codec::Mp3,
        2000,
        0,
        true,
        Bytes::from_static(&[0xff, 0xfb, 0x90, 0xc4, 1, 2]),
        now,
    );
    mp3.track = AUDIO_TRACK;
    input.push(mp3);
    let mux = |frames: &[Frame]| {
        let mut muxer = FlvMuxer::new();
        let mut tags = Vec::new();
        for f in frames {
            assert_eq!(muxer.push(f).unwrap(), Pushed::Queued);
            tags.extend(std::iter::from_fn(|| muxer.pull()));
        }
        (tags, muxer)
    };
    let (tags, muxer) = mux(&input);
    // Sequence headers: AVC, AAC, then HEVC when the codec changed.
    assert_eq!(muxer.sequence_headers().count(), 2);
    assert_eq!(
        &muxer.sequence_headers().next().unwrap().body[..5],
        b"\x90hvc1"
    );
    let mut demuxer = FlvDemuxer::new();
    let frames: Vec<Frame> = tags
        .iter()
        .filter_map(|t| {
            demuxer
                .push(now, t.kind, t.timestamp, BytesMut::from(&t.body[..]))
                .unwrap()
        })
        .collect();
    assert_eq!(
        frames.iter().map(key).collect::<Vec<_>>(),
        input.iter().map(key).collect::<Vec<_>>()
    );
    let (again, _) = mux(&frames);
    assert_eq!(again, tags);
}

#[test]
fn flv_in_variants_and_clock_wrap() {
    let now = origin();
    let sets = params(H265, Codec::H265);
    let config =
        tributary_media::codec::h265::HevcConfig::from_parameter_sets(&sets[0], &sets[1], &sets[2])
            .unwrap();
    let record = config.to_vec().unwrap();
    let mut demuxer = FlvDemuxer::new();
    // Legacy codec id 12 sequence header, then an Enhanced CodedFramesX IDR across the wrap.
    let mut seq = vec![0x1c, 0, 0, 0, 0];
    seq.extend_from_slice(&record);
    let push = |d: &mut FlvDemuxer, ts: u32, body: &[u8]| {
        d.push(now, TagKind::Video, RtmpTime(ts), BytesMut::from(body))
    };
    assert!(push(&mut demuxer, u32::MAX - 10, &seq).unwrap().is_none());
    let idr = [0x93, b'h', b'v', b'c', b'1', 0, 0, 0, 3, 0x26, 0x01, 0xaf];
    let first = push(&mut demuxer, u32::MAX - 10, &idr).unwrap().unwrap();
    assert!(first.keyframe);
    // Parameter sets were put in front of the keyframe from the sequence header.
    assert_eq!(
        tributary_media::codec::nal::annex_b_nals(&first.payload).count(),
        4
    );
    let trail = [
        0xa1, b'h', b'v', b'c', b'1', 0xff, 0xff, 0xd8, 0, 0, 0, 3, 0x02, 0x01, 0xd0,
    ];
    let second = push(&mut demuxer, 30, &trail).unwrap().unwrap();
    assert_eq!(second.dts - first.dts, Ts90::from_millis(41));
    assert_eq!(second.pts - second.dts, Ts90::from_millis(-40));
    // Unsupported codecs and AAC before its header are errors naming them.
    assert!(
        matches!(push(&mut demuxer, 0, &[0x82, b'v', b'v', b'c', b'1']), Err(FlvError::UnsupportedCodec { codec, .. }) if codec == "vvc1")
    );
    assert!(
        matches!(push(&mut demuxer, 0, &[0x14, 0]), Err(FlvError::UnsupportedCodec { codec, .. }) if codec == "id 4")
    );
    assert!(matches!(
        demuxer.push(
            now,
            TagKind::Audio,
            RtmpTime(0),
            BytesMut::from(&[0xaf, 1, 5][..])
        ),
        Err(FlvError::NoSequenceHeader { codec: Codec::Aac })
    ));
    assert!(matches!(
        demuxer.push(
            now,
            TagKind::Audio,
            RtmpTime(0),
            BytesMut::from(&[0x6f, 1][..])
        ),
        Err(FlvError::UnsupportedCodec { what: "audio", .. })
    ));
    assert!(matches!(
        push(&mut demuxer, 0, &[0x27]),
        Err(FlvError::Truncated { needed: 5, .. })
    ));
}

mod av1_vp9;
mod fanout;
mod interop;
