//! Time-series forecasting with any head (the Fourier-head paper's Chronos experiment): the tokeniser ([`tokenizer`])
//! that turns a series into Chronos' tokens and tokens back into values; KernelSynth ([`kernel_synth`]) and TSMixup
//! ([`mixup`]), Chronos' synthetic training series, streamed as training windows ([`data`]); the forecaster
//! ([`model`]: a decoder-only transformer with any head, trained on the learner's run layer); sampled forecasts and
//! their evaluation ([`predict`]) with the metrics Chronos reports ([`metrics`]: MASE, weighted quantile loss) on
//! evaluation datasets ([`series`]) with seasonal naive as the baseline.

#![warn(missing_docs)]

pub mod data;
pub mod job;
pub mod kernel_synth;
pub mod metrics;
pub mod mixup;
pub mod model;
pub mod predict;
pub mod series;
pub mod tokenizer;

pub use data::{TrainingData, TrainingDataConfig};
pub use kernel_synth::{Kernel, KernelSynth, sample_gp, sample_gp_window};
pub use metrics::{Evaluated, Scores, scores};
pub use mixup::{MixupError, TsMixup, mean_scaled};
pub use model::{ForecastBatch, ForecastConfig, ForecastNet, ForecastSpec, Forecaster};
pub use predict::{DatasetReport, DatasetScores, Predictor, QUANTILES, Sampling, evaluate, geometric_mean, score};
pub use series::{SeriesError, SeriesSet, seasonal_naive};
pub use tokenizer::{Bins, Tokenizer, TokenizerConfig, TokenizerError};
