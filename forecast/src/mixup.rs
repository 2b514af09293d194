//! TSMixup (Ansari et al. 2024, the Chronos paper): a new training series as a convex combination of windows of up to
//! `max_series` series from a pool: `k ~ U{1..max_series}`, a length `l ~ U{min_len..max_len}` (at most the shortest
//! chosen series), a random window of length `l` from each, each divided by its mean absolute value, weights
//! `λ ~ Dirichlet(α, …, α)`; the result is `Σ λᵢ x̃ᵢ`. Chronos' settings: 3 series, lengths 128–2048, α = 1.5.

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Gamma};
use rand_xoshiro::Xoshiro256PlusPlus;

/// TSMixup's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TsMixup {
    /// Most series mixed into one.
    pub max_series: usize,
    /// Shortest window.
    pub min_len: usize,
    /// Longest window.
    pub max_len: usize,
    /// Concentration of the Dirichlet weights.
    pub alpha: f64,
}

impl Default for TsMixup {
    fn default() -> Self {
        Self { max_series: 3, min_len: 128, max_len: 2048, alpha: 1.5 }
    }
}

/// Why no series could be mixed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MixupError {
    /// The pool holds no series of at least `min_len` values.
    #[error("TSMixup: no series in the pool has at least {min_len} values")]
    PoolTooShort {
        /// The shortest window asked for.
        min_len: usize,
    },
    /// A setting cannot work.
    #[error("TSMixup: `{0}` is out of range")]
    Setting(&'static str),
}

/// `x` divided by its mean absolute value over the non-missing values (unchanged when that is not positive).
pub fn mean_scaled(x: &[f32]) -> Vec<f32> {
    let (sum, n) = x.iter().filter(|v| !v.is_nan()).fold((0.0f64, 0usize), |(s, n), v| (s + v.abs() as f64, n + 1));
    let scale = if n > 0 && sum > 0.0 { (sum / n as f64) as f32 } else { 1.0 };
    x.iter().map(|v| v / scale).collect()
}

impl TsMixup {
    /// Series `index` of a run seeded with `seed`, mixed from `pool` (only series of at least `min_len` values take
    /// part); it depends only on `(seed, index)` and the pool.
    pub fn series(&self, pool: &[Vec<f32>], seed: u64, index: u64) -> Result<Vec<f32>, MixupError> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        self.mix(pool, &mut rng)
    }

    /// One mixed series drawn with `rng`.
    pub fn mix(&self, pool: &[Vec<f32>], rng: &mut impl Rng) -> Result<Vec<f32>, MixupError> {
        if self.max_series == 0 {
            return Err(MixupError::Setting("max_series"));
        }
        if self.min_len == 0 || self.max_len < self.min_len {
            return Err(MixupError::Setting("min_len/max_len"));
        }
        let gamma = Gamma::new(self.alpha, 1.0).map_err(|_| MixupError::Setting("alpha"))?;
        let eligible: Vec<&Vec<f32>> = pool.iter().filter(|s| s.len() >= self.min_len).collect();
        if eligible.is_empty() {
            return Err(MixupError::PoolTooShort { min_len: self.min_len });
        }
        let k = rng.random_range(1..=self.max_series);
        let chosen: Vec<&Vec<f32>> = (0..k).map(|_| eligible[rng.random_range(0..eligible.len())]).collect();
        let shortest = chosen.iter().map(|s| s.len()).min().expect("k >= 1");
        let len = rng.random_range(self.min_len..=self.max_len.min(shortest));
        let weights: Vec<f64> = (0..k).map(|_| gamma.sample(rng)).collect();
        let total: f64 = weights.iter().sum();
        let mut out = vec![0.0f32; len];
        for (series, w) in chosen.iter().zip(&weights) {
            let start = rng.random_range(0..=series.len() - len);
            let window = mean_scaled(&series[start..start + len]);
            let w = (w / total) as f32;
            for (o, v) in out.iter_mut().zip(window) {
                *o += w * v;
            }
        }
        Ok(out)
    }
}
