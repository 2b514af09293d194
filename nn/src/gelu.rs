//! The exact (erf) GELU of the DT's MLP, `x·Φ(x)`, with a CPU path that evaluates `Φ` and its derivative in one
//! vectorisable pass instead of burn's scalar `erf` and `exp`.
//!
//! `Φ(x) = ½·erfc(−x/√2)` uses the Chebyshev fit of `erfc` in Numerical Recipes (fractional error below 1.2e-7
//! everywhere, so the tails keep their relative precision; burn's `1 + erf` loses the negative tail to
//! cancellation) and a Cody–Waite `exp` with the Cephes polynomial (two per value); the results are within a few
//! f32 ulps of the exact function (tested against libm's f64 `erfc`). On the CPU it is one operation of the
//! autodiff graph ([`crate::fused`]): the forward pass computes the values and the derivative `Φ(x) + x·φ(x)`
//! together and keeps the derivative for the backward pass, one product. Other devices use burn's `gelu`.

use burn::tensor::Tensor;
use burn::tensor::activation::gelu as burn_gelu;
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::NoCheckpointing};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::{Flex, FlexTensor};

use crate::fused::{Inputs, cpu, dense, plain_output, tensor, tracked_output, values};

/// `x·Φ(x)` elementwise (the exact GELU), differentiable.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let Some(inputs) = Inputs::of([cpu(&x)]) else { return burn_gelu(x) };
    let dims = x.dims();
    let [xv] = inputs.values();
    let xs = values(&xv);
    let mut y = vec![0.0f32; xs.len()];
    match inputs {
        Inputs::Plain(_) => {
            fill(xs, &mut y, None);
            plain_output(tensor(y, &dims))
        }
        Inputs::Tracked([xt]) => {
            let out = match GeluBackward.prepare::<NoCheckpointing>([xt.node()]).compute_bound().stateful() {
                OpsKind::Tracked(prep) => {
                    let mut slope = vec![0.0f32; xs.len()];
                    fill(xs, &mut y, Some(&mut slope));
                    prep.finish(tensor(slope, &dims), tensor(y, &dims))
                }
                OpsKind::UnTracked(prep) => {
                    fill(xs, &mut y, None);
                    prep.finish(tensor(y, &dims))
                }
            };
            tracked_output(out)
        }
    }
}

#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    /// The derivative at every input.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = dense(&grads.consume::<Flex>(&ops.node));
        let [parent] = ops.parents;
        let Some(node) = parent else { return };
        let dims = ops.state.layout().shape().to_vec();
        let dx: Vec<f32> = values(&grad).iter().zip(values(&ops.state)).map(|(g, s)| g * s).collect();
        grads.register::<Flex>(node.id, tensor(dx, &dims));
    }
}

/// `y = x·Φ(x)` and, when given, `dy = Φ(x) + x·φ(x)` for every `x` of `values`: with AVX-512 or AVX2 where the
/// CPU has them (the same IEEE operations, 16 or 8 at a time, so the same bits as without).
fn fill(values: &[f32], y: &mut [f32], dy: Option<&mut [f32]>) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            unsafe { fill_avx512(values, y, dy) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { fill_avx2(values, y, dy) };
            return;
        }
    }
    fill_portable(values, y, dy);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fill_avx512(values: &[f32], y: &mut [f32], dy: Option<&mut [f32]>) {
    fill_portable(values, y, dy);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn fill_avx2(values: &[f32], y: &mut [f32], dy: Option<&mut [f32]>) {
    fill_portable(values, y, dy);
}

#[inline(always)]
fn fill_portable(values: &[f32], y: &mut [f32], dy: Option<&mut [f32]>) {
    match dy {
        Some(dy) => {
            for ((&v, y), g) in values.iter().zip(y).zip(dy) {
                (*y, *g) = gelu_and_derivative(v);
            }
        }
        None => {
            for (&v, y) in values.iter().zip(y) {
                *y = gelu_and_derivative(v).0;
            }
        }
    }
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// `1/√(2π)`.
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// `(x·Φ(x), Φ(x) + x·φ(x))`.
#[inline(always)]
#[allow(clippy::excessive_precision)] // the coefficients as published
pub fn gelu_and_derivative(x: f32) -> (f32, f32) {
    let z = x.abs() * FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    // Numerical Recipes' erfc(z) = t·exp(−z² + P(t)), fractional error < 1.2e-7.
    let p = -1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    // exp(−x²/2) = exp(−s²/2 − (x − s)(x + s)/2) with s = x cut to 12 significant bits: s² is exact, so the large
    // part of the exponent carries no rounding error (as in libm's erff).
    let s = f32::from_bits(x.to_bits() & 0xffff_f000);
    let (big, small) = (-0.5 * s * s, -0.5 * (x - s) * (x + s));
    let gauss = exp_sum(big, small);
    let half_erfc = 0.5 * t * exp_sum(big, small + p);
    let cdf = if x >= 0.0 { 1.0 - half_erfc } else { half_erfc };
    (x * cdf, cdf + x * INV_SQRT_2PI * gauss)
}

/// `e^(a + b)` for a large `a` that is exact and a small `b` (|b| ≲ 2), in f32 without branches: `2ᵏ·e^r` with
/// `k = round((a + b) / ln 2)` and `r = (a − k·ln 2) + b` (Cody–Waite: `a − k·ln 2` is exact, so `r` is rounded at
/// its own scale), `e^r` by the Cephes `expf` polynomial; `a + b` below −87.3 counts as −87.3.
#[inline(always)]
#[allow(clippy::excessive_precision)] // the coefficients as published
pub fn exp_sum(a: f32, b: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer held in the low mantissa bits
    let a = a.max(-87.3 - b).min(88.0 - b);
    let kr = (a + b) * LOG2E + ROUND;
    let ki = (kr.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let k = kr - ROUND;
    let r = (a - k * LN2_HI - k * LN2_LO) + b;
    let p = ((((1.987_569_2e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1) * r
        + 5.000_000_1e-1;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits((ki.wrapping_add(127) << 23) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    /// `(x·Φ(x), Φ(x) + x·φ(x))` in f64 with libm's `erfc`, and the magnitude of the derivative's two terms.
    fn reference(x: f32) -> (f64, f64, f64) {
        let x = x as f64;
        let cdf = 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2);
        let xpdf = x * (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        (x * cdf, cdf + xpdf, cdf.abs() + xpdf.abs())
    }

    fn grid() -> Vec<f32> {
        let mut xs: Vec<f32> = (-240_000..=240_000).map(|i| i as f32 * 5e-5).collect();
        xs.extend((0..300).flat_map(|i| {
            let m = 10f32.powf(-30.0 + i as f32 * 0.1);
            [m, -m]
        }));
        xs
    }

    #[test]
    fn gelu_and_its_derivative_are_within_a_few_ulps_of_the_exact_function() {
        let (mut worst_y, mut worst_g) = (0.0f64, 0.0f64);
        for x in grid() {
            let (y, g) = gelu_and_derivative(x);
            let (ry, rg, scale) = reference(x);
            if ry.abs() > 1e-36 {
                worst_y = worst_y.max((y as f64 - ry).abs() / ry.abs());
            }
            worst_g = worst_g.max((g as f64 - rg).abs() / scale);
        }
        eprintln!("worst relative error: GELU {worst_y:e}, derivative {worst_g:e}");
        // An f32 ulp is 1.2e-7 relative at most; libm's erff is within 1 ulp.
        assert!(worst_y < 1e-6, "GELU relative error {worst_y:e}");
        assert!(worst_g < 1e-6, "derivative error {worst_g:e} (relative to its terms)");
    }

    #[test]
    fn exp_is_within_two_ulps() {
        let mut worst = 0.0f64;
        for i in -870_000..=880_000 {
            let x = i as f32 * 1e-4;
            let r = (x as f64).exp();
            worst = worst.max((exp_sum(x, 0.0) as f64 - r).abs() / r);
        }
        // A large exact part and a small one, as the GELU uses it: e^(a + b) without the rounding of a + b.
        for i in 0..2000 {
            let a = -87.0 + i as f32 * 0.0437;
            for b in [-1.9f32, -0.5, 1e-3, 0.3, 1.7].into_iter().filter(|b| a + b >= -87.3) {
                let r = (a as f64 + b as f64).exp();
                worst = worst.max((exp_sum(a, b) as f64 - r).abs() / r);
            }
        }
        assert!(worst < 2.4e-7, "exp relative error {worst:e}");
    }

    #[test]
    fn the_cpu_path_matches_burns_gelu_in_value_and_gradient() {
        let device = Device::flex().autodiff();
        let xs: Vec<f32> = (0..4096).map(|i| (i as f32 - 2048.0) * 0.004).collect();
        let make = || Tensor::<2>::from_data(TensorData::new(xs.clone(), [64, 64]), &device).require_grad();
        let weights = Tensor::<2>::from_data(
            TensorData::new((0..4096).map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0).collect::<Vec<_>>(), [64, 64]),
            &device,
        );
        // The input is an intermediate of the graph, as in the MLP (a leaf is a special case).
        let run = |f: &dyn Fn(Tensor<2>) -> Tensor<2>| {
            let x = make();
            let y = f(x.clone().mul_scalar(2.0).div_scalar(2.0));
            let grads = (y.clone() * weights.clone()).sum().backward();
            let value: Vec<f32> = y.into_data().try_to_vec::<f32>().unwrap();
            let grad: Vec<f32> = x.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
            (value, grad)
        };
        let (ours, our_grad) = run(&|x| gelu(x));
        let (burns, burn_grad) = run(&|x| burn_gelu(x));
        for (i, ((a, b), (ga, gb))) in ours.iter().zip(&burns).zip(our_grad.iter().zip(&burn_grad)).enumerate() {
            // burn forms 1 + erf(x/√2), which loses the negative tail to cancellation: up to half an ulp of 1.
            let x = xs[i].abs();
            assert!((a - b).abs() <= 1e-6 * b.abs() + 1e-7 * x, "value at {}: {a} vs burn's {b}", xs[i]);
            assert!((ga - gb).abs() <= 2e-6 * gb.abs() + 1e-7 * (1.0 + x), "gradient at {}: {ga} vs {gb}", xs[i]);
        }
        // Without autodiff only the value is computed.
        let plain = Tensor::<2>::from_data(TensorData::new(xs.clone(), [64, 64]), &Device::flex());
        let value: Vec<f32> = gelu(plain).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(value, ours);
    }
}
