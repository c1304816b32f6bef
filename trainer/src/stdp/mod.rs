//! Unsupervised STDP learning (Diehl & Cook style) with pruning and weight quantization during
//! training, and export to the integer runtime.
//!
//! The network: rate-coded input (each pixel spikes at a step with probability pixel/256, from
//! the runtime's seeded xorshift32, so that the exported model sees the same spikes), one
//! layer of `neurons` LIF neurons with adaptive thresholds and lateral inhibition, and
//! input-to-neuron weights learned with power-law weight-dependent STDP on post spikes:
//! `dw = eta * (x_pre - x_tar) * (w_max - w)^mu`, with a nearest-spike presynaptic trace
//! `x_pre` (1 at a spike, decaying). After every image each neuron that spiked has its
//! incoming weights normalised to sum `norm`; the state rests (is reset) between images.
//!
//! Time is discrete with exactly the runtime's step (see `ember_runtime`'s `lif` module):
//! leak, input, fire with reset to zero, lateral inhibition. So the float network that
//! learns is the network that is exported, up to the rounding of weights and thresholds.
//!
//! Pruning and quantization (the thesis's contribution): every `prune_every` images the
//! weakest synapses of each neuron (lowest weight after STDP, i.e. lowest pre/post
//! correlation) are pruned, rising gradually to `sparsity`, and the remaining weights are
//! snapped to `levels` conductance levels in [0, w_max]. Training continues on the pruned,
//! quantized network; pruned synapses stay pruned.

mod export;
mod network;
mod plot;
mod run;
mod train;

pub use export::export;
pub(crate) use export::{encode_network, Head};
pub use network::{Network, StdpConfig, Vote};
pub use plot::receptive_fields;
pub use run::{run, StdpOptions, StdpReport};
pub use train::{
    classify, evaluate, label_neurons, train_epoch, train_epoch_with, train_rest_of_epoch,
    train_rest_of_epoch_with, Evaluation, EVAL_SEED, PROBE_EVERY,
};

pub(crate) use network::{power_law, Scratch};
pub(crate) use run::{bar, load as load_checkpoint, save as save_checkpoint};
