//! The actor pool: N threads, each owning an env and a policy instance, collecting whole episodes.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use frl_envs::Policy;
use frl_envs::{Env, EnvError};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::link::{ActorLink, PolicySnapshot};
use frl_dataset::episodes::{EpisodeBatch, EpisodeTag};

/// The RNG a policy draws from during one episode, seeded from the episode's seed (fast to seed, portable).
pub type EpisodeRng = rand_xoshiro::Xoshiro256PlusPlus;

/// Builds a fresh env for an actor (at start and after a failure).
pub type EnvFactory = Arc<dyn Fn() -> Result<Box<dyn Env>, EnvError> + Send + Sync>;

/// How the pool runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Actor threads.
    #[serde(default = "default_actors")]
    pub actors: usize,
    /// Base seed: episode `i` resets with and draws policy noise from seeds derived from `(seed, i)`.
    #[serde(default)]
    pub seed: u64,
    /// Index of the first episode (continuing a dataset continues its indices).
    #[serde(default)]
    pub first_episode: u64,
    /// Episodes to collect; `None` runs until stopped.
    #[serde(default)]
    pub episodes: Option<u64>,
    /// An actor sends its episodes once it holds at least this many steps (or `max_delay_ms` passed).
    #[serde(default = "default_batch_steps")]
    pub batch_steps: usize,
    /// Longest time an actor keeps finished episodes before sending them.
    #[serde(default = "default_max_delay_ms")]
    pub max_delay_ms: u64,
    /// Failures (panics or env errors) tolerated before the whole run stops with an error.
    #[serde(default = "default_max_failures")]
    pub max_failures: u64,
    /// Send each running episode in fragments of this many steps (the last part ends it) instead of whole; the
    /// policy acting in an episode stays the same to its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fragment_steps: Option<usize>,
}

pub(crate) fn default_actors() -> usize {
    2
}
fn default_batch_steps() -> usize {
    1024
}
fn default_max_delay_ms() -> u64 {
    200
}
pub(crate) fn default_max_failures() -> u64 {
    100
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            actors: default_actors(),
            seed: 0,
            first_episode: 0,
            episodes: None,
            batch_steps: default_batch_steps(),
            max_delay_ms: default_max_delay_ms(),
            max_failures: default_max_failures(),
            fragment_steps: None,
        }
    }
}

/// How a pool run ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolReport {
    /// Complete episodes handed to the consumer.
    pub episodes: u64,
    /// Their steps.
    pub steps: u64,
    /// Actor failures (each one restarted the actor and discarded the episode in flight).
    pub failures: u64,
    /// The first few failure messages.
    pub failure_messages: Vec<String>,
    /// Why the run stopped early, if it did: too many failures or the consumer went away.
    pub error: Option<String>,
}

/// Seeds of episode `index`: `(env reset seed, policy RNG seed)`.
pub fn episode_seeds(seed: u64, index: u64) -> (u64, u64) {
    let a = splitmix64(seed ^ splitmix64(index));
    (a, splitmix64(a ^ 0x5851_f42d_4c95_7f2d))
}

/// The policy RNG seed of step `t` of an episode whose policy seed is `policy_seed` (each step its own stream, so an
/// episode continued after a restart draws what it would have drawn).
pub fn step_seed(policy_seed: u64, t: u64) -> u64 {
    splitmix64(policy_seed ^ splitmix64(t.wrapping_add(0x2545_f491_4f6c_dd1d)))
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Running actor threads.
pub struct ActorPool {
    handles: Vec<JoinHandle<(u64, u64)>>,
    shared: Arc<Shared>,
}

struct Shared {
    config: PoolConfig,
    next: AtomicU64,
    retry: Mutex<Vec<u64>>,
    retry_len: AtomicU64,
    stop: Arc<AtomicBool>,
    failures: AtomicU64,
    messages: Mutex<Vec<String>>,
    error: Mutex<Option<String>>,
}

impl Shared {
    /// The next episode index to collect, or `None` when all are claimed or the run stops.
    fn claim(&self) -> Option<u64> {
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        if self.retry_len.load(Ordering::Acquire) > 0 {
            let mut retry = self.retry.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = retry.pop() {
                self.retry_len.fetch_sub(1, Ordering::AcqRel);
                return Some(i);
            }
        }
        let i = self.next.fetch_add(1, Ordering::AcqRel);
        match self.config.episodes {
            Some(n) if i >= self.config.first_episode + n => None,
            _ => Some(i),
        }
    }

    fn fail(&self, index: Option<u64>, message: String) {
        if let Some(i) = index {
            self.retry.lock().unwrap_or_else(|e| e.into_inner()).push(i);
            self.retry_len.fetch_add(1, Ordering::AcqRel);
        }
        let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        let mut messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        if messages.len() < 10 {
            messages.push(message.clone());
        }
        if n > self.config.max_failures {
            self.abort(format!(
                "{n} actor failures (more than max_failures = {}); last: {message}",
                self.config.max_failures
            ));
        }
    }

    fn abort(&self, why: String) {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(why);
        self.stop.store(true, Ordering::Release);
    }
}

impl ActorPool {
    /// Starts `config.actors` threads. They stop when all episodes are collected, when `stop` is set (the episode in
    /// flight is discarded, finished ones are sent), or after too many failures.
    pub fn spawn(config: PoolConfig, env: EnvFactory, link: Arc<dyn ActorLink>, stop: Arc<AtomicBool>) -> Self {
        let shared = Arc::new(Shared {
            next: AtomicU64::new(config.first_episode),
            config,
            retry: Mutex::new(Vec::new()),
            retry_len: AtomicU64::new(0),
            stop,
            failures: AtomicU64::new(0),
            messages: Mutex::new(Vec::new()),
            error: Mutex::new(None),
        });
        let handles = (0..shared.config.actors.max(1))
            .map(|a| {
                let (shared, env, link) = (shared.clone(), env.clone(), link.clone());
                std::thread::Builder::new()
                    .name(format!("frl-actor-{a}"))
                    .spawn(move || actor(&shared, &env, link.as_ref()))
                    .expect("spawning an actor thread")
            })
            .collect();
        ActorPool { handles, shared }
    }

    /// Failures so far.
    pub fn failures(&self) -> u64 {
        self.shared.failures.load(Ordering::Acquire)
    }

    /// Waits for every actor and reports.
    pub fn join(self) -> PoolReport {
        let mut report = PoolReport::default();
        for h in self.handles {
            match h.join() {
                Ok((episodes, steps)) => {
                    report.episodes += episodes;
                    report.steps += steps;
                }
                Err(p) => self.shared.abort(format!("an actor thread died: {}", panic_message(&*p))),
            }
        }
        report.failures = self.shared.failures.load(Ordering::Acquire);
        report.failure_messages = self.shared.messages.lock().unwrap_or_else(|e| e.into_inner()).clone();
        report.error = self.shared.error.lock().unwrap_or_else(|e| e.into_inner()).clone();
        report
    }
}

pub(crate) fn panic_message(p: &(dyn Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

/// The episode an actor is running when episodes go out in fragments (it outlives a fragment's return).
struct Running {
    index: u64,
    env_seed: u64,
    rng: EpisodeRng,
    /// First step of the fragment being collected.
    from: usize,
}

/// How an actor's turn at an episode ended.
enum Turn {
    /// The episode ended (it is in the outgoing batch).
    Ended,
    /// A fragment of a running episode is in the outgoing batch.
    Cut,
    /// Stop was requested.
    Stopped,
}

/// One actor thread; returns (episodes, steps) sent (episodes counted when their last part is sent).
fn actor(shared: &Shared, make_env: &EnvFactory, link: &dyn ActorLink) -> (u64, u64) {
    let config = &shared.config;
    let fragment = config.fragment_steps.filter(|&k| k > 0);
    let (mut sent_episodes, mut sent_steps) = (0u64, 0u64);
    let mut env: Option<Box<dyn Env>> = None;
    let mut policy: Option<(u64, Box<dyn Policy>)> = None;
    let mut batch = EpisodeBatch::default();
    // With fragments, the episode in flight is recorded here (the policy sees all of it) and sent in parts.
    let mut flight = EpisodeBatch::default();
    let mut running: Option<Running> = None;
    let mut oldest = Instant::now();
    let max_delay = Duration::from_millis(config.max_delay_ms);
    let send = |batch: &mut EpisodeBatch, sent_episodes: &mut u64, sent_steps: &mut u64| -> bool {
        if batch.is_empty() {
            return true;
        }
        let fresh = EpisodeBatch::with_capacity(batch.obs_dim, batch.act_dim, config.batch_steps + 512, 64);
        let full = std::mem::replace(batch, fresh);
        let (e, s) = (full.iter().filter(|ep| ep.ended()).count() as u64, full.steps() as u64);
        match link.send(full) {
            Ok(()) => {
                *sent_episodes += e;
                *sent_steps += s;
                true
            }
            Err(d) => {
                // After a stop request the consumer may leave first; only an unannounced departure is an error.
                if !shared.stop.load(Ordering::Acquire) {
                    shared.abort(d.to_string());
                }
                false
            }
        }
    };
    loop {
        let index = match &running {
            Some(r) => r.index,
            None => match shared.claim() {
                Some(i) => i,
                None => break,
            },
        };
        // Attached to the Python interpreter (when one runs) for the whole episode (or fragment), not per step.
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            frl_envs::attached(|| -> Result<Turn, String> {
                if env.is_none() {
                    let e = make_env().map_err(|e| format!("creating the env: {e}"))?;
                    let (o, a) = (e.observation_space().flat_dim(), e.action_space().flat_dim());
                    if batch.is_empty() && (batch.obs_dim, batch.act_dim) != (o, a) {
                        batch = EpisodeBatch::with_capacity(o, a, config.batch_steps + 512, 64);
                    }
                    if (flight.obs_dim, flight.act_dim) != (o, a) {
                        flight = EpisodeBatch::new(o, a);
                    }
                    env = Some(e);
                }
                let rec = if fragment.is_some() { &mut flight } else { &mut batch };
                if running.is_none() {
                    let have = policy.as_ref().map_or(u64::MAX, |p| p.0);
                    if let Some(PolicySnapshot { version, factory }) = link.newer_policy(have) {
                        policy = Some((version, factory.make()));
                    }
                    let (env_seed, policy_seed) = episode_seeds(config.seed, index);
                    let mut rng = EpisodeRng::seed_from_u64(policy_seed);
                    let env = env.as_mut().expect("made above");
                    let (obs, _) = env.reset(Some(env_seed)).map_err(|e| format!("env reset: {e}"))?;
                    if fragment.is_some() {
                        rec.clear();
                    }
                    rec.begin(&obs);
                    policy.as_mut().expect("set above").1.reset(&mut rng);
                    running = Some(Running { index, env_seed, rng, from: 0 });
                }
                let (env, (version, policy)) = (env.as_mut().expect("made above"), policy.as_mut().expect("set above"));
                let r = running.as_mut().expect("set above");
                let tag = EpisodeTag { index, seed: r.env_seed, policy_version: *version };
                let mut t = rec.in_flight().map_or(0, |h| h.rewards.len());
                let markov = policy.markov();
                loop {
                    // Checked every 64 steps: the flag's cache line is shared with other threads.
                    if t % 64 == 0 && shared.stop.load(Ordering::Relaxed) {
                        rec.abort();
                        return Ok(Turn::Stopped);
                    }
                    // A Markov policy takes the newest version between two steps (one atomic load when none is new);
                    // the first step acts with the version the episode's tag names.
                    if markov
                        && t > 0
                        && let Some(PolicySnapshot { version: v, factory }) = link.newer_policy(*version)
                    {
                        *policy = factory.make();
                        *version = v;
                    }
                    let action = policy.act(&rec.in_flight().expect("begun above"), &mut r.rng);
                    let step = env
                        .step_into(&policy.env_action(&action), &mut rec.observations)
                        .map_err(|e| format!("env step: {e}"))?;
                    rec.record_outcome(&action, step);
                    rec.versions.push(*version);
                    t += 1;
                    let ended = step.terminated || step.truncated;
                    match fragment {
                        None if ended => {
                            batch.finish(tag);
                            return Ok(Turn::Ended);
                        }
                        None => {}
                        Some(k) if ended || t - r.from == k => {
                            batch.push_fragment(&flight, r.from, tag);
                            r.from = t;
                            return Ok(if ended { Turn::Ended } else { Turn::Cut });
                        }
                        Some(_) => {}
                    }
                }
            })
        }));
        let failure = match outcome {
            Ok(Ok(Turn::Ended)) => {
                running = None;
                None
            }
            Ok(Ok(Turn::Cut)) => None,
            Ok(Ok(Turn::Stopped)) => break,
            Ok(Err(e)) => Some(e),
            Err(p) => Some(format!("panic: {}", panic_message(&*p))),
        };
        if let Some(message) = failure {
            batch.abort();
            // An episode whose first fragments went out cannot be collected again from its start: it is given up.
            let retry = running.take().is_none_or(|r| r.from == 0);
            env = None;
            policy = None;
            let who = std::thread::current().name().unwrap_or("actor").to_string();
            shared.fail(retry.then_some(index), format!("{who}, episode {index}: {message}"));
            continue;
        }
        if batch.episodes() == 1 {
            oldest = Instant::now();
        }
        if (batch.steps() >= config.batch_steps || oldest.elapsed() >= max_delay)
            && !send(&mut batch, &mut sent_episodes, &mut sent_steps)
        {
            return (sent_episodes, sent_steps);
        }
    }
    batch.abort();
    send(&mut batch, &mut sent_episodes, &mut sent_steps);
    (sent_episodes, sent_steps)
}
