//! The model bundled at build time (`EMBER_MODEL`, see `build.rs`), executed in place from
//! flash, and the statically allocated memory it runs in: the arena, the loaded model's
//! description and the input buffer all live in `.bss`, not on the stack, so that the stack
//! holds only call frames (see `STACK_RESERVE` in `firmware/board-build`).

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};
#[cfg(not(feature = "ann-baseline"))]
use ember_runtime::Arena;
use ember_runtime::{Model, ModelSlot};

use crate::fault;

include!(concat!(env!("OUT_DIR"), "/model_consts.rs"));

/// The `.ember` file, in flash.
pub static BYTES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/model.ember"));

#[cfg(not(feature = "ann-baseline"))]
static mut ARENA: Arena<ARENA_BYTES> = Arena::new();
static TAKEN: AtomicBool = AtomicBool::new(false);
/// The loaded model (its layer list and plan: about 2 KB on a 32-bit core). Uninitialised
/// until [`load`], so that it takes no flash: `ModelSlot::new()` as the initial value would
/// put these bytes in `.data`, whose initial image is stored in flash.
static mut MODEL: MaybeUninit<ModelSlot<'static>> = MaybeUninit::uninit();
static MODEL_TAKEN: AtomicBool = AtomicBool::new(false);
/// One input sample, filled by the samples reader before each inference.
static mut INPUT: [u8; INPUT_BYTES] = [0; INPUT_BYTES];
static INPUT_TAKEN: AtomicBool = AtomicBool::new(false);

/// Panics unless this is the first call for `flag`: each static is handed out once.
pub(crate) fn take_once(flag: &AtomicBool) {
    // Load then store inside a critical section: thumbv6m has no atomic swap.
    let taken = cortex_m::interrupt::free(|_| {
        flag.load(Ordering::Relaxed) || {
            flag.store(true, Ordering::Relaxed);
            false
        }
    });
    assert!(!taken, "static memory taken twice");
}

/// The arena, in `.bss`. Panics if called twice.
#[cfg(not(feature = "ann-baseline"))]
pub fn arena() -> &'static mut [u8] {
    take_once(&TAKEN);
    // SAFETY: `take_once` hands out this reference at most once.
    unsafe { &mut *core::ptr::addr_of_mut!(ARENA.0) }
}

/// Loads and validates the bundled model in place into a static (`.bss`) and returns it; a
/// model the runtime refuses ends the run. Not inlined: the decoder's frames live only
/// while it runs. Panics if called twice.
#[inline(never)]
pub fn load() -> &'static Model<'static> {
    take_once(&MODEL_TAKEN);
    // SAFETY: `take_once` lets this line run at most once, so no other reference exists.
    let slot = unsafe { (*core::ptr::addr_of_mut!(MODEL)).write(ModelSlot::new()) };
    slot.load(BYTES)
        .unwrap_or_else(|e| fault::fail("bundled model", e))
}

/// The input buffer (one sample), in `.bss`. Panics if called twice.
pub fn input() -> &'static mut [u8; INPUT_BYTES] {
    take_once(&INPUT_TAKEN);
    // SAFETY: `take_once` hands out this reference at most once.
    unsafe { &mut *core::ptr::addr_of_mut!(INPUT) }
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
    take_once(&TAKEN);
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
