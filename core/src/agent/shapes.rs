//! Shapes and helpers shared by the trainable agents and the frozen (inference-only)
//! policies: network widths, the discrete actions, and the Q-table.

use crate::mdp::Observation;
use crate::nn::Parameters;

/// Hidden units per layer (paper, section 4).
pub const HIDDEN: usize = 64;
/// Number of discrete bids (paper, section 4).
pub const ACTIONS: usize = 3;

/// The default discrete bids: release a quarter, hold, grow by a quarter. Not in the paper;
/// ±0.25 lets a VM go from 1 GiB to 3 GiB in five steps of a 100-step episode.
pub const DEFAULT_ACTION_BIDS: [f32; ACTIONS] = [-0.25, 0.0, 0.25];

/// Index of the action whose bid is nearest to `bid` (ties: the lower index).
pub fn nearest_action(bids: &[f32; ACTIONS], bid: f32) -> u8 {
    let mut best = 0u8;
    let mut best_gap = f32::INFINITY;
    for (k, b) in bids.iter().enumerate() {
        let gap = libm::fabsf(*b - bid);
        if gap < best_gap {
            best_gap = gap;
            best = k as u8;
        }
    }
    best
}

/// Index of the largest value (ties: the lower index); NaN values never win.
pub fn argmax(values: &[f32; ACTIONS]) -> u8 {
    let mut best = 0u8;
    let mut best_value = f32::NEG_INFINITY;
    for (k, v) in values.iter().enumerate() {
        if *v > best_value {
            best_value = *v;
            best = k as u8;
        }
    }
    best
}

/// Bins per state variable (paper, section 4).
pub const BINS: usize = 10;
/// Number of quantized states, `BINS⁵`.
pub const STATES: usize = BINS * BINS * BINS * BINS * BINS;
/// The bin of `x` in `[lo, hi]` split into [`BINS`] equal parts.
fn bin(x: f32, lo: f32, hi: f32) -> usize {
    let k = ((x - lo) / (hi - lo) * BINS as f32) as usize; // `as` saturates; NaN → 0
    k.min(BINS - 1)
}

/// The table row of an observation: its five bins as a base-10 number.
pub fn state_index(obs: &Observation) -> usize {
    let bins = [
        bin(obs.msr, -1.0, 1.0),
        bin(obs.mem_share, 0.0, 1.0),
        bin(obs.avg_msr, -1.0, 1.0),
        bin(obs.msr_tgt, -1.0, 1.0),
        bin(obs.total_mem_use, 0.0, 1.0),
    ];
    bins.iter().fold(0, |acc, b| acc * BINS + b)
}

/// The Q-table: one row of [`ACTIONS`] values per quantized state.
#[derive(Clone, Debug, PartialEq)]
pub struct QTable {
    rows: [[f32; ACTIONS]; STATES],
}

impl QTable {
    /// An all-zero table (`const`, for `static` placement).
    pub const fn zeroed() -> Self {
        Self {
            rows: [[0.0; ACTIONS]; STATES],
        }
    }

    /// The values of state `index` (zeros when out of range).
    pub fn row(&self, index: usize) -> [f32; ACTIONS] {
        self.rows.get(index).copied().unwrap_or([0.0; ACTIONS])
    }

    /// The value of `action` in state `index`, mutable.
    #[cfg(feature = "learn")]
    pub(crate) fn value_mut(&mut self, index: usize, action: usize) -> Option<&mut f32> {
        self.rows.get_mut(index).and_then(|row| row.get_mut(action))
    }
}

impl Parameters for QTable {
    fn tensors(&self) -> impl Iterator<Item = &[f32]> {
        core::iter::once(self.rows.as_flattened())
    }
    fn tensors_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        core::iter::once(self.rows.as_flattened_mut())
    }
}
