//! The `ember` binary: exit status and messages on bad input.

use std::process::{Command, Output};

fn ember(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(args)
        .output()
        .expect("run ember")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn corrupt_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("corrupt.ember");
    std::fs::write(&bad, b"not a model at all").unwrap();
    let path = bad.to_str().unwrap();
    for args in [
        vec!["inspect", path],
        vec!["eval", "--model", path, "--samples", "5"],
    ] {
        let o = ember(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let e = stderr(&o);
        assert!(
            e.contains("corrupt.ember") && e.contains("bad magic"),
            "{args:?}: {e}"
        );
        assert!(!e.contains("panicked"), "{e}");
    }
    // A valid header with a flipped payload byte.
    let mut bytes = ember_runtime::doc_example_model().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    std::fs::write(&bad, &bytes).unwrap();
    let o = ember(&["inspect", path]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("checksum mismatch"), "{}", stderr(&o));
}

#[test]
fn inspect_valid_model() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("doc.ember");
    std::fs::write(&p, ember_runtime::doc_example_model()).unwrap();
    let o = ember(&["inspect", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("[0] dense   4x4x1 -> 4") && out.contains("arena"),
        "{out}"
    );
}

#[test]
fn missing_files_name_the_path() {
    let o = ember(&["train", "--recipe", "/nonexistent/r.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/nonexistent/r.toml"), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("doc.ember");
    std::fs::write(&p, ember_runtime::doc_example_model()).unwrap();
    let o = ember(&[
        "eval",
        "--model",
        p.to_str().unwrap(),
        "--data",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no t10k-images-idx3-ubyte"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn train_then_convert_with_a_timestep_sweep_and_holdout() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("r.toml");
    std::fs::write(
        &recipe,
        "name = \"tiny\"\ntimesteps = 4\ninput = [28, 28, 1]\n\
         [[layers]]\nkind = \"dense\"\noutputs = 16\n[[layers]]\nkind = \"dense\"\noutputs = 10\n\
         [train]\nepochs = 1\nbatch = 50\nlr = 2e-3\nseed = 3\n\
         [convert]\npercentile = 99\ncalibration_samples = 100\n",
    )
    .unwrap();
    let out = dir.path().join("run");
    let r = recipe.to_str().unwrap();
    let o = ember(&[
        "-q",
        "train",
        "--recipe",
        r,
        "--out",
        out.to_str().unwrap(),
        "--train-samples",
        "300",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "checkpoint.safetensors",
        "optimizer.safetensors",
        "progress.json",
        "model.ember",
        "report.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let model = dir.path().join("m.ember");
    let o = ember(&[
        "-q",
        "convert",
        "--checkpoint",
        out.join("checkpoint.safetensors").to_str().unwrap(),
        "--recipe",
        r,
        "--out",
        model.to_str().unwrap(),
        "--sweep-timesteps",
        "2,8",
        "--sweep-samples",
        "30",
        "--holdout",
        "50",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("m.report.json")).unwrap()).unwrap();
    let sweep = report["timestep_sweep"].as_array().unwrap();
    assert_eq!(sweep.len(), 2);
    assert_eq!(sweep[1]["timesteps"], 8);
    assert_eq!(sweep[1]["samples"], 30);
    assert!(sweep[1]["snn_int_accuracy"].as_f64().unwrap() > 0.3);
    assert_eq!(report["holdout"]["samples"], 50);
    assert!(dir.path().join("m.timesteps.png").is_file());
    // --resume of a finished run is a no-op that still writes the model.
    let o = ember(&[
        "-q",
        "train",
        "--recipe",
        r,
        "--out",
        out.to_str().unwrap(),
        "--train-samples",
        "300",
        "--resume",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // --resume without a checkpoint names the missing file.
    let empty = dir.path().join("empty");
    let o = ember(&[
        "-q",
        "train",
        "--recipe",
        r,
        "--out",
        empty.to_str().unwrap(),
        "--train-samples",
        "300",
        "--resume",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("progress.json"), "{}", stderr(&o));
}

/// The repository's REF-MLP model.
fn ref_mlp() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/ref-mlp.ember")
}

#[test]
fn deploy_without_probe_rs_says_how_to_install_it() {
    // A PATH with nothing on it: no probe-rs (the check comes before any build).
    let empty = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(["deploy", "--board", "nucleo-f411re", "--model"])
        .arg(ref_mlp())
        .env("PATH", empty.path())
        .output()
        .expect("run ember");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("probe-rs not found")
            && e.contains("cargo install probe-rs-tools")
            && e.contains("https://probe.rs"),
        "{e}"
    );
}

#[test]
fn deploy_unknown_board_lists_the_boards() {
    let o = ember(&[
        "deploy",
        "--board",
        "arduino-uno",
        "--model",
        ref_mlp().to_str().unwrap(),
        "--build-only",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(
            "unknown board \"arduino-uno\"; the boards are nrf52840-dk, nucleo-f411re, rp2040-pico"
        ),
        "{}",
        stderr(&o)
    );
}

/// `--build-only` on a real board: the standalone firmware (model and 3 samples in flash)
/// for the Nucleo-F411RE, its ELF where `--out` says, its sizes printed. Needs the
/// thumbv7em-none-eabihf target (rust-toolchain.toml installs it).
#[test]
fn deploy_build_only_writes_the_elf() {
    let dir = tempfile::tempdir().unwrap();
    let elf = dir.path().join("nucleo.elf");
    let o = ember(&[
        "-q",
        "deploy",
        "--board",
        "nucleo-f411re",
        "--model",
        ref_mlp().to_str().unwrap(),
        "--build-only",
        "--samples",
        "3",
        "--out",
        elf.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("elf:   {}", elf.display())), "{out}");
    let number = |key: &str| -> u64 {
        let line = out
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("{out}"));
        line[key.len()..]
            .trim()
            .trim_end_matches(" bytes")
            .parse()
            .unwrap()
    };
    let model = std::fs::metadata(ref_mlp()).unwrap().len();
    // The model, the 3 bundled 784-byte images and the code.
    assert!(number("flash:") > model + 3 * 784, "{out}");
    // At least the 4 KiB stack reserve on top of the statics.
    assert!(number("RAM:") > 4 * 1024, "{out}");
    assert!(std::fs::metadata(&elf).unwrap().len() > model);
    assert!(dir.path().join("nucleo.samples.bin").exists());
}

#[test]
fn multimodal_refuses_an_impossible_pruning_target() {
    let out = tempfile::tempdir().unwrap();
    let o = ember(&[
        "-q",
        "multimodal",
        "--image-sparsity",
        "1.5",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--image-sparsity must be in [0, 1)"),
        "{}",
        stderr(&o)
    );
}
