//! Multimodal STDP: an image ensemble (MNIST) and an audio ensemble (spoken digits, FSDD)
//! joined by excitatory cross-modal synapses trained with STDP.
//!
//! Each ensemble is the network of [`crate::stdp`] (rate-coded input, LIF neurons with
//! adaptive thresholds and lateral inhibition, power-law STDP, pruning and quantization on the
//! same schedule): the image one learns from MNIST images, the audio one from the feature
//! images (MFCC, log-mel or log-spectrogram) of [`crate::data::fsdd`]. Training has three stages:
//!
//! 1. each ensemble learns on its own modality, unsupervised, and its neurons are labelled
//!    from their responses (soft votes, as in `ember stdp`);
//! 2. with both ensembles frozen, pairs of an image and a recording of the same digit are
//!    presented together, and the cross-modal synapses (audio neuron -> image neuron and image
//!    neuron -> audio neuron, excitatory only, in [0, w_max]) learn with the same power-law
//!    rule: at a post spike in one ensemble, each synapse from the other ensemble moves by
//!    `eta (x_pre - x_tar) (w_max - w)^mu`, with `x_pre` the trace of that presynaptic
//!    neuron's spikes. They only ever add current; neither ensemble's own lateral inhibition
//!    reaches the other.
//! 3. inference presents both inputs; the spikes of each ensemble at step t drive the other at
//!    step t+1 through the cross-modal synapses (times `gain`; 0 by default, because the
//!    coupling made the two votes less independent and cost accuracy, docs/results.md), and
//!    the class is the arg max of the product of the two ensembles' class scores read as
//!    evidence counts, each smoothed with a pseudo-count scaled to the ensemble's mean score
//!    on training inputs ([`Fusion::Evidence`]; an ensemble that fires less than usual, as on
//!    noisy audio, counts less), or of the product or sum of their normalised distributions.
//!
//! [`export`] writes the network as one runtime model: both ensembles side by side in one
//! layer, lateral inhibition within each, and a fused readout that computes the same rule in
//! integers.
//!
//! Robustness is measured by adding noise to one modality while the other stays clean:
//! Gaussian noise on the pixels (standard deviation in grey levels), white noise on the
//! waveform at a given signal-to-noise ratio (before the spectrogram).

use crate::data::fsdd::{self, FeatureConfig, Features};
use crate::data::mnist::{Mnist, Split};
use crate::error::{io, write_atomic};
use crate::eval::RuntimeEval;
use crate::plot::{line_chart, Chart, Series};
use crate::stdp::{self, bar, power_law, Network, Scratch, StdpConfig, EVAL_SEED};
use crate::{Error, Result};
use ember_runtime::format::Shape;
use ember_runtime::Xorshift32;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Seed of the audio ensemble's input spikes at inference (the image's is `EVAL_SEED`).
const AUDIO_SEED: u32 = EVAL_SEED ^ 0xA0D1_0000;

/// The cross-modal synapses' learning rule and strength.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrossConfig {
    /// Learning rate.
    pub eta: f32,
    /// Target presynaptic trace: synapses from neurons with a lower trace at a post spike are
    /// depressed.
    pub x_tar: f32,
    /// Weight-dependence exponent.
    pub mu: f32,
    /// Largest weight.
    pub w_max: f32,
    /// Per-step decay of the trace of each neuron's spikes.
    pub trace_decay: f32,
    /// Current a spike sends through a synapse of weight 1, in the target ensemble's weight
    /// units (its base threshold is `threshold`).
    pub gain: f32,
    /// How the two ensembles' class scores combine.
    #[serde(default)]
    pub fusion: Fusion,
    /// Floor added to each class score before [`Fusion::Product`] takes logarithms: the
    /// larger, the closer the product comes to the sum (a confident wrong modality vetoes
    /// the other less).
    #[serde(default = "default_floor")]
    pub fusion_floor: f32,
    /// [`Fusion::Evidence`]'s pseudo-count per class, as a fraction of the ensemble's mean
    /// total class score on training inputs.
    #[serde(default = "default_prior")]
    pub fusion_prior: f32,
}

fn default_prior() -> f32 {
    0.01
}

fn default_floor() -> f32 {
    0.3
}

/// How the class scores of the two ensembles combine into the multimodal prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
pub enum Fusion {
    /// Arg max of the two normalised vote distributions added.
    Sum,
    /// Arg max of their product (logarithms added, each score plus a floor): a class that
    /// both modalities find plausible beats one that only one modality is sure of.
    Product,
    /// Arg max of the product of the two ensembles' class scores read as evidence counts,
    /// each plus a pseudo-count (additive smoothing, `--fusion-prior` times the ensemble's
    /// mean total score on training data): an ensemble that fired less than usual on this
    /// input (noisy audio does) has a flatter distribution and counts less.
    #[default]
    Evidence,
}

impl Default for CrossConfig {
    fn default() -> Self {
        CrossConfig {
            eta: 0.5,
            x_tar: 0.02,
            mu: 0.2,
            w_max: 1.0,
            trace_decay: 0.95,
            gain: 0.0,
            fusion: Fusion::default(),
            fusion_floor: default_floor(),
            fusion_prior: default_prior(),
        }
    }
}

/// The two ensembles and the synapses between them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Multimodal {
    /// The image ensemble.
    pub image: Network,
    /// The audio ensemble.
    pub audio: Network,
    /// Cross-modal learning rule and gain.
    pub cross: CrossConfig,
    /// Synapses onto the image neurons, `image.neurons x audio.neurons`.
    pub to_image: Vec<f32>,
    /// Synapses onto the audio neurons, `audio.neurons x image.neurons`.
    pub to_audio: Vec<f32>,
    /// Paired training presentations seen by the cross-modal synapses.
    pub pairs_seen: usize,
    /// True once both ensembles are labelled (stage 1 done).
    pub labelled: bool,
    /// Mean total class score of the image and the audio ensemble on training inputs
    /// (measured after labelling), the scale of [`Fusion::Evidence`]'s pseudo-counts.
    #[serde(default)]
    pub mean_scores: Option<[f64; 2]>,
}

/// Buffers of one paired presentation.
struct PairScratch {
    image: Scratch,
    audio: Scratch,
    /// Cross-modal current into each image / audio neuron at the next step.
    into_image: Vec<f32>,
    into_audio: Vec<f32>,
    /// Traces of each neuron's spikes.
    trace_image: Vec<f32>,
    trace_audio: Vec<f32>,
}

impl PairScratch {
    fn new(mm: &Multimodal) -> Self {
        let (ni, na) = (mm.image.cfg.neurons, mm.audio.cfg.neurons);
        PairScratch {
            image: Scratch::new(&mm.image.cfg),
            audio: Scratch::new(&mm.audio.cfg),
            into_image: vec![0.0; ni],
            into_audio: vec![0.0; na],
            trace_image: vec![0.0; ni],
            trace_audio: vec![0.0; na],
        }
    }
}

/// Which ensembles take part in an inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The image ensemble alone.
    Image,
    /// The audio ensemble alone.
    Audio,
    /// Both, joined by the cross-modal synapses.
    Both,
}

/// Class scores of a labelled ensemble: spike counts times the neurons' votes (the exported
/// readout's integers).
fn scores(net: &Network, counts: &[u32]) -> [f64; 10] {
    let mut score = [0f64; 10];
    for (j, &c) in counts.iter().enumerate() {
        if c > 0 {
            for (k, s) in score.iter_mut().enumerate() {
                *s += f64::from(c) * f64::from(net.votes[j * 10 + k]);
            }
        }
    }
    score
}

/// `score` normalised to sum 1 (all zeros when nothing fired).
fn normalised(mut score: [f64; 10]) -> [f64; 10] {
    let total: f64 = score.iter().sum();
    if total > 0.0 {
        score.iter_mut().for_each(|s| *s /= total);
    }
    score
}

/// The multimodal class scores of two ensembles' scores `a` and `b`; `priors` are
/// [`Fusion::Evidence`]'s pseudo-counts.
fn fuse(fusion: Fusion, floor: f32, priors: [f64; 2], a: &[f64; 10], b: &[f64; 10]) -> [f64; 10] {
    let floor = f64::from(floor);
    let (pa, pb) = (normalised(*a), normalised(*b));
    let (ta, tb) = (a.iter().sum::<f64>(), b.iter().sum::<f64>());
    let mut out = [0f64; 10];
    for c in 0..10 {
        out[c] = match fusion {
            Fusion::Sum => pa[c] + pb[c],
            Fusion::Product => (pa[c] + floor).ln() + (pb[c] + floor).ln(),
            Fusion::Evidence => {
                ((a[c] + priors[0]) / (ta + 10.0 * priors[0])).ln()
                    + ((b[c] + priors[1]) / (tb + 10.0 * priors[1])).ln()
            }
        };
    }
    out
}

fn arg_max(score: &[f64; 10]) -> u8 {
    let mut best = 0;
    for c in 1..10 {
        if score[c] > score[best] {
            best = c;
        }
    }
    best as u8
}

impl Multimodal {
    /// Fresh ensembles (see [`Network::new`]) and zero cross-modal synapses.
    pub fn new(image: StdpConfig, audio: StdpConfig, cross: CrossConfig) -> Multimodal {
        let (ni, na) = (image.neurons, audio.neurons);
        Multimodal {
            image: Network::new(image),
            audio: Network::new(audio),
            cross,
            to_image: vec![0.0; ni * na],
            to_audio: vec![0.0; na * ni],
            pairs_seen: 0,
            labelled: false,
            mean_scores: None,
        }
    }

    /// [`Fusion::Evidence`]'s pseudo-counts: `fusion_prior` times each ensemble's mean total
    /// score (zero until measured).
    fn priors(&self) -> [f64; 2] {
        let [a, b] = self.mean_scores.unwrap_or_default();
        let k = f64::from(self.cross.fusion_prior);
        [k * a, k * b]
    }

    /// Presents an image and a recording together for the image ensemble's timesteps, with
    /// the cross-modal current on when `couple`; with `learn`, the cross-modal synapses learn
    /// (the ensembles stay frozen). Spike counts end up in `s.image.counts` and
    /// `s.audio.counts`.
    fn present_pair(
        &mut self,
        image: &[u8],
        audio: &[u8],
        seed: u32,
        couple: bool,
        learn: bool,
        s: &mut PairScratch,
    ) {
        let (ni, na) = (self.image.cfg.neurons, self.audio.cfg.neurons);
        let x = self.cross.clone();
        self.image.rest(&mut s.image);
        self.audio.rest(&mut s.audio);
        for v in [
            &mut s.into_image,
            &mut s.into_audio,
            &mut s.trace_image,
            &mut s.trace_audio,
        ] {
            v.fill(0.0);
        }
        let mut rng_image = Xorshift32::new(seed);
        let mut rng_audio = Xorshift32::new(seed ^ (AUDIO_SEED ^ EVAL_SEED));
        for _ in 0..self.image.cfg.timesteps {
            let (ci, ca) = if couple {
                (Some(&s.into_image[..]), Some(&s.into_audio[..]))
            } else {
                (None, None)
            };
            self.image
                .step(image, &mut rng_image, ci, false, &mut s.image);
            self.audio
                .step(audio, &mut rng_audio, ca, false, &mut s.audio);
            s.trace_image.iter_mut().for_each(|t| *t *= x.trace_decay);
            s.trace_audio.iter_mut().for_each(|t| *t *= x.trace_decay);
            s.image
                .fired
                .iter()
                .for_each(|&j| s.trace_image[j as usize] = 1.0);
            s.audio
                .fired
                .iter()
                .for_each(|&k| s.trace_audio[k as usize] = 1.0);
            if learn {
                for &j in &s.image.fired {
                    let row = &mut self.to_image[j as usize * na..(j as usize + 1) * na];
                    for (w, &t) in row.iter_mut().zip(&s.trace_audio) {
                        *w = power_law(*w, t, x.eta, x.x_tar, x.w_max, x.mu);
                    }
                }
                for &k in &s.audio.fired {
                    let row = &mut self.to_audio[k as usize * ni..(k as usize + 1) * ni];
                    for (w, &t) in row.iter_mut().zip(&s.trace_image) {
                        *w = power_law(*w, t, x.eta, x.x_tar, x.w_max, x.mu);
                    }
                }
            }
            if couple {
                for (j, c) in s.into_image.iter_mut().enumerate() {
                    let row = &self.to_image[j * na..(j + 1) * na];
                    *c = x.gain * s.audio.fired.iter().map(|&k| row[k as usize]).sum::<f32>();
                }
                for (k, c) in s.into_audio.iter_mut().enumerate() {
                    let row = &self.to_audio[k * ni..(k + 1) * ni];
                    *c = x.gain * s.image.fired.iter().map(|&j| row[j as usize]).sum::<f32>();
                }
            }
        }
    }

    /// The class of one inference in `mode` (`image` or `audio` may be empty when unused).
    fn classify(&mut self, mode: Mode, image: &[u8], audio: &[u8], s: &mut PairScratch) -> u8 {
        match mode {
            Mode::Image => {
                self.image.present(image, EVAL_SEED, false, &mut s.image);
                arg_max(&scores(&self.image, &s.image.counts))
            }
            Mode::Audio => {
                self.audio.present(audio, AUDIO_SEED, false, &mut s.audio);
                arg_max(&scores(&self.audio, &s.audio.counts))
            }
            Mode::Both => {
                self.present_pair(image, audio, EVAL_SEED, true, false, s);
                let a = scores(&self.image, &s.image.counts);
                let b = scores(&self.audio, &s.audio.counts);
                let x = &self.cross;
                arg_max(&fuse(x.fusion, x.fusion_floor, self.priors(), &a, &b))
            }
        }
    }
}

/// The two ensembles as one `.ember` model that the runtime and the firmware run:
///
/// - input: the image's pixels, then the audio feature image's values (one u8 each,
///   `1 x (image inputs + audio inputs)`), rate-coded by one seeded generator;
/// - one layer of the image neurons then the audio neurons, block-diagonal weights (no
///   synapse crosses modalities), their frozen thresholds, lateral inhibition inside each
///   ensemble only ([`ember_runtime::format::GroupLateral`]); an ensemble smaller than the
///   other is padded with neurons that have no synapses and never fire, so the groups are equal;
/// - a fused readout ([`ember_runtime::format::Fused`]): each ensemble's soft votes into its
///   own 10 class scores, fused by [`Fusion::Evidence`] in integer arithmetic (pseudo-counts
///   rounded to integers).
///
/// The cross-modal synapses are not exported: inference with them (`gain` > 0) is refused,
/// and so are the other fusion rules.
/// The ensembles must share timesteps, leak, inhibition, w_max and quantization levels.
pub fn export(mm: &Multimodal, name: &str) -> Result<Vec<u8>> {
    let (a, b) = (&mm.image.cfg, &mm.audio.cfg);
    let refuse = |why: String| Error::Mismatch {
        message: format!("cannot export the multimodal network: {why}"),
    };
    if mm.cross.fusion != Fusion::Evidence {
        return Err(refuse(format!(
            "the runtime's fused readout computes evidence fusion, not {:?}",
            mm.cross.fusion
        )));
    }
    if mm.cross.gain != 0.0 {
        return Err(refuse(format!(
            "the runtime model has no cross-modal synapses, but inference uses them (cross gain {})",
            mm.cross.gain
        )));
    }
    let same = [
        ("timesteps", f32::from(a.timesteps), f32::from(b.timesteps)),
        ("leak", a.leak, b.leak),
        ("inhibition", a.inhibition, b.inhibition),
        ("w_max", a.w_max, b.w_max),
        (
            "test threshold scale",
            a.test_theta_scale,
            b.test_theta_scale,
        ),
    ];
    if let Some((what, x, y)) = same.into_iter().find(|(_, x, y)| x != y) {
        return Err(refuse(format!(
            "the ensembles differ in {what} ({x} and {y})"
        )));
    }
    if a.threshold != b.threshold && a.test_theta_scale <= 0.0 {
        return Err(refuse(
            "base thresholds differ and the test threshold scale is 0".into(),
        ));
    }
    let (m1, m2) = (a.inputs, b.inputs);
    let m = m1 + m2;
    let group = a.neurons.max(b.neurons);
    if group == 0 || 2 * group > usize::from(u16::MAX) || m > usize::from(u16::MAX) {
        return Err(refuse(format!(
            "{} + {} neurons on {m} inputs do not fit the model format",
            a.neurons, b.neurons
        )));
    }
    let mut w = vec![0f32; 2 * group * m];
    let mut alive = vec![false; 2 * group * m];
    // Padding neurons never reach their threshold (the float saturates to i32::MAX).
    let mut theta = vec![1e12f32; 2 * group];
    let mut votes = vec![0u8; 2 * group * 20];
    for (k, net) in [&mm.image, &mm.audio].into_iter().enumerate() {
        let (n, inputs, first) = (net.cfg.neurons, net.cfg.inputs, k * m1);
        // Thresholds are `threshold + theta * scale`; the layer has the image's base.
        let shift = (net.cfg.threshold - a.threshold) / a.test_theta_scale.max(f32::MIN_POSITIVE);
        for j in 0..n {
            let row = (k * group + j) * m + first;
            w[row..row + inputs].copy_from_slice(&net.w[j * inputs..(j + 1) * inputs]);
            alive[row..row + inputs].copy_from_slice(&net.alive[j * inputs..(j + 1) * inputs]);
            theta[k * group + j] = net.theta[j] + if k == 0 { 0.0 } else { shift };
            for c in 0..10 {
                votes[(k * group + j) * 20 + k * 10 + c] =
                    net.votes[j * 10 + c].clamp(0, 127) as u8;
            }
        }
    }
    let net = Network {
        cfg: StdpConfig {
            neurons: 2 * group,
            inputs: m,
            levels: shared_levels(a.levels, b.levels),
            ..a.clone()
        },
        w,
        theta,
        alive,
        votes: Vec::new(),
        seen: 0,
    };
    let priors = mm
        .priors()
        .map(|p| p.round().clamp(0.0, i32::MAX as f64) as i32);
    let shape = Shape {
        height: 1,
        width: m as u16,
        channels: 1,
    };
    let head = stdp::Head {
        votes: &votes,
        outputs: 20,
        groups: Some((group as u16, 10, priors.to_vec())),
    };
    stdp::encode_network(&net, name, shape, head)
}

/// Weight levels of one int8 grid that holds both ensembles' weights: their own when they
/// agree; otherwise the finest grid of at most 128 levels (steps of `w_max / 127` or
/// coarser) on which every quantized ensemble's levels lie exactly (8 levels and
/// unquantized weights: 127 steps of `w_max / 126`, as 126 = 7 x 18), and unquantized
/// weights are rounded to it.
fn shared_levels(a: u32, b: u32) -> u32 {
    if a == b {
        return a;
    }
    let steps: Vec<u32> = [a, b]
        .into_iter()
        .filter(|&l| l > 1)
        .map(|l| l - 1)
        .collect();
    let gcd = |mut x: u32, mut y: u32| {
        while y != 0 {
            (x, y) = (y, x % y);
        }
        x
    };
    let lcm = steps.iter().fold(1, |acc, &s| acc / gcd(acc, s) * s);
    if lcm > 127 {
        return 0;
    }
    127 / lcm * lcm + 1
}

/// Standard normal samples from the runtime's generator (Box-Muller).
struct Gauss(Xorshift32);

impl Gauss {
    fn sample(&mut self) -> f32 {
        let u = |r: &mut Xorshift32| ((r.next() >> 8) as f32 + 0.5) / (1u32 << 24) as f32;
        let (a, b) = (u(&mut self.0), u(&mut self.0));
        (-2.0 * a.ln()).sqrt() * (2.0 * std::f32::consts::PI * b).cos()
    }
}

/// `image` with Gaussian noise of standard deviation `sigma` grey levels, clamped to 0..=255.
pub fn noisy_image(image: &[u8], sigma: f32, seed: u32) -> Vec<u8> {
    let mut g = Gauss(Xorshift32::new(seed));
    image
        .iter()
        .map(|&p| {
            (f32::from(p) + sigma * g.sample())
                .round()
                .clamp(0.0, 255.0) as u8
        })
        .collect()
}

/// `samples` with white Gaussian noise at `snr_db` dB below the recording's mean power,
/// clamped to 16 bits.
pub fn noisy_audio(samples: &[i16], snr_db: f32, seed: u32) -> Vec<i16> {
    let power =
        samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len().max(1) as f64;
    let sigma = (power / 10f64.powf(f64::from(snr_db) / 10.0)).sqrt() as f32;
    let mut g = Gauss(Xorshift32::new(seed));
    samples
        .iter()
        .map(|&s| {
            (f32::from(s) + sigma * g.sample())
                .round()
                .clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// Keeps the loudest `keep` share of a feature image's values, stretched to 0..=255, and
/// zeroes the rest: spectrograms are dense (every bin has some energy), and a rate-coded
/// input where most values spike teaches STDP nothing but the average; after this, about as
/// few inputs are active as in an MNIST digit.
pub fn sparsify(image: &mut [u8], keep: f32) {
    if keep >= 1.0 || image.is_empty() {
        return;
    }
    let mut sorted = image.to_vec();
    sorted.sort_unstable();
    let cut = ((1.0 - keep.max(0.0)) * sorted.len() as f32) as usize;
    let floor = i32::from(sorted[cut.min(sorted.len() - 1)]);
    let span = (255 - floor).max(1);
    image.iter_mut().for_each(|p| {
        *p = ((i32::from(*p) - floor).max(0) * 255 / span) as u8;
    });
}

/// What `ember multimodal` was asked to do.
#[derive(Debug, Clone)]
pub struct MultimodalOptions {
    /// MNIST directory.
    pub image_data: PathBuf,
    /// FSDD directory.
    pub audio_data: PathBuf,
    /// Output directory: checkpoint.json, report.json, the robustness plots.
    pub out: PathBuf,
    /// Image ensemble.
    pub image: StdpConfig,
    /// Audio ensemble.
    pub audio: StdpConfig,
    /// Cross-modal synapses.
    pub cross: CrossConfig,
    /// STDP passes over the MNIST training images.
    pub image_epochs: usize,
    /// Train the image ensemble on the first N MNIST training images only.
    pub image_train_samples: Option<usize>,
    /// STDP passes over the FSDD training recordings.
    pub audio_epochs: usize,
    /// Paired presentations that train the cross-modal synapses.
    pub pairs: usize,
    /// MNIST training images that label the image neurons.
    pub label_samples: usize,
    /// Test pairs per FSDD test recording (each with a different MNIST test image of its digit).
    pub pairs_per_recording: usize,
    /// Share of each spectrogram's values kept (see [`sparsify`]).
    pub audio_keep: f32,
    /// Audio feature images.
    pub audio_features: FeatureConfig,
    /// Noisy copies of every training recording, one per signal-to-noise ratio (dB) here,
    /// added to the audio training set (multi-condition training); empty: clean only.
    pub audio_augment_snr: Vec<f32>,
    /// Pixel noise levels (standard deviation, grey levels) of the image-noise sweep.
    pub image_noise: Vec<f32>,
    /// Signal-to-noise ratios (dB) of the audio-noise sweep.
    pub audio_snr: Vec<f32>,
    /// Continue from `out/checkpoint.json`.
    pub resume: bool,
    /// No progress bars.
    pub quiet: bool,
}

/// Accuracy of the three predictors at one noise level.
#[derive(Debug, Clone, Serialize)]
pub struct NoisePoint {
    /// Pixel noise (grey levels) or SNR (dB); `None` for clean.
    pub level: Option<f32>,
    /// Image ensemble alone.
    pub image: f64,
    /// Audio ensemble alone.
    pub audio: f64,
    /// Both, with the cross-modal synapses.
    pub multimodal: f64,
}

/// The figures `ember multimodal` measured, written to report.json.
#[derive(Debug, Clone, Serialize)]
pub struct MultimodalReport {
    /// The command line that made this report.
    pub command: String,
    /// Image ensemble hyperparameters.
    pub image_config: StdpConfig,
    /// Audio ensemble hyperparameters.
    pub audio_config: StdpConfig,
    /// Cross-modal synapses.
    pub cross_config: CrossConfig,
    /// Wall-clock seconds of the three training stages in this run.
    pub train_seconds: f64,
    /// Test pairs (FSDD test recordings x pairs per recording).
    pub test_pairs: usize,
    /// Clean accuracies.
    pub clean: NoisePoint,
    /// Gaussian pixel noise on the image, audio clean.
    pub image_noise: Vec<NoisePoint>,
    /// White noise on the audio, image clean.
    pub audio_noise: Vec<NoisePoint>,
    /// Mean cross-modal weight, and the share of cross-modal synapses above w_max / 2.
    pub cross_mean_weight: f64,
    /// Share of the cross-modal synapses above half of w_max.
    pub cross_strong_share: f64,
    /// The exported model (`multimodal.ember`) run by the integer runtime on the clean test
    /// pairs (`paired-test/`); `None` when it was not exported (cross gain above 0).
    pub runtime: Option<RuntimeEval>,
}

fn save(mm: &Multimodal, out: &Path) -> Result<()> {
    stdp::save_checkpoint(mm, out)
}

fn load(out: &Path) -> Result<Multimodal> {
    stdp::load_checkpoint(out)
}

/// Mean total class score (see [`scores`]) of `net` over the first `n` inputs of `split`,
/// each presented as at inference.
fn mean_score(net: &mut Network, split: &Split, n: usize, seed: u32, quiet: bool) -> f64 {
    let progress = bar(quiet, n, "mean scores");
    let mut s = Scratch::new(&net.cfg);
    let mut total = 0.0;
    for i in 0..n {
        net.present(split.image(i), seed, false, &mut s);
        total += scores(net, &s.counts).iter().sum::<f64>();
        progress.inc(1);
    }
    progress.finish_and_clear();
    total / n.max(1) as f64
}

/// Indices of `split` grouped by class.
fn by_class(labels: &[u8]) -> [Vec<usize>; 10] {
    let mut out: [Vec<usize>; 10] = Default::default();
    for (i, &l) in labels.iter().enumerate() {
        if let Some(v) = out.get_mut(l as usize) {
            v.push(i);
        }
    }
    out
}

/// Runs `ember multimodal`.
pub fn run(opts: &MultimodalOptions) -> Result<MultimodalReport> {
    std::fs::create_dir_all(&opts.out).map_err(io(&opts.out))?;
    let mnist = Mnist::load(&opts.image_data)?;
    let extractor = Features::new(opts.audio_features)?;
    let features = |samples: &[i16]| {
        let mut image = extractor.image(samples);
        sparsify(&mut image, opts.audio_keep);
        image
    };
    let recordings = fsdd::recordings(&opts.audio_data)?;
    let feature_split = |test: bool| -> Split {
        let mut split = Split {
            images: Vec::new(),
            labels: Vec::new(),
            rows: extractor.config().frames,
            cols: extractor.config().columns(),
        };
        let chosen = recordings
            .iter()
            .enumerate()
            .filter(|(_, (r, _))| r.is_test() == test);
        for (a, (rec, samples)) in chosen {
            split.images.extend(features(samples));
            split.labels.push(rec.digit);
            // Multi-condition training: the same recording under white noise, seeded per
            // recording and level (the test sweep's noise has other seeds).
            let copies = if test {
                &[][..]
            } else {
                &opts.audio_augment_snr[..]
            };
            for (k, &snr) in copies.iter().enumerate() {
                let seed = 0xA06E_0000 ^ ((a as u32) << 4) ^ k as u32;
                split
                    .images
                    .extend(features(&noisy_audio(samples, snr, seed)));
                split.labels.push(rec.digit);
            }
        }
        split
    };
    let audio_train = feature_split(false);
    let audio_test = feature_split(true);
    let mut image_train = mnist.train.clone();
    if let Some(n) = opts.image_train_samples {
        image_train.truncate(n);
    }
    for (what, split, cfg) in [
        ("images", &image_train, &opts.image),
        ("audio features", &audio_train, &opts.audio),
    ] {
        if split.rows * split.cols != cfg.inputs {
            return Err(Error::Mismatch {
                message: format!(
                    "{what} have {} values, the ensemble {} inputs",
                    split.rows * split.cols,
                    cfg.inputs
                ),
            });
        }
    }
    if audio_train.is_empty() || audio_test.is_empty() {
        return Err(Error::Mismatch {
            message: format!(
                "{}: need both training (index >= 5) and test (index 0..=4) recordings",
                opts.audio_data.display()
            ),
        });
    }
    let mut mm = if opts.resume {
        let mut mm = load(&opts.out)?;
        // Gain and fusion only act at inference, so a resumed run may change them.
        mm.cross.gain = opts.cross.gain;
        mm.cross.fusion = opts.cross.fusion;
        mm.cross.fusion_floor = opts.cross.fusion_floor;
        mm.cross.fusion_prior = opts.cross.fusion_prior;
        mm
    } else {
        Multimodal::new(opts.image.clone(), opts.audio.clone(), opts.cross.clone())
    };
    let started = Instant::now();

    // Stage 1: each ensemble on its own modality, then labelled.
    for mode in [Mode::Image, Mode::Audio] {
        let (train, epochs, what) = match mode {
            Mode::Image => (&image_train, opts.image_epochs, "image STDP"),
            _ => (&audio_train, opts.audio_epochs, "audio STDP"),
        };
        let total = epochs * train.len();
        fn ensemble(mm: &mut Multimodal, mode: Mode) -> &mut Network {
            match mode {
                Mode::Image => &mut mm.image,
                _ => &mut mm.audio,
            }
        }
        let progress = bar(opts.quiet, total, what);
        progress.set_position(ensemble(&mut mm, mode).seen as u64);
        while ensemble(&mut mm, mode).seen < total {
            // A resumed run asked for more training than the checkpoint saw: the neurons
            // change, so their labels are made again.
            mm.labelled = false;
            stdp::train_rest_of_epoch(ensemble(&mut mm, mode), train, total, &progress);
            save(&mm, &opts.out)?;
        }
        progress.finish_and_clear();
        let labelled = mm.labelled;
        let net = ensemble(&mut mm, mode);
        if !labelled && net.cfg.prune_every > 0 {
            net.prune_and_quantize(net.cfg.sparsity, net.cfg.levels);
        }
    }
    if !mm.labelled {
        let mut labelling = mnist.train.clone();
        labelling.truncate(opts.label_samples);
        stdp::label_neurons(
            &mut mm.image,
            &labelling,
            &bar(opts.quiet, labelling.len(), "label image"),
        );
        stdp::label_neurons(
            &mut mm.audio,
            &audio_train,
            &bar(opts.quiet, audio_train.len(), "label audio"),
        );
        mm.labelled = true;
        mm.mean_scores = None;
        save(&mm, &opts.out)?;
    }
    if mm.mean_scores.is_none() {
        let images = opts.label_samples.clamp(1, 2000).min(mnist.train.len());
        let a = mean_score(&mut mm.image, &mnist.train, images, EVAL_SEED, opts.quiet);
        let b = mean_score(
            &mut mm.audio,
            &audio_train,
            audio_train.len(),
            AUDIO_SEED,
            opts.quiet,
        );
        mm.mean_scores = Some([a, b]);
        save(&mm, &opts.out)?;
    }

    // Stage 2: the cross-modal synapses on pairs of the same digit.
    let image_classes = by_class(&mnist.train.labels);
    let audio_classes = by_class(&audio_train.labels);
    if mm.pairs_seen < opts.pairs {
        let progress = bar(opts.quiet, opts.pairs, "cross STDP");
        progress.set_position(mm.pairs_seen as u64);
        let mut s = PairScratch::new(&mm);
        while mm.pairs_seen < opts.pairs {
            let mut rng =
                Xorshift32::new((mm.pairs_seen as u32).wrapping_mul(0x9E37_79B9) ^ 0xC805);
            let a = rng.next() as usize % audio_train.len();
            let digit = audio_train.labels[a] as usize;
            let pool = &image_classes[digit];
            if pool.is_empty() || audio_classes[digit].is_empty() {
                mm.pairs_seen += 1;
                continue;
            }
            let i = pool[rng.next() as usize % pool.len()];
            let seed = rng.next();
            mm.present_pair(
                mnist.train.image(i),
                audio_train.image(a),
                seed,
                false,
                true,
                &mut s,
            );
            mm.pairs_seen += 1;
            progress.inc(1);
            if mm.pairs_seen % 5000 == 0 {
                save(&mm, &opts.out)?;
            }
        }
        progress.finish_and_clear();
        save(&mm, &opts.out)?;
    }
    let train_seconds = started.elapsed().as_secs_f64();

    // Stage 3: evaluation on test pairs, clean and with noise on one modality.
    let test_images = by_class(&mnist.test.labels);
    let tests: Vec<(usize, usize)> = recordings
        .iter()
        .enumerate()
        .filter(|(_, (r, _))| r.is_test())
        .flat_map(|(a, (r, _))| {
            let pool = &test_images[r.digit as usize];
            (0..opts.pairs_per_recording)
                .filter(|_| !pool.is_empty())
                .map(move |k| (a, pool[(a * 7919 + k * 104_729) % pool.len()]))
        })
        .collect();
    let mut s = PairScratch::new(&mm);
    let mut evaluate =
        |mm: &mut Multimodal, level: Option<f32>, noisy: Option<bool>, what: &str| -> NoisePoint {
            let progress = bar(opts.quiet, tests.len(), what);
            let mut right = [0usize; 3];
            // A recording's features and its audio-alone class are the same for each of its
            // pairs (the audio noise is seeded per recording, inference per mode), so they
            // are computed once per recording.
            let mut audio_cache: std::collections::HashMap<usize, (Vec<u8>, u8)> =
                Default::default();
            for (n, &(a, i)) in tests.iter().enumerate() {
                let (rec, samples) = &recordings[a];
                let seed = 0xA11C_E000 ^ n as u32;
                let image = match (noisy, level) {
                    (Some(true), Some(sigma)) => noisy_image(mnist.test.image(i), sigma, seed),
                    _ => mnist.test.image(i).to_vec(),
                };
                let (audio, audio_class) = audio_cache.entry(a).or_insert_with(|| {
                    let audio = match (noisy, level) {
                        (Some(false), Some(snr)) => {
                            features(&noisy_audio(samples, snr, 0x50DA ^ a as u32))
                        }
                        _ => features(samples),
                    };
                    let class = mm.classify(Mode::Audio, &[], &audio, &mut s);
                    (audio, class)
                });
                let classes = [
                    mm.classify(Mode::Image, &image, &[], &mut s),
                    *audio_class,
                    mm.classify(Mode::Both, &image, audio, &mut s),
                ];
                for (k, class) in classes.into_iter().enumerate() {
                    if class == rec.digit {
                        right[k] += 1;
                    }
                }
                progress.inc(1);
            }
            progress.finish_and_clear();
            let acc = |k: usize| right[k] as f64 / tests.len().max(1) as f64;
            NoisePoint {
                level,
                image: acc(0),
                audio: acc(1),
                multimodal: acc(2),
            }
        };
    let clean = evaluate(&mut mm, None, None, "eval clean");
    let image_noise: Vec<NoisePoint> = opts
        .image_noise
        .iter()
        .map(|&sigma| {
            evaluate(
                &mut mm,
                Some(sigma),
                Some(true),
                &format!("pixel noise {sigma}"),
            )
        })
        .collect();
    let audio_noise: Vec<NoisePoint> = opts
        .audio_snr
        .iter()
        .map(|&snr| evaluate(&mut mm, Some(snr), Some(false), &format!("audio {snr} dB")))
        .collect();
    let runtime = export_and_run(&mm, opts, &tests, &|a| features(&recordings[a].1), &mnist)?;
    let cross: Vec<f32> = mm.to_image.iter().chain(&mm.to_audio).copied().collect();
    let report = MultimodalReport {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        image_config: mm.image.cfg.clone(),
        audio_config: mm.audio.cfg.clone(),
        cross_config: mm.cross.clone(),
        train_seconds,
        test_pairs: tests.len(),
        cross_mean_weight: cross.iter().map(|&w| f64::from(w)).sum::<f64>()
            / cross.len().max(1) as f64,
        cross_strong_share: cross.iter().filter(|&&w| w > mm.cross.w_max / 2.0).count() as f64
            / cross.len().max(1) as f64,
        clean,
        image_noise,
        audio_noise,
        runtime,
    };
    plot_robustness(&report, &opts.out)?;
    let json = serde_json::to_vec_pretty(&report).map_err(|e| Error::Mismatch {
        message: e.to_string(),
    })?;
    write_atomic(&opts.out.join("report.json"), &json)?;
    Ok(report)
}

/// Writes `out/multimodal.ember` (see [`export`]) and the clean test pairs as
/// `out/paired-test/t10k-*` (each input the image's pixels then the recording's features),
/// then runs the model on them with the integer runtime. Skipped, with a warning, when
/// inference uses the cross-modal synapses or a fusion rule other than evidence.
fn export_and_run(
    mm: &Multimodal,
    opts: &MultimodalOptions,
    tests: &[(usize, usize)],
    features: &dyn Fn(usize) -> Vec<u8>,
    mnist: &Mnist,
) -> Result<Option<RuntimeEval>> {
    if mm.cross.gain != 0.0 || mm.cross.fusion != Fusion::Evidence {
        tracing::warn!(
            "not exported: the runtime model has no cross-modal synapses (--cross-gain {}) \
             and fuses by evidence only (--fusion {:?})",
            mm.cross.gain,
            mm.cross.fusion
        );
        return Ok(None);
    }
    let bytes = export(mm, "multimodal")?;
    let path = opts.out.join("multimodal.ember");
    write_atomic(&path, &bytes)?;
    let mut pairs = Split {
        images: Vec::new(),
        labels: Vec::new(),
        rows: 1,
        cols: mm.image.cfg.inputs + mm.audio.cfg.inputs,
    };
    let mut cache: std::collections::HashMap<usize, Vec<u8>> = Default::default();
    for &(a, i) in tests {
        pairs.images.extend_from_slice(mnist.test.image(i));
        pairs
            .images
            .extend(cache.entry(a).or_insert_with(|| features(a)).iter());
        pairs.labels.push(mnist.test.labels[i]);
    }
    crate::data::mnist::write_split(&opts.out.join("paired-test"), "t10k", &pairs)?;
    let e = crate::eval::evaluate(&bytes, &path, &pairs, pairs.len(), None, !opts.quiet)?;
    Ok(Some(e))
}

/// Accuracy against noise strength, one PNG per noisy modality.
fn plot_robustness(r: &MultimodalReport, out: &Path) -> Result<()> {
    for (points, file, title, x_label) in [
        (
            &r.image_noise,
            "robustness-image-noise.png",
            "Gaussian pixel noise on the image, audio clean",
            "pixel noise standard deviation (grey levels)",
        ),
        (
            &r.audio_noise,
            "robustness-audio-noise.png",
            "White noise on the audio, image clean",
            "signal-to-noise ratio (dB)",
        ),
    ] {
        if points.is_empty() {
            continue;
        }
        let series = |name: &str, f: fn(&NoisePoint) -> f64| Series {
            name: name.into(),
            points: points
                .iter()
                .map(|p| (f64::from(p.level.unwrap_or(0.0)), 100.0 * f(p)))
                .collect(),
        };
        let chart = Chart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: "test accuracy (%)".into(),
            log_x: false,
            series: vec![
                series("image alone", |p| p.image),
                series("audio alone", |p| p.audio),
                series("multimodal", |p| p.multimodal),
            ],
        };
        line_chart(&chart, &out.join(file))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_levels_hold_both_grids_exactly() {
        assert_eq!(shared_levels(8, 8), 8);
        assert_eq!(shared_levels(0, 0), 0);
        // 8 levels beside unquantized weights: 126 steps, a multiple of 7.
        assert_eq!(shared_levels(8, 0), 127);
        assert_eq!(shared_levels(0, 8), 127);
        // 8 and 16 levels: steps of 1/105, a multiple of both 1/7 and 1/15.
        assert_eq!(shared_levels(8, 16), 106);
        // No common grid of at most 128 levels: the plain 127 steps.
        assert_eq!(shared_levels(101, 103), 0);
        for (a, b) in [(8, 0), (8, 16), (4, 0), (3, 5)] {
            let top = shared_levels(a, b) - 1;
            for l in [a, b].into_iter().filter(|&l| l > 1) {
                assert_eq!(top % (l - 1), 0, "{a} {b}");
            }
        }
    }

    fn small(inputs: usize, seed: u64) -> StdpConfig {
        StdpConfig {
            neurons: 12,
            inputs,
            timesteps: 24,
            threshold: 20.0,
            norm: 78.0 * inputs as f32 / 784.0,
            seed,
            ..Default::default()
        }
    }

    #[test]
    fn sparsify_keeps_the_loudest_share_stretched() {
        let mut image: Vec<u8> = (0..100).map(|v| (v * 255 / 99) as u8).collect();
        sparsify(&mut image, 0.2);
        let kept = image.iter().filter(|&&p| p > 0).count();
        assert!((19..=21).contains(&kept), "{kept} kept");
        assert_eq!(image[99], 255);
        assert!(image[..80].iter().all(|&p| p == 0));
        // Order is kept among the survivors.
        assert!(image[80..].windows(2).all(|w| w[0] <= w[1]));
        let mut same: Vec<u8> = (0..100).map(|v| v as u8).collect();
        sparsify(&mut same, 1.0);
        assert_eq!(same, (0..100).map(|v| v as u8).collect::<Vec<_>>());
        sparsify(&mut [], 0.5);
    }

    #[test]
    fn image_noise_has_the_asked_strength() {
        let clean = vec![128u8; 20_000];
        assert_eq!(noisy_image(&clean, 0.0, 7), clean);
        let noisy = noisy_image(&clean, 20.0, 7);
        assert_eq!(noisy, noisy_image(&clean, 20.0, 7), "seeded");
        assert_ne!(noisy, noisy_image(&clean, 20.0, 8));
        let var = noisy
            .iter()
            .map(|&p| (f64::from(p) - 128.0).powi(2))
            .sum::<f64>()
            / clean.len() as f64;
        assert!((var.sqrt() - 20.0).abs() < 0.5, "sigma {}", var.sqrt());
    }

    #[test]
    fn audio_noise_has_the_asked_snr() {
        let clean: Vec<i16> = (0..40_000)
            .map(|n| (3000.0 * (n as f32 * 0.05).sin()) as i16)
            .collect();
        for snr in [20.0f32, 0.0, -5.0] {
            let noisy = noisy_audio(&clean, snr, 3);
            let signal: f64 = clean.iter().map(|&s| f64::from(s).powi(2)).sum();
            let noise: f64 = clean
                .iter()
                .zip(&noisy)
                .map(|(&a, &b)| (f64::from(b) - f64::from(a)).powi(2))
                .sum();
            let measured = 10.0 * (signal / noise).log10();
            assert!(
                (measured - f64::from(snr)).abs() < 0.2,
                "{snr} dB -> {measured}"
            );
        }
        assert!(noisy_audio(&[], 10.0, 1).is_empty());
    }

    #[test]
    fn fusion_rules() {
        let mut a = [0.0; 10];
        let mut b = [0.0; 10];
        // Image sure of 3, audio split between 3 and 5: both rules say 3.
        a[3] = 0.9;
        a[5] = 0.1;
        b[3] = 0.45;
        b[5] = 0.55;
        assert_eq!(arg_max(&fuse(Fusion::Sum, 1e-3, [0.0; 2], &a, &b)), 3);
        assert_eq!(arg_max(&fuse(Fusion::Product, 1e-3, [0.0; 2], &a, &b)), 3);
        // Image 0.6 for 1 and 0.4 for 2; audio 0.0 for 1 and 0.5 for 2: the sum picks 1,
        // the product the class both find plausible.
        let (mut a, mut b) = ([0.0; 10], [0.0; 10]);
        a[1] = 0.6;
        a[2] = 0.4;
        b[2] = 0.5;
        b[7] = 0.5;
        assert_eq!(arg_max(&fuse(Fusion::Sum, 1e-3, [0.0; 2], &a, &b)), 2);
        assert_eq!(arg_max(&fuse(Fusion::Product, 1e-3, [0.0; 2], &a, &b)), 2);
        a[1] = 0.9;
        a[2] = 0.1;
        assert_eq!(arg_max(&fuse(Fusion::Sum, 1e-3, [0.0; 2], &a, &b)), 1);
        assert_eq!(arg_max(&fuse(Fusion::Product, 1e-3, [0.0; 2], &a, &b)), 2);
        // A silent ensemble leaves the other's decision alone.
        let silent = [0.0; 10];
        assert_eq!(
            arg_max(&fuse(Fusion::Product, 1e-3, [0.0; 2], &a, &silent)),
            1
        );
        assert_eq!(arg_max(&fuse(Fusion::Sum, 1e-3, [0.0; 2], &silent, &b)), 2);

        // Evidence: the audio ensemble sure of 7 but with a tenth of the image's evidence
        // (raw scores) against a pseudo-count of 20 per class: the image decides; with as
        // much evidence as the image, the audio does.
        let (mut a, mut b) = ([0.0; 10], [0.0; 10]);
        a[1] = 600.0;
        a[2] = 400.0;
        b[7] = 100.0;
        assert_eq!(arg_max(&fuse(Fusion::Evidence, 0.0, [20.0; 2], &a, &b)), 1);
        b[7] = 1000.0;
        assert_eq!(arg_max(&fuse(Fusion::Evidence, 0.0, [20.0; 2], &a, &b)), 7);
    }

    /// A bright image and a bright "spectrogram": both ensembles fire.
    fn inputs() -> (Vec<u8>, Vec<u8>) {
        let image = (0..784).map(|i| if i % 3 == 0 { 255 } else { 0 }).collect();
        let audio = (0..256).map(|i| if i % 4 == 1 { 255 } else { 0 }).collect();
        (image, audio)
    }

    #[test]
    fn cross_synapses_learn_only_when_asked_and_stay_excitatory() {
        let mut mm = Multimodal::new(small(784, 1), small(256, 2), CrossConfig::default());
        let (image, audio) = inputs();
        let mut s = PairScratch::new(&mm);
        mm.present_pair(&image, &audio, 5, true, false, &mut s);
        assert!(
            s.image.counts.iter().sum::<u32>() > 0,
            "image ensemble silent"
        );
        assert!(
            s.audio.counts.iter().sum::<u32>() > 0,
            "audio ensemble silent"
        );
        assert!(mm.to_image.iter().chain(&mm.to_audio).all(|&w| w == 0.0));
        let (image_w, audio_w) = (mm.image.w.clone(), mm.audio.w.clone());
        for seed in 0..20 {
            mm.present_pair(&image, &audio, seed, false, true, &mut s);
        }
        assert_eq!(mm.image.w, image_w, "the ensembles stay frozen");
        assert_eq!(mm.audio.w, audio_w);
        let cross: Vec<f32> = mm.to_image.iter().chain(&mm.to_audio).copied().collect();
        assert!(cross.iter().all(|&w| (0.0..=1.0).contains(&w)));
        assert!(
            cross.iter().any(|&w| w > 0.1),
            "co-active neurons got linked"
        );
        // The synapses between the neurons that fired most are the strongest.
        let top = |c: &[u32]| (0..c.len()).max_by_key(|&j| c[j]).unwrap();
        mm.present_pair(&image, &audio, 0, false, false, &mut s);
        let (j, k) = (top(&s.image.counts), top(&s.audio.counts));
        let na = mm.audio.cfg.neurons;
        let row = &mm.to_image[j * na..(j + 1) * na];
        let mean = row.iter().sum::<f32>() / na as f32;
        assert!(
            row[k] >= mean,
            "w[{j}][{k}] = {} below the row mean {mean}",
            row[k]
        );
    }

    #[test]
    fn cross_current_only_adds_spikes_to_a_silent_ensemble() {
        let mut mm = Multimodal::new(small(784, 1), small(256, 2), CrossConfig::default());
        let (image, audio) = inputs();
        mm.to_audio.fill(1.0);
        mm.cross.gain = 40.0;
        let mut s = PairScratch::new(&mm);
        let silence = vec![0u8; 256];
        mm.present_pair(&image, &silence, 1, false, false, &mut s);
        assert_eq!(
            s.audio.counts.iter().sum::<u32>(),
            0,
            "no input, no cross current"
        );
        mm.present_pair(&image, &silence, 1, true, false, &mut s);
        assert!(
            s.audio.counts.iter().sum::<u32>() > 0,
            "the image drives the audio ensemble through the cross synapses"
        );
        let _ = audio;
    }
}
