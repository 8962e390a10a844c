//! A property: the RTP packetizers of RTSP play (`tributary_rtp::packetize`) on arbitrary
//! access units, in every format, with any packet size. Every packet fits the size, numbers
//! follow each other, all carry the unit's timestamp, and only the last carries the marker.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tributary_rtp::packetize::{Format, MIN_PACKET, Packetizer};

fuzz_target!(|data: &[u8]| {
    let Some((&control, au)) = data.split_first() else {
        return;
    };
    let max = usize::from(control) * 8;
    let au = Bytes::copy_from_slice(au);
    for format in [Format::H264, Format::H265, Format::Aac] {
        let mut packetizer = Packetizer::new(format, 96, 7, u16::MAX - 2, max);
        let mut packets = Vec::new();
        if packetizer.packetize(&au, 1234, |p| packets.push(p)).is_err() {
            assert!(packets.is_empty(), "a refused unit sends nothing");
            continue;
        }
        for (i, p) in packets.iter().enumerate() {
            assert!(p.size() <= max.max(MIN_PACKET));
            assert_eq!(p.sequence(), (u16::MAX - 2).wrapping_add(i as u16));
            assert_eq!(p.timestamp(), 1234);
            assert_eq!(p.marker(), i + 1 == packets.len());
        }
        assert_eq!(packetizer.next_sequence(), (u16::MAX - 2).wrapping_add(packets.len() as u16));
    }
});
