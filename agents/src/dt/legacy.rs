//! The Decision Transformer's version 1 checkpoints (`frl-dt-checkpoint`, from before agents shared the learner),
//! converted on load: the job's `return_scale` and `action_permutation` move into the DT's section, the action
//! space is read back from the action coding, and the one optimiser's moments get the group name `model`.

use std::cell::Cell;
use std::path::Path;

use frl_envs::Space;
use frl_learner::checkpoint::{self, Checkpoint, CheckpointMeta, FORMAT, FORMAT_VERSION};
use frl_learner::optim::DEFAULT_GROUP;
use frl_learner::{DataSpec, TrainJob};
use serde::Deserialize;

/// The format of version 1.
const FORMAT_V1: &str = "frl-dt-checkpoint";

/// A DT checkpoint of any version the DT wrote.
pub fn read_checkpoint(path: &Path) -> anyhow::Result<Checkpoint> {
    let was_v1 = Cell::new(false);
    let mut ckpt = checkpoint::load_with(path, |json| match checkpoint::format_of(json)? {
        (f, 1) if f == FORMAT_V1 => {
            was_v1.set(true);
            convert_v1(json)
        }
        (f, v) if f != FORMAT || !checkpoint::reads_version(v) => {
            Err(format!("format {f} v{v} is not {FORMAT} v{FORMAT_VERSION} (or {FORMAT_V1} v1)"))
        }
        _ => checkpoint::parse_meta_as(json),
    })?;
    if was_v1.get() {
        // Version 1 kept one optimiser without a group name.
        let group = |mut t: frl_learner::params::NamedTensor| {
            t.name = format!("{DEFAULT_GROUP}.{}", t.name);
            (t.name.clone(), t)
        };
        ckpt.adam = ckpt.adam.into_values().map(group).collect();
    }
    Ok(ckpt)
}

/// Version 1 metadata: a Decision Transformer job with the model in `[model]`.
#[derive(Deserialize)]
struct MetaV1 {
    step: u64,
    job: serde_json::Value,
    env: String,
    obs_dim: usize,
    /// The DT's action coding: `{"discrete": {"n": ..}}` or `{"continuous": {"bounds": [[low, high], ..], ..}}`.
    coding: serde_json::Value,
    normalizer: NormalizerV1,
    dataset_best_return: f64,
}

/// Version 1's input scaling.
#[derive(Deserialize)]
struct NormalizerV1 {
    obs_mean: Vec<f32>,
    obs_std: Vec<f32>,
}

/// The action space a version 1 action coding was made for.
fn action_space_v1(coding: &serde_json::Value) -> Result<Space, String> {
    let bad = || format!("bad version 1 metadata: action coding {coding}");
    if let Some(n) = coding.get("discrete").and_then(|d| d.get("n")).and_then(|n| n.as_u64()) {
        return Ok(Space::Discrete(n as usize));
    }
    let bounds = coding.get("continuous").and_then(|c| c.get("bounds")).ok_or_else(bad)?;
    let bounds: Vec<(f32, f32)> = serde_json::from_value(bounds.clone()).map_err(|_| bad())?;
    let (low, high): (Vec<f32>, Vec<f32>) = bounds.into_iter().unzip();
    Ok(Space::vector(&low, &high))
}

/// The version 2 metadata of a version 1 checkpoint: the job's `return_scale` and `action_permutation` move into
/// the DT's section, the action space is read back from the action coding.
fn convert_v1(json: &str) -> Result<(CheckpointMeta, u32), String> {
    let old: MetaV1 = serde_json::from_str(json).map_err(|e| format!("bad version 1 metadata: {e}"))?;
    let mut job = old.job;
    let obj = job.as_object_mut().ok_or("bad version 1 metadata: `job` is not an object")?;
    let mut model = obj.remove("model").unwrap_or_else(|| serde_json::json!({}));
    let model_obj = model.as_object_mut().ok_or("bad version 1 metadata: `job.model` is not an object")?;
    if let Some(p) = obj.remove("action_permutation").filter(|p| !p.is_null()) {
        model_obj.insert("action_permutation".into(), p);
    }
    if let Some(scale) = obj.get_mut("train").and_then(|t| t.as_object_mut()).and_then(|t| t.remove("return_scale")) {
        model_obj.insert("return_scale".into(), scale);
    }
    obj.insert("agent".into(), "dt".into());
    obj.insert("dt".into(), model);
    if obj.get("eval").and_then(|e| e.get("target_return")).is_some_and(|v| v.is_null()) {
        obj["eval"].as_object_mut().expect("an object").remove("target_return");
    }
    let job: TrainJob = serde_json::from_value(job).map_err(|e| format!("bad version 1 job: {e}"))?;
    let action_space = action_space_v1(&old.coding)?;
    Ok((
        CheckpointMeta {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            agent: "dt".into(),
            step: old.step,
            job,
            data: DataSpec {
                env: old.env,
                obs_dim: old.obs_dim,
                action_space,
                obs_mean: old.normalizer.obs_mean,
                obs_std: old.normalizer.obs_std,
                best_return: old.dataset_best_return,
            },
            online: None,
            eval_return: None,
        },
        1,
    ))
}
