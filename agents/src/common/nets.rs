//! Network pieces several agents share: MLP layers, target networks (detached copies, Polyak averaging), integer
//! tensors read back to the host.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::nn::Linear;
use burn::tensor::activation::{relu, tanh};
use burn::tensor::{Device, Tensor, TensorData};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The nonlinearity after each hidden layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `max(0, x)`.
    #[default]
    Relu,
    /// `tanh(x)` (CleanRL's PPO networks).
    Tanh,
}

impl Activation {
    /// The nonlinearity applied to `x`.
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Relu => relu(x),
            Activation::Tanh => tanh(x),
        }
    }
}

/// A linear layer `d_in → d_out` with an orthogonal weight times `gain` and a zero bias (PyTorch's
/// `nn.init.orthogonal_` as CleanRL's `layer_init`): the Q factor of a standard normal matrix, signs fixed by R's
/// diagonal, drawn from `rng`.
pub fn orthogonal_linear(d_in: usize, d_out: usize, gain: f64, rng: &mut dyn RngCore, device: &Device) -> Linear {
    use rand_distr::{Distribution, StandardNormal};
    // Orthonormal columns of a tall matrix: `rows ≥ cols`, transposed back when the weight is wide.
    let (rows, cols) = (d_in.max(d_out), d_in.min(d_out));
    let mut a: Vec<Vec<f64>> =
        (0..cols).map(|_| (0..rows).map(|_| StandardNormal.sample(&mut *rng)).collect()).collect();
    // Modified Gram–Schmidt; the sign of each column follows R's diagonal (the norm is positive), as a QR with a
    // sign-corrected Q.
    for j in 0..cols {
        for k in 0..j {
            let (done, rest) = a.split_at_mut(j);
            let (col, prev) = (&mut rest[0], &done[k]);
            let dot: f64 = col.iter().zip(prev).map(|(x, y)| x * y).sum();
            col.iter_mut().zip(prev).for_each(|(x, y)| *x -= dot * y);
        }
        let norm = a[j].iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        a[j].iter_mut().for_each(|x| *x /= norm);
    }
    // burn's weight is `[d_in, d_out]`: entry (i, o).
    let mut w = vec![0f32; d_in * d_out];
    for (i, row) in w.chunks_mut(d_out).enumerate() {
        for (o, v) in row.iter_mut().enumerate() {
            let q = if d_in >= d_out { a[o][i] } else { a[i][o] };
            *v = (q * gain) as f32;
        }
    }
    let mut layer = frl_heads::init::linear(d_in, d_out, 1.0, 1.0, rng, device);
    layer.weight = Param::from_tensor(Tensor::from_data(TensorData::new(w, [d_in, d_out]), device));
    layer.bias = Some(Param::from_tensor(Tensor::zeros([d_out], device)));
    layer
}

/// Linear layers `d_in → hidden… (→ out)`: PyTorch's default init, or with `orthogonal` CleanRL's (gain √2 for
/// the hidden layers, `out_gain` for the output layer, zero biases); drawn from `rng`.
pub fn mlp_layers_init(
    d_in: usize,
    hidden: &[usize],
    out: Option<(usize, f64)>,
    orthogonal: bool,
    rng: &mut dyn RngCore,
    device: &Device,
) -> Vec<Linear> {
    if !orthogonal {
        return mlp_layers(d_in, hidden, out.map(|o| o.0), rng, device);
    }
    let mut sizes = vec![d_in];
    sizes.extend_from_slice(hidden);
    let mut layers: Vec<Linear> =
        sizes.windows(2).map(|w| orthogonal_linear(w[0], w[1], std::f64::consts::SQRT_2, rng, device)).collect();
    if let Some((n, gain)) = out {
        layers.push(orthogonal_linear(*sizes.last().expect("d_in at least"), n, gain, rng, device));
    }
    layers
}

/// Linear layers `d_in → hidden… (→ out)` with PyTorch's default init drawn from `rng`.
pub fn mlp_layers(
    d_in: usize,
    hidden: &[usize],
    out: Option<usize>,
    rng: &mut dyn RngCore,
    device: &Device,
) -> Vec<Linear> {
    let mut sizes = vec![d_in];
    sizes.extend_from_slice(hidden);
    sizes.extend(out);
    sizes.windows(2).map(|w| frl_heads::init::linear(w[0], w[1], 1.0, 1.0, rng, device)).collect()
}

/// A copy of `module` with its own parameter ids that no gradient reaches (a target network).
pub fn detached_copy<M: Module>(module: &M) -> M {
    struct Fresh;
    impl ModuleMapper for Fresh {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            Param::from_tensor(param.val().detach())
        }
    }
    module.clone().map(&mut Fresh).no_grad()
}

/// `target ← (1 − rate)·target + rate·source`, parameter by parameter (the two share a structure).
pub fn polyak<M: Module>(target: M, source: &M, rate: f64) -> M {
    struct Collect(Vec<Tensor<1>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val().detach();
            let n: usize = t.dims().iter().product();
            self.0.push(t.reshape([n]));
        }
    }
    struct Blend {
        source: std::vec::IntoIter<Tensor<1>>,
        rate: f64,
    }
    impl ModuleMapper for Blend {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, t, mapper) = param.consume();
            let s = self.source.next().expect("target and source share a structure");
            let dims = t.dims();
            let blended = t.detach().mul_scalar(1.0 - self.rate) + s.reshape(dims).mul_scalar(self.rate);
            Param::from_mapped_value(id, blended, mapper)
        }
    }
    let mut c = Collect(Vec::new());
    source.visit(&mut c);
    target.map(&mut Blend { source: c.0.into_iter(), rate })
}

/// An integer tensor's values on the host.
pub fn int_to_host<const D: usize>(t: burn::tensor::Tensor<D, burn::tensor::Int>) -> anyhow::Result<Vec<i64>> {
    t.into_data().try_to_vec_as::<i64>().map_err(|e| anyhow::anyhow!("reading an integer tensor: {e:?}"))
}
