//! The Decision Transformer (Chen et al. 2021) on the [`Agent`] trait: length-`K` windows of (return-to-go, state,
//! action) tokens, one head per action dimension over bins, acting conditioned on a target return; and its online
//! fine-tuning (Online Decision Transformer, Zheng, Zhang & Grover 2022) on [`OnlineAgent`]: a trajectory FIFO whose
//! returns-to-go are the collected rewards (hindsight relabelling), acting by sampling at an exploration return, and
//! an entropy bonus with a learned temperature.

use std::collections::HashMap;
use std::sync::Arc;

use super::windows::{Batch, Windows};
use crate::common::int_to_host;
use crate::dt::{
    ActionCoding, DecisionTransformer, DecisionTransformerConfig, DropoutDraw, DtPolicyFactory, EvalSettings,
    Normalizer,
};
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use frl_envs::PolicyFactory;
use frl_heads::head::to_host;
use frl_heads::{Head, HeadConfig, HeadLoss};
use rand::RngCore;

use frl_dataset::episodes::EpisodeBatch;
use frl_learner::optim::DEFAULT_GROUP;
use frl_learner::params::{NamedTensor, load_params, named_params, prefixed, section};
use frl_learner::{
    Acting, ActionPmfs, Agent, DataSpec, Decode, ModelConfig, OnlineAgent, Optimizers, Scalars, ShardLoss, Trainable,
};

impl ModelConfig for DecisionTransformerConfig {
    fn validate(&self) -> anyhow::Result<()> {
        Ok(DecisionTransformerConfig::validate(self)?)
    }

    fn head(&self) -> Option<&HeadConfig> {
        Some(&self.head)
    }
}

/// The entropy temperature `λ` of the Online Decision Transformer, stored as `ln λ`.
#[derive(Module, Debug)]
pub struct Temperature {
    /// `ln λ`, `[1]`.
    pub log_value: Param<Tensor<1>>,
}

impl Temperature {
    /// `λ = value`.
    pub fn new(value: f64, device: &Device) -> Self {
        let t = Tensor::<1>::from_data(TensorData::new(vec![value.ln() as f32], [1]), device);
        Temperature { log_value: Param::from_tensor(t) }
    }

    /// `λ`, `[1]`.
    pub fn value(&self) -> Tensor<1> {
        self.log_value.val().exp()
    }
}

/// Optimiser group and parameter prefix of the entropy temperature.
const TEMPERATURE: &str = "temperature";

/// A Decision Transformer with what it needs to read data and act: action coding and input scaling.
pub struct Dt {
    /// The network.
    pub model: DecisionTransformer,
    /// The entropy temperature, when the config has an `entropy` bonus.
    pub temperature: Option<Temperature>,
    config: DecisionTransformerConfig,
    coding: ActionCoding,
    norm: Normalizer,
    obs_dim: usize,
    best_return: f64,
}

impl Dt {
    /// The same agent with its network on `device`.
    pub fn fork(&self, device: &Device) -> Self {
        Dt {
            model: self.model.clone().fork(device),
            temperature: self.temperature.clone().map(|t| t.fork(device)),
            config: self.config.clone(),
            coding: self.coding.clone(),
            norm: self.norm.clone(),
            obs_dim: self.obs_dim,
            best_return: self.best_return,
        }
    }

    /// The action coding (env actions ↔ tokens, head bins).
    pub fn coding(&self) -> &ActionCoding {
        &self.coding
    }

    /// The loss of a batch: state-token features of the real (unpadded) positions against their targets.
    pub fn loss(&self, batch: Batch) -> HeadLoss {
        let targets = batch.targets.clone();
        self.model.loss(rows(&self.model, batch), targets)
    }

    /// The return actors condition on while exploring.
    pub fn exploration_return(&self) -> f32 {
        self.config.exploration_return.unwrap_or(self.best_return as f32)
    }
}

impl Trainable for Dt {
    const KIND: &'static str = "dt";
    type Config = DecisionTransformerConfig;
    type Spec = DataSpec;
    type Data = Windows;
    type Batch = Batch;

    fn new(config: &Self::Config, spec: &DataSpec, rng: &mut dyn RngCore, device: &Device) -> anyhow::Result<Self> {
        let coding =
            ActionCoding::new(&spec.action_space, config.bins, config.bin_margin, config.action_permutation.clone())?;
        let model = DecisionTransformer::new(
            config,
            spec.obs_dim,
            coding.feature_dim(),
            coding.heads(),
            coding.bins(),
            rng,
            device,
        )?;
        let norm = Normalizer {
            obs_mean: spec.obs_mean.clone(),
            obs_std: spec.obs_std.clone(),
            return_scale: config.return_scale,
        };
        let temperature = config.entropy.as_ref().map(|e| Temperature::new(e.init_temperature, device));
        Ok(Dt {
            model,
            temperature,
            config: config.clone(),
            coding,
            norm,
            obs_dim: spec.obs_dim,
            best_return: spec.best_return,
        })
    }

    fn sample(&self, data: &Windows, batch_size: usize, rng: &mut dyn RngCore, device: &Device) -> Batch {
        data.sample(batch_size, rng, device)
    }

    /// With `train.shards` > 1 the batch's windows are split into parts that run on parallel threads; each part
    /// draws its windows' dropout masks, the ones it would see in one pass over the whole batch.
    fn train_step(&mut self, batch: Batch, opt: &mut Optimizers) -> anyhow::Result<Scalars> {
        let parts = batch.split(opt.shards());
        let (Some(temperature), Some(entropy)) = (&self.temperature, self.config.entropy.clone()) else {
            let (value, read) = opt.step_shards(DEFAULT_GROUP, &mut self.model, parts, |model, batch| {
                let targets = batch.targets.clone();
                crate::common::head_shard_loss(model.loss(rows(model, batch), targets))
            })?;
            return Ok(crate::common::head_scalars(value, &read));
        };
        // ODT: minimise cross-entropy − λ·H over the network with λ fixed, then λ·(H − target) over ln λ with H
        // fixed, so λ grows while the policy's entropy is below the target and shrinks above it.
        let lambda = temperature.value().detach();
        let (value, read) = opt.step_shards(DEFAULT_GROUP, &mut self.model, parts, |model, batch| {
            let targets = batch.targets.clone();
            let (loss, h) = model.loss_and_entropy(rows(model, batch), targets, true);
            let h = h.expect("asked for the entropy");
            let mut scalars = vec![loss.cross_entropy, h.clone(), lambda.clone()];
            scalars.extend(loss.regularizer);
            ShardLoss { loss: loss.total - lambda.clone() * h, scalars }
        })?;
        let h = Tensor::<1>::from_floats([read[1] as f32], &lambda.device());
        let temperature = self.temperature.as_mut().expect("matched above");
        let t_loss = temperature.value() * h.sub_scalar(entropy.target);
        opt.step(TEMPERATURE, temperature, t_loss)?;
        let regularizer = read.get(3).copied().unwrap_or(0.0);
        let scalars = vec![
            ("loss", value),
            ("cross_entropy", read[0]),
            ("regularizer", regularizer),
            ("entropy", read[1]),
            ("temperature", read[2]),
        ];
        Ok(scalars)
    }

    fn read_checkpoint(path: &std::path::Path) -> anyhow::Result<frl_learner::checkpoint::Checkpoint> {
        super::legacy::read_checkpoint(path)
    }

    fn params(&self) -> Vec<NamedTensor> {
        let mut params = named_params(&self.model);
        if let Some(t) = &self.temperature {
            params.extend(prefixed(TEMPERATURE, named_params(t)));
        }
        params
    }

    /// A checkpoint without a temperature (offline training without `entropy`) leaves it at `init_temperature`.
    fn load_params(mut self, values: &HashMap<String, NamedTensor>) -> Result<Self, String> {
        self.model = load_params(self.model, values)?;
        if let Some(t) = self.temperature.take() {
            let stored = section(values, TEMPERATURE);
            self.temperature = Some(if stored.is_empty() { t } else { load_params(t, &stored)? });
        }
        Ok(self)
    }

    /// PMFs at every real position of the probe windows; the first position of each window is drawn.
    fn probe_pmfs(&self, probe: &Batch) -> anyhow::Result<Option<ActionPmfs>> {
        let model = self.model.valid();
        let features = model.features(probe.input.clone());
        let [b, k, d] = features.dims();
        let rows = features.reshape([b * k, d]).select(0, probe.rows.clone());
        let pmfs = model.heads.iter().map(|h| to_host(h.pmf(rows.clone()))).collect();
        let targets = int_to_host(probe.targets.clone())?.into_iter().map(|t| Some(t as usize)).collect();
        let flat = int_to_host(probe.rows.clone())?;
        let images = flat
            .iter()
            .enumerate()
            .filter(|(_, f)| (**f as usize).is_multiple_of(k))
            .map(|(r, f)| (r, format!("window{}", *f as usize / k)))
            .collect();
        let title = format!("dt {}", self.config.head.slug());
        Ok(Some(ActionPmfs { bins: self.coding.bins(), pmfs, targets, images, axes: self.coding.bin_axes(), title }))
    }
}

impl Agent for Dt {
    const RETURN_CONDITIONED: bool = true;

    fn prepare(&self, episodes: &EpisodeBatch) -> anyhow::Result<Windows> {
        Ok(Windows::new(episodes, &self.coding, &self.norm, self.config.context, self.config.max_episode_len)?)
    }

    fn policy(&self, acting: &Acting) -> Arc<dyn PolicyFactory> {
        let settings = EvalSettings {
            target_return: acting.target_return.unwrap_or(self.best_return as f32),
            decode: acting.decode,
            temperature: acting.temperature,
        };
        Arc::new(DtPolicyFactory::new(
            self.model.valid(),
            self.coding.clone(),
            self.norm.clone(),
            settings,
            self.obs_dim,
        ))
    }
}

/// Online fine-tuning (ODT): the replay store is a trajectory FIFO of [`Windows`]; actors sample actions from the
/// heads' PMFs (temperature 1) conditioned on the exploration return.
impl OnlineAgent for Dt {
    fn replay(&self, capacity: usize) -> anyhow::Result<Windows> {
        let c = &self.config;
        Ok(Windows::empty(self.obs_dim, &self.coding, c.context, c.max_episode_len, Some(capacity)))
    }

    fn insert(&self, data: &mut Windows, episodes: &EpisodeBatch) -> anyhow::Result<()> {
        Ok(data.push(episodes, &self.coding, &self.norm)?)
    }

    fn stored(data: &Windows) -> usize {
        data.steps()
    }

    fn explore(&self, _env_steps: u64) -> Arc<dyn PolicyFactory> {
        let acting =
            Acting { decode: Decode::Sample, temperature: 1.0, target_return: Some(self.exploration_return()) };
        self.policy(&acting)
    }

    fn exploration_scalars(&self, _env_steps: u64) -> Scalars {
        vec![("exploration_return", self.exploration_return() as f64)]
    }
}

/// State-token features of the batch's real positions in a training pass, `[rows, d]`.
fn rows(model: &DecisionTransformer, batch: Batch) -> Tensor<2> {
    let draw = DropoutDraw { seed: batch.dropout_seed, first_window: batch.first_window };
    let features = model.features_train(batch.input, draw);
    let [b, k, d] = features.dims();
    features.reshape([b * k, d]).select(0, batch.rows)
}
