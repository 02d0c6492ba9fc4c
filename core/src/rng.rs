//! Seeded random numbers for agents: no global state, same seed → same bits everywhere.
//!
//! [`Rng`] wraps `rand_xoshiro`'s xoshiro256++ and adds the draws the agents need:
//! uniform `f32` in `[0, 1)`, a uniform range, an unbiased integer below a bound, and
//! standard normal `f32` by the Box–Muller transform computed with `libm` (so the
//! bits do not depend on the platform's math library).

use rand_core::{Rng as _, SeedableRng as _};
use rand_xoshiro::Xoshiro256PlusPlus;

/// 2⁻²⁴: the spacing of the 24-bit grid used for uniform `f32` draws.
const F32_UNIT: f32 = 1.0 / 16_777_216.0;

/// A seeded pseudo-random generator (xoshiro256++).
///
/// # Examples
/// ```
/// use cavmem_core::rng::Rng;
/// let mut a = Rng::seed_from_u64(7);
/// let mut b = Rng::seed_from_u64(7);
/// assert_eq!(a.uniform_f32().to_bits(), b.uniform_f32().to_bits());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    /// `None` until seeded (only [`Rng::unseeded`] makes one): then it acts as seed 0.
    inner: Option<Xoshiro256PlusPlus>,
}

impl Rng {
    /// A generator whose whole state is derived from `seed` (SplitMix64 expansion).
    pub fn seed_from_u64(seed: u64) -> Self {
        Self {
            inner: Some(Xoshiro256PlusPlus::seed_from_u64(seed)),
        }
    }

    /// A generator for `static` placement (`const`); it draws as seed 0 until replaced by a
    /// seeded one. All-zero bytes, so a `static` holding it can live in `.bss`.
    pub const fn unseeded() -> Self {
        Self { inner: None }
    }

    fn state(&mut self) -> &mut Xoshiro256PlusPlus {
        self.inner
            .get_or_insert_with(|| Xoshiro256PlusPlus::seed_from_u64(0))
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        self.state().next_u32()
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state().next_u64()
    }

    /// A uniform draw from `[0, 1)` on a grid of 2⁻²⁴ (every value exactly representable).
    pub fn uniform_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * F32_UNIT
    }

    /// A uniform draw from `[lo, hi)`; `lo + (hi - lo)·u`.
    pub fn uniform_range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.uniform_f32()
    }

    /// An unbiased integer in `[0, bound)` (Lemire's multiply-and-reject); 0 when `bound == 0`.
    pub fn below(&mut self, bound: u32) -> u32 {
        if bound == 0 {
            return 0;
        }
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = u64::from(self.next_u32()) * u64::from(bound);
            // The low half decides rejection; the high half is the result.
            if (product as u32) >= threshold {
                return (product >> 32) as u32;
            }
        }
    }

    /// A standard normal draw (mean 0, variance 1) by Box–Muller; one draw per call.
    pub fn standard_normal(&mut self) -> f32 {
        // u1 ∈ (0, 1] so that ln(u1) is finite.
        let u1 = ((self.next_u32() >> 8) + 1) as f32 * F32_UNIT;
        let u2 = self.uniform_f32();
        let radius = libm::sqrtf(-2.0 * libm::logf(u1));
        radius * libm::cosf(core::f32::consts::TAU * u2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_same_seed_same_bits() {
        let mut a = Rng::seed_from_u64(42);
        let mut b = Rng::seed_from_u64(42);
        for _ in 0..1000 {
            assert_eq!(a.standard_normal().to_bits(), b.standard_normal().to_bits());
            assert_eq!(a.below(17), b.below(17));
        }
        let mut u = Rng::unseeded();
        assert_eq!(u.next_u64(), Rng::seed_from_u64(0).next_u64());
        let mut c = Rng::seed_from_u64(43);
        assert_ne!(Rng::seed_from_u64(42).next_u64(), c.next_u64());
    }

    #[test]
    fn rng_reference_stream_is_stable() {
        // Golden: the first output of xoshiro256++ whose state is four SplitMix64 outputs from
        // seed 0, computed independently in Python from the two published algorithms. A change
        // here means every recorded trajectory changes.
        let mut r = Rng::seed_from_u64(0);
        let first = r.next_u64();
        let mut again = Rng::seed_from_u64(0);
        assert_eq!(first, again.next_u64());
        assert_eq!(first, 0x53175d61490b23df);
    }

    #[test]
    fn rng_uniform_moments() {
        let mut r = Rng::seed_from_u64(1);
        let n = 200_000;
        let (mut sum, mut sum2) = (0.0f64, 0.0f64);
        for _ in 0..n {
            let u = f64::from(r.uniform_f32());
            assert!((0.0..1.0).contains(&u));
            sum += u;
            sum2 += u * u;
        }
        let mean = sum / f64::from(n);
        let var = sum2 / f64::from(n) - mean * mean;
        assert!((mean - 0.5).abs() < 0.005, "mean {mean}");
        assert!((var - 1.0 / 12.0).abs() < 0.002, "var {var}");
    }

    #[test]
    fn rng_normal_moments() {
        let mut r = Rng::seed_from_u64(2);
        let n = 200_000;
        let (mut sum, mut sum2, mut sum4) = (0.0f64, 0.0f64, 0.0f64);
        for _ in 0..n {
            let z = f64::from(r.standard_normal());
            assert!(z.is_finite());
            sum += z;
            sum2 += z * z;
            sum4 += z * z * z * z;
        }
        let nf = f64::from(n);
        assert!((sum / nf).abs() < 0.01);
        assert!((sum2 / nf - 1.0).abs() < 0.02);
        assert!((sum4 / nf - 3.0).abs() < 0.1, "kurtosis {}", sum4 / nf);
    }

    #[test]
    fn rng_below_is_in_range_and_covers() {
        let mut r = Rng::seed_from_u64(3);
        let mut seen = [0u32; 7];
        for _ in 0..70_000 {
            let k = r.below(7) as usize;
            seen[k] += 1;
        }
        for count in seen {
            assert!((9_000..11_000).contains(&count), "{seen:?}");
        }
        assert_eq!(r.below(0), 0);
        assert_eq!(r.below(1), 0);
    }
}
