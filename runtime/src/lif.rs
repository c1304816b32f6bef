//! Integer neuron updates: leak, bias, firing and reset, with saturating membranes.
//!
//! One timestep of a layer, in this order (the trainer's float simulation follows it):
//! 1. leak: `u <- floor(u * leak)` (Q1.15 multiplier; skipped when the leak is exactly 1);
//! 2. bias: `u <- sat(u + bias[c])`;
//! 3. input: every arriving event adds `value * weight` (saturating, in ascending input
//!    order), or, for a direct-input layer, the input current (the same integer at every
//!    step, whether kept or recomputed), in one saturating addition;
//! 4. fire (LIF only): `u >= threshold[c]` emits a spike, then `u <- u - threshold[c]`
//!    (subtract) or `u <- 0` (zero). A readout neuron instead adds `u` to its class score.
//! 5. lateral inhibition (`Neuron::Lateral` only): every membrane drops by the inhibition
//!    strength times the number of *other* neurons of the layer that fired in step 4
//!    (`Neuron::GroupLateral`: of the other neurons of its own group).

use crate::format::{Channelwise, Leak, Reset};
use crate::model::Dims;

/// A membrane value of a given storage width; every addition saturates.
pub(crate) trait Membrane: Copy + bytemuck::Pod {
    /// `self + x`, clamped to the width's range.
    fn add(self, x: i32) -> Self;
    /// The value, widened.
    fn get(self) -> i32;
    /// From a value already within range.
    fn set(x: i32) -> Self;
    /// Largest value.
    const MAX: i32;
    /// The membranes as `i32`s when that is their type: the unsaturated kernels of `fast`
    /// only handle 32-bit membranes.
    fn as_i32(mem: &mut [Self]) -> Option<&mut [i32]>;
}

impl Membrane for i32 {
    const MAX: i32 = i32::MAX;
    #[inline(always)]
    fn as_i32(mem: &mut [Self]) -> Option<&mut [i32]> {
        Some(mem)
    }
    #[inline(always)]
    fn add(self, x: i32) -> Self {
        self.saturating_add(x)
    }
    #[inline(always)]
    fn get(self) -> i32 {
        self
    }
    #[inline(always)]
    fn set(x: i32) -> Self {
        x
    }
}

impl Membrane for i16 {
    const MAX: i32 = i16::MAX as i32;
    #[inline(always)]
    fn as_i32(_: &mut [Self]) -> Option<&mut [i32]> {
        None
    }
    #[inline(always)]
    fn add(self, x: i32) -> Self {
        (self as i32)
            .saturating_add(x)
            .clamp(i16::MIN as i32, i16::MAX as i32) as i16
    }
    #[inline(always)]
    fn get(self) -> i32 {
        self as i32
    }
    #[inline(always)]
    fn set(x: i32) -> Self {
        x as i16
    }
}

/// `floor(u * leak)` for a Q1.15 leak in [0, 1]; the result's magnitude never exceeds `u`'s.
#[inline(always)]
pub(crate) fn leak(u: i32, leak: Leak) -> i32 {
    ((u as i64 * leak.to_bits() as i64) >> 15) as i32
}

/// Steps 1 and 2 for every neuron of a channels-last map with `channels` channels. With
/// `PEAK`, returns a bound on the updated membranes' magnitudes for the engine's saturation
/// check: at least the largest `|u|` and below twice it plus two (one more than the OR of
/// `u ^ (u >> 31)`, which is `|u|` or `|u| - 1`); without, 0.
pub(crate) fn leak_and_bias<M: Membrane, const PEAK: bool>(
    mem: &mut [M],
    channels: usize,
    l: Leak,
    bias: &Channelwise<'_>,
) -> u32 {
    let leaky = l != Leak::NONE;
    let mut bits = 0u32;
    let mut update = |m: &mut M, b: i32| {
        let u = if leaky { leak(m.get(), l) } else { m.get() };
        *m = M::set(u).add(b);
        if PEAK {
            let v = m.get();
            bits |= (v ^ (v >> 31)) as u32;
        }
    };
    match *bias {
        Channelwise::Uniform(b) => {
            if !leaky && b == 0 {
                if PEAK {
                    for m in mem.iter_mut() {
                        let v = m.get();
                        bits |= (v ^ (v >> 31)) as u32;
                    }
                }
            } else {
                for m in mem.iter_mut() {
                    update(m, b);
                }
            }
        }
        // The loader checked that `bytes` holds one i32 per channel.
        Channelwise::PerChannel(bytes) => {
            for px in mem.chunks_exact_mut(channels) {
                for (m, b) in px.iter_mut().zip(bytes.chunks_exact(4)) {
                    update(m, i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                }
            }
        }
    }
    if PEAK {
        bits + 1
    } else {
        0
    }
}

/// Steps 1 to 3 of 32-bit neurons driven by a kept current (a direct-input layer's, the same
/// at every timestep): leak, bias and `cur` in one pass over the membranes, the additions in
/// the order of [`leak_and_bias`] followed by adding the current.
#[inline(never)]
pub(crate) fn leak_bias_current(
    mem: &mut [i32],
    channels: usize,
    l: Leak,
    bias: &Channelwise<'_>,
    cur: &[i32],
) {
    let leaky = l != Leak::NONE;
    let update = |m: &mut i32, b: i32, c: i32| {
        let u = if leaky { leak(*m, l) } else { *m };
        *m = u.saturating_add(b).saturating_add(c);
    };
    match *bias {
        Channelwise::Uniform(b) => {
            for (m, &c) in mem.iter_mut().zip(cur) {
                update(m, b, c);
            }
        }
        // The loader checked that `bytes` holds one i32 per channel.
        Channelwise::PerChannel(bytes) => {
            let pixels = mem
                .chunks_exact_mut(channels)
                .zip(cur.chunks_exact(channels));
            for (px, cs) in pixels {
                for ((m, b), &c) in px.iter_mut().zip(bytes.chunks_exact(4)).zip(cs) {
                    update(m, i32::from_le_bytes([b[0], b[1], b[2], b[3]]), c);
                }
            }
        }
    }
}

/// Step 4 for LIF neurons: writes 1/0 spikes into `out` and returns the number of spikes.
pub(crate) fn fire<M: Membrane>(
    mem: &mut [M],
    out: &mut [u8],
    channels: usize,
    threshold: &Channelwise<'_>,
    reset: Reset,
) -> u32 {
    match *threshold {
        Channelwise::Uniform(th) => fire_run(mem, out, |_| th, reset),
        Channelwise::PerChannel(_) => {
            let mut spikes = 0;
            for (px, o) in mem
                .chunks_exact_mut(channels)
                .zip(out.chunks_exact_mut(channels))
            {
                spikes += fire_run(px, o, |c| threshold.get(c), reset);
            }
            spikes
        }
    }
}

/// Step 4 for LIF neurons (a `lif` map) followed by pooling over non-overlapping `k x k`
/// windows (into an `out` map): writes the pooled spike counts of this step into `pooled`
/// (the window's maximum, 0 or 1, when `max`) without the spike map in between: each spike
/// adds one to its window, a spike outside every window (in the rows and columns past the
/// last whole window) to none. Returns the number of spikes.
pub(crate) fn fire_pooled<M: Membrane>(
    mem: &mut [M],
    pooled: &mut [u8],
    (lif, out, k): (Dims, Dims, usize),
    threshold: &Channelwise<'_>,
    reset: Reset,
    max: bool,
) -> u32 {
    pooled.fill(0);
    let mut spikes = 0;
    // Window row and column of the pixel, and the pixel's offsets in them.
    let (mut oy, mut dy) = (0, 0);
    for row in mem.chunks_exact_mut((lif.w * lif.c).max(1)) {
        let (mut ox, mut dx) = (0, 0);
        for px in row.chunks_exact_mut(lif.c.max(1)) {
            let o = (oy * out.w + ox) * out.c;
            let window = match oy < out.h && ox < out.w {
                true => pooled.get_mut(o..o + out.c).unwrap_or_default(),
                false => &mut [],
            };
            let mut count = |c: usize| {
                if let Some(d) = window.get_mut(c) {
                    *d = if max { 1 } else { d.wrapping_add(1) };
                }
            };
            spikes += fire_each(px, threshold, reset, &mut count);
            dx += 1;
            if dx == k {
                (ox, dx) = (ox + 1, 0);
            }
        }
        dy += 1;
        if dy == k {
            (oy, dy) = (oy + 1, 0);
        }
    }
    spikes
}

/// Fires the neurons of one pixel (channel `c` has threshold `threshold.get(c)`), calling
/// `spiked` with the channel of each that spikes (rarely: a call, to keep one copy of the
/// loop); returns the number of spikes.
#[inline(never)]
fn fire_each<M: Membrane>(
    mem: &mut [M],
    threshold: &Channelwise<'_>,
    reset: Reset,
    spiked: &mut dyn FnMut(usize),
) -> u32 {
    let mut spikes = 0;
    for (c, m) in mem.iter_mut().enumerate() {
        let (u, t) = (m.get(), threshold.get(c));
        if u >= t {
            *m = M::set(match reset {
                Reset::Subtract => u - t,
                Reset::Zero => 0,
            });
            spiked(c);
            spikes += 1;
        }
    }
    spikes
}

/// Fires a run of neurons whose threshold is `th(index in the run)`.
#[inline(always)]
fn fire_run<M: Membrane>(
    mem: &mut [M],
    out: &mut [u8],
    th: impl Fn(usize) -> i32,
    reset: Reset,
) -> u32 {
    let mut spikes = 0;
    for (c, (m, s)) in mem.iter_mut().zip(out.iter_mut()).enumerate() {
        let (u, t) = (m.get(), th(c));
        let fired = u >= t;
        if fired {
            *m = M::set(match reset {
                Reset::Subtract => u - t,
                Reset::Zero => 0,
            });
        }
        *s = fired as u8;
        spikes += fired as u32;
    }
    spikes
}

/// Lateral inhibition after firing: every membrane drops by `strength` for each other neuron
/// that spiked (`act` holds this step's spikes). Returns the synaptic operations:
/// `spikes * (neurons - 1)`.
pub(crate) fn inhibit<M: Membrane>(mem: &mut [M], act: &[u8], spikes: u32, strength: i32) -> u64 {
    if spikes == 0 || strength == 0 {
        return 0;
    }
    for (m, &s) in mem.iter_mut().zip(act) {
        let others = (spikes - s as u32) as i64;
        let drop = (others * strength as i64).min(i32::MAX as i64) as i32;
        *m = m.add(-drop);
    }
    spikes as u64 * (mem.len() as u64 - 1)
}

/// Step 4 for a readout: adds every membrane to its class score (saturating).
pub(crate) fn accumulate<M: Membrane>(mem: &[M], score: &mut [i32]) {
    for (s, m) in score.iter_mut().zip(mem) {
        *s = s.saturating_add(m.get());
    }
}
