//! Import of Minari datasets stored in its `arrow` format (a folder per episode holding Arrow IPC files).
//!
//! Layout read: `<root>/data/metadata.json` (spaces and `env_spec` as JSON strings, `data_format`, `total_episodes`)
//! and `<root>/data/<episode id>/*.arrow` with columns `observations` (T + 1 rows), `actions`, `rewards`,
//! `terminations`, `truncations` (T + 1 rows, the last one padding), plus `<root>/data/<id>/metadata.json` (seed).

use std::fs;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use frl_envs::{Action, Space};
use serde_json::Value;

use super::{Collection, DatasetError, DatasetWriter, Metadata};
use crate::episodes::{EpisodeBatch, EpisodeTag};

/// Converts the Minari dataset at `src` (its root or its `data` folder) into a new frl dataset at `out`. `env_id`
/// overrides the id from the dataset's `env_spec`.
pub fn import_minari(
    src: &Path,
    out: &Path,
    env_id: Option<&str>,
    shard_steps: usize,
) -> Result<Metadata, DatasetError> {
    let data = if src.join("data").join("metadata.json").exists() { src.join("data") } else { src.to_path_buf() };
    let meta_path = data.join("metadata.json");
    let bad = |message: String| DatasetError::Metadata { path: meta_path.clone(), message };
    let text = fs::read_to_string(&meta_path).map_err(DatasetError::io(&meta_path))?;
    let meta: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    match meta.get("data_format").and_then(Value::as_str) {
        Some("arrow") => {}
        other => {
            return Err(bad(format!(
                "data_format is {other:?}; only Minari's \"arrow\" format can be imported (convert hdf5 datasets with \
                 Minari first)"
            )));
        }
    }
    let space = |key: &str| -> Result<Space, DatasetError> {
        let raw = meta.get(key).ok_or_else(|| bad(format!("field `{key}` is missing")))?;
        let parsed: Value = match raw {
            // Python's json writes unbounded Box limits as bare Infinity, which is not JSON.
            Value::String(s) => {
                serde_json::from_str(&s.replace("-Infinity", "\"-inf\"").replace("Infinity", "\"inf\""))
                    .map_err(|e| bad(format!("field `{key}`: {e}")))?
            }
            v => v.clone(),
        };
        parse_space(&parsed).map_err(|e| bad(format!("field `{key}`: {e}")))
    };
    let (obs_space, act_space) = (space("observation_space")?, space("action_space")?);
    let spec_id = meta
        .get("env_spec")
        .and_then(|s| match s {
            Value::String(s) => serde_json::from_str::<Value>(s).ok(),
            v => Some(v.clone()),
        })
        .and_then(|s| s.get("id").and_then(Value::as_str).map(str::to_string));
    let env_id = match (env_id, spec_id) {
        (Some(id), _) => id.to_string(),
        (None, Some(id)) => id,
        (None, None) => return Err(bad("has no env_spec with an id; pass the env id explicitly (--env)".into())),
    };
    let total = meta
        .get("total_episodes")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("field `total_episodes` is missing or not a number".into()))?;

    let collection = Collection {
        policy: format!("minari import of {}", src.display()),
        seed: 0,
        first_episode: 0,
        episodes: 0,
        requested: total,
    };
    if let Some(id) = (0..total).find(|id| !data.join(id.to_string()).is_dir()) {
        return Err(bad(format!(
            "total_episodes is {total}, but the episode folder {} is missing",
            data.join(id.to_string()).display()
        )));
    }
    // A failed import removes what it wrote, so no partial dataset is left looking complete.
    let created = !out.exists() || fs::read_dir(out).map_err(DatasetError::io(out))?.next().is_none();
    let result = (|| {
        let mut writer = DatasetWriter::open(out, &env_id, &obs_space, &act_space, collection, shard_steps, false)?;
        for id in 0..total {
            let dir = data.join(id.to_string());
            let episode = read_episode(&dir, id, &obs_space, &act_space)
                .map_err(|message| DatasetError::Shard { path: dir.clone(), message })?;
            writer.write(&episode.episode(0))?;
        }
        writer.finish()
    })();
    if result.is_err() && created {
        let _ = fs::remove_dir_all(out);
    }
    result
}

fn parse_space(v: &Value) -> Result<Space, String> {
    match v.get("type").and_then(Value::as_str) {
        Some("Discrete") => {
            let n = v.get("n").and_then(Value::as_u64).ok_or("Discrete space without n")?;
            if n == 0 {
                return Err("Discrete space with n = 0".into());
            }
            if v.get("start").and_then(Value::as_i64).unwrap_or(0) != 0 {
                return Err("Discrete spaces with start != 0 are not supported".into());
            }
            Ok(Space::Discrete(n as usize))
        }
        Some("Box") => {
            let shape: Vec<usize> = v
                .get("shape")
                .and_then(Value::as_array)
                .ok_or("Box space without shape")?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize).ok_or("bad shape"))
                .collect::<Result<_, _>>()?;
            let bounds = |key: &str| -> Result<Vec<f32>, String> {
                let flat = flatten(v.get(key).ok_or(format!("Box space without {key}"))?);
                // Unbounded dimensions (JSON Infinity) become ±f32::MAX, as in the native envs.
                Ok(flat.into_iter().map(|x| x.clamp(f32::MIN as f64, f32::MAX as f64) as f32).collect())
            };
            let (low, high) = (bounds("low")?, bounds("high")?);
            let n = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or("shape too large")?;
            if low.len() != n || high.len() != n {
                return Err(format!("Box bounds have {} / {} values for shape {shape:?}", low.len(), high.len()));
            }
            let dtype = match v.get("dtype").and_then(Value::as_str) {
                Some("uint8") => frl_envs::BoxDtype::U8,
                _ => frl_envs::BoxDtype::F32,
            };
            Ok(Space::Box { low, high, shape, dtype })
        }
        other => Err(format!("space type {other:?} is not supported (only Box and Discrete)")),
    }
}

fn flatten(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(flatten).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap_or(f64::NAN)],
        Value::String(s) if s.eq_ignore_ascii_case("inf") || s.eq_ignore_ascii_case("infinity") => vec![f64::INFINITY],
        Value::String(s) if s.eq_ignore_ascii_case("-inf") || s.eq_ignore_ascii_case("-infinity") => {
            vec![f64::NEG_INFINITY]
        }
        _ => vec![f64::NAN],
    }
}

/// Reads one episode folder into a one-episode batch.
fn read_episode(dir: &Path, id: u64, obs_space: &Space, act_space: &Space) -> Result<EpisodeBatch, String> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("cannot list episode folder: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "arrow"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err("no .arrow file".into());
    }
    let names = files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ");
    read_episode_files(dir, &files, id, obs_space, act_space).map_err(|e| format!("{names}: {e}"))
}

/// Reads an Arrow IPC file's record batches from memory: every block is a bounds-checked slice of the file, so a
/// damaged length cannot make the reader allocate more than the file holds; the decoder's panics on malformed
/// buffers become errors.
fn read_arrow(f: &Path) -> Result<Vec<RecordBatch>, String> {
    let bytes = fs::read(f).map_err(|e| e.to_string())?;
    std::panic::catch_unwind(move || decode_arrow(arrow_buffer::Buffer::from_vec(bytes))).unwrap_or_else(|p| {
        let why = p.downcast_ref::<String>().cloned().or(p.downcast_ref::<&str>().map(|s| s.to_string()));
        Err(format!("malformed Arrow IPC file: {}", why.unwrap_or_default()))
    })
}

/// Decodes an Arrow IPC file held in `buf`.
fn decode_arrow(buf: arrow_buffer::Buffer) -> Result<Vec<RecordBatch>, String> {
    use arrow_ipc::reader::{FileDecoder, read_footer_length};
    let bad = |m: &str| format!("not an Arrow IPC file: {m}");
    let n = buf.len();
    let trailer: [u8; 10] = buf.get(n.saturating_sub(10)..).and_then(|t| t.try_into().ok()).ok_or(bad("too short"))?;
    let footer_len = read_footer_length(trailer).map_err(|e| bad(&e.to_string()))?;
    let footer_start = (n - 10).checked_sub(footer_len).ok_or(bad("the footer is longer than the file"))?;
    let footer = arrow_ipc::root_as_footer(&buf[footer_start..n - 10]).map_err(|e| bad(&e.to_string()))?;
    let schema = footer.schema().ok_or(bad("the footer has no schema"))?;
    let mut decoder = FileDecoder::new(std::sync::Arc::new(arrow_ipc::convert::fb_to_schema(schema)), footer.version());
    let block_bytes = |b: &arrow_ipc::Block| -> Result<arrow_buffer::Buffer, String> {
        let len = (b.metaDataLength() as i64).checked_add(b.bodyLength()).filter(|l| *l >= 0);
        let (start, len) = usize::try_from(b.offset())
            .ok()
            .zip(len.and_then(|l| usize::try_from(l).ok()))
            .ok_or(format!("block at offset {} has a negative size", b.offset()))?;
        if start.checked_add(len).is_none_or(|end| end > footer_start) {
            return Err(format!("a block of {len} bytes at offset {start} runs past the data ({footer_start} bytes)"));
        }
        Ok(buf.slice_with_length(start, len))
    };
    for b in footer.dictionaries().iter().flatten() {
        decoder.read_dictionary(b, &block_bytes(b)?).map_err(|e| e.to_string())?;
    }
    let mut batches = Vec::new();
    for b in footer.recordBatches().iter().flatten() {
        if let Some(batch) = decoder.read_record_batch(b, &block_bytes(b)?).map_err(|e| e.to_string())? {
            batches.push(batch);
        }
    }
    Ok(batches)
}

/// Reads the episode in `files` (its folder's Arrow files, in order).
fn read_episode_files(
    dir: &Path,
    files: &[PathBuf],
    id: u64,
    obs_space: &Space,
    act_space: &Space,
) -> Result<EpisodeBatch, String> {
    let mut batches = Vec::new();
    for f in files {
        batches.extend(read_arrow(f)?);
    }
    let column = |name: &str| -> Result<Vec<ArrayRef>, String> {
        batches
            .iter()
            .map(|b: &RecordBatch| b.column_by_name(name).cloned().ok_or(format!("column `{name}` is missing")))
            .collect()
    };
    let obs_dim = obs_space.flat_dim();
    let observations = floats(&column("observations")?, obs_dim).map_err(|e| format!("observations: {e}"))?;
    let rows = observations.len() / obs_dim.max(1);
    if rows < 2 {
        return Err(format!("{rows} observation rows; an episode needs at least one step"));
    }
    let steps = rows - 1;
    let actions = match act_space {
        Space::Discrete(n) => {
            let a = ints(&column("actions")?).map_err(|e| format!("actions: {e}"))?;
            if let Some(bad) = a[..steps.min(a.len())].iter().find(|&&a| a < 0 || a as usize >= *n) {
                return Err(format!("action {bad} is outside Discrete({n})"));
            }
            a.into_iter().map(|a| a as f32).collect::<Vec<f32>>()
        }
        Space::Box { .. } => floats(&column("actions")?, act_space.flat_dim()).map_err(|e| format!("actions: {e}"))?,
    };
    let rewards = floats(&column("rewards")?, 1).map_err(|e| format!("rewards: {e}"))?;
    let terminations = bools(&column("terminations")?).map_err(|e| format!("terminations: {e}"))?;
    let truncations = bools(&column("truncations")?).map_err(|e| format!("truncations: {e}"))?;
    let act_dim = act_space.flat_dim();
    for (name, len, per_row) in
        [("actions", actions.len(), act_dim), ("rewards", rewards.len(), 1), ("terminations", terminations.len(), 1)]
    {
        if len / per_row.max(1) < steps {
            return Err(format!("`{name}` has {} rows for {steps} steps", len / per_row.max(1)));
        }
    }
    let mut b = EpisodeBatch::new(obs_dim, act_dim);
    b.begin(&observations[..obs_dim]);
    for t in 0..steps {
        let action = match act_space {
            Space::Discrete(_) => Action::Discrete(actions[t] as usize),
            Space::Box { .. } => Action::Continuous(actions[t * act_dim..(t + 1) * act_dim].to_vec()),
        };
        let next = &observations[(t + 1) * obs_dim..(t + 2) * obs_dim];
        b.record(&action, rewards[t] as f64, next, terminations[t], truncations[t]);
    }
    // The episode's seed, when its metadata.json records one (Minari writes `null` for unseeded resets).
    let meta_path = dir.join("metadata.json");
    let seed = match fs::read_to_string(&meta_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(format!("{}: {e}", meta_path.display())),
        Ok(text) => {
            let m: Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", meta_path.display()))?;
            match m.get("seed") {
                None | Some(Value::Null) => 0,
                Some(v) => v.as_u64().ok_or_else(|| {
                    format!("{}: `seed` is {v}, expected a non-negative integer or null", meta_path.display())
                })?,
            }
        }
    };
    b.finish(EpisodeTag { index: id, seed, policy_version: 0 });
    Ok(b)
}

/// Flat f32 values of float columns or fixed-size lists of floats with `width` values per row.
fn floats(columns: &[ArrayRef], width: usize) -> Result<Vec<f32>, String> {
    let mut out = Vec::new();
    for c in columns {
        let values: ArrayRef = match c.as_fixed_size_list_opt() {
            Some(list) => {
                if list.value_length() as usize != width {
                    return Err(format!("{} values per row, expected {width}", list.value_length()));
                }
                list.values().slice(list.offset() * width, list.len() * width)
            }
            None => c.clone(),
        };
        if let Some(a) = values.as_primitive_opt::<Float32Type>() {
            out.extend_from_slice(a.values());
        } else if let Some(a) = values.as_primitive_opt::<Float64Type>() {
            out.extend(a.values().iter().map(|&x| x as f32));
        } else {
            return Err(format!("type {} is not float32/float64", values.data_type()));
        }
    }
    Ok(out)
}

fn ints(columns: &[ArrayRef]) -> Result<Vec<i64>, String> {
    let mut out = Vec::new();
    for c in columns {
        if let Some(a) = c.as_primitive_opt::<Int32Type>() {
            out.extend(a.values().iter().map(|&x| x as i64));
        } else if let Some(a) = c.as_primitive_opt::<Int64Type>() {
            out.extend_from_slice(a.values());
        } else {
            return Err(format!("type {} is not int32/int64", c.data_type()));
        }
    }
    Ok(out)
}

fn bools(columns: &[ArrayRef]) -> Result<Vec<bool>, String> {
    let mut out = Vec::new();
    for c in columns {
        let a = c.as_boolean_opt().ok_or(format!("type {} is not bool", c.data_type()))?;
        out.extend((0..a.len()).map(|i| a.value(i)));
    }
    Ok(out)
}
