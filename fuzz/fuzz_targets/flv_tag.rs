//! FLV tags as RTMP carries them: a run of (kind, timestamp, length, body) records cut from the
//! input into one demuxer, so state (sequence headers, enhanced RTMP fourcc) carries over.
//! Any panic is a bug.
#![no_main]

use std::time::Instant;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tributary_rtmp::RtmpTime;
use tributary_rtmp::flv::{FlvDemuxer, TagKind};

fuzz_target!(|data: &[u8]| {
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut demuxer = FlvDemuxer::new();
    let mut rest = data;
    while let [kind, t0, t1, t2, t3, len, tail @ ..] = rest {
        let kind = match kind % 3 {
            0 => TagKind::Video,
            1 => TagKind::Audio,
            _ => TagKind::Script,
        };
        let timestamp = RtmpTime(u32::from_be_bytes([*t0, *t1, *t2, *t3]));
        let len = usize::from(*len).min(tail.len());
        let (body, after) = tail.split_at(len);
        let _ = demuxer.push(now, kind, timestamp, BytesMut::from(body));
        rest = after;
    }
});
