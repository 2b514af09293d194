//! Causal multi-head self-attention from the packed `[q | k | v]` projection as one operation: per window and
//! head, `softmax(q·kᵀ/√d_head)` over the positions up to each query, times `v`, read from and written to the
//! token-major layout directly (no head-major copies).

use burn::tensor::Tensor;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::NoCheckpointing};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::{Flex, FlexTensor};

use super::{Inputs, Mat, cpu, dense, matmul, plain_output, tensor, tracked_output, values};
use crate::gelu::exp_sum;

/// The attention output `[b, t, d]` of `qkv` `[b, t, 3d]` (queries, keys and values side by side, each `n_heads`
/// heads of `d / n_heads`), each position attending to itself and the positions before it.
pub fn causal_attention(qkv: Tensor<3>, n_heads: usize) -> Tensor<3> {
    let [b, t, d3] = qkv.dims();
    if d3 % 3 != 0 || n_heads == 0 || (d3 / 3) % n_heads != 0 {
        return unfused(qkv, n_heads); // burn's error for mismatched shapes
    }
    let Some(inputs) = Inputs::of([cpu(&qkv)]) else { return unfused(qkv, n_heads) };
    let shape = Shape { b, t, d: d3 / 3, h: n_heads };
    let [x] = inputs.values();
    let (y, probs) = forward(values(&x), shape);
    let y = tensor(y, &[b, t, shape.d]);
    match inputs {
        Inputs::Plain(_) => plain_output(y),
        Inputs::Tracked([xt]) => {
            let out = match AttentionBackward.prepare::<NoCheckpointing>([xt.node()]).compute_bound().stateful() {
                OpsKind::Tracked(prep) => prep.finish((x, tensor(probs, &[b * n_heads, t, t]), shape), y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            };
            tracked_output(out)
        }
    }
}

/// burn's attention on the split heads (other devices).
pub(super) fn unfused(qkv: Tensor<3>, h: usize) -> Tensor<3> {
    let [b, t, d3] = qkv.dims();
    let d = d3 / 3;
    let split = |i: usize| qkv.clone().narrow(2, i * d, d).reshape([b, t, h, d / h]).swap_dims(1, 2);
    let opts = AttentionModuleOptions { scale: None, softcap: None, is_causal: true };
    let y = attention(split(0), split(1), split(2), None, None, opts); // [b, h, t, d/h]
    y.swap_dims(1, 2).reshape([b, t, d])
}

/// Windows, tokens, model width and heads.
#[derive(Clone, Copy, Debug)]
struct Shape {
    b: usize,
    t: usize,
    d: usize,
    h: usize,
}

impl Shape {
    fn head(&self) -> usize {
        self.d / self.h
    }

    fn scale(&self) -> f32 {
        1.0 / (self.head() as f32).sqrt()
    }

    /// Where window `w`'s head `h` of part `part` (0: q, 1: k, 2: v) starts in `qkv`.
    fn offset(&self, w: usize, h: usize, part: usize) -> usize {
        w * self.t * 3 * self.d + part * self.d + h * self.head()
    }
}

/// The output `[b, t, d]` and the attention probabilities `[b·h, t, t]` (zero above the diagonal).
fn forward(qkv: &[f32], s: Shape) -> (Vec<f32>, Vec<f32>) {
    let (t, d, dh) = (s.t, s.d, s.head());
    let mut y = vec![0.0f32; s.b * t * d];
    let mut probs = vec![0.0f32; s.b * s.h * t * t];
    for w in 0..s.b {
        for h in 0..s.h {
            let p = &mut probs[(w * s.h + h) * t * t..][..t * t];
            // scores = q·kᵀ/√d_head
            let q = Mat::rows(qkv, s.offset(w, h, 0), 3 * d);
            let kt = Mat::rows_t(qkv, s.offset(w, h, 1), 3 * d);
            matmul((t, t, dh), p, 0, t, false, q, kt, s.scale());
            for (i, row) in p.chunks_exact_mut(t).enumerate() {
                softmax_causal(row, i);
            }
            let v = Mat::rows(qkv, s.offset(w, h, 2), 3 * d);
            matmul((t, dh, t), &mut y, w * t * d + h * dh, d, false, Mat::rows(p, 0, t), v, 1.0);
        }
    }
    (y, probs)
}

/// `row[..=i]` replaced by its softmax, the rest by 0 (burn's max-shifted form).
fn softmax_causal(row: &mut [f32], i: usize) {
    let (kept, masked) = row.split_at_mut(i + 1);
    masked.fill(0.0);
    let max = kept.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0f32;
    for v in kept.iter_mut() {
        *v = exp_sum(*v - max, 0.0);
        sum += *v;
    }
    for v in kept.iter_mut() {
        *v /= sum;
    }
}

#[derive(Debug)]
struct AttentionBackward;

impl Backward<Flex, 1> for AttentionBackward {
    /// The dense `qkv`, the probabilities and the shape.
    type State = (FlexTensor, FlexTensor, Shape);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (qkv, probs, s) = ops.state;
        let grad = dense(&grads.consume::<Flex>(&ops.node));
        let [parent] = ops.parents;
        let Some(node) = parent else { return };
        let (dy, qkv, probs) = (values(&grad), values(&qkv), values(&probs));
        let (t, d, dh) = (s.t, s.d, s.head());
        let mut dqkv = vec![0.0f32; s.b * t * 3 * d];
        let (mut dp, mut ds) = (vec![0.0f32; t * t], vec![0.0f32; t * t]);
        for w in 0..s.b {
            for h in 0..s.h {
                let p = &probs[(w * s.h + h) * t * t..][..t * t];
                let dout = Mat::rows(dy, w * t * d + h * dh, d);
                // dv = pᵀ·dy
                matmul((t, dh, t), &mut dqkv, s.offset(w, h, 2), 3 * d, false, Mat::rows_t(p, 0, t), dout, 1.0);
                // dp = dy·vᵀ; ds = p·(dp − Σ_j p·dp) per row
                let vt = Mat::rows_t(qkv, s.offset(w, h, 2), 3 * d);
                matmul((t, t, dh), &mut dp, 0, t, false, dout, vt, 1.0);
                for ((p, dp), ds) in p.chunks_exact(t).zip(dp.chunks_exact(t)).zip(ds.chunks_exact_mut(t)) {
                    let dot = p.iter().zip(dp).map(|(p, g)| p * g).sum::<f32>();
                    for ((ds, &p), &g) in ds.iter_mut().zip(p).zip(dp) {
                        *ds = p * (g - dot);
                    }
                }
                // dq = ds·k/√d_head, dk = dsᵀ·q/√d_head
                let k = Mat::rows(qkv, s.offset(w, h, 1), 3 * d);
                matmul((t, dh, t), &mut dqkv, s.offset(w, h, 0), 3 * d, false, Mat::rows(&ds, 0, t), k, s.scale());
                let q = Mat::rows(qkv, s.offset(w, h, 0), 3 * d);
                matmul((t, dh, t), &mut dqkv, s.offset(w, h, 1), 3 * d, false, Mat::rows_t(&ds, 0, t), q, s.scale());
            }
        }
        grads.register::<Flex>(node.id, tensor(dqkv, &[s.b, t, 3 * d]));
    }
}
