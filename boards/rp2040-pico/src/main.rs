//! Ember on the Raspberry Pi Pico (RP2040, Cortex-M0+, `thumbv6m-none-eabi`). The samples
//! and results files go over semihosting, so the board runs attached to a debug probe that
//! serves them; without one the first semihosting call faults. Runs on the ring oscillator
//! the boot ROM leaves running (no clock setup), so tick counts are only roughly timed.
#![no_std]
#![no_main]

use core::convert::Infallible;
use cortex_m_rt::{entry, exception, ExceptionFrame};
use embedded_hal::digital::{ErrorType, OutputPin};
use ember_firmware::{Hardware, SysTickCounter};

/// Second-stage bootloader for the Pico's W25Q080 flash.
#[link_section = ".boot2"]
#[used]
pub static BOOT2: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

/// Nominal frequency of the ring oscillator the core runs on after boot (it varies by chip).
const CORE_HZ: u32 = 6_000_000;

/// The green LED: GPIO25 through the single-cycle IO block, lit when high.
struct Led;

const RESETS_CLR: *mut u32 = 0x4000_F000 as *mut u32;
const RESETS_DONE: *const u32 = 0x4000_C008 as *const u32;
const IO_BANK0_GPIO25_CTRL: *mut u32 = 0x4001_40CC as *mut u32;
const SIO_GPIO_OUT_SET: *mut u32 = 0xD000_0014 as *mut u32;
const SIO_GPIO_OUT_CLR: *mut u32 = 0xD000_0018 as *mut u32;
const SIO_GPIO_OE_SET: *mut u32 = 0xD000_0024 as *mut u32;
/// IO_BANK0 and PADS_BANK0 in the RESETS registers.
const IO_AND_PADS: u32 = (1 << 5) | (1 << 8);
const LED: u32 = 1 << 25;
/// GPIO function 5: SIO.
const FUNC_SIO: u32 = 5;

impl Led {
    fn new() -> Led {
        // SAFETY: takes the GPIO banks out of reset (atomic clear alias), routes GPIO25 to
        // SIO and enables its output; nothing else uses them.
        unsafe {
            RESETS_CLR.write_volatile(IO_AND_PADS);
            while RESETS_DONE.read_volatile() & IO_AND_PADS != IO_AND_PADS {}
            IO_BANK0_GPIO25_CTRL.write_volatile(FUNC_SIO);
            SIO_GPIO_OE_SET.write_volatile(LED);
        }
        Led
    }
}

impl ErrorType for Led {
    type Error = Infallible;
}

impl OutputPin for Led {
    fn set_high(&mut self) -> Result<(), Infallible> {
        // SAFETY: write-one-to-set, only GPIO25.
        unsafe { SIO_GPIO_OUT_SET.write_volatile(LED) };
        Ok(())
    }
    fn set_low(&mut self) -> Result<(), Infallible> {
        // SAFETY: write-one-to-clear, only GPIO25.
        unsafe { SIO_GPIO_OUT_CLR.write_volatile(LED) };
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

#[exception]
fn SysTick() {
    SysTickCounter::on_wrap();
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    ember_firmware::fault::hard_fault(frame)
}
