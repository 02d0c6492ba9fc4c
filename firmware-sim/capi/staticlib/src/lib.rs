//! `libcavmem.a`: the C entry points of `cavmem-capi` (`#[unsafe(no_mangle)]`, linked in
//! whole) plus the panic handler a static library for C needs.

#![no_std]

pub use cavmem_capi::*;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // No call in the C interface can panic on any input (the core's decision path has no
    // panics); if one did, stopping here beats unwinding into C.
    loop {
        core::hint::spin_loop();
    }
}
