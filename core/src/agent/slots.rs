//! Every policy side by side, one of them active, set up in place: what a server that is a
//! zero-initialized `static` needs ([`crate::wire::server::AgentServer`]), where building an
//! agent by value would put an agent-sized temporary on the stack.

use super::{
    Ddpg, Dqn, EqualSplit, EqualSplitParams, Feedback, FeedbackParams, Mom, MomParams, PolicyKind,
    PolicyParams, QLearning, SnapshotPolicy, Td3, ddpg,
};

/// Every policy's storage (replay capacity `R`, training chunks of `C` rows) and which
/// of them is set up.
#[derive(Debug)]
pub struct PolicySlots<const R: usize, const C: usize = { ddpg::CHUNK }> {
    /// DDPG's, or the residual policy's (the same learner).
    ddpg: Ddpg<R, C>,
    dqn: Dqn<R, C>,
    ql: QLearning,
    split: EqualSplit,
    feedback: Feedback,
    mom: Mom,
    td3: Td3<R, C>,
    /// 0: none; else the active policy's code + 1. A byte, not an `Option<PolicyKind>`, so
    /// that no policy set up is all zero bytes: a `static` server then sits in `.bss`, not
    /// in 4 MB of initialized data (an `Option`'s `None` need not be zero).
    active: u8,
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
            feedback: Feedback::new(FeedbackParams::ZERO),
            mom: Mom::new(MomParams::ZERO),
            td3: Td3::zeroed(),
            active: 0,
        }
    }

    /// Sets up a fresh policy of `kind` in place, as [`super::AnyPolicy::new`] would build
    /// it, and makes it the active one.
    pub fn configure(&mut self, kind: PolicyKind, params: &PolicyParams, seed: u64, vm_count: u32) {
        match kind {
            PolicyKind::Ddpg => self.ddpg.reset(params.ddpg, seed),
            PolicyKind::Residual => self.ddpg.reset_with(params.ddpg, Some(params.residual), seed),
            PolicyKind::Dqn => self.dqn.reset(params.dqn, seed),
            PolicyKind::QLearning => self.ql.reset(params.ql, seed),
            PolicyKind::EqualSplit => {
                self.split = EqualSplit::new(EqualSplitParams {
                    vm_count: vm_count.max(1),
                });
            }
            PolicyKind::Feedback => self.feedback = Feedback::new(params.feedback),
            PolicyKind::Mom => self.mom = Mom::new(params.mom),
            PolicyKind::Td3 => self.td3.reset(params.td3_learner(), seed),
        }
        self.active = kind.code() + 1;
    }

    /// Which policy is set up, if any.
    pub fn kind(&self) -> Option<PolicyKind> {
        PolicyKind::from_code(self.active.checked_sub(1)?)
    }

    /// The active policy, if one is set up.
    pub fn active(&mut self) -> Option<&mut dyn SnapshotPolicy> {
        Some(match self.kind()? {
            PolicyKind::Ddpg | PolicyKind::Residual => &mut self.ddpg,
            PolicyKind::Dqn => &mut self.dqn,
            PolicyKind::QLearning => &mut self.ql,
            PolicyKind::EqualSplit => &mut self.split,
            PolicyKind::Feedback => &mut self.feedback,
            PolicyKind::Mom => &mut self.mom,
            PolicyKind::Td3 => &mut self.td3,
        })
    }
}
