//! One training run of the synthetic benchmark: the paper's MLP with a head, Adam, cross-entropy (+ regulariser).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::nn::Linear;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use frl_heads::head::to_host;
use frl_heads::metrics::{expected_bin_mse, kl_divergence, smoothness_rows, softmax_rows};
use frl_heads::{AnyHead, Head, HeadConfig, HeadError, init};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use super::data::{Dataset, ToyData, generate};

/// Everything that determines one run's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Which synthetic dataset.
    pub dataset: Dataset,
    /// The head on top of the MLP.
    pub head: HeadConfig,
    /// Seed of data generation, init and shuffling.
    pub seed: u64,
    /// Passes over the training set.
    pub epochs: usize,
    /// Number of bins `m`.
    pub bins: usize,
    /// Minibatch size.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
}

impl RunSpec {
    /// File-name stem of this run.
    pub fn stem(&self) -> String {
        format!("{}__{}__seed{}", self.dataset, self.head.slug(), self.seed)
    }
}

/// A test sample's true and predicted PMFs, for plots.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Example {
    /// Input bin indices `(x, y)`.
    pub input: [f32; 2],
    /// True conditional PMF.
    pub truth: Vec<f64>,
    /// Predicted PMF.
    pub predicted: Vec<f64>,
}

/// The outcome of one run, measured on the test split after the final epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// What was run.
    pub spec: RunSpec,
    /// `KL(true ‖ pred)`, test-batch mean.
    pub kl: f64,
    /// Expected-bin MSE.
    pub mse: f64,
    /// Sum of the smoothness of every test PMF.
    pub smoothness_sum: f64,
    /// Sum of squared smoothness, for the pooled standard deviation.
    pub smoothness_sq_sum: f64,
    /// Number of test PMFs.
    pub smoothness_count: usize,
    /// Final-epoch mean training loss.
    pub final_train_loss: f64,
    /// Mean training loss of every epoch, first to last.
    #[serde(default)]
    pub epoch_losses: Vec<f64>,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Wall-clock seconds of training (evaluation excluded).
    pub train_seconds: f64,
    /// A few test samples' PMFs.
    pub examples: Vec<Example>,
}

/// Why a run did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The head config is invalid.
    #[error(transparent)]
    Head(#[from] HeadError),
    /// The user interrupted the job.
    #[error("interrupted")]
    Interrupted,
    /// Training diverged.
    #[error("{0}: loss became {1} at epoch {2}")]
    NonFinite(String, f64, usize),
    /// A worker process failed.
    #[error("run {0} failed in its worker process: {1}")]
    Worker(String, String),
}

/// The MLP of the paper: `Linear(2, 64) → ReLU → Linear(64, 32) → ReLU → head(32 → m)`.
#[derive(Module, Debug)]
pub struct ToyModel {
    l1: Linear,
    l2: Linear,
    /// The output head.
    pub head: AnyHead,
}

impl ToyModel {
    /// Builds the MLP (PyTorch default init) and the head from `rng`.
    pub fn new(head: &HeadConfig, bins: usize, rng: &mut dyn RngCore, device: &Device) -> Result<Self, HeadError> {
        let l1 = init::linear(2, 64, 1.0, 1.0, rng, device);
        let l2 = init::linear(64, 32, 1.0, 1.0, rng, device);
        let head = head.init(32, bins, rng, device)?;
        Ok(Self { l1, l2, head })
    }

    /// Features fed to the head, `[batch, 32]`.
    pub fn features(&self, x: Tensor<2>) -> Tensor<2> {
        relu(self.l2.forward(relu(self.l1.forward(x))))
    }
}

/// Number of test samples kept for plots.
const EXAMPLES: usize = 4;

/// The state a run starts from: its data, the initial model, and the RNG that shuffles every epoch.
pub struct RunStart {
    /// The generated dataset.
    pub data: ToyData,
    /// The model before the first step.
    pub model: ToyModel,
    /// Shuffles the training order, once per epoch, starting from the identity order.
    pub rng: StdRng,
}

/// Builds the starting state of `spec` on `device`: everything after it is determined by the training loop.
pub fn start(spec: &RunSpec, device: &Device) -> Result<RunStart, HeadError> {
    spec.head.validate()?;
    let data = generate(spec.dataset, spec.bins, spec.seed);
    // Same seed → same MLP init across heads, as with torch.manual_seed in the reference.
    let mut rng = StdRng::seed_from_u64(spec.seed ^ 0x9e37_79b9_7f4a_7c15);
    let model = ToyModel::new(&spec.head, spec.bins, &mut rng, device)?;
    Ok(RunStart { data, model, rng })
}

/// The training order of every epoch: the row order `0..n`, shuffled in place by `rng` once per epoch.
pub fn epoch_orders(mut rng: StdRng, n: usize, epochs: usize) -> impl Iterator<Item = Vec<u32>> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    (0..epochs).map(move |_| {
        order.shuffle(&mut rng);
        order.clone()
    })
}

/// A trained model with its training record.
pub struct Fitted {
    /// The model after the last step.
    pub model: ToyModel,
    /// Mean training loss of every epoch.
    pub epoch_losses: Vec<f64>,
    /// Optimiser steps taken.
    pub steps: usize,
}

/// Trains `model` with Adam on the rows `train_x` `[n, 2]` / `train_y`, one epoch per order of rows, minibatches of
/// `spec.batch_size` consecutive rows of the order; checks `stop` before every epoch. Runs on the host without a
/// graph ([`crate::direct`]) where the head allows, else on burn's autodiff graph ([`fit_graph`]).
pub fn fit(
    spec: &RunSpec,
    model: ToyModel,
    train_x: &[f32],
    train_y: &[usize],
    orders: impl IntoIterator<Item = Vec<u32>>,
    stop: &AtomicBool,
) -> Result<Fitted, RunError> {
    if let Some(host) = crate::direct::HostToy::new(spec, &model) {
        return host.fit(spec, model, train_x, train_y, orders, stop);
    }
    fit_graph(spec, model, train_x, train_y, orders, stop)
}

/// [`fit`] on burn's autodiff graph: the reference the host path is checked against, and the path of heads the
/// host path lacks.
pub fn fit_graph(
    spec: &RunSpec,
    model: ToyModel,
    train_x: &[f32],
    train_y: &[usize],
    orders: impl IntoIterator<Item = Vec<u32>>,
    stop: &AtomicBool,
) -> Result<Fitted, RunError> {
    let device = model.head_device();
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let n = train_y.len();
    let train_x = Tensor::<2>::from_data(TensorData::new(train_x.to_vec(), [n, 2]), &device);
    let train_y = Tensor::<1, Int>::from_data(
        TensorData::new(train_y.iter().map(|&y| y as i64).collect::<Vec<_>>(), [n]),
        &device,
    );
    let mut slot = Some(model);
    let (epoch_losses, steps) = train_epochs(spec, orders, stop, |chunk| {
        let model = slot.take().expect("the model is put back after every step");
        let idx = Tensor::<1, Int>::from_data(
            TensorData::new(chunk.iter().map(|&i| i as i64).collect::<Vec<_>>(), [chunk.len()]),
            &device,
        );
        let x = train_x.clone().select(0, idx.clone());
        let y = train_y.clone().select(0, idx);
        let loss = model.head.loss(model.features(x), y).total;
        let value = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        slot = Some(optim.step(spec.lr, model, grads));
        value
    })?;
    Ok(Fitted { model: slot.expect("the model is put back after every step"), epoch_losses, steps })
}

/// The epoch loop both paths share: `step` on every `spec.batch_size` rows of each epoch's order, `stop` checked
/// before every epoch; returns each epoch's mean loss and the steps taken, or the epoch whose mean is not finite.
pub(crate) fn train_epochs(
    spec: &RunSpec,
    orders: impl IntoIterator<Item = Vec<u32>>,
    stop: &AtomicBool,
    mut step: impl FnMut(&[u32]) -> f32,
) -> Result<(Vec<f64>, usize), RunError> {
    let mut steps = 0;
    let mut epoch_losses = Vec::new();
    for (epoch, order) in orders.into_iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            return Err(RunError::Interrupted);
        }
        let mut epoch_loss = 0.0f64;
        let mut batches = 0;
        for chunk in order.chunks(spec.batch_size) {
            epoch_loss += step(chunk) as f64;
            steps += 1;
            batches += 1;
        }
        let mean = epoch_loss / batches as f64;
        if !mean.is_finite() {
            return Err(RunError::NonFinite(spec.stem(), mean, epoch));
        }
        epoch_losses.push(mean);
    }
    Ok((epoch_losses, steps))
}

/// Trains and evaluates one run; checks `stop` once per epoch.
pub fn run(spec: &RunSpec, stop: &AtomicBool) -> Result<RunResult, RunError> {
    let device = frl_learner::backend::training_device();
    let RunStart { data, model, rng } = start(spec, &device)?;
    let started = Instant::now();
    let orders = epoch_orders(rng, data.train_y.len(), spec.epochs);
    let fitted = fit(spec, model, &data.train_x, &data.train_y, orders, stop)?;
    let train_seconds = started.elapsed().as_secs_f64();
    evaluate(spec, &fitted.model.valid(), &data, fitted.steps, train_seconds, fitted.epoch_losses)
}

fn evaluate(
    spec: &RunSpec,
    model: &ToyModel,
    data: &ToyData,
    steps: usize,
    train_seconds: f64,
    epoch_losses: Vec<f64>,
) -> Result<RunResult, RunError> {
    let m = spec.bins;
    let device = model.head_device();
    let n = data.test_y.len();
    let x = Tensor::<2>::from_data(TensorData::new(data.test_x.clone(), [n, 2]), &device);
    let logits = to_host(model.head.logits(model.features(x)));
    let pred = softmax_rows(&logits, m);
    let kl = kl_divergence(&data.test_pmf, &pred, m)?;
    let mse = expected_bin_mse(&pred, &data.test_y, m)?;
    let smooth = smoothness_rows(&pred, m)?;
    let examples = (0..EXAMPLES.min(n))
        .map(|i| Example {
            input: [data.test_x[2 * i], data.test_x[2 * i + 1]],
            truth: data.test_pmf[i * m..(i + 1) * m].to_vec(),
            predicted: pred[i * m..(i + 1) * m].to_vec(),
        })
        .collect();
    Ok(RunResult {
        spec: spec.clone(),
        kl,
        mse,
        smoothness_sum: smooth.iter().sum(),
        smoothness_sq_sum: smooth.iter().map(|s| s * s).sum(),
        smoothness_count: smooth.len(),
        final_train_loss: epoch_losses.last().copied().unwrap_or_default(),
        epoch_losses,
        steps,
        train_seconds,
        examples,
    })
}

impl ToyModel {
    fn head_device(&self) -> Device {
        self.l1.weight.val().device()
    }
}
