//! Agents: the networks and algorithms that learn from datasets, each on the learner's
//! [`Agent`](frl_learner::Agent) trait, and the registry that picks one by the kind a job or checkpoint names.
//!
//! - [`dt`]: the Decision Transformer (Chen et al. 2021) with pluggable action heads,
//! - [`bc`]: behaviour cloning, the tutorial agent,
//! - [`iql`]: Implicit Q-Learning with a head as the policy,
//! - [`registry`]: `agent = "dt" | "bc" | "iql"` → training, validation and checkpoint → policy.

#![warn(missing_docs)]

pub mod bc;
pub mod dt;
pub mod iql;
pub mod registry;

pub use registry::{ActingOverrides, KINDS, LoadedPolicy, load_job, load_policy, train, validate};
