//! The play fan-out: each frame prepared once for every player, late joiners, and frames
//! of another format kept apart.

use super::*;

/// Plays `frames[from..]` to a fresh player through `fanout` (sequence headers first, as the
/// server driver does) and returns what the player decoded.
fn play_through_fanout(fanout: &mut PlayFanout, frames: &[Frame], from: usize) -> Vec<Frame> {
    let mut pair = Pair::new(ClientIntent::Play);
    pair.drive();
    assert_eq!(
        pair.server.play_format(),
        Some((fanout.stream_id(), fanout.chunk_size()))
    );
    let mut prepared = Vec::new();
    for f in &frames[from..] {
        prepared.push(fanout.prepare(f).unwrap().bytes);
    }
    let headers = fanout.sequence_headers().unwrap();
    pair.server.send_prepared(fanout, headers).unwrap();
    for bytes in prepared {
        pair.server.send_prepared(fanout, bytes).unwrap();
    }
    pair.drive();
    assert!(pair.client_error.is_none(), "{:?}", pair.client_error);
    pair.client_frames().into_iter().cloned().collect()
}

#[test]
fn fanout_prepares_each_frame_once_for_every_player() {
    for input in [h264_with_aac(origin(), 5_000), h265_frames(origin())] {
        let mut fanout = PlayFanout::new(1, ServerConfig::default().chunk_size);
        let first = play_through_fanout(&mut fanout, &input, 0);
        // The second player gets the very same bytes: no second mux.
        let cached: Vec<_> = input
            .iter()
            .map(|f| fanout.prepare(f).unwrap().bytes.as_ptr())
            .collect();
        let again: Vec<_> = input
            .iter()
            .map(|f| fanout.prepare(f).unwrap().bytes.as_ptr())
            .collect();
        assert_eq!(cached, again);
        let second = play_through_fanout(&mut fanout, &input, 0);
        let base = input[0].dts;
        let expected: Vec<_> = input
            .iter()
            .map(|f| {
                let mut f = f.clone();
                f.pts = f.pts - base;
                f.dts = f.dts - base;
                key(&f)
            })
            .collect();
        for got in [&first, &second] {
            let got: Vec<_> = got.iter().map(key).collect();
            assert_eq!(got, expected);
        }
    }
}

#[test]
fn fanout_late_joiner_gets_headers_then_shared_timestamps() {
    let input = h264_with_aac(origin(), 0);
    let mut fanout = PlayFanout::new(1, ServerConfig::default().chunk_size);
    let _ = play_through_fanout(&mut fanout, &input, 0);
    // Joins at the second keyframe (video frame 8): the sequence headers come from the
    // fan-out, the timestamps keep the shared base.
    let at = input
        .iter()
        .enumerate()
        .filter(|(_, f)| f.keyframe && f.codec == Codec::H264)
        .nth(1)
        .unwrap()
        .0;
    let late = play_through_fanout(&mut fanout, &input, at);
    assert_eq!(late.len(), input.len() - at);
    assert_eq!(late[0].dts, input[at].dts);
    assert!(late[0].keyframe);
    assert_eq!(late[0].config.as_ref().unwrap().info.width, Some(1280));
}

#[test]
fn fanout_mixes_an_old_uncached_frame_aside() {
    let input = h264_with_aac(origin(), 0);
    let mut fanout = PlayFanout::new(1, ServerConfig::default().chunk_size);
    // The shared muxer takes the first keyframe and a later frame of each track...
    fanout.prepare(&input[0]).unwrap();
    fanout.prepare(&input[10]).unwrap();
    fanout.prepare(&input[11]).unwrap();
    // ...so frames in between are older than its newest: muxed aside each time, not cached.
    let a = fanout.prepare(&input[4]).unwrap();
    let b = fanout.prepare(&input[4]).unwrap();
    assert_eq!(a.pushed, Pushed::Queued);
    assert_eq!(a.bytes, b.bytes);
    assert_ne!(a.bytes.as_ptr(), b.bytes.as_ptr());
    // A frame newer than the newest is shared again.
    let c = fanout.prepare(&input[12]).unwrap();
    assert_eq!(
        c.bytes.as_ptr(),
        fanout.prepare(&input[12]).unwrap().bytes.as_ptr()
    );
    // And a player still decodes the mixed sequence in order.
    let got = play_through_fanout(&mut fanout, &input, 0);
    assert_eq!(got.len(), input.len());
}

#[test]
fn fanout_bytes_are_refused_by_a_player_of_another_format() {
    let mut pair = Pair::new(ClientIntent::Play);
    pair.drive();
    let fanout = PlayFanout::new(1, 128);
    assert!(matches!(
        pair.server.send_prepared(&fanout, Bytes::from_static(b"x")),
        Err(Error::FanoutMismatch { .. })
    ));
}
