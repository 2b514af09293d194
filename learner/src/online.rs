//! Online training: actor threads run the newest policy in the env and send finished episodes over a bounded
//! crossbeam channel; the learner (this thread) inserts them into the agent's replay store, trains at
//! `updates_per_step` updates per env step, and broadcasts versioned weights every `broadcast_every` updates.
//!
//! Everything around the agent is the offline learner's: job file, device, optimiser groups, TensorBoard, checkpoints,
//! resume, NaN guard, Ctrl-C, evaluation by actors, summary. Online scalars (`online/*`, `train/*`, `eval/*`) are
//! logged against env steps, so learning curves of different runs share an axis.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use burn::tensor::Device;
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use frl_dataset::dataset::{Collection, Dataset, DatasetWriter};
use frl_dataset::episodes::{EpisodeBatch, FragmentJoiner};
use frl_envs::{PolicyFactory, Space};
use frl_rollout::{ActorPool, ChannelLink, EnvFactory, EpisodeRng, PoolConfig};
use frl_tensorboard::SummaryWriter;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::agent::{Agent, AgentConfig, DataSpec, Scalars};
use super::checkpoint::{self, CheckpointMeta};
use super::evals::Evaluations;
use super::fit::{
    RunFolder, ScalarWindow, TrainOptions, TrainSummary, data_spec, eval_msg, load_agent, log_probe, log_weights,
    mean_smoothness, mix, run_folder,
};
use super::job::{TrainJob, lr_at};
use super::optim::{NonFinite, Optimizers};

/// An agent that also learns from its own experience: a replay store that grows as episodes arrive, and an
/// exploring policy for the actors.
pub trait OnlineAgent: Agent {
    /// An empty replay store that keeps at most `capacity` steps (the oldest go first).
    fn replay(&self, capacity: usize) -> anyhow::Result<Self::Data>;

    /// Adds finished episodes to the store.
    fn insert(&self, data: &mut Self::Data, episodes: &EpisodeBatch) -> anyhow::Result<()>;

    /// Steps the store holds.
    fn stored(data: &Self::Data) -> usize;

    /// The policy actors explore with after `env_steps` env steps (ε-greedy, an exploration return, ...).
    fn explore(&self, env_steps: u64) -> Arc<dyn PolicyFactory>;

    /// Whether [`OnlineAgent::insert`] takes fragments of running episodes as they arrive (`online.fragment_steps`);
    /// otherwise it gets each episode whole once it ended.
    fn takes_fragments(&self) -> bool {
        false
    }

    /// Scalars describing the exploration at `env_steps` (e.g. `epsilon`), logged as `online/<name>`.
    fn exploration_scalars(&self, _env_steps: u64) -> Scalars {
        Vec::new()
    }
}

/// The `[online]` section of a job file: the env the actors run and how acting and learning interleave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnlineConfig {
    /// Env id the actors run (a native id, or `gym:<id>` in a `python` build).
    pub env: String,
    /// The budget: training ends once the actors have taken this many env steps.
    pub env_steps: u64,
    /// Actor threads.
    pub actors: usize,
    /// Steps the replay store keeps.
    pub replay_capacity: usize,
    /// Env steps collected before the first update.
    pub learning_starts: u64,
    /// Updates per env step after `learning_starts` (0.1: one update every 10 env steps).
    pub updates_per_step: f64,
    /// Hold the actors back (by not taking their episodes) while the learner is behind `updates_per_step`; with
    /// `false` actors never wait and the learner trains as fast as it can.
    pub throttle: bool,
    /// New weights go to the actors every this many updates.
    pub broadcast_every: u64,
    /// Record every episode the actors produce as a dataset in `<run>/episodes` (its `policy_version` column says
    /// which policy acted); a resumed run then refills its replay store from it.
    pub record: bool,
    /// Failures (panics or env errors) of the actors tolerated before the run stops.
    pub max_failures: u64,
    /// Actors send running episodes in fragments of this many steps (for long episodes): env steps count, the ratio
    /// holds and agents that take fragments (DQN) learn from them as they arrive; the recording and agents that need
    /// whole episodes (the DT) get each episode once it ended. The acting policy changes only between episodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fragment_steps: Option<usize>,
    /// Actors act with this fixed behaviour policy (`"random"`, `{ expert = { noise = 0.3 } }`, ...) instead of the
    /// agent's exploring policy, and the agent learns off-policy from it; weights are not broadcast.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behaviour: Option<frl_envs::BehaviourSpec>,
    /// Start from the parameters of this checkpoint (a checkpoint file, or a run folder or checkpoints folder: its
    /// newest checkpoint) — offline-to-online fine-tuning. It must hold an agent of the job's kind trained on the
    /// same env; its data spec (observation scaling, best return) comes with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<PathBuf>,
}

impl Default for OnlineConfig {
    fn default() -> Self {
        Self {
            env: String::new(),
            env_steps: 100_000,
            actors: 1,
            replay_capacity: 100_000,
            learning_starts: 1_000,
            updates_per_step: 0.25,
            throttle: true,
            broadcast_every: 100,
            record: false,
            max_failures: 100,
            fragment_steps: None,
            behaviour: None,
            init: None,
        }
    }
}

impl OnlineConfig {
    /// Checks every field, naming the one at fault.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.env.is_empty() {
            bail!("`online.env` is required: the env id the actors run, e.g. \"CartPole-v1\"");
        }
        for (field, v) in [
            ("env_steps", self.env_steps),
            ("actors", self.actors as u64),
            ("replay_capacity", self.replay_capacity as u64),
            ("broadcast_every", self.broadcast_every),
        ] {
            if v == 0 {
                bail!("`online.{field}` must be at least 1");
            }
        }
        if self.fragment_steps == Some(0) {
            bail!("`online.fragment_steps` must be at least 1 (leave it out to send whole episodes)");
        }
        if !(self.updates_per_step.is_finite() && self.updates_per_step >= 0.0) {
            bail!("`online.updates_per_step` = {}: must be a number ≥ 0", self.updates_per_step);
        }
        Ok(())
    }

    /// Updates due after `env_steps` env steps.
    pub fn updates_due(&self, env_steps: u64) -> u64 {
        (env_steps.saturating_sub(self.learning_starts) as f64 * self.updates_per_step) as u64
    }
}

/// Where an online run stands; stored in its checkpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OnlineProgress {
    /// Env steps of the episodes the learner received.
    pub env_steps: u64,
    /// Episodes received.
    pub episodes: u64,
    /// Updates done.
    pub updates: u64,
    /// The newest policy version broadcast.
    pub version: u64,
}

/// What an online run measured, in its summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OnlineReport {
    /// Env steps received.
    pub env_steps: u64,
    /// Episodes received.
    pub episodes: u64,
    /// Env steps per second over this invocation.
    pub env_steps_per_sec: f64,
    /// Updates per second over this invocation.
    pub updates_per_sec: f64,
    /// Mean policy lag (learner version − acting version) of the episodes received.
    pub mean_policy_lag: f64,
    /// Mean return of the last 20 episodes the actors finished (exploring).
    pub recent_return: f64,
    /// Wall-clock seconds of this invocation.
    pub seconds: f64,
}

/// Window statistics of the episodes received since the last log.
#[derive(Default)]
struct EpisodeWindow {
    returns: Vec<f64>,
    lengths: Vec<f64>,
    lags: Vec<f64>,
}

impl EpisodeWindow {
    fn mean(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len().max(1) as f64
    }
}

/// What an online run learns from: the data spec (from the seed dataset when there is one, else from the env, no
/// scaling), the seed dataset, and the env's observation space (for the recording).
fn online_spec(job: &TrainJob, online: &OnlineConfig) -> anyhow::Result<(DataSpec, Option<Dataset>, Space)> {
    let env = frl_envs::make(&online.env).with_context(|| format!("`online.env` = {:?}", online.env))?;
    let obs_space = env.observation_space();
    if job.dataset.as_os_str().is_empty() {
        let obs_dim = env.observation_space().flat_dim();
        let spec = DataSpec {
            env: online.env.clone(),
            obs_dim,
            action_space: env.action_space(),
            obs_mean: vec![0.0; obs_dim],
            obs_std: vec![1.0; obs_dim],
            best_return: 0.0,
        };
        return Ok((spec, None, obs_space));
    }
    let dataset = Dataset::open(&job.dataset)?;
    if dataset.metadata.env_id != online.env {
        bail!(
            "dataset {} holds {} episodes, but `online.env` is {:?}",
            job.dataset.display(),
            dataset.metadata.env_id,
            online.env
        );
    }
    Ok((data_spec(&dataset), Some(dataset), obs_space))
}

/// The newest checkpoint at `path`: the file itself, or the newest in a checkpoints folder or a run folder.
fn checkpoint_at(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.is_dir() {
        bail!("`online.init` = {}: no such checkpoint file or run folder", path.display());
    }
    for dir in [path.join("checkpoints"), path.to_path_buf()] {
        if let Some((_, newest)) = checkpoint::list(&dir).pop() {
            return Ok(newest);
        }
    }
    bail!("`online.init` = {}: holds no checkpoint (nor does its `checkpoints` folder)", path.display())
}

/// A fresh agent for `config` with the parameters of the checkpoint at `path` (see [`OnlineConfig::init`]), and
/// that checkpoint's data spec.
fn init_from<A: Agent>(
    path: &Path,
    config: &A::Config,
    env: &str,
    rng: &mut EpisodeRng,
    device: &Device,
) -> anyhow::Result<(A, DataSpec)> {
    let file = checkpoint_at(path)?;
    let ckpt = checkpoint::load(&file).with_context(|| format!("`online.init` = {}", path.display()))?;
    let meta = &ckpt.meta;
    if meta.agent != A::KIND {
        bail!("`online.init`: {} holds a `{}` agent; this job trains `{}`", file.display(), meta.agent, A::KIND);
    }
    if meta.data.env != env {
        bail!("`online.init`: {} was trained on {}; `online.env` is {env:?}", file.display(), meta.data.env);
    }
    let spec = meta.data.clone();
    let agent = A::new(config, &spec, rng, device)?.load_params(&ckpt.model).map_err(|e| {
        anyhow::anyhow!("`online.init`: {} does not fit the job's `[{}]` network: {e}", file.display(), A::KIND)
    })?;
    Ok((agent, spec))
}

/// Trains agent `A` online on the job's `[online]` env; Ctrl-C (the `stop` flag) saves a checkpoint and returns with
/// `interrupted`. With `online.init`, the agent starts from a checkpoint's parameters; with a `dataset`, the replay
/// store starts with its best episodes that fit (offline-to-online).
pub fn fit_online<A: OnlineAgent>(
    job: &TrainJob,
    options: &TrainOptions,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<TrainSummary> {
    job.validate()?;
    let Some(online) = job.online.clone() else { bail!("the job has no [online] section") };
    if job.agent != A::KIND {
        bail!("`agent` = {:?}, but this learner trains `{}`", job.agent, A::KIND);
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
    let record_dir = run_dir.join("episodes");

    let (mut spec, seed_data, obs_space) = online_spec(job, &online)?;
    let mut init_rng = EpisodeRng::seed_from_u64(mix(job.seed, 0, 0x1a17));
    let mut opt =
        Optimizers::new(job.train.optimizer.clone()).poison_at(job.train.poison_loss_at).with_shards(job.train.shards);
    let mut progress = OnlineProgress::default();
    let resumed = existing.last().filter(|_| options.resume);
    let agent = match resumed {
        Some((_, path)) => {
            let loaded = load_agent::<A>(path, &device)?;
            let old = &loaded.meta.job;
            let same_online = old.online.as_ref().map(|o| (&o.env, o.record)) == Some((&online.env, online.record));
            if loaded.config != config || old.dataset != job.dataset || old.seed != job.seed || !same_online {
                bail!(
                    "{} was written by a job with another agent config, env, dataset, seed or `record`; resume \
                     needs the same ones",
                    path.display()
                );
            }
            opt.load_state(loaded.meta.step, &loaded.adam, &device.clone().inner());
            progress = loaded.meta.online.clone().unwrap_or_default();
            progress.updates = loaded.meta.step;
            spec = loaded.meta.data;
            eprintln!(
                "resuming {} from update {} ({} env steps, {} episodes)",
                job.name, progress.updates, progress.env_steps, progress.episodes
            );
            loaded.agent
        }
        None => {
            if record_dir.exists() {
                bail!(
                    "{} holds recorded episodes but no checkpoint to resume from; remove it or give the job another \
                     name",
                    record_dir.display()
                );
            }
            match &online.init {
                Some(path) => {
                    let (agent, init_spec) = init_from::<A>(path, &config, &online.env, &mut init_rng, &device)?;
                    spec = init_spec;
                    agent
                }
                None => A::new(&config, &spec, &mut init_rng, &device)?,
            }
        }
    };
    if progress.env_steps >= online.env_steps
        && let Ok(text) = std::fs::read_to_string(run_dir.join("summary.json"))
        && let Ok(summary) = serde_json::from_str::<TrainSummary>(&text)
    {
        eprintln!(
            "{} is complete ({} env steps); its summary is in {}",
            job.name,
            progress.env_steps,
            run_dir.display()
        );
        return Ok(summary);
    }

    // The replay store: the seed dataset's best episodes that fit, then (on resume) the recorded episodes.
    let mut replay = agent.replay(online.replay_capacity)?;
    if let Some(d) = &seed_data {
        let best = d.episodes.best_that_fit(online.replay_capacity);
        agent.insert(&mut replay, &best).with_context(|| format!("dataset {}", job.dataset.display()))?;
    }
    drop(seed_data);
    std::fs::create_dir_all(&run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
    let mut recorder = if !online.record {
        None
    } else if resumed.is_some() && record_dir.join(frl_dataset::dataset::METADATA_FILE).exists() {
        let recorded = Dataset::open(&record_dir)?;
        agent.insert(&mut replay, &recorded.episodes).with_context(|| format!("dataset {}", record_dir.display()))?;
        Some(DatasetWriter::resume(&record_dir, RECORD_SHARD_STEPS)?)
    } else {
        let collection = Collection {
            policy: format!("online {}", A::KIND),
            seed: job.seed,
            first_episode: 0,
            episodes: 0,
            requested: 0,
        };
        let act = &spec.action_space;
        Some(DatasetWriter::open(&record_dir, &online.env, &obs_space, act, collection, RECORD_SHARD_STEPS, false)?)
    };

    frl_dataset::fsutil::write_atomic(&run_dir.join("job.toml"), toml::to_string(job)?.as_bytes())?;
    let mut tb = SummaryWriter::create(&run_dir).with_context(|| format!("cannot write to {}", run_dir.display()))?;

    // Actors: the exploring policy as version `progress.version`, episode indices continuing the run's count.
    let actors_stop = Arc::new(AtomicBool::new(false));
    let first_policy = match &online.behaviour {
        Some(b) => b.factory(&online.env, &spec.action_space).with_context(|| format!("`online.behaviour` = {b:?}"))?,
        None => agent.explore(progress.env_steps),
    };
    let (link, rx) = ChannelLink::with_snapshot(
        2 * online.actors,
        frl_rollout::PolicySnapshot { version: progress.version, factory: first_policy },
    );
    let pool_config = PoolConfig {
        actors: online.actors,
        seed: mix(job.seed, 0, 0xac70),
        first_episode: progress.episodes,
        episodes: None,
        // Throttled, every episode goes on its own, so the ratio holds per episode; free-running actors send
        // batches of episodes, as `frl collect` does.
        batch_steps: if online.throttle { 1 } else { 1024 },
        max_delay_ms: if online.throttle { 0 } else { 50 },
        max_failures: online.max_failures,
        fragment_steps: online.fragment_steps,
    };
    let env_id = online.env.clone();
    let make_env: EnvFactory = Arc::new(move || frl_envs::make(&env_id));
    // Rates count from the actors' start.
    let started = Instant::now();
    let pool = ActorPool::spawn(pool_config, make_env, link.clone(), actors_stop.clone());
    let gate = Arc::new(Gate::default());
    let (staged_tx, staged) = crossbeam_channel::unbounded();
    let inserter = {
        let (gate, throttle) = (gate.clone(), online.throttle);
        std::thread::Builder::new()
            .name("frl-inserter".into())
            .spawn(move || stage(&rx, &staged_tx, &gate, throttle))
            .context("spawning the inserter thread")?
    };

    let mut learner = OnlineLearner {
        job,
        online: &online,
        spec: &spec,
        device: &device,
        ckpt_dir: &ckpt_dir,
        stop: &stop,
        tb: &mut tb,
        recorder: recorder.as_mut(),
        staged: &staged,
        gate: &gate,
        link: &link,
        progress,
        joiner: FragmentJoiner::default(),
        quiet: options.quiet,
    };
    let outcome = learner.run(agent, &mut replay, &mut opt, started);
    let progress = learner.progress.clone();
    // Stop the actors whatever happened; the inserter then drops its receiver, which unblocks any actor waiting to
    // send.
    actors_stop.store(true, Ordering::SeqCst);
    gate.closing.store(true, Ordering::SeqCst);
    drop(staged);
    let _ = inserter.join();
    let pool_report = pool.join();
    let (agent, run) = outcome?;
    if let Some(e) = pool_report.error.filter(|_| !run.interrupted && progress.env_steps < online.env_steps) {
        bail!("the actors stopped: {e}");
    }
    if let Some(rec) = recorder {
        rec.finish()?;
    }

    let mut evals = run.evals;
    if !run.interrupted {
        // The final evaluation, after the last update, with the actors stopped.
        let snapshot = || (online_meta::<A>(job, &spec, &progress), agent.params());
        let factory = agent.policy(&job.eval.acting());
        evals.run(progress.env_steps, factory, &mut tb, snapshot)?;
    }
    let last_eval = evals.last.take();
    let smoothness = match &run.probe {
        Some(probe) => match agent.action_pmfs(probe)? {
            Some(p) => mean_smoothness(&p)?,
            None => f64::NAN,
        },
        None => f64::NAN,
    };
    tb.flush()?;
    let summary = TrainSummary {
        name: job.name.clone(),
        agent: A::KIND.into(),
        head: config.head().map(|h| h.slug()).unwrap_or_else(|| "-".into()),
        steps: progress.updates,
        interrupted: run.interrupted,
        first_loss: run.first_loss,
        final_loss: run.last_loss,
        smoothness,
        eval: last_eval,
        train_seconds: run.report.seconds,
        ms_per_step: 1000.0 * run.update_seconds / run.updates_done.max(1) as f64,
        backend: selected.name.clone(),
        run_dir: run_dir.clone(),
        online: Some(run.report),
    };
    if !run.interrupted {
        summary.write()?;
    }
    Ok(summary)
}

/// Between the inserter thread and the learner: whether the learner wants another batch (throttled runs), and
/// whether the run is closing.
#[derive(Default)]
struct Gate {
    hungry: AtomicBool,
    closing: AtomicBool,
}

/// The inserter thread: takes the actors' batches off their bounded channel as soon as they arrive and stages them
/// for the learner (an unbounded queue the learner drains between updates), so free-running actors never wait for
/// an update to finish. Throttled, it passes one batch each time the learner has caught up, and the actors block on
/// the full channel meanwhile.
fn stage(rx: &Receiver<EpisodeBatch>, staged: &crossbeam_channel::Sender<EpisodeBatch>, gate: &Gate, throttle: bool) {
    loop {
        let batch = match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(batch) => batch,
            Err(RecvTimeoutError::Timeout) if gate.closing.load(Ordering::Acquire) => return,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        while throttle && !gate.hungry.swap(false, Ordering::AcqRel) {
            if gate.closing.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        if staged.send(batch).is_err() {
            return;
        }
    }
}

/// The metadata of a checkpoint of agent `A` of an online run that stands at `progress`.
fn online_meta<A: Agent>(job: &TrainJob, spec: &DataSpec, progress: &OnlineProgress) -> CheckpointMeta {
    CheckpointMeta {
        format: checkpoint::FORMAT.into(),
        format_version: checkpoint::FORMAT_VERSION,
        agent: A::KIND.into(),
        step: progress.updates,
        job: job.clone(),
        data: spec.clone(),
        online: Some(progress.clone()),
        eval_return: None,
    }
}

/// Steps per shard of the recorded episodes.
const RECORD_SHARD_STEPS: usize = 50_000;

/// What the learner loop hands back.
struct RunOutcome<B> {
    interrupted: bool,
    first_loss: f64,
    last_loss: f64,
    evals: Evaluations,
    probe: Option<B>,
    report: OnlineReport,
    updates_done: u64,
    update_seconds: f64,
}

/// The learner's side of the live loop.
struct OnlineLearner<'a> {
    job: &'a TrainJob,
    online: &'a OnlineConfig,
    spec: &'a DataSpec,
    device: &'a Device,
    ckpt_dir: &'a Path,
    stop: &'a Arc<AtomicBool>,
    tb: &'a mut SummaryWriter,
    recorder: Option<&'a mut DatasetWriter>,
    staged: &'a Receiver<EpisodeBatch>,
    gate: &'a Gate,
    link: &'a ChannelLink,
    progress: OnlineProgress,
    /// Fragments of episodes still running (`online.fragment_steps`).
    joiner: FragmentJoiner,
    quiet: bool,
}

impl OnlineLearner<'_> {
    fn meta<A: Agent>(&self) -> CheckpointMeta {
        online_meta::<A>(self.job, self.spec, &self.progress)
    }

    fn save<A: Agent>(&mut self, agent: &A, opt: &Optimizers) -> anyhow::Result<()> {
        // The recorded episodes reach the disk first, so a checkpoint never counts episodes the dataset lacks.
        if let Some(rec) = self.recorder.as_mut() {
            rec.flush()?;
        }
        let path = self.ckpt_dir.join(checkpoint::file_name(self.progress.updates));
        checkpoint::save(&path, &self.meta::<A>(), &agent.params(), &opt.state_tensors())?;
        checkpoint::prune(self.ckpt_dir, self.job.train.keep_checkpoints);
        self.tb.flush()?;
        Ok(())
    }

    /// Takes one batch of episodes (or fragments): counts, records and inserts them.
    fn receive<A: OnlineAgent>(
        &mut self,
        agent: &A,
        replay: &mut A::Data,
        batch: EpisodeBatch,
        window: &mut EpisodeWindow,
        recent: &mut Vec<f64>,
    ) -> anyhow::Result<()> {
        self.progress.env_steps += batch.steps() as u64;
        let fragments = self.online.fragment_steps.is_some();
        if fragments && agent.takes_fragments() {
            agent.insert(replay, &batch)?;
        }
        let batch = if fragments { self.joiner.join(&batch) } else { batch };
        for ep in batch.iter() {
            self.progress.episodes += 1;
            let ret = ep.episode_return();
            window.returns.push(ret);
            window.lengths.push(ep.len() as f64);
            window.lags.push(self.progress.version.saturating_sub(ep.tag.policy_version) as f64);
            recent.push(ret);
            if let Some(rec) = self.recorder.as_mut() {
                rec.write(&ep)?;
            }
        }
        if recent.len() > 20 {
            recent.drain(..recent.len() - 20);
        }
        if fragments && agent.takes_fragments() { Ok(()) } else { agent.insert(replay, &batch) }
    }

    fn run<A: OnlineAgent>(
        &mut self,
        mut agent: A,
        replay: &mut A::Data,
        opt: &mut Optimizers,
        t0: Instant,
    ) -> anyhow::Result<(A, RunOutcome<A::Batch>)> {
        let (job, online) = (self.job, self.online);
        let budget = online.env_steps;
        // The LR schedule runs over the updates the budget implies.
        let mut schedule = job.train.clone();
        schedule.steps = online.updates_due(budget).max(1);
        let bar = if self.quiet { ProgressBar::hidden() } else { ProgressBar::new(budget) };
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} env steps {msg}")
                .expect("valid template"),
        );
        bar.set_prefix(job.name.clone());
        bar.set_position(self.progress.env_steps);

        let start = self.progress.clone();
        let mut window = ScalarWindow::default();
        let mut episodes = EpisodeWindow::default();
        let mut recent = Vec::new();
        let (mut lag_sum, mut lag_n) = (0.0, 0u64);
        let (mut first_loss, mut last_loss) = (f64::NAN, f64::NAN);
        let mut last_saved = self.progress.updates;
        let mut last_log = (Instant::now(), self.progress.env_steps, self.progress.updates);
        let mut probe: Option<A::Batch> = None;
        let mut evals = Evaluations::new(&self.spec.env, &job.eval, self.stop.clone(), self.ckpt_dir);
        let mut next_eval = if job.eval.every > 0 { self.progress.env_steps + job.eval.every } else { u64::MAX };
        let mut update_seconds = 0.0;
        let mut interrupted = false;

        loop {
            if self.stop.load(Ordering::SeqCst) {
                interrupted = true;
                break;
            }
            if self.progress.env_steps >= budget {
                break;
            }
            // Take the staged episodes (throttled, the inserter stages one batch only when the learner has caught up).
            // Free-running actors can stage episodes faster than they are recorded and inserted, so taking stops at
            // the budget: what arrives beyond it is dropped with the queue, and memory stays bounded.
            while self.progress.env_steps < budget {
                match self.staged.try_recv() {
                    Ok(batch) => self.receive(&agent, replay, batch, &mut episodes, &mut recent)?,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => bail!("the actors stopped unexpectedly"),
                }
            }
            let stored = A::stored(replay);
            let due = online.updates_due(self.progress.env_steps);
            let behind = self.progress.updates < due && stored >= job.train.batch_size.min(online.replay_capacity);
            if behind {
                let u0 = Instant::now();
                let step = self.progress.updates + 1;
                self.device.seed(mix(job.seed, step, 0xd20f));
                let mut rng = EpisodeRng::seed_from_u64(mix(job.seed, step, 0xba7c));
                if probe.is_none() {
                    let mut probe_rng = EpisodeRng::seed_from_u64(mix(job.seed, 0, 0x9b0e));
                    let n = job.train.probe_windows.max(1);
                    probe = Some(agent.sample(replay, n, &mut probe_rng, &self.device.clone().inner()));
                }
                let batch = agent.sample(replay, job.train.batch_size, &mut rng, self.device);
                opt.begin_step(step, lr_at(&schedule, step));
                let (next, scalars) = match agent.train_step(batch, opt) {
                    Ok(x) => x,
                    Err(e) => {
                        let e = match e.downcast_ref::<NonFinite>() {
                            Some(nf) => anyhow::anyhow!(
                                "{nf}; stopped. The last good checkpoint (update {last_saved}) is kept in {}",
                                self.ckpt_dir.display()
                            ),
                            None => e.context(format!("update {step}")),
                        };
                        return Err(e);
                    }
                };
                agent = next;
                self.progress.updates = step;
                update_seconds += u0.elapsed().as_secs_f64();
                window.add(&scalars);
                if step.is_multiple_of(online.broadcast_every) && online.behaviour.is_none() {
                    self.progress.version = self.link.broadcast(agent.explore(self.progress.env_steps));
                }
                if step.is_multiple_of(job.train.plot_every) {
                    if let Some(p) = &probe {
                        log_probe(self.tb, agent.action_pmfs(p)?, self.progress.env_steps)?;
                    }
                    log_weights(self.tb, &agent.params(), self.progress.env_steps)?;
                }
                if step.is_multiple_of(job.train.checkpoint_every) {
                    self.save(&agent, opt)?;
                    last_saved = step;
                }
            } else {
                // Nothing to do until more episodes arrive.
                self.gate.hungry.store(true, Ordering::Release);
                match self.staged.recv_timeout(Duration::from_millis(20)) {
                    Ok(batch) => self.receive(&agent, replay, batch, &mut episodes, &mut recent)?,
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => bail!("the actors stopped unexpectedly"),
                }
            }

            // Logging: every `log_every` updates, or every 5000 env steps while no update is due.
            let (at, env_at, upd_at) = last_log;
            let env_steps = self.progress.env_steps;
            if self.progress.updates >= upd_at + job.train.log_every
                || (self.progress.updates == upd_at && env_steps >= env_at + 5000)
            {
                let secs = at.elapsed().as_secs_f64().max(1e-9);
                let mut values: Vec<(String, f64)> =
                    window.means().into_iter().map(|(k, v)| (format!("train/{k}"), v)).collect();
                if window.n > 0 {
                    last_loss = window.mean("loss");
                    if first_loss.is_nan() {
                        first_loss = last_loss;
                    }
                    values.push(("train/lr".into(), opt.lr()));
                    for (group, norm) in opt.grad_norms() {
                        let tag = if opt.grad_norms().len() == 1 {
                            "train/grad_norm".into()
                        } else {
                            format!("train/grad_norm_{group}")
                        };
                        values.push((tag, *norm));
                    }
                }
                if !episodes.returns.is_empty() {
                    values.push(("online/episode_return".into(), EpisodeWindow::mean(&episodes.returns)));
                    values.push(("online/episode_length".into(), EpisodeWindow::mean(&episodes.lengths)));
                    values.push(("online/policy_lag".into(), EpisodeWindow::mean(&episodes.lags)));
                    lag_sum += episodes.lags.iter().sum::<f64>();
                    lag_n += episodes.lags.len() as u64;
                }
                values.push(("online/env_steps_per_sec".into(), (env_steps - env_at) as f64 / secs));
                values.push(("online/updates_per_sec".into(), (self.progress.updates - upd_at) as f64 / secs));
                values.push(("online/updates".into(), self.progress.updates as f64));
                values.push(("online/replay_size".into(), A::stored(replay) as f64));
                values.push(("online/policy_version".into(), self.progress.version as f64));
                for (k, v) in agent.exploration_scalars(env_steps) {
                    values.push((format!("online/{k}"), v));
                }
                let refs: Vec<(&str, f64)> = values.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                self.tb.scalars(env_steps, &refs)?;
                let ret = EpisodeWindow::mean(&recent);
                bar.set_message(format!(
                    "{} updates, return {ret:.1}, loss {last_loss:.4}{}",
                    self.progress.updates,
                    eval_msg(&evals.last)
                ));
                bar.set_position(env_steps.min(budget));
                window = ScalarWindow::default();
                episodes = EpisodeWindow::default();
                last_log = (Instant::now(), env_steps, self.progress.updates);
            }

            evals.poll(self.tb)?;
            if self.progress.env_steps >= next_eval && !evals.busy() {
                let factory = agent.policy(&job.eval.acting());
                let snapshot = || (self.meta::<A>(), agent.params());
                let at = self.progress.env_steps;
                evals.start(at, factory, snapshot);
                while next_eval <= self.progress.env_steps {
                    next_eval += job.eval.every;
                }
            }
        }
        let seconds = t0.elapsed().as_secs_f64();
        if self.progress.updates > last_saved || !interrupted {
            self.save(&agent, opt)?;
        }
        evals.finish(self.tb, interrupted)?;
        if window.n > 0 {
            last_loss = window.mean("loss");
            if first_loss.is_nan() {
                first_loss = last_loss;
            }
        }
        lag_sum += episodes.lags.iter().sum::<f64>();
        lag_n += episodes.lags.len() as u64;
        bar.finish_and_clear();
        let updates_done = self.progress.updates - start.updates;
        let report = OnlineReport {
            env_steps: self.progress.env_steps,
            episodes: self.progress.episodes,
            env_steps_per_sec: (self.progress.env_steps - start.env_steps) as f64 / seconds.max(1e-9),
            updates_per_sec: updates_done as f64 / seconds.max(1e-9),
            mean_policy_lag: lag_sum / lag_n.max(1) as f64,
            recent_return: EpisodeWindow::mean(&recent),
            seconds,
        };
        let outcome =
            RunOutcome { interrupted, first_loss, last_loss, evals, probe, report, updates_done, update_seconds };
        Ok((agent, outcome))
    }
}
