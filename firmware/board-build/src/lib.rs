//! What every board's `build.rs` does, in one call: put the board's `memory.x` on the linker
//! path, link with cortex-m-rt's and defmt's scripts, reserve stack, and refuse a model that
//! cannot fit with a sentence that says by how much.
//!
//! ```text
//! // boards/<name>/build.rs
//! fn main() {
//!     ember_board_build::board("qemu-mps2-an386");
//! }
//! ```
#![deny(missing_docs)]

use std::path::PathBuf;
use std::{env, fs};

/// Bytes of RAM kept free for the stack, checked at link time. The stack holds only call
/// frames: the model (loaded in place), the arena, the input sample and the results buffer
/// are statics, counted with the data and bss. The firmware measures its real peak and
/// reports it in every results file: 1,936 to 2,220 bytes for REF-MLP on the QEMU boards
/// (see firmware/BENCHMARKS-firmware.md).
pub const STACK_RESERVE: u64 = 4 * 1024;

/// Sizes of the board's memory regions, read from its `memory.x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Flash bytes.
    pub flash: u64,
    /// RAM bytes.
    pub ram: u64,
}

/// Configures the link of board `name` (for messages) from `memory.x` in the crate's
/// directory, and checks that the bundled model fits. Panics with a sentence when it does
/// not; cargo shows it as the build error.
pub fn board(name: &str) {
    let dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("run from a build script"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("run from a build script"));
    let memory_x =
        fs::read_to_string(dir.join("memory.x")).expect("the board crate has a memory.x");
    let memory = parse_memory(&memory_x).unwrap_or_else(|e| panic!("{name}: memory.x: {e}"));
    let model_path = env::var("DEP_EMBER_MODEL_MODEL_PATH").unwrap_or_else(|_| "the model".into());
    check_fit(name, memory, &model_path, model_sizes()).unwrap_or_else(|e| panic!("{e}"));

    fs::write(out.join("memory.x"), &memory_x).unwrap();
    fs::write(
        out.join("ember.x"),
        format!(
            "_ember_stack_reserve = {STACK_RESERVE};\n\
             ASSERT(_stack_start - _stack_end >= {STACK_RESERVE}, \"ember: {name}: code data and arena leave \
             less than {STACK_RESERVE} bytes of RAM for the stack: the model does not fit this board\");\n"
        ),
    )
    .unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    for script in ["link.x", "defmt.x", "ember.x"] {
        println!("cargo:rustc-link-arg-bins=-T{script}");
    }
    // Sections need not be page aligned in flash (cortex-m-rt recommends it).
    println!("cargo:rustc-link-arg-bins=--nmagic");
}

/// The model's sizes, from ember-firmware's build script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSizes {
    /// Bytes of the `.ember` file (flash).
    pub file: u64,
    /// Bytes of its arena (RAM).
    pub arena: u64,
}

fn model_sizes() -> ModelSizes {
    let get = |k: &str| -> u64 {
        env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{k} not set: depend on ember-firmware"))
    };
    ModelSizes {
        file: get("DEP_EMBER_MODEL_MODEL_BYTES"),
        arena: get("DEP_EMBER_MODEL_ARENA_BYTES"),
    }
}

/// `Err` with a sentence when the needs of the model at `model_path` exceed the flash or RAM
/// of board `name`. The HIL runs the same check on the host before it builds.
pub fn check_fit(
    name: &str,
    memory: Memory,
    model_path: &str,
    model: ModelSizes,
) -> Result<(), String> {
    if model.file > memory.flash {
        return Err(format!(
            "{model_path} needs {} bytes of flash for its weights alone, the board {name} has {}",
            model.file, memory.flash
        ));
    }
    let ram = model.arena + STACK_RESERVE;
    if ram > memory.ram {
        return Err(format!(
            "{model_path} needs {ram} bytes of RAM (arena {} + stack reserve {STACK_RESERVE}), the board {name} has {}",
            model.arena, memory.ram
        ));
    }
    Ok(())
}

/// Reads the FLASH and RAM lengths of a `memory.x` (`LENGTH = 256K`, `4M`, or a number).
pub fn parse_memory(text: &str) -> Result<Memory, String> {
    let length = |region: &str| -> Result<u64, String> {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(region) && l.contains("LENGTH"))
            .ok_or_else(|| format!("no {region} region"))?;
        let value = line
            .split("LENGTH")
            .nth(1)
            .unwrap_or("")
            .trim_start_matches([' ', '='])
            .trim();
        let value = value.trim_end_matches([',', ';', ' ']);
        let (digits, scale) = match value.chars().last() {
            Some('K') => (&value[..value.len() - 1], 1024),
            Some('M') => (&value[..value.len() - 1], 1024 * 1024),
            _ => (value, 1),
        };
        let n = match digits.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => digits.parse(),
        };
        n.map(|n| n * scale)
            .map_err(|_| format!("cannot read the {region} length {value:?}"))
    };
    Ok(Memory {
        flash: length("FLASH")?,
        ram: length("RAM")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lengths() {
        let m = "MEMORY\n{\n  FLASH : ORIGIN = 0x00000000, LENGTH = 256K\n  RAM : ORIGIN = 0x20000000, LENGTH = 0x4000\n}\n";
        assert_eq!(
            parse_memory(m),
            Ok(Memory {
                flash: 256 * 1024,
                ram: 16384
            })
        );
    }

    #[test]
    fn refuses_a_model_too_big() {
        let board = Memory {
            flash: 256 * 1024,
            ram: 16 * 1024,
        };
        let err = check_fit(
            "tiny",
            board,
            "big.ember",
            ModelSizes {
                file: 1000,
                arena: 20_000,
            },
        )
        .unwrap_err();
        assert!(err.starts_with("big.ember needs 24096 bytes of RAM (arena 20000 + stack reserve 4096), the board tiny has 16384"), "{err}");
    }
}
