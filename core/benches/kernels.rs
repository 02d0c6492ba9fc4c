//! Criterion benchmarks of the network kernels and the learning steps, one thread.
//!
//! `cargo bench -p cavmem-core --features std,fma --bench kernels` (add `-- <filter>` for a
//! subset). The layer kernels run 64 rows, the minibatch of a learning step, in the blocks
//! the agents use; throughput "elements" are multiply-adds. `cavmem bench` has the
//! end-to-end figures (docs/performance.md). `CAVMEM_KERNELS=generic|avx512` chooses the
//! kernels (default: the widest this CPU runs); the first line printed names them.

use std::hint::black_box;

use cavmem_core::agent::ddpg::BATCH;
use cavmem_core::agent::{AgentTransition, Ddpg, DdpgParams, Dqn, DqnParams, Policy};
use cavmem_core::nn::dense::{GRAD_ROW_BLOCK, Store};
use cavmem_core::nn::{Dense, Identity, Mlp, MlpTape, Parameters};
use cavmem_core::optim::{Adam, AdamState, soft_update};
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
    let mut y = vec![[0.0f32; O]; ROWS];
    g.bench_function("forward", |b| {
        b.iter(|| {
            d.forward_rows(black_box(&x), &mut y, Store::Linear);
            black_box(&y);
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
    // The harness's path for 64-row tapes of layers at least 8 wide each way
    // (`nn::mlp::TRANSPOSE_MIN_ROWS`): transpose once, then the forward kernel.
    let mut dx = vec![[0.0f32; I]; ROWS];
    g.bench_function("input_grad (transposed weights)", |b| {
        b.iter(|| {
            let t = black_box(&d).transposed();
            t.forward_rows(black_box(&dz), &mut dx, Store::Linear);
            black_box(&dx);
        })
    });
    let mut grads = Dense::<I, O>::zeroed();
    for chunk in [8, ROWS] {
        g.bench_function(format!("weight_grads (chunks of {chunk} rows)"), |b| {
            b.iter(|| {
                for (x, dz) in x.chunks(chunk).zip(dz.chunks(chunk)) {
                    Dense::accumulate_grads(&mut grads, black_box(x), dz);
                }
                black_box(&grads);
            })
        });
    }
    g.finish();
}

fn layers(c: &mut Criterion) {
    match cavmem_core::simd::select_from_env() {
        Ok(path) => eprintln!("kernels: {}", path.describe()),
        Err(e) => {
            eprintln!("kernels bench: {e}");
            std::process::exit(2);
        }
    }
    layer::<64, 64>(c, "64x64");
    layer::<6, 64>(c, "6x64");
    layer::<64, 1>(c, "64x1");
}

/// The critic's whole network over 64 rows in chunks of `C` rows (8: the firmware's
/// tapes; 64: the harness's): forward with a tape, and backward.
fn critic_network_in_chunks<const C: usize>(c: &mut Criterion) {
    let mut rng = Rng::seed_from_u64(2);
    let mut net = Mlp::<6, 64, 1, Identity>::zeroed();
    net.init(&mut rng);
    let mut grads = Mlp::<6, 64, 1, Identity>::zeroed();
    let x = rows::<6>(&mut rng);
    let d = rows::<1>(&mut rng);
    let mut tape = Box::new(MlpTape::<6, 64, 1, C>::new());
    let mut g = c.benchmark_group(format!("critic 6-64-64-1, chunks of {C} rows"));
    let forward = ROWS * (6 * 64 + 64 * 64 + 64);
    let input_grads = ROWS * (64 + 64 * 64);
    g.throughput(Throughput::Elements(forward as u64));
    g.bench_function("forward (tape)", |b| {
        b.iter(|| {
            for chunk in x.chunks(C) {
                black_box(net.forward_tape(&mut tape, black_box(chunk)));
            }
        })
    });
    let mut dx = [[0.0f32; 6]; C];
    // Weight gradients and the input gradients the first layer's weight gradients need.
    g.throughput(Throughput::Elements((2 * forward + input_grads) as u64));
    g.bench_function("forward + backward (weight grads)", |b| {
        b.iter(|| {
            for (chunk, dc) in x.chunks(C).zip(d.chunks(C)) {
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
            for (chunk, dc) in x.chunks(C).zip(d.chunks(C)) {
                net.forward_tape(&mut tape, chunk);
                net.backward(&mut tape, dc, None, Some(&mut dx));
            }
            black_box(&dx);
        })
    });
    g.finish();
}

fn critic_network(c: &mut Criterion) {
    critic_network_in_chunks::<8>(c);
    critic_network_in_chunks::<BATCH>(c);
}

/// The actor's tanh head over one minibatch's outputs: `libm::tanhf` value by value against
/// `nn::tanh::tanh_in_place` (the same bits, eight values per vector). The same 64 values
/// every iteration: libm's branches are predicted better here than in a learning step.
fn tanh_head(c: &mut Criterion) {
    let mut rng = Rng::seed_from_u64(5);
    let z: Vec<f32> = (0..ROWS).map(|_| rng.uniform_range(-3.0, 3.0)).collect();
    let mut y = z.clone();
    let mut g = c.benchmark_group("tanh head, 64 values");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.bench_function("libm::tanhf", |b| {
        b.iter(|| {
            for (yk, zk) in y.iter_mut().zip(black_box(&z)) {
                *yk = libm::tanhf(*zk);
            }
        })
    });
    g.bench_function("tanh_in_place", |b| {
        b.iter(|| {
            y.copy_from_slice(black_box(&z));
            cavmem_core::nn::tanh::tanh_in_place(&mut y);
        })
    });
    g.finish();
}

/// One Adam step and one soft target update of the critic's 4,673 parameters.
fn optimizer(c: &mut Criterion) {
    let mut rng = Rng::seed_from_u64(4);
    let mut net = Box::new(Mlp::<6, 64, 1, Identity>::zeroed());
    net.init(&mut rng);
    let mut grads = Box::new(Mlp::<6, 64, 1, Identity>::zeroed());
    grads.init(&mut rng);
    let mut target = net.clone();
    let mut state = Box::new(AdamState::new(Mlp::zeroed(), Mlp::zeroed()));
    let adam = Adam::with_lr(1e-4);
    let mut g = c.benchmark_group("optimizer, critic");
    g.throughput(Throughput::Elements(net.parameter_count() as u64));
    g.bench_function("adam step", |b| {
        b.iter(|| adam.step(net.as_mut(), black_box(grads.as_ref()), &mut state))
    });
    g.bench_function("soft update", |b| {
        b.iter(|| black_box(soft_update(target.as_mut(), black_box(net.as_ref()), 1e-3)))
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

criterion_group!(
    benches,
    layers,
    critic_network,
    tanh_head,
    optimizer,
    learning_steps
);
criterion_main!(benches);
