//! Pre-LayerNorm GPT blocks (causal self-attention and a 4×-wide GELU MLP) on the fused CPU layers, dropout masks
//! drawn from a step's seed, and GPT-2's initialisation.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{Device, Tensor, TensorData};
use rand::{RngCore, SeedableRng};
use rand_distr::{Distribution as _, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::fused;
use crate::gelu::gelu;

/// Standard deviation of the GPT-2 weight initialisation.
pub const INIT_STD: f32 = 0.02;

/// One pre-LayerNorm GPT block: causal self-attention and a 4×-wide GELU MLP, each with a residual.
#[derive(Module, Debug)]
pub struct Block {
    ln1: LayerNorm,
    qkv: Linear,
    proj: Linear,
    ln2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    n_heads: usize,
}

impl Block {
    /// A block of width `d` with `n_heads` attention heads, one of `layers` in its stack (GPT-2 scales the residual
    /// projections' initial weights by `1/sqrt(2·layers)`), every parameter drawn from `rng`.
    pub fn new(d: usize, n_heads: usize, layers: usize, rng: &mut dyn RngCore, device: &Device) -> Self {
        let res_std = INIT_STD / (2.0 * layers as f32).sqrt();
        Self {
            ln1: LayerNormConfig::new(d).init(device),
            qkv: normal_linear(d, 3 * d, INIT_STD, rng, device),
            proj: normal_linear(d, d, res_std, rng, device),
            ln2: LayerNormConfig::new(d).init(device),
            fc1: normal_linear(d, 4 * d, INIT_STD, rng, device),
            fc2: normal_linear(4 * d, d, res_std, rng, device),
            n_heads,
        }
    }

    /// The block's output for `x` `[b, tokens, d]`; `masks` gives the dropout masks of its attention and MLP
    /// branches, in that order.
    pub fn forward(&self, x: Tensor<3>, masks: &mut DropoutMasks) -> Tensor<3> {
        let qkv = fused::linear(&self.qkv, fused::layer_norm(&self.ln1, x.clone())); // [b, t, 3d]
        let y = fused::causal_attention(qkv, self.n_heads); // [b, t, d]
        let x = x + masks.apply(fused::linear(&self.proj, y));
        let m = fused::linear(&self.fc2, gelu(fused::linear(&self.fc1, fused::layer_norm(&self.ln2, x.clone()))));
        x + masks.apply(m)
    }
}

/// Where a training forward pass's dropout masks come from: the step's seed and the index, in the step's whole
/// batch, of the first window this (part of the) batch holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropoutDraw {
    /// The step's dropout seed (drawn with the batch).
    pub seed: u64,
    /// Index of the first window in the step's whole batch.
    pub first_window: usize,
}

/// The dropout mask of dropout site `site` (embeddings, then each block's attention and MLP branches) for `windows`
/// windows from `draw.first_window` on, `per_window` values each: `kept` with probability `keep`, else 0.0. Each
/// (site, window) has its own xoshiro256++ stream seeded from `(draw.seed, site, window)`, so a part of a batch
/// draws exactly its rows of the whole batch's masks, on its own thread.
pub fn dropout_mask(
    draw: DropoutDraw,
    site: usize,
    windows: usize,
    per_window: usize,
    keep: f64,
    kept: f32,
) -> Vec<f32> {
    let threshold = (keep * 4_294_967_296.0).round() as u64;
    let bit = |v: u64| if v < threshold { kept } else { 0.0 };
    let mut out = Vec::with_capacity(windows * per_window);
    for w in draw.first_window..draw.first_window + windows {
        let stream = splitmix64(draw.seed ^ splitmix64(((site as u64) << 40) ^ w as u64));
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(stream);
        for _ in 0..per_window / 2 {
            let v = rng.next_u64();
            out.push(bit(v & 0xffff_ffff));
            out.push(bit(v >> 32));
        }
        if per_window % 2 == 1 {
            out.push(bit(rng.next_u64() & 0xffff_ffff));
        }
    }
    out
}

/// SplitMix64's output function: a well-mixed 64-bit value from any input.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The dropout of one forward pass: where its masks come from and the next site (none: no dropout).
#[derive(Debug, Clone)]
pub struct DropoutMasks {
    draw: Option<(DropoutDraw, f64)>,
    site: usize,
}

impl DropoutMasks {
    /// No dropout: every [`DropoutMasks::apply`] returns its input.
    pub fn none() -> Self {
        Self { draw: None, site: 0 }
    }

    /// Dropout keeping each value with probability `keep`, the masks drawn as `draw` says, from site 0 on.
    pub fn drawn(draw: DropoutDraw, keep: f64) -> Self {
        Self { draw: Some((draw, keep)), site: 0 }
    }

    /// `x` `[b, tokens, d]` with the next site's mask applied and the kept values scaled by `1 / keep`, in one
    /// product: the mask holds 0 or the f32 `1 / keep`, and `x·(1/keep)` is `(x·1)·(1/keep)` bit for bit.
    pub fn apply(&mut self, x: Tensor<3>) -> Tensor<3> {
        let Some((draw, keep)) = self.draw else { return x };
        let [b, t, d] = x.dims();
        let mask = dropout_mask(draw, self.site, b, t * d, keep, (1.0 / keep) as f32);
        self.site += 1;
        let mask = Tensor::<3>::from_data(TensorData::new(mask, [b, t, d]), &x.device());
        x * mask
    }
}

/// A linear layer `d_in → d_out` with `N(0, std)` weights and zero bias, drawn from `rng`.
pub fn normal_linear(d_in: usize, d_out: usize, std: f32, rng: &mut dyn RngCore, device: &Device) -> Linear {
    Linear {
        weight: Param::from_tensor(normal([d_in, d_out], std, rng, device)),
        bias: Some(Param::from_tensor(Tensor::<1>::zeros([d_out], device))),
    }
}

/// A tensor of `N(0, std)` values drawn from `rng` in row-major order.
pub fn normal<const D: usize>(shape: [usize; D], std: f32, rng: &mut dyn RngCore, device: &Device) -> Tensor<D> {
    let n: usize = shape.iter().product();
    let dist = Normal::new(0.0f32, std).expect("positive std");
    let values: Vec<f32> = (0..n).map(|_| dist.sample(rng)).collect();
    Tensor::<D>::from_data(TensorData::new(values, shape), device)
}
