//! The metrics of the Fourier-head paper, computed on the host: KL divergence, smoothness, expected-bin MSE.
//!
//! PMFs are row-major `[batch, m]` slices.

use std::f64::consts::PI;

use crate::error::HeadError;
use crate::head::bin_centres;

fn check_rows(what: &'static str, len: usize, m: usize) -> Result<usize, HeadError> {
    if m == 0 || !len.is_multiple_of(m) {
        return Err(HeadError::Shape { what, expected: m, got: len });
    }
    Ok(len / m)
}

/// Row-wise softmax of logits `[batch, m]`, in f64.
pub fn softmax_rows(logits: &[f32], m: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks(m) {
        let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let e: Vec<f64> = row.iter().map(|&x| (x as f64 - max).exp()).collect();
        let s: f64 = e.iter().sum();
        out.extend(e.iter().map(|x| x / s));
    }
    out
}

/// `KL(true ‖ pred)` averaged over the batch: `(1/B) Σ_b Σ_i t_i (log t_i − log(p_i + 1e-10))`; terms with
/// `t_i = 0` count 0.
pub fn kl_divergence(truth: &[f64], pred: &[f64], m: usize) -> Result<f64, HeadError> {
    let rows = check_rows("true PMF row length", truth.len(), m)?;
    if pred.len() != truth.len() {
        return Err(HeadError::Shape { what: "predicted PMF size", expected: truth.len(), got: pred.len() });
    }
    let total: f64 =
        truth.iter().zip(pred).filter(|(t, _)| **t > 0.0).map(|(&t, &p)| t * (t.ln() - (p + 1e-10).ln())).sum();
    Ok(total / rows as f64)
}

/// `scipy.ndimage.gaussian_filter1d(y, sigma, mode="wrap", radius=len-1)`. Up to [`DIRECT_FILTER_MAX`] bins the
/// sum is scipy's, term by term; above, the same circular convolution through an FFT (a vocabulary of 4096 tokens
/// would need 4096 × 8191 products per σ), equal to it to rounding.
pub fn gaussian_filter_wrap(y: &[f64], sigma: f64) -> Vec<f64> {
    let m = y.len();
    if m == 0 {
        return Vec::new();
    }
    let r = (m - 1) as i64;
    let mut w: Vec<f64> = (-r..=r).map(|k| (-0.5 * (k * k) as f64 / (sigma * sigma)).exp()).collect();
    let s: f64 = w.iter().sum();
    w.iter_mut().for_each(|x| *x /= s);
    if m <= DIRECT_FILTER_MAX {
        return (0..m as i64)
            .map(|i| (-r..=r).zip(&w).map(|(k, wk)| wk * y[(i + k).rem_euclid(m as i64) as usize]).sum())
            .collect();
    }
    // The weights folded onto the circle: offset j collects every k ≡ j (mod m). The kernel is symmetric, so the
    // correlation scipy computes is the circular convolution y ⊛ folded.
    let mut folded = vec![0.0; m];
    for (k, wk) in (-r..=r).zip(&w) {
        folded[k.rem_euclid(m as i64) as usize] += wk;
    }
    circular_convolution(y, &folded)
}

/// Bins above which [`gaussian_filter_wrap`] convolves through an FFT.
pub const DIRECT_FILTER_MAX: usize = 512;

/// `out[i] = Σ_j b[j] · a[(i − j) mod m]` through forward and inverse FFTs.
fn circular_convolution(a: &[f64], b: &[f64]) -> Vec<f64> {
    use rustfft::FftPlanner;
    use rustfft::num_complex::Complex;
    let m = a.len();
    let mut planner = FftPlanner::<f64>::new();
    let forward = planner.plan_fft_forward(m);
    let inverse = planner.plan_fft_inverse(m);
    let mut fa: Vec<Complex<f64>> = a.iter().map(|&x| Complex::new(x, 0.0)).collect();
    let mut fb: Vec<Complex<f64>> = b.iter().map(|&x| Complex::new(x, 0.0)).collect();
    forward.process(&mut fa);
    forward.process(&mut fb);
    let mut prod: Vec<Complex<f64>> = fa.iter().zip(&fb).map(|(x, y)| x * y).collect();
    inverse.process(&mut prod);
    prod.iter().map(|c| c.re / m as f64).collect()
}

/// Smoothness of one PMF: `Σ_{σ=1}^{100} 6/(π²σ²) · ‖y − G_σ(y)‖₂` (lower is smoother).
pub fn smoothness(y: &[f64]) -> f64 {
    (1..=100)
        .map(|s| {
            let sigma = s as f64;
            let g = gaussian_filter_wrap(y, sigma);
            let l2 = y.iter().zip(&g).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
            6.0 / (PI * PI * sigma * sigma) * l2
        })
        .sum()
}

/// Smoothness of each row of a `[batch, m]` PMF: [`smoothness`] of every row, computed in the frequency domain
/// ([`SmoothnessPlan`]), equal to it to rounding.
pub fn smoothness_rows(pmf: &[f64], m: usize) -> Result<Vec<f64>, HeadError> {
    check_rows("PMF row length", pmf.len(), m)?;
    let plan = SmoothnessPlan::new(m);
    Ok(pmf.chunks(m).map(|row| plan.smoothness(row)).collect())
}

/// [`smoothness`] for many PMFs of `m` bins. The wrapped Gaussian filter is a circular convolution with a symmetric
/// kernel, so by Parseval `‖y − G_σ(y)‖₂² = (1/m) Σ_f |Y_f|² (1 − K_σ,f)²` with `Y` the DFT of the PMF and `K_σ`
/// the (real) DFT of the folded kernel: one FFT per PMF and `100 · m` products, where the direct sums take
/// `100 · m · (2m − 1)`. The kernels' spectra are computed once per plan.
pub struct SmoothnessPlan {
    m: usize,
    /// `[100, m]`: `(1 − K_σ,f)²` for σ = 1..=100.
    gains: Vec<f64>,
    fft: std::sync::Arc<dyn rustfft::Fft<f64>>,
}

impl SmoothnessPlan {
    /// The plan for PMFs of `m` bins.
    pub fn new(m: usize) -> Self {
        use rustfft::num_complex::Complex;
        let fft = rustfft::FftPlanner::<f64>::new().plan_fft_forward(m.max(1));
        let mut gains = Vec::with_capacity(100 * m);
        for s in 1..=100 {
            let kernel = folded_kernel(m, s as f64);
            let mut spectrum: Vec<Complex<f64>> = kernel.iter().map(|&k| Complex::new(k, 0.0)).collect();
            fft.process(&mut spectrum);
            gains.extend(spectrum.iter().map(|k| (1.0 - k.re) * (1.0 - k.re) + k.im * k.im));
        }
        Self { m, gains, fft }
    }

    /// [`smoothness`] of one PMF of the plan's `m` bins.
    pub fn smoothness(&self, y: &[f64]) -> f64 {
        use rustfft::num_complex::Complex;
        let m = self.m;
        if m == 0 {
            return 0.0;
        }
        let mut spectrum: Vec<Complex<f64>> = y.iter().map(|&v| Complex::new(v, 0.0)).collect();
        self.fft.process(&mut spectrum);
        let power: Vec<f64> = spectrum.iter().map(|c| c.norm_sqr()).collect();
        self.gains
            .chunks_exact(m)
            .enumerate()
            .map(|(i, gain)| {
                let sigma = (i + 1) as f64;
                let sq: f64 = power.iter().zip(gain).map(|(p, g)| p * g).sum::<f64>() / m as f64;
                6.0 / (PI * PI * sigma * sigma) * sq.max(0.0).sqrt()
            })
            .sum()
    }
}

/// The normalised Gaussian weights of [`gaussian_filter_wrap`] folded onto the circle of `m` bins.
fn folded_kernel(m: usize, sigma: f64) -> Vec<f64> {
    let r = m as i64 - 1;
    let w: Vec<f64> = (-r..=r).map(|k| (-0.5 * (k * k) as f64 / (sigma * sigma)).exp()).collect();
    let s: f64 = w.iter().sum();
    let mut folded = vec![0.0; m];
    for (k, wk) in (-r..=r).zip(&w) {
        folded[k.rem_euclid(m as i64) as usize] += wk / s;
    }
    folded
}

/// Mean squared error between the rounded expected bin's centre and each label's bin centre.
pub fn expected_bin_mse(pred: &[f64], labels: &[usize], m: usize) -> Result<f64, HeadError> {
    let rows = check_rows("predicted PMF row length", pred.len(), m)?;
    if labels.len() != rows {
        return Err(HeadError::Shape { what: "labels", expected: rows, got: labels.len() });
    }
    let centres = bin_centres(m);
    let total: f64 = pred
        .chunks(m)
        .zip(labels)
        .map(|(row, &label)| {
            let expected: f64 = row.iter().enumerate().map(|(i, q)| i as f64 * q).sum();
            let idx = (expected.round_ties_even() as usize).min(m - 1);
            let d = centres[idx] as f64 - centres[label.min(m - 1)] as f64;
            d * d
        })
        .sum();
    Ok(total / rows as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kl_matches_hand_computation() {
        // t = (0.5, 0.5, 0), p = (0.25, 0.5, 0.25): KL = 0.5 ln 2 + 0 = 0.34657...
        let t = [0.5, 0.5, 0.0, 0.2, 0.3, 0.5];
        let p = [0.25, 0.5, 0.25, 0.2, 0.3, 0.5];
        let kl = kl_divergence(&t, &p, 3).unwrap();
        let term = |t: f64, p: f64| t * (t.ln() - (p + 1e-10).ln());
        let row0 = term(0.5, 0.25) + term(0.5, 0.5);
        let row1 = term(0.2, 0.2) + term(0.3, 0.3) + term(0.5, 0.5);
        let expect = (row0 + row1) / 2.0;
        assert!((kl - expect).abs() < 1e-12, "{kl} vs {expect}");
        assert!((kl - 0.5 * (2f64).ln() / 2.0).abs() < 1e-8);
        assert!(kl_divergence(&t, &p[..5], 3).is_err());
        assert!(kl_divergence(&t[..5], &p[..5], 3).is_err());
    }

    #[test]
    fn uniform_pmf_is_perfectly_smooth_and_spike_is_not() {
        let u = vec![0.1; 10];
        assert!(smoothness(&u) < 1e-12);
        let mut spike = vec![0.0; 10];
        spike[3] = 1.0;
        assert!(smoothness(&spike) > 0.5);
    }

    #[test]
    fn filter_preserves_mass_and_constants() {
        let y: Vec<f64> = (0..7).map(|i| (i as f64).sin().abs()).collect();
        let g = gaussian_filter_wrap(&y, 2.0);
        assert!((g.iter().sum::<f64>() - y.iter().sum::<f64>()).abs() < 1e-12);
    }

    #[test]
    fn mse_uses_rounded_expected_bin() {
        // m = 4, centres -0.75 -0.25 0.25 0.75; row 0 expected index 1.5 -> rounds to 2 (ties to even)
        let pred = [0.0, 0.5, 0.5, 0.0, 1.0, 0.0, 0.0, 0.0];
        let mse = expected_bin_mse(&pred, &[2, 3], 4).unwrap();
        assert!((mse - (0.0 + 1.5 * 1.5) / 2.0).abs() < 1e-7);
    }
}
