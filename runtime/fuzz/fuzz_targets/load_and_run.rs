//! Loads arbitrary bytes as a model; when they load, runs one inference on an input derived
//! from the same bytes. Nothing may panic: every failure must be a typed `Error`.
//!
//! `cd runtime && cargo +nightly fuzz run load_and_run --fuzz-dir fuzz -- -max_total_time=600`
#![no_main]

mod run_model;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| run_model::load_and_run(data, data));
