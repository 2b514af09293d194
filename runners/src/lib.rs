//! Jobs that drive heads, environments and agents: the synthetic benchmark of the Fourier-head paper and the
//! head benchmarks.

pub mod bench;
pub mod fsutil;
pub mod toy;
