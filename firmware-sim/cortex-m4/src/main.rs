//! The CAVMem core on a Cortex-M4F: runs the core's self-test script (a DDPG agent acting,
//! recording and learning for 200 steps) and prints its digest over semihosting. CI runs it
//! under QEMU (`-machine mps2-an386`) and checks the digest equals the x86-64 build's
//! (`cavmem selftest`).

#![no_std]
#![no_main]

use cavmem_core::agent::Policy;
use cavmem_core::mdp::Observation;
use cavmem_core::selftest::{run_selftest, selftest_agent};
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};

#[path = "../../m4-common/measure.rs"]
mod measure;
#[path = "../../m4-common/vectors.rs"]
mod vectors;

#[entry]
fn main() -> ! {
    let mut agent = selftest_agent();
    let digest = run_selftest(&mut agent);
    hprintln!("cavmem selftest digest {:016x}", digest);

    // Cost per call, counted with SysTick on the core clock. Under QEMU's `-icount`, virtual
    // time advances with executed instructions; a calibration loop of known length converts
    // ticks to instructions (`cavmem footprint` does the arithmetic). The stack figures are
    // what act and learn use below the caller's frame (the agent itself lives in `main`'s
    // frame here).
    measure::start_systick();
    let calibration = measure::calibration_ticks();
    let obs = Observation {
        msr: 0.2,
        mem_share: 0.3,
        avg_msr: 0.1,
        msr_tgt: -0.2,
        total_mem_use: 0.6,
    };
    // Through the trait object: the calls use the out-of-line methods instead of inlining
    // a second copy of the learner into `main`.
    let policy: &mut dyn Policy = &mut agent;
    policy.set_exploration(false);
    const ACTS: u32 = 100;
    const LEARNS: u32 = 5;
    let (mut act, mut learn) = (0, 0);
    let act_stack = measure::stack_bytes(|| {
        act = measure::ticks(|| {
            for _ in 0..ACTS {
                let _ = policy.act(&obs);
            }
        })
    });
    let learn_stack = measure::stack_bytes(|| {
        learn = measure::ticks(|| {
            for _ in 0..LEARNS {
                let _ = policy.learn();
            }
        })
    });
    // The actor's snapshot saved into a buffer in `main`'s frame and loaded back (in place),
    // after the cost runs (a load also resets the target actor).
    let mut snapshot = [0u8; cavmem_core::agent::frozen::ACTOR_SNAPSHOT_BYTES];
    let mut round_trip = false;
    let snapshot_stack = measure::stack_bytes(|| {
        round_trip = agent
            .save_snapshot(&mut snapshot)
            .is_ok_and(|n| agent.load_snapshot(snapshot.get(..n).unwrap_or_default()).is_ok());
    });
    if !round_trip {
        hprintln!("cavmem-m4: the actor snapshot did not load back");
        debug::exit(debug::EXIT_FAILURE);
    }
    hprintln!(
        "cavmem m4 cost: calibration_instructions={} calibration_ticks={} acts={} act_ticks={} learns={} learn_ticks={} act_stack_bytes={} learn_stack_bytes={} snapshot_stack_bytes={}",
        3 * measure::CALIBRATION_LOOPS,
        calibration,
        ACTS,
        act,
        LEARNS,
        learn,
        act_stack,
        learn_stack,
        snapshot_stack
    );
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
