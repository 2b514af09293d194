//! [`fit`]: an agent trained from a dataset, on the run layer, with evaluations by actors beside training.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use burn::tensor::Device;
use frl_dataset::dataset::Dataset;
use frl_rollout::EvalReport;

use crate::agent::{Acting, Agent, DataSpec};
use crate::job::TrainJob;
use crate::run::{Beside, Evaluations, LoadedModel, Run, RunSetup, TrainOptions, TrainSummary, eval_msg};

/// Rebuilds the agent stored in a checkpoint file (older layouts converted); it must be of kind `A::KIND`.
pub fn load_agent<A: Agent>(path: &Path, device: &Device) -> anyhow::Result<LoadedModel<A>> {
    crate::run::load_model(path, device)
}

/// What the learner measures of a dataset for the agent.
pub fn data_spec(dataset: &Dataset) -> DataSpec {
    let meta = &dataset.metadata;
    let (obs_mean, obs_std) = dataset.episodes.observation_stats();
    DataSpec {
        env: meta.env_id.clone(),
        obs_dim: meta.observation_space.flat_dim(),
        action_space: meta.action_space.clone(),
        obs_mean,
        obs_std,
        best_return: dataset.episodes.iter().map(|e| e.episode_return()).fold(f64::NEG_INFINITY, f64::max),
    }
}

/// Trains agent `A` on the job's dataset; Ctrl-C (the `stop` flag) saves a checkpoint and returns with
/// `interrupted`.
pub fn fit<A: Agent>(job: &TrainJob, options: &TrainOptions, stop: Arc<AtomicBool>) -> anyhow::Result<TrainSummary> {
    if job.online.is_some() {
        anyhow::bail!("the job has an [online] section: it trains with fit_online");
    }
    job.require_experience()?;
    let mut setup = RunSetup::<A>::open(job, options, stop)?;
    let dataset = Dataset::open(&job.dataset)?;
    let (agent, spec) = match setup.resume(|_| true)? {
        Some(resumed) => resumed,
        None => {
            let spec = data_spec(&dataset);
            (setup.fresh(&spec)?, spec)
        }
    };
    if let Some(summary) = setup.finished(setup.step() >= job.train.steps) {
        return Ok(summary);
    }
    let data = agent.prepare(&dataset.episodes).with_context(|| format!("dataset {}", job.dataset.display()))?;
    drop(dataset);
    let run = setup.begin(spec)?;
    let mut evals = AgentEvals::new(&run);
    Ok(crate::run::train_offline(run, agent, &data, &mut evals)?.0)
}

/// Evaluations of an agent by actors beside training (`eval.every`), and the final one.
pub(crate) struct AgentEvals {
    /// The evaluations of this run.
    pub evals: Evaluations,
    acting: Acting,
}

impl AgentEvals {
    /// The evaluations of `run`, in its data's env.
    pub fn new(run: &Run<DataSpec>) -> Self {
        let evals = Evaluations::new(&run.spec.env, &run.job.eval, run.stop_flag().clone(), run.checkpoints());
        Self { evals, acting: run.job.eval.acting() }
    }

    /// Starts evaluating `agent` at `at` (a step or an env step) unless one is in flight.
    pub fn start<A: Agent>(&mut self, run: &Run<DataSpec>, agent: &A, at: u64) {
        let snapshot = || (run.meta(), agent.params());
        self.evals.start(at, agent.policy(&self.acting), snapshot);
    }

    /// Waits for the evaluation in flight, then (unless `interrupted`) evaluates `agent` at `at`; the last report.
    pub fn conclude<A: Agent>(
        &mut self,
        run: &mut Run<DataSpec>,
        agent: &A,
        at: u64,
        interrupted: bool,
    ) -> anyhow::Result<Option<EvalReport>> {
        self.evals.finish(run.tb(), interrupted)?;
        if !interrupted {
            let (meta, params) = (run.meta(), agent.params());
            self.evals.run(at, agent.policy(&self.acting), run.tb(), || (meta, params))?;
        }
        Ok(self.evals.last.take())
    }
}

impl<A: Agent> Beside<A> for AgentEvals {
    fn after_step(&mut self, run: &mut Run<DataSpec>, agent: &A, last: bool) -> anyhow::Result<()> {
        self.evals.poll(run.tb())?;
        let every = run.job.eval.every;
        if every > 0 && run.step.is_multiple_of(every) && !last && !self.evals.busy() {
            self.start(run, agent, run.step);
        }
        Ok(())
    }

    fn message(&self) -> String {
        eval_msg(&self.evals.last)
    }

    fn finish(&mut self, run: &mut Run<DataSpec>, agent: &A, interrupted: bool) -> anyhow::Result<Option<EvalReport>> {
        let at = run.step;
        self.conclude(run, agent, at, interrupted)
    }
}
