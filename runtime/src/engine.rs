//! The inference loop: runs a validated [`Model`] in a caller-provided arena.

use crate::fast::{self, out_index};
use crate::format::{
    ConvGeometry, Encoding, Layer, Neuron, Pool, SynapseRef, Weights, Width, MAX_LAYERS,
};
use crate::lif::{self, Membrane};
use crate::model::{Dims, Model, Plan};
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
    /// Multiply-accumulates of the direct-input layer (computed once per inference).
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
    Current(&'x [i32]),
    Events(&'x [u8]),
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
                macs = self.direct_current(input);
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
                let (spk, ops) = self.step(i, layer, plan);
                spikes[i] += spk;
                sops += ops;
            }
        }
        let Some(last) = model.plan.last() else {
            return Err(Error::BadTopology);
        };
        let readout: &[i32] = bytemuck::cast_slice(&self.arena[last.score.off..last.score.end()]);
        let mut class = 0;
        for (c, &v) in readout.iter().enumerate() {
            if v > readout[class] {
                class = c;
            }
        }
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
        // The loader checked fan-in x 255 x max|weight| <= i32::MAX: no addition can overflow.
        if let Some(macs) = fast::events(weights, conv, plan, input, cache) {
            return macs;
        }
        let kernel = Scatter {
            conv,
            plan,
            events: input,
            mem: cache,
            saturate: false,
        };
        weights::with_rows(weights, plan.output.c, kernel)
    }

    /// One timestep of layer `i`; returns (spikes emitted, synaptic operations).
    fn step(&mut self, i: usize, layer: &Layer<'a>, plan: &Plan) -> (u32, u64) {
        let model = self.model;
        // Everything this layer reads lies before its own regions (mem, act, score, in order).
        let (before, after) = self.arena.split_at_mut(plan.mem.off);
        let drive = if i == 0 && model.cache.len > 0 {
            Drive::Current(bytemuck::cast_slice(
                &before[model.cache.off..model.cache.end()],
            ))
        } else {
            let r = if i == 0 {
                model.input_act
            } else {
                model.plan[i - 1].act
            };
            Drive::Events(&before[r.off..r.end()])
        };
        let (mem, rest) = after.split_at_mut(plan.act.off - plan.mem.off);
        let (act, score) = rest.split_at_mut(plan.score.off - plan.act.off);
        let (mem, act, score) = (
            &mut mem[..plan.mem.len],
            &mut act[..plan.act.len],
            &mut score[..plan.score.len],
        );
        let Some(SynapseRef {
            weights,
            conv,
            neuron,
        }) = layer.synapse()
        else {
            if let (Layer::AvgPool(p) | Layer::MaxPool(p), Drive::Events(input)) = (layer, drive) {
                let max = matches!(layer, Layer::MaxPool(_));
                pool(p, plan.input, plan.output, input, act, max);
            }
            // (Pooling never follows the direct input: checked at load.)
            return (0, 0);
        };
        let syn = Synapse {
            weights,
            conv,
            plan,
            drive,
        };
        match neuron.common().2 {
            Width::I16 => syn.neurons::<i16>(neuron, mem, act, score),
            Width::I32 => syn.neurons::<i32>(neuron, mem, act, score),
        }
    }
}

/// A synaptic layer's weights, geometry and what drives it this timestep.
struct Synapse<'s, 'a> {
    weights: &'s Weights<'a>,
    conv: Option<ConvGeometry>,
    plan: &'s Plan,
    drive: Drive<'s>,
}

impl Synapse<'_, '_> {
    /// Leak, bias, input, then fire (LIF) or accumulate into the class scores (readout);
    /// returns (spikes emitted, synaptic operations).
    fn neurons<M: Membrane>(
        &self,
        neuron: &Neuron<'_>,
        mem: &mut [u8],
        act: &mut [u8],
        score: &mut [u8],
    ) -> (u32, u64) {
        let mem: &mut [M] = bytemuck::cast_slice_mut(mem);
        let channels = self.plan.output.c;
        let (leak, bias, _) = neuron.common();
        let sops = match self.drive {
            Drive::Current(cur) => {
                lif::leak_and_bias::<M, false>(mem, channels, leak, bias);
                for (m, &c) in mem.iter_mut().zip(cur) {
                    *m = m.add(c);
                }
                0
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
                let fast = match M::as_i32(mem) {
                    Some(mem) if !saturate => {
                        fast::events(self.weights, self.conv, self.plan, events, mem)
                    }
                    _ => None,
                };
                match fast {
                    Some(sops) => sops,
                    None => {
                        let kernel = Scatter {
                            conv: self.conv,
                            plan: self.plan,
                            events,
                            mem,
                            saturate,
                        };
                        weights::with_rows(self.weights, channels, kernel)
                    }
                }
            }
        };
        match neuron {
            Neuron::Lif(l) => (lif::fire(mem, act, channels, &l.threshold, l.reset), sops),
            Neuron::Lateral(n) => {
                let spikes = lif::fire(mem, act, channels, &n.lif.threshold, n.lif.reset);
                let inhibited = lif::inhibit(mem, act, spikes, n.inhibition);
                (spikes, sops + inhibited)
            }
            Neuron::Readout(_) => {
                lif::accumulate(mem, bytemuck::cast_slice_mut(score));
                (0, sops)
            }
        }
    }
}

/// Event-driven input of one synaptic layer: every non-zero event adds weight rows.
struct Scatter<'x, M> {
    /// Kernel, stride and padding of a convolution; `None` for a dense layer.
    conv: Option<ConvGeometry>,
    plan: &'x Plan,
    events: &'x [u8],
    mem: &'x mut [M],
    /// Saturate every addition (false only when none can overflow).
    saturate: bool,
}

impl<M: Membrane> weights::WithRows for Scatter<'_, M> {
    fn run<R: weights::Rows>(self, rows: R) -> u64 {
        let (events, mem) = (self.events, self.mem);
        // 16-bit membranes always saturate (see `Synapse::neurons`), and `fast` takes the
        // unsaturated steps of dense int8 weights with 32-bit membranes: said here as
        // constants, the compiler drops those unsaturated kernels (the saturating ones give the
        // same results), which keeps the firmware small.
        let saturate = self.saturate || M::MAX < i32::MAX || R::FAST_I32;
        match (self.conv, saturate) {
            (None, true) => scatter_dense::<M, R, true>(&rows, events, mem),
            (None, false) => scatter_dense::<M, R, false>(&rows, events, mem),
            (Some(c), true) => scatter_conv::<M, R, true>(&rows, c, self.plan, events, mem),
            (Some(c), false) => scatter_conv::<M, R, false>(&rows, c, self.plan, events, mem),
        }
    }
}

/// Dense layer: each non-zero input adds its weight row, in ascending input order.
fn scatter_dense<M: Membrane, R: weights::Rows, const SAT: bool>(
    rows: &R,
    events: &[u8],
    mem: &mut [M],
) -> u64 {
    let mut ops = 0u64;
    for (row, &v) in events.iter().enumerate() {
        if v != 0 {
            ops += rows.add::<M, SAT>(row, v as i32, mem) as u64;
        }
    }
    ops
}

/// Convolution: each non-zero input at (y, x, c) adds, for every kernel offset (ky, kx) that
/// maps it onto an output pixel, the weight row (ky, kx, c) into that pixel's output
/// channels. Inputs in ascending (y, x, c) order, then offsets in ascending (ky, kx).
fn scatter_conv<M: Membrane, R: weights::Rows, const SAT: bool>(
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
                    ops += rows.add::<M, SAT>(row, v as i32, &mut mem[o..o + out.c]) as u64;
                }
            }
        }
    }
    ops
}

/// Pooling over a channels-last map: max (spikes stay spikes) or sum (see `format`).
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
