//! A uniform view of a network's parameters as a sequence of flat `f32` tensors.
//!
//! Optimizers ([`crate::optim`]) and target updates walk two or more parameter sets of the
//! same type in lockstep through this trait, so one loop serves every network. Gradients
//! and Adam moments are stored as values of the network type itself.

/// A fixed set of `f32` tensors that can be visited in a stable order.
pub trait Parameters {
    /// The tensors, in a fixed order (for each layer: weights, then biases).
    fn tensors(&self) -> impl Iterator<Item = &[f32]>;
    /// The same tensors, mutable, in the same order.
    fn tensors_mut(&mut self) -> impl Iterator<Item = &mut [f32]>;

    /// Sets every parameter to zero (used for gradient accumulators).
    fn fill_zero(&mut self) {
        for t in self.tensors_mut() {
            t.fill(0.0);
        }
    }

    /// Total number of scalar parameters.
    fn parameter_count(&self) -> usize {
        self.tensors().map(<[f32]>::len).sum()
    }

    /// Overwrites scalar parameter `index` (modulo the count, in [`Parameters::tensors`]
    /// order) with `value`, as a memory fault would: for fault-injection drills.
    #[cfg(feature = "fault-injection")]
    fn overwrite_parameter(&mut self, index: usize, value: f32) {
        let count = self.parameter_count();
        if count == 0 {
            return;
        }
        let mut k = index % count;
        for t in self.tensors_mut() {
            if let Some(x) = t.get_mut(k) {
                *x = value;
                return;
            }
            k -= t.len();
        }
    }

    /// Whether every parameter is finite (no NaN or ±∞). Scans every element without an
    /// early exit, so the compiler vectorizes it (the answer is almost always yes).
    fn all_finite(&self) -> bool {
        self.tensors()
            .all(|t| t.iter().fold(true, |finite, x| finite & x.is_finite()))
    }

    /// Copies every parameter from `other`.
    fn copy_from(&mut self, other: &Self) {
        for (dst, src) in self.tensors_mut().zip(other.tensors()) {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = *s;
            }
        }
    }
}
