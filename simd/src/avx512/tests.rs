use super::*;
use crate::{KernelPath, available};
use std::vec::Vec;

/// Values from a fixed generator, with a few exact zeros, negative zeros and large terms.
fn values(seed: u32, n: usize) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|k| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            match k % 23 {
                5 => 0.0,
                11 => -0.0,
                17 => ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 1e4,
                _ => (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5,
            }
        })
        .collect()
}

fn matrix<const R: usize, const C: usize>(seed: u32, rows: usize) -> Vec<[f32; C]> {
    let v = values(seed, rows * C);
    v.chunks(C).map(|c| core::array::from_fn(|k| c[k])).collect()
}

fn mul_add(fused: bool, a: f32, b: f32, c: f32) -> f32 {
    if fused { a.mul_add(b, c) } else { a * b + c }
}

/// The token, or `None` (and a note) on a machine without AVX-512F.
fn token() -> Option<Avx512> {
    if !available(KernelPath::Avx512) {
        std::eprintln!("no AVX-512F here: the AVX-512 kernels are not exercised");
        return None;
    }
    Some(Avx512(crate::Token))
}

fn check_forward<const I: usize, const O: usize, const FUSED: bool>(seed: u32, rows: usize) {
    let Some(k) = token() else { return };
    let w: [[f32; O]; I] = matrix::<I, O>(seed, I).try_into().unwrap();
    let mut b: [f32; O] = matrix::<1, O>(seed + 1, 1)[0];
    b[3] = f32::NAN; // a NaN passes ReLU
    b[4] = -1e30; // a clearly negative sum is zeroed
    let x = matrix::<1, I>(seed + 2, rows);
    for store in [Store::Linear, Store::Relu] {
        let mut y = std::vec![[f32::INFINITY; O]; rows + 1];
        assert!(k.forward_rows::<I, O, FUSED>(&w, &b, &x, &mut y, store));
        for (r, (xr, yr)) in x.iter().zip(&y).enumerate() {
            for o in 0..O {
                let z = (0..I).fold(b[o], |acc, i| mul_add(FUSED, xr[i], w[i][o], acc));
                let want = if store == Store::Relu && z < 0.0 { 0.0 } else { z };
                assert_eq!(
                    yr[o].to_bits(),
                    want.to_bits(),
                    "I={I} O={O} rows={rows} r={r} o={o} {store:?}"
                );
            }
        }
        assert!(
            y[rows].iter().all(|v| *v == f32::INFINITY),
            "a row past the inputs was written"
        );
    }
}

#[test]
fn avx512_forward_sums_each_output_in_input_order() {
    for rows in [0, 1, 3, 4, 5, 8, 9, 64] {
        check_forward::<64, 64, true>(1, rows);
        check_forward::<64, 64, false>(2, rows);
        check_forward::<5, 64, true>(3, rows);
        check_forward::<6, 16, true>(4, rows);
        check_forward::<1, 64, true>(5, rows);
        check_forward::<7, 48, false>(6, rows);
        check_forward::<13, 128, true>(7, rows);
        check_forward::<3, 80, true>(8, rows);
    }
}

fn check_grads<const I: usize, const O: usize, const FUSED: bool>(seed: u32, rows: usize) {
    let Some(k) = token() else { return };
    let g0: [[f32; O]; I] = matrix::<I, O>(seed, I).try_into().unwrap();
    let x = matrix::<1, I>(seed + 1, rows);
    let dz = matrix::<1, O>(seed + 2, rows + 2); // longer: the extra rows are ignored
    let mut g = g0;
    assert!(k.accumulate_grads::<I, O, FUSED>(&mut g, &x, &dz));
    for i in 0..I {
        for o in 0..O {
            let want = x
                .iter()
                .zip(&dz)
                .fold(g0[i][o], |acc, (xr, dr)| mul_add(FUSED, xr[i], dr[o], acc));
            assert_eq!(
                g[i][o].to_bits(),
                want.to_bits(),
                "I={I} O={O} rows={rows} i={i} o={o}"
            );
        }
    }
}

#[test]
fn avx512_grads_sum_each_element_in_row_order() {
    for rows in [0, 1, 7, 64] {
        check_grads::<64, 64, true>(11, rows);
        check_grads::<64, 64, false>(12, rows);
        check_grads::<5, 64, true>(13, rows);
        check_grads::<6, 32, false>(14, rows);
        check_grads::<3, 80, true>(15, rows);
        check_grads::<9, 112, true>(16, rows);
    }
}

#[test]
fn avx512_kernels_decline_other_widths() {
    let Some(k) = token() else { return };
    let w = [[1.0f32; 8]; 2];
    let mut y = [[7.0f32; 8]; 1];
    assert!(!k.forward_rows::<2, 8, true>(&w, &[0.0; 8], &[[1.0; 2]], &mut y, Store::Linear));
    let mut g = w;
    assert!(!k.accumulate_grads::<2, 8, true>(&mut g, &[[1.0; 2]], &[[1.0; 8]]));
    assert_eq!((y, g), ([[7.0; 8]; 1], w));
}
