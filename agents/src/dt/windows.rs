//! [`Windows`]: a dataset prepared for Decision Transformer training, and its length-`K` windows (starts drawn by
//! the data layer's [`WindowIndex`]).

use super::{ActionCoding, DtError, DtInput, Normalizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use frl_dataset::episodes::EpisodeBatch;
use frl_dataset::windows::WindowIndex;
use rand::RngCore;

/// Every step of a dataset as model inputs: scaled returns-to-go, normalised states, action features, head
/// targets and timesteps, flat over all episodes.
pub struct Windows {
    obs_dim: usize,
    feat_dim: usize,
    heads: usize,
    index: WindowIndex,
    returns: Vec<f32>,
    states: Vec<f32>,
    actions: Vec<f32>,
    targets: Vec<i64>,
    timesteps: Vec<i64>,
}

/// One sampled batch: model inputs, plus the flat rows (`b * K + j`) that hold real steps and their targets.
pub struct Batch {
    /// Model inputs, `B` windows of `K` steps, right-padded.
    pub input: DtInput,
    /// Indices into the `[B * K]` positions that are real steps.
    pub rows: Tensor<1, Int>,
    /// Head targets of those rows, `[rows, heads]`.
    pub targets: Tensor<2, Int>,
}

impl Windows {
    /// Prepares `episodes` with the given scaling; timesteps beyond `max_episode_len` reuse the last embedding.
    pub fn new(
        episodes: &EpisodeBatch,
        coding: &ActionCoding,
        norm: &Normalizer,
        context: usize,
        max_episode_len: usize,
    ) -> Result<Self, DtError> {
        let (obs_dim, act_dim) = (episodes.obs_dim, episodes.act_dim);
        if act_dim != coding.act_dim() {
            return Err(DtError::Data(format!(
                "dataset actions have {act_dim} elements, the action space {}",
                coding.act_dim()
            )));
        }
        let steps = episodes.steps();
        let mut w = Windows {
            obs_dim,
            feat_dim: coding.feature_dim(),
            heads: coding.heads(),
            index: WindowIndex::new(episodes, context),
            returns: Vec::with_capacity(steps),
            states: Vec::with_capacity(steps * obs_dim),
            actions: Vec::with_capacity(steps * coding.feature_dim()),
            targets: Vec::with_capacity(steps * coding.heads()),
            timesteps: Vec::with_capacity(steps),
        };
        for (e, ep) in episodes.iter().enumerate() {
            let mut to_go: f64 = ep.episode_return();
            for t in 0..ep.len() {
                w.returns.push((to_go / norm.return_scale as f64) as f32);
                to_go -= ep.rewards[t] as f64;
                norm.push_obs(&ep.observations[t * obs_dim..(t + 1) * obs_dim], &mut w.states);
                let a = &ep.actions[t * act_dim..(t + 1) * act_dim];
                coding.push_features(a, &mut w.actions);
                coding
                    .push_targets(a, &mut w.targets)
                    .map_err(|err| DtError::Data(format!("episode {e} step {t}: {err}")))?;
                w.timesteps.push(t.min(max_episode_len - 1) as i64);
            }
        }
        if w.returns.is_empty() {
            return Err(DtError::Data("the dataset has no steps".into()));
        }
        if w.states.iter().any(|v| !v.is_finite()) || w.returns.iter().any(|v| !v.is_finite()) {
            return Err(DtError::Data("the dataset holds non-finite observations or rewards".into()));
        }
        Ok(w)
    }

    /// Steps in the dataset.
    pub fn steps(&self) -> usize {
        self.returns.len()
    }

    /// Builds the window that starts at step `start` (inputs for `K` positions, right-padded with zeros) into the
    /// host buffers; returns how many positions are real.
    fn push_window(&self, start: usize, host: &mut HostBatch) -> usize {
        let len = self.index.len_at(start);
        let pad = self.index.context() - len;
        let (o, f) = (self.obs_dim, self.feat_dim);
        host.returns.extend_from_slice(&self.returns[start..start + len]);
        host.returns.extend(std::iter::repeat_n(0.0, pad));
        host.states.extend_from_slice(&self.states[start * o..(start + len) * o]);
        host.states.extend(std::iter::repeat_n(0.0, pad * o));
        host.actions.extend_from_slice(&self.actions[start * f..(start + len) * f]);
        host.actions.extend(std::iter::repeat_n(0.0, pad * f));
        host.timesteps.extend_from_slice(&self.timesteps[start..start + len]);
        host.timesteps.extend(std::iter::repeat_n(0, pad));
        host.targets.extend_from_slice(&self.targets[start * self.heads..(start + len) * self.heads]);
        len
    }

    /// `batch` windows starting at uniformly drawn steps (so episodes are drawn in proportion to their length).
    pub fn sample(&self, batch: usize, rng: &mut dyn RngCore, device: &Device) -> Batch {
        let starts = self.index.sample_starts(batch, rng);
        self.batch_at(&starts, device)
    }

    /// The batch of windows starting at `starts`.
    pub fn batch_at(&self, starts: &[usize], device: &Device) -> Batch {
        let (b, k) = (starts.len(), self.index.context());
        let mut host = HostBatch::default();
        let mut rows = Vec::with_capacity(b * k);
        for (i, &s) in starts.iter().enumerate() {
            let len = self.push_window(s, &mut host);
            rows.extend((0..len).map(|j| (i * k + j) as i64));
        }
        let n = rows.len();
        Batch {
            input: DtInput {
                returns: Tensor::from_data(TensorData::new(host.returns, [b, k, 1]), device),
                states: Tensor::from_data(TensorData::new(host.states, [b, k, self.obs_dim]), device),
                actions: Tensor::from_data(TensorData::new(host.actions, [b, k, self.feat_dim]), device),
                timesteps: Tensor::from_data(TensorData::new(host.timesteps, [b, k]), device),
            },
            rows: Tensor::from_data(TensorData::new(rows, [n]), device),
            targets: Tensor::from_data(TensorData::new(host.targets, [n, self.heads]), device),
        }
    }
}

#[derive(Default)]
struct HostBatch {
    returns: Vec<f32>,
    states: Vec<f32>,
    actions: Vec<f32>,
    timesteps: Vec<i64>,
    targets: Vec<i64>,
}

/// The DT's input scaling for `episodes`: their observation statistics and `return_scale`.
pub fn normalizer(episodes: &EpisodeBatch, return_scale: f32) -> Normalizer {
    let (obs_mean, obs_std) = episodes.observation_stats();
    Normalizer { obs_mean, obs_std, return_scale }
}
