//! Learning tests on tiny problems with fixed seeds, determinism, fallbacks and sizes.

#![cfg(feature = "learn")]

use std::boxed::Box;
use std::vec::Vec;

use super::*;
use crate::mdp::Observation;
use crate::noise::{Anneal, EpsilonSchedule};
use crate::rng::Rng;

/// A short schedule for tiny problems: explore fully for `explore` steps, then anneal.
fn short_schedule(explore: u64, anneal: u64) -> EpsilonSchedule {
    EpsilonSchedule {
        start: 1.0,
        end: 0.01,
        explore_steps: explore,
        anneal_steps: anneal,
        anneal: Anneal::Linear,
    }
}

fn obs_with_msr(msr: f32) -> Observation {
    Observation {
        msr,
        mem_share: 0.3,
        avg_msr: 0.0,
        msr_tgt: 0.0,
        total_mem_use: 0.6,
    }
}

/// One-step task: the state carries a target `x` in `msr`; the reward is `−|bid − x|`.
/// Returns the mean absolute error of the greedy policy on a fixed grid of targets.
fn train_tracking<P: Policy + ?Sized>(
    policy: &mut P,
    steps: u32,
    seed: u64,
    target: impl Fn(f32) -> f32,
) -> f32 {
    let mut rng = Rng::seed_from_u64(seed);
    for _ in 0..steps {
        let x = rng.uniform_range(-1.0, 1.0);
        let state = obs_with_msr(x);
        let decision = policy.act(&state).unwrap();
        let reward = -(decision.bid - target(x)).abs();
        let next_state = obs_with_msr(rng.uniform_range(-1.0, 1.0));
        policy
            .record(&AgentTransition {
                state,
                bid: decision.bid,
                reward,
                next_state,
                done: true,
            })
            .unwrap();
        policy.learn().unwrap();
    }
    greedy_error(policy, target)
}

fn greedy_error<P: Policy + ?Sized>(policy: &mut P, target: impl Fn(f32) -> f32) -> f32 {
    policy.set_exploration(false);
    let grid: Vec<f32> = (0..41).map(|k| -1.0 + k as f32 * 0.05).collect();
    let err: f32 = grid
        .iter()
        .map(|x| (policy.act(&obs_with_msr(*x)).unwrap().bid - target(*x)).abs())
        .sum();
    policy.set_exploration(true);
    err / grid.len() as f32
}

/// Mean error of uniformly random bids on the same task: E|U(-1,1) − t| averaged over the grid.
fn random_error(target: impl Fn(f32) -> f32) -> f32 {
    let mut rng = Rng::seed_from_u64(99);
    let n = 20_000;
    (0..n)
        .map(|_| (rng.uniform_range(-1.0, 1.0) - target(rng.uniform_range(-1.0, 1.0))).abs())
        .sum::<f32>()
        / n as f32
}

/// The continuous target: a bid of 0.8·x (reachable by tanh, varies across the state).
fn continuous_target(x: f32) -> f32 {
    0.8 * x
}

/// The discrete target for the three-action learners: release, hold, or grow by the sign of x.
fn discrete_target(x: f32) -> f32 {
    if x < -0.35 {
        -0.25
    } else if x > 0.35 {
        0.25
    } else {
        0.0
    }
}

#[test]
fn ddpg_learns_continuous_tracking() {
    let params = DdpgParams {
        actor_lr: 1e-3,
        epsilon: short_schedule(300, 700),
        ..DdpgParams::default()
    };
    let mut agent = Box::new(Ddpg::<2048>::new(params, 1));
    let err = train_tracking(agent.as_mut(), 3_000, 2, continuous_target);
    let random = random_error(continuous_target);
    assert!(err < 0.08, "DDPG tracking error {err} (random: {random})");
    assert!(err < random / 5.0);
    let stats = agent.stats();
    assert_eq!(stats.divergences, 0);
    assert!(stats.learn_steps > 2_900);
}

#[test]
fn td3_learns_continuous_tracking() {
    let params = DdpgParams {
        actor_lr: 1e-3,
        epsilon: short_schedule(300, 700),
        ..DdpgParams::td3()
    };
    let mut agent = Box::new(Td3::<2048>::new(params, 1));
    let err = train_tracking(agent.as_mut(), 3_000, 2, continuous_target);
    let random = random_error(continuous_target);
    assert!(err < 0.08, "TD3 tracking error {err} (random: {random})");
    let stats = agent.stats();
    assert_eq!(stats.divergences, 0);
    assert!(stats.learn_steps > 2_900);
}

#[test]
fn td3_moves_its_actor_every_policy_delay_steps() {
    let params = DdpgParams {
        learn_starts: 64,
        ..DdpgParams::td3()
    };
    let mut agent = Box::new(Td3::<256>::new(params, 3));
    let mut rng = Rng::seed_from_u64(4);
    for _ in 0..64 {
        agent.record(&AgentTransition::random(&mut rng)).unwrap();
    }
    let mut actor_moves = Vec::new();
    for _ in 0..4 {
        let before = agent.actor.net.clone();
        assert!(matches!(agent.learn(), Ok(LearnOutcome::Updated { .. })));
        actor_moves.push(agent.actor.net != before);
    }
    assert_eq!(actor_moves, [true, false, true, false]);
}

#[test]
fn dqn_learns_three_way_choice() {
    let params = DqnParams {
        epsilon: short_schedule(300, 700),
        tau: 0.01,
        ..DqnParams::default()
    };
    let mut agent = Box::new(Dqn::<2048>::new(params, 3));
    let err = train_tracking(agent.as_mut(), 3_000, 4, discrete_target);
    let random = random_error(discrete_target);
    assert!(err < 0.03, "DQN error {err} (random: {random})");
}

#[test]
fn ql_learns_three_way_choice() {
    std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(|| {
            let params = QlParams {
                epsilon: short_schedule(1_000, 1_000),
                alpha: 0.2,
                ..QlParams::default()
            };
            let mut agent = Box::new(QLearning::new(params, 5));
            let err = train_tracking(agent.as_mut(), 4_000, 6, discrete_target);
            let random = random_error(discrete_target);
            assert!(err < 0.03, "QL error {err} (random: {random})");
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn equal_split_moves_toward_equal_share() {
    let mut p = EqualSplit::new(EqualSplitParams { vm_count: 4 });
    let bid = |p: &mut EqualSplit, share: f32| {
        p.act(&Observation {
            mem_share: share,
            ..Observation::default()
        })
        .unwrap()
        .bid
    };
    assert_eq!(bid(&mut p, 0.25), 0.0);
    assert_eq!(bid(&mut p, 0.5), -0.5);
    assert_eq!(bid(&mut p, 0.1), 1.0, "clamped");
    assert_eq!(bid(&mut p, 0.0), 1.0);
    assert_eq!(p.learn().unwrap(), LearnOutcome::Skipped);
}

/// Runs a policy through 300 steps of the tracking task and returns the bits of every bid.
fn trajectory<P: Policy + ?Sized>(policy: &mut P) -> Vec<u32> {
    let mut rng = Rng::seed_from_u64(17);
    let mut bits = Vec::new();
    for _ in 0..300 {
        let state = obs_with_msr(rng.uniform_range(-1.0, 1.0));
        let d = policy.act(&state).unwrap();
        bits.push(d.bid.to_bits());
        let next_state = obs_with_msr(rng.uniform_range(-1.0, 1.0));
        policy
            .record(&AgentTransition {
                state,
                bid: d.bid,
                reward: -d.bid.abs(),
                next_state,
                done: false,
            })
            .unwrap();
        if let LearnOutcome::Updated { loss } = policy.learn().unwrap() {
            bits.push(loss.to_bits());
        }
    }
    bits
}

#[test]
fn policies_are_deterministic_per_seed() {
    std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(|| {
            let make = |kind: PolicyKind, seed: u64| -> Box<AnyPolicy<512>> {
                Box::new(AnyPolicy::new(kind, &PolicyParams::default(), seed, 2))
            };
            for kind in PolicyKind::ALL {
                let a = trajectory(make(kind, 8).as_mut());
                let b = trajectory(make(kind, 8).as_mut());
                assert_eq!(a, b, "{kind:?} differs between runs with one seed");
                if kind.learns() {
                    let c = trajectory(make(kind, 9).as_mut());
                    assert_ne!(a, c, "{kind:?} ignores its seed");
                }
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

/// The training chunk (`C`) only changes how many rows advance together: 8 (the default),
/// 5 (a partial last chunk), 48 (transposed weights in the first chunk, not the second)
/// and 64 (the whole minibatch, as the harness trains) give the same bits.
#[test]
fn training_chunk_size_does_not_change_the_bits() {
    std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(|| {
            let params = DdpgParams::default();
            let reference = trajectory(Box::new(Ddpg::<512>::new(params, 4)).as_mut());
            for (c, bits) in [
                (5, trajectory(Box::new(Ddpg::<512, 5>::new(params, 4)).as_mut())),
                (48, trajectory(Box::new(Ddpg::<512, 48>::new(params, 4)).as_mut())),
                (64, trajectory(Box::new(Ddpg::<512, 64>::new(params, 4)).as_mut())),
            ] {
                assert_eq!(bits, reference, "DDPG trained in chunks of {c} rows differs");
            }
            let paper = trajectory(Box::new(Ddpg::<512, 8, PaperCritic>::new(params, 4)).as_mut());
            let paper_whole = trajectory(Box::new(Ddpg::<512, 64, PaperCritic>::new(params, 4)).as_mut());
            assert_eq!(
                paper_whole, paper,
                "DDPG with the paper's critic differs between chunks"
            );
            assert_ne!(paper, reference, "the critic head changes nothing");
            let reference = trajectory(Box::new(Dqn::<512>::new(DqnParams::default(), 4)).as_mut());
            let whole = trajectory(Box::new(Dqn::<512, 64>::new(DqnParams::default(), 4)).as_mut());
            assert_eq!(whole, reference, "DQN trained in chunks of 64 rows differs");
        })
        .unwrap()
        .join()
        .unwrap();
}

/// The paper's tanh critic as a type gives the bits it gave as a runtime option (the
/// digest was computed with `CriticHead::Tanh` before the head became a type), and its
/// values stay within tanh's range.
#[test]
fn paper_critic_keeps_its_bits_and_range() {
    std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(|| {
            let mut agent = Box::new(Ddpg::<512, 8, PaperCritic>::new(DdpgParams::default(), 4));
            let bits = trajectory(agent.as_mut());
            let digest = bits
                .iter()
                .fold(0u64, |a, b| a.wrapping_mul(1_000_003).wrapping_add(u64::from(*b)));
            // Fused multiply-adds (feature `fma`) round once, so the bits differ from a
            // build without them.
            let expected = if cfg!(feature = "fma") {
                5_774_544_803_153_636_914
            } else {
                3_326_173_009_875_879_112
            };
            assert_eq!((bits.len(), digest), (537, expected));
            for msr in [-1.0, -0.3, 0.0, 0.4, 1.0] {
                for bid in [-1.0, 0.0, 1.0] {
                    let q = agent.q_value(&obs_with_msr(msr), bid);
                    assert!((-1.0..=1.0).contains(&q), "Q {q} outside tanh's range");
                }
            }
            assert_eq!(Ddpg::<512, 8, PaperCritic>::CRITIC_HEAD, "tanh");
            assert_eq!(Ddpg::<512>::CRITIC_HEAD, "identity");
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn policies_reject_invalid_inputs() {
    let mut agent = Box::new(Ddpg::<64>::new(DdpgParams::default(), 1));
    let bad = Observation {
        msr: f32::NAN,
        ..Observation::default()
    };
    assert!(matches!(agent.act(&bad), Err(PolicyError::InvalidObservation(_))));
    let good = obs_with_msr(0.1);
    let t = AgentTransition {
        state: good,
        bid: 0.0,
        reward: f32::INFINITY,
        next_state: good,
        done: false,
    };
    assert!(matches!(
        agent.record(&t),
        Err(PolicyError::InvalidTransition(common::TransitionField::Reward))
    ));
    let t = AgentTransition {
        bid: 1.5,
        reward: -1.0,
        ..t
    };
    assert!(matches!(
        agent.record(&t),
        Err(PolicyError::InvalidTransition(common::TransitionField::Bid))
    ));
    assert_eq!(agent.stats().replay_len, 0);
    assert_eq!(agent.learn().unwrap(), LearnOutcome::Skipped);
}

#[test]
fn ddpg_diverged_network_falls_back_and_recovers() {
    use crate::nn::Parameters;
    let mut agent = Box::new(Ddpg::<64>::new(DdpgParams::default(), 1));
    agent.actor.net.tensors_mut().next().unwrap()[0] = f32::NAN;
    let d = agent.act(&obs_with_msr(0.5)).unwrap();
    assert_eq!(d, Decision::hold(Fallback::NonFiniteOutput));
    assert_eq!(agent.stats().fallbacks, 1);
    assert_eq!(agent.stats().divergences, 1);
    let d = agent.act(&obs_with_msr(0.5)).unwrap();
    assert!(
        d.fallback.is_none() && d.bid.is_finite(),
        "re-initialized networks act again"
    );
}

#[test]
fn agent_sizes_are_compile_time_facts() {
    let ddpg_1024 = core::mem::size_of::<Ddpg<1024>>();
    std::println!(
        "size_of: Ddpg<1024> {ddpg_1024} B, Ddpg<16384> {} B, Ddpg<16384, 64> {} B, Dqn<1024> {} B, Dqn<16384, 64> {} B, QLearning {} B, EqualSplit {} B, Feedback {} B, Mom {} B, FrozenActor {} B, FrozenResidual {} B, FrozenQNetwork {} B",
        core::mem::size_of::<Ddpg<16384>>(),
        core::mem::size_of::<Ddpg<16384, 64>>(),
        core::mem::size_of::<Dqn<1024>>(),
        core::mem::size_of::<Dqn<16384, 64>>(),
        core::mem::size_of::<QLearning>(),
        core::mem::size_of::<EqualSplit>(),
        core::mem::size_of::<Feedback>(),
        core::mem::size_of::<Mom>(),
        core::mem::size_of::<crate::agent::FrozenActor>(),
        core::mem::size_of::<crate::agent::FrozenResidual>(),
        core::mem::size_of::<crate::agent::FrozenQNetwork>()
    );
    let td3_1024 = core::mem::size_of::<Td3<1024>>();
    std::println!(
        "size_of: Td3<1024> {td3_1024} B, Td3<16384, 64> {} B",
        core::mem::size_of::<Td3<16384, 64>>()
    );
    assert!(
        td3_1024 <= 384 * 1024,
        "a trainable TD3 agent with 1024 transitions must fit in 384 KiB: {td3_1024} B"
    );
    assert!(
        ddpg_1024 <= 256 * 1024,
        "a trainable DDPG agent with 1024 transitions must fit in 256 KiB: {ddpg_1024} B"
    );
    // A 64-row chunk adds 56 rows to the actor's and the critic's tape, each row
    // x, h1, h2, y, dz3, dh2, dh1: inputs + 2 + 4·HIDDEN floats.
    let tape_row = |inputs: usize| 4 * (inputs + 2 + 4 * crate::agent::shapes::HIDDEN);
    let grown = core::mem::size_of::<Ddpg<1024, 64>>() - ddpg_1024;
    assert_eq!(grown, 56 * (tape_row(5) + tape_row(6)));
}

#[cfg(feature = "fault-injection")]
#[test]
fn injected_parameter_faults_are_detected_and_recovered() {
    // Every kind of non-finite value, anywhere in the online networks: the next learning
    // step (or act) notices, re-initializes, and the parameters are finite again.
    let mut ddpg = Box::new(Ddpg::<64>::new(
        DdpgParams {
            learn_starts: 8,
            ..DdpgParams::default()
        },
        2,
    ));
    let mut dqn = Box::new(Dqn::<64>::new(
        DqnParams {
            learn_starts: 8,
            ..DqnParams::default()
        },
        2,
    ));
    let policies: [&mut dyn Policy; 2] = [&mut *ddpg, &mut *dqn];
    for policy in policies {
        train_tracking(policy, 16, 1, |x| x);
        assert!(policy.parameters_finite());
        for (k, value) in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY]
            .into_iter()
            .cycle()
            .take(30)
            .enumerate()
        {
            let before = policy.stats().divergences;
            assert!(policy.inject_parameter_fault(k * 977, value));
            assert!(!policy.parameters_finite(), "the fault is visible");
            let d = policy.act(&obs_with_msr(0.2)).unwrap();
            assert!(d.bid.is_finite() && (-1.0..=1.0).contains(&d.bid));
            policy.learn().unwrap();
            assert!(policy.parameters_finite(), "fault {k} recovered");
            assert_eq!(policy.stats().divergences, before + 1, "fault {k} counted once");
        }
    }
    let mut ql = Box::new(QLearning::new(QlParams::default(), 1));
    assert!(ql.parameters_finite());
    assert!(
        !ql.inject_parameter_fault(0, f32::NAN),
        "the table is not a network"
    );
}

/// Random transitions stay in the variables' ranges, pass validation and repeat per seed.
#[test]
fn agent_transition_random_is_valid_and_seeded() {
    let mut rng = Rng::seed_from_u64(11);
    let first: Vec<AgentTransition> = (0..1000).map(|_| AgentTransition::random(&mut rng)).collect();
    for t in &first {
        assert!((-1.0..1.0).contains(&t.bid), "{t:?}");
        assert!(t.reward <= 0.0 && t.reward > -1.0, "{t:?}");
        assert!(
            t.state.validate().is_ok() && t.next_state.validate().is_ok(),
            "{t:?}"
        );
        assert!(!t.done);
    }
    let mut again = Rng::seed_from_u64(11);
    assert!(first.iter().all(|t| *t == AgentTransition::random(&mut again)));
    assert_ne!(first[0], first[1]);
}

/// The registry: every policy's code is its place in `ALL`, names and codes parse back, and
/// an unknown code or name is refused.
#[test]
fn policy_kind_codes_and_names_round_trip() {
    for (i, kind) in PolicyKind::ALL.into_iter().enumerate() {
        assert_eq!(usize::from(kind.code()), i);
        assert_eq!(PolicyKind::from_code(kind.code()), Some(kind));
        assert_eq!(PolicyKind::from_name(kind.name()), Some(kind));
    }
    assert_eq!(PolicyKind::from_code(PolicyKind::ALL.len() as u8), None);
    assert_eq!(PolicyKind::from_name("sac"), None);
}

/// A policy set up in place ([`PolicySlots::configure`]) is the one [`AnyPolicy::new`]
/// builds: the same snapshot bytes after the same training.
#[test]
fn policy_slots_configure_what_any_policy_new_builds() {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let params = PolicyParams::with_epsilon(short_schedule(20, 20));
            let mut rng = Rng::seed_from_u64(5);
            let transitions: Vec<AgentTransition> =
                (0..80).map(|_| AgentTransition::random(&mut rng)).collect();
            let mut slots = Box::new(PolicySlots::<256>::new());
            assert!(slots.active().is_none());
            for kind in PolicyKind::ALL {
                let mut built = Box::new(AnyPolicy::<256>::new(kind, &params, 7, 3));
                slots.configure(kind, &params, 7, 3);
                assert_eq!(slots.kind(), Some(kind));
                let in_place = slots.active().unwrap();
                for t in &transitions {
                    let (a, b) = (built.act(&t.state).unwrap(), in_place.act(&t.state).unwrap());
                    assert_eq!(a.bid.to_bits(), b.bid.to_bits(), "{kind:?}");
                    built.record(t).unwrap();
                    in_place.record(t).unwrap();
                    let _ = (built.learn().unwrap(), in_place.learn().unwrap());
                }
                let (mut x, mut y) = (std::vec![0u8; 2 << 20], std::vec![0u8; 2 << 20]);
                let n = SnapshotPolicy::save_snapshot(&*built, &mut x).unwrap();
                let m = in_place.save_snapshot(&mut y).unwrap();
                assert_eq!(x[..n], y[..m], "{kind:?}");
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

/// The feedback controller's bid, clamped: what a fresh `residual` agent starts from.
fn feedback_bid(obs: &Observation) -> f32 {
    ResidualParams::default().base_bid(obs)
}

#[test]
fn residual_starts_at_its_controller_and_stays_within_its_scale() {
    let params = PolicyParams::default();
    let mut agent = Box::new(Ddpg::<256>::new_residual(params.ddpg, params.residual, 3));
    agent.set_exploration(false);
    let mut rng = Rng::seed_from_u64(8);
    let mut total = 0.0;
    for _ in 0..1_000 {
        let obs = Observation::random(&mut rng);
        let diff = (agent.act(&obs).unwrap().bid - feedback_bid(&obs)).abs();
        assert!(diff <= params.residual.scale, "{diff}");
        total += diff;
    }
    assert!(total / 1_000.0 < 0.01, "mean correction {}", total / 1_000.0);
}

/// Trains a `residual` agent on the one-step task whose best bid is 0.8 of the controller's;
/// returns the greedy error before and after training.
fn residual_tracking_errors(residual: ResidualParams) -> (f32, f32) {
    let target = |x: f32| 0.8 * feedback_bid(&obs_with_msr(x));
    let params = DdpgParams {
        actor_lr: 1e-3,
        epsilon: short_schedule(300, 700),
        ..DdpgParams::default()
    };
    let mut agent = Box::new(Ddpg::<2048>::new_residual(params, residual, 1));
    let before = greedy_error(agent.as_mut(), target);
    (before, train_tracking(agent.as_mut(), 3_000, 2, target))
}

/// The controller bids `feedback(x)`; the best bid is 0.8 of it: the residual agent learns
/// the correction (its error well below the controller's own).
#[test]
fn residual_learns_the_correction_its_controller_lacks() {
    let (before, err) = residual_tracking_errors(ResidualParams {
        correction_penalty: 0.0,
        ..ResidualParams::default()
    });
    assert!(before > 0.08, "the controller alone misses by {before}");
    assert!(
        err < before / 3.0,
        "residual error {err}, controller alone {before}"
    );
}

#[test]
fn residual_diverged_actor_falls_back_to_its_controller() {
    use crate::nn::Parameters;
    let params = PolicyParams::default();
    let mut agent = Box::new(Ddpg::<64>::new_residual(params.ddpg, params.residual, 1));
    agent.actor.net.tensors_mut().next().unwrap()[0] = f32::NAN;
    let obs = obs_with_msr(0.5);
    let d = agent.act(&obs).unwrap();
    assert_eq!(d.bid, feedback_bid(&obs));
    assert_eq!(d.fallback, Some(Fallback::NonFiniteOutput));
    assert_eq!(agent.stats().divergences, 1);
}

#[test]
fn residual_snapshot_carries_its_scale_and_controller() {
    use crate::snapshot::{HEADER_BYTES, SnapshotError};
    let params = PolicyParams::default();
    let residual = ResidualParams {
        scale: 0.5,
        base: FeedbackParams {
            gain: 0.25,
            ..FeedbackParams::default()
        },
        ..ResidualParams::default()
    };
    let trained = Box::new(Ddpg::<64>::new_residual(params.ddpg, residual, 4));
    let mut bytes = std::vec![0u8; 64 << 10];
    let n = trained.save_snapshot(&mut bytes).unwrap();
    bytes.truncate(n);
    let mut loaded = Box::new(Ddpg::<64>::new_residual(params.ddpg, params.residual, 9));
    loaded.load_snapshot(&bytes).unwrap();
    assert_eq!(loaded.residual(), Some(&residual));
    let mut rng = Rng::seed_from_u64(2);
    for _ in 0..100 {
        let obs = Observation::random(&mut rng);
        assert_eq!(
            loaded.policy_bid(&obs).to_bits(),
            trained.policy_bid(&obs).to_bits()
        );
    }
    let mut plain = Box::new(Ddpg::<64>::new(params.ddpg, 1));
    assert_eq!(
        plain.load_snapshot(&bytes),
        Err(SnapshotError::WrongKind { found: 6 })
    );
    // A scale out of range (CRC recomputed) is refused; the agent is unchanged.
    let scale_at = n - 8;
    bytes[scale_at..scale_at + 4].copy_from_slice(&3.0f32.to_le_bytes());
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&bytes[..n - 4]);
    bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
    let mut fresh = Box::new(Ddpg::<64>::new_residual(params.ddpg, params.residual, 9));
    let before = fresh.actor_parameters().clone();
    assert_eq!(fresh.load_snapshot(&bytes), Err(SnapshotError::ShapeMismatch));
    assert_eq!(fresh.residual(), Some(&params.residual));
    assert!(*fresh.actor_parameters() == before);
    assert!(n > HEADER_BYTES);
}

#[test]
fn residual_snapshot_carries_its_controllers_fill_to() {
    let params = PolicyParams::default();
    let residual = ResidualParams {
        base: FeedbackParams {
            fill_to: 0.9,
            ..FeedbackParams::default()
        },
        ..ResidualParams::default()
    };
    let mut trained = Box::new(Ddpg::<256>::new_residual(params.ddpg, residual, 5));
    let mut rng = Rng::seed_from_u64(7);
    for _ in 0..50 {
        trained.record(&AgentTransition::random(&mut rng)).unwrap();
        trained.learn().unwrap();
    }
    let mut bytes = std::vec![0u8; frozen::RESIDUAL_SNAPSHOT_BYTES];
    let n = trained.save_snapshot(&mut bytes).unwrap();
    assert_eq!(n, frozen::RESIDUAL_SNAPSHOT_BYTES);
    let mut loaded = Box::new(Ddpg::<64>::new_residual(params.ddpg, params.residual, 9));
    loaded.load_snapshot(&bytes).unwrap();
    assert_eq!(loaded.residual(), Some(&residual));
    let mut frozen = Box::new(FrozenResidual::zeroed());
    frozen.load_snapshot(&bytes).unwrap();
    assert_eq!(frozen.residual(), &residual);
    for _ in 0..200 {
        let obs = Observation::random(&mut rng);
        let bid = trained.policy_bid(&obs).to_bits();
        assert_eq!(loaded.policy_bid(&obs).to_bits(), bid);
        assert_eq!(frozen.act(&obs).unwrap().bid.to_bits(), bid);
    }
}

#[test]
fn frozen_residual_acts_as_the_trained_agent_and_refuses_a_plain_actor() {
    use crate::snapshot::SnapshotError;
    let params = PolicyParams::default();
    let mut agent = Box::new(Ddpg::<256>::new_residual(params.ddpg, params.residual, 6));
    let mut rng = Rng::seed_from_u64(4);
    for _ in 0..100 {
        agent.record(&AgentTransition::random(&mut rng)).unwrap();
        agent.learn().unwrap();
    }
    let mut bytes = std::vec![0u8; frozen::RESIDUAL_SNAPSHOT_BYTES];
    // Without fill_to: the actor's parameters and the scale, 4 bytes below the most.
    let n = agent.save_snapshot(&mut bytes).unwrap();
    assert_eq!(n, frozen::RESIDUAL_SNAPSHOT_BYTES - 4);
    bytes.truncate(n);
    let mut frozen = Box::new(FrozenResidual::zeroed());
    frozen.load_snapshot(&bytes).unwrap();
    for _ in 0..200 {
        let obs = Observation::random(&mut rng);
        assert_eq!(
            frozen.act(&obs).unwrap().bid.to_bits(),
            agent.policy_bid(&obs).to_bits()
        );
    }
    let plain = Box::new(Ddpg::<64>::new(params.ddpg, 1));
    let mut actor = std::vec![0u8; frozen::ACTOR_SNAPSHOT_BYTES];
    plain.save_snapshot(&mut actor).unwrap();
    assert_eq!(
        frozen.load_snapshot(&actor),
        Err(SnapshotError::WrongKind { found: 0 })
    );
    // A snapshot with a NaN parameter is refused; the frozen policy keeps acting as before.
    let mut broken = agent.clone();
    use crate::nn::Parameters;
    broken.actor.net.tensors_mut().next().unwrap()[0] = f32::NAN;
    broken.save_snapshot(&mut bytes).unwrap();
    assert!(matches!(
        frozen.load_snapshot(&bytes),
        Err(SnapshotError::NonFinite { index: 0 })
    ));
    let obs = Observation::random(&mut rng);
    assert_eq!(
        frozen.act(&obs).unwrap().bid.to_bits(),
        agent.policy_bid(&obs).to_bits()
    );
}

/// A residual agent whose actor always says +1 (its last bias driven up: every learned bid
/// `scale` above the controller's), acting without learning on a one-step task whose best bid
/// is `target(obs)`. Returns the shield's statistics, the agent's and the decisions flagged.
fn shielded_run(target: impl Fn(&Observation) -> f32) -> (ShieldStats, PolicyStats, u64) {
    use crate::nn::Parameters;
    let shield = ShieldParams {
        enabled: true,
        period_steps: 20,
        probe_steps: 5,
        patience: 2,
        margin: 0.01,
    };
    let residual = ResidualParams {
        shield,
        ..ResidualParams::default()
    };
    let mut agent = Box::new(Ddpg::<256>::new_residual(DdpgParams::default(), residual, 1));
    agent.set_exploration(false);
    if let Some(bias) = agent.actor.net.tensors_mut().last() {
        bias[0] = 10.0;
    }
    let mut rng = Rng::seed_from_u64(3);
    let mut flagged = 0;
    for _ in 0..200 {
        // A full node (the controller's bid is its proportional term, not "take the free memory").
        let state = Observation {
            total_mem_use: 1.0,
            ..obs_with_msr(rng.uniform_range(-0.9, -0.5))
        };
        let d = agent.act(&state).unwrap();
        flagged += u64::from(d.fallback == Some(Fallback::Shielded));
        let t = AgentTransition {
            state,
            bid: d.bid,
            reward: -(d.bid - target(&state)).abs(),
            next_state: state,
            done: true,
        };
        agent.record(&t).unwrap();
    }
    (agent.shield_stats().unwrap(), agent.stats(), flagged)
}

#[test]
fn shield_hands_a_diverged_residual_agent_to_its_controller_and_says_so() {
    // The controller's bid is the best: the learned bids, 0.25 off, lose every probe.
    let (shield, stats, flagged) = shielded_run(feedback_bid);
    assert_eq!((shield.to_controller, shield.to_learned), (1, 0));
    assert!(shield.shielded);
    // Handed over after two periods (40 steps): the 160 steps after it, less one probe of
    // 5 learned steps per period, are the controller's, each flagged and counted.
    assert_eq!(flagged, 160 - 8 * 5);
    assert_eq!(stats.fallbacks, flagged);
    // Where the learned bids are the better ones, the controller's probes never win.
    let (shield, stats, flagged) = shielded_run(|o| (feedback_bid(o) + 0.25).min(1.0));
    assert_eq!(
        (shield.to_controller, shield.to_learned, flagged, stats.fallbacks),
        (0, 0, 0, 0)
    );
}

/// The correction penalty holds the learned bids at the controller's: with β large, the
/// agent of `residual_learns_the_correction_its_controller_lacks` learns next to nothing.
#[test]
fn residual_correction_penalty_keeps_the_bids_near_the_controller() {
    let (before, err) = residual_tracking_errors(ResidualParams {
        correction_penalty: 100.0,
        ..ResidualParams::default()
    });
    assert!(
        err > 0.8 * before,
        "penalized error {err}, controller alone {before}"
    );
}

/// One-step task whose state lies in a sliver of its range, as the rescaled miss rates
/// do: `msr` = x in [-1, -0.9]; the best bid 0.8·(x + 0.95)/0.05 spans [-0.8, 0.8].
/// Returns the greedy policy's mean error on a grid of x.
fn narrow_tracking_error(normalize_observations: bool) -> f32 {
    let params = DdpgParams {
        actor_lr: 1e-3,
        epsilon: short_schedule(300, 700),
        normalize_observations,
        ..DdpgParams::default()
    };
    let mut agent = Box::new(Ddpg::<2048>::new(params, 1));
    let target = |x: f32| 0.8 * (x + 0.95) / 0.05;
    let narrow = |u: f32| -0.95 + 0.05 * u;
    let mut rng = Rng::seed_from_u64(2);
    for _ in 0..3_000 {
        let x = narrow(rng.uniform_range(-1.0, 1.0));
        let state = obs_with_msr(x);
        let decision = agent.act(&state).unwrap();
        let reward = -(decision.bid - target(x)).abs();
        let next_state = obs_with_msr(narrow(rng.uniform_range(-1.0, 1.0)));
        let t = AgentTransition {
            state,
            bid: decision.bid,
            reward,
            next_state,
            done: true,
        };
        agent.record(&t).unwrap();
        agent.learn().unwrap();
    }
    assert_eq!(
        agent.observation_stats().count(),
        if normalize_observations { 3_000 } else { 0 }
    );
    let grid: Vec<f32> = (0..41).map(|k| narrow(-1.0 + k as f32 * 0.05)).collect();
    grid.iter()
        .map(|x| (agent.policy_bid(&obs_with_msr(*x)) - target(*x)).abs())
        .sum::<f32>()
        / grid.len() as f32
}

#[test]
fn ddpg_normalized_observations_track_a_target_in_a_narrow_band() {
    let (plain, normalized) = (narrow_tracking_error(false), narrow_tracking_error(true));
    // Measured: plain 0.42, normalized 0.002.
    assert!(normalized < 0.02, "normalized: {normalized} (plain: {plain})");
    assert!(
        normalized < plain / 10.0,
        "normalized {normalized}, plain {plain}"
    );
}

/// A DDPG or `residual` agent with normalized observations, trained on random transitions.
fn normalized_agent(residual: Option<ResidualParams>, seed: u64) -> Box<Ddpg<256>> {
    let params = DdpgParams {
        normalize_observations: true,
        ..DdpgParams::default()
    };
    let mut agent = Box::new(Ddpg::<256>::new_with(params, residual, seed));
    let mut rng = Rng::seed_from_u64(seed + 1);
    for _ in 0..80 {
        agent.record(&AgentTransition::random(&mut rng)).unwrap();
        agent.learn().unwrap();
    }
    agent
}

#[test]
fn normalized_snapshots_carry_the_statistics_and_refuse_other_settings() {
    use crate::snapshot::SnapshotError;
    for residual in [None, Some(ResidualParams::default())] {
        let trained = normalized_agent(residual, 3);
        let mut bytes = std::vec![0u8; frozen::RESIDUAL_SNAPSHOT_BYTES + 64];
        let n = trained.save_snapshot(&mut bytes).unwrap();
        let extra = 4 * normalize::RunningStats::SNAPSHOT_VALUES;
        let plain_bytes = if residual.is_some() {
            frozen::ACTOR_SNAPSHOT_BYTES + 4
        } else {
            frozen::ACTOR_SNAPSHOT_BYTES
        };
        assert_eq!(n, plain_bytes + extra);
        let bytes = &bytes[..n];
        // A fresh agent with the same setting acts as the trained one, bit for bit.
        let mut loaded = normalized_agent(residual, 11);
        loaded.load_snapshot(bytes).unwrap();
        assert_eq!(loaded.observation_stats(), trained.observation_stats());
        let mut rng = Rng::seed_from_u64(4);
        for _ in 0..200 {
            let obs = Observation::random(&mut rng);
            assert_eq!(
                loaded.policy_bid(&obs).to_bits(),
                trained.policy_bid(&obs).to_bits()
            );
        }
        // Without the setting, and the inference-only actor, refuse it (the frozen
        // residual takes it, below); its own snapshot is refused by a normalizing agent.
        let mut plain = Box::new(Ddpg::<64>::new_with(DdpgParams::default(), residual, 5));
        assert_eq!(plain.load_snapshot(bytes), Err(SnapshotError::ShapeMismatch));
        let mut own = std::vec![0u8; frozen::RESIDUAL_SNAPSHOT_BYTES];
        let m = plain.save_snapshot(&mut own).unwrap();
        let before = loaded.policy_bid(&obs_with_msr(0.1)).to_bits();
        assert_eq!(loaded.load_snapshot(&own[..m]), Err(SnapshotError::ShapeMismatch));
        assert_eq!(
            loaded.policy_bid(&obs_with_msr(0.1)).to_bits(),
            before,
            "unchanged on error"
        );
        match residual {
            None => assert_eq!(
                FrozenActor::zeroed().load_snapshot(bytes),
                Err(SnapshotError::ShapeMismatch)
            ),
            Some(_) => {
                // The frozen residual acts as the trained agent, bit for bit, through the
                // same map; the int8 path, which does not normalize, refuses it.
                let mut frozen = Box::new(FrozenResidual::zeroed());
                frozen.load_snapshot(bytes).unwrap();
                assert_eq!(frozen.input_map(), Some(&trained.observation_stats().input_map()));
                for _ in 0..200 {
                    let obs = Observation::random(&mut rng);
                    let bid = frozen.act(&obs).unwrap().bid;
                    assert_eq!(bid.to_bits(), trained.policy_bid(&obs).to_bits());
                }
                assert_eq!(
                    crate::agent::int8::FrozenInt8::from_residual(&frozen),
                    Err(crate::agent::int8::QuantizeError::NormalizedInputs)
                );
                // A plain snapshot loaded after it acts without the map.
                frozen.load_snapshot(&own[..m]).unwrap();
                assert_eq!(frozen.input_map(), None);
                let obs = obs_with_msr(0.1);
                assert_eq!(
                    frozen.act(&obs).unwrap().bid.to_bits(),
                    plain.policy_bid(&obs).to_bits()
                );
                // Statistics with a negative sum of squares are refused, nothing changed.
                let mut bad = bytes.to_vec();
                let last = bad.len() - crate::snapshot::CRC_BYTES - 4;
                bad[last..last + 4].copy_from_slice(&(-1.0f32).to_le_bytes());
                crate::snapshot::reseal(&mut bad);
                assert_eq!(frozen.load_snapshot(&bad), Err(SnapshotError::ShapeMismatch));
                assert_eq!(frozen.input_map(), None);
            }
        }
    }
}

#[test]
fn normalized_residual_snapshot_keeps_its_controllers_fill_to() {
    let residual = ResidualParams {
        base: FeedbackParams {
            fill_to: 0.9,
            ..FeedbackParams::default()
        },
        ..ResidualParams::default()
    };
    let trained = normalized_agent(Some(residual), 6);
    let mut bytes = std::vec![0u8; frozen::RESIDUAL_SNAPSHOT_BYTES + 64];
    let n = trained.save_snapshot(&mut bytes).unwrap();
    let mut loaded = normalized_agent(Some(ResidualParams::default()), 12);
    loaded.load_snapshot(&bytes[..n]).unwrap();
    assert_eq!(loaded.residual(), Some(&residual));
    assert_eq!(loaded.observation_stats(), trained.observation_stats());
}
