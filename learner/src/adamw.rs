//! AdamW with decoupled weight decay on matmul weights only and clipping of the global gradient norm, with its
//! state kept by parameter name so that checkpoints can hold it.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::params::NamedTensor;

/// AdamW hyperparameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// One parameter of a group trained on the host (no graph): its name (as the graph module's, so that moments in
/// checkpoints are interchangeable with [`AdamW`]'s), values, gradient and whether weight decay applies.
pub struct HostTensor<'a> {
    /// Dotted module path, e.g. `layers.0.weight`.
    pub name: &'a str,
    /// Values, updated in place.
    pub value: &'a mut [f32],
    /// Gradient of the current step.
    pub grad: &'a [f32],
    /// Whether decoupled weight decay applies (the weights of linear layers).
    pub decay: bool,
}

/// [`AdamW`] over host arrays: the same update, operation for operation in f32 (constants rounded from f64 as the
/// graph's scalar operations round them), the same subnormal flush, moments under the same names.
pub struct HostAdamW {
    config: AdamWConfig,
    /// Steps taken (for bias correction).
    pub t: u64,
    state: HashMap<String, (Vec<f32>, Vec<f32>)>,
    flush_every: u64,
}

impl HostAdamW {
    /// A fresh optimiser.
    pub fn new(config: AdamWConfig) -> Self {
        Self { config, t: 0, state: HashMap::new(), flush_every: FLUSH_EVERY }
    }

    /// Applies one update with learning rate `lr`, clipping by the global gradient norm `grad_norm`.
    pub fn step(&mut self, lr: f64, params: Vec<HostTensor<'_>>, grad_norm: f64) -> StepStats {
        let c = &self.config;
        let clip = if c.grad_clip > 0.0 && grad_norm > c.grad_clip { c.grad_clip / (grad_norm + 1e-6) } else { 1.0 };
        self.t += 1;
        let t = self.t as i32;
        let (b1, b2) = (c.beta1, c.beta2);
        let k = HostConstants {
            clip: clip as f32,
            b1: b1 as f32,
            f1: (1.0 - b1) as f32,
            b2: b2 as f32,
            f2: (1.0 - b2) as f32,
            c1: (1.0 - b1.powi(t)) as f32,
            c2: (1.0 - b2.powi(t)) as f32,
            eps: c.eps as f32,
            lr: lr as f32,
            keep: (1.0 - lr * c.weight_decay) as f32,
            flush: self.t.is_multiple_of(self.flush_every),
        };
        let decays = c.weight_decay > 0.0;
        for p in params {
            let n = p.value.len();
            let (m, v) = self.state.entry(p.name.to_string()).or_insert_with(|| (vec![0.0; n], vec![0.0; n]));
            if m.len() != n {
                *m = vec![0.0; n];
                *v = vec![0.0; n];
            }
            k.apply(p.value, p.grad, m, v, p.decay && decays);
        }
        StepStats { grad_norm }
    }

    /// The moments as named host arrays (`<param>.m`, `<param>.v`), sorted by name.
    pub fn state_tensors(&self) -> Vec<NamedTensor> {
        let mut names: Vec<&String> = self.state.keys().collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let (m, v) = &self.state[name];
            for (suffix, data) in [("m", m), ("v", v)] {
                out.push(NamedTensor { name: format!("{name}.{suffix}"), shape: vec![data.len()], data: data.clone() });
            }
        }
        out
    }

    /// Restores moments saved by [`HostAdamW::state_tensors`] or [`AdamW::state_tensors`] after `t` steps.
    pub fn load_state(&mut self, t: u64, tensors: &HashMap<String, NamedTensor>) {
        self.t = t;
        self.state.clear();
        for (key, m) in tensors {
            let Some(name) = key.strip_suffix(".m") else { continue };
            let Some(v) = tensors.get(&format!("{name}.v")) else { continue };
            self.state.insert(name.to_string(), (m.data.clone(), v.data.clone()));
        }
    }
}

/// The f32 constants of one [`HostAdamW`] step.
#[derive(Clone, Copy)]
struct HostConstants {
    clip: f32,
    b1: f32,
    f1: f32,
    b2: f32,
    f2: f32,
    c1: f32,
    c2: f32,
    eps: f32,
    lr: f32,
    keep: f32,
    flush: bool,
}

impl HostConstants {
    /// Updates one parameter and its moments, in the graph update's order of operations.
    fn apply(self, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], decay: bool) {
        let n = p.len();
        let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
        let flush = |x: f32| if self.flush && x.abs() < f32::MIN_POSITIVE { 0.0 } else { x };
        for i in 0..n {
            let gi = g[i] * self.clip;
            let mi = flush(m[i] * self.b1 + gi * self.f1);
            let vi = flush(v[i] * self.b2 + gi * gi * self.f2);
            m[i] = mi;
            v[i] = vi;
            let m_hat = mi / self.c1;
            let v_hat = vi / self.c2;
            let pi = if decay { p[i] * self.keep } else { p[i] };
            p[i] = pi - m_hat / (v_hat.sqrt() + self.eps) * self.lr;
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
        // The parameter's own name is the last path element, entered with the type of the module that holds it.
        let owner = self.containers.last().map(String::as_str);
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
    use burn::module::Module;
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

    /// One step of the graph AdamW and of the host AdamW from the same values, gradients and moments: the same
    /// bits, with weight decay on the linear layers' weights (in a `Vec`, as networks hold them) and not on biases.
    #[test]
    fn host_and_graph_adamw_take_the_same_step() {
        #[derive(Module, Debug)]
        struct Net {
            layers: Vec<Linear>,
        }
        let device = crate::backend::training_device();
        let mut net =
            Net { layers: vec![LinearConfig::new(3, 4).init(&device), LinearConfig::new(4, 2).init(&device)] };
        let config = AdamWConfig { weight_decay: 0.3, grad_clip: 0.5, ..Default::default() };
        let mut graph = AdamW::new(config.clone());
        let mut host = HostAdamW::new(config);
        let x = Tensor::<2>::from_data(TensorData::new(vec![0.5f32, -1.0, 2.0, 1.5, 0.25, -0.75], [2, 3]), &device);
        for step in 0..3 {
            let before = crate::params::named_params(&net);
            let loss = net.layers[1].forward(net.layers[0].forward(x.clone())).powi_scalar(2).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            let mut host_grads = Vec::new();
            for (i, l) in net.layers.iter().enumerate() {
                let g = |p: &Param<Tensor<2>>| frl_heads::head::to_host(grads.get::<2>(p.id).unwrap().reshape([-1]));
                let b = |p: &Param<Tensor<1>>| frl_heads::head::to_host(grads.get::<1>(p.id).unwrap());
                host_grads.push((format!("layers.{i}.weight"), g(&l.weight)));
                host_grads.push((format!("layers.{i}.bias"), b(l.bias.as_ref().unwrap())));
            }
            let norm = squared_norm(&net, &grads).map(|t| f64::from(frl_heads::head::to_host(t)[0]).sqrt()).unwrap();
            net = graph.step(1e-2, net, grads, norm).0;
            let mut values: Vec<(String, Vec<f32>)> = host_grads
                .iter()
                .map(|(n, _)| (n.clone(), before.iter().find(|p| &p.name == n).unwrap().data.clone()))
                .collect();
            let params = values
                .iter_mut()
                .zip(&host_grads)
                .map(|((name, value), (_, grad))| HostTensor { name, value, grad, decay: name.ends_with("weight") })
                .collect();
            host.step(1e-2, params, norm);
            let after = crate::params::named_params(&net);
            for (name, value) in &values {
                let graph_value = &after.iter().find(|p| &p.name == name).unwrap().data;
                assert_eq!(value, graph_value, "step {step}: {name}");
            }
        }
    }
}
