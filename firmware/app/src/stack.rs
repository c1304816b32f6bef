//! Stack high-water mark. cortex-m-rt's `paint-stack` feature fills the stack with a
//! pattern at reset; the lowest word no longer holding it marks the deepest use.

/// The pattern cortex-m-rt paints the stack with.
const PAINT: u32 = 0xCCCC_CCCC;

extern "C" {
    /// Lowest stack address (end of statics), from cortex-m-rt's linker script.
    static _stack_end: u32;
    /// Initial stack pointer, the top of the stack.
    static _stack_start: u32;
}

/// Bytes of stack used so far at most.
pub fn peak_bytes() -> u32 {
    let bottom = core::ptr::addr_of!(_stack_end) as usize;
    let top = core::ptr::addr_of!(_stack_start) as usize;
    let mut p = bottom;
    // SAFETY: every word between the two linker symbols is RAM reserved for the stack;
    // reading it has no side effects.
    while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    (top - p) as u32
}
