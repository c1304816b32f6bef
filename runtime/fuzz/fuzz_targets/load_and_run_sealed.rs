//! Like `load_and_run`, but first rewrites the header's length and CRC to match the bytes, so
//! that mutations get past the checksum and exercise the decoder, the validator and the
//! engine. `cargo +nightly fuzz run load_and_run_sealed --fuzz-dir fuzz`
#![no_main]

mod run_model;

use ember_runtime::format::HEADER_LEN;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < HEADER_LEN {
        return;
    }
    let mut bytes = data.to_vec();
    let payload_len = (bytes.len() - HEADER_LEN) as u32;
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&bytes[HEADER_LEN..]);
    bytes[0..4].copy_from_slice(b"EMBR");
    bytes[4..8].copy_from_slice(&[1, 0, 0, 0]);
    bytes[8..12].copy_from_slice(&payload_len.to_le_bytes());
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    run_model::load_and_run(&bytes, data);
});
