//! The CAVMem Markov decision process (paper, section 3.2, Table 1, Eq. 2–3): the five
//! state variables built from raw node measurements, the miss-rate target and the reward.
//!
//! Inputs are what a node measures: per VM its major-fault rate (pages/s) and allocation
//! (bytes), and the node's capacity (bytes). [`NodeMdp::observe`] checks every value,
//! rescales, and writes one [`Observation`] per VM; non-finite or absurd values are
//! rejected with a [`SensorFault`] that names the VM, so they never reach a network.
//!
//! ## Rescaling the miss rate
//! `msr = 2·min(rate / bound, 1) − 1` ∈ [-1, 1] (−1 means no misses). The bound is a
//! per-VM input ([`VmSample::msr_bound_pages_per_s`]) so the caller chooses its reading
//! ([`MsrBound`]): the physical maximum of one blocked thread, `1 / t_fault`
//! (docs/workloads.md), or that times the VM's vCPUs, which a VM running several
//! jobs can reach without being clipped.
//!
//! ## The target (Eq. 3) and its two readings ([`Formulation`])
//! `msrTgt_{t+1} = avgMsr_t · √totalMemUse_t`.
//! - [`Formulation::Paper`] applies it literally to the rescaled values. Because the
//!   rescaled average is negative whenever VMs miss less than half the bound, the factor
//!   `√use ≤ 1` pulls a negative average *toward zero*, i.e. the target asks for *more*
//!   misses, and at `avgMsr = 0` the target is 0 whatever the memory use.
//! - [`Formulation::Raw`] applies it to raw rates (pages/s) and rescales the result with
//!   each VM's bound. Unused memory then lowers the target below the average, which is the
//!   paper's stated intent ("encourages the VMs to use more memory"). This is the default.
//!
//! ## Reward (Eq. 2)
//! `r = −k·|msr_{t+1} − msrTgt_{t+1}| − λ·(msr_{t+1} + 1)/2`, with `k = 1` (paper) and an
//! optional miss penalty `λ` (0 in the paper) that rewards fewer misses in their own right.

/// Number of state variables per agent (Table 1).
pub const STATE_DIM: usize = 5;

/// How Eq. 3 is applied. See the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Formulation {
    /// Eq. 3 on rescaled values, as printed in the paper.
    Paper,
    /// Eq. 3 on raw rates in pages/s, rescaled afterwards with each VM's bound (default).
    #[default]
    Raw,
}

impl Formulation {
    /// Lowercase name used in scenario files and reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Paper => "paper",
            Self::Raw => "raw",
        }
    }
}

/// Which physical bound rescales a VM's miss rate.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MsrBound {
    /// `1 / t_fault`: the fault rate of one thread that is always blocked on faults.
    PerThread,
    /// `vcpus / t_fault`: one blocked thread per vCPU (default; not clipped by multi-job VMs).
    #[default]
    PerVcpu,
}

impl MsrBound {
    /// The bound in pages/s for a VM with `vcpus` virtual CPUs and a fault service time
    /// of `fault_service_time_s` seconds.
    pub fn pages_per_s(self, fault_service_time_s: f32, vcpus: u32) -> f32 {
        let per_thread = 1.0 / fault_service_time_s;
        match self {
            Self::PerThread => per_thread,
            Self::PerVcpu => per_thread * vcpus.max(1) as f32,
        }
    }

    /// Lowercase name used in scenario files and reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::PerThread => "per_thread",
            Self::PerVcpu => "per_vcpu",
        }
    }
}

/// Reward and target parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MdpParams {
    /// How Eq. 3 is applied.
    pub formulation: Formulation,
    /// `k` of Eq. 2 (paper: 1).
    pub deviation_weight: f32,
    /// `λ`, the weight of the miss penalty `(msr + 1)/2` ∈ [0, 1] (paper: 0).
    pub miss_weight: f32,
    /// A raw rate above `absurd_factor × bound` is a sensor fault, not a measurement.
    pub absurd_factor: f32,
}

impl Default for MdpParams {
    fn default() -> Self {
        Self {
            formulation: Formulation::Raw,
            deviation_weight: 1.0,
            miss_weight: 0.0,
            absurd_factor: 1000.0,
        }
    }
}

impl MdpParams {
    /// The paper's literal formulation: Eq. 3 on rescaled values, k = 1, no miss penalty.
    pub fn paper() -> Self {
        Self {
            formulation: Formulation::Paper,
            ..Self::default()
        }
    }
}

/// What the node measured for one VM over the last step.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct VmSample {
    /// Major faults per second over the step.
    pub miss_rate_pages_per_s: f32,
    /// Memory allocated to the VM, bytes.
    pub allocation_bytes: u64,
    /// The rate that rescales to +1 (see [`MsrBound`]), pages/s.
    pub msr_bound_pages_per_s: f32,
}

/// One agent's state (Table 1), every field finite and in its range.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Observation {
    /// The VM's rescaled miss rate, [-1, 1].
    pub msr: f32,
    /// The VM's fraction of node RAM, [0, 1].
    pub mem_share: f32,
    /// The node's mean rescaled miss rate, [-1, 1].
    pub avg_msr: f32,
    /// The node's miss-rate target for this step (Eq. 3), rescaled, [-1, 1].
    pub msr_tgt: f32,
    /// The fraction of node RAM allocated to VMs, [0, 1].
    pub total_mem_use: f32,
}

impl Observation {
    /// A random observation in the variables' ranges (`msr`, `avg_msr`, `msr_tgt` in
    /// [-1, 1), the shares in [0, 1)), drawn in field order: for benchmarks, tests and the
    /// self-test script.
    pub fn random(rng: &mut crate::rng::Rng) -> Self {
        Self {
            msr: rng.uniform_range(-1.0, 1.0),
            mem_share: rng.uniform_f32(),
            avg_msr: rng.uniform_range(-1.0, 1.0),
            msr_tgt: rng.uniform_range(-1.0, 1.0),
            total_mem_use: rng.uniform_f32(),
        }
    }

    /// The network input, in Table 1's order.
    pub const fn to_array(&self) -> [f32; STATE_DIM] {
        [
            self.msr,
            self.mem_share,
            self.avg_msr,
            self.msr_tgt,
            self.total_mem_use,
        ]
    }

    /// The observation from a network input, if every value is finite and in range.
    pub fn from_array(values: [f32; STATE_DIM]) -> Result<Self, InvalidObservation> {
        let [msr, mem_share, avg_msr, msr_tgt, total_mem_use] = values;
        let obs = Self {
            msr,
            mem_share,
            avg_msr,
            msr_tgt,
            total_mem_use,
        };
        obs.validate().map(|()| obs)
    }

    /// Checks that every field is finite and in its Table 1 range.
    ///
    /// # Errors
    /// [`InvalidObservation`] naming the first offending field.
    pub fn validate(&self) -> Result<(), InvalidObservation> {
        let fields = [
            (self.msr, -1.0, 1.0, ObservationField::Msr),
            (self.mem_share, 0.0, 1.0, ObservationField::MemShare),
            (self.avg_msr, -1.0, 1.0, ObservationField::AvgMsr),
            (self.msr_tgt, -1.0, 1.0, ObservationField::MsrTgt),
            (self.total_mem_use, 0.0, 1.0, ObservationField::TotalMemUse),
        ];
        for (value, lo, hi, field) in fields {
            if !(value >= lo && value <= hi) {
                return Err(InvalidObservation { field });
            }
        }
        Ok(())
    }

    /// The reward of Eq. 2 for arriving in this observation: `−k·|msr − msrTgt| − λ·(msr+1)/2`.
    ///
    /// # Examples
    /// ```
    /// use cavmem_core::mdp::{MdpParams, Observation};
    /// let obs = Observation { msr: -0.5, msr_tgt: -0.8, ..Observation::default() };
    /// assert!((obs.reward(&MdpParams::default()) + 0.3).abs() < 1e-6);
    /// ```
    pub fn reward(&self, params: &MdpParams) -> f32 {
        -params.deviation_weight * libm::fabsf(self.msr - self.msr_tgt)
            - params.miss_weight * (self.msr + 1.0) * 0.5
    }
}

/// A field of [`Observation`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ObservationField {
    /// `msr`.
    Msr,
    /// `mem_share`.
    MemShare,
    /// `avg_msr`.
    AvgMsr,
    /// `msr_tgt`.
    MsrTgt,
    /// `total_mem_use`.
    TotalMemUse,
}

/// An observation with a non-finite or out-of-range field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InvalidObservation {
    /// The first offending field.
    pub field: ObservationField,
}

impl core::fmt::Display for InvalidObservation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "observation field {:?} is not finite or out of its range",
            self.field
        )
    }
}

impl core::error::Error for InvalidObservation {}

/// Why a measurement was rejected.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SensorFault {
    /// The miss rate is NaN.
    MissRateNan,
    /// The miss rate is ±∞.
    MissRateInfinite,
    /// The miss rate is negative.
    MissRateNegative,
    /// The miss rate exceeds `absurd_factor × bound`.
    MissRateAbsurd,
    /// The rescaling bound is not a positive finite number.
    BadBound,
    /// The allocation exceeds the node's capacity.
    AllocationAboveCapacity,
}

/// Errors of [`NodeMdp::observe`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ObserveError {
    /// A VM's measurement is unusable.
    Sensor {
        /// Index of the VM in the input.
        vm: usize,
        /// What is wrong with it.
        fault: SensorFault,
    },
    /// The node reported zero capacity.
    ZeroCapacity,
    /// The allocations add up to more than the capacity.
    OverCommitted,
    /// No VMs, or fewer output slots than VMs.
    BadLength,
}

impl core::fmt::Display for ObserveError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Sensor { vm, fault } => write!(f, "VM {vm}: unusable measurement: {fault:?}"),
            Self::ZeroCapacity => f.write_str("node capacity is zero"),
            Self::OverCommitted => f.write_str("allocations add up to more than the node's capacity"),
            Self::BadLength => f.write_str("no VMs, or fewer observation slots than VMs"),
        }
    }
}

impl core::error::Error for ObserveError {}

/// Checks one raw miss rate against its bound.
///
/// # Errors
/// The [`SensorFault`] that makes it unusable.
pub fn check_miss_rate(
    rate_pages_per_s: f32,
    bound_pages_per_s: f32,
    absurd_factor: f32,
) -> Result<f32, SensorFault> {
    if !(bound_pages_per_s.is_finite() && bound_pages_per_s > 0.0) {
        return Err(SensorFault::BadBound);
    }
    if rate_pages_per_s.is_nan() {
        Err(SensorFault::MissRateNan)
    } else if rate_pages_per_s.is_infinite() {
        Err(SensorFault::MissRateInfinite)
    } else if rate_pages_per_s < 0.0 {
        Err(SensorFault::MissRateNegative)
    } else if rate_pages_per_s > absurd_factor * bound_pages_per_s {
        Err(SensorFault::MissRateAbsurd)
    } else {
        Ok(rate_pages_per_s)
    }
}

/// `2·min(rate / bound, 1) − 1`: a rate in pages/s rescaled to [-1, 1].
pub fn rescale(rate_pages_per_s: f32, bound_pages_per_s: f32) -> f32 {
    let x = 2.0 * (rate_pages_per_s / bound_pages_per_s).clamp(0.0, 1.0) - 1.0;
    if x.is_finite() { x } else { 1.0 }
}

/// Node-wide quantities of one step (before the next step's target).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NodeStep {
    /// Mean rescaled miss rate.
    pub avg_msr: f32,
    /// Mean raw miss rate, pages/s.
    pub avg_rate_pages_per_s: f32,
    /// Fraction of capacity allocated to VMs.
    pub total_mem_use: f32,
    /// The target in force for this step, raw pages/s (the `Raw` reading's value).
    pub target_pages_per_s: f32,
}

/// Builds observations step after step; remembers the previous step for Eq. 3's `t → t+1`.
///
/// # Examples
/// ```
/// use cavmem_core::mdp::{MdpParams, NodeMdp, Observation, VmSample};
/// use cavmem_core::units::GIB;
/// let mut mdp = NodeMdp::new(MdpParams::default());
/// let vms = [
///     VmSample { miss_rate_pages_per_s: 0.0, allocation_bytes: GIB, msr_bound_pages_per_s: 1e4 },
///     VmSample { miss_rate_pages_per_s: 5e3, allocation_bytes: GIB, msr_bound_pages_per_s: 1e4 },
/// ];
/// let mut obs = [Observation::default(); 2];
/// mdp.observe(6 * GIB, &vms, &mut obs).unwrap();
/// assert_eq!(obs[0].msr, -1.0);
/// assert_eq!(obs[1].msr, 0.0);
/// assert!((obs[0].total_mem_use - 1.0 / 3.0).abs() < 1e-6);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NodeMdp {
    params: MdpParams,
    previous: Option<NodeStep>,
}

impl NodeMdp {
    /// A process with no history.
    pub const fn new(params: MdpParams) -> Self {
        Self {
            params,
            previous: None,
        }
    }

    /// The parameters.
    pub const fn params(&self) -> &MdpParams {
        &self.params
    }

    /// Forgets the previous step (start of an episode).
    pub fn reset(&mut self) {
        self.previous = None;
    }

    /// Checks the measurements of one step and writes one observation per VM into `out`.
    /// The target uses the previous step's average and memory use (Eq. 3); on the first
    /// step it uses this step's.
    ///
    /// # Errors
    /// [`ObserveError`] naming the first problem; `out` and the history are then untouched.
    pub fn observe(
        &mut self,
        capacity_bytes: u64,
        vms: &[VmSample],
        out: &mut [Observation],
    ) -> Result<NodeStep, ObserveError> {
        if capacity_bytes == 0 {
            return Err(ObserveError::ZeroCapacity);
        }
        if vms.is_empty() || out.len() < vms.len() {
            return Err(ObserveError::BadLength);
        }
        let mut total_bytes: u64 = 0;
        let (mut sum_msr, mut sum_rate) = (0.0f32, 0.0f32);
        for (vm, s) in vms.iter().enumerate() {
            let rate = check_miss_rate(
                s.miss_rate_pages_per_s,
                s.msr_bound_pages_per_s,
                self.params.absurd_factor,
            )
            .map_err(|fault| ObserveError::Sensor { vm, fault })?;
            if s.allocation_bytes > capacity_bytes {
                return Err(ObserveError::Sensor {
                    vm,
                    fault: SensorFault::AllocationAboveCapacity,
                });
            }
            total_bytes = total_bytes.saturating_add(s.allocation_bytes);
            sum_msr += rescale(rate, s.msr_bound_pages_per_s);
            sum_rate += rate;
        }
        if total_bytes > capacity_bytes {
            return Err(ObserveError::OverCommitted);
        }
        let n = vms.len() as f32;
        let mut step = NodeStep {
            avg_msr: (sum_msr / n).clamp(-1.0, 1.0),
            avg_rate_pages_per_s: sum_rate / n,
            total_mem_use: fraction(total_bytes, capacity_bytes),
            target_pages_per_s: 0.0,
        };
        let basis = self.previous.unwrap_or(step);
        let use_sqrt = libm::sqrtf(basis.total_mem_use);
        step.target_pages_per_s = basis.avg_rate_pages_per_s * use_sqrt;
        let paper_target = (basis.avg_msr * use_sqrt).clamp(-1.0, 1.0);
        for (s, o) in vms.iter().zip(out.iter_mut()) {
            let msr_tgt = match self.params.formulation {
                Formulation::Paper => paper_target,
                Formulation::Raw => rescale(step.target_pages_per_s, s.msr_bound_pages_per_s),
            };
            *o = Observation {
                msr: rescale(s.miss_rate_pages_per_s, s.msr_bound_pages_per_s),
                mem_share: fraction(s.allocation_bytes, capacity_bytes),
                avg_msr: step.avg_msr,
                msr_tgt,
                total_mem_use: step.total_mem_use,
            };
        }
        self.previous = Some(step);
        Ok(step)
    }
}

/// `part / whole` as `f32` in [0, 1] (computed in `f64` so 64-bit byte counts keep their precision).
fn fraction(part: u64, whole: u64) -> f32 {
    if whole == 0 {
        0.0
    } else {
        ((part as f64 / whole as f64) as f32).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::GIB;

    fn sample(rate: f32, gib: u64) -> VmSample {
        VmSample {
            miss_rate_pages_per_s: rate,
            allocation_bytes: gib * GIB,
            msr_bound_pages_per_s: 1000.0,
        }
    }

    #[test]
    fn mdp_table1_values() {
        let mut mdp = NodeMdp::new(MdpParams::paper());
        let mut obs = [Observation::default(); 2];
        let step = mdp
            .observe(4 * GIB, &[sample(250.0, 1), sample(2000.0, 2)], &mut obs)
            .unwrap();
        assert_eq!(obs[0].msr, -0.5);
        assert_eq!(obs[1].msr, 1.0, "clipped at the bound");
        assert_eq!(obs[0].mem_share, 0.25);
        assert_eq!(obs[1].mem_share, 0.5);
        assert_eq!(step.avg_msr, 0.25);
        assert_eq!(obs[0].total_mem_use, 0.75);
        // First step: the target uses this step's values.
        assert!((obs[0].msr_tgt - 0.25 * 0.75f32.sqrt()).abs() < 1e-6);
        for o in &obs {
            o.validate().unwrap();
        }
    }

    #[test]
    fn mdp_target_uses_previous_step() {
        for formulation in [Formulation::Paper, Formulation::Raw] {
            let mut mdp = NodeMdp::new(MdpParams {
                formulation,
                ..MdpParams::default()
            });
            let mut obs = [Observation::default(); 2];
            mdp.observe(4 * GIB, &[sample(100.0, 1), sample(300.0, 1)], &mut obs)
                .unwrap();
            mdp.observe(4 * GIB, &[sample(0.0, 2), sample(0.0, 2)], &mut obs)
                .unwrap();
            let want = match formulation {
                // previous avg msr = ((−0.8) + (−0.4))/2 = −0.6, use 0.5
                Formulation::Paper => -0.6 * 0.5f32.sqrt(),
                // previous raw avg = 200 pages/s, target 200·√0.5 ≈ 141.4 → 2·0.1414 − 1
                Formulation::Raw => 2.0 * (200.0 * 0.5f32.sqrt() / 1000.0) - 1.0,
            };
            assert!(
                (obs[0].msr_tgt - want).abs() < 1e-5,
                "{formulation:?}: {}",
                obs[0].msr_tgt
            );
        }
    }

    /// The trap of the literal reading: with few misses the target asks for more.
    #[test]
    fn mdp_paper_target_rises_above_average_when_memory_is_free() {
        let mut paper = NodeMdp::new(MdpParams::paper());
        let mut raw = NodeMdp::new(MdpParams::default());
        let vms = [sample(100.0, 1), sample(100.0, 1)];
        let mut o_paper = [Observation::default(); 2];
        let mut o_raw = [Observation::default(); 2];
        paper.observe(6 * GIB, &vms, &mut o_paper).unwrap();
        raw.observe(6 * GIB, &vms, &mut o_raw).unwrap();
        assert!(
            o_paper[0].msr_tgt > o_paper[0].msr,
            "paper: target above the VM's own rate"
        );
        assert!(
            o_raw[0].msr_tgt < o_raw[0].msr,
            "raw: free memory lowers the target"
        );
    }

    #[test]
    fn mdp_rejects_bad_sensors_with_the_vm() {
        let mut mdp = NodeMdp::new(MdpParams::default());
        let mut obs = [Observation::default(); 2];
        let cases = [
            (f32::NAN, SensorFault::MissRateNan),
            (f32::INFINITY, SensorFault::MissRateInfinite),
            (f32::NEG_INFINITY, SensorFault::MissRateInfinite),
            (-1.0, SensorFault::MissRateNegative),
            (1e9, SensorFault::MissRateAbsurd),
        ];
        for (rate, fault) in cases {
            let err = mdp
                .observe(4 * GIB, &[sample(1.0, 1), sample(rate, 1)], &mut obs)
                .unwrap_err();
            assert_eq!(err, ObserveError::Sensor { vm: 1, fault });
        }
        let bad_bound = VmSample {
            msr_bound_pages_per_s: 0.0,
            ..sample(1.0, 1)
        };
        assert_eq!(
            mdp.observe(4 * GIB, &[bad_bound], &mut obs).unwrap_err(),
            ObserveError::Sensor {
                vm: 0,
                fault: SensorFault::BadBound
            }
        );
        assert_eq!(
            mdp.observe(2 * GIB, &[sample(1.0, 2), sample(1.0, 1)], &mut obs),
            Err(ObserveError::OverCommitted)
        );
        assert_eq!(
            mdp.observe(0, &[sample(1.0, 1)], &mut obs),
            Err(ObserveError::ZeroCapacity)
        );
        assert_eq!(mdp.observe(GIB, &[], &mut obs), Err(ObserveError::BadLength));
        assert_eq!(
            mdp.observe(8 * GIB, &[sample(1.0, 1); 3], &mut obs),
            Err(ObserveError::BadLength)
        );
        assert!(mdp.previous.is_none(), "rejected steps leave no history");
    }

    #[test]
    fn mdp_reward_eq2() {
        let obs = Observation {
            msr: 0.2,
            msr_tgt: -0.3,
            ..Observation::default()
        };
        assert!((obs.reward(&MdpParams::paper()) + 0.5).abs() < 1e-6);
        let with_penalty = MdpParams {
            miss_weight: 0.5,
            ..MdpParams::default()
        };
        assert!((obs.reward(&with_penalty) - (-0.5 - 0.5 * 0.6)).abs() < 1e-6);
    }

    #[test]
    fn mdp_observation_validation() {
        assert!(Observation::from_array([0.0, 0.5, 0.0, 0.0, 0.5]).is_ok());
        assert_eq!(
            Observation::from_array([0.0, 1.5, 0.0, 0.0, 0.5]),
            Err(InvalidObservation {
                field: ObservationField::MemShare
            })
        );
        assert_eq!(
            Observation::from_array([f32::NAN, 0.5, 0.0, 0.0, 0.5]),
            Err(InvalidObservation {
                field: ObservationField::Msr
            })
        );
    }

    #[test]
    fn mdp_bounds() {
        assert_eq!(MsrBound::PerThread.pages_per_s(1e-4, 4), 10_000.0);
        assert_eq!(MsrBound::PerVcpu.pages_per_s(1e-4, 4), 40_000.0);
        assert_eq!(MsrBound::PerVcpu.pages_per_s(1e-4, 0), 10_000.0);
    }
}
