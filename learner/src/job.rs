//! [`TrainJob`]: a training job as written in `job.toml`: the learner's own settings plus the agent's section.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::adamw::AdamWConfig;
use super::agent::{Acting, Decode, ModelConfig};

/// A training job, as written in `job.toml`:
///
/// ```toml
/// name = "bc-pendulum"
/// dataset = "data/pendulum-medium"
/// agent = "bc"          # dt (default), bc, iql
/// [bc]                  # the agent's own section
/// head = { fourier = { frequencies = 8 } }
/// [train]               # the learner's settings, the same for every agent
/// steps = 5000
/// [eval]
/// episodes = 10
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrainJob {
    /// Run name: the run folder is `<runs_dir>/<name>/`.
    pub name: String,
    /// Dataset folder (written by `frl collect` or `frl dataset import-minari`); for an online job, optional episodes
    /// the replay store starts with.
    #[serde(default, skip_serializing_if = "path_is_empty")]
    pub dataset: PathBuf,
    /// Seed of initialisation, batch sampling, dropout and evaluation.
    #[serde(default)]
    pub seed: u64,
    /// Parent folder of run folders.
    #[serde(default = "default_runs_dir")]
    pub runs_dir: PathBuf,
    /// Which agent trains: its kind (`dt`, `bc`, `iql`, or a plug-in's).
    #[serde(default = "default_agent")]
    pub agent: String,
    /// Optimisation.
    #[serde(default)]
    pub train: TrainConfig,
    /// Evaluation by actors.
    #[serde(default)]
    pub eval: EvalConfig,
    /// Online training: actors in `online.env` feed the learner while it trains (no `[online]`: offline, from
    /// `dataset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<OnlineConfig>,
    /// Every other top-level key: the agent's own section, named like the agent (`[dt]` also reads as `[model]`).
    #[serde(flatten)]
    #[schemars(skip)]
    pub sections: BTreeMap<String, toml::Value>,
}

fn path_is_empty(p: &Path) -> bool {
    p.as_os_str().is_empty()
}

fn default_runs_dir() -> PathBuf {
    PathBuf::from("runs")
}

fn default_agent() -> String {
    "dt".into()
}

/// Optimisation settings; defaults follow the continuous-control DT reference (AdamW 1e-4, weight decay 1e-4,
/// clip 0.25, batch 64), with a cosine decay after the warmup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Optimiser steps.
    pub steps: u64,
    /// Samples (transitions, windows) per batch.
    pub batch_size: usize,
    /// Parts each batch is split into, whose forward and backward passes run on parallel threads (CPU device only;
    /// agents that cannot split a batch train on it whole). Results move by rounding with this count and do not
    /// depend on the machine's cores.
    pub shards: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warmup steps from 0 to `lr`.
    pub warmup_steps: u64,
    /// The cosine decay ends at `lr * final_lr_fraction`.
    pub final_lr_fraction: f64,
    /// The decay after the warmup: `"cosine"`, or `"linear"` (CleanRL's PPO anneals linearly).
    pub decay: LrDecay,
    /// AdamW settings, global grad-norm clip included (each optimiser group clips its own norm).
    pub optimizer: AdamWConfig,
    /// Scalars every this many steps.
    pub log_every: u64,
    /// Histograms, PMF images and smoothness every this many steps.
    pub plot_every: u64,
    /// Checkpoint every this many steps (and at the end and on Ctrl-C).
    pub checkpoint_every: u64,
    /// Checkpoints kept on disk.
    pub keep_checkpoints: usize,
    /// Dataset samples whose predicted action PMFs are plotted and scored for smoothness.
    pub probe_windows: usize,
    /// Testing aid: make the loss NaN at this step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poison_loss_at: Option<u64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 10_000,
            batch_size: 64,
            shards: 1,
            lr: 1e-4,
            warmup_steps: 1000,
            final_lr_fraction: 0.1,
            decay: LrDecay::Cosine,
            optimizer: AdamWConfig::default(),
            log_every: 50,
            plot_every: 500,
            checkpoint_every: 500,
            keep_checkpoints: 2,
            probe_windows: 4,
            poison_loss_at: None,
        }
    }
}

/// How the learning rate falls from `lr` to `lr * final_lr_fraction` after the warmup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LrDecay {
    /// Half a cosine.
    #[default]
    Cosine,
    /// A straight line.
    Linear,
}

/// Evaluation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Evaluate every this many steps while training (0: only at the end).
    pub every: u64,
    /// Episodes per evaluation (0: no evaluation, not even at the end).
    pub episodes: u64,
    /// Actor threads.
    pub actors: usize,
    /// Return the first step is conditioned on (return-conditioned agents); default: the best episode return in the
    /// dataset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_return: Option<f32>,
    /// How actions are chosen: sample, mode or mean.
    pub decode: Decode,
    /// Softmax temperature for `sample`.
    pub temperature: f32,
    /// Base seed of evaluation episodes (the same episodes at every evaluation).
    pub seed: u64,
    /// Keep the parameters of the best evaluation so far (highest mean return) as `checkpoints/best.safetensors`,
    /// for `frl eval --checkpoint`; it holds no optimiser state.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub keep_best: bool,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            every: 0,
            episodes: 10,
            actors: 2,
            target_return: None,
            decode: Decode::Sample,
            temperature: 1.0,
            seed: 1_000_000,
            keep_best: false,
        }
    }
}

impl EvalConfig {
    /// How the agent acts in these evaluations.
    pub fn acting(&self) -> Acting {
        Acting { decode: self.decode, temperature: self.temperature, target_return: self.target_return }
    }
}

/// The older name of the DT's section, still read.
const LEGACY_DT_SECTION: &str = "model";
/// The DT's action permutation, once a top-level key.
const LEGACY_PERMUTATION: &str = "action_permutation";

/// The text of a job file with `KEY=VALUE` overrides applied (`train.steps=100`, `dqn.head="linear"`): each dotted
/// key names a field, its value is read as TOML (a bare word as a string); errors name the file or the override.
pub fn job_text(path: &Path, sets: &[String]) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read job file {}", path.display()))?;
    if sets.is_empty() {
        return Ok(text);
    }
    let mut doc: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("job file {}: {e}", path.display()))?;
    for set in sets {
        apply_override(&mut doc, set).with_context(|| format!("--set {set}"))?;
    }
    Ok(toml::to_string(&doc)?)
}

/// How errors name a job: its file, and the overrides when there are any (line numbers then count in the changed
/// text).
pub fn job_origin(path: &Path, sets: &[String]) -> String {
    let mut origin = format!("job file {}", path.display());
    if !sets.is_empty() {
        origin += &format!(" with --set {}", sets.join(" --set "));
    }
    origin
}

/// Sets one dotted `KEY=VALUE` in a TOML document, creating the sections on the way.
fn apply_override(doc: &mut toml::Table, set: &str) -> anyhow::Result<()> {
    let Some((key, value)) = set.split_once('=') else { bail!("expected KEY=VALUE, e.g. train.steps=100") };
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        bail!("`{}` is not a dotted field name", key.trim());
    }
    // A TOML value (number, bool, string in quotes, array, inline table); anything else is a string.
    let value = match toml::from_str::<toml::Table>(&format!("v = {}", value.trim())) {
        Ok(mut t) => t.remove("v").expect("the key parsed"),
        Err(_) => toml::Value::String(value.trim().to_string()),
    };
    let (last, sections) = parts.split_last().expect("split gives one part at least");
    let mut table = doc;
    for (i, part) in sections.iter().enumerate() {
        let entry = table.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = match entry {
            toml::Value::Table(t) => t,
            other => bail!("`{}` is {}, not a section", parts[..=i].join("."), other.type_str()),
        };
    }
    table.insert(last.to_string(), value);
    Ok(())
}

impl TrainJob {
    /// Reads a job file; errors name the file and the field.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        Self::load_with(path, &[])
    }

    /// Reads a job file with `KEY=VALUE` overrides ([`job_text`]); errors name the file and the field.
    pub fn load_with(path: &Path, sets: &[String]) -> anyhow::Result<Self> {
        Self::parse(&job_text(path, sets)?).with_context(|| job_origin(path, sets))
    }

    /// Parses and checks the learner's part of a job (the agent's section is checked by [`TrainJob::agent_config`]).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let job: TrainJob = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        job.validate()?;
        Ok(job)
    }

    /// A job for agent `kind` with its section from `config` and default learner settings.
    pub fn new<C: ModelConfig>(name: &str, dataset: &Path, kind: &str, config: &C) -> anyhow::Result<Self> {
        let mut job = TrainJob {
            name: name.into(),
            dataset: dataset.into(),
            seed: 0,
            runs_dir: default_runs_dir(),
            agent: kind.into(),
            train: TrainConfig::default(),
            eval: EvalConfig::default(),
            online: None,
            sections: BTreeMap::new(),
        };
        job.set_agent_config(config)?;
        Ok(job)
    }

    /// Checks the learner's fields, naming the one at fault.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.name.is_empty() || self.name.contains(['/', '\\']) || self.name.starts_with('.') {
            bail!("`name` = {:?}: must be a plain folder name", self.name);
        }
        if self.agent.is_empty() || !self.agent.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            bail!("`agent` = {:?}: must be an agent kind such as dt, bc or iql", self.agent);
        }
        if let Some(online) = &self.online {
            online.validate()?;
        }
        let t = &self.train;
        if t.steps == 0 {
            bail!("`train.steps` must be at least 1");
        }
        if t.batch_size == 0 {
            bail!("`train.batch_size` must be at least 1");
        }
        if t.shards == 0 || t.shards > t.batch_size {
            bail!("`train.shards` = {}: must be in 1..={} (`train.batch_size`)", t.shards, t.batch_size);
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            bail!("`train.lr` = {}: must be a positive number", t.lr);
        }
        if !(0.0..=1.0).contains(&t.final_lr_fraction) {
            bail!("`train.final_lr_fraction` = {}: must be in [0, 1]", t.final_lr_fraction);
        }
        let o = &t.optimizer;
        if !(0.0..1.0).contains(&o.beta1) || !(0.0..1.0).contains(&o.beta2) {
            bail!("`train.optimizer.beta1/beta2` = {}/{}: must be in [0, 1)", o.beta1, o.beta2);
        }
        if o.weight_decay < 0.0 || o.grad_clip < 0.0 || o.eps <= 0.0 {
            bail!("`train.optimizer`: weight_decay and grad_clip must be ≥ 0 and eps > 0");
        }
        for (field, v) in [
            ("log_every", t.log_every),
            ("plot_every", t.plot_every),
            ("checkpoint_every", t.checkpoint_every),
            ("keep_checkpoints", t.keep_checkpoints as u64),
        ] {
            if v == 0 {
                bail!("`train.{field}` must be at least 1");
            }
        }
        if self.eval.episodes == 0 && self.eval.every > 0 {
            bail!("`eval.every` = {} with `eval.episodes` = 0: evaluations need at least 1 episode", self.eval.every);
        }
        if self.eval.actors == 0 {
            bail!("`eval.actors` must be at least 1");
        }
        if !(self.eval.temperature.is_finite() && self.eval.temperature > 0.0) {
            bail!("`eval.temperature` = {}: must be positive", self.eval.temperature);
        }
        Ok(())
    }

    /// Checks that an agent's job says where its experience comes from: a dataset, or an `[online]` section.
    pub fn require_experience(&self) -> anyhow::Result<()> {
        if self.online.is_none() && self.dataset.as_os_str().is_empty() {
            bail!("`dataset` is required (or an [online] section, to train from the agent's own experience)");
        }
        Ok(())
    }

    /// The run folder.
    pub fn run_dir(&self) -> PathBuf {
        self.runs_dir.join(&self.name)
    }

    /// The key of the agent's section present in the file (`dt` jobs may still call it `model`).
    fn section_key(&self) -> &str {
        if self.agent == "dt" && !self.sections.contains_key("dt") && self.sections.contains_key(LEGACY_DT_SECTION) {
            LEGACY_DT_SECTION
        } else {
            &self.agent
        }
    }

    /// The agent's section parsed as `C` (defaults where absent) and validated; errors name the section and field,
    /// and any other unknown top-level key.
    pub fn agent_config<C: ModelConfig>(&self) -> anyhow::Result<C> {
        let key = self.section_key().to_string();
        let legacy_permutation = self.agent == "dt" && self.sections.contains_key(LEGACY_PERMUTATION);
        if let Some(stray) =
            self.sections.keys().find(|k| **k != key && !(legacy_permutation && *k == LEGACY_PERMUTATION))
        {
            bail!(
                "unknown field `{stray}`: a `{}` job has the sections [{key}], [train], [eval] and [online]",
                self.agent
            );
        }
        let mut section = self.sections.get(&key).cloned().unwrap_or_else(|| toml::Value::Table(Default::default()));
        if let (true, toml::Value::Table(t)) = (legacy_permutation, &mut section) {
            t.insert(LEGACY_PERMUTATION.into(), self.sections[LEGACY_PERMUTATION].clone());
        }
        let config: C = section.try_into().map_err(|e| anyhow::anyhow!("[{key}]: {e}"))?;
        config.validate().map_err(|e| anyhow::anyhow!("[{key}]: {e:#}"))?;
        Ok(config)
    }

    /// Replaces the agent's section by `config`.
    pub fn set_agent_config<C: ModelConfig>(&mut self, config: &C) -> anyhow::Result<()> {
        let key = self.section_key().to_string();
        let value = toml::Value::try_from(config).map_err(|e| anyhow::anyhow!("[{key}]: {e}"))?;
        self.sections.insert(key, value);
        Ok(())
    }

    /// Sets one field of the agent's section (e.g. `head` when comparing heads).
    pub fn set_agent_field(&mut self, field: &str, value: toml::Value) {
        let key = self.section_key().to_string();
        let section = self.sections.entry(key).or_insert_with(|| toml::Value::Table(Default::default()));
        if let toml::Value::Table(t) = section {
            t.insert(field.to_string(), value);
        }
    }
}

/// The `[online]` section of a job file: the env the actors run and how acting and learning interleave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OnlineConfig {
    /// Env id the actors run (a native id, or `gym:<id>` in a `python` build).
    pub env: String,
    /// The budget: training ends once the actors have taken this many env steps.
    pub env_steps: u64,
    /// Actor threads.
    pub actors: usize,
    /// Steps the replay store keeps.
    pub replay_capacity: usize,
    /// Env steps collected before the first update.
    pub learning_starts: u64,
    /// Updates per env step after `learning_starts` (0.1: one update every 10 env steps).
    pub updates_per_step: f64,
    /// Asynchronous runs (`deterministic = false`): hold the actors back (by not taking their episodes) while the
    /// learner is behind `updates_per_step`; with `false` actors never wait and the learner trains as fast as it
    /// can. Throttled, agents that learn from fragments (DQN) get the steps of one update at a time
    /// (`fragment_steps` defaults to `1 / updates_per_step`), so their actors act about one update behind the
    /// learner. Deterministic runs keep the ratio by their schedule.
    pub throttle: bool,
    /// New weights go to the actors every this many updates.
    pub broadcast_every: u64,
    /// Record every episode the actors produce as a dataset in `<run>/episodes` (its `policy_version` column says
    /// which policy acted); a resumed run then refills its replay store from it.
    pub record: bool,
    /// Failures (panics or env errors) of the actors tolerated before the run stops.
    pub max_failures: u64,
    /// Actors send running episodes in fragments of this many steps (for long episodes): env steps count, the ratio
    /// holds and agents that take fragments (DQN) learn from them as they arrive; the recording and agents that need
    /// whole episodes (the DT) get each episode once it ended. The episode running when the run ends is counted but
    /// not recorded. In a deterministic run, the steps each env slot takes per round (default `1 /
    /// updates_per_step`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fragment_steps: Option<usize>,
    /// Actors act with this fixed behaviour policy (`"random"`, `{ expert = { noise = 0.3 } }`, ...) instead of the
    /// agent's exploring policy, and the agent learns off-policy from it; weights are not broadcast.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behaviour: Option<frl_envs::BehaviourSpec>,
    /// The same job and seed give the same run, bit for bit, with any number of `actors`: env slots take
    /// `fragment_steps` steps per round with the policy of the round before last, and the learner takes their steps
    /// in a fixed order. A resumed run continues the episodes running at the stop (each slot replays its actions);
    /// on-policy runs (PPO) then go on bit for bit as if never stopped, off-policy ones act with the newest weights
    /// at their first round and refill their replay from the recording, so their steps differ. With `false` actors
    /// and learner run asynchronously (no waiting on a schedule; what an actor acts with depends on timing).
    pub deterministic: bool,
    /// Env slots of a deterministic run, shared out among the actors (default: `actors`); runs with the same
    /// `envs` collect the same steps whatever their `actors`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envs: Option<usize>,
    /// Start from the parameters of this checkpoint (a checkpoint file, or a run folder or checkpoints folder: its
    /// newest checkpoint) — offline-to-online fine-tuning. It must hold an agent of the job's kind trained on the
    /// same env; its data spec (observation scaling, best return) comes with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<PathBuf>,
}

impl Default for OnlineConfig {
    fn default() -> Self {
        Self {
            env: String::new(),
            env_steps: 100_000,
            actors: 1,
            replay_capacity: 100_000,
            learning_starts: 1_000,
            updates_per_step: 0.25,
            throttle: true,
            broadcast_every: 100,
            record: false,
            max_failures: 100,
            fragment_steps: None,
            behaviour: None,
            deterministic: true,
            envs: None,
            init: None,
        }
    }
}

impl OnlineConfig {
    /// Checks every field, naming the one at fault.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.env.is_empty() {
            bail!("`online.env` is required: the env id the actors run, e.g. \"CartPole-v1\"");
        }
        for (field, v) in [
            ("env_steps", self.env_steps),
            ("actors", self.actors as u64),
            ("replay_capacity", self.replay_capacity as u64),
            ("broadcast_every", self.broadcast_every),
        ] {
            if v == 0 {
                bail!("`online.{field}` must be at least 1");
            }
        }
        if self.envs == Some(0) {
            bail!("`online.envs` must be at least 1 (leave it out for one per actor)");
        }
        if self.deterministic && !self.throttle {
            bail!(
                "`online.throttle = false` lets the actors run free, which a deterministic run cannot; \
                 set `online.deterministic = false` too"
            );
        }
        if self.envs.is_some() && !self.deterministic {
            bail!("`online.envs` sets the env slots of a deterministic run; with `deterministic = false` use `actors`");
        }
        if self.fragment_steps == Some(0) {
            bail!("`online.fragment_steps` must be at least 1 (leave it out to send whole episodes)");
        }
        if !(self.updates_per_step.is_finite() && self.updates_per_step >= 0.0) {
            bail!("`online.updates_per_step` = {}: must be a number ≥ 0", self.updates_per_step);
        }
        Ok(())
    }

    /// Updates due after `env_steps` env steps.
    pub fn updates_due(&self, env_steps: u64) -> u64 {
        (env_steps.saturating_sub(self.learning_starts) as f64 * self.updates_per_step) as u64
    }
}

/// The warmup-then-cosine learning rate at step `step` (1-based).
pub fn lr_at(t: &TrainConfig, step: u64) -> f64 {
    if step <= t.warmup_steps {
        return t.lr * step as f64 / t.warmup_steps.max(1) as f64;
    }
    let span = t.steps.saturating_sub(t.warmup_steps).max(1) as f64;
    let progress = ((step - t.warmup_steps) as f64 / span).min(1.0);
    let floor = t.lr * t.final_lr_fraction;
    match t.decay {
        LrDecay::Cosine => floor + (t.lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
        LrDecay::Linear => floor + (t.lr - floor) * (1.0 - progress),
    }
}
