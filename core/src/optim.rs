//! Optimizers: Adam with bias correction, and the Polyak soft update of target networks.
//!
//! Both walk parameter sets through [`Parameters`], in one fused pass per tensor.

use crate::nn::Parameters;

/// Adam hyperparameters (Kingma & Ba 2015). Defaults: lr 1e-3, β1 0.9, β2 0.999, ε 1e-8.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Adam {
    /// Learning rate α.
    pub lr: f32,
    /// Decay of the first-moment estimate.
    pub beta1: f32,
    /// Decay of the second-moment estimate.
    pub beta2: f32,
    /// Added to the denominator for numerical safety.
    pub eps: f32,
}

impl Default for Adam {
    fn default() -> Self {
        Self::with_lr(1e-3)
    }
}

/// Adam's per-parameter moments `m`, `v` (stored as values of the network type) and step count.
#[derive(Clone, Debug, PartialEq)]
pub struct AdamState<P> {
    m: P,
    v: P,
    steps: u32,
}

impl<P: Parameters> AdamState<P> {
    /// Fresh state from two zeroed parameter sets of the network type.
    pub const fn new(zero_m: P, zero_v: P) -> Self {
        Self {
            m: zero_m,
            v: zero_v,
            steps: 0,
        }
    }

    /// Zeroes the moments and the step count.
    pub fn reset(&mut self) {
        self.m.fill_zero();
        self.v.fill_zero();
        self.steps = 0;
    }

    /// Number of updates applied so far.
    pub fn steps(&self) -> u32 {
        self.steps
    }
}

impl Adam {
    /// The standard hyperparameters with learning rate `lr`.
    pub const fn with_lr(lr: f32) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// One Adam step, one fused pass over the parameters: `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`,
    /// `p ← p − αₜ · m / (√v + ε̂)` with `αₜ = α·√(1−β2ᵗ) / (1−β1ᵗ)` and `ε̂ = ε·√(1−β2ᵗ)`:
    /// the reordering Kingma & Ba give at the end of their section 2 (one division per
    /// parameter), equal in exact arithmetic to PyTorch's `α/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)`.
    pub fn step<P: Parameters>(&self, params: &mut P, grads: &P, state: &mut AdamState<P>) {
        state.steps = state.steps.saturating_add(1);
        let t = state.steps as f32;
        let bias1 = 1.0 - libm::powf(self.beta1, t);
        let bias2_sqrt = libm::sqrtf(1.0 - libm::powf(self.beta2, t));
        let step_size = self.lr * bias2_sqrt / bias1;
        let eps = self.eps * bias2_sqrt;
        let (b1, b2) = (self.beta1, self.beta2);
        let tensors = params
            .tensors_mut()
            .zip(grads.tensors())
            .zip(state.m.tensors_mut())
            .zip(state.v.tensors_mut());
        for (((p, g), m), v) in tensors {
            for (((pk, gk), mk), vk) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *mk = b1 * *mk + (1.0 - b1) * *gk;
                *vk = b2 * *vk + (1.0 - b2) * *gk * *gk;
                *pk -= step_size * *mk / (sqrt(*vk) + eps);
            }
        }
    }
}

/// `√x`, correctly rounded as IEEE 754 requires: with the `std` feature the compiler's
/// intrinsic (a vector instruction in a vectorized loop), otherwise `libm::sqrtf`; the same
/// bits either way.
#[inline(always)]
fn sqrt(x: f32) -> f32 {
    #[cfg(feature = "std")]
    {
        x.sqrt()
    }
    #[cfg(not(feature = "std"))]
    {
        libm::sqrtf(x)
    }
}

/// Polyak averaging of a target network: `θ' ← (1 − τ)·θ' + τ·θ` for every parameter.
///
/// Returns whether every new target parameter is finite, checked in the same pass. A NaN
/// or infinity in either network reaches the new target for every τ (`0·∞` is NaN), so
/// `true` also means both inputs were finite.
pub fn soft_update<P: Parameters>(target: &mut P, online: &P, tau: f32) -> bool {
    let mut finite = true;
    for (t, o) in target.tensors_mut().zip(online.tensors()) {
        for (tk, ok) in t.iter_mut().zip(o) {
            *tk = *tk * (1.0 - tau) + tau * *ok;
            finite &= tk.is_finite();
        }
    }
    finite
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Dense;

    fn layer(values: [f32; 3]) -> Dense<1, 2> {
        let mut d = Dense::<1, 2>::zeroed();
        for (x, v) in d.tensors_mut().flatten().zip(values) {
            *x = v;
        }
        d
    }

    fn values(d: &Dense<1, 2>) -> [f32; 3] {
        let mut out = [0.0; 3];
        for (o, x) in out.iter_mut().zip(d.tensors().flatten()) {
            *o = *x;
        }
        out
    }

    /// Golden vector: Adam recomputed in f64 from the formulas for three steps.
    #[test]
    fn adam_matches_f64_formula() {
        let adam = Adam::with_lr(0.01);
        let p0 = [0.5f32, -1.0, 2.0];
        let grads = [[0.1f32, -0.2, 0.0], [0.3, 0.1, -1e-3], [-0.5, 0.05, 4.0]];
        let mut p = layer(p0);
        let mut state = AdamState::new(Dense::zeroed(), Dense::zeroed());
        for g in &grads {
            adam.step(&mut p, &layer(*g), &mut state);
        }
        let (b1, b2, eps, lr) = (0.9f64, 0.999f64, 1e-8f64, 0.01f64);
        for k in 0..3 {
            let (mut x, mut m, mut v) = (f64::from(p0[k]), 0.0f64, 0.0f64);
            for (t, g) in grads.iter().enumerate() {
                let g = f64::from(g[k]);
                let t = (t + 1) as i32;
                m = b1 * m + (1.0 - b1) * g;
                v = b2 * v + (1.0 - b2) * g * g;
                let m_hat = m / (1.0 - b1.powi(t));
                let v_hat = v / (1.0 - b2.powi(t));
                x -= lr * m_hat / (v_hat.sqrt() + eps);
            }
            let got = f64::from(values(&p)[k]);
            assert!((got - x).abs() < 1e-6, "k={k}: {got} vs {x}");
        }
        assert_eq!(state.steps(), 3);
        // First Adam step moves each parameter with a non-zero gradient by about lr.
        let mut q = layer(p0);
        let mut s = AdamState::new(Dense::zeroed(), Dense::zeroed());
        adam.step(&mut q, &layer([1.0, -1.0, 0.0]), &mut s);
        let moved = values(&q);
        assert!((moved[0] - (0.5 - 0.01)).abs() < 1e-6);
        assert!((moved[1] - (-1.0 + 0.01)).abs() < 1e-6);
        assert_eq!(moved[2], 2.0);
    }

    /// Golden vector: τ = 0.25 moves a quarter of the way; τ = 1 copies.
    #[test]
    fn polyak_soft_update_golden() {
        let mut target = layer([0.0, 4.0, -2.0]);
        let online = layer([1.0, 0.0, 2.0]);
        assert!(soft_update(&mut target, &online, 0.25));
        assert_eq!(values(&target), [0.25, 3.0, -1.0]);
        assert!(soft_update(&mut target, &online, 1.0));
        assert_eq!(values(&target), [1.0, 0.0, 2.0]);
        let mut t = layer([1.0, 1.0, 1.0]);
        for _ in 0..100 {
            assert!(soft_update(&mut t, &layer([0.0, 0.0, 0.0]), 0.005));
        }
        let expect = 0.995f64.powi(100);
        assert!((f64::from(values(&t)[0]) - expect).abs() < 1e-5);
    }

    /// A non-finite parameter in the online or the old target network is reported for
    /// every τ, including 0 and 1.
    #[test]
    fn soft_update_reports_non_finite_inputs() {
        for tau in [0.0, 0.001, 0.5, 1.0] {
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let mut target = layer([0.0, 1.0, 2.0]);
                assert!(
                    !soft_update(&mut target, &layer([1.0, bad, 0.0]), tau),
                    "online {bad}, τ {tau}"
                );
                let mut target = layer([0.0, bad, 2.0]);
                assert!(
                    !soft_update(&mut target, &layer([1.0, 1.0, 0.0]), tau),
                    "target {bad}, τ {tau}"
                );
            }
            let mut target = layer([f32::MAX, 0.0, 0.0]);
            let overflow = soft_update(&mut target, &layer([f32::MAX, 0.0, 0.0]), tau);
            assert_eq!(overflow, values(&target)[0].is_finite());
        }
    }
}
