//! # ember-firmware
//!
//! The board-independent Ember application. A board crate builds a [`Hardware`] from its
//! peripherals (a delay, a status LED, a tick counter: embedded-hal 1.0 traits plus
//! [`TickCounter`]) and calls [`run`], which never returns:
//!
//! 1. loads the model bundled into flash at build time ([`model`]), in place;
//! 2. reads samples from a host file over semihosting ([`host`]), runs one inference per
//!    sample and times it with the tick counter;
//! 3. writes one fixed-size result record per sample to a host file ([`record`]), logs a
//!    summary through defmt and exits with status 0.
//!
//! Any error, panic or hard fault logs its message through defmt and exits with a non-zero
//! status ([`fault`]), so the host sees a failed run and why.
//!
//! With the `ann-baseline` feature the firmware runs the same model's layers as a dense
//! int8 ANN instead ([`ann`]: ReLU, one pass, every MAC computed), the baseline the SNN's
//! cost is measured against; the SNN code is then not linked.
//!
//! With the `standalone` feature (what `ember deploy` flashes with `probe-rs run`), the
//! samples come from flash and the results go to the defmt log, which goes over RTT
//! ([`bundled`]).
#![no_std]
#![deny(missing_docs)]

#[cfg(feature = "ann-baseline")]
pub mod ann;
#[cfg(feature = "standalone")]
pub mod bundled;
pub mod counter;
pub mod fault;
pub mod host;
pub mod model;
pub mod record;
pub mod stack;

#[cfg(feature = "standalone")]
use bundled::{Samples, Writer};
#[cfg(feature = "standalone")]
use defmt_rtt as _;
#[cfg(not(feature = "standalone"))]
use defmt_semihosting as _;
#[cfg(not(feature = "standalone"))]
use {host::Samples, record::Writer};

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
#[cfg(not(feature = "ann-baseline"))]
use ember_runtime::Engine;
use ember_runtime::Model;

pub use counter::{SysTickCounter, TickCounter};

/// What the application needs from a board.
pub struct Hardware<D, L, C> {
    /// Blocking delay, for the LED blink at the end of a run.
    pub delay: D,
    /// Status LED: lit while an inference runs.
    pub led: L,
    /// Free-running counter that times each inference.
    pub counter: C,
}

/// A status LED for boards without one (the emulated ones).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoLed;

impl embedded_hal::digital::ErrorType for NoLed {
    type Error = core::convert::Infallible;
}

impl OutputPin for NoLed {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Runs the bundled model on every sample of the host's samples file, writes the results
/// file and exits the program (status 0 on success).
///
/// The stack holds call frames only: the model, the arena, the input sample and the results
/// buffer are statics (`.bss`), and the start-up work (loading the model, reading the
/// command line) runs in frames of its own that are gone before the first inference.
pub fn run<D: DelayNs, L: OutputPin, C: TickCounter>(mut hw: Hardware<D, L, C>) -> ! {
    let model = model::load();
    #[cfg(not(feature = "ann-baseline"))]
    let mut engine =
        Engine::new(model, model::arena()).unwrap_or_else(|e| fault::fail("engine", e));
    #[cfg(feature = "ann-baseline")]
    let mut scratch = model::ann_scratch();
    #[cfg(feature = "ann-baseline")]
    ann::prepare(model, &mut scratch).unwrap_or_else(|e| fault::fail("ANN baseline", e));
    let (mut samples, mut results, timesteps) = begin(model, &mut hw.counter);

    let input = model::input();
    #[cfg_attr(feature = "ann-baseline", allow(unused_mut))]
    let (mut sops, mut macs, mut n) = (0u64, 0u64, 0u32);
    while samples.next_into(input) {
        let _ = hw.led.set_high();
        let start = hw.counter.ticks();
        #[cfg(not(feature = "ann-baseline"))]
        let out = engine
            .run_for(input, timesteps)
            .unwrap_or_else(|e| fault::fail("inference", e));
        #[cfg(feature = "ann-baseline")]
        let out = ann::run(model, input, &mut scratch)
            .unwrap_or_else(|e| fault::fail("ANN inference", e));
        let ticks = hw.counter.ticks() - start;
        let _ = hw.led.set_low();
        #[cfg(feature = "ann-baseline")]
        {
            defmt::info!(
                "sample {=u32}: class {=u16}, scores {=[?]}, non-zero activations {=[?]}, {=u64} MACs",
                n,
                out.class,
                out.scores,
                &out.active[..out.layers],
                out.macs
            );
            macs += out.macs;
            let active = &out.active[..out.layers];
            results.push_raw(out.class, out.scores, active, 0, out.macs, ticks);
        }
        #[cfg(not(feature = "ann-baseline"))]
        defmt::info!(
            "sample {=u32}: class {=u16}, readout {=[?]}, spikes {=[?]}, {=u64} SOPs, {=u64} MACs",
            n,
            out.class,
            out.readout,
            &out.spikes[..],
            out.sops,
            out.macs
        );
        #[cfg(not(feature = "ann-baseline"))]
        {
            sops += out.sops;
            macs += out.macs;
            results.push_raw(
                out.class,
                out.readout,
                &out.spikes,
                out.sops,
                out.macs,
                ticks,
            );
        }
        n += 1;
    }
    let stack = stack::peak_bytes();
    results.finish(n, stack);
    defmt::info!(
        "done: {=u32} samples, {=u64} SOPs, {=u64} MACs in all",
        n,
        sops,
        macs
    );
    blink(&mut hw.led, &mut hw.delay);
    if cfg!(feature = "standalone") {
        // Time for the probe to read the end of the RTT log before the exit stops the core.
        hw.delay.delay_ms(200);
    }
    semihosting::process::exit(0)
}

/// What a run does before its first inference: logs the model, reads the command line,
/// opens the samples file, calibrates the counter and creates the results file. Not
/// inlined: the command line and path buffers live only in this frame, not in [`run`]'s
/// while the inferences run.
#[inline(never)]
fn begin<C: TickCounter>(model: &Model<'_>, ticks: &mut C) -> (Samples, Writer, u16) {
    defmt::info!(
        "model {=str}: {=usize} bytes in flash, arena {=usize} bytes, input {=usize} bytes, {=usize} classes, T={=u16}",
        model.desc().name,
        model::BYTES.len(),
        model.arena_bytes(),
        model.input_len(),
        model.classes(),
        model.timesteps()
    );
    #[cfg(feature = "ann-baseline")]
    defmt::info!(
        "dense int8 ANN baseline (ReLU, one pass, every MAC): {=usize} bytes of buffers",
        model::ANN_BYTES
    );
    // `probe-rs run` answers no GET_CMDLINE: the standalone firmware does not ask.
    let paths = if cfg!(feature = "standalone") {
        host::Paths::defaults()
    } else {
        host::Paths::from_args()
    };
    match paths.self_test {
        Some(host::SelfTest::Panic) => panic!("self-test panic requested on the command line"),
        Some(host::SelfTest::HardFault) => cortex_m::asm::udf(),
        None => {}
    }
    let timesteps = paths.timesteps.unwrap_or(model.timesteps());
    if cfg!(feature = "ann-baseline") && paths.timesteps.is_some() {
        fault::fail("timesteps argument", "the ANN baseline has no timesteps");
    }
    if paths.timesteps.is_some() {
        defmt::info!(
            "timesteps {=u16} from the command line (the model's default is {=u16})",
            timesteps,
            model.timesteps()
        );
    }
    let samples = Samples::open(&paths, model.input_len());
    let layers = model.desc().layers.len();
    let calibration = counter::calibrate(ticks);
    let results = Writer::create(&paths, ticks.hz(), calibration, model.classes(), layers);
    defmt::info!("{=usize} samples", samples.count());
    (samples, results, timesteps)
}

/// One short blink: the run is over.
fn blink<L: OutputPin, D: DelayNs>(led: &mut L, delay: &mut D) {
    let _ = led.set_high();
    delay.delay_ms(1);
    let _ = led.set_low();
}
