//! Times learning steps in a loop and prints the mean time per step and a digest of the
//! losses, so two builds can be compared as whole processes (`/usr/bin/time`, alternated):
//! `cargo run --release -p cavmem-core --features std,fma --example learn_loop -- 20000`
//! (DDPG; add `dqn` after the step count for DQN). The replay holds 4,096 random
//! transitions, as in the criterion benches `learn/ddpg` and `learn/dqn`. With `std`,
//! `CAVMEM_KERNELS=generic|avx512` chooses the kernels (default: the widest this CPU runs).

use std::process::ExitCode;
use std::time::Instant;

use cavmem_core::agent::ddpg::BATCH;
use cavmem_core::agent::{AgentTransition, Ddpg, DdpgParams, Dqn, DqnParams, LearnOutcome, Policy};
use cavmem_core::rng::Rng;

fn main() -> ExitCode {
    let steps = match std::env::args().nth(1).map(|s| s.parse::<u32>()) {
        None => 20_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("learn_loop: the argument is the number of learning steps, a positive integer");
            return ExitCode::FAILURE;
        }
    };
    #[cfg(feature = "std")]
    if let Err(e) = cavmem_core::simd::select_from_env() {
        eprintln!("learn_loop: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!("kernels: {}", cavmem_core::simd::active().describe());
    match std::env::args().nth(2).as_deref() {
        None | Some("ddpg") => time_learning(
            "DDPG",
            &mut *Box::new(Ddpg::<16_384, BATCH>::new(DdpgParams::default(), 7)),
            steps,
        ),
        Some("dqn") => time_learning(
            "DQN",
            &mut *Box::new(Dqn::<16_384, BATCH>::new(DqnParams::default(), 7)),
            steps,
        ),
        Some(other) => {
            eprintln!("learn_loop: the second argument is `ddpg` or `dqn`, not `{other}`");
            ExitCode::FAILURE
        }
    }
}

/// Fills the agent's replay with random transitions, then times `steps` learning steps.
fn time_learning<P: Policy>(name: &str, agent: &mut P, steps: u32) -> ExitCode {
    let mut rng = Rng::seed_from_u64(3);
    for _ in 0..4096 {
        let t = AgentTransition::random(&mut rng);
        if let Err(e) = agent.record(&t) {
            eprintln!("learn_loop: recording a transition failed: {e:?}");
            return ExitCode::FAILURE;
        }
    }
    let start = Instant::now();
    let mut digest = 0xcbf2_9ce4_8422_2325u64;
    for _ in 0..steps {
        match agent.learn() {
            Ok(LearnOutcome::Updated { loss }) => {
                digest = (digest ^ u64::from(loss.to_bits())).wrapping_mul(0x0100_0000_01b3);
            }
            Ok(other) => {
                eprintln!("learn_loop: a step did not update: {other:?}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("learn_loop: learning failed: {e:?}");
                return ExitCode::FAILURE;
            }
        }
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(steps);
    println!("{steps} {name} learning steps: {us:.2} us each, loss digest {digest:016x}");
    ExitCode::SUCCESS
}
