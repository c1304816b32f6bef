//! A human-readable summary of an `.ember` file.

use std::fmt::Write;

use ember_runtime::format::{Channelwise, Layer, Lif, Neuron, Readout, Storage, Weights};
use ember_runtime::Model;

fn weights(w: &Weights<'_>) -> String {
    let kind = match w.storage {
        Storage::Dense { .. } => "dense".to_string(),
        Storage::Sparse { cols, .. } => format!("sparse (CSR, {} kept)", cols.len() / 2),
        Storage::Ell {
            per_row,
            index_bits,
            ..
        } => format!("row-balanced (ELL, {per_row} per row, {index_bits}-bit indices)"),
    };
    format!("{:?} {kind}, {} B", w.precision, blob_len(w))
}

fn channelwise(c: &Channelwise<'_>) -> String {
    match c {
        Channelwise::Uniform(v) => v.to_string(),
        Channelwise::PerChannel(b) => format!("per-channel[{}]", b.len() / 4),
    }
}

fn lif(l: &Lif<'_>) -> String {
    format!(
        "LIF threshold {} bias {} leak {}/32768 reset {:?} membrane {:?}",
        channelwise(&l.threshold),
        channelwise(&l.bias),
        l.leak.to_bits(),
        l.reset,
        l.membrane
    )
}

fn neuron(n: &Neuron<'_>) -> String {
    match n {
        Neuron::Lif(l) => lif(l),
        Neuron::Lateral(x) => format!("{} lateral inhibition {}", lif(&x.lif), x.inhibition),
        Neuron::GroupLateral(x) => format!(
            "{} lateral inhibition {} within groups of {}",
            lif(&x.lif),
            x.inhibition,
            x.group
        ),
        Neuron::Readout(r) => readout(r),
        Neuron::Fused(f) => {
            let priors = match f.prior {
                Channelwise::Uniform(v) => v.to_string(),
                Channelwise::PerChannel(b) => b
                    .chunks_exact(4)
                    .map(|x| i32::from_le_bytes([x[0], x[1], x[2], x[3]]).to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let (r, c) = (readout(&f.readout), f.classes);
            format!(
                "{r}, groups of {c} classes fused by evidence, pseudo-counts per group {priors}"
            )
        }
    }
}

fn readout(r: &Readout<'_>) -> String {
    format!(
        "readout bias {} leak {}/32768 membrane {:?}",
        channelwise(&r.bias),
        r.leak.to_bits(),
        r.membrane
    )
}

/// Describes a model: input, every layer (shape, precision, weight bytes, neurons), sizes.
pub fn describe(bytes: &[u8]) -> Result<String, ember_runtime::Error> {
    let model = Model::from_bytes(bytes)?;
    let d = model.desc();
    let s = d.input.shape;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "model \"{}\": {} timesteps, input {}x{}x{} (HWC) {:?}",
        d.name, d.timesteps, s.height, s.width, s.channels, d.input.encoding
    );
    let (mut h, mut w, mut c) = (s.height as usize, s.width as usize, s.channels as usize);
    let mut weight_bytes = 0;
    for (i, l) in d.layers.iter().enumerate() {
        let input = format!("{h}x{w}x{c}");
        let text = match l {
            Layer::Dense(x) => {
                weight_bytes += blob_len(&x.weights);
                (h, w, c) = (1, 1, x.outputs as usize);
                format!(
                    "dense   {input} -> {}  weights {}  {}",
                    x.outputs,
                    weights(&x.weights),
                    neuron(&x.neuron)
                )
            }
            Layer::Conv2d(x) => {
                let (k, st, p) = (x.kernel as usize, x.stride as usize, x.padding as usize);
                weight_bytes += blob_len(&x.weights);
                (h, w, c) = (
                    (h + 2 * p - k) / st + 1,
                    (w + 2 * p - k) / st + 1,
                    x.out_channels as usize,
                );
                format!(
                    "conv{k}x{k} s{st} p{p} {input} -> {h}x{w}x{c}  weights {}  {}",
                    weights(&x.weights),
                    neuron(&x.neuron)
                )
            }
            Layer::AvgPool(p) | Layer::MaxPool(p) => {
                let (k, st) = (p.kernel as usize, p.stride as usize);
                (h, w) = ((h - k) / st + 1, (w - k) / st + 1);
                let kind = if matches!(l, Layer::AvgPool(_)) {
                    "avgpool"
                } else {
                    "maxpool"
                };
                format!("{kind}{k} s{st} {input} -> {h}x{w}x{c}")
            }
        };
        let _ = writeln!(out, "  [{i}] {text}");
    }
    let _ = writeln!(
        out,
        "flash: file {} B (weights {} B); RAM: arena {} B (plus the firmware's stack and \
         buffers, see `ember hil`); classes {}",
        bytes.len(),
        weight_bytes,
        model.arena_bytes(),
        model.classes()
    );
    Ok(out)
}

/// Bytes of a weight matrix's blobs (values and indices).
pub fn blob_len(w: &Weights<'_>) -> usize {
    match w.storage {
        Storage::Dense { values } => values.len(),
        Storage::Sparse {
            row_ptr,
            cols,
            values,
        } => row_ptr.len() + cols.len() + values.len(),
        Storage::Ell { cols, values, .. } => cols.len() + values.len(),
    }
}
