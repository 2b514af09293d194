//! The continuous Fourier density: normalisation, CDF, inverse-CDF sampling, MLE gradients.

mod common;

use common::*;
use frl_heads::FourierHeadConfig;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn density(n: usize, gamma: f64, seed: u64) -> (frl_heads::FourierDensity, StdRng) {
    let mut rng = StdRng::seed_from_u64(seed);
    let cfg = FourierHeadConfig { init_weight_div: 1.0, init_bias_div: 1.0, ..FourierHeadConfig::new(n, gamma) };
    (cfg.init_density(3, &mut rng, &device()).unwrap(), rng)
}

#[test]
fn density_integrates_to_one_and_cdf_matches_it() {
    let (d, mut rng) = density(6, 0.0, 1);
    let x = randn(&mut rng, 1, 3, &device());
    let grid = 4001;
    let pts: Vec<f64> = (0..grid).map(|i| -1.0 + 2.0 * i as f64 / (grid - 1) as f64).collect();
    let xs = x.clone().repeat_dim(0, grid);
    let p = d.density_reference(xs.clone(), &pts);
    assert!(p.iter().all(|&v| v >= -1e-12));
    let h = 2.0 / (grid - 1) as f64;
    let integral: f64 = p.windows(2).map(|w| 0.5 * h * (w[0] + w[1])).sum();
    assert!((integral - 1.0).abs() < 1e-6, "integral {integral}");
    let f = d.cdf(xs.clone(), &pts);
    assert!(f[0].abs() < 1e-9 && (f[grid - 1] - 1.0).abs() < 1e-9, "F(-1) = {}, F(1) = {}", f[0], f[grid - 1]);
    // F' = p, and F is the running integral of p
    let mut running = 0.0;
    for i in 1..grid {
        running += 0.5 * h * (p[i - 1] + p[i]);
        if i % 400 == 0 {
            assert!((running - f[i]).abs() < 1e-6, "at {}: ∫p = {running}, F = {}", pts[i], f[i]);
        }
    }
    // the tensor (training) form agrees with the autocorrelation form
    let ys: Vec<f32> = pts.iter().map(|&v| v as f32).collect();
    let fast = to_vec(d.density(xs, d.points(&ys)));
    for (a, b) in fast.iter().zip(&p) {
        assert!((*a as f64 - b).abs() < 1e-4 * b.max(1.0), "{a} vs {b}");
    }
}

#[test]
fn inverse_cdf_samples_follow_the_density() {
    let (d, mut rng) = density(4, 0.0, 2);
    let x = randn(&mut rng, 1, 3, &device());
    let n = 20_000;
    let samples = d.sample(x.clone().repeat_dim(0, n), &mut rng);
    assert!(samples.iter().all(|s| (-1.0..=1.0).contains(s)));
    // compare the empirical CDF with F at 9 points: Kolmogorov-style bound
    for q in 1..10 {
        let t = -1.0 + 0.2 * q as f64;
        let emp = samples.iter().filter(|&&s| s <= t).count() as f64 / n as f64;
        let f = d.cdf(x.clone(), &[t])[0];
        assert!((emp - f).abs() < 0.015, "at {t}: empirical {emp} vs F {f}");
    }
}

#[test]
fn mle_loss_gradients_match_finite_differences() {
    for (gamma, seed) in [(0.0, 3), (1e-2, 4)] {
        let (d, mut rng) = density(5, gamma, seed);
        let x = randn(&mut rng, 8, 3, &device());
        let y = d.points(&[-0.9, -0.5, -0.1, 0.0, 0.2, 0.5, 0.7, 0.95]);
        check_gradients(&d, |m| m.loss(x.clone(), y.clone()), 1e-3);
    }
}
