//! The Decision Transformer (Chen et al. 2021) with pluggable action heads from frl-heads.
//!
//! - [`DecisionTransformerConfig`]: the network's size and its action head, as written in job files.
//! - [`DecisionTransformer`]: the burn module; [`DtInput`] its batch of windows.
//! - [`ActionCoding`]: env actions ↔ action-token features, head targets and decoded actions.
//! - [`DtPolicy`]: return-conditioned acting in an env, for evaluation by actors.

mod agent;
pub mod legacy;
mod model;
mod policy;
mod windows;

use frl_heads::HeadConfig;
use frl_heads::binning::Permutation;
use serde::{Deserialize, Serialize};

pub use crate::common::{ActionCoding, decode_heads, int_to_host};
pub use agent::{Dt, Temperature};
pub use frl_learner::Decode;
pub use frl_nn::{DropoutDraw, dropout_mask, fused, gelu};
pub use model::{DecisionTransformer, DtInput, nature_cnn_output, random_input};
pub use policy::{DtPolicy, DtPolicyFactory, EvalSettings, Normalizer};
pub use windows::{Batch, Windows, normalizer};

/// An error building or feeding a Decision Transformer.
pub type DtError = crate::common::AgentError;

/// Size, head and training options of a Decision Transformer (`[dt]`); defaults follow the continuous-control
/// reference (3 layers, 1 attention head, 128 dims, context 20).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionTransformerConfig {
    /// GPT blocks.
    pub layers: usize,
    /// Attention heads per block.
    pub heads: usize,
    /// Embedding width `d`.
    pub embed_dim: usize,
    /// Context length `K` in env steps (3K tokens).
    pub context: usize,
    /// Dropout after the embeddings and on each residual branch.
    pub dropout: f64,
    /// Size of the timestep embedding; later steps reuse the last embedding.
    pub max_episode_len: usize,
    /// Bins per continuous action dimension.
    pub bins: usize,
    /// Continuous actions are binned over their bounds widened by this fraction of the range on each side. The
    /// Fourier density is periodic on `[-1, 1]`, so without a margin mass at the lower bound (saturated or clipped
    /// actions) is tied to mass at the upper bound; a margin of empty bins keeps them apart.
    pub bin_margin: f64,
    /// The action head: `"linear"`, `{ fourier = { frequencies = 8 } }`, `{ mixture = { components = 4 } }`.
    pub head: HeadConfig,
    /// How observations are embedded: `{ mlp = { hidden = [..] } }` (default: one linear layer) or
    /// `{ nature_cnn = { frames = 4, height = 84, width = 84 } }` for stacked frames.
    pub state_encoder: StateEncoderConfig,
    /// Returns-to-go are divided by this.
    pub return_scale: f32,
    /// Discrete action ids → head bin order, as a list (`to_bin[id]`) or `"atari_direction_ring"`; discrete actions only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_permutation: Option<Permutation>,
    /// The Online Decision Transformer's entropy bonus with a learned temperature (off when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entropy: Option<EntropyConfig>,
    /// The return actors condition on while they explore in online runs (default: the best return of the data the
    /// model was built for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exploration_return: Option<f32>,
}

/// The entropy bonus of the Online Decision Transformer (Zheng, Zhang & Grover 2022): the loss becomes
/// `cross-entropy − λ·H`, where `H` is the mean entropy of the heads' PMFs and the temperature `λ` is learned so that
/// `H` stays near `target`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EntropyConfig {
    /// Target entropy per action head, in nats (at most `ln(bins)`, the entropy of a uniform PMF).
    pub target: f64,
    /// The temperature `λ` at the start (a checkpoint that holds none, e.g. from offline training without
    /// `entropy`, also starts here).
    pub init_temperature: f64,
}

impl Default for EntropyConfig {
    fn default() -> Self {
        Self { target: 2.0, init_temperature: 0.1 }
    }
}

/// The state encoder of a Decision Transformer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StateEncoderConfig {
    /// Linear layers with ReLU between them; no hidden layers is a single linear embedding.
    Mlp {
        /// Hidden layer sizes.
        #[serde(default)]
        hidden: Vec<usize>,
    },
    /// The Nature-DQN conv stack over `frames × height × width` observations (channel first).
    NatureCnn {
        /// Stacked frames (input channels).
        frames: usize,
        /// Frame height.
        height: usize,
        /// Frame width.
        width: usize,
    },
}

impl StateEncoderConfig {
    /// Observation elements this encoder expects, when it fixes them.
    pub fn expected_obs_dim(&self) -> Option<usize> {
        match self {
            StateEncoderConfig::Mlp { .. } => None,
            StateEncoderConfig::NatureCnn { frames, height, width } => Some(frames * height * width),
        }
    }
}

impl Default for DecisionTransformerConfig {
    fn default() -> Self {
        Self {
            layers: 3,
            heads: 1,
            embed_dim: 128,
            context: 20,
            dropout: 0.1,
            max_episode_len: 1000,
            bins: 64,
            bin_margin: 0.125,
            head: HeadConfig::Linear,
            state_encoder: StateEncoderConfig::Mlp { hidden: Vec::new() },
            return_scale: 1000.0,
            action_permutation: None,
            entropy: None,
            exploration_return: None,
        }
    }
}

impl DecisionTransformerConfig {
    /// Checks every field, naming the one at fault.
    pub fn validate(&self) -> Result<(), DtError> {
        let bad = |field: &str, value: String, why: &str| Err(DtError::Config(format!("`{field}` = {value}: {why}")));
        if self.layers == 0 {
            return bad("layers", self.layers.to_string(), "must be at least 1");
        }
        if self.heads == 0 || !self.embed_dim.is_multiple_of(self.heads) {
            return bad("heads", self.heads.to_string(), "must be at least 1 and divide embed_dim");
        }
        if self.embed_dim == 0 {
            return bad("embed_dim", self.embed_dim.to_string(), "must be at least 1");
        }
        if self.context == 0 {
            return bad("context", self.context.to_string(), "must be at least 1");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout", self.dropout.to_string(), "must be in [0, 1)");
        }
        if self.max_episode_len == 0 {
            return bad("max_episode_len", self.max_episode_len.to_string(), "must be at least 1");
        }
        if self.bins < 2 {
            return bad("bins", self.bins.to_string(), "must be at least 2");
        }
        if !(0.0..=1.0).contains(&self.bin_margin) {
            return bad("bin_margin", self.bin_margin.to_string(), "must be in [0, 1]");
        }
        if !(self.return_scale.is_finite() && self.return_scale > 0.0) {
            return bad("return_scale", self.return_scale.to_string(), "must be a positive number");
        }
        match &self.state_encoder {
            StateEncoderConfig::Mlp { hidden } if hidden.contains(&0) => {
                return bad("state_encoder.mlp.hidden", format!("{hidden:?}"), "layer sizes must be at least 1");
            }
            StateEncoderConfig::NatureCnn { frames, height, width } if *frames == 0 || *height < 36 || *width < 36 => {
                return bad(
                    "state_encoder.nature_cnn",
                    format!("{frames}×{height}×{width}"),
                    "needs at least 1 frame of at least 36×36 pixels",
                );
            }
            _ => {}
        }
        if let Some(e) = &self.entropy {
            let max = (self.bins as f64).ln();
            if !(e.target.is_finite() && e.target > 0.0 && e.target <= max) {
                return bad("entropy.target", e.target.to_string(), &format!("must be in (0, ln(bins) = {max:.3}]"));
            }
            if !(e.init_temperature.is_finite() && e.init_temperature > 0.0) {
                return bad("entropy.init_temperature", e.init_temperature.to_string(), "must be a positive number");
            }
        }
        if let Some(r) = self.exploration_return
            && !r.is_finite()
        {
            return bad("exploration_return", r.to_string(), "must be a finite number");
        }
        self.head.validate().map_err(|e| DtError::Config(format!("`head`: {e}")))
    }
}
