//! DQN (Mnih et al. 2015) with double-DQN targets (van Hasselt et al. 2016), `n`-step returns, a target network and
//! an ε-greedy schedule; and its distributional form in the manner of C51 (Bellemare, Dabney & Munos 2017): the
//! return of each action is a distribution over `atoms` ordered bins on `[v_min, v_max]`, produced by **any head**
//! (`head = "linear"` is C51; a Fourier head gives a smooth return distribution; a mixture head, a Gaussian
//! mixture), trained by cross-entropy against the Bellman target projected onto the atoms.
//!
//! Read top to bottom: the config (the job file's `[dqn]` section), the projection, the network, the agent (data,
//! batches, loss, target updates, checkpoints), online acting (ε-greedy), and the policy actors run. On the CPU,
//! scalar Q-values, the linear and the Fourier head train and act without a graph ([`host`]: the same arithmetic on host arrays).

pub mod host;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::bail;
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};
use frl_envs::{Action, History, Policy, PolicyFactory, Space};
use frl_heads::head::to_host;
use frl_heads::{AnyHead, Head, HeadConfig};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use crate::common::{detached_copy, int_to_host, mlp_layers, polyak};
use frl_dataset::episodes::EpisodeBatch;
use frl_dataset::transitions::Transitions;
use frl_learner::params::{NamedTensor, load_params, named_params, prefixed, section, update};
use frl_learner::{
    Acting, ActionPmfs, Agent, BinAxis, DataSpec, ModelConfig, OnlineAgent, Optimizers, Scalars, Trainable,
};
use host::{HostBatch, HostLearner, HostQNet};

// ----------------------------------------------------------------------------------------------------------------
// Config

/// The `[dqn]` section of a job file. Defaults follow CleanRL's `c51.py` for classic control (hidden 120-84,
/// 101 atoms on [-100, 100], γ 0.99, target copy every 500 updates, ε 1 → 0.05).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DqnConfig {
    /// Hidden layer sizes of the Q network (ReLU after each).
    pub hidden: Vec<usize>,
    /// The head of each action's return distribution over `atoms` bins (`"linear"` = C51); absent: one scalar
    /// Q-value per action (DQN, Huber loss).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<HeadConfig>,
    /// Bins of the return distribution.
    pub atoms: usize,
    /// Lower edge of the return support.
    pub v_min: f64,
    /// Upper edge of the return support.
    pub v_max: f64,
    /// The head's bins cover `[v_min, v_max]` widened by this fraction of its width on each side (targets stay
    /// clamped to `[v_min, v_max]`), so that a periodic density (Fourier) does not tie the two ends together.
    pub support_margin: f64,
    /// Discount `γ`.
    pub gamma: f64,
    /// Steps summed in each bootstrapped return.
    pub n_step: usize,
    /// Double DQN: the online network picks the next action, the target network values it.
    pub double: bool,
    /// The target network follows the online one every this many updates.
    pub target_update_every: u64,
    /// How far it follows: 1 copies, less blends (Polyak).
    pub tau: f64,
    /// ε at the first env step.
    pub epsilon_start: f64,
    /// ε after `epsilon_decay_steps` env steps (linear in between) and from then on.
    pub epsilon_end: f64,
    /// Env steps over which ε decays.
    pub epsilon_decay_steps: u64,
    /// ε when evaluated.
    pub eval_epsilon: f64,
    /// Rewards are multiplied by this.
    pub reward_scale: f32,
}

impl Default for DqnConfig {
    fn default() -> Self {
        Self {
            hidden: vec![120, 84],
            head: Some(HeadConfig::Linear),
            atoms: 101,
            v_min: -100.0,
            v_max: 100.0,
            support_margin: 0.125,
            gamma: 0.99,
            n_step: 1,
            double: true,
            target_update_every: 500,
            tau: 1.0,
            epsilon_start: 1.0,
            epsilon_end: 0.05,
            epsilon_decay_steps: 250_000,
            eval_epsilon: 0.0,
            reward_scale: 1.0,
        }
    }
}

impl ModelConfig for DqnConfig {
    fn validate(&self) -> anyhow::Result<()> {
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            bail!("`hidden` = {:?}: needs at least one layer, each of size ≥ 1", self.hidden);
        }
        if let Some(head) = &self.head {
            head.validate().map_err(|e| anyhow::anyhow!("`head`: {e}"))?;
            if self.atoms < 2 {
                bail!("`atoms` = {}: must be at least 2", self.atoms);
            }
            if !(self.v_min.is_finite() && self.v_max.is_finite() && self.v_min < self.v_max) {
                bail!("`v_min` = {}, `v_max` = {}: must be finite with v_min < v_max", self.v_min, self.v_max);
            }
            if !(0.0..=1.0).contains(&self.support_margin) {
                bail!("`support_margin` = {}: must be in [0, 1]", self.support_margin);
            }
        }
        for (field, v) in [
            ("gamma", self.gamma),
            ("tau", self.tau),
            ("epsilon_start", self.epsilon_start),
            ("epsilon_end", self.epsilon_end),
            ("eval_epsilon", self.eval_epsilon),
        ] {
            if !(0.0..=1.0).contains(&v) {
                bail!("`{field}` = {v}: must be in [0, 1]");
            }
        }
        if self.tau == 0.0 {
            bail!("`tau` = 0: the target network would never move");
        }
        if self.n_step == 0 {
            bail!("`n_step` must be at least 1");
        }
        if self.target_update_every == 0 {
            bail!("`target_update_every` must be at least 1");
        }
        if !(self.reward_scale.is_finite() && self.reward_scale > 0.0) {
            bail!("`reward_scale` = {}: must be positive", self.reward_scale);
        }
        Ok(())
    }

    fn head(&self) -> Option<&HeadConfig> {
        self.head.as_ref()
    }
}

impl DqnConfig {
    /// ε after `env_steps` env steps.
    pub fn epsilon(&self, env_steps: u64) -> f64 {
        let f = (env_steps as f64 / self.epsilon_decay_steps.max(1) as f64).min(1.0);
        self.epsilon_start + f * (self.epsilon_end - self.epsilon_start)
    }

    /// The atoms: centres of `atoms` equal bins on `[v_min, v_max]` (the head's bin centres, rescaled).
    pub fn support(&self) -> Support {
        Support::with_margin(self.v_min, self.v_max, self.atoms, self.support_margin)
    }
}

// ----------------------------------------------------------------------------------------------------------------
// The return support and the projection of the Bellman target

/// The atoms `z_i` of the return distribution: centres of `n` equal bins on `[low, high]`, and the range
/// `[v_min, v_max]` Bellman targets are clamped to (inside the bins when there is a margin).
#[derive(Debug, Clone, PartialEq)]
pub struct Support {
    /// Lower edge of the first bin.
    pub low: f64,
    /// Upper edge of the last bin.
    pub high: f64,
    /// The atoms, increasing.
    pub atoms: Vec<f32>,
    /// Targets are clamped to `[clamp.0, clamp.1]`.
    pub clamp: (f32, f32),
}

impl Support {
    /// `n` atoms centred in equal bins on `[low, high]`; targets are clamped to the outermost atoms (C51).
    pub fn new(low: f64, high: f64, n: usize) -> Self {
        let dz = (high - low) / n as f64;
        let atoms: Vec<f32> = (0..n).map(|i| (low + (i as f64 + 0.5) * dz) as f32).collect();
        Self { low, high, clamp: (atoms[0], atoms[n - 1]), atoms }
    }

    /// Bins on `[v_min, v_max]` widened by `margin` of its width on each side, targets clamped to `[v_min, v_max]`:
    /// the Fourier density is periodic on its interval, so returns at one end of the support would otherwise share
    /// their mass with the other end.
    pub fn with_margin(v_min: f64, v_max: f64, n: usize, margin: f64) -> Self {
        let pad = margin * (v_max - v_min);
        let mut s = Self::new(v_min - pad, v_max + pad, n);
        if margin > 0.0 {
            s.clamp = ((v_min as f32).max(s.atoms[0]), (v_max as f32).min(s.atoms[n - 1]));
        }
        s
    }

    /// Distance between neighbouring atoms.
    pub fn delta(&self) -> f64 {
        (self.high - self.low) / self.atoms.len() as f64
    }

    /// The bin a return falls in (clamped to the support).
    pub fn bin(&self, value: f64) -> usize {
        let i = ((value - self.low) / self.delta()).floor();
        (i.max(0.0) as usize).min(self.atoms.len() - 1)
    }
}

/// The C51 projection: the distribution of `r + d·Z` with `Z ~ probs` over the atoms, `d` the bootstrap discount
/// (0 at a terminal), mapped back onto the atoms. Each shifted atom, clamped to `support.clamp`, splits its mass
/// between its two neighbouring atoms in proportion to closeness (Algorithm 1 of the C51 paper, as two scatter-adds).
///
/// `probs` `[B, n]`, `rewards` and `discounts` `[B]`; returns `[B, n]` whose rows sum to 1.
pub fn project(probs: Tensor<2>, rewards: Tensor<1>, discounts: Tensor<1>, support: &Support) -> Tensor<2> {
    let [b, n] = probs.dims();
    let device = probs.device();
    let z = Tensor::<1>::from_data(TensorData::new(support.atoms.clone(), [n]), &device);
    let (lo, hi) = support.clamp;
    let tz = (discounts.reshape([b, 1]) * z.reshape([1, n]) + rewards.reshape([b, 1])).clamp(lo, hi);
    // Position on the atom grid, its lower atom `l` and the share `frac` that goes to `l + 1`.
    let pos = tz.sub_scalar(support.atoms[0]).div_scalar(support.delta()).clamp(0.0, (n - 1) as f64);
    let lower = pos.clone().floor();
    let frac = pos - lower.clone();
    let l = lower.int();
    let u = l.clone().add_scalar(1).clamp_max(n as i64 - 1);
    let upper_mass = probs.clone() * frac;
    let lower_mass = probs - upper_mass.clone();
    let to_lower = Tensor::<2>::zeros([b, n], &device).scatter(1, l, lower_mass, IndexingUpdateOp::Add);
    to_lower.scatter(1, u, upper_mass, IndexingUpdateOp::Add)
}

// ----------------------------------------------------------------------------------------------------------------
// Network

/// The Q network: an MLP torso, then per action either one scalar (DQN) or a head over the return atoms (C51).
#[derive(Module, Debug)]
pub struct QNet {
    layers: Vec<Linear>,
    /// Scalar Q-values, `d → actions` (DQN).
    out: Option<Linear>,
    /// One return-distribution head per action (distributional).
    pub heads: Vec<AnyHead>,
}

impl QNet {
    /// A network for `obs_dim` observations and `actions` actions, drawn from `rng`.
    pub fn new(
        obs_dim: usize,
        actions: usize,
        config: &DqnConfig,
        rng: &mut dyn RngCore,
        device: &Device,
    ) -> anyhow::Result<Self> {
        let layers = mlp_layers(obs_dim, &config.hidden, None, rng, device);
        let d = *config.hidden.last().expect("validated: at least one layer");
        let (out, heads) = match &config.head {
            None => (Some(frl_heads::init::linear(d, actions, 1.0, 1.0, rng, device)), Vec::new()),
            Some(head) => {
                let heads = (0..actions)
                    .map(|_| head.init(d, config.atoms, rng, device))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| anyhow::anyhow!("`head`: {e}"))?;
                (None, heads)
            }
        };
        Ok(Self { layers, out, heads })
    }

    /// The torso's features, `[B, d]`.
    pub fn features(&self, obs: Tensor<2>) -> Tensor<2> {
        self.layers.iter().fold(obs, |x, l| relu(l.forward(x)))
    }

    /// Per action the return distribution's log-PMF, stacked `[B, actions, atoms]`, and the heads' mean regulariser.
    pub fn log_pmfs(&self, features: Tensor<2>) -> (Tensor<3>, Option<Tensor<1>>) {
        self.stacked(features, true)
    }

    /// Per action the return distribution head's logits, stacked `[B, actions, atoms]`, and the heads' mean
    /// regulariser.
    pub fn logits(&self, features: Tensor<2>) -> (Tensor<3>, Option<Tensor<1>>) {
        self.stacked(features, false)
    }

    /// Every action's head in one product where the heads allow it (`frl_heads::stacked`), else head by head.
    fn stacked(&self, features: Tensor<2>, log_pmf: bool) -> (Tensor<3>, Option<Tensor<1>>) {
        if let Some((logits, reg)) = frl_heads::stacked::forward_stacked(&self.heads, features.clone()) {
            if !log_pmf {
                return (logits, reg);
            }
            let [b, a, atoms] = logits.dims();
            let log_pmf = self.heads[0].log_pmf(logits.reshape([b * a, atoms])).reshape([b, a, atoms]);
            return (log_pmf, reg);
        }
        let mut rows = Vec::with_capacity(self.heads.len());
        let mut reg: Option<Tensor<1>> = None;
        for head in &self.heads {
            let out = head.forward(features.clone());
            rows.push(if log_pmf { head.log_pmf(out.logits) } else { out.logits });
            if let Some(r) = out.regularizer {
                reg = Some(match reg {
                    None => r,
                    Some(acc) => acc + r,
                });
            }
        }
        let k = self.heads.len().max(1) as f64;
        (Tensor::stack(rows, 1), reg.map(|r| r.div_scalar(k)))
    }

    /// Q-values `[B, actions]`: the scalar outputs, or the expected return `Σ_i p_i z_i` of each distribution.
    pub fn q_values(&self, obs: Tensor<2>, support: &Support) -> Tensor<2> {
        let features = self.features(obs);
        match &self.out {
            Some(out) => out.forward(features),
            None => {
                let (log_p, _) = self.log_pmfs(features);
                let [b, a, n] = log_p.dims();
                let z = Tensor::<2>::from_data(TensorData::new(support.atoms.clone(), [n, 1]), &log_p.device());
                log_p.exp().reshape([b * a, n]).matmul(z).reshape([b, a])
            }
        }
    }
}

// ----------------------------------------------------------------------------------------------------------------
// Agent

/// DQN / C51 with any head.
pub struct Dqn {
    /// The graph networks; while `host` is in use they are stale and [`Dqn::graph_nets`] gives current copies.
    online: QNet,
    target: QNet,
    /// The networks trained on the host (CPU, scalar or linear head), holding the current parameters.
    host: Option<HostLearner>,
    config: DqnConfig,
    support: Support,
    actions: usize,
    spec: DataSpec,
}

/// One batch of `n`-step transitions, on the host until a graph step moves it to its device.
pub struct DqnBatch {
    /// Normalised observations, `[B, obs_dim]`.
    pub obs: Vec<f32>,
    /// Action ids, `[B]`.
    pub actions: Vec<usize>,
    /// Scaled `n`-step reward sums, `[B]`.
    pub rewards: Vec<f32>,
    /// Bootstrap discounts `γ^n` (0 after a terminal), `[B]`.
    pub discounts: Vec<f32>,
    /// Normalised observations `n` steps later, `[B, obs_dim]`.
    pub next_obs: Vec<f32>,
    /// The training device.
    pub device: Device,
}

/// A [`DqnBatch`] on its device.
struct Batch {
    obs: Tensor<2>,
    actions: Tensor<1, Int>,
    rewards: Tensor<1>,
    discounts: Tensor<1>,
    next_obs: Tensor<2>,
}

impl DqnBatch {
    fn tensors(&self) -> Batch {
        let (n, device) = (self.actions.len(), &self.device);
        let o = self.obs.len() / n.max(1);
        let actions: Vec<i64> = self.actions.iter().map(|&a| a as i64).collect();
        Batch {
            obs: Tensor::from_data(TensorData::new(self.obs.clone(), [n, o]), device),
            actions: Tensor::from_data(TensorData::new(actions, [n]), device),
            rewards: Tensor::from_data(TensorData::new(self.rewards.clone(), [n]), device),
            discounts: Tensor::from_data(TensorData::new(self.discounts.clone(), [n]), device),
            next_obs: Tensor::from_data(TensorData::new(self.next_obs.clone(), [n, o]), device),
        }
    }
}

impl Dqn {
    /// The online network (a copy).
    pub fn network(&self) -> QNet {
        self.graph_nets().0
    }

    /// Whether updates run on the host (no graph).
    pub fn on_host(&self) -> bool {
        self.host.is_some()
    }

    /// The agent with its updates on burn's graph, also where the host path applies (for comparisons).
    pub fn on_graph(mut self) -> Self {
        (self.online, self.target) = self.graph_nets();
        self.host = None;
        self
    }

    /// The host learner of `online` and `target` when this agent's network has a host path on `device`.
    fn host_learner(&self, device: &Device) -> Option<HostLearner> {
        if device.clone().inner() != Device::flex() || !HostQNet::supports(&self.config) {
            return None;
        }
        let net = |m: &QNet| HostQNet::from_params(&named_params(m), &self.config, self.spec.obs_dim, self.actions);
        Some(HostLearner::new(net(&self.online)?, net(&self.target)?))
    }

    /// The online and target networks with the current parameters (from the host when updates run there).
    fn graph_nets(&self) -> (QNet, QNet) {
        let Some(host) = &self.host else { return (self.online.clone(), self.target.clone()) };
        let by_name = |params: Vec<NamedTensor>| -> HashMap<String, NamedTensor> {
            params.into_iter().map(|p| (p.name.clone(), p)).collect()
        };
        let online = load_params(self.online.clone(), &section(&by_name(host.online.params("q")), "q"));
        let target = load_params(self.target.clone(), &section(&by_name(host.target.params("q")), "q"));
        (
            online.expect("the host network has the graph network's parameters"),
            target.expect("the host network has the graph network's parameters").no_grad(),
        )
    }

    /// The return support.
    pub fn support(&self) -> &Support {
        &self.support
    }

    /// `episodes` with normalised observations and scaled rewards, as the replay store keeps them.
    fn scaled(&self, episodes: &EpisodeBatch) -> anyhow::Result<EpisodeBatch> {
        if episodes.obs_dim != self.spec.obs_dim || episodes.act_dim != 1 {
            bail!(
                "episodes have observation/action sizes {}/{}, the agent {}/1",
                episodes.obs_dim,
                episodes.act_dim,
                self.spec.obs_dim
            );
        }
        if let Some((i, a)) =
            episodes.actions.iter().enumerate().find(|(_, a)| !(**a >= 0.0 && (**a as usize) < self.actions))
        {
            bail!("step {i}: action {a} is outside the {} actions of {}", self.actions, self.spec.env);
        }
        let mut e = episodes.clone();
        let mut obs = Vec::with_capacity(e.observations.len());
        for row in e.observations.chunks_exact(self.spec.obs_dim) {
            self.spec.push_normalized(row, &mut obs);
        }
        e.observations = obs;
        e.rewards.iter_mut().for_each(|r| *r *= self.config.reward_scale);
        Ok(e)
    }

    /// The atoms as a column `[atoms, 1]` on `device`.
    fn atoms_column(&self, device: &Device) -> Tensor<2> {
        let n = self.support.atoms.len();
        Tensor::from_data(TensorData::new(self.support.atoms.clone(), [n, 1]), device)
    }

    /// The Bellman target distribution (projected) of each row's next state, `[B, atoms]`, from the networks
    /// `(online, target)` (training copies, or inference copies for plots).
    fn target_distribution(&self, nets: (&QNet, &QNet), b: &Batch) -> Tensor<2> {
        let (online, target) = nets;
        let (log_p, _) = target.log_pmfs(target.features(b.next_obs.clone()));
        let [rows, a, n] = log_p.dims();
        let probs = log_p.exp();
        let target_q =
            probs.clone().reshape([rows * a, n]).matmul(self.atoms_column(&probs.device())).reshape([rows, a]);
        let greedy = self.next_actions(online, b, target_q);
        let chosen = probs.gather(1, greedy.reshape([rows, 1, 1]).repeat_dim(2, n)).reshape([rows, n]);
        project(chosen, b.rewards.clone(), b.discounts.clone(), &self.support).detach()
    }

    /// The action to bootstrap from, `[B]`: the online network's greedy one (double DQN), else the target's.
    fn next_actions(&self, online: &QNet, b: &Batch, target_q: Tensor<2>) -> Tensor<1, Int> {
        let rows = b.next_obs.dims()[0];
        let q = if self.config.double { online.q_values(b.next_obs.clone(), &self.support) } else { target_q };
        q.detach().argmax(1).reshape([rows])
    }
}

impl Trainable for Dqn {
    const KIND: &'static str = "dqn";
    type Config = DqnConfig;
    type Spec = DataSpec;
    type Data = Transitions;
    type Batch = DqnBatch;

    fn new(config: &DqnConfig, spec: &DataSpec, rng: &mut dyn RngCore, device: &Device) -> anyhow::Result<Self> {
        let actions = match &spec.action_space {
            Space::Discrete(n) => *n,
            other => bail!(
                "dqn needs a discrete action space; {} has {other} (bin continuous actions with an env wrapper)",
                spec.env
            ),
        };
        let online = QNet::new(spec.obs_dim, actions, config, rng, device)?;
        let target = detached_copy(&online);
        let mut agent = Dqn {
            online,
            target,
            host: None,
            config: config.clone(),
            support: config.support(),
            actions,
            spec: spec.clone(),
        };
        agent.host = agent.host_learner(device);
        Ok(agent)
    }

    fn sample(&self, data: &Transitions, batch_size: usize, rng: &mut dyn RngCore, device: &Device) -> DqnBatch {
        let b = data.sample(batch_size, rng);
        DqnBatch {
            obs: b.obs,
            actions: b.actions.iter().map(|&a| a as usize).collect(),
            rewards: b.rewards,
            discounts: b.discounts,
            next_obs: b.next_obs,
            device: device.clone(),
        }
    }

    fn train_step(&mut self, batch: DqnBatch, opt: &mut Optimizers) -> anyhow::Result<Scalars> {
        if let Some(host) = &mut self.host {
            let b = HostBatch {
                obs: &batch.obs,
                actions: &batch.actions,
                rewards: &batch.rewards,
                discounts: &batch.discounts,
                next_obs: &batch.next_obs,
            };
            return host.train_step(&b, &self.config, &self.support, opt);
        }
        let b = batch.tensors();
        let rows = b.obs.dims()[0];
        // Logged values, read with the loss in the group's one read.
        let (loss, names, logged): (_, Vec<&'static str>, Vec<Tensor<1>>) = if self.online.out.is_some() {
            // Scalar Q: Huber loss towards r + γ^n Q_target(s', a*).
            let next_q = self.target.q_values(b.next_obs.clone(), &self.support);
            let greedy = self.next_actions(&self.online, &b, next_q.clone());
            let bootstrap = next_q.gather(1, greedy.reshape([rows, 1])).reshape([rows]);
            let target = (b.rewards.clone() + b.discounts.clone() * bootstrap).detach();
            let q = self.online.q_values(b.obs.clone(), &self.support);
            let q_taken = q.gather(1, b.actions.clone().reshape([rows, 1])).reshape([rows]);
            let q_mean = q_taken.clone().mean();
            let err = (q_taken - target).abs();
            let quad = err.clone().clamp_max(1.0);
            let loss = (quad.clone() * quad.clone()).mul_scalar(0.5).add(err - quad).mean();
            (loss, vec!["q"], vec![q_mean])
        } else {
            // Distributional: cross-entropy of the taken action's distribution against the projected target.
            let target = self.target_distribution((&self.online, &self.target), &b);
            let features = self.online.features(b.obs.clone());
            let (logits, reg) = self.online.logits(features);
            let n = self.config.atoms;
            let taken = logits.gather(1, b.actions.clone().reshape([rows, 1, 1]).repeat_dim(2, n)).reshape([rows, n]);
            // Every head's PMF is the softmax of its logits; every action's head is of one kind, so any of them
            // gives the loss of the taken action's logits.
            let head = &self.online.heads[0];
            let pmf = softmax(taken.clone().detach(), 1);
            let q = pmf.matmul(self.atoms_column(&b.obs.device())).mean();
            let cross_entropy = head.cross_entropy_soft(taken, target);
            let mut names = vec!["cross_entropy", "q"];
            let mut logged = vec![cross_entropy.clone(), q];
            let loss = match reg {
                Some(r) => {
                    names.push("regularizer");
                    logged.push(r.clone());
                    cross_entropy + r
                }
                None => cross_entropy,
            };
            (loss, names, logged)
        };
        let (value, read) = opt.step_reading("q", &mut self.online, loss, logged)?;
        if opt.step_number().is_multiple_of(self.config.target_update_every) {
            if self.config.tau >= 1.0 {
                self.target = detached_copy(&self.online);
            } else {
                let tau = self.config.tau;
                update(&mut self.target, |target| polyak(target, &self.online, tau));
            }
        }
        let mut scalars: Scalars = vec![("loss", value)];
        scalars.extend(names.into_iter().zip(read));
        Ok(scalars)
    }

    fn params(&self) -> Vec<NamedTensor> {
        if let Some(host) = &self.host {
            let mut out = host.online.params("q");
            out.extend(host.target.params("target"));
            return out;
        }
        let mut out = prefixed("q", named_params(&self.online));
        out.extend(prefixed("target", named_params(&self.target)));
        out
    }

    fn load_params(mut self, values: &HashMap<String, NamedTensor>) -> Result<Self, String> {
        self.online = load_params(self.online, &section(values, "q")).map_err(|e| format!("q: {e}"))?;
        self.target =
            load_params(self.target, &section(values, "target")).map_err(|e| format!("target: {e}"))?.no_grad();
        if self.host.is_some() {
            let device = self.online.devices().into_iter().next().unwrap_or_else(Device::flex);
            self.host = self.host_learner(&device);
        }
        Ok(self)
    }

    fn probe_pmfs(&self, probe: &DqnBatch) -> anyhow::Result<Option<ActionPmfs>> {
        let Some(slug) = self.config.head.as_ref().map(|h| h.slug()) else { return Ok(None) };
        let (online, target) = self.graph_nets();
        let (net, target_net) = (online.valid(), target.valid());
        let probe = &probe.tensors();
        let rows = probe.obs.dims()[0];
        let (log_p, _) = net.log_pmfs(net.features(probe.obs.clone()));
        let [_, a, n] = log_p.dims();
        let all = to_host(log_p.exp());
        let pmfs = (0..a)
            .map(|act| (0..rows).flat_map(|r| all[(r * a + act) * n..(r * a + act + 1) * n].to_vec()).collect())
            .collect();
        // Mark the bin of the Bellman target's mean on the taken action's plot.
        let target = to_host(self.target_distribution((&net, &target_net), probe));
        let taken = int_to_host(probe.actions.clone())?;
        let mut targets = vec![None; rows * a];
        for r in 0..rows {
            let mean: f64 =
                target[r * n..(r + 1) * n].iter().zip(&self.support.atoms).map(|(p, z)| *p as f64 * *z as f64).sum();
            targets[r * a + taken[r] as usize] = Some(self.support.bin(mean));
        }
        let images = (0..rows).map(|r| (r, format!("sample{r}"))).collect();
        let axes = vec![BinAxis::Range { low: self.support.low, high: self.support.high }; a];
        Ok(Some(ActionPmfs { bins: n, pmfs, targets, images, axes, title: format!("dqn {slug} return") }))
    }
}

impl Agent for Dqn {
    fn prepare(&self, episodes: &EpisodeBatch) -> anyhow::Result<Transitions> {
        let t = Transitions::new(&self.scaled(episodes)?, self.config.n_step, self.config.gamma);
        if t.is_empty() {
            bail!("the dataset has no steps");
        }
        Ok(t)
    }

    fn policy(&self, _acting: &Acting) -> Arc<dyn PolicyFactory> {
        Arc::new(EpsilonGreedyFactory::new(self, self.config.eval_epsilon))
    }
}

impl OnlineAgent for Dqn {
    fn replay(&self, capacity: usize) -> anyhow::Result<Transitions> {
        Ok(Transitions::empty(self.spec.obs_dim, 1, self.config.n_step, self.config.gamma, Some(capacity)))
    }

    fn insert(&self, data: &mut Transitions, episodes: &EpisodeBatch) -> anyhow::Result<()> {
        data.push_episodes(&self.scaled(episodes)?);
        Ok(())
    }

    fn stored(data: &Transitions) -> usize {
        data.len()
    }

    /// A fragment's transitions are complete where its n-step windows fit; its last `n − 1` bootstrap from its last
    /// observation with fewer steps, as at a time limit.
    fn takes_fragments(&self) -> bool {
        true
    }

    fn explore(&self, env_steps: u64) -> Arc<dyn PolicyFactory> {
        Arc::new(EpsilonGreedyFactory::new(self, self.config.epsilon(env_steps)))
    }

    fn exploration_scalars(&self, env_steps: u64) -> Scalars {
        vec![("epsilon", self.config.epsilon(env_steps))]
    }
}

// ----------------------------------------------------------------------------------------------------------------
// Acting

/// Builds ε-greedy policies over one inference copy of the Q network, on the CPU whatever the learner's device.
#[derive(Clone)]
pub struct EpsilonGreedyFactory {
    net: ActingNet,
    support: Arc<Support>,
    spec: Arc<DataSpec>,
    actions: usize,
    epsilon: f64,
}

/// The network a policy evaluates: on the host where it has a host path, else burn's CPU backend.
#[derive(Clone)]
enum ActingNet {
    Host(Arc<HostQNet>),
    Graph(Arc<QNet>),
}

impl EpsilonGreedyFactory {
    fn new(agent: &Dqn, epsilon: f64) -> Self {
        // Actors step one observation at a time: a small network answers sooner on the CPU than through a GPU
        // queue, and the learner's device stays free for updates.
        let net = match &agent.host {
            Some(host) => ActingNet::Host(Arc::new(host.online.clone())),
            None => {
                let graph = agent.online.valid().to_device(&Device::flex());
                let host =
                    HostQNet::from_params(&named_params(&graph), &agent.config, agent.spec.obs_dim, agent.actions);
                match host {
                    Some(host) => ActingNet::Host(Arc::new(host)),
                    None => ActingNet::Graph(Arc::new(graph)),
                }
            }
        };
        Self {
            net,
            support: Arc::new(agent.support.clone()),
            spec: Arc::new(agent.spec.clone()),
            actions: agent.actions,
            epsilon,
        }
    }
}

impl PolicyFactory for EpsilonGreedyFactory {
    fn make(&self) -> Box<dyn Policy> {
        Box::new(EpsilonGreedy { shared: self.clone(), scratch: host::Scratch::default(), obs: Vec::new() })
    }

    fn describe(&self) -> String {
        format!("dqn(greedy on Q, ε {})", self.epsilon)
    }
}

/// A random action with probability ε, else the action of the largest Q-value.
pub struct EpsilonGreedy {
    shared: EpsilonGreedyFactory,
    scratch: host::Scratch,
    obs: Vec<f32>,
}

impl Policy for EpsilonGreedy {
    fn act(&mut self, history: &History<'_>, rng: &mut dyn RngCore) -> Action {
        let s = &self.shared;
        if s.epsilon > 0.0 && rng.random::<f64>() < s.epsilon {
            return Action::Discrete(rng.random_range(0..s.actions));
        }
        self.obs.clear();
        s.spec.push_normalized(history.current(), &mut self.obs);
        let q = match &s.net {
            ActingNet::Host(net) => net.q_values(&self.obs, &s.support.atoms, &mut self.scratch),
            ActingNet::Graph(net) => {
                let n = self.obs.len();
                let obs = Tensor::from_data(TensorData::new(self.obs.clone(), [1, n]), &Device::flex());
                to_host(net.q_values(obs, &s.support))
            }
        };
        Action::Discrete(frl_heads::head::argmax(&q))
    }

    fn markov(&self) -> bool {
        true
    }
}
