//! The `standalone` firmware's samples and results, for a real board run by `probe-rs run`
//! (which answers no semihosting file requests): the samples are bundled into flash at
//! build time (`EMBER_SAMPLES`, `EMBER_LABELS`; see `build.rs`), and each result goes to
//! the defmt log (over RTT) with a summary at the end: accuracy when labels were bundled,
//! mean ticks and microseconds per inference, stack peak. Same interface as
//! [`crate::host::Samples`] and [`crate::record::Writer`].

use crate::host::Paths;

/// The bundled inputs, back to back.
static SAMPLES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/samples.bin"));
/// One label per bundled input, or none.
static LABELS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/labels.bin"));

/// The bundled samples, read one at a time.
pub struct Samples {
    input_len: usize,
    read: usize,
}

impl Samples {
    /// The samples in flash, `input_len` bytes each (checked by the build script).
    pub fn open(_paths: &Paths, input_len: usize) -> Samples {
        Samples { input_len, read: 0 }
    }

    /// Number of samples.
    pub fn count(&self) -> usize {
        SAMPLES.len() / self.input_len
    }

    /// Copies the next sample into `buf`; false when all have been read.
    pub fn next_into(&mut self, buf: &mut [u8]) -> bool {
        if self.read == self.count() {
            return false;
        }
        let at = self.read * self.input_len;
        buf.copy_from_slice(&SAMPLES[at..at + self.input_len]);
        self.read += 1;
        true
    }
}

/// Logs each result and a summary.
pub struct Writer {
    hz: u32,
    correct: u32,
    ticks: u64,
    n: u32,
}

impl Writer {
    /// Logs the counter's calibration.
    pub fn create(
        _paths: &Paths,
        tick_hz: u32,
        calibration_ticks: u64,
        _classes: usize,
        _layers: usize,
    ) -> Writer {
        defmt::info!(
            "counter at {=u32} Hz; a {=u32}-instruction loop took {=u64} ticks",
            tick_hz,
            crate::counter::CALIBRATION_INSTRUCTIONS,
            calibration_ticks
        );
        Writer {
            hz: tick_hz,
            correct: 0,
            ticks: 0,
            n: 0,
        }
    }

    /// Logs one inference's class against its label and the ticks it took.
    pub fn push_raw(
        &mut self,
        class: u16,
        _readout: &[i32],
        _spikes: &[u32],
        _sops: u64,
        _macs: u64,
        ticks: u64,
    ) {
        match LABELS.get(self.n as usize) {
            Some(&label) => {
                self.correct += u32::from(class == u16::from(label));
                defmt::info!(
                    "sample {=u32}: class {=u16}, label {=u8}, {=u64} ticks",
                    self.n,
                    class,
                    label,
                    ticks
                );
            }
            None => defmt::info!(
                "sample {=u32}: class {=u16}, {=u64} ticks",
                self.n,
                class,
                ticks
            ),
        }
        self.ticks += ticks;
        self.n += 1;
    }

    /// Logs the summary.
    pub fn finish(self, samples: u32, stack: u32) {
        let n = u64::from(samples.max(1));
        let mean = self.ticks / n;
        defmt::info!(
            "{=u32} samples: mean {=u64} ticks = {=u64} us per inference; stack peak {=u32} bytes",
            samples,
            mean,
            mean * 1_000_000 / u64::from(self.hz.max(1)),
            stack
        );
        if !LABELS.is_empty() {
            defmt::info!("accuracy {=u32}/{=u32}", self.correct, samples);
        }
    }
}
