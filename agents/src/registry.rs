//! The registry of built-in agents: one line per agent in [`AGENTS`], each entry built by [`entry`] or
//! [`online_entry`] (static dispatch into `fit::<A>` inside), picked by the kind a job file or checkpoint names.
//!
//! A plug-in agent outside this crate calls [`frl_learner::fit`] and [`frl_learner::load_agent`]
//! directly, or builds an [`Entry`] of its own with the same functions.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, bail};
use burn::tensor::Device;
use frl_envs::PolicyFactory;

use crate::{bc, dqn, dt, iql, ppo};
use frl_learner::checkpoint::{self, Checkpoint, CheckpointMeta};
use frl_learner::{Acting, Agent, OnlineAgent, TrainJob, TrainOptions, TrainSummary, Trainable, fit, fit_online};

/// Trains a job (offline or online).
type TrainFn = fn(&TrainJob, &TrainOptions, Arc<AtomicBool>) -> anyhow::Result<TrainSummary>;

/// A checkpoint's policy, acting as told.
type PolicyFn = fn(Checkpoint, &Path, &Device, &Acting) -> anyhow::Result<Arc<dyn PolicyFactory>>;

/// What the registry knows of one agent kind: how to check its section, train it (offline, and online when it can)
/// and turn its checkpoints into policies.
#[derive(Clone, Copy)]
pub struct Entry {
    /// The kind (`agent = "..."`).
    pub kind: &'static str,
    /// Parses and validates the agent's section of a job.
    pub validate: fn(&TrainJob) -> anyhow::Result<()>,
    /// Trains from a dataset.
    pub fit: TrainFn,
    /// Trains online (`[online]`), for agents that can.
    pub fit_online: Option<TrainFn>,
    /// Reads one of its checkpoints, older layouts converted.
    pub read: fn(&Path) -> anyhow::Result<Checkpoint>,
    /// A checkpoint's policy, acting as told.
    pub policy: PolicyFn,
    /// Whether its policy takes a target return.
    pub return_conditioned: bool,
    /// Whether it trains only online (`[online]` required).
    pub online_only: bool,
    /// A checkpoint's exploring policy at the env steps its online progress records, for agents that train online.
    pub explorer: Option<ExplorerFn>,
    /// The agent's section of a job file: its JSON Schema (fields, types, doc comments) and its defaults as TOML.
    pub section: fn() -> anyhow::Result<(schemars::Schema, String)>,
}

/// Rebuilds an online agent from a checkpoint and returns its exploring policy.
pub type ExplorerFn = fn(Checkpoint, &Path, &Device) -> anyhow::Result<Arc<dyn PolicyFactory>>;

/// The entry of an agent that trains from datasets.
pub const fn entry<A: Agent>() -> Entry {
    Entry {
        kind: A::KIND,
        validate: validate_section::<A>,
        fit: fit::<A>,
        fit_online: None,
        read: A::read_checkpoint,
        policy: policy_of::<A>,
        return_conditioned: A::RETURN_CONDITIONED,
        online_only: A::ONLINE_ONLY,
        explorer: None,
        section: section_of::<<A as Trainable>::Config>,
    }
}

/// A config section's schema and its defaults as TOML.
pub fn section_of<C: frl_learner::ModelConfig>() -> anyhow::Result<(schemars::Schema, String)> {
    let defaults = toml::to_string(&C::default()).context("the section's defaults do not serialise to TOML")?;
    Ok((schemars::schema_for!(C), defaults))
}

/// The entry of an agent that also trains online.
pub const fn online_entry<A: OnlineAgent>() -> Entry {
    Entry { fit_online: Some(fit_online::<A>), explorer: Some(explorer_of::<A>), ..entry::<A>() }
}

fn explorer_of<A: OnlineAgent>(
    ckpt: Checkpoint,
    path: &Path,
    device: &Device,
) -> anyhow::Result<Arc<dyn PolicyFactory>> {
    let env_steps = ckpt.meta.online.as_ref().map_or(0, |o| o.env_steps);
    Ok(frl_learner::load_model_from::<A>(ckpt, path, device)?.model.explore(env_steps))
}

fn validate_section<A: Agent>(job: &TrainJob) -> anyhow::Result<()> {
    job.agent_config::<<A as Trainable>::Config>().map(|_| ())
}

fn policy_of<A: Agent>(
    ckpt: Checkpoint,
    path: &Path,
    device: &Device,
    acting: &Acting,
) -> anyhow::Result<Arc<dyn PolicyFactory>> {
    Ok(frl_learner::load_model_from::<A>(ckpt, path, device)?.model.policy(acting))
}

/// The agents this build knows, one line each.
pub const AGENTS: &[Entry] = &[
    online_entry::<dt::Dt>(),
    entry::<bc::Bc>(),
    entry::<iql::Iql>(),
    online_entry::<dqn::Dqn>(),
    online_entry::<ppo::Ppo>(),
];

/// The kinds this build knows.
pub fn kinds() -> Vec<&'static str> {
    AGENTS.iter().map(|e| e.kind).collect()
}

/// The kinds that train from datasets (all but the online-only ones).
pub fn offline_kinds() -> Vec<&'static str> {
    AGENTS.iter().filter(|e| !e.online_only).map(|e| e.kind).collect()
}

/// The kinds that also train online (`[online]`).
pub fn online_kinds() -> Vec<&'static str> {
    AGENTS.iter().filter(|e| e.fit_online.is_some()).map(|e| e.kind).collect()
}

/// The entry of `kind`; an unknown kind is an error naming the known ones.
pub fn lookup(kind: &str) -> anyhow::Result<&'static Entry> {
    match AGENTS.iter().find(|e| e.kind == kind) {
        Some(e) => Ok(e),
        None => bail!("`agent` = {kind:?}: unknown agent (this build has {})", kinds().join(", ")),
    }
}

/// How `job` trains: offline, or online when it has `[online]` (an error when its agent does not train online).
fn trainer(job: &TrainJob) -> anyhow::Result<(&'static Entry, TrainFn)> {
    let entry = lookup(&job.agent)?;
    match (job.online.is_some(), entry.fit_online) {
        (false, _) if entry.online_only => {
            bail!("`agent` = {:?} learns only from its own actors: add an [online] section", job.agent)
        }
        (false, _) => Ok((entry, entry.fit)),
        (true, Some(online)) => Ok((entry, online)),
        (true, None) => bail!(
            "`agent` = {:?} does not train online; remove [online] or use one of: {}",
            job.agent,
            online_kinds().join(", ")
        ),
    }
}

/// Checks a job's agent kind and section.
pub fn validate(job: &TrainJob) -> anyhow::Result<()> {
    job.validate()?;
    job.require_experience()?;
    let (entry, _) = trainer(job)?;
    if let Some(t) = job.eval.target_return
        && !entry.return_conditioned
    {
        bail!("`eval.target_return` = {t}: a {} agent is not return-conditioned; remove the field", entry.kind);
    }
    (entry.validate)(job)
}

/// Reads and checks a job file, its agent section included; errors name the file and the field.
pub fn load_job(path: &Path) -> anyhow::Result<TrainJob> {
    load_job_with(path, &[])
}

/// [`load_job`] with `KEY=VALUE` overrides of its fields (`train.steps=100`), as `frl train --set` gives them.
pub fn load_job_with(path: &Path, sets: &[String]) -> anyhow::Result<TrainJob> {
    let job = TrainJob::load_with(path, sets)?;
    validate(&job).with_context(|| frl_learner::job_origin(path, sets))?;
    Ok(job)
}

/// Trains the job's agent with the generic learner: from its dataset, or online when the job has `[online]`.
pub fn train(job: &TrainJob, options: &TrainOptions, stop: Arc<AtomicBool>) -> anyhow::Result<TrainSummary> {
    let (_, train) = trainer(job)?;
    train(job, options, stop)
}

/// The exploring policy of the online agent in a checkpoint (the one its actors ran when the checkpoint was made);
/// the learner sends these to actors in other processes.
pub fn load_explorer(path: &Path, device: &Device) -> anyhow::Result<(CheckpointMeta, Arc<dyn PolicyFactory>)> {
    let ckpt = checkpoint::load(path)?;
    let meta = ckpt.meta.clone();
    let entry = lookup(&meta.agent)?;
    let Some(explorer) = entry.explorer else {
        bail!("{} holds a {} agent, which does not train online", path.display(), meta.agent)
    };
    Ok((meta, explorer(ckpt, path, device)?))
}

/// A checkpoint's policy, ready for actors.
pub struct LoadedPolicy {
    /// The checkpoint's metadata (agent kind, step, job, data spec).
    pub meta: CheckpointMeta,
    /// How it acts.
    pub acting: Acting,
    /// The policy.
    pub factory: Arc<dyn PolicyFactory>,
}

/// Changes to the acting settings stored in a checkpoint's job.
#[derive(Debug, Clone, Default)]
pub struct ActingOverrides {
    /// Decoding.
    pub decode: Option<frl_learner::Decode>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Target return (return-conditioned agents).
    pub target_return: Option<f32>,
}

/// The policy of the agent stored in a checkpoint, of whatever kind it records, acting as its job's `[eval]` says
/// unless overridden.
pub fn load_policy(path: &Path, device: &Device, overrides: &ActingOverrides) -> anyhow::Result<LoadedPolicy> {
    // The current layout, else one an agent converts (the DT's version 1); else the first error.
    let ckpt = match checkpoint::load(path) {
        Ok(c) => c,
        Err(e) => AGENTS.iter().find_map(|entry| (entry.read)(path).ok()).ok_or(e)?,
    };
    let meta = ckpt.meta.clone();
    let entry = lookup(&meta.agent)?;
    if let Some(t) = overrides.target_return
        && !entry.return_conditioned
    {
        let conditioned: Vec<&str> = AGENTS.iter().filter(|e| e.return_conditioned).map(|e| e.kind).collect();
        bail!(
            "--target-return {t}: {} holds a {} agent, which is not return-conditioned (only {} are)",
            path.display(),
            meta.agent,
            conditioned.join(", ")
        );
    }
    let mut acting = meta.job.eval.acting();
    acting.decode = overrides.decode.unwrap_or(acting.decode);
    acting.temperature = overrides.temperature.unwrap_or(acting.temperature);
    acting.target_return = overrides.target_return.or(acting.target_return);
    if !(acting.temperature.is_finite() && acting.temperature > 0.0) {
        bail!("temperature {}: must be positive", acting.temperature);
    }
    let factory = (entry.policy)(ckpt, path, device, &acting)?;
    if entry.return_conditioned && acting.target_return.is_none() {
        acting.target_return = Some(meta.data.best_return as f32);
    }
    Ok(LoadedPolicy { meta, acting, factory })
}
