//! [`Optimizers`]: one AdamW per named parameter group, the learning rate of the current step, and the NaN guard.

use std::collections::{BTreeMap, HashMap};

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use super::adamw::{AdamW, AdamWConfig, HostAdamW, HostTensor, squared_norm};
use super::params::{NamedTensor, update_with};
use super::shards::{ShardLoss, combine, threads_for};

/// A loss or gradient norm that is not finite; the learner stops before the update and names the last checkpoint.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the {what}{} became {value} at step {step}", group_suffix(.group))]
pub struct NonFinite {
    /// `loss` or `gradient norm`.
    pub what: &'static str,
    /// The optimiser group.
    pub group: String,
    /// The value seen.
    pub value: f64,
    /// The training step.
    pub step: u64,
}

fn group_suffix(group: &str) -> String {
    if group == DEFAULT_GROUP { String::new() } else { format!(" of `{group}`") }
}

/// The group name of an agent with one network.
pub const DEFAULT_GROUP: &str = "model";

/// One group's optimiser: on the graph's tensors, or on host arrays for agents that train a network without a graph
/// (their moments carry the same names, so a checkpoint of either resumes in the other).
enum Group {
    Graph(AdamW),
    Host(HostAdamW),
}

impl Group {
    fn state_tensors(&self) -> Vec<NamedTensor> {
        match self {
            Group::Graph(opt) => opt.state_tensors(),
            Group::Host(opt) => opt.state_tensors(),
        }
    }

    fn t(&self) -> u64 {
        match self {
            Group::Graph(opt) => opt.t,
            Group::Host(opt) => opt.t,
        }
    }

    fn by_name(&self) -> HashMap<String, NamedTensor> {
        self.state_tensors().into_iter().map(|t| (t.name.clone(), t)).collect()
    }
}

/// AdamW optimisers by group (one per network), all at the same learning rate; each clips its own global
/// gradient norm.
pub struct Optimizers {
    config: AdamWConfig,
    groups: BTreeMap<String, Group>,
    lr: f64,
    step: u64,
    poison_at: Option<u64>,
    grad_norms: Vec<(String, f64)>,
    shards: usize,
    threads: Option<usize>,
}

impl Optimizers {
    /// Fresh optimisers; groups appear on their first [`Optimizers::step`].
    pub fn new(config: AdamWConfig) -> Self {
        Self {
            config,
            groups: BTreeMap::new(),
            lr: 0.0,
            step: 0,
            poison_at: None,
            grad_norms: Vec::new(),
            shards: 1,
            threads: None,
        }
    }

    /// Splits agents' batches into `shards` parts that run in parallel ([`Optimizers::step_shards`]); 1 by default.
    pub fn with_shards(mut self, shards: usize) -> Self {
        self.shards = shards.max(1);
        self
    }

    /// Runs the parts on `threads` threads (default: one per part, at most the machine's cores); the results do
    /// not depend on it.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads.max(1));
        self
    }

    /// How many parts agents split a batch into for [`Optimizers::step_shards`].
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Makes the loss NaN at `step` (a testing aid for the NaN guard).
    pub fn poison_at(mut self, step: Option<u64>) -> Self {
        self.poison_at = step;
        self
    }

    /// Starts training step `step` (1-based) at learning rate `lr`.
    pub fn begin_step(&mut self, step: u64, lr: f64) {
        self.step = step;
        self.lr = lr;
        self.grad_norms.clear();
    }

    /// The current training step (1-based), as given to [`Optimizers::begin_step`].
    pub fn step_number(&self) -> u64 {
        self.step
    }

    /// The learning rate of the current step.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Minimises `loss` over `module`'s parameters with group `group`'s AdamW: back-propagates, reads the loss and
    /// the group's global gradient norm in one transfer (a non-finite one is a [`NonFinite`] error and the module is
    /// not updated), clips that norm, updates `module` in place. Returns the loss value.
    ///
    /// One read per step, after the backward pass is queued: on an asynchronous device the host waits once, for
    /// forward and backward together.
    pub fn step<M: Module>(&mut self, group: &str, module: &mut M, loss: Tensor<1>) -> anyhow::Result<f64> {
        let (value, _) = self.step_reading(group, module, loss, Vec::new())?;
        Ok(value)
    }

    /// [`Optimizers::step`] that also reads the `[1]` tensors `scalars` (values for logging, untracked) in the same
    /// transfer and returns them, in order: a step's logged values cost no read of their own.
    pub fn step_reading<M: Module>(
        &mut self,
        group: &str,
        module: &mut M,
        loss: Tensor<1>,
        scalars: Vec<Tensor<1>>,
    ) -> anyhow::Result<(f64, Vec<f64>)> {
        let value = loss.clone().detach();
        let scalars = scalars.into_iter().map(|t| t.detach()).collect();
        let grads = GradientsParams::from_grads(loss.backward(), &*module);
        update_with(module, |m| self.update(group, m, grads, value, scalars))
    }

    /// [`Optimizers::step_reading`] for a batch split into parts: `forward` gives each part's loss and scalars (means
    /// over its rows), the parts run on parallel threads, and each part's loss, gradients and scalars count with its
    /// `weight` (its share of the batch's rows; the weights sum to 1). One part is an ordinary step.
    pub fn step_shards<M, S, F>(
        &mut self,
        group: &str,
        module: &mut M,
        parts: Vec<(S, f64)>,
        forward: F,
    ) -> anyhow::Result<(f64, Vec<f64>)>
    where
        M: Module + Sync,
        S: Send,
        F: Fn(&M, S) -> ShardLoss + Sync,
    {
        if parts.len() <= 1 {
            let (part, _) = parts.into_iter().next().ok_or_else(|| anyhow::anyhow!("a step needs a batch"))?;
            let out = forward(module, part);
            return self.step_reading(group, module, out.loss, out.scalars);
        }
        let threads = self.threads.unwrap_or_else(|| threads_for(parts.len()));
        let combined = combine(module, parts, threads, forward);
        update_with(module, |m| self.update(group, m, combined.grads, combined.loss, combined.scalars))
    }

    /// Reads the loss, `scalars` and the gradient norm in one transfer, stops on a non-finite loss or norm (the
    /// module comes back unchanged with the error), clips and updates.
    fn update<M: Module>(
        &mut self,
        group: &str,
        module: M,
        grads: GradientsParams,
        loss: Tensor<1>,
        scalars: Vec<Tensor<1>>,
    ) -> (M, anyhow::Result<(f64, Vec<f64>)>) {
        let loss = if self.poison_at == Some(self.step) { loss.mul_scalar(f32::NAN) } else { loss };
        let n_scalars = scalars.len();
        let mut read = vec![loss];
        read.extend(scalars);
        read.extend(squared_norm(&module, &grads));
        let read: Vec<f64> = frl_heads::head::to_host(Tensor::cat(read, 0)).into_iter().map(f64::from).collect();
        let value = read[0];
        let scalars = read[1..1 + n_scalars].to_vec();
        let grad_norm = read.get(1 + n_scalars).map(|n| n.sqrt()).unwrap_or(0.0);
        let non_finite = |what, value| NonFinite { what, group: group.to_string(), value, step: self.step };
        if !value.is_finite() {
            return (module, Err(non_finite("loss", value).into()));
        }
        if !grad_norm.is_finite() {
            return (module, Err(non_finite("gradient norm", grad_norm).into()));
        }
        let slot =
            self.groups.entry(group.to_string()).or_insert_with(|| Group::Graph(AdamW::new(self.config.clone())));
        if let (Group::Host(_), Some(device)) = (&*slot, module.devices().first()) {
            let mut opt = AdamW::new(self.config.clone());
            opt.load_state(slot.t(), &slot.by_name(), &device.clone().inner());
            *slot = Group::Graph(opt);
        }
        // A module without parameters (no device) has nothing to update.
        let Group::Graph(opt) = slot else { return (module, Ok((value, scalars))) };
        let (module, stats) = opt.step(self.lr, module, grads, grad_norm);
        self.grad_norms.push((group.to_string(), stats.grad_norm));
        (module, Ok((value, scalars)))
    }

    /// [`Optimizers::step`] for a network trained on the host: `loss` and the gradients in `params` were computed
    /// by the caller. Stops on a non-finite loss or gradient norm (nothing is updated), clips the group's global
    /// gradient norm and updates the values in place. Returns the loss.
    pub fn step_host(&mut self, group: &str, loss: f64, params: Vec<HostTensor<'_>>) -> anyhow::Result<f64> {
        let loss = if self.poison_at == Some(self.step) { loss * f64::NAN } else { loss };
        let squared: f64 = params.iter().flat_map(|p| p.grad.iter()).map(|&g| f64::from(g) * f64::from(g)).sum();
        let grad_norm = squared.sqrt();
        let non_finite = |what, value| NonFinite { what, group: group.to_string(), value, step: self.step };
        if !loss.is_finite() {
            return Err(non_finite("loss", loss).into());
        }
        if !grad_norm.is_finite() {
            return Err(non_finite("gradient norm", grad_norm).into());
        }
        let slot =
            self.groups.entry(group.to_string()).or_insert_with(|| Group::Host(HostAdamW::new(self.config.clone())));
        if let Group::Graph(_) = slot {
            let mut opt = HostAdamW::new(self.config.clone());
            opt.load_state(slot.t(), &slot.by_name());
            *slot = Group::Host(opt);
        }
        let Group::Host(opt) = slot else { unreachable!("a graph group was converted just above") };
        let stats = opt.step(self.lr, params, grad_norm);
        self.grad_norms.push((group.to_string(), stats.grad_norm));
        Ok(loss)
    }

    /// Gradient norms (before clipping) of the groups stepped in the current step.
    pub fn grad_norms(&self) -> &[(String, f64)] {
        &self.grad_norms
    }

    /// Every group's moments as named host arrays (`<group>.<param>.m|v`), sorted.
    pub fn state_tensors(&self) -> Vec<NamedTensor> {
        let mut out = Vec::new();
        for (group, opt) in &self.groups {
            for mut t in opt.state_tensors() {
                t.name = format!("{group}.{}", t.name);
                out.push(t);
            }
        }
        out
    }

    /// Restores moments saved by [`Optimizers::state_tensors`] after `t` steps (moved to the training device on the
    /// group's first graph step).
    pub fn load_state(&mut self, t: u64, tensors: &HashMap<String, NamedTensor>) {
        let mut by_group: BTreeMap<&str, HashMap<String, NamedTensor>> = BTreeMap::new();
        for (key, tensor) in tensors {
            if let Some((group, rest)) = key.split_once('.') {
                by_group.entry(group).or_default().insert(rest.to_string(), tensor.clone());
            }
        }
        self.groups.clear();
        for (group, state) in by_group {
            // On the host until a graph step asks for tensors: which kind of step comes next is not known here.
            let mut opt = HostAdamW::new(self.config.clone());
            opt.load_state(t, &state);
            self.groups.insert(group.to_string(), Group::Host(opt));
        }
    }
}
