//! What a model supplies to the run layer ([`Trainable`]), what an RL agent adds ([`Agent`], [`OnlineAgent`]), and
//! the few types they exchange with the learner ([`DataSpec`], [`Acting`], [`Scalars`], [`ActionPmfs`]).
//!
//! A model owns its networks, its sampling from prepared data and its training step; the run layer
//! ([`run`](super::run)) owns everything around them (job file, device, LR schedule, optimiser groups and clipping,
//! TensorBoard, checkpoints, resume, NaN guard, Ctrl-C, progress, summary). An agent adds the dataset of episodes it
//! learns from and the policy actors run; the loops on top ([`fit`](super::fit), [`fit_online`](super::fit_online))
//! add evaluation by actors and, online, the actors themselves.

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

/// A model's own section of a job file (`[dt]`, `[bc]`, `[iql]`): serde with defaults, validated.
pub trait ModelConfig:
    Serialize + DeserializeOwned + schemars::JsonSchema + Clone + Debug + PartialEq + Default + Send + Sync + 'static
{
    /// Checks every field; an error names the field at fault.
    fn validate(&self) -> anyhow::Result<()>;

    /// The output head, for models that predict through one (summaries and head comparisons show it).
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// Predicted PMFs (of actions, returns or next tokens) at fixed probe rows, for the run layer's PMF images,
/// histograms and smoothness score.
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

/// A model the run layer trains: an RL agent or any other network (a forecaster, a density model). See
/// ARCHITECTURE.md, "Add an agent".
///
/// The run layer calls, in order: [`Trainable::new`] (or rebuilds from a checkpoint with
/// [`Trainable::load_params`]), then per step [`Trainable::sample`] and [`Trainable::train_step`];
/// [`Trainable::params`] for checkpoints and weight histograms, [`Trainable::probe_pmfs`] for PMF images.
pub trait Trainable: Sized + Send + 'static {
    /// The model's name in job files and checkpoints (`agent = "bc"`, section `[bc]`).
    const KIND: &'static str;
    /// What its probe PMFs are over, the prefix of their TensorBoard tags (`action` → `action_pmf/…`,
    /// `actions/pmf_smoothness`; a forecaster's `next_token`).
    const PMF_TAG: &'static str = "action";
    /// Its section of the job file.
    type Config: ModelConfig;
    /// What the model is built for (an agent's [`DataSpec`]); stored in every checkpoint, so that the model can be
    /// rebuilt from the checkpoint alone.
    type Spec: Serialize + DeserializeOwned + Clone + Debug + PartialEq + Send + Sync + 'static;
    /// The training data prepared for sampling (transitions, windows), built once.
    type Data: Send + Sync;
    /// One training batch on the device.
    type Batch;

    /// Fresh networks for `spec`, every initial parameter drawn from `rng`.
    fn new(config: &Self::Config, spec: &Self::Spec, rng: &mut dyn RngCore, device: &Device) -> anyhow::Result<Self>;

    /// A batch of `batch_size` drawn with `rng` (the run layer reseeds it from `(seed, step)` every step).
    fn sample(&self, data: &Self::Data, batch_size: usize, rng: &mut dyn RngCore, device: &Device) -> Self::Batch;

    /// One training step: losses, then [`Optimizers::step`] once per optimiser group (the step's one host read per
    /// group, which also reads the logged values); returns the step's scalars (at least `loss`).
    fn train_step(&mut self, batch: Self::Batch, opt: &mut Optimizers) -> anyhow::Result<Scalars>;

    /// Every parameter of every network, trained or not (targets included), with unique dotted names.
    fn params(&self) -> Vec<NamedTensor>;

    /// The model with every parameter replaced by the same-named entry of `values`; errors name the parameter.
    fn load_params(self, values: &HashMap<String, NamedTensor>) -> Result<Self, String>;

    /// Reads a checkpoint of this model (errors name the file); a model whose older versions wrote another layout
    /// converts it here with [`checkpoint::load_with`](crate::checkpoint::load_with).
    fn read_checkpoint(path: &std::path::Path) -> anyhow::Result<crate::checkpoint::Checkpoint<Self::Spec>> {
        crate::checkpoint::load_as(path)
    }

    /// Predicted PMFs at the rows of a probe batch (drawn once per run), for models with heads: TensorBoard images,
    /// histograms and the smoothness score.
    fn probe_pmfs(&self, _probe: &Self::Batch) -> anyhow::Result<Option<ActionPmfs>> {
        Ok(None)
    }
}

/// An RL agent: a [`Trainable`] built for a dataset of episodes ([`DataSpec`]) that acts in an env. Trained from a
/// dataset by [`fit`](super::fit); see ARCHITECTURE.md, "Add an agent", and the crate `frl_agents`' documentation
/// for a doctest that trains and evaluates one.
pub trait Agent: Trainable<Spec = DataSpec> {
    /// Whether its policy is conditioned on a target return (`--target-return`, `eval.target_return`).
    const RETURN_CONDITIONED: bool = false;

    /// Whether it learns only from its own actors (an on-policy agent): jobs without `[online]` are refused.
    const ONLINE_ONLY: bool = false;

    /// Prepares the episodes for sampling (normalised, binned).
    fn prepare(&self, episodes: &EpisodeBatch) -> anyhow::Result<Self::Data>;

    /// A policy over an inference copy of the networks, for actors.
    fn policy(&self, acting: &Acting) -> Arc<dyn PolicyFactory>;
}

/// An agent that also learns from its own experience ([`fit_online`](super::fit_online)): a replay store that grows
/// as episodes arrive, and an exploring policy for the actors.
pub trait OnlineAgent: Agent {
    /// An empty replay store that keeps at most `capacity` steps (the oldest go first).
    fn replay(&self, capacity: usize) -> anyhow::Result<Self::Data>;

    /// Adds finished episodes to the store.
    fn insert(&self, data: &mut Self::Data, episodes: &EpisodeBatch) -> anyhow::Result<()>;

    /// Steps the store holds.
    fn stored(data: &Self::Data) -> usize;

    /// The policy actors explore with after `env_steps` env steps (ε-greedy, an exploration return, ...).
    fn explore(&self, env_steps: u64) -> Arc<dyn PolicyFactory>;

    /// Whether [`OnlineAgent::insert`] takes fragments of running episodes as they arrive (`online.fragment_steps`);
    /// otherwise it gets each episode whole once it ended.
    fn takes_fragments(&self) -> bool {
        false
    }

    /// The steps so far of an episode that was running when the run was saved (already counted and learned from),
    /// as a resumed run continues it: the agent rebuilds what it keeps per running episode (a reward normaliser's
    /// discounted sum).
    fn resume_episode(&self, _episode: &frl_dataset::episodes::EpisodeRef<'_>) {}

    /// Scalars describing the exploration at `env_steps` (e.g. `epsilon`), logged as `online/<name>`.
    fn exploration_scalars(&self, _env_steps: u64) -> Scalars {
        Vec::new()
    }

    /// For an on-policy agent (PPO): how it trains on each round of experience. `None`: off-policy, trained at
    /// `online.updates_per_step` from a replay store.
    fn on_policy(&self) -> Option<OnPolicy> {
        None
    }
}

/// How an on-policy agent trains: every env slot takes `rollout_steps` steps with the newest weights, then the
/// learner runs exactly `updates` updates on that round (and on nothing else) and broadcasts the result, which the
/// next round acts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnPolicy {
    /// Env steps per env slot per round (a rollout).
    pub rollout_steps: usize,
    /// Updates per round (epochs × minibatches).
    pub updates: u64,
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
