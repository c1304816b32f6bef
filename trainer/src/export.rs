//! Writing the integer network as an `.ember` file with `ember_runtime::encode`.
//!
//! LIF layers: soft reset (subtract), 32-bit membranes, one threshold per layer and one bias
//! per channel; no leak, except with [`encode_leaky`] (the leaks DIET-SNN learns). The readout has leak 0, so each timestep's score is
//! `bias + input` and the class score is their sum over the timesteps (a spike-count
//! readout). Input is direct: raw pixels drive the first layer.

use std::path::Path;

use ember_runtime::format::{
    Channelwise, Conv2d, Dense, Encoding, Input, Layer, Leak, Lif, ModelDesc, Neuron, Pool,
    Precision, Readout, Reset, Shape, Storage, Weights, Width,
};

use crate::error::{Error, Result};
use crate::quantize::{QLayer, QModel};

fn le_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn narrow(x: usize, what: &str, layer: usize) -> Result<u16> {
    u16::try_from(x).map_err(|_| Error::Convert {
        layer,
        message: format!("{what} {x} does not fit the format"),
    })
}

/// Encodes `q` as the bytes of an `.ember` file and checks that the runtime loads them.
pub fn encode(q: &QModel) -> Result<Vec<u8>> {
    encode_leaky(q, &[])
}

/// [`encode`] with a membrane leak per layer: `leaks[i]` is the Q1.15 leak of layer `i`'s
/// LIF neurons (`1 << 15` or a missing entry: no leak; see [`crate::snn::leak_bits`]).
pub fn encode_leaky(q: &QModel, leaks: &[u16]) -> Result<Vec<u8>> {
    let blobs: Vec<(Vec<u8>, Option<Vec<u8>>)> = q
        .layers
        .iter()
        .map(|l| match l {
            QLayer::Synapse(s) => (
                s.weights.iter().map(|&w| w as u8).collect(),
                s.bias.as_deref().map(le_bytes),
            ),
            QLayer::AvgPool { .. } => (Vec::new(), None),
        })
        .collect();
    let thresholds: Vec<Vec<u8>> = q
        .layers
        .iter()
        .map(|l| match l {
            QLayer::Synapse(s) => s.threshold.as_deref().map(le_bytes).unwrap_or_default(),
            QLayer::AvgPool { .. } => Vec::new(),
        })
        .collect();
    let readout_leak =
        Leak::from_fixed(fixed::types::U1F15::ZERO).ok_or_else(|| Error::Convert {
            layer: q.layers.len() - 1,
            message: "readout leak".into(),
        })?;
    let mut layers = heapless::Vec::new();
    for (i, (l, (w, b))) in q.layers.iter().zip(&blobs).enumerate() {
        let layer = match l {
            QLayer::AvgPool { kernel } => {
                let k = u8::try_from(*kernel).map_err(|_| Error::Convert {
                    layer: i,
                    message: "pool kernel".into(),
                })?;
                Layer::AvgPool(Pool {
                    kernel: k,
                    stride: k,
                })
            }
            QLayer::Synapse(s) => {
                let bias = match b {
                    Some(b) => Channelwise::PerChannel(b),
                    None => Channelwise::Uniform(0),
                };
                let neuron = match s.threshold.as_deref() {
                    Some(t) => Neuron::Lif(Lif {
                        threshold: match t {
                            [one] => Channelwise::Uniform(*one),
                            _ => Channelwise::PerChannel(&thresholds[i]),
                        },
                        bias,
                        leak: match leaks.get(i) {
                            Some(&b) => Leak::from_fixed(fixed::types::U1F15::from_bits(b))
                                .ok_or_else(|| Error::Convert {
                                    layer: i,
                                    message: format!("leak {b} is above 1 (Q1.15)"),
                                })?,
                            None => Leak::NONE,
                        },
                        reset: Reset::Subtract,
                        membrane: Width::I32,
                    }),
                    None => Neuron::Readout(Readout {
                        bias,
                        leak: readout_leak,
                        membrane: Width::I32,
                    }),
                };
                let weights = Weights {
                    precision: Precision::I8,
                    storage: Storage::Dense { values: w },
                };
                let outputs = narrow(s.outputs, "outputs", s.index)?;
                match s.spec {
                    crate::recipe::LayerSpec::Conv {
                        kernel,
                        padding,
                        stride,
                        ..
                    } => {
                        let b8 = |x: usize| {
                            u8::try_from(x).map_err(|_| Error::Convert {
                                layer: i,
                                message: "conv geometry".into(),
                            })
                        };
                        Layer::Conv2d(Conv2d {
                            out_channels: outputs,
                            kernel: b8(kernel)?,
                            stride: b8(stride)?,
                            padding: b8(padding)?,
                            weights,
                            neuron,
                        })
                    }
                    _ => Layer::Dense(Dense {
                        outputs,
                        weights,
                        neuron,
                    }),
                }
            }
        };
        layers.push(layer).map_err(|_| Error::Convert {
            layer: i,
            message: "too many layers".into(),
        })?;
    }
    let [h, w, c] = q.input;
    let desc = ModelDesc {
        name: &q.name,
        timesteps: q.timesteps,
        input: Input {
            shape: Shape {
                height: narrow(h, "height", 0)?,
                width: narrow(w, "width", 0)?,
                channels: narrow(c, "channels", 0)?,
            },
            encoding: Encoding::Direct,
        },
        layers,
    };
    let size: usize = blobs
        .iter()
        .map(|(w, b)| w.len() + b.as_ref().map_or(0, Vec::len))
        .sum::<usize>()
        + thresholds.iter().map(Vec::len).sum::<usize>()
        + 4096;
    let mut out = vec![0u8; size];
    let path = Path::new("<exported model>");
    let n = ember_runtime::encode(&desc, &mut out).map_err(|source| Error::Model {
        path: path.into(),
        source,
    })?;
    out.truncate(n);
    ember_runtime::Model::from_bytes(&out).map_err(|source| Error::Model {
        path: path.into(),
        source,
    })?;
    Ok(out)
}

/// Encodes `q` and writes it to `path` atomically; returns the bytes written.
pub fn write(q: &QModel, path: &Path) -> Result<Vec<u8>> {
    write_leaky(q, &[], path)
}

/// [`write`] with the leaks of [`encode_leaky`].
pub fn write_leaky(q: &QModel, leaks: &[u16], path: &Path) -> Result<Vec<u8>> {
    let bytes = encode_leaky(q, leaks)?;
    crate::error::write_atomic(path, &bytes)?;
    Ok(bytes)
}
