//! A fully connected layer `y = x·W + b` with `I` inputs and `O` outputs.
//!
//! Weights are stored input-major, `w[i][o]`, so the forward pass adds one contiguous row
//! of `O` weights per input (see [`super::kernels::axpy`]). Sizes: `I·O + O` parameters.

use super::act::relu;
use super::kernels::{FUSED, LANES, axpy, dot_in_order, dot_split, input_grad_rows, mul_add, transpose};
use super::params::Parameters;
use crate::rng::Rng;
use crate::rows::{at, prefix, prefix_mut};
pub use cavmem_simd::Store;

/// Rows per register block in [`Dense::forward_block`].
pub const ROW_BLOCK: usize = 4;
/// Rows per block in [`Dense::input_grad_block`]: one row per lane of an 8-lane vector.
pub const GRAD_ROW_BLOCK: usize = LANES;
/// Outputs per register block in [`Dense::forward_block`] (two AVX registers, four SSE/NEON ones).
pub const OUT_BLOCK: usize = 16;
/// Gradient rows (inputs) per register block in [`Dense::accumulate_grads`].
pub const GRAD_IN_BLOCK: usize = 2;
/// Outputs per register block in [`Dense::accumulate_grads`]: with [`GRAD_IN_BLOCK`], eight
/// AVX registers of sums.
pub const GRAD_OUT_BLOCK: usize = 32;

/// A dense layer with compile-time shape `I → O`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense<const I: usize, const O: usize> {
    /// Weights, input-major: `w[i][o]` connects input `i` to output `o`.
    w: [[f32; O]; I],
    /// Biases, one per output.
    b: [f32; O],
}

impl<const I: usize, const O: usize> Default for Dense<I, O> {
    fn default() -> Self {
        Self::zeroed()
    }
}

impl<const I: usize, const O: usize> Dense<I, O> {
    /// A layer with every weight and bias zero (usable in a `static`).
    pub const fn zeroed() -> Self {
        Self {
            w: [[0.0; O]; I],
            b: [0.0; O],
        }
    }

    /// Fills weights, then biases, row by row, with uniform draws from `[-bound, bound)`.
    pub fn init_uniform(&mut self, bound: f32, rng: &mut Rng) {
        for row in &mut self.w {
            for x in row.iter_mut() {
                *x = rng.uniform_range(-bound, bound);
            }
        }
        for x in &mut self.b {
            *x = rng.uniform_range(-bound, bound);
        }
    }

    /// The fan-in bound `1/√I` of Lillicrap et al. (2016), section 7, for hidden layers.
    pub fn fan_in_bound() -> f32 {
        1.0 / libm::sqrtf(I as f32)
    }

    /// The weight connecting input `i` to output `o`, if both are in range.
    pub fn weight(&self, i: usize, o: usize) -> Option<f32> {
        self.w.get(i).and_then(|row| row.get(o)).copied()
    }

    /// The bias of output `o`, if in range.
    pub fn bias(&self, o: usize) -> Option<f32> {
        self.b.get(o).copied()
    }

    /// `y = x·W + b` for one input row; `y` is overwritten (pre-activation). Each output
    /// starts from its bias and adds the inputs' terms in order, except in narrow layers
    /// (fewer than [`LANES`] outputs, a 1-output head): there the terms are summed as
    /// [`dot_split`] says and the bias is added last, so no output is one long chain of
    /// dependent additions.
    #[inline]
    pub fn forward(&self, x: &[f32; I], y: &mut [f32; O]) {
        self.forward_then(x, y, |z| z);
    }

    /// [`Dense::forward`] with the activation `act` applied as each output is stored (see
    /// [`Dense::forward_block_then`]).
    #[inline]
    pub fn forward_then(&self, x: &[f32; I], y: &mut [f32; O], act: impl Fn(f32) -> f32) {
        if O < LANES {
            let columns = self.columns();
            for ((yo, b), column) in y.iter_mut().zip(&self.b).zip(&columns) {
                *yo = act(*b + dot_split(x, column));
            }
            return;
        }
        let mut acc = self.b;
        for (xi, wi) in x.iter().zip(&self.w) {
            axpy(&mut acc, *xi, wi);
        }
        *y = acc.map(act);
    }

    /// The weights output by output: `columns[o][i] = w[i][o]`.
    #[inline(always)]
    fn columns(&self) -> [[f32; I]; O] {
        core::array::from_fn(|o| core::array::from_fn(|i| self.w[i][o]))
    }

    /// [`Dense::forward`] for [`ROW_BLOCK`] rows at once. Each block of [`OUT_BLOCK`]
    /// outputs of every row is summed in registers while the weights are read once for
    /// all rows. Every output is summed over the inputs in the same order as
    /// [`Dense::forward`], so the results are bit-identical.
    #[inline]
    pub fn forward_block(&self, x: &[[f32; I]; ROW_BLOCK], y: &mut [[f32; O]; ROW_BLOCK]) {
        self.forward_block_then(x, y, |z| z);
    }

    /// [`Dense::forward_block`] with the activation `act` applied as each output is stored:
    /// one unconditional store per output (an activation applied in place afterwards, like
    /// ReLU's "zero the negatives", compiles to slow masked stores). Narrow layers (fewer
    /// than [`LANES`] outputs, a 1-output head) sum each row in the split order of
    /// [`Dense::forward`].
    #[inline]
    pub fn forward_block_then(
        &self,
        x: &[[f32; I]; ROW_BLOCK],
        y: &mut [[f32; O]; ROW_BLOCK],
        act: impl Fn(f32) -> f32 + Copy,
    ) {
        if O < LANES {
            let columns = self.columns();
            for (x_r, y_r) in x.iter().zip(y.iter_mut()) {
                for ((yo, b), column) in y_r.iter_mut().zip(&self.b).zip(&columns) {
                    *yo = act(*b + dot_split(x_r, column));
                }
            }
            return;
        }
        let (bias_blocks, bias_tail) = self.b.as_chunks::<OUT_BLOCK>();
        for (ob, bias) in bias_blocks.iter().enumerate() {
            let mut acc = [*bias; ROW_BLOCK];
            for (i, w_row) in self.w.iter().enumerate() {
                let Some(w) = w_row.as_chunks::<OUT_BLOCK>().0.get(ob) else {
                    continue;
                };
                for (acc_r, x_r) in acc.iter_mut().zip(x) {
                    let xi = at(x_r, i);
                    axpy(acc_r, xi, w);
                }
            }
            for (y_r, acc_r) in y.iter_mut().zip(&acc) {
                if let Some(dst) = y_r.as_chunks_mut::<OUT_BLOCK>().0.get_mut(ob) {
                    *dst = acc_r.map(act);
                }
            }
        }
        // The last outputs: the rows' sums advance together, so the dependent additions
        // of one row overlap with the others'.
        let start = O - bias_tail.len();
        for (o, b) in bias_tail.iter().enumerate() {
            let mut acc = [*b; ROW_BLOCK];
            for (i, w_row) in self.w.iter().enumerate() {
                let w = at(w_row, start + o);
                for (a, x_r) in acc.iter_mut().zip(x) {
                    *a = mul_add(at(x_r, i), w, *a);
                }
            }
            for (y_r, a) in y.iter_mut().zip(&acc) {
                if let Some(dst) = y_r.get_mut(start + o) {
                    *dst = act(*a);
                }
            }
        }
    }

    /// [`Dense::forward_then`] for every row of `x` (up to the shorter of `x` and `y`),
    /// storing the sums as `store` says. With the AVX-512 kernels active
    /// ([`cavmem_simd::active`]) and `O` a multiple of 16, in 16-lane register blocks of up
    /// to 4 rows × 64 outputs; otherwise [`ROW_BLOCK`] rows at a time, then row by row.
    /// The same bits either way.
    pub fn forward_rows(&self, x: &[[f32; I]], y: &mut [[f32; O]], store: Store) {
        if let Some(wide) = cavmem_simd::avx512()
            && wide.forward_rows::<I, O, FUSED>(&self.w, &self.b, x, y, store)
        {
            return;
        }
        let rows = x.len().min(y.len());
        let (x, y) = (prefix(x, rows), prefix_mut(y, rows));
        let (x_blocks, x_tail) = x.as_chunks::<ROW_BLOCK>();
        let (y_blocks, y_tail) = y.as_chunks_mut::<ROW_BLOCK>();
        for (xb, yb) in x_blocks.iter().zip(y_blocks) {
            match store {
                Store::Linear => self.forward_block(xb, yb),
                Store::Relu => self.forward_block_then(xb, yb, relu),
            }
        }
        for (xr, yr) in x_tail.iter().zip(y_tail) {
            match store {
                Store::Linear => self.forward(xr, yr),
                Store::Relu => self.forward_then(xr, yr, relu),
            }
        }
    }

    /// Adds this layer's parameter gradients for a batch to `grads`:
    /// `∂W[i][o] += Σ_rows x[i]·dz[o]` and `∂b[o] += Σ_rows dz[o]`, rows in order.
    ///
    /// Every element is summed over the rows in order; the loops only choose which
    /// elements advance together. Layers with at least [`LANES`] outputs keep blocks of
    /// [`GRAD_IN_BLOCK`] × [`GRAD_OUT_BLOCK`] gradients in registers while the rows are
    /// summed into them; narrower layers (a 1-output head) take the rows one by one and
    /// advance all inputs together, in vectors. With the AVX-512 kernels active and `O` a
    /// multiple of 16, the weights' blocks are 4 inputs × 64 outputs in 16-lane vectors: the
    /// same sums in the same order. Not inlined: its register blocks' spill space stays out
    /// of the callers' frames (the firmware's stack).
    #[inline(never)]
    pub fn accumulate_grads(grads: &mut Self, x_rows: &[[f32; I]], dz_rows: &[[f32; O]]) {
        let rows = x_rows.len().min(dz_rows.len());
        let x_rows = prefix(x_rows, rows);
        let dz_rows = prefix(dz_rows, rows);
        let wide = cavmem_simd::avx512()
            .is_some_and(|k| k.accumulate_grads::<I, O, FUSED>(&mut grads.w, x_rows, dz_rows));
        if !wide {
            accumulate_weight_grads(&mut grads.w, x_rows, dz_rows);
        }
        let mut acc = grads.b;
        for dz in dz_rows {
            for (gb, d) in acc.iter_mut().zip(dz) {
                *gb += *d;
            }
        }
        grads.b = acc;
    }

    /// The gradient with respect to the input for one row: `dx[i] = Σ_o dz[o]·W[i][o]`,
    /// each sum from zero in order of `o`. Not inlined: the batch's last rows (fewer than a
    /// block) take this path, and its scalar sums stay out of the callers' frames.
    #[inline(never)]
    pub fn input_grad(&self, dz: &[f32; O], dx: &mut [f32; I]) {
        for (dxi, wi) in dx.iter_mut().zip(&self.w) {
            *dxi = dot_in_order(dz, wi);
        }
    }
}

impl<const I: usize, const O: usize> Dense<I, O> {
    /// [`Dense::input_grad`] for [`GRAD_ROW_BLOCK`] rows at once, the rows advancing in
    /// the lanes of one vector ([`input_grad_rows`]); bit-identical to [`Dense::input_grad`].
    /// Layers with fewer than [`LANES`] outputs (a 1-output head) go row by row, in vectors
    /// over the inputs: their sums are too short to pay for transposing the rows into lanes.
    #[inline]
    pub fn input_grad_block(&self, dz: &[[f32; O]; GRAD_ROW_BLOCK], dx: &mut [[f32; I]; GRAD_ROW_BLOCK]) {
        if O < LANES {
            input_grad_narrow(&self.w, dz, dx);
        } else {
            input_grad_rows(&self.w, dz, dx);
        }
    }

    /// The transposed layer `O → I` with zero biases: its forward pass of a row `dz` is
    /// `dz·Wᵀ`, bit-identical to [`Dense::input_grad`] when `I ≥ LANES` (each sum from zero
    /// in order of `o`; a narrow result sums in [`dot_split`]'s order instead). Blocks of
    /// rows then run through the forward kernel, whose loads suit the input gradient better
    /// than [`input_grad_rows`]: worth its copy of the weights (`4·I·O` bytes, on the
    /// stack) when a pass has tens of rows ([`super::mlp`]).
    #[inline]
    pub fn transposed(&self) -> Dense<O, I> {
        let mut t = Dense::<O, I>::zeroed();
        transpose(&self.w, &mut t.w);
        t
    }
}

/// The generic kernels' part of [`Dense::accumulate_grads`]: the weights' gradients.
#[inline(always)]
fn accumulate_weight_grads<const I: usize, const O: usize>(
    w: &mut [[f32; O]; I],
    x_rows: &[[f32; I]],
    dz_rows: &[[f32; O]],
) {
    if O < LANES {
        accumulate_narrow(w, x_rows, dz_rows);
        return;
    }
    let (blocks, tail) = w.as_chunks_mut::<GRAD_IN_BLOCK>();
    for (b, block) in blocks.iter_mut().enumerate() {
        accumulate_block(block, b * GRAD_IN_BLOCK, x_rows, dz_rows);
    }
    let start = I - tail.len();
    for (k, gw) in tail.iter_mut().enumerate() {
        accumulate_block(core::array::from_mut(gw), start + k, x_rows, dz_rows);
    }
}

/// [`Dense::accumulate_grads`] for a layer with fewer than [`LANES`] outputs: one column of
/// gradients (all inputs of output `o`) at a time, in vectors over the inputs; each element
/// still sums the rows in order. Not inlined: its column buffer stays out of the callers'
/// frames (the firmware's stack).
#[inline(never)]
fn accumulate_narrow<const I: usize, const O: usize>(
    w: &mut [[f32; O]; I],
    x_rows: &[[f32; I]],
    dz_rows: &[[f32; O]],
) {
    for o in 0..O {
        let mut column: [f32; I] = core::array::from_fn(|i| w[i][o]);
        for (x, dz) in x_rows.iter().zip(dz_rows) {
            axpy(&mut column, dz[o], x);
        }
        for (row, g) in w.iter_mut().zip(column) {
            row[o] = g;
        }
    }
}

/// [`Dense::input_grad_block`] for a layer with fewer than [`LANES`] outputs, in vectors over
/// the inputs: each sum still runs over the outputs in order, as [`Dense::input_grad`].
/// Not inlined, as [`accumulate_narrow`].
#[inline(never)]
fn input_grad_narrow<const I: usize, const O: usize>(
    w: &[[f32; O]; I],
    dz: &[[f32; O]; GRAD_ROW_BLOCK],
    dx: &mut [[f32; I]; GRAD_ROW_BLOCK],
) {
    let columns: [[f32; I]; O] = core::array::from_fn(|o| core::array::from_fn(|i| w[i][o]));
    for (dz_r, dx_r) in dz.iter().zip(dx.iter_mut()) {
        *dx_r = [0.0; I];
        for (d, column) in dz_r.iter().zip(&columns) {
            axpy(dx_r, *d, column);
        }
    }
}

/// `g[k][o] += Σ_rows x[first + k]·dz[o]` for the `K` gradient rows of `g`, rows in order,
/// [`GRAD_OUT_BLOCK`] outputs at a time held in registers.
#[inline(always)]
fn accumulate_block<const K: usize, const I: usize, const O: usize>(
    g: &mut [[f32; O]; K],
    first: usize,
    x_rows: &[[f32; I]],
    dz_rows: &[[f32; O]],
) {
    let (out_blocks, out_tail) = [(); O].as_chunks::<GRAD_OUT_BLOCK>();
    for ob in 0..out_blocks.len() {
        let mut acc: [[f32; GRAD_OUT_BLOCK]; K] = g.each_ref().map(|row| out_block(row, ob));
        for (x, dz) in x_rows.iter().zip(dz_rows) {
            let d = out_block(dz, ob);
            for (k, a) in acc.iter_mut().enumerate() {
                axpy(a, at(x, first + k), &d);
            }
        }
        for (row, a) in g.iter_mut().zip(acc) {
            if let Some(dst) = row.as_chunks_mut::<GRAD_OUT_BLOCK>().0.get_mut(ob) {
                *dst = a;
            }
        }
    }
    let start = O - out_tail.len();
    for (k, row) in g.iter_mut().enumerate() {
        for (x, dz) in x_rows.iter().zip(dz_rows) {
            let xi = at(x, first + k);
            for (gk, d) in row.iter_mut().zip(dz).skip(start) {
                *gk = mul_add(xi, *d, *gk);
            }
        }
    }
}

/// Outputs `ob·GRAD_OUT_BLOCK ..` of one row (a whole block: the caller's `ob` is in
/// bounds, `debug_assert!`ed; past them, zeros in release builds, as [`crate::rows`]).
#[inline(always)]
fn out_block<const O: usize>(row: &[f32; O], ob: usize) -> [f32; GRAD_OUT_BLOCK] {
    debug_assert!(ob < O / GRAD_OUT_BLOCK, "block {ob} of {O} outputs");
    row.as_chunks::<GRAD_OUT_BLOCK>()
        .0
        .get(ob)
        .copied()
        .unwrap_or([0.0; GRAD_OUT_BLOCK])
}

impl<const I: usize, const O: usize> Parameters for Dense<I, O> {
    fn tensors(&self) -> impl Iterator<Item = &[f32]> {
        [self.w.as_flattened(), &self.b[..]].into_iter()
    }
    fn tensors_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        [self.w.as_flattened_mut(), &mut self.b[..]].into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_forward_by_hand() {
        let mut d = Dense::<2, 3>::zeroed();
        // w = [[1, 2, 3], [4, 5, 6]], b = [0.5, 0, -1]
        for (k, t) in d.tensors_mut().enumerate() {
            for (j, x) in t.iter_mut().enumerate() {
                *x = if k == 0 {
                    (j + 1) as f32
                } else {
                    [0.5, 0.0, -1.0][j]
                };
            }
        }
        let mut y = [0.0; 3];
        d.forward(&[1.0, -1.0], &mut y);
        assert_eq!(y, [1.0 - 4.0 + 0.5, 2.0 - 5.0, 3.0 - 6.0 - 1.0]);
        let mut dx = [0.0; 2];
        d.input_grad(&[1.0, 0.0, 2.0], &mut dx);
        assert_eq!(dx, [1.0 + 6.0, 4.0 + 12.0]);
        assert_eq!(d.parameter_count(), 9);
    }

    /// A layer with weights and biases uniform in ±0.7 and `R` rows of `N` values in ±2,
    /// drawn from `seed` in that order.
    fn seeded_layer_and_rows<const I: usize, const O: usize, const N: usize, const R: usize>(
        seed: u64,
    ) -> (Dense<I, O>, [[f32; N]; R]) {
        let mut rng = Rng::seed_from_u64(seed);
        let mut d = Dense::<I, O>::zeroed();
        d.init_uniform(0.7, &mut rng);
        let rows = core::array::from_fn(|_| core::array::from_fn(|_| rng.uniform_range(-2.0, 2.0)));
        (d, rows)
    }

    #[test]
    fn dense_forward_block_is_bit_identical_to_rows() {
        fn check<const I: usize, const O: usize>(seed: u64) {
            let (d, x) = seeded_layer_and_rows::<I, O, I, ROW_BLOCK>(seed);
            let mut blocked = [[0.0; O]; ROW_BLOCK];
            d.forward_block(&x, &mut blocked);
            for (xr, yr) in x.iter().zip(&blocked) {
                let mut single = [0.0; O];
                d.forward(xr, &mut single);
                assert_eq!(single.map(f32::to_bits), yr.map(f32::to_bits));
            }
        }
        check::<5, 64>(1);
        check::<64, 64>(2);
        check::<64, 1>(3);
        check::<64, 3>(4);
        check::<6, 37>(5);
    }

    /// Narrow layers sum in eight interleaved partial sums, added pairwise, then the bias:
    /// spelled out here term by term.
    #[test]
    fn dense_narrow_layers_sum_in_the_split_order() {
        fn check<const I: usize, const O: usize>(seed: u64) {
            let mut rng = Rng::seed_from_u64(seed);
            let mut d = Dense::<I, O>::zeroed();
            d.init_uniform(0.7, &mut rng);
            let x: [f32; I] = core::array::from_fn(|_| rng.uniform_range(-2.0, 2.0));
            let mut y = [0.0; O];
            d.forward(&x, &mut y);
            for (o, got) in y.iter().enumerate() {
                let mut p = [0.0f32; 8];
                for (i, xi) in x.iter().enumerate() {
                    p[i % 8] = mul_add(*xi, d.w[i][o], p[i % 8]);
                }
                let total = ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
                assert_eq!(got.to_bits(), (d.b[o] + total).to_bits(), "I={I} O={O} o={o}");
                let exact: f64 = f64::from(d.b[o])
                    + x.iter()
                        .enumerate()
                        .map(|(i, xi)| f64::from(*xi) * f64::from(d.w[i][o]))
                        .sum::<f64>();
                assert!((f64::from(*got) - exact).abs() < 1e-5, "{got} vs {exact}");
            }
        }
        check::<64, 1>(1);
        check::<64, 3>(2);
        check::<13, 1>(3);
        check::<5, 7>(4);
    }

    #[test]
    fn dense_accumulate_grads_sums_rows_in_order() {
        fn check<const I: usize, const O: usize>(seed: u64, rows: usize) {
            let mut rng = Rng::seed_from_u64(seed);
            let x: [[f32; I]; 9] =
                core::array::from_fn(|_| core::array::from_fn(|_| rng.uniform_range(-2.0, 2.0)));
            let dz: [[f32; O]; 9] =
                core::array::from_fn(|_| core::array::from_fn(|_| rng.uniform_range(-2.0, 2.0)));
            let mut g = Dense::<I, O>::zeroed();
            g.init_uniform(0.1, &mut rng);
            let mut expect = g.clone();
            Dense::accumulate_grads(&mut g, &x[..rows], &dz[..rows]);
            for (i, row) in expect.w.iter_mut().enumerate() {
                for (o, e) in row.iter_mut().enumerate() {
                    for r in 0..rows {
                        *e = mul_add(x[r][i], dz[r][o], *e);
                    }
                }
            }
            for (o, e) in expect.b.iter_mut().enumerate() {
                for d in &dz[..rows] {
                    *e += d[o];
                }
            }
            let bits = |d: &Dense<I, O>| -> std::vec::Vec<u32> {
                d.tensors().flatten().map(|v| v.to_bits()).collect()
            };
            assert_eq!(bits(&g), bits(&expect), "{I}x{O}, {rows} rows");
        }
        for rows in [0, 1, 8, 9] {
            check::<64, 64>(1, rows);
            check::<6, 64>(2, rows);
            check::<5, 64>(3, rows);
            check::<64, 1>(4, rows);
            check::<64, 3>(5, rows);
            check::<7, 45>(6, rows);
            check::<3, 8>(7, rows);
        }
    }

    #[test]
    fn dense_input_grad_block_is_bit_identical_to_rows() {
        fn check<const I: usize, const O: usize>(seed: u64) {
            let (d, dz) = seeded_layer_and_rows::<I, O, O, GRAD_ROW_BLOCK>(seed);
            let mut blocked = [[0.0; I]; GRAD_ROW_BLOCK];
            d.input_grad_block(&dz, &mut blocked);
            for (dzr, dxr) in dz.iter().zip(&blocked) {
                let mut single = [0.0; I];
                d.input_grad(dzr, &mut single);
                assert_eq!(single.map(f32::to_bits), dxr.map(f32::to_bits));
            }
        }
        check::<64, 64>(1);
        check::<6, 64>(2);
        check::<64, 1>(3);
        check::<64, 3>(4);
        check::<5, 37>(5);
    }

    #[test]
    fn dense_transposed_forward_is_the_input_gradient() {
        fn check<const I: usize, const O: usize>(seed: u64) {
            let (d, dz) = seeded_layer_and_rows::<I, O, O, ROW_BLOCK>(seed);
            let t = d.transposed();
            assert!(t.b.iter().all(|b| b.to_bits() == 0));
            let mut blocked = [[0.0; I]; ROW_BLOCK];
            t.forward_block(&dz, &mut blocked);
            for (dzr, dxr) in dz.iter().zip(&blocked) {
                let mut single = [0.0; I];
                d.input_grad(dzr, &mut single);
                assert_eq!(single.map(f32::to_bits), dxr.map(f32::to_bits), "I={I} O={O}");
            }
        }
        check::<64, 64>(1);
        check::<8, 64>(2);
        check::<64, 6>(3);
        check::<21, 13>(4);
        check::<64, 1>(5);
        check::<64, 3>(6);
    }

    #[test]
    fn dense_init_within_bounds_and_seeded() {
        let mut a = Dense::<64, 64>::zeroed();
        let mut b = Dense::<64, 64>::zeroed();
        a.init_uniform(Dense::<64, 64>::fan_in_bound(), &mut Rng::seed_from_u64(9));
        b.init_uniform(Dense::<64, 64>::fan_in_bound(), &mut Rng::seed_from_u64(9));
        assert_eq!(a, b);
        assert!(a.tensors().flatten().all(|x| x.abs() <= 0.125));
        assert!(a.tensors().flatten().any(|x| x.abs() > 0.1));
    }
}
