//! Ember on QEMU's microbit (cortex-m0, `thumbv6m-none-eabi`).
#![no_std]
#![no_main]

use cortex_m_rt::{entry, exception, ExceptionFrame};
use ember_firmware::{Hardware, NoLed, SysTickCounter};

/// Core clock that QEMU gives this machine's SysTick.
const CORE_HZ: u32 = 16_000_000;

#[entry]
fn main() -> ! {
    let p = cortex_m::Peripherals::take().unwrap();
    let counter = SysTickCounter::start(p.SYST, CORE_HZ);
    ember_firmware::run(Hardware {
        delay: counter,
        led: NoLed,
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
