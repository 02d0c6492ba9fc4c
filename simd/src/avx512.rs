//! The AVX-512F kernels: 16 lanes of `f32`, register blocks of up to 4 rows × 64 outputs.
//!
//! Each output is summed exactly as the core's generic kernels sum it: from its first
//! addend (the bias, or the gradient so far), one term per input (or row) in index order,
//! each term added by one fused multiply-add (`FUSED`) or by a multiply and an add. Lanes
//! hold different outputs, never parts of one sum, so the width changes no bit.

use crate::{AVX512_LANES as L, Avx512, Store};
use core::arch::x86_64::{
    __m512, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_max_ps, _mm512_mul_ps, _mm512_set1_ps,
    _mm512_setzero_ps, _mm512_storeu_ps,
};

/// Rows (or gradient rows) per register block.
const ROWS: usize = 4;
/// Vectors of outputs per register block: 4 × 4 = 16 of the 32 zmm registers hold sums.
const VECTORS: usize = 4;

impl Avx512 {
    /// `y[r] = store(b + Σ_i x[r][i]·w[i])` for the first `min(x.len(), y.len())` rows,
    /// `w` input-major (`w[i][o]`); each output starts from its bias and adds the inputs'
    /// terms in order. Returns `false` and writes nothing when `O` is not a multiple of 16.
    #[inline]
    pub fn forward_rows<const I: usize, const O: usize, const FUSED: bool>(
        self,
        w: &[[f32; O]; I],
        b: &[f32; O],
        x: &[[f32; I]],
        y: &mut [[f32; O]],
        store: Store,
    ) -> bool {
        if !O.is_multiple_of(L) {
            return false;
        }
        // SAFETY: the token exists only where AVX-512F was detected (crate::avx512).
        unsafe {
            match store {
                Store::Linear => forward_rows::<I, O, FUSED, false>(w, b, x, y),
                Store::Relu => forward_rows::<I, O, FUSED, true>(w, b, x, y),
            }
        }
        true
    }

    /// `g[i][o] += Σ_rows x[i]·dz[o]` over the first `min(x_rows.len(), dz_rows.len())`
    /// rows, each element summing the rows in order. Returns `false` and changes nothing
    /// when `O` is not a multiple of 16.
    #[inline]
    pub fn accumulate_grads<const I: usize, const O: usize, const FUSED: bool>(
        self,
        g: &mut [[f32; O]; I],
        x_rows: &[[f32; I]],
        dz_rows: &[[f32; O]],
    ) -> bool {
        if !O.is_multiple_of(L) {
            return false;
        }
        // SAFETY: as in `forward_rows`.
        unsafe { accumulate_grads::<I, O, FUSED>(g, x_rows, dz_rows) };
        true
    }
}

#[target_feature(enable = "avx512f")]
fn forward_rows<const I: usize, const O: usize, const FUSED: bool, const RELU: bool>(
    w: &[[f32; O]; I],
    b: &[f32; O],
    x: &[[f32; I]],
    y: &mut [[f32; O]],
) {
    let rows = x.len().min(y.len());
    let (x, y) = (
        x.get(..rows).unwrap_or_default(),
        y.get_mut(..rows).unwrap_or_default(),
    );
    let (x_blocks, x_tail) = x.as_chunks::<ROWS>();
    let (y_blocks, y_tail) = y.as_chunks_mut::<ROWS>();
    for (xb, yb) in x_blocks.iter().zip(y_blocks) {
        forward_block::<I, O, ROWS, FUSED, RELU>(w, b, xb, yb);
    }
    for (xr, yr) in x_tail.iter().zip(y_tail) {
        forward_block::<I, O, 1, FUSED, RELU>(w, b, core::array::from_ref(xr), core::array::from_mut(yr));
    }
}

/// One block of `R` rows, all outputs, [`VECTORS`] vectors of outputs at a time.
#[target_feature(enable = "avx512f")]
#[inline]
fn forward_block<const I: usize, const O: usize, const R: usize, const FUSED: bool, const RELU: bool>(
    w: &[[f32; O]; I],
    b: &[f32; O],
    x: &[[f32; I]; R],
    y: &mut [[f32; O]; R],
) {
    let vectors = O / L;
    let mut first = 0;
    while first < vectors {
        match vectors - first {
            1 => forward_columns::<I, O, R, 1, FUSED, RELU>(w, b, x, y, first),
            2 => forward_columns::<I, O, R, 2, FUSED, RELU>(w, b, x, y, first),
            3 => forward_columns::<I, O, R, 3, FUSED, RELU>(w, b, x, y, first),
            _ => forward_columns::<I, O, R, VECTORS, FUSED, RELU>(w, b, x, y, first),
        }
        first += VECTORS;
    }
}

/// Outputs `16·first .. 16·(first + V)` of `R` rows, summed in registers.
#[target_feature(enable = "avx512f")]
#[inline]
fn forward_columns<
    const I: usize,
    const O: usize,
    const R: usize,
    const V: usize,
    const FUSED: bool,
    const RELU: bool,
>(
    w: &[[f32; O]; I],
    b: &[f32; O],
    x: &[[f32; I]; R],
    y: &mut [[f32; O]; R],
    first: usize,
) {
    let bias: [__m512; V] = core::array::from_fn(|v| load(vector(b, first + v)));
    let mut acc = [bias; R];
    for (i, w_row) in w.iter().enumerate() {
        let wv: [__m512; V] = core::array::from_fn(|v| load(vector(w_row, first + v)));
        for (acc_r, x_r) in acc.iter_mut().zip(x) {
            let xi = _mm512_set1_ps(x_r.get(i).copied().unwrap_or(0.0));
            for (a, wk) in acc_r.iter_mut().zip(&wv) {
                *a = mul_add::<FUSED>(xi, *wk, *a);
            }
        }
    }
    for (y_r, acc_r) in y.iter_mut().zip(&acc) {
        for (v, a) in acc_r.iter().enumerate() {
            // ReLU as the core's: max(0, z) keeps z when z is NaN or ±0 (the second operand).
            let z = if RELU {
                _mm512_max_ps(_mm512_setzero_ps(), *a)
            } else {
                *a
            };
            store(vector_mut(y_r, first + v), z);
        }
    }
}

#[target_feature(enable = "avx512f")]
fn accumulate_grads<const I: usize, const O: usize, const FUSED: bool>(
    g: &mut [[f32; O]; I],
    x_rows: &[[f32; I]],
    dz_rows: &[[f32; O]],
) {
    let (blocks, tail) = g.as_chunks_mut::<ROWS>();
    for (n, block) in blocks.iter_mut().enumerate() {
        grad_block::<I, O, ROWS, FUSED>(block, n * ROWS, x_rows, dz_rows);
    }
    let start = I - tail.len();
    for (k, g_row) in tail.iter_mut().enumerate() {
        grad_block::<I, O, 1, FUSED>(core::array::from_mut(g_row), start + k, x_rows, dz_rows);
    }
}

/// Gradient rows `first_input .. + K`, all outputs, [`VECTORS`] vectors at a time.
#[target_feature(enable = "avx512f")]
#[inline]
fn grad_block<const I: usize, const O: usize, const K: usize, const FUSED: bool>(
    g: &mut [[f32; O]; K],
    first_input: usize,
    x_rows: &[[f32; I]],
    dz_rows: &[[f32; O]],
) {
    let vectors = O / L;
    let mut first = 0;
    while first < vectors {
        match vectors - first {
            1 => grad_columns::<I, O, K, 1, FUSED>(g, first_input, x_rows, dz_rows, first),
            2 => grad_columns::<I, O, K, 2, FUSED>(g, first_input, x_rows, dz_rows, first),
            3 => grad_columns::<I, O, K, 3, FUSED>(g, first_input, x_rows, dz_rows, first),
            _ => grad_columns::<I, O, K, VECTORS, FUSED>(g, first_input, x_rows, dz_rows, first),
        }
        first += VECTORS;
    }
}

/// `g[k][16·first ..][..16·V] += Σ_rows x[first_input + k]·dz[..]`, rows in order.
#[target_feature(enable = "avx512f")]
#[inline]
fn grad_columns<const I: usize, const O: usize, const K: usize, const V: usize, const FUSED: bool>(
    g: &mut [[f32; O]; K],
    first_input: usize,
    x_rows: &[[f32; I]],
    dz_rows: &[[f32; O]],
    first: usize,
) {
    let mut acc: [[__m512; V]; K] = core::array::from_fn(|k| {
        core::array::from_fn(|v| g.get(k).map_or(zero(), |row| load(vector(row, first + v))))
    });
    for (x, dz) in x_rows.iter().zip(dz_rows) {
        let d: [__m512; V] = core::array::from_fn(|v| load(vector(dz, first + v)));
        for (k, acc_k) in acc.iter_mut().enumerate() {
            let xk = _mm512_set1_ps(x.get(first_input + k).copied().unwrap_or(0.0));
            for (a, dv) in acc_k.iter_mut().zip(&d) {
                *a = mul_add::<FUSED>(xk, *dv, *a);
            }
        }
    }
    for (row, acc_k) in g.iter_mut().zip(&acc) {
        for (v, a) in acc_k.iter().enumerate() {
            store(vector_mut(row, first + v), *a);
        }
    }
}

/// `a·b + c`: one rounding (`FUSED`) or two, as the core's `mul_add8`.
#[target_feature(enable = "avx512f")]
#[inline]
fn mul_add<const FUSED: bool>(a: __m512, b: __m512, c: __m512) -> __m512 {
    if FUSED {
        _mm512_fmadd_ps(a, b, c)
    } else {
        _mm512_add_ps(_mm512_mul_ps(a, b), c)
    }
}

#[target_feature(enable = "avx512f")]
#[inline]
fn zero() -> __m512 {
    _mm512_setzero_ps()
}

/// Vector `v` (values `16v .. 16v + 16`) of `row`; `None` past the end (never for the
/// callers' `v < O / 16`).
#[inline(always)]
fn vector<const N: usize>(row: &[f32; N], v: usize) -> Option<&[f32; L]> {
    row.as_chunks::<L>().0.get(v)
}

#[inline(always)]
fn vector_mut<const N: usize>(row: &mut [f32; N], v: usize) -> Option<&mut [f32; L]> {
    row.as_chunks_mut::<L>().0.get_mut(v)
}

#[target_feature(enable = "avx512f")]
#[inline]
fn load(src: Option<&[f32; L]>) -> __m512 {
    match src {
        // SAFETY: a reference to 16 initialized f32s; the load is unaligned.
        Some(s) => unsafe { _mm512_loadu_ps(s.as_ptr()) },
        None => _mm512_setzero_ps(),
    }
}

#[target_feature(enable = "avx512f")]
#[inline]
fn store(dst: Option<&mut [f32; L]>, v: __m512) {
    if let Some(d) = dst {
        // SAFETY: an exclusive reference to 16 f32s; the store is unaligned.
        unsafe { _mm512_storeu_ps(d.as_mut_ptr(), v) }
    }
}

#[cfg(test)]
mod tests;
