//! Each fused operation against burn's composition of the same layer: values and every gradient.

use burn::module::Param;
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{Device, Tensor, TensorData};

use super::{attention, causal_attention, layer_norm, linear};

/// Deterministic values in about [−1.5, 1.5] that are not a simple pattern.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.0
        })
        .collect()
}

fn tensor<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    Tensor::<D>::from_data(TensorData::new(values(shape.iter().product(), seed), shape), device)
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// Every element within `tol` of burn's, relative to the larger of 1 and burn's largest magnitude.
fn assert_close(what: &str, ours: &[f32], burns: &[f32], tol: f32) {
    assert_eq!(ours.len(), burns.len(), "{what}: lengths");
    let scale = burns.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in ours.iter().zip(burns).enumerate() {
        assert!((a - b).abs() <= tol * scale, "{what}[{i}]: {a} vs burn's {b} (scale {scale})");
    }
}

/// The value of `f` and the gradient of `Σ y·w` (a fixed random `w`) with respect to the input, the input being
/// an intermediate of the graph as inside the model.
fn run<const D: usize>(x: &Tensor<D>, f: &dyn Fn(Tensor<D>) -> Tensor<D>) -> (Vec<f32>, Vec<f32>) {
    let leaf = x.clone().require_grad();
    let y = f(leaf.clone().mul_scalar(1.0));
    let w = Tensor::<D>::from_data(TensorData::new(values(y.shape().num_elements(), 99), y.shape()), &y.device());
    let grads = (y.clone() * w).sum().backward();
    let dx = host(leaf.grad(&grads).expect("input gradient"));
    (host(y), dx)
}

fn linear_layer(d_in: usize, d_out: usize, device: &Device) -> Linear {
    Linear {
        weight: Param::from_tensor(tensor([d_in, d_out], 3, device).mul_scalar(0.3)),
        bias: Some(Param::from_tensor(tensor([d_out], 4, device))),
    }
}

#[test]
fn the_fused_linear_layer_matches_burns() {
    let device = Device::flex().autodiff();
    let layer = linear_layer(12, 20, &device);
    // Contiguous, and a transposed (strided) input.
    for x in [tensor([2, 7, 12], 1, &device), tensor([2, 12, 7], 2, &device).swap_dims(1, 2)] {
        let (ours, our_dx) = run(&x, &|x| linear(&layer, x));
        let (burns, burn_dx) = run(&x, &|x| layer.forward(x));
        assert_close("linear value", &ours, &burns, 1e-6);
        assert_close("linear dx", &our_dx, &burn_dx, 1e-6);
        // Parameter gradients: through a loss that reads the parameters only via the layer.
        let grads = |f: &dyn Fn(Tensor<3>) -> Tensor<3>| {
            let g = (f(x.clone()) * tensor([2, 7, 20], 5, &device)).sum().backward();
            (host(layer.weight.val().grad(&g).unwrap()), host(layer.bias.as_ref().unwrap().val().grad(&g).unwrap()))
        };
        let (ow, ob) = grads(&|x| linear(&layer, x));
        let (bw, bb) = grads(&|x| layer.forward(x));
        assert_close("linear dW", &ow, &bw, 1e-6);
        assert_close("linear db", &ob, &bb, 1e-6);
    }
}

#[test]
fn the_fused_layer_norm_matches_burns() {
    let device = Device::flex().autodiff();
    let mut norm: LayerNorm = LayerNormConfig::new(24).init(&device);
    norm.gamma = Param::from_tensor(tensor([24], 6, &device));
    norm.beta = Some(Param::from_tensor(tensor([24], 7, &device)));
    // Rows with an offset and a spread, and a constant row (variance 0: ε decides).
    let mut data =
        values(3 * 5 * 24, 8).iter().enumerate().map(|(i, v)| v * (1 + i % 7) as f32 + 3.0).collect::<Vec<_>>();
    data[24..48].fill(0.7);
    let x = Tensor::<3>::from_data(TensorData::new(data, [3, 5, 24]), &device);
    let (ours, our_dx) = run(&x, &|x| layer_norm(&norm, x));
    let (burns, burn_dx) = run(&x, &|x| norm.forward(x));
    assert_close("layer norm value", &ours, &burns, 2e-6);
    assert_close("layer norm dx", &our_dx, &burn_dx, 2e-5);
    let grads = |f: &dyn Fn(Tensor<3>) -> Tensor<3>| {
        let g = (f(x.clone()) * tensor([3, 5, 24], 9, &device)).sum().backward();
        (host(norm.gamma.val().grad(&g).unwrap()), host(norm.beta.as_ref().unwrap().val().grad(&g).unwrap()))
    };
    let (og, ob) = grads(&|x| layer_norm(&norm, x));
    let (bg, bb) = grads(&|x| norm.forward(x));
    assert_close("layer norm dγ", &og, &bg, 2e-6);
    assert_close("layer norm dβ", &ob, &bb, 2e-6);
}

#[test]
fn the_fused_attention_matches_burns() {
    let device = Device::flex().autodiff();
    for (b, t, d, h) in [(2, 9, 12, 3), (1, 1, 8, 2), (3, 17, 16, 1)] {
        // Large scores too, so that the softmax's shift matters.
        let x = tensor([b, t, 3 * d], 10 + t as u64, &device).mul_scalar(2.5);
        let (ours, our_dx) = run(&x, &|x| causal_attention(x, h));
        let (burns, burn_dx) = run(&x, &|x| attention::unfused(x, h));
        assert_close("attention value", &ours, &burns, 2e-6);
        assert_close("attention dqkv", &our_dx, &burn_dx, 1e-5);
    }
}

#[test]
fn without_autodiff_the_fused_layers_compute_the_same_values() {
    let (ad, plain) = (Device::flex().autodiff(), Device::flex());
    let norm: LayerNorm = LayerNormConfig::new(12).init(&plain);
    let layer = linear_layer(12, 36, &plain);
    let f = |x: Tensor<3>, norm: &LayerNorm, layer: &Linear| causal_attention(linear(layer, layer_norm(norm, x)), 4);
    let ours = host(f(tensor([2, 6, 12], 11, &plain), &norm, &layer));
    let burns = host(attention::unfused(layer.forward(norm.forward(tensor([2, 6, 12], 11, &plain))), 4));
    assert_close("plain stack", &ours, &burns, 2e-6);
    // The same values as in a graph.
    let (norm_ad, layer_ad) = (LayerNormConfig::new(12).init(&ad), linear_layer(12, 36, &ad));
    assert_eq!(ours, host(f(tensor([2, 6, 12], 11, &ad), &norm_ad, &layer_ad)));
}
