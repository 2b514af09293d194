//! Collection across processes and machines (the Ray launcher in `python/`): a [`RolloutWorker`] collects chunks of
//! episodes with its own actor pool and hands them back as columns; a [`RemoteCollection`] writes chunks arriving in
//! any order into the same dataset format as `frl collect`, in episode order. For online training, an
//! [`OnlineWorker`] steps some env slots of a deterministic run, round by round, with the learner's exploring policy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use frl_envs::{Action, BehaviourSpec, Env, EnvError, Info, PolicyFactory, Step, Transition};
use frl_envs::{BoxDtype, Space};

use frl_dataset::dataset::{DatasetWriter, Metadata};
use frl_dataset::episodes::{EpisodeBatch, EpisodeTag};
use frl_rollout::collect::{CollectJob, open_dataset};
use std::time::Duration;

use frl_learner::{TrainOptions, TrainSummary};
use frl_rollout::{
    ActorPool, ChannelLink, EnvFactory, Fragment, LockstepConfig, PolicySnapshot, PoolConfig, RemoteActors, Slots,
};

/// Collects episodes `first..first + count` of a (env, policy, seed) job on local actor threads.
pub struct RolloutWorker {
    env_id: String,
    seed: u64,
    actors: usize,
    action_space: Space,
    u8_observations: bool,
    snapshot: PolicySnapshot,
    stash: Stash,
}

/// Envs kept between chunks: building a Python env (an Atari ROM, a MuJoCo model) takes about 0.2 s, and a chunk may
/// be a single episode. Every episode resets with its own seed, so which env runs it does not change the data.
type Stash = Arc<Mutex<Vec<Box<dyn Env>>>>;

/// An env on loan from the stash; it goes back when its actor is done with it, unless it failed.
struct Stashed {
    env: Option<Box<dyn Env>>,
    healthy: bool,
    stash: Stash,
}

impl Stashed {
    fn env(&mut self) -> &mut Box<dyn Env> {
        self.env.as_mut().expect("a stashed env is present until dropped")
    }

    fn check<T>(&mut self, result: Result<T, EnvError>) -> Result<T, EnvError> {
        self.healthy &= result.is_ok();
        result
    }
}

impl Env for Stashed {
    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info), EnvError> {
        let r = self.env().reset(seed);
        self.check(r)
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        let r = self.env().step(action);
        self.check(r)
    }

    fn step_into(&mut self, action: &Action, obs: &mut Vec<f32>) -> Result<Transition, EnvError> {
        let r = self.env().step_into(action, obs);
        self.check(r)
    }

    fn observation_space(&self) -> Space {
        self.env.as_ref().expect("present").observation_space()
    }

    fn action_space(&self) -> Space {
        self.env.as_ref().expect("present").action_space()
    }

    fn id(&self) -> &'static str {
        self.env.as_ref().expect("present").id()
    }
}

impl Drop for Stashed {
    fn drop(&mut self) {
        if let Some(env) = self.env.take().filter(|_| self.healthy) {
            self.stash.lock().unwrap_or_else(|p| p.into_inner()).push(env);
        }
    }
}

impl RolloutWorker {
    /// A worker for `env_id` running the behaviour policy `policy` (`random`, `expert:0.3`, `mixed`, ...).
    pub fn new(env_id: &str, policy: &str, seed: u64, actors: usize) -> anyhow::Result<Self> {
        let env = frl_envs::make(env_id)?;
        let action_space = env.action_space();
        let u8_observations = matches!(env.observation_space(), Space::Box { dtype: BoxDtype::U8, .. });
        let mut worker = RolloutWorker {
            env_id: env_id.to_string(),
            seed,
            actors: actors.max(1),
            action_space,
            u8_observations,
            snapshot: PolicySnapshot { version: 0, factory: Arc::new(NoPolicy) },
            stash: Arc::new(Mutex::new(vec![env])),
        };
        worker.set_behaviour(policy, 0)?;
        Ok(worker)
    }

    /// Switches to a behaviour policy; later episodes record `version`.
    pub fn set_behaviour(&mut self, policy: &str, version: u64) -> anyhow::Result<()> {
        let spec: BehaviourSpec = policy.parse().map_err(|e| anyhow::anyhow!("policy `{policy}`: {e}"))?;
        let factory = spec.factory(&self.env_id, &self.action_space)?;
        self.snapshot = PolicySnapshot { version, factory };
        Ok(())
    }

    /// Switches to the agent in a checkpoint file's bytes (any kind; a return-conditioned agent is conditioned on
    /// `target_return`, else the job's; refused for other agents); later episodes record `version`.
    pub fn set_checkpoint(&mut self, bytes: &[u8], version: u64, target_return: Option<f32>) -> anyhow::Result<()> {
        let dir = tempfile_dir()?;
        let path = dir.join("weights.safetensors");
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        let overrides = frl_agents::ActingOverrides { target_return, ..Default::default() };
        let loaded = frl_agents::load_policy(&path, &burn::tensor::Device::flex(), &overrides);
        let _ = std::fs::remove_dir_all(&dir);
        let loaded = loaded?;
        if loaded.meta.data.env != self.env_id {
            bail!("the checkpoint was trained on {}, this worker runs {}", loaded.meta.data.env, self.env_id);
        }
        self.snapshot = PolicySnapshot { version, factory: loaded.factory };
        Ok(())
    }

    /// The policy's description and version.
    pub fn policy(&self) -> (String, u64) {
        (self.snapshot.factory.describe(), self.snapshot.version)
    }

    /// Whether the env's observations are u8 (image frames): their columns then cross processes as u8.
    pub fn u8_observations(&self) -> bool {
        self.u8_observations
    }

    /// Collects episodes `first..first + count`, in index order; each is reproducible from `(seed, index)`.
    pub fn episodes(&self, first: u64, count: u64) -> anyhow::Result<EpisodeBatch> {
        let config = PoolConfig {
            actors: self.actors,
            seed: self.seed,
            first_episode: first,
            episodes: Some(count),
            ..PoolConfig::default()
        };
        let (link, rx) = ChannelLink::with_snapshot(2 * self.actors, self.snapshot.clone());
        let (id, stash) = (self.env_id.clone(), self.stash.clone());
        let make_env: EnvFactory = Arc::new(move || {
            let kept = stash.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let env = match kept {
                Some(env) => env,
                None => frl_envs::make(&id)?,
            };
            Ok(Box::new(Stashed { env: Some(env), healthy: true, stash: stash.clone() }) as Box<dyn Env>)
        });
        let pool = ActorPool::spawn(config, make_env, link, Arc::new(AtomicBool::new(false)));
        let mut by_index = BTreeMap::new();
        let (mut obs_dim, mut act_dim) = (0, 0);
        for batch in rx.iter() {
            (obs_dim, act_dim) = (batch.obs_dim, batch.act_dim);
            for ep in batch.iter() {
                let mut one = EpisodeBatch::new(batch.obs_dim, batch.act_dim);
                one.push(&ep);
                by_index.insert(ep.tag.index, one);
            }
        }
        let report = pool.join();
        if by_index.len() as u64 != count {
            bail!(
                "collected {} of {count} episodes: {}",
                by_index.len(),
                report.error.unwrap_or_else(|| "the actors stopped".into())
            );
        }
        let mut out = EpisodeBatch::new(obs_dim, act_dim);
        for one in by_index.values() {
            out.extend(one);
        }
        Ok(out)
    }
}

/// Some env slots of a deterministic online run in another process (a Ray actor): each round, `steps` env steps per
/// slot with the exploring policy of the checkpoint bytes the learner published for it.
pub struct OnlineWorker {
    env_id: String,
    slots: Slots,
    policy: Option<PolicySnapshot>,
    u8_observations: bool,
    stop: AtomicBool,
}

impl OnlineWorker {
    /// The slots `slots` of a run planned by `plan` in env `env_id`.
    pub fn new(env_id: &str, plan: LockstepConfig, slots: &[usize]) -> anyhow::Result<Self> {
        let env = frl_envs::make(env_id).with_context(|| format!("env {env_id:?}"))?;
        let u8_observations = matches!(env.observation_space(), Space::Box { dtype: BoxDtype::U8, .. });
        drop(env);
        if let Some(&bad) = slots.iter().find(|&&j| j >= plan.envs) {
            bail!("env slot {bad}: the run has {} slots", plan.envs);
        }
        let id = env_id.to_string();
        let make_env: EnvFactory = Arc::new(move || frl_envs::make(&id));
        let slots = Slots::new(plan, make_env, slots);
        Ok(OnlineWorker { env_id: env_id.into(), slots, policy: None, u8_observations, stop: AtomicBool::new(false) })
    }

    /// Switches to the exploring policy of an online agent's checkpoint bytes, as version `version`.
    pub fn set_policy(&mut self, bytes: &[u8], version: u64) -> anyhow::Result<()> {
        let dir = tempfile_dir()?;
        let path = dir.join("policy.safetensors");
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        let loaded = frl_agents::load_explorer(&path, &burn::tensor::Device::flex());
        let _ = std::fs::remove_dir_all(&dir);
        let (meta, factory) = loaded?;
        if meta.data.env != self.env_id {
            bail!("the checkpoint was trained on {}, this worker runs {}", meta.data.env, self.env_id);
        }
        self.policy = Some(PolicySnapshot { version, factory });
        Ok(())
    }

    /// The version of the current policy.
    pub fn version(&self) -> Option<u64> {
        self.policy.as_ref().map(|p| p.version)
    }

    /// Whether the env's observations are u8 (image frames).
    pub fn u8_observations(&self) -> bool {
        self.u8_observations
    }

    /// Round `round` of this worker's slots, in slot order (a failed slot's fragment names its error).
    pub fn round(&mut self, round: u64) -> anyhow::Result<Vec<Fragment>> {
        let Some(policy) = &self.policy else { bail!("no policy set before round {round}") };
        self.slots.round(round, policy, &self.stop).context("the worker was stopped")
    }
}

/// An online run whose actors live in other processes: the learner (`fit_online`, deterministic schedule) trains on
/// its own thread here, and the caller carries policies out to the actors and their fragments back.
pub struct RemoteLearner {
    env_id: String,
    remote: Arc<RemoteActors>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<TrainSummary>>>,
}

impl RemoteLearner {
    /// Starts training the online job in `job` (its `online.actors` replaced by `actors` when given).
    pub fn start(job: &Path, actors: Option<usize>, resume: bool, quiet: bool) -> anyhow::Result<Self> {
        let mut job = frl_agents::load_job(job)?;
        let Some(online) = job.online.as_mut() else { bail!("the job has no [online] section") };
        if let Some(n) = actors {
            online.actors = n;
        }
        let env_id = online.env.clone();
        frl_agents::validate(&job)?;
        let remote = RemoteActors::new();
        let stop = Arc::new(AtomicBool::new(false));
        let options = TrainOptions { resume, quiet, remote: Some(remote.clone()), ..Default::default() };
        let thread = {
            let (remote, stop) = (remote.clone(), stop.clone());
            std::thread::Builder::new().name("frl-learner".into()).spawn(move || {
                let result = frl_agents::train(&job, &options, stop);
                if let Err(e) = &result {
                    remote.set_plan(Err(format!("{e:#}")));
                }
                remote.schedule().close();
                result
            })?
        };
        Ok(RemoteLearner { env_id, remote, stop, thread: Some(thread) })
    }

    /// The env id the actors run.
    pub fn env_id(&self) -> &str {
        &self.env_id
    }

    /// The actors' plan once the learner has it (`None` on timeout); an error when the run failed to start.
    pub fn plan(&self, timeout: Duration) -> anyhow::Result<Option<LockstepConfig>> {
        match self.remote.plan(timeout) {
            Some(Ok(plan)) => Ok(Some(plan)),
            Some(Err(e)) => Err(anyhow::anyhow!(e)),
            None => Ok(None),
        }
    }

    /// The policy (version, checkpoint bytes) round `round` acts with once it may start (`Ok(None)` on timeout);
    /// an error once the run has ended.
    pub fn policy_for(&self, round: u64, lag: u64, timeout: Duration) -> anyhow::Result<Option<(u64, Arc<Vec<u8>>)>> {
        match self.remote.schedule().wait_for(round, lag, timeout) {
            Ok(Some(p)) => {
                let bytes = p.payload.context("the learner published a policy without its checkpoint bytes")?;
                Ok(Some((p.policy.version, bytes)))
            }
            Ok(None) => Ok(None),
            Err(()) => bail!("the run has ended"),
        }
    }

    /// Hands a slot's fragment of a round to the learner (a failure: the slot lost its episode in flight).
    pub fn push(&self, round: u64, slot: usize, batch: EpisodeBatch, failure: Option<String>) {
        self.remote.push(Fragment { round, slot, batch, failure });
    }

    /// Whether the learner has finished (budget, error or stop).
    pub fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Asks the learner to stop as Ctrl-C does (it saves a checkpoint).
    pub fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Waits for the learner; its summary.
    pub fn join(&mut self) -> anyhow::Result<TrainSummary> {
        let Some(thread) = self.thread.take() else { bail!("the learner was already joined") };
        thread.join().map_err(|_| anyhow::anyhow!("the learner thread panicked"))?
    }
}

/// A placeholder until the first policy is set.
struct NoPolicy;

impl PolicyFactory for NoPolicy {
    fn make(&self) -> Box<dyn frl_envs::Policy> {
        unreachable!("RolloutWorker::new sets a policy before any episode")
    }

    fn describe(&self) -> String {
        "none".into()
    }
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("frl-worker-{}-{}", std::process::id(), rand::random::<u64>()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The dataset side of a multi-process collection: chunks of episodes arrive in any order (and may arrive twice,
/// when a chunk was re-collected after a worker died); they are written in index order, each index once.
pub struct RemoteCollection {
    writer: Option<DatasetWriter>,
    pending: BTreeMap<u64, EpisodeBatch>,
    next: u64,
    end: u64,
    out: PathBuf,
}

impl RemoteCollection {
    /// Opens (or resumes, for the same job) the dataset of `job`; `policy` describes the behaviour.
    pub fn open(job: &CollectJob, policy: &str) -> anyhow::Result<Self> {
        let env = frl_envs::make(&job.env)?;
        let (writer, _resumed) = open_dataset(job, &env.observation_space(), &env.action_space(), policy)?;
        let last = writer.metadata().collections.last().cloned().expect("a collection is open");
        let next = last.first_episode + last.episodes;
        Ok(RemoteCollection {
            end: last.first_episode + last.requested,
            writer: Some(writer),
            pending: BTreeMap::new(),
            next,
            out: job.out.clone(),
        })
    }

    /// The episode indices still to write: `next..end`.
    pub fn remaining(&self) -> (u64, u64) {
        (self.next, self.end)
    }

    /// Adds a chunk; writes every episode that is next in order. Returns the episodes written so far.
    pub fn add(&mut self, batch: &EpisodeBatch) -> anyhow::Result<u64> {
        for ep in batch.iter() {
            let i = ep.tag.index;
            if i < self.next || i >= self.end {
                continue;
            }
            let mut one = EpisodeBatch::new(batch.obs_dim, batch.act_dim);
            one.push(&ep);
            self.pending.insert(i, one);
        }
        let writer = self.writer.as_mut().context("the collection is finished")?;
        while let Some(one) = self.pending.remove(&self.next) {
            writer.write(&one.episode(0)).with_context(|| format!("writing to {}", self.out.display()))?;
            self.next += 1;
        }
        Ok(self.next)
    }

    /// Flushes the last shard and returns the dataset's metadata.
    pub fn finish(&mut self) -> anyhow::Result<Metadata> {
        let writer = self.writer.take().context("the collection is finished")?;
        Ok(writer.finish()?)
    }

    /// The dataset folder.
    pub fn out(&self) -> &Path {
        &self.out
    }
}

/// Column names of an [`EpisodeBatch`] as bytes (little-endian): what crosses process boundaries.
pub mod columns {
    use super::*;

    /// A batch as named little-endian byte columns plus its two dimensions.
    pub struct Columns {
        /// Observation size.
        pub obs_dim: usize,
        /// Action size.
        pub act_dim: usize,
        /// (name, bytes, element type) for each column.
        pub data: Vec<(&'static str, Vec<u8>, &'static str)>,
    }

    fn le<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        v.iter().flat_map(|&x| f(x)).collect()
    }

    /// Splits a batch into columns: observations f32 (u8 with `u8_observations`, for frames whose values are
    /// 0..=255), actions/rewards f32, flags u8, offsets and tags u64.
    pub fn to_columns(b: &EpisodeBatch, u8_observations: bool) -> Columns {
        let tags = |f: fn(&EpisodeTag) -> u64| le(&b.tags.iter().map(f).collect::<Vec<_>>(), u64::to_le_bytes);
        let observations = if u8_observations {
            ("observations", b.observations.iter().map(|&x| x as u8).collect(), "u8")
        } else {
            ("observations", le(&b.observations, f32::to_le_bytes), "f32")
        };
        Columns {
            obs_dim: b.obs_dim,
            act_dim: b.act_dim,
            data: vec![
                observations,
                ("actions", le(&b.actions, f32::to_le_bytes), "f32"),
                ("rewards", le(&b.rewards, f32::to_le_bytes), "f32"),
                ("terminated", b.terminated.iter().map(|&x| x as u8).collect(), "u8"),
                ("truncated", b.truncated.iter().map(|&x| x as u8).collect(), "u8"),
                (
                    "episode_offsets",
                    le(&b.offsets.iter().map(|&x| x as u64).collect::<Vec<_>>(), u64::to_le_bytes),
                    "u64",
                ),
                ("episode_index", tags(|t| t.index), "u64"),
                ("episode_seed", tags(|t| t.seed), "u64"),
                ("policy_version", tags(|t| t.policy_version), "u64"),
                ("step_policy_version", le(&b.versions, u64::to_le_bytes), "u64"),
            ],
        }
    }

    /// Rebuilds a batch from columns (`get`: bytes and element type by name), checking their lengths against each
    /// other.
    pub fn from_columns(
        obs_dim: usize,
        act_dim: usize,
        get: impl Fn(&str) -> Option<(Vec<u8>, String)>,
    ) -> anyhow::Result<EpisodeBatch> {
        let u8_observations = get("observations").is_some_and(|(_, dtype)| dtype == "u8");
        let col = |name: &str| get(name).map(|(bytes, _)| bytes).with_context(|| format!("column `{name}` is missing"));
        let f32s = |name: &str| -> anyhow::Result<Vec<f32>> {
            let b = col(name)?;
            if b.len() % 4 != 0 {
                bail!("column `{name}` has {} bytes, not a multiple of 4", b.len());
            }
            Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
        };
        let u64s = |name: &str| -> anyhow::Result<Vec<u64>> {
            let b = col(name)?;
            if b.len() % 8 != 0 {
                bail!("column `{name}` has {} bytes, not a multiple of 8", b.len());
            }
            Ok(b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
        };
        let flags = |name: &str| -> anyhow::Result<Vec<bool>> { Ok(col(name)?.into_iter().map(|x| x != 0).collect()) };
        let offsets: Vec<usize> = u64s("episode_offsets")?.into_iter().map(|x| x as usize).collect();
        let (index, seed, version) = (u64s("episode_index")?, u64s("episode_seed")?, u64s("policy_version")?);
        let episodes = offsets.len().saturating_sub(1);
        let steps = offsets.last().copied().unwrap_or(0);
        let b = EpisodeBatch {
            obs_dim,
            act_dim,
            observations: if u8_observations {
                col("observations")?.into_iter().map(f32::from).collect()
            } else {
                f32s("observations")?
            },
            actions: f32s("actions")?,
            rewards: f32s("rewards")?,
            terminated: flags("terminated")?,
            truncated: flags("truncated")?,
            tags: (0..episodes)
                .map(|e| {
                    Ok(EpisodeTag {
                        index: *index.get(e).context("episode_index is short")?,
                        seed: *seed.get(e).context("episode_seed is short")?,
                        policy_version: *version.get(e).context("policy_version is short")?,
                    })
                })
                .collect::<anyhow::Result<_>>()?,
            offsets,
            versions: Vec::new(),
        };
        let ok = b.offsets.first() == Some(&0)
            && b.offsets.windows(2).all(|w| w[0] < w[1])
            && b.rewards.len() == steps
            && b.terminated.len() == steps
            && b.truncated.len() == steps
            && b.actions.len() == steps * act_dim
            && b.observations.len() == (steps + episodes) * obs_dim
            && index.len() == episodes;
        if !ok {
            bail!("inconsistent columns: {episodes} episodes, {steps} steps, lengths do not match");
        }
        // The version of every step, or (columns without them) every step at its episode's.
        let mut b = b;
        match get("step_policy_version").map(|(bytes, _)| bytes) {
            Some(bytes) if !bytes.is_empty() => {
                let v = u64s("step_policy_version")?;
                if v.len() != steps {
                    bail!("column `step_policy_version` has {} values for {steps} steps", v.len());
                }
                b.versions = v;
            }
            _ => {
                for e in 0..episodes {
                    let v = b.tags[e].policy_version;
                    b.versions.resize(b.offsets[e + 1], v);
                }
            }
        }
        Ok(b)
    }
}
