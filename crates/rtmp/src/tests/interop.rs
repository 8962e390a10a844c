//! Independent peers against our machines: rml_rtmp's client publishing to our server, and a
//! captured FFmpeg publish replayed in pieces of several sizes.

use super::*;

/// An independent implementation as the peer: rml_rtmp's client publishes (with compressed
/// chunk headers) to our server.
#[test]
fn rml_rtmp_client_publishes_to_our_server() {
    use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
    use rml_rtmp::sessions::{
        ClientSession as RmlClient, ClientSessionConfig, ClientSessionEvent, ClientSessionResult,
        PublishRequestType,
    };

    let now = origin();
    let mut server = ServerSession::new(ServerConfig::default(), [5; 32], now);
    let mut hs = Handshake::new(PeerType::Client);
    let c0c1 = hs.generate_outbound_p0_and_p1().unwrap();
    server.handle_input(now, &c0c1).unwrap();
    let mut to_client = Vec::new();
    while let Some(Output::Transmit(b)) = server.poll_output() {
        to_client.extend_from_slice(&b);
    }
    let HandshakeProcessResult::Completed {
        response_bytes,
        remaining_bytes,
    } = hs.process_bytes(&to_client).unwrap()
    else {
        panic!("rml handshake did not complete");
    };
    assert!(remaining_bytes.is_empty());
    server.handle_input(now, &response_bytes).unwrap();

    let (mut client, initial) = RmlClient::new(ClientSessionConfig::new()).unwrap();
    let mut to_server: Vec<u8> = Vec::new();
    let take = |results: Vec<ClientSessionResult>, to_server: &mut Vec<u8>| {
        let mut events = Vec::new();
        for r in results {
            match r {
                ClientSessionResult::OutboundResponse(p) => to_server.extend_from_slice(&p.bytes),
                ClientSessionResult::RaisedEvent(e) => events.push(e),
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        events
    };
    take(initial, &mut to_server);
    take(
        vec![client.request_connection("live".into()).unwrap()],
        &mut to_server,
    );
    let mut published = false;
    let mut frames = Vec::new();
    for round in 0..10 {
        server
            .handle_input(now, &std::mem::take(&mut to_server))
            .unwrap();
        let mut back = Vec::new();
        while let Some(out) = server.poll_output() {
            match out {
                Output::Transmit(b) => back.extend_from_slice(&b),
                Output::Event(ServerEvent::PublishRequested {
                    request_id,
                    stream_key,
                    ..
                }) => {
                    assert_eq!(stream_key, "cam");
                    server.accept(request_id).unwrap();
                }
                Output::Event(ServerEvent::Media(f)) => frames.push(f),
                Output::Event(_) => {}
            }
        }
        for e in take(client.handle_input(&back).unwrap(), &mut to_server) {
            match e {
                ClientSessionEvent::ConnectionRequestAccepted => {
                    take(
                        vec![
                            client
                                .request_publishing("cam".into(), PublishRequestType::Live)
                                .unwrap(),
                        ],
                        &mut to_server,
                    );
                }
                ClientSessionEvent::PublishRequestAccepted => published = true,
                _ => {}
            }
        }
        if published && round < 8 {
            // An AAC sequence header and frames at 21 ms steps: rml sends compressed headers.
            let ts = rml_rtmp::time::RtmpTimestamp::new(round * 21);
            let data = if frames.is_empty() && round < 9 {
                vec![0xaf, 0, 0x11, 0x90]
            } else {
                vec![0xaf, 1, round as u8]
            };
            let p = client
                .publish_audio_data(Bytes::from(data), ts, false)
                .unwrap();
            take(vec![p], &mut to_server);
            let p = client
                .publish_audio_data(Bytes::from(vec![0xaf, 1, 0x77]), ts, false)
                .unwrap();
            take(vec![p], &mut to_server);
        }
    }
    assert!(published);
    assert!(frames.len() >= 5, "{} frames", frames.len());
    assert!(frames.iter().all(|f| f.codec == Codec::Aac));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Arbitrary bytes after a valid handshake, cut anywhere: errors, never panics.
    #[test]
    fn server_session_never_panics(data in prop::collection::vec(any::<u8>(), 0..3000), split in 1usize..200) {
        let now = origin();
        let mut server = handshaken(Limits { max_buffered: 1 << 16, ..Limits::default() });
        for part in data.chunks(split) {
            if server.handle_input(now, part).is_err() {
                break;
            }
            while server.poll_output().is_some() {}
        }
    }

    /// Arbitrary well-framed messages of any type: the message layer never panics either.
    #[test]
    fn server_session_survives_arbitrary_messages(messages in prop::collection::vec((1u8..23, prop::collection::vec(any::<u8>(), 0..64)), 0..20)) {
        let now = origin();
        let mut server = handshaken(Limits::default());
        for (type_id, body) in messages {
            if server.handle_input(now, &message(3, type_id, &body)).is_err() {
                break;
            }
            while server.poll_output().is_some() {}
        }
    }

    /// The client, fed garbage after its handshake, never panics.
    #[test]
    fn client_session_never_panics(data in prop::collection::vec(any::<u8>(), 0..3000)) {
        let now = origin();
        let config = ClientConfig::from_url("rtmp://h/live/x", ClientIntent::Play).unwrap();
        let mut client = ClientSession::new(config, [0; 32], now);
        let mut s0s1s2 = vec![3u8];
        s0s1s2.extend(std::iter::repeat_n(0u8, 2 * handshake::PACKET));
        client.handle_input(now, &s0s1s2).unwrap();
        let _ = client.handle_input(now, &data);
    }
}

/// A real FFmpeg publish, replayed into a fresh server session in pieces of several sizes.
#[test]
fn ffmpeg_publish_capture() {
    let capture = include_bytes!("../../testdata/ffmpeg_publish_h264_aac.bin");
    for split in [capture.len(), 1460, 7] {
        let now = origin();
        let mut server = ServerSession::new(ServerConfig::default(), [0; 32], now);
        let mut events = Vec::new();
        for piece in capture.chunks(split) {
            server.handle_input(now, piece).unwrap();
            while let Some(out) = server.poll_output() {
                match out {
                    Output::Event(ServerEvent::PublishRequested {
                        request_id,
                        app,
                        stream_key,
                    }) => {
                        assert_eq!(
                            (app.as_str(), stream_key.as_str()),
                            ("live", "cam1?key=abc")
                        );
                        server.accept(request_id).unwrap();
                    }
                    Output::Event(e) => events.push(e),
                    Output::Transmit(_) => {}
                }
            }
        }
        assert!(matches!(
            events[0],
            ServerEvent::Connected {
                handshake: handshake::HandshakeKind::Complex(handshake::DigestScheme::DigestFirst),
                ..
            }
        ));
        assert!(events.iter().any(|e| matches!(e, ServerEvent::Metadata(m) if m.property("width").and_then(amf0::Amf0::as_number) == Some(160.0))));
        assert!(matches!(events.last(), Some(ServerEvent::PublishFinished)));
        let frames: Vec<&Frame> = events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Media(f) => Some(f),
                _ => None,
            })
            .collect();
        let video: Vec<&&Frame> = frames.iter().filter(|f| f.codec == Codec::H264).collect();
        assert_eq!((video.len(), frames.len() - video.len()), (25, 48));
        assert!(video[0].keyframe && video.iter().filter(|f| f.keyframe).count() == 1);
        let info = &video[0].config.as_ref().unwrap().info;
        assert_eq!((info.width, info.height), (Some(160), Some(120)));
        // B-frames: presentation order differs from decode order.
        assert!(video.windows(2).any(|w| w[1].pts < w[0].pts));
        assert!(video.windows(2).all(|w| w[1].dts > w[0].dts));
        let aac = frames.iter().find(|f| f.codec == Codec::Aac).unwrap();
        assert_eq!(aac.config.as_ref().unwrap().info.sample_rate, Some(48_000));
    }
}
