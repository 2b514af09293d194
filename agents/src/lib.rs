//! Agents: the networks and algorithms that learn from datasets, each on the learner's
//! [`Agent`](frl_learner::Agent) trait, and the registry that picks one by the kind a job or checkpoint names.
//!
//! - [`dt`]: the Decision Transformer (Chen et al. 2021) with pluggable action heads,
//! - [`bc`]: behaviour cloning, the tutorial agent,
//! - [`iql`]: Implicit Q-Learning with a head as the policy,
//! - [`dqn`]: DQN and its distributional form (C51) whose return distribution is any head; trains online,
//! - [`ppo`]: Proximal Policy Optimization's arithmetic for policies that are heads over action bins,
//! - [`common`]: what several agents share (action coding, acting through heads, MLP layers, target networks),
//! - [`registry`]: `agent = "dt" | "bc" | "iql" | "dqn"` → training, validation and checkpoint → policy.

#![warn(missing_docs)]

pub mod bc;
pub mod common;
pub mod dqn;
pub mod dt;
pub mod iql;
pub mod ppo;
pub mod registry;

pub use registry::{
    AGENTS, ActingOverrides, Entry, LoadedPolicy, entry, kinds, load_explorer, load_job, load_job_with, load_policy,
    lookup, offline_kinds, online_entry, online_kinds, train, validate,
};
