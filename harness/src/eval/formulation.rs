//! The two formulations the evaluation compares.
//!
//! - `paper`: the literal reading — Eq. 3 on rescaled values ([`Formulation::Paper`]), the
//!   miss rate rescaled against one blocked thread's bound `1 / t_fault`
//!   ([`MsrBound::PerThread`], so a VM of six copies is clipped at +1), no miss penalty.
//! - `raw` (default): Eq. 3 on raw rates ([`Formulation::Raw`]), a bound that scales with the
//!   VM's vCPUs ([`MsrBound::PerVcpu`]), and a miss penalty λ = 0.5 so that a node where
//!   every VM thrashes equally is not an optimum. See docs/formulation.md.

use std::fmt;

use cavmem_core::mdp::{Formulation, MdpParams, MsrBound};

use crate::params::RewardSection;

/// A named formulation of the MDP.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FormulationName {
    /// The paper's literal formulation.
    Paper,
    /// Eq. 3 on raw rates, per-vCPU bound, miss penalty (default).
    Raw,
}

impl FormulationName {
    /// Both, default first.
    pub const ALL: [Self; 2] = [Self::Raw, Self::Paper];

    /// The name in files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Paper => "paper",
            Self::Raw => "raw",
        }
    }

    /// The MDP parameters with the default reward weights.
    pub fn mdp_params(self) -> MdpParams {
        self.mdp_params_with(&RewardSection::default())
    }

    /// The MDP parameters with the reward weights of `reward` (its section for this formulation).
    pub fn mdp_params_with(self, reward: &RewardSection) -> MdpParams {
        match self {
            Self::Paper => reward.paper.apply(MdpParams::paper()),
            Self::Raw => reward.raw.apply(MdpParams {
                formulation: Formulation::Raw,
                ..MdpParams::default()
            }),
        }
    }

    /// The miss-rate bound.
    pub fn msr_bound(self) -> MsrBound {
        match self {
            Self::Paper => MsrBound::PerThread,
            Self::Raw => MsrBound::PerVcpu,
        }
    }
}

impl fmt::Display for FormulationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub use crate::params::RAW_MISS_WEIGHT;

#[cfg(test)]
mod tests;
