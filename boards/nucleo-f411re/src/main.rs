//! Ember on the Nucleo-F411RE (STM32F411, Cortex-M4F) (`thumbv7em-none-eabihf`). The samples and results files go over semihosting, so the
//! board runs attached to a debug probe that serves them; without one the first semihosting
//! call faults.
#![no_std]
#![no_main]

use core::convert::Infallible;
use cortex_m_rt::{entry, exception, ExceptionFrame};
use embedded_hal::digital::{ErrorType, OutputPin};
use ember_firmware::{Hardware, SysTickCounter};

/// Core clock after reset, which SysTick counts.
const CORE_HZ: u32 = 16_000_000;

/// LD2: PA5, lit when high.
struct Led;

const RCC_AHB1ENR: *mut u32 = 0x4002_3830 as *mut u32;
const GPIOA_MODER: *mut u32 = 0x4002_0000 as *mut u32;
const GPIOA_BSRR: *mut u32 = 0x4002_0018 as *mut u32;
const PA5: u32 = 5;

impl Led {
    fn new() -> Led {
        // SAFETY: enables the GPIOA clock and makes PA5 an output; nothing else uses them.
        unsafe {
            RCC_AHB1ENR.write_volatile(RCC_AHB1ENR.read_volatile() | 1);
            let moder = GPIOA_MODER.read_volatile() & !(0b11 << (2 * PA5));
            GPIOA_MODER.write_volatile(moder | (0b01 << (2 * PA5)));
        }
        Led
    }
}

impl OutputPin for Led {
    fn set_high(&mut self) -> Result<(), Infallible> {
        // SAFETY: BSRR sets or resets only the pins whose bits are written.
        unsafe { GPIOA_BSRR.write_volatile(1 << PA5) };
        Ok(())
    }
    fn set_low(&mut self) -> Result<(), Infallible> {
        // SAFETY: as in `set_high`.
        unsafe { GPIOA_BSRR.write_volatile(1 << (PA5 + 16)) };
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
