//! Proximal Policy Optimization's arithmetic (Schulman et al. 2017), for policies that are any head over action
//! bins: generalised advantage estimation with time limits bootstrapped, the clipped surrogate and value losses, and
//! a categorical policy's log-probabilities and entropy from a head's logits. The agent on the online loop is built
//! on these.

use crate::bc::{MlpPolicy, MlpPolicyFactory};
use crate::common::{ActionCoding, mlp_layers};
use anyhow::{Context, bail};
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::log_softmax;
use burn::tensor::activation::relu;
use burn::tensor::{Device, TensorData};
use burn::tensor::{Int, Tensor};
use frl_dataset::episodes::EpisodeBatch;
use frl_envs::PolicyFactory;
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
// and a value network, trained on the online loop's rounds.

/// The `[ppo]` section: CleanRL's `ppo.py` defaults where they apply (rollouts of 128 steps, 4 epochs of 4
/// minibatches, γ 0.99, λ 0.95, clip 0.2, entropy 0.01, value 0.5 with clipping), with the policy a head over bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Hidden layer sizes of the policy and of the value network (ReLU after each).
    pub hidden: Vec<usize>,
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
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            hidden: vec![64, 64],
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
        Some(&self.head)
    }
}

/// The policy and the value network, trained as one module (one optimiser group, one gradient clip).
#[derive(Module, Debug)]
pub struct PpoNet {
    /// The policy: an MLP torso with one head per action dimension.
    pub policy: MlpPolicy,
    /// The value network: an MLP ending in one output.
    pub value: Vec<Linear>,
}

impl PpoNet {
    fn values(&self, obs: Tensor<2>) -> Tensor<1> {
        let n = obs.dims()[0];
        let last = self.value.len() - 1;
        let mut x = obs;
        for (i, l) in self.value.iter().enumerate() {
            x = l.forward(x);
            if i < last {
                x = relu(x);
            }
        }
        x.reshape([n])
    }

    /// Summed log-probability `[N]` of the taken bins `[N, heads]` over the heads, their summed entropy `[N]` and
    /// the heads' regulariser.
    fn log_prob_entropy(&self, obs: Tensor<2>, targets: Tensor<2, Int>) -> (Tensor<1>, Tensor<1>, Option<Tensor<1>>) {
        let features = self.policy.features(obs);
        let (mut lp, mut h, mut reg): (Option<Tensor<1>>, Option<Tensor<1>>, Option<Tensor<1>>) = (None, None, None);
        for (i, head) in self.policy.heads.iter().enumerate() {
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
}

/// The current round's steps with what the acting policy made of them, and the minibatch order.
#[derive(Debug, Default)]
pub struct Rollout {
    obs: Vec<f32>,
    targets: Vec<i64>,
    log_probs: Vec<f32>,
    values: Vec<f32>,
    advantages: Vec<f32>,
    returns: Vec<f32>,
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
    targets: Tensor<2, Int>,
    log_probs: Tensor<1>,
    values: Tensor<1>,
    advantages: Tensor<1>,
    returns: Tensor<1>,
    old_log_probs: Vec<f32>,
}

/// PPO with any head as the policy (`agent = "ppo"`, online only).
pub struct Ppo {
    net: PpoNet,
    config: PpoConfig,
    coding: ActionCoding,
    spec: DataSpec,
}

impl Trainable for Ppo {
    const KIND: &'static str = "ppo";
    type Config = PpoConfig;
    type Spec = DataSpec;
    type Data = Rollout;
    type Batch = PpoBatch;

    fn new(config: &PpoConfig, spec: &DataSpec, rng: &mut dyn RngCore, device: &Device) -> anyhow::Result<Self> {
        let coding = ActionCoding::new(&spec.action_space, config.bins, config.bin_margin, None)?;
        let policy = MlpPolicy::new(spec.obs_dim, &config.hidden, &coding, &config.head, rng, device)?;
        let value = mlp_layers(spec.obs_dim, &config.hidden, Some(1), rng, device);
        Ok(Ppo { net: PpoNet { policy, value }, config: config.clone(), coding, spec: spec.clone() })
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
        let (d, heads) = (self.spec.obs_dim, self.coding.heads());
        let obs: Vec<f32> = idx.iter().flat_map(|&i| data.obs[i * d..(i + 1) * d].iter().copied()).collect();
        let targets: Vec<i64> =
            idx.iter().flat_map(|&i| data.targets[i * heads..(i + 1) * heads].iter().copied()).collect();
        let pick = |v: &[f32]| -> Vec<f32> { idx.iter().map(|&i| v[i]).collect() };
        let mut adv = pick(&data.advantages);
        if self.config.normalize_advantages && adv.len() > 1 {
            let mean = adv.iter().sum::<f32>() / adv.len() as f32;
            let var = adv.iter().map(|a| (a - mean).powi(2)).sum::<f32>() / (adv.len() - 1) as f32;
            adv.iter_mut().for_each(|a| *a = (*a - mean) / (var.sqrt() + 1e-8));
        }
        let t1 = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v, [size]), device);
        let old_log_probs = pick(&data.log_probs);
        PpoBatch {
            obs: Tensor::from_data(TensorData::new(obs, [size, d]), device),
            targets: Tensor::from_data(TensorData::new(targets, [size, heads]), device),
            log_probs: t1(old_log_probs.clone()),
            values: t1(pick(&data.values)),
            advantages: t1(adv),
            returns: t1(pick(&data.returns)),
            old_log_probs,
        }
    }

    fn train_step(&mut self, b: PpoBatch, opt: &mut Optimizers) -> anyhow::Result<Scalars> {
        let c = &self.config;
        let (log_probs, entropies, reg) = self.net.log_prob_entropy(b.obs.clone(), b.targets);
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
        ])
    }

    fn params(&self) -> Vec<NamedTensor> {
        named_params(&self.net)
    }

    fn load_params(mut self, values: &HashMap<String, NamedTensor>) -> Result<Self, String> {
        self.net = load_params(self.net, values)?;
        Ok(self)
    }

    /// The action PMFs at a minibatch of the first round (smoothness over all its rows, images of the first 4).
    fn probe_pmfs(&self, probe: &PpoBatch) -> anyhow::Result<Option<frl_learner::ActionPmfs>> {
        let title = format!("ppo {}", self.config.head.slug());
        Ok(Some(crate::bc::probe_pmfs(&self.net.policy, &self.coding, &probe.obs, &probe.targets, 4, title)?))
    }
}

impl Agent for Ppo {
    const ONLINE_ONLY: bool = true;

    fn prepare(&self, _episodes: &EpisodeBatch) -> anyhow::Result<Rollout> {
        bail!("`ppo` learns on-policy from its own actors: give the job an [online] section")
    }

    fn policy(&self, acting: &Acting) -> Arc<dyn PolicyFactory> {
        Arc::new(MlpPolicyFactory::new(self.net.policy.valid(), self.coding.clone(), &self.spec, acting, "ppo"))
    }
}

impl OnlineAgent for Ppo {
    fn replay(&self, _capacity: usize) -> anyhow::Result<Rollout> {
        Ok(Rollout::default())
    }

    /// Adds one env slot's rollout fragment: its steps with the acting policy's log-probabilities and values (the
    /// learner's weights are the acting ones until the round's updates) and their GAE advantages and returns. The
    /// first fragment after an update starts a new round.
    fn insert(&self, data: &mut Rollout, episodes: &EpisodeBatch) -> anyhow::Result<()> {
        if data.read.load(Ordering::Relaxed) {
            *data = Rollout::default();
        }
        let device = self.net.policy.heads[0].devices()[0].clone();
        let (d, heads) = (self.spec.obs_dim, self.coding.heads());
        let mut steps = RolloutSteps::default();
        let (mut obs, mut targets) = (Vec::new(), Vec::new());
        for ep in episodes.iter() {
            let n = ep.len();
            if n == 0 {
                continue;
            }
            let mut all = Vec::with_capacity((n + 1) * d);
            for t in 0..=n {
                self.spec.push_normalized(&ep.observations[t * d..(t + 1) * d], &mut all);
            }
            let x = Tensor::<2>::from_data(TensorData::new(all.clone(), [n + 1, d]), &device);
            let v = to_host(self.net.values(x));
            let a = episodes.act_dim;
            let mut t_ep = Vec::with_capacity(n * heads);
            for t in 0..n {
                self.coding
                    .push_targets(&ep.actions[t * a..(t + 1) * a], &mut t_ep)
                    .context("an action of the rollout")?;
            }
            steps.values.extend_from_slice(&v[..n]);
            steps.next_values.extend_from_slice(&v[1..]);
            steps.rewards.extend_from_slice(ep.rewards);
            steps.terminated.extend_from_slice(ep.terminated);
            steps.truncated.extend_from_slice(ep.truncated);
            obs.extend_from_slice(&all[..n * d]);
            targets.extend(t_ep);
        }
        let n = steps.rewards.len();
        if n == 0 {
            return Ok(());
        }
        let x = Tensor::<2>::from_data(TensorData::new(obs.clone(), [n, d]), &device);
        let t = Tensor::<2, Int>::from_data(TensorData::new(targets.clone(), [n, heads]), &device);
        let (lp, _, _) = self.net.log_prob_entropy(x, t);
        let (advantages, returns) = gae(&steps, self.config.gamma, self.config.gae_lambda);
        data.obs.extend(obs);
        data.targets.extend(targets);
        data.log_probs.extend(to_host(lp));
        data.values.extend(steps.values);
        data.advantages.extend(advantages);
        data.returns.extend(returns);
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

    fn on_policy(&self) -> Option<OnPolicy> {
        Some(OnPolicy {
            rollout_steps: self.config.rollout_steps,
            updates: (self.config.epochs * self.config.minibatches) as u64,
        })
    }
}
