//! Every agent hyperparameter of docs/agents.md, from a TOML file (`--params FILE`).
//!
//! [`AgentParams::default`] is the paper's values (docs/agents.md); a file sets any subset
//! (omitted keys keep their defaults; unknown keys are refused) and is checked against the
//! ranges below, each error naming the file and the key. `cavmem params` prints the
//! defaults as a valid file. Floats are read as decimal numbers and rounded to `f32`;
//! every value `cavmem params` prints reads back to the same bits, so a run with the
//! printed file is the run without `--params`, bit for bit.

use std::path::{Path, PathBuf};

use Bound::{Closed as C, Open as O};
use cavmem_core::agent::controller::{FeedbackParams, MomParams};
use cavmem_core::agent::ddpg::{BATCH, DdpgParams};
use cavmem_core::agent::dqn::{ACTIONS, DqnParams};
use cavmem_core::agent::ql::QlParams;
use cavmem_core::agent::{PolicyParams, ResidualParams, ShieldParams, Td3Params};
use cavmem_core::mdp::MdpParams;
use cavmem_core::noise::{Anneal, EpsilonSchedule, OuParams};
use serde::{Deserialize, Serialize};

/// Replay capacity of the deep learners in the harness: 16,384 transitions, about 160
/// episodes of one agent's experience (the paper does not give it). A compile-time size
/// (`AnyPolicy<R, _>`), not a params key; `learn_starts` may be at most this.
pub const REPLAY_CAPACITY: usize = 16_384;

/// λ of the default (`raw`) formulation: half the weight of the deviation term.
pub const RAW_MISS_WEIGHT: f32 = 0.5;

/// An error in a params file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {key}: {reason}", file.display())]
pub struct ParamsError {
    /// The file.
    pub file: PathBuf,
    /// The key, as a TOML path (`ddpg.actor_lr`), or `(file)`/`(syntax)`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// Reads an `f32` field as the decimal `cavmem params` printed (its shortest form), so the
/// file reads back to the same bits.
mod decimal_f32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(super::shortest_f64(*x))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        f64::deserialize(d).map(|x| x as f32)
    }
}

/// `x`'s shortest decimal form, as an `f64` (`1e-4` as 0.0001, not the nearest `f64`'s
/// 9.999999747378752e-05): the shortest text that reads back as the same `f32`.
pub fn shortest_f64(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// The ε schedule of the three learners, laid over the run: ε = `start` for the first
/// `explore_permille`‰ of the run's agent steps, annealed to `end` over the next
/// `anneal_permille`‰ (paper: 200 of 1000 episodes; the annealing is ours).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EpsilonParams {
    /// ε while exploring, [0, 1] (paper: 1).
    #[serde(with = "decimal_f32")]
    pub start: f32,
    /// Final ε, [0, start] (paper: 0.001).
    #[serde(with = "decimal_f32")]
    pub end: f32,
    /// Length of the exploration phase, per mille of the run's agent steps, 0–1000 (200).
    pub explore_permille: u32,
    /// Length of the annealing, per mille of the run's agent steps, 0–1000 (300).
    pub anneal_permille: u32,
    /// `exponential` (default) or `linear`.
    pub anneal: AnnealName,
}

/// The annealing curve's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnealName {
    /// Geometric decay.
    Exponential,
    /// Straight line.
    Linear,
}

impl Default for EpsilonParams {
    fn default() -> Self {
        let e = EpsilonSchedule::default();
        Self {
            start: e.start,
            end: e.end,
            explore_permille: 200,
            anneal_permille: 300,
            anneal: AnnealName::Exponential,
        }
    }
}

impl EpsilonParams {
    /// The schedule over a run of `total_steps` agent steps.
    pub fn schedule(&self, total_steps: u64) -> EpsilonSchedule {
        let part = |permille: u32| {
            u64::try_from(u128::from(total_steps) * u128::from(permille) / 1000).unwrap_or(u64::MAX)
        };
        EpsilonSchedule {
            start: self.start,
            end: self.end,
            explore_steps: part(self.explore_permille),
            anneal_steps: part(self.anneal_permille).max(1),
            anneal: match self.anneal {
                AnnealName::Exponential => Anneal::Exponential,
                AnnealName::Linear => Anneal::Linear,
            },
        }
    }
}

/// Ornstein–Uhlenbeck exploration noise of DDPG.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OuSection {
    /// Mean reversion θ, (0, 2) (0.15).
    #[serde(with = "decimal_f32")]
    pub theta: f32,
    /// Volatility σ, [0, 10] (0.2).
    #[serde(with = "decimal_f32")]
    pub sigma: f32,
    /// Long-run mean μ, [-1, 1] (0).
    #[serde(with = "decimal_f32")]
    pub mu: f32,
    /// Time step, (0, 10] (1); θ·dt < 2.
    #[serde(with = "decimal_f32")]
    pub dt: f32,
}

impl Default for OuSection {
    fn default() -> Self {
        let o = OuParams::default();
        Self {
            theta: o.theta,
            sigma: o.sigma,
            mu: o.mu,
            dt: o.dt,
        }
    }
}

/// DDPG (CAVMem's learner).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DdpgSection {
    /// Actor learning rate, (0, 1] (paper: 1e-4).
    #[serde(with = "decimal_f32")]
    pub actor_lr: f32,
    /// Critic learning rate, (0, 1] (paper: 1e-3).
    #[serde(with = "decimal_f32")]
    pub critic_lr: f32,
    /// Discount γ, [0, 1) (0.99).
    #[serde(with = "decimal_f32")]
    pub gamma: f32,
    /// Soft target update τ, (0, 1] (0.001).
    #[serde(with = "decimal_f32")]
    pub tau: f32,
    /// Transitions held before the first update, 64–16,384 (64).
    pub learn_starts: u32,
    /// The networks see the states normalized by their running mean and standard
    /// deviation (false: the paper's inputs; docs/agents.md).
    pub normalize_observations: bool,
    /// Exploration noise.
    pub ou: OuSection,
}

impl Default for DdpgSection {
    fn default() -> Self {
        let d = DdpgParams::default();
        Self {
            actor_lr: d.actor_lr,
            critic_lr: d.critic_lr,
            gamma: d.gamma,
            tau: d.tau,
            learn_starts: d.learn_starts,
            normalize_observations: d.normalize_observations,
            ou: OuSection::default(),
        }
    }
}

/// DQN.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DqnSection {
    /// Learning rate, (0, 1] (paper: 1e-3).
    #[serde(with = "decimal_f32")]
    pub lr: f32,
    /// Discount γ, [0, 1) (0.99).
    #[serde(with = "decimal_f32")]
    pub gamma: f32,
    /// Soft target update τ, (0, 1] (0.001).
    #[serde(with = "decimal_f32")]
    pub tau: f32,
    /// Update the target every this many learning steps, 1–1,000,000 (1).
    pub target_every: u32,
    /// The bid of each of the three actions, each in [-1, 1] (-0.25, 0, 0.25).
    pub action_bids: ActionBids,
    /// Transitions held before the first update, 64–16,384 (64).
    pub learn_starts: u32,
}

impl Default for DqnSection {
    fn default() -> Self {
        let d = DqnParams::default();
        Self {
            lr: d.lr,
            gamma: d.gamma,
            tau: d.tau,
            target_every: d.target_every,
            action_bids: ActionBids(d.action_bids),
            learn_starts: d.learn_starts,
        }
    }
}

/// The bids of the discrete learners' actions (printed and read as decimals).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActionBids(pub [f32; ACTIONS]);

impl Serialize for ActionBids {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.map(shortest_f64).serialize(s)
    }
}

impl<'de> Deserialize<'de> for ActionBids {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <[f64; ACTIONS]>::deserialize(d).map(|a| Self(a.map(|x| x as f32)))
    }
}

/// Tabular Q-learning.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QlSection {
    /// Step size α, (0, 1] (0.1).
    #[serde(with = "decimal_f32")]
    pub alpha: f32,
    /// Discount γ, [0, 1) (0.99).
    #[serde(with = "decimal_f32")]
    pub gamma: f32,
    /// The bid of each of the three actions, each in [-1, 1] (-0.25, 0, 0.25).
    pub action_bids: ActionBids,
}

impl Default for QlSection {
    fn default() -> Self {
        let q = QlParams::default();
        Self {
            alpha: q.alpha,
            gamma: q.gamma,
            action_bids: ActionBids(q.action_bids),
        }
    }
}

/// The proportional feedback controller.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedbackSection {
    /// Gain, (0, 100] (0.125).
    #[serde(with = "decimal_f32")]
    pub gain: f32,
    /// Added to the node's average, (0, 1] (0.01).
    #[serde(with = "decimal_f32")]
    pub avg_floor: f32,
    /// Missing threshold, [0, 1) (0.001).
    #[serde(with = "decimal_f32")]
    pub missing: f32,
    /// While no VM misses, VMs that do not miss take free memory up to this fraction of
    /// the node, [0, 1] (0: never).
    #[serde(with = "decimal_f32")]
    pub fill_to: f32,
}

impl Default for FeedbackSection {
    fn default() -> Self {
        let f = FeedbackParams::default();
        Self {
            gain: f.gain,
            avg_floor: f.avg_floor,
            missing: f.missing,
            fill_to: f.fill_to,
        }
    }
}

/// The MOM-style fixed-step controller.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MomSection {
    /// Step, share of the node, (0, 1] (0.0625).
    #[serde(with = "decimal_f32")]
    pub step: f32,
    /// Dead band, [0, 1) (0.75).
    #[serde(with = "decimal_f32")]
    pub deadband: f32,
    /// Missing threshold, [0, 1) (0.001).
    #[serde(with = "decimal_f32")]
    pub missing: f32,
}

impl Default for MomSection {
    fn default() -> Self {
        let m = MomParams::default();
        Self {
            step: m.step,
            deadband: m.deadband,
            missing: m.missing,
        }
    }
}

/// The residual policy (DDPG correcting the feedback controller; its learner takes the
/// `[ddpg]` keys, its base controller the `[feedback]` keys).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResidualSection {
    /// The largest correction to the controller's bid, (0, 2] (0.25).
    #[serde(with = "decimal_f32")]
    pub scale: f32,
    /// β of the actor's penalty β·μ² on its correction, [0, 100] (0.3).
    #[serde(with = "decimal_f32")]
    pub correction_penalty: f32,
    /// The runtime shield.
    pub shield: ShieldSection,
}

impl Default for ResidualSection {
    fn default() -> Self {
        let r = ResidualParams::default();
        Self {
            scale: r.scale,
            correction_penalty: r.correction_penalty,
            shield: ShieldSection::default(),
        }
    }
}

/// TD3's own keys (its learner takes the `[ddpg]` keys).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Td3Section {
    /// Learning steps per actor and target update, 1–1,000 (2).
    pub policy_delay: u32,
    /// σ of the Gaussian noise on the target policy's bids, [0, 1] (0.2).
    #[serde(with = "decimal_f32")]
    pub target_noise: f32,
    /// Bound of that noise, [0, 1] (0.5).
    #[serde(with = "decimal_f32")]
    pub target_noise_clip: f32,
}

impl Default for Td3Section {
    fn default() -> Self {
        let t = Td3Params::default();
        Self {
            policy_delay: t.policy_delay,
            target_noise: t.target_noise,
            target_noise_clip: t.target_noise_clip,
        }
    }
}

/// The residual policy's runtime shield (docs/agents.md).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShieldSection {
    /// Whether the shield runs.
    pub enabled: bool,
    /// Steps per period, 2–1,000,000, more than `probe_steps` (100).
    pub period_steps: u32,
    /// Steps of each period probing the source not in charge, 1–999,999 (20).
    pub probe_steps: u32,
    /// Periods in a row the probe must win before the sources swap, 1–1,000 (3).
    pub patience: u32,
    /// Mean reward per step by which the probe must win, [0, 2] (0).
    #[serde(with = "decimal_f32")]
    pub margin: f32,
}

impl Default for ShieldSection {
    fn default() -> Self {
        let d = ResidualParams::default().shield;
        Self {
            enabled: d.enabled,
            period_steps: d.period_steps,
            probe_steps: d.probe_steps,
            patience: d.patience,
            margin: d.margin,
        }
    }
}

impl ShieldSection {
    /// The shield's parameters.
    pub fn params(&self) -> ShieldParams {
        ShieldParams {
            enabled: self.enabled,
            period_steps: self.period_steps,
            probe_steps: self.probe_steps,
            patience: self.patience,
            margin: self.margin,
        }
    }
}

/// The reward of one formulation (Eq. 2 with a miss penalty: docs/formulation.md).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RewardWeights {
    /// `k`, the weight of the deviation from the target, (0, 100] (1).
    #[serde(with = "decimal_f32")]
    pub deviation_weight: f32,
    /// `λ`, the weight of the miss penalty, [0, 100] (raw 0.5, paper 0).
    #[serde(with = "decimal_f32")]
    pub miss_weight: f32,
}

impl RewardWeights {
    /// These weights in `mdp` (whose formulation and fault factor stay).
    pub fn apply(&self, mdp: MdpParams) -> MdpParams {
        MdpParams {
            deviation_weight: self.deviation_weight,
            miss_weight: self.miss_weight,
            ..mdp
        }
    }
}

/// The reward weights of each formulation; a key left out keeps its formulation's default.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "PartialRewards")]
pub struct RewardSection {
    /// The default formulation's.
    pub raw: RewardWeights,
    /// The paper's literal formulation's.
    pub paper: RewardWeights,
}

/// [`RewardWeights`] as read: the keys given.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialWeights {
    deviation_weight: Option<f64>,
    miss_weight: Option<f64>,
}

impl PartialWeights {
    fn over(self, defaults: RewardWeights) -> RewardWeights {
        RewardWeights {
            deviation_weight: self
                .deviation_weight
                .map_or(defaults.deviation_weight, |x| x as f32),
            miss_weight: self.miss_weight.map_or(defaults.miss_weight, |x| x as f32),
        }
    }
}

/// [`RewardSection`] as read.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PartialRewards {
    raw: PartialWeights,
    paper: PartialWeights,
}

impl From<PartialRewards> for RewardSection {
    fn from(p: PartialRewards) -> Self {
        let d = Self::default();
        Self {
            raw: p.raw.over(d.raw),
            paper: p.paper.over(d.paper),
        }
    }
}

impl Default for RewardSection {
    /// k = 1 for both (the paper's Eq. 2); λ = [`RAW_MISS_WEIGHT`] for `raw`, 0 for `paper`.
    fn default() -> Self {
        let paper = MdpParams::paper();
        Self {
            raw: RewardWeights {
                deviation_weight: MdpParams::default().deviation_weight,
                miss_weight: RAW_MISS_WEIGHT,
            },
            paper: RewardWeights {
                deviation_weight: paper.deviation_weight,
                miss_weight: paper.miss_weight,
            },
        }
    }
}

/// Every agent hyperparameter (module docs); `Default` is the paper's values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentParams {
    /// The learners' ε schedule.
    pub epsilon: EpsilonParams,
    /// DDPG.
    pub ddpg: DdpgSection,
    /// DQN.
    pub dqn: DqnSection,
    /// Q-learning.
    pub ql: QlSection,
    /// The feedback controller.
    pub feedback: FeedbackSection,
    /// The MOM-style controller.
    pub mom: MomSection,
    /// The residual policy.
    pub residual: ResidualSection,
    /// TD3.
    pub td3: Td3Section,
    /// The reward.
    pub reward: RewardSection,
}

/// What a run needs of the parameters: the policies' and the reward's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyperparams {
    /// Every policy's parameters, the ε schedule laid over the run.
    pub policy: PolicyParams,
    /// The reward weights of each formulation.
    pub reward: RewardSection,
}

impl AgentParams {
    /// The parameters of a run of `total_steps` agent steps.
    pub fn hyperparams(&self, total_steps: u64) -> Hyperparams {
        let epsilon = self.epsilon.schedule(total_steps);
        let (d, q, l) = (self.ddpg, self.dqn, self.ql);
        let feedback = FeedbackParams {
            gain: self.feedback.gain,
            avg_floor: self.feedback.avg_floor,
            missing: self.feedback.missing,
            fill_to: self.feedback.fill_to,
        };
        let policy = PolicyParams {
            ddpg: DdpgParams {
                actor_lr: d.actor_lr,
                critic_lr: d.critic_lr,
                gamma: d.gamma,
                tau: d.tau,
                ou: OuParams {
                    theta: d.ou.theta,
                    sigma: d.ou.sigma,
                    mu: d.ou.mu,
                    dt: d.ou.dt,
                },
                epsilon,
                learn_starts: d.learn_starts,
                normalize_observations: d.normalize_observations,
                ..DdpgParams::default()
            },
            dqn: DqnParams {
                lr: q.lr,
                gamma: q.gamma,
                tau: q.tau,
                target_every: q.target_every,
                action_bids: q.action_bids.0,
                epsilon,
                learn_starts: q.learn_starts,
            },
            ql: QlParams {
                alpha: l.alpha,
                gamma: l.gamma,
                action_bids: l.action_bids.0,
                epsilon,
            },
            feedback,
            mom: MomParams {
                step: self.mom.step,
                deadband: self.mom.deadband,
                missing: self.mom.missing,
            },
            residual: ResidualParams {
                scale: self.residual.scale,
                base: feedback,
                shield: self.residual.shield.params(),
                correction_penalty: self.residual.correction_penalty,
            },
            td3: Td3Params {
                policy_delay: self.td3.policy_delay,
                target_noise: self.td3.target_noise,
                target_noise_clip: self.td3.target_noise_clip,
            },
        };
        Hyperparams {
            policy,
            reward: self.reward,
        }
    }

    /// The defaults as a params file: a header saying how to use it, and each key's range
    /// as a comment (from the checks [`Self::parse`] applies).
    pub fn defaults_toml() -> String {
        let defaults = Self::default();
        let body = toml::to_string(&defaults).unwrap_or_default();
        let ranges = defaults.ranges();
        let mut section = String::new();
        let mut out = String::from(
            "# CAVMem agent hyperparameters (docs/agents.md): the defaults.\n\
             # Use with --params FILE on run, train, live, paper and suite; omitted keys keep\n\
             # these values, unknown keys are refused, values outside the range given are errors.\n\n",
        );
        for line in body.lines() {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_string();
            }
            out.push_str(line);
            let key = line.split(" = ").next().map(|k| format!("{section}.{k}"));
            let range = key.and_then(|key| {
                ranges
                    .iter()
                    .find(|r| r.0 == key || r.0 == format!("{key}[0]"))
                    .map(|(k, _, lo, hi)| (k.ends_with("[0]"), lo.to_open(), hi.to_close()))
            });
            if let Some((each, lo, hi)) = range {
                let each = if each { "each in " } else { "" };
                out.push_str(&format!("  # {each}{lo}, {hi}"));
            }
            out.push('\n');
        }
        out
    }

    /// Parses and checks a params file's text; `file` names it in errors.
    ///
    /// # Errors
    /// [`ParamsError`] naming the key and the reason: syntax, unknown keys, wrong types,
    /// values out of range.
    pub fn parse(file: &Path, text: &str) -> Result<Self, ParamsError> {
        let params: Self = toml::from_str(text).map_err(|e| ParamsError {
            file: file.to_path_buf(),
            key: syntax_key(&e),
            reason: e.to_string().trim_end().to_string(),
        })?;
        params.check().map_err(|(key, reason)| ParamsError {
            file: file.to_path_buf(),
            key,
            reason,
        })?;
        Ok(params)
    }

    /// Reads and checks a params file.
    ///
    /// # Errors
    /// [`ParamsError`]: the file cannot be read, or as [`Self::parse`].
    pub fn load(path: &Path) -> Result<Self, ParamsError> {
        let text = std::fs::read_to_string(path).map_err(|e| ParamsError {
            file: path.to_path_buf(),
            key: "(file)".into(),
            reason: e.to_string(),
        })?;
        Self::parse(path, &text)
    }

    /// Checks every value's range; the first one out of range as `(key, reason)`.
    fn check(&self) -> Result<(), (String, String)> {
        self.ranges()
            .into_iter()
            .try_for_each(|(key, value, lo, hi)| check_range(value, lo, hi).map_err(|reason| (key, reason)))
    }

    /// Every value with its key and range, section by section.
    fn ranges(&self) -> Vec<Range> {
        let mut checks = self.epsilon_ranges();
        checks.extend(self.ddpg_ranges());
        checks.extend(self.dqn_ql_ranges());
        checks.extend(self.controller_ranges());
        checks.extend(self.residual_ranges());
        checks.extend(self.td3_ranges());
        checks.extend(self.reward_ranges());
        checks
    }

    fn epsilon_ranges(&self) -> Vec<Range> {
        let e = &self.epsilon;
        vec![
            range("epsilon.start", e.start, C(0.0), C(1.0)),
            range("epsilon.end", e.end, C(0.0), C(e.start.into())),
            range("epsilon.explore_permille", e.explore_permille, C(0.0), C(1000.0)),
            range("epsilon.anneal_permille", e.anneal_permille, C(0.0), C(1000.0)),
        ]
    }

    fn ddpg_ranges(&self) -> Vec<Range> {
        let d = &self.ddpg;
        let theta_dt = f64::from(d.ou.theta) * f64::from(d.ou.dt);
        vec![
            range("ddpg.actor_lr", d.actor_lr, O(0.0), C(1.0)),
            range("ddpg.critic_lr", d.critic_lr, O(0.0), C(1.0)),
            range("ddpg.gamma", d.gamma, C(0.0), O(1.0)),
            range("ddpg.tau", d.tau, O(0.0), C(1.0)),
            range(
                "ddpg.learn_starts",
                d.learn_starts,
                C(BATCH as f64),
                C(REPLAY_CAPACITY as f64),
            ),
            range("ddpg.ou.theta", d.ou.theta, O(0.0), O(2.0)),
            range("ddpg.ou.sigma", d.ou.sigma, C(0.0), C(10.0)),
            range("ddpg.ou.mu", d.ou.mu, C(-1.0), C(1.0)),
            range("ddpg.ou.dt", d.ou.dt, O(0.0), C(10.0)),
            range("ddpg.ou.theta × dt", theta_dt, O(0.0), O(2.0)),
        ]
    }

    fn dqn_ql_ranges(&self) -> Vec<Range> {
        let q = &self.dqn;
        let mut checks = vec![
            range("dqn.lr", q.lr, O(0.0), C(1.0)),
            range("dqn.gamma", q.gamma, C(0.0), O(1.0)),
            range("dqn.tau", q.tau, O(0.0), C(1.0)),
            range("dqn.target_every", q.target_every, C(1.0), C(1e6)),
            range(
                "dqn.learn_starts",
                q.learn_starts,
                C(BATCH as f64),
                C(REPLAY_CAPACITY as f64),
            ),
            range("ql.alpha", self.ql.alpha, O(0.0), C(1.0)),
            range("ql.gamma", self.ql.gamma, C(0.0), O(1.0)),
        ];
        for (section, bids) in [("dqn", q.action_bids), ("ql", self.ql.action_bids)] {
            for (k, b) in bids.0.iter().enumerate() {
                checks.push(range(format!("{section}.action_bids[{k}]"), *b, C(-1.0), C(1.0)));
            }
        }
        checks
    }

    fn controller_ranges(&self) -> Vec<Range> {
        let (f, m) = (&self.feedback, &self.mom);
        vec![
            range("feedback.gain", f.gain, O(0.0), C(100.0)),
            range("feedback.avg_floor", f.avg_floor, O(0.0), C(1.0)),
            range("feedback.missing", f.missing, C(0.0), O(1.0)),
            range("feedback.fill_to", f.fill_to, C(0.0), C(1.0)),
            range("mom.step", m.step, O(0.0), C(1.0)),
            range("mom.deadband", m.deadband, C(0.0), O(1.0)),
            range("mom.missing", m.missing, C(0.0), O(1.0)),
        ]
    }

    fn residual_ranges(&self) -> Vec<Range> {
        let (r, sh) = (&self.residual, &self.residual.shield);
        vec![
            range("residual.scale", r.scale, O(0.0), C(2.0)),
            range(
                "residual.correction_penalty",
                r.correction_penalty,
                C(0.0),
                C(100.0),
            ),
            range(
                "residual.shield.period_steps",
                sh.period_steps,
                C(f64::from(sh.probe_steps) + 1.0),
                C(1e6),
            ),
            range(
                "residual.shield.probe_steps",
                sh.probe_steps,
                C(1.0),
                C(999_999.0),
            ),
            range("residual.shield.patience", sh.patience, C(1.0), C(1000.0)),
            range("residual.shield.margin", sh.margin, C(0.0), C(2.0)),
        ]
    }

    fn td3_ranges(&self) -> Vec<Range> {
        let t = &self.td3;
        vec![
            range("td3.policy_delay", t.policy_delay, C(1.0), C(1000.0)),
            range("td3.target_noise", t.target_noise, C(0.0), C(1.0)),
            range("td3.target_noise_clip", t.target_noise_clip, C(0.0), C(1.0)),
        ]
    }

    fn reward_ranges(&self) -> Vec<Range> {
        let mut checks = Vec::new();
        for (name, w) in [("raw", self.reward.raw), ("paper", self.reward.paper)] {
            checks.push(range(
                format!("reward.{name}.deviation_weight"),
                w.deviation_weight,
                O(0.0),
                C(100.0),
            ));
            checks.push(range(
                format!("reward.{name}.miss_weight"),
                w.miss_weight,
                C(0.0),
                C(100.0),
            ));
        }
        checks
    }
}

/// A value with its key and the range it must lie in.
type Range = (String, f64, Bound, Bound);

/// A [`Range`] for any numeric value.
fn range(key: impl Into<String>, value: impl Into<f64>, lo: Bound, hi: Bound) -> Range {
    (key.into(), value.into(), lo, hi)
}

/// One end of a range.
#[derive(Clone, Copy, Debug)]
enum Bound {
    /// Included.
    Closed(f64),
    /// Excluded.
    Open(f64),
}

impl Bound {
    /// As the lower end of a range: `[0` or `(0`.
    fn to_open(self) -> String {
        match self {
            Self::Closed(v) => format!("[{v}"),
            Self::Open(v) => format!("({v}"),
        }
    }

    /// As the upper end of a range: `1]` or `1)`.
    fn to_close(self) -> String {
        match self {
            Self::Closed(v) => format!("{v}]"),
            Self::Open(v) => format!("{v})"),
        }
    }
}

fn check_range(value: f64, lo: Bound, hi: Bound) -> Result<(), String> {
    let above = match lo {
        Bound::Closed(l) => value >= l,
        Bound::Open(l) => value > l,
    };
    let below = match hi {
        Bound::Closed(h) => value <= h,
        Bound::Open(h) => value < h,
    };
    if above && below {
        return Ok(());
    }
    Err(format!("{value} is outside {}, {}", lo.to_open(), hi.to_close()))
}

/// The key a TOML error points at, from its span's text, or `(syntax)`.
fn syntax_key(e: &toml::de::Error) -> String {
    let message = e.message();
    message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("unknown field"))
        .map_or_else(|| "(syntax)".to_string(), str::to_string)
}

#[cfg(test)]
mod tests;
