//! Agents: the networks and algorithms that learn from datasets, each on the learner's
//! [`Agent`](frl_learner::Agent) trait, and the registry that picks one by the kind a job or checkpoint names.
//!
//! - [`dt`]: the Decision Transformer (Chen et al. 2021) with pluggable action heads,
//! - [`bc`]: behaviour cloning, the tutorial agent,
//! - [`iql`]: Implicit Q-Learning with a head as the policy,
//! - [`dqn`]: DQN and its distributional form (C51) whose return distribution is any head; trains online,
//! - [`registry`]: `agent = "dt" | "bc" | "iql" | "dqn"` → training, validation and checkpoint → policy.

#![warn(missing_docs)]

pub mod bc;
pub mod dqn;
pub mod dt;
pub mod iql;
pub mod registry;

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

pub use registry::{ActingOverrides, KINDS, LoadedPolicy, ONLINE_KINDS, load_job, load_policy, train, validate};
