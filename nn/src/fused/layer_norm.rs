//! LayerNorm over the last axis as one operation: one pass per row forward (mean, biased variance, normalise,
//! scale and shift, as burn's `layer_norm` computes them) and one backward.

use burn::nn::LayerNorm;
use burn::tensor::Tensor;
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::NoCheckpointing};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::{Flex, FlexTensor};

use super::{Inputs, cpu, dense, plain_output, tensor, tracked_output, values};

/// burn's `LayerNormConfig` default, which every LayerNorm of the DT uses.
const EPSILON: f32 = 1e-5;

/// `norm`'s output for `x` `[..., d]`: fused on the CPU, burn's `LayerNorm` elsewhere.
pub fn layer_norm<const D: usize>(norm: &LayerNorm, x: Tensor<D>) -> Tensor<D> {
    let Some(beta) = &norm.beta else { return norm.forward(x) };
    let (gamma, beta) = (norm.gamma.val(), beta.val());
    let dims = x.dims();
    if D == 0 || dims[D - 1] != gamma.dims()[0] {
        return norm.forward(x); // burn's error for mismatched shapes
    }
    let Some(inputs) = Inputs::of([cpu(&x), cpu(&gamma), cpu(&beta)]) else { return norm.forward(x) };
    let [xv, g, b] = inputs.values();
    let (y, normalized, inv_std) = forward(values(&xv), values(&g), values(&b));
    let y = tensor(y, &dims);
    match inputs {
        Inputs::Plain(_) => plain_output(y),
        Inputs::Tracked([xt, gt, bt]) => {
            let out = match LayerNormBackward
                .prepare::<NoCheckpointing>([xt.node(), gt.node(), bt.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let d = g.layout().shape()[0];
                    let rows = normalized.len() / d.max(1);
                    let state = (tensor(normalized, &[rows, d]), tensor(inv_std, &[rows]), g, dims.to_vec());
                    prep.finish(state, y)
                }
                OpsKind::UnTracked(prep) => prep.finish(y),
            };
            tracked_output(out)
        }
    }
}

/// `(y, x̂, 1/σ)` for the rows of `x` (width `gamma.len()`): `x̂ = (x − mean)/σ`, `σ = √(var + ε)`, `y = x̂·γ + β`.
fn forward(x: &[f32], gamma: &[f32], beta: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let d = gamma.len();
    let rows = x.len() / d.max(1);
    let (mut y, mut normalized, mut inv_std) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()], vec![0.0f32; rows]);
    for (((x, y), xh), s) in
        x.chunks_exact(d).zip(y.chunks_exact_mut(d)).zip(normalized.chunks_exact_mut(d)).zip(&mut inv_std)
    {
        let mean = x.iter().sum::<f32>() / d as f32;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
        let sigma = (var + EPSILON).sqrt();
        for ((((xh, y), &v), &g), &b) in xh.iter_mut().zip(y.iter_mut()).zip(x).zip(gamma).zip(beta) {
            *xh = (v - mean) / sigma;
            *y = *xh * g + b;
        }
        *s = 1.0 / sigma;
    }
    (y, normalized, inv_std)
}

#[derive(Debug)]
struct LayerNormBackward;

impl Backward<Flex, 3> for LayerNormBackward {
    /// `x̂` `[rows, d]`, `1/σ` `[rows]`, `γ`, and the input's shape.
    type State = (FlexTensor, FlexTensor, FlexTensor, Vec<usize>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (normalized, inv_std, gamma, dims) = ops.state;
        let grad = dense(&grads.consume::<Flex>(&ops.node));
        let (dy, xh, inv_std, gamma) = (values(&grad), values(&normalized), values(&inv_std), values(&gamma));
        let d = gamma.len();
        let [px, pg, pb] = ops.parents;
        if let Some(node) = px {
            // dx = (1/σ)·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·γ.
            let mut dx = vec![0.0f32; dy.len()];
            let mut g = vec![0.0f32; d];
            for (((dy, xh), dx), &s) in
                dy.chunks_exact(d).zip(xh.chunks_exact(d)).zip(dx.chunks_exact_mut(d)).zip(inv_std)
            {
                for ((g, &dy), &gamma) in g.iter_mut().zip(dy).zip(gamma) {
                    *g = dy * gamma;
                }
                let mean_g = g.iter().sum::<f32>() / d as f32;
                let mean_gx = g.iter().zip(xh).map(|(g, x)| g * x).sum::<f32>() / d as f32;
                for ((dx, &g), &x) in dx.iter_mut().zip(&g).zip(xh) {
                    *dx = s * (g - mean_g - x * mean_gx);
                }
            }
            grads.register::<Flex>(node.id, tensor(dx, &dims));
        }
        if pg.is_some() || pb.is_some() {
            // dγ = Σ_rows dy·x̂, dβ = Σ_rows dy, in one pass.
            let (mut dg, mut db) = (vec![0.0f32; d], vec![0.0f32; d]);
            for (dy, xh) in dy.chunks_exact(d).zip(xh.chunks_exact(d)) {
                for (((sg, sb), &dy), &x) in dg.iter_mut().zip(db.iter_mut()).zip(dy).zip(xh) {
                    *sg += dy * x;
                    *sb += dy;
                }
            }
            if let Some(node) = pg {
                grads.register::<Flex>(node.id, tensor(dg, &[d]));
            }
            if let Some(node) = pb {
                grads.register::<Flex>(node.id, tensor(db, &[d]));
            }
        }
    }
}
