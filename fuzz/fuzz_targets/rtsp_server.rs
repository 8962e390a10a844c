//! The RTSP server session (`tributary_rtsp::ServerSession`) from a client's first byte, as
//! the RTSP listener runs it: input in pieces (the first byte sets their size), DESCRIBE and
//! PLAY answered as a server with a stream would, and once playing a frame of each track
//! written after every piece. Any panic is a bug; so is holding more input than one request
//! may be.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tributary_media::{Output, Session, Ts90};
use tributary_rtsp::{Event, ServerConfig, ServerSession, Track};

fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

const MAX_REQUEST: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let piece = usize::from(control).max(1);
    let config = ServerConfig {
        tcp: control & 1 == 0,
        udp: (control & 2 == 0).then_some((8000, 8001)),
        timeout: Duration::from_secs(60),
        play_deadline: Duration::from_secs(10),
        max_request: MAX_REQUEST,
        max_packet: 200,
        random: u64::from(control).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        wall: (t0(), Duration::from_secs(1_700_000_000)),
    };
    let tracks = [
        Track::h264(
            Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1f]),
            Bytes::from_static(&[0x68, 0xce, 0x3c, 0x80]),
        ),
        Track::aac(Bytes::from_static(&[0x11, 0x90])).expect("a valid AudioSpecificConfig"),
    ];
    let video = Bytes::from(vec![0, 0, 0, 1, 0x65, 0xAA].repeat(100));
    let audio = Bytes::from_static(&[0x21; 300]);
    let mut session = ServerSession::new(config, t0());
    for (i, chunk) in input.chunks(piece).enumerate() {
        let now = t0() + Duration::from_millis(i as u64 * 40);
        session.handle_input(now, chunk).expect("input never fails the session");
        assert!(session.buffered() <= MAX_REQUEST + piece);
        while let Some(output) = session.poll_output() {
            match output {
                Output::Event(Event::Describe { .. }) => session.describe(now, Ok(tracks.to_vec())),
                Output::Event(Event::Play { .. }) => session.play(now, Ok(Ts90(0))),
                _ => {}
            }
        }
        if session.is_playing() {
            let pts = Ts90(i as i64 * 3600);
            session.write_frame(0, pts, &video, now, |d| assert!(d.packet.size() <= 200));
            session.write_frame(1, pts, &audio, now, |d| assert!(d.packet.size() <= 200));
            let _ = session.handle_timeout(now + Duration::from_secs(6));
            while session.poll_output().is_some() {}
        }
    }
});
