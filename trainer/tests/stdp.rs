//! STDP: learning works on the bundled subset, pruning and quantization do what they say, the
//! exported model runs in the runtime and agrees with the float network, and --resume
//! continues where a run stopped.

use ember_trainer::data::{bundled_mnist, mnist::Mnist};
use ember_trainer::stdp::{self, Network, StdpConfig, StdpOptions};
use indicatif::ProgressBar;

fn small() -> StdpConfig {
    StdpConfig {
        neurons: 30,
        timesteps: 32,
        eta: 0.03,
        threshold: 40.0,
        theta_plus: 0.3,
        ..Default::default()
    }
}

#[test]
fn learns_above_chance_and_the_export_agrees() {
    let data = Mnist::load(&bundled_mnist().unwrap()).unwrap();
    let mut test = data.test.clone();
    test.truncate(200);
    let mut net = Network::new(small());
    let bar = ProgressBar::hidden();
    stdp::train_epoch(&mut net, &data.train, data.train.len(), &bar);
    stdp::label_neurons(&mut net, &data.train, &bar);
    let float = stdp::evaluate(&mut net, &test, &bar);
    assert!(float.accuracy > 0.45, "float accuracy {}", float.accuracy);

    let bytes = stdp::export(&net, "t").unwrap();
    let path = std::path::Path::new("t.ember");
    let rt = ember_trainer::eval::evaluate(&bytes, path, &test, test.len(), None, false).unwrap();
    let float_classes = stdp::classify(&mut net, &test);
    let same = float_classes
        .iter()
        .zip(&rt.classes)
        .filter(|(a, b)| **a as u16 == **b)
        .count();
    assert!(
        same as f64 / test.len() as f64 > 0.9,
        "float/runtime agreement {same}/{}",
        test.len()
    );
    assert!(
        (rt.accuracy - float.accuracy).abs() < 0.05,
        "runtime {} float {}",
        rt.accuracy,
        float.accuracy
    );
}

#[test]
fn pruning_and_quantization_are_exact() {
    let mut net = Network::new(small());
    net.prune_and_quantize(0.6, 8);
    let m = net.cfg.inputs;
    for j in 0..net.cfg.neurons {
        let kept = net.alive[j * m..(j + 1) * m].iter().filter(|a| **a).count();
        assert_eq!(kept, m - (0.6 * m as f32) as usize);
    }
    let step = 1.0 / 7.0;
    assert!(
        net.w
            .iter()
            .all(|w| ((w / step) - (w / step).round()).abs() < 1e-4),
        "weights on 8 levels"
    );
    assert!(
        net.w.iter().zip(&net.alive).all(|(w, a)| *a || *w == 0.0),
        "pruned weights are zero"
    );
    // Pruned synapses stay pruned after more learning.
    let data = Mnist::load(&bundled_mnist().unwrap()).unwrap();
    let mut few = data.train.clone();
    few.truncate(50);
    let alive = net.alive.clone();
    stdp::train_epoch(&mut net, &few, 50, &ProgressBar::hidden());
    assert_eq!(net.alive, alive);
    assert!(net.w.iter().zip(&net.alive).all(|(w, a)| *a || *w == 0.0));
}

#[test]
fn resume_continues_an_interrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let opts = |train: usize, resume: bool| StdpOptions {
        data: bundled_mnist().unwrap(),
        out: dir.path().to_path_buf(),
        cfg: StdpConfig {
            neurons: 10,
            ..small()
        },
        epochs: 1,
        train_samples: Some(train),
        label_samples: 100,
        test_samples: Some(50),
        resume,
        quiet: true,
    };
    // A run over 100 images, then a resumed run asked for 2 epochs of them: only the second
    // epoch is trained again.
    let first = stdp::run(&opts(100, false)).unwrap();
    assert_eq!(first.train_images, 100);
    let second = stdp::run(&StdpOptions {
        epochs: 2,
        ..opts(100, true)
    })
    .unwrap();
    assert_eq!(second.train_images, 200);
    assert!(dir.path().join("stdp.ember").exists() && dir.path().join("report.json").exists());
    assert!(ember_runtime::Model::from_bytes(
        &std::fs::read(dir.path().join("stdp.ember")).unwrap()
    )
    .is_ok());
}

/// The probe behind `ember stdp`'s running accuracy sees the network every
/// `stdp::PROBE_EVERY` training images and cannot change what it learns.
#[test]
fn the_training_probe_sees_the_network_and_changes_nothing() {
    let data = Mnist::load(&bundled_mnist().unwrap()).unwrap();
    let cfg = StdpConfig {
        neurons: 8,
        timesteps: 8,
        ..small()
    };
    let total = stdp::PROBE_EVERY + 7;
    let bar = ProgressBar::hidden();
    let (mut probed, mut plain) = (Network::new(cfg.clone()), Network::new(cfg));
    let mut seen = Vec::new();
    while probed.seen < total {
        stdp::train_rest_of_epoch_with(&mut probed, &data.train, total, &bar, &mut |n| {
            seen.push(n.seen);
            // What the running accuracy does, on a copy.
            let mut copy = n.clone();
            stdp::label_neurons(&mut copy, &data.test, &ProgressBar::hidden());
        });
    }
    while plain.seen < total {
        stdp::train_rest_of_epoch(&mut plain, &data.train, total, &bar);
    }
    assert_eq!(seen, vec![stdp::PROBE_EVERY]);
    assert_eq!(probed.w, plain.w);
    assert_eq!(probed.theta, plain.theta);
}
