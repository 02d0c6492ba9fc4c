//! A runtime shield for the `residual` policy: it compares, on the VM's own rewards, the
//! learned bids with its controller's and hands the VM to whichever has been doing better.
//!
//! The steps run in periods of `period_steps`. The first `probe_steps` of each period are a
//! probe of the source that is not in charge (the controller while the learned policy is,
//! the learned policy while the controller is); the rest belong to the source in charge.
//! At the end of a period the mean reward per step of the probe is compared with the
//! source in charge's: when the probe's is higher by more than `margin` for `patience`
//! periods in a row, the two swap. Periods count the steps whose reward is recorded: after
//! a step whose reward is not (an agent acting without learning) nothing is probed and the
//! source in charge bids. Every swap is counted ([`ShieldStats`]), never silent;
//! the margin and the patience are the hysteresis that keeps it from flapping.

/// Parameters of the shield. Plain numbers and a flag (no `Option`), so an agent that
/// holds them is all zero bytes when off, and a zero-initialized `static` stays in `.bss`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ShieldParams {
    /// Whether the shield runs.
    pub enabled: bool,
    /// Steps per period, at least `probe_steps + 1`.
    pub period_steps: u32,
    /// Steps of each period given to the source not in charge, at least 1.
    pub probe_steps: u32,
    /// Periods in a row the probe must win before the sources swap, at least 1.
    pub patience: u32,
    /// How much higher the probe's mean reward per step must be to count as a win, ≥ 0
    /// (reward units; rewards lie in [−2, 0]).
    pub margin: f32,
}

impl ShieldParams {
    /// Default: off; periods of 100 steps (one simulated episode), 20 of them probing,
    /// swap after 3 periods in a row, no margin.
    pub const DEFAULT: Self = Self {
        enabled: false,
        period_steps: 100,
        probe_steps: 20,
        patience: 3,
        margin: 0.0,
    };

    /// Off, every number 0 (the all-zero placeholder of an agent without a shield).
    pub const OFF: Self = Self {
        enabled: false,
        period_steps: 0,
        probe_steps: 0,
        patience: 0,
        margin: 0.0,
    };

    /// Whether the shield is on and its numbers can run.
    pub fn is_active(&self) -> bool {
        self.enabled && self.is_valid()
    }

    /// Whether the numbers describe a shield that can run (on or not).
    pub fn is_valid(&self) -> bool {
        self.probe_steps >= 1
            && self.period_steps > self.probe_steps
            && self.patience >= 1
            && self.margin >= 0.0
            && self.margin.is_finite()
    }
}

impl Default for ShieldParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Who bids this step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Source {
    /// The learned policy (0: the all-zero shield's).
    Learned = 0,
    /// The controller.
    Controller,
}

/// What the shield has done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ShieldStats {
    /// Whether the controller is in charge now.
    pub shielded: bool,
    /// Swaps from the learned policy to the controller.
    pub to_controller: u32,
    /// Swaps back to the learned policy.
    pub to_learned: u32,
    /// Steps the controller bid (probes included).
    pub controller_steps: u64,
}

/// The shield's state (module docs); it does anything only when its parameters are
/// [`ShieldParams::is_active`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Shield {
    params: ShieldParams,
    step: u32,
    last: Source,
    /// The last step's reward has not been recorded (yet, or ever: an agent acting
    /// without recording).
    unrewarded: bool,
    probe_sum: f32,
    probe_n: u32,
    main_sum: f32,
    main_n: u32,
    wins: u32,
    stats: ShieldStats,
}

impl Shield {
    /// A shield with the learned policy in charge.
    pub const fn new(params: ShieldParams) -> Self {
        Self {
            params,
            step: 0,
            last: Source::Learned,
            unrewarded: false,
            probe_sum: 0.0,
            probe_n: 0,
            main_sum: 0.0,
            main_n: 0,
            wins: 0,
            stats: ShieldStats {
                shielded: false,
                to_controller: 0,
                to_learned: 0,
                controller_steps: 0,
            },
        }
    }

    /// The parameters.
    pub fn params(&self) -> &ShieldParams {
        &self.params
    }

    /// Whether the shield runs ([`ShieldParams::is_active`]).
    pub fn is_active(&self) -> bool {
        self.params.is_active()
    }

    /// What the shield has done.
    pub fn stats(&self) -> ShieldStats {
        self.stats
    }

    fn in_charge(&self) -> Source {
        if self.stats.shielded {
            Source::Controller
        } else {
            Source::Learned
        }
    }

    /// Who bids this step (always the learned policy when the shield is off); call once
    /// per `act`.
    pub fn next_source(&mut self) -> Source {
        if !self.is_active() {
            return Source::Learned;
        }
        // Periods count rewarded steps: after a step whose reward was not recorded (an
        // agent acting without learning) nothing is compared, so nothing is probed.
        let probing = self.step < self.params.probe_steps && !self.unrewarded;
        self.unrewarded = true;
        let source = match (probing, self.in_charge()) {
            (false, charge) => charge,
            (true, Source::Learned) => Source::Controller,
            (true, Source::Controller) => Source::Learned,
        };
        self.last = source;
        self.stats.controller_steps += u64::from(source == Source::Controller);
        source
    }

    /// The reward of the step whose source [`Shield::next_source`] gave last; call once
    /// per recorded transition. Ends the period when it is full.
    pub fn record_reward(&mut self, reward: f32) {
        if !self.is_active() {
            return;
        }
        self.unrewarded = false;
        let probing = self.last != self.in_charge();
        if probing {
            self.probe_sum += reward;
            self.probe_n += 1;
        } else {
            self.main_sum += reward;
            self.main_n += 1;
        }
        self.step += 1;
        if self.step >= self.params.period_steps {
            self.end_period();
        }
    }

    fn end_period(&mut self) {
        if self.probe_n > 0 && self.main_n > 0 {
            let probe = self.probe_sum / self.probe_n as f32;
            let main = self.main_sum / self.main_n as f32;
            self.wins = if probe > main + self.params.margin {
                self.wins + 1
            } else {
                0
            };
        }
        if self.wins >= self.params.patience {
            self.wins = 0;
            self.stats.shielded = !self.stats.shielded;
            if self.stats.shielded {
                self.stats.to_controller += 1;
            } else {
                self.stats.to_learned += 1;
            }
        }
        self.step = 0;
        self.probe_sum = 0.0;
        self.probe_n = 0;
        self.main_sum = 0.0;
        self.main_n = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: ShieldParams = ShieldParams {
        enabled: true,
        period_steps: 10,
        probe_steps: 2,
        patience: 2,
        margin: 0.05,
    };

    /// Runs `periods` periods, rewarding the learned policy `learned` and the controller
    /// `controller` per step.
    fn run(shield: &mut Shield, periods: u32, learned: f32, controller: f32) {
        for _ in 0..periods * shield.params().period_steps {
            let r = match shield.next_source() {
                Source::Learned => learned,
                Source::Controller => controller,
            };
            shield.record_reward(r);
        }
    }

    #[test]
    fn probes_the_controller_for_the_first_steps_of_each_period() {
        let mut s = Shield::new(P);
        let sources: std::vec::Vec<Source> = (0..10)
            .map(|_| {
                let x = s.next_source();
                s.record_reward(-0.5);
                x
            })
            .collect();
        assert_eq!(&sources[..2], [Source::Controller; 2]);
        assert!(sources[2..].iter().all(|x| *x == Source::Learned));
    }

    #[test]
    fn without_recorded_rewards_the_source_in_charge_bids() {
        // An agent acting without learning: only its first step (before any could be
        // missed) is a probe; the learned policy bids the rest, period after period.
        let mut s = Shield::new(P);
        let controller = (0..50).filter(|_| s.next_source() == Source::Controller).count();
        assert_eq!(controller, 1);
        // A controller in charge keeps bidding, without probes of the learned policy after
        // the first unrewarded step (the start of a period, so a probe).
        let mut s = Shield::new(P);
        run(&mut s, 3, -1.0, -0.5);
        assert!(s.stats().shielded);
        assert_eq!(s.next_source(), Source::Learned);
        assert!((0..50).all(|_| s.next_source() == Source::Controller));
    }

    #[test]
    fn hands_over_after_patience_periods_and_back_with_hysteresis() {
        let mut s = Shield::new(P);
        run(&mut s, 1, -1.0, -0.5);
        assert!(!s.stats().shielded, "one period is not enough");
        run(&mut s, 1, -1.0, -0.5);
        assert!(s.stats().shielded);
        assert_eq!(s.stats().to_controller, 1);
        // Within the margin: the controller stays in charge.
        run(&mut s, 5, -0.47, -0.5);
        assert!(s.stats().shielded);
        run(&mut s, 2, -0.2, -0.5);
        assert!(!s.stats().shielded);
        assert_eq!((s.stats().to_controller, s.stats().to_learned), (1, 1));
    }

    #[test]
    fn a_win_streak_broken_by_one_loss_starts_over() {
        let mut s = Shield::new(P);
        run(&mut s, 1, -1.0, -0.5);
        run(&mut s, 1, -0.5, -1.0);
        run(&mut s, 1, -1.0, -0.5);
        assert!(!s.stats().shielded);
    }

    #[test]
    fn only_runnable_parameters_are_valid() {
        assert!(ShieldParams::DEFAULT.is_valid() && !ShieldParams::DEFAULT.is_active());
        assert!(!ShieldParams::OFF.is_valid());
        let mut off = Shield::new(ShieldParams { enabled: false, ..P });
        for _ in 0..100 {
            assert_eq!(off.next_source(), Source::Learned);
            off.record_reward(-1.0);
        }
        assert_eq!(off.stats(), ShieldStats::default());
        for bad in [
            ShieldParams { probe_steps: 0, ..P },
            ShieldParams { period_steps: 2, ..P },
            ShieldParams { patience: 0, ..P },
            ShieldParams { margin: -0.1, ..P },
            ShieldParams {
                margin: f32::NAN,
                ..P
            },
        ] {
            assert!(!bad.is_valid(), "{bad:?}");
        }
    }
}
