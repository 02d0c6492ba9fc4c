//! The CAVMem core on a Cortex-M4F: runs the core's self-test script (a DDPG agent acting,
//! recording and learning for 200 steps) and prints its digest over semihosting. CI runs it
//! under QEMU (`-machine mps2-an386`) and checks the digest equals the x86-64 build's
//! (`cavmem selftest`).

#![no_std]
#![no_main]

use cavmem_core::selftest::{run_selftest, selftest_agent};
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};

#[entry]
fn main() -> ! {
    let mut agent = selftest_agent();
    let digest = run_selftest(&mut agent);
    hprintln!("cavmem selftest digest {:016x}", digest);
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("cavmem-m4 panicked: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
