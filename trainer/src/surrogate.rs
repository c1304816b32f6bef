//! Surrogate gradients of the spike function for backpropagation through time.
//!
//! A LIF neuron spikes when its membrane `u` reaches its threshold `theta` (`u >= theta`, the
//! runtime's rule). As in the DIET-SNN and hybrid-STDB reference code (Rathi & Roy), the
//! spike is a step function of the normalised membrane `z = u / theta - 1`, and the
//! surrogate replaces its derivative `d spike / d z`:
//!
//! - [`Surrogate::Stdb`]: `alpha * exp(-beta * dt)`, `dt` = timesteps since the neuron last
//!   spiked ([`NEVER`] + t for a neuron that has not spiked yet, so it gets almost none);
//! - [`Surrogate::Linear`]: `gamma * max(0, 1 - |z|)` = `gamma * max(0, 1 - |u/theta - 1|)`.
//!
//! Through `z` the gradient reaches the membrane, `d spike / d u = g / theta`, and the
//! threshold, `d spike / d theta = -g u / theta²` ([`spike`]).

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{CandleContext, Result};

/// "Last spike" time of a neuron that has not spiked: its `dt` at step `t` is `NEVER + t`
/// (the reference STDB code starts every neuron at -1000).
pub const NEVER: f32 = 1000.0;

/// Which pseudo-derivative `d spike / d z` backpropagation uses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Surrogate {
    /// Spike-timing-dependent backpropagation: `alpha * exp(-beta * dt)`.
    Stdb {
        /// Scale (the paper's code: 0.3).
        alpha: f32,
        /// Decay per timestep since the last spike (the paper's code: 0.01).
        beta: f32,
    },
    /// Piecewise linear (DIET-SNN): `gamma * max(0, 1 - |z|)`.
    Linear {
        /// Peak height at `u = theta` (the paper's code: 0.3).
        gamma: f32,
    },
}

impl Default for Surrogate {
    fn default() -> Self {
        Surrogate::Linear { gamma: 0.3 }
    }
}

impl Surrogate {
    /// `d spike / d z` at `z = u/theta - 1`, `dt` timesteps after the neuron's last spike.
    pub fn grad(&self, z: f32, dt: f32) -> f32 {
        match *self {
            Surrogate::Stdb { alpha, beta } => alpha * (-beta * dt).exp(),
            Surrogate::Linear { gamma } => gamma * (1.0 - z.abs()).max(0.0),
        }
    }

    /// [`Surrogate::grad`] elementwise; `z` and `dt` have the same shape. No gradient
    /// flows through the result.
    pub fn grad_tensor(&self, z: &Tensor, dt: &Tensor) -> Result<Tensor> {
        let z = z.detach();
        match *self {
            Surrogate::Stdb { alpha, beta } => (dt.detach() * (-beta as f64))
                .and_then(|x| x.exp())
                .and_then(|x| x * alpha as f64)
                .ctx("stdb surrogate"),
            Surrogate::Linear { gamma } => z
                .abs()
                .and_then(|a| a.affine(-1.0, 1.0))
                .and_then(|a| a.relu())
                .and_then(|a| a * gamma as f64)
                .ctx("linear surrogate"),
        }
    }
}

/// Spikes `u >= theta` (1.0 or 0.0) whose gradient is the surrogate: with `z = u/theta - 1`
/// and `g` = `surrogate.grad(z, dt)`, `d/du = g / theta` and `d/dtheta = -g u / theta²`.
/// `theta` broadcasts against `u`; `dt` has `u`'s shape.
pub fn spike(u: &Tensor, theta: &Tensor, dt: &Tensor, surrogate: &Surrogate) -> Result<Tensor> {
    let fired = u
        .broadcast_ge(&theta.detach())
        .and_then(|s| s.to_dtype(DType::F32))
        .ctx("fire")?;
    let z = u
        .broadcast_div(theta)
        .and_then(|z| z.affine(1.0, -1.0))
        .ctx("normalised membrane")?;
    let g = surrogate.grad_tensor(&z, dt)?;
    // fired + g * (z - z): the value is exactly `fired`, the gradient g * dz.
    let dz = (&z - z.detach()).ctx("surrogate")?;
    (fired + (g * dz).ctx("surrogate")?).ctx("surrogate")
}
