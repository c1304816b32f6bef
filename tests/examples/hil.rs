//! Runs one HIL measurement and prints its report as JSON: the command behind the numbers
//! in `firmware/BENCHMARKS-firmware.md`.
//!
//! ```text
//! cargo run --release -p ember-hil --example hil -- BOARD MODEL [N_MNIST_TEST_IMAGES] [--ann-baseline] [--timesteps T]
//! ```
//!
//! With N, the first N images of `data/mnist-small`; without, the runtime's four golden
//! 8x8 inputs (`runtime/tests/golden/inputs-8x8.bin`). `--ann-baseline` runs the model's
//! dense int8 ANN baseline instead of the SNN; `--timesteps T` the SNN for T timesteps.

use ember_hil::{Board, Options, Samples};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut options = Options::default();
    if let Some(i) = args.iter().position(|a| a == "--ann-baseline") {
        args.remove(i);
        options.ann_baseline = true;
    }
    if let Some(i) = args.iter().position(|a| a == "--timesteps") {
        args.remove(i);
        options.timesteps = Some(args.remove(i).parse().expect("T is a number"));
    }
    let (Some(board), Some(model)) = (args.first(), args.get(1)) else {
        eprintln!(
            "usage: hil BOARD MODEL [N_MNIST_TEST_IMAGES]; boards: {:?}",
            Board::ALL.map(Board::name)
        );
        std::process::exit(2);
    };
    let board = Board::from_name(board).unwrap_or_else(|| panic!("unknown board {board}"));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let samples = match args.get(2) {
        Some(n) => Samples::mnist_test(
            &repo.join("data/mnist-small"),
            n.parse().expect("N is a number"),
        ),
        None => {
            let data = std::fs::read(repo.join("runtime/tests/golden/inputs-8x8.bin"))
                .expect("golden inputs");
            Samples::new(64, data, None)
        }
    };
    let timeout = Duration::from_secs(600);
    let report = samples
        .and_then(|s| ember_hil::run_with(board, &PathBuf::from(model), &s, &options, timeout));
    match report {
        Ok(r) => println!("{}", serde_json::to_string_pretty(&r).unwrap()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
