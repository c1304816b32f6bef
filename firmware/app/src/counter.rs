//! Timing an inference. QEMU does not model the DWT cycle counter, but under
//! `-icount shift=N` its SysTick advances with executed instructions (one instruction every
//! 2^N ns of virtual time), so SysTick ticks measure instructions repeatably. The host turns
//! ticks into instructions; the firmware only reports ticks and their frequency.

use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};

/// A free-running counter, the one hardware facility cost measurement needs
/// (embedded-hal 1.0 has no trait for it).
pub trait TickCounter {
    /// Ticks since the counter started; never wraps in practice.
    fn ticks(&mut self) -> u64;
    /// Ticks per second.
    fn hz(&self) -> u32;
}

/// SysTick reload: the full 24-bit range.
const RELOAD: u32 = 0x00FF_FFFF;

/// Times the SysTick counter wrapped, counted by [`SysTickCounter::on_wrap`].
static WRAPS: AtomicU32 = AtomicU32::new(0);

/// SysTick on the core clock, extended to 64 bits by counting its wraps in the SysTick
/// exception. The board forwards that exception to [`SysTickCounter::on_wrap`].
#[derive(Debug, Clone, Copy)]
pub struct SysTickCounter {
    hz: u32,
}

impl SysTickCounter {
    /// Starts SysTick from the core clock, which runs at `core_hz`.
    pub fn start(mut syst: SYST, core_hz: u32) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        SysTickCounter { hz: core_hz }
    }

    /// Call from the board's SysTick exception handler.
    pub fn on_wrap() {
        // Load and store, not fetch_add: thumbv6m has no atomic read-modify-write, and only
        // this handler writes.
        WRAPS.store(
            WRAPS.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    fn now() -> u64 {
        loop {
            let wraps = WRAPS.load(Ordering::Relaxed);
            let value = SYST::get_current();
            // A wrap that happened after the load but is not yet counted shows as a pending
            // exception with the counter near the top again.
            let pending = SCB::is_pendst_pending() && value > RELOAD / 2;
            if WRAPS.load(Ordering::Relaxed) == wraps {
                let w = wraps as u64 + pending as u64;
                return w * (RELOAD as u64 + 1) + (RELOAD - value) as u64;
            }
        }
    }
}

impl TickCounter for SysTickCounter {
    fn ticks(&mut self) -> u64 {
        Self::now()
    }

    fn hz(&self) -> u32 {
        self.hz
    }
}

impl embedded_hal::delay::DelayNs for SysTickCounter {
    fn delay_ns(&mut self, ns: u32) {
        let wait = (ns as u64 * self.hz as u64).div_ceil(1_000_000_000);
        let start = Self::now();
        while Self::now() - start < wait {}
    }
}

/// Instructions executed by [`calibrate`]'s loop (two per iteration).
pub const CALIBRATION_INSTRUCTIONS: u32 = 200_000;

/// Ticks that a loop of exactly [`CALIBRATION_INSTRUCTIONS`] instructions takes. Under
/// QEMU's `-icount` the host checks its tick-to-instruction conversion (board clock and
/// icount shift) against it, so a wrong clock constant cannot go unnoticed.
pub fn calibrate<C: TickCounter>(counter: &mut C) -> u64 {
    let start = counter.ticks();
    spin(CALIBRATION_INSTRUCTIONS / 2);
    counter.ticks() - start
}

/// `iterations` times `subs` + `bne`: exactly two instructions each.
fn spin(iterations: u32) {
    // SAFETY: arithmetic on one register and a branch back; touches no memory.
    unsafe {
        core::arch::asm!("1:", "subs {0}, #1", "bne 1b", inout(reg) iterations => _, options(nomem, nostack));
    }
}
