//! DIET-SNN and hybrid STDB: backpropagation through time over the converted network.
//!
//! Starts from [`crate::convert`]'s network (weights, biases, per-layer thresholds) and
//! trains, with BPTT over T timesteps in candle (CPU), the weights and biases together with
//! each LIF layer's **threshold** and **membrane leak** (DIET-SNN, Rathi & Roy 2020; with the
//! STDB surrogate, the hybrid conversion + STDB method of Rathi et al. 2020). The forward pass
//! is the runtime's (see [`crate::snn`]):
//!
//! - direct input: raw pixels into the first layer, whose current is computed once;
//! - per step and layer: `u <- leak(u) + bias + input`, spike where `u >= theta`, soft reset
//!   `u -= theta`; the leak is the runtime's `floor(u_int * l)` on the integer membrane
//!   `u_int = u * s` (`s` the layer's quantization scale, `l` the Q1.15 leak), applied in the
//!   forward pass with a straight-through gradient (that of `u * l`);
//! - readout: the last layer's per-step `bias + input` summed over the T steps; the loss is
//!   the cross-entropy of that sum divided by T.
//!
//! Spikes get the [`crate::surrogate`] gradient of `z = u/theta - 1`, which also reaches the
//! threshold; the reset `theta * spike` passes gradient to `theta` but not through the spike
//! (as in the reference code). The leak stays in [0, 1] and the threshold positive by
//! projection after every optimiser step.
//!
//! Guards against the accuracy decay reported for STDB fine-tuning: a cosine (or step)
//! learning-rate schedule, gradient-norm clipping, and the best parameters on a held-out
//! slice of the training set (never the test set) are kept and restored at the end; the
//! converted start counts as epoch 0, so fine-tuning never returns a network worse than the
//! conversion on that slice.
//!
//! Parameters train in ANN units: layer `l`'s effective weights are `w_l * unit_l` with
//! `unit_l` fixed at conversion (1/255 for the pixel layer; the previous threshold at
//! conversion, divided by the pooled window, after that), so `w_l` starts as the ANN's
//! weights; spikes are 0/1.

use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};

use crate::convert::{Snn, SnnLayer, Synapse};
use crate::data::mnist::{Mnist, Split};
use crate::error::{CandleContext, Error, Result};
use crate::net::{Net, Rng};
use crate::pipeline::Options;
use crate::quantize::QLayer;
use crate::recipe::LayerSpec;
use crate::report::{Energy, LayerConversion, Report};
use crate::surrogate::{spike, Surrogate, NEVER};

/// Which surrogate a recipe names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SurrogateKind {
    /// `alpha * exp(-beta * dt)` (hybrid STDB).
    Stdb,
    /// `gamma * max(0, 1 - |u/theta - 1|)` (DIET-SNN).
    Linear,
}

/// Learning-rate schedule over all fine-tuning batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// `lr * (1 + cos(pi * batch / batches)) / 2`.
    Cosine,
    /// `lr`, times 0.1 from half the epochs on and 0.01 from three quarters on.
    Step,
    /// `lr` throughout.
    Constant,
}

fn d_epochs() -> usize {
    3
}
fn d_lr() -> f64 {
    1e-4
}
fn d_batch() -> usize {
    64
}
fn d_surrogate() -> SurrogateKind {
    SurrogateKind::Linear
}
fn d_alpha() -> f32 {
    0.3
}
fn d_beta() -> f32 {
    0.01
}
fn d_gamma() -> f32 {
    0.3
}
fn d_schedule() -> Schedule {
    Schedule::Cosine
}
fn d_clip() -> f64 {
    1.0
}
fn d_holdout() -> usize {
    5000
}
fn yes() -> bool {
    true
}
fn d_seed() -> u64 {
    1
}

/// The `[diet]` section of a recipe: fine-tuning after conversion.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DietSpec {
    /// Passes over the training samples (minus the held-out slice). Default 3.
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    /// Peak Adam learning rate. Default 1e-4.
    #[serde(default = "d_lr")]
    pub lr: f64,
    /// Samples per batch. Default 64.
    #[serde(default = "d_batch")]
    pub batch: usize,
    /// Timesteps to convert, train and export at; default the recipe's `timesteps`.
    #[serde(default)]
    pub timesteps: Option<u16>,
    /// `"linear"` (DIET-SNN, default) or `"stdb"`.
    #[serde(default = "d_surrogate")]
    pub surrogate: SurrogateKind,
    /// STDB scale. Default 0.3.
    #[serde(default = "d_alpha")]
    pub alpha: f32,
    /// STDB decay per timestep since the last spike. Default 0.01.
    #[serde(default = "d_beta")]
    pub beta: f32,
    /// Linear surrogate height. Default 0.3.
    #[serde(default = "d_gamma")]
    pub gamma: f32,
    /// Learning-rate schedule. Default cosine.
    #[serde(default = "d_schedule")]
    pub schedule: Schedule,
    /// Largest global gradient L2 norm (gradients are scaled down to it); 0: no clipping.
    /// Default 1.0.
    #[serde(default = "d_clip")]
    pub clip: f64,
    /// Last training samples held out to pick the best epoch (at most a fifth of the
    /// training samples). Default 5000.
    #[serde(default = "d_holdout")]
    pub holdout: usize,
    /// Train each LIF layer's leak. Default true.
    #[serde(default = "yes")]
    pub train_leak: bool,
    /// Train each LIF layer's threshold. Default true.
    #[serde(default = "yes")]
    pub train_threshold: bool,
    /// Shuffling seed. Default 1.
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// Spike-rate regulariser: adds `spike_penalty x` the mean spike rate over the LIF
    /// layers and timesteps to the loss (its gradient flows through the surrogate), so that
    /// fine-tuning does not buy accuracy with extra spikes. Default 0 (off).
    #[serde(default)]
    pub spike_penalty: f64,
    /// Fine-tune on the first N training samples (before the held-out slice) only: a short
    /// recovery after pruning, for example. Default: all of them.
    #[serde(default)]
    pub samples: Option<usize>,
    /// Data augmentation: move every training image by a random offset of up to this many
    /// pixels in each direction (zero-filled), as `[train] shift`. Default 0 (off).
    #[serde(default)]
    pub shift: usize,
}

impl Default for DietSpec {
    fn default() -> Self {
        toml::from_str("").expect("every DietSpec field has a default")
    }
}

impl DietSpec {
    /// Checks the values; `Err` says which is wrong.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.epochs == 0 || self.batch == 0 || self.lr.is_nan() || self.lr <= 0.0 {
            return Err("epochs, batch and lr must be positive".into());
        }
        if self.timesteps == Some(0) {
            return Err("timesteps must be at least 1".into());
        }
        let finite = |x: f32| x.is_finite() && x >= 0.0;
        if !(finite(self.alpha) && finite(self.beta) && finite(self.gamma)) {
            return Err("alpha, beta and gamma must be finite and non-negative".into());
        }
        if self.clip.is_nan() || self.clip < 0.0 {
            return Err("clip must be at least 0".into());
        }
        if !(self.spike_penalty.is_finite() && self.spike_penalty >= 0.0) {
            return Err("spike_penalty must be finite and at least 0".into());
        }
        if self.samples == Some(0) {
            return Err("samples must be at least 1".into());
        }
        Ok(())
    }

    /// The surrogate the spec names.
    pub fn surrogate(&self) -> Surrogate {
        match self.surrogate {
            SurrogateKind::Stdb => Surrogate::Stdb {
                alpha: self.alpha,
                beta: self.beta,
            },
            SurrogateKind::Linear => Surrogate::Linear { gamma: self.gamma },
        }
    }

    /// Learning rate at `batch` of `batches` (0-based), `epoch` of `epochs`.
    pub fn lr_at(&self, batch: usize, batches: usize, epoch: usize) -> f64 {
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Cosine => {
                let x = batch as f64 / batches.max(1) as f64;
                self.lr * 0.5 * (1.0 + (std::f64::consts::PI * x).cos())
            }
            Schedule::Step => {
                let e = self.epochs as f64;
                let f = if epoch as f64 >= 0.75 * e && epoch > 0 {
                    0.01
                } else if epoch as f64 >= 0.5 * e && epoch > 0 {
                    0.1
                } else {
                    1.0
                };
                self.lr * f
            }
        }
    }
}

/// Trainable parameters of one synaptic layer.
#[derive(Debug, Clone)]
struct Syn {
    /// Recipe layer and shapes, and the converted values (the export template).
    syn: Synapse,
    /// Weights in ANN units, candle layout.
    w: Var,
    /// Effective weights are `w * unit`.
    unit: f32,
    bias: Option<Var>,
    /// LIF only: threshold and leak, shape (1,).
    theta: Option<Var>,
    leak: Option<Var>,
    /// 0/1 where the converted weights were non-zero, if any was zero (a pruned network):
    /// pruned weights stay zero through fine-tuning.
    mask: Option<Tensor>,
}

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // a handful per network
enum DLayer {
    Syn(Syn),
    Pool(usize),
}

/// A converted network whose weights, biases, thresholds and leaks train with BPTT.
#[derive(Debug, Clone)]
pub struct DietNet {
    name: String,
    input: [usize; 3],
    layers: Vec<DLayer>,
    /// Timesteps trained and exported at.
    pub timesteps: u16,
    /// The spike function's pseudo-derivative.
    pub surrogate: Surrogate,
    /// Export format: the weight grid (trained on with `qat`) and membrane width.
    format: crate::compress::Format,
    /// Run the forward and backward passes with the fused kernels ([`crate::kernels`]: one
    /// LIF pass over all steps, im2col convolutions, layer after layer) instead of the plain
    /// composition of candle ops step after step. Same values; the default.
    pub fused: bool,
}

/// Values of the forward pass needed by the caller.
struct Forward {
    /// Class scores summed over the steps, divided by T: `(batch, classes)`.
    logits: Tensor,
    /// Spikes per layer over the batch and steps.
    spikes: Vec<f64>,
    /// Spike maps, each with the factor that makes its mean a spike rate (1, or 1/k² for the
    /// fused pass's pooled window counts); the mean of their rates is the mean spike rate over
    /// the LIF layers and steps (the plain pass has one map per layer and step, the fused
    /// one per layer). Differentiable through the surrogate.
    maps: Vec<(Tensor, f64)>,
}

fn scalar(v: &Var) -> Result<f32> {
    v.as_tensor()
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map(|v| v[0])
        .ctx("scalar parameter")
}

fn var1(x: f32) -> Result<Var> {
    Var::from_vec(vec![x], 1, &Device::Cpu).ctx("parameter")
}

impl DietNet {
    /// Trainable copy of a converted network (leak 1 = none, as converted).
    pub fn from_snn(snn: &Snn, surrogate: Surrogate) -> Result<DietNet> {
        let mut unit = 1.0f32 / 255.0;
        let mut layers = Vec::new();
        for l in &snn.layers {
            match l {
                SnnLayer::AvgPool { kernel } => {
                    unit /= (kernel * kernel) as f32;
                    layers.push(DLayer::Pool(*kernel));
                }
                SnnLayer::Synapse(s) => {
                    let w: Vec<f32> = s.weight.iter().map(|x| x / unit).collect();
                    let w = Var::from_vec(w, s.weight_shape.as_slice(), &Device::Cpu)
                        .ctx("diet weights")?;
                    let bias = s
                        .bias
                        .as_ref()
                        .map(|b| Var::from_vec(b.clone(), b.len(), &Device::Cpu))
                        .transpose()
                        .ctx("diet bias")?;
                    let theta = s.threshold.map(var1).transpose()?;
                    let leak = s.threshold.map(|_| var1(1.0)).transpose()?;
                    let mask = if s.weight.contains(&0.0) {
                        let m: Vec<f32> = s.weight.iter().map(|&x| f32::from(x != 0.0)).collect();
                        Some(
                            Tensor::from_vec(m, s.weight_shape.as_slice(), &Device::Cpu)
                                .ctx("mask")?,
                        )
                    } else {
                        None
                    };
                    layers.push(DLayer::Syn(Syn {
                        syn: s.clone(),
                        w,
                        unit,
                        bias,
                        theta,
                        leak,
                        mask,
                    }));
                    if let Some(t) = s.threshold {
                        unit = t;
                    }
                }
            }
        }
        Ok(DietNet {
            name: snn.name.clone(),
            input: snn.input,
            layers,
            timesteps: snn.timesteps,
            surrogate,
            format: snn.format,
            fused: true,
        })
    }

    /// The trainable variables: weights and biases, and thresholds and leaks if asked.
    fn vars(&self, threshold: bool, leak: bool) -> Vec<Var> {
        let mut v = Vec::new();
        for l in &self.layers {
            if let DLayer::Syn(s) = l {
                v.push(s.w.clone());
                v.extend(s.bias.clone());
                if threshold {
                    v.extend(s.theta.clone());
                }
                if leak {
                    v.extend(s.leak.clone());
                }
            }
        }
        v
    }

    /// Each LIF layer's leak multiplier, as trained (recipe layer index, value).
    pub fn leaks(&self) -> Result<Vec<(usize, f32)>> {
        self.syns()
            .filter_map(|s| s.leak.as_ref().map(|l| scalar(l).map(|v| (s.syn.index, v))))
            .collect()
    }

    /// Each LIF layer's threshold in ANN units (recipe layer index, value).
    pub fn thresholds(&self) -> Result<Vec<(usize, f32)>> {
        self.syns()
            .filter_map(|s| {
                s.theta
                    .as_ref()
                    .map(|t| scalar(t).map(|v| (s.syn.index, v)))
            })
            .collect()
    }

    fn syns(&self) -> impl Iterator<Item = &Syn> {
        self.layers.iter().filter_map(|l| match l {
            DLayer::Syn(s) => Some(s),
            DLayer::Pool(_) => None,
        })
    }

    /// The Q1.15 leak of every layer of the exported network (`1 << 15` where none).
    pub fn leak_bits(&self) -> Result<Vec<u16>> {
        self.layers
            .iter()
            .map(|l| match l {
                DLayer::Syn(Syn { leak: Some(v), .. }) => scalar(v).map(crate::snn::leak_bits),
                _ => Ok(1 << 15),
            })
            .collect()
    }

    /// The trained network in the form [`crate::quantize`] and [`crate::snn`] take.
    pub fn to_snn(&self) -> Result<Snn> {
        let mut layers = Vec::new();
        for l in &self.layers {
            layers.push(match l {
                DLayer::Pool(k) => SnnLayer::AvgPool { kernel: *k },
                DLayer::Syn(s) => {
                    let w =
                        s.w.as_tensor()
                            .flatten_all()
                            .and_then(|t| t.to_vec1::<f32>())
                            .ctx("diet weights")?;
                    let bias = s
                        .bias
                        .as_ref()
                        .map(|b| b.as_tensor().to_vec1::<f32>())
                        .transpose()
                        .ctx("diet bias")?;
                    SnnLayer::Synapse(Synapse {
                        weight: w.iter().map(|x| x * s.unit).collect(),
                        bias,
                        threshold: s.theta.as_ref().map(scalar).transpose()?,
                        ..s.syn.clone()
                    })
                }
            });
        }
        Ok(Snn {
            name: self.name.clone(),
            timesteps: self.timesteps,
            input: self.input,
            layers,
            // The leak's integer floor is modelled with one scale per layer.
            per_channel: false,
            format: self.format,
        })
    }

    /// A snapshot of every parameter's values.
    fn snapshot(&self) -> Result<Vec<Tensor>> {
        self.vars(true, true)
            .iter()
            .map(|v| v.as_tensor().copy())
            .collect::<candle_core::Result<_>>()
            .ctx("snapshot")
    }

    fn restore(&self, snap: &[Tensor]) -> Result<()> {
        for (v, t) in self.vars(true, true).iter().zip(snap) {
            v.set(t).ctx("restore")?;
        }
        Ok(())
    }

    /// Keeps every leak in [0, 1], every threshold positive and every pruned weight zero.
    fn project(&self) -> Result<()> {
        for s in self.syns() {
            if let Some(m) = &s.mask {
                s.w.set(&(s.w.as_tensor() * m).ctx("mask")?).ctx("mask")?;
            }
            if let Some(l) = &s.leak {
                l.set(&l.as_tensor().clamp(0f32, 1f32).ctx("leak")?)
                    .ctx("leak")?;
            }
            if let Some(t) = &s.theta {
                t.set(&t.as_tensor().clamp(1e-3f32, f32::MAX).ctx("threshold")?)
                    .ctx("threshold")?;
            }
        }
        Ok(())
    }

    /// Integer units per effective-weight unit of the exported layer (its quantization
    /// scale, [`crate::compress::Format::scale`]).
    fn int_scale(&self, s: &Syn) -> Result<f32> {
        let max = crate::kernels::max_abs(s.w.as_tensor()).ctx("weight scale")?;
        let theta = s.theta.as_ref().map(scalar).transpose()?;
        Ok(self.format.scale(max * s.unit, theta))
    }

    /// The weights the forward pass uses: on the exported grid with quantization-aware
    /// training, else as they are.
    fn weights(&self, s: &Syn) -> Result<Tensor> {
        if !self.format.qat {
            return Ok(s.w.as_tensor().clone());
        }
        // The grid step in weight units is 1 / (int_scale * unit).
        let span = self.format.qmax() / (self.int_scale(s)? * s.unit);
        crate::compress::fake_quant_min(s.w.as_tensor(), self.format.bits, false, span)
    }

    /// A layer's current in the plain composition.
    fn current(&self, s: &Syn, act: &Tensor) -> Result<Tensor> {
        let x = (act * s.unit as f64).ctx("input")?;
        let w = &self.weights(s)?;
        let (y, b) = match s.syn.spec {
            LayerSpec::Conv {
                padding, stride, ..
            } => (
                x.conv2d(w, padding, stride, 1, 1).ctx("conv")?,
                s.bias
                    .as_ref()
                    .map(|b| b.as_tensor().reshape((1, (), 1, 1)))
                    .transpose()
                    .ctx("bias")?,
            ),
            _ => (
                x.flatten_from(1)
                    .and_then(|x| x.matmul(&w.t()?))
                    .ctx("dense")?,
                s.bias.as_ref().map(|b| b.as_tensor().clone()),
            ),
        };
        match b {
            Some(b) => y.broadcast_add(&b).ctx("bias"),
            None => Ok(y),
        }
    }

    /// `leak(u)` with the runtime's floor on the integer membrane in the forward pass and the
    /// gradient of `u * leak`.
    fn leak_step(&self, s: &Syn, leak: &Var, u: &Tensor) -> Result<Tensor> {
        let bits = crate::snn::leak_bits(scalar(leak)?);
        let lu = u.broadcast_mul(leak.as_tensor()).ctx("leak")?;
        let ud = u.detach();
        let target = if bits >= 1 << 15 {
            ud
        } else {
            let scale = self.int_scale(s)? as f64;
            (ud * (scale * bits as f64 / 32768.0))
                .and_then(|x| x.floor())
                .and_then(|x| x / scale)
                .ctx("leak floor")?
        };
        (&lu + (target - lu.detach()).ctx("leak")?).ctx("leak")
    }

    /// Runs `timesteps` steps on raw pixels `x` (0..255, NCHW).
    fn forward(&self, x: &Tensor) -> Result<Forward> {
        if self.fused && self.poolable() {
            self.forward_fused(x)
        } else {
            self.forward_plain(x)
        }
    }

    /// Whether every pool's input divides by its window, as the fused kernels need (a
    /// recipe may pool a 7 x 7 map by 2, dropping the last row and column: such a network
    /// runs the plain composition).
    fn poolable(&self) -> bool {
        let mut shape = self.input_chw();
        for l in &self.layers {
            match l {
                DLayer::Syn(s) => shape = s.syn.output,
                DLayer::Pool(k) => {
                    if shape[1] % k != 0 || shape[2] % k != 0 {
                        return false;
                    }
                    shape = [shape[0], shape[1] / k, shape[2] / k];
                }
            }
        }
        true
    }

    /// The input shape as (channels, height, width).
    fn input_chw(&self) -> [usize; 3] {
        let [h, w, c] = self.input;
        [c, h, w]
    }

    /// The forward pass layer after layer over all steps at once: each layer's input is the
    /// `(T * B, ...)` spikes of the one before, its LIF neurons run in one fused pass.
    fn forward_fused(&self, x: &Tensor) -> Result<Forward> {
        let b = x.dim(0).ctx("batch")?;
        let steps = self.timesteps as usize;
        let mut spikes = vec![0.0; self.layers.len()];
        let mut maps = Vec::new();
        let mut act = x.clone();
        let mut logits = None;
        // A pool right after a LIF layer runs inside its kernel.
        let mut pooled = false;
        for (i, l) in self.layers.iter().enumerate() {
            if std::mem::take(&mut pooled) {
                continue;
            }
            act = match l {
                DLayer::Pool(k) => crate::kernels::pool::sum_pool2d(&act, *k).ctx("pool")?,
                DLayer::Syn(s) => {
                    // The input unit scales the few weights of a conv, and rides in the
                    // gemm of a dense layer.
                    let w = self.weights(s)?;
                    let cur = match s.syn.spec {
                        LayerSpec::Conv {
                            padding, stride, ..
                        } => {
                            let w = (w * s.unit as f64).ctx("weights")?;
                            crate::kernels::conv::conv2d(&act, &w, padding, stride).ctx("conv")?
                        }
                        _ => act
                            .flatten_from(1)
                            .and_then(|x| crate::kernels::dense::linear(&x, &w, s.unit))
                            .ctx("dense")?,
                    };
                    let bias = s.bias.as_ref().map(|b| b.as_tensor());
                    match (&s.theta, &s.leak) {
                        (Some(theta), Some(leak)) => {
                            let bits = crate::snn::leak_bits(scalar(leak)?);
                            let floor = if bits >= 1 << 15 {
                                None
                            } else {
                                Some((self.int_scale(s)?, bits))
                            };
                            let mut op =
                                crate::kernels::lif::Lif::new(steps, self.surrogate, floor, i == 0);
                            let mut per_spike = 1.0;
                            if let Some(DLayer::Pool(k)) = self.layers.get(i + 1) {
                                op = op.pooled(*k);
                                pooled = true;
                                per_spike = 1.0 / (k * k) as f64;
                            }
                            let sp = crate::kernels::lif::lif(
                                &cur,
                                bias,
                                theta.as_tensor(),
                                leak.as_tensor(),
                                &op,
                            )
                            .ctx("lif")?;
                            spikes[i] = op.spikes.load(std::sync::atomic::Ordering::Relaxed) as f64;
                            maps.push((sp.clone(), per_spike));
                            sp
                        }
                        _ => {
                            let cur = cur.flatten_from(1).ctx("readout")?;
                            let cur = match bias {
                                Some(b) => cur.broadcast_add(b).ctx("bias")?,
                                None => cur,
                            };
                            let classes = cur.dim(1).ctx("readout")?;
                            // Per-step scores summed over the steps, divided by T.
                            let score = if i == 0 {
                                cur
                            } else {
                                cur.reshape((steps, b, classes))
                                    .and_then(|c| c.sum(0))
                                    .and_then(|c| c / steps as f64)
                                    .ctx("readout")?
                            };
                            logits = Some(score.clone());
                            score
                        }
                    }
                }
            };
        }
        let logits = logits.ok_or_else(|| Error::Convert {
            layer: self.layers.len() - 1,
            message: "no readout".into(),
        })?;
        Ok(Forward {
            logits,
            spikes,
            maps,
        })
    }

    /// The reference forward pass: step after step, each layer a composition of candle ops.
    fn forward_plain(&self, x: &Tensor) -> Result<Forward> {
        let n = x.dim(0).ctx("batch")?;
        let mut mem: Vec<Option<Tensor>> = vec![None; self.layers.len()];
        let mut last: Vec<Option<Tensor>> = vec![None; self.layers.len()];
        let mut spikes = vec![0.0; self.layers.len()];
        let mut score: Option<Tensor> = None;
        let mut maps = Vec::new();
        let first = match &self.layers[0] {
            DLayer::Syn(s) => self.current(s, x)?,
            DLayer::Pool(_) => {
                return Err(Error::Convert {
                    layer: 0,
                    message: "the first layer must be synaptic".into(),
                })
            }
        };
        for t in 0..self.timesteps as usize {
            let mut act = x.clone();
            for (i, l) in self.layers.iter().enumerate() {
                act = match l {
                    DLayer::Pool(k) => {
                        (act.avg_pool2d(*k).ctx("pool")? * (k * k) as f64).ctx("pool")?
                    }
                    DLayer::Syn(s) => {
                        let cur = if i == 0 {
                            first.clone()
                        } else {
                            self.current(s, &act)?
                        };
                        match (&s.theta, &s.leak) {
                            (Some(theta), Some(leak)) => {
                                let u = match mem[i].take() {
                                    Some(u) => (self.leak_step(s, leak, &u)? + cur).ctx("u")?,
                                    None => cur,
                                };
                                let last_t = match last[i].take() {
                                    Some(l) => l,
                                    None => Tensor::full(-NEVER, u.shape(), &Device::Cpu)
                                        .ctx("last spike")?,
                                };
                                let dt = last_t.affine(-1.0, t as f64).ctx("dt")?;
                                let sp = spike(&u, theta.as_tensor(), &dt, &self.surrogate)?;
                                let sd = sp.detach();
                                let reset = sd.broadcast_mul(theta.as_tensor()).ctx("reset")?;
                                mem[i] = Some((&u - reset).ctx("reset")?);
                                // last <- t where spiked.
                                last[i] = Some(last_spike(&sd, &last_t, t).ctx("last spike")?);
                                spikes[i] +=
                                    sd.sum_all()
                                        .and_then(|s| s.to_scalar::<f32>())
                                        .ctx("count")? as f64;
                                maps.push((sp.clone(), 1.0));
                                sp
                            }
                            _ => {
                                let cur = cur.flatten_from(1).ctx("readout")?;
                                score = Some(match score.take() {
                                    Some(sc) => (sc + &cur).ctx("readout")?,
                                    None => cur.clone(),
                                });
                                cur
                            }
                        }
                    }
                };
            }
        }
        let logits = (score.ok_or_else(|| Error::Convert {
            layer: self.layers.len() - 1,
            message: "no readout".into(),
        })? / self.timesteps as f64)
            .ctx("logits")?;
        let _ = n;
        Ok(Forward {
            logits,
            spikes,
            maps,
        })
    }

    /// The training loss of the samples `idx` of `data` (cross-entropy of the class scores,
    /// plus `spike_penalty` x the mean spike rate) and its gradient for every trainable
    /// parameter, layer after layer: weights, bias, threshold and leak (`None` where the loss
    /// does not depend on one). What one BPTT step of [`fine_tune`] computes.
    pub fn loss_and_grads(
        &self,
        data: &Split,
        idx: &[usize],
        spike_penalty: f64,
    ) -> Result<(f32, Vec<Option<Tensor>>)> {
        let x = raw_batch(data, idx, self.input)?;
        let labels: Vec<u32> = idx.iter().map(|&i| data.labels[i] as u32).collect();
        let y = Tensor::from_vec(labels, idx.len(), &Device::Cpu).ctx("labels")?;
        let f = self.forward(&x)?;
        let loss = self.loss(&f, &y, spike_penalty)?;
        let grads = loss.backward().ctx("backward")?;
        let value = loss.to_scalar::<f32>().ctx("loss")?;
        Ok((
            value,
            self.vars(true, true)
                .iter()
                .map(|v| grads.get(v.as_tensor()).cloned())
                .collect(),
        ))
    }

    fn loss(&self, f: &Forward, labels: &Tensor, spike_penalty: f64) -> Result<Tensor> {
        let mut loss = candle_nn::loss::cross_entropy(&f.logits, labels).ctx("loss")?;
        if spike_penalty > 0.0 && !f.maps.is_empty() {
            let means = f
                .maps
                .iter()
                .map(|(m, f)| m.mean_all().and_then(|m| m * *f))
                .collect::<candle_core::Result<Vec<_>>>()
                .and_then(|m| Tensor::stack(&m, 0))
                .and_then(|m| m.mean_all())
                .ctx("rate")?;
            loss = (loss + means.affine(spike_penalty, 0.0).ctx("rate")?).ctx("loss")?;
        }
        Ok(loss)
    }

    /// Sets each LIF layer's leak to the Q1.15 value `bits[i]` of layer `i` (missing entries:
    /// no leak), as an exported model holds it.
    pub fn set_leak_bits(&self, bits: &[u16]) -> Result<()> {
        for (i, l) in self.layers.iter().enumerate() {
            if let DLayer::Syn(Syn { leak: Some(v), .. }) = l {
                let b = bits.get(i).copied().unwrap_or(1 << 15).min(1 << 15);
                v.set(&Tensor::from_vec(vec![b as f32 / 32768.0], 1, &Device::Cpu).ctx("leak")?)
                    .ctx("leak")?;
            }
        }
        Ok(())
    }

    /// Runs the first `n` samples of `data` (no gradient needed), in batches of 256: the
    /// class (first highest score), the class scores summed over the steps, and the spikes
    /// per layer.
    pub fn simulate(&self, data: &Split, n: usize, show: bool) -> Result<crate::snn::SimResult> {
        let n = n.min(data.len());
        let mut out = crate::snn::SimResult {
            classes: Vec::with_capacity(n),
            spikes: vec![0.0; self.layers.len()],
            scores: Vec::with_capacity(n),
        };
        let bar = crate::train::progress(n, "float SNN".into(), show);
        let idx: Vec<usize> = (0..n).collect();
        for chunk in idx.chunks(256) {
            let f = self.forward(&raw_batch(data, chunk, self.input)?)?;
            let scores = (f.logits * self.timesteps as f64)
                .and_then(|l| l.to_vec2::<f32>())
                .ctx("scores")?;
            out.classes.extend(scores.iter().map(|r| {
                let mut b = 0;
                for (i, &v) in r.iter().enumerate() {
                    if v > r[b] {
                        b = i;
                    }
                }
                b as u32
            }));
            out.scores.extend(scores);
            for (s, x) in out.spikes.iter_mut().zip(&f.spikes) {
                *s += x;
            }
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        Ok(out)
    }

    /// Predicted class (the runtime's first-highest rule) of the samples `idx` of `data`.
    pub fn predict(&self, data: &Split, idx: &[usize]) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(idx.len());
        for chunk in idx.chunks(256) {
            let f = self.forward(&raw_batch(data, chunk, self.input)?)?;
            let rows = f.logits.to_vec2::<f32>().ctx("scores")?;
            out.extend(rows.iter().map(|r| {
                let mut b = 0;
                for (i, &v) in r.iter().enumerate() {
                    if v > r[b] {
                        b = i;
                    }
                }
                b as u32
            }));
        }
        Ok(out)
    }

    /// Top-1 accuracy on the samples `idx` of `data`.
    pub fn accuracy(&self, data: &Split, idx: &[usize]) -> Result<f64> {
        let p = self.predict(data, idx)?;
        let ok = p
            .iter()
            .zip(idx)
            .filter(|(p, &i)| **p == data.labels[i] as u32)
            .count();
        Ok(ok as f64 / idx.len().max(1) as f64)
    }
}

/// `t` where `spiked` (0/1) is 1, else `last`.
fn last_spike(spiked: &Tensor, last: &Tensor, t: usize) -> candle_core::Result<Tensor> {
    (spiked.affine(-1.0, 1.0)? * last)? + (spiked * t as f64)?
}

/// Raw pixels 0..255 of samples `idx`, `(n, c, h, w)`.
fn raw_batch(data: &Split, idx: &[usize], input: [usize; 3]) -> Result<Tensor> {
    let images: Vec<&[u8]> = idx.iter().map(|&i| data.image(i)).collect();
    raw_tensor(&images, input)
}

/// `images` as a batch of raw pixel values (0..255), the direct input.
fn raw_tensor(images: &[&[u8]], input: [usize; 3]) -> Result<Tensor> {
    crate::net::pixel_tensor(images, input, |p| p as f32)
}

/// Figures of one fine-tuning epoch (epoch 0: the converted start).
#[derive(Debug, Clone, Serialize)]
pub struct EpochStats {
    /// Epoch number.
    pub epoch: usize,
    /// Mean training loss (0 for epoch 0).
    pub loss: f64,
    /// Training accuracy during the epoch (0 for epoch 0).
    pub train_accuracy: f64,
    /// Float SNN accuracy on the held-out slice after the epoch.
    pub heldout_accuracy: f64,
    /// Learning rate at the epoch's last batch.
    pub lr: f64,
    /// Spike rate per LIF layer during the epoch's training batches.
    pub spike_rates: Vec<f64>,
    /// Leak of every LIF layer after the epoch.
    pub leaks: Vec<f32>,
    /// Threshold (ANN units) of every LIF layer after the epoch.
    pub thresholds: Vec<f32>,
    /// Wall-clock seconds since fine-tuning began.
    pub seconds: f64,
}

/// What fine-tuning did.
#[derive(Debug, Clone, Serialize)]
pub struct FineTune {
    /// Per epoch, starting with the converted network.
    pub history: Vec<EpochStats>,
    /// Epoch whose parameters were kept (0: the converted network).
    pub best_epoch: usize,
    /// Wall-clock seconds of fine-tuning, held-out evaluations included.
    pub seconds: f64,
    /// Training samples per second (BPTT), wall clock, after the warm-up batches; `None`
    /// with too few batches (see [`crate::train::TIMED_BATCHES`]).
    pub samples_per_second: Option<f64>,
}

/// One BPTT training step's figures.
#[derive(Debug, Clone)]
pub struct StepStats {
    /// The batch's loss.
    pub loss: f32,
    /// Samples of the batch classified right (before the step).
    pub correct: usize,
    /// Spikes per layer over the batch and steps.
    pub spikes: Vec<f64>,
}

/// The optimiser of a [`DietNet`] and the training step [`fine_tune`] repeats: forward over
/// all T steps, backward (BPTT), global gradient-norm clipping, Adam, projection.
pub struct Stepper {
    opt: Optimiser,
    vars: Vec<Var>,
    clip: f64,
    spike_penalty: f64,
    shift: usize,
    aug: Rng,
}

/// Adam as one fused pass per parameter, or candle-nn's composition (the plain pass).
enum Optimiser {
    Fused(crate::kernels::adam::Adam),
    Plain(AdamW),
}

impl Stepper {
    /// Adam over the parameters `spec` trains (weights and biases; thresholds and leaks if
    /// asked), fused or plain as `net` runs.
    pub fn new(net: &DietNet, spec: &DietSpec) -> Result<Stepper> {
        let vars = net.vars(spec.train_threshold, spec.train_leak);
        let opt = if net.fused {
            Optimiser::Fused(crate::kernels::adam::Adam::new(vars.clone()))
        } else {
            Optimiser::Plain(
                AdamW::new(
                    vars.clone(),
                    ParamsAdamW {
                        lr: spec.lr,
                        weight_decay: 0.0,
                        ..ParamsAdamW::default()
                    },
                )
                .ctx("optimiser")?,
            )
        };
        Ok(Stepper {
            opt,
            vars,
            clip: spec.clip,
            spike_penalty: spec.spike_penalty,
            shift: spec.shift,
            aug: Rng::new(spec.seed ^ 0xa065),
        })
    }

    /// One step on the samples `idx` of `data` at learning rate `lr`.
    pub fn step(
        &mut self,
        net: &DietNet,
        data: &Split,
        idx: &[usize],
        lr: f64,
    ) -> Result<StepStats> {
        let images = crate::train::shifted_batch(data, idx, net.input, self.shift, &mut self.aug);
        let images: Vec<&[u8]> = images.iter().map(|v| v.as_ref()).collect();
        let x = raw_tensor(&images, net.input)?;
        let labels: Vec<u32> = idx.iter().map(|&i| data.labels[i] as u32).collect();
        let y = Tensor::from_vec(labels.clone(), idx.len(), &Device::Cpu).ctx("labels")?;
        let f = net.forward(&x)?;
        let loss = net.loss(&f, &y, self.spike_penalty)?;
        let mut grads = loss.backward().ctx("backward")?;
        match &mut self.opt {
            Optimiser::Fused(adam) => {
                let mut scale = 1.0;
                if self.clip > 0.0 {
                    let norm = adam.grad_norm(&grads).ctx("grad norm")?;
                    if norm > self.clip {
                        scale = self.clip / norm;
                    }
                }
                adam.step(&grads, lr, scale).ctx("optimiser step")?;
            }
            Optimiser::Plain(opt) => {
                opt.set_learning_rate(lr);
                if self.clip > 0.0 {
                    let mut sq = 0.0f64;
                    for v in &self.vars {
                        if let Some(g) = grads.get(v.as_tensor()) {
                            sq += g
                                .sqr()
                                .and_then(|g| g.sum_all())
                                .and_then(|g| g.to_dtype(DType::F64))
                                .and_then(|g| g.to_scalar::<f64>())
                                .ctx("grad norm")?;
                        }
                    }
                    let norm = sq.sqrt();
                    if norm > self.clip {
                        let f = self.clip / norm;
                        for v in &self.vars {
                            if let Some(g) = grads.remove(v.as_tensor()) {
                                grads.insert(v.as_tensor(), (g * f).ctx("clip")?);
                            }
                        }
                    }
                }
                opt.step(&grads).ctx("optimiser step")?;
            }
        }
        net.project()?;
        let pred = f
            .logits
            .argmax(1)
            .and_then(|p| p.to_vec1::<u32>())
            .ctx("argmax")?;
        Ok(StepStats {
            loss: loss.to_scalar::<f32>().ctx("loss")?,
            correct: pred.iter().zip(&labels).filter(|(p, l)| p == l).count(),
            spikes: f.spikes,
        })
    }
}

/// Fine-tunes `net` on the samples `train` of `data`, choosing the best epoch on `heldout`,
/// and leaves the best parameters in `net`.
pub fn fine_tune(
    net: &DietNet,
    spec: &DietSpec,
    data: &Split,
    train: &[usize],
    heldout: &[usize],
    show: bool,
) -> Result<FineTune> {
    let start = Instant::now();
    let mut opt = Stepper::new(net, spec)?;
    let lif_layers: Vec<usize> = net
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| matches!(l, DLayer::Syn(Syn { theta: Some(_), .. })))
        .map(|(i, _)| i)
        .collect();
    let neurons: Vec<usize> = lif_layers
        .iter()
        .map(|&i| match &net.layers[i] {
            DLayer::Syn(s) => s.syn.output.iter().product(),
            _ => 0,
        })
        .collect();
    let vals = |v: Vec<(usize, f32)>| v.into_iter().map(|(_, x)| x).collect::<Vec<_>>();
    let acc0 = net.accuracy(data, heldout)?;
    tracing::info!(
        heldout_accuracy = acc0,
        "converted network on the held-out slice"
    );
    let mut history = vec![EpochStats {
        epoch: 0,
        loss: 0.0,
        train_accuracy: 0.0,
        heldout_accuracy: acc0,
        lr: 0.0,
        spike_rates: Vec::new(),
        leaks: vals(net.leaks()?),
        thresholds: vals(net.thresholds()?),
        seconds: start.elapsed().as_secs_f64(),
    }];
    let (mut best, mut best_epoch, mut best_snap) = (acc0, 0, net.snapshot()?);
    let mut rng = Rng::new(spec.seed ^ 0xd1e7);
    let mut order = train.to_vec();
    let per_epoch = order.len().div_ceil(spec.batch);
    let total = per_epoch * spec.epochs;
    let (mut k, mut timed_from, mut timed_samples) = (0usize, None, 0usize);
    let t = net.timesteps as f64;
    for epoch in 0..spec.epochs {
        rng.shuffle(&mut order);
        let bar = crate::train::progress(
            per_epoch,
            format!("diet {}/{}", epoch + 1, spec.epochs),
            show,
        );
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        let mut spikes = vec![0.0f64; net.layers.len()];
        let mut lr = spec.lr;
        for idx in order.chunks(spec.batch) {
            lr = spec.lr_at(k, total, epoch);
            let step = opt.step(net, data, idx, lr)?;
            correct += step.correct;
            seen += idx.len();
            loss_sum += step.loss as f64 * idx.len() as f64;
            for (s, x) in spikes.iter_mut().zip(&step.spikes) {
                *s += x;
            }
            k += 1;
            if k == crate::train::WARMUP_BATCHES {
                timed_from = Some(Instant::now());
            } else if k > crate::train::WARMUP_BATCHES {
                timed_samples += idx.len();
            }
            bar.inc(1);
            bar.set_message(format!(
                "loss {:.4} acc {:.2}%",
                loss_sum / seen as f64,
                100.0 * correct as f64 / seen as f64
            ));
        }
        bar.finish_and_clear();
        let acc = net.accuracy(data, heldout)?;
        let stats = EpochStats {
            epoch: epoch + 1,
            loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            heldout_accuracy: acc,
            lr,
            spike_rates: lif_layers
                .iter()
                .zip(&neurons)
                .map(|(&i, &n)| spikes[i] / (seen.max(1) * n.max(1)) as f64 / t)
                .collect(),
            leaks: vals(net.leaks()?),
            thresholds: vals(net.thresholds()?),
            seconds: start.elapsed().as_secs_f64(),
        };
        tracing::info!(
            epoch = stats.epoch,
            loss = stats.loss,
            train_accuracy = stats.train_accuracy,
            heldout_accuracy = acc,
            leaks = ?stats.leaks,
            thresholds = ?stats.thresholds,
            spike_rates = ?stats.spike_rates,
            "diet epoch done"
        );
        history.push(stats);
        if acc > best {
            (best, best_epoch, best_snap) = (acc, epoch + 1, net.snapshot()?);
        }
    }
    net.restore(&best_snap)?;
    tracing::info!(best_epoch, heldout_accuracy = best, "kept the best epoch");
    let timed = k.saturating_sub(crate::train::WARMUP_BATCHES);
    let samples_per_second = match timed_from {
        Some(t) if timed >= crate::train::TIMED_BATCHES => {
            Some(timed_samples as f64 / t.elapsed().as_secs_f64())
        }
        _ => None,
    };
    Ok(FineTune {
        history,
        best_epoch,
        seconds: start.elapsed().as_secs_f64(),
        samples_per_second,
    })
}

/// Threshold and leak of one LIF layer, converted and learned.
#[derive(Debug, Clone, Serialize)]
pub struct LayerParams {
    /// Layer index.
    pub layer: usize,
    /// Threshold from the conversion (ANN units).
    pub theta_converted: f32,
    /// Threshold after fine-tuning (ANN units).
    pub theta: f32,
    /// Leak after fine-tuning (1: none).
    pub leak: f32,
    /// The leak exported: Q1.15 bits (32768 = 1).
    pub leak_bits: u16,
}

/// The DIET part of `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct DietSummary {
    /// The recipe's `[diet]` settings.
    pub spec: DietSpec,
    /// Timesteps converted, trained and exported at.
    pub timesteps: u16,
    /// The surrogate used.
    pub surrogate: Surrogate,
    /// Training samples fine-tuned on.
    pub train_samples: usize,
    /// Held-out training samples the best epoch was chosen on.
    pub heldout_samples: usize,
    /// Float SNN accuracy of the converted network (before fine-tuning), test set.
    pub converted_float_accuracy: f64,
    /// Integer runtime accuracy of the converted network, test set.
    pub converted_int_accuracy: f64,
    /// Integer runtime spike rates of the converted network, per LIF layer.
    pub converted_spike_rates: Vec<f64>,
    /// Fine-tuning figures, epoch by epoch.
    pub fine_tune: FineTune,
    /// Learned thresholds and leaks.
    pub layers: Vec<LayerParams>,
}

/// `report.json` of a DIET-SNN model: the usual figures (of the fine-tuned model; `epochs`
/// and `train_seconds` are the ANN's) and a `diet` section.
#[derive(Debug, Clone, Serialize)]
pub struct DietReport {
    /// Figures of the exported, fine-tuned model.
    #[serde(flatten)]
    pub base: Report,
    /// Fine-tuning.
    pub diet: DietSummary,
}

/// Writes a DIET report as pretty JSON, atomically.
pub fn write_report(report: &DietReport, path: &Path) -> Result<()> {
    let json = serde_json::to_string_pretty(report).map_err(|e| Error::Io {
        path: path.into(),
        source: e.into(),
    })?;
    crate::error::write_atomic(path, json.as_bytes())
}

/// Share of `classes` equal to `labels` (top-1 accuracy).
pub(crate) fn accuracy_of(classes: &[u32], labels: &[u8]) -> f64 {
    classes
        .iter()
        .zip(labels)
        .filter(|(p, &l)| **p == l as u32)
        .count() as f64
        / classes.len().max(1) as f64
}

/// Size of the held-out slice (the last training samples) for `n` training samples:
/// `spec.holdout`, at most `n / 5`.
pub fn holdout(spec: &DietSpec, n: usize) -> usize {
    spec.holdout.min(n / 5)
}

/// Converts a trained ANN (at the `[diet]` timesteps), fine-tunes it, writes the model to
/// `model`, evaluates float and integer on the test split and returns the report (ANN
/// training fields zero). `spec` overrides the recipe's `[diet]` (default settings if
/// neither).
pub fn finish(
    net: &Net,
    data: &Mnist,
    model: &Path,
    opts: &Options,
    spec: Option<&DietSpec>,
) -> Result<DietReport> {
    let spec = spec
        .cloned()
        .or_else(|| net.recipe.diet.clone())
        .unwrap_or_default();
    spec.check().map_err(|message| Error::Recipe {
        path: net.recipe.path.clone(),
        message: format!("diet: {message}"),
    })?;
    let mut recipe = net.recipe.clone();
    if let Some(t) = spec.timesteps {
        recipe.timesteps = t;
    }
    let net = Net {
        recipe: recipe.clone(),
        params: net.params.clone(),
    };
    let test = &data.test;
    let all_test: Vec<usize> = (0..test.len()).collect();
    let ann_accuracy = crate::train::accuracy(&net, test, test.len())? as f64;
    tracing::info!(ann_accuracy, "float ANN on the test set");
    let snn0 = crate::convert::convert(&net, &data.train)?;
    let t = recipe.timesteps;

    // The converted start, float and integer, for comparison.
    let d = DietNet::from_snn(&snn0, spec.surrogate())?;
    let converted_float_accuracy = d.accuracy(test, &all_test)?;
    let q0 = crate::quantize::quantize(&snn0)?;
    let b0 = crate::export::encode(&q0)?;
    let e0 = crate::eval::evaluate(&b0, model, test, test.len(), None, opts.progress)?;
    tracing::info!(
        converted_float_accuracy,
        converted_int_accuracy = e0.accuracy,
        "converted network on the test set"
    );

    let n = data.train.len();
    let h = holdout(&spec, n);
    let train: Vec<usize> = (0..(n - h).min(spec.samples.unwrap_or(usize::MAX))).collect();
    let heldout: Vec<usize> = (n - h..n).collect();
    tracing::info!(
        train = train.len(),
        heldout = h,
        timesteps = t,
        surrogate = ?spec.surrogate(),
        "DIET fine-tuning"
    );
    let ft = fine_tune(&d, &spec, &data.train, &train, &heldout, opts.progress)?;

    let snn = d.to_snn()?;
    let leaks = d.leak_bits()?;
    let sim = crate::snn::simulate_leaky(&snn, &leaks, test, test.len(), t, opts.progress)?;
    let q = crate::quantize::quantize(&snn)?;
    if let Some(dir) = model.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(crate::error::io(dir))?;
    }
    let bytes = crate::export::write_leaky(&q, &leaks, model)?;
    tracing::info!(path = %model.display(), bytes = bytes.len(), "model written");
    let int = crate::eval::evaluate(&bytes, model, test, test.len(), None, opts.progress)?;
    let snn_float_accuracy = accuracy_of(&sim.classes, &test.labels);
    let agree = crate::eval::agreement(&sim.classes, &int.classes);
    let conversion = snn
        .layers
        .iter()
        .zip(&q.layers)
        .filter_map(|(s, q)| match (s, q) {
            (SnnLayer::Synapse(s), QLayer::Synapse(q)) => {
                Some(LayerConversion::new(s, q, snn.format.bits))
            }
            _ => None,
        })
        .collect();
    let thetas0: Vec<(usize, f32)> = snn0
        .layers
        .iter()
        .filter_map(|l| match l {
            SnnLayer::Synapse(s) => s.threshold.map(|t| (s.index, t)),
            _ => None,
        })
        .collect();
    let layers = thetas0
        .iter()
        .zip(d.thresholds()?)
        .zip(d.leaks()?)
        .map(|((&(layer, t0), (_, t)), (_, l))| LayerParams {
            layer,
            theta_converted: t0,
            theta: t,
            leak: l,
            leak_bits: crate::snn::leak_bits(l),
        })
        .collect();
    let energy = Energy::new(&int, crate::pipeline::ann_macs(&recipe)?);
    let base = Report {
        model: recipe.name.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        recipe: recipe.path.display().to_string(),
        data: opts.data.display().to_string(),
        train_samples: 0,
        epochs: 0,
        train_seconds: 0.0,
        train_samples_per_second: None,
        test_samples: test.len(),
        ann_accuracy,
        snn_float_accuracy,
        snn_float_samples_per_second: None,
        float_int_agreement: agree,
        snn_int: int,
        energy,
        conversion,
        holdout: None,
        timestep_sweep: Vec::new(),
    };
    Ok(DietReport {
        base,
        diet: DietSummary {
            spec: spec.clone(),
            timesteps: t,
            surrogate: spec.surrogate(),
            train_samples: train.len(),
            heldout_samples: h,
            converted_float_accuracy,
            converted_int_accuracy: e0.accuracy,
            converted_spike_rates: e0.layers.iter().map(|l| l.spike_rate).collect(),
            fine_tune: ft,
            layers,
        },
    })
}
