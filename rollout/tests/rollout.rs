//! The actor pool: exactly-once delivery, backpressure, restarts after failures, policy broadcast, clean stop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use frl_dataset::episodes::EpisodeBatch;
use frl_envs::BehaviourSpec;
use frl_envs::{Action, Env, EnvError, Info, Space, Step};
use frl_rollout::EpisodeRng;
use frl_rollout::{ActorPool, ChannelLink, EnvFactory, PoolConfig, episode_seeds};
use rand::SeedableRng;

const ID: &str = "CartPole-v1";

fn random_factory() -> Arc<dyn frl_envs::PolicyFactory> {
    BehaviourSpec::Random.factory(ID, &Space::Discrete(2)).unwrap()
}

fn native() -> EnvFactory {
    Arc::new(|| frl_envs::make(ID))
}

/// Episode `index` played on one thread without the pool: (length, return).
fn sequential(seed: u64, index: u64) -> (usize, f32) {
    let mut env = frl_envs::make(ID).unwrap();
    let mut policy = random_factory().make();
    let (env_seed, policy_seed) = episode_seeds(seed, index);
    let mut rng = EpisodeRng::seed_from_u64(policy_seed);
    let (obs, _) = env.reset(Some(env_seed)).unwrap();
    let mut b = EpisodeBatch::new(4, 1);
    b.begin(&obs);
    policy.reset(&mut rng);
    loop {
        let a = policy.act(&b.in_flight().unwrap(), &mut rng);
        let s = env.step(&a).unwrap();
        b.record(&a, s.reward, &s.obs, s.terminated, s.truncated);
        if s.terminated || s.truncated {
            return (b.rewards.len(), b.rewards.iter().sum());
        }
    }
}

/// Runs a pool to completion and returns every episode it delivered, keyed by index (panics on duplicates).
fn run_pool(config: PoolConfig, env: EnvFactory) -> (BTreeMap<u64, (usize, f32, bool)>, frl_rollout::PoolReport) {
    let (link, rx) = ChannelLink::new(2, random_factory());
    let pool = ActorPool::spawn(config, env, link, Arc::new(AtomicBool::new(false)));
    let mut got = BTreeMap::new();
    for batch in rx.iter() {
        for ep in batch.iter() {
            let ended = ep.terminated.last() == Some(&true) || ep.truncated.last() == Some(&true);
            let prev = got.insert(ep.tag.index, (ep.len(), ep.rewards.iter().sum::<f32>(), ended));
            assert!(prev.is_none(), "episode {} delivered twice", ep.tag.index);
        }
    }
    (got, pool.join())
}

#[test]
fn every_episode_arrives_exactly_once_and_equals_the_sequential_run() {
    let n = 300;
    let expected: Vec<(usize, f32)> = (100..100 + n).map(|i| sequential(7, i)).collect();
    for actors in [1, 2, 4] {
        let config = PoolConfig {
            actors,
            seed: 7,
            first_episode: 100,
            episodes: Some(n),
            batch_steps: 64,
            ..PoolConfig::default()
        };
        let (got, report) = run_pool(config, native());
        assert_eq!(report.error, None);
        assert_eq!(got.keys().copied().collect::<Vec<_>>(), (100..100 + n).collect::<Vec<_>>(), "{actors} actors");
        let got: Vec<(usize, f32)> = got.values().map(|&(l, r, _)| (l, r)).collect();
        assert_eq!(got, expected, "{actors} actors: episodes differ from the sequential run");
        assert_eq!(report.episodes, n);
        assert_eq!(report.steps, expected.iter().map(|e| e.0 as u64).sum::<u64>());
    }
}

/// CartPole that panics or errors on chosen global step counts (each once).
struct Faulty {
    inner: Box<dyn Env>,
    steps: Arc<AtomicU64>,
}

impl Env for Faulty {
    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info), EnvError> {
        self.inner.reset(seed)
    }
    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        match self.steps.fetch_add(1, Ordering::SeqCst) {
            500 | 2500 => panic!("injected panic"),
            1500 => Err(EnvError::NotReset("injected error")),
            _ => self.inner.step(action),
        }
    }
    fn observation_space(&self) -> Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> Space {
        self.inner.action_space()
    }
    fn id(&self) -> &'static str {
        "Faulty"
    }
}

#[test]
fn failing_actors_are_restarted_and_every_episode_still_arrives() {
    let steps = Arc::new(AtomicU64::new(0));
    let counter = steps.clone();
    let env: EnvFactory =
        Arc::new(move || Ok(Box::new(Faulty { inner: frl_envs::make(ID)?, steps: counter.clone() }) as Box<dyn Env>));
    let n = 400;
    let config = PoolConfig { actors: 2, seed: 3, episodes: Some(n), batch_steps: 100, ..PoolConfig::default() };
    let (got, report) = run_pool(config, env);
    assert!(steps.load(Ordering::SeqCst) > 2500, "the faults were not reached");
    assert_eq!(report.failures, 3, "{:?}", report.failure_messages);
    assert!(report.failure_messages.iter().any(|m| m.contains("injected panic")), "{:?}", report.failure_messages);
    assert!(report.failure_messages.iter().any(|m| m.contains("injected error")), "{:?}", report.failure_messages);
    assert_eq!(report.error, None);
    assert_eq!(got.len() as u64, n);
    for (i, &(len, ret, ended)) in &got {
        assert!(ended, "episode {i} was delivered unfinished");
        assert_eq!((len, ret), sequential(3, *i), "episode {i} differs from the sequential run");
    }
}

#[test]
fn too_many_failures_stop_the_run_with_an_error() {
    let env: EnvFactory = Arc::new(|| Err(EnvError::UnknownId { id: "Nope-v0".into(), known: String::new() }));
    let config = PoolConfig { actors: 2, episodes: Some(10), max_failures: 5, ..PoolConfig::default() };
    let (got, report) = run_pool(config, env);
    assert!(got.is_empty());
    let error = report.error.expect("the run must fail");
    assert!(error.contains("max_failures = 5") && error.contains("Nope-v0"), "{error}");
}

#[test]
fn a_slow_consumer_holds_the_actors_back() {
    let capacity = 2;
    let (link, rx) = ChannelLink::new(capacity, random_factory());
    let config = PoolConfig { actors: 2, episodes: Some(2000), batch_steps: 1, ..PoolConfig::default() };
    let stop = Arc::new(AtomicBool::new(false));
    let pool = ActorPool::spawn(config, native(), link.clone(), stop.clone());
    let mut received = 0u64;
    let mut worst = 0u64;
    for batch in rx.iter().take(30) {
        assert_eq!(batch.episodes(), 1);
        received += 1;
        std::thread::sleep(Duration::from_millis(5));
        worst = worst.max(link.batches_sent() - received);
    }
    // Batches handed over but not yet taken are at most the channel capacity (+1 for a send racing this count).
    assert!(worst <= capacity as u64 + 1, "{worst} batches queued with capacity {capacity}");
    stop.store(true, Ordering::SeqCst);
    drop(rx);
    let report = pool.join();
    assert!(report.episodes <= received + capacity as u64 + 2, "{} sent, {received} received", report.episodes);
}

#[test]
fn broadcast_policies_reach_the_actors_and_are_recorded() {
    let (link, rx) = ChannelLink::new(4, random_factory());
    let config = PoolConfig { actors: 2, episodes: None, batch_steps: 50, ..PoolConfig::default() };
    let stop = Arc::new(AtomicBool::new(false));
    let pool = ActorPool::spawn(config, native(), link.clone(), stop.clone());
    let expert = BehaviourSpec::Expert { noise: 0.0 }.factory(ID, &Space::Discrete(2)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let mut version = 0;
    for batch in rx.iter() {
        for ep in batch.iter() {
            match ep.tag.policy_version {
                0 => before.push(ep.len()),
                v => {
                    assert_eq!(v, version);
                    after.push(ep.len())
                }
            }
        }
        if before.len() >= 20 && version == 0 {
            version = link.broadcast(expert.clone());
        }
        if after.len() >= 10 || Instant::now() > deadline {
            break;
        }
    }
    stop.store(true, Ordering::SeqCst);
    drop(rx);
    let report = pool.join();
    assert_eq!(version, 1);
    assert!(after.len() >= 10, "no episodes from the new policy");
    // The expert balances the pole for the whole episode; the random policy does not.
    assert!(after.iter().all(|&l| l == 500), "{after:?}");
    assert!(before.iter().all(|&l| l < 200), "{before:?}");
    assert_eq!(report.error, None);
}

#[test]
fn stopping_sends_only_finished_episodes() {
    let (link, rx) = ChannelLink::new(4, random_factory());
    let expert = BehaviourSpec::Expert { noise: 0.0 }.factory(ID, &Space::Discrete(2)).unwrap();
    link.broadcast(expert);
    let config = PoolConfig { actors: 2, episodes: None, batch_steps: 10_000, ..PoolConfig::default() };
    let stop = Arc::new(AtomicBool::new(false));
    let pool = ActorPool::spawn(config, native(), link, stop.clone());
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::SeqCst);
    let t = Instant::now();
    let batches: Vec<EpisodeBatch> = rx.iter().collect();
    let report = pool.join();
    assert!(t.elapsed() < Duration::from_secs(5));
    let episodes: Vec<usize> = batches.iter().flat_map(|b| b.iter().map(|e| e.len())).collect();
    assert!(!episodes.is_empty());
    assert!(episodes.iter().all(|&l| l == 500), "an unfinished episode was sent: {episodes:?}");
    assert_eq!(report.episodes as usize, episodes.len());
}

#[test]
fn episodes_sent_in_fragments_join_into_the_episodes_sent_whole() {
    use frl_dataset::episodes::FragmentJoiner;
    let collect = |fragment_steps: Option<usize>| {
        let n = 60;
        let config = PoolConfig {
            actors: 2,
            seed: 5,
            episodes: Some(n),
            batch_steps: 1,
            fragment_steps,
            ..PoolConfig::default()
        };
        let (link, rx) = ChannelLink::new(2, random_factory());
        let pool = ActorPool::spawn(config, native(), link, Arc::new(AtomicBool::new(false)));
        let (mut joiner, mut fragments, mut longest) = (FragmentJoiner::default(), 0, 0);
        let mut episodes = BTreeMap::new();
        for batch in rx.iter() {
            for ep in batch.iter() {
                fragments += 1;
                longest = longest.max(ep.len());
            }
            for ep in joiner.join(&batch).iter() {
                let prev = episodes.insert(
                    ep.tag.index,
                    (
                        ep.observations.to_vec(),
                        ep.actions.to_vec(),
                        ep.rewards.to_vec(),
                        ep.terminated.to_vec(),
                        ep.truncated.to_vec(),
                    ),
                );
                assert!(prev.is_none(), "episode {} joined twice", ep.tag.index);
            }
        }
        let report = pool.join();
        assert_eq!((report.episodes, report.error, joiner.open()), (n, None, 0));
        assert_eq!(episodes.len() as u64, n);
        (episodes, fragments, longest)
    };
    let (whole, sent_whole, _) = collect(None);
    let (joined, sent_fragments, longest) = collect(Some(7));
    assert_eq!(sent_whole, 60);
    assert!(sent_fragments > 3 * sent_whole && longest <= 7, "{sent_fragments} fragments, longest {longest} steps");
    assert_eq!(joined, whole);
}
