//! The DQN / C51 update on the host (no graph) against the graph path it replaces: the same batches from the same
//! start give the same losses, Q-values and parameters to float rounding, step after step; checkpoints and optimiser
//! moments move between the two paths.

use std::collections::HashMap;

use burn::tensor::Device;
use frl_agents::dqn::{Dqn, DqnConfig};
use frl_dataset::episodes::{EpisodeBatch, EpisodeTag};
use frl_dataset::transitions::Transitions;
use frl_heads::HeadConfig;
use frl_learner::params::NamedTensor;
use frl_learner::{AdamWConfig, DataSpec, OnlineAgent, Optimizers, Trainable};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn spec() -> DataSpec {
    DataSpec {
        env: "CartPole-v1".into(),
        obs_dim: 4,
        action_space: frl_envs::Space::Discrete(3),
        obs_mean: vec![0.0; 4],
        obs_std: vec![1.0; 4],
        best_return: 0.0,
    }
}

/// An agent of `config` drawn from seed 7, and a replay of random transitions (some terminal) it trains on.
fn agent_and_data(config: &DqnConfig) -> (Dqn, Transitions) {
    let device = Device::flex().autodiff();
    let mut rng = StdRng::seed_from_u64(7);
    let agent = Dqn::new(config, &spec(), &mut rng, &device).unwrap();
    let mut episodes = EpisodeBatch::new(4, 1);
    for e in 0..12u64 {
        let obs = |rng: &mut StdRng| (0..4).map(|_| rng.random_range(-2.0..2.0)).collect::<Vec<f32>>();
        episodes.begin(&obs(&mut rng));
        let len = 20 + 7 * e as usize;
        for t in 0..len {
            let a = frl_envs::Action::Discrete(rng.random_range(0..3));
            let r = rng.random_range(-1.0..3.0);
            episodes.record(&a, r, &obs(&mut rng), t + 1 == len && e % 2 == 0, t + 1 == len && e % 2 == 1);
        }
        episodes.finish(EpisodeTag { index: e, seed: e, policy_version: 0 });
    }
    let mut replay = agent.replay(10_000).unwrap();
    agent.insert(&mut replay, &episodes).unwrap();
    (agent, replay)
}

fn by_name(params: Vec<NamedTensor>) -> HashMap<String, NamedTensor> {
    params.into_iter().map(|p| (p.name.clone(), p)).collect()
}

fn max_difference(a: &HashMap<String, NamedTensor>, b: &HashMap<String, NamedTensor>) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut worst = 0.0f32;
    for (name, p) in a {
        let q = &b[name];
        assert_eq!(p.shape, q.shape, "{name}");
        for (x, y) in p.data.iter().zip(&q.data) {
            worst = worst.max((x - y).abs());
        }
    }
    worst
}

/// Trains a host agent of `config` for 30 steps; before each step a graph agent takes the host's parameters and
/// optimiser moments and makes the same step on the same batch. Returns the largest differences of logged values and
/// gradient norms (relative) and of the parameters after a step.
///
/// Each step starts from equal values: Adam turns rounding-sized gradients of near-dead units into full-sized steps,
/// so two paths trained apart for many steps drift by about the learning rate whatever their correctness.
fn step_by_step(config: &DqnConfig) -> (f64, f32) {
    let (mut host, replay) = agent_and_data(config);
    let (graph, _) = agent_and_data(config);
    let mut graph = graph.on_graph();
    assert!(host.on_host(), "this network has a host path on the CPU");
    assert!(!graph.on_host());
    assert_eq!(max_difference(&by_name(host.params()), &by_name(graph.params())), 0.0);
    let adam = AdamWConfig { weight_decay: 1e-2, grad_clip: 0.5, ..Default::default() };
    let mut opt_h = Optimizers::new(adam.clone());
    let device = Device::flex().autodiff();
    let mut rng = StdRng::seed_from_u64(3);
    let (mut worst_logged, mut worst_param) = (0.0f64, 0.0f32);
    for step in 1..=30u64 {
        graph = graph.load_params(&by_name(host.params())).unwrap();
        let mut opt_g = Optimizers::new(adam.clone());
        opt_g.load_state(step - 1, &by_name(opt_h.state_tensors()));
        let batch_seed = rng.random::<u64>();
        let bh = host.sample(&replay, 64, &mut StdRng::seed_from_u64(batch_seed), &device);
        let bg = graph.sample(&replay, 64, &mut StdRng::seed_from_u64(batch_seed), &device);
        opt_h.begin_step(step, 1e-3);
        opt_g.begin_step(step, 1e-3);
        let sh = host.train_step(bh, &mut opt_h).unwrap();
        let sg = graph.train_step(bg, &mut opt_g).unwrap();
        let names = |s: &[(&str, f64)]| s.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&sh), names(&sg), "logged values");
        let (gh, gg) = (opt_h.grad_norms()[0].1, opt_g.grad_norms()[0].1);
        for (name, h, g) in sh.iter().zip(&sg).map(|((n, h), (_, g))| (*n, *h, *g)).chain([("grad norm", gh, gg)]) {
            let rel = (h - g).abs() / g.abs().max(0.1);
            assert!(rel < 1e-5, "step {step}: {name} host {h} graph {g}");
            worst_logged = worst_logged.max(rel);
        }
        let differ = max_difference(&by_name(host.params()), &by_name(graph.params()));
        // Adam's first step moves every weight by ±lr·g/(|g| + ε): for gradients near ε, rounding shows more.
        let tolerance = if step == 1 { 1e-5 } else { 1e-6 };
        assert!(differ < tolerance, "step {step}: parameters differ by {differ} after the step");
        worst_param = worst_param.max(differ);
        // Moments carry the same names on both paths.
        let names = |o: &Optimizers| o.state_tensors().into_iter().map(|t| t.name).collect::<Vec<_>>();
        assert_eq!(names(&opt_h), names(&opt_g));
    }
    (worst_logged, worst_param)
}

#[test]
fn the_c51_update_on_the_host_follows_the_graph() {
    // Five target copies in 30 steps, so the target network's path is compared too.
    let config = DqnConfig { atoms: 21, v_min: -10.0, v_max: 10.0, target_update_every: 6, ..Default::default() };
    step_by_step(&config);
    let single = DqnConfig { double: false, n_step: 3, tau: 0.3, target_update_every: 4, ..config };
    step_by_step(&single);
}

#[test]
fn the_dqn_update_on_the_host_follows_the_graph() {
    let config = DqnConfig { head: None, target_update_every: 5, hidden: vec![32, 16, 8], ..Default::default() };
    step_by_step(&config);
}

#[test]
fn the_update_with_fourier_return_heads_on_the_host_follows_the_graph() {
    // With a regulariser large enough to move the weights, and without one; double and single DQN.
    for gamma in [1e-3, 0.0] {
        let fourier = HeadConfig::Fourier(frl_heads::FourierHeadConfig::new(4, gamma));
        let config = DqnConfig {
            head: Some(fourier),
            atoms: 21,
            v_min: -10.0,
            v_max: 10.0,
            target_update_every: 6,
            ..Default::default()
        };
        step_by_step(&config);
        step_by_step(&DqnConfig { double: false, n_step: 2, ..config });
    }
}

#[test]
fn heads_without_a_host_path_train_on_the_graph() {
    let mixture = HeadConfig::Mixture(frl_heads::MixtureHeadConfig::default());
    let (agent, _) = agent_and_data(&DqnConfig { head: Some(mixture), ..Default::default() });
    assert!(!agent.on_host());
}

#[test]
fn a_host_checkpoint_and_its_moments_continue_on_the_graph_as_on_the_host() {
    let config = DqnConfig { atoms: 11, target_update_every: 3, ..Default::default() };
    let (mut agent, replay) = agent_and_data(&config);
    let device = Device::flex().autodiff();
    let mut opt = Optimizers::new(AdamWConfig::default());
    let mut rng = StdRng::seed_from_u64(5);
    for step in 1..=7 {
        opt.begin_step(step, 1e-3);
        let b = agent.sample(&replay, 32, &mut rng, &device);
        agent.train_step(b, &mut opt).unwrap();
    }
    // Save, then continue on both paths from the saved parameters and moments.
    let params = by_name(agent.params());
    let moments = by_name(opt.state_tensors());
    let fresh = || agent_and_data(&config).0.load_params(&params).unwrap();
    let (mut host, mut graph) = (fresh(), fresh().on_graph());
    assert!(host.on_host() && !graph.on_host());
    assert_eq!(max_difference(&by_name(host.params()), &params), 0.0);
    let (mut opt_h, mut opt_g) = (Optimizers::new(AdamWConfig::default()), Optimizers::new(AdamWConfig::default()));
    opt_h.load_state(7, &moments);
    opt_g.load_state(7, &moments);
    for step in 8..=10 {
        let seed = rng.random::<u64>();
        opt_h.begin_step(step, 1e-3);
        opt_g.begin_step(step, 1e-3);
        host.train_step(host.sample(&replay, 32, &mut StdRng::seed_from_u64(seed), &device), &mut opt_h).unwrap();
        graph.train_step(graph.sample(&replay, 32, &mut StdRng::seed_from_u64(seed), &device), &mut opt_g).unwrap();
    }
    let differ = max_difference(&by_name(host.params()), &by_name(graph.params()));
    assert!(differ < 1e-5, "after resuming, host and graph parameters differ by {differ}");
    // A step that would have started from fresh moments instead moves the weights elsewhere: the moments were used.
    let mut cold = fresh();
    let mut opt_c = Optimizers::new(AdamWConfig::default());
    opt_c.begin_step(8, 1e-3);
    let seed = StdRng::seed_from_u64(5).random::<u64>();
    cold.train_step(cold.sample(&replay, 32, &mut StdRng::seed_from_u64(seed), &device), &mut opt_c).unwrap();
    assert!(max_difference(&by_name(cold.params()), &params) > 0.0);
}

/// Seaquest's shapes (128 RAM bytes, 18 actions): the Q network's return heads of all actions, computed in one
/// product, equal each action's head called on its own (values and the regulariser).
#[test]
fn the_return_heads_of_all_18_actions_in_one_product_equal_18_head_calls() {
    use burn::tensor::{Tensor, TensorData};
    use frl_agents::dqn::QNet;
    use frl_heads::{FourierHeadConfig, Head};
    let device = Device::flex().autodiff();
    for head in [HeadConfig::Linear, HeadConfig::Fourier(FourierHeadConfig::new(8, 1e-4))] {
        let config = DqnConfig { hidden: vec![32], head: Some(head.clone()), atoms: 51, ..DqnConfig::default() };
        let mut rng = StdRng::seed_from_u64(3);
        let net = QNet::new(128, 18, &config, &mut rng, &device).unwrap();
        assert_eq!(net.heads.len(), 18);
        let obs: Vec<f32> = (0..6 * 128).map(|_| rng.random_range(0.0..1.0)).collect();
        let features = net.features(Tensor::<2>::from_data(TensorData::new(obs, [6, 128]), &device));
        let (stacked, reg) = net.log_pmfs(features.clone());
        assert_eq!(stacked.dims(), [6, 18, 51]);
        let stacked = frl_heads::head::to_host(stacked);
        let mut regs = 0.0;
        for (a, h) in net.heads.iter().enumerate() {
            let out = h.forward(features.clone());
            if let Some(r) = out.regularizer {
                regs += frl_heads::head::to_host(r)[0] / 18.0;
            }
            let alone = frl_heads::head::to_host(h.log_pmf(out.logits));
            for row in 0..6 {
                for atom in 0..51 {
                    let (x, y) = (stacked[(row * 18 + a) * 51 + atom], alone[row * 51 + atom]);
                    assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{head}: action {a} row {row}: {x} vs {y}");
                }
            }
        }
        match reg {
            Some(r) => {
                let r = frl_heads::head::to_host(r)[0];
                assert!(regs > 0.0 && (r - regs).abs() <= 1e-5 * regs, "{head}: regulariser {r} vs {regs}");
            }
            None => assert_eq!(regs, 0.0, "{head}"),
        }
    }
}
