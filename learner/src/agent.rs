//! The [`Agent`] trait: what an algorithm supplies to the generic learner ([`fit`](super::fit)), and the few types
//! the two exchange ([`DataSpec`], [`Acting`], [`Scalars`], [`ActionPmfs`]).
//!
//! An agent owns its networks, its sampling from the prepared dataset and its training step; the learner owns
//! everything around them (job file, device, LR schedule, optimiser groups and clipping, TensorBoard, checkpoints,
//! resume, NaN guard, Ctrl-C, evaluation by actors, progress, summary).

use std::collections::HashMap;
use std::fmt::{self, Debug};
use std::str::FromStr;
use std::sync::Arc;

use burn::tensor::Device;
use frl_envs::PolicyFactory;
use frl_envs::Space;
use frl_heads::HeadConfig;
use rand::RngCore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::optim::Optimizers;
use super::params::NamedTensor;
use frl_dataset::episodes::EpisodeBatch;

/// An agent's own section of a job file (`[dt]`, `[bc]`, `[iql]`): serde with defaults, validated.
pub trait AgentConfig:
    Serialize + DeserializeOwned + Clone + Debug + PartialEq + Default + Send + Sync + 'static
{
    /// Checks every field; an error names the field at fault.
    fn validate(&self) -> anyhow::Result<()>;

    /// The action head, for agents that act through one (summaries and head comparisons show it).
    fn head(&self) -> Option<&HeadConfig> {
        None
    }
}

/// What the learner knows of the training data when it builds an agent; stored in every checkpoint, so that the
/// agent can be rebuilt from the checkpoint alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// Env id of the data (evaluation runs it).
    pub env: String,
    /// Elements of one observation.
    pub obs_dim: usize,
    /// The action space.
    pub action_space: Space,
    /// Per-element observation mean over the dataset.
    pub obs_mean: Vec<f32>,
    /// Per-element observation standard deviation (floored at 1e-6).
    pub obs_std: Vec<f32>,
    /// The best episode return in the dataset (the DT's default evaluation target).
    pub best_return: f64,
}

impl DataSpec {
    /// Appends the normalised `obs` (`(x - mean) / std`).
    pub fn push_normalized(&self, obs: &[f32], out: &mut Vec<f32>) {
        out.extend(obs.iter().zip(&self.obs_mean).zip(&self.obs_std).map(|((x, m), s)| (x - m) / s));
    }
}

/// How a head's distribution becomes an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decode {
    /// Sample from `softmax(logits / temperature)`.
    Sample,
    /// The most likely bin.
    Mode,
    /// The expected bin centre (continuous actions).
    Mean,
}

/// How a trained agent acts when evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acting {
    /// How a head's distribution becomes an action.
    pub decode: Decode,
    /// Softmax temperature for sampling.
    pub temperature: f32,
    /// Return to condition on (return-conditioned agents; default: the dataset's best return).
    pub target_return: Option<f32>,
}

/// Named scalars of one training step, logged as `train/<name>` (means over each logging window). An agent reports
/// at least `loss`.
pub type Scalars = Vec<(&'static str, f64)>;

/// Predicted action PMFs at fixed probe rows, for the learner's PMF images, histograms and smoothness score.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionPmfs {
    /// Bins per head.
    pub bins: usize,
    /// Per head: `rows × bins` probabilities, row-major.
    pub pmfs: Vec<Vec<f32>>,
    /// The bin to mark per row and head, `rows × heads` (the dataset's action, a Bellman target), if any.
    pub targets: Vec<Option<usize>>,
    /// Rows drawn as images, with their tag (`window0`, `sample3`).
    pub images: Vec<(usize, String)>,
    /// What each head's bins stand for (action values or action labels), for the images' x axis.
    pub axes: Vec<frl_tensorboard::BinAxis>,
    /// The images' title (agent and head).
    pub title: String,
}

/// A learning algorithm, trained by the generic learner. See ARCHITECTURE.md, "Add an agent".
///
/// The learner calls, in order: [`Agent::new`] (or rebuilds from a checkpoint with [`Agent::load_params`]),
/// [`Agent::prepare`] once, then per step [`Agent::sample`] and [`Agent::train_step`]; [`Agent::policy`] for
/// evaluation snapshots, [`Agent::params`] for checkpoints and weight histograms, [`Agent::action_pmfs`] for plots.
pub trait Agent: Sized + Send + 'static {
    /// The agent's name in job files and checkpoints (`agent = "bc"`, section `[bc]`).
    const KIND: &'static str;
    /// Its section of the job file.
    type Config: AgentConfig;
    /// The dataset prepared for sampling (transitions, windows), built once.
    type Data: Send + Sync;
    /// One training batch on the device.
    type Batch;

    /// Fresh networks for data described by `spec`, every initial parameter drawn from `rng`.
    fn new(config: &Self::Config, spec: &DataSpec, rng: &mut dyn RngCore, device: &Device) -> anyhow::Result<Self>;

    /// Prepares the episodes for sampling (normalised, binned).
    fn prepare(&self, episodes: &EpisodeBatch) -> anyhow::Result<Self::Data>;

    /// A batch of `batch_size` drawn with `rng` (the learner reseeds it from `(seed, step)` every step).
    fn sample(&self, data: &Self::Data, batch_size: usize, rng: &mut dyn RngCore, device: &Device) -> Self::Batch;

    /// One training step: losses, then [`Optimizers::step`] once per optimiser group; returns the updated agent and
    /// its scalars (at least `loss`).
    fn train_step(self, batch: Self::Batch, opt: &mut Optimizers) -> anyhow::Result<(Self, Scalars)>;

    /// Every parameter of every network, trained or not (targets included), with unique dotted names.
    fn params(&self) -> Vec<NamedTensor>;

    /// The agent with every parameter replaced by the same-named entry of `values`; errors name the parameter.
    fn load_params(self, values: &HashMap<String, NamedTensor>) -> Result<Self, String>;

    /// A policy over an inference copy of the networks, for actors.
    fn policy(&self, acting: &Acting) -> Arc<dyn PolicyFactory>;

    /// Action PMFs at the rows of a probe batch (drawn once per run), for agents with action heads.
    fn action_pmfs(&self, _probe: &Self::Batch) -> anyhow::Result<Option<ActionPmfs>> {
        Ok(None)
    }
}

impl fmt::Display for Decode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Decode::Sample => "sample",
            Decode::Mode => "mode",
            Decode::Mean => "mean",
        })
    }
}

impl FromStr for Decode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sample" => Ok(Decode::Sample),
            "mode" => Ok(Decode::Mode),
            "mean" => Ok(Decode::Mean),
            _ => Err(format!("unknown decoding `{s}` (expected sample, mode or mean)")),
        }
    }
}
