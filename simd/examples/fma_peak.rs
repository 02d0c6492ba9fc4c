//! This CPU's fused multiply-add peak on one thread, at 8 lanes (AVX2 + FMA) and at 16
//! (AVX-512F): twelve independent accumulator chains of one vector each, so the loop is
//! bound by the FMA units' throughput, not by latency or memory. The floor in
//! docs/performance.md divides a learning step's multiply-adds by this figure.
//! `cargo run --release -p cavmem-simd --example fma_peak`

use std::time::Instant;

#[cfg(target_arch = "x86_64")]
mod peak {
    use core::arch::x86_64::*;

    const CHAINS: usize = 12;

    /// `n` rounds of one FMA per chain on 8 lanes; returns a sum so nothing is elided.
    #[target_feature(enable = "avx2,fma")]
    pub fn lanes8(n: u64) -> f32 {
        let (b, c) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); CHAINS];
        for _ in 0..n {
            for a in &mut acc {
                *a = _mm256_fmadd_ps(*a, b, c);
            }
        }
        let mut out = [0.0f32; 8];
        let s = acc.iter().fold(_mm256_setzero_ps(), |s, a| _mm256_add_ps(s, *a));
        // SAFETY: `out` holds 8 f32s; the store is unaligned.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
        out.iter().sum()
    }

    /// As [`lanes8`] on 16 lanes.
    #[target_feature(enable = "avx512f")]
    pub fn lanes16(n: u64) -> f32 {
        let (b, c) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); CHAINS];
        for _ in 0..n {
            for a in &mut acc {
                *a = _mm512_fmadd_ps(*a, b, c);
            }
        }
        _mm512_reduce_add_ps(acc.iter().fold(_mm512_setzero_ps(), |s, a| _mm512_add_ps(s, *a)))
    }

    pub const MUL_ADDS_PER_ROUND_8: f64 = (CHAINS * 8) as f64;
    pub const MUL_ADDS_PER_ROUND_16: f64 = (CHAINS * 16) as f64;
}

#[cfg(target_arch = "x86_64")]
fn main() {
    let rounds = 200_000_000u64;
    let time = |f: &dyn Fn() -> f32, per_round: f64| {
        let t = Instant::now();
        let sink = f();
        let s = t.elapsed().as_secs_f64();
        (rounds as f64 * per_round / s / 1e9, sink)
    };
    for label in ["first", "second"] {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA (checked above).
            let (g, sink) = time(&|| unsafe { peak::lanes8(rounds) }, peak::MUL_ADDS_PER_ROUND_8);
            println!("{label} run, 8 lanes (AVX2+FMA): {g:.1} G multiply-adds/s (sink {sink:.3})");
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked above).
            let (g, sink) = time(&|| unsafe { peak::lanes16(rounds) }, peak::MUL_ADDS_PER_ROUND_16);
            println!("{label} run, 16 lanes (AVX-512F): {g:.1} G multiply-adds/s (sink {sink:.3})");
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    println!("fma_peak measures x86-64 vector units only");
}
