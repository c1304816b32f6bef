//! `ember stdp`: train, prune and quantize, label, evaluate, export and report, with
//! checkpoints and `--resume`.

use super::{export, label_neurons, train_rest_of_epoch_with, Evaluation, Network, StdpConfig};
use crate::data::mnist::Mnist;
use crate::error::{io, write_atomic};
use crate::eval::RuntimeEval;
use crate::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What `ember stdp` was asked to do.
#[derive(Debug, Clone)]
pub struct StdpOptions {
    /// MNIST directory.
    pub data: PathBuf,
    /// Output directory: checkpoint.json, stdp.ember, report.json, receptive-fields.png.
    pub out: PathBuf,
    /// Network and learning hyperparameters.
    pub cfg: StdpConfig,
    /// Passes over the training images.
    pub epochs: usize,
    /// Train on the first N training images only.
    pub train_samples: Option<usize>,
    /// Training images (from the start of the train split) used to label the neurons.
    pub label_samples: usize,
    /// Evaluate on the first N test images only.
    pub test_samples: Option<usize>,
    /// Continue from `out/checkpoint.json`.
    pub resume: bool,
    /// No progress bars.
    pub quiet: bool,
}

/// The figures `ember stdp` measured, written to report.json.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StdpReport {
    /// The command line that made this report.
    pub command: String,
    /// Hyperparameters.
    pub config: StdpConfig,
    /// Training images presented, over all epochs.
    pub train_images: usize,
    /// Wall-clock seconds of STDP training in this run.
    pub train_seconds: f64,
    /// Training speed.
    pub images_per_second: f64,
    /// Neurons that never spiked on the labelling images.
    pub silent_neurons: usize,
    /// Float network (the one that learned) on the test images.
    pub float: Evaluation,
    /// Exported integer model in ember-runtime on the test images.
    pub runtime: RuntimeEval,
    /// Share of test images where the float network and the runtime give the same class.
    pub float_runtime_agreement: f64,
    /// Fraction of input synapses pruned.
    pub sparsity: f64,
    /// Bits per weight level (log2 of the levels), 0 for unquantized.
    pub weight_bits: f64,
    /// Model file size.
    pub model_bytes: usize,
    /// Energy estimate per inference: SOPs x 0.9 pJ (all synaptic events are SOPs: the input
    /// is rate-coded).
    pub energy_pj_per_inference: f64,
}

/// A progress bar (hidden when `quiet`) labelled `what`.
pub(crate) fn bar(quiet: bool, len: usize, what: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len as u64);
    b.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b.set_message(what.to_string());
    b
}

fn checkpoint_path(out: &Path) -> PathBuf {
    out.join("checkpoint.json")
}

/// Writes `value` atomically as `out/checkpoint.json` (also used by `ember multimodal`).
pub(crate) fn save<T: serde::Serialize>(value: &T, out: &Path) -> Result<()> {
    let json = serde_json::to_vec(value).map_err(|e| Error::Checkpoint {
        path: checkpoint_path(out),
        message: e.to_string(),
    })?;
    write_atomic(&checkpoint_path(out), &json)
}

/// Reads `out/checkpoint.json`; a typed error names the file and the problem.
pub(crate) fn load<T: serde::de::DeserializeOwned>(out: &Path) -> Result<T> {
    let path = checkpoint_path(out);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Checkpoint {
        path,
        message: e.to_string(),
    })
}

/// Labelling images of the running accuracy on the progress bar.
const PROBE_LABELS: usize = 1_000;
/// Images it is scored on.
const PROBE_SCORED: usize = 500;

/// The running accuracy's labelling images (the first [`PROBE_LABELS`] of the labelling
/// set, which is the start of `train`) and the images it scores (the [`PROBE_SCORED`] after
/// the first `label_samples`, or none when `train` ends before).
fn probe_slices(
    train: &crate::data::mnist::Split,
    label_samples: usize,
) -> (crate::data::mnist::Split, crate::data::mnist::Split) {
    let mut labels = train.clone();
    labels.truncate(PROBE_LABELS.min(label_samples));
    let mut scored = train.clone();
    scored.skip(label_samples);
    scored.truncate(PROBE_SCORED);
    (labels, scored)
}

/// Runs `ember stdp`.
pub fn run(opts: &StdpOptions) -> Result<StdpReport> {
    std::fs::create_dir_all(&opts.out).map_err(io(&opts.out))?;
    let data = Mnist::load(&opts.data)?;
    let mut train = data.train.clone();
    if let Some(n) = opts.train_samples {
        train.truncate(n);
    }
    let mut labelling = data.train.clone();
    labelling.truncate(opts.label_samples);
    let mut test = data.test.clone();
    if let Some(n) = opts.test_samples {
        test.truncate(n);
    }
    if train.rows * train.cols != opts.cfg.inputs {
        return Err(Error::Mismatch {
            message: format!(
                "{}: images have {} pixels, the network {} inputs",
                opts.data.display(),
                train.rows * train.cols,
                opts.cfg.inputs
            ),
        });
    }
    let mut net = if opts.resume {
        load(&opts.out)?
    } else {
        Network::new(opts.cfg.clone())
    };
    let total = opts.epochs * train.len();
    let start_seen = net.seen;
    let started = Instant::now();
    let progress = bar(opts.quiet, total, "STDP");
    progress.set_position(net.seen as u64);
    // Running accuracy for the progress bar, every `stdp::PROBE_EVERY` images: a copy of the network
    // labelled on PROBE_LABELS labelling images and scored on the PROBE_SCORED training
    // images after the labelling set (their labels never reach the network). The network
    // being trained is not touched, so a quiet run (no probe) learns the same weights.
    let (probe_labels, probe_scored) = probe_slices(&data.train, opts.label_samples);
    let mut probe = |n: &Network| {
        if opts.quiet || probe_scored.is_empty() {
            return;
        }
        let mut copy = n.clone();
        label_neurons(&mut copy, &probe_labels, &ProgressBar::hidden());
        let e = super::evaluate(&mut copy, &probe_scored, &ProgressBar::hidden());
        progress.set_message(format!("STDP {:.1}%", 100.0 * e.accuracy));
    };
    while net.seen < total {
        train_rest_of_epoch_with(&mut net, &train, total, &progress, &mut probe);
        save(&net, &opts.out)?;
    }
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if net.cfg.prune_every > 0 {
        net.prune_and_quantize(net.cfg.sparsity, net.cfg.levels);
    }
    let silent = label_neurons(
        &mut net,
        &labelling,
        &bar(opts.quiet, labelling.len(), "label"),
    );
    save(&net, &opts.out)?;
    let float = super::evaluate(&mut net, &test, &bar(opts.quiet, test.len(), "float eval"));
    super::receptive_fields(&net, &opts.out.join("receptive-fields.png"))?;
    let bytes = export(&net, "stdp")?;
    let model_path = opts.out.join("stdp.ember");
    write_atomic(&model_path, &bytes)?;
    let runtime = crate::eval::evaluate(&bytes, &model_path, &test, test.len(), None, !opts.quiet)?;
    let float_classes = super::train::classify(&mut net, &test);
    let same = float_classes
        .iter()
        .zip(&runtime.classes)
        .filter(|(a, b)| **a as u16 == **b)
        .count();
    let trained = net.seen - start_seen;
    let report = StdpReport {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        config: net.cfg.clone(),
        train_images: net.seen,
        train_seconds: seconds,
        images_per_second: trained as f64 / seconds.max(1e-9),
        silent_neurons: silent,
        float,
        float_runtime_agreement: same as f64 / test.len().max(1) as f64,
        sparsity: net.sparsity() as f64,
        weight_bits: if net.cfg.levels > 1 {
            (net.cfg.levels as f64).log2()
        } else {
            0.0
        },
        model_bytes: bytes.len(),
        energy_pj_per_inference: runtime.sops_per_inference * crate::report::SOP_PJ,
        runtime,
    };
    let json = serde_json::to_vec_pretty(&report).map_err(|e| Error::Mismatch {
        message: e.to_string(),
    })?;
    write_atomic(&opts.out.join("report.json"), &json)?;
    Ok(report)
}
