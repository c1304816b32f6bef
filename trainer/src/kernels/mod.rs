//! Hand-written CPU kernels for the spiking network's training hot path (issue 9).
//!
//! Each kernel is a candle `CustomOp` with its own backward pass, so that a training step is
//! a few large operations instead of many small tensor ops per timestep:
//! - [`conv`]: 2-D convolution as im2col + one gemm call, forward and both backward passes;
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
pub mod lif;
pub mod pool;

use candle_core::{CpuStorage, Layout, Result, Tensor};

/// The contiguous f32 values of a CPU storage under `l`.
pub(crate) fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let all = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&all[a..b]),
        None => candle_core::bail!("{what} must be contiguous"),
    }
}

/// Reads a CPU f32 tensor's values (made contiguous) and hands them to `f`.
pub(crate) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        candle_core::Storage::Cpu(s) => Ok(f(slice(s, layout, "tensor")?)),
        _ => candle_core::bail!("the fused kernels run on the CPU only"),
    }
}
