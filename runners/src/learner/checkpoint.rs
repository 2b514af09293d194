//! Checkpoints: one safetensors file per save holding the model's parameters (`model.<name>`), the optimiser's
//! moments (`adam.<name>.m|v`) and, in the header's metadata, a JSON [`CheckpointMeta`] (job, step, seed, scaling).
//! Files are written to a temporary name and renamed, so a checkpoint on disk is always complete.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use frl_agents::dt::{ActionCoding, Normalizer};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::TrainJob;
use super::params::NamedTensor;
use crate::fsutil::write_atomic;

/// The `format` value of a checkpoint's metadata.
pub const FORMAT: &str = "frl-dt-checkpoint";
/// The metadata layout version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const META_KEY: &str = "frl";

/// What a checkpoint says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Always [`FORMAT`].
    pub format: String,
    /// Layout version.
    pub format_version: u32,
    /// Optimiser steps taken.
    pub step: u64,
    /// The job that wrote it (model config, training and evaluation settings, seed).
    pub job: TrainJob,
    /// Env id of the training data.
    pub env: String,
    /// Observation elements.
    pub obs_dim: usize,
    /// How actions map onto the heads.
    pub coding: ActionCoding,
    /// Input scaling.
    pub normalizer: Normalizer,
    /// The best return seen in the dataset (default evaluation target).
    pub dataset_best_return: f64,
}

/// A loaded checkpoint.
pub struct Checkpoint {
    /// Its metadata.
    pub meta: CheckpointMeta,
    /// Model parameters by name.
    pub model: HashMap<String, NamedTensor>,
    /// Optimiser moments by name.
    pub adam: HashMap<String, NamedTensor>,
}

/// The file name of the checkpoint at `step`.
pub fn file_name(step: u64) -> String {
    format!("ckpt-{step:08}.safetensors")
}

/// Writes a checkpoint atomically.
pub fn save(path: &Path, meta: &CheckpointMeta, model: &[NamedTensor], adam: &[NamedTensor]) -> anyhow::Result<()> {
    let mut bytes: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (prefix, list) in [("model", model), ("adam", adam)] {
        for t in list {
            let data: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            bytes.push((format!("{prefix}.{}", t.name), t.shape.clone(), data));
        }
    }
    let views = bytes
        .iter()
        .map(|(n, s, d)| TensorView::new(Dtype::F32, s.clone(), d).map(|v| (n.clone(), v)))
        .collect::<Result<Vec<_>, _>>()?;
    let info = HashMap::from([(META_KEY.to_string(), serde_json::to_string(meta)?)]);
    let file = safetensors::serialize(views, Some(info))?;
    write_atomic(path, &file).map_err(|e| anyhow::anyhow!("cannot write checkpoint {}: {e}", path.display()))
}

/// Reads and checks a checkpoint; errors name the file.
pub fn load(path: &Path) -> anyhow::Result<Checkpoint> {
    let ctx = |m: String| anyhow::anyhow!("checkpoint {}: {m}", path.display());
    let bytes = fs::read(path).map_err(|e| ctx(format!("cannot read: {e}")))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| ctx(format!("not a safetensors file: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| ctx(e.to_string()))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| ctx("no frl metadata in the header: not written by frl train".into()))?;
    let meta: CheckpointMeta = serde_json::from_str(json).map_err(|e| ctx(format!("bad metadata: {e}")))?;
    if meta.format != FORMAT || meta.format_version != FORMAT_VERSION {
        return Err(ctx(format!("format {} v{} is not {FORMAT} v{FORMAT_VERSION}", meta.format, meta.format_version)));
    }
    let mut model = HashMap::new();
    let mut adam = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(ctx(format!("tensor `{name}` is {:?}, expected F32", view.dtype())));
        }
        let data: Vec<f32> =
            view.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        if data.iter().any(|v| !v.is_finite()) {
            return Err(ctx(format!("tensor `{name}` holds non-finite values")));
        }
        let (map, key) = if let Some(k) = name.strip_prefix("model.") {
            (&mut model, k)
        } else if let Some(k) = name.strip_prefix("adam.") {
            (&mut adam, k)
        } else {
            continue;
        };
        map.insert(key.to_string(), NamedTensor { name: key.to_string(), shape: view.shape().to_vec(), data });
    }
    Ok(Checkpoint { meta, model, adam })
}

/// Checkpoint files in `dir`, oldest step first.
pub fn list(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let step = name.strip_prefix("ckpt-")?.strip_suffix(".safetensors")?.parse().ok()?;
            Some((step, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Removes temporary files left by a save that was killed before its rename.
pub fn remove_partial(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".ckpt-") && name.contains(".tmp-") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Removes all but the newest `keep` checkpoints.
pub fn prune(dir: &Path, keep: usize) {
    let all = list(dir);
    for (_, p) in all.iter().take(all.len().saturating_sub(keep.max(1))) {
        let _ = fs::remove_file(p);
    }
}
