//! The Gaussian-mixture (GMM) head: `K` Gaussians with input-dependent means evaluated at the bin centres.

use std::f64::consts::PI;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::{softmax, softplus};
use burn::tensor::{Device, Tensor};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::HeadError;
use crate::head::{Head, HeadOutput, bin_centres};
use crate::init;

fn default_components() -> usize {
    1
}
fn default_eps() -> f64 {
    1e-5
}

/// Configuration of the mixture head.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
        crate::config::check_non_negative("eps", self.eps)
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
        crate::config::check_sizes(d_in, bins)?;
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

    /// Mixture density at the bin centres, `[batch, m]` (not renormalised).
    pub fn density_at_centres(&self, features: Tensor<2>) -> Tensor<2> {
        let (k, m) = (self.components, self.bins);
        let [b, _] = features.dims();
        // N(c; μ, σ) = exp(-(c - μ)² / (2σ²)) / (σ √(2π)). Every per-component factor is folded into a `[1, K, 1]` or
        // `[B, K, 1]` tensor first, so the `[B, K, m]` work is one subtraction, one square, one product, one exp,
        // one product and the sum over components (laid out with the bins last, so every broadcast runs along
        // contiguous rows).
        let mu = self.means.forward(features.clone()).tanh().reshape([b, k, 1]);
        let sigma = softplus(self.rho.val(), 1.0);
        let neg_half_precision = sigma.clone().powi_scalar(2).recip().mul_scalar(-0.5).reshape([1, k, 1]);
        let norm = sigma.recip().mul_scalar(1.0 / (2.0 * PI).sqrt()).reshape([1, k, 1]);
        let scale = match &self.weights {
            Some(lin) => softmax(lin.forward(features), 1).reshape([b, k, 1]) * norm,
            None => norm.mul_scalar(1.0 / k as f64),
        };
        let centres = self.centres.clone().reshape([1, 1, m]);
        let exponent = (centres - mu).powi_scalar(2) * neg_half_precision; // [B, K, m]
        (exponent.exp() * scale).sum_dim(1).reshape([b, m])
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
}
