//! AdamW with decoupled weight decay on matmul weights only and clipping of the global gradient norm, with its
//! state kept by parameter name so that checkpoints can hold it.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::params::NamedTensor;

/// AdamW hyperparameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    /// `beta_1`.
    pub beta1: f64,
    /// `beta_2`.
    pub beta2: f64,
    /// Added to `sqrt(v_hat)`.
    pub eps: f64,
    /// Decoupled weight decay applied to the weights of linear layers only.
    pub weight_decay: f64,
    /// Clip the global gradient norm (over all parameters) to this; 0 disables clipping.
    pub grad_clip: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 1e-4, grad_clip: 0.25 }
    }
}

/// First and second moments of one parameter, flattened.
struct Moments {
    m: Tensor<1>,
    v: Tensor<1>,
}

/// AdamW over a module's parameters.
pub struct AdamW {
    config: AdamWConfig,
    /// Steps taken (for bias correction).
    pub t: u64,
    state: HashMap<String, Moments>,
    /// Steps between two flushes of subnormal moments (see [`flush`]).
    flush_every: u64,
}

/// What one optimiser step saw.
#[derive(Debug, Clone, Copy)]
pub struct StepStats {
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

impl AdamW {
    /// A fresh optimiser.
    pub fn new(config: AdamWConfig) -> Self {
        Self { config, t: 0, state: HashMap::new(), flush_every: FLUSH_EVERY }
    }

    /// Applies one update with learning rate `lr`, clipping by the global gradient norm `grad_norm` (`sqrt` of
    /// [`squared_norm`], read and checked to be finite by the caller).
    pub fn step<M: Module>(&mut self, lr: f64, module: M, grads: GradientsParams, grad_norm: f64) -> (M, StepStats) {
        let clip = if self.config.grad_clip > 0.0 && grad_norm > self.config.grad_clip {
            self.config.grad_clip / (grad_norm + 1e-6)
        } else {
            1.0
        };
        self.t += 1;
        let mut mapper = Update { opt: self, grads, lr, clip, path: Vec::new(), containers: Vec::new() };
        let module = module.map(&mut mapper);
        (module, StepStats { grad_norm })
    }

    /// The moments as named host arrays (`<param>.m`, `<param>.v`), sorted by name.
    pub fn state_tensors(&self) -> Vec<NamedTensor> {
        let mut names: Vec<&String> = self.state.keys().collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let s = &self.state[name];
            for (suffix, t) in [("m", &s.m), ("v", &s.v)] {
                let data = frl_heads::head::to_host(t.clone());
                out.push(NamedTensor { name: format!("{name}.{suffix}"), shape: vec![data.len()], data });
            }
        }
        out
    }

    /// Restores moments saved by [`AdamW::state_tensors`] onto `device`.
    pub fn load_state(&mut self, t: u64, tensors: &HashMap<String, NamedTensor>, device: &burn::tensor::Device) {
        self.t = t;
        self.state.clear();
        for (key, m) in tensors {
            let Some(name) = key.strip_suffix(".m") else { continue };
            let Some(v) = tensors.get(&format!("{name}.v")) else { continue };
            let to = |x: &NamedTensor| Tensor::<1>::from_floats(x.data.as_slice(), device);
            self.state.insert(name.to_string(), Moments { m: to(m), v: to(v) });
        }
    }
}

/// Steps between two flushes of subnormal moments by default (see [`flush`]).
const FLUSH_EVERY: u64 = 100;

/// `x` with its subnormal values set to 0. A moment whose gradient stays 0 (a dead ReLU's weights) decays into the
/// subnormals and, rounding to itself, stays there, and every operation on it takes the CPU's slow path (about 100
/// cycles a value on x86); a quarter of a C51 network's first moments were subnormal after 20k updates. Such a moment
/// moves its weight by less than `lr · 2⁻¹²⁶ / ε` and changes `√v` by less than 2⁻⁶³, so the weights are those
/// without the flush except, at most, in a last bit. Run every [`FLUSH_EVERY`] steps: its own cost is a few tensor
/// operations per parameter.
fn flush(x: Tensor<1>) -> Tensor<1> {
    let tiny = x.clone().abs().lower_elem(f32::MIN_POSITIVE);
    x.mask_fill(tiny, 0.0)
}

struct Update<'a> {
    opt: &'a mut AdamW,
    grads: GradientsParams,
    lr: f64,
    clip: f64,
    path: Vec<String>,
    containers: Vec<String>,
}

impl ModuleMapper for Update<'_> {
    fn enter_module(&mut self, name: &str, container: &str) {
        self.path.push(name.to_string());
        self.containers.push(container.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
        self.containers.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let name = self.path.join(".");
        // The parameter's own name is the last path element; its owner's container type is the one before it.
        let owner = self.containers.len().checked_sub(2).map(|i| self.containers[i].as_str());
        let decay = owner == Some("Struct:Linear") && self.path.last().is_some_and(|n| n == "weight");
        let c = &self.opt.config;
        let (b1, b2) = (c.beta1, c.beta2);
        let t = self.opt.t as i32;
        let dims = tensor.dims();
        let n: usize = dims.iter().product();
        let require_grad = tensor.is_require_grad();
        let p = tensor.inner().reshape([n]);
        let g = grad.reshape([n]).mul_scalar(self.clip);
        let state = self.opt.state.remove(&name);
        let (m, v) = match state {
            Some(s) => (s.m, s.v),
            None => (Tensor::zeros([n], &p.device()), Tensor::zeros([n], &p.device())),
        };
        let m = m.mul_scalar(b1) + g.clone().mul_scalar(1.0 - b1);
        let v = v.mul_scalar(b2) + g.powi_scalar(2).mul_scalar(1.0 - b2);
        let (m, v) = if self.opt.t.is_multiple_of(self.opt.flush_every) { (flush(m), flush(v)) } else { (m, v) };
        let m_hat = m.clone().div_scalar(1.0 - b1.powi(t));
        let v_hat = v.clone().div_scalar(1.0 - b2.powi(t));
        let mut p = if decay && c.weight_decay > 0.0 { p.mul_scalar(1.0 - self.lr * c.weight_decay) } else { p };
        p = p - m_hat.div(v_hat.sqrt().add_scalar(c.eps)).mul_scalar(self.lr);
        self.opt.state.insert(name, Moments { m, v });
        let mut out = Tensor::<D>::from_inner(p.reshape(dims));
        if require_grad {
            out = out.require_grad();
        }
        Param::from_mapped_value(id, out, mapper)
    }
}

/// `Σ ||g||²` over every parameter gradient in `grads`, `[1]`, as a tensor on the gradients' device (`None` without
/// gradients).
pub fn squared_norm<M: Module>(module: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
    struct Norm<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for Norm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.powi_scalar(2).sum();
                self.total = Some(match self.total.take() {
                    None => s,
                    Some(t) => t + s,
                });
            }
        }
    }
    let mut n = Norm { grads, total: None };
    module.visit(&mut n);
    n.total
}

#[cfg(test)]
mod tests {
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::TensorData;

    use super::*;

    /// Trains a 1 → 3 linear layer whose gradients stop after 5 steps; returns its weights and the number of
    /// subnormal moments after `steps` steps.
    fn silent_weights(flush_every: u64, steps: u64) -> (Vec<f32>, usize) {
        let device = crate::backend::training_device();
        let mut layer: Linear = LinearConfig::new(1, 3).with_bias(false).init(&device);
        layer.weight =
            Param::from_tensor(Tensor::from_data(TensorData::new(vec![0.5f32, -0.25, 1.0], [1, 3]), &device));
        let mut opt = AdamW::new(AdamWConfig { weight_decay: 0.0, grad_clip: 0.0, ..Default::default() });
        opt.flush_every = flush_every;
        let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32], [1, 1]), &device);
        for t in 1..=steps {
            let scale = if t <= 5 { 1e-3 } else { 0.0 };
            let loss = layer.forward(x.clone()).sum().mul_scalar(scale);
            let grads = GradientsParams::from_grads(loss.backward(), &layer);
            layer = opt.step(1e-3, layer, grads, 1.0).0;
        }
        let subnormal = opt.state_tensors().iter().flat_map(|t| t.data.clone()).filter(|v| v.is_subnormal()).count();
        (frl_heads::head::to_host(layer.weight.val().reshape([3])), subnormal)
    }

    /// Flushing subnormal moments leaves no subnormal moment behind and the weights bit for bit as without it.
    #[test]
    fn flushing_subnormal_moments_keeps_the_weights() {
        let (kept, subnormal_kept) = silent_weights(u64::MAX, 1000);
        let (flushed, subnormal_flushed) = silent_weights(FLUSH_EVERY, 1000);
        assert!(subnormal_kept > 0, "no moment became subnormal without the flush: the test checks nothing");
        assert_eq!(subnormal_flushed, 0);
        assert_eq!(kept, flushed);
    }
}
