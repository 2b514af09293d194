//! Helpers shared by the head tests: devices, random tensors, directional finite differences.

#![allow(dead_code)]

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Gradients;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub fn device() -> Device {
    Device::flex().autodiff()
}

pub fn randn(rng: &mut StdRng, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    let v: Vec<f32> = (0..rows * cols).map(|_| normal(rng) as f32).collect();
    Tensor::<2>::from_data(TensorData::new(v, [rows, cols]), device)
}

pub fn normal(rng: &mut StdRng) -> f64 {
    // Box-Muller
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

pub fn targets(rng: &mut StdRng, n: usize, bins: usize, device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = (0..n).map(|_| rng.random_range(0..bins as i64)).collect();
    Tensor::<1, Int>::from_data(TensorData::new(v, [n]), device)
}

pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    frl_heads::head::to_host(t)
}

/// Adds `h` times a seeded random direction to every float parameter.
struct Perturb {
    rng: StdRng,
    h: f32,
}

impl ModuleMapper for Perturb {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let h = self.h;
        let rng = &mut self.rng;
        param.map(|t| {
            let shape = t.shape();
            let n = shape.num_elements();
            let dir: Vec<f32> = (0..n).map(|_| normal(rng) as f32).collect();
            let dir = Tensor::<D>::from_data(TensorData::new(dir, shape), &t.device());
            t + dir.mul_scalar(h)
        })
    }
}

/// `Σ_params <grad, direction>` with the same seeded directions as [`Perturb`].
struct Directional<'a> {
    rng: StdRng,
    grads: &'a Gradients,
    total: f64,
    params: usize,
}

impl ModuleVisitor for Directional<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        let n = t.shape().num_elements();
        let dir: Vec<f64> = (0..n).map(|_| normal(&mut self.rng)).collect();
        let g = t.grad(self.grads).map(to_vec).unwrap_or_else(|| vec![0.0; n]);
        self.total += g.iter().zip(&dir).map(|(g, d)| *g as f64 * d).sum::<f64>();
        self.params += 1;
    }
}

/// Checks the autodiff directional derivative of `loss(module)` against central differences along three random
/// directions. Returns (autodiff, finite difference) pairs.
pub fn check_gradients<M: Module + Clone>(module: &M, loss: impl Fn(&M) -> Tensor<1>, h: f32) -> Vec<(f64, f64)> {
    let mut pairs = Vec::new();
    for seed in 0..3u64 {
        let l = loss(module);
        let grads = l.backward();
        let mut dirs = Directional { rng: StdRng::seed_from_u64(seed), grads: &grads, total: 0.0, params: 0 };
        module.visit(&mut dirs);
        assert!(dirs.params > 0, "module has no float parameters");
        let plus = module.clone().map(&mut Perturb { rng: StdRng::seed_from_u64(seed), h });
        let minus = module.clone().map(&mut Perturb { rng: StdRng::seed_from_u64(seed), h: -h });
        let lp = loss(&plus).into_scalar::<f32>() as f64;
        let lm = loss(&minus).into_scalar::<f32>() as f64;
        let fd = (lp - lm) / (2.0 * h as f64);
        let ad = dirs.total;
        assert!(
            (ad - fd).abs() <= 2e-2 * ad.abs().max(fd.abs()) + 2e-3,
            "directional derivative {ad} (autodiff) vs {fd} (finite difference), direction seed {seed}, h {h}"
        );
        pairs.push((ad, fd));
    }
    pairs
}
