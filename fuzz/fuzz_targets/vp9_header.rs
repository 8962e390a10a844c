//! VP9: a keyframe's uncompressed header, the `vpcC` record it implies (written and read
//! back) and the record parser on its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_media::codec::vp9;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = vp9::KeyFrame::parse(data) {
        assert!(vp9::is_keyframe(data));
        let config = key.config();
        let mut boxed = vec![1, 0, 0, 0];
        boxed.extend_from_slice(&config.to_bytes());
        assert_eq!(vp9::VpConfig::parse(&boxed), Ok(config));
        assert!(config.codec_string().starts_with("vp09."));
    }
    let _ = vp9::is_keyframe(data);
    let _ = vp9::VpConfig::parse(data);
});
