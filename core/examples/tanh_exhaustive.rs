//! Compares `cavmem_core::nn::tanh::tanh_in_place` with `libm::tanhf` for all 2³² `f32` bit
//! patterns (NaNs need only both be NaN), on every core: `cargo run --release -p cavmem-core
//! --example tanh_exhaustive`. Exits non-zero and names the first argument that differs.

use std::process::ExitCode;
use std::thread;

/// Bit patterns per batch handed to `tanh_in_place` (a multiple of the vector width).
const BATCH: usize = 4096;

/// The first pattern in `range` whose tanh differs from libm's, if any.
fn first_mismatch(range: std::ops::Range<u64>) -> Option<u32> {
    let mut xs = [0.0_f32; BATCH];
    let mut ys = [0.0_f32; BATCH];
    let mut start = range.start;
    while start < range.end {
        let n = usize::try_from((range.end - start).min(BATCH as u64)).unwrap_or(BATCH);
        for (k, x) in xs.iter_mut().take(n).enumerate() {
            *x = f32::from_bits((start + k as u64) as u32);
        }
        ys[..n].copy_from_slice(&xs[..n]);
        cavmem_core::nn::tanh::tanh_in_place(&mut ys[..n]);
        for (x, y) in xs[..n].iter().zip(&ys[..n]) {
            let want = libm::tanhf(*x);
            if y.to_bits() != want.to_bits() && !(y.is_nan() && want.is_nan()) {
                return Some(x.to_bits());
            }
        }
        start += n as u64;
    }
    None
}

fn main() -> ExitCode {
    let threads = thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let total = 1_u64 << 32;
    let per_thread = total.div_ceil(threads);
    let started = std::time::Instant::now();
    let results: Result<Vec<Option<u32>>, _> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = t * per_thread..((t + 1) * per_thread).min(total);
                s.spawn(move || first_mismatch(range))
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let Ok(results) = results else {
        eprintln!("tanh_exhaustive: a checking thread panicked");
        return ExitCode::FAILURE;
    };
    match results.into_iter().flatten().min() {
        None => {
            println!(
                "tanh_in_place equals libm::tanhf for all {total} f32 bit patterns ({threads} threads, {:.1} s)",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Some(bits) => {
            let x = f32::from_bits(bits);
            let mut y = [x];
            cavmem_core::nn::tanh::tanh_in_place(&mut y);
            eprintln!(
                "tanh({x:e}) [bits {bits:#010x}] = {:e}, libm::tanhf gives {:e}",
                y[0],
                libm::tanhf(x)
            );
            ExitCode::FAILURE
        }
    }
}
