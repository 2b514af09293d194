//! The learner: the run layer every training loop stands on ([`run`]: run folder, seeds, optimiser groups, NaN
//! guard, TensorBoard, checkpoints and resume, progress, summary), the traits models and agents implement
//! ([`Trainable`], [`Agent`], [`OnlineAgent`]), the loops on top ([`fit_model`] for any model, [`fit`] for agents
//! from a dataset, [`fit_online`] for agents from their actors), training jobs ([`TrainJob`]), the AdamW optimiser
//! and its groups, checkpoints, and the choice of device.
//!
//! Data flow of `frl train`: dataset → [`Agent::prepare`] → per step [`Trainable::sample`] →
//! [`Trainable::train_step`] (losses and [`Optimizers::step`] per network) → TensorBoard scalars / histograms / PMF
//! images, checkpoints every `checkpoint_every` steps, and evaluation on actor threads every `eval.every` steps from
//! [`Agent::policy`].

#![warn(missing_docs)]

pub mod adamw;
pub mod agent;
pub mod backend;
pub mod checkpoint;
mod fit;
pub mod job;
mod online;
pub mod optim;
pub mod params;
pub mod run;
pub mod shards;

pub use adamw::{AdamW, AdamWConfig};
pub use agent::{Acting, ActionPmfs, Agent, DataSpec, Decode, ModelConfig, OnPolicy, OnlineAgent, Scalars, Trainable};
pub use checkpoint::OnlineProgress;
pub use fit::{data_spec, fit, load_agent};
pub use frl_rollout::{EvalReport, evaluate};
pub use frl_tensorboard::BinAxis;
pub use job::{EvalConfig, LrDecay, OnlineConfig, TrainConfig, TrainJob, job_origin, job_text, lr_at};
pub use online::fit_online;
pub use optim::{NonFinite, Optimizers};
pub use run::{
    BEST_FILE, LoadedModel, OnlineReport, TrainOptions, TrainSummary, fit_model, load_model, load_model_from,
};
pub use shards::ShardLoss;
