//! Evaluating an `.ember` model with the integer runtime, as the firmware would run it.

use std::path::Path;

use ember_runtime::format::Layer;
use ember_runtime::{Engine, Model};
use serde::Serialize;

use crate::data::mnist::Split;
use crate::error::{Error, Result};

/// Share of samples where the float SNN's class (`float`) equals the integer runtime's
/// (`int`), over the shorter of the two.
pub fn agreement(float: &[u32], int: &[u16]) -> f64 {
    let same = float
        .iter()
        .zip(int)
        .filter(|(f, i)| **f == u32::from(**i))
        .count();
    same as f64 / float.len().min(int.len()).max(1) as f64
}

/// Spike statistics of one LIF layer.
#[derive(Debug, Clone, Serialize)]
pub struct LayerRate {
    /// Layer index in the model.
    pub layer: usize,
    /// Neurons in the layer.
    pub neurons: usize,
    /// Mean spikes per inference.
    pub spikes_per_inference: f64,
    /// spikes / (neurons x timesteps).
    pub spike_rate: f64,
}

/// What the integer runtime did on a test set.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeEval {
    /// Samples run.
    pub samples: usize,
    /// Timesteps per inference.
    pub timesteps: u16,
    /// Top-1 accuracy.
    pub accuracy: f64,
    /// Spike rate of every LIF layer.
    pub layers: Vec<LayerRate>,
    /// Mean synaptic operations per inference.
    pub sops_per_inference: f64,
    /// Mean multiply-accumulates per inference.
    pub macs_per_inference: f64,
    /// Bytes of the model file.
    pub model_bytes: usize,
    /// Bytes of the arena one inference needs.
    pub arena_bytes: usize,
    /// Predicted class of every sample (not serialised).
    #[serde(skip)]
    pub classes: Vec<u16>,
}

/// Runs `bytes` (read from `path`, for messages) on the first `n` samples of `data`.
pub fn evaluate(
    bytes: &[u8],
    path: &Path,
    data: &Split,
    n: usize,
    timesteps: Option<u16>,
    show: bool,
) -> Result<RuntimeEval> {
    let model_err = |source| Error::Model {
        path: path.to_path_buf(),
        source,
    };
    let model = Model::from_bytes(bytes).map_err(model_err)?;
    let t = timesteps.unwrap_or(model.timesteps());
    if model.input_len() != data.rows * data.cols {
        return Err(Error::Mismatch {
            message: format!(
                "{}: the model takes {} input bytes, the dataset's images have {}x{}",
                path.display(),
                model.input_len(),
                data.rows,
                data.cols
            ),
        });
    }
    let mut arena = vec![0u8; model.arena_bytes() + 8];
    let mut engine = Engine::new(&model, &mut arena).map_err(model_err)?;
    let n = n.min(data.len());
    let layers = model.desc().layers.len();
    let (mut spikes, mut sops, mut macs, mut correct) = (vec![0u64; layers], 0u64, 0u64, 0usize);
    let mut classes = Vec::with_capacity(n);
    let bar = crate::train::progress(n, "runtime eval".into(), show);
    for i in 0..n {
        let out = engine.run_for(data.image(i), t).map_err(model_err)?;
        for (s, &k) in spikes.iter_mut().zip(&out.spikes) {
            *s += k as u64;
        }
        sops += out.sops;
        macs += out.macs;
        correct += usize::from(out.class as u8 == data.labels[i]);
        classes.push(out.class);
        if i % 64 == 63 {
            bar.set_position(i as u64 + 1);
            bar.set_message(format!(
                "acc {:.2}%",
                100.0 * correct as f64 / (i + 1) as f64
            ));
        }
    }
    bar.finish_and_clear();
    let nf = n.max(1) as f64;
    let rates = model
        .desc()
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| match l {
            Layer::Dense(d) => d.neuron.lif().is_some(),
            Layer::Conv2d(c) => c.neuron.lif().is_some(),
            _ => false,
        })
        .map(|(i, _)| {
            let neurons = model.layer_outputs(i).unwrap_or(0);
            let per = spikes[i] as f64 / nf;
            LayerRate {
                layer: i,
                neurons,
                spikes_per_inference: per,
                spike_rate: per / (neurons.max(1) as f64 * t as f64),
            }
        })
        .collect();
    Ok(RuntimeEval {
        samples: n,
        timesteps: t,
        accuracy: correct as f64 / nf,
        layers: rates,
        sops_per_inference: sops as f64 / nf,
        macs_per_inference: macs as f64 / nf,
        model_bytes: bytes.len(),
        arena_bytes: model.arena_bytes(),
        classes,
    })
}
