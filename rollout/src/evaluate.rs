//! Evaluation of a policy by the actor pool: whole episodes on N threads, returns summarised.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use frl_envs::PolicyFactory;
use serde::{Deserialize, Serialize};

use crate::{ActorPool, ChannelLink, EnvFactory, PoolConfig};

/// Returns of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Return of each episode, in episode-index order.
    pub returns: Vec<f64>,
    /// Length of each episode.
    pub lengths: Vec<usize>,
    /// Mean return.
    pub mean: f64,
    /// Standard deviation of the returns.
    pub std: f64,
    /// Lowest return.
    pub min: f64,
    /// Highest return.
    pub max: f64,
    /// `100 (mean - random) / (expert - random)` where reference scores for the env exist.
    pub normalized: Option<f64>,
}

impl EvalReport {
    /// Summarises per-episode returns.
    pub fn new(env: &str, returns: Vec<f64>, lengths: Vec<usize>) -> Self {
        let n = returns.len().max(1) as f64;
        let mean = returns.iter().sum::<f64>() / n;
        let std = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
        let min = returns.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = returns.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let normalized = reference_scores(env).map(|(random, expert)| 100.0 * (mean - random) / (expert - random));
        Self { returns, lengths, mean, std, min, max, normalized }
    }
}

/// `(random, expert)` mean returns of the built-in random and scripted expert policies (100 episodes, seed 0, as in
/// the guide's behaviour-policy table, docs/src/behaviour.md), the D4RL-style normalisation points; `gym:` ids of
/// native envs share them.
pub fn reference_scores(env: &str) -> Option<(f64, f64)> {
    match env.strip_prefix("gym:").unwrap_or(env) {
        "CartPole-v1" => Some((22.6, 500.0)),
        "Acrobot-v1" => Some((-499.8, -88.2)),
        "Pendulum-v1" => Some((-1288.2, -154.3)),
        "MountainCar-v0" => Some((-200.0, -110.7)),
        "MountainCarContinuous-v0" => Some((-32.3, 92.1)),
        _ => None,
    }
}

/// Runs `episodes` episodes of `factory`'s policy on `env` with `actors` threads; episode `i` is seeded from
/// `(seed, i)`, so the result does not depend on the number of threads.
pub fn evaluate(
    env: &str,
    factory: Arc<dyn PolicyFactory>,
    episodes: u64,
    actors: usize,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<EvalReport> {
    let config =
        PoolConfig { actors: actors.max(1), seed, episodes: Some(episodes), batch_steps: 1, ..PoolConfig::default() };
    let (link, rx) = ChannelLink::new(2 * actors.max(1), factory);
    let id = env.to_string();
    let make_env: EnvFactory = Arc::new(move || frl_envs::make(&id));
    let pool = ActorPool::spawn(config, make_env, link, stop);
    let mut done: BTreeMap<u64, (f64, usize)> = BTreeMap::new();
    for batch in rx.iter() {
        for ep in batch.iter() {
            done.insert(ep.tag.index, (ep.episode_return(), ep.len()));
        }
    }
    let report = pool.join();
    if let Some(e) = report.error {
        anyhow::bail!("evaluation on {env} failed: {e}");
    }
    if done.is_empty() {
        anyhow::bail!("evaluation on {env} was stopped before any episode finished");
    }
    let (returns, lengths) = done.into_values().unzip();
    Ok(EvalReport::new(env, returns, lengths))
}
