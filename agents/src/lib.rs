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

/// The scalars of a head loss whose total the optimiser step read as `value`: `loss`, `cross_entropy`,
/// `regularizer`.
pub(crate) fn head_loss_scalars(
    value: f64,
    cross_entropy: burn::tensor::Tensor<1>,
    regularizer: Option<burn::tensor::Tensor<1>>,
) -> frl_learner::Scalars {
    let regularizer = regularizer.map(|r| r.into_scalar::<f32>() as f64).unwrap_or(0.0);
    let cross_entropy = cross_entropy.into_scalar::<f32>() as f64;
    vec![("loss", value), ("cross_entropy", cross_entropy), ("regularizer", regularizer)]
}

pub use registry::{ActingOverrides, KINDS, LoadedPolicy, ONLINE_KINDS, load_job, load_policy, train, validate};
