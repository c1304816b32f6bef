//! Files on the host, through semihosting: the samples to run and the results to write.
//!
//! Paths come from the program's command line (`GET_CMDLINE`; QEMU:
//! `-semihosting-config enable=on,target=native,arg=ember,arg=SAMPLES,arg=RESULTS`),
//! defaulting to `samples.bin` and `results.bin` in QEMU's working directory. Arguments
//! after the two paths are options, in any order:
//!
//! - `timesteps=N`: run every inference for N timesteps instead of the model's default;
//! - `panic`, `hard-fault`: fail that way once the model is loaded (see [`SelfTest`]).

use core::ffi::CStr;
use semihosting::experimental::env;
use semihosting::fs::File;
use semihosting::io::Read;

use crate::fault;

/// Longest path accepted, NUL included.
const PATH_MAX: usize = 128;

/// A NUL-terminated host path.
pub struct Path([u8; PATH_MAX]);

impl Path {
    fn new(s: &str) -> Path {
        let mut buf = [0u8; PATH_MAX];
        if s.len() >= PATH_MAX || s.contains('\0') {
            fault::fail("path argument (too long)", s);
        }
        buf[..s.len()].copy_from_slice(s.as_bytes());
        Path(buf)
    }

    /// The path as a C string.
    pub fn as_cstr(&self) -> &CStr {
        // Cannot fail: `new` leaves at least one NUL.
        CStr::from_bytes_until_nul(&self.0).unwrap_or_default()
    }
}

/// Where the samples come from and the results go.
pub struct Paths {
    /// The samples file: input samples back to back, `input_len` bytes each.
    pub samples: Path,
    /// The results file written by [`crate::record::Writer`].
    pub results: Path,
    /// `panic` or `hard-fault`: end the run that way once the model is loaded, so that the
    /// host can check it sees the failure and its message.
    pub self_test: Option<SelfTest>,
    /// `timesteps=N`: timesteps per inference instead of the model's default.
    pub timesteps: Option<u16>,
}

/// A failure the host can ask for (an option argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfTest {
    /// `panic`: panic with a known message.
    Panic,
    /// `hard-fault`: execute an undefined instruction.
    HardFault,
}

impl Paths {
    /// The default names and no options, without reading the command line.
    pub fn defaults() -> Paths {
        Paths {
            samples: Path::new("samples.bin"),
            results: Path::new("results.bin"),
            self_test: None,
            timesteps: None,
        }
    }

    /// Paths from the command line (arguments 1 and 2), or the default names; the options
    /// after them. An option it does not know ends the run with an error.
    pub fn from_args() -> Paths {
        let mut paths = Paths::defaults();
        if let Ok(args) = env::args::<{ 2 * PATH_MAX + 64 }>() {
            for (i, arg) in (&args).enumerate() {
                match (i, arg) {
                    (0, _) => {}
                    (1, Ok(a)) => paths.samples = Path::new(a),
                    (2, Ok(a)) => paths.results = Path::new(a),
                    (_, Ok("panic")) => paths.self_test = Some(SelfTest::Panic),
                    (_, Ok("hard-fault")) => paths.self_test = Some(SelfTest::HardFault),
                    (_, Ok(a)) if a.starts_with("timesteps=") => {
                        match a.strip_prefix("timesteps=").and_then(positive_u16) {
                            Some(t) => paths.timesteps = Some(t),
                            None => fault::fail("timesteps argument (1 to 65535)", a),
                        }
                    }
                    (_, Ok(a)) => fault::fail("unknown argument", a),
                    (_, Err(_)) => fault::fail("reading the command line", i),
                }
            }
        }
        paths
    }
}

/// A decimal number from 1 to 65535 (by hand: `str::parse` costs flash the 256 KiB boards
/// do not have).
fn positive_u16(s: &str) -> Option<u16> {
    let mut n = 0u32;
    for b in s.bytes() {
        if !b.is_ascii_digit() || n > u16::MAX as u32 {
            return None;
        }
        n = n * 10 + u32::from(b - b'0');
    }
    u16::try_from(n).ok().filter(|&n| n > 0)
}

/// The samples file, read one sample at a time.
pub struct Samples {
    file: File,
    count: usize,
    read: usize,
}

impl Samples {
    /// Opens the samples file and checks it holds whole samples of `input_len` bytes.
    pub fn open(paths: &Paths, input_len: usize) -> Samples {
        let file = File::open(paths.samples.as_cstr()).unwrap_or_else(|_| {
            fault::fail(
                "opening the samples file",
                paths.samples.as_cstr().to_str().unwrap_or("?"),
            )
        });
        let len = file
            .metadata()
            .map(|m| m.len() as usize)
            .unwrap_or_else(|_| fault::fail("reading the samples file length", ()));
        if len % input_len != 0 {
            defmt::error!("samples file has {=usize} bytes, not a multiple of the model's input ({=usize} bytes)", len, input_len);
            semihosting::process::exit(fault::EXIT_ERROR);
        }
        Samples {
            file,
            count: len / input_len,
            read: 0,
        }
    }

    /// Number of samples in the file.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Reads the next sample into `buf`; false when all have been read.
    pub fn next_into(&mut self, buf: &mut [u8]) -> bool {
        if self.read == self.count {
            return false;
        }
        self.file
            .read_exact(buf)
            .unwrap_or_else(|_| fault::fail("reading the samples file", self.read));
        self.read += 1;
        true
    }
}
