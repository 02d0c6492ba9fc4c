//! Gradient checks of the MLP against f64 central differences, and tape behaviour.

use std::vec::Vec;

use super::*;
use crate::nn::act::{Identity, Tanh};

/// f64 forward of an `I → H → H → O` network from its flat parameter list (the order of
/// [`Parameters::tensors`]: l1.w (input-major), l1.b, l2.w, l2.b, l3.w, l3.b).
fn reference_forward(p: &[f64], i: usize, h: usize, o: usize, tanh: bool, x: &[f64]) -> Vec<f64> {
    let mut at = 0;
    let mut layer = |input: &[f64], n_in: usize, n_out: usize| -> Vec<f64> {
        let w = &p[at..at + n_in * n_out];
        let b = &p[at + n_in * n_out..at + n_in * n_out + n_out];
        at += n_in * n_out + n_out;
        (0..n_out)
            .map(|k| b[k] + (0..n_in).map(|j| input[j] * w[j * n_out + k]).sum::<f64>())
            .collect()
    };
    let h1: Vec<f64> = layer(x, i, h).into_iter().map(|v| v.max(0.0)).collect();
    let h2: Vec<f64> = layer(&h1, h, h).into_iter().map(|v| v.max(0.0)).collect();
    layer(&h2, h, o)
        .into_iter()
        .map(|v| if tanh { v.tanh() } else { v })
        .collect()
}

/// Relative error with a floor on the scale so that gradients near zero compare absolutely.
fn rel_err(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-4)
}

const MAX_REL_ERR: f64 = 1e-3;

fn gradcheck<const I: usize, const O: usize, A: Head>(seed: u64, tanh: bool, wide_output_layer: bool) {
    const H: usize = 16;
    const ROWS: usize = 3;
    let mut rng = Rng::seed_from_u64(seed);
    let mut net = Mlp::<I, H, O, A>::zeroed();
    net.init(&mut rng);
    if wide_output_layer {
        // Larger output weights make the hidden-layer gradients large enough to compare.
        net.l3.init_uniform(0.5, &mut rng);
    }
    let inputs: [[f32; I]; ROWS] =
        core::array::from_fn(|_| core::array::from_fn(|_| rng.uniform_range(-1.0, 1.0)));
    let coef: [[f32; O]; ROWS] =
        core::array::from_fn(|_| core::array::from_fn(|_| rng.uniform_range(-1.0, 1.0)));

    let mut tape = MlpTape::<I, H, O, 4>::new();
    net.forward_tape(&mut tape, &inputs);
    let mut grads = Mlp::<I, H, O, A>::zeroed();
    let mut d_in = [[0.0f32; I]; ROWS];
    net.backward(&mut tape, &coef, Some(&mut grads), Some(&mut d_in));

    let params: Vec<f64> = net.tensors().flatten().map(|v| f64::from(*v)).collect();
    let analytic: Vec<f64> = grads.tensors().flatten().map(|v| f64::from(*v)).collect();
    let loss = |p: &[f64], xs: &[[f64; I]; ROWS]| -> f64 {
        xs.iter()
            .zip(&coef)
            .map(|(x, c)| {
                let y = reference_forward(p, I, H, O, tanh, x);
                y.iter().zip(c).map(|(yo, co)| yo * f64::from(*co)).sum::<f64>()
            })
            .sum()
    };
    let xs: [[f64; I]; ROWS] = inputs.map(|r| r.map(f64::from));
    let step = 1e-6;
    for (k, g) in analytic.iter().enumerate() {
        let mut plus = params.clone();
        let mut minus = params.clone();
        plus[k] += step;
        minus[k] -= step;
        let numeric = (loss(&plus, &xs) - loss(&minus, &xs)) / (2.0 * step);
        assert!(
            rel_err(*g, numeric) <= MAX_REL_ERR,
            "param {k}: analytic {g} numeric {numeric}"
        );
    }
    for r in 0..ROWS {
        for i in 0..I {
            let mut plus = xs;
            let mut minus = xs;
            plus[r][i] += step;
            minus[r][i] -= step;
            let numeric = (loss(&params, &plus) - loss(&params, &minus)) / (2.0 * step);
            let g = f64::from(d_in[r][i]);
            assert!(
                rel_err(g, numeric) <= MAX_REL_ERR,
                "input {r},{i}: analytic {g} numeric {numeric}"
            );
        }
    }
}

#[test]
fn gradcheck_tanh_head_actor_shape() {
    for seed in 0..4 {
        gradcheck::<5, 1, Tanh>(seed, true, true);
    }
}

#[test]
fn gradcheck_identity_head_critic_shape() {
    for seed in 10..14 {
        gradcheck::<6, 1, Identity>(seed, false, true);
    }
}

#[test]
fn gradcheck_multi_output_q_network_shape() {
    for seed in 20..23 {
        gradcheck::<5, 3, Identity>(seed, false, true);
    }
}

#[test]
fn gradcheck_default_init() {
    gradcheck::<5, 1, Tanh>(30, true, false);
    gradcheck::<6, 1, Identity>(31, false, false);
}

#[test]
fn mlp_tape_matches_single_row_forward() {
    let mut net = Mlp::<5, 64, 1, Tanh>::zeroed();
    net.init(&mut Rng::seed_from_u64(5));
    let rows: [[f32; 5]; 3] = [[0.1, 0.2, 0.3, 0.4, 0.5], [-1.0, 0.0, 1.0, 0.0, -1.0], [0.0; 5]];
    let mut tape = MlpTape::<5, 64, 1, 2>::new();
    let out = net.forward_tape(&mut tape, &rows);
    assert_eq!(out.len(), 2, "a tape holds at most B rows");
    for (o, r) in out.iter().zip(&rows) {
        assert_eq!(o[0].to_bits(), net.forward(r)[0].to_bits());
    }
}

#[test]
fn mlp_backward_accumulates_over_split_batches() {
    let mut net = Mlp::<6, 8, 1, Identity>::zeroed();
    net.init(&mut Rng::seed_from_u64(6));
    let rows: [[f32; 6]; 4] =
        core::array::from_fn(|r| core::array::from_fn(|i| (r * 6 + i) as f32 * 0.05 - 0.5));
    let ones = [[1.0f32]; 4];
    let mut whole = Mlp::<6, 8, 1, Identity>::zeroed();
    let mut tape4 = MlpTape::<6, 8, 1, 4>::new();
    net.forward_tape(&mut tape4, &rows);
    net.backward(&mut tape4, &ones, Some(&mut whole), None);
    let mut split = Mlp::<6, 8, 1, Identity>::zeroed();
    let mut tape2 = MlpTape::<6, 8, 1, 2>::new();
    for half in rows.chunks(2) {
        net.forward_tape(&mut tape2, half);
        net.backward(&mut tape2, &ones[..2], Some(&mut split), None);
    }
    for (a, b) in whole.tensors().flatten().zip(split.tensors().flatten()) {
        assert!((a - b).abs() <= 1e-6 * a.abs().max(1.0));
    }
    assert!(whole.tensors().flatten().any(|g| *g != 0.0));
}

/// `forward_rows` and `forward_tape` over `N` rows equal `forward` row by row, bit for bit.
/// The output layer is drawn wide (±2), so a tanh head sees arguments in all of
/// `libm::tanhf`'s branches, and its blocks of eight rows go through `nn::tanh`.
fn check_rows_match_single_rows<A: Head, const N: usize>(seed: u64) {
    let mut net = Mlp::<6, 64, 1, A>::zeroed();
    let mut rng = Rng::seed_from_u64(seed);
    net.init(&mut rng);
    net.l3.init_uniform(2.0, &mut rng);
    let rows: [[f32; 6]; N] =
        core::array::from_fn(|_| core::array::from_fn(|_| rng.uniform_range(-1.0, 1.0)));
    let mut out = [[0.0f32; 1]; N];
    net.forward_rows(&rows, &mut out);
    let mut tape = MlpTape::<6, 64, 1, N>::new();
    let taped = net.forward_tape(&mut tape, &rows).to_vec();
    for ((r, o), t) in rows.iter().zip(&out).zip(&taped) {
        assert_eq!(o[0].to_bits(), net.forward(r)[0].to_bits());
        assert_eq!(t[0].to_bits(), o[0].to_bits());
    }
}

#[test]
fn mlp_forward_rows_matches_single_rows() {
    check_rows_match_single_rows::<Identity, 11>(8);
    check_rows_match_single_rows::<Tanh, 11>(9);
    check_rows_match_single_rows::<Tanh, 64>(10);
}
