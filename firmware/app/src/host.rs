//! Files on the host, through semihosting: the samples to run and the results to write.
//!
//! Paths come from the program's command line (`GET_CMDLINE`; QEMU:
//! `-semihosting-config enable=on,target=native,arg=ember,arg=SAMPLES,arg=RESULTS`),
//! defaulting to `samples.bin` and `results.bin` in QEMU's working directory.

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
    /// Argument 3, `panic` or `hard-fault`: end the run that way once the model is loaded,
    /// so that the host can check it sees the failure and its message.
    pub self_test: Option<SelfTest>,
}

/// A failure the host can ask for (argument 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfTest {
    /// `panic`: panic with a known message.
    Panic,
    /// `hard-fault`: execute an undefined instruction.
    HardFault,
}

impl Paths {
    /// Paths from the command line (arguments 1 and 2), or the default names; argument 3.
    pub fn from_args() -> Paths {
        let mut paths = Paths {
            samples: Path::new("samples.bin"),
            results: Path::new("results.bin"),
            self_test: None,
        };
        if let Ok(args) = env::args::<{ 2 * PATH_MAX + 32 }>() {
            for (i, arg) in (&args).enumerate() {
                match (i, arg) {
                    (1, Ok(a)) => paths.samples = Path::new(a),
                    (2, Ok(a)) => paths.results = Path::new(a),
                    (3, Ok("panic")) => paths.self_test = Some(SelfTest::Panic),
                    (3, Ok("hard-fault")) => paths.self_test = Some(SelfTest::HardFault),
                    _ => {}
                }
            }
        }
        paths
    }
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
