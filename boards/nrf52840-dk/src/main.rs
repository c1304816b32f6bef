//! Ember on the nRF52840-DK (Cortex-M4F) (`thumbv7em-none-eabihf`). The samples and results files go over semihosting, so the
//! board runs attached to a debug probe that serves them; without one the first semihosting
//! call faults.
#![no_std]
#![no_main]

use core::convert::Infallible;
use cortex_m_rt::{entry, exception, ExceptionFrame};
use embedded_hal::digital::{ErrorType, OutputPin};
use ember_firmware::{Hardware, SysTickCounter};

/// Core clock after reset, which SysTick counts.
const CORE_HZ: u32 = 64_000_000;

/// LED1: P0.13, lit when low.
struct Led;

/// GPIO P0 registers.
const P0_OUTSET: *mut u32 = 0x5000_0508 as *mut u32;
const P0_OUTCLR: *mut u32 = 0x5000_050C as *mut u32;
const P0_DIRSET: *mut u32 = 0x5000_0518 as *mut u32;
const LED1: u32 = 1 << 13;

impl Led {
    fn new() -> Led {
        // SAFETY: write-one-to-set registers of P0, touching only pin 13.
        unsafe {
            P0_OUTSET.write_volatile(LED1);
            P0_DIRSET.write_volatile(LED1);
        }
        Led
    }
}

impl OutputPin for Led {
    fn set_high(&mut self) -> Result<(), Infallible> {
        // SAFETY: as in `new`. Active low: "high" (lit) clears the pin.
        unsafe { P0_OUTCLR.write_volatile(LED1) };
        Ok(())
    }
    fn set_low(&mut self) -> Result<(), Infallible> {
        // SAFETY: as in `new`.
        unsafe { P0_OUTSET.write_volatile(LED1) };
        Ok(())
    }
}

#[entry]
fn main() -> ! {
    let p = cortex_m::Peripherals::take().unwrap();
    let counter = SysTickCounter::start(p.SYST, CORE_HZ);
    ember_firmware::run(Hardware {
        delay: counter,
        led: Led::new(),
        counter,
    })
}

impl ErrorType for Led {
    type Error = Infallible;
}

#[exception]
fn SysTick() {
    SysTickCounter::on_wrap();
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    ember_firmware::fault::hard_fault(frame)
}
