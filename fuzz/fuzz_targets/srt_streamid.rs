//! SRT `streamid`s as callers send them in their handshake (anyone who reaches the SRT
//! listener): arbitrary text through the parser. Any panic is a bug; a parsed request names a
//! non-empty path with its query split off, and its `Debug` masks the key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_domain::streamid::SrtStreamId;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(id) = text.parse::<SrtStreamId>() else {
        return;
    };
    assert!(!id.path.is_empty(), "{text:?}: empty path");
    assert!(!id.path.contains('?'), "{text:?}: the query stayed in the path");
    assert!(!id.path.starts_with('/') && !id.path.ends_with('/'), "{text:?}: slashes kept");
    if id.key.is_some() {
        assert!(format!("{id:?}").contains("key: Some(\"****\")"), "{text:?}: key shown");
    }
});
