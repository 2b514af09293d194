//! Loading and validating a dataset folder.

use std::fs;
use std::path::{Path, PathBuf};

use frl_envs::BoxDtype;
use frl_envs::Space;
use safetensors::{Dtype, SafeTensors};

use super::{DatasetError, FORMAT, FORMAT_VERSION, FORMAT_VERSION_1, METADATA_FILE, Metadata, ShardInfo};
use crate::episodes::{EpisodeBatch, EpisodeTag};

/// A dataset loaded into memory.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The folder it was read from.
    pub dir: PathBuf,
    /// Its metadata.
    pub metadata: Metadata,
    /// All episodes, in shard order.
    pub episodes: EpisodeBatch,
}

/// Reads and checks `metadata.json` of the dataset in `dir`.
pub(crate) fn read_metadata(dir: &Path) -> Result<Metadata, DatasetError> {
    let path = dir.join(METADATA_FILE);
    if !dir.is_dir() {
        return Err(DatasetError::Metadata { path: dir.to_path_buf(), message: "no such dataset folder".into() });
    }
    let text = fs::read_to_string(&path).map_err(DatasetError::io(&path))?;
    let bad = |message: String| DatasetError::Metadata { path: path.clone(), message };
    let meta: Metadata = serde_json::from_str(&text).map_err(|e| bad(format!("not valid dataset metadata: {e}")))?;
    if meta.format != FORMAT {
        return Err(bad(format!("format is `{}`, expected `{FORMAT}`", meta.format)));
    }
    if meta.format_version != FORMAT_VERSION && meta.format_version != FORMAT_VERSION_1 {
        return Err(bad(format!(
            "format_version {} is not supported by this build (it reads versions {FORMAT_VERSION_1} and {FORMAT_VERSION})",
            meta.format_version
        )));
    }
    let (e, s) = meta.shards.iter().fold((0u128, 0u128), |(e, s), sh| (e + sh.episodes as u128, s + sh.steps as u128));
    if (e, s) != (meta.episodes as u128, meta.steps as u128) {
        return Err(bad(format!(
            "totals say {} episodes / {} steps but the shards add up to {e} / {s}",
            meta.episodes, meta.steps
        )));
    }
    Ok(meta)
}

impl Dataset {
    /// Loads every shard listed in the metadata, checking sizes, checksums, array shapes and offsets.
    pub fn open(dir: &Path) -> Result<Self, DatasetError> {
        let metadata = read_metadata(dir)?;
        let mut episodes = EpisodeBatch::new(metadata.observation_space.flat_dim(), metadata.action_space.flat_dim());
        for shard in &metadata.shards {
            let path = dir.join(&shard.file);
            let batch = read_shard(&path, shard, &metadata)
                .map_err(|message| DatasetError::Shard { path: path.clone(), message })?;
            episodes.extend(&batch);
        }
        Ok(Dataset { dir: dir.to_path_buf(), metadata, episodes })
    }
}

pub(crate) fn read_shard(path: &Path, info: &ShardInfo, meta: &Metadata) -> Result<EpisodeBatch, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 != info.bytes {
        return Err(format!("truncated or overwritten: {} bytes, metadata.json says {}", bytes.len(), info.bytes));
    }
    let crc = crc32c::crc32c(&bytes);
    if crc != info.crc32c {
        return Err(format!("corrupted: CRC-32C {crc:#010x}, metadata.json says {:#010x}", info.crc32c));
    }
    let st = SafeTensors::deserialize(&bytes).map_err(|e| format!("not a safetensors file: {e}"))?;
    let (t, e) = (info.steps as usize, info.episodes as usize);
    let (obs_dim, act_dim) = (meta.observation_space.flat_dim(), meta.action_space.flat_dim());
    let get = |name: &str, dtype: Dtype, len: usize| -> Result<Vec<u8>, String> {
        let v = st.tensor(name).map_err(|_| format!("array `{name}` is missing"))?;
        if v.dtype() != dtype {
            return Err(format!("array `{name}` has dtype {:?}, expected {dtype:?}", v.dtype()));
        }
        let n: usize = v.shape().iter().product();
        if n != len {
            return Err(format!("array `{name}` has shape {:?} ({n} values), expected {len} values", v.shape()));
        }
        Ok(v.data().to_vec())
    };
    let f32s =
        |b: Vec<u8>| -> Vec<f32> { b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect() };
    let i64s =
        |b: Vec<u8>| -> Vec<i64> { b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect() };
    let (obs_len, act_len) = t
        .checked_add(e)
        .and_then(|n| n.checked_mul(obs_dim))
        .zip(t.checked_mul(act_dim))
        .ok_or_else(|| format!("metadata.json's counts ({t} steps, {e} episodes) overflow the array sizes"))?;
    let observations = match meta.observation_space.dtype() {
        BoxDtype::F32 => f32s(get("observations", Dtype::F32, obs_len)?),
        BoxDtype::U8 => get("observations", Dtype::U8, obs_len)?.into_iter().map(f32::from).collect(),
    };
    let actions = match meta.action_space {
        Space::Discrete(_) => i64s(get("actions", Dtype::I64, t)?).into_iter().map(|a| a as f32).collect(),
        Space::Box { .. } => f32s(get("actions", Dtype::F32, act_len)?),
    };
    let rewards = f32s(get("rewards", Dtype::F32, t)?);
    let terminated: Vec<bool> = get("terminated", Dtype::BOOL, t)?.into_iter().map(|b| b != 0).collect();
    let truncated: Vec<bool> = get("truncated", Dtype::BOOL, t)?.into_iter().map(|b| b != 0).collect();
    let offsets = i64s(get("episode_offsets", Dtype::I64, e.saturating_add(1))?);
    if offsets.first() != Some(&0) || offsets.last() != Some(&(t as i64)) || offsets.windows(2).any(|w| w[1] < w[0]) {
        return Err(format!("episode_offsets must rise from 0 to {t}; got {:?}...", &offsets[..offsets.len().min(5)]));
    }
    let index = i64s(get("episode_index", Dtype::I64, e)?);
    let seeds: Vec<u64> = get("episode_seed", Dtype::U64, e)?
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let versions = i64s(get("policy_version", Dtype::I64, e)?);
    let tags: Vec<EpisodeTag> = (0..e)
        .map(|i| EpisodeTag { index: index[i] as u64, seed: seeds[i], policy_version: versions[i] as u64 })
        .collect();
    // Per-step versions where the shard has them (format 2), else each step at its episode's version.
    let step_versions = if st.tensor("step_policy_version").is_ok() {
        i64s(get("step_policy_version", Dtype::I64, t)?).into_iter().map(|v| v as u64).collect()
    } else {
        let mut v = Vec::with_capacity(t);
        for (i, tag) in tags.iter().enumerate() {
            v.resize(offsets[i + 1] as usize, tag.policy_version);
        }
        v
    };
    Ok(EpisodeBatch {
        obs_dim,
        act_dim,
        observations,
        actions,
        rewards,
        terminated,
        truncated,
        offsets: offsets.into_iter().map(|o| o as usize).collect(),
        tags,
        versions: step_versions,
    })
}
