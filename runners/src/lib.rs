//! Jobs that drive heads, environments and agents: the synthetic benchmark of the Fourier-head paper and the
//! head benchmarks.

#![warn(missing_docs)]

pub mod bench;
pub mod fsutil;
pub mod toy;
