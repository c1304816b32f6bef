//! The LIF layer over all T timesteps in one pass, forward and BPTT backward.
//!
//! Semantics (the same as [`crate::diet`]'s plain composition and the integer runtime):
//! membranes start at 0; at step t, `u_t = leak(u'_{t-1}) + (I_t + b)` (`u_0 = I_0 + b`,
//! `b` the channel's bias), a spike where `u_t >= theta`, soft reset `u'_t = u_t - s_t theta`.
//! The forward `leak` is the runtime's floor on the integer membrane,
//! `floor(u * scale * l / 2^15) / scale` with the Q1.15 leak `l`, or the identity where
//! `l = 2^15`; its gradient is that of `u * leak` (straight through). The spike's gradient is
//! the surrogate `g(z, dt)` on `z = u/theta - 1`: `d s/d u = g / theta`,
//! `d s/d theta = -g u / theta^2` ([`crate::surrogate::spike`]); `dt` is the number of steps
//! since the neuron's last spike ([`crate::surrogate::NEVER`] + t before its first). The
//! reset's `s_t` carries no gradient; its `theta` does.
//!
//! Layout: currents and spikes are `(T * B, C, ...)` or `(T * B, C)`, step-major (row
//! `t * B + b`), so that the layers before and after run over all steps as one batch. A
//! direct-input layer passes its current once, `(B, ...)`, and it drives every step
//! ([`Lif::constant_input`]). The bias is per channel (dimension 1).
//!
//! The kernel works on blocks of neurons, all T steps of a block before the next, with
//! branch-free inner loops that the compiler vectorises; the backward pass recomputes the
//! forward membranes of its block instead of storing them between the passes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::with_f32;
use crate::surrogate::{Surrogate, NEVER};

/// Neurons per parallel task.
const CHUNK: usize = 4096;

/// The LIF op's settings; current, bias and `[theta, leak]` are its tensor arguments.
#[derive(Debug, Clone)]
pub struct Lif {
    /// Timesteps T.
    pub timesteps: usize,
    /// The spike's pseudo-derivative.
    pub surrogate: Surrogate,
    /// The forward leak on the integer membrane: `(scale, l)` gives
    /// `floor(u * scale * l / 2^15) / scale`; `None` keeps the membrane as it is (`l = 2^15`).
    pub floor: Option<(f32, u16)>,
    /// The current is `(B, ...)` and drives every step (a direct-input layer).
    pub constant_input: bool,
    /// Sum-pool the spikes over `pool x pool` windows (stride `pool`) on the way out, as the
    /// runtime's LIF -> pool does: the output is the window counts `(T * B, C, H/k, W/k)`
    /// and the spike maps never exist as a tensor; 1 = no pooling.
    pub pool: usize,
    /// Spikes of the last forward pass (written by the kernel).
    pub spikes: Arc<AtomicU64>,
}

impl Lif {
    /// Settings with a fresh spike counter.
    pub fn new(
        timesteps: usize,
        surrogate: Surrogate,
        floor: Option<(f32, u16)>,
        constant_input: bool,
    ) -> Lif {
        Lif {
            timesteps,
            surrogate,
            floor,
            constant_input,
            pool: 1,
            spikes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The same, followed by `k x k` sum pooling ([`Lif::pool`]).
    pub fn pooled(mut self, k: usize) -> Lif {
        self.pool = k;
        self
    }
}

/// Spikes `(T * B, ...)` of a LIF layer driven by `current` (`(T * B, C, ...)`, or
/// `(B, C, ...)` with [`Lif::constant_input`]) plus the per-channel `bias` (`(C,)`), with
/// threshold `theta` and leak `leak` (shape `(1,)` each). Differentiable in all four. The
/// number of spikes is left in `op.spikes`.
pub fn lif(
    current: &Tensor,
    bias: Option<&Tensor>,
    theta: &Tensor,
    leak: &Tensor,
    op: &Lif,
) -> Result<Tensor> {
    let params = Tensor::cat(&[theta.flatten_all()?, leak.flatten_all()?], 0)?;
    let bias = match bias {
        Some(b) => b.flatten_all()?,
        None => Tensor::zeros(0, candle_core::DType::F32, current.device())?,
    };
    current
        .contiguous()?
        .apply_op3(&bias.contiguous()?, &params, op.clone())
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    super::cpu_f32(s, l, &format!("lif: {what}"))
}

/// A pointer that parallel tasks write through, each to its own disjoint elements.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: every task writes a set of indices no other task writes (its block of neurons at
// every step), and the buffer outlives the parallel loop.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// # Safety
    /// `i` is in bounds and written by this task only.
    #[inline(always)]
    unsafe fn row(self, start: usize, n: usize) -> &'static mut [f32] {
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), n) }
    }
}

/// `floor(x)`: one instruction with SSE4.1 (the AVX2 build), a library call without.
#[inline(always)]
fn floor(x: f32) -> f32 {
    x.floor()
}

/// Geometry of one call.
#[derive(Clone, Copy)]
struct Geom {
    /// Neurons per step (B x channels x inner).
    m: usize,
    /// Channels (dimension 1) and elements per channel.
    channels: usize,
    inner: usize,
    /// Plane width (dimension 3; 1 for dense layers) and the pooling window.
    width: usize,
    pool: usize,
    steps: usize,
    theta: f32,
    leak: f32,
    /// The floor's `scale * l / 2^15` and `1 / scale`.
    mul: f32,
    inv: f32,
}

impl Geom {
    /// Neurons per parallel task: whole planes when pooling, so that no window is split.
    fn block(&self) -> usize {
        if self.pool > 1 {
            (CHUNK / self.inner).max(1) * self.inner
        } else {
            CHUNK
        }
    }

    /// Output elements per step.
    fn out_per_step(&self) -> usize {
        self.m / (self.pool * self.pool)
    }

    /// Writes step `t`'s spikes `s` of the neurons `e0..` to the output, pooled if asked.
    #[inline(always)]
    fn emit(&self, s: &[f32], e0: usize, t: usize, out: Out) {
        let k = self.pool;
        let n = s.len();
        if k == 1 {
            // SAFETY: this block's neurons at step t, written by this task only.
            unsafe { out.row(t * self.m + e0, n) }.copy_from_slice(s);
            return;
        }
        let (w, pw) = (self.width, self.width / k);
        let ph = self.inner / w / k;
        // SAFETY: the pooled planes of this block's planes at step t, this task's only.
        let dst = unsafe { out.row(t * self.out_per_step() + e0 / (k * k), n / (k * k)) };
        for (src, dp) in s
            .chunks_exact(self.inner)
            .zip(dst.chunks_exact_mut(ph * pw))
        {
            if k == 2 {
                // The common 2 x 2 window unrolled: a loop over k of length 2 runs scalar.
                for (py, row) in dp.chunks_exact_mut(pw).enumerate() {
                    let (r0, r1) = src[2 * py * w..(2 * py + 2) * w].split_at(w);
                    for ((r, a), b) in row
                        .iter_mut()
                        .zip(r0.chunks_exact(2))
                        .zip(r1.chunks_exact(2))
                    {
                        *r = (a[0] + a[1]) + (b[0] + b[1]);
                    }
                }
                continue;
            }
            for (py, row) in dp.chunks_exact_mut(pw).enumerate() {
                row.fill(0.0);
                for dy in 0..k {
                    let srow = &src[(py * k + dy) * w..(py * k + dy + 1) * w];
                    for (px, r) in row.iter_mut().enumerate() {
                        *r += srow[px * k..px * k + k].iter().sum::<f32>();
                    }
                }
            }
        }
    }

    /// The gradient of step `t`'s spikes of the neurons `e0..e0 + dst.len()`: the output's
    /// gradient, or with pooling its window's.
    #[inline(always)]
    fn expand(&self, grad: &[f32], e0: usize, t: usize, dst: &mut [f32]) {
        let k = self.pool;
        let n = dst.len();
        if k == 1 {
            dst.copy_from_slice(&grad[t * self.m + e0..t * self.m + e0 + n]);
            return;
        }
        let (w, pw) = (self.width, self.width / k);
        let ph = self.inner / w / k;
        let start = t * self.out_per_step() + e0 / (k * k);
        let src = &grad[start..start + n / (k * k)];
        for (sp, dp) in src
            .chunks_exact(ph * pw)
            .zip(dst.chunks_exact_mut(self.inner))
        {
            for (y, drow) in dp.chunks_exact_mut(w).enumerate() {
                let srow = &sp[(y / k) * pw..(y / k + 1) * pw];
                if k == 2 {
                    for (d, &g) in drow.chunks_exact_mut(2).zip(srow) {
                        d[0] = g;
                        d[1] = g;
                    }
                    continue;
                }
                for (px, &g) in srow.iter().enumerate() {
                    drow[px * k..px * k + k].fill(g);
                }
            }
        }
    }

    /// The bias of each neuron `e0..e0 + n`.
    fn bias_of(&self, bias: &[f32], e0: usize, n: usize) -> Vec<f32> {
        let mut b = vec![0f32; n];
        if bias.is_empty() {
            return b;
        }
        if self.inner == 1 {
            // Dense: the channel cycles with the neuron.
            let mut c = e0 % self.channels;
            for x in b.iter_mut() {
                *x = bias[c];
                c += 1;
                if c == self.channels {
                    c = 0;
                }
            }
            return b;
        }
        // Runs of `inner` neurons share a channel.
        let mut j = 0;
        while j < n {
            let e = e0 + j;
            let run = (self.inner - e % self.inner).min(n - j);
            b[j..j + run].fill(bias[(e / self.inner) % self.channels]);
            j += run;
        }
        b
    }
}

/// One step of [`forward_block`] over its neurons: membranes `u` updated in place, spikes
/// (or with `UPRE` the membranes before reset) into `d`; returns the spikes. A function of
/// its own so that the compiler knows the slices do not overlap, and vectorises the loop.
#[inline(always)]
fn forward_step<const FLOOR: bool, const UPRE: bool>(
    g: &Geom,
    first: bool,
    c: &[f32],
    b: &[f32],
    d: &mut [f32],
    u: &mut [f32],
) -> u32 {
    let th = g.theta;
    let n = b.len();
    let (c, d, u) = (&c[..n], &mut d[..n], &mut u[..n]);
    // An integer count: a float sum would be a serial chain that stops vectorisation.
    let mut count = 0u32;
    if first {
        for j in 0..n {
            let v = c[j] + b[j];
            let fired = v >= th;
            let s = if fired { 1.0f32 } else { 0.0 };
            d[j] = if UPRE { v } else { s };
            u[j] = v - s * th;
            count += u32::from(fired);
        }
    } else {
        for j in 0..n {
            let l = if FLOOR {
                floor(u[j] * g.mul) * g.inv
            } else {
                u[j]
            };
            let v = l + (c[j] + b[j]);
            let fired = v >= th;
            let s = if fired { 1.0f32 } else { 0.0 };
            d[j] = if UPRE { v } else { s };
            u[j] = v - s * th;
            count += u32::from(fired);
        }
    }
    count
}

/// The forward pass of one block of neurons `e0..e0 + b.len()`: with `UPRE`, the pre-reset
/// membranes into `dst` (`n * steps`, step-major); without, the spikes into the output.
/// Returns the spike count.
#[inline(always)]
fn forward_block<const CONSTANT: bool, const FLOOR: bool, const UPRE: bool>(
    g: &Geom,
    cur: &[f32],
    b: &[f32],
    e0: usize,
    out: Out,
    upre: &mut [f32],
    work: &mut [f32],
) -> u64 {
    let n = b.len();
    // The membranes (written at step 0 before they are read) and one step's spikes.
    let (u, sbuf) = work[..2 * n].split_at_mut(n);
    let mut count = 0u64;
    for t in 0..g.steps {
        let c = if CONSTANT {
            &cur[e0..e0 + n]
        } else {
            &cur[t * g.m + e0..t * g.m + e0 + n]
        };
        let d: &mut [f32] = if UPRE {
            &mut upre[t * n..(t + 1) * n]
        } else {
            &mut *sbuf
        };
        let step_count = forward_step::<FLOOR, UPRE>(g, t == 0, c, b, d, u);
        count += u64::from(step_count);
        if !UPRE {
            g.emit(sbuf, e0, t, out);
        }
    }
    count
}

/// Runs `f` on a scratch buffer of at least `len` floats owned by this thread (reused from
/// call to call: no allocation and no zero-filling per block). Its contents are arbitrary.
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < len {
            s.resize(len, 0.0);
        }
        f(&mut s[..len])
    })
}

/// Gradients of one block: the current's (into `di`), and per-block sums: for the bias (per
/// neuron over the steps), the threshold and the leak. `STDB` picks the surrogate's form
/// (else the piecewise-linear one, computed inline).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_block<const CONSTANT: bool, const FLOOR: bool, const STDB: bool>(
    g: &Geom,
    surrogate: Surrogate,
    cur: &[f32],
    b: &[f32],
    grad: &[f32],
    e0: usize,
    di: Out,
    work: &mut [f32],
) -> (Vec<f32>, f64, f64) {
    let n = b.len();
    let steps = g.steps;
    let sg_len = if STDB { n * steps } else { 0 };
    {
        let (upre, rest) = work.split_at_mut(n * steps);
        let (sg, rest) = rest.split_at_mut(sg_len);
        let (fwd, rest) = rest.split_at_mut(2 * n);
        let (zero, rest) = rest.split_at_mut(n);
        let (gup, rest) = rest.split_at_mut(n);
        let (dth, rest) = rest.split_at_mut(n);
        let (dlk, rest) = rest.split_at_mut(n);
        let (gs, o_const) = rest.split_at_mut(n);
        for x in [&mut *zero, &mut *gup, &mut *dth, &mut *dlk] {
            x.fill(0.0);
        }
        let mut dsum = vec![0f32; n];
        forward_block::<CONSTANT, FLOOR, true>(g, cur, b, e0, di, upre, fwd);
        let inv_th = 1.0 / g.theta;
        let th = g.theta;
        let gamma = match surrogate {
            Surrogate::Linear { gamma } => gamma,
            Surrogate::Stdb { .. } => 0.0,
        };
        if STDB {
            // dt = t - last spike (NEVER + t before the first).
            let last = &mut *gs;
            last.fill(-NEVER);
            for t in 0..steps {
                for j in 0..n {
                    sg[t * n + j] = surrogate.grad(0.0, t as f32 - last[j]);
                    if upre[t * n + j] >= th {
                        last[j] = t as f32;
                    }
                }
            }
        }
        for t in (0..steps).rev() {
            g.expand(grad, e0, t, gs);
            let (before, now) = upre.split_at(t * n);
            let up = &now[..n];
            // The membranes after the step before's reset feed the leak's gradient.
            let prev: &[f32] = if t > 0 { &before[(t - 1) * n..] } else { zero };
            let sgt: &[f32] = if STDB { &sg[t * n..(t + 1) * n] } else { zero };
            let o: &mut [f32] = if CONSTANT {
                &mut *o_const
            } else {
                // SAFETY: this block's neurons at step t, written by this task only.
                unsafe { di.row(t * g.m + e0, n) }
            };
            let (gup, dsum, dth, dlk, o, gs) = (
                &mut gup[..n],
                &mut dsum[..n],
                &mut dth[..n],
                &mut dlk[..n],
                &mut o[..n],
                &gs[..n],
            );
            let (prev, sgt) = (&prev[..n], &sgt[..n]);
            backward_step::<STDB>(g, gamma, inv_th, up, prev, sgt, gs, gup, dsum, dth, dlk, o);
        }
        if CONSTANT {
            // SAFETY: this block's neurons, written by this task only.
            unsafe { di.row(e0, n) }.copy_from_slice(&dsum);
        }
        let sum = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>();
        let (a, b) = (sum(dth), sum(dlk));
        (dsum, a, b)
    }
}

/// One step of [`backward_block`] over its neurons (a function of its own so that the
/// compiler knows the slices do not overlap, and vectorises the loop).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_step<const STDB: bool>(
    g: &Geom,
    gamma: f32,
    inv_th: f32,
    up: &[f32],
    prev: &[f32],
    sgt: &[f32],
    gs: &[f32],
    gup: &mut [f32],
    dsum: &mut [f32],
    dth: &mut [f32],
    dlk: &mut [f32],
    o: &mut [f32],
) {
    let th = g.theta;
    let n = up.len();
    let (prev, gs, gup, dsum, dth, dlk, o) = (
        &prev[..n],
        &gs[..n],
        &mut gup[..n],
        &mut dsum[..n],
        &mut dth[..n],
        &mut dlk[..n],
        &mut o[..n],
    );
    for j in 0..n {
        let v = up[j];
        let s = if v >= th { 1.0f32 } else { 0.0 };
        let sgv = if STDB {
            sgt[j]
        } else {
            gamma * (1.0 - (v * inv_th - 1.0).abs()).max(0.0)
        };
        let gsg = gs[j] * sgv;
        let du = gup[j] + gsg * inv_th;
        dth[j] += -gsg * v * inv_th * inv_th - gup[j] * s;
        dsum[j] += du;
        o[j] = du;
        // Through the leak into the step before: u_t = leak(u'_{t-1}) + ...
        let pv = prev[j];
        let pu = pv - if pv >= th { th } else { 0.0 };
        dlk[j] += du * pu;
        gup[j] = du * g.leak;
    }
}

/// Scratch floats [`backward_block`] needs for `n` neurons.
fn backward_scratch(n: usize, steps: usize, stdb: bool) -> usize {
    n * steps * if stdb { 2 } else { 1 } + 9 * n
}

/// Whether the CPU has AVX2 and FMA (checked once).
fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// [`forward_block`] compiled for AVX2 (the same code, wider vectors).
///
/// # Safety
/// The CPU has AVX2 and FMA ([`avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_avx2<const CONSTANT: bool, const FLOOR: bool>(
    g: &Geom,
    cur: &[f32],
    b: &[f32],
    e0: usize,
    out: Out,
    work: &mut [f32],
) -> u64 {
    forward_block::<CONSTANT, FLOOR, false>(g, cur, b, e0, out, &mut [], work)
}

/// [`backward_block`] compiled for AVX2.
///
/// # Safety
/// The CPU has AVX2 and FMA ([`avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn backward_avx2<const CONSTANT: bool, const FLOOR: bool, const STDB: bool>(
    g: &Geom,
    surrogate: Surrogate,
    cur: &[f32],
    b: &[f32],
    grad: &[f32],
    e0: usize,
    di: Out,
    work: &mut [f32],
) -> (Vec<f32>, f64, f64) {
    backward_block::<CONSTANT, FLOOR, STDB>(g, surrogate, cur, b, grad, e0, di, work)
}

/// One block's forward pass, monomorphised and dispatched.
fn forward<const CONSTANT: bool, const FLOOR: bool>(
    g: &Geom,
    cur: &[f32],
    b: &[f32],
    e0: usize,
    out: Out,
) -> u64 {
    with_scratch(2 * b.len(), |work| {
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            // SAFETY: checked above.
            return unsafe { forward_avx2::<CONSTANT, FLOOR>(g, cur, b, e0, out, work) };
        }
        forward_block::<CONSTANT, FLOOR, false>(g, cur, b, e0, out, &mut [], work)
    })
}

/// One block's backward pass, monomorphised and dispatched.
#[allow(clippy::too_many_arguments)]
fn backward_stdb<const CONSTANT: bool, const FLOOR: bool, const STDB: bool>(
    g: &Geom,
    surrogate: Surrogate,
    cur: &[f32],
    b: &[f32],
    grad: &[f32],
    e0: usize,
    di: Out,
) -> (Vec<f32>, f64, f64) {
    with_scratch(backward_scratch(b.len(), g.steps, STDB), |work| {
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            // SAFETY: checked above.
            return unsafe {
                backward_avx2::<CONSTANT, FLOOR, STDB>(g, surrogate, cur, b, grad, e0, di, work)
            };
        }
        backward_block::<CONSTANT, FLOOR, STDB>(g, surrogate, cur, b, grad, e0, di, work)
    })
}

/// [`backward_stdb`] for the surrogate's form.
fn backward<const CONSTANT: bool, const FLOOR: bool>(
    g: &Geom,
    surrogate: Surrogate,
    cur: &[f32],
    b: &[f32],
    grad: &[f32],
    e0: usize,
    di: Out,
) -> (Vec<f32>, f64, f64) {
    match surrogate {
        Surrogate::Stdb { .. } => {
            backward_stdb::<CONSTANT, FLOOR, true>(g, surrogate, cur, b, grad, e0, di)
        }
        Surrogate::Linear { .. } => {
            backward_stdb::<CONSTANT, FLOOR, false>(g, surrogate, cur, b, grad, e0, di)
        }
    }
}

impl Lif {
    /// Neurons per step, channels and elements per channel, and the output shape.
    fn geometry(&self, shape: &Shape) -> Result<(usize, usize, usize, usize, Shape)> {
        let dims = shape.dims();
        if dims.len() < 2 || self.timesteps == 0 {
            candle_core::bail!("lif: need (batch, channels, ...) and T >= 1, got {dims:?}");
        }
        let channels = dims[1];
        let inner = dims[2..].iter().product::<usize>();
        let width = if dims.len() == 4 { dims[3] } else { 1 };
        let k = self.pool;
        if k == 0 || (k > 1 && (dims.len() != 4 || dims[2] % k != 0 || dims[3] % k != 0)) {
            candle_core::bail!("lif: cannot sum-pool {dims:?} over {k} x {k} windows");
        }
        let mut out = dims.to_vec();
        if self.constant_input {
            out[0] *= self.timesteps;
        } else if dims[0] % self.timesteps != 0 {
            candle_core::bail!("lif: {} rows are not T = {} steps", dims[0], self.timesteps);
        }
        if k > 1 {
            out[2] /= k;
            out[3] /= k;
        }
        let m = if self.constant_input {
            shape.elem_count()
        } else {
            shape.elem_count() / self.timesteps
        };
        Ok((m, channels, inner, width, Shape::from(out)))
    }

    fn geom(&self, shape: &Shape, theta: f32, leak: f32) -> Result<(Geom, Shape)> {
        let (m, channels, inner, width, out) = self.geometry(shape)?;
        let (mul, inv) = match self.floor {
            // As the plain composition rounds them.
            Some((scale, bits)) => (
                (scale as f64 * bits as f64 / 32768.0) as f32,
                (1.0 / scale as f64) as f32,
            ),
            None => (1.0, 1.0),
        };
        Ok((
            Geom {
                m,
                channels,
                inner,
                width,
                pool: self.pool,
                steps: self.timesteps,
                theta,
                leak,
                mul,
                inv,
            },
            out,
        ))
    }
}

fn check_bias(bias: &[f32], channels: usize) -> Result<()> {
    if !bias.is_empty() && bias.len() != channels {
        candle_core::bail!("lif: {} biases for {channels} channels", bias.len());
    }
    Ok(())
}

impl CustomOp3 for Lif {
    fn name(&self) -> &'static str {
        "lif"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let cur = slice(s1, l1, "current")?;
        let bias = slice(s2, l2, "bias")?;
        let params = slice(s3, l3, "threshold and leak")?;
        if params.len() != 2 {
            candle_core::bail!("lif: expected [theta, leak]");
        }
        let (g, shape) = self.geom(l1.shape(), params[0], params[1])?;
        check_bias(bias, g.channels)?;
        let mut out = vec![0f32; g.out_per_step() * g.steps];
        let ptr = Out(out.as_mut_ptr());
        let block = g.block();
        let count: u64 = (0..g.m)
            .into_par_iter()
            .step_by(block)
            .map(|e0| {
                let b = g.bias_of(bias, e0, block.min(g.m - e0));
                match (self.constant_input, self.floor.is_some()) {
                    (true, true) => forward::<true, true>(&g, cur, &b, e0, ptr),
                    (true, false) => forward::<true, false>(&g, cur, &b, e0, ptr),
                    (false, true) => forward::<false, true>(&g, cur, &b, e0, ptr),
                    (false, false) => forward::<false, false>(&g, cur, &b, e0, ptr),
                }
            })
            .sum();
        self.spikes.store(count, Ordering::Relaxed);
        Ok((CpuStorage::F32(out), shape))
    }

    fn bwd(
        &self,
        current: &Tensor,
        bias: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let p = with_f32(params, "lif", |v| Ok(v.to_vec()))?;
        let (g, _) = self.geom(current.shape(), p[0], p[1])?;
        let grad = grad.contiguous()?;
        let mut di = vec![0f32; current.elem_count()];
        let ptr = Out(di.as_mut_ptr());
        let surrogate = self.surrogate;
        let (dbias, dtheta, dleak) = with_f32(current, "lif", |cur| {
            with_f32(bias, "lif", |bias| {
                with_f32(&grad, "lif", |gr| {
                    check_bias(bias, g.channels)?;
                    let block = g.block();
                    let parts: Vec<(usize, Vec<f32>, f64, f64)> = (0..g.m)
                        .into_par_iter()
                        .step_by(block)
                        .map(|e0| {
                            let b = g.bias_of(bias, e0, block.min(g.m - e0));
                            let (d, th, lk) = match (self.constant_input, self.floor.is_some()) {
                                (true, true) => {
                                    backward::<true, true>(&g, surrogate, cur, &b, gr, e0, ptr)
                                }
                                (true, false) => {
                                    backward::<true, false>(&g, surrogate, cur, &b, gr, e0, ptr)
                                }
                                (false, true) => {
                                    backward::<false, true>(&g, surrogate, cur, &b, gr, e0, ptr)
                                }
                                (false, false) => {
                                    backward::<false, false>(&g, surrogate, cur, &b, gr, e0, ptr)
                                }
                            };
                            (e0, d, th, lk)
                        })
                        .collect();
                    let mut dbias = vec![0f64; bias.len()];
                    let (mut dtheta, mut dleak) = (0f64, 0f64);
                    for (e0, d, th, lk) in parts {
                        if !dbias.is_empty() && g.inner == 1 {
                            let mut c = e0 % g.channels;
                            for &x in &d {
                                dbias[c] += x as f64;
                                c += 1;
                                if c == g.channels {
                                    c = 0;
                                }
                            }
                        } else if !dbias.is_empty() {
                            // Runs of `inner` neurons share a channel.
                            let mut j = 0;
                            while j < d.len() {
                                let e = e0 + j;
                                let run = (g.inner - e % g.inner).min(d.len() - j);
                                dbias[(e / g.inner) % g.channels] +=
                                    d[j..j + run].iter().map(|&x| x as f64).sum::<f64>();
                                j += run;
                            }
                        }
                        dtheta += th;
                        dleak += lk;
                    }
                    Ok::<_, candle_core::Error>((dbias, dtheta, dleak))
                })
            })
        })?;
        let dev = current.device();
        let dbias = (!dbias.is_empty())
            .then(|| {
                Tensor::from_vec(
                    dbias.iter().map(|&x| x as f32).collect::<Vec<_>>(),
                    bias.shape(),
                    dev,
                )
            })
            .transpose()?;
        Ok((
            Some(Tensor::from_vec(di, current.shape(), dev)?),
            dbias,
            Some(Tensor::from_vec(
                vec![dtheta as f32, dleak as f32],
                params.shape(),
                dev,
            )?),
        ))
    }
}
