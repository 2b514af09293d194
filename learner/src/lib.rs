//! The generic learner: the [`Agent`] trait every algorithm implements, training jobs ([`TrainJob`]), [`fit`] (the
//! loop that owns optimisation, TensorBoard, checkpoints, resume, NaN guard, Ctrl-C and evaluation for every
//! agent), the AdamW optimiser and its groups, checkpoints, and the choice of device.
//!
//! Data flow of `frl train`: dataset → [`Agent::prepare`] → per step [`Agent::sample`] → [`Agent::train_step`]
//! (losses and [`Optimizers::step`] per network) → TensorBoard scalars / histograms / PMF images, checkpoints every
//! `checkpoint_every` steps, and evaluation on actor threads every `eval.every` steps from [`Agent::policy`].

#![warn(missing_docs)]

pub mod adamw;
pub mod agent;
pub mod backend;
pub mod checkpoint;
mod evals;
mod fit;
pub mod job;
pub mod online;
pub mod optim;
pub mod params;
pub mod shards;

pub use adamw::{AdamW, AdamWConfig};
pub use agent::{Acting, ActionPmfs, Agent, AgentConfig, DataSpec, Decode, Scalars};
pub use evals::BEST_FILE;
pub use fit::{LoadedAgent, TrainOptions, TrainSummary, fit, load_agent, load_agent_from};
pub use frl_rollout::{EvalReport, evaluate};
pub use frl_tensorboard::BinAxis;
pub use job::{EvalConfig, TrainConfig, TrainJob, lr_at};
pub use online::{OnlineAgent, OnlineConfig, OnlineProgress, OnlineReport, fit_online};
pub use optim::{NonFinite, Optimizers};
pub use shards::ShardLoss;
