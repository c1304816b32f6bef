//! The real boards are built, not run: each board crate must build with the bundled model
//! for its target. Needs no QEMU; needs the rustup targets of rust-toolchain.toml.

use std::path::Path;

/// The bundled model (see firmware/app/build.rs).
fn bundled_model() -> std::path::PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mlp = repo.join("models/ref-mlp.ember");
    if mlp.exists() {
        mlp
    } else {
        repo.join("runtime/tests/golden/mlp.ember")
    }
}

fn builds(package: &'static str, target: &str) {
    let elf =
        ember_hil::build_crate(package, target, &bundled_model()).unwrap_or_else(|e| panic!("{e}"));
    let footprint = ember_hil::Footprint::of_elf(&elf).unwrap_or_else(|e| panic!("{e}"));
    println!("{package}: {footprint:?}");
    assert!(footprint.flash_bytes > 0);
}

#[test]
fn nrf52840_dk_builds() {
    builds("board-nrf52840-dk", "thumbv7em-none-eabihf");
}

#[test]
fn nucleo_f411re_builds() {
    builds("board-nucleo-f411re", "thumbv7em-none-eabihf");
}

#[test]
fn rp2040_pico_builds() {
    builds("board-rp2040-pico", "thumbv6m-none-eabi");
}

/// What `ember deploy --build-only` builds: the standalone firmware (samples in flash, log
/// over RTT) for the Cortex-M0+ board, its ELF where asked.
#[test]
fn rp2040_pico_standalone_builds() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let board = ember_hil::deploy::RealBoard::from_name("rp2040-pico").unwrap();
    let samples = ember_hil::Samples::mnist_test(&repo.join("data/mnist-small"), 2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let elf = dir.path().join("pico.elf");
    let d = ember_hil::deploy::build(&board, &bundled_model(), &samples, Some(&elf))
        .unwrap_or_else(|e| panic!("{e}"));
    println!("{d:?}");
    assert_eq!(d.elf, elf);
    assert_eq!(d.samples, 2);
    let model = std::fs::metadata(bundled_model()).unwrap().len();
    assert!(d.footprint.flash_bytes > model + 2 * 784);
}
