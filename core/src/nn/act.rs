//! Output heads of a network: the function applied to the last layer's output.
//!
//! Hidden layers always use ReLU. The head is a type, so an actor (`Tanh`, bids in
//! [-1, 1]) and a critic (`Identity`, unbounded returns) cannot be mixed up.

/// An elementwise output function whose derivative can be computed from its output.
pub trait Head: Copy + core::fmt::Debug + Default {
    /// Short lowercase name for reports (`"tanh"`, `"identity"`).
    const NAME: &'static str;
    /// The function `y = f(z)`.
    fn apply(z: f32) -> f32;
    /// `f'(z)` expressed through `y = f(z)`.
    fn derivative_from_output(y: f32) -> f32;
    /// Replaces every `z` in `values` by `f(z)`, the same bits as [`Head::apply`].
    fn apply_in_place(values: &mut [f32]) {
        for v in values {
            *v = Self::apply(*v);
        }
    }
}

/// The linear head `f(z) = z`, for value functions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Identity;

impl Head for Identity {
    const NAME: &'static str = "identity";
    #[inline(always)]
    fn apply(z: f32) -> f32 {
        z
    }
    #[inline(always)]
    fn derivative_from_output(_y: f32) -> f32 {
        1.0
    }
    #[inline(always)]
    fn apply_in_place(_values: &mut [f32]) {}
}

/// The hyperbolic tangent head, for bounded actions in [-1, 1].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tanh;

impl Head for Tanh {
    const NAME: &'static str = "tanh";
    #[inline(always)]
    fn apply(z: f32) -> f32 {
        libm::tanhf(z)
    }
    #[inline(always)]
    fn derivative_from_output(y: f32) -> f32 {
        1.0 - y * y
    }
    /// Branch-free and vectorized ([`super::tanh`]), the same bits as `libm::tanhf`.
    #[inline(always)]
    fn apply_in_place(values: &mut [f32]) {
        super::tanh::tanh_in_place(values);
    }
}

/// ReLU, the hidden-layer activation: `max(z, 0)`. A NaN passes through (it is not
/// masked to 0), so a corrupted weight shows in the output instead of hiding.
#[inline(always)]
pub fn relu(z: f32) -> f32 {
    if z < 0.0 { 0.0 } else { z }
}

/// ReLU's derivative from its output: 1 where the unit is active, else 0.
#[inline(always)]
pub fn relu_derivative_from_output(y: f32) -> f32 {
    if y > 0.0 { 1.0 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn act_heads() {
        assert_eq!(Identity::apply(-3.5), -3.5);
        assert_eq!(Identity::derivative_from_output(9.0), 1.0);
        let y = Tanh::apply(0.5);
        assert!((f64::from(y) - 0.5f64.tanh()).abs() < 1e-7);
        assert!((Tanh::derivative_from_output(y) - (1.0 - y * y)).abs() < 1e-7);
        assert_eq!(relu(-1.0), 0.0);
        assert_eq!(relu(2.0), 2.0);
        assert_eq!(relu_derivative_from_output(0.0), 0.0);
        assert!(relu(f32::NAN).is_nan(), "NaN must not be masked");
    }
}
