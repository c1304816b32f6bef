//! # ember-runtime
//!
//! A `no_std`, heap-free engine for integer spiking neural networks. It reads an `.ember`
//! model in place (from flash on a microcontroller), checks it once, and runs inferences in a
//! working-memory arena that the caller provides. The same code runs on the host and on every
//! Cortex-M, so results are bit-identical everywhere; no floating point is used.
//!
//! ```
//! # use ember_runtime::{Arena, Engine, Model};
//! # let bytes = ember_runtime::doc_example_model();
//! let model = Model::from_bytes(&bytes)?;           // validates sizes, shapes, checksum
//! let mut arena = Arena::<4096>::new();
//! assert!(model.arena_bytes() <= 4096);
//! let mut engine = Engine::new(&model, &mut arena.0)?;
//! let out = engine.run(&[0u8; 16])?;                // one inference, default timesteps
//! assert_eq!(out.readout.len(), model.classes());
//! # Ok::<(), ember_runtime::Error>(())
//! ```
//!
//! Work is event-driven: a layer fed by spikes does work proportional to the spikes that
//! arrive times the weights they touch (only the kept ones, for a pruned layer). The engine
//! counts synaptic operations (SOPs) and multiply-accumulates (MACs) for cost reports.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod engine;
mod error;
mod fast;
pub mod format;
mod lif;
mod model;
mod weights;

pub use engine::{Arena, Engine, Outcome, Xorshift32};
pub use error::Error;
pub use format::{encode, ModelDesc};
pub use model::{Model, ModelSlot};

/// A tiny valid model (4x4 input, dense 16->4 LIF, dense 4->2 readout) for documentation
/// examples.
#[doc(hidden)]
pub fn doc_example_model() -> heapless::Vec<u8, 256> {
    use format::*;
    static W1: [u8; 64] = [1; 64];
    static W2: [u8; 8] = [1, 0xFF, 2, 0xFE, 3, 0xFD, 4, 0xFC];
    let lif = Neuron::Lif(Lif {
        threshold: Channelwise::Uniform(8),
        bias: Channelwise::Uniform(0),
        leak: Leak::NONE,
        reset: Reset::Subtract,
        membrane: Width::I32,
    });
    let readout = Neuron::Readout(Readout {
        bias: Channelwise::Uniform(0),
        leak: Leak::NONE,
        membrane: Width::I32,
    });
    let mut layers = heapless::Vec::new();
    let dense = |outputs, values, neuron| {
        Layer::Dense(Dense {
            outputs,
            weights: Weights {
                precision: Precision::I8,
                storage: Storage::Dense { values },
            },
            neuron,
        })
    };
    let _ = layers.push(dense(4, &W1[..], lif));
    let _ = layers.push(dense(2, &W2[..], readout));
    let desc = ModelDesc {
        name: "doc",
        timesteps: 4,
        input: Input {
            shape: Shape {
                height: 4,
                width: 4,
                channels: 1,
            },
            encoding: Encoding::Direct,
        },
        layers,
    };
    let mut out = [0u8; 256];
    let n = encode(&desc, &mut out).unwrap_or(0);
    heapless::Vec::from_slice(&out[..n]).unwrap_or_default()
}
