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

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, Layout, Result, Storage, Tensor};

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
