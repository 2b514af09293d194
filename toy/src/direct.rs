//! The toy run trained on the host without a graph: the same MLP, head, loss, batches and Adam as
//! [`crate::train::fit_graph`], with forward, backward and the optimiser written out ([`frl_heads::host`]). A step
//! at batch 32 is its arithmetic plus a few loops, where the graph path spends most of its time per operation.
//! Results equal the graph path's to float rounding (sums run in another order); `toy/tests/toy.rs` compares them.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use frl_heads::host::{Adam, HostHead, HostParam, dense, variant_name};
use frl_learner::params::{NamedTensor, load_params, named_params};

use crate::train::{Fitted, RunError, RunSpec, ToyModel};

/// Hidden sizes of the toy MLP.
const H1: usize = 64;
const H2: usize = 32;

/// The toy model as host parameters, with the buffers of one step.
pub struct HostToy {
    l1w: HostParam,
    l1b: HostParam,
    l2w: HostParam,
    l2b: HostParam,
    head: HostHead,
    h1: Vec<f32>,
    h2: Vec<f32>,
    d_h1: Vec<f32>,
    d_h2: Vec<f32>,
    l2w_t: Vec<f32>,
    x: Vec<f32>,
    y: Vec<usize>,
    optim: Adam,
}

impl HostToy {
    /// The host copy of `model` (a model of `spec`); `None` when the head has no host path.
    pub fn new(spec: &RunSpec, model: &ToyModel) -> Option<Self> {
        let values: HashMap<String, NamedTensor> =
            named_params(model).into_iter().map(|p| (p.name.clone(), p)).collect();
        let take = |name: &str, shape: Vec<usize>| {
            let p = values.get(name)?;
            (p.shape == shape).then(|| HostParam::new(name, shape, p.data.clone()))
        };
        let prefix = format!("head.{}.", variant_name(&spec.head));
        let head = HostHead::new(&spec.head, H2, spec.bins, |name| {
            values.get(&format!("{prefix}{name}")).map(|p| p.data.clone())
        })?;
        Some(Self {
            l1w: take("l1.weight", vec![2, H1])?,
            l1b: take("l1.bias", vec![H1])?,
            l2w: take("l2.weight", vec![H1, H2])?,
            l2b: take("l2.bias", vec![H2])?,
            head,
            h1: Vec::new(),
            h2: Vec::new(),
            d_h1: Vec::new(),
            d_h2: Vec::new(),
            l2w_t: vec![0.0; H1 * H2],
            x: Vec::new(),
            y: Vec::new(),
            optim: Adam::new(1e-8),
        })
    }

    /// One step's loss and gradients (added to the parameters' `grad`) on the rows `batch` of the training set.
    fn loss_backward(&mut self, train_x: &[f32], train_y: &[usize], batch: &[u32]) -> f32 {
        let rows = batch.len();
        self.x.clear();
        self.y.clear();
        for &i in batch {
            let i = i as usize;
            self.x.extend_from_slice(&train_x[2 * i..2 * i + 2]);
            self.y.push(train_y[i]);
        }
        self.h1.resize(rows * H1, 0.0);
        self.h2.resize(rows * H2, 0.0);
        self.d_h1.resize(rows * H1, 0.0);
        self.d_h2.resize(rows * H2, 0.0);
        dense::linear(&self.x, &self.l1w.value, &self.l1b.value, &mut self.h1, 2, H1);
        relu(&mut self.h1);
        dense::linear(&self.h1, &self.l2w.value, &self.l2b.value, &mut self.h2, H1, H2);
        relu(&mut self.h2);
        let loss = self.head.loss_backward(&self.h2, &self.y, &mut self.d_h2);
        relu_backward(&self.h2, &mut self.d_h2);
        dense::linear_backward_params(&self.h1, &self.d_h2, &mut self.l2w.grad, &mut self.l2b.grad, H1, H2);
        dense::transpose(&self.l2w.value, &mut self.l2w_t, H1, H2);
        dense::linear_backward_input(&self.d_h2, &self.l2w_t, &mut self.d_h1, H1, H2);
        relu_backward(&self.h1, &mut self.d_h1);
        dense::linear_backward_params(&self.x, &self.d_h1, &mut self.l1w.grad, &mut self.l1b.grad, 2, H1);
        loss
    }

    /// One training step (loss, gradients, Adam) on the rows `batch` of the training set; returns the loss.
    pub fn step(&mut self, train_x: &[f32], train_y: &[usize], batch: &[u32], lr: f64) -> f32 {
        for p in self.params_mut() {
            p.grad.fill(0.0);
        }
        let loss = self.loss_backward(train_x, train_y, batch);
        let params =
            [&mut self.l1w, &mut self.l1b, &mut self.l2w, &mut self.l2b].into_iter().chain(self.head.params_mut());
        self.optim.step(lr, params);
        loss
    }

    fn params_mut(&mut self) -> impl Iterator<Item = &mut HostParam> {
        [&mut self.l1w, &mut self.l1b, &mut self.l2w, &mut self.l2b].into_iter().chain(self.head.params_mut())
    }

    /// The graph model with this model's values.
    fn into_model(self, spec: &RunSpec, model: ToyModel) -> ToyModel {
        let prefix = format!("head.{}.", variant_name(&spec.head));
        let mut values: HashMap<String, NamedTensor> = HashMap::new();
        for p in [&self.l1w, &self.l1b, &self.l2w, &self.l2b] {
            values.insert(
                p.name.clone(),
                NamedTensor { name: p.name.clone(), shape: p.shape.clone(), data: p.value.clone() },
            );
        }
        for p in self.head.params() {
            let name = format!("{prefix}{}", p.name);
            values.insert(name.clone(), NamedTensor { name, shape: p.shape.clone(), data: p.value.clone() });
        }
        load_params(model, &values).expect("the host model holds every parameter of the graph model")
    }
}

fn relu(x: &mut [f32]) {
    for v in x {
        *v = v.max(0.0);
    }
}

/// Zeroes the gradient where the ReLU's output was 0.
fn relu_backward(out: &[f32], grad: &mut [f32]) {
    for (g, &o) in grad.iter_mut().zip(out) {
        if o <= 0.0 {
            *g = 0.0;
        }
    }
}

impl HostToy {
    /// Trains as [`crate::train::fit_graph`] does, from this copy of `model`, and returns `model` with the result.
    pub fn fit(
        mut self,
        spec: &RunSpec,
        model: ToyModel,
        train_x: &[f32],
        train_y: &[usize],
        orders: impl IntoIterator<Item = Vec<u32>>,
        stop: &AtomicBool,
    ) -> Result<Fitted, RunError> {
        let (epoch_losses, steps) =
            crate::train::train_epochs(spec, orders, stop, |chunk| self.step(train_x, train_y, chunk, spec.lr))?;
        Ok(Fitted { model: self.into_model(spec, model), epoch_losses, steps })
    }
}
