//! `report.json`: the figures measured for one exported model.

use serde::Serialize;

use crate::eval::RuntimeEval;

/// Energy per synaptic operation (accumulate), 45 nm, picojoules.
pub const SOP_PJ: f64 = 0.9;
/// Energy per multiply-accumulate, 45 nm, picojoules.
pub const MAC_PJ: f64 = 4.6;

/// Energy estimate of one inference.
#[derive(Debug, Clone, Serialize)]
pub struct Energy {
    /// pJ per SOP used.
    pub sop_pj: f64,
    /// pJ per MAC used.
    pub mac_pj: f64,
    /// SOPs x sop_pj + MACs x mac_pj, for the integer SNN.
    pub snn_pj_per_inference: f64,
    /// MACs of the same network run as a dense ANN (every synaptic layer, every input).
    pub ann_macs_per_inference: u64,
    /// ann_macs x mac_pj.
    pub ann_pj_per_inference: f64,
}

impl Energy {
    /// The estimate for `eval`, beside a dense ANN of `ann_macs` MACs.
    pub fn new(eval: &RuntimeEval, ann_macs: u64) -> Energy {
        Energy {
            sop_pj: SOP_PJ,
            mac_pj: MAC_PJ,
            snn_pj_per_inference: eval.sops_per_inference * SOP_PJ
                + eval.macs_per_inference * MAC_PJ,
            ann_macs_per_inference: ann_macs,
            ann_pj_per_inference: ann_macs as f64 * MAC_PJ,
        }
    }
}

/// Conversion figures of one LIF layer.
#[derive(Debug, Clone, Serialize)]
pub struct LayerConversion {
    /// Layer index.
    pub layer: usize,
    /// Threshold in ANN units (the calibrated activation percentile).
    pub theta: Option<f32>,
    /// Membrane units per ANN unit: one for the layer, or one per output channel.
    pub scale: Vec<f32>,
    /// Integer threshold stored in the model: one, or one per output channel.
    pub threshold: Option<Vec<i32>>,
    /// Bits per stored weight (8 or 4).
    pub weight_bits: u8,
    /// Fraction of the integer weights that are zero (pruned, or rounded to zero).
    pub sparsity: f64,
}

impl LayerConversion {
    /// The figures of converted layer `s`, quantized as `q` at `weight_bits`.
    pub fn new(
        s: &crate::convert::Synapse,
        q: &crate::quantize::QSynapse,
        weight_bits: u8,
    ) -> LayerConversion {
        let zeros = q.weights.iter().filter(|&&w| w == 0).count();
        LayerConversion {
            layer: s.index,
            theta: s.threshold,
            scale: q.scale.clone(),
            threshold: q.threshold.clone(),
            weight_bits,
            sparsity: zeros as f64 / q.weights.len().max(1) as f64,
        }
    }
}

/// Everything `ember train` / `ember convert` measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Model name.
    pub model: String,
    /// The command line that produced this report.
    pub command: String,
    /// Recipe file.
    pub recipe: String,
    /// Dataset directory.
    pub data: String,
    /// Training samples used (0 when only converting).
    pub train_samples: usize,
    /// Epochs trained (0 when only converting).
    pub epochs: usize,
    /// Wall-clock seconds of ANN training.
    pub train_seconds: f64,
    /// Training throughput (shared/REFERENCE.md): samples per second, wall clock, after 20
    /// warm-up batches; null with fewer than 200 batches after them.
    pub train_samples_per_second: Option<f64>,
    /// Test samples every accuracy below is measured on.
    pub test_samples: usize,
    /// Float ANN top-1 accuracy.
    pub ann_accuracy: f64,
    /// Float (unquantized) SNN accuracy at the model's timesteps.
    pub snn_float_accuracy: f64,
    /// Throughput of the float SNN simulation (candle, batches of 256, no gradients) that
    /// measured `snn_float_accuracy`: test samples per second, wall clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snn_float_samples_per_second: Option<f64>,
    /// Share of test samples where the float and integer SNNs predict the same class.
    pub float_int_agreement: f64,
    /// Integer runtime figures: accuracy, spike rates, SOPs, MACs, sizes.
    pub snn_int: RuntimeEval,
    /// Energy estimate.
    pub energy: Energy,
    /// Thresholds and scales per synaptic layer.
    pub conversion: Vec<LayerConversion>,
    /// Accuracy on held-out training samples (`ember convert --holdout N`): what conversion
    /// settings are chosen on, so the test set stays untouched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout: Option<Holdout>,
    /// The same network converted for other timesteps (`ember convert --sweep-timesteps`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timestep_sweep: Vec<SweepPoint>,
}

/// Accuracies on the last training samples, which calibration does not use.
#[derive(Debug, Clone, Serialize)]
pub struct Holdout {
    /// Held-out samples (the last ones of the training split).
    pub samples: usize,
    /// Float ANN top-1 accuracy on them.
    pub ann_accuracy: f64,
    /// Float SNN accuracy on them.
    pub snn_float_accuracy: f64,
    /// Integer runtime accuracy on them.
    pub snn_int_accuracy: f64,
}

/// The converted network at one number of timesteps.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    /// Timesteps per inference.
    pub timesteps: u16,
    /// Test samples used.
    pub samples: usize,
    /// Float SNN top-1 accuracy.
    pub snn_float_accuracy: f64,
    /// Integer runtime top-1 accuracy.
    pub snn_int_accuracy: f64,
    /// Integer runtime spike rate of each LIF layer.
    pub spike_rates: Vec<f64>,
    /// Integer runtime SOPs per inference.
    pub sops_per_inference: f64,
}
