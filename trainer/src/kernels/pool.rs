//! k x k sum pooling (f32, CPU): the runtime's spike-count pooling, and its backward.
//!
//! [`sum_pool2d`] adds every non-overlapping k x k window (stride k), i.e.
//! `x.avg_pool2d(k) * (k * k)`; its gradient copies each output gradient back onto the
//! k x k inputs of its window (nearest upsampling). Both passes run over the N*C planes,
//! in parallel with rayon when the tensor is large.

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_f32;

/// Below this many input elements the passes run on the calling thread.
const PARALLEL_MIN: usize = 1 << 15;

/// Sums each non-overlapping `k` x `k` window of `x` (N, C, H, W), f32 on the CPU; returns
/// (N, C, H/k, W/k). Differentiable: the gradient of an input is the gradient of its window.
///
/// # Errors
/// If `x` is not rank 4 f32 on the CPU, `k` is 0 or H or W is not a multiple of `k`.
pub fn sum_pool2d(x: &Tensor, k: usize) -> Result<Tensor> {
    check(x.dims(), k)?;
    x.contiguous()?.apply_op1(SumPool { k })
}

/// `(N*C, H, W)` of a pooling input, after checking that `k` divides H and W.
fn check(dims: &[usize], k: usize) -> Result<(usize, usize, usize)> {
    let &[n, c, h, w] = dims else {
        bail!("sum_pool2d: x must be (N, C, H, W), got {dims:?}")
    };
    if k == 0 || h % k != 0 || w % k != 0 {
        bail!("sum_pool2d: window {k} does not divide the {h}x{w} input")
    }
    Ok((n * c, h, w))
}

/// Sums the windows of one (H, W) plane into one (H/k, W/k) plane.
fn pool_plane(x: &[f32], y: &mut [f32], w: usize, k: usize) {
    y.fill(0.0);
    for (y_row, band) in y.chunks_exact_mut(w / k).zip(x.chunks_exact(k * w)) {
        for x_row in band.chunks_exact(w) {
            for (acc, win) in y_row.iter_mut().zip(x_row.chunks_exact(k)) {
                *acc += win.iter().sum::<f32>();
            }
        }
    }
}

/// Spreads one (H/k, W/k) gradient plane onto its (H, W) input plane.
fn unpool_plane(gy: &[f32], gx: &mut [f32], w: usize, k: usize) {
    for (gy_row, band) in gy.chunks_exact(w / k).zip(gx.chunks_exact_mut(k * w)) {
        for gx_row in band.chunks_exact_mut(w) {
            for (v, win) in gy_row.iter().zip(gx_row.chunks_exact_mut(k)) {
                win.fill(*v);
            }
        }
    }
}

/// Applies `f(src_plane, dst_plane)` over matching planes, in parallel when large.
fn per_plane(
    src: &[f32],
    src_plane: usize,
    dst: &mut [f32],
    dst_plane: usize,
    f: impl Fn(&[f32], &mut [f32]) + Sync,
) {
    if src.len().max(dst.len()) >= PARALLEL_MIN {
        dst.par_chunks_mut(dst_plane)
            .zip(src.par_chunks(src_plane))
            .for_each(|(d, s)| f(s, d));
    } else {
        dst.chunks_exact_mut(dst_plane)
            .zip(src.chunks_exact(src_plane))
            .for_each(|(d, s)| f(s, d));
    }
}

/// The forward op.
struct SumPool {
    k: usize,
}

impl CustomOp1 for SumPool {
    fn name(&self) -> &'static str {
        "ember-sum-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let k = self.k;
        let (planes, h, w) = check(l.dims(), k)?;
        let x = cpu_f32(s, l, self.name())?;
        let (oh, ow) = (h / k, w / k);
        let mut y = vec![0f32; planes * oh * ow];
        if !y.is_empty() {
            per_plane(x, h * w, &mut y, oh * ow, |x, y| pool_plane(x, y, w, k));
        }
        let d = l.dims();
        Ok((CpuStorage::F32(y), Shape::from((d[0], d[1], oh, ow))))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (n, c, h, w) = x.dims4()?;
        if grad.dims() != [n, c, h / self.k, w / self.k] {
            bail!(
                "{}: gradient of shape {:?} for input {:?}",
                self.name(),
                grad.dims(),
                x.dims()
            )
        }
        let gx = grad
            .detach()
            .contiguous()?
            .apply_op1_no_bwd(&SumUnpool { k: self.k })?;
        Ok(Some(gx))
    }
}

/// The backward op: nearest upsampling by `k`.
struct SumUnpool {
    k: usize,
}

impl CustomOp1 for SumUnpool {
    fn name(&self) -> &'static str {
        "ember-sum-pool2d-backward"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let k = self.k;
        let (n, c, oh, ow) = l.shape().dims4()?;
        let gy = cpu_f32(s, l, self.name())?;
        let (h, w) = (oh * k, ow * k);
        let mut gx = vec![0f32; n * c * h * w];
        if !gx.is_empty() {
            per_plane(gy, oh * ow, &mut gx, h * w, |gy, gx| {
                unpool_plane(gy, gx, w, k)
            });
        }
        Ok((CpuStorage::F32(gx), Shape::from((n, c, h, w))))
    }
}
