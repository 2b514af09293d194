//! The Decision Transformer (Chen et al. 2021) on the [`Agent`] trait: length-`K` windows of (return-to-go, state,
//! action) tokens, one head per action dimension over bins, acting conditioned on a target return.

use std::collections::HashMap;
use std::sync::Arc;

use super::windows::{Batch, Windows};
use crate::dt::{
    ActionCoding, DecisionTransformer, DecisionTransformerConfig, DtPolicyFactory, EvalSettings, Normalizer,
};
use burn::module::Module;
use burn::tensor::Device;
use frl_envs::PolicyFactory;
use frl_heads::head::to_host;
use frl_heads::{Head, HeadConfig, HeadLoss};
use rand::RngCore;

use frl_dataset::episodes::EpisodeBatch;
use frl_learner::optim::DEFAULT_GROUP;
use frl_learner::params::{NamedTensor, load_params, named_params};
use frl_learner::{Acting, ActionPmfs, Agent, AgentConfig, DataSpec, Optimizers, Scalars};

impl AgentConfig for DecisionTransformerConfig {
    fn validate(&self) -> anyhow::Result<()> {
        Ok(DecisionTransformerConfig::validate(self)?)
    }

    fn head(&self) -> Option<&HeadConfig> {
        Some(&self.head)
    }
}

/// A Decision Transformer with what it needs to read data and act: action coding and input scaling.
pub struct Dt {
    /// The network.
    pub model: DecisionTransformer,
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
        let features = self.model.features(batch.input);
        let [b, k, d] = features.dims();
        let rows = features.reshape([b * k, d]).select(0, batch.rows);
        self.model.loss(rows, batch.targets)
    }
}

impl Agent for Dt {
    const KIND: &'static str = "dt";
    type Config = DecisionTransformerConfig;
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
        Ok(Dt { model, config: config.clone(), coding, norm, obs_dim: spec.obs_dim, best_return: spec.best_return })
    }

    fn prepare(&self, episodes: &EpisodeBatch) -> anyhow::Result<Windows> {
        Ok(Windows::new(episodes, &self.coding, &self.norm, self.config.context, self.config.max_episode_len)?)
    }

    fn sample(&self, data: &Windows, batch_size: usize, rng: &mut dyn RngCore, device: &Device) -> Batch {
        data.sample(batch_size, rng, device)
    }

    fn train_step(mut self, batch: Batch, opt: &mut Optimizers) -> anyhow::Result<(Self, Scalars)> {
        let loss = self.loss(batch);
        let (model, value) = opt.step(DEFAULT_GROUP, self.model, loss.total)?;
        self.model = model;
        Ok((self, crate::head_loss_scalars(value, loss.cross_entropy, loss.regularizer)))
    }

    fn params(&self) -> Vec<NamedTensor> {
        named_params(&self.model)
    }

    fn load_params(mut self, values: &HashMap<String, NamedTensor>) -> Result<Self, String> {
        self.model = load_params(self.model, values)?;
        Ok(self)
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

    /// PMFs at every real position of the probe windows; the first position of each window is drawn.
    fn action_pmfs(&self, probe: &Batch) -> anyhow::Result<Option<ActionPmfs>> {
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

/// An integer tensor's values on the host.
pub fn int_to_host<const D: usize>(t: burn::tensor::Tensor<D, burn::tensor::Int>) -> anyhow::Result<Vec<i64>> {
    t.into_data().try_to_vec_as::<i64>().map_err(|e| anyhow::anyhow!("reading an integer tensor: {e:?}"))
}
