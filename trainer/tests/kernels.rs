//! The fused LIF kernel against the plain candle composition it replaces (values and
//! gradients, random shapes, every option), and the fused DIET network against the plain one.

use std::path::Path;

use candle_core::{Device, Tensor, Var};
use ember_trainer::convert::convert_at;
use ember_trainer::data::mnist::Mnist;
use ember_trainer::diet::DietNet;
use ember_trainer::kernels::lif::{lif, Lif};
use ember_trainer::net::{Net, Rng};
use ember_trainer::recipe::Recipe;
use ember_trainer::surrogate::{spike, Surrogate, NEVER};

/// The plain composition: step after step, as `DietNet`'s reference forward pass.
fn plain_lif(cur: &Tensor, theta: &Var, leak: &Var, op: &Lif, batch: usize) -> Tensor {
    let dev = Device::Cpu;
    let mut mem: Option<Tensor> = None;
    let mut last: Option<Tensor> = None;
    let mut out = Vec::new();
    for t in 0..op.timesteps {
        let i = if op.constant_input {
            cur.clone()
        } else {
            cur.narrow(0, t * batch, batch).unwrap()
        };
        let u = match mem.take() {
            None => i,
            Some(u) => {
                let lu = u.broadcast_mul(leak.as_tensor()).unwrap();
                let ud = u.detach();
                let target = match op.floor {
                    None => ud,
                    Some((scale, bits)) => ((ud * (scale as f64 * bits as f64 / 32768.0))
                        .unwrap()
                        .floor()
                        .unwrap()
                        / scale as f64)
                        .unwrap(),
                };
                let l = (&lu + (target - lu.detach()).unwrap()).unwrap();
                (l + i).unwrap()
            }
        };
        let last_t = last
            .take()
            .unwrap_or_else(|| Tensor::full(-NEVER, u.shape(), &dev).unwrap());
        let dt = last_t.affine(-1.0, t as f64).unwrap();
        let sp = spike(&u, theta.as_tensor(), &dt, &op.surrogate).unwrap();
        let sd = sp.detach();
        mem = Some((&u - sd.broadcast_mul(theta.as_tensor()).unwrap()).unwrap());
        last = Some(
            ((sd.affine(-1.0, 1.0).unwrap() * &last_t).unwrap() + (&sd * t as f64).unwrap())
                .unwrap(),
        );
        out.push(sp);
    }
    Tensor::cat(&out, 0).unwrap()
}

fn random(rng: &mut Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n)
        .map(|_| lo + (hi - lo) * (rng.uniform(1.0) + 1.0) / 2.0)
        .collect()
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * scale,
            "{what}[{k}]: fused {x} vs plain {y} (scale {scale})"
        );
    }
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn fused_lif_equals_the_plain_composition() {
    let dev = Device::Cpu;
    let mut rng = Rng::new(11);
    let surrogates = [
        Surrogate::Linear { gamma: 0.3 },
        Surrogate::Stdb {
            alpha: 0.3,
            beta: 0.01,
        },
    ];
    let mut cases = 0;
    for &steps in &[1usize, 2, 4, 7] {
        for constant in [false, true] {
            for floor in [None, Some((37.5f32, 24576u16)), Some((3.0, 31000))] {
                for (si, &surrogate) in surrogates.iter().enumerate() {
                    // Shapes that cross the kernel's chunking: (batch, c, h, w).
                    let batch = 1 + (steps + si) % 3;
                    let shape = [batch, 3, 29 + steps, 31];
                    let per_step: usize = shape.iter().product();
                    let rows = if constant { 1 } else { steps };
                    let theta_v = 0.5 + rng.uniform(0.2);
                    let leak_v = match floor {
                        Some((_, bits)) => bits as f32 / 32768.0,
                        None => 1.0,
                    };
                    let mut dims = shape;
                    dims[0] *= rows;
                    let cur = Var::from_vec(
                        random(&mut rng, per_step * rows, -0.4, 1.2),
                        &dims[..],
                        &dev,
                    )
                    .unwrap();
                    let theta = Var::from_vec(vec![theta_v], 1, &dev).unwrap();
                    let leak = Var::from_vec(vec![leak_v], 1, &dev).unwrap();
                    let op = Lif::new(steps, surrogate, floor, constant);
                    let r = Tensor::from_vec(
                        random(&mut rng, per_step * steps, -1.0, 1.0),
                        per_step * steps,
                        &dev,
                    )
                    .unwrap();
                    // A per-channel bias in half of the cases.
                    let bias = Var::from_vec(random(&mut rng, 3, -0.3, 0.3), 3, &dev).unwrap();
                    let with_bias = (steps + si) % 2 == 0;
                    let fused = lif(
                        cur.as_tensor(),
                        with_bias.then(|| bias.as_tensor()),
                        theta.as_tensor(),
                        leak.as_tensor(),
                        &op,
                    )
                    .unwrap();
                    let driven = if with_bias {
                        let b = bias.as_tensor().reshape((1, 3, 1, 1)).unwrap();
                        cur.as_tensor().broadcast_add(&b).unwrap()
                    } else {
                        cur.as_tensor().clone()
                    };
                    let plain = plain_lif(&driven, &theta, &leak, &op, batch);
                    let count =
                        f64::from(op.spikes.load(std::sync::atomic::Ordering::Relaxed) as u32);
                    let what =
                        format!("T={steps} constant={constant} floor={floor:?} {surrogate:?}");
                    assert_eq!(fused.dims()[0], steps * batch, "{what}");
                    let (f, p) = (flat(&fused), flat(&plain));
                    assert_eq!(f, p, "{what}: spikes");
                    assert!(f.contains(&1.0) && f.contains(&0.0));
                    assert_eq!(
                        count,
                        f.iter().map(|&x| x as f64).sum::<f64>(),
                        "{what}: count"
                    );
                    let loss =
                        |s: &Tensor| (s.flatten_all().unwrap() * &r).unwrap().sum_all().unwrap();
                    let gf = loss(&fused).backward().unwrap();
                    let gp = loss(&plain).backward().unwrap();
                    let mut vars = vec![(&cur, "current"), (&theta, "theta"), (&leak, "leak")];
                    if with_bias {
                        vars.push((&bias, "bias"));
                    }
                    for (v, name) in vars {
                        // No gradient (the leak at T = 1) reads as zeros.
                        let read = |g: &candle_core::backprop::GradStore| {
                            g.get(v.as_tensor())
                                .map(flat)
                                .unwrap_or_else(|| vec![0.0; v.elem_count()])
                        };
                        let (a, b) = (read(&gf), read(&gp));
                        assert_close(&a, &b, 2e-4, &format!("{what}: d/d{name}"));
                    }
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 48);
}

#[test]
fn lif_rejects_a_batch_that_is_not_t_steps() {
    let dev = Device::Cpu;
    let cur = Tensor::zeros((5, 3), candle_core::DType::F32, &dev).unwrap();
    let one = Tensor::ones(1, candle_core::DType::F32, &dev).unwrap();
    let op = Lif::new(2, Surrogate::default(), None, false);
    let e = lif(&cur, None, &one, &one, &op).unwrap_err().to_string();
    assert!(e.contains("not T = 2 steps"), "{e}");
}

/// A REF-CONV-shaped network (smaller) converted from a random ANN: the fused forward and
/// backward passes give the plain composition's loss, gradients and predictions.
#[test]
fn fused_diet_network_equals_the_plain_one() {
    let text = "name = \"k\"\ntimesteps = 3\ninput = [28, 28, 1]\n\
        [[layers]]\nkind = \"conv\"\nout_channels = 4\nkernel = 3\npadding = 1\n\
        [[layers]]\nkind = \"avgpool\"\nkernel = 2\n\
        [[layers]]\nkind = \"conv\"\nout_channels = 6\nkernel = 3\npadding = 1\n\
        [[layers]]\nkind = \"avgpool\"\nkernel = 2\n\
        [[layers]]\nkind = \"dense\"\noutputs = 10\n\
        [train]\nepochs = 1\nbatch = 32\nlr = 2e-3\nseed = 5\n\
        [convert]\npercentile = 99\ncalibration_samples = 200\n";
    let r = Recipe::parse(text, Path::new("k.toml")).expect("recipe");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist-small");
    let mut m = Mnist::load(&dir).unwrap();
    m.train.truncate(400);
    let net = Net::init(&r).unwrap();
    ember_trainer::train::train(&net, &m.train, 1, false).unwrap();
    let snn = convert_at(&net, &m.train, 3).unwrap();
    let mut fused = DietNet::from_snn(&snn, Surrogate::default()).unwrap();
    assert!(fused.fused, "fused is the default");
    let mut plain = fused.clone();
    plain.fused = false;
    let idx: Vec<usize> = (0..48).collect();
    let (lf, gf) = fused.loss_and_grads(&m.train, &idx, 0.5).unwrap();
    let (lp, gp) = plain.loss_and_grads(&m.train, &idx, 0.5).unwrap();
    assert!((lf - lp).abs() <= 1e-4 * lp.abs(), "loss {lf} vs {lp}");
    assert_eq!(gf.len(), gp.len());
    let mut compared = 0;
    for (k, (a, b)) in gf.iter().zip(&gp).enumerate() {
        match (a, b) {
            (Some(a), Some(b)) => {
                assert_close(&flat(a), &flat(b), 2e-3, &format!("parameter {k}"));
                compared += 1;
            }
            (None, None) => {}
            _ => panic!("parameter {k}: gradient in one pass only"),
        }
    }
    // Three weights, two thresholds, two leaks; the readout's bias.
    assert!(compared >= 7, "{compared} gradients compared");
    let test: Vec<usize> = (0..200).collect();
    fused.fused = true;
    assert_eq!(
        fused.predict(&m.test, &test).unwrap(),
        plain.predict(&m.test, &test).unwrap()
    );
}

/// LIF with the pool inside the kernel equals LIF, then candle's average pool times k².
#[test]
fn pooled_lif_equals_lif_then_pool() {
    let dev = Device::Cpu;
    let mut rng = Rng::new(3);
    for (steps, constant, k, shape) in [
        (1usize, true, 2usize, [3usize, 4, 28, 28]),
        (3, false, 2, [2, 5, 14, 14]),
        (4, true, 3, [2, 2, 9, 12]),
        (2, false, 2, [70, 2, 6, 8]),
    ] {
        let per_step: usize = shape.iter().product();
        let rows = if constant { 1 } else { steps };
        let mut dims = shape;
        dims[0] *= rows;
        let cur = Var::from_vec(
            random(&mut rng, per_step * rows, -0.4, 1.2),
            &dims[..],
            &dev,
        )
        .unwrap();
        let bias = Var::from_vec(random(&mut rng, shape[1], -0.2, 0.2), shape[1], &dev).unwrap();
        let theta = Var::from_vec(vec![0.6f32], 1, &dev).unwrap();
        let leak = Var::from_vec(vec![0.75f32], 1, &dev).unwrap();
        let op = Lif::new(steps, Surrogate::default(), Some((20.0, 24576)), constant);
        let pooled = op.clone().pooled(k);
        let args = |op: &Lif| {
            lif(
                cur.as_tensor(),
                Some(bias.as_tensor()),
                theta.as_tensor(),
                leak.as_tensor(),
                op,
            )
            .unwrap()
        };
        let plain = (args(&op).avg_pool2d(k).unwrap() * (k * k) as f64).unwrap();
        let fused = args(&pooled);
        let what = format!("T={steps} constant={constant} k={k} {shape:?}");
        assert_eq!(fused.dims(), plain.dims(), "{what}");
        assert_eq!(flat(&fused), flat(&plain), "{what}: window counts");
        assert_eq!(
            op.spikes.load(std::sync::atomic::Ordering::Relaxed),
            pooled.spikes.load(std::sync::atomic::Ordering::Relaxed),
            "{what}: spike count"
        );
        let r = Tensor::from_vec(
            random(&mut rng, plain.elem_count(), -1.0, 1.0),
            plain.shape(),
            &dev,
        )
        .unwrap();
        let gf = (&fused * &r)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gp = (&plain * &r)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for (v, name) in [
            (&cur, "current"),
            (&bias, "bias"),
            (&theta, "theta"),
            (&leak, "leak"),
        ] {
            let a = flat(gf.get(v.as_tensor()).unwrap());
            let b = flat(gp.get(v.as_tensor()).unwrap());
            assert_close(&a, &b, 1e-4, &format!("{what}: d/d{name}"));
        }
    }
}

/// The one-pass Adam follows candle-nn's AdamW (no weight decay) step for step, and its
/// gradient norm and scaling are the clipping's.
#[test]
fn fused_adam_follows_candle_adamw() {
    use candle_nn::Optimizer;
    let dev = Device::Cpu;
    let mut rng = Rng::new(9);
    let shapes = [vec![40_000usize], vec![7, 3], vec![1]];
    let init: Vec<Vec<f32>> = shapes
        .iter()
        .map(|s| random(&mut rng, s.iter().product(), -1.0, 1.0))
        .collect();
    let make = || -> Vec<Var> {
        init.iter()
            .zip(&shapes)
            .map(|(v, s)| Var::from_vec(v.clone(), s.as_slice(), &dev).unwrap())
            .collect()
    };
    let (a, b) = (make(), make());
    let mut fused = ember_trainer::kernels::adam::Adam::new(a.clone());
    let mut plain = candle_nn::AdamW::new(
        b.clone(),
        candle_nn::ParamsAdamW {
            lr: 1e-2,
            weight_decay: 0.0,
            ..Default::default()
        },
    )
    .unwrap();
    // loss = sum(w^3) / 3 + sum(w * r): gradient w^2 + r.
    let loss = |vars: &[Var], r: &[Tensor]| {
        let mut l = Tensor::zeros((), candle_core::DType::F32, &dev).unwrap();
        for (v, r) in vars.iter().zip(r) {
            let w = v.as_tensor();
            let c = ((w.sqr().unwrap() * w).unwrap().sum_all().unwrap() / 3.0).unwrap();
            l = ((l + c).unwrap() + (w * r).unwrap().sum_all().unwrap()).unwrap();
        }
        l
    };
    for step in 0..6 {
        let r: Vec<Tensor> = shapes
            .iter()
            .map(|s| {
                let n = s.iter().product();
                Tensor::from_vec(random(&mut rng, n, -1.0, 1.0), s.as_slice(), &dev).unwrap()
            })
            .collect();
        let ga = loss(&a, &r).backward().unwrap();
        let gb = loss(&b, &r).backward().unwrap();
        let norm = fused.grad_norm(&ga).unwrap();
        let expect: f64 = b
            .iter()
            .map(|v| {
                let g = flat(gb.get(v.as_tensor()).unwrap());
                g.iter().map(|&x| (x as f64).powi(2)).sum::<f64>()
            })
            .sum::<f64>()
            .sqrt();
        assert!(
            (norm - expect).abs() <= 1e-4 * expect,
            "norm {norm} vs {expect}"
        );
        // Clip to half the norm on odd steps: the plain pass scales the gradients.
        let scale = if step % 2 == 1 { 0.5 } else { 1.0 };
        let mut gb = gb;
        for v in &b {
            let g = gb.remove(v.as_tensor()).unwrap();
            gb.insert(v.as_tensor(), (g * scale).unwrap());
        }
        fused.step(&ga, 1e-2, scale).unwrap();
        plain.step(&gb).unwrap();
        for (k, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_close(
                &flat(x.as_tensor()),
                &flat(y.as_tensor()),
                1e-5,
                &format!("step {step}, parameter {k}"),
            );
        }
    }
}

/// A pool whose input does not divide by its window (14 x 14 by 4) cannot run in the fused
/// kernels: such a network falls back to the plain composition instead of failing.
#[test]
fn indivisible_pool_falls_back_to_the_plain_pass() {
    let text = "name = \"p\"\ntimesteps = 2\ninput = [28, 28, 1]\n\
        [[layers]]\nkind = \"conv\"\nout_channels = 3\nkernel = 3\npadding = 1\n\
        [[layers]]\nkind = \"avgpool\"\nkernel = 2\n\
        [[layers]]\nkind = \"conv\"\nout_channels = 4\nkernel = 3\npadding = 1\n\
        [[layers]]\nkind = \"avgpool\"\nkernel = 4\n\
        [[layers]]\nkind = \"dense\"\noutputs = 10\n\
        [train]\nepochs = 1\nbatch = 32\nlr = 2e-3\nseed = 5\n\
        [convert]\npercentile = 99\ncalibration_samples = 100\n";
    let r = Recipe::parse(text, Path::new("p.toml")).expect("recipe");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist-small");
    let mut m = Mnist::load(&dir).unwrap();
    m.train.truncate(200);
    let net = Net::init(&r).unwrap();
    let snn = convert_at(&net, &m.train, 2).unwrap();
    let fused = DietNet::from_snn(&snn, Surrogate::default()).unwrap();
    let mut plain = fused.clone();
    plain.fused = false;
    let idx: Vec<usize> = (0..16).collect();
    let (lf, _) = fused.loss_and_grads(&m.train, &idx, 0.0).unwrap();
    let (lp, _) = plain.loss_and_grads(&m.train, &idx, 0.0).unwrap();
    assert_eq!(lf, lp);
}

/// The dense kernel `scale · x · wᵀ` against candle's `(x.matmul(wᵀ)) * scale`: values, the
/// weight gradient, and the input gradient only when the input needs one.
#[test]
fn dense_equals_the_plain_matmul() {
    use ember_trainer::kernels::dense::linear;
    let mut rng = Rng::new(17);
    for &(n, k, o, scale) in &[
        (1, 1, 1, 1.0f32),
        (3, 5, 2, 0.5),
        (64, 784, 256, 1.0 / 255.0),
        (256, 256, 10, 0.7),
        (7, 33, 65, -2.0),
    ] {
        let what = format!("n {n} k {k} o {o} scale {scale}");
        let xv = random(&mut rng, n * k, -1.0, 1.0);
        let wv = random(&mut rng, o * k, -1.0, 1.0);
        let r = Tensor::from_vec(random(&mut rng, n * o, -1.0, 1.0), (n, o), &Device::Cpu).unwrap();
        let loss = |y: &Tensor| (y * &r).unwrap().sum_all().unwrap();
        for x_is_var in [false, true] {
            let x = Var::from_vec(xv.clone(), (n, k), &Device::Cpu).unwrap();
            let xt = if x_is_var {
                x.as_tensor().clone()
            } else {
                x.as_tensor().detach()
            };
            let w = Var::from_vec(wv.clone(), (o, k), &Device::Cpu).unwrap();
            let fused = linear(&xt, w.as_tensor(), scale).unwrap();
            let plain = (xt.matmul(&w.as_tensor().t().unwrap()).unwrap() * scale as f64).unwrap();
            assert_eq!(fused.dims(), &[n, o], "{what}");
            assert_close(&flat(&fused), &flat(&plain), 1e-5, &format!("{what}: y"));
            let gf = loss(&fused).backward().unwrap();
            let gp = loss(&plain).backward().unwrap();
            let gw = |g: &candle_core::backprop::GradStore| flat(g.get(w.as_tensor()).unwrap());
            assert_close(&gw(&gf), &gw(&gp), 1e-5, &format!("{what}: d/dw"));
            match (gf.get(x.as_tensor()), gp.get(x.as_tensor())) {
                (Some(a), Some(b)) => {
                    assert!(x_is_var, "{what}: a gradient for a detached input");
                    assert_close(&flat(a), &flat(b), 1e-5, &format!("{what}: d/dx"));
                }
                (None, None) => assert!(!x_is_var, "{what}: no input gradient"),
                (a, b) => panic!(
                    "{what}: input gradient {:?} vs {:?}",
                    a.is_some(),
                    b.is_some()
                ),
            }
        }
    }
}

/// The lane-wise reductions equal the one-value folds they replace, on lengths around the
/// lane count and with a NaN, which `f32::max` skips.
#[test]
fn lane_reductions_equal_the_plain_folds() {
    use ember_trainer::kernels::{max_abs_of, sum_squares};
    let mut rng = Rng::new(7);
    for n in [0, 1, 15, 16, 17, 33, 1000, 16_385] {
        let mut v = random(&mut rng, n, -3.0, 3.0);
        let plain_max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert_eq!(max_abs_of(&v), plain_max, "max_abs, n = {n}");
        let plain_sq: f64 = v.iter().map(|&x| (x as f64) * (x as f64)).sum();
        let sq = sum_squares(&v);
        assert!(
            (sq - plain_sq).abs() <= 1e-9 * plain_sq.max(1.0),
            "sum of squares, n = {n}"
        );
        if n > 3 {
            v[n / 2] = f32::NAN;
            v[1] = -7.5;
            assert_eq!(max_abs_of(&v), 7.5, "a NaN is skipped, n = {n}");
        }
    }
}
