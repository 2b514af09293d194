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
/// `m₂ ← β₂m₂ + (1−β₂)g²`, `θ ← θ − lr · m₁ · √(1−β₂ᵗ)/(1−β₁ᵗ) / (√m₂ + ε√(1−β₂ᵗ))`, all in f32; moments that
/// fall below f32's smallest normal are set to 0 (see `normal_or_zero`).
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
        let step = AdamStep { b1, b2, f1, f2, factor, eps, lr };
        for p in params {
            step.apply(&mut p.value, &p.grad, &mut p.moment_1, &mut p.moment_2, first);
        }
    }
}

/// The constants of one Adam step.
#[derive(Clone, Copy)]
struct AdamStep {
    b1: f32,
    b2: f32,
    f1: f32,
    f2: f32,
    factor: f32,
    eps: f32,
    lr: f32,
}

impl AdamStep {
    /// Updates one parameter's moments and value (AVX2 when the CPU has it: the same operations, the same bits).
    fn apply(self, value: &mut [f32], grad: &[f32], m1: &mut [f32], m2: &mut [f32], first: bool) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                return unsafe { self.apply_avx2(value, grad, m1, m2, first) };
            }
        }
        self.apply_body(value, grad, m1, m2, first)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn apply_avx2(self, value: &mut [f32], grad: &[f32], m1: &mut [f32], m2: &mut [f32], first: bool) {
        self.apply_body(value, grad, m1, m2, first)
    }

    #[inline(always)]
    fn apply_body(self, value: &mut [f32], grad: &[f32], m1: &mut [f32], m2: &mut [f32], first: bool) {
        let n = value.len();
        let (grad, m1, m2) = (&grad[..n], &mut m1[..n], &mut m2[..n]);
        if first {
            for i in 0..n {
                m1[i] = normal_or_zero(grad[i] * self.f1);
                m2[i] = normal_or_zero(grad[i] * grad[i] * self.f2);
            }
        } else {
            for i in 0..n {
                m1[i] = normal_or_zero(m1[i] * self.b1 + grad[i] * self.f1);
                m2[i] = normal_or_zero(m2[i] * self.b2 + grad[i] * grad[i] * self.f2);
            }
        }
        for i in 0..n {
            value[i] -= m1[i] * self.factor / (m2[i].sqrt() + self.eps) * self.lr;
        }
    }
}

/// `x`, or 0 where `x` is subnormal. A moment whose gradient stays 0 (a dead ReLU's weights) decays into the
/// subnormals and, rounding to itself, stays there; every operation on it then takes the CPU's slow subnormal path
/// (about 100 cycles on x86), which made whole toy steps three times slower. A subnormal `m₁` moves its weight by
/// less than `lr · 2⁻¹²⁶ / (ε√(1−β₂ᵗ))` (below 1e-27 for lr ≤ 1, ε ≥ 1e-8) and a subnormal `m₂` changes the
/// denominator by less than 2⁻⁶³, so the weights stay those of burn's Adam except, at most, in a last bit.
#[inline(always)]
fn normal_or_zero(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE { 0.0 } else { x }
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
            for l in row.iter_mut() {
                *l -= max;
            }
            let shifted_y = row[y];
            dense::exp_in_place(row);
            let sum: f32 = row.iter().sum();
            total += sum.ln() - shifted_y;
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
    /// `basis` transposed, `[2m, 2(N+1)]`.
    basis_t: Vec<f32>,
    z: Vec<f32>,
    ri: Vec<f32>,
    dz: Vec<f32>,
    autocorrelation: Autocorrelation,
    weight_t: Vec<f32>,
}

impl FourierHost {
    fn new(config: &FourierHeadConfig, weight: HostParam, bias: HostParam, d_in: usize, bins: usize) -> Self {
        let n = config.frequencies;
        let width = 2 * (n + 1);
        let basis = fourier_basis_values(n, &bin_centres(bins));
        let mut basis_t = vec![0.0; basis.len()];
        dense::transpose(&basis, &mut basis_t, width, 2 * bins);
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
            basis_t,
            z: Vec::new(),
            autocorrelation: Autocorrelation::default(),
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
        let sum = self.autocorrelation.sum(&self.z[..rows * w], n, None);
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
        dense::matmul(ri, &self.basis_t, dz, 2 * m, w);
        let mut reg = 0.0f64;
        if self.gamma > 0.0 {
            let scale = self.gamma as f64 * inv_rows as f64;
            reg = self.autocorrelation.sum(&self.z[..rows * w], n, Some((scale, dz))) * scale;
        }
        dense::linear_backward_params(x, dz, &mut self.weight.grad, &mut self.bias.grad, d, w);
        dense::transpose(&self.weight.value, &mut self.weight_t, d, w);
        dense::linear_backward_input(dz, &self.weight_t, dx, d, w);
        ce / rows as f32 + reg as f32
    }
}

/// The Fourier head's arithmetic from rows of its coefficients `z` (`[rows, 2(N+1)]`, the output of the head's
/// linear layer), for models that hold that layer themselves (the host DQN): the PMF, the cross-entropy against
/// target distributions with its gradient, and the regulariser with its gradient; the formulas of [`FourierHost`].
#[derive(Debug, Clone)]
pub struct FourierRows {
    frequencies: usize,
    bins: usize,
    gamma: f64,
    eps: f32,
    /// `ln(1 + m ε)`.
    log_total: f32,
    basis: Vec<f32>,
    basis_t: Vec<f32>,
}

impl FourierRows {
    /// The head of `config` over `bins` bins.
    pub fn new(config: &FourierHeadConfig, bins: usize) -> Self {
        let n = config.frequencies;
        let basis = fourier_basis_values(n, &bin_centres(bins));
        let mut basis_t = vec![0.0; basis.len()];
        dense::transpose(&basis, &mut basis_t, 2 * (n + 1), 2 * bins);
        Self {
            frequencies: n,
            bins,
            gamma: config.gamma,
            eps: config.eps as f32,
            log_total: (1.0 + bins as f64 * config.eps).ln() as f32,
            basis,
            basis_t,
        }
    }

    /// Coefficients per row, `2(N + 1)`.
    pub fn width(&self) -> usize {
        2 * (self.frequencies + 1)
    }

    /// The regulariser's weight `γ`.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// `q = |R + iI|² / Σ|R + iI|²` of each row into `out` (`[rows, m]`), through `ri` (scratch).
    fn q(&self, z: &[f32], ri: &mut Vec<f32>, out: &mut Vec<f32>) {
        let (m, w) = (self.bins, self.width());
        let rows = z.len() / w;
        ri.resize(rows * 2 * m, 0.0);
        dense::matmul(z, &self.basis, ri, w, 2 * m);
        out.resize(rows * m, 0.0);
        for (row, o) in ri.chunks_exact(2 * m).zip(out.chunks_exact_mut(m)) {
            let (re, im) = row.split_at(m);
            let mut sum = 0.0f32;
            for ((o, r), i) in o.iter_mut().zip(re).zip(im) {
                *o = r * r + i * i;
                sum += *o;
            }
            let inv = 1.0 / (sum + 1e-20);
            o.iter_mut().for_each(|v| *v *= inv);
        }
    }

    /// The PMF `(q + ε) / (1 + mε)` of each row of `z` into `out` (`[rows, m]`); `ri` is scratch.
    pub fn pmf(&self, z: &[f32], ri: &mut Vec<f32>, out: &mut Vec<f32>) {
        self.q(z, ri, out);
        let total = 1.0 / (1.0 + self.bins as f32 * self.eps);
        out.iter_mut().for_each(|v| *v = (*v + self.eps) * total);
    }

    /// `Σ_rows −Σ_i t_i log pmf_i` against `targets` (`[rows, m]`, rows summing to 1); writes `scale ·` its gradient
    /// with respect to `z` into `dz` and each row's PMF into `pmf`; `ri` is scratch.
    pub fn soft_cross_entropy_backward(
        &self,
        z: &[f32],
        targets: &[f32],
        scale: f32,
        dz: &mut [f32],
        ri: &mut Vec<f32>,
        pmf: &mut Vec<f32>,
    ) -> f32 {
        let (m, w) = (self.bins, self.width());
        self.q(z, ri, pmf);
        let mut total = 0.0f32;
        let mut log_q = vec![0.0f32; m];
        let inv_total = 1.0 / (1.0 + m as f32 * self.eps);
        for ((row, q), t) in ri.chunks_exact_mut(2 * m).zip(pmf.chunks_exact_mut(m)).zip(targets.chunks_exact(m)) {
            let (re, im) = row.split_at_mut(m);
            let sum: f32 = re.iter().zip(im.iter()).map(|(r, i)| r * r + i * i).sum::<f32>() + 1e-20;
            for (l, q) in log_q.iter_mut().zip(q.iter()) {
                *l = q + self.eps;
            }
            dense::ln_in_place(&mut log_q);
            // ∂/∂p_k of −Σ_j t_j ln(q_j + ε) is (Σ_j t_j q_j/(q_j + ε) − t_k/(q_k + ε)) / S; ∂p_k/∂(R_k, I_k) = 2(R_k, I_k).
            let a: f32 = t.iter().zip(q.iter()).map(|(t, q)| t * q / (q + self.eps)).sum();
            for k in 0..m {
                total -= t[k] * (log_q[k] - self.log_total);
                let g = 2.0 * scale * (a - t[k] / (q[k] + self.eps)) / sum;
                re[k] *= g;
                im[k] *= g;
                q[k] = (q[k] + self.eps) * inv_total;
            }
        }
        let rows = z.len() / w;
        dense::matmul(&ri[..rows * 2 * m], &self.basis_t, &mut dz[..rows * w], 2 * m, w);
        total
    }

    /// `γ Σ_rows 4π² Σ_k k² |c_k|²` of the rows of `z`; with `backward = (scale, dz)` adds `scale ·` its gradient
    /// to `dz`.
    pub fn regularizer(&self, z: &[f32], backward: Option<(f64, &mut [f32])>) -> f64 {
        let mut a = Autocorrelation::default();
        let backward = backward.map(|(scale, dz)| (scale * self.gamma, dz));
        self.gamma * a.sum(z, self.frequencies, backward)
    }
}

/// The Fourier head's regulariser of a batch of coefficient rows `[u | v]` (`a_j = u_j + i v_j`, `j = 0..=N`):
/// per row `4π² Σ_{k=1}^{N} k² |c_k|²` with the autocorrelation `c_k = Σ_j a_{j+k} conj(a_j)` in f32 (as the
/// graph's quadrature), the weighted sums in f64. The buffers hold one coefficient (or lag) for all rows of a block
/// side by side, so every inner loop runs over rows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Autocorrelation {
    u: Vec<f32>,
    v: Vec<f32>,
    re: Vec<f32>,
    im: Vec<f32>,
    du: Vec<f32>,
    dv: Vec<f32>,
}

impl Autocorrelation {
    /// The sum over the rows of `z` (`[rows, 2(N+1)]`) of their regulariser; with `backward = (scale, dz)`, adds
    /// `scale ·` the gradient of each row's regulariser to that row of `dz`.
    pub(crate) fn sum(&mut self, z: &[f32], n: usize, backward: Option<(f64, &mut [f32])>) -> f64 {
        self.sum_with(z, n, backward, true)
    }

    /// [`Autocorrelation::sum`] with `scale ·` the gradient written into `dz` (every value of it) instead of added.
    pub(crate) fn sum_into(&mut self, z: &[f32], n: usize, scale: f64, dz: &mut [f32]) -> f64 {
        self.sum_with(z, n, Some((scale, dz)), false)
    }

    fn sum_with(&mut self, z: &[f32], n: usize, backward: Option<(f64, &mut [f32])>, add: bool) -> f64 {
        let w = 2 * (n + 1);
        let block = ROW_BLOCK * w;
        match backward {
            None => z.chunks(block).map(|zb| self.sum_block(zb, n, None, add)).sum(),
            Some((scale, dz)) => z
                .chunks(block)
                .zip(dz.chunks_mut(block))
                .map(|(zb, db)| self.sum_block(zb, n, Some((scale, db)), add))
                .sum(),
        }
    }

    /// [`Autocorrelation::sum`] of at most [`ROW_BLOCK`] rows. Each `c_k` of a row adds its terms in order of `j`;
    /// each row's regulariser adds its lags in order of `k`.
    fn sum_block(&mut self, z: &[f32], n: usize, backward: Option<(f64, &mut [f32])>, add: bool) -> f64 {
        let w = 2 * (n + 1);
        let rows = z.len() / w;
        // Rows padded with zeros to whole lane groups: zero coefficients add nothing.
        let rp = rows.next_multiple_of(LANES * GROUPS);
        let size = (n + 1) * rp;
        // Every value the kernels read is written below (`re`, `im` from lag 1 on), so the buffers are not cleared.
        for buf in [&mut self.u, &mut self.v, &mut self.re, &mut self.im] {
            if buf.len() < size {
                buf.resize(size, 0.0);
            }
        }
        // `u` holds columns 0..=n of the block transposed, `v` the columns after them.
        dense::transpose_block(z, w, &mut self.u[..size], rp, (rows, n + 1), false);
        dense::transpose_block(&z[n + 1..], w, &mut self.v[..size], rp, (rows, n + 1), false);
        for j in 0..=n {
            self.u[j * rp + rows..(j + 1) * rp].fill(0.0);
            self.v[j * rp + rows..(j + 1) * rp].fill(0.0);
        }
        // With a gradient, `re`, `im` receive ∂/∂(Re c_k, Im c_k) of scale · 4π² k² |c_k|² instead of c_k.
        let grad_scale = backward.as_ref().map(|(scale, _)| (scale * 8.0 * PI * PI) as f32);
        let totals = lanes::lag_sums(&self.u, &self.v, &mut self.re, &mut self.im, n, rp, grad_scale);
        let sum = totals[..rows].iter().map(|&t| 4.0 * PI * PI * t as f64).sum();
        let Some((_, dz)) = backward else { return sum };
        for buf in [&mut self.du, &mut self.dv] {
            if buf.len() < size {
                buf.resize(size, 0.0);
            }
        }
        lanes::lag_grads(&self.u, &self.v, &self.re, &self.im, n, rp, &mut self.du, &mut self.dv);
        dense::transpose_block(&self.du, rp, dz, w, (n + 1, rows), add);
        dense::transpose_block(&self.dv, rp, &mut dz[n + 1..], w, (n + 1, rows), add);
        sum
    }
}

/// Rows of one register group in [`Autocorrelation::sum`].
const LANES: usize = 8;

/// Register groups the kernels advance together (AVX-512: four of 16 rows where a block has 64, else two): each
/// row's sums are chains of dependent multiply-adds, so one group alone would wait on each operation's latency;
/// independent chains keep the multiply-add units busy (each row's operations and their order are unchanged).
const GROUPS: usize = 4;

/// The autocorrelation's two loops over lags for [`LANES`] rows at a time, in AVX2 registers with fused
/// multiply-adds where the CPU has them; the portable build does the same operations with `mul_add` on arrays of
/// [`LANES`] values, so both give the same bits. One body (the macro `kernels`) serves both.
mod lanes {
    use super::{GROUPS, LANES};

    /// The two kernels, with the lane operations (`zero`, `load`, `to_array`, `splat`, `mul`, `fma`, `fnma`) of the
    /// module that invokes it and its attributes on both functions.
    macro_rules! kernels {
        ($(#[$attribute:meta])*) => {
            /// `c_k = Σ_j a_{j+k} conj(a_j)` (`k = 1..=n`, terms in order of `j`) for every row into `re`, `im`
            /// (times `grad_scale · k²` when given) and each row's `Σ_k k² |c_k|²` into `totals`; `u`, `v`
            /// (`a = u + iv`), `re`, `im` lag-major with `rp` rows each.
            ///
            /// # Safety
            /// The CPU has the features the attributes enable; the sizes as [`super::lag_sums`] checks them.
            $(#[$attribute])*
            #[allow(clippy::too_many_arguments, dead_code)]
            pub(super) unsafe fn lag_sums<const G: usize>(
                u: &[f32],
                v: &[f32],
                re: &mut [f32],
                im: &mut [f32],
                n: usize,
                rp: usize,
                grad_scale: Option<f32>,
                totals: &mut [f32],
            ) {
                let (pu, pv) = (u.as_ptr(), v.as_ptr());
                for b0 in (0..rp).step_by(LANES * G) {
                    let mut total = [zero(); G];
                    for k in 1..n + 1 {
                        // SAFETY: as the caller's.
                        let (sr, si) = unsafe { lag_terms::<G>(pu, pv, k, n, rp, b0) };
                        store_lag(&mut total, &sr, &si, k, grad_scale, re, im, rp, b0);
                    }
                    for g in 0..G {
                        totals[b0 + g * LANES..][..LANES].copy_from_slice(&to_array(total[g]));
                    }
                }
            }

            /// `c_k`'s terms `a_{j+k} conj(a_j)` summed in order of `j` for the `G` groups of rows from `b0`:
            /// (real parts, imaginary parts).
            ///
            /// # Safety
            /// As [`lag_sums`]; `b0 + G · LANES ≤ rp`.
            $(#[$attribute])*
            #[inline]
            unsafe fn lag_terms<const G: usize>(
                pu: *const f32,
                pv: *const f32,
                k: usize,
                n: usize,
                rp: usize,
                b0: usize,
            ) -> ([L; G], [L; G]) {
                let (mut sr, mut si) = ([zero(); G], [zero(); G]);
                for j in 0..n - k + 1 {
                    for g in 0..G {
                        let (hi, lo) = ((j + k) * rp + b0 + g * LANES, j * rp + b0 + g * LANES);
                        // SAFETY: hi, lo + LANES ≤ (n + 1) · rp, checked by the caller.
                        let (p, q, r, s) =
                            unsafe { (load(pu.add(hi)), load(pv.add(hi)), load(pu.add(lo)), load(pv.add(lo))) };
                        sr[g] = fma(fma(sr[g], p, r), q, s);
                        si[g] = fnma(fma(si[g], q, r), p, s);
                    }
                }
                (sr, si)
            }

            /// Adds `k² |c_k|²` to each row's `total` and writes `c_k` (times `grad_scale · k²` when given) of the
            /// `G` groups of rows from `b0` into `re`, `im`.
            $(#[$attribute])*
            #[inline]
            #[allow(clippy::too_many_arguments)]
            fn store_lag<const G: usize>(
                total: &mut [L; G],
                sr: &[L; G],
                si: &[L; G],
                k: usize,
                grad_scale: Option<f32>,
                re: &mut [f32],
                im: &mut [f32],
                rp: usize,
                b0: usize,
            ) {
                let kk = splat((k * k) as f32);
                for g in 0..G {
                    total[g] = fma(fma(total[g], mul(kk, sr[g]), sr[g]), mul(kk, si[g]), si[g]);
                    let (r, i) = match grad_scale {
                        Some(s) => (mul(splat(s * (k * k) as f32), sr[g]), mul(splat(s * (k * k) as f32), si[g])),
                        None => (sr[g], si[g]),
                    };
                    re[k * rp + b0 + g * LANES..][..LANES].copy_from_slice(&to_array(r));
                    im[k * rp + b0 + g * LANES..][..LANES].copy_from_slice(&to_array(i));
                }
            }

            /// [`lag_sums`] with `B` lags per pass over the coefficients (the lags left over one at a time): the
            /// `B` lags share the loads of `a_j`, and `a_{j+k+b}` is carried from term to term, so one load of
            /// `a` serves `B` complex multiply-adds; each `c_k` adds the same terms in the same order, so the bits
            /// are [`lag_sums`]'.
            ///
            /// # Safety
            /// As [`lag_sums`].
            $(#[$attribute])*
            #[allow(clippy::too_many_arguments, dead_code)]
            pub(super) unsafe fn lag_sums_blocked<const G: usize, const B: usize>(
                u: &[f32],
                v: &[f32],
                re: &mut [f32],
                im: &mut [f32],
                n: usize,
                rp: usize,
                grad_scale: Option<f32>,
                totals: &mut [f32],
            ) {
                let (pu, pv) = (u.as_ptr(), v.as_ptr());
                for b0 in (0..rp).step_by(LANES * G) {
                    let mut total = [zero(); G];
                    let mut k0 = 1;
                    while k0 < n + 1 {
                        let nb = if k0 + B <= n + 1 { B } else { 1 };
                        let (mut sr, mut si) = ([[zero(); G]; B], [[zero(); G]; B]);
                        // SAFETY: every offset below is at most n · rp + b0 + (G − 1) · LANES, with LANES values
                        // after it (checked by the caller).
                        unsafe {
                            if nb == B {
                                // `a_{j+k0+b}` for b < B − 1, carried (shifted down one lag per term).
                                let (mut wp, mut wq) = ([[zero(); G]; B], [[zero(); G]; B]);
                                for b in 0..B - 1 {
                                    for g in 0..G {
                                        let o = (k0 + b) * rp + b0 + g * LANES;
                                        (wp[b][g], wq[b][g]) = (load(pu.add(o)), load(pv.add(o)));
                                    }
                                }
                                // Every lag has its term j while j ≤ n − k0 − (B − 1).
                                for j in 0..n + 2 - k0 - B {
                                    for g in 0..G {
                                        let bb = b0 + g * LANES;
                                        let (r, s) = (load(pu.add(j * rp + bb)), load(pv.add(j * rp + bb)));
                                        let o = (j + k0 + B - 1) * rp + bb;
                                        (wp[B - 1][g], wq[B - 1][g]) = (load(pu.add(o)), load(pv.add(o)));
                                        for b in 0..B {
                                            let (p, q) = (wp[b][g], wq[b][g]);
                                            sr[b][g] = fma(fma(sr[b][g], p, r), q, s);
                                            si[b][g] = fnma(fma(si[b][g], q, r), p, s);
                                        }
                                        for b in 0..B - 1 {
                                            (wp[b][g], wq[b][g]) = (wp[b + 1][g], wq[b + 1][g]);
                                        }
                                    }
                                }
                                // The lower lags' last terms.
                                for j in n + 2 - k0 - B..n + 1 - k0 {
                                    for b in 0..n + 1 - k0 - j {
                                        for g in 0..G {
                                            let bb = b0 + g * LANES;
                                            let (hi, lo) = ((j + k0 + b) * rp + bb, j * rp + bb);
                                            let (p, q) = (load(pu.add(hi)), load(pv.add(hi)));
                                            let (r, s) = (load(pu.add(lo)), load(pv.add(lo)));
                                            sr[b][g] = fma(fma(sr[b][g], p, r), q, s);
                                            si[b][g] = fnma(fma(si[b][g], q, r), p, s);
                                        }
                                    }
                                }
                            } else {
                                (sr[0], si[0]) = lag_terms::<G>(pu, pv, k0, n, rp, b0);
                            }
                        }
                        for b in 0..nb {
                            store_lag(&mut total, &sr[b], &si[b], k0 + b, grad_scale, re, im, rp, b0);
                        }
                        k0 += nb;
                    }
                    for g in 0..G {
                        totals[b0 + g * LANES..][..LANES].copy_from_slice(&to_array(total[g]));
                    }
                }
            }

            /// [`lag_grads`] for `B` coefficients per pass (those left over one at a time): the `B` share the loads
            /// of `g_k`, and the coefficient one of them reads at term `k` another reads at term `k ± 1`, carried, so
            /// one load of `a` serves `B` complex multiply-adds; each gradient adds the same terms in the same
            /// order, so the bits are [`lag_grads`]'.
            ///
            /// # Safety
            /// As [`lag_grads`].
            $(#[$attribute])*
            #[allow(clippy::too_many_arguments, dead_code)]
            pub(super) unsafe fn lag_grads_blocked<const G: usize, const B: usize>(
                u: &[f32],
                v: &[f32],
                gr: &[f32],
                gi: &[f32],
                n: usize,
                rp: usize,
                du: &mut [f32],
                dv: &mut [f32],
            ) {
                let (pu, pv, pr, pi) = (u.as_ptr(), v.as_ptr(), gr.as_ptr(), gi.as_ptr());
                for b0 in (0..rp).step_by(LANES * G) {
                    let mut m0 = 0;
                    while m0 < n + 1 {
                        if m0 + B > n + 1 {
                            // SAFETY: as the caller's.
                            let (gu, gv) = unsafe { coefficient_terms::<G>(pu, pv, pr, pi, m0, n, rp, b0) };
                            store_coefficient(&gu, &gv, m0, du, dv, rp, b0);
                            m0 += 1;
                            continue;
                        }
                        let (mut gu, mut gv) = ([[zero(); G]; B], [[zero(); G]; B]);
                        // SAFETY: every offset below is at most n · rp + b0 + (G − 1) · LANES, with LANES values
                        // after it (checked by the caller).
                        unsafe {
                            {
                                // First sum: coefficient m0 + b, term k reads `a_{m0+b−k}` (k = 1..=m0 + b).
                                // `w[b]` (b ≥ 1) holds `a_{m0+b−k}` at term k, carried; b = 0 reads it fresh.
                                let (mut wp, mut wq) = ([[zero(); G]; B], [[zero(); G]; B]);
                                for b in 1..B {
                                    for g in 0..G {
                                        let o = (m0 + b - 1) * rp + b0 + g * LANES;
                                        (wp[b][g], wq[b][g]) = (load(pu.add(o)), load(pv.add(o)));
                                    }
                                }
                                for k in 1..m0 + 1 {
                                    for g in 0..G {
                                        let bb = b0 + g * LANES;
                                        let (g_r, g_i) = (load(pr.add(k * rp + bb)), load(pi.add(k * rp + bb)));
                                        let o = (m0 - k) * rp + bb;
                                        (wp[0][g], wq[0][g]) = (load(pu.add(o)), load(pv.add(o)));
                                        for b in 0..B {
                                            let (r, s) = (wp[b][g], wq[b][g]);
                                            gu[b][g] = fnma(fma(gu[b][g], g_r, r), g_i, s);
                                            gv[b][g] = fma(fma(gv[b][g], g_r, s), g_i, r);
                                        }
                                        for b in (1..B).rev() {
                                            (wp[b][g], wq[b][g]) = (wp[b - 1][g], wq[b - 1][g]);
                                        }
                                    }
                                }
                                // Its last terms (k = m0 + 1..=m0 + b) for b ≥ 1.
                                for b in 1..B {
                                    for k in m0 + 1..m0 + b + 1 {
                                        for g in 0..G {
                                            let bb = b0 + g * LANES;
                                            let (g_r, g_i) = (load(pr.add(k * rp + bb)), load(pi.add(k * rp + bb)));
                                            let o = (m0 + b - k) * rp + bb;
                                            let (r, s) = (load(pu.add(o)), load(pv.add(o)));
                                            gu[b][g] = fnma(fma(gu[b][g], g_r, r), g_i, s);
                                            gv[b][g] = fma(fma(gv[b][g], g_r, s), g_i, r);
                                        }
                                    }
                                }
                                // Second sum: coefficient m0 + b, term k reads `a_{m0+b+k}` (k = 1..=n − m0 − b).
                                // `w[b]` (b < B − 1) holds it at term k, carried; b = B − 1 reads it fresh.
                                for b in 0..B - 1 {
                                    for g in 0..G {
                                        let o = (m0 + b + 1) * rp + b0 + g * LANES;
                                        (wp[b][g], wq[b][g]) = (load(pu.add(o)), load(pv.add(o)));
                                    }
                                }
                                for k in 1..n + 2 - m0 - B {
                                    for g in 0..G {
                                        let bb = b0 + g * LANES;
                                        let (g_r, g_i) = (load(pr.add(k * rp + bb)), load(pi.add(k * rp + bb)));
                                        let o = (m0 + B - 1 + k) * rp + bb;
                                        (wp[B - 1][g], wq[B - 1][g]) = (load(pu.add(o)), load(pv.add(o)));
                                        for b in 0..B {
                                            let (p, q) = (wp[b][g], wq[b][g]);
                                            gu[b][g] = fma(fma(gu[b][g], g_r, p), g_i, q);
                                            gv[b][g] = fnma(fma(gv[b][g], g_r, q), g_i, p);
                                        }
                                        for b in 0..B - 1 {
                                            (wp[b][g], wq[b][g]) = (wp[b + 1][g], wq[b + 1][g]);
                                        }
                                    }
                                }
                                // Its last terms (k = n − m0 − B + 2..=n − m0 − b) for b < B − 1.
                                for b in 0..B - 1 {
                                    for k in n + 2 - m0 - B..n - m0 - b + 1 {
                                        for g in 0..G {
                                            let bb = b0 + g * LANES;
                                            let (g_r, g_i) = (load(pr.add(k * rp + bb)), load(pi.add(k * rp + bb)));
                                            let o = (m0 + b + k) * rp + bb;
                                            let (p, q) = (load(pu.add(o)), load(pv.add(o)));
                                            gu[b][g] = fma(fma(gu[b][g], g_r, p), g_i, q);
                                            gv[b][g] = fnma(fma(gv[b][g], g_r, q), g_i, p);
                                        }
                                    }
                                }
                            }
                        }
                        for b in 0..B {
                            store_coefficient(&gu[b], &gv[b], m0 + b, du, dv, rp, b0);
                        }
                        m0 += B;
                    }
                }
            }

            /// The gradient of `Σ_k (gr_k Re c_k + gi_k Im c_k)` with respect to every row's coefficients into `du`,
            /// `dv` (lag-major): `a_m` appears in `c_k` as `a_{j+k}` (`j = m − k`, `k ≤ m`) and as `conj(a_j)`
            /// (`j = m`, `k ≤ n − m`).
            ///
            /// # Safety
            /// The CPU has the features the attributes enable; the sizes as [`super::lag_grads`] checks them.
            $(#[$attribute])*
            #[allow(clippy::too_many_arguments, dead_code)]
            pub(super) unsafe fn lag_grads<const G: usize>(
                u: &[f32],
                v: &[f32],
                gr: &[f32],
                gi: &[f32],
                n: usize,
                rp: usize,
                du: &mut [f32],
                dv: &mut [f32],
            ) {
                let (pu, pv, pr, pi) = (u.as_ptr(), v.as_ptr(), gr.as_ptr(), gi.as_ptr());
                for b0 in (0..rp).step_by(LANES * G) {
                    for m in 0..n + 1 {
                        // SAFETY: as the caller's.
                        let (gu, gv) = unsafe { coefficient_terms::<G>(pu, pv, pr, pi, m, n, rp, b0) };
                        store_coefficient(&gu, &gv, m, du, dv, rp, b0);
                    }
                }
            }

            /// The gradient with respect to coefficient `m` for the `G` groups of rows from `b0`: (real parts,
            /// imaginary parts), its terms in the order of [`lag_grads`].
            ///
            /// # Safety
            /// As [`lag_grads`]; `b0 + G · LANES ≤ rp`.
            $(#[$attribute])*
            #[inline]
            #[allow(clippy::too_many_arguments)]
            unsafe fn coefficient_terms<const G: usize>(
                pu: *const f32,
                pv: *const f32,
                pr: *const f32,
                pi: *const f32,
                m: usize,
                n: usize,
                rp: usize,
                b0: usize,
            ) -> ([L; G], [L; G]) {
                let (mut gu, mut gv) = ([zero(); G], [zero(); G]);
                // SAFETY: every offset below is at most n · rp + b0 + (G − 1) · LANES, with LANES values after it
                // (checked by the caller).
                unsafe {
                    for k in 1..m + 1 {
                        for g in 0..G {
                            let b = b0 + g * LANES;
                            let (g_r, g_i) = (load(pr.add(k * rp + b)), load(pi.add(k * rp + b)));
                            let o = (m - k) * rp + b;
                            let (r, s) = (load(pu.add(o)), load(pv.add(o)));
                            gu[g] = fnma(fma(gu[g], g_r, r), g_i, s);
                            gv[g] = fma(fma(gv[g], g_r, s), g_i, r);
                        }
                    }
                    for k in 1..n - m + 1 {
                        for g in 0..G {
                            let b = b0 + g * LANES;
                            let (g_r, g_i) = (load(pr.add(k * rp + b)), load(pi.add(k * rp + b)));
                            let o = (m + k) * rp + b;
                            let (p, q) = (load(pu.add(o)), load(pv.add(o)));
                            gu[g] = fma(fma(gu[g], g_r, p), g_i, q);
                            gv[g] = fnma(fma(gv[g], g_r, q), g_i, p);
                        }
                    }
                }
                (gu, gv)
            }

            /// Writes coefficient `m`'s gradient of the `G` groups of rows from `b0` into `du`, `dv`.
            $(#[$attribute])*
            #[inline]
            fn store_coefficient<const G: usize>(
                gu: &[L; G],
                gv: &[L; G],
                m: usize,
                du: &mut [f32],
                dv: &mut [f32],
                rp: usize,
                b0: usize,
            ) {
                for g in 0..G {
                    du[m * rp + b0 + g * LANES..][..LANES].copy_from_slice(&to_array(gu[g]));
                    dv[m * rp + b0 + g * LANES..][..LANES].copy_from_slice(&to_array(gv[g]));
                }
            }
        };
    }

    mod portable {
        use super::LANES;

        type L = [f32; LANES];

        #[inline(always)]
        fn zero() -> L {
            [0.0; LANES]
        }
        /// # Safety
        /// `LANES` values are readable from `p`.
        #[inline(always)]
        unsafe fn load(p: *const f32) -> L {
            // SAFETY: forwarded.
            unsafe { std::ptr::read_unaligned(p as *const L) }
        }
        #[inline(always)]
        fn to_array(x: L) -> L {
            x
        }
        #[inline(always)]
        fn splat(x: f32) -> L {
            [x; LANES]
        }
        #[inline(always)]
        fn mul(a: L, b: L) -> L {
            std::array::from_fn(|l| a[l] * b[l])
        }
        /// `c + a·b`, rounded once.
        #[inline(always)]
        fn fma(c: L, a: L, b: L) -> L {
            std::array::from_fn(|l| a[l].mul_add(b[l], c[l]))
        }
        /// `c − a·b`, rounded once.
        #[inline(always)]
        fn fnma(c: L, a: L, b: L) -> L {
            std::array::from_fn(|l| (-a[l]).mul_add(b[l], c[l]))
        }

        kernels!();
    }

    #[cfg(target_arch = "x86_64")]
    mod avx2 {
        use std::arch::x86_64::*;

        use super::LANES;

        type L = __m256;

        #[target_feature(enable = "avx2,fma")]
        #[inline]
        fn zero() -> L {
            _mm256_setzero_ps()
        }
        /// # Safety
        /// `LANES` values are readable from `p`.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn load(p: *const f32) -> L {
            // SAFETY: forwarded.
            unsafe { _mm256_loadu_ps(p) }
        }
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        fn to_array(x: L) -> [f32; LANES] {
            let mut out = [0.0; LANES];
            // SAFETY: `out` holds LANES values.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), x) };
            out
        }
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        fn splat(x: f32) -> L {
            _mm256_set1_ps(x)
        }
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        fn mul(a: L, b: L) -> L {
            _mm256_mul_ps(a, b)
        }
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        fn fma(c: L, a: L, b: L) -> L {
            _mm256_fmadd_ps(a, b, c)
        }
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        fn fnma(c: L, a: L, b: L) -> L {
            _mm256_fnmadd_ps(a, b, c)
        }

        kernels!(#[target_feature(enable = "avx2,fma")]);
    }

    /// The kernels on 16-lane AVX-512 registers, two groups of 16 rows at a time (the 32 rows the other builds
    /// advance together), each row's operations as in the other builds.
    #[cfg(target_arch = "x86_64")]
    mod avx512 {
        use std::arch::x86_64::*;

        const LANES: usize = 16;

        type L = __m512;

        #[target_feature(enable = "avx512f")]
        #[inline]
        fn zero() -> L {
            _mm512_setzero_ps()
        }
        /// # Safety
        /// `LANES` values are readable from `p`.
        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn load(p: *const f32) -> L {
            // SAFETY: forwarded.
            unsafe { _mm512_loadu_ps(p) }
        }
        #[target_feature(enable = "avx512f")]
        #[inline]
        fn to_array(x: L) -> [f32; LANES] {
            let mut out = [0.0; LANES];
            // SAFETY: `out` holds LANES values.
            unsafe { _mm512_storeu_ps(out.as_mut_ptr(), x) };
            out
        }
        #[target_feature(enable = "avx512f")]
        #[inline]
        fn splat(x: f32) -> L {
            _mm512_set1_ps(x)
        }
        #[target_feature(enable = "avx512f")]
        #[inline]
        fn mul(a: L, b: L) -> L {
            _mm512_mul_ps(a, b)
        }
        #[target_feature(enable = "avx512f")]
        #[inline]
        fn fma(c: L, a: L, b: L) -> L {
            _mm512_fmadd_ps(a, b, c)
        }
        #[target_feature(enable = "avx512f")]
        #[inline]
        fn fnma(c: L, a: L, b: L) -> L {
            _mm512_fnmadd_ps(a, b, c)
        }

        kernels!(#[target_feature(enable = "avx512f")]);
    }

    /// Which kernels run: 0 portable, 1 AVX2, 2 AVX-512.
    fn kind() -> u8 {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return 2;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return 1;
            }
        }
        0
    }

    /// Whether the AVX2 kernels run.
    #[cfg(test)]
    fn vector() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// `c_k` for `k = 1..=n` of every row (times `grad_scale · k²` when given) into `re`, `im`, and each row's
    /// `Σ_k k² |c_k|²` (returned, `rp` values): lag-major `u`, `v` (`a = u + iv`), `re`, `im`, each `(n + 1) · rp`
    /// values with `rp` a multiple of [`LANES`] · [`GROUPS`].
    pub(super) fn lag_sums(
        u: &[f32],
        v: &[f32],
        re: &mut [f32],
        im: &mut [f32],
        n: usize,
        rp: usize,
        grad_scale: Option<f32>,
    ) -> Vec<f32> {
        let size = (n + 1) * rp;
        assert!(rp.is_multiple_of(LANES * GROUPS));
        assert!(u.len() >= size && v.len() >= size && re.len() >= size && im.len() >= size);
        let mut totals = vec![0.0; rp];
        #[cfg(target_arch = "x86_64")]
        match kind() {
            // SAFETY: the CPU has AVX-512F; the sizes are checked above (two groups of 16 rows: 32 | rp).
            2 => {
                unsafe { avx512::lag_sums_blocked::<2, 4>(u, v, re, im, n, rp, grad_scale, &mut totals) };
                return totals;
            }
            1 => {
                // SAFETY: the CPU has AVX2 and FMA; the sizes are checked above.
                unsafe { avx2::lag_sums::<GROUPS>(u, v, re, im, n, rp, grad_scale, &mut totals) };
                return totals;
            }
            _ => {}
        }
        // SAFETY: the sizes are checked above.
        unsafe { portable::lag_sums::<GROUPS>(u, v, re, im, n, rp, grad_scale, &mut totals) };
        totals
    }

    /// The gradient of `Σ_k (gr_k Re c_k + gi_k Im c_k)` with respect to every row's coefficients into `du`, `dv`;
    /// all lag-major as in [`lag_sums`].
    #[allow(clippy::too_many_arguments)]
    pub(super) fn lag_grads(
        u: &[f32],
        v: &[f32],
        gr: &[f32],
        gi: &[f32],
        n: usize,
        rp: usize,
        du: &mut [f32],
        dv: &mut [f32],
    ) {
        let size = (n + 1) * rp;
        assert!(rp.is_multiple_of(LANES * GROUPS) && du.len() >= size && dv.len() >= size);
        assert!(u.len() >= size && v.len() >= size && gr.len() >= size && gi.len() >= size);
        #[cfg(target_arch = "x86_64")]
        match kind() {
            // SAFETY (all three): the CPU has AVX-512F, or AVX2 and FMA; the sizes are checked above.
            2 => return unsafe { avx512::lag_grads_blocked::<2, 4>(u, v, gr, gi, n, rp, du, dv) },
            1 => return unsafe { avx2::lag_grads::<GROUPS>(u, v, gr, gi, n, rp, du, dv) },
            _ => {}
        }
        // SAFETY: the sizes are checked above.
        unsafe { portable::lag_grads::<GROUPS>(u, v, gr, gi, n, rp, du, dv) }
    }

    #[cfg(all(test, target_arch = "x86_64"))]
    mod tests {
        use super::*;

        /// The AVX2 kernels and the portable ones give the same bits.
        #[test]
        fn vector_and_portable_kernels_agree() {
            if !vector() {
                return;
            }
            let (n, rp) = (5, 2 * LANES * GROUPS);
            let size = (n + 1) * rp;
            let val = |i: usize, salt: usize| ((i * 7919 + salt * 104_729) % 2003) as f32 / 1001.0 - 1.0;
            let (u, v): (Vec<f32>, Vec<f32>) =
                ((0..size).map(|i| val(i, 1)).collect(), (0..size).map(|i| val(i, 2)).collect());
            let (mut re, mut im, mut re2, mut im2) =
                (vec![0.0; size], vec![0.0; size], vec![0.0; size], vec![0.0; size]);
            let (mut du, mut dv, mut du2, mut dv2) =
                (vec![0.0; size], vec![0.0; size], vec![0.0; size], vec![0.0; size]);
            // SAFETY: the CPU has AVX2 and FMA (checked above); every slice has the sizes the kernels read.
            unsafe {
                let (mut t, mut t2) = (vec![0.0; rp], vec![0.0; rp]);
                avx2::lag_sums::<GROUPS>(&u, &v, &mut re, &mut im, n, rp, Some(0.3), &mut t);
                portable::lag_sums::<GROUPS>(&u, &v, &mut re2, &mut im2, n, rp, Some(0.3), &mut t2);
                assert_eq!(
                    t.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    t2.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                );
                avx2::lag_grads::<GROUPS>(&u, &v, &re, &im, n, rp, &mut du, &mut dv);
                portable::lag_grads::<GROUPS>(&u, &v, &re2, &im2, n, rp, &mut du2, &mut dv2);
            }
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&re), bits(&re2));
            assert_eq!(bits(&im), bits(&im2));
            assert_eq!(bits(&du), bits(&du2));
            assert_eq!(bits(&dv), bits(&dv2));
            assert!(re.iter().any(|&x| x != 0.0) && du.iter().any(|&x| x != 0.0));
            if std::arch::is_x86_feature_detected!("avx512f") {
                let (mut re3, mut im3, mut du3, mut dv3) =
                    (vec![0.0; size], vec![0.0; size], vec![0.0; size], vec![0.0; size]);
                let mut t3 = vec![0.0; rp];
                // SAFETY: the CPU has AVX-512F (checked just above); the slices as above.
                unsafe {
                    avx512::lag_sums::<4>(&u, &v, &mut re3, &mut im3, n, rp, Some(0.3), &mut t3);
                    avx512::lag_grads::<2>(&u, &v, &re3, &im3, n, rp, &mut du3, &mut dv3);
                }
                assert_eq!(bits(&re3), bits(&re2));
                assert_eq!(bits(&im3), bits(&im2));
                assert_eq!(bits(&du3), bits(&du2));
                assert_eq!(bits(&dv3), bits(&dv2));
            }
        }

        /// Both kernels over `(re, im, du, dv, totals)`.
        type Kernels<'a> = dyn Fn(&mut [f32], &mut [f32], &mut [f32], &mut [f32], &mut [f32]) + 'a;

        /// The kernels that take several lags (several coefficients) per pass give the bits of those that take
        /// one, for numbers of lags that leave none, some or all of them over, in every build.
        #[test]
        fn blocked_kernels_give_the_bits_of_single_ones() {
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            for n in [1, 3, 4, 5, 16] {
                let rp = 2 * LANES * GROUPS;
                let size = (n + 1) * rp;
                let val = |i: usize, salt: usize| ((i * 7919 + salt * 104_729) % 2003) as f32 / 1001.0 - 1.0;
                let (u, v): (Vec<f32>, Vec<f32>) =
                    ((0..size).map(|i| val(i, 1)).collect(), (0..size).map(|i| val(i, 2)).collect());
                let run = |f: &Kernels<'_>| {
                    let (mut re, mut im, mut du, mut dv, mut t) =
                        (vec![0.0; size], vec![0.0; size], vec![0.0; size], vec![0.0; size], vec![0.0; rp]);
                    f(&mut re, &mut im, &mut du, &mut dv, &mut t);
                    [bits(&re), bits(&im), bits(&du), bits(&dv), bits(&t)]
                };
                // SAFETY (all): every slice has the sizes the kernels read; the vector kernels run only where the
                // CPU has their features.
                let single = run(&|re, im, du, dv, t| unsafe {
                    portable::lag_sums::<GROUPS>(&u, &v, re, im, n, rp, Some(0.3), t);
                    portable::lag_grads::<GROUPS>(&u, &v, re, im, n, rp, du, dv);
                });
                assert!(single[2].iter().any(|&b| b != 0), "n = {n}: no gradient");
                for blocked in [
                    run(&|re, im, du, dv, t| unsafe {
                        portable::lag_sums_blocked::<1, 4>(&u, &v, re, im, n, rp, Some(0.3), t);
                        portable::lag_grads_blocked::<1, 4>(&u, &v, re, im, n, rp, du, dv);
                    }),
                    run(&|re, im, du, dv, t| unsafe {
                        portable::lag_sums_blocked::<2, 3>(&u, &v, re, im, n, rp, Some(0.3), t);
                        portable::lag_grads_blocked::<2, 2>(&u, &v, re, im, n, rp, du, dv);
                    }),
                ] {
                    assert!(blocked == single, "n = {n}: the portable blocked kernels differ");
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    let wide = run(&|re, im, du, dv, t| unsafe {
                        avx512::lag_sums_blocked::<2, 4>(&u, &v, re, im, n, rp, Some(0.3), t);
                        avx512::lag_grads_blocked::<2, 4>(&u, &v, re, im, n, rp, du, dv);
                    });
                    assert!(wide == single, "n = {n}: the AVX-512 blocked kernels differ");
                }
            }
        }
    }
}

/// Rows processed together by [`Autocorrelation::sum`]: the lag-major buffers of a block (six of `(N + 1) · 64` f32)
/// stay in the first-level cache for the frequencies of the toy and of the DT, where a whole batch of 4096 rows
/// would stream megabytes through the cache once per lag.
const ROW_BLOCK: usize = 64;

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
                for (ev, &centre) in er.iter_mut().zip(&self.centres) {
                    let diff = centre - mu_b[c];
                    *ev = diff * diff * nhp[c];
                }
                dense::exp_in_place(er);
                for (&ev, qv) in er.iter().zip(q.iter_mut()) {
                    *qv += ev * scale[c];
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A weight whose gradient stops: its moments reach 0 instead of staying subnormal, and its value follows
    /// Adam's formula without the flush bit for bit.
    #[test]
    fn moments_of_a_silent_weight_reach_zero_and_the_weight_is_unchanged() {
        let mut optim = Adam::new(1e-8);
        let mut p = HostParam::new("w", vec![3], vec![0.5, -0.25, 1.0]);
        let (mut value, mut m1, mut m2) = (p.value.clone(), [0.0f32; 3], [0.0f32; 3]);
        let mut subnormal_without_flush = false;
        for t in 1..=3000 {
            let g: [f32; 3] = if t <= 5 { [1e-3, -2e-2, 3e-4] } else { [0.0; 3] };
            p.grad.copy_from_slice(&g);
            optim.step(1e-3, [&mut p]);
            let c2 = (1.0 - 0.999f32.powi(t)).sqrt();
            let factor = c2 / (1.0 - 0.9f32.powi(t));
            for i in 0..3 {
                let (f1, f2) = (1.0 - 0.9f32, 1.0 - 0.999f32);
                m1[i] = if t == 1 { g[i] * f1 } else { m1[i] * 0.9 + g[i] * f1 };
                m2[i] = if t == 1 { g[i] * g[i] * f2 } else { m2[i] * 0.999 + g[i] * g[i] * f2 };
                value[i] -= m1[i] * factor / (m2[i].sqrt() + 1e-8 * c2) * 1e-3f32;
                subnormal_without_flush |= m1[i].is_subnormal();
            }
            assert!(p.moment_1.iter().chain(&p.moment_2).all(|m| !m.is_subnormal()), "step {t}");
        }
        assert!(subnormal_without_flush, "the unflushed moments never became subnormal: the test checks nothing");
        assert_eq!(p.moment_1, [0.0; 3]);
        assert_eq!(p.value, value);
    }
}
