//! `frl train`: one Decision Transformer job from dataset to checkpoints, TensorBoard run and evaluation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use crossbeam_channel::{Receiver, TryRecvError};
use frl_agents::PolicyFactory;
use frl_agents::dt::{
    ActionCoding, DecisionTransformer, DecisionTransformerConfig, Decode, DtPolicyFactory, EvalSettings,
};
use frl_heads::Head;
use frl_heads::binning::Permutation;
use frl_heads::head::{argmax, to_host};
use frl_heads::metrics::smoothness_rows;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::adamw::{AdamW, AdamWConfig};
use super::checkpoint::{self, CheckpointMeta};
use super::evaluate::{EvalReport, evaluate};
use super::params::{load_params, named_params};
use super::windows::{Batch, Windows, normalizer};
use crate::backend::DeviceChoice;
use crate::dataset::Dataset;
use crate::rollout::EpisodeRng;
use crate::tensorboard::{SummaryWriter, pmf_png};

/// A training job, as written in `job.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainJob {
    /// Run name: the run folder is `<runs_dir>/<name>/`.
    pub name: String,
    /// Dataset folder (written by `frl collect` or `frl dataset import-minari`).
    pub dataset: PathBuf,
    /// Seed of initialisation, batch sampling, dropout and evaluation.
    #[serde(default)]
    pub seed: u64,
    /// Parent folder of run folders.
    #[serde(default = "default_runs_dir")]
    pub runs_dir: PathBuf,
    /// The network and its action head.
    #[serde(default)]
    pub model: DecisionTransformerConfig,
    /// Discrete action ids → head bin order (e.g. the Atari direction ring); discrete actions only.
    #[serde(default)]
    pub action_permutation: Option<Permutation>,
    /// Optimisation.
    #[serde(default)]
    pub train: TrainConfig,
    /// Evaluation by actors.
    #[serde(default)]
    pub eval: EvalConfig,
}

fn default_runs_dir() -> PathBuf {
    PathBuf::from("runs")
}

/// Optimisation settings; defaults follow the continuous-control DT reference (AdamW 1e-4, weight decay 1e-4,
/// clip 0.25, batch 64, returns scaled by 1000), with a cosine decay after the warmup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Optimiser steps.
    pub steps: u64,
    /// Windows per batch.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warmup steps from 0 to `lr`.
    pub warmup_steps: u64,
    /// The cosine decay ends at `lr * final_lr_fraction`.
    pub final_lr_fraction: f64,
    /// AdamW settings, global grad-norm clip included.
    pub optimizer: AdamWConfig,
    /// Returns-to-go are divided by this.
    pub return_scale: f32,
    /// Scalars every this many steps.
    pub log_every: u64,
    /// Histograms, PMF images and smoothness every this many steps.
    pub plot_every: u64,
    /// Checkpoint every this many steps (and at the end and on Ctrl-C).
    pub checkpoint_every: u64,
    /// Checkpoints kept on disk.
    pub keep_checkpoints: usize,
    /// Dataset windows whose predicted action PMFs are plotted and scored for smoothness.
    pub probe_windows: usize,
    /// Testing aid: make the loss NaN at this step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poison_loss_at: Option<u64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 10_000,
            batch_size: 64,
            lr: 1e-4,
            warmup_steps: 1000,
            final_lr_fraction: 0.1,
            optimizer: AdamWConfig::default(),
            return_scale: 1000.0,
            log_every: 50,
            plot_every: 500,
            checkpoint_every: 500,
            keep_checkpoints: 2,
            probe_windows: 4,
            poison_loss_at: None,
        }
    }
}

/// Evaluation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Evaluate every this many steps while training (0: only at the end).
    pub every: u64,
    /// Episodes per evaluation.
    pub episodes: u64,
    /// Actor threads.
    pub actors: usize,
    /// Return the first step is conditioned on; default: the best episode return in the dataset.
    pub target_return: Option<f32>,
    /// How actions are chosen: sample, mode or mean.
    pub decode: Decode,
    /// Softmax temperature for `sample`.
    pub temperature: f32,
    /// Base seed of evaluation episodes (the same episodes at every evaluation).
    pub seed: u64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            every: 0,
            episodes: 10,
            actors: 2,
            target_return: None,
            decode: Decode::Sample,
            temperature: 1.0,
            seed: 1_000_000,
        }
    }
}

impl TrainJob {
    /// Reads a job file; errors name the file and the field.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read job file {}", path.display()))?;
        let job: TrainJob = toml::from_str(&text).map_err(|e| anyhow::anyhow!("job file {}: {e}", path.display()))?;
        job.validate().with_context(|| format!("job file {}", path.display()))?;
        Ok(job)
    }

    /// Checks every field, naming the one at fault.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.name.is_empty() || self.name.contains(['/', '\\']) || self.name.starts_with('.') {
            bail!("`name` = {:?}: must be a plain folder name", self.name);
        }
        self.model.validate()?;
        let t = &self.train;
        if t.steps == 0 {
            bail!("`train.steps` must be at least 1");
        }
        if t.batch_size == 0 {
            bail!("`train.batch_size` must be at least 1");
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            bail!("`train.lr` = {}: must be a positive number", t.lr);
        }
        if !(0.0..=1.0).contains(&t.final_lr_fraction) {
            bail!("`train.final_lr_fraction` = {}: must be in [0, 1]", t.final_lr_fraction);
        }
        if !(t.return_scale.is_finite() && t.return_scale > 0.0) {
            bail!("`train.return_scale` = {}: must be a positive number", t.return_scale);
        }
        let o = &t.optimizer;
        if !(0.0..1.0).contains(&o.beta1) || !(0.0..1.0).contains(&o.beta2) {
            bail!("`train.optimizer.beta1/beta2` = {}/{}: must be in [0, 1)", o.beta1, o.beta2);
        }
        if o.weight_decay < 0.0 || o.grad_clip < 0.0 || o.eps <= 0.0 {
            bail!("`train.optimizer`: weight_decay and grad_clip must be ≥ 0 and eps > 0");
        }
        for (field, v) in
            [("log_every", t.log_every), ("plot_every", t.plot_every), ("checkpoint_every", t.checkpoint_every)]
        {
            if v == 0 {
                bail!("`train.{field}` must be at least 1");
            }
        }
        if self.eval.episodes == 0 {
            bail!("`eval.episodes` must be at least 1");
        }
        if !(self.eval.temperature.is_finite() && self.eval.temperature > 0.0) {
            bail!("`eval.temperature` = {}: must be positive", self.eval.temperature);
        }
        Ok(())
    }

    /// The run folder.
    pub fn run_dir(&self) -> PathBuf {
        self.runs_dir.join(&self.name)
    }
}

/// The warmup-then-cosine learning rate at step `step` (1-based).
pub fn lr_at(t: &TrainConfig, step: u64) -> f64 {
    if step <= t.warmup_steps {
        return t.lr * step as f64 / t.warmup_steps.max(1) as f64;
    }
    let span = t.steps.saturating_sub(t.warmup_steps).max(1) as f64;
    let progress = ((step - t.warmup_steps) as f64 / span).min(1.0);
    let floor = t.lr * t.final_lr_fraction;
    floor + (t.lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// How `train` runs.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue from the newest checkpoint in the run folder.
    pub resume: bool,
    /// No progress bar.
    pub quiet: bool,
    /// Where the model trains.
    pub device: DeviceChoice,
}

/// What a finished (or interrupted) training run reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Run name.
    pub name: String,
    /// Head slug.
    pub head: String,
    /// Steps reached.
    pub steps: u64,
    /// Whether Ctrl-C stopped it before the last step.
    pub interrupted: bool,
    /// Mean training loss over the first logging window of this invocation.
    pub first_loss: f64,
    /// Mean training loss over the last logging window.
    pub final_loss: f64,
    /// Mean smoothness of the predicted action PMFs on the probe windows.
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
}

/// A model rebuilt from a checkpoint, with what acting needs.
pub struct LoadedModel {
    /// The network on the training device.
    pub model: DecisionTransformer,
    /// The checkpoint's metadata.
    pub meta: CheckpointMeta,
    /// Optimiser moments (for resuming).
    pub adam: HashMap<String, super::params::NamedTensor>,
}

/// Rebuilds the model stored in a checkpoint file.
pub fn load_model(path: &Path, device: &Device) -> anyhow::Result<LoadedModel> {
    let ckpt = checkpoint::load(path)?;
    let meta = ckpt.meta;
    let mut rng = EpisodeRng::seed_from_u64(0);
    let fresh = DecisionTransformer::new(
        &meta.job.model,
        meta.obs_dim,
        meta.coding.feature_dim(),
        meta.coding.heads(),
        meta.coding.bins(),
        &mut rng,
        device,
    )?;
    let model = load_params(fresh, &ckpt.model).map_err(|e| anyhow::anyhow!("checkpoint {}: {e}", path.display()))?;
    Ok(LoadedModel { model, meta, adam: ckpt.adam })
}

fn mix(seed: u64, step: u64, salt: u64) -> u64 {
    crate::rollout::episode_seeds(seed ^ salt, step).0
}

/// Trains `job`; Ctrl-C (the `stop` flag) saves a checkpoint and returns with `interrupted`.
pub fn train(job: &TrainJob, options: &TrainOptions, stop: Arc<AtomicBool>) -> anyhow::Result<TrainSummary> {
    job.validate()?;
    let selected = crate::backend::select(options.device)?;
    let device = selected.device.clone();
    let run_dir = job.run_dir();
    let ckpt_dir = run_dir.join("checkpoints");
    checkpoint::remove_partial(&ckpt_dir);
    let existing = checkpoint::list(&ckpt_dir);
    if !options.resume && !existing.is_empty() {
        bail!(
            "{} already holds checkpoints; pass --resume to continue it, or give the job another name",
            run_dir.display()
        );
    }

    let dataset = Dataset::open(&job.dataset)?;
    let meta_ds = &dataset.metadata;
    let env = meta_ds.env_id.clone();
    let coding =
        ActionCoding::new(&meta_ds.action_space, job.model.bins, job.model.bin_margin, job.action_permutation.clone())?;
    let obs_dim = meta_ds.observation_space.flat_dim();
    let best_return = dataset.episodes.iter().map(|e| e.episode_return()).fold(f64::NEG_INFINITY, f64::max);

    // Fresh model, or the newest checkpoint.
    let mut init_rng = EpisodeRng::seed_from_u64(mix(job.seed, 0, 0x1a17));
    let (mut model, mut opt, norm, start_step) = match existing.last().filter(|_| options.resume) {
        Some((_, path)) => {
            let loaded = load_model(path, &device)?;
            let old = &loaded.meta.job;
            if old.model != job.model || old.dataset != job.dataset || old.seed != job.seed {
                bail!(
                    "{} was written by a job with another model, dataset or seed; resume needs the same ones",
                    path.display()
                );
            }
            let mut opt = AdamW::new(job.train.optimizer.clone());
            opt.load_state(loaded.meta.step, &loaded.adam, &device.clone().inner());
            eprintln!("resuming {} from step {}", job.name, loaded.meta.step);
            (loaded.model, opt, loaded.meta.normalizer, loaded.meta.step)
        }
        None => {
            let model = DecisionTransformer::new(
                &job.model,
                obs_dim,
                coding.feature_dim(),
                coding.heads(),
                coding.bins(),
                &mut init_rng,
                &device,
            )?;
            let norm = normalizer(&dataset.episodes, job.train.return_scale);
            (model, AdamW::new(job.train.optimizer.clone()), norm, 0)
        }
    };
    if start_step >= job.train.steps
        && let Ok(text) = std::fs::read_to_string(run_dir.join("summary.json"))
        && let Ok(summary) = serde_json::from_str::<TrainSummary>(&text)
    {
        eprintln!("{} is complete (step {start_step}); its summary is in {}", job.name, run_dir.display());
        return Ok(summary);
    }
    let windows = Windows::new(&dataset.episodes, &coding, &norm, job.model.context, job.model.max_episode_len)
        .with_context(|| format!("dataset {}", job.dataset.display()))?;
    drop(dataset);

    std::fs::create_dir_all(&run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
    crate::fsutil::write_atomic(&run_dir.join("job.toml"), toml::to_string(job)?.as_bytes())?;
    let mut tb = SummaryWriter::create(&run_dir).with_context(|| format!("cannot write to {}", run_dir.display()))?;

    let ckpt_meta = |step: u64| CheckpointMeta {
        format: checkpoint::FORMAT.into(),
        format_version: checkpoint::FORMAT_VERSION,
        step,
        job: job.clone(),
        env: env.clone(),
        obs_dim,
        coding: coding.clone(),
        normalizer: norm.clone(),
        dataset_best_return: best_return,
    };
    let save = |model: &DecisionTransformer, opt: &AdamW, step: u64| -> anyhow::Result<()> {
        let path = ckpt_dir.join(checkpoint::file_name(step));
        checkpoint::save(&path, &ckpt_meta(step), &named_params(model), &opt.state_tensors())?;
        checkpoint::prune(&ckpt_dir, job.train.keep_checkpoints);
        Ok(())
    };

    // Fixed probe windows (the same ones in every run of this job) for PMF plots and smoothness.
    let mut probe_rng = EpisodeRng::seed_from_u64(mix(job.seed, 0, 0x9b0e));
    let probe = windows.sample(job.train.probe_windows.max(1), &mut probe_rng, &device.clone().inner());

    let target = job.eval.target_return.unwrap_or(best_return as f32);
    let settings = EvalSettings { target_return: target, decode: job.eval.decode, temperature: job.eval.temperature };
    let snapshot = |model: &DecisionTransformer| -> Arc<dyn PolicyFactory> {
        Arc::new(DtPolicyFactory::new(model.valid(), coding.clone(), norm.clone(), settings.clone(), obs_dim))
    };

    let total = job.train.steps;
    let bar = if options.quiet { ProgressBar::hidden() } else { ProgressBar::new(total) };
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .expect("valid template"),
    );
    bar.set_prefix(job.name.clone());
    bar.set_position(start_step);

    let mut pending_eval: Option<(u64, Receiver<anyhow::Result<EvalReport>>)> = None;
    let mut last_eval: Option<EvalReport> = None;
    let (mut loss_acc, mut ce_acc, mut reg_acc, mut n_acc) = (0.0f64, 0.0f64, 0.0f64, 0u64);
    let mut last_loss = f64::NAN;
    let mut first_loss = f64::NAN;
    let mut window_start = Instant::now();
    let t0 = Instant::now();
    let mut step = start_step;
    let mut interrupted = false;
    let mut last_saved = start_step;
    if start_step == 0 {
        log_probe(&mut tb, &model.valid(), &probe, &coding, 0)?;
    }

    while step < total {
        if stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        step += 1;
        device.seed(mix(job.seed, step, 0xd20f));
        let mut rng = EpisodeRng::seed_from_u64(mix(job.seed, step, 0xba7c));
        let batch = windows.sample(job.train.batch_size, &mut rng, &device);
        let loss = batch_loss(&model, batch);
        let mut total_loss = loss.total;
        if job.train.poison_loss_at == Some(step) {
            total_loss = total_loss.mul_scalar(f32::NAN);
        }
        let loss_value = total_loss.clone().into_scalar::<f32>() as f64;
        if !loss_value.is_finite() {
            bail!(
                "the loss became {loss_value} at step {step}; stopped. The last good checkpoint (step {last_saved}) is \
                 kept in {}",
                ckpt_dir.display()
            );
        }
        let lr = lr_at(&job.train, step);
        let grads = GradientsParams::from_grads(total_loss.backward(), &model);
        let (next, stats) = opt.step(lr, model, grads).map_err(|norm| {
            anyhow::anyhow!(
                "the gradient norm became {norm} at step {step}; stopped. The last good checkpoint (step \
                 {last_saved}) is kept in {}",
                ckpt_dir.display()
            )
        })?;
        model = next;
        loss_acc += loss_value;
        ce_acc += loss.cross_entropy.into_scalar::<f32>() as f64;
        reg_acc += loss.regularizer.map(|r| r.into_scalar::<f32>() as f64).unwrap_or(0.0);
        n_acc += 1;

        if step % job.train.log_every == 0 || step == total {
            let secs = window_start.elapsed().as_secs_f64();
            let n = n_acc.max(1) as f64;
            last_loss = loss_acc / n;
            if first_loss.is_nan() {
                first_loss = last_loss;
            }
            tb.scalars(
                step,
                &[
                    ("train/loss", last_loss),
                    ("train/cross_entropy", ce_acc / n),
                    ("train/regularizer", reg_acc / n),
                    ("train/lr", lr),
                    ("train/grad_norm", stats.grad_norm),
                    ("train/steps_per_sec", n / secs.max(1e-9)),
                ],
            )?;
            bar.set_message(format!("loss {last_loss:.4}{}", eval_msg(&last_eval)));
            (loss_acc, ce_acc, reg_acc, n_acc) = (0.0, 0.0, 0.0, 0);
            window_start = Instant::now();
        }
        if step % job.train.plot_every == 0 || step == total {
            log_probe(&mut tb, &model.valid(), &probe, &coding, step)?;
            log_weights(&mut tb, &model, step)?;
        }
        if step % job.train.checkpoint_every == 0 || step == total {
            save(&model, &opt, step)?;
            last_saved = step;
            tb.flush()?;
        }
        if let Some((at, rx)) = &pending_eval {
            match rx.try_recv() {
                Ok(result) => {
                    let report = result?;
                    log_eval(&mut tb, *at, &report)?;
                    last_eval = Some(report);
                    pending_eval = None;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => bail!("the evaluation thread died"),
            }
        }
        if job.eval.every > 0 && step % job.eval.every == 0 && step < total && pending_eval.is_none() {
            pending_eval = Some((step, spawn_eval(&env, snapshot(&model), &job.eval, stop.clone())));
        }
        bar.set_position(step);
    }
    let train_seconds = t0.elapsed().as_secs_f64();
    let steps_done = step - start_step;
    if n_acc > 0 {
        // Interrupted inside a logging window: report what it saw.
        last_loss = loss_acc / n_acc as f64;
        if first_loss.is_nan() {
            first_loss = last_loss;
        }
    }
    if interrupted && step > last_saved {
        save(&model, &opt, step)?;
    }
    if let Some((at, rx)) = pending_eval.take()
        && let Ok(result) = rx.recv()
    {
        match result {
            Ok(report) => {
                log_eval(&mut tb, at, &report)?;
                last_eval = Some(report);
            }
            Err(e) if !interrupted => return Err(e),
            Err(_) => {}
        }
    }
    if !interrupted {
        bar.set_message(format!("loss {last_loss:.4}, evaluating {} episodes", job.eval.episodes));
        let report = evaluate(&env, snapshot(&model), job.eval.episodes, job.eval.actors, job.eval.seed, stop.clone())?;
        log_eval(&mut tb, step, &report)?;
        last_eval = Some(report);
    }
    let smoothness = probe_smoothness(&model.valid(), &probe, &coding)?;
    tb.flush()?;
    bar.finish_and_clear();
    let summary = TrainSummary {
        name: job.name.clone(),
        head: job.model.head.slug(),
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
    };
    if !interrupted {
        crate::fsutil::write_atomic(&run_dir.join("summary.json"), serde_json::to_string_pretty(&summary)?.as_bytes())?;
    }
    Ok(summary)
}

fn eval_msg(r: &Option<EvalReport>) -> String {
    r.as_ref().map(|r| format!(", eval return {:.1}", r.mean)).unwrap_or_default()
}

fn spawn_eval(
    env: &str,
    factory: Arc<dyn PolicyFactory>,
    eval: &EvalConfig,
    stop: Arc<AtomicBool>,
) -> Receiver<anyhow::Result<EvalReport>> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let (env, eval) = (env.to_string(), eval.clone());
    std::thread::spawn(move || {
        let _ = tx.send(evaluate(&env, factory, eval.episodes, eval.actors, eval.seed, stop));
    });
    rx
}

/// The loss of a batch: state-token features of the real (unpadded) positions against their targets.
fn batch_loss(model: &DecisionTransformer, batch: Batch) -> frl_heads::HeadLoss {
    let features = model.features(batch.input);
    let [b, k, d] = features.dims();
    let rows = features.reshape([b * k, d]).select(0, batch.rows);
    model.loss(rows, batch.targets)
}

/// Per-head PMFs `[rows, bins]` at the probe windows' real positions.
fn probe_pmfs(model: &DecisionTransformer, probe: &Batch) -> Vec<Vec<f32>> {
    let features = model.features(probe.input.clone());
    let [b, k, d] = features.dims();
    let rows = features.reshape([b * k, d]).select(0, probe.rows.clone());
    model.heads.iter().map(|h| to_host(h.pmf(rows.clone()))).collect()
}

fn probe_smoothness(model: &DecisionTransformer, probe: &Batch, coding: &ActionCoding) -> anyhow::Result<f64> {
    let m = coding.bins();
    let mut all = Vec::new();
    for pmf in probe_pmfs(model, probe) {
        let p: Vec<f64> = pmf.iter().map(|&v| v as f64).collect();
        all.extend(smoothness_rows(&p, m)?);
    }
    Ok(all.iter().sum::<f64>() / all.len().max(1) as f64)
}

/// PMF images of the first position of each probe window, the smoothness scalar and bin histograms.
fn log_probe(
    tb: &mut SummaryWriter,
    model: &DecisionTransformer,
    probe: &Batch,
    coding: &ActionCoding,
    step: u64,
) -> anyhow::Result<()> {
    let m = coding.bins();
    let pmfs = probe_pmfs(model, probe);
    let targets: Vec<i64> =
        probe.targets.clone().into_data().convert::<i64>().try_into_vec::<i64>().unwrap_or_default();
    let rows: Vec<i64> = probe.rows.clone().into_data().convert::<i64>().try_into_vec::<i64>().unwrap_or_default();
    let heads = coding.heads();
    let k = probe.input.timesteps.dims()[1];
    let mut smooth = Vec::new();
    for (h, pmf) in pmfs.iter().enumerate() {
        let p: Vec<f64> = pmf.iter().map(|&v| v as f64).collect();
        smooth.extend(smoothness_rows(&p, m)?);
        // One image per probe window: the PMF at its first position, the dataset's action marked.
        for (r, &flat) in rows.iter().enumerate() {
            if !(flat as usize).is_multiple_of(k) {
                continue;
            }
            let window = flat as usize / k;
            let png = pmf_png(&pmf[r * m..(r + 1) * m], Some(targets[r * heads + h] as usize));
            tb.image(&format!("action_pmf/window{window}_dim{h}"), step, &png)?;
        }
        let mode: Vec<f32> = pmf.chunks(m).map(|row| argmax(row) as f32).collect();
        tb.histogram(&format!("actions/predicted_bin_dim{h}"), step, &mode, m.min(64))?;
        tb.histogram(&format!("actions/pmf_dim{h}"), step, pmf, 50)?;
    }
    let s = smooth.iter().sum::<f64>() / smooth.len().max(1) as f64;
    tb.scalar("actions/pmf_smoothness", step, s)?;
    Ok(())
}

fn log_weights(tb: &mut SummaryWriter, model: &DecisionTransformer, step: u64) -> anyhow::Result<()> {
    for p in named_params(model) {
        if p.shape.len() == 2 {
            tb.histogram(&format!("weights/{}", p.name), step, &p.data, 50)?;
        }
    }
    Ok(())
}

fn log_eval(tb: &mut SummaryWriter, step: u64, r: &EvalReport) -> anyhow::Result<()> {
    let mut values = vec![
        ("eval/return_mean", r.mean),
        ("eval/return_std", r.std),
        ("eval/return_min", r.min),
        ("eval/return_max", r.max),
    ];
    if let Some(n) = r.normalized {
        values.push(("eval/return_normalized", n));
    }
    tb.scalars(step, &values)?;
    let returns: Vec<f32> = r.returns.iter().map(|&v| v as f32).collect();
    tb.histogram("eval/returns", step, &returns, 20)?;
    tb.flush()?;
    Ok(())
}
