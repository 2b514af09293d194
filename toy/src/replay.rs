//! One run's exact starting point — data, initial parameters and every epoch's batch order — so that another
//! implementation (the PyTorch reference, `scripts/toy_torch_replay.py`) can train the very same run.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::train::{RunSpec, RunStart, epoch_orders, start};
use frl_heads::HeadError;
use frl_learner::params::{NamedTensor, named_params};

/// Everything another implementation needs to train `spec` exactly as `frl toy` does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Replay {
    /// The run.
    pub spec: RunSpec,
    /// Train inputs, `[n, 2]` row-major bin indices as floats.
    pub train_x: Vec<f32>,
    /// Train targets (bin indices).
    pub train_y: Vec<usize>,
    /// Test inputs, `[n_test, 2]`.
    pub test_x: Vec<f32>,
    /// True test PMFs, `[n_test, m]`.
    pub test_pmf: Vec<f64>,
    /// The model's parameters before the first step, by module path (`l1.weight`, `head.Mixture.means.bias`, ...);
    /// a linear layer's weight is `[d_in, d_out]` (the transpose of PyTorch's).
    pub params: Vec<NamedTensor>,
    /// Each epoch's order of training rows; minibatches are consecutive `batch_size` slices of it.
    pub orders: Vec<Vec<u32>>,
}

/// The starting point of `spec`, with the batch order of all its epochs.
pub fn export(spec: &RunSpec, device: &Device) -> Result<Replay, HeadError> {
    let RunStart { data, model, rng } = start(spec, device)?;
    let params = named_params(&model);
    let orders = epoch_orders(rng, data.train_y.len(), spec.epochs).collect();
    Ok(Replay {
        spec: spec.clone(),
        train_x: data.train_x,
        train_y: data.train_y,
        test_x: data.test_x,
        test_pmf: data.test_pmf,
        params,
        orders,
    })
}
