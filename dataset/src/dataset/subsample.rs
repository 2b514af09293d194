//! A smaller dataset of whole episodes drawn uniformly from a larger one, as DQN-Replay's 1% subsets are drawn from
//! a whole training run.

use std::fs;
use std::path::Path;

use rand::SeedableRng;
use rand::seq::SliceRandom;

use super::reader::{read_metadata, read_shard};
use super::{Collection, DatasetError, DatasetWriter, Metadata};

/// Writes to `out` the episodes of `src` picked in a random order (from `seed`) until the next would take the total
/// past `steps` steps, in their original order and with their indices, seeds and policy versions. Reads one shard at
/// a time (twice: lengths, then episodes). The new dataset is written beside `out` and renamed into place, so `out`
/// never holds a partial subset.
pub fn subsample(src: &Path, out: &Path, steps: u64, seed: u64) -> Result<Metadata, DatasetError> {
    let meta = read_metadata(src)?;
    if out.exists() {
        return Err(DatasetError::Mismatch {
            path: out.to_path_buf(),
            message: "already exists; choose another --out".into(),
        });
    }
    // Pass 1: every episode's length, in dataset order.
    let mut lengths = Vec::with_capacity(meta.episodes as usize);
    for shard in &meta.shards {
        let path = src.join(&shard.file);
        let batch =
            read_shard(&path, shard, &meta).map_err(|message| DatasetError::Shard { path: path.clone(), message })?;
        lengths.extend(batch.iter().map(|e| e.len() as u64));
    }
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.shuffle(&mut rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed));
    let mut picked = vec![false; lengths.len()];
    let mut total = 0u64;
    for &e in &order {
        if total + lengths[e] > steps {
            break;
        }
        total += lengths[e];
        picked[e] = true;
    }
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "subset".into());
    let tmp = out.with_file_name(format!(".tmp-{name}"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(DatasetError::io(&tmp))?;
    }
    let collection = Collection {
        policy: format!("subsample of {} ({} of {} steps, seed {seed})", src.display(), total, meta.steps),
        seed,
        first_episode: 0,
        episodes: 0,
        requested: picked.iter().filter(|&&p| p).count() as u64,
    };
    let result = (|| {
        let mut writer = DatasetWriter::open(
            &tmp,
            &meta.env_id,
            &meta.observation_space,
            &meta.action_space,
            collection,
            50_000,
            false,
        )?;
        // Pass 2: the picked episodes, shard by shard.
        let mut e = 0;
        for shard in &meta.shards {
            let path = src.join(&shard.file);
            let batch = read_shard(&path, shard, &meta)
                .map_err(|message| DatasetError::Shard { path: path.clone(), message })?;
            for ep in batch.iter() {
                if picked[e] {
                    writer.write(&ep)?;
                }
                e += 1;
            }
        }
        let written = writer.finish()?;
        fs::rename(&tmp, out).map_err(DatasetError::io(out))?;
        Ok(written)
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}
