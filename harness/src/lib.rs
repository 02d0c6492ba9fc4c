//! # cavmem-harness
//!
//! The research harness around `cavmem-core`: a node simulator with SPEC CPU2006-like
//! workloads, scenario files, the paper's evaluation, reports and plots. The `cavmem`
//! binary is a thin command line over this library.

pub mod agents;
pub mod backend;
pub mod bench;
pub mod calibrate;
pub mod cli;
pub mod cputime;
pub mod eval;
pub mod footprint;
pub mod interrupt;
pub mod output;
pub mod params;
pub mod progress;
pub mod quantity;
pub mod randomized;
pub mod report;
pub mod scale;
pub mod scenario;
pub mod sim;
pub mod soak;
