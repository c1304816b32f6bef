//! The stages of `ember train` and `ember convert`: train the ANN, convert, quantize, export,
//! evaluate, report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::data::mnist::{Mnist, Split};
use crate::diet::accuracy_of;
use crate::error::{Error, Result};
use crate::eval::{evaluate, RuntimeEval};
use crate::net::Net;
use crate::quantize::QLayer;
use crate::recipe::{LayerSpec, Recipe};
use crate::report::{Energy, Holdout, LayerConversion, Report, SweepPoint};

/// Where the outputs go and how the stages run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Dataset directory (full MNIST or the bundled subset).
    pub data: PathBuf,
    /// Override of the recipe's epochs.
    pub epochs: Option<usize>,
    /// Use at most this many training samples.
    pub train_samples: Option<usize>,
    /// Show progress bars.
    pub progress: bool,
    /// Continue an interrupted `ember train` from the checkpoint in its output directory.
    pub resume: bool,
    /// Start `ember train` from this checkpoint's weights instead of a fresh initialisation.
    pub init: Option<PathBuf>,
}

/// Loads MNIST and checks that its images fit the recipe.
pub fn load_data(recipe: &Recipe, dir: &Path) -> Result<Mnist> {
    let m = Mnist::load(dir)?;
    let [h, w, c] = recipe.input;
    if (m.train.rows, m.train.cols, 1) != (h, w, c) || (m.test.rows, m.test.cols) != (h, w) {
        return Err(Error::Mismatch {
            message: format!(
                "{}: images are {}x{}x1, recipe {} takes {h}x{w}x{c}",
                dir.display(),
                m.train.rows,
                m.train.cols,
                recipe.path.display()
            ),
        });
    }
    Ok(m)
}

/// Trains the recipe's ANN and writes `checkpoint.safetensors`, `model.ember` and
/// `report.json` into `out`.
pub fn train(recipe: &Recipe, opts: &Options, out: &Path, model_name: &str) -> Result<Report> {
    std::fs::create_dir_all(out).map_err(crate::error::io(out))?;
    let mut data = load_data(recipe, &opts.data)?;
    if let Some(n) = opts.train_samples {
        data.train.truncate(n);
    }
    let epochs = opts.epochs.unwrap_or(recipe.train.epochs);
    let net = match &opts.init {
        Some(path) => {
            tracing::info!(checkpoint = %path.display(), "starting from trained weights");
            Net::load(recipe, path)?
        }
        None => Net::init(recipe)?,
    };
    // Distillation's teacher: the network training starts from, frozen.
    let teacher = match (&opts.init, recipe.train.distill > 0.0) {
        (Some(path), true) => Some(Net::load(recipe, path)?),
        (None, true) => {
            return Err(Error::Recipe {
                path: recipe.path.clone(),
                message: "train.distill needs a teacher: start from trained weights with `ember train --init CHECKPOINT`".into(),
            })
        }
        (_, false) => None,
    };
    tracing::info!(recipe = %recipe.path.display(), samples = data.train.len(), epochs, "training the ANN");
    let start = Instant::now();
    let ckpt = Some(crate::train::Checkpoints {
        dir: out,
        resume: opts.resume,
        stop_after: None,
    });
    let stats = match &recipe.diet {
        // DIET keeps the best epoch on the last training samples: the ANN must not see them.
        Some(d) => {
            let mut ann = data.train.clone();
            ann.truncate(ann.len() - crate::diet::holdout(d, ann.len()));
            crate::train::train_with(&net, &ann, epochs, opts.progress, ckpt, teacher.as_ref())?
        }
        None => crate::train::train_with(
            &net,
            &data.train,
            epochs,
            opts.progress,
            ckpt,
            teacher.as_ref(),
        )?,
    };
    let train_seconds = start.elapsed().as_secs_f64();
    tracing::info!(seconds = train_seconds, "training done");
    net.save(&out.join(crate::train::CHECKPOINT))?;
    let model = out.join(model_name);
    let train_samples_per_second = stats.samples_per_second;
    if recipe.diet.is_some() {
        // Convert, fine-tune (DIET-SNN / STDB), export, evaluate.
        let mut d = crate::diet::finish(&net, &data, &model, opts, None)?;
        d.base = Report {
            train_samples: d.diet.train_samples,
            epochs,
            train_seconds,
            train_samples_per_second,
            ..d.base
        };
        crate::diet::write_report(&d, &report_path(&model))?;
        return Ok(d.base);
    }
    let report = finish(&net, &data, &model, opts)?;
    let report = Report {
        train_samples: data.train.len(),
        epochs,
        train_seconds,
        train_samples_per_second,
        ..report
    };
    write_report(&report, &report_path(&model))?;
    Ok(report)
}

/// Where the report of `model` goes: `report.json` beside `model.ember`, else
/// `<stem>.report.json`.
pub fn report_path(model: &Path) -> PathBuf {
    if model.file_name().is_some_and(|n| n == "model.ember") {
        model.with_file_name("report.json")
    } else {
        model.with_extension("report.json")
    }
}

/// Writes a report as pretty JSON, atomically.
pub fn write_report(report: &Report, path: &Path) -> Result<()> {
    let json = serde_json::to_string_pretty(report).map_err(|e| Error::Io {
        path: path.into(),
        source: e.into(),
    })?;
    crate::error::write_atomic(path, json.as_bytes())
}

/// MACs of the network run as a dense ANN on one sample.
pub fn ann_macs(recipe: &Recipe) -> Result<u64> {
    let shapes = recipe.shapes()?;
    let mut macs = 0u64;
    for (i, l) in recipe.layers.iter().enumerate() {
        let [ci, ..] = recipe.input_shape(i)?;
        let [co, h, w] = shapes[i];
        macs += match *l {
            LayerSpec::Dense { outputs, .. } => {
                let [c, ih, iw] = recipe.input_shape(i)?;
                (c * ih * iw * outputs) as u64
            }
            LayerSpec::Conv { kernel, .. } => (h * w * co * kernel * kernel * ci) as u64,
            LayerSpec::Avgpool { .. } => 0,
        };
    }
    Ok(macs)
}

/// Converts a trained net, writes the model to `model`, evaluates it on the test split and
/// returns the report (training fields zero).
pub fn finish(net: &Net, data: &Mnist, model: &Path, opts: &Options) -> Result<Report> {
    let recipe = &net.recipe;
    let test: &Split = &data.test;
    let ann_accuracy = crate::train::accuracy(net, test, test.len())? as f64;
    tracing::info!(ann_accuracy, "float ANN on the test set");
    let snn = crate::convert::convert(net, &data.train)?;
    let sim_start = Instant::now();
    let sim = crate::snn::simulate_with_progress(
        &snn,
        test,
        test.len(),
        recipe.timesteps,
        opts.progress,
    )?;
    let sim_seconds = sim_start.elapsed().as_secs_f64();
    let q = crate::quantize::quantize(&snn)?;
    let bytes = crate::export::write(&q, model)?;
    tracing::info!(path = %model.display(), bytes = bytes.len(), "model written");
    let int: RuntimeEval = evaluate(&bytes, model, test, test.len(), None, opts.progress)?;
    let snn_float_accuracy = accuracy_of(&sim.classes, &test.labels);
    let agree = crate::eval::agreement(&sim.classes, &int.classes);
    let conversion = snn
        .layers
        .iter()
        .zip(&q.layers)
        .filter_map(|(s, q)| match (s, q) {
            (crate::convert::SnnLayer::Synapse(s), QLayer::Synapse(q)) => {
                Some(LayerConversion::new(s, q, snn.format.bits))
            }
            _ => None,
        })
        .collect();
    let energy = Energy::new(&int, ann_macs(recipe)?);
    Ok(Report {
        model: recipe.name.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        recipe: recipe.path.display().to_string(),
        data: opts.data.display().to_string(),
        train_samples: 0,
        epochs: 0,
        train_seconds: 0.0,
        train_samples_per_second: None,
        test_samples: test.len(),
        ann_accuracy,
        snn_float_accuracy,
        snn_float_samples_per_second: Some(test.len() as f64 / sim_seconds.max(1e-9)),
        float_int_agreement: agree,
        snn_int: int,
        energy,
        conversion,
        holdout: None,
        timestep_sweep: Vec::new(),
    })
}

/// Converts `net` at its recipe's timesteps and measures the ANN, the float SNN and the
/// integer runtime on the last `n` training samples (calibration uses the first ones).
pub fn holdout(net: &Net, data: &Mnist, n: usize, show: bool) -> Result<Holdout> {
    let train = &data.train;
    let n = n.min(train.len());
    let mut held = train.clone();
    held.images
        .drain(..(train.len() - n) * train.rows * train.cols);
    held.labels.drain(..train.len() - n);
    let snn = crate::convert::convert(net, train)?;
    let sim = crate::snn::simulate_with_progress(&snn, &held, n, net.recipe.timesteps, show)?;
    let bytes = crate::export::encode(&crate::quantize::quantize(&snn)?)?;
    let int = evaluate(&bytes, Path::new("<holdout>"), &held, n, None, show)?;
    Ok(Holdout {
        samples: n,
        ann_accuracy: crate::train::accuracy(net, &held, n)? as f64,
        snn_float_accuracy: accuracy_of(&sim.classes, &held.labels),
        snn_int_accuracy: int.accuracy,
    })
}

/// The network converted for each of `steps` timesteps (thresholds recalibrated, rate
/// rounding for that T), simulated in float and run by the integer runtime on the first
/// `n` test samples.
pub fn timestep_sweep(
    net: &Net,
    data: &Mnist,
    steps: &[u16],
    n: usize,
    show: bool,
) -> Result<Vec<SweepPoint>> {
    let test = &data.test;
    let n = n.min(test.len());
    let mut out = Vec::new();
    for &t in steps {
        let snn = crate::convert::convert_at(net, &data.train, t)?;
        let sim = crate::snn::simulate_with_progress(&snn, test, n, t, show)?;
        let bytes = crate::export::encode(&crate::quantize::quantize(&snn)?)?;
        let int = evaluate(&bytes, Path::new("<sweep>"), test, n, None, show)?;
        let p = SweepPoint {
            timesteps: t,
            samples: n,
            snn_float_accuracy: accuracy_of(&sim.classes, &test.labels),
            snn_int_accuracy: int.accuracy,
            spike_rates: int.layers.iter().map(|l| l.spike_rate).collect(),
            sops_per_inference: int.sops_per_inference,
        };
        tracing::info!(
            timesteps = t,
            float = p.snn_float_accuracy,
            int = p.snn_int_accuracy,
            "sweep"
        );
        out.push(p);
    }
    Ok(out)
}

/// A PNG of accuracy against timesteps: float SNN, integer runtime and the ANN.
pub fn sweep_plot(report: &Report, path: &Path) -> Result<()> {
    use crate::plot::{line_chart, Chart, Series};
    let pts = |f: &dyn Fn(&SweepPoint) -> f64| -> Vec<(f64, f64)> {
        report
            .timestep_sweep
            .iter()
            .map(|p| (p.timesteps as f64, 100.0 * f(p)))
            .collect()
    };
    let ann = 100.0 * report.ann_accuracy;
    let xs: Vec<f64> = report
        .timestep_sweep
        .iter()
        .map(|p| p.timesteps as f64)
        .collect();
    let chart = Chart {
        title: format!("{}: converted SNN accuracy against timesteps", report.model),
        x_label: "timesteps T".into(),
        y_label: "test accuracy (%)".into(),
        log_x: true,
        series: vec![
            Series {
                name: "float SNN".into(),
                points: pts(&|p| p.snn_float_accuracy),
            },
            Series {
                name: "integer runtime".into(),
                points: pts(&|p| p.snn_int_accuracy),
            },
            Series {
                name: format!("ANN ({} test samples)", report.test_samples),
                points: xs.iter().map(|&x| (x, ann)).collect(),
            },
        ],
    };
    line_chart(&chart, path)
}
