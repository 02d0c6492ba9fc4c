//! Where the agents run: in this process ([`SimAgent`] for the core's policies) or in one
//! `cavmem-fw` process per VM ([`firmware`]). The run loop sees only [`SimAgent`].
//! [`node`] is the node the run loop drives (the simulator or a real one); [`cgroup`]
//! holds Linux memory cgroups standing in for VMs on a real node, [`standin`] the real
//! programs that stand in for the paper's benchmarks there.

pub mod cgroup;
pub mod firmware;
pub mod live;
pub mod node;
pub mod qmp;
pub mod standin;

use cavmem_core::agent::Policy;
use cavmem_core::snapshot::SnapshotError;

use crate::eval::run::HarnessPolicy;

/// An agent the run loop can drive: the decision loop plus snapshots.
pub trait SimAgent: Policy + Send {
    /// Writes the policy's snapshot into `out`; returns its length.
    ///
    /// # Errors
    /// [`SnapshotError::BufferTooSmall`], or another error from a remote agent.
    fn save_snapshot(&mut self, out: &mut [u8]) -> Result<usize, SnapshotError>;
    /// Loads a snapshot.
    ///
    /// # Errors
    /// [`SnapshotError`] naming the failed check.
    fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), SnapshotError>;
}

impl SimAgent for HarnessPolicy {
    fn save_snapshot(&mut self, out: &mut [u8]) -> Result<usize, SnapshotError> {
        HarnessPolicy::save_snapshot(self, out)
    }
    fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        HarnessPolicy::load_snapshot(self, bytes)
    }
}

/// Where agents run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentsAt {
    /// In this process (default).
    Inprocess,
    /// One `cavmem-fw` process per VM, over the wire protocol.
    Firmware,
}
