//! A property: the media routes' `Range` header (`GET /{code}/seg_….ts`, any HTTP client) on
//! arbitrary text and body sizes. The first four bytes are the body's size (big-endian), the
//! rest the header's value. A range the parser accepts is non-empty and lies inside the body,
//! so serving it never slices out of bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_domain::http_range;

fuzz_target!(|data: &[u8]| {
    let Some((size, value)) = data.split_first_chunk::<4>() else {
        return;
    };
    let Ok(value) = std::str::from_utf8(value) else {
        return;
    };
    let total = u32::from_be_bytes(*size) as usize;
    if let Some(range) = http_range::parse(value, total) {
        assert!(range.start() <= range.end(), "{value:?} of {total}: {range:?} is empty");
        assert!(*range.end() < total, "{value:?} of {total}: {range:?} ends past the body");
    }
});
