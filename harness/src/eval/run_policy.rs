//! What decides a run's allocations: one of the core's policies on every VM, or the
//! simulator-only limit ([`super::oracle`]). [`RunPolicy`] is the registry of the names
//! `--policy` takes and reports print.

use cavmem_core::agent::PolicyKind;

use super::oracle::{Limit, Sight};

/// The decider of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RunPolicy {
    /// One agent of this policy per VM (in process, or in `cavmem-fw`).
    Agents(PolicyKind),
    /// A one-step limit with true curves (simulator only, no agents).
    Oracle(Limit),
}

impl RunPolicy {
    /// Every decider: the core's policies in [`PolicyKind::ALL`]'s order, then the limits.
    pub fn all() -> impl Iterator<Item = Self> {
        PolicyKind::ALL
            .into_iter()
            .map(Self::Agents)
            .chain(Limit::ALL.map(Self::Oracle))
    }

    /// The name on the command line and in reports.
    ///
    /// ```
    /// use cavmem_harness::eval::run_policy::RunPolicy;
    /// let names: Vec<&str> = RunPolicy::all().map(RunPolicy::name).collect();
    /// assert_eq!(names, ["ddpg", "dqn", "ql", "static", "feedback", "mom", "residual", "td3", "oracle-minmax", "oracle-minsum",
    ///                    "oracle-minmax-late", "oracle-minsum-late"]);
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Self::Agents(kind) => kind.name(),
            Self::Oracle(limit) => limit.name(),
        }
    }

    /// Whether `paper` and `suite` run it without `--policy`: every decider but the late
    /// limits ([`super::oracle::Sight::LastStep`]) and TD3 (measured on its own,
    /// docs/agents.md), which are asked for by name.
    pub const fn in_default_grid(self) -> bool {
        !matches!(
            self,
            Self::Oracle(Limit {
                sight: Sight::LastStep,
                ..
            }) | Self::Agents(PolicyKind::Td3)
        )
    }

    /// The decider named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::all().find(|p| p.name() == name)
    }

    /// The core policy of its agents; `None` for the limit.
    pub const fn kind(self) -> Option<PolicyKind> {
        match self {
            Self::Agents(kind) => Some(kind),
            Self::Oracle(_) => None,
        }
    }

    /// The core policy of its agents, or an error naming what needs one (`what`: e.g.
    /// "--load", "cavmem train").
    ///
    /// # Errors
    /// A message for the limit, which has no agents.
    pub fn agents_for(self, what: &str) -> Result<PolicyKind, String> {
        self.kind().ok_or_else(|| {
            format!(
                "{what} needs agents; {} is the simulator's one-step limit (no agents, no snapshots, simulator only)",
                self.name()
            )
        })
    }
}

impl From<PolicyKind> for RunPolicy {
    fn from(kind: PolicyKind) -> Self {
        Self::Agents(kind)
    }
}
