//! The few arithmetic kernels the networks are made of, with a fixed summation order.
//!
//! Every sum here runs over its terms in index order, starting from its first addend (a
//! bias, or zero), except [`dot_split`]'s eight interleaved partial sums (the narrow
//! layers' order); the blocked kernels only choose which sums advance together. Each term
//! is added by [`mul_add`] / [`mul_add8`], whose rounding is a build option, the same on
//! every target:
//!
//! - feature `fma` on: **fused** multiply-add, one rounding (IEEE 754 `fusedMultiplyAdd`).
//!   The CPU's instruction where the build has one (x86-64 with `target_feature = "fma"`,
//!   as the workspace's x86-64-v3 default has), otherwise `libm::fmaf` lane by lane: the
//!   same bits, much slower.
//! - feature `fma` off: a multiply and an add, two roundings (Rust never contracts
//!   `a * b + c` by itself). The Cortex-M4F builds use this: their FPU's `vfma` is not
//!   reachable from stable Rust, and with `libm::fmaf` in software an act took 43 times
//!   the instructions (1.27 M instead of 29,394; same fused digest as x86-64, under QEMU).
//!
//! Either way the same seed gives the same bits on every machine with that build option
//! (CI compares the x86-64 and Cortex-M4F self-test digests of the unfused arithmetic, and
//! the fused digest on x86-64). [`input_grad_rows`] uses explicit 8-lane vectors
//! ([`wide::f32x8`]: one `f32` per lane, plain IEEE arithmetic; arrays on targets without
//! SIMD), because the compiler's own vectorizer picks a poor layout for that loop nest.

use crate::rows::at;
use wide::f32x8;

/// Rows in one block of [`input_grad_rows`]: one row per lane of an [`f32x8`].
pub const LANES: usize = 8;

/// Whether this build's kernels fuse multiply and add (the `fma` feature).
pub const FUSED: bool = cfg!(feature = "fma");

/// `a·b + c` for eight lanes, rounded as this build's arithmetic says (module docs).
#[inline(always)]
pub fn mul_add8(a: f32x8, b: f32x8, c: f32x8) -> f32x8 {
    #[cfg(all(feature = "fma", target_feature = "avx", target_feature = "fma"))]
    {
        a.mul_add(b, c)
    }
    #[cfg(all(feature = "fma", not(all(target_feature = "avx", target_feature = "fma"))))]
    {
        let (a, b, c) = (a.to_array(), b.to_array(), c.to_array());
        f32x8::new(core::array::from_fn(|k| libm::fmaf(a[k], b[k], c[k])))
    }
    #[cfg(not(feature = "fma"))]
    {
        a * b + c
    }
}

/// `a·b + c` for one value, rounded as [`mul_add8`].
#[inline(always)]
pub fn mul_add(a: f32, b: f32, c: f32) -> f32 {
    #[cfg(all(
        feature = "fma",
        target_arch = "x86_64",
        target_feature = "avx",
        target_feature = "fma"
    ))]
    {
        wide::f32x4::splat(a)
            .mul_add(wide::f32x4::splat(b), wide::f32x4::splat(c))
            .to_array()[0]
    }
    #[cfg(all(
        feature = "fma",
        not(all(target_arch = "x86_64", target_feature = "avx", target_feature = "fma"))
    ))]
    {
        libm::fmaf(a, b, c)
    }
    #[cfg(not(feature = "fma"))]
    {
        a * b + c
    }
}

/// `y[o] += x · w[o]` for every `o`: one row of a matrix-vector product, eight outputs
/// per vector.
#[inline(always)]
pub fn axpy<const N: usize>(y: &mut [f32; N], x: f32, w: &[f32; N]) {
    let xs = f32x8::splat(x);
    let (y_vectors, y_tail) = y.as_chunks_mut::<LANES>();
    let (w_vectors, w_tail) = w.as_chunks::<LANES>();
    for (yv, wv) in y_vectors.iter_mut().zip(w_vectors) {
        *yv = mul_add8(xs, f32x8::new(*wv), f32x8::new(*yv)).to_array();
    }
    for (yo, wo) in y_tail.iter_mut().zip(w_tail) {
        *yo = mul_add(x, *wo, *yo);
    }
}

/// The dot product `Σ a[k]·b[k]`, summed from zero in index order.
#[inline(always)]
pub fn dot_in_order<const N: usize>(a: &[f32; N], b: &[f32; N]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        sum = mul_add(*x, *y, sum);
    }
    sum
}

/// The dot product `Σ a[k]·b[k]` as eight interleaved partial sums: lane `j` sums the
/// terms `k ≡ j (mod 8)` from zero in index order (the last, partial chunk padded with
/// zeros), then the lanes are added pairwise, `((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 +
/// p7))`. Eight short chains of dependent additions instead of one long one: the order the
/// narrow layers (a 1-output head) sum in, on every target ([`super::Dense`]).
#[inline(always)]
pub fn dot_split<const N: usize>(a: &[f32; N], b: &[f32; N]) -> f32 {
    let (a_chunks, a_tail) = a.as_chunks::<LANES>();
    let (b_chunks, b_tail) = b.as_chunks::<LANES>();
    let mut acc = f32x8::ZERO;
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        acc = mul_add8(f32x8::new(*x), f32x8::new(*y), acc);
    }
    if !a_tail.is_empty() {
        let (mut x, mut y) = ([0.0; LANES], [0.0; LANES]);
        for ((xd, yd), (xs, ys)) in x.iter_mut().zip(&mut y).zip(a_tail.iter().zip(b_tail)) {
            (*xd, *yd) = (*xs, *ys);
        }
        acc = mul_add8(f32x8::new(x), f32x8::new(y), acc);
    }
    lane_total(acc)
}

/// The sum of the eight lanes in the fixed order of [`dot_split`].
#[inline(always)]
fn lane_total(v: f32x8) -> f32 {
    let [p0, p1, p2, p3, p4, p5, p6, p7] = v.to_array();
    ((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7))
}

/// `dx[r][i] = Σ_o dz[r][o]·w[i][o]` for [`LANES`] rows at once, each sum from zero in
/// order of `o`: bit-identical to [`dot_in_order`]`(&dz[r], &w[i])`.
///
/// The rows are transposed into lanes, so every input `i` advances eight row sums with
/// one vector multiply and add per `o`; blocks of eight inputs share each loaded
/// `dz[·][o]` vector. Stack: `O` vectors of 32 bytes, in a frame of its own (not inlined,
/// so the callers' frames do not each carry a copy).
#[inline(never)]
pub fn input_grad_rows<const I: usize, const O: usize>(
    w: &[[f32; O]; I],
    dz: &[[f32; O]; LANES],
    dx: &mut [[f32; I]; LANES],
) {
    let mut dz_t = [f32x8::ZERO; O];
    rows_to_lanes(dz, &mut dz_t);
    let (w_blocks, w_tail) = w.as_chunks::<LANES>();
    for (c, wb) in w_blocks.iter().enumerate() {
        // Lane r of acc[k] is dx[r][8c + k]: transpose back into the rows.
        let acc = lane_sums(wb, &dz_t);
        for (row, v) in dx.iter_mut().zip(f32x8::transpose(acc)) {
            if let Some(dst) = row.as_chunks_mut::<LANES>().0.get_mut(c) {
                *dst = v.to_array();
            }
        }
    }
    // The last inputs advance together too, so their chains of additions overlap.
    let start = I - w_tail.len();
    let acc = lane_sums(w_tail, &dz_t);
    for (k, v) in acc.iter().take(w_tail.len()).enumerate() {
        for (row, x) in dx.iter_mut().zip(v.to_array()) {
            if let Some(dst) = row.get_mut(start + k) {
                *dst = x;
            }
        }
    }
}

/// For up to [`LANES`] weight rows `w[k]`: `acc[k] = Σ_o w[k][o]·dz_t[o]`, from zero in
/// order of `o`; lanes past `w.len()` stay zero.
#[inline(always)]
fn lane_sums<const O: usize>(w: &[[f32; O]], dz_t: &[f32x8; O]) -> [f32x8; LANES] {
    let mut acc = [f32x8::ZERO; LANES];
    let n = w.len().min(LANES);
    for (o, d) in dz_t.iter().enumerate() {
        for (a, wk) in acc.iter_mut().zip(w).take(n) {
            *a = mul_add8(f32x8::splat(at(wk, o)), *d, *a);
        }
    }
    acc
}

/// Transposes `LANES` rows of `N` values into `N` vectors: lane `r` of `out[k]` is `rows[r][k]`.
#[inline(always)]
fn rows_to_lanes<const N: usize>(rows: &[[f32; N]; LANES], out: &mut [f32x8; N]) {
    let (out_blocks, out_tail) = out.as_chunks_mut::<LANES>();
    for (c, block) in out_blocks.iter_mut().enumerate() {
        let square = rows.each_ref().map(|row| f32x8::new(column_block(row, c)));
        *block = f32x8::transpose(square);
    }
    let start = N - out_tail.len();
    for (k, v) in out_tail.iter_mut().enumerate() {
        *v = f32x8::new(rows.each_ref().map(|row| at(row, start + k)));
    }
}

/// `t[o][i] = w[i][o]`: blocks of 8 × 8 transposed in vectors, the edges value by value.
#[inline(never)]
pub fn transpose<const I: usize, const O: usize>(w: &[[f32; O]; I], t: &mut [[f32; I]; O]) {
    let (w_blocks, _) = w.as_chunks::<LANES>();
    let (t_blocks, _) = t.as_chunks_mut::<LANES>();
    for (ib, rows) in w_blocks.iter().enumerate() {
        for (ob, t_rows) in t_blocks.iter_mut().enumerate() {
            let square = rows.each_ref().map(|row| f32x8::new(column_block(row, ob)));
            for (t_row, v) in t_rows.iter_mut().zip(f32x8::transpose(square)) {
                if let Some(dst) = t_row.as_chunks_mut::<LANES>().0.get_mut(ib) {
                    *dst = v.to_array();
                }
            }
        }
    }
    let (i_done, o_done) = (w_blocks.len() * LANES, t_blocks.len() * LANES);
    for (i, row) in w.iter().enumerate() {
        let first = if i < i_done { o_done } else { 0 };
        for (o, x) in row.iter().enumerate().skip(first) {
            if let Some(dst) = t.get_mut(o).and_then(|r| r.get_mut(i)) {
                *dst = *x;
            }
        }
    }
}

/// Values `8c .. 8c + 8` of `row` (a whole block: the caller's `c` is in bounds,
/// `debug_assert!`ed; past them, zeros in release builds, as [`crate::rows`]).
#[inline(always)]
fn column_block<const N: usize>(row: &[f32; N], c: usize) -> [f32; LANES] {
    debug_assert!(c < N / LANES, "block {c} of {N} values");
    row.as_chunks::<LANES>().0.get(c).copied().unwrap_or([0.0; LANES])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_dot_in_order_matches_f64_and_order() {
        let a: [f32; 13] = core::array::from_fn(|k| (k as f32 - 6.0) * 0.37);
        let b: [f32; 13] = core::array::from_fn(|k| 1.0 / (k as f32 + 1.0));
        let exact: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
        let got = dot_in_order(&a, &b);
        assert!((f64::from(got) - exact).abs() < 1e-5);
        // The order is part of the contract: recompute it by hand.
        let by_hand = a.iter().zip(&b).fold(0.0f32, |s, (x, y)| mul_add(*x, *y, s));
        assert_eq!(got.to_bits(), by_hand.to_bits());
    }

    /// Fused: one rounding, as `libm::fmaf`; unfused: the product rounded, then the sum.
    /// (1 + 2⁻²³)² = 1 + 2⁻²² + 2⁻⁴⁶ exactly: only a fused add keeps the 2⁻⁴⁶.
    #[test]
    fn kernels_mul_add_rounds_as_the_build_says() {
        let a = 1.0 + f32::EPSILON;
        let c = -(1.0 + 2.0 * f32::EPSILON);
        let expected = if FUSED { libm::ldexpf(1.0, -46) } else { 0.0 };
        assert_eq!(mul_add(a, a, c), expected);
        assert_eq!(
            mul_add8(f32x8::splat(a), f32x8::splat(a), f32x8::splat(c)).to_array(),
            [expected; 8]
        );
        let mut rng = crate::rng::Rng::seed_from_u64(3);
        for _ in 0..10_000 {
            let [x, y, z] = core::array::from_fn(|_| rng.uniform_range(-1e3, 1e3));
            let want = if FUSED { libm::fmaf(x, y, z) } else { x * y + z };
            assert_eq!(mul_add(x, y, z).to_bits(), want.to_bits(), "{x} {y} {z}");
            let v = mul_add8(f32x8::splat(x), f32x8::splat(y), f32x8::splat(z)).to_array();
            assert!(v.iter().all(|r| r.to_bits() == want.to_bits()), "{x} {y} {z}");
        }
    }

    #[test]
    fn kernels_axpy_accumulates() {
        let mut y = [1.0f32, 2.0, 3.0];
        axpy(&mut y, 2.0, &[0.5, -1.0, 0.25]);
        assert_eq!(y, [2.0, 0.0, 3.5]);
    }

    #[test]
    fn kernels_rows_to_lanes_transposes() {
        fn check<const N: usize>() {
            let rows: [[f32; N]; LANES] =
                core::array::from_fn(|r| core::array::from_fn(|k| (r * 100 + k) as f32));
            let mut lanes = [f32x8::ZERO; N];
            rows_to_lanes(&rows, &mut lanes);
            for (k, v) in lanes.iter().enumerate() {
                for (r, x) in v.to_array().iter().enumerate() {
                    assert_eq!(*x, rows[r][k]);
                }
            }
        }
        check::<1>();
        check::<6>();
        check::<8>();
        check::<21>();
        check::<64>();
    }

    #[test]
    fn kernels_transpose_moves_every_value() {
        fn check<const I: usize, const O: usize>() {
            let w: [[f32; O]; I] = core::array::from_fn(|i| core::array::from_fn(|o| (i * 1000 + o) as f32));
            let mut t = [[f32::NAN; I]; O];
            transpose(&w, &mut t);
            for (i, row) in w.iter().enumerate() {
                for (o, x) in row.iter().enumerate() {
                    assert_eq!(t[o][i], *x, "I={I} O={O} i={i} o={o}");
                }
            }
        }
        check::<64, 64>();
        check::<6, 64>();
        check::<64, 1>();
        check::<13, 21>();
        check::<8, 16>();
        check::<3, 5>();
    }

    #[test]
    fn kernels_input_grad_rows_is_bit_identical_to_dots() {
        fn check<const I: usize, const O: usize>(seed: u32) {
            let mut s = seed;
            let mut next = move || {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            };
            let w: [[f32; O]; I] = core::array::from_fn(|_| core::array::from_fn(|_| next()));
            let mut dz: [[f32; O]; LANES] = core::array::from_fn(|_| core::array::from_fn(|_| next()));
            dz[3] = [0.0; O]; // a masked row: exact zeros (and -0.0 products) stay exact
            let mut dx = [[f32::NAN; I]; LANES];
            input_grad_rows(&w, &dz, &mut dx);
            for (dzr, dxr) in dz.iter().zip(&dx) {
                for (wi, got) in w.iter().zip(dxr) {
                    assert_eq!(got.to_bits(), dot_in_order(dzr, wi).to_bits());
                }
            }
        }
        check::<64, 64>(1);
        check::<6, 64>(2);
        check::<64, 1>(3);
        check::<64, 21>(4);
        check::<5, 37>(5);
        check::<13, 9>(6);
    }
}
