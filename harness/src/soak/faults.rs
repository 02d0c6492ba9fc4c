//! The faults a soak injects: bad sensor readings, VMs that vanish, a node that shrinks, and
//! memory faults in the agents' parameters.

use cavmem_core::rng::Rng;
use serde::{Deserialize, Serialize};

/// One kind of fault.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A miss rate of NaN.
    Nan,
    /// A miss rate of +∞ or −∞.
    Inf,
    /// A negative miss rate.
    Negative,
    /// The sensor repeats one value for several steps.
    Stuck,
    /// The sensor reads 0 for several steps.
    Zero,
    /// One reading 1000× too large.
    Spike,
    /// A VM leaves the node between its bid and the Bid Analyzer (a new VM takes its slot later).
    Vanish,
    /// The node's capacity drops to 20–90% for a while (the allocations must be reclaimed;
    /// VMs the node can no longer hold at the floor are evicted).
    Shrink,
    /// A learned parameter becomes NaN or ∞ (a memory fault), in a network policy that learns.
    Weights,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [Self; 9] = [
        Self::Nan,
        Self::Inf,
        Self::Negative,
        Self::Stuck,
        Self::Zero,
        Self::Spike,
        Self::Vanish,
        Self::Shrink,
        Self::Weights,
    ];

    /// Faults of one VM's sensor.
    pub fn is_sensor(self) -> bool {
        matches!(
            self,
            Self::Nan | Self::Inf | Self::Negative | Self::Stuck | Self::Zero | Self::Spike
        )
    }

    /// The name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Nan => "nan",
            Self::Inf => "inf",
            Self::Negative => "negative",
            Self::Stuck => "stuck",
            Self::Zero => "zero",
            Self::Spike => "spike",
            Self::Vanish => "vanish",
            Self::Shrink => "shrink",
            Self::Weights => "weights",
        }
    }
}

/// A sensor fault that lasts several steps.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Lasting {
    /// Repeat this raw value.
    Stuck(f64),
    /// Read 0.
    Zero,
}

/// One VM's sensor as the soak corrupts it.
#[derive(Clone, Debug, Default)]
pub struct FaultySensor {
    lasting: Option<(Lasting, u32)>,
    last_reported: f64,
}

impl FaultySensor {
    /// A sensor without history (a new VM).
    pub fn new() -> Self {
        Self::default()
    }

    /// What the node reports for a true rate of `true_rate` pages/s: the true rate, or with
    /// probability `p` a fault of one of the `kinds` (sensor kinds only). Returns the
    /// reported value and the fault that started this step, if any.
    pub fn report(
        &mut self,
        true_rate: f64,
        p: f64,
        kinds: &[FaultKind],
        rng: &mut Rng,
    ) -> (f64, Option<FaultKind>) {
        if let Some((fault, left)) = self.lasting.as_mut() {
            let value = match *fault {
                Lasting::Stuck(v) => v,
                Lasting::Zero => 0.0,
            };
            *left -= 1;
            if *left == 0 {
                self.lasting = None;
            }
            self.last_reported = value;
            return (value, None);
        }
        let mut started = None;
        let mut value = true_rate;
        if !kinds.is_empty() && f64::from(rng.uniform_f32()) < p {
            let kind = kinds[rng.below(kinds.len() as u32) as usize];
            started = Some(kind);
            value = match kind {
                FaultKind::Nan => f64::NAN,
                FaultKind::Inf if rng.below(2) == 0 => f64::INFINITY,
                FaultKind::Inf => f64::NEG_INFINITY,
                FaultKind::Negative => -1.0 - true_rate,
                FaultKind::Stuck => {
                    self.lasting = Some((Lasting::Stuck(self.last_reported), 3 + rng.below(28)));
                    self.last_reported
                }
                FaultKind::Zero => {
                    self.lasting = Some((Lasting::Zero, 1 + rng.below(10)));
                    0.0
                }
                FaultKind::Spike => true_rate * 1000.0 + 1000.0,
                FaultKind::Vanish | FaultKind::Shrink | FaultKind::Weights => true_rate,
            };
        }
        self.last_reported = value;
        (value, started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faulty_sensor_injects_each_kind_at_the_asked_rate() {
        let mut rng = Rng::seed_from_u64(1);
        let kinds: Vec<FaultKind> = FaultKind::ALL.into_iter().filter(|k| k.is_sensor()).collect();
        let mut sensor = FaultySensor::new();
        let mut started = std::collections::BTreeMap::new();
        let mut non_finite = 0;
        let steps = 200_000;
        for _ in 0..steps {
            let (v, kind) = sensor.report(100.0, 0.05, &kinds, &mut rng);
            non_finite += usize::from(!v.is_finite());
            if let Some(kind) = kind {
                *started.entry(kind).or_insert(0u32) += 1;
            }
        }
        assert_eq!(
            started.len(),
            kinds.len(),
            "every sensor kind occurs: {started:?}"
        );
        let total: u32 = started.values().sum();
        // Lasting faults suspend new ones, so the rate is somewhat below 5%.
        assert!(
            (0.02..0.05).contains(&(f64::from(total) / f64::from(steps))),
            "{total}"
        );
        assert!(non_finite > 0);
        let mut clean = FaultySensor::new();
        assert_eq!(clean.report(42.0, 0.0, &kinds, &mut rng), (42.0, None));
    }
}
