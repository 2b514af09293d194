//! The plumbing of fused CPU operations: one operation of burn's autodiff graph (burn's backend-extension API,
//! `burn_autodiff::ops::Backward`) whose forward and backward passes run on host slices. The Fourier head's PMF and
//! regulariser use it here; the DT's fused layers (`frl_nn::fused`) build on it. Other devices and dtypes keep burn's
//! operations.

use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::{Device, Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_backend::{BackendTypes, DType};
use burn_flex::{Flex, FlexTensor};

mod fourier;

pub use fourier::{fourier_head, fourier_logits, fourier_regularizer};

/// The CPU autodiff backend that frl's autodiff devices run on.
pub type Ad = Autodiff<Flex>;
/// A tensor of [`Ad`]: a Flex tensor and its graph node.
pub type AdTensor = <Ad as BackendTypes>::FloatTensorPrimitive;

/// A float tensor of one fused operation in its CPU form: in an autodiff graph, or plain (inference).
pub enum Cpu {
    /// On the CPU autodiff device.
    Tracked(AdTensor),
    /// On the plain CPU device.
    Plain(FlexTensor),
}

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Whether fused operations run on the CPU (the default) or burn's operations everywhere, process-wide: for
/// comparing the two (`frl bench dt --unfused`, tests).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// `t` in its CPU form, or `None` when it is not an f32 tensor on the CPU or fusing is off (the caller then uses
/// burn's operations).
pub fn cpu<const D: usize>(t: &Tensor<D>) -> Option<Cpu> {
    let device = t.device();
    if !ENABLED.load(Ordering::Relaxed) || device.clone().inner() != Device::flex() {
        return None;
    }
    let form = if device.is_autodiff() {
        Cpu::Tracked(t.clone().try_into_primitive::<Ad>().ok()?)
    } else {
        Cpu::Plain(t.clone().try_into_primitive::<Flex>().ok()?)
    };
    let dtype = match &form {
        Cpu::Tracked(t) => t.primitive().dtype(),
        Cpu::Plain(t) => t.dtype(),
    };
    (dtype == DType::F32).then_some(form)
}

/// The inputs of one fused operation: all in one autodiff graph, or all plain.
pub enum Inputs<const N: usize> {
    /// Autodiff tensors, in the operation's order.
    Tracked([AdTensor; N]),
    /// Plain tensors, in the operation's order.
    Plain([FlexTensor; N]),
}

impl<const N: usize> Inputs<N> {
    /// `forms` as one kind, or `None` when any is missing or the kinds are mixed.
    pub fn of(forms: [Option<Cpu>; N]) -> Option<Self> {
        if forms.iter().all(|f| matches!(f, Some(Cpu::Tracked(_)))) {
            Some(Self::Tracked(forms.map(|f| match f {
                Some(Cpu::Tracked(t)) => t,
                _ => unreachable!("checked above"),
            })))
        } else if forms.iter().all(|f| matches!(f, Some(Cpu::Plain(_)))) {
            Some(Self::Plain(forms.map(|f| match f {
                Some(Cpu::Plain(t)) => t,
                _ => unreachable!("checked above"),
            })))
        } else {
            None
        }
    }

    /// The inputs' values as [`dense`] Flex tensors, in order.
    pub fn values(&self) -> [FlexTensor; N] {
        match self {
            Self::Tracked(ts) => std::array::from_fn(|i| dense(ts[i].primitive())),
            Self::Plain(ts) => std::array::from_fn(|i| dense(&ts[i])),
        }
    }
}

/// `t` with its elements contiguous in row-major order (`t` itself when they already are).
pub fn dense(t: &FlexTensor) -> FlexTensor {
    if t.layout().contiguous_offsets().is_some() { t.clone() } else { t.to_contiguous() }
}

/// The elements of a [`dense`] f32 tensor in row-major order.
pub fn values(t: &FlexTensor) -> &[f32] {
    let (start, end) = t.layout().contiguous_offsets().expect("a dense tensor");
    &t.storage::<f32>()[start..end]
}

/// A contiguous f32 tensor of `shape` holding `data`.
pub fn tensor(data: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape.to_vec()))
}

/// A plain output as a tensor of the plain CPU device.
pub fn plain_output<const D: usize>(t: FlexTensor) -> Tensor<D> {
    Tensor::<D>::from_primitive::<Flex>(t)
}

/// An autodiff output as a tensor of the CPU autodiff device.
pub fn tracked_output<const D: usize>(t: AdTensor) -> Tensor<D> {
    Tensor::<D>::from_primitive::<Ad>(t)
}

/// A row-major matrix inside a slice: element `(i, j)` at `offset + i·row + j·col`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    /// The slice holding the matrix.
    pub data: &'a [f32],
    /// Index of element `(0, 0)`.
    pub offset: usize,
    /// Distance between rows.
    pub row: usize,
    /// Distance between columns.
    pub col: usize,
}

impl<'a> Mat<'a> {
    /// A `[rows, cols]` matrix stored row after row with `stride` between rows, from `offset`.
    pub fn rows(data: &'a [f32], offset: usize, stride: usize) -> Self {
        Self { data, offset, row: stride, col: 1 }
    }

    /// The transpose of [`Mat::rows`]: element `(i, j)` is the stored `(j, i)`.
    pub fn rows_t(data: &'a [f32], offset: usize, stride: usize) -> Self {
        Self { data, offset, row: 1, col: stride }
    }

    /// Whether a `[rows, cols]` matrix fits inside the slice.
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || self.offset + (rows - 1) * self.row + (cols - 1) * self.col < self.data.len()
    }
}

/// `dst[(i, j)] = (dst[(i, j)] if accumulate) + scale · Σ_k lhs[(i, k)]·rhs[(k, j)]` for an `[m, n]` block of
/// `dst` stored with `dst_row` between rows from `dst_offset`, on the calling thread (burn's own GEMM kernels).
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    dst_offset: usize,
    dst_row: usize,
    accumulate: bool,
    lhs: Mat,
    rhs: Mat,
    scale: f32,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(lhs.fits(m, k) && rhs.fits(k, n), "matmul operands out of bounds");
    assert!(dst_offset + (m - 1) * dst_row + n <= dst.len(), "matmul output out of bounds");
    // SAFETY: every element the GEMM reads or writes lies inside the slices (checked above), the output does
    // not overlap the inputs (a `&mut` and two `&`), and the GEMM runs on this thread.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(dst_offset),
            1,
            dst_row as isize,
            accumulate,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.col as isize,
            lhs.row as isize,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.col as isize,
            rhs.row as isize,
            1.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
