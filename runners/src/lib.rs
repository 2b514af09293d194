//! Jobs that drive heads, environments and agents: data collection, the dataset format, the generic learner and the
//! built-in agents (DT, BC, IQL), TensorBoard, remote collection, the synthetic benchmark of the Fourier-head paper and
//! the benchmarks.

#![warn(missing_docs)]

pub mod agents;
pub mod backend;
pub mod bench;
pub mod collect;
pub mod dataset;
pub mod demo;
pub mod episodes;
pub mod fsutil;
pub mod learner;
pub mod remote;
pub mod rollout;
pub mod tensorboard;
pub mod toy;
pub mod transitions;
