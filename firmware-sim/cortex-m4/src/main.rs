//! The CAVMem core on a Cortex-M4F: runs the core's self-test script (a DDPG agent acting,
//! recording and learning for 200 steps) and prints its digest over semihosting. CI runs it
//! under QEMU (`-machine mps2-an386`) and checks the digest equals the x86-64 build's
//! (`cavmem selftest`).

#![no_std]
#![no_main]

use cavmem_core::agent::Policy;
use cavmem_core::mdp::Observation;
use cavmem_core::selftest::{run_selftest, selftest_agent};
use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};

/// SysTick ticks elapsed while `f` runs (the counter counts down from 2^24 − 1; runs must
/// stay within one wrap).
fn ticks(f: impl FnOnce()) -> u32 {
    let start = SYST::get_current();
    f();
    let end = SYST::get_current();
    start.wrapping_sub(end) & 0x00FF_FFFF
}

#[entry]
fn main() -> ! {
    let mut agent = selftest_agent();
    let digest = run_selftest(&mut agent);
    hprintln!("cavmem selftest digest {:016x}", digest);

    // Cost per call, counted with SysTick on the core clock. Under QEMU's `-icount`, virtual
    // time advances with executed instructions; a calibration loop of known length converts
    // ticks to instructions (`cavmem footprint` does the arithmetic).
    if let Some(mut cp) = cortex_m::Peripherals::take() {
        cp.SYST.set_clock_source(SystClkSource::Core);
        cp.SYST.set_reload(0x00FF_FFFF);
        cp.SYST.clear_current();
        cp.SYST.enable_counter();
        const CALIBRATION_LOOPS: u32 = 100_000;
        let calibration = ticks(|| {
            // Three instructions per iteration: subs, nop, bne.
            let mut n = CALIBRATION_LOOPS;
            // SAFETY: a register-only loop.
            unsafe {
                core::arch::asm!("2:", "subs {n}, {n}, #1", "nop", "bne 2b", n = inout(reg) n, options(nomem, nostack))
            };
            let _ = n;
        });
        let obs = Observation {
            msr: 0.2,
            mem_share: 0.3,
            avg_msr: 0.1,
            msr_tgt: -0.2,
            total_mem_use: 0.6,
        };
        // Through the trait object: the calls use the out-of-line methods instead of inlining
        // a second copy of the learner into `main`.
        let agent: &mut dyn Policy = &mut agent;
        agent.set_exploration(false);
        const ACTS: u32 = 100;
        const LEARNS: u32 = 5;
        let act = ticks(|| {
            for _ in 0..ACTS {
                let _ = agent.act(&obs);
            }
        });
        let learn = ticks(|| {
            for _ in 0..LEARNS {
                let _ = agent.learn();
            }
        });
        hprintln!(
            "cavmem m4 cost: calibration_instructions={} calibration_ticks={} acts={} act_ticks={} learns={} learn_ticks={}",
            3 * CALIBRATION_LOOPS,
            calibration,
            ACTS,
            act,
            LEARNS,
            learn
        );
    }
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
