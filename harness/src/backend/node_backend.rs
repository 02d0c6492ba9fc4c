//! The node the run loop drives: the simulator ([`crate::sim::Node`]) or a real one
//! ([`super::cgroup_backend::CgroupBackend`], [`super::qmp::backend::QmpBackend`]). The run loop sees only [`NodeBackend`]: it sets the
//! allocations the Bid Analyzer decided, lets a step of time pass and reads what the node
//! measured.

use crate::sim::{Node, SimError, VmReading};

/// Why a node refused an operation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The allocations do not fit the node or do not match its VMs.
    #[error("rejected allocations: {0}")]
    BadAllocations(String),
    /// The real node failed (a cgroup file, a workload process); the text names what.
    #[error("{0}")]
    Backend(String),
    /// The run was interrupted (Ctrl-C or a termination signal).
    #[error("interrupted")]
    Interrupted,
}

impl From<SimError> for NodeError {
    fn from(e: SimError) -> Self {
        match e {
            SimError::BadAllocations(why) => Self::BadAllocations(why),
        }
    }
}

/// The checks every node makes of new allocations: one per VM, none for a VM not on the
/// node, the sum within the capacity.
///
/// # Errors
/// What is wrong, in words.
pub fn check_allocations(allocations: &[u64], present: &[bool], capacity_bytes: u64) -> Result<(), String> {
    if allocations.len() != present.len() {
        return Err(format!(
            "{} allocations for {} VMs",
            allocations.len(),
            present.len()
        ));
    }
    if let Some(j) = (0..allocations.len()).find(|j| !present[*j] && allocations[*j] > 0) {
        return Err(format!("VM {j} is not on the node but was given memory"));
    }
    let total: u128 = allocations.iter().map(|a| u128::from(*a)).sum();
    if total > u128::from(capacity_bytes) {
        return Err(format!("{total} B exceed the capacity of {capacity_bytes} B"));
    }
    Ok(())
}

/// A node hosting the VMs of a scenario, one slot per VM in the scenario's order.
pub trait NodeBackend {
    /// Memory the VMs share, bytes.
    fn capacity_bytes(&self) -> u64;
    /// Current allocations, bytes, one per VM (0 for a VM not on the node).
    fn allocations(&self) -> &[u64];
    /// Unallocated memory, bytes.
    fn free_bytes(&self) -> u64 {
        self.capacity_bytes()
            .saturating_sub(self.allocations().iter().sum())
    }
    /// Which VMs are on the node.
    fn present(&self) -> &[bool];
    /// VM `vm` joins (`true`, holding nothing until [`NodeBackend::set_allocations`]) or
    /// leaves (its memory returns to the pool).
    ///
    /// # Errors
    /// [`NodeError::Backend`] when a real node cannot start or stop the VM's workload.
    fn set_present(&mut self, vm: usize, present: bool) -> Result<(), NodeError>;
    /// Virtual CPUs per VM (they scale the miss-rate bound).
    fn vcpus(&self) -> Vec<u32>;
    /// Applies new allocations.
    ///
    /// # Errors
    /// [`NodeError::BadAllocations`] when they do not fit; [`NodeError::Backend`] when a
    /// real node cannot apply them.
    fn set_allocations(&mut self, allocations: &[u64]) -> Result<(), NodeError>;
    /// Lets one step of time pass and measures it.
    ///
    /// # Errors
    /// [`NodeError::Backend`] when a measurement fails; [`NodeError::Interrupted`].
    fn step(&mut self) -> Result<(), NodeError>;
    /// What the node measured over the last step (or, before the first, now).
    fn readings(&self) -> &[VmReading];
    /// Makes [`NodeBackend::readings`] describe the VMs as they are now, without letting
    /// time pass, after VMs arrived or left: an arriving VM's first observation is then
    /// made at the memory it was admitted with. The simulator evaluates every present VM's
    /// curve at its allocation (as at an episode's start); a real node keeps its last
    /// step's measurement (the default: nothing to do), so an arriving VM reads its
    /// allocation and no faults until its first step has run.
    fn refresh_readings(&mut self) {}
    /// VM `vm`'s true miss rate now, pages/s, if it held `allocation_bytes`: what only a
    /// simulator knows (the limit, [`crate::eval::oracle`], plans with it); `None` on a
    /// real node.
    fn true_miss_rate_pages_per_s(&self, vm: usize, allocation_bytes: u64) -> Option<f64> {
        let _ = (vm, allocation_bytes);
        None
    }
    /// [`NodeBackend::true_miss_rate_pages_per_s`] one step late: the rate VM `vm` would
    /// have had with `allocation_bytes` when the last step began (the late limit plans with
    /// it: one step late, as a policy acting on the last step's measurement is).
    fn last_step_true_miss_rate_pages_per_s(&self, vm: usize, allocation_bytes: u64) -> Option<f64> {
        let _ = (vm, allocation_bytes);
        None
    }
    /// The start of an episode. The simulator puts every VM back at the initial
    /// allocation (the paper's episodes); a real node keeps its allocations (an episode is
    /// then a reporting window).
    ///
    /// # Errors
    /// [`NodeError::Backend`] when a real node cannot apply the initial allocations.
    fn start_episode(&mut self) -> Result<(), NodeError>;
}

impl NodeBackend for Node {
    fn capacity_bytes(&self) -> u64 {
        Node::capacity_bytes(self)
    }
    fn allocations(&self) -> &[u64] {
        Node::allocations(self)
    }
    fn present(&self) -> &[bool] {
        Node::present(self)
    }
    fn set_present(&mut self, vm: usize, present: bool) -> Result<(), NodeError> {
        Node::set_present(self, vm, present);
        Ok(())
    }
    fn vcpus(&self) -> Vec<u32> {
        Node::vcpus(self)
    }
    fn set_allocations(&mut self, allocations: &[u64]) -> Result<(), NodeError> {
        Ok(Node::set_allocations(self, allocations)?)
    }
    fn step(&mut self) -> Result<(), NodeError> {
        Node::step(self);
        Ok(())
    }
    fn readings(&self) -> &[VmReading] {
        Node::readings(self)
    }
    fn refresh_readings(&mut self) {
        Node::refresh_readings(self);
    }
    fn true_miss_rate_pages_per_s(&self, vm: usize, allocation_bytes: u64) -> Option<f64> {
        Node::true_miss_rate_pages_per_s(self, vm, allocation_bytes)
    }
    fn last_step_true_miss_rate_pages_per_s(&self, vm: usize, allocation_bytes: u64) -> Option<f64> {
        Node::last_step_true_miss_rate_pages_per_s(self, vm, allocation_bytes)
    }
    fn start_episode(&mut self) -> Result<(), NodeError> {
        self.reset_allocations();
        Ok(())
    }
}
