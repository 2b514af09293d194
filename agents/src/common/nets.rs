//! Network pieces several agents share: MLP layers, target networks (detached copies, Polyak averaging), integer
//! tensors read back to the host.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use rand::RngCore;

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
