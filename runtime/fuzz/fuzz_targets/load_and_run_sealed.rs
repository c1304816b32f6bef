//! Like `load_and_run`, but first rewrites the header's length and CRC to match the bytes, so
//! that mutations get past the checksum and exercise the decoder, the validator and the
//! engine. `cargo +nightly fuzz run load_and_run_sealed --fuzz-dir fuzz`
#![no_main]

use ember_runtime::format::HEADER_LEN;
use ember_runtime::{Engine, Model};
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
    let Ok(model) = Model::from_bytes(&bytes) else { return };
    if model.arena_bytes() > 1 << 20 || model.input_len() > 1 << 16 {
        return;
    }
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut engine = Engine::new(&model, &mut arena).expect("arena of arena_bytes() is enough");
    let input: Vec<u8> = data.iter().cycle().take(model.input_len()).copied().collect();
    let _ = engine.run_for(&input, model.timesteps().min(8));
});
