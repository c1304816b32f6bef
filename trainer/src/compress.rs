//! Pruning and quantization-aware training: the `[compress]` section of a recipe.
//!
//! **Pruning** (Zhu & Gupta 2017, "To prune, or not to prune"): during ANN training (and
//! DIET-SNN fine-tuning) the weakest weights are set to zero on a schedule, gradually, so the
//! network adapts while it loses them. The target sparsity at training step `t` of `n` rises
//! from 0 at `start * n` to `sparsity` at `end * n` along `s(t) = s_f (1 - (1 - p)^3)` (cubic)
//! or jumps there at `start * n` (one-shot); the masks are recomputed every `every` steps and
//! applied after every optimiser step, so pruned weights stay exactly zero. Masks persist in
//! `masks.safetensors` beside the checkpoint and `--resume` restores them.
//!
//! Which weights go is decided by a score per weight: the weight's magnitude by default;
//! [`select`] takes any score: the unsupervised STDP network ([`crate::stdp`]) prunes each
//! neuron's synapses with it, scored by their learned weight (its pre/post spike correlation),
//! and a measured correlation can be passed the same way. Three scopes:
//! - `layer`: each prunable layer loses `sparsity` of its weights;
//! - `global`: one magnitude threshold over all prunable layers (layers with larger weights
//!   keep more);
//! - `row`: every runtime *row* (one input neuron of a dense layer, one `(ky, kx, c_in)` tap of
//!   a conv) keeps the same number of weights over the output channels. The runtime stores
//!   such layers row-balanced ("ELL": no row pointers, 4-bit column indices for at most 16
//!   outputs), which is what makes a pruned model several times smaller in flash.
//!
//! **Quantization-aware training**: with `qat = true` the forward pass uses fake-quantized
//! weights `round(w * s) / s` with `s = (2^(bits-1) - 1) / max|w|` (per layer, or per output
//! channel with `[convert] per_channel`), and the gradient passes straight through
//! (`w + (q(w) - w).detach()`). This is exactly the grid the exporter rounds to
//! ([`crate::quantize`]: conversion scales each layer by a constant, which does not move the
//! grid), so the trained network is the exported one up to the thresholds.
//!
//! `membrane = 16` exports 16-bit saturating membranes (half the RAM); each layer's scale is
//! then capped so that twice its threshold fits in 16 bits, which keeps the integer network
//! exact for a constant drive (see [`crate::quantize`]).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{CandleContext, Error, Result};
use crate::net::Net;

/// The `[compress]` section of a recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressSpec {
    /// Final fraction of each prunable layer's weights set to zero, in [0, 1). 0: no pruning.
    #[serde(default)]
    pub sparsity: f64,
    /// How the weights to prune are chosen: "layer" (default), "global" or "row".
    #[serde(default)]
    pub scope: Scope,
    /// "cubic" (default, gradual) or "oneshot".
    #[serde(default)]
    pub schedule: PruneSchedule,
    /// Fraction of the training steps after which pruning starts (default 0).
    #[serde(default)]
    pub start: f64,
    /// Fraction of the training steps at which the final sparsity is reached (default 0.7).
    #[serde(default = "d_end")]
    pub end: f64,
    /// Optimiser steps between mask updates (default 100).
    #[serde(default = "d_every")]
    pub every: usize,
    /// Recipe layer indices that are never pruned (e.g. a tiny first layer).
    #[serde(default)]
    pub exclude: Vec<usize>,
    /// Bits per exported weight: 8 (default) or 4.
    #[serde(default = "d_bits")]
    pub bits: u8,
    /// Train with fake-quantized weights at `bits` (straight-through gradient); default true.
    #[serde(default = "yes")]
    pub qat: bool,
    /// Membrane width of the exported LIF layers and readout: 32 (default) or 16.
    #[serde(default = "d_membrane")]
    pub membrane: u8,
}

fn d_end() -> f64 {
    0.7
}
fn d_every() -> usize {
    100
}
fn d_bits() -> u8 {
    8
}
fn d_membrane() -> u8 {
    32
}
fn yes() -> bool {
    true
}

impl Default for CompressSpec {
    fn default() -> Self {
        CompressSpec {
            sparsity: 0.0,
            scope: Scope::default(),
            schedule: PruneSchedule::default(),
            start: 0.0,
            end: d_end(),
            every: d_every(),
            exclude: Vec::new(),
            bits: d_bits(),
            qat: true,
            membrane: d_membrane(),
        }
    }
}

/// Which weights compete when a fraction is pruned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Each layer separately.
    #[default]
    Layer,
    /// All prunable layers together.
    Global,
    /// Each runtime row (input neuron or conv tap) separately: row-balanced sparsity.
    Row,
}

/// How the target sparsity rises during training.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PruneSchedule {
    /// `s_f (1 - (1 - p)^3)`, p the progress from `start` to `end`.
    #[default]
    Cubic,
    /// All at once at `start`.
    Oneshot,
}

impl CompressSpec {
    /// Checks the values; the message names the bad field.
    pub fn check(&self, layers: usize) -> std::result::Result<(), String> {
        if !(0.0..1.0).contains(&self.sparsity) {
            return Err(format!("sparsity {} must be in [0, 1)", self.sparsity));
        }
        if !(0.0..=1.0).contains(&self.start) || !(0.0..=1.0).contains(&self.end) {
            return Err("start and end are fractions of the training steps, in [0, 1]".into());
        }
        if self.schedule == PruneSchedule::Cubic && self.end <= self.start {
            return Err(format!(
                "end ({}) must come after start ({})",
                self.end, self.start
            ));
        }
        if self.every == 0 {
            return Err("every must be at least 1 step".into());
        }
        if !matches!(self.bits, 4 | 8) {
            return Err(format!("bits {} must be 4 or 8", self.bits));
        }
        if !matches!(self.membrane, 16 | 32) {
            return Err(format!("membrane {} must be 16 or 32", self.membrane));
        }
        if let Some(&bad) = self.exclude.iter().find(|&&i| i >= layers) {
            return Err(format!("exclude: the recipe has no layer {bad}"));
        }
        Ok(())
    }

    /// The largest weight magnitude on the integer grid: 127 or 7.
    pub fn qmax(&self) -> f32 {
        qmax(self.bits)
    }

    /// Target sparsity after `step` of `total` optimiser steps.
    pub fn target(&self, step: usize, total: usize) -> f64 {
        let f = step as f64 / total.max(1) as f64;
        if f < self.start {
            return 0.0;
        }
        match self.schedule {
            PruneSchedule::Oneshot => self.sparsity,
            PruneSchedule::Cubic => {
                let p = ((f - self.start) / (self.end - self.start)).clamp(0.0, 1.0);
                self.sparsity * (1.0 - (1.0 - p).powi(3))
            }
        }
    }
}

/// The largest magnitude of a signed `bits`-bit weight, symmetric: 127 or 7.
pub fn qmax(bits: u8) -> f32 {
    ((1u32 << (bits.clamp(2, 16) - 1)) - 1) as f32
}

/// Which weights to keep: for each layer, given its scores (candle layout: output-major,
/// `scores.len() / outputs` weights per output), `true` where the weight stays. The
/// `fraction` of the lowest scores go, per layer, over all layers, or per runtime row
/// (a row is one position of the non-output dimensions across all outputs); ties at the
/// cut are broken towards keeping earlier weights, so the result is deterministic.
pub fn select(layers: &[(&[f32], usize)], fraction: f64, scope: Scope) -> Vec<Vec<bool>> {
    let keep_top = |idx: &mut Vec<usize>, score: &dyn Fn(usize) -> f32, keep: usize| {
        // Highest score first; equal scores: lower index first.
        idx.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
        idx.truncate(keep);
    };
    let keep_of = |n: usize| n - ((n as f64 * fraction).round() as usize).min(n);
    match scope {
        Scope::Layer => layers
            .iter()
            .map(|(s, _)| {
                let mut idx: Vec<usize> = (0..s.len()).collect();
                keep_top(&mut idx, &|i| s[i], keep_of(s.len()));
                let mut m = vec![false; s.len()];
                idx.iter().for_each(|&i| m[i] = true);
                m
            })
            .collect(),
        Scope::Global => {
            let total: usize = layers.iter().map(|(s, _)| s.len()).sum();
            let mut idx: Vec<(usize, usize)> = layers
                .iter()
                .enumerate()
                .flat_map(|(l, (s, _))| (0..s.len()).map(move |i| (l, i)))
                .collect();
            idx.sort_by(|&(la, a), &(lb, b)| {
                layers[lb].0[b]
                    .total_cmp(&layers[la].0[a])
                    .then((la, a).cmp(&(lb, b)))
            });
            idx.truncate(keep_of(total));
            let mut m: Vec<Vec<bool>> = layers.iter().map(|(s, _)| vec![false; s.len()]).collect();
            idx.iter().for_each(|&(l, i)| m[l][i] = true);
            m
        }
        Scope::Row => layers
            .iter()
            .map(|(s, outputs)| {
                let outputs = (*outputs).max(1);
                let per = s.len() / outputs;
                let keep = keep_of(outputs);
                let mut m = vec![false; s.len()];
                for r in 0..per {
                    let mut idx: Vec<usize> = (0..outputs).map(|o| o * per + r).collect();
                    keep_top(&mut idx, &|i| s[i], keep);
                    idx.iter().for_each(|&i| m[i] = true);
                }
                m
            })
            .collect(),
    }
}

/// `w` fake-quantized to the signed `bits`-bit grid scaled to its largest magnitude (per
/// output channel: one scale per index of dimension 0), with a straight-through gradient.
pub fn fake_quant(w: &Tensor, bits: u8, per_channel: bool) -> Result<Tensor> {
    fake_quant_min(w, bits, per_channel, 0.0)
}

/// [`fake_quant`] whose grid spans at least `min_max` (a layer whose scale another limit
/// caps, such as 16-bit membranes: see [`Format::scale`]).
pub fn fake_quant_min(w: &Tensor, bits: u8, per_channel: bool, min_max: f32) -> Result<Tensor> {
    let q = qmax(bits) as f64;
    let f = || -> candle_core::Result<Tensor> {
        let wd = w.detach();
        let max = if per_channel && w.rank() > 1 {
            let flat = wd.flatten_from(1)?.abs()?.max_keepdim(1)?;
            let mut shape = vec![w.dim(0)?];
            shape.extend(std::iter::repeat_n(1, w.rank() - 1));
            flat.reshape(shape)?
        } else {
            wd.abs()?.max_all()?.reshape(vec![1; w.rank()])?
        };
        // All-zero channels keep zeros: the scale is finite because of the floor.
        let scale = (max.clamp(min_max.max(1e-12), f32::MAX)? / q)?;
        let grid = wd.broadcast_div(&scale)?.round()?.broadcast_mul(&scale)?;
        w + (grid - &wd)?
    };
    f().ctx("fake quantization")
}

/// Masks of the prunable layers of a network and the sparsity they reach.
#[derive(Debug)]
pub struct Pruner {
    spec: CompressSpec,
    /// Recipe layer index and 0/1 mask (candle layout) of every prunable layer.
    masks: Vec<(usize, Tensor)>,
    /// Sparsity the current masks were made for.
    level: f64,
}

/// Masks beside a checkpoint, for `--resume`.
pub const MASKS: &str = "masks.safetensors";

impl Pruner {
    /// A pruner for `net` with nothing pruned yet, or `None` when the recipe prunes nothing.
    pub fn new(net: &Net) -> Result<Option<Pruner>> {
        let Some(spec) = net.recipe.compress.clone().filter(|c| c.sparsity > 0.0) else {
            return Ok(None);
        };
        let mut masks = Vec::new();
        for (i, p) in net.params.iter().enumerate() {
            if let Some(p) = p {
                if !spec.exclude.contains(&i) {
                    masks.push((i, p.weight.as_tensor().ones_like().ctx("mask")?));
                }
            }
        }
        Ok(Some(Pruner {
            spec,
            masks,
            level: 0.0,
        }))
    }

    /// After optimiser step `step` of `total`: recomputes the masks when due and the target
    /// sparsity rose, and applies them to the weights.
    pub fn after_step(&mut self, net: &Net, step: usize, total: usize) -> Result<()> {
        let target = self.spec.target(step, total);
        if target > self.level && (step % self.spec.every == 0 || target >= self.spec.sparsity) {
            self.prune_to(net, target)?;
        }
        self.apply(net)
    }

    /// Masks keeping the largest-magnitude weights at `sparsity`.
    pub fn prune_to(&mut self, net: &Net, sparsity: f64) -> Result<()> {
        let weights: Vec<(Vec<f32>, usize)> = self
            .masks
            .iter()
            .map(|(i, m)| {
                let w = net.params[*i].as_ref().map(|p| p.weight.as_tensor());
                let w = w.ok_or_else(|| Error::Convert {
                    layer: *i,
                    message: "no weights to prune".into(),
                })?;
                // Already-pruned weights score 0: they stay pruned.
                let v = (w * m)
                    .and_then(|t| t.abs())
                    .and_then(|t| t.flatten_all())
                    .and_then(|t| t.to_vec1::<f32>())
                    .ctx("pruning scores")?;
                Ok((v, w.dim(0).ctx("weights")?))
            })
            .collect::<Result<_>>()?;
        let refs: Vec<(&[f32], usize)> = weights.iter().map(|(v, o)| (&v[..], *o)).collect();
        let keep = select(&refs, sparsity, self.spec.scope);
        for ((_, m), k) in self.masks.iter_mut().zip(keep) {
            let v: Vec<f32> = k.iter().map(|&b| f32::from(u8::from(b))).collect();
            *m = Tensor::from_vec(v, m.dims(), &Device::Cpu).ctx("mask")?;
        }
        self.level = sparsity;
        tracing::debug!(sparsity, "masks updated");
        Ok(())
    }

    /// Zeroes the pruned weights.
    pub fn apply(&self, net: &Net) -> Result<()> {
        for (i, m) in &self.masks {
            if let Some(p) = &net.params[*i] {
                p.weight
                    .set(&(p.weight.as_tensor() * m).ctx("mask")?)
                    .ctx("mask")?;
            }
        }
        Ok(())
    }

    /// Writes the masks and their sparsity to `path`, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut map: HashMap<String, Tensor> = self
            .masks
            .iter()
            .map(|(i, m)| (format!("layers.{i}.mask"), m.clone()))
            .collect();
        map.insert(
            "level".into(),
            Tensor::new(&[self.level as f32], &Device::Cpu).ctx("mask level")?,
        );
        crate::error::save_tensors_atomic(&map, path)
    }

    /// Restores masks written by [`Pruner::save`].
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let err = |message: String| Error::Checkpoint {
            path: path.to_path_buf(),
            message,
        };
        let mut map =
            candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| err(e.to_string()))?;
        for (i, m) in &mut self.masks {
            let name = format!("layers.{i}.mask");
            let t = map
                .remove(&name)
                .ok_or_else(|| err(format!("no tensor {name}")))?;
            if t.dims() != m.dims() {
                return Err(err(format!(
                    "{name} is {:?}, the network needs {:?}",
                    t.dims(),
                    m.dims()
                )));
            }
            *m = t;
        }
        let level = map
            .remove("level")
            .and_then(|t| t.to_vec1::<f32>().ok())
            .and_then(|v| v.first().copied())
            .ok_or_else(|| err("no sparsity level".into()))?;
        self.level = level as f64;
        Ok(())
    }
}

/// Fraction of zero weights in each synaptic layer (recipe layer index, fraction).
pub fn sparsity(net: &Net) -> Result<Vec<(usize, f64)>> {
    net.params
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.as_ref().map(|p| (i, p)))
        .map(|(i, p)| {
            let v = p
                .weight
                .as_tensor()
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .ctx("weights")?;
            let zeros = v.iter().filter(|&&x| x == 0.0).count();
            Ok((i, zeros as f64 / v.len().max(1) as f64))
        })
        .collect()
}

/// How the exporter stores a network: weight bits and membrane width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// Bits per weight: 8 or 4.
    pub bits: u8,
    /// Bits per LIF membrane: 32 or 16 (the readout keeps 32).
    pub membrane: u8,
    /// Weights train on the exported grid (quantization-aware training).
    pub qat: bool,
}

impl Default for Format {
    fn default() -> Self {
        Format {
            bits: 8,
            membrane: 32,
            qat: false,
        }
    }
}

impl Format {
    /// The format a recipe asks for (int8 and 32-bit membranes without `[compress]`).
    pub fn of(recipe: &crate::recipe::Recipe) -> Format {
        recipe
            .compress
            .as_ref()
            .map_or_else(Format::default, |c| Format {
                bits: c.bits,
                membrane: c.membrane,
                qat: c.qat,
            })
    }

    /// The largest magnitude on the weight grid.
    pub fn qmax(&self) -> f32 {
        qmax(self.bits)
    }

    /// Integer units per weight unit of a layer whose largest weight magnitude is `max`
    /// and whose threshold (LIF layers) is `threshold`, in the same units: `qmax / max`,
    /// capped for 16-bit membranes so that twice the threshold fits (`2 theta s <= 32766`):
    /// with a constant drive the membrane then never leaves the 16-bit range before it
    /// would have fired, so saturation changes nothing.
    pub fn scale(&self, max: f32, threshold: Option<f32>) -> f32 {
        let s = self.qmax() / max;
        match threshold {
            Some(t) if self.membrane == 16 && t > 0.0 => s.min(MEMBRANE16_THRESHOLD / t),
            _ => s,
        }
    }
}

/// Largest integer threshold of a layer with 16-bit membranes.
pub const MEMBRANE16_THRESHOLD: f32 = 16383.0;
