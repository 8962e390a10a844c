//! AV1: OBU framing, the sequence header parser, the `AV1CodecConfigurationRecord` (parse,
//! write, and a stable rewrite) and the keyframe test of a temporal unit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_media::codec::av1;

fuzz_target!(|data: &[u8]| {
    let total: usize = av1::obus(data).map(|o| o.data.len()).sum();
    assert!(total <= data.len(), "OBUs cover at most the input");
    let _ = av1::SequenceHeader::parse(data);
    let _ = av1::is_keyframe(data);
    if let Ok((header, obu)) = av1::SequenceHeader::find(data) {
        let record = header.config_record(obu);
        let (again, again_obu) =
            av1::SequenceHeader::from_config_record(&record).expect("a written record parses");
        assert_eq!((&again, again_obu), (&header, obu));
        assert!(header.codec_string().starts_with("av01."));
    }
    let _ = av1::SequenceHeader::from_config_record(data);
});
