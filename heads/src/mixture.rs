//! The Gaussian-mixture (GMM) head: `K` Gaussians with input-dependent means evaluated at the bin centres.

use std::f64::consts::PI;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::{log_softmax, softmax, softplus};
use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::HeadError;
use crate::head::{Head, HeadLoss, HeadOutput, attached, bin_centres, nll, soft_nll};
use crate::init;

fn default_components() -> usize {
    1
}
fn default_eps() -> f64 {
    1e-5
}

/// Configuration of the mixture head.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MixtureHeadConfig {
    /// Number of Gaussian components `K`.
    #[serde(default = "default_components")]
    pub components: usize,
    /// Learn input-dependent weights `softmax(Linear(d, K) x)` instead of uniform `1/K`.
    #[serde(default)]
    pub learned_weights: bool,
    /// The epsilon of `log(g + eps)`.
    #[serde(default = "default_eps")]
    pub eps: f64,
}

impl Default for MixtureHeadConfig {
    fn default() -> Self {
        Self { components: default_components(), learned_weights: false, eps: default_eps() }
    }
}

impl MixtureHeadConfig {
    /// A config with `components` uniform-weight components.
    pub fn new(components: usize) -> Self {
        Self { components, ..Self::default() }
    }

    /// Checks every field, naming the first one out of range.
    pub fn validate(&self) -> Result<(), HeadError> {
        if self.components == 0 {
            return Err(HeadError::invalid("components", self.components, "must be at least 1"));
        }
        crate::error::check_non_negative("eps", self.eps)
    }

    /// Builds a mixture head from `d_in` features to `bins` bins.
    pub fn init(
        &self,
        d_in: usize,
        bins: usize,
        rng: &mut dyn RngCore,
        device: &Device,
    ) -> Result<MixtureHead, HeadError> {
        self.validate()?;
        crate::error::check_sizes(d_in, bins)?;
        let k = self.components;
        let means = init::linear(d_in, k, 1.0, 1.0, rng, device);
        let weights = self.learned_weights.then(|| init::linear(d_in, k, 1.0, 1.0, rng, device));
        // softplus(rho) = 2/m, one bin width
        let sigma0 = 2.0 / bins as f64;
        let rho0 = sigma0.exp_m1().ln() as f32;
        let rho = Param::from_tensor(init::constant(vec![rho0; k], [k], device));
        let centres = init::constant(bin_centres(bins), [1, bins, 1], device);
        Ok(MixtureHead { means, weights, rho, centres, components: k, bins, eps: self.eps })
    }
}

/// The GMM head of FOURIER_HEAD.md §3: `g_i = Σ_k w_k N(b_i; μ_k, σ_k)`, logits `log(g_i + eps)`.
#[derive(Module, Debug)]
pub struct MixtureHead {
    /// `μ = tanh(means(x))`, `[batch, K]`.
    pub means: Linear,
    /// Optional learned weights `softmax(weights(x))`; uniform `1/K` when absent.
    pub weights: Option<Linear>,
    /// `σ = softplus(ρ)`, one per component, not input dependent.
    pub rho: Param<Tensor<1>>,
    centres: Tensor<3>,
    components: usize,
    bins: usize,
    eps: f64,
}

impl MixtureHead {
    /// Number of components `K`.
    pub fn components(&self) -> usize {
        self.components
    }

    /// Component means `[batch, K]`, standard deviations `[K]` and weights `[batch, K]`.
    pub fn parameters(&self, features: Tensor<2>) -> (Tensor<2>, Tensor<1>, Tensor<2>) {
        let mu = self.means.forward(features.clone()).tanh();
        let sigma = softplus(self.rho.val(), 1.0);
        let w = match &self.weights {
            Some(lin) => softmax(lin.forward(features), 1),
            None => mu.ones_like().div_scalar(self.components as f64),
        };
        (mu, sigma, w)
    }

    /// The density's factors: means `[batch, K, 1]`, `−1/(2σ²)` `[1, K, 1]` and weight / (σ √(2π)) `[batch, K, 1]`
    /// (`[1, K, 1]` with uniform weights).
    fn factors(&self, features: Tensor<2>) -> (Tensor<3>, Tensor<3>, Tensor<3>) {
        let k = self.components;
        let [b, _] = features.dims();
        let mu = self.means.forward(features.clone()).tanh().reshape([b, k, 1]);
        let sigma = softplus(self.rho.val(), 1.0);
        let neg_half_precision = sigma.clone().powi_scalar(2).recip().mul_scalar(-0.5).reshape([1, k, 1]);
        let norm = sigma.recip().mul_scalar(1.0 / (2.0 * PI).sqrt()).reshape([1, k, 1]);
        let scale = match &self.weights {
            Some(lin) => softmax(lin.forward(features), 1).reshape([b, k, 1]) * norm,
            None => norm.mul_scalar(1.0 / k as f64),
        };
        (mu, neg_half_precision, scale)
    }

    /// Mixture density at the bin centres, `[batch, m]` (not renormalised).
    pub fn density_at_centres(&self, features: Tensor<2>) -> Tensor<2> {
        // N(c; μ, σ) = exp(-(c - μ)² / (2σ²)) / (σ √(2π)). Every per-component factor is folded into a `[1, K, 1]` or
        // `[B, K, 1]` tensor first, so the `[B, K, m]` work is one subtraction, one square, one product, one exp,
        // one product and the sum over components (laid out with the bins last, so every broadcast runs along
        // contiguous rows).
        let [b, _] = features.dims();
        let (mu, neg_half_precision, scale) = self.factors(features);
        let centres = self.centres.clone().reshape([1, 1, self.bins]);
        let exponent = (centres - mu).powi_scalar(2) * neg_half_precision; // [B, K, m]
        (exponent.exp() * scale).sum_dim(1).reshape([b, self.bins])
    }

    /// Mean cross-entropy with its gradient attached in one step: `value` maps the (untracked) logits to the loss,
    /// `grad` maps `q = density + eps` to `∂loss/∂q`. The density is computed untracked with the operations of
    /// [`MixtureHead::density_at_centres`] (so the value is the graph's to the bit), and the gradients of the
    /// factors follow in closed form from the terms `T = scale · exp(−(c − μ)²/(2σ²))`:
    /// `∂/∂scale = Σ_i G E`, `∂/∂μ = (1/σ²) Σ_i G T (c − μ)`, `∂/∂(−1/(2σ²)) = Σ_{b,i} G T (c − μ)²` with
    /// `G = ∂loss/∂q`. Autodiff's graph through the `[B, K, m]` operations takes twice the passes over that tensor.
    fn fused_cross_entropy(
        &self,
        features: Tensor<2>,
        value: impl FnOnce(Tensor<2>) -> Tensor<1>,
        grad: impl FnOnce(Tensor<2>) -> Tensor<2>,
    ) -> Tensor<1> {
        let (k, m) = (self.components, self.bins);
        let [b, _] = features.dims();
        let (mu, neg_half_precision, scale) = self.factors(features);
        let (mu_v, nhp_v, scale_v) = (mu.clone().detach(), neg_half_precision.clone().detach(), scale.clone().detach());
        let centres = self.centres.clone().reshape([1, 1, m]);
        let diff = centres - mu_v; // [B, K, m]
        let sq = diff.clone().powi_scalar(2);
        let e = (sq.clone() * nhp_v.clone()).exp();
        let q = (e.clone() * scale_v.clone()).sum_dim(1).reshape([b, m]).add_scalar(self.eps);
        let value = value(q.clone().log());
        let g = grad(q).reshape([b, 1, m]);
        let ge = g * e; // [B, K, m]
        let d_scale = ge.clone().sum_dim(2); // [B, K, 1]
        let gt = ge * scale_v;
        let d_mu = (gt.clone() * diff).sum_dim(2) * nhp_v.mul_scalar(-2.0);
        let d_nhp = (gt * sq).sum_dim(2).sum_dim(0); // [1, K, 1]
        let d_scale = if scale.dims()[0] == 1 && b != 1 { d_scale.sum_dim(0) } else { d_scale };
        debug_assert_eq!(d_nhp.dims(), [1, k, 1]);
        value.detach() + attached(mu, d_mu) + attached(neg_half_precision, d_nhp) + attached(scale, d_scale)
    }
}

impl Head for MixtureHead {
    fn input_dim(&self) -> usize {
        self.means.weight.dims()[0]
    }

    fn bins(&self) -> usize {
        self.bins
    }

    fn forward(&self, features: Tensor<2>) -> HeadOutput {
        let logits = self.density_at_centres(features).add_scalar(self.eps).log();
        HeadOutput { logits, regularizer: None }
    }

    fn loss(&self, features: Tensor<2>, targets: Tensor<1, Int>) -> HeadLoss {
        let [b, _] = features.dims();
        let idx = targets.clone().unsqueeze_dim::<2>(1);
        let ce = self.fused_cross_entropy(
            features,
            |logits| nll(log_softmax(logits, 1), targets),
            // ∂/∂q_i of −log(q_y / Σ q) is 1/Σq − [i = y]/q_y, over the batch's mean.
            |q| {
                let minus_inv_qy = q.clone().gather(1, idx.clone()).recip().neg();
                let inv_sum = q.clone().sum_dim(1).recip();
                (q.zeros_like() + inv_sum).scatter(1, idx, minus_inv_qy, IndexingUpdateOp::Add).div_scalar(b as f64)
            },
        );
        HeadLoss::new(ce, None)
    }

    fn loss_soft(&self, features: Tensor<2>, targets: Tensor<2>) -> HeadLoss {
        let [b, _] = features.dims();
        let targets = targets.detach();
        let t = targets.clone();
        let ce = self.fused_cross_entropy(
            features,
            |logits| soft_nll(log_softmax(logits, 1), t),
            // ∂/∂q_i of −Σ_j t_j log(q_j / Σ q) is (Σ_j t_j)/Σq − t_i/q_i, over the batch's mean.
            |q| {
                let mass_over_sum = targets.clone().sum_dim(1) / q.clone().sum_dim(1);
                (mass_over_sum - targets / q).div_scalar(b as f64)
            },
        );
        HeadLoss::new(ce, None)
    }
}
