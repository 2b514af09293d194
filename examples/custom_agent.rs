//! Writing an agent: a policy network (one hidden layer, then any head over the discrete actions) trained by
//! cross-entropy on a dataset's actions, written outside frl's crates against the public traits, and trained by the
//! same learner as the built-in agents (checkpoints, resume, TensorBoard, evaluations by actors).
//!
//!     cargo run --release --example custom_agent [-- OUT_DIR]
//!
//! Three parts: the job-file section (`MyConfig`), the model (`Trainable`: networks, batches, one step) and what
//! makes it an agent (`Agent`: data preparation and the acting policy). ARCHITECTURE.md, "Add an agent", says more.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use frl_dataset::episodes::EpisodeBatch;
use frl_dataset::transitions::Transitions;
use frl_envs::{Action, BehaviourSpec, MarkovPolicy, PolicyFactory, Space};
use frl_heads::head::{argmax, to_host};
use frl_heads::{AnyHead, Head, HeadConfig};
use frl_learner::optim::DEFAULT_GROUP;
use frl_learner::params::{NamedTensor, load_params, named_params};
use frl_learner::{Acting, Agent, DataSpec, ModelConfig, Optimizers, Scalars, TrainJob, TrainOptions, Trainable};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The `[my]` section of a job file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
struct MyConfig {
    /// Width of the hidden layer.
    hidden: usize,
    /// The head over the actions: `"linear"`, `{ fourier = { frequencies = 2 } }`, ...
    head: HeadConfig,
}

impl Default for MyConfig {
    fn default() -> Self {
        Self { hidden: 64, head: HeadConfig::Linear }
    }
}

impl ModelConfig for MyConfig {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.hidden > 0, "`my.hidden` must be at least 1");
        self.head.validate().map_err(|e| anyhow::anyhow!("`my.head`: {e}"))
    }

    fn head(&self) -> Option<&HeadConfig> {
        Some(&self.head)
    }
}

#[derive(Module, Debug)]
struct MyNet {
    hidden: Linear,
    head: AnyHead,
}

impl MyNet {
    fn features(&self, obs: Tensor<2>) -> Tensor<2> {
        relu(self.hidden.forward(obs))
    }
}

struct MyAgent {
    net: MyNet,
    spec: DataSpec,
}

struct MyBatch {
    obs: Tensor<2>,
    actions: Tensor<1, Int>,
}

impl Trainable for MyAgent {
    const KIND: &'static str = "my";
    type Config = MyConfig;
    type Spec = DataSpec;
    type Data = Transitions;
    type Batch = MyBatch;

    fn new(config: &MyConfig, spec: &DataSpec, rng: &mut dyn RngCore, device: &Device) -> anyhow::Result<Self> {
        let Space::Discrete(actions) = spec.action_space else { anyhow::bail!("this agent acts in discrete spaces") };
        let hidden = frl_heads::init::linear(spec.obs_dim, config.hidden, 1.0, 1.0, rng, device);
        let head = config.head.init(config.hidden, actions, rng, device)?;
        Ok(Self { net: MyNet { hidden, head }, spec: spec.clone() })
    }

    fn sample(&self, data: &Transitions, batch_size: usize, rng: &mut dyn RngCore, device: &Device) -> MyBatch {
        let b = data.sample(batch_size, rng);
        let actions: Vec<i64> = b.actions.iter().map(|&a| a as i64).collect();
        MyBatch {
            obs: Tensor::from_data(TensorData::new(b.obs, [b.len, self.spec.obs_dim]), device),
            actions: Tensor::from_data(TensorData::new(actions, [b.len]), device),
        }
    }

    fn train_step(&mut self, batch: MyBatch, opt: &mut Optimizers) -> anyhow::Result<Scalars> {
        let loss = self.net.head.loss(self.net.features(batch.obs), batch.actions);
        Ok(vec![("loss", opt.step(DEFAULT_GROUP, &mut self.net, loss.total)?)])
    }

    fn params(&self) -> Vec<NamedTensor> {
        named_params(&self.net)
    }

    fn load_params(mut self, values: &HashMap<String, NamedTensor>) -> Result<Self, String> {
        self.net = load_params(self.net, values)?;
        Ok(self)
    }
}

impl Agent for MyAgent {
    fn prepare(&self, episodes: &EpisodeBatch) -> anyhow::Result<Transitions> {
        let mut t = Transitions::new(episodes, 1, 1.0);
        t.map_observations(|x, out| self.spec.push_normalized(x, out));
        Ok(t)
    }

    fn policy(&self, _acting: &Acting) -> Arc<dyn PolicyFactory> {
        let (net, spec) = (self.net.valid(), self.spec.clone());
        Arc::new(MarkovPolicy::new("my agent (most likely action)", move |obs, _rng| {
            let mut x = Vec::new();
            spec.push_normalized(obs, &mut x);
            let x = Tensor::<2>::from_data(TensorData::new(x, [1, spec.obs_dim]), &net.hidden.devices()[0]);
            Action::Discrete(argmax(&to_host(net.head.pmf(net.features(x)))))
        }))
    }
}

fn main() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = std::env::args().nth(1).map_or_else(|| tmp.path().to_path_buf(), Into::into);
    let no_stop = || Arc::new(AtomicBool::new(false));
    let data = out.join("data");
    let mut collect = frl_rollout::collect::CollectJob::new("CartPole-v1", 30, &data);
    collect.policy = Some(BehaviourSpec::Expert { noise: 0.2 });
    frl_rollout::collect::collect(&collect, no_stop(), false)?;

    // A job for the plug-in kind: `TrainJob::new` writes its section; `fit::<MyAgent>` is the registry's entry for
    // it (one line in `frl_agents::registry::AGENTS` makes `frl train` know it too).
    let config = MyConfig { hidden: 64, head: HeadConfig::Fourier(frl_heads::FourierHeadConfig::default()) };
    let mut job = TrainJob::new("my-fourier", &data, MyAgent::KIND, &config)?;
    job.runs_dir = out.join("runs");
    (job.train.steps, job.train.lr, job.train.warmup_steps, job.train.log_every) = (300, 1e-3, 20, 50);
    (job.eval.episodes, job.eval.actors) = (10, 2);
    let summary = frl_learner::fit::<MyAgent>(&job, &TrainOptions { quiet: true, ..Default::default() }, no_stop())?;
    let eval = summary.eval.as_ref().expect("the learner evaluates at the end");
    println!(
        "trained `{}` ({}): {} steps, loss {:.4} → {:.4}, evaluation return {:.1}; run folder {}",
        summary.name,
        summary.head,
        summary.steps,
        summary.first_loss,
        summary.final_loss,
        eval.mean,
        summary.run_dir.display()
    );
    anyhow::ensure!(summary.final_loss < summary.first_loss, "the loss should fall");
    Ok(())
}
