//! [`DtPolicy`]: a Decision Transformer acting in an env with return-to-go conditioning.

use std::sync::Arc;

use burn::module::Module as _;
use burn::tensor::{Device, Int, Tensor, TensorData};
use frl_envs::Action;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::{ActionCoding, DecisionTransformer, DtInput};
use crate::common::decode_heads;
use frl_envs::{History, Policy, PolicyFactory};
use frl_learner::Decode;

/// The input scaling a model was trained with, stored with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalizer {
    /// Per-element observation mean over the training dataset.
    pub obs_mean: Vec<f32>,
    /// Per-element observation standard deviation (floored at 1e-6).
    pub obs_std: Vec<f32>,
    /// Returns-to-go are divided by this.
    pub return_scale: f32,
}

impl Normalizer {
    /// Appends the normalised `obs`.
    pub fn push_obs(&self, obs: &[f32], out: &mut Vec<f32>) {
        out.extend(obs.iter().zip(&self.obs_mean).zip(&self.obs_std).map(|((x, m), s)| (x - m) / s));
    }
}

/// How evaluation acts: target return, decoding and temperature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSettings {
    /// The return-to-go the first step is conditioned on.
    pub target_return: f32,
    /// How actions are chosen from the heads.
    pub decode: Decode,
    /// Softmax temperature for `sample`.
    pub temperature: f32,
}

/// Builds [`DtPolicy`] instances sharing one inference copy of a model.
pub struct DtPolicyFactory {
    model: Arc<DecisionTransformer>,
    coding: Arc<ActionCoding>,
    norm: Arc<Normalizer>,
    settings: EvalSettings,
    obs_dim: usize,
}

impl DtPolicyFactory {
    /// A factory over an inference (non-autodiff) copy of `model`.
    pub fn new(
        model: DecisionTransformer,
        coding: ActionCoding,
        norm: Normalizer,
        settings: EvalSettings,
        obs_dim: usize,
    ) -> Self {
        Self { model: Arc::new(model), coding: Arc::new(coding), norm: Arc::new(norm), settings, obs_dim }
    }
}

impl PolicyFactory for DtPolicyFactory {
    fn make(&self) -> Box<dyn Policy> {
        Box::new(DtPolicy {
            model: self.model.clone(),
            coding: self.coding.clone(),
            norm: self.norm.clone(),
            settings: self.settings.clone(),
            obs_dim: self.obs_dim,
            device: self.model.devices()[0].clone(),
        })
    }

    fn describe(&self) -> String {
        format!(
            "decision-transformer(target {}, {}, T {})",
            self.settings.target_return, self.settings.decode, self.settings.temperature
        )
    }
}

/// A Decision Transformer acting on the last `K` steps of the episode, conditioned on the target return minus the
/// reward collected so far.
pub struct DtPolicy {
    model: Arc<DecisionTransformer>,
    coding: Arc<ActionCoding>,
    norm: Arc<Normalizer>,
    settings: EvalSettings,
    obs_dim: usize,
    device: Device,
}

impl DtPolicy {
    /// The per-head PMFs `[heads][bins]` for the current step, then the chosen action.
    pub fn pmfs_and_action(&mut self, history: &History<'_>, rng: &mut dyn RngCore) -> (Vec<Vec<f32>>, Action) {
        let features = self.features(history);
        let s = &self.settings;
        decode_heads(&self.model.heads, features, &self.coding, s.decode, s.temperature, rng)
    }

    fn features(&mut self, history: &History<'_>) -> Tensor<2> {
        let k = self.model.context();
        let t_now = history.len();
        let start = (t_now + 1).saturating_sub(k);
        let t = t_now + 1 - start;
        let f = self.coding.feature_dim();
        let mut returns = Vec::with_capacity(t);
        let mut states = Vec::with_capacity(t * self.obs_dim);
        let mut actions = Vec::with_capacity(t * f);
        let mut timesteps = Vec::with_capacity(t);
        let mut collected: f32 = history.rewards[..start].iter().sum();
        let last_time = self.model.max_episode_len() as i64 - 1;
        for i in start..=t_now {
            returns.push((self.settings.target_return - collected) / self.norm.return_scale);
            if i < t_now {
                collected += history.rewards[i];
            }
            self.norm.push_obs(&history.observations[i * self.obs_dim..(i + 1) * self.obs_dim], &mut states);
            if i < t_now {
                let a = history.act_dim;
                self.coding.push_features(&history.actions[i * a..(i + 1) * a], &mut actions);
            } else {
                actions.extend(std::iter::repeat_n(0.0, f));
            }
            timesteps.push((i as i64).min(last_time));
        }
        let device = &self.device;
        let input = DtInput {
            returns: Tensor::from_data(TensorData::new(returns, [1, t, 1]), device),
            states: Tensor::from_data(TensorData::new(states, [1, t, self.obs_dim]), device),
            actions: Tensor::from_data(TensorData::new(actions, [1, t, f]), device),
            timesteps: Tensor::<2, Int>::from_data(TensorData::new(timesteps, [1, t]), device),
        };
        let d = self.model.features(input);
        let [_, _, dim] = d.dims();
        d.narrow(1, t - 1, 1).reshape([1, dim])
    }
}

impl Policy for DtPolicy {
    fn act(&mut self, history: &History<'_>, rng: &mut dyn RngCore) -> Action {
        self.pmfs_and_action(history, rng).1
    }
}
