//! The [`Head`] trait shared by every output head.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Int, Tensor};
use rand::{Rng, RngCore};

/// Bin centres `b_i = -1 + (2i + 1) / m` of `m` uniform bins on `[-1, 1]`.
pub fn bin_centres(m: usize) -> Vec<f32> {
    (0..m).map(|i| (-1.0 + (2 * i + 1) as f64 / m as f64) as f32).collect()
}

/// Copies a float tensor's values to the host as f32.
pub fn to_host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec_as::<f32>().expect("float tensor data converts to f32")
}

/// What a head's forward pass produces.
#[derive(Debug, Clone)]
pub struct HeadOutput {
    /// Logits over the bins, `[batch, m]`: softmax of these is the predicted PMF.
    pub logits: Tensor<2>,
    /// The head's own regulariser (a scalar, `[1]`), already scaled by its weight; `None` when it has none.
    pub regularizer: Option<Tensor<1>>,
}

/// The training loss of a head (against bin indices or target distributions).
#[derive(Debug, Clone)]
pub struct HeadLoss {
    /// Cross-entropy plus the regulariser, `[1]`: what the optimiser minimises.
    pub total: Tensor<1>,
    /// Mean cross-entropy, `[1]`.
    pub cross_entropy: Tensor<1>,
    /// The regulariser, `[1]`, when the head has one.
    pub regularizer: Option<Tensor<1>>,
}

impl HeadLoss {
    /// The loss of a cross-entropy and an optional regulariser: `total` is their sum.
    pub fn new(cross_entropy: Tensor<1>, regularizer: Option<Tensor<1>>) -> Self {
        let total = match &regularizer {
            Some(reg) => cross_entropy.clone() + reg.clone(),
            None => cross_entropy.clone(),
        };
        HeadLoss { total, cross_entropy, regularizer }
    }
}

/// A head maps features `[batch, d]` to logits over `m` ordered bins.
///
/// Implementors provide [`Head::forward`] and the two sizes; the loss, PMF, sampling, mode and expected
/// value follow from the logits.
pub trait Head {
    /// Input feature size `d`.
    fn input_dim(&self) -> usize;

    /// Number of bins `m`.
    fn bins(&self) -> usize;

    /// Logits `[batch, m]` and the regulariser for features `[batch, d]`.
    fn forward(&self, features: Tensor<2>) -> HeadOutput;

    /// Logits `[batch, m]` for features `[batch, d]`.
    fn logits(&self, features: Tensor<2>) -> Tensor<2> {
        self.forward(features).logits
    }

    /// Normalised log-probabilities `[batch, m]` from this head's logits: `log_softmax` unless the head knows a
    /// cheaper exact form.
    fn log_pmf(&self, logits: Tensor<2>) -> Tensor<2> {
        log_softmax(logits, 1)
    }

    /// Mean cross-entropy against bin indices `[batch]` plus the head's regulariser.
    fn loss(&self, features: Tensor<2>, targets: Tensor<1, Int>) -> HeadLoss {
        let out = self.forward(features);
        HeadLoss::new(nll(self.log_pmf(out.logits), targets), out.regularizer)
    }

    /// Mean cross-entropy `−Σ_i t_i log q_i` against target distributions `[batch, m]` (rows summing to 1, e.g. a
    /// projected Bellman target) plus the head's regulariser.
    fn loss_soft(&self, features: Tensor<2>, targets: Tensor<2>) -> HeadLoss {
        let out = self.forward(features);
        HeadLoss::new(soft_nll(self.log_pmf(out.logits), targets), out.regularizer)
    }

    /// Predicted PMF `[batch, m]` (softmax of the logits).
    fn pmf(&self, features: Tensor<2>) -> Tensor<2> {
        softmax(self.logits(features), 1)
    }

    /// Most likely bin per row, `[batch]`.
    fn mode(&self, features: Tensor<2>) -> Tensor<1, Int> {
        self.logits(features).argmax(1).squeeze_dim::<1>(1)
    }

    /// Expected bin centre `Σ q_i b_i` on `[-1, 1]` per row, `[batch]`.
    fn expected_value(&self, features: Tensor<2>) -> Tensor<1> {
        let m = self.bins();
        let pmf = self.pmf(features);
        let centres = Tensor::<2>::from_data(burn::tensor::TensorData::new(bin_centres(m), [m, 1]), &pmf.device());
        pmf.matmul(centres).squeeze_dim::<1>(1)
    }

    /// One bin per row sampled from `softmax(logits / temperature)` with the caller's RNG.
    fn sample(&self, features: Tensor<2>, temperature: f32, rng: &mut dyn RngCore) -> Vec<usize> {
        sample_logits(self.logits(features), temperature, rng)
    }

    /// One bin per row sampled from `softmax(logits / temperature)` with the backend's RNG.
    fn sample_tensor(&self, features: Tensor<2>, temperature: f32) -> Tensor<1, Int> {
        tempered_pmf(self.logits(features), temperature).categorical(1).squeeze_dim::<1>(1)
    }
}

/// Mean cross-entropy of logits `[batch, m]` against bin indices `[batch]`.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    nll(log_softmax(logits, 1), targets)
}

/// Mean negative log-likelihood of log-probabilities `[batch, m]` at bin indices `[batch]`.
pub fn nll(log_pmf: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    log_pmf.gather(1, targets.unsqueeze_dim::<2>(1)).mean().neg()
}

/// Mean cross-entropy of log-probabilities `[batch, m]` against target distributions `[batch, m]`.
pub fn soft_nll(log_pmf: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    (log_pmf * targets).sum_dim(1).mean().neg()
}

/// One bin per row of `logits` `[batch, m]` sampled from `softmax(logits / temperature)` with the caller's RNG.
pub fn sample_logits(logits: Tensor<2>, temperature: f32, rng: &mut dyn RngCore) -> Vec<usize> {
    let m = logits.dims()[1];
    let probs = to_host(tempered_pmf(logits, temperature));
    probs.chunks(m).map(|row| sample_row(row, rng.random::<f32>())).collect()
}

/// Index of the largest value (the first one on ties).
pub fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| if x > bv { (i, x) } else { (bi, bv) }).0
}

fn tempered_pmf(logits: Tensor<2>, temperature: f32) -> Tensor<2> {
    let t = if temperature > 0.0 { temperature } else { 1.0 };
    softmax(logits.div_scalar(t), 1)
}

/// Inverse-CDF draw from one PMF row given a uniform `u` in `[0, 1)`.
fn sample_row(row: &[f32], u: f32) -> usize {
    let total: f32 = row.iter().sum();
    let target = u * total;
    let mut acc = 0.0;
    for (i, p) in row.iter().enumerate() {
        acc += p;
        if target < acc {
            return i;
        }
    }
    row.len().saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centres_are_symmetric_bin_midpoints() {
        let c = bin_centres(4);
        assert_eq!(c, vec![-0.75, -0.25, 0.25, 0.75]);
    }

    #[test]
    fn sample_row_follows_cumulative_mass() {
        let row = [0.1, 0.0, 0.6, 0.3];
        assert_eq!(sample_row(&row, 0.05), 0);
        assert_eq!(sample_row(&row, 0.1), 2);
        assert_eq!(sample_row(&row, 0.69), 2);
        assert_eq!(sample_row(&row, 0.71), 3);
        assert_eq!(sample_row(&row, 0.9999), 3);
    }
}
