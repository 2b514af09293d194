//! `frl._frl`: the native half of the `frl` Python package — [`RolloutWorker`] (episodes collected by Rust actor
//! threads, the GIL released while they run) and [`DatasetSink`] (chunks in, frl dataset out).

use frl_rollout::collect::CollectJob;
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
        let sink = &mut self.inner;
        py.detach(|| {
            let batch = columns::from_columns(obs_dim, act_dim, |name| cols.get(name).cloned())?;
            sink.add(&batch)
        })
        .map_err(runtime)
    }

    /// Writes the last shard; returns the dataset's metadata as JSON.
    fn finish(&mut self) -> PyResult<String> {
        let meta = self.inner.finish().map_err(runtime)?;
        serde_json::to_string(&meta).map_err(|e| runtime(e.into()))
    }
}

/// The native module.
#[pymodule]
fn _frl(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RolloutWorker>()?;
    m.add_class::<DatasetSink>()?;
    Ok(())
}
