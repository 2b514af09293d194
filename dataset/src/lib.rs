//! Data without a tensor library: episodes in columnar form ([`episodes`]), the dataset format (safetensors shards
//! with JSON metadata, [`dataset`]), Minari import, and the samplers agents draw batches with: [`transitions`]
//! (n-step transitions) and [`windows`] (window starts for sequence models).

#![warn(missing_docs)]

pub mod dataset;
pub mod episodes;
pub mod fsutil;
pub mod mutate;
pub mod transitions;
pub mod windows;
