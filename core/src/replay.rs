//! Experience replay: a fixed-capacity ring of transitions with uniform minibatch sampling.
//!
//! Capacity is a const generic; when full, the oldest transition is overwritten
//! (heapless's [`HistoryBuf`]). Sampling draws indices uniformly with replacement and
//! writes the transitions into storage the caller provides, so nothing allocates.

use heapless::HistoryBuf;

use crate::rng::Rng;

/// One step of experience `(s, a, r, s', done)` with `S` state variables and action type `A`
/// (a bid `f32` for DDPG, an action index for DQN).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Transition<const S: usize, A> {
    /// State before the action.
    pub state: [f32; S],
    /// The action taken.
    pub action: A,
    /// Reward received for it.
    pub reward: f32,
    /// State after the action.
    pub next_state: [f32; S],
    /// Whether `next_state` ends the episode (no bootstrapping from it).
    pub done: bool,
}

/// Sampling from an empty replay buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EmptyReplay;

impl core::fmt::Display for EmptyReplay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("replay buffer is empty")
    }
}

impl core::error::Error for EmptyReplay {}

/// A ring of at most `N` items of type `T`.
///
/// # Examples
/// ```
/// use cavmem_core::replay::Replay;
/// use cavmem_core::rng::Rng;
/// let mut replay = Replay::<u32, 4>::new();
/// for k in 0..6 {
///     replay.push(k);
/// }
/// assert_eq!(replay.len(), 4); // 0 and 1 were overwritten
/// let mut batch = [0u32; 3];
/// replay.sample_into(&mut Rng::seed_from_u64(1), &mut batch).unwrap();
/// assert!(batch.iter().all(|k| (2..6).contains(k)));
/// ```
#[derive(Clone, Debug)]
pub struct Replay<T: Copy, const N: usize> {
    ring: HistoryBuf<T, N>,
}

impl<T: Copy, const N: usize> Default for Replay<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy, const N: usize> Replay<T, N> {
    /// An empty buffer. `N` must be at least 1 (checked at compile time).
    pub const fn new() -> Self {
        const {
            assert!(
                N >= 1 && N <= u32::MAX as usize,
                "replay capacity must be in 1..=u32::MAX"
            )
        };
        Self {
            ring: HistoryBuf::new(),
        }
    }

    /// Adds an item, overwriting the oldest when full.
    pub fn push(&mut self, item: T) {
        self.ring.write(item);
    }

    /// Number of items held (at most `N`).
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether nothing has been pushed since creation or [`Replay::clear`].
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// The compile-time capacity `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Forgets every item.
    pub fn clear(&mut self) {
        self.ring.clear();
    }

    /// The item at `index` in storage order (not age order), if present.
    pub fn get(&self, index: usize) -> Option<&T> {
        self.ring.as_slice().get(index)
    }

    /// Fills `out` with storage indices drawn uniformly with replacement, for use with
    /// [`Replay::get`]. A minibatch can then be read several times without copying it.
    ///
    /// # Errors
    /// [`EmptyReplay`] when the buffer holds nothing; `out` is then untouched.
    pub fn sample_indices(&self, rng: &mut Rng, out: &mut [u32]) -> Result<(), EmptyReplay> {
        let count = u32::try_from(self.len()).map_err(|_| EmptyReplay)?;
        if count == 0 {
            return Err(EmptyReplay);
        }
        for slot in out.iter_mut() {
            *slot = rng.below(count);
        }
        Ok(())
    }

    /// Fills `out` with items drawn uniformly with replacement.
    ///
    /// # Errors
    /// [`EmptyReplay`] when the buffer holds nothing; `out` is then untouched.
    pub fn sample_into(&self, rng: &mut Rng, out: &mut [T]) -> Result<(), EmptyReplay> {
        if self.is_empty() {
            return Err(EmptyReplay);
        }
        let count = self.len() as u32;
        for slot in out.iter_mut() {
            if let Some(item) = self.get(rng.below(count) as usize) {
                *slot = *item;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::{prop_assert, prop_assert_eq, proptest};

    #[test]
    fn replay_empty_sampling_is_an_error() {
        let replay = Replay::<u8, 8>::new();
        let mut out = [9u8; 2];
        assert_eq!(
            replay.sample_into(&mut Rng::seed_from_u64(0), &mut out),
            Err(EmptyReplay)
        );
        assert_eq!(out, [9, 9]);
    }

    #[test]
    fn replay_sampling_is_uniform() {
        let mut replay = Replay::<u16, 16>::new();
        for k in 0..16 {
            replay.push(k);
        }
        let mut counts = [0u32; 16];
        let mut rng = Rng::seed_from_u64(4);
        let mut batch = [0u16; 64];
        for _ in 0..2_500 {
            replay.sample_into(&mut rng, &mut batch).unwrap();
            for b in batch {
                counts[usize::from(b)] += 1;
            }
        }
        // 160,000 draws over 16 slots: 10,000 expected each, σ ≈ 97.
        assert!(counts.iter().all(|c| (9_500..10_500).contains(c)), "{counts:?}");
    }

    proptest! {
        #[test]
        fn replay_never_exceeds_capacity_and_keeps_newest(pushes in 0usize..200, seed: u64) {
            let mut replay = Replay::<usize, 32>::new();
            for k in 0..pushes {
                replay.push(k);
            }
            prop_assert_eq!(replay.len(), pushes.min(32));
            let mut batch = [usize::MAX; 16];
            let res = replay.sample_into(&mut Rng::seed_from_u64(seed), &mut batch);
            if pushes == 0 {
                prop_assert!(res.is_err());
            } else {
                let oldest = pushes.saturating_sub(32);
                prop_assert!(batch.iter().all(|k| (oldest..pushes).contains(k)));
            }
        }
    }
}
