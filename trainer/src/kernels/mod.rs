//! Hand-written CPU kernels for the spiking network's training hot path (issue 9).
//!
//! Each kernel is a candle `CustomOp` with its own backward pass, so that a training step is
//! a few large operations instead of many small tensor ops per timestep:
//! - [`conv`]: 2-D convolution as im2col + one gemm call, forward and both backward passes;
//! - [`dense`]: a dense layer `scale · x · wᵀ` as one gemm call, forward and backward;
//! - [`pool`]: k x k sum pooling (the runtime's spike-count pooling) and its backward;
//! - [`lif`]: the LIF layer over all T timesteps in one pass (membrane, soft reset, integer
//!   leak floor, spikes, bias, and the following sum pool), whose backward is BPTT through
//!   the surrogate gradient;
//! - [`adam`]: Adam updating each parameter in one pass, with the gradient-norm clipping.
//!
//! Every kernel is tested against the plain candle composition it replaces (values and
//! gradients on random shapes, `trainer/tests/kernels.rs`).

pub mod adam;
pub mod conv;
pub mod dense;
pub mod lif;
pub mod pool;

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, Layout, Result, Storage, Tensor};
use gemm::Parallelism;

/// The contiguous f32 elements of a CPU storage seen through `layout`.
pub(crate) fn cpu_f32<'a>(s: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else {
        bail!("{op}: expected f32, got {:?}", s.dtype())
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("{op}: expected a contiguous tensor")
    };
    Ok(&data[start..end])
}

/// Runs `f` on the contiguous f32 data of `t` (copied first if `t` is strided).
pub(crate) fn with_f32<R>(t: &Tensor, op: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.detach().contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(s) = &*storage else {
        bail!("{op}: only implemented on the CPU")
    };
    f(cpu_f32(s, layout, op)?)
}

/// A strided matrix view: `rows x cols`, element (i, j) at `i * rs + j * cs`.
#[derive(Clone, Copy)]
pub(crate) struct Mat {
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl Mat {
    /// Whether a slice of `len` elements holds every element of the view.
    fn fits(&self, len: usize) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < len
    }
}

/// `dst = a · b` (or `dst += a · b` when `accumulate`), single-threaded gemm.
pub(crate) fn matmul(
    dst: &mut [f32],
    dm: Mat,
    accumulate: bool,
    a: &[f32],
    am: Mat,
    b: &[f32],
    bm: Mat,
) {
    gemm_scaled(dst, dm, accumulate, a, am, b, bm, 1.0, Parallelism::None)
}

/// `dst = scale · a · b` (or `dst += ...` when `accumulate`) on `par` threads.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_scaled(
    dst: &mut [f32],
    dm: Mat,
    accumulate: bool,
    a: &[f32],
    am: Mat,
    b: &[f32],
    bm: Mat,
    scale: f32,
    par: Parallelism,
) {
    assert!(am.rows == dm.rows && bm.cols == dm.cols && am.cols == bm.rows);
    assert!(dm.fits(dst.len()) && am.fits(a.len()) && bm.fits(b.len()));
    // SAFETY: the three views lie inside their slices (checked above), `dst` is borrowed
    // mutably so it aliases neither input, and gemm only reads `dst` when `read_dst`.
    unsafe {
        gemm::gemm(
            dm.rows,
            dm.cols,
            am.cols,
            dst.as_mut_ptr(),
            dm.cs as isize,
            dm.rs as isize,
            accumulate,
            a.as_ptr(),
            am.cs as isize,
            am.rs as isize,
            b.as_ptr(),
            bm.cs as isize,
            bm.rs as isize,
            1.0,
            scale,
            false,
            false,
            false,
            par,
        );
    }
}

/// The largest absolute value of `t`'s elements (0 for an empty tensor), in one pass without
/// temporaries.
pub fn max_abs(t: &Tensor) -> Result<f32> {
    with_f32(t, "max_abs", |v| Ok(max_abs_of(v)))
}

/// Lanes of the reductions below: independent accumulators, so that the compiler can keep
/// them in one vector register (a single running value is a chain it may not reorder).
const LANES: usize = 16;

/// The largest absolute value in `v` (0 when empty); NaN is skipped, as `f32::max` does.
pub fn max_abs_of(v: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let mut chunks = v.chunks_exact(LANES);
    for c in &mut chunks {
        for (l, x) in lanes.iter_mut().zip(c) {
            let a = x.abs();
            *l = if a > *l { a } else { *l };
        }
    }
    let tail = chunks.remainder().iter().fold(0f32, |m, x| m.max(x.abs()));
    lanes.iter().fold(tail, |m, &l| m.max(l))
}

/// The sum of the squares of `v`, accumulated in f64 over [`LANES`] lanes.
pub fn sum_squares(v: &[f32]) -> f64 {
    let mut lanes = [0f64; LANES];
    let mut chunks = v.chunks_exact(LANES);
    for c in &mut chunks {
        for (l, &x) in lanes.iter_mut().zip(c) {
            let x = x as f64;
            *l += x * x;
        }
    }
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum();
    lanes.iter().sum::<f64>() + tail
}
