//! The Agent seam: a plug-in agent defined here, outside every crate, trained by the public learner with
//! checkpoints, resume and TensorBoard; a model that is not an agent trained on the same run layer; and every built-in agent (dt, bc, iql) overfitting, resuming bit for bit,
//! stopping on NaN and acting through its checkpoint.

mod common;

use common::{no_stop, serial};

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Int, Tensor, TensorData};
use frl_agents::{self as agents, ActingOverrides};
use frl_dataset::episodes::EpisodeBatch;
use frl_dataset::transitions::Transitions;
use frl_envs::{Action, Space};
use frl_envs::{MarkovPolicy, PolicyFactory};
use frl_heads::head::{argmax, cross_entropy, to_host};
use frl_heads::{AnyHead, Head, HeadConfig};
use frl_learner::checkpoint;
use frl_learner::optim::DEFAULT_GROUP;
use frl_learner::params::{NamedTensor, load_params, named_params};
use frl_learner::{
    Acting, ActionPmfs, Agent, DataSpec, ModelConfig, Optimizers, Scalars, TrainJob, TrainOptions, Trainable, fit,
    load_agent,
};
use frl_rollout::collect::{CollectJob, collect};
use rand::{Rng, RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

fn quiet() -> TrainOptions {
    TrainOptions { resume: false, quiet: true, ..Default::default() }
}

// ------------------------------------------------------------------------------------------------------------------
// A plug-in agent: a linear softmax policy over discrete actions, written against the public API only.

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
struct SoftmaxConfig {
    /// Scales the initial weights.
    init_scale: f32,
}

impl ModelConfig for SoftmaxConfig {
    fn validate(&self) -> anyhow::Result<()> {
        if self.init_scale < 0.0 {
            anyhow::bail!("`init_scale` = {}: must be ≥ 0", self.init_scale);
        }
        Ok(())
    }
}

#[derive(Module, Debug)]
struct SoftmaxNet {
    linear: Linear,
}

struct SoftmaxAgent {
    net: SoftmaxNet,
    spec: DataSpec,
    actions: usize,
}

struct SoftmaxBatch {
    obs: Tensor<2>,
    actions: Tensor<1, Int>,
}

impl Trainable for SoftmaxAgent {
    const KIND: &'static str = "softmax";
    type Config = SoftmaxConfig;
    type Spec = DataSpec;
    type Data = Transitions;
    type Batch = SoftmaxBatch;

    fn new(config: &SoftmaxConfig, spec: &DataSpec, rng: &mut dyn RngCore, device: &Device) -> anyhow::Result<Self> {
        let Space::Discrete(actions) = spec.action_space else { anyhow::bail!("discrete actions only") };
        let linear =
            frl_heads::init::linear(spec.obs_dim, actions, 1.0 / config.init_scale.max(1e-6), 1.0, rng, device);
        Ok(Self { net: SoftmaxNet { linear }, spec: spec.clone(), actions })
    }

    fn sample(&self, data: &Transitions, batch_size: usize, rng: &mut dyn RngCore, device: &Device) -> SoftmaxBatch {
        let b = data.sample(batch_size, rng);
        let actions: Vec<i64> = b.actions.iter().map(|&a| a as i64).collect();
        SoftmaxBatch {
            obs: Tensor::from_data(TensorData::new(b.obs, [b.len, self.spec.obs_dim]), device),
            actions: Tensor::from_data(TensorData::new(actions, [b.len]), device),
        }
    }

    fn train_step(&mut self, batch: SoftmaxBatch, opt: &mut Optimizers) -> anyhow::Result<Scalars> {
        let loss = cross_entropy(self.net.linear.forward(batch.obs), batch.actions);
        Ok(vec![("loss", opt.step(DEFAULT_GROUP, &mut self.net, loss)?)])
    }

    fn params(&self) -> Vec<NamedTensor> {
        named_params(&self.net)
    }

    fn load_params(mut self, values: &HashMap<String, NamedTensor>) -> Result<Self, String> {
        self.net = load_params(self.net, values)?;
        Ok(self)
    }
}

impl Agent for SoftmaxAgent {
    fn prepare(&self, episodes: &EpisodeBatch) -> anyhow::Result<Transitions> {
        let mut t = Transitions::new(episodes, 1, 1.0);
        t.map_observations(|x, out| self.spec.push_normalized(x, out));
        Ok(t)
    }

    fn policy(&self, _acting: &Acting) -> Arc<dyn PolicyFactory> {
        let (net, spec) = (self.net.valid(), self.spec.clone());
        Arc::new(MarkovPolicy::new(format!("softmax over {} actions", self.actions), move |obs, _rng| {
            let mut x = Vec::new();
            spec.push_normalized(obs, &mut x);
            let x = Tensor::<2>::from_data(TensorData::new(x, [1, spec.obs_dim]), &net.devices()[0]);
            Action::Discrete(argmax(&to_host(net.linear.forward(x))))
        }))
    }
}

fn cartpole_data(dir: &Path, episodes: u64) -> std::path::PathBuf {
    let data = dir.join("cartpole");
    let mut c = CollectJob::new("CartPole-v1", episodes, &data);
    c.preset = Some(frl_envs::behaviour::Preset::Medium);
    collect(&c, no_stop(), false).unwrap();
    data
}

/// A 40-step job of `kind` named after it at learning rate `lr`: scalars every 10 steps, plots every 20, a checkpoint
/// every 10 (5 kept).
fn short_job<C: ModelConfig>(dir: &Path, data: &Path, kind: &str, config: &C, lr: f64) -> TrainJob {
    let mut job = TrainJob::new(kind, data, kind, config).unwrap();
    job.runs_dir = dir.join("runs");
    job.train.steps = 40;
    job.train.lr = lr;
    job.train.warmup_steps = 1;
    job.train.checkpoint_every = 10;
    job.train.log_every = 10;
    job.train.plot_every = 20;
    job.train.keep_checkpoints = 5;
    job
}

/// Every parameter and optimiser moment of the newest checkpoint of `job`, by name.
fn newest_state(job: &TrainJob) -> (u64, Vec<NamedTensor>) {
    let (_, path) = checkpoint::list(&job.run_dir().join("checkpoints")).last().cloned().expect("a checkpoint");
    let c = checkpoint::load_as::<serde_json::Value>(&path).unwrap();
    let mut all: Vec<NamedTensor> = c
        .model
        .into_values()
        .map(|mut t| {
            t.name = format!("model.{}", t.name);
            t
        })
        .chain(c.adam.into_values().map(|mut t| {
            t.name = format!("adam.{}", t.name);
            t
        }))
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    (c.meta.step, all)
}

/// Trains `whole` to its end, then a copy that lost its newest checkpoint (as if killed) resumes; both must end
/// with the same bits in every parameter and moment.
fn assert_resume_is_bit_identical(whole: &TrainJob, train: &dyn Fn(&TrainJob, bool) -> anyhow::Result<()>) {
    train(whole, false).unwrap();
    let mut part = whole.clone();
    part.name = format!("{}-part", whole.name);
    let ckpts = part.run_dir().join("checkpoints");
    std::fs::create_dir_all(&ckpts).unwrap();
    let kept = checkpoint::list(&whole.run_dir().join("checkpoints"));
    assert!(kept.len() >= 2, "{kept:?}");
    for (step, path) in &kept {
        if *step < whole.train.steps {
            std::fs::copy(path, ckpts.join(path.file_name().unwrap())).unwrap();
        }
    }
    train(&part, true).unwrap();
    let (sa, a) = newest_state(whole);
    let (sb, b) = newest_state(&part);
    assert_eq!((sa, sb), (whole.train.steps, whole.train.steps));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.name, y.name);
        assert!(x.data == y.data, "{}: {} differs after resuming", whole.name, x.name);
    }
}

#[test]
fn a_plug_in_agent_trains_checkpoints_resumes_and_logs_through_the_public_learner() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = cartpole_data(dir.path(), 6);
    let config = SoftmaxConfig { init_scale: 0.1 };
    let mut job = short_job(dir.path(), &data, SoftmaxAgent::KIND, &config, 0.05);
    job.eval.episodes = 2;
    job.eval.actors = 2;
    let s = fit::<SoftmaxAgent>(&job, &quiet(), no_stop()).unwrap();
    assert_eq!((s.agent.as_str(), s.steps), ("softmax", 40));
    assert!(s.final_loss < s.first_loss, "loss {} -> {}", s.first_loss, s.final_loss);
    assert_eq!(s.eval.as_ref().unwrap().returns.len(), 2);
    assert!(s.smoothness.is_nan(), "no action heads, no smoothness");
    let events: Vec<_> = std::fs::read_dir(job.run_dir()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(events.iter().any(|n| n.to_string_lossy().starts_with("events.out.tfevents")), "{events:?}");

    // The checkpoint records the kind and rebuilds the agent.
    let (_, path) = checkpoint::list(&job.run_dir().join("checkpoints")).last().cloned().unwrap();
    let loaded = load_agent::<SoftmaxAgent>(&path, &Device::flex()).unwrap();
    assert_eq!((loaded.meta.agent.as_str(), loaded.meta.step), ("softmax", 40));
    assert_eq!(loaded.config, SoftmaxConfig { init_scale: 0.1 });
    // The built-in registry does not know it, and says so.
    let e = agents::load_policy(&path, &Device::flex(), &ActingOverrides::default()).err().unwrap().to_string();
    assert!(e.contains("softmax"), "{e}");
    // A bad value in its section names the section and the field.
    let mut bad = job.clone();
    bad.set_agent_field("init_scale", toml::Value::Float(-1.0));
    let e = format!("{:#}", fit::<SoftmaxAgent>(&bad, &quiet(), no_stop()).unwrap_err());
    assert!(e.contains("[softmax]") && e.contains("init_scale"), "{e}");

    let mut whole = job.clone();
    whole.name = "softmax-whole".into();
    whole.eval.episodes = 1;
    assert_resume_is_bit_identical(&whole, &|j, resume| {
        fit::<SoftmaxAgent>(j, &TrainOptions { resume, quiet: true, ..Default::default() }, no_stop()).map(|_| ())
    });
}

// ------------------------------------------------------------------------------------------------------------------
// A model that is not an RL agent: a conditional density of y given x over ordered bins through any head, trained
// on synthetic data by the run layer (no env, no actors).

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
struct DensityConfig {
    hidden: usize,
    head: HeadConfig,
}

impl Default for DensityConfig {
    fn default() -> Self {
        Self { hidden: 16, head: HeadConfig::Linear }
    }
}

impl ModelConfig for DensityConfig {
    fn validate(&self) -> anyhow::Result<()> {
        if self.hidden == 0 {
            anyhow::bail!("`hidden` must be at least 1");
        }
        Ok(self.head.validate()?)
    }
    fn head(&self) -> Option<&HeadConfig> {
        Some(&self.head)
    }
}

/// What a density model is built for: its bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DensitySpec {
    bins: usize,
}

#[derive(Module, Debug)]
struct DensityNet {
    hidden: Linear,
    head: AnyHead,
}

struct DensityModel {
    net: DensityNet,
    bins: usize,
}

struct DensityBatch {
    x: Tensor<2>,
    y: Tensor<1, Int>,
}

impl DensityModel {
    fn features(&self, x: Tensor<2>) -> Tensor<2> {
        burn::tensor::activation::relu(self.net.hidden.forward(x))
    }
}

impl Trainable for DensityModel {
    const KIND: &'static str = "density";
    type Config = DensityConfig;
    type Spec = DensitySpec;
    type Data = Vec<(f32, i64)>;
    type Batch = DensityBatch;

    fn new(config: &DensityConfig, spec: &DensitySpec, rng: &mut dyn RngCore, device: &Device) -> anyhow::Result<Self> {
        let hidden = frl_heads::init::linear(1, config.hidden, 1.0, 1.0, rng, device);
        let head = config.head.init(config.hidden, spec.bins, rng, device)?;
        Ok(Self { net: DensityNet { hidden, head }, bins: spec.bins })
    }

    fn sample(&self, data: &Self::Data, batch_size: usize, rng: &mut dyn RngCore, device: &Device) -> DensityBatch {
        let rows: Vec<(f32, i64)> = (0..batch_size).map(|_| data[rng.next_u64() as usize % data.len()]).collect();
        let (x, y): (Vec<f32>, Vec<i64>) = rows.into_iter().unzip();
        DensityBatch {
            x: Tensor::from_data(TensorData::new(x, [batch_size, 1]), device),
            y: Tensor::from_data(TensorData::new(y, [batch_size]), device),
        }
    }

    fn train_step(&mut self, batch: DensityBatch, opt: &mut Optimizers) -> anyhow::Result<Scalars> {
        let loss = self.net.head.loss(self.features(batch.x), batch.y);
        let (value, read) = opt.step_reading(DEFAULT_GROUP, &mut self.net, loss.total, vec![loss.cross_entropy])?;
        Ok(vec![("loss", value), ("cross_entropy", read[0])])
    }

    fn params(&self) -> Vec<NamedTensor> {
        named_params(&self.net)
    }

    fn load_params(mut self, values: &HashMap<String, NamedTensor>) -> Result<Self, String> {
        self.net = load_params(self.net, values)?;
        Ok(self)
    }

    fn probe_pmfs(&self, probe: &DensityBatch) -> anyhow::Result<Option<ActionPmfs>> {
        let rows = probe.x.dims()[0];
        let pmfs = vec![to_host(self.net.head.pmf(self.features(probe.x.clone())))];
        let targets = frl_agents::common::int_to_host(probe.y.clone())?.into_iter().map(|t| Some(t as usize)).collect();
        let images = (0..rows).map(|r| (r, format!("x{r}"))).collect();
        let axes = vec![frl_learner::BinAxis::Index];
        Ok(Some(ActionPmfs { bins: self.bins, pmfs, targets, images, axes, title: "density".into() }))
    }
}

/// y = 0.8·sin(πx) + noise, binned on [-1, 1]: the same rows for the same seed.
fn density_data(seed: u64, bins: usize) -> Vec<(f32, i64)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..512)
        .map(|_| {
            let x: f32 = rng.random_range(-1.0..1.0);
            let y = (0.8 * (std::f32::consts::PI * x).sin() + rng.random_range(-0.1..0.1)).clamp(-0.999, 0.999);
            (x, ((y + 1.0) / 2.0 * bins as f32) as i64)
        })
        .collect()
}

fn fit_density(job: &TrainJob, resume: bool) -> anyhow::Result<frl_learner::TrainSummary> {
    let options = TrainOptions { resume, quiet: true, ..Default::default() };
    let spec = || Ok(DensitySpec { bins: 16 });
    frl_learner::fit_model::<DensityModel>(job, &options, no_stop(), spec, |m| Ok(density_data(7, m.bins)))
}

#[test]
fn a_model_that_is_not_an_agent_trains_checkpoints_resumes_and_logs_on_the_run_layer() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = DensityConfig { hidden: 16, head: "{ fourier = { frequencies = 4 } }".parse::<HeadConfig>().unwrap() };
    let mut job = short_job(dir.path(), Path::new(""), DensityModel::KIND, &config, 0.02);
    job.train.batch_size = 32;
    let s = fit_density(&job, false).unwrap();
    assert_eq!((s.agent.as_str(), s.steps, s.head.as_str()), ("density", 40, config.head.slug().as_str()));
    assert!(s.final_loss < s.first_loss, "loss {} -> {}", s.first_loss, s.final_loss);
    assert!(s.smoothness.is_finite(), "a head's PMFs are scored: {}", s.smoothness);
    assert!(s.eval.is_none() && s.online.is_none());

    // TensorBoard: train/loss at every logging step, the last one the summary's final loss.
    let scalars = frl_tensorboard::read_scalars(&job.run_dir()).unwrap();
    let loss: Vec<(i64, f32)> = scalars.iter().filter(|e| e.tag == "train/loss").map(|e| (e.step, e.value)).collect();
    assert_eq!(loss.iter().map(|l| l.0).collect::<Vec<_>>(), [10, 20, 30, 40]);
    assert_eq!(loss[3].1, s.final_loss as f32);
    assert!(scalars.iter().any(|e| e.tag == "actions/pmf_smoothness" && e.step == 40), "probe PMFs are logged");

    // The checkpoint rebuilds the model from its spec alone.
    let (_, path) = checkpoint::list(&job.run_dir().join("checkpoints")).last().cloned().unwrap();
    let loaded = frl_learner::load_model::<DensityModel>(&path, &Device::flex()).unwrap();
    assert_eq!(
        (loaded.meta.agent.as_str(), loaded.meta.step, &loaded.meta.data),
        ("density", 40, &DensitySpec { bins: 16 })
    );
    assert_eq!(loaded.config, config);
    // Rerunning the finished job trains nothing and returns its summary.
    let again = fit_density(&job, true).unwrap();
    assert_eq!((again.steps, again.final_loss), (40, s.final_loss));
    // A bad value in its section names the section and the field.
    let mut bad = job.clone();
    bad.name = "density-bad".into();
    bad.set_agent_field("hidden", toml::Value::Integer(0));
    let e = format!("{:#}", fit_density(&bad, false).unwrap_err());
    assert!(e.contains("[density]") && e.contains("hidden"), "{e}");
    assert!(!bad.run_dir().exists(), "a bad job writes nothing");

    // NaN guard: the run stops before the bad update and names the last good checkpoint.
    let mut nan = job.clone();
    nan.name = "density-nan".into();
    nan.train.poison_loss_at = Some(13);
    let e = format!("{:#}", fit_density(&nan, false).unwrap_err());
    assert!(e.contains("NaN at step 13") && e.contains("(step 10)"), "{e}");
    assert_eq!(checkpoint::list(&nan.run_dir().join("checkpoints")).last().unwrap().0, 10);

    let mut whole = job.clone();
    whole.name = "density-whole".into();
    assert_resume_is_bit_identical(&whole, &|j, resume| fit_density(j, resume).map(|_| ()));
}

// ------------------------------------------------------------------------------------------------------------------
// The built-in agents.

/// A small job of `kind` on `data` (any head by `head`).
fn small_job(dir: &Path, data: &Path, kind: &str, head: &str) -> TrainJob {
    let section = match kind {
        "dt" => format!(
            "layers = 1\nembed_dim = 32\ncontext = 6\ndropout = 0.1\nmax_episode_len = 500\nbins = 16\nhead = {head}"
        ),
        "bc" => format!("hidden = [64, 64]\nbins = 16\nhead = {head}"),
        "iql" => format!("hidden = [64, 64]\nbins = 16\nhead = {head}\nbeta = 1.0"),
        "dqn" => format!(
            "hidden = [64, 64]\nhead = {head}\natoms = 16\nv_min = -50.0\nv_max = 50.0\ntarget_update_every = 10"
        ),
        other => panic!("{other}"),
    };
    let text = format!(
        "name = \"{kind}\"\ndataset = \"{}\"\nruns_dir = \"{}\"\nseed = 3\nagent = \"{kind}\"\n[{kind}]\n{section}\n\
         [train]\nsteps = 300\nbatch_size = 12\nlr = 3e-3\nwarmup_steps = 20\nlog_every = 20\nplot_every = 100\n\
         checkpoint_every = 100\n[train.optimizer]\nweight_decay = 0.0\ngrad_clip = 1.0\n[eval]\nepisodes = 1\n\
         actors = 1\ndecode = \"mode\"\n",
        data.display(),
        dir.join("runs").display()
    );
    let job = TrainJob::parse(&text).unwrap();
    agents::validate(&job).unwrap();
    job
}

#[test]
fn every_agent_overfits_a_tiny_dataset_with_every_head() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tiny");
    common::tiny_pendulum(&data);
    let heads = [
        ("linear", "\"linear\""),
        // A Fourier density needs about as many frequencies as bins to put all its mass on one bin.
        ("fourier", "{ fourier = { frequencies = 16 } }"),
        ("mixture", "{ mixture = { components = 4, learned_weights = true } }"),
    ];
    let mut failures = Vec::new();
    for kind in ["bc", "iql"] {
        for (name, head) in heads {
            let mut job = small_job(dir.path(), &data, kind, head);
            job.name = format!("{kind}-{name}");
            if name == "mixture" {
                job.train.steps = 800;
            }
            let s = agents::train(&job, &quiet(), no_stop()).unwrap();
            eprintln!("{kind} {name}: loss {} -> {}", s.first_loss, s.final_loss);
            // Chance is ln 16 = 2.77 nats; a memorised action costs almost nothing.
            if s.final_loss.is_nan() || s.final_loss >= 0.1 {
                failures.push(format!("{kind} {name}: loss {} -> {}", s.first_loss, s.final_loss));
            }
            assert_eq!(s.eval.as_ref().unwrap().lengths, vec![200]);
            assert!(s.smoothness.is_finite());
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn every_agent_resumes_bit_for_bit() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = cartpole_data(dir.path(), 4);
    // Also with batches split over threads (`train.shards`; agents that cannot split train on whole batches).
    let runs = agents::offline_kinds().into_iter().map(|kind| (kind, 1)).chain([("dt", 3), ("bc", 3)]);
    for (kind, shards) in runs {
        let mut job = small_job(dir.path(), &data, kind, "{ fourier = { frequencies = 4 } }");
        job.name = format!("{kind}-shards{shards}");
        job.train.steps = 30;
        job.train.checkpoint_every = 10;
        job.train.keep_checkpoints = 3;
        job.train.shards = shards;
        assert_resume_is_bit_identical(&job, &|j, resume| {
            agents::train(j, &TrainOptions { resume, quiet: true, ..Default::default() }, no_stop()).map(|_| ())
        });
    }
}

#[test]
fn every_agent_stops_on_nan_keeping_the_last_good_checkpoint() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = cartpole_data(dir.path(), 4);
    for kind in agents::offline_kinds() {
        let mut job = small_job(dir.path(), &data, kind, "\"linear\"");
        job.train.checkpoint_every = 5;
        job.train.poison_loss_at = Some(13);
        let e = agents::train(&job, &quiet(), no_stop()).unwrap_err().to_string();
        assert!(e.contains("NaN at step 13") && e.contains("(step 10)"), "{kind}: {e}");
        let ckpts = checkpoint::list(&job.run_dir().join("checkpoints"));
        assert_eq!(ckpts.last().unwrap().0, 10, "{kind}");
        let p = agents::load_policy(&ckpts.last().unwrap().1, &Device::flex(), &ActingOverrides::default()).unwrap();
        assert_eq!((p.meta.agent.as_str(), p.meta.step), (kind, 10));
    }
}

#[test]
fn every_agents_checkpoint_acts_as_the_trained_agent_did() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = cartpole_data(dir.path(), 4);
    for kind in agents::offline_kinds() {
        let mut job = small_job(dir.path(), &data, kind, "\"linear\"");
        job.train.steps = 20;
        job.eval.every = 10;
        job.eval.episodes = 3;
        job.eval.actors = 2;
        let s = agents::train(&job, &quiet(), no_stop()).unwrap();
        let final_eval = s.eval.unwrap();
        let (_, path) = checkpoint::list(&job.run_dir().join("checkpoints")).last().cloned().unwrap();
        let p = agents::load_policy(&path, &Device::flex(), &ActingOverrides::default()).unwrap();
        let again = frl_learner::evaluate(&p.meta.data.env, p.factory, 3, 1, job.eval.seed, no_stop()).unwrap();
        assert_eq!(again.returns, final_eval.returns, "{kind}: the checkpoint acts as the trained agent did");
    }
}
