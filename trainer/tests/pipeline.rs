//! End-to-end stages on the bundled subset with tiny networks: train, convert, quantize,
//! export, and check the integer runtime against the float SNN simulation.

use std::path::Path;

use ember_trainer::convert::convert;
use ember_trainer::data::mnist::Mnist;
use ember_trainer::net::Net;
use ember_trainer::recipe::Recipe;
use ember_trainer::{eval, export, inspect, quantize, snn, train};

fn bundled() -> Mnist {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist-small");
    Mnist::load(&dir).expect("bundled subset")
}

fn recipe(layers: &str, samples: usize) -> Recipe {
    let text = format!(
        "name = \"t\"\ntimesteps = 8\ninput = [28, 28, 1]\n{layers}\n\
         [train]\nepochs = 2\nbatch = 50\nlr = 2e-3\nseed = 7\n\
         [convert]\npercentile = 99.9\ncalibration_samples = {samples}\n"
    );
    Recipe::parse(&text, Path::new("test.toml")).expect("recipe")
}

const MLP: &str =
    "[[layers]]\nkind = \"dense\"\noutputs = 32\n[[layers]]\nkind = \"dense\"\noutputs = 10\n";

/// Float SNN and integer runtime predictions on the first `n` test samples.
fn both(net: &Net, m: &Mnist, n: usize) -> (Vec<u32>, eval::RuntimeEval, Vec<u8>) {
    let s = convert(net, &m.train).expect("convert");
    let sim = snn::simulate(&s, &m.test, n, s.timesteps).expect("simulate");
    let q = quantize::quantize(&s).expect("quantize");
    let bytes = export::encode(&q).expect("encode");
    let e = eval::evaluate(&bytes, Path::new("mem"), &m.test, n, None, false).expect("evaluate");
    (sim.classes, e, bytes)
}

use eval::agreement;

#[test]
fn trained_mlp_converts_and_runs_on_the_integer_runtime() {
    let mut m = bundled();
    m.train.truncate(1000);
    let r = recipe(MLP, 500);
    let net = Net::init(&r).unwrap();
    train::train(&net, &m.train, r.train.epochs, false).unwrap();
    let ann = train::accuracy(&net, &m.test, 200).unwrap();
    let (float, int, bytes) = both(&net, &m, 200);
    let agree = agreement(&float, &int.classes);
    eprintln!(
        "ANN {ann:.3}, integer SNN {:.3}, float/int agreement {agree:.3}",
        int.accuracy
    );
    assert!(
        int.accuracy > 0.6,
        "integer SNN accuracy {} (chance 0.1)",
        int.accuracy
    );
    assert!(agree > 0.9, "float and integer SNN agree on {agree}");
    assert!(int.sops_per_inference > 0.0 && int.macs_per_inference > 0.0);
    assert_eq!(int.layers.len(), 1);

    // Export / inspect round trip.
    let text = inspect::describe(&bytes).unwrap();
    assert!(
        text.contains("model \"t\": 8 timesteps, input 28x28x1"),
        "{text}"
    );
    assert!(
        text.contains("[0] dense   28x28x1 -> 32  weights I8 dense, 25088 B  LIF threshold"),
        "{text}"
    );
    assert!(
        text.contains("[1] dense   1x1x32 -> 10  weights I8 dense, 320 B  readout"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.ember");
    let written = export::write(
        &quantize::quantize(&convert(&net, &m.train).unwrap()).unwrap(),
        &path,
    )
    .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), written);
    assert_eq!(written, bytes, "export is deterministic");
}

/// Pearson correlation of two equally long series.
fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// An untrained conv net exercises the conv and dense-after-pool weight permutations: a
/// wrong layout would make the runtime's class scores differ from the float simulation's.
#[test]
fn conv_layouts_match_the_float_simulation() {
    let m = bundled();
    let layers = "[[layers]]\nkind = \"conv\"\nout_channels = 4\nkernel = 3\npadding = 1\n\
                  [[layers]]\nkind = \"avgpool\"\nkernel = 2\n\
                  [[layers]]\nkind = \"conv\"\nout_channels = 6\nkernel = 3\npadding = 1\nbias = true\n\
                  [[layers]]\nkind = \"avgpool\"\nkernel = 2\n\
                  [[layers]]\nkind = \"dense\"\noutputs = 10\n";
    let r = recipe(layers, 100);
    let net = Net::init(&r).unwrap();
    let n = 40;
    let s = convert(&net, &m.train).unwrap();
    let sim = snn::simulate(&s, &m.test, n, s.timesteps).unwrap();
    let bytes = export::encode(&quantize::quantize(&s).unwrap()).unwrap();
    let model = ember_runtime::Model::from_bytes(&bytes).unwrap();
    let mut arena = vec![0u8; model.arena_bytes() + 8];
    let mut engine = ember_runtime::Engine::new(&model, &mut arena).unwrap();
    // Scores centred per class over the samples, so constant bias terms cannot carry the match.
    let (mut f, mut q) = (vec![Vec::new(); 10], vec![Vec::new(); 10]);
    for i in 0..n {
        let out = engine.run(m.test.image(i)).unwrap();
        for c in 0..10 {
            f[c].push(sim.scores[i][c] as f64);
            q[c].push(out.readout[c] as f64);
        }
    }
    let centre = |v: &mut Vec<f64>| {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        v.iter_mut().for_each(|x| *x -= mean);
    };
    f.iter_mut().chain(q.iter_mut()).for_each(centre);
    let rho = correlation(&f.concat(), &q.concat());
    let int = eval::evaluate(&bytes, Path::new("mem"), &m.test, n, None, false).unwrap();
    eprintln!(
        "untrained conv: float/int score correlation {rho:.4}, spike rates {:?}",
        int.layers
    );
    assert!(
        rho > 0.95,
        "float and integer class scores correlate at {rho}"
    );
    assert_eq!(int.layers.len(), 2);
    assert!(int.layers.iter().all(|l| l.spike_rate > 0.0));
    let text = inspect::describe(&bytes).unwrap();
    assert!(text.contains("conv3x3 s1 p1 28x28x1 -> 28x28x4"), "{text}");
    assert!(text.contains("avgpool2 s2 14x14x6 -> 7x7x6"), "{text}");
    assert!(text.contains("dense   7x7x6 -> 10"), "{text}");
}

#[test]
fn checkpoint_round_trip_and_mismatch() {
    let r = recipe(MLP, 10);
    let net = Net::init(&r).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    net.save(&path).unwrap();
    let back = Net::load(&r, &path).unwrap();
    let w = |n: &Net| {
        n.params[0]
            .as_ref()
            .unwrap()
            .weight
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert_eq!(w(&net), w(&back));
    let other = recipe(&MLP.replace("32", "16"), 10);
    let e = Net::load(&other, &path).unwrap_err().to_string();
    assert!(
        e.contains("c.safetensors") && e.contains("layers.0.weight"),
        "{e}"
    );
}

#[test]
fn reference_recipes_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes");
    let mlp = Recipe::load(&root.join("ref-mlp.toml")).unwrap();
    assert_eq!(mlp.shapes().unwrap(), vec![[256, 1, 1], [10, 1, 1]]);
    let conv = Recipe::load(&root.join("ref-conv.toml")).unwrap();
    assert_eq!(conv.input_shape(4).unwrap(), [32, 7, 7]);
    // Every shipped recipe parses and describes a valid network.
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let r = Recipe::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!r.shapes().unwrap().is_empty());
        }
    }
    let stdb = Recipe::load(&root.join("ref-conv-stdb.toml")).unwrap();
    let d = stdb.diet.unwrap();
    assert_eq!(d.surrogate, ember_trainer::diet::SurrogateKind::Stdb);
    assert!(!d.train_leak && !d.train_threshold);
    assert_eq!(
        ember_trainer::pipeline::ann_macs(&conv).unwrap(),
        28 * 28 * 16 * 9 + 14 * 14 * 32 * 9 * 16 + 1568 * 10
    );
    let e = Recipe::parse(
        "name = \"x\"\ntimesteps = 4\ninput = [28, 28, 1]\nlayers = []\n",
        Path::new("bad.toml"),
    );
    assert!(e.unwrap_err().to_string().contains("bad.toml: no layers"));
}

/// Needs the full MNIST test set: `EMBER_DATA` (the MNIST folder or a folder holding
/// `mnist/`), else `../shared/data/mnist` beside the repository.
#[test]
fn full_mnist_test_split_loads() {
    let dir: std::path::PathBuf = match std::env::var_os("EMBER_DATA") {
        Some(d) if Path::new(&d).join("mnist").is_dir() => Path::new(&d).join("mnist"),
        Some(d) => d.into(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist"),
    };
    if !dir.is_dir() {
        eprintln!(
            "skipped: full MNIST not found at {} (set EMBER_DATA to its directory)",
            dir.display()
        );
        return;
    }
    let test = ember_trainer::data::mnist::load_split(
        &dir,
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )
    .unwrap();
    assert_eq!((test.len(), test.rows, test.cols), (10_000, 28, 28));
}

/// The shipped models keep their accuracy on the bundled test images (measured with
/// `ember eval --model models/ref-mlp.ember`: 98.80%; ref-conv: 99.00%, on all 500).
#[test]
fn shipped_models_run_on_the_bundled_test_set() {
    let m = bundled();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    for (name, n) in [("ref-mlp.ember", 500), ("ref-conv.ember", 100)] {
        let path = root.join(name);
        let bytes = std::fs::read(&path).unwrap();
        let e = eval::evaluate(&bytes, &path, &m.test, n, None, false).unwrap();
        assert!(
            e.accuracy >= 0.96,
            "{name}: {} on {n} bundled test images",
            e.accuracy
        );
    }
}

fn recipe_with(layers: &str, train: &str, convert: &str) -> Recipe {
    let text = format!(
        "name = \"t\"\ntimesteps = 8\ninput = [28, 28, 1]\n{layers}\n\
         [train]\nbatch = 50\nlr = 2e-3\nseed = 7\n{train}\n\
         [convert]\npercentile = 99.9\ncalibration_samples = 200\n{convert}\n"
    );
    Recipe::parse(&text, Path::new("test.toml")).expect("recipe")
}

fn weights(net: &Net) -> Vec<Vec<f32>> {
    net.vars()
        .iter()
        .map(|v| {
            v.as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        })
        .collect()
}

#[test]
fn an_interrupted_run_resumed_gives_the_same_weights() {
    let mut m = bundled();
    m.train.truncate(300);
    let r = recipe_with(MLP, "epochs = 3\nschedule = \"cosine\"\nshift = 2", "");
    let dir = tempfile::tempdir().unwrap();
    let ck = |resume, stop_after| {
        Some(train::Checkpoints {
            dir: dir.path(),
            resume,
            stop_after,
        })
    };
    let whole = Net::init(&r).unwrap();
    train::train_with(&whole, &m.train, 3, false, None, None).unwrap();
    // Stopped after 2 of 3 epochs, then resumed from the files in `dir`.
    let first = Net::init(&r).unwrap();
    train::train_with(&first, &m.train, 3, false, ck(false, Some(2)), None).unwrap();
    let progress = std::fs::read_to_string(dir.path().join(train::PROGRESS)).unwrap();
    assert!(progress.contains("\"epochs_done\": 2"), "{progress}");
    assert_ne!(weights(&first), weights(&whole), "stopped early");
    let resumed = Net::init(&r).unwrap();
    train::train_with(&resumed, &m.train, 3, false, ck(true, None), None).unwrap();
    assert_eq!(
        weights(&resumed),
        weights(&whole),
        "resume = uninterrupted run"
    );
    // A checkpoint from a run with other settings is refused with the file named.
    let err = train::train_with(
        &Net::init(&r).unwrap(),
        &m.train,
        5,
        false,
        ck(true, None),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("progress.json") && err.contains("3 epochs"),
        "{err}"
    );
}

#[test]
fn augmentation_shifts_with_zero_fill() {
    let img: Vec<u8> = (1..=9).collect(); // 3x3
    assert_eq!(
        train::shifted(&img, [3, 3, 1], 1, 0),
        [0, 0, 0, 1, 2, 3, 4, 5, 6]
    );
    assert_eq!(
        train::shifted(&img, [3, 3, 1], 0, -1),
        [2, 3, 0, 5, 6, 0, 8, 9, 0]
    );
    assert_eq!(train::shifted(&img, [3, 3, 1], 0, 0), img);
}

#[test]
fn per_channel_and_spiking_calibration_convert_and_agree() {
    let mut m = bundled();
    m.train.truncate(600);
    let conv = "[[layers]]\nkind = \"conv\"\nout_channels = 4\nkernel = 3\npadding = 1\n\
                [[layers]]\nkind = \"avgpool\"\nkernel = 2\n\
                [[layers]]\nkind = \"dense\"\noutputs = 10\n";
    let base = recipe_with(conv, "epochs = 1", "");
    let net = Net::init(&base).unwrap();
    train::train(&net, &m.train, 1, false).unwrap();
    let mut rates = Vec::new();
    for extra in [
        "",
        "per_channel = true",
        "method = \"spikes\"\ncalibration_timesteps = 4",
        "scale = 0.5",
    ] {
        let r = recipe_with(conv, "epochs = 1", extra);
        let net = Net {
            recipe: r.clone(),
            params: net.params.clone(),
        };
        let s = convert(&net, &m.train).unwrap();
        let q = quantize::quantize(&s).unwrap();
        let thresholds = q
            .layers
            .iter()
            .find_map(|l| match l {
                quantize::QLayer::Synapse(s) => s.threshold.clone(),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            thresholds.len(),
            if extra.starts_with("per") { 4 } else { 1 }
        );
        let (float, int, bytes) = both(&net, &m, 100);
        let agree = agreement(&float, &int.classes);
        eprintln!(
            "{extra:?}: integer {:.3}, agreement {agree:.3}",
            int.accuracy
        );
        assert!(int.accuracy > 0.5, "{extra}: accuracy {}", int.accuracy);
        assert!(agree >= 0.9, "{extra}: float/int agreement {agree}");
        assert!(ember_runtime::Model::from_bytes(&bytes).is_ok());
        rates.push(int.layers[0].spike_rate);
    }
    // Halving the thresholds fires more.
    assert!(rates[3] > rates[0] * 1.3, "{rates:?}");
}

/// Distillation (`train.distill`): a student that sees only the teacher's softened logits
/// (`distill = 1`, no label term) learns the teacher's classes; without `--init` there is no
/// teacher and `ember train` says so.
#[test]
fn distillation_learns_from_the_teacher() {
    let m = bundled();
    let r = recipe_with(MLP, "epochs = 4", "");
    let teacher = Net::init(&r).unwrap();
    train::train_with(&teacher, &m.train, 4, false, None, None).unwrap();
    let teacher_acc = train::accuracy(&teacher, &m.test, m.test.len()).unwrap();
    let kd = recipe_with(
        MLP,
        "epochs = 4\ndistill = 1.0\ndistill_temperature = 2.0",
        "",
    );
    let student = Net::init(&kd).unwrap();
    let before = train::accuracy(&student, &m.test, m.test.len()).unwrap();
    train::train_with(&student, &m.train, 4, false, None, Some(&teacher)).unwrap();
    let after = train::accuracy(&student, &m.test, m.test.len()).unwrap();
    assert!(
        teacher_acc > 0.7 && before < 0.3 && after > teacher_acc - 0.1,
        "teacher {teacher_acc}, student before {before}, after {after}"
    );
    let err = ember_trainer::pipeline::train(
        &kd,
        &ember_trainer::pipeline::Options {
            data: Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist-small"),
            epochs: Some(1),
            train_samples: Some(100),
            progress: false,
            resume: false,
            init: None,
        },
        tempfile::tempdir().unwrap().path(),
        "model.ember",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("test.toml") && err.contains("--init"), "{err}");
    let bad = Recipe::parse(
        "name = \"t\"\ntimesteps = 4\ninput = [28, 28, 1]\n[[layers]]\nkind = \"dense\"\noutputs = 10\n\
         [train]\nepochs = 1\nbatch = 8\nlr = 1e-3\nseed = 1\ndistill = 1.5\n",
        Path::new("kd.toml"),
    );
    assert!(bad.unwrap_err().to_string().contains("train.distill"));
}
