//! Adam that updates each parameter in one pass over its values, with global gradient-norm
//! clipping folded in: the arithmetic of candle-nn's `AdamW` without weight decay (the
//! composition of about ten tensor ops per parameter it replaces).

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
use rayon::prelude::*;

use super::{sum_squares, with_f32};

/// Values per parallel task.
const CHUNK: usize = 16384;

/// Adam's state for a list of parameters.
pub struct Adam {
    vars: Vec<Var>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    steps: i32,
    /// First-moment decay (0.9).
    pub beta1: f64,
    /// Second-moment decay (0.999).
    pub beta2: f64,
    /// Added to the root of the second moment (1e-8).
    pub eps: f64,
}

impl Adam {
    /// Zero moments for `vars` (f32, CPU).
    pub fn new(vars: Vec<Var>) -> Adam {
        let m = vars.iter().map(|v| vec![0f32; v.elem_count()]).collect();
        let v = vars.iter().map(|v| vec![0f32; v.elem_count()]).collect();
        Adam {
            vars,
            m,
            v,
            steps: 0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// The parameters.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// The L2 norm of the gradients of all parameters together.
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut sq = 0f64;
        for var in &self.vars {
            if let Some(g) = grads.get(var.as_tensor()) {
                sq += with_f32(g, "adam", |g| {
                    Ok(g.par_chunks(CHUNK).map(sum_squares).sum::<f64>())
                })?;
            }
        }
        Ok(sq.sqrt())
    }

    /// One step at learning rate `lr` with every gradient multiplied by `scale` first.
    pub fn step(&mut self, grads: &GradStore, lr: f64, scale: f64) -> Result<()> {
        self.steps += 1;
        let (b1, b2) = (self.beta1 as f32, self.beta2 as f32);
        let scale_m = (1.0 / (1.0 - self.beta1.powi(self.steps))) as f32;
        let scale_v = (1.0 / (1.0 - self.beta2.powi(self.steps))) as f32;
        let (lr, eps, scale) = (lr as f32, self.eps as f32, scale as f32);
        for ((var, m), v) in self.vars.iter().zip(&mut self.m).zip(&mut self.v) {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            // The new values go into a fresh buffer, read from the old ones in the same pass.
            let mut w = vec![0f32; m.len()];
            with_f32(var.as_tensor(), "adam", |old| {
                with_f32(g, "adam", |g| {
                    w.par_chunks_mut(CHUNK)
                        .zip(old.par_chunks(CHUNK))
                        .zip(m.par_chunks_mut(CHUNK))
                        .zip(v.par_chunks_mut(CHUNK))
                        .zip(g.par_chunks(CHUNK))
                        .for_each(|((((w, old), m), v), g)| {
                            // Zipped slices: no bounds checks, so the loop vectorises.
                            let values = w.iter_mut().zip(old).zip(m.iter_mut()).zip(v.iter_mut());
                            for ((((w, &old), m), v), &g) in values.zip(g) {
                                let gi = g * scale;
                                *m = *m * b1 + gi * (1.0 - b1);
                                *v = *v * b2 + gi * gi * (1.0 - b2);
                                let step = (*m * scale_m) / ((*v * scale_v).sqrt() + eps);
                                *w = old - step * lr;
                            }
                        });
                    Ok(())
                })
            })?;
            var.set(&Tensor::from_vec(w, var.shape(), var.device())?)?;
        }
        Ok(())
    }
}
