//! Integer network: int8 (or int4) weights with one scale per layer (or, for LIF layers with
//! `per_channel`, one per output channel), integer thresholds and biases in the same units,
//! weights permuted into the runtime's layouts.
//!
//! For a synaptic layer with effective weights `W'` (see [`crate::convert`]), the scale is
//! `s = 127 / max|W'|` (int4: `7 / max|W'|`; with 16-bit membranes capped by the threshold,
//! see [`crate::compress::Format::scale`]); the runtime then stores `round(W' s)`, threshold `round(theta s)`
//! (at least 1) and bias `round(b s)`, so membranes count in units of `1/s` activation.
//! Per channel, `s_c = 127 / max|W'_c|` over channel `c`'s weights, and its threshold and
//! bias use `s_c`: each channel's membrane has its own unit, which costs nothing in the
//! runtime (thresholds are per channel there) and keeps small-weight channels precise.
//! Layouts (see `ember_runtime::format`): activations channels-last (HWC); dense weights
//! `inputs x outputs` with inputs in HWC order; conv weights rows `(ky, kx, c_in)` by columns
//! `c_out`.

use crate::compress::Format;
use crate::convert::{Snn, SnnLayer, Synapse};
use crate::error::{Error, Result};
use crate::kernels::max_abs_of;
use crate::recipe::LayerSpec;

/// A quantized synaptic layer.
#[derive(Debug, Clone)]
pub struct QSynapse {
    /// Index of the layer in the recipe.
    pub index: usize,
    /// The layer's description.
    pub spec: LayerSpec,
    /// Output channels (dense: outputs).
    pub outputs: usize,
    /// int8 weights in the runtime's layout.
    pub weights: Vec<i8>,
    /// Integer bias per output channel, if any.
    pub bias: Option<Vec<i32>>,
    /// Integer threshold: one for the layer, or one per output channel (per-channel
    /// quantization); `None` for the readout.
    pub threshold: Option<Vec<i32>>,
    /// Membrane units per ANN activation unit: one for the layer, or one per output channel.
    pub scale: Vec<f32>,
}

/// A quantized layer.
#[derive(Debug, Clone)]
pub enum QLayer {
    /// Dense or conv.
    Synapse(QSynapse),
    /// Average pooling (sums its window).
    AvgPool {
        /// Window size and stride.
        kernel: usize,
    },
}

/// A quantized network, ready to export.
#[derive(Debug, Clone)]
pub struct QModel {
    /// Model name.
    pub name: String,
    /// Timesteps per inference.
    pub timesteps: u16,
    /// Input height, width, channels.
    pub input: [usize; 3],
    /// Layers in order.
    pub layers: Vec<QLayer>,
    /// Weight bits (the values above are within its range) and membrane width.
    pub format: Format,
}

/// Quantizes every layer of `snn` to its format's weights (int8 or int4 values).
pub fn quantize(snn: &Snn) -> Result<QModel> {
    let layers = snn
        .layers
        .iter()
        .map(|l| match l {
            SnnLayer::AvgPool { kernel } => Ok(QLayer::AvgPool { kernel: *kernel }),
            SnnLayer::Synapse(s) => {
                quantize_synapse(s, snn.per_channel && s.threshold.is_some(), snn.format)
                    .map(QLayer::Synapse)
            }
        })
        .collect::<Result<_>>()?;
    Ok(QModel {
        format: snn.format,
        name: snn.name.clone(),
        timesteps: snn.timesteps,
        input: snn.input,
        layers,
    })
}

/// Output channel of each weight in candle's layout (dense `(out, in)`, conv
/// `(co, ci, k, k)`): weights are stored output-major, `per` weights each.
fn scales(s: &Synapse, per_channel: bool, fmt: Format) -> Result<Vec<f32>> {
    let outputs = s.weight_shape.first().copied().unwrap_or(1).max(1);
    let per = s.weight.len() / outputs;
    let groups: Vec<&[f32]> = if per_channel && per > 0 {
        s.weight.chunks(per).collect()
    } else {
        vec![&s.weight[..]]
    };
    let layer_max = max_abs_of(&s.weight);
    if !(layer_max > 0.0 && layer_max.is_finite()) {
        return Err(Error::Convert {
            layer: s.index,
            message: "weights are all zero or not finite".into(),
        });
    }
    Ok(groups
        .iter()
        .map(|g| {
            // A channel whose weights are all zero keeps the layer's scale.
            let m = max_abs_of(g);
            fmt.scale(if m > 0.0 { m } else { layer_max }, s.threshold)
        })
        .collect())
}

fn quantize_synapse(s: &Synapse, per_channel: bool, fmt: Format) -> Result<QSynapse> {
    let err = |message: &str| Error::Convert {
        layer: s.index,
        message: message.into(),
    };
    let scale = scales(s, per_channel, fmt)?;
    let sc = |o: usize| scale[if scale.len() == 1 { 0 } else { o }];
    let qmax = fmt.qmax();
    let q = |w: f32, o: usize| (w * sc(o)).round().clamp(-qmax, qmax) as i8;
    let [ci, ih, iw] = s.input;
    let (outputs, weights) = match s.spec {
        LayerSpec::Dense { outputs, .. } => {
            // candle (out, in) with `in` in CHW order -> rows in HWC order, cols = out.
            let n_in = ci * ih * iw;
            let mut v = vec![0i8; n_in * outputs];
            for c in 0..ci {
                for p in 0..ih * iw {
                    let row = p * ci + c;
                    for o in 0..outputs {
                        v[row * outputs + o] = q(s.weight[o * n_in + c * ih * iw + p], o);
                    }
                }
            }
            (outputs, v)
        }
        LayerSpec::Conv {
            out_channels: co,
            kernel: k,
            ..
        } => {
            // candle (co, ci, ky, kx) -> rows (ky, kx, ci), cols co.
            let mut v = vec![0i8; k * k * ci * co];
            for o in 0..co {
                for c in 0..ci {
                    for ky in 0..k {
                        for kx in 0..k {
                            v[((ky * k + kx) * ci + c) * co + o] =
                                q(s.weight[((o * ci + c) * k + ky) * k + kx], o);
                        }
                    }
                }
            }
            (co, v)
        }
        LayerSpec::Avgpool { .. } => return Err(err("pooling has no weights")),
    };
    let to_i32 = |x: f32, scale: f32| -> Result<i32> {
        let r = (x * scale).round();
        if r.abs() < i32::MAX as f32 / 2.0 {
            Ok(r as i32)
        } else {
            Err(err("threshold or bias does not fit in 32 bits"))
        }
    };
    let bias = s
        .bias
        .as_ref()
        .map(|b| {
            b.iter()
                .enumerate()
                .map(|(o, &x)| to_i32(x, sc(o)))
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    let threshold = s
        .threshold
        .map(|t| {
            scale
                .iter()
                .map(|&k| to_i32(t, k).map(|t| t.max(1)))
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    Ok(QSynapse {
        index: s.index,
        spec: s.spec,
        outputs,
        weights,
        bias,
        threshold,
        scale,
    })
}
