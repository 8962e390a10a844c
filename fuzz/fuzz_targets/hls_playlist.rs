//! HLS playlists as a pull reads them: m3u8-rs parses arbitrary bytes; a media playlist's
//! numbers then go through the pull's reload and sequence arithmetic, which must not overflow
//! on any value an origin writes (issue 13: `TARGETDURATION:18446744073709551615` once
//! panicked the worker).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use m3u8_rs::Playlist;

fuzz_target!(|data: &[u8]| {
    let Ok(Playlist::MediaPlaylist(media)) = m3u8_rs::parse_playlist_res(data) else {
        return;
    };
    // The same clamps as `ingest/src/hls.rs`.
    let max_poll = Duration::from_secs(10);
    let target = Duration::from_secs(media.target_duration.min(max_poll.as_secs() * 2));
    let poll = (target / 2).clamp(Duration::from_millis(500), max_poll);
    assert!(poll <= max_poll);
    for (i, segment) in media.segments.iter().enumerate() {
        let _ = media.media_sequence.checked_add(i as u64);
        let _ = segment.duration.is_finite();
    }
});
