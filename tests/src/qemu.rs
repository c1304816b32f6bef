//! Running a firmware under `qemu-system-arm`, with a time bound.
//!
//! The command, for the record (what [`run`] executes, in a fresh temporary directory that
//! holds `samples.bin` and receives `results.bin`):
//!
//! ```text
//! qemu-system-arm -cpu CPU -machine MACHINE -nographic \
//!   -icount shift=6 -semihosting-config enable=on,target=native,arg=ember,arg=samples.bin,arg=results.bin \
//!   -kernel FIRMWARE.elf > log.defmt
//! ```
//!
//! Options follow the two paths as further `arg=`s: `arg=timesteps=8` runs every inference
//! for 8 timesteps ([`run_options`]); `arg=panic` or `arg=hard-fault` ([`run_with`]).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::board::ICOUNT_SHIFT;
use crate::{log, Firmware, HilError, Options, Samples};

/// What one QEMU run produced.
#[derive(Debug, Clone)]
pub struct Run {
    /// The results file's bytes (parse with [`crate::Results::parse`]).
    pub results: Vec<u8>,
    /// The decoded defmt log, one line per message.
    pub log: Vec<String>,
    /// Wall-clock time QEMU ran.
    pub wall: Duration,
}

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-arm";

/// True when `qemu-system-arm` can be started.
pub fn available() -> bool {
    Command::new(QEMU)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Runs `firmware` on `samples`; kills QEMU after `timeout`.
pub fn run(firmware: &Firmware, samples: &Samples, timeout: Duration) -> Result<Run, HilError> {
    launch(firmware, samples, &[], timeout)
}

/// [`run`] with `options`: `timesteps` goes to the firmware as its `timesteps=N` argument.
pub fn run_options(
    firmware: &Firmware,
    samples: &Samples,
    options: &Options,
    timeout: Duration,
) -> Result<Run, HilError> {
    let args: Vec<String> = options
        .timesteps
        .map(|t| format!("timesteps={t}"))
        .into_iter()
        .collect();
    launch(firmware, samples, &args, timeout)
}

/// [`run`], asking the firmware to fail on purpose: `self_test` is `"panic"` or
/// `"hard-fault"` (an argument after the two paths). Checks that failures reach the host.
pub fn run_with(
    firmware: &Firmware,
    samples: &Samples,
    self_test: Option<&str>,
    timeout: Duration,
) -> Result<Run, HilError> {
    let args: Vec<String> = self_test.map(str::to_string).into_iter().collect();
    launch(firmware, samples, &args, timeout)
}

/// Runs QEMU with `args` appended to the firmware's command line (after the two paths).
fn launch(
    firmware: &Firmware,
    samples: &Samples,
    args: &[String],
    timeout: Duration,
) -> Result<Run, HilError> {
    let board = firmware.board;
    let dir = tempfile::tempdir().map_err(HilError::io(std::env::temp_dir()))?;
    let samples_path = dir.path().join("samples.bin");
    std::fs::write(&samples_path, samples.bytes()).map_err(HilError::io(&samples_path))?;
    let (cpu, machine) = board.qemu_cpu_machine();
    let icount = format!("shift={ICOUNT_SHIFT}");
    let mut semihosting =
        "enable=on,target=native,arg=ember,arg=samples.bin,arg=results.bin".to_string();
    for arg in args {
        // QEMU's option syntax: a comma inside a value is written twice.
        semihosting += &format!(",arg={}", arg.replace(',', ",,"));
    }
    let mut child = Command::new(QEMU)
        .current_dir(dir.path())
        .args(["-cpu", cpu, "-machine", machine, "-nographic"])
        .args(["-icount", &icount])
        .args(["-semihosting-config", &semihosting])
        .arg("-kernel")
        .arg(&firmware.elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(HilError::io(QEMU))? {
            break Some(status);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = start.elapsed();
    let stream = stdout.join().unwrap_or_default();
    let qemu_stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default())
        .trim()
        .to_string();
    let lines = log::decode(&firmware.elf, &stream)?;
    let Some(status) = status else {
        return Err(HilError::Timeout {
            board: board.name(),
            timeout,
            log: lines.join("\n"),
        });
    };
    if !status.success() {
        let message = lines
            .iter()
            .rev()
            .find(|l| l.starts_with("ERROR"))
            .map(|l| l["ERROR".len()..].trim().to_string())
            .unwrap_or_else(|| {
                format!(
                    "no error logged; QEMU said: {qemu_stderr}; log:\n{}",
                    lines.join("\n")
                )
            });
        return Err(HilError::Firmware {
            board: board.name(),
            status: status.code().unwrap_or(-1),
            message,
        });
    }
    let results_path = dir.path().join("results.bin");
    let results = std::fs::read(&results_path).map_err(HilError::io(&results_path))?;
    Ok(Run {
        results,
        log: lines,
        wall,
    })
}

/// A missing QEMU is its own error, with the install command.
fn spawn_error(e: std::io::Error) -> HilError {
    match e.kind() {
        std::io::ErrorKind::NotFound => HilError::QemuMissing,
        _ => HilError::Io {
            path: QEMU.into(),
            source: e,
        },
    }
}

/// Reads a pipe to its end on a thread, so that a full pipe never blocks QEMU.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_qemu_says_how_to_install_it() {
        let e = spawn_error(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(e.to_string(), "qemu-system-arm not found: install it (Debian/Ubuntu: apt-get install -y qemu-system-arm)");
    }
}
