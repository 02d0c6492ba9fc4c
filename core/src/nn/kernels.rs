//! The few arithmetic kernels the networks are made of, with a fixed summation order.
//!
//! Rust never contracts `a * b + c` into a fused multiply-add and never reassociates
//! floating-point sums, so these plain loops give identical bits on x86-64, on a
//! Cortex-M4F and under Miri; the compiler is still free to vectorize them, because
//! every lane's order of operations is written out.

/// Independent partial sums in [`dot`]: eight lanes fill one AVX register or two SSE/NEON ones.
pub const DOT_LANES: usize = 8;

/// `y[o] += x · w[o]` for every `o`: one row of a matrix-vector product.
#[inline(always)]
pub fn axpy<const N: usize>(y: &mut [f32; N], x: f32, w: &[f32; N]) {
    for (yo, wo) in y.iter_mut().zip(w) {
        *yo += x * *wo;
    }
}

/// The dot product `Σ a[k]·b[k]`, summed in [`DOT_LANES`] interleaved lanes that are
/// combined in a fixed tree order, then the tail.
#[inline(always)]
pub fn dot<const N: usize>(a: &[f32; N], b: &[f32; N]) -> f32 {
    let (a_chunks, a_tail) = a.as_chunks::<DOT_LANES>();
    let (b_chunks, b_tail) = b.as_chunks::<DOT_LANES>();
    let mut acc = [0.0f32; DOT_LANES];
    for (ca, cb) in a_chunks.iter().zip(b_chunks) {
        for ((s, x), y) in acc.iter_mut().zip(ca).zip(cb) {
            *s += *x * *y;
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in a_tail.iter().zip(b_tail) {
        tail += *x * *y;
    }
    let [s0, s1, s2, s3, s4, s5, s6, s7] = acc;
    (((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7))) + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_dot_matches_f64_and_fixed_order() {
        let a: [f32; 13] = core::array::from_fn(|k| (k as f32 - 6.0) * 0.37);
        let b: [f32; 13] = core::array::from_fn(|k| 1.0 / (k as f32 + 1.0));
        let exact: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
        let got = dot(&a, &b);
        assert!((f64::from(got) - exact).abs() < 1e-5);
        // The order is part of the contract: recompute it by hand.
        let mut lanes = [0.0f32; 8];
        for k in 0..8 {
            lanes[k] = a[k] * b[k];
        }
        let tail = ((a[8] * b[8] + a[9] * b[9]) + a[10] * b[10] + a[11] * b[11]) + a[12] * b[12];
        let by_hand = (((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
            + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7])))
            + tail;
        assert_eq!(got.to_bits(), by_hand.to_bits());
    }

    #[test]
    fn kernels_axpy_accumulates() {
        let mut y = [1.0f32, 2.0, 3.0];
        axpy(&mut y, 2.0, &[0.5, -1.0, 0.25]);
        assert_eq!(y, [2.0, 0.0, 3.5]);
    }
}
