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
const NORM_GUARD: f32 = 1e-20;

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
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
        if !(self.gamma >= 0.0 && self.gamma.is_finite()) {
            return Err(HeadError::invalid("gamma", self.gamma, "must be finite and >= 0"));
        }
        if !(self.eps >= 0.0 && self.eps.is_finite()) {
            return Err(HeadError::invalid("eps", self.eps, "must be finite and >= 0"));
        }
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
        crate::config::check_sizes(d_in, bins)?;
        let n = self.frequencies;
        let linear =
            init::linear(d_in, 2 * (n + 1), self.init_weight_div as f32, self.init_bias_div as f32, rng, device);
        let (reg_re, reg_im) = autocorrelation_matrices(n, device);
        Ok(FourierHead {
            linear,
            basis: fourier_basis(n, &bin_centres(bins), device),
            reg_re,
            reg_im,
            reg_weights: reg_weights(n, device),
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
    /// `[2(N+1), 2m]` constant so that `[u | v] @ basis = [R(b) | I(b)]`.
    basis: Tensor<2>,
    /// `[(N+1)^2, N+1]` sums the outer product `u u^T + v v^T` along diagonals into `Re c_k`.
    reg_re: Tensor<2>,
    /// `[(N+1)^2, N+1]` sums the outer product `v u^T` along diagonals into `Im c_k`.
    reg_im: Tensor<2>,
    /// `[N+1, 1]` weights `2 pi^2 k^2` of the regulariser.
    reg_weights: Tensor<2>,
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
        let m = self.bins;
        let ri = z.matmul(self.basis.clone());
        let r = ri.clone().narrow(1, 0, m);
        let i = ri.narrow(1, m, m);
        let p = r.clone() * r + i.clone() * i;
        let norm = p.clone().sum_dim(1).add_scalar(NORM_GUARD);
        p / norm
    }

    /// `L_reg` without the `gamma` factor: `2 · mean_b Σ_k 2π² k² |c_k|²` on the unnormalised `c_k`, `[1]`.
    pub fn regularizer_unscaled(&self, z: Tensor<2>) -> Tensor<1> {
        regularizer_unscaled(z, self.frequencies, &self.reg_re, &self.reg_im, &self.reg_weights)
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
        let z = self.coefficients(features);
        let regularizer = (self.gamma > 0.0).then(|| self.regularizer_unscaled(z.clone()).mul_scalar(self.gamma));
        let logits = self.pmf_from_coefficients(z).add_scalar(self.eps).log();
        HeadOutput { logits, regularizer }
    }
}

/// `[2(N+1), 2m]`: rows `j` give `(cos πjx, sin πjx)` and rows `N+1+j` give `(-sin πjx, cos πjx)` at the points.
pub(crate) fn fourier_basis(n: usize, points: &[f32], device: &Device) -> Tensor<2> {
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
    init::constant(t, [2 * (n + 1), w], device)
}

/// The diagonal-summing matrices that turn outer products of `u`, `v` into `Re c_k` and `Im c_k`.
pub(crate) fn autocorrelation_matrices(n: usize, device: &Device) -> (Tensor<2>, Tensor<2>) {
    let s = n + 1;
    let mut re = vec![0f32; s * s * s];
    let mut im = vec![0f32; s * s * s];
    for a in 0..s {
        for b in 0..s {
            let row = (a * s + b) * s;
            if a >= b {
                re[row + (a - b)] = 1.0;
                im[row + (a - b)] += 1.0;
            }
            if b >= a {
                im[row + (b - a)] -= 1.0;
            }
        }
    }
    (init::constant(re, [s * s, s], device), init::constant(im, [s * s, s], device))
}

/// `[N+1, 1]` column of `2π² k²`.
pub(crate) fn reg_weights(n: usize, device: &Device) -> Tensor<2> {
    let w: Vec<f32> = (0..=n).map(|k| (2.0 * PI * PI * (k * k) as f64) as f32).collect();
    init::constant(w, [n + 1, 1], device)
}

/// `2 · mean_b Σ_k 2π² k² |c_k|²` with `Re c_k = Σ_j u_{j+k}u_j + v_{j+k}v_j`, `Im c_k = Σ_j v_{j+k}u_j − u_{j+k}v_j`.
pub(crate) fn regularizer_unscaled(
    z: Tensor<2>,
    n: usize,
    reg_re: &Tensor<2>,
    reg_im: &Tensor<2>,
    weights: &Tensor<2>,
) -> Tensor<1> {
    let s = n + 1;
    let [batch, _] = z.dims();
    let u = z.clone().narrow(1, 0, s);
    let v = z.narrow(1, s, s);
    // outer[b, a, c] = x_a y_c, flattened row-major to a * s + c
    let outer =
        |x: Tensor<2>, y: Tensor<2>| (x.unsqueeze_dim::<3>(2) * y.unsqueeze_dim::<3>(1)).reshape([batch, s * s]);
    let re = (outer(u.clone(), u.clone()) + outer(v.clone(), v.clone())).matmul(reg_re.clone());
    let im = outer(v, u).matmul(reg_im.clone());
    let mag2 = re.clone() * re + im.clone() * im;
    mag2.matmul(weights.clone()).mean().mul_scalar(2.0)
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
