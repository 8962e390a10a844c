//! Input URLs at the API edge: arbitrary text (and a `params` entry) through the one
//! classifier and every kind's option parser, and through the masking of logs. Any panic is a
//! bug; a parsed input's masked URL must still parse as text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_domain::Input;
use tributary_domain::protocol::DetectContext;
use tributary_domain::redact::{mask_push_url, mask_url};
use tributary_domain::spec::ParsedInput;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A NUL splits the URL from one `key=value` param.
    let (url, param) = text.split_once('\0').unwrap_or((text, ""));
    let mut input = Input::new(url, 0);
    if let Some((key, value)) = param.split_once('=') {
        input.params.insert(key.to_owned(), value.to_owned());
    }
    let code = "fuzz".parse().unwrap();
    let ctx = DetectContext {
        rtmp_port: Some(1935),
        own_code: Some(&code),
    };
    let _ = ParsedInput::parse(&input, ctx);
    let _ = mask_url(url);
    let _ = mask_push_url(url);
});
