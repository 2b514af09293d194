//! Writing a head: a discretised Laplace head (each row predicts a location and a scale; the logit of bin `i` is
//! `−|c_i − μ| / b`, so its PMFs are unimodal and smooth by construction) implementing `frl_heads::Head`, trained on
//! the paper's synthetic `gaussian` dataset beside the linear head, and scored with frl's metrics (KL to the true
//! PMFs, smoothness).
//!
//!     cargo run --release --example custom_head [-- EPOCHS]
//!
//! A head needs its two sizes and `forward` (logits and an optional regulariser); the loss, PMF, mode, sampling and
//! expected value follow from the logits. Any model can hold it; to make it a job-file choice for every agent, add
//! it as a variant of `frl_heads::AnyHead` and `HeadConfig`.

use burn::module::{Module, ModuleDisplay};
use burn::nn::Linear;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::{relu, softplus, tanh};
use burn::tensor::{Device, Int, Tensor, TensorData};
use frl_heads::head::{HeadOutput, bin_centres, to_host};
use frl_heads::metrics::{kl_divergence, smoothness_rows, softmax_rows};
use frl_heads::{Head, LinearHeadConfig, init};
use frl_toy::data::{Dataset, generate};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// The discretised Laplace head over `m` bins on `[-1, 1]`.
#[derive(Module, Debug)]
struct LaplaceHead {
    /// Features → (location, scale) before their squashing.
    params: Linear,
    /// Bin centres `[1, m]`.
    centres: Tensor<2>,
}

impl LaplaceHead {
    fn new(d_in: usize, bins: usize, rng: &mut StdRng, device: &Device) -> Self {
        let centres = Tensor::from_data(TensorData::new(bin_centres(bins), [1, bins]), device);
        Self { params: init::linear(d_in, 2, 1.0, 1.0, rng, device), centres }
    }
}

impl Head for LaplaceHead {
    fn input_dim(&self) -> usize {
        self.params.weight.dims()[0]
    }

    fn bins(&self) -> usize {
        self.centres.dims()[1]
    }

    fn forward(&self, features: Tensor<2>) -> HeadOutput {
        let p = self.params.forward(features);
        let location = tanh(p.clone().narrow(1, 0, 1));
        let scale = softplus(p.narrow(1, 1, 1), 1.0) + 1e-3;
        let logits = (self.centres.clone() - location).abs().neg() / scale;
        HeadOutput { logits, regularizer: None }
    }
}

/// The synthetic benchmark's MLP (2 → 64 → 64) with a head.
#[derive(Module, Debug)]
struct Model<H: Module + ModuleDisplay> {
    l1: Linear,
    l2: Linear,
    head: H,
}

impl<H: Module + ModuleDisplay + Head> Model<H> {
    fn features(&self, x: Tensor<2>) -> Tensor<2> {
        relu(self.l2.forward(relu(self.l1.forward(x))))
    }
}

/// Trains `model` for `epochs` on the data, then returns the test PMFs' mean KL to the truth and smoothness.
fn train<H: Module + ModuleDisplay + Head>(mut model: Model<H>, epochs: usize, device: &Device) -> (f64, f64) {
    let data = generate(Dataset::Gaussian, 50, 1);
    let (n, m) = (data.train_y.len(), data.bins);
    let x = Tensor::<2>::from_data(TensorData::new(data.train_x.clone(), [n, 2]), device);
    let y_all: Vec<i64> = data.train_y.iter().map(|&v| v as i64).collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(y_all, [n]), device);
    let mut optim = AdamConfig::new().init();
    let mut rng = StdRng::seed_from_u64(0);
    let mut order: Vec<i64> = (0..n as i64).collect();
    for _ in 0..epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(32) {
            let idx = Tensor::<1, Int>::from_data(TensorData::new(chunk.to_vec(), [chunk.len()]), device);
            let loss = model.head.loss(model.features(x.clone().select(0, idx.clone())), y.clone().select(0, idx));
            let grads = GradientsParams::from_grads(loss.total.backward(), &model);
            model = optim.step(1e-3, model, grads);
        }
    }
    let t = data.test_y.len();
    let test_x = Tensor::<2>::from_data(TensorData::new(data.test_x.clone(), [t, 2]), device);
    let pmf = softmax_rows(&to_host(model.head.forward(model.features(test_x)).logits), m);
    let kl = kl_divergence(&data.test_pmf, &pmf, m).expect("PMFs over the same bins");
    let smooth = smoothness_rows(&pmf, m).expect("PMFs over the same bins");
    (kl, smooth.iter().sum::<f64>() / smooth.len() as f64)
}

fn main() -> anyhow::Result<()> {
    let epochs: usize = std::env::args().nth(1).map(|e| e.parse()).transpose()?.unwrap_or(20);
    let device = Device::flex().autodiff();
    let mut rng = StdRng::seed_from_u64(1);
    let mlp =
        |rng: &mut StdRng| (init::linear(2, 64, 1.0, 1.0, rng, &device), init::linear(64, 64, 1.0, 1.0, rng, &device));
    let (l1, l2) = mlp(&mut rng);
    let head = LaplaceHead::new(64, 50, &mut rng, &device);
    let (kl_laplace, smooth_laplace) = train(Model { l1, l2, head }, epochs, &device);
    let (l1, l2) = mlp(&mut rng);
    let head = LinearHeadConfig::default().init(64, 50, &mut rng, &device)?;
    let (kl_linear, smooth_linear) = train(Model { l1, l2, head }, epochs, &device);
    println!("gaussian dataset, 50 bins, {epochs} epochs:");
    println!("  Laplace head: KL {kl_laplace:.3}, smoothness {smooth_laplace:.3}");
    println!("  linear head:  KL {kl_linear:.3}, smoothness {smooth_linear:.3}");
    anyhow::ensure!(kl_laplace.is_finite() && kl_laplace < 1.0, "the Laplace head did not learn (KL {kl_laplace})");
    anyhow::ensure!(
        smooth_laplace < smooth_linear,
        "a unimodal parametric PMF should be smoother than the linear head's"
    );
    Ok(())
}
