//! Float simulation of a converted network with exactly the runtime's semantics, so the
//! integer model's accuracy can be compared with the unquantized one.
//!
//! The semantics, the same as `ember-runtime` (`runtime/src/lif.rs`, `engine.rs`):
//! - Direct input: the first layer's current `W x` (raw pixels 0..255) is computed once and
//!   drives that layer at every timestep.
//! - Every timestep runs the layers in order, so a spike crosses the whole network within
//!   the timestep it is emitted in.
//! - LIF layer: `u <- leak(u) + bias + input`; where `u >= theta` it spikes (output 1) and
//!   `u -= theta` (soft reset). Membranes start at 0. Without leak (the conversion's
//!   default) `leak(u) = u`; with a Q1.15 leak `l < 1` ([`simulate_leaky`]) the runtime
//!   computes `floor(u_int * l)` on the integer membrane `u_int = u * s` (`s` = the layer's
//!   quantization scale, [`quant_scale`]), so the float simulation uses
//!   `floor(u * s * l) / s`.
//! - Average pool: the *sum* of its window's spikes (0..k²).
//! - Readout (leak 0): `u = bias + input` at each timestep, added to the class score; the
//!   class is the first highest score.

use candle_core::{DType, Device, Tensor};

use crate::convert::{Snn, SnnLayer, Synapse};
use crate::data::mnist::Split;
use crate::error::{CandleContext, Result};
use crate::recipe::LayerSpec;

/// Results of simulating a batch of samples.
#[derive(Debug, Clone, Default)]
pub struct SimResult {
    /// Predicted class per sample.
    pub classes: Vec<u32>,
    /// Spikes per layer, summed over samples and timesteps (0 for pool and readout).
    pub spikes: Vec<f64>,
    /// Class scores per sample (ANN units x timesteps).
    pub scores: Vec<Vec<f32>>,
}

struct Layer {
    weight: Tensor,
    bias: Option<Tensor>,
    syn: Synapse,
}

fn apply(l: &Layer, x: &Tensor) -> Result<Tensor> {
    let y = match l.syn.spec {
        LayerSpec::Dense { .. } => x
            .flatten_from(1)
            .ctx("snn dense")?
            .matmul(&l.weight.t().ctx("snn dense")?)
            .ctx("snn dense")?,
        LayerSpec::Conv {
            padding, stride, ..
        } => x.conv2d(&l.weight, padding, stride, 1, 1).ctx("snn conv")?,
        LayerSpec::Avgpool { .. } => x.clone(),
    };
    match &l.bias {
        Some(b) => y.broadcast_add(b).ctx("snn bias"),
        None => Ok(y),
    }
}

/// Simulates `timesteps` steps of `snn` on the first `n` samples of `data`.
pub fn simulate(snn: &Snn, data: &Split, n: usize, timesteps: u16) -> Result<SimResult> {
    simulate_with_progress(snn, data, n, timesteps, false)
}

/// [`simulate`] with a progress bar on stderr when `show` is true.
pub fn simulate_with_progress(
    snn: &Snn,
    data: &Split,
    n: usize,
    timesteps: u16,
    show: bool,
) -> Result<SimResult> {
    simulate_leaky(snn, &[], data, n, timesteps, show)
}

/// The runtime's Q1.15 leak for a multiplier `l` (clamped to [0, 1]): `round(l * 2^15)`.
pub fn leak_bits(l: f32) -> u16 {
    (l.clamp(0.0, 1.0) * 32768.0).round() as u16
}

/// Membrane units per float unit of a layer with effective weights `weight`, as
/// [`crate::quantize`] computes it: `127 / max|w|`.
pub fn quant_scale(weight: &[f32]) -> f32 {
    127.0 / crate::kernels::max_abs_of(weight)
}

/// [`simulate_with_progress`] with a membrane leak per layer: `leaks[i]` is the Q1.15 leak
/// of layer `i` of `snn` ([`leak_bits`]; missing entries and `1 << 15` mean no leak).
///
/// Runs on the fused kernels ([`crate::diet::DietNet::simulate`], layer after layer over all
/// steps); [`simulate_plain`] is the step-after-step composition of candle ops it replaced.
/// The leak's floor uses the exported layer's integer scale
/// ([`crate::compress::Format::scale`]).
pub fn simulate_leaky(
    snn: &Snn,
    leaks: &[u16],
    data: &Split,
    n: usize,
    timesteps: u16,
    show: bool,
) -> Result<SimResult> {
    check_leaks(snn, leaks)?;
    let net = Snn {
        timesteps,
        ..snn.clone()
    };
    let d = crate::diet::DietNet::from_snn(&net, crate::surrogate::Surrogate::default())?;
    d.set_leak_bits(leaks)?;
    d.simulate(data, n, show)
}

/// [`simulate_leaky`] as a composition of candle ops, step after step (the reference the
/// fused kernels are checked against; its leak floor uses `127 / max|w|` as the scale).
pub fn simulate_plain(
    snn: &Snn,
    leaks: &[u16],
    data: &Split,
    n: usize,
    timesteps: u16,
) -> Result<SimResult> {
    run(snn, leaks, data, n, timesteps, false, None)
}

fn check_leaks(snn: &Snn, leaks: &[u16]) -> Result<()> {
    if snn.per_channel && leaks.iter().any(|&b| b < 1 << 15) {
        return Err(crate::error::Error::Convert {
            layer: 0,
            message: "per-channel quantization with a membrane leak is not simulated (the \
                      leak's integer floor is modelled with one scale per layer)"
                .into(),
        });
    }
    Ok(())
}

/// The positive input currents (`bias + W s`, every neuron, every timestep) that the last
/// layer of `snn` receives over `timesteps` steps on the first `n` samples of `data`, with
/// the layers before it spiking: what spiking threshold balancing takes a percentile of.
/// The last layer's own threshold is ignored.
pub fn layer_inputs(snn: &Snn, data: &Split, n: usize, timesteps: u16) -> Result<Vec<f32>> {
    let mut values = Vec::new();
    run(snn, &[], data, n, timesteps, false, Some(&mut values))?;
    Ok(values)
}

fn run(
    snn: &Snn,
    leaks: &[u16],
    data: &Split,
    n: usize,
    timesteps: u16,
    show: bool,
    mut probe: Option<&mut Vec<f32>>,
) -> Result<SimResult> {
    check_leaks(snn, leaks)?;
    let probed = snn.layers.len() - 1;
    let dev = Device::Cpu;
    let mut layers = Vec::new();
    for l in &snn.layers {
        layers.push(match l {
            SnnLayer::Synapse(s) => {
                let weight = Tensor::from_slice(&s.weight, s.weight_shape.as_slice(), &dev)
                    .ctx("snn weights")?;
                let bias = match (&s.bias, s.spec) {
                    (Some(b), LayerSpec::Conv { .. }) => {
                        Some(Tensor::from_slice(b, (1, b.len(), 1, 1), &dev).ctx("bias")?)
                    }
                    (Some(b), _) => Some(Tensor::from_slice(b, (1, b.len()), &dev).ctx("bias")?),
                    (None, _) => None,
                };
                Some(Layer {
                    weight,
                    bias,
                    syn: s.clone(),
                })
            }
            SnnLayer::AvgPool { .. } => None,
        });
    }
    let n = n.min(data.len());
    let mut out = SimResult {
        classes: Vec::with_capacity(n),
        spikes: vec![0.0; layers.len()],
        scores: Vec::with_capacity(n),
    };
    let [h, w, c] = snn.input;
    let bar = crate::train::progress(n, "float SNN".into(), show);
    for start in (0..n).step_by(256) {
        bar.set_position(start as u64);
        let end = (start + 256).min(n);
        let images: Vec<&[u8]> = (start..end).map(|i| data.image(i)).collect();
        // Raw pixels 0..255, NCHW.
        let x = (crate::net::batch_tensor(&images, snn.input)? * 255.0)
            .ctx("input")?
            .reshape((end - start, c, h, w))
            .ctx("input")?;
        let first = layers[0].as_ref().map(|l| apply(l, &x)).transpose()?;
        let mut mem: Vec<Option<Tensor>> = vec![None; layers.len()];
        let mut score: Option<Tensor> = None;
        for _ in 0..timesteps {
            let mut act = x.clone();
            for (i, (l, spec)) in layers.iter().zip(&snn.layers).enumerate() {
                act = match (l, spec) {
                    (None, SnnLayer::AvgPool { kernel }) => {
                        (act.avg_pool2d(*kernel).ctx("snn pool")? * (kernel * kernel) as f64)
                            .ctx("snn pool")?
                    }
                    (Some(l), _) => {
                        let cur = match (&first, i) {
                            (Some(f), 0) => f.clone(),
                            _ => apply(l, &act)?,
                        };
                        if let (Some(values), true) = (probe.as_deref_mut(), i == probed) {
                            let v = cur
                                .flatten_all()
                                .ctx("probe")?
                                .to_vec1::<f32>()
                                .ctx("probe")?;
                            values.extend(v.into_iter().filter(|&x| x > 0.0));
                            break;
                        }
                        match l.syn.threshold {
                            Some(theta) => {
                                let u = match &mem[i] {
                                    Some(u) => {
                                        let u = match leaks.get(i) {
                                            Some(&b) if b < 1 << 15 => {
                                                let s = quant_scale(&l.syn.weight) as f64;
                                                ((u * (s * b as f64 / 32768.0))
                                                    .and_then(|x| x.floor())
                                                    .and_then(|x| x / s))
                                                .ctx("snn leak")?
                                            }
                                            _ => u.clone(),
                                        };
                                        (u + cur).ctx("snn membrane")?
                                    }
                                    None => cur,
                                };
                                let s = u
                                    .ge(theta as f64)
                                    .ctx("fire")?
                                    .to_dtype(DType::F32)
                                    .ctx("fire")?;
                                mem[i] =
                                    Some((&u - (&s * theta as f64).ctx("reset")?).ctx("reset")?);
                                out.spikes[i] +=
                                    s.sum_all().ctx("count")?.to_scalar::<f32>().ctx("count")?
                                        as f64;
                                s
                            }
                            None => {
                                let cur = cur.flatten_from(1).ctx("readout")?;
                                score = Some(match score.take() {
                                    Some(sc) => (sc + &cur).ctx("readout")?,
                                    None => cur.clone(),
                                });
                                cur
                            }
                        }
                    }
                    (None, _) => act,
                };
            }
        }
        if let Some(sc) = score {
            let rows = sc.to_vec2::<f32>().ctx("scores")?;
            out.classes.extend(first_argmax(&rows));
            out.scores.extend(rows);
        }
    }
    bar.finish_and_clear();
    Ok(out)
}

/// Index of the first highest value of each row (the runtime's tie rule).
fn first_argmax(rows: &[Vec<f32>]) -> Vec<u32> {
    rows.iter()
        .map(|r| {
            let mut best = 0;
            for (i, &v) in r.iter().enumerate() {
                if v > r[best] {
                    best = i;
                }
            }
            best as u32
        })
        .collect()
}
