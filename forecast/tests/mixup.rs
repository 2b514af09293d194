//! TSMixup: convex combinations of mean-scaled windows, reproducible from the seed, and clear errors.

use frl_forecast::{MixupError, TsMixup, mean_scaled};

fn small() -> TsMixup {
    TsMixup { max_series: 3, min_len: 8, max_len: 40, alpha: 1.5 }
}

#[test]
fn mixing_constant_series_gives_ones_and_windows_stay_in_bounds() {
    // Every mean-scaled window of a positive constant series is all ones, and the weights sum to one.
    let pool: Vec<Vec<f32>> = vec![vec![3.0; 50], vec![0.25; 30], vec![1000.0; 60]];
    let mix = small();
    for index in 0..50 {
        let x = mix.series(&pool, 9, index).unwrap();
        assert!((8..=40).contains(&x.len()), "length {}", x.len());
        assert!(x.iter().all(|v| (v - 1.0).abs() < 1e-5), "{x:?}");
    }
}

#[test]
fn a_mix_lies_between_its_scaled_inputs_and_repeats_from_its_seed() {
    let up: Vec<f32> = (1..=64).map(|i| i as f32).collect();
    let down: Vec<f32> = (1..=64).rev().map(|i| i as f32).collect();
    let pool = vec![up, down];
    let mix = small();
    let a = mix.series(&pool, 1, 7).unwrap();
    assert_eq!(a, mix.series(&pool, 1, 7).unwrap());
    assert_ne!(a, mix.series(&pool, 2, 7).unwrap());
    // Mean scaling: a single scaled window has mean |x| of 1, a mix of positive windows too (convex weights).
    for index in 0..30 {
        let x = mix.series(&pool, 3, index).unwrap();
        let mean = x.iter().map(|v| v.abs() as f64).sum::<f64>() / x.len() as f64;
        assert!((mean - 1.0).abs() < 1e-4, "index {index}: mean |x| {mean}");
    }
    let scaled = mean_scaled(&[2.0, -2.0, f32::NAN, 4.0]);
    assert_eq!(&scaled[..2], &[0.75, -0.75]);
    assert_eq!(mean_scaled(&[0.0, 0.0]), [0.0, 0.0]);
}

#[test]
fn bad_pools_and_settings_are_errors() {
    let mix = small();
    assert_eq!(mix.series(&[vec![1.0; 5]], 0, 0), Err(MixupError::PoolTooShort { min_len: 8 }));
    assert_eq!(mix.series(&[], 0, 0), Err(MixupError::PoolTooShort { min_len: 8 }));
    let bad = TsMixup { alpha: -1.0, ..small() };
    assert!(bad.series(&[vec![1.0; 50]], 0, 0).unwrap_err().to_string().contains("alpha"));
    let bad = TsMixup { max_len: 4, ..small() };
    assert!(bad.series(&[vec![1.0; 50]], 0, 0).unwrap_err().to_string().contains("min_len"));
}
