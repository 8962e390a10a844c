//! AAC: the AudioSpecificConfig parser (parse, write, parse back) and ADTS headers and frames.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_media::codec::aac;

fuzz_target!(|data: &[u8]| {
    if let Ok(asc) = aac::AudioSpecificConfig::parse(data) {
        let _ = asc.track_info();
        let _ = asc.adts_header(data.len());
        if let Ok(bytes) = asc.to_vec() {
            assert_eq!(aac::AudioSpecificConfig::parse(&bytes), Ok(asc));
        }
    }

    if let Ok(header) = aac::AdtsHeader::parse(data) {
        let mut bytes = Vec::new();
        if header.write(&mut bytes).is_ok() {
            assert_eq!(aac::AdtsHeader::parse(&bytes), Ok(header));
        }
    }
    for frame in aac::adts_frames(data) {
        if frame.is_err() {
            break;
        }
    }
});
