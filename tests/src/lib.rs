//! # ember-hil
//!
//! Hardware in the loop for Ember, on emulated Cortex-M boards: build the firmware
//! (`firmware/` + `boards/<name>/`) with a model, run it under `qemu-system-arm` on a set of
//! samples, and compare every result with the host runtime's run of the same model. The
//! real boards are built and flashed with probe-rs by [`deploy`] (`ember deploy`).
//!
//! ```no_run
//! use ember_hil::{Board, Samples};
//! use std::{path::Path, time::Duration};
//!
//! let samples = Samples::mnist_test(Path::new("data/mnist-small"), 200)?;
//! let report = ember_hil::run(Board::QemuMps2An386, Path::new("models/ref-mlp.ember"), &samples, Duration::from_secs(60))?;
//! assert_eq!(report.agreement, 1.0);
//! println!("{} instructions per inference", report.instructions_per_inference);
//! # Ok::<(), ember_hil::HilError>(())
//! ```
//!
//! The steps are public too ([`build`], [`qemu::run`], [`compare`]) so that a caller can
//! build once and run many sample sets.
#![deny(missing_docs)]

/// The dense int8 ANN baseline: the firmware's own `ann.rs`, compiled for the host, so that
/// the board's results can be checked bit for bit.
#[path = "../../firmware/app/src/ann.rs"]
pub mod ann;
mod board;
mod compare;
pub mod deploy;
mod elf;
mod error;
mod firmware;
pub mod log;
pub mod qemu;
mod results;
mod samples;

pub use board::Board;
pub use compare::{compare, compare_with, HilReport};
pub use elf::Footprint;
pub use error::HilError;
pub use firmware::{build, build_crate, build_crate_with, build_with, Firmware};
pub use results::{BoardResult, Results};
pub use samples::Samples;

use std::path::Path;
use std::time::Duration;

/// Builds the firmware for `board` with `model`, runs it on `samples` under QEMU (killed
/// after `timeout`), and compares its results with the host runtime's.
pub fn run(
    board: Board,
    model: &Path,
    samples: &Samples,
    timeout: Duration,
) -> Result<HilReport, HilError> {
    run_with(board, model, samples, &Options::default(), timeout)
}

/// What a HIL run computes, where it differs from the model file's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Timesteps per inference instead of the model file's, on the board and on the host
    /// alike (the firmware gets it on its command line). Not for the ANN baseline.
    pub timesteps: Option<u16>,
    /// Run the model's layers as the dense int8 ANN baseline ([`ann`], firmware feature
    /// `ann-baseline`) instead of the SNN; the host runs the same code.
    pub ann_baseline: bool,
}

/// [`run`] with `options`.
pub fn run_with(
    board: Board,
    model: &Path,
    samples: &Samples,
    options: &Options,
    timeout: Duration,
) -> Result<HilReport, HilError> {
    let firmware = build_with(board, model, options)?;
    let run = qemu::run_options(&firmware, samples, options, timeout)?;
    compare_with(&firmware, model, samples, &run, options)
}
