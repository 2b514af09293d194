//! Writing episodes into a dataset folder, shard by shard, never leaving a half-written file.

use std::fs;
use std::path::{Path, PathBuf};

use frl_envs::BoxDtype;
use frl_envs::Space;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

use super::{Collection, DatasetError, FORMAT, FORMAT_VERSION, METADATA_FILE, Metadata, ShardInfo};
use crate::episodes::{EpisodeBatch, EpisodeRef};
use crate::fsutil::write_atomic;

/// Buffers episodes and writes a shard whenever `shard_steps` steps have accumulated.
pub struct DatasetWriter {
    dir: PathBuf,
    meta: Metadata,
    buffer: EpisodeBatch,
    shard_steps: usize,
}

impl DatasetWriter {
    /// Creates a new dataset in `dir` (which must not hold one already), or with `append`, continues the one there
    /// (the env and spaces must match). `collection.first_episode` is set to the dataset's episode count.
    pub fn open(
        dir: &Path,
        env_id: &str,
        observation_space: &Space,
        action_space: &Space,
        mut collection: Collection,
        shard_steps: usize,
        append: bool,
    ) -> Result<Self, DatasetError> {
        let meta_path = dir.join(METADATA_FILE);
        let mut meta = if meta_path.exists() {
            if !append {
                return Err(DatasetError::Mismatch {
                    path: dir.to_path_buf(),
                    message: "already holds a dataset; pass --append to add episodes to it, or choose another --out"
                        .into(),
                });
            }
            let meta = super::reader::read_metadata(dir)?;
            let mismatch = |what: &str, have: String, want: String| DatasetError::Mismatch {
                path: dir.to_path_buf(),
                message: format!("cannot append: the dataset's {what} is {have}, the new episodes' is {want}"),
            };
            if meta.env_id != env_id {
                return Err(mismatch("env", meta.env_id, env_id.into()));
            }
            if &meta.observation_space != observation_space {
                return Err(mismatch(
                    "observation space",
                    format!("{:?}", meta.observation_space),
                    format!("{observation_space:?}"),
                ));
            }
            if &meta.action_space != action_space {
                return Err(mismatch("action space", format!("{:?}", meta.action_space), format!("{action_space:?}")));
            }
            meta
        } else {
            if dir.is_dir() && fs::read_dir(dir).map_err(DatasetError::io(dir))?.next().is_some() {
                return Err(DatasetError::Mismatch {
                    path: dir.to_path_buf(),
                    message: "exists, is not empty and has no metadata.json: refusing to write a dataset into it"
                        .into(),
                });
            }
            fs::create_dir_all(dir).map_err(DatasetError::io(dir))?;
            Metadata {
                format: FORMAT.into(),
                format_version: FORMAT_VERSION,
                env_id: env_id.into(),
                observation_space: observation_space.clone(),
                action_space: action_space.clone(),
                episodes: 0,
                steps: 0,
                shards: Vec::new(),
                collections: Vec::new(),
            }
        };
        collection.first_episode = meta.episodes;
        collection.episodes = 0;
        meta.collections.push(collection);
        let buffer = EpisodeBatch::new(observation_space.flat_dim(), action_space.flat_dim());
        let w = DatasetWriter { dir: dir.to_path_buf(), meta, buffer, shard_steps: shard_steps.max(1) };
        w.write_metadata()?;
        Ok(w)
    }

    /// Continues the last collection of the dataset in `dir` (after an interruption).
    pub fn resume(dir: &Path, shard_steps: usize) -> Result<Self, DatasetError> {
        let meta = super::reader::read_metadata(dir)?;
        if meta.collections.is_empty() {
            return Err(DatasetError::Metadata {
                path: dir.join(METADATA_FILE),
                message: "has no collection to resume".into(),
            });
        }
        let buffer = EpisodeBatch::new(meta.observation_space.flat_dim(), meta.action_space.flat_dim());
        Ok(DatasetWriter { dir: dir.to_path_buf(), meta, buffer, shard_steps: shard_steps.max(1) })
    }

    /// Continues the dataset in `dir` as it stood when it held its first `episodes` episodes (a run's checkpoint,
    /// taken right after a flush, counted them): the shards written after that are dropped, the metadata first.
    /// An error names the dataset when no shard ends there.
    pub fn resume_at(dir: &Path, shard_steps: usize, episodes: u64) -> Result<Self, DatasetError> {
        let mut w = Self::resume(dir, shard_steps)?;
        let (mut kept, mut count) = (0, 0);
        while kept < w.meta.shards.len() && count < episodes {
            count += w.meta.shards[kept].episodes;
            kept += 1;
        }
        if count != episodes {
            return Err(DatasetError::Metadata {
                path: dir.join(METADATA_FILE),
                message: format!(
                    "holds {} episodes, and none of its shards ends at episode {episodes}, where the checkpoint \
                     resumed from stopped counting",
                    w.meta.episodes
                ),
            });
        }
        let dropped = w.meta.shards.split_off(kept);
        if dropped.is_empty() {
            return Ok(w);
        }
        let mut gone = dropped.iter().map(|s| s.episodes).sum::<u64>();
        w.meta.episodes -= gone;
        w.meta.steps -= dropped.iter().map(|s| s.steps).sum::<u64>();
        for c in w.meta.collections.iter_mut().rev() {
            let take = gone.min(c.episodes);
            c.episodes -= take;
            gone -= take;
        }
        w.write_metadata()?;
        for s in &dropped {
            let path = dir.join(&s.file);
            fs::remove_file(&path).map_err(DatasetError::io(&path))?;
        }
        Ok(w)
    }

    /// Index the next episode of this collection gets (the dataset's episode count when it was opened, plus those
    /// written since).
    pub fn next_episode_index(&self) -> u64 {
        self.meta.episodes + self.buffer.episodes() as u64
    }

    /// The metadata as last written.
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// Adds an episode; writes a shard when enough steps have accumulated.
    pub fn write(&mut self, ep: &EpisodeRef<'_>) -> Result<(), DatasetError> {
        if (ep.obs_dim, ep.act_dim) != (self.buffer.obs_dim, self.buffer.act_dim) {
            return Err(DatasetError::Mismatch {
                path: self.dir.clone(),
                message: format!(
                    "episode has obs/action sizes {}/{}, the dataset {}/{}",
                    ep.obs_dim, ep.act_dim, self.buffer.obs_dim, self.buffer.act_dim
                ),
            });
        }
        self.buffer.push(ep);
        if self.buffer.steps() >= self.shard_steps { self.flush() } else { Ok(()) }
    }

    /// Writes the buffered episodes as a shard (if any) and updates the metadata.
    pub fn flush(&mut self) -> Result<(), DatasetError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let file = format!("shard-{:05}.safetensors", self.meta.shards.len());
        let path = self.dir.join(&file);
        let bytes = encode_shard(&self.buffer, &self.meta.observation_space, &self.meta.action_space)
            .map_err(|e| DatasetError::Shard { path: path.clone(), message: e })?;
        write_atomic(&path, &bytes).map_err(DatasetError::io(&path))?;
        let (episodes, steps) = (self.buffer.episodes() as u64, self.buffer.steps() as u64);
        self.meta.shards.push(ShardInfo {
            file,
            episodes,
            steps,
            bytes: bytes.len() as u64,
            crc32c: crc32c::crc32c(&bytes),
        });
        self.meta.episodes += episodes;
        self.meta.steps += steps;
        if let Some(c) = self.meta.collections.last_mut() {
            c.episodes += episodes;
        }
        self.buffer.clear();
        self.write_metadata()
    }

    /// Flushes and returns the final metadata.
    pub fn finish(mut self) -> Result<Metadata, DatasetError> {
        self.flush()?;
        Ok(self.meta)
    }

    fn write_metadata(&self) -> Result<(), DatasetError> {
        let path = self.dir.join(METADATA_FILE);
        let json = serde_json::to_vec_pretty(&self.meta).expect("metadata serialises");
        write_atomic(&path, &json).map_err(DatasetError::io(&path))
    }
}

fn le_bytes<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    v.iter().flat_map(|&x| f(x)).collect()
}

/// The safetensors bytes of a batch.
pub(crate) fn encode_shard(batch: &EpisodeBatch, obs_space: &Space, act_space: &Space) -> Result<Vec<u8>, String> {
    let (e, t) = (batch.episodes(), batch.steps());
    let obs_shape = match obs_space {
        Space::Box { shape, .. } => shape.clone(),
        Space::Discrete(_) => vec![1],
    };
    let mut tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let (obs_dtype, obs_bytes) = match obs_space.dtype() {
        BoxDtype::F32 => (Dtype::F32, le_bytes(&batch.observations, f32::to_le_bytes)),
        BoxDtype::U8 => {
            let bytes = batch
                .observations
                .iter()
                .map(|&v| {
                    if (0.0..=255.0).contains(&v) && v.fract() == 0.0 {
                        Ok(v as u8)
                    } else {
                        Err(format!("observation value {v} does not fit the u8 observation space"))
                    }
                })
                .collect::<Result<Vec<u8>, String>>()?;
            (Dtype::U8, bytes)
        }
    };
    tensors.push(("observations", obs_dtype, [vec![t + e], obs_shape].concat(), obs_bytes));
    match act_space {
        Space::Discrete(_) => {
            let a: Vec<i64> = batch.actions.iter().map(|&a| a as i64).collect();
            tensors.push(("actions", Dtype::I64, vec![t], le_bytes(&a, i64::to_le_bytes)));
        }
        Space::Box { .. } => {
            tensors.push(("actions", Dtype::F32, vec![t, batch.act_dim], le_bytes(&batch.actions, f32::to_le_bytes)))
        }
    }
    tensors.push(("rewards", Dtype::F32, vec![t], le_bytes(&batch.rewards, f32::to_le_bytes)));
    tensors.push(("terminated", Dtype::BOOL, vec![t], batch.terminated.iter().map(|&b| u8::from(b)).collect()));
    tensors.push(("truncated", Dtype::BOOL, vec![t], batch.truncated.iter().map(|&b| u8::from(b)).collect()));
    let offsets: Vec<i64> = batch.offsets.iter().map(|&o| o as i64).collect();
    tensors.push(("episode_offsets", Dtype::I64, vec![e + 1], le_bytes(&offsets, i64::to_le_bytes)));
    let index: Vec<i64> = batch.tags.iter().map(|t| t.index as i64).collect();
    tensors.push(("episode_index", Dtype::I64, vec![e], le_bytes(&index, i64::to_le_bytes)));
    let seeds: Vec<u64> = batch.tags.iter().map(|t| t.seed).collect();
    tensors.push(("episode_seed", Dtype::U64, vec![e], le_bytes(&seeds, u64::to_le_bytes)));
    let versions: Vec<i64> = batch.tags.iter().map(|t| t.policy_version as i64).collect();
    tensors.push(("policy_version", Dtype::I64, vec![e], le_bytes(&versions, i64::to_le_bytes)));
    let steps: Vec<i64> = batch.iter().flat_map(|ep| (0..ep.len()).map(move |t| ep.version(t) as i64)).collect();
    tensors.push(("step_policy_version", Dtype::I64, vec![t], le_bytes(&steps, i64::to_le_bytes)));
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            TensorView::new(*dtype, shape.clone(), data)
                .map(|v| (name.to_string(), v))
                .map_err(|e| format!("{name}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize(views, None).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::episodes::EpisodeTag;
    use frl_envs::{Action, Transition};

    /// Episode `i`: `i + 1` steps of a one-number observation.
    fn episode(i: u64) -> EpisodeBatch {
        let mut b = EpisodeBatch::new(1, 1);
        b.begin(&[0.0]);
        for t in 0..=i {
            let last = t == i;
            b.observations.push(t as f32 + 1.0);
            b.record_outcome(&Action::Discrete(1), Transition { reward: 1.0, terminated: last, truncated: false });
        }
        b.finish(EpisodeTag { index: i, seed: i, policy_version: 0 });
        b
    }

    #[test]
    fn resuming_at_a_checkpoints_count_drops_the_shards_written_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let space = Space::vector(&[-10.0], &[10.0]);
        let collection = Collection { policy: "p".into(), seed: 0, first_episode: 0, episodes: 0, requested: 0 };
        let mut w =
            DatasetWriter::open(dir.path(), "Test-v0", &space, &Space::Discrete(2), collection, 1000, false).unwrap();
        // Shards of episodes {0, 1}, {2}, {3, 4}: flushes as at three checkpoints.
        for group in [&[0, 1][..], &[2], &[3, 4]] {
            for &i in group {
                w.write(&episode(i).episode(0)).unwrap();
            }
            w.flush().unwrap();
        }
        drop(w);
        // No shard ends at episode 4: refused, nothing touched.
        let e = DatasetWriter::resume_at(dir.path(), 1000, 4).err().unwrap().to_string();
        assert!(e.contains("metadata.json") && e.contains("episode 4"), "{e}");
        assert_eq!(crate::dataset::Dataset::open(dir.path()).unwrap().episodes.episodes(), 5);
        // At 3: the last shard goes, and the next episodes follow on.
        let mut w = DatasetWriter::resume_at(dir.path(), 1000, 3).unwrap();
        assert!(!dir.path().join("shard-00002.safetensors").exists());
        w.write(&episode(7).episode(0)).unwrap();
        let meta = w.finish().unwrap();
        assert_eq!((meta.episodes, meta.steps, meta.collections[0].episodes), (4, 14, 4));
        let d = crate::dataset::Dataset::open(dir.path()).unwrap();
        let index: Vec<u64> = d.episodes.tags.iter().map(|t| t.index).collect();
        assert_eq!(index, [0, 1, 2, 7]);
    }
}
