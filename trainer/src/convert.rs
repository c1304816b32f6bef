//! ANN-to-SNN conversion by threshold balancing (Diehl et al. 2015, Rueckauer et al. 2017).
//!
//! Each hidden layer `l` gets a threshold `theta_l`: a percentile (default 99.9) of its
//! positive ReLU activations over calibration samples. A spike of layer `l` then stands for
//! the activation `theta_l`, so the layer after it sees effective weights `W * theta_l`; an
//! average pool in between *sums* its `k x k` window in the runtime, so its count is worth
//! `theta_l / k²`. The first layer is driven by raw pixels 0..255 where the ANN saw
//! `x / 255`, so its input unit is worth `1 / 255`. Every value stays in ANN units here;
//! [`crate::quantize`] turns them into integers.
//!
//! With `method = "spikes"` the percentile is taken, layer by layer, of the layer's input
//! current at each timestep of the float SNN in which the layers before are already
//! converted (Rathi et al. 2020, "Enabling deep spiking neural networks with hybrid
//! conversion and spike timing dependent backpropagation"): the threshold then matches what
//! the layer actually receives from spikes, not the ANN's idealised activations.

use crate::data::mnist::Split;
use crate::error::{CandleContext, Error, Result};
use crate::net::{batch_tensor, Net};
use crate::recipe::{Balance, LayerSpec};

/// A synaptic layer of the converted network, in ANN units and candle's weight layout.
#[derive(Debug, Clone)]
pub struct Synapse {
    /// Index of the layer in the recipe.
    pub index: usize,
    /// The layer's description.
    pub spec: LayerSpec,
    /// Input shape `[c, h, w]`.
    pub input: [usize; 3],
    /// Output shape `[c, h, w]`.
    pub output: [usize; 3],
    /// Effective weights `W * (value of one input unit)`, candle layout.
    pub weight: Vec<f32>,
    /// Weight tensor shape (dense `(out, in)`, conv `(co, ci, k, k)`).
    pub weight_shape: Vec<usize>,
    /// Bias per output channel, added at every timestep.
    pub bias: Option<Vec<f32>>,
    /// Firing threshold `theta_l`; `None` for the readout.
    pub threshold: Option<f32>,
}

/// One layer of the converted network.
#[derive(Debug, Clone)]
pub enum SnnLayer {
    /// Dense or conv with LIF or readout neurons.
    Synapse(Synapse),
    /// Average pooling that sums its window (stride = kernel).
    AvgPool {
        /// Window size.
        kernel: usize,
    },
}

/// A converted network in ANN units.
#[derive(Debug, Clone)]
pub struct Snn {
    /// Model name.
    pub name: String,
    /// Timesteps per inference.
    pub timesteps: u16,
    /// Input height, width, channels.
    pub input: [usize; 3],
    /// Layers in order.
    pub layers: Vec<SnnLayer>,
    /// Quantize LIF layers with one scale per output channel ([`crate::quantize`]).
    pub per_channel: bool,
    /// Weight bits and membrane width of the exported model.
    pub format: crate::compress::Format,
}

/// The `p`-th percentile (nearest rank) of `values`; the maximum for 100.
pub fn percentile(values: &mut [f32], p: f64) -> Option<f32> {
    if values.is_empty() {
        return None;
    }
    // The epsilon keeps 99.9% of 1000 at rank 999 despite rounding in p / 100.
    let rank = ((p / 100.0) * values.len() as f64 - 1e-9).ceil() as usize;
    let k = rank.clamp(1, values.len()) - 1;
    let (_, v, _) = values.select_nth_unstable_by(k, f32::total_cmp);
    Some(*v)
}

/// Positive ReLU activations of every hidden synaptic layer over the first `n` samples.
fn activations(net: &Net, data: &Split, n: usize) -> Result<Vec<Vec<f32>>> {
    let hidden = net.recipe.layers.iter().filter(|l| l.is_synaptic()).count() - 1;
    let mut acts = vec![Vec::new(); hidden];
    let n = n.min(data.len());
    for start in (0..n).step_by(128) {
        let images: Vec<&[u8]> = (start..(start + 128).min(n))
            .map(|i| data.image(i))
            .collect();
        let outs = net.forward_all(&batch_tensor(&images, net.recipe.input)?)?;
        for (a, t) in acts.iter_mut().zip(&outs) {
            let v = t
                .flatten_all()
                .ctx("calibration")?
                .to_vec1::<f32>()
                .ctx("calibration")?;
            a.extend(v.into_iter().filter(|&x| x > 0.0));
        }
    }
    Ok(acts)
}

/// Converts a trained ANN, measuring thresholds on the first samples of `calib`, at the
/// recipe's timesteps.
pub fn convert(net: &Net, calib: &Split) -> Result<Snn> {
    convert_at(net, calib, net.recipe.timesteps)
}

/// [`convert`] for `timesteps` steps per inference (the rate rounding and the spiking
/// calibration depend on it).
pub fn convert_at(net: &Net, calib: &Split, timesteps: u16) -> Result<Snn> {
    let r = &net.recipe;
    let c = &r.convert;
    let p = c.percentile.value();
    let mut acts = match c.method {
        Balance::Activations => activations(net, calib, c.calibration_samples)?,
        Balance::Spikes => Vec::new(),
    };
    let shapes = r.shapes()?;
    let last = r.layers.len() - 1;
    let mut unit = 1.0f32 / 255.0;
    let mut hidden = 0;
    let mut snn = Snn {
        name: r.name.clone(),
        timesteps,
        input: r.input,
        layers: Vec::new(),
        per_channel: c.per_channel,
        format: crate::compress::Format::of(r),
    };
    for (i, (spec, params)) in r.layers.iter().zip(&net.params).enumerate() {
        if let LayerSpec::Avgpool { kernel } = *spec {
            unit /= (kernel * kernel) as f32;
            snn.layers.push(SnnLayer::AvgPool { kernel });
            continue;
        }
        let params = params.as_ref().ok_or_else(|| Error::Convert {
            layer: i,
            message: "no weights".into(),
        })?;
        // With quantization-aware training, the weights on the grid the network trained with.
        let w = net.weight(i, params)?;
        let weight: Vec<f32> = w
            .flatten_all()
            .ctx("weights")?
            .to_vec1::<f32>()
            .ctx("weights")?
            .iter()
            .map(|x| x * unit)
            .collect();
        let bias = match &params.bias {
            Some(b) => Some(b.as_tensor().to_vec1::<f32>().ctx("bias")?),
            None => None,
        };
        snn.layers.push(SnnLayer::Synapse(Synapse {
            index: i,
            spec: *spec,
            input: r.input_shape(i)?,
            output: shapes[i],
            weight,
            weight_shape: w.dims().to_vec(),
            bias,
            threshold: None,
        }));
        if i == last {
            break;
        }
        let mut values = match c.method {
            Balance::Activations => std::mem::take(&mut acts[hidden]),
            Balance::Spikes => {
                let steps = c.calibration_timesteps.unwrap_or(timesteps);
                crate::snn::layer_inputs(&snn, calib, c.calibration_samples, steps)?
            }
        };
        let theta = percentile(&mut values, p).ok_or_else(|| Error::Convert {
            layer: i,
            message: "no positive activation on the calibration samples (dead layer); train longer or use more samples".into(),
        })? * c.scale as f32;
        tracing::info!(layer = i, theta, percentile = p, method = ?c.method, "threshold");
        hidden += 1;
        unit = theta;
        if let Some(SnnLayer::Synapse(s)) = snn.layers.last_mut() {
            s.threshold = Some(theta);
            if c.round_rates {
                let half = theta / (2.0 * timesteps as f32);
                let b = s.bias.get_or_insert_with(|| vec![0.0; shapes[i][0]]);
                b.iter_mut().for_each(|x| *x += half);
            }
        }
    }
    Ok(snn)
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentile_nearest_rank() {
        let mut v: Vec<f32> = (1..=1000).map(|x| x as f32).collect();
        assert_eq!(percentile(&mut v, 99.9), Some(999.0));
        assert_eq!(percentile(&mut v, 100.0), Some(1000.0));
        assert_eq!(percentile(&mut v, 50.0), Some(500.0));
        assert_eq!(percentile(&mut [], 50.0), None);
    }
}
