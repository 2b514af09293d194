//! Seeded parameter initialisation, independent of the backend's global RNG so that runs on parallel
//! threads stay reproducible.

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, RngCore};

/// Uniform samples in `[-bound, bound)` from `rng`.
pub fn uniform(rng: &mut dyn RngCore, n: usize, bound: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-bound..bound)).collect()
}

/// A linear layer `[d_in] -> [d_out]` with PyTorch's default init `U(-1/sqrt(d_in), 1/sqrt(d_in))`
/// for weight and bias, then weight and bias divided by `weight_div` and `bias_div`.
pub fn linear(
    d_in: usize,
    d_out: usize,
    weight_div: f32,
    bias_div: f32,
    rng: &mut dyn RngCore,
    device: &Device,
) -> Linear {
    let bound = 1.0 / (d_in as f32).sqrt();
    let w: Vec<f32> = uniform(rng, d_in * d_out, bound).into_iter().map(|w| w / weight_div).collect();
    let b: Vec<f32> = uniform(rng, d_out, bound).into_iter().map(|b| b / bias_div).collect();
    Linear {
        weight: Param::from_tensor(Tensor::<2>::from_data(TensorData::new(w, [d_in, d_out]), device)),
        bias: Some(Param::from_tensor(Tensor::<1>::from_data(TensorData::new(b, [d_out]), device))),
    }
}

/// A constant (non-trainable) tensor of the given shape.
pub fn constant<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::<D>::from_data(TensorData::new(values, shape), device)
}
