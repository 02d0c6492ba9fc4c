//! CAVMem's network kernels for wider vector units, chosen at run time.
//!
//! `cavmem-core` keeps its own portable kernels (8-lane vectors, `nn::kernels`: the
//! workspace builds them for x86-64-v3) and forbids `unsafe`; the wider kernels live here
//! because reaching an instruction set the build does not assume takes `unsafe`: a call
//! into a `#[target_feature]` function after the CPU has been asked. Each kernel here sums
//! every output in the same order as the core's, so the path changes the speed, never a
//! bit (the core's tests and the self-test digests hold on every path).
//!
//! The path is decided once per process ([`active`]): the widest the CPU has, unless
//! [`select`] (or, with the `std` feature, `select_from_env` and the `CAVMEM_KERNELS`
//! environment variable) chose one. A kernel is reached through a token ([`avx512`]) that
//! exists only when its path is active.
//!
//! ```
//! use cavmem_simd::{KernelPath, active, select};
//! select(KernelPath::Generic).unwrap();
//! assert_eq!(active(), KernelPath::Generic);
//! assert!(cavmem_simd::avx512().is_none());
//! ```
#![no_std]
#![cfg_attr(not(target_arch = "x86_64"), forbid(unsafe_code))]

#[cfg(any(feature = "std", test))]
extern crate std;

mod path;
#[cfg(feature = "std")]
pub use path::{ENV_VAR, EnvError, select_from_env};
pub use path::{KernelPath, Unavailable, active, available, detect, select};

#[cfg(target_arch = "x86_64")]
mod avx512;

/// Proof that the AVX-512 kernels may run here: made only by [`avx512`], when that path is
/// active (the CPU and the OS support AVX-512F and the path was not deselected).
#[derive(Clone, Copy, Debug)]
pub struct Avx512(Token);

#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug)]
struct Token;

/// No AVX-512 off x86-64: the token cannot be made.
#[cfg(not(target_arch = "x86_64"))]
#[derive(Clone, Copy, Debug)]
enum Token {}

/// The AVX-512 kernels, if that is this process's path ([`active`]).
#[inline]
pub fn avx512() -> Option<Avx512> {
    #[cfg(target_arch = "x86_64")]
    if active() == KernelPath::Avx512 {
        return Some(Avx512(Token));
    }
    None
}

/// Vector lanes of the AVX-512 kernels: an output count must be a multiple of this.
pub const AVX512_LANES: usize = 16;

/// Whether a hidden layer's stored outputs pass through ReLU (`z < 0 → 0`, NaN kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// The sums as they are.
    Linear,
    /// ReLU: `if z < 0 { 0 } else { z }` (so −0 and NaN pass unchanged).
    Relu,
}

#[cfg(not(target_arch = "x86_64"))]
impl Avx512 {
    /// See the x86-64 build's documentation; there is no token to call it with here.
    pub fn forward_rows<const I: usize, const O: usize, const FUSED: bool>(
        self,
        _w: &[[f32; O]; I],
        _b: &[f32; O],
        _x: &[[f32; I]],
        _y: &mut [[f32; O]],
        _store: Store,
    ) -> bool {
        match self.0 {}
    }

    /// See the x86-64 build's documentation; there is no token to call it with here.
    pub fn accumulate_grads<const I: usize, const O: usize, const FUSED: bool>(
        self,
        _g: &mut [[f32; O]; I],
        _x_rows: &[[f32; I]],
        _dz_rows: &[[f32; O]],
    ) -> bool {
        match self.0 {}
    }
}
