//! DIET-SNN / hybrid STDB: surrogate gradients against hand-computed numbers, the leak's
//! floor rounding against the integer runtime, and a tiny fine-tune on the bundled subset.

use std::path::Path;

use candle_core::{Device, Tensor, Var};
use ember_runtime::format::Layer;
use ember_trainer::convert::convert;
use ember_trainer::data::mnist::Mnist;
use ember_trainer::diet::{self, DietSpec, SurrogateKind};
use ember_trainer::net::Net;
use ember_trainer::pipeline::Options;
use ember_trainer::recipe::Recipe;
use ember_trainer::surrogate::{spike, Surrogate, NEVER};
use ember_trainer::{eval, export, quantize, snn, train};

fn bundled_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist-small")
}

/// Stage options on the bundled subset, without progress bars.
fn quiet_options() -> Options {
    Options {
        data: bundled_dir(),
        epochs: None,
        train_samples: None,
        progress: false,
        resume: false,
        init: None,
    }
}

fn close(a: f32, b: f32, what: &str) {
    assert!((a - b).abs() <= 1e-6 + 1e-5 * b.abs(), "{what}: {a} != {b}");
}

/// `d sum(spike(u, theta)) / d u` and `/ d theta`, and the spikes.
fn grads(u: &[f32], theta: f32, dt: &[f32], s: &Surrogate) -> (Vec<f32>, Vec<f32>, f32) {
    let dev = Device::Cpu;
    let uv = Var::from_slice(u, u.len(), &dev).unwrap();
    let tv = Var::from_slice(&[theta], 1, &dev).unwrap();
    let dt = Tensor::from_slice(dt, dt.len(), &dev).unwrap();
    let sp = spike(uv.as_tensor(), tv.as_tensor(), &dt, s).unwrap();
    let g = sp.sum_all().unwrap().backward().unwrap();
    (
        sp.to_vec1().unwrap(),
        g.get(uv.as_tensor()).unwrap().to_vec1().unwrap(),
        g.get(tv.as_tensor()).unwrap().to_vec1::<f32>().unwrap()[0],
    )
}

#[test]
fn linear_surrogate_matches_hand_computed_gradients() {
    let s = Surrogate::Linear { gamma: 0.3 };
    // theta = 2: z = u/2 - 1 = -0.25, 0, 0.5, 1.25; g = 0.3 max(0, 1 - |z|).
    let u = [1.5, 2.0, 3.0, 4.5];
    let (spikes, du, dtheta) = grads(&u, 2.0, &[1.0; 4], &s);
    assert_eq!(
        spikes,
        vec![0.0, 1.0, 1.0, 1.0],
        "u >= theta fires, as the runtime"
    );
    let g = [0.225, 0.3, 0.15, 0.0];
    for i in 0..4 {
        close(s.grad(u[i] / 2.0 - 1.0, 1.0), g[i], "g");
        close(du[i], g[i] / 2.0, "d/du = g / theta");
    }
    // d/dtheta = -sum(g u) / theta^2 = -(0.3375 + 0.6 + 0.45) / 4.
    close(dtheta, -0.346875, "d/dtheta");
}

#[test]
fn stdb_surrogate_matches_hand_computed_gradients() {
    let s = Surrogate::Stdb {
        alpha: 0.3,
        beta: 0.01,
    };
    // dt: spiked one step ago, three steps ago, never (NEVER + 3 at step 3).
    let dt = [1.0, 3.0, NEVER + 3.0];
    let g = [0.297_014_95, 0.291_133_66, 1.321_75e-5];
    for i in 0..3 {
        close(s.grad(0.0, dt[i]), g[i], "alpha exp(-beta dt)");
    }
    let u = [1.0, 3.0, 5.0];
    let (spikes, du, dtheta) = grads(&u, 2.0, &dt, &s);
    assert_eq!(spikes, vec![0.0, 1.0, 1.0]);
    for i in 0..3 {
        close(du[i], g[i] / 2.0, "d/du = g / theta (independent of u)");
    }
    close(
        dtheta,
        -(g[0] * 1.0 + g[1] * 3.0 + g[2] * 5.0) / 4.0,
        "d/dtheta",
    );
}

#[test]
fn leak_bits_round_and_clamp() {
    assert_eq!(snn::leak_bits(1.0), 32768);
    assert_eq!(snn::leak_bits(0.5), 16384);
    assert_eq!(snn::leak_bits(0.75), 24576);
    assert_eq!(snn::leak_bits(1.3), 32768);
    assert_eq!(snn::leak_bits(-0.2), 0);
    assert_eq!(snn::leak_bits(0.999_99), 32768);
}

fn recipe(t: u16, diet: &str) -> Recipe {
    let text = format!(
        "name = \"t\"\ntimesteps = {t}\ninput = [28, 28, 1]\n\
         [[layers]]\nkind = \"dense\"\noutputs = 32\n[[layers]]\nkind = \"dense\"\noutputs = 10\n\
         [train]\nepochs = 2\nbatch = 50\nlr = 2e-3\nseed = 7\n\
         [convert]\npercentile = 99.9\ncalibration_samples = 500\n{diet}"
    );
    Recipe::parse(&text, Path::new("test.toml")).expect("recipe")
}

fn trained(r: &Recipe, m: &Mnist) -> Net {
    let net = Net::init(r).unwrap();
    train::train(&net, &m.train, r.train.epochs, false).unwrap();
    net
}

/// A leaky export: the float simulation's `floor(u s l) / s` follows the runtime's
/// `floor(u_int l)`, so the two agree on the class of almost every sample.
#[test]
fn leaky_float_simulation_matches_the_integer_runtime() {
    let mut m = Mnist::load(&bundled_dir()).unwrap();
    m.train.truncate(1000);
    let r = recipe(6, "");
    let s = convert(&trained(&r, &m), &m.train).unwrap();
    let n = 300;
    // The BPTT forward pass (no leak yet: as converted) is the float simulation's.
    let d = diet::DietNet::from_snn(&s, Surrogate::default()).unwrap();
    let idx: Vec<usize> = (0..n).collect();
    let plain = snn::simulate_plain(&s, &[], &m.test, n, 6).unwrap();
    assert_eq!(d.predict(&m.test, &idx).unwrap(), plain.classes);
    let fused = snn::simulate(&s, &m.test, n, 6).unwrap();
    assert_eq!(fused.classes, plain.classes);
    assert_eq!(fused.spikes, plain.spikes, "spike counts per layer");
    let q = quantize::quantize(&s).unwrap();
    let none = eval::evaluate(
        &export::encode(&q).unwrap(),
        Path::new("m"),
        &m.test,
        n,
        None,
        false,
    )
    .unwrap();
    let leaks = [snn::leak_bits(0.6), 1 << 15];
    let sim = snn::simulate_leaky(&s, &leaks, &m.test, n, 6, false).unwrap();
    // The fused simulation of the leaky network follows the plain composition.
    let reference = snn::simulate_plain(&s, &leaks, &m.test, n, 6).unwrap();
    let same = sim
        .classes
        .iter()
        .zip(&reference.classes)
        .filter(|(a, b)| a == b)
        .count();
    assert!(
        same >= n - 2,
        "fused vs plain leaky simulation: {same} of {n} agree"
    );
    let bytes = export::encode_leaky(&q, &leaks).unwrap();
    let model = ember_runtime::Model::from_bytes(&bytes).unwrap();
    match &model.desc().layers[0] {
        Layer::Dense(d) => assert_eq!(d.neuron.lif().unwrap().leak.to_bits(), leaks[0]),
        l => panic!("{l:?}"),
    }
    let e = eval::evaluate(&bytes, Path::new("m"), &m.test, n, None, false).unwrap();
    let agree = sim
        .classes
        .iter()
        .zip(&e.classes)
        .filter(|(f, i)| **f == **i as u32)
        .count() as f64
        / n as f64;
    eprintln!(
        "leak 0.6: float/int agreement {agree}, spike rate {} (no leak: {})",
        e.layers[0].spike_rate, none.layers[0].spike_rate
    );
    assert!(agree >= 0.97, "agreement {agree}");
    assert!(
        e.layers[0].spike_rate < 0.9 * none.layers[0].spike_rate,
        "the leak must lower the spike rate: {} vs {}",
        e.layers[0].spike_rate,
        none.layers[0].spike_rate
    );
}

/// Converted at T=2, fine-tuned for 3 short epochs: no worse than the conversion (the best
/// held-out epoch is kept), the export agrees with the float SNN, leaks stay in [0, 1].
#[test]
fn tiny_diet_fine_tune_keeps_accuracy_and_exports_its_leak() {
    let mut m = Mnist::load(&bundled_dir()).unwrap();
    m.train.truncate(1000);
    let r = recipe(
        2,
        "[diet]\nepochs = 3\nlr = 2e-3\nbatch = 32\nholdout = 200\nsurrogate = \"linear\"\n",
    );
    assert_eq!(r.diet.as_ref().unwrap().surrogate, SurrogateKind::Linear);
    let net = trained(&r, &m);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.ember");
    let opts = quiet_options();
    let rep = diet::finish(&net, &m, &path, &opts, None).unwrap();
    let d = &rep.diet;
    let h = &d.fine_tune.history;
    eprintln!(
        "converted float {:.3} int {:.3}; DIET float {:.3} int {:.3}, agreement {:.3}; held-out {:?}; layers {:?}",
        d.converted_float_accuracy,
        d.converted_int_accuracy,
        rep.base.snn_float_accuracy,
        rep.base.snn_int.accuracy,
        rep.base.float_int_agreement,
        h.iter().map(|e| e.heldout_accuracy).collect::<Vec<_>>(),
        d.layers
    );
    assert_eq!((d.train_samples, d.heldout_samples, h.len()), (800, 200, 4));
    assert!(h[1..].iter().all(|e| e.loss > 0.0 && e.loss.is_finite()));
    let best = h.iter().map(|e| e.heldout_accuracy).fold(0.0, f64::max);
    assert_eq!(h[d.fine_tune.best_epoch].heldout_accuracy, best);
    assert!(best > h[0].heldout_accuracy, "no held-out gain: {h:?}");
    assert!(
        rep.base.snn_float_accuracy >= d.converted_float_accuracy - 0.01,
        "fine-tuning lost accuracy: {} -> {}",
        d.converted_float_accuracy,
        rep.base.snn_float_accuracy
    );
    assert!(
        rep.base.float_int_agreement >= 0.95,
        "float/int agreement {}",
        rep.base.float_int_agreement
    );
    // The learned leak is in [0, 1] and is what the file holds.
    let bytes = std::fs::read(&path).unwrap();
    let model = ember_runtime::Model::from_bytes(&bytes).unwrap();
    let l = &d.layers[0];
    assert!((0.0..=1.0).contains(&l.leak), "leak {}", l.leak);
    match &model.desc().layers[0] {
        Layer::Dense(x) => assert_eq!(x.neuron.lif().unwrap().leak.to_bits(), l.leak_bits),
        x => panic!("{x:?}"),
    }
    for e in h {
        assert!(
            e.leaks.iter().all(|l| (0.0..=1.0).contains(l)),
            "{:?}",
            e.leaks
        );
        assert!(e.thresholds.iter().all(|&t| t > 0.0));
    }
}

/// The spike-rate regulariser lowers the spike rate of the fine-tuned network.
#[test]
fn spike_penalty_lowers_the_spike_rate() {
    let mut m = Mnist::load(&bundled_dir()).unwrap();
    m.train.truncate(1000);
    let base = "[diet]\nepochs = 3\nlr = 2e-3\nbatch = 32\nholdout = 200\n";
    let r = recipe(2, base);
    let net = trained(&r, &m);
    let opts = quiet_options();
    let dir = tempfile::tempdir().unwrap();
    let mut rates = Vec::new();
    for penalty in [0.0, 2.0] {
        let spec: DietSpec =
            toml::from_str(&format!("{}spike_penalty = {penalty}\n", &base[7..])).unwrap();
        let rep = diet::finish(&net, &m, &dir.path().join("d.ember"), &opts, Some(&spec)).unwrap();
        let h = &rep.diet.fine_tune.history;
        // The last epoch's training spike rate, whatever epoch was kept.
        rates.push(h.last().unwrap().spike_rates[0]);
    }
    eprintln!("spike rate without / with the penalty: {rates:?}");
    assert!(rates[1] < 0.8 * rates[0], "{rates:?}");
}

/// The STDB surrogate trains too (hybrid conversion + STDB), and the [diet] defaults parse.
#[test]
fn stdb_fine_tune_runs_and_defaults_parse() {
    let d = DietSpec::default();
    assert_eq!(
        (d.epochs, d.surrogate, d.alpha, d.beta),
        (3, SurrogateKind::Linear, 0.3, 0.01)
    );
    let e = Recipe::parse(
        "name = \"x\"\ntimesteps = 4\ninput = [28, 28, 1]\n[[layers]]\nkind = \"dense\"\noutputs = 10\n[diet]\nlr = -1\n",
        Path::new("bad.toml"),
    );
    assert!(e
        .unwrap_err()
        .to_string()
        .contains("diet: epochs, batch and lr must be positive"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes");
    let r = Recipe::load(&root.join("ref-mlp-diet.toml")).unwrap();
    assert!(r.diet.is_some());

    let mut m = Mnist::load(&bundled_dir()).unwrap();
    m.train.truncate(600);
    let r = recipe(
        3,
        "[diet]\nepochs = 1\nlr = 1e-3\nholdout = 100\nsurrogate = \"stdb\"\n",
    );
    let net = trained(&r, &m);
    m.test.truncate(100);
    let dir = tempfile::tempdir().unwrap();
    let opts = quiet_options();
    let rep = diet::finish(&net, &m, &dir.path().join("s.ember"), &opts, None).unwrap();
    let h = &rep.diet.fine_tune.history;
    assert!(matches!(rep.diet.surrogate, Surrogate::Stdb { .. }));
    assert!(h[1].loss.is_finite() && h[1].loss > 0.0);
    assert!(rep.base.float_int_agreement >= 0.9);
}

/// The shipped DIET models keep their accuracy on the bundled test images (measured with
/// `ember eval --model models/ref-mlp-diet-tT.ember` on all 500: T=1 98.00%, T=2 98.40%,
/// T=4 99.00%; `models/ref-conv-diet-t{1,2,3,4,5}.ember --samples 100`: 100%), and the REF-MLP T=2 one
/// carries its learned leak (32741 / 32768).
#[test]
fn shipped_diet_models_run_on_the_bundled_test_set() {
    let m = Mnist::load(&bundled_dir()).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    for t in [1, 2, 3, 4, 5] {
        let conv = root.join(format!("ref-conv-diet-t{t}.ember"));
        let bytes = std::fs::read(&conv).unwrap();
        let e = eval::evaluate(&bytes, &conv, &m.test, 100, None, false).unwrap();
        assert!(e.accuracy >= 0.98, "{}: {}", conv.display(), e.accuracy);
    }
    for (t, min) in [(1u16, 0.975), (2, 0.98), (4, 0.985)] {
        let path = root.join(format!("ref-mlp-diet-t{t}.ember"));
        let bytes = std::fs::read(&path).unwrap();
        let e = eval::evaluate(&bytes, &path, &m.test, 500, None, false).unwrap();
        assert_eq!(e.timesteps, t);
        assert!(e.accuracy >= min, "{}: {}", path.display(), e.accuracy);
        if t == 2 {
            let model = ember_runtime::Model::from_bytes(&bytes).unwrap();
            match &model.desc().layers[0] {
                Layer::Dense(d) => assert_eq!(d.neuron.lif().unwrap().leak.to_bits(), 32741),
                l => panic!("{l:?}"),
            }
        }
    }
}
