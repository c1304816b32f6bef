//! The conv2d and sum-pool kernels against the plain candle composition they replace:
//! values and gradients on random shapes.

use candle_core::{DType, Device, Result, Tensor, Var};
use ember_trainer::kernels::conv::conv2d;
use ember_trainer::kernels::pool::sum_pool2d;

/// SplitMix64: a small seeded PRNG.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    fn pick(&mut self, xs: &[usize]) -> usize {
        xs[self.range(0, xs.len() - 1)]
    }

    /// A tensor of uniform values in [-1, 1).
    fn tensor(&mut self, dims: &[usize]) -> Tensor {
        let n = dims.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
            .collect();
        Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
    }
}

/// Asserts `max |a - b| <= tol * max |b|` (and equal shapes).
fn assert_close(a: &Tensor, b: &Tensor, tol: f32, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let diff = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        diff <= tol * scale,
        "{what}: max diff {diff} vs scale {scale} (tol {tol})"
    );
}

struct Case {
    x: [usize; 4],
    w: [usize; 4],
    pad: usize,
    stride: usize,
}

fn random_case(rng: &mut Rng) -> Case {
    let (kh, kw) = (rng.pick(&[1, 3, 5]), rng.pick(&[1, 3, 5]));
    let pad = rng.pick(&[0, 1, 2]);
    let stride = rng.pick(&[1, 2]);
    // At least the kernel after padding, sometimes exactly it.
    let h = rng.range(kh.saturating_sub(2 * pad).max(1), kh + 8);
    let w = rng.range(kw.saturating_sub(2 * pad).max(1), kw + 8);
    let (n, c, o) = (rng.range(1, 4), rng.range(1, 5), rng.range(1, 5));
    Case {
        x: [n, c, h, w],
        w: [o, c, kh, kw],
        pad,
        stride,
    }
}

/// Direct loops (f64): `y = conv(x, w)` and, for an output gradient `r`, `(dx, dw)`.
fn naive(case: &Case, x: &[f32], w: &[f32], r: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let [n, c, h, wd] = case.x;
    let [o, _, kh, kw] = case.w;
    let (p, s) = (case.pad as isize, case.stride);
    let oh = (h + 2 * case.pad - kh) / s + 1;
    let ow = (wd + 2 * case.pad - kw) / s + 1;
    let (mut y, mut dx, mut dw) = (
        vec![0f64; n * o * oh * ow],
        vec![0f64; x.len()],
        vec![0f64; w.len()],
    );
    for (ni, oi, ohi, owi) in (0..n).flat_map(|a| {
        (0..o).flat_map(move |b| (0..oh).flat_map(move |d| (0..ow).map(move |e| (a, b, d, e))))
    }) {
        let yi = ((ni * o + oi) * oh + ohi) * ow + owi;
        for (ci, khi, kwi) in
            (0..c).flat_map(|a| (0..kh).flat_map(move |b| (0..kw).map(move |d| (a, b, d))))
        {
            let ih = (ohi * s + khi) as isize - p;
            let iw = (owi * s + kwi) as isize - p;
            if ih < 0 || iw < 0 || ih >= h as isize || iw >= wd as isize {
                continue;
            }
            let xi = ((ni * c + ci) * h + ih as usize) * wd + iw as usize;
            let wi = ((oi * c + ci) * kh + khi) * kw + kwi;
            y[yi] += x[xi] as f64 * w[wi] as f64;
            dx[xi] += w[wi] as f64 * r[yi] as f64;
            dw[wi] += x[xi] as f64 * r[yi] as f64;
        }
    }
    let f = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect();
    (f(y), f(dx), f(dw))
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// Forward and both gradients of `(conv(x, w) * r).sum_all()`, by our kernel, by direct
/// loops, and by candle's conv2d (whose backward fails for some stride-2 shapes, where
/// `H + 2p - K` is not a multiple of the stride: there the loops alone are the reference).
/// Returns whether candle's backward was compared.
fn check_case(rng: &mut Rng, case: &Case) -> Result<bool> {
    let what = format!(
        "x {:?} w {:?} pad {} stride {}",
        case.x, case.w, case.pad, case.stride
    );
    let x = Var::from_tensor(&rng.tensor(&case.x))?;
    let w = Var::from_tensor(&rng.tensor(&case.w))?;
    let ours = conv2d(&x, &w, case.pad, case.stride)?;
    let theirs = x.conv2d(&w, case.pad, case.stride, 1, 1)?;
    assert_close(&ours, &theirs, 1e-4, &format!("forward {what}"));

    let r = rng.tensor(theirs.dims());
    let (y, dx, dw) = naive(case, &values(&x), &values(&w), &values(&r));
    let (y, dx, dw) = (
        Tensor::from_vec(y, theirs.dims(), &Device::Cpu)?,
        Tensor::from_vec(dx, x.dims(), &Device::Cpu)?,
        Tensor::from_vec(dw, w.dims(), &Device::Cpu)?,
    );
    assert_close(&ours, &y, 1e-4, &format!("forward vs loops {what}"));
    let g_ours = (ours * &r)?.sum_all()?.backward()?;
    assert_close(
        g_ours.get(&x).unwrap(),
        &dx,
        1e-3,
        &format!("grad x vs loops {what}"),
    );
    assert_close(
        g_ours.get(&w).unwrap(),
        &dw,
        1e-3,
        &format!("grad w vs loops {what}"),
    );
    let Ok(g_theirs) = (theirs * &r)?.sum_all()?.backward() else {
        assert!(
            case.stride > 1,
            "candle's backward failed at stride 1: {what}"
        );
        return Ok(false);
    };
    for (v, name) in [(&x, "grad x"), (&w, "grad w")] {
        let a = g_ours.get(v).expect("our gradient");
        let b = g_theirs.get(v).expect("candle's gradient");
        assert_close(a, b, 1e-3, &format!("{name} {what}"));
    }
    Ok(true)
}

#[test]
fn conv2d_matches_candle_on_random_shapes() -> Result<()> {
    let mut rng = Rng(0x5EED_C0DE);
    let mut vs_candle = 0;
    for _ in 0..80 {
        let case = random_case(&mut rng);
        vs_candle += usize::from(check_case(&mut rng, &case)?);
    }
    assert!(
        vs_candle >= 40,
        "only {vs_candle} cases compared with candle's backward"
    );
    Ok(())
}

#[test]
fn conv2d_matches_candle_on_the_network_shapes() -> Result<()> {
    let mut rng = Rng(7);
    for (x, w) in [
        ([4, 1, 28, 28], [16, 1, 3, 3]),
        ([8, 16, 14, 14], [32, 16, 3, 3]),
    ] {
        check_case(
            &mut rng,
            &Case {
                x,
                w,
                pad: 1,
                stride: 1,
            },
        )?;
    }
    Ok(())
}

#[test]
fn conv2d_untracked_input_has_no_input_gradient() -> Result<()> {
    let mut rng = Rng(11);
    for _ in 0..10 {
        let case = random_case(&mut rng);
        let x = rng.tensor(&case.x);
        let w = Var::from_tensor(&rng.tensor(&case.w))?;
        let ours = conv2d(&x, &w, case.pad, case.stride)?;
        let r = rng.tensor(ours.dims());
        let (_, _, dw) = naive(&case, &values(&x), &values(&w), &values(&r));
        let dw = Tensor::from_vec(dw, w.dims(), &Device::Cpu)?;
        let g_ours = (ours * &r)?.sum_all()?.backward()?;
        assert!(g_ours.get(&x).is_none());
        assert_close(g_ours.get(&w).unwrap(), &dw, 1e-3, "grad w, untracked x");
        // candle's, where its backward handles the shape.
        if let Ok(g) = (x.conv2d(&w, case.pad, case.stride, 1, 1)? * &r)?
            .sum_all()?
            .backward()
        {
            assert_close(
                g_ours.get(&w).unwrap(),
                g.get(&w).unwrap(),
                1e-3,
                "grad w vs candle",
            );
        }
    }
    Ok(())
}

#[test]
fn conv2d_accepts_strided_inputs() -> Result<()> {
    let mut rng = Rng(3);
    // A transposed view and a narrowed view (non-zero start offset).
    let x = rng.tensor(&[2, 3, 9, 7]).transpose(2, 3)?;
    let w = rng.tensor(&[6, 3, 3, 3]).narrow(0, 2, 4)?;
    assert!(!x.is_contiguous());
    let ours = conv2d(&x, &w, 1, 2)?;
    let theirs = x.conv2d(&w, 1, 2, 1, 1)?;
    assert_close(&ours, &theirs, 1e-4, "strided inputs");
    Ok(())
}

#[test]
fn conv2d_rejects_bad_inputs() {
    let mut rng = Rng(5);
    let x = rng.tensor(&[1, 2, 5, 5]);
    let w = rng.tensor(&[3, 2, 3, 3]);
    assert!(
        conv2d(&x, &rng.tensor(&[3, 4, 3, 3]), 0, 1).is_err(),
        "channel mismatch"
    );
    assert!(conv2d(&x, &w, 0, 0).is_err(), "stride 0");
    assert!(
        conv2d(&x, &rng.tensor(&[3, 2, 7, 7]), 0, 1).is_err(),
        "kernel too large"
    );
    assert!(conv2d(&x.flatten_all().unwrap(), &w, 0, 1).is_err(), "rank");
    assert!(
        conv2d(
            &x.to_dtype(DType::F64).unwrap(),
            &w.to_dtype(DType::F64).unwrap(),
            0,
            1
        )
        .is_err(),
        "f64"
    );
    assert!(conv2d(&x, &w, 0, 1).is_ok());
}

fn check_pool(rng: &mut Rng, dims: &[usize], k: usize) -> Result<()> {
    let what = format!("x {dims:?} k {k}");
    let x = Var::from_tensor(&rng.tensor(dims))?;
    let ours = sum_pool2d(&x, k)?;
    let theirs = (x.avg_pool2d(k)? * (k * k) as f64)?;
    assert_close(&ours, &theirs, 1e-5, &format!("pool forward {what}"));
    let r = rng.tensor(theirs.dims());
    let g_ours = (ours * &r)?.sum_all()?.backward()?;
    let g_theirs = (theirs * &r)?.sum_all()?.backward()?;
    assert_close(
        g_ours.get(&x).unwrap(),
        g_theirs.get(&x).unwrap(),
        1e-5,
        &format!("pool grad {what}"),
    );
    Ok(())
}

#[test]
fn sum_pool2d_matches_candle() -> Result<()> {
    let mut rng = Rng(0xB00);
    for _ in 0..30 {
        let k = rng.range(1, 4);
        let dims = [
            rng.range(1, 3),
            rng.range(1, 4),
            k * rng.range(1, 6),
            k * rng.range(1, 6),
        ];
        check_pool(&mut rng, &dims, k)?;
    }
    // Large enough for the parallel path.
    check_pool(&mut rng, &[8, 16, 28, 28], 2)?;
    Ok(())
}

#[test]
fn sum_pool2d_rejects_bad_inputs() {
    let mut rng = Rng(9);
    assert!(
        sum_pool2d(&rng.tensor(&[1, 1, 6, 5]), 2).is_err(),
        "W not divisible"
    );
    assert!(sum_pool2d(&rng.tensor(&[1, 1, 6, 6]), 0).is_err(), "k = 0");
    assert!(sum_pool2d(&rng.tensor(&[1, 6, 6]), 2).is_err(), "rank");
    assert!(
        sum_pool2d(&rng.tensor(&[1, 1, 6, 6]).to_dtype(DType::F64).unwrap(), 2).is_err(),
        "f64"
    );
}
