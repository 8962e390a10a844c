//! Frame builders shared by the suites.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tributary_hub::{BufferId, Delivery, Subscriber, TryRecvError};
use tributary_media::{Codec, Frame, SessionId, TrackId, Ts90};

/// A fixed origin for arrival instants; tests only compare instants derived from it.
pub(crate) fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

pub(crate) fn id(code: &str) -> BufferId {
    BufferId::Stream(code.parse().unwrap())
}

/// A video frame whose DTS (in ms) doubles as its identity.
pub(crate) fn video(n: i64, keyframe: bool) -> Frame {
    frame(Codec::H264, 0, n, keyframe)
}

/// An audio frame (always a keyframe) whose DTS (in ms) doubles as its identity.
pub(crate) fn audio(n: i64) -> Frame {
    frame(Codec::Aac, 1, n, true)
}

pub(crate) fn frame(codec: Codec, track: u16, n: i64, keyframe: bool) -> Frame {
    Frame {
        track: TrackId(track),
        codec,
        pts: Ts90::from_millis(n),
        dts: Ts90::from_millis(n),
        keyframe,
        session: SessionId(0),
        arrival: origin() + Duration::from_millis(n.unsigned_abs()),
        payload: Bytes::from_static(b"\0\0\0\x01payload"),
        config: None,
    }
}

/// The identity given by [`video`] / [`audio`].
pub(crate) fn n(frame: &Frame) -> i64 {
    frame.dts.as_millis()
}

/// Reads every delivery ready now.
pub(crate) fn drain(sub: &mut Subscriber) -> Vec<Delivery> {
    let mut out = Vec::new();
    loop {
        match sub.try_recv() {
            Ok(delivery) => out.push(delivery),
            Err(TryRecvError::Empty | TryRecvError::Closed) => return out,
        }
    }
}

/// The frames among `deliveries`.
pub(crate) fn frames(deliveries: &[Delivery]) -> Vec<Frame> {
    deliveries
        .iter()
        .filter_map(|d| match d {
            Delivery::Frame(frame) => Some(frame.clone()),
            Delivery::Lagged { .. } => None,
        })
        .collect()
}
