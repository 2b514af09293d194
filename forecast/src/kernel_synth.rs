//! KernelSynth (Ansari et al. 2024, the Chronos paper): synthetic series drawn from Gaussian-process priors whose
//! kernel combines up to `max_kernels` kernels of a fixed bank by random sums and products. The bank, the time axis
//! (`length` points on [0, 1]) and the kernels' forms are Chronos' (`scripts/kernel-synth.py`, scikit-learn's kernels
//! at their default hyperparameters); series `i` of a run depends only on `(seed, i)`, so a training run streams them
//! without storing any.

use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

/// A covariance kernel on the time axis.
#[derive(Debug, Clone, PartialEq)]
pub enum Kernel {
    /// `exp(−2 sin²(π|x − y| / period))` (scikit-learn's `ExpSineSquared`, length scale 1).
    Periodic {
        /// The period, in units of the [0, 1] axis.
        period: f64,
    },
    /// `σ₀² + x·y` (`DotProduct`): a linear trend.
    Linear {
        /// The offset σ₀.
        sigma0: f64,
    },
    /// `exp(−(x − y)² / 2ℓ²)` (`RBF`).
    Rbf {
        /// The length scale ℓ.
        length_scale: f64,
    },
    /// `(1 + (x − y)² / 2α)^(−α)` (`RationalQuadratic`, length scale 1).
    RationalQuadratic {
        /// The scale mixture α.
        alpha: f64,
    },
    /// `noise` on the diagonal only (`WhiteKernel`).
    White {
        /// The noise variance.
        noise: f64,
    },
    /// 1 everywhere (`ConstantKernel`).
    Constant,
    /// The sum of two kernels.
    Sum(Box<Kernel>, Box<Kernel>),
    /// The product of two kernels.
    Product(Box<Kernel>, Box<Kernel>),
}

impl Kernel {
    /// Chronos' bank for series of `length` points: periodic kernels at the usual periods of hourly, daily, weekly,
    /// monthly, quarterly and yearly data; linear, RBF, rational-quadratic, white noise and constant kernels.
    pub fn bank(length: usize) -> Vec<Kernel> {
        let n = length as f64;
        let periods = [
            24.0, 48.0, 96.0, 168.0, 336.0, 672.0, 7.0, 14.0, 30.0, 60.0, 365.0, 730.0, 4.0, 26.0, 52.0, 4.0, 6.0,
            12.0, 4.0, 40.0, 10.0,
        ];
        let mut bank: Vec<Kernel> = periods.iter().map(|p| Kernel::Periodic { period: p / n }).collect();
        bank.extend([0.0, 1.0, 10.0].map(|sigma0| Kernel::Linear { sigma0 }));
        bank.extend([0.1, 1.0, 10.0].map(|length_scale| Kernel::Rbf { length_scale }));
        bank.extend([0.1, 1.0, 10.0].map(|alpha| Kernel::RationalQuadratic { alpha }));
        bank.extend([0.1, 1.0].map(|noise| Kernel::White { noise }));
        bank.push(Kernel::Constant);
        bank
    }

    /// `k(x, y)`; `same` says whether the two are the same point (white noise).
    pub fn eval(&self, x: f64, y: f64, same: bool) -> f64 {
        let d = x - y;
        match self {
            Kernel::Periodic { period } => (-2.0 * (std::f64::consts::PI * d.abs() / period).sin().powi(2)).exp(),
            Kernel::Linear { sigma0 } => sigma0 * sigma0 + x * y,
            Kernel::Rbf { length_scale } => (-d * d / (2.0 * length_scale * length_scale)).exp(),
            Kernel::RationalQuadratic { alpha } => (1.0 + d * d / (2.0 * alpha)).powf(-alpha),
            Kernel::White { noise } => {
                if same {
                    *noise
                } else {
                    0.0
                }
            }
            Kernel::Constant => 1.0,
            Kernel::Sum(a, b) => a.eval(x, y, same) + b.eval(x, y, same),
            Kernel::Product(a, b) => a.eval(x, y, same) * b.eval(x, y, same),
        }
    }

    /// 1 to `max_kernels` kernels drawn from `bank` with replacement, folded left by `+` or `×` with equal
    /// probability.
    pub fn random(bank: &[Kernel], max_kernels: usize, rng: &mut impl Rng) -> Kernel {
        let count = rng.random_range(1..=max_kernels.max(1));
        let mut kernel = bank[rng.random_range(0..bank.len())].clone();
        for _ in 1..count {
            let next = Box::new(bank[rng.random_range(0..bank.len())].clone());
            kernel = if rng.random_bool(0.5) {
                Kernel::Sum(Box::new(kernel), next)
            } else {
                Kernel::Product(Box::new(kernel), next)
            };
        }
        kernel
    }
}

/// One draw from the zero-mean GP prior with `kernel` at `length` points evenly spaced on [0, 1]. The covariance is
/// factorised by Cholesky with a diagonal jitter (from 1e-9 of its mean diagonal, ×10 until it factorises), as
/// positive semi-definite kernels (periodic, linear) make it singular.
pub fn sample_gp(kernel: &Kernel, length: usize, rng: &mut impl Rng) -> Vec<f32> {
    sample_gp_window(kernel, length, 0, length, rng)
}

/// Points `start..start + count` of one draw from the zero-mean GP prior with `kernel` at `length` points evenly
/// spaced on [0, 1]: a window of a [`sample_gp`] series, drawn exactly (a GP's values at a subset of its points are
/// the GP restricted to them) at the cost of the window alone. Covariance jitter as [`sample_gp`].
pub fn sample_gp_window(kernel: &Kernel, length: usize, start: usize, count: usize, rng: &mut impl Rng) -> Vec<f32> {
    let at = |i: usize| if length > 1 { (start + i) as f64 / (length - 1) as f64 } else { 0.0 };
    let xs: Vec<f64> = (0..count).map(at).collect();
    let n = count;
    let mut cov = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let k = kernel.eval(xs[i], xs[j], i == j);
            cov[i * n + j] = k;
            cov[j * n + i] = k;
        }
    }
    let mean_diag = (0..n).map(|i| cov[i * n + i]).sum::<f64>() / n.max(1) as f64;
    let mut jitter = 1e-9 * mean_diag.abs().max(1e-12);
    let lower = loop {
        match cholesky(&cov, n, jitter) {
            Some(l) => break l,
            None => jitter *= 10.0,
        }
    };
    let z: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
    (0..n).map(|i| (0..=i).map(|j| lower[i * n + j] * z[j]).sum::<f64>() as f32).collect()
}

/// The lower Cholesky factor of `a + jitter·I` (`n × n`, row-major), or `None` when it is not positive definite.
fn cholesky(a: &[f64], n: usize, jitter: f64) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = a[i * n + i] + jitter - dot;
                if d.is_nan() || d <= 0.0 || d.is_infinite() {
                    return None;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - dot) / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// A stream of KernelSynth series: series `index` depends only on `(seed, index)`.
#[derive(Debug, Clone)]
pub struct KernelSynth {
    /// Points per series (Chronos: 1024).
    pub length: usize,
    /// Most kernels combined (Chronos: 5).
    pub max_kernels: usize,
    /// The run's seed.
    pub seed: u64,
    bank: Vec<Kernel>,
}

impl KernelSynth {
    /// Chronos' settings (length 1024, up to 5 kernels) with `seed`.
    pub fn new(seed: u64) -> Self {
        Self::with(1024, 5, seed)
    }

    /// Series of `length` points from up to `max_kernels` kernels.
    pub fn with(length: usize, max_kernels: usize, seed: u64) -> Self {
        Self { length, max_kernels, seed, bank: Kernel::bank(length) }
    }

    /// The kernel and the values of series `index`.
    pub fn series(&self, index: u64) -> (Kernel, Vec<f32>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let kernel = Kernel::random(&self.bank, self.max_kernels, &mut rng);
        let values = sample_gp(&kernel, self.length, &mut rng);
        (kernel, values)
    }

    /// A random kernel and a window of `count` consecutive points (at a uniform start) of a series of `length`
    /// points drawn from it, all drawn with `rng`: what a training sampler takes from a stored KernelSynth series.
    pub fn window(&self, count: usize, rng: &mut impl Rng) -> (Kernel, Vec<f32>) {
        let count = count.min(self.length);
        let kernel = Kernel::random(&self.bank, self.max_kernels, rng);
        let start = rng.random_range(0..=self.length - count);
        let values = sample_gp_window(&kernel, self.length, start, count, rng);
        (kernel, values)
    }
}
