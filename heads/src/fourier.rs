//! The discrete Fourier head (Gillman et al. 2024): a learned, always-nonnegative Fourier-series density on
//! `[-1, 1]` evaluated at the bin centres and returned as logits `log(q_i + eps)`.

use std::f64::consts::PI;

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::HeadError;
use crate::head::to_host;
use crate::head::{Head, HeadOutput, bin_centres};
use crate::init;

/// Guard added to the normaliser so that an all-zero coefficient vector gives a uniform PMF, not NaN.
pub(crate) const NORM_GUARD: f32 = 1e-20;

fn default_frequencies() -> usize {
    12
}
fn default_eps() -> f64 {
    1e-5
}
fn default_div() -> f64 {
    100.0
}

/// Configuration of the Fourier head.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FourierHeadConfig {
    /// Number of frequencies `N` (the series has `N + 1` complex coefficients).
    #[serde(default = "default_frequencies")]
    pub frequencies: usize,
    /// Weight of the Fourier regulariser added to the loss; 0 disables it.
    #[serde(default)]
    pub gamma: f64,
    /// The epsilon of the inverse softmax `log(q + eps)`.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// The default linear init of the weight is divided by this.
    #[serde(default = "default_div")]
    pub init_weight_div: f64,
    /// The default linear init of the bias is divided by this.
    #[serde(default = "default_div")]
    pub init_bias_div: f64,
}

impl Default for FourierHeadConfig {
    fn default() -> Self {
        Self {
            frequencies: default_frequencies(),
            gamma: 0.0,
            eps: default_eps(),
            init_weight_div: default_div(),
            init_bias_div: default_div(),
        }
    }
}

impl FourierHeadConfig {
    /// A config with `frequencies` and `gamma`, other fields at their defaults.
    pub fn new(frequencies: usize, gamma: f64) -> Self {
        Self { frequencies, gamma, ..Self::default() }
    }

    /// Checks every field, naming the first one out of range.
    pub fn validate(&self) -> Result<(), HeadError> {
        if self.frequencies == 0 {
            return Err(HeadError::invalid("frequencies", self.frequencies, "must be at least 1"));
        }
        crate::error::check_non_negative("gamma", self.gamma)?;
        crate::error::check_non_negative("eps", self.eps)?;
        for (field, v) in [("init_weight_div", self.init_weight_div), ("init_bias_div", self.init_bias_div)] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(HeadError::invalid(field, v, "must be finite and > 0"));
            }
        }
        Ok(())
    }

    /// Builds a Fourier head from `d_in` features to `bins` bins.
    pub fn init(
        &self,
        d_in: usize,
        bins: usize,
        rng: &mut dyn RngCore,
        device: &Device,
    ) -> Result<FourierHead, HeadError> {
        self.validate()?;
        crate::error::check_sizes(d_in, bins)?;
        let n = self.frequencies;
        let linear =
            init::linear(d_in, 2 * (n + 1), self.init_weight_div as f32, self.init_bias_div as f32, rng, device);
        let bin_basis = fourier_basis(n, &bin_centres(bins), device);
        let reg_basis = regularizer_basis(n, device);
        let basis = if self.gamma > 0.0 { Tensor::cat(vec![bin_basis, reg_basis.clone()], 1) } else { bin_basis };
        Ok(FourierHead {
            linear,
            basis,
            fold_bins: fold_halves(bins, device),
            reg_basis,
            fold_reg: fold_halves(quadrature_points(n), device),
            frequencies: n,
            bins,
            gamma: self.gamma,
            eps: self.eps,
        })
    }
}

/// The discrete Fourier head of FOURIER_HEAD.md §1.
#[derive(Module, Debug)]
pub struct FourierHead {
    /// `A: R^d -> R^(2(N+1))`: real parts first, then imaginary parts.
    pub linear: Linear,
    /// `[2(N+1), 2m (+ 4P)]` constant: `[u | v] @ basis = [R(b) | I(b)]` at the bin centres, followed (when
    /// `gamma > 0`) by `[R | I | R' | I']` at the regulariser's quadrature points.
    basis: Tensor<2>,
    /// `[2m, m]` sums `R²` and `I²` into `|f(b)|²`.
    fold_bins: Tensor<2>,
    /// `[2(N+1), 4P]`: the regulariser's part of the basis on its own.
    reg_basis: Tensor<2>,
    /// `[2P, P]` sums `R R'` and `I I'`.
    fold_reg: Tensor<2>,
    frequencies: usize,
    bins: usize,
    gamma: f64,
    eps: f64,
}

impl FourierHead {
    /// Number of frequencies `N`.
    pub fn frequencies(&self) -> usize {
        self.frequencies
    }

    /// Regulariser weight `gamma`.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// Raw coefficients `z = A x`, `[batch, 2(N+1)]`.
    pub fn coefficients(&self, features: Tensor<2>) -> Tensor<2> {
        self.linear.forward(features)
    }

    /// The PMF `q` `[batch, m]` from coefficients by the real-arithmetic form.
    pub fn pmf_from_coefficients(&self, z: Tensor<2>) -> Tensor<2> {
        let ri = z.matmul(self.basis.clone()).narrow(1, 0, 2 * self.bins);
        self.normalise(ri)
    }

    /// `q = (R² + I²) / Σ (R² + I²)` from `[R | I]` `[batch, 2m]`.
    fn normalise(&self, ri: Tensor<2>) -> Tensor<2> {
        let p = sum_halves(ri.clone() * ri, &self.fold_bins);
        let norm = p.clone().sum_dim(1).add_scalar(NORM_GUARD);
        p / norm
    }

    /// `L_reg` without the `gamma` factor: `2 · mean_b Σ_k 2π² k² |c_k|²` on the unnormalised `c_k`, `[1]`.
    pub fn regularizer_unscaled(&self, z: Tensor<2>) -> Tensor<1> {
        regularizer_from_values(z.matmul(self.reg_basis.clone()), self.frequencies, &self.fold_reg)
    }

    /// Logits by the autocorrelation form (complex `c_k`, density at the bin centres), computed on the host in
    /// f64. A reference for tests; training uses [`Head::forward`].
    pub fn forward_autocorrelation(&self, features: Tensor<2>) -> Tensor<2> {
        let z = self.coefficients(features);
        let device = z.device();
        let [batch, width] = z.dims();
        let z = to_host(z);
        let centres: Vec<f64> = bin_centres(self.bins).iter().map(|&b| b as f64).collect();
        let mut out = Vec::with_capacity(batch * self.bins);
        for row in z.chunks(width) {
            let c = autocorrelation(row, self.frequencies);
            let pdf: Vec<f64> = centres.iter().map(|&x| density_from_autocorrelation(&c, x)).collect();
            let total: f64 = pdf.iter().sum();
            out.extend(pdf.iter().map(|p| ((p / total) + self.eps).ln() as f32));
        }
        Tensor::<2>::from_data(TensorData::new(out, [batch, self.bins]), &device)
    }
}

impl Head for FourierHead {
    fn input_dim(&self) -> usize {
        self.linear.weight.dims()[0]
    }

    fn bins(&self) -> usize {
        self.bins
    }

    fn forward(&self, features: Tensor<2>) -> HeadOutput {
        self.forward_coefficients(self.coefficients(features))
    }

    /// `log(q + eps)` sums to `1 + m·eps` in probability, so log-softmax is a constant shift.
    fn log_pmf(&self, logits: Tensor<2>) -> Tensor<2> {
        logits.sub_scalar((1.0 + self.bins as f64 * self.eps).ln())
    }
}

impl FourierHead {
    /// Logits and regulariser (mean over the rows) from raw coefficients `z` `[rows, 2(N+1)]`.
    pub fn forward_coefficients(&self, z: Tensor<2>) -> HeadOutput {
        if let Some((logits, regularizer)) =
            crate::fused::fourier_head(&z, self.frequencies, self.bins, self.eps, self.gamma)
        {
            let regularizer = (self.gamma > 0.0)
                .then(|| regularizer.unwrap_or_else(|| self.regularizer_unscaled(z.clone()).mul_scalar(self.gamma)));
            return HeadOutput { logits, regularizer };
        }
        let values = z.matmul(self.basis.clone());
        let m = self.bins;
        let regularizer = (self.gamma > 0.0).then(|| {
            let p = quadrature_points(self.frequencies);
            regularizer_from_values(values.clone().narrow(1, 2 * m, 4 * p), self.frequencies, &self.fold_reg)
                .mul_scalar(self.gamma)
        });
        let ri = if self.gamma > 0.0 { values.narrow(1, 0, 2 * m) } else { values };
        let logits = self.normalise(ri).add_scalar(self.eps).log();
        HeadOutput { logits, regularizer }
    }

    /// Whether `other` computes its PMF from coefficients as this head does (same `N`, bins, `eps` and `gamma`).
    pub fn same_arithmetic(&self, other: &FourierHead) -> bool {
        (self.frequencies, self.bins) == (other.frequencies, other.bins)
            && self.eps == other.eps
            && self.gamma == other.gamma
    }
}

/// The regulariser (without `gamma`) from `[R | I | R' | I']` at the quadrature points, `[batch, 4P]`.
///
/// With `g(x) = |f(x)|² = Σ_{|k|≤N} c_k e^{iπkx}`, Parseval gives `Σ_{k=0}^{N} 2π²k²|c_k|² = ½ ∫_{-1}^{1} g'(x)² dx`,
/// so `L = 2 · ½ ∫ g'² = 2 · mean_p g'(x_p)²`: exact, because `g'²` is a trigonometric polynomial of degree `2N`
/// and there are `P > 2N` equispaced points. Here `g' = 2 (R R' + I I')`.
pub(crate) fn regularizer_from_values(values: Tensor<2>, n: usize, fold_reg: &Tensor<2>) -> Tensor<1> {
    let p = quadrature_points(n);
    let value = values.clone().narrow(1, 0, 2 * p);
    let slope = values.narrow(1, 2 * p, 2 * p);
    let half_dg = sum_halves(value * slope, fold_reg); // R R' + I I' = g'/2
    (half_dg.clone() * half_dg).sum_dim(1).mean().mul_scalar(8.0 / p as f64)
}

/// Number of equispaced quadrature points of the regulariser: `2N + 2 > 2N`.
pub(crate) fn quadrature_points(n: usize) -> usize {
    2 * n + 2
}

/// Halves above which [`sum_halves`] adds the two halves instead of multiplying by the `[2h, h]` fold: the product
/// costs `2h²` per row (a 4096-token vocabulary: 34M), the addition two more graph operations.
const FOLD_BY_PRODUCT_MAX: usize = 256;

/// `x[:, :h] + x[:, h:]` of `x` `[batch, 2h]`, by the product with `fold` ([`fold_halves`]) for small `h` (one
/// operation) and by narrowing and adding above [`FOLD_BY_PRODUCT_MAX`]; both round once per element.
pub(crate) fn sum_halves(x: Tensor<2>, fold: &Tensor<2>) -> Tensor<2> {
    let h = fold.dims()[1];
    if h <= FOLD_BY_PRODUCT_MAX { x.matmul(fold.clone()) } else { x.clone().narrow(1, 0, h) + x.narrow(1, h, h) }
}

/// `[2h, h]` with ones at `(i, i)` and `(h + i, i)`: sums the two halves of a row. Above [`FOLD_BY_PRODUCT_MAX`],
/// where [`sum_halves`] adds instead, a `[1, h]` stand-in that only carries `h`.
pub(crate) fn fold_halves(h: usize, device: &Device) -> Tensor<2> {
    if h > FOLD_BY_PRODUCT_MAX {
        return init::constant(vec![0f32; h], [1, h], device);
    }
    let mut t = vec![0f32; 2 * h * h];
    for i in 0..h {
        t[i * h + i] = 1.0;
        t[(h + i) * h + i] = 1.0;
    }
    init::constant(t, [2 * h, h], device)
}

/// `[2(N+1), 4P]`: `[u | v]` times this gives `R, I, R', I'` at `x_p = -1 + 2p/P`.
pub(crate) fn regularizer_basis(n: usize, device: &Device) -> Tensor<2> {
    let p = quadrature_points(n);
    let w = 4 * p;
    let mut t = vec![0f32; 2 * (n + 1) * w];
    for j in 0..=n {
        let jf = j as f64;
        for q in 0..p {
            let x = -1.0 + 2.0 * q as f64 / p as f64;
            let (s, c) = (PI * jf * x).sin_cos();
            let (ur, vr) = (j * w, (n + 1 + j) * w);
            // R = Σ u c − v s;  I = Σ u s + v c;  R' = Σ πj(−u s − v c);  I' = Σ πj(u c − v s)
            t[ur + q] = c as f32;
            t[vr + q] = -s as f32;
            t[ur + p + q] = s as f32;
            t[vr + p + q] = c as f32;
            t[ur + 2 * p + q] = (-PI * jf * s) as f32;
            t[vr + 2 * p + q] = (-PI * jf * c) as f32;
            t[ur + 3 * p + q] = (PI * jf * c) as f32;
            t[vr + 3 * p + q] = (-PI * jf * s) as f32;
        }
    }
    init::constant(t, [2 * (n + 1), w], device)
}

/// `[2(N+1), 2m]`: rows `j` give `(cos πjx, sin πjx)` and rows `N+1+j` give `(-sin πjx, cos πjx)` at the points.
pub(crate) fn fourier_basis(n: usize, points: &[f32], device: &Device) -> Tensor<2> {
    init::constant(fourier_basis_values(n, points), [2 * (n + 1), 2 * points.len()], device)
}

/// The values of [`fourier_basis`], row-major.
pub(crate) fn fourier_basis_values(n: usize, points: &[f32]) -> Vec<f32> {
    let m = points.len();
    let w = 2 * m;
    let mut t = vec![0f32; 2 * (n + 1) * w];
    for j in 0..=n {
        for (i, &x) in points.iter().enumerate() {
            let (s, c) = (PI * j as f64 * x as f64).sin_cos();
            t[j * w + i] = c as f32;
            t[j * w + m + i] = s as f32;
            t[(n + 1 + j) * w + i] = -s as f32;
            t[(n + 1 + j) * w + m + i] = c as f32;
        }
    }
    t
}

/// Complex autocorrelation `c_k = Σ_j a_{j+k} conj(a_j)`, k = 0..=N, of one coefficient row `[u | v]`, in f64.
pub fn autocorrelation(z: &[f32], n: usize) -> Vec<(f64, f64)> {
    let a: Vec<(f64, f64)> = (0..=n).map(|j| (z[j] as f64, z[n + 1 + j] as f64)).collect();
    (0..=n)
        .map(|k| {
            let mut re = 0.0;
            let mut im = 0.0;
            for j in 0..=(n - k) {
                let (p, q) = a[j + k];
                let (r, s) = a[j];
                // (p + iq)(r - is)
                re += p * r + q * s;
                im += q * r - p * s;
            }
            (re, im)
        })
        .collect()
}

/// `p(x) = 1/2 + Re Σ_{k≥1} (c_k / c_0) e^{iπkx}` from autocorrelation coefficients.
pub fn density_from_autocorrelation(c: &[(f64, f64)], x: f64) -> f64 {
    let c0 = c[0].0;
    let mut p = 0.5;
    for (k, &(re, im)) in c.iter().enumerate().skip(1) {
        let (s, co) = (PI * k as f64 * x).sin_cos();
        p += (re * co - im * s) / c0;
    }
    p
}

/// `F(x) = (x+1)/2 + Re Σ_{k≥1} (c_k / c_0)(e^{iπkx} − (−1)^k)/(iπk)` from autocorrelation coefficients.
pub fn cdf_from_autocorrelation(c: &[(f64, f64)], x: f64) -> f64 {
    let c0 = c[0].0;
    let mut f = (x + 1.0) / 2.0;
    for (k, &(re, im)) in c.iter().enumerate().skip(1) {
        let kf = k as f64;
        let (s, co) = (PI * kf * x).sin_cos();
        let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
        // w = e^{iπkx} − (−1)^k = (co − sign) + i s; w / (iπk) = (s − i(co − sign)) / (πk)
        let (wr, wi) = (s / (PI * kf), -(co - sign) / (PI * kf));
        f += (re * wr - im * wi) / c0;
    }
    f
}

/// Host-side regulariser `2 Σ_k 2π² k² |c_k|²` for one row (no batch mean, no gamma), in f64.
pub fn regularizer_reference(z: &[f32], n: usize) -> f64 {
    let c = autocorrelation(z, n);
    2.0 * c.iter().enumerate().map(|(k, &(re, im))| 2.0 * PI * PI * (k * k) as f64 * (re * re + im * im)).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ways of summing halves round once per element, so they agree bit for bit.
    #[test]
    fn summing_halves_by_addition_equals_the_product_with_the_fold() {
        let device = Device::flex();
        for h in [3, FOLD_BY_PRODUCT_MAX + 1, 4096] {
            let values: Vec<f32> = (0..4 * h).map(|i| ((i * 7919 % 1013) as f32 / 101.0).sin()).collect();
            let x = init::constant(values, [2, 2 * h], &device);
            let mut full = vec![0f32; 2 * h * h];
            for i in 0..h {
                full[i * h + i] = 1.0;
                full[(h + i) * h + i] = 1.0;
            }
            let product = x.clone().matmul(init::constant(full, [2 * h, h], &device));
            let summed = sum_halves(x, &fold_halves(h, &device));
            assert_eq!(summed.dims(), [2, h]);
            let (a, b) =
                (product.into_data().try_to_vec::<f32>().unwrap(), summed.into_data().try_to_vec::<f32>().unwrap());
            assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()), "h = {h}");
        }
    }
}
