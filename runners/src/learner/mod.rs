//! The generic learner: training jobs, the [`Agent`] trait every algorithm implements, [`fit`] (the loop that owns
//! optimisation, TensorBoard, checkpoints, resume, NaN guard, Ctrl-C and evaluation for every agent), the AdamW
//! optimiser, checkpoints and evaluation by actors. The DT's window sampler lives here too.
//!
//! Data flow of `frl train`: dataset → [`Agent::prepare`] → per step [`Agent::sample`] → [`Agent::train_step`]
//! (losses and [`Optimizers::step`] per network) → TensorBoard scalars / histograms / PMF images, checkpoints every
//! `checkpoint_every` steps, and evaluation on actor threads every `eval.every` steps from [`Agent::policy`].

pub mod adamw;
pub mod agent;
pub mod checkpoint;
pub mod evaluate;
mod fit;
pub mod job;
pub mod optim;
pub mod params;
pub mod windows;

pub use adamw::{AdamW, AdamWConfig};
pub use agent::{Acting, ActionPmfs, Agent, AgentConfig, DataSpec, Scalars};
pub use evaluate::{EvalReport, evaluate};
pub use fit::{LoadedAgent, TrainOptions, TrainSummary, fit, load_agent};
pub use job::{EvalConfig, TrainConfig, TrainJob, lr_at};
pub use optim::{NonFinite, Optimizers};
pub use windows::{Batch, Windows};
