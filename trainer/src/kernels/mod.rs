//! Hand-written CPU kernels for the spiking network's training hot path (issue 9).
//!
//! Each kernel is a candle `CustomOp` with its own backward pass, so that a training step is
//! a few large operations instead of many small tensor ops per timestep:
//! - [`conv`]: 2-D convolution as im2col + one gemm call, forward and both backward passes;
//! - [`pool`]: k x k sum pooling (the runtime's spike-count pooling) and its backward;
//! - [`lif`]: the LIF layer over all T timesteps in one pass (membrane, soft reset, integer
//!   leak floor, spikes), whose backward is BPTT through the surrogate gradient.
//!
//! Every kernel is tested against the plain candle composition it replaces (values and
//! gradients on random shapes, `trainer/tests/kernels.rs`).

pub mod conv;
pub mod lif;
pub mod pool;
