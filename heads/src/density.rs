//! The continuous Fourier density on `[-1, 1]` (FOURIER_HEAD.md §2): density, CDF, inverse-CDF sampling and
//! the MLE loss.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use crate::error::HeadError;
use crate::fourier::{
    FourierHeadConfig, autocorrelation, cdf_from_autocorrelation, density_from_autocorrelation, fold_halves,
    quadrature_points, regularizer_basis, regularizer_from_values,
};
use crate::head::to_host;
use crate::init;

/// Configuration of the continuous Fourier density (same fields as the discrete head; `eps` is unused).
pub type FourierDensityConfig = FourierHeadConfig;

/// Bisection steps of inverse-CDF sampling.
const BISECTION_STEPS: usize = 25;
/// Stop bisecting when the CDF is this close to the target.
const BISECTION_TOL: f64 = 1e-6;

impl FourierHeadConfig {
    /// Builds a continuous Fourier density conditioned on `d_in` features.
    pub fn init_density(
        &self,
        d_in: usize,
        rng: &mut dyn RngCore,
        device: &Device,
    ) -> Result<FourierDensity, HeadError> {
        self.validate()?;
        crate::error::check_sizes(d_in, 2)?;
        let n = self.frequencies;
        let linear =
            init::linear(d_in, 2 * (n + 1), self.init_weight_div as f32, self.init_bias_div as f32, rng, device);
        let freqs: Vec<f32> = (0..=n).map(|j| (std::f64::consts::PI * j as f64) as f32).collect();
        Ok(FourierDensity {
            linear,
            reg_basis: regularizer_basis(n, device),
            fold_reg: fold_halves(quadrature_points(n), device),
            freqs: init::constant(freqs, [1, n + 1], device),
            frequencies: n,
            gamma: self.gamma,
        })
    }
}

/// Serialisable settings of a [`FourierDensity`] for reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DensityInfo {
    /// Number of frequencies `N`.
    pub frequencies: usize,
    /// Regulariser weight.
    pub gamma: f64,
}

/// A conditional density `p(y | x)` on `[-1, 1]` given by a nonnegative Fourier series.
#[derive(Module, Debug)]
pub struct FourierDensity {
    /// `A: R^d -> R^(2(N+1))`: real parts first, then imaginary parts.
    pub linear: Linear,
    /// `[2(N+1), 4P]` values and slopes at the regulariser's quadrature points.
    reg_basis: Tensor<2>,
    /// `[2P, P]` sums `R R'` and `I I'`.
    fold_reg: Tensor<2>,
    /// `[1, N+1]` of `π j`.
    freqs: Tensor<2>,
    frequencies: usize,
    gamma: f64,
}

impl FourierDensity {
    /// Number of frequencies and regulariser weight.
    pub fn info(&self) -> DensityInfo {
        DensityInfo { frequencies: self.frequencies, gamma: self.gamma }
    }

    /// Density `p(y_b | x_b)` for features `[batch, d]` and points `y` `[batch]` in `[-1, 1]`.
    pub fn density(&self, features: Tensor<2>, y: Tensor<1>) -> Tensor<1> {
        let z = self.linear.forward(features);
        self.density_from_coefficients(z, y)
    }

    fn density_from_coefficients(&self, z: Tensor<2>, y: Tensor<1>) -> Tensor<1> {
        let s = self.frequencies + 1;
        let u = z.clone().narrow(1, 0, s);
        let v = z.narrow(1, s, s);
        let phase = y.unsqueeze_dim::<2>(1) * self.freqs.clone(); // [B, N+1]
        let (c, sn) = (phase.clone().cos(), phase.sin());
        let r = (u.clone() * c.clone() - v.clone() * sn.clone()).sum_dim(1);
        let i = (u.clone() * sn + v.clone() * c).sum_dim(1);
        let norm = (u.clone() * u + v.clone() * v).sum_dim(1).mul_scalar(2.0);
        ((r.clone() * r + i.clone() * i) / norm).squeeze_dim::<1>(1)
    }

    /// MLE loss `mean(−log(p(y) + 1e-10)) + gamma · L_reg`, `[1]`.
    pub fn loss(&self, features: Tensor<2>, y: Tensor<1>) -> Tensor<1> {
        let z = self.linear.forward(features);
        let nll = self.density_from_coefficients(z.clone(), y).add_scalar(1e-10).log().mean().neg();
        if self.gamma > 0.0 {
            let reg = regularizer_from_values(z.matmul(self.reg_basis.clone()), self.frequencies, &self.fold_reg);
            nll + reg.mul_scalar(self.gamma)
        } else {
            nll
        }
    }

    /// Autocorrelation coefficients `c_k` per row, on the host.
    pub fn autocorrelations(&self, features: Tensor<2>) -> Vec<Vec<(f64, f64)>> {
        let z = self.linear.forward(features);
        let [_, width] = z.dims();
        let z = to_host(z);
        z.chunks(width).map(|row| autocorrelation(row, self.frequencies)).collect()
    }

    /// Density per row at points `x` (one per row), on the host by the autocorrelation form.
    pub fn density_reference(&self, features: Tensor<2>, x: &[f64]) -> Vec<f64> {
        self.autocorrelations(features).iter().zip(x).map(|(c, &x)| density_from_autocorrelation(c, x)).collect()
    }

    /// CDF `F(x_b | x_b)` per row at points `x` (one per row).
    pub fn cdf(&self, features: Tensor<2>, x: &[f64]) -> Vec<f64> {
        self.autocorrelations(features).iter().zip(x).map(|(c, &x)| cdf_from_autocorrelation(c, x)).collect()
    }

    /// One sample per row by inverse-CDF bisection on `[-1, 1]`.
    pub fn sample(&self, features: Tensor<2>, rng: &mut dyn RngCore) -> Vec<f64> {
        self.autocorrelations(features).iter().map(|c| inverse_cdf(c, rng.random::<f64>())).collect()
    }

    /// `[batch]` tensor of points from a slice, on this density's device.
    pub fn points(&self, y: &[f32]) -> Tensor<1> {
        let device = self.linear.weight.val().device();
        Tensor::<1>::from_data(TensorData::new(y.to_vec(), [y.len()]), &device)
    }
}

/// The `x` in `[-1, 1]` with `F(x) = u`, by bisection.
pub fn inverse_cdf(c: &[(f64, f64)], u: f64) -> f64 {
    let (mut lo, mut hi) = (-1.0, 1.0);
    for _ in 0..BISECTION_STEPS {
        let mid = 0.5 * (lo + hi);
        let f = cdf_from_autocorrelation(c, mid);
        if (f - u).abs() < BISECTION_TOL {
            return mid;
        }
        if f < u {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}
