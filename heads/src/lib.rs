//! Output heads over ordered bins: the [`Head`] trait, the linear, Fourier and mixture heads, the continuous
//! Fourier density, binning of continuous values, and the metrics of the Fourier-head paper.
//!
//! Every head maps features `[batch, d]` to logits `[batch, m]` over `m` ordered bins whose centres lie on
//! `[-1, 1]` (`b_i = -1 + (2i + 1) / m`). Heads are built from a [`HeadConfig`], which deserialises from the
//! job-file syntax `head = "linear"`, `head = { fourier = { frequencies = 12, gamma = 1e-6 } }` or
//! `head = { mixture = { components = 2 } }`.

#![warn(missing_docs)]

pub mod binning;
pub mod config;
pub mod density;
pub mod error;
pub mod fourier;
pub mod fused;
pub mod head;
pub mod host;
pub mod init;
pub mod linear;
pub mod metrics;
pub mod mixture;
pub mod stacked;

pub use binning::Binning;
pub use config::{AnyHead, HeadConfig};
pub use density::{FourierDensity, FourierDensityConfig};
pub use error::HeadError;
pub use fourier::{FourierHead, FourierHeadConfig};
pub use head::{Head, HeadLoss, HeadOutput, bin_centres};
pub use linear::{LinearHead, LinearHeadConfig};
pub use mixture::{MixtureHead, MixtureHeadConfig};
