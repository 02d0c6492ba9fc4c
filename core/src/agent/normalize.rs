//! Observation normalization, an option of the learned actor-critic policies
//! ([`super::DdpgParams::normalize_observations`]): the networks see each state variable
//! shifted by its running mean and divided by its running standard deviation, clamped to
//! ±[`CLAMP`]; the `residual` policy's controller, the reward and the replay see the raw
//! values.
//!
//! Why: the rescaled miss rates fill a sliver of their range (a VM missing 1,000 pages/s
//! against a bound of 60,000 reads −0.967, one missing 3,000 reads −0.9), so the networks
//! see three of their five inputs nearly constant.
//!
//! The statistics are Welford's, in f32, over every state the agent has recorded (its
//! training transitions); they keep moving while the agent learns, and the networks always
//! see the states through the current ones. Below two samples the map is the identity.

use crate::mdp::STATE_DIM;

/// A normalized input is clamped to ±`CLAMP` standard deviations.
pub const CLAMP: f32 = 5.0;

/// The smallest standard deviation divided by: a variable that has not moved is shifted,
/// not blown up.
pub const MIN_SPREAD: f32 = 1e-3;

/// What the networks see of a state: `clamp((s − offset) / spread, −CLAMP, CLAMP)` per
/// variable.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InputMap {
    /// The running mean of each variable.
    pub offset: [f32; STATE_DIM],
    /// The running standard deviation of each variable, at least [`MIN_SPREAD`].
    pub spread: [f32; STATE_DIM],
}

impl InputMap {
    /// The map that changes no state in range (offset 0, spread 1).
    pub const IDENTITY: Self = Self {
        offset: [0.0; STATE_DIM],
        spread: [1.0; STATE_DIM],
    };

    /// All zeros: the map of an agent not yet set up (all of whose bytes are zero), never
    /// applied.
    pub const UNSET: Self = Self {
        offset: [0.0; STATE_DIM],
        spread: [0.0; STATE_DIM],
    };

    /// The state as the networks see it.
    ///
    /// ```
    /// use cavmem_core::agent::normalize::InputMap;
    /// let map = InputMap { offset: [-0.95, 0.5, -0.95, -0.95, 0.9], spread: [0.01, 0.25, 0.01, 0.02, 0.05] };
    /// let seen = map.apply(&[-0.94, 0.75, -1.0, -0.95, 0.6]);
    /// assert_eq!(seen.map(|x| (x * 100.0).round() / 100.0), [1.0, 1.0, -5.0, 0.0, -5.0]);
    /// ```
    pub fn apply(&self, state: &[f32; STATE_DIM]) -> [f32; STATE_DIM] {
        let mut seen = [0.0; STATE_DIM];
        for (((y, x), offset), spread) in seen.iter_mut().zip(state).zip(&self.offset).zip(&self.spread) {
            *y = ((x - offset) / spread).clamp(-CLAMP, CLAMP);
        }
        seen
    }
}

/// Running mean and variance of the states an agent has recorded (Welford, f32).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RunningStats {
    count: u32,
    mean: [f32; STATE_DIM],
    m2: [f32; STATE_DIM],
}

impl RunningStats {
    /// No samples.
    pub const ZERO: Self = Self {
        count: 0,
        mean: [0.0; STATE_DIM],
        m2: [0.0; STATE_DIM],
    };

    /// The most samples counted; beyond it each new sample weighs as one in `MAX_COUNT`
    /// (the count is stored in a snapshot as an f32, exact up to 2²⁴).
    pub const MAX_COUNT: u32 = 1 << 24;

    /// Values in a snapshot: the count, the means, the sums of squared deviations (the
    /// room residual snapshots keep for them, [`super::residual::MAX_STATS`]).
    pub const SNAPSHOT_VALUES: usize = {
        assert!(1 + 2 * STATE_DIM == super::residual::MAX_STATS);
        super::residual::MAX_STATS
    };

    /// Adds one state.
    pub fn push(&mut self, state: &[f32; STATE_DIM]) {
        self.count = (self.count + 1).min(Self::MAX_COUNT);
        let n = self.count as f32;
        for ((mean, m2), x) in self.mean.iter_mut().zip(&mut self.m2).zip(state) {
            let d = x - *mean;
            *mean += d / n;
            *m2 += d * (x - *mean);
        }
    }

    /// Samples counted.
    pub const fn count(&self) -> u32 {
        self.count
    }

    /// The map through the means and sample standard deviations; [`InputMap::IDENTITY`]
    /// below two samples.
    ///
    /// ```
    /// use cavmem_core::agent::normalize::RunningStats;
    /// let mut stats = RunningStats::ZERO;
    /// stats.push(&[-1.0, 0.2, -1.0, -1.0, 0.5]);
    /// stats.push(&[-0.9, 0.4, -1.0, -1.0, 0.7]);
    /// let map = stats.input_map();
    /// assert_eq!(map.offset.map(|x| (x * 1e4).round() / 1e4), [-0.95, 0.3, -1.0, -1.0, 0.6]);
    /// assert!((map.spread[0] - 0.0707).abs() < 1e-4 && map.spread[2] == 1e-3);
    /// ```
    pub fn input_map(&self) -> InputMap {
        if self.count < 2 {
            return InputMap::IDENTITY;
        }
        let dof = self.count as f32 - 1.0;
        let mut map = InputMap {
            offset: self.mean,
            spread: [0.0; STATE_DIM],
        };
        for (spread, m2) in map.spread.iter_mut().zip(&self.m2) {
            *spread = libm::sqrtf(m2 / dof).max(MIN_SPREAD);
        }
        map
    }

    /// The values a snapshot holds: the count (as f32), the means, the sums of squared
    /// deviations.
    pub fn to_array(&self) -> [f32; Self::SNAPSHOT_VALUES] {
        let mut out = [0.0; Self::SNAPSHOT_VALUES];
        let [count, rest @ ..] = &mut out;
        *count = self.count as f32;
        for (dst, src) in rest.iter_mut().zip(self.mean.iter().chain(&self.m2)) {
            *dst = *src;
        }
        out
    }

    /// Whether a snapshot's stored values are acceptable statistics: none (a snapshot
    /// without them), or [`Self::SNAPSHOT_VALUES`] that [`Self::from_array`] takes.
    pub fn valid_in_snapshot(values: &[f32]) -> bool {
        values.is_empty() || values.try_into().is_ok_and(|a| Self::from_array(a).is_some())
    }

    /// The statistics a snapshot held; `None` for a count that is not a whole number in
    /// `0..=MAX_COUNT`, a negative sum of squares or a value that is not finite.
    pub fn from_array(values: &[f32; Self::SNAPSHOT_VALUES]) -> Option<Self> {
        let [count, rest @ ..] = values;
        // In range first, so the cast is exact for a whole number.
        let whole = (0.0..=Self::MAX_COUNT as f32).contains(count) && (*count as u32) as f32 == *count;
        if !whole || rest.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let mut stats = Self {
            count: *count as u32,
            ..Self::ZERO
        };
        for (dst, src) in stats.mean.iter_mut().chain(&mut stats.m2).zip(rest) {
            *dst = *src;
        }
        stats.m2.iter().all(|q| *q >= 0.0).then_some(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(seed: u64, n: usize) -> impl Iterator<Item = [f32; STATE_DIM]> {
        let mut rng = crate::rng::Rng::seed_from_u64(seed);
        (0..n).map(move |_| crate::mdp::Observation::random(&mut rng).to_array())
    }

    #[test]
    fn normalize_running_stats_match_a_two_pass_computation() {
        let all: heapless::Vec<[f32; STATE_DIM], 500> = states(3, 500).collect();
        let mut stats = RunningStats::ZERO;
        all.iter().for_each(|s| stats.push(s));
        let map = stats.input_map();
        for v in 0..STATE_DIM {
            let mean = all.iter().map(|s| f64::from(s[v])).sum::<f64>() / 500.0;
            let var = all.iter().map(|s| (f64::from(s[v]) - mean).powi(2)).sum::<f64>() / 499.0;
            assert!((f64::from(map.offset[v]) - mean).abs() < 1e-5, "mean {v}");
            assert!((f64::from(map.spread[v]) - var.sqrt()).abs() < 1e-4, "spread {v}");
        }
        // Normalized, the same states have mean about 0 and spread about 1.
        let seen: heapless::Vec<[f32; STATE_DIM], 500> = all.iter().map(|s| map.apply(s)).collect();
        for v in 0..STATE_DIM {
            let mean = seen.iter().map(|s| s[v]).sum::<f32>() / 500.0;
            let var = seen.iter().map(|s| (s[v] - mean) * (s[v] - mean)).sum::<f32>() / 499.0;
            assert!(mean.abs() < 1e-3 && (var - 1.0).abs() < 1e-2, "{v}: {mean} {var}");
        }
    }

    #[test]
    fn normalize_identity_below_two_samples_and_clamped_beyond_five_spreads() {
        let mut stats = RunningStats::ZERO;
        assert_eq!(stats.input_map(), InputMap::IDENTITY);
        let s = [-0.97, 0.4, -0.95, -0.99, 0.8];
        stats.push(&s);
        assert_eq!(stats.input_map(), InputMap::IDENTITY);
        assert_eq!(InputMap::IDENTITY.apply(&s), s, "the identity changes no bit");
        stats.push(&s);
        // A variable that never moved: spread MIN_SPREAD, the same value maps to 0.
        let map = stats.input_map();
        assert_eq!(map.spread, [MIN_SPREAD; STATE_DIM]);
        assert_eq!(map.apply(&s), [0.0; STATE_DIM]);
        assert_eq!(
            map.apply(&[1.0, -1.0, 1.0, 1.0, -1.0]),
            [CLAMP, -CLAMP, CLAMP, CLAMP, -CLAMP]
        );
    }

    #[test]
    fn normalize_stats_round_trip_and_refuse_bad_values() {
        let mut stats = RunningStats::ZERO;
        states(5, 37).for_each(|s| stats.push(&s));
        assert_eq!(RunningStats::from_array(&stats.to_array()), Some(stats));
        for (at, bad) in [
            (0, -1.0),
            (0, 2.5),
            (0, f32::NAN),
            (0, 2e7),
            (1, f32::INFINITY),
            (7, -0.5),
        ] {
            let mut a = stats.to_array();
            a[at] = bad;
            assert_eq!(RunningStats::from_array(&a), None, "{at} = {bad}");
        }
    }

    #[test]
    fn normalize_count_saturates() {
        let mut stats = RunningStats {
            count: RunningStats::MAX_COUNT,
            ..RunningStats::ZERO
        };
        stats.push(&[0.0; STATE_DIM]);
        assert_eq!(stats.count(), RunningStats::MAX_COUNT);
    }
}
