//! Guarding one VM's miss-rate sensor between the node's measurements and the MDP.
//!
//! [`crate::mdp::NodeMdp::observe`] refuses a step in which any VM's measurement is unusable
//! (NaN, ±∞, negative, absurdly large: [`SensorFault`]), so one bad sensor would stop the
//! whole node. A [`SensorGuard`] per VM keeps the node running: a bad reading is replaced by
//! the VM's last good one for up to `max_hold_steps` steps ([`Reading::Held`]); after that,
//! or before any good reading, the VM's reading is [`Reading::Lost`]: the host should then
//! hold its allocation (bid 0) and not learn from the step. Readings that are valid numbers
//! but wrong (stuck, sudden zeros, spikes below the absurd bound) cannot be told from real
//! ones here; the agents and the Bid Analyzer must survive them (`cavmem soak`).

use crate::mdp::{SensorFault, check_miss_rate};

/// How much to trust a guarded reading.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Reading {
    /// This step's measurement.
    Fresh,
    /// The last good measurement, `stale_steps` steps old, stands in for a bad one.
    Held {
        /// Why this step's measurement was refused.
        fault: SensorFault,
        /// Consecutive bad steps so far (1 on the first).
        stale_steps: u32,
    },
    /// No usable measurement: hold the VM's allocation and skip learning.
    Lost {
        /// Why this step's measurement was refused.
        fault: SensorFault,
    },
}

/// A guarded miss rate for the MDP.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Guarded {
    /// The rate to observe, pages/s: fresh, held, or (when lost) the last good one, or 0
    /// when there never was one. Always finite, non-negative and within the absurd bound.
    pub rate_pages_per_s: f32,
    /// Where it comes from.
    pub reading: Reading,
}

/// One VM's sensor guard.
///
/// # Examples
/// ```
/// use cavmem_core::sensor::{Reading, SensorGuard};
/// let mut guard = SensorGuard::new(3);
/// assert_eq!(guard.check(120.0, 1e4, 1000.0).reading, Reading::Fresh);
/// let held = guard.check(f32::NAN, 1e4, 1000.0);
/// assert_eq!(held.rate_pages_per_s, 120.0);
/// assert!(matches!(held.reading, Reading::Held { stale_steps: 1, .. }));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SensorGuard {
    last_good_pages_per_s: Option<f32>,
    stale_steps: u32,
    max_hold_steps: u32,
}

impl SensorGuard {
    /// A guard that holds a good reading over at most `max_hold_steps` bad ones.
    pub const fn new(max_hold_steps: u32) -> Self {
        Self {
            last_good_pages_per_s: None,
            stale_steps: 0,
            max_hold_steps,
        }
    }

    /// Forgets the history (a new VM in this slot).
    pub fn reset(&mut self) {
        self.last_good_pages_per_s = None;
        self.stale_steps = 0;
    }

    /// Checks this step's raw rate (pages/s) against the VM's bound and the absurd factor
    /// (as [`check_miss_rate`]) and returns the rate to observe.
    pub fn check(&mut self, raw_pages_per_s: f32, bound_pages_per_s: f32, absurd_factor: f32) -> Guarded {
        match check_miss_rate(raw_pages_per_s, bound_pages_per_s, absurd_factor) {
            Ok(rate) => {
                self.last_good_pages_per_s = Some(rate);
                self.stale_steps = 0;
                Guarded {
                    rate_pages_per_s: rate,
                    reading: Reading::Fresh,
                }
            }
            Err(fault) => {
                self.stale_steps = self.stale_steps.saturating_add(1);
                let last = self.last_good_pages_per_s;
                let reading = match last {
                    Some(_) if self.stale_steps <= self.max_hold_steps => Reading::Held {
                        fault,
                        stale_steps: self.stale_steps,
                    },
                    _ => Reading::Lost { fault },
                };
                Guarded {
                    rate_pages_per_s: last.unwrap_or(0.0),
                    reading,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensor_guard_holds_then_loses_then_recovers() {
        let mut g = SensorGuard::new(2);
        assert_eq!(
            g.check(f32::INFINITY, 100.0, 10.0),
            Guarded {
                rate_pages_per_s: 0.0,
                reading: Reading::Lost {
                    fault: SensorFault::MissRateInfinite
                }
            },
            "no good reading yet"
        );
        assert_eq!(g.check(40.0, 100.0, 10.0).reading, Reading::Fresh);
        let faults = [
            (-1.0, SensorFault::MissRateNegative),
            (5000.0, SensorFault::MissRateAbsurd),
        ];
        for (k, (raw, fault)) in faults.into_iter().enumerate() {
            let got = g.check(raw, 100.0, 10.0);
            assert_eq!(got.rate_pages_per_s, 40.0);
            assert_eq!(
                got.reading,
                Reading::Held {
                    fault,
                    stale_steps: k as u32 + 1
                }
            );
        }
        let lost = g.check(f32::NAN, 100.0, 10.0);
        assert_eq!(lost.rate_pages_per_s, 40.0);
        assert_eq!(
            lost.reading,
            Reading::Lost {
                fault: SensorFault::MissRateNan
            }
        );
        assert_eq!(g.check(7.0, 100.0, 10.0).reading, Reading::Fresh);
        assert_eq!(g.check(f32::NAN, 100.0, 10.0).rate_pages_per_s, 7.0);
        g.reset();
        assert!(matches!(
            g.check(f32::NAN, 100.0, 10.0).reading,
            Reading::Lost { .. }
        ));
    }

    #[test]
    fn sensor_guard_output_is_always_observable() {
        let mut g = SensorGuard::new(5);
        let mut rng = crate::rng::Rng::seed_from_u64(3);
        for _ in 0..100_000 {
            let raw = f32::from_bits(rng.next_u32());
            let out = g.check(raw, 100.0, 1000.0);
            assert!(
                check_miss_rate(out.rate_pages_per_s, 100.0, 1000.0).is_ok(),
                "{raw} gave {out:?}"
            );
        }
    }
}
