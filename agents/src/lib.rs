//! Agents and policies: the [`Policy`] trait that actors run, behaviour policies for collecting data (random and a
//! scripted expert per native env, with a noise knob), and later the Decision Transformer over frl-heads.

#![warn(missing_docs)]

pub mod behaviour;
pub mod dt;
pub mod expert;
pub mod policy;

pub use behaviour::{BehaviourSpec, PolicyError};
pub use policy::{History, Policy, PolicyFactory};
