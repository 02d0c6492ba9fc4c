#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
//! # cavmem-core
//!
//! The agent side of CAVMem (Continuous-Action Algorithm for Virtualized Memory
//! management): one small learning agent per VM bids for memory, and a Bid Analyzer
//! turns all bids into feasible allocations. This crate is `#![no_std]`, never
//! allocates, and sizes everything at compile time so a hypervisor, a kernel module or
//! a BMC firmware can link it.
//!
//! Layers, bottom up:
//!
//! | module | what it holds |
//! |---|---|
//! | [`units`] | unit constants: memory in integer bytes, rates in pages per second |
//! | [`rng`] | seeded xoshiro256++ random numbers: uniform and normal draws |
//! | [`rows`] | row prefixes and elements whose bounds the caller has checked (`debug_assert!`ed) |
//! | [`nn`] | dense layers and the 2×64 ReLU multi-layer perceptron, forward and backward |
//! | [`optim`] | Adam and Polyak (soft) target updates |
//! | [`noise`] | Ornstein–Uhlenbeck exploration noise and the annealed ε schedule |
//! | [`replay`] | fixed-capacity replay ring with uniform minibatch sampling |
//! | [`mdp`] | the five state variables, the target (Eq. 3) and the reward (Eq. 2) |
//! | [`sensor`] | a per-VM guard that holds the last good miss rate over bad readings |
//! | [`bid`] | the Bid Analyzer: bids to feasible integer allocations; reclaim on a shrinking node |
//! | [`agent`] | DDPG, DQN, Q-learning and the equal split behind one trait; frozen policies |
//! | [`snapshot`] | versioned, CRC-checked policy snapshots |
//! | [`wire`] | the framed request/reply protocol and an agent server for it (docs/protocol.md) |
//! | `selftest` | (with `learn`) a fixed script that trains a DDPG agent and digests its bits, run on every target |
//!
//! Features: `learn` (default) adds training — replay, optimizers, exploration and the
//! trainable agents; without it the crate has the networks' inference, the MDP, the Bid
//! Analyzer, snapshots and the frozen policies. `defmt` derives `defmt::Format` for the
//! public types. `std` (hosts with an operating system) lets Adam's square root be the
//! compiler's intrinsic, which vectorizes — the same bits, since IEEE 754 rounds √
//! correctly. `fma` fuses the network kernels' multiply-adds (one rounding; the CPU's
//! instruction where it has one, exact software elsewhere; [`nn::kernels`]).
//! `fault-injection` adds `Policy::inject_parameter_fault` for drills.
//!
//! All arithmetic is `f32` in a fixed summation order with transcendental functions
//! from `libm`, so the same seed gives the same bits on every target with the same `fma`
//! option.

#[cfg(any(test, feature = "std"))]
extern crate std;

/// The kernel paths (the core's generic 8-lane kernels, AVX-512), chosen at run time:
/// [`simd::select`] picks one (every path gives the same bits).
pub use cavmem_simd as simd;

pub mod agent;
pub mod bid;
pub mod mdp;
pub mod nn;
#[cfg(feature = "learn")]
pub mod noise;
#[cfg(feature = "learn")]
pub mod optim;
#[cfg(feature = "learn")]
pub mod replay;
pub mod rng;
pub mod rows;
#[cfg(feature = "learn")]
pub mod selftest;
pub mod sensor;
pub mod snapshot;
pub mod units;
pub mod wire;
