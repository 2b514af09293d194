//! `frl collect`: behaviour-policy episodes from the actor pool into a dataset, resumable and reproducible.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use frl_envs::BehaviourSpec;
use frl_envs::behaviour::Preset;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::pool::{default_actors, default_max_failures};
use crate::{ActorPool, ChannelLink, EnvFactory, PoolConfig};
use frl_dataset::dataset::{Collection, DatasetWriter, METADATA_FILE, Metadata};
use frl_dataset::episodes::EpisodeBatch;

/// A collection job (flags of `frl collect`, or a TOML file with these fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectJob {
    /// Env id.
    pub env: String,
    /// Behaviour policy (default: the clean expert); exclusive with `preset`.
    #[serde(default)]
    pub policy: Option<BehaviourSpec>,
    /// D4RL-style preset: expert, medium or mixed; exclusive with `policy`.
    #[serde(default)]
    pub preset: Option<Preset>,
    /// Episodes to collect.
    pub episodes: u64,
    /// Actor threads.
    #[serde(default = "default_actors")]
    pub actors: usize,
    /// Base seed; episode `i` of the collection is reproducible from `(seed, i)`.
    #[serde(default)]
    pub seed: u64,
    /// Dataset folder.
    pub out: PathBuf,
    /// Add to an existing dataset instead of refusing to touch it.
    #[serde(default)]
    pub append: bool,
    /// Steps per shard file.
    #[serde(default = "default_shard_steps")]
    pub shard_steps: usize,
    /// Failures (panics, env errors) tolerated before the run stops.
    #[serde(default = "default_max_failures")]
    pub max_failures: u64,
}

fn default_shard_steps() -> usize {
    50_000
}

impl CollectJob {
    /// A job with defaults for everything but the env, episode count and output folder.
    pub fn new(env: &str, episodes: u64, out: impl Into<PathBuf>) -> Self {
        CollectJob {
            env: env.into(),
            policy: None,
            preset: None,
            episodes,
            actors: default_actors(),
            seed: 0,
            out: out.into(),
            append: false,
            shard_steps: default_shard_steps(),
            max_failures: default_max_failures(),
        }
    }

    /// Checks the counts, naming the field at fault (a zero is an error, never replaced by a default).
    pub fn validate(&self) -> anyhow::Result<()> {
        for (field, flag, value) in [
            ("episodes", "--episodes", self.episodes),
            ("actors", "--actors", self.actors as u64),
            ("shard_steps", "--shard-steps", self.shard_steps as u64),
        ] {
            if value == 0 {
                bail!("`{field}` ({flag}) = 0: must be at least 1");
            }
        }
        Ok(())
    }

    /// The behaviour policy the job runs.
    pub fn behaviour(&self) -> anyhow::Result<BehaviourSpec> {
        match (&self.policy, self.preset) {
            (Some(_), Some(_)) => bail!("give either a policy or a preset, not both"),
            (Some(p), None) => Ok(p.clone()),
            (None, Some(p)) => Ok(p.behaviour(&self.env)),
            (None, None) => Ok(BehaviourSpec::Expert { noise: 0.0 }),
        }
    }
}

/// What a collection run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CollectSummary {
    /// Episodes written by this run.
    pub episodes: u64,
    /// Their steps.
    pub steps: u64,
    /// Mean return of this run's episodes.
    pub mean_return: f64,
    /// Lowest return.
    pub min_return: f64,
    /// Highest return.
    pub max_return: f64,
    /// Actor failures (restarted; their episodes were re-collected).
    pub failures: u64,
    /// Episodes that were already in the dataset from an interrupted run of the same job.
    pub resumed_from: u64,
    /// Stopped by Ctrl-C before the requested count.
    pub interrupted: bool,
    /// Wall time.
    pub seconds: f64,
    /// The dataset's metadata after the run.
    #[serde(skip)]
    pub metadata: Option<Metadata>,
}

/// Runs the job. Setting `stop` ends it early; the episodes finished so far stay in the dataset and rerunning the same
/// job resumes it.
pub fn collect(job: &CollectJob, stop: Arc<AtomicBool>, progress: bool) -> anyhow::Result<CollectSummary> {
    let t0 = Instant::now();
    job.validate()?;
    let env = frl_envs::make(&job.env)?;
    let (obs_space, act_space) = (env.observation_space(), env.action_space());
    let behaviour = job.behaviour()?;
    let factory = behaviour.factory(&job.env, &act_space).with_context(|| format!("policy for {}", job.env))?;
    let (mut writer, resumed_from) = open_dataset(job, &obs_space, &act_space, &factory.describe())?;
    let last = writer.metadata().collections.last().cloned().expect("a collection is open");
    let todo = last.requested - last.episodes;
    let first = last.first_episode + last.episodes;

    let bar = if progress { ProgressBar::new(todo) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} episodes {msg} [{elapsed_precise}, eta {eta}]")
            .expect("valid template"),
    );
    if resumed_from > 0 {
        bar.println(format!(
            "resuming: {resumed_from} of {} episodes already in {}",
            last.requested,
            job.out.display()
        ));
    }

    let config = PoolConfig {
        actors: job.actors,
        seed: job.seed,
        first_episode: first,
        episodes: Some(todo),
        max_failures: job.max_failures,
        ..PoolConfig::default()
    };
    let (link, rx) = ChannelLink::new(2 * job.actors, factory);
    let id = job.env.clone();
    let make_env: EnvFactory = Arc::new(move || frl_envs::make(&id));
    let pool = ActorPool::spawn(config, make_env, link, stop.clone());

    // Episodes are written in index order, so the dataset does not depend on thread timing.
    let mut pending: BTreeMap<u64, EpisodeBatch> = BTreeMap::new();
    let mut next = first;
    let (mut written, mut steps, mut sum, mut lo, mut hi) = (0u64, 0u64, 0.0f64, f64::INFINITY, f64::NEG_INFINITY);
    let mut write_error = None;
    for batch in rx.iter() {
        for ep in batch.iter() {
            let mut one = EpisodeBatch::new(batch.obs_dim, batch.act_dim);
            one.push(&ep);
            pending.insert(ep.tag.index, one);
        }
        while let Some(one) = pending.remove(&next) {
            let ep = one.episode(0);
            if let Err(e) = writer.write(&ep) {
                write_error = Some(e);
                stop.store(true, Ordering::SeqCst);
                break;
            }
            let r = ep.episode_return();
            (written, steps, sum, lo, hi) = (written + 1, steps + ep.len() as u64, sum + r, lo.min(r), hi.max(r));
            next += 1;
        }
        if write_error.is_some() {
            break;
        }
        let secs = t0.elapsed().as_secs_f64();
        bar.set_position(written);
        bar.set_message(format!(
            "{:.0} steps/s, mean return {:.1}{}",
            steps as f64 / secs.max(1e-9),
            sum / written.max(1) as f64,
            match pool.failures() {
                0 => String::new(),
                f => format!(", {f} actor failures"),
            }
        ));
    }
    drop(rx);
    let report = pool.join();
    bar.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e.into());
    }
    // Episodes after a gap (an episode discarded by an interrupt) are dropped, so that resuming continues exactly.
    let metadata = writer.finish()?;
    if let Some(error) = report.error.filter(|_| report.failures > job.max_failures) {
        bail!("collection stopped: {error}; the {written} episodes written are kept in {}", job.out.display());
    }
    for m in &report.failure_messages {
        eprintln!("actor failure (restarted, episode re-collected): {m}");
    }
    Ok(CollectSummary {
        episodes: written,
        steps,
        mean_return: sum / written.max(1) as f64,
        min_return: lo,
        max_return: hi,
        failures: report.failures,
        resumed_from,
        interrupted: written < todo,
        seconds: t0.elapsed().as_secs_f64(),
        metadata: Some(metadata),
    })
}

/// Opens the dataset of `job` for writing: a new one, the same job's interrupted one (resumed: returns how many
/// episodes it already holds), or with `append` an existing one of the same env. `policy` describes the behaviour.
pub fn open_dataset(
    job: &CollectJob,
    obs_space: &frl_envs::Space,
    act_space: &frl_envs::Space,
    policy: &str,
) -> anyhow::Result<(DatasetWriter, u64)> {
    let collection = Collection {
        policy: policy.to_string(),
        seed: job.seed,
        first_episode: 0,
        episodes: 0,
        requested: job.episodes,
    };

    // A rerun of an interrupted job resumes it; anything else needs --append.
    let meta_path = job.out.join(METADATA_FILE);
    let mut resumed_from = 0;
    let writer = if meta_path.exists() && !job.append {
        let meta = DatasetWriter::resume(&job.out, job.shard_steps)?;
        let last = meta.metadata().collections.last().cloned().expect("resume checks");
        let same = meta.metadata().env_id == job.env
            && last.policy == collection.policy
            && last.seed == job.seed
            && last.requested == job.episodes;
        if !same {
            bail!(
                "{} already holds a dataset from another job (env {}, policy {}, seed {}, {} episodes); pass --append \
                 to add to it, or choose another --out",
                job.out.display(),
                meta.metadata().env_id,
                last.policy,
                last.seed,
                last.requested
            );
        }
        resumed_from = last.episodes;
        meta
    } else {
        DatasetWriter::open(&job.out, &job.env, obs_space, act_space, collection, job.shard_steps, job.append)?
    };
    Ok((writer, resumed_from))
}
