//! KernelSynth's series show their kernel's structure, and a run's series are reproducible from its seed.

use frl_forecast::{Kernel, KernelSynth, sample_gp};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// Correlation of `x` with itself `lag` steps later (Pearson, over the overlapping part).
fn autocorrelation(x: &[f32], lag: usize) -> f64 {
    let (a, b) = (&x[..x.len() - lag], &x[lag..]);
    let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
    let (ma, mb) = (mean(a), mean(b));
    let cov: f64 = a.iter().zip(b).map(|(&x, &y)| (x as f64 - ma) * (y as f64 - mb)).sum();
    let va: f64 = a.iter().map(|&x| (x as f64 - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|&y| (y as f64 - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

#[test]
fn a_periodic_kernel_repeats_at_its_period() {
    let length = 256;
    for (seed, period) in [(1u64, 24usize), (2, 12), (3, 30)] {
        let kernel = Kernel::Periodic { period: period as f64 / (length - 1) as f64 };
        let x = sample_gp(&kernel, length, &mut Xoshiro256PlusPlus::seed_from_u64(seed));
        let at_period = autocorrelation(&x, period);
        let at_half = autocorrelation(&x, period / 2);
        assert!(at_period > 0.99, "period {period}: autocorrelation {at_period} at the period");
        assert!(at_period > at_half + 0.3, "period {period}: {at_period} at the period, {at_half} at half of it");
    }
}

#[test]
fn a_linear_kernel_draws_a_straight_line_and_white_noise_does_not() {
    let length = 128;
    let fit_residual = |x: &[f32]| {
        // Least-squares line through the samples; the mean squared residual relative to the variance.
        let n = x.len() as f64;
        let t: Vec<f64> = (0..x.len()).map(|i| i as f64).collect();
        let (mt, mx) = (t.iter().sum::<f64>() / n, x.iter().map(|&v| v as f64).sum::<f64>() / n);
        let stt: f64 = t.iter().map(|v| (v - mt).powi(2)).sum();
        let stx: f64 = t.iter().zip(x).map(|(a, &b)| (a - mt) * (b as f64 - mx)).sum();
        let slope = stx / stt;
        let var: f64 = x.iter().map(|&v| (v as f64 - mx).powi(2)).sum();
        let res: f64 = t.iter().zip(x).map(|(a, &b)| (b as f64 - mx - slope * (a - mt)).powi(2)).sum();
        res / var
    };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
    let line = sample_gp(&Kernel::Linear { sigma0: 0.0 }, length, &mut rng);
    assert!(fit_residual(&line) < 1e-6, "linear kernel: residual {}", fit_residual(&line));
    let noise = sample_gp(&Kernel::White { noise: 1.0 }, length, &mut rng);
    assert!(fit_residual(&noise) > 0.8, "white noise: residual {}", fit_residual(&noise));
    assert!(autocorrelation(&noise, 1).abs() < 0.3);
}

#[test]
fn series_follow_from_seed_and_index_and_mix_the_bank() {
    let synth = KernelSynth::with(64, 5, 11);
    let (k1, a) = synth.series(3);
    let (k2, b) = synth.series(3);
    assert_eq!((k1, &a), (k2, &b), "the same series again");
    assert_ne!(synth.series(4).1, a, "another index, another series");
    assert_ne!(KernelSynth::with(64, 5, 12).series(3).1, a, "another seed, another series");
    assert!(a.iter().all(|v| v.is_finite()));
    assert_eq!(Kernel::bank(1024).len(), 33);
    // Over many series, sums and products both occur.
    let kinds: Vec<Kernel> = (0..40).map(|i| synth.series(i).0).collect();
    assert!(
        kinds.iter().any(|k| matches!(k, Kernel::Sum(..))) && kinds.iter().any(|k| matches!(k, Kernel::Product(..)))
    );
}
