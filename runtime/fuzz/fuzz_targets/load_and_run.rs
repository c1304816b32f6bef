//! Loads arbitrary bytes as a model; when they load, runs one inference on an input derived
//! from the same bytes. Nothing may panic: every failure must be a typed `Error`.
//!
//! `cd runtime && cargo +nightly fuzz run load_and_run -- -max_total_time=600`
#![no_main]

use ember_runtime::{Engine, Model};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = Model::from_bytes(data) else { return };
    // Keep every run fast: skip models whose state would not fit a microcontroller anyway.
    if model.arena_bytes() > 1 << 20 || model.input_len() > 1 << 16 {
        return;
    }
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut engine = Engine::new(&model, &mut arena).expect("arena of arena_bytes() is enough");
    let input: Vec<u8> = data.iter().cycle().take(model.input_len()).copied().collect();
    let _ = engine.run_for(&input, model.timesteps().min(8));
});
