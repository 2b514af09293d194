//! [`fit_online`]: an agent trained from its own actors, on the run layer. Actor threads run the newest policy in
//! the env and send finished episodes (or fragments) over a bounded crossbeam channel; an inserter thread stages
//! them; the learner (this thread) records and inserts them into the agent's replay store, trains at
//! `updates_per_step` updates per env step, and broadcasts versioned weights every `broadcast_every` updates.
//!
//! Only what is online lives here (actors, inserter, the update ratio, broadcasts, recording, `online/*` scalars);
//! the run layer owns the rest. Scalars are logged against env steps, so learning curves of different runs share
//! an axis.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use burn::tensor::Device;
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use frl_dataset::dataset::{Collection, Dataset, DatasetWriter};
use frl_dataset::episodes::{EpisodeBatch, FragmentJoiner};
use frl_envs::{PolicyFactory, Space};
use frl_rollout::{
    ActorPool, ChannelLink, EnvFactory, InFlight, InOrder, LockstepActors, LockstepConfig, PolicySnapshot, PoolConfig,
    PoolReport, Published, RemoteActors, Schedule, SlotState,
};
use indicatif::ProgressBar;

use crate::agent::{Agent, DataSpec, OnlineAgent, Trainable};
use crate::checkpoint::{self, OnlineProgress};
use crate::fit::{AgentEvals, data_spec};
use crate::job::{OnlineConfig, TrainJob};
use crate::run::{OnlineReport, Run, RunEnd, RunSetup, Seed, TrainOptions, TrainSummary, eval_msg, probe_smoothness};

/// Steps per shard of the recorded episodes.
const RECORD_SHARD_STEPS: usize = 50_000;

/// Trains agent `A` online on the job's `[online]` env; Ctrl-C (the `stop` flag) saves a checkpoint and returns with
/// `interrupted`. With `online.init`, the agent starts from a checkpoint's parameters; with a `dataset`, the replay
/// store starts with its best episodes that fit (offline-to-online).
pub fn fit_online<A: OnlineAgent>(
    job: &TrainJob,
    options: &TrainOptions,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<TrainSummary> {
    let Some(online) = job.online.clone() else { bail!("the job has no [online] section") };
    if options.remote.is_some() {
        if !online.deterministic {
            bail!("actors in other processes follow the deterministic schedule: remove `online.deterministic = false`");
        }
        if online.behaviour.is_some() {
            bail!("`online.behaviour` is not supported with actors in other processes yet; use in-process actors");
        }
    }
    let mut setup = RunSetup::<A>::open(job, options, stop)?;
    let record_dir = setup.dir().join("episodes");
    let (spec, seed_data, obs_space) = online_spec(job, &online)?;
    let same = |old: &TrainJob| old.online.as_ref().map(|o| (&o.env, o.record)) == Some((&online.env, online.record));
    let resumed = setup.resuming();
    let (agent, spec) = match setup.resume(same)? {
        Some(resumed) => resumed,
        None if record_dir.exists() => bail!(
            "{} holds recorded episodes but no checkpoint to resume from; remove it or give the job another name",
            record_dir.display()
        ),
        None => match &online.init {
            Some(path) => init_from::<A>(path, &setup.config, &online.env, &mut setup.init_rng(), &setup.device)?,
            None => (setup.fresh(&spec)?, spec),
        },
    };
    // Throttled runs of agents that learn from fragments keep their actors about one update ahead: the actors send
    // what they did since the last update (the steps of one update), so experience reaches the learner with the
    // weights that made it, as in a loop that alternates acting and learning.
    let mut online = online;
    let on_policy = agent.on_policy();
    if let Some(p) = on_policy {
        if !online.deterministic {
            bail!("a `{}` agent learns on-policy, round by round: remove `online.deterministic = false`", A::KIND);
        }
        if online.fragment_steps.is_some_and(|k| k != p.rollout_steps) {
            bail!(
                "`online.fragment_steps` = {}: a `{}` agent's rounds are its rollouts of {} steps; leave it out",
                online.fragment_steps.unwrap_or_default(),
                A::KIND,
                p.rollout_steps
            );
        }
        online.fragment_steps = Some(p.rollout_steps);
    }
    if online.fragment_steps.is_none() && (online.deterministic || (online.throttle && agent.takes_fragments())) {
        online.fragment_steps = Some(steps_per_update(online.updates_per_step));
    }
    let progress = OnlineProgress { updates: setup.step(), ..setup.progress().cloned().unwrap_or_default() };
    if let Some(summary) = setup.finished(progress.env_steps >= online.env_steps) {
        return Ok(summary);
    }

    // The replay store: the seed dataset's best episodes that fit, then (on resume) the recorded episodes.
    let mut replay = agent.replay(online.replay_capacity)?;
    if let Some(d) = &seed_data {
        let best = d.episodes.best_that_fit(online.replay_capacity);
        agent.insert(&mut replay, &best).with_context(|| format!("dataset {}", job.dataset.display()))?;
    }
    drop(seed_data);
    let mut run = setup.begin(spec)?;
    run.progress = Some(progress.clone());
    run.schedule_over(match on_policy {
        Some(p) => {
            let round = (p.rollout_steps * online.envs.unwrap_or(online.actors)) as u64;
            online.env_steps.div_ceil(round) * p.updates
        }
        None => online.updates_due(online.env_steps),
    });
    let recorder = if !online.record {
        None
    } else if resumed && record_dir.join(frl_dataset::dataset::METADATA_FILE).exists() {
        // Episodes recorded after the checkpoint (a run killed between two) are recorded again as the run goes on.
        let writer = DatasetWriter::resume_at(&record_dir, RECORD_SHARD_STEPS, progress.episodes)?;
        // An off-policy agent's replay store comes back from them; an on-policy one learns from the next round only.
        if on_policy.is_none() {
            let recorded = Dataset::open(&record_dir)?;
            agent
                .insert(&mut replay, &recorded.episodes)
                .with_context(|| format!("dataset {}", record_dir.display()))?;
        }
        Some(writer)
    } else {
        let collection = Collection {
            policy: format!("online {}", A::KIND),
            seed: job.seed,
            first_episode: 0,
            episodes: 0,
            requested: 0,
        };
        let act = &run.spec.action_space;
        Some(DatasetWriter::open(&record_dir, &online.env, &obs_space, act, collection, RECORD_SHARD_STEPS, false)?)
    };

    // Actors: the exploring policy as version `progress.version`, episode indices continuing the run's count.
    let first_policy = match &online.behaviour {
        Some(b) => {
            b.factory(&online.env, &run.spec.action_space).with_context(|| format!("`online.behaviour` = {b:?}"))?
        }
        None => agent.explore(progress.env_steps),
    };
    let evals = AgentEvals::new(&run);
    let intake = Intake { recorder, joiner: FragmentJoiner::default(), ..Default::default() };
    let failures_before = progress.actor_failures;
    let deterministic = online.deterministic;
    let remote = options.remote.clone();
    let slots = deterministic.then(|| SlotBook::new(&online, &progress));
    let mut learner = Learner {
        run,
        online,
        progress,
        failures_before,
        intake,
        evals,
        probe: None,
        update_seconds: 0.0,
        remote: remote.is_some(),
        payload: None,
        slots,
        save_due: false,
    };
    let mut agent = agent;
    let (outcome, pool_report) = if deterministic {
        if learner.remote {
            learner.payload = Some(learner.explorer_bytes(&agent)?);
        }
        let first = Published {
            policy: PolicySnapshot { version: learner.progress.version, factory: first_policy },
            payload: learner.payload.clone(),
        };
        // On-policy rounds act with the weights of the round just trained on; off-policy ones run a round ahead.
        let lag = if on_policy.is_some() { 0 } else { 1 };
        let book = learner.slots.as_ref().expect("deterministic runs keep slots");
        let (base, restore) = (book.base, book.restore());
        let mut actors = Lockstep::spawn(job.seed, &learner.online, first, base, restore, remote, lag)?;
        let outcome = learner.train_lockstep(&mut agent, &mut replay, &mut actors);
        (outcome, actors.close())
    } else {
        let actors = Actors::spawn(job.seed, &learner.online, first_policy, &learner.progress)?;
        let outcome = learner.train(&mut agent, &mut replay, &actors);
        // Stop the actors whatever happened; the inserter then drops its receiver, which unblocks any actor
        // waiting to send.
        (outcome, actors.close())
    };
    let (report, interrupted) = outcome?;
    learner.finish(&agent, report, interrupted, pool_report)
}

/// What an online run learns from: the data spec (from the seed dataset when there is one, else from the env: bytes
/// divided by 255, other observations unscaled), the seed dataset, and the env's observation space (for the
/// recording).
fn online_spec(job: &TrainJob, online: &OnlineConfig) -> anyhow::Result<(DataSpec, Option<Dataset>, Space)> {
    let env = frl_envs::make(&online.env).with_context(|| format!("`online.env` = {:?}", online.env))?;
    let obs_space = env.observation_space();
    if job.dataset.as_os_str().is_empty() {
        let obs_dim = env.observation_space().flat_dim();
        // Bytes (frames, Atari RAM) reach the networks in [0, 1]; other observations as they are.
        let scale = if obs_space.dtype() == frl_envs::BoxDtype::U8 { 255.0 } else { 1.0 };
        let spec = DataSpec {
            env: online.env.clone(),
            obs_dim,
            action_space: env.action_space(),
            obs_mean: vec![0.0; obs_dim],
            obs_std: vec![scale; obs_dim],
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
    config: &<A as Trainable>::Config,
    env: &str,
    rng: &mut dyn rand::RngCore,
    device: &Device,
) -> anyhow::Result<(A, DataSpec)> {
    let file = checkpoint_at(path)?;
    let ckpt = A::read_checkpoint(&file).with_context(|| format!("`online.init` = {}", path.display()))?;
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

/// The actor threads, the inserter and the link they share with the learner.
struct Actors {
    link: Arc<ChannelLink>,
    staged: Receiver<EpisodeBatch>,
    gate: Arc<Gate>,
    stop: Arc<AtomicBool>,
    pool: ActorPool,
    inserter: JoinHandle<()>,
    started: Instant,
}

impl Actors {
    /// Starts `online.actors` actors with `policy` as version `progress.version`, episode indices continuing the
    /// run's count, and the inserter thread.
    fn spawn(
        seed: u64,
        online: &OnlineConfig,
        policy: Arc<dyn PolicyFactory>,
        progress: &OnlineProgress,
    ) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        // Throttled, an actor hands each batch over directly (a rendezvous): it runs at most one batch ahead of the
        // one the inserter holds for the learner.
        let (link, rx) = ChannelLink::with_snapshot(
            if online.throttle { 0 } else { 2 * online.actors },
            PolicySnapshot { version: progress.version, factory: policy },
        );
        let pool_config = PoolConfig {
            actors: online.actors,
            seed: Seed::Actors.at(seed, 0),
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
        let pool = ActorPool::spawn(pool_config, make_env, link.clone(), stop.clone());
        let gate = Arc::new(Gate::default());
        let (staged_tx, staged) = crossbeam_channel::unbounded();
        let inserter = {
            let (gate, throttle) = (gate.clone(), online.throttle);
            std::thread::Builder::new()
                .name("frl-inserter".into())
                .spawn(move || stage(&rx, &staged_tx, &gate, throttle))
                .context("spawning the inserter thread")?
        };
        Ok(Self { link, staged, gate, stop, pool, inserter, started })
    }

    /// Stops the actors and the inserter; what the actors reported.
    fn close(self) -> PoolReport {
        self.stop.store(true, Ordering::SeqCst);
        self.gate.closing.store(true, Ordering::SeqCst);
        drop(self.staged);
        let _ = self.inserter.join();
        self.pool.join()
    }
}

/// The actors of a deterministic run (lockstep threads, or workers in other processes), the schedule they wait on,
/// their fragments in order.
struct Lockstep {
    /// The newest policy the learner broadcast (published to the schedule after each round).
    link: Arc<ChannelLink>,
    schedule: Arc<Schedule>,
    fragments: InOrder,
    stop: Arc<AtomicBool>,
    /// The threads (none when the actors live in other processes).
    actors: Option<LockstepActors>,
    started: Instant,
    /// Failed slot rounds in this invocation.
    failures: u64,
    /// The episode numbering: slot `j`'s episodes have indices `first_episode + n·envs + j`.
    first_episode: u64,
    envs: usize,
}

impl Lockstep {
    /// Starts `online.actors` threads over the run's env slots with `first`, episodes numbered from `first_episode`
    /// and the slots continuing as `restore` says, or, with `remote`, hands that plan to the actors in other
    /// processes.
    fn spawn(
        seed: u64,
        online: &OnlineConfig,
        first: Published,
        first_episode: u64,
        restore: Vec<SlotState>,
        remote: Option<Arc<RemoteActors>>,
        lag: u64,
    ) -> anyhow::Result<Self> {
        let (link, _) = ChannelLink::with_snapshot(1, first.policy.clone());
        let envs = online.envs.unwrap_or(online.actors);
        let config = LockstepConfig {
            actors: online.actors,
            envs,
            steps: online.fragment_steps.expect("set for deterministic runs"),
            seed: Seed::Actors.at(seed, 0),
            first_episode,
            lag,
            restore,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        if let Some(remote) = remote {
            let schedule = remote.schedule().clone();
            schedule.start(first);
            let (first_episode, envs) = (config.first_episode, config.envs);
            remote.set_plan(Ok(config));
            let fragments = InOrder::new(remote.fragments(), envs);
            return Ok(Lockstep {
                link,
                schedule,
                fragments,
                stop,
                actors: None,
                started,
                failures: 0,
                first_episode,
                envs,
            });
        }
        let schedule = Schedule::new(first);
        let first_episode = config.first_episode;
        let env_id = online.env.clone();
        let make_env: EnvFactory = Arc::new(move || frl_envs::make(&env_id));
        // Unbounded, yet bounded by the schedule: no actor runs more than two rounds ahead of the learner.
        let (tx, rx) = crossbeam_channel::unbounded();
        let actors = LockstepActors::spawn(config, make_env, schedule.clone(), tx, stop.clone())
            .context("spawning the actor threads")?;
        let fragments = InOrder::new(rx, envs);
        Ok(Lockstep {
            link,
            schedule,
            fragments,
            stop,
            actors: Some(actors),
            started,
            failures: 0,
            first_episode,
            envs,
        })
    }

    /// Stops the actors; what they reported.
    fn close(self) -> PoolReport {
        self.stop.store(true, Ordering::SeqCst);
        self.schedule.close();
        let error = self.actors.and_then(LockstepActors::join);
        PoolReport { failures: self.failures, error, ..Default::default() }
    }
}

/// What the learner does with the episodes that arrive: counts, records and statistics.
#[derive(Default)]
struct Intake {
    recorder: Option<DatasetWriter>,
    /// Fragments of episodes still running (`online.fragment_steps`).
    joiner: FragmentJoiner,
    /// Returns and lengths of the episodes and policy lags of the steps since the last log.
    returns: Vec<f64>,
    lengths: Vec<f64>,
    /// Sum and count of the steps' policy lags.
    lags: (f64, u64),
    /// Returns of the newest 20 episodes.
    recent: Vec<f64>,
    lag_sum: f64,
    lag_n: u64,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

impl Intake {
    /// The `online/*` episode scalars of the window that ends now.
    fn take_window(&mut self) -> Vec<(String, f64)> {
        if self.returns.is_empty() {
            return Vec::new();
        }
        self.lag_sum += self.lags.0;
        self.lag_n += self.lags.1;
        let values = vec![
            ("online/episode_return".into(), mean(&self.returns)),
            ("online/episode_length".into(), mean(&self.lengths)),
            ("online/policy_lag".into(), self.lags.0 / self.lags.1.max(1) as f64),
        ];
        self.returns.clear();
        self.lengths.clear();
        self.lags = (0.0, 0);
        values
    }
}

/// The learner's side of the live loop: the run, where it stands, the episodes' intake, evaluations.
struct Learner<A: OnlineAgent> {
    run: Run<DataSpec>,
    online: OnlineConfig,
    progress: OnlineProgress,
    /// Actor failures counted before this invocation.
    failures_before: u64,
    intake: Intake,
    evals: AgentEvals,
    probe: Option<A::Batch>,
    update_seconds: f64,
    /// The actors live in other processes: each broadcast also goes out as checkpoint bytes.
    remote: bool,
    /// The checkpoint bytes of the newest broadcast (remote actors).
    payload: Option<Arc<Vec<u8>>>,
    /// Deterministic runs: where each env slot stands.
    slots: Option<SlotBook>,
    /// On-policy runs save at round ends: a checkpoint fell due during the round's updates.
    save_due: bool,
}

/// Where the env slots of a deterministic run stand, as the learner has received their fragments: what a checkpoint
/// saves so that a resumed run continues each slot's episode and numbering.
struct SlotBook {
    /// Slot `j`'s `n`-th episode is episode `base + n·envs + j`.
    base: u64,
    envs: usize,
    /// Episodes each slot began (as far as their fragments tell).
    begun: Vec<u64>,
    /// Episodes in flight at the checkpoint this run resumed from, until their slot's first fragment continues them.
    pending: Vec<Option<InFlight>>,
}

impl SlotBook {
    /// The slots as `progress` left them: continued where it saved them, else (a fresh run, or a checkpoint from
    /// before slots were saved or with another number of slots) numbered after every episode received.
    fn new(online: &OnlineConfig, progress: &OnlineProgress) -> Self {
        let envs = online.envs.unwrap_or(online.actors).max(1);
        match progress.episode_base {
            Some(base)
                if progress.slots.len() == envs && progress.slots.iter().enumerate().all(|(j, s)| s.slot == j) =>
            {
                SlotBook {
                    base,
                    envs,
                    begun: progress.slots.iter().map(|s| s.begun).collect(),
                    pending: progress.slots.iter().map(|s| s.in_flight.clone()).collect(),
                }
            }
            _ => SlotBook {
                base: progress.next_episode.max(progress.episodes),
                envs,
                begun: vec![0; envs],
                pending: vec![None; envs],
            },
        }
    }

    /// What the actors continue from.
    fn restore(&self) -> Vec<SlotState> {
        (0..self.envs)
            .map(|slot| SlotState { slot, begun: self.begun[slot], in_flight: self.pending[slot].clone() })
            .collect()
    }

    /// The slot episode `index` belongs to, and which of its episodes it is.
    fn place(&self, index: u64) -> Option<(usize, u64)> {
        let k = index.checked_sub(self.base)?;
        Some(((k % self.envs as u64) as usize, k / self.envs as u64))
    }

    /// The slots' state for a checkpoint: the episodes `joiner` holds open are in flight.
    fn save(&self, joiner: &FragmentJoiner) -> Vec<SlotState> {
        let mut slots = self.restore();
        for (index, ep) in joiner.open_episodes() {
            if let Some((j, _)) = self.place(index) {
                slots[j].in_flight = Some(InFlight::of(&ep));
            }
        }
        slots
    }
}

impl<A: OnlineAgent> Learner<A> {
    /// A deterministic slot's fragment as the learner takes it in: on the slot's first round after a resume, the
    /// steps its actor replayed to continue an episode in flight are taken out (they were counted and learned from
    /// before the stop) and reopen that episode; episodes begun are counted.
    fn continued(&mut self, agent: &A, slot: usize, batch: EpisodeBatch) -> EpisodeBatch {
        let Some(book) = self.slots.as_mut() else { return batch };
        let mut batch = batch;
        if let Some(saved) = book.pending.get_mut(slot).and_then(Option::take) {
            let first = (batch.episodes() > 0).then(|| batch.episode(0));
            match first {
                Some(ep) if ep.tag.index == saved.index && ep.len() == saved.steps && !ep.ended() => {
                    let mut prefix = EpisodeBatch::new(batch.obs_dim, batch.act_dim);
                    prefix.push(&ep);
                    agent.resume_episode(&prefix.episode(0));
                    self.intake.joiner.join(&prefix);
                    let mut rest = EpisodeBatch::new(batch.obs_dim, batch.act_dim);
                    batch.iter().skip(1).for_each(|ep| rest.push(&ep));
                    batch = rest;
                }
                _ => {
                    eprintln!(
                        "warning: env slot {slot} could not continue episode {} ({} steps) where the run stopped \
                         (the env did not repeat it from its seed and actions); it is given up",
                        saved.index, saved.steps
                    );
                    self.progress.lost_steps += saved.steps as u64;
                }
            }
        }
        for ep in batch.iter() {
            if let Some((j, n)) = book.place(ep.tag.index)
                && j == slot
            {
                book.begun[j] = book.begun[j].max(n + 1);
            }
        }
        batch
    }

    /// Takes one batch of episodes (or fragments): counts, records and inserts them.
    fn receive(&mut self, agent: &A, replay: &mut A::Data, batch: EpisodeBatch) -> anyhow::Result<()> {
        self.progress.env_steps += batch.steps() as u64;
        let fragments = self.online.fragment_steps.is_some();
        let early = fragments && agent.takes_fragments();
        if early {
            agent.insert(replay, &batch)?;
        }
        // Lag per step of experience as it arrives (fragments before they are joined): a Markov policy's episode
        // spans several versions.
        let version = self.progress.version;
        for ep in batch.iter() {
            self.progress.next_episode = self.progress.next_episode.max(ep.tag.index + 1);
            for t in 0..ep.len() {
                self.intake.lags.0 += version.saturating_sub(ep.version(t)) as f64;
                self.intake.lags.1 += 1;
            }
        }
        let batch = if fragments { self.intake.joiner.join(&batch) } else { batch };
        let intake = &mut self.intake;
        for ep in batch.iter() {
            self.progress.episodes += 1;
            let ret = ep.episode_return();
            intake.returns.push(ret);
            intake.lengths.push(ep.len() as f64);
            intake.recent.push(ret);
            if let Some(rec) = intake.recorder.as_mut() {
                rec.write(&ep)?;
            }
        }
        if intake.recent.len() > 20 {
            intake.recent.drain(..intake.recent.len() - 20);
        }
        if early { Ok(()) } else { agent.insert(replay, &batch) }
    }

    /// A checkpoint; the recorded episodes reach the disk first, so a checkpoint never counts episodes the dataset
    /// lacks.
    fn save(&mut self, agent: &A) -> anyhow::Result<()> {
        if let Some(rec) = self.intake.recorder.as_mut() {
            rec.flush()?;
        }
        if let Some(book) = &self.slots {
            self.progress.episode_base = Some(book.base);
            self.progress.slots = book.save(&self.intake.joiner);
        }
        self.run.progress = Some(self.progress.clone());
        self.run.save(agent)
    }

    /// One update, then the broadcast (every `broadcast_every` updates, unless the caller broadcasts itself), plots
    /// and checkpoint it makes due.
    fn update(&mut self, agent: &mut A, replay: &A::Data, link: &ChannelLink) -> anyhow::Result<()> {
        self.update_then(agent, replay, link, agent.on_policy().is_none())
    }

    /// [`Learner::update`], broadcasting when `broadcasts` and `broadcast_every` says so.
    fn update_then(
        &mut self,
        agent: &mut A,
        replay: &A::Data,
        link: &ChannelLink,
        broadcasts: bool,
    ) -> anyhow::Result<()> {
        let u0 = Instant::now();
        // On-policy agents sample their round pass by pass: a probe batch would take a minibatch out of order.
        if self.probe.is_none() && agent.on_policy().is_none() {
            self.probe = Some(self.run.probe(agent, replay));
        }
        self.run.train_step(agent, replay)?;
        let step = self.run.step;
        self.progress.updates = step;
        self.update_seconds += u0.elapsed().as_secs_f64();
        if broadcasts && step.is_multiple_of(self.online.broadcast_every) && self.online.behaviour.is_none() {
            self.broadcast(agent, link)?;
        }
        if step.is_multiple_of(self.run.job.train.plot_every)
            && let Some(probe) = &self.probe
        {
            self.run.log_probe(agent, probe, self.progress.env_steps)?;
        }
        if step.is_multiple_of(self.run.job.train.checkpoint_every) {
            if agent.on_policy().is_some() {
                // Saved once the round is trained on, so that a resumed run starts at a round's beginning.
                self.save_due = true;
            } else {
                self.save(agent)?;
            }
        }
        Ok(())
    }

    /// Publishes the agent's exploring policy as the next version (and its checkpoint bytes for remote actors).
    fn broadcast(&mut self, agent: &A, link: &ChannelLink) -> anyhow::Result<()> {
        self.progress.version = link.broadcast(agent.explore(self.progress.env_steps));
        if self.remote {
            self.payload = Some(self.explorer_bytes(agent)?);
        }
        Ok(())
    }

    /// The exploring policy as actors in other processes rebuild it: a checkpoint (no optimiser moments) whose
    /// progress holds the env steps `explore` was called with.
    fn explorer_bytes(&self, agent: &A) -> anyhow::Result<Arc<Vec<u8>>> {
        let mut meta = self.run.meta();
        meta.online = Some(OnlineProgress { slots: Vec::new(), ..self.progress.clone() });
        Ok(Arc::new(checkpoint::encode(&meta, &agent.params(), &[])?))
    }

    /// Logs the `train/*` and `online/*` scalars of the window since `last` (time, env steps, updates) at the
    /// current env step.
    fn log(&mut self, agent: &A, replay: &A::Data, last: (Instant, u64, u64), bar: &ProgressBar) -> anyhow::Result<()> {
        let (at, env_at, upd_at) = last;
        let secs = at.elapsed().as_secs_f64().max(1e-9);
        let (env_steps, updates) = (self.progress.env_steps, self.progress.updates);
        let mut values = self.run.take_window();
        values.extend(self.intake.take_window());
        values.push(("online/env_steps_per_sec".into(), (env_steps - env_at) as f64 / secs));
        values.push(("online/updates_per_sec".into(), (updates - upd_at) as f64 / secs));
        values.push(("online/updates".into(), updates as f64));
        values.push(("online/replay_size".into(), A::stored(replay) as f64));
        values.push(("online/policy_version".into(), self.progress.version as f64));
        values.push(("online/actor_failures".into(), self.progress.actor_failures as f64));
        for (k, v) in agent.exploration_scalars(env_steps) {
            values.push((format!("online/{k}"), v));
        }
        self.run.log(env_steps, &values)?;
        let (ret, loss) = (mean(&self.intake.recent), self.run.last_loss);
        bar.set_message(format!(
            "{updates} updates, return {ret:.1}, loss {loss:.4}{}",
            eval_msg(&self.evals.evals.last)
        ));
        bar.set_position(env_steps.min(self.online.env_steps));
        Ok(())
    }

    /// Takes what the inserter staged, without waiting (`wait`: up to 20 ms for one batch, when there is nothing
    /// else to do). Taking stops at the budget: free-running actors can stage episodes faster than they are
    /// recorded and inserted, and what arrives beyond it is dropped with the queue, so memory stays bounded.
    fn take(&mut self, agent: &A, replay: &mut A::Data, actors: &Actors, wait: bool) -> anyhow::Result<()> {
        self.progress.actor_failures = self.failures_before + actors.pool.failures();
        if wait {
            // Nothing to do until more episodes arrive (throttled, the inserter stages one batch now).
            actors.gate.want();
            return match actors.staged.recv_timeout(Duration::from_millis(20)) {
                Ok(batch) => self.receive(agent, replay, batch),
                Err(RecvTimeoutError::Timeout) => Ok(()),
                Err(RecvTimeoutError::Disconnected) => bail!("the actors stopped unexpectedly"),
            };
        }
        while self.progress.env_steps < self.online.env_steps {
            match actors.staged.try_recv() {
                Ok(batch) => self.receive(agent, replay, batch)?,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => bail!("the actors stopped unexpectedly"),
            }
        }
        Ok(())
    }

    /// The live loop until the budget or Ctrl-C: returns the agent, the run's measurements and whether it was
    /// interrupted.
    fn train(&mut self, agent: &mut A, replay: &mut A::Data, actors: &Actors) -> anyhow::Result<(OnlineReport, bool)> {
        let mut marks = Marks::new(self);
        let interrupted = loop {
            if let Some(interrupted) = self.done() {
                break interrupted;
            }
            self.take(agent, replay, actors, false)?;
            if self.update_due(replay) {
                self.update(agent, replay, &actors.link)?;
            } else {
                self.take(agent, replay, actors, true)?;
            }
            self.between(agent, replay, &mut marks, false)?;
        };
        self.end(agent, marks, actors.started, interrupted)
    }

    /// Whether the loop ends: `Some(true)` on Ctrl-C, `Some(false)` at the budget.
    fn done(&self) -> Option<bool> {
        if self.run.stopping() {
            Some(true)
        } else if self.progress.env_steps >= self.online.env_steps {
            Some(false)
        } else {
            None
        }
    }

    /// The deterministic loop: the actors' fragments in (round, slot) order, after each the updates it makes due,
    /// after each round the newest policy published for the round after next; evaluations wait for the one before.
    fn train_lockstep(
        &mut self,
        agent: &mut A,
        replay: &mut A::Data,
        actors: &mut Lockstep,
    ) -> anyhow::Result<(OnlineReport, bool)> {
        let mut marks = Marks::new(self);
        let on_policy = agent.on_policy().is_some();
        let interrupted = loop {
            // On-policy runs stop between rounds only: a round is trained on whole, or not at all.
            if (!on_policy || actors.fragments.at_round_start())
                && let Some(interrupted) = self.done()
            {
                break interrupted;
            }
            let fragment = match actors.fragments.next(Duration::from_millis(20)) {
                Ok(Some(f)) => f,
                Ok(None) => continue,
                Err(_) => bail!("the actors stopped unexpectedly"),
            };
            if let Some(message) = &fragment.failure {
                // The slot's episode in flight is given up: its fragments so far will never be joined.
                let (first, envs, slot) = (actors.first_episode, actors.envs as u64, fragment.slot as u64);
                let lost = self.intake.joiner.abandon(|i| i >= first && (i - first) % envs == slot);
                self.progress.lost_steps += lost as u64;
                actors.failures += 1;
                self.progress.actor_failures = self.failures_before + actors.failures;
                if actors.failures > self.online.max_failures {
                    bail!(
                        "{} actor failures (more than online.max_failures = {}); last: {message}",
                        actors.failures,
                        self.online.max_failures
                    );
                }
            }
            let ends_round = actors.fragments.ends_round(&fragment);
            let batch = self.continued(agent, fragment.slot, fragment.batch);
            if !batch.is_empty() {
                self.receive(agent, replay, batch)?;
            }
            match agent.on_policy() {
                None => {
                    while self.update_due(replay) {
                        self.update(agent, replay, &actors.link)?;
                        self.between(agent, replay, &mut marks, true)?;
                    }
                }
                // On-policy: the round's updates once it is complete, then its weights for the next round.
                Some(p) if ends_round => {
                    for _ in 0..p.updates {
                        self.update_then(agent, replay, &actors.link, false)?;
                        self.between(agent, replay, &mut marks, true)?;
                    }
                    // The probe rows come from the first round, once it has been trained on (the next round
                    // replaces the store, so taking them cannot disturb the minibatch order).
                    if self.probe.is_none() {
                        self.probe = Some(self.run.probe(agent, replay));
                    }
                    self.broadcast(agent, &actors.link)?;
                    if std::mem::take(&mut self.save_due) {
                        self.save(agent)?;
                    }
                }
                Some(_) => {}
            }
            if ends_round {
                actors.schedule.publish(Published { policy: actors.link.current(), payload: self.payload.clone() });
            }
            self.between(agent, replay, &mut marks, true)?;
        };
        self.end(agent, marks, actors.started, interrupted)
    }

    /// Whether an update is due and the replay holds a batch.
    fn update_due(&self, replay: &A::Data) -> bool {
        let due = self.online.updates_due(self.progress.env_steps);
        let batch = self.run.job.train.batch_size.min(self.online.replay_capacity);
        self.progress.updates < due && A::stored(replay) >= batch
    }

    /// Between updates: the log when one is due (every `log_every` updates, or every 5000 env steps while no update
    /// is), finished evaluations logged, the next evaluation started when due (`wait`: after the one in flight, so
    /// that every due evaluation runs, as a deterministic run needs; else skipped while one is in flight).
    fn between(&mut self, agent: &A, replay: &A::Data, marks: &mut Marks, wait: bool) -> anyhow::Result<()> {
        let (_, env_at, upd_at) = marks.last_log;
        let updates = self.progress.updates;
        if updates >= upd_at + self.run.job.train.log_every
            || (updates == upd_at && self.progress.env_steps >= env_at + 5000)
        {
            self.log(agent, replay, marks.last_log, &marks.bar)?;
            marks.last_log = (Instant::now(), self.progress.env_steps, updates);
        }
        self.evals.evals.poll(self.run.tb())?;
        if self.progress.env_steps >= marks.next_eval {
            if wait && self.evals.evals.busy() {
                self.evals.evals.finish(self.run.tb(), false)?;
            }
            if !self.evals.evals.busy() {
                self.run.progress = Some(self.progress.clone());
                self.evals.start(&self.run, agent, self.progress.env_steps);
                while marks.next_eval <= self.progress.env_steps {
                    marks.next_eval += marks.every;
                }
            }
        }
        Ok(())
    }

    /// The loop's end: the checkpoint, the last windows closed, the run's measurements since `started`.
    fn end(
        &mut self,
        agent: &A,
        marks: Marks,
        started: Instant,
        interrupted: bool,
    ) -> anyhow::Result<(OnlineReport, bool)> {
        let seconds = started.elapsed().as_secs_f64();
        // A recording without a checkpoint could not be resumed: an interrupted run that never saved one (stopped
        // before its first checkpoint) saves one now.
        let recording_only =
            self.intake.recorder.is_some() && crate::checkpoint::list(self.run.checkpoints()).is_empty();
        if self.run.unsaved() || !interrupted || recording_only {
            self.save(agent)?;
        }
        self.run.take_window();
        self.intake.take_window();
        marks.bar.finish_and_clear();
        let (p, start) = (&self.progress, &marks.start);
        let report = OnlineReport {
            env_steps: p.env_steps,
            episodes: p.episodes,
            env_steps_per_sec: (p.env_steps - start.env_steps) as f64 / seconds.max(1e-9),
            updates_per_sec: (p.updates - start.updates) as f64 / seconds.max(1e-9),
            mean_policy_lag: self.intake.lag_sum / self.intake.lag_n.max(1) as f64,
            recent_return: mean(&self.intake.recent),
            seconds,
            actor_failures: 0,
            lost_steps: self.progress.lost_steps,
            deterministic: self.online.deterministic,
        };
        Ok((report, interrupted))
    }

    /// After the actors stopped: their error if they failed before the budget, the recording closed, the final
    /// evaluation, the summary.
    fn finish(
        mut self,
        agent: &A,
        mut report: OnlineReport,
        interrupted: bool,
        pool: PoolReport,
    ) -> anyhow::Result<TrainSummary> {
        report.actor_failures = pool.failures;
        self.progress.actor_failures = self.failures_before + pool.failures;
        if let Some(e) = pool.error.filter(|_| !interrupted && self.progress.env_steps < self.online.env_steps) {
            bail!("the actors stopped: {e}");
        }
        if let Some(rec) = self.intake.recorder.take() {
            rec.finish()?;
        }
        // The final evaluation, after the last update, with the actors stopped.
        self.run.progress = Some(self.progress.clone());
        let eval = self.evals.conclude(&mut self.run, agent, self.progress.env_steps, interrupted)?;
        let smoothness = probe_smoothness(agent, self.probe.as_ref())?;
        let (seconds, step_seconds) = (report.seconds, self.update_seconds);
        let end = RunEnd {
            interrupted,
            smoothness,
            eval,
            seconds,
            step_seconds,
            steady_ms_per_step: None,
            online: Some(report),
        };
        self.run.finish(end)
    }
}

/// Where the loop stands in its logging and evaluations.
struct Marks {
    /// Progress when this invocation started.
    start: OnlineProgress,
    /// (time, env steps, updates) of the last log.
    last_log: (Instant, u64, u64),
    /// `eval.every`, and the env step of the next evaluation.
    every: u64,
    next_eval: u64,
    bar: ProgressBar,
}

impl Marks {
    fn new<A: OnlineAgent>(learner: &Learner<A>) -> Self {
        let start = learner.progress.clone();
        let bar = learner.run.progress_bar(learner.online.env_steps, start.env_steps, " env steps");
        let every = learner.run.job.eval.every;
        // Evaluations fall at multiples of `eval.every`, resumed or not.
        let next_eval = start.env_steps.checked_div(every).map_or(u64::MAX, |n| (n + 1) * every);
        Marks { last_log: (Instant::now(), start.env_steps, start.updates), start, every, next_eval, bar }
    }
}

/// Env steps per update at `updates_per_step` (at least 1).
fn steps_per_update(updates_per_step: f64) -> usize {
    if updates_per_step > 0.0 { (1.0 / updates_per_step).ceil().clamp(1.0, 1e6) as usize } else { 1024 }
}

/// Between the inserter thread and the learner: whether the learner wants another batch (throttled runs; one
/// pending request at most), and whether the run is closing.
struct Gate {
    hungry: (crossbeam_channel::Sender<()>, Receiver<()>),
    closing: AtomicBool,
}

impl Default for Gate {
    fn default() -> Self {
        Self { hungry: crossbeam_channel::bounded(1), closing: AtomicBool::new(false) }
    }
}

impl Gate {
    /// The learner wants another batch (a request already pending stands for this one).
    fn want(&self) {
        let _ = self.hungry.0.try_send(());
    }

    /// Waits until the learner wants a batch; false once the run is closing.
    fn wait_until_wanted(&self) -> bool {
        loop {
            match self.hungry.1.recv_timeout(Duration::from_millis(20)) {
                Ok(()) => return true,
                Err(_) if self.closing.load(Ordering::Acquire) => return false,
                Err(_) => {}
            }
        }
    }
}

/// The inserter thread: takes the actors' batches off their bounded channel as soon as they arrive and stages them
/// for the learner (an unbounded queue the learner drains between updates), so free-running actors never wait for
/// an update to finish. Throttled, it passes one batch each time the learner has caught up, and the actors block on
/// the channel meanwhile.
fn stage(rx: &Receiver<EpisodeBatch>, staged: &crossbeam_channel::Sender<EpisodeBatch>, gate: &Gate, throttle: bool) {
    loop {
        let batch = match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(batch) => batch,
            Err(RecvTimeoutError::Timeout) if gate.closing.load(Ordering::Acquire) => return,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if throttle && !gate.wait_until_wanted() {
            return;
        }
        if staged.send(batch).is_err() {
            return;
        }
    }
}
