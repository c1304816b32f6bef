//! Multimodal STDP on the bundled data (MNIST subset + one FSDD speaker): the three stages
//! run, the fused prediction beats chance and each modality's noise sweep is reported and
//! plotted, --resume picks the checkpoint up, and bad audio folders are typed errors.

use ember_trainer::data::fsdd::{FeatureConfig, Kind};
use ember_trainer::data::mnist::load_split;
use ember_trainer::data::{bundled_fsdd, bundled_mnist};
use ember_trainer::multimodal::{self, CrossConfig, MultimodalOptions};
use ember_trainer::stdp::StdpConfig;
use std::path::Path;

fn options(out: &Path) -> MultimodalOptions {
    let image = StdpConfig {
        neurons: 40,
        timesteps: 32,
        eta: 0.03,
        threshold: 40.0,
        theta_plus: 0.3,
        ..Default::default()
    };
    let audio = StdpConfig {
        inputs: 32 * 32,
        norm: image.norm * 1024.0 / 784.0,
        seed: 2,
        ..image.clone()
    };
    MultimodalOptions {
        image_data: bundled_mnist().unwrap(),
        audio_data: bundled_fsdd().unwrap(),
        out: out.to_path_buf(),
        image,
        audio,
        cross: CrossConfig::default(),
        image_epochs: 1,
        image_train_samples: None,
        audio_epochs: 20,
        pairs: 400,
        label_samples: 2000,
        pairs_per_recording: 3,
        audio_keep: 0.2,
        audio_augment_snr: vec![],
        audio_features: FeatureConfig {
            frames: 32,
            kind: Kind::LogMel { mels: 32 },
        },
        image_noise: vec![0.0, 128.0],
        audio_snr: vec![20.0, -10.0],
        resume: false,
        quiet: true,
    }
}

#[test]
fn trains_fuses_reports_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let r = multimodal::run(&opts).unwrap();
    // 30 test recordings (indices 0-2 of ten digits) x 3 images each.
    assert_eq!(r.test_pairs, 90);
    for (what, acc) in [
        ("image", r.clean.image),
        ("audio", r.clean.audio),
        ("multimodal", r.clean.multimodal),
    ] {
        assert!(acc > 0.3, "{what} accuracy {acc} is near chance (0.1)");
    }
    assert!(
        r.clean.multimodal >= r.clean.image.min(r.clean.audio),
        "fusion {} below both modalities ({}, {})",
        r.clean.multimodal,
        r.clean.image,
        r.clean.audio
    );
    assert_eq!(r.image_noise.len(), 2);
    assert_eq!(r.audio_noise.len(), 2);
    // Heavy noise hurts the noisy modality alone.
    assert!(r.image_noise[1].image < r.image_noise[0].image);
    assert!(
        r.cross_mean_weight > 0.0,
        "the cross-modal synapses learned nothing"
    );
    for file in [
        "checkpoint.json",
        "report.json",
        "robustness-image-noise.png",
        "robustness-audio-noise.png",
        "multimodal.ember",
    ] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }

    // The exported model, run by the integer runtime on the paired test set it wrote: the
    // same predictor as the trainer's (weights rounded to integers, one spike generator for
    // both inputs instead of one each), so close to its accuracy.
    let e = r.runtime.as_ref().expect("exported with cross gain 0");
    assert_eq!(e.samples, 90);
    assert!(
        (e.accuracy - r.clean.multimodal).abs() <= 0.12,
        "runtime {} vs trainer {}",
        e.accuracy,
        r.clean.multimodal
    );
    let pairs = load_split(
        &dir.path().join("paired-test"),
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )
    .unwrap();
    assert_eq!(
        (pairs.len(), pairs.rows, pairs.cols),
        (90, 1, 784 + 32 * 32)
    );
    let model = std::fs::read(dir.path().join("multimodal.ember")).unwrap();
    let text = ember_trainer::inspect::describe(&model).unwrap();
    assert!(text.contains("within groups of 40"), "{text}");
    assert!(
        text.contains("fused by evidence, pseudo-counts per group"),
        "{text}"
    );

    // Resuming a finished run trains nothing more and measures the same.
    let again = multimodal::run(&MultimodalOptions {
        resume: true,
        ..opts.clone()
    })
    .unwrap();
    assert_eq!(again.clean.multimodal, r.clean.multimodal);
    assert_eq!(again.clean.image, r.clean.image);
    assert_eq!(again.audio_noise[1].audio, r.audio_noise[1].audio);
    assert_eq!(again.cross_mean_weight, r.cross_mean_weight);
    assert_eq!(again.runtime.unwrap().accuracy, e.accuracy);

    // With cross-modal current at inference the runtime model (which has none) would not be
    // the network measured: no export.
    let coupled = multimodal::run(&MultimodalOptions {
        resume: true,
        audio_snr: vec![],
        image_noise: vec![],
        cross: CrossConfig {
            gain: 10.0,
            ..opts.cross.clone()
        },
        ..opts.clone()
    })
    .unwrap();
    assert!(coupled.runtime.is_none());
}

#[test]
fn audio_folders_without_a_split_or_recordings_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let audio = dir.path().join("fsdd");
    std::fs::create_dir_all(audio.join("recordings")).unwrap();
    // Training recordings only: no test split.
    let src = bundled_fsdd().unwrap().join("recordings");
    for name in ["3_jackson_5.wav", "4_jackson_6.wav"] {
        std::fs::copy(src.join(name), audio.join("recordings").join(name)).unwrap();
    }
    let opts = MultimodalOptions {
        audio_data: audio.clone(),
        ..options(&dir.path().join("out"))
    };
    let err = multimodal::run(&opts).unwrap_err().to_string();
    assert!(err.contains(&audio.display().to_string()), "{err}");
    assert!(err.contains("test"), "{err}");

    let missing = dir.path().join("nowhere");
    let err = multimodal::run(&MultimodalOptions {
        audio_data: missing.clone(),
        ..options(&dir.path().join("out"))
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("nowhere"), "{err}");
}
