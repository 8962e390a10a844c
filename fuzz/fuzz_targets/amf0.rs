//! AMF0: arbitrary bytes decoded; whatever decodes is written back and must decode to the
//! same number of values. (AMF3 is not implemented: clients that send it get an error.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_rtmp::amf0::Amf0;

fuzz_target!(|data: &[u8]| {
    let Ok(values) = Amf0::decode_all(data) else {
        return;
    };
    let mut out = Vec::new();
    for value in &values {
        value.write(&mut out);
        let _ = value.as_str();
        let _ = value.as_number();
        let _ = value.property("code");
    }
    let again = Amf0::decode_all(&out).expect("what we write decodes");
    assert_eq!(again.len(), values.len());
});
