//! A fixed self-test script and its digest: the same bits on every target.
//!
//! The script drives a DDPG agent (replay of 256) through [`SELFTEST_STEPS`] seeded steps
//! — act on an observation, record the transition, learn — and hashes every bid, every
//! loss and the final actor weights (FNV-1a, 64 bit). Builds with the same arithmetic print
//! the same digest on every target (CI compares the Cortex-M4F image under QEMU with the
//! x86-64 build of the unfused arithmetic, and checks the fused one on x86-64): fixed
//! summation order, multiply-adds rounded as the `fma` feature says
//! ([`crate::nn::kernels`]), transcendental functions from `libm`.

use crate::agent::{AgentTransition, Ddpg, DdpgParams, LearnOutcome, Policy};
use crate::mdp::Observation;
use crate::nn::Parameters;
use crate::noise::EpsilonSchedule;
use crate::rng::Rng;

/// Steps of the script.
pub const SELFTEST_STEPS: u32 = 200;
/// Replay capacity of the self-test agent (small enough for a microcontroller's RAM).
pub const SELFTEST_REPLAY: usize = 256;

/// FNV-1a over 32-bit words.
#[derive(Clone, Copy, Debug)]
struct Fnv(u64);

impl Fnv {
    fn word(&mut self, w: u32) {
        for b in w.to_le_bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Runs the script on `agent` (freshly made by [`selftest_agent`]) and returns the digest.
pub fn run_selftest(agent: &mut Ddpg<SELFTEST_REPLAY>) -> u64 {
    let mut digest = Fnv(0xcbf2_9ce4_8422_2325);
    let mut env = Rng::seed_from_u64(2024);
    let mut obs = Observation::random(&mut env);
    for step in 0..SELFTEST_STEPS {
        let bid = agent.act(&obs).map_or(0.0, |d| d.bid);
        digest.word(bid.to_bits());
        let next = Observation::random(&mut env);
        let reward = -libm::fabsf(bid - obs.msr) - 0.5 * (next.msr + 1.0) * 0.5;
        let t = AgentTransition {
            state: obs,
            bid,
            reward,
            next_state: next,
            done: step % 50 == 49,
        };
        let _ = agent.record(&t);
        if let Ok(LearnOutcome::Updated { loss }) = agent.learn() {
            digest.word(loss.to_bits());
        }
        obs = next;
    }
    for w in agent.actor_parameters().tensors().flatten() {
        digest.word(w.to_bits());
    }
    digest.0
}

/// The self-test's agent: DDPG with the paper's hyperparameters, seed 1, a short ε schedule.
pub fn selftest_agent() -> Ddpg<SELFTEST_REPLAY> {
    let epsilon = EpsilonSchedule {
        explore_steps: 50,
        anneal_steps: 100,
        ..EpsilonSchedule::default()
    };
    Ddpg::new(
        DdpgParams {
            epsilon,
            learn_starts: 64,
            ..DdpgParams::default()
        },
        1,
    )
}

/// The digest this revision computes with separate multiplies and adds (feature `fma`
/// off): x86-64 and the Cortex-M4F alike.
pub const GOLDEN_DIGEST_UNFUSED: u64 = 0xc261_5bc9_13db_509d;
/// The digest this revision computes with fused multiply-adds (feature `fma` on): with the
/// CPU's instruction (x86-64-v3) and with `libm::fmaf` (an x86-64 baseline build) alike.
pub const GOLDEN_DIGEST_FUSED: u64 = 0x2763_eddb_37ee_f44b;
/// The digest of this build's arithmetic ([`crate::nn::kernels::FUSED`]).
pub const GOLDEN_DIGEST: u64 = if crate::nn::kernels::FUSED {
    GOLDEN_DIGEST_FUSED
} else {
    GOLDEN_DIGEST_UNFUSED
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest is a golden value: it changes only when the arithmetic changes, and then
    /// the Cortex-M4 check in CI must agree with the new value too.
    #[test]
    fn selftest_digest_is_stable() {
        std::thread::Builder::new()
            .stack_size(16 << 20)
            .spawn(|| {
                // Every kernel path this machine has: the same bits.
                let paths = cavmem_simd::KernelPath::ALL
                    .into_iter()
                    .filter(|p| cavmem_simd::available(*p));
                for path in paths {
                    assert_eq!(cavmem_simd::select(path), Ok(()));
                    let a = run_selftest(&mut selftest_agent());
                    let b = run_selftest(&mut selftest_agent());
                    assert_eq!(a, b, "{path:?}");
                    assert_eq!(a, GOLDEN_DIGEST, "selftest digest {a:016x} on {path:?}");
                }
                let _ = cavmem_simd::select(cavmem_simd::detect());
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
