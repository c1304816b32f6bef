//! The dense int8 ANN baseline (REF-CONV-ANN / REF-MLP-ANN of `../shared/REFERENCE.md`): the
//! layers of the same `.ember` model run as a conventional quantized ANN, with ReLU instead
//! of LIF neurons and one pass instead of timesteps, so that its cost can be set beside the
//! event-driven SNN's on the same board.
//!
//! - Every input pixel or activation is multiplied by every weight of its row: no event
//!   skipping, zero activations included (padding taps of a convolution, which multiply an
//!   implicit zero, are left out). Products accumulate in i32.
//! - A hidden layer's output is requantized to u8 with its LIF threshold as the full scale:
//!   `a = clamp(round(255 * (I_snn + b) / threshold), 0, 255)`, where `I_snn` is the current
//!   the SNN layer would receive per timestep at the rates the activations stand for
//!   (255 = one spike per timestep). The bias `b` is the layer's less `threshold / (2T)` (T:
//!   the model's timesteps), which the converter adds so that a T-step spike count rounds
//!   instead of truncating (recipes' `round_rates`, on in every shipped model); the ANN
//!   rounds at its own 255 levels instead. The division is a per-channel fixed-point
//!   multiplier ([`SHIFT`] fractional bits) and offset, computed once by [`prepare`] (a
//!   deployed int8 network keeps them as constants), not per inference.
//! - Average pooling stores the window's mean (a shift for power-of-two windows); max
//!   pooling the maximum.
//! - The last (readout) layer's scores are `gain * I + 255 * bias`, saturated to i32; the
//!   class is the first highest score.
//!
//! This file is plain `core` Rust with no reference to its crate: the host's ember-hil
//! includes the same file to compute the reference results the board must match bit for
//! bit, and the firmware's build script includes it to size the buffers.

use ember_runtime::format::{Channelwise, Encoding, Layer, Neuron, Precision, Storage, Weights};
use ember_runtime::Model;

/// Fractional bits of the requantization multipliers.
pub const SHIFT: u32 = 24;

/// Most layers a model has (the runtime's limit).
pub const MAX_LAYERS: usize = ember_runtime::format::MAX_LAYERS;

/// Buffer sizes a model's ANN needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Bytes of one activation buffer (the largest hidden layer's output); there are two.
    pub act: usize,
    /// Largest output channel count: accumulators.
    pub cols: usize,
    /// Output channels of all the hidden (ReLU) layers: requantization parameters.
    pub params: usize,
    /// Largest convolution patch (kernel² x input channels): an output pixel's inputs.
    pub patch: usize,
}

impl Sizes {
    /// Bytes of all the buffers: two activation buffers, an i32 accumulator per column and
    /// two i64 requantization terms per hidden channel.
    pub const fn bytes(&self) -> usize {
        2 * self.act + 4 * self.cols + 16 * self.params + self.patch
    }
}

/// Working memory of one inference, laid out by [`Sizes`].
pub struct Scratch<'b> {
    /// `2 * Sizes::act` bytes: the activations, ping-pong.
    pub act: &'b mut [u8],
    /// `Sizes::cols` accumulators; the class scores after a run.
    pub acc: &'b mut [i32],
    /// `Sizes::params` per-channel multipliers, layer after layer ([`prepare`]).
    pub mult: &'b mut [i64],
    /// `Sizes::params` per-channel offsets (the bias and the rounding).
    pub off: &'b mut [i64],
    /// `Sizes::patch` bytes: the inputs of one output pixel of a convolution, gathered.
    pub patch: &'b mut [u8],
}

/// What one ANN inference produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output<'b> {
    /// Index of the highest score (the first one on ties).
    pub class: u16,
    /// Class scores.
    pub scores: &'b [i32],
    /// Non-zero activations each layer produced (0 for pooling and the readout layer);
    /// `layers` entries are used.
    pub active: [u32; MAX_LAYERS],
    /// Number of layers.
    pub layers: usize,
    /// Multiply-accumulates executed.
    pub macs: u64,
}

/// Checks that `model` has a dense ANN equivalent and returns the buffer sizes it needs.
pub fn sizes(model: &Model<'_>) -> Result<Sizes, &'static str> {
    let layers = &model.desc().layers;
    let (mut act, mut cols, mut params, mut patch) = (0usize, 0usize, 0usize, 0usize);
    for (i, layer) in layers.iter().enumerate() {
        let (inp, out) = model.layer_shapes(i).ok_or("layer without shapes")?;
        let len = out.height as usize * out.width as usize * out.channels as usize;
        if let Layer::Conv2d(c) = layer {
            patch = patch.max(c.kernel as usize * c.kernel as usize * inp.channels as usize);
        }
        if let Some((w, neuron)) = synapse(layer) {
            if !matches!(w.storage, Storage::Dense { .. }) {
                return Err("the ANN baseline needs dense weight storage, not CSR");
            }
            if matches!(neuron, Neuron::Lateral(_) | Neuron::GroupLateral(_)) {
                return Err("lateral inhibition has no dense ANN equivalent");
            }
            if matches!(neuron, Neuron::Fused(_)) {
                return Err("a fused multimodal readout has no dense ANN baseline");
            }
            cols = cols.max(out.channels as usize);
            if neuron.lif().is_some() {
                params += out.channels as usize;
            }
        }
        if i + 1 < layers.len() {
            act = act.max(len);
        } else if len != out.channels as usize {
            return Err("the ANN baseline needs a readout layer with a 1x1 output");
        }
    }
    Ok(Sizes {
        act,
        cols,
        params,
        patch,
    })
}

/// Activation value that stands for one SNN event, over 255, at the model's input: 255 for
/// a direct input (the SNN adds the pixel itself), 1 for a rate-coded one. It is 1 after a
/// spiking layer (255 = one spike per step) and is multiplied by the window size by an
/// average pooling (the SNN sums its window).
fn input_gain(model: &Model<'_>) -> i64 {
    match model.desc().input.encoding {
        Encoding::Direct => 255,
        Encoding::Rate { .. } => 1,
    }
}

/// Computes every hidden layer's requantization parameters into `scratch` (once, before
/// the first [`run`]): per channel, `a = (acc * mult + off) >> SHIFT` with
/// `mult = gain * 2^SHIFT / threshold` and
/// `off = (255 * (bias - threshold / 2T) + threshold / 2) * 2^SHIFT / threshold`
/// (the last term rounds to nearest).
pub fn prepare(model: &Model<'_>, scratch: &mut Scratch<'_>) -> Result<(), &'static str> {
    let timesteps = i128::from(model.timesteps());
    let mut gain = input_gain(model);
    let mut p = 0;
    for (i, layer) in model.desc().layers.iter().enumerate() {
        let (_, out) = model.layer_shapes(i).ok_or("layer without shapes")?;
        match (layer, synapse(layer)) {
            (Layer::AvgPool(pool), _) => gain *= (pool.kernel as i64) * (pool.kernel as i64),
            (_, Some((_, Neuron::Lif(l)))) => {
                for c in 0..out.channels as usize {
                    let t = channel(&l.threshold, c).max(1) as i128;
                    let m = ((gain as i128) << SHIFT) / t;
                    if m >= 1 << 31 {
                        return Err("a threshold is too small for the ANN's requantization");
                    }
                    let b = channel(&l.bias, c) as i128;
                    let o = ((255 * (2 * timesteps * b - t) + timesteps * t) << SHIFT)
                        / (2 * timesteps * t);
                    let (mult, off) = (scratch.mult.get_mut(p), scratch.off.get_mut(p));
                    let (Some(mult), Some(off)) = (mult, off) else {
                        return Err("scratch smaller than the model's sizes");
                    };
                    (*mult, *off) = (m as i64, o.clamp(-(1 << 62), 1 << 62) as i64);
                    p += 1;
                }
                gain = 1;
            }
            _ => gain = 1,
        }
    }
    Ok(())
}

/// Runs `input` (one sample, channels-last u8) through `model` as a dense int8 ANN in
/// `scratch`, which must be laid out by [`sizes`] and filled by [`prepare`] for the same
/// model.
pub fn run<'b>(
    model: &Model<'_>,
    input: &[u8],
    scratch: &'b mut Scratch<'_>,
) -> Result<Output<'b>, &'static str> {
    let layers = &model.desc().layers;
    let half = scratch.act.len() / 2;
    let (buf0, buf1) = scratch.act.split_at_mut(half);
    if input.len() != model.input_len() {
        return Err("input size differs from the model's");
    }
    let mut gain = input_gain(model);
    let mut p = 0;
    let mut out = Output {
        class: 0,
        scores: &[],
        active: [0; MAX_LAYERS],
        layers: layers.len(),
        macs: 0,
    };
    let mut classes = 0;
    for (i, layer) in layers.iter().enumerate() {
        let (ishape, oshape) = model.layer_shapes(i).ok_or("layer without shapes")?;
        let inp = Dims::of(ishape);
        let outd = Dims::of(oshape);
        let (src, dst): (&[u8], &mut [u8]) = match i % 2 {
            _ if i == 0 => (input, &mut buf0[..]),
            1 => (&buf0[..inp.len()], &mut buf1[..]),
            _ => (&buf1[..inp.len()], &mut buf0[..]),
        };
        let last = i + 1 == layers.len();
        let dst = if last {
            &mut [][..]
        } else {
            &mut dst[..outd.len()]
        };
        match layer {
            Layer::AvgPool(p) | Layer::MaxPool(p) => {
                let max = matches!(layer, Layer::MaxPool(_));
                pool(
                    src,
                    inp,
                    outd,
                    p.kernel as usize,
                    p.stride as usize,
                    max,
                    dst,
                );
                if !max {
                    gain *= (p.kernel as i64) * (p.kernel as i64);
                }
            }
            Layer::Dense(_) | Layer::Conv2d(_) => {
                let Some((w, neuron)) = synapse(layer) else {
                    return Err("not a synaptic layer");
                };
                let cols = outd.c;
                let acc = &mut scratch.acc[..cols];
                let params = if neuron.lif().is_some() { cols } else { 0 };
                let mult = scratch.mult.get(p..p + params).ok_or("scratch too small")?;
                let off = scratch.off.get(p..p + params).ok_or("scratch too small")?;
                p += params;
                let geometry = match layer {
                    Layer::Conv2d(c) => {
                        Some((c.kernel as usize, c.stride as usize, c.padding as usize))
                    }
                    _ => None,
                };
                let job = Job {
                    src,
                    inp,
                    out: outd,
                    geometry,
                    acc,
                    mult,
                    off,
                    dst,
                    neuron,
                    gain,
                    patch: &mut scratch.patch[..],
                };
                let (macs, active) = match (w.storage, w.precision) {
                    (Storage::Dense { values }, Precision::I8) => job.run(I8 { values, cols }),
                    (Storage::Dense { values }, Precision::I4) => job.run(I4 { values, cols }),
                    (Storage::Dense { values }, Precision::I16) => job.run(I16 { values, cols }),
                    _ => return Err("the ANN baseline needs dense weight storage, not CSR"),
                }?;
                out.macs += macs;
                out.active[i] = active;
                gain = 1;
                if last {
                    classes = cols;
                }
            }
        }
    }
    let scores = &scratch.acc[..classes];
    let mut class = 0;
    for (c, &v) in scores.iter().enumerate() {
        if v > scores[class] {
            class = c;
        }
    }
    out.class = class as u16;
    out.scores = scores;
    Ok(out)
}

/// Height, width, channels.
#[derive(Debug, Clone, Copy)]
struct Dims {
    h: usize,
    w: usize,
    c: usize,
}

impl Dims {
    fn of(s: ember_runtime::format::Shape) -> Dims {
        Dims {
            h: s.height as usize,
            w: s.width as usize,
            c: s.channels as usize,
        }
    }
    fn len(&self) -> usize {
        self.h * self.w * self.c
    }
}

/// Weights and neurons of a dense or conv layer.
fn synapse<'l, 'a>(layer: &'l Layer<'a>) -> Option<(&'l Weights<'a>, &'l Neuron<'a>)> {
    match layer {
        Layer::Dense(d) => Some((&d.weights, &d.neuron)),
        Layer::Conv2d(c) => Some((&c.weights, &c.neuron)),
        Layer::AvgPool(_) | Layer::MaxPool(_) => None,
    }
}

/// Channel `c` of a per-layer or per-channel parameter.
fn channel(p: &Channelwise<'_>, c: usize) -> i32 {
    match p {
        Channelwise::Uniform(v) => *v,
        Channelwise::PerChannel(b) => {
            let b = &b[4 * c..4 * c + 4];
            i32::from_le_bytes([b[0], b[1], b[2], b[3]])
        }
    }
}

/// Pooling of a channels-last map: the window's mean (average) or maximum.
fn pool(src: &[u8], inp: Dims, out: Dims, k: usize, s: usize, max: bool, dst: &mut [u8]) {
    let area = (k * k) as u32;
    let shift = area.trailing_zeros();
    let pow2 = area.is_power_of_two();
    for oy in 0..out.h {
        for ox in 0..out.w {
            let o = (oy * out.w + ox) * out.c;
            for c in 0..out.c {
                let mut acc = 0u32;
                for dy in 0..k {
                    for dx in 0..k {
                        let v = src[((oy * s + dy) * inp.w + ox * s + dx) * inp.c + c] as u32;
                        acc = if max { acc.max(v) } else { acc + v };
                    }
                }
                dst[o + c] = if max {
                    acc as u8
                } else if pow2 {
                    (acc >> shift) as u8
                } else {
                    (acc / area) as u8
                };
            }
        }
    }
}

/// Rows of a dense weight matrix at one precision. Products accumulate in registers, four
/// output channels at a time: every weight is read once per output, every activation once
/// per four channels.
trait Rows {
    /// Weight `i` of the matrix (row-major).
    fn at(&self, i: usize) -> i32;
    /// Column count.
    fn cols(&self) -> usize;

    /// `acc[j] += sum_i x[i] * W[row0 + i, c + j]` for j in 0..4.
    #[inline(always)]
    fn dot4(&self, row0: usize, x: &[u8], c: usize, acc: &mut [i32; 4]) {
        let cols = self.cols();
        let [mut a0, mut a1, mut a2, mut a3] = *acc;
        for (i, &x) in x.iter().enumerate() {
            let (x, o) = (x as i32, (row0 + i) * cols + c);
            a0 = a0.wrapping_add(x.wrapping_mul(self.at(o)));
            a1 = a1.wrapping_add(x.wrapping_mul(self.at(o + 1)));
            a2 = a2.wrapping_add(x.wrapping_mul(self.at(o + 2)));
            a3 = a3.wrapping_add(x.wrapping_mul(self.at(o + 3)));
        }
        *acc = [a0, a1, a2, a3];
    }

    /// `acc[j] += sum_i x[i] * W[row0 + i, c + j]` for j in 0..8, where the precision has a
    /// faster way than two [`Rows::dot4`]; false (and `acc` unchanged) where it has none.
    #[inline(always)]
    fn dot8(&self, _row0: usize, _x: &[u8], _c: usize, _acc: &mut [i32; 8]) -> bool {
        false
    }

    /// `acc + sum_i x[i] * W[row0 + i, c]`.
    #[inline(always)]
    fn dot1(&self, row0: usize, x: &[u8], c: usize, acc: i32) -> i32 {
        let cols = self.cols();
        x.iter().enumerate().fold(acc, |a, (i, &x)| {
            a.wrapping_add((x as i32).wrapping_mul(self.at((row0 + i) * cols + c)))
        })
    }
}

struct I8<'a> {
    values: &'a [u8],
    cols: usize,
}

impl Rows for I8<'_> {
    #[inline(always)]
    fn at(&self, i: usize) -> i32 {
        self.values[i] as i8 as i32
    }
    fn cols(&self) -> usize {
        self.cols
    }

    /// Eight channels at a time in eight registers, with one bounds check per row: their
    /// weights are eight consecutive bytes.
    #[inline(always)]
    fn dot8(&self, row0: usize, x: &[u8], c: usize, acc: &mut [i32; 8]) -> bool {
        let cols = self.cols;
        let [mut a0, mut a1, mut a2, mut a3, mut a4, mut a5, mut a6, mut a7] = *acc;
        let mut at = row0 * cols + c;
        for &x in x {
            let x = x as i32;
            let Some(q) = self.values.get(at..at + 8) else {
                return false;
            };
            a0 = a0.wrapping_add(x.wrapping_mul(q[0] as i8 as i32));
            a1 = a1.wrapping_add(x.wrapping_mul(q[1] as i8 as i32));
            a2 = a2.wrapping_add(x.wrapping_mul(q[2] as i8 as i32));
            a3 = a3.wrapping_add(x.wrapping_mul(q[3] as i8 as i32));
            a4 = a4.wrapping_add(x.wrapping_mul(q[4] as i8 as i32));
            a5 = a5.wrapping_add(x.wrapping_mul(q[5] as i8 as i32));
            a6 = a6.wrapping_add(x.wrapping_mul(q[6] as i8 as i32));
            a7 = a7.wrapping_add(x.wrapping_mul(q[7] as i8 as i32));
            at += cols;
        }
        *acc = [a0, a1, a2, a3, a4, a5, a6, a7];
        true
    }
}

struct I4<'a> {
    values: &'a [u8],
    cols: usize,
}

impl Rows for I4<'_> {
    #[inline(always)]
    fn at(&self, i: usize) -> i32 {
        let byte = self.values[i >> 1];
        let n = if i & 1 == 0 { byte << 4 } else { byte & 0xF0 };
        ((n as i8) >> 4) as i32
    }
    fn cols(&self) -> usize {
        self.cols
    }
}

struct I16<'a> {
    values: &'a [u8],
    cols: usize,
}

impl Rows for I16<'_> {
    #[inline(always)]
    fn at(&self, i: usize) -> i32 {
        i16::from_le_bytes([self.values[2 * i], self.values[2 * i + 1]]) as i32
    }
    fn cols(&self) -> usize {
        self.cols
    }
}

/// `acc[c] += sum_i x[i] * W[row0 + i, c]` for every column. Not inlined: the loops get
/// the registers to themselves.
#[inline(never)]
fn mac_rows<R: Rows>(rows: &R, row0: usize, x: &[u8], acc: &mut [i32]) {
    let mut c = 0;
    let mut octets = acc.chunks_exact_mut(8);
    for g in &mut octets {
        let mut a = [g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]];
        if !rows.dot8(row0, x, c, &mut a) {
            // No eight-wide kernel: four at a time from this octet on.
            break;
        }
        g.copy_from_slice(&a);
        c += 8;
    }
    let mut groups = acc[c..].chunks_exact_mut(4);
    for g in &mut groups {
        let mut a = [g[0], g[1], g[2], g[3]];
        rows.dot4(row0, x, c, &mut a);
        g.copy_from_slice(&a);
        c += 4;
    }
    for a in groups.into_remainder() {
        *a = rows.dot1(row0, x, c, *a);
        c += 1;
    }
}

/// One synaptic layer's inference.
struct Job<'x, 'n> {
    src: &'x [u8],
    inp: Dims,
    out: Dims,
    /// Kernel, stride, padding of a convolution; `None` for a dense layer.
    geometry: Option<(usize, usize, usize)>,
    acc: &'x mut [i32],
    mult: &'x [i64],
    off: &'x [i64],
    /// The layer's u8 output; empty for the readout layer, whose scores stay in `acc`.
    dst: &'x mut [u8],
    neuron: &'x Neuron<'n>,
    gain: i64,
    /// Room for one output pixel's inputs.
    patch: &'x mut [u8],
}

impl Job<'_, '_> {
    /// Returns (MACs, non-zero outputs).
    fn run<R: Rows>(self, rows: R) -> Result<(u64, u32), &'static str> {
        let Job {
            src,
            inp,
            out,
            geometry,
            acc,
            mult,
            off,
            dst,
            neuron,
            gain,
            patch,
        } = self;
        let cols = out.c;
        if matches!(
            neuron,
            Neuron::Lateral(_) | Neuron::GroupLateral(_) | Neuron::Fused(_)
        ) {
            return Err("lateral inhibition and fused readouts have no dense ANN equivalent");
        }
        let finish = |acc: &mut [i32], dst: &mut [u8], active: &mut u32| match neuron {
            Neuron::Readout(r) => {
                for (c, a) in acc.iter_mut().enumerate() {
                    let v = gain * *a as i64 + 255 * channel(&r.bias, c) as i64;
                    *a = v.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
                }
            }
            _ => {
                for (c, (a, d)) in acc.iter().zip(dst.iter_mut()).enumerate() {
                    let v = ((*a as i64 * mult[c] + off[c]) >> SHIFT).clamp(0, 255) as u8;
                    *active += u32::from(v != 0);
                    *d = v;
                }
            }
        };
        let (mut macs, mut active) = (0u64, 0u32);
        match geometry {
            None => {
                acc.fill(0);
                mac_rows(&rows, 0, src, acc);
                macs += (src.len() * cols) as u64;
                finish(acc, dst, &mut active);
            }
            Some((k, s, p)) => {
                let taps = k * k * inp.c;
                for oy in 0..out.h {
                    for ox in 0..out.w {
                        acc.fill(0);
                        let inside = oy * s >= p
                            && ox * s >= p
                            && oy * s + k <= inp.h + p
                            && ox * s + k <= inp.w + p;
                        if inside {
                            // Every tap inside the image: gather the k x k x c_in inputs and
                            // multiply them by all the kernel's rows in one pass.
                            let (y0, x0) = (oy * s - p, ox * s - p);
                            for ky in 0..k {
                                let from = ((y0 + ky) * inp.w + x0) * inp.c;
                                let to = ky * k * inp.c;
                                patch[to..to + k * inp.c]
                                    .copy_from_slice(&src[from..from + k * inp.c]);
                            }
                            mac_rows(&rows, 0, &patch[..taps], acc);
                            macs += (taps * cols) as u64;
                        } else {
                            for ky in 0..k {
                                let Some(iy) = (oy * s + ky).checked_sub(p).filter(|&y| y < inp.h)
                                else {
                                    continue;
                                };
                                for kx in 0..k {
                                    let Some(ix) =
                                        (ox * s + kx).checked_sub(p).filter(|&x| x < inp.w)
                                    else {
                                        continue;
                                    };
                                    let px = &src[(iy * inp.w + ix) * inp.c..][..inp.c];
                                    mac_rows(&rows, (ky * k + kx) * inp.c, px, acc);
                                    macs += (inp.c * cols) as u64;
                                }
                            }
                        }
                        let o = (oy * out.w + ox) * cols;
                        let d = if dst.is_empty() {
                            &mut [][..]
                        } else {
                            &mut dst[o..o + cols]
                        };
                        finish(acc, d, &mut active);
                    }
                }
            }
        }
        Ok((macs, active))
    }
}
