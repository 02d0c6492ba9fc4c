//! The inference-only build on a Cortex-M4F: `cavmem-core` without its `learn` feature.
//! Loads a DDPG actor snapshot (built into the image), builds observations for a two-VM
//! node with the MDP, bids with the frozen actor, and turns the bids into allocations with
//! the Bid Analyzer; prints a digest of the bids and allocations over semihosting. Its ELF
//! is what `cavmem footprint` reports as the inference-only image.
//!
//! With the `int8` feature the actor is quantized when loaded and acts with its hidden
//! layer in int8 (`cavmem_core::agent::int8`): the same measurements, for comparison.
//!
//! It also measures itself (`../m4-common/measure.rs`): the stack high-water mark of the
//! decision steps (observe, act and analyze bids for both VMs) and SysTick ticks per act and
//! per decision step, which QEMU's `-icount` turns into instruction counts.

#![no_std]
#![no_main]

use cavmem_core::agent::FrozenActor;
#[cfg(feature = "int8")]
use cavmem_core::agent::int8::FrozenInt8;
use cavmem_core::bid::{BidConfig, VmGrant, analyze};
use cavmem_core::mdp::{MdpParams, NodeMdp, Observation, VmSample};
use cavmem_core::units::GIB;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};

#[path = "../../m4-common/measure.rs"]
mod measure;
#[path = "../../m4-common/vectors.rs"]
mod vectors;

/// A DDPG actor snapshot (docs/snapshot.md), written by `cavmem selftest --save-actor`.
static SNAPSHOT: &[u8] = include_bytes!("../actor.cavm");

/// The policy that acts: the frozen actor, or (feature `int8`) its int8 version.
#[cfg(not(feature = "int8"))]
type Actor = FrozenActor;
#[cfg(feature = "int8")]
type Actor = FrozenInt8;

/// Loads the snapshot into `actor`; whether it was accepted.
#[cfg(not(feature = "int8"))]
fn load(actor: &mut Actor) -> bool {
    actor.load_snapshot(SNAPSHOT).is_ok()
}

/// Loads the snapshot into a frozen actor and quantizes it into `actor`.
#[cfg(feature = "int8")]
fn load(actor: &mut Actor) -> bool {
    let mut frozen = FrozenActor::zeroed();
    match frozen.load_snapshot(SNAPSHOT).map(|()| FrozenInt8::from_actor(&frozen)) {
        Ok(Ok(q)) => {
            *actor = q;
            true
        }
        _ => false,
    }
}

/// Decision steps in the digest and in the measurements.
const STEPS: u32 = 100;
/// Runs the decision steps of a two-VM node of 6 GiB and returns the FNV-1a digest of the
/// bids and allocations.
#[inline(never)]
fn run_steps(actor: &Actor) -> u64 {
    let mut mdp = NodeMdp::new(MdpParams::default());
    let config = BidConfig::new(6 * GIB);
    let mut allocations = [GIB, GIB];
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |w: u64| {
        for b in w.to_le_bytes() {
            digest = (digest ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for step in 0..STEPS {
        let rates = [(step % 17) as f32 * 900.0, (step % 23) as f32 * 700.0];
        let samples = [0, 1].map(|j| VmSample {
            miss_rate_pages_per_s: rates[j],
            allocation_bytes: allocations[j],
            msr_bound_pages_per_s: 60_000.0,
        });
        let mut obs = [Observation::default(); 2];
        if mdp.observe(config.capacity_bytes, &samples, &mut obs).is_err() {
            break;
        }
        let bids = obs.map(|o| bid(actor, &o));
        let mut grants = [VmGrant::default(); 2];
        if analyze(&config, &mut allocations, &bids, &mut grants).is_err() {
            break;
        }
        mix(u64::from(bids[0].to_bits()) << 32 | u64::from(bids[1].to_bits()));
        mix(allocations[0] ^ allocations[1].rotate_left(17));
    }
    digest
}

/// The actor's bid for `obs` (0, "keep", if it refuses); one out-of-line copy of the
/// forward pass for both callers.
#[inline(never)]
fn bid(actor: &Actor, obs: &Observation) -> f32 {
    actor.act(obs).map_or(0.0, |d| d.bid)
}

/// `STEPS` actor forward passes on one observation.
#[inline(never)]
fn run_acts(actor: &Actor) {
    let obs = Observation {
        msr: 0.2,
        mem_share: 0.3,
        avg_msr: 0.1,
        msr_tgt: -0.2,
        total_mem_use: 0.6,
    };
    for _ in 0..STEPS {
        let _ = core::hint::black_box(bid(actor, core::hint::black_box(&obs)));
    }
}

#[entry]
fn main() -> ! {
    let mut actor = Actor::zeroed();
    let mut loaded = false;
    let load_stack_bytes = measure::stack_bytes(|| loaded = load(&mut actor));
    if !loaded {
        say(b"cavmem-m4-infer: snapshot refused\n");
        debug::exit(debug::EXIT_FAILURE);
    }

    measure::start_systick();
    let mut digest = 0;
    let mut step_ticks = 0;
    let stack_bytes = measure::stack_bytes(|| step_ticks = measure::ticks(|| digest = run_steps(&actor)));
    let act_ticks = measure::ticks(|| run_acts(&actor));
    let calibration_ticks = measure::calibration_ticks();

    // No core::fmt in the image: hex and decimal by hand.
    let mut line = *b"cavmem inference digest 0000000000000000\n";
    for (k, d) in line[24..40].iter_mut().enumerate() {
        *d = b"0123456789abcdef"[((digest >> (60 - 4 * k)) & 0xf) as usize];
    }
    say(&line);
    say(b"cavmem m4 infer cost: calibration_instructions=");
    say_u32(3 * measure::CALIBRATION_LOOPS);
    say(b" calibration_ticks=");
    say_u32(calibration_ticks);
    say(b" acts=");
    say_u32(STEPS);
    say(b" act_ticks=");
    say_u32(act_ticks);
    say(b" steps=");
    say_u32(STEPS);
    say(b" step_ticks=");
    say_u32(step_ticks);
    say(b" step_stack_bytes=");
    say_u32(stack_bytes as u32);
    say(b" load_stack_bytes=");
    say_u32(load_stack_bytes as u32);
    say(b"\n");
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::wfi();
    }
}

/// Writes `n` in decimal.
fn say_u32(mut n: u32) {
    let mut buf = [b' '; 10];
    for d in buf.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    say(buf.trim_ascii_start());
}

/// Writes bytes to the host's stdout over semihosting.
fn say(bytes: &[u8]) {
    if let Ok(mut out) = hio::hstdout() {
        let _ = out.write_all(bytes);
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
