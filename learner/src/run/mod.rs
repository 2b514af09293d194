//! The run layer: one training run of any [`Trainable`], below every training loop. It owns the run folder, the
//! per-step seeds, the optimiser groups, the NaN guard, Ctrl-C, the TensorBoard writer (scalar windows, PMF images,
//! weight histograms), checkpoints (save, prune, progress record, resume), evaluations beside training, the
//! progress bar and the summary. The loops on top — [`fit_model`] (any model), [`fit`](crate::fit) (agents from a
//! dataset) and [`fit_online`](crate::fit_online) (agents from their actors) — use it and never each other.
//!
//! A run opens in two phases: [`RunSetup::open`] checks the job, picks the device and finds the run folder's
//! checkpoints (nothing is written yet, so a bad job or dataset leaves no trace); [`RunSetup::resume`] rebuilds the
//! model from the newest checkpoint when asked; [`RunSetup::begin`] creates the folder and the TensorBoard writer
//! and returns the [`Run`].

mod evals;
mod log;
mod summary;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use burn::tensor::Device;
use frl_rollout::EpisodeRng;
use frl_tensorboard::SummaryWriter;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;

use crate::agent::{ModelConfig, Scalars, Trainable};
use crate::backend::DeviceChoice;
use crate::checkpoint::{self, Checkpoint, CheckpointMeta, OnlineProgress};
use crate::job::{TrainConfig, TrainJob, lr_at};
use crate::optim::{NonFinite, Optimizers};
use crate::params::NamedTensor;

pub use evals::BEST_FILE;
pub(crate) use evals::Evaluations;
pub(crate) use log::{eval_msg, mean_smoothness};
pub use summary::{OnlineReport, TrainSummary};

/// How a run is started.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue from the newest checkpoint in the run folder.
    pub resume: bool,
    /// No progress bar.
    pub quiet: bool,
    /// Where the model trains.
    pub device: DeviceChoice,
    /// An online run's actors live in other processes (Ray) and meet the learner here.
    pub remote: Option<std::sync::Arc<frl_rollout::RemoteActors>>,
}

/// What each of a run's seeds is for; every one is derived from the job's seed (and the step), so a checkpoint
/// needs no RNG state.
#[derive(Debug, Clone, Copy)]
pub enum Seed {
    /// The initial parameters.
    Init,
    /// The backend's RNG at a step.
    Device,
    /// The batch drawn at a step.
    Batch,
    /// The probe rows plotted and scored.
    Probe,
    /// The actors' episodes (online runs).
    Actors,
}

impl Seed {
    /// The seed for this purpose at `step` of a job seeded with `seed`.
    pub fn at(self, seed: u64, step: u64) -> u64 {
        let salt = match self {
            Seed::Init => 0x1a17,
            Seed::Device => 0xd20f,
            Seed::Batch => 0xba7c,
            Seed::Probe => 0x9b0e,
            Seed::Actors => 0xac70,
        };
        frl_rollout::episode_seeds(seed ^ salt, step).0
    }
}

/// A model rebuilt from a checkpoint.
pub struct LoadedModel<T: Trainable> {
    /// The model on the requested device.
    pub model: T,
    /// Its configuration (the checkpoint's job section).
    pub config: T::Config,
    /// The checkpoint's metadata.
    pub meta: CheckpointMeta<T::Spec>,
    /// Optimiser moments (for resuming).
    pub adam: HashMap<String, NamedTensor>,
}

/// Rebuilds the model of a checkpoint already read from `path` (named in errors); it must be of kind `T::KIND`.
pub fn load_model_from<T: Trainable>(
    ckpt: Checkpoint<T::Spec>,
    path: &Path,
    device: &Device,
) -> anyhow::Result<LoadedModel<T>> {
    let meta = ckpt.meta;
    if meta.agent != T::KIND {
        bail!("checkpoint {}: holds a `{}` model, not `{}`", path.display(), meta.agent, T::KIND);
    }
    let config: T::Config = meta.job.agent_config().with_context(|| format!("checkpoint {}", path.display()))?;
    let mut rng = EpisodeRng::seed_from_u64(0);
    let fresh = T::new(&config, &meta.data, &mut rng, device)?;
    let model = fresh.load_params(&ckpt.model).map_err(|e| anyhow::anyhow!("checkpoint {}: {e}", path.display()))?;
    Ok(LoadedModel { model, config, meta, adam: ckpt.adam })
}

/// Rebuilds the model stored in a checkpoint file ([`Trainable::read_checkpoint`]).
pub fn load_model<T: Trainable>(path: &Path, device: &Device) -> anyhow::Result<LoadedModel<T>> {
    load_model_from(T::read_checkpoint(path)?, path, device)
}

/// A run before its model exists: the checked job, the device, the run folder's checkpoints, the optimisers.
pub struct RunSetup<T: Trainable> {
    job: TrainJob,
    /// The model's section of the job, parsed and validated.
    pub config: T::Config,
    /// Where the model trains.
    pub device: Device,
    backend: String,
    dir: PathBuf,
    checkpoints: PathBuf,
    existing: Vec<(u64, PathBuf)>,
    options: TrainOptions,
    stop: Arc<AtomicBool>,
    opt: Optimizers,
    step: u64,
    progress: Option<OnlineProgress>,
}

impl<T: Trainable> RunSetup<T> {
    /// Checks `job` for model `T` (kind, section, shards on this device), picks the device and lists the run
    /// folder's checkpoints (partial files removed); an error when it holds checkpoints and `resume` is off.
    pub fn open(job: &TrainJob, options: &TrainOptions, stop: Arc<AtomicBool>) -> anyhow::Result<Self> {
        job.validate()?;
        if job.agent != T::KIND {
            bail!("`agent` = {:?}, but this learner trains `{}`", job.agent, T::KIND);
        }
        let config: T::Config = job.agent_config()?;
        if job.train.shards > 1 && options.device != DeviceChoice::Cpu {
            bail!(
                "`train.shards` = {} splits batches over CPU threads; on device {} use 1",
                job.train.shards,
                options.device
            );
        }
        let selected = crate::backend::select(options.device)?;
        let dir = job.run_dir();
        let checkpoints = dir.join("checkpoints");
        checkpoint::remove_partial(&checkpoints);
        let existing = checkpoint::list(&checkpoints);
        if !options.resume && !existing.is_empty() {
            bail!(
                "{} already holds checkpoints; pass --resume to continue it, or give the job another name",
                dir.display()
            );
        }
        let opt = Optimizers::new(job.train.optimizer.clone())
            .poison_at(job.train.poison_loss_at)
            .with_shards(job.train.shards);
        Ok(Self {
            job: job.clone(),
            config,
            device: selected.device,
            backend: selected.name,
            dir,
            checkpoints,
            existing,
            options: options.clone(),
            stop,
            opt,
            step: 0,
            progress: None,
        })
    }

    /// The run folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether this invocation continues from a checkpoint ([`RunSetup::resume`] will return one).
    pub fn resuming(&self) -> bool {
        self.options.resume && !self.existing.is_empty()
    }

    /// With `--resume` and a checkpoint in the run folder: the model of the newest one, with its optimiser moments,
    /// step and progress record restored. It must come from the same model config, dataset and seed, and `same` must
    /// accept its job (a loop's own fields, e.g. the online env).
    pub fn resume(&mut self, same: impl Fn(&TrainJob) -> bool) -> anyhow::Result<Option<(T, T::Spec)>> {
        let Some((_, path)) = self.existing.last().filter(|_| self.options.resume) else { return Ok(None) };
        let loaded = load_model::<T>(path, &self.device)?;
        let old = &loaded.meta.job;
        if loaded.config != self.config || old.dataset != self.job.dataset || old.seed != self.job.seed || !same(old) {
            bail!(
                "{} was written by a job with another [{}] section, dataset, seed{}; resume needs the same ones",
                path.display(),
                T::KIND,
                if self.job.online.is_some() { ", env or `record`" } else { "" }
            );
        }
        self.opt.load_state(loaded.meta.step, &loaded.adam);
        self.step = loaded.meta.step;
        self.progress = loaded.meta.online.clone();
        Ok(Some((loaded.model, loaded.meta.data)))
    }

    /// A fresh model for `spec`, its parameters drawn from the job's initialisation seed.
    pub fn fresh(&self, spec: &T::Spec) -> anyhow::Result<T> {
        T::new(&self.config, spec, &mut self.init_rng(), &self.device)
    }

    /// The RNG fresh parameters are drawn from.
    pub fn init_rng(&self) -> EpisodeRng {
        EpisodeRng::seed_from_u64(Seed::Init.at(self.job.seed, 0))
    }

    /// Optimiser steps of the checkpoint resumed from (0 for a fresh run).
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The progress record of the checkpoint resumed from (online runs).
    pub fn progress(&self) -> Option<&OnlineProgress> {
        self.progress.as_ref()
    }

    /// The summary of a run that already finished (`done` says the checkpoint resumed from is at the end), so that
    /// rerunning a finished job prints it instead of training again.
    pub fn finished(&self, done: bool) -> Option<TrainSummary> {
        if !done {
            return None;
        }
        let text = std::fs::read_to_string(self.dir.join("summary.json")).ok()?;
        let summary = serde_json::from_str::<TrainSummary>(&text).ok()?;
        eprintln!("{} is complete; its summary is in {}", self.job.name, self.dir.display());
        Some(summary)
    }

    /// Creates the run folder (with the job as `job.toml`) and the TensorBoard writer: the run of a model built for
    /// `spec`.
    pub fn begin(self, spec: T::Spec) -> anyhow::Result<Run<T::Spec>> {
        let dir = &self.dir;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        frl_dataset::fsutil::write_atomic(&dir.join("job.toml"), toml::to_string(&self.job)?.as_bytes())?;
        let tb = SummaryWriter::create(dir).with_context(|| format!("cannot write to {}", dir.display()))?;
        match (&self.progress, self.step) {
            (Some(p), step) if self.resuming() => eprintln!(
                "resuming {} from update {step} ({} env steps, {} episodes)",
                self.job.name, p.env_steps, p.episodes
            ),
            (None, step) if self.resuming() => eprintln!("resuming {} from step {step}", self.job.name),
            _ => {}
        }
        let head = self.config.head().map(|h| h.slug()).unwrap_or_else(|| "-".into());
        Ok(Run {
            schedule: self.job.train.clone(),
            job: self.job,
            kind: T::KIND,
            head,
            spec,
            device: self.device,
            backend: self.backend,
            dir: self.dir,
            checkpoints: self.checkpoints,
            quiet: self.options.quiet,
            stop: self.stop,
            opt: self.opt,
            start_step: self.step,
            step: self.step,
            last_saved: self.step,
            progress: self.progress,
            tb,
            window: log::ScalarWindow::default(),
            first_loss: f64::NAN,
            last_loss: f64::NAN,
            step_seconds: 0.0,
        })
    }
}

/// One training run of a model built for `S`: what every loop shares. See the module documentation.
pub struct Run<S> {
    /// The job.
    pub job: TrainJob,
    kind: &'static str,
    head: String,
    /// What the model was built for (stored in checkpoints).
    pub spec: S,
    /// Where the model trains.
    pub device: Device,
    backend: String,
    dir: PathBuf,
    checkpoints: PathBuf,
    quiet: bool,
    stop: Arc<AtomicBool>,
    /// The optimiser groups.
    pub opt: Optimizers,
    /// Optimiser steps when this invocation started.
    pub start_step: u64,
    /// Optimiser steps done.
    pub step: u64,
    last_saved: u64,
    /// The progress record saved with checkpoints (online runs: env steps, episodes, policy version).
    pub progress: Option<OnlineProgress>,
    tb: SummaryWriter,
    window: log::ScalarWindow,
    /// Mean loss of this invocation's first logging window.
    pub first_loss: f64,
    /// Mean loss of the newest logging window.
    pub last_loss: f64,
    step_seconds: f64,
    schedule: TrainConfig,
}

impl<S: serde::Serialize + Clone> Run<S> {
    /// The learning-rate schedule runs over `steps` optimiser steps (online runs: the updates their budget implies).
    pub fn schedule_over(&mut self, steps: u64) {
        self.schedule.steps = steps.max(1);
    }

    /// Whether Ctrl-C asked the run to stop.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The stop flag (evaluations and actors end early on it).
    pub fn stop_flag(&self) -> &Arc<AtomicBool> {
        &self.stop
    }

    /// The run folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its checkpoints folder.
    pub fn checkpoints(&self) -> &Path {
        &self.checkpoints
    }

    /// The TensorBoard writer.
    pub fn tb(&mut self) -> &mut SummaryWriter {
        &mut self.tb
    }

    /// A progress bar over `total` units (steps, env steps) at `position`, hidden when quiet.
    pub fn progress_bar(&self, total: u64, position: u64, unit: &str) -> ProgressBar {
        let bar = if self.quiet { ProgressBar::hidden() } else { ProgressBar::new(total) };
        let template = format!("{{prefix}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}}{unit} {{msg}}");
        bar.set_style(ProgressStyle::with_template(&template).expect("valid template"));
        bar.set_prefix(self.job.name.clone());
        bar.set_position(position);
        bar
    }

    /// The probe batch: `train.probe_windows` rows drawn once per run, the same in every run of this job.
    pub fn probe<T: Trainable<Spec = S>>(&self, model: &T, data: &T::Data) -> T::Batch {
        let mut rng = EpisodeRng::seed_from_u64(Seed::Probe.at(self.job.seed, 0));
        model.sample(data, self.job.train.probe_windows.max(1), &mut rng, &self.device.clone().inner())
    }

    /// One optimiser step: the step's seeds, a batch, the learning rate, [`Trainable::train_step`]. A non-finite
    /// loss or gradient stops the run with an error naming the last good checkpoint.
    pub fn train_step<T: Trainable<Spec = S>>(&mut self, model: &mut T, data: &T::Data) -> anyhow::Result<()> {
        let t0 = Instant::now();
        let step = self.step + 1;
        let seed = self.job.seed;
        self.device.seed(Seed::Device.at(seed, step));
        let mut rng = EpisodeRng::seed_from_u64(Seed::Batch.at(seed, step));
        let batch = model.sample(data, self.job.train.batch_size, &mut rng, &self.device);
        self.opt.begin_step(step, lr_at(&self.schedule, step));
        let scalars: Scalars = model.train_step(batch, &mut self.opt).map_err(|e| {
            let unit = if self.progress.is_some() { "update" } else { "step" };
            match e.downcast_ref::<NonFinite>() {
                Some(nf) => anyhow::anyhow!(
                    "{nf}; stopped. The last good checkpoint ({unit} {}) is kept in {}",
                    self.last_saved,
                    self.checkpoints.display()
                ),
                None => e.context(format!("training {unit} {step}")),
            }
        })?;
        self.step = step;
        self.window.add(&scalars);
        self.step_seconds += t0.elapsed().as_secs_f64();
        Ok(())
    }

    /// Steps taken in the current logging window.
    pub fn window_steps(&self) -> u64 {
        self.window.n
    }

    /// The `train/*` scalars of the logging window that ends now (means of the model's scalars, the learning rate,
    /// each group's gradient norm), empty when no step was taken; records the window's loss as `last_loss`.
    pub fn take_window(&mut self) -> Vec<(String, f64)> {
        let window = std::mem::take(&mut self.window);
        if window.n == 0 {
            return Vec::new();
        }
        let mut values: Vec<(String, f64)> =
            window.means().into_iter().map(|(k, v)| (format!("train/{k}"), v)).collect();
        self.last_loss = window.mean("loss");
        if self.first_loss.is_nan() {
            self.first_loss = self.last_loss;
        }
        values.push(("train/lr".into(), self.opt.lr()));
        let norms = self.opt.grad_norms();
        for (group, norm) in norms {
            let tag = if norms.len() == 1 { "train/grad_norm".into() } else { format!("train/grad_norm_{group}") };
            values.push((tag, *norm));
        }
        values
    }

    /// Writes scalars at `at` (a step, or an env step for online runs).
    pub fn log(&mut self, at: u64, values: &[(String, f64)]) -> anyhow::Result<()> {
        let refs: Vec<(&str, f64)> = values.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        Ok(self.tb.scalars(at, &refs)?)
    }

    /// PMF images, histograms and smoothness of the probe rows, and weight histograms, at `at`.
    pub fn log_probe<T: Trainable<Spec = S>>(&mut self, model: &T, probe: &T::Batch, at: u64) -> anyhow::Result<()> {
        log::log_probe(&mut self.tb, T::PMF_TAG, model.probe_pmfs(probe)?, at)?;
        log::log_weights(&mut self.tb, &model.params(), at)
    }

    /// The metadata a checkpoint of the model as it stands now carries.
    pub fn meta(&self) -> CheckpointMeta<S> {
        CheckpointMeta {
            format: checkpoint::FORMAT.into(),
            format_version: checkpoint::FORMAT_VERSION,
            agent: self.kind.into(),
            step: self.step,
            job: self.job.clone(),
            data: self.spec.clone(),
            online: self.progress.clone(),
            eval_return: None,
        }
    }

    /// Saves a checkpoint of `model` with the optimiser moments and the progress record, keeps the newest
    /// `train.keep_checkpoints`, flushes TensorBoard.
    pub fn save<T: Trainable<Spec = S>>(&mut self, model: &T) -> anyhow::Result<()> {
        let path = self.checkpoints.join(checkpoint::file_name(self.step));
        checkpoint::save(&path, &self.meta(), &model.params(), &self.opt.state_tensors())?;
        checkpoint::prune(&self.checkpoints, self.job.train.keep_checkpoints);
        self.last_saved = self.step;
        Ok(self.tb.flush()?)
    }

    /// Whether steps were taken since the last checkpoint.
    pub fn unsaved(&self) -> bool {
        self.step > self.last_saved
    }

    /// Seconds spent in [`Run::train_step`] in this invocation.
    pub fn step_seconds(&self) -> f64 {
        self.step_seconds
    }

    /// The run's summary; written as `summary.json` unless `interrupted`.
    pub fn finish(&mut self, end: RunEnd) -> anyhow::Result<TrainSummary> {
        self.tb.flush()?;
        let steps_done = self.step - self.start_step;
        let summary = TrainSummary {
            name: self.job.name.clone(),
            agent: self.kind.into(),
            head: self.head.clone(),
            steps: self.step,
            interrupted: end.interrupted,
            first_loss: self.first_loss,
            final_loss: self.last_loss,
            smoothness: end.smoothness,
            eval: end.eval,
            train_seconds: end.seconds,
            ms_per_step: 1000.0 * end.step_seconds / steps_done.max(1) as f64,
            steady_ms_per_step: end.steady_ms_per_step,
            backend: self.backend.clone(),
            run_dir: self.dir.clone(),
            online: end.online,
        };
        if !end.interrupted {
            summary.write()?;
        }
        Ok(summary)
    }
}

/// How a run ended, for its summary.
#[derive(Debug, Clone, Default)]
pub struct RunEnd {
    /// Ctrl-C stopped it early.
    pub interrupted: bool,
    /// Mean smoothness of the probe PMFs at the end (NaN without heads).
    pub smoothness: f64,
    /// The last evaluation.
    pub eval: Option<frl_rollout::EvalReport>,
    /// Wall-clock seconds of this invocation's training.
    pub seconds: f64,
    /// Seconds the reported `ms_per_step` is computed from.
    pub step_seconds: f64,
    /// Median milliseconds per step of the logging windows after the first (see [`TrainSummary`]).
    pub steady_ms_per_step: Option<f64>,
    /// What an online run measured.
    pub online: Option<OnlineReport>,
}

/// The median of the logging windows' milliseconds per step after the first window (which holds the first steps'
/// warm-up: allocations, kernel compilation on a GPU); `None` with fewer than two windows after it.
fn steady_ms(window_ms: &[f64]) -> Option<f64> {
    let mut rest = window_ms.get(1..)?.to_vec();
    if rest.len() < 2 {
        return None;
    }
    rest.sort_by(f64::total_cmp);
    let n = rest.len();
    Some(if n % 2 == 1 { rest[n / 2] } else { 0.5 * (rest[n / 2 - 1] + rest[n / 2]) })
}

/// Mean smoothness of `model`'s PMFs at the probe rows (NaN without heads).
pub fn probe_smoothness<T: Trainable>(model: &T, probe: Option<&T::Batch>) -> anyhow::Result<f64> {
    match probe.map(|p| model.probe_pmfs(p)).transpose()?.flatten() {
        Some(p) => mean_smoothness(&p),
        None => Ok(f64::NAN),
    }
}

/// What the offline loop does beside training at each step (agents: evaluations on actor threads).
pub trait Beside<T: Trainable> {
    /// After step `step` (`last`: the final one).
    fn after_step(&mut self, run: &mut Run<T::Spec>, model: &T, last: bool) -> anyhow::Result<()>;

    /// Extra text for the progress bar.
    fn message(&self) -> String {
        String::new()
    }

    /// At the end (`interrupted` by Ctrl-C or not): the last evaluation, if any.
    fn finish(
        &mut self,
        run: &mut Run<T::Spec>,
        model: &T,
        interrupted: bool,
    ) -> anyhow::Result<Option<frl_rollout::EvalReport>>;
}

/// Nothing beside training.
pub struct NothingBeside;

impl<T: Trainable> Beside<T> for NothingBeside {
    fn after_step(&mut self, _: &mut Run<T::Spec>, _: &T, _: bool) -> anyhow::Result<()> {
        Ok(())
    }
    fn finish(&mut self, _: &mut Run<T::Spec>, _: &T, _: bool) -> anyhow::Result<Option<frl_rollout::EvalReport>> {
        Ok(None)
    }
}

/// Trains `model` on `data` to `train.steps` optimiser steps: the offline loop every model shares (scalars every
/// `log_every`, probe PMFs and weights every `plot_every`, a checkpoint every `checkpoint_every`, at the end and on
/// Ctrl-C), with `beside` called after each step. Returns the summary (interrupted when Ctrl-C stopped it).
pub fn train_offline<T: Trainable>(
    mut run: Run<T::Spec>,
    mut model: T,
    data: &T::Data,
    beside: &mut dyn Beside<T>,
) -> anyhow::Result<(TrainSummary, T)> {
    let train = run.job.train.clone();
    let total = train.steps;
    let probe = run.probe(&model, data);
    let bar = run.progress_bar(total, run.step, "");
    if run.step == 0 {
        log::log_probe(&mut run.tb, T::PMF_TAG, model.probe_pmfs(&probe)?, 0)?;
    }
    let t0 = Instant::now();
    let mut window_start = Instant::now();
    let mut window_ms = Vec::new();
    let mut interrupted = false;
    while run.step < total {
        if run.stopping() {
            interrupted = true;
            break;
        }
        run.train_step(&mut model, data)?;
        let step = run.step;
        let last = step == total;
        if step % train.log_every == 0 || last {
            let n = run.window_steps();
            let mut values = run.take_window();
            let window_seconds = window_start.elapsed().as_secs_f64().max(1e-9);
            values.push(("train/steps_per_sec".into(), n as f64 / window_seconds));
            if n > 0 {
                window_ms.push(1000.0 * window_seconds / n as f64);
            }
            run.log(step, &values)?;
            bar.set_message(format!("loss {:.4}{}", run.last_loss, beside.message()));
            window_start = Instant::now();
        }
        if step % train.plot_every == 0 || last {
            run.log_probe(&model, &probe, step)?;
        }
        if step % train.checkpoint_every == 0 || last {
            run.save(&model)?;
        }
        beside.after_step(&mut run, &model, last)?;
        bar.set_position(step);
    }
    let seconds = t0.elapsed().as_secs_f64();
    // Interrupted inside a logging window: report what it saw.
    run.take_window();
    if interrupted && run.unsaved() {
        run.save(&model)?;
    }
    if !interrupted {
        bar.set_message(format!("loss {:.4}, finishing", run.last_loss));
    }
    let eval = beside.finish(&mut run, &model, interrupted)?;
    let smoothness = probe_smoothness(&model, Some(&probe))?;
    bar.finish_and_clear();
    let steady_ms_per_step = steady_ms(&window_ms);
    let end =
        RunEnd { interrupted, smoothness, eval, seconds, step_seconds: seconds, steady_ms_per_step, online: None };
    Ok((run.finish(end)?, model))
}

/// Trains a model that is not an RL agent (no env, no actors) on the run layer: checkpoints, bit-identical resume,
/// TensorBoard, NaN guard, Ctrl-C, progress and summary, as for agents. `spec` says what a fresh model is built for
/// and `data` prepares its training data (both skipped for a run that already finished).
pub fn fit_model<T: Trainable>(
    job: &TrainJob,
    options: &TrainOptions,
    stop: Arc<AtomicBool>,
    spec: impl FnOnce() -> anyhow::Result<T::Spec>,
    data: impl FnOnce(&T) -> anyhow::Result<T::Data>,
) -> anyhow::Result<TrainSummary> {
    let mut setup = RunSetup::<T>::open(job, options, stop)?;
    let (model, spec) = match setup.resume(|_| true)? {
        Some(resumed) => resumed,
        None => {
            let spec = spec()?;
            (setup.fresh(&spec)?, spec)
        }
    };
    if let Some(summary) = setup.finished(setup.step() >= job.train.steps) {
        return Ok(summary);
    }
    let data = data(&model)?;
    let run = setup.begin(spec)?;
    Ok(train_offline(run, model, &data, &mut NothingBeside)?.0)
}

#[cfg(test)]
mod steady_tests {
    use super::steady_ms;

    #[test]
    fn steady_ms_leaves_out_the_first_window_and_takes_the_median() {
        assert_eq!(steady_ms(&[]), None);
        assert_eq!(steady_ms(&[900.0, 2.0]), None);
        assert_eq!(steady_ms(&[900.0, 3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(steady_ms(&[900.0, 4.0, 1.0, 2.0, 100.0]), Some(3.0));
    }
}
