//! `ember bench-train`: how fast the spiking networks train and evaluate on this machine.
//!
//! REF-CONV and REF-MLP (`../shared/REFERENCE.md`) with the reference settings: T = 4, batch
//! 64, BPTT over all steps, surrogate gradient, Adam; the threshold and leak train too (the
//! DIET-SNN step of [`crate::diet::Stepper`], clipping and projection included). The data is
//! synthetic (seeded MNIST-sized images with 80% zero pixels): the kernels are dense, so
//! their cost does not depend on the pixel values. The network is a random ANN converted
//! with its thresholds calibrated on that data. The same step runs with the fused kernels
//! ([`crate::kernels`], the default) or with the plain candle composition (`plain`).

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::convert::convert_at;
use crate::data::mnist::Split;
use crate::diet::{DietNet, DietSpec, Stepper};
use crate::net::{Net, Rng};
use crate::recipe::Recipe;
use crate::surrogate::Surrogate;
use crate::Result;

/// The reference networks' recipes, as shipped in `recipes/`.
pub const NETWORKS: [(&str, &str); 2] = [
    ("ref-conv", include_str!("../../recipes/ref-conv.toml")),
    ("ref-mlp", include_str!("../../recipes/ref-mlp.toml")),
];

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    /// Timesteps T.
    pub timesteps: u16,
    /// Samples per training batch.
    pub batch: usize,
    /// Untimed batches first (allocator and thread-pool warm-up).
    pub warmup: usize,
    /// Timed training batches.
    pub batches: usize,
    /// Samples of the timed evaluation (no gradient, batches of 256); 0 skips it.
    pub eval_samples: usize,
    /// The plain composition of candle ops instead of the fused kernels.
    pub plain: bool,
}

/// One network's figures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// Network name.
    pub network: String,
    /// "fused" or "plain".
    pub kernels: &'static str,
    /// Timesteps T.
    pub timesteps: u16,
    /// Samples per training batch.
    pub batch: usize,
    /// Worker threads (rayon).
    pub threads: usize,
    /// Timed training batches.
    pub batches: usize,
    /// Training samples per second over the timed batches (wall clock).
    pub train_samples_per_second: f64,
    /// Milliseconds per training step.
    pub step_ms: f64,
    /// Float SNN evaluation samples per second (no gradient, batches of 256).
    pub eval_samples_per_second: Option<f64>,
    /// Peak resident memory of the process so far (Linux `VmHWM`), MiB.
    pub peak_rss_mib: Option<f64>,
}

/// `n` synthetic MNIST-sized samples: 80% zero pixels, the rest uniform, random labels.
pub fn synthetic(n: usize, seed: u64) -> Split {
    let mut rng = Rng::new(seed);
    let mut images = vec![0u8; n * 784];
    for p in images.iter_mut() {
        let r = rng.next_u64();
        if r % 5 == 0 {
            *p = (r >> 8) as u8;
        }
    }
    let labels = (0..n).map(|_| (rng.next_u64() % 10) as u8).collect();
    Split {
        images,
        labels,
        rows: 28,
        cols: 28,
    }
}

/// Peak resident memory of this process in MiB (Linux), if known.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Trains the network of `recipe_text` for `spec.warmup + spec.batches` steps on synthetic
/// data and times the last `spec.batches`, then times an evaluation pass.
pub fn bench(name: &str, recipe_text: &str, spec: &BenchSpec, show: bool) -> Result<BenchResult> {
    let recipe = Recipe::parse(recipe_text, Path::new(&format!("recipes/{name}.toml")))?;
    let steps = spec.warmup + spec.batches;
    let data = synthetic((steps * spec.batch).max(spec.eval_samples).max(512), 7);
    let net = Net::init(&recipe)?;
    let snn = convert_at(&net, &data, spec.timesteps)?;
    let mut diet = DietNet::from_snn(&snn, Surrogate::default())?;
    diet.fused = !spec.plain;
    let dspec = DietSpec {
        batch: spec.batch,
        ..DietSpec::default()
    };
    let mut stepper = Stepper::new(&diet, &dspec)?;
    let kernels = if spec.plain { "plain" } else { "fused" };
    let bar = crate::train::progress(steps, format!("{name} {kernels}"), show);
    let mut start = Instant::now();
    for (k, idx) in (0..steps * spec.batch)
        .collect::<Vec<_>>()
        .chunks(spec.batch)
        .enumerate()
    {
        if k == spec.warmup {
            start = Instant::now();
        }
        stepper.step(&diet, &data, idx, dspec.lr)?;
        bar.inc(1);
    }
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let eval_samples_per_second = if spec.eval_samples > 0 {
        let idx: Vec<usize> = (0..spec.eval_samples).collect();
        let t = Instant::now();
        diet.predict(&data, &idx)?;
        Some(spec.eval_samples as f64 / t.elapsed().as_secs_f64())
    } else {
        None
    };
    let samples = (spec.batches * spec.batch) as f64;
    Ok(BenchResult {
        network: name.to_string(),
        kernels,
        timesteps: spec.timesteps,
        batch: spec.batch,
        threads: rayon::current_num_threads(),
        batches: spec.batches,
        train_samples_per_second: samples / seconds,
        step_ms: 1e3 * seconds / spec.batches.max(1) as f64,
        eval_samples_per_second,
        peak_rss_mib: peak_rss_mib(),
    })
}

/// Test accuracy after each of `epochs` epochs of training from scratch (a random ANN
/// converted, its thresholds calibrated on the training images, then BPTT with the reference
/// settings: Adam lr 1e-3 constant, batch 64, T steps, clipping 1.0) on the first
/// `train_samples` training images of `data`, evaluated on the first `test_samples` test
/// images; with the fused kernels or the plain composition, from the same `seed` (initial
/// weights and shuffling).
#[allow(clippy::too_many_arguments)]
pub fn accuracy_curve(
    name: &str,
    recipe_text: &str,
    data: &crate::data::mnist::Mnist,
    train_samples: usize,
    test_samples: usize,
    epochs: usize,
    timesteps: u16,
    plain: bool,
    seed: u64,
    show: bool,
) -> Result<Vec<f64>> {
    let mut recipe = Recipe::parse(recipe_text, Path::new(&format!("recipes/{name}.toml")))?;
    recipe.train.seed = seed;
    let n = train_samples.min(data.train.len());
    let t = test_samples.min(data.test.len());
    // One split holding the training subset, then the test images.
    let px = data.train.rows * data.train.cols;
    let mut images = data.train.images[..n * px].to_vec();
    images.extend_from_slice(&data.test.images[..t * px]);
    let mut labels = data.train.labels[..n].to_vec();
    labels.extend_from_slice(&data.test.labels[..t]);
    let both = Split {
        images,
        labels,
        rows: data.train.rows,
        cols: data.train.cols,
    };
    let net = Net::init(&recipe)?;
    let snn = convert_at(&net, &data.train, timesteps)?;
    let mut diet = DietNet::from_snn(&snn, Surrogate::default())?;
    diet.fused = !plain;
    let spec = DietSpec {
        epochs,
        lr: 1e-3,
        batch: 64,
        schedule: crate::diet::Schedule::Constant,
        seed,
        ..DietSpec::default()
    };
    let train: Vec<usize> = (0..n).collect();
    let test: Vec<usize> = (n..n + t).collect();
    let ft = crate::diet::fine_tune(&diet, &spec, &both, &train, &test, show)?;
    Ok(ft.history.iter().map(|e| e.heldout_accuracy).collect())
}
