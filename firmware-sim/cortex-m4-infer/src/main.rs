//! The inference-only build on a Cortex-M4F: `cavmem-core` without its `learn` feature.
//! Loads a DDPG actor snapshot (built into the image), builds observations for a two-VM
//! node with the MDP, bids with the frozen actor, and turns the bids into allocations with
//! the Bid Analyzer; prints a digest of the bids and allocations over semihosting. Its ELF
//! is what `cavmem footprint` reports as the inference-only image.

#![no_std]
#![no_main]

use cavmem_core::agent::FrozenActor;
use cavmem_core::bid::{BidConfig, VmGrant, analyze};
use cavmem_core::mdp::{MdpParams, NodeMdp, Observation, VmSample};
use cavmem_core::units::GIB;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};

/// A DDPG actor snapshot (docs/snapshot.md), written by `cavmem selftest --save-actor`.
static SNAPSHOT: &[u8] = include_bytes!("../actor.cavm");

#[entry]
fn main() -> ! {
    let mut actor = FrozenActor::zeroed();
    if actor.load_snapshot(SNAPSHOT).is_err() {
        say(b"cavmem-m4-infer: snapshot refused\n");
        debug::exit(debug::EXIT_FAILURE);
    }
    let mut mdp = NodeMdp::new(MdpParams::default());
    let config = BidConfig::new(6 * GIB);
    let mut allocations = [GIB, GIB];
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |w: u64| {
        for b in w.to_le_bytes() {
            digest = (digest ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for step in 0..100u32 {
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
        let bids = obs.map(|o| actor.act(&o).map_or(0.0, |d| d.bid));
        let mut grants = [VmGrant::default(); 2];
        if analyze(&config, &mut allocations, &bids, &mut grants).is_err() {
            break;
        }
        mix(u64::from(bids[0].to_bits()) << 32 | u64::from(bids[1].to_bits()));
        mix(allocations[0] ^ allocations[1].rotate_left(17));
    }
    // Hex by hand: no core::fmt in the image.
    let mut line = *b"cavmem inference digest 0000000000000000\n";
    for (k, d) in line[24..40].iter_mut().enumerate() {
        let nibble = (digest >> (60 - 4 * k)) & 0xf;
        *d = b"0123456789abcdef"[nibble as usize];
    }
    say(&line);
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::wfi();
    }
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
