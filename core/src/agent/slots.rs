//! Every policy side by side, one of them active, set up in place: what a server that is a
//! zero-initialized `static` needs ([`crate::wire::server::AgentServer`]), where building an
//! agent by value would put an agent-sized temporary on the stack.

use super::{
    Ddpg, Dqn, EqualSplit, EqualSplitParams, PolicyKind, PolicyParams, QLearning, SnapshotPolicy, ddpg,
};

/// The four policies' storage (replay capacity `R`, training chunks of `C` rows) and which
/// of them is set up.
#[derive(Debug)]
pub struct PolicySlots<const R: usize, const C: usize = { ddpg::CHUNK }> {
    ddpg: Ddpg<R, C>,
    dqn: Dqn<R, C>,
    ql: QLearning,
    split: EqualSplit,
    active: Option<PolicyKind>,
}

impl<const R: usize, const C: usize> Default for PolicySlots<R, C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const R: usize, const C: usize> PolicySlots<R, C> {
    /// No policy set up (`const`, for `static` placement).
    pub const fn new() -> Self {
        Self {
            ddpg: Ddpg::zeroed(),
            dqn: Dqn::zeroed(),
            ql: QLearning::zeroed(),
            split: EqualSplit::new(EqualSplitParams { vm_count: 0 }),
            active: None,
        }
    }

    /// Sets up a fresh policy of `kind` in place, as [`super::AnyPolicy::new`] would build
    /// it, and makes it the active one.
    pub fn configure(&mut self, kind: PolicyKind, params: &PolicyParams, seed: u64, vm_count: u32) {
        match kind {
            PolicyKind::Ddpg => self.ddpg.reset(params.ddpg, seed),
            PolicyKind::Dqn => self.dqn.reset(params.dqn, seed),
            PolicyKind::QLearning => self.ql.reset(params.ql, seed),
            PolicyKind::EqualSplit => {
                self.split = EqualSplit::new(EqualSplitParams {
                    vm_count: vm_count.max(1),
                });
            }
        }
        self.active = Some(kind);
    }

    /// Which policy is set up, if any.
    pub fn kind(&self) -> Option<PolicyKind> {
        self.active
    }

    /// The active policy, if one is set up.
    pub fn active(&mut self) -> Option<&mut dyn SnapshotPolicy> {
        Some(match self.active? {
            PolicyKind::Ddpg => &mut self.ddpg,
            PolicyKind::Dqn => &mut self.dqn,
            PolicyKind::QLearning => &mut self.ql,
            PolicyKind::EqualSplit => &mut self.split,
        })
    }
}
