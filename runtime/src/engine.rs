//! The inference loop: runs a validated [`Model`] in a caller-provided arena.

use crate::fast::{self, out_index};
use crate::format::{
    Channelwise, ConvGeometry, Encoding, Layer, Neuron, Pool, SynapseRef, Weights, Width,
    MAX_LAYERS,
};
use crate::lif::{self, Membrane};
use crate::model::{fuses_pool, Dims, Model, Plan, Region};
use crate::{weights, Error};

/// A word-aligned byte array to use as an arena, e.g. `static mut` on a microcontroller.
#[repr(C, align(8))]
#[derive(Debug)]
pub struct Arena<const N: usize>(pub [u8; N]);

impl<const N: usize> Arena<N> {
    /// A zeroed arena.
    pub const fn new() -> Self {
        Arena([0; N])
    }
}

impl<const N: usize> Default for Arena<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// What one inference produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<'e> {
    /// Index of the highest class score (the first one on ties).
    pub class: u16,
    /// Class scores: the readout membranes summed over the timesteps.
    pub readout: &'e [i32],
    /// Spikes emitted by each layer over all timesteps (0 for pooling and readout layers).
    pub spikes: heapless::Vec<u32, MAX_LAYERS>,
    /// Synaptic operations: weights added to a membrane because an event arrived.
    pub sops: u64,
    /// Multiply-accumulates of the direct-input layer: its current is computed once per
    /// inference, or at every timestep when the layer has 16-bit membranes (see
    /// [`Model::arena_bytes`]), and every computation counts.
    pub macs: u64,
}

/// Runs inferences of one model in one arena.
#[derive(Debug)]
pub struct Engine<'m, 'a> {
    model: &'m Model<'a>,
    arena: &'m mut [u8],
}

/// The first-layer drive of a direct-input model or the previous layer's activations.
enum Drive<'x> {
    /// The direct-input current, kept from the start of the inference.
    Current(&'x [i32]),
    /// The input sample, whose current the layer computes again at this step.
    Recompute(&'x [u8]),
    /// Events (spikes or pooled counts) from the layer before.
    Events(&'x [u8]),
}

/// Disjoint views of the arena's `regions` (the planner never overlaps two regions one step
/// uses); an empty region gives an empty slice.
fn split<const N: usize>(arena: &mut [u8], regions: [Region; N]) -> [&mut [u8]; N] {
    // The regions' indices by offset (insertion sort: a handful, mostly in order already).
    let mut order = [0usize; N];
    for i in 0..N {
        let mut j = i;
        while j > 0 && regions[order[j - 1]].off > regions[i].off {
            order[j] = order[j - 1];
            j -= 1;
        }
        order[j] = i;
    }
    let mut out: [&mut [u8]; N] = core::array::from_fn(|_| <&mut [u8]>::default());
    let (mut rest, mut at) = (arena, 0usize);
    for i in order {
        let r = regions[i];
        if r.len == 0 {
            continue;
        }
        let Some(skip) = r.off.checked_sub(at) else {
            continue;
        };
        let Some((_, tail)) = core::mem::take(&mut rest).split_at_mut_checked(skip) else {
            break;
        };
        let Some((mine, tail)) = tail.split_at_mut_checked(r.len) else {
            break;
        };
        (out[i], rest, at) = (mine, tail, r.end());
    }
    out
}

impl<'m, 'a> Engine<'m, 'a> {
    /// Prepares to run `model` in `arena`, which must hold at least
    /// [`Model::arena_bytes`] bytes after aligning its start to 4 bytes.
    pub fn new(model: &'m Model<'a>, arena: &'m mut [u8]) -> Result<Self, Error> {
        let skip = arena.as_ptr().align_offset(4).min(arena.len());
        let needed = model.arena_bytes() + skip;
        if arena.len() < needed {
            let given = u32::try_from(arena.len()).unwrap_or(u32::MAX);
            return Err(Error::ArenaTooSmall {
                needed: needed as u32,
                given,
            });
        }
        let arena = &mut arena[skip..needed];
        Ok(Engine { model, arena })
    }

    /// One inference over the model's default number of timesteps.
    pub fn run(&mut self, input: &[u8]) -> Result<Outcome<'_>, Error> {
        self.run_for(input, self.model.timesteps())
    }

    /// One inference over `timesteps` steps. `input` is one sample, channels-last u8.
    pub fn run_for(&mut self, input: &[u8], timesteps: u16) -> Result<Outcome<'_>, Error> {
        let model = self.model;
        if input.len() != model.input_len() {
            return Err(Error::InputSizeMismatch {
                expected: model.input_len() as u32,
                given: u32::try_from(input.len()).unwrap_or(u32::MAX),
            });
        }
        if timesteps == 0 {
            return Err(Error::ZeroTimesteps);
        }
        self.arena.fill(0);
        let mut spikes = heapless::Vec::new();
        let _ = spikes.resize(model.plan.len(), 0u32);
        let mut sops = 0u64;
        let mut macs = 0u64;
        let mut rng = match model.desc.input.encoding {
            Encoding::Direct => {
                if model.cache.len > 0 {
                    macs = self.direct_current(input);
                }
                None
            }
            Encoding::Rate { seed } => Some(Xorshift32::new(seed)),
        };
        for _ in 0..timesteps {
            if let Some(rng) = rng.as_mut() {
                let r = model.input_act;
                for (s, &px) in self.arena[r.off..r.end()].iter_mut().zip(input) {
                    *s = u8::from(rng.spikes(px));
                }
            }
            for (i, (layer, plan)) in model.desc.layers.iter().zip(&model.plan).enumerate() {
                let (spk, ops, mac) = self.step(i, layer, plan, input);
                spikes[i] += spk;
                sops += ops;
                macs += mac;
            }
        }
        let Some(last) = model.plan.last() else {
            return Err(Error::BadTopology);
        };
        let readout: &[i32] = bytemuck::cast_slice(&self.arena[last.score.off..last.score.end()]);
        let class = match model.desc.layers.last().and_then(|l| l.synapse()) {
            Some(SynapseRef {
                neuron: Neuron::Fused(f),
                ..
            }) => fused_class(readout, f.classes as usize, &f.prior),
            _ => {
                let mut class = 0;
                for (c, &v) in readout.iter().enumerate() {
                    if v > readout[class] {
                        class = c;
                    }
                }
                class
            }
        };
        Ok(Outcome {
            class: class as u16,
            readout,
            spikes,
            sops,
            macs,
        })
    }

    /// Computes the direct-input layer's current into the cache; returns the MACs done.
    fn direct_current(&mut self, input: &[u8]) -> u64 {
        let model = self.model;
        let r = model.cache;
        let cache: &mut [i32] = bytemuck::cast_slice_mut(&mut self.arena[r.off..r.end()]);
        let plan = &model.plan[0];
        // A direct-input model starts with a synaptic layer (checked at load).
        let Some(SynapseRef { weights, conv, .. }) = model.desc.layers[0].synapse() else {
            return 0;
        };
        direct_rows(weights, conv, plan, input, (0, plan.output.h), cache)
    }

    /// One timestep of layer `i` (`input` is the sample, which a direct-input layer that
    /// recomputes its current reads); returns (spikes emitted, synaptic operations, MACs).
    fn step(&mut self, i: usize, layer: &Layer<'a>, plan: &Plan, input: &[u8]) -> (u32, u64, u64) {
        let model = self.model;
        let layers = &model.desc.layers[..];
        let direct = i == 0 && model.desc.input.encoding == Encoding::Direct;
        let src = match i {
            0 => model.input_act,
            _ => model.plan[i - 1].act,
        };
        let Some(SynapseRef {
            weights,
            conv,
            neuron,
        }) = layer.synapse()
        else {
            // (Pooling never follows the direct input: checked at load.) After a LIF layer
            // that wrote the pooled counts itself there is nothing left to do.
            if let Layer::AvgPool(p) | Layer::MaxPool(p) = layer {
                if !(i > 0 && fuses_pool(layers, i - 1)) {
                    let [events, act] = split(self.arena, [src, plan.act]);
                    let max = matches!(layer, Layer::MaxPool(_));
                    pool(p, plan.input, plan.output, events, act, max);
                }
            }
            return (0, 0, 0);
        };
        let (src, cache) = if direct {
            (Region::default(), model.cache)
        } else {
            (src, Region::default())
        };
        let [events, cache, mem, act, score, aux] = split(
            self.arena,
            [src, cache, plan.mem, plan.act, plan.score, plan.aux],
        );
        let drive = match (direct, cache.is_empty()) {
            (true, false) => Drive::Current(bytemuck::cast_slice(cache)),
            (true, true) => Drive::Recompute(input),
            (false, _) => Drive::Events(events),
        };
        let pooled = match layers.get(i + 1) {
            Some(next @ (Layer::AvgPool(p) | Layer::MaxPool(p))) if fuses_pool(layers, i) => {
                model.plan.get(i + 1).map(|after| FusedPool {
                    pool: *p,
                    max: matches!(next, Layer::MaxPool(_)),
                    output: after.output,
                })
            }
            _ => None,
        };
        let syn = Synapse {
            weights,
            conv,
            plan,
            drive,
            pooled,
        };
        let out = Outputs {
            mem,
            act,
            score,
            aux,
        };
        match neuron.common().2 {
            Width::I16 => syn.neurons::<i16>(neuron, out),
            Width::I32 => syn.neurons::<i32>(neuron, out),
        }
    }
}

/// The direct-input current of output rows `window` (first, count) of the first layer into
/// `cur` (those rows' neurons, zeroed), as unsaturated integer sums: the loader checked that
/// no sum can overflow i32. Returns the MACs.
fn direct_rows(
    weights: &Weights<'_>,
    conv: Option<ConvGeometry>,
    plan: &Plan,
    input: &[u8],
    window: (usize, usize),
    cur: &mut [i32],
) -> u64 {
    fast::events(weights, conv, plan, window, input, cur)
}

/// A pooling layer whose input a LIF layer pools as it fires (see `model::fuses_pool`).
struct FusedPool {
    pool: Pool,
    max: bool,
    /// The pooling layer's output.
    output: Dims,
}

/// The arena regions a synaptic layer's step writes.
struct Outputs<'x> {
    mem: &'x mut [u8],
    act: &'x mut [u8],
    score: &'x mut [u8],
    aux: &'x mut [u8],
}

/// A synaptic layer's weights, geometry and what drives it this timestep.
struct Synapse<'s, 'a> {
    weights: &'s Weights<'a>,
    conv: Option<ConvGeometry>,
    plan: &'s Plan,
    drive: Drive<'s>,
    /// The pooling layer after it, when this layer writes its pooled counts.
    pooled: Option<FusedPool>,
}

impl Synapse<'_, '_> {
    /// Leak, bias, input, then fire (LIF) or accumulate into the class scores (readout);
    /// returns (spikes emitted, synaptic operations, MACs).
    fn neurons<M: Membrane>(&self, neuron: &Neuron<'_>, out: Outputs<'_>) -> (u32, u64, u64) {
        let Outputs {
            mem,
            act,
            score,
            aux,
        } = out;
        let mem: &mut [M] = bytemuck::cast_slice_mut(mem);
        let channels = self.plan.output.c;
        let row = self.plan.output.w * channels;
        let (leak, bias, _) = neuron.common();
        let (sops, macs) = match self.drive {
            Drive::Current(cur) => {
                match M::as_i32(mem) {
                    // One pass instead of two (not under `compact`: the two-pass code stays
                    // for 16-bit membranes anyway).
                    Some(mem) if !weights::COMPACT && mem.len() == cur.len() => {
                        lif::leak_bias_current(mem, channels, leak, bias, cur);
                    }
                    _ => {
                        lif::leak_and_bias::<M, false>(mem, channels, leak, bias);
                        for (m, &c) in mem.iter_mut().zip(cur) {
                            *m = m.add(c);
                        }
                    }
                }
                (0, 0)
            }
            Drive::Recompute(input) => {
                lif::leak_and_bias::<M, false>(mem, channels, leak, bias);
                // Row by row: the current of one output row, then added as the kept one is.
                let cur: &mut [i32] = bytemuck::cast_slice_mut(aux);
                let mut macs = 0;
                for (oy, mem) in mem.chunks_exact_mut(row.max(1)).enumerate() {
                    cur.fill(0);
                    macs += direct_rows(self.weights, self.conv, self.plan, input, (oy, 1), cur);
                    for (m, &c) in mem.iter_mut().zip(cur.iter()) {
                        *m = m.add(c);
                    }
                }
                (0, macs)
            }
            Drive::Events(events) => {
                // When no membrane can leave its range this step, skip the saturation checks.
                // 16-bit membranes always saturate: their bound rarely fits, and one kernel
                // variant fewer keeps the firmware small.
                let saturate = if M::MAX < i32::MAX {
                    lif::leak_and_bias::<M, false>(mem, channels, leak, bias);
                    true
                } else {
                    let peak = lif::leak_and_bias::<M, true>(mem, channels, leak, bias);
                    peak as u64 + self.plan.bound as u64 > M::MAX as u64
                };
                // Without saturation, `fast`; else the saturating kernels.
                let fast = match M::as_i32(mem) {
                    Some(mem) if !saturate => Some(fast::events(
                        self.weights,
                        self.conv,
                        self.plan,
                        (0, self.plan.output.h),
                        events,
                        mem,
                    )),
                    _ => None,
                };
                let sops = match fast {
                    Some(sops) => sops,
                    None => {
                        let kernel = Scatter {
                            conv: self.conv,
                            plan: self.plan,
                            events,
                            mem,
                        };
                        weights::with_rows(self.weights, channels, kernel)
                    }
                };
                (sops, 0)
            }
        };
        let spikes = match neuron {
            Neuron::Lif(l) => match &self.pooled {
                Some(f) => {
                    let (lif, k) = (self.plan.output, f.pool.kernel as usize);
                    let (th, reset) = (&l.threshold, l.reset);
                    lif::fire_pooled(mem, act, (lif, f.output, k), th, reset, f.max)
                }
                None => lif::fire(mem, act, channels, &l.threshold, l.reset),
            },
            Neuron::Lateral(n) => {
                let spikes = lif::fire(mem, act, channels, &n.lif.threshold, n.lif.reset);
                let inhibited = lif::inhibit(mem, act, spikes, n.inhibition);
                return (spikes, sops + inhibited, macs);
            }
            Neuron::GroupLateral(n) => {
                let spikes = lif::fire(mem, act, channels, &n.lif.threshold, n.lif.reset);
                let mut inhibited = 0;
                if spikes > 0 {
                    let g = (n.group as usize).max(1);
                    for (m, a) in mem.chunks_mut(g).zip(act.chunks(g)) {
                        let k = a.iter().filter(|&&s| s != 0).count() as u32;
                        inhibited += lif::inhibit(m, a, k, n.inhibition);
                    }
                }
                return (spikes, sops + inhibited, macs);
            }
            Neuron::Readout(_) | Neuron::Fused(_) => {
                lif::accumulate(mem, bytemuck::cast_slice_mut(score));
                0
            }
        };
        (spikes, sops, macs)
    }
}

/// The class of a [`Fused`](crate::format::Fused) readout (see its docs): `scores` holds
/// groups x `classes` values, group-major; the arg max over c of the product over groups of
/// `s_gc + prior_g`, in u64, saturating (each factor is below 2^32, so two groups are exact).
#[inline(never)]
fn fused_class(scores: &[i32], classes: usize, prior: &Channelwise<'_>) -> usize {
    let classes = classes.max(1);
    // The loader checked one non-negative prior per group (a fused readout is a dense layer,
    // so the scores are exactly groups x classes).
    let score = |c: usize| -> u64 {
        scores
            .chunks_exact(classes)
            .enumerate()
            .fold(1u64, |acc, (g, s)| {
                acc.saturating_mul(s[c].max(0) as u64 + prior.get(g).max(0) as u64)
            })
    };
    let mut best = (0, score(0));
    for c in 1..classes {
        let v = score(c);
        if v > best.1 {
            best = (c, v);
        }
    }
    best.0
}

/// Event-driven input of one synaptic layer, saturating every addition: every non-zero
/// event adds weight rows.
struct Scatter<'x, M> {
    /// Kernel, stride and padding of a convolution; `None` for a dense layer.
    conv: Option<ConvGeometry>,
    plan: &'x Plan,
    events: &'x [u8],
    mem: &'x mut [M],
}

impl<M: Membrane> weights::WithRows for Scatter<'_, M> {
    fn run<R: weights::Rows>(self, rows: R) -> u64 {
        let (events, mem) = (self.events, self.mem);
        match self.conv {
            None => scatter_dense::<M, R>(&rows, events, mem),
            Some(c) => scatter_conv::<M, R>(&rows, c, self.plan, events, mem),
        }
    }
}

/// Dense layer: each non-zero input adds its weight row, in ascending input order.
fn scatter_dense<M: Membrane, R: weights::Rows>(rows: &R, events: &[u8], mem: &mut [M]) -> u64 {
    let mut ops = 0u64;
    for (row, &v) in events.iter().enumerate() {
        if v != 0 {
            ops += rows.add::<M>(row, v as i32, mem) as u64;
        }
    }
    ops
}

/// Convolution: each non-zero input at (y, x, c) adds, for every kernel offset (ky, kx) that
/// maps it onto an output pixel, the weight row (ky, kx, c) into that pixel's output
/// channels. Inputs in ascending (y, x, c) order, then offsets in ascending (ky, kx).
fn scatter_conv<M: Membrane, R: weights::Rows>(
    rows: &R,
    (k, s, p): ConvGeometry,
    plan: &Plan,
    events: &[u8],
    mem: &mut [M],
) -> u64 {
    let (k, s, p) = (k as usize, s as usize, p as usize);
    let (inp, out) = (plan.input, plan.output);
    let mut ops = 0u64;
    for (pix, chans) in events.chunks_exact(inp.c).enumerate() {
        if chans.iter().all(|&v| v == 0) {
            continue;
        }
        let (y, x) = (pix / inp.w, pix % inp.w);
        for (ci, &v) in chans.iter().enumerate() {
            if v == 0 {
                continue;
            }
            for ky in 0..k {
                let Some(oy) = out_index(y, ky, s, p, out.h) else {
                    continue;
                };
                for kx in 0..k {
                    let Some(ox) = out_index(x, kx, s, p, out.w) else {
                        continue;
                    };
                    let o = (oy * out.w + ox) * out.c;
                    let row = (ky * k + kx) * inp.c + ci;
                    ops += rows.add::<M>(row, v as i32, &mut mem[o..o + out.c]) as u64;
                }
            }
        }
    }
    ops
}

/// Pooling over a channels-last map: max (spikes stay spikes) or sum (see `format`).
#[inline(never)]
fn pool(p: &Pool, inp: Dims, out: Dims, input: &[u8], output: &mut [u8], max: bool) {
    let (k, s) = (p.kernel as usize, p.stride as usize);
    for oy in 0..out.h {
        for ox in 0..out.w {
            let o = (oy * out.w + ox) * out.c;
            let Some(dst) = output.get_mut(o..o + out.c) else {
                continue;
            };
            dst.fill(0);
            for dy in 0..k {
                for dx in 0..k {
                    let i = ((oy * s + dy) * inp.w + ox * s + dx) * inp.c;
                    let Some(src) = input.get(i..i + inp.c) else {
                        continue;
                    };
                    if max {
                        for (d, &v) in dst.iter_mut().zip(src) {
                            *d = (*d).max(v);
                        }
                    } else {
                        add_bytes(dst, src);
                    }
                }
            }
        }
    }
}

/// `dst[i] += src[i]` for the sums of average pooling, four bytes per word: the loader checked
/// that no sum passes 255 (largest input value x kernel area), so no byte carries into the
/// next and the sums equal the saturating ones of the definition.
fn add_bytes(dst: &mut [u8], src: &[u8]) {
    let mut dst4 = dst.chunks_exact_mut(4);
    let mut src4 = src.chunks_exact(4);
    for (d, s) in (&mut dst4).zip(&mut src4) {
        let x = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
        let y = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        d.copy_from_slice(&x.wrapping_add(y).to_le_bytes());
    }
    for (d, &v) in dst4.into_remainder().iter_mut().zip(src4.remainder()) {
        *d = d.wrapping_add(v);
    }
}

/// The xorshift32 generator of rate-coded input, public so that host tools (the STDP
/// trainer) draw exactly the spikes the engine draws.
#[derive(Debug, Clone)]
pub struct Xorshift32(u32);

impl Xorshift32 {
    const DEFAULT_SEED: u32 = 0x9E37_79B9;

    /// A generator started from `seed` (0 selects a fixed default seed).
    pub fn new(seed: u32) -> Self {
        Xorshift32(if seed == 0 { Self::DEFAULT_SEED } else { seed })
    }

    /// The next 32 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    /// Whether an input of intensity `value` spikes at this draw: probability value/256.
    pub fn spikes(&mut self, value: u8) -> bool {
        (self.next() >> 24) < value as u32
    }
}
