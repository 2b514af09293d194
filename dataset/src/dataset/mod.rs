//! Episode datasets on disk: a folder of safetensors shards plus `metadata.json`.
//!
//! Layout of a shard (numpy-readable, little-endian): `observations` f32 `[steps + episodes, *obs_shape]` (each
//! episode stores its final observation too), `actions` i64 `[steps]` (discrete) or f32 `[steps, act_dim]`, `rewards`
//! f32 `[steps]`, `terminated` and `truncated` bool `[steps]`, `episode_offsets` i64 `[episodes + 1]` (step offsets,
//! starting at 0), `episode_index` i64, `episode_seed` u64 and `policy_version` i64 `[episodes]`, and (format version
//! 2) `step_policy_version` i64 `[steps]`: the policy version that chose each step's action. Version 1 shards have no
//! per-step versions; their steps read as their episode's `policy_version`.
//!
//! Shards are written under a temporary name and renamed; `metadata.json` (which lists the shards with their size
//! and CRC-32C) is replaced atomically after each shard. A shard on disk that the metadata does not list (a run killed
//! between the two renames) is ignored, so a dataset always loads with the shards that completed.

mod info;
mod minari;
mod reader;
mod subsample;
mod writer;

use std::path::PathBuf;

use frl_envs::Space;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use info::DatasetInfo;
pub use minari::import_minari;
pub use reader::Dataset;
pub use subsample::subsample;
pub use writer::DatasetWriter;

/// The `format` field of `metadata.json`.
pub const FORMAT: &str = "frl-episodes";
/// The format version this build writes (it reads this one and [`FORMAT_VERSION_1`]).
pub const FORMAT_VERSION: u32 = 2;
/// The format before per-step policy versions.
pub const FORMAT_VERSION_1: u32 = 1;
/// Name of the metadata file in a dataset folder.
pub const METADATA_FILE: &str = "metadata.json";

/// Contents of `metadata.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Gymnasium id of the env.
    pub env_id: String,
    /// Observation space.
    pub observation_space: Space,
    /// Action space.
    pub action_space: Space,
    /// Episodes over all shards.
    pub episodes: u64,
    /// Steps over all shards.
    pub steps: u64,
    /// The shards, in order.
    pub shards: Vec<ShardInfo>,
    /// The runs that wrote the episodes, in order (appending adds one).
    pub collections: Vec<Collection>,
}

/// One shard as listed in the metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardInfo {
    /// File name inside the dataset folder.
    pub file: String,
    /// Episodes in the shard.
    pub episodes: u64,
    /// Steps in the shard.
    pub steps: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// CRC-32C of the file.
    pub crc32c: u32,
}

/// One run that added episodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collection {
    /// What produced the episodes (e.g. the behaviour policy).
    pub policy: String,
    /// Base seed of the run.
    pub seed: u64,
    /// Index of its first episode.
    pub first_episode: u64,
    /// Episodes it added.
    pub episodes: u64,
    /// Episodes it was asked for (an interrupted run has fewer and can be resumed).
    pub requested: u64,
}

/// Errors reading or writing a dataset; each names the file at fault.
#[derive(Debug, Error)]
pub enum DatasetError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause (shown in the message, so not also chained as a source).
        error: std::io::Error,
    },
    /// `metadata.json` is missing, unreadable or inconsistent.
    #[error("{path}: {message}")]
    Metadata {
        /// The metadata file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A shard is missing, truncated, corrupted or inconsistent with the metadata.
    #[error("shard {path}: {message}")]
    Shard {
        /// The shard file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Episodes do not fit the dataset (other env or spaces).
    #[error("{path}: {message}")]
    Mismatch {
        /// The dataset folder.
        path: PathBuf,
        /// What differs.
        message: String,
    },
}

impl DatasetError {
    fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DatasetError {
        let path = path.into();
        move |error| DatasetError::Io { path, error }
    }
}
