//! The measurements behind `frl bench`: training steps of each head and of the synthetic-benchmark MLP, envs,
//! collection, the DT step, DQN updates, single tensor ops, the online loop and device timings. [`cli`] has the
//! subcommands and what they print, [`torch`] the PyTorch baselines run beside them.

pub mod cli;
pub mod torch;

use std::time::Instant;

use burn::optim::{AdamConfig, AdamWConfig, GradientsParams};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use frl_heads::{FourierHeadConfig, Head, HeadConfig, MixtureHeadConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use frl_toy::train::ToyModel;

/// Shapes and repetitions of the head benchmark.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadBench {
    /// Rows per step.
    pub batch: usize,
    /// Feature size.
    pub dim: usize,
    /// Bins.
    pub bins: usize,
    /// Fourier frequencies.
    pub frequencies: usize,
    /// Timed steps per head (after warm-up).
    pub steps: usize,
    /// Timed steps of the toy MLP.
    pub toy_steps: usize,
    /// The heads to time; empty: [`HeadBench::default_heads`] and the toy MLP.
    #[serde(default)]
    pub heads: Vec<HeadConfig>,
}

impl Default for HeadBench {
    fn default() -> Self {
        Self { batch: 4096, dim: 128, bins: 64, frequencies: 16, steps: 20, toy_steps: 2000, heads: Vec::new() }
    }
}

/// One timing line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timing {
    /// What was timed.
    pub name: String,
    /// Milliseconds per step.
    pub ms_per_step: f64,
}

impl HeadBench {
    /// The heads timed when none are named: linear, Fourier with and without its regulariser, GMM K=2.
    pub fn default_heads(&self) -> Vec<HeadConfig> {
        vec![
            HeadConfig::Linear,
            HeadConfig::Fourier(FourierHeadConfig::new(self.frequencies, 0.0)),
            HeadConfig::Fourier(FourierHeadConfig::new(self.frequencies, 1e-6)),
            HeadConfig::Mixture(MixtureHeadConfig::new(2)),
        ]
    }

    /// The heads [`HeadBench::run`] times, in order: those named, else [`HeadBench::default_heads`].
    pub fn heads_timed(&self) -> Vec<HeadConfig> {
        if self.heads.is_empty() { self.default_heads() } else { self.heads.clone() }
    }

    /// Times forward + cross-entropy + backward + AdamW step for each head (the heads' steps taken in turn, each
    /// head's median reported, so that the machine's drift falls on all heads alike), the same on the host path,
    /// then the toy MLP + Fourier step.
    pub fn run(&self, mut report: impl FnMut(&Timing)) -> anyhow::Result<Vec<Timing>> {
        let device = frl_learner::backend::training_device();
        let mut rng = StdRng::seed_from_u64(0);
        let mut out = Vec::new();
        let mut graph = Vec::new();
        for head_cfg in self.heads_timed() {
            graph.push(self.head_step(&head_cfg, &device)?);
        }
        let mut host = Vec::new();
        for head_cfg in self.heads_timed() {
            host.extend(self.host_head_step(&head_cfg, &device)?);
        }
        for steps in [graph, host] {
            let (names, mut steps): (Vec<String>, Vec<Step>) = steps.into_iter().unzip();
            for (name, ms_per_step) in names.into_iter().zip(in_turn(&mut steps, 3, self.steps)) {
                let t = Timing { name, ms_per_step };
                report(&t);
                out.push(t);
            }
        }
        if !self.heads.is_empty() {
            return Ok(out);
        }
        let toy_head = HeadConfig::Fourier(FourierHeadConfig::new(12, 0.0));
        let mut model = ToyModel::new(&toy_head, 50, &mut rng, &device)?;
        let toy_spec = frl_toy::RunSpec {
            dataset: frl_toy::Dataset::Gaussian,
            head: toy_head,
            seed: 0,
            epochs: 1,
            bins: 50,
            batch_size: 32,
            lr: 1e-3,
        };
        let mut host = frl_toy::direct::HostToy::new(&toy_spec, &model)
            .ok_or_else(|| anyhow::anyhow!("the toy Fourier model has no host path"))?;
        let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
        let xs: Vec<f32> = (0..64).map(|_| rng.random_range(0..50) as f32).collect();
        let ys: Vec<usize> = (0..32).map(|_| rng.random_range(0..50)).collect();
        let x = Tensor::<2>::from_data(TensorData::new(xs.clone(), [32, 2]), &device);
        let y = Tensor::<1, Int>::from_data(
            TensorData::new(ys.iter().map(|&v| v as i64).collect::<Vec<_>>(), [32]),
            &device,
        );
        let mut step = || {
            let loss = model.head.loss(model.features(x.clone()), y.clone()).total;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-3, model.clone(), grads);
        };
        let t = Timing {
            name: "toy MLP + Fourier N=12 batch 32 fwd+bwd+Adam".into(),
            ms_per_step: time(&mut step, 50, self.toy_steps),
        };
        report(&t);
        out.push(t);
        let rows: Vec<u32> = (0..32).collect();
        let mut host_step = || {
            std::hint::black_box(host.step(&xs, &ys, &rows, 1e-3));
        };
        let t = Timing {
            name: "toy MLP + Fourier N=12 batch 32 fwd+bwd+Adam, host path (frl toy)".into(),
            ms_per_step: time(&mut host_step, 50, self.toy_steps),
        };
        report(&t);
        out.push(t);
        Ok(out)
    }
}

/// One training step to time, as a closure over its model and data.
type Step = Box<dyn FnMut()>;

/// Milliseconds per call of each of `steps`: `warm` untimed calls each, then `rounds` rounds that call every step
/// once (each round starting one step further on), each step's median.
fn in_turn(steps: &mut [Step], warm: usize, rounds: usize) -> Vec<f64> {
    for step in steps.iter_mut() {
        for _ in 0..warm {
            step();
        }
    }
    let n = steps.len();
    let mut samples = vec![Vec::with_capacity(rounds); n];
    for r in 0..rounds.max(1) {
        for k in 0..n {
            let i = (r + k) % n;
            let t0 = Instant::now();
            steps[i]();
            samples[i].push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    samples
        .into_iter()
        .map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect()
}

impl HeadBench {
    /// Times one head's forward + cross-entropy + backward + AdamW step on `device` (the loss is read back every
    /// step, so asynchronous devices are timed to completion).
    pub fn time_head(&self, head_cfg: &HeadConfig, device: &burn::tensor::Device) -> anyhow::Result<Timing> {
        let (name, step) = self.head_step(head_cfg, device)?;
        Ok(Timing { name, ms_per_step: in_turn(&mut [step], 3, self.steps)[0] })
    }

    /// One head's training step as [`HeadBench::time_head`] times it, with its name.
    fn head_step(&self, head_cfg: &HeadConfig, device: &burn::tensor::Device) -> anyhow::Result<(String, Step)> {
        let mut rng = StdRng::seed_from_u64(0);
        let mut head = head_cfg.init(self.dim, self.bins, &mut rng, device)?;
        let mut optim = AdamWConfig::new().init();
        let x = Tensor::<2>::random([self.batch, self.dim], Distribution::Normal(0.0, 1.0), device);
        let y: Vec<i64> = (0..self.batch).map(|_| rng.random_range(0..self.bins as i64)).collect();
        let y = Tensor::<1, Int>::from_data(TensorData::new(y, [self.batch]), device);
        let step = move || {
            let loss = head.loss(x.clone(), y.clone()).total;
            std::hint::black_box(loss.clone().into_scalar::<f32>());
            let grads = GradientsParams::from_grads(loss.backward(), &head);
            head = optim.step(1e-4, head.clone(), grads);
        };
        Ok((format!("{head_cfg} head b{} d{} m{} fwd+bwd+AdamW", self.batch, self.dim, self.bins), Box::new(step)))
    }
}

impl HeadBench {
    /// The same step as [`HeadBench::time_head`] on the host path (`frl_heads::host`, one thread, Adam), from the
    /// same initial head, with its name; `None` for a head without a host path.
    fn host_head_step(
        &self,
        head_cfg: &HeadConfig,
        device: &burn::tensor::Device,
    ) -> anyhow::Result<Option<(String, Step)>> {
        use frl_heads::host::{Adam, HostHead, variant_name};
        if !HostHead::supports(head_cfg) {
            return Ok(None);
        }
        let mut rng = StdRng::seed_from_u64(0);
        let graph = head_cfg.init(self.dim, self.bins, &mut rng, device)?;
        let prefix = format!("{}.", variant_name(head_cfg));
        let values: std::collections::HashMap<String, Vec<f32>> =
            frl_learner::params::named_params(&graph).into_iter().map(|p| (p.name, p.data)).collect();
        let mut head =
            HostHead::new(head_cfg, self.dim, self.bins, |name| values.get(&format!("{prefix}{name}")).cloned())
                .ok_or_else(|| anyhow::anyhow!("{head_cfg}: the host head misses a parameter of the graph head"))?;
        let x: Vec<f32> = (0..self.batch * self.dim).map(|_| rng.random_range(-2.0..2.0)).collect();
        let y: Vec<usize> = (0..self.batch).map(|_| rng.random_range(0..self.bins)).collect();
        let mut d_x = vec![0.0; x.len()];
        let mut optim = Adam::new(1e-8);
        let step = move || {
            for p in head.params_mut() {
                p.grad.fill(0.0);
            }
            std::hint::black_box(head.loss_backward(&x, &y, &mut d_x));
            optim.step(1e-4, head.params_mut());
        };
        let name = format!("{head_cfg} head b{} d{} m{} fwd+bwd+Adam, host path", self.batch, self.dim, self.bins);
        Ok(Some((name, Box::new(step))))
    }
}

fn time(step: &mut dyn FnMut(), warm: usize, steps: usize) -> f64 {
    for _ in 0..warm {
        step();
    }
    let t0 = Instant::now();
    for _ in 0..steps {
        step();
    }
    t0.elapsed().as_secs_f64() * 1e3 / steps.max(1) as f64
}

/// Steps per second of each native environment on one thread (episodes auto-reset, actions cycle through a
/// fixed pattern), over `steps` steps each.
pub fn bench_envs(steps: usize, mut report: impl FnMut(&Timing)) -> anyhow::Result<Vec<Timing>> {
    use frl_envs::{Action, Space};
    let mut out = Vec::new();
    for id in frl_envs::NATIVE_IDS {
        let mut env = frl_envs::make(id)?;
        let actions: Vec<Action> = match env.action_space() {
            Space::Discrete(n) => (0..n).map(Action::Discrete).collect(),
            Space::Box { .. } => [-1.0f32, 0.3, 1.0].iter().map(|&a| Action::Continuous(vec![a])).collect(),
        };
        env.reset(Some(0))?;
        let t0 = Instant::now();
        let mut checksum = 0.0;
        for i in 0..steps {
            let step = env.step(&actions[(i / 3) % actions.len()])?;
            checksum += step.reward;
            if step.terminated || step.truncated {
                env.reset(None)?;
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        std::hint::black_box(checksum);
        let t = Timing { name: format!("{id} steps/s (one thread)"), ms_per_step: 1e3 * secs / steps.max(1) as f64 };
        report(&t);
        out.push(t);
    }
    Ok(out)
}

/// Steps/s of collecting `env` episodes with the random policy: a plain loop on one thread, and the actor pool with
/// 1 and 2 actors (the consumer only counts), and two plain loops at once (what the machine gives two threads). The three are measured in turn `rounds` times; each row is the median.
pub fn bench_collect(env_id: &str, steps: u64, rounds: usize) -> anyhow::Result<Vec<(String, f64)>> {
    let names = [
        "plain loop, one thread (step)",
        "actor pool, 1 actor",
        "actor pool, 2 actors",
        "plain loops, 2 threads (step)",
        "plain loop, one thread (step_into)",
    ];
    let mut samples = vec![Vec::new(); 5];
    for _ in 0..rounds.max(1) {
        samples[0].push(plain_loop(env_id, steps, false)?);
        samples[4].push(plain_loop(env_id, steps, true)?);
        for actors in [1, 2] {
            samples[actors].push(pool_rate(env_id, steps, actors)?);
        }
        let both = std::thread::scope(|s| {
            let a = s.spawn(|| plain_loop(env_id, steps, false));
            let b = plain_loop(env_id, steps, false);
            a.join().expect("plain loop thread").and_then(|a| Ok(a + b?))
        })?;
        samples[3].push(both);
    }
    Ok(names
        .iter()
        .zip(samples)
        .map(|(n, mut v)| {
            v.sort_by(f64::total_cmp);
            (n.to_string(), v[v.len() / 2])
        })
        .collect())
}

/// Steps/s of a plain single-thread loop with random actions, through `Env::step` or (`into`) `Env::step_into` with
/// one reused observation buffer.
fn plain_loop(env_id: &str, steps: u64, into: bool) -> anyhow::Result<f64> {
    use frl_envs::behaviour::random_action;
    use rand::SeedableRng;

    let mut env = frl_envs::make(env_id)?;
    let space = env.action_space();
    let mut rng = frl_rollout::EpisodeRng::seed_from_u64(0);
    env.reset(Some(0))?;
    let t0 = Instant::now();
    let mut checksum = 0.0;
    let mut obs = Vec::with_capacity(16);
    for _ in 0..steps {
        let action = random_action(&space, &mut rng);
        let (reward, done) = if into {
            obs.clear();
            let t = env.step_into(&action, &mut obs)?;
            (t.reward, t.terminated || t.truncated)
        } else {
            let s = env.step(&action)?;
            (s.reward, s.terminated || s.truncated)
        };
        checksum += reward;
        if done {
            env.reset(None)?;
        }
    }
    std::hint::black_box(checksum);
    Ok(steps as f64 / t0.elapsed().as_secs_f64())
}

/// Steps/s of the actor pool with the random policy; each actor collects about `steps` steps.
fn pool_rate(env_id: &str, steps: u64, actors: usize) -> anyhow::Result<f64> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use frl_envs::BehaviourSpec;

    use frl_rollout::{ActorPool, ChannelLink, EnvFactory, PoolConfig};

    let env = frl_envs::make(env_id)?;
    let factory = BehaviourSpec::Random.factory(env_id, &env.action_space())?;
    let (link, rx) = ChannelLink::new(4 * actors, factory);
    let id = env_id.to_string();
    let make: EnvFactory = Arc::new(move || frl_envs::make(&id));
    let stop = Arc::new(AtomicBool::new(false));
    let config = PoolConfig { actors, episodes: None, ..PoolConfig::default() };
    let t0 = Instant::now();
    let pool = ActorPool::spawn(config, make, link, stop.clone());
    let mut got = 0u64;
    for batch in rx.iter() {
        got += batch.steps() as u64;
        if got >= steps * actors as u64 {
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    drop(rx);
    pool.join();
    Ok(got as f64 / secs)
}

/// Milliseconds per Decision Transformer training step — the DT agent's own `train_step`, the one `frl train` runs
/// (forward → loss → backward → AdamW with global clipping) — for `config` with `batch` random windows of a 3-dim
/// observation / 1-dim action task, median of `steps` timed steps after two warm-up steps; the batch split into
/// `shards` parts on parallel threads (`train.shards`).
pub fn bench_dt(
    config: &frl_agents::dt::DecisionTransformerConfig,
    batch: usize,
    steps: usize,
    shards: usize,
) -> anyhow::Result<f64> {
    bench_dt_on(config, batch, steps, shards, &frl_learner::backend::training_device())
}

/// A 3-dim observation, 1-dim action data spec for benchmarks.
fn bench_spec() -> frl_learner::DataSpec {
    frl_learner::DataSpec {
        env: "Pendulum-v1".into(),
        obs_dim: 3,
        action_space: frl_envs::Space::vector(&[-1.0], &[1.0]),
        obs_mean: vec![0.0; 3],
        obs_std: vec![1.0; 3],
        best_return: 0.0,
    }
}

/// A full batch of `b` windows of `k` steps (every position real) from host arrays, with dropout seed `seed`.
fn dt_batch(
    input: frl_agents::dt::DtInput,
    targets: Vec<i64>,
    seed: u64,
    device: &burn::tensor::Device,
) -> frl_agents::dt::Batch {
    let n = targets.len();
    let b = input.states.dims()[0];
    frl_agents::dt::Batch {
        input,
        rows: Tensor::<1, Int>::arange(0..n as i64, device),
        targets: Tensor::<2, Int>::from_data(TensorData::new(targets, [n, 1]), device),
        lengths: vec![n / b; b],
        dropout_seed: seed,
        first_window: 0,
    }
}

/// [`bench_dt`] on a given device.
pub fn bench_dt_on(
    config: &frl_agents::dt::DecisionTransformerConfig,
    batch: usize,
    steps: usize,
    shards: usize,
    device: &burn::tensor::Device,
) -> anyhow::Result<f64> {
    use frl_agents::dt::Dt;
    use frl_agents::dt::random_input;
    use frl_learner::Trainable;
    let device = device.clone();
    let mut rng = StdRng::seed_from_u64(0);
    let mut agent = Dt::new(config, &bench_spec(), &mut rng, &device)?;
    let mut opt = frl_learner::Optimizers::new(frl_learner::AdamWConfig::default()).with_shards(shards);
    let k = config.context;
    let targets: Vec<i64> = (0..batch * k).map(|_| rng.random_range(0..config.bins as i64)).collect();
    let mut times = Vec::with_capacity(steps);
    for i in 0..steps + 2 {
        let t0 = Instant::now();
        let b = dt_batch(random_input(batch, k, 3, 1, &device), targets.clone(), i as u64, &device);
        opt.begin_step(i as u64 + 1, 1e-4);
        agent.train_step(b, &mut opt)?;
        if i >= 2 {
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Median milliseconds per training step of the forecaster `config` (batch `batch` of random windows, AdamW) on
/// the CPU training device.
pub fn bench_forecast(config: &frl_forecast::ForecastConfig, batch: usize, steps: usize) -> anyhow::Result<f64> {
    use frl_learner::Trainable;
    let device = frl_learner::backend::training_device();
    let mut rng = StdRng::seed_from_u64(0);
    let spec = frl_forecast::ForecastSpec { pool: Default::default(), pool_series: 0, pool_values: 0 };
    let mut model = frl_forecast::Forecaster::new(config, &spec, &mut rng, &device)?;
    let mut opt = frl_learner::Optimizers::new(frl_learner::AdamWConfig {
        weight_decay: 0.0,
        grad_clip: 1.0,
        ..Default::default()
    });
    let t = config.window_tokens();
    let vocab = config.tokenizer.n_tokens as i64;
    let mut times = Vec::with_capacity(steps);
    for i in 0..steps + 2 {
        let tokens: Vec<i64> = (0..batch * t).map(|_| rng.random_range(2..vocab)).collect();
        let targets: Vec<i64> = (0..batch * config.prediction).map(|_| rng.random_range(2..vocab)).collect();
        let t0 = Instant::now();
        let b = frl_forecast::ForecastBatch {
            tokens: Tensor::<2, Int>::from_data(TensorData::new(tokens, [batch, t]), &device),
            targets: Tensor::<1, Int>::from_data(TensorData::new(targets, [batch * config.prediction]), &device),
            dropout_seed: i as u64,
        };
        opt.begin_step(i as u64 + 1, 1e-3);
        model.train_step(b, &mut opt)?;
        if i >= 2 {
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// One device's figures in `frl bench train`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceTimings {
    /// Backend and adapter.
    pub backend: String,
    /// Milliseconds per training step of the default DT config (batch 64, context 20, 3 layers, d 128).
    pub dt_ms_per_step: f64,
    /// Training steps per second of the same.
    pub dt_steps_per_s: f64,
    /// Milliseconds per Fourier head (N=16, b4096 d128 m64) forward + backward + AdamW step.
    pub fourier_head_ms: f64,
}

/// Losses of the same model, batches and AdamW steps on the CPU and on another device.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LossAgreement {
    /// Loss before each step on the CPU.
    pub cpu: Vec<f32>,
    /// The same on the other device.
    pub other: Vec<f32>,
    /// Largest relative difference.
    pub max_rel_diff: f64,
    /// The tolerance checked against.
    pub tolerance: f64,
    /// Whether every loss agrees within the tolerance.
    pub pass: bool,
}

/// What `frl bench train` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainBenchReport {
    /// The device asked for.
    pub device: frl_learner::backend::DeviceChoice,
    /// Its figures.
    pub timings: DeviceTimings,
    /// The CPU's figures, measured in the same run (when the device is not the CPU).
    pub cpu: Option<DeviceTimings>,
    /// Loss agreement against the CPU (when the device is not the CPU).
    pub agreement: Option<LossAgreement>,
    /// DT steps of each asked-for shape on the device, with PyTorch's on the same device when it was run.
    #[serde(default)]
    pub shapes: Vec<ShapeTiming>,
}

/// A Decision Transformer shape `frl bench train` times (linear head, 64 bins, d 128, a Pendulum-sized input).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DtShape {
    /// Rows per batch.
    pub batch: usize,
    /// Steps per window (3 tokens each).
    pub context: usize,
    /// GPT blocks.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
}

impl DtShape {
    /// The default DT config: batch 64, context 20, 3 layers, 1 head.
    pub const DEFAULT: DtShape = DtShape { batch: 64, context: 20, layers: 3, heads: 1 };
    /// The paper's Atari DT size: batch 128, context 30, 6 layers, 8 heads.
    pub const ATARI: DtShape = DtShape { batch: 128, context: 30, layers: 6, heads: 8 };

    /// The shapes to time: the default config, the Atari-sized one with `atari`, and with `sweep` the default
    /// config at batch 16, 32, 128 and 256 too (how the step scales with the batch).
    pub fn list(atari: bool, sweep: bool) -> Vec<DtShape> {
        let mut v = vec![DtShape::DEFAULT];
        if sweep {
            for batch in [16, 32, 128, 256] {
                v.push(DtShape { batch, ..DtShape::DEFAULT });
            }
        }
        if atari {
            v.push(DtShape::ATARI);
        }
        v
    }

    /// The DT config of this shape.
    pub fn config(&self) -> frl_agents::dt::DecisionTransformerConfig {
        frl_agents::dt::DecisionTransformerConfig {
            context: self.context,
            layers: self.layers,
            heads: self.heads,
            ..Default::default()
        }
    }
}

impl std::fmt::Display for DtShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DT b{} ctx{} L{} H{} d128", self.batch, self.context, self.layers, self.heads)
    }
}

/// Times PyTorch's step of a DT shape on the bench device (milliseconds).
pub type TorchStep<'a> = dyn Fn(&DtShape) -> anyhow::Result<f64> + 'a;

/// One DT shape's step on the bench device, and PyTorch's (`scripts/torch_dt_step.py`) on the same device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapeTiming {
    /// The shape.
    pub shape: DtShape,
    /// frl's milliseconds per training step.
    pub frl_ms: f64,
    /// PyTorch's milliseconds per step of the same shape, when it ran.
    pub torch_ms: Option<f64>,
}

/// Times DT training and the Fourier head on `device`.
pub fn device_timings(backend: &str, device: &burn::tensor::Device, steps: usize) -> anyhow::Result<DeviceTimings> {
    let config = frl_agents::dt::DecisionTransformerConfig::default();
    let dt_ms = bench_dt_on(&config, 64, steps, 1, device)?;
    let heads = HeadBench { steps: steps.max(5), ..HeadBench::default() };
    let fourier = heads.time_head(&HeadConfig::Fourier(FourierHeadConfig::new(16, 0.0)), device)?;
    Ok(DeviceTimings {
        backend: backend.to_string(),
        dt_ms_per_step: dt_ms,
        dt_steps_per_s: 1e3 / dt_ms,
        fourier_head_ms: fourier.ms_per_step,
    })
}

/// Trains the same DT (Fourier head, dropout 0.1: its masks are drawn on the host, the same on every device) from the
/// same weights on the same batches for `steps` AdamW steps on the CPU and on `device`, and compares the losses
/// (relative `tolerance`).
pub fn loss_agreement(device: &burn::tensor::Device, steps: usize, tolerance: f64) -> anyhow::Result<LossAgreement> {
    use frl_agents::dt::Dt;
    use frl_agents::dt::{DecisionTransformerConfig, DtInput};
    use frl_learner::Trainable;

    let config = DecisionTransformerConfig {
        head: HeadConfig::Fourier(FourierHeadConfig::new(8, 1e-6)),
        ..DecisionTransformerConfig::default()
    };
    let (b, k, obs, bins) = (16, config.context, 3, config.bins);
    let cpu = frl_learner::backend::training_device();
    let mut rng = StdRng::seed_from_u64(11);
    let agent = Dt::new(&config, &bench_spec(), &mut rng, &cpu)?;
    // (returns, states, actions, targets) of each step's batch, drawn once on the host
    type HostBatch = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<i64>);
    let batches: Vec<HostBatch> = (0..steps)
        .map(|_| {
            let mut normal = |n: usize| (0..n).map(|_| rng.sample::<f32, _>(rand_distr::StandardNormal)).collect();
            let (r, s, a) = (normal(b * k), normal(b * k * obs), normal(b * k));
            let y = (0..b * k).map(|_| rng.random_range(0..bins as i64)).collect();
            (r, s, a, y)
        })
        .collect();
    let run = |device: &burn::tensor::Device| -> anyhow::Result<Vec<f32>> {
        let mut agent = agent.fork(device);
        let mut opt = frl_learner::Optimizers::new(frl_learner::AdamWConfig::default());
        let mut losses = Vec::with_capacity(steps);
        for (i, (r, s, a, y)) in batches.iter().enumerate() {
            let input = DtInput {
                returns: Tensor::from_data(TensorData::new(r.clone(), [b, k, 1]), device),
                states: Tensor::from_data(TensorData::new(s.clone(), [b, k, obs]), device),
                actions: Tensor::from_data(TensorData::new(a.clone(), [b, k, 1]), device),
                timesteps: Tensor::<1, Int>::arange(0..k as i64, device).unsqueeze_dim::<2>(0).repeat_dim(0, b),
            };
            opt.begin_step(i as u64 + 1, 3e-4);
            let scalars = agent.train_step(dt_batch(input, y.clone(), i as u64, device), &mut opt)?;
            losses.push(scalars[0].1 as f32);
        }
        Ok(losses)
    };
    let on_cpu = run(&cpu)?;
    let other = run(device)?;
    let max_rel_diff =
        on_cpu.iter().zip(&other).map(|(a, b)| ((a - b).abs() / a.abs().max(1e-6)) as f64).fold(0.0, f64::max);
    let pass = max_rel_diff <= tolerance && on_cpu.iter().chain(&other).all(|x| x.is_finite());
    Ok(LossAgreement { cpu: on_cpu, other, max_rel_diff, tolerance, pass })
}

/// `frl bench train`: DT training and Fourier head speed on `choice`; for a non-CPU device also the CPU's figures in
/// the same run and the loss agreement between them.
pub fn bench_train(
    choice: frl_learner::backend::DeviceChoice,
    steps: usize,
    shapes: &[DtShape],
    torch: Option<&TorchStep<'_>>,
    mut report: impl FnMut(&str),
) -> anyhow::Result<TrainBenchReport> {
    let selected = frl_learner::backend::select(choice)?;
    report(&format!("device: {choice} = {}", selected.name));
    let timings = device_timings(&selected.name, &selected.device, steps)?;
    report(&format!("{timings:?}"));
    let (cpu, agreement) = if choice == frl_learner::backend::DeviceChoice::Cpu {
        (None, None)
    } else {
        let cpu =
            device_timings(frl_learner::backend::backend_name(), &frl_learner::backend::training_device(), steps)?;
        report(&format!("{cpu:?}"));
        let agreement = loss_agreement(&selected.device, 3, 1e-3)?;
        (Some(cpu), Some(agreement))
    };
    let mut timed = Vec::new();
    for shape in shapes {
        let frl_ms = if *shape == DtShape::DEFAULT {
            timings.dt_ms_per_step
        } else {
            bench_dt_on(&shape.config(), shape.batch, steps, 1, &selected.device)?
        };
        let torch_ms = torch.map(|run| run(shape)).transpose()?;
        report(&format!("{shape}: frl {frl_ms:.2} ms, PyTorch {torch_ms:?} ms"));
        timed.push(ShapeTiming { shape: *shape, frl_ms, torch_ms });
    }
    Ok(TrainBenchReport { device: choice, timings, cpu, agreement, shapes: timed })
}

/// One round of `frl bench online`: `frl collect` and the live loop with the same actors and env steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OnlineBenchRound {
    /// Env steps/s of `frl collect` (random policy, dataset written).
    pub collect_steps_per_sec: f64,
    /// Env steps/s of the live loop (actors acting with the same random policy as collect's).
    pub online_steps_per_sec: f64,
    /// Updates/s the learner made meanwhile.
    pub updates_per_sec: f64,
    /// Mean policy lag of the episodes the learner received.
    pub mean_policy_lag: f64,
}

/// Whether the learner stalls the actors: env steps/s of the live loop (a DQN learner training as fast as it can,
/// `throttle = false`, actors acting with the random behaviour policy as `frl collect` does) against `frl collect`
/// with the same number of actors, over about `env_steps` steps each, in alternation `rounds` times.
pub fn bench_online(
    env_id: &str,
    actors: usize,
    env_steps: u64,
    rounds: usize,
) -> anyhow::Result<Vec<OnlineBenchRound>> {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    let scratch = std::env::temp_dir().join(format!("frl-bench-online-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let result = (|| {
        let mut out = Vec::new();
        for round in 0..rounds.max(1) {
            // Collect: episodes until about `env_steps` steps, estimated from a first short run.
            let probe = frl_rollout::collect::collect(
                &frl_rollout::collect::CollectJob {
                    policy: Some(frl_envs::BehaviourSpec::Random),
                    actors,
                    ..frl_rollout::collect::CollectJob::new(env_id, 200, scratch.join(format!("probe{round}")))
                },
                Arc::new(AtomicBool::new(false)),
                false,
            )?;
            let episodes = (env_steps as f64 * probe.episodes as f64 / probe.steps.max(1) as f64).ceil() as u64;
            let c = frl_rollout::collect::collect(
                &frl_rollout::collect::CollectJob {
                    policy: Some(frl_envs::BehaviourSpec::Random),
                    actors,
                    ..frl_rollout::collect::CollectJob::new(env_id, episodes.max(1), scratch.join(format!("c{round}")))
                },
                Arc::new(AtomicBool::new(false)),
                false,
            )?;
            let text = format!(
                "name = \"online{round}\"\nruns_dir = \"{}\"\nagent = \"dqn\"\n[online]\nenv = \"{env_id}\"\n\
                 behaviour = \"random\"\nenv_steps = {}\nactors = {actors}\n\
                 replay_capacity = 100000\nlearning_starts = 1000\nupdates_per_step = 1.0\nthrottle = false\ndeterministic = false\n\
                 broadcast_every = 100\n[train]\nbatch_size = 128\nlog_every = 100\nplot_every = 1000000\n\
                 checkpoint_every = 1000000\n[eval]\nepisodes = 1\nactors = 1\n",
                scratch.join("runs").display(),
                c.steps
            );
            let job = frl_learner::TrainJob::parse(&text)?;
            let options = frl_learner::TrainOptions { quiet: true, ..Default::default() };
            let s = frl_agents::train(&job, &options, Arc::new(AtomicBool::new(false)))?;
            let o = s.online.ok_or_else(|| anyhow::anyhow!("the online run reported no rates"))?;
            out.push(OnlineBenchRound {
                collect_steps_per_sec: c.steps as f64 / c.seconds,
                online_steps_per_sec: o.env_steps_per_sec,
                updates_per_sec: o.updates_per_sec,
                mean_policy_lag: o.mean_policy_lag,
            });
        }
        Ok(out)
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Milliseconds per update of the `dqn` agent (its own `train_step`: double-DQN target, projection, loss, backward,
/// AdamW with clip 10) at CartPole's shapes (4 observations, 2 actions, hidden 120-84, 101 atoms, batch 128) with
/// `head` (`None`: scalar Q-values), median of `steps` updates after 5 warm-up updates, on random transitions.
pub fn bench_dqn(head: Option<HeadConfig>, steps: usize) -> anyhow::Result<f64> {
    use frl_agents::dqn::{Dqn, DqnConfig};
    use frl_dataset::episodes::{EpisodeBatch, EpisodeTag};
    use frl_learner::{OnlineAgent, Trainable};

    let device = frl_learner::backend::training_device();
    let spec = frl_learner::DataSpec {
        env: "CartPole-v1".into(),
        obs_dim: 4,
        action_space: frl_envs::Space::Discrete(2),
        obs_mean: vec![0.0; 4],
        obs_std: vec![1.0; 4],
        best_return: 0.0,
    };
    let config = DqnConfig { head, ..DqnConfig::default() };
    let mut rng = StdRng::seed_from_u64(0);
    let mut agent = Dqn::new(&config, &spec, &mut rng, &device)?;
    let mut episodes = EpisodeBatch::new(4, 1);
    for e in 0..20u64 {
        let obs = |rng: &mut StdRng| (0..4).map(|_| rng.random_range(-1.0..1.0)).collect::<Vec<f32>>();
        episodes.begin(&obs(&mut rng));
        for t in 0..100 {
            let a = frl_envs::Action::Discrete(rng.random_range(0..2));
            episodes.record(&a, 1.0, &obs(&mut rng), false, t == 99);
        }
        episodes.finish(EpisodeTag { index: e, seed: e, policy_version: 0 });
    }
    let mut replay = agent.replay(10_000)?;
    agent.insert(&mut replay, &episodes)?;
    let adam = frl_learner::AdamWConfig { weight_decay: 0.0, grad_clip: 10.0, ..Default::default() };
    let mut opt = frl_learner::Optimizers::new(adam);
    let mut times = Vec::with_capacity(steps);
    for i in 0..steps + 5 {
        let t0 = Instant::now();
        let batch = agent.sample(&replay, 128, &mut rng, &device);
        opt.begin_step(i as u64 + 1, 1e-3);
        agent.train_step(batch, &mut opt)?;
        if i >= 5 {
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// The single operations `frl bench ops` times, each with its shapes (the same list as `scripts/torch_ops.py`).
pub const OPS: [&str; 8] = [
    "matmul 4096x128 @ 128x64",
    "matmul 128x4096 @ 4096x64 (transposed lhs)",
    "matmul 3840x128 @ 128x512",
    "batched matmul 256x90x32 @ 256x32x90",
    "exp 4096x64",
    "gelu (erf) 3840x512",
    "add 3840x512",
    "softmax 256x90x90",
];

/// Milliseconds per call (median of `steps`, after 3 warm-up calls) of each of [`OPS`] on the training device's
/// backend: the linear head's GEMMs, the DT's MLP and attention shapes (batch 64 × 60 tokens, d 128; 4 heads × 90
/// tokens), and elementwise work. Shows where a training step's time goes at the level burn controls.
pub fn bench_ops(steps: usize) -> Vec<Timing> {
    use burn::tensor::activation::{gelu, softmax};
    let device = frl_learner::backend::training_device();
    let r2 = |s: [usize; 2]| Tensor::<2>::random(s, Distribution::Normal(0.0, 1.0), &device);
    let r3 = |s: [usize; 3]| Tensor::<3>::random(s, Distribution::Normal(0.0, 1.0), &device);
    let (x, w) = (r2([4096, 128]), r2([128, 64]));
    let (xt, g) = (r2([4096, 128]), r2([4096, 64]));
    let (h, w1) = (r2([3840, 128]), r2([128, 512]));
    let (q, k) = (r3([256, 90, 32]), r3([256, 32, 90]));
    let logits = r2([4096, 64]);
    let (a, b) = (r2([3840, 512]), r2([3840, 512]));
    let scores = r3([256, 90, 90]);
    let mut out = Vec::new();
    for (i, name) in OPS.iter().enumerate() {
        let op = || match i {
            0 => sink(x.clone().matmul(w.clone())),
            1 => sink(xt.clone().transpose().matmul(g.clone())),
            2 => sink(h.clone().matmul(w1.clone())),
            3 => sink(q.clone().matmul(k.clone())),
            4 => sink(logits.clone().exp()),
            5 => sink(gelu(a.clone())),
            6 => sink(a.clone() + b.clone()),
            _ => sink(softmax(scores.clone(), 2)),
        };
        let mut times = Vec::with_capacity(steps);
        for s in 0..steps + 3 {
            let t0 = Instant::now();
            op();
            if s >= 3 {
                times.push(t0.elapsed().as_secs_f64() * 1e3);
            }
        }
        times.sort_by(f64::total_cmp);
        out.push(Timing { name: (*name).into(), ms_per_step: times[times.len() / 2] });
    }
    out
}

/// Waits for a result (a one-element read forces asynchronous backends to finish).
fn sink<const D: usize>(t: Tensor<D>) {
    std::hint::black_box(t.flatten::<1>(0, D - 1).narrow(0, 0, 1).into_data());
}
