//! The limit: at every step, the allocation that minimizes the largest miss rate
//! ([`Objective::MinMax`]) or the sum of miss rates ([`Objective::MinSum`]) with the
//! simulator's true miss-rate curves — a measurement of how far a policy is from the best
//! any policy could do, never a deployable policy (a real node has no such curves).
//!
//! ## How the limit is defined
//! One step ahead (greedy): each step it sees every present VM's miss rate, now, as a
//! function of its allocation (`rate(vm, bytes)`, the workload's curve at the start of the
//! step), and chooses allocations within what bids can reach in one step: VM `j` holding
//! `M_j` may move to `M_j + k·g` (g the node's granularity, k whole) within
//! `[max(floor, M_j − ⌊(M_j − floor)/g⌋·g), 2·M_j]`, the sum within the capacity. It does not
//! look further ahead: in s1 min-max keeps two perlbench copies in lockstep while min-sum
//! lets one finish first, and either may be beaten by a policy that plans.
//!
//! - **min-max** is exact on that grid for curves that do not rise with memory: a
//!   bisection on the level `L`, each VM taking the least memory that brings it to `L`.
//! - **min-sum** is a dynamic program over the VMs, exact on a grid of at most
//!   [`MIN_SUM_UNITS`] equal steps of the spare memory (the capacity minus every VM's
//!   least reachable allocation), rounded down to the granularity: 21 MiB on the paper's
//!   6 GiB node, the node's granularity on small ones (where the tests compare it with an
//!   exhaustive search).
//! - Memory neither objective needs is not left idle: it is water-filled, the VMs holding
//!   least raised first (a one-step plan would otherwise shrink every VM that misses
//!   nothing now, and it would miss when its workload's next input needs more).
//!
//! ## The late limit
//! `oracle-minsum-late` and `oracle-minmax-late` ([`Sight::LastStep`]) plan the same way
//! with every VM's curve as it was when the last step began, one step late as every policy
//! is. What the limit gains over them is what knowing the present inputs is worth; what
//! they gain over a policy is what knowing every VM's whole curve (not one measured point)
//! is worth.

use cavmem_core::bid::{BidConfig, VmTerms};

/// What the limit minimizes each step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Objective {
    /// The largest miss rate of any VM.
    MinMax,
    /// The sum of the VMs' miss rates.
    MinSum,
}

impl Objective {
    /// Both, min-max first.
    pub const ALL: [Self; 2] = [Self::MinMax, Self::MinSum];
}

/// Which curves the limit plans a step with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sight {
    /// Every VM's curve as the step begins: the limit.
    Now,
    /// Every VM's curve as the last step began: the limit one step late, as every policy
    /// is (it acts on the last step's measurement). Not a bound on them (it plans as if
    /// nothing changed since; a policy may hedge), but the part of the limit's lead it
    /// loses is what knowing the present is worth.
    LastStep,
}

/// One of the simulator's limits: what it minimizes and which curves it sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Limit {
    /// What it minimizes.
    pub objective: Objective,
    /// Which curves it plans with.
    pub sight: Sight,
}

impl Limit {
    /// Every limit: the two objectives with [`Sight::Now`], then with [`Sight::LastStep`].
    pub const ALL: [Self; 4] = [
        Self::new(Objective::MinMax, Sight::Now),
        Self::new(Objective::MinSum, Sight::Now),
        Self::new(Objective::MinMax, Sight::LastStep),
        Self::new(Objective::MinSum, Sight::LastStep),
    ];

    /// The limit minimizing `objective` with the curves of `sight`.
    pub const fn new(objective: Objective, sight: Sight) -> Self {
        Self { objective, sight }
    }

    /// Its policy name: `oracle-minmax`, `oracle-minsum`, and `-late` after them for
    /// [`Sight::LastStep`].
    pub const fn name(self) -> &'static str {
        match (self.objective, self.sight) {
            (Objective::MinMax, Sight::Now) => "oracle-minmax",
            (Objective::MinSum, Sight::Now) => "oracle-minsum",
            (Objective::MinMax, Sight::LastStep) => "oracle-minmax-late",
            (Objective::MinSum, Sight::LastStep) => "oracle-minsum-late",
        }
    }
}

/// The most grid steps of spare memory the min-sum program considers.
pub const MIN_SUM_UNITS: u64 = 256;

/// Bisection steps of the min-max level (the level's interval shrinks 2^60-fold).
const LEVEL_STEPS: u32 = 60;

/// The allocations VM `j` can reach in one step: `lo + k·g` for `k` in `0..=steps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reach {
    lo: u64,
    steps: u64,
}

impl Reach {
    /// From `current`, down to the VM's floor and up to twice `current` or its limit.
    fn new(current: u64, config: &BidConfig, terms: &VmTerms) -> Self {
        let g = config.granularity_bytes.max(1);
        let floor = terms.floor_bytes(config.floor_bytes);
        let lo = if current > floor {
            current - (current - floor) / g * g
        } else {
            current
        };
        let hi = current.saturating_mul(2).min(terms.max_bytes.max(lo));
        let steps = hi.saturating_sub(lo) / g;
        Self { lo, steps }
    }

    fn at(&self, k: u64, g: u64) -> u64 {
        self.lo + k.min(self.steps) * g
    }
}

/// The limit's allocations for VMs holding `current` (bytes, each ≥ the floor or as the
/// node left it, summing to at most the capacity) into `out`, with `rate(j, bytes)` VM
/// `j`'s miss rate (pages/s) if it held `bytes`, and `terms[j]` its reservation and limit.
/// Every allocation is reachable in one step (within the VM's floor and limit) and the sum
/// stays within the capacity.
pub fn plan(
    objective: Objective,
    config: &BidConfig,
    terms: &[VmTerms],
    current: &[u64],
    rate: impl Fn(usize, u64) -> f64,
    out: &mut [u64],
) {
    let g = config.granularity_bytes.max(1);
    let reach: Vec<Reach> = current
        .iter()
        .zip(terms)
        .map(|(m, t)| Reach::new(*m, config, t))
        .collect();
    let base: u64 = reach.iter().map(|r| r.lo).sum();
    let spare = config.capacity_bytes.saturating_sub(base);
    let ks = match objective {
        Objective::MinMax => min_max(&reach, spare / g, g, &rate),
        Objective::MinSum => min_sum(&reach, spare / g, g, &rate),
    };
    for ((o, r), k) in out.iter_mut().zip(&reach).zip(ks) {
        *o = r.at(k, g);
    }
}

/// Grid steps per VM that minimize the largest rate within `budget` steps in all.
fn min_max(reach: &[Reach], budget: u64, g: u64, rate: &impl Fn(usize, u64) -> f64) -> Vec<u64> {
    // The least steps that bring VM j to `level` or below (None: not within its reach).
    let need = |j: usize, level: f64| -> Option<u64> {
        let r = reach[j];
        if rate(j, r.at(r.steps, g)) > level {
            return None;
        }
        let (mut lo, mut hi) = (0, r.steps);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if rate(j, r.at(mid, g)) <= level {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Some(lo)
    };
    let fits = |level: f64| -> Option<Vec<u64>> {
        let ks: Option<Vec<u64>> = (0..reach.len()).map(|j| need(j, level)).collect();
        ks.filter(|ks| ks.iter().sum::<u64>() <= budget)
    };
    let at = |j: usize, k: u64| rate(j, reach[j].at(k, g));
    let mut hi = (0..reach.len()).map(|j| at(j, 0)).fold(0.0, f64::max);
    let mut lo = (0..reach.len())
        .map(|j| at(j, reach[j].steps))
        .fold(0.0, f64::max);
    let mut best = fits(hi).unwrap_or_else(|| vec![0; reach.len()]);
    if let Some(ks) = fits(lo) {
        best = ks;
        hi = lo;
    }
    for _ in 0..LEVEL_STEPS {
        if hi - lo <= 1e-9 * hi.max(1.0) {
            break;
        }
        let mid = 0.5 * (lo + hi);
        match fits(mid) {
            Some(ks) => {
                best = ks;
                hi = mid;
            }
            None => lo = mid,
        }
    }
    fill_leftover(&mut best, reach, budget, g);
    best
}

/// Gives the steps left of `budget` by water-filling: the VMs holding least are raised
/// toward a common level, each within its reach (memory is only added, so no rate rises;
/// unused memory would only sit idle until a workload's next input needs it).
fn fill_leftover(ks: &mut [u64], reach: &[Reach], budget: u64, g: u64) {
    let left = budget.saturating_sub(ks.iter().sum());
    // Steps VM j gets when raised to `level` bytes.
    let raise = |ks: &[u64], j: usize, level: u64| -> u64 {
        let r = reach[j];
        (level.saturating_sub(r.lo) / g)
            .min(r.steps)
            .saturating_sub(ks[j])
    };
    let total = |ks: &[u64], level: u64| -> u64 { (0..ks.len()).map(|j| raise(ks, j, level)).sum() };
    // The highest level whose raises fit in what is left.
    let (mut lo, mut hi) = (0u64, reach.iter().map(|r| r.at(r.steps, g)).max().unwrap_or(0));
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if total(ks, mid) <= left {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let raises: Vec<u64> = (0..ks.len()).map(|j| raise(ks, j, lo)).collect();
    let mut left = left - raises.iter().sum::<u64>();
    for (k, r) in ks.iter_mut().zip(raises) {
        *k += r;
    }
    // Fewer steps than VMs remain: one more each, lowest first.
    let mut order: Vec<usize> = (0..ks.len()).collect();
    order.sort_by_key(|j| (reach[*j].at(ks[*j], g), *j));
    for j in order {
        if left == 0 {
            break;
        }
        if ks[j] < reach[j].steps {
            ks[j] += 1;
            left -= 1;
        }
    }
}

/// Grid steps per VM that minimize the sum of rates within `budget` steps in all: a
/// dynamic program over the VMs on units of `⌈budget / MIN_SUM_UNITS⌉` steps.
fn min_sum(reach: &[Reach], budget: u64, g: u64, rate: &impl Fn(usize, u64) -> f64) -> Vec<u64> {
    let unit = budget.div_ceil(MIN_SUM_UNITS).max(1);
    let units = usize::try_from(budget / unit).unwrap_or(0);
    let n = reach.len();
    // cost[u]: the least sum of the VMs so far within u units; choice[j][u]: VM j's units.
    let mut cost = vec![0.0f64; units + 1];
    let mut choice = vec![vec![0usize; units + 1]; n];
    for (j, r) in reach.iter().enumerate() {
        let own_units = usize::try_from(r.steps.div_ceil(unit))
            .unwrap_or(usize::MAX)
            .min(units);
        let rates: Vec<f64> = (0..=own_units)
            .map(|v| rate(j, r.at(v as u64 * unit, g)))
            .collect();
        let mut next = vec![f64::INFINITY; units + 1];
        // Only the whole budget is read back after the last VM; the first VM adds to zero
        // costs, so its best within u units is a running minimum (the same first-best
        // choices as the full loop, which the `min_sum_shortcuts_*` test checks).
        let first_u = if j + 1 == n { units } else { 0 };
        if j == 0 {
            let (mut best, mut best_v) = (f64::INFINITY, 0);
            for u in 0..=units {
                if let Some(rv) = rates.get(u)
                    && 0.0 + rv < best
                {
                    (best, best_v) = (0.0 + rv, u);
                }
                next[u] = best;
                choice[j][u] = best_v;
            }
        } else {
            for u in first_u..=units {
                for (v, rv) in rates.iter().enumerate().take(u + 1) {
                    let c = cost[u - v] + rv;
                    if c < next[u] {
                        next[u] = c;
                        choice[j][u] = v;
                    }
                }
            }
        }
        cost = next;
    }
    let mut ks = vec![0u64; n];
    let mut u = units;
    for j in (0..n).rev() {
        let v = choice[j][u];
        ks[j] = (v as u64 * unit).min(reach[j].steps);
        u -= v;
    }
    fill_leftover(&mut ks, reach, budget, g);
    ks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`plan`] for VMs without reservations or limits.
    fn plan_uniform(
        objective: Objective,
        config: &BidConfig,
        current: &[u64],
        rate: impl Fn(usize, u64) -> f64,
        out: &mut [u64],
    ) {
        plan(
            objective,
            config,
            &vec![VmTerms::DEFAULT; current.len()],
            current,
            rate,
            out,
        );
    }

    /// A node of `capacity` units of 1 byte, floor 2, granularity 1.
    fn tiny(capacity: u64) -> BidConfig {
        BidConfig {
            capacity_bytes: capacity,
            floor_bytes: 2,
            granularity_bytes: 1,
            share: cavmem_core::bid::ShareRule::Proportional,
        }
    }

    /// Every allocation reachable in one step with the sum within capacity.
    fn exhaustive(config: &BidConfig, current: &[u64]) -> Vec<Vec<u64>> {
        let ranges: Vec<(u64, u64)> = current
            .iter()
            .map(|m| {
                let r = Reach::new(*m, config, &VmTerms::DEFAULT);
                (r.lo, r.at(r.steps, 1))
            })
            .collect();
        let mut all = vec![vec![]];
        for (lo, hi) in ranges {
            all = all
                .into_iter()
                .flat_map(|prefix: Vec<u64>| {
                    (lo..=hi).map(move |x| {
                        let mut p = prefix.clone();
                        p.push(x);
                        p
                    })
                })
                .collect();
        }
        all.retain(|a| a.iter().sum::<u64>() <= config.capacity_bytes);
        all
    }

    /// Random non-increasing curves: `curve[j][x]` for x in 0..=64.
    fn curves(seed: u64, n: usize, convex: bool) -> Vec<Vec<f64>> {
        let mut rng = cavmem_core::rng::Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let mut v = 1000.0 * f64::from(rng.uniform_f32());
                let mut drop = 100.0 * f64::from(rng.uniform_f32());
                (0..=64)
                    .map(|_| {
                        let here = v;
                        let step = if convex {
                            drop *= 0.7 + 0.3 * f64::from(rng.uniform_f32());
                            drop
                        } else {
                            100.0 * f64::from(rng.uniform_f32()).powi(3)
                        };
                        v = (v - step).max(0.0);
                        here
                    })
                    .collect()
            })
            .collect()
    }

    /// `min_sum` as a plain dynamic program over every VM and every budget: the shortcuts
    /// (first VM a running minimum, last VM only the whole budget) choose the same steps,
    /// ties included.
    fn min_sum_full(reach: &[Reach], budget: u64, g: u64, rate: &impl Fn(usize, u64) -> f64) -> Vec<u64> {
        let unit = budget.div_ceil(MIN_SUM_UNITS).max(1);
        let units = usize::try_from(budget / unit).unwrap();
        let mut cost = vec![0.0f64; units + 1];
        let mut choice = vec![vec![0usize; units + 1]; reach.len()];
        for (j, r) in reach.iter().enumerate() {
            let own = usize::try_from(r.steps.div_ceil(unit)).unwrap().min(units);
            let rates: Vec<f64> = (0..=own).map(|v| rate(j, r.at(v as u64 * unit, g))).collect();
            let mut next = vec![f64::INFINITY; units + 1];
            for u in 0..=units {
                for (v, rv) in rates.iter().enumerate().take(u + 1) {
                    if cost[u - v] + rv < next[u] {
                        next[u] = cost[u - v] + rv;
                        choice[j][u] = v;
                    }
                }
            }
            cost = next;
        }
        let (mut ks, mut u) = (vec![0u64; reach.len()], units);
        for j in (0..reach.len()).rev() {
            ks[j] = (choice[j][u] as u64 * unit).min(reach[j].steps);
            u -= choice[j][u];
        }
        fill_leftover(&mut ks, reach, budget, g);
        ks
    }

    #[test]
    fn min_sum_shortcuts_choose_as_the_full_program() {
        for seed in 0..60u64 {
            let n = 1 + (seed % 4) as usize;
            let c = curves(seed, n, seed % 3 == 0);
            // Flat stretches make ties: the first-best choice must be the same one.
            let rate = |j: usize, x: u64| (c[j][(x as usize).min(64)] / 50.0).round();
            let reach: Vec<Reach> = (0..n)
                .map(|j| Reach {
                    lo: (seed + j as u64) % 3,
                    steps: 20 + (seed * 7 + j as u64 * 13) % 45,
                })
                .collect();
            for budget in [0, 1, 17, 40, 90, 300] {
                let got = min_sum(&reach, budget, 1, &rate);
                assert_eq!(
                    got,
                    min_sum_full(&reach, budget, 1, &rate),
                    "seed {seed} n {n} budget {budget}"
                );
            }
        }
    }

    #[test]
    fn oracle_matches_exhaustive_search_on_small_nodes() {
        for seed in 0..40u64 {
            let n = 2 + (seed % 2) as usize;
            let config = tiny(12 + seed % 9);
            let current: Vec<u64> = (0..n).map(|j| 2 + (seed + j as u64) % 3).collect();
            let c = curves(seed, n, seed % 2 == 0);
            let rate = |j: usize, x: u64| c[j][x as usize];
            let all = exhaustive(&config, &current);
            let best_max = all
                .iter()
                .map(|a| a.iter().enumerate().map(|(j, x)| rate(j, *x)).fold(0.0, f64::max))
                .fold(f64::INFINITY, f64::min);
            let best_sum = all
                .iter()
                .map(|a| a.iter().enumerate().map(|(j, x)| rate(j, *x)).sum::<f64>())
                .fold(f64::INFINITY, f64::min);
            for (objective, want) in [(Objective::MinMax, best_max), (Objective::MinSum, best_sum)] {
                let mut out = vec![0; n];
                plan_uniform(objective, &config, &current, rate, &mut out);
                assert!(all.contains(&out), "seed {seed}: {out:?} is not reachable");
                let rates = out.iter().enumerate().map(|(j, x)| rate(j, *x));
                let got = match objective {
                    Objective::MinMax => rates.fold(0.0, f64::max),
                    Objective::MinSum => rates.sum(),
                };
                assert!(
                    (got - want).abs() <= 1e-9 * want.max(1.0),
                    "seed {seed} {objective:?}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn oracle_water_fills_memory_no_objective_needs() {
        // Nobody misses: every allocation is optimal, and the spare memory is spread so the
        // smallest VMs are raised first, not left idle or given to one VM.
        let config = BidConfig::new(8 << 30);
        let current = [1 << 30, 1 << 30, 3 << 30];
        for objective in Objective::ALL {
            let mut out = [0; 3];
            plan_uniform(objective, &config, &current, |_, _| 0.0, &mut out);
            assert_eq!(
                out.iter().sum::<u64>(),
                8 << 30,
                "{objective:?}: all memory handed out"
            );
            assert_eq!(out[0], out[1], "{objective:?}: {out:?}");
            assert_eq!(out[0], 2 << 30, "{objective:?}: the small VMs reach only double");
            assert_eq!(out[2], 4 << 30, "{objective:?}: {out:?}");
        }
    }

    #[test]
    fn oracle_stays_within_reach_and_capacity_on_a_large_node() {
        // 16 VMs on 64 GiB with MiB granularity: the min-sum grid is coarse here.
        let config = BidConfig::new(64 << 30);
        let current: Vec<u64> = (0..16).map(|j| (1 + j % 5) << 30).collect();
        let rate = |j: usize, x: u64| 1e6 / (1.0 + (x >> 20) as f64) * (1 + j % 3) as f64;
        for objective in Objective::ALL {
            let mut out = vec![0; 16];
            plan_uniform(objective, &config, &current, rate, &mut out);
            assert!(out.iter().sum::<u64>() <= config.capacity_bytes, "{objective:?}");
            for (x, m) in out.iter().zip(&current) {
                assert!(
                    *x >= config.floor_bytes && *x <= 2 * m,
                    "{objective:?}: {x} from {m}"
                );
                assert_eq!((x.abs_diff(*m)) % config.granularity_bytes, 0);
            }
        }
    }
}
