//! Pruning and quantization-aware training ([compress]): the selection rules, the schedule,
//! fake quantization and its gradient, masks through checkpoints and resume, and the export
//! of pruned int4 / 16-bit-membrane models that the integer runtime runs like the float SNN.

use std::path::Path;

use candle_core::{Device, Tensor, Var};
use ember_runtime::format::{Layer, Neuron, Precision, Width};
use ember_trainer::compress::{self, CompressSpec, PruneSchedule, Scope};
use ember_trainer::data::mnist::Mnist;
use ember_trainer::net::Net;
use ember_trainer::recipe::Recipe;
use ember_trainer::{convert, eval, export, inspect, quantize, snn, train};

fn bundled() -> Mnist {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist-small");
    Mnist::load(&dir).expect("bundled subset")
}

fn recipe(compress: &str) -> Recipe {
    let text = format!(
        "name = \"c\"\ntimesteps = 8\ninput = [28, 28, 1]\n\
         [[layers]]\nkind = \"dense\"\noutputs = 32\n[[layers]]\nkind = \"dense\"\noutputs = 10\n\
         [train]\nepochs = 3\nbatch = 50\nlr = 2e-3\nseed = 7\n\
         [convert]\npercentile = 99.9\ncalibration_samples = 500\n\
         [compress]\n{compress}\n"
    );
    Recipe::parse(&text, Path::new("compress.toml")).expect("recipe")
}

fn weights(net: &Net) -> Vec<Vec<f32>> {
    net.params
        .iter()
        .flatten()
        .map(|p| {
            p.weight
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        })
        .collect()
}

fn zero_fraction(w: &[f32]) -> f64 {
    w.iter().filter(|&&x| x == 0.0).count() as f64 / w.len() as f64
}

#[test]
fn selection_keeps_the_largest_per_layer_globally_or_per_row() {
    // Scores (magnitudes) of two outputs x three inputs (candle layout: output-major).
    let a = [0.9f32, 0.1, 0.5, 0.2, 0.8, 0.3];
    let b = [0.05f32, 0.04];
    let keep = compress::select(&[(&a, 2), (&b, 1)], 0.5, Scope::Layer);
    assert_eq!(keep[0], [true, false, true, false, true, false]);
    assert_eq!(keep[1], [true, false]);
    // Globally the small layer loses everything first.
    let keep = compress::select(&[(&a, 2), (&b, 1)], 0.5, Scope::Global);
    assert_eq!(keep[0], [true, false, true, false, true, true]);
    assert_eq!(keep[1], [false, false]);
    // Per row (one input across both outputs): every row keeps exactly one weight.
    let keep = compress::select(&[(&a, 2)], 0.5, Scope::Row);
    assert_eq!(keep[0], [true, false, true, false, true, false]);
    for r in 0..3 {
        assert_eq!(keep[0][r] as u8 + keep[0][3 + r] as u8, 1, "row {r}");
    }
    let keep = compress::select(&[(&[0.1, 0.9, 0.3, 0.2], 2)], 0.5, Scope::Row);
    assert_eq!(keep[0], [false, true, true, false]);
}

#[test]
fn cubic_schedule_rises_from_start_to_end() {
    let spec = CompressSpec {
        sparsity: 0.8,
        start: 0.2,
        end: 0.6,
        ..Default::default()
    };
    assert_eq!(spec.target(10, 100), 0.0);
    assert_eq!(spec.target(20, 100), 0.0);
    let mid = spec.target(40, 100);
    assert!((mid - 0.8 * (1.0 - 0.125)).abs() < 1e-9, "{mid}");
    assert_eq!(spec.target(60, 100), 0.8);
    assert_eq!(spec.target(100, 100), 0.8);
    let mut last = 0.0;
    for s in 0..=100 {
        let t = spec.target(s, 100);
        assert!(t >= last, "monotone");
        last = t;
    }
    let once = CompressSpec {
        schedule: PruneSchedule::Oneshot,
        ..spec
    };
    assert_eq!(once.target(19, 100), 0.0);
    assert_eq!(once.target(20, 100), 0.8);
}

#[test]
fn fake_quantization_is_on_the_grid_with_a_straight_through_gradient() {
    let w = Var::from_vec(
        vec![0.7f32, -0.35, 0.1, 0.02, -0.7, 0.3],
        (2, 3),
        &Device::Cpu,
    )
    .unwrap();
    for (bits, qmax) in [(8u8, 127.0f32), (4, 7.0)] {
        let q = compress::fake_quant(w.as_tensor(), bits, false).unwrap();
        let v: Vec<f32> = q.flatten_all().unwrap().to_vec1().unwrap();
        for x in &v {
            let k = x / 0.7 * qmax;
            assert!(
                (k - k.round()).abs() < 1e-4,
                "{x} is not on the {bits}-bit grid"
            );
        }
        // The straight-through gradient of sum(q(w) * c) is c.
        let c = Tensor::new(&[[1f32, 2., 3.], [4., 5., 6.]], &Device::Cpu).unwrap();
        let g = (q * &c).unwrap().sum_all().unwrap().backward().unwrap();
        let g: Vec<f32> = g
            .get(w.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(g, [1., 2., 3., 4., 5., 6.]);
    }
    // Per channel: the second row has its own scale.
    let q = compress::fake_quant(w.as_tensor(), 4, true).unwrap();
    let v: Vec<f32> = q.flatten_all().unwrap().to_vec1().unwrap();
    assert!(
        (v[3] - 0.0).abs() < 1e-6 && (v[5] - 0.3).abs() < 1e-6,
        "{v:?}"
    );
}

#[test]
fn bad_compress_sections_are_refused_with_the_field_named() {
    for (body, needle) in [
        ("sparsity = 1.0", "sparsity"),
        ("bits = 3", "bits"),
        ("membrane = 8", "membrane"),
        ("sparsity = 0.5\nstart = 0.5\nend = 0.4", "end"),
        ("exclude = [5]", "layer 5"),
        ("sparsty = 0.5", "sparsty"),
    ] {
        let text = format!(
            "name = \"c\"\ntimesteps = 4\ninput = [28, 28, 1]\n\
             [[layers]]\nkind = \"dense\"\noutputs = 10\n[compress]\n{body}\n"
        );
        let err = Recipe::parse(&text, Path::new("bad.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.toml") && err.contains(needle), "{err}");
    }
}

#[test]
fn pruning_reaches_its_target_and_survives_an_interrupted_run() {
    let mut m = bundled();
    m.train.truncate(400);
    let r = recipe("sparsity = 0.75\nscope = \"row\"\nend = 0.5\nevery = 2\nbits = 4");
    let whole = Net::init(&r).unwrap();
    train::train_with(&whole, &m.train, 3, false, None, None).unwrap();
    // Row-balanced: 32 outputs keep 8 per row (0.75), 10 keep round(2.5) = 2 (0.8).
    let z: Vec<f64> = weights(&whole).iter().map(|w| zero_fraction(w)).collect();
    assert_eq!(z, [0.75, 0.8]);
    // Row-balanced: every input of the first layer keeps the same number of outputs.
    let w0 = &weights(&whole)[0];
    for i in 0..784 {
        let kept = (0..32).filter(|o| w0[o * 784 + i] != 0.0).count();
        assert_eq!(kept, 8, "input {i}");
    }
    let dir = tempfile::tempdir().unwrap();
    let ck = |resume, stop_after| {
        Some(train::Checkpoints {
            dir: dir.path(),
            resume,
            stop_after,
        })
    };
    let first = Net::init(&r).unwrap();
    train::train_with(&first, &m.train, 3, false, ck(false, Some(1)), None).unwrap();
    assert!(dir.path().join(compress::MASKS).is_file());
    let resumed = Net::init(&r).unwrap();
    train::train_with(&resumed, &m.train, 3, false, ck(true, None), None).unwrap();
    assert_eq!(weights(&resumed), weights(&whole), "resume = uninterrupted");
}

#[test]
fn pruned_int4_model_with_16_bit_membranes_runs_like_the_float_snn() {
    // Unstructured pruning is stored CSR or padded ELL; row-balanced pruning as ELL with no
    // padding, at least 3x smaller than dense int8 (4-bit values, 8- and 4-bit indices).
    for (scope, shrink) in [("layer", 2), ("row", 3)] {
        pruned_int4(scope, shrink);
    }
}

fn pruned_int4(scope: &str, shrink: usize) {
    let mut m = bundled();
    m.train.truncate(1000);
    let r = recipe(&format!(
        "sparsity = 0.8\nscope = \"{scope}\"\nend = 0.6\nevery = 5\nbits = 4\nmembrane = 16"
    ));
    let net = Net::init(&r).unwrap();
    train::train(&net, &m.train, r.train.epochs, false).unwrap();
    let s = convert::convert(&net, &m.train).unwrap();
    let q = quantize::quantize(&s).unwrap();
    let bytes = export::encode(&q).unwrap();
    let model = ember_runtime::Model::from_bytes(&bytes).unwrap();
    let mut weight_bytes = 0;
    for layer in &model.desc().layers {
        let Layer::Dense(d) = layer else {
            panic!("dense layers only")
        };
        assert_eq!(d.weights.precision, Precision::I4);
        weight_bytes += inspect::blob_len(&d.weights);
        match d.neuron {
            Neuron::Lif(l) => assert_eq!(l.membrane, Width::I16),
            Neuron::Readout(r) => assert_eq!(r.membrane, Width::I32),
            other => panic!("a LIF or readout neuron expected, not {other:?}"),
        }
    }
    let dense_int8 = 784 * 32 + 32 * 10;
    eprintln!("{scope}: weights {weight_bytes} B (dense int8 {dense_int8} B)");
    assert!(
        weight_bytes * shrink < dense_int8,
        "{scope}: {weight_bytes} B"
    );
    // Every stored weight is on the 4-bit grid, and thresholds fit 16 bits with headroom.
    for l in &q.layers {
        if let quantize::QLayer::Synapse(qs) = l {
            assert!(qs.weights.iter().all(|w| (-7..=7).contains(w)));
            let zeros = qs.weights.iter().filter(|&&w| w == 0).count();
            assert!(zeros as f64 >= 0.79 * qs.weights.len() as f64);
            for t in qs.threshold.iter().flatten() {
                assert!(*t <= 16383, "threshold {t}");
            }
        }
    }
    let n = 300;
    let sim = snn::simulate(&s, &m.test, n, s.timesteps).unwrap();
    let int = eval::evaluate(&bytes, Path::new("mem"), &m.test, n, None, false).unwrap();
    let agree = eval::agreement(&sim.classes, &int.classes);
    eprintln!(
        "{scope}: pruned int4: integer {:.3}, float/int agreement {agree:.3}",
        int.accuracy
    );
    assert!(int.accuracy > 0.6, "integer accuracy {}", int.accuracy);
    // int4 thresholds and biases are rounded on a coarse unit, and 16-bit membranes coarsen
    // the 784-input layer's grid further (its threshold is capped at 16383): some samples
    // with close class scores flip. With int8 and 32-bit membranes agreement is ~99.7%.
    assert!(agree > 0.8, "float/int agreement {agree}");
}
