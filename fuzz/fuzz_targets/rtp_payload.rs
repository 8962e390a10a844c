//! A property: the RTP header strip of the UDP input (`udp://…`, RTP/TS datagrams) on
//! arbitrary datagrams. Whatever it returns lies inside the datagram, after the fixed header
//! and the CSRCs the first byte counts; it is a suffix of the datagram when the padding bit is
//! clear, and stops exactly where the padding its last byte counts begins when it is set.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_rtp::{HEADER_LEN, payload};

fuzz_target!(|datagram: &[u8]| {
    let Some(payload) = payload(datagram) else {
        return;
    };
    let b0 = datagram[0];
    assert_eq!(b0 >> 6, 2, "only RTP version 2 has a payload");
    let start = (payload.as_ptr() as usize)
        .checked_sub(datagram.as_ptr() as usize)
        .expect("the payload starts inside the datagram");
    let end = start + payload.len();
    assert!(end <= datagram.len(), "the payload ends inside the datagram");
    assert!(start >= HEADER_LEN + 4 * usize::from(b0 & 0x0F));
    if b0 & 0x20 == 0 {
        assert_eq!(end, datagram.len(), "without padding the payload is a suffix");
    } else {
        assert_eq!(datagram.len() - end, usize::from(datagram[datagram.len() - 1]));
    }
});
