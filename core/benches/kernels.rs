//! Criterion benchmarks of the network kernels and the learning steps, one thread.
//!
//! `cargo bench -p cavmem-core --features std,fma --bench kernels` (add `-- <filter>` for a
//! subset). The layer kernels run 64 rows, the minibatch of a learning step, in the blocks
//! the agents use; throughput "elements" are multiply-adds. `cavmem bench` has the
//! end-to-end figures (docs/performance.md).

use std::hint::black_box;

use cavmem_core::agent::ddpg::BATCH;
use cavmem_core::agent::{AgentTransition, Ddpg, DdpgParams, Dqn, DqnParams, Policy};
use cavmem_core::nn::dense::{GRAD_ROW_BLOCK, ROW_BLOCK};
use cavmem_core::nn::{Dense, Identity, Mlp, MlpTape};
use cavmem_core::rng::Rng;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Rows per benchmark call: one minibatch.
const ROWS: usize = 64;

fn rows<const N: usize>(rng: &mut Rng) -> Vec<[f32; N]> {
    (0..ROWS)
        .map(|_| core::array::from_fn(|_| rng.uniform_range(-1.0, 1.0)))
        .collect()
}

fn blocks<const N: usize, const B: usize>(rows: &[[f32; N]]) -> Vec<[[f32; N]; B]> {
    rows.as_chunks::<B>().0.to_vec()
}

/// One layer's forward, input-gradient and weight-gradient kernels over 64 rows.
fn layer<const I: usize, const O: usize>(c: &mut Criterion, name: &str) {
    let mut rng = Rng::seed_from_u64(1);
    let mut d = Dense::<I, O>::zeroed();
    d.init_uniform(0.5, &mut rng);
    let x = rows::<I>(&mut rng);
    let dz = rows::<O>(&mut rng);
    let mut g = c.benchmark_group(format!("layer {name}"));
    g.throughput(Throughput::Elements((ROWS * I * O) as u64));
    let xb = blocks::<I, ROW_BLOCK>(&x);
    let mut yb = vec![[[0.0f32; O]; ROW_BLOCK]; xb.len()];
    g.bench_function("forward", |b| {
        b.iter(|| {
            for (x, y) in xb.iter().zip(yb.iter_mut()) {
                d.forward_block(black_box(x), y);
            }
            black_box(&yb);
        })
    });
    let dzb = blocks::<O, GRAD_ROW_BLOCK>(&dz);
    let mut dxb = vec![[[0.0f32; I]; GRAD_ROW_BLOCK]; dzb.len()];
    g.bench_function("input_grad", |b| {
        b.iter(|| {
            for (dz, dx) in dzb.iter().zip(dxb.iter_mut()) {
                d.input_grad_block(black_box(dz), dx);
            }
            black_box(&dxb);
        })
    });
    let mut grads = Dense::<I, O>::zeroed();
    g.bench_function("weight_grads (chunks of 8 rows)", |b| {
        b.iter(|| {
            for (x, dz) in x.chunks(8).zip(dz.chunks(8)) {
                Dense::accumulate_grads(&mut grads, black_box(x), dz);
            }
            black_box(&grads);
        })
    });
    g.finish();
}

fn layers(c: &mut Criterion) {
    layer::<64, 64>(c, "64x64");
    layer::<6, 64>(c, "6x64");
    layer::<64, 1>(c, "64x1");
}

/// The critic's whole network over 64 rows: forward with a tape, and backward.
fn critic_network(c: &mut Criterion) {
    let mut rng = Rng::seed_from_u64(2);
    let mut net = Mlp::<6, 64, 1, Identity>::zeroed();
    net.init(&mut rng);
    let mut grads = Mlp::<6, 64, 1, Identity>::zeroed();
    let x = rows::<6>(&mut rng);
    let d = rows::<1>(&mut rng);
    let mut tape = MlpTape::<6, 64, 1, 8>::new();
    let mut g = c.benchmark_group("critic 6-64-64-1");
    let forward = ROWS * (6 * 64 + 64 * 64 + 64);
    let input_grads = ROWS * (64 + 64 * 64);
    g.throughput(Throughput::Elements(forward as u64));
    g.bench_function("forward (tape)", |b| {
        b.iter(|| {
            for chunk in x.chunks(8) {
                black_box(net.forward_tape(&mut tape, black_box(chunk)));
            }
        })
    });
    let mut dx = [[0.0f32; 6]; 8];
    // Weight gradients and the input gradients the first layer's weight gradients need.
    g.throughput(Throughput::Elements((2 * forward + input_grads) as u64));
    g.bench_function("forward + backward (weight grads)", |b| {
        b.iter(|| {
            for (chunk, dc) in x.chunks(8).zip(d.chunks(8)) {
                net.forward_tape(&mut tape, chunk);
                net.backward(&mut tape, dc, Some(&mut grads), None);
            }
            black_box(&grads);
        })
    });
    g.throughput(Throughput::Elements(
        (forward + input_grads + ROWS * 6 * 64) as u64,
    ));
    g.bench_function("forward + backward (input grads only)", |b| {
        b.iter(|| {
            for (chunk, dc) in x.chunks(8).zip(d.chunks(8)) {
                net.forward_tape(&mut tape, chunk);
                net.backward(&mut tape, dc, None, Some(&mut dx));
            }
            black_box(&dx);
        })
    });
    g.finish();
}

fn filled<P: Policy>(mut p: Box<P>) -> Box<P> {
    let mut rng = Rng::seed_from_u64(3);
    for _ in 0..4096 {
        let t = AgentTransition::random(&mut rng);
        let _ = p.record(&t);
    }
    p
}

/// Whole learning steps on a replay of 4096 transitions (as `cavmem bench`).
fn learning_steps(c: &mut Criterion) {
    let mut g = c.benchmark_group("learn");
    let mut ddpg = filled(Box::new(Ddpg::<16_384, BATCH>::new(DdpgParams::default(), 1)));
    g.bench_function("ddpg", |b| b.iter(|| black_box(ddpg.learn())));
    let mut dqn = filled(Box::new(Dqn::<16_384, BATCH>::new(DqnParams::default(), 1)));
    g.bench_function("dqn", |b| b.iter(|| black_box(dqn.learn())));
    g.finish();
}

criterion_group!(benches, layers, critic_network, learning_steps);
criterion_main!(benches);
