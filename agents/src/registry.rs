//! The registry of built-in agents: picks one by the kind a job file or checkpoint names.
//!
//! A plug-in agent outside this crate calls [`fit`](frl_learner::fit) and [`load_agent`](frl_learner::load_agent)
//! directly; this registry only adds the `agent = "..."` dispatch for the built-in kinds.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, bail};
use burn::tensor::Device;
use frl_envs::PolicyFactory;

use crate::{bc, dqn, dt, iql};
use frl_learner::checkpoint::{self, CheckpointMeta};
use frl_learner::{Acting, Agent, TrainJob, TrainOptions, TrainSummary, fit, fit_online, load_agent_from};

/// The kinds this build knows.
pub const KINDS: [&str; 4] = [dt::Dt::KIND, bc::Bc::KIND, iql::Iql::KIND, dqn::Dqn::KIND];

/// The kinds that also train online (`[online]`).
pub const ONLINE_KINDS: [&str; 2] = [dt::Dt::KIND, dqn::Dqn::KIND];

/// Runs `$body` with `$A` bound to the agent type of kind `$kind`; an unknown kind is an error naming it.
macro_rules! with_agent {
    ($kind:expr, $A:ident => $body:expr) => {
        match $kind {
            k if k == dt::Dt::KIND => {
                type $A = dt::Dt;
                $body
            }
            k if k == bc::Bc::KIND => {
                type $A = bc::Bc;
                $body
            }
            k if k == iql::Iql::KIND => {
                type $A = iql::Iql;
                $body
            }
            k if k == dqn::Dqn::KIND => {
                type $A = dqn::Dqn;
                $body
            }
            other => bail!("`agent` = {other:?}: unknown agent (this build has {})", KINDS.join(", ")),
        }
    };
}

/// Runs `$body` with `$A` bound to the online agent type of kind `$kind`; a kind that does not train online is an
/// error naming the ones that do.
macro_rules! with_online_agent {
    ($kind:expr, $A:ident => $body:expr) => {
        match $kind {
            k if k == dt::Dt::KIND => {
                type $A = dt::Dt;
                $body
            }
            k if k == dqn::Dqn::KIND => {
                type $A = dqn::Dqn;
                $body
            }
            other => bail!(
                "`agent` = {other:?} does not train online; remove [online] or use one of: {}",
                ONLINE_KINDS.join(", ")
            ),
        }
    };
}

/// Checks a job's agent kind and section.
pub fn validate(job: &TrainJob) -> anyhow::Result<()> {
    job.validate()?;
    if job.online.is_some() {
        with_online_agent!(job.agent.as_str(), A => job.agent_config::<<A as Agent>::Config>().map(|_| ()))
    } else {
        with_agent!(job.agent.as_str(), A => job.agent_config::<<A as Agent>::Config>().map(|_| ()))
    }
}

/// Reads and checks a job file, its agent section included; errors name the file and the field.
pub fn load_job(path: &Path) -> anyhow::Result<TrainJob> {
    let job = TrainJob::load(path)?;
    validate(&job).with_context(|| format!("job file {}", path.display()))?;
    Ok(job)
}

/// Trains the job's agent with the generic learner: from its dataset, or online when the job has `[online]`.
pub fn train(job: &TrainJob, options: &TrainOptions, stop: Arc<AtomicBool>) -> anyhow::Result<TrainSummary> {
    if job.online.is_some() {
        with_online_agent!(job.agent.as_str(), A => fit_online::<A>(job, options, stop))
    } else {
        with_agent!(job.agent.as_str(), A => fit::<A>(job, options, stop))
    }
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
    let ckpt = checkpoint::load(path)?;
    let meta = ckpt.meta.clone();
    let mut acting = meta.job.eval.acting();
    acting.decode = overrides.decode.unwrap_or(acting.decode);
    acting.temperature = overrides.temperature.unwrap_or(acting.temperature);
    acting.target_return = overrides.target_return.or(acting.target_return);
    if !(acting.temperature.is_finite() && acting.temperature > 0.0) {
        bail!("temperature {}: must be positive", acting.temperature);
    }
    let factory =
        with_agent!(meta.agent.as_str(), A => load_agent_from::<A>(ckpt, path, device)?.agent.policy(&acting));
    if acting.target_return.is_none() {
        acting.target_return = Some(meta.data.best_return as f32);
    }
    Ok(LoadedPolicy { meta, acting, factory })
}
