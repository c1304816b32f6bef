//! The firmware's results file (format: `firmware/app/src/record.rs`).

use crate::board::ICOUNT_SHIFT;

/// One inference on the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardResult {
    /// Predicted class.
    pub class: u16,
    /// Class scores.
    pub readout: Vec<i32>,
    /// Spikes per layer.
    pub spikes: Vec<u32>,
    /// Synaptic operations.
    pub sops: u64,
    /// Multiply-accumulates.
    pub macs: u64,
    /// SysTick ticks the inference took.
    pub ticks: u64,
}

/// A whole results file.
#[derive(Debug, Clone, PartialEq)]
pub struct Results {
    /// SysTick frequency the board declares.
    pub tick_hz: u32,
    /// Instructions of the firmware's calibration loop, and the ticks it took.
    pub calibration: (u32, u32),
    /// Deepest stack use during the run, bytes.
    pub stack_peak_bytes: u32,
    /// One per sample.
    pub records: Vec<BoardResult>,
}

impl Results {
    /// Parses a results file of a model with `classes` scores and `layers` layers.
    pub fn parse(bytes: &[u8], classes: usize, layers: usize) -> Result<Results, String> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(8)? != b"EMBRRES1" {
            return Err("not a results file (bad magic)".into());
        }
        let tick_hz = r.u32()?;
        let (c, l) = (r.u16()? as usize, r.u16()? as usize);
        if (c, l) != (classes, layers) {
            return Err(format!(
                "{c} classes and {l} layers, the model has {classes} and {layers}"
            ));
        }
        let calibration = (r.u32()?, r.u32()?);
        let mut records = Vec::new();
        while r.bytes.get(r.at..r.at + 4) != Some(b"DONE") {
            let class = r.u16()?;
            let readout = (0..classes)
                .map(|_| r.u32().map(|v| v as i32))
                .collect::<Result<_, _>>()?;
            let spikes = (0..layers).map(|_| r.u32()).collect::<Result<_, _>>()?;
            let (sops, macs, ticks) = (r.u64()?, r.u64()?, r.u64()?);
            records.push(BoardResult {
                class,
                readout,
                spikes,
                sops,
                macs,
                ticks,
            });
        }
        r.take(4)?;
        let count = r.u32()? as usize;
        let stack_peak_bytes = r.u32()?;
        if count != records.len() || r.at != bytes.len() {
            return Err(format!(
                "footer says {count} records, {} read",
                records.len()
            ));
        }
        Ok(Results {
            tick_hz,
            calibration,
            stack_peak_bytes,
            records,
        })
    }

    /// Guest instructions in `ticks`: under `-icount shift=N` QEMU executes one instruction
    /// every 2^N ns of virtual time, and SysTick ticks `tick_hz` times per virtual second.
    pub fn instructions(&self, ticks: u64) -> f64 {
        ticks as f64 * 1e9 / (self.tick_hz as f64 * f64::from(1u32 << ICOUNT_SHIFT))
    }

    /// Checks the conversion against the calibration loop (a wrong board clock constant or
    /// icount shift shows here); `Err` says by how much it is off.
    pub fn check_calibration(&self) -> Result<(), String> {
        let (insns, ticks) = self.calibration;
        let measured = self.instructions(ticks as u64);
        // The loop is timed with two counter reads around it: a few dozen instructions.
        if (measured - insns as f64).abs() > 100.0 + insns as f64 * 1e-3 {
            return Err(format!(
                "a {insns}-instruction loop measured {measured:.0} instructions: the board's SysTick clock \
                 ({} Hz) or the icount shift ({ICOUNT_SHIFT}) is wrong",
                self.tick_hz
            ));
        }
        Ok(())
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or_else(|| format!("truncated at byte {} (run died?)", self.at))?;
        self.at += n;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, String> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, String> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }
}
