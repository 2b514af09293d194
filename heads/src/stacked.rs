//! Several heads over the same features evaluated as one: their linear layers as a single product, then one PMF
//! computation over all of them (e.g. the return heads of every action of a distributional Q network).

use burn::nn::Linear;
use burn::tensor::Tensor;

use crate::config::AnyHead;
use crate::fourier::FourierHead;

/// Logits of every head, `[rows, heads, bins]`, and the heads' mean regulariser, from one product of `features`
/// `[rows, d]` with all heads' weights; equal to calling each head and stacking. `None` when the heads are not all
/// linear heads or all Fourier heads of the same arithmetic (callers then call each head).
pub fn forward_stacked(heads: &[AnyHead], features: Tensor<2>) -> Option<(Tensor<3>, Option<Tensor<1>>)> {
    let first = heads.first()?;
    let layers: Vec<&Linear> = match first {
        AnyHead::Linear(_) => heads
            .iter()
            .map(|h| match h {
                AnyHead::Linear(l) => Some(&l.linear),
                _ => None,
            })
            .collect::<Option<_>>()?,
        AnyHead::Fourier(f0) => heads
            .iter()
            .map(|h| match h {
                AnyHead::Fourier(f) if f0.same_arithmetic(f) => Some(&f.linear),
                _ => None,
            })
            .collect::<Option<_>>()?,
        AnyHead::Mixture(_) => return None,
    };
    let [rows, _] = features.dims();
    let count = heads.len();
    let weight = Tensor::cat(layers.iter().map(|l| l.weight.val()).collect(), 1);
    let width = weight.dims()[1] / count;
    let mut out = features.matmul(weight);
    if layers.iter().all(|l| l.bias.is_some()) {
        let bias = Tensor::cat(layers.iter().map(|l| l.bias.as_ref().expect("checked").val()).collect(), 0);
        out = out + bias.unsqueeze_dim::<2>(0);
    } else if layers.iter().any(|l| l.bias.is_some()) {
        return None;
    }
    // row r of head k is row r·count + k
    let per_head = out.reshape([rows * count, width]);
    match first {
        AnyHead::Linear(_) => Some((per_head.reshape([rows, count, width]), None)),
        AnyHead::Fourier(f0) => Some(fourier(f0, per_head, rows, count)),
        AnyHead::Mixture(_) => None,
    }
}

fn fourier(head: &FourierHead, z: Tensor<2>, rows: usize, count: usize) -> (Tensor<3>, Option<Tensor<1>>) {
    use crate::head::Head;
    let out = head.forward_coefficients(z);
    (out.logits.reshape([rows, count, head.bins()]), out.regularizer)
}
