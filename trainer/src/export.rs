//! Writing the integer network as an `.ember` file with `ember_runtime::encode`.
//!
//! LIF layers: soft reset (subtract), 32-bit membranes (16-bit with `[compress] membrane =
//! 16`), one threshold per layer and one bias per channel; weights int8 or int4 (the
//! quantized model's format), stored dense or sparse, whichever is smaller; no leak, except with [`encode_leaky`] (the leaks DIET-SNN learns). The readout has leak 0, so each timestep's score is
//! `bias + input` and the class score is their sum over the timesteps (a spike-count
//! readout). Input is direct: raw pixels drive the first layer.

use std::path::Path;

use ember_runtime::format::{
    Channelwise, Conv2d, Dense, Encoding, Input, Layer, Leak, Lif, ModelDesc, Neuron, Pool,
    Precision, Readout, Reset, Shape, Storage, Weights, Width,
};

use crate::error::{Error, Result};
use crate::quantize::{QLayer, QModel};

/// A weight matrix packed for the file: dense, or CSR sparse when that is smaller.
#[derive(Debug, Clone)]
enum Packed {
    Dense(Vec<u8>),
    Sparse {
        row_ptr: Vec<u8>,
        cols: Vec<u8>,
        values: Vec<u8>,
    },
    Ell {
        per_row: u16,
        index_bits: u8,
        cols: Vec<u8>,
        values: Vec<u8>,
    },
}

impl Packed {
    fn bytes(&self) -> usize {
        match self {
            Packed::Dense(v) => v.len(),
            Packed::Sparse {
                row_ptr,
                cols,
                values,
            } => row_ptr.len() + cols.len() + values.len(),
            Packed::Ell { cols, values, .. } => cols.len() + values.len(),
        }
    }

    fn storage(&self) -> Storage<'_> {
        match self {
            Packed::Dense(values) => Storage::Dense { values },
            Packed::Sparse {
                row_ptr,
                cols,
                values,
            } => Storage::Sparse {
                row_ptr,
                cols,
                values,
            },
            Packed::Ell {
                per_row,
                index_bits,
                cols,
                values,
            } => Storage::Ell {
                per_row: *per_row,
                index_bits: *index_bits,
                cols,
                values,
            },
        }
    }
}

/// Row-balanced storage of a `rows x cols` matrix: every row keeps as many entries as its
/// fullest row (the others are padded with zero-valued entries), column indices at 4 bits
/// for at most 16 columns, else 8; `None` for more than 256 columns.
fn ell(w: &[i8], cols: usize, bits: u8) -> Option<Packed> {
    let index_bits: u8 = match cols {
        1..=16 => 4,
        17..=256 => 8,
        _ => return None,
    };
    let per_row = w
        .chunks(cols)
        .map(|r| r.iter().filter(|&&v| v != 0).count())
        .max()
        .unwrap_or(0);
    let (mut idx, mut kept) = (Vec::new(), Vec::new());
    for row in w.chunks(cols) {
        let mut n = 0;
        for (c, &v) in row.iter().enumerate() {
            if v != 0 {
                idx.push(c as u8);
                kept.push(v);
                n += 1;
            }
        }
        for _ in n..per_row {
            idx.push(0);
            kept.push(0);
        }
    }
    let cols = if index_bits == 4 {
        idx.chunks(2)
            .map(|p| p[0] | (p.get(1).copied().unwrap_or(0) << 4))
            .collect()
    } else {
        idx
    };
    Some(Packed::Ell {
        per_row: u16::try_from(per_row).ok()?,
        index_bits,
        cols,
        values: pack(&kept, bits),
    })
}

/// `values` packed at `bits` (8: one byte each; 4: two per byte, low nibble first).
fn pack(values: &[i8], bits: u8) -> Vec<u8> {
    if bits == 4 {
        values
            .chunks(2)
            .map(|p| (p[0] as u8 & 0x0F) | (p.get(1).map_or(0, |&h| h as u8) << 4))
            .collect()
    } else {
        values.iter().map(|&w| w as u8).collect()
    }
}

/// The smallest storage of a `rows x cols` matrix (row-major `w`) at `bits` per weight:
/// dense, row-balanced sparse ([`ell`]) or compressed sparse rows (u32 row pointers, u16
/// column indices), when the zeros pay for the indices. Ties go to dense, then to ELL,
/// which run faster.
fn packed(w: &[i8], cols: usize, bits: u8) -> Packed {
    let dense = Packed::Dense(pack(w, bits));
    if cols == 0 || cols > usize::from(u16::MAX) + 1 {
        return dense;
    }
    let best = match ell(w, cols, bits) {
        Some(e) if e.bytes() < dense.bytes() => e,
        _ => dense,
    };
    let mut row_ptr = vec![0u8; 4];
    let (mut idx, mut kept) = (Vec::new(), Vec::new());
    for row in w.chunks(cols) {
        for (c, &v) in row.iter().enumerate() {
            if v != 0 {
                idx.extend_from_slice(&(c as u16).to_le_bytes());
                kept.push(v);
            }
        }
        row_ptr.extend_from_slice(&(kept.len() as u32).to_le_bytes());
    }
    let sparse = Packed::Sparse {
        row_ptr,
        cols: idx,
        values: pack(&kept, bits),
    };
    if sparse.bytes() < best.bytes() {
        sparse
    } else {
        best
    }
}

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
    let bits = q.format.bits;
    let precision = if bits == 4 {
        Precision::I4
    } else {
        Precision::I8
    };
    let lif_width = if q.format.membrane == 16 {
        Width::I16
    } else {
        Width::I32
    };
    let blobs: Vec<(Packed, Option<Vec<u8>>)> = q
        .layers
        .iter()
        .map(|l| match l {
            QLayer::Synapse(s) => (
                packed(&s.weights, s.outputs, bits),
                s.bias.as_deref().map(le_bytes),
            ),
            QLayer::AvgPool { .. } => (Packed::Dense(Vec::new()), None),
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
                        membrane: lif_width,
                    }),
                    None => Neuron::Readout(Readout {
                        bias,
                        leak: readout_leak,
                        membrane: Width::I32,
                    }),
                };
                let weights = Weights {
                    precision,
                    storage: w.storage(),
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
        .map(|(w, b)| w.bytes() + b.as_ref().map_or(0, Vec::len))
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
