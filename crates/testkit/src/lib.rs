//! Test helpers for Tributary's own tests (dev-dependency only, ARCHITECTURE.md §5 "testkit").
//!
//! - **FFmpeg and ffprobe** ([`ffmpeg`], [`ffprobe`]): commands for the binaries on `PATH`,
//!   which *panic* with a message pointing at `scripts/test` when a binary is missing. Tests
//!   that need FFmpeg fail loudly; they never skip.
//! - **Clips** ([`make_ts_clip`], [`cached_clip`]): pre-encoded `testsrc2` + `sine` clips with
//!   a fixed GOP, so encoding is never in the measured or tested loop.
//! - **Sources** ([`LiveSender`]): an `ffmpeg -re -stream_loop -1 ... -f mpegts udp://...` (or
//!   `-f flv rtmp://...`) process that plays a clip in real time, killed on drop.
//! - **Probes** ([`probe_streams`], [`probe_packets`], [`decode_errors`]): what ffprobe and a
//!   decoding ffmpeg say about a file or URL, parsed from JSON.
//! - **RTMP** ([`rtmp_play`], [`rtmp_publish`]): a blocking player and a blocking publisher on
//!   the project's own client session, for what FFmpeg 5.1 cannot play or publish (H.265, AV1
//!   and VP9 over Enhanced RTMP); the player returns the frames and the wire tags it received.
//! - **Hostile input** ([`unterminated_pes_flood`]): MPEG-TS that makes a naive demuxer hold
//!   memory without bound.
//! - **GeoIP** ([`country_mmdb`]): a small MaxMind DB written from a list of networks, since
//!   no real `.mmdb` can be fetched here.
//! - **Network** ([`free_udp_port`], [`free_tcp_port`], [`http_get`], [`wait_until`]).
//!
//! Every child process started here runs under a time limit or is killed on drop, so a
//! misbehaving server makes a test fail, not hang.
//!
//! ```no_run
//! use tributary_testkit::{ClipSpec, LiveSender, cached_clip, free_udp_port, probe_streams};
//!
//! let clip = cached_clip(&ClipSpec { seconds: 4, ..ClipSpec::default() }, "ts")?;
//! let streams = probe_streams(clip.to_str().unwrap())?;
//! assert_eq!(streams[0].codec_name.as_deref(), Some("h264"));
//! let port = free_udp_port();
//! let _sender = LiveSender::start(&clip, port)?; // plays until dropped
//! # Ok::<(), anyhow::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod ffmpeg;
mod mmdb;
mod net;
mod probe;
mod rtmp;
mod rtmp_publish;
mod ts;

pub use ffmpeg::{ClipSpec, LiveSender, cached_clip, ffmpeg, ffprobe, make_ts_clip};
pub use mmdb::country_mmdb;
pub use net::{free_tcp_port, free_udp_port, http_get, wait_until};
pub use probe::{
    ProbePacket, ProbeStream, decode_errors, probe_packets, probe_streams, rising_dts,
};
pub use rtmp::{RtmpPlayback, WireTag, nal_unit_types, rtmp_play};
pub use rtmp_publish::{coded_video_frames, rtmp_publish};
/// The media vocabulary [`rtmp_play`] returns, re-exported so that tests above the layer of
/// `tributary-media` and `tributary-rtmp` (the binary's e2e tests) can name it.
pub use tributary_media::{Codec, Frame, TrackId, Ts90};
pub use tributary_rtmp::TagKind;
pub use ts::unterminated_pes_flood;

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, UdpSocket};
    use std::thread;
    use std::time::Duration;

    use super::*;

    /// A 2 s 720p clip with a keyframe every second, made once for these tests.
    fn clip(dir: &tempfile::TempDir) -> std::path::PathBuf {
        let path = dir.path().join("clip.ts");
        let spec = ClipSpec {
            seconds: 2,
            gop: 30,
            ..ClipSpec::default()
        };
        make_ts_clip(&path, &spec).unwrap();
        path
    }

    #[test]
    fn a_clip_probes_as_h264_720p_and_aac_with_its_gop() {
        let dir = tempfile::tempdir().unwrap();
        let path = clip(&dir);
        let path = path.to_str().unwrap();

        let streams = probe_streams(path).unwrap();
        assert_eq!(streams.len(), 2, "{streams:?}");
        let video = &streams[0];
        assert_eq!(video.codec_type.as_deref(), Some("video"));
        assert_eq!(video.codec_name.as_deref(), Some("h264"));
        assert_eq!((video.width, video.height), (Some(1280), Some(720)));
        let audio = &streams[1];
        assert_eq!(audio.codec_name.as_deref(), Some("aac"));
        assert_eq!((audio.sample_rate, audio.channels), (Some(48_000), Some(2)));

        let packets = probe_packets(path, &["-select_streams", "v"]).unwrap();
        assert!(
            (58..=62).contains(&packets.len()),
            "{} video packets",
            packets.len()
        );
        let keyframes: Vec<usize> = (0..packets.len())
            .filter(|&i| packets[i].keyframe)
            .collect();
        assert_eq!(keyframes, [0, 30]);
        assert!(
            packets
                .iter()
                .all(|p| p.pts_time.is_some() && p.dts_time.is_some())
        );

        assert_eq!(decode_errors(path, 2.0).unwrap(), "");
    }

    #[test]
    fn a_missing_input_is_an_error_or_a_complaint() {
        assert!(probe_streams("/nonexistent/clip.ts").is_err());
        assert!(
            !decode_errors("/nonexistent/clip.ts", 1.0)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_udp_sender_sends_ts_datagrams_until_killed() {
        let dir = tempfile::tempdir().unwrap();
        let path = clip(&dir);
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let port = socket.local_addr().unwrap().port();

        let mut sender = LiveSender::start(&path, port).unwrap();
        let mut buf = [0u8; 2048];
        let len = socket.recv(&mut buf).unwrap();
        assert_eq!(len, 1316);
        assert!(buf[..len].chunks(188).all(|packet| packet[0] == 0x47));
        assert!(sender.is_running());

        sender.restart().unwrap();
        assert_eq!(socket.recv(&mut buf).unwrap(), 1316);
        sender.kill();
        assert!(!sender.is_running());
        assert_eq!(sender.pid(), None);
    }

    #[test]
    fn free_ports_can_be_bound() {
        UdpSocket::bind(("127.0.0.1", free_udp_port())).unwrap();
        TcpListener::bind(("127.0.0.1", free_tcp_port())).unwrap();
    }

    #[test]
    fn http_get_returns_any_status_with_headers_and_body() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request).unwrap();
            stream
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nConnection: close\r\n\r\ngone")
                .unwrap();
        });
        let (status, headers, body) = http_get(&format!("http://127.0.0.1:{port}/x")).unwrap();
        server.join().unwrap();
        assert_eq!(status, 404);
        assert!(headers.contains(&("content-type".to_owned(), "text/plain".to_owned())));
        assert_eq!(body, b"gone");
    }

    #[test]
    fn wait_until_names_what_never_came() {
        wait_until(Duration::from_secs(1), "nothing", || true).unwrap();
        let error = wait_until(Duration::from_millis(100), "the playlist", || false).unwrap_err();
        assert!(error.to_string().contains("the playlist"), "{error}");
    }

    #[test]
    #[should_panic(expected = "not found on PATH: run scripts/test, which installs it")]
    fn a_missing_binary_panics_with_the_fix() {
        let _ = ffmpeg::binary("tributary-no-such-ffmpeg");
    }
}
