//! # ember-trainer
//!
//! The host side of Ember: loads datasets, trains a recipe's ANN in candle (CPU), converts it
//! to an integer spiking network, quantizes and exports it as an `.ember` file, and evaluates
//! that file with the same `ember-runtime` the microcontrollers run.
//!
//! Stages, one module each: [`data`] -> [`net`] + [`train`] -> [`convert`] -> [`quantize`]
//! -> [`export`] -> [`eval`]; [`snn`] simulates the converted network in float with the
//! runtime's semantics; [`diet`] fine-tunes it with BPTT (DIET-SNN, hybrid STDB) using
//! the [`surrogate`] gradients; [`pipeline`] chains them for the `ember` command.
#![deny(missing_docs)]

pub mod bench;
pub mod compress;
pub mod convert;
pub mod data;
pub mod diet;
pub mod error;
pub mod eval;
pub mod export;
pub mod inspect;
pub mod kernels;
pub mod multimodal;
pub mod net;
pub mod pipeline;
pub mod plot;
pub mod quantize;
pub mod recipe;
pub mod report;
pub mod snn;
pub mod stdp;
pub mod surrogate;
pub mod train;

pub use error::{Error, Result};
