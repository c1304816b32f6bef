//! Training epochs with the pruning schedule, neuron labelling and evaluation.

use super::network::{Network, Scratch, Vote};
use crate::data::mnist::Split;
use indicatif::ProgressBar;

/// Training images between two calls of a training probe ([`train_epoch_with`]): `ember
/// stdp` shows a running accuracy at this interval.
pub const PROBE_EVERY: usize = 5_000;

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
/// Images that stay below `cfg.min_spikes` spikes are shown again with doubled intensity, up
/// to `MAX_BOOSTS` times (Diehl & Cook's remedy for images that teach nothing). Returns how
/// many presentations were boosted.
pub fn train_epoch(net: &mut Network, split: &Split, total: usize, bar: &ProgressBar) -> usize {
    train_epoch_with(net, split, total, bar, &mut |_| {})
}

/// [`train_epoch`] that also calls `probe` with the network after every [`PROBE_EVERY`]
/// training images (`net.seen` a multiple of it); `probe` cannot change the network.
pub fn train_epoch_with(
    net: &mut Network,
    split: &Split,
    total: usize,
    bar: &ProgressBar,
    probe: &mut dyn FnMut(&Network),
) -> usize {
    const MAX_BOOSTS: u32 = 3;
    let mut s = Scratch::new(&net.cfg);
    let mut boosted = vec![0u8; net.cfg.inputs];
    let mut boosts = 0;
    for i in 0..split.len() {
        let seed = (net.seen as u32).wrapping_mul(0x9E37_79B9) ^ net.cfg.seed as u32;
        boosted.copy_from_slice(split.image(i));
        for attempt in 0..=MAX_BOOSTS {
            net.present(&boosted, seed.wrapping_add(attempt), true, &mut s);
            if attempt == MAX_BOOSTS || s.counts.iter().sum::<u32>() >= net.cfg.min_spikes {
                break;
            }
            boosted.iter_mut().for_each(|p| *p = p.saturating_mul(2));
            boosts += 1;
        }
        net.seen += 1;
        let every = net.cfg.prune_every;
        if every > 0 && net.seen % every == 0 {
            let target = sparsity_at(net.seen, total, net.cfg.sparsity);
            net.prune_and_quantize(target, net.cfg.levels);
        }
        if net.seen % PROBE_EVERY == 0 {
            probe(net);
        }
        bar.inc(1);
    }
    boosts
}

/// Trains on the rest of the current epoch of `train` (resuming inside it after a
/// checkpoint: the images of this epoch already seen are skipped). Call it until `net.seen`
/// reaches `total`, checkpointing between calls.
pub fn train_rest_of_epoch(net: &mut Network, train: &Split, total: usize, bar: &ProgressBar) {
    train_rest_of_epoch_with(net, train, total, bar, &mut |_| {});
}

/// [`train_rest_of_epoch`] with a `probe` as in [`train_epoch_with`].
pub fn train_rest_of_epoch_with(
    net: &mut Network,
    train: &Split,
    total: usize,
    bar: &ProgressBar,
    probe: &mut dyn FnMut(&Network),
) {
    let mut rest = train.clone();
    rest.skip(net.seen % train.len().max(1));
    train_epoch_with(net, &rest, total, bar, probe);
}

/// Labels every neuron from its responses to `split` (no learning) and sets the vote
/// weights by `net.cfg.vote`. Returns how many neurons never spiked.
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
    // Mean response of each neuron to each class.
    for j in 0..n {
        for c in 0..10 {
            response[j * 10 + c] /= per_class[c].max(1) as f64;
        }
    }
    let best = |j: usize| {
        (0..10)
            .max_by(|&a, &b| response[j * 10 + a].total_cmp(&response[j * 10 + b]))
            .unwrap_or(0)
    };
    let silent = (0..n)
        .filter(|&j| response[j * 10 + best(j)] == 0.0)
        .count();
    net.votes.fill(0);
    match net.cfg.vote {
        Vote::Hard => {
            let mut members = [0usize; 10];
            let labels: Vec<Option<usize>> = (0..n)
                .map(|j| (response[j * 10 + best(j)] > 0.0).then(|| best(j)))
                .collect();
            labels.iter().flatten().for_each(|&c| members[c] += 1);
            for (j, l) in labels.iter().enumerate() {
                if let Some(c) = *l {
                    net.votes[j * 10 + c] = ((64.0 / members[c] as f64).round() as i32).max(1);
                }
            }
        }
        Vote::Soft => {
            for j in 0..n {
                let total: f64 = response[j * 10..j * 10 + 10].iter().sum();
                if total > 0.0 {
                    for c in 0..10 {
                        net.votes[j * 10 + c] =
                            (64.0 * response[j * 10 + c] / total).round() as i32;
                    }
                }
            }
        }
    }
    silent
}

/// Accuracy of the float network and its mean spikes per image.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Evaluation {
    /// Share of test images whose class vote is right.
    pub accuracy: f64,
    /// Mean excitatory spikes per image.
    pub spikes_per_image: f64,
}

/// Classifies `split` by the integer class votes, as the exported readout does.
pub fn evaluate(net: &mut Network, split: &Split, bar: &ProgressBar) -> Evaluation {
    let (classes, spikes) = vote(net, split, bar);
    let right = classes
        .iter()
        .zip(&split.labels)
        .filter(|(a, b)| a == b)
        .count();
    Evaluation {
        accuracy: right as f64 / split.len() as f64,
        spikes_per_image: spikes as f64 / split.len() as f64,
    }
}

/// The float network's class for every image of `split`.
pub fn classify(net: &mut Network, split: &Split) -> Vec<u8> {
    vote(net, split, &ProgressBar::hidden()).0
}

/// Class votes and total spikes over `split`.
fn vote(net: &mut Network, split: &Split, bar: &ProgressBar) -> (Vec<u8>, u64) {
    let n = net.cfg.neurons;
    let mut s = Scratch::new(&net.cfg);
    let mut classes = Vec::with_capacity(split.len());
    let mut spikes = 0u64;
    for i in 0..split.len() {
        net.present(split.image(i), EVAL_SEED, false, &mut s);
        let mut score = [0i64; 10];
        for j in 0..n {
            for (c, sc) in score.iter_mut().enumerate() {
                *sc += s.counts[j] as i64 * net.votes[j * 10 + c] as i64;
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
