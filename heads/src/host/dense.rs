//! Dense-layer kernels on row-major `f32` slices, sized for small models (tens to hundreds of features).
//!
//! Every kernel is one matrix product whose outputs each add their products in order of the inner index with fused
//! multiply-adds, so the AVX2 build (chosen at run time) and the portable build give the same bits.

/// How a product's output starts before the products are added.
#[derive(Clone, Copy)]
enum Init<'a> {
    /// From zero.
    Zero,
    /// From the output's current values (accumulate).
    Keep,
    /// From a bias row, the same for every output row.
    Row(&'a [f32]),
}

/// `c[m, n] = init + a · b`: `a` element `(i, p)` at `a[i·a_rs + p·a_cs]` (so a transposed operand is a stride),
/// `b` `[k, n]` row-major, `c` `[m, n]` row-major.
#[derive(Clone, Copy)]
struct Product<'a> {
    m: usize,
    n: usize,
    k: usize,
    a: &'a [f32],
    a_rs: usize,
    a_cs: usize,
    b: &'a [f32],
    init: Init<'a>,
}

impl Product<'_> {
    /// Panics unless every index the product reads or writes is inside its slice (the kernels index unchecked).
    fn check(&self, c: &[f32]) {
        let Self { m, n, k, a, a_rs, a_cs, b, init } = *self;
        if m == 0 || n == 0 {
            return;
        }
        assert!(c.len() >= m * n, "output holds {} values, the product {m}×{n}", c.len());
        assert!(b.len() >= k * n, "right operand holds {} values, needs {k}×{n}", b.len());
        if k > 0 {
            let last = (m - 1) * a_rs + (k - 1) * a_cs;
            assert!(a.len() > last, "left operand holds {} values, reads index {last}", a.len());
        }
        if let Init::Row(bias) = init {
            assert!(bias.len() >= n, "bias holds {} values, needs {n}", bias.len());
        }
    }

    /// Each output is its start value plus `a[i,p]·b[p,j]` for `p = 0, 1, …` in order, each a fused multiply-add:
    /// the same operations as the AVX2 build, so the same bits.
    fn run_portable(&self, c: &mut [f32]) {
        let Self { m, n, k, a, a_rs, a_cs, b, init } = *self;
        for i in 0..m {
            for j in 0..n {
                let mut acc = match init {
                    Init::Zero => 0.0,
                    Init::Keep => c[i * n + j],
                    Init::Row(bias) => bias[j],
                };
                for p in 0..k {
                    acc = a[i * a_rs + p * a_cs].mul_add(b[p * n + j], acc);
                }
                c[i * n + j] = acc;
            }
        }
    }

    fn run(&self, c: &mut [f32]) {
        self.check(c);
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU has AVX2 and FMA (checked just above); `check` bounds every index.
                unsafe { avx2::product(self, c) };
                return;
            }
        }
        self.run_portable(c);
    }
}

/// The product kernel in AVX2 registers: tiles of 4 output rows × 16 (or 8, or a masked tail of fewer than 8)
/// columns held in registers while `p` runs over the inner dimension.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Init, Product};

    /// A lane mask of the first `count` (≤ 8) lanes.
    #[target_feature(enable = "avx2,fma")]
    fn mask(count: usize) -> __m256i {
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(count as i32), lanes)
    }

    /// [`super::exp`] eight values at a time, the tail one by one.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_in_place(x: &mut [f32]) {
        use super::exp_consts::*;
        let mut chunks = x.chunks_exact_mut(8);
        for chunk in &mut chunks {
            // SAFETY: the chunk holds 8 values.
            unsafe {
                let v = _mm256_loadu_ps(chunk.as_ptr());
                let under = _mm256_cmp_ps::<_CMP_LT_OQ>(v, _mm256_set1_ps(LOW));
                let v = _mm256_min_ps(v, _mm256_set1_ps(HIGH));
                let n = _mm256_floor_ps(_mm256_add_ps(_mm256_mul_ps(v, _mm256_set1_ps(LOG2E)), _mm256_set1_ps(0.5)));
                let neg_n = _mm256_sub_ps(_mm256_setzero_ps(), n);
                let r = _mm256_fmadd_ps(neg_n, _mm256_set1_ps(LN2_HI), v);
                let r = _mm256_fmadd_ps(neg_n, _mm256_set1_ps(LN2_LO), r);
                let mut p = _mm256_set1_ps(P[0]);
                for &c in &P[1..] {
                    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
                }
                let y = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0));
                let bits = _mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)));
                let e = _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
                _mm256_storeu_ps(chunk.as_mut_ptr(), _mm256_andnot_ps(under, e));
            }
        }
        for v in chunks.into_remainder() {
            *v = super::exp(*v);
        }
    }

    /// [`super::ln`] eight values at a time where all eight are positive normal finite numbers; other chunks and
    /// the tail one by one.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn ln_in_place(x: &mut [f32]) {
        use super::ln_consts::*;
        let mut chunks = x.chunks_exact_mut(8);
        for chunk in &mut chunks {
            // SAFETY: the chunk holds 8 values.
            unsafe {
                let v = _mm256_loadu_ps(chunk.as_ptr());
                let normal = _mm256_and_ps(
                    _mm256_cmp_ps::<_CMP_GE_OQ>(v, _mm256_set1_ps(f32::MIN_POSITIVE)),
                    _mm256_cmp_ps::<_CMP_LE_OQ>(v, _mm256_set1_ps(f32::MAX)),
                );
                if _mm256_movemask_ps(normal) != 0xff {
                    for y in chunk.iter_mut() {
                        *y = super::ln(*y);
                    }
                    continue;
                }
                let bits = _mm256_castps_si256(v);
                // x = m · 2^e with m in [0.5, 1)
                let e = _mm256_sub_epi32(_mm256_srli_epi32::<23>(bits), _mm256_set1_epi32(126));
                let m = _mm256_castsi256_ps(_mm256_or_si256(
                    _mm256_and_si256(bits, _mm256_set1_epi32(MANTISSA)),
                    _mm256_set1_epi32(HALF_BITS),
                ));
                let e = _mm256_cvtepi32_ps(e);
                let low = _mm256_cmp_ps::<_CMP_LT_OQ>(m, _mm256_set1_ps(SQRT_HALF));
                let e = _mm256_sub_ps(e, _mm256_and_ps(low, _mm256_set1_ps(1.0)));
                let m = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(low, m)), _mm256_set1_ps(1.0));
                let z = _mm256_mul_ps(m, m);
                let mut y = _mm256_set1_ps(P[0]);
                for &c in &P[1..] {
                    y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(c));
                }
                let y = _mm256_mul_ps(_mm256_mul_ps(y, m), z);
                let y = _mm256_fmadd_ps(e, _mm256_set1_ps(LN2_LO), y);
                let y = _mm256_fmadd_ps(z, _mm256_set1_ps(-0.5), y);
                let r = _mm256_add_ps(m, y);
                let r = _mm256_fmadd_ps(e, _mm256_set1_ps(LN2_HI), r);
                _mm256_storeu_ps(chunk.as_mut_ptr(), r);
            }
        }
        for v in chunks.into_remainder() {
            *v = super::ln(*v);
        }
    }

    /// Rows `r..r+8`, columns `c..c+8` of `src` transposed into `dst` (added with `add`).
    ///
    /// # Safety
    /// The CPU has AVX2; the tile lies inside both slices.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn transpose_tile(
        src: &[f32],
        ss: usize,
        dst: &mut [f32],
        ds: usize,
        r: usize,
        c: usize,
        add: bool,
    ) {
        let (sp, dp) = (src.as_ptr(), dst.as_mut_ptr());
        // SAFETY (every pointer): inside the tile, which lies inside both slices.
        unsafe {
            let row = |i: usize| _mm256_loadu_ps(sp.add((r + i) * ss + c));
            let (a0, a1, a2, a3, a4, a5, a6, a7) = (row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7));
            let (t0, t1) = (_mm256_unpacklo_ps(a0, a1), _mm256_unpackhi_ps(a0, a1));
            let (t2, t3) = (_mm256_unpacklo_ps(a2, a3), _mm256_unpackhi_ps(a2, a3));
            let (t4, t5) = (_mm256_unpacklo_ps(a4, a5), _mm256_unpackhi_ps(a4, a5));
            let (t6, t7) = (_mm256_unpacklo_ps(a6, a7), _mm256_unpackhi_ps(a6, a7));
            let (u0, u1) = (_mm256_shuffle_ps::<0x44>(t0, t2), _mm256_shuffle_ps::<0xEE>(t0, t2));
            let (u2, u3) = (_mm256_shuffle_ps::<0x44>(t1, t3), _mm256_shuffle_ps::<0xEE>(t1, t3));
            let (u4, u5) = (_mm256_shuffle_ps::<0x44>(t4, t6), _mm256_shuffle_ps::<0xEE>(t4, t6));
            let (u6, u7) = (_mm256_shuffle_ps::<0x44>(t5, t7), _mm256_shuffle_ps::<0xEE>(t5, t7));
            let cols = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            for (i, v) in cols.into_iter().enumerate() {
                let out = dp.add((c + i) * ds + r);
                let v = if add { _mm256_add_ps(_mm256_loadu_ps(out), v) } else { v };
                _mm256_storeu_ps(out, v);
            }
        }
    }

    /// # Safety
    /// The CPU has AVX2 and FMA; `p.check(c)` passed.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn product(p: &Product, c: &mut [f32]) {
        let mut i = 0;
        while i + 4 <= p.m {
            // SAFETY: forwarded.
            unsafe { rows::<4>(p, c, i) };
            i += 4;
        }
        while i < p.m {
            // SAFETY: forwarded.
            unsafe { rows::<1>(p, c, i) };
            i += 1;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn rows<const MR: usize>(p: &Product, c: &mut [f32], i: usize) {
        let full = mask(8);
        let mut j = 0;
        while j + 16 <= p.n {
            // SAFETY: columns j..j+16 exist.
            unsafe { tile::<MR, 2, false>(p, c, i, j, full) };
            j += 16;
        }
        if j + 8 <= p.n {
            // SAFETY: columns j..j+8 exist.
            unsafe { tile::<MR, 1, false>(p, c, i, j, full) };
            j += 8;
        }
        if j < p.n {
            // SAFETY: the mask covers only columns j..n.
            unsafe { tile::<MR, 1, true>(p, c, i, j, mask(p.n - j)) };
        }
    }

    /// Rows `i..i+MR`, columns `j..j+8·NV` of the output; with `MASKED` the last 8 columns through `last` (a lane
    /// mask), else every column is read and written whole (plain loads: a masked load also takes an ALU port, which
    /// the multiply-adds need).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile<const MR: usize, const NV: usize, const MASKED: bool>(
        p: &Product,
        c: &mut [f32],
        i: usize,
        j: usize,
        last: __m256i,
    ) {
        let n = p.n;
        let full = mask(8);
        let lane_mask = |v: usize| if v + 1 == NV { last } else { full };
        // SAFETY (callers): without MASKED all 8·NV columns exist.
        let load = |ptr: *const f32, v: usize| unsafe {
            if MASKED { _mm256_maskload_ps(ptr, lane_mask(v)) } else { _mm256_loadu_ps(ptr) }
        };
        let (a, b, cp) = (p.a.as_ptr(), p.b.as_ptr(), c.as_mut_ptr());
        let mut acc = [[_mm256_setzero_ps(); NV]; MR];
        // SAFETY (every pointer below): rows i..i+MR < m, masked columns < n, p < k; `check` bounds these.
        unsafe {
            for (r, row) in acc.iter_mut().enumerate() {
                for (v, slot) in row.iter_mut().enumerate() {
                    let col = j + 8 * v;
                    *slot = match p.init {
                        Init::Zero => _mm256_setzero_ps(),
                        Init::Keep => load(cp.add((i + r) * n + col), v),
                        Init::Row(bias) => load(bias.as_ptr().add(col), v),
                    };
                }
            }
            for q in 0..p.k {
                let mut bv = [_mm256_setzero_ps(); NV];
                for (v, slot) in bv.iter_mut().enumerate() {
                    *slot = load(b.add(q * n + j + 8 * v), v);
                }
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = _mm256_set1_ps(*a.add((i + r) * p.a_rs + q * p.a_cs));
                    for (slot, &bq) in row.iter_mut().zip(&bv) {
                        *slot = _mm256_fmadd_ps(av, bq, *slot);
                    }
                }
            }
            for (r, row) in acc.iter().enumerate() {
                for (v, &value) in row.iter().enumerate() {
                    let out = cp.add((i + r) * n + j + 8 * v);
                    if MASKED {
                        _mm256_maskstore_ps(out, lane_mask(v), value);
                    } else {
                        _mm256_storeu_ps(out, value);
                    }
                }
            }
        }
    }
}

/// `out = x · w + bias`: `x` `[rows, d_in]`, `w` `[d_in, d_out]`, `bias` `[d_out]`, `out` `[rows, d_out]`.
pub fn linear(x: &[f32], w: &[f32], bias: &[f32], out: &mut [f32], d_in: usize, d_out: usize) {
    let m = x.len() / d_in.max(1);
    Product { m, n: d_out, k: d_in, a: x, a_rs: d_in, a_cs: 1, b: w, init: Init::Row(bias) }.run(out)
}

/// `out = x · w` without a bias: `x` `[rows, d_in]`, `w` `[d_in, d_out]`.
pub fn matmul(x: &[f32], w: &[f32], out: &mut [f32], d_in: usize, d_out: usize) {
    let m = x.len() / d_in.max(1);
    Product { m, n: d_out, k: d_in, a: x, a_rs: d_in, a_cs: 1, b: w, init: Init::Zero }.run(out)
}

/// Parameter gradients of [`linear`]: `dw += xᵀ · g`, `db += Σ_rows g`; `g` `[rows, d_out]`.
pub fn linear_backward_params(x: &[f32], g: &[f32], dw: &mut [f32], db: &mut [f32], d_in: usize, d_out: usize) {
    let rows = x.len() / d_in.max(1);
    Product { m: d_in, n: d_out, k: rows, a: x, a_rs: 1, a_cs: d_in, b: g, init: Init::Keep }.run(dw);
    for gr in g.chunks_exact(d_out).take(rows) {
        for (d, &gv) in db.iter_mut().zip(gr) {
            *d += gv;
        }
    }
}

/// Input gradient of [`linear`] from the transposed weight: `dx = g · wᵀ` with `w_t` `[d_out, d_in]`.
pub fn linear_backward_input(g: &[f32], w_t: &[f32], dx: &mut [f32], d_in: usize, d_out: usize) {
    let m = g.len() / d_out.max(1);
    Product { m, n: d_in, k: d_out, a: g, a_rs: d_out, a_cs: 1, b: w_t, init: Init::Zero }.run(dx)
}

/// `x ← eˣ` for every value, to about 2 ulp (0 below −87.3; arguments above 88 count as 88); the AVX2 build
/// computes eight values at a time with the same operations as the portable one, so both give the same bits.
pub fn exp_in_place(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            unsafe { avx2::exp_in_place(x) };
            return;
        }
    }
    for v in x {
        *v = exp(*v);
    }
}

/// Bounds and coefficients of [`exp`]: `eˣ = 2ⁿ · e^r` with `n = ⌊x log₂e + ½⌋`, `r = x − n ln 2` (in two parts),
/// `e^r ≈ 1 + r + r² P(r)` (Cephes' expf polynomial).
mod exp_consts {
    pub const LOW: f32 = -87.33654;
    pub const HIGH: f32 = 88.0;
    pub const LOG2E: f32 = std::f32::consts::LOG2_E;
    pub const LN2_HI: f32 = 0.693_359_4;
    pub const LN2_LO: f32 = -2.121_944_4e-4;
    pub const P: [f32; 6] = [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5];
}

/// `eˣ` of one value, the operations of the vector build in the same order.
#[inline(always)]
fn exp(x: f32) -> f32 {
    use exp_consts::*;
    if x < LOW {
        return 0.0;
    }
    let x = x.min(HIGH);
    let n = (x * LOG2E + 0.5).floor();
    let r = (-n).mul_add(LN2_HI, x);
    let r = (-n).mul_add(LN2_LO, r);
    let mut p = P[0];
    for &c in &P[1..] {
        p = p.mul_add(r, c);
    }
    let y = (p * r).mul_add(r, r) + 1.0;
    y * f32::from_bits((((n as i32) + 127) as u32) << 23)
}

/// `ln x` of every value in place: Cephes' logf polynomial for positive normal finite values, with AVX2 and FMA
/// where the CPU has them (the same operations in the same order as the portable build, so the same bits); other
/// values (0, subnormals, negatives, infinities, NaN) through the standard library's `ln`.
pub fn ln_in_place(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            unsafe { avx2::ln_in_place(x) };
            return;
        }
    }
    for v in x {
        *v = ln(*v);
    }
}

/// Constants of [`ln`]: `x = m · 2^e`, `m` in `[√½, √2)`, `ln x = (m − 1) − (m − 1)²/2 + (m − 1)³ P(m − 1) + e ln 2`
/// (Cephes' logf polynomial, `ln 2` in two parts).
mod ln_consts {
    pub const MANTISSA: i32 = 0x007f_ffff;
    pub const HALF_BITS: i32 = 0x3f00_0000;
    pub const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    pub const LN2_HI: f32 = 0.693_359_4;
    pub const LN2_LO: f32 = -2.121_944_4e-4;
    pub const P: [f32; 9] = [
        7.037_683_6e-2,
        -1.151_461e-1,
        1.167_699_9e-1,
        -1.242_014_1e-1,
        1.424_932_3e-1,
        -1.666_805_8e-1,
        2.000_071_4e-1,
        -2.499_999_4e-1,
        3.333_333e-1,
    ];
}

/// `ln x` of one value, the operations of the vector build in the same order.
#[inline(always)]
fn ln(x: f32) -> f32 {
    use ln_consts::*;
    if !(f32::MIN_POSITIVE..=f32::MAX).contains(&x) {
        return x.ln();
    }
    let bits = x.to_bits() as i32;
    let e = ((bits >> 23) - 126) as f32;
    let m = f32::from_bits(((bits & MANTISSA) | HALF_BITS) as u32);
    let (e, m) = if m < SQRT_HALF { (e - 1.0, m + m - 1.0) } else { (e, m - 1.0) };
    let z = m * m;
    let mut y = P[0];
    for &c in &P[1..] {
        y = y.mul_add(m, c);
    }
    let y = y * m * z;
    let y = e.mul_add(LN2_LO, y);
    let y = z.mul_add(-0.5, y);
    let r = m + y;
    e.mul_add(LN2_HI, r)
}

/// `w_t = wᵀ`: `w` `[rows, cols]` into `w_t` `[cols, rows]`.
pub fn transpose(w: &[f32], w_t: &mut [f32], rows: usize, cols: usize) {
    for (r, wr) in w.chunks_exact(cols).enumerate() {
        for (c, &v) in wr.iter().enumerate() {
            w_t[c * rows + r] = v;
        }
    }
}

/// `dst[c · dst_stride + r] (+)= src[r · src_stride + c]` for `r < rows`, `c < cols`: a block transposed, written
/// or (with `add`) added. The AVX2 build moves 8 × 8 tiles through registers; the values are those of the scalar
/// loop either way (each output is one copy or one addition).
pub fn transpose_block(
    src: &[f32],
    src_stride: usize,
    dst: &mut [f32],
    dst_stride: usize,
    (rows, cols): (usize, usize),
    add: bool,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(src_stride >= cols && dst_stride >= rows, "strides shorter than the block");
    assert!(src.len() >= (rows - 1) * src_stride + cols, "source holds {} values", src.len());
    assert!(dst.len() >= (cols - 1) * dst_stride + rows, "destination holds {} values", dst.len());
    let (mut r0, mut c0) = (0, 0);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        (r0, c0) = (rows - rows % 8, cols - cols % 8);
        for r in (0..r0).step_by(8) {
            for c in (0..c0).step_by(8) {
                // SAFETY: AVX2 is present; the tile's rows r..r+8 < rows and columns c..c+8 < cols are inside both
                // slices (checked above).
                unsafe { avx2::transpose_tile(src, src_stride, dst, dst_stride, r, c, add) };
            }
        }
    }
    // What the tiles left: columns c0.. of rows ..r0 (a column at a time: a strided read into a contiguous run of
    // the destination), then rows r0.. (a row at a time: a contiguous read into a strided run).
    for c in c0..cols {
        let out = &mut dst[c * dst_stride..c * dst_stride + r0];
        let col = src[c..].iter().step_by(src_stride);
        if add {
            out.iter_mut().zip(col).for_each(|(d, &v)| *d += v);
        } else {
            out.iter_mut().zip(col).for_each(|(d, &v)| *d = v);
        }
    }
    for r in r0..rows {
        let row = &src[r * src_stride..r * src_stride + cols];
        let out = dst[r..].iter_mut().step_by(dst_stride);
        if add {
            out.zip(row).for_each(|(d, &v)| *d += v);
        } else {
            out.zip(row).for_each(|(d, &v)| *d = v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tiled transpose equals the scalar loop, written and added, on blocks with and without whole tiles.
    #[test]
    fn transposed_blocks_equal_the_scalar_loop() {
        for (rows, cols) in [(16, 34), (61, 34), (8, 8), (3, 5), (64, 130), (64, 17), (17, 64), (9, 3)] {
            let (ss, ds) = (cols + 3, rows + 5);
            let src: Vec<f32> = (0..rows * ss).map(|i| i as f32 * 0.5 - 7.0).collect();
            let start: Vec<f32> = (0..cols * ds).map(|i| (i % 13) as f32).collect();
            for add in [false, true] {
                let mut got = start.clone();
                transpose_block(&src, ss, &mut got, ds, (rows, cols), add);
                let mut want = start.clone();
                for r in 0..rows {
                    for c in 0..cols {
                        let v = src[r * ss + c];
                        want[c * ds + r] = if add { want[c * ds + r] + v } else { v };
                    }
                }
                assert_eq!(got, want, "{rows}×{cols}, add {add}");
            }
        }
    }

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

    /// The portable build and the AVX2 build give the same bits, at shapes with full tiles, 8-wide tiles, masked
    /// tails and leftover rows, for every way an output starts.
    #[test]
    fn portable_and_vector_builds_agree_bit_for_bit() {
        for (m, k, n) in [(7, 64, 32), (32, 26, 100), (5, 100, 26), (3, 2, 64), (9, 32, 2), (4, 13, 50), (1, 1, 1)] {
            let (a, b, bias) = (values(m * k, m + n), values(k * n, k), values(n, 3));
            for init in [Init::Zero, Init::Keep, Init::Row(&bias)] {
                for (a_rs, a_cs) in [(k, 1), (1, m)] {
                    let product = Product { m, n, k, a: &a, a_rs, a_cs, b: &b, init };
                    let start = values(m * n, 11);
                    let (mut fast, mut portable) = (start.clone(), start);
                    product.run(&mut fast);
                    product.run_portable(&mut portable);
                    assert!(
                        fast.iter().zip(&portable).all(|(f, p)| f.to_bits() == p.to_bits()),
                        "{m}×{k}×{n}, strides ({a_rs}, {a_cs})"
                    );
                }
            }
        }
    }

    /// The exponential against f64's, and the vector build against the portable one bit for bit.
    #[test]
    fn exp_is_accurate_and_the_same_in_both_builds() {
        let xs: Vec<f32> =
            (0..20_000).map(|i| -100.0 + i as f32 * 0.0094).chain([-87.4, -87.3, 0.0, -0.0, 88.0]).collect();
        let mut fast = xs.clone();
        exp_in_place(&mut fast);
        for (&x, &f) in xs.iter().zip(&fast) {
            assert_eq!(f.to_bits(), exp(x).to_bits(), "exp({x}): vector {f}, portable {}", exp(x));
            let e = (x as f64).exp();
            if x < exp_consts::LOW {
                assert_eq!(f, 0.0, "exp({x})");
            } else {
                assert!(((f as f64) - e).abs() <= 4.0 * f32::EPSILON as f64 * e, "exp({x}) = {f}, expected {e}");
            }
        }
    }

    /// The logarithm against f64's, and the vector build against the portable one bit for bit.
    #[test]
    fn ln_is_accurate_and_the_same_in_both_builds() {
        let xs: Vec<f32> = (0..20_000)
            .map(|i| 1e-6 * 1.0016f32.powi(i))
            .chain([f32::MIN_POSITIVE, 1.0, 0.5, 2.0, std::f32::consts::FRAC_1_SQRT_2, 1.0 - 1e-7, f32::MAX])
            .chain([0.0, -1.0, 1e-40, f32::INFINITY, f32::NAN, 3.0, 4.0, 5.0])
            .collect();
        let mut fast = xs.clone();
        ln_in_place(&mut fast);
        for (&x, &f) in xs.iter().zip(&fast) {
            assert_eq!(f.to_bits(), ln(x).to_bits(), "ln({x}): vector {f}, portable {}", ln(x));
            let e = (x as f64).ln();
            if !(x > 0.0 && x.is_finite()) || x.is_subnormal() {
                assert!(f.to_bits() == x.ln().to_bits(), "ln({x}) = {f}, std {}", x.ln());
            } else {
                let ulp = f32::EPSILON as f64 * e.abs().max(f32::MIN_POSITIVE as f64);
                assert!(((f as f64) - e).abs() <= 4.0 * ulp, "ln({x}) = {f}, expected {e}");
            }
        }
    }

    /// A slice too short for the product is refused before any kernel reads it.
    #[test]
    #[should_panic(expected = "right operand")]
    fn short_operands_are_refused() {
        let (x, w, b) = (vec![1.0; 8], vec![1.0; 7], vec![0.0; 2]);
        let mut out = vec![0.0; 8];
        linear(&x, &w, &b, &mut out, 4, 2);
    }
}
