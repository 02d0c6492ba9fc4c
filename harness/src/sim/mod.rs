//! The node simulator: VMs running SPEC-like workloads under memory limits.
//!
//! [`workload`] holds the benchmark tables and miss-rate curves, [`vm`] a VM running
//! several copies of a benchmark, [`simulated_node`] the node that allocates memory to VMs and
//! measures their miss rates. docs/simulator.md explains the model and its sources.

pub mod calibration;
pub mod node_calibration;
pub mod simulated_node;
pub mod vm;
pub mod workload;

pub use simulated_node::{Node, SimError, VmReading};
