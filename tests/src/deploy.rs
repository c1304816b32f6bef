//! `ember deploy`: the real boards. Builds a board's firmware with a model and a few samples
//! bundled into flash (the `standalone` feature: `probe-rs run` serves no semihosting
//! files, so the samples cannot come from the host as under QEMU), then flashes and runs
//! it with the `probe-rs` command-line tool, whose output shows the decoded defmt log (over
//! RTT): one line per sample with its class, label and ticks, then accuracy and the mean
//! time per inference.
//!
//! ```text
//! probe-rs run --chip CHIP [--probe SELECTOR] FIRMWARE.elf
//! ```

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::firmware::{build_crate_with, check_fit_named};
use crate::{Footprint, HilError, Samples};

/// A real board: its crate in `boards/`, its rustc target and its probe-rs chip name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealBoard {
    /// The folder name in `boards/` and the `--board` value.
    pub name: &'static str,
    /// The cargo package of the board crate.
    pub package: &'static str,
    /// The rustc target.
    pub target: &'static str,
    /// The chip name `probe-rs run --chip` takes.
    pub chip: &'static str,
}

/// The real boards `ember deploy` knows.
pub const REAL_BOARDS: [RealBoard; 3] = [
    RealBoard {
        name: "nrf52840-dk",
        package: "board-nrf52840-dk",
        target: "thumbv7em-none-eabihf",
        chip: "nRF52840_xxAA",
    },
    RealBoard {
        name: "nucleo-f411re",
        package: "board-nucleo-f411re",
        target: "thumbv7em-none-eabihf",
        chip: "STM32F411RETx",
    },
    RealBoard {
        name: "rp2040-pico",
        package: "board-rp2040-pico",
        target: "thumbv6m-none-eabi",
        chip: "RP2040",
    },
];

impl RealBoard {
    /// The board called `name`; the error lists the valid names.
    pub fn from_name(name: &str) -> Result<RealBoard, HilError> {
        REAL_BOARDS
            .iter()
            .copied()
            .find(|b| b.name == name)
            .ok_or_else(|| HilError::UnknownBoard {
                name: name.to_string(),
                valid: REAL_BOARDS.map(|b| b.name).join(", "),
            })
    }
}

/// A firmware built for a real board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The board.
    pub board: RealBoard,
    /// The ELF to flash.
    pub elf: PathBuf,
    /// Its flash and RAM bytes.
    pub footprint: Footprint,
    /// Samples bundled into it.
    pub samples: usize,
}

/// Where [`build`] puts the ELF unless told otherwise:
/// `target/ember-deploy/<board>-<model stem>.elf` in the repository.
pub fn default_elf_path(board: &RealBoard, model: &Path) -> PathBuf {
    let stem = model.file_stem().unwrap_or_default().to_string_lossy();
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/ember-deploy")
        .join(format!("{}-{stem}.elf", board.name))
}

/// Builds the standalone firmware of `board` with `model` and `samples` bundled, and
/// copies the ELF to `elf` (or [`default_elf_path`]). A model that does not fit gives
/// [`HilError::DoesNotFit`] with the sizes.
pub fn build(
    board: &RealBoard,
    model: &Path,
    samples: &Samples,
    elf: Option<&Path>,
) -> Result<Deployment, HilError> {
    let model = model.canonicalize().map_err(HilError::io(model))?;
    check_fit_named(board.name, &model, false)?;
    let elf = elf.map_or_else(|| default_elf_path(board, &model), Path::to_path_buf);
    let dir = elf
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    std::fs::create_dir_all(&dir).map_err(HilError::io(&dir))?;
    let dir = dir.canonicalize().map_err(HilError::io(&dir))?;
    let elf = dir.join(elf.file_name().unwrap_or("firmware.elf".as_ref()));
    let stem = elf.file_stem().unwrap_or_default().to_string_lossy();
    let samples_path = dir.join(format!("{stem}.samples.bin"));
    std::fs::write(&samples_path, samples.bytes()).map_err(HilError::io(&samples_path))?;
    let labels_path = dir.join(format!("{stem}.labels.bin"));
    let mut env = vec![("EMBER_SAMPLES", samples_path.as_path())];
    if let Some(labels) = samples.labels() {
        std::fs::write(&labels_path, labels).map_err(HilError::io(&labels_path))?;
        env.push(("EMBER_LABELS", labels_path.as_path()));
    }
    let built = build_crate_with(board.package, board.target, &model, &["standalone"], &env)?;
    std::fs::copy(&built, &elf).map_err(HilError::io(&built))?;
    let footprint = Footprint::of_elf(&elf)?;
    Ok(Deployment {
        board: *board,
        elf,
        footprint,
        samples: samples.len(),
    })
}

/// The probe-rs binary.
pub const PROBE_RS: &str = "probe-rs";

/// `Ok` when `probe-rs` can be started, [`HilError::ProbeRsMissing`] when it is not on the
/// PATH.
pub fn probe_rs_available() -> Result<(), HilError> {
    Command::new(PROBE_RS)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|_| ())
        .map_err(probe_rs_spawn_error)
}

/// Flashes `elf` and runs it with `probe-rs run --chip CHIP [--probe SELECTOR] ELF`.
/// probe-rs's output (flashing progress, the decoded log) goes to this process's stdout and
/// stderr as it comes; a failure returns [`HilError::Probe`] with the end of its error
/// output and what to check.
pub fn flash_and_run(elf: &Path, chip: &str, probe: Option<&str>) -> Result<(), HilError> {
    let mut cmd = Command::new(PROBE_RS);
    cmd.args(["run", "--chip", chip]);
    if let Some(p) = probe {
        cmd.args(["--probe", p]);
    }
    let mut child = cmd
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(probe_rs_spawn_error)?;
    // Pass probe-rs's stderr through as it comes, and keep it for the error.
    let mut pipe = child.stderr.take();
    let tee = std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        while let Some(Ok(n @ 1..)) = pipe.as_mut().map(|p| p.read(&mut buf)) {
            let _ = std::io::stderr().write_all(&buf[..n]);
            kept.extend_from_slice(&buf[..n]);
        }
        kept
    });
    let status = child.wait().map_err(HilError::io(PROBE_RS))?;
    let stderr = String::from_utf8_lossy(&tee.join().unwrap_or_default()).into_owned();
    if status.success() {
        return Ok(());
    }
    Err(probe_error(status.code().unwrap_or(-1), &stderr))
}

/// A failed `probe-rs run`: its message (the last lines of its error output) and a sentence
/// on what to check.
fn probe_error(status: i32, stderr: &str) -> HilError {
    let lower = stderr.to_lowercase();
    let hint = if lower.contains("no probe") || lower.contains("no connected probe") {
        "No debug probe was found: connect the board's debug probe over USB (on Linux, install \
         probe-rs's udev rules), check that `probe-rs list` shows it, and pick one with --probe \
         VID:PID[:SERIAL] if there are several."
    } else if lower.contains("more than one probe") || lower.contains("multiple probes") {
        "Several probes are attached: choose one with --probe VID:PID[:SERIAL] (`probe-rs list` \
         shows them)."
    } else {
        "The board was not flashed or run to the end: check that it is powered and connected, \
         that --chip names its chip, and the firmware's log above."
    };
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    HilError::Probe {
        status,
        stderr: lines[lines.len().saturating_sub(20)..].join("\n"),
        hint,
    }
}

/// A missing probe-rs is its own error, with the install command.
fn probe_rs_spawn_error(e: std::io::Error) -> HilError {
    match e.kind() {
        std::io::ErrorKind::NotFound => HilError::ProbeRsMissing,
        _ => HilError::Io {
            path: PROBE_RS.into(),
            source: e,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_board_lists_the_valid_ones() {
        let e = RealBoard::from_name("arduino-uno").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown board \"arduino-uno\"; the boards are nrf52840-dk, nucleo-f411re, rp2040-pico"
        );
        assert_eq!(RealBoard::from_name("rp2040-pico").unwrap().chip, "RP2040");
    }

    #[test]
    fn missing_probe_rs_says_how_to_install_it() {
        let e = probe_rs_spawn_error(std::io::Error::from(std::io::ErrorKind::NotFound));
        let s = e.to_string();
        assert!(
            s.contains("cargo install probe-rs-tools") && s.contains("https://probe.rs"),
            "{s}"
        );
    }

    #[test]
    fn no_probe_passes_probe_rs_message_through() {
        let e = probe_error(1, "Error: No connected probes were found.\n");
        let s = e.to_string();
        assert!(
            s.contains("Error: No connected probes were found.")
                && s.contains("No debug probe was found"),
            "{s}"
        );
    }
}
