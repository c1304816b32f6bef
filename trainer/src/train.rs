//! ANN training: Adam on cross-entropy, seeded shuffling, one progress bar per epoch.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor, Var};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::data::mnist::Split;
use crate::error::{CandleContext, Error, Result};
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

/// Where [`train_with`] keeps its per-epoch checkpoint, and whether it continues from it.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoints<'a> {
    /// Directory of `checkpoint.safetensors`, `optimizer.safetensors` and `progress.json`.
    pub dir: &'a Path,
    /// Continue from the checkpoint in `dir` instead of starting afresh.
    pub resume: bool,
    /// Stop after this many epochs of the run, as if interrupted (time-boxed runs, tests).
    pub stop_after: Option<usize>,
}

/// How far a checkpointed run got (`progress.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Progress {
    epochs_done: usize,
    epochs: usize,
    steps: usize,
    seed: u64,
}

/// Adam (Kingma & Ba) whose moments can be saved and restored, so that `--resume`
/// continues exactly where a run stopped.
struct Adam {
    vars: Vec<Var>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    steps: usize,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl Adam {
    fn new(vars: Vec<Var>) -> Result<Adam> {
        let zeros = |v: &Var| v.as_tensor().zeros_like().ctx("optimiser state");
        Ok(Adam {
            m: vars.iter().map(zeros).collect::<Result<_>>()?,
            v: vars.iter().map(zeros).collect::<Result<_>>()?,
            vars,
            steps: 0,
        })
    }

    fn step(&mut self, loss: &Tensor, lr: f64) -> Result<()> {
        let grads = loss.backward().ctx("backward pass")?;
        self.steps += 1;
        let c1 = 1.0 - BETA1.powi(self.steps as i32);
        let c2 = 1.0 - BETA2.powi(self.steps as i32);
        for ((var, m), v) in self.vars.iter().zip(&mut self.m).zip(&mut self.v) {
            let Some(g) = grads.get(var) else { continue };
            let mut adam = || -> candle_core::Result<()> {
                *m = ((m.affine(BETA1, 0.0)? + g.affine(1.0 - BETA1, 0.0)?)?).detach();
                *v = ((v.affine(BETA2, 0.0)? + g.sqr()?.affine(1.0 - BETA2, 0.0)?)?).detach();
                let denom = v.affine(1.0 / c2, 0.0)?.sqrt()?.affine(1.0, EPS)?;
                let update = (m.affine(lr / c1, 0.0)? / denom)?;
                var.set(&var.as_tensor().sub(&update)?)
            };
            adam().ctx("optimiser step")?;
        }
        Ok(())
    }

    fn save(&self, path: &Path) -> Result<()> {
        let mut map = HashMap::new();
        for (i, (m, v)) in self.m.iter().zip(&self.v).enumerate() {
            map.insert(format!("m.{i}"), m.clone());
            map.insert(format!("v.{i}"), v.clone());
        }
        crate::error::save_tensors_atomic(&map, path)
    }

    fn load(&mut self, path: &Path, steps: usize) -> Result<()> {
        let err = |message: String| Error::Checkpoint {
            path: path.to_path_buf(),
            message,
        };
        let mut map =
            candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| err(e.to_string()))?;
        for (i, (m, v)) in self.m.iter_mut().zip(&mut self.v).enumerate() {
            for (name, slot) in [(format!("m.{i}"), m), (format!("v.{i}"), v)] {
                let t = map
                    .remove(&name)
                    .ok_or_else(|| err(format!("no tensor {name}")))?;
                if t.dims() != slot.dims() {
                    return Err(err(format!(
                        "{name} is {:?}, the network needs {:?}",
                        t.dims(),
                        slot.dims()
                    )));
                }
                *slot = t;
            }
        }
        self.steps = steps;
        Ok(())
    }
}

/// The order of the training samples in `epoch`: a function of the seed and the epoch only,
/// so that a resumed run sees the same batches as an uninterrupted one.
fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(seed ^ 0x5eed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .shuffle(&mut order);
    order
}

/// The images `idx` of `data`, each moved by a random offset of up to `shift` pixels in
/// both directions (drawn from `rng`), or borrowed unchanged when `shift` is 0: the
/// translation augmentation of `[train] shift` and `[diet] shift`.
pub fn shifted_batch<'a>(
    data: &'a Split,
    idx: &[usize],
    shape: [usize; 3],
    shift: usize,
    rng: &mut Rng,
) -> Vec<std::borrow::Cow<'a, [u8]>> {
    let s = shift as u64 * 2 + 1;
    idx.iter()
        .map(|&i| {
            if shift == 0 {
                return std::borrow::Cow::Borrowed(data.image(i));
            }
            let dy = (rng.next_u64() % s) as isize - shift as isize;
            let dx = (rng.next_u64() % s) as isize - shift as isize;
            std::borrow::Cow::Owned(shifted(data.image(i), shape, dy, dx))
        })
        .collect()
}

/// `img` (height x width x channels) moved by `(dy, dx)` pixels, zero-filled.
pub fn shifted(img: &[u8], [h, w, c]: [usize; 3], dy: isize, dx: isize) -> Vec<u8> {
    let mut out = vec![0u8; img.len()];
    for y in 0..h as isize {
        let sy = y - dy;
        if sy < 0 || sy >= h as isize {
            continue;
        }
        for x in 0..w as isize {
            let sx = x - dx;
            if sx < 0 || sx >= w as isize {
                continue;
            }
            let (d, s) = (
                ((y * w as isize + x) as usize) * c,
                ((sy * w as isize + sx) as usize) * c,
            );
            out[d..d + c].copy_from_slice(&img[s..s + c]);
        }
    }
    out
}

/// Trains `net` on `data` for `epochs` passes (Adam, no weight decay), without checkpoints.
pub fn train(net: &Net, data: &Split, epochs: usize, show: bool) -> Result<TrainStats> {
    train_with(net, data, epochs, show, None, None)
}

/// The distillation loss `T^2 * KL(softmax(teacher / T) || softmax(student / T))`, averaged
/// over the batch (Hinton et al., 2015); `teacher` is not differentiated.
pub fn distill_loss(student: &Tensor, teacher: &Tensor, temperature: f64) -> Result<Tensor> {
    use candle_core::D;
    let ctx = "distillation loss";
    let t = teacher.detach();
    let log_pt = candle_nn::ops::log_softmax(&(t / temperature).ctx(ctx)?, D::Minus1).ctx(ctx)?;
    let log_ps =
        candle_nn::ops::log_softmax(&(student / temperature).ctx(ctx)?, D::Minus1).ctx(ctx)?;
    let kl = (log_pt.exp().ctx(ctx)? * (log_pt - log_ps).ctx(ctx)?)
        .ctx(ctx)?
        .sum(D::Minus1)
        .ctx(ctx)?
        .mean_all()
        .ctx(ctx)?;
    (kl * (temperature * temperature)).ctx(ctx)
}

/// Trains `net` on `data` for `epochs` passes with the recipe's learning rate, schedule and
/// augmentation. With `ckpt`, writes the weights, the optimiser state and the epoch count
/// into `ckpt.dir` after every epoch (each file atomically), and with `ckpt.resume` starts
/// from them: the result is the same as an uninterrupted run. With `teacher` and the
/// recipe's `train.distill` above 0, the loss mixes in [`distill_loss`] against the
/// teacher's logits on the same (augmented) batch.
pub fn train_with(
    net: &Net,
    data: &Split,
    epochs: usize,
    show: bool,
    ckpt: Option<Checkpoints>,
    teacher: Option<&Net>,
) -> Result<TrainStats> {
    let t = &net.recipe.train;
    let mut opt = Adam::new(net.vars())?;
    let mut pruner = crate::compress::Pruner::new(net)?;
    let mut first_epoch = 0;
    if let Some(c) = ckpt.filter(|c| c.resume) {
        let path = c.dir.join(PROGRESS);
        let text = std::fs::read_to_string(&path).map_err(crate::error::io(&path))?;
        let p: Progress = serde_json::from_str(&text).map_err(|e| Error::Checkpoint {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if p.epochs != epochs || p.seed != t.seed {
            return Err(Error::Checkpoint {
                path,
                message: format!(
                    "it is from a run of {} epochs with seed {}; this run has {epochs} epochs and seed {}",
                    p.epochs, p.seed, t.seed
                ),
            });
        }
        let saved = Net::load(&net.recipe, &c.dir.join(CHECKPOINT))?;
        for (dst, src) in net.vars().iter().zip(saved.vars()) {
            dst.set(src.as_tensor()).ctx("restoring weights")?;
        }
        opt.load(&c.dir.join(OPTIMIZER), p.steps)?;
        if let Some(pr) = pruner.as_mut() {
            pr.load(&c.dir.join(crate::compress::MASKS))?;
            pr.apply(net)?;
        }
        first_epoch = p.epochs_done;
        tracing::info!(dir = %c.dir.display(), epochs_done = first_epoch, "resuming");
    }
    let total_steps = epochs * data.len().div_ceil(t.batch);
    let shape = net.recipe.input;
    let mut last = (0.0, 0.0);
    let (mut batch_no, mut timed_from, mut timed_samples) = (0usize, None, 0usize);
    let last_epoch = ckpt
        .and_then(|c| c.stop_after)
        .unwrap_or(epochs)
        .min(epochs);
    for epoch in first_epoch..last_epoch {
        let order = epoch_order(data.len(), t.seed, epoch);
        let mut aug =
            Rng::new(t.seed ^ 0xa065 ^ (epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        let batches = order.len().div_ceil(t.batch);
        let bar = progress(batches, format!("epoch {}/{}", epoch + 1, epochs), show);
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        for idx in order.chunks(t.batch) {
            let moved = shifted_batch(data, idx, shape, t.shift, &mut aug);
            let images: Vec<&[u8]> = moved.iter().map(|v| v.as_ref()).collect();
            let x = batch_tensor(&images, shape)?;
            let labels: Vec<u32> = idx.iter().map(|&i| data.labels[i] as u32).collect();
            let y = Tensor::from_vec(labels.clone(), idx.len(), &Device::Cpu).ctx("labels")?;
            let logits = net.forward(&x)?;
            let mut loss = candle_nn::loss::cross_entropy(&logits, &y).ctx("loss")?;
            if let Some(teacher) = teacher.filter(|_| t.distill > 0.0) {
                let soft = distill_loss(&logits, &teacher.forward(&x)?, t.distill_temperature)?;
                loss = ((loss * (1.0 - t.distill)).ctx("loss")?
                    + (soft * t.distill).ctx("loss")?)
                .ctx("loss")?;
            }
            let lr = t.schedule.rate(t.lr, opt.steps, total_steps);
            opt.step(&loss, lr)?;
            if let Some(pr) = pruner.as_mut() {
                pr.after_step(net, opt.steps, total_steps)?;
            }
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
                "loss {:.4} acc {:.2}% lr {lr:.2e}",
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
        if let Some(c) = ckpt {
            net.save(&c.dir.join(CHECKPOINT))?;
            opt.save(&c.dir.join(OPTIMIZER))?;
            if let Some(pr) = &pruner {
                pr.save(&c.dir.join(crate::compress::MASKS))?;
            }
            let p = Progress {
                epochs_done: epoch + 1,
                epochs,
                steps: opt.steps,
                seed: t.seed,
            };
            let json = serde_json::to_string_pretty(&p).map_err(|e| Error::Io {
                path: c.dir.join(PROGRESS),
                source: e.into(),
            })?;
            crate::error::write_atomic(&c.dir.join(PROGRESS), json.as_bytes())?;
        }
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

/// The weights written after every epoch (and read by `ember convert`).
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// Adam's moments, for `--resume`.
pub const OPTIMIZER: &str = "optimizer.safetensors";
/// Epochs done, steps taken and the run's settings, for `--resume`.
pub const PROGRESS: &str = "progress.json";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distill_loss_is_the_softened_kl_divergence() {
        let dev = Device::Cpu;
        let teacher = Tensor::new(&[[2.0f32, 0.0, -1.0], [0.5, 0.5, 3.0]], &dev).unwrap();
        // The same logits: no divergence.
        let same = distill_loss(&teacher, &teacher, 4.0).unwrap();
        assert!(same.to_scalar::<f32>().unwrap().abs() < 1e-6);
        // Other logits: T^2 * mean over rows of sum p_t (log p_t - log p_s), by hand.
        let student = Tensor::new(&[[0.0f32, 1.0, 0.0], [1.0, -2.0, 0.5]], &dev).unwrap();
        let t = 2.0f64;
        let lsm = |row: &[f32]| {
            let z: Vec<f64> = row.iter().map(|&v| v as f64 / t).collect();
            let m = z.iter().cloned().fold(f64::MIN, f64::max);
            let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
            z.iter().map(|v| v - m - s.ln()).collect::<Vec<_>>()
        };
        let (tv, sv) = (
            teacher.to_vec2::<f32>().unwrap(),
            student.to_vec2::<f32>().unwrap(),
        );
        let mut want = 0.0;
        for (tr, sr) in tv.iter().zip(&sv) {
            let (lt, ls) = (lsm(tr), lsm(sr));
            want += lt
                .iter()
                .zip(&ls)
                .map(|(a, b)| a.exp() * (a - b))
                .sum::<f64>();
        }
        want = want / 2.0 * t * t;
        let got = distill_loss(&student, &teacher, t).unwrap();
        let got = got.to_scalar::<f32>().unwrap() as f64;
        assert!(want > 0.01 && (got - want).abs() < 1e-5, "{got} vs {want}");
    }
}
