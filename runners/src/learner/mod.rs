//! The Decision Transformer learner: training jobs, the AdamW optimiser, window sampling, checkpoints and
//! evaluation by actors.
//!
//! Data flow of `frl train`: dataset → [`Windows`] (scaled, normalised, binned) → batches → model + AdamW →
//! TensorBoard scalars / histograms / PMF images, checkpoints every `checkpoint_every` steps, and evaluation on
//! actor threads every `eval.every` steps from a snapshot of the model.

pub mod adamw;
pub mod checkpoint;
pub mod evaluate;
pub mod params;
mod train;
pub mod windows;

pub use adamw::{AdamW, AdamWConfig};
pub use evaluate::{EvalReport, evaluate};
pub use train::{EvalConfig, LoadedModel, TrainConfig, TrainJob, TrainOptions, TrainSummary, load_model, lr_at, train};
pub use windows::{Batch, Windows};
