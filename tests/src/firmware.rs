//! Building the firmware for a board with a model: `cargo build --release` in the firmware
//! workspace (its own `.cargo` settings and target directory), `EMBER_MODEL` naming the model.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::{Board, HilError, Options};

/// A built firmware image.
#[derive(Debug, Clone)]
pub struct Firmware {
    /// The board it was built for.
    pub board: Board,
    /// Built with the `ann-baseline` feature: runs the dense int8 ANN, not the SNN.
    pub ann_baseline: bool,
    /// The ELF, copied out of cargo's target directory so that a later build with another
    /// model does not replace it.
    pub elf: PathBuf,
}

/// The firmware workspace (`firmware/` in the repository).
pub fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware")
}

/// Variables of an enclosing cargo (e.g. `cargo test` with `CARGO_TARGET_DIR`) that must
/// not leak into the firmware build.
const CLEARED_ENV: [&str; 6] = [
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_MAKEFLAGS",
];

/// Builds the firmware of `board` with `model` bundled (release profile, defmt at info).
/// A model that does not fit gives [`HilError::DoesNotFit`] with the sentence from the
/// board's build script or linker check.
pub fn build(board: Board, model: &Path) -> Result<Firmware, HilError> {
    build_with(board, model, &Options::default())
}

/// [`build`] for a run with `options`: with `ann_baseline`, the firmware of the dense int8
/// ANN baseline (feature `ann-baseline`), whose ELF ends in `-ann.elf`.
pub fn build_with(board: Board, model: &Path, options: &Options) -> Result<Firmware, HilError> {
    let ann = options.ann_baseline;
    let model = model.canonicalize().map_err(HilError::io(model))?;
    check_fit_named(board.name(), &model, ann)?;
    // One build and copy at a time in this process: cargo locks the target directory, but
    // the copy must see the ELF of its own build, not of a build another thread started since.
    static BUILDING: Mutex<()> = Mutex::new(());
    let _guard = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let features: &[&str] = if ann { &["ann-baseline"] } else { &[] };
    let built = build_crate_with(board.package(), board.target(), &model, features, &[])?;
    let stem = model.file_stem().unwrap_or_default().to_string_lossy();
    let dir = firmware_dir().join("target/ember-hil");
    let suffix = if ann { "-ann" } else { "" };
    let elf = dir.join(format!("{}-{stem}{suffix}.elf", board.name()));
    std::fs::create_dir_all(&dir).map_err(HilError::io(&dir))?;
    std::fs::copy(&built, &elf).map_err(HilError::io(&built))?;
    Ok(Firmware {
        board,
        ann_baseline: ann,
        elf,
    })
}

/// Builds any board crate of the firmware workspace (`package`, e.g. `board-nrf52840-dk`)
/// for `target` with `model` bundled, and returns the ELF in cargo's target directory. The
/// real boards are only built this way; [`build`] adds the fit check and the copy.
pub fn build_crate(package: &'static str, target: &str, model: &Path) -> Result<PathBuf, HilError> {
    build_crate_with(package, target, model, &[], &[])
}

/// [`build_crate`] with cargo `features` of the board crate (e.g. `standalone`) and extra
/// environment variables for the build scripts (e.g. `EMBER_SAMPLES`).
pub fn build_crate_with(
    package: &'static str,
    target: &str,
    model: &Path,
    features: &[&str],
    env: &[(&str, &Path)],
) -> Result<PathBuf, HilError> {
    let dir = firmware_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&dir)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            package,
            "--target",
            target,
        ])
        .env("EMBER_MODEL", model)
        .env("DEFMT_LOG", "info");
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    let out = cmd.output().map_err(HilError::io(&dir))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(build_error(package, &stderr));
    }
    Ok(dir
        .join("target")
        .join(target)
        .join("release")
        .join(package))
}

/// The board build script's check, run here first: a model that cannot fit the board crate
/// in `boards/<name>` is refused in milliseconds, before cargo builds anything. With `ann`,
/// the RAM is the ANN baseline's buffers instead of the SNN's arena.
pub(crate) fn check_fit_named(name: &'static str, model: &Path, ann: bool) -> Result<(), HilError> {
    let bytes = std::fs::read(model).map_err(HilError::io(model))?;
    let loaded = ember_runtime::Model::from_bytes(&bytes).map_err(|source| HilError::Model {
        path: model.into(),
        source,
    })?;
    let memory_x = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../boards")
        .join(name)
        .join("memory.x");
    let text = std::fs::read_to_string(&memory_x).map_err(HilError::io(&memory_x))?;
    let memory = ember_board_build::parse_memory(&text).map_err(|what| HilError::Build {
        board: name,
        stderr: what,
    })?;
    let arena = if ann {
        crate::ann::sizes(&loaded)
            .map_err(|why| HilError::Build {
                board: name,
                stderr: format!("{}: no dense ANN baseline: {why}", model.display()),
            })?
            .bytes()
    } else {
        loaded.arena_bytes()
    };
    let sizes = ember_board_build::ModelSizes {
        file: bytes.len() as u64,
        arena: arena as u64,
    };
    ember_board_build::check_fit(name, memory, &model.display().to_string(), sizes)
        .map_err(HilError::DoesNotFit)
}

/// The fit sentence from a failed build's output, or the tail of the output.
fn build_error(package: &'static str, stderr: &str) -> HilError {
    let fit = stderr.lines().find_map(|l| {
        let l = l.trim();
        if l.contains(" needs ") && l.contains(", the board ") {
            Some(l.to_string())
        } else if let Some(i) = l.find("ember: ") {
            Some(l[i + "ember: ".len()..].trim_end_matches('"').to_string())
        } else if l.contains("will not fit in region") || l.contains("overflowed by") {
            Some(format!("the firmware does not fit {package}: {l}"))
        } else {
            None
        }
    });
    match fit {
        Some(sentence) => HilError::DoesNotFit(sentence),
        None => {
            let lines: Vec<&str> = stderr.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            HilError::Build {
                board: package,
                stderr: tail,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_fit_sentence() {
        let stderr = "error: failed to run custom build command\n  thread 'main' panicked at src/lib.rs:40:5:\n  \
                      /m/big.ember needs 24096 bytes of RAM (arena 20000 + stack reserve 4096), the board qemu-microbit has 16384\n";
        match build_error("board-qemu-microbit", stderr) {
            HilError::DoesNotFit(s) => assert!(
                s.starts_with("/m/big.ember needs 24096 bytes of RAM"),
                "{s}"
            ),
            e => panic!("{e}"),
        }
    }
}
