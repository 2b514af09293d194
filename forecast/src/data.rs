//! The forecaster's training windows, streamed: each row of a batch is a TSMixup series from a pool of real series
//! (probability `1 − synth_share`) or a window of a KernelSynth series (`synth_share`), cut into a context and a
//! forecast window and tokenised at the context's mean scale. A row depends only on its seed, so a batch is the same
//! on every machine and on resume.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use crate::kernel_synth::KernelSynth;
use crate::mixup::TsMixup;
use crate::model::{ForecastConfig, ForecastSpec};
use crate::series::SeriesSet;
use crate::tokenizer::Tokenizer;

/// Where training series come from (`[forecast.data]`); Chronos' settings by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingDataConfig {
    /// The pool of real series TSMixup mixes (a folder in frl's series format; empty: KernelSynth only). The default
    /// is the pool `scripts/export_forecast_pool.py` exports, which shares no series with the evaluation datasets.
    pub pool: PathBuf,
    /// Share of rows drawn from KernelSynth (Chronos: 0.1).
    pub synth_share: f64,
    /// Most series TSMixup mixes into one (Chronos: 3).
    pub mixup_series: usize,
    /// Concentration of TSMixup's Dirichlet weights (Chronos: 1.5).
    pub mixup_alpha: f64,
    /// Points of a KernelSynth series, of which a row takes a window (Chronos: 1024).
    pub synth_length: usize,
    /// Most kernels KernelSynth combines (Chronos: 5).
    pub synth_kernels: usize,
}

impl Default for TrainingDataConfig {
    fn default() -> Self {
        Self {
            pool: PathBuf::from("forecast/data/pool"),
            synth_share: 0.1,
            mixup_series: 3,
            mixup_alpha: 1.5,
            synth_length: 1024,
            synth_kernels: 5,
        }
    }
}

impl TrainingDataConfig {
    /// Checks every field, naming the one at fault.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(0.0..=1.0).contains(&self.synth_share) {
            bail!("`data.synth_share` = {}: must be in [0, 1]", self.synth_share);
        }
        if self.pool.as_os_str().is_empty() && self.synth_share < 1.0 {
            bail!("`data.pool` is empty: name a pool of series, or set `data.synth_share = 1` (KernelSynth only)");
        }
        if self.mixup_series == 0 || self.synth_kernels == 0 {
            bail!("`data.mixup_series` and `data.synth_kernels` must be at least 1");
        }
        if !(self.mixup_alpha.is_finite() && self.mixup_alpha > 0.0) {
            bail!("`data.mixup_alpha` = {}: must be positive", self.mixup_alpha);
        }
        Ok(())
    }
}

/// Everything a batch is drawn from.
#[derive(Debug, Clone)]
pub struct TrainingData {
    pool: Vec<Vec<f32>>,
    mixup: TsMixup,
    synth: KernelSynth,
    synth_share: f64,
    tokenizer: Tokenizer,
    context: usize,
    prediction: usize,
}

impl TrainingData {
    /// The training data of `config`, with the spec a checkpoint records; the pool is read from `config.data.pool`
    /// (relative paths from `base`), and errors name it.
    pub fn load(config: &ForecastConfig, base: &Path) -> anyhow::Result<(Self, ForecastSpec)> {
        let d = &config.data;
        let shortest = config.prediction + config.min_context;
        let longest = config.context + config.prediction;
        if d.synth_length < longest {
            bail!("`data.synth_length` = {}: must be at least context + prediction = {longest}", d.synth_length);
        }
        let (pool, path) = if d.pool.as_os_str().is_empty() {
            (Vec::new(), PathBuf::new())
        } else {
            let path = if d.pool.is_absolute() { d.pool.clone() } else { base.join(&d.pool) };
            let set = SeriesSet::open(&path).with_context(|| format!("`forecast.data.pool` = {}", d.pool.display()))?;
            let pool: Vec<Vec<f32>> = set.series.iter().map(|(_, v)| v.iter().map(|&x| x as f32).collect()).collect();
            if d.synth_share < 1.0 && !pool.iter().any(|s| s.len() >= shortest) {
                bail!(
                    "pool {}: no series has prediction + min_context = {shortest} values; TSMixup cannot draw from it",
                    path.display()
                );
            }
            (pool, d.pool.clone())
        };
        let spec = ForecastSpec { pool: path, pool_series: pool.len(), pool_values: pool.iter().map(Vec::len).sum() };
        let data = Self {
            pool,
            mixup: TsMixup { max_series: d.mixup_series, min_len: shortest, max_len: longest, alpha: d.mixup_alpha },
            synth: KernelSynth::with(d.synth_length, d.synth_kernels, 0),
            synth_share: d.synth_share,
            tokenizer: config.tokenizer()?,
            context: config.context,
            prediction: config.prediction,
        };
        Ok((data, spec))
    }

    /// The values of the row drawn from `seed`: `prediction + min_context` to `context + prediction` of them.
    pub fn row_values(&self, seed: u64) -> Vec<f32> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let synth = self.pool.is_empty() || rng.random_bool(self.synth_share);
        if synth {
            self.synth.window(self.context + self.prediction, &mut rng).1
        } else {
            // The pool was checked to hold a series long enough, and the settings are valid.
            self.mixup.mix(&self.pool, &mut rng).expect("the pool was checked when loaded")
        }
    }
}

/// The tokens of the rows drawn from `seeds`: inputs `[rows, context + prediction − 1]` (PAD on the left of short
/// contexts) and forecast targets `[rows, prediction]`, both row-major.
pub fn windows(data: &TrainingData, seeds: &[u64]) -> (Vec<u32>, Vec<u32>) {
    let (c, p) = (data.context, data.prediction);
    let t = c + p - 1;
    let mut tokens = Vec::with_capacity(seeds.len() * t);
    let mut targets = Vec::with_capacity(seeds.len() * p);
    let pad = data.tokenizer.config().pad;
    for &seed in seeds {
        let values = data.row_values(seed);
        let (context, future) = values.split_at(values.len() - p);
        let scale = Tokenizer::scale(context);
        tokens.extend(std::iter::repeat_n(pad, c - context.len()));
        tokens.extend(context.iter().map(|&v| data.tokenizer.token(v, scale)));
        let future: Vec<u32> = future.iter().map(|&v| data.tokenizer.token(v, scale)).collect();
        tokens.extend_from_slice(&future[..p - 1]);
        targets.extend(future);
    }
    (tokens, targets)
}
