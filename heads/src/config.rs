//! [`HeadConfig`]: the serde-facing choice of head, and [`AnyHead`]: the built head of any kind.

use std::fmt;
use std::str::FromStr;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::HeadError;
use crate::fourier::{FourierHead, FourierHeadConfig};
use crate::head::{Head, HeadLoss, HeadOutput};
use crate::linear::{LinearHead, LinearHeadConfig};
use crate::mixture::{MixtureHead, MixtureHeadConfig};

/// Which head to build and its options, as written in job files:
/// `"linear"`, `{ fourier = { frequencies = 12, gamma = 1e-6 } }`, `{ mixture = { components = 2 } }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HeadConfig {
    /// `Linear(d, m)` logits.
    Linear,
    /// The Fourier head.
    Fourier(FourierHeadConfig),
    /// The Gaussian-mixture head.
    Mixture(MixtureHeadConfig),
}

impl HeadConfig {
    /// Checks the head's own fields.
    pub fn validate(&self) -> Result<(), HeadError> {
        match self {
            HeadConfig::Linear => Ok(()),
            HeadConfig::Fourier(c) => c.validate(),
            HeadConfig::Mixture(c) => c.validate(),
        }
    }

    /// Builds the head from `d_in` features to `bins` bins, drawing its initial parameters from `rng`.
    pub fn init(&self, d_in: usize, bins: usize, rng: &mut dyn RngCore, device: &Device) -> Result<AnyHead, HeadError> {
        Ok(match self {
            HeadConfig::Linear => AnyHead::Linear(LinearHeadConfig::default().init(d_in, bins, rng, device)?),
            HeadConfig::Fourier(c) => AnyHead::Fourier(c.init(d_in, bins, rng, device)?),
            HeadConfig::Mixture(c) => AnyHead::Mixture(c.init(d_in, bins, rng, device)?),
        })
    }

    /// A short name for tables and file names, e.g. `fourier-N12-g1e-6`.
    pub fn slug(&self) -> String {
        match self {
            HeadConfig::Linear => "linear".into(),
            HeadConfig::Fourier(c) if c.gamma > 0.0 => {
                format!("fourier-N{}-g{:e}", c.frequencies, c.gamma)
            }
            HeadConfig::Fourier(c) => format!("fourier-N{}", c.frequencies),
            HeadConfig::Mixture(c) => format!("gmm-K{}", c.components),
        }
    }
}

impl fmt::Display for HeadConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadConfig::Linear => write!(f, "linear"),
            HeadConfig::Fourier(c) if c.gamma > 0.0 => {
                write!(f, "Fourier N={} γ={:e}", c.frequencies, c.gamma)
            }
            HeadConfig::Fourier(c) => write!(f, "Fourier N={}", c.frequencies),
            HeadConfig::Mixture(c) => write!(f, "GMM K={}", c.components),
        }
    }
}

#[derive(Deserialize)]
struct Wrapper {
    head: HeadConfig,
}

impl FromStr for HeadConfig {
    type Err = HeadError;

    /// Parses the job-file value syntax: a bare name (`linear`, `fourier`, `mixture`) or a TOML inline value
    /// such as `{ fourier = { frequencies = 8 } }`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let value = match s {
            "linear" | "\"linear\"" => return Ok(HeadConfig::Linear),
            "fourier" => return Ok(HeadConfig::Fourier(FourierHeadConfig::default())),
            "mixture" | "gmm" => return Ok(HeadConfig::Mixture(MixtureHeadConfig::default())),
            _ if s.starts_with('{') || s.starts_with('"') => s.to_string(),
            _ => {
                return Err(HeadError::Parse(format!(
                    "unknown head `{s}`: expected linear, fourier, mixture or an inline table such as \
                     {{ fourier = {{ frequencies = 12, gamma = 1e-6 }} }}"
                )));
            }
        };
        let parsed: Wrapper = toml::from_str(&format!("head = {value}"))
            .map_err(|e| HeadError::Parse(format!("`{s}`: {}", e.message())))?;
        parsed.head.validate()?;
        Ok(parsed.head)
    }
}

/// A built head of any kind; dispatches [`Head`] to the variant.
// Heads are built once per model and moved rarely; boxing would only add an indirection to every forward.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum AnyHead {
    /// A [`LinearHead`].
    Linear(LinearHead),
    /// A [`FourierHead`].
    Fourier(FourierHead),
    /// A [`MixtureHead`].
    Mixture(MixtureHead),
}

impl Head for AnyHead {
    fn input_dim(&self) -> usize {
        match self {
            AnyHead::Linear(h) => h.input_dim(),
            AnyHead::Fourier(h) => h.input_dim(),
            AnyHead::Mixture(h) => h.input_dim(),
        }
    }

    fn bins(&self) -> usize {
        match self {
            AnyHead::Linear(h) => h.bins(),
            AnyHead::Fourier(h) => h.bins(),
            AnyHead::Mixture(h) => h.bins(),
        }
    }

    fn forward(&self, features: Tensor<2>) -> HeadOutput {
        match self {
            AnyHead::Linear(h) => h.forward(features),
            AnyHead::Fourier(h) => h.forward(features),
            AnyHead::Mixture(h) => h.forward(features),
        }
    }

    fn log_pmf(&self, logits: Tensor<2>) -> Tensor<2> {
        match self {
            AnyHead::Linear(h) => h.log_pmf(logits),
            AnyHead::Fourier(h) => h.log_pmf(logits),
            AnyHead::Mixture(h) => h.log_pmf(logits),
        }
    }

    fn cross_entropy(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        match self {
            AnyHead::Linear(h) => h.cross_entropy(logits, targets),
            AnyHead::Fourier(h) => h.cross_entropy(logits, targets),
            AnyHead::Mixture(h) => h.cross_entropy(logits, targets),
        }
    }

    fn cross_entropy_soft(&self, logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
        match self {
            AnyHead::Linear(h) => h.cross_entropy_soft(logits, targets),
            AnyHead::Fourier(h) => h.cross_entropy_soft(logits, targets),
            AnyHead::Mixture(h) => h.cross_entropy_soft(logits, targets),
        }
    }

    fn loss(&self, features: Tensor<2>, targets: Tensor<1, Int>) -> HeadLoss {
        match self {
            AnyHead::Linear(h) => h.loss(features, targets),
            AnyHead::Fourier(h) => h.loss(features, targets),
            AnyHead::Mixture(h) => h.loss(features, targets),
        }
    }

    fn loss_soft(&self, features: Tensor<2>, targets: Tensor<2>) -> HeadLoss {
        match self {
            AnyHead::Linear(h) => h.loss_soft(features, targets),
            AnyHead::Fourier(h) => h.loss_soft(features, targets),
            AnyHead::Mixture(h) => h.loss_soft(features, targets),
        }
    }
}
