//! Behaviour cloning (BC), the tutorial agent: an MLP over the normalised observation predicts the dataset's action
//! with one head per action dimension over bins (continuous actions) or one head over the actions (discrete), by
//! maximum likelihood. Any head works (`head = "linear"`, `{ fourier = { frequencies = 8 } }`, a mixture).
//!
//! Read top to bottom: the config (the job file's `[bc]` section), the network, the agent (data, batches, loss,
//! checkpoints), and acting. IQL's actor reuses the network and the acting code.

use std::collections::HashMap;
use std::sync::Arc;

use crate::common::decode_heads;
use crate::common::nets::{Activation, mlp_layers_init};
use crate::common::{ActionCoding, head_scalars, head_shard_loss, int_to_host};
use anyhow::bail;
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Int, Tensor, TensorData};
use frl_envs::Action;
use frl_envs::{History, Policy, PolicyFactory};
use frl_heads::binning::Permutation;
use frl_heads::head::to_host;
use frl_heads::{AnyHead, Head, HeadConfig, HeadLoss};
use frl_learner::Decode;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use frl_dataset::episodes::EpisodeBatch;
use frl_dataset::transitions::Transitions;
use frl_learner::optim::DEFAULT_GROUP;
use frl_learner::params::{NamedTensor, load_params, named_params};
use frl_learner::{Acting, ActionPmfs, Agent, DataSpec, ModelConfig, Optimizers, Scalars, Trainable};

// ----------------------------------------------------------------------------------------------------------------
// Config

/// The `[bc]` section of a job file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BcConfig {
    /// Hidden layer sizes of the MLP (ReLU after each).
    pub hidden: Vec<usize>,
    /// Bins per continuous action dimension.
    pub bins: usize,
    /// Continuous actions are binned over their bounds widened by this fraction of the range on each side.
    pub bin_margin: f64,
    /// The action head.
    pub head: HeadConfig,
    /// Discrete action ids → head bin order, as a list (`to_bin[id]`) or `"atari_direction_ring"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_permutation: Option<Permutation>,
}

impl Default for BcConfig {
    fn default() -> Self {
        Self { hidden: vec![256, 256], bins: 64, bin_margin: 0.125, head: HeadConfig::Linear, action_permutation: None }
    }
}

impl ModelConfig for BcConfig {
    fn validate(&self) -> anyhow::Result<()> {
        validate_policy_fields(&self.hidden, self.bins, self.bin_margin, &self.head)
    }

    fn head(&self) -> Option<&HeadConfig> {
        Some(&self.head)
    }
}

/// Checks the fields every MLP-with-heads agent has, naming the one at fault.
pub fn validate_policy_fields(hidden: &[usize], bins: usize, margin: f64, head: &HeadConfig) -> anyhow::Result<()> {
    if hidden.contains(&0) {
        bail!("`hidden` = {hidden:?}: layer sizes must be at least 1");
    }
    if bins < 2 {
        bail!("`bins` = {bins}: must be at least 2");
    }
    if !(0.0..=1.0).contains(&margin) {
        bail!("`bin_margin` = {margin}: must be in [0, 1]");
    }
    head.validate().map_err(|e| anyhow::anyhow!("`head`: {e}"))
}

// ----------------------------------------------------------------------------------------------------------------
// Network

/// An MLP over the observation and one action head per action dimension: BC's network and IQL's actor.
#[derive(Module, Debug)]
pub struct MlpPolicy {
    layers: Vec<Linear>,
    /// The nonlinearity after each hidden layer.
    #[module(skip)]
    activation: Activation,
    /// One head per action dimension (one head over the actions for discrete actions).
    pub heads: Vec<AnyHead>,
}

impl MlpPolicy {
    /// A network for `obs_dim` observations with heads laid out by `coding`, drawn from `rng`.
    pub fn new(
        obs_dim: usize,
        hidden: &[usize],
        coding: &ActionCoding,
        head: &HeadConfig,
        rng: &mut dyn RngCore,
        device: &Device,
    ) -> anyhow::Result<Self> {
        Self::with_torso(obs_dim, hidden, coding, head, Activation::Relu, false, rng, device)
    }

    /// [`MlpPolicy::new`] with another nonlinearity and, with `orthogonal`, CleanRL's orthogonal hidden layers.
    #[allow(clippy::too_many_arguments)]
    pub fn with_torso(
        obs_dim: usize,
        hidden: &[usize],
        coding: &ActionCoding,
        head: &HeadConfig,
        activation: Activation,
        orthogonal: bool,
        rng: &mut dyn RngCore,
        device: &Device,
    ) -> anyhow::Result<Self> {
        let layers = mlp_layers_init(obs_dim, hidden, None, orthogonal, rng, device);
        let d = hidden.last().copied().unwrap_or(obs_dim);
        let heads = (0..coding.heads())
            .map(|_| head.init(d, coding.bins(), rng, device))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("`head`: {e}"))?;
        Ok(Self { layers, activation, heads })
    }

    /// The features the heads read, `[N, d]`.
    pub fn features(&self, obs: Tensor<2>) -> Tensor<2> {
        self.layers.iter().fold(obs, |x, l| self.activation.apply(l.forward(x)))
    }

    /// Per-row negative log-likelihood of `targets` `[N, heads]` averaged over the heads, `[N]`, and the heads'
    /// regulariser (averaged likewise).
    pub fn nll(&self, obs: Tensor<2>, targets: Tensor<2, Int>) -> (Tensor<1>, Option<Tensor<1>>) {
        let features = self.features(obs);
        let k = self.heads.len() as f32;
        let (mut nll, mut reg): (Option<Tensor<1>>, Option<Tensor<1>>) = (None, None);
        for (i, head) in self.heads.iter().enumerate() {
            let out = head.forward(features.clone());
            let t = targets.clone().narrow(1, i, 1);
            let row = head.log_pmf(out.logits).gather(1, t).squeeze_dim::<1>(1).neg();
            nll = Some(match nll {
                None => row,
                Some(acc) => acc + row,
            });
            if let Some(r) = out.regularizer {
                reg = Some(match reg {
                    None => r,
                    Some(acc) => acc + r,
                });
            }
        }
        (nll.expect("at least one head").div_scalar(k), reg.map(|r| r.div_scalar(k)))
    }

    /// Mean negative log-likelihood plus the regulariser.
    pub fn loss(&self, obs: Tensor<2>, targets: Tensor<2, Int>) -> HeadLoss {
        let (nll, regularizer) = self.nll(obs, targets);
        HeadLoss::new(nll.mean(), regularizer)
    }

    /// Every head's PMF `rows × bins` at `obs`.
    pub fn pmfs(&self, obs: Tensor<2>) -> Vec<Vec<f32>> {
        let features = self.features(obs);
        self.heads.iter().map(|h| to_host(h.pmf(features.clone()))).collect()
    }
}

// ----------------------------------------------------------------------------------------------------------------
// Agent

/// Behaviour cloning.
pub struct Bc {
    net: MlpPolicy,
    head: HeadConfig,
    coding: ActionCoding,
    spec: DataSpec,
}

/// The dataset as BC samples it: transitions with normalised observations and every action's head bins.
pub struct BcData {
    /// The transitions (1-step; BC reads observations and actions only).
    pub transitions: Transitions,
    /// Head bins of every transition's action, `len × heads`.
    pub targets: Vec<i64>,
}

/// One BC batch: normalised observations `[B, obs_dim]` and their action bins `[B, heads]`.
pub struct BcBatch {
    /// Observations.
    pub obs: Tensor<2>,
    /// Head bins.
    pub targets: Tensor<2, Int>,
}

impl BcBatch {
    /// The rows cut into at most `parts` contiguous parts, each with its share of the rows.
    pub fn split(self, parts: usize) -> Vec<(BcBatch, f64)> {
        let n = self.obs.dims()[0];
        if parts <= 1 {
            return vec![(self, 1.0)];
        }
        let part = |r: std::ops::Range<usize>| BcBatch {
            obs: self.obs.clone().narrow(0, r.start, r.len()),
            targets: self.targets.clone().narrow(0, r.start, r.len()),
        };
        let weighted = |r: std::ops::Range<usize>| {
            let weight = r.len() as f64 / n as f64;
            (part(r), weight)
        };
        frl_learner::shards::ranges(n, parts).into_iter().map(weighted).collect()
    }
}

/// Observations normalised by `spec` and every action's head bins; an action outside the space names its row.
pub fn prepare_transitions(
    spec: &DataSpec,
    coding: &ActionCoding,
    episodes: &EpisodeBatch,
    n_step: usize,
    gamma: f64,
) -> anyhow::Result<BcData> {
    let mut transitions = Transitions::new(episodes, n_step, gamma);
    if transitions.is_empty() {
        bail!("the dataset has no steps");
    }
    transitions.map_observations(|x, out| spec.push_normalized(x, out));
    let mut targets = Vec::with_capacity(transitions.len() * coding.heads());
    for (i, a) in transitions.actions().chunks_exact(coding.act_dim()).enumerate() {
        coding.push_targets(a, &mut targets).map_err(|e| anyhow::anyhow!("transition {i}: {e}"))?;
    }
    Ok(BcData { transitions, targets })
}

impl Trainable for Bc {
    const KIND: &'static str = "bc";
    type Config = BcConfig;
    type Spec = DataSpec;
    type Data = BcData;
    type Batch = BcBatch;

    fn new(config: &BcConfig, spec: &DataSpec, rng: &mut dyn RngCore, device: &Device) -> anyhow::Result<Self> {
        let coding =
            ActionCoding::new(&spec.action_space, config.bins, config.bin_margin, config.action_permutation.clone())?;
        let net = MlpPolicy::new(spec.obs_dim, &config.hidden, &coding, &config.head, rng, device)?;
        Ok(Bc { net, head: config.head.clone(), coding, spec: spec.clone() })
    }

    fn sample(&self, data: &BcData, batch_size: usize, rng: &mut dyn RngCore, device: &Device) -> BcBatch {
        let idx = data.transitions.indices(batch_size, rng);
        let heads = self.coding.heads();
        let obs = data.transitions.observations(&idx);
        let targets: Vec<i64> = idx.iter().flat_map(|&i| data.targets[i * heads..(i + 1) * heads].to_vec()).collect();
        BcBatch {
            obs: Tensor::from_data(TensorData::new(obs, [idx.len(), self.spec.obs_dim]), device),
            targets: Tensor::from_data(TensorData::new(targets, [idx.len(), heads]), device),
        }
    }

    /// With `train.shards` > 1 the batch's rows are split into parts that run on parallel threads.
    fn train_step(&mut self, batch: BcBatch, opt: &mut Optimizers) -> anyhow::Result<Scalars> {
        let parts = batch.split(opt.shards());
        let (value, read) = opt.step_shards(DEFAULT_GROUP, &mut self.net, parts, |net, batch| {
            head_shard_loss(net.loss(batch.obs, batch.targets))
        })?;
        Ok(head_scalars(value, &read))
    }

    fn params(&self) -> Vec<NamedTensor> {
        named_params(&self.net)
    }

    fn load_params(mut self, values: &HashMap<String, NamedTensor>) -> Result<Self, String> {
        self.net = load_params(self.net, values)?;
        Ok(self)
    }

    fn probe_pmfs(&self, probe: &BcBatch) -> anyhow::Result<Option<ActionPmfs>> {
        let title = format!("bc {}", self.head.slug());
        Ok(Some(probe_pmfs(&self.net, &self.coding, &probe.obs, &probe.targets, usize::MAX, title)?))
    }
}

impl Agent for Bc {
    fn prepare(&self, episodes: &EpisodeBatch) -> anyhow::Result<BcData> {
        prepare_transitions(&self.spec, &self.coding, episodes, 1, 1.0)
    }

    fn policy(&self, acting: &Acting) -> Arc<dyn PolicyFactory> {
        Arc::new(MlpPolicyFactory::new(self.net.valid(), self.coding.clone(), &self.spec, acting, "bc"))
    }
}

/// The PMFs of `net` at the probe rows `obs` with their taken bins `targets`, the first `images` rows drawn as
/// `sample<r>` under `title`.
pub fn probe_pmfs(
    net: &MlpPolicy,
    coding: &ActionCoding,
    obs: &Tensor<2>,
    targets: &Tensor<2, Int>,
    images: usize,
    title: String,
) -> anyhow::Result<ActionPmfs> {
    let pmfs = net.valid().pmfs(obs.clone());
    let targets = int_to_host(targets.clone())?.into_iter().map(|t| Some(t as usize)).collect();
    let rows = obs.dims()[0].min(images);
    let images = (0..rows).map(|r| (r, format!("sample{r}"))).collect();
    Ok(ActionPmfs { bins: coding.bins(), pmfs, targets, images, axes: coding.bin_axes(), title })
}

// ----------------------------------------------------------------------------------------------------------------
// Acting

/// Appends `(x − mean) / std` of `obs`, clipped to `[-clip, clip]` when given: how every acting policy and the
/// learner normalise an observation, so that both see the same numbers.
pub fn push_normalized_obs(obs: &[f32], mean: &[f32], std: &[f32], clip: Option<f32>, out: &mut Vec<f32>) {
    out.extend(
        obs.iter().zip(mean).zip(std).map(|((x, m), s)| (x - m) / s).map(|x| clip.map_or(x, |c| x.clamp(-c, c))),
    );
}

/// Builds [`MlpActor`]s sharing one inference copy of an [`MlpPolicy`].
#[derive(Clone)]
pub struct MlpPolicyFactory {
    net: Arc<MlpPolicy>,
    coding: Arc<ActionCoding>,
    obs_mean: Arc<Vec<f32>>,
    obs_std: Arc<Vec<f32>>,
    obs_clip: Option<f32>,
    decode: Decode,
    temperature: f32,
    name: &'static str,
}

impl MlpPolicyFactory {
    /// A factory over `net` (an inference copy), acting as `acting` says; `name` appears in descriptions.
    pub fn new(net: MlpPolicy, coding: ActionCoding, spec: &DataSpec, acting: &Acting, name: &'static str) -> Self {
        Self {
            net: Arc::new(net),
            coding: Arc::new(coding),
            obs_mean: Arc::new(spec.obs_mean.clone()),
            obs_std: Arc::new(spec.obs_std.clone()),
            obs_clip: None,
            decode: acting.decode,
            temperature: acting.temperature,
            name,
        }
    }

    /// The same, normalising observations with `mean` and `std` instead of the spec's and clipping them to
    /// `[-clip, clip]` (a running normaliser's statistics, as CleanRL's `NormalizeObservation` and clip).
    pub fn with_obs_normalizer(mut self, mean: Vec<f32>, std: Vec<f32>, clip: f32) -> Self {
        (self.obs_mean, self.obs_std, self.obs_clip) = (Arc::new(mean), Arc::new(std), Some(clip));
        self
    }
}

impl PolicyFactory for MlpPolicyFactory {
    fn make(&self) -> Box<dyn Policy> {
        Box::new(MlpActor { device: self.net.devices()[0].clone(), shared: self.clone() })
    }

    fn describe(&self) -> String {
        format!("{}({}, T {})", self.name, self.decode, self.temperature)
    }
}

/// Acts on the current observation alone.
pub struct MlpActor {
    shared: MlpPolicyFactory,
    device: Device,
}

impl Policy for MlpActor {
    fn act(&mut self, history: &History<'_>, rng: &mut dyn RngCore) -> Action {
        let s = &self.shared;
        let mut obs = Vec::new();
        push_normalized_obs(history.current(), &s.obs_mean, &s.obs_std, s.obs_clip, &mut obs);
        let n = obs.len();
        let features = self.shared.net.features(Tensor::from_data(TensorData::new(obs, [1, n]), &self.device));
        decode_heads(
            &self.shared.net.heads,
            features,
            &self.shared.coding,
            self.shared.decode,
            self.shared.temperature,
            rng,
        )
        .1
    }

    /// It reads the current observation only, so actors may switch it to newer weights inside an episode.
    fn markov(&self) -> bool {
        true
    }
}
