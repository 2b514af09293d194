//! The [`Head`] trait shared by every output head.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{IndexingUpdateOp, Int, Tensor};
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
///
/// ```
/// use burn::tensor::{Device, Int, Tensor, TensorData};
/// use frl_heads::{FourierHeadConfig, Head, HeadConfig};
/// use rand::SeedableRng;
///
/// let device = Device::flex().autodiff();
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// // A Fourier head over 32 bins on 16 features, as a job file's `head = { fourier = { frequencies = 8 } }`.
/// let config = HeadConfig::Fourier(FourierHeadConfig { frequencies: 8, ..Default::default() });
/// let head = config.init(16, 32, &mut rng, &device).unwrap();
/// let features = Tensor::<2>::from_data(TensorData::new(vec![0.1f32; 4 * 16], [4, 16]), &device);
///
/// let pmf = head.pmf(features.clone()).into_data().to_vec::<f32>().unwrap();
/// for row in pmf.chunks(32) {
///     assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4 && row.iter().all(|&p| p >= 0.0));
/// }
/// // The training loss against bin indices: cross-entropy plus the head's regulariser.
/// let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![3i64, 10, 20, 31], [4]), &device);
/// let loss = head.loss(features, targets);
/// assert!(loss.total.into_data().to_vec::<f32>().unwrap()[0] > 0.0);
/// ```
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

    /// Mean cross-entropy of this head's `logits` `[batch, m]` against bin indices `[batch]`.
    fn cross_entropy(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        nll(self.log_pmf(logits), targets)
    }

    /// Mean cross-entropy `−Σ_i t_i log q_i` of this head's `logits` `[batch, m]` against target distributions
    /// `[batch, m]` (rows summing to 1).
    fn cross_entropy_soft(&self, logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
        soft_nll(self.log_pmf(logits), targets)
    }

    /// Mean cross-entropy against bin indices `[batch]` plus the head's regulariser.
    fn loss(&self, features: Tensor<2>, targets: Tensor<1, Int>) -> HeadLoss {
        let out = self.forward(features);
        HeadLoss::new(self.cross_entropy(out.logits, targets), out.regularizer)
    }

    /// Mean cross-entropy `−Σ_i t_i log q_i` against target distributions `[batch, m]` (rows summing to 1, e.g. a
    /// projected Bellman target) plus the head's regulariser.
    fn loss_soft(&self, features: Tensor<2>, targets: Tensor<2>) -> HeadLoss {
        let out = self.forward(features);
        HeadLoss::new(self.cross_entropy_soft(out.logits, targets), out.regularizer)
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

/// Mean cross-entropy of `softmax(logits)` (`[batch, m]`) against bin indices `[batch]`, equal to
/// [`cross_entropy`], with its gradient `(softmax − onehot) / batch` attached in one step instead of through
/// `log_softmax`'s graph.
pub fn softmax_cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [b, m] = logits.dims();
    let idx = targets.unsqueeze_dim::<2>(1);
    let (shifted, p, log_sum) = softmax_parts(logits.clone());
    let value = (log_sum - shifted.gather(1, idx.clone())).mean();
    let minus_one = Tensor::<2>::full([b, 1], -1.0, &p.device());
    let grad = p.scatter(1, idx, minus_one, IndexingUpdateOp::Add).div_scalar(b.max(1) as f64);
    debug_assert_eq!(grad.dims(), [b, m]);
    with_gradient(value, logits, grad)
}

/// Mean cross-entropy `−Σ_i t_i log softmax(logits)_i` against target distributions `[batch, m]` (rows summing to
/// 1), equal to [`soft_nll`] of `log_softmax`, with its gradient `(softmax − t) / batch` attached in one step; the
/// targets get no gradient.
pub fn softmax_cross_entropy_soft(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let [b, _] = logits.dims();
    let targets = targets.detach();
    let (shifted, p, log_sum) = softmax_parts(logits.clone());
    let mass = targets.clone().sum_dim(1);
    let value = (log_sum * mass.clone() - (shifted * targets.clone()).sum_dim(1)).mean();
    let grad = (p * mass - targets).div_scalar(b.max(1) as f64);
    with_gradient(value.reshape([1]), logits, grad)
}

/// Untracked `x − max`, `softmax(x)` and `ln Σ exp(x − max)` (`[batch, 1]`) of logits `[batch, m]`.
fn softmax_parts(logits: Tensor<2>) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
    let x = logits.detach();
    let shifted = x.clone() - x.max_dim(1);
    let e = shifted.clone().exp();
    let sum = e.clone().sum_dim(1);
    (shifted, e / sum.clone(), sum.log())
}

/// `value` (untracked, `[1]`) whose gradient with respect to `input` is `grad`.
fn with_gradient(value: Tensor<1>, input: Tensor<2>, grad: Tensor<2>) -> Tensor<1> {
    value.detach() + attached(input, grad)
}

/// `s − s̄` with `s = Σ input ⊙ grad` and `s̄` its untracked copy: exactly 0, with gradient `grad` with respect to
/// `input`. Added to an untracked value, it attaches a gradient computed in closed form.
pub(crate) fn attached<const D: usize>(input: Tensor<D>, grad: Tensor<D>) -> Tensor<1> {
    let s = (input * grad.detach()).sum();
    s.clone() - s.detach()
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
