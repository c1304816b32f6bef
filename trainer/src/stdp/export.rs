//! Export of a trained STDP network to an `.ember` model: rate-coded input, one dense layer
//! of LIF neurons with lateral inhibition and their frozen thresholds, and a class-vote
//! readout (dense, leak 0, so its summed membrane is the weighted spike count per class).

use super::network::Network;
use super::train::EVAL_SEED;
use crate::Result;
use ember_runtime::format::*;

/// Weights (rows = inputs, cols = neurons) in the smallest storage: dense or CSR, int4 when
/// every integer weight fits 0..=7, else int8.
fn synapses(net: &Network, scale: f32) -> (Precision, Vec<u8>, Vec<u8>, Vec<u8>, bool) {
    let (n, m) = (net.cfg.neurons, net.cfg.inputs);
    let q = |i: usize, j: usize| (net.w[j * m + i] * scale).round().clamp(0.0, 127.0) as i32;
    let max = (0..m)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .map(|(i, j)| q(i, j))
        .max()
        .unwrap_or(0);
    let precision = if max <= 7 {
        Precision::I4
    } else {
        Precision::I8
    };
    let pack = |v: &[i32]| -> Vec<u8> {
        match precision {
            Precision::I4 => v
                .chunks(2)
                .map(|c| (c[0] as u8 & 0xF) | ((*c.get(1).unwrap_or(&0) as u8 & 0xF) << 4))
                .collect(),
            _ => v.iter().map(|&x| x as i8 as u8).collect(),
        }
    };
    let dense: Vec<i32> = (0..m)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .map(|(i, j)| q(i, j))
        .collect();
    let (mut row_ptr, mut cols, mut kept) = (vec![0u8; 4], vec![], vec![]);
    for i in 0..m {
        for j in 0..n {
            if net.alive[j * m + i] && dense[i * n + j] != 0 {
                kept.push(dense[i * n + j]);
                cols.extend((j as u16).to_le_bytes());
            }
        }
        row_ptr.extend((kept.len() as u32).to_le_bytes());
    }
    let dense_bytes = pack(&dense);
    let sparse_values = pack(&kept);
    if row_ptr.len() + cols.len() + sparse_values.len() < dense_bytes.len() {
        (precision, sparse_values, row_ptr, cols, true)
    } else {
        (precision, dense_bytes, vec![], vec![], false)
    }
}

/// Encodes the labelled network; weights are scaled so that w_max maps to `levels - 1` (or
/// to 127 for unquantized weights), thresholds and inhibition by the same factor.
pub fn export(net: &Network, name: &str) -> Result<Vec<u8>> {
    let side = (net.cfg.inputs as f64).sqrt() as u16;
    let votes: Vec<u8> = net.votes.iter().map(|&v| v.clamp(0, 127) as u8).collect();
    encode_network(
        net,
        name,
        Shape {
            height: side,
            width: side,
            channels: 1,
        },
        Head {
            votes: &votes,
            outputs: 10,
            groups: None,
        },
    )
}

/// How an exported network ends: its class-vote readout and, for several ensembles in one
/// layer, their groups.
pub(crate) struct Head<'v> {
    /// Integer votes, `neurons x outputs`, each 0..=127.
    pub votes: &'v [u8],
    /// Readout outputs.
    pub outputs: u16,
    /// `Some((neurons per group, classes per group, pseudo-count per group))`: lateral
    /// inhibition stays within each group of neurons and the readout's groups of class
    /// scores are fused ([`Fused`]).
    pub groups: Option<(u16, u16, Vec<i32>)>,
}

/// Encodes `net` (one layer of LIF neurons, rate-coded input of `shape`) with `head`.
pub(crate) fn encode_network(
    net: &Network,
    name: &str,
    shape: Shape,
    head: Head<'_>,
) -> Result<Vec<u8>> {
    let cfg = &net.cfg;
    let top = if cfg.levels > 1 {
        (cfg.levels - 1).min(127) as f32
    } else {
        127.0
    };
    let scale = top / cfg.w_max;
    let (precision, values, row_ptr, cols, sparse) = synapses(net, scale);
    let thresholds: Vec<u8> = net
        .theta
        .iter()
        .flat_map(|t| {
            (((cfg.threshold + t * cfg.test_theta_scale) * scale)
                .round()
                .max(1.0) as i32)
                .to_le_bytes()
        })
        .collect();
    let storage = if sparse {
        Storage::Sparse {
            row_ptr: &row_ptr,
            cols: &cols,
            values: &values,
        }
    } else {
        Storage::Dense { values: &values }
    };
    let lif = Lif {
        threshold: Channelwise::PerChannel(&thresholds),
        bias: Channelwise::Uniform(0),
        leak: Leak::from_fixed(fixed::types::U1F15::from_num(cfg.leak)).unwrap_or(Leak::NONE),
        reset: Reset::Zero,
        membrane: Width::I32,
    };
    let inhibition = (cfg.inhibition * scale).round() as i32;
    let priors: Vec<u8> = head
        .groups
        .iter()
        .flat_map(|g| g.2.iter().flat_map(|p| p.to_le_bytes()))
        .collect();
    let hidden = Layer::Dense(Dense {
        outputs: cfg.neurons as u16,
        weights: Weights { precision, storage },
        neuron: match &head.groups {
            None => Neuron::Lateral(Lateral { lif, inhibition }),
            Some((group, ..)) => Neuron::GroupLateral(GroupLateral {
                lif,
                inhibition,
                group: *group,
            }),
        },
    });
    let readout = Readout {
        bias: Channelwise::Uniform(0),
        leak: Leak::ZERO,
        membrane: Width::I32,
    };
    let readout = Layer::Dense(Dense {
        outputs: head.outputs,
        weights: Weights {
            precision: Precision::I8,
            storage: Storage::Dense { values: head.votes },
        },
        neuron: match &head.groups {
            None => Neuron::Readout(readout),
            Some((_, classes, _)) => Neuron::Fused(Fused {
                readout,
                classes: *classes,
                prior: Channelwise::PerChannel(&priors),
            }),
        },
    });
    let mut layers = heapless::Vec::new();
    let _ = layers.push(hidden);
    let _ = layers.push(readout);
    let desc = ModelDesc {
        name,
        timesteps: cfg.timesteps,
        input: Input {
            shape,
            encoding: Encoding::Rate { seed: EVAL_SEED },
        },
        layers,
    };
    let blobs = values.len() + row_ptr.len() + cols.len() + thresholds.len() + head.votes.len();
    let mut out = vec![0u8; blobs + 4096];
    let n = encode(&desc, &mut out).map_err(|source| crate::Error::Model {
        path: name.into(),
        source,
    })?;
    out.truncate(n);
    Ok(out)
}
