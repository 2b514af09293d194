//! `frl demo`: collect a dataset with the actor pool, train one agent (a Decision Transformer by default) per head
//! on it, evaluate each and compare. Every stage resumes: a rerun reuses the dataset and continues the runs from their checkpoints.

use std::path::PathBuf;
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
    if out.len() == config.heads.len() && !out.iter().any(|s| s.interrupted) {
        let picture = pmf_picture(config, 3)?;
        on_stage(&format!("the heads' action PMFs side by side: {}", picture.display()));
    }
    Ok(out)
}

/// Where the demo's picture goes: `<runs_dir>/<train.name>-pmfs.png`.
pub fn picture_path(config: &DemoConfig) -> PathBuf {
    config.train.runs_dir.join(format!("{}-pmfs.png", config.train.name))
}

/// The demo's picture: the predicted action PMFs of each head (columns) at the first `rows` probe rows (rows, the
/// dataset's action marked), as the runs logged them to TensorBoard at their last step; written to
/// [`picture_path`].
pub fn pmf_picture(config: &DemoConfig, rows: usize) -> anyhow::Result<PathBuf> {
    let mut columns = Vec::new();
    for job in config.jobs()? {
        let dir = job.run_dir();
        let images = frl_tensorboard::read_images(&dir)?;
        let pmfs: Vec<_> = images.into_iter().filter(|i| i.tag.starts_with("action_pmf/")).collect();
        let Some(last) = pmfs.iter().map(|i| i.step).max() else {
            anyhow::bail!("{}: no action PMF images in its TensorBoard events", dir.display())
        };
        let mut at_last: Vec<_> = pmfs.into_iter().filter(|i| i.step == last).collect();
        at_last.sort_by(|a, b| a.tag.cmp(&b.tag));
        at_last.truncate(rows);
        columns.push(at_last);
    }
    let tags = |c: &Vec<frl_tensorboard::ImageEvent>| c.iter().map(|i| i.tag.clone()).collect::<Vec<_>>();
    if let Some(other) = columns.iter().find(|c| tags(c) != tags(&columns[0])) {
        anyhow::bail!("the runs logged PMFs at different probe rows ({:?} and {:?})", tags(&columns[0]), tags(other));
    }
    let grid: Vec<Vec<&[u8]>> =
        (0..columns[0].len()).map(|r| columns.iter().map(|c| c[r].png.as_slice()).collect()).collect();
    let png = frl_tensorboard::tile_pngs(&grid).map_err(|e| anyhow::anyhow!("the demo's picture: {e}"))?;
    let path = picture_path(config);
    frl_dataset::fsutil::write_atomic(&path, &png.bytes)?;
    Ok(path)
}
