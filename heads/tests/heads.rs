//! Head behaviour: normalisation, the two Fourier forms, the regulariser, gradients, GMM values, sampling.

mod common;

use std::f64::consts::PI;

use burn::tensor::{Tensor, TensorData};
use common::*;
use frl_heads::fourier::{autocorrelation, density_from_autocorrelation};
use frl_heads::{AnyHead, FourierHeadConfig, Head, HeadConfig, MixtureHeadConfig, bin_centres};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn unscaled_fourier(n: usize, gamma: f64) -> HeadConfig {
    HeadConfig::Fourier(FourierHeadConfig {
        init_weight_div: 1.0,
        init_bias_div: 1.0,
        ..FourierHeadConfig::new(n, gamma)
    })
}

#[test]
fn fourier_pmf_is_nonnegative_and_normalised_for_random_parameters() {
    let dev = device();
    for seed in 0..10u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = 1 + (seed as usize * 7) % 20;
        let m = 2 + (seed as usize * 13) % 70;
        let head = unscaled_fourier(n, 0.0).init(8, m, &mut rng, &dev).unwrap();
        let x = randn(&mut rng, 16, 8, &dev).mul_scalar(3.0);
        let AnyHead::Fourier(f) = &head else { unreachable!() };
        let q = to_vec(f.pmf_from_coefficients(f.coefficients(x.clone())));
        for row in q.chunks(m) {
            assert!(row.iter().all(|&p| p >= 0.0), "negative mass in {row:?}");
            let s: f32 = row.iter().sum();
            assert!((s - 1.0).abs() < 1e-5, "row sums to {s} (N={n}, m={m})");
        }
        // softmax of the logits is a PMF too, and close to q (the eps shifts it slightly)
        let p = to_vec(head.pmf(x));
        for (row_p, row_q) in p.chunks(m).zip(q.chunks(m)) {
            assert!((row_p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            for (a, b) in row_p.iter().zip(row_q) {
                assert!((a - b).abs() < 1e-4 * m as f32);
            }
        }
    }
}

#[test]
fn real_form_matches_autocorrelation_form() {
    let dev = device();
    for (seed, (n, m)) in [(1, 50), (12, 50), (16, 64), (8, 18), (30, 7)].into_iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(seed as u64);
        let head = unscaled_fourier(n, 0.0).init(32, m, &mut rng, &dev).unwrap();
        let AnyHead::Fourier(f) = &head else { unreachable!() };
        let x = randn(&mut rng, 64, 32, &dev);
        let fast = to_vec(head.logits(x.clone()));
        let reference = to_vec(f.forward_autocorrelation(x));
        let worst = fast.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "N={n} m={m}: max |real − autocorrelation| = {worst}");
    }
    // and with the paper's tiny init (weights / 100), where the PMF is nearly uniform
    let mut rng = StdRng::seed_from_u64(99);
    let head = HeadConfig::Fourier(FourierHeadConfig::new(12, 0.0)).init(32, 50, &mut rng, &dev).unwrap();
    let AnyHead::Fourier(f) = &head else { unreachable!() };
    let x = randn(&mut rng, 8, 32, &dev);
    let worst = to_vec(head.logits(x.clone()))
        .iter()
        .zip(&to_vec(f.forward_autocorrelation(x)))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "{worst}");
}

#[test]
fn density_identity_holds_at_the_bin_centres() {
    // p(x) = |Σ a_j e^{iπjx}|² / (2 Σ|a_j|²) equals 1/2 + Re Σ (c_k/c_0) e^{iπkx}
    let z = [0.3f32, -1.2, 0.7, 2.0, 0.1, -0.4];
    let c = autocorrelation(&z, 2);
    for x in bin_centres(9) {
        let x = x as f64;
        let (mut re, mut im) = (0.0, 0.0);
        for j in 0..3 {
            let (s, co) = (PI * j as f64 * x).sin_cos();
            let (u, v) = (z[j] as f64, z[3 + j] as f64);
            re += u * co - v * s;
            im += u * s + v * co;
        }
        let norm: f64 = z.iter().map(|v| (*v as f64).powi(2)).sum();
        let direct = (re * re + im * im) / (2.0 * norm);
        assert!((direct - density_from_autocorrelation(&c, x)).abs() < 1e-12);
    }
}

#[test]
fn regulariser_matches_hand_computation() {
    // N = 1, a_0 = 1 + 3i, a_1 = 2 + 4i: c_1 = a_1 conj(a_0) = 14 − 2i, |c_1|² = 200;
    // L = 2 · (2π² · 1² · 200) = 800 π² for this row; a zero row adds 0; the batch mean halves it.
    let dev = device();
    let mut rng = StdRng::seed_from_u64(0);
    let head = FourierHeadConfig::new(1, 1e-3).init(4, 10, &mut rng, &dev).unwrap();
    let z = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0], [2, 4]), &dev);
    let reg = head.regularizer_unscaled(z).into_scalar::<f32>() as f64;
    let expect = 800.0 * PI * PI / 2.0;
    assert!((reg - expect).abs() < 1e-3 * expect, "{reg} vs {expect}");
    assert!((frl_heads::fourier::regularizer_reference(&[1.0, 2.0, 3.0, 4.0], 1) - 800.0 * PI * PI).abs() < 1e-9);

    // the head adds gamma × the regulariser of its coefficients
    let x = randn(&mut rng, 5, 4, &dev);
    let out = head.forward(x.clone());
    let got = out.regularizer.expect("gamma > 0 gives a regulariser").into_scalar::<f32>() as f64;
    let z = to_vec(head.coefficients(x));
    let expect: f64 =
        z.chunks(4).map(|row| frl_heads::fourier::regularizer_reference(row, 1)).sum::<f64>() / 5.0 * 1e-3;
    assert!((got - expect).abs() < 1e-4 * expect.abs() + 1e-12, "{got} vs {expect}");
}

#[test]
fn regulariser_matches_reference_for_larger_n() {
    let dev = device();
    let mut rng = StdRng::seed_from_u64(5);
    let AnyHead::Fourier(head) = unscaled_fourier(12, 1.0).init(6, 50, &mut rng, &dev).unwrap() else { unreachable!() };
    let x = randn(&mut rng, 7, 6, &dev);
    let z = to_vec(head.coefficients(x.clone()));
    let expect: f64 = z.chunks(26).map(|row| frl_heads::fourier::regularizer_reference(row, 12)).sum::<f64>() / 7.0;
    let got = head.regularizer_unscaled(head.coefficients(x)).into_scalar::<f32>() as f64;
    assert!((got - expect).abs() < 1e-4 * expect, "{got} vs {expect}");
}

#[test]
fn zero_gamma_means_no_regulariser_in_the_loss() {
    let dev = device();
    let mut rng = StdRng::seed_from_u64(1);
    let head = HeadConfig::Fourier(FourierHeadConfig::new(4, 0.0)).init(3, 8, &mut rng, &dev).unwrap();
    let loss = head.loss(randn(&mut rng, 4, 3, &dev), targets(&mut rng, 4, 8, &dev));
    assert!(loss.regularizer.is_none());
    assert_eq!(loss.total.into_scalar::<f32>(), loss.cross_entropy.into_scalar::<f32>());
}

/// Every kind of head, Fourier with and without its regulariser, mixtures with fixed and learned weights.
fn gradient_check_heads() -> [HeadConfig; 5] {
    [
        HeadConfig::Linear,
        unscaled_fourier(3, 0.0),
        unscaled_fourier(6, 1e-2),
        HeadConfig::Mixture(MixtureHeadConfig::new(2)),
        HeadConfig::Mixture(MixtureHeadConfig { learned_weights: true, ..MixtureHeadConfig::new(3) }),
    ]
}

#[test]
fn gradients_match_finite_differences_for_every_head() {
    let dev = device();
    let configs = gradient_check_heads();
    for (i, cfg) in configs.iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(10 + i as u64);
        let head = cfg.init(5, 12, &mut rng, &dev).unwrap();
        let x = randn(&mut rng, 6, 5, &dev);
        let y = targets(&mut rng, 6, 12, &dev);
        let pairs = check_gradients(&head, |h| h.loss(x.clone(), y.clone()).total, 1e-3);
        assert!(pairs.iter().any(|(ad, _)| ad.abs() > 1e-3), "{cfg}: gradient vanishes: {pairs:?}");
    }
}

/// Random target distributions `[n, m]` (rows of positive weights normalised to 1).
fn soft_targets(rng: &mut StdRng, n: usize, m: usize, dev: &burn::tensor::Device) -> Tensor<2> {
    use rand::Rng;
    let mut v: Vec<f32> = (0..n * m).map(|_| rng.random::<f32>().powi(3)).collect();
    for row in v.chunks_mut(m) {
        let s: f32 = row.iter().sum();
        row.iter_mut().for_each(|x| *x /= s);
    }
    Tensor::<2>::from_data(TensorData::new(v, [n, m]), dev)
}

#[test]
fn target_distribution_loss_gradients_match_finite_differences_for_every_head() {
    let dev = device();
    let configs = gradient_check_heads();
    for (i, cfg) in configs.iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(40 + i as u64);
        let head = cfg.init(5, 12, &mut rng, &dev).unwrap();
        let x = randn(&mut rng, 6, 5, &dev);
        let t = soft_targets(&mut rng, 6, 12, &dev);
        let pairs = check_gradients(&head, |h| h.loss_soft(x.clone(), t.clone()).total, 1e-3);
        assert!(pairs.iter().any(|(ad, _)| ad.abs() > 1e-3), "{cfg}: gradient vanishes: {pairs:?}");
    }
}

#[test]
fn target_distribution_loss_is_the_expected_cross_entropy_and_one_hot_targets_give_the_bin_loss() {
    let dev = device();
    for (i, cfg) in [HeadConfig::Linear, unscaled_fourier(4, 1e-3), HeadConfig::Mixture(MixtureHeadConfig::new(2))]
        .iter()
        .enumerate()
    {
        let mut rng = StdRng::seed_from_u64(70 + i as u64);
        let (n, m) = (5, 9);
        let head = cfg.init(3, m, &mut rng, &dev).unwrap();
        let x = randn(&mut rng, n, 3, &dev);
        // Against a distribution: −Σ t log q from the PMF computed on the host.
        let t = soft_targets(&mut rng, n, m, &dev);
        let got = head.loss_soft(x.clone(), t.clone()).cross_entropy.into_scalar::<f32>() as f64;
        let pmf = to_vec(head.pmf(x.clone()));
        let tv = to_vec(t);
        let want = -pmf.iter().zip(&tv).map(|(q, t)| *t as f64 * (*q as f64).ln()).sum::<f64>() / n as f64;
        assert!((got - want).abs() < 1e-4 * want.abs().max(1.0), "{cfg}: {got} vs host {want}");
        // One-hot rows: the same loss as integer bins, regulariser included.
        let bins = targets(&mut rng, n, m, &dev);
        let ids = bins.clone().into_data().try_to_vec_as::<i64>().unwrap();
        let mut hot = vec![0f32; n * m];
        for (r, b) in ids.iter().enumerate() {
            hot[r * m + *b as usize] = 1.0;
        }
        let hot = Tensor::<2>::from_data(TensorData::new(hot, [n, m]), &dev);
        let soft = head.loss_soft(x.clone(), hot).total.into_scalar::<f32>();
        let hard = head.loss(x, bins).total.into_scalar::<f32>();
        assert!((soft - hard).abs() < 1e-5, "{cfg}: one-hot {soft} vs bins {hard}");
    }
}

#[test]
fn mixture_values_match_the_closed_form_normal_pdf() {
    let dev = device();
    let m = 20;
    for cfg in [
        MixtureHeadConfig::new(1),
        MixtureHeadConfig::new(3),
        MixtureHeadConfig { learned_weights: true, ..MixtureHeadConfig::new(2) },
    ] {
        let mut rng = StdRng::seed_from_u64(cfg.components as u64);
        let head = cfg.init(4, m, &mut rng, &dev).unwrap();
        let x = randn(&mut rng, 3, 4, &dev);
        let (mu, sigma, w) = head.parameters(x.clone());
        let (mu, sigma, w) = (to_vec(mu), to_vec(sigma), to_vec(w));
        for s in &sigma {
            assert!((*s as f64 - 2.0 / m as f64).abs() < 1e-6, "sigma init {s} != one bin width");
        }
        let got = to_vec(head.density_at_centres(x.clone()));
        let logits = to_vec(head.logits(x));
        let k = cfg.components;
        for b in 0..3 {
            for (i, &c) in bin_centres(m).iter().enumerate() {
                let mut g = 0.0;
                for j in 0..k {
                    let (mu, s) = (mu[b * k + j] as f64, sigma[j] as f64);
                    g += w[b * k + j] as f64 * (-(c as f64 - mu).powi(2) / (2.0 * s * s)).exp()
                        / (s * (2.0 * PI).sqrt());
                }
                let v = got[b * m + i] as f64;
                assert!((v - g).abs() < 1e-4 * g.max(1.0), "bin {i}: {v} vs {g}");
                assert!((logits[b * m + i] as f64 - (g + 1e-5).ln()).abs() < 1e-3);
            }
        }
        if !cfg.learned_weights {
            assert!(w.iter().all(|&v| (v - 1.0 / k as f32).abs() < 1e-7));
        }
    }
}

#[test]
fn mode_expected_value_and_sampling_follow_the_pmf() {
    let dev = device();
    let mut rng = StdRng::seed_from_u64(3);
    let m = 10;
    let head = unscaled_fourier(3, 0.0).init(4, m, &mut rng, &dev).unwrap();
    let x = randn(&mut rng, 2, 4, &dev);
    let pmf = to_vec(head.pmf(x.clone()));
    let mode: Vec<i64> = head.mode(x.clone()).into_data().try_to_vec_as::<i64>().unwrap();
    let centres = bin_centres(m);
    let ev = to_vec(head.expected_value(x.clone()));
    for b in 0..2 {
        let row = &pmf[b * m..(b + 1) * m];
        let argmax = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert_eq!(mode[b] as usize, argmax);
        let e: f32 = row.iter().zip(&centres).map(|(p, c)| p * c).sum();
        assert!((ev[b] - e).abs() < 1e-5);
    }
    // 20 000 draws per row: each bin's frequency within 5 standard errors of its probability
    let draws = 20_000;
    let xs = Tensor::<2>::from_data(
        TensorData::new([to_vec(x.clone().narrow(0, 0, 1)); 1].concat().repeat(draws), [draws, 4]),
        &dev,
    );
    let samples = head.sample(xs, 1.0, &mut rng);
    let row = &pmf[0..m];
    for (i, p) in row.iter().enumerate() {
        let freq = samples.iter().filter(|&&s| s == i).count() as f64 / draws as f64;
        let se = (*p as f64 * (1.0 - *p as f64) / draws as f64).sqrt();
        assert!((freq - *p as f64).abs() < 5.0 * se + 1e-3, "bin {i}: {freq} vs {p}");
    }
    // low temperature concentrates on the mode
    let sharp = head.sample(x.clone(), 1e-3, &mut rng);
    assert_eq!(sharp[0], mode[0] as usize);
    let burn_samples: Vec<i64> = head.sample_tensor(x, 1.0).into_data().try_to_vec_as::<i64>().unwrap();
    assert!(burn_samples.iter().all(|&s| (0..m as i64).contains(&s)));
}

#[test]
fn fourier_log_pmf_shortcut_equals_log_softmax() {
    let dev = device();
    let mut rng = StdRng::seed_from_u64(8);
    for cfg in [
        unscaled_fourier(5, 0.0),
        HeadConfig::Fourier(FourierHeadConfig { eps: 1e-2, ..FourierHeadConfig::new(3, 1e-3) }),
    ] {
        let head = cfg.init(4, 17, &mut rng, &dev).unwrap();
        let logits = head.logits(randn(&mut rng, 6, 4, &dev));
        let fast = to_vec(head.log_pmf(logits.clone()));
        let exact = to_vec(burn::tensor::activation::log_softmax(logits, 1));
        for (a, b) in fast.iter().zip(&exact) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}

/// A loss of logits.
type Loss<'a> = Box<dyn Fn(Tensor<2>) -> Tensor<1> + 'a>;

#[test]
fn fused_softmax_cross_entropy_equals_the_log_softmax_graph_in_value_and_gradient() {
    use burn::tensor::activation::log_softmax;
    use frl_heads::head::{nll, soft_nll, softmax_cross_entropy, softmax_cross_entropy_soft};
    let dev = device();
    let mut rng = StdRng::seed_from_u64(90);
    let (n, m) = (7, 11);
    // Large logits too: the fused form must be as stable as log_softmax.
    for scale in [1.0, 30.0] {
        let base = randn(&mut rng, n, m, &dev).mul_scalar(scale);
        let y = targets(&mut rng, n, m, &dev);
        let t = soft_targets(&mut rng, n, m, &dev);
        let cases: [(&str, Loss, Loss); 2] = [
            (
                "bins",
                Box::new(|x| softmax_cross_entropy(x, y.clone())),
                Box::new(|x| nll(log_softmax(x, 1), y.clone())),
            ),
            (
                "distributions",
                Box::new(|x| softmax_cross_entropy_soft(x, t.clone())),
                Box::new(|x| soft_nll(log_softmax(x, 1), t.clone())),
            ),
        ];
        for (what, fused, graph) in cases {
            let value_and_grad = |f: &dyn Fn(Tensor<2>) -> Tensor<1>| {
                let x = Tensor::<2>::from_data(base.to_data(), &dev).require_grad();
                let loss = f(x.clone());
                let value = loss.clone().into_scalar::<f32>();
                let grads = loss.backward();
                (value, to_vec(x.grad(&grads).expect("logits get a gradient")))
            };
            let (v_fused, g_fused) = value_and_grad(&*fused);
            let (v_graph, g_graph) = value_and_grad(&*graph);
            assert!(
                v_fused.is_finite() && (v_fused - v_graph).abs() <= 1e-5 * v_graph.abs().max(1.0),
                "{what} ×{scale}: {v_fused} vs {v_graph}"
            );
            let worst = g_fused.iter().zip(&g_graph).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(worst < 1e-6, "{what} ×{scale}: gradients differ by {worst}");
            assert!(g_graph.iter().any(|g| g.abs() > 1e-3), "{what}: the gradient vanishes");
        }
    }
}

#[test]
fn every_heads_cross_entropy_of_logits_equals_nll_of_its_log_pmf_in_value_and_gradient() {
    use frl_heads::head::{nll, soft_nll};
    let dev = device();
    for (i, cfg) in gradient_check_heads().iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(120 + i as u64);
        let (n, m) = (6, 12);
        let head = cfg.init(5, m, &mut rng, &dev).unwrap();
        // Logits as the head makes them (Fourier: log(q + eps); mixture: log(density + eps)).
        let base = head.logits(randn(&mut rng, n, 5, &dev));
        let y = targets(&mut rng, n, m, &dev);
        let t = soft_targets(&mut rng, n, m, &dev);
        let pairs: [(Loss, Loss); 2] = [
            (Box::new(|x| head.cross_entropy(x, y.clone())), Box::new(|x| nll(head.log_pmf(x), y.clone()))),
            (Box::new(|x| head.cross_entropy_soft(x, t.clone())), Box::new(|x| soft_nll(head.log_pmf(x), t.clone()))),
        ];
        for (own, reference) in pairs {
            let value_and_grad = |f: &dyn Fn(Tensor<2>) -> Tensor<1>| {
                let x = Tensor::<2>::from_data(base.to_data(), &dev).require_grad();
                let loss = f(x.clone());
                let value = loss.clone().into_scalar::<f32>();
                (value, to_vec(x.grad(&loss.backward()).expect("logits get a gradient")))
            };
            let ((v1, g1), (v2, g2)) = (value_and_grad(&*own), value_and_grad(&*reference));
            assert!((v1 - v2).abs() <= 1e-5 * v2.abs().max(1.0), "{cfg}: {v1} vs {v2}");
            let worst = g1.iter().zip(&g2).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(worst < 1e-6, "{cfg}: gradients differ by {worst}");
        }
    }
}

/// Every float parameter's gradient of `loss`, in visiting order (empty where a parameter gets none).
fn parameter_gradients<M: burn::module::Module>(module: &M, loss: Tensor<1>) -> Vec<Vec<f32>> {
    use burn::module::{ModuleVisitor, Param};
    struct Collect<'a> {
        grads: &'a burn::tensor::Gradients,
        out: Vec<Vec<f32>>,
    }
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.out.push(param.val().grad(self.grads).map(to_vec).unwrap_or_default());
        }
    }
    let grads = loss.backward();
    let mut c = Collect { grads: &grads, out: Vec::new() };
    module.visit(&mut c);
    c.out
}

#[test]
fn mixture_losses_with_closed_form_gradients_equal_the_autodiff_graph() {
    use burn::tensor::activation::log_softmax;
    use frl_heads::head::{nll, soft_nll};
    let dev = device();
    let configs = [
        MixtureHeadConfig::new(1),
        MixtureHeadConfig::new(2),
        MixtureHeadConfig { learned_weights: true, ..MixtureHeadConfig::new(3) },
        MixtureHeadConfig { eps: 0.0, ..MixtureHeadConfig::new(2) },
    ];
    for (i, cfg) in configs.iter().enumerate() {
        let (n, m) = (7, 16);
        let mut rng = StdRng::seed_from_u64(150 + i as u64);
        let head = HeadConfig::Mixture(*cfg).init(5, m, &mut rng, &dev).unwrap();
        // Wide inputs spread the means over [-1, 1]; bins far from every mean get terms that underflow.
        let x = randn(&mut rng, n, 5, &dev).mul_scalar(2.0);
        let y = targets(&mut rng, n, m, &dev);
        let t = soft_targets(&mut rng, n, m, &dev);
        let cases: [(&str, Tensor<1>, Tensor<1>); 2] = [
            ("bins", head.loss(x.clone(), y.clone()).total, nll(log_softmax(head.logits(x.clone()), 1), y.clone())),
            (
                "distributions",
                head.loss_soft(x.clone(), t.clone()).total,
                soft_nll(log_softmax(head.logits(x.clone()), 1), t.clone()),
            ),
        ];
        for (what, fused, graph) in cases {
            let (v_fused, v_graph) = (fused.clone().into_scalar::<f32>(), graph.clone().into_scalar::<f32>());
            assert_eq!(v_fused.to_bits(), v_graph.to_bits(), "{cfg:?} {what}: value {v_fused} vs {v_graph}");
            let (g_fused, g_graph) = (parameter_gradients(&head, fused), parameter_gradients(&head, graph));
            assert_eq!(g_fused.len(), g_graph.len());
            let mut largest = 0.0f32;
            for (a, b) in g_fused.iter().zip(&g_graph) {
                assert_eq!(a.len(), b.len(), "{cfg:?} {what}: a parameter got a gradient from one form only");
                for (u, v) in a.iter().zip(b) {
                    assert!((u - v).abs() <= 1e-5 * v.abs().max(1e-2), "{cfg:?} {what}: gradient {u} vs {v}");
                    largest = largest.max(v.abs());
                }
            }
            assert!(largest > 1e-3, "{cfg:?} {what}: the gradient vanishes");
        }
    }
}

#[test]
fn stacked_heads_equal_each_head_called_alone_in_value_and_gradient() {
    use frl_heads::stacked::forward_stacked;
    let dev = device();
    let (rows, d, count) = (5, 16, 18);
    let configs = [
        HeadConfig::Linear,
        HeadConfig::Fourier(FourierHeadConfig { frequencies: 4, gamma: 1e-3, ..Default::default() }),
    ];
    for cfg in configs {
        let mut rng = StdRng::seed_from_u64(140);
        let heads: Vec<AnyHead> = (0..count).map(|_| cfg.init(d, 21, &mut rng, &dev).unwrap()).collect();
        let x0 = randn(&mut rng, rows, d, &dev);
        let weights = randn(&mut rng, rows, count * 21, &dev).reshape([rows, count, 21]);
        let run = |stacked: bool| {
            let x = Tensor::<2>::from_data(x0.to_data(), &dev).require_grad();
            let (logits, reg) = if stacked {
                forward_stacked(&heads, x.clone()).expect("linear and Fourier heads stack")
            } else {
                let outs: Vec<_> = heads.iter().map(|h| h.forward(x.clone())).collect();
                let reg = outs.iter().filter_map(|o| o.regularizer.clone()).reduce(|a, b| a + b);
                let logits = Tensor::stack(outs.into_iter().map(|o| o.logits).collect(), 1);
                (logits, reg.map(|r| r.div_scalar(count as f64)))
            };
            let mut loss = (logits.clone() * weights.clone()).sum();
            if let Some(r) = reg.clone() {
                loss = loss + r;
            }
            let grads = loss.backward();
            let head_grad = match &heads[3] {
                AnyHead::Linear(h) => h.linear.weight.grad(&grads),
                AnyHead::Fourier(h) => h.linear.weight.grad(&grads),
                AnyHead::Mixture(_) => unreachable!(),
            };
            (
                to_vec(logits),
                reg.map(|r| to_vec(r)[0]),
                to_vec(x.grad(&grads).expect("features get a gradient")),
                to_vec(head_grad.expect("a head's weight gets a gradient")),
            )
        };
        let (a, b) = (run(true), run(false));
        let close = |p: &[f32], q: &[f32], what: &str| {
            assert_eq!(p.len(), q.len());
            let worst = p.iter().zip(q).map(|(u, v)| (u - v).abs() / v.abs().max(1.0)).fold(0.0f32, f32::max);
            assert!(worst < 1e-5, "{cfg}: {what} differ by {worst}");
        };
        close(&a.0, &b.0, "logits");
        close(&a.2, &b.2, "feature gradients");
        close(&a.3, &b.3, "head 3's weight gradients");
        assert_eq!(a.1.is_some(), b.1.is_some(), "{cfg}: regulariser");
        if let (Some(p), Some(q)) = (a.1, b.1) {
            assert!((p - q).abs() <= 1e-5 * q.abs().max(1e-3) && q > 0.0, "{cfg}: regulariser {p} vs {q}");
        }
    }
    // heads of different kinds or arithmetic are not stacked
    let mut rng = StdRng::seed_from_u64(141);
    let mixed = vec![
        HeadConfig::Linear.init(4, 8, &mut rng, &dev).unwrap(),
        HeadConfig::Fourier(FourierHeadConfig::new(2, 0.0)).init(4, 8, &mut rng, &dev).unwrap(),
    ];
    assert!(forward_stacked(&mixed, randn(&mut rng, 2, 4, &dev)).is_none());
    let fourier = vec![
        HeadConfig::Fourier(FourierHeadConfig::new(2, 0.0)).init(4, 8, &mut rng, &dev).unwrap(),
        HeadConfig::Fourier(FourierHeadConfig::new(3, 0.0)).init(4, 8, &mut rng, &dev).unwrap(),
    ];
    assert!(forward_stacked(&fourier, randn(&mut rng, 2, 4, &dev)).is_none());
    let mixture = vec![HeadConfig::Mixture(MixtureHeadConfig::default()).init(4, 8, &mut rng, &dev).unwrap()];
    assert!(forward_stacked(&mixture, randn(&mut rng, 2, 4, &dev)).is_none());
}
