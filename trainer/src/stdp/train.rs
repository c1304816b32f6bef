//! Training epochs with the pruning schedule, neuron labelling and evaluation.

use super::network::{Network, Scratch};
use crate::data::mnist::Split;
use indicatif::ProgressBar;

/// Seed of the input generator at inference: the exported model restarts the runtime's
/// generator from it at every image, and the float evaluation does the same.
pub const EVAL_SEED: u32 = 0xE3B3;

/// Target sparsity after `done` of `total` training images: Zhu & Gupta's cubic schedule,
/// reaching `final_sparsity` at 80% of the run so that the last images train the pruned net.
pub fn sparsity_at(done: usize, total: usize, final_sparsity: f32) -> f32 {
    let t = (done as f32 / (0.8 * total as f32).max(1.0)).min(1.0);
    final_sparsity * (1.0 - (1.0 - t).powi(3))
}

/// One pass of STDP over `split` (images in order), pruning and quantizing on schedule.
/// `total` is the number of training images in the whole run (for the schedule).
pub fn train_epoch(net: &mut Network, split: &Split, total: usize, bar: &ProgressBar) {
    let mut s = Scratch::new(&net.cfg);
    for i in 0..split.len() {
        let seed = (net.seen as u32).wrapping_mul(0x9E37_79B9) ^ net.cfg.seed as u32;
        net.present(split.image(i), seed, true, &mut s);
        let every = net.cfg.prune_every;
        if every > 0 && net.seen % every == 0 {
            let target = sparsity_at(net.seen, total, net.cfg.sparsity);
            net.prune_and_quantize(target, net.cfg.levels);
        }
        bar.inc(1);
    }
}

/// Labels every neuron with the class it responds to most (mean response per class) over
/// `split`, without learning. Returns how many neurons never spiked.
pub fn label_neurons(net: &mut Network, split: &Split, bar: &ProgressBar) -> usize {
    let n = net.cfg.neurons;
    let mut response = vec![0f64; n * 10];
    let mut per_class = [0usize; 10];
    let mut s = Scratch::new(&net.cfg);
    for i in 0..split.len() {
        net.present(split.image(i), EVAL_SEED, false, &mut s);
        let c = split.labels[i] as usize;
        per_class[c] += 1;
        for j in 0..n {
            response[j * 10 + c] += s.counts[j] as f64;
        }
        bar.inc(1);
    }
    let mut silent = 0;
    for j in 0..n {
        let mean = |c: usize| response[j * 10 + c] / per_class[c].max(1) as f64;
        let best = (0..10).max_by(|&a, &b| mean(a).total_cmp(&mean(b))).unwrap_or(0);
        net.labels[j] = (mean(best) > 0.0).then_some(best as u8);
        silent += (mean(best) == 0.0) as usize;
    }
    silent
}

/// Integer vote weight of a neuron of a class with `members` labelled neurons: the class
/// score is the members' mean spike count, scaled by 64 so that the runtime's integer
/// readout computes nearly the same vote.
pub fn vote_weight(members: usize) -> i32 {
    if members == 0 { 0 } else { ((64.0 / members as f64).round() as i32).max(1) }
}

/// Accuracy of the float network and its mean spikes per image.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Evaluation {
    /// Share of test images whose class vote is right.
    pub accuracy: f64,
    /// Mean excitatory spikes per image.
    pub spikes_per_image: f64,
}

/// Classifies `split` by class vote (integer vote weights, as exported).
pub fn evaluate(net: &mut Network, split: &Split, bar: &ProgressBar) -> Evaluation {
    let (classes, spikes) = vote(net, split, bar);
    let right = classes.iter().zip(&split.labels).filter(|(a, b)| a == b).count();
    Evaluation { accuracy: right as f64 / split.len() as f64, spikes_per_image: spikes as f64 / split.len() as f64 }
}

/// The float network's class for every image of `split`.
pub fn classify(net: &mut Network, split: &Split) -> Vec<u8> {
    vote(net, split, &ProgressBar::hidden()).0
}

/// Class votes and total spikes over `split`.
fn vote(net: &mut Network, split: &Split, bar: &ProgressBar) -> (Vec<u8>, u64) {
    let n = net.cfg.neurons;
    let mut members = [0usize; 10];
    net.labels.iter().flatten().for_each(|&c| members[c as usize] += 1);
    let mut s = Scratch::new(&net.cfg);
    let mut classes = Vec::with_capacity(split.len());
    let mut spikes = 0u64;
    for i in 0..split.len() {
        net.present(split.image(i), EVAL_SEED, false, &mut s);
        let mut score = [0i64; 10];
        for j in 0..n {
            if let Some(c) = net.labels[j] {
                score[c as usize] += s.counts[j] as i64 * vote_weight(members[c as usize]) as i64;
            }
            spikes += s.counts[j] as u64;
        }
        let mut best = 0;
        for c in 1..10 {
            if score[c] > score[best] {
                best = c;
            }
        }
        classes.push(best as u8);
        bar.inc(1);
    }
    (classes, spikes)
}
