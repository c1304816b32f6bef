//! The model bundled at build time (`EMBER_MODEL`, see `build.rs`), executed in place from
//! flash, and the statically allocated arena it runs in.

use core::sync::atomic::{AtomicBool, Ordering};
#[cfg(not(feature = "ann-baseline"))]
use ember_runtime::Arena;

include!(concat!(env!("OUT_DIR"), "/model_consts.rs"));

/// The `.ember` file, in flash.
pub static BYTES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/model.ember"));

#[cfg(not(feature = "ann-baseline"))]
static mut ARENA: Arena<ARENA_BYTES> = Arena::new();
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Panics unless this is the first call: the working memory is handed out once.
fn take_once() {
    // Load then store inside a critical section: thumbv6m has no atomic swap.
    let taken = cortex_m::interrupt::free(|_| {
        TAKEN.load(Ordering::Relaxed) || {
            TAKEN.store(true, Ordering::Relaxed);
            false
        }
    });
    assert!(!taken, "arena taken twice");
}

/// The arena, in `.bss`. Panics if called twice.
#[cfg(not(feature = "ann-baseline"))]
pub fn arena() -> &'static mut [u8] {
    take_once();
    // SAFETY: `take_once` hands out this reference at most once.
    unsafe { &mut *core::ptr::addr_of_mut!(ARENA.0) }
}

/// The ANN baseline's buffers, in `.bss`, sized by the build script with
/// [`crate::ann::sizes`]. Panics if called twice.
#[cfg(feature = "ann-baseline")]
pub fn ann_scratch() -> crate::ann::Scratch<'static> {
    static mut ACT: [u8; 2 * ANN_ACT_BYTES] = [0; 2 * ANN_ACT_BYTES];
    static mut ACC: [i32; ANN_COLS] = [0; ANN_COLS];
    static mut MULT: [i64; ANN_PARAMS] = [0; ANN_PARAMS];
    static mut OFF: [i64; ANN_PARAMS] = [0; ANN_PARAMS];
    static mut PATCH: [u8; ANN_PATCH] = [0; ANN_PATCH];
    take_once();
    // SAFETY: `take_once` hands out these references at most once.
    unsafe {
        crate::ann::Scratch {
            act: &mut *core::ptr::addr_of_mut!(ACT),
            acc: &mut *core::ptr::addr_of_mut!(ACC),
            mult: &mut *core::ptr::addr_of_mut!(MULT),
            off: &mut *core::ptr::addr_of_mut!(OFF),
            patch: &mut *core::ptr::addr_of_mut!(PATCH),
        }
    }
}
