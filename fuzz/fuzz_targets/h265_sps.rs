//! H.265 parameter sets: the SPS parser, the `HEVCDecoderConfigurationRecord` (parse, write,
//! and a stable rewrite) and the parameter-set keeper.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_media::codec::{ParamSets, h265};

fuzz_target!(|data: &[u8]| {
    let _ = h265::Sps::parse(data);
    let mut sps = data.to_vec();
    if let Some(header) = sps.first_mut() {
        *header = 0x42;
    }
    let _ = h265::Sps::parse(&sps);
    let _ = h265::vps_id(data);
    let _ = h265::sps_id(data);
    let _ = h265::pps_id(data);

    if let Ok(config) = h265::HevcConfig::parse(data) {
        let bytes = config
            .to_vec()
            .expect("a parsed record fits its count fields");
        let again = h265::HevcConfig::parse(&bytes).expect("a written record parses");
        assert_eq!(again.to_vec().as_ref(), Ok(&bytes));
    }

    let mut keeper = ParamSets::h265();
    let _ = keeper.observe(data.to_vec().into());
    let _ = keeper.track_info();
});
