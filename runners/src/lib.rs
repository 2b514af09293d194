//! Jobs that drive heads, environments and agents: the synthetic benchmark of the Fourier-head paper and the
//! head benchmarks.

#![warn(missing_docs)]

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
