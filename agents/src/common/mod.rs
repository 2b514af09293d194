//! What several agents share, so that no agent imports another: the action coding ([`ActionCoding`]), acting through
//! heads ([`decode_heads`]), network pieces ([`nets`]: MLP layers, target copies, Polyak averaging) and the loss and
//! logged values of a head (`head_shard_loss`, `head_scalars`).

mod acting;
mod actions;
pub mod nets;

pub use acting::decode_heads;
pub use actions::ActionCoding;
pub use nets::{detached_copy, int_to_host, mlp_layers, polyak};

/// An error building an agent or feeding it data.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A configuration value is invalid.
    #[error("invalid model config: {0}")]
    Config(String),
    /// Training data does not fit the model.
    #[error("bad data: {0}")]
    Data(String),
}

/// A head loss as a step's loss and logged values: the total, then `cross_entropy` and the regularizer if any.
pub(crate) fn head_shard_loss(loss: frl_heads::HeadLoss) -> frl_learner::ShardLoss {
    let mut scalars = vec![loss.cross_entropy];
    scalars.extend(loss.regularizer);
    frl_learner::ShardLoss { loss: loss.total, scalars }
}

/// The scalars `loss`, `cross_entropy` and `regularizer` from a step's loss and the values of [`head_shard_loss`].
pub(crate) fn head_scalars(value: f64, read: &[f64]) -> frl_learner::Scalars {
    let regularizer = read.get(1).copied().unwrap_or(0.0);
    vec![("loss", value), ("cross_entropy", read[0]), ("regularizer", regularizer)]
}
