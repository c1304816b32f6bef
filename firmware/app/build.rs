//! Bundles the model: `EMBER_MODEL` (a path, absolute or relative to the repository root)
//! or the repository's default model. The model is validated on the host with the same
//! runtime, copied into `OUT_DIR` for `include_bytes!`, and its flash and arena sizes are
//! passed to the board crates as `DEP_EMBER_MODEL_MODEL_BYTES` / `DEP_EMBER_MODEL_ARENA_BYTES`.

use std::path::{Path, PathBuf};
use std::{env, fs};

/// The ANN baseline, for its buffer sizes (the firmware's own file).
#[path = "src/ann.rs"]
#[allow(dead_code)]
mod ann;

/// Models tried, in order, when `EMBER_MODEL` is not set (relative to the repository root).
const DEFAULT_MODELS: [&str; 2] = ["models/ref-mlp.ember", "runtime/tests/golden/mlp.ember"];

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    println!("cargo:rerun-if-env-changed=EMBER_MODEL");
    let path = match env::var_os("EMBER_MODEL") {
        Some(p) => repo.join(PathBuf::from(p)),
        None => {
            for m in DEFAULT_MODELS {
                println!("cargo:rerun-if-changed={}", repo.join(m).display());
            }
            DEFAULT_MODELS
                .iter()
                .map(|m| repo.join(m))
                .find(|p| p.exists())
                .expect("no default model in the repository")
        }
    };
    println!("cargo:rerun-if-changed={}", path.display());
    let bytes = fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read model {}: {e} (set EMBER_MODEL to a .ember file)",
            path.display()
        )
    });
    let model = ember_runtime::Model::from_bytes(&bytes)
        .unwrap_or_else(|e| panic!("model {} is not valid: {e}", path.display()));

    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    fs::write(out.join("model.ember"), &bytes).unwrap();
    // The ANN baseline's buffers replace the arena (the SNN engine is not linked then).
    let ann = env::var_os("CARGO_FEATURE_ANN_BASELINE").map(|_| {
        ann::sizes(&model)
            .unwrap_or_else(|e| panic!("model {} has no dense ANN baseline: {e}", path.display()))
    });
    let mut consts = format!(
        "/// Bytes of working memory the bundled model needs.\npub const ARENA_BYTES: usize = {};\n\
         /// Bytes of one input sample of the bundled model.\npub const INPUT_BYTES: usize = {};\n\
         /// Class scores the bundled model produces.\npub const CLASSES: usize = {};\n",
        model.arena_bytes(),
        model.input_len(),
        model.classes(),
    );
    if let Some(a) = ann {
        consts += &format!(
            "/// Bytes of one ANN activation buffer.\npub const ANN_ACT_BYTES: usize = {};\n\
             /// Largest output channel count of the ANN's layers.\npub const ANN_COLS: usize = {};\n\
             /// Output channels of the ANN's hidden layers.\npub const ANN_PARAMS: usize = {};\n\
             /// Bytes of the ANN's largest convolution patch.\npub const ANN_PATCH: usize = {};\n\
             /// Bytes of all the ANN's buffers.\npub const ANN_BYTES: usize = {};\n",
            a.act,
            a.cols,
            a.params,
            a.patch,
            a.bytes()
        );
    }
    fs::write(out.join("model_consts.rs"), consts).unwrap();
    if env::var_os("CARGO_FEATURE_STANDALONE").is_some() {
        bundle_samples(&repo, &out, model.input_len());
    }
    println!("cargo:model_path={}", path.display());
    println!("cargo:model_bytes={}", bytes.len());
    let ram = ann.map_or(model.arena_bytes(), |a| a.bytes());
    println!("cargo:arena_bytes={ram}");
}

/// The `standalone` feature's samples: `EMBER_SAMPLES` (whole inputs back to back) and the
/// optional `EMBER_LABELS` (one byte per sample), copied into `OUT_DIR` for `include_bytes!`.
fn bundle_samples(repo: &Path, out: &Path, input_len: usize) {
    println!("cargo:rerun-if-env-changed=EMBER_SAMPLES");
    println!("cargo:rerun-if-env-changed=EMBER_LABELS");
    let Some(path) = env::var_os("EMBER_SAMPLES").map(|p| repo.join(PathBuf::from(p))) else {
        panic!("the standalone firmware bundles its samples: set EMBER_SAMPLES to a file of whole inputs (ember deploy does)");
    };
    println!("cargo:rerun-if-changed={}", path.display());
    let samples =
        fs::read(&path).unwrap_or_else(|e| panic!("cannot read samples {}: {e}", path.display()));
    if samples.is_empty() || samples.len() % input_len != 0 {
        panic!(
            "samples {} has {} bytes, not a whole number of the model's {input_len}-byte inputs",
            path.display(),
            samples.len()
        );
    }
    let count = samples.len() / input_len;
    let labels = match env::var_os("EMBER_LABELS").map(|p| repo.join(PathBuf::from(p))) {
        Some(path) => {
            println!("cargo:rerun-if-changed={}", path.display());
            let labels = fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read labels {}: {e}", path.display()));
            if labels.len() != count {
                panic!("{} labels for {count} samples", labels.len());
            }
            labels
        }
        None => Vec::new(),
    };
    fs::write(out.join("samples.bin"), &samples).unwrap();
    fs::write(out.join("labels.bin"), &labels).unwrap();
}
