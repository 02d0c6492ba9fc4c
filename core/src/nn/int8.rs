//! An int8 dense layer for inference only: weights quantized per output, inputs per call.
//!
//! Weights are symmetric int8 with one scale per output, `w[i][o] ≈ q[o][i]·sw[o]`,
//! `sw[o] = max_i |w[i][o]| / 127`, `q[o][i] = rint(w[i][o]·(127 / max_i |w[i][o]|))`; each
//! input row is quantized when the layer runs, `x[i] ≈ qx[i]·sx`, `sx = max_i |x[i]| / 127`,
//! `qx[i] = rint(x[i]·(127 / max_i |x[i]|))` (`rint`: to the nearest integer, ties to
//! even). An output is
//! `y[o] = (Σ_i qx[i]·q[o][i])·(sx·sw[o]) + b[o]`: the sum is exact in `i32` (at most
//! `I·127²`, exact in `f32` too: `I` ≤ 1040 is checked at compile time), so at run time the
//! only roundings are the input's quantization and three `f32` operations, and every target
//! gives the same bits.

use super::dense::Dense;

/// The largest magnitude of a quantized value.
pub const QMAX: f32 = 127.0;

/// An `I → O` layer with int8 weights (output-major) and `f32` scales and biases.
///
/// # Examples
/// ```
/// use cavmem_core::nn::{Dense, int8::Int8Dense};
/// use cavmem_core::rng::Rng;
/// let mut layer = Dense::<4, 8>::zeroed();
/// layer.init_uniform(0.5, &mut Rng::seed_from_u64(1));
/// let q = Int8Dense::quantize(&layer).unwrap();
/// let x = [0.3, -0.7, 0.1, 0.9];
/// let (mut exact, mut approx) = ([0.0; 8], [0.0; 8]);
/// layer.forward(&x, &mut exact);
/// q.forward_then(&x, &mut approx, |z| z);
/// assert!(exact.iter().zip(&approx).all(|(a, b)| (a - b).abs() < 0.02));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Dense<const I: usize, const O: usize> {
    /// Quantized weights, output-major: `q[o][i]` for `w[i][o]`.
    q: [[i8; I]; O],
    /// Weight scale of each output.
    scale: [f32; O],
    /// Biases, as in the `f32` layer.
    bias: [f32; O],
}

impl<const I: usize, const O: usize> Int8Dense<I, O> {
    /// A layer with every weight, scale and bias zero (usable in a `static`).
    pub const fn zeroed() -> Self {
        const { assert!(I <= 1040, "a sum of I·127² must be exact in f32") };
        Self {
            q: [[0; I]; O],
            scale: [0.0; O],
            bias: [0.0; O],
        }
    }

    /// The layer `dense` quantized; `None` if one of its parameters is not finite.
    pub fn quantize(dense: &Dense<I, O>) -> Option<Self> {
        let mut layer = Self::zeroed();
        for (o, ((row, scale), bias)) in layer
            .q
            .iter_mut()
            .zip(&mut layer.scale)
            .zip(&mut layer.bias)
            .enumerate()
        {
            let mut largest = 0.0f32;
            for i in 0..I {
                let w = dense.weight(i, o)?;
                if !w.is_finite() {
                    return None;
                }
                largest = largest.max(w.abs());
            }
            *scale = largest / QMAX;
            let inverse = inverse_scale(largest);
            for (i, q) in row.iter_mut().enumerate() {
                *q = quantize_value(dense.weight(i, o)?, inverse);
            }
            *bias = dense.bias(o).filter(|b| b.is_finite())?;
        }
        Some(layer)
    }

    /// `y = act(x·W + b)` in int8 arithmetic (module docs). A non-finite input makes every
    /// output NaN, so a caller's finiteness check sees it.
    pub fn forward_then(&self, x: &[f32; I], y: &mut [f32; O], act: impl Fn(f32) -> f32) {
        if !x.iter().all(|v| v.is_finite()) {
            y.fill(f32::NAN);
            return;
        }
        let largest = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let (x_scale, inverse) = (largest / QMAX, inverse_scale(largest));
        // Held as i16, the width the products are formed in (vpmaddwd on x86-64).
        let mut qx = [0i16; I];
        for (q, v) in qx.iter_mut().zip(x) {
            *q = i16::from(quantize_value(*v, inverse));
        }
        for (((yo, row), w_scale), b) in y.iter_mut().zip(&self.q).zip(&self.scale).zip(&self.bias) {
            let sum: i32 = row
                .iter()
                .zip(&qx)
                .map(|(w, v)| i32::from(*w) * i32::from(*v))
                .sum();
            *yo = act(sum as f32 * (x_scale * w_scale) + b);
        }
    }

    /// Bytes of the layer's parameters: `I·O` int8 weights and `2·O` `f32`.
    pub const fn parameter_bytes() -> usize {
        I * O + 8 * O
    }
}

/// `127 / largest`, the factor that maps the largest magnitude to 127; 0 for 0 and for a
/// magnitude so small (below about 4·10⁻³⁷) that the factor overflows: such a row counts as zero.
fn inverse_scale(largest: f32) -> f32 {
    let inverse = QMAX / largest;
    if largest > 0.0 && inverse.is_finite() {
        inverse
    } else {
        0.0
    }
}

/// 1.5·2²³: adding it to |v| < 2²² rounds `v` to an integer held in the low mantissa bits.
const SHIFT: f32 = 12_582_912.0;

/// `rint(v · inverse)` as int8. `|v| ≤ largest`, so the product is within ±127 up to one
/// rounding: the integer is read from the bits of the shifted sum, which needs no
/// saturating conversion and vectorizes.
fn quantize_value(v: f32, inverse: f32) -> i8 {
    ((v * inverse + SHIFT).to_bits() as i32 - SHIFT.to_bits() as i32) as i8
}

/// To the nearest integer, ties to even, for |v| < 2²² (IEEE 754 rounds the shifted sum to
/// the nearest, ties to even; Rust never reassociates the two operations).
#[cfg(test)]
fn rint(v: f32) -> f32 {
    (v + SHIFT) - SHIFT
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn layer(seed: u64, bound: f32) -> Dense<16, 8> {
        let mut d = Dense::zeroed();
        d.init_uniform(bound, &mut Rng::seed_from_u64(seed));
        d
    }

    fn row(rng: &mut Rng, bound: f32) -> [f32; 16] {
        core::array::from_fn(|_| rng.uniform_range(-bound, bound))
    }

    #[test]
    fn outputs_are_the_quantized_sum_exactly() {
        let d = layer(1, 0.8);
        let q = Int8Dense::quantize(&d).unwrap();
        let mut rng = Rng::seed_from_u64(2);
        for _ in 0..50 {
            let x = row(&mut rng, 3.0);
            let mut y = [0.0; 8];
            q.forward_then(&x, &mut y, |z| z);
            // Reference: the formula of the module docs, the sum in i64.
            let mx = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let sx = mx / 127.0;
            for (o, out) in y.iter().enumerate() {
                let mw = (0..16).fold(0.0f32, |m, i| m.max(d.weight(i, o).unwrap().abs()));
                let sw = mw / 127.0;
                let sum: i64 = (0..16)
                    .map(|i| {
                        let qw = libm::rintf(d.weight(i, o).unwrap() * (127.0 / mw)) as i64;
                        let qv = libm::rintf(x[i] * (127.0 / mx)) as i64;
                        assert!(qw.abs() <= 127 && qv.abs() <= 127);
                        qw * qv
                    })
                    .sum();
                let expected = sum as f32 * (sx * sw) + d.bias(o).unwrap();
                assert_eq!(out.to_bits(), expected.to_bits(), "output {o}");
            }
        }
    }

    #[test]
    fn error_against_f32_is_within_the_quantization_bound() {
        let d = layer(3, 0.5);
        let q = Int8Dense::quantize(&d).unwrap();
        let mut rng = Rng::seed_from_u64(4);
        for _ in 0..200 {
            let x = row(&mut rng, 2.0);
            let (mut exact, mut approx) = ([0.0; 8], [0.0; 8]);
            d.forward(&x, &mut exact);
            q.forward_then(&x, &mut approx, |z| z);
            let sx = x.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
            for o in 0..8 {
                // |Σ (x·w − x̂·ŵ)| ≤ Σ |x|·sw/2 + |w|·sx/2 + sx·sw/4.
                let sw = (0..16).fold(0.0f32, |m, i| m.max(d.weight(i, o).unwrap().abs())) / 127.0;
                let bound: f32 = (0..16)
                    .map(|i| x[i].abs() * sw / 2.0 + d.weight(i, o).unwrap().abs() * sx / 2.0 + sx * sw / 4.0)
                    .sum();
                assert!(
                    (exact[o] - approx[o]).abs() <= bound * 1.01 + 1e-6,
                    "{o}: {} vs {}",
                    exact[o],
                    approx[o]
                );
            }
        }
    }

    #[test]
    fn rint_rounds_to_the_nearest_and_ties_to_even() {
        for (v, r) in [
            (0.5, 0.0),
            (1.5, 2.0),
            (-2.5, -2.0),
            (126.49, 126.0),
            (-126.51, -127.0),
            (0.49999997, 0.0),
            (127.0, 127.0),
        ] {
            assert_eq!(rint(v), r, "{v}");
        }
        let mut rng = Rng::seed_from_u64(9);
        for _ in 0..10_000 {
            let v = rng.uniform_range(-200.0, 200.0);
            assert_eq!(rint(v), libm::rintf(v), "{v}");
            let small = v * (127.0 / 200.0);
            assert_eq!(
                i32::from(quantize_value(small, 1.0)),
                libm::rintf(small) as i32,
                "{small}"
            );
        }
        // A magnitude whose factor overflows quantizes to zero rather than to garbage.
        assert_eq!(inverse_scale(1e-39), 0.0);
        assert_eq!(quantize_value(1e-39, inverse_scale(1e-39)), 0);
    }

    #[test]
    fn zero_inputs_give_the_biases_and_non_finite_ones_nan() {
        let d = layer(5, 0.5);
        let q = Int8Dense::quantize(&d).unwrap();
        let mut y = [1.0; 8];
        q.forward_then(&[0.0; 16], &mut y, |z| z);
        assert!((0..8).all(|o| y[o] == d.bias(o).unwrap()));
        for bad in [f32::NAN, f32::INFINITY] {
            let mut x = [0.1; 16];
            x[7] = bad;
            q.forward_then(&x, &mut y, |z| z);
            assert!(y.iter().all(|v| v.is_nan()), "{bad}");
        }
    }

    #[test]
    fn a_layer_with_a_non_finite_parameter_is_not_quantized() {
        let mut zero = Dense::<16, 8>::zeroed();
        assert!(Int8Dense::quantize(&zero).is_some_and(|q| q == Int8Dense::zeroed()));
        for bad in [f32::NAN, f32::NEG_INFINITY] {
            let mut values = [0.25f32; 16 * 8 + 8];
            values[40] = bad;
            crate::nn::Parameters::tensors_mut(&mut zero)
                .flat_map(|t| t.iter_mut())
                .zip(values)
                .for_each(|(d, v)| *d = v);
            assert_eq!(Int8Dense::quantize(&zero), None, "{bad}");
        }
    }
}
