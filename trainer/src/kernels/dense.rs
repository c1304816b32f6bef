//! A dense layer as one gemm call: `y = scale · x · wᵀ` for `x` (n x k) and `w` (o x k),
//! with its backward as two gemm calls (`gx = scale · g · w`, only when `x` needs it, and
//! `gw = scale · gᵀ · x`).
//!
//! The candle composition `(x.matmul(&w.t()) * scale)` puts a transpose and a scaling in the
//! graph: every step the weight gradient is scaled, transposed and accumulated with a strided
//! add, each a pass over the whole weight matrix. Here the scale rides in gemm's `beta` and
//! the gradient comes out in `w`'s own layout.

use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use gemm::Parallelism;

use super::{cpu_f32, gemm_scaled, with_f32, Mat};

/// `scale · x · wᵀ`: `x` (n x k), `w` (o x k), both f32 on the CPU; the result is (n x o).
pub fn linear(x: &Tensor, w: &Tensor, scale: f32) -> Result<Tensor> {
    x.apply_op2(w, Dense { scale })
}

/// Every thread for a product of at least a million multiply-adds; a smaller one (the
/// readout's) costs less than waking the other threads.
fn par(macs: usize) -> Parallelism {
    match rayon::current_num_threads() {
        n if n > 1 && macs >= 1 << 20 => Parallelism::Rayon(n),
        _ => Parallelism::None,
    }
}

/// Row-major `rows x cols`.
fn rm(rows: usize, cols: usize) -> Mat {
    Mat {
        rows,
        cols,
        rs: cols,
        cs: 1,
    }
}

/// The transpose of a row-major `cols x rows` matrix, seen as `rows x cols`.
fn tr(rows: usize, cols: usize) -> Mat {
    Mat {
        rows,
        cols,
        rs: 1,
        cs: rows,
    }
}

struct Dense {
    scale: f32,
}

impl Dense {
    /// (n, k, o) of `x` (n x k) and `w` (o x k).
    fn dims(&self, x: &[usize], w: &[usize]) -> Result<(usize, usize, usize)> {
        match (x, w) {
            ([n, k], [o, k2]) if k == k2 => Ok((*n, *k, *o)),
            _ => bail!("dense: x {x:?} and w {w:?} are not (n x k) and (o x k)"),
        }
    }

    /// `scale · a · b` for the views `am` of `a` and `bm` of `b`, as a new row-major tensor.
    fn product(&self, a: &Tensor, am: Mat, b: &Tensor, bm: Mat, macs: usize) -> Result<Tensor> {
        let name = self.name();
        let (rows, cols) = (am.rows, bm.cols);
        let mut dst = vec![0f32; rows * cols];
        with_f32(a, name, |ad| {
            with_f32(b, name, |bd| {
                let p = par(macs);
                gemm_scaled(
                    &mut dst,
                    rm(rows, cols),
                    false,
                    ad,
                    am,
                    bd,
                    bm,
                    self.scale,
                    p,
                );
                Ok(())
            })
        })?;
        Tensor::from_vec(dst, (rows, cols), a.device())
    }
}

impl CustomOp2 for Dense {
    fn name(&self) -> &'static str {
        "dense"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, k, o) = self.dims(l1.dims(), l2.dims())?;
        let x = cpu_f32(s1, l1, self.name())?;
        let w = cpu_f32(s2, l2, self.name())?;
        let mut y = vec![0f32; n * o];
        gemm_scaled(
            &mut y,
            rm(n, o),
            false,
            x,
            rm(n, k),
            w,
            tr(k, o),
            self.scale,
            par(n * k * o),
        );
        Ok((CpuStorage::F32(y), Shape::from((n, o))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (need_gx, need_gw) = (x.track_op(), w.track_op());
        let (n, k, o) = self.dims(x.dims(), w.dims())?;
        if grad.dims() != [n, o] {
            bail!(
                "dense: gradient of shape {:?} for an output of {:?}",
                grad.dims(),
                (n, o)
            )
        }
        let gx = need_gx
            .then(|| self.product(grad, rm(n, o), w, rm(o, k), n * k * o))
            .transpose()?;
        let gw = need_gw
            .then(|| self.product(grad, tr(o, n), x, rm(n, k), n * k * o))
            .transpose()?;
        Ok((gx, gw))
    }
}
