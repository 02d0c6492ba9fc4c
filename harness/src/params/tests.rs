//! The defaults are the paper's; the printed file reads back to the same bits; bad files
//! are errors naming the key.

use std::path::Path;

use proptest::prelude::*;

use super::*;

fn parse(text: &str) -> Result<AgentParams, ParamsError> {
    AgentParams::parse(Path::new("p.toml"), text)
}

/// `cavmem params`' file reads back to the defaults, and they are what the run used
/// before params files existed (the core's defaults, ε laid over 20% and 30% of the run).
#[test]
fn params_defaults_round_trip_and_match_the_core() {
    let text = AgentParams::defaults_toml();
    assert_eq!(parse(&text).unwrap(), AgentParams::default());
    assert_eq!(
        parse("").unwrap(),
        AgentParams::default(),
        "an empty file is the defaults"
    );
    for total in [1u64, 99, 100_000, 123_457, u64::MAX / 1000] {
        let h = AgentParams::default().hyperparams(total);
        let want = PolicyParams::with_epsilon(EpsilonSchedule {
            explore_steps: total / 5,
            anneal_steps: (total * 3 / 10).max(1),
            ..EpsilonSchedule::default()
        });
        assert_eq!(h.policy, want, "{total} steps");
    }
    for key in [
        "actor_lr = 0.0001",
        "critic_lr = 0.001",
        "theta = 0.15",
        "action_bids = [-0.25, 0.0, 0.25]",
        "explore_permille = 200",
        "miss_weight = 0.5",
        "gain = 0.125",
        "step = 0.0625",
        "policy_delay = 2",
        "target_noise_clip = 0.5",
    ] {
        assert!(text.contains(key), "{key} in\n{text}");
    }
}

#[test]
fn params_a_partial_file_keeps_the_other_defaults() {
    let p = parse("[ddpg]\nactor_lr = 3e-4\n[ddpg.ou]\nsigma = 0.1\n[reward.raw]\ndeviation_weight = 2\nmiss_weight = 1\n").unwrap();
    assert_eq!(p.ddpg.actor_lr, 3e-4);
    assert_eq!(p.ddpg.ou.sigma, 0.1);
    assert_eq!(p.ddpg.critic_lr, 1e-3);
    assert_eq!(p.ddpg.ou.theta, 0.15);
    let h = p.hyperparams(1000);
    let mdp = crate::eval::formulation::FormulationName::Raw.mdp_params_with(&h.reward);
    assert_eq!((mdp.deviation_weight, mdp.miss_weight), (2.0, 1.0));
    let paper = crate::eval::formulation::FormulationName::Paper.mdp_params_with(&h.reward);
    assert_eq!(
        paper,
        crate::eval::formulation::FormulationName::Paper.mdp_params()
    );
}

#[test]
fn params_bad_files_name_the_key() {
    for (text, key, reason) in [
        ("[ddpg]\nactor_lr = 0", "ddpg.actor_lr", "outside (0, 1]"),
        ("[ddpg]\ngamma = 1.0", "ddpg.gamma", "outside [0, 1)"),
        (
            "[ddpg]\nlearn_starts = 10",
            "ddpg.learn_starts",
            "outside [64, 16384]",
        ),
        (
            "[ddpg.ou]\ntheta = 1.5\ndt = 2",
            "ddpg.ou.theta × dt",
            "outside (0, 2)",
        ),
        (
            "[dqn]\naction_bids = [-0.5, 0, 2]",
            "dqn.action_bids[2]",
            "outside [-1, 1]",
        ),
        (
            "[epsilon]\nstart = 0.5\nend = 0.6",
            "epsilon.end",
            "outside [0, 0.5]",
        ),
        ("[mom]\nstep = 0", "mom.step", "outside (0, 1]"),
        ("[td3]\npolicy_delay = 0", "td3.policy_delay", "outside [1, 1000]"),
        ("[td3]\ntarget_noise = 1.5", "td3.target_noise", "outside [0, 1]"),
        (
            "[reward.paper]\ndeviation_weight = 0\nmiss_weight = 0",
            "reward.paper.deviation_weight",
            "outside",
        ),
        ("[ddpg]\nactor_lr = nan", "ddpg.actor_lr", "NaN is outside"),
        ("[ddpg]\nacter_lr = 1e-4", "acter_lr", "unknown field"),
        ("[reward.raw]\nmis_weight = 1", "mis_weight", "unknown field"),
        (
            "[reward.raw]\nmiss_weight = -1",
            "reward.raw.miss_weight",
            "outside [0, 100]",
        ),
        ("[ddpg]\nactor_lr = \"fast\"", "(syntax)", "invalid type"),
        ("[dqn]\naction_bids = [0, 1]", "(syntax)", "invalid length 2"),
        ("[epsilon]\nanneal = \"cubic\"", "(syntax)", "unknown variant"),
        ("[ddpg\n", "(syntax)", ""),
    ] {
        let err = parse(text).unwrap_err();
        assert_eq!(err.key, key, "{text}: {err}");
        assert!(err.to_string().contains(reason), "{text}: {err}");
        assert!(err.to_string().starts_with("p.toml: "), "{err}");
    }
    let missing = AgentParams::load(Path::new("/nonexistent/p.toml")).unwrap_err();
    assert_eq!(missing.key, "(file)");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100_000, ..ProptestConfig::default() })]

    /// Any `f32` (in any range a key accepts) printed as `cavmem params` prints it reads back
    /// to the same bits.
    #[test]
    fn params_floats_read_back_to_the_same_bits(bits in any::<u32>()) {
        let x = f32::from_bits(bits);
        prop_assume!(x.is_finite());
        let text = toml::to_string(&FeedbackSection { gain: x, ..FeedbackSection::default() }).unwrap();
        let back: FeedbackSection = toml::from_str(&text).unwrap();
        prop_assert_eq!(back.gain.to_bits(), x.to_bits(), "{}", text);
    }
}

/// A short DDPG run on s2 with `params`.
fn short_run(params: &AgentParams) -> crate::eval::run::RunResult {
    use crate::eval::run::{RunSpec, run};
    let scenario = crate::eval::paper::shipped_scenarios().unwrap().remove(1);
    let spec = RunSpec {
        scenario,
        policy: cavmem_core::agent::PolicyKind::Ddpg.into(),
        formulation: crate::eval::formulation::FormulationName::Raw,
        episodes: 3,
        seed: 5,
        hyper: params.hyperparams(300),
        learn: true,
        agents_at: crate::agents::AgentsAt::Inprocess,
    };
    let mut r = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || run(&spec, |_| {}).unwrap())
        .unwrap()
        .join()
        .unwrap();
    r.wall_s = 0.0;
    for rec in &mut r.records {
        rec.overhead_s = 0.0;
    }
    r
}

/// The printed defaults give the run without `--params`, bit for bit; a changed learning
/// rate or reward weight changes it (the keys reach the agents and the reward).
#[test]
fn params_reach_the_run() {
    let defaults = short_run(&AgentParams::default());
    let printed = parse(&AgentParams::defaults_toml()).unwrap();
    assert_eq!(short_run(&printed), defaults);
    for text in ["[ddpg]\nactor_lr = 0.01", "[reward.raw]\nmiss_weight = 3"] {
        assert_ne!(short_run(&parse(text).unwrap()), defaults, "{text}");
    }
}

/// Every params file shipped in harness/params loads, and sets what it says it sets.
#[test]
fn params_shipped_files_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("params");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        AgentParams::load(&path).unwrap_or_else(|e| panic!("{e}"));
        files += 1;
    }
    assert!(files >= 2, "{files} files in {}", dir.display());
    let transfer = AgentParams::load(&dir.join("residual-transfer.toml")).unwrap();
    assert_eq!(transfer.residual.scale, 0.1);
    assert_eq!(transfer.residual.correction_penalty, 10.0);
    assert_eq!(
        transfer.ddpg,
        AgentParams::default().ddpg,
        "the learner keeps the defaults"
    );
    let normalized = AgentParams::load(&dir.join("normalized.toml")).unwrap();
    assert!(normalized.ddpg.normalize_observations);
    let defaults = AgentParams::default();
    assert!(!defaults.ddpg.normalize_observations, "off by default");
    assert_eq!(
        AgentParams {
            ddpg: defaults.ddpg,
            ..normalized
        },
        defaults,
        "it sets nothing else"
    );
    let shielded = AgentParams::load(&dir.join("residual-shielded.toml")).unwrap();
    let shield = shielded.residual.shield;
    assert!(shield.enabled && !defaults.residual.shield.enabled);
    assert_eq!(
        (shield.period_steps, shield.probe_steps, shield.patience),
        (1000, 100, 2)
    );
    assert_eq!(shield.margin, defaults.residual.shield.margin);
    let (r, d) = (&shielded.residual, &defaults.residual);
    assert_eq!((r.scale, r.correction_penalty), (d.scale, d.correction_penalty));
    assert_eq!(
        AgentParams {
            residual: defaults.residual,
            ..shielded
        },
        defaults,
        "it sets only the shield"
    );
    let both = AgentParams::load(&dir.join("residual-normalized-shielded.toml")).unwrap();
    assert_eq!(
        AgentParams {
            ddpg: normalized.ddpg,
            ..shielded
        },
        both,
        "normalized.toml and residual-shielded.toml together, nothing else"
    );
}
