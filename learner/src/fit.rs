//! [`fit`]: the generic learner. It trains any [`Agent`] from a dataset and owns what every agent shares: device,
//! LR schedule, optimiser groups, TensorBoard, checkpoints, resume, NaN guard, Ctrl-C, evaluation by actors while
//! training goes on, progress bar and `summary.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use burn::tensor::Device;
use frl_heads::head::argmax;
use frl_heads::metrics::smoothness_rows;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::agent::{ActionPmfs, Agent, AgentConfig, DataSpec};
use super::checkpoint::{self, Checkpoint, CheckpointMeta};
use super::evals::Evaluations;
use super::job::{TrainJob, lr_at};
use super::optim::{NonFinite, Optimizers};
use super::params::NamedTensor;
use crate::backend::DeviceChoice;
use frl_dataset::dataset::Dataset;
use frl_rollout::{EpisodeRng, EvalReport};
use frl_tensorboard::{BinAxis, PmfLabels, SummaryWriter, pmf_png_labelled};

/// How [`fit`] runs.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue from the newest checkpoint in the run folder.
    pub resume: bool,
    /// No progress bar.
    pub quiet: bool,
    /// Where the agent trains.
    pub device: DeviceChoice,
}

/// What a finished (or interrupted) training run reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Run name.
    pub name: String,
    /// Agent kind.
    #[serde(default = "dt_kind")]
    pub agent: String,
    /// Head slug (`-` for agents without an action head).
    pub head: String,
    /// Steps reached.
    pub steps: u64,
    /// Whether Ctrl-C stopped it before the last step.
    pub interrupted: bool,
    /// Mean training loss over the first logging window of this invocation.
    pub first_loss: f64,
    /// Mean training loss over the last logging window.
    pub final_loss: f64,
    /// Mean smoothness of the predicted action PMFs on the probe samples (NaN without action heads).
    pub smoothness: f64,
    /// The last evaluation, when one ran.
    pub eval: Option<EvalReport>,
    /// Wall-clock seconds of the optimiser steps in this invocation.
    pub train_seconds: f64,
    /// Milliseconds per optimiser step in this invocation.
    pub ms_per_step: f64,
    /// Backend name.
    pub backend: String,
    /// The run folder.
    pub run_dir: PathBuf,
    /// What an online run measured (env steps, rates, policy lag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<crate::online::OnlineReport>,
}

impl TrainSummary {
    /// Writes `summary.json` into the run folder (atomically): a finished run's record, and what a rerun prints.
    pub fn write(&self) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        frl_dataset::fsutil::write_atomic(&self.run_dir.join("summary.json"), json.as_bytes())?;
        Ok(())
    }
}

fn dt_kind() -> String {
    "dt".into()
}

/// An agent rebuilt from a checkpoint.
pub struct LoadedAgent<A: Agent> {
    /// The agent on the requested device.
    pub agent: A,
    /// Its configuration (the checkpoint's job section).
    pub config: A::Config,
    /// The checkpoint's metadata.
    pub meta: CheckpointMeta,
    /// Optimiser moments (for resuming).
    pub adam: HashMap<String, NamedTensor>,
}

/// Rebuilds the agent stored in a checkpoint file; the checkpoint must be of kind `A::KIND`.
pub fn load_agent<A: Agent>(path: &Path, device: &Device) -> anyhow::Result<LoadedAgent<A>> {
    load_agent_from(checkpoint::load(path)?, path, device)
}

/// Rebuilds the agent of a checkpoint already read from `path` (named in errors).
pub fn load_agent_from<A: Agent>(ckpt: Checkpoint, path: &Path, device: &Device) -> anyhow::Result<LoadedAgent<A>> {
    let meta = ckpt.meta;
    if meta.agent != A::KIND {
        bail!("checkpoint {}: holds a `{}` agent, not `{}`", path.display(), meta.agent, A::KIND);
    }
    let config: A::Config = meta.job.agent_config().with_context(|| format!("checkpoint {}", path.display()))?;
    let mut rng = EpisodeRng::seed_from_u64(0);
    let fresh = A::new(&config, &meta.data, &mut rng, device)?;
    let agent = fresh.load_params(&ckpt.model).map_err(|e| anyhow::anyhow!("checkpoint {}: {e}", path.display()))?;
    Ok(LoadedAgent { agent, config, meta, adam: ckpt.adam })
}

/// A run's folder and its checkpoints.
pub(crate) struct RunFolder {
    /// `<runs_dir>/<name>`.
    pub dir: PathBuf,
    /// Its `checkpoints` folder.
    pub checkpoints: PathBuf,
    /// The checkpoints there, oldest first.
    pub existing: Vec<(u64, PathBuf)>,
}

/// The job's run folder with its checkpoints (partial files removed); an error when it holds checkpoints and
/// `resume` is off.
pub(crate) fn run_folder(job: &TrainJob, resume: bool) -> anyhow::Result<RunFolder> {
    let dir = job.run_dir();
    let checkpoints = dir.join("checkpoints");
    checkpoint::remove_partial(&checkpoints);
    let existing = checkpoint::list(&checkpoints);
    if !resume && !existing.is_empty() {
        bail!(
            "{} already holds checkpoints; pass --resume to continue it, or give the job another name",
            dir.display()
        );
    }
    Ok(RunFolder { dir, checkpoints, existing })
}

/// A seed for one purpose (`salt`) at one step, derived from the job's seed.
pub(crate) fn mix(seed: u64, step: u64, salt: u64) -> u64 {
    frl_rollout::episode_seeds(seed ^ salt, step).0
}

/// What the learner measures of the dataset for the agent.
pub(crate) fn data_spec(dataset: &Dataset) -> DataSpec {
    let meta = &dataset.metadata;
    let (obs_mean, obs_std) = dataset.episodes.observation_stats();
    DataSpec {
        env: meta.env_id.clone(),
        obs_dim: meta.observation_space.flat_dim(),
        action_space: meta.action_space.clone(),
        obs_mean,
        obs_std,
        best_return: dataset.episodes.iter().map(|e| e.episode_return()).fold(f64::NEG_INFINITY, f64::max),
    }
}

/// Trains agent `A` on `job`; Ctrl-C (the `stop` flag) saves a checkpoint and returns with `interrupted`.
pub fn fit<A: Agent>(job: &TrainJob, options: &TrainOptions, stop: Arc<AtomicBool>) -> anyhow::Result<TrainSummary> {
    job.validate()?;
    if job.agent != A::KIND {
        bail!("`agent` = {:?}, but this learner trains `{}`", job.agent, A::KIND);
    }
    if job.online.is_some() {
        bail!("the job has an [online] section: it trains with fit_online");
    }
    let config: A::Config = job.agent_config()?;
    if job.train.shards > 1 && options.device != crate::backend::DeviceChoice::Cpu {
        bail!(
            "`train.shards` = {} splits batches over CPU threads; on device {} use 1",
            job.train.shards,
            options.device
        );
    }
    let selected = crate::backend::select(options.device)?;
    let device = selected.device.clone();
    let RunFolder { dir: run_dir, checkpoints: ckpt_dir, existing } = run_folder(job, options.resume)?;

    let dataset = Dataset::open(&job.dataset)?;

    // Fresh agent, or the newest checkpoint.
    let mut init_rng = EpisodeRng::seed_from_u64(mix(job.seed, 0, 0x1a17));
    let mut opt =
        Optimizers::new(job.train.optimizer.clone()).poison_at(job.train.poison_loss_at).with_shards(job.train.shards);
    let (mut agent, spec, start_step) = match existing.last().filter(|_| options.resume) {
        Some((_, path)) => {
            let loaded = load_agent::<A>(path, &device)?;
            let old = &loaded.meta.job;
            if loaded.config != config || old.dataset != job.dataset || old.seed != job.seed {
                bail!(
                    "{} was written by a job with another agent config, dataset or seed; resume needs the same ones",
                    path.display()
                );
            }
            opt.load_state(loaded.meta.step, &loaded.adam, &device.clone().inner());
            eprintln!("resuming {} from step {}", job.name, loaded.meta.step);
            (loaded.agent, loaded.meta.data, loaded.meta.step)
        }
        None => {
            let spec = data_spec(&dataset);
            (A::new(&config, &spec, &mut init_rng, &device)?, spec, 0)
        }
    };
    if start_step >= job.train.steps
        && let Ok(text) = std::fs::read_to_string(run_dir.join("summary.json"))
        && let Ok(summary) = serde_json::from_str::<TrainSummary>(&text)
    {
        eprintln!("{} is complete (step {start_step}); its summary is in {}", job.name, run_dir.display());
        return Ok(summary);
    }
    let data = agent.prepare(&dataset.episodes).with_context(|| format!("dataset {}", job.dataset.display()))?;
    drop(dataset);

    std::fs::create_dir_all(&run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
    frl_dataset::fsutil::write_atomic(&run_dir.join("job.toml"), toml::to_string(job)?.as_bytes())?;
    let mut tb = SummaryWriter::create(&run_dir).with_context(|| format!("cannot write to {}", run_dir.display()))?;

    let meta_at = |step: u64| CheckpointMeta {
        format: checkpoint::FORMAT.into(),
        format_version: checkpoint::FORMAT_VERSION,
        agent: A::KIND.into(),
        step,
        job: job.clone(),
        data: spec.clone(),
        online: None,
        eval_return: None,
    };
    let save = |agent: &A, opt: &Optimizers, step: u64| -> anyhow::Result<()> {
        let path = ckpt_dir.join(checkpoint::file_name(step));
        checkpoint::save(&path, &meta_at(step), &agent.params(), &opt.state_tensors())?;
        checkpoint::prune(&ckpt_dir, job.train.keep_checkpoints);
        Ok(())
    };

    // Fixed probe samples (the same ones in every run of this job) for PMF plots and smoothness.
    let mut probe_rng = EpisodeRng::seed_from_u64(mix(job.seed, 0, 0x9b0e));
    let probe = agent.sample(&data, job.train.probe_windows.max(1), &mut probe_rng, &device.clone().inner());
    let acting = job.eval.acting();

    let total = job.train.steps;
    let bar = if options.quiet { ProgressBar::hidden() } else { ProgressBar::new(total) };
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .expect("valid template"),
    );
    bar.set_prefix(job.name.clone());
    bar.set_position(start_step);

    let mut evals = Evaluations::new(&spec.env, &job.eval, stop.clone(), &ckpt_dir);
    let mut window = ScalarWindow::default();
    let mut last_loss = f64::NAN;
    let mut first_loss = f64::NAN;
    let mut window_start = Instant::now();
    let t0 = Instant::now();
    let mut step = start_step;
    let mut interrupted = false;
    let mut last_saved = start_step;
    if start_step == 0 {
        log_probe(&mut tb, agent.action_pmfs(&probe)?, 0)?;
    }

    while step < total {
        if stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        step += 1;
        device.seed(mix(job.seed, step, 0xd20f));
        let mut rng = EpisodeRng::seed_from_u64(mix(job.seed, step, 0xba7c));
        let batch = agent.sample(&data, job.train.batch_size, &mut rng, &device);
        let lr = lr_at(&job.train, step);
        opt.begin_step(step, lr);
        let (next, scalars) = agent.train_step(batch, &mut opt).map_err(|e| match e.downcast_ref::<NonFinite>() {
            Some(nf) => anyhow::anyhow!(
                "{nf}; stopped. The last good checkpoint (step {last_saved}) is kept in {}",
                ckpt_dir.display()
            ),
            None => e.context(format!("training step {step}")),
        })?;
        agent = next;
        window.add(&scalars);

        if step % job.train.log_every == 0 || step == total {
            let secs = window_start.elapsed().as_secs_f64();
            let n = window.n;
            let mut values: Vec<(String, f64)> =
                window.means().into_iter().map(|(k, v)| (format!("train/{k}"), v)).collect();
            last_loss = window.mean("loss");
            if first_loss.is_nan() {
                first_loss = last_loss;
            }
            values.push(("train/lr".into(), lr));
            let norms = opt.grad_norms();
            for (group, norm) in norms {
                let tag = if norms.len() == 1 { "train/grad_norm".into() } else { format!("train/grad_norm_{group}") };
                values.push((tag, *norm));
            }
            values.push(("train/steps_per_sec".into(), n as f64 / secs.max(1e-9)));
            let refs: Vec<(&str, f64)> = values.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            tb.scalars(step, &refs)?;
            bar.set_message(format!("loss {last_loss:.4}{}", eval_msg(&evals.last)));
            window = ScalarWindow::default();
            window_start = Instant::now();
        }
        if step % job.train.plot_every == 0 || step == total {
            log_probe(&mut tb, agent.action_pmfs(&probe)?, step)?;
            log_weights(&mut tb, &agent.params(), step)?;
        }
        if step % job.train.checkpoint_every == 0 || step == total {
            save(&agent, &opt, step)?;
            last_saved = step;
            tb.flush()?;
        }
        evals.poll(&mut tb)?;
        if job.eval.every > 0 && step % job.eval.every == 0 && step < total && !evals.busy() {
            let snapshot = || (meta_at(step), agent.params());
            evals.start(step, agent.policy(&acting), snapshot);
        }
        bar.set_position(step);
    }
    let train_seconds = t0.elapsed().as_secs_f64();
    let steps_done = step - start_step;
    if window.n > 0 {
        // Interrupted inside a logging window: report what it saw.
        last_loss = window.mean("loss");
        if first_loss.is_nan() {
            first_loss = last_loss;
        }
    }
    if interrupted && step > last_saved {
        save(&agent, &opt, step)?;
    }
    evals.finish(&mut tb, interrupted)?;
    if !interrupted {
        bar.set_message(format!("loss {last_loss:.4}, evaluating {} episodes", job.eval.episodes));
        let snapshot = || (meta_at(step), agent.params());
        evals.run(step, agent.policy(&acting), &mut tb, snapshot)?;
    }
    let last_eval = evals.last.take();
    let smoothness = match agent.action_pmfs(&probe)? {
        Some(p) => mean_smoothness(&p)?,
        None => f64::NAN,
    };
    tb.flush()?;
    bar.finish_and_clear();
    let summary = TrainSummary {
        name: job.name.clone(),
        agent: A::KIND.into(),
        head: config.head().map(|h| h.slug()).unwrap_or_else(|| "-".into()),
        steps: step,
        interrupted,
        first_loss,
        final_loss: last_loss,
        smoothness,
        eval: last_eval,
        train_seconds,
        ms_per_step: 1000.0 * train_seconds / steps_done.max(1) as f64,
        backend: selected.name.clone(),
        run_dir: run_dir.clone(),
        online: None,
    };
    if !interrupted {
        summary.write()?;
    }
    Ok(summary)
}

/// Sums of each named scalar over a logging window, in order of first appearance.
#[derive(Default)]
pub(crate) struct ScalarWindow {
    sums: Vec<(&'static str, f64)>,
    pub(crate) n: u64,
}

impl ScalarWindow {
    pub(crate) fn add(&mut self, scalars: &[(&'static str, f64)]) {
        for &(name, v) in scalars {
            match self.sums.iter_mut().find(|(k, _)| *k == name) {
                Some((_, s)) => *s += v,
                None => self.sums.push((name, v)),
            }
        }
        self.n += 1;
    }

    pub(crate) fn means(&self) -> Vec<(&'static str, f64)> {
        let n = self.n.max(1) as f64;
        self.sums.iter().map(|&(k, s)| (k, s / n)).collect()
    }

    pub(crate) fn mean(&self, name: &str) -> f64 {
        self.means().into_iter().find(|(k, _)| *k == name).map(|(_, v)| v).unwrap_or(f64::NAN)
    }
}

pub(crate) fn eval_msg(r: &Option<EvalReport>) -> String {
    r.as_ref().map(|r| format!(", eval return {:.1}", r.mean)).unwrap_or_default()
}

/// Mean smoothness of every probe row's PMF, over all heads.
pub(crate) fn mean_smoothness(p: &ActionPmfs) -> anyhow::Result<f64> {
    let mut all = Vec::new();
    for pmf in &p.pmfs {
        let v: Vec<f64> = pmf.iter().map(|&x| x as f64).collect();
        all.extend(smoothness_rows(&v, p.bins)?);
    }
    Ok(all.iter().sum::<f64>() / all.len().max(1) as f64)
}

/// PMF images of the probe's image rows (the dataset's action marked), bin histograms and the smoothness scalar.
pub(crate) fn log_probe(tb: &mut SummaryWriter, pmfs: Option<ActionPmfs>, step: u64) -> anyhow::Result<()> {
    let Some(p) = pmfs else { return Ok(()) };
    let (m, heads) = (p.bins, p.pmfs.len());
    let mut smooth = Vec::new();
    for (h, pmf) in p.pmfs.iter().enumerate() {
        let v: Vec<f64> = pmf.iter().map(|&x| x as f64).collect();
        smooth.extend(smoothness_rows(&v, m)?);
        let labels =
            PmfLabels { title: format!("{} dim {h}", p.title), axis: p.axes.get(h).cloned().unwrap_or(BinAxis::Index) };
        for (row, tag) in &p.images {
            let png = pmf_png_labelled(&pmf[row * m..(row + 1) * m], p.targets[row * heads + h], &labels);
            tb.image(&format!("action_pmf/{tag}_dim{h}"), step, &png)?;
        }
        let mode: Vec<f32> = pmf.chunks(m).map(|row| argmax(row) as f32).collect();
        tb.histogram(&format!("actions/predicted_bin_dim{h}"), step, &mode, m.min(64))?;
        tb.histogram(&format!("actions/pmf_dim{h}"), step, pmf, 50)?;
    }
    let s = smooth.iter().sum::<f64>() / smooth.len().max(1) as f64;
    tb.scalar("actions/pmf_smoothness", step, s)?;
    Ok(())
}

pub(crate) fn log_weights(tb: &mut SummaryWriter, params: &[NamedTensor], step: u64) -> anyhow::Result<()> {
    for p in params {
        if p.shape.len() == 2 {
            tb.histogram(&format!("weights/{}", p.name), step, &p.data, 50)?;
        }
    }
    Ok(())
}
