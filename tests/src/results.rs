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
        // Records have a fixed size, so the footer's place follows from the file's length.
        let record_len = 2 + 4 * classes + 4 * layers + 24;
        let body = bytes.len().saturating_sub(r.at + 12);
        if body % record_len != 0 {
            return Err(format!(
                "{body} bytes of records are not whole {record_len}-byte records (run died?)"
            ));
        }
        let mut records = Vec::new();
        for _ in 0..body / record_len {
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
        if r.take(4)? != b"DONE" {
            return Err("no footer (run died?)".into());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A results file as the firmware writes it: 2 classes, 1 layer, the given records.
    fn file(records: &[(u16, [i32; 2], u32)], footer: bool) -> Vec<u8> {
        let mut b = b"EMBRRES1".to_vec();
        b.extend(25_000_000u32.to_le_bytes());
        b.extend(2u16.to_le_bytes());
        b.extend(1u16.to_le_bytes());
        b.extend(200_000u32.to_le_bytes());
        b.extend(320_000u32.to_le_bytes());
        for (class, readout, spikes) in records {
            b.extend(class.to_le_bytes());
            readout.iter().for_each(|v| b.extend(v.to_le_bytes()));
            b.extend(spikes.to_le_bytes());
            [7u64, 0, 1000]
                .iter()
                .for_each(|v| b.extend(v.to_le_bytes()));
        }
        if footer {
            b.extend(b"DONE");
            b.extend((records.len() as u32).to_le_bytes());
            b.extend(9000u32.to_le_bytes());
        }
        b
    }

    #[test]
    fn reads_what_the_firmware_writes() {
        let r = Results::parse(&file(&[(1, [-5, 9], 3), (0, [4, -4], 0)], true), 2, 1).unwrap();
        assert_eq!(r.records.len(), 2);
        assert_eq!(
            r.records[0],
            BoardResult {
                class: 1,
                readout: vec![-5, 9],
                spikes: vec![3],
                sops: 7,
                macs: 0,
                ticks: 1000
            }
        );
        assert_eq!(r.stack_peak_bytes, 9000);
        assert_eq!(r.instructions(1000), 625.0);
        r.check_calibration().unwrap();
    }

    #[test]
    fn a_run_that_died_is_refused() {
        let e = Results::parse(&file(&[(1, [-5, 9], 3)], false), 2, 1).unwrap_err();
        assert!(e.contains("run died"), "{e}");
    }

    #[test]
    fn a_wrong_clock_is_caught() {
        let mut r = Results::parse(&file(&[], true), 2, 1).unwrap();
        r.tick_hz = 12_000_000;
        assert!(r
            .check_calibration()
            .unwrap_err()
            .contains("SysTick clock (12000000 Hz)"));
    }
}
