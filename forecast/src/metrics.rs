//! Forecast accuracy as Chronos reports it (gluonts' definitions): MASE of the median forecast, scaled by the
//! in-sample seasonal error, and the mean weighted quantile loss over quantile levels, both over a whole dataset.
//! Each metric is divided by seasonal naive's in the paper's tables, then aggregated by the geometric mean.

/// One evaluated series: its past (the context), the held-out target, and sample paths of the forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    /// The values before the forecast window.
    pub past: Vec<f64>,
    /// The held-out values, `horizon` long.
    pub target: Vec<f64>,
    /// Sample paths, each `horizon` long.
    pub samples: Vec<Vec<f64>>,
}

/// A dataset's scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// Mean over series of each series' MASE.
    pub mase: f64,
    /// Mean over the quantile levels of the dataset's weighted quantile loss.
    pub wql: f64,
}

/// The `q`-quantile of sample values as gluonts' `SampleForecast` takes it: the order statistic at
/// `round((n − 1)·q)` (ties to even), no interpolation.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.to_vec();
    v.sort_by(f64::total_cmp);
    let index = ((v.len() - 1) as f64 * q.clamp(0.0, 1.0)).round_ties_even() as usize;
    v[index]
}

/// The forecast's `q`-quantile at every step of the window.
pub fn path_quantiles(samples: &[Vec<f64>], q: f64) -> Vec<f64> {
    let horizon = samples.first().map_or(0, Vec::len);
    (0..horizon).map(|t| quantile(&samples.iter().map(|s| s[t]).collect::<Vec<_>>(), q)).collect()
}

/// Mean absolute difference of `past` with itself `seasonality` steps earlier (lag 1 when the series is shorter than
/// the seasonality), as gluonts.
pub fn seasonal_error(past: &[f64], seasonality: usize) -> f64 {
    let m = if seasonality > past.len() { 1 } else { seasonality.max(1) };
    let diffs: Vec<f64> = past.windows(m + 1).map(|w| (w[m] - w[0]).abs()).collect();
    diffs.iter().sum::<f64>() / diffs.len() as f64
}

/// MASE of one series: the median forecast's mean absolute error over the seasonal error of its past.
pub fn mase(item: &Evaluated, seasonality: usize) -> f64 {
    let median = path_quantiles(&item.samples, 0.5);
    let mae = item.target.iter().zip(&median).map(|(y, f)| (y - f).abs()).sum::<f64>() / item.target.len() as f64;
    mae / seasonal_error(&item.past, seasonality)
}

/// `2 Σ |(ŷ − y)(1{ŷ ≥ y} − q)|` over the window: the quantile loss of forecast `f` at level `q`.
pub fn quantile_loss(target: &[f64], forecast: &[f64], q: f64) -> f64 {
    let one = |y: f64, f: f64| 2.0 * ((f - y) * (if f >= y { 1.0 } else { 0.0 } - q)).abs();
    target.iter().zip(forecast).map(|(&y, &f)| one(y, f)).sum()
}

/// MASE (mean over series) and the weighted quantile loss (each level's loss summed over the dataset and divided
/// by the dataset's summed absolute target, then averaged over `levels`).
pub fn scores(items: &[Evaluated], seasonality: usize, levels: &[f64]) -> Scores {
    let mase = items.iter().map(|i| mase(i, seasonality)).sum::<f64>() / items.len() as f64;
    let scale: f64 = items.iter().flat_map(|i| i.target.iter()).map(|y| y.abs()).sum();
    let wql = levels
        .iter()
        .map(|&q| {
            items.iter().map(|i| quantile_loss(&i.target, &path_quantiles(&i.samples, q), q)).sum::<f64>() / scale
        })
        .sum::<f64>()
        / levels.len() as f64;
    Scores { mase, wql }
}
