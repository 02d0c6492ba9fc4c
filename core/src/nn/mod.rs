//! Neural networks with compile-time shapes: dense layers, activations, and the
//! two-hidden-layer perceptron used by the DDPG actor and critic and the DQN Q-network.
//!
//! Shapes are const generics, so a mismatched layer does not compile. Weights are stored
//! input-major (`w[i][o]`) in flat, contiguous arrays: the forward pass is a sequence of
//! `y += xᵢ·w[i]` row updates that vectorize across outputs without reordering any sum,
//! which keeps results bit-identical on every target (see [`kernels`]).

pub mod act;
pub mod dense;
pub mod int8;
pub mod kernels;
pub mod mlp;
pub mod params;
pub mod tanh;

pub use act::{Head, Identity, Tanh};
pub use dense::Dense;
pub use mlp::{Mlp, MlpTape};
pub use params::Parameters;
