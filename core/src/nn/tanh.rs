//! `tanh` over many values at once, bit-identical to `libm::tanhf`.
//!
//! The actor's output head takes the tanh of every row of a minibatch. `libm::tanhf` (a port
//! of FreeBSD's `s_tanhf.c` and `s_expm1f.c`) picks one of several formulas by branching on
//! the argument; with random signs and magnitudes those branches mispredict, and a call cost
//! about 70 cycles in the DDPG update's profile. [`tanh_in_place`] takes the values eight at a
//! time, evaluates the same formulas operation for operation for all eight and then selects
//! the one `libm` would have taken: no branches, one 8-lane vector per step (the last few
//! values, fewer than eight, go to `libm::tanhf` itself).
//! IEEE 754 rounds each operation the same however it is scheduled, so the results equal
//! `libm::tanhf`'s bit for bit, on every target: `tests` compares a spread of arguments and
//! every argument near a branch boundary; the `tanh_exhaustive` example (run in CI) compares
//! all 2³² `f32` bit patterns.
//!
//! The algorithm and constants are those of `libm` 0.2 (MIT licence), which carries
//! this notice from the original:
//!
//! > Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
//! > Developed at SunPro, a Sun Microsystems, Inc. business. Permission to use, copy,
//! > modify, and distribute this software is freely granted, provided that this notice
//! > is preserved.

// The constants as bit patterns, exactly libm's.
/// `ln 2`, high part (`k·LN2_HI` is exact for the reduction's `k`): 0.693138.
const LN2_HI: f32 = f32::from_bits(0x3f31_7180);
/// `ln 2 − LN2_HI`: 9.058e-6.
const LN2_LO: f32 = f32::from_bits(0x3717_f7d1);
/// `1 / ln 2`: 1.442695.
const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b);
/// The rational approximation's coefficients, scaled as in `s_expm1f.c`: −0.0333332, 0.00158072.
const Q1: f32 = f32::from_bits(0xbd08_8868);
const Q2: f32 = f32::from_bits(0x3acf_3010);

/// `|x|` bit patterns of `tanhf`'s branch points: `log(3)/2`, `log(5/3)/2`, 10 and the
/// smallest normal number.
const TANH_LOG3_HALF: u32 = 0x3f0c_9f54;
const TANH_LOG5_3_HALF: u32 = 0x3e82_c578;
const TANH_TEN: u32 = 0x4120_0000;
const SMALLEST_NORMAL: u32 = 0x0080_0000;

/// `|u|` bit patterns of `expm1f`'s branch points: `ln2/2`, `3·ln2/2` and `2⁻²⁵`.
const EXPM1_HALF_LN2: u32 = 0x3eb1_7218;
const EXPM1_THREE_HALVES_LN2: u32 = 0x3f85_1592;
const EXPM1_TINY: u32 = 0x3300_0000;

/// Replaces every value `x` by `tanh(x)`, equal bit for bit to `libm::tanhf(x)`.
///
/// ```
/// let mut v = [-3.0_f32, -0.4, -1e-3, 0.0, 0.3, 2.0, 12.0, f32::INFINITY];
/// let want = v.map(libm::tanhf);
/// cavmem_core::nn::tanh::tanh_in_place(&mut v);
/// assert_eq!(v.map(f32::to_bits), want.map(f32::to_bits));
/// ```
pub fn tanh_in_place(values: &mut [f32]) {
    let (vectors, rest) = values.as_chunks_mut::<VECTOR>();
    for vector in vectors {
        for v in vector {
            *v = tanh_branchless(*v);
        }
    }
    // Fewer than a vector's worth: libm's branches are cheaper than computing every formula.
    for v in rest {
        *v = libm::tanhf(*v);
    }
}

/// Values per branch-free batch: one 8-lane vector.
const VECTOR: usize = 8;

/// `libm::tanhf(x)` with every branch computed and the result selected.
#[inline(always)]
fn tanh_branchless(x: f32) -> f32 {
    let bits = x.to_bits();
    let w = bits & 0x7fff_ffff;
    let a = f32::from_bits(w);
    // tanhf calls expm1f(2|x|) above log(5/3)/2 and expm1f(-2|x|) below it.
    let upper = w > TANH_LOG5_3_HALF;
    let t = expm1_branchless(if upper { 2.0 * a } else { -2.0 * a });
    // Its one division: 0/|x| above 10 (or NaN), 2/(t+2) above log(3)/2, t/(t+2) below.
    let huge = w > TANH_TEN;
    let above_log3_half = w > TANH_LOG3_HALF;
    let (num, den) = if huge {
        (0.0, a)
    } else if above_log3_half {
        (2.0, t + 2.0)
    } else {
        (t, t + 2.0)
    };
    let q = num / den;
    // 1 + 0/|x|; 1 − 2/(t+2); t/(t+2); (−t)/(t+2) = −(t/(t+2)) (rounding is symmetric).
    let magnitude = if huge {
        1.0 + q
    } else if above_log3_half {
        1.0 - q
    } else if upper {
        q
    } else if w >= SMALLEST_NORMAL {
        -q
    } else {
        a
    };
    if bits >> 31 != 0 { -magnitude } else { magnitude }
}

/// `libm::expm1f(u)` for the arguments `tanhf` passes, `u ∈ [−0.52, 20]`, every branch
/// computed and the result selected. Other arguments are clamped into that range first
/// (their results are discarded by [`tanh_branchless`]), which keeps `k` in `[−1, 29]`.
#[inline(always)]
fn expm1_branchless(u: f32) -> f32 {
    let u = u.clamp(-1.0, 20.0);
    let hu = u.to_bits() & 0x7fff_ffff;
    let negative = u < 0.0;
    // Argument reduction: u = k·ln2 + r, r = hi − lo. libm's `(INV_LN2·u ± 0.5) as i32`
    // is computed in floats (a saturating conversion does not vectorize): exact here.
    let kf = if hu <= EXPM1_HALF_LN2 {
        0.0
    } else if hu < EXPM1_THREE_HALVES_LN2 {
        if negative { -1.0 } else { 1.0 }
    } else {
        truncate_small(INV_LN2 * u + if negative { -0.5 } else { 0.5 })
    };
    let k = (kf + ROUNDING_MAGIC).to_bits() as i32 - ROUNDING_MAGIC.to_bits() as i32;
    // With k = ±1 these are libm's `u ∓ LN2_HI` and `±LN2_LO`; with k = 0, `u` and 0.
    let hi = u - kf * LN2_HI;
    let lo = kf * LN2_LO;
    let r = hi - lo;
    let c = (hi - r) - lo;
    // exp(r) − 1 in the primary range.
    let hfx = 0.5 * r;
    let hxs = r * hfx;
    let r1 = 1.0 + hxs * (Q1 + hxs * Q2);
    let t = 3.0 - r1 * hfx;
    let e0 = hxs * ((r1 - t) / (6.0 - r * t));
    let e = r * (e0 - c) - c - hxs;
    // exp(u) − 1 ≈ 2^k·(r − e + 1) − 1, in libm's case-by-case form.
    let two_pow_k = f32::from_bits(((0x7f + k) << 23) as u32);
    let two_pow_minus_k = f32::from_bits(((0x7f - k) << 23) as u32);
    if k == 0 {
        if hu < EXPM1_TINY { u } else { r - (r * e0 - hxs) }
    } else if k == -1 {
        0.5 * (r - e) - 0.5
    } else if k == 1 {
        if r < -0.25 {
            -2.0 * (e - (r + 0.5))
        } else {
            1.0 + 2.0 * (r - e)
        }
    } else if k < 23 {
        (r - e + (1.0 - two_pow_minus_k)) * two_pow_k
    } else {
        (r - (e + two_pow_minus_k) + 1.0) * two_pow_k
    }
}

/// 1.5·2²³: `(t + M) − M` rounds `|t| < 2²²` to an integer (to nearest, ties to even), and
/// the bits of `n + M` for an integer `|n| < 2²²` are `M`'s bits plus `n`.
const ROUNDING_MAGIC: f32 = 12_582_912.0;

/// `t` rounded toward zero, as `t as i32` would, for `|t| < 2²²`; in floats, so it
/// vectorizes.
#[inline(always)]
fn truncate_small(t: f32) -> f32 {
    let nearest = (t + ROUNDING_MAGIC) - ROUNDING_MAGIC;
    if t >= 0.0 {
        if nearest > t { nearest - 1.0 } else { nearest }
    } else if nearest < t {
        nearest + 1.0
    } else {
        nearest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks `tanh_in_place` against `libm::tanhf` for the bit patterns `first..=last`
    /// taken `step` apart, eight at a time as the head does; returns how many were checked.
    fn check_patterns(first: u32, last: u32, step: usize) -> u64 {
        let mut checked = 0;
        let mut patterns = (first..=last).step_by(step).peekable();
        while patterns.peek().is_some() {
            let mut batch = [0.0_f32; 8];
            let mut n = 0;
            for (slot, bits) in batch.iter_mut().zip(&mut patterns) {
                *slot = f32::from_bits(bits);
                n += 1;
            }
            let (xs, want) = (batch, batch.map(libm::tanhf));
            tanh_in_place(&mut batch[..n]);
            for ((got, want), x) in batch[..n].iter().zip(&want).zip(&xs) {
                let same = got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan());
                assert!(same, "tanh({x:e}) = {got:e}, libm {want:e}");
            }
            checked += n as u64;
        }
        checked
    }

    #[test]
    fn tanh_equals_libm_across_all_magnitudes_and_both_signs() {
        // Every 509th bit pattern: all exponents, both signs, NaNs and infinities.
        assert!(check_patterns(0, u32::MAX, 509) > 8_000_000);
    }

    #[test]
    fn tanh_equals_libm_at_every_branch_boundary() {
        let boundaries = [
            TANH_LOG3_HALF,
            TANH_LOG5_3_HALF,
            TANH_TEN,
            SMALLEST_NORMAL,
            // expm1f's branch points, as arguments of tanh (u = ±2|x|).
            (f32::from_bits(EXPM1_HALF_LN2) / 2.0).to_bits(),
            (f32::from_bits(EXPM1_THREE_HALVES_LN2) / 2.0).to_bits(),
            (f32::from_bits(EXPM1_TINY) / 2.0).to_bits(),
            // k = 23, where the last formula changes: u = 22.5·ln2.
            (22.5 * core::f32::consts::LN_2 / 2.0).to_bits(),
            0x7f80_0000, // infinity
        ];
        for b in boundaries {
            for sign in [0, 0x8000_0000] {
                let centre = b | sign;
                assert_eq!(check_patterns(centre - 20_000, centre + 20_000, 1), 40_001);
            }
        }
    }

    #[test]
    fn truncate_small_rounds_toward_zero_like_a_cast() {
        for k in -40_000..40_000 {
            let t = k as f32 / 997.0;
            assert_eq!(truncate_small(t), (t as i32) as f32, "{t}");
        }
        for t in [-1.5, -0.5, -0.49, -0.0, 0.0, 0.5, 1.5, 2.5, 29.999_998] {
            assert_eq!(truncate_small(t), (t as i32) as f32, "{t}");
        }
    }

    #[test]
    fn tanh_handles_signed_zeros_and_nan() {
        let mut v = [
            0.0,
            -0.0,
            f32::NAN,
            -f32::NAN,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE / 4.0,
        ];
        tanh_in_place(&mut v);
        assert_eq!(v[0].to_bits(), 0);
        assert_eq!(v[1].to_bits(), 0x8000_0000);
        assert!(v[2].is_nan() && v[3].is_nan());
        assert_eq!(v[4], -1.0);
        assert_eq!(v[5], f32::MIN_POSITIVE / 4.0);
    }
}
