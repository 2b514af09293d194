//! Checkpoints: one safetensors file per save holding the agent's parameters (`model.<name>`), the optimiser's
//! moments (`adam.<group>.<name>.m|v`) and, in the header's metadata, a JSON [`CheckpointMeta`] (agent kind, job,
//! step, the data spec the agent was built for). Files are written to a temporary name and renamed, so a checkpoint
//! on disk is always complete.
//!
//! Integrity: from version 3 the header's metadata also holds `frl.crc32c`, the CRC-32C of the whole file as written
//! with that value's eight hex digits set to `0`; every reader checks it, so one flipped byte anywhere (header or
//! tensor data) is refused with the file named. Version 2 files (no checksum) still load, with a warning once.
//!
//! Compatibility: fields added to a job carry serde defaults, so older checkpoints of the same format version load;
//! a change that renames or removes a field raises [`FORMAT_VERSION`], and a model converts its own older layouts
//! in [`Trainable::read_checkpoint`](crate::Trainable::read_checkpoint) with [`load_with`] (the Decision
//! Transformer's version 1 is converted there).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::TrainJob;
use super::agent::DataSpec;
use super::params::NamedTensor;
use frl_dataset::fsutil::write_atomic;

/// The `format` value of a checkpoint's metadata.
pub const FORMAT: &str = "frl-checkpoint";
/// The metadata layout version this build writes.
pub const FORMAT_VERSION: u32 = 3;
/// The last version written without a checksum; its layout is version 3's otherwise.
pub const FORMAT_VERSION_UNCHECKED: u32 = 2;
const META_KEY: &str = "frl";
/// The header metadata key of the file's CRC-32C (eight lowercase hex digits).
pub const CHECKSUM_KEY: &str = "frl.crc32c";
const CHECKSUM_PLACEHOLDER: &str = "00000000";

/// Whether this build reads metadata of layout version `v` as it is (the current one and the unchecked one before).
pub fn reads_version(v: u32) -> bool {
    v == FORMAT_VERSION || v == FORMAT_VERSION_UNCHECKED
}

/// What a checkpoint says about itself; `S` is what the model was built for (an agent's [`DataSpec`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta<S = DataSpec> {
    /// Always [`FORMAT`].
    pub format: String,
    /// Layout version.
    pub format_version: u32,
    /// The model kind (`dt`, `bc`, `iql`, ...): which [`Trainable`](super::Trainable) rebuilds it.
    pub agent: String,
    /// Optimiser steps taken.
    pub step: u64,
    /// The job that wrote it (agent config, training and evaluation settings, seed).
    pub job: TrainJob,
    /// What the model was built for (an agent's env, spaces and observation scaling).
    pub data: S,
    /// Where an online run stood (env steps, episodes, policy version); absent for offline runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<OnlineProgress>,
    /// The mean evaluation return of these parameters, in a best checkpoint (`eval.keep_best`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_return: Option<f64>,
}

/// Where an online run stands; stored in its checkpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OnlineProgress {
    /// Env steps of the episodes the learner received.
    pub env_steps: u64,
    /// Episodes received.
    pub episodes: u64,
    /// Updates done.
    pub updates: u64,
    /// The newest policy version broadcast.
    pub version: u64,
    /// Actor failures (panics, env errors) over the whole run, resumed invocations included.
    #[serde(default)]
    pub actor_failures: u64,
    /// Steps of episodes given up unfinished because their actor failed (deterministic runs; counted in
    /// `env_steps`, never recorded).
    #[serde(default)]
    pub lost_steps: u64,
    /// One past the highest episode index received (a resumed deterministic run without `slots` numbers its
    /// episodes from here).
    #[serde(default)]
    pub next_episode: u64,
    /// Deterministic runs: the index of the first episode of the slots' numbering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode_base: Option<u64>,
    /// Deterministic runs: where each env slot stood (episodes begun, the episode in flight), so that a resumed run
    /// continues those episodes and numbers new ones as the run would have without the stop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<frl_rollout::SlotState>,
}

/// A checkpoint's `format` and `format_version`, from its metadata JSON.
pub fn format_of(json: &str) -> Result<(String, u32), String> {
    #[derive(Deserialize)]
    struct Head {
        format: String,
        format_version: u32,
    }
    let head: Head = serde_json::from_str(json).map_err(|e| format!("bad metadata: {e}"))?;
    Ok((head.format, head.format_version))
}

/// Parses the metadata JSON of a checkpoint of a model built for `S` (the current format version only).
pub fn parse_meta_as<S: serde::de::DeserializeOwned>(json: &str) -> Result<(CheckpointMeta<S>, u32), String> {
    match format_of(json)? {
        (f, v) if f == FORMAT && reads_version(v) => {
            serde_json::from_str(json).map(|m| (m, v)).map_err(|e| format!("bad metadata: {e}"))
        }
        (f, v) => Err(format!("format {f} v{v} is not {FORMAT} v{FORMAT_VERSION}")),
    }
}

/// A loaded checkpoint.
pub struct Checkpoint<S = DataSpec> {
    /// Its metadata.
    pub meta: CheckpointMeta<S>,
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
pub fn save<S: Serialize>(
    path: &Path,
    meta: &CheckpointMeta<S>,
    model: &[NamedTensor],
    adam: &[NamedTensor],
) -> anyhow::Result<()> {
    let file = encode(meta, model, adam).map_err(|e| anyhow::anyhow!("checkpoint {}: {e}", path.display()))?;
    write_atomic(path, &file).map_err(|e| anyhow::anyhow!("cannot write checkpoint {}: {e}", path.display()))
}

/// A checkpoint file's bytes.
pub fn encode<S: Serialize>(
    meta: &CheckpointMeta<S>,
    model: &[NamedTensor],
    adam: &[NamedTensor],
) -> anyhow::Result<Vec<u8>> {
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
    let info = HashMap::from([
        (META_KEY.to_string(), serde_json::to_string(meta)?),
        (CHECKSUM_KEY.to_string(), CHECKSUM_PLACEHOLDER.to_string()),
    ]);
    let mut file = safetensors::serialize(views, Some(info))?;
    let at = checksum_field(&file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let crc = crc32c::crc32c(&file);
    file[at..at + 8].copy_from_slice(format!("{crc:08x}").as_bytes());
    Ok(file)
}

/// Reads and checks an agent's checkpoint in the current format; errors name the file. A model reads the layouts
/// it wrote in older versions with [`Trainable::read_checkpoint`](crate::Trainable::read_checkpoint).
pub fn load(path: &Path) -> anyhow::Result<Checkpoint> {
    load_as(path)
}

/// Reads and checks the checkpoint of a model built for `S`; errors name the file.
pub fn load_as<S: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Checkpoint<S>> {
    load_with(path, parse_meta_as::<S>)
}

/// Reads a checkpoint whose metadata `parse` reads (returning the version it was written in): the hook through
/// which a model converts an older layout of its own. Tensors named `model.*` and `adam.*` are returned as they are
/// stored.
pub fn load_with<S>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<(CheckpointMeta<S>, u32), String>,
) -> anyhow::Result<Checkpoint<S>> {
    let ctx = |m: String| anyhow::anyhow!("checkpoint {}: {m}", path.display());
    let bytes = fs::read(path).map_err(|e| ctx(format!("cannot read: {e}")))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| ctx(format!("not a safetensors file ({e}): the file is damaged{}", previous_hint(path))))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| ctx(e.to_string()))?;
    let metadata = header.metadata().as_ref();
    let stored = metadata.and_then(|m| m.get(CHECKSUM_KEY));
    if stored.is_some() {
        verify(&bytes).map_err(|e| ctx(format!("{e}{}", previous_hint(path))))?;
    }
    let json = metadata
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| ctx("no frl metadata in the header: not written by frl train".into()))?;
    let (meta, version) = parse(json).map_err(ctx)?;
    if stored.is_none() {
        if version >= FORMAT_VERSION {
            return Err(ctx(format!(
                "version {version} carries a checksum, but `{CHECKSUM_KEY}` is missing from the header: the file is \
                 damaged{}",
                previous_hint(path)
            )));
        }
        warn_unchecked(path);
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

/// The offset of the checksum's eight hex digits in a checkpoint's bytes: the one `"frl.crc32c":"` in its header
/// (a JSON string cannot hold that sequence unescaped, so it is the key).
fn checksum_field(bytes: &[u8]) -> Result<usize, String> {
    let n = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))).ok_or("too short")?;
    let header = usize::try_from(n).ok().and_then(|n| bytes.get(8..8usize.checked_add(n)?)).ok_or("header too long")?;
    let needle = format!("\"{CHECKSUM_KEY}\":\"");
    let mut found = header.windows(needle.len()).enumerate().filter(|(_, w)| *w == needle.as_bytes());
    match (found.next(), found.next()) {
        (Some((i, _)), None) if header.len() >= i + needle.len() + 9 => {
            let at = 8 + i + needle.len();
            if bytes[at + 8] != b'"' {
                return Err(format!("`{CHECKSUM_KEY}` is not eight hex digits"));
            }
            Ok(at)
        }
        (Some(_), Some(_)) => Err(format!("`{CHECKSUM_KEY}` appears twice in the header")),
        _ => Err(format!("`{CHECKSUM_KEY}` is not a plain header field")),
    }
}

/// Checks a checkpoint's CRC-32C against the one its header stores.
fn verify(bytes: &[u8]) -> Result<(), String> {
    let at = checksum_field(bytes)?;
    let digits = std::str::from_utf8(&bytes[at..at + 8]).ok();
    let stored = digits
        .filter(|d| d.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .and_then(|d| u32::from_str_radix(d, 16).ok())
        .ok_or_else(|| format!("`{CHECKSUM_KEY}` is not eight lowercase hex digits: the file is damaged"))?;
    let crc = crc32c::crc32c(&bytes[..at]);
    let crc = crc32c::crc32c_append(crc, CHECKSUM_PLACEHOLDER.as_bytes());
    let crc = crc32c::crc32c_append(crc, &bytes[at + 8..]);
    if crc != stored {
        return Err(format!(
            "CRC-32C mismatch (the header says {stored:08x}, the contents give {crc:08x}): the file is damaged"
        ));
    }
    Ok(())
}

/// What to do about a damaged checkpoint: the one before it in its folder, if any.
fn previous_hint(path: &Path) -> String {
    let Some(dir) = path.parent() else { return String::new() };
    let step = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("ckpt-")?.strip_suffix(".safetensors")?.parse::<u64>().ok());
    let before: Vec<_> = list(dir).into_iter().filter(|(s, p)| p != path && step.is_none_or(|t| *s < t)).collect();
    match (before.last(), step) {
        (Some((_, p)), Some(_)) => format!(
            "; the newest checkpoint before it is {} (move this file away and `--resume` continues from that one)",
            p.display()
        ),
        (Some((_, p)), None) => format!("; the newest checkpoint in its folder is {}", p.display()),
        (None, _) => "; no other checkpoint is in its folder".into(),
    }
}

/// Says once per process and file that a checkpoint from before checksums was loaded unverified.
fn warn_unchecked(path: &Path) {
    static SEEN: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if !seen.iter().any(|p| p == path) {
        seen.push(path.to_path_buf());
        eprintln!(
            "note: checkpoint {} was written before checkpoints carried a checksum (format v{FORMAT_VERSION_UNCHECKED}); \
             it is loaded unverified",
            path.display()
        );
    }
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
