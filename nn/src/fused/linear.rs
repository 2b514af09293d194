//! `y = x·W + b` as one operation: the bias is the GEMM's starting value; the backward pass is two GEMMs and a
//! column sum.

use burn::nn::Linear;
use burn::tensor::Tensor;
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::NoCheckpointing};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::{Flex, FlexTensor};

use super::{Inputs, Mat, cpu, dense, matmul, plain_output, tensor, tracked_output, values};

/// `layer`'s output for `x` `[..., d_in]`: fused on the CPU, burn's `Linear` elsewhere.
pub fn linear<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    let Some(bias) = &layer.bias else { return layer.forward(x) };
    let (weight, bias) = (layer.weight.val(), bias.val());
    let dims = x.dims();
    if D == 0 || dims[D - 1] != weight.dims()[0] {
        return layer.forward(x); // burn's error for mismatched shapes
    }
    let Some(inputs) = Inputs::of([cpu(&x), cpu(&weight), cpu(&bias)]) else { return layer.forward(x) };
    let [xv, w, b] = inputs.values();
    let y = forward(&xv, &w, &b, &dims);
    match inputs {
        Inputs::Plain(_) => plain_output(y),
        Inputs::Tracked([xt, wt, bt]) => {
            let out = match LinearBackward
                .prepare::<NoCheckpointing>([xt.node(), wt.node(), bt.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish((xv, w), y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            };
            tracked_output(out)
        }
    }
}

/// `x·W + b` for dense `x` `[..., d_in]`, `W` `[d_in, d_out]`, `b` `[d_out]`.
fn forward(x: &FlexTensor, w: &FlexTensor, b: &FlexTensor, dims: &[usize]) -> FlexTensor {
    let d_in = dims[dims.len() - 1];
    let d_out = w.layout().shape()[1];
    let rows = dims.iter().product::<usize>() / d_in.max(1);
    let mut y: Vec<f32> = Vec::with_capacity(rows * d_out);
    for _ in 0..rows {
        y.extend_from_slice(values(b));
    }
    matmul(
        (rows, d_out, d_in),
        &mut y,
        0,
        d_out,
        true,
        Mat::rows(values(x), 0, d_in),
        Mat::rows(values(w), 0, d_out),
        1.0,
    );
    let mut out_dims = dims.to_vec();
    *out_dims.last_mut().expect("a rank of at least 1") = d_out;
    tensor(y, &out_dims)
}

#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 3> for LinearBackward {
    /// The dense input and weight.
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, w) = ops.state;
        let grad = dense(&grads.consume::<Flex>(&ops.node));
        let dy = values(&grad);
        let dims = x.layout().shape().to_vec();
        let d_in = dims[dims.len() - 1];
        let d_out = w.layout().shape()[1];
        let rows = dy.len() / d_out.max(1);
        let [px, pw, pb] = ops.parents;
        if let Some(node) = px {
            // dx = dy·Wᵀ
            let mut dx = vec![0.0f32; rows * d_in];
            matmul(
                (rows, d_in, d_out),
                &mut dx,
                0,
                d_in,
                false,
                Mat::rows(dy, 0, d_out),
                Mat::rows_t(values(&w), 0, d_out),
                1.0,
            );
            grads.register::<Flex>(node.id, tensor(dx, &dims));
        }
        if let Some(node) = pw {
            // dW = xᵀ·dy
            let mut dw = vec![0.0f32; d_in * d_out];
            matmul(
                (d_in, d_out, rows),
                &mut dw,
                0,
                d_out,
                false,
                Mat::rows_t(values(&x), 0, d_in),
                Mat::rows(dy, 0, d_out),
                1.0,
            );
            grads.register::<Flex>(node.id, tensor(dw, &[d_in, d_out]));
        }
        if let Some(node) = pb {
            let mut db = vec![0.0f32; d_out];
            for row in dy.chunks_exact(d_out) {
                for (s, g) in db.iter_mut().zip(row) {
                    *s += g;
                }
            }
            grads.register::<Flex>(node.id, tensor(db, &[d_out]));
        }
    }
}
