//! Ending a failed run: the message goes to the defmt log, the exit status to the host
//! (QEMU exits with it). A panic exits with 101, like a Rust program on a host; an error
//! the application detects with 1; a hard fault with 2.

use cortex_m_rt::ExceptionFrame;

/// Exit status of a run that detected an error (bad samples file, model refused).
pub const EXIT_ERROR: i32 = 1;
/// Exit status after a hard fault.
pub const EXIT_HARD_FAULT: i32 = 2;
/// Exit status after a panic.
pub const EXIT_PANIC: i32 = 101;

/// Logs `what` and `error` and exits with [`EXIT_ERROR`].
pub fn fail<E: defmt::Format>(what: &str, error: E) -> ! {
    defmt::error!("{=str} failed: {}", what, error);
    semihosting::process::exit(EXIT_ERROR)
}

/// Call from the board's HardFault handler.
pub fn hard_fault(frame: &ExceptionFrame) -> ! {
    defmt::error!(
        "hard fault at pc {=u32:#010x} (lr {=u32:#010x})",
        frame.pc(),
        frame.lr()
    );
    semihosting::process::exit(EXIT_HARD_FAULT)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    defmt::error!("panicked: {}", defmt::Display2Format(info));
    semihosting::process::exit(EXIT_PANIC)
}
