//! Time-series forecasting with any head (the Fourier-head paper's Chronos experiment). So far: the tokeniser
//! ([`tokenizer`]) that turns a series into Chronos' tokens and tokens back into values.

#![warn(missing_docs)]

pub mod tokenizer;

pub use tokenizer::{Bins, Tokenizer, TokenizerConfig, TokenizerError};
