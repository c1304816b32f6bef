//! The one error type of the crate.

use std::path::PathBuf;
use std::time::Duration;

/// Why a hardware-in-the-loop run could not produce a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HilError {
    /// `qemu-system-arm` is not on the PATH.
    #[error(
        "qemu-system-arm not found: install it (Debian/Ubuntu: apt-get install -y qemu-system-arm)"
    )]
    QemuMissing,
    /// `probe-rs` is not on the PATH (`ember deploy`).
    #[error(
        "probe-rs not found: install it with `cargo install probe-rs-tools` (see https://probe.rs/docs/getting-started/installation/)"
    )]
    ProbeRsMissing,
    /// `probe-rs run` failed: no probe, the board did not answer, or the firmware failed.
    #[error("probe-rs failed (exit status {status}):\n{stderr}\n{hint}")]
    Probe {
        /// probe-rs's exit status.
        status: i32,
        /// The end of probe-rs's error output, its own message.
        stderr: String,
        /// What to check.
        hint: &'static str,
    },
    /// A board name that is not one of the boards this command knows.
    #[error("unknown board {name:?}; the boards are {valid}")]
    UnknownBoard {
        /// The name given.
        name: String,
        /// The valid names, comma separated.
        valid: String,
    },
    /// The model cannot fit the board; found before or while building.
    #[error("{0}")]
    DoesNotFit(String),
    /// `cargo build` of the firmware failed for another reason.
    #[error("building the firmware {board} failed:\n{stderr}")]
    Build {
        /// The board.
        board: &'static str,
        /// The end of cargo's error output.
        stderr: String,
    },
    /// QEMU ran longer than allowed and was killed.
    #[error("{board}: QEMU did not finish within {timeout:?} and was killed (firmware hung or too many samples); log so far:\n{log}")]
    Timeout {
        /// The board.
        board: &'static str,
        /// The time bound.
        timeout: Duration,
        /// The decoded log up to the kill.
        log: String,
    },
    /// The firmware ended with a non-zero status: panic, hard fault or detected error.
    #[error("{board}: firmware failed with exit status {status}: {message}")]
    Firmware {
        /// The board.
        board: &'static str,
        /// QEMU's exit status (the firmware's semihosting exit code).
        status: i32,
        /// The firmware's last error log line, or the whole log when there is none.
        message: String,
    },
    /// The results file is missing, truncated or inconsistent with the model.
    #[error("{board}: bad results file: {what}")]
    BadResults {
        /// The board.
        board: &'static str,
        /// What is wrong.
        what: String,
    },
    /// The defmt log could not be decoded with the ELF's table.
    #[error("decoding the defmt log of {elf}: {what}")]
    Log {
        /// The firmware ELF.
        elf: PathBuf,
        /// What went wrong.
        what: String,
    },
    /// The model file is not valid for the host runtime.
    #[error("model {path}: {source}")]
    Model {
        /// The model file.
        path: PathBuf,
        /// The runtime's reason.
        source: ember_runtime::Error,
    },
    /// The samples do not suit the model or could not be read.
    #[error("samples: {0}")]
    Samples(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl HilError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> HilError {
        let path = path.into();
        move |source| HilError::Io { path, source }
    }
}
