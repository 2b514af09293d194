//! A dataset's summary, as `frl dataset info` prints it.

use std::fmt;

use serde::Serialize;

use super::{Collection, Dataset};
use crate::episodes::EpisodeRef;
use frl_envs::Space;

/// Summary statistics of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetInfo {
    /// Dataset folder.
    pub path: String,
    /// Env id.
    pub env_id: String,
    /// Observation space.
    pub observation_space: Space,
    /// Action space.
    pub action_space: Space,
    /// Episodes.
    pub episodes: u64,
    /// Steps.
    pub steps: u64,
    /// Shard files.
    pub shards: usize,
    /// Mean episode return.
    pub mean_return: f64,
    /// Standard deviation of the episode return.
    pub std_return: f64,
    /// Lowest return.
    pub min_return: f64,
    /// Highest return.
    pub max_return: f64,
    /// Mean episode length.
    pub mean_length: f64,
    /// Episodes that ended in a terminal state.
    pub terminated: u64,
    /// Episodes cut by the time limit.
    pub truncated: u64,
    /// The runs that wrote it.
    pub collections: Vec<Collection>,
}

impl DatasetInfo {
    /// Summarises a loaded dataset.
    pub fn of(d: &Dataset) -> Self {
        let returns: Vec<f64> = d.episodes.iter().map(|e| e.episode_return()).collect();
        let n = returns.len().max(1) as f64;
        let mean = returns.iter().sum::<f64>() / n;
        let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
        let ends = |f: fn(&EpisodeRef<'_>) -> bool| d.episodes.iter().filter(|e| f(e)).count() as u64;
        DatasetInfo {
            path: d.dir.display().to_string(),
            env_id: d.metadata.env_id.clone(),
            observation_space: d.metadata.observation_space.clone(),
            action_space: d.metadata.action_space.clone(),
            episodes: d.metadata.episodes,
            steps: d.metadata.steps,
            shards: d.metadata.shards.len(),
            mean_return: mean,
            std_return: var.sqrt(),
            min_return: returns.iter().cloned().fold(f64::INFINITY, f64::min),
            max_return: returns.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            mean_length: d.metadata.steps as f64 / n,
            terminated: ends(|e| e.terminated.last().copied().unwrap_or(false)),
            truncated: ends(|e| e.truncated.last().copied().unwrap_or(false)),
            collections: d.metadata.collections.clone(),
        }
    }
}

impl fmt::Display for DatasetInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "dataset      {}", self.path)?;
        writeln!(f, "env          {}", self.env_id)?;
        writeln!(f, "observations {}", self.observation_space)?;
        writeln!(f, "actions      {}", self.action_space)?;
        writeln!(f, "episodes     {} ({} terminated, {} truncated)", self.episodes, self.terminated, self.truncated)?;
        writeln!(f, "steps        {} (mean length {:.1}) in {} shards", self.steps, self.mean_length, self.shards)?;
        writeln!(
            f,
            "return       mean {:.2} ± {:.2}, min {:.2}, max {:.2}",
            self.mean_return, self.std_return, self.min_return, self.max_return
        )?;
        for c in &self.collections {
            writeln!(
                f,
                "collection   policy {}, seed {}, episodes {}..{} ({} of {} requested)",
                c.policy,
                c.seed,
                c.first_episode,
                c.first_episode + c.episodes,
                c.episodes,
                c.requested
            )?;
        }
        Ok(())
    }
}
