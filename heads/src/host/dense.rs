//! Dense-layer kernels on row-major `f32` slices, sized for small models (tens to hundreds of features).
//!
//! Every kernel sums in a fixed order that does not depend on the vector width, so the AVX2 build (chosen at run
//! time) and the portable build give the same bits.

/// Runs `$body` compiled for AVX2 when the CPU has it, else the portable build of the same code.
macro_rules! dispatch {
    ($avx:ident, $body:ident, ($($arg:ident),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                return unsafe { $avx($($arg),*) };
            }
        }
        $body($($arg),*)
    }};
}

/// `out = x · w + bias`: `x` `[rows, d_in]`, `w` `[d_in, d_out]`, `bias` `[d_out]`, `out` `[rows, d_out]`.
pub fn linear(x: &[f32], w: &[f32], bias: &[f32], out: &mut [f32], d_in: usize, d_out: usize) {
    debug_assert_eq!(w.len(), d_in * d_out);
    debug_assert_eq!(x.len() / d_in * d_out, out.len());
    dispatch!(linear_avx2, linear_body, (x, w, bias, out, d_in, d_out))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn linear_avx2(x: &[f32], w: &[f32], bias: &[f32], out: &mut [f32], d_in: usize, d_out: usize) {
    linear_body(x, w, bias, out, d_in, d_out)
}

#[inline(always)]
fn linear_body(x: &[f32], w: &[f32], bias: &[f32], out: &mut [f32], d_in: usize, d_out: usize) {
    for (xr, or) in x.chunks_exact(d_in).zip(out.chunks_exact_mut(d_out)) {
        or.copy_from_slice(bias);
        for (&a, wr) in xr.iter().zip(w.chunks_exact(d_out)) {
            // A ReLU's zeros add nothing (the weights stay finite: they are updated from finite gradients only).
            if a == 0.0 {
                continue;
            }
            for (o, &wv) in or.iter_mut().zip(wr) {
                *o += a * wv;
            }
        }
    }
}

/// `out = x · w` without a bias: `x` `[rows, d_in]`, `w` `[d_in, d_out]`.
pub fn matmul(x: &[f32], w: &[f32], out: &mut [f32], d_in: usize, d_out: usize) {
    dispatch!(matmul_avx2, matmul_body, (x, w, out, d_in, d_out))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn matmul_avx2(x: &[f32], w: &[f32], out: &mut [f32], d_in: usize, d_out: usize) {
    matmul_body(x, w, out, d_in, d_out)
}

#[inline(always)]
fn matmul_body(x: &[f32], w: &[f32], out: &mut [f32], d_in: usize, d_out: usize) {
    for (xr, or) in x.chunks_exact(d_in).zip(out.chunks_exact_mut(d_out)) {
        or.fill(0.0);
        for (&a, wr) in xr.iter().zip(w.chunks_exact(d_out)) {
            for (o, &wv) in or.iter_mut().zip(wr) {
                *o += a * wv;
            }
        }
    }
}

/// Parameter gradients of [`linear`]: `dw += xᵀ · g`, `db += Σ_rows g`; `g` `[rows, d_out]`.
pub fn linear_backward_params(x: &[f32], g: &[f32], dw: &mut [f32], db: &mut [f32], d_in: usize, d_out: usize) {
    dispatch!(backward_params_avx2, backward_params_body, (x, g, dw, db, d_in, d_out))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn backward_params_avx2(x: &[f32], g: &[f32], dw: &mut [f32], db: &mut [f32], d_in: usize, d_out: usize) {
    backward_params_body(x, g, dw, db, d_in, d_out)
}

#[inline(always)]
fn backward_params_body(x: &[f32], g: &[f32], dw: &mut [f32], db: &mut [f32], d_in: usize, d_out: usize) {
    for (xr, gr) in x.chunks_exact(d_in).zip(g.chunks_exact(d_out)) {
        for (&a, dwr) in xr.iter().zip(dw.chunks_exact_mut(d_out)) {
            if a == 0.0 {
                continue;
            }
            for (d, &gv) in dwr.iter_mut().zip(gr) {
                *d += a * gv;
            }
        }
        for (d, &gv) in db.iter_mut().zip(gr) {
            *d += gv;
        }
    }
}

/// Input gradient of [`linear`] from the transposed weight: `dx = g · wᵀ` with `w_t` `[d_out, d_in]`.
pub fn linear_backward_input(g: &[f32], w_t: &[f32], dx: &mut [f32], d_in: usize, d_out: usize) {
    dispatch!(backward_input_avx2, backward_input_body, (g, w_t, dx, d_in, d_out))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn backward_input_avx2(g: &[f32], w_t: &[f32], dx: &mut [f32], d_in: usize, d_out: usize) {
    backward_input_body(g, w_t, dx, d_in, d_out)
}

#[inline(always)]
fn backward_input_body(g: &[f32], w_t: &[f32], dx: &mut [f32], d_in: usize, d_out: usize) {
    for (gr, dr) in g.chunks_exact(d_out).zip(dx.chunks_exact_mut(d_in)) {
        dr.fill(0.0);
        for (&gv, wr) in gr.iter().zip(w_t.chunks_exact(d_in)) {
            if gv == 0.0 {
                continue;
            }
            for (d, &wv) in dr.iter_mut().zip(wr) {
                *d += gv * wv;
            }
        }
    }
}

/// `out = g · wᵀ` by dot products: `g` `[rows, k]`, `w` `[n, k]`, `out` `[rows, n]`; for long rows `k`, where
/// [`linear_backward_input`]'s short output rows would leave the vector lanes idle.
pub fn matmul_transposed(g: &[f32], w: &[f32], out: &mut [f32], k: usize, n: usize) {
    dispatch!(matmul_transposed_avx2, matmul_transposed_body, (g, w, out, k, n))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn matmul_transposed_avx2(g: &[f32], w: &[f32], out: &mut [f32], k: usize, n: usize) {
    for (gr, or) in g.chunks_exact(k).zip(out.chunks_exact_mut(n)) {
        for (o, wr) in or.iter_mut().zip(w.chunks_exact(k)) {
            *o = dot_avx2(gr, wr);
        }
    }
}

/// [`dot`] with the eight lanes in one AVX register: the same products and sums in the same order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::{_mm256_add_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_setzero_ps, _mm256_storeu_ps};
    let n = a.len().min(b.len());
    let full = n / 8 * 8;
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i < full {
        // SAFETY: i + 8 <= full <= len of both slices.
        unsafe {
            let x = _mm256_loadu_ps(a.as_ptr().add(i));
            let y = _mm256_loadu_ps(b.as_ptr().add(i));
            acc = _mm256_add_ps(acc, _mm256_mul_ps(x, y));
        }
        i += 8;
    }
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` holds 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
    for (l, (x, y)) in a[full..n].iter().zip(&b[full..n]).enumerate() {
        lanes[l] += x * y;
    }
    reduce_lanes(&lanes)
}

#[inline(always)]
fn reduce_lanes(acc: &[f32; 8]) -> f32 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

#[inline(always)]
fn matmul_transposed_body(g: &[f32], w: &[f32], out: &mut [f32], k: usize, n: usize) {
    for (gr, or) in g.chunks_exact(k).zip(out.chunks_exact_mut(n)) {
        for (o, wr) in or.iter_mut().zip(w.chunks_exact(k)) {
            *o = dot(gr, wr);
        }
    }
}

/// `Σ a_i b_i` over eight lanes, then the lanes in a fixed order: the same bits at any vector width.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    for (l, (x, y)) in ar.iter().zip(br).enumerate() {
        acc[l] += x * y;
    }
    reduce_lanes(&acc)
}

/// `w_t = wᵀ`: `w` `[rows, cols]` into `w_t` `[cols, rows]`.
pub fn transpose(w: &[f32], w_t: &mut [f32], rows: usize, cols: usize) {
    for (r, wr) in w.chunks_exact(cols).enumerate() {
        for (c, &v) in wr.iter().enumerate() {
            w_t[c * rows + r] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, salt: usize) -> Vec<f32> {
        (0..n).map(|i| (((i * 7919 + salt * 104_729) % 2003) as f32 / 1001.0 - 1.0).max(-0.9)).collect()
    }

    /// Each kernel against the textbook triple loop in f64.
    #[test]
    fn kernels_equal_the_definitions() {
        let (rows, d_in, d_out) = (5, 13, 37);
        let (x, w, b, g) = (values(rows * d_in, 1), values(d_in * d_out, 2), values(d_out, 3), values(rows * d_out, 4));
        let mut out = vec![0.0; rows * d_out];
        linear(&x, &w, &b, &mut out, d_in, d_out);
        let mut dw = vec![0.0; d_in * d_out];
        let mut db = vec![0.0; d_out];
        linear_backward_params(&x, &g, &mut dw, &mut db, d_in, d_out);
        let mut w_t = vec![0.0; d_in * d_out];
        transpose(&w, &mut w_t, d_in, d_out);
        let mut dx = vec![0.0; rows * d_in];
        linear_backward_input(&g, &w_t, &mut dx, d_in, d_out);
        let close = |a: f32, e: f64| (a as f64 - e).abs() <= 1e-5 * (1.0 + e.abs());
        for r in 0..rows {
            for o in 0..d_out {
                let e: f64 =
                    b[o] as f64 + (0..d_in).map(|i| x[r * d_in + i] as f64 * w[i * d_out + o] as f64).sum::<f64>();
                assert!(close(out[r * d_out + o], e), "out[{r},{o}]");
            }
            for i in 0..d_in {
                let e: f64 = (0..d_out).map(|o| g[r * d_out + o] as f64 * w[i * d_out + o] as f64).sum();
                assert!(close(dx[r * d_in + i], e), "dx[{r},{i}]");
            }
        }
        for i in 0..d_in {
            for o in 0..d_out {
                let e: f64 = (0..rows).map(|r| x[r * d_in + i] as f64 * g[r * d_out + o] as f64).sum();
                assert!(close(dw[i * d_out + o], e), "dw[{i},{o}]");
            }
        }
        for o in 0..d_out {
            let e: f64 = (0..rows).map(|r| g[r * d_out + o] as f64).sum();
            assert!(close(db[o], e), "db[{o}]");
        }
        let mut by_dots = vec![0.0; rows * d_in];
        matmul_transposed(&g, &w, &mut by_dots, d_out, d_in);
        for (a, b) in by_dots.iter().zip(&dx) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "matmul_transposed != linear_backward_input");
        }
        let mut plain = vec![0.0; rows * d_out];
        matmul(&x, &w, &mut plain, d_in, d_out);
        for (p, (o, bias)) in plain.iter().zip(out.iter().zip(b.iter().cycle())) {
            assert!((p + bias - o).abs() <= 1e-5, "matmul + bias != linear");
        }
    }

    /// The portable build and the AVX2 build give the same bits.
    #[test]
    fn portable_and_vector_builds_agree_bit_for_bit() {
        let (rows, d_in, d_out) = (7, 64, 32);
        let (x, w, b) = (values(rows * d_in, 5), values(d_in * d_out, 6), values(d_out, 7));
        let mut a = vec![0.0; rows * d_out];
        linear(&x, &w, &b, &mut a, d_in, d_out);
        let mut p = vec![0.0; rows * d_out];
        linear_body(&x, &w, &b, &mut p, d_in, d_out);
        assert!(a.iter().zip(&p).all(|(a, p)| a.to_bits() == p.to_bits()));
        let g = values(rows * 100, 8);
        let w = values(26 * 100, 9);
        let (mut a, mut p) = (vec![0.0; rows * 26], vec![0.0; rows * 26]);
        matmul_transposed(&g, &w, &mut a, 100, 26);
        matmul_transposed_body(&g, &w, &mut p, 100, 26);
        assert!(a.iter().zip(&p).all(|(a, p)| a.to_bits() == p.to_bits()));
    }
}
