//! The Fourier head's PMF and regulariser from its coefficients `z` as two fused operations on the CPU.
//!
//! burn's composition evaluates `[R | I] = z · basis`, then squares, folds, sums, divides, adds and takes the log,
//! each an operation with its own output and backward node; the regulariser adds a second product with a
//! quadrature basis of `4(2N + 2)` columns. Here the log-PMF is one operation (one product forward, one backward,
//! one pass over the rows each), and the regulariser is computed from the coefficients' autocorrelation in closed
//! form (`4π² Σ_k k² |c_k|²`, [`crate::host`]), its gradient in the same pass. Results agree with the composition to
//! rounding (tested).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use burn::tensor::Tensor;
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::NoCheckpointing};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::Flex;

use super::{AdTensor, Inputs, Mat, cpu, dense, matmul, plain_output, tensor, tracked_output, values};
use crate::fourier::{NORM_GUARD, fourier_basis_values};
use crate::head::bin_centres;
use crate::host::Autocorrelation;
use crate::host::dense::ln_in_place;

/// Bin bases by `(N, m)`.
type BasisCache = Mutex<HashMap<(usize, usize), Arc<Vec<f32>>>>;

/// The bin basis `[2(N+1), 2m]` of `N` frequencies and `m` bins, built once per shape.
fn basis(n: usize, bins: usize) -> Arc<Vec<f32>> {
    static CACHE: OnceLock<BasisCache> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    cache.entry((n, bins)).or_insert_with(|| Arc::new(fourier_basis_values(n, &bin_centres(bins)))).clone()
}

/// `log(q + eps)` `[rows, m]` of the Fourier head with `n` frequencies and `bins` bins from its coefficients `z`
/// `[rows, 2(N+1)]`, differentiable; `None` off the CPU (the caller then uses burn's operations).
pub fn fourier_logits(z: &Tensor<2>, n: usize, bins: usize, eps: f64) -> Option<Tensor<2>> {
    Some(logits_op(z, n, bins, eps, None)?.0)
}

/// [`fourier_logits`] and, for `gamma > 0`, [`fourier_regularizer`] of the same coefficients `z`, with one gradient
/// for `z` where both reach it: the regulariser's backward hands its gradient to the log-PMF's, which takes it as
/// the start of its own product (instead of a second gradient tensor that the graph adds); `None` off the CPU.
pub fn fourier_head(
    z: &Tensor<2>,
    n: usize,
    bins: usize,
    eps: f64,
    gamma: f64,
) -> Option<(Tensor<2>, Option<Tensor<1>>)> {
    let [rows, _] = z.dims();
    if gamma <= 0.0 || rows == 0 {
        return Some((fourier_logits(z, n, bins, eps)?, None));
    }
    let handoff: Handoff = Arc::new(Mutex::new(None));
    let (logits, out) = logits_op(z, n, bins, eps, Some(handoff.clone()))?;
    let regularizer = regularizer_op(z, n, gamma, out.map(|o| (handoff, o)));
    Some((logits, regularizer))
}

/// The regulariser's gradient on its way to the log-PMF's backward pass.
type Handoff = Arc<Mutex<Option<Vec<f32>>>>;

/// [`fourier_logits`], and its tracked output (for [`fourier_head`]'s hand-off), with `handoff` in its state.
fn logits_op(
    z: &Tensor<2>,
    n: usize,
    bins: usize,
    eps: f64,
    handoff: Option<Handoff>,
) -> Option<(Tensor<2>, Option<AdTensor>)> {
    let [rows, w] = z.dims();
    if w != 2 * (n + 1) {
        return None;
    }
    let inputs = Inputs::of([cpu(z)])?;
    let [zv] = inputs.values();
    let basis = basis(n, bins);
    let (ri, s, logits) = logits_forward(values(&zv), &basis, rows, n, bins, eps as f32);
    let logits = tensor(logits, &[rows, bins]);
    Some(match inputs {
        Inputs::Plain(_) => (plain_output(logits), None),
        Inputs::Tracked([zt]) => {
            let out = match LogitsBackward.prepare::<NoCheckpointing>([zt.node()]).compute_bound().stateful() {
                OpsKind::Tracked(prep) => {
                    let state = LogitsState { ri, s, n, bins, eps: eps as f32, basis, handoff };
                    let out = prep.finish(state, logits);
                    return Some((tracked_output(out.clone()), Some(out)));
                }
                OpsKind::UnTracked(prep) => prep.finish(logits),
            };
            (tracked_output(out), None)
        }
    })
}

/// `([R | I], S, log(q + eps))` of every row: `[R | I] = z · basis`, `p = R² + I²`, `S = Σp + guard`, `q = p / S`.
fn logits_forward(
    z: &[f32],
    basis: &[f32],
    rows: usize,
    n: usize,
    m: usize,
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let w = 2 * (n + 1);
    let mut ri = vec![0.0f32; rows * 2 * m];
    matmul((rows, 2 * m, w), &mut ri, 0, 2 * m, false, Mat::rows(z, 0, w), Mat::rows(basis, 0, 2 * m), 1.0);
    let mut s = Vec::with_capacity(rows);
    let mut logits = vec![0.0f32; rows * m];
    for (row, out) in ri.chunks_exact(2 * m).zip(logits.chunks_exact_mut(m)) {
        let (re, im) = row.split_at(m);
        for ((o, r), i) in out.iter_mut().zip(re).zip(im) {
            *o = r * r + i * i;
        }
        let total = out.iter().sum::<f32>() + NORM_GUARD;
        for o in out.iter_mut() {
            *o = *o / total + eps;
        }
        s.push(total);
    }
    ln_in_place(&mut logits);
    (ri, s, logits)
}

/// What the backward pass of [`fourier_logits`] reads.
#[derive(Debug, Clone)]
struct LogitsState {
    ri: Vec<f32>,
    s: Vec<f32>,
    n: usize,
    bins: usize,
    eps: f32,
    basis: Arc<Vec<f32>>,
    /// Where [`fourier_head`]'s regulariser leaves its gradient of `z`, when its backward pass ran first.
    handoff: Option<Handoff>,
}

#[derive(Debug)]
struct LogitsBackward;

impl Backward<Flex, 1> for LogitsBackward {
    type State = LogitsState;

    /// With `a_i = G_i / (q_i + eps)`: `∂/∂p_i = (a_i − Σ_j a_j q_j) / S`, `∂/∂R_i = 2R_i ∂/∂p_i` (and `I` alike),
    /// `∂/∂z = ∂/∂[R | I] · basisᵀ`.
    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = dense(&grads.consume::<Flex>(&ops.node));
        let [parent] = ops.parents;
        let Some(node) = parent else { return };
        let LogitsState { mut ri, s, n, bins: m, eps, basis, handoff } = ops.state;
        let (w, rows) = (2 * (n + 1), s.len());
        let (mut a, mut q) = (vec![0.0f32; m], vec![0.0f32; m]);
        for ((row, g), &total) in ri.chunks_exact_mut(2 * m).zip(values(&grad).chunks_exact(m)).zip(&s) {
            let (re, im) = row.split_at_mut(m);
            let (im, g) = (&mut im[..m], &g[..m]);
            for i in 0..m {
                q[i] = (re[i] * re[i] + im[i] * im[i]) / total;
                a[i] = g[i] / (q[i] + eps);
            }
            let t: f32 = a.iter().zip(&q).map(|(a, q)| a * q).sum();
            for i in 0..m {
                let dp = 2.0 * (a[i] - t) / total;
                re[i] *= dp;
                im[i] *= dp;
            }
        }
        // The regulariser's gradient, when it was handed over, is the start the product adds to.
        let handed = handoff.and_then(|h| h.lock().unwrap_or_else(|e| e.into_inner()).take());
        let accumulate = handed.is_some();
        let mut dz = handed.unwrap_or_else(|| vec![0.0f32; rows * w]);
        let (ri, basis) = (Mat::rows(&ri, 0, 2 * m), Mat::rows_t(&basis, 0, 2 * m));
        matmul((rows, w, 2 * m), &mut dz, 0, w, accumulate, ri, basis, 1.0);
        grads.register::<Flex>(node.id, tensor(dz, &[rows, w]));
    }
}

/// `gamma · mean_rows 4π² Σ_k k² |c_k|²` `[1]` of the coefficients `z` `[rows, 2(N+1)]` (the head's regulariser),
/// differentiable; `None` off the CPU.
pub fn fourier_regularizer(z: &Tensor<2>, n: usize, gamma: f64) -> Option<Tensor<1>> {
    regularizer_op(z, n, gamma, None)
}

/// [`fourier_regularizer`]; with `link`, its gradient goes to that log-PMF output's backward pass when that one
/// is still to run.
fn regularizer_op(z: &Tensor<2>, n: usize, gamma: f64, link: Option<(Handoff, AdTensor)>) -> Option<Tensor<1>> {
    let [rows, w] = z.dims();
    if w != 2 * (n + 1) || rows == 0 {
        return None;
    }
    let inputs = Inputs::of([cpu(z)])?;
    let [zv] = inputs.values();
    let scale = gamma / rows as f64;
    let mut autocorrelation = Autocorrelation::default();
    Some(match inputs {
        Inputs::Plain(_) => {
            let value = (autocorrelation.sum(values(&zv), n, None) * scale) as f32;
            plain_output(tensor(vec![value], &[1]))
        }
        Inputs::Tracked([zt]) => {
            let out = match RegularizerBackward.prepare::<NoCheckpointing>([zt.node()]).compute_bound().stateful() {
                OpsKind::Tracked(prep) => {
                    let mut dz = vec![0.0f32; rows * w];
                    let value = (autocorrelation.sum_into(values(&zv), n, scale, &mut dz) * scale) as f32;
                    prep.finish(RegularizerState { dz, shape: [rows, w], link }, tensor(vec![value], &[1]))
                }
                OpsKind::UnTracked(prep) => {
                    let value = (autocorrelation.sum(values(&zv), n, None) * scale) as f32;
                    prep.finish(tensor(vec![value], &[1]))
                }
            };
            tracked_output(out)
        }
    })
}

/// What the backward pass of the regulariser reads: `∂ value / ∂z` (computed with the value), the shape of `z`,
/// and [`fourier_head`]'s link to the log-PMF.
#[derive(Debug, Clone)]
struct RegularizerState {
    dz: Vec<f32>,
    shape: [usize; 2],
    link: Option<(Handoff, AdTensor)>,
}

#[derive(Debug)]
struct RegularizerBackward;

impl Backward<Flex, 1> for RegularizerBackward {
    type State = RegularizerState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = dense(&grads.consume::<Flex>(&ops.node));
        let [parent] = ops.parents;
        let Some(node) = parent else { return };
        let g = values(&grad)[0];
        let RegularizerState { mut dz, shape, link } = ops.state;
        // A loss that adds the regulariser as it is (the usual case) sends 1: nothing to scale.
        if g != 1.0 {
            dz.iter_mut().for_each(|d| *d *= g);
        }
        // The log-PMF's backward pass is still to run exactly when its output holds a gradient it has not taken:
        // it then starts its product from this one (no second gradient of `z` to add).
        if let Some((handoff, logits)) = link
            && grads.get::<Flex>(&logits).is_some()
        {
            *handoff.lock().unwrap_or_else(|e| e.into_inner()) = Some(dz);
            return;
        }
        grads.register::<Flex>(node.id, tensor(dz, &shape));
    }
}
