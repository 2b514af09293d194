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
    }
}
