//! `frl demo`: collect a dataset with the actor pool, train one agent (a Decision Transformer by default) per head
//! on it, evaluate each and compare. Every stage resumes: a rerun reuses the dataset and continues the runs from their checkpoints.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use frl_heads::HeadConfig;
use serde::{Deserialize, Serialize};

use frl_learner::{TrainJob, TrainOptions, TrainSummary};
use frl_rollout::collect::{CollectJob, collect};

/// The demo's configuration: one collection and one training job template run once per head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    /// The dataset to collect.
    pub collect: CollectJob,
    /// The training job (any agent with a `head`); its `name` prefixes each run's name and its `dataset` is the
    /// collection's `out`.
    pub train: TrainJob,
    /// The heads to compare.
    pub heads: Vec<HeadConfig>,
}

/// The configuration `frl demo` runs when given none.
pub const DEFAULT_DEMO: &str = include_str!("../../configs/demo.toml");

impl DemoConfig {
    /// Parses a demo configuration.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Self> {
        let c: DemoConfig = toml::from_str(text).map_err(|e| anyhow::anyhow!("demo config {origin}: {e}"))?;
        if c.heads.is_empty() {
            anyhow::bail!("demo config {origin}: `heads` is empty");
        }
        for job in c.jobs()? {
            frl_agents::validate(&job).map_err(|e| anyhow::anyhow!("demo config {origin}: {e:#}"))?;
        }
        Ok(c)
    }

    /// One training job per head (the head set in the agent's section).
    pub fn jobs(&self) -> anyhow::Result<Vec<TrainJob>> {
        self.heads
            .iter()
            .map(|h| {
                let mut job = self.train.clone();
                job.name = format!("{}-{}", self.train.name, h.slug());
                job.dataset = self.collect.out.clone();
                job.set_agent_field("head", toml::Value::try_from(h).map_err(|e| anyhow::anyhow!("`heads`: {e}"))?);
                Ok(job)
            })
            .collect()
    }
}

/// Runs the demo; returns one summary per head (fewer when interrupted).
pub fn run_demo(
    config: &DemoConfig,
    stop: Arc<AtomicBool>,
    quiet: bool,
    mut on_stage: impl FnMut(&str),
) -> anyhow::Result<Vec<TrainSummary>> {
    on_stage(&format!(
        "collecting {} episodes of {} into {}",
        config.collect.episodes,
        config.collect.env,
        config.collect.out.display()
    ));
    let c = collect(&config.collect, stop.clone(), !quiet)?;
    if c.interrupted {
        anyhow::bail!("interrupted during collection; run the demo again to continue");
    }
    let mut out = Vec::new();
    for job in config.jobs()? {
        on_stage(&format!("training {} ({} steps)", job.name, job.train.steps));
        let s = frl_agents::train(&job, &TrainOptions { resume: true, quiet, ..Default::default() }, stop.clone())?;
        let interrupted = s.interrupted;
        out.push(s);
        if interrupted {
            break;
        }
    }
    Ok(out)
}
