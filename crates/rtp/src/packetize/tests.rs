//! The packetizers against a reassembler written from the RFCs' receiver rules (the oracle):
//! what goes in comes out, in packets that respect every rule a receiver checks.

use bytes::Bytes;
use proptest::prelude::*;

use super::{Format, MAX_AAC_AU, MIN_PACKET, Packet, PacketizeError, Packetizer};

/// Annex-B with four-byte start codes.
fn annex_b(nals: &[Vec<u8>]) -> Bytes {
    let mut out = Vec::new();
    for nal in nals {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
    Bytes::from(out)
}

fn run(format: Format, max: usize, au: &Bytes, ts: u32) -> Vec<Packet> {
    let mut p = Packetizer::new(format, 96, 0xDEAD_BEEF, 65_534, max);
    let mut packets = Vec::new();
    p.packetize(au, ts, |packet| packets.push(packet)).unwrap();
    packets
}

/// RFC 6184 / RFC 7798 receiver: the NAL units, rebuilt from single NAL unit packets and
/// fragmentation units, checking the S/E bits.
fn reassemble(format: Format, packets: &[Packet]) -> Vec<Vec<u8>> {
    let mut nals = Vec::new();
    let mut partial: Option<Vec<u8>> = None;
    for p in packets {
        let payload: Vec<u8> = p.head()[12..]
            .iter()
            .chain(p.body().iter())
            .copied()
            .collect();
        let (fu, prefix) = match format {
            Format::H264 => (payload[0] & 0x1F == 28, 2),
            _ => ((payload[0] >> 1) & 0x3F == 49, 3),
        };
        if !fu {
            assert!(
                partial.is_none(),
                "a single NAL unit inside a fragmented one"
            );
            nals.push(payload);
            continue;
        }
        let fu_header = payload[prefix - 1];
        let (start, end) = (fu_header & 0x80 != 0, fu_header & 0x40 != 0);
        if start {
            assert!(
                partial.is_none(),
                "a start fragment inside a fragmented unit"
            );
            let header = match format {
                Format::H264 => vec![(payload[0] & 0xE0) | (fu_header & 0x1F)],
                _ => vec![(payload[0] & 0x81) | ((fu_header & 0x3F) << 1), payload[1]],
            };
            partial = Some(header);
        }
        let unit = partial.as_mut().expect("a fragment without its start");
        unit.extend_from_slice(&payload[prefix..]);
        if end {
            nals.push(partial.take().unwrap());
        }
    }
    assert!(partial.is_none(), "a fragmented unit without its end");
    nals
}

/// Header fields every packet of one access unit shares, consecutive sequence numbers from
/// `first`, the marker on the last only, and the size limit.
fn check_packets(packets: &[Packet], first: u16, ts: u32, max: usize) {
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(
            p.head()[0],
            0x80,
            "version 2, no padding, extension or CSRC"
        );
        assert_eq!(p.head()[1] & 0x7F, 96);
        assert_eq!(p.sequence(), first.wrapping_add(i as u16));
        assert_eq!(p.timestamp(), ts);
        assert_eq!(&p.head()[8..12], &0xDEAD_BEEFu32.to_be_bytes());
        assert_eq!(p.marker(), i + 1 == packets.len(), "marker on packet {i}");
        assert!(p.size() <= max, "packet {i}: {} > {max}", p.size());
        let mut wire = Vec::new();
        p.write_to(&mut wire);
        assert_eq!(wire.len(), p.size());
        assert_eq!(crate::payload(&wire).map(<[u8]>::len), Some(p.size() - 12));
    }
}

#[test]
fn small_h264_units_go_one_per_packet_without_delimiters() {
    let au = annex_b(&[
        vec![0x09, 0xF0],
        vec![0x67, 1, 2],
        vec![0x68, 3],
        vec![0x65, 4, 5, 6],
    ]);
    let packets = run(Format::H264, 1400, &au, 7);
    assert_eq!(packets.len(), 3, "the AUD is left out");
    check_packets(&packets, 65_534, 7, 1400);
    assert_eq!(packets[2].sequence(), 0, "the sequence number wraps");
    assert_eq!(
        reassemble(Format::H264, &packets),
        [vec![0x67, 1, 2], vec![0x68, 3], vec![0x65, 4, 5, 6]]
    );
    // The bodies are slices of the access unit, not copies.
    let start = au.as_ptr() as usize;
    let body = packets[2].body().as_ptr() as usize;
    assert!((start..start + au.len()).contains(&body));
}

#[test]
fn a_large_h264_unit_is_split_into_fu_a() {
    let mut idr = vec![0x65];
    idr.extend((0..5000u32).map(|i| (i % 251) as u8));
    let au = annex_b(&[idr.clone()]);
    let packets = run(Format::H264, 1200, &au, 90_000);
    // 4999 bytes after the NAL header, 1200 - 12 - 2 per fragment.
    assert_eq!(packets.len(), 5000usize.div_ceil(1186));
    check_packets(&packets, 65_534, 90_000, 1200);
    let fu = |p: &Packet| (p.head()[12], p.head()[13]);
    assert_eq!(
        fu(&packets[0]),
        (0x60 | 28, 0x80 | 5),
        "NRI kept; start bit"
    );
    assert_eq!(fu(&packets[1]), (0x60 | 28, 5));
    assert_eq!(fu(&packets[4]), (0x60 | 28, 0x40 | 5), "end bit");
    assert_eq!(reassemble(Format::H264, &packets), [idr]);
}

#[test]
fn a_large_h265_unit_is_split_into_fus() {
    // An IDR_W_RADL (19) with nuh_temporal_id_plus1 = 1.
    let mut idr = vec![19 << 1, 1];
    idr.extend((0..3000u32).map(|i| (i % 253) as u8));
    let vps = vec![32 << 1, 1, 0xAA];
    let aud = vec![35 << 1, 1, 0x50];
    let au = annex_b(&[aud, vps.clone(), idr.clone()]);
    let packets = run(Format::H265, 1000, &au, 1);
    check_packets(&packets, 65_534, 1, 1000);
    assert_eq!(packets[0].body().as_ref(), &vps[..]);
    assert_eq!(&packets[1].head()[12..15], &[49 << 1, 1, 0x80 | 19]);
    assert_eq!(reassemble(Format::H265, &packets), [vps, idr]);
}

#[test]
fn aac_units_carry_one_au_header() {
    let au = Bytes::from_static(&[0x21, 0x10, 0x05]);
    let packets = run(Format::Aac, 1400, &au, 1024);
    check_packets(&packets, 65_534, 1024, 1400);
    assert_eq!(packets.len(), 1);
    assert_eq!(&packets[0].head()[12..], &[0x00, 0x10, 0x00, 3 << 3]);
    assert_eq!(packets[0].body(), &au);

    // Too big for one packet: fragments repeat the header with the whole size.
    let big = Bytes::from(vec![7u8; 3000]);
    let packets = run(Format::Aac, 1000, &big, 0);
    check_packets(&packets, 65_534, 0, 1000);
    assert_eq!(packets.len(), 3000usize.div_ceil(1000 - 16));
    for p in &packets {
        assert_eq!(
            &p.head()[12..],
            &[0x00, 0x10, (3000u16 << 3 >> 8) as u8, (3000u16 << 3) as u8]
        );
    }
    let body: Vec<u8> = packets.iter().flat_map(|p| p.body().to_vec()).collect();
    assert_eq!(body, big);

    let mut p = Packetizer::new(Format::Aac, 97, 1, 0, 1400);
    assert_eq!(
        p.packetize(&Bytes::from(vec![0; MAX_AAC_AU + 1]), 0, |_| {}),
        Err(PacketizeError::AacTooLarge(MAX_AAC_AU + 1))
    );
    assert_eq!(p.next_sequence(), 0, "nothing sent");
}

#[test]
fn degenerate_inputs_and_limits() {
    // No NAL unit at all: nothing sent.
    assert!(run(Format::H264, 1400, &Bytes::from_static(&[0, 0, 1]), 0).is_empty());
    assert!(run(Format::H265, 1400, &Bytes::new(), 0).is_empty());
    // A tiny max_packet is raised to the minimum, and still carries everything.
    let au = annex_b(&[vec![0x41; 100]]);
    let packets = run(Format::H264, 1, &au, 0);
    check_packets(&packets, 65_534, 0, MIN_PACKET);
    assert_eq!(reassemble(Format::H264, &packets), [vec![0x41; 100]]);
    // The payload type is 7 bits.
    let p = Packetizer::new(Format::H265, 200, 9, 3, 0);
    assert_eq!(
        (p.payload_type, p.next_sequence(), p.ssrc()),
        (200 & 0x7F, 3, 9)
    );
}

fn nal_strategy(format: Format) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 3..4000).prop_map(move |mut nal| {
        // A NAL unit a real encoder could write: no start code inside (emulation
        // prevention), a valid header that is not a delimiter.
        for i in 2..nal.len() {
            if nal[i - 2] == 0 && nal[i - 1] == 0 && nal[i] <= 3 {
                nal[i] = 4;
            }
        }
        match format {
            Format::H264 => {
                // Types 1 to 23 but 9 (a delimiter, which RTP leaves out).
                let t = 1 + nal[0] % 22;
                nal[0] = (nal[0] & 0x60) | if t >= 9 { t + 1 } else { t };
            }
            _ => {
                nal[0] = (nal[0] % 32) << 1;
                nal[1] = 1;
            }
        }
        if let Some(last) = nal.last_mut() {
            *last |= 1;
        }
        nal
    })
}

proptest! {
    #[test]
    fn h264_round_trips(
        nals in proptest::collection::vec(nal_strategy(Format::H264), 1..6),
        max in MIN_PACKET..2000usize,
        ts in any::<u32>(),
    ) {
        let packets = run(Format::H264, max, &annex_b(&nals), ts);
        check_packets(&packets, 65_534, ts, max);
        prop_assert_eq!(reassemble(Format::H264, &packets), nals);
    }

    #[test]
    fn h265_round_trips(
        nals in proptest::collection::vec(nal_strategy(Format::H265), 1..6),
        max in MIN_PACKET..2000usize,
        ts in any::<u32>(),
    ) {
        let packets = run(Format::H265, max, &annex_b(&nals), ts);
        check_packets(&packets, 65_534, ts, max);
        prop_assert_eq!(reassemble(Format::H265, &packets), nals);
    }

    #[test]
    fn any_bytes_packetize_within_limits(data in proptest::collection::vec(any::<u8>(), 0..5000), max in 0..1500usize) {
        let au = Bytes::from(data);
        for format in [Format::H264, Format::H265, Format::Aac] {
            let mut p = Packetizer::new(format, 96, 0xDEAD_BEEF, 65_534, max);
            let mut packets = Vec::new();
            if p.packetize(&au, 5, |packet| packets.push(packet)).is_ok() && !packets.is_empty() {
                check_packets(&packets, 65_534, 5, max.max(MIN_PACKET));
            }
        }
    }
}
