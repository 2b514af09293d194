//! Implicit Q-Learning (Kostrikov, Nair & Levine 2021, "Offline Reinforcement Learning with Implicit Q-Learning")
//! with a head as the policy: twin Q networks with Polyak-averaged targets, a state-value network trained by
//! expectile regression towards the targets' `min(Q1, Q2)`, and an actor trained by advantage-weighted likelihood
//! `exp(β·(Q − V))` (clipped at `max_weight`), where the likelihood is the actor head's log-PMF of the dataset
//! action's bin: any head (linear, Fourier, mixture) is the policy. The critics read the action as the DT's action
//! token does (one-hot for discrete actions, scaled to `[-1, 1]` for continuous ones), so the same code serves both.
//!
//! One step, in the order of the reference implementation: value (towards the target critics), actor (advantages
//! from the updated value), critics (bootstrapping from the updated value), then the Polyak update of the targets.

use std::collections::HashMap;
use std::sync::Arc;

use crate::common::{ActionCoding, detached_copy, mlp_layers, polyak};
use anyhow::bail;
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use frl_envs::PolicyFactory;
use frl_heads::HeadConfig;
use frl_heads::binning::Permutation;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::bc::{BcBatch, BcData, MlpPolicy, MlpPolicyFactory, prepare_transitions, probe_pmfs};
use frl_dataset::episodes::EpisodeBatch;
use frl_learner::params::{NamedTensor, load_params, named_params, prefixed, section, update};
use frl_learner::{Acting, ActionPmfs, Agent, DataSpec, ModelConfig, Optimizers, Scalars, Trainable};

/// The `[iql]` section of a job file; defaults are the paper's (τ = 0.7, β = 3, discount 0.99, Polyak 0.005).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IqlConfig {
    /// Hidden layer sizes of every network.
    pub hidden: Vec<usize>,
    /// Bins per continuous action dimension (the actor's heads).
    pub bins: usize,
    /// Continuous actions are binned over their bounds widened by this fraction of the range on each side.
    pub bin_margin: f64,
    /// The actor's head.
    pub head: HeadConfig,
    /// Discrete action ids → head bin order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_permutation: Option<Permutation>,
    /// Discount `γ`.
    pub discount: f64,
    /// The value network's expectile `τ`.
    pub expectile: f64,
    /// Inverse temperature `β` of the advantage weights.
    pub beta: f64,
    /// Advantage weights are clipped at this.
    pub max_weight: f64,
    /// Polyak rate of the target critics.
    pub polyak: f64,
    /// Rewards are multiplied by this.
    pub reward_scale: f32,
    /// Steps summed in each bootstrapped return.
    pub n_step: usize,
}

impl Default for IqlConfig {
    fn default() -> Self {
        Self {
            hidden: vec![256, 256],
            bins: 64,
            bin_margin: 0.125,
            head: HeadConfig::Linear,
            action_permutation: None,
            discount: 0.99,
            expectile: 0.7,
            beta: 3.0,
            max_weight: 100.0,
            polyak: 0.005,
            reward_scale: 1.0,
            n_step: 1,
        }
    }
}

impl ModelConfig for IqlConfig {
    fn validate(&self) -> anyhow::Result<()> {
        super::bc::validate_policy_fields(&self.hidden, self.bins, self.bin_margin, &self.head)?;
        let unit = |field: &str, v: f64, lo_open: bool| {
            let ok = if lo_open { v > 0.0 && v < 1.0 } else { (0.0..=1.0).contains(&v) };
            if ok {
                Ok(())
            } else {
                Err(anyhow::anyhow!("`{field}` = {v}: must be in {}", if lo_open { "(0, 1)" } else { "[0, 1]" }))
            }
        };
        unit("discount", self.discount, false)?;
        unit("expectile", self.expectile, true)?;
        unit("polyak", self.polyak, false)?;
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            bail!("`beta` = {}: must be a number ≥ 0", self.beta);
        }
        if !(self.max_weight.is_finite() && self.max_weight > 0.0) {
            bail!("`max_weight` = {}: must be positive", self.max_weight);
        }
        if !(self.reward_scale.is_finite() && self.reward_scale > 0.0) {
            bail!("`reward_scale` = {}: must be positive", self.reward_scale);
        }
        if self.n_step == 0 {
            bail!("`n_step` must be at least 1");
        }
        Ok(())
    }

    fn head(&self) -> Option<&HeadConfig> {
        Some(&self.head)
    }
}

/// An MLP with a scalar output: `[N, d_in] → [N]`.
#[derive(Module, Debug)]
pub struct ScalarMlp {
    layers: Vec<Linear>,
}

impl ScalarMlp {
    fn new(d_in: usize, hidden: &[usize], rng: &mut dyn RngCore, device: &Device) -> Self {
        Self { layers: mlp_layers(d_in, hidden, Some(1), rng, device) }
    }

    /// The output per row.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<1> {
        let last = self.layers.len() - 1;
        let y = self.layers.iter().enumerate().fold(x, |x, (i, l)| {
            let y = l.forward(x);
            if i < last { relu(y) } else { y }
        });
        y.squeeze_dim::<1>(1)
    }
}

/// Twin Q networks over `[observation | action features]`.
#[derive(Module, Debug)]
pub struct Critic {
    q1: ScalarMlp,
    q2: ScalarMlp,
}

impl Critic {
    fn new(d_in: usize, hidden: &[usize], rng: &mut dyn RngCore, device: &Device) -> Self {
        Self { q1: ScalarMlp::new(d_in, hidden, rng, device), q2: ScalarMlp::new(d_in, hidden, rng, device) }
    }

    /// `(Q1, Q2)` per row.
    pub fn forward(&self, obs_act: Tensor<2>) -> (Tensor<1>, Tensor<1>) {
        (self.q1.forward(obs_act.clone()), self.q2.forward(obs_act))
    }
}

/// IQL's networks and what it needs to read data and act.
pub struct Iql {
    actor: MlpPolicy,
    critic: Critic,
    target: Critic,
    value: ScalarMlp,
    coding: ActionCoding,
    spec: DataSpec,
    config: IqlConfig,
}

/// The dataset as IQL samples it: `n`-step transitions, action bins and action features.
pub struct IqlData {
    bc: BcData,
    features: Vec<f32>,
}

/// One IQL batch.
pub struct IqlBatch {
    /// Observations and their action bins (the actor's part).
    pub bc: BcBatch,
    /// `[observation | action features]`, `[B, obs_dim + features]`.
    pub obs_act: Tensor<2>,
    /// Scaled `n`-step reward sums, `[B]`.
    pub rewards: Tensor<1>,
    /// Bootstrap discounts, `[B]`.
    pub discounts: Tensor<1>,
    /// Normalised observations `n` steps later, `[B, obs_dim]`.
    pub next_obs: Tensor<2>,
}

impl Trainable for Iql {
    const KIND: &'static str = "iql";
    type Config = IqlConfig;
    type Spec = DataSpec;
    type Data = IqlData;
    type Batch = IqlBatch;

    fn new(config: &IqlConfig, spec: &DataSpec, rng: &mut dyn RngCore, device: &Device) -> anyhow::Result<Self> {
        let coding =
            ActionCoding::new(&spec.action_space, config.bins, config.bin_margin, config.action_permutation.clone())?;
        let actor = MlpPolicy::new(spec.obs_dim, &config.hidden, &coding, &config.head, rng, device)?;
        let critic = Critic::new(spec.obs_dim + coding.feature_dim(), &config.hidden, rng, device);
        let value = ScalarMlp::new(spec.obs_dim, &config.hidden, rng, device);
        let target = detached_copy(&critic);
        Ok(Iql { actor, critic, target, value, coding, spec: spec.clone(), config: config.clone() })
    }

    fn sample(&self, data: &IqlData, batch_size: usize, rng: &mut dyn RngCore, device: &Device) -> IqlBatch {
        let t = &data.bc.transitions;
        let idx = t.indices(batch_size, rng);
        let (n, o, f, heads) = (idx.len(), self.spec.obs_dim, self.coding.feature_dim(), self.coding.heads());
        let b = t.gather(&idx);
        let mut obs_act = Vec::with_capacity(n * (o + f));
        for (row, &i) in idx.iter().enumerate() {
            obs_act.extend_from_slice(&b.obs[row * o..(row + 1) * o]);
            obs_act.extend_from_slice(&data.features[i * f..(i + 1) * f]);
        }
        let targets: Vec<i64> =
            idx.iter().flat_map(|&i| data.bc.targets[i * heads..(i + 1) * heads].to_vec()).collect();
        IqlBatch {
            bc: BcBatch {
                obs: Tensor::from_data(TensorData::new(b.obs, [n, o]), device),
                targets: Tensor::<2, Int>::from_data(TensorData::new(targets, [n, heads]), device),
            },
            obs_act: Tensor::from_data(TensorData::new(obs_act, [n, o + f]), device),
            rewards: Tensor::from_data(TensorData::new(b.rewards, [n]), device),
            discounts: Tensor::from_data(TensorData::new(b.discounts, [n]), device),
            next_obs: Tensor::from_data(TensorData::new(b.next_obs, [n, o]), device),
        }
    }

    fn train_step(&mut self, b: IqlBatch, opt: &mut Optimizers) -> anyhow::Result<Scalars> {
        let c = &self.config;
        let (t1, t2) = self.target.forward(b.obs_act.clone());
        let q_target = t1.min_pair(t2).detach();

        // Value: expectile regression, weight τ above the target and 1 − τ below it.
        let v = self.value.forward(b.bc.obs.clone());
        let diff = q_target.clone() - v;
        let below = diff.clone().lower_elem(0.0).float();
        let weight = below.mul_scalar(1.0 - 2.0 * c.expectile).add_scalar(c.expectile);
        let value_loss = (weight * diff.powi_scalar(2)).mean();
        let value_loss = opt.step("value", &mut self.value, value_loss)?;

        // Actor: the dataset action's likelihood weighted by exp(β·advantage), clipped. Its logged values are read
        // with the actor's loss, in the group's one read.
        let advantage = q_target - self.value.forward(b.bc.obs.clone()).detach();
        let weights = advantage.clone().mul_scalar(c.beta).exp().clamp_max(c.max_weight);
        let (nll, regularizer) = self.actor.nll(b.bc.obs, b.bc.targets);
        let mut logged = vec![nll.clone().mean(), advantage.mean(), weights.clone().mean()];
        let mut actor_loss = (weights * nll).mean();
        if let Some(r) = regularizer {
            logged.push(r.clone());
            actor_loss = actor_loss + r;
        }
        let (loss, read) = opt.step_reading("actor", &mut self.actor, actor_loss, logged)?;

        // Critics: towards r + γ^n V(s').
        let next_v = self.value.forward(b.next_obs).detach();
        let target = b.rewards + b.discounts * next_v;
        let (q1, q2) = self.critic.forward(b.obs_act);
        let critic_loss = (q1 - target.clone()).powi_scalar(2).mean() + (q2 - target).powi_scalar(2).mean();
        let critic_loss = opt.step("critic", &mut self.critic, critic_loss)?;
        let tau = c.polyak;
        update(&mut self.target, |target| polyak(target, &self.critic, tau));

        Ok(vec![
            ("loss", loss),
            ("cross_entropy", read[0]),
            ("regularizer", read.get(3).copied().unwrap_or(0.0)),
            ("value_loss", value_loss),
            ("critic_loss", critic_loss),
            ("advantage", read[1]),
            ("weight", read[2]),
        ])
    }

    fn params(&self) -> Vec<NamedTensor> {
        let mut out = prefixed("actor", named_params(&self.actor));
        out.extend(prefixed("critic", named_params(&self.critic)));
        out.extend(prefixed("target", named_params(&self.target)));
        out.extend(prefixed("value", named_params(&self.value)));
        out
    }

    fn load_params(mut self, values: &HashMap<String, NamedTensor>) -> Result<Self, String> {
        self.actor = load_params(self.actor, &section(values, "actor")).map_err(|e| format!("actor: {e}"))?;
        self.critic = load_params(self.critic, &section(values, "critic")).map_err(|e| format!("critic: {e}"))?;
        self.target =
            load_params(self.target, &section(values, "target")).map_err(|e| format!("target: {e}"))?.no_grad();
        self.value = load_params(self.value, &section(values, "value")).map_err(|e| format!("value: {e}"))?;
        Ok(self)
    }

    fn probe_pmfs(&self, probe: &IqlBatch) -> anyhow::Result<Option<ActionPmfs>> {
        let title = format!("iql {}", self.config.head.slug());
        Ok(Some(probe_pmfs(&self.actor, &self.coding, &probe.bc.obs, &probe.bc.targets, usize::MAX, title)?))
    }
}

impl Agent for Iql {
    fn prepare(&self, episodes: &EpisodeBatch) -> anyhow::Result<IqlData> {
        let mut bc = prepare_transitions(&self.spec, &self.coding, episodes, self.config.n_step, self.config.discount)?;
        bc.transitions.scale_rewards(self.config.reward_scale);
        let mut features = Vec::with_capacity(bc.transitions.len() * self.coding.feature_dim());
        for a in bc.transitions.actions().chunks_exact(self.coding.act_dim()) {
            self.coding.push_features(a, &mut features);
        }
        Ok(IqlData { bc, features })
    }

    fn policy(&self, acting: &Acting) -> Arc<dyn PolicyFactory> {
        Arc::new(MlpPolicyFactory::new(self.actor.valid(), self.coding.clone(), &self.spec, acting, "iql"))
    }
}
