//! A property: masking a push URL never leaves its stream key in clear, whatever the shape
//! around it (trailing `/`, `//`, multi-segment names, query values). The input picks the
//! shape and the key; the key is 8+ characters of [A-Za-z0-9] so that it cannot occur in the
//! fixed parts by chance.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_domain::redact::mask_push_url;

fuzz_target!(|data: &[u8]| {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let key: String = rest
        .iter()
        .take(24)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    if key.len() < 8 {
        return;
    }
    let scheme = if shape & 1 == 0 { "rtmp" } else { "rtmps" };
    let url = match (shape >> 1) % 6 {
        0 => format!("{scheme}://live.example.com/app/{key}"),
        1 => format!("{scheme}://live.example.com/app/{key}/"),
        2 => format!("{scheme}://live.example.com/app//{key}"),
        3 => format!("{scheme}://live.example.com:1935/app/x/{key}"),
        4 => format!("{scheme}://live.example.com/app/name?streamkey={key}"),
        _ => format!("{scheme}://live.example.com/app/name?a=1&access_token={key}"),
    };
    let masked = mask_push_url(&url);
    assert!(!masked.contains(&key), "{url} masked as {masked}");
});
