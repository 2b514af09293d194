//! Agents: the networks and algorithms that learn from datasets, each on the learner's
//! [`Agent`](frl_learner::Agent) trait, and the registry that picks one by the kind a job or checkpoint names.
//!
//! - [`dt`]: the Decision Transformer (Chen et al. 2021) with pluggable action heads,
//! - [`bc`]: behaviour cloning, the tutorial agent,
//! - [`iql`]: Implicit Q-Learning with a head as the policy,
//! - [`dqn`]: DQN and its distributional form (C51) whose return distribution is any head; trains online,
//! - [`ppo`]: Proximal Policy Optimization's arithmetic for policies that are heads over action bins,
//! - [`common`]: what several agents share (action coding, acting through heads, MLP layers, target networks),
//! - [`registry`]: `agent = "dt" | "bc" | "iql" | "dqn" | "ppo"` → training, validation and checkpoint → policy.
//!
//! Every agent implements [`Agent`](frl_learner::Agent) and trains through the same run layer: a job (from a file or
//! text) names the agent, [`train`] trains it, and any checkpoint acts again through [`load_policy`]:
//!
//! ```
//! use std::sync::{Arc, atomic::AtomicBool};
//! use frl_learner::{TrainJob, TrainOptions, checkpoint};
//! use frl_rollout::collect::{CollectJob, collect};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let no_stop = || Arc::new(AtomicBool::new(false));
//! // 10 CartPole episodes of the scripted expert.
//! let mut data = CollectJob::new("CartPole-v1", 10, &dir.path().join("data"));
//! data.policy = Some(frl_envs::BehaviourSpec::Expert { noise: 0.1 });
//! collect(&data, no_stop(), false).unwrap();
//!
//! // Behaviour cloning with a Fourier head: 20 steps, then an evaluation of 2 episodes.
//! let job = TrainJob::parse(&format!(
//!     "name = \"bc\"\ndataset = \"{}\"\nruns_dir = \"{}\"\nagent = \"bc\"\n\
//!      [bc]\nhidden = [32]\nhead = {{ fourier = {{ frequencies = 2 }} }}\n\
//!      [train]\nsteps = 20\nbatch_size = 16\n[eval]\nepisodes = 2\nactors = 1\n",
//!     dir.path().join("data").display(),
//!     dir.path().join("runs").display()
//! ))
//! .unwrap();
//! frl_agents::validate(&job).unwrap();
//! let summary = frl_agents::train(&job, &TrainOptions { quiet: true, ..Default::default() }, no_stop()).unwrap();
//! assert_eq!((summary.agent.as_str(), summary.steps), ("bc", 20));
//!
//! // The checkpoint names its agent kind, so it loads without knowing it.
//! let (_, newest) = checkpoint::list(&summary.run_dir.join("checkpoints")).pop().unwrap();
//! let policy = frl_agents::load_policy(&newest, &burn::tensor::Device::flex(), &Default::default()).unwrap();
//! assert_eq!(policy.meta.agent, "bc");
//! let report = frl_learner::evaluate("CartPole-v1", policy.factory, 2, 1, 7, no_stop()).unwrap();
//! assert_eq!(report.returns.len(), 2);
//! ```

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
