//! Proximal Policy Optimization's arithmetic (Schulman et al. 2017), for policies that are any head over action
//! bins: generalised advantage estimation with time limits bootstrapped, the clipped surrogate and value losses, and
//! a categorical policy's log-probabilities and entropy from a head's logits. The agent on the online loop is built
//! on these.

use crate::bc::{MlpPolicy, MlpPolicyFactory};
use crate::common::ActionCoding;
use crate::common::nets::{Activation, mlp_layers_init};
use anyhow::{Context, bail};
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, TensorData};
use burn::tensor::{Int, Tensor};
use frl_dataset::episodes::EpisodeBatch;
use frl_envs::{Action, History, Policy, PolicyFactory, Space};
use frl_heads::head::to_host;
use frl_heads::{Head, HeadConfig};
use frl_learner::params::{NamedTensor, load_params, named_params};
use frl_learner::{
    Acting, Agent, DataSpec, Decode, ModelConfig, OnPolicy, OnlineAgent, Optimizers, Scalars, Trainable,
};
use rand::RngCore;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// One env's consecutive steps of a rollout, in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RolloutSteps {
    /// Reward of each step.
    pub rewards: Vec<f32>,
    /// `V(s_t)`: the value of the observation each step acted on.
    pub values: Vec<f32>,
    /// `V(s_{t+1})`: the value of the observation after each step — after a time limit the final observation's (the
    /// episode was cut, not ended, so its return goes on), after the rollout's last step the next one's.
    pub next_values: Vec<f32>,
    /// The episode ended by termination after this step: nothing follows.
    pub terminated: Vec<bool>,
    /// The episode ended by a time limit after this step: its return is bootstrapped from `next_values`, and the
    /// next step belongs to another episode.
    pub truncated: Vec<bool>,
}

/// GAE(λ) advantages and returns (`advantage + value`) of `steps`: `δ_t = r_t + γ (1 − term_t) V(s_{t+1}) − V(s_t)`
/// and `A_t = δ_t + γ λ (1 − end_t) A_{t+1}`, where an episode's end (termination or time limit) stops the sum and
/// the rollout's last step has nothing after it.
pub fn gae(steps: &RolloutSteps, gamma: f32, lambda: f32) -> (Vec<f32>, Vec<f32>) {
    let n = steps.rewards.len();
    let mut advantages = vec![0.0f32; n];
    let mut next = 0.0f32;
    for t in (0..n).rev() {
        let alive = if steps.terminated[t] { 0.0 } else { 1.0 };
        let delta = steps.rewards[t] + gamma * alive * steps.next_values[t] - steps.values[t];
        let goes_on = if steps.terminated[t] || steps.truncated[t] || t + 1 == n { 0.0 } else { 1.0 };
        next = delta + gamma * lambda * goes_on * next;
        advantages[t] = next;
    }
    let returns = advantages.iter().zip(&steps.values).map(|(a, v)| a + v).collect();
    (advantages, returns)
}

/// Log-probability `[batch]` of each row's taken bin under the categorical distribution of `logits` `[batch, m]`.
pub fn log_prob(logits: Tensor<2>, actions: Tensor<1, Int>) -> Tensor<1> {
    let rows = actions.dims()[0];
    log_softmax(logits, 1).gather(1, actions.reshape([rows, 1])).reshape([rows])
}

/// Entropy `[batch]` (nats) of the categorical distribution of each row of `logits` `[batch, m]`.
pub fn entropy(logits: Tensor<2>) -> Tensor<1> {
    let rows = logits.dims()[0];
    let log_p = log_softmax(logits, 1);
    (log_p.clone().exp() * log_p).sum_dim(1).neg().reshape([rows])
}

/// PPO's clipped surrogate loss `mean(−min(ρ A, clip(ρ, 1 − ε, 1 + ε) A))` with `ρ = exp(log π_new − log π_old)`, `[1]`.
pub fn clipped_surrogate(
    log_prob_new: Tensor<1>,
    log_prob_old: Tensor<1>,
    advantages: Tensor<1>,
    clip: f32,
) -> Tensor<1> {
    let ratio = (log_prob_new - log_prob_old).exp();
    let unclipped = ratio.clone() * advantages.clone();
    let clipped = ratio.clamp(1.0 - clip, 1.0 + clip) * advantages;
    unclipped.min_pair(clipped).neg().mean()
}

/// The value loss `½ mean((V − R)²)`, or with `clip` CleanRL's clipped form `½ mean(max((V − R)², (V_old + clip(V −
/// V_old, −c, c) − R)²))`, `[1]`.
pub fn value_loss(values: Tensor<1>, old_values: Tensor<1>, returns: Tensor<1>, clip: Option<f32>) -> Tensor<1> {
    let plain = (values.clone() - returns.clone()).powf_scalar(2.0);
    let worst = match clip {
        Some(c) => {
            let clipped = old_values.clone() + (values - old_values).clamp(-c, c);
            plain.max_pair((clipped - returns).powf_scalar(2.0))
        }
        None => plain,
    };
    worst.mean() * 0.5
}

/// The approximate KL divergence `mean((ρ − 1) − log ρ)` between the old and the new policy (the estimator CleanRL
/// logs) and the fraction of rows whose ratio left `[1 − ε, 1 + ε]`, from host log-probabilities.
pub fn approx_kl_and_clip_fraction(log_prob_new: &[f32], log_prob_old: &[f32], clip: f32) -> (f64, f64) {
    let n = log_prob_new.len().max(1) as f64;
    let (mut kl, mut clipped) = (0.0f64, 0usize);
    for (a, b) in log_prob_new.iter().zip(log_prob_old) {
        let log_ratio = (*a - *b) as f64;
        kl += log_ratio.exp() - 1.0 - log_ratio;
        clipped += usize::from((log_ratio.exp() - 1.0).abs() > clip as f64);
    }
    (kl / n, clipped as f64 / n)
}

// ------------------------------------------------------------------------------------------------------------------
// The agent: a policy that is one head per action dimension over bins (one head over the actions for discrete ones)
// or a diagonal Gaussian, and a value network, trained on the online loop's rounds.

/// The policy's distribution over actions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// One head per action dimension over `bins` bins (one head over the actions for discrete actions).
    #[default]
    Bins,
    /// A diagonal Gaussian with a state-independent log standard deviation (CleanRL's `ppo_continuous_action.py`);
    /// continuous actions only. Samples are recorded as drawn and clipped to the action bounds for the env.
    Gaussian,
}

/// The `[ppo]` section: CleanRL's `ppo.py` defaults where they apply (rollouts of 128 steps, 4 epochs of 4
/// minibatches, γ 0.99, λ 0.95, clip 0.2, entropy 0.01, value 0.5 with clipping), with the policy a head over bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Hidden layer sizes of the policy and of the value network.
    pub hidden: Vec<usize>,
    /// The nonlinearity after each hidden layer (`"relu"`, or `"tanh"` as CleanRL's networks).
    pub activation: Activation,
    /// CleanRL's initialisation: orthogonal weights (gain √2 in hidden layers, 0.01 for the Gaussian's mean, 1 for
    /// the value) and zero biases; the heads over bins keep their own initialisation.
    pub orthogonal_init: bool,
    /// `"bins"` (a head per action dimension) or `"gaussian"` (CleanRL's continuous-action policy).
    pub distribution: Distribution,
    /// Bins per continuous action dimension.
    pub bins: usize,
    /// Continuous actions are binned over their bounds widened by this fraction of the range on each side.
    pub bin_margin: f64,
    /// The policy's head per action dimension (`"linear"`: a categorical over the bins, as Tang & Agrawal 2020).
    pub head: HeadConfig,
    /// Env steps each env slot takes per rollout (`num_steps`).
    pub rollout_steps: usize,
    /// Passes over each rollout (`update_epochs`).
    pub epochs: usize,
    /// Minibatches each pass is split into (`num_minibatches`).
    pub minibatches: usize,
    /// Discount `γ`.
    pub gamma: f32,
    /// GAE's `λ`.
    pub gae_lambda: f32,
    /// The surrogate's clip range `ε` (also the value clip when `clip_value`).
    pub clip: f32,
    /// Clip the value loss around the rollout's values (CleanRL's `clip_vloss`).
    pub clip_value: bool,
    /// Weight of the entropy bonus (`ent_coef`).
    pub entropy_coef: f32,
    /// Weight of the value loss (`vf_coef`).
    pub value_coef: f32,
    /// Normalise advantages within each minibatch (`norm_adv`).
    pub normalize_advantages: bool,
    /// Normalise observations by their running mean and variance and clip them to ±10 (CleanRL's
    /// `NormalizeObservation`); the statistics take in each round after it was acted, and are saved in checkpoints.
    pub normalize_observations: bool,
    /// Divide rewards by the running standard deviation of their discounted sum and clip them to ±10 (CleanRL's
    /// `NormalizeReward`); returns in TensorBoard stay the env's.
    pub normalize_rewards: bool,
    /// Bootstrap an episode cut by a time limit from its final observation's value (`false`: treat the cut as a
    /// termination, as CleanRL's scripts do).
    pub bootstrap_time_limits: bool,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            hidden: vec![64, 64],
            activation: Activation::Relu,
            orthogonal_init: false,
            distribution: Distribution::Bins,
            bins: 11,
            bin_margin: 0.0,
            head: HeadConfig::Linear,
            rollout_steps: 128,
            epochs: 4,
            minibatches: 4,
            gamma: 0.99,
            gae_lambda: 0.95,
            clip: 0.2,
            clip_value: true,
            entropy_coef: 0.01,
            value_coef: 0.5,
            normalize_advantages: true,
            normalize_observations: false,
            normalize_rewards: false,
            bootstrap_time_limits: true,
        }
    }
}

impl ModelConfig for PpoConfig {
    fn validate(&self) -> anyhow::Result<()> {
        for (field, v) in
            [("rollout_steps", self.rollout_steps), ("epochs", self.epochs), ("minibatches", self.minibatches)]
        {
            if v == 0 {
                bail!("`ppo.{field}` must be at least 1");
            }
        }
        if self.minibatches > self.rollout_steps {
            bail!("`ppo.minibatches` = {}: more than the {} steps of a rollout", self.minibatches, self.rollout_steps);
        }
        for (field, v) in [("gamma", self.gamma), ("gae_lambda", self.gae_lambda)] {
            if !(0.0..=1.0).contains(&v) {
                bail!("`ppo.{field}` = {v}: must be in [0, 1]");
            }
        }
        if !self.clip.is_finite() || self.clip <= 0.0 {
            bail!("`ppo.clip` = {}: must be positive", self.clip);
        }
        self.head.validate().map_err(|e| anyhow::anyhow!("`ppo.head`: {e}"))
    }

    fn head(&self) -> Option<&HeadConfig> {
        (self.distribution == Distribution::Bins).then_some(&self.head)
    }
}

/// `1 − Var(returns − values) / Var(returns)` (population variances; NaN when the returns do not vary), CleanRL's
/// `explained_var`.
pub fn explained_variance(values: &[f32], returns: &[f32]) -> f64 {
    let var = |x: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = x.collect();
        let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
        v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / v.len().max(1) as f64
    };
    let total = var(&mut returns.iter().map(|&r| r as f64));
    if total == 0.0 {
        return f64::NAN;
    }
    1.0 - var(&mut returns.iter().zip(values).map(|(&r, &v)| (r - v) as f64)) / total
}

/// `√2π`'s logarithm halved, the Gaussian's normalising constant per dimension.
const HALF_LN_2PI: f32 = 0.918_938_5;
/// What normalised observations and rewards are clipped to (CleanRL's wrappers).
const NORM_CLIP: f32 = 10.0;
/// The variance's epsilon of the normalisers (Gymnasium's wrappers).
const NORM_EPS: f64 = 1e-8;

/// A diagonal Gaussian policy with a state-independent log standard deviation (CleanRL's `actor_mean`,
/// `actor_logstd`).
#[derive(Module, Debug)]
pub struct GaussianPolicy {
    /// The mean's MLP, its last layer one output per action dimension.
    pub layers: Vec<Linear>,
    /// `log σ`, `[1, action dims]`, starting at 0.
    pub log_std: Param<Tensor<2>>,
    #[module(skip)]
    activation: Activation,
}

impl GaussianPolicy {
    /// The mean action `[N, dims]`.
    pub fn mean(&self, obs: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(obs, |x, (i, l)| {
            let y = l.forward(x);
            if i < last { self.activation.apply(y) } else { y }
        })
    }

    /// Log-density `[N]` of `actions` `[N, dims]` (summed over the dimensions) and the entropy `[N]`.
    pub fn log_prob_entropy(&self, obs: Tensor<2>, actions: Tensor<2>) -> (Tensor<1>, Tensor<1>) {
        let mean = self.mean(obs);
        let [n, a] = mean.dims();
        let log_std = self.log_std.val().expand([n, a]);
        let z = (actions - mean) / log_std.clone().exp();
        let lp = (z.powf_scalar(2.0).mul_scalar(-0.5) - log_std.clone()).sub_scalar(HALF_LN_2PI);
        let h = log_std.add_scalar(0.5 + HALF_LN_2PI);
        (lp.sum_dim(1).reshape([n]), h.sum_dim(1).reshape([n]))
    }
}

/// CleanRL's `RunningMeanStd`: mean and variance over every value seen, merged batch by batch (Chan et al.'s
/// parallel update), starting from a count of 1e-4.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningMeanStd {
    /// Mean per dimension.
    pub mean: Vec<f64>,
    /// Population variance per dimension.
    pub var: Vec<f64>,
    /// Values seen (plus the initial 1e-4).
    pub count: f64,
}

impl RunningMeanStd {
    /// Statistics of `dims` dimensions before any value.
    pub fn new(dims: usize) -> Self {
        Self { mean: vec![0.0; dims], var: vec![1.0; dims], count: 1e-4 }
    }

    /// Takes in the rows of `values` (`rows × dims`, row-major).
    pub fn update(&mut self, values: &[f32]) {
        let d = self.mean.len();
        let rows = values.len() / d;
        if rows == 0 {
            return;
        }
        let n = rows as f64;
        for j in 0..d {
            let col = values.iter().skip(j).step_by(d).map(|&v| v as f64);
            let batch_mean = col.clone().sum::<f64>() / n;
            let batch_var = col.map(|v| (v - batch_mean).powi(2)).sum::<f64>() / n;
            let delta = batch_mean - self.mean[j];
            let total = self.count + n;
            let m2 = self.var[j] * self.count + batch_var * n + delta * delta * self.count * n / total;
            self.mean[j] += delta * n / total;
            self.var[j] = m2 / total;
        }
        self.count += n;
    }

    /// `(mean, √(var + ε))` in f32, as actors and the learner both apply them.
    pub fn affine(&self) -> (Vec<f32>, Vec<f32>) {
        let std = self.var.iter().map(|v| (v + NORM_EPS).sqrt() as f32).collect();
        (self.mean.iter().map(|&m| m as f32).collect(), std)
    }

    fn to_tensors(&self, name: &str) -> Vec<NamedTensor> {
        let d = self.mean.len();
        let t = |field: &str, data: Vec<f32>, shape: Vec<usize>| NamedTensor {
            name: format!("{name}.{field}"),
            shape,
            data,
        };
        let all: Vec<f64> = self.mean.iter().chain(&self.var).copied().chain([self.count]).collect();
        vec![
            t("mean", self.mean.iter().map(|&v| v as f32).collect(), vec![d]),
            t("var", self.var.iter().map(|&v| v as f32).collect(), vec![d]),
            t("count", vec![self.count as f32], vec![1]),
            t("exact", f64_chunks(&all), vec![2 * d + 1, 3]),
        ]
    }

    fn read_tensors(&mut self, name: &str, values: &HashMap<String, NamedTensor>) -> Result<(), String> {
        let get = |field: &str, len: usize| -> Result<Vec<f64>, String> {
            let key = format!("{name}.{field}");
            let t = values.get(&key).ok_or_else(|| format!("parameter `{key}` is missing"))?;
            if t.data.len() != len {
                return Err(format!("parameter `{key}` has {} values, expected {len}", t.data.len()));
            }
            Ok(t.data.iter().map(|&v| v as f64).collect())
        };
        let d = self.mean.len();
        (self.mean, self.var, self.count) = (get("mean", d)?, get("var", d)?, get("count", 1)?[0]);
        // The f64 statistics themselves, where the checkpoint has them (the f32 copies above are for reading).
        if let Some(t) = values.get(&format!("{name}.exact")) {
            let all = chunks_f64(&t.data)
                .filter(|v| v.len() == 2 * d + 1)
                .ok_or_else(|| format!("parameter `{name}.exact` does not hold {} statistics", 2 * d + 1))?;
            self.mean = all[..d].to_vec();
            self.var = all[d..2 * d].to_vec();
            self.count = all[2 * d];
        }
        Ok(())
    }
}

/// f64 values as f32 tensor elements without loss: each value's 64 bits as three integers below 2²² (exact in f32).
fn f64_chunks(values: &[f64]) -> Vec<f32> {
    values
        .iter()
        .flat_map(|v| {
            let b = v.to_bits();
            [(b >> 44) as f32, ((b >> 22) & 0x3f_ffff) as f32, (b & 0x3f_ffff) as f32]
        })
        .collect()
}

/// The values [`f64_chunks`] wrote; `None` when `chunks` are not such triples.
fn chunks_f64(chunks: &[f32]) -> Option<Vec<f64>> {
    if !chunks.len().is_multiple_of(3) {
        return None;
    }
    chunks
        .chunks(3)
        .map(|c| {
            let ok = c.iter().all(|&x| x >= 0.0 && x < (1u64 << 22) as f32 && x.fract() == 0.0);
            ok.then(|| f64::from_bits(((c[0] as u64) << 44) | ((c[1] as u64) << 22) | c[2] as u64))
        })
        .collect()
}

/// CleanRL's reward scaling (Gymnasium's `NormalizeReward`): the discounted reward sum (reset by a termination),
/// its running variance, and rewards divided by that variance's square root, then clipped to ±10. Kept per episode:
/// a new episode starts its sum at 0 (Gymnasium's wrapper carries an env's sum into its next episode after a time
/// limit, and the last reward of a terminated one).
#[derive(Debug)]
pub struct RewardScale {
    rms: RunningMeanStd,
    gamma: f64,
    /// The discounted sum of the episodes in flight, by episode index.
    running: HashMap<u64, f64>,
}

impl RewardScale {
    /// Nothing seen yet, with discount `gamma`.
    pub fn new(gamma: f64) -> Self {
        Self { rms: RunningMeanStd::new(1), gamma, running: HashMap::new() }
    }

    /// Scales one episode fragment's rewards in time order (the fragments of an episode in turn).
    pub fn scale(&mut self, episode: u64, rewards: &[f32], terminated: &[bool], truncated: &[bool]) -> Vec<f32> {
        let mut ret = self.running.remove(&episode).unwrap_or(0.0);
        let mut out = Vec::with_capacity(rewards.len());
        for t in 0..rewards.len() {
            ret = ret * self.gamma * f64::from(u8::from(!terminated[t])) + rewards[t] as f64;
            self.rms.update(&[ret as f32]);
            let scaled = rewards[t] as f64 / (self.rms.var[0] + NORM_EPS).sqrt();
            out.push((scaled as f32).clamp(-NORM_CLIP, NORM_CLIP));
        }
        let ended = terminated.last().copied().unwrap_or(false) || truncated.last().copied().unwrap_or(false);
        if !ended {
            self.running.insert(episode, ret);
        }
        out
    }

    /// Takes up again an episode that was running when the run was saved: its discounted sum from its rewards so
    /// far (the statistics already hold them).
    pub fn resume(&mut self, episode: u64, rewards: &[f32], terminated: &[bool]) {
        let ret = rewards
            .iter()
            .zip(terminated)
            .fold(0.0, |ret, (&r, &term)| ret * self.gamma * f64::from(u8::from(!term)) + r as f64);
        self.running.insert(episode, ret);
    }
}

/// The policy and the value network, trained as one module (one optimiser group, one gradient clip).
#[derive(Module, Debug)]
pub struct PpoNet {
    /// The policy over bins: an MLP torso with one head per action dimension.
    pub policy: Option<MlpPolicy>,
    /// The Gaussian policy.
    pub gaussian: Option<GaussianPolicy>,
    /// The value network: an MLP ending in one output.
    pub value: Vec<Linear>,
    #[module(skip)]
    activation: Activation,
}

impl PpoNet {
    fn values(&self, obs: Tensor<2>) -> Tensor<1> {
        let n = obs.dims()[0];
        let last = self.value.len() - 1;
        let mut x = obs;
        for (i, l) in self.value.iter().enumerate() {
            x = l.forward(x);
            if i < last {
                x = self.activation.apply(x);
            }
        }
        x.reshape([n])
    }

    /// Summed log-probability `[N]` of the taken actions over the action dimensions, their summed entropy `[N]`
    /// and the heads' regulariser.
    fn log_prob_entropy(&self, obs: Tensor<2>, taken: &Taken) -> (Tensor<1>, Tensor<1>, Option<Tensor<1>>) {
        match (taken, &self.policy, &self.gaussian) {
            (Taken::Actions(actions), _, Some(g)) => {
                let (lp, h) = g.log_prob_entropy(obs, actions.clone());
                (lp, h, None)
            }
            (Taken::Bins(targets), Some(policy), _) => {
                let features = policy.features(obs);
                let (mut lp, mut h, mut reg): (Option<Tensor<1>>, Option<Tensor<1>>, Option<Tensor<1>>) =
                    (None, None, None);
                for (i, head) in policy.heads.iter().enumerate() {
                    let out = head.forward(features.clone());
                    let rows = targets.dims()[0];
                    let t = targets.clone().narrow(1, i, 1).reshape([rows]);
                    let add = |acc: Option<Tensor<1>>, x: Tensor<1>| Some(acc.map_or(x.clone(), |a| a + x));
                    lp = add(lp, log_prob(out.logits.clone(), t));
                    h = add(h, entropy(out.logits));
                    if let Some(r) = out.regularizer {
                        reg = add(reg, r);
                    }
                }
                (lp.expect("one head at least"), h.expect("one head at least"), reg)
            }
            _ => unreachable!("a rollout's actions match the policy that made them"),
        }
    }
}

/// The actions of a minibatch as the policy takes them: bins per head, or the Gaussian's samples.
pub enum Taken {
    /// Bin indices `[N, heads]`.
    Bins(Tensor<2, Int>),
    /// Continuous samples `[N, dims]`.
    Actions(Tensor<2>),
}

/// The current round's steps with what the acting policy made of them, and the minibatch order.
#[derive(Debug, Default)]
pub struct Rollout {
    obs: Vec<f32>,
    /// Bins per head (bins) or the samples (Gaussian), per step.
    targets: Vec<i64>,
    actions: Vec<f32>,
    log_probs: Vec<f32>,
    values: Vec<f32>,
    advantages: Vec<f32>,
    returns: Vec<f32>,
    /// The round's raw observations, for the observation statistics (taken by the round's first update).
    raw_obs: Mutex<Vec<f32>>,
    /// Whether an update has read this round (the next insert starts a new one).
    read: AtomicBool,
    /// This pass's order of the steps and where the next minibatch starts in it.
    order: Mutex<Vec<usize>>,
    cursor: AtomicUsize,
}

impl Rollout {
    fn len(&self) -> usize {
        self.returns.len()
    }
}

/// One minibatch.
pub struct PpoBatch {
    obs: Tensor<2>,
    taken: Taken,
    log_probs: Tensor<1>,
    values: Tensor<1>,
    advantages: Tensor<1>,
    returns: Tensor<1>,
    old_log_probs: Vec<f32>,
    /// The round's raw observations, with its first minibatch.
    raw_obs: Vec<f32>,
    /// How much of the variance of the round's returns its values explain, `1 − Var(returns − values) / Var(returns)`.
    explained_variance: f64,
}

/// PPO with any head, or a Gaussian, as the policy (`agent = "ppo"`, online only).
pub struct Ppo {
    net: PpoNet,
    config: PpoConfig,
    coding: ActionCoding,
    spec: DataSpec,
    /// Continuous action bounds (Gaussian policies).
    bounds: (Vec<f32>, Vec<f32>),
    obs_norm: Option<RunningMeanStd>,
    reward_scale: Option<Mutex<RewardScale>>,
}

impl Ppo {
    /// The Gaussian policy, when the agent has one.
    pub fn gaussian(&self) -> Option<&GaussianPolicy> {
        self.net.gaussian.as_ref()
    }

    /// Normalised observations as the acting policy saw them.
    fn push_obs(&self, raw: &[f32], out: &mut Vec<f32>, affine: &Option<(Vec<f32>, Vec<f32>)>) {
        match affine {
            Some((m, s)) => crate::bc::push_normalized_obs(raw, m, s, Some(NORM_CLIP), out),
            None => self.spec.push_normalized(raw, out),
        }
    }

    fn affine(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        self.obs_norm.as_ref().map(RunningMeanStd::affine)
    }
}

impl Trainable for Ppo {
    const KIND: &'static str = "ppo";
    type Config = PpoConfig;
    type Spec = DataSpec;
    type Data = Rollout;
    type Batch = PpoBatch;

    fn new(config: &PpoConfig, spec: &DataSpec, rng: &mut dyn RngCore, device: &Device) -> anyhow::Result<Self> {
        let coding = ActionCoding::new(&spec.action_space, config.bins, config.bin_margin, None)?;
        let (policy, gaussian, bounds) = match (config.distribution, &spec.action_space) {
            (Distribution::Bins, _) => {
                let p = MlpPolicy::with_torso(
                    spec.obs_dim,
                    &config.hidden,
                    &coding,
                    &config.head,
                    config.activation,
                    config.orthogonal_init,
                    rng,
                    device,
                )?;
                (Some(p), None, (Vec::new(), Vec::new()))
            }
            (Distribution::Gaussian, Space::Box { low, high, shape, .. }) => {
                let dims: usize = shape.iter().product();
                let layers = mlp_layers_init(
                    spec.obs_dim,
                    &config.hidden,
                    Some((dims, 0.01)),
                    config.orthogonal_init,
                    rng,
                    device,
                );
                let log_std = Param::from_tensor(Tensor::zeros([1, dims], device));
                let g = GaussianPolicy { layers, log_std, activation: config.activation };
                let b = (low.clone(), high.clone());
                (None, Some(g), b)
            }
            (Distribution::Gaussian, other) => {
                bail!("`ppo.distribution` = \"gaussian\" needs continuous (Box) actions; the env's are {other}")
            }
        };
        let value = mlp_layers_init(spec.obs_dim, &config.hidden, Some((1, 1.0)), config.orthogonal_init, rng, device);
        let reward_scale = config.normalize_rewards.then(|| Mutex::new(RewardScale::new(config.gamma as f64)));
        Ok(Ppo {
            net: PpoNet { policy, gaussian, value, activation: config.activation },
            config: config.clone(),
            coding,
            spec: spec.clone(),
            bounds,
            obs_norm: config.normalize_observations.then(|| RunningMeanStd::new(spec.obs_dim)),
            reward_scale,
        })
    }

    /// The next minibatch of the current pass over the round (`batch_size` is not used: a minibatch is the round's
    /// steps divided by `ppo.minibatches`); a new pass reshuffles the steps with `rng`.
    fn sample(&self, data: &Rollout, _batch_size: usize, rng: &mut dyn RngCore, device: &Device) -> PpoBatch {
        data.read.store(true, Ordering::Relaxed);
        let n = data.len();
        let size = (n / self.config.minibatches).max(1);
        let mut order = data.order.lock().unwrap_or_else(|e| e.into_inner());
        if order.len() != n || data.cursor.load(Ordering::Relaxed) + size > n {
            *order = (0..n).collect();
            order.shuffle(rng);
            data.cursor.store(0, Ordering::Relaxed);
        }
        let start = data.cursor.load(Ordering::Relaxed);
        let idx = &order[start..start + size];
        data.cursor.store(start + size, Ordering::Relaxed);
        let d = self.spec.obs_dim;
        let obs: Vec<f32> = idx.iter().flat_map(|&i| data.obs[i * d..(i + 1) * d].iter().copied()).collect();
        let taken = if self.net.gaussian.is_some() {
            let a = self.bounds.0.len();
            let actions: Vec<f32> =
                idx.iter().flat_map(|&i| data.actions[i * a..(i + 1) * a].iter().copied()).collect();
            Taken::Actions(Tensor::from_data(TensorData::new(actions, [size, a]), device))
        } else {
            let heads = self.coding.heads();
            let targets: Vec<i64> =
                idx.iter().flat_map(|&i| data.targets[i * heads..(i + 1) * heads].iter().copied()).collect();
            Taken::Bins(Tensor::from_data(TensorData::new(targets, [size, heads]), device))
        };
        let pick = |v: &[f32]| -> Vec<f32> { idx.iter().map(|&i| v[i]).collect() };
        let mut adv = pick(&data.advantages);
        if self.config.normalize_advantages && adv.len() > 1 {
            let mean = adv.iter().sum::<f32>() / adv.len() as f32;
            let var = adv.iter().map(|a| (a - mean).powi(2)).sum::<f32>() / (adv.len() - 1) as f32;
            adv.iter_mut().for_each(|a| *a = (*a - mean) / (var.sqrt() + 1e-8));
        }
        let t1 = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v, [size]), device);
        let old_log_probs = pick(&data.log_probs);
        let raw_obs = std::mem::take(&mut *data.raw_obs.lock().unwrap_or_else(|e| e.into_inner()));
        let explained_variance = explained_variance(&data.values, &data.returns);
        PpoBatch {
            obs: Tensor::from_data(TensorData::new(obs, [size, d]), device),
            taken,
            log_probs: t1(old_log_probs.clone()),
            values: t1(pick(&data.values)),
            advantages: t1(adv),
            returns: t1(pick(&data.returns)),
            old_log_probs,
            raw_obs,
            explained_variance,
        }
    }

    fn train_step(&mut self, b: PpoBatch, opt: &mut Optimizers) -> anyhow::Result<Scalars> {
        // The round's observations join the statistics now, after the round was acted and inserted with the old
        // ones; the policy broadcast after this round's updates carries them.
        if let Some(norm) = self.obs_norm.as_mut() {
            norm.update(&b.raw_obs);
        }
        let c = &self.config;
        let (log_probs, entropies, reg) = self.net.log_prob_entropy(b.obs.clone(), &b.taken);
        let policy_loss = clipped_surrogate(log_probs.clone(), b.log_probs, b.advantages, c.clip);
        let v_loss = value_loss(self.net.values(b.obs), b.values, b.returns, c.clip_value.then_some(c.clip));
        let entropy = entropies.mean();
        let mut loss = policy_loss.clone() + v_loss.clone() * c.value_coef - entropy.clone() * c.entropy_coef;
        if let Some(r) = reg {
            loss = loss + r;
        }
        let new_log_probs = log_probs.detach();
        let (loss, read) = opt.step_reading(
            "ppo",
            &mut self.net,
            loss,
            vec![policy_loss.detach(), v_loss.detach(), entropy.detach()],
        )?;
        let (kl, clip_fraction) = approx_kl_and_clip_fraction(&to_host(new_log_probs), &b.old_log_probs, c.clip);
        Ok(vec![
            ("loss", loss),
            ("policy_loss", read[0]),
            ("value_loss", read[1]),
            ("entropy", read[2]),
            ("approx_kl", kl),
            ("clip_fraction", clip_fraction),
            ("explained_variance", b.explained_variance),
        ])
    }

    /// The networks' parameters, and the normalisers' statistics (`obs_norm.*`, `reward_norm.*`) when enabled.
    fn params(&self) -> Vec<NamedTensor> {
        let mut all = named_params(&self.net);
        if let Some(n) = &self.obs_norm {
            all.extend(n.to_tensors("obs_norm"));
        }
        if let Some(r) = &self.reward_scale {
            all.extend(r.lock().unwrap_or_else(|e| e.into_inner()).rms.to_tensors("reward_norm"));
        }
        all
    }

    fn load_params(mut self, values: &HashMap<String, NamedTensor>) -> Result<Self, String> {
        self.net = load_params(self.net, values)?;
        if let Some(n) = self.obs_norm.as_mut() {
            n.read_tensors("obs_norm", values)?;
        }
        if let Some(r) = &self.reward_scale {
            r.lock().unwrap_or_else(|e| e.into_inner()).rms.read_tensors("reward_norm", values)?;
        }
        Ok(self)
    }

    /// The action PMFs at a minibatch of the first round (smoothness over all its rows, images of the first 4);
    /// none for a Gaussian policy.
    fn probe_pmfs(&self, probe: &PpoBatch) -> anyhow::Result<Option<frl_learner::ActionPmfs>> {
        let (Some(policy), Taken::Bins(targets)) = (&self.net.policy, &probe.taken) else { return Ok(None) };
        let title = format!("ppo {}", self.config.head.slug());
        Ok(Some(crate::bc::probe_pmfs(policy, &self.coding, &probe.obs, targets, 4, title)?))
    }
}

impl Agent for Ppo {
    const ONLINE_ONLY: bool = true;

    fn prepare(&self, _episodes: &EpisodeBatch) -> anyhow::Result<Rollout> {
        bail!("`ppo` learns on-policy from its own actors: give the job an [online] section")
    }

    fn policy(&self, acting: &Acting) -> Arc<dyn PolicyFactory> {
        if let Some(g) = &self.net.gaussian {
            let (mean, std) = self.affine().unwrap_or_else(|| (self.spec.obs_mean.clone(), self.spec.obs_std.clone()));
            return Arc::new(GaussianFactory {
                net: Arc::new(g.valid()),
                obs_mean: Arc::new(mean),
                obs_std: Arc::new(std),
                obs_clip: self.obs_norm.is_some().then_some(NORM_CLIP),
                low: Arc::new(self.bounds.0.clone()),
                high: Arc::new(self.bounds.1.clone()),
                sample: acting.decode == Decode::Sample,
            });
        }
        let policy = self.net.policy.as_ref().expect("a policy over bins or a Gaussian");
        let factory = MlpPolicyFactory::new(policy.valid(), self.coding.clone(), &self.spec, acting, "ppo");
        Arc::new(match self.affine() {
            Some((mean, std)) => factory.with_obs_normalizer(mean, std, NORM_CLIP),
            None => factory,
        })
    }
}

/// Builds [`GaussianActor`]s sharing one inference copy of a [`GaussianPolicy`].
#[derive(Clone)]
pub struct GaussianFactory {
    net: Arc<GaussianPolicy>,
    obs_mean: Arc<Vec<f32>>,
    obs_std: Arc<Vec<f32>>,
    obs_clip: Option<f32>,
    low: Arc<Vec<f32>>,
    high: Arc<Vec<f32>>,
    sample: bool,
}

impl PolicyFactory for GaussianFactory {
    fn make(&self) -> Box<dyn Policy> {
        Box::new(GaussianActor { device: self.net.log_std.val().device(), shared: self.clone() })
    }

    fn describe(&self) -> String {
        format!("ppo(gaussian, {})", if self.sample { "sampled, clipped to the bounds" } else { "mean" })
    }
}

/// Acts with the Gaussian's mean or a sample of it (recorded as drawn; the env receives it clipped to the bounds).
pub struct GaussianActor {
    shared: GaussianFactory,
    device: Device,
}

impl Policy for GaussianActor {
    fn act(&mut self, history: &History<'_>, rng: &mut dyn RngCore) -> Action {
        use rand_distr::{Distribution as _, StandardNormal};
        let s = &self.shared;
        let mut obs = Vec::new();
        crate::bc::push_normalized_obs(history.current(), &s.obs_mean, &s.obs_std, s.obs_clip, &mut obs);
        let n = obs.len();
        let mean = to_host(s.net.mean(Tensor::from_data(TensorData::new(obs, [1, n]), &self.device)).reshape([-1]));
        if !s.sample {
            return Action::Continuous(mean);
        }
        let log_std = to_host(s.net.log_std.val().reshape([-1]));
        let action = mean
            .iter()
            .zip(&log_std)
            .map(|(m, ls)| {
                let z: f64 = StandardNormal.sample(&mut *rng);
                m + ls.exp() * z as f32
            })
            .collect();
        Action::Continuous(action)
    }

    fn env_action<'a>(&self, action: &'a Action) -> std::borrow::Cow<'a, Action> {
        match action {
            Action::Continuous(a) => std::borrow::Cow::Owned(Action::Continuous(
                a.iter()
                    .zip(self.shared.low.iter().zip(self.shared.high.iter()))
                    .map(|(x, (l, h))| x.clamp(*l, *h))
                    .collect(),
            )),
            other => std::borrow::Cow::Borrowed(other),
        }
    }

    /// It reads the current observation only, so actors may switch it to newer weights inside an episode.
    fn markov(&self) -> bool {
        true
    }
}

impl OnlineAgent for Ppo {
    fn replay(&self, _capacity: usize) -> anyhow::Result<Rollout> {
        Ok(Rollout::default())
    }

    /// Adds one env slot's rollout fragment: its steps with the acting policy's log-probabilities and values (the
    /// learner's weights and statistics are the acting ones until the round's updates) and their GAE advantages
    /// and returns (from rewards scaled as `normalize_rewards` says). The first fragment after an update starts a
    /// new round.
    fn insert(&self, data: &mut Rollout, episodes: &EpisodeBatch) -> anyhow::Result<()> {
        if data.read.load(Ordering::Relaxed) {
            *data = Rollout::default();
        }
        let device = self.net.value[0].weight.val().device();
        let (d, heads) = (self.spec.obs_dim, self.coding.heads());
        let gaussian = self.net.gaussian.is_some();
        let affine = self.affine();
        let mut steps = RolloutSteps::default();
        let (mut obs, mut targets, mut actions, mut raw) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ep in episodes.iter() {
            let n = ep.len();
            if n == 0 {
                continue;
            }
            let mut all = Vec::with_capacity((n + 1) * d);
            for t in 0..=n {
                self.push_obs(&ep.observations[t * d..(t + 1) * d], &mut all, &affine);
            }
            if self.obs_norm.is_some() {
                raw.extend_from_slice(&ep.observations[..n * d]);
            }
            let x = Tensor::<2>::from_data(TensorData::new(all.clone(), [n + 1, d]), &device);
            let v = to_host(self.net.values(x));
            let a = episodes.act_dim;
            if gaussian {
                actions.extend_from_slice(&ep.actions[..n * a]);
            } else {
                for t in 0..n {
                    self.coding
                        .push_targets(&ep.actions[t * a..(t + 1) * a], &mut targets)
                        .context("an action of the rollout")?;
                }
            }
            steps.values.extend_from_slice(&v[..n]);
            steps.next_values.extend_from_slice(&v[1..]);
            match &self.reward_scale {
                Some(r) => {
                    let mut r = r.lock().unwrap_or_else(|e| e.into_inner());
                    steps.rewards.extend(r.scale(ep.tag.index, ep.rewards, ep.terminated, ep.truncated));
                }
                None => steps.rewards.extend_from_slice(ep.rewards),
            }
            if self.config.bootstrap_time_limits {
                steps.terminated.extend_from_slice(ep.terminated);
            } else {
                steps.terminated.extend(ep.terminated.iter().zip(ep.truncated).map(|(&a, &b)| a || b));
            }
            steps.truncated.extend_from_slice(ep.truncated);
            obs.extend_from_slice(&all[..n * d]);
        }
        let n = steps.rewards.len();
        if n == 0 {
            return Ok(());
        }
        let x = Tensor::<2>::from_data(TensorData::new(obs.clone(), [n, d]), &device);
        let taken = if gaussian {
            let a = actions.len() / n;
            Taken::Actions(Tensor::from_data(TensorData::new(actions.clone(), [n, a]), &device))
        } else {
            Taken::Bins(Tensor::from_data(TensorData::new(targets.clone(), [n, heads]), &device))
        };
        let (lp, _, _) = self.net.log_prob_entropy(x, &taken);
        let (advantages, returns) = gae(&steps, self.config.gamma, self.config.gae_lambda);
        data.obs.extend(obs);
        data.targets.extend(targets);
        data.actions.extend(actions);
        data.log_probs.extend(to_host(lp));
        data.values.extend(steps.values);
        data.advantages.extend(advantages);
        data.returns.extend(returns);
        data.raw_obs.get_mut().unwrap_or_else(|e| e.into_inner()).extend(raw);
        Ok(())
    }

    fn stored(data: &Rollout) -> usize {
        data.len()
    }

    fn explore(&self, _env_steps: u64) -> Arc<dyn PolicyFactory> {
        self.policy(&Acting { decode: Decode::Sample, temperature: 1.0, target_return: None })
    }

    fn takes_fragments(&self) -> bool {
        true
    }

    fn resume_episode(&self, episode: &frl_dataset::episodes::EpisodeRef<'_>) {
        if let Some(r) = &self.reward_scale {
            r.lock().unwrap_or_else(|e| e.into_inner()).resume(episode.tag.index, episode.rewards, episode.terminated);
        }
    }

    fn on_policy(&self) -> Option<OnPolicy> {
        Some(OnPolicy {
            rollout_steps: self.config.rollout_steps,
            updates: (self.config.epochs * self.config.minibatches) as u64,
        })
    }
}
