//! 2-D convolution (f32, CPU) as im2col + gemm, with a hand-written backward pass.
//!
//! [`conv2d`] computes the same result as candle's `x.conv2d(w, padding, stride, 1, 1)`
//! (zero padding, no dilation, no groups, no bias). Per sample `n`, the input is unfolded
//! into a `(C*KH*KW) x (OH*OW)` matrix `col_n` (row-major, so that every row is a run of
//! contiguous copies from one input row) and the output is one gemm,
//! `y_n = W · col_n` with `W` seen as `O x (C*KH*KW)`.
//!
//! Samples are split into a few chunks that rayon runs in parallel; each chunk reuses one
//! `col` buffer (small enough to stay in cache) and calls a single-threaded gemm per sample.
//! The backward pass fuses, per sample, `im2col`, `dW += dY_n · col_nᵀ` (a per-chunk
//! partial, summed at the end) and, only when the input is tracked,
//! `dX_n = col2im(Wᵀ · dY_n)`.

use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::{cpu_f32, matmul, with_f32, Mat};
use rayon::prelude::*;

/// Convolves `x` (N, C, H, W) with `w` (O, C, KH, KW), both f32 on the CPU, with zero
/// `padding` on every side and the given `stride`; returns (N, O, OH, OW) with
/// `OH = (H + 2 padding - KH) / stride + 1` (the same for OW).
///
/// Equal to candle's `x.conv2d(w, padding, stride, 1, 1)`, and differentiable with respect
/// to both arguments; the gradient of `x` is skipped when `x` is not tracked (a raw input).
///
/// # Errors
/// If a tensor is not rank 4 f32 on the CPU, the channel counts differ, `stride` is 0 or the
/// padded input is smaller than the kernel.
pub fn conv2d(x: &Tensor, w: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
    // Validate the shapes up front so that errors do not depend on the storage.
    Geom::new(x.dims(), w.dims(), padding, stride)?;
    let x = x.contiguous()?;
    let w = w.contiguous()?;
    x.apply_op2(&w, Conv2dOp { padding, stride })
}

/// The shapes of one convolution.
#[derive(Clone, Copy, Debug)]
struct Geom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    pad: usize,
    stride: usize,
    oh: usize,
    ow: usize,
}

impl Geom {
    fn new(x: &[usize], w: &[usize], pad: usize, stride: usize) -> Result<Self> {
        let (&[n, c, h, wi], &[o, wc, kh, kw]) = (x, w) else {
            bail!("conv2d: x must be (N, C, H, W) and w (O, C, KH, KW), got {x:?} and {w:?}")
        };
        if c != wc {
            bail!("conv2d: x has {c} channels but w expects {wc}")
        }
        if stride == 0 {
            bail!("conv2d: stride must be at least 1")
        }
        if kh == 0 || kw == 0 || h + 2 * pad < kh || wi + 2 * pad < kw {
            bail!("conv2d: kernel {kh}x{kw} larger than the padded input {h}x{wi} (padding {pad})")
        }
        Ok(Self {
            n,
            c,
            h,
            w: wi,
            o,
            kh,
            kw,
            pad,
            stride,
            oh: (h + 2 * pad - kh) / stride + 1,
            ow: (wi + 2 * pad - kw) / stride + 1,
        })
    }

    /// Rows of `col` (the gemm's inner dimension).
    fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Output pixels per channel (columns of `col`).
    fn p(&self) -> usize {
        self.oh * self.ow
    }

    /// Input elements per sample.
    fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Output elements per sample.
    fn out_len(&self) -> usize {
        self.o * self.p()
    }
}

/// The geometry plus, per kernel offset, the range of output rows (columns) whose input
/// row (column) lies inside the unpadded image.
struct Plan {
    g: Geom,
    rows: Vec<(usize, usize)>,
    cols: Vec<(usize, usize)>,
}

/// Output indices `o` in `[lo, hi)` with `0 <= o * stride + off - pad < len_in`.
fn valid_range(
    out_len: usize,
    len_in: usize,
    off: usize,
    pad: usize,
    stride: usize,
) -> (usize, usize) {
    let lo = if pad > off {
        (pad - off).div_ceil(stride)
    } else {
        0
    };
    let hi = if len_in + pad > off {
        ((len_in + pad - off - 1) / stride + 1).min(out_len)
    } else {
        0
    };
    (lo.min(hi), hi)
}

impl Plan {
    fn new(g: Geom) -> Self {
        let rows = (0..g.kh)
            .map(|k| valid_range(g.oh, g.h, k, g.pad, g.stride))
            .collect();
        let cols = (0..g.kw)
            .map(|k| valid_range(g.ow, g.w, k, g.pad, g.stride))
            .collect();
        Self { g, rows, cols }
    }

    /// Unfolds one sample `x` (C, H, W) into `col` ((C*KH*KW) x (OH*OW), row-major).
    fn im2col(&self, x: &[f32], col: &mut [f32]) {
        let g = &self.g;
        let (p, ow, s, pad) = (g.p(), g.ow, g.stride, g.pad);
        let mut col_rows = col.chunks_exact_mut(p);
        for plane in x.chunks_exact(g.h * g.w) {
            for (kh, &(oh_lo, oh_hi)) in self.rows.iter().enumerate() {
                for (kw, &(ow_lo, ow_hi)) in self.cols.iter().enumerate() {
                    let Some(row) = col_rows.next() else { return };
                    row[..oh_lo * ow].fill(0.0);
                    row[oh_hi * ow..].fill(0.0);
                    let iw0 = (ow_lo * s + kw).wrapping_sub(pad);
                    for (oh, dst) in row.chunks_exact_mut(ow).enumerate().take(oh_hi).skip(oh_lo) {
                        let ih = oh * s + kh - pad;
                        let src = &plane[ih * g.w..(ih + 1) * g.w];
                        dst[..ow_lo].fill(0.0);
                        dst[ow_hi..].fill(0.0);
                        if ow_hi > ow_lo {
                            let dst = &mut dst[ow_lo..ow_hi];
                            if s == 1 {
                                dst.copy_from_slice(&src[iw0..iw0 + dst.len()]);
                            } else {
                                for (d, v) in dst.iter_mut().zip(src[iw0..].iter().step_by(s)) {
                                    *d = *v;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Folds `col` back onto one sample: `x[c, ih, iw] += col[(c, kh, kw), (oh, ow)]` for every
    /// pair that `im2col` maps together (padding positions are dropped). `x` must be zeroed
    /// by the caller for a plain col2im.
    fn col2im(&self, col: &[f32], x: &mut [f32]) {
        let g = &self.g;
        let (p, ow, s, pad) = (g.p(), g.ow, g.stride, g.pad);
        let mut col_rows = col.chunks_exact(p);
        for plane in x.chunks_exact_mut(g.h * g.w) {
            for (kh, &(oh_lo, oh_hi)) in self.rows.iter().enumerate() {
                for (kw, &(ow_lo, ow_hi)) in self.cols.iter().enumerate() {
                    let Some(row) = col_rows.next() else { return };
                    if ow_hi == ow_lo {
                        continue;
                    }
                    let iw0 = ow_lo * s + kw - pad;
                    for (oh, src) in row.chunks_exact(ow).enumerate().take(oh_hi).skip(oh_lo) {
                        let ih = oh * s + kh - pad;
                        let dst = &mut plane[ih * g.w..(ih + 1) * g.w];
                        let src = &src[ow_lo..ow_hi];
                        if s == 1 {
                            for (d, v) in dst[iw0..iw0 + src.len()].iter_mut().zip(src) {
                                *d += *v;
                            }
                        } else {
                            for (d, v) in dst[iw0..].iter_mut().step_by(s).zip(src) {
                                *d += *v;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Samples per parallel chunk: a few chunks per thread, for load balance on a shared machine.
    fn chunk(&self) -> usize {
        let threads = rayon::current_num_threads().max(1);
        self.g.n.div_ceil(4 * threads).max(1)
    }

    /// `y` (N, O, OH, OW) from `x` (N, C, H, W) and `w` (O, C*KH*KW).
    fn forward(&self, x: &[f32], w: &[f32]) -> Vec<f32> {
        let g = &self.g;
        let (k, p) = (g.k(), g.p());
        let mut y = vec![0f32; g.n * g.out_len()];
        let chunk = self.chunk();
        y.par_chunks_mut(chunk * g.out_len())
            .zip(x.par_chunks(chunk * g.in_len()))
            .for_each(|(y, x)| {
                let mut col = vec![0f32; k * p];
                for (y_n, x_n) in y
                    .chunks_exact_mut(g.out_len())
                    .zip(x.chunks_exact(g.in_len()))
                {
                    self.im2col(x_n, &mut col);
                    // y_n (O x P) = W (O x K) · col (K x P)
                    let m = Mat {
                        rows: g.o,
                        cols: p,
                        rs: p,
                        cs: 1,
                    };
                    let a = Mat {
                        rows: g.o,
                        cols: k,
                        rs: k,
                        cs: 1,
                    };
                    let b = Mat {
                        rows: k,
                        cols: p,
                        rs: p,
                        cs: 1,
                    };
                    matmul(y_n, m, false, w, a, &col, b);
                }
            });
        y
    }

    /// Processes one chunk of samples for the backward pass: returns its partial `dW`,
    /// transposed (K x O), when `need_gw`, and writes `dX` into `gx` when given.
    fn backward_chunk(
        &self,
        x: &[f32],
        w: &[f32],
        gy: &[f32],
        mut gx: Option<&mut [f32]>,
        need_gw: bool,
    ) -> Vec<f32> {
        let g = &self.g;
        let (k, p, o) = (g.k(), g.p(), g.o);
        let mut gw = if need_gw {
            vec![0f32; o * k]
        } else {
            Vec::new()
        };
        let mut col = vec![0f32; k * p];
        for (i, gy_n) in gy.chunks_exact(g.out_len()).enumerate() {
            if need_gw {
                self.im2col(&x[i * g.in_len()..(i + 1) * g.in_len()], &mut col);
                // dW (O x K) += dY_n (O x P) · col_nᵀ (P x K), accumulated transposed (stored
                // K x O row-major), which suits gemm's column-major microkernel better.
                let m = Mat {
                    rows: o,
                    cols: k,
                    rs: 1,
                    cs: o,
                };
                let a = Mat {
                    rows: o,
                    cols: p,
                    rs: p,
                    cs: 1,
                };
                let b = Mat {
                    rows: p,
                    cols: k,
                    rs: 1,
                    cs: p,
                };
                matmul(&mut gw, m, true, gy_n, a, &col, b);
            }
            if let Some(gx) = gx.as_deref_mut() {
                // dcol (K x P) = Wᵀ (K x O) · dY_n (O x P), then folded onto dX_n.
                let m = Mat {
                    rows: k,
                    cols: p,
                    rs: p,
                    cs: 1,
                };
                let a = Mat {
                    rows: k,
                    cols: o,
                    rs: 1,
                    cs: k,
                };
                let b = Mat {
                    rows: o,
                    cols: p,
                    rs: p,
                    cs: 1,
                };
                matmul(&mut col, m, false, w, a, gy_n, b);
                self.col2im(&col, &mut gx[i * g.in_len()..(i + 1) * g.in_len()]);
            }
        }
        gw
    }

    /// `(dX, dW)` from `x`, `w` and `dY`; `dX` only when `need_gx`, `dW` only when `need_gw`.
    fn backward(
        &self,
        x: &[f32],
        w: &[f32],
        gy: &[f32],
        need_gx: bool,
        need_gw: bool,
    ) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
        let g = &self.g;
        let chunk = self.chunk();
        let xs = x.par_chunks(chunk * g.in_len());
        let gys = gy.par_chunks(chunk * g.out_len());
        let (gx, partials): (Option<Vec<f32>>, Vec<Vec<f32>>) = if need_gx {
            let mut gx = vec![0f32; x.len()];
            let partials = gx
                .par_chunks_mut(chunk * g.in_len())
                .zip(xs.zip(gys))
                .map(|(gx, (x, gy))| self.backward_chunk(x, w, gy, Some(gx), need_gw))
                .collect();
            (Some(gx), partials)
        } else {
            let partials = xs
                .zip(gys)
                .map(|(x, gy)| self.backward_chunk(x, w, gy, None, need_gw))
                .collect();
            (None, partials)
        };
        let gw = need_gw.then(|| {
            // Sum the chunks' (K x O) partials, then transpose to (O x K).
            let (k, o) = (g.k(), g.o);
            let mut it = partials.into_iter();
            let mut acc = it.next().unwrap_or_else(|| vec![0f32; o * k]);
            for part in it {
                for (a, b) in acc.iter_mut().zip(&part) {
                    *a += *b;
                }
            }
            let mut gw = vec![0f32; o * k];
            for (ki, row) in acc.chunks_exact(o).enumerate() {
                for (oi, v) in row.iter().enumerate() {
                    gw[oi * k + ki] = *v;
                }
            }
            gw
        });
        (gx, gw)
    }
}

/// The forward op; its backward is [`Plan::backward`].
struct Conv2dOp {
    padding: usize,
    stride: usize,
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "ember-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geom::new(l1.dims(), l2.dims(), self.padding, self.stride)?;
        let x = cpu_f32(s1, l1, self.name())?;
        let w = cpu_f32(s2, l2, self.name())?;
        let y = Plan::new(g).forward(x, w);
        Ok((CpuStorage::F32(y), Shape::from((g.n, g.o, g.oh, g.ow))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (need_gx, need_gw) = (x.track_op(), w.track_op());
        if !need_gx && !need_gw {
            return Ok((None, None));
        }
        let g = Geom::new(x.dims(), w.dims(), self.padding, self.stride)?;
        let plan = Plan::new(g);
        let name = self.name();
        if grad.dims() != [g.n, g.o, g.oh, g.ow] {
            bail!(
                "{name}: gradient of shape {:?} for an output of {:?}",
                grad.dims(),
                (g.n, g.o, g.oh, g.ow)
            )
        }
        let (gx, gw) = with_f32(x, name, |xd| {
            with_f32(w, name, |wd| {
                with_f32(grad, name, |gd| {
                    Ok(plan.backward(xd, wd, gd, need_gx, need_gw))
                })
            })
        })?;
        let gx = gx
            .map(|v| Tensor::from_vec(v, x.shape(), x.device()))
            .transpose()?;
        let gw = gw
            .map(|v| Tensor::from_vec(v, w.shape(), w.device()))
            .transpose()?;
        Ok((gx, gw))
    }
}
