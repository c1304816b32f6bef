//! The model bundled at build time (`EMBER_MODEL`, see `build.rs`), executed in place from
//! flash, and the statically allocated arena it runs in.

use core::sync::atomic::{AtomicBool, Ordering};
use ember_runtime::Arena;

include!(concat!(env!("OUT_DIR"), "/model_consts.rs"));

/// The `.ember` file, in flash.
pub static BYTES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/model.ember"));

static mut ARENA: Arena<ARENA_BYTES> = Arena::new();
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The arena, in `.bss`. Panics if called twice.
pub fn arena() -> &'static mut [u8] {
    // Load then store inside a critical section: thumbv6m has no atomic swap.
    let taken = cortex_m::interrupt::free(|_| {
        TAKEN.load(Ordering::Relaxed) || {
            TAKEN.store(true, Ordering::Relaxed);
            false
        }
    });
    assert!(!taken, "arena taken twice");
    // SAFETY: the flag above hands out this reference at most once.
    unsafe { &mut *core::ptr::addr_of_mut!(ARENA.0) }
}
