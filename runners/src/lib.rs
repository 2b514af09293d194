//! Jobs that tie the crates together: `frl demo` (collect, train one agent per head, compare), the Rust side of the
//! Ray launcher (`remote`: rollout workers and a dataset sink across processes) and the benchmarks (`frl bench`).

#![warn(missing_docs)]

pub mod args;
pub mod bench;
pub mod demo;
pub mod reference;
pub mod remote;
