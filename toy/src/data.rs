//! The synthetic datasets of the Fourier-head paper (FOURIER_HEAD.md §5) with their true conditional PMFs.

use std::fmt;
use std::str::FromStr;

use frl_heads::bin_centres;
use frl_heads::binning::UniformBins;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution, Normal};
use serde::{Deserialize, Serialize};

/// Samples per dataset.
pub const SAMPLES: usize = 5000;
/// Of which the first this many train; the rest test.
pub const TRAIN: usize = 4000;
/// Standard deviation of every Gaussian in the datasets (variance 0.01).
pub const STD: f64 = 0.1;

/// One of the three synthetic conditional distributions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Dataset {
    /// `z ~ N(y, 0.01)`, `y ~ N(x, 0.01)`, `x ~ U(-0.8, 0.8)`.
    Gaussian,
    /// `z ~ ½ N(x, 0.01) + ½ N(y, 0.01)`, `x, y ~ U(-0.8, 0.8)`.
    Gmm2,
    /// `z = ±Beta(100|x|, 100|y|)`, `y ~ N(x, 0.01)`, `x ~ U(-0.8, 0.8)`.
    Beta,
}

impl Dataset {
    /// All three, in the paper's order.
    pub const ALL: [Dataset; 3] = [Dataset::Gaussian, Dataset::Gmm2, Dataset::Beta];

    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Gaussian => "gaussian",
            Dataset::Gmm2 => "gmm2",
            Dataset::Beta => "beta",
        }
    }

    /// The GMM head's component count used for this dataset in the paper.
    pub fn paper_components(self) -> usize {
        match self {
            Dataset::Gaussian => 1,
            Dataset::Gmm2 | Dataset::Beta => 2,
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dataset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dataset::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| format!("unknown dataset `{s}`: expected one of gaussian, gmm2, beta"))
    }
}

/// A generated dataset split into train and test, quantised to `bins` bins.
#[derive(Debug, Clone)]
pub struct ToyData {
    /// Number of bins `m`.
    pub bins: usize,
    /// Train inputs: bin indices of `(x, y)` as floats, row-major `[n, 2]`.
    pub train_x: Vec<f32>,
    /// Train targets: bin index of `z`.
    pub train_y: Vec<usize>,
    /// Test inputs, `[n, 2]`.
    pub test_x: Vec<f32>,
    /// Test targets.
    pub test_y: Vec<usize>,
    /// True conditional PMF of each test sample, `[n, m]`.
    pub test_pmf: Vec<f64>,
}

struct Sample {
    x: f64,
    y: f64,
    z: f64,
}

/// Generates `dataset` with `bins` bins from `seed`.
pub fn generate(dataset: Dataset, bins: usize, seed: u64) -> ToyData {
    let mut rng = StdRng::seed_from_u64(seed);
    let noise = Normal::new(0.0, STD).expect("valid std");
    let samples: Vec<Sample> = (0..SAMPLES)
        .map(|_| match dataset {
            Dataset::Gaussian => {
                let x = rng.random_range(-0.8..0.8);
                let y = x + noise.sample(&mut rng);
                let z = y + noise.sample(&mut rng);
                Sample { x, y, z }
            }
            Dataset::Gmm2 => {
                let x = rng.random_range(-0.8..0.8);
                let y = rng.random_range(-0.8..0.8);
                let centre = if rng.random::<bool>() { x } else { y };
                Sample { x, y, z: centre + noise.sample(&mut rng) }
            }
            Dataset::Beta => {
                let x: f64 = rng.random_range(-0.8..0.8);
                let y: f64 = x + noise.sample(&mut rng);
                let (a, b) = beta_params(x, y);
                let beta = Beta::new(a, b).expect("positive beta parameters");
                let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
                Sample { x, y, z: sign * beta.sample(&mut rng) }
            }
        })
        .collect();
    let q = UniformBins::new(-1.0, 1.0, bins).expect("valid bins");
    let bin = |v: f64| q.bin(v).expect("generated values are finite");
    let centres: Vec<f64> = bin_centres(bins).iter().map(|&c| c as f64).collect();
    let mut data = ToyData {
        bins,
        train_x: Vec::new(),
        train_y: Vec::new(),
        test_x: Vec::new(),
        test_y: Vec::new(),
        test_pmf: Vec::new(),
    };
    for (i, s) in samples.iter().enumerate() {
        let input = [bin(s.x) as f32, bin(s.y) as f32];
        if i < TRAIN {
            data.train_x.extend(input);
            data.train_y.push(bin(s.z));
        } else {
            data.test_x.extend(input);
            data.test_y.push(bin(s.z));
            data.test_pmf.extend(true_pmf(dataset, s.x, s.y, &centres));
        }
    }
    data
}

fn beta_params(x: f64, y: f64) -> (f64, f64) {
    ((100.0 * x.abs()).max(1e-6), (100.0 * y.abs()).max(1e-6))
}

fn normal_log_pdf(v: f64, mean: f64) -> f64 {
    -0.5 * ((v - mean) / STD).powi(2)
}

/// The true conditional PMF of `z` given `(x, y)` at the bin centres, renormalised.
pub fn true_pmf(dataset: Dataset, x: f64, y: f64, centres: &[f64]) -> Vec<f64> {
    let weights: Vec<f64> = match dataset {
        Dataset::Gaussian => centres.iter().map(|&c| normal_log_pdf(c, y).exp()).collect(),
        Dataset::Gmm2 => centres.iter().map(|&c| normal_log_pdf(c, x).exp() + normal_log_pdf(c, y).exp()).collect(),
        Dataset::Beta => {
            // Beta pdf at |b|, mirrored; the normalising constant cancels. Work in logs for large a, b.
            let (a, b) = beta_params(x, y);
            let logs: Vec<f64> =
                centres.iter().map(|&c| (a - 1.0) * c.abs().ln() + (b - 1.0) * (1.0 - c.abs()).ln()).collect();
            let max = logs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            logs.iter().map(|l| (l - max).exp()).collect()
        }
    };
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| w / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_data_and_split_sizes() {
        let a = generate(Dataset::Gmm2, 50, 7);
        let b = generate(Dataset::Gmm2, 50, 7);
        assert_eq!(a.train_x, b.train_x);
        assert_eq!(a.train_y.len(), TRAIN);
        assert_eq!(a.test_y.len(), SAMPLES - TRAIN);
        assert_eq!(a.test_pmf.len(), (SAMPLES - TRAIN) * 50);
        assert_ne!(a.train_y, generate(Dataset::Gmm2, 50, 8).train_y);
    }

    #[test]
    fn true_pmfs_are_normalised_and_peak_in_the_right_place() {
        let centres: Vec<f64> = bin_centres(50).iter().map(|&c| c as f64).collect();
        for d in Dataset::ALL {
            let p = true_pmf(d, 0.3, 0.5, &centres);
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        let g = true_pmf(Dataset::Gaussian, 0.0, 0.5, &centres);
        let argmax = g.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert!((centres[argmax] - 0.5).abs() < 0.05);
        // Beta(30, 50) has mode 29/78 ≈ 0.372 and is mirrored: equal mass at ±0.372
        let b = true_pmf(Dataset::Beta, 0.3, 0.5, &centres);
        for i in 0..25 {
            assert!((b[i] - b[49 - i]).abs() < 1e-15);
        }
        let argmax = b.iter().enumerate().skip(25).max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert!((centres[argmax] - 29.0 / 78.0).abs() < 0.04);
    }

    #[test]
    fn empirical_targets_follow_the_true_pmf() {
        // Gaussian: z - y has std 0.1, so the target bin is within 3 std of y for ~99.7% of samples.
        let d = generate(Dataset::Gaussian, 50, 1);
        let centres = bin_centres(50);
        let close = d
            .train_x
            .chunks(2)
            .zip(&d.train_y)
            .filter(|(xy, z)| (centres[xy[1] as usize] - centres[**z]).abs() < 0.35)
            .count();
        assert!(close as f64 / TRAIN as f64 > 0.99, "{close}");
    }
}
