//! H.264 parameter sets and framing: the SPS parser, the `AVCDecoderConfigurationRecord`
//! (parse, write, parse back), AVCC → Annex-B conversion and the parameter-set keeper.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_media::codec::{LengthSize, ParamSets, h264, nal};

fuzz_target!(|data: &[u8]| {
    let _ = h264::Sps::parse(data);
    let mut sps = data.to_vec();
    if let Some(header) = sps.first_mut() {
        *header = 0x67;
    }
    let _ = h264::Sps::parse(&sps);
    let _ = h264::sps_id(data);
    let _ = h264::pps_id(data);

    if let Ok(config) = h264::AvcConfig::parse(data) {
        let bytes = config
            .to_vec()
            .expect("a parsed record fits its count fields");
        assert_eq!(h264::AvcConfig::parse(&bytes).as_ref(), Ok(&config));
    }

    let mut out = Vec::new();
    let _ = nal::avcc_to_annex_b(data, LengthSize::FOUR, &mut out);
    let _ = nal::annex_b_to_avcc(data, LengthSize::FOUR, &mut out);
    let _ = nal::rbsp(data);

    let mut keeper = ParamSets::h264();
    let _ = keeper.observe(data.to_vec().into());
    let _ = keeper.track_info();
});
