//! `frl._frl`: the native half of the `frl` Python package — `RolloutWorker` (episodes collected by Rust actor
//! threads, the GIL released while they run), `DatasetSink` (chunks in, frl dataset out), and for online training
//! with actors in other processes `OnlineLearner` (the learner on its own thread) and `OnlineWorker` (env slots
//! stepped round by round).

#![warn(missing_docs)]

use frl_rollout::collect::CollectJob;
use std::time::Duration;

use frl_rollout::LockstepConfig;
use frl_runners::remote::{self, RemoteCollection, columns};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

fn runtime(e: anyhow::Error) -> PyErr {
    PyRuntimeError::new_err(format!("{e:#}"))
}

/// A batch of episodes as a dict of little-endian byte columns (see `frl.as_arrays`).
fn to_dict<'py>(
    py: Python<'py>,
    batch: &frl_dataset::episodes::EpisodeBatch,
    u8_observations: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let c = columns::to_columns(batch, u8_observations);
    let d = PyDict::new(py);
    d.set_item("obs_dim", c.obs_dim)?;
    d.set_item("act_dim", c.act_dim)?;
    let dtypes = PyDict::new(py);
    for (name, bytes, dtype) in c.data {
        d.set_item(name, PyBytes::new(py, &bytes))?;
        dtypes.set_item(name, dtype)?;
    }
    d.set_item("dtypes", dtypes)?;
    Ok(d)
}

/// Collects episodes of one (env, policy, seed) job with Rust actor threads.
#[pyclass(module = "frl._frl")]
struct RolloutWorker {
    inner: remote::RolloutWorker,
}

#[pymethods]
impl RolloutWorker {
    /// `RolloutWorker(env, policy="expert", seed=0, threads=1, checkpoint=None)`; `policy` as in `frl collect
    /// --policy`; `checkpoint` (a path to a `frl train` checkpoint of any agent) runs that agent instead.
    #[new]
    #[pyo3(signature = (env, policy = "expert", seed = 0, threads = 1, checkpoint = None))]
    fn new(
        py: Python<'_>,
        env: &str,
        policy: &str,
        seed: u64,
        threads: usize,
        checkpoint: Option<std::path::PathBuf>,
    ) -> PyResult<Self> {
        let mut inner = remote::RolloutWorker::new(env, policy, seed, threads).map_err(runtime)?;
        if let Some(path) = checkpoint {
            let bytes = std::fs::read(&path)
                .map_err(|e| PyValueError::new_err(format!("reading checkpoint {}: {e}", path.display())))?;
            py.detach(|| inner.set_checkpoint(&bytes, 0, None)).map_err(runtime)?;
        }
        Ok(RolloutWorker { inner })
    }

    /// Episodes `first .. first + count` in index order, as byte columns; each is reproducible from (seed, index).
    fn episodes<'py>(&self, py: Python<'py>, first: u64, count: u64) -> PyResult<Bound<'py, PyDict>> {
        if count == 0 {
            return Err(PyValueError::new_err("count must be at least 1"));
        }
        let worker = &self.inner;
        let batch = py.detach(|| worker.episodes(first, count)).map_err(runtime)?;
        to_dict(py, &batch, worker.u8_observations())
    }

    /// Switches to a behaviour policy (`random`, `expert:0.3`, ...); later episodes record `version`.
    fn set_behaviour(&mut self, policy: &str, version: u64) -> PyResult<()> {
        self.inner.set_behaviour(policy, version).map_err(runtime)
    }

    /// Switches to the agent (any kind) of a checkpoint file's bytes; later episodes record `version`.
    #[pyo3(signature = (weights, version, target_return = None))]
    fn set_weights(
        &mut self,
        py: Python<'_>,
        weights: &[u8],
        version: u64,
        target_return: Option<f32>,
    ) -> PyResult<()> {
        let worker = &mut self.inner;
        py.detach(|| worker.set_checkpoint(weights, version, target_return)).map_err(runtime)
    }

    /// (description, version) of the current policy.
    fn policy(&self) -> (String, u64) {
        self.inner.policy()
    }
}

/// Writes chunks of episodes (from any worker, in any order, possibly twice) into an frl dataset, in index order.
#[pyclass(module = "frl._frl")]
struct DatasetSink {
    inner: RemoteCollection,
}

#[pymethods]
impl DatasetSink {
    /// `DatasetSink(out, env, policy, episodes, seed=0, shard_steps=50000, append=False)`: a new dataset, or the
    /// same job's interrupted one (resumed).
    #[new]
    #[pyo3(signature = (out, env, policy, episodes, seed = 0, shard_steps = 50_000, append = false))]
    fn new(
        out: std::path::PathBuf,
        env: &str,
        policy: &str,
        episodes: u64,
        seed: u64,
        shard_steps: usize,
        append: bool,
    ) -> PyResult<Self> {
        if episodes == 0 {
            return Err(PyValueError::new_err("episodes must be at least 1"));
        }
        let mut job = CollectJob::new(env, episodes, out);
        job.seed = seed;
        job.shard_steps = shard_steps;
        job.append = append;
        job.policy = Some(policy.parse().map_err(|e| PyValueError::new_err(format!("policy `{policy}`: {e}")))?);
        // The dataset records the policy's description, the same as `frl collect` writes.
        let worker = remote::RolloutWorker::new(env, policy, seed, 1).map_err(runtime)?;
        let inner = RemoteCollection::open(&job, &worker.policy().0).map_err(runtime)?;
        Ok(DatasetSink { inner })
    }

    /// (next, end): the episode indices still to write.
    fn remaining(&self) -> (u64, u64) {
        self.inner.remaining()
    }

    /// Adds a chunk from `RolloutWorker.episodes`; returns the index of the next episode to write.
    fn add(&mut self, py: Python<'_>, chunk: &Bound<'_, PyDict>) -> PyResult<u64> {
        let batch = from_dict(chunk)?;
        let sink = &mut self.inner;
        py.detach(|| sink.add(&batch)).map_err(runtime)
    }

    /// Writes the last shard; returns the dataset's metadata as JSON.
    fn finish(&mut self) -> PyResult<String> {
        let meta = self.inner.finish().map_err(runtime)?;
        serde_json::to_string(&meta).map_err(|e| runtime(e.into()))
    }
}

/// Reads a chunk dict (`RolloutWorker.episodes`, `OnlineWorker.round`) back into a batch.
fn from_dict(chunk: &Bound<'_, PyDict>) -> PyResult<frl_dataset::episodes::EpisodeBatch> {
    let dim = |k: &str| -> PyResult<usize> {
        chunk.get_item(k)?.ok_or_else(|| PyValueError::new_err(format!("chunk has no `{k}`")))?.extract()
    };
    let (obs_dim, act_dim) = (dim("obs_dim")?, dim("act_dim")?);
    let dtypes = chunk.get_item("dtypes")?.ok_or_else(|| PyValueError::new_err("chunk has no `dtypes`"))?;
    let mut cols = std::collections::HashMap::new();
    for (k, v) in chunk.iter() {
        if let (Ok(k), Ok(v)) = (k.extract::<String>(), v.cast::<PyBytes>()) {
            let dtype: String = dtypes.get_item(&k).and_then(|d| d.extract()).unwrap_or_else(|_| "f32".into());
            cols.insert(k, (v.as_bytes().to_vec(), dtype));
        }
    }
    columns::from_columns(obs_dim, act_dim, |name| cols.get(name).cloned()).map_err(runtime)
}

/// A plan as a dict (what `OnlineWorker` takes).
fn plan_dict<'py>(py: Python<'py>, env: &str, p: &LockstepConfig) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("env", env)?;
    d.set_item("actors", p.actors)?;
    d.set_item("envs", p.envs)?;
    d.set_item("steps", p.steps)?;
    d.set_item("seed", p.seed)?;
    d.set_item("first_episode", p.first_episode)?;
    d.set_item("lag", p.lag)?;
    d.set_item("restore", serde_json::to_string(&p.restore).map_err(|e| runtime(e.into()))?)?;
    Ok(d)
}

/// The learner of an online run whose actors are in other processes: `fit_online` on a Rust thread.
#[pyclass(module = "frl._frl")]
struct OnlineLearner {
    inner: remote::RemoteLearner,
}

#[pymethods]
impl OnlineLearner {
    /// `OnlineLearner(job, actors=None, resume=False, quiet=False)`: starts training the online job file `job`.
    #[new]
    #[pyo3(signature = (job, actors = None, resume = false, quiet = false))]
    fn new(job: std::path::PathBuf, actors: Option<usize>, resume: bool, quiet: bool) -> PyResult<Self> {
        Ok(OnlineLearner { inner: remote::RemoteLearner::start(&job, actors, resume, quiet).map_err(runtime)? })
    }

    /// The actors' plan (env, actors, envs, steps, seed, first_episode, lag), waiting up to `timeout` seconds;
    /// `None` on timeout; raises when the run could not start (the error names the job's fault).
    #[pyo3(signature = (timeout = 60.0))]
    fn plan<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Option<Bound<'py, PyDict>>> {
        let inner = &self.inner;
        let plan = py.detach(|| inner.plan(Duration::from_secs_f64(timeout.max(0.0)))).map_err(runtime)?;
        plan.map(|p| plan_dict(py, inner.env_id(), &p)).transpose()
    }

    /// `(version, checkpoint bytes)` of the policy round `round` acts with, once it may start (waiting up to
    /// `timeout` seconds; `None` on timeout); raises `EOFError` once the run has ended.
    #[pyo3(signature = (round, lag, timeout = 0.05))]
    fn policy_for<'py>(
        &self,
        py: Python<'py>,
        round: u64,
        lag: u64,
        timeout: f64,
    ) -> PyResult<Option<(u64, Bound<'py, PyBytes>)>> {
        let inner = &self.inner;
        match py.detach(|| inner.policy_for(round, lag, Duration::from_secs_f64(timeout.max(0.0)))) {
            Ok(Some((version, bytes))) => Ok(Some((version, PyBytes::new(py, &bytes)))),
            Ok(None) => Ok(None),
            Err(e) => Err(pyo3::exceptions::PyEOFError::new_err(e.to_string())),
        }
    }

    /// Hands slot `slot`'s fragment of round `round` to the learner: a chunk dict, or `None` with `failure` (the
    /// slot's actor failed or died and lost its episode in flight).
    #[pyo3(signature = (round, slot, chunk = None, failure = None))]
    fn push(
        &self,
        round: u64,
        slot: usize,
        chunk: Option<&Bound<'_, PyDict>>,
        failure: Option<String>,
    ) -> PyResult<()> {
        let batch = chunk.map(from_dict).transpose()?.unwrap_or_default();
        self.inner.push(round, slot, batch, failure);
        Ok(())
    }

    /// Whether the learner has finished (budget reached, stopped or failed).
    fn finished(&self) -> bool {
        self.inner.finished()
    }

    /// Asks the learner to stop as Ctrl-C does: it saves a checkpoint, and `join` returns.
    fn stop(&self) {
        self.inner.stop()
    }

    /// Waits for the learner; its summary as JSON (raises the run's error).
    fn join(&mut self, py: Python<'_>) -> PyResult<String> {
        let inner = &mut self.inner;
        let summary = py.detach(|| inner.join()).map_err(runtime)?;
        serde_json::to_string(&summary).map_err(|e| runtime(e.into()))
    }
}

/// One slot's round as Python sees it: (slot, chunk dict or `None`, failure or `None`).
type SlotFragment<'py> = (usize, Option<Bound<'py, PyDict>>, Option<String>);

/// Some env slots of a deterministic online run, stepped round by round with the learner's exploring policy.
#[pyclass(module = "frl._frl")]
struct OnlineWorker {
    /// Locked while a call runs (a worker's envs and policies are `Send`, not `Sync`).
    inner: std::sync::Mutex<remote::OnlineWorker>,
}

impl OnlineWorker {
    fn lock(&self) -> std::sync::MutexGuard<'_, remote::OnlineWorker> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl OnlineWorker {
    /// `OnlineWorker(plan, slots)`: the slots `slots` of the run `plan` (a dict from `OnlineLearner.plan`).
    #[new]
    fn new(plan: &Bound<'_, PyDict>, slots: Vec<usize>) -> PyResult<Self> {
        let get = |k: &str| -> PyResult<Bound<'_, PyAny>> {
            plan.get_item(k)?.ok_or_else(|| PyValueError::new_err(format!("plan has no `{k}`")))
        };
        let env: String = get("env")?.extract()?;
        let config = LockstepConfig {
            actors: get("actors")?.extract()?,
            envs: get("envs")?.extract()?,
            steps: get("steps")?.extract()?,
            seed: get("seed")?.extract()?,
            first_episode: get("first_episode")?.extract()?,
            lag: get("lag")?.extract()?,
            restore: match plan.get_item("restore")? {
                Some(text) => serde_json::from_str(&text.extract::<String>()?)
                    .map_err(|e| PyValueError::new_err(format!("plan `restore`: {e}")))?,
                None => Vec::new(),
            },
        };
        let inner = remote::OnlineWorker::new(&env, config, &slots).map_err(runtime)?;
        Ok(OnlineWorker { inner: std::sync::Mutex::new(inner) })
    }

    /// Switches to the exploring policy of checkpoint bytes from `OnlineLearner.policy_for`, as `version`.
    fn set_policy(&self, py: Python<'_>, weights: &[u8], version: u64) -> PyResult<()> {
        py.detach(|| self.lock().set_policy(weights, version)).map_err(runtime)
    }

    /// The current policy's version (`None` before the first).
    fn version(&self) -> Option<u64> {
        self.lock().version()
    }

    /// Round `round`: `[(slot, chunk dict or None, failure or None)]` in slot order.
    fn round<'py>(&self, py: Python<'py>, round: u64) -> PyResult<Vec<SlotFragment<'py>>> {
        let fragments = py.detach(|| self.lock().round(round)).map_err(runtime)?;
        let u8_observations = self.lock().u8_observations();
        fragments
            .into_iter()
            .map(|f| {
                let chunk = if f.failure.is_none() { Some(to_dict(py, &f.batch, u8_observations)?) } else { None };
                Ok((f.slot, chunk, f.failure))
            })
            .collect()
    }
}

/// The native module.
#[pymodule]
fn _frl(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RolloutWorker>()?;
    m.add_class::<DatasetSink>()?;
    m.add_class::<OnlineLearner>()?;
    m.add_class::<OnlineWorker>()?;
    Ok(())
}
