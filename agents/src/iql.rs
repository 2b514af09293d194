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

use crate::dt::ActionCoding;
use anyhow::bail;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use frl_envs::PolicyFactory;
use frl_heads::HeadConfig;
use frl_heads::binning::Permutation;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::bc::{BcBatch, BcData, MlpPolicy, MlpPolicyFactory, mlp_layers, prepare_transitions, probe_pmfs};
use frl_dataset::episodes::EpisodeBatch;
use frl_learner::params::{NamedTensor, load_params, named_params, prefixed, section};
use frl_learner::{Acting, ActionPmfs, Agent, AgentConfig, DataSpec, Optimizers, Scalars};

/// The `[iql]` section of a job file; defaults are the paper's (τ = 0.7, β = 3, discount 0.99, Polyak 0.005).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

impl AgentConfig for IqlConfig {
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

impl Agent for Iql {
    const KIND: &'static str = "iql";
    type Config = IqlConfig;
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

    fn prepare(&self, episodes: &EpisodeBatch) -> anyhow::Result<IqlData> {
        let mut bc = prepare_transitions(&self.spec, &self.coding, episodes, self.config.n_step, self.config.discount)?;
        bc.transitions.scale_rewards(self.config.reward_scale);
        let mut features = Vec::with_capacity(bc.transitions.len() * self.coding.feature_dim());
        for a in bc.transitions.actions().chunks_exact(self.coding.act_dim()) {
            self.coding.push_features(a, &mut features);
        }
        Ok(IqlData { bc, features })
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

    fn train_step(mut self, b: IqlBatch, opt: &mut Optimizers) -> anyhow::Result<(Self, Scalars)> {
        let c = &self.config;
        let (t1, t2) = self.target.forward(b.obs_act.clone());
        let q_target = t1.min_pair(t2).detach();

        // Value: expectile regression, weight τ above the target and 1 − τ below it.
        let v = self.value.forward(b.bc.obs.clone());
        let diff = q_target.clone() - v;
        let below = diff.clone().lower_elem(0.0).float();
        let weight = below.mul_scalar(1.0 - 2.0 * c.expectile).add_scalar(c.expectile);
        let value_loss = (weight * diff.powi_scalar(2)).mean();
        let (value, value_loss) = opt.step("value", self.value, value_loss)?;
        self.value = value;

        // Actor: the dataset action's likelihood weighted by exp(β·advantage), clipped.
        let advantage = q_target - self.value.forward(b.bc.obs.clone()).detach();
        let weights = advantage.clone().mul_scalar(c.beta).exp().clamp_max(c.max_weight);
        let (nll, regularizer) = self.actor.nll(b.bc.obs, b.bc.targets);
        let cross_entropy = nll.clone().mean().into_scalar::<f32>() as f64;
        let mut actor_loss = (weights.clone() * nll).mean();
        if let Some(r) = &regularizer {
            actor_loss = actor_loss + r.clone();
        }
        let (actor, loss) = opt.step("actor", self.actor, actor_loss)?;
        self.actor = actor;

        // Critics: towards r + γ^n V(s').
        let next_v = self.value.forward(b.next_obs).detach();
        let target = b.rewards + b.discounts * next_v;
        let (q1, q2) = self.critic.forward(b.obs_act);
        let critic_loss = (q1 - target.clone()).powi_scalar(2).mean() + (q2 - target).powi_scalar(2).mean();
        let (critic, critic_loss) = opt.step("critic", self.critic, critic_loss)?;
        self.critic = critic;
        self.target = polyak(self.target, &self.critic, c.polyak);

        let scalars = vec![
            ("loss", loss),
            ("cross_entropy", cross_entropy),
            ("regularizer", regularizer.map(|r| r.into_scalar::<f32>() as f64).unwrap_or(0.0)),
            ("value_loss", value_loss),
            ("critic_loss", critic_loss),
            ("advantage", advantage.mean().into_scalar::<f32>() as f64),
            ("weight", weights.mean().into_scalar::<f32>() as f64),
        ];
        Ok((self, scalars))
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

    fn policy(&self, acting: &Acting) -> Arc<dyn PolicyFactory> {
        Arc::new(MlpPolicyFactory::new(self.actor.valid(), self.coding.clone(), &self.spec, acting, "iql"))
    }

    fn action_pmfs(&self, probe: &IqlBatch) -> anyhow::Result<Option<ActionPmfs>> {
        let title = format!("iql {}", self.config.head.slug());
        Ok(Some(probe_pmfs(&self.actor, &self.coding, &probe.bc, title)?))
    }
}

/// A copy of `module` with its own parameter ids that no gradient reaches (a target network).
pub fn detached_copy<M: Module>(module: &M) -> M {
    struct Fresh;
    impl ModuleMapper for Fresh {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            Param::from_tensor(param.val().detach())
        }
    }
    module.clone().map(&mut Fresh).no_grad()
}

/// `target ← (1 − rate)·target + rate·source`, parameter by parameter (the two share a structure).
pub fn polyak<M: Module>(target: M, source: &M, rate: f64) -> M {
    struct Collect(Vec<Tensor<1>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val().detach();
            let n: usize = t.dims().iter().product();
            self.0.push(t.reshape([n]));
        }
    }
    struct Blend {
        source: std::vec::IntoIter<Tensor<1>>,
        rate: f64,
    }
    impl ModuleMapper for Blend {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, t, mapper) = param.consume();
            let s = self.source.next().expect("target and source share a structure");
            let dims = t.dims();
            let blended = t.detach().mul_scalar(1.0 - self.rate) + s.reshape(dims).mul_scalar(self.rate);
            Param::from_mapped_value(id, blended, mapper)
        }
    }
    let mut c = Collect(Vec::new());
    source.visit(&mut c);
    target.map(&mut Blend { source: c.0.into_iter(), rate })
}
