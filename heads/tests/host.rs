//! The host heads (`frl_heads::host`) against the graph heads: the same loss and the same gradients, with respect to
//! the features and to every parameter, from the same parameter values.

mod common;

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Gradients, Tensor};
use common::{device, randn, targets, to_vec};
use frl_heads::host::{Adam, HostHead, HostParam};
use frl_heads::{FourierHeadConfig, Head, HeadConfig, MixtureHeadConfig};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Every float parameter of `module` by dotted path, with its value and (when `grads` is given) its gradient.
fn named<M: Module>(module: &M, grads: Option<&Gradients>) -> HashMap<String, (Vec<f32>, Vec<f32>)> {
    struct Collect<'a> {
        path: Vec<String>,
        grads: Option<&'a Gradients>,
        out: HashMap<String, (Vec<f32>, Vec<f32>)>,
    }
    impl ModuleVisitor for Collect<'_> {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let grad = self.grads.and_then(|g| param.val().grad(g)).map(to_vec).unwrap_or_default();
            // Drop the enum variant (`Fourier.linear.weight` → `linear.weight`).
            let name = self.path[1..].join(".");
            self.out.insert(name, (to_vec(param.val()), grad));
        }
    }
    let mut c = Collect { path: Vec::new(), grads, out: HashMap::new() };
    module.visit(&mut c);
    c.out
}

fn assert_close(what: &str, host: &[f32], graph: &[f32], tol: f32) {
    assert_eq!(host.len(), graph.len(), "{what}: lengths");
    let scale = graph.iter().fold(0.0f32, |a, b| a.max(b.abs()));
    assert!(scale > 0.0, "{what}: the graph's gradient vanishes");
    for (i, (h, g)) in host.iter().zip(graph).enumerate() {
        assert!((h - g).abs() <= tol * scale, "{what}[{i}]: host {h} vs graph {g} (scale {scale})");
    }
}

#[test]
fn host_heads_give_the_graph_heads_loss_and_gradients() {
    let dev = device();
    let configs = [
        (HeadConfig::Linear, 50),
        (HeadConfig::Fourier(FourierHeadConfig::new(12, 0.0)), 50),
        // A large γ, so that the regulariser's gradient is a visible part of the total.
        (HeadConfig::Fourier(FourierHeadConfig::new(12, 1e-2)), 50),
        (HeadConfig::Fourier(FourierHeadConfig { init_weight_div: 1.0, ..FourierHeadConfig::new(5, 0.3) }), 17),
        (HeadConfig::Mixture(MixtureHeadConfig::new(1)), 50),
        (HeadConfig::Mixture(MixtureHeadConfig::new(3)), 23),
        (HeadConfig::Mixture(MixtureHeadConfig::new(2)), 50),
    ];
    for (i, (config, bins)) in configs.iter().enumerate() {
        let (rows, d) = (32, 32);
        let mut rng = StdRng::seed_from_u64(40 + i as u64);
        let head = config.init(d, *bins, &mut rng, &dev).unwrap();
        let x = burn::tensor::activation::relu(randn(&mut rng, rows, d, &dev)).require_grad();
        let y = targets(&mut rng, rows, *bins, &dev);
        let loss = head.loss(x.clone(), y.clone());
        let reg = loss.regularizer.clone().map(|r| r.into_scalar::<f32>());
        let value = loss.total.clone().into_scalar::<f32>();
        let grads = loss.total.backward();
        let dx_graph = to_vec(x.grad(&grads).unwrap());
        let graph = named(&head, Some(&grads));

        let mut host = HostHead::new(config, d, *bins, |name| graph.get(name).map(|(v, _)| v.clone())).unwrap();
        let xs = to_vec(x.clone());
        let ys: Vec<usize> = to_vec(y.float()).iter().map(|&v| v as usize).collect();
        let mut dx = vec![0.0; rows * d];
        let host_value = host.loss_backward(&xs, &ys, &mut dx);
        assert!((host_value - value).abs() <= 2e-5 * value.abs().max(1.0), "{config}: loss {host_value} vs {value}");
        match (reg, host.regularizer(&xs)) {
            (Some(g), Some(h)) => assert!((g - h).abs() <= 1e-4 * g.abs(), "{config}: regulariser {h} vs {g}"),
            (None, None) => {}
            (g, h) => panic!("{config}: regulariser {h:?} on the host, {g:?} on the graph"),
        }
        assert_close(&format!("{config} d features"), &dx, &dx_graph, 1e-4);
        for p in host.params() {
            let (_, grad) = &graph[&p.name];
            assert_close(&format!("{config} d {}", p.name), &p.grad, grad, 1e-4);
        }
        assert_eq!(host.params().len(), graph.len(), "{config}: parameter count");
    }
}

#[test]
fn the_mixture_with_learned_weights_has_no_host_path() {
    let config = HeadConfig::Mixture(MixtureHeadConfig { learned_weights: true, ..MixtureHeadConfig::new(2) });
    assert!(!HostHead::supports(&config));
    assert!(HostHead::new(&config, 4, 8, |_| Some(vec![0.0; 8])).is_none());
}

/// burn's Adam and the host Adam take the same steps, bit for bit, from the same gradients.
#[test]
fn host_adam_steps_as_burns_adam() {
    use burn::optim::{AdamConfig, GradientsParams};
    let dev = device();
    let mut rng = StdRng::seed_from_u64(9);
    let mut head = HeadConfig::Linear.init(4, 5, &mut rng, &dev).unwrap();
    let x = randn(&mut rng, 3, 4, &dev);
    let y = targets(&mut rng, 3, 5, &dev);
    let start = named(&head, None);
    let mut params: Vec<HostParam> = ["linear.weight", "linear.bias"]
        .iter()
        .map(|n| HostParam::new(n, vec![start[*n].0.len()], start[*n].0.clone()))
        .collect();
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let mut host = Adam::new(1e-8);
    for _ in 0..4 {
        let loss = head.loss(x.clone(), y.clone()).total;
        let grads = loss.backward();
        let named_grads = named(&head, Some(&grads));
        for p in &mut params {
            p.grad = named_grads[&p.name].1.clone();
        }
        head = optim.step(1e-3, head.clone(), GradientsParams::from_grads(grads, &head));
        host.step(1e-3, params.iter_mut());
        let after = named(&head, None);
        for p in &params {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&p.value), bits(&after[&p.name].0), "{} after a step", p.name);
        }
    }
}
