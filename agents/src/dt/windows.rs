//! [`Windows`]: a dataset prepared for Decision Transformer training, and its length-`K` windows (starts drawn by
//! the data layer's [`WindowIndex`]).

use std::collections::VecDeque;

use super::{ActionCoding, DtError, DtInput, Normalizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use frl_dataset::episodes::EpisodeBatch;
use frl_dataset::windows::WindowIndex;
use rand::RngCore;

/// Every step of a dataset as model inputs: scaled returns-to-go, normalised states, action features, head
/// targets and timesteps, flat over all episodes. Online, the same store is a trajectory FIFO: whole episodes are
/// added, and the oldest leave once the steps exceed the capacity.
pub struct Windows {
    obs_dim: usize,
    feat_dim: usize,
    heads: usize,
    context: usize,
    max_episode_len: usize,
    capacity: Option<usize>,
    lengths: VecDeque<usize>,
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
    /// Real steps of each window (its rows are the first ones of its `K` positions).
    pub lengths: Vec<usize>,
    /// The step's dropout seed, drawn with the batch.
    pub dropout_seed: u64,
    /// Index of the first window in the step's whole batch (nonzero for a part of it).
    pub first_window: usize,
}

impl Batch {
    /// Splits the windows into at most `parts` contiguous parts of near-equal size (parts without rows are left
    /// out), each with its share of the rows.
    pub fn split(self, parts: usize) -> Vec<(Batch, f64)> {
        let total: usize = self.lengths.iter().sum();
        if parts <= 1 || total == 0 {
            return vec![(self, 1.0)];
        }
        let [_, k, _] = self.input.states.dims();
        let mut out = Vec::with_capacity(parts);
        let mut row = 0;
        for windows in frl_learner::shards::ranges(self.lengths.len(), parts) {
            let (start, len) = (windows.start, windows.len());
            let lengths = self.lengths[windows].to_vec();
            let n: usize = lengths.iter().sum();
            if n > 0 {
                let i = &self.input;
                let narrow = |t: &Tensor<3>| t.clone().narrow(0, start, len);
                let batch = Batch {
                    input: DtInput {
                        returns: narrow(&i.returns),
                        states: narrow(&i.states),
                        actions: narrow(&i.actions),
                        timesteps: i.timesteps.clone().narrow(0, start, len),
                    },
                    rows: self.rows.clone().narrow(0, row, n).sub_scalar((start * k) as i64),
                    targets: self.targets.clone().narrow(0, row, n),
                    lengths,
                    dropout_seed: self.dropout_seed,
                    first_window: self.first_window + start,
                };
                out.push((batch, n as f64 / total as f64));
            }
            row += n;
        }
        out
    }
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
        let mut w = Self::empty(episodes.obs_dim, coding, context, max_episode_len, None);
        w.push(episodes, coding, norm)?;
        if w.returns.is_empty() {
            return Err(DtError::Data("the dataset has no steps".into()));
        }
        Ok(w)
    }

    /// An empty store for observations of `obs_dim` elements that keeps at most `capacity` steps (whole episodes,
    /// oldest out first; the newest episode always stays).
    pub fn empty(
        obs_dim: usize,
        coding: &ActionCoding,
        context: usize,
        max_episode_len: usize,
        capacity: Option<usize>,
    ) -> Self {
        Windows {
            obs_dim,
            feat_dim: coding.feature_dim(),
            heads: coding.heads(),
            context,
            max_episode_len,
            capacity,
            lengths: VecDeque::new(),
            index: WindowIndex::from_lengths([], context),
            returns: Vec::new(),
            states: Vec::new(),
            actions: Vec::new(),
            targets: Vec::new(),
            timesteps: Vec::new(),
        }
    }

    /// Adds `episodes`, their returns-to-go computed from the rewards they collected (hindsight relabelling), then
    /// drops the oldest episodes beyond the capacity. Nothing changes on an error.
    pub fn push(&mut self, episodes: &EpisodeBatch, coding: &ActionCoding, norm: &Normalizer) -> Result<(), DtError> {
        let (obs_dim, act_dim) = (episodes.obs_dim, episodes.act_dim);
        if act_dim != coding.act_dim() {
            return Err(DtError::Data(format!(
                "dataset actions have {act_dim} elements, the action space {}",
                coding.act_dim()
            )));
        }
        if obs_dim != self.obs_dim {
            return Err(DtError::Data(format!("observations have {obs_dim} elements, the model {}", self.obs_dim)));
        }
        let steps = episodes.steps();
        let mut add = Windows::empty(obs_dim, coding, self.context, self.max_episode_len, None);
        add.returns.reserve(steps);
        add.states.reserve(steps * obs_dim);
        add.actions.reserve(steps * add.feat_dim);
        add.targets.reserve(steps * add.heads);
        add.timesteps.reserve(steps);
        for (e, ep) in episodes.iter().enumerate() {
            let mut to_go: f64 = ep.episode_return();
            for t in 0..ep.len() {
                add.returns.push((to_go / norm.return_scale as f64) as f32);
                to_go -= ep.rewards[t] as f64;
                norm.push_obs(&ep.observations[t * obs_dim..(t + 1) * obs_dim], &mut add.states);
                let a = &ep.actions[t * act_dim..(t + 1) * act_dim];
                coding.push_features(a, &mut add.actions);
                coding
                    .push_targets(a, &mut add.targets)
                    .map_err(|err| DtError::Data(format!("episode {e} step {t}: {err}")))?;
                add.timesteps.push(t.min(self.max_episode_len - 1) as i64);
            }
            add.lengths.push_back(ep.len());
        }
        if add.states.iter().any(|v| !v.is_finite()) || add.returns.iter().any(|v| !v.is_finite()) {
            return Err(DtError::Data("the dataset holds non-finite observations or rewards".into()));
        }
        self.returns.append(&mut add.returns);
        self.states.append(&mut add.states);
        self.actions.append(&mut add.actions);
        self.targets.append(&mut add.targets);
        self.timesteps.append(&mut add.timesteps);
        self.lengths.append(&mut add.lengths);
        if let Some(capacity) = self.capacity {
            let mut drop = 0;
            while self.lengths.len() > 1 && self.returns.len() - drop > capacity {
                drop += self.lengths.pop_front().expect("more than one episode");
            }
            if drop > 0 {
                self.returns.drain(..drop);
                self.states.drain(..drop * self.obs_dim);
                self.actions.drain(..drop * self.feat_dim);
                self.targets.drain(..drop * self.heads);
                self.timesteps.drain(..drop);
            }
        }
        self.index = WindowIndex::from_lengths(self.lengths.iter().copied(), self.context);
        Ok(())
    }

    /// Episodes in the store.
    pub fn episodes(&self) -> usize {
        self.lengths.len()
    }

    /// The scaled return-to-go of every stored step, flat (oldest episode first).
    pub fn returns_to_go(&self) -> &[f32] {
        &self.returns
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
        let dropout_seed = rng.next_u64();
        Batch { dropout_seed, ..self.batch_at(&starts, device) }
    }

    /// The batch of windows starting at `starts` (dropout seed 0).
    pub fn batch_at(&self, starts: &[usize], device: &Device) -> Batch {
        let (b, k) = (starts.len(), self.index.context());
        let mut host = HostBatch::default();
        let mut rows = Vec::with_capacity(b * k);
        let mut lengths = Vec::with_capacity(b);
        for (i, &s) in starts.iter().enumerate() {
            let len = self.push_window(s, &mut host);
            rows.extend((0..len).map(|j| (i * k + j) as i64));
            lengths.push(len);
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
            lengths,
            dropout_seed: 0,
            first_window: 0,
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
