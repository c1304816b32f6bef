//! The HIL suite on the emulated boards: for each board, the repository's bundled model
//! (`models/ref-mlp.ember`, or the runtime's golden 8x8 MLP before it existed) is built into
//! the firmware once, then
//!
//! - its decoded defmt log on the first five samples must equal `tests/golden/<board>-<model>.out`
//!   (regenerate with `EMBER_BLESS=1 cargo test -p ember-hil --test qemu`; instruction counts
//!   are not in the log, so the files change only with the model, the runtime's results or
//!   the log format);
//! - on 200 MNIST test images (`data/mnist-small`) every board result must equal the host
//!   runtime's: agreement 100 %.
//!
//! Without `qemu-system-arm` the cases skip with a message, except under CI (`CI` set),
//! where they fail.

use ember_hil::{qemu, Board, Firmware, HilError, Options, Samples};
use ember_runtime::format::{Layer, Storage, Width};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// MNIST test images per board run.
const MNIST_SAMPLES: usize = 200;
/// Samples in the golden log.
const GOLDEN_SAMPLES: usize = 5;
/// Bound on one QEMU run; 200 REF-MLP inferences take about a second.
const TIMEOUT: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The model the firmware bundles by default (see firmware/app/build.rs).
fn bundled_model() -> PathBuf {
    let mlp = repo().join("models/ref-mlp.ember");
    if mlp.exists() {
        mlp
    } else {
        repo().join("runtime/tests/golden/mlp.ember")
    }
}

/// MNIST test images for a 28x28 model, the runtime's four golden inputs for the 8x8 one.
fn samples(model: &Path) -> Samples {
    if model.ends_with("mlp.ember") && !model.ends_with("ref-mlp.ember") {
        let data = std::fs::read(repo().join("runtime/tests/golden/inputs-8x8.bin")).unwrap();
        return Samples::new(64, data, None).unwrap();
    }
    Samples::mnist_test(&repo().join("data/mnist-small"), MNIST_SAMPLES).unwrap()
}

/// False (after saying why) when QEMU is missing and the run is not CI; panics under CI.
fn qemu_or_skip(case: &str) -> bool {
    if qemu::available() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{case}: CI is set and qemu-system-arm is missing: apt-get install -y qemu-system-arm"
        );
    }
    // Skipped, not passed: the HIL needs the emulator, which a developer may not have.
    eprintln!("{case}: SKIPPED: qemu-system-arm not found; install it with `apt-get install -y qemu-system-arm`");
    false
}

/// The firmware of `board` with the bundled model, built once per test run.
fn firmware(board: Board) -> &'static Firmware {
    static BUILT: [OnceLock<Firmware>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let slot = Board::ALL.iter().position(|&b| b == board).unwrap();
    BUILT[slot]
        .get_or_init(|| ember_hil::build(board, &bundled_model()).unwrap_or_else(|e| panic!("{e}")))
}

fn golden_log(board: Board, model: &Path, samples: &Samples) {
    let fw = firmware(board);
    let run =
        qemu::run(fw, &samples.first(GOLDEN_SAMPLES), TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let text = run.log.join("\n") + "\n";
    let stem = model.file_stem().unwrap().to_string_lossy();
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("golden/{}-{stem}.out", board.name()));
    if std::env::var_os("EMBER_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with EMBER_BLESS=1 cargo test -p ember-hil --test qemu",
            path.display()
        )
    });
    assert_eq!(
        text,
        expected,
        "{board}: decoded log differs from {}",
        path.display()
    );
}

fn agreement(board: Board, model: &Path, samples: &Samples) {
    let fw = firmware(board);
    let run = qemu::run(fw, samples, TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let report = ember_hil::compare(fw, model, samples, &run).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "{board}: {report:?} ({:.1} s in QEMU)",
        run.wall.as_secs_f64()
    );
    assert_eq!(
        report.agreement, 1.0,
        "{board}: {:?}",
        report.first_disagreement
    );
    assert_eq!(report.board_accuracy, report.host_accuracy);
    assert!(
        report.instructions_per_inference > 0.0 && report.flash_bytes > 0 && report.ram_bytes > 0
    );
    assert!(
        u64::from(report.stack_peak_bytes)
            <= ember_hil::Footprint::of_elf(&fw.elf)
                .unwrap()
                .stack_reserve_bytes,
        "{board}: the stack peaked at {} bytes, above the reserve",
        report.stack_peak_bytes
    );
}

fn hil(board: Board) {
    if !qemu_or_skip(board.name()) {
        return;
    }
    let model = bundled_model();
    let samples = samples(&model);
    golden_log(board, &model, &samples);
    agreement(board, &model, &samples);
}

#[test]
fn qemu_mps2_an386() {
    hil(Board::QemuMps2An386);
}

#[test]
fn qemu_lm3s6965() {
    hil(Board::QemuLm3s6965);
}

#[test]
fn qemu_mps2_an505() {
    hil(Board::QemuMps2An505);
}

#[test]
fn qemu_microbit() {
    hil(Board::QemuMicrobit);
}

/// `timesteps=N` on the firmware's command line: the shipped REF-MLP (T=4 in its file) run
/// for 7 timesteps on the board gives exactly the host runtime's results at T=7, which are
/// not its results at T=4.
#[test]
fn timesteps_override_agrees_with_the_host() {
    if !qemu_or_skip("timesteps_override_agrees_with_the_host") {
        return;
    }
    let model = repo().join("models/ref-mlp.ember");
    if bundled_model() != model {
        eprintln!("timesteps_override_agrees_with_the_host: SKIPPED: no models/ref-mlp.ember");
        return;
    }
    let samples = samples(&model).first(50);
    let fw = firmware(Board::QemuMps2An386);
    let options = Options {
        timesteps: Some(7),
        ..Options::default()
    };
    let run = qemu::run_options(fw, &samples, &options, TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let report = ember_hil::compare_with(fw, &model, &samples, &run, &options)
        .unwrap_or_else(|e| panic!("{e}"));
    println!("T=7: {report:?}");
    assert_eq!(report.timesteps, 7);
    assert_eq!(report.agreement, 1.0, "{:?}", report.first_disagreement);
    assert_eq!(report.board_accuracy, report.host_accuracy);
    assert!(run
        .log
        .iter()
        .any(|l| l.contains("timesteps 7 from the command line")));
    let at_default = ember_hil::compare(fw, &model, &samples, &run).unwrap();
    assert_eq!(at_default.timesteps, 4);
    assert!(
        at_default.agreement < 1.0,
        "the board's results at T=7 equal the host's at T=4: the override was ignored"
    );
}

/// The dense int8 ANN baseline (firmware feature `ann-baseline`) of the shipped REF-MLP and
/// REF-CONV on qemu-mps2-an386: every result (class, scores, non-zero activations per layer,
/// MACs) equals the host's run of the same `ann.rs`, every MAC of the network is executed
/// whatever the input, and the accuracy is that of a working classifier.
#[test]
fn ann_baseline_on_qemu_mps2_an386() {
    if !qemu_or_skip("ann_baseline_on_qemu_mps2_an386") {
        return;
    }
    // (model, samples, MACs: dense 784x256 + 256x10; conv taps inside the image x 16,
    // then x 16 x 32, then dense 1568x10)
    for (name, n, macs) in [("ref-mlp", 100, 203_264.0), ("ref-conv", 20, 942_464.0)] {
        let model = repo().join(format!("models/{name}.ember"));
        if !model.exists() {
            eprintln!("ann_baseline: SKIPPED {name}: no {}", model.display());
            continue;
        }
        let samples = Samples::mnist_test(&repo().join("data/mnist-small"), n).unwrap();
        let options = Options {
            ann_baseline: true,
            ..Options::default()
        };
        let report = ember_hil::run_with(Board::QemuMps2An386, &model, &samples, &options, TIMEOUT)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        println!("{name} ANN baseline: {report:?}");
        assert_eq!(report.mode, "ann-baseline");
        assert_eq!(
            report.agreement, 1.0,
            "{name}: {:?}",
            report.first_disagreement
        );
        assert_eq!(report.board_accuracy, report.host_accuracy);
        assert!(report.board_accuracy.unwrap() >= 0.9, "{name}: {report:?}");
        assert_eq!(report.macs_per_inference, macs, "{name}");
        assert_eq!(report.sops_per_inference, 0.0);
        assert!(
            report.instructions_per_inference > macs,
            "{name}: {report:?}"
        );
    }
}

/// A bad option on the firmware's command line is refused with the reason.
#[test]
fn bad_timesteps_argument_is_refused() {
    if !qemu_or_skip("bad_timesteps_argument_is_refused") {
        return;
    }
    let samples = samples(&bundled_model()).first(1);
    match qemu::run_with(
        firmware(Board::QemuMps2An386),
        &samples,
        Some("timesteps=0"),
        TIMEOUT,
    ) {
        Err(HilError::Firmware {
            status: 1, message, ..
        }) => assert!(
            message.starts_with("timesteps argument (1 to 65535) failed: timesteps=0"),
            "{message}"
        ),
        other => panic!("expected a firmware error, got {other:?}"),
    }
}

/// A samples file that is not whole samples: the firmware logs why and exits non-zero.
#[test]
fn firmware_error_reaches_the_host() {
    if !qemu_or_skip("firmware_error_reaches_the_host") {
        return;
    }
    let odd = Samples::new(1, vec![0; 5], None).unwrap();
    match qemu::run(firmware(Board::QemuMps2An386), &odd, TIMEOUT) {
        Err(HilError::Firmware {
            status: 1, message, ..
        }) => {
            assert!(
                message
                    .starts_with("samples file has 5 bytes, not a multiple of the model's input"),
                "{message}"
            )
        }
        other => panic!("expected a firmware error, got {other:?}"),
    }
}

/// A run that cannot finish in time is killed and reported as such.
#[test]
fn hung_run_is_killed() {
    if !qemu_or_skip("hung_run_is_killed") {
        return;
    }
    let samples = samples(&bundled_model());
    match qemu::run(
        firmware(Board::QemuMps2An386),
        &samples,
        Duration::from_millis(1),
    ) {
        Err(e @ HilError::Timeout { .. }) => {
            assert!(e.to_string().contains("did not finish within 1ms"), "{e}")
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

/// A model whose arena cannot fit the micro:bit's 16 KiB is refused before any build, with
/// the sizes in the sentence. Needs no QEMU.
#[test]
fn model_too_big_is_refused_with_sizes() {
    use ember_runtime::format::*;
    let hidden = vec![1u8; 64 * 2000];
    let out = vec![1u8; 2000 * 2];
    let lif = Neuron::Lif(Lif {
        threshold: Channelwise::Uniform(100),
        bias: Channelwise::Uniform(0),
        leak: Leak::NONE,
        reset: Reset::Subtract,
        membrane: Width::I32,
    });
    let readout = Neuron::Readout(Readout {
        bias: Channelwise::Uniform(0),
        leak: Leak::NONE,
        membrane: Width::I32,
    });
    let dense = |outputs, values, neuron| {
        Layer::Dense(Dense {
            outputs,
            weights: Weights {
                precision: Precision::I8,
                storage: Storage::Dense { values },
            },
            neuron,
        })
    };
    let mut layers = heapless::Vec::new();
    layers.push(dense(2000, &hidden[..], lif)).unwrap();
    layers.push(dense(2, &out[..], readout)).unwrap();
    let input = Input {
        shape: Shape {
            height: 8,
            width: 8,
            channels: 1,
        },
        encoding: Encoding::Direct,
    };
    let desc = ModelDesc {
        name: "big",
        timesteps: 4,
        input,
        layers,
    };
    let mut bytes = vec![0u8; 200_000];
    let n = encode(&desc, &mut bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.ember");
    std::fs::write(&path, &bytes[..n]).unwrap();
    let arena = ember_runtime::Model::from_bytes(&bytes[..n])
        .unwrap()
        .arena_bytes();
    match ember_hil::build(Board::QemuMicrobit, &path) {
        Err(HilError::DoesNotFit(s)) => assert!(
            s.ends_with(&format!(
                "big.ember needs {} bytes of RAM (arena {arena} + stack reserve 4096), the board qemu-microbit has 16384",
                arena + 4096
            )),
            "{s}"
        ),
        other => panic!("expected DoesNotFit, got {other:?}"),
    }
}

/// A panic ends the run with status 101 and its message, on every core type.
#[test]
fn panic_reaches_the_host() {
    if !qemu_or_skip("panic_reaches_the_host") {
        return;
    }
    let samples = samples(&bundled_model()).first(1);
    for board in [Board::QemuMps2An386, Board::QemuMicrobit] {
        match qemu::run_with(firmware(board), &samples, Some("panic"), TIMEOUT) {
            Err(HilError::Firmware {
                status: 101,
                message,
                ..
            }) => assert!(
                message.starts_with("panicked: panicked at ")
                    && message.ends_with("self-test panic requested on the command line"),
                "{board}: {message}"
            ),
            other => panic!("{board}: expected a panic, got {other:?}"),
        }
    }
}

/// A hard fault ends the run with status 2 and the faulting address.
#[test]
fn hard_fault_reaches_the_host() {
    if !qemu_or_skip("hard_fault_reaches_the_host") {
        return;
    }
    let samples = samples(&bundled_model()).first(1);
    for board in [Board::QemuMps2An386, Board::QemuMicrobit] {
        match qemu::run_with(firmware(board), &samples, Some("hard-fault"), TIMEOUT) {
            Err(HilError::Firmware {
                status: 2, message, ..
            }) => {
                assert!(
                    message.starts_with("hard fault at pc 0x"),
                    "{board}: {message}"
                )
            }
            other => panic!("{board}: expected a hard fault, got {other:?}"),
        }
    }
}

/// The unsupervised STDP network (`models/stdp-400.ember`: 400 neurons with lateral
/// inhibition, 50% of the synapses pruned, 3-bit weights packed in int4, rate-coded input)
/// fits the lm3s6965's 64 KiB of RAM and gives exactly the host runtime's results.
#[test]
fn stdp_400_on_qemu_lm3s6965() {
    if !qemu_or_skip("stdp-400 on qemu-lm3s6965") {
        return;
    }
    shipped_model_fits(Board::QemuLm3s6965, "models/stdp-400.ember", 50, 64 * 1024);
}

/// The multimodal STDP network (`models/multimodal.ember`: an image and an audio ensemble
/// side by side in one layer, lateral inhibition within each, a fused readout) on paired
/// inputs (`data/paired-small`: an MNIST test image then an FSDD test recording's MFCC
/// features) gives exactly the host runtime's results on the Cortex-M4.
#[test]
fn multimodal_on_qemu_mps2_an386() {
    if !qemu_or_skip("multimodal on qemu-mps2-an386") {
        return;
    }
    shipped_model_fits_on(
        Board::QemuMps2An386,
        "models/multimodal.ember",
        "data/paired-small",
        20,
        64 * 1024,
    );
}

/// Runs shipped `file` on `board` over `n` bundled test images: exactly the host runtime's
/// results, in at most `ram` bytes of RAM.
fn shipped_model_fits(board: Board, file: &str, n: usize, ram: u64) {
    shipped_model_fits_on(board, file, "data/mnist-small", n, ram)
}

/// [`shipped_model_fits`] on the first `n` inputs of the IDX test files in folder `data`.
fn shipped_model_fits_on(board: Board, file: &str, data: &str, n: usize, ram: u64) {
    let samples = Samples::mnist_test(&repo().join(data), n).unwrap();
    let report = ember_hil::run(board, &repo().join(file), &samples, TIMEOUT)
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    println!("{file} on {}: {report:?}", board.name());
    assert_eq!(
        report.agreement, 1.0,
        "{file}: {:?}",
        report.first_disagreement
    );
    assert_eq!(report.board_accuracy, report.host_accuracy);
    assert!(
        report.ram_bytes <= ram,
        "{file}: {} bytes of RAM",
        report.ram_bytes
    );
}

/// The shipped pruned models on the small boards (issue 6): REF-CONV pruned to 80% with
/// 16-bit membranes on the lm3s6965 (64 KiB of RAM) and REF-MLP pruned to 80% with int4
/// weights on the micro:bit (16 KiB), both exactly the host runtime's results.
#[test]
fn pruned_models_on_the_small_boards() {
    if !qemu_or_skip("pruned models on qemu-lm3s6965 and qemu-microbit") {
        return;
    }
    shipped_model_fits(
        Board::QemuLm3s6965,
        "models/ref-conv-pruned-m16.ember",
        20,
        64 * 1024,
    );
    shipped_model_fits(
        Board::QemuMicrobit,
        "models/ref-mlp-pruned-int4.ember",
        50,
        16 * 1024,
    );
}

/// xorshift32: the weights of the test models below, the same on every run.
struct Draw(u32);

impl Draw {
    fn int(&mut self, lo: i32, hi: i32) -> i32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        lo + (self.0 % (hi - lo + 1) as u32) as i32
    }
}

/// How [`ref_conv_shaped`] prunes and stores its weights.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// Every weight, dense.
    Dense,
    /// Each row of every weight matrix keeps its `cols / 5` largest weights (80 % pruned),
    /// stored row-balanced sparse (`Storage::Ell`) with 4-bit column indices where the
    /// matrix has at most 16 columns, 8-bit otherwise.
    Ell,
    /// The same pruned weights stored dense (zeros included).
    PrunedDense,
}

/// REF-CONV's shape with deterministic random int8 weights in -40..=40, written to
/// `dir/NAME.ember`: 28x28x1 direct input, conv3x3 1->16 pad 1 LIF, avgpool 2, conv3x3
/// 16->32 pad 1 LIF, avgpool 2, dense 1568->10 readout, T=4, membranes of `width`, the two
/// LIF layers' thresholds `th`, weights pruned and stored as `stored` says.
fn ref_conv_shaped(dir: &Path, name: &str, width: Width, stored: Stored, th: [i32; 2]) -> PathBuf {
    use ember_runtime::format::*;
    let ell = stored != Stored::Dense;
    let mut draw = Draw(0x2545_F491 ^ ell as u32);
    // (rows, columns) of the three weight matrices.
    let shapes = [(9, 16), (144, 32), (1568, 10)];
    let mut blobs: Vec<(Vec<u8>, Vec<u8>, u16, u8)> = vec![];
    for (rows, cols) in shapes {
        let w: Vec<i32> = (0..rows * cols).map(|_| draw.int(-40, 40)).collect();
        if !ell {
            blobs.push((w.iter().map(|&v| v as i8 as u8).collect(), vec![], 0, 0));
            continue;
        }
        let keep = cols / 5;
        let (mut idx, mut values) = (vec![], vec![]);
        for row in w.chunks(cols) {
            let mut order: Vec<usize> = (0..cols).collect();
            order.sort_by_key(|&c| std::cmp::Reverse(row[c].abs()));
            let mut kept = order[..keep].to_vec();
            kept.sort();
            if stored == Stored::PrunedDense {
                values.extend((0..cols).map(|c| match kept.contains(&c) {
                    true => row[c] as i8 as u8,
                    false => 0,
                }));
                continue;
            }
            idx.extend(kept.iter().copied());
            values.extend(kept.iter().map(|&c| row[c] as i8 as u8));
        }
        if stored == Stored::PrunedDense {
            blobs.push((values, vec![], 0, 0));
            continue;
        }
        let bits = if cols <= 16 { 4 } else { 8 };
        let idx = if bits == 4 {
            idx.chunks(2)
                .map(|p| p[0] as u8 | (*p.get(1).unwrap_or(&0) as u8) << 4)
                .collect()
        } else {
            idx.iter().map(|&c| c as u8).collect()
        };
        blobs.push((values, idx, keep as u16, bits));
    }
    fn weights((values, idx, per_row, bits): &(Vec<u8>, Vec<u8>, u16, u8)) -> Weights<'_> {
        let storage = match bits {
            0 => Storage::Dense { values },
            _ => Storage::Ell {
                per_row: *per_row,
                index_bits: *bits,
                cols: idx,
                values,
            },
        };
        Weights {
            precision: Precision::I8,
            storage,
        }
    }
    let lif = |threshold| {
        Neuron::Lif(Lif {
            threshold: Channelwise::Uniform(threshold),
            bias: Channelwise::Uniform(0),
            leak: Leak::NONE,
            reset: Reset::Subtract,
            membrane: width,
        })
    };
    let conv = |out_channels, b, neuron| {
        Layer::Conv2d(Conv2d {
            out_channels,
            kernel: 3,
            stride: 1,
            padding: 1,
            weights: weights(b),
            neuron,
        })
    };
    let pool = Layer::AvgPool(Pool {
        kernel: 2,
        stride: 2,
    });
    let readout = Neuron::Readout(Readout {
        bias: Channelwise::Uniform(0),
        leak: Leak::NONE,
        membrane: width,
    });
    let mut layers = heapless::Vec::new();
    for l in [
        conv(16, &blobs[0], lif(th[0])),
        pool.clone(),
        conv(32, &blobs[1], lif(th[1])),
        pool,
        Layer::Dense(Dense {
            outputs: 10,
            weights: weights(&blobs[2]),
            neuron: readout,
        }),
    ] {
        layers.push(l).unwrap();
    }
    let desc = ModelDesc {
        name,
        timesteps: 4,
        input: Input {
            shape: Shape {
                height: 28,
                width: 28,
                channels: 1,
            },
            encoding: Encoding::Direct,
        },
        layers,
    };
    let mut bytes = vec![0u8; 1 << 17];
    let n = encode(&desc, &mut bytes).unwrap();
    let path = dir.join(format!("{name}.ember"));
    std::fs::write(&path, &bytes[..n]).unwrap();
    path
}

/// The host runtime's class, readout and spike counts of `model` for every sample.
fn host_outputs(model: &Path, samples: &Samples) -> Vec<(u16, Vec<i32>, Vec<u32>)> {
    let bytes = std::fs::read(model).unwrap();
    let model = ember_runtime::Model::from_bytes(&bytes).unwrap();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut engine = ember_runtime::Engine::new(&model, &mut arena).unwrap();
    (0..samples.len())
        .map(|i| {
            let out = engine.run(samples.input(i)).unwrap();
            (out.class, out.readout.to_vec(), out.spikes.to_vec())
        })
        .collect()
}

/// Host runtime spike counts of `model`'s two LIF layers (0 and 2) over `samples`, summed.
fn host_spikes(model: &Path, samples: &Samples) -> (u64, u64) {
    let bytes = std::fs::read(model).unwrap();
    let model = ember_runtime::Model::from_bytes(&bytes).unwrap();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut engine = ember_runtime::Engine::new(&model, &mut arena).unwrap();
    let (mut first, mut second) = (0, 0);
    for i in 0..samples.len() {
        let out = engine.run(samples.input(i)).unwrap();
        (first, second) = (first + out.spikes[0] as u64, second + out.spikes[2] as u64);
    }
    (first, second)
}

/// Where the generated models are written: `$EMBER_HIL_MODELS` when set (to keep them, e.g.
/// for the benchmarks in firmware/BENCHMARKS-firmware.md), else a temporary directory
/// (returned too, so that it lives as long as the test).
fn generated_models_dir() -> (Option<tempfile::TempDir>, PathBuf) {
    match std::env::var_os("EMBER_HIL_MODELS") {
        Some(dir) => {
            std::fs::create_dir_all(&dir).unwrap();
            (None, PathBuf::from(dir))
        }
        None => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().to_path_buf();
            (Some(dir), path)
        }
    }
}

/// Samples of the two REF-CONV-shaped runs: a few dozen MNIST test images.
const REF_CONV_SAMPLES: usize = 30;
/// Bound on those runs (about 4 M instructions per inference).
const REF_CONV_TIMEOUT: Duration = Duration::from_secs(300);

/// REF-CONV's shape with 16-bit membranes fits the lm3s6965's 64 KiB of RAM (the
/// direct-input current recomputed at every step, the LIF layers' spikes pooled as they
/// fire, transient maps sharing bytes: a 42,620-byte arena) and gives exactly the host
/// runtime's results on 30 MNIST images.
#[test]
fn ref_conv_16bit_on_qemu_lm3s6965() {
    if !qemu_or_skip("ref_conv_16bit_on_qemu_lm3s6965") {
        return;
    }
    let (_keep, dir) = generated_models_dir();
    let model = ref_conv_shaped(
        &dir,
        "ref-conv-16bit",
        Width::I16,
        Stored::Dense,
        [8000, 200],
    );
    let bytes = std::fs::read(&model).unwrap();
    let arena = ember_runtime::Model::from_bytes(&bytes)
        .unwrap()
        .arena_bytes();
    assert_eq!(arena, 42_620);
    let samples = Samples::mnist_test(&repo().join("data/mnist-small"), REF_CONV_SAMPLES).unwrap();
    let (first, second) = host_spikes(&model, &samples);
    assert!(first > 10_000 && second > 10_000, "spikes {first} {second}");
    let report = ember_hil::run(Board::QemuLm3s6965, &model, &samples, REF_CONV_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    println!("REF-CONV 16-bit on qemu-lm3s6965: {report:?}");
    assert_eq!(report.agreement, 1.0, "{:?}", report.first_disagreement);
    assert_eq!(report.board_accuracy, report.host_accuracy);
    assert!(
        report.ram_bytes <= 64 * 1024,
        "{} bytes of RAM",
        report.ram_bytes
    );
}

/// REF-CONV's shape with its three weight matrices pruned to 20 % per row and stored as
/// Ell (4-bit column indices for the 16- and 10-column layers, 8-bit for the 32-column one;
/// 32-bit membranes, so the int8 Ell kernels run both saturating and not) gives exactly the
/// host runtime's results on qemu-mps2-an386.
#[test]
fn ref_conv_ell_on_qemu_mps2_an386() {
    if !qemu_or_skip("ref_conv_ell_on_qemu_mps2_an386") {
        return;
    }
    let (_keep, dir) = generated_models_dir();
    let model = ref_conv_shaped(&dir, "ref-conv-ell", Width::I32, Stored::Ell, [3000, 60]);
    // The same weights stored dense give the same results on the host.
    let dense = ref_conv_shaped(
        &dir,
        "ref-conv-ell-as-dense",
        Width::I32,
        Stored::PrunedDense,
        [3000, 60],
    );
    let bytes = std::fs::read(&model).unwrap();
    let loaded = ember_runtime::Model::from_bytes(&bytes).unwrap();
    let bits: Vec<u8> = loaded
        .desc()
        .layers
        .iter()
        .filter_map(|l| match l {
            Layer::Conv2d(c) => Some(c.weights.storage),
            Layer::Dense(d) => Some(d.weights.storage),
            _ => None,
        })
        .map(|s| match s {
            Storage::Ell { index_bits, .. } => index_bits,
            _ => 0,
        })
        .collect();
    assert_eq!(bits, [4, 8, 4]);
    let samples = Samples::mnist_test(&repo().join("data/mnist-small"), REF_CONV_SAMPLES).unwrap();
    let (first, second) = host_spikes(&model, &samples);
    assert!(first > 10_000 && second > 10_000, "spikes {first} {second}");
    assert_eq!(
        host_outputs(&model, &samples),
        host_outputs(&dense, &samples)
    );
    let report = ember_hil::run(Board::QemuMps2An386, &model, &samples, REF_CONV_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    println!("REF-CONV Ell on qemu-mps2-an386: {report:?}");
    assert_eq!(report.agreement, 1.0, "{:?}", report.first_disagreement);
    assert_eq!(report.board_accuracy, report.host_accuracy);
    assert!(report.sops_per_inference > 0.0);
}
