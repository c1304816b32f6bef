//! ANN training: Adam on cross-entropy, seeded shuffling, one progress bar per epoch.

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use indicatif::{ProgressBar, ProgressStyle};

use crate::data::mnist::Split;
use crate::error::{CandleContext, Result};
use crate::net::{batch_tensor, Net, Rng};

/// Progress bars on stderr, hidden when `show` is false (tests, `--quiet`).
pub fn progress(len: usize, prefix: String, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {elapsed} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(prefix);
    bar
}

/// Batches excluded from the throughput figure (allocator and thread-pool warm-up).
pub const WARMUP_BATCHES: usize = 20;
/// Fewest timed batches for a throughput figure (shared/REFERENCE.md).
pub const TIMED_BATCHES: usize = 200;

/// What a training run measured.
#[derive(Debug, Clone, Copy)]
pub struct TrainStats {
    /// Mean loss of the last epoch.
    pub loss: f32,
    /// Training accuracy of the last epoch.
    pub accuracy: f32,
    /// Samples per second, wall clock, after [`WARMUP_BATCHES`]; `None` with fewer than
    /// [`TIMED_BATCHES`] batches after them.
    pub samples_per_second: Option<f64>,
}

/// Trains `net` on `data` for `epochs` passes (Adam, no weight decay).
pub fn train(net: &Net, data: &Split, epochs: usize, show: bool) -> Result<TrainStats> {
    let t = &net.recipe.train;
    let params = ParamsAdamW {
        lr: t.lr,
        weight_decay: 0.0,
        ..ParamsAdamW::default()
    };
    let mut opt = AdamW::new(net.vars(), params).ctx("creating the optimiser")?;
    let mut rng = Rng::new(t.seed ^ 0x5eed);
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut last = (0.0, 0.0);
    let (mut batch_no, mut timed_from, mut timed_samples) = (0usize, None, 0usize);
    for epoch in 0..epochs {
        rng.shuffle(&mut order);
        let batches = order.len().div_ceil(t.batch);
        let bar = progress(batches, format!("epoch {}/{}", epoch + 1, epochs), show);
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        for idx in order.chunks(t.batch) {
            let images: Vec<&[u8]> = idx.iter().map(|&i| data.image(i)).collect();
            let x = batch_tensor(&images, net.recipe.input)?;
            let labels: Vec<u32> = idx.iter().map(|&i| data.labels[i] as u32).collect();
            let y = Tensor::from_vec(labels.clone(), idx.len(), &Device::Cpu).ctx("labels")?;
            let logits = net.forward(&x)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y).ctx("loss")?;
            opt.backward_step(&loss).ctx("optimiser step")?;
            let pred = logits
                .argmax(1)
                .ctx("argmax")?
                .to_vec1::<u32>()
                .ctx("argmax")?;
            correct += pred.iter().zip(&labels).filter(|(p, l)| p == l).count();
            seen += idx.len();
            loss_sum += loss.to_scalar::<f32>().ctx("loss")? as f64 * idx.len() as f64;
            batch_no += 1;
            if batch_no == WARMUP_BATCHES {
                timed_from = Some(std::time::Instant::now());
            } else if batch_no > WARMUP_BATCHES {
                timed_samples += idx.len();
            }
            bar.inc(1);
            bar.set_message(format!(
                "loss {:.4} acc {:.2}%",
                loss_sum / seen as f64,
                100.0 * correct as f64 / seen as f64
            ));
        }
        bar.finish();
        last = (
            (loss_sum / seen as f64) as f32,
            correct as f32 / seen as f32,
        );
        tracing::info!(
            epoch = epoch + 1,
            loss = last.0,
            train_accuracy = last.1,
            "epoch done"
        );
    }
    let timed = batch_no.saturating_sub(WARMUP_BATCHES);
    let samples_per_second = match timed_from {
        Some(t) if timed >= TIMED_BATCHES => Some(timed_samples as f64 / t.elapsed().as_secs_f64()),
        _ => None,
    };
    Ok(TrainStats {
        loss: last.0,
        accuracy: last.1,
        samples_per_second,
    })
}

/// Top-1 accuracy of the ANN on the first `n` samples of `data`.
pub fn accuracy(net: &Net, data: &Split, n: usize) -> Result<f32> {
    let n = n.min(data.len());
    let mut correct = 0;
    for start in (0..n).step_by(256) {
        let end = (start + 256).min(n);
        let images: Vec<&[u8]> = (start..end).map(|i| data.image(i)).collect();
        let logits = net.forward(&batch_tensor(&images, net.recipe.input)?)?;
        let pred = logits
            .argmax(1)
            .ctx("argmax")?
            .to_vec1::<u32>()
            .ctx("argmax")?;
        correct += pred
            .iter()
            .zip(&data.labels[start..end])
            .filter(|(p, &l)| **p == l as u32)
            .count();
    }
    Ok(correct as f32 / n.max(1) as f32)
}
