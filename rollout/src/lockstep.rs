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
use crate::pool::{EnvFactory, EpisodeRng, episode_seeds, step_seed};

/// How lockstep actors run.
#[derive(Debug, Clone, PartialEq, Default)]
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
    /// Where the slots stood when the run was saved (empty for a fresh start): episodes begun and the episodes in
    /// flight, which the slots continue by replaying their actions from the episode's seed.
    pub restore: Vec<SlotState>,
}

/// Where one env slot of a lockstep run stood at a checkpoint.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotState {
    /// The slot.
    pub slot: usize,
    /// Episodes it had begun (its next episode is `first_episode + begun·envs + slot`).
    pub begun: u64,
    /// The episode it was running, as far as the learner had received it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<InFlight>,
}

/// An episode in flight at a checkpoint: what the slot needs to bring its env back to where it stood.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InFlight {
    /// Its index (which decides its seeds).
    pub index: u64,
    /// The policy version it began with (its tag's).
    pub version: u64,
    /// Steps taken.
    pub steps: usize,
    /// The actions taken, flat (`steps × act_dim`), as recorded.
    pub actions: Vec<f32>,
    /// The policy version of each step, as runs `[steps, version]`.
    pub versions: Vec<[u64; 2]>,
    /// [`EpisodeRef::fingerprint`] of the steps so far (the replay must give the same).
    ///
    /// [`EpisodeRef::fingerprint`]: frl_dataset::episodes::EpisodeRef::fingerprint
    pub fingerprint: u32,
}

impl InFlight {
    /// The state of `episode` (a running episode's steps so far).
    pub fn of(episode: &frl_dataset::episodes::EpisodeRef<'_>) -> Self {
        let mut versions: Vec<[u64; 2]> = Vec::new();
        for t in 0..episode.len() {
            let v = episode.version(t);
            match versions.last_mut() {
                Some(run) if run[1] == v => run[0] += 1,
                _ => versions.push([1, v]),
            }
        }
        InFlight {
            index: episode.tag.index,
            version: episode.tag.policy_version,
            steps: episode.len(),
            actions: episode.actions.to_vec(),
            versions,
            fingerprint: episode.fingerprint(),
        }
    }
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

/// A policy as the schedule hands it out: the snapshot for threads, and for actors in other processes the
/// checkpoint bytes it was made from.
#[derive(Clone)]
pub struct Published {
    /// The snapshot.
    pub policy: PolicySnapshot,
    /// Its checkpoint's bytes (runs with actors in other processes).
    pub payload: Option<Arc<Vec<u8>>>,
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
    policies: VecDeque<(u64, Published)>,
    closed: bool,
}

impl Schedule {
    /// A schedule whose rounds up to `lag` act with `first`.
    pub fn new(first: Published) -> Arc<Self> {
        let schedule = Self::empty();
        schedule.start(first);
        schedule
    }

    /// A schedule without its first policy yet (actors wait for [`Schedule::start`]).
    pub fn empty() -> Arc<Self> {
        let state = ScheduleState { done: 0, policies: VecDeque::new(), closed: false };
        Arc::new(Schedule { state: Mutex::new(state), cond: Condvar::new() })
    }

    /// Sets the policy of the first rounds.
    pub fn start(&self, first: Published) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.policies.clear();
        let done = s.done;
        s.policies.push_back((done, first));
        self.cond.notify_all();
    }

    /// The consumer finished the next round; `policy` is the one to act with from round `done + lag` on.
    pub fn publish(&self, policy: Published) {
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

    /// Whether the schedule was closed (the run ended).
    pub fn closed(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed
    }

    /// Waits until round `round` may start; the policy it acts with, or `None` once closed.
    fn policy_for(&self, round: u64, lag: u64) -> Option<Published> {
        loop {
            match self.wait_for(round, lag, Duration::from_millis(50)) {
                Ok(Some(p)) => return Some(p),
                Ok(None) => {}
                Err(()) => return None,
            }
        }
    }

    /// Waits up to `timeout` for round `round` to be allowed to start: its policy, `Ok(None)` on timeout, `Err`
    /// once closed.
    #[allow(clippy::result_unit_err)]
    pub fn wait_for(&self, round: u64, lag: u64, timeout: Duration) -> Result<Option<Published>, ()> {
        let need = round.saturating_sub(lag);
        let deadline = std::time::Instant::now() + timeout;
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if s.closed {
                return Err(());
            }
            if s.done >= need
                && let Some((_, p)) = s.policies.iter().rev().find(|(d, _)| *d <= need)
            {
                return Ok(Some(p.clone()));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            s = self.cond.wait_timeout(s, left).unwrap_or_else(|e| e.into_inner()).0;
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
            let slots = Slots::new((*config).clone(), make_env.clone(), &Slots::share(a, actors, config.envs));
            let (schedule, tx, stop) = (schedule.clone(), tx.clone(), stop.clone());
            handles.push(
                std::thread::Builder::new()
                    .name(format!("frl-actor-{a}"))
                    .spawn(move || actor(slots, &schedule, &tx, &stop))?,
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
    /// Seeds the policy's RNG at the episode's start and, with the step, at each step.
    policy_seed: u64,
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
    /// The episode in flight at the checkpoint this run resumed from, to replay before the first round.
    restore: Option<InFlight>,
}

/// Some env slots of a lockstep run, stepped round by round (by one actor thread, or by a worker in another
/// process).
pub struct Slots {
    config: LockstepConfig,
    make_env: EnvFactory,
    slots: Vec<Slot>,
    /// Whether a round ran (a worker whose first round is `r > 0` replaces one that died).
    started: bool,
}

impl Slots {
    /// The slots `indices` of a run planned by `config`.
    pub fn new(config: LockstepConfig, make_env: EnvFactory, indices: &[usize]) -> Self {
        let slots = indices
            .iter()
            .map(|&index| Slot {
                index,
                env: None,
                policy: None,
                flight: EpisodeBatch::default(),
                running: None,
                begun: 0,
                restore: None,
            })
            .collect();
        Slots { config, make_env, slots, started: false }
    }

    /// The slots `j ≡ actor (mod actors)` of `config.envs`: actor `actor`'s share.
    pub fn share(actor: usize, actors: usize, envs: usize) -> Vec<usize> {
        (actor..envs).step_by(actors.max(1)).collect()
    }

    /// One round: each slot's fragment, in slot order, or `None` when `stop` was set first. A slot that fails
    /// gives up its episode in flight and starts afresh (a new env) next round; its fragment names the failure.
    pub fn round(&mut self, round: u64, policy: &PolicySnapshot, stop: &AtomicBool) -> Option<Vec<Fragment>> {
        if !self.started {
            // A slot begins at most one episode per step: numbering a replacement's episodes from `round · steps`
            // after those begun before the checkpoint keeps every index unique. Only the first round continues the
            // episodes in flight at the checkpoint (a replacement's slots lost theirs).
            for slot in &mut self.slots {
                let saved = self.config.restore.iter().find(|s| s.slot == slot.index);
                slot.begun = saved.map_or(0, |s| s.begun) + round * self.config.steps as u64;
                slot.restore = saved.and_then(|s| s.in_flight.clone()).filter(|_| round == 0);
            }
            self.started = true;
        }
        let mut out = Vec::with_capacity(self.slots.len());
        for slot in &mut self.slots {
            if stop.load(Ordering::Acquire) {
                return None;
            }
            let (config, make_env) = (&self.config, &self.make_env);
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                frl_envs::attached(|| step_slot(config, slot, make_env, policy, stop))
            }));
            let failure = match outcome {
                Ok(Ok(Some(batch))) => {
                    out.push(Fragment { round, slot: slot.index, batch, failure: None });
                    continue;
                }
                Ok(Ok(None)) => return None,
                Ok(Err(e)) => e,
                Err(p) => format!("panic: {}", crate::pool::panic_message(&*p)),
            };
            // The episode in flight is given up; the slot starts afresh next round.
            let index = slot.running.take().map_or(String::new(), |r| format!(", episode {}", r.index));
            slot.env = None;
            slot.policy = None;
            let failure = Some(format!("env slot {}{index}: {failure}", slot.index));
            out.push(Fragment { round, slot: slot.index, batch: EpisodeBatch::default(), failure });
        }
        Some(out)
    }
}

fn actor(mut slots: Slots, schedule: &Schedule, tx: &Sender<Fragment>, stop: &AtomicBool) {
    let lag = slots.config.lag;
    for round in 0.. {
        let Some(published) = schedule.policy_for(round, lag) else { return };
        let Some(fragments) = slots.round(round, &published.policy, stop) else { return };
        for f in fragments {
            if tx.send(f).is_err() {
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
    if let Some(saved) = slot.restore.take() {
        restore(config, slot, snapshot, &saved, &mut out)?;
    }
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
            let (obs, _) = env.reset(Some(env_seed)).map_err(|e| format!("env reset: {e}"))?;
            slot.flight.clear();
            slot.flight.begin(&obs);
            let (version, policy) = slot.policy.as_mut().expect("set above");
            policy.reset(&mut EpisodeRng::seed_from_u64(policy_seed));
            slot.running = Some(Running { index, env_seed, policy_seed, from: 0, t: 0, version: *version });
        }
        let r = slot.running.as_mut().expect("begun above");
        if slot.policy.is_none() {
            // A continued episode acts with the round's policy from here on.
            slot.policy = Some((snapshot.version, snapshot.factory.make()));
        }
        let (version, policy) = slot.policy.as_mut().expect("set above");
        let mut rng = EpisodeRng::seed_from_u64(step_seed(r.policy_seed, r.t as u64));
        let action = policy.act(&slot.flight.in_flight().expect("begun above"), &mut rng);
        let step = env
            .step_into(&policy.env_action(&action), &mut slot.flight.observations)
            .map_err(|e| format!("env step: {e}"))?;
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

/// Brings `slot` back into the episode `saved` was in flight at the checkpoint: its env reset with the episode's
/// seed, the recorded actions replayed, the steps sent again in `out` (tagged as the episode, so the learner can
/// tell them from new ones), the policy RNG continuing at the next step. An episode that does not repeat (another
/// observation, reward or end than recorded) is given up: the slot begins its next episode instead.
fn restore(
    config: &LockstepConfig,
    slot: &mut Slot,
    snapshot: &PolicySnapshot,
    saved: &InFlight,
    out: &mut EpisodeBatch,
) -> Result<(), String> {
    let env = slot.env.as_mut().expect("made by the caller");
    let space = env.action_space();
    let act_dim = slot.flight.act_dim;
    if saved.actions.len() != saved.steps * act_dim || saved.steps == 0 {
        return Ok(());
    }
    let (env_seed, policy_seed) = episode_seeds(config.seed, saved.index);
    let (obs, _) = env.reset(Some(env_seed)).map_err(|e| format!("env reset: {e}"))?;
    slot.flight.clear();
    slot.flight.begin(&obs);
    let mut policy = snapshot.factory.make();
    policy.reset(&mut EpisodeRng::seed_from_u64(policy_seed));
    let mut versions = saved.versions.iter().flat_map(|&[n, v]| std::iter::repeat_n(v, n as usize));
    for t in 0..saved.steps {
        let flat = &saved.actions[t * act_dim..(t + 1) * act_dim];
        let action = match &space {
            frl_envs::Space::Discrete(_) => frl_envs::Action::Discrete(flat[0] as usize),
            frl_envs::Space::Box { .. } => frl_envs::Action::Continuous(flat.to_vec()),
        };
        let step = env
            .step_into(&policy.env_action(&action), &mut slot.flight.observations)
            .map_err(|e| format!("env step: {e}"))?;
        slot.flight.record_outcome(&action, step);
        slot.flight.versions.push(versions.next().unwrap_or(saved.version));
        if (step.terminated || step.truncated) && t + 1 < saved.steps {
            break;
        }
    }
    let history = slot.flight.in_flight().expect("begun above");
    let steps = history.rewards.len();
    let tag = EpisodeTag { index: saved.index, seed: env_seed, policy_version: saved.version };
    let mut replayed = EpisodeBatch::new(slot.flight.obs_dim, act_dim);
    replayed.push_fragment(&slot.flight, 0, tag);
    let ep = replayed.episode(0);
    if steps != saved.steps || ep.ended() || ep.fingerprint() != saved.fingerprint {
        slot.flight.clear();
        return Ok(());
    }
    out.push(&ep);
    slot.running =
        Some(Running { index: saved.index, env_seed, policy_seed, from: steps, t: steps, version: saved.version });
    // A Markov policy takes the round's weights as at any round's start; a sequence policy reads the episode so far
    // with the policy reset for it (the version it began with is gone).
    slot.policy = (!policy.markov()).then_some((snapshot.version, policy));
    Ok(())
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

    /// Whether the next fragment in order is a round's first.
    pub fn at_round_start(&self) -> bool {
        self.next.1 == 0
    }

    /// Whether `fragment` is its round's last.
    pub fn ends_round(&self, fragment: &Fragment) -> bool {
        fragment.slot + 1 == self.envs
    }
}

/// The learner's end of lockstep actors in other processes (Ray): the plan they follow (set by the learner once it
/// knows where the run stands), the schedule they take policies from, and the fragments they send back.
pub struct RemoteActors {
    plan: Mutex<Option<Result<LockstepConfig, String>>>,
    cond: Condvar,
    schedule: Arc<Schedule>,
    tx: Sender<Fragment>,
    rx: Receiver<Fragment>,
}

impl std::fmt::Debug for RemoteActors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteActors").field("done", &self.schedule.done()).finish()
    }
}

impl RemoteActors {
    /// A handle with no plan yet.
    pub fn new() -> Arc<Self> {
        let (tx, rx) = crossbeam_channel::unbounded();
        Arc::new(RemoteActors { plan: Mutex::new(None), cond: Condvar::new(), schedule: Schedule::empty(), tx, rx })
    }

    /// The learner's plan for the actors, or why the run could not start; set once.
    pub fn set_plan(&self, plan: Result<LockstepConfig, String>) {
        let mut p = self.plan.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_none() {
            *p = Some(plan);
        }
        self.cond.notify_all();
    }

    /// Waits up to `timeout` for the plan.
    pub fn plan(&self, timeout: Duration) -> Option<Result<LockstepConfig, String>> {
        let deadline = std::time::Instant::now() + timeout;
        let mut p = self.plan.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(plan) = p.as_ref() {
                return Some(plan.clone());
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            p = self.cond.wait_timeout(p, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// The schedule the learner publishes policies on.
    pub fn schedule(&self) -> &Arc<Schedule> {
        &self.schedule
    }

    /// Hands a fragment to the learner (any order; the learner restores (round, slot) order).
    pub fn push(&self, fragment: Fragment) {
        let _ = self.tx.send(fragment);
    }

    /// The learner's end of the fragments.
    pub fn fragments(&self) -> Receiver<Fragment> {
        self.rx.clone()
    }
}
