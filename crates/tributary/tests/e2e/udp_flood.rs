//! A hostile MPEG-TS sender (issue 13, item 7): a PMT of 30 video PIDs and a 4 MiB PES on
//! each that never ends, sent to a stream's UDP input. Before one budget bounded a demuxer,
//! each PID held its own 16 MiB (30 × 15 MiB took RSS from 126 to 721 MB); now the flood
//! costs at most that budget, and another stream plays on.

use std::net::UdpSocket;
use std::time::Duration;

use tributary_testkit::{LiveSender, free_udp_port, unterminated_pes_flood, wait_until};

use crate::hls::{clip, create_udp_stream, wait_new_segment, wait_segments};
use crate::server::Server;
use crate::turn::alone;

#[test]
fn a_ts_flood_of_unterminated_pes_costs_one_budget_and_other_streams_play() {
    let _turn = alone();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let good = free_udp_port();
    create_udp_stream(&server, "good", good);
    let _sender = LiveSender::start(&clip(), good).expect("start the UDP sender");
    wait_segments(&server, "good", 2, Duration::from_secs(30));
    let flooded = free_udp_port();
    create_udp_stream(&server, "flooded", flooded);
    let before = server.peak_rss_bytes();

    // 120 MiB of TS in 7-packet datagrams, paced so the socket buffer keeps up.
    let flood = unterminated_pes_flood(30, 4 << 20);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (i, datagram) in flood.chunks(7 * 188).enumerate() {
        socket.send_to(datagram, ("127.0.0.1", flooded)).unwrap();
        if i % 64 == 63 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    // The demuxer reported the budget, in a log line naming the stream.
    wait_until(Duration::from_secs(20), "the PES budget error", || {
        !server
            .logged(|line| {
                let text = line.to_string();
                text.contains("unfinished PES on all PIDs") && text.contains("flooded")
            })
            .is_empty()
    })
    .unwrap();
    let grown = server.peak_rss_bytes().saturating_sub(before);
    assert!(
        grown < 64 << 20,
        "the flood grew the server by {} MiB",
        grown >> 20
    );

    // The other stream kept playing: its playlist moves on.
    wait_new_segment(&server, "good", Duration::from_secs(20));
}
