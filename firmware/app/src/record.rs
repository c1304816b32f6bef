//! The results file: what the host compares with its own run of the same model.
//!
//! All integers little endian.
//!
//! ```text
//! header   "EMBRRES1"  u32 tick_hz  u16 classes  u16 layers
//!          u32 calibration_instructions  u32 calibration_ticks   (see counter::calibrate)
//! record   (one per sample, in sample order)
//!          u16 class  i32 readout[classes]  u32 spikes[layers]  u64 sops  u64 macs  u64 ticks
//! footer   "DONE"  u32 samples  u32 stack_peak_bytes
//! ```
//!
//! A file without the footer comes from a run that died.

use core::sync::atomic::AtomicBool;
use ember_runtime::Outcome;
use semihosting::fs::File;
use semihosting::io::Write;

use crate::fault;
use crate::host::Paths;

/// First bytes of a results file (format version 1).
pub const MAGIC: [u8; 8] = *b"EMBRRES1";
/// First bytes of the footer.
pub const FOOTER: [u8; 4] = *b"DONE";

/// Bytes collected before one semihosting write (each write is a trap to the host).
const BUF: usize = 256;

/// The write buffer, in `.bss` rather than on the stack.
static mut BUFFER: [u8; BUF] = [0; BUF];
static BUFFER_TAKEN: AtomicBool = AtomicBool::new(false);

/// Writes the results file, one record per inference. At most one is created per run.
pub struct Writer {
    file: File,
    buf: &'static mut [u8; BUF],
    len: usize,
}

impl Writer {
    /// Creates the results file and writes its header. Panics if called twice.
    pub fn create(
        paths: &Paths,
        tick_hz: u32,
        calibration_ticks: u64,
        classes: usize,
        layers: usize,
    ) -> Writer {
        let file = File::create(paths.results.as_cstr()).unwrap_or_else(|_| {
            fault::fail(
                "creating the results file",
                paths.results.as_cstr().to_str().unwrap_or("?"),
            )
        });
        crate::model::take_once(&BUFFER_TAKEN);
        let mut w = Writer {
            file,
            // SAFETY: `take_once` hands out this reference at most once.
            buf: unsafe { &mut *core::ptr::addr_of_mut!(BUFFER) },
            len: 0,
        };
        let mut header = [0u8; 24];
        header[..8].copy_from_slice(&MAGIC);
        header[8..12].copy_from_slice(&tick_hz.to_le_bytes());
        header[12..14].copy_from_slice(&(classes as u16).to_le_bytes());
        header[14..16].copy_from_slice(&(layers as u16).to_le_bytes());
        header[16..20].copy_from_slice(&crate::counter::CALIBRATION_INSTRUCTIONS.to_le_bytes());
        header[20..24].copy_from_slice(&(calibration_ticks as u32).to_le_bytes());
        w.write(&header);
        w
    }

    /// Appends the record of one inference that took `ticks`.
    pub fn push(&mut self, out: &Outcome<'_>, ticks: u64) {
        self.push_raw(
            out.class,
            out.readout,
            &out.spikes,
            out.sops,
            out.macs,
            ticks,
        );
    }

    /// Appends a record from its fields (see the module docs).
    pub fn push_raw(
        &mut self,
        class: u16,
        readout: &[i32],
        spikes: &[u32],
        sops: u64,
        macs: u64,
        ticks: u64,
    ) {
        self.write(&class.to_le_bytes());
        for v in readout {
            self.write(&v.to_le_bytes());
        }
        for s in spikes {
            self.write(&s.to_le_bytes());
        }
        let mut tail = [0u8; 24];
        tail[..8].copy_from_slice(&sops.to_le_bytes());
        tail[8..16].copy_from_slice(&macs.to_le_bytes());
        tail[16..].copy_from_slice(&ticks.to_le_bytes());
        self.write(&tail);
    }

    /// Writes the footer: `samples` records were written, the stack peaked at `stack` bytes.
    pub fn finish(mut self, samples: u32, stack: u32) {
        let mut footer = [0u8; 12];
        footer[..4].copy_from_slice(&FOOTER);
        footer[4..8].copy_from_slice(&samples.to_le_bytes());
        footer[8..].copy_from_slice(&stack.to_le_bytes());
        self.write(&footer);
        self.flush();
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > BUF {
            self.flush();
        }
        if bytes.len() > BUF {
            self.write_through(bytes);
        } else {
            self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }

    fn flush(&mut self) {
        let len = core::mem::take(&mut self.len);
        write_all(&mut self.file, &self.buf[..len]);
    }

    fn write_through(&mut self, bytes: &[u8]) {
        write_all(&mut self.file, bytes);
    }
}

fn write_all(file: &mut File, bytes: &[u8]) {
    file.write_all(bytes)
        .unwrap_or_else(|_| fault::fail("writing the results file", ()));
}
