//! Heads trained without a graph: the linear, Fourier and mixture heads' loss and gradients written out on host
//! `f32` slices, with dense layers ([`dense`]) and Adam ([`Adam`]) beside them, for models so small that a graph's
//! per-operation overhead is most of a step (the synthetic benchmark's MLP at batch 32).
//!
//! The arithmetic is the graph path's formulas; sums run in another order, so results equal the graph's to float
//! rounding, not bit for bit. `frl-toy` checks its runs against the graph path.

pub mod dense;

use std::f64::consts::PI;

use crate::config::HeadConfig;
use crate::fourier::{FourierHeadConfig, fourier_basis_values};
use crate::head::bin_centres;
use crate::mixture::MixtureHeadConfig;

/// A trainable tensor on the host: its value, gradient and Adam moments.
#[derive(Debug, Clone)]
pub struct HostParam {
    /// Module path relative to its owner, e.g. `linear.weight`.
    pub name: String,
    /// Shape, as the graph module's.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub value: Vec<f32>,
    /// Gradient of the current step.
    pub grad: Vec<f32>,
    moment_1: Vec<f32>,
    moment_2: Vec<f32>,
}

impl HostParam {
    /// A parameter with `value` and zero gradient and moments.
    pub fn new(name: &str, shape: Vec<usize>, value: Vec<f32>) -> Self {
        let n = value.len();
        debug_assert_eq!(n, shape.iter().product::<usize>());
        Self { name: name.into(), shape, value, grad: vec![0.0; n], moment_1: vec![0.0; n], moment_2: vec![0.0; n] }
    }
}

/// Adam (no weight decay), step for step the arithmetic of burn's `Adam`: `m₁ ← β₁m₁ + (1−β₁)g`,
/// `m₂ ← β₂m₂ + (1−β₂)g²`, `θ ← θ − lr · m₁ · √(1−β₂ᵗ)/(1−β₁ᵗ) / (√m₂ + ε√(1−β₂ᵗ))`, all in f32.
#[derive(Debug, Clone)]
pub struct Adam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    time: i32,
}

impl Adam {
    /// Adam with burn's default betas (0.9, 0.999) and `epsilon`.
    pub fn new(epsilon: f32) -> Self {
        Self { beta_1: 0.9, beta_2: 0.999, epsilon, time: 0 }
    }

    /// One step of every parameter from its gradient.
    pub fn step<'a>(&mut self, lr: f64, params: impl IntoIterator<Item = &'a mut HostParam>) {
        self.time += 1;
        let bias_correction2_sqrt = (1.0 - self.beta_2.powi(self.time)).sqrt();
        let factor = bias_correction2_sqrt / (1.0 - self.beta_1.powi(self.time));
        let eps = self.epsilon * bias_correction2_sqrt;
        let (b1, b2, lr) = (self.beta_1, self.beta_2, lr as f32);
        let (f1, f2) = (1.0 - b1, 1.0 - b2);
        let first = self.time == 1;
        for p in params {
            for (((v, &g), m1), m2) in p.value.iter_mut().zip(&p.grad).zip(&mut p.moment_1).zip(&mut p.moment_2) {
                if first {
                    *m1 = g * f1;
                    *m2 = g * g * f2;
                } else {
                    *m1 = *m1 * b1 + g * f1;
                    *m2 = *m2 * b2 + g * g * f2;
                }
                *v -= *m1 * factor / (m2.sqrt() + eps) * lr;
            }
        }
    }
}

/// A head on the host. Built from the graph head's parameter values (looked up by name relative to the head, e.g.
/// `linear.weight`), so both paths start from the same model.
#[derive(Debug, Clone)]
pub enum HostHead {
    /// The linear head.
    Linear(LinearHost),
    /// The Fourier head.
    Fourier(FourierHost),
    /// The mixture head with uniform weights.
    Mixture(MixtureHost),
}

/// The graph module path of `config`'s head inside [`crate::AnyHead`] (`Linear`, `Fourier`, `Mixture`).
pub fn variant_name(config: &HeadConfig) -> &'static str {
    match config {
        HeadConfig::Linear => "Linear",
        HeadConfig::Fourier(_) => "Fourier",
        HeadConfig::Mixture(_) => "Mixture",
    }
}

impl HostHead {
    /// Whether `config` has a host implementation (all heads but the mixture with learned weights).
    pub fn supports(config: &HeadConfig) -> bool {
        !matches!(config, HeadConfig::Mixture(MixtureHeadConfig { learned_weights: true, .. }))
    }

    /// The head of `config` from `d_in` features to `bins` bins with parameter values from `value(name)`; `None`
    /// when [`HostHead::supports`] is false or a parameter is missing.
    pub fn new(
        config: &HeadConfig,
        d_in: usize,
        bins: usize,
        mut value: impl FnMut(&str) -> Option<Vec<f32>>,
    ) -> Option<Self> {
        if !Self::supports(config) {
            return None;
        }
        let mut param = |name: &str, shape: Vec<usize>| {
            let v = value(name)?;
            (v.len() == shape.iter().product::<usize>()).then(|| HostParam::new(name, shape, v))
        };
        Some(match config {
            HeadConfig::Linear => HostHead::Linear(LinearHost {
                weight: param("linear.weight", vec![d_in, bins])?,
                bias: param("linear.bias", vec![bins])?,
                bins,
                d_in,
                scratch: Vec::new(),
                weight_t: vec![0.0; d_in * bins],
            }),
            HeadConfig::Fourier(f) => {
                let width = 2 * (f.frequencies + 1);
                HostHead::Fourier(FourierHost::new(
                    f,
                    param("linear.weight", vec![d_in, width])?,
                    param("linear.bias", vec![width])?,
                    d_in,
                    bins,
                ))
            }
            HeadConfig::Mixture(m) => HostHead::Mixture(MixtureHost::new(
                m,
                param("means.weight", vec![d_in, m.components])?,
                param("means.bias", vec![m.components])?,
                param("rho", vec![m.components])?,
                d_in,
                bins,
            )),
        })
    }

    /// The head's parameters.
    pub fn params(&self) -> Vec<&HostParam> {
        match self {
            HostHead::Linear(h) => vec![&h.weight, &h.bias],
            HostHead::Fourier(h) => vec![&h.weight, &h.bias],
            HostHead::Mixture(h) => vec![&h.weight, &h.bias, &h.rho],
        }
    }

    /// The head's parameters, mutable (for the optimiser).
    pub fn params_mut(&mut self) -> Vec<&mut HostParam> {
        match self {
            HostHead::Linear(h) => vec![&mut h.weight, &mut h.bias],
            HostHead::Fourier(h) => vec![&mut h.weight, &mut h.bias],
            HostHead::Mixture(h) => vec![&mut h.weight, &mut h.bias, &mut h.rho],
        }
    }

    /// Mean cross-entropy against the bins `targets` plus the head's regulariser, for `features` `[rows, d_in]`:
    /// returns the loss, adds its gradients to the parameters' `grad` and writes `∂loss/∂features` to
    /// `d_features`.
    pub fn loss_backward(&mut self, features: &[f32], targets: &[usize], d_features: &mut [f32]) -> f32 {
        match self {
            HostHead::Linear(h) => h.loss_backward(features, targets, d_features),
            HostHead::Fourier(h) => h.loss_backward(features, targets, d_features),
            HostHead::Mixture(h) => h.loss_backward(features, targets, d_features),
        }
    }

    /// The head's regulariser (already scaled by its weight) of `features`, `None` when it has none.
    pub fn regularizer(&mut self, features: &[f32]) -> Option<f32> {
        match self {
            HostHead::Fourier(h) if h.gamma > 0.0 => Some(h.regularizer(features)),
            _ => None,
        }
    }
}

/// Grows `buf` to at least `n` values.
fn ensure(buf: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if buf.len() < n {
        buf.resize(n, 0.0);
    }
    &mut buf[..n]
}

/// The linear head on the host: logits `x · W + b`, softmax cross-entropy.
#[derive(Debug, Clone)]
pub struct LinearHost {
    weight: HostParam,
    bias: HostParam,
    bins: usize,
    d_in: usize,
    scratch: Vec<f32>,
    weight_t: Vec<f32>,
}

impl LinearHost {
    fn loss_backward(&mut self, x: &[f32], targets: &[usize], dx: &mut [f32]) -> f32 {
        let (m, d) = (self.bins, self.d_in);
        let rows = targets.len();
        let logits = ensure(&mut self.scratch, rows * m);
        dense::linear(x, &self.weight.value, &self.bias.value, logits, d, m);
        // Softmax cross-entropy: value ln Σ exp(l − max) − (l_y − max); gradient (softmax − onehot) / rows.
        let inv_rows = 1.0 / rows as f32;
        let mut total = 0.0f32;
        for (row, &y) in logits.chunks_exact_mut(m).zip(targets) {
            let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let mut sum = 0.0f32;
            for l in row.iter_mut() {
                *l = (*l - max).exp();
                sum += *l;
            }
            total += sum.ln() - (row[y].ln());
            let inv = 1.0 / sum;
            for l in row.iter_mut() {
                *l *= inv * inv_rows;
            }
            row[y] -= inv_rows;
        }
        dense::linear_backward_params(x, logits, &mut self.weight.grad, &mut self.bias.grad, d, m);
        dense::transpose(&self.weight.value, &mut self.weight_t, d, m);
        dense::linear_backward_input(logits, &self.weight_t, dx, d, m);
        total / rows as f32
    }
}

/// The Fourier head on the host: coefficients `z = x · A + b`, `[R | I] = z · basis` at the bin centres,
/// `q = (R² + I²) / Σ(R² + I²)`, cross-entropy of `log(q + ε)`; the regulariser `γ · 4π² Σ_k k² |c_k|²` (batch mean)
/// from the autocorrelation `c_k` of the coefficients, which is the graph path's quadrature in closed form.
#[derive(Debug, Clone)]
pub struct FourierHost {
    weight: HostParam,
    bias: HostParam,
    frequencies: usize,
    bins: usize,
    d_in: usize,
    gamma: f32,
    eps: f32,
    /// `ln(1 + m ε)`: `log(q + ε)` minus this is the log-PMF.
    log_total: f32,
    /// `[2(N+1), 2m]`, as the graph head's.
    basis: Vec<f32>,
    z: Vec<f32>,
    ri: Vec<f32>,
    dz: Vec<f32>,
    weight_t: Vec<f32>,
}

impl FourierHost {
    fn new(config: &FourierHeadConfig, weight: HostParam, bias: HostParam, d_in: usize, bins: usize) -> Self {
        let n = config.frequencies;
        let width = 2 * (n + 1);
        let basis = fourier_basis_values(n, &bin_centres(bins));
        Self {
            weight,
            bias,
            frequencies: n,
            bins,
            d_in,
            gamma: config.gamma as f32,
            eps: config.eps as f32,
            log_total: (1.0 + bins as f64 * config.eps).ln() as f32,
            basis,
            z: Vec::new(),
            ri: Vec::new(),
            dz: Vec::new(),
            weight_t: vec![0.0; d_in * width],
        }
    }

    fn width(&self) -> usize {
        2 * (self.frequencies + 1)
    }

    fn coefficients(&mut self, x: &[f32]) -> usize {
        let (w, d) = (self.width(), self.d_in);
        let rows = x.len() / d;
        let z = ensure(&mut self.z, rows * w);
        dense::linear(x, &self.weight.value, &self.bias.value, z, d, w);
        rows
    }

    fn regularizer(&mut self, x: &[f32]) -> f32 {
        let rows = self.coefficients(x);
        let (n, w) = (self.frequencies, self.width());
        let sum: f64 = self.z[..rows * w].chunks_exact(w).map(|z| weighted_autocorrelation_norm(z, n)).sum();
        (self.gamma as f64 * sum / rows as f64) as f32
    }

    fn loss_backward(&mut self, x: &[f32], targets: &[usize], dx: &mut [f32]) -> f32 {
        let rows = self.coefficients(x);
        let (m, n, w, d) = (self.bins, self.frequencies, self.width(), self.d_in);
        let ri = ensure(&mut self.ri, rows * 2 * m);
        dense::matmul(&self.z[..rows * w], &self.basis, ri, w, 2 * m);
        let inv_rows = 1.0 / rows as f32;
        let mut ce = 0.0f32;
        for (row, &y) in ri.chunks_exact_mut(2 * m).zip(targets) {
            let (re, im) = row.split_at_mut(m);
            let mut sum = 0.0f32;
            for (r, i) in re.iter().zip(im.iter()) {
                sum += r * r + i * i;
            }
            let s = sum + 1e-20;
            let q_y = (re[y] * re[y] + im[y] * im[y]) / s;
            ce -= (q_y + self.eps).ln() - self.log_total;
            // ∂/∂p_i of −ln(p_y/S + ε) / rows is −(δ_iy − q_y) / (S (q_y + ε) rows); ∂p_i/∂R_i = 2R_i, ∂p_i/∂I_i = 2I_i.
            let c = inv_rows / (s * (q_y + self.eps));
            let g_y = -c * (1.0 - q_y);
            let g_other = c * q_y;
            for (i, (r, im_i)) in re.iter_mut().zip(im.iter_mut()).enumerate() {
                let g = if i == y { g_y } else { g_other };
                *r *= 2.0 * g;
                *im_i *= 2.0 * g;
            }
        }
        let dz = ensure(&mut self.dz, rows * w);
        dense::matmul_transposed(ri, &self.basis, dz, 2 * m, w);
        let mut reg = 0.0f64;
        if self.gamma > 0.0 {
            let scale = self.gamma as f64 * inv_rows as f64;
            for (z, g) in self.z[..rows * w].chunks_exact(w).zip(dz.chunks_exact_mut(w)) {
                reg += weighted_autocorrelation_norm(z, n);
                weighted_autocorrelation_backward(z, n, scale, g);
            }
            reg *= scale;
        }
        dense::linear_backward_params(x, dz, &mut self.weight.grad, &mut self.bias.grad, d, w);
        dense::transpose(&self.weight.value, &mut self.weight_t, d, w);
        dense::linear_backward_input(dz, &self.weight_t, dx, d, w);
        ce / rows as f32 + reg as f32
    }
}

/// `4π² Σ_{k=1}^{N} k² |c_k|²` of one coefficient row `[u | v]` (`a_j = u_j + i v_j`, `c_k = Σ_j a_{j+k} conj(a_j)`):
/// the Fourier head's regulariser of one row, in f64.
fn weighted_autocorrelation_norm(z: &[f32], n: usize) -> f64 {
    let (u, v) = z.split_at(n + 1);
    let mut total = 0.0;
    for k in 1..=n {
        let (mut re, mut im) = (0.0f64, 0.0f64);
        for j in 0..=(n - k) {
            let (p, q, r, s) = (u[j + k] as f64, v[j + k] as f64, u[j] as f64, v[j] as f64);
            re += p * r + q * s;
            im += q * r - p * s;
        }
        total += (k * k) as f64 * (re * re + im * im);
    }
    4.0 * PI * PI * total
}

/// Adds `scale ·` the gradient of [`weighted_autocorrelation_norm`] with respect to the row `z` to `grad`.
fn weighted_autocorrelation_backward(z: &[f32], n: usize, scale: f64, grad: &mut [f32]) {
    let (u, v) = z.split_at(n + 1);
    let mut du = vec![0.0f64; n + 1];
    let mut dv = vec![0.0f64; n + 1];
    for k in 1..=n {
        let (mut re, mut im) = (0.0f64, 0.0f64);
        for j in 0..=(n - k) {
            let (p, q, r, s) = (u[j + k] as f64, v[j + k] as f64, u[j] as f64, v[j] as f64);
            re += p * r + q * s;
            im += q * r - p * s;
        }
        // ∂/∂(Re c_k, Im c_k) of 4π² k² |c_k|², times scale.
        let w = scale * 8.0 * PI * PI * (k * k) as f64;
        let (gr, gi) = (w * re, w * im);
        for j in 0..=(n - k) {
            let (p, q, r, s) = (u[j + k] as f64, v[j + k] as f64, u[j] as f64, v[j] as f64);
            du[j + k] += gr * r - gi * s;
            dv[j + k] += gr * s + gi * r;
            du[j] += gr * p + gi * q;
            dv[j] += gr * q - gi * p;
        }
    }
    for (g, d) in grad.iter_mut().zip(du.iter().chain(&dv)) {
        *g += *d as f32;
    }
}

/// The mixture head with uniform weights on the host: `μ = tanh(x · W + b)`, `σ = softplus(ρ)`,
/// `q_i = Σ_k N(c_i; μ_k, σ_k)/K + ε`, cross-entropy of `log q`.
#[derive(Debug, Clone)]
pub struct MixtureHost {
    weight: HostParam,
    bias: HostParam,
    rho: HostParam,
    components: usize,
    bins: usize,
    d_in: usize,
    eps: f32,
    centres: Vec<f32>,
    mu: Vec<f32>,
    e: Vec<f32>,
    weight_t: Vec<f32>,
}

impl MixtureHost {
    fn new(
        config: &MixtureHeadConfig,
        weight: HostParam,
        bias: HostParam,
        rho: HostParam,
        d_in: usize,
        bins: usize,
    ) -> Self {
        let k = config.components;
        Self {
            weight,
            bias,
            rho,
            components: k,
            bins,
            d_in,
            eps: config.eps as f32,
            centres: bin_centres(bins),
            mu: Vec::new(),
            e: Vec::new(),
            weight_t: vec![0.0; d_in * k],
        }
    }

    fn loss_backward(&mut self, x: &[f32], targets: &[usize], dx: &mut [f32]) -> f32 {
        let (k, m, d) = (self.components, self.bins, self.d_in);
        let rows = targets.len();
        let mu = ensure(&mut self.mu, rows * k);
        dense::linear(x, &self.weight.value, &self.bias.value, mu, d, k);
        for v in mu.iter_mut() {
            *v = v.tanh();
        }
        // Per component: σ = softplus(ρ), −1/(2σ²), and the scale 1/(K σ √(2π)).
        let sigma: Vec<f32> = self.rho.value.iter().map(|&r| softplus(r)).collect();
        let nhp: Vec<f32> = sigma.iter().map(|&s| -0.5 / (s * s)).collect();
        let norm: Vec<f32> = sigma.iter().map(|&s| (1.0 / s) * (1.0 / (2.0 * PI).sqrt()) as f32).collect();
        let scale: Vec<f32> = norm.iter().map(|&n| n * (1.0 / k as f32)).collect();
        let e = ensure(&mut self.e, k * m);
        let inv_rows = 1.0 / rows as f32;
        let mut total = 0.0f32;
        let mut d_scale = vec![0.0f32; k];
        let mut d_nhp = vec![0.0f32; k];
        let mut q = vec![0.0f32; m];
        let mut g = vec![0.0f32; m];
        let mut d_mu_rows = vec![0.0f32; rows * k];
        for (b, &y) in targets.iter().enumerate() {
            let mu_b = &mu[b * k..(b + 1) * k];
            q.fill(self.eps);
            for c in 0..k {
                let er = &mut e[c * m..(c + 1) * m];
                for ((ev, &centre), qv) in er.iter_mut().zip(&self.centres).zip(q.iter_mut()) {
                    let diff = centre - mu_b[c];
                    *ev = (diff * diff * nhp[c]).exp();
                    *qv += *ev * scale[c];
                }
            }
            let sum: f32 = q.iter().sum();
            total += sum.ln() - q[y].ln();
            // G = ∂loss/∂q_i = (1/Σq − [i = y]/q_y) / rows
            let inv_sum = inv_rows / sum;
            g.fill(inv_sum);
            g[y] -= inv_rows / q[y];
            for c in 0..k {
                let er = &e[c * m..(c + 1) * m];
                let (mut ds, mut dmu, mut dn) = (0.0f32, 0.0f32, 0.0f32);
                for ((&ev, &centre), &gv) in er.iter().zip(&self.centres).zip(&g) {
                    let diff = centre - mu_b[c];
                    let ge = gv * ev;
                    ds += ge;
                    let gt = ge * scale[c];
                    dmu += gt * diff;
                    dn += gt * diff * diff;
                }
                d_scale[c] += ds;
                d_nhp[c] += dn;
                // ∂/∂μ of exp((c − μ)² · nhp) is −2 nhp (c − μ) times it; then through tanh.
                d_mu_rows[b * k + c] = dmu * (-2.0 * nhp[c]) * (1.0 - mu_b[c] * mu_b[c]);
            }
        }
        for c in 0..k {
            let s = sigma[c];
            // scale = norm / K with norm = 1/(σ√(2π)); nhp = −1/(2σ²); σ = softplus(ρ), σ' = sigmoid(ρ).
            let d_norm = d_scale[c] / k as f32;
            let d_sigma = d_norm * (-norm[c] / s) + d_nhp[c] / (s * s * s);
            self.rho.grad[c] += d_sigma * sigmoid(self.rho.value[c]);
        }
        dense::linear_backward_params(x, &d_mu_rows, &mut self.weight.grad, &mut self.bias.grad, d, k);
        dense::transpose(&self.weight.value, &mut self.weight_t, d, k);
        dense::linear_backward_input(&d_mu_rows, &self.weight_t, dx, d, k);
        total / rows as f32
    }
}

/// `ln(1 + eˣ)`, the identity above 20 as burn's.
fn softplus(x: f32) -> f32 {
    if x > 20.0 { x } else { x.exp().ln_1p() }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}
