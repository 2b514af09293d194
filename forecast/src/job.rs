//! Forecasting jobs: training from a job file on the run layer, a trained forecaster back from its checkpoint, and
//! series read from a user's CSV file. The command line (`frl forecast`) is a thin layer over these.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, bail};
use burn::tensor::Device;
use frl_learner::checkpoint::CheckpointMeta;
use frl_learner::{TrainJob, TrainOptions, TrainSummary, Trainable, fit_model, load_model};

use crate::data::TrainingData;
use crate::model::{ForecastConfig, ForecastSpec, Forecaster};
use crate::predict::Predictor;

/// A job file's text as a forecasting job: `agent = "forecast"` unless it names another kind (an error).
pub fn parse_job(text: &str, path: &Path) -> anyhow::Result<TrainJob> {
    let mut value: toml::Table =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("job file {}: {e}", path.display()))?;
    match value.get("agent") {
        None => {
            value.insert("agent".into(), toml::Value::String(Forecaster::KIND.into()));
        }
        Some(toml::Value::String(kind)) if kind == Forecaster::KIND => {}
        Some(other) => {
            bail!("job file {}: `agent` = {other}: a forecasting job has agent = \"forecast\"", path.display())
        }
    }
    let text = toml::to_string(&value)?;
    let job = TrainJob::parse(&text).with_context(|| format!("job file {}", path.display()))?;
    job.agent_config::<ForecastConfig>().with_context(|| format!("job file {}", path.display()))?;
    Ok(job)
}

/// Reads and checks a forecasting job file with `KEY=VALUE` overrides of its fields (`train.steps=100`).
pub fn load_job(path: &Path, sets: &[String]) -> anyhow::Result<TrainJob> {
    let job = parse_job(&frl_learner::job_text(path, sets)?, path);
    if sets.is_empty() { job } else { job.with_context(|| format!("with --set {}", sets.join(" --set "))) }
}

/// Trains the job's forecaster on the run layer (checkpoints, resume, TensorBoard, Ctrl-C through `stop`). The pool
/// path is relative to the working folder.
pub fn train(job: &TrainJob, options: &TrainOptions, stop: Arc<AtomicBool>) -> anyhow::Result<TrainSummary> {
    let config: ForecastConfig = job.agent_config()?;
    let base = Path::new(".");
    let spec = || Ok(TrainingData::load(&config, base)?.1);
    fit_model::<Forecaster>(job, options, stop, spec, |_| Ok(TrainingData::load(&config, base)?.0))
}

/// A trained forecaster, ready to predict on `device` (plain, without autodiff), and its checkpoint's metadata.
pub fn load_predictor(checkpoint: &Path, device: &Device) -> anyhow::Result<(Predictor, CheckpointMeta<ForecastSpec>)> {
    let loaded = load_model::<Forecaster>(checkpoint, device)?;
    let predictor = Predictor::new(loaded.model.net, loaded.config, device)?;
    Ok((predictor, loaded.meta))
}

/// Series from a CSV file: a header line, then either `series,value` lines (several series, each in one run of
/// lines) or one `value` per line (one series named after the file). Empty values and `nan` are missing. Errors
/// name the file and line.
pub fn read_csv(path: &Path) -> anyhow::Result<Vec<(String, Vec<f64>)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else { bail!("{}: the file is empty", path.display()) };
    let columns = header.split(',').count();
    if columns > 2 {
        bail!("{}:1: expected a header of `series,value` or `value`, found {columns} columns", path.display());
    }
    let file_name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut series: Vec<(String, Vec<f64>)> = Vec::new();
    for (i, line) in lines {
        let at = || format!("{}:{}", path.display(), i + 1);
        let (name, value) = if columns == 2 {
            line.rsplit_once(',').with_context(|| format!("{}: expected `series,value`", at()))?
        } else {
            (file_name.as_str(), line)
        };
        let value = value.trim();
        let value: f64 = if value.is_empty() || value.eq_ignore_ascii_case("nan") || value.eq_ignore_ascii_case("na") {
            f64::NAN
        } else {
            value.parse().map_err(|_| anyhow::anyhow!("{}: series {name}: `{value}` is not a number", at()))?
        };
        if value.is_infinite() {
            bail!("{}: series {name}: value {value} is not finite", at());
        }
        if series.last().is_some_and(|(last, _)| last == name) {
            series.last_mut().expect("checked").1.push(value);
        } else if series.iter().any(|(n, _)| n == name) {
            bail!("{}: series {name} appears in two places", at());
        } else {
            series.push((name.to_string(), vec![value]));
        }
    }
    if series.is_empty() {
        bail!("{}: no values after the header", path.display());
    }
    Ok(series)
}
