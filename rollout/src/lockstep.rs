//! Lockstep actors: the deterministic schedule of online runs. The run has a fixed number of env slots, shared out
//! among the actor threads; in round `r` every slot takes `steps` env steps with the policy the consumer published
//! after round `r − lag` and sends them as one [`Fragment`]. The consumer takes the fragments in (round, slot) order
//! and publishes a policy after each round, so what is collected, and with which weights, depends on the seed and
//! the schedule alone — not on the number of actors or on timing.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use frl_dataset::episodes::{EpisodeBatch, EpisodeTag};
use frl_envs::{Env, Policy};
use rand::SeedableRng;

use crate::link::PolicySnapshot;
use crate::pool::{EnvFactory, EpisodeRng, episode_seeds};

/// How lockstep actors run.
#[derive(Debug, Clone, PartialEq)]
pub struct LockstepConfig {
    /// Actor threads; slot `j` belongs to actor `j mod actors`.
    pub actors: usize,
    /// Env slots (the same run with any number of actors collects the same steps).
    pub envs: usize,
    /// Env steps each slot takes per round.
    pub steps: usize,
    /// Base seed: slot `j`'s `n`-th episode is episode `first_episode + n·envs + j`, seeded from `(seed, index)`.
    pub seed: u64,
    /// Index of the first episode.
    pub first_episode: u64,
    /// Round `r` acts with the policy published once `r − lag` rounds were consumed (0: wait for the previous
    /// round's updates; 1: act on while the consumer learns from the previous round).
    pub lag: u64,
}

/// One slot's steps of one round: the episodes it ended and the fragment of the one it is running.
pub struct Fragment {
    /// The round.
    pub round: u64,
    /// The env slot.
    pub slot: usize,
    /// The steps (fragments of episodes as [`EpisodeBatch::push_fragment`] makes them); empty after a failure.
    pub batch: EpisodeBatch,
    /// Why the slot failed this round (env error or panic): its episode in flight is given up, and it starts a new
    /// one next round with a fresh env.
    pub failure: Option<String>,
}

/// Rounds consumed and the policies published after them; what lockstep actors wait on.
pub struct Schedule {
    state: Mutex<ScheduleState>,
    cond: Condvar,
}

struct ScheduleState {
    /// Rounds consumed.
    done: u64,
    /// `(rounds consumed, policy)`, newest last.
    policies: VecDeque<(u64, PolicySnapshot)>,
    closed: bool,
}

impl Schedule {
    /// A schedule whose rounds up to `lag` act with `first`.
    pub fn new(first: PolicySnapshot) -> Arc<Self> {
        let state = ScheduleState { done: 0, policies: VecDeque::from([(0, first)]), closed: false };
        Arc::new(Schedule { state: Mutex::new(state), cond: Condvar::new() })
    }

    /// The consumer finished the next round; `policy` is the one to act with from round `done + lag` on.
    pub fn publish(&self, policy: PolicySnapshot) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.done += 1;
        let done = s.done;
        s.policies.push_back((done, policy));
        // Actors are at most `lag + 1` rounds apart from the consumer; a few more are kept.
        while s.policies.len() > 16 {
            s.policies.pop_front();
        }
        self.cond.notify_all();
    }

    /// Rounds consumed so far.
    pub fn done(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).done
    }

    /// Wakes every waiting actor and makes it stop.
    pub fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.cond.notify_all();
    }

    /// Waits until round `round` may start; the policy it acts with, or `None` once closed.
    fn policy_for(&self, round: u64, lag: u64) -> Option<PolicySnapshot> {
        let need = round.saturating_sub(lag);
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if s.closed {
                return None;
            }
            if s.done >= need {
                let found = s.policies.iter().rev().find(|(d, _)| *d <= need);
                return Some(found.expect("the schedule keeps the policies of rounds in progress").1.clone());
            }
            s = self.cond.wait_timeout(s, Duration::from_millis(50)).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

/// Running lockstep actor threads.
pub struct LockstepActors {
    handles: Vec<JoinHandle<()>>,
    schedule: Arc<Schedule>,
}

impl LockstepActors {
    /// Starts the actors; each sends its slots' fragments on `tx` (round by round, slots in order) until `stop` is
    /// set or the schedule closes.
    pub fn spawn(
        config: LockstepConfig,
        make_env: EnvFactory,
        schedule: Arc<Schedule>,
        tx: Sender<Fragment>,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<Self> {
        let actors = config.actors.clamp(1, config.envs.max(1));
        let config = Arc::new(config);
        let mut handles = Vec::with_capacity(actors);
        for a in 0..actors {
            let slots: Vec<usize> = (a..config.envs).step_by(actors).collect();
            let (config, make_env, schedule, tx, stop) =
                (config.clone(), make_env.clone(), schedule.clone(), tx.clone(), stop.clone());
            handles.push(
                std::thread::Builder::new()
                    .name(format!("frl-actor-{a}"))
                    .spawn(move || actor(&config, &slots, &make_env, &schedule, &tx, &stop))?,
            );
        }
        Ok(LockstepActors { handles, schedule })
    }

    /// Stops the actors (closing the schedule) and waits for them; the message of an actor thread that died.
    pub fn join(self) -> Option<String> {
        self.schedule.close();
        let mut error = None;
        for h in self.handles {
            if let Err(p) = h.join() {
                error.get_or_insert(format!("an actor thread died: {}", crate::pool::panic_message(&*p)));
            }
        }
        error
    }
}

/// The episode a slot is running.
struct Running {
    index: u64,
    env_seed: u64,
    rng: EpisodeRng,
    /// First step of the fragment being collected.
    from: usize,
    /// Steps so far.
    t: usize,
    /// The policy version the episode began with (its tag's).
    version: u64,
}

/// One env slot: its env, policy, episode in flight and episode count.
struct Slot {
    index: usize,
    env: Option<Box<dyn Env>>,
    policy: Option<(u64, Box<dyn Policy>)>,
    /// The episode in flight, recorded whole (the policy reads all of it).
    flight: EpisodeBatch,
    running: Option<Running>,
    /// Episodes begun.
    begun: u64,
}

fn actor(
    config: &LockstepConfig,
    slots: &[usize],
    make_env: &EnvFactory,
    schedule: &Schedule,
    tx: &Sender<Fragment>,
    stop: &AtomicBool,
) {
    let mut slots: Vec<Slot> = slots
        .iter()
        .map(|&index| Slot { index, env: None, policy: None, flight: EpisodeBatch::default(), running: None, begun: 0 })
        .collect();
    for round in 0.. {
        let Some(snapshot) = schedule.policy_for(round, config.lag) else { return };
        for slot in &mut slots {
            if stop.load(Ordering::Acquire) {
                return;
            }
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                frl_envs::attached(|| step_slot(config, slot, make_env, &snapshot, stop))
            }));
            let (batch, failure) = match outcome {
                Ok(Ok(Some(batch))) => (batch, None),
                Ok(Ok(None)) => return,
                Ok(Err(e)) => (EpisodeBatch::default(), Some(e)),
                Err(p) => (EpisodeBatch::default(), Some(format!("panic: {}", crate::pool::panic_message(&*p)))),
            };
            if let Some(e) = &failure {
                // The episode in flight is given up; the slot starts afresh next round.
                let index = slot.running.take().map_or(String::new(), |r| format!(", episode {}", r.index));
                slot.env = None;
                slot.policy = None;
                let failure = format!("env slot {}{index}: {e}", slot.index);
                if tx.send(Fragment { round, slot: slot.index, batch, failure: Some(failure) }).is_err() {
                    return;
                }
                continue;
            }
            if tx.send(Fragment { round, slot: slot.index, batch, failure: None }).is_err() {
                return;
            }
        }
    }
}

/// `config.steps` steps of one slot with `snapshot`; `None` when stopped.
fn step_slot(
    config: &LockstepConfig,
    slot: &mut Slot,
    make_env: &EnvFactory,
    snapshot: &PolicySnapshot,
    stop: &AtomicBool,
) -> Result<Option<EpisodeBatch>, String> {
    if slot.env.is_none() {
        let e = make_env().map_err(|e| format!("creating the env: {e}"))?;
        slot.flight = EpisodeBatch::new(e.observation_space().flat_dim(), e.action_space().flat_dim());
        slot.env = Some(e);
    }
    let mut out = EpisodeBatch::with_capacity(slot.flight.obs_dim, slot.flight.act_dim, config.steps, 2);
    let env = slot.env.as_mut().expect("made above");
    // A Markov policy acts with the round's policy from its first step on; a sequence policy keeps the one its
    // episode began with.
    let markov = slot.policy.as_ref().is_some_and(|p| p.1.markov());
    if markov && slot.policy.as_ref().is_some_and(|p| p.0 != snapshot.version) {
        slot.policy = Some((snapshot.version, snapshot.factory.make()));
    }
    for n in 0..config.steps {
        if n % 64 == 0 && stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        if slot.running.is_none() {
            if slot.policy.as_ref().is_none_or(|p| p.0 != snapshot.version) {
                slot.policy = Some((snapshot.version, snapshot.factory.make()));
            }
            let index = config.first_episode + slot.begun * config.envs as u64 + slot.index as u64;
            slot.begun += 1;
            let (env_seed, policy_seed) = episode_seeds(config.seed, index);
            let mut rng = EpisodeRng::seed_from_u64(policy_seed);
            let (obs, _) = env.reset(Some(env_seed)).map_err(|e| format!("env reset: {e}"))?;
            slot.flight.clear();
            slot.flight.begin(&obs);
            let (version, policy) = slot.policy.as_mut().expect("set above");
            policy.reset(&mut rng);
            slot.running = Some(Running { index, env_seed, rng, from: 0, t: 0, version: *version });
        }
        let r = slot.running.as_mut().expect("begun above");
        let (version, policy) = slot.policy.as_mut().expect("set above");
        let action = policy.act(&slot.flight.in_flight().expect("begun above"), &mut r.rng);
        let step = env.step_into(&action, &mut slot.flight.observations).map_err(|e| format!("env step: {e}"))?;
        slot.flight.record_outcome(&action, step);
        slot.flight.versions.push(*version);
        r.t += 1;
        if step.terminated || step.truncated {
            let tag = EpisodeTag { index: r.index, seed: r.env_seed, policy_version: r.version };
            out.push_fragment(&slot.flight, r.from, tag);
            slot.running = None;
        }
    }
    if let Some(r) = slot.running.as_mut() {
        let tag = EpisodeTag { index: r.index, seed: r.env_seed, policy_version: r.version };
        out.push_fragment(&slot.flight, r.from, tag);
        r.from = r.t;
    }
    Ok(Some(out))
}

/// Puts fragments back into (round, slot) order.
pub struct InOrder {
    rx: Receiver<Fragment>,
    envs: usize,
    next: (u64, usize),
    waiting: std::collections::BTreeMap<(u64, usize), Fragment>,
}

impl InOrder {
    /// The fragments of `envs` slots arriving on `rx`, from round 0.
    pub fn new(rx: Receiver<Fragment>, envs: usize) -> Self {
        InOrder { rx, envs, next: (0, 0), waiting: Default::default() }
    }

    /// The next fragment in order, waiting up to `timeout` for it; `Ok(None)` on timeout, `Err` once every actor
    /// has gone.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Fragment>, crossbeam_channel::RecvTimeoutError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(f) = self.waiting.remove(&self.next) {
                self.next = if f.slot + 1 == self.envs { (f.round + 1, 0) } else { (f.round, f.slot + 1) };
                return Ok(Some(f));
            }
            match self.rx.recv_deadline(deadline) {
                Ok(f) => {
                    self.waiting.insert((f.round, f.slot), f);
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether `fragment` is its round's last.
    pub fn ends_round(&self, fragment: &Fragment) -> bool {
        fragment.slot + 1 == self.envs
    }
}
