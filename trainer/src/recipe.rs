//! Recipes: one TOML file describes a network (layers, timesteps) and how to train and
//! convert it. The ANN is the recipe's layers with a ReLU after every synaptic layer but the
//! last; the SNN replaces each ReLU by an integrate-and-fire layer and the last layer's
//! output by a readout.
//!
//! ```
//! let r = ember_trainer::recipe::Recipe::parse(r#"
//!     name = "tiny"
//!     timesteps = 4
//!     input = [28, 28, 1]
//!     [[layers]]
//!     kind = "dense"
//!     outputs = 10
//! "#, "tiny.toml".as_ref())?;
//! assert_eq!(r.shapes()?.last(), Some(&[10, 1, 1]));
//! # Ok::<(), ember_trainer::Error>(())
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A network and the settings of every stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Model name, written into the `.ember` file.
    pub name: String,
    /// SNN timesteps per inference.
    pub timesteps: u16,
    /// Input height, width, channels.
    pub input: [usize; 3],
    /// Layers in order.
    pub layers: Vec<LayerSpec>,
    /// ANN training settings.
    #[serde(default)]
    pub train: TrainSpec,
    /// ANN-to-SNN conversion settings.
    #[serde(default)]
    pub convert: ConvertSpec,
    /// DIET-SNN / hybrid STDB fine-tuning after conversion ([`crate::diet`]); absent: none.
    #[serde(default)]
    pub diet: Option<crate::diet::DietSpec>,
    /// Pruning, quantization-aware training and export widths ([`crate::compress`]); absent:
    /// dense int8 weights, 32-bit membranes.
    #[serde(default)]
    pub compress: Option<crate::compress::CompressSpec>,
    /// Where the recipe was read from (for error messages).
    #[serde(skip)]
    pub path: PathBuf,
}

/// One layer of the network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum LayerSpec {
    /// Fully connected; the input is flattened.
    Dense {
        /// Output neurons.
        outputs: usize,
        /// Learn a bias per output.
        #[serde(default = "yes")]
        bias: bool,
    },
    /// 2-D convolution with a square kernel.
    Conv {
        /// Output channels.
        out_channels: usize,
        /// Kernel size.
        kernel: usize,
        /// Zero padding on every side.
        #[serde(default)]
        padding: usize,
        /// Stride.
        #[serde(default = "one")]
        stride: usize,
        /// Learn a bias per output channel.
        #[serde(default)]
        bias: bool,
    },
    /// Non-overlapping average pooling (stride = kernel).
    Avgpool {
        /// Window size.
        kernel: usize,
    },
}

fn yes() -> bool {
    true
}

fn one() -> usize {
    1
}

impl LayerSpec {
    /// Dense and conv layers have weights and neurons; pooling does not.
    pub fn is_synaptic(&self) -> bool {
        !matches!(self, LayerSpec::Avgpool { .. })
    }
}

/// ANN training settings (Adam, cross-entropy).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per batch.
    pub batch: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Seed of weight initialisation and shuffling.
    pub seed: u64,
    /// Learning-rate schedule over all the recipe's epochs: "constant" (default) or
    /// "cosine" (from `lr` down to 0 at the last batch).
    #[serde(default)]
    pub schedule: Schedule,
    /// Data augmentation: shift every training image by a random offset of up to this many
    /// pixels in each direction (zero fill). 0 (default) = off.
    #[serde(default)]
    pub shift: usize,
    /// Knowledge distillation from the `--init` network (Hinton et al.): the loss is
    /// `(1 - distill) * cross-entropy + distill * T^2 * KL(teacher || student)` on the
    /// logits softened by `distill_temperature` T, with the teacher frozen at the weights
    /// training started from. Useful when fine-tuning a dense network into a pruned or
    /// quantized one. 0 (default) = off; needs `ember train --init`.
    #[serde(default)]
    pub distill: f64,
    /// Temperature T of the distillation's softened logits (default 4).
    #[serde(default = "default_distill_temperature")]
    pub distill_temperature: f64,
}

fn default_distill_temperature() -> f64 {
    4.0
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            epochs: 3,
            batch: 64,
            lr: 1e-3,
            seed: 1,
            schedule: Schedule::Constant,
            shift: 0,
            distill: 0.0,
            distill_temperature: default_distill_temperature(),
        }
    }
}

/// Learning-rate schedule of the ANN training.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The same rate throughout.
    #[default]
    Constant,
    /// Half a cosine from `lr` to 0 over all batches of all epochs.
    Cosine,
}

impl Schedule {
    /// The rate at batch `step` of `total` for a base rate `lr`.
    pub fn rate(self, lr: f64, step: usize, total: usize) -> f64 {
        match self {
            Schedule::Constant => lr,
            Schedule::Cosine => {
                let f = step as f64 / total.max(1) as f64;
                0.5 * lr * (1.0 + (std::f64::consts::PI * f.min(1.0)).cos())
            }
        }
    }
}

/// Conversion settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvertSpec {
    /// Threshold of each layer: this percentile of its positive inputs, or "max".
    pub percentile: Percentile,
    /// Training samples used to measure the activations (the first ones of the train split).
    pub calibration_samples: usize,
    /// Add `theta / (2 T)` to every LIF layer's bias, so that over the T timesteps a
    /// constant drive `a` gives `round(T a / theta)` spikes instead of `floor(...)`.
    /// Default true: at T=4 it recovers 1.7 (REF-MLP) and 6.5 (REF-CONV) points at the
    /// 99.9 percentile (models/README.md).
    #[serde(default = "yes")]
    pub round_rates: bool,
    /// Multiplies every threshold after the percentile (default 1.0).
    #[serde(default = "unit_scale")]
    pub scale: f64,
    /// What the percentile is taken of: "activations" (default: the ANN's ReLU outputs)
    /// or "spikes" (layer by layer, the input current each timestep when the layers before
    /// are already converted and spiking, as in the hybrid-training paper).
    #[serde(default)]
    pub method: Balance,
    /// Timesteps simulated per calibration sample with `method = "spikes"`; default the
    /// recipe's `timesteps`.
    #[serde(default)]
    pub calibration_timesteps: Option<u16>,
    /// int8 weights with one scale per output channel (and per-channel integer thresholds)
    /// instead of one per layer. The readout always has one scale, so class scores compare.
    #[serde(default)]
    pub per_channel: bool,
}

fn unit_scale() -> f64 {
    1.0
}

impl Default for ConvertSpec {
    fn default() -> Self {
        ConvertSpec {
            percentile: Percentile::Value(99.9),
            calibration_samples: 1000,
            round_rates: true,
            scale: 1.0,
            method: Balance::Activations,
            calibration_timesteps: None,
            per_channel: false,
        }
    }
}

/// What threshold balancing measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Balance {
    /// The ANN's ReLU activations of each layer.
    #[default]
    Activations,
    /// Each layer's input current in the spiking network, layers before already converted.
    Spikes,
}

/// Which activation becomes a layer's threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Percentile {
    /// A percentile in (0, 100].
    Value(f64),
    /// The string "max": the largest activation.
    Named(Max),
}

/// The literal `"max"`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Max {
    /// The largest activation.
    Max,
}

impl Percentile {
    /// The percentile as a number (100 for "max").
    pub fn value(self) -> f64 {
        match self {
            Percentile::Value(p) => p,
            Percentile::Named(Max::Max) => 100.0,
        }
    }
}

impl Recipe {
    /// Reads and checks a recipe file.
    pub fn load(path: &Path) -> Result<Recipe> {
        let text = std::fs::read_to_string(path).map_err(crate::error::io(path))?;
        Recipe::parse(&text, path)
    }

    /// Parses and checks recipe text; `path` is used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Recipe> {
        let mut r: Recipe = toml::from_str(text).map_err(|e| Error::Recipe {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        r.path = path.to_path_buf();
        r.check()?;
        Ok(r)
    }

    fn err(&self, message: impl Into<String>) -> Error {
        Error::Recipe {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    fn check(&self) -> Result<()> {
        if self.timesteps == 0 {
            return Err(self.err("timesteps must be at least 1"));
        }
        if self.input.contains(&0) {
            return Err(self.err("input dimensions must be positive"));
        }
        match self.layers.last() {
            None => return Err(self.err("no layers")),
            Some(l) if !l.is_synaptic() => {
                return Err(self.err("the last layer must be dense or conv (the readout)"))
            }
            _ => {}
        }
        if !self.layers[0].is_synaptic() {
            return Err(
                self.err("the first layer must be dense or conv (it takes the direct input)")
            );
        }
        for (i, w) in self.layers.windows(2).enumerate() {
            if !w[0].is_synaptic() && !w[1].is_synaptic() {
                return Err(self.err(format!(
                    "layers {i} and {}: two pooling layers in a row",
                    i + 1
                )));
            }
        }
        if self.layers.len() > ember_runtime::format::MAX_LAYERS {
            return Err(self.err(format!(
                "at most {} layers",
                ember_runtime::format::MAX_LAYERS
            )));
        }
        let t = &self.train;
        if t.epochs == 0 || t.batch == 0 || t.lr.is_nan() || t.lr <= 0.0 {
            return Err(self.err("train: epochs, batch and lr must be positive"));
        }
        let p = self.convert.percentile.value();
        if !(p > 0.0 && p <= 100.0) {
            return Err(self.err("convert.percentile must be in (0, 100] or \"max\""));
        }
        if self.convert.calibration_samples == 0 {
            return Err(self.err("convert.calibration_samples must be positive"));
        }
        if !(self.convert.scale.is_finite() && self.convert.scale > 0.0) {
            return Err(self.err("convert.scale must be a positive number"));
        }
        if self.convert.calibration_timesteps == Some(0) {
            return Err(self.err("convert.calibration_timesteps must be positive"));
        }
        if !(0.0..=1.0).contains(&t.distill) {
            return Err(self.err("train.distill must be between 0 and 1"));
        }
        if t.distill_temperature.is_nan() || t.distill_temperature <= 0.0 {
            return Err(self.err("train.distill_temperature must be above 0"));
        }
        if t.shift >= self.input[0].min(self.input[1]) {
            return Err(self.err("train.shift must be smaller than the image"));
        }
        if self.diet.is_some() && self.convert.per_channel {
            return Err(self.err(
                "convert.per_channel is not supported with [diet] (the learned leak's integer \
                 floor is modelled with one scale per layer)",
            ));
        }
        if let Some(d) = &self.diet {
            d.check().map_err(|m| self.err(format!("diet: {m}")))?;
        }
        if let Some(c) = &self.compress {
            c.check(self.layers.len())
                .map_err(|m| self.err(format!("compress: {m}")))?;
        }
        self.shapes().map(|_| ())
    }

    /// This recipe with its `[compress]` sparsity, bits and/or membrane width replaced (a
    /// default section added if it has none), checked again.
    pub fn with_compression(
        mut self,
        sparsity: Option<f64>,
        bits: Option<u8>,
        membrane: Option<u8>,
    ) -> Result<Recipe> {
        if sparsity.is_none() && bits.is_none() && membrane.is_none() {
            return Ok(self);
        }
        let c = self.compress.get_or_insert_with(Default::default);
        if let Some(s) = sparsity {
            c.sparsity = s;
        }
        if let Some(b) = bits {
            c.bits = b;
        }
        if let Some(m) = membrane {
            c.membrane = m;
        }
        self.check()?;
        Ok(self)
    }

    /// Output shape `[channels, height, width]` of every layer (dense: `[n, 1, 1]`).
    pub fn shapes(&self) -> Result<Vec<[usize; 3]>> {
        let [h, w, c] = self.input;
        let mut s = [c, h, w];
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            s = match *l {
                LayerSpec::Dense { outputs, .. } if outputs > 0 => [outputs, 1, 1],
                LayerSpec::Conv {
                    out_channels,
                    kernel,
                    padding,
                    stride,
                    ..
                } if out_channels > 0
                    && kernel > 0
                    && stride > 0
                    && padding < kernel
                    && s[1] + 2 * padding >= kernel
                    && s[2] + 2 * padding >= kernel =>
                {
                    [
                        out_channels,
                        (s[1] + 2 * padding - kernel) / stride + 1,
                        (s[2] + 2 * padding - kernel) / stride + 1,
                    ]
                }
                LayerSpec::Avgpool { kernel } if kernel > 0 && s[1] >= kernel && s[2] >= kernel => {
                    [s[0], s[1] / kernel, s[2] / kernel]
                }
                _ => {
                    return Err(self.err(format!(
                        "layer {i}: impossible size for input {s:?} (c, h, w)"
                    )))
                }
            };
            out.push(s);
        }
        Ok(out)
    }

    /// Input shape `[channels, height, width]` of layer `i`.
    pub fn input_shape(&self, i: usize) -> Result<[usize; 3]> {
        let [h, w, c] = self.input;
        Ok(if i == 0 {
            [c, h, w]
        } else {
            self.shapes()?[i - 1]
        })
    }
}
