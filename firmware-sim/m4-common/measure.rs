//! Self-measurement shared by the Cortex-M4 images (included with `#[path]`): the stack
//! high-water mark of a call, by painting the free stack below the caller and scanning it
//! afterwards, and SysTick ticks, which QEMU's `-icount` turns into instruction counts
//! (`cavmem footprint` does the arithmetic with [`calibration_ticks`]).

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;

/// The word painted over the free stack.
const PAINT: u32 = 0xA5A5_A5A5;
/// How much stack below the caller's frame is painted and scanned, bytes.
const PAINT_BYTES: usize = 64 * 1024;
/// Room left for `paint`'s own frame, bytes.
const MARGIN: usize = 64;
/// Iterations of the calibration loop (three instructions each).
pub const CALIBRATION_LOOPS: u32 = 100_000;

/// Starts SysTick on the core clock, counting down from its maximum.
pub fn start_systick() {
    // SAFETY: the images' only user of the core peripherals, before anything else runs.
    let mut cp = unsafe { cortex_m::Peripherals::steal() };
    cp.SYST.set_clock_source(SystClkSource::Core);
    cp.SYST.set_reload(0x00FF_FFFF);
    cp.SYST.clear_current();
    cp.SYST.enable_counter();
}

/// SysTick ticks elapsed while `f` runs (the counter counts down from 2^24 − 1; runs must
/// stay within one wrap).
pub fn ticks(f: impl FnOnce()) -> u32 {
    let start = SYST::get_current();
    f();
    let end = SYST::get_current();
    start.wrapping_sub(end) & 0x00FF_FFFF
}

/// Ticks of a loop of `3 * CALIBRATION_LOOPS` instructions.
pub fn calibration_ticks() -> u32 {
    ticks(|| {
        // Three instructions per iteration: subs, nop, bne.
        let mut n = CALIBRATION_LOOPS;
        // SAFETY: a register-only loop.
        unsafe {
            core::arch::asm!("2:", "subs {n}, {n}, #1", "nop", "bne 2b", n = inout(reg) n, options(nomem, nostack))
        };
        let _ = n;
    })
}

/// Bytes of stack that `f` uses below the caller's frame.
#[inline(always)]
pub fn stack_bytes(f: impl FnOnce()) -> usize {
    paint();
    let top = cortex_m::register::msp::read() as usize;
    f();
    top - lowest_touched(top)
}

/// Paints `PAINT_BYTES` of stack below this function's frame.
#[inline(never)]
fn paint() {
    let sp = cortex_m::register::msp::read() as usize;
    let mut p = (sp - MARGIN - PAINT_BYTES) & !3;
    while p < sp - MARGIN {
        // SAFETY: free stack below the live frames; no interrupts are enabled.
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// The lowest address below `top` whose paint was overwritten; `top` if none was.
#[inline(never)]
fn lowest_touched(top: usize) -> usize {
    // Above the painted region's low end by at least `MARGIN`: every word scanned was painted.
    let mut p = (top - PAINT_BYTES) & !3;
    while p < top {
        // SAFETY: reads of the painted region, below the live frames.
        if unsafe { core::ptr::read_volatile(p as *const u32) } != PAINT {
            return p;
        }
        p += 4;
    }
    top
}
