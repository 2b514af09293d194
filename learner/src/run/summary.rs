//! What a run reports when it ends: [`TrainSummary`] (written as `summary.json`) and, for online runs,
//! [`OnlineReport`].

use std::path::PathBuf;

use frl_rollout::EvalReport;
use serde::{Deserialize, Serialize};

/// What a finished (or interrupted) training run reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Run name.
    pub name: String,
    /// Agent kind.
    #[serde(default = "dt_kind")]
    pub agent: String,
    /// Head slug (`-` for agents without an action head).
    pub head: String,
    /// Steps reached.
    pub steps: u64,
    /// Whether Ctrl-C stopped it before the last step.
    pub interrupted: bool,
    /// Mean training loss over the first logging window of this invocation.
    pub first_loss: f64,
    /// Mean training loss over the last logging window.
    pub final_loss: f64,
    /// Mean smoothness of the predicted action PMFs on the probe samples (NaN without action heads).
    pub smoothness: f64,
    /// The last evaluation, when one ran.
    pub eval: Option<EvalReport>,
    /// Wall-clock seconds of the optimiser steps in this invocation.
    pub train_seconds: f64,
    /// Milliseconds per optimiser step in this invocation.
    pub ms_per_step: f64,
    /// Median milliseconds per step over the logging windows after the first one, which holds the warm-up (kernel
    /// compilation on a GPU); absent with fewer than two such windows and for online runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steady_ms_per_step: Option<f64>,
    /// Backend name.
    pub backend: String,
    /// The run folder.
    pub run_dir: PathBuf,
    /// What an online run measured (env steps, rates, policy lag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<OnlineReport>,
}

impl TrainSummary {
    /// Writes `summary.json` into the run folder (atomically): a finished run's record, and what a rerun prints.
    pub fn write(&self) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        frl_dataset::fsutil::write_atomic(&self.run_dir.join("summary.json"), json.as_bytes())?;
        Ok(())
    }
}

fn dt_kind() -> String {
    "dt".into()
}

/// What an online run measured, in its summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OnlineReport {
    /// Env steps received.
    pub env_steps: u64,
    /// Episodes received.
    pub episodes: u64,
    /// Env steps per second over this invocation.
    pub env_steps_per_sec: f64,
    /// Updates per second over this invocation.
    pub updates_per_sec: f64,
    /// Mean policy lag (learner version − acting version) of the episodes received.
    pub mean_policy_lag: f64,
    /// Mean return of the last 20 episodes the actors finished (exploring).
    pub recent_return: f64,
    /// Wall-clock seconds of this invocation.
    pub seconds: f64,
    /// Actor failures (panics, env errors) of this invocation; each restarted its actor and lost the episode in
    /// flight.
    #[serde(default)]
    pub actor_failures: u64,
    /// Steps of episodes given up unfinished because their actor failed, over the whole run (counted in
    /// `env_steps`, not recorded as episodes).
    #[serde(default)]
    pub lost_steps: u64,
    /// Whether the run followed the deterministic schedule (same job and seed, same run); asynchronous runs do not
    /// repeat.
    #[serde(default)]
    pub deterministic: bool,
}
