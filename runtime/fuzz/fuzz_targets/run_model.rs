//! Shared by the fuzz targets: load `bytes` as a model and, when it loads, run one inference
//! on an input cut from `seed_input`. Nothing may panic.

use ember_runtime::{Engine, Model};

pub fn load_and_run(bytes: &[u8], seed_input: &[u8]) {
    let Ok(model) = Model::from_bytes(bytes) else {
        return;
    };
    // Keep every run fast: skip models whose state would not fit a microcontroller anyway.
    if model.arena_bytes() > 1 << 20 || model.input_len() > 1 << 16 {
        return;
    }
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut engine = Engine::new(&model, &mut arena).expect("arena of arena_bytes() is enough");
    let input: Vec<u8> = seed_input
        .iter()
        .cycle()
        .take(model.input_len())
        .copied()
        .collect();
    let _ = engine.run_for(&input, model.timesteps().min(8));
}
