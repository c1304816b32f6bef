//! `ember`: train, convert, export, evaluate and inspect spiking networks for microcontrollers.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ember_trainer::data::mnist_dir;
use ember_trainer::multimodal;
use ember_trainer::pipeline::{self, Options};
use ember_trainer::recipe::Recipe;
use ember_trainer::report::{Report, MAC_PJ, SOP_PJ};
use ember_trainer::{Error, Result};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The REF-MLP recipe, built in so `ember demo` works from any directory.
const REF_MLP: &str = include_str!("../../recipes/ref-mlp.toml");

#[derive(Parser)]
#[command(
    name = "ember",
    version,
    about = "Train spiking neural networks on the host and export them as .ember files \
    that the integer runtime runs bit-exact on Cortex-M"
)]
struct Cli {
    /// More log output (-v: debug, -vv: trace). Logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// No progress bars and only warnings in the log.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a recipe's ANN, convert it to an integer SNN, export and evaluate it.
    ///
    /// Writes checkpoint.safetensors, model.ember and report.json into --out. With a [diet]
    /// section (e.g. recipes/ref-mlp-diet.toml) the converted SNN is fine-tuned with BPTT
    /// (DIET-SNN / hybrid STDB, see `ember diet`) before export; the ANN then trains without
    /// the held-out slice that fine-tuning picks its best epoch on.
    Train {
        /// Recipe (TOML): layers, timesteps, training and conversion settings (see recipes/).
        #[arg(long)]
        recipe: PathBuf,
        /// MNIST directory with the four IDX files, raw or .gz [default: the bundled data/mnist-small].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Output directory.
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// Override the recipe's number of epochs.
        #[arg(long)]
        epochs: Option<usize>,
        /// Train on the first N training samples only.
        #[arg(long)]
        train_samples: Option<usize>,
        /// Continue an interrupted run from the checkpoint that every epoch writes into
        /// --out (weights, optimiser state, epoch count); same result as an uninterrupted run.
        #[arg(long)]
        resume: bool,
        /// Start from these weights (a checkpoint of the same layers) instead of a fresh
        /// initialisation: fine-tune a trained ANN, e.g. with a recipe's [compress] pruning
        /// and quantization-aware training.
        #[arg(long, value_name = "CHECKPOINT")]
        init: Option<PathBuf>,
        /// Override [compress] sparsity: the fraction of weights pruned during training
        /// (adds a [compress] section with its defaults if the recipe has none).
        #[arg(long, value_name = "FRACTION")]
        sparsity: Option<f64>,
        /// Override [compress] bits: 8 or 4 bits per exported weight, trained
        /// quantization-aware.
        #[arg(long)]
        bits: Option<u8>,
        /// Override [compress] membrane: 16 or 32 bits per LIF membrane in the exported model
        /// (16 halves the RAM; see `ember inspect` for the arena).
        #[arg(long)]
        membrane: Option<u8>,
    },
    /// Convert a trained checkpoint to an integer SNN and export it as an .ember file.
    ///
    /// Also evaluates it and writes <stem>.report.json beside the model.
    Convert {
        /// Checkpoint written by `ember train` (safetensors).
        #[arg(long)]
        checkpoint: PathBuf,
        /// The recipe the checkpoint was trained with.
        #[arg(long)]
        recipe: PathBuf,
        /// The .ember file to write.
        #[arg(long)]
        out: PathBuf,
        /// MNIST directory: calibration (train split) and evaluation (test split) [default: bundled subset].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Also convert for each of these timesteps (e.g. 8,16,32,64,128) and report the
        /// float SNN and integer runtime accuracy of each in report.json
        /// (`timestep_sweep`), with a plot <stem>.timesteps.png.
        #[arg(long, value_delimiter = ',')]
        sweep_timesteps: Vec<u16>,
        /// Test samples for each point of --sweep-timesteps [default: the whole test split].
        #[arg(long)]
        sweep_samples: Option<usize>,
        /// Also measure accuracy on the last N training samples (`holdout` in the report):
        /// choose conversion settings on these, not on the test set.
        #[arg(long)]
        holdout: Option<usize>,
        /// Export with 16- or 32-bit LIF membranes (overrides [compress] membrane).
        #[arg(long)]
        membrane: Option<u8>,
    },
    /// DIET-SNN / hybrid STDB: convert a trained ANN checkpoint, fine-tune the spiking
    /// network with BPTT (weights, thresholds and leaks), export it and evaluate it.
    ///
    /// Uses the recipe's [diet] section (defaults if absent); writes <stem>.report.json
    /// beside the model. `ember train` runs the same stage when the recipe has [diet].
    Diet {
        /// Checkpoint written by `ember train` (safetensors).
        #[arg(long)]
        checkpoint: PathBuf,
        /// The recipe the checkpoint was trained with.
        #[arg(long)]
        recipe: PathBuf,
        /// The .ember file to write.
        #[arg(long)]
        out: PathBuf,
        /// MNIST directory [default: the bundled data/mnist-small].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Override [diet] timesteps.
        #[arg(long)]
        timesteps: Option<u16>,
        /// Override [diet] epochs.
        #[arg(long)]
        epochs: Option<usize>,
        /// Fine-tune on the first N training samples only (the held-out slice is their last ones).
        #[arg(long)]
        train_samples: Option<usize>,
        /// Override [diet] surrogate: linear (DIET-SNN) or stdb (hybrid conversion + STDB).
        #[arg(long, value_enum)]
        surrogate: Option<ember_trainer::diet::SurrogateKind>,
        /// Override [diet] lr (peak learning rate).
        #[arg(long)]
        lr: Option<f64>,
        /// Override [diet] shift: move training images by up to N pixels (augmentation).
        #[arg(long)]
        shift: Option<usize>,
        /// Override [diet] seed (shuffling and augmentation).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Run a model with the integer runtime on the test set: accuracy, spike rates, SOPs, MACs.
    Eval {
        /// The .ember file.
        #[arg(long)]
        model: PathBuf,
        /// MNIST directory [default: the bundled data/mnist-small].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Evaluate the first N test samples only.
        #[arg(long)]
        samples: Option<usize>,
        /// Timesteps per inference [default: the model's].
        #[arg(long)]
        timesteps: Option<u16>,
        /// Print the results as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Show a model's layers, shapes, precision, weight bytes, arena bytes and timesteps.
    Inspect {
        /// The .ember file.
        file: PathBuf,
    },
    /// Hardware in the loop: build the firmware for an emulated board with a model, run it
    /// under QEMU on MNIST test images and compare every result with the host runtime.
    ///
    /// Reports agreement (identical class, readout values and spike counts), host and board
    /// accuracy, instructions per inference (QEMU -icount), flash and RAM bytes. Needs
    /// qemu-system-arm (Debian/Ubuntu: apt-get install -y qemu-system-arm) and the rustup
    /// target of the board (rust-toolchain.toml lists them).
    Hil {
        /// Board: qemu-mps2-an386 (Cortex-M4F), qemu-lm3s6965 (M3), qemu-mps2-an505 (M33),
        /// qemu-microbit (M0).
        #[arg(long, default_value = "qemu-mps2-an386")]
        board: String,
        /// The .ember file to compile into the firmware.
        #[arg(long)]
        model: PathBuf,
        /// MNIST directory with t10k-*.gz [default: the bundled data/mnist-small]; or any
        /// folder of such IDX files whose items are the model's inputs, e.g. the
        /// paired-test/ folder (image and audio features) that `ember multimodal` writes.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Number of test images.
        #[arg(long, default_value_t = 200)]
        samples: usize,
        /// Seconds before QEMU is stopped and the run fails.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Timesteps per inference instead of the number stored in the model file, on the
        /// board and on the host alike.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        timesteps: Option<u16>,
        /// Run the model's layers as its dense int8 ANN baseline instead (ReLU, one pass,
        /// every MAC computed; firmware feature ann-baseline), checked against the host's run
        /// of the same code.
        #[arg(long, conflicts_with = "timesteps")]
        ann_baseline: bool,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Build a real board's firmware with a model and a few MNIST test images in flash, then
    /// flash and run it with probe-rs (`probe-rs run --chip CHIP ELF`).
    ///
    /// The board logs, over RTT (probe-rs prints it), each sample's class, label and timer
    /// ticks, then the accuracy and the mean time per inference. Needs the board's rustup
    /// target (rust-toolchain.toml lists them) and, without --build-only, probe-rs
    /// (`cargo install probe-rs-tools`, https://probe.rs) and the board on USB with its
    /// debug probe. A model that does not fit is refused with its sizes.
    Deploy {
        /// Board: nrf52840-dk (nRF52840, Cortex-M4F), nucleo-f411re (STM32F411RE, M4F),
        /// rp2040-pico (RP2040, M0+).
        #[arg(long)]
        board: String,
        /// The .ember file to compile into the firmware.
        #[arg(long)]
        model: PathBuf,
        /// Only build: write the ELF and print its path and its flash and RAM bytes.
        #[arg(long)]
        build_only: bool,
        /// probe-rs probe selector (VID:PID or VID:PID:SERIAL) when several are attached.
        #[arg(long)]
        probe: Option<String>,
        /// probe-rs chip name [default: the board's: nRF52840_xxAA, STM32F411RETx, RP2040].
        #[arg(long)]
        chip: Option<String>,
        /// MNIST test images bundled into flash.
        #[arg(long, default_value_t = 10)]
        samples: usize,
        /// MNIST directory with t10k-*.gz [default: the bundled data/mnist-small].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Where to write the ELF [default: target/ember-deploy/<board>-<model stem>.elf].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Draw the results charts from report.json files: integer-runtime accuracy against
    /// timesteps per method (conversion sweeps, DIET-SNN, hybrid STDB) and spike rate per
    /// LIF layer.
    ///
    /// Example: ember plot --accuracy docs/accuracy-vs-timesteps.png --spike-rates
    /// docs/spike-rates.png models/ref-conv.report.json models/ref-conv-diet-t4.report.json
    Plot {
        /// report.json files (ember train, convert, diet).
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// PNG of accuracy against timesteps.
        #[arg(long, default_value = "accuracy-vs-timesteps.png")]
        accuracy: PathBuf,
        /// PNG of the spike rate per layer.
        #[arg(long, default_value = "spike-rates.png")]
        spike_rates: PathBuf,
    },
    /// Unsupervised STDP (Diehl & Cook style) with pruning and weight quantization during
    /// training; labels the neurons, evaluates the float network and the exported integer
    /// model, and writes checkpoint.json, stdp.ember and report.json into --out. The
    /// progress bar shows images/s and, every 5,000 images, a running accuracy: a copy of the
    /// network labelled on 1,000 labelling images and scored on the 500 training images
    /// after the labelling set.
    ///
    /// Example (full MNIST, 400 neurons, 70% pruned, 8 levels = 3-bit weights, 90.4%):
    /// ember stdp --data ../shared/data/mnist --neurons 400 --epochs 3 --eta 0.01
    /// --theta-plus 0.6 --sparsity 0.7 --levels 8
    Stdp {
        /// MNIST directory [default: the bundled data/mnist-small].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Excitatory neurons.
        #[arg(long, default_value_t = 100)]
        neurons: usize,
        /// Passes over the training images.
        #[arg(long, default_value_t = 1)]
        epochs: usize,
        /// Train on the first N training images only.
        #[arg(long)]
        train_samples: Option<usize>,
        /// Training images used afterwards to label each neuron with its class.
        #[arg(long, default_value_t = 10_000)]
        label_samples: usize,
        /// Evaluate on the first N test images only.
        #[arg(long)]
        test_samples: Option<usize>,
        /// Timesteps an image is presented (and inference timesteps of the exported model).
        #[arg(long, default_value_t = 48)]
        timesteps: u16,
        /// Final fraction of input synapses pruned (lowest weight = lowest correlation).
        #[arg(long, default_value_t = 0.0)]
        sparsity: f32,
        /// Conductance levels of the quantized weights, e.g. 8 = 3 bits (0: keep float).
        #[arg(long, default_value_t = 0)]
        levels: u32,
        /// Prune and quantize every N training images (gradual, cubic schedule).
        #[arg(long, default_value_t = 1000)]
        prune_every: usize,
        /// STDP learning rate.
        #[arg(long, default_value_t = 0.03)]
        eta: f32,
        /// Base firing threshold in weight units (weights lie in [0, 1]).
        #[arg(long, default_value_t = 40.0)]
        threshold: f32,
        /// Threshold increase per spike (homeostasis).
        #[arg(long, default_value_t = 0.3)]
        theta_plus: f32,
        /// How the labelled neurons vote for a class.
        #[arg(long, value_enum, default_value_t = ember_trainer::stdp::Vote::Soft)]
        vote: ember_trainer::stdp::Vote,
        /// Training images with fewer spikes are shown again at doubled intensity (up to 3 times).
        #[arg(long, default_value_t = 5)]
        min_spikes: u32,
        /// Seed of the initial weights and the training input spikes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output directory.
        #[arg(long, default_value = "stdp-out")]
        out: PathBuf,
        /// Continue from --out/checkpoint.json.
        #[arg(long)]
        resume: bool,
    },
    /// Multimodal STDP: an image ensemble (MNIST) and an audio ensemble (spoken digits, FSDD)
    /// learn unsupervised, then excitatory cross-modal synapses between them learn with STDP
    /// on pairs of the same digit. Reports the accuracy of image alone, audio alone and both
    /// on FSDD's test split (recordings 0-4) paired with MNIST test images, clean and with
    /// noise on one modality, and plots accuracy against noise strength.
    ///
    /// Writes checkpoint.json, report.json, robustness-image-noise.png and
    /// robustness-audio-noise.png into --out, and the network as multimodal.ember (both
    /// ensembles in one layer, a fused readout; input: the image's pixels then the audio
    /// features) with the clean test pairs as paired-test/ (MNIST-style IDX files), which
    /// `ember eval --data` and `ember hil --data` take: `ember hil --model
    /// multimodal-out/multimodal.ember --data multimodal-out/paired-test`.
    ///
    /// Example: ember multimodal --image-data ../shared/data/mnist --audio-data
    /// ../shared/data/fsdd --image-neurons 400 --audio-neurons 400
    Multimodal {
        /// MNIST directory [default: the bundled data/mnist-small].
        #[arg(long)]
        image_data: Option<PathBuf>,
        /// FSDD directory (its recordings/ folder of WAV files) [default: the bundled
        /// data/fsdd-small, 130 recordings of one speaker; the full set is in
        /// ../shared/data/fsdd].
        #[arg(long)]
        audio_data: Option<PathBuf>,
        /// Neurons of the image ensemble.
        #[arg(long, default_value_t = 400)]
        image_neurons: usize,
        /// Neurons of the audio ensemble.
        #[arg(long, default_value_t = 400)]
        audio_neurons: usize,
        /// STDP passes over the MNIST training images.
        #[arg(long, default_value_t = 1)]
        image_epochs: usize,
        /// Train the image ensemble on the first N MNIST training images only.
        #[arg(long)]
        image_train_samples: Option<usize>,
        /// STDP learning rate of the image ensemble (`ember stdp --eta`).
        #[arg(long, default_value_t = 0.03)]
        image_eta: f32,
        /// Final fraction of the image ensemble's synapses pruned while it learns (every
        /// 1,000 images on a cubic schedule, as `ember stdp --sparsity`); 0: none.
        #[arg(long, default_value_t = 0.0)]
        image_sparsity: f32,
        /// Conductance levels the image ensemble's weights are quantized to with the pruning
        /// (`ember stdp --levels`); 0: not quantized.
        #[arg(long, default_value_t = 0)]
        image_levels: u32,
        /// STDP passes over the 2,700 FSDD training recordings.
        #[arg(long, default_value_t = 20)]
        audio_epochs: usize,
        /// Paired presentations (image and recording of the same digit) that train the
        /// cross-modal synapses.
        #[arg(long, default_value_t = 10_000)]
        pairs: usize,
        /// MNIST training images that label the image neurons.
        #[arg(long, default_value_t = 10_000)]
        label_samples: usize,
        /// Timesteps of a presentation.
        #[arg(long, default_value_t = 48)]
        timesteps: u16,
        /// Base firing threshold of the audio neurons (weight units).
        #[arg(long, default_value_t = 40.0)]
        audio_threshold: f32,
        /// Current a spike sends through a cross-modal synapse of weight 1 (weight units of
        /// the target ensemble, whose base threshold is 40) at inference. 0: the synapses
        /// learn but the ensembles classify independently and only their votes are fused,
        /// which measured best (docs/results.md).
        #[arg(long, default_value_t = multimodal::CrossConfig::default().gain)]
        cross_gain: f32,
        /// Learning rate of the cross-modal synapses.
        #[arg(long, default_value_t = multimodal::CrossConfig::default().eta)]
        cross_eta: f32,
        /// Target presynaptic trace of the cross-modal rule: synapses from neurons whose trace
        /// is lower at a post spike are depressed.
        #[arg(long, default_value_t = multimodal::CrossConfig::default().x_tar)]
        cross_x_tar: f32,
        /// Per-step decay of the cross-modal rule's spike traces (closer to 1: neurons that
        /// fired earlier in the presentation still count as co-active).
        #[arg(long, default_value_t = multimodal::CrossConfig::default().trace_decay)]
        cross_trace_decay: f32,
        /// How the two ensembles' class scores combine into the multimodal prediction.
        #[arg(long, value_enum, default_value_t = multimodal::Fusion::Evidence)]
        fusion: multimodal::Fusion,
        /// Floor added to each class score before the product fusion takes logarithms
        /// (larger: closer to the sum).
        #[arg(long, default_value_t = multimodal::CrossConfig::default().fusion_floor)]
        fusion_floor: f32,
        /// Pseudo-count per class of the evidence fusion, as a fraction of each ensemble's
        /// mean total class score on training inputs (larger: an ensemble needs more
        /// evidence to move the prediction).
        #[arg(long, default_value_t = multimodal::CrossConfig::default().fusion_prior)]
        fusion_prior: f32,
        /// Test pairs per FSDD test recording (300 recordings).
        #[arg(long, default_value_t = 10)]
        pairs_per_recording: usize,
        /// Share of each spectrogram's values kept (the loudest, stretched to 0..255); the
        /// rest is silenced, so that few inputs spike, as in an MNIST digit.
        #[arg(long, default_value_t = 0.5)]
        audio_keep: f32,
        /// Audio features: log power of mel filters or of equal-width bands, or MFCCs.
        #[arg(long, value_enum, default_value_t = AudioFeatures::Mfcc)]
        audio_features: AudioFeatures,
        /// Time frames of an audio feature image (rows).
        #[arg(long, default_value_t = 32)]
        audio_frames: usize,
        /// Frequency bands, mel filters or MFCC coefficients of an audio feature image (columns).
        #[arg(long, default_value_t = 20)]
        audio_bands: usize,
        /// Multi-condition training: for each SNR (dB) given, a copy of every training
        /// recording with white noise at that SNR joins the audio training set (and the
        /// labelling and cross-modal pairs), so --audio-epochs passes over N+1 times as many
        /// recordings. Example: --audio-augment-snr 20,10,5,0
        #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
        audio_augment_snr: Vec<f32>,
        /// Pixel noise levels (standard deviation in grey levels) of the image-noise sweep.
        #[arg(long, value_delimiter = ',', default_values_t = [0.0, 32.0, 64.0, 96.0, 128.0, 192.0])]
        image_noise: Vec<f32>,
        /// Signal-to-noise ratios (dB) of the audio-noise sweep.
        #[arg(long, value_delimiter = ',', allow_negative_numbers = true, default_values_t = [30.0, 20.0, 10.0, 5.0, 0.0, -5.0])]
        audio_snr: Vec<f32>,
        /// Seed of the initial weights and the training input spikes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output directory.
        #[arg(long, default_value = "multimodal-out")]
        out: PathBuf,
        /// Continue from --out/checkpoint.json.
        #[arg(long)]
        resume: bool,
    },
    /// Training speed of the reference networks on synthetic data: BPTT over T steps, batch
    /// 64, Adam, surrogate gradient, thresholds and leaks trained (the DIET-SNN step), as
    /// ../shared/REFERENCE.md sets for speed figures; then the float SNN's evaluation speed
    /// (no gradient, batches of 256) and the process's peak memory so far.
    ///
    /// Example: ember bench-train --net ref-conv --batches 200. With --plain the same step
    /// runs as the plain composition of candle ops that the fused kernels replace.
    /// Threads: RAYON_NUM_THREADS (default: one per core).
    BenchTrain {
        /// Which network.
        #[arg(long, value_parser = ["ref-conv", "ref-mlp", "all"], default_value = "all")]
        net: String,
        /// Timed training batches.
        #[arg(long, default_value_t = 100)]
        batches: usize,
        /// Untimed batches before them.
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        /// Samples per batch.
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Timesteps T.
        #[arg(long, default_value_t = 4)]
        timesteps: u16,
        /// Samples of the timed evaluation pass (0: skip it).
        #[arg(long, default_value_t = 2048)]
        eval_samples: usize,
        /// Use the plain candle composition instead of the fused kernels.
        #[arg(long)]
        plain: bool,
        /// Print one JSON object per network instead of the table.
        #[arg(long)]
        json: bool,
        /// Instead of timing: train from scratch for this many epochs on real MNIST
        /// (--data) and print the test accuracy after each epoch (compare with --plain).
        #[arg(long)]
        accuracy_epochs: Option<usize>,
        /// MNIST directory for --accuracy-epochs [default: the bundled data/mnist-small].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Training images for --accuracy-epochs.
        #[arg(long, default_value_t = 60_000)]
        train_samples: usize,
        /// Test images for --accuracy-epochs.
        #[arg(long, default_value_t = 10_000)]
        test_samples: usize,
        /// Seed of the initial weights and of the shuffling for --accuracy-epochs (both
        /// kernel paths start from the same weights for the same seed).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The whole pipeline on the bundled subset: train REF-MLP's ANN, convert it, fine-tune
    /// it with DIET-SNN (learned thresholds and leaks), quantize, export
    /// demo-out/ref-mlp.ember, evaluate it with the integer runtime, then run it on the
    /// emulated Cortex-M4 (qemu-mps2-an386) and check that the firmware agrees with the host.
    Demo {
        /// Output directory.
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
        /// ANN epochs on the 2,000 bundled training images.
        #[arg(long, default_value_t = 5)]
        epochs: usize,
        /// DIET-SNN fine-tuning epochs (0: convert only).
        #[arg(long, default_value_t = 2)]
        diet_epochs: usize,
        /// Test images run on the emulated board.
        #[arg(long, default_value_t = 200)]
        hil_samples: usize,
        /// Skip the hardware-in-the-loop step.
        #[arg(long)]
        no_hil: bool,
    },
}

/// mimalloc's `mi_option_purge_delay` (mimalloc.h of the bundled v3; the bindings name no
/// constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Audio features of `ember multimodal`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum AudioFeatures {
    /// Log power of triangular mel filters.
    Mel,
    /// Log power of equal-width frequency bands.
    Linear,
    /// Mel-frequency cepstral coefficients (--audio-bands of them, from at least 40 mel
    /// filters), each scaled to 0..255 on its own.
    Mfcc,
}

fn main() -> ExitCode {
    // Keep freed pages instead of returning them to the OS 10 ms later: a training step
    // frees and reallocates the same large temporaries, and each returned page costs a page
    // fault and a clearing when it comes back (7% of REF-CONV's step, BENCHMARKS.md).
    // SAFETY: sets one integer option; mimalloc allows it at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    // One thread pool: rayon's (gemm, the fused kernels) on every core; candle's own pool for
    // its elementwise ops, which spins while it waits, would compete with it for the cores.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    let cli = Cli::parse();
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => tracing::Level::WARN,
        (_, 0) => tracing::Level::INFO,
        (_, 1) => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .init();
    // The command runs on a worker of that pool, so that the kernels' parallel loops and
    // gemm split work with it instead of waking every worker and putting it to sleep.
    let show = !cli.quiet;
    let result = match rayon::ThreadPoolBuilder::new().build() {
        Ok(pool) => pool.install(|| run(cli.command, show)),
        Err(_) => run(cli.command, show),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn run(command: Command, progress: bool) -> Result<()> {
    match command {
        Command::BenchTrain {
            net,
            batches,
            warmup,
            batch,
            timesteps,
            eval_samples,
            plain,
            json,
            accuracy_epochs,
            data,
            train_samples,
            test_samples,
            seed,
        } => {
            if let Some(epochs) = accuracy_epochs {
                let dir = mnist_dir(data.as_deref())?;
                let mnist = ember_trainer::data::mnist::Mnist::load(&dir)?;
                for (name, text) in ember_trainer::bench::NETWORKS {
                    if net != "all" && net != name {
                        continue;
                    }
                    let acc = ember_trainer::bench::accuracy_curve(
                        name,
                        text,
                        &mnist,
                        train_samples,
                        test_samples,
                        epochs,
                        timesteps,
                        plain,
                        seed,
                        progress,
                    )?;
                    let kernels = if plain { "plain" } else { "fused" };
                    let list: Vec<String> =
                        acc.iter().map(|a| format!("{:.2}%", 100.0 * a)).collect();
                    println!(
                        "{name} {kernels} seed {seed}: test accuracy after epochs 0..={epochs}: {}",
                        list.join(" ")
                    );
                }
                return Ok(());
            }
            let spec = ember_trainer::bench::BenchSpec {
                timesteps,
                batch,
                warmup,
                batches,
                eval_samples,
                plain,
            };
            if !json {
                println!(
                    "{:<10} {:<7} {:>4} {:>6} {:>8} {:>16} {:>9} {:>15} {:>10}",
                    "network",
                    "kernels",
                    "T",
                    "batch",
                    "threads",
                    "train samples/s",
                    "ms/step",
                    "eval samples/s",
                    "peak MiB"
                );
            }
            for (name, text) in ember_trainer::bench::NETWORKS {
                if net != "all" && net != name {
                    continue;
                }
                let r = ember_trainer::bench::bench(name, text, &spec, progress)?;
                if json {
                    println!("{}", serde_json::to_string(&r).unwrap_or_default());
                } else {
                    let opt = |v: Option<f64>, d: usize| {
                        v.map_or("-".to_string(), |v| format!("{v:.d$}"))
                    };
                    println!(
                        "{:<10} {:<7} {:>4} {:>6} {:>8} {:>16.0} {:>9.2} {:>15} {:>10}",
                        r.network,
                        r.kernels,
                        r.timesteps,
                        r.batch,
                        r.threads,
                        r.train_samples_per_second,
                        r.step_ms,
                        opt(r.eval_samples_per_second, 0),
                        opt(r.peak_rss_mib, 0)
                    );
                }
            }
        }
        Command::Train {
            recipe,
            data,
            out,
            epochs,
            train_samples,
            resume,
            init,
            sparsity,
            bits,
            membrane,
        } => {
            let recipe = Recipe::load(&recipe)?.with_compression(sparsity, bits, membrane)?;
            let opts = Options {
                data: mnist_dir(data.as_deref())?,
                epochs,
                train_samples,
                progress,
                resume,
                init,
            };
            let report = pipeline::train(&recipe, &opts, &out, "model.ember")?;
            print_summary(&report, &out.join("model.ember"));
        }
        Command::Convert {
            checkpoint,
            recipe,
            out,
            data,
            sweep_timesteps,
            sweep_samples,
            holdout,
            membrane,
        } => {
            let recipe = Recipe::load(&recipe)?.with_compression(None, None, membrane)?;
            let opts = Options {
                data: mnist_dir(data.as_deref())?,
                epochs: None,
                train_samples: None,
                progress,
                resume: false,
                init: None,
            };
            let net = ember_trainer::net::Net::load(&recipe, &checkpoint)?;
            let mnist = pipeline::load_data(&recipe, &opts.data)?;
            let mut report = pipeline::finish(&net, &mnist, &out, &opts)?;
            if let Some(n) = holdout {
                report.holdout = Some(pipeline::holdout(&net, &mnist, n, progress)?);
            }
            if !sweep_timesteps.is_empty() {
                let n = sweep_samples.unwrap_or(mnist.test.len());
                report.timestep_sweep =
                    pipeline::timestep_sweep(&net, &mnist, &sweep_timesteps, n, progress)?;
                let png = out.with_extension("timesteps.png");
                pipeline::sweep_plot(&report, &png)?;
                println!("plot: {}", png.display());
            }
            pipeline::write_report(&report, &pipeline::report_path(&out))?;
            print_summary(&report, &out);
            if let Some(h) = &report.holdout {
                println!(
                    "holdout ({} training samples): ANN {:.2}%, float SNN {:.2}%, integer {:.2}%",
                    h.samples,
                    100.0 * h.ann_accuracy,
                    100.0 * h.snn_float_accuracy,
                    100.0 * h.snn_int_accuracy
                );
            }
            for p in &report.timestep_sweep {
                println!(
                    "T = {:>3}: float SNN {:.2}%, integer {:.2}% ({} test samples)",
                    p.timesteps,
                    100.0 * p.snn_float_accuracy,
                    100.0 * p.snn_int_accuracy,
                    p.samples
                );
            }
        }
        Command::Diet {
            checkpoint,
            recipe,
            out,
            data,
            timesteps,
            epochs,
            train_samples,
            surrogate,
            lr,
            shift,
            seed,
        } => {
            let recipe = Recipe::load(&recipe)?;
            let opts = Options {
                data: mnist_dir(data.as_deref())?,
                epochs: None,
                train_samples,
                progress,
                resume: false,
                init: None,
            };
            let net = ember_trainer::net::Net::load(&recipe, &checkpoint)?;
            let mut mnist = pipeline::load_data(&recipe, &opts.data)?;
            if let Some(n) = train_samples {
                mnist.train.truncate(n);
            }
            let mut spec = recipe.diet.clone().unwrap_or_default();
            spec.timesteps = timesteps.or(spec.timesteps);
            spec.epochs = epochs.unwrap_or(spec.epochs);
            spec.surrogate = surrogate.unwrap_or(spec.surrogate);
            spec.lr = lr.unwrap_or(spec.lr);
            spec.shift = shift.unwrap_or(spec.shift);
            spec.seed = seed.unwrap_or(spec.seed);
            let report = ember_trainer::diet::finish(&net, &mnist, &out, &opts, Some(&spec))?;
            ember_trainer::diet::write_report(&report, &pipeline::report_path(&out))?;
            print_summary(&report.base, &out);
            let d = &report.diet;
            println!(
                "| conversion only (T={}): float / integer accuracy | {:.2}% / {:.2}% |",
                d.timesteps,
                100.0 * d.converted_float_accuracy,
                100.0 * d.converted_int_accuracy
            );
            println!(
                "| fine-tuning | {} epochs, {:.1} s, best epoch {} (held-out {} samples) |",
                d.spec.epochs, d.fine_tune.seconds, d.fine_tune.best_epoch, d.heldout_samples
            );
            for l in &d.layers {
                println!(
                    "| layer {} threshold / leak | {:.4} -> {:.4} / {:.4} |",
                    l.layer, l.theta_converted, l.theta, l.leak
                );
            }
        }
        Command::Eval {
            model,
            data,
            samples,
            timesteps,
            json,
        } => {
            let bytes = read(&model)?;
            let dir = mnist_dir(data.as_deref())?;
            let test = ember_trainer::data::mnist::load_split(
                &dir,
                "t10k-images-idx3-ubyte",
                "t10k-labels-idx1-ubyte",
            )?;
            let n = samples.unwrap_or(test.len());
            let e = ember_trainer::eval::evaluate(
                &bytes,
                &model,
                &test,
                n,
                timesteps,
                progress && !json,
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
            } else {
                println!(
                    "{}: {} test samples from {}, T={}",
                    model.display(),
                    e.samples,
                    dir.display(),
                    e.timesteps
                );
                println!("  accuracy          {:.2}%", 100.0 * e.accuracy);
                for l in &e.layers {
                    println!(
                        "  layer {} spikes    {:.4} per neuron per step ({} neurons)",
                        l.layer, l.spike_rate, l.neurons
                    );
                }
                println!("  SOPs / inference  {:.0}", e.sops_per_inference);
                println!("  MACs / inference  {:.0}", e.macs_per_inference);
                let pj = e.sops_per_inference * SOP_PJ + e.macs_per_inference * MAC_PJ;
                println!(
                    "  energy estimate   {:.1} nJ (SOP {SOP_PJ} pJ, MAC {MAC_PJ} pJ)",
                    pj / 1000.0
                );
                println!("  model {} B, arena {} B", e.model_bytes, e.arena_bytes);
            }
        }
        Command::Inspect { file } => {
            let bytes = read(&file)?;
            let text = ember_trainer::inspect::describe(&bytes).map_err(|source| Error::Model {
                path: file.clone(),
                source,
            })?;
            // A closed pipe (`ember inspect m.ember | head`) is not an error worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
        }
        Command::Hil {
            board,
            model,
            data,
            samples,
            timeout,
            timesteps,
            ann_baseline,
            json,
        } => {
            let names: Vec<&str> = ember_hil::Board::ALL.iter().map(|b| b.name()).collect();
            let board = ember_hil::Board::from_name(&board).ok_or_else(|| Error::Mismatch {
                message: format!(
                    "unknown board {board:?}; the emulated boards are {}",
                    names.join(", ")
                ),
            })?;
            let dir = mnist_dir(data.as_deref())?;
            let set = ember_hil::Samples::mnist_test(&dir, samples)?;
            if progress && !json {
                eprintln!(
                    "building the firmware for {} and running {} samples under QEMU...",
                    board.name(),
                    set.len()
                );
            }
            let options = ember_hil::Options {
                timesteps,
                ann_baseline,
            };
            let timeout = std::time::Duration::from_secs(timeout);
            let r = ember_hil::run_with(board, &model, &set, &options, timeout)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            } else {
                let pct =
                    |x: Option<f64>| x.map_or("-".to_string(), |a| format!("{:.2}%", 100.0 * a));
                let what = match ann_baseline {
                    true => "dense int8 ANN baseline".to_string(),
                    false => format!("T={}", r.timesteps),
                };
                println!(
                    "| {} on {} ({what}, {} samples from {}) | value |",
                    model.display(),
                    r.board,
                    r.samples,
                    dir.display()
                );
                println!("|---|---|");
                println!(
                    "| agreement with the host runtime | {:.2}% |",
                    100.0 * r.agreement
                );
                println!(
                    "| host accuracy / board accuracy | {} / {} |",
                    pct(r.host_accuracy),
                    pct(r.board_accuracy)
                );
                println!(
                    "| instructions per inference | {:.0} |",
                    r.instructions_per_inference
                );
                println!(
                    "| SOPs / MACs per inference | {:.0} / {:.0} |",
                    r.sops_per_inference, r.macs_per_inference
                );
                println!(
                    "| flash / RAM bytes | {} / {} |",
                    r.flash_bytes, r.ram_bytes
                );
                if let Some(d) = &r.first_disagreement {
                    println!("first disagreement: {d}");
                }
            }
            if r.agreement < 1.0 {
                return Err(Error::Mismatch {
                    message: format!(
                        "the board disagrees with the host on {:.2}% of the samples",
                        100.0 * (1.0 - r.agreement)
                    ),
                });
            }
        }
        Command::Deploy {
            board,
            model,
            build_only,
            probe,
            chip,
            samples,
            data,
            out,
        } => {
            use ember_hil::deploy;
            let board = deploy::RealBoard::from_name(&board)?;
            if !build_only {
                // Before a build of a minute: without probe-rs it would be for nothing.
                deploy::probe_rs_available()?;
            }
            let set = ember_hil::Samples::mnist_test(&mnist_dir(data.as_deref())?, samples)?;
            if progress {
                eprintln!(
                    "building the firmware for {} with {} and {} samples...",
                    board.name,
                    model.display(),
                    set.len()
                );
            }
            let d = deploy::build(&board, &model, &set, out.as_deref())?;
            println!("elf:   {}", d.elf.display());
            println!("flash: {} bytes", d.footprint.flash_bytes);
            println!("RAM:   {} bytes", d.footprint.ram_bytes);
            if !build_only {
                let chip = chip.as_deref().unwrap_or(board.chip);
                eprintln!("probe-rs run --chip {chip} {}", d.elf.display());
                deploy::flash_and_run(&d.elf, chip, probe.as_deref())?;
            }
        }
        Command::Stdp {
            data,
            neurons,
            epochs,
            train_samples,
            label_samples,
            test_samples,
            timesteps,
            sparsity,
            levels,
            prune_every,
            eta,
            threshold,
            theta_plus,
            vote,
            min_spikes,
            seed,
            out,
            resume,
        } => {
            use ember_trainer::stdp;
            let pruning = sparsity > 0.0 || levels > 1;
            let cfg = stdp::StdpConfig {
                neurons,
                timesteps,
                sparsity,
                levels,
                prune_every: if pruning { prune_every } else { 0 },
                eta,
                threshold,
                theta_plus,
                vote,
                min_spikes,
                seed,
                ..Default::default()
            };
            let opts = stdp::StdpOptions {
                data: mnist_dir(data.as_deref())?,
                out: out.clone(),
                cfg,
                epochs,
                train_samples,
                label_samples,
                test_samples,
                resume,
                quiet: !progress,
            };
            let r = stdp::run(&opts)?;
            println!();
            println!(
                "| STDP, {} neurons ({} training images, {}) | value |",
                neurons,
                r.train_images,
                opts.data.display()
            );
            println!("|---|---|");
            println!(
                "| training speed | {:.0} images/s ({:.1} s) |",
                r.images_per_second, r.train_seconds
            );
            println!(
                "| accuracy, float network | {:.2}% |",
                100.0 * r.float.accuracy
            );
            println!(
                "| accuracy, integer runtime (T={}) | {:.2}% |",
                r.runtime.timesteps,
                100.0 * r.runtime.accuracy
            );
            println!(
                "| float/runtime agreement | {:.2}% |",
                100.0 * r.float_runtime_agreement
            );
            println!("| synapses pruned | {:.1}% |", 100.0 * r.sparsity);
            println!(
                "| weight levels | {} ({:.1} bits) |",
                r.config.levels, r.weight_bits
            );
            println!("| model size | {} B |", r.model_bytes);
            println!(
                "| SOPs / inference, energy (0.9 pJ/SOP) | {:.0}, {:.1} nJ |",
                r.runtime.sops_per_inference,
                r.energy_pj_per_inference / 1000.0
            );
            println!("report: {}", out.join("report.json").display());
        }
        Command::Multimodal {
            image_data,
            audio_data,
            image_neurons,
            audio_neurons,
            image_epochs,
            image_train_samples,
            image_eta,
            image_sparsity,
            image_levels,
            audio_epochs,
            pairs,
            label_samples,
            timesteps,
            audio_threshold,
            cross_gain,
            cross_eta,
            cross_x_tar,
            cross_trace_decay,
            fusion,
            fusion_floor,
            fusion_prior,
            pairs_per_recording,
            audio_keep,
            audio_features,
            audio_frames,
            audio_bands,
            audio_augment_snr,
            image_noise,
            audio_snr,
            seed,
            out,
            resume,
        } => {
            use ember_trainer::stdp::StdpConfig;
            if !(0.0..1.0).contains(&image_sparsity) || image_eta.is_nan() || image_eta <= 0.0 {
                return Err(Error::Mismatch {
                    message: format!(
                        "--image-sparsity must be in [0, 1) and --image-eta above 0 (got {image_sparsity} and {image_eta})"
                    ),
                });
            }
            // What both ensembles share; the image's learning rate, pruning and levels are
            // its own options, the audio ensemble keeps the defaults (0.03, unpruned).
            let base = StdpConfig {
                neurons: image_neurons,
                timesteps,
                eta: 0.03,
                threshold: 40.0,
                theta_plus: 0.3,
                seed,
                ..Default::default()
            };
            let image = StdpConfig {
                eta: image_eta,
                prune_every: if image_sparsity > 0.0 { 1000 } else { 0 },
                sparsity: image_sparsity,
                levels: image_levels,
                ..base.clone()
            };
            use ember_trainer::data::fsdd::{FeatureConfig, Kind};
            let features = FeatureConfig {
                frames: audio_frames,
                kind: match audio_features {
                    AudioFeatures::Mel => Kind::LogMel { mels: audio_bands },
                    AudioFeatures::Linear => Kind::LogSpectrogram { bands: audio_bands },
                    AudioFeatures::Mfcc => Kind::Mfcc {
                        mels: 40.max(audio_bands),
                        coefficients: audio_bands,
                    },
                },
            };
            let inputs = features.frames * features.columns();
            let audio = StdpConfig {
                neurons: audio_neurons,
                inputs,
                norm: image.norm * inputs as f32 / 784.0,
                threshold: audio_threshold,
                seed: seed + 1,
                ..base
            };
            let audio_data = match audio_data {
                Some(d) => d,
                None => ember_trainer::data::bundled_fsdd()?,
            };
            let opts = multimodal::MultimodalOptions {
                image_data: mnist_dir(image_data.as_deref())?,
                audio_data,
                out: out.clone(),
                image,
                audio,
                cross: multimodal::CrossConfig {
                    gain: cross_gain,
                    eta: cross_eta,
                    x_tar: cross_x_tar,
                    trace_decay: cross_trace_decay,
                    fusion,
                    fusion_floor,
                    fusion_prior,
                    ..Default::default()
                },
                image_epochs,
                image_train_samples,
                audio_epochs,
                pairs,
                label_samples,
                pairs_per_recording,
                audio_keep,
                audio_features: features,
                audio_augment_snr,
                image_noise,
                audio_snr,
                resume,
                quiet: !progress,
            };
            let r = multimodal::run(&opts)?;
            println!();
            println!(
                "| accuracy on {} test pairs | image alone | audio alone | multimodal |",
                r.test_pairs
            );
            println!("|---|---|---|---|");
            let row = |what: String, p: &multimodal::NoisePoint| {
                println!(
                    "| {what} | {:.2}% | {:.2}% | {:.2}% |",
                    100.0 * p.image,
                    100.0 * p.audio,
                    100.0 * p.multimodal
                )
            };
            row("clean".into(), &r.clean);
            for p in &r.image_noise {
                row(format!("pixel noise {}", p.level.unwrap_or(0.0)), p);
            }
            for p in &r.audio_noise {
                row(format!("audio SNR {} dB", p.level.unwrap_or(0.0)), p);
            }
            if let Some(e) = &r.runtime {
                println!(
                    "exported {}: the integer runtime gives {:.2}% on the {} clean test pairs \
                     ({:.0} SOPs per inference, {} bytes)",
                    out.join("multimodal.ember").display(),
                    100.0 * e.accuracy,
                    e.samples,
                    e.sops_per_inference,
                    e.model_bytes
                );
                println!(
                    "on a board: ember hil --model {} --data {}",
                    out.join("multimodal.ember").display(),
                    out.join("paired-test").display()
                );
            }
            println!("report: {}", out.join("report.json").display());
        }
        Command::Plot {
            reports,
            accuracy,
            spike_rates,
        } => {
            let mut loaded = Vec::new();
            for p in &reports {
                let v: serde_json::Value =
                    serde_json::from_slice(&read(p)?).map_err(|e| Error::Io {
                        path: p.clone(),
                        source: e.into(),
                    })?;
                let name = p
                    .file_name()
                    .map(|n| {
                        n.to_string_lossy()
                            .trim_end_matches(".json")
                            .trim_end_matches(".report")
                            .to_string()
                    })
                    .unwrap_or_default();
                loaded.push((name, v));
            }
            let (acc, rates) = ember_trainer::plot::results_charts(&loaded);
            ember_trainer::plot::line_chart(&acc, &accuracy)?;
            ember_trainer::plot::line_chart(&rates, &spike_rates)?;
            println!("{}\n{}", accuracy.display(), spike_rates.display());
        }
        Command::Demo {
            out,
            epochs,
            diet_epochs,
            hil_samples,
            no_hil,
        } => {
            let start = std::time::Instant::now();
            let mut recipe = Recipe::parse(REF_MLP, Path::new("recipes/ref-mlp.toml"))?;
            if diet_epochs > 0 {
                recipe.diet = Some(ember_trainer::diet::DietSpec {
                    epochs: diet_epochs,
                    // A tenth of the 2,000 bundled images picks the best epoch.
                    holdout: 200,
                    ..Default::default()
                });
            }
            let data = ember_trainer::data::bundled_mnist()?;
            let opts = Options {
                data: data.clone(),
                epochs: Some(epochs),
                train_samples: None,
                progress,
                resume: false,
                init: None,
            };
            let model = out.join("ref-mlp.ember");
            let report = pipeline::train(&recipe, &opts, &out, "ref-mlp.ember")?;
            print_summary(&report, &model);
            let report_json = pipeline::report_path(&model);
            let hil = if no_hil {
                Err("skipped (--no-hil)".to_string())
            } else {
                demo_hil(&model, &data, hil_samples, progress)
            };
            match &hil {
                Ok(r) => {
                    println!(
                        "| qemu-mps2-an386 (Cortex-M4), {} test images | agreement {:.2}%, accuracy {}, {:.0} instructions/inference, flash {} B, RAM {} B |",
                        r.samples,
                        100.0 * r.agreement,
                        r.board_accuracy.map_or("-".into(), |a| format!("{:.2}%", 100.0 * a)),
                        r.instructions_per_inference,
                        r.flash_bytes,
                        r.ram_bytes
                    );
                    add_to_report(
                        &report_json,
                        "hil",
                        serde_json::to_value(r).unwrap_or_default(),
                    )?;
                }
                Err(why) => println!("hardware in the loop: {why}"),
            }
            if let Err(why) = &hil {
                if why.starts_with("failed") {
                    return Err(Error::Mismatch {
                        message: format!("hardware in the loop {why}"),
                    });
                }
            }
            println!(
                "demo done in {:.0} s; model {}, report {}",
                start.elapsed().as_secs_f64(),
                model.display(),
                report_json.display()
            );
            if let Ok(r) = &hil {
                if r.agreement < 1.0 {
                    return Err(Error::Mismatch {
                        message: format!(
                            "the firmware disagrees with the host runtime on {:.2}% of the samples",
                            100.0 * (1.0 - r.agreement)
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Runs the demo's model on qemu-mps2-an386, or says what is missing.
fn demo_hil(
    model: &Path,
    data: &Path,
    samples: usize,
    progress: bool,
) -> std::result::Result<ember_hil::HilReport, String> {
    if !ember_hil::qemu::available() {
        return Err("skipped: qemu-system-arm not found (Debian/Ubuntu: sudo apt-get install qemu-system-arm)".into());
    }
    let firmware = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware");
    if !firmware.join("Cargo.toml").is_file() {
        return Err(format!(
            "skipped: the firmware workspace {} is missing",
            firmware.display()
        ));
    }
    let set = ember_hil::Samples::mnist_test(data, samples).map_err(|e| e.to_string())?;
    if progress {
        eprintln!(
            "building the firmware for qemu-mps2-an386 and running {} test images under QEMU...",
            set.len()
        );
    }
    ember_hil::run(
        ember_hil::Board::QemuMps2An386,
        model,
        &set,
        std::time::Duration::from_secs(300),
    )
    .map_err(|e| format!("failed: {e}"))
}

/// Adds `key: value` to the JSON object in `path`, atomically.
fn add_to_report(path: &Path, key: &str, value: serde_json::Value) -> Result<()> {
    let bad = |e: serde_json::Error| Error::Io {
        path: path.to_path_buf(),
        source: e.into(),
    };
    let mut v: serde_json::Value = serde_json::from_slice(&read(path)?).map_err(bad)?;
    if let Some(o) = v.as_object_mut() {
        o.insert(key.to_string(), value);
    }
    let text = serde_json::to_string_pretty(&v).map_err(bad)?;
    ember_trainer::error::write_atomic(path, text.as_bytes())
}

fn print_summary(r: &Report, model: &Path) {
    let e = &r.snn_int;
    let rates: Vec<String> = e
        .layers
        .iter()
        .map(|l| format!("{:.3}", l.spike_rate))
        .collect();
    println!();
    println!(
        "{} -> {} ({} B, arena {} B)",
        r.model,
        model.display(),
        e.model_bytes,
        e.arena_bytes
    );
    println!(
        "| metric ({} test samples from {}) | value |",
        r.test_samples, r.data
    );
    println!("|---|---|");
    if r.epochs > 0 {
        let rate = r.train_samples_per_second.map_or(String::new(), |v| {
            format!(", {v:.0} samples/s after warm-up")
        });
        println!(
            "| ANN training ({} samples x {} epochs) | {:.1} s{rate} |",
            r.train_samples, r.epochs, r.train_seconds
        );
    }
    println!("| ANN accuracy (float) | {:.2}% |", 100.0 * r.ann_accuracy);
    println!(
        "| SNN accuracy (float, T={}) | {:.2}% |",
        e.timesteps,
        100.0 * r.snn_float_accuracy
    );
    println!(
        "| SNN accuracy (integer runtime, T={}) | {:.2}% |",
        e.timesteps,
        100.0 * e.accuracy
    );
    println!(
        "| float/integer agreement | {:.2}% |",
        100.0 * r.float_int_agreement
    );
    println!("| spike rate per LIF layer | {} |", rates.join(", "));
    println!(
        "| SOPs / MACs per inference | {:.0} / {:.0} |",
        e.sops_per_inference, e.macs_per_inference
    );
    println!(
        "| energy estimate (SOP {} pJ, MAC {} pJ) | {:.1} nJ (dense int8 ANN: {:.1} nJ) |",
        r.energy.sop_pj,
        r.energy.mac_pj,
        r.energy.snn_pj_per_inference / 1000.0,
        r.energy.ann_pj_per_inference / 1000.0
    );
    println!("report: {}", pipeline::report_path(model).display());
}
