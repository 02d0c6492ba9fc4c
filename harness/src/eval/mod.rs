//! The paper's evaluation: one run of a policy on a scenario ([`run`]), the grid of
//! scenarios × policies × formulations × seeds with resume ([`paper`]), split across
//! machines and merged ([`shard`]), and the metrics over the last episodes ([`metrics`]).

pub mod formulation;
pub mod metrics;
pub mod nan_null;
pub mod oracle;
pub mod paper;
pub mod run;
pub mod run_policy;
pub mod select;
pub mod shard;
