//! Time-series forecasting with any head (the Fourier-head paper's Chronos experiment). So far: the tokeniser
//! ([`tokenizer`]) that turns a series into Chronos' tokens and tokens back into values, and KernelSynth
//! ([`kernel_synth`]) and TSMixup ([`mixup`]), Chronos' synthetic training series, and the metrics Chronos reports
//! ([`metrics`]: MASE, weighted quantile loss) on evaluation datasets ([`series`]) with seasonal naive as the baseline.

#![warn(missing_docs)]

pub mod kernel_synth;
pub mod metrics;
pub mod mixup;
pub mod series;
pub mod tokenizer;

pub use kernel_synth::{Kernel, KernelSynth, sample_gp};
pub use metrics::{Evaluated, Scores, scores};
pub use mixup::{MixupError, TsMixup, mean_scaled};
pub use series::{SeriesError, SeriesSet, seasonal_naive};
pub use tokenizer::{Bins, Tokenizer, TokenizerConfig, TokenizerError};
