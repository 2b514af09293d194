//! Forecasts as Chronos makes them: the last `context` values, mean-scaled and tokenised, then `samples` paths of
//! tokens drawn one at a time from the head's PMF (top-k), decoded to their bins' centres × the scale; beyond the
//! model's forecast window the forecast so far joins the context and the window starts again. Evaluation scores them
//! with MASE and WQL against seasonal naive, per dataset as Chronos reports them.

use anyhow::bail;
use burn::tensor::{Device, Int, Tensor, TensorData};
use frl_heads::Head;
use frl_nn::DropoutMasks;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

use crate::metrics::{self, Evaluated};
use crate::model::{ForecastConfig, ForecastNet};
use crate::series::{SeriesSet, seasonal_naive};
use crate::tokenizer::Tokenizer;

/// A series to forecast: its name and its past.
pub type Input<'a> = (&'a str, &'a [f64]);
/// Sample paths of each series: `[series][path][step]`.
pub type Paths = Vec<Vec<Vec<f32>>>;

/// The quantile levels Chronos' WQL averages over (0.1 … 0.9).
pub const QUANTILES: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// How forecasts are sampled.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// Paths per series.
    pub samples: usize,
    /// Sample from the `top_k` most likely tokens only (0: all).
    pub top_k: usize,
    /// Seed of series `i`'s paths (with `i`).
    pub seed: u64,
    /// Series forecast together in one batch.
    pub series_per_batch: usize,
    /// Threads forecasting batches side by side (results do not depend on it).
    pub threads: usize,
}

impl Sampling {
    /// The job's settings (`samples`, `top_k`) with `seed`.
    pub fn of(config: &ForecastConfig, seed: u64) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { samples: config.samples, top_k: config.top_k, seed, series_per_batch: 8, threads }
    }
}

/// A forecaster ready to predict: an inference copy of the network, its settings and tokeniser.
pub struct Predictor {
    net: ForecastNet,
    config: ForecastConfig,
    tokenizer: Tokenizer,
    device: Device,
}

impl Predictor {
    /// A predictor over `net` (moved to plain inference) for `config`.
    pub fn new(net: ForecastNet, config: ForecastConfig, device: &Device) -> anyhow::Result<Self> {
        let tokenizer = config.tokenizer()?;
        Ok(Self { net, config, tokenizer, device: device.clone() })
    }

    /// Its settings.
    pub fn config(&self) -> &ForecastConfig {
        &self.config
    }

    /// Checks a series' past as a context: it must hold a finite value and not only zeros (a mean scale of 0
    /// cannot scale it); errors name the series.
    pub fn check_context(name: &str, past: &[f64]) -> anyhow::Result<()> {
        if past.is_empty() {
            bail!("series {name}: no values to forecast from");
        }
        if let Some(v) = past.iter().find(|v| v.is_infinite()) {
            bail!("series {name}: value {v} is not finite");
        }
        if past.iter().all(|v| v.is_nan()) {
            bail!("series {name}: every value is missing (NaN)");
        }
        if past.iter().all(|v| v.is_nan() || *v == 0.0) {
            bail!("series {name}: every value is 0, so its mean scale is 0 and it cannot be scaled");
        }
        Ok(())
    }

    /// `sampling.samples` paths of `horizon` values for each `(name, past)`, `[series][path][step]`; series `i`'s
    /// paths depend only on `(sampling.seed, i)` and its past. Errors name the series at fault.
    pub fn forecast(
        &self,
        series: &[(&str, &[f64])],
        horizon: usize,
        sampling: &Sampling,
    ) -> anyhow::Result<Vec<Vec<Vec<f32>>>> {
        if horizon == 0 {
            bail!("the horizon must be at least 1");
        }
        if sampling.samples == 0 {
            bail!("`samples` must be at least 1");
        }
        for (name, past) in series {
            Self::check_context(name, past)?;
        }
        let chunk = sampling.series_per_batch.max(1);
        let groups: Vec<(usize, &[Input<'_>])> =
            series.chunks(chunk).enumerate().map(|(c, g)| (c * chunk, g)).collect();
        let threads = sampling.threads.clamp(1, groups.len().max(1));
        // Thread k forecasts groups k, k + threads, ...; the results go back in series order.
        let parts: Vec<anyhow::Result<Vec<(usize, Paths)>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|k| {
                    let groups = &groups;
                    scope.spawn(move || {
                        groups
                            .iter()
                            .skip(k)
                            .step_by(threads)
                            .map(|&(first, group)| Ok((first, self.forecast_group(group, first, horizon, sampling)?)))
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("a forecasting thread panicked")).collect()
        });
        let mut done: Vec<(usize, Paths)> = Vec::with_capacity(groups.len());
        for part in parts {
            done.extend(part?);
        }
        done.sort_by_key(|(first, _)| *first);
        Ok(done.into_iter().flat_map(|(_, f)| f).collect())
    }

    /// [`Predictor::forecast`] of series `first..first + group.len()` in one batch.
    fn forecast_group(
        &self,
        group: &[(&str, &[f64])],
        first: usize,
        horizon: usize,
        sampling: &Sampling,
    ) -> anyhow::Result<Vec<Vec<Vec<f32>>>> {
        let (c, p) = (self.config.context, self.config.prediction);
        let paths = sampling.samples;
        let rows = group.len() * paths;
        // Each row's values so far: its series' past, then its forecast.
        let mut history: Vec<Vec<f32>> = group
            .iter()
            .flat_map(|(_, past)| {
                let past: Vec<f32> = past.iter().map(|&v| v as f32).collect();
                std::iter::repeat_n(past, paths)
            })
            .collect();
        let mut rngs: Vec<Xoshiro256PlusPlus> = (0..group.len())
            .map(|i| {
                let s = sampling.seed ^ ((first + i) as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                Xoshiro256PlusPlus::seed_from_u64(s)
            })
            .collect();
        let mut forecasts = vec![Vec::with_capacity(horizon); rows];
        let vocab = self.config.tokenizer.n_tokens;
        let mut done = 0;
        while done < horizon {
            // A new window: the last `context` values of each row, scaled and tokenised.
            let window: Vec<(Vec<u32>, f32)> = history.iter().map(|h| self.context_tokens(h)).collect();
            let steps = p.min(horizon - done);
            let mut generated: Vec<Vec<u32>> = vec![Vec::with_capacity(steps); rows];
            for _ in 0..steps {
                let t = c + generated[0].len();
                let mut ids = Vec::with_capacity(rows * t);
                for (r, (ctx, _)) in window.iter().enumerate() {
                    ids.extend(ctx.iter().chain(&generated[r]).map(|&v| v as i64));
                }
                let tokens = Tensor::<2, Int>::from_data(TensorData::new(ids, [rows, t]), &self.device);
                let h = self.net.features(tokens, &mut DropoutMasks::none());
                let d = self.config.d_model;
                let last = h.narrow(1, t - 1, 1).reshape([rows, d]);
                let pmf = self.net.head.pmf(last).into_data().try_to_vec::<f32>();
                let pmf = pmf.map_err(|e| anyhow::anyhow!("reading PMFs: {e:?}"))?;
                for (r, row) in pmf.chunks(vocab).enumerate() {
                    let token = sample_top_k(row, sampling.top_k, &mut rngs[r / paths]);
                    generated[r].push(token);
                    let value = self.tokenizer.decode(token, window[r].1);
                    forecasts[r].push(value);
                }
            }
            for (h, f) in history.iter_mut().zip(&forecasts) {
                h.extend_from_slice(&f[f.len() - steps..]);
            }
            done += steps;
        }
        Ok(forecasts.chunks(paths).map(|c| c.to_vec()).collect())
    }

    /// The context tokens (PAD-padded on the left to `context`) of the last `context` values of `history`, with
    /// their scale.
    fn context_tokens(&self, history: &[f32]) -> (Vec<u32>, f32) {
        let c = self.config.context;
        let ctx = &history[history.len().saturating_sub(c)..];
        let scale = Tokenizer::scale(ctx);
        let pad = self.tokenizer.config().pad;
        let mut tokens = vec![pad; c - ctx.len()];
        tokens.extend(ctx.iter().map(|&v| self.tokenizer.token(v, scale)));
        (tokens, scale)
    }
}

/// A token drawn from `pmf` restricted to its `k` most likely entries (ties to the lower id; `k = 0`: all),
/// renormalised.
pub fn sample_top_k(pmf: &[f32], k: usize, rng: &mut impl Rng) -> u32 {
    let mut kept: Vec<u32> = (0..pmf.len() as u32).collect();
    if k > 0 && k < pmf.len() {
        kept.select_nth_unstable_by(k - 1, |&a, &b| pmf[b as usize].total_cmp(&pmf[a as usize]).then(a.cmp(&b)));
        kept.truncate(k);
        kept.sort_unstable();
    }
    let total: f64 = kept.iter().map(|&i| pmf[i as usize].max(0.0) as f64).sum();
    let mut u = rng.random::<f64>() * total;
    for &i in &kept {
        u -= pmf[i as usize].max(0.0) as f64;
        if u < 0.0 {
            return i;
        }
    }
    *kept.last().expect("a PMF has at least one entry")
}

/// Scores of one method on one dataset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DatasetScores {
    /// Mean absolute scaled error of the median forecast.
    pub mase: f64,
    /// Weighted quantile loss over [`QUANTILES`].
    pub wql: f64,
}

/// A model's and seasonal naive's scores on one dataset.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetReport {
    /// The dataset's name.
    pub dataset: String,
    /// Series scored.
    pub series: usize,
    /// The horizon.
    pub horizon: usize,
    /// The model's scores.
    pub model: DatasetScores,
    /// Seasonal naive's scores.
    pub seasonal_naive: DatasetScores,
}

impl DatasetReport {
    /// The model's MASE relative to seasonal naive's.
    pub fn relative_mase(&self) -> f64 {
        self.model.mase / self.seasonal_naive.mase
    }

    /// The model's WQL relative to seasonal naive's.
    pub fn relative_wql(&self) -> f64 {
        self.model.wql / self.seasonal_naive.wql
    }
}

/// Scores `forecasts` (`[series][path][step]`) of `set`'s held-out windows, beside seasonal naive's.
pub fn score(set: &SeriesSet, forecasts: &[Vec<Vec<f32>>]) -> DatasetReport {
    let m = set.meta.seasonality;
    let h = set.meta.horizon;
    let split = set.split();
    let items: Vec<Evaluated> = split
        .iter()
        .zip(forecasts)
        .map(|((_, past, target), paths)| Evaluated {
            past: past.to_vec(),
            target: target.to_vec(),
            samples: paths.iter().map(|p| p.iter().map(|&v| v as f64).collect()).collect(),
        })
        .collect();
    let naive: Vec<Evaluated> = split
        .iter()
        .map(|(_, past, target)| Evaluated {
            past: past.to_vec(),
            target: target.to_vec(),
            samples: vec![seasonal_naive(past, m, h)],
        })
        .collect();
    let s = metrics::scores(&items, m, &QUANTILES);
    let n = metrics::scores(&naive, m, &QUANTILES);
    DatasetReport {
        dataset: set.meta.name.clone(),
        series: set.series.len(),
        horizon: h,
        model: DatasetScores { mase: s.mase, wql: s.wql },
        seasonal_naive: DatasetScores { mase: n.mase, wql: n.wql },
    }
}

/// The geometric mean of `values` (Chronos' aggregate of relative scores over datasets).
pub fn geometric_mean(values: &[f64]) -> f64 {
    (values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp()
}

/// Forecasts every series of `set` from its past (the last `horizon` values held out) and scores them.
pub fn evaluate(predictor: &Predictor, set: &SeriesSet, sampling: &Sampling) -> anyhow::Result<DatasetReport> {
    let split = set.split();
    let inputs: Vec<(&str, &[f64])> = split.iter().map(|(n, p, _)| (*n, *p)).collect();
    let forecasts = predictor.forecast(&inputs, set.meta.horizon, sampling)?;
    Ok(score(set, &forecasts))
}
