//! The multi-layer perceptron of the paper (section 4): `I → H → H → O`, ReLU hidden
//! layers, an output [`Head`] chosen by type.
//!
//! Inference on one row uses [`Mlp::forward`] (two `H`-float buffers on the stack).
//! Training runs a batch of up to `B` rows through [`Mlp::forward_tape`], which keeps in
//! an [`MlpTape`] what [`Mlp::backward`] needs: inputs, post-ReLU activations and
//! outputs. Backward gives the parameter gradients (accumulated, so a batch can be split
//! into several tapes) and, optionally, the gradient with respect to the input — the
//! DDPG actor update needs `∂Q/∂a` from the critic without its weight gradients.

use crate::rows::{prefix, prefix_mut};
use core::marker::PhantomData;

use super::act::{Head, relu, relu_derivative_from_output};
use super::dense::{Dense, GRAD_ROW_BLOCK, ROW_BLOCK, Store};
use super::kernels::LANES;
use super::params::Parameters;
use crate::rng::Rng;

/// Bound of the uniform initialization of the output layer, ±3·10⁻³, so initial outputs
/// are near zero (Lillicrap et al. 2016, section 7).
pub const FINAL_LAYER_INIT_BOUND: f32 = 3e-3;

/// `I → H → H → O` perceptron with ReLU hidden layers and output head `A`.
///
/// # Examples
/// ```
/// use cavmem_core::nn::{Mlp, Tanh};
/// use cavmem_core::rng::Rng;
/// let mut actor = Mlp::<5, 64, 1, Tanh>::zeroed();
/// actor.init(&mut Rng::seed_from_u64(1));
/// let [bid] = actor.forward(&[0.0, 0.2, -0.5, -0.5, 0.3]);
/// assert!(bid.abs() < 0.05); // the small output layer keeps first actions near 0
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp<const I: usize, const H: usize, const O: usize, A: Head> {
    l1: Dense<I, H>,
    l2: Dense<H, H>,
    l3: Dense<H, O>,
    head: PhantomData<A>,
}

impl<const I: usize, const H: usize, const O: usize, A: Head> Default for Mlp<I, H, O, A> {
    fn default() -> Self {
        Self::zeroed()
    }
}

/// Activations of one forward pass over up to `B` rows, kept for [`Mlp::backward`].
/// Also holds the backward pass's scratch rows so training needs no stack arrays.
#[derive(Clone, Debug)]
pub struct MlpTape<const I: usize, const H: usize, const O: usize, const B: usize> {
    rows: usize,
    x: [[f32; I]; B],
    h1: [[f32; H]; B],
    h2: [[f32; H]; B],
    y: [[f32; O]; B],
    dz3: [[f32; O]; B],
    dh2: [[f32; H]; B],
    dh1: [[f32; H]; B],
}

impl<const I: usize, const H: usize, const O: usize, const B: usize> Default for MlpTape<I, H, O, B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const I: usize, const H: usize, const O: usize, const B: usize> MlpTape<I, H, O, B> {
    /// An empty tape.
    pub const fn new() -> Self {
        Self {
            rows: 0,
            x: [[0.0; I]; B],
            h1: [[0.0; H]; B],
            h2: [[0.0; H]; B],
            y: [[0.0; O]; B],
            dz3: [[0.0; O]; B],
            dh2: [[0.0; H]; B],
            dh1: [[0.0; H]; B],
        }
    }

    /// Number of rows recorded by the last forward pass.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The outputs of the last forward pass, one row per input row.
    pub fn outputs(&self) -> &[[f32; O]] {
        prefix(&self.y, self.rows)
    }
}

impl<const I: usize, const H: usize, const O: usize, A: Head> Mlp<I, H, O, A> {
    /// A network with all parameters zero; call [`Mlp::init`] before use. `const`, so a
    /// network (or an agent holding one) can be placed in a `static`.
    pub const fn zeroed() -> Self {
        Self {
            l1: Dense::zeroed(),
            l2: Dense::zeroed(),
            l3: Dense::zeroed(),
            head: PhantomData,
        }
    }

    /// Seeded initialization: hidden layers uniform in `±1/√fan_in`, the output layer in
    /// [`FINAL_LAYER_INIT_BOUND`] (Lillicrap et al. 2016). Draws layer by layer, weights
    /// before biases.
    pub fn init(&mut self, rng: &mut Rng) {
        self.l1.init_uniform(Dense::<I, H>::fan_in_bound(), rng);
        self.l2.init_uniform(Dense::<H, H>::fan_in_bound(), rng);
        self.l3.init_uniform(FINAL_LAYER_INIT_BOUND, rng);
    }

    /// The three layers, input to output (for inference variants such as
    /// [`crate::agent::int8::Int8Actor`]).
    pub fn layers(&self) -> (&Dense<I, H>, &Dense<H, H>, &Dense<H, O>) {
        (&self.l1, &self.l2, &self.l3)
    }

    /// The network's output for one input row.
    pub fn forward(&self, x: &[f32; I]) -> [f32; O] {
        let mut h1 = [0.0; H];
        let mut h2 = [0.0; H];
        let mut y = [0.0; O];
        self.l1.forward_then(x, &mut h1, relu);
        self.l2.forward_then(&h1, &mut h2, relu);
        self.l3.forward_then(&h2, &mut y, A::apply);
        y
    }

    /// Runs up to `B` rows of `inputs` forward and records them in `tape`; returns the
    /// outputs (the first `min(inputs.len(), B)` rows). Bit-identical to
    /// [`Mlp::forward`] row by row.
    pub fn forward_tape<'t, const B: usize>(
        &self,
        tape: &'t mut MlpTape<I, H, O, B>,
        inputs: &[[f32; I]],
    ) -> &'t [[f32; O]] {
        let rows = inputs.len().min(B);
        for (x, input) in tape.x.iter_mut().zip(inputs) {
            *x = *input;
        }
        let x = prefix(&tape.x, rows);
        let h1 = prefix_mut(&mut tape.h1, rows);
        let h2 = prefix_mut(&mut tape.h2, rows);
        let y = prefix_mut(&mut tape.y, rows);
        self.forward_before_head(x, h1, h2, y);
        A::apply_in_place(y.as_flattened_mut());
        tape.rows = rows;
        tape.outputs()
    }

    /// The outputs for many rows at once, without keeping activations (target networks).
    /// Writes `min(inputs.len(), outputs.len())` rows. Bit-identical to [`Mlp::forward`].
    pub fn forward_rows(&self, inputs: &[[f32; I]], outputs: &mut [[f32; O]]) {
        let mut h1 = [[0.0; H]; ROW_BLOCK];
        let mut h2 = [[0.0; H]; ROW_BLOCK];
        for (x, y) in inputs.chunks(ROW_BLOCK).zip(outputs.chunks_mut(ROW_BLOCK)) {
            let n = x.len().min(y.len());
            let (h1, h2) = (prefix_mut(&mut h1, n), prefix_mut(&mut h2, n));
            self.forward_before_head(prefix(x, n), h1, h2, prefix_mut(y, n));
        }
        let rows = inputs.len().min(outputs.len());
        A::apply_in_place(prefix_mut(outputs, rows).as_flattened_mut());
    }

    /// Forward through all layers for equal-length row slices, layer by layer over all the
    /// rows ([`Dense::forward_rows`]), up to the output layer's sums: the callers apply the head to all their rows at once
    /// ([`Head::apply_in_place`]).
    fn forward_before_head(
        &self,
        x: &[[f32; I]],
        h1: &mut [[f32; H]],
        h2: &mut [[f32; H]],
        y: &mut [[f32; O]],
    ) {
        self.l1.forward_rows(x, h1, Store::Relu);
        self.l2.forward_rows(h1, h2, Store::Relu);
        self.l3.forward_rows(h2, y, Store::Linear);
    }

    /// Backpropagates `d_out = ∂L/∂y` (one row per recorded row) through the pass in
    /// `tape`. Adds the parameter gradients to `grads` when given, and writes `∂L/∂x` to
    /// `d_in` when given. Rows beyond the tape's or `d_out`'s length are ignored.
    pub fn backward<const B: usize>(
        &self,
        tape: &mut MlpTape<I, H, O, B>,
        d_out: &[[f32; O]],
        mut grads: Option<&mut Self>,
        d_in: Option<&mut [[f32; I]]>,
    ) {
        let rows = tape.rows.min(d_out.len());
        for ((dz, dy), y) in tape.dz3.iter_mut().zip(d_out).zip(&tape.y).take(rows) {
            for ((dzo, dyo), yo) in dz.iter_mut().zip(dy).zip(y) {
                *dzo = *dyo * A::derivative_from_output(*yo);
            }
        }
        let dz3 = prefix(&tape.dz3, rows);
        let h2 = prefix(&tape.h2, rows);
        let h1 = prefix(&tape.h1, rows);
        if let Some(g) = grads.as_deref_mut() {
            Dense::accumulate_grads(&mut g.l3, h2, dz3);
        }
        input_grads::<H, O, B>(&self.l3, dz3, prefix_mut(&mut tape.dh2, rows));
        for (dh, h) in tape.dh2.iter_mut().zip(h2) {
            mask_relu(dh, h);
        }
        let dh2 = prefix(&tape.dh2, rows);
        if let Some(g) = grads.as_deref_mut() {
            Dense::accumulate_grads(&mut g.l2, h1, dh2);
        }
        input_grads::<H, H, B>(&self.l2, dh2, prefix_mut(&mut tape.dh1, rows));
        for (dh, h) in tape.dh1.iter_mut().zip(h1) {
            mask_relu(dh, h);
        }
        let dh1 = prefix(&tape.dh1, rows);
        if let Some(g) = grads {
            Dense::accumulate_grads(&mut g.l1, prefix(&tape.x, rows), dh1);
        }
        if let Some(dx) = d_in {
            let n = dx.len().min(dh1.len());
            input_grads::<I, H, B>(&self.l1, prefix(dh1, n), prefix_mut(dx, n));
        }
    }
}

/// Passes over a tape of at least this many rows compute `dz·Wᵀ` for a layer with at least
/// [`LANES`] inputs (a hidden layer or a head) through a transposed copy of its weights
/// ([`Dense::transposed`]): the copy takes `4·I·O` bytes of stack (16 KB for 64 × 64), so
/// smaller tapes — the firmware's 8 rows — never make it.
pub const TRANSPOSE_MIN_ROWS: usize = 32;

/// `dx = dz·Wᵀ` for equal-length row slices from a tape of `B` rows: when `B` and the row
/// count reach [`TRANSPOSE_MIN_ROWS`], as the forward pass of the transposed weights
/// ([`Dense::forward_rows`]: the kernel path's blocks, the last rows one by one); otherwise
/// [`GRAD_ROW_BLOCK`] rows at a time, then the last rows one by one. The same bits either
/// way. Rows past the shorter slice are left alone.
fn input_grads<const I: usize, const O: usize, const B: usize>(
    layer: &Dense<I, O>,
    dz: &[[f32; O]],
    dx: &mut [[f32; I]],
) {
    let rows = dz.len().min(dx.len());
    let dz = prefix(dz, rows);
    let dx = prefix_mut(dx, rows);
    if B >= TRANSPOSE_MIN_ROWS && dz.len() >= TRANSPOSE_MIN_ROWS && I >= LANES {
        layer.transposed().forward_rows(dz, dx, Store::Linear);
        return;
    }
    let (dz_blocks, dz_tail) = dz.as_chunks::<GRAD_ROW_BLOCK>();
    let (dx_blocks, dx_tail) = dx.as_chunks_mut::<GRAD_ROW_BLOCK>();
    for (dzb, dxb) in dz_blocks.iter().zip(dx_blocks) {
        layer.input_grad_block(dzb, dxb);
    }
    for (dzr, dxr) in dz_tail.iter().zip(dx_tail) {
        layer.input_grad(dzr, dxr);
    }
}

/// Zeroes the gradient of inactive ReLU units: `d[k] *= relu'(h[k])`.
#[inline(always)]
fn mask_relu<const H: usize>(d: &mut [f32; H], h: &[f32; H]) {
    for (dk, hk) in d.iter_mut().zip(h) {
        *dk *= relu_derivative_from_output(*hk);
    }
}

impl<const I: usize, const H: usize, const O: usize, A: Head> Parameters for Mlp<I, H, O, A> {
    fn tensors(&self) -> impl Iterator<Item = &[f32]> {
        self.l1
            .tensors()
            .chain(self.l2.tensors())
            .chain(self.l3.tensors())
    }
    fn tensors_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        self.l1
            .tensors_mut()
            .chain(self.l2.tensors_mut())
            .chain(self.l3.tensors_mut())
    }
}

#[cfg(test)]
mod tests;
