//! Comparing the board's results with the host runtime's, and the report.

use ember_runtime::{Engine, Model};
use serde::Serialize;
use std::path::Path;

use crate::qemu::Run;
use crate::{Firmware, Footprint, HilError, Options, Results, Samples};

/// What a HIL run measured. Keys are stable: `ember hil` prints this as JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HilReport {
    /// Board name (`boards/<name>`).
    pub board: &'static str,
    /// The model's name.
    pub model: String,
    /// Samples run.
    pub samples: usize,
    /// `snn`, or `ann-baseline` for the dense int8 ANN baseline (`--ann-baseline`).
    pub mode: &'static str,
    /// Timesteps per inference (the model's default or the `--timesteps` override); 0 for
    /// the ANN baseline, which makes one pass.
    pub timesteps: u16,
    /// Share of samples whose class, readout values and spike counts on the board are
    /// identical to the host runtime's (1.0 = all).
    pub agreement: f64,
    /// Top-1 accuracy of the host runtime on the samples (null without labels).
    pub host_accuracy: Option<f64>,
    /// Top-1 accuracy of the board.
    pub board_accuracy: Option<f64>,
    /// Mean guest instructions per inference (QEMU `-icount`, SysTick).
    pub instructions_per_inference: f64,
    /// Fewest and most instructions of one inference.
    pub instructions_range: (u64, u64),
    /// Mean synaptic operations per inference.
    pub sops_per_inference: f64,
    /// Mean multiply-accumulates per inference.
    pub macs_per_inference: f64,
    /// Least-squares fit `instructions = a + b * MACs + c * SOPs` over the samples: (a, b, c),
    /// so c estimates instructions per SOP. Null when the samples do not vary enough.
    pub cost_fit: Option<(f64, f64, f64)>,
    /// Flash bytes (text + rodata + data).
    pub flash_bytes: u64,
    /// RAM bytes (data + bss + stack reserve).
    pub ram_bytes: u64,
    /// Deepest stack use measured during the run (stack painting).
    pub stack_peak_bytes: u32,
    /// First sample that disagrees, described; null when all agree.
    pub first_disagreement: Option<String>,
}

/// Parses the board's results of `run` and compares them with the host runtime's run of
/// `model` on the same `samples`.
pub fn compare(
    firmware: &Firmware,
    model_path: &Path,
    samples: &Samples,
    run: &Run,
) -> Result<HilReport, HilError> {
    compare_with(firmware, model_path, samples, run, &Options::default())
}

/// [`compare`] for a run made with `options` (the host runs the same timesteps).
pub fn compare_with(
    firmware: &Firmware,
    model_path: &Path,
    samples: &Samples,
    run: &Run,
    options: &Options,
) -> Result<HilReport, HilError> {
    let board = firmware.board.name();
    let bytes = std::fs::read(model_path).map_err(HilError::io(model_path))?;
    let model_err = |source| HilError::Model {
        path: model_path.to_path_buf(),
        source,
    };
    let model = Model::from_bytes(&bytes).map_err(model_err)?;
    let bad = |what: String| HilError::BadResults { board, what };
    let results =
        Results::parse(&run.results, model.classes(), model.desc().layers.len()).map_err(bad)?;
    results.check_calibration().map_err(bad)?;
    if results.records.len() != samples.len() {
        return Err(bad(format!(
            "{} records for {} samples",
            results.records.len(),
            samples.len()
        )));
    }
    let ann = firmware.ann_baseline;
    let timesteps = match ann {
        true => 0,
        false => options.timesteps.unwrap_or(model.timesteps()),
    };
    let host = host_results(&model, samples, ann, timesteps).map_err(|e| match e {
        HostError::Runtime(source) => model_err(source),
        HostError::Ann(what) => bad(format!("the host's ANN baseline: {what}")),
    })?;
    let (mut agree, mut host_right, mut board_right) = (0usize, 0usize, 0usize);
    let mut first_disagreement = None;
    for (i, (rec, host)) in results.records.iter().zip(&host).enumerate() {
        // Class, scores and per-layer counts; for the ANN also its MACs, which depend on
        // nothing but the shapes.
        let same = host.class == rec.class
            && host.readout == rec.readout
            && host.spikes == rec.spikes
            && (!ann || host.macs == rec.macs);
        if same {
            agree += 1;
        } else if first_disagreement.is_none() {
            first_disagreement = Some(format!(
                "sample {i}: host class {} readout {:?} spikes {:?}, board class {} readout {:?} spikes {:?}",
                host.class, host.readout, host.spikes, rec.class, rec.readout, rec.spikes
            ));
        }
        if let Some(labels) = samples.labels() {
            host_right += usize::from(host.class == u16::from(labels[i]));
            board_right += usize::from(rec.class == u16::from(labels[i]));
        }
    }
    let n = samples.len().max(1) as f64;
    let footprint = Footprint::of_elf(&firmware.elf)?;
    let insns: Vec<f64> = results
        .records
        .iter()
        .map(|r| results.instructions(r.ticks))
        .collect();
    let mean = |f: &dyn Fn(usize) -> f64| (0..results.records.len()).map(f).sum::<f64>() / n;
    let rounded = |x: f64| x.round() as u64;
    Ok(HilReport {
        board,
        model: model.desc().name.to_string(),
        samples: samples.len(),
        mode: if ann { "ann-baseline" } else { "snn" },
        timesteps,
        agreement: agree as f64 / n,
        host_accuracy: samples.labels().map(|_| host_right as f64 / n),
        board_accuracy: samples.labels().map(|_| board_right as f64 / n),
        instructions_per_inference: mean(&|i| insns[i]),
        instructions_range: (
            rounded(insns.iter().copied().fold(f64::INFINITY, f64::min)),
            rounded(insns.iter().copied().fold(0.0, f64::max)),
        ),
        sops_per_inference: mean(&|i| results.records[i].sops as f64),
        macs_per_inference: mean(&|i| results.records[i].macs as f64),
        cost_fit: cost_fit(&results, &insns),
        flash_bytes: footprint.flash_bytes,
        ram_bytes: footprint.ram_bytes,
        stack_peak_bytes: results.stack_peak_bytes,
        first_disagreement,
    })
}

/// One inference on the host, in the results file's terms.
struct HostResult {
    class: u16,
    readout: Vec<i32>,
    /// Spikes per layer (SNN) or non-zero activations per layer (ANN).
    spikes: Vec<u32>,
    macs: u64,
}

enum HostError {
    Runtime(ember_runtime::Error),
    Ann(&'static str),
}

/// The host's run of every sample: the runtime's engine for `timesteps`, or the ANN
/// baseline's code (the firmware's own `ann.rs`).
fn host_results(
    model: &Model<'_>,
    samples: &Samples,
    ann: bool,
    timesteps: u16,
) -> Result<Vec<HostResult>, HostError> {
    let inputs = (0..samples.len()).map(|i| samples.input(i));
    if ann {
        let sizes = crate::ann::sizes(model).map_err(HostError::Ann)?;
        let (mut act, mut acc) = (vec![0u8; 2 * sizes.act], vec![0i32; sizes.cols]);
        let (mut mult, mut off) = (vec![0i64; sizes.params], vec![0i64; sizes.params]);
        let mut patch = vec![0u8; sizes.patch];
        let mut scratch = crate::ann::Scratch {
            act: &mut act,
            acc: &mut acc,
            mult: &mut mult,
            off: &mut off,
            patch: &mut patch,
        };
        crate::ann::prepare(model, &mut scratch).map_err(HostError::Ann)?;
        return inputs
            .map(|input| {
                let out = crate::ann::run(model, input, &mut scratch).map_err(HostError::Ann)?;
                Ok(HostResult {
                    class: out.class,
                    readout: out.scores.to_vec(),
                    spikes: out.active[..out.layers].to_vec(),
                    macs: out.macs,
                })
            })
            .collect();
    }
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut engine = Engine::new(model, &mut arena).map_err(HostError::Runtime)?;
    inputs
        .map(|input| {
            let out = engine
                .run_for(input, timesteps)
                .map_err(HostError::Runtime)?;
            Ok(HostResult {
                class: out.class,
                readout: out.readout.to_vec(),
                spikes: out.spikes.to_vec(),
                macs: out.macs,
            })
        })
        .collect()
}

/// Ordinary least squares of instructions on (1, MACs, SOPs), on centred variables;
/// `None` when MACs and SOPs are (nearly) constant or collinear over the samples.
fn cost_fit(results: &Results, insns: &[f64]) -> Option<(f64, f64, f64)> {
    let xs: Vec<(f64, f64)> = results
        .records
        .iter()
        .map(|r| (r.macs as f64, r.sops as f64))
        .collect();
    fit(&xs, insns)
}

fn fit(xs: &[(f64, f64)], ys: &[f64]) -> Option<(f64, f64, f64)> {
    let n = ys.len() as f64;
    let (mx, ms) = (
        xs.iter().map(|x| x.0).sum::<f64>() / n,
        xs.iter().map(|x| x.1).sum::<f64>() / n,
    );
    let my = ys.iter().sum::<f64>() / n;
    let (mut sxx, mut sss, mut sxs, mut sxy, mut ssy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (&(x, s), &y) in xs.iter().zip(ys) {
        let (x, s, y) = (x - mx, s - ms, y - my);
        (sxx, sss, sxs, sxy, ssy) = (
            sxx + x * x,
            sss + s * s,
            sxs + x * s,
            sxy + x * y,
            ssy + s * y,
        );
    }
    let det = sxx * sss - sxs * sxs;
    if det.is_nan() || det <= 1e-9 * sxx * sss {
        return None;
    }
    let per_mac = (sxy * sss - ssy * sxs) / det;
    let per_sop = (ssy * sxx - sxy * sxs) / det;
    Some((my - per_mac * mx - per_sop * ms, per_mac, per_sop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_exact_coefficients() {
        let xs = [(0.0, 1.0), (1.0, 0.0), (2.0, 5.0), (3.0, 2.0)];
        let ys: Vec<f64> = xs.iter().map(|&(m, s)| 7.0 + 2.0 * m + 3.0 * s).collect();
        let (a, b, c) = fit(&xs, &ys).unwrap();
        assert!(
            (a - 7.0).abs() < 1e-9 && (b - 2.0).abs() < 1e-9 && (c - 3.0).abs() < 1e-9,
            "{a} {b} {c}"
        );
    }

    #[test]
    fn no_fit_without_variation() {
        assert_eq!(
            fit(&[(1.0, 1.0), (1.0, 1.0), (1.0, 1.0)], &[1.0, 2.0, 3.0]),
            None
        );
    }
}
