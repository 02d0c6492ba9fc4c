//! The agents the run loop drives, one per VM: the core's policies in this process
//! ([`HarnessPolicy`], made by [`make_policy`]) or one `cavmem-fw` process each
//! ([`firmware`]); the run loop ([`crate::eval::run`]) sees only [`SimAgent`]. The nodes
//! they act on ([`crate::sim`], [`crate::backend`]) know nothing of agents.

pub mod firmware;
pub mod int8;

use cavmem_core::agent::ddpg::BATCH;
use cavmem_core::agent::{AnyPolicy, Policy, PolicyKind, SnapshotPolicy};
use cavmem_core::snapshot::SnapshotError;

pub use crate::params::REPLAY_CAPACITY;

/// The policy type the harness runs: its deep learners train on whole minibatches at once
/// (`C = BATCH`; the firmware trains in chunks of 8 rows, with the same bits).
pub type HarnessPolicy = AnyPolicy<REPLAY_CAPACITY, BATCH>;

pub use crate::params::Hyperparams;

/// The paper's values ([`crate::params::AgentParams::default`]), with the ε schedule laid
/// over `total_steps` agent steps as the paper lays it over 1000 episodes: ε = 1 for the
/// first 20% (200 of 1000 episodes), annealed over the next 30%.
pub fn hyperparams_for_run(total_steps: u64) -> Hyperparams {
    crate::params::AgentParams::default().hyperparams(total_steps)
}

/// A seed for one purpose of one run, so streams do not overlap (SplitMix64 of the parts).
pub fn derive_seed(seed: u64, purpose: u64) -> u64 {
    let mut z = seed ^ purpose.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A boxed policy of `kind` for VM `vm` of a node with `vm_count` VMs.
pub fn make_policy(
    kind: PolicyKind,
    hyper: &Hyperparams,
    seed: u64,
    vm: usize,
    vm_count: usize,
) -> Box<HarnessPolicy> {
    let agent_seed = derive_seed(seed, 1000 + vm as u64);
    Box::new(AnyPolicy::new(kind, &hyper.policy, agent_seed, vm_count as u32))
}

/// An agent the run loop can drive: the decision loop plus snapshots. The core's
/// [`SnapshotPolicy`] with a `&mut self` save, because an agent in another process
/// ([`firmware::FirmwareAgent`]) saves by talking to it; every `SnapshotPolicy` is one.
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

impl<T: SnapshotPolicy + Send> SimAgent for T {
    fn save_snapshot(&mut self, out: &mut [u8]) -> Result<usize, SnapshotError> {
        SnapshotPolicy::save_snapshot(self, out)
    }
    fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        SnapshotPolicy::load_snapshot(self, bytes)
    }
}

/// Where agents run.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AgentsAt {
    /// In this process (default).
    #[default]
    Inprocess,
    /// One `cavmem-fw` process per VM, over the wire protocol.
    Firmware,
}
