//! Stream records at the API edge: arbitrary JSON decoded strictly and parsed into a spec
//! (every SPEC rule, the transcoder's ladder and watermark included), then diffed and planned against a base stream. Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_domain::Stream;
use tributary_domain::diff::compute_diff;
use tributary_domain::plan::plan;
use tributary_domain::validate::{Support, decode_stream};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let code = "fuzz".parse().unwrap();
    let support = Support {
        hls: true,
        rtmp: true,
        push: true,
        transcoder: true,
        ..Support::default()
    };
    let Ok((spec, _warnings)) = decode_stream(&code, body, &support) else {
        return;
    };
    let base = Stream::new(code);
    let new = spec.stream();
    let diff = compute_diff(&base, new);
    let _ = plan(&base, new, &diff);
});
