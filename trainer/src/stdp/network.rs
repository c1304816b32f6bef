//! The STDP network's state and its simulation of one image presentation.

use ember_runtime::Xorshift32;
use serde::{Deserialize, Serialize};

/// Hyperparameters of the network, its learning rule and its pruning schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StdpConfig {
    /// Excitatory neurons.
    pub neurons: usize,
    /// Inputs (784 for MNIST).
    pub inputs: usize,
    /// Timesteps an image is presented.
    pub timesteps: u16,
    /// Learning rate.
    pub eta: f32,
    /// Target presynaptic trace: inputs with a lower trace at a post spike are depressed.
    pub x_tar: f32,
    /// Weight-dependence exponent.
    pub mu: f32,
    /// Largest weight.
    pub w_max: f32,
    /// Sum of each neuron's incoming weights after normalisation.
    pub norm: f32,
    /// Base firing threshold (weight units).
    pub threshold: f32,
    /// Threshold increase per spike (homeostasis).
    pub theta_plus: f32,
    /// Per-image decay factor of the adaptive threshold.
    pub theta_decay: f32,
    /// Membrane leak per step, a multiple of 2^-15 so that the runtime has it exactly.
    pub leak: f32,
    /// Membrane drop per spike of another neuron.
    pub inhibition: f32,
    /// Per-step decay of the presynaptic trace.
    pub trace_decay: f32,
    /// Seed of the weights and of the input spike generator.
    pub seed: u64,
    /// Prune and quantize every this many training images (0: never).
    pub prune_every: usize,
    /// Final fraction of pruned synapses.
    pub sparsity: f32,
    /// Conductance levels of the quantized weights (0: no quantization).
    pub levels: u32,
    /// How labelled neurons vote for a class.
    #[serde(default)]
    pub vote: Vote,
    /// Share of the adaptive threshold kept after training (labelling, evaluation, export):
    /// below 1, neurons fire more often on test images, so votes are less noisy.
    #[serde(default = "one")]
    pub test_theta_scale: f32,
    /// Training images that make fewer spikes than this are shown again, brighter.
    #[serde(default)]
    pub min_spikes: u32,
    /// While learning, let only the strongest of the neurons that cross their threshold in
    /// the same step fire (so that two neurons do not learn the same image).
    #[serde(default)]
    pub wta_learning: bool,
}

fn one() -> f32 {
    1.0
}

/// How the class scores are read from the neurons' spike counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
pub enum Vote {
    /// Diehl & Cook: each neuron votes for the class it responds to most; a class's score is
    /// the mean spike count of its neurons.
    Hard,
    /// Each neuron's spikes count for every class in proportion to how often that class made
    /// it fire on the labelling images.
    #[default]
    Soft,
}

impl Default for StdpConfig {
    fn default() -> Self {
        StdpConfig {
            neurons: 100,
            inputs: 784,
            timesteps: 32,
            eta: 0.01,
            x_tar: 0.3,
            mu: 0.2,
            w_max: 1.0,
            norm: 78.0,
            threshold: 160.0,
            theta_plus: 1.0,
            theta_decay: 0.9999,
            leak: 30720.0 / 32768.0,
            inhibition: 400.0,
            trace_decay: 0.8,
            seed: 1,
            prune_every: 0,
            sparsity: 0.0,
            levels: 0,
            vote: Vote::Soft,
            test_theta_scale: 1.0,
            min_spikes: 5,
            wta_learning: true,
        }
    }
}

/// Weights, adaptive thresholds, pruning mask and neuron labels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    /// The hyperparameters.
    pub cfg: StdpConfig,
    /// `neurons x inputs`, neuron-major.
    pub w: Vec<f32>,
    /// Adaptive threshold of each neuron, added to `cfg.threshold`.
    pub theta: Vec<f32>,
    /// False where a synapse was pruned.
    pub alive: Vec<bool>,
    /// Integer vote of each neuron for each class, `neurons x 10` (zero until labelled):
    /// a class's score is the sum over neurons of spike count x vote.
    pub votes: Vec<i32>,
    /// Training images seen.
    pub seen: usize,
}

/// Power-law weight-dependent STDP at a post spike: `w + eta (x - x_tar) (w_max - w)^mu`,
/// kept in [0, w_max]. `x` is the presynaptic trace.
pub(crate) fn power_law(w: f32, x: f32, eta: f32, x_tar: f32, w_max: f32, mu: f32) -> f32 {
    let dw = eta * (x - x_tar) * (w_max - w).max(0.0).powf(mu);
    (w + dw).clamp(0.0, w_max)
}

/// Scratch buffers reused across presentations (no allocation per step).
pub(crate) struct Scratch {
    u: Vec<f32>,
    /// Membranes before firing, for the winner-take-all choice while learning.
    u_pre: Vec<f32>,
    trace: Vec<f32>,
    active: Vec<u32>,
    /// Neurons that fired at the last step.
    pub fired: Vec<u32>,
    /// Spikes per neuron since the last rest.
    pub counts: Vec<u32>,
}

impl Scratch {
    pub fn new(cfg: &StdpConfig) -> Self {
        Scratch {
            u: vec![0.0; cfg.neurons],
            u_pre: vec![0.0; cfg.neurons],
            trace: vec![0.0; cfg.inputs],
            active: Vec::with_capacity(cfg.inputs),
            fired: Vec::with_capacity(cfg.neurons),
            counts: vec![0; cfg.neurons],
        }
    }
}

impl Network {
    /// Random initial weights in [0, 0.3 w_max], then normalised.
    pub fn new(cfg: StdpConfig) -> Network {
        let mut rng = Xorshift32::new(cfg.seed as u32 ^ 0x5EED);
        let n = cfg.neurons * cfg.inputs;
        let w = (0..n)
            .map(|_| (rng.next() >> 8) as f32 / (1u32 << 24) as f32 * 0.3 * cfg.w_max)
            .collect();
        let mut net = Network {
            theta: vec![0.0; cfg.neurons],
            alive: vec![true; n],
            votes: vec![0; cfg.neurons * 10],
            seen: 0,
            w,
            cfg,
        };
        for j in 0..net.cfg.neurons {
            net.normalise(j);
        }
        net
    }

    /// Scales neuron `j`'s live weights to sum `norm` (capped at w_max).
    fn normalise(&mut self, j: usize) {
        let row = &mut self.w[j * self.cfg.inputs..(j + 1) * self.cfg.inputs];
        let sum: f32 = row.iter().sum();
        if sum > 0.0 {
            let k = self.cfg.norm / sum;
            row.iter_mut()
                .for_each(|w| *w = (*w * k).min(self.cfg.w_max));
        }
    }

    /// Presents one image for `cfg.timesteps` steps; with `learn`, applies STDP, homeostasis
    /// and normalisation. Spike counts per neuron end up in `s.counts`. `seed` restarts the
    /// input generator, as the runtime does at every inference.
    pub(crate) fn present(&mut self, image: &[u8], seed: u32, learn: bool, s: &mut Scratch) {
        self.rest(s);
        let mut rng = Xorshift32::new(seed);
        for _ in 0..self.cfg.timesteps {
            self.step(image, &mut rng, None, learn, s);
        }
        self.settle(learn, s);
    }

    /// Resets the state before a presentation: membranes, traces and spike counts.
    pub(crate) fn rest(&self, s: &mut Scratch) {
        s.u.fill(0.0);
        s.trace.fill(0.0);
        s.counts.fill(0);
    }

    /// One timestep: input spikes drawn from `image` by `rng`, leak, the input current plus
    /// `extra` (a current per neuron from outside the layer, e.g. cross-modal synapses), fire
    /// with reset to zero, lateral inhibition, and with `learn` STDP and homeostasis. The
    /// neurons that fired are left in `s.fired`.
    pub(crate) fn step(
        &mut self,
        image: &[u8],
        rng: &mut Xorshift32,
        extra: Option<&[f32]>,
        learn: bool,
        s: &mut Scratch,
    ) {
        let cfg = &self.cfg;
        let (n, m) = (cfg.neurons, cfg.inputs);
        let theta_scale = if learn { 1.0 } else { cfg.test_theta_scale };
        s.active.clear();
        for (i, &px) in image.iter().enumerate() {
            if rng.spikes(px) {
                s.active.push(i as u32);
            }
        }
        // Leak, then the input current, then fire with reset to zero.
        s.fired.clear();
        for j in 0..n {
            let row = &self.w[j * m..(j + 1) * m];
            let mut drive: f32 = s.active.iter().map(|&i| row[i as usize]).sum();
            if let Some(extra) = extra {
                drive += extra[j];
            }
            let u = s.u[j] * cfg.leak + drive;
            s.u_pre[j] = u;
            if u >= cfg.threshold + self.theta[j] * theta_scale {
                s.u[j] = 0.0;
                s.fired.push(j as u32);
            } else {
                s.u[j] = u;
            }
        }
        // While learning, only the strongest of the neurons that crossed their threshold in
        // the same step fires (winner-take-all), so that two neurons do not learn the same
        // image. At inference all of them fire, as in the runtime.
        if learn && cfg.wta_learning && s.fired.len() > 1 {
            let over = |j: u32| s.u_pre[j as usize] - (cfg.threshold + self.theta[j as usize]);
            let best = s
                .fired
                .iter()
                .copied()
                .max_by(|&a, &b| over(a).total_cmp(&over(b)))
                .unwrap_or(0);
            for &j in &s.fired {
                if j != best {
                    s.u[j as usize] = s.u_pre[j as usize];
                }
            }
            s.fired.clear();
            s.fired.push(best);
        }
        // Lateral inhibition from the others that fired.
        let k = s.fired.len() as f32;
        if k > 0.0 {
            s.u.iter_mut().for_each(|u| *u -= cfg.inhibition * k);
            s.fired
                .iter()
                .for_each(|&j| s.u[j as usize] += cfg.inhibition);
        }
        for &j in &s.fired {
            s.counts[j as usize] += 1;
        }
        if !learn {
            return;
        }
        // Nearest-spike presynaptic traces, then STDP at every post spike.
        s.trace.iter_mut().for_each(|x| *x *= cfg.trace_decay);
        s.active.iter().for_each(|&i| s.trace[i as usize] = 1.0);
        for &j in &s.fired {
            let j = j as usize;
            let row = &mut self.w[j * m..(j + 1) * m];
            let alive = &self.alive[j * m..(j + 1) * m];
            for ((w, &x), &a) in row.iter_mut().zip(&s.trace).zip(alive) {
                if a {
                    *w = power_law(*w, x, cfg.eta, cfg.x_tar, cfg.w_max, cfg.mu);
                }
            }
            self.theta[j] += cfg.theta_plus;
        }
    }

    /// After a presentation with `learn`: normalises the neurons that fired and decays the
    /// adaptive thresholds.
    pub(crate) fn settle(&mut self, learn: bool, s: &Scratch) {
        if learn {
            for j in 0..self.cfg.neurons {
                if s.counts[j] > 0 {
                    self.normalise(j);
                }
            }
            let decay = self.cfg.theta_decay;
            self.theta.iter_mut().for_each(|t| *t *= decay);
        }
    }

    /// Prunes the weakest live synapses of every neuron up to `sparsity` of its inputs and
    /// snaps the rest to `levels` levels in [0, w_max] (when `levels` > 1). The selection is
    /// [`crate::compress::select`] with the learned weight as the score (after STDP it
    /// measures how often the input fired just before the neuron); pruned synapses score
    /// lowest, so they stay pruned.
    pub fn prune_and_quantize(&mut self, sparsity: f32, levels: u32) {
        let m = self.cfg.inputs;
        for j in 0..self.cfg.neurons {
            let row = &mut self.w[j * m..(j + 1) * m];
            let alive = &mut self.alive[j * m..(j + 1) * m];
            let scores: Vec<f32> = row
                .iter()
                .zip(alive.iter())
                .map(|(&w, &a)| if a { w } else { f32::NEG_INFINITY })
                .collect();
            let keep = crate::compress::select(
                &[(&scores, 1)],
                f64::from(sparsity.clamp(0.0, 1.0)),
                crate::compress::Scope::Layer,
            );
            for ((w, a), k) in row.iter_mut().zip(alive.iter_mut()).zip(&keep[0]) {
                if !k {
                    *a = false;
                    *w = 0.0;
                }
            }
        }
        if levels > 1 {
            let step = self.cfg.w_max / (levels - 1) as f32;
            self.w
                .iter_mut()
                .for_each(|w| *w = (*w / step).round() * step);
        }
    }

    /// Fraction of pruned synapses.
    pub fn sparsity(&self) -> f32 {
        self.alive.iter().filter(|a| !**a).count() as f32 / self.alive.len() as f32
    }
}
