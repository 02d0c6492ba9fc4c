use super::*;
use crate::agents::AgentsAt;
use crate::eval::formulation::FormulationName;
use crate::eval::paper::shipped_scenarios;
use crate::params::AgentParams;

fn spec(seeds: u64) -> SelectSpec {
    let scenarios = shipped_scenarios().unwrap();
    let train = RunSpec {
        scenario: scenarios[0].clone(),
        policy: RunPolicy::Agents(PolicyKind::Ddpg),
        formulation: FormulationName::Raw,
        episodes: 3,
        seed: 4,
        hyper: AgentParams::default().hyperparams(300),
        learn: true,
        agents_at: AgentsAt::Inprocess,
    };
    SelectSpec {
        train,
        seeds,
        validation: scenarios[1..3].to_vec(),
        validation_episodes: 2,
        train_window: 2,
    }
}

#[test]
fn select_keeps_the_lowest_score_and_is_repeatable() {
    let spec = spec(3);
    let a = select(&spec).unwrap();
    assert_eq!(a.candidates.iter().map(|c| c.seed).collect::<Vec<_>>(), [4, 5, 6]);
    assert_eq!(a.scenarios.len(), 2);
    assert!(
        a.static_miss_rate_pages_per_s
            .iter()
            .all(|r| r.is_finite() && *r >= 0.0)
    );
    let names: Vec<&str> = a.references.iter().map(|r| r.policy).collect();
    assert_eq!(names, ["static", "feedback", "mom"]);
    assert_eq!(a.references[0].score, 1.0);
    assert_eq!(
        a.references[0].validation_miss_rate_pages_per_s,
        a.static_miss_rate_pages_per_s
    );
    let best = a.candidates.iter().map(|c| c.score).fold(f64::INFINITY, f64::min);
    assert_eq!(a.chosen().unwrap().score, best);
    for c in &a.candidates {
        assert!(!c.snapshot.is_empty());
        assert_eq!(c.validation_miss_rate_pages_per_s.len(), 2);
        assert_eq!(
            c.score,
            score(
                &c.validation_miss_rate_pages_per_s,
                &a.static_miss_rate_pages_per_s
            )
        );
    }
    // The same seeds give the same candidates, to the bit, whatever ran in parallel.
    let again = select(&spec).unwrap();
    for (x, y) in a.candidates.iter().zip(&again.candidates) {
        assert_eq!(
            (x.seed, x.score.to_bits(), &x.snapshot),
            (y.seed, y.score.to_bits(), &y.snapshot)
        );
    }
}

#[test]
fn select_score_is_the_mean_offset_ratio_and_nan_is_worst() {
    assert_eq!(score(&[9.0, 0.0], &[9.0, 1.0]), (1.0 + 0.5) / 2.0);
    assert_eq!(score(&[0.0], &[0.0]), 1.0);
    assert_eq!(score(&[f64::NAN, 1.0], &[1.0, 1.0]), f64::INFINITY);
}
