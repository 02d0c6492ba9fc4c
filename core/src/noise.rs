//! Exploration: Ornstein–Uhlenbeck noise and the annealed ε schedule (paper, section 3.2,
//! "Action Space Exploration").
//!
//! The paper adds OU noise to the deterministic action with probability ε per step; ε is
//! 1 during an exploration phase and then decays to 0.001. Units: `dt` and all step
//! counts are agent steps (one per node step).

use crate::rng::Rng;

/// Parameters of the discrete Ornstein–Uhlenbeck process
/// `x ← x + θ·(μ − x)·dt + σ·√dt·N(0, 1)`.
///
/// Defaults θ = 0.15, σ = 0.2, μ = 0, dt = 1 (Lillicrap et al. 2016, section 7; the
/// same values as Stable-Baselines3's `OrnsteinUhlenbeckActionNoise` with dt = 1).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OuParams {
    /// Mean-reversion rate θ (per unit of `dt`).
    pub theta: f32,
    /// Volatility σ.
    pub sigma: f32,
    /// Long-run mean μ.
    pub mu: f32,
    /// Time step dt.
    pub dt: f32,
}

impl Default for OuParams {
    fn default() -> Self {
        Self {
            theta: 0.15,
            sigma: 0.2,
            mu: 0.0,
            dt: 1.0,
        }
    }
}

impl OuParams {
    /// The stationary variance of the discrete process:
    /// `σ²·dt / (1 − (1 − θ·dt)²) = σ² / (θ·(2 − θ·dt))`.
    pub fn stationary_variance(&self) -> f32 {
        self.sigma * self.sigma / (self.theta * (2.0 - self.theta * self.dt))
    }
}

/// The state of one Ornstein–Uhlenbeck process.
///
/// # Examples
/// ```
/// use cavmem_core::noise::{OuNoise, OuParams};
/// use cavmem_core::rng::Rng;
/// let mut ou = OuNoise::new(OuParams::default());
/// let mut rng = Rng::seed_from_u64(3);
/// let x = ou.sample(&mut rng);
/// assert!(x.is_finite());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OuNoise {
    params: OuParams,
    x: f32,
}

impl OuNoise {
    /// A process starting at its mean μ.
    pub const fn new(params: OuParams) -> Self {
        Self { params, x: params.mu }
    }

    /// Restarts the process at μ (the start of an episode).
    pub fn reset(&mut self) {
        self.x = self.params.mu;
    }

    /// The current value, without advancing.
    pub fn value(&self) -> f32 {
        self.x
    }

    /// Advances one step and returns the new value.
    pub fn sample(&mut self, rng: &mut Rng) -> f32 {
        let OuParams { theta, sigma, mu, dt } = self.params;
        self.x += theta * (mu - self.x) * dt + sigma * libm::sqrtf(dt) * rng.standard_normal();
        self.x
    }
}

/// How ε falls from `start` to `end` after the exploration phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Anneal {
    /// Geometric decay: `ε = start·(end/start)^(k/anneal_steps)`; halves at a constant
    /// rate, so it spends equal time in each decade. The default.
    Exponential,
    /// Straight line from `start` to `end`.
    Linear,
}

/// The paper's ε schedule: ε = `start` for `explore_steps`, then annealed to `end` over
/// `anneal_steps`, then held at `end`.
///
/// Defaults: start 1, end 0.001 (paper, section 3.2), exploration phase 200 episodes of
/// 100 steps = 20,000 steps (section 4). The paper does not give the annealing curve or
/// its length; the default is [`Anneal::Exponential`] over 30,000 steps (300 episodes), so
/// ε reaches 0.001 at episode 500 and the last 500 of the 1000 episodes exploit.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EpsilonSchedule {
    /// ε during the exploration phase.
    pub start: f32,
    /// Final ε.
    pub end: f32,
    /// Length of the exploration phase, in agent steps.
    pub explore_steps: u64,
    /// Length of the annealing, in agent steps after the exploration phase.
    pub anneal_steps: u64,
    /// Shape of the annealing.
    pub anneal: Anneal,
}

impl Default for EpsilonSchedule {
    fn default() -> Self {
        Self {
            start: 1.0,
            end: 0.001,
            explore_steps: 20_000,
            anneal_steps: 30_000,
            anneal: Anneal::Exponential,
        }
    }
}

impl EpsilonSchedule {
    /// ε at agent step `step` (0-based).
    ///
    /// # Examples
    /// ```
    /// use cavmem_core::noise::EpsilonSchedule;
    /// let s = EpsilonSchedule::default();
    /// assert_eq!(s.epsilon(0), 1.0);
    /// assert_eq!(s.epsilon(10_000_000), 0.001);
    /// ```
    pub fn epsilon(&self, step: u64) -> f32 {
        if step < self.explore_steps {
            return self.start;
        }
        let k = step - self.explore_steps;
        if k >= self.anneal_steps {
            return self.end;
        }
        let frac = k as f32 / self.anneal_steps as f32;
        match self.anneal {
            Anneal::Linear => self.start + (self.end - self.start) * frac,
            Anneal::Exponential => self.start * libm::powf(self.end / self.start, frac),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ou_long_run_moments_match_discrete_process() {
        for params in [
            OuParams::default(),
            OuParams {
                theta: 0.5,
                sigma: 0.3,
                mu: 0.2,
                dt: 0.5,
            },
        ] {
            let mut ou = OuNoise::new(params);
            let mut rng = Rng::seed_from_u64(11);
            for _ in 0..1_000 {
                ou.sample(&mut rng);
            }
            let n = 400_000;
            let (mut sum, mut sum2) = (0.0f64, 0.0f64);
            for _ in 0..n {
                let x = f64::from(ou.sample(&mut rng));
                sum += x;
                sum2 += x * x;
            }
            let mean = sum / f64::from(n);
            let var = sum2 / f64::from(n) - mean * mean;
            let want_var = f64::from(params.stationary_variance());
            // Correlated samples: the standard error of the mean is about
            // sqrt(var·(2/(θ·dt))/n); allow 5 of them.
            let tol_mean = 5.0 * (want_var * 2.0 / f64::from(params.theta * params.dt) / f64::from(n)).sqrt();
            assert!((mean - f64::from(params.mu)).abs() < tol_mean, "mean {mean}");
            assert!((var / want_var - 1.0).abs() < 0.05, "var {var} want {want_var}");
        }
        // The default's analytic value: 0.04 / (0.15 · 1.85).
        assert!((OuParams::default().stationary_variance() - 0.144_144_14).abs() < 1e-6);
    }

    #[test]
    fn ou_reset_returns_to_mean() {
        let mut ou = OuNoise::new(OuParams {
            mu: 0.3,
            ..OuParams::default()
        });
        let mut rng = Rng::seed_from_u64(1);
        ou.sample(&mut rng);
        assert_ne!(ou.value(), 0.3);
        ou.reset();
        assert_eq!(ou.value(), 0.3);
    }

    #[test]
    fn epsilon_schedule_endpoints() {
        for anneal in [Anneal::Exponential, Anneal::Linear] {
            let s = EpsilonSchedule {
                anneal,
                ..EpsilonSchedule::default()
            };
            assert_eq!(s.epsilon(0), 1.0);
            assert_eq!(s.epsilon(19_999), 1.0);
            assert_eq!(s.epsilon(20_000), 1.0);
            assert_eq!(s.epsilon(50_000), 0.001);
            assert_eq!(s.epsilon(u64::MAX), 0.001);
            let mid = s.epsilon(35_000);
            let want = match anneal {
                Anneal::Exponential => 0.001f32.sqrt(),
                Anneal::Linear => 0.5005,
            };
            assert!((mid - want).abs() < 1e-4, "{anneal:?}: {mid}");
            let mut last = 1.0;
            for step in (20_000..50_000).step_by(997) {
                let e = s.epsilon(step);
                assert!(e <= last && e >= 0.001);
                last = e;
            }
        }
    }
}
