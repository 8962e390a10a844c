//! The server session driven as a player drives it, on synthetic time.

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use rtsp_types::{Message, Response};
use tributary_media::{Output, Session, Ts90};

use super::{Datagram, Event, Refusal, RtspError, ServerConfig, ServerSession};
use crate::sdp::Track;

fn config(udp: Option<(u16, u16)>) -> ServerConfig {
    ServerConfig {
        tcp: true,
        udp,
        timeout: Duration::from_secs(60),
        play_deadline: Duration::from_secs(10),
        max_request: 64 * 1024,
        max_packet: 1400,
        random: 0x0123_4567_89AB_CDEF,
        wall: (t0(), Duration::from_secs(1_700_000_000)),
    }
}

fn t0() -> Instant {
    // One instant for the whole test binary: tests only compare instants derived from it.
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    #[allow(clippy::disallowed_methods)]
    *T0.get_or_init(Instant::now)
}

fn at(secs: f64) -> Instant {
    t0() + Duration::from_secs_f64(secs)
}

fn tracks() -> Vec<Track> {
    vec![
        Track::h264(
            Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1f]),
            Bytes::from_static(&[0x68, 0xce, 0x3c, 0x80]),
        ),
        Track::aac(Bytes::from_static(&[0x11, 0x90])).unwrap(),
    ]
}

/// What the session put out since the last call: responses, events and other transmits.
#[derive(Debug, Default)]
struct Drained {
    responses: Vec<Response<Vec<u8>>>,
    events: Vec<Event>,
    /// Interleaved frames: `(channel, payload)`.
    interleaved: Vec<(u8, Vec<u8>)>,
}

fn drain(session: &mut ServerSession) -> Drained {
    let mut out = Drained::default();
    while let Some(output) = session.poll_output() {
        match output {
            Output::Event(e) => out.events.push(e),
            Output::Transmit(bytes) => {
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    if rest[0] == b'$' {
                        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
                        out.interleaved.push((rest[1], rest[4..4 + len].to_vec()));
                        rest = &rest[4 + len..];
                        continue;
                    }
                    let (message, used) = Message::<Vec<u8>>::parse(rest).expect("a response");
                    let Message::Response(r) = message else {
                        panic!("not a response")
                    };
                    out.responses.push(r);
                    rest = &rest[used..];
                }
            }
        }
    }
    out
}

fn header(r: &Response<Vec<u8>>, name: &'static str) -> String {
    r.header(&rtsp_types::HeaderName::from_static_str(name).unwrap())
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default()
}

fn status(r: &Response<Vec<u8>>) -> u16 {
    r.status().into()
}

fn send(session: &mut ServerSession, now: Instant, text: &str) -> Drained {
    session.handle_input(now, text.as_bytes()).unwrap();
    drain(session)
}

const URL: &str = "rtsp://127.0.0.1:8554/live/cam";

fn describe(session: &mut ServerSession) {
    let out = send(
        session,
        at(0.0),
        &format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n"),
    );
    assert_eq!(
        out.events,
        [Event::Describe {
            path: "live/cam".into()
        }]
    );
    session.describe(at(0.0), Ok(tracks()));
    let out = drain(session);
    assert_eq!(status(&out.responses[0]), 200);
}

/// DESCRIBE, SETUP of both tracks over TCP, PLAY accepted at `start`: the RTP-Info answer.
fn play_tcp(session: &mut ServerSession, start: Ts90) -> String {
    describe(session);
    let out = send(
        session,
        at(0.1),
        &format!(
            "SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        ),
    );
    let r = &out.responses[0];
    assert_eq!(status(r), 200, "{r:?}");
    assert_eq!(
        header(r, "Transport"),
        "RTP/AVP/TCP;unicast;interleaved=0-1"
    );
    let id = header(r, "Session");
    assert_eq!(id, "0123456789ABCDEF;timeout=60");
    let id = id.split(';').next().unwrap().to_owned();
    let out = send(
        session,
        at(0.2),
        &format!(
            "SETUP {URL}/trackID=1 RTSP/1.0\r\nCSeq: 4\r\nSession: {id}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n\r\n"
        ),
    );
    assert_eq!(status(&out.responses[0]), 200);
    let out = send(
        session,
        at(0.3),
        &format!("PLAY {URL}/ RTSP/1.0\r\nCSeq: 5\r\nSession: {id}\r\nRange: npt=0.000-\r\n\r\n"),
    );
    assert_eq!(
        out.events,
        [Event::Play {
            path: "live/cam".into()
        }]
    );
    assert!(!session.is_playing());
    session.play(at(0.3), Ok(start));
    let out = drain(session);
    let r = &out.responses[0];
    assert_eq!(status(r), 200);
    assert!(session.is_playing());
    assert_eq!(session.tracks().collect::<Vec<_>>(), [0, 1]);
    header(r, "RTP-Info")
}

#[test]
fn options_lists_the_methods() {
    let mut s = ServerSession::new(config(None), at(0.0));
    let out = send(&mut s, at(0.0), "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n");
    let r = &out.responses[0];
    assert_eq!(status(r), 200);
    assert_eq!(header(r, "CSeq"), "1");
    assert!(header(r, "Public").contains("DESCRIBE, SETUP, PLAY, TEARDOWN"));
}

#[test]
fn describe_answers_with_the_sdp_or_the_refusal() {
    let mut s = ServerSession::new(config(None), at(0.0));
    describe(&mut s);
    let mut s = ServerSession::new(config(None), at(0.0));
    send(
        &mut s,
        at(0.0),
        &format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 7\r\n\r\n"),
    );
    s.describe(at(0.0), Err(Refusal::NotFound));
    let out = drain(&mut s);
    assert_eq!(status(&out.responses[0]), 404);
    assert_eq!(header(&out.responses[0], "CSeq"), "7");
    // No tracks is as good as unknown; an answer nobody asked for does nothing.
    send(
        &mut s,
        at(0.0),
        &format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 8\r\n\r\n"),
    );
    s.describe(at(0.0), Ok(Vec::new()));
    assert_eq!(status(&drain(&mut s).responses[0]), 404);
    s.describe(at(0.0), Ok(tracks()));
    s.play(at(0.0), Ok(Ts90(0)));
    assert!(drain(&mut s).responses.is_empty());
}

#[test]
fn the_sdp_names_the_content_base_and_both_tracks() {
    let mut s = ServerSession::new(config(None), at(0.0));
    send(
        &mut s,
        at(0.0),
        &format!("DESCRIBE {URL}?token=x RTSP/1.0\r\nCSeq: 2\r\n\r\n"),
    );
    s.describe(at(0.0), Ok(tracks()));
    let out = drain(&mut s);
    let r = &out.responses[0];
    assert_eq!(header(r, "Content-Base"), format!("{URL}/"));
    assert_eq!(header(r, "Content-Type"), "application/sdp");
    let sdp = String::from_utf8(r.body().clone()).unwrap();
    assert!(sdp.contains("a=control:trackID=0") && sdp.contains("a=control:trackID=1"));
    assert!(sdp.contains("s=live/cam\r\n"), "{sdp}");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut s = ServerSession::new(config(None), at(0.0));
    let out = send(
        &mut s,
        at(0.0),
        &format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 1\r\n\r\nOPTIONS * RTSP/1.0\r\nCSeq: 2\r\n\r\n"),
    );
    assert!(
        out.responses.is_empty(),
        "OPTIONS waits for the DESCRIBE's answer"
    );
    assert!(s.buffered() > 0);
    s.describe(at(0.0), Ok(tracks()));
    let out = drain(&mut s);
    let cseqs: Vec<String> = out.responses.iter().map(|r| header(r, "CSeq")).collect();
    assert_eq!(cseqs, ["1", "2"]);
    assert_eq!(s.buffered(), 0);
}

#[test]
fn play_starts_rtp_where_rtp_info_says() {
    let mut s = ServerSession::new(config(None), at(0.0));
    let info = play_tcp(&mut s, Ts90(90_000));
    // url=…/trackID=0;seq=S;rtptime=T,url=…/trackID=1;…
    let fields: Vec<(u16, u32)> = info
        .split(',')
        .map(|entry| {
            let get = |key: &str| {
                entry
                    .split(';')
                    .find_map(|kv| kv.strip_prefix(key))
                    .unwrap()
                    .to_owned()
            };
            assert!(get("url=").starts_with(URL), "{entry}");
            (
                get("seq=").parse().unwrap(),
                get("rtptime=").parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(fields.len(), 2);

    let idr = Bytes::from_static(&[0, 0, 0, 1, 0x65, 1, 2, 3]);
    // The bytes written: a 12-byte RTP header, the NAL unit without its start code, and the
    // 4-byte interleaved framing.
    let written = s.write_frame(0, Ts90(90_000), &idr, at(1.0), |_| panic!("TCP track"));
    assert_eq!(written, 4 + 12 + 4);
    let aac = Bytes::from_static(&[0x21, 0x10]);
    // One second of audio later at 48 kHz is 48 000 ticks after rtptime.
    s.write_frame(1, Ts90(180_000), &aac, at(2.0), |_| panic!("TCP track"));
    let out = drain(&mut s);
    assert_eq!(out.interleaved.len(), 2);
    let (channel, video) = &out.interleaved[0];
    assert_eq!(*channel, 0);
    assert_eq!(u16::from_be_bytes([video[2], video[3]]), fields[0].0);
    assert_eq!(
        u32::from_be_bytes([video[4], video[5], video[6], video[7]]),
        fields[0].1
    );
    assert_eq!(video[1], 0x80 | 96, "marker, payload type 96");
    assert_eq!(&video[12..], &[0x65, 1, 2, 3]);
    let (channel, audio) = &out.interleaved[1];
    assert_eq!(*channel, 2);
    assert_eq!(audio[1], 0x80 | 97);
    assert_eq!(
        u32::from_be_bytes([audio[4], audio[5], audio[6], audio[7]]),
        fields[1].1.wrapping_add(48_000)
    );
    assert_eq!(&audio[12..], &[0x00, 0x10, 0x00, 0x10, 0x21, 0x10]);

    // A track not set up, and a frame after TEARDOWN, write nothing.
    s.write_frame(5, Ts90(0), &idr, at(2.0), |_| panic!());
    let out = send(
        &mut s,
        at(3.0),
        &format!("TEARDOWN {URL} RTSP/1.0\r\nCSeq: 9\r\n\r\n"),
    );
    assert_eq!(status(&out.responses[0]), 200);
    assert_eq!(
        out.events,
        [Event::Close {
            reason: "TEARDOWN".into()
        }]
    );
    s.write_frame(0, Ts90(0), &idr, at(3.0), |_| panic!());
    assert!(drain(&mut s).interleaved.is_empty());
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn udp_setup_names_the_listener_ports_and_media_goes_to_the_client_ports() {
    let mut s = ServerSession::new(config(Some((8000, 8001))), at(0.0));
    describe(&mut s);
    let out = send(
        &mut s,
        at(0.1),
        &format!(
            "SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n"
        ),
    );
    let r = &out.responses[0];
    assert_eq!(
        header(r, "Transport"),
        "RTP/AVP;unicast;client_port=5000-5001;server_port=8000-8001"
    );
    let out = send(
        &mut s,
        at(0.2),
        &format!("PLAY {URL} RTSP/1.0\r\nCSeq: 4\r\n\r\n"),
    );
    assert_eq!(out.events.len(), 1);
    s.play(at(0.2), Ok(Ts90(0)));
    drain(&mut s);
    let mut big = vec![0, 0, 0, 1, 0x65];
    big.extend(std::iter::repeat_n(7u8, 3000));
    let mut sent = Vec::new();
    let written = s.write_frame(0, Ts90(0), &Bytes::from(big), at(1.0), |d: Datagram<'_>| {
        sent.push((d.port, d.packet.size(), d.packet.marker()));
    });
    assert_eq!(sent.len(), 3, "FU-A over 1400-byte packets");
    assert_eq!(written, sent.iter().map(|(_, size, _)| size).sum::<usize>());
    assert!(
        sent.iter()
            .all(|(port, size, _)| *port == 5000 && *size <= 1400)
    );
    assert_eq!(sent.iter().filter(|(_, _, m)| *m).count(), 1);
    assert!(drain(&mut s).interleaved.is_empty());

    // Sender reports go to the client's RTCP port.
    s.handle_timeout(at(5.2)).unwrap();
    let out = drain(&mut s);
    let [Event::Rtcp { port, packet }] = &out.events[..] else {
        panic!("{:?}", out.events)
    };
    assert_eq!((*port, packet[1]), (5001, 200));
}

#[test]
fn transports_we_do_not_offer_are_refused() {
    // UDP asked of a TCP-only listener, multicast, and UDP without client ports.
    for transport in [
        "RTP/AVP;unicast;client_port=5000-5001",
        "RTP/AVP;multicast",
        "RTP/AVP;unicast",
    ] {
        let mut s = ServerSession::new(config(None), at(0.0));
        describe(&mut s);
        let out = send(
            &mut s,
            at(0.1),
            &format!("SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: {transport}\r\n\r\n"),
        );
        assert_eq!(status(&out.responses[0]), 461, "{transport}");
    }
    // A client that offers UDP then TCP gets TCP.
    let mut s = ServerSession::new(config(None), at(0.0));
    describe(&mut s);
    let out = send(
        &mut s,
        at(0.1),
        &format!(
            "SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/TCP;unicast\r\n\r\n"
        ),
    );
    assert_eq!(
        header(&out.responses[0], "Transport"),
        "RTP/AVP/TCP;unicast;interleaved=0-1"
    );
}

#[test]
fn requests_out_of_order_or_out_of_place_are_refused() {
    let mut s = ServerSession::new(config(None), at(0.0));
    let setup = |cseq: u32, track: &str| {
        format!(
            "SETUP {URL}/trackID={track} RTSP/1.0\r\nCSeq: {cseq}\r\nTransport: RTP/AVP/TCP;unicast\r\n\r\n"
        )
    };
    // SETUP and PLAY before DESCRIBE.
    assert_eq!(
        status(&send(&mut s, at(0.0), &setup(1, "0")).responses[0]),
        455
    );
    let play = format!("PLAY {URL} RTSP/1.0\r\nCSeq: 2\r\n\r\n");
    assert_eq!(status(&send(&mut s, at(0.0), &play).responses[0]), 455);
    describe(&mut s);
    // A track that does not exist, another path.
    assert_eq!(
        status(&send(&mut s, at(0.0), &setup(3, "2")).responses[0]),
        404
    );
    assert_eq!(
        status(&send(&mut s, at(0.0), &setup(4, "x")).responses[0]),
        404
    );
    let other = "SETUP rtsp://127.0.0.1:8554/live/other/trackID=0 RTSP/1.0\r\nCSeq: 5\r\nTransport: RTP/AVP/TCP\r\n\r\n";
    assert_eq!(status(&send(&mut s, at(0.0), other).responses[0]), 404);
    // A wrong session id.
    assert_eq!(
        status(&send(&mut s, at(0.0), &setup(6, "0")).responses[0]),
        200
    );
    let wrong = format!("PLAY {URL} RTSP/1.0\r\nCSeq: 7\r\nSession: 42\r\n\r\n");
    assert_eq!(status(&send(&mut s, at(0.0), &wrong).responses[0]), 454);
    // Methods a live play server does not do.
    for method in ["PAUSE", "RECORD", "ANNOUNCE", "REDIRECT"] {
        let text = format!("{method} {URL} RTSP/1.0\r\nCSeq: 8\r\n\r\n");
        assert_eq!(
            status(&send(&mut s, at(0.0), &text).responses[0]),
            501,
            "{method}"
        );
    }
    // A refused PLAY: the caps are full.
    send(&mut s, at(0.0), &play);
    s.play(at(0.0), Err(Refusal::Unavailable));
    assert_eq!(status(&drain(&mut s).responses[0]), 503);
    assert!(!s.is_playing());
}

#[test]
fn malformed_oversized_and_cseq_less_requests_close_the_connection() {
    let cases: [(&[u8], u16); 3] = [
        (b"\x16\x03\x01 not rtsp\r\n\r\n", 400),
        (b"OPTIONS * RTSP/1.0\r\n\r\n", 400),
        (&[b'A'; 70 * 1024], 413),
    ];
    for (input, code) in cases {
        let mut s = ServerSession::new(config(None), at(0.0));
        s.handle_input(at(0.0), input).unwrap();
        let out = drain(&mut s);
        assert_eq!(status(&out.responses[0]), code);
        assert!(
            matches!(out.events[..], [Event::Close { .. }]),
            "{:?}",
            out.events
        );
        // Nothing more is read.
        s.handle_input(at(0.0), b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n")
            .unwrap();
        assert!(drain(&mut s).responses.is_empty());
        assert_eq!(s.buffered(), 0);
    }
}

#[test]
fn a_connection_must_play_within_the_deadline() {
    let mut s = ServerSession::new(config(None), at(0.0));
    assert_eq!(s.poll_timeout(), Some(at(10.0)));
    describe(&mut s);
    assert_eq!(
        s.handle_timeout(at(10.0)),
        Err(RtspError::NoPlay(Duration::from_secs(10)))
    );
    let mut s = ServerSession::new(config(None), at(0.0));
    play_tcp(&mut s, Ts90(0));
    assert_eq!(s.poll_timeout(), Some(at(5.3)), "no deadline once playing");
}

#[test]
fn silence_times_out_and_keep_alives_hold_it_off() {
    let mut s = ServerSession::new(config(None), at(0.0));
    play_tcp(&mut s, Ts90(0));
    // The last request came at 0.3 s.
    s.handle_timeout(at(60.0)).unwrap();
    // GET_PARAMETER is a keep-alive.
    send(
        &mut s,
        at(50.0),
        "GET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\n\r\n",
    );
    s.handle_timeout(at(109.9)).unwrap();
    // So is RTCP over the connection, and over UDP (the listener tells the session).
    s.handle_input(at(100.0), &[b'$', 1, 0, 4, 0x81, 201, 0, 0])
        .unwrap();
    s.handle_timeout(at(159.9)).unwrap();
    s.keepalive(at(150.0));
    s.handle_timeout(at(209.9)).unwrap();
    assert_eq!(
        s.handle_timeout(at(210.0)),
        Err(RtspError::Timeout(Duration::from_secs(60)))
    );
}

#[test]
fn sender_reports_tie_rtp_time_to_wall_time_every_five_seconds() {
    let mut s = ServerSession::new(config(None), at(0.0));
    let info = play_tcp(&mut s, Ts90(0));
    let start: u32 = info
        .split(',')
        .next()
        .and_then(|video| video.split(';').find_map(|kv| kv.strip_prefix("rtptime=")))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(s.poll_timeout(), Some(at(5.3)), "the first report is due");
    s.write_frame(
        0,
        Ts90(0),
        &Bytes::from_static(&[0, 0, 1, 0x65, 9]),
        at(1.0),
        |_| {},
    );
    drain(&mut s);
    s.handle_timeout(at(5.3)).unwrap();
    let out = drain(&mut s);
    // Video only: audio wrote nothing yet.
    assert_eq!(out.interleaved.len(), 1);
    let (channel, report) = &out.interleaved[0];
    assert_eq!(*channel, 1, "the video's RTCP channel");
    assert_eq!(report[1], 200);
    let word = |at: usize| u32::from_be_bytes(report[at..at + 4].try_into().unwrap());
    // The wall clock 5.3 s after the anchor, in NTP seconds.
    assert_eq!(word(8), 1_700_000_005 + 2_208_988_800);
    // The RTP time 4.3 s after the frame stamped `start`, at 90 kHz (give or take rounding).
    let rtp = word(16).wrapping_sub(start);
    assert!((386_999..=387_001).contains(&rtp), "{rtp}");
    assert_eq!(
        (word(20), word(24)),
        (1, 2),
        "one packet, two payload bytes"
    );
    assert_eq!(s.poll_timeout(), Some(at(10.3)));
    assert!(out.events.is_empty());
}

proptest! {
    #[test]
    fn any_bytes_in_any_pieces_never_panic_and_stay_bounded(
        data in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(1usize..600, 1..20),
    ) {
        let mut config = config(Some((8000, 8001)));
        config.max_request = 1024;
        let mut s = ServerSession::new(config, at(0.0));
        let mut rest = &data[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            s.handle_input(at(0.0), &rest[..n]).unwrap();
            rest = &rest[n..];
            i += 1;
            while let Some(output) = s.poll_output() {
                if let Output::Event(Event::Describe { .. }) = output {
                    s.describe(at(0.0), Ok(tracks()));
                } else if let Output::Event(Event::Play { .. }) = output {
                    s.play(at(0.0), Ok(Ts90(0)));
                }
            }
            prop_assert!(s.buffered() <= 1024 + 600);
        }
    }
}

#[test]
fn a_playing_tcp_connection_frames_into_one_reused_buffer() {
    let mut s = ServerSession::new(config(None), at(0.0));
    play_tcp(&mut s, Ts90(0));
    // A 30 kB keyframe: FU-A packets, framed back to back in one transmit.
    let mut au = vec![0, 0, 0, 1, 0x65];
    au.extend(std::iter::repeat_n(7u8, 30_000));
    let au = Bytes::from(au);
    let frame = |s: &mut ServerSession, n: i64| {
        let written = s.write_frame(0, Ts90(3000 * n), &au, at(1.0), |_| panic!("TCP track"));
        let mut transmits = Vec::new();
        while let Some(output) = s.poll_output() {
            if let Output::Transmit(bytes) = output {
                transmits.push(bytes);
            }
        }
        assert_eq!(transmits.len(), 1, "one transmit per frame");
        assert_eq!(transmits[0].len(), written);
        transmits.pop().unwrap()
    };
    let first = frame(&mut s, 1);
    let address = first.as_ptr();
    // The connection wrote it and let it go: the next frame lands in the same memory.
    drop(first);
    for n in 2..10 {
        let next = frame(&mut s, n);
        assert_eq!(next.as_ptr(), address, "frame {n} reallocated");
    }
    // A frame still being written keeps its bytes: the next one goes elsewhere, intact.
    let held = frame(&mut s, 10);
    let copy = held.to_vec();
    let next = frame(&mut s, 11);
    assert_ne!(next.as_ptr(), held.as_ptr());
    assert_eq!(held.to_vec(), copy);
}
